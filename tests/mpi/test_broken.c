/*
 * test_broken.c -- a pool that breaks (CPython's BrokenProcessPool).
 *
 * Every worker is started with MPX_TEST_FAULT=1, which makes it corrupt the
 * magic of its first result message. The root must not crash: the pool
 * breaks, every pending and running future finishes with MPX_EBROKEN and a
 * message naming the cause, callbacks still run exactly once, later submits
 * fail with MPX_EBROKEN, and shutdown and destroy release the workers so
 * that every rank returns. A second, healthy pool afterwards works, so the
 * breakage is confined to its pool. With one rank there is no message to
 * corrupt; that run checks the healthy pool only.
 */
#include <stdlib.h>
#include <string.h>

#include "mpx_test_mpi.h"

static int slow_echo(mpx_task_ctx *ctx, const void *arg, size_t len) {
  mt_sleep_ms(5);
  return mpx_task_return(ctx, arg, len);
}

static atomic_int callbacks;

static void count_cb(mpx_future *f, void *arg) {
  (void)f;
  (void)arg;
  atomic_fetch_add(&callbacks, 1);
}

#define NTASKS 40

static void test_corrupt_result_breaks_pool(void) {
  if (mt_size() == 1)
    return; /* no worker, no message to corrupt */
  if (mt_rank() != 0)
    setenv("MPX_TEST_FAULT", "1", 1);
  int ok = 1;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  unsetenv("MPX_TEST_FAULT");
  if (ex) {
    atomic_store(&callbacks, 0);
    mpx_future *fs[NTASKS];
    for (int i = 0; i < NTASKS; i++) {
      MT_ASSERT(mpx_submit(ex, "slow_echo", &i, sizeof i, &fs[i]) == 0);
      MT_ASSERT(mpx_future_add_done_callback(fs[i], count_cb, NULL) == 0);
    }
    MT_ASSERT(mpx_wait(fs, NTASKS, MPX_ALL_COMPLETED, 60.0, NULL, NULL) == 0);
    int broken = 0, fine = 0;
    for (int i = 0; i < NTASKS; i++) {
      int rc = mpx_future_exception(fs[i], 0);
      if (rc == MPX_EBROKEN) {
        broken++;
        const char *e = mpx_future_error(fs[i]);
        MT_ASSERT(mt_contains(e, "broken"));
        MT_ASSERT(mt_contains(e, "malformed"));
        const void *p = (const void *)1;
        size_t len = 1;
        MT_ASSERT(mpx_future_result(fs[i], 0, &p, &len) == MPX_EBROKEN);
        MT_ASSERT(p == NULL && len == 0);
      } else if (rc == 0) {
        fine++; /* results that arrived intact before the breakage */
      }
    }
    /* The first result message of every worker was corrupt, so at least
     * the futures it carried broke, and nothing was lost either way. */
    MT_ASSERT(broken >= 1);
    MT_ASSERT(broken + fine == NTASKS);
    MT_ASSERT(mt_wait_count(&callbacks, NTASKS, 10.0));
    mpx_future *g = (mpx_future *)1;
    int x = 7;
    MT_ASSERT(mpx_submit(ex, "slow_echo", &x, sizeof x, &g) == MPX_EBROKEN);
    MT_ASSERT(g == NULL);
    MT_ASSERT(mt_contains(mpx_last_error(), "broken"));
    for (int i = 0; i < NTASKS; i++)
      mpx_future_destroy(&fs[i]);
  }
  mt_pool_end(&ex, ok);
}

static void test_healthy_pool_after(void) {
  int ok = 1;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    int x = 42;
    mpx_future *f;
    MT_ASSERT(mpx_submit(ex, "slow_echo", &x, sizeof x, &f) == 0);
    const void *p;
    size_t len;
    MT_ASSERT(mpx_future_result(f, 30.0, &p, &len) == 0);
    MT_ASSERT(len == sizeof x && memcmp(p, &x, sizeof x) == 0);
    mpx_future_destroy(&f);
  }
  mt_pool_end(&ex, ok);
}

static const mt_test broken_tests[] = {
    {"corrupt result breaks the pool", test_corrupt_result_breaks_pool},
    {"a new pool works afterwards", test_healthy_pool_after},
    {NULL, NULL}};

static const mt_suite suites[] = {{"broken pool", broken_tests}, {NULL, NULL}};

int main(int argc, char **argv) {
  mt_init(&argc, &argv);
  mpx_register("slow_echo", slow_echo);
  return mt_run(suites, 120);
}
