/*
 * test_api_errors.c -- every MPI-free public call's error paths (and the
 * internal helpers' out-of-memory paths): each failure must return its
 * code AND replace mpx_last_error() with a message that starts with the
 * call's own name. Before each call an unrelated "STALE" message is set,
 * so that a path that returns a code without a message is caught.
 *
 * Allocation failures: the program is linked with -Wl,--wrap=malloc,
 * --wrap=calloc,--wrap=realloc (tests/unit/CMakeLists.txt), which routes
 * every allocation of the statically linked library code through the
 * __wrap_ functions below. While fail_allocs is set on a thread, they fail
 * on that thread; nothing in the library itself changes for the test.
 * The calls of the executor (which need MPI) are in
 * tests/mpi/test_api_errors_mpi.c.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "future.h"
#include "mpx.h"
#include "msg.h"
#include "registry.h"
#include "task.h"
#include "transport.h"
#include "unit.h"
#include "util.h"
#include "worktable.h"

/* ---- allocation fault injection (see the file comment) ----------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);

static _Thread_local int fail_allocs;

/* malloc of the library code, failing while fail_allocs is set. */
void *__wrap_malloc(size_t n) {
  return fail_allocs ? NULL : __real_malloc(n);
}

/* calloc of the library code, failing while fail_allocs is set. */
void *__wrap_calloc(size_t n, size_t size) {
  return fail_allocs ? NULL : __real_calloc(n, size);
}

/* realloc of the library code, failing while fail_allocs is set. */
void *__wrap_realloc(void *p, size_t n) {
  return fail_allocs ? NULL : __real_realloc(p, n);
}

static int nomem_rc;
static void *nomem_ptr;

/* The value of expr evaluated with every allocation failing. */
#define NOMEM(expr)                                                            \
  (fail_allocs = 1, nomem_rc = (expr), fail_allocs = 0, nomem_rc)
#define NOMEM_PTR(expr)                                                        \
  (fail_allocs = 1, nomem_ptr = (expr), fail_allocs = 0, nomem_ptr)

/* ---- checking messages -------------------------------------------------- */

/* Sets an unrelated message, as an earlier failure would have left. */
static void stale(void) {
  mpx__fail(MPX_EIO, "STALE message of an unrelated failure");
}

/* 1 when mpx_last_error() starts with "call: " and holds no stale text. */
static int names(const char *call) {
  const char *e = mpx_last_error();
  size_t n = strlen(call);
  int ok = strncmp(e, call, n) == 0 && e[n] == ':' && !strstr(e, "STALE");
  if (!ok)
    fprintf(stderr, "\n  expected a message of %s, got \"%s\"\n", call, e);
  return ok;
}

/* Runs expr after setting a stale message and checks its code and that the
 * message names call. */
#define EXPECT(expr, code, call)                                               \
  do {                                                                         \
    stale();                                                                   \
    int rc_ = (expr);                                                          \
    CU_ASSERT_EQUAL(rc_, (code));                                              \
    CU_ASSERT(names(call));                                                    \
  } while (0)

/* As EXPECT for calls that return a pointer, NULL on failure. */
#define EXPECT_NULL(expr, call)                                                \
  do {                                                                         \
    stale();                                                                   \
    const void *p_ = (expr);                                                   \
    CU_ASSERT_PTR_NULL(p_);                                                    \
    CU_ASSERT(names(call));                                                    \
  } while (0)

/* As EXPECT for internal helpers: the message must be new, whatever it
 * says. */
#define EXPECT_NEW(expr, code)                                                 \
  do {                                                                         \
    stale();                                                                   \
    int rc_ = (expr);                                                          \
    CU_ASSERT_EQUAL(rc_, (code));                                              \
    CU_ASSERT(mpx_last_error()[0] != '\0');                                    \
    CU_ASSERT_PTR_NULL(strstr(mpx_last_error(), "STALE"));                     \
  } while (0)

static int noop_task(mpx_task_ctx *ctx, const void *arg, size_t len) {
  (void)ctx;
  (void)arg;
  (void)len;
  return 0;
}

