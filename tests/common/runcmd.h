/*
 * runcmd.h -- running programs as a user would, for the CUnit tests that
 * launch mpirun jobs themselves (tests/job, tests/features).
 */
#ifndef MPX_RUNCMD_H
#define MPX_RUNCMD_H

#include <sys/types.h>

/* Starts sh -c cmd in a process group of its own, stdout and stderr to
 * log. Returns the pid. */
pid_t rc_start(const char *cmd, const char *log);

/* Waits for pid; returns its exit status, or 128 + signal if killed. */
int rc_finish(pid_t pid);

/* Returns 1 and sets *status (as rc_finish() does; -1 when pid is not a
 * child, or already reaped) if pid has ended, 0 if it still runs. */
int rc_poll(pid_t pid, int *status);

/* Runs cmd to completion with its output in log; returns its status. */
int rc_run(const char *cmd, const char *log);

/* The contents of a small file (static buffer, "" when unreadable). */
const char *rc_slurp(const char *path);

/* Makes the test's own directory from the mkdtemp() template tmpl (such
 * as "/tmp/mpx-guard-XXXXXX") in dir and initializes the CUnit registry;
 * returns 0, or -1 when either fails. */
int rc_cunit_init(char *dir, size_t cap, const char *tmpl);

/* Runs the registered CUnit suites verbosely, cleans the registry up and
 * removes dir when everything passed (else says where its files are).
 * Returns the exit status: 0, or 1 on failures. */
int rc_cunit_run(const char *dir);

/* Monotonic time in seconds. */
double rc_now(void);

#endif
