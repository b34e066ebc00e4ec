#define _GNU_SOURCE
/*
 * runcmd.c -- see runcmd.h.
 */
#include "runcmd.h"
#include "testsel.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The test's directory (rc_cunit_init()), where cases keep their output. */
static char case_dir[512];

pid_t rc_start(const char *cmd, const char *log) {
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* A wait status as an exit status, or 128 + signal. */
static int decode(int st) {
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int rc_finish(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  return decode(st);
}

int rc_poll(pid_t pid, int *status) {
  int st;
  pid_t r;
  while ((r = waitpid(pid, &st, WNOHANG)) < 0 && errno == EINTR)
    ;
  if (r == pid) {
    *status = decode(st);
    return 1;
  }
  if (r < 0) { /* not ours, or already reaped */
    *status = -1;
    return 1;
  }
  return 0;
}

int rc_run(const char *cmd, const char *log) {
  return rc_finish(rc_start(cmd, log));
}

const char *rc_slurp(const char *path) {
  static char buf[65536];
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f)
    return buf;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

double rc_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int rc_cunit_init(char *dir, size_t cap, const char *tmpl) {
  snprintf(dir, cap, "%s", tmpl);
  if (!mkdtemp(dir))
    return -1;
  snprintf(case_dir, sizeof case_dir, "%s", dir);
  return CU_initialize_registry() == CUE_SUCCESS ? 0 : -1;
}

/* ---- cases side by side ------------------------------------------------ */

int rc_cases_at_once = 3;

typedef struct rc_case {
  CU_pTest test;
  void (*fn)(void);
  void (*fn_arg)(int);
  int arg;
  pid_t pid;
  int state; /* 0 waiting, 1 running, 2 done */
  int status;
  double start, end; /* rc_now() */
  char log[600];
} rc_case;

static rc_case *cases;
static int ncases;

/* The body of case c in this (child) process: output to c->log, CUnit's
 * failures of the body printed, exit 1 when there were any. */
static void case_child(rc_case *c) {
  int fd = open(c->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
  }
  unsigned before = CU_get_number_of_failure_records();
  /* A fatal assertion jumps back here, not into the parent's runner. */
  jmp_buf jb;
  CU_pTest t = CU_get_current_test();
  if (t)
    t->pJumpBuf = &jb;
  if (!setjmp(jb)) {
    if (c->fn)
      c->fn();
    else
      c->fn_arg(c->arg);
  }
  unsigned k = 0, failed = 0;
  for (CU_pFailureRecord r = CU_get_failure_list(); r; r = r->pNext, k++)
    if (k >= before) {
      printf("\n  FAILED %s:%u: %s", r->strFileName ? r->strFileName : "?",
             r->uiLineNumber, r->strCondition ? r->strCondition : "?");
      failed++;
    }
  fflush(stdout);
  fflush(stderr);
  _exit(failed ? 1 : 0);
}

/* Starts waiting cases while fewer than rc_cases_at_once run; marks the
 * ended ones done. */
static void cases_step(void) {
  static int at_once;
  if (!at_once) {
    const char *e = getenv("MPX_TEST_CASES_AT_ONCE");
    at_once = e && atoi(e) > 0 ? atoi(e) : rc_cases_at_once;
  }
  int running = 0;
  for (int i = 0; i < ncases; i++) {
    rc_case *c = &cases[i];
    if (c->state == 1) {
      int st;
      if (rc_poll(c->pid, &st)) {
        c->state = 2;
        c->status = st;
        c->end = rc_now();
      } else {
        running++;
      }
    }
  }
  for (int i = 0; i < ncases && running < at_once; i++) {
    rc_case *c = &cases[i];
    if (c->state != 0 || !c->test->fActive)
      continue;
    snprintf(c->log, sizeof c->log, "%s/case-%d.log", case_dir, i);
    fflush(NULL); /* nothing buffered twice */
    c->pid = fork();
    if (c->pid == 0)
      case_child(c);
    if (c->pid < 0) {
      c->state = 2;
      c->status = -1;
      continue;
    }
    c->state = 1;
    c->start = rc_now();
    running++;
  }
}

/* Copies a case's log to stdout, whatever its size, on lines of its own
 * after CUnit's "Test: NAME ..." (leading newlines dropped, one added at
 * the end when missing). */
static void print_log(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return;
  int c, last = '\n', any = 0;
  while ((c = getc(f)) != EOF) {
    if (!any && c == '\n')
      continue;
    if (!any)
      putchar('\n');
    any = 1;
    putchar(c);
    last = c;
  }
  fclose(f);
  if (last != '\n')
    putchar('\n');
}

/* The CUnit test of every case: waits for its body, shows its output. */
static void case_join(void) {
  CU_pTest t = CU_get_current_test();
  rc_case *c = NULL;
  for (int i = 0; i < ncases && !c; i++)
    if (cases[i].test == t)
      c = &cases[i];
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  for (cases_step(); c->state != 2; cases_step())
    usleep(20000);
  print_log(c->log);
  printf("  (case: %.1f s) ", c->end - c->start);
  if (c->status != 0) {
    char msg[300];
    snprintf(msg, sizeof msg, "case '%s' failed (exit %d; its output above)",
             t->pName, c->status);
    CU_assertImplementation(CU_FALSE, __LINE__, msg, __FILE__, "", CU_FALSE);
  }
}

static void add_case(CU_pSuite s, const char *name, void (*fn)(void),
                     void (*fn_arg)(int), int arg) {
  rc_case *n = realloc(cases, (size_t)(ncases + 1) * sizeof *cases);
  if (!n)
    abort();
  cases = n;
  memset(&cases[ncases], 0, sizeof cases[ncases]);
  cases[ncases].fn = fn;
  cases[ncases].fn_arg = fn_arg;
  cases[ncases].arg = arg;
  cases[ncases].test = CU_add_test(s, name, case_join);
  if (!cases[ncases].test)
    abort();
  ncases++;
}

void rc_add_case(CU_pSuite s, const char *name, void (*fn)(void)) {
  add_case(s, name, fn, NULL, 0);
}

void rc_add_case_arg(CU_pSuite s, const char *name, void (*fn)(int), int arg) {
  add_case(s, name, NULL, fn, arg);
}

/* Cases still running when the suite ends (their test never ran): waited
 * for; each one that failed counts. */
static unsigned reap_cases(void) {
  unsigned bad = 0;
  for (int i = 0; i < ncases; i++)
    if (cases[i].state == 1) {
      cases[i].status = rc_finish(cases[i].pid);
      cases[i].state = 2;
      bad += cases[i].status != 0;
    }
  return bad;
}

int rc_wait_file(const char *path, double limit) {
  struct stat sb;
  for (double end = rc_now() + limit; rc_now() < end; usleep(100000))
    if (stat(path, &sb) == 0)
      return 1;
  return stat(path, &sb) == 0;
}

int rc_cunit_run(const char *dir) {
  CU_basic_set_mode(CU_BRM_VERBOSE);
  for (CU_pSuite s = CU_get_registry()->pSuite; s; s = s->pNext)
    for (CU_pTest t = s->pTest; t; t = t->pNext)
      if (!ts_selected(t->pName))
        CU_set_test_active(t, CU_FALSE);
  CU_basic_run_tests();
  unsigned fails = CU_get_number_of_failures() + reap_cases();
  CU_cleanup_registry();
  if (fails == 0) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", dir);
  } else {
    fprintf(stderr, "files kept in %s\n", dir);
  }
  return fails ? 1 : 0;
}
