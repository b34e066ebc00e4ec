#define _GNU_SOURCE
/*
 * test_resume.c -- jobs run as users run them: `mpirun -n 3 w4job ...`
 * writing the W4 workload to HDF5, killed with SIGKILL at ten moments and
 * rerun with --resume; plus bad outputs (existing file, missing directory,
 * a full tmpfs) and an empty job. The files are checked with h5py
 * (tests/py/h5same.py) against an uninterrupted run and with h5ls/h5dump.
 *
 * Usage (from ctest): test_resume W4JOB MPIEXEC "MPIEXEC FLAGS" H5SAME_PY
 *
 * The kills: five at named points of the writer (MPX_TEST_KILL: after the
 * record is created, after an input is staged, after a flush and before
 * its record line, after a record line, before the final close; the root
 * raises SIGKILL and mpirun takes the job down), and five at points of
 * progress (the output just created; the record holding 15%, 30%, 45%,
 * 60% of the inputs), where the whole process group (mpirun and every
 * rank) gets SIGKILL wherever it is, writes included.
 * After each, the resumed run must report recorded = what the record
 * claimed and computed = the rest, and end with datasets equal to the
 * uninterrupted run's.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobtest.h"
#include "runcmd.h"

static const char *h5same;
static jt_w4job w4;
static char dir[256];
static double ref_seconds;

enum { ITEMS = JT_ITEMS, PARTS = JT_PARTS };

/* The mpirun command line for w4job with extra arguments and env. */
static void job_cmd(char *buf, size_t cap, const char *env, const char *out,
                    const char *extra) {
  jt_job_cmd(buf, cap, &w4, 400, env, out, extra);
}

/* h5same.py a b (its log beside b: cases run side by side). */
static int same_h5(const char *a, const char *b) {
  char args[1100], log[600];
  snprintf(args, sizeof args, "%s %s", a, b);
  snprintf(log, sizeof log, "%s.h5same.log", b);
  int rc = jt_py(NULL, h5same, args, log);
  if (rc != 0)
    fprintf(stderr, "h5same %s %s: %s\n", a, b, rc_slurp(log));
  return rc;
}

static void test_reference(void) {
  char cmd[4096], out[512], log[512];
  snprintf(out, sizeof out, "%s/ref.h5", dir);
  snprintf(log, sizeof log, "%s/ref.log", dir);
  job_cmd(cmd, sizeof cmd, "", out, "");
  double t0 = rc_now();
  CU_ASSERT_EQUAL_FATAL(rc_run(cmd, log), 0);
  ref_seconds = rc_now() - t0;
  char rc[32];
  long recorded, computed;
  CU_ASSERT_EQUAL_FATAL(jt_log_report(log, rc, &recorded, &computed), 0);
  CU_ASSERT_STRING_EQUAL(rc, "0");
  CU_ASSERT_EQUAL(recorded, 0);
  CU_ASSERT_EQUAL(computed, PARTS);
  /* numpy's own W4 values, through h5py */
  snprintf(cmd, sizeof cmd, "--w4 %d %s", ITEMS, out);
  CU_ASSERT_EQUAL(jt_py(NULL, h5same, cmd, log), 0);
  /* h5ls and h5dump show the datasets and the provenance */
  snprintf(cmd, sizeof cmd, "h5ls -r %s && h5dump -A %s", out, out);
  CU_ASSERT_EQUAL(rc_run(cmd, log), 0);
  const char *s = rc_slurp(log);
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "/feature"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "Dataset {4000/Inf, 64}"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "/mpx/item_status"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "ATTRIBUTE \"task\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "ATTRIBUTE \"end_time\""));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "ATTRIBUTE \"mpx_version\""));
  printf("\n  uninterrupted run: %.2f s\n", ref_seconds);
}

/* Kills one run (by hook, or by a timer when hook is NULL), resumes it
 * and compares. */
