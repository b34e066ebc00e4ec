/*
 * test_stress.c -- 100,000 tiny tasks with random cancels, and several
 * submitting threads at once.
 *
 * About 30% of the futures get a cancel (seeded, so runs repeat): half
 * right after their submission, half later at random while the pool works
 * and while an as_completed iterator drains everything. Every future must
 * be accounted for exactly once: FINISHED with the right result or
 * CANCELLED with MPX_ECANCELED (never both, and a cancel that returned 0
 * means CANCELLED, one that returned MPX_EBUSY means FINISHED), its
 * done-callback must have run exactly once (the callback total equals the
 * number of tasks), and the iterator must yield each future exactly once.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpx_test_mpi.h"

enum { NTASKS = 100000 };

static int register_rc;

static int task_inc(mpx_task_ctx *ctx, const void *arg, size_t len) {
  if (len != sizeof(uint32_t))
    return mpx_task_fail(ctx, "inc wants a uint32, got %zu bytes", len);
  uint32_t x;
  memcpy(&x, arg, sizeof x);
  x++;
  return mpx_task_return(ctx, &x, sizeof x);
}

/* ---- bookkeeping ------------------------------------------------------- */

typedef struct track {
  mpx_future *f;
  uint64_t id;
  atomic_int calls;        /* done-callback runs */
  unsigned char cancelled; /* a cancel returned 0 */
  unsigned char busy;      /* a cancel returned MPX_EBUSY */
  unsigned char other;     /* a cancel returned anything else */
  unsigned char yielded;   /* times as_completed yielded it */
} track;

static atomic_int total_calls;

static void done_cb(mpx_future *f, void *arg) {
  track *t = arg;
  if (t->f == f || t->f == NULL)
    atomic_fetch_add(&t->calls, 1);
  else
    atomic_fetch_add(&t->calls, 1000); /* called with the wrong future */
  atomic_fetch_add(&total_calls, 1);
}

static void cancel_one(track *t) {
  int rc = mpx_future_cancel(t->f);
  if (rc == 0)
    t->cancelled = 1;
  else if (rc == MPX_EBUSY)
    t->busy = 1;
  else
    t->other = 1;
}

