/*
 * test_future.c -- the future state machine, results, callbacks, timeouts,
 * mpx_wait(), as_completed and reference counting, driven without MPI: the
 * test plays the executor's part by calling the *_locked transitions under
 * sync->mu and running the gathered callbacks, from helper threads where a
 * waiter must be woken.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "future.h"
#include "mpx.h"
#include "unit.h"

/* ---- helpers ---------------------------------------------------------- */

static mpx__sync *new_sync(void) {
  mpx__sync *s = NULL;
  CU_ASSERT_EQUAL_FATAL(mpx__sync_create(&s), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  return s;
}

static mpx_future *new_future(mpx__sync *s, uint64_t id) {
  mpx_future *f = NULL;
  CU_ASSERT_EQUAL_FATAL(mpx__future_create(s, id, 0, NULL, 0, &f), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  return f;
}

/* Drops both references of a future made by new_future(): the executor's
 * (mpx__future_unref) and the user's (mpx_future_destroy). */
static void drop(mpx_future *f) {
  mpx__future_unref(f);
  mpx_future_destroy(&f);
  CU_ASSERT_PTR_NULL(f);
}

/* The executor's part: finishes f with a malloc'd copy of res (when res is
 * not NULL) and a strdup of err, then runs the callbacks outside the lock.
 * Safe to call from any thread (no CUnit assertions). */
static void finish(mpx_future *f, int status, const void *res, size_t len,
                   const char *err) {
  void *r = NULL;
  if (res) {
    r = malloc(len ? len : 1);
    memcpy(r, res, len);
  }
  char *e = err ? strdup(err) : NULL;
  mpx__cbq q;
  memset(&q, 0, sizeof q);
  pthread_mutex_lock(&f->sync->mu);
  mpx__future_finish_locked(f, status, r, res ? len : 0, e, &q);
  pthread_mutex_unlock(&f->sync->mu);
  mpx__cbq_run(&q);
  mpx__cbq_free(&q);
}

static int set_running(mpx_future *f) {
  pthread_mutex_lock(&f->sync->mu);
  int rc = mpx__future_set_running_or_notify_cancel_locked(f);
  pthread_mutex_unlock(&f->sync->mu);
  return rc;
}

/* A callback recorder. */
typedef struct cbrec {
  int calls;
  mpx_future *seen;
  pthread_t thread;
  int state_seen;
  int done_seen;
  int exception_seen; /* mpx_future_exception(f, 0) from inside */
  int order;          /* global sequence number of the last call */
} cbrec;

static atomic_int cb_seq;

static void rec_cb(mpx_future *f, void *arg) {
  cbrec *r = arg;
  r->calls++;
  r->seen = f;
  r->thread = pthread_self();
  r->state_seen = (int)mpx_future_state(f);
  r->done_seen = mpx_future_done(f);
  /* Takes the sync lock: deadlocks if callbacks run under it. */
  r->exception_seen = mpx_future_exception(f, 0);
  r->order = atomic_fetch_add(&cb_seq, 1);
}

static int refs_of(const mpx_future *f) {
  return atomic_load(&((mpx_future *)f)->refs);
}
static int sync_refs(mpx__sync *s) {
  return atomic_load(&s->refs);
}

/* ---- creation and state machine -------------------------------------- */

static void test_create(void) {
  mpx__sync *s = new_sync();
  CU_ASSERT_EQUAL(sync_refs(s), 1);
  const char arg[] = "argument bytes";
  mpx_future *f = NULL;
  CU_ASSERT_EQUAL_FATAL(mpx__future_create(s, 42, 7, arg, sizeof arg, &f), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(refs_of(f), 2);   /* the caller's and the executor's */
  CU_ASSERT_EQUAL(sync_refs(s), 2); /* the owner plus one per future */
  CU_ASSERT_PTR_EQUAL(f->sync, s);
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_PENDING);
  CU_ASSERT_EQUAL(mpx_future_done(f), 0);
  CU_ASSERT_EQUAL(mpx_future_id(f), 42);
  CU_ASSERT_EQUAL(f->task_id, 7);
  CU_ASSERT_EQUAL(mpx_future_worker(f), -1);
  CU_ASSERT_PTR_NULL(mpx_future_error(f));
  /* The arguments are copied. */
  CU_ASSERT_EQUAL(f->arg_len, sizeof arg);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f->arg);
  CU_ASSERT_PTR_NOT_EQUAL(f->arg, arg);
  CU_ASSERT(memcmp(f->arg, arg, sizeof arg) == 0);
  /* Empty arguments. */
  mpx_future *g = NULL;
  CU_ASSERT_EQUAL_FATAL(mpx__future_create(s, 43, 0, NULL, 0, &g), 0);
  CU_ASSERT_EQUAL(g->arg_len, 0);
  CU_ASSERT_EQUAL(sync_refs(s), 3);
  /* Extra references. */
  mpx__future_ref(f);
  CU_ASSERT_EQUAL(refs_of(f), 3);
  mpx__future_unref(f);
  CU_ASSERT_EQUAL(refs_of(f), 2);
  drop(f);
  drop(g);
  CU_ASSERT_EQUAL(sync_refs(s), 1);
  mpx__sync_unref(s);
}

static void test_set_running(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  CU_ASSERT_EQUAL(set_running(f), 1);
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_RUNNING);
  CU_ASSERT_EQUAL(mpx_future_done(f), 0);
  /* A running future cannot be cancelled. */
  CU_ASSERT_EQUAL(mpx_future_cancel(f), MPX_EBUSY);
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_RUNNING);
  mpx__cbq q;
  memset(&q, 0, sizeof q);
  pthread_mutex_lock(&s->mu);
  CU_ASSERT_EQUAL(mpx__future_cancel_locked(f, &q), MPX_EBUSY);
  pthread_mutex_unlock(&s->mu);
  CU_ASSERT_EQUAL(q.n, 0);
  mpx__cbq_free(&q);
  f->worker = 3; /* what the manager records when it sends the future */
  CU_ASSERT_EQUAL(mpx_future_worker(f), 3);
  finish(f, 0, NULL, 0, NULL);
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_FINISHED);
  CU_ASSERT_EQUAL(mpx_future_done(f), 1);
  /* A finished future cannot be cancelled either. */
  CU_ASSERT_EQUAL(mpx_future_cancel(f), MPX_EBUSY);
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_FINISHED);
  CU_ASSERT_EQUAL(mpx_future_exception(f, 0), 0);
  drop(f);
  mpx__sync_unref(s);
}

static void test_cancel_pending(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  cbrec r1 = {0}, r2 = {0}, r3 = {0};
  CU_ASSERT_EQUAL(mpx_future_add_done_callback(f, rec_cb, &r1), 0);
  CU_ASSERT_EQUAL(mpx_future_add_done_callback(f, rec_cb, &r2), 0);
  CU_ASSERT_EQUAL(r1.calls, 0);
  CU_ASSERT_EQUAL(mpx_future_cancel(f), 0);
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_CANCELLED);
  CU_ASSERT_EQUAL(mpx_future_done(f), 1);
  /* The callbacks ran once, on this thread, with the future. */
  CU_ASSERT_EQUAL(r1.calls, 1);
  CU_ASSERT_EQUAL(r2.calls, 1);
  CU_ASSERT_PTR_EQUAL(r1.seen, f);
  CU_ASSERT_PTR_EQUAL(r2.seen, f);
  CU_ASSERT(pthread_equal(r1.thread, pthread_self()));
  CU_ASSERT_EQUAL(r1.state_seen, MPX_CANCELLED);
  CU_ASSERT_EQUAL(r1.done_seen, 1);
  CU_ASSERT_EQUAL(r1.exception_seen, MPX_ECANCELED);
  /* The outcome. */
  CU_ASSERT_EQUAL(mpx_future_exception(f, 0), MPX_ECANCELED);
  CU_ASSERT_EQUAL(mpx_future_wait(f, 0), 0);
  CU_ASSERT_EQUAL(mpx_future_wait(f, MPX_FOREVER), 0);
  const void *data = (const void *)&r1;
  size_t len = 99;
  CU_ASSERT_EQUAL(mpx_future_result(f, 0, &data, &len), MPX_ECANCELED);
  CU_ASSERT_PTR_NULL(data);
  CU_ASSERT_EQUAL(len, 0);
  void *taken = &r1;
  len = 99;
  CU_ASSERT_EQUAL(mpx_future_take(f, 0, &taken, &len), MPX_ECANCELED);
  CU_ASSERT_PTR_NULL(taken);
  CU_ASSERT_EQUAL(len, 0);
  /* Cancelling again is a no-op returning 0; callbacks do not rerun. */
  CU_ASSERT_EQUAL(mpx_future_cancel(f), 0);
  CU_ASSERT_EQUAL(r1.calls, 1);
  CU_ASSERT_EQUAL(r2.calls, 1);
  /* A cancelled future is never sent. */
  CU_ASSERT_EQUAL(set_running(f), 0);
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_CANCELLED);
  /* A callback added now runs at once. */
  CU_ASSERT_EQUAL(mpx_future_add_done_callback(f, rec_cb, &r3), 0);
  CU_ASSERT_EQUAL(r3.calls, 1);
  CU_ASSERT_PTR_EQUAL(r3.seen, f);
  CU_ASSERT_EQUAL(r1.calls, 1);
  /* Finishing a cancelled future (a late result) changes nothing; the
   * result and error are freed (ASan checks). */
  finish(f, 0, "late", 4, "late error");
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_CANCELLED);
  CU_ASSERT_EQUAL(mpx_future_exception(f, 0), MPX_ECANCELED);
  CU_ASSERT_PTR_NULL(mpx_future_error(f));
  CU_ASSERT_EQUAL(r1.calls + r2.calls + r3.calls, 3);
  drop(f);
  mpx__sync_unref(s);
}

