/*
 * test_credits.c -- the lists of workers by items held: start order,
 * breadth-first and warmest-first moves, errors, and 200,000 random
 * moves checked list by list against a plain-array model.
 */
#include <stdlib.h>
#include <string.h>

#include "credits.h"
#include "mpx.h"
#include "unit.h"

/* The list of workers holding `held` items, walked from its head; returns
 * its length (at most cap) or -1 when the backward links disagree. */
static int walk(const mpx__credits *c, int held, int *out, int cap) {
  int n = 0, prev = -1;
  for (int w = mpx__credits_first(c, held); w >= 0;
       w = mpx__credits_next(c, w)) {
    if (n == cap || c->prev[w] != prev || mpx__credits_held(c, w) != held)
      return -1;
    out[n++] = w;
    prev = w;
  }
  if (n > 0 && c->tail[held] != prev)
    return -1;
  return n;
}

static void test_start(void) {
  mpx__credits c;
  CU_ASSERT_EQUAL_FATAL(mpx__credits_init(&c, 5, 2, 2), 0);
  int l[8];
  /* From root + 1 upwards, wrapping; the root is in no list. */
  CU_ASSERT_EQUAL_FATAL(walk(&c, 0, l, 8), 4);
  CU_ASSERT(l[0] == 3 && l[1] == 4 && l[2] == 0 && l[3] == 1);
  CU_ASSERT_EQUAL(walk(&c, 1, l, 8), 0);
  CU_ASSERT_EQUAL(mpx__credits_held(&c, 2), -1);
  CU_ASSERT_EQUAL(mpx__credits_first(&c, 2), -1); /* no list for 2 held */
  CU_ASSERT_EQUAL(mpx__credits_first(&c, -1), -1);
  mpx__credits_destroy(&c);
  /* One rank alone: no worker at all. */
  CU_ASSERT_EQUAL_FATAL(mpx__credits_init(&c, 1, 0, 2), 0);
  CU_ASSERT_EQUAL(mpx__credits_first(&c, 0), -1);
  mpx__credits_destroy(&c);
  CU_ASSERT_EQUAL(mpx__credits_init(&c, 4, 4, 2), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx__credits_init(&c, 4, 0, 0), MPX_EINVAL);
}

/* A sub-manager's workers (hier.c): the ranks whose parent it is, from
 * it upwards; and the batch policy both levels share. */
static void test_children(void) {
  mpx__credits c;
  /* 0 root; 1 leads 2, 3; 4 leads 5, 6; 7 a plain worker of the root. */
  int parent[8] = {-1, 0, 1, 1, 0, 4, 4, 0};
  int l[8];
  CU_ASSERT_EQUAL_FATAL(mpx__credits_init_children(&c, 8, 0, 2, parent, 0), 0);
  CU_ASSERT_EQUAL_FATAL(walk(&c, 0, l, 8), 3);
  CU_ASSERT(l[0] == 1 && l[1] == 4 && l[2] == 7);
  CU_ASSERT_EQUAL(mpx__credits_held(&c, 2), -1);
  mpx__credits_destroy(&c);
  CU_ASSERT_EQUAL_FATAL(mpx__credits_init_children(&c, 8, 0, 2, parent, 4), 0);
  CU_ASSERT_EQUAL_FATAL(walk(&c, 0, l, 8), 2);
  CU_ASSERT(l[0] == 5 && l[1] == 6);
  CU_ASSERT_EQUAL(mpx__credits_held(&c, 4), -1);
  CU_ASSERT_EQUAL(mpx__credits_held(&c, 0), -1);
  mpx__credits_destroy(&c);
  CU_ASSERT_EQUAL(mpx__credits_init_children(&c, 8, 0, 2, parent, 8),
                  MPX_EINVAL);

  mpx__batch_policy p = {10, 2, 64, -1, 0.02};
  /* 4,000 queued over 10 workers x 2 credits x 2: 100, capped at 64. */
  CU_ASSERT_EQUAL(mpx__batch_size(&p, 4000, 2, 1), 64u);
  CU_ASSERT_EQUAL(mpx__batch_size(&p, 400, 2, 1), 10u);
  CU_ASSERT_EQUAL(mpx__batch_size(&p, 1, 2, 1), 1u);
  /* A sub-manager of 5 workers is sent 5 times as much, 5 x 64 at most. */
  CU_ASSERT_EQUAL(mpx__batch_size(&p, 400, 2, 5), 50u);
  CU_ASSERT_EQUAL(mpx__batch_size(&p, 40000, 2, 5), 320u);
  /* Unknown task times: one item per worker; short ones: prefetch. */
  CU_ASSERT_EQUAL(mpx__prefetch_now(&p, 400), 1);
  p.task_s = 1e-5;
  CU_ASSERT_EQUAL(mpx__prefetch_now(&p, 400), 2);
  /* 10 ms tasks: a batch holds the 20 ms span, 2 tasks, alone. */
  p.task_s = 0.01;
  CU_ASSERT_EQUAL(mpx__batch_size(&p, 4000, 2, 1), 2u);
  CU_ASSERT_EQUAL(mpx__batch_size(&p, 4000, 2, 5), 10u);
  CU_ASSERT_EQUAL(mpx__prefetch_now(&p, 4000), 1);
}

