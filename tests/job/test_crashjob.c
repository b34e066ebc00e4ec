#define _GNU_SOURCE
/*
 * test_crashjob.c -- jobs whose inputs crash, as users run them:
 * `mpirun -n 3 w4job --crash-parts SPEC ...` writing the W4 workload to
 * HDF5, where the parts SPEC lists raise SIGSEGV, call abort(), call
 * exit(0) or hang (w4job's task "w4_crashy"). The outputs are checked
 * with h5py: tests/py/crashcheck.py (each part's status and message, the
 * rows of every successful part against numpy's W4) and tests/py/h5same.py
 * (against another output, or against numpy's W4 over every part).
 *
 * Usage (from ctest): test_crashjob W4JOB MPIEXEC "MPIEXEC FLAGS" PY_DIR
 *
 * - recorded: with --isolation and --task-timeout 0.5, one part of each
 *   kind fails alone: exit 0, failed = 4, /mpx/item_status -24 (SIGSEGV,
 *   SIGABRT), -25 (exit(0)), -26 (time limit) at exactly those parts, 0
 *   and the W4 rows elsewhere;
 * - killed: that job gets SIGKILL (the whole process group and every
 *   process of the run) at 3 points of progress (the output created, 12
 *   and 24 inputs recorded), plus a random 0-30 ms (the seed is printed),
 *   and is resumed with the same flags: recorded = what its record
 *   claimed, the rest computed, and the output equals the uninterrupted
 *   run's;
 * - retries: with --retries 2 and W4JOB_CRASH_ONCE_DIR (each listed part
 *   crashes the first time only), every part succeeds (failed = 0) and
 *   the output holds numpy's W4 over every part;
 * - retry failed: without retries the crashes are recorded (failed = 4);
 *   --retry-failed then computes them again from the commit holding the
 *   first (failed = 0, numpy's W4 everywhere), a second --retry-failed
 *   finds the job complete and changes nothing, and --retry-failed on
 *   parts that crash every time records the same failures again;
 * - no isolation: a part that segfaults in a worker rank takes the job
 *   down (never exit 0, never "job: rc=0"); a resume with --isolation
 *   keeps what was committed and finishes the job with the crash
 *   recorded: the recovery path when a whole rank is lost.
 *
 * Every job is started with `exec`, so the pid rc_start() returns is
 * mpirun's; a run that does not end in time is killed and counted as a
 * failure instead of hanging the test.
 */
#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "jobtest.h"
#include "runcmd.h"

static const char *pydir;
static jt_w4job w4;
static char dir[256], ref[512];
static int have_ref;

enum { ITEMS = JT_ITEMS, PARTS = JT_PARTS };

/* One part of each kind; the hang needs the time limit of ISOLATED. */
#define SPEC "3:segv,7:abort,11:exit,12:hang"
#define NCRASH 4
#define ISOLATED "--isolation --task-timeout 0.5"

/* Microseconds per row: a job of about 1 s on 2 workers. */
#define DELAY_US 400

/* Seconds a run may take before it counts as hung. */
#define RUN_TIMEOUT 60.0

/* dir/name */
static const char *at(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", dir, name);
  return buf;
}

/* The mpirun command line of a job: w4job on 3 ranks over ITEMS rows in
 * PARTS parts, with extra arguments; once_dir (or NULL) becomes
 * W4JOB_CRASH_ONCE_DIR on every rank. */
static void job_cmd(char *buf, size_t cap, const char *out,
                    const char *once_dir, const char *extra) {
  char env[600] = "";
  if (once_dir)
    snprintf(env, sizeof env, "W4JOB_CRASH_ONCE_DIR=%s", once_dir);
  jt_job_cmd(buf, cap, &w4, DELAY_US, env, out, extra);
}

/* Runs a job to its end (at most RUN_TIMEOUT); returns its status. */
static int run_job(const char *cmd, const char *log, const char *out) {
  return jt_finish_within(rc_start(cmd, log), out, RUN_TIMEOUT);
}

/* What a run reported: "job: rc=X items=... recorded=R computed=C
 * failed=F". */
typedef struct report {
  char rc[32];
  long recorded, computed, failed;
} report;

/* Reads the report of the run logged in log into *r; returns 0, or -1
 * (and says so) when the log holds none. */
static int read_report(const char *log, report *r) {
  const char *s = rc_slurp(log), *p = strstr(s, "job: rc=");
  memset(r, 0, sizeof *r);
  r->recorded = r->computed = r->failed = -1;
  if (!p || sscanf(p,
                   "job: rc=%31s items=%*d recorded=%ld computed=%ld "
                   "failed=%ld",
                   r->rc, &r->recorded, &r->computed, &r->failed) != 4) {
    fprintf(stderr, "no report in %s:\n%s\n", log, s);
    return -1;
  }
  return 0;
}

