#define _GNU_SOURCE
/*
 * test_guard.c -- a resume is of the same job, one process writes an
 * output at a time, and no failure is silent; as users run it:
 * `mpirun -n 3 w4job ...` writing the W4 workload to HDF5 (job-spec.md,
 * points 6-10). The outputs are compared with h5py (tests/py/h5same.py)
 * against an uninterrupted run and checked with tests/py/guard_h5.py.
 *
 * Usage (from ctest): test_guard W4JOB MPIEXEC "MPIEXEC FLAGS" PY_DIR
 *
 * - identity: a job killed mid-run with --identity A is not resumed as
 *   --identity B (MPX_EFILE naming "identity", A and B; output and record
 *   untouched), is resumed as A, and --overwrite as B starts over; the
 *   default identity ("w4 items=N") refuses another --items with the same
 *   --parts;
 * - compression: a job killed with --gzip 4 is not resumed without --gzip
 *   or with --gzip 6 (MPX_EFILE, "gzip"), is resumed with --gzip 4, and
 *   /mpx/runs then has 2 rows;
 * - lock: a second run (--resume) while one runs fails at once with
 *   MPX_EBUSY naming the holder's pid and host, the first ends fine; of
 *   two runs started together exactly one wins;
 * - the output's directory removed while the job runs: MPX_EIO,
 *   "removed", the path, never "job: rc=0";
 * - commits on the interval while a slow input runs: "commit items=20" in
 *   the record long before the 21st (slow) part ends;
 * - SIGTERM, SIGINT, SIGUSR1 to every process of the run (as SLURM does):
 *   MPX_EINTR, "interrupted", "committed K of N inputs", "resume"; the
 *   resume completes the job. The same signals to mpirun alone: Open MPI
 *   4.1 forwards SIGUSR1 to the ranks at once (so the job is interrupted
 *   as above), but answers SIGTERM and SIGINT by sending the ranks SIGCONT,
 *   SIGTERM 1 s later and SIGKILL 1 s after that (odls_base_sigkill_timeout
 *   = 1), so there only the deterministic part is asserted: the run fails,
 *   nothing of it is left 5 s later, never "job: rc=0", and the resume
 *   completes the job.
 *
 * Every job is started with `exec`, so the pid rc_start() returns is
 * mpirun's; a run that does not end in time is killed and counted as a
 * failure instead of hanging the test.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobtest.h"
#include "runcmd.h"

static const char *pydir;
static jt_w4job w4;
static char dir[256], host[256], ref[512];
static int have_ref;

enum { ITEMS = JT_ITEMS, PARTS = JT_PARTS };

/* Seconds a run may take before it counts as hung. */
#define RUN_TIMEOUT 60.0

/* dir/name */
static const char *at(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", dir, name);
  return buf;
}

/* Sends sig to every process of the run writing out. */
static void signal_job(const char *out, const char *sig) {
  if (!jt_signal_job(out, sig))
    fprintf(stderr, "pkill -%s found nothing for %s\n", sig, out);
}

/* Runs a job to its end (at most RUN_TIMEOUT); returns its status. */
static int run_job(const char *cmd, const char *log, const char *out) {
  return jt_finish_within(rc_start(cmd, log), out, RUN_TIMEOUT);
}

/* Whether the log of a run contains s (and says so when not). */
static int log_has(const char *log, const char *s) {
  if (strstr(rc_slurp(log), s))
    return 1;
  fprintf(stderr, "  %s lacks \"%s\"\n", log, s);
  return 0;
}

/* Runs a script of tests/py; shows its output when show is set or it
 * fails. */
static int py(const char *script, const char *args, int show) {
  char log[512], name[64];
  snprintf(name, sizeof name, "py-%d.log", (int)getpid()); /* cases' own */
  int rc = jt_py(pydir, script, args, at(log, sizeof log, name));
  if (show || rc != 0)
    printf("%s", rc_slurp(log));
  return rc;
}

/* h5same.py: every dataset of a equals b's. */
static int same_h5(const char *a, const char *b) {
  char args[1100];
  snprintf(args, sizeof args, "%s %s", a, b);
  return py("h5same.py", args, 0);
}

/* A run killed by the writer hook MPX_TEST_KILL=hook; returns what its
 * record claims (after every process of it is gone). */
