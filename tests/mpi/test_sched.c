/*
 * test_sched.c -- scheduling as Python's pools do it: uneven tasks balance
 * like a shared queue, finished results are not held back behind the next
 * task of their batch, a shutdown with cancel_futures cancels calls sent
 * but not started, and the manager sleeps while a backlog waits for
 * credits.
 *
 * The tasks are naps, so the makespans do not depend on how many cores the
 * machine has; each is compared with a simulation of a shared queue (each
 * task, in submission order, goes to the worker that frees first) within
 * 0.3 s, as the pools the design follows would achieve.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpx_test_mpi.h"

#define TOL 0.3

/* Sleeps for the double of seconds it is given. */
static int task_nap(mpx_task_ctx *ctx, const void *arg, size_t len) {
  double s;
  if (len != sizeof s)
    return mpx_task_fail(ctx, "nap wants a double");
  memcpy(&s, arg, sizeof s);
  struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
  while (nanosleep(&ts, &ts) != 0)
    ;
  return 0;
}

/* The completion times of naps[0..n) on w workers fed from one shared
 * queue in submission order, sorted ascending into done[]. Returns the
 * makespan. */
static double shared_queue(const double *naps, int n, int w, double *done) {
  double free_at[64] = {0};
  for (int i = 0; i < n; i++) {
    int best = 0;
    for (int k = 1; k < w; k++)
      if (free_at[k] < free_at[best])
        best = k;
    free_at[best] += naps[i];
    done[i] = free_at[best];
  }
  for (int i = 1; i < n; i++) /* insertion sort: n is small */
    for (int j = i; j > 0 && done[j] < done[j - 1]; j--) {
      double t = done[j];
      done[j] = done[j - 1];
      done[j - 1] = t;
    }
  return done[n - 1];
}

/* Submits the naps in order, waits for them in completion order and stores
 * the completion times (seconds since the first submit) in got[]. Returns
 * 1 when every nap succeeded. */
static int run_naps(mpx_executor *ex, const double *naps, int n, double *got) {
  mpx_future *fs[64];
  double t0 = mt_now();
  int ok = 1;
  for (int i = 0; i < n; i++)
    ok &= mpx_submit(ex, "nap", &naps[i], sizeof naps[i], &fs[i]) == 0;
  if (!ok)
    return 0;
  mpx_as_completed *it = NULL;
  ok &= mpx_as_completed_create(fs, (size_t)n, MPX_FOREVER, &it) == 0;
  mpx_future *f;
  int k = 0;
  while (ok && mpx_as_completed_next(it, &f) == 0) {
    got[k++] = mt_now() - t0;
    ok &= mpx_future_exception(f, 0) == 0;
  }
  mpx_as_completed_destroy(&it);
  for (int i = 0; i < n; i++)
    mpx_future_destroy(&fs[i]);
  return ok && k == n;
}

/* Checks each completion time against the shared queue's. */
static void check_times(const double *naps, int n, int w, const double *got,
                        const char *what) {
  double want[64];
  shared_queue(naps, n, w, want);
  for (int i = 0; i < n; i++) {
    if (fabs(got[i] - want[i]) > TOL) {
      printf("\n  %s: completion %d at %.2f s, a shared queue gives %.2f s\n",
             what, i + 1, got[i], want[i]);
      CU_FAIL("a completion time differs from a shared queue's");
      return;
    }
  }
}

/* Six naps of 3,1,1,1,1,1 units at the default prefetch: the long one must
 * not hold a queued call while other workers idle. */
static void test_uneven(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    int w = mpx_executor_workers(ex);
    double u = w >= 3 ? 1.0 : 0.25; /* one worker: every order is alike */
    double naps[6] = {3 * u, u, u, u, u, u}, got[6];
    MT_ASSERT(run_naps(ex, naps, 6, got));
    check_times(naps, 6, w, got, "uneven naps");
  }
  mt_pool_end(&ex, ok);
}

/* Six one-second naps, with the default prefetch and with prefetch 1:
 * each result leaves its worker when its task ends, not when the batch
 * does. */
