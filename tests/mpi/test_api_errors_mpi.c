/*
 * test_api_errors_mpi.c -- the error paths of the public calls that need
 * MPI or a live executor: creation, submit, futures of a pool, maps, jobs,
 * calls after shutdown and the task-side calls run inside a task. Each
 * failure must return its code AND replace mpx_last_error() with a message
 * that starts with the call's own name. Before each call a failing
 * mpx_array_split() leaves an unrelated message, so a path that returns a
 * code without setting one is caught. The MPI-free calls are covered by
 * tests/unit/test_api_errors.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpx_test_mpi.h"

static int register_rc;

/* Leaves an unrelated message, as an earlier failure would have. */
static void stale(void) {
  mpx_array_split(1, 0, 0, NULL, NULL);
}

/* 1 when mpx_last_error() starts with "call: " and holds nothing of the
 * stale message. */
static int names(const char *call) {
  const char *e = mpx_last_error();
  size_t n = strlen(call);
  int ok =
      strncmp(e, call, n) == 0 && e[n] == ':' &&
      (strcmp(call, "mpx_array_split") == 0 || !strstr(e, "mpx_array_split"));
  if (!ok)
    fprintf(stderr, "\n  rank %d: expected a message of %s, got \"%s\"\n",
            mt_rank(), call, e);
  return ok;
}

/* Runs expr after a stale message and checks code and message (root). */
#define EXPECT(expr, code, call)                                               \
  do {                                                                         \
    stale();                                                                   \
    int rc_ = (expr);                                                          \
    MT_ASSERT(rc_ == (code));                                                  \
    MT_ASSERT(names(call));                                                    \
  } while (0)

/* ---- tasks ----------------------------------------------------------- */

static int task_echo(mpx_task_ctx *ctx, const void *arg, size_t len) {
  return mpx_task_return(ctx, arg, len);
}

static int task_boom(mpx_task_ctx *ctx, const void *arg, size_t len) {
  (void)arg;
  (void)len;
  return mpx_task_fail(ctx, "boom %d", 7);
}

/* Walks the error paths of the task-side calls inside a real task and
 * fails with the first that misbehaves. */
static int task_inside(mpx_task_ctx *ctx, const void *arg, size_t len) {
  (void)arg;
  (void)len;
  const char *bad = NULL;
  const char *none[] = {NULL};
  stale();
  if (mpx_task_return(ctx, NULL, 5) != MPX_EINVAL || !names("mpx_task_return"))
    bad = "mpx_task_return(NULL data)";
  stale();
  if (!bad &&
      (mpx_task_output(ctx, SIZE_MAX) != NULL || !names("mpx_task_output")))
    bad = "mpx_task_output(SIZE_MAX)";
  stale();
  if (!bad && (mpx_task_array(ctx, "a", MPX_STRING, 1, 1) != NULL ||
               !names("mpx_task_array")))
    bad = "mpx_task_array(MPX_STRING)";
  stale();
  if (!bad && (mpx_task_strings(ctx, "s", none, 1) != MPX_EINVAL ||
               !names("mpx_task_strings")))
    bad = "mpx_task_strings(NULL string)";
  if (bad)
    return mpx_task_fail(ctx, "%s: got \"%s\"", bad, mpx_last_error());
  if (mpx_task_rank(NULL) != -1 || mpx_task_name(NULL) != NULL)
    return mpx_task_fail(ctx, "the task getters' NULL rules");
  return mpx_task_return(ctx, "ok", 3);
}

/* Produces 8-byte inputs and fails at input 3 with MPX_EIO. */
static int fail_at_3(void *arg, uint64_t index, const void **data,
                     size_t *len) {
  static uint64_t v[3];
  (void)arg;
  if (index == 3)
    return MPX_EIO;
  v[index] = index;
  *data = &v[index];
  *len = sizeof v[index];
  return 1;
}

/* ---- creation ---------------------------------------------------------- */

static void test_create_errors(void) {
  MT_ASSERT_ALL(register_rc == 0);
  mpx_executor *ex = NULL;
  stale();
  int rc = mpx_executor_create(MPI_COMM_WORLD, NULL, NULL);
  MT_ASSERT_ALL(rc == MPX_EINVAL && names("mpx_executor_create"));
  stale();
  rc = mpx_executor_create(MPI_COMM_NULL, NULL, &ex);
  MT_ASSERT_ALL(rc == MPX_EINVAL && names("mpx_executor_create") && !ex);
  mpx_executor_options o;
  mpx_executor_options_init(NULL); /* does nothing */
  mpx_executor_options_init(&o);
  o.root = mt_size();
  stale();
  rc = mpx_executor_create(MPI_COMM_WORLD, &o, &ex);
  MT_ASSERT_ALL(rc == MPX_EINVAL && names("mpx_executor_create") && !ex);
  /* The root's bad option (the root's options hold everywhere) fails
   * every rank, each naming the call. */
  mpx_executor_options_init(&o);
  if (mt_is_root())
    o.prefetch = 0;
  stale();
  rc = mpx_executor_create(MPI_COMM_WORLD, &o, &ex);
  MT_ASSERT_ALL(rc == MPX_EINVAL && names("mpx_executor_create") && !ex);
  /* The stale message does not leak into a later success either. */
  int ok = 1;
  ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  mt_pool_end(&ex, ok);
}

