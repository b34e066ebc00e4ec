#define _GNU_SOURCE
/*
 * test_app.c -- mpx-features run as users run it, on a spoken-digit data
 * set made by scripts/make_dataset.sh (espeak-ng): the HDF5 output is
 * compared with numpy's computation of the same features
 * (tests/py/features_ref.py, reading it with h5py); non-WAV, empty and
 * FIFO inputs are reported per file and recorded while the job goes on (a
 * FIFO must not block its worker); a missing input path, a missing or
 * overlong path in a list are refused before anything starts; a list with
 * paths near PATH_MAX, blank lines and comments gives rows aligned with
 * its paths; an existing output is kept; a resume is refused when the
 * inputs changed (job identity) unless an explicit --job-id matches; the
 * default parts do not depend on the rank count, so a job resumes at
 * another one; a signal while the inputs are read exits 75 with nothing
 * written; an empty input list, a bad list file and an unwritable output
 * fail clearly; --list and a single rank work.
 *
 * Usage: test_app MPX_FEATURES MPIEXEC "FLAGS" MAKE_DATASET FEATURES_REF
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runcmd.h"

static const char *app, *mpiexec, *flags, *mkdata, *ref;
static char dir[256], data[300], log_[300];

/* The log of this process's commands (the cases run side by side). */
static const char *log_path(void) {
  snprintf(log_, sizeof log_, "%s/log-%d", dir, (int)getpid());
  return log_;
}

/* Runs the command made from fmt (printf-style) with its output in the
 * log; returns its exit status. */
static int run(const char *fmt, ...) {
  static char cmd[32768];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof cmd);
  return rc_run(cmd, log_path());
}

/* The output of the last command. */
static const char *logged(void) {
  return rc_slurp(log_path());
}