static void test_moves(void) {
  mpx__credits c;
  CU_ASSERT_EQUAL_FATAL(mpx__credits_init(&c, 4, 0, 2), 0);
  int l[8];
  /* Breadth first: sent an item, a worker goes to the back of list 1. */
  CU_ASSERT_EQUAL(mpx__credits_take(&c, 2), 0);
  CU_ASSERT_EQUAL(mpx__credits_take(&c, 1), 0);
  CU_ASSERT_EQUAL_FATAL(walk(&c, 0, l, 8), 1);
  CU_ASSERT_EQUAL(l[0], 3);
  CU_ASSERT_EQUAL_FATAL(walk(&c, 1, l, 8), 2);
  CU_ASSERT(l[0] == 2 && l[1] == 1);
  /* Full: in no list, and no more items. */
  CU_ASSERT_EQUAL(mpx__credits_take(&c, 2), 0);
  CU_ASSERT_EQUAL(mpx__credits_held(&c, 2), 2);
  CU_ASSERT_EQUAL(mpx__credits_take(&c, 2), MPX_EINVAL);
  CU_ASSERT_EQUAL_FATAL(walk(&c, 1, l, 8), 1);
  CU_ASSERT_EQUAL(l[0], 1);
  /* Warmest first: a worker that returns an item heads the list below. */
  CU_ASSERT_EQUAL(mpx__credits_give(&c, 2), 0);
  CU_ASSERT_EQUAL_FATAL(walk(&c, 1, l, 8), 2);
  CU_ASSERT(l[0] == 2 && l[1] == 1);
  CU_ASSERT_EQUAL(mpx__credits_give(&c, 1), 0);
  CU_ASSERT_EQUAL_FATAL(walk(&c, 0, l, 8), 2);
  CU_ASSERT(l[0] == 1 && l[1] == 3);
  /* Errors change nothing. */
  CU_ASSERT_EQUAL(mpx__credits_give(&c, 3), MPX_EINVAL); /* holds none */
  CU_ASSERT_EQUAL(mpx__credits_give(&c, 0), MPX_EINVAL); /* the root */
  CU_ASSERT_EQUAL(mpx__credits_take(&c, 0), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx__credits_take(&c, 4), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx__credits_give(&c, -1), MPX_EINVAL);
  CU_ASSERT_EQUAL(walk(&c, 0, l, 8), 2);
  CU_ASSERT_EQUAL(walk(&c, 1, l, 8), 1);
  mpx__credits_destroy(&c);
}

enum { R = 37, ROOT = 5, LEVELS = 3 };

/* The model: each list as a plain array. */
static int model[LEVELS][R], mlen[LEVELS], mheld[R];

static void model_remove(int w) {
  int h = mheld[w];
  if (h >= LEVELS)
    return;
  for (int i = 0; i < mlen[h]; i++)
    if (model[h][i] == w) {
      memmove(&model[h][i], &model[h][i + 1],
              (size_t)(mlen[h] - i - 1) * sizeof(int));
      mlen[h]--;
      return;
    }
}

static void test_random(void) {
  mpx__credits c;
  CU_ASSERT_EQUAL_FATAL(mpx__credits_init(&c, R, ROOT, LEVELS), 0);
  memset(mlen, 0, sizeof mlen);
  for (int k = 1; k < R; k++) {
    int w = (ROOT + k) % R;
    model[0][mlen[0]++] = w;
    mheld[w] = 0;
  }
  srand(12345);
  int bad = 0, l[R];
  for (int step = 0; step < 200000 && !bad; step++) {
    int w = rand() % R, take = rand() % 2;
    int want_ok = w != ROOT && (take ? mheld[w] < LEVELS : mheld[w] > 0);
    int rc = take ? mpx__credits_take(&c, w) : mpx__credits_give(&c, w);
    if ((rc == 0) != want_ok) {
      bad = 1;
      break;
    }
    if (rc == 0) {
      model_remove(w);
      int h = mheld[w] += take ? 1 : -1;
      if (take && h < LEVELS) {
        model[h][mlen[h]++] = w;
      } else if (!take) {
        memmove(&model[h][1], &model[h][0], (size_t)mlen[h] * sizeof(int));
        model[h][0] = w;
        mlen[h]++;
      }
    }
    for (int h = 0; h < LEVELS && !bad; h++) {
      int n = walk(&c, h, l, R);
      bad = n != mlen[h] || memcmp(l, model[h], (size_t)n * sizeof(int));
    }
  }
  CU_ASSERT_FALSE(bad);
  mpx__credits_destroy(&c);
}

static const unit_test credits_tests[] = {{"start", test_start},
                                          {"moves", test_moves},
                                          {"children", test_children},
                                          {"random_vs_model", test_random},
                                          {NULL, NULL}};

int main(void) {
  const unit_suite suites[] = {{"credits", credits_tests}, {NULL, NULL}};
  return unit_main(suites, 60);
}