static long killed_run(const char *out, const char *hook, const char *extra,
                       const char *logname) {
  char cmd[4096], env[128], log[512];
  snprintf(env, sizeof env, "MPX_TEST_KILL=%s", hook);
  jt_job_cmd(cmd, sizeof cmd, &w4, 400, env, out, extra);
  int st = run_job(cmd, at(log, sizeof log, logname), out);
  CU_ASSERT(st != 0 && st != -1); /* it really was killed */
  CU_ASSERT(jt_wait_gone(out));
  char rec[600];
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  long claimed = jt_recorded_items(rec);
  CU_ASSERT(claimed > 0 && claimed < PARTS);
  return claimed;
}

/* A resume that must complete: exit 0, recorded = claimed, computed = the
 * rest, datasets equal to the uninterrupted run's. */
static void resume_ok(const char *out, const char *extra, long claimed,
                      const char *logname) {
  char cmd[4096], log[512], rc[32] = "";
  long recorded = -1, computed = -1;
  jt_job_cmd(cmd, sizeof cmd, &w4, 400, "", out, extra);
  at(log, sizeof log, logname);
  CU_ASSERT_EQUAL(run_job(cmd, log, out), 0);
  CU_ASSERT_EQUAL(jt_log_report(log, rc, &recorded, &computed), 0);
  CU_ASSERT_STRING_EQUAL(rc, "0");
  CU_ASSERT_EQUAL(recorded, claimed);
  CU_ASSERT_EQUAL(computed, PARTS - claimed);
  if (have_ref)
    CU_ASSERT_EQUAL(same_h5(ref, out), 0);
}

/* A run that must be refused with exit 1, MPX_E<code>, the words in
 * need[] (NULL-terminated), leaving output and record byte for byte. */
static void refused(const char *out, const char *extra, const char *code,
                    const char *const need[], const char *logname) {
  char cmd[4096], log[512];
  jt_sums s1, s2;
  jt_job_md5(out, &s1);
  jt_job_cmd(cmd, sizeof cmd, &w4, 400, "", out, extra);
  at(log, sizeof log, logname);
  CU_ASSERT_EQUAL(run_job(cmd, log, out), 1);
  CU_ASSERT(log_has(log, code));
  for (int i = 0; need[i]; i++)
    CU_ASSERT(log_has(log, need[i]));
  CU_ASSERT(!strstr(rc_slurp(log), "job: rc=0"));
  jt_job_md5(out, &s2);
  CU_ASSERT(s1.out[0] && s1.rec[0]);
  CU_ASSERT_STRING_EQUAL(s1.out, s2.out); /* untouched */
  CU_ASSERT_STRING_EQUAL(s1.rec, s2.rec);
}

/* ---- the uninterrupted reference ---------------------------------------- */

static void test_reference(void) {
  char cmd[4096], log[512], args[600];
  at(ref, sizeof ref, "ref.h5");
  jt_job_cmd(cmd, sizeof cmd, &w4, 400, "", ref, "");
  CU_ASSERT_EQUAL_FATAL(run_job(cmd, at(log, sizeof log, "ref.log"), ref), 0);
  char rc[32] = "";
  long recorded = -1, computed = -1;
  CU_ASSERT_EQUAL_FATAL(jt_log_report(log, rc, &recorded, &computed), 0);
  CU_ASSERT_STRING_EQUAL(rc, "0");
  CU_ASSERT_EQUAL(recorded, 0);
  CU_ASSERT_EQUAL(computed, PARTS);
  snprintf(args, sizeof args, "--w4 %d %s", ITEMS, ref);
  CU_ASSERT_EQUAL_FATAL(py("h5same.py", args, 0), 0); /* numpy's values */
  have_ref = 1;
}

/* ---- identity ----------------------------------------------------------- */

static void test_identity(void) {
  char out[512];
  at(out, sizeof out, "ident.h5");
  long claimed =
      killed_run(out, "recorded:2", "--identity dataset-v1", "ident-kill.log");
  const char *need[] = {"identity", "dataset-v1", "dataset-v2", NULL};
  refused(out, "--resume --identity dataset-v2", "MPX_EFILE", need,
          "ident-other.log");
  resume_ok(out, "--resume --identity dataset-v1", claimed, "ident-same.log");
  /* --overwrite with another identity starts over */
  resume_ok(out, "--overwrite --identity dataset-v2", 0, "ident-over.log");
  printf("  identity: killed with %ld of %d recorded; other identity "
         "refused, same resumed, overwrite started over\n",
         claimed, PARTS);
}