/* Set while a check is meant to fail: its output is not shown. */
static int expect_fail;

/* Runs a python checker of pydir with args; prints its output when it
 * fails (unless expect_fail). Returns its exit status. */
static int py(const char *script, const char *args) {
  char log[512], name[64];
  snprintf(name, sizeof name, "py-%d.log", (int)getpid()); /* cases' own */
  at(log, sizeof log, name);
  int rc = jt_py(pydir, script, args, log);
  if (rc != 0 && !expect_fail)
    fprintf(stderr, "%s %s: %s\n", script, args, rc_slurp(log));
  return rc;
}

/* crashcheck.py: out records exactly the crashes of spec ("-": none) and
 * numpy's W4 rows for every other part. */
static int crashcheck(const char *out, const char *spec) {
  char args[1100];
  snprintf(args, sizeof args, "%d %d %s %s", ITEMS, PARTS, out, spec);
  return py("crashcheck.py", args);
}

/* h5same.py a b: the same datasets and /mpx records. */
static int same_h5(const char *a, const char *b) {
  char args[1100];
  snprintf(args, sizeof args, "%s %s", a, b);
  return py("h5same.py", args);
}

/* h5same.py --w4: numpy's W4 over every part, no failure recorded. */
static int w4_h5(const char *out) {
  char args[1100];
  snprintf(args, sizeof args, "--w4 %d %s", ITEMS, out);
  return py("h5same.py", args);
}

/* Makes dir/name (empty) for W4JOB_CRASH_ONCE_DIR in buf. */
static const char *once_dir(char *buf, size_t cap, const char *name) {
  at(buf, cap, name);
  mkdir(buf, 0755);
  return buf;
}

/* How many of SPEC's parts left their marker in the once directory d. */
static int markers(const char *d) {
  static const int parts[NCRASH] = {3, 7, 11, 12};
  int n = 0;
  for (int i = 0; i < NCRASH; i++) {
    char path[600];
    struct stat st;
    snprintf(path, sizeof path, "%s/part.%d", d, parts[i]);
    n += stat(path, &st) == 0;
  }
  return n;
}

/* a. Every kind of crash fails its own part only. */
static void test_recorded(void) {
  char cmd[4096], log[512];
  report r;
  at(ref, sizeof ref, "ref.h5");
  at(log, sizeof log, "ref.log");
  job_cmd(cmd, sizeof cmd, ref, NULL, ISOLATED " --crash-parts " SPEC);
  double t0 = rc_now();
  CU_ASSERT_EQUAL_FATAL(run_job(cmd, log, ref), 0);
  double t = rc_now() - t0;
  CU_ASSERT_EQUAL_FATAL(read_report(log, &r), 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.recorded, 0);
  CU_ASSERT_EQUAL(r.computed, PARTS);
  CU_ASSERT_EQUAL(r.failed, NCRASH);
  CU_ASSERT_EQUAL(crashcheck(ref, SPEC), 0);
  /* the checkers see a wrong expectation */
  expect_fail = 1;
  CU_ASSERT_NOT_EQUAL(crashcheck(ref, "3:segv,7:segv,11:exit,12:hang"), 0);
  CU_ASSERT_NOT_EQUAL(crashcheck(ref, "-"), 0);
  CU_ASSERT_NOT_EQUAL(w4_h5(ref), 0);
  expect_fail = 0;
  have_ref = r.failed == NCRASH && strcmp(r.rc, "0") == 0;
  printf("\n  %d parts, %s crash: exit 0, failed %ld, %.2f s\n", PARTS, SPEC,
         r.failed, t);
}

/* b. Killed at a point of progress (the record holding frac of the
 * inputs; the output created for frac 0) plus jitter_ms, and resumed. */
