/*
 * test_errors.c -- mpx_strerror(), mpx_err_name(), mpx__fail() and the
 * thread-local mpx_last_error().
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mpx.h"
#include "unit.h"
#include "util.h"

typedef struct err_entry {
  int code;
  const char *name;
  const char *msg;
} err_entry;

#define ERR_ENTRY(name, value, msg) {MPX_##name, "MPX_" #name, msg},
static const err_entry table[] = {MPX_ERRNO_MAP(ERR_ENTRY)};
#undef ERR_ENTRY
#define NCODES (sizeof table / sizeof table[0])

/* The released values, written out by hand: a code never changes once
 * released (mpx_errors.h), so a renumbered or renamed entry of the table
 * must fail here rather than pass by comparing the table with itself. */
static const struct {
  const char *name;
  int value;
  int code; /* the enum constant of that name */
} released[] = {{"MPX_EINVAL", -1, MPX_EINVAL},
                {"MPX_ENOMEM", -2, MPX_ENOMEM},
                {"MPX_ENOTASK", -3, MPX_ENOTASK},
                {"MPX_EEXIST", -4, MPX_EEXIST},
                {"MPX_ETIMEDOUT", -5, MPX_ETIMEDOUT},
                {"MPX_ECANCELED", -6, MPX_ECANCELED},
                {"MPX_ETASK", -7, MPX_ETASK},
                {"MPX_EBROKEN", -8, MPX_EBROKEN},
                {"MPX_ESHUTDOWN", -9, MPX_ESHUTDOWN},
                {"MPX_EBUSY", -10, MPX_EBUSY},
                {"MPX_EDEADLK", -11, MPX_EDEADLK},
                {"MPX_EMPI", -12, MPX_EMPI},
                {"MPX_EPROTO", -13, MPX_EPROTO},
                {"MPX_EMISMATCH", -14, MPX_EMISMATCH},
                {"MPX_ETHREAD", -15, MPX_ETHREAD},
                {"MPX_EOF", -16, MPX_EOF},
                {"MPX_ESYS", -17, MPX_ESYS},
                {"MPX_E2BIG", -18, MPX_E2BIG},
                {"MPX_EIO", -19, MPX_EIO},
                {"MPX_ESCHEMA", -20, MPX_ESCHEMA},
                {"MPX_EFILE", -21, MPX_EFILE},
                {"MPX_ECORRUPT", -22, MPX_ECORRUPT},
                {"MPX_EINTR", -23, MPX_EINTR},
                {"MPX_ECRASHED", -24, MPX_ECRASHED},
                {"MPX_EEXIT", -25, MPX_EEXIT},
                {"MPX_ETIMELIMIT", -26, MPX_ETIMELIMIT},
                {"MPX_EMEMLIMIT", -27, MPX_EMEMLIMIT},
                {"MPX_ELAUNCH", -28, MPX_ELAUNCH}};
#define NRELEASED (sizeof released / sizeof released[0])

static void test_released_values(void) {
  /* Every released code keeps its number and its name. */
  for (size_t i = 0; i < NRELEASED; i++) {
    CU_ASSERT_EQUAL(released[i].code, released[i].value);
    CU_ASSERT_STRING_EQUAL(mpx_err_name(released[i].value), released[i].name);
    CU_ASSERT_STRING_NOT_EQUAL(mpx_strerror(released[i].value),
                               "unknown error");
  }
  /* The table holds the released codes first, in order; new codes are
   * appended after them. */
  CU_ASSERT_FATAL(NCODES >= NRELEASED);
  for (size_t i = 0; i < NRELEASED; i++) {
    CU_ASSERT_EQUAL(table[i].code, released[i].value);
    CU_ASSERT_STRING_EQUAL(table[i].name, released[i].name);
  }
  /* Appended codes are negative and distinct. */
  for (size_t i = 0; i < NCODES; i++) {
    CU_ASSERT(table[i].code < 0);
    for (size_t j = i + 1; j < NCODES; j++)
      CU_ASSERT_NOT_EQUAL(table[i].code, table[j].code);
  }
}