/* A task context as the worker makes one. */
static mpx_task_ctx new_ctx(void) {
  mpx_task_ctx c;
  memset(&c, 0, sizeof c);
  c.name = "t";
  c.size = 1;
  return c;
}

/* Frees what a context collected. */
static void free_ctx(mpx_task_ctx *c) {
  mpx__arrays_clear(c);
  free(c->out);
  free(c->err);
  free(c->arrays);
}

/* ---- registration -------------------------------------------------------- */

static void test_register(void) {
  char longname[MPX_TASK_NAME_MAX + 2];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = 0;
  CU_ASSERT_EQUAL_FATAL(mpx_unregister_all(), 0);
  EXPECT(mpx_register(NULL, noop_task), MPX_EINVAL, "mpx_register");
  EXPECT(mpx_register("", noop_task), MPX_EINVAL, "mpx_register");
  EXPECT(mpx_register("a", NULL), MPX_EINVAL, "mpx_register");
  EXPECT(mpx_register("a\nb", noop_task), MPX_EINVAL, "mpx_register");
  EXPECT(mpx_register(longname, noop_task), MPX_E2BIG, "mpx_register");
  CU_ASSERT_EQUAL(mpx_register("a", noop_task), 0);
  EXPECT(mpx_register("a", noop_task), MPX_EEXIST, "mpx_register");
  mpx__registry_hold(1);
  EXPECT(mpx_register("b", noop_task), MPX_EBUSY, "mpx_register");
  EXPECT(mpx_unregister_all(), MPX_EBUSY, "mpx_unregister_all");
  mpx__registry_hold(-1);
  CU_ASSERT_EQUAL(mpx_unregister_all(), 0);
  EXPECT(NOMEM(mpx_register("c", noop_task)), MPX_ENOMEM, "mpx_register");
  /* The table serialised for the check at creation. */
  CU_ASSERT_EQUAL(mpx_register("d", noop_task), 0);
  char *tab = NULL;
  size_t len = 0;
  EXPECT_NEW(NOMEM(mpx__registry_serialize(&tab, &len)), MPX_ENOMEM);
  CU_ASSERT_EQUAL(mpx_unregister_all(), 0);
}

/* ---- inside a task ---------------------------------------------------- */

static void test_task_return_output_fail(void) {
  mpx_task_ctx c = new_ctx();
  char x[4] = "abc";
  EXPECT(mpx_task_return(NULL, x, sizeof x), MPX_EINVAL, "mpx_task_return");
  EXPECT(mpx_task_return(&c, NULL, 5), MPX_EINVAL, "mpx_task_return");
  /* No allocator can give SIZE_MAX bytes: the out-of-memory path. */
  EXPECT(mpx_task_return(&c, x, SIZE_MAX), MPX_ENOMEM, "mpx_task_return");
  EXPECT(NOMEM(mpx_task_return(&c, x, sizeof x)), MPX_ENOMEM,
         "mpx_task_return");
  EXPECT_NULL(mpx_task_output(NULL, 8), "mpx_task_output");
  EXPECT_NULL(mpx_task_output(&c, SIZE_MAX), "mpx_task_output");
  EXPECT(mpx_task_fail(NULL, "x"), MPX_ETASK, "mpx_task_fail");
  /* Nothing of the failures above reached the context. */
  CU_ASSERT_PTR_NULL(c.out);
  CU_ASSERT_PTR_NULL(c.err);
  free_ctx(&c);
}

/* A task that fails while its message cannot be copied, then returns 0. */
static int task_fail_nomem(mpx_task_ctx *ctx, const void *arg, size_t len) {
  (void)arg;
  (void)len;
  fail_allocs = 1;
  mpx_task_fail(ctx, "boom");
  fail_allocs = 0;
  return 0;
}

/* The failure stands even when mpx_task_fail() cannot keep its text: the
 * task is reported failed, with a message that says what was lost. */
