/*
 * test_registry.c -- the process-wide task table: mpx_register(),
 * mpx_unregister_all(), lookups, the executor hold, serialisation and the
 * cross-rank comparison behind MPX_EMISMATCH.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "mpx.h"
#include "registry.h"
#include "unit.h"

static int task_a(mpx_task_ctx *ctx, const void *arg, size_t len) {
  (void)ctx;
  (void)arg;
  (void)len;
  return 0;
}
static int task_b(mpx_task_ctx *ctx, const void *arg, size_t len) {
  (void)ctx;
  (void)arg;
  (void)len;
  return 1;
}
static int task_c(mpx_task_ctx *ctx, const void *arg, size_t len) {
  (void)ctx;
  (void)arg;
  (void)len;
  return 2;
}

static void reset(void) {
  CU_ASSERT_EQUAL_FATAL(mpx_unregister_all(), 0);
  CU_ASSERT_EQUAL_FATAL(mpx__registry_count(), 0);
}

/* 1 when msg contains the decimal number n not glued to other digits. */
static int has_number(const char *msg, long n) {
  char want[32];
  snprintf(want, sizeof want, "%ld", n);
  size_t wl = strlen(want);
  for (const char *p = strstr(msg, want); p; p = strstr(p + 1, want)) {
    int before = p > msg && isdigit((unsigned char)p[-1]);
    int after = isdigit((unsigned char)p[wl]);
    if (!before && !after)
      return 1;
  }
  return 0;
}

/* ---- registration ----------------------------------------------------- */

static void test_register_and_lookup(void) {
  reset();
  CU_ASSERT_EQUAL(mpx__registry_lookup("alpha"), MPX_ENOTASK);
  CU_ASSERT_EQUAL(mpx_register("alpha", task_a), 0);
  CU_ASSERT_EQUAL(mpx_register("beta", task_b), 0);
  CU_ASSERT_EQUAL(mpx_register("gamma", task_c), 0);
  CU_ASSERT_EQUAL(mpx__registry_count(), 3);
  /* Ids are positions in registration order. */
  CU_ASSERT_EQUAL(mpx__registry_lookup("alpha"), 0);
  CU_ASSERT_EQUAL(mpx__registry_lookup("beta"), 1);
  CU_ASSERT_EQUAL(mpx__registry_lookup("gamma"), 2);
  CU_ASSERT_EQUAL(mpx__registry_lookup("delta"), MPX_ENOTASK);
  CU_ASSERT_EQUAL(mpx__registry_lookup(""), MPX_ENOTASK);
  CU_ASSERT_EQUAL(mpx__registry_lookup("alph"), MPX_ENOTASK);
  CU_ASSERT_EQUAL(mpx__registry_lookup("alphaa"), MPX_ENOTASK);
  CU_ASSERT_EQUAL(mpx__registry_lookup("ALPHA"), MPX_ENOTASK);
  CU_ASSERT_PTR_EQUAL(mpx__registry_fn(0), task_a);
  CU_ASSERT_PTR_EQUAL(mpx__registry_fn(1), task_b);
  CU_ASSERT_PTR_EQUAL(mpx__registry_fn(2), task_c);
  CU_ASSERT_STRING_EQUAL(mpx__registry_name(0), "alpha");
  CU_ASSERT_STRING_EQUAL(mpx__registry_name(1), "beta");
  CU_ASSERT_STRING_EQUAL(mpx__registry_name(2), "gamma");
  /* Out of range. */
  CU_ASSERT_PTR_NULL(mpx__registry_fn(3));
  CU_ASSERT_PTR_NULL(mpx__registry_name(3));
  CU_ASSERT_PTR_NULL(mpx__registry_fn(UINT32_MAX));
  CU_ASSERT_PTR_NULL(mpx__registry_name(UINT32_MAX));
  /* The same function may be registered under several names. */
  CU_ASSERT_EQUAL(mpx_register("alpha2", task_a), 0);
  CU_ASSERT_EQUAL(mpx__registry_lookup("alpha2"), 3);
  CU_ASSERT_PTR_EQUAL(mpx__registry_fn(3), task_a);
  reset();
  CU_ASSERT_EQUAL(mpx__registry_lookup("alpha"), MPX_ENOTASK);
  CU_ASSERT_PTR_NULL(mpx__registry_fn(0));
  CU_ASSERT_PTR_NULL(mpx__registry_name(0));
}

