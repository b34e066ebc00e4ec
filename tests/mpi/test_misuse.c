/*
 * test_misuse.c -- careless programs get an error, never a hang: a second
 * executor while one is live, ranks passing different roots, options set
 * on the root only (the root's values hold on every rank).
 */
#include <string.h>

#include "mpx_test_mpi.h"

/* A second create on the root while the first pool is live is refused at
 * once (its workers serve the first pool and would never join); after
 * shutdown a new pool can be created. */
static void test_second_create(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    mpx_executor *ex2 = (mpx_executor *)&ok;
    MT_ASSERT(mpx_executor_create(MPI_COMM_WORLD, NULL, &ex2) == MPX_EBUSY);
    MT_ASSERT(ex2 == NULL);
    MT_ASSERT(strstr(mpx_last_error(), "mpx_executor_create") != NULL);
    MT_ASSERT(strstr(mpx_last_error(), "live executor") != NULL);
    MT_ASSERT(mt_nap_once(ex, 1)); /* the first pool still works */
  }
  mt_pool_end(&ex, ok);
  /* Shut down and destroyed: creation works again on every rank. */
  ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  mt_pool_end(&ex, ok);
}

/* Ranks naming different roots: MPX_EINVAL on every rank, no hang. */
static void test_different_roots(void) {
  mpx_executor_options o;
  mpx_executor_options_init(&o);
  o.root = mt_rank() % 2;
  mpx_executor *ex = NULL;
  int rc = mpx_executor_create(MPI_COMM_WORLD, &o, &ex);
  if (mt_size() == 1) {
    MT_ASSERT_ALL(rc == 0);
    if (ex) {
      MT_ASSERT(mpx_executor_shutdown(ex, 1, 0) == 0);
      MT_ASSERT(mpx_executor_destroy(&ex) == 0);
    }
    return;
  }
  MT_ASSERT_ALL(rc == MPX_EINVAL && ex == NULL);
  MT_ASSERT_ALL(strstr(mpx_last_error(), "different roots") != NULL);
  /* Nothing was left behind: a good pool follows. */
  int ok;
  ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  mt_pool_end(&ex, ok);
}

/* The options come from the root: values the other ranks pass, even
 * invalid ones, are replaced by the root's before they are checked (a
 * flush_interval set only on the root used to be ignored by the workers,
 * and a worker's bad value failed every rank). */
static void test_root_options(void) {
  mpx_executor_options o;
  mpx_executor_options_init(&o);
  if (!mt_is_root()) {
    o.flush_interval = -1;
    o.prefetch = 0;
    o.max_batch = -5;
  }
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, &o, &ok);
  if (ex)
    MT_ASSERT(mt_nap_once(ex, 1));
  mt_pool_end(&ex, ok);
  /* The root's own bad value still fails every rank. */
  mpx_executor_options_init(&o);
  if (mt_is_root())
    o.flush_interval = -1;
  ex = NULL;
  int rc = mpx_executor_create(MPI_COMM_WORLD, &o, &ex);
  MT_ASSERT_ALL(rc == MPX_EINVAL && ex == NULL);
}

static const mt_test misuse[] = {{"second_create", test_second_create},
                                 {"different_roots", test_different_roots},
                                 {"root_options", test_root_options},
                                 {NULL, NULL}};

static const mt_suite suites[] = {{"misuse", misuse}, {NULL, NULL}};

int main(int argc, char **argv) {
  mt_init(&argc, &argv);
  if (mpx_register("nap", mt_task_nap) != 0)
    return 2;
  return mt_run(suites, 60);
}