static void test_cancel_locked(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  cbrec r = {0};
  CU_ASSERT_EQUAL(mpx_future_add_done_callback(f, rec_cb, &r), 0);
  mpx__cbq q;
  memset(&q, 0, sizeof q);
  pthread_mutex_lock(&s->mu);
  CU_ASSERT_EQUAL(mpx__future_cancel_locked(f, &q), 0);
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_CANCELLED);
  CU_ASSERT_EQUAL(mpx__future_cancel_locked(f, &q), 0); /* again */
  pthread_mutex_unlock(&s->mu);
  /* The callbacks wait in q until it runs. */
  CU_ASSERT_EQUAL(r.calls, 0);
  mpx__cbq_run(&q);
  CU_ASSERT_EQUAL(r.calls, 1);
  CU_ASSERT_EQUAL(r.exception_seen, MPX_ECANCELED);
  mpx__cbq_run(&q); /* emptied */
  CU_ASSERT_EQUAL(r.calls, 1);
  mpx__cbq_free(&q);
  drop(f);
  mpx__sync_unref(s);
}

/* ---- results and errors ---------------------------------------------- */

static void test_finish_with_result(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  CU_ASSERT_EQUAL(set_running(f), 1);
  static const char payload[] = "sixteen bytes!!";
  finish(f, 0, payload, sizeof payload, NULL);
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_FINISHED);
  CU_ASSERT_EQUAL(mpx_future_done(f), 1);
  CU_ASSERT_EQUAL(mpx_future_exception(f, 0), 0);
  CU_ASSERT_PTR_NULL(mpx_future_error(f));
  const void *data = NULL;
  size_t len = 0;
  CU_ASSERT_EQUAL(mpx_future_result(f, 0, &data, &len), 0);
  CU_ASSERT_EQUAL(len, sizeof payload);
  CU_ASSERT_PTR_NOT_NULL_FATAL(data);
  CU_ASSERT(memcmp(data, payload, sizeof payload) == 0);
  CU_ASSERT_EQUAL((uintptr_t)data % 8, 0);
  /* Lending twice gives the same bytes; either pointer may be NULL. */
  const void *data2 = NULL;
  CU_ASSERT_EQUAL(mpx_future_result(f, MPX_FOREVER, &data2, NULL), 0);
  CU_ASSERT_PTR_EQUAL(data2, data);
  len = 0;
  CU_ASSERT_EQUAL(mpx_future_result(f, 1.0, NULL, &len), 0);
  CU_ASSERT_EQUAL(len, sizeof payload);
  CU_ASSERT_EQUAL(mpx_future_result(f, 0, NULL, NULL), 0);
  /* Take hands it over. */
  void *taken = NULL;
  len = 0;
  CU_ASSERT_EQUAL(mpx_future_take(f, 0, &taken, &len), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(taken);
  CU_ASSERT_EQUAL(len, sizeof payload);
  CU_ASSERT(memcmp(taken, payload, sizeof payload) == 0);
  mpx_free(taken);
  /* A second take, and a lend after the take, fail with MPX_EINVAL and
   * an empty result; the outcome itself is still success. */
  taken = &len;
  len = 99;
  CU_ASSERT_EQUAL(mpx_future_take(f, 0, &taken, &len), MPX_EINVAL);
  CU_ASSERT_PTR_NULL(taken);
  CU_ASSERT_EQUAL(len, 0);
  data = &len;
  len = 99;
  CU_ASSERT_EQUAL(mpx_future_result(f, 0, &data, &len), MPX_EINVAL);
  CU_ASSERT_PTR_NULL(data);
  CU_ASSERT_EQUAL(len, 0);
  CU_ASSERT_EQUAL(mpx_future_exception(f, 0), 0);
  CU_ASSERT_EQUAL(mpx_future_wait(f, 0), 0);
  mpx_free(NULL);
  drop(f);
  mpx__sync_unref(s);
}

static void test_finish_empty_result(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  CU_ASSERT_EQUAL(set_running(f), 1);
  finish(f, 0, NULL, 0, NULL);
  const void *data = &data;
  size_t len = 99;
  CU_ASSERT_EQUAL(mpx_future_result(f, 0, &data, &len), 0);
  CU_ASSERT_EQUAL(len, 0);
  void *taken = &len;
  CU_ASSERT_EQUAL(mpx_future_take(f, 0, &taken, &len), 0);
  CU_ASSERT_EQUAL(len, 0);
  mpx_free(taken);
  drop(f);
  mpx__sync_unref(s);
}

static void test_result_destroyed_untaken(void) {
  /* A result nobody takes is freed with the future (ASan leak check). */
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  CU_ASSERT_EQUAL(set_running(f), 1);
  finish(f, 0, "0123456789abcdef0123", 20, NULL);
  drop(f);
  mpx__sync_unref(s);
}

static void test_finish_with_error(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  CU_ASSERT_EQUAL(set_running(f), 1);
  const char *msg = "task 'fib' failed on rank 2 of 4 (host x): bad input 7";
  finish(f, MPX_ETASK, NULL, 0, msg);
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_FINISHED);
  CU_ASSERT_EQUAL(mpx_future_done(f), 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(mpx_future_error(f));
  CU_ASSERT_STRING_EQUAL(mpx_future_error(f), msg);
  CU_ASSERT_EQUAL(mpx_future_exception(f, 0), MPX_ETASK);
  CU_ASSERT_EQUAL(mpx_future_wait(f, 0), 0);
  const void *data = &data;
  size_t len = 99;
  CU_ASSERT_EQUAL(mpx_future_result(f, 0, &data, &len), MPX_ETASK);
  CU_ASSERT_PTR_NULL(data);
  CU_ASSERT_EQUAL(len, 0);
  void *taken = &len;
  len = 99;
  CU_ASSERT_EQUAL(mpx_future_take(f, MPX_FOREVER, &taken, &len), MPX_ETASK);
  CU_ASSERT_PTR_NULL(taken);
  CU_ASSERT_EQUAL(len, 0);
  drop(f);

  /* An error that also carries result bytes still reports the error; the
   * bytes are never lent and are freed with the future. */
  f = new_future(s, 2);
  CU_ASSERT_EQUAL(set_running(f), 1);
  finish(f, MPX_ETASK, "junk", 4, "failed");
  data = &data;
  len = 99;
  CU_ASSERT_EQUAL(mpx_future_result(f, 0, &data, &len), MPX_ETASK);
  CU_ASSERT_PTR_NULL(data);
  CU_ASSERT_EQUAL(len, 0);
  CU_ASSERT_STRING_EQUAL(mpx_future_error(f), "failed");
  drop(f);

  /* PENDING -> FINISHED: the pool broke before the future was sent. */
  f = new_future(s, 3);
  finish(f, MPX_EBROKEN, NULL, 0, "pool broken: rank 1 died");
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_FINISHED);
  CU_ASSERT_EQUAL(mpx_future_exception(f, 0), MPX_EBROKEN);
  CU_ASSERT_EQUAL(set_running(f), 0);
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_FINISHED);
  drop(f);
  mpx__sync_unref(s);
}

