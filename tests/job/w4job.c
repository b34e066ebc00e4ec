#define _POSIX_C_SOURCE 200809L
/*
 * w4job.c -- the W4 workload as a resumable job, for the job tests:
 *   w4job --out PATH [--items N] [--parts K] [--chunksize C]
 *         [--resume | --overwrite] [--commit S] [--gzip L] [--no-sync]
 *         [--identity KEY] [--isolation] [--task-timeout SEC]
 *         [--retries N] [--retry-failed] [--crash-parts SPEC]
 *         [--labels] [--chunk-rows R]
 * maps "w4_rows" over [0, N) split into K parts (array_split) and writes
 * feature/target to PATH with mpx_job_run(); the job's identity is KEY, or
 * "w4 items=N" by default. SIGINT, SIGTERM and SIGUSR1 on any rank ask the
 * job to stop (mpx_job_interrupt).
 * --isolation runs the tasks in supervised task processes, --task-timeout
 * and --retries set the executor's options of those names, --retry-failed
 * resumes (it implies --resume) computing recorded failures again.
 * --crash-parts SPEC, SPEC = P:HOW[,P:HOW...] with HOW one of segv, abort,
 * exit, hang, maps "w4_crashy" instead: W4 as "w4_rows" computes it, but
 * part P (its index in the array_split, found from its range) raises
 * SIGSEGV, calls abort(), calls exit(0), or sleeps 30 s before computing.
 * With W4JOB_CRASH_ONCE_DIR=DIR in the environment, part P does so only
 * while DIR/part.P does not exist, and creates it first, so that a retry
 * or a rerun succeeds.
 * --labels maps "w4_labeled" instead: W4 and a string array "label" per
 * row ("row <i>" and i % 13 dots); --chunk-rows sets the HDF5 chunk rows
 * (mpx_job_options.chunk_rows).
 * Prints one line
 *   job: rc=<name> items=<n> recorded=<r> computed=<c> failed=<f> rows=<rows>
 * and exits 0 on success, 1 on a job error (message on stderr), 2 on bad
 * usage.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mpx.h"
#include "w4.h"

static void on_signal(int sig) {
  mpx_job_interrupt(sig);
}

#define CRASHY_TASK "w4_crashy"
#define LABELED_TASK "w4_labeled"

/* How a part of --crash-parts ends. */
enum crash_how { CRASH_NONE, CRASH_SEGV, CRASH_ABORT, CRASH_EXIT, CRASH_HANG };

/* The crash table and the split, set from the command line before
 * mpx_init(), so every rank and every task process it forks has them. */
enum { MAX_CRASH = 64 };
static struct {
  uint64_t part;
  enum crash_how how;
} crashes[MAX_CRASH];
static int ncrashes;
static int64_t split_n;
static uint64_t split_k;

/* Parses SPEC (P:HOW,...) into crashes[]; returns 0, or -1 when bad. */
static int parse_crashes(const char *spec) {
  static const char *const names[] = {"", "segv", "abort", "exit", "hang"};
  const char *p = spec;
  while (*p) {
    char *end;
    unsigned long long part = strtoull(p, &end, 10);
    if (end == p || *end != ':' || ncrashes == MAX_CRASH)
      return -1;
    p = end + 1;
    size_t n = strcspn(p, ",");
    enum crash_how how = CRASH_NONE;
    for (int h = CRASH_SEGV; h <= CRASH_HANG; h++)
      if (strlen(names[h]) == n && strncmp(p, names[h], n) == 0)
        how = (enum crash_how)h;
    if (how == CRASH_NONE)
      return -1;
    crashes[ncrashes].part = part;
    crashes[ncrashes++].how = how;
    p += n;
    if (*p == ',')
      p++;
  }
  return ncrashes > 0 ? 0 : -1;
}

/* The index of the array_split part of [0, split_n) in split_k parts that
 * starts at start and holds rows (the first n % k parts have one row more
 * than the others); UINT64_MAX for an empty part, whose index the range
 * does not tell. */
