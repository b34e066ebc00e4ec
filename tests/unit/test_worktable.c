/*
 * test_worktable.c -- the work-id hash table: basic operations, errors,
 * growth checked against a reference, colliding ids and drain().
 */
#include <stdlib.h>
#include <string.h>

#include "mpx.h"
#include "unit.h"
#include "worktable.h"

/* Distinct non-NULL values: addresses inside this array. */
static char slots[1 << 18];
#define VAL(i) ((void *)&slots[(i) % sizeof slots])

static void test_basic(void) {
  mpx__worktable t;
  CU_ASSERT_EQUAL_FATAL(mpx__worktable_init(&t), 0);
  CU_ASSERT_EQUAL(t.count, 0);
  CU_ASSERT_PTR_NULL(mpx__worktable_get(&t, 1));
  CU_ASSERT_PTR_NULL(mpx__worktable_pop(&t, 1));

  CU_ASSERT_EQUAL(mpx__worktable_put(&t, 1, VAL(1)), 0);
  CU_ASSERT_EQUAL(mpx__worktable_put(&t, 2, VAL(2)), 0);
  /* 0 and UINT64_MAX are ids like any other. */
  CU_ASSERT_EQUAL(mpx__worktable_put(&t, 0, VAL(3)), 0);
  CU_ASSERT_EQUAL(mpx__worktable_put(&t, UINT64_MAX, VAL(4)), 0);
  CU_ASSERT_EQUAL(t.count, 4);
  CU_ASSERT_PTR_EQUAL(mpx__worktable_get(&t, 1), VAL(1));
  CU_ASSERT_PTR_EQUAL(mpx__worktable_get(&t, 2), VAL(2));
  CU_ASSERT_PTR_EQUAL(mpx__worktable_get(&t, 0), VAL(3));
  CU_ASSERT_PTR_EQUAL(mpx__worktable_get(&t, UINT64_MAX), VAL(4));
  CU_ASSERT_PTR_NULL(mpx__worktable_get(&t, 5));

  /* Errors leave the table unchanged. */
  CU_ASSERT_EQUAL(mpx__worktable_put(&t, 1, VAL(9)), MPX_EEXIST);
  CU_ASSERT_EQUAL(mpx__worktable_put(&t, 0, VAL(9)), MPX_EEXIST);
  CU_ASSERT_EQUAL(mpx__worktable_put(&t, 7, NULL), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx__worktable_put(&t, 1, NULL), MPX_EINVAL);
  CU_ASSERT_EQUAL(t.count, 4);
  CU_ASSERT_PTR_EQUAL(mpx__worktable_get(&t, 1), VAL(1));
  CU_ASSERT_PTR_NULL(mpx__worktable_get(&t, 7));

  CU_ASSERT_PTR_EQUAL(mpx__worktable_pop(&t, 1), VAL(1));
  CU_ASSERT_PTR_NULL(mpx__worktable_pop(&t, 1));
  CU_ASSERT_PTR_NULL(mpx__worktable_get(&t, 1));
  CU_ASSERT_EQUAL(t.count, 3);
  /* Re-insert after removal. */
  CU_ASSERT_EQUAL(mpx__worktable_put(&t, 1, VAL(5)), 0);
  CU_ASSERT_PTR_EQUAL(mpx__worktable_get(&t, 1), VAL(5));
  CU_ASSERT_PTR_EQUAL(mpx__worktable_pop(&t, 0), VAL(3));
  CU_ASSERT_PTR_EQUAL(mpx__worktable_pop(&t, UINT64_MAX), VAL(4));
  CU_ASSERT_PTR_EQUAL(mpx__worktable_pop(&t, 2), VAL(2));
  CU_ASSERT_PTR_EQUAL(mpx__worktable_pop(&t, 1), VAL(5));
  CU_ASSERT_EQUAL(t.count, 0);
  mpx__worktable_destroy(&t);
}

static void test_capacity_power_of_two(void) {
  mpx__worktable t;
  CU_ASSERT_EQUAL_FATAL(mpx__worktable_init(&t), 0);
  for (uint64_t i = 0; i < 5000; i++) {
    CU_ASSERT_EQUAL(mpx__worktable_put(&t, i * 3 + 1, VAL(i)), 0);
    CU_ASSERT(t.cap > 0 && (t.cap & (t.cap - 1)) == 0);
    CU_ASSERT(t.count < t.cap); /* open addressing keeps a free slot */
  }
  mpx__worktable_destroy(&t);
}

/* ---- growth against a reference -------------------------------------- */

typedef struct ref_ent {
  uint64_t id;
  int present;
} ref_ent;

static void check_all(const mpx__worktable *t, const ref_ent *ref, size_t n,
                      unsigned *bad) {
  for (size_t i = 0; i < n; i++) {
    void *v = mpx__worktable_get(t, ref[i].id);
    if (ref[i].present ? v != VAL(i) : v != NULL)
      (*bad)++;
  }
}

