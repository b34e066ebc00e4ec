#define _POSIX_C_SOURCE 200809L
/*
 * mpx-bench -- mpx's benchmark workloads, one JSON line per run on the
 * root (scripts/bench.py runs them beside the Python peers):
 *   tiny    --tasks N        N calls of x*x via submit + as_completed
 *   latency --tasks N        sequential submit -> result, p50/p99 per call
 *   spin    --tasks N --us U tasks burning U us of CPU; efficiency
 *                            = N*U / (workers * wall)
 *   noop                     start, one task, shut down (time it whole)
 *   idle    --seconds S      CPU share of an idle pool, root and workers
 *   w4      --rows N --parts K --out DIR [--sync 0|1] [--mode job|map]
 *           [--keep]         the seed's W4: N indices (200000) split into
 *                            K parts (8) by array_split, task "w4_rows" per
 *                            part; mode job (default): mpx_job_run writes
 *                            DIR/w4-mpx.h5 (MPX_JOB_OVERWRITE, no
 *                            compression, option sync as given, default 1),
 *                            timed to the end of the job; mode map: the same
 *                            parts through mpx_map_create_range, results
 * dropped (compute + transfer only). The file and its .mpxrec are removed
 * afterwards unless --keep. h5write (same options)   w4 with defaults N =
 * 4194304, K = 64: a 1 GiB feature dataset; reports "gib_per_s" (file bytes /
 * seconds) to compare with dd
 *           --task zero_rows (w4, h5write) the parts run "zero_rows"
 *                            instead of "w4_rows": the same arrays, all
 *                            zeros, nothing computed (the write path alone)
 *   map     --tasks N --chunksize C [--us U] [--inputs list|array]
 *                            N calls of x*x through mpx_map_create
 *                            (ordered, every result read with
 *                            mpx_map_next); with --us, of spin U us
 *                            (efficiency as spin's); --inputs array maps
 *                            the values as one array of uint64
 *                            (mpx_map_create_array) instead of a list of
 *                            args[] and lens[]
 *   rss     --tasks N --chunksize C   as map, the inputs from a producer
 *                            (mpx_map_create_producer, C default 256);
 *                            reports the root's peak RSS (ru_maxrss)
 *   faults  --tasks N --crash-rate P --isolation process
 *           [--task-timeout S] [--retries R] [--deadline S]
 *           [--crash-cost K]  a crash storm (scripts/bench_peers.py faults):
 *                            N tasks (10000) submitted one future each;
 *                            task i's fate is fixed by h = ((i * 2654435761)
 *                            mod 2^32) / 2^32 exactly as bench_peers.py's
 *                            fault_fate: h < P/3 raise(SIGSEGV), < 2P/3
 *                            abort(), < 5P/6 exit(0), < P sleep 0.2 s (a
 *                            hang for a task timeout below 0.2 s), else it
 *                            returns i*i (P default 0.03). Every outcome is
 *                            collected against the deadline (120 s) from
 *                            the first submit: completed (status 0, i*i),
 *                            crashed (MPX_ECRASHED, MPX_EEXIT), timed_out
 *                            (MPX_ETIMELIMIT), lost (no outcome by the
 *                            deadline), wrong (a wrong result or any other
 *                            code); "unexpected" counts outcomes other than
 *                            the fate implies. Then pool_alive: one fresh
 *                            task on the same pool returns i*i within 10 s.
 *                            Then the crash cost, on the same pool, one task
 *                            in flight at a time (submit, wait for the
 *                            result, submit the next): K tasks (200)
 *                            alternately a segfault and a tiny x*x, as K/2
 *                            (crash, tiny) pairs, interleaved with K/2
 *                            (tiny, tiny) pairs; a pair is timed from the
 *                            first submit to the second result, and
 *                            crash_cost_ms = median(crash pair) -
 *                            median(tiny pair): what a crash adds, from the
 *                            crash to the next task done, over a tiny task
 *                            in its place (death seen, future failed, task
 *                            process forked again). With 2+ workers the
 *                            next task may land on the other rank, which
 *                            has its process already: the pairs whose tiny
 *                            ran on the crashed rank are also reported
 *                            alone (crash_cost_same_rank_ms). A crash also
 *                            slows the calls after it (the pool's idle
 *                            back-off), which the interleaved tiny pairs
 *                            share, so K/2 (tiny, tiny) pairs are first run
 *                            on their own, before any crash of the phase:
 *                            crash_cost_vs_clean_ms = median(crash pair) -
 *                            median(clean tiny pair) counts that too.
 *                            Medians and quartiles of each kind are
 *                            reported. --crash-cost 0 skips the phase.
 *                            Needs isolation (without it the first crash
 *                            ends the MPI job).
 * Every workload takes --isolation none|process (the executor option
 * isolation; default none, or MPX_ISOLATION), --processes N (task
 * processes of a one-rank pool), --task-timeout S, --retries R and
 * --progress thread|caller|auto (who moves the pool on the root: its
 * manager thread, or the calls that wait; default auto, or MPX_PROGRESS);
 * each JSON line says "isolation" and "progress".
 * Run as `mpirun -n 3 mpx-bench WORKLOAD ...` (1 root + 2 workers).
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mpx.h"
#include "w4.h"

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
#ifdef MPX_SMPI
  /* Simulated: U us of this rank's simulated CPU, exactly (the loop below
   * would read the simulated clock thousands of times per task). */
  smpi_execute_benched(1e-6 * (double)us);
  return mpx_task_return(ctx, &us, sizeof us);
#endif
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

/* The arrays of w4_rows, left as mpx_task_array hands them out (zeroed):
 * the job's write path without the computing. */