static void test_finish_twice_keeps_first(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  CU_ASSERT_EQUAL(set_running(f), 1);
  cbrec r = {0};
  CU_ASSERT_EQUAL(mpx_future_add_done_callback(f, rec_cb, &r), 0);
  finish(f, 0, "first", 5, NULL);
  CU_ASSERT_EQUAL(r.calls, 1);
  /* The second outcome is freed (ASan: no leak) and ignored. */
  finish(f, MPX_ETASK, "second result", 13, "second error");
  CU_ASSERT_EQUAL(r.calls, 1);
  CU_ASSERT_EQUAL(mpx_future_exception(f, 0), 0);
  CU_ASSERT_PTR_NULL(mpx_future_error(f));
  const void *data = NULL;
  size_t len = 0;
  CU_ASSERT_EQUAL(mpx_future_result(f, 0, &data, &len), 0);
  CU_ASSERT_EQUAL(len, 5);
  CU_ASSERT(data && memcmp(data, "first", 5) == 0);
  /* The same after a failure first. */
  mpx_future *g = new_future(s, 2);
  CU_ASSERT_EQUAL(set_running(g), 1);
  finish(g, MPX_ETASK, NULL, 0, "first error");
  finish(g, 0, "ok", 2, NULL);
  CU_ASSERT_EQUAL(mpx_future_exception(g, 0), MPX_ETASK);
  CU_ASSERT_STRING_EQUAL(mpx_future_error(g), "first error");
  drop(f);
  drop(g);
  mpx__sync_unref(s);
}

/* ---- callbacks -------------------------------------------------------- */

static void test_callbacks_run_once(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  CU_ASSERT_EQUAL(set_running(f), 1);
  enum { NCB = 5 };
  cbrec r[NCB];
  memset(r, 0, sizeof r);
  for (int i = 0; i < NCB; i++)
    CU_ASSERT_EQUAL(mpx_future_add_done_callback(f, rec_cb, &r[i]), 0);
  mpx__cbq q;
  memset(&q, 0, sizeof q);
  void *res = malloc(8);
  memcpy(res, "resultok", 8);
  pthread_mutex_lock(&s->mu);
  mpx__future_finish_locked(f, 0, res, 8, NULL, &q);
  pthread_mutex_unlock(&s->mu);
  /* Done, but the callbacks only run from the queue. */
  CU_ASSERT_EQUAL(mpx_future_done(f), 1);
  for (int i = 0; i < NCB; i++)
    CU_ASSERT_EQUAL(r[i].calls, 0);
  mpx__cbq_run(&q);
  for (int i = 0; i < NCB; i++) {
    CU_ASSERT_EQUAL(r[i].calls, 1);
    CU_ASSERT_PTR_EQUAL(r[i].seen, f);
    CU_ASSERT_EQUAL(r[i].state_seen, MPX_FINISHED);
    CU_ASSERT_EQUAL(r[i].exception_seen, 0);
  }
  mpx__cbq_run(&q);
  mpx__cbq_free(&q);
  for (int i = 0; i < NCB; i++)
    CU_ASSERT_EQUAL(r[i].calls, 1);
  /* Added after completion: runs at once, on this thread, before the call
   * returns; the earlier ones do not run again. */
  cbrec late = {0};
  CU_ASSERT_EQUAL(mpx_future_add_done_callback(f, rec_cb, &late), 0);
  CU_ASSERT_EQUAL(late.calls, 1);
  CU_ASSERT_PTR_EQUAL(late.seen, f);
  CU_ASSERT(pthread_equal(late.thread, pthread_self()));
  CU_ASSERT_EQUAL(late.exception_seen, 0);
  for (int i = 0; i < NCB; i++)
    CU_ASSERT_EQUAL(r[i].calls, 1);
  /* Bad arguments. */
  CU_ASSERT_EQUAL(mpx_future_add_done_callback(f, NULL, NULL), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx_future_add_done_callback(NULL, rec_cb, &late),
                  MPX_EINVAL);
  CU_ASSERT_EQUAL(late.calls, 1);
  drop(f);
  mpx__sync_unref(s);
}

static void test_callbacks_several_futures_one_queue(void) {
  mpx__sync *s = new_sync();
  enum { NF = 4 };
  mpx_future *f[NF];
  cbrec r[NF];
  memset(r, 0, sizeof r);
  for (int i = 0; i < NF; i++) {
    f[i] = new_future(s, (uint64_t)i);
    CU_ASSERT_EQUAL(set_running(f[i]), 1);
    CU_ASSERT_EQUAL(mpx_future_add_done_callback(f[i], rec_cb, &r[i]), 0);
  }
  mpx__cbq q;
  memset(&q, 0, sizeof q);
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < NF; i++)
    mpx__future_finish_locked(f[i], i == 2 ? MPX_ETASK : 0, NULL, 0,
                              i == 2 ? strdup("bad") : NULL, &q);
  pthread_mutex_unlock(&s->mu);
  mpx__cbq_run(&q);
  mpx__cbq_free(&q);
  for (int i = 0; i < NF; i++) {
    CU_ASSERT_EQUAL(r[i].calls, 1);
    CU_ASSERT_PTR_EQUAL(r[i].seen, f[i]);
    CU_ASSERT_EQUAL(r[i].exception_seen, i == 2 ? MPX_ETASK : 0);
  }
  for (int i = 0; i < NF; i++)
    drop(f[i]);
  mpx__sync_unref(s);
}

/* A callback that tries a blocking wait on another, unfinished future. */
typedef struct blocking_cb_arg {
  mpx_future *other;
  int rc;
  int calls;
} blocking_cb_arg;

static void blocking_cb(mpx_future *f, void *arg) {
  (void)f;
  blocking_cb_arg *a = arg;
  a->calls++;
  /* A finite timeout so that a library that does not detect this cannot
   * hang the test: it would return MPX_ETIMEDOUT instead. */
  a->rc = mpx_future_wait(a->other, 0.2);
}

static void test_callback_blocking_wait_deadlk(void) {
  /* mpx.h: "Blocking waits on unfinished futures from [a done-callback]
   * fail with MPX_EDEADLK". */
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  mpx_future *other = new_future(s, 2);
  blocking_cb_arg a = {other, 12345, 0};
  CU_ASSERT_EQUAL(mpx_future_add_done_callback(f, blocking_cb, &a), 0);
  CU_ASSERT_EQUAL(mpx_future_cancel(f), 0); /* runs it on this thread */
  CU_ASSERT_EQUAL(a.calls, 1);
  CU_ASSERT_EQUAL(a.rc, MPX_EDEADLK);
  /* Outside callbacks this thread may block again. */
  CU_ASSERT_EQUAL(mpx__future_no_block(), 0);
  CU_ASSERT_EQUAL(mpx_future_wait(other, 0.01), MPX_ETIMEDOUT);
  drop(f);
  drop(other);
  mpx__sync_unref(s);
}

/* The manager's part: a no-block thread finishing a future runs its
 * callbacks. */
typedef struct manager_arg {
  mpx_future *f;
  int no_block_seen;
} manager_arg;

static void *manager_main(void *p) {
  manager_arg *m = p;
  mpx__future_set_no_block(1);
  m->no_block_seen = mpx__future_no_block();
  set_running(m->f);
  finish(m->f, 0, NULL, 0, NULL);
  return NULL;
}

static void test_callback_on_manager_blocking_wait_deadlk(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  mpx_future *other = new_future(s, 2);
  blocking_cb_arg a = {other, 12345, 0};
  CU_ASSERT_EQUAL(mpx_future_add_done_callback(f, blocking_cb, &a), 0);
  manager_arg m = {f, 0};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, manager_main, &m), 0);
  pthread_join(th, NULL);
  CU_ASSERT(m.no_block_seen != 0);
  CU_ASSERT_EQUAL(a.calls, 1);
  CU_ASSERT_EQUAL(a.rc, MPX_EDEADLK);
  drop(f);
  drop(other);
  mpx__sync_unref(s);
}

/* ---- timeouts and no-block ------------------------------------------- */