static void test_name_is_copied(void) {
  reset();
  char buf[16];
  strcpy(buf, "square");
  CU_ASSERT_EQUAL(mpx_register(buf, task_a), 0);
  strcpy(buf, "cube");
  CU_ASSERT_STRING_EQUAL(mpx__registry_name(0), "square");
  CU_ASSERT_EQUAL(mpx__registry_lookup("square"), 0);
  CU_ASSERT_EQUAL(mpx__registry_lookup("cube"), MPX_ENOTASK);
  reset();
}

static void test_register_errors(void) {
  reset();
  CU_ASSERT_EQUAL(mpx_register(NULL, task_a), MPX_EINVAL);
  CU_ASSERT(strlen(mpx_last_error()) > 0);
  CU_ASSERT_EQUAL(mpx_register("", task_a), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx_register("nofn", NULL), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx_register(NULL, NULL), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx__registry_count(), 0);

  char name[MPX_TASK_NAME_MAX + 2];
  memset(name, 'n', MPX_TASK_NAME_MAX);
  name[MPX_TASK_NAME_MAX] = '\0'; /* 63 chars: the longest allowed */
  CU_ASSERT_EQUAL(mpx_register(name, task_a), 0);
  CU_ASSERT_STRING_EQUAL(mpx__registry_name(0), name);
  CU_ASSERT_EQUAL(mpx__registry_lookup(name), 0);
  name[MPX_TASK_NAME_MAX] = 'm';
  name[MPX_TASK_NAME_MAX + 1] = '\0'; /* 64 chars */
  CU_ASSERT_EQUAL(mpx_register(name, task_b), MPX_E2BIG);
  CU_ASSERT(strlen(mpx_last_error()) > 0);
  CU_ASSERT_EQUAL(mpx__registry_lookup(name), MPX_ENOTASK);
  char *huge = malloc(5000);
  memset(huge, 'h', 4999);
  huge[4999] = '\0';
  CU_ASSERT_EQUAL(mpx_register(huge, task_b), MPX_E2BIG);
  free(huge);
  CU_ASSERT_EQUAL(mpx__registry_count(), 1);

  /* A newline would break the '\n'-separated serialisation (two names
   * "a", "b" would match one "a\nb"), so such a name must be refused; the
   * header does not list this case, the library returns MPX_EINVAL. */
  CU_ASSERT(mpx_register("two\nlines", task_a) < 0);
  CU_ASSERT(mpx_register("trailing\n", task_a) < 0);
  CU_ASSERT_EQUAL(mpx__registry_count(), 1);

  CU_ASSERT_EQUAL(mpx_register("dup", task_a), 0);
  CU_ASSERT_EQUAL(mpx_register("dup", task_b), MPX_EEXIST);
  CU_ASSERT(strlen(mpx_last_error()) > 0);
  CU_ASSERT_EQUAL(mpx_register("dup", task_a), MPX_EEXIST);
  CU_ASSERT_EQUAL(mpx__registry_count(), 2);
  CU_ASSERT_PTR_EQUAL(mpx__registry_fn(1), task_a);
  reset();
}

static void test_hold_blocks_registration(void) {
  reset();
  CU_ASSERT_EQUAL(mpx_register("before", task_a), 0);
  mpx__registry_hold(1);
  CU_ASSERT_EQUAL(mpx_register("during", task_b), MPX_EBUSY);
  CU_ASSERT_EQUAL(mpx_unregister_all(), MPX_EBUSY);
  /* Nothing changed; lookups still work while held. */
  CU_ASSERT_EQUAL(mpx__registry_count(), 1);
  CU_ASSERT_EQUAL(mpx__registry_lookup("before"), 0);
  CU_ASSERT_EQUAL(mpx__registry_lookup("during"), MPX_ENOTASK);
  /* Two live executors: one release is not enough. */
  mpx__registry_hold(1);
  mpx__registry_hold(-1);
  CU_ASSERT_EQUAL(mpx_register("during", task_b), MPX_EBUSY);
  mpx__registry_hold(-1);
  CU_ASSERT_EQUAL(mpx_register("during", task_b), 0);
  CU_ASSERT_EQUAL(mpx__registry_lookup("during"), 1);
  CU_ASSERT_EQUAL(mpx_unregister_all(), 0);
  CU_ASSERT_EQUAL(mpx__registry_count(), 0);
  /* Registration works again after unregister_all, ids restart at 0. */
  CU_ASSERT_EQUAL(mpx_register("again", task_c), 0);
  CU_ASSERT_EQUAL(mpx__registry_lookup("again"), 0);
  reset();
}