static void test_err_names(void) {
  for (size_t i = 0; i < NCODES; i++) {
    const char *n = mpx_err_name(table[i].code);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n, table[i].name);
  }
  CU_ASSERT_STRING_EQUAL(mpx_err_name(MPX_ETIMEDOUT), "MPX_ETIMEDOUT");
  CU_ASSERT_STRING_EQUAL(mpx_err_name(MPX_E2BIG), "MPX_E2BIG");
}

static void test_strerror_messages(void) {
  for (size_t i = 0; i < NCODES; i++) {
    const char *m = mpx_strerror(table[i].code);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT(strlen(m) > 0);
    /* The header says the same table generates mpx_strerror(). */
    CU_ASSERT_STRING_EQUAL(m, table[i].msg);
    CU_ASSERT_STRING_NOT_EQUAL(m, "unknown error");
    CU_ASSERT_STRING_NOT_EQUAL(m, "success");
  }
}

static void test_strerror_distinct(void) {
  for (size_t i = 0; i < NCODES; i++)
    for (size_t j = i + 1; j < NCODES; j++) {
      CU_ASSERT_STRING_NOT_EQUAL(mpx_strerror(table[i].code),
                                 mpx_strerror(table[j].code));
      CU_ASSERT_STRING_NOT_EQUAL(mpx_err_name(table[i].code),
                                 mpx_err_name(table[j].code));
    }
}

/* 0 is not in the table; the convention chosen here is that it is the
 * success code: "success" / "MPX_OK". */
static void test_zero_is_success(void) {
  CU_ASSERT_PTR_NOT_NULL_FATAL(mpx_strerror(0));
  CU_ASSERT_PTR_NOT_NULL_FATAL(mpx_err_name(0));
  CU_ASSERT_STRING_EQUAL(mpx_strerror(0), "success");
  CU_ASSERT_STRING_EQUAL(mpx_err_name(0), "MPX_OK");
}

static void test_unknown_codes(void) {
  int lowest = 0;
  for (size_t i = 0; i < NCODES; i++)
    if (table[i].code < lowest)
      lowest = table[i].code;
  const int unknown[] = {12345, -12345, 1, 2, lowest - 1, INT_MIN, INT_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    const char *m = mpx_strerror(unknown[i]);
    const char *n = mpx_err_name(unknown[i]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(m, "unknown error");
    CU_ASSERT_STRING_EQUAL(n, "MPX_EUNKNOWN");
  }
}

static void test_fail_returns_code_and_sets_message(void) {
  for (size_t i = 0; i < NCODES; i++) {
    int rc = mpx__fail(table[i].code, "code %d is %s (%s)", table[i].code,
                       table[i].name, "detail");
    CU_ASSERT_EQUAL(rc, table[i].code);
    char want[256];
    snprintf(want, sizeof want, "code %d is %s (%s)", table[i].code,
             table[i].name, "detail");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mpx_last_error());
    CU_ASSERT_STRING_EQUAL(mpx_last_error(), want);
  }
  /* A later failure replaces the message. */
  CU_ASSERT_EQUAL(mpx__fail(MPX_EINVAL, "%s", "second"), MPX_EINVAL);
  CU_ASSERT_STRING_EQUAL(mpx_last_error(), "second");
  CU_ASSERT_EQUAL(mpx__fail(MPX_ENOTASK, "no task '%s'", "fib"), MPX_ENOTASK);
  CU_ASSERT_STRING_EQUAL(mpx_last_error(), "no task 'fib'");
}

