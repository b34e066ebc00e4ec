#define _GNU_SOURCE
/*
 * test_integrity.c -- a resume touches only the job's own data, as users
 * run it: `mpirun -n 3 w4job ...` writing the W4 workload to HDF5, the
 * output changed with h5py between runs (tests/py/h5user.py), rerun with
 * --resume.
 *
 * Usage (from ctest): test_integrity W4JOB MPIEXEC "MPIEXEC FLAGS" PY_DIR
 *
 * - user additions (a contiguous and a chunked resizable dataset, 100
 *   small datasets, a group with datasets inside, attributes on / and on
 *   /feature) survive a resume of a killed job unchanged, and the job's
 *   datasets end equal to an uninterrupted run's; /mpx's "schema"
 *   attribute names the job's arrays and none of the user's;
 * - the resume of a finished job changes nothing (md5 of the output and
 *   of its record), says "already complete" and computes nothing;
 * - an empty or torn record beside an output with committed inputs is
 *   refused (MPX_ECORRUPT, "overwrite") and nothing is touched; beside an
 *   output with nothing committed, or no output, the job starts afresh;
 * - an output that is missing or unreadable beside a record with commits:
 *   the job starts over, an unreadable one is kept as <out>.unreadable
 *   (one at most);
 * - a finished output whose feature was changed in place is refused
 *   (MPX_ECORRUPT naming "feature"), nothing touched;
 * - old bugs: more than 64 added datasets (an overflow under ASan), an
 *   added chunked dataset (the record was rewritten to zero items).
 */
#include <CUnit/Basic.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobtest.h"
#include "runcmd.h"

static const char *pydir;
static jt_w4job w4;
static char dir[256];
static int have_ref, have_killed;
static long killed_claimed;

enum { ITEMS = JT_ITEMS, PARTS = JT_PARTS };

/* dir/name */
static const char *at(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", dir, name);
  return buf;
}

typedef struct report {
  int status;       /* exit status of mpirun */
  char rc[32];      /* job: rc=... */
  long recorded;    /* job: recorded=... */
  long computed;    /* job: computed=... */
  char err[2048];   /* the "w4job: MPX_...: message" line, or "" */
  char log[600];    /* where the output went */
  char text[16384]; /* the whole log (start) */
} report;

/* Runs w4job on out with extra arguments; fills r from its log. */
static void run_job(const char *env, const char *out, const char *extra,
                    const char *logname, report *r) {
  char cmd[4096];
  memset(r, 0, sizeof *r);
  at(r->log, sizeof r->log, logname);
  jt_job_cmd(cmd, sizeof cmd, &w4, 400, env, out, extra);
  r->status = rc_run(cmd, r->log);
  snprintf(r->text, sizeof r->text, "%s", rc_slurp(r->log));
  r->recorded = r->computed = -1;
  jt_parse_report(r->text, r->rc, &r->recorded, &r->computed);
  const char *p = strstr(r->text, "w4job: MPX_");
  if (p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    if (n >= sizeof r->err)
      n = sizeof r->err - 1;
    memcpy(r->err, p, n);
    r->err[n] = '\0';
  }
  printf("\n    %s %s: exit %d, rc=%s recorded=%ld computed=%ld%s%s", out,
         extra, r->status, r->rc, r->recorded, r->computed,
         r->err[0] ? "\n      " : "", r->err);
}

/* Runs a shell command; 0 or its status (printing its log on failure). */
static int sh(const char *cmd) {
  char log[512], name[64];
  snprintf(name, sizeof name, "sh-%d.log", (int)getpid()); /* cases' own */
  at(log, sizeof log, name);
  int rc = rc_run(cmd, log);
  if (rc != 0)
    fprintf(stderr, "'%s' exited %d: %s\n", cmd, rc, rc_slurp(log));
  return rc;
}

