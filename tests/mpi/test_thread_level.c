/*
 * test_thread_level.c -- creation below MPI_THREAD_FUNNELED.
 *
 * MPI is initialised with MPI_Init_thread(MPI_THREAD_SINGLE), so neither
 * a manager thread nor the main thread's turns (caller progress,
 * test_progress.c) may make MPI calls safely: creation must fail with
 * MPX_ETHREAD on every rank (no rank left serving), mpx_last_error() must
 * name the level needed, and mpx_init() on the already initialised MPI
 * must report the same. It initialises MPI itself, so it does not use the
 * shared harness (which asks for MPI_THREAD_MULTIPLE); only rank 0 runs
 * CUnit's basic runner and prints the summary.
 */
#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <string.h>

#include "mpx.h"
#include "mpx_test_mpi.h"

static int rank;
static int create_rc, init_rc;
static int all_ethread; /* reduced over ranks */
static char detail[512];

static int noop(mpx_task_ctx *ctx, const void *arg, size_t len) {
  (void)arg;
  (void)len;
  return mpx_task_return(ctx, NULL, 0);
}

static void test_create_refused(void) {
  CU_ASSERT_EQUAL(create_rc, MPX_ETHREAD);
  CU_ASSERT_TRUE(all_ethread);
  CU_ASSERT_PTR_NOT_NULL(strstr(detail, "MPI_THREAD_FUNNELED"));
}

static void test_init_reports_level(void) {
  CU_ASSERT_EQUAL(init_rc, MPX_ETHREAD);
}

int main(int argc, char **argv) {
  int provided = 0, size = 1;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SINGLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  mpx_register("noop", noop);
  mpx_executor *ex = (mpx_executor *)&rank; /* must be reset to NULL */
  create_rc = mpx_executor_create(MPI_COMM_WORLD, NULL, &ex);
  strncpy(detail, mpx_last_error(), sizeof detail - 1);
  int mine = create_rc == MPX_ETHREAD && ex == NULL;
  MPI_Allreduce(&mine, &all_ethread, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  init_rc =
      provided < MPI_THREAD_FUNNELED ? mpx_init(&argc, &argv) : MPX_ETHREAD;
  if (rank == 0) {
    if (provided >= MPI_THREAD_FUNNELED)
      fprintf(stderr, "note: MPI gave thread level %d for SINGLE\n", provided);
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("thread level", NULL, NULL);
    CU_add_test(s, "creation refused below FUNNELED", test_create_refused);
    CU_add_test(s, "mpx_init reports the level", test_init_reports_level);
  }
  int failures = mt_run_on_root();
  MPI_Finalize();
  return failures ? 1 : 0;
}
