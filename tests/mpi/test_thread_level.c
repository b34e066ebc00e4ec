/*
 * test_thread_level.c -- pools under MPI_THREAD_SINGLE.
 *
 * MPI is initialised with MPI_Init_thread(MPI_THREAD_SINGLE) (the level
 * SimGrid's SMPI provides), so the process may run one thread only:
 *  - a pool of several ranks moved by its callers starts no thread and
 *    runs: the default (auto) resolves to caller progress, tasks run and
 *    the pool shuts down;
 *  - a manager thread (MPX_PROGRESS_THREAD) is refused with MPX_ETHREAD on
 *    every rank (no rank left serving), and so is a one-rank pool (its
 *    tasks run on a thread), mpx_last_error() naming the level needed;
 *  - a job (its writer is a thread) is refused with MPX_ETHREAD;
 *  - mpx_init() on the already initialised MPI accepts the level.
 * It initialises MPI itself, so it does not use the shared harness (which
 * asks for MPI_THREAD_MULTIPLE); only rank 0 runs CUnit's basic runner and
 * prints the summary.
 */
#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <string.h>

#include "mpx.h"
#include "mpx_test_mpi.h"

static int rank, size;
static int auto_rc, auto_mode = -2, auto_result = -1, job_rc;
static int thread_rc, init_rc;
static int all_auto_ok, all_thread_refused; /* reduced over ranks */
static char detail[512];

static int square(mpx_task_ctx *ctx, const void *arg, size_t len) {
  int x = 0;
  if (len == sizeof x)
    memcpy(&x, arg, sizeof x);
  x *= x;
  return mpx_task_return(ctx, &x, sizeof x);
}

static void test_auto(void) {
  if (size == 1) { /* a one-rank pool runs its tasks on a thread */
    CU_ASSERT_EQUAL(auto_rc, MPX_ETHREAD);
    CU_ASSERT_TRUE(all_auto_ok);
    return;
  }
  CU_ASSERT_EQUAL(auto_rc, 0);
  CU_ASSERT_TRUE(all_auto_ok);
  CU_ASSERT_EQUAL(auto_mode, MPX_PROGRESS_CALLER);
  CU_ASSERT_EQUAL(auto_result, 49);
  CU_ASSERT_EQUAL(job_rc, MPX_ETHREAD);
}

static void test_thread_refused(void) {
  CU_ASSERT_EQUAL(thread_rc, MPX_ETHREAD);
  CU_ASSERT_TRUE(all_thread_refused);
  CU_ASSERT_PTR_NOT_NULL(strstr(detail, "MPI_THREAD_FUNNELED"));
}

static void test_init_accepts_level(void) {
  CU_ASSERT_EQUAL(init_rc, 0);
}

static int produce(void *arg, uint64_t index, const void **data, size_t *len) {
  (void)arg;
  (void)index;
  *data = NULL;
  *len = 0;
  return 1;
}

int main(int argc, char **argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SINGLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  mpx_register("square", square);

  /* The default: caller progress with several ranks, refused alone. */
  mpx_executor *ex = (mpx_executor *)&rank; /* must be set */
  auto_rc = mpx_executor_create(MPI_COMM_WORLD, NULL, &ex);
  if (auto_rc == 0 && ex) {
    auto_mode = mpx_executor_progress_mode(ex);
    int x = 7;
    mpx_future *f = NULL;
    const void *p = NULL;
    if (mpx_submit(ex, "square", &x, sizeof x, &f) == 0 &&
        mpx_future_result(f, MPX_FOREVER, &p, NULL) == 0)
      memcpy(&auto_result, p, sizeof auto_result);
    mpx_future_destroy(&f);
    job_rc = mpx_job_run(ex, "square", produce, NULL, 1, NULL,
                         "thread_level_job.h5", NULL, NULL);
    mpx_executor_shutdown(ex, 1, 0);
    mpx_executor_destroy(&ex);
  }
  int mine = size == 1 ? auto_rc == MPX_ETHREAD && ex == NULL : auto_rc == 0;
  MPI_Allreduce(&mine, &all_auto_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);

  /* A manager thread: refused on every rank. */
  mpx_executor_options o;
  mpx_executor_options_init(&o);
  o.progress = MPX_PROGRESS_THREAD;
  ex = (mpx_executor *)&rank; /* must be reset to NULL */
  thread_rc = mpx_executor_create(MPI_COMM_WORLD, &o, &ex);
  strncpy(detail, mpx_last_error(), sizeof detail - 1);
  mine = thread_rc == MPX_ETHREAD && ex == NULL;
  MPI_Allreduce(&mine, &all_thread_refused, 1, MPI_INT, MPI_MIN,
                MPI_COMM_WORLD);
  init_rc = provided < MPI_THREAD_FUNNELED ? mpx_init(&argc, &argv) : 0;
  if (rank == 0) {
    if (provided >= MPI_THREAD_FUNNELED)
      fprintf(stderr, "note: MPI gave thread level %d for SINGLE\n", provided);
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("thread level", NULL, NULL);
    CU_add_test(s, "auto: callers move a pool of several ranks", test_auto);
    CU_add_test(s, "a manager thread is refused", test_thread_refused);
    CU_add_test(s, "mpx_init accepts the level", test_init_accepts_level);
  }
  int failures = mt_run_on_root();
  MPI_Finalize();
  return failures ? 1 : 0;
}