static void test_identity_items(void) {
  char out[512];
  at(out, sizeof out, "items.h5");
  long claimed = killed_run(out, "recorded:2", "", "items-kill.log");
  /* same task and number of inputs (--parts), other data: the default
   * identity "w4 items=N" tells them apart */
  const char *need[] = {"identity", "w4 items=4000", "w4 items=4001", NULL};
  refused(out, "--resume --items 4001", "MPX_EFILE", need, "items-other.log");
  resume_ok(out, "--resume", claimed, "items-same.log");
}

/* ---- compression -------------------------------------------------------- */

static void test_compression(void) {
  char out[512], args[600];
  at(out, sizeof out, "gz.h5");
  long claimed = killed_run(out, "recorded:2", "--gzip 4", "gz-kill.log");
  const char *need[] = {"gzip", NULL};
  refused(out, "--resume", "MPX_EFILE", need, "gz-none.log");
  refused(out, "--resume --gzip 6", "MPX_EFILE", need, "gz-6.log");
  resume_ok(out, "--resume --gzip 4", claimed, "gz-4.log");
  snprintf(args, sizeof args, "gzip %s 4", out);
  CU_ASSERT_EQUAL(py("guard_h5.py", args, 0), 0);
  /* the first run and the resume that did work; not the refused ones */
  snprintf(args, sizeof args, "runs %s 2", out);
  CU_ASSERT_EQUAL(py("guard_h5.py", args, 1), 0);
}

/* ---- lock --------------------------------------------------------------- */

/* Waits until the record of out holds a commit line while the run pid
 * goes on; returns 1 then. Otherwise (pid ended first, or no commit in
 * 20 s: pid is killed) returns 0 with pid's status (or -1) in *status. */
static int wait_commit(const char *out, pid_t pid, int *status) {
  char rec[600];
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  for (double until = rc_now() + 20; rc_now() < until; usleep(10000)) {
    if (rc_poll(pid, status))
      return 0;
    if (jt_recorded_items(rec) > 0)
      return 1;
  }
  fprintf(stderr, "no commit of %s in 20 s\n", out);
  jt_finish_within(pid, out, 0);
  *status = -1;
  return 0;
}

static void test_lock(void) {
  char out[512], cmd[4096], log1[512], log2[512], pids[512];
  at(out, sizeof out, "lock.h5");
  at(log1, sizeof log1, "lock-1.log");
  at(log2, sizeof log2, "lock-2.log");
  /* 4000 rows x 2 ms on 2 workers: about 4 s */
  jt_job_cmd(cmd, sizeof cmd, &w4, 2000, "", out, "");
  pid_t first = rc_start(cmd, log1);
  int st1 = -1;
  int started = wait_commit(out, first, &st1);
  CU_ASSERT_FATAL(started);
  /* the ranks of the first run; the lock holder is one of them */
  snprintf(cmd, sizeof cmd, "pgrep -f -- '^%s --out %s ' > %s", w4.path, out,
           at(pids, sizeof pids, "lock.pids"));
  CU_ASSERT_EQUAL(system(cmd), 0);
  char holders[256];
  snprintf(holders, sizeof holders, "%s", rc_slurp(pids));
  for (char *c = holders; *c; c++)
    if (*c == '\n')
      *c = ' ';
  /* the lock file is there while the run holds it */
  char lock[600];
  struct stat sb;
  snprintf(lock, sizeof lock, "%s.mpxlock", out);
  CU_ASSERT_EQUAL(stat(lock, &sb), 0);
  jt_job_cmd(cmd, sizeof cmd, &w4, 2000, "", out, "--resume");
  double t0 = rc_now();
  int st2 = run_job(cmd, log2, out);
  double took = rc_now() - t0;
  int first_running = !rc_poll(first, &st1);
  CU_ASSERT_EQUAL(st2, 1);
  /* MPX_EBUSY itself proves the runs overlapped (only a live run holds the
   * lock); whether the first still runs when the second has ended depends
   * on how long MPI takes to start here (seconds under the sanitizers), so
   * it is reported, not asserted. */
  CU_ASSERT(log_has(log2, "MPX_EBUSY"));
  int host_named = jt_has_word(rc_slurp(log2), host);
  if (!host_named)
    fprintf(stderr, "  %s does not name the host %s\n", log2, host);
  CU_ASSERT(host_named);
  CU_ASSERT(!strstr(rc_slurp(log2), "job: rc=0"));
  int named = 0;
  for (char *p = holders, *e; *p; p = e) {
    long pid = strtol(p, &e, 10);
    if (e == p)
      break;
    char want[64];
    snprintf(want, sizeof want, "pid %ld", pid);
    if (jt_has_word(rc_slurp(log2), want))
      named = 1;
  }
  if (!named)
    fprintf(stderr, "  %s names none of the pids %s\n", log2, holders);
  CU_ASSERT(named);
  /* the first goes on undisturbed */
  if (first_running)
    st1 = jt_finish_within(first, out, RUN_TIMEOUT);
  CU_ASSERT_EQUAL(st1, 0);
  char rc[32] = "";
  long recorded = -1, computed = -1;
  CU_ASSERT_EQUAL(jt_log_report(log1, rc, &recorded, &computed), 0);
  CU_ASSERT_STRING_EQUAL(rc, "0");
  CU_ASSERT_EQUAL(computed, PARTS);
  if (have_ref)
    CU_ASSERT_EQUAL(same_h5(ref, out), 0);
  printf("  lock: second run ended after %.2f s with status %d, first %s\n",
         took, st2, first_running ? "still running" : "already ended");
}