static void kill_and_resume(const char *hook, double frac, int k) {
  char cmd[4096], out[512], rec[520], log[512], env[128] = "";
  snprintf(out, sizeof out, "%s/k%d.h5", dir, k);
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  snprintf(log, sizeof log, "%s/k%d.log", dir, k);
  if (hook)
    snprintf(env, sizeof env, "MPX_TEST_KILL=%s", hook);
  job_cmd(cmd, sizeof cmd, env, out, "");
  pid_t pid = rc_start(cmd, log);
  int st;
  if (hook) {
    st = rc_finish(pid);
  } else {
    /* At a point of progress rather than of time, so that a slow
     * machine cannot let the run finish first: once the output exists
     * (frac 0), or once the record holds frac of the inputs. */
    long want = (long)(frac * PARTS);
    int ended;
    while (!(ended = rc_poll(pid, &st)) &&
           (frac > 0 ? jt_recorded_items(rec) < want : access(out, F_OK) != 0))
      usleep(2000);
    if (!ended) {
      /* mpirun and every rank at once: each has the output path in its
       * command line */
      kill(-pid, SIGKILL);
      if (!jt_signal_job(out, "KILL"))
        fprintf(stderr, "pkill found nothing for %s\n", out);
      st = rc_finish(pid);
    }
  }
  /* Wait until no process of the killed job is left. */
  CU_ASSERT(jt_wait_gone(out));
  CU_ASSERT_NOT_EQUAL(st, 0); /* it really was killed */
  long claimed = jt_recorded_items(rec);
  snprintf(log, sizeof log, "%s/k%d-resume.log", dir, k);
  job_cmd(cmd, sizeof cmd, "", out, "--resume");
  CU_ASSERT_EQUAL(rc_run(cmd, log), 0);
  char rc[32] = "";
  long recorded = -1, computed = -1;
  CU_ASSERT_EQUAL(jt_log_report(log, rc, &recorded, &computed), 0);
  CU_ASSERT_STRING_EQUAL(rc, "0");
  /* Every recorded input is kept; only the rest is computed. */
  CU_ASSERT_EQUAL(recorded, claimed);
  CU_ASSERT_EQUAL(computed, PARTS - claimed);
  char ref[512];
  snprintf(ref, sizeof ref, "%s/ref.h5", dir);
  CU_ASSERT_EQUAL(same_h5(ref, out), 0);
  printf("  kill %-12s %4.2f: exit %3d, recorded %2ld of %d, resumed %s "
         "(+%ld)\n",
         hook ? hook : "at progress", hook ? 0.0 : frac, st, claimed, PARTS, rc,
         computed);
}

static const char *const hooks[] = {"created:1", "staged:7", "flushed:2",
                                    "recorded:3", "closing:1"};
static const double fracs[] = {0, 0.15, 0.3, 0.45, 0.6};

/* Kill k: at a writer hook (k < 5), else at a point of progress. */
static void test_kill(int k) {
  if (k < 5)
    kill_and_resume(hooks[k], 0, k);
  else
    kill_and_resume(NULL, fracs[k - 5], k);
}

static void test_existing_output(void) {
  char cmd[4096], out[512], log[512], before[33], after[33];
  snprintf(out, sizeof out, "%s/ref.h5", dir);
  snprintf(log, sizeof log, "%s/exists.log", dir);
  jt_md5(out, before);
  job_cmd(cmd, sizeof cmd, "", out, "");
  CU_ASSERT_EQUAL(rc_run(cmd, log), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log), "MPX_EFILE"));
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log), "exists"));
  jt_md5(out, after);
  CU_ASSERT_STRING_EQUAL(before, after); /* untouched */
  /* a foreign file is not resumed either */
  char foreign[512];
  snprintf(foreign, sizeof foreign, "%s/foreign.h5", dir);
  snprintf(cmd, sizeof cmd, "cp %s %s", out, foreign);
  rc_run(cmd, log);
  job_cmd(cmd, sizeof cmd, "", foreign, "--resume");
  CU_ASSERT_EQUAL(rc_run(cmd, log), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log), "no completion record"));
  /* a record of another job is refused */
  snprintf(cmd, sizeof cmd, "cp %s.mpxrec %s.mpxrec", out, foreign);
  rc_run(cmd, log);
  snprintf(cmd, sizeof cmd,
           "env MPX_W4_DELAY_US=0 %s -n 2 %s %s --out %s --parts 9 --resume",
           w4.mpiexec, w4.flags, w4.path, foreign);
  CU_ASSERT_EQUAL(rc_run(cmd, log), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log), "records another job"));
  /* overwrite replaces it */
  job_cmd(cmd, sizeof cmd, "", foreign, "--overwrite");
  CU_ASSERT_EQUAL(rc_run(cmd, log), 0);
  CU_ASSERT_EQUAL(same_h5(out, foreign), 0);
}

