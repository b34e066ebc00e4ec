#define _GNU_SOURCE
/*
 * runcmd.c -- see runcmd.h.
 */
#include "runcmd.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
  return CU_initialize_registry() == CUE_SUCCESS ? 0 : -1;
}

int rc_cunit_run(const char *dir) {
  CU_basic_set_mode(CU_BRM_VERBOSE);
  /* MPX_TEST_ONLY=PREFIX runs only the tests whose names start with it
   * ("13." say), for working on one case. */
  const char *only = getenv("MPX_TEST_ONLY");
  if (only && *only) {
    for (CU_pSuite s = CU_get_registry()->pSuite; s; s = s->pNext)
      for (CU_pTest t = s->pTest; t; t = t->pNext)
        if (strncmp(t->pName, only, strlen(only)) != 0)
          CU_set_test_active(t, CU_FALSE);
  }
  CU_basic_run_tests();
  unsigned fails = CU_get_number_of_failures();
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