static void test_lock_race(void) {
  char out[512], cmd[4096], log[2][512];
  at(out, sizeof out, "race.h5");
  at(log[0], sizeof log[0], "race-0.log");
  at(log[1], sizeof log[1], "race-1.log");
  jt_job_cmd(cmd, sizeof cmd, &w4, 1000, "", out, "--resume");
  pid_t p[2];
  p[0] = rc_start(cmd, log[0]);
  p[1] = rc_start(cmd, log[1]);
  int st[2];
  for (int i = 0; i < 2; i++)
    st[i] = jt_finish_within(p[i], out, RUN_TIMEOUT);
  CU_ASSERT(jt_wait_gone(out));
  int wins = (st[0] == 0) + (st[1] == 0);
  CU_ASSERT_EQUAL(wins, 1);
  for (int i = 0; i < 2 && wins == 1; i++) {
    if (st[i] == 0)
      continue;
    CU_ASSERT_EQUAL(st[i], 1);
    CU_ASSERT(log_has(log[i], "MPX_EBUSY"));
    CU_ASSERT(!strstr(rc_slurp(log[i]), "job: rc=0"));
  }
  if (have_ref)
    CU_ASSERT_EQUAL(same_h5(ref, out), 0);
  printf("  race: exit statuses %d and %d\n", st[0], st[1]);
}

/* ---- the output's directory removed ------------------------------------- */

static void test_dir_removed(void) {
  char sub[512], out[600], cmd[4096], log[512];
  at(sub, sizeof sub, "doomed");
  CU_ASSERT_EQUAL_FATAL(mkdir(sub, 0755), 0);
  snprintf(out, sizeof out, "%s/out.h5", sub);
  jt_job_cmd(cmd, sizeof cmd, &w4, 1000, "", out, "");
  pid_t pid = rc_start(cmd, at(log, sizeof log, "removed.log"));
  int st = -1;
  int started = wait_commit(out, pid, &st);
  CU_ASSERT(started);
  if (started) {
    usleep(200000);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", sub);
    CU_ASSERT_EQUAL(system(cmd), 0);
    st = jt_finish_within(pid, out, RUN_TIMEOUT);
  }
  CU_ASSERT(jt_wait_gone(out));
  CU_ASSERT_EQUAL(st, 1);
  CU_ASSERT(log_has(log, "MPX_EIO"));
  CU_ASSERT(log_has(log, "removed"));
  CU_ASSERT(log_has(log, sub)); /* the path (of the output or directory) */
  CU_ASSERT(!strstr(rc_slurp(log), "job: rc=0"));
}

/* ---- commits on the interval -------------------------------------------- */