static void test_timeouts(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  CU_ASSERT_EQUAL(mpx_future_wait(f, 0), MPX_ETIMEDOUT);
  CU_ASSERT_EQUAL(mpx_future_exception(f, 0), MPX_ETIMEDOUT);
  const void *data = &data;
  size_t len = 99;
  CU_ASSERT_EQUAL(mpx_future_result(f, 0, &data, &len), MPX_ETIMEDOUT);
  CU_ASSERT_PTR_NULL(data);
  CU_ASSERT_EQUAL(len, 0);
  void *taken = &len;
  len = 99;
  CU_ASSERT_EQUAL(mpx_future_take(f, 0, &taken, &len), MPX_ETIMEDOUT);
  CU_ASSERT_PTR_NULL(taken);
  CU_ASSERT_EQUAL(len, 0);

  double t0 = unit_now();
  CU_ASSERT_EQUAL(mpx_future_wait(f, 0.05), MPX_ETIMEDOUT);
  double el = unit_now() - t0;
  CU_ASSERT(el >= 0.04);
  CU_ASSERT(el < 2.0);

  t0 = unit_now();
  data = &data;
  len = 99;
  CU_ASSERT_EQUAL(mpx_future_result(f, 0.05, &data, &len), MPX_ETIMEDOUT);
  el = unit_now() - t0;
  CU_ASSERT(el >= 0.04);
  CU_ASSERT_PTR_NULL(data);
  CU_ASSERT_EQUAL(len, 0);

  /* Running but unfinished: the same. */
  CU_ASSERT_EQUAL(set_running(f), 1);
  t0 = unit_now();
  CU_ASSERT_EQUAL(mpx_future_exception(f, 0.05), MPX_ETIMEDOUT);
  CU_ASSERT(unit_now() - t0 >= 0.04);
  CU_ASSERT_EQUAL(mpx_future_wait(f, 0), MPX_ETIMEDOUT);

  /* Once finished, every timeout succeeds at once. */
  finish(f, 0, NULL, 0, NULL);
  CU_ASSERT_EQUAL(mpx_future_wait(f, 0), 0);
  CU_ASSERT_EQUAL(mpx_future_wait(f, 0.05), 0);
  CU_ASSERT_EQUAL(mpx_future_wait(f, MPX_FOREVER), 0);
  drop(f);
  mpx__sync_unref(s);
}

typedef struct flag_thr {
  int seen;
} flag_thr;

static void *no_block_probe(void *p) {
  ((flag_thr *)p)->seen = mpx__future_no_block();
  return NULL;
}

static void test_no_block(void) {
  mpx__sync *s = new_sync();
  mpx_future *pending = new_future(s, 1);
  mpx_future *done = new_future(s, 2);
  CU_ASSERT_EQUAL(set_running(done), 1);
  finish(done, 0, "x", 1, NULL);

  CU_ASSERT_EQUAL(mpx__future_no_block(), 0);
  mpx__future_set_no_block(1);
  CU_ASSERT(mpx__future_no_block() != 0);
  /* The mark is per thread. */
  flag_thr ft = {-1};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, no_block_probe, &ft), 0);
  pthread_join(th, NULL);
  CU_ASSERT_EQUAL(ft.seen, 0);

  CU_ASSERT_EQUAL(mpx_future_wait(pending, MPX_FOREVER), MPX_EDEADLK);
  CU_ASSERT_EQUAL(mpx_future_exception(pending, MPX_FOREVER), MPX_EDEADLK);
  const void *data = &data;
  size_t len = 99;
  CU_ASSERT_EQUAL(mpx_future_result(pending, MPX_FOREVER, &data, &len),
                  MPX_EDEADLK);
  CU_ASSERT_PTR_NULL(data);
  CU_ASSERT_EQUAL(len, 0);
  mpx_future *fs[2] = {pending, done};
  CU_ASSERT_EQUAL(mpx_wait(fs, 2, MPX_ALL_COMPLETED, MPX_FOREVER, NULL, NULL),
                  MPX_EDEADLK);
  /* Finished futures need no blocking. */
  CU_ASSERT_EQUAL(mpx_future_wait(done, MPX_FOREVER), 0);
  CU_ASSERT_EQUAL(mpx_future_exception(done, MPX_FOREVER), 0);
  data = NULL;
  CU_ASSERT_EQUAL(mpx_future_result(done, MPX_FOREVER, &data, &len), 0);
  CU_ASSERT_EQUAL(len, 1);
  CU_ASSERT_EQUAL(
      mpx_wait(&fs[1], 1, MPX_ALL_COMPLETED, MPX_FOREVER, NULL, NULL), 0);
  mpx__future_set_no_block(0);
  CU_ASSERT_EQUAL(mpx__future_no_block(), 0);
  CU_ASSERT_EQUAL(mpx_future_wait(pending, 0.01), MPX_ETIMEDOUT);
  drop(pending);
  drop(done);
  mpx__sync_unref(s);
}

/* ---- cross-thread wake-ups ------------------------------------------- */

typedef struct finisher {
  mpx_future **fs;
  int n;
  const int *order; /* indices into fs, in finishing order */
  unsigned delay_ms;
  int status;    /* status to finish with (MPX_ECANCELED: cancel instead) */
  int cancel_rc; /* out: last mpx_future_cancel result */
} finisher;

static void *finisher_main(void *p) {
  finisher *a = p;
  for (int i = 0; i < a->n; i++) {
    unit_sleep_ms(a->delay_ms);
    mpx_future *f = a->fs[a->order[i]];
    if (a->status == MPX_ECANCELED) {
      a->cancel_rc = mpx_future_cancel(f);
    } else {
      set_running(f);
      finish(f, a->status, "r", 1, a->status ? "error" : NULL);
    }
  }
  return NULL;
}

static void test_thread_wakes_wait_forever(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  static const int order[] = {0};
  finisher a = {&f, 1, order, 50, 0, 0};
  pthread_t th;
  double t0 = unit_now();
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, finisher_main, &a), 0);
  CU_ASSERT_EQUAL(mpx_future_wait(f, MPX_FOREVER), 0);
  double el = unit_now() - t0;
  CU_ASSERT_EQUAL(mpx_future_state(f), MPX_FINISHED);
  CU_ASSERT(el >= 0.03);
  pthread_join(th, NULL);
  drop(f);

  /* mpx_future_result(FOREVER) woken by a result. */
  f = new_future(s, 2);
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, finisher_main, &a), 0);
  const void *data = NULL;
  size_t len = 0;
  CU_ASSERT_EQUAL(mpx_future_result(f, MPX_FOREVER, &data, &len), 0);
  CU_ASSERT_EQUAL(len, 1);
  CU_ASSERT(data && memcmp(data, "r", 1) == 0);
  pthread_join(th, NULL);
  drop(f);

  /* A cancel from another thread wakes a waiter too. */
  f = new_future(s, 3);
  finisher c = {&f, 1, order, 50, MPX_ECANCELED, 1};
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, finisher_main, &c), 0);
  CU_ASSERT_EQUAL(mpx_future_exception(f, MPX_FOREVER), MPX_ECANCELED);
  pthread_join(th, NULL);
  CU_ASSERT_EQUAL(c.cancel_rc, 0);
  drop(f);

  /* A long finite timeout is cut short by the completion. */
  f = new_future(s, 4);
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, finisher_main, &a), 0);
  t0 = unit_now();
  CU_ASSERT_EQUAL(mpx_future_wait(f, 10.0), 0);
  CU_ASSERT(unit_now() - t0 < 5.0);
  pthread_join(th, NULL);
  drop(f);
  mpx__sync_unref(s);
}

static void test_thread_wakes_wait_all(void) {
  mpx__sync *s = new_sync();
  mpx_future *fs[3];
  for (int i = 0; i < 3; i++)
    fs[i] = new_future(s, (uint64_t)i);
  static const int order[] = {1, 2, 0};
  finisher a = {fs, 3, order, 20, 0, 0};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, finisher_main, &a), 0);
  unsigned char done[3] = {9, 9, 9};
  size_t ndone = 99;
  CU_ASSERT_EQUAL(mpx_wait(fs, 3, MPX_ALL_COMPLETED, MPX_FOREVER, done, &ndone),
                  0);
  CU_ASSERT_EQUAL(ndone, 3);
  CU_ASSERT(done[0] == 1 && done[1] == 1 && done[2] == 1);
  for (int i = 0; i < 3; i++)
    CU_ASSERT_EQUAL(mpx_future_state(fs[i]), MPX_FINISHED);
  pthread_join(th, NULL);
  for (int i = 0; i < 3; i++)
    drop(fs[i]);
  mpx__sync_unref(s);
}

