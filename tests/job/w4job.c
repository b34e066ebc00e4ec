#define _POSIX_C_SOURCE 200809L
/*
 * w4job.c -- the W4 workload as a resumable job, for the job tests:
 *   w4job --out PATH [--items N] [--parts K] [--chunksize C]
 *         [--resume | --overwrite] [--commit S] [--gzip L] [--no-sync]
 *         [--identity KEY]
 * maps "w4_rows" over [0, N) split into K parts (array_split) and writes
 * feature/target to PATH with mpx_job_run(); the job's identity is KEY, or
 * "w4 items=N" by default. SIGINT, SIGTERM and SIGUSR1 on any rank ask the
 * job to stop (mpx_job_interrupt). Prints one line
 *   job: rc=<name> items=<n> recorded=<r> computed=<c> failed=<f> rows=<rows>
 * and exits 0 on success, 1 on a job error (message on stderr), 2 on bad
 * usage.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpx.h"
#include "w4.h"

static void on_signal(int sig) {
  mpx_job_interrupt(sig);
}

int main(int argc, char **argv) {
  const char *out = NULL, *identity = NULL;
  char idbuf[64];
  mpx_split p = {0, 200000, 8, {0, 0}}; /* array_split(range(N), K) */
  mpx_map_options mo;
  mpx_job_options jo;
  mpx_map_options_init(&mo);
  mpx_job_options_init(&jo);
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
    else {
      fprintf(stderr, "w4job: bad argument '%s'\n", a);
      return 2;
    }
  }
  if (!out) {
    fprintf(stderr, "w4job: --out PATH is required\n");
    return 2;
  }
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
  if (mpx_init(&argc, &argv) != 0 || w4_register() != 0)
    return 1;
  mpx_executor *ex;
  int rc = mpx_executor_create(MPI_COMM_WORLD, NULL, &ex);
  if (rc) {
    fprintf(stderr, "w4job: %s\n", mpx_last_error());
    mpx_finalize();
    return 1;
  }
  int status = 0;
  if (ex) {
    mpx_job_report r;
    rc = mpx_job_run(ex, W4_TASK, mpx_split_producer, &p, p.k, &mo, out, &jo,
                     &r);
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
  mpx_finalize();
  return status;
}