static void test_commit_interval(void) {
  enum { K = 21 };
  char out[512], rec[600], cmd[4096], log[512], env[128], args[600];
  at(out, sizeof out, "interval.h5");
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  /* the first row of the last part, by numpy's array_split rule: the first
   * ITEMS % K parts have one row more */
  long q = ITEMS / K, r = ITEMS % K,
       last = (K - 1) * q + (r < K - 1 ? r : K - 1);
  snprintf(env, sizeof env, "MPX_W4_SLOW=%ld:4000", last);
  jt_job_cmd(cmd, sizeof cmd, &w4, 400, env, out, "--parts 21 --commit 0.2");
  double t0 = rc_now(), seen = -1;
  pid_t pid = rc_start(cmd, at(log, sizeof log, "interval.log"));
  int st = -1, done = 0;
  while (!(done = rc_poll(pid, &st)) && rc_now() - t0 < RUN_TIMEOUT) {
    if (seen < 0 && jt_record_has(rec, K - 1))
      seen = rc_now() - t0;
    usleep(10000);
  }
  if (!done)
    st = jt_finish_within(pid, out, 0);
  double end = rc_now() - t0;
  CU_ASSERT_EQUAL(st, 0);
  /* committed while the slow part still ran, well before the end */
  CU_ASSERT(seen > 0);
  CU_ASSERT(seen > 0 && end - seen > 1.0);
  CU_ASSERT(jt_record_has(rec, K));
  snprintf(args, sizeof args, "--w4 %d %s", ITEMS, out);
  CU_ASSERT_EQUAL(py("h5same.py", args, 0), 0);
  printf("  interval: \"commit items=20\" at %.2f s (%s), job ended at "
         "%.2f s\n",
         seen, seen > 0 ? "seen" : "never seen before the end", end);
}

/* ---- signals ------------------------------------------------------------ */

/* A run on out (2 ms per row: about 4 s, so it cannot finish in the 2 s
 * mpirun takes to bring a job down) is given sig 0.3 s after its first
 * commit, by pkill to every process of it (all = 1) or to mpirun alone;
 * returns the status (or -1), sets *claimed to what its record then holds
 * and *took to the seconds from the signal to mpirun's exit. */
static int signalled_run(const char *out, const char *sig, int signo, int all,
                         const char *logname, long *claimed, double *took) {
  char cmd[4096], log[512], rec[600];
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  jt_job_cmd(cmd, sizeof cmd, &w4, 2000, "", out, "");
  pid_t pid = rc_start(cmd, at(log, sizeof log, logname));
  int st = -1;
  int started = wait_commit(out, pid, &st);
  CU_ASSERT(started);
  if (started) {
    usleep(300000);
    if (rc_poll(pid, &st)) {
      CU_FAIL("the run ended before the signal");
    } else {
      double t0 = rc_now();
      if (all)
        signal_job(out, sig);
      else
        kill(pid, signo); /* pid is mpirun's (exec) */
      st = jt_finish_within(pid, out, 30);
      *took = rc_now() - t0;
    }
  }
  CU_ASSERT(jt_wait_gone(out));
  *claimed = jt_recorded_items(rec);
  return st;
}

static void interrupted(const char *sig, int signo, int all) {
  char out[512], name[64], log[512], want[80];
  long claimed = -1;
  double took = 0;
  snprintf(name, sizeof name, "sig-%s-%s.h5", sig, all ? "all" : "mpirun");
  at(out, sizeof out, name);
  snprintf(name, sizeof name, "sig-%s-%s.log", sig, all ? "all" : "mpirun");
  at(log, sizeof log, name);
  int st = signalled_run(out, sig, signo, all, name, &claimed, &took);
  CU_ASSERT(st != 0 && st != -1);
  CU_ASSERT(!strstr(rc_slurp(log), "job: rc=0"));
  CU_ASSERT(log_has(log, "MPX_EINTR"));
  CU_ASSERT(log_has(log, "interrupted"));
  CU_ASSERT(log_has(log, "committed"));
  CU_ASSERT(log_has(log, "resume"));
  snprintf(want, sizeof want, "committed %ld of %d inputs", claimed, PARTS);
  CU_ASSERT(log_has(log, want)); /* what the record holds */
  CU_ASSERT(claimed > 0 && claimed < PARTS);
  snprintf(name, sizeof name, "sig-%s-%s-resume.log", sig,
           all ? "all" : "mpirun");
  resume_ok(out, "--resume", claimed, name);
  printf("  SIG%s to %s: exit %d after %.2f s, %ld of %d committed\n", sig,
         all ? "every process" : "mpirun alone", st, took, claimed, PARTS);
}