static void test_many_tasks(void) {
  reset();
  enum { N = 500 };
  char name[32];
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "task_%d", i);
    CU_ASSERT_EQUAL(mpx_register(name, i % 2 ? task_a : task_b), 0);
  }
  CU_ASSERT_EQUAL(mpx__registry_count(), N);
  for (int i = N - 1; i >= 0; i--) {
    snprintf(name, sizeof name, "task_%d", i);
    CU_ASSERT_EQUAL(mpx__registry_lookup(name), i);
    CU_ASSERT_STRING_EQUAL(mpx__registry_name((uint32_t)i), name);
  }
  reset();
}

/* ---- serialisation ---------------------------------------------------- */

static void test_serialize(void) {
  reset();
  char *out = NULL;
  size_t len = 99;
  CU_ASSERT_EQUAL(mpx__registry_serialize(&out, &len), 0);
  CU_ASSERT_PTR_NOT_NULL(out);
  CU_ASSERT_EQUAL(len, 0);
  free(out);

  CU_ASSERT_EQUAL(mpx_register("a", task_a), 0);
  CU_ASSERT_EQUAL(mpx_register("bb", task_b), 0);
  CU_ASSERT_EQUAL(mpx_register("ccc", task_c), 0);
  out = NULL;
  CU_ASSERT_EQUAL(mpx__registry_serialize(&out, &len), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  CU_ASSERT_EQUAL(len, 9);
  CU_ASSERT(len == 9 && memcmp(out, "a\nbb\nccc\n", 9) == 0);

  /* A table compares equal to itself. */
  char msg[256] = "untouched";
  CU_ASSERT_EQUAL(
      mpx__registry_compare(out, len, 0, out, len, 1, msg, sizeof msg), 0);
  free(out);
  reset();
}

/* ---- comparison ------------------------------------------------------- */

/* Compares exact-size heap copies (no NUL after the tables) so that ASan
 * catches reads past the lengths. */
static int cmp(const char *root_tab, int root, const char *other_tab, int other,
               char *msg, size_t cap) {
  size_t rl = strlen(root_tab), ol = strlen(other_tab);
  char *r = calloc(rl ? rl : 1, 1), *o = calloc(ol ? ol : 1, 1);
  CU_ASSERT_FATAL(r && o);
  memcpy(r, root_tab, rl);
  memcpy(o, other_tab, ol);
  int rc = mpx__registry_compare(r, rl, root, o, ol, other, msg, cap);
  free(r);
  free(o);
  return rc;
}

static void test_compare_equal(void) {
  char msg[256];
  CU_ASSERT_EQUAL(cmp("", 0, "", 1, msg, sizeof msg), 0);
  CU_ASSERT_EQUAL(cmp("square\n", 0, "square\n", 3, msg, sizeof msg), 0);
  CU_ASSERT_EQUAL(
      cmp("square\ncube\nfib\n", 2, "square\ncube\nfib\n", 7, msg, sizeof msg),
      0);
}

static void test_compare_different_name(void) {
  char msg[512];
  memset(msg, 0, sizeof msg);
  CU_ASSERT_EQUAL(cmp("first\nsquare\nlast\n", 5, "first\ncube\nlast\n", 13,
                      msg, sizeof msg),
                  MPX_EMISMATCH);
  CU_ASSERT(has_number(msg, 5));
  CU_ASSERT(has_number(msg, 13));
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "square"));
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "cube"));
  /* The first difference is named, not a later one. */
  memset(msg, 0, sizeof msg);
  CU_ASSERT_EQUAL(cmp("same\nroot_one\nroot_two\n", 0,
                      "same\nother_one\nother_two\n", 4, msg, sizeof msg),
                  MPX_EMISMATCH);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "root_one"));
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "other_one"));
  CU_ASSERT_PTR_NULL(strstr(msg, "root_two"));
  CU_ASSERT_PTR_NULL(strstr(msg, "other_two"));
  /* Same names, different order. */
  memset(msg, 0, sizeof msg);
  CU_ASSERT_EQUAL(
      cmp("apple\nbanana\n", 0, "banana\napple\n", 2, msg, sizeof msg),
      MPX_EMISMATCH);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "apple"));
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "banana"));
  /* A name that is a prefix of the other. */
  memset(msg, 0, sizeof msg);
  CU_ASSERT_EQUAL(cmp("fib\n", 0, "fibo\n", 1, msg, sizeof msg), MPX_EMISMATCH);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "fibo"));
}