/* Whether the last command's output holds s (printing it when not). */
static int logged_has(const char *s) {
  const char *l = logged();
  if (strstr(l, s))
    return 1;
  fprintf(stderr, "\n  output lacks \"%s\":\n%s\n", s, l);
  return 0;
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Whether neither path nor its completion record exists. */
static int no_output(const char *path) {
  char rec[600];
  snprintf(rec, sizeof rec, "%s.mpxrec", path);
  return !exists(path) && !exists(rec);
}

/* Writes the md5 of out and of its record to out.md5. */
static void md5_save(const char *out) {
  CU_ASSERT_EQUAL(run("md5sum %s %s.mpxrec > %s.md5", out, out, out), 0);
}

/* Whether out and its record are as md5_save left them. */
static int md5_same(const char *out) {
  return run("md5sum %s %s.mpxrec | cmp - %s.md5", out, out, out) == 0;
}

/* The first line of the last command's output, in buf. */
static void first_line(char *buf, size_t cap) {
  snprintf(buf, cap, "%s", logged());
  buf[strcspn(buf, "\n")] = '\0';
}

static void test_dataset(void) {
  CU_ASSERT_EQUAL_FATAL(run("bash %s %s 40", mkdata, data), 0);
  CU_ASSERT_EQUAL(run("bash %s %s 40", mkdata, data), 0); /* idempotent */
  run("ls %s/*.wav | wc -l", data);
  CU_ASSERT_EQUAL(atoi(logged()), 40);
}

static void test_job_and_numpy(void) {
  char out[400], bad[400], empty[400], fifo[400];
  snprintf(out, sizeof out, "%s/feat.h5", dir);
  snprintf(bad, sizeof bad, "%s/5_not_audio.wav", dir);
  snprintf(empty, sizeof empty, "%s/3_empty.wav", dir);
  snprintf(fifo, sizeof fifo, "%s/7_fifo.wav", dir);
  FILE *f = fopen(bad, "w");
  fputs("this is text, not RIFF\n", f);
  fclose(f);
  fclose(fopen(empty, "w"));
  CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
  /* A FIFO would block a reader forever: the timeout turns a hang into a
   * failure. */
  CU_ASSERT_EQUAL_FATAL(run("timeout 60 %s -n 3 %s %s %s %s %s %s -o %s "
                            "--parts 6",
                            mpiexec, flags, app, data, bad, fifo, empty, out),
                        0);
  CU_ASSERT(logged_has("43 files in 6 parts"));
  CU_ASSERT(logged_has("5_not_audio.wav"));
  CU_ASSERT(logged_has("not a RIFF/WAVE file"));
  CU_ASSERT(logged_has("7_fifo.wav"));
  CU_ASSERT(logged_has("not a regular file (FIFO)"));
  CU_ASSERT(logged_has("3_empty.wav"));
  /* numpy computes the same from the same inputs, in the same order */
  int rc = run("timeout 60 /usr/bin/python3 %s --check %s --inputs %s/*.wav "
               "%s %s %s",
               ref, out, data, bad, fifo, empty);
  CU_ASSERT_EQUAL(rc, 0);
  if (rc)
    fprintf(stderr, "%s\n", logged());
  CU_ASSERT(logged_has("3 failed"));
  /* the FIFO's row says why */
  CU_ASSERT_EQUAL(run("h5dump -d /file_error %s", out), 0);
  CU_ASSERT(logged_has("not a regular file (FIFO)"));
  CU_ASSERT_EQUAL(run("h5ls -r %s && h5dump -A -H %s", out, out), 0);
  CU_ASSERT(logged_has("/feature                 Dataset {43/Inf, 64}"));
  CU_ASSERT(logged_has("/file_status"));
  CU_ASSERT(logged_has("ATTRIBUTE \"task\""));
  /* an existing output is kept */
  CU_ASSERT_EQUAL(run("md5sum < %s > %s.md5", out, out), 0);
  CU_ASSERT_EQUAL(run("%s -n 2 %s %s %s -o %s", mpiexec, flags, app, data, out),
                  1);
  CU_ASSERT(logged_has("exists"));
  CU_ASSERT_EQUAL(run("md5sum < %s | cmp - %s.md5", out, out), 0);
  /* resuming a finished job computes nothing */
  CU_ASSERT_EQUAL(run("timeout 60 %s -n 2 %s %s %s %s %s %s -o %s --parts 6 "
                      "--resume",
                      mpiexec, flags, app, data, bad, fifo, empty, out),
                  0);
  CU_ASSERT(logged_has("6 parts recorded before, 0 computed now"));
}

/* A missing file or directory on the command line stops everything before
 * it starts: exit 2, the path named, no output and no record. */
static void test_missing_input(void) {
  char out[400];
  snprintf(out, sizeof out, "%s/missing.h5", dir);
  CU_ASSERT_EQUAL(run("%s -n 2 %s %s %s %s/missing.wav -o %s", mpiexec, flags,
                      app, data, dir, out),
                  2);
  CU_ASSERT(logged_has("missing.wav': No such file or directory"));
  CU_ASSERT(logged_has("nothing was started"));
  CU_ASSERT(no_output(out));
  /* a missing directory is not taken for a file */
  CU_ASSERT_EQUAL(run("%s %s/no-such-dir -o %s", app, dir, out), 2);
  CU_ASSERT(logged_has("no-such-dir': No such file or directory"));
  CU_ASSERT(no_output(out));
}

/* Writes lines to path, each followed by a newline. */
static void write_lines(const char *path, const char *const *lines, int n) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  for (int i = 0; i < n; i++)
    fprintf(f, "%s\n", lines[i]);
  CU_ASSERT_EQUAL(fclose(f), 0);
}

/* A copy of base with "./" components after its directory part until it
 * is len bytes long (one "//" when the parity needs it); malloc'ed. */
static char *padded_path(const char *base, size_t len) {
  const char *slash = strrchr(base, '/');
  CU_ASSERT_FATAL(slash && strlen(base) <= len);
  size_t head = (size_t)(slash - base) + 1, bl = strlen(base);
  char *p = malloc(len + 1);
  CU_ASSERT_FATAL(p != NULL);
  memcpy(p, base, head);
  size_t pos = head, pad = len - bl;
  if (pad % 2)
    p[pos++] = '/';
  for (; pos + 2 <= head + pad; pos += 2)
    memcpy(p + pos, "./", 2);
  memcpy(p + pos, base + head, bl - head + 1);
  CU_ASSERT_EQUAL(strlen(p), len);
  return p;
}