static void run_growth(int random_ids) {
  enum { N = 200000 };
  ref_ent *ref = calloc(N, sizeof *ref);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
  uint64_t rng = random_ids ? 0xC0FFEEull : 0xBEEFull;
  for (size_t i = 0; i < N; i++) {
    /* Random 64-bit ids are distinct with overwhelming probability; the
     * sequential case is what the executor really uses. */
    ref[i].id = random_ids ? unit_rand(&rng) : (uint64_t)i + 1;
  }
  mpx__worktable t;
  CU_ASSERT_EQUAL_FATAL(mpx__worktable_init(&t), 0);
  unsigned bad_put = 0, bad_pop = 0, bad_get = 0;
  size_t live = 0;
  for (size_t i = 0; i < N; i++) {
    if (mpx__worktable_put(&t, ref[i].id, VAL(i)) != 0)
      bad_put++;
    ref[i].present = 1;
    live++;
    /* Random removals among the ids inserted so far. */
    if (unit_rand(&rng) % 3 == 0) {
      size_t j = (size_t)(unit_rand(&rng) % (i + 1));
      void *v = mpx__worktable_pop(&t, ref[j].id);
      if (ref[j].present ? v != VAL(j) : v != NULL)
        bad_pop++;
      if (ref[j].present)
        live--;
      ref[j].present = 0;
    }
    if (i % 50000 == 49999)
      check_all(&t, ref, i + 1, &bad_get);
  }
  CU_ASSERT_EQUAL(bad_put, 0);
  CU_ASSERT_EQUAL(bad_pop, 0);
  CU_ASSERT_EQUAL(bad_get, 0);
  CU_ASSERT_EQUAL(t.count, live);
  check_all(&t, ref, N, &bad_get);
  CU_ASSERT_EQUAL(bad_get, 0);
  /* Duplicates of live ids are refused. */
  unsigned bad_dup = 0;
  for (size_t i = 0; i < N; i += 97)
    if (ref[i].present &&
        mpx__worktable_put(&t, ref[i].id, VAL(i + 1)) != MPX_EEXIST)
      bad_dup++;
  CU_ASSERT_EQUAL(bad_dup, 0);
  /* Remove everything in a shuffled order. */
  size_t *order = malloc(N * sizeof *order);
  for (size_t i = 0; i < N; i++)
    order[i] = i;
  for (size_t i = N - 1; i > 0; i--) {
    size_t j = (size_t)(unit_rand(&rng) % (i + 1));
    size_t tmp = order[i];
    order[i] = order[j];
    order[j] = tmp;
  }
  for (size_t k = 0; k < N; k++) {
    size_t i = order[k];
    void *v = mpx__worktable_pop(&t, ref[i].id);
    if (ref[i].present ? v != VAL(i) : v != NULL)
      bad_pop++;
    ref[i].present = 0;
    if (k % 40000 == 0)
      check_all(&t, ref, N, &bad_get);
  }
  CU_ASSERT_EQUAL(bad_pop, 0);
  CU_ASSERT_EQUAL(bad_get, 0);
  CU_ASSERT_EQUAL(t.count, 0);
  free(order);
  mpx__worktable_destroy(&t);
  free(ref);
}

static void test_growth_sequential(void) {
  run_growth(0);
}

static void test_growth_random(void) {
  run_growth(1);
}

/* ---- colliding ids ---------------------------------------------------- */

static void test_colliding_ids(void) {
  enum { N = 4096 };
  mpx__worktable t;
  CU_ASSERT_EQUAL_FATAL(mpx__worktable_init(&t), 0);
  unsigned bad = 0;
  /* Ids equal in their low 20 bits, plus neighbours that share the probe
   * run. */
  for (uint64_t k = 0; k < N; k++) {
    if (mpx__worktable_put(&t, k << 20, VAL(k)) != 0)
      bad++;
    if (k % 8 == 0 && mpx__worktable_put(&t, (k << 20) + 1, VAL(N + k)) != 0)
      bad++;
  }
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_EQUAL(t.count, N + N / 8);
  /* Remove every other one, backwards, then check the rest survive the
   * backward shifts. */
  for (uint64_t k = N; k-- > 0;)
    if (k % 2 == 1 && mpx__worktable_pop(&t, k << 20) != VAL(k))
      bad++;
  CU_ASSERT_EQUAL(bad, 0);
  for (uint64_t k = 0; k < N; k++) {
    void *v = mpx__worktable_get(&t, k << 20);
    if (k % 2 == 1 ? v != NULL : v != VAL(k))
      bad++;
    if (k % 8 == 0 && mpx__worktable_get(&t, (k << 20) + 1) != VAL(N + k))
      bad++;
  }
  CU_ASSERT_EQUAL(bad, 0);
  /* Ids colliding in the high bits too (multiples of 2^32). */
  for (uint64_t k = 1; k < 512; k++)
    if (mpx__worktable_put(&t, k << 32, VAL(k)) != 0)
      bad++;
  for (uint64_t k = 1; k < 512; k++)
    if (mpx__worktable_pop(&t, k << 32) != VAL(k))
      bad++;
  CU_ASSERT_EQUAL(bad, 0);
  CU_ASSERT_EQUAL(t.count, N / 2 + N / 8);
  mpx__worktable_destroy(&t);
}

