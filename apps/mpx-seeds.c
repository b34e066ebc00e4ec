#define _POSIX_C_SOURCE 200809L
/*
 * mpx-seeds -- the three examples of the seed blog posts, in C over MPI:
 *  1. download_flag(n) sleeps (5 - n) time units and returns n; submitted
 *     for n = 1, 2, 3 and collected with as_completed, so with three or
 *     more workers the completion order is 3, 2, 1;
 *  2. loiter(n) sleeps n units and returns 10 n; submitted for n = 0..4
 *     and collected in input order (executor.map's contract);
 *  3. test(n) fails on even n (the seed divides by zero) and returns 2 n
 *     otherwise; done-callbacks print the error or the result, as the
 *     seed's call_back(future) does.
 * Run as `mpirun -n 4 mpx-seeds` (one root and three workers) or alone.
 * --unit S sets the time unit in seconds (default 0.25; the seeds use 1).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpx.h"

static double unit = 0.25;
static double t0;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Sleeps n time units of u seconds. Tasks take u from their argument and
 * never touch the root's globals: with one rank they run on a thread of
 * the root process itself. */
static void sleep_units(double n, double u) {
  double s = n * u;
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

/* Tasks take an int64 n and the time unit as their argument. */
typedef struct arg_t {
  int64_t n;
  double unit;
} arg_t;

static int download_flag(mpx_task_ctx *ctx, const void *arg, size_t len) {
  if (len != sizeof(arg_t))
    return mpx_task_fail(ctx, "expected %zu bytes, got %zu", sizeof(arg_t),
                         len);
  arg_t a;
  memcpy(&a, arg, sizeof a);
  sleep_units((double)(5 - a.n), a.unit);
  return mpx_task_return(ctx, &a.n, sizeof a.n);
}

static int loiter(mpx_task_ctx *ctx, const void *arg, size_t len) {
  if (len != sizeof(arg_t))
    return mpx_task_fail(ctx, "expected %zu bytes, got %zu", sizeof(arg_t),
                         len);
  arg_t a;
  memcpy(&a, arg, sizeof a);
  sleep_units((double)a.n, a.unit);
  int64_t r = a.n * 10;
  return mpx_task_return(ctx, &r, sizeof r);
}

static int test(mpx_task_ctx *ctx, const void *arg, size_t len) {
  if (len != sizeof(arg_t))
    return mpx_task_fail(ctx, "expected %zu bytes, got %zu", sizeof(arg_t),
                         len);
  arg_t a;
  memcpy(&a, arg, sizeof a);
  if (a.n % 2 == 0)
    return mpx_task_fail(ctx, "division by zero (n = %lld)", (long long)a.n);
  int64_t r = a.n * 2;
  return mpx_task_return(ctx, &r, sizeof r);
}

static void display(const char *fmt, int64_t a, int64_t b) {
  printf("[%6.2fs] ", now() - t0);
  printf(fmt, (long long)a, (long long)b);
  printf("\n");
  fflush(stdout);
}

static int64_t result_of(mpx_future *f) {
  const void *p;
  size_t len;
  int64_t v = -1;
  if (mpx_future_result(f, MPX_FOREVER, &p, &len) == 0 && len == sizeof v)
    memcpy(&v, p, sizeof v);
  return v;
}

static atomic_int callbacks_run;

/* The seed's call_back(future): print the error or the result. */
static void call_back(mpx_future *f, void *arg) {
  int64_t n = (int64_t)(intptr_t)arg;
  int rc = mpx_future_exception(f, 0);
  if (rc != 0)
    printf("  test(%lld): %s: %s\n", (long long)n, mpx_err_name(rc),
           mpx_future_error(f));
  else
    printf("  test(%lld) = %lld\n", (long long)n, (long long)result_of(f));
  fflush(stdout);
  atomic_fetch_add(&callbacks_run, 1);
}

static int submit_n(mpx_executor *ex, const char *task, int64_t n,
                    mpx_future **f) {
  arg_t a = {n, unit};
  int rc = mpx_submit(ex, task, &a, sizeof a, f);
  if (rc)
    fprintf(stderr, "mpx-seeds: submit %s(%lld): %s (%s)\n", task, (long long)n,
            mpx_strerror(rc), mpx_last_error());
  return rc;
}

static int run_root(mpx_executor *ex) {
  int rc = 0;
  printf("mpx-seeds: %d worker(s), time unit %.3fs\n", mpx_executor_workers(ex),
         unit);

  /* 1. download_flag + as_completed */
  printf("\n== 1. download_flag(1..3) sleeps 5-n units; as_completed ==\n");
  t0 = now();
  mpx_future *fs[3];
  for (int i = 0; i < 3; i++)
    if ((rc = submit_n(ex, "download_flag", i + 1, &fs[i])) != 0)
      return rc;
  mpx_as_completed *it;
  if ((rc = mpx_as_completed_create(fs, 3, MPX_FOREVER, &it)) != 0)
    return rc;
  mpx_future *f;
  printf("done_list = [");
  int first = 1;
  while (mpx_as_completed_next(it, &f) == 0) {
    printf("%s%lld", first ? "" : ", ", (long long)result_of(f));
    fflush(stdout);
    first = 0;
  }
  printf("]  (after %.2fs)\n", now() - t0);
  mpx_as_completed_destroy(&it);
  for (int i = 0; i < 3; i++)
    mpx_future_destroy(&fs[i]);

  /* 2. loiter, results in input order */
  printf("\n== 2. loiter(0..4) sleeps n units; results in input order ==\n");
  t0 = now();
  mpx_future *ls[5];
  for (int i = 0; i < 5; i++)
    if ((rc = submit_n(ex, "loiter", i, &ls[i])) != 0)
      return rc;
  display("submitted %lld loiter calls%.0lld", 5, 0);
  for (int i = 0; i < 5; i++) {
    int64_t v = result_of(ls[i]);
    display("result %lld: %lld", i, v);
    mpx_future_destroy(&ls[i]);
  }

  /* 3. test with done-callbacks catching the errors */
  printf("\n== 3. test(0..9) fails on even n; done-callbacks report ==\n");
  mpx_future *ts[10];
  for (int i = 0; i < 10; i++) {
    if ((rc = submit_n(ex, "test", i, &ts[i])) != 0)
      return rc;
    mpx_future_add_done_callback(ts[i], call_back, (void *)(intptr_t)i);
  }
  mpx_wait(ts, 10, MPX_ALL_COMPLETED, MPX_FOREVER, NULL, NULL);
  for (int i = 0; i < 10; i++)
    mpx_future_destroy(&ts[i]);
  return 0;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--unit") == 0 && i + 1 < argc) {
      unit = atof(argv[++i]);
    } else {
      fprintf(stderr, "usage: mpx-seeds [--unit SECONDS]\n");
      return 2;
    }
  }
  int rc = mpx_init(&argc, &argv);
  if (rc) {
    fprintf(stderr, "mpx-seeds: %s\n", mpx_last_error());
    return 1;
  }
  mpx_register("download_flag", download_flag);
  mpx_register("loiter", loiter);
  mpx_register("test", test);
  mpx_executor *ex = NULL;
  rc = mpx_executor_create(MPI_COMM_WORLD, NULL, &ex);
  if (rc) {
    fprintf(stderr, "mpx-seeds: %s: %s\n", mpx_err_name(rc), mpx_last_error());
    mpx_finalize();
    return 1;
  }
  if (ex) {
    rc = run_root(ex);
    mpx_executor_shutdown(ex, 1, rc != 0);
    mpx_executor_destroy(&ex);
    printf("\n%d callbacks ran; pool shut down cleanly\n",
           atomic_load(&callbacks_run));
  }
  return mpx_finalize_status(rc ? 1 : 0);
}