static void test_task_fail_without_memory(void) {
  int id = mpx__registry_lookup("fail_nomem");
  if (id < 0) {
    CU_ASSERT_EQUAL_FATAL(mpx_register("fail_nomem", task_fail_nomem), 0);
    id = mpx__registry_lookup("fail_nomem");
  }
  CU_ASSERT_FATAL(id >= 0);
  void *res = NULL;
  size_t rlen = 0;
  uint64_t v = 1;
  CU_ASSERT_EQUAL(mpx__task_run((uint32_t)id, &v, sizeof v, 1, 2, &res, &rlen),
                  MPX_ETASK);
  CU_ASSERT_PTR_NOT_NULL_FATAL(res);
  CU_ASSERT_PTR_NOT_NULL(strstr(res, "out of memory for its message"));
  free(res);
  CU_ASSERT_EQUAL(mpx_unregister_all(), 0);
}

static void test_task_getters_null(void) {
  CU_ASSERT_EQUAL(mpx_task_rank(NULL), -1);
  CU_ASSERT_PTR_NULL(mpx_task_name(NULL));
  mpx_task_ctx c = new_ctx();
  c.rank = 3;
  CU_ASSERT_EQUAL(mpx_task_rank(&c), 3);
  CU_ASSERT_STRING_EQUAL(mpx_task_name(&c), "t");
}

static void test_task_array_strings(void) {
  mpx_task_ctx c = new_ctx();
  const char *strs[] = {"x", NULL};
  EXPECT_NULL(mpx_task_array(NULL, "a", MPX_INT32, 1, 1), "mpx_task_array");
  EXPECT_NULL(mpx_task_array(&c, NULL, MPX_INT32, 1, 1), "mpx_task_array");
  EXPECT_NULL(mpx_task_array(&c, "a", MPX_STRING, 1, 1), "mpx_task_array");
  EXPECT_NULL(mpx_task_array(&c, "a", (mpx_dtype)99, 1, 1), "mpx_task_array");
  EXPECT_NULL(mpx_task_array(&c, "a", MPX_INT32, 1, 0), "mpx_task_array");
  EXPECT_NULL(mpx_task_array(&c, "a/b", MPX_INT32, 1, 1), "mpx_task_array");
  EXPECT_NULL(mpx_task_array(&c, "mpx", MPX_INT32, 1, 1), "mpx_task_array");
  CU_ASSERT_PTR_NOT_NULL(mpx_task_array(&c, "a", MPX_INT32, 1, 1));
  EXPECT_NULL(mpx_task_array(&c, "a", MPX_INT32, 1, 1), "mpx_task_array");
  /* Out of memory for the data (the slot table has room already). */
  EXPECT_NULL(NOMEM_PTR(mpx_task_array(&c, "big", MPX_INT64, 4, 1)),
              "mpx_task_array");
  EXPECT(mpx_task_strings(NULL, "s", strs, 1), MPX_EINVAL, "mpx_task_strings");
  EXPECT(mpx_task_strings(NULL, "s", NULL, 0), MPX_EINVAL, "mpx_task_strings");
  EXPECT(mpx_task_strings(&c, "s", strs, 2), MPX_EINVAL, "mpx_task_strings");
  EXPECT(mpx_task_strings(&c, "", strs, 1), MPX_EINVAL, "mpx_task_strings");
  /* A name the arrays already hold: mpx_task_strings, not mpx_task_array. */
  EXPECT(mpx_task_strings(&c, "a", strs, 1), MPX_EINVAL, "mpx_task_strings");
  free_ctx(&c);
}

