/*
 * test_finalize_live.c -- mpx_finalize() with an executor never shut down.
 *
 * The root submits tasks and calls mpx_finalize() straight away, as a
 * careless program (or one that returns early on an error) would. Python
 * joins its executors at exit; mpx_finalize() shuts live pools down the
 * same way (waiting, nothing cancelled), so every future finishes, the
 * workers leave their loop and MPI is finalised on every rank instead of
 * the root waiting in MPI_Finalize for workers that wait for it. The
 * handle stays valid for mpx_executor_destroy() afterwards.
 *
 * With the argument "status" it checks mpx_finalize_status() instead:
 * called with a pool still live (its workers must be released before the
 * ranks can agree), the root passing 3, the last worker 7 when there are
 * two or more workers and the others 0, every rank gets the largest.
 *
 * MPI is finalised inside the test, so this program cannot use the shared
 * harness (which reduces results over MPI at the end): the root runs the
 * CUnit suite and prints its summary, the workers check their own calls
 * and exit with their status, and a watchdog turns a hang into a failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "mpx_test_mpi.h"

/* Root: create, submit, finalise without shutting down, then check. */
static void test_finalize_joins(void) {
  mpx_executor *ex = NULL;
  CU_ASSERT_FATAL(mpx_executor_create(MPI_COMM_WORLD, NULL, &ex) == 0);
  CU_ASSERT_FATAL(ex != NULL);
  mpx_future *fs[6];
  for (int i = 0; i < 6; i++) {
    int ms = 100;
    CU_ASSERT_FATAL(mpx_submit(ex, "nap", &ms, sizeof ms, &fs[i]) == 0);
  }
  CU_ASSERT(mpx_finalize() == 0);
  int fin = 0;
  MPI_Finalized(&fin);
  CU_ASSERT(fin == 1);
  /* Shut down with wait: every future ran to completion. */
  for (int i = 0; i < 6; i++) {
    const void *d = NULL;
    size_t l = 0;
    CU_ASSERT(mpx_future_result(fs[i], 0, &d, &l) == 0 && l == sizeof(int));
    mpx_future_destroy(&fs[i]);
  }
  /* The pool is shut down: a submit fails clearly, destroy works. */
  mpx_future *f = NULL;
  int ms = 1;
  CU_ASSERT(mpx_submit(ex, "nap", &ms, sizeof ms, &f) == MPX_ESHUTDOWN);
  CU_ASSERT(mpx_executor_destroy(&ex) == 0);
  CU_ASSERT(ex == NULL);
}

static int nranks, want_status;

/* Root: a live pool, then the agreed status. */
static void test_finalize_status(void) {
  mpx_executor *ex = NULL;
  CU_ASSERT_FATAL(mpx_executor_create(MPI_COMM_WORLD, NULL, &ex) == 0);
  mpx_future *f = NULL;
  int ms = 100;
  CU_ASSERT_FATAL(mpx_submit(ex, "nap", &ms, sizeof ms, &f) == 0);
  CU_ASSERT(mpx_finalize_status(3) == want_status);
  int fin = 0;
  MPI_Finalized(&fin);
  CU_ASSERT(fin == 1);
  CU_ASSERT(mpx_future_result(f, 0, NULL, NULL) == 0);
  mpx_future_destroy(&f);
  CU_ASSERT(mpx_executor_destroy(&ex) == 0);
}

int main(int argc, char **argv) {
  mt_init(&argc, &argv);
  mt_watchdog(60);
  if (mpx_register("nap", mt_task_nap) != 0)
    return 2;
  int status_mode = argc > 1 && !strcmp(argv[1], "status");
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  want_status = nranks > 2 ? 7 : 3;
  if (status_mode && !mt_is_root()) {
    mpx_executor *ex = NULL;
    int rc = mpx_executor_create(MPI_COMM_WORLD, NULL, &ex);
    int mine = nranks > 2 && rank == nranks - 1 ? 7 : 0;
    int got = mpx_finalize_status(mine);
    return rc == 0 && ex == NULL && got == want_status ? 0 : 1;
  }
  if (!mt_is_root()) {
    /* A worker: serves until the root's finalize shuts the pool down. */
    mpx_executor *ex = NULL;
    int rc = mpx_executor_create(MPI_COMM_WORLD, NULL, &ex);
    int frc = mpx_finalize();
    return rc == 0 && ex == NULL && frc == 0 ? 0 : 1;
  }
  if (CU_initialize_registry() != CUE_SUCCESS)
    return 2;
  CU_pSuite s = CU_add_suite("finalize_live", NULL, NULL);
  if (!s ||
      !CU_add_test(s, status_mode ? "finalize_status" : "finalize_joins",
                   status_mode ? test_finalize_status : test_finalize_joins))
    return 2;
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned nfail = CU_get_number_of_failures();
  CU_cleanup_registry();
  return nfail ? 1 : 0;
}