static uint64_t part_index(int64_t start, int64_t rows) {
  if (rows <= 0 || split_k == 0)
    return UINT64_MAX;
  int64_t q = split_n / (int64_t)split_k, r = split_n % (int64_t)split_k;
  if (start < r * (q + 1))
    return (uint64_t)(start / (q + 1));
  return (uint64_t)(r + (start - r * (q + 1)) / q);
}

/* Whether part should crash now: always, or with W4JOB_CRASH_ONCE_DIR
 * only the first time (the marker file DIR/part.<part> is created before
 * the crash). */
static int crash_now(uint64_t part) {
  const char *dir = getenv("W4JOB_CRASH_ONCE_DIR");
  if (!dir || !*dir)
    return 1;
  char path[4096];
  snprintf(path, sizeof path, "%s/part.%llu", dir, (unsigned long long)part);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0)
    return 0; /* already crashed once (or the directory is unusable) */
  close(fd);
  return 1;
}

/* "w4_crashy": the W4 rows of a part, as "w4_rows" computes them
 * (MPX_W4_DELAY_US included), unless the part is listed to crash. */
static int w4_crashy(mpx_task_ctx *ctx, const void *arg, size_t len) {
  int64_t b[2];
  int rc = w4_part(ctx, CRASHY_TASK, arg, len, b);
  if (rc)
    return rc;
  uint64_t part = part_index(b[0], b[1] - b[0]);
  for (int c = 0; c < ncrashes; c++) {
    if (crashes[c].part != part || !crash_now(part))
      continue;
    switch (crashes[c].how) {
    case CRASH_SEGV:
      raise(SIGSEGV);
      break;
    case CRASH_ABORT:
      abort();
    case CRASH_EXIT:
      exit(0);
    case CRASH_HANG: {
      struct timespec ts = {30, 0};
      while (nanosleep(&ts, &ts) != 0)
        ;
      break;
    }
    default:
      break;
    }
    break;
  }
  return w4_fill(ctx, CRASHY_TASK, b);
}

/* "w4_labeled": the W4 rows of a part with a string array "label" as well,
 * "row <i>" and i % 13 dots, so that the output holds variable-length
 * strings of several lengths. */
static int w4_labeled(mpx_task_ctx *ctx, const void *arg, size_t len) {
  int64_t b[2];
  int rc = w4_part(ctx, LABELED_TASK, arg, len, b);
  if (rc == 0)
    rc = w4_fill(ctx, LABELED_TASK, b);
  size_t m = rc == 0 ? (size_t)(b[1] - b[0]) : 0;
  const char **labels = m ? calloc(m, sizeof *labels) : NULL;
  char *text = m ? malloc(m * 40) : NULL;
  if (rc == 0 && m > 0 && (!labels || !text))
    rc = mpx_task_fail(ctx, LABELED_TASK ": no memory for %zu labels", m);
  for (size_t r = 0; rc == 0 && r < m; r++) {
    int64_t i = b[0] + (int64_t)r;
    char *t = text + r * 40;
    int n = snprintf(t, 40, "row %lld", (long long)i);
    memset(t + n, '.', (size_t)(i % 13));
    t[n + i % 13] = '\0';
    labels[r] = t;
  }
  if (rc == 0)
    rc = mpx_task_strings(ctx, "label", labels, m);
  free(labels);
  free(text);
  return rc;
}