static void test_fail_long_message(void) {
  /* A message far longer than any sensible buffer: it may be truncated but
   * must stay a NUL-terminated prefix of the text. */
  size_t n = 10000;
  char *big = malloc(n + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(big);
  for (size_t i = 0; i < n; i++)
    big[i] = (char)('a' + i % 26);
  big[n] = '\0';
  CU_ASSERT_EQUAL(mpx__fail(MPX_E2BIG, "%s", big), MPX_E2BIG);
  const char *e = mpx_last_error();
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  size_t el = strlen(e);
  CU_ASSERT(el > 0);
  CU_ASSERT(el <= n);
  CU_ASSERT(strncmp(e, big, el) == 0);
  free(big);
}

/* ---- thread-locality -------------------------------------------------- */

typedef struct thr_arg {
  pthread_barrier_t *bar;
  int id;
  int initial_empty; /* mpx_last_error() was "" before any failure */
  int rc_ok;         /* mpx__fail returned its code */
  int own_after_bar; /* still sees its own message after the others failed */
  int own_at_end;
} thr_arg;

/* The version is one value: the header's macros, the string and the
 * library's run-time answer agree. */
static void test_version(void) {
  char v[32];
  snprintf(v, sizeof v, "%d.%d.%d", MPX_VERSION_MAJOR, MPX_VERSION_MINOR,
           MPX_VERSION_PATCH);
  CU_ASSERT_STRING_EQUAL(v, MPX_VERSION_STRING);
  CU_ASSERT_STRING_EQUAL(mpx_version(), MPX_VERSION_STRING);
}

static void *thr_main(void *p) {
  thr_arg *a = p;
  const char *e0 = mpx_last_error();
  a->initial_empty = e0 != NULL && e0[0] == '\0';
  pthread_barrier_wait(a->bar); /* everybody read its initial value */
  char want[64];
  snprintf(want, sizeof want, "thread %d failed", a->id);
  a->rc_ok = mpx__fail(MPX_ESYS, "thread %d failed", a->id) == MPX_ESYS;
  pthread_barrier_wait(a->bar); /* everybody failed */
  a->own_after_bar = strcmp(mpx_last_error(), want) == 0;
  pthread_barrier_wait(a->bar);
  a->own_at_end = strcmp(mpx_last_error(), want) == 0;
  return NULL;
}

static void test_last_error_is_thread_local(void) {
  enum { NT = 4 };
  CU_ASSERT_EQUAL(mpx__fail(MPX_EMPI, "main thread %s", "message"), MPX_EMPI);
  pthread_barrier_t bar;
  CU_ASSERT_EQUAL_FATAL(pthread_barrier_init(&bar, NULL, NT), 0);
  pthread_t th[NT];
  thr_arg args[NT];
  for (int i = 0; i < NT; i++) {
    args[i] = (thr_arg){.bar = &bar, .id = i + 1};
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, thr_main, &args[i]), 0);
  }
  for (int i = 0; i < NT; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&bar);
  for (int i = 0; i < NT; i++) {
    CU_ASSERT(args[i].initial_empty);
    CU_ASSERT(args[i].rc_ok);
    CU_ASSERT(args[i].own_after_bar);
    CU_ASSERT(args[i].own_at_end);
  }
  /* The threads' failures did not touch the main thread's message. */
  CU_ASSERT_STRING_EQUAL(mpx_last_error(), "main thread message");
}

static const unit_test errors_tests[] = {
    {"released_values", test_released_values},
    {"err_names", test_err_names},
    {"strerror_messages", test_strerror_messages},
    {"strerror_distinct", test_strerror_distinct},
    {"zero_is_success", test_zero_is_success},
    {"unknown_codes", test_unknown_codes},
    {"fail_returns_code_and_sets_message",
     test_fail_returns_code_and_sets_message},
    {"fail_long_message", test_fail_long_message},
    {"last_error_is_thread_local", test_last_error_is_thread_local},
    {"version", test_version},
    {NULL, NULL}};

int main(void) {
  const unit_suite suites[] = {{"errors", errors_tests}, {NULL, NULL}};
  return unit_main(suites, 30);
}