/* ---- drain ------------------------------------------------------------ */

typedef struct drain_ctx {
  unsigned char *seen; /* per index: times visited */
  size_t n;
  unsigned bad; /* unknown ids or wrong values */
  size_t visits;
} drain_ctx;

static void drain_fn(uint64_t id, void *val, void *arg) {
  drain_ctx *c = arg;
  c->visits++;
  /* ids are i * 7 + 3, values VAL(i). */
  if (id % 7 != 3 || (id - 3) / 7 >= c->n) {
    c->bad++;
    return;
  }
  size_t i = (size_t)((id - 3) / 7);
  if (val != VAL(i))
    c->bad++;
  c->seen[i]++;
}

static void test_drain(void) {
  enum { N = 10000 };
  mpx__worktable t;
  CU_ASSERT_EQUAL_FATAL(mpx__worktable_init(&t), 0);
  drain_ctx c = {calloc(N, 1), N, 0, 0};
  /* Draining an empty table calls nothing. */
  mpx__worktable_drain(&t, drain_fn, &c);
  CU_ASSERT_EQUAL(c.visits, 0);

  for (size_t i = 0; i < N; i++)
    CU_ASSERT_EQUAL(mpx__worktable_put(&t, i * 7 + 3, VAL(i)), 0);
  for (size_t i = 0; i < N; i += 3) /* some removed first */
    CU_ASSERT_PTR_EQUAL(mpx__worktable_pop(&t, i * 7 + 3), VAL(i));
  size_t live = t.count;
  mpx__worktable_drain(&t, drain_fn, &c);
  CU_ASSERT_EQUAL(c.bad, 0);
  CU_ASSERT_EQUAL(c.visits, live);
  unsigned wrong = 0;
  for (size_t i = 0; i < N; i++)
    if (c.seen[i] != (i % 3 == 0 ? 0 : 1))
      wrong++;
  CU_ASSERT_EQUAL(wrong, 0);
  CU_ASSERT_EQUAL(t.count, 0);
  for (size_t i = 0; i < N; i++)
    if (mpx__worktable_get(&t, i * 7 + 3) != NULL)
      wrong++;
  CU_ASSERT_EQUAL(wrong, 0);

  /* The table is usable after a drain. */
  CU_ASSERT_EQUAL(mpx__worktable_put(&t, 3, VAL(0)), 0);
  CU_ASSERT_PTR_EQUAL(mpx__worktable_get(&t, 3), VAL(0));
  memset(c.seen, 0, N);
  c.visits = 0;
  mpx__worktable_drain(&t, drain_fn, &c);
  CU_ASSERT_EQUAL(c.visits, 1);
  CU_ASSERT_EQUAL(c.seen[0], 1);
  CU_ASSERT_EQUAL(t.count, 0);
  free(c.seen);
  mpx__worktable_destroy(&t);
}

static void test_destroy_nonempty(void) {
  /* Destroying a table with entries frees the table (not the values). */
  mpx__worktable t;
  CU_ASSERT_EQUAL_FATAL(mpx__worktable_init(&t), 0);
  for (uint64_t i = 0; i < 1000; i++)
    CU_ASSERT_EQUAL(mpx__worktable_put(&t, i, VAL(i)), 0);
  mpx__worktable_destroy(&t);
  /* A fresh init after destroy works. */
  CU_ASSERT_EQUAL_FATAL(mpx__worktable_init(&t), 0);
  CU_ASSERT_PTR_NULL(mpx__worktable_get(&t, 5));
  mpx__worktable_destroy(&t);
}

static const unit_test worktable_tests[] = {
    {"basic", test_basic},
    {"capacity_power_of_two", test_capacity_power_of_two},
    {"growth_sequential_200k", test_growth_sequential},
    {"growth_random_200k", test_growth_random},
    {"colliding_ids", test_colliding_ids},
    {"drain", test_drain},
    {"destroy_nonempty", test_destroy_nonempty},
    {NULL, NULL}};

int main(void) {
  const unit_suite suites[] = {{"worktable", worktable_tests}, {NULL, NULL}};
  return unit_main(suites, 60);
}