/* ---- a live pool -------------------------------------------------------- */

static void check_submit(mpx_executor *ex) {
  mpx_future *f = (mpx_future *)1;
  int x = 1;
  MT_ASSERT(mpx_executor_workers(NULL) == 0);
  EXPECT(mpx_register("late", task_echo), MPX_EBUSY, "mpx_register");
  EXPECT(mpx_unregister_all(), MPX_EBUSY, "mpx_unregister_all");
  EXPECT(mpx_submit(NULL, "echo", &x, sizeof x, &f), MPX_EINVAL, "mpx_submit");
  MT_ASSERT(f == NULL);
  EXPECT(mpx_submit(ex, NULL, &x, sizeof x, &f), MPX_EINVAL, "mpx_submit");
  EXPECT(mpx_submit(ex, "echo", NULL, 4, &f), MPX_EINVAL, "mpx_submit");
  EXPECT(mpx_submit(ex, "echo", &x, sizeof x, NULL), MPX_EINVAL, "mpx_submit");
  EXPECT(mpx_submit(ex, "nosuch", &x, sizeof x, &f), MPX_ENOTASK, "mpx_submit");
  EXPECT(mpx_executor_destroy(&ex), MPX_EBUSY, "mpx_executor_destroy");
  MT_ASSERT(ex != NULL);
  EXPECT(mpx_executor_shutdown(NULL, 1, 0), MPX_EINVAL,
         "mpx_executor_shutdown");
}

static void check_futures(mpx_executor *ex) {
  mpx_future *f = NULL;
  const void *d = NULL;
  void *t = NULL;
  size_t len = 0;
  int x = 5;
  /* A failed task: its message reaches mpx_last_error(). */
  MT_ASSERT(mpx_submit(ex, "boom", &x, sizeof x, &f) == 0);
  EXPECT(mpx_future_exception(f, MPX_FOREVER), MPX_ETASK,
         "mpx_future_exception");
  MT_ASSERT(mt_contains(mpx_last_error(), "boom 7"));
  EXPECT(mpx_future_result(f, MPX_FOREVER, &d, &len), MPX_ETASK,
         "mpx_future_result");
  MT_ASSERT(d == NULL && len == 0);
  mpx_future_destroy(&f);
  /* The task-side calls fail as documented inside a real task. */
  MT_ASSERT(mpx_submit(ex, "inside", NULL, 0, &f) == 0);
  int rc = mpx_future_result(f, MPX_FOREVER, &d, &len);
  if (rc != 0 && mt_is_root())
    fprintf(stderr, "\n  inside: %s\n", mpx_last_error());
  MT_ASSERT(rc == 0 && len == 3 && d && strcmp(d, "ok") == 0);
  mpx_future_destroy(&f);
  /* After a take: result and take fail, wait and exception still say
   * the future succeeded. */
  MT_ASSERT(mpx_submit(ex, "echo", &x, sizeof x, &f) == 0);
  MT_ASSERT(mpx_future_take(f, MPX_FOREVER, &t, &len) == 0);
  MT_ASSERT(t && len == sizeof x && memcmp(t, &x, sizeof x) == 0);
  mpx_free(t);
  d = &d;
  EXPECT(mpx_future_result(f, 0, &d, &len), MPX_EINVAL, "mpx_future_result");
  MT_ASSERT(mt_contains(mpx_last_error(), "taken by mpx_future_take"));
  MT_ASSERT(d == NULL && len == 0);
  EXPECT(mpx_future_take(f, 0, &t, &len), MPX_EINVAL, "mpx_future_take");
  MT_ASSERT(t == NULL && len == 0);
  MT_ASSERT(mpx_future_exception(f, 0) == 0);
  MT_ASSERT(mpx_future_wait(f, 0) == 0);
  MT_ASSERT(mpx_future_worker(f) >= 0 && mpx_future_id(f) > 0);
  EXPECT(mpx_future_cancel(f), MPX_EBUSY, "mpx_future_cancel");
  mpx_future_destroy(&f);
}