static void test_arrays_parse(void) {
  mpx_task_ctx c = new_ctx();
  CU_ASSERT_PTR_NOT_NULL(mpx_task_array(&c, "a", MPX_INT32, 2, 1));
  CU_ASSERT_PTR_NOT_NULL(mpx_task_array(&c, "b", MPX_FLOAT64, 1, 3));
  CU_ASSERT_EQUAL_FATAL(mpx__arrays_pack(&c), 0);
  mpx_array a[2];
  size_t n = 0;
  uint64_t raw[2] = {1, 2};
  EXPECT(mpx_arrays_parse(c.out, c.out_len, a, 2, NULL), MPX_EINVAL,
         "mpx_arrays_parse");
  EXPECT(mpx_arrays_parse(NULL, 8, a, 2, &n), MPX_EINVAL, "mpx_arrays_parse");
  EXPECT(mpx_arrays_parse(raw, sizeof raw, a, 2, &n), MPX_EINVAL,
         "mpx_arrays_parse");
  EXPECT(mpx_arrays_parse(c.out, c.out_len - 8, a, 2, &n), MPX_EINVAL,
         "mpx_arrays_parse");
  EXPECT(mpx_arrays_parse(c.out, c.out_len, a, 1, &n), MPX_E2BIG,
         "mpx_arrays_parse");
  CU_ASSERT_EQUAL(n, 2);
  CU_ASSERT_EQUAL(mpx_arrays_parse(c.out, c.out_len, a, 2, &n), 0);
  free_ctx(&c);
}

static void test_split_and_names(void) {
  uint64_t s, e;
  EXPECT(mpx_array_split(10, 0, 0, &s, &e), MPX_EINVAL, "mpx_array_split");
  EXPECT(mpx_array_split(10, 2, 2, &s, &e), MPX_EINVAL, "mpx_array_split");
  EXPECT(mpx_array_split(10, 2, 0, NULL, &e), MPX_EINVAL, "mpx_array_split");
  /* The getters of the dtype and code tables never fail. */
  CU_ASSERT_EQUAL(mpx_dtype_size((mpx_dtype)0), 0);
  CU_ASSERT_STRING_EQUAL(mpx_dtype_name((mpx_dtype)99), "?");
  CU_ASSERT_STRING_EQUAL(mpx_strerror(-999), "unknown error");
  CU_ASSERT_STRING_EQUAL(mpx_err_name(-999), "MPX_EUNKNOWN");
}

/* ---- futures ------------------------------------------------------------- */

/* A future finished with status (and err when it failed). */
static mpx_future *finished(mpx__sync *s, int status, const char *err) {
  mpx_future *f = NULL;
  CU_ASSERT_EQUAL_FATAL(mpx__future_create(s, 1, 0, NULL, 0, &f), 0);
  void *res = status == 0 ? malloc(8) : NULL;
  if (res)
    memset(res, 7, 8);
  mpx__cbq q;
  memset(&q, 0, sizeof q);
  pthread_mutex_lock(&s->mu);
  mpx__future_set_running_or_notify_cancel_locked(f);
  mpx__future_finish_locked(f, status, res, 8, err ? strdup(err) : NULL, &q);
  pthread_mutex_unlock(&s->mu);
  mpx__cbq_free(&q);
  return f;
}

/* Drops both references of a future made here. */
static void drop(mpx_future *f) {
  mpx__future_unref(f);
  mpx_future_destroy(&f);
}

static void cb_nop(mpx_future *f, void *arg) {
  (void)f;
  (void)arg;
}

static void test_future_null_and_getters(void) {
  const void *d;
  void *t;
  EXPECT(mpx_future_wait(NULL, 0), MPX_EINVAL, "mpx_future_wait");
  EXPECT(mpx_future_exception(NULL, 0), MPX_EINVAL, "mpx_future_exception");
  EXPECT(mpx_future_result(NULL, 0, &d, NULL), MPX_EINVAL, "mpx_future_result");
  EXPECT(mpx_future_take(NULL, 0, &t, NULL), MPX_EINVAL, "mpx_future_take");
  EXPECT(mpx_future_cancel(NULL), MPX_EINVAL, "mpx_future_cancel");
  EXPECT(mpx_future_add_done_callback(NULL, cb_nop, NULL), MPX_EINVAL,
         "mpx_future_add_done_callback");
  CU_ASSERT_EQUAL(mpx_future_state(NULL), MPX_NO_FUTURE);
  CU_ASSERT_EQUAL(mpx_future_done(NULL), 0);
  CU_ASSERT_PTR_NULL(mpx_future_error(NULL));
  CU_ASSERT_EQUAL(mpx_future_worker(NULL), -1);
  CU_ASSERT_EQUAL(mpx_future_id(NULL), 0);
  mpx_future_destroy(NULL);
  mpx_free(NULL);
}