int main(int argc, char **argv) {
  const char *out = NULL, *identity = NULL;
  char idbuf[64];
  mpx_split p = {0, 200000, 8, {0, 0}}; /* array_split(range(N), K) */
  int labeled = 0;
  mpx_map_options mo;
  mpx_job_options jo;
  mpx_executor_options eo;
  mpx_map_options_init(&mo);
  mpx_job_options_init(&jo);
  mpx_executor_options_init(&eo);
  jo.progress = getenv("W4JOB_PROGRESS") != NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--out") && v)
      out = argv[++i];
    else if (!strcmp(a, "--items") && v)
      p.hi = (int64_t)strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--parts") && v)
      p.k = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--chunksize") && v)
      mo.chunksize = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--commit") && v)
      jo.commit_interval = atof(argv[++i]);
    else if (!strcmp(a, "--labels"))
      labeled = 1;
    else if (!strcmp(a, "--chunk-rows") && v)
      jo.chunk_rows = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--gzip") && v)
      jo.compression = atoi(argv[++i]);
    else if (!strcmp(a, "--resume"))
      jo.mode = MPX_JOB_RESUME;
    else if (!strcmp(a, "--overwrite"))
      jo.mode = MPX_JOB_OVERWRITE;
    else if (!strcmp(a, "--identity") && v)
      identity = argv[++i];
    else if (!strcmp(a, "--no-sync"))
      jo.sync = 0;
    else if (!strcmp(a, "--isolation"))
      eo.isolation = MPX_ISOLATION_PROCESS;
    else if (!strcmp(a, "--task-timeout") && v)
      eo.task_timeout = atof(argv[++i]);
    else if (!strcmp(a, "--retries") && v)
      eo.retries = atoi(argv[++i]);
    else if (!strcmp(a, "--retry-failed"))
      jo.retry_failed = 1;
    else if (!strcmp(a, "--crash-parts") && v) {
      if (parse_crashes(argv[++i]) != 0) {
        fprintf(stderr,
                "w4job: bad --crash-parts '%s' (want P:HOW,... with "
                "HOW segv, abort, exit or hang)\n",
                argv[i]);
        return 2;
      }
    } else {
      fprintf(stderr, "w4job: bad argument '%s'\n", a);
      return 2;
    }
  }
  if (!out) {
    fprintf(stderr, "w4job: --out PATH is required\n");
    return 2;
  }
  if (jo.retry_failed)
    jo.mode = MPX_JOB_RESUME;
  split_n = p.hi;
  split_k = p.k;
  if (!identity) {
    snprintf(idbuf, sizeof idbuf, "w4 items=%llu", (unsigned long long)p.hi);
    identity = idbuf;
  }
  jo.identity = identity;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
  /* "w4_crashy" is registered on every rank, after "w4_rows", whether
   * used or not, so every run registers the same table. */
  if (mpx_init(&argc, &argv) != 0 || w4_register() != 0 ||
      mpx_register(CRASHY_TASK, w4_crashy) != 0 ||
      mpx_register(LABELED_TASK, w4_labeled) != 0)
    return 1;
  mpx_executor *ex;
  int rc = mpx_executor_create(MPI_COMM_WORLD, &eo, &ex);
  if (rc) {
    fprintf(stderr, "w4job: %s\n", mpx_last_error());
    mpx_finalize();
    return 1;
  }
  int status = 0;
  if (ex) {
    mpx_job_report r;
    rc = mpx_job_run(ex,
                     ncrashes  ? CRASHY_TASK
                     : labeled ? LABELED_TASK
                               : W4_TASK,
                     mpx_split_producer, &p, p.k, &mo, out, &jo, &r);
    if (r.notes[0])
      fprintf(stderr, "w4job: notes:\n%s\n", r.notes);
    if (rc)
      fprintf(stderr, "w4job: %s: %s\n", mpx_err_name(rc), mpx_last_error());
    printf("job: rc=%s items=%llu recorded=%llu computed=%llu failed=%llu "
           "rows=%llu seconds=%.3f\n",
           rc ? mpx_err_name(rc) : "0", (unsigned long long)r.items,
           (unsigned long long)r.recorded, (unsigned long long)r.computed,
           (unsigned long long)r.failed, (unsigned long long)r.rows, r.seconds);
    fflush(stdout);
    status = rc ? 1 : 0;
    mpx_executor_shutdown(ex, 1, 1);
    mpx_executor_destroy(&ex);
  }
  /* Every rank exits with the job's status (MPICH's Hydra, signalled,
   * may report a worker's). */
  return mpx_finalize_status(status);
}