static void test_thread_wakes_wait_first(void) {
  mpx__sync *s = new_sync();
  mpx_future *fs[3];
  for (int i = 0; i < 3; i++)
    fs[i] = new_future(s, (uint64_t)i);
  /* FIRST_COMPLETED: the helper finishes only fs[1]. */
  static const int one[] = {1};
  finisher a = {fs, 1, one, 30, 0, 0};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, finisher_main, &a), 0);
  unsigned char done[3] = {9, 9, 9};
  size_t ndone = 99;
  CU_ASSERT_EQUAL(
      mpx_wait(fs, 3, MPX_FIRST_COMPLETED, MPX_FOREVER, done, &ndone), 0);
  pthread_join(th, NULL);
  CU_ASSERT_EQUAL(ndone, 1);
  CU_ASSERT(done[0] == 0 && done[1] == 1 && done[2] == 0);

  /* FIRST_EXCEPTION: gs[0] has succeeded, then the helper fails gs[2];
   * gs[1] stays pending. */
  mpx_future *gs[3];
  for (int i = 0; i < 3; i++)
    gs[i] = new_future(s, (uint64_t)(10 + i));
  CU_ASSERT_EQUAL(set_running(gs[0]), 1);
  finish(gs[0], 0, NULL, 0, NULL);
  static const int fail_next[] = {2};
  finisher bad = {gs, 1, fail_next, 40, MPX_ETASK, 0};
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, finisher_main, &bad), 0);
  memset(done, 9, sizeof done);
  CU_ASSERT_EQUAL(
      mpx_wait(gs, 3, MPX_FIRST_EXCEPTION, MPX_FOREVER, done, &ndone), 0);
  pthread_join(th, NULL);
  CU_ASSERT_EQUAL(ndone, 2);
  CU_ASSERT(done[0] == 1 && done[1] == 0 && done[2] == 1);
  CU_ASSERT_EQUAL(mpx_future_exception(gs[2], 0), MPX_ETASK);
  for (int i = 0; i < 3; i++) {
    drop(fs[i]);
    drop(gs[i]);
  }
  mpx__sync_unref(s);
}

/* Several threads blocked on the same future are all woken. */
typedef struct waiter_thr {
  mpx_future **fs;
  size_t n;
  int use_wait; /* 0: mpx_future_wait(fs[0]), 1: mpx_wait(ALL_COMPLETED) */
  double timeout;
  int rc;
  double elapsed;
} waiter_thr;

static void *waiter_main(void *p) {
  waiter_thr *w = p;
  double t0 = unit_now();
  if (w->use_wait)
    w->rc = mpx_wait(w->fs, w->n, MPX_ALL_COMPLETED, w->timeout, NULL, NULL);
  else
    w->rc = mpx_future_wait(w->fs[0], w->timeout);
  w->elapsed = unit_now() - t0;
  return NULL;
}

static void test_many_waiters_one_future(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1), *g = new_future(s, 2);
  finish(g, 0, NULL, 0, NULL);
  mpx_future *fg[2] = {f, g};
  enum { NW = 6 };
  waiter_thr w[NW];
  pthread_t th[NW];
  for (int i = 0; i < NW; i++) {
    /* Mixed: waits with and without limits, and two that time out early
     * and must unlink themselves from f's waiter list. */
    w[i] = (waiter_thr){
        fg, 2, i % 2, i >= 4 ? 0.02 : (i ? 5.0 : MPX_FOREVER), 12345, 0};
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, waiter_main, &w[i]), 0);
  }
  /* The early ones time out on their own (f is not done), whatever the
   * load: join them before f finishes. */
  pthread_join(th[4], NULL);
  pthread_join(th[5], NULL);
  CU_ASSERT_EQUAL(set_running(f), 1);
  finish(f, 0, NULL, 0, NULL);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < 4; i++) {
    CU_ASSERT_EQUAL(w[i].rc, 0);
    CU_ASSERT(w[i].elapsed < 3.0);
  }
  CU_ASSERT_EQUAL(w[4].rc, MPX_ETIMEDOUT);
  CU_ASSERT_EQUAL(w[5].rc, MPX_ETIMEDOUT);
  drop(f);
  drop(g);
  mpx__sync_unref(s);
}

static void test_timed_out_waits_then_finish(void) {
  /* Waits that timed out leave nothing behind on the futures: finishing
   * them afterwards touches no dead waiter (ASan checks). */
  mpx__sync *s = new_sync();
  mpx_future *fs[3];
  for (int i = 0; i < 3; i++)
    fs[i] = new_future(s, (uint64_t)i);
  CU_ASSERT_EQUAL(mpx_future_wait(fs[0], 0.01), MPX_ETIMEDOUT);
  CU_ASSERT_EQUAL(mpx_wait(fs, 3, MPX_ALL_COMPLETED, 0.01, NULL, NULL),
                  MPX_ETIMEDOUT);
  CU_ASSERT_EQUAL(mpx_wait(fs, 3, MPX_FIRST_COMPLETED, 0.01, NULL, NULL),
                  MPX_ETIMEDOUT);
  mpx_future *dup[4] = {fs[1], fs[1], fs[2], fs[1]};
  CU_ASSERT_EQUAL(mpx_wait(dup, 4, MPX_FIRST_EXCEPTION, 0.01, NULL, NULL),
                  MPX_ETIMEDOUT);
  mpx_as_completed *it = NULL;
  CU_ASSERT_EQUAL_FATAL(mpx_as_completed_create(fs, 3, 0.01, &it), 0);
  mpx_future *got = NULL;
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got), MPX_ETIMEDOUT);
  mpx_as_completed_destroy(&it);
  /* An iterator destroyed before it yielded anything. */
  CU_ASSERT_EQUAL_FATAL(mpx_as_completed_create(fs, 3, MPX_FOREVER, &it), 0);
  mpx_as_completed_destroy(&it);
  for (int i = 0; i < 3; i++) {
    CU_ASSERT_EQUAL(set_running(fs[i]), 1);
    finish(fs[i], 0, NULL, 0, NULL);
  }
  /* Duplicates count once per occurrence in mpx_wait's ndone. */
  size_t ndone = 0;
  CU_ASSERT_EQUAL(mpx_wait(dup, 4, MPX_ALL_COMPLETED, 0, NULL, &ndone), 0);
  CU_ASSERT_EQUAL(ndone, 4);
  for (int i = 0; i < 3; i++)
    drop(fs[i]);
  mpx__sync_unref(s);
}

/* Finishes a future while the waiter is between its spin phase and its
 * sleep on the condition variable: the helper takes sync->mu while the
 * waiter spins (the waiter does not hold it then), keeps it until the spin
 * is over, so that the waiter queues on the mutex, then finishes. */
typedef struct sneaky {
  mpx_future *f;
  unsigned pre_ms, hold_ms;
} sneaky;

static void *sneaky_main(void *p) {
  sneaky *a = p;
  unit_sleep_ms(a->pre_ms);
  mpx__cbq q;
  memset(&q, 0, sizeof q);
  pthread_mutex_lock(&a->f->sync->mu);
  unit_sleep_ms(a->hold_ms);
  mpx__future_set_running_or_notify_cancel_locked(a->f);
  mpx__future_finish_locked(a->f, 0, NULL, 0, NULL, &q);
  pthread_mutex_unlock(&a->f->sync->mu);
  mpx__cbq_free(&q);
  return NULL;
}

static void test_wakeup_not_lost_after_spin(void) {
  mpx__sync *s = new_sync();
  /* A long spin makes the window wide and the test deterministic; an
   * implementation that does not spin passes trivially. */
  s->spin_us = 150000;
  for (int kind = 0; kind < 3; kind++) {
    mpx_future *f = new_future(s, (uint64_t)kind);
    sneaky a = {f, 40, 250};
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, sneaky_main, &a), 0);
    double t0 = unit_now();
    int rc;
    if (kind == 0) {
      rc = mpx_future_wait(f, 2.0);
    } else if (kind == 1) {
      rc = mpx_wait(&f, 1, MPX_ALL_COMPLETED, 2.0, NULL, NULL);
    } else {
      mpx_as_completed *it = NULL;
      mpx_future *got = NULL;
      CU_ASSERT_EQUAL_FATAL(mpx_as_completed_create(&f, 1, 2.0, &it), 0);
      rc = mpx_as_completed_next(it, &got);
      mpx_as_completed_destroy(&it);
    }
    double el = unit_now() - t0;
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(rc, 0);
    /* Finished at ~0.29 s; a lost wake-up sleeps until the 2 s deadline. */
    CU_ASSERT(el < 1.0);
    if (el >= 1.0)
      printf("\n    kind %d: woken after %.3f s (finished at ~0.29 s) ", kind,
             el);
    drop(f);
  }
  mpx__sync_unref(s);
}

/* ---- mpx_wait modes (single thread) ---------------------------------- */