/* Runs tests/py/NAME.py ARGS with Debian's python3 (h5py, numpy). */
static int py(const char *script, const char *args) {
  char log[512], name[64];
  snprintf(name, sizeof name, "py-%d.log", (int)getpid()); /* cases' own */
  int rc = jt_py(pydir, script, args, at(log, sizeof log, name));
  if (rc != 0)
    fprintf(stderr, "\n%s %s: exit %d: %s\n", script, args, rc, rc_slurp(log));
  return rc;
}

/* The job's datasets of out equal the reference run's. */
static int same_as_ref(const char *out) {
  char args[1200], ref[512];
  snprintf(args, sizeof args, "same %s %s", at(ref, sizeof ref, "ref.h5"), out);
  return py("h5user.py", args);
}

/* Adds KIND (norm, all, many, chunked) to out; snapshot to out.snap. */
static int user_add(const char *kind, const char *out) {
  char args[1200];
  snprintf(args, sizeof args, "add %s %s %s.snap", kind, out, out);
  return py("h5user.py", args);
}

/* The user objects of out are those of out.snap. */
static int user_check(const char *out) {
  char args[1200];
  snprintf(args, sizeof args, "check %s %s.snap", out, out);
  return py("h5user.py", args);
}

static int count_glob(const char *pattern) {
  glob_t g;
  int n = glob(pattern, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
  globfree(&g);
  return n;
}

/* Copies a saved job (name.h5 and name.h5.mpxrec from dir) to out. */
static int copy_job(const char *name, const char *out) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "cp %s/%s.h5 %s && cp %s/%s.h5.mpxrec %s.mpxrec && rm -f "
           "%s.snap",
           dir, name, out, dir, name, out, out);
  return sh(cmd);
}

/* ---------------------------------------------------------------- */

static void test_reference(void) {
  char out[512], cmd[1200];
  report r;
  at(out, sizeof out, "ref.h5");
  double t0 = rc_now();
  run_job("", out, "", "ref.log", &r);
  double secs = rc_now() - t0;
  CU_ASSERT_EQUAL_FATAL(r.status, 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.recorded, 0);
  CU_ASSERT_EQUAL(r.computed, PARTS);
  /* numpy's own W4 values, through h5py */
  snprintf(cmd, sizeof cmd, "--w4 %d %s", ITEMS, out);
  CU_ASSERT_EQUAL_FATAL(py("h5same.py", cmd), 0);
  have_ref = 1;
  printf("\n  uninterrupted run: %.2f s\n", secs);
}

/* The killed job every "killed" case starts from (a copy of it): SIGKILL
 * in the root right after its second record line. */
static void test_killed(void) {
  char out[512], rec[520];
  report r;
  at(out, sizeof out, "killed.h5");
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  run_job("MPX_TEST_KILL=recorded:2", out, "", "killed.log", &r);
  CU_ASSERT(jt_wait_gone(out));
  CU_ASSERT_NOT_EQUAL(r.status, 0); /* really killed */
  CU_ASSERT_PTR_NULL(strstr(r.text, "job: rc="));
  killed_claimed = jt_recorded_items(rec);
  CU_ASSERT_FATAL(killed_claimed > 0 && killed_claimed < PARTS);
  have_killed = 1;
  printf("\n  killed at recorded:2 with %ld of %d inputs recorded\n",
         killed_claimed, PARTS);
}

/* Spec 2 (and 1): a finished job with a user's dataset is left alone. */
static void test_finished_untouched(void) {
  CU_ASSERT_FATAL(have_ref);
  char out[512];
  jt_sums before, after;
  report r;
  at(out, sizeof out, "fin.h5");
  CU_ASSERT_EQUAL_FATAL(copy_job("ref", out), 0);
  CU_ASSERT_EQUAL_FATAL(user_add("norm", out), 0);
  jt_job_md5(out, &before);
  run_job("", out, "--resume", "fin.log", &r);
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_PTR_NOT_NULL(strstr(r.text, "already complete"));
  CU_ASSERT_EQUAL(r.recorded, PARTS);
  CU_ASSERT_EQUAL(r.computed, 0);
  jt_job_md5(out, &after);
  CU_ASSERT_STRING_EQUAL(before.out, after.out); /* output byte for byte */
  CU_ASSERT_STRING_EQUAL(before.rec, after.rec); /* record byte for byte */
  CU_ASSERT_EQUAL(user_check(out), 0);           /* norm still there */
  CU_ASSERT_EQUAL(same_as_ref(out), 0);
}