static int zero_rows(mpx_task_ctx *ctx, const void *arg, size_t len) {
  int64_t b[2];
  int rc = w4_part(ctx, "zero_rows", arg, len, b);
  if (rc)
    return rc;
  size_t m = (size_t)(b[1] - b[0]);
  if (!mpx_task_array(ctx, "feature", MPX_FLOAT32, m, W4_WIDTH) ||
      !mpx_task_array(ctx, "target", MPX_INT32, m, 1))
    return mpx_task_fail(ctx, "zero_rows: no memory for %zu rows", m);
  return 0;
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

/* The pool's isolation and progress mode, as the JSON lines report them. */
static const char *g_isolation = "none";
static const char *g_progress = "thread";
static int g_groups; /* sub-managers of the pool (MPX_GROUP) */

/* Prints the JSON line every workload reports; extra (may be "") is
 * appended inside the object and must start with a comma. */
static void report_x(const char *workload, int ranks, int workers, long tasks,
                     double seconds, double p50, double p99, double eff,
                     const char *extra) {
  char p50s[32] = "null", p99s[32] = "null", effs[32] = "null";
  if (p50 >= 0)
    snprintf(p50s, sizeof p50s, "%.2f", p50);
  if (p99 >= 0)
    snprintf(p99s, sizeof p99s, "%.2f", p99);
  if (eff >= 0)
    snprintf(effs, sizeof effs, "%.4f", eff);
  printf("{\"workload\":\"%s\",\"ranks\":%d,\"workers\":%d,\"tasks\":%ld,"
         "\"seconds\":%.6f,\"tasks_per_s\":%.1f,\"p50_us\":%s,\"p99_us\":%s,"
         "\"efficiency\":%s,\"isolation\":\"%s\",\"progress\":\"%s\","
         "\"groups\":%d%s}\n",
         workload, ranks, workers, tasks, seconds,
         seconds > 0 ? (double)tasks / seconds : 0.0, p50s, p99s, effs,
         g_isolation, g_progress, g_groups, extra);
  fflush(stdout);
}

static void report(const char *workload, int ranks, int workers, long tasks,
                   double seconds, double p50, double p99, double eff) {
  report_x(workload, ranks, workers, tasks, seconds, p50, p99, eff, "");
}

/* Peak resident set of this process in KiB (Linux ru_maxrss). */
static long maxrss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* The executor whose idle time root_busy reads. */
static mpx_executor *g_ex;

/* The root process's CPU seconds when the measured run began (its
 * manager thread's included), for root_busy's root_cpu_s, and the root's
 * call messages and their tasks then, for its tasks_per_call. */
static double g_cpu0;
static uint64_t g_calls0, g_ctasks0;

/* Notes where the measured run begins (for root_busy()). */
static void root_mark(void) {
  g_cpu0 = cpu_seconds();
  mpx_executor_calls_sent(g_ex, &g_calls0, &g_ctasks0);
}

/* ",\"root_busy\":B,\"root_cpu_s\":C,\"tasks_per_call\":T" for a run of
 * dt seconds that started when the pool's idle time was idle0: the share
 * of the root's time spent working the pool (mpx_executor_idle_seconds),
 * the CPU time the root process used since root_mark() (null under SMPI,
 * where every simulated rank is a thread of one process), and the tasks
 * per call message the root sent since then (null when it sent none), for
 * report_x's extra. Static storage. */
static const char *root_busy(double dt, double idle0) {
  static char buf[160];
  double idle = mpx_executor_idle_seconds(g_ex) - idle0;
  double b = dt > 0 ? 1.0 - idle / dt : 0.0;
  uint64_t calls = 0, tasks = 0;
  mpx_executor_calls_sent(g_ex, &calls, &tasks);
  char per[32] = "null";
  if (calls > g_calls0)
    snprintf(per, sizeof per, "%.2f",
             (double)(tasks - g_ctasks0) / (double)(calls - g_calls0));
  char cpu[32] = "null"; /* under SMPI, every rank is a thread of one
                            process: no CPU time of the root's own */
#ifndef MPX_SMPI
  snprintf(cpu, sizeof cpu, "%.4f", cpu_seconds() - g_cpu0);
#endif
  snprintf(buf, sizeof buf,
           ",\"root_busy\":%.4f,\"root_cpu_s\":%s,\"tasks_per_call\":%s",
           b < 0 ? 0.0 : b, cpu, per);
  return buf;
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
  double t = now(), idle = mpx_executor_idle_seconds(ex);
  root_mark();
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
  report_x("tiny", ranks, mpx_executor_workers(ex), n, dt, -1, -1, -1,
           root_busy(dt, idle));
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
  double t = now(), idle = mpx_executor_idle_seconds(ex);
  root_mark();
  for (long i = 0; i < n; i++)
    fs[i] = submit_u64(ex, "spin", (uint64_t)us);
  mpx_wait(fs, (size_t)n, MPX_ALL_COMPLETED, MPX_FOREVER, NULL, NULL);
  double dt = now() - t;
  const char *busy = root_busy(dt, idle);
  for (long i = 0; i < n; i++) {
    if (mpx_future_exception(fs[i], 0) != 0)
      die("spin task", mpx_future_exception(fs[i], 0));
    mpx_future_destroy(&fs[i]);
  }
  free(fs);
  /* Over every rank but the root: sub-managers run no task, and their
   * cores count against the pool as idle workers' would. */
  int w = mpx_executor_workers(ex), cores = w + mpx_executor_groups(ex);
  report_x("spin", ranks, w, n, dt, -1, -1,
           (double)n * (double)us * 1e-6 / ((double)cores * dt), busy);
}

/* ---------------------------------------------------------------- map */

/* Reads every result of a map of "square" over 0..n-1 (or of "spin" for
 * us > 0 microseconds) in order and checks each; any mismatch aborts the
 * run. */
static void drain_map(const char *what, mpx_map *m, long n, uint64_t us) {
  mpx_map_item it;
  uint64_t k = 0;
  int rc;
  while ((rc = mpx_map_next(m, MPX_FOREVER, &it)) == 0) {
    uint64_t v = 0;
    if (it.status == 0 && it.len == sizeof v)
      memcpy(&v, it.data, sizeof v);
    if (it.status != 0 || it.index != k || v != (us ? us : k * k)) {
      fprintf(stderr,
              "mpx-bench: %s: item %llu: index %llu, status %d, %zu bytes"
              " (%s)\n",
              what, (unsigned long long)k, (unsigned long long)it.index,
              it.status, it.len, it.error ? it.error : "wrong value");
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    k++;
  }
  if (rc != MPX_EOF)
    die("map_next", rc);
  if (k != (uint64_t)n) {
    fprintf(stderr, "mpx-bench: %s: %llu results of %ld\n", what,
            (unsigned long long)k, n);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}

static void run_map(mpx_executor *ex, int ranks, long n, long chunksize,
                    long us, int array) {
  uint64_t *vals = malloc((size_t)n * sizeof *vals);
  const void **args = malloc((size_t)n * sizeof *args);
  size_t *lens = malloc((size_t)n * sizeof *lens);
  if (!vals || !args || !lens) {
    fprintf(stderr, "mpx-bench: map: no memory for %ld inputs\n", n);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  for (long i = 0; i < n; i++) {
    vals[i] = us > 0 ? (uint64_t)us : (uint64_t)i;
    args[i] = &vals[i];
    lens[i] = sizeof vals[i];
  }
  warm_up(ex);
  mpx_map_options mo;
  mpx_map_options_init(&mo);
  mo.chunksize = (uint64_t)chunksize;
  double t = now(), idle = mpx_executor_idle_seconds(ex);
  root_mark();
  mpx_map *m;
  const char *task = us > 0 ? "spin" : "square";
  int rc = array ? mpx_map_create_array(ex, task, vals, (uint64_t)n,
                                        sizeof vals[0], &mo, &m)
                 : mpx_map_create(ex, task, (const void *const *)args, lens,
                                  (uint64_t)n, &mo, &m);
  if (rc)
    die("map_create", rc);
  drain_map("map", m, n, us > 0 ? (uint64_t)us : 0);
  double dt = now() - t;
  mpx_map_destroy(&m);
  free(vals);
  free(args);
  free(lens);
  char extra[256];
  snprintf(extra, sizeof extra,
           ",\"chunksize\":%ld,\"us\":%ld,\"inputs\":\"%s\"%s", chunksize,
           us > 0 ? us : 0, array ? "array" : "list", root_busy(dt, idle));
  /* With spin tasks, efficiency as spin's (every rank but the root). */
  int w = mpx_executor_workers(ex), cores = w + mpx_executor_groups(ex);
  report_x("map", ranks, w, n, dt, -1, -1,
           us > 0 ? (double)n * (double)us * 1e-6 / ((double)cores * dt) : -1,
           extra);
}

/* ---------------------------------------------------------------- rss */

typedef struct count_producer {
  uint64_t n, value;
} count_producer;

static int produce_count(void *arg, uint64_t index, const void **data,
                         size_t *len) {
  count_producer *p = arg;
  if (index >= p->n)
    return 0;
  p->value = index;
  *data = &p->value;
  *len = sizeof p->value;
  return 1;
}

static void run_rss(mpx_executor *ex, int ranks, long n, long chunksize) {
  warm_up(ex);
  long base = maxrss_kib();
  mpx_map_options mo;
  mpx_map_options_init(&mo);
  mo.chunksize = (uint64_t)chunksize;
  count_producer cp = {(uint64_t)n, 0};
  double t = now();
  mpx_map *m;
  int rc = mpx_map_create_producer(ex, "square", produce_count, &cp,
                                   (uint64_t)n, &mo, &m);
  if (rc)
    die("map_create_producer", rc);
  drain_map("rss", m, n, 0);
  double dt = now() - t;
  mpx_map_destroy(&m);
  char extra[160];
  snprintf(extra, sizeof extra,
           ",\"chunksize\":%ld,\"maxrss_kib\":%ld,\"baseline_rss_kib\":%ld",
           chunksize, maxrss_kib(), base);
  report_x("rss", ranks, mpx_executor_workers(ex), n, dt, -1, -1, -1, extra);
}

/* ------------------------------------------------------------- faults */

enum { FATE_OK, FATE_SEGV, FATE_ABORT, FATE_EXIT, FATE_HANG, NFATES };
static const char *const fate_names[NFATES] = {"ok", "segv", "abort", "exit",
                                               "hang"};
#define FAULT_HANG_S 0.2

/* The fate of task i of the storm, as scripts/bench_peers.py's fault_fate
 * (the same double arithmetic, so the same storm). */
static int fault_fate(uint64_t i, double rate) {
  double h = (double)((i * 2654435761u) & 0xffffffffu) / 4294967296.0;
  if (h >= rate)
    return FATE_OK;
  if (h < rate / 3)
    return FATE_SEGV;
  if (h < 2 * rate / 3)
    return FATE_ABORT;
  if (h < 5 * rate / 6)
    return FATE_EXIT;
  return FATE_HANG;
}

typedef struct fault_arg {
  uint64_t i;
  double rate;
} fault_arg;

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* Task i of the storm: returns i*i unless its fate kills it. */
static int fault(mpx_task_ctx *ctx, const void *arg, size_t len) {
  fault_arg a;
  if (len != sizeof a)
    return mpx_task_fail(ctx, "fault needs %zu bytes, got %zu", sizeof a, len);
  memcpy(&a, arg, sizeof a);
  switch (fault_fate(a.i, a.rate)) {
  case FATE_SEGV:
    raise(SIGSEGV);
    return mpx_task_fail(ctx, "task %llu: SIGSEGV did not kill it",
                         (unsigned long long)a.i);
  case FATE_ABORT:
    abort();
  case FATE_EXIT:
    exit(0);
  case FATE_HANG:
    sleep_s(FAULT_HANG_S);
    break;
  default:
    break;
  }
  uint64_t v = a.i * a.i;
  return mpx_task_return(ctx, &v, sizeof v);
}

/* A task that segfaults (the crash-cost phase). */
static int segv(mpx_task_ctx *ctx, const void *arg, size_t len) {
  (void)arg;
  (void)len;
  raise(SIGSEGV);
  return mpx_task_fail(ctx, "SIGSEGV did not kill the task");
}

/* Appends s to buf (of size cap, holding *at bytes) as a JSON string. */
static void json_str(char *buf, size_t cap, size_t *at, const char *s) {
  size_t n = *at;
  if (n + 2 >= cap)
    return;
  buf[n++] = '"';
  for (; s && *s && n + 8 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      buf[n++] = '\\';
      buf[n++] = (char)c;
    } else if (c < 0x20) {
      n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", c);
    } else {
      buf[n++] = (char)c;
    }
  }
  buf[n++] = '"';
  buf[n] = '\0';
  *at = n;
}

static double median(double *v, size_t n) {
  if (n == 0)
    return -1;
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Runs one task to its end (at most 10 s); returns its outcome and the
 * rank that ran it in *worker. A tiny task's result is checked: a wrong
 * value is MPX_EPROTO. */
static int run_one(mpx_executor *ex, const char *task, uint64_t x,
                   int *worker) {
  mpx_future *f;
  int rc = mpx_submit(ex, task, &x, sizeof x, &f);
  if (rc)
    return rc;
  const void *p;
  size_t len;
  rc = mpx_future_result(f, 10.0, &p, &len);
  if (rc == 0) {
    uint64_t v = 0;
    if (len == sizeof v)
      memcpy(&v, p, sizeof v);
    if (len != sizeof v || v != x * x)
      rc = MPX_EPROTO;
  }
  *worker = mpx_future_worker(f);
  if (rc == MPX_ETIMEDOUT)
    mpx_future_cancel(f);
  mpx_future_destroy(&f);
  return rc;
}

/* The crash-cost phase (see the top of the file). Writes its JSON fields
 * to extra (starting with a comma). */
static void crash_cost(mpx_executor *ex, long k, char *extra, size_t cap) {
  long pairs = k / 2;
  double *crash = malloc((size_t)pairs * sizeof *crash);
  double *tiny = malloc((size_t)pairs * sizeof *tiny);
  double *same = malloc((size_t)pairs * sizeof *same);
  double *clean = malloc((size_t)pairs * sizeof *clean);
  size_t nc = 0, nt = 0, ns = 0, nk = 0;
  long not_crashed = 0;
  const char *failed = NULL;
  int failed_rc = 0;
  /* First K/2 (tiny, tiny) pairs on the healthy pool, no crash among them:
   * the baseline that includes what a crash leaves behind afterwards. */
  for (long p = 0; p < pairs && !failed; p++) {
    int w1, w2, rc;
    double t = now();
    if ((rc = run_one(ex, "square", (uint64_t)p, &w1)) != 0 ||
        (rc = run_one(ex, "square", (uint64_t)p + 1, &w2)) != 0) {
      failed = "tiny", failed_rc = rc;
      break;
    }
    clean[nk++] = (now() - t) * 1e3;
  }
  for (long p = 0; p < pairs && !failed; p++) {
    int w1, w2;
    double t = now();
    int rc = run_one(ex, "segv", 0, &w1);
    if (rc != MPX_ECRASHED)
      not_crashed++;
    if (rc == MPX_ETIMEDOUT) {
      failed = "segv", failed_rc = rc;
      break;
    }
    if ((rc = run_one(ex, "square", (uint64_t)p, &w2)) != 0) {
      failed = "tiny after a crash", failed_rc = rc;
      break;
    }
    crash[nc++] = (now() - t) * 1e3;
    if (w1 == w2)
      same[ns++] = crash[nc - 1];
    t = now();
    if ((rc = run_one(ex, "square", (uint64_t)p, &w1)) != 0 ||
        (rc = run_one(ex, "square", (uint64_t)p + 1, &w2)) != 0) {
      failed = "tiny", failed_rc = rc;
      break;
    }
    tiny[nt++] = (now() - t) * 1e3;
  }
  if (failed) {
    snprintf(extra, cap,
             ",\"crash_cost_ms\":null,\"crash_cost_error\":\"%s task: %s\"",
             failed, mpx_err_name(failed_rc));
  } else {
    double mc = median(crash, nc), mt = median(tiny, nt);
    double ms = median(same, ns), mk = median(clean, nk);
    char sames[32] = "null";
    if (ns)
      snprintf(sames, sizeof sames, "%.3f", ms - mt);
    /* spread: the quartiles of the crash pairs */
    snprintf(extra, cap,
             ",\"crash_cost_ms\":%.3f,\"crash_cost_same_rank_ms\":%s,"
             "\"crash_pair_ms\":%.3f,\"crash_pair_p25_ms\":%.3f,"
             "\"crash_pair_p75_ms\":%.3f,\"tiny_pair_ms\":%.3f,"
             "\"tiny_pair_p25_ms\":%.3f,\"tiny_pair_p75_ms\":%.3f,"
             "\"crash_pairs\":%zu,\"crash_pairs_same_rank\":%zu,"
             "\"crash_cost_not_crashed\":%ld,\"clean_tiny_pair_ms\":%.3f,"
             "\"clean_tiny_pair_p25_ms\":%.3f,"
             "\"clean_tiny_pair_p75_ms\":%.3f,"
             "\"crash_cost_vs_clean_ms\":%.3f",
             mc - mt, sames, mc, crash[nc / 4], crash[(3 * nc) / 4], mt,
             tiny[nt / 4], tiny[(3 * nt) / 4], nc, ns, not_crashed, mk,
             clean[nk / 4], clean[(3 * nk) / 4], mc - mk);
  }
  free(crash);
  free(tiny);
  free(same);
  free(clean);
}

static void run_faults(mpx_executor *ex, int ranks, long n, double rate,
                       double task_timeout, int retries, double deadline,
                       long cost_k) {
  mpx_future **fs = malloc((size_t)n * sizeof *fs);
  long fates[NFATES] = {0};
  for (long i = 0; i < n; i++)
    fates[fault_fate((uint64_t)i, rate)]++;
  /* a hang is a time-limit failure only under a shorter limit */
  int hang_times_out = task_timeout > 0 && task_timeout < FAULT_HANG_S;
  warm_up(ex);
  double t0 = now();
  long submitted = 0;
  int submit_rc = 0;
  for (long i = 0; i < n; i++) {
    fault_arg a = {(uint64_t)i, rate};
    if ((submit_rc = mpx_submit(ex, "fault", &a, sizeof a, &fs[i])) != 0)
      break;
    mpx_future_set_data(fs[i], (void *)(uintptr_t)i);
    submitted++;
  }
  long completed = 0, crashed = 0, by_signal = 0, by_exit = 0, timed_out = 0,
       wrong = 0, unexpected = 0, got = 0;
  double last = -1;
  char first_err[512] = "", first_unexp[512] = "";
  double left = t0 + deadline - now();
  mpx_as_completed *it;
  int rc =
      mpx_as_completed_create(fs, (size_t)submitted, left > 0 ? left : 0, &it);
  if (rc)
    die("as_completed", rc);
  mpx_future *f;
  while ((rc = mpx_as_completed_next(it, &f)) == 0) {
    uint64_t i = (uint64_t)(uintptr_t)mpx_future_data(f);
    const void *p;
    size_t len;
    int st = mpx_future_result(f, 0, &p, &len);
    int fate = fault_fate(i, rate), expect;
    got++;
    last = now() - t0;
    if (st == 0) {
      uint64_t v = 0;
      if (len == sizeof v)
        memcpy(&v, p, sizeof v);
      if (len == sizeof v && v == i * i)
        completed++;
      else
        wrong++, st = MPX_EPROTO;
    } else if (st == MPX_ECRASHED) {
      crashed++, by_signal++;
    } else if (st == MPX_EEXIT) {
      crashed++, by_exit++;
    } else if (st == MPX_ETIMELIMIT) {
      timed_out++;
    } else {
      wrong++;
    }
    if (st != 0 && !first_err[0])
      snprintf(first_err, sizeof first_err, "task %llu: %s: %s",
               (unsigned long long)i, mpx_err_name(st),
               mpx_future_error(f) ? mpx_future_error(f) : "wrong result");
    expect = fate == FATE_SEGV || fate == FATE_ABORT ? MPX_ECRASHED
             : fate == FATE_EXIT                     ? MPX_EEXIT
             : fate == FATE_HANG && hang_times_out   ? MPX_ETIMELIMIT
                                                     : 0;
    if (st != expect) {
      if (!first_unexp[0])
        snprintf(first_unexp, sizeof first_unexp, "task %llu (%s) ended %s: %s",
                 (unsigned long long)i, fate_names[fate],
                 st ? mpx_err_name(st) : "with its result",
                 mpx_future_error(f) ? mpx_future_error(f) : "");
      unexpected++;
    }
  }
  double seconds = now() - t0;
  mpx_as_completed_destroy(&it);
  if (rc != MPX_EOF && rc != MPX_ETIMEDOUT)
    die("as_completed_next", rc);
  long lost = submitted - got;
  /* futures submit refused count as errors, as the peers count a submit
   * that raises */
  if (submitted < n)
    wrong += n - submitted;

  /* Is the same pool still usable? One fresh x*x task, 10 s. */
  double t1 = now();
  int w;
  int probe_rc = run_one(ex, "square", 12345, &w);
  int alive = probe_rc == 0;
  double probe_s = now() - t1;

  char cost[768] = ",\"crash_cost_ms\":null";
  if (alive && cost_k >= 2)
    crash_cost(ex, cost_k, cost, sizeof cost);

  char note[1024];
  if (lost)
    snprintf(note, sizeof note,
             "%ld results never arrived by the %g s deadline (last outcome "
             "at %.2f s)",
             lost, deadline, last);
  else
    snprintf(note, sizeof note,
             "every task came back: %ld killed by a signal, %ld by exit(), "
             "%ld stopped at the time limit",
             by_signal, by_exit, timed_out);
  if (submitted < n) {
    size_t k = strlen(note);
    snprintf(note + k, sizeof note - k, "; submit failed (%s) for the last %ld",
             mpx_err_name(submit_rc), n - submitted);
  }
  if (!alive) {
    size_t k = strlen(note);
    snprintf(note + k, sizeof note - k, "; the probe got %s",
             mpx_err_name(probe_rc));
  }
  char strs[2400];
  size_t at = 0;
  at += (size_t)snprintf(strs, sizeof strs, ",\"note\":");
  json_str(strs, sizeof strs, &at, note);
  at += (size_t)snprintf(strs + at, sizeof strs - at, ",\"first_error\":");
  json_str(strs, sizeof strs, &at, first_err);
  at += (size_t)snprintf(strs + at, sizeof strs - at, ",\"first_unexpected\":");
  json_str(strs, sizeof strs, &at, first_unexp);
  char rates[40];
  snprintf(rates, sizeof rates, "%.15g", rate);
  if (strtod(rates, NULL) != rate)
    snprintf(rates, sizeof rates, "%.17g", rate);
  char lasts[32] = "null";
  if (last >= 0)
    snprintf(lasts, sizeof lasts, "%.6f", last);
  printf("{\"impl\":\"mpx\",\"workload\":\"faults\",\"variant\":\"\","
         "\"ranks\":%d,\"workers\":%d,\"isolation\":\"%s\",\"tasks\":%ld,"
         "\"completed\":%ld,\"crashed\":%ld,\"timed_out\":%ld,\"lost\":%ld,"
         "\"wrong\":%ld,\"seconds\":%.6f,\"tasks_per_s\":null,"
         "\"pool_alive\":%s,\"probe_s\":%.6f,\"crash_rate\":%s,"
         "\"task_timeout\":%g,\"retries\":%d,\"deadline_s\":%g,"
         "\"last_outcome_s\":%s,\"crashed_signal\":%ld,\"crashed_exit\":%ld,"
         "\"unexpected\":%ld,\"fates\":{\"ok\":%ld,\"segv\":%ld,\"abort\":%ld,"
         "\"exit\":%ld,\"hang\":%ld}%s%s}\n",
         ranks, mpx_executor_workers(ex), g_isolation, n, completed, crashed,
         timed_out, lost, wrong, seconds, alive ? "true" : "false", probe_s,
         rates, task_timeout, retries, deadline, lasts, by_signal, by_exit,
         unexpected, fates[FATE_OK], fates[FATE_SEGV], fates[FATE_ABORT],
         fates[FATE_EXIT], fates[FATE_HANG], cost, strs);
  fflush(stdout);
  /* tasks still out (lost) would keep a waiting shutdown waiting */
  if (lost || !alive)
    mpx_executor_terminate(ex);
  for (long i = 0; i < submitted; i++)
    mpx_future_destroy(&fs[i]);
  free(fs);
}

/* ------------------------------------------------------- w4 and h5write */

static void remove_job_files(const char *path) {
  char rec[4200];
  snprintf(rec, sizeof rec, "%s.mpxrec", path);
  if (unlink(path) != 0 && errno != ENOENT)
    perror(path);
  if (unlink(rec) != 0 && errno != ENOENT)
    perror(rec);
}

static void run_w4(mpx_executor *ex, int ranks, const char *wl,
                   const char *task, long rows, long parts, const char *dir,
                   int sync, int map_mode, int keep) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s/%s-mpx.h5", dir, wl) >=
      (int)sizeof path) {
    fprintf(stderr, "mpx-bench: --out path too long\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (!map_mode)
    remove_job_files(path);
  warm_up(ex);
  mpx_map_options mo;
  mpx_map_options_init(&mo);
  uint64_t got_rows = 0, bytes = 0, data_bytes = 0;
  double job_s = -1, dt;
  if (!map_mode) {
    mpx_job_options jo;
    mpx_job_options_init(&jo);
    jo.mode = MPX_JOB_OVERWRITE;
    jo.compression = 0;
    jo.sync = sync;
    jo.label = wl;
    mpx_split sp = {0, (int64_t)rows, (uint64_t)parts, {0, 0}};
    mpx_job_report rep;
    memset(&rep, 0, sizeof rep);
    double t = now();
    int rc = mpx_job_run(ex, task, mpx_split_producer, &sp, (uint64_t)parts,
                         &mo, path, &jo, &rep);
    dt = now() - t;
    if (rc)
      die("job_run", rc);
    if (rep.rows != (uint64_t)rows || rep.failed != 0 ||
        rep.computed != (uint64_t)parts) {
      fprintf(stderr,
              "mpx-bench: %s: job report: %llu rows (want %ld), %llu "
              "computed, %llu failed\n",
              wl, (unsigned long long)rep.rows, rows,
              (unsigned long long)rep.computed, (unsigned long long)rep.failed);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    got_rows = rep.rows;
    job_s = rep.seconds;
    struct stat st;
    if (stat(path, &st) != 0) {
      perror(path);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    bytes = (uint64_t)st.st_size;
    data_bytes = (uint64_t)rows * (W4_WIDTH * sizeof(float) + sizeof(int32_t));
  } else {
    double t = now();
    mpx_map *m;
    int rc = mpx_map_create_range(ex, task, 0, (int64_t)rows, (uint64_t)parts,
                                  &mo, &m);
    if (rc)
      die("map_range", rc);
    mpx_map_item it;
    while ((rc = mpx_map_next(m, MPX_FOREVER, &it)) == 0) {
      if (it.status != 0) {
        fprintf(stderr, "mpx-bench: %s: part %llu failed: %s\n", wl,
                (unsigned long long)it.index, it.error ? it.error : "?");
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
      mpx_array arr[4];
      size_t na = 0;
      if ((rc = mpx_arrays_parse(it.data, it.len, arr, 4, &na)) != 0)
        die("arrays_parse", rc);
      for (size_t a = 0; a < na; a++) {
        data_bytes += arr[a].nbytes;
        if (!strcmp(arr[a].name, "feature"))
          got_rows += arr[a].rows;
      }
    }
    dt = now() - t;
    if (rc != MPX_EOF)
      die("map_next", rc);
    mpx_map_destroy(&m);
    if (got_rows != (uint64_t)rows) {
      fprintf(stderr, "mpx-bench: %s: %llu feature rows, want %ld\n", wl,
              (unsigned long long)got_rows, rows);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    bytes = data_bytes;
  }
  if (!map_mode && !keep)
    remove_job_files(path);
  char job_ss[32] = "null";
  if (job_s >= 0)
    snprintf(job_ss, sizeof job_ss, "%.6f", job_s);
  char extra[512];
  snprintf(extra, sizeof extra,
           ",\"rows\":%llu,\"rows_per_s\":%.1f,\"bytes\":%llu,"
           "\"gib_per_s\":%.4f,\"data_bytes\":%llu,\"format\":\"%s\","
           "\"synced\":%s,\"mode\":\"%s\",\"task\":\"%s\","
           "\"job_seconds\":%s",
           (unsigned long long)got_rows, dt > 0 ? (double)got_rows / dt : 0.0,
           (unsigned long long)bytes,
           dt > 0 ? (double)bytes / dt / 1073741824.0 : 0.0,
           (unsigned long long)data_bytes, map_mode ? "none" : "hdf5",
           (!map_mode && sync) ? "true" : "false", map_mode ? "map" : "job",
           task, job_ss);
  report_x(wl, ranks, mpx_executor_workers(ex), parts, dt, -1, -1, -1, extra);
}

static void usage(void) {
  fprintf(stderr,
          "usage: mpx-bench tiny|latency|noop [--tasks N]\n"
          "       mpx-bench spin [--tasks N] [--us U]\n"
          "       mpx-bench idle [--seconds S]\n"
          "       mpx-bench w4|h5write --out DIR [--rows N] [--parts K]\n"
          "                 [--sync 0|1] [--mode job|map] [--keep]\n"
          "                 [--task w4_rows|zero_rows]\n"
          "       mpx-bench map [--tasks N] [--chunksize C] [--us U]\n"
          "                 [--inputs list|array]\n"
          "       mpx-bench rss [--tasks N] [--chunksize C]\n"
          "       mpx-bench faults --isolation process [--tasks N]\n"
          "                 [--crash-rate P] [--task-timeout S] [--retries R]\n"
          "                 [--deadline S] [--crash-cost K]\n"
          "  every workload: [--isolation none|process] [--processes N]\n"
          "                 [--task-timeout S] [--retries R]\n"
          "                 [--progress thread|caller|auto]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2)
    usage();
  const char *wl = argv[1];
  long tasks = 0, us = -1, chunksize = 0, rows = 0, parts = 0;
  long sync = 1;
  int map_mode = 0, keep = 0, array = 0;
  const char *out = NULL, *task = W4_TASK;
  double seconds = 2.0;
  const char *isolation = NULL; /* NULL: the default (MPX_ISOLATION) */
  const char *progress = NULL;  /* NULL: the default (MPX_PROGRESS) */
  long processes = -1, retries = -1, cost_k = 200;
  double task_timeout = -1, crash_rate = 0.03, deadline = 120.0;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--tasks") == 0 && i + 1 < argc)
      tasks = atol(argv[++i]);
    else if (strcmp(argv[i], "--us") == 0 && i + 1 < argc)
      us = atol(argv[++i]);
    else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
      seconds = atof(argv[++i]);
    else if (strcmp(argv[i], "--chunksize") == 0 && i + 1 < argc)
      chunksize = atol(argv[++i]);
    else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
      rows = atol(argv[++i]);
    else if (strcmp(argv[i], "--parts") == 0 && i + 1 < argc)
      parts = atol(argv[++i]);
    else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
      out = argv[++i];
    else if (strcmp(argv[i], "--sync") == 0 && i + 1 < argc)
      sync = atol(argv[++i]);
    else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
      const char *m = argv[++i];
      if (!strcmp(m, "map"))
        map_mode = 1;
      else if (strcmp(m, "job"))
        usage();
    } else if (strcmp(argv[i], "--task") == 0 && i + 1 < argc) {
      task = argv[++i];
      if (strcmp(task, W4_TASK) && strcmp(task, "zero_rows"))
        usage();
    } else if (strcmp(argv[i], "--inputs") == 0 && i + 1 < argc) {
      const char *v = argv[++i];
      if (strcmp(v, "list") != 0 && strcmp(v, "array") != 0)
        usage();
      array = strcmp(v, "array") == 0;
    } else if (strcmp(argv[i], "--keep") == 0)
      keep = 1;
    else if (strcmp(argv[i], "--isolation") == 0 && i + 1 < argc) {
      isolation = argv[++i];
      if (strcmp(isolation, "none") && strcmp(isolation, "process"))
        usage();
    } else if (strcmp(argv[i], "--progress") == 0 && i + 1 < argc) {
      progress = argv[++i];
      if (strcmp(progress, "thread") && strcmp(progress, "caller") &&
          strcmp(progress, "auto"))
        usage();
    } else if (strcmp(argv[i], "--processes") == 0 && i + 1 < argc)
      processes = atol(argv[++i]);
    else if (strcmp(argv[i], "--task-timeout") == 0 && i + 1 < argc)
      task_timeout = atof(argv[++i]);
    else if (strcmp(argv[i], "--retries") == 0 && i + 1 < argc)
      retries = atol(argv[++i]);
    else if (strcmp(argv[i], "--crash-rate") == 0 && i + 1 < argc)
      crash_rate = strtod(argv[++i], NULL);
    else if (strcmp(argv[i], "--deadline") == 0 && i + 1 < argc)
      deadline = atof(argv[++i]);
    else if (strcmp(argv[i], "--crash-cost") == 0 && i + 1 < argc)
      cost_k = atol(argv[++i]);
    else
      usage();
  }
  int is_w4 = !strcmp(wl, "w4"), is_h5 = !strcmp(wl, "h5write");
  if (!tasks)
    tasks = !strcmp(wl, "map") ? 100000 : !strcmp(wl, "rss") ? 1000000 : 10000;
  if (!chunksize)
    chunksize = !strcmp(wl, "rss") ? 256 : 1;
  /* spin's tasks burn 1 ms unless --us says; a map's are x*x unless it
   * says (5ad756b had given maps the spin default, so a plain map ran
   * 1 ms tasks beside the peers' x*x) */
  if (us == -1)
    us = !strcmp(wl, "map") ? 0 : 1000;
  if (!rows)
    rows = is_h5 ? 4194304 : 200000;
  if (!parts)
    parts = is_h5 ? 64 : 8;
  if (tasks < 1 || us < 0 || seconds < 0 || chunksize < 1 || rows < 0 ||
      parts < 1 || (sync != 0 && sync != 1) || !(crash_rate >= 0) ||
      crash_rate > 1 || !(deadline > 0) || cost_k < 0 ||
      (processes < 0 && processes != -1) || (retries < 0 && retries != -1) ||
      (task_timeout < 0 && task_timeout != -1))
    usage();
  if (strcmp(wl, "tiny") && strcmp(wl, "latency") && strcmp(wl, "spin") &&
      strcmp(wl, "noop") && strcmp(wl, "idle") && !is_w4 && !is_h5 &&
      strcmp(wl, "map") && strcmp(wl, "rss") && strcmp(wl, "faults"))
    usage();
  if ((is_w4 || is_h5) && !map_mode && !out) {
    fprintf(stderr, "mpx-bench: %s needs --out DIR\n", wl);
    usage();
  }
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
  w4_register();
  mpx_register("zero_rows", zero_rows);
  mpx_register("fault", fault);
  mpx_register("segv", segv);
  mpx_executor_options o;
  mpx_executor_options_init(&o);
  if (isolation)
    o.isolation = strcmp(isolation, "process") ? MPX_ISOLATION_NONE
                                               : MPX_ISOLATION_PROCESS;
  if (processes >= 0)
    o.processes = (int)processes;
  if (task_timeout >= 0)
    o.task_timeout = task_timeout;
  if (retries >= 0)
    o.retries = (int)retries;
  if (progress)
    o.progress = !strcmp(progress, "thread")   ? MPX_PROGRESS_THREAD
                 : !strcmp(progress, "caller") ? MPX_PROGRESS_CALLER
                                               : MPX_PROGRESS_AUTO;
  g_isolation = o.isolation == MPX_ISOLATION_PROCESS ? "process" : "none";
  if (!strcmp(wl, "faults") && o.isolation != MPX_ISOLATION_PROCESS) {
    if (rank == 0)
      fprintf(stderr, "mpx-bench: faults needs --isolation process (without "
                      "it the first crash ends the MPI job)\n");
    mpx_finalize();
    return 2;
  }
  double cpu0 = cpu_seconds(), wall0 = now();
  mpx_executor *ex = NULL;
  if ((rc = mpx_executor_create(MPI_COMM_WORLD, &o, &ex)) != 0)
    die("create", rc);
  double root_share = 0;
  if (ex && mpx_executor_progress_mode(ex) == MPX_PROGRESS_CALLER)
    g_progress = "caller";
  g_ex = ex;
  g_groups = mpx_executor_groups(ex);
  if (ex) {
    if (!strcmp(wl, "tiny")) {
      run_tiny(ex, ranks, tasks);
    } else if (!strcmp(wl, "latency")) {
      run_latency(ex, ranks, tasks);
    } else if (!strcmp(wl, "spin")) {
      run_spin(ex, ranks, tasks, us);
    } else if (!strcmp(wl, "map")) {
      run_map(ex, ranks, tasks, chunksize, us, array);
    } else if (!strcmp(wl, "rss")) {
      run_rss(ex, ranks, tasks, chunksize);
    } else if (!strcmp(wl, "faults")) {
      run_faults(ex, ranks, tasks, crash_rate, o.task_timeout, o.retries,
                 deadline, cost_k);
    } else if (is_w4 || is_h5) {
      run_w4(ex, ranks, wl, task, rows, parts, out ? out : ".", (int)sync,
             map_mode, keep);
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
           "\"p99_us\":null,\"efficiency\":null,\"isolation\":\"%s\","
           "\"root_cpu_share\":%.4f,\"worker_cpu_share\":%.4f}\n",
           ranks, ranks > 1 ? ranks - 1 : 1, seconds, g_isolation, root_share,
           worker_share);
  }
  if (rank == 0 && !strcmp(wl, "noop"))
    report("noop", ranks, ranks > 1 ? ranks - 1 : 1, 1, now() - t_start, -1, -1,
           -1);
  mpx_finalize();
  return 0;
}