static void test_prompt_results(void) {
  for (int pf = 2; pf >= 1; pf--) {
    mpx_executor_options o;
    mpx_executor_options_init(&o);
    o.prefetch = pf;
    int ok;
    mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, &o, &ok);
    if (ex) {
      int w = mpx_executor_workers(ex);
      double naps[6] = {1, 1, 1, 1, 1, 1}, got[6];
      MT_ASSERT(run_naps(ex, naps, 6, got));
      check_times(naps, 6, w, got, pf == 1 ? "prefetch 1" : "prefetch 2");
    }
    mt_pool_end(&ex, ok);
  }
}

/* Twelve naps of 0.6 s; a shutdown with cancel_futures 0.25 s in lets each
 * worker finish the one it runs and cancels the rest, including the calls
 * already sent to a worker but not started. */
static void test_cancel_sent(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    int w = mpx_executor_workers(ex);
    mpx_future *fs[12];
    double nap = 0.6, t0 = mt_now();
    int sub = 1;
    for (int i = 0; i < 12; i++)
      sub &= mpx_submit(ex, "nap", &nap, sizeof nap, &fs[i]) == 0;
    MT_ASSERT(sub);
    mt_sleep_ms(250);
    MT_ASSERT(mpx_executor_shutdown(ex, 1, 1) == 0);
    double took = mt_now() - t0;
    int finished = 0, cancelled = 0;
    for (int i = 0; sub && i < 12; i++) {
      mpx_state st = mpx_future_state(fs[i]);
      finished += st == MPX_FINISHED && mpx_future_exception(fs[i], 0) == 0;
      cancelled += st == MPX_CANCELLED &&
                   mpx_future_exception(fs[i], 0) == MPX_ECANCELED;
      mpx_future_destroy(&fs[i]);
    }
    if (finished != w || cancelled != 12 - w || took > nap + TOL)
      printf("\n  cancel: %d finished, %d cancelled of 12 on %d workers in "
             "%.2f s\n",
             finished, cancelled, w, took);
    MT_ASSERT(finished == w);
    MT_ASSERT(cancelled == 12 - w);
    MT_ASSERT(took <= nap + TOL);
  }
  mt_pool_end(&ex, ok);
}

/* 200 naps of 10 ms: while the backlog waits for credits the root's
 * manager sleeps. The root's whole process CPU time is measured (its main
 * thread blocks in as_completed), and a busy loop costs it 40-80% of a
 * core where sleeping costs a few percent; the bound sits between. */
static void test_backlog_sleeps(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex && mpx_executor_workers(ex) > 0) {
    static double naps[200], got[200];
    static mpx_future *fs[200];
    for (int i = 0; i < 200; i++)
      naps[i] = 0.01;
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    double t0 = mt_now();
    int sub = 1;
    for (int i = 0; i < 200; i++)
      sub &= mpx_submit(ex, "nap", &naps[i], sizeof naps[i], &fs[i]) == 0;
    MT_ASSERT(sub);
    MT_ASSERT(sub && mpx_wait(fs, 200, MPX_ALL_COMPLETED, MPX_FOREVER, NULL,
                              NULL) == 0);
    double wall = mt_now() - t0;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu = (double)(c1.tv_sec - c0.tv_sec) +
                 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);
    printf("\n  root CPU %.3f s over %.2f s of 10 ms naps (%.1f%% of a "
           "core)\n",
           cpu, wall, 100 * cpu / wall);
    MT_ASSERT(cpu <= 0.25 * wall);
    for (int i = 0; i < 200; i++)
      mpx_future_destroy(&fs[i]);
    (void)got;
  }
  mt_pool_end(&ex, ok);
}

static const mt_test sched[] = {{"uneven", test_uneven},
                                {"prompt_results", test_prompt_results},
                                {"cancel_sent", test_cancel_sent},
                                {"backlog_sleeps", test_backlog_sleeps},
                                {NULL, NULL}};

static const mt_suite suites[] = {{"sched", sched}, {NULL, NULL}};

int main(int argc, char **argv) {
  mt_init(&argc, &argv);
  if (mpx_register("nap", task_nap) != 0)
    return 2;
  return mt_run(suites, 100);
}
