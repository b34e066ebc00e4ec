/*
 * unit.h -- the tiny runner shared by the CUnit programs in tests/unit.
 *
 * Each program lists its suites and tests as tables and calls unit_main(),
 * which prints one CUnit summary and returns non-zero on any failure. A
 * watchdog alarm turns a hang (for example a deadlock in the library) into
 * a prompt failure instead of a ctest timeout.
 */
#ifndef MPX_UNIT_H
#define MPX_UNIT_H

#include <CUnit/Basic.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

typedef struct unit_test {
  const char *name;
  CU_TestFunc fn;
} unit_test;

typedef struct unit_suite {
  const char *name;
  const unit_test *tests; /* ends with {NULL, NULL} */
} unit_suite;

static void unit_watchdog(int sig) {
  static const char m[] = "\nunit: watchdog expired, the test program hung "
                          "(deadlock?)\n";
  ssize_t r = write(2, m, sizeof m - 1);
  (void)r;
  (void)sig;
  _exit(3);
}

/* Runs every suite (NULL-name terminated) with verbose output; returns 0
 * when no assertion failed, 1 on failures, 2 when CUnit itself failed. */
static inline int unit_main(const unit_suite *suites, unsigned watchdog_s) {
  if (watchdog_s) {
    signal(SIGALRM, unit_watchdog);
    alarm(watchdog_s);
  }
  if (CU_initialize_registry() != CUE_SUCCESS)
    return 2;
  for (const unit_suite *s = suites; s->name; s++) {
    CU_pSuite cs = CU_add_suite(s->name, NULL, NULL);
    if (!cs) {
      CU_cleanup_registry();
      return 2;
    }
    for (const unit_test *t = s->tests; t->name; t++) {
      if (!CU_add_test(cs, t->name, t->fn)) {
        CU_cleanup_registry();
        return 2;
      }
    }
  }
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned nfail = CU_get_number_of_failures();
  CU_cleanup_registry();
  return nfail ? 1 : 0;
}

/* Monotonic clock in seconds (independent of the library's mpx__now). */
static inline double unit_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void unit_sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* A deterministic xorshift64* generator so that runs are reproducible. */
static inline uint64_t unit_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

#endif
