#define _GNU_SOURCE
/*
 * test_killwrite.c -- a job killed at every write it makes to its output,
 * then resumed, ends equal to an uninterrupted run.
 *
 * Usage (from ctest): test_killwrite W4JOB KILLWRITE_SO PY_DIR
 *
 * w4job writes W4 and a string array per row ("label", variable-length
 * strings; --labels) in 5 inputs of 4 rows, 3 rows per HDF5 chunk (so
 * inputs cross chunks), committing after every input. The LD_PRELOAD
 * library KILLWRITE_SO (tests/common/killwrite.c) kills it with SIGKILL
 * just before its Nth write to the .h5 file, for every N the run makes:
 * inside HDF5's flush of a commit, between the data and the metadata,
 * while it creates the file, at its close. Each killed output is resumed
 * and checked with h5py (tests/py/killcheck.py): the same datasets and
 * values as an uninterrupted run, nothing recorded as failed, every
 * /mpx/runs line readable.
 *
 * - every write, uncompressed; every third write, gzip-compressed
 *   (strings are compressed too);
 * - a resume killed at every third write of its own, after a first kill
 *   inside a commit, then resumed again.
 *
 * Old bugs, seen here against the library before lib/undo.c and the
 * string clean-up, with every other write in the last two (165 points):
 * 35 points ended wrong and 14 resumes failed:
 * - a run killed inside HDF5's flush of a commit left string references
 *   past the committed rows (their heap objects never written); the
 *   resume's first string writes freed, through them, objects it had just
 *   written, and rows read as other rows ("out 4" for "out 5") with exit
 *   status 0;
 * - killed inside a flush, a file that no longer opened ("addr overflow":
 *   the job started over, its commits lost) or opened and failed the
 *   resume's first write, at every resume.
 *
 * The job runs as a single process (no launcher): the writer is the same
 * code at any number of ranks, and a start costs a fraction of mpirun's.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "jobtest.h"
#include "runcmd.h"

static const char *w4job, *shim, *pydir;
static char dir[256];

enum { RUNS_AT_ONCE = 2 }; /* this machine's cores */

/* Open MPI's start of a singleton, cut to what a one-process job uses:
 * no orted beside it (ess_singleton_isolated), and the PML named that the
 * system's configuration selects anyway (ob1: pml ^ucx, and cm finds no
 * PSM hardware), so that cm's probe of it is skipped. 0.2 s a start
 * instead of 0.7 s, for some 300 starts; MPICH ignores both. */
#define SINGLETON_ENV "OMPI_MCA_ess_singleton_isolated=1 OMPI_MCA_pml=ob1"

/* The w4job command writing out in dir, with env before it. */
static void job_cmd(char *buf, size_t cap, const char *env, const char *out,
                    const char *extra) {
  snprintf(buf, cap,
           "cd %s && env " SINGLETON_ENV " %s %s --out %s --items 20 --parts 5 "
           "--labels --chunk-rows 3 --commit 0 --no-sync %s",
           dir, env, w4job, out, extra);
}

/* The number in file name of dir (0 if none). */
static long read_count(const char *name) {
  char p[600];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return atol(rc_slurp(p));
}

/* The writes an uninterrupted run of out (extra arguments) makes to it. */
static long count_writes(const char *out, const char *extra) {
  char cmd[2048], env[1024], log[600];
  snprintf(env, sizeof env, "LD_PRELOAD=%s MPX_KILLWRITE_COUNT=%s/%s.count",
           shim, dir, out);
  job_cmd(cmd, sizeof cmd, env, out, extra);
  snprintf(log, sizeof log, "%s/%s.log", dir, out);
  CU_ASSERT_EQUAL(rc_run(cmd, log), 0);
  char name[300];
  snprintf(name, sizeof name, "%s.count", out);
  return read_count(name);
}

/* Starts the run of out killed at its nth write (n 0: not killed), its
 * log in out.<tag>.log. */
static pid_t start_killed(const char *out, long n, const char *extra,
                          const char *tag) {
  char cmd[2048], env[1024], log[600];
  if (n > 0)
    snprintf(env, sizeof env, "LD_PRELOAD=%s MPX_KILLWRITE_AT=%ld", shim, n);
  else
    env[0] = '\0';
  job_cmd(cmd, sizeof cmd, env, out, extra);
  snprintf(log, sizeof log, "%s/%s.%s.log", dir, out, tag);
  return rc_start(cmd, log);
}

/* Whether run i (outs[i], killed at its kill[i]th write, none when 0)
 * ended as it should with status st: 0, or with want_any also killed
 * (128 + SIGKILL; 0 there is a point past the run's writes). */
static int run_ok(char (*outs)[64], const long *kill, int i, int st,
                  const char *extra, const char *tag, int want_any) {
  if (!want_any && st != 0) {
    printf("\n  %s (%s): exit %d: %s", outs[i], tag, st, extra);
    return 0;
  }
  if (want_any && st != 0 && st != 137) {
    printf("\n  %s killed at write %ld: exit %d", outs[i], kill[i], st);
    return 0;
  }
  return 1;
}

/* Runs, RUNS_AT_ONCE at a time (the next one starts as soon as one ends),
 * for every i in [0, n): the job of outs[i] killed at its kill[i]th write
 * (none when 0) with extra arguments; returns the runs that did not end
 * as run_ok() wants. */