static void test_compare_other_missing_task(void) {
  char msg[512];
  memset(msg, 0, sizeof msg);
  CU_ASSERT_EQUAL(
      cmp("square\ncube\nfibonacci\n", 0, "square\ncube\n", 3, msg, sizeof msg),
      MPX_EMISMATCH);
  CU_ASSERT(has_number(msg, 0));
  CU_ASSERT(has_number(msg, 3));
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "fibonacci"));
}

static void test_compare_other_extra_task(void) {
  char msg[512];
  memset(msg, 0, sizeof msg);
  CU_ASSERT_EQUAL(
      cmp("square\n", 4, "square\nextratask\n", 11, msg, sizeof msg),
      MPX_EMISMATCH);
  CU_ASSERT(has_number(msg, 4));
  CU_ASSERT(has_number(msg, 11));
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "extratask"));
}

static void test_compare_empty_vs_nonempty(void) {
  char msg[512];
  memset(msg, 0, sizeof msg);
  CU_ASSERT_EQUAL(cmp("", 6, "lonely\n", 9, msg, sizeof msg), MPX_EMISMATCH);
  CU_ASSERT(has_number(msg, 6));
  CU_ASSERT(has_number(msg, 9));
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "lonely"));
  memset(msg, 0, sizeof msg);
  CU_ASSERT_EQUAL(cmp("lonely\n", 6, "", 9, msg, sizeof msg), MPX_EMISMATCH);
  CU_ASSERT(has_number(msg, 6));
  CU_ASSERT(has_number(msg, 9));
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "lonely"));
}

static void test_compare_small_cap(void) {
  /* The message is cut to cap bytes, NUL included, and nothing past cap is
   * written. */
  static const size_t caps[] = {1, 2, 8, 20};
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
    char msg[128];
    memset(msg, 'Z', sizeof msg);
    CU_ASSERT_EQUAL(cmp("square\n", 0, "cube\n", 1, msg, caps[i]),
                    MPX_EMISMATCH);
    CU_ASSERT(memchr(msg, '\0', caps[i]) != NULL);
    for (size_t k = caps[i]; k < sizeof msg; k++)
      if (msg[k] != 'Z') {
        CU_FAIL("mpx__registry_compare wrote past cap");
        break;
      }
  }
}

static const unit_test register_tests[] = {
    {"register_and_lookup", test_register_and_lookup},
    {"name_is_copied", test_name_is_copied},
    {"register_errors", test_register_errors},
    {"hold_blocks_registration", test_hold_blocks_registration},
    {"many_tasks", test_many_tasks},
    {"serialize", test_serialize},
    {NULL, NULL}};

static const unit_test compare_tests[] = {
    {"equal", test_compare_equal},
    {"different_name", test_compare_different_name},
    {"other_missing_task", test_compare_other_missing_task},
    {"other_extra_task", test_compare_other_extra_task},
    {"empty_vs_nonempty", test_compare_empty_vs_nonempty},
    {"small_cap", test_compare_small_cap},
    {NULL, NULL}};

int main(void) {
  const unit_suite suites[] = {{"registry", register_tests},
                               {"registry_compare", compare_tests},
                               {NULL, NULL}};
  return unit_main(suites, 30);
}
