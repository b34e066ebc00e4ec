/*
 * test_mismatch.c -- ranks that registered different task tables.
 *
 * Creating an executor compares the tables: when any rank differs from the
 * root (an extra task, a missing one, another name at the same position,
 * another order), creation fails with MPX_EMISMATCH on every rank alike,
 * no rank is left serving, mpx_last_error() names the task that differs,
 * and the tables can be rebuilt (mpx_unregister_all()) for a pool that
 * then works. With one rank no mismatch is possible, so only the working
 * pool is checked.
 */
#include <stdio.h>
#include <string.h>

#include "mpx_test_mpi.h"

/* Each task returns its own name, so the root can tell which ran. */
static int task_named(mpx_task_ctx *ctx, const void *arg, size_t len) {
  (void)arg;
  (void)len;
  const char *n = mpx_task_name(ctx);
  return mpx_task_return(ctx, n, strlen(n));
}

/* Replaces this rank's table with the names (NULL-terminated). */
static int register_table(const char *const *names) {
  int rc = mpx_unregister_all();
  for (; *names; names++)
    rc |= mpx_register(*names, task_named);
  return rc;
}

/* A mismatch case: the table every rank registers, the ranks that register
 * another one, and the name mpx_last_error() must mention. */
typedef struct mm_case {
  const char *what;
  const char *const *common;
  const char *const *odd;
  int odd_rank;  /* a rank registering odd; -1 for the last rank */
  int odd_rank2; /* another such rank (used with >= 3 ranks), or -2 */
  int pool_root; /* -1 for the last rank */
  const char *mention;
  const char *mention2; /* or NULL */
} mm_case;

static const char *const ab[] = {"alpha", "beta", NULL};
static const char *const ab_extra[] = {"alpha", "beta", "gamma_extra", NULL};
static const char *const a_delta[] = {"alpha", "delta_other", NULL};
static const char *const a_only[] = {"alpha", NULL};
static const char *const ba[] = {"beta", "alpha", NULL};
static const char *const none[] = {NULL};

static const mm_case cases[] = {
    {"extra task on rank 1", ab, ab_extra, 1, -2, 0, "gamma_extra", NULL},
    {"other name at position 1 on the last rank", ab, a_delta, -1, -2, 0,
     "delta_other", NULL},
    {"task missing on rank 1", ab, a_only, 1, -2, 0, "beta", NULL},
    {"other order on rank 1", ab, ba, 1, -2, 0, "alpha", "beta"},
    {"empty table on rank 1", ab, none, 1, -2, 0, "alpha", NULL},
    {"several odd ranks", ab, ab_extra, 1, 2, 0, "gamma_extra", NULL},
    {"extra task on rank 0, pool rooted at the last rank", ab, ab_extra, 0, -2,
     -1, "gamma_extra", NULL},
};

static int resolve(int r) {
  return r == -1 ? mt_size() - 1 : r;
}

static void run_case(const mm_case *c) {
  int me = mt_rank();
  int odd =
      me == resolve(c->odd_rank) ||
      (c->odd_rank2 >= 0 && c->odd_rank2 < mt_size() && me == c->odd_rank2);
  MT_ASSERT_ALL(register_table(odd ? c->odd : c->common) == 0);

  mpx_executor_options o;
  mpx_executor_options_init(&o);
  o.root = resolve(c->pool_root);
  mpx_executor *ex = NULL;
  int rc = mpx_executor_create(MPI_COMM_WORLD, &o, &ex);
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", mpx_last_error());
  if (ex) { /* a library bug: release the pool so that nothing hangs */
    mpx_executor_shutdown(ex, 1, 1);
    mpx_executor_destroy(&ex);
    rc = 0;
  }
  if (mt_is_root()) {
    if (rc != MPX_EMISMATCH)
      printf("\n    %s: root got %s\n", c->what, mpx_err_name(rc));
    if (!mt_contains(msg, c->mention))
      printf("\n    %s: root's message: \"%s\"\n", c->what, msg);
  }
  MT_ASSERT_ALL(rc == MPX_EMISMATCH);
  MT_ASSERT_ALL(mt_contains(msg, c->mention) &&
                (!c->mention2 || mt_contains(msg, c->mention2)));
  /* a failed creation leaves no executor live behind */
  MT_ASSERT_ALL(mpx_unregister_all() == 0);
}

static void test_mismatches(void) {
  if (mt_size() < 2)
    return; /* one rank cannot disagree with itself */
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (cases[i].odd_rank2 >= mt_size())
      continue; /* the case needs more ranks; the others cover it */
    run_case(&cases[i]);
  }
}

/* After rebuilding identical tables the pool is created and every task
 * runs under its name. */
static void test_identical_after_mismatch(void) {
  static const char *const abc[] = {"alpha", "beta", "gamma", NULL};
  MT_ASSERT_ALL(register_table(abc) == 0);
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    for (int round = 0; round < 4; round++) {
      for (int i = 0; abc[i]; i++) {
        mpx_future *f = NULL;
        const void *d = NULL;
        size_t l = 0;
        MT_ASSERT(mpx_submit(ex, abc[i], NULL, 0, &f) == 0);
        MT_ASSERT(f && mpx_future_result(f, MPX_FOREVER, &d, &l) == 0);
        MT_ASSERT(l == strlen(abc[i]) && d && memcmp(d, abc[i], l) == 0);
        mpx_future_destroy(&f);
      }
    }
    mpx_future *f = NULL;
    MT_ASSERT(mpx_submit(ex, "gamma_extra", NULL, 0, &f) == MPX_ENOTASK);
  }
  mt_pool_end(&ex, ok);
}

/* A mismatch after a working pool is caught as well, and a second pool
 * with the tables made identical again works. */
static void test_mismatch_then_pool_again(void) {
  if (mt_size() >= 2)
    run_case(&cases[0]);
  static const char *const ab2[] = {"alpha", "beta", NULL};
  MT_ASSERT_ALL(register_table(ab2) == 0);
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    mpx_future *f = NULL;
    const void *d = NULL;
    size_t l = 0;
    MT_ASSERT(mpx_submit(ex, "beta", NULL, 0, &f) == 0);
    MT_ASSERT(f && mpx_future_result(f, MPX_FOREVER, &d, &l) == 0);
    MT_ASSERT(l == 4 && d && memcmp(d, "beta", 4) == 0);
    mpx_future_destroy(&f);
  }
  mt_pool_end(&ex, ok);
}

static const mt_test tests[] = {
    {"mismatches", test_mismatches},
    {"identical_after_mismatch", test_identical_after_mismatch},
    {"mismatch_then_pool_again", test_mismatch_then_pool_again},
    {NULL, NULL}};

static const mt_suite suites[] = {{"mismatch", tests}, {NULL, NULL}};

int main(int argc, char **argv) {
  mt_init(&argc, &argv);
  return mt_run(suites, 100);
}