static void kill_and_resume(double frac, int jitter_ms, int k) {
  char cmd[4096], out[512], rec[520], log[512], name[64];
  snprintf(name, sizeof name, "k%d.h5", k);
  at(out, sizeof out, name);
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  snprintf(name, sizeof name, "k%d.log", k);
  at(log, sizeof log, name);
  job_cmd(cmd, sizeof cmd, out, NULL, ISOLATED " --crash-parts " SPEC);
  pid_t pid = rc_start(cmd, log);
  long want = (long)(frac * PARTS);
  double until = rc_now() + RUN_TIMEOUT;
  int st, ended;
  while (!(ended = rc_poll(pid, &st)) && rc_now() < until &&
         (frac > 0 ? jt_recorded_items(rec) < want : access(out, F_OK) != 0))
    usleep(2000);
  if (!ended) {
    usleep((useconds_t)jitter_ms * 1000);
    /* mpirun and every rank and task process at once: each has the
     * output path in its command line */
    kill(-pid, SIGKILL);
    if (!jt_signal_job(out, "KILL"))
      fprintf(stderr, "pkill found nothing for %s\n", out);
    st = rc_finish(pid);
  }
  CU_ASSERT(jt_wait_gone(out));
  CU_ASSERT_NOT_EQUAL(st, 0); /* it really was killed */
  long claimed = jt_recorded_items(rec);
  snprintf(name, sizeof name, "k%d-resume.log", k);
  at(log, sizeof log, name);
  job_cmd(cmd, sizeof cmd, out, NULL,
          ISOLATED " --crash-parts " SPEC " --resume");
  CU_ASSERT_EQUAL(run_job(cmd, log, out), 0);
  report r;
  CU_ASSERT_EQUAL(read_report(log, &r), 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.recorded, claimed);
  CU_ASSERT_EQUAL(r.computed, PARTS - claimed);
  CU_ASSERT_EQUAL(r.failed, NCRASH);
  if (have_ref)
    CU_ASSERT_EQUAL(same_h5(ref, out), 0);
  CU_ASSERT_EQUAL(crashcheck(out, SPEC), 0);
  printf("  kill at %4.2f +%2d ms: exit %3d, recorded %2ld of %d, resumed "
         "%s (+%ld, failed %ld)\n",
         frac, jitter_ms, st, claimed, PARTS, r.rc, r.computed, r.failed);
}

/* The kills: the output created (before any crash); 12 inputs recorded
 * (the segv, abort and exit among them: the commits stop at part 12 while
 * it hangs, so the kill most likely comes during the hang); 24, past
 * every crash. Their jitters are drawn in main (from the printed seed):
 * the cases run in processes of their own. */
static const double fracs[] = {0, 0.3, 0.6};
static int jitter_ms[3];

static void test_killed(int i) {
  printf("\n");
  kill_and_resume(fracs[i], jitter_ms[i], i);
}

/* c. Retries: each listed part crashes once, then succeeds. */
static void test_retries(void) {
  char cmd[4096], out[512], log[512], once[512];
  report r;
  at(out, sizeof out, "retries.h5");
  at(log, sizeof log, "retries.log");
  once_dir(once, sizeof once, "once-retries");
  job_cmd(cmd, sizeof cmd, out, once,
          ISOLATED " --retries 2 --crash-parts " SPEC);
  CU_ASSERT_EQUAL(run_job(cmd, log, out), 0);
  CU_ASSERT_EQUAL(read_report(log, &r), 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.computed, PARTS);
  CU_ASSERT_EQUAL(r.failed, 0);
  CU_ASSERT_EQUAL(markers(once), NCRASH); /* each did crash once */
  CU_ASSERT_EQUAL(w4_h5(out), 0);
  CU_ASSERT_EQUAL(crashcheck(out, "-"), 0);
  printf("\n  --retries 2: %d crashes retried, failed %ld\n", markers(once),
         r.failed);
}

/* d. Recorded failures computed again with --retry-failed. */
static void test_retry_failed(void) {
  char cmd[4096], out[512], log[512], once[512];
  report r;
  at(out, sizeof out, "rf.h5");
  at(log, sizeof log, "rf.log");
  once_dir(once, sizeof once, "once-rf");
  job_cmd(cmd, sizeof cmd, out, once, ISOLATED " --crash-parts " SPEC);
  CU_ASSERT_EQUAL_FATAL(run_job(cmd, log, out), 0);
  CU_ASSERT_EQUAL(read_report(log, &r), 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.failed, NCRASH);
  CU_ASSERT_EQUAL(markers(once), NCRASH);
  CU_ASSERT_EQUAL(crashcheck(out, SPEC), 0);
  /* again, with the failures computed again: they succeed now */
  at(log, sizeof log, "rf-retry.log");
  job_cmd(cmd, sizeof cmd, out, once,
          ISOLATED " --crash-parts " SPEC " --retry-failed");
  CU_ASSERT_EQUAL(run_job(cmd, log, out), 0);
  CU_ASSERT_EQUAL(read_report(log, &r), 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.failed, 0);
  /* kept: the commits before the one holding part 3, the first failure */
  CU_ASSERT(r.recorded >= 0 && r.recorded <= 3);
  CU_ASSERT_EQUAL(r.recorded + r.computed, PARTS);
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log), "retry failed"));
  CU_ASSERT_EQUAL(w4_h5(out), 0);
  CU_ASSERT_EQUAL(crashcheck(out, "-"), 0);
  long kept = r.recorded;
  /* once more: complete, nothing changes */
  jt_sums before, after;
  jt_job_md5(out, &before);
  at(log, sizeof log, "rf-again.log");
  CU_ASSERT_EQUAL(run_job(cmd, log, out), 0);
  CU_ASSERT_EQUAL(read_report(log, &r), 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.recorded, PARTS);
  CU_ASSERT_EQUAL(r.computed, 0);
  CU_ASSERT_EQUAL(r.failed, 0);
  jt_job_md5(out, &after);
  CU_ASSERT_STRING_EQUAL(before.out, after.out);
  CU_ASSERT_STRING_EQUAL(before.rec, after.rec);
  /* parts that crash every time: computed again, recorded again */
  if (!have_ref)
    return;
  char again[512];
  at(again, sizeof again, "rf-always.h5");
  snprintf(cmd, sizeof cmd, "cp %s %s && cp %s.mpxrec %s.mpxrec", ref, again,
           ref, again);
  CU_ASSERT_EQUAL_FATAL(rc_run(cmd, log), 0);
  at(log, sizeof log, "rf-always.log");
  job_cmd(cmd, sizeof cmd, again, NULL,
          ISOLATED " --crash-parts " SPEC " --retry-failed");
  CU_ASSERT_EQUAL(run_job(cmd, log, again), 0);
  CU_ASSERT_EQUAL(read_report(log, &r), 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT(r.recorded <= 3);
  CU_ASSERT_EQUAL(r.recorded + r.computed, PARTS);
  CU_ASSERT_EQUAL(r.failed, NCRASH);
  CU_ASSERT_EQUAL(crashcheck(again, SPEC), 0);
  CU_ASSERT_EQUAL(same_h5(ref, again), 0);
  printf("\n  --retry-failed: kept %ld, recomputed %ld, failed 0; crashing "
         "again: failed %ld\n",
         kept, PARTS - kept, r.failed);
}

