/*
 * testsel.h -- which of a test program's tests run, for the CUnit harnesses
 * (runcmd.c, tests/mpi/mpx_test_mpi.c): MPX_TEST_ONLY=P[|P...] only those
 * whose names start with one of the prefixes P ("13." say, for working on
 * one case), MPX_TEST_SKIP=P[|P...] all but those (a ctest entry of part
 * of a program's tests). | separates them: test names hold commas.
 */
#ifndef MPX_TESTSEL_H
#define MPX_TESTSEL_H

#include <stdlib.h>
#include <string.h>

/* Whether name starts with one of the |-separated prefixes of list. */
static inline int ts_starts_with_any(const char *name, const char *list) {
  for (const char *p = list; *p;) {
    size_t n = strcspn(p, "|");
    if (n > 0 && strncmp(name, p, n) == 0)
      return 1;
    p += n + (p[n] == '|');
  }
  return 0;
}

/* Whether the test name runs, by MPX_TEST_ONLY and MPX_TEST_SKIP. */
static inline int ts_selected(const char *name) {
  const char *only = getenv("MPX_TEST_ONLY"), *skip = getenv("MPX_TEST_SKIP");
  if (only && *only && !ts_starts_with_any(name, only))
    return 0;
  return !(skip && *skip && ts_starts_with_any(name, skip));
}

#endif