static void test_wait_modes(void) {
  mpx__sync *s = new_sync();
  mpx_future *fs[3];
  for (int i = 0; i < 3; i++)
    fs[i] = new_future(s, (uint64_t)i);
  unsigned char done[3];
  size_t ndone;

  /* Nothing done. */
  for (int mode = MPX_FIRST_COMPLETED; mode <= MPX_ALL_COMPLETED; mode++) {
    memset(done, 9, sizeof done);
    ndone = 99;
    CU_ASSERT_EQUAL(mpx_wait(fs, 3, (mpx_wait_mode)mode, 0, done, &ndone),
                    MPX_ETIMEDOUT);
    CU_ASSERT_EQUAL(ndone, 0);
    CU_ASSERT(done[0] == 0 && done[1] == 0 && done[2] == 0);
  }
  double t0 = unit_now();
  CU_ASSERT_EQUAL(mpx_wait(fs, 3, MPX_FIRST_COMPLETED, 0.05, NULL, NULL),
                  MPX_ETIMEDOUT);
  CU_ASSERT(unit_now() - t0 >= 0.04);

  /* fs[1] cancelled: completes FIRST_COMPLETED, not FIRST_EXCEPTION. */
  CU_ASSERT_EQUAL(mpx_future_cancel(fs[1]), 0);
  memset(done, 9, sizeof done);
  CU_ASSERT_EQUAL(mpx_wait(fs, 3, MPX_FIRST_COMPLETED, 0, done, &ndone), 0);
  CU_ASSERT_EQUAL(ndone, 1);
  CU_ASSERT(done[0] == 0 && done[1] == 1 && done[2] == 0);
  memset(done, 9, sizeof done);
  CU_ASSERT_EQUAL(mpx_wait(fs, 3, MPX_FIRST_EXCEPTION, 0, done, &ndone),
                  MPX_ETIMEDOUT);
  CU_ASSERT_EQUAL(ndone, 1);
  CU_ASSERT(done[0] == 0 && done[1] == 1 && done[2] == 0);
  CU_ASSERT_EQUAL(mpx_wait(fs, 3, MPX_ALL_COMPLETED, 0, done, &ndone),
                  MPX_ETIMEDOUT);
  CU_ASSERT_EQUAL(ndone, 1);

  /* fs[0] succeeds: still no exception. */
  CU_ASSERT_EQUAL(set_running(fs[0]), 1);
  finish(fs[0], 0, NULL, 0, NULL);
  CU_ASSERT_EQUAL(mpx_wait(fs, 3, MPX_FIRST_EXCEPTION, 0, done, &ndone),
                  MPX_ETIMEDOUT);
  CU_ASSERT_EQUAL(ndone, 2);
  CU_ASSERT(done[0] == 1 && done[1] == 1 && done[2] == 0);

  /* FIRST_EXCEPTION holds once every future is done, even with none
   * failed (Python's semantics). */
  mpx_future *two[2] = {fs[0], fs[1]};
  CU_ASSERT_EQUAL(mpx_wait(two, 2, MPX_FIRST_EXCEPTION, 0, done, &ndone), 0);
  CU_ASSERT_EQUAL(ndone, 2);

  /* fs[2] fails with MPX_ETASK: the exception condition holds. */
  CU_ASSERT_EQUAL(set_running(fs[2]), 1);
  finish(fs[2], MPX_ETASK, NULL, 0, "boom");
  memset(done, 9, sizeof done);
  CU_ASSERT_EQUAL(mpx_wait(fs, 3, MPX_FIRST_EXCEPTION, 0, done, &ndone), 0);
  CU_ASSERT_EQUAL(ndone, 3);
  memset(done, 9, sizeof done);
  CU_ASSERT_EQUAL(mpx_wait(fs, 3, MPX_ALL_COMPLETED, MPX_FOREVER, done, &ndone),
                  0);
  CU_ASSERT_EQUAL(ndone, 3);
  CU_ASSERT(done[0] == 1 && done[1] == 1 && done[2] == 1);
  /* done and ndone may be NULL. */
  CU_ASSERT_EQUAL(mpx_wait(fs, 3, MPX_ALL_COMPLETED, 0, NULL, NULL), 0);

  for (int i = 0; i < 3; i++)
    drop(fs[i]);
  mpx__sync_unref(s);
}

static void test_wait_first_exception_with_pending(void) {
  /* A failed future satisfies FIRST_EXCEPTION while others are pending. */
  mpx__sync *s = new_sync();
  mpx_future *fs[3];
  for (int i = 0; i < 3; i++)
    fs[i] = new_future(s, (uint64_t)i);
  finish(fs[2], MPX_EBROKEN, NULL, 0, NULL); /* PENDING -> FINISHED */
  unsigned char done[3];
  size_t ndone = 99;
  memset(done, 9, sizeof done);
  CU_ASSERT_EQUAL(mpx_wait(fs, 3, MPX_FIRST_EXCEPTION, 0, done, &ndone), 0);
  CU_ASSERT_EQUAL(ndone, 1);
  CU_ASSERT(done[0] == 0 && done[1] == 0 && done[2] == 1);
  CU_ASSERT_EQUAL(mpx_wait(fs, 3, MPX_FIRST_EXCEPTION, MPX_FOREVER, NULL, NULL),
                  0);
  for (int i = 0; i < 3; i++)
    drop(fs[i]);
  mpx__sync_unref(s);
}

static void test_wait_edge_cases(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  mpx_future *fs[1] = {f};
  unsigned char done[1] = {9};
  /* n == 0 returns 0 at once, whatever the mode and timeout. */
  CU_ASSERT_EQUAL(mpx_wait(fs, 0, MPX_ALL_COMPLETED, MPX_FOREVER, done, NULL),
                  0);
  CU_ASSERT_EQUAL(mpx_wait(fs, 0, MPX_FIRST_COMPLETED, 0, NULL, NULL), 0);
  CU_ASSERT_EQUAL(
      mpx_wait(NULL, 0, MPX_FIRST_EXCEPTION, MPX_FOREVER, NULL, NULL), 0);
  /* Bad arguments. */
  CU_ASSERT_EQUAL(mpx_wait(NULL, 1, MPX_ALL_COMPLETED, 0, NULL, NULL),
                  MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx_wait(fs, 1, (mpx_wait_mode)7, 0, NULL, NULL), MPX_EINVAL);
  drop(f);
  mpx__sync_unref(s);
}

/* ---- as_completed ----------------------------------------------------- */

static void test_as_completed_order(void) {
  mpx__sync *s = new_sync();
  mpx_future *fs[3];
  for (int i = 0; i < 3; i++)
    fs[i] = new_future(s, (uint64_t)(i + 1));
  mpx_as_completed *it = NULL;
  CU_ASSERT_EQUAL_FATAL(mpx_as_completed_create(fs, 3, MPX_FOREVER, &it), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(it);
  /* Futures "3, 1, 2" (indices 2, 0, 1) finish 40 ms apart. */
  static const int order[] = {2, 0, 1};
  finisher a = {fs, 3, order, 40, 0, 0};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, finisher_main, &a), 0);
  mpx_future *got[3] = {NULL, NULL, NULL};
  for (int i = 0; i < 3; i++)
    CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got[i]), 0);
  pthread_join(th, NULL);
  CU_ASSERT_PTR_EQUAL(got[0], fs[2]);
  CU_ASSERT_PTR_EQUAL(got[1], fs[0]);
  CU_ASSERT_PTR_EQUAL(got[2], fs[1]);
  mpx_future *x = NULL;
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &x), MPX_EOF);
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &x), MPX_EOF);
  mpx_as_completed_destroy(&it);
  CU_ASSERT_PTR_NULL(it);
  for (int i = 0; i < 3; i++)
    drop(fs[i]);
  mpx__sync_unref(s);
}

static void test_as_completed_done_first_and_duplicates(void) {
  mpx__sync *s = new_sync();
  mpx_future *a = new_future(s, 1), *b = new_future(s, 2),
             *c = new_future(s, 3);
  /* c is already done, and cancelled futures count as done. */
  CU_ASSERT_EQUAL(set_running(c), 1);
  finish(c, 0, NULL, 0, NULL);
  mpx_future *fs[6] = {a, b, c, a, c, b};
  mpx_as_completed *it = NULL;
  CU_ASSERT_EQUAL_FATAL(mpx_as_completed_create(fs, 6, MPX_FOREVER, &it), 0);
  mpx_future *got = NULL;
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got), 0);
  CU_ASSERT_PTR_EQUAL(got, c);
  /* Nothing else is done yet. */
  CU_ASSERT_EQUAL(mpx_future_cancel(b), 0);
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got), 0);
  CU_ASSERT_PTR_EQUAL(got, b);
  CU_ASSERT_EQUAL(set_running(a), 1);
  finish(a, MPX_ETASK, NULL, 0, "x");
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got), 0);
  CU_ASSERT_PTR_EQUAL(got, a);
  /* Each yielded once. */
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got), MPX_EOF);
  mpx_as_completed_destroy(&it);

  /* All done before creation: each yielded once, then EOF. */
  CU_ASSERT_EQUAL_FATAL(mpx_as_completed_create(fs, 6, 0, &it), 0);
  int seen_a = 0, seen_b = 0, seen_c = 0, n = 0, rc;
  while ((rc = mpx_as_completed_next(it, &got)) == 0 && n < 10) {
    n++;
    seen_a += got == a;
    seen_b += got == b;
    seen_c += got == c;
  }
  CU_ASSERT_EQUAL(rc, MPX_EOF);
  CU_ASSERT_EQUAL(n, 3);
  CU_ASSERT(seen_a == 1 && seen_b == 1 && seen_c == 1);
  mpx_as_completed_destroy(&it);

  /* An empty iterator is exhausted at once. */
  CU_ASSERT_EQUAL_FATAL(mpx_as_completed_create(fs, 0, MPX_FOREVER, &it), 0);
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got), MPX_EOF);
  mpx_as_completed_destroy(&it);
  drop(a);
  drop(b);
  drop(c);
  mpx__sync_unref(s);
}