static void test_future_pending(void) {
  mpx__sync *s = NULL;
  CU_ASSERT_EQUAL_FATAL(mpx__sync_create(&s), 0);
  mpx_future *f = NULL;
  CU_ASSERT_EQUAL_FATAL(mpx__future_create(s, 1, 0, NULL, 0, &f), 0);
  const void *d;
  void *t;
  EXPECT(mpx_future_wait(f, 0), MPX_ETIMEDOUT, "mpx_future_wait");
  EXPECT(mpx_future_wait(f, NAN), MPX_EINVAL, "mpx_future_wait");
  EXPECT(mpx_future_exception(f, 0), MPX_ETIMEDOUT, "mpx_future_exception");
  EXPECT(mpx_future_result(f, 0, &d, NULL), MPX_ETIMEDOUT, "mpx_future_result");
  EXPECT(mpx_future_take(f, 0, &t, NULL), MPX_ETIMEDOUT, "mpx_future_take");
  EXPECT(mpx_wait(&f, 1, MPX_ALL_COMPLETED, 0, NULL, NULL), MPX_ETIMEDOUT,
         "mpx_wait");
  EXPECT(mpx_wait(NULL, 1, MPX_ALL_COMPLETED, 0, NULL, NULL), MPX_EINVAL,
         "mpx_wait");
  EXPECT(mpx_wait(&f, 1, (mpx_wait_mode)7, 0, NULL, NULL), MPX_EINVAL,
         "mpx_wait");
  /* Out of memory for the waiter's links, with a timeout that would wait. */
  EXPECT(NOMEM(mpx_wait(&f, 1, MPX_ALL_COMPLETED, 60.0, NULL, NULL)),
         MPX_ENOMEM, "mpx_wait");
  EXPECT(NOMEM(mpx_future_add_done_callback(f, cb_nop, NULL)), MPX_ENOMEM,
         "mpx_future_add_done_callback");
  /* as_completed */
  mpx_as_completed *it = NULL;
  mpx_future *got = NULL;
  EXPECT(mpx_as_completed_create(&f, 1, 0, NULL), MPX_EINVAL,
         "mpx_as_completed_create");
  EXPECT(NOMEM(mpx_as_completed_create(&f, 1, 0, &it)), MPX_ENOMEM,
         "mpx_as_completed_create");
  CU_ASSERT_PTR_NULL(it);
  CU_ASSERT_EQUAL_FATAL(mpx_as_completed_create(&f, 1, 0, &it), 0);
  EXPECT(mpx_as_completed_next(NULL, &got), MPX_EINVAL,
         "mpx_as_completed_next");
  EXPECT(mpx_as_completed_next(it, &got), MPX_ETIMEDOUT,
         "mpx_as_completed_next");
  mpx_as_completed_destroy(&it);
  CU_ASSERT_EQUAL_FATAL(mpx_as_completed_create(&f, 0, 0, &it), 0);
  EXPECT(mpx_as_completed_next(it, &got), MPX_EOF, "mpx_as_completed_next");
  mpx_as_completed_destroy(&it);
  /* Cancelled: its outcome names the call that reports it. */
  CU_ASSERT_EQUAL(mpx_future_cancel(f), 0);
  EXPECT(mpx_future_exception(f, 0), MPX_ECANCELED, "mpx_future_exception");
  EXPECT(mpx_future_result(f, 0, &d, NULL), MPX_ECANCELED, "mpx_future_result");
  drop(f);
  mpx__sync_unref(s);
}