/* Finds the track of future f by its id (ids grow in submission order). */
static track *find(track *tr, size_t n, mpx_future *f) {
  uint64_t id = mpx_future_id(f);
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (tr[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && tr[lo].f == f ? &tr[lo] : NULL;
}

/* ---- tests ------------------------------------------------------------- */

static void test_register(void) {
  MT_ASSERT_ALL(register_rc == 0);
}

static void test_100k(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    double t0 = mt_now();
    track *tr = calloc(NTASKS, sizeof *tr);
    mpx_future **fs = calloc(NTASKS, sizeof *fs);
    MT_ASSERT(tr && fs);
    uint64_t rng = 0x5eed5eed12345ULL;
    atomic_store(&total_calls, 0);
    int sub = tr && fs, ids_up = 1, cb_rc = 0;
    size_t n = 0;
    for (; sub && n < NTASKS; n++) {
      uint32_t x = (uint32_t)n;
      track *t = &tr[n];
      sub &= mpx_submit(ex, "inc", &x, sizeof x, &t->f) == 0;
      if (!sub)
        break;
      fs[n] = t->f;
      t->id = mpx_future_id(t->f);
      ids_up &= n == 0 || t->id > tr[n - 1].id;
      cb_rc |= mpx_future_add_done_callback(t->f, done_cb, t);
      /* 15% right after submission */
      if (mt_rand(&rng) % 100 < 15)
        cancel_one(t);
      /* and now and then a burst at random earlier ones, some running */
      if (n % 1000 == 999)
        for (int k = 0; k < 150; k++)
          cancel_one(&tr[mt_rand(&rng) % (n + 1)]);
    }
    MT_ASSERT(sub && n == NTASKS);
    MT_ASSERT(ids_up);
    MT_ASSERT(cb_rc == 0);
    double t_sub = mt_now() - t0;

    /* drain with as_completed while cancelling more at random */
    mpx_as_completed *it = NULL;
    MT_ASSERT(mpx_as_completed_create(fs, n, MPX_FOREVER, &it) == 0);
    size_t yields = 0, unknown = 0;
    int rc = 0;
    mpx_future *y = NULL;
    while (it && yields <= n && (rc = mpx_as_completed_next(it, &y)) == 0) {
      track *t = find(tr, n, y);
      if (t)
        t->yielded++;
      else
        unknown++;
      if (++yields % 2000 == 0)
        for (int k = 0; k < 100; k++)
          cancel_one(&tr[mt_rand(&rng) % n]);
    }
    MT_ASSERT(rc == MPX_EOF);
    MT_ASSERT(yields == n);
    MT_ASSERT(unknown == 0);
    mpx_as_completed_destroy(&it);
    double t_drain = mt_now() - t0;

    size_t ndone = 0;
    MT_ASSERT(mpx_wait(fs, n, MPX_ALL_COMPLETED, MPX_FOREVER, NULL, &ndone) ==
              0);
    MT_ASSERT(ndone == n);
    /* callbacks may still be finishing on the manager thread */
    MT_ASSERT(mt_wait_count(&total_calls, (int)n, 30.0));

    size_t nfin = 0, ncan = 0, both = 0, neither = 0, wrong = 0, badcb = 0,
           badyield = 0, badcancel = 0, cancel_mismatch = 0;
    for (size_t i = 0; i < n; i++) {
      track *t = &tr[i];
      mpx_state st = mpx_future_state(t->f);
      int fin = st == MPX_FINISHED, can = st == MPX_CANCELLED;
      both += fin && can;
      neither += !fin && !can;
      badcancel += t->other;
      /* a cancel that won means cancelled; one that lost, finished */
      cancel_mismatch += (t->cancelled && !can) || (t->busy && !fin) ||
                         (t->cancelled && t->busy);
      if (fin) {
        nfin++;
        const void *d = NULL;
        size_t l = 0;
        uint32_t v = 0;
        if (mpx_future_result(t->f, 0, &d, &l) == 0 && l == 4)
          memcpy(&v, d, 4);
        wrong += !(l == 4 && v == (uint32_t)i + 1);
      } else if (can) {
        ncan++;
        wrong += mpx_future_exception(t->f, 0) != MPX_ECANCELED;
      }
      badcb += atomic_load(&t->calls) != 1;
      badyield += t->yielded != 1;
    }
    if (mt_is_root())
      printf("\n    %zu tasks: %zu finished, %zu cancelled; submitted in "
             "%.2f s, drained in %.2f s\n",
             n, nfin, ncan, t_sub, t_drain);
    MT_ASSERT(both == 0);
    MT_ASSERT(neither == 0);
    MT_ASSERT(nfin + ncan == n);
    MT_ASSERT(ncan > 0);
    MT_ASSERT(nfin > 0);
    MT_ASSERT(badcancel == 0);
    MT_ASSERT(cancel_mismatch == 0);
    MT_ASSERT(wrong == 0);
    MT_ASSERT(badcb == 0);
    MT_ASSERT(badyield == 0);
    MT_ASSERT(atomic_load(&total_calls) == (int)n);

    MT_ASSERT(mpx_executor_shutdown(ex, 1, 0) == 0);
    MT_ASSERT(mpx_executor_destroy(&ex) == 0);
    /* exactly once, also once the pool is gone */
    MT_ASSERT(atomic_load(&total_calls) == (int)n);
    for (size_t i = 0; i < n; i++)
      mpx_future_destroy(&tr[i].f);
    free(tr);
    free(fs);
  }
  mt_pool_end(&ex, ok);
}

/* Several threads of the root submit, cancel and wait at once. */
enum { NTHREADS = 4, PER_THREAD = 10000 };

typedef struct thr_arg {
  mpx_executor *ex;
  int index;
  int failures;
} thr_arg;

static void *submitter(void *p) {
  thr_arg *a = p;
  mpx_future **fs = calloc(PER_THREAD, sizeof *fs);
  int *crc = calloc(PER_THREAD, sizeof *crc);
  if (!fs || !crc) {
    a->failures++;
    free(fs);
    free(crc);
    return NULL;
  }
  uint64_t rng = 0xabcdef01ULL + (uint64_t)a->index;
  for (int i = 0; i < PER_THREAD; i++) {
    uint32_t x = (uint32_t)(a->index * PER_THREAD + i);
    crc[i] = 1; /* no cancel tried */
    if (mpx_submit(a->ex, "inc", &x, sizeof x, &fs[i]) != 0) {
      a->failures++;
      continue;
    }
    if (mt_rand(&rng) % 4 == 0)
      crc[i] = mpx_future_cancel(fs[i]);
  }
  if (mpx_wait(fs, PER_THREAD, MPX_ALL_COMPLETED, MPX_FOREVER, NULL, NULL) != 0)
    a->failures++;
  for (int i = 0; i < PER_THREAD; i++) {
    if (!fs[i])
      continue;
    mpx_state st = mpx_future_state(fs[i]);
    if (crc[i] == 0) {
      a->failures += st != MPX_CANCELLED;
    } else if (crc[i] == 1 || crc[i] == MPX_EBUSY) {
      const void *d = NULL;
      size_t l = 0;
      uint32_t v = 0;
      if (mpx_future_result(fs[i], 0, &d, &l) == 0 && l == 4)
        memcpy(&v, d, 4);
      a->failures +=
          st != MPX_FINISHED || v != (uint32_t)(a->index * PER_THREAD + i) + 1;
    } else {
      a->failures++;
    }
    mpx_future_destroy(&fs[i]);
  }
  free(fs);
  free(crc);
  return NULL;
}

static void test_threads(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    pthread_t th[NTHREADS];
    thr_arg args[NTHREADS];
    int started[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
      args[i] = (thr_arg){ex, i, 0};
      started[i] = pthread_create(&th[i], NULL, submitter, &args[i]) == 0;
      MT_ASSERT(started[i]);
    }
    int failures = 0;
    for (int i = 0; i < NTHREADS; i++) {
      if (started[i])
        pthread_join(th[i], NULL);
      failures += args[i].failures;
    }
    MT_ASSERT(failures == 0);
  }
  mt_pool_end(&ex, ok);
}

static const mt_test tests[] = {{"register", test_register},
                                {"100k_tasks", test_100k},
                                {"threads", test_threads},
                                {NULL, NULL}};

static const mt_suite suites[] = {{"stress", tests}, {NULL, NULL}};

int main(int argc, char **argv) {
  mt_init(&argc, &argv);
  register_rc = mpx_register("inc", task_inc);
  return mt_run(suites, 110);
}