static void test_as_completed_timeout(void) {
  mpx__sync *s = new_sync();
  mpx_future *done = new_future(s, 1), *slow = new_future(s, 2);
  CU_ASSERT_EQUAL(set_running(done), 1);
  finish(done, 0, NULL, 0, NULL);
  mpx_future *fs[2] = {slow, done};
  mpx_as_completed *it = NULL;
  double t0 = unit_now();
  CU_ASSERT_EQUAL_FATAL(mpx_as_completed_create(fs, 2, 0.05, &it), 0);
  mpx_future *got = NULL;
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got), 0);
  CU_ASSERT_PTR_EQUAL(got, done);
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got), MPX_ETIMEDOUT);
  double el = unit_now() - t0;
  CU_ASSERT(el >= 0.04);
  CU_ASSERT(el < 2.0);
  /* The deadline stays passed. */
  t0 = unit_now();
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got), MPX_ETIMEDOUT);
  CU_ASSERT(unit_now() - t0 < 0.5);
  /* ...unless a future finished meanwhile. */
  CU_ASSERT_EQUAL(set_running(slow), 1);
  finish(slow, 0, NULL, 0, NULL);
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got), 0);
  CU_ASSERT_PTR_EQUAL(got, slow);
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got), MPX_EOF);
  mpx_as_completed_destroy(&it);

  /* Timeout 0 polls: a pending future gives MPX_ETIMEDOUT at once. */
  mpx_future *p = new_future(s, 3);
  CU_ASSERT_EQUAL_FATAL(mpx_as_completed_create(&p, 1, 0, &it), 0);
  t0 = unit_now();
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got), MPX_ETIMEDOUT);
  CU_ASSERT(unit_now() - t0 < 0.5);
  mpx_as_completed_destroy(&it);
  drop(p);
  drop(done);
  drop(slow);
  mpx__sync_unref(s);
}

static void test_as_completed_args(void) {
  mpx_as_completed *it = NULL;
  CU_ASSERT_EQUAL(mpx_as_completed_create(NULL, 1, 0, &it), MPX_EINVAL);
  mpx_as_completed_destroy(NULL);
  it = NULL;
  mpx_as_completed_destroy(&it);
  CU_ASSERT_PTR_NULL(it);
}

static void test_as_completed_holds_refs(void) {
  /* The caller may destroy its futures while iterating. */
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  mpx_future *raw = f;
  mpx_as_completed *it = NULL;
  CU_ASSERT_EQUAL_FATAL(mpx_as_completed_create(&f, 1, MPX_FOREVER, &it), 0);
  CU_ASSERT(refs_of(raw) >= 3);
  mpx__future_unref(raw); /* the executor is done with it ... */
  mpx_future_destroy(&f); /* ... and so is the user */
  CU_ASSERT_PTR_NULL(f);
  CU_ASSERT(refs_of(raw) >= 1);
  CU_ASSERT_EQUAL(set_running(raw), 1);
  finish(raw, 0, "kept", 4, NULL);
  mpx_future *got = NULL;
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got), 0);
  CU_ASSERT_PTR_EQUAL(got, raw);
  CU_ASSERT_EQUAL(mpx_future_state(got), MPX_FINISHED);
  CU_ASSERT_EQUAL(mpx_as_completed_next(it, &got), MPX_EOF);
  mpx_as_completed_destroy(&it); /* frees the future (ASan checks) */
  CU_ASSERT_EQUAL(sync_refs(s), 1);
  mpx__sync_unref(s);
}

/* ---- reference counting ---------------------------------------------- */

static void test_destroy_null(void) {
  mpx_future_destroy(NULL);
  mpx_future *f = NULL;
  mpx_future_destroy(&f);
  CU_ASSERT_PTR_NULL(f);
}

static void test_refcount_user_then_executor(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  mpx_future *raw = f;
  cbrec r = {0};
  CU_ASSERT_EQUAL(mpx_future_add_done_callback(f, rec_cb, &r), 0);
  /* The user lets go of a running future... */
  CU_ASSERT_EQUAL(set_running(raw), 1);
  mpx_future_destroy(&f);
  CU_ASSERT_PTR_NULL(f);
  CU_ASSERT_EQUAL(refs_of(raw), 1);
  CU_ASSERT_EQUAL(sync_refs(s), 2);
  /* ...which stays valid for the executor, finishes and runs its
   * callbacks. */
  CU_ASSERT_EQUAL(mpx_future_state(raw), MPX_RUNNING);
  finish(raw, 0, "dropped result", 14, NULL);
  CU_ASSERT_EQUAL(r.calls, 1);
  CU_ASSERT_PTR_EQUAL(r.seen, raw);
  CU_ASSERT_EQUAL(mpx_future_state(raw), MPX_FINISHED);
  /* The last unref frees the future and its result (ASan checks) and
   * releases its sync reference. */
  mpx__future_unref(raw);
  CU_ASSERT_EQUAL(sync_refs(s), 1);
  mpx__sync_unref(s);
}

static void test_refcount_sync_outlives_owner(void) {
  /* The owner drops the sync first; the futures keep it alive. */
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  mpx_future *g = new_future(s, 2);
  CU_ASSERT_EQUAL(sync_refs(s), 3);
  mpx__sync_unref(s);
  CU_ASSERT_EQUAL(sync_refs(s), 2);
  /* The futures still work (they use s->mu and s->cv). */
  CU_ASSERT_EQUAL(set_running(f), 1);
  finish(f, 0, "x", 1, NULL);
  CU_ASSERT_EQUAL(mpx_future_wait(f, 0), 0);
  CU_ASSERT_EQUAL(mpx_future_cancel(g), 0);
  drop(f);
  CU_ASSERT_EQUAL(sync_refs(s), 1);
  /* The last future's last ref frees the sync (ASan: no leak, and no use
   * after free in the unref path). */
  drop(g);
}

static void test_refcount_extra_refs(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  mpx_future *raw = f;
  mpx__future_ref(raw);
  mpx__future_ref(raw);
  CU_ASSERT_EQUAL(refs_of(raw), 4);
  mpx_future_destroy(&f);
  mpx__future_unref(raw);
  CU_ASSERT_EQUAL(refs_of(raw), 2);
  CU_ASSERT_EQUAL(mpx_future_state(raw), MPX_PENDING);
  CU_ASSERT_EQUAL(mpx_future_cancel(raw), 0);
  mpx__future_unref(raw);
  CU_ASSERT_EQUAL(refs_of(raw), 1);
  mpx__future_unref(raw);
  CU_ASSERT_EQUAL(sync_refs(s), 1);
  mpx__sync_unref(s);
}

/* Reads a future's user pointer from its done-callback into *arg. */
static void record_data(mpx_future *f, void *arg) {
  *(void **)arg = mpx_future_data(f);
}

/* The Python idiom {submit(f, x): x for x in xs}: each future carries its
 * input, found again from as_completed without a search, readable from a
 * done-callback, and never freed by mpx (the inputs live on the stack). */