static void test_future_outcomes(void) {
  mpx__sync *s = NULL;
  CU_ASSERT_EQUAL_FATAL(mpx__sync_create(&s), 0);
  mpx_future *f = finished(s, MPX_ETASK, "task 'sq' failed on rank 1: boom");
  const void *d = &d;
  void *t;
  size_t len = 9;
  EXPECT(mpx_future_exception(f, 0), MPX_ETASK, "mpx_future_exception");
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "boom"));
  EXPECT(mpx_future_result(f, 0, &d, &len), MPX_ETASK, "mpx_future_result");
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "boom"));
  CU_ASSERT_PTR_NULL(d);
  CU_ASSERT_EQUAL(len, 0);
  EXPECT(mpx_future_take(f, 0, &t, NULL), MPX_ETASK, "mpx_future_take");
  EXPECT(mpx_future_cancel(f), MPX_EBUSY, "mpx_future_cancel");
  drop(f);
  /* A failure without a message (the manager out of memory) still says
   * what the code means. */
  f = finished(s, MPX_ENOMEM, NULL);
  EXPECT(mpx_future_exception(f, 0), MPX_ENOMEM, "mpx_future_exception");
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "out of memory"));
  drop(f);
  /* Running: cancel says so. */
  CU_ASSERT_EQUAL_FATAL(mpx__future_create(s, 2, 0, NULL, 0, &f), 0);
  pthread_mutex_lock(&s->mu);
  mpx__future_set_running_or_notify_cancel_locked(f);
  pthread_mutex_unlock(&s->mu);
  EXPECT(mpx_future_cancel(f), MPX_EBUSY, "mpx_future_cancel");
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "running"));
  mpx__cbq q;
  memset(&q, 0, sizeof q);
  pthread_mutex_lock(&s->mu);
  mpx__future_finish_locked(f, 0, NULL, 0, NULL, &q);
  pthread_mutex_unlock(&s->mu);
  mpx__cbq_free(&q);
  drop(f);
  mpx__sync_unref(s);
}

/* The defined behaviour after mpx_future_take(): result and take fail
 * with MPX_EINVAL naming the take; wait and exception report the outcome. */
static void test_result_after_take(void) {
  mpx__sync *s = NULL;
  CU_ASSERT_EQUAL_FATAL(mpx__sync_create(&s), 0);
  mpx_future *f = finished(s, 0, NULL);
  void *t = NULL;
  size_t len = 0;
  /* A take without data reports the length and hands nothing over. */
  CU_ASSERT_EQUAL(mpx_future_take(f, 0, NULL, &len), 0);
  CU_ASSERT_EQUAL(len, 8);
  CU_ASSERT_EQUAL(mpx_future_take(f, 0, &t, &len), 0);
  CU_ASSERT_PTR_NOT_NULL(t);
  CU_ASSERT_EQUAL(len, 8);
  mpx_free(t);
  const void *d = &d;
  len = 9;
  EXPECT(mpx_future_result(f, 0, &d, &len), MPX_EINVAL, "mpx_future_result");
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "mpx_future_take"));
  CU_ASSERT_PTR_NULL(d);
  CU_ASSERT_EQUAL(len, 0);
  EXPECT(mpx_future_result(f, MPX_FOREVER, NULL, NULL), MPX_EINVAL,
         "mpx_future_result");
  t = &t;
  len = 9;
  EXPECT(mpx_future_take(f, 0, &t, &len), MPX_EINVAL, "mpx_future_take");
  CU_ASSERT_PTR_NULL(t);
  CU_ASSERT_EQUAL(len, 0);
  CU_ASSERT_EQUAL(mpx_future_exception(f, 0), 0);
  CU_ASSERT_EQUAL(mpx_future_wait(f, 0), 0);
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_FINISHED);
  drop(f);
  mpx__sync_unref(s);
}

/* ---- internal helpers' out-of-memory paths ------------------------------ */