/* The list's lines are read whole (getline): a path longer than PATH_MAX
 * is refused naming its line, missing paths are refused by line (the
 * first 20 printed, then a count), and nothing starts. */
static void test_list_refused(void) {
  char out[400], list[400], first[600], name[600], miss[25][400];
  snprintf(out, sizeof out, "%s/refused.h5", dir);
  snprintf(list, sizeof list, "%s/bad-list.txt", dir);
  run("ls %s/*.wav | head -1", data);
  first_line(first, sizeof first);
  snprintf(name, sizeof name, "%s/long.wav", dir);
  char *toolong = padded_path(name, 5000);
  const char *lines[28] = {first, "", toolong};
  for (int i = 0; i < 25; i++) {
    snprintf(miss[i], sizeof miss[i], "%s/missing-%02d.wav", dir, i);
    lines[3 + i] = miss[i];
  }
  write_lines(list, lines, 28);
  free(toolong);
  CU_ASSERT_EQUAL(run("%s --list %s -o %s", app, list, out), 2);
  CU_ASSERT(logged_has("bad-list.txt:3: '"));
  CU_ASSERT(logged_has("(5000 bytes): File name too long"));
  CU_ASSERT(logged_has("bad-list.txt:4: '"));
  CU_ASSERT(logged_has("missing-00.wav': No such file or directory"));
  CU_ASSERT(logged_has("bad-list.txt:22: '"));
  CU_ASSERT_PTR_NULL(strstr(logged(), "bad-list.txt:23:"));
  CU_ASSERT(logged_has("... and 6 more"));
  CU_ASSERT(logged_has("26 input paths cannot be used"));
  CU_ASSERT(no_output(out));
}

/* A list holding a path of 4095 bytes (PATH_MAX - 1, the longest the
 * kernel takes, which a 4096-byte line buffer split in two), blank lines
 * and comments gives one row per path, aligned with them (numpy check). */
static void test_list_aligned(void) {
  char out[400], list[400], l2[600];
  static char inputs[16384];
  snprintf(out, sizeof out, "%s/aligned.h5", dir);
  snprintf(list, sizeof list, "%s/aligned.txt", dir);
  run("ls %s/*.wav | head -1", data);
  char first[600];
  first_line(first, sizeof first);
  char *longp = padded_path(first, 4095);
  FILE *f = fopen(list, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "# inputs of test_list_aligned\n%s\n\n\n", longp);
  snprintf(inputs, sizeof inputs, "%s", longp);
  free(longp);
  CU_ASSERT_EQUAL_FATAL(run("ls %s/*.wav | tail -8", data), 0);
  const char *s = logged();
  int n = 1;
  for (const char *nl; *s && (nl = strchr(s, '\n')); s = nl + 1, n++) {
    snprintf(l2, sizeof l2, "%.*s", (int)(nl - s), s);
    fprintf(f, "%s\n%s", l2, n % 3 ? "" : "\n   \n");
    strcat(inputs, " ");
    strcat(inputs, l2);
  }
  CU_ASSERT_EQUAL(fclose(f), 0);
  CU_ASSERT_EQUAL(n, 9);
  CU_ASSERT_EQUAL_FATAL(run("%s -n 3 %s %s --list %s -o %s --parts 4 --quiet",
                            mpiexec, flags, app, list, out),
                        0);
  CU_ASSERT(logged_has("9 files in 4 parts"));
  int rc = run("/usr/bin/python3 %s --check %s --inputs %s", ref, out, inputs);
  CU_ASSERT_EQUAL(rc, 0);
  if (rc)
    fprintf(stderr, "%s\n", logged());
  CU_ASSERT(logged_has("9 rows (9 read, 0 failed"));
}

/* The job identity (input paths, sizes, times; or --job-id) guards a
 * resume, and the default parts do not depend on the rank count. */
