#define _GNU_SOURCE
/*
 * test_app.c -- mpx-features run as users run it, on a spoken-digit data
 * set made by scripts/make_dataset.sh (espeak-ng): the HDF5 output is
 * compared with numpy's computation of the same features
 * (tests/py/features_ref.py, reading it with h5py); unreadable, missing
 * and non-WAV inputs are reported per file and recorded while the job goes
 * on; an existing output is kept; an empty input list, a bad list file and
 * an unwritable output fail clearly; --list and a single rank work.
 *
 * Usage: test_app MPX_FEATURES MPIEXEC "FLAGS" MAKE_DATASET FEATURES_REF
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runcmd.h"

static const char *app, *mpiexec, *flags, *mkdata, *ref;
static char dir[256], data[300], log_[300];

static int sh(const char *fmt, const char *a, const char *b) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, fmt, a, b);
  return rc_run(cmd, log_);
}

static void test_dataset(void) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "bash %s %s 40", mkdata, data);
  CU_ASSERT_EQUAL_FATAL(rc_run(cmd, log_), 0);
  CU_ASSERT_EQUAL(rc_run(cmd, log_), 0); /* idempotent */
  snprintf(cmd, sizeof cmd, "ls %s/*.wav | wc -l", data);
  rc_run(cmd, log_);
  CU_ASSERT_EQUAL(atoi(rc_slurp(log_)), 40);
}

static void test_job_and_numpy(void) {
  char cmd[8192], out[400], bad[400], empty[400];
  snprintf(out, sizeof out, "%s/feat.h5", dir);
  snprintf(bad, sizeof bad, "%s/5_not_audio.wav", dir);
  snprintf(empty, sizeof empty, "%s/3_empty.wav", dir);
  FILE *f = fopen(bad, "w");
  fputs("this is text, not RIFF\n", f);
  fclose(f);
  fclose(fopen(empty, "w"));
  snprintf(cmd, sizeof cmd,
           "%s -n 3 %s %s %s %s %s/missing.wav %s -o %s --parts 6", mpiexec,
           flags, app, data, bad, dir, empty, out);
  CU_ASSERT_EQUAL_FATAL(rc_run(cmd, log_), 0);
  const char *s = rc_slurp(log_);
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "43 files in 6 parts"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "5_not_audio.wav"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "not a RIFF/WAVE file"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "missing.wav"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "No such file or directory"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "3_empty.wav"));
  /* numpy computes the same from the same inputs, in the same order */
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 %s --check %s --inputs %s/*.wav %s "
           "%s/missing.wav %s",
           ref, out, data, bad, dir, empty);
  int rc = rc_run(cmd, log_);
  CU_ASSERT_EQUAL(rc, 0);
  if (rc)
    fprintf(stderr, "%s\n", rc_slurp(log_));
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log_), "3 failed"));
  CU_ASSERT_EQUAL(sh("h5ls -r %s && h5dump -A -H %s", out, out), 0);
  s = rc_slurp(log_);
  CU_ASSERT_PTR_NOT_NULL(
      strstr(s, "/feature                 Dataset {43/Inf, 64}"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "/file_status"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "ATTRIBUTE \"task\""));
  /* an existing output is kept */
  CU_ASSERT_EQUAL(sh("md5sum < %s > %s.md5", out, out), 0);
  snprintf(cmd, sizeof cmd, "%s -n 2 %s %s %s -o %s", mpiexec, flags, app, data,
           out);
  CU_ASSERT_EQUAL(rc_run(cmd, log_), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log_), "exists"));
  CU_ASSERT_EQUAL(sh("md5sum < %s | cmp - %s.md5", out, out), 0);
  /* resuming a finished job computes nothing */
  snprintf(cmd, sizeof cmd,
           "%s -n 2 %s %s %s %s %s/missing.wav %s -o %s --parts 6 --resume",
           mpiexec, flags, app, data, bad, dir, empty, out);
  CU_ASSERT_EQUAL(rc_run(cmd, log_), 0);
  CU_ASSERT_PTR_NOT_NULL(
      strstr(rc_slurp(log_), "6 parts recorded before, 0 computed now"));
}

static void test_list_single_rank(void) {
  char cmd[4096], out[400], list[400];
  snprintf(out, sizeof out, "%s/list.h5", dir);
  snprintf(list, sizeof list, "%s/inputs.txt", dir);
  snprintf(cmd, sizeof cmd, "ls %s/*.wav > %s", data, list);
  CU_ASSERT_EQUAL(rc_run(cmd, log_), 0);
  snprintf(cmd, sizeof cmd, "%s --list %s -o %s --gzip 4 --quiet", app, list,
           out);
  CU_ASSERT_EQUAL_FATAL(rc_run(cmd, log_), 0);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s --check %s --inputs $(cat %s)",
           ref, out, list);
  CU_ASSERT_EQUAL(rc_run(cmd, log_), 0);
}

static void test_bad_inputs(void) {
  char cmd[4096], emptydir[400];
  snprintf(emptydir, sizeof emptydir, "%s/nothing", dir);
  mkdir(emptydir, 0755);
  snprintf(cmd, sizeof cmd, "%s -n 2 %s %s %s -o %s/e.h5", mpiexec, flags, app,
           emptydir, dir);
  CU_ASSERT_NOT_EQUAL(rc_run(cmd, log_), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log_), "no input files"));
  snprintf(cmd, sizeof cmd, "%s --list %s/no-such-list -o %s/e.h5", app, dir,
           dir);
  CU_ASSERT_EQUAL(rc_run(cmd, log_), 2);
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log_), "cannot open list"));
  snprintf(cmd, sizeof cmd, "%s %s -o /proc/mpx-cannot-write.h5", app, data);
  CU_ASSERT_EQUAL(rc_run(cmd, log_), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log_), "/proc/mpx-cannot-write.h5"));
  snprintf(cmd, sizeof cmd, "%s --parts x %s", app, data);
  CU_ASSERT_EQUAL(rc_run(cmd, log_), 2);
  snprintf(cmd, sizeof cmd, "%s --bogus", app);
  CU_ASSERT_EQUAL(rc_run(cmd, log_), 2);
  CU_ASSERT_PTR_NOT_NULL(strstr(rc_slurp(log_), "unknown option"));
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: test_app APP MPIEXEC FLAGS MAKE_DATASET REF\n");
    return 2;
  }
  app = argv[1];
  mpiexec = argv[2];
  flags = argv[3];
  mkdata = argv[4];
  ref = argv[5];
  snprintf(dir, sizeof dir, "/tmp/mpx-features-XXXXXX");
  if (!mkdtemp(dir))
    return 2;
  snprintf(data, sizeof data, "%s/digits", dir);
  snprintf(log_, sizeof log_, "%s/log", dir);
  if (CU_initialize_registry() != CUE_SUCCESS)
    return 2;
  CU_pSuite s = CU_add_suite("mpx-features", NULL, NULL);
  CU_add_test(s, "make_dataset.sh (espeak-ng)", test_dataset);
  CU_add_test(s, "3 ranks, bad files, numpy check, keep, resume",
              test_job_and_numpy);
  CU_add_test(s, "--list, one rank, gzip", test_list_single_rank);
  CU_add_test(s, "empty input, bad list, unwritable output, bad options",
              test_bad_inputs);
  return rc_cunit_run(dir);
}