static void test_user_data(void) {
  mpx__sync *s = new_sync();
  int xs[3] = {10, 20, 30};
  mpx_future *fs[3];
  for (int i = 0; i < 3; i++) {
    fs[i] = new_future(s, (uint64_t)(i + 1));
    CU_ASSERT_PTR_NULL(mpx_future_data(fs[i]));
    CU_ASSERT_EQUAL(mpx_future_set_data(fs[i], &xs[2 - i]), 0);
    CU_ASSERT_EQUAL(mpx_future_set_data(fs[i], &xs[i]), 0); /* replaces */
  }
  void *seen = NULL;
  CU_ASSERT_EQUAL(mpx_future_add_done_callback(fs[1], record_data, &seen), 0);
  mpx_as_completed *it = NULL;
  CU_ASSERT_EQUAL_FATAL(mpx_as_completed_create(fs, 3, MPX_FOREVER, &it), 0);
  static const int order[] = {2, 0, 1};
  for (int i = 0; i < 3; i++) {
    CU_ASSERT_EQUAL(set_running(fs[order[i]]), 1);
    finish(fs[order[i]], 0, NULL, 0, NULL);
  }
  CU_ASSERT_PTR_EQUAL(seen, &xs[1]);
  for (int i = 0; i < 3; i++) {
    mpx_future *got = NULL;
    CU_ASSERT_EQUAL_FATAL(mpx_as_completed_next(it, &got), 0);
    const int *x = mpx_future_data(got);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(*x, xs[order[i]]);
  }
  mpx_as_completed_destroy(&it);
  /* The pointer may be cleared; it is the caller's throughout. */
  CU_ASSERT_EQUAL(mpx_future_set_data(fs[0], NULL), 0);
  CU_ASSERT_PTR_NULL(mpx_future_data(fs[0]));
  for (int i = 0; i < 3; i++)
    drop(fs[i]);
  CU_ASSERT_EQUAL(xs[0] + xs[1] + xs[2], 60);
  mpx__sync_unref(s);
}

/* The NULL rule: setting on NULL is MPX_EINVAL naming the call, reading
 * NULL gives NULL. */
static void test_user_data_null(void) {
  int x = 1;
  CU_ASSERT_EQUAL(mpx_future_set_data(NULL, &x), MPX_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "mpx_future_set_data"));
  CU_ASSERT_PTR_NULL(mpx_future_data(NULL));
}

static const unit_test state_tests[] = {{"create", test_create},
                                        {"set_running", test_set_running},
                                        {"cancel_pending", test_cancel_pending},
                                        {"cancel_locked", test_cancel_locked},
                                        {NULL, NULL}};

static const unit_test result_tests[] = {
    {"finish_with_result", test_finish_with_result},
    {"finish_empty_result", test_finish_empty_result},
    {"result_destroyed_untaken", test_result_destroyed_untaken},
    {"finish_with_error", test_finish_with_error},
    {"finish_twice_keeps_first", test_finish_twice_keeps_first},
    {NULL, NULL}};

static const unit_test callback_tests[] = {
    {"callbacks_run_once", test_callbacks_run_once},
    {"several_futures_one_queue", test_callbacks_several_futures_one_queue},
    {"blocking_wait_in_callback_deadlk", test_callback_blocking_wait_deadlk},
    {"blocking_wait_in_manager_callback_deadlk",
     test_callback_on_manager_blocking_wait_deadlk},
    {NULL, NULL}};

/* One timeout rule everywhere: only MPX_FOREVER waits without limit, any
 * other value <= 0 polls (a computed deadline - now below zero must not
 * block forever), NaN is refused naming the call. A call that blocked
 * here would hang the test until ctest's timeout. */
static void test_timeout_rule(void) {
  mpx__sync *s = new_sync();
  mpx_future *f = new_future(s, 1);
  const void *d;
  void *t;
  const double polls[] = {0.0, -0.0, -0.001, -1.5, -1e300};
  for (size_t i = 0; i < sizeof polls / sizeof *polls; i++) {
    double to = polls[i];
    CU_ASSERT_EQUAL(mpx_future_wait(f, to), MPX_ETIMEDOUT);
    CU_ASSERT_EQUAL(mpx_future_result(f, to, &d, NULL), MPX_ETIMEDOUT);
    CU_ASSERT_EQUAL(mpx_future_exception(f, to), MPX_ETIMEDOUT);
    CU_ASSERT_EQUAL(mpx_future_take(f, to, &t, NULL), MPX_ETIMEDOUT);
    CU_ASSERT_EQUAL(mpx_wait(&f, 1, MPX_ALL_COMPLETED, to, NULL, NULL),
                    MPX_ETIMEDOUT);
    mpx_as_completed *it = NULL;
    CU_ASSERT_EQUAL_FATAL(mpx_as_completed_create(&f, 1, to, &it), 0);
    mpx_future *next = NULL;
    CU_ASSERT_EQUAL(mpx_as_completed_next(it, &next), MPX_ETIMEDOUT);
    mpx_as_completed_destroy(&it);
  }
  double nan = __builtin_nan("");
  struct {
    int rc;
    const char *call;
  } got[6];
  got[0].rc = mpx_future_wait(f, nan);
  got[0].call = "mpx_future_wait";
  got[1].rc = mpx_future_result(f, nan, &d, NULL);
  got[1].call = "mpx_future_result";
  got[2].rc = mpx_future_exception(f, nan);
  got[2].call = "mpx_future_exception";
  got[3].rc = mpx_future_take(f, nan, &t, NULL);
  got[3].call = "mpx_future_take";
  got[4].rc = mpx_wait(&f, 1, MPX_FIRST_COMPLETED, nan, NULL, NULL);
  got[4].call = "mpx_wait";
  mpx_as_completed *it = NULL;
  got[5].rc = mpx_as_completed_create(&f, 1, nan, &it);
  got[5].call = "mpx_as_completed_create";
  for (int i = 0; i < 6; i++) {
    CU_ASSERT_EQUAL(got[i].rc, MPX_EINVAL);
  }
  CU_ASSERT_PTR_NULL(it);
  /* each call's own name in its message */
  CU_ASSERT_EQUAL(mpx_future_take(f, nan, &t, NULL), MPX_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "mpx_future_take"));
  CU_ASSERT_EQUAL(mpx_future_result(NULL, 0, &d, NULL), MPX_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "mpx_future_result"));
  CU_ASSERT_EQUAL(mpx_future_exception(NULL, 0), MPX_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "mpx_future_exception"));
  CU_ASSERT_EQUAL(mpx_future_take(NULL, 0, &t, NULL), MPX_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "mpx_future_take"));
  /* the getters' NULL rules */
  CU_ASSERT_EQUAL(mpx_future_state(NULL), MPX_NO_FUTURE);
  CU_ASSERT_EQUAL(mpx_future_done(NULL), 0);
  CU_ASSERT_PTR_NULL(mpx_future_error(NULL));
  /* a done future is no wait at all, whatever the timeout */
  finish(f, 0, "x", 1, NULL);
  CU_ASSERT_EQUAL(mpx_future_wait(f, -0.5), 0);
  CU_ASSERT_EQUAL(mpx_future_result(f, MPX_FOREVER, &d, NULL), 0);
  drop(f);
  mpx__sync_unref(s);
}

static const unit_test wait_tests[] = {
    {"timeout_rule", test_timeout_rule},
    {"timeouts", test_timeouts},
    {"no_block", test_no_block},
    {"thread_wakes_wait_forever", test_thread_wakes_wait_forever},
    {"thread_wakes_wait_all", test_thread_wakes_wait_all},
    {"thread_wakes_wait_first", test_thread_wakes_wait_first},
    {"many_waiters_one_future", test_many_waiters_one_future},
    {"timed_out_waits_then_finish", test_timed_out_waits_then_finish},
    {"wakeup_not_lost_after_spin", test_wakeup_not_lost_after_spin},
    {"wait_modes", test_wait_modes},
    {"wait_first_exception_with_pending",
     test_wait_first_exception_with_pending},
    {"wait_edge_cases", test_wait_edge_cases},
    {NULL, NULL}};

static const unit_test as_completed_tests[] = {
    {"order", test_as_completed_order},
    {"done_first_and_duplicates", test_as_completed_done_first_and_duplicates},
    {"timeout", test_as_completed_timeout},
    {"args", test_as_completed_args},
    {"holds_refs", test_as_completed_holds_refs},
    {"user_data", test_user_data},
    {"user_data_null", test_user_data_null},
    {NULL, NULL}};

static const unit_test refcount_tests[] = {
    {"destroy_null", test_destroy_null},
    {"user_then_executor", test_refcount_user_then_executor},
    {"sync_outlives_owner", test_refcount_sync_outlives_owner},
    {"extra_refs", test_refcount_extra_refs},
    {NULL, NULL}};

int main(void) {
  const unit_suite suites[] = {{"future_state", state_tests},
                               {"future_result", result_tests},
                               {"future_callbacks", callback_tests},
                               {"future_wait", wait_tests},
                               {"future_as_completed", as_completed_tests},
                               {"future_refcount", refcount_tests},
                               {NULL, NULL}};
  return unit_main(suites, 60);
}
