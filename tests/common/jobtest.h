/*
 * jobtest.h -- what the CUnit programs that run w4job jobs under mpirun
 * (tests/job) share: the command line, the job's report line and
 * completion record, its processes, md5 sums and the h5py checks of
 * tests/py.
 */
#ifndef MPX_JOBTEST_H
#define MPX_JOBTEST_H

#include <stddef.h>
#include <sys/types.h>

/* The W4 job the tests run: ITEMS rows in PARTS inputs. */
enum { JT_ITEMS = 4000, JT_PARTS = 40 };

/* How a test launches w4job: the W4JOB MPIEXEC "MPIEXEC FLAGS" of its own
 * command line; exec set: the shell becomes mpirun (so the pid
 * rc_start() returns is mpirun's). */
typedef struct jt_w4job {
  const char *path, *mpiexec, *flags;
  int exec;
} jt_w4job;

/* Takes a test's command line, TEST W4JOB MPIEXEC FLAGS LAST, into *w
 * (exec off) and *last; prints "usage: USAGE" and returns -1 when the
 * count of arguments is wrong, else 0. */
int jt_args(int argc, char **argv, const char *usage, jt_w4job *w,
            const char **last);

/* The shell command that runs w4job on 3 ranks, writing JT_ITEMS rows in
 * JT_PARTS inputs to out with a commit every 0.1 s: MPX_W4_DELAY_US=
 * delay_us per row, more environment in env (MPX_TEST_KILL and
 * MPX_W4_SLOW are passed on to the ranks), extra arguments after the
 * defaults (a later --items or --parts wins). */
void jt_job_cmd(char *buf, size_t cap, const jt_w4job *w, int delay_us,
                const char *env, const char *out, const char *extra);

/* The items of the last complete "commit items=" line of the record rec
 * (0 if none; a torn last line does not count). */
long jt_recorded_items(const char *rec);

/* Whether the record rec holds the complete line "commit items=<items>
 * ...". */
int jt_record_has(const char *rec, long items);

/* Parses the report "job: rc=X items=... recorded=R computed=C" of a run
 * out of text: X into rc (32 bytes), R and C; returns 0 when all three
 * were read, else -1 (what was read before is set). */
int jt_parse_report(const char *text, char *rc, long *recorded, long *computed);

/* jt_parse_report() of the run's log file. */
int jt_log_report(const char *log, char *rc, long *recorded, long *computed);

/* Whether a process of the run writing out is still there (mpirun and the
 * ranks all have "--out OUT " in their command line). */
int jt_job_alive(const char *out);

/* Waits up to 10 s until no process of the run writing out remains;
 * returns 1 when none does. */
int jt_wait_gone(const char *out);

/* Sends sig (a name such as "KILL") to every process of the run writing
 * out; returns 0 when pkill found none. */
int jt_signal_job(const char *out, const char *sig);

/* Waits for the run started as pid (writing out) at most timeout seconds;
 * returns its exit status, or -1 after killing it (its process group and
 * whatever of the job is left) when it took longer. */
int jt_finish_within(pid_t pid, const char *out, double timeout);

/* The md5 of a file as 32 hex digits in sum ("" when it cannot be read). */
void jt_md5(const char *path, char sum[33]);

/* The md5 sums of a job's output and of its completion record. */
typedef struct jt_sums {
  char out[33], rec[33];
} jt_sums;

/* Fills s with the md5 of out and of out.mpxrec. */
void jt_job_md5(const char *out, jt_sums *s);

/* Runs the python script dir/script (script itself when dir is NULL) with
 * args under Debian's /usr/bin/python3 (h5py, numpy), its output in log;
 * returns its exit status. */
int jt_py(const char *dir, const char *script, const char *args,
          const char *log);

/* Whether s holds w as a word of its own: not inside a longer name or
 * number (letters, digits, '-' and '_' make names). */
int jt_has_word(const char *s, const char *w);

#endif