static void test_sigterm(void) {
  interrupted("TERM", SIGTERM, 1);
}

static void test_sigint(void) {
  interrupted("INT", SIGINT, 1);
}

static void test_sigusr1(void) {
  interrupted("USR1", SIGUSR1, 1);
}

/* mpirun forwards SIGUSR1 to every rank at once: as above. */
static void test_sigusr1_mpirun(void) {
  interrupted("USR1", SIGUSR1, 0);
}

/* mpirun answers SIGTERM/SIGINT with SIGTERM to the ranks after 1 s and
 * SIGKILL after 2 s: whether the job's interruption wins that race is not
 * deterministic, so only what is is asserted. */
static void mpirun_only(const char *sig, int signo) {
  char out[512], name[64], log[512];
  long claimed = -1;
  double took = 0;
  snprintf(name, sizeof name, "sig-%s-mpirun.h5", sig);
  at(out, sizeof out, name);
  snprintf(name, sizeof name, "sig-%s-mpirun.log", sig);
  at(log, sizeof log, name);
  int st = signalled_run(out, sig, signo, 0, name, &claimed, &took);
  CU_ASSERT(st != 0 && st != -1);
  CU_ASSERT(!strstr(rc_slurp(log), "job: rc=0"));
  int eintr = strstr(rc_slurp(log), "MPX_EINTR") != NULL;
  snprintf(name, sizeof name, "sig-%s-mpirun-resume.log", sig);
  resume_ok(out, "--resume", claimed, name);
  printf("  SIG%s to mpirun alone: exit %d after %.2f s, %ld of %d "
         "committed, %s\n",
         sig, st, took, claimed, PARTS,
         eintr ? "the job reported MPX_EINTR"
               : "no MPX_EINTR (ranks killed first)");
}

static void test_sigterm_mpirun(void) {
  mpirun_only("TERM", SIGTERM);
}

static void test_sigint_mpirun(void) {
  mpirun_only("INT", SIGINT);
}

int main(int argc, char **argv) {
  if (jt_args(argc, argv, "test_guard W4JOB MPIEXEC FLAGS PY_DIR", &w4,
              &pydir) != 0)
    return 2;
  w4.exec = 1; /* the pid rc_start() returns is mpirun's */
  if (gethostname(host, sizeof host) != 0)
    snprintf(host, sizeof host, "?");
  host[sizeof host - 1] = '\0';
  if (rc_cunit_init(dir, sizeof dir, "/tmp/mpx-guard-XXXXXX") != 0)
    return 2;
  CU_pSuite s = CU_add_suite("guard", NULL, NULL);
  CU_add_test(s, "uninterrupted reference run", test_reference);
  /* Alone, as ever: the second run must start while the first holds the
   * lock; two runs started together must overlap. */
  CU_add_test(s, "lock: a second run while one runs", test_lock);
  CU_add_test(s, "lock: two runs started together", test_lock_race);
  /* The rest side by side (three at a time): their runs mostly sleep, and
   * what they assert does not hang on how fast a neighbour leaves them to
   * run (a signal 0.3 s after a commit in a run of 4 s; a commit while a
   * part sleeps 4 s). The identity and compression cases are a ctest
   * entry of their own (job_guard_identity: MPX_TEST_ONLY), not run alone. */
  rc_add_case(s, "identity: other refused, same resumed, overwrite",
              test_identity);
  rc_add_case(s, "identity: other --items, same --parts refused",
              test_identity_items);
  rc_add_case(s, "compression: other gzip refused, same resumed, /mpx/runs",
              test_compression);
  rc_add_case(s, "output directory removed mid-run", test_dir_removed);
  rc_add_case(s, "commits on the interval while a slow part runs",
              test_commit_interval);
  rc_add_case(s, "SIGTERM to every process, resume", test_sigterm);
  rc_add_case(s, "SIGINT to every process, resume", test_sigint);
  rc_add_case(s, "SIGUSR1 to every process, resume", test_sigusr1);
  rc_add_case(s, "SIGUSR1 to mpirun alone (forwarded), resume",
              test_sigusr1_mpirun);
  rc_add_case(s, "SIGTERM to mpirun alone, resume", test_sigterm_mpirun);
  rc_add_case(s, "SIGINT to mpirun alone, resume", test_sigint_mpirun);
  printf("\n");
  return rc_cunit_run(dir);
}
