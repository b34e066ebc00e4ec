/*
 * mpx_test_mpi.c -- the harness behind mpx_test_mpi.h: MPI start-up through
 * mpx_init(), identical CUnit registration on every rank, output on rank 0
 * only, a failure count reduced over all ranks, and a watchdog.
 */
#include "mpx_test_mpi.h"
#include "testsel.h"

#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int rank_ = -1;
static int size_ = 0;
static char watchdog_msg[128];
static size_t watchdog_len;

int mt_rank(void) {
  return rank_;
}

int mt_size(void) {
  return size_;
}

int mt_is_root(void) {
  return rank_ == 0;
}

/* Reports the hang on stderr (whichever rank noticed it) and ends the
 * process; mpirun then tears the whole job down. */
static void watchdog(int sig) {
  ssize_t r = write(2, watchdog_msg, watchdog_len);
  (void)r;
  (void)sig;
  _exit(3);
}

void mt_init(int *argc, char ***argv) {
  int rc = mpx_init(argc, argv);
  if (rc != 0) {
    fprintf(stderr, "mpx_init failed: %s (%s)\n", mpx_err_name(rc),
            mpx_last_error());
    exit(2);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

int mt_allok(int ok, const char *what) {
  int mine = ok ? 1 : 0, res = 1;
  int *all = NULL;
  if (mt_is_root()) {
    all = malloc((size_t)size_ * sizeof *all);
    if (!all)
      abort();
  }
  MPI_Gather(&mine, 1, MPI_INT, all, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (mt_is_root()) {
    for (int r = 0; r < size_; r++) {
      if (!all[r]) {
        if (res)
          printf("\n    [%s] does not hold on rank(s):", what);
        printf(" %d", r);
        res = 0;
      }
    }
    if (!res)
      printf("\n");
    fflush(stdout);
    free(all);
  }
  MPI_Bcast(&res, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return res;
}

/* Registers the suites' tests that MPX_TEST_ONLY and MPX_TEST_SKIP select
 * (testsel.h; every rank sees the launcher's environment, so every rank
 * registers the same); returns 0 or 1 when CUnit failed. */
static int add_suites(const mt_suite *suites) {
  if (CU_initialize_registry() != CUE_SUCCESS)
    return 1;
  for (const mt_suite *s = suites; s->name; s++) {
    CU_pSuite cs = CU_add_suite(s->name, NULL, NULL);
    if (!cs)
      return 1;
    for (const mt_test *t = s->tests; t->name; t++)
      if (ts_selected(t->name) && !CU_add_test(cs, t->name, t->fn))
        return 1;
  }
  return 0;
}

int mt_run_on_root(void) {
  int rank = 0, failures = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
  }
  MPI_Bcast(&failures, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return failures;
}

void mt_watchdog(unsigned watchdog_s) {
  const char *env = getenv("MPX_TEST_WATCHDOG");
  if (env && *env)
    watchdog_s = (unsigned)strtoul(env, NULL, 10);
  if (watchdog_s) {
    int n = snprintf(watchdog_msg, sizeof watchdog_msg,
                     "\nrank %d: watchdog expired after %u s, the test "
                     "program hung (deadlock?)\n",
                     rank_, watchdog_s);
    watchdog_len = n > 0 ? (size_t)n : 0;
    signal(SIGALRM, watchdog);
    alarm(watchdog_s);
  }
}

int mt_run(const mt_suite *suites, unsigned watchdog_s) {
  mt_watchdog(watchdog_s);

  /* A rank whose registration failed must not start the collective test
   * bodies alone, so the ranks agree first. */
  int cu_err = add_suites(suites), any_cu_err = 0;
  MPI_Allreduce(&cu_err, &any_cu_err, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  unsigned nfail = 0;
  if (!any_cu_err) {
    if (mt_is_root()) {
      CU_basic_set_mode(CU_BRM_VERBOSE);
      CU_basic_run_tests();
    } else {
      /* The core runner has no output handlers, so it prints nothing. */
      CU_run_all_tests();
    }
    nfail = CU_get_number_of_failures();
  }
  CU_cleanup_registry();
  alarm(0);

  unsigned long mine = nfail, total = 0;
  MPI_Allreduce(&mine, &total, 1, MPI_UNSIGNED_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (mt_is_root()) {
    if (any_cu_err)
      printf("\nmpi: CUnit failed to register the suites on some rank\n");
    printf("\nmpi: %d rank(s), %lu assertion failure(s) in all (%lu on the "
           "root)\n",
           size_, total, mine);
    fflush(stdout);
  }
  int frc = mpx_finalize();
  if (frc != 0 && mt_is_root())
    fprintf(stderr, "mpx_finalize failed: %s\n", mpx_err_name(frc));
  if (any_cu_err)
    return 2;
  return total ? 1 : 0;
}

/* The pool of the last mt_pool_begin() (root), for mt_wait_count(). */
static mpx_executor *current;

mpx_executor *mt_pool_begin(MPI_Comm comm, const mpx_executor_options *opts,
                            int *ok) {
  int crank = -1;
  MPI_Comm_rank(comm, &crank);
  int root = opts ? opts->root : 0;
  mpx_executor *ex = NULL;
  int rc = mpx_executor_create(comm, opts, &ex);
  *ok = rc == 0 && (ex != NULL) == (crank == root);
  current = ex;
  if (rc != 0 && mt_is_root()) {
    printf("\n    mpx_executor_create: %s: %s\n", mpx_err_name(rc),
           mpx_last_error());
    fflush(stdout);
  }
  return ex;
}

void mt_pool_end(mpx_executor **ex, int ok) {
  current = NULL;
  if (*ex) {
    int src = mpx_executor_shutdown(*ex, 1, 0);
    int drc = mpx_executor_destroy(ex);
    ok = ok && src == 0 && drc == 0 && *ex == NULL;
  }
  MT_ASSERT_ALL(ok);
}

double mt_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void mt_sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

uint64_t mt_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

int mt_caller_mode(void) {
  return current && mpx_executor_progress_mode(current) == MPX_PROGRESS_CALLER;
}

int mt_wait_count(atomic_int *counter, int target, double timeout) {
  double end = mt_now() + timeout;
  while (atomic_load(counter) < target) {
    if (mt_now() > end)
      return 0;
    if (current)
      mpx_executor_progress(current); /* 0 at once with a manager thread */
    mt_sleep_ms(1);
  }
  return 1;
}

int mt_contains(const char *s, const char *sub) {
  return s && sub && strstr(s, sub) != NULL;
}

int mt_task_nap(mpx_task_ctx *ctx, const void *arg, size_t len) {
  int ms;
  if (len != sizeof ms)
    return mpx_task_fail(ctx, "nap wants an int, got %zu bytes", len);
  memcpy(&ms, arg, sizeof ms);
  mt_sleep_ms((unsigned)ms);
  return mpx_task_return(ctx, &ms, sizeof ms);
}

int mt_nap_once(mpx_executor *ex, int ms) {
  mpx_future *f = NULL;
  int ok = mpx_submit(ex, "nap", &ms, sizeof ms, &f) == 0 &&
           mpx_future_exception(f, MPX_FOREVER) == 0;
  mpx_future_destroy(&f);
  return ok;
}