static void test_internal_oom(void) {
  mpx__sync *s = NULL;
  EXPECT_NEW(NOMEM(mpx__sync_create(&s)), MPX_ENOMEM);
  CU_ASSERT_EQUAL_FATAL(mpx__sync_create(&s), 0);
  mpx_future *f = NULL;
  char arg[16] = "arguments";
  EXPECT_NEW(NOMEM(mpx__future_create(s, 1, 0, arg, sizeof arg, &f)),
             MPX_ENOMEM);
  EXPECT_NEW(NOMEM(mpx__future_create_owned(s, 1, 0, NULL, 0, &f)), MPX_ENOMEM);
  mpx__sync_unref(s);
  mpx__worktable t;
  EXPECT_NEW(NOMEM(mpx__worktable_init(&t)), MPX_ENOMEM);
  CU_ASSERT_EQUAL_FATAL(mpx__worktable_init(&t), 0);
  EXPECT_NEW(mpx__worktable_put(&t, 1, NULL), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx__worktable_put(&t, 1, arg), 0);
  EXPECT_NEW(mpx__worktable_put(&t, 1, arg), MPX_EEXIST);
  mpx__worktable_destroy(&t);
  mpx__msgbuf b;
  memset(&b, 0, sizeof b);
  mpx__msgbuf_begin(&b, MPX_MSG_CALL, 0);
  EXPECT_NEW(mpx__msgbuf_add(&b, 1, 0, 0, NULL, 4), MPX_EINVAL);
  char big[4096] = {0};
  EXPECT_NEW(NOMEM(mpx__msgbuf_add(&b, 1, 0, 0, big, sizeof big)), MPX_ENOMEM);
  mpx__msgbuf_free(&b);
  mpx__chunkbuf cb;
  memset(&cb, 0, sizeof cb);
  EXPECT_NEW(NOMEM(mpx__chunkbuf_add(&cb, arg, sizeof arg)), MPX_ENOMEM);
  mpx__outcome oc[2];
  uint64_t junk[3] = {2, 0, 0};
  EXPECT_NEW(mpx__chunk_result_parse(junk, sizeof junk, 2, oc), MPX_EPROTO);
}

/* mpx__send_start fails before any MPI call on these paths, so no MPI is
 * needed: the message must say why, since a manager that breaks its pool
 * copies it into every future. */
static int released;
static void count_release(void *arg) {
  (void)arg;
  released++;
}

static void test_send_start_failures(void) {
  mpx__send *list = NULL;
  mpx__msgbuf b;
  memset(&b, 0, sizeof b);
  mpx__msgbuf_begin(&b, MPX_MSG_CALL, 0);
  mpx__msgbuf_finish(&b);
  released = 0;
  EXPECT_NEW(
      NOMEM(mpx__send_start(MPI_COMM_NULL, 1, &b, count_release, NULL, &list)),
      MPX_ENOMEM);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "rank 1"));
  CU_ASSERT_EQUAL(released, 1);
  CU_ASSERT_PTR_NULL(list);
  /* A head beyond MPI's int counts (the length alone is checked). */
  size_t real_len = b.len;
  b.len = (size_t)INT_MAX + 1;
  EXPECT_NEW(mpx__send_start(MPI_COMM_NULL, 2, &b, count_release, NULL, &list),
             MPX_E2BIG);
  CU_ASSERT_EQUAL(released, 2);
  CU_ASSERT_PTR_NULL(list);
  b.len = real_len;
  mpx__msgbuf_free(&b);
}

static const unit_test api_tests[] = {
    {"register", test_register},
    {"task_return_output_fail", test_task_return_output_fail},
    {"task_fail_without_memory", test_task_fail_without_memory},
    {"task_getters_null", test_task_getters_null},
    {"task_array_strings", test_task_array_strings},
    {"arrays_parse", test_arrays_parse},
    {"split_and_names", test_split_and_names},
    {"future_null_and_getters", test_future_null_and_getters},
    {"future_pending", test_future_pending},
    {"future_outcomes", test_future_outcomes},
    {"result_after_take", test_result_after_take},
    {"internal_oom", test_internal_oom},
    {"send_start_failures", test_send_start_failures},
    {NULL, NULL}};

int main(void) {
  const unit_suite suites[] = {{"api_errors", api_tests}, {NULL, NULL}};
  return unit_main(suites, 60);
}