/* e. Without isolation a crash takes the rank and the job down; a resume
 * with isolation finishes it. */
static void test_no_isolation(void) {
  char cmd[4096], out[512], rec[520], log[512];
  report r;
  at(out, sizeof out, "noiso.h5");
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  at(log, sizeof log, "noiso.log");
  job_cmd(cmd, sizeof cmd, out, NULL, "--crash-parts 20:segv");
  int st = run_job(cmd, log, out);
  CU_ASSERT_NOT_EQUAL(st, 0);
  CU_ASSERT_NOT_EQUAL(st, -1); /* it ended by itself */
  CU_ASSERT_PTR_NULL(strstr(rc_slurp(log), "job: rc=0 "));
  CU_ASSERT(jt_wait_gone(out));
  long claimed = jt_recorded_items(rec);
  /* the crashed part can never be committed; 20 parts of 40 ms on two
   * workers span commits every 0.1 s before it */
  CU_ASSERT(claimed > 0 && claimed <= 20);
  at(log, sizeof log, "noiso-resume.log");
  job_cmd(cmd, sizeof cmd, out, NULL,
          "--isolation --crash-parts 20:segv --resume");
  CU_ASSERT_EQUAL(run_job(cmd, log, out), 0);
  CU_ASSERT_EQUAL(read_report(log, &r), 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.recorded, claimed);
  CU_ASSERT_EQUAL(r.computed, PARTS - claimed);
  CU_ASSERT_EQUAL(r.failed, 1);
  CU_ASSERT_EQUAL(crashcheck(out, "20:segv"), 0);
  printf("\n  no isolation: exit %d with %ld of %d committed; resumed with "
         "isolation: %s, failed %ld\n",
         st, claimed, PARTS, r.rc, r.failed);
}

int main(int argc, char **argv) {
  if (jt_args(argc, argv, "test_crashjob W4JOB MPIEXEC FLAGS PY_DIR", &w4,
              &pydir) != 0 ||
      rc_cunit_init(dir, sizeof dir, "/tmp/mpx-crashjob-XXXXXX") != 0)
    return 2;
  w4.exec = 1; /* the pid rc_start() returns is mpirun's */
  unsigned seed = (unsigned)time(NULL);
  printf("seed %u\n", seed);
  srand(seed);
  for (int i = 0; i < 3; i++)
    jitter_ms[i] = rand() % 31;
  CU_pSuite s = CU_add_suite("crashjob", NULL, NULL);
  CU_add_test(s, "isolated crashes recorded, the job goes on", test_recorded);
  /* The rest side by side (three at a time): the runs mostly wait on
   * mpirun's start and end and the rows' sleeps. */
  for (int i = 0; i < 3; i++) {
    char name[80];
    snprintf(name, sizeof name, "kill -9 at %.2f, resume", fracs[i]);
    rc_add_case_arg(s, name, test_killed, i);
  }
  rc_add_case(s, "--retries: crashes once, then succeeds", test_retries);
  rc_add_case(s, "--retry-failed computes recorded failures again",
              test_retry_failed);
  rc_add_case(s,
              "no isolation: the job dies, a resume with isolation "
              "finishes it",
              test_no_isolation);
  return rc_cunit_run(dir);
}
