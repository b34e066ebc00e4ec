#define _POSIX_C_SOURCE 200809L
/*
 * mpx-bench -- mpx's benchmark workloads, one JSON line per run on the
 * root (scripts/bench.sh runs them beside the Python peers):
 *   tiny    --tasks N        N calls of x*x via submit + as_completed
 *   latency --tasks N        sequential submit -> result, p50/p99 per call
 *   spin    --tasks N --us U tasks burning U us of CPU; efficiency
 *                            = N*U / (workers * wall)
 *   noop                     start, one task, shut down (time it whole)
 *   idle    --seconds S      CPU share of an idle pool, root and workers
 * Run as `mpirun -n 3 mpx-bench WORKLOAD ...` (1 root + 2 workers).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "mpx.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
         (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static int square(mpx_task_ctx *ctx, const void *arg, size_t len) {
  if (len != sizeof(uint64_t))
    return mpx_task_fail(ctx, "square needs 8 bytes, got %zu", len);
  uint64_t x;
  memcpy(&x, arg, sizeof x);
  x *= x;
  return mpx_task_return(ctx, &x, sizeof x);
}

/* Burns the given microseconds of this thread's CPU time. */
static int spin(mpx_task_ctx *ctx, const void *arg, size_t len) {
  if (len != sizeof(uint64_t))
    return mpx_task_fail(ctx, "spin needs 8 bytes, got %zu", len);
  uint64_t us;
  memcpy(&us, arg, sizeof us);
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  double end =
      (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec + 1e-6 * (double)us;
  volatile uint64_t sink = 0;
  for (;;) {
    for (int i = 0; i < 200; i++)
      sink += (uint64_t)i;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    if ((double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec >= end)
      break;
  }
  return mpx_task_return(ctx, &us, sizeof us);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "mpx-bench: %s: %s (%s)\n", what, mpx_strerror(rc),
          mpx_last_error());
  MPI_Abort(MPI_COMM_WORLD, 1);
}

static mpx_future *submit_u64(mpx_executor *ex, const char *task, uint64_t v) {
  mpx_future *f;
  int rc = mpx_submit(ex, task, &v, sizeof v, &f);
  if (rc)
    die("submit", rc);
  return f;
}

/* Prints the JSON line every workload reports. */
static void report(const char *workload, int ranks, int workers, long tasks,
                   double seconds, double p50, double p99, double eff) {
  char p50s[32] = "null", p99s[32] = "null", effs[32] = "null";
  if (p50 >= 0)
    snprintf(p50s, sizeof p50s, "%.2f", p50);
  if (p99 >= 0)
    snprintf(p99s, sizeof p99s, "%.2f", p99);
  if (eff >= 0)
    snprintf(effs, sizeof effs, "%.4f", eff);
  printf("{\"workload\":\"%s\",\"ranks\":%d,\"workers\":%d,\"tasks\":%ld,"
         "\"seconds\":%.6f,\"tasks_per_s\":%.1f,\"p50_us\":%s,\"p99_us\":%s,"
         "\"efficiency\":%s}\n",
         workload, ranks, workers, tasks, seconds,
         seconds > 0 ? (double)tasks / seconds : 0.0, p50s, p99s, effs);
  fflush(stdout);
}

static void warm_up(mpx_executor *ex) {
  int n = 4 * mpx_executor_workers(ex);
  mpx_future **fs = calloc((size_t)n, sizeof *fs);
  for (int i = 0; i < n; i++)
    fs[i] = submit_u64(ex, "square", (uint64_t)i);
  mpx_wait(fs, (size_t)n, MPX_ALL_COMPLETED, MPX_FOREVER, NULL, NULL);
  for (int i = 0; i < n; i++)
    mpx_future_destroy(&fs[i]);
  free(fs);
}

static void run_tiny(mpx_executor *ex, int ranks, long n) {
  mpx_future **fs = malloc((size_t)n * sizeof *fs);
  warm_up(ex);
  double t = now();
  for (long i = 0; i < n; i++)
    fs[i] = submit_u64(ex, "square", (uint64_t)i);
  mpx_as_completed *it;
  int rc = mpx_as_completed_create(fs, (size_t)n, MPX_FOREVER, &it);
  if (rc)
    die("as_completed", rc);
  mpx_future *f;
  uint64_t sum = 0;
  long got = 0;
  while ((rc = mpx_as_completed_next(it, &f)) == 0) {
    const void *p;
    size_t len;
    if ((rc = mpx_future_result(f, 0, &p, &len)) != 0)
      die("result", rc);
    uint64_t v;
    memcpy(&v, p, sizeof v);
    sum += v;
    got++;
  }
  double dt = now() - t;
  mpx_as_completed_destroy(&it);
  uint64_t want = 0;
  for (long i = 0; i < n; i++)
    want += (uint64_t)i * (uint64_t)i;
  if (got != n || sum != want) {
    fprintf(stderr, "mpx-bench: tiny: wrong results (%ld of %ld)\n", got, n);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  for (long i = 0; i < n; i++)
    mpx_future_destroy(&fs[i]);
  free(fs);
  report("tiny", ranks, mpx_executor_workers(ex), n, dt, -1, -1, -1);
}

static void run_latency(mpx_executor *ex, int ranks, long n) {
  double *lat = malloc((size_t)n * sizeof *lat);
  warm_up(ex);
  double t = now();
  for (long i = 0; i < n; i++) {
    double a = now();
    mpx_future *f = submit_u64(ex, "square", (uint64_t)i);
    const void *p;
    int rc = mpx_future_result(f, MPX_FOREVER, &p, NULL);
    if (rc)
      die("result", rc);
    lat[i] = (now() - a) * 1e6;
    mpx_future_destroy(&f);
  }
  double dt = now() - t;
  qsort(lat, (size_t)n, sizeof *lat, cmp_double);
  report("latency", ranks, mpx_executor_workers(ex), n, dt, lat[n / 2],
         lat[(size_t)((double)n * 0.99)], -1);
  free(lat);
}

static void run_spin(mpx_executor *ex, int ranks, long n, long us) {
  mpx_future **fs = malloc((size_t)n * sizeof *fs);
  warm_up(ex);
  double t = now();
  for (long i = 0; i < n; i++)
    fs[i] = submit_u64(ex, "spin", (uint64_t)us);
  mpx_wait(fs, (size_t)n, MPX_ALL_COMPLETED, MPX_FOREVER, NULL, NULL);
  double dt = now() - t;
  for (long i = 0; i < n; i++) {
    if (mpx_future_exception(fs[i], 0) != 0)
      die("spin task", mpx_future_exception(fs[i], 0));
    mpx_future_destroy(&fs[i]);
  }
  free(fs);
  int w = mpx_executor_workers(ex);
  report("spin", ranks, w, n, dt, -1, -1,
         (double)n * (double)us * 1e-6 / ((double)w * dt));
}

static void usage(void) {
  fprintf(stderr, "usage: mpx-bench tiny|latency|noop [--tasks N]\n"
                  "       mpx-bench spin [--tasks N] [--us U]\n"
                  "       mpx-bench idle [--seconds S]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2)
    usage();
  const char *wl = argv[1];
  long tasks = 10000, us = 1000;
  double seconds = 2.0;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--tasks") == 0 && i + 1 < argc)
      tasks = atol(argv[++i]);
    else if (strcmp(argv[i], "--us") == 0 && i + 1 < argc)
      us = atol(argv[++i]);
    else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
      seconds = atof(argv[++i]);
    else
      usage();
  }
  if (tasks < 1 || us < 0 || seconds < 0)
    usage();
  if (strcmp(wl, "tiny") && strcmp(wl, "latency") && strcmp(wl, "spin") &&
      strcmp(wl, "noop") && strcmp(wl, "idle"))
    usage();
  double t_start = now();
  int rc = mpx_init(&argc, &argv);
  if (rc) {
    fprintf(stderr, "mpx-bench: %s\n", mpx_last_error());
    return 1;
  }
  int ranks, rank;
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  mpx_register("square", square);
  mpx_register("spin", spin);
  double cpu0 = cpu_seconds(), wall0 = now();
  mpx_executor *ex = NULL;
  if ((rc = mpx_executor_create(MPI_COMM_WORLD, NULL, &ex)) != 0)
    die("create", rc);
  double root_share = 0;
  if (ex) {
    if (!strcmp(wl, "tiny")) {
      run_tiny(ex, ranks, tasks);
    } else if (!strcmp(wl, "latency")) {
      run_latency(ex, ranks, tasks);
    } else if (!strcmp(wl, "spin")) {
      run_spin(ex, ranks, tasks, us);
    } else if (!strcmp(wl, "noop")) {
      mpx_future *f = submit_u64(ex, "square", 3);
      if ((rc = mpx_future_wait(f, MPX_FOREVER)) != 0)
        die("noop", rc);
      mpx_future_destroy(&f);
    } else {
      warm_up(ex);
      double c = cpu_seconds(), w = now();
      struct timespec ts = {(time_t)seconds,
                            (long)((seconds - (double)(time_t)seconds) * 1e9)};
      nanosleep(&ts, NULL);
      root_share = (cpu_seconds() - c) / (now() - w);
    }
    mpx_executor_shutdown(ex, 1, 0);
    mpx_executor_destroy(&ex);
  }
  /* A worker's share covers its whole time in the pool, idle wait
   * included; the root's covers only the idle sleep. */
  double my_share = (cpu_seconds() - cpu0) / (now() - wall0);
  double sum_share = 0;
  MPI_Reduce(rank == 0 ? &root_share : &my_share, &sum_share, 1, MPI_DOUBLE,
             MPI_SUM, 0, MPI_COMM_WORLD);
  if (rank == 0 && !strcmp(wl, "idle")) {
    double worker_share =
        ranks > 1 ? (sum_share - root_share) / (ranks - 1) : 0.0;
    printf("{\"workload\":\"idle\",\"ranks\":%d,\"workers\":%d,\"tasks\":0,"
           "\"seconds\":%.3f,\"tasks_per_s\":null,\"p50_us\":null,"
           "\"p99_us\":null,\"efficiency\":null,\"root_cpu_share\":%.4f,"
           "\"worker_cpu_share\":%.4f}\n",
           ranks, ranks > 1 ? ranks - 1 : 1, seconds, root_share, worker_share);
  }
  if (rank == 0 && !strcmp(wl, "noop"))
    report("noop", ranks, ranks > 1 ? ranks - 1 : 1, 1, now() - t_start, -1, -1,
           -1);
  mpx_finalize();
  return 0;
}