/* Spec 1 and 3: a killed job, every kind of user addition, resumed. */
static void test_killed_user_additions(void) {
  CU_ASSERT_FATAL(have_ref && have_killed);
  char out[512], rec[520];
  report r;
  at(out, sizeof out, "ku.h5");
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  CU_ASSERT_EQUAL_FATAL(copy_job("killed", out), 0);
  CU_ASSERT_EQUAL_FATAL(user_add("all", out), 0);
  run_job("", out, "--resume", "ku.log", &r);
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.recorded, killed_claimed); /* every commit verified */
  CU_ASSERT_EQUAL(r.computed, PARTS - killed_claimed);
  CU_ASSERT_EQUAL(jt_recorded_items(rec), PARTS);
  CU_ASSERT_EQUAL(same_as_ref(out), 0);
  CU_ASSERT_EQUAL(user_check(out), 0);
  /* the schema names the job's arrays, none of the user's */
  char args[600];
  snprintf(args, sizeof args, "schema %s", out);
  CU_ASSERT_EQUAL(py("h5user.py", args), 0);
}

/* Spec 4: an empty or torn record beside an output with commits. */
static void bad_record(const char *name, const char *make_rec) {
  char out[512], rec[520], cmd[2048], ref[512];
  jt_sums before, after;
  report r;
  snprintf(out, sizeof out, "%s/%s.h5", dir, name);
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  at(ref, sizeof ref, "ref.h5");
  CU_ASSERT_EQUAL_FATAL(copy_job("ref", out), 0);
  snprintf(cmd, sizeof cmd, make_rec, ref, rec);
  CU_ASSERT_EQUAL_FATAL(sh(cmd), 0);
  jt_job_md5(out, &before);
  char log[64];
  snprintf(log, sizeof log, "%s.log", name);
  run_job("", out, "--resume", log, &r);
  CU_ASSERT_EQUAL(r.status, 1);
  CU_ASSERT_STRING_EQUAL(r.rc, "MPX_ECORRUPT");
  CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "MPX_ECORRUPT"));
  CU_ASSERT_PTR_NOT_NULL(strstr(r.err, rec)); /* names the record */
  CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "overwrite"));
  jt_job_md5(out, &after);
  CU_ASSERT_STRING_EQUAL(before.out, after.out); /* output untouched */
  CU_ASSERT_STRING_EQUAL(before.rec, after.rec); /* record untouched */
  /* the way out the message names */
  snprintf(log, sizeof log, "%s-ow.log", name);
  run_job("", out, "--overwrite", log, &r);
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.computed, PARTS);
  CU_ASSERT_EQUAL(same_as_ref(out), 0);
}

static void test_empty_record(void) {
  CU_ASSERT_FATAL(have_ref);
  bad_record("er", ": %s; : > %s");
}

static void test_torn_record(void) {
  CU_ASSERT_FATAL(have_ref);
  bad_record("tr", "head -c 10 %s.mpxrec > %s");
}

/* Spec 4: an empty record beside an output with nothing committed, or
 * beside no output at all: a fresh start. */
