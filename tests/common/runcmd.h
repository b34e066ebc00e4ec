/*
 * runcmd.h -- running programs as a user would, for the CUnit tests that
 * launch mpirun jobs themselves (tests/job, tests/features).
 */
#ifndef MPX_RUNCMD_H
#define MPX_RUNCMD_H

#include <CUnit/CUnit.h>
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
 * Returns the exit status: 0, or 1 on failures. Only the tests
 * MPX_TEST_ONLY and MPX_TEST_SKIP select run (testsel.h). */
int rc_cunit_run(const char *dir);

/* Monotonic time in seconds. */
double rc_now(void);

/* Cases side by side. Most of what these tests wait on is idle: launches,
 * kills, sleeps, teardowns, SLURM. A case is a CUnit test whose body runs
 * in a child process beside other cases, at most rc_cases_at_once of them
 * at a time, each with its stdout and stderr in a file of its own (in the
 * directory of rc_cunit_init()). The cases start, in the order they were
 * added, when the suite reaches the first of them (so tests added before
 * it, such as a reference run, are done); the test of each waits for its
 * body, prints the body's output and fails when an assertion of the body
 * failed (the body prints those, file and line). A body must use files
 * of its own, and may not wait for another case's results except through
 * files (rc_wait_file()). MPX_TEST_CASES_AT_ONCE=N overrides
 * rc_cases_at_once (1: one case at a time). */
extern int rc_cases_at_once;

/* Adds the CUnit test name to suite s, with body fn run as a case. */
void rc_add_case(CU_pSuite s, const char *name, void (*fn)(void));

/* The same with body fn(arg). */
void rc_add_case_arg(CU_pSuite s, const char *name, void (*fn)(int), int arg);

/* Waits up to limit seconds for path to exist; 1 once it does. */
int rc_wait_file(const char *path, double limit);

#endif