static void test_bad_paths(void) {
  char cmd[4096], log[512];
  snprintf(log, sizeof log, "%s/bad.log", dir);
  job_cmd(cmd, sizeof cmd, "", "/nonexistent-dir/x.h5", "");
  CU_ASSERT_EQUAL(rc_run(cmd, log), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log), "/nonexistent-dir/x.h5"));
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log), "No such file or directory"));
  job_cmd(cmd, sizeof cmd, "", dir, ""); /* a directory */
  CU_ASSERT_EQUAL(rc_run(cmd, log), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log), "MPX_EFILE"));
  /* no inputs at all */
  snprintf(cmd, sizeof cmd, "%s -n 2 %s %s --out %s/empty.h5 --parts 0",
           w4.mpiexec, w4.flags, w4.path, dir);
  CU_ASSERT_EQUAL(rc_run(cmd, log), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log), "no inputs"));
  struct stat st;
  CU_ASSERT_NOT_EQUAL(stat("/nonexistent-dir", &st), 0);
}

static void test_full_disk(void) {
  char mnt[300], cmd[4096], out[512], log[512];
  if (geteuid() != 0) {
    /* Mounting a small tmpfs needs root: say so rather than fail. */
    printf("\n  skipped: the full-disk test mounts a tmpfs and needs root\n");
    return;
  }
  snprintf(mnt, sizeof mnt, "%s/tmpfs", dir);
  mkdir(mnt, 0755);
  if (mount("tmpfs", mnt, "tmpfs", 0, "size=8m") != 0) {
    fprintf(stderr, "cannot mount a tmpfs (%s): needs root\n", strerror(errno));
    CU_FAIL("mount tmpfs");
    return;
  }
  snprintf(out, sizeof out, "%s/full.h5", mnt);
  snprintf(log, sizeof log, "%s/full.log", dir);
  /* 200,000 rows of 64 floats: 51 MB into 8 MB */
  snprintf(cmd, sizeof cmd,
           "%s -n 3 %s %s --out %s --items 200000 --parts 200 --commit 0",
           w4.mpiexec, w4.flags, w4.path, out);
  CU_ASSERT_EQUAL(rc_run(cmd, log), 1);
  const char *s = rc_slurp(log);
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "MPX_EIO"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "No space left on device"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, out));
  /* What the record claims is on disk: move both to a roomy place and
   * resume; every claimed input must verify. */
  char rec[520], big[512];
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  long claimed = jt_recorded_items(rec);
  snprintf(big, sizeof big, "%s/full.h5", dir);
  snprintf(cmd, sizeof cmd, "cp %s %s && cp %s %s.mpxrec", out, big, rec, big);
  CU_ASSERT_EQUAL(rc_run(cmd, log), 0);
  umount(mnt);
  snprintf(cmd, sizeof cmd,
           "%s -n 3 %s %s --out %s --items 200000 --parts 200 --resume",
           w4.mpiexec, w4.flags, w4.path, big);
  CU_ASSERT_EQUAL(rc_run(cmd, log), 0);
  char rc[32] = "";
  long recorded = -1, computed = -1;
  CU_ASSERT_EQUAL(jt_log_report(log, rc, &recorded, &computed), 0);
  CU_ASSERT_EQUAL(recorded, claimed);
  CU_ASSERT_EQUAL(computed, 200 - claimed);
  CU_ASSERT(claimed > 0);
  snprintf(cmd, sizeof cmd, "--w4 200000 %s", big);
  CU_ASSERT_EQUAL(jt_py(NULL, h5same, cmd, log), 0);
  printf("\n  full tmpfs: failed cleanly with %ld of 200 inputs recorded\n",
         claimed);
}

int main(int argc, char **argv) {
  if (jt_args(argc, argv, "test_resume W4JOB MPIEXEC FLAGS H5SAME_PY", &w4,
              &h5same) != 0 ||
      rc_cunit_init(dir, sizeof dir, "/tmp/mpx-resume-XXXXXX") != 0)
    return 2;
  CU_pSuite s = CU_add_suite("job", NULL, NULL);
  CU_add_test(s, "uninterrupted run, h5py/h5ls/h5dump", test_reference);
  /* The rest side by side (three at a time): the runs mostly wait on
   * mpirun's start and end and the rows' sleeps. */
  for (int k = 0; k < 10; k++) {
    char name[80];
    if (k < 5)
      snprintf(name, sizeof name, "kill -9 at %s, resume", hooks[k]);
    else
      snprintf(name, sizeof name, "kill -9 at progress %.2f, resume",
               fracs[k - 5]);
    rc_add_case_arg(s, name, test_kill, k);
  }
  rc_add_case(s, "existing, foreign and overwritten outputs",
              test_existing_output);
  rc_add_case(s, "bad paths and no inputs", test_bad_paths);
  rc_add_case(s, "full disk (tmpfs)", test_full_disk);
  return rc_cunit_run(dir);
}