static void test_empty_record_nothing_committed(void) {
  CU_ASSERT_FATAL(have_ref);
  char out[512], rec[520], cmd[1200];
  report r;
  at(out, sizeof out, "op.h5");
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  run_job("MPX_TEST_KILL=opened:1", out, "", "op-kill.log", &r);
  CU_ASSERT(jt_wait_gone(out));
  CU_ASSERT_NOT_EQUAL(r.status, 0);
  CU_ASSERT_EQUAL(access(out, F_OK), 0); /* the output was created */
  CU_ASSERT_EQUAL(jt_recorded_items(rec), 0);
  snprintf(cmd, sizeof cmd, ": > %s", rec);
  CU_ASSERT_EQUAL_FATAL(sh(cmd), 0);
  run_job("", out, "--resume", "op.log", &r);
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.recorded, 0);
  CU_ASSERT_EQUAL(r.computed, PARTS);
  CU_ASSERT_EQUAL(same_as_ref(out), 0);
  /* an empty record and no output */
  at(out, sizeof out, "norec.h5");
  snprintf(cmd, sizeof cmd, ": > %s.mpxrec", out);
  CU_ASSERT_EQUAL_FATAL(sh(cmd), 0);
  run_job("", out, "--resume", "norec.log", &r);
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.computed, PARTS);
  CU_ASSERT_EQUAL(same_as_ref(out), 0);
}

/* A kill during the first commit can leave the file without even /mpx
 * (HDF5's metadata was being written) beside a record that claims no
 * commit: nothing in it was committed, so it is moved aside and the job
 * starts over (it was refused as "not the output of an mpx job"). */
static void test_no_mpx_nothing_committed(void) {
  CU_ASSERT_FATAL(have_ref);
  char out[512], rec[520], aside[600], cmd[1400], bad[33], kept[33];
  report r;
  at(out, sizeof out, "nm.h5");
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  snprintf(aside, sizeof aside, "%s.unreadable", out);
  run_job("MPX_TEST_KILL=opened:1", out, "", "nm-kill.log", &r);
  CU_ASSERT(jt_wait_gone(out));
  CU_ASSERT_NOT_EQUAL(r.status, 0);
  CU_ASSERT_EQUAL(jt_recorded_items(rec), 0);
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c \"import h5py; "
           "h5py.File('%s', 'w').create_dataset('x', data=[1, 2, 3])\"",
           out);
  CU_ASSERT_EQUAL_FATAL(sh(cmd), 0);
  jt_md5(out, bad);
  run_job("", out, "--resume", "nm.log", &r);
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.recorded, 0);
  CU_ASSERT_EQUAL(r.computed, PARTS);
  CU_ASSERT(jt_has_word(r.text, aside));
  jt_md5(aside, kept);
  CU_ASSERT_STRING_EQUAL(kept, bad); /* kept as it was */
  CU_ASSERT_EQUAL(same_as_ref(out), 0);
}

/* Spec 4: the output is gone, its record has commits: start over. */
static void test_output_missing(void) {
  CU_ASSERT_FATAL(have_ref && have_killed);
  char out[512], cmd[1200], pat[600];
  report r;
  at(out, sizeof out, "om.h5");
  snprintf(cmd, sizeof cmd, "cp %s/killed.h5.mpxrec %s.mpxrec", dir, out);
  CU_ASSERT_EQUAL_FATAL(sh(cmd), 0);
  run_job("", out, "--resume", "om.log", &r);
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.recorded, 0);
  CU_ASSERT_EQUAL(r.computed, PARTS);
  CU_ASSERT_EQUAL(same_as_ref(out), 0);
  snprintf(pat, sizeof pat, "%s.unreadable*", out);
  CU_ASSERT_EQUAL(count_glob(pat), 0); /* nothing to move aside */
}

/* Spec 4: the output is unreadable, its record has commits: it is moved
 * to <out>.unreadable (one kept) and the job starts over. */