static void test_identity(void) {
  char out[400], kout[400], id[400], id2[400], one[600];
  snprintf(out, sizeof out, "%s/id.h5", dir);
  snprintf(kout, sizeof kout, "%s/key.h5", dir);
  snprintf(id, sizeof id, "%s/id", dir);
  snprintf(id2, sizeof id2, "%s/id2", dir);
  CU_ASSERT_EQUAL_FATAL(run("mkdir %s %s && cp -p $(ls %s/*.wav | head -12) "
                            "%s && cp -p $(ls %s/*.wav | tail -12) %s",
                            id, id2, data, id, data, id2),
                        0);
  run("ls %s/*.wav | head -1", id);
  first_line(one, sizeof one);
  /* 3 ranks, then a resume at 2 without --parts: the same 12 parts */
  CU_ASSERT_EQUAL_FATAL(
      run("%s -n 3 %s %s %s -o %s --quiet", mpiexec, flags, app, id, out), 0);
  CU_ASSERT(logged_has("12 files in 12 parts"));
  CU_ASSERT_EQUAL(run("%s -n 2 %s %s %s -o %s --quiet --resume", mpiexec, flags,
                      app, id, out),
                  0);
  CU_ASSERT(logged_has("12 parts recorded before, 0 computed now"));
  /* other files, as many parts: refused, nothing changed */
  md5_save(out);
  CU_ASSERT_EQUAL(run("%s %s -o %s --quiet --resume", app, id2, out), 1);
  CU_ASSERT(logged_has("MPX_EFILE"));
  CU_ASSERT(logged_has("identity"));
  CU_ASSERT(md5_same(out));
  /* the same paths, one of them modified since: refused */
  CU_ASSERT_EQUAL(run("touch -d '2001-02-03 04:05:06' %s", one), 0);
  CU_ASSERT_EQUAL(run("%s %s -o %s --quiet --resume", app, id, out), 1);
  CU_ASSERT(logged_has("MPX_EFILE"));
  CU_ASSERT(logged_has("identity"));
  CU_ASSERT(md5_same(out));
  /* --overwrite starts over */
  CU_ASSERT_EQUAL(run("%s %s -o %s --quiet --overwrite", app, id, out), 0);
  CU_ASSERT(logged_has("0 parts recorded before, 12 computed now"));
  /* an explicit key: the inputs' times do not matter, the key does */
  CU_ASSERT_EQUAL(run("%s %s -o %s --quiet --job-id run-K1", app, id, kout), 0);
  CU_ASSERT_EQUAL(run("touch -d '2002-03-04 05:06:07' %s", one), 0);
  CU_ASSERT_EQUAL(
      run("%s %s -o %s --quiet --resume --job-id run-K1", app, id, kout), 0);
  CU_ASSERT(logged_has("12 parts recorded before, 0 computed now"));
  md5_save(kout);
  CU_ASSERT_EQUAL(
      run("%s %s -o %s --quiet --resume --job-id run-K2", app, id, kout), 1);
  CU_ASSERT(logged_has("identity"));
  CU_ASSERT(logged_has("run-K2"));
  CU_ASSERT_EQUAL(run("%s %s -o %s --quiet --resume", app, id, kout), 1);
  CU_ASSERT(logged_has("identity"));
  CU_ASSERT(md5_same(kout));
}

/* SIGTERM while the root reads its list (a FIFO: the app has its handlers
 * once it opened the read end, and its job has not started): exit 75,
 * nothing written. The line written after the signal would make a job of
 * one file if the signal were lost; the app may also have stopped before
 * reading it (then the write fails, SIGPIPE being ignored). */
static void test_signal_before_job(void) {
  char out[400], fifo[400], line[600];
  snprintf(out, sizeof out, "%s/sig.h5", dir);
  snprintf(fifo, sizeof fifo, "%s/list.fifo", dir);
  CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
  run("ls %s/*.wav | head -1", data);
  first_line(line, sizeof line);
  strcat(line, "\n");
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "exec %s --list %s -o %s", app, fifo, out);
  pid_t pid = rc_start(cmd, log_path());
  /* Opening the write end succeeds once the app opens the read end. */
  int fd = -1;
  for (double t0 = rc_now(); fd < 0 && rc_now() - t0 < 30;) {
    fd = open(fifo, O_WRONLY | O_NONBLOCK);
    if (fd < 0)
      usleep(10000);
  }
  CU_ASSERT(fd >= 0);
  kill(pid, SIGTERM);
  usleep(300000);
  if (fd >= 0) {
    if (write(fd, line, strlen(line)) < 0 && errno != EPIPE)
      CU_FAIL("write to the list FIFO");
    close(fd);
  }
  CU_ASSERT_EQUAL(rc_finish(pid), 75);
  CU_ASSERT(logged_has("interrupted by signal 15"));
  CU_ASSERT(no_output(out));
}