static int run_all(char (*outs)[64], const long *kill, int n, const char *extra,
                   const char *tag, int want_any) {
  int bad = 0, next = 0, running = 0;
  pid_t pid[RUNS_AT_ONCE] = {0};
  int which[RUNS_AT_ONCE];
  while (next < n || running > 0) {
    for (int k = 0; k < RUNS_AT_ONCE && next < n; k++)
      if (!pid[k]) {
        which[k] = next;
        pid[k] = start_killed(outs[next], kill[next], extra, tag);
        next++;
        running++;
      }
    usleep(5000);
    for (int k = 0; k < RUNS_AT_ONCE; k++) {
      int st;
      if (pid[k] && rc_poll(pid[k], &st)) {
        bad += !run_ok(outs, kill, which[k], st, extra, tag, want_any);
        pid[k] = 0;
        running--;
      }
    }
  }
  return bad;
}

/* killcheck.py ref outs...: returns its exit status. */
static int check_all(const char *ref, char (*outs)[64], int n,
                     const char *name) {
  size_t cap = 1024 + (size_t)n * 320;
  char *args = malloc(cap), log[600];
  size_t len = (size_t)snprintf(args, cap, "%s/%s", dir, ref);
  for (int i = 0; i < n; i++)
    len += (size_t)snprintf(args + len, cap - len, " %s/%s", dir, outs[i]);
  snprintf(log, sizeof log, "%s/%s.check.log", dir, name);
  int rc = jt_py(pydir, "killcheck.py", args, log);
  free(args);
  const char *t = rc_slurp(log);
  printf("\n  %.*s", (int)(strlen(t) > 1500 ? 1500 : strlen(t)), t);
  return rc;
}

/* Every stride-th write of a run (extra arguments), killed there and
 * resumed. */
static void sweep(const char *name, const char *extra, int stride) {
  char ref[64];
  snprintf(ref, sizeof ref, "%s-ref.h5", name);
  long w = count_writes(ref, extra);
  printf("\n  %s: an uninterrupted run makes %ld writes to its output", name,
         w);
  CU_ASSERT_FATAL(w > 20 && w < 2000);
  int n = ((int)w + stride - 1) / stride;
  char(*outs)[64] = calloc((size_t)n, sizeof *outs);
  long *kill = calloc((size_t)n, sizeof *kill);
  CU_ASSERT_FATAL(outs && kill);
  for (int i = 0; i < n; i++) {
    kill[i] = 1 + (long)i * stride;
    snprintf(outs[i], sizeof outs[i], "%s-%ld.h5", name, kill[i]);
  }
  CU_ASSERT_EQUAL(run_all(outs, kill, n, extra, "killed", 1), 0);
  char resume[256];
  snprintf(resume, sizeof resume, "%s --resume", extra);
  long *none = calloc((size_t)n, sizeof *none);
  CU_ASSERT_EQUAL(run_all(outs, none, n, resume, "resumed", 0), 0);
  CU_ASSERT_EQUAL(check_all(ref, outs, n, name), 0);
  free(none);
  free(kill);
  free(outs);
}

static void test_plain(void) {
  sweep("plain", "", 1);
}

static void test_gzip(void) {
  sweep("gzip", "--gzip 1", 3);
}

/* A first run killed halfway through its writes (inside a commit); its
 * resume killed at every third write of its own; resumed again. */
static void test_resume_killed(void) {
  char cmd[2048];
  /* the first run's writes up to its third commit, and a kill in it */
  long w = count_writes("twice-ref.h5", "");
  CU_ASSERT_FATAL(w > 20);
  char base[1][64] = {"twice-base.h5"};
  long at = w / 2;
  CU_ASSERT_EQUAL(run_all(base, &at, 1, "", "killed", 1), 0);
  /* how many writes a resume of it makes */
  snprintf(cmd, sizeof cmd,
           "cd %s && cp twice-base.h5 twice-count.h5 && cp "
           "twice-base.h5.mpxrec twice-count.h5.mpxrec",
           dir);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  long r = count_writes("twice-count.h5", "--resume");
  printf("\n  a resume after a kill at write %ld of %ld makes %ld writes", at,
         w, r);
  CU_ASSERT_FATAL(r > 5 && r < 2000);
  int n = ((int)r + 2) / 3;
  char(*outs)[64] = calloc((size_t)n, sizeof *outs);
  long *kill = calloc((size_t)n, sizeof *kill);
  long *none = calloc((size_t)n, sizeof *none);
  CU_ASSERT_FATAL(outs && kill && none);
  for (int i = 0; i < n; i++) {
    kill[i] = 1 + 3L * i;
    snprintf(outs[i], sizeof outs[i], "twice-%ld.h5", kill[i]);
    snprintf(cmd, sizeof cmd,
             "cd %s && cp twice-base.h5 %s && cp twice-base.h5.mpxrec "
             "%s.mpxrec",
             dir, outs[i], outs[i]);
    CU_ASSERT_EQUAL(system(cmd), 0);
  }
  CU_ASSERT_EQUAL(run_all(outs, kill, n, "--resume", "killed", 1), 0);
  CU_ASSERT_EQUAL(run_all(outs, none, n, "--resume", "resumed", 0), 0);
  CU_ASSERT_EQUAL(check_all("twice-ref.h5", outs, n, "twice"), 0);
  free(none);
  free(kill);
  free(outs);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: test_killwrite W4JOB KILLWRITE_SO PY_DIR\n");
    return 2;
  }
  w4job = argv[1];
  shim = argv[2];
  pydir = argv[3];
  if (rc_cunit_init(dir, sizeof dir, "/tmp/mpx-killwrite-XXXXXX") != 0)
    return 2;
  CU_pSuite s = CU_add_suite("killwrite", NULL, NULL);
  CU_add_test(s, "killed at every write, resumed", test_plain);
  CU_add_test(s, "killed at every third write, gzip, resumed", test_gzip);
  CU_add_test(s, "a resume killed at every third write, resumed again",
              test_resume_killed);
  return rc_cunit_run(dir);
}