static void test_output_unreadable(void) {
  CU_ASSERT_FATAL(have_ref && have_killed);
  char out[512], aside[600], pat[600], cmd[1400], bad[33], kept[33];
  report r;
  at(out, sizeof out, "ou.h5");
  snprintf(aside, sizeof aside, "%s.unreadable", out);
  snprintf(pat, sizeof pat, "%s.unreadable*", out);
  for (int round = 1; round <= 2; round++) {
    CU_ASSERT_EQUAL_FATAL(copy_job("killed", out), 0);
    /* the first 4 KiB zeroed, then 8 KiB: two different broken files */
    snprintf(cmd, sizeof cmd,
             "dd if=/dev/zero of=%s bs=4096 count=%d conv=notrunc "
             "status=none",
             out, round);
    CU_ASSERT_EQUAL_FATAL(sh(cmd), 0);
    jt_md5(out, bad);
    char log[64];
    snprintf(log, sizeof log, "ou%d.log", round);
    run_job("", out, "--resume", log, &r);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_STRING_EQUAL(r.rc, "0");
    CU_ASSERT_EQUAL(r.recorded, 0);
    CU_ASSERT_EQUAL(r.computed, PARTS);
    CU_ASSERT_EQUAL(access(aside, F_OK), 0); /* <out>.unreadable */
    /* says where it went: the whole name, not the start of a longer one
     * such as "<out>.unreadable-1712345678" */
    CU_ASSERT(jt_has_word(r.text, aside));
    jt_md5(aside, kept);
    CU_ASSERT_STRING_EQUAL(kept, bad);   /* the broken file, as it was */
    CU_ASSERT_EQUAL(count_glob(pat), 1); /* at most one kept */
    CU_ASSERT_EQUAL(same_as_ref(out), 0);
  }
}

/* Spec 5: a finished output changed in place fails its check. */
static void test_tampered(void) {
  CU_ASSERT_FATAL(have_ref);
  char out[512], args[600];
  jt_sums before, after;
  report r;
  at(out, sizeof out, "tp.h5");
  CU_ASSERT_EQUAL_FATAL(copy_job("ref", out), 0);
  snprintf(args, sizeof args, "poke %s", out);
  CU_ASSERT_EQUAL_FATAL(py("h5user.py", args), 0);
  jt_job_md5(out, &before);
  run_job("", out, "--resume", "tp.log", &r);
  CU_ASSERT_EQUAL(r.status, 1);
  CU_ASSERT_STRING_EQUAL(r.rc, "MPX_ECORRUPT");
  CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "MPX_ECORRUPT"));
  CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "feature")); /* names the dataset */
  CU_ASSERT_PTR_NOT_NULL(strstr(r.err, out));       /* and the file */
  jt_job_md5(out, &after);
  CU_ASSERT_STRING_EQUAL(before.out, after.out);
  CU_ASSERT_STRING_EQUAL(before.rec, after.rec);
}

/* Holds out open in h5py (mode 'a' or 'r') until killed; returns the
 * holder's pid once the file is open. */
static pid_t hold_open(const char *out, const char *mode, const char *logname) {
  char cmd[2048], log[512];
  snprintf(cmd, sizeof cmd,
           "exec /usr/bin/python3 -c \"import h5py, sys, time; "
           "f = h5py.File(sys.argv[1], '%s'); print('open', flush=True); "
           "time.sleep(120)\" %s",
           mode, out);
  pid_t pid = rc_start(cmd, at(log, sizeof log, logname));
  for (int i = 0; i < 3000 && !strstr(rc_slurp(log), "open"); i++)
    usleep(10000);
  return pid;
}

/* An output open in another HDF5 program (h5py) is busy, not unreadable:
 * never moved aside. Open for reading, a finished job still checks out. */