static void test_list_single_rank(void) {
  char out[400], list[400];
  snprintf(out, sizeof out, "%s/list.h5", dir);
  snprintf(list, sizeof list, "%s/inputs.txt", dir);
  CU_ASSERT_EQUAL(run("ls %s/*.wav > %s", data, list), 0);
  CU_ASSERT_EQUAL_FATAL(
      run("%s --list %s -o %s --gzip 4 --quiet", app, list, out), 0);
  CU_ASSERT_EQUAL(
      run("/usr/bin/python3 %s --check %s --inputs $(cat %s)", ref, out, list),
      0);
}

static void test_bad_inputs(void) {
  char emptydir[400];
  snprintf(emptydir, sizeof emptydir, "%s/nothing", dir);
  mkdir(emptydir, 0755);
  CU_ASSERT_NOT_EQUAL(
      run("%s -n 2 %s %s %s -o %s/e.h5", mpiexec, flags, app, emptydir, dir),
      0);
  CU_ASSERT(logged_has("no input files"));
  CU_ASSERT_EQUAL(run("%s --list %s/no-such-list -o %s/e.h5", app, dir, dir),
                  2);
  CU_ASSERT(logged_has("cannot open list"));
  CU_ASSERT_EQUAL(run("%s %s -o /proc/mpx-cannot-write.h5", app, data), 1);
  CU_ASSERT(logged_has("/proc/mpx-cannot-write.h5"));
  CU_ASSERT_EQUAL(run("%s --parts x %s", app, data), 2);
  CU_ASSERT_EQUAL(run("%s --job-id '' %s", app, data), 2);
  CU_ASSERT(logged_has("--job-id"));
  CU_ASSERT_EQUAL(run("%s --bogus", app), 2);
  CU_ASSERT(logged_has("unknown option"));
  CU_ASSERT_EQUAL(run("%s --help", app), 0);
  CU_ASSERT(logged_has("--job-id KEY"));
  CU_ASSERT(logged_has("max(1024, ceil(files/16))"));
  CU_ASSERT(logged_has("exit 75"));
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: test_app APP MPIEXEC FLAGS MAKE_DATASET REF\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN); /* see test_signal_before_job */
  app = argv[1];
  mpiexec = argv[2];
  flags = argv[3];
  mkdata = argv[4];
  ref = argv[5];
  if (rc_cunit_init(dir, sizeof dir, "/tmp/mpx-features-XXXXXX") != 0)
    return 2;
  snprintf(data, sizeof data, "%s/digits", dir);
  CU_pSuite s = CU_add_suite("mpx-features", NULL, NULL);
  CU_add_test(s, "make_dataset.sh (espeak-ng)", test_dataset);
  /* The rest side by side (three at a time), on the data set made first:
   * most of their time is mpirun's start and end. */
  rc_add_case(s, "3 ranks, bad files and a FIFO, numpy check, keep, resume",
              test_job_and_numpy);
  rc_add_case(s, "identity guards resume; parts independent of ranks",
              test_identity);
  rc_add_case(s, "a missing input path is refused up front",
              test_missing_input);
  rc_add_case(s, "--list: overlong and missing paths refused by line",
              test_list_refused);
  rc_add_case(s, "--list: 4095-byte path, blank lines, rows aligned",
              test_list_aligned);
  rc_add_case(s, "a signal while reading the inputs: exit 75, no output",
              test_signal_before_job);
  rc_add_case(s, "--list, one rank, gzip", test_list_single_rank);
  rc_add_case(s, "empty input, bad list, unwritable output, bad options",
              test_bad_inputs);
  return rc_cunit_run(dir);
}