static void check_maps(mpx_executor *ex) {
  mpx_map *m = (mpx_map *)1;
  mpx_map_item it;
  uint64_t sub = 9, yld = 9;
  EXPECT(mpx_map_create(NULL, "echo", NULL, NULL, 0, NULL, &m), MPX_EINVAL,
         "mpx_map_create");
  MT_ASSERT(m == NULL);
  EXPECT(mpx_map_create(ex, "echo", NULL, NULL, 3, NULL, &m), MPX_EINVAL,
         "mpx_map_create");
  EXPECT(mpx_map_create(ex, "nosuch", NULL, NULL, 0, NULL, &m), MPX_ENOTASK,
         "mpx_map_create");
  mpx_map_options o;
  mpx_map_options_init(NULL); /* does nothing */
  mpx_map_options_init(&o);
  o.chunksize = 0;
  EXPECT(mpx_map_create_range(ex, "echo", 0, 10, 2, &o, &m), MPX_EINVAL,
         "mpx_map_create_range");
  EXPECT(mpx_map_create_range(ex, "echo", 5, 1, 2, NULL, &m), MPX_EINVAL,
         "mpx_map_create_range");
  EXPECT(mpx_map_create_range(ex, "nosuch", 0, 10, 2, NULL, &m), MPX_ENOTASK,
         "mpx_map_create_range");
  EXPECT(mpx_map_create_producer(ex, "echo", NULL, NULL, 1, NULL, &m),
         MPX_EINVAL, "mpx_map_create_producer");
  EXPECT(mpx_map_create_producer(NULL, "echo", fail_at_3, NULL, 1, NULL, &m),
         MPX_EINVAL, "mpx_map_create_producer");
  EXPECT(mpx_map_next(NULL, 0, &it), MPX_EINVAL, "mpx_map_next");
  EXPECT(mpx_map_cancel(NULL), MPX_EINVAL, "mpx_map_cancel");
  mpx_map_counts(NULL, &sub, &yld);
  MT_ASSERT(sub == 0 && yld == 0);
  mpx_map_destroy(NULL);
  /* A producer that fails: its error comes once every submitted input was
   * yielded, with its own message even though other calls failed since. */
  m = NULL;
  MT_ASSERT(mpx_map_create_producer(ex, "echo", fail_at_3, NULL,
                                    MPX_MAP_UNKNOWN, NULL, &m) == 0);
  if (!m)
    return;
  int rc, n = 0;
  do {
    stale();
    rc = mpx_map_next(m, MPX_FOREVER, &it);
    n += rc == 0;
  } while (rc == 0);
  MT_ASSERT(n == 3);
  MT_ASSERT(rc == MPX_EIO);
  MT_ASSERT(names("mpx_map_next"));
  MT_ASSERT(mt_contains(mpx_last_error(), "input 3"));
  EXPECT(mpx_map_next(m, 0, &it), MPX_EOF, "mpx_map_next");
  mpx_map_destroy(&m);
}

static void check_jobs(mpx_executor *ex) {
  EXPECT(
      mpx_job_run(NULL, "echo", fail_at_3, NULL, 3, NULL, "x.h5", NULL, NULL),
      MPX_EINVAL, "mpx_job_run");
  EXPECT(
      mpx_job_run(ex, "nosuch", fail_at_3, NULL, 3, NULL, "x.h5", NULL, NULL),
      MPX_ENOTASK, "mpx_job_run");
  mpx_job_options_init(NULL); /* does nothing */
}

static void check_after_shutdown(mpx_executor *ex) {
  MT_ASSERT(mpx_executor_shutdown(ex, 1, 0) == 0);
  mpx_future *f = (mpx_future *)1;
  mpx_map *m = (mpx_map *)1;
  int x = 1;
  const void *args[1] = {&x};
  size_t lens[1] = {sizeof x};
  EXPECT(mpx_submit(ex, "echo", &x, sizeof x, &f), MPX_ESHUTDOWN, "mpx_submit");
  MT_ASSERT(f == NULL);
  EXPECT(mpx_map_create(ex, "echo", args, lens, 1, NULL, &m), MPX_ESHUTDOWN,
         "mpx_map_create");
  MT_ASSERT(m == NULL);
  EXPECT(mpx_map_create_range(ex, "echo", 0, 4, 2, NULL, &m), MPX_ESHUTDOWN,
         "mpx_map_create_range");
  MT_ASSERT(m == NULL);
}

static void test_pool_errors(void) {
  int ok = 1;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    check_submit(ex);
    check_futures(ex);
    check_maps(ex);
    check_jobs(ex);
    check_after_shutdown(ex);
  }
  mt_pool_end(&ex, ok);
}

static const mt_test api_tests[] = {
    {"executor creation errors", test_create_errors},
    {"errors of a live pool and after shutdown", test_pool_errors},
    {NULL, NULL}};

static const mt_suite suites[] = {{"api errors", api_tests}, {NULL, NULL}};

int main(int argc, char **argv) {
  mt_init(&argc, &argv);
  register_rc |= mpx_register("echo", task_echo);
  register_rc |= mpx_register("boom", task_boom);
  register_rc |= mpx_register("inside", task_inside);
  return mt_run(suites, 120);
}