static void test_open_elsewhere(void) {
  CU_ASSERT_FATAL(have_ref);
  char out[512], pat[600];
  jt_sums before, after;
  report r;
  at(out, sizeof out, "oe.h5");
  CU_ASSERT_EQUAL_FATAL(copy_job("ref", out), 0);
  /* h5py itself may write on opening for append: compare what the file
   * holds while it is open, before and after the resume. */
  pid_t holder = hold_open(out, "a", "oe-hold.log");
  jt_job_md5(out, &before);
  run_job("", out, "--resume", "oe.log", &r);
  jt_job_md5(out, &after);
  kill(holder, SIGKILL);
  rc_finish(holder);
  CU_ASSERT_EQUAL(r.status, 1);
  CU_ASSERT_STRING_EQUAL(r.rc, "MPX_EBUSY");
  CU_ASSERT_PTR_NOT_NULL(strstr(r.err, "another program"));
  snprintf(pat, sizeof pat, "%s.unreadable*", out);
  CU_ASSERT_EQUAL(count_glob(pat), 0);
  CU_ASSERT_STRING_EQUAL(before.out, after.out);
  CU_ASSERT_STRING_EQUAL(before.rec, after.rec);
  holder = hold_open(out, "r", "oe-hold-r.log");
  jt_job_md5(out, &before);
  run_job("", out, "--resume", "oe-r.log", &r);
  jt_job_md5(out, &after);
  kill(holder, SIGKILL);
  rc_finish(holder);
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(r.text, "already complete"));
  CU_ASSERT_STRING_EQUAL(before.out, after.out);
}

/* Old bugs: the same resume with one kind of addition each. */
static void resume_with(const char *kind, const char *name) {
  CU_ASSERT_FATAL(have_ref && have_killed);
  char out[512], rec[520], log[64];
  report r;
  snprintf(out, sizeof out, "%s/%s.h5", dir, name);
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  snprintf(log, sizeof log, "%s.log", name);
  CU_ASSERT_EQUAL_FATAL(copy_job("killed", out), 0);
  CU_ASSERT_EQUAL_FATAL(user_add(kind, out), 0);
  run_job("", out, "--resume", log, &r);
  CU_ASSERT_EQUAL(r.status, 0);
  CU_ASSERT_STRING_EQUAL(r.rc, "0");
  CU_ASSERT_EQUAL(r.recorded, killed_claimed);
  CU_ASSERT_EQUAL(r.computed, PARTS - killed_claimed);
  CU_ASSERT_EQUAL(jt_recorded_items(rec), PARTS); /* never rewritten to 0 */
  CU_ASSERT_EQUAL(same_as_ref(out), 0);
  CU_ASSERT_EQUAL(user_check(out), 0);
}

static void test_many_datasets(void) {
  resume_with("many", "many");
}

static void test_chunked_dataset(void) {
  resume_with("chunked", "chunked");
}

int main(int argc, char **argv) {
  if (jt_args(argc, argv, "test_integrity W4JOB MPIEXEC FLAGS PY_DIR", &w4,
              &pydir) != 0 ||
      rc_cunit_init(dir, sizeof dir, "/tmp/mpx-integrity-XXXXXX") != 0)
    return 2;
  CU_pSuite s = CU_add_suite("integrity", NULL, NULL);
  CU_add_test(s, "uninterrupted reference run", test_reference);
  CU_add_test(s, "a job killed at its second commit", test_killed);
  /* The rest side by side (three at a time): the runs mostly wait on
   * mpirun's start and end and the rows' sleeps. */
  rc_add_case(s, "finished job + user dataset: resume changes nothing",
              test_finished_untouched);
  rc_add_case(s, "killed job + user additions: resumed, additions kept",
              test_killed_user_additions);
  rc_add_case(s, "empty record beside committed output: refused",
              test_empty_record);
  rc_add_case(s, "torn record beside committed output: refused",
              test_torn_record);
  rc_add_case(s, "empty record, nothing committed or no output: afresh",
              test_empty_record_nothing_committed);
  rc_add_case(s, "no /mpx beside a record of no commit: moved aside",
              test_no_mpx_nothing_committed);
  rc_add_case(s, "output missing beside record: starts over",
              test_output_missing);
  rc_add_case(s, "output unreadable beside record: moved aside, twice",
              test_output_unreadable);
  rc_add_case(s, "finished output changed in place: refused", test_tampered);
  rc_add_case(s, "output open in h5py: busy, not unreadable",
              test_open_elsewhere);
  rc_add_case(s, "more than 64 added datasets (old overflow)",
              test_many_datasets);
  rc_add_case(s, "added chunked dataset (old zero-item rewrite)",
              test_chunked_dataset);
  return rc_cunit_run(dir);
}
