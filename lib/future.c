/*
 * future.c -- futures and the waiters behind mpx_wait() and as_completed.
 *
 * All state changes happen under the executor-wide sync->mu; readers of
 * the state alone use the atomic field. A waiter is registered on every
 * future it watches (CPython's _Waiter): completion bumps its counters and
 * queues the future, so a wait over n futures costs O(n) once, not per
 * wake-up. Blocking waits spin briefly on an epoch counter before sleeping
 * on the condition variable, because waking a sleeping thread costs tens of
 * microseconds, more than a whole task round trip.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "future.h"
#include "util.h"

static _Thread_local int no_block;

/* Bumped on every completion so that spinning waiters notice progress. */
static atomic_ulong completion_epoch;

void mpx__future_set_no_block(int on) {
  no_block = on;
}
int mpx__future_no_block(void) {
  return no_block;
}

/* Runs one callback with blocking waits refused, whatever thread this is:
 * a callback must never wait on a future that may need this very thread
 * (or the manager it would be holding up) to finish. */
static void run_cb(mpx_future *f, mpx_done_cb fn, void *arg) {
  int saved = no_block;
  no_block = 1;
  fn(f, arg);
  no_block = saved;
}

/* ---- sync ------------------------------------------------------------- */

int mpx__sync_create(mpx__sync **out) {
  mpx__sync *s = calloc(1, sizeof *s);
  if (!s)
    return mpx__fail(MPX_ENOMEM, "out of memory for an executor's lock");
  pthread_mutex_init(&s->mu, NULL);
  mpx__cond_init(&s->cv);
  atomic_init(&s->refs, 1);
  atomic_init(&s->idle_ns, 0);
  atomic_init(&s->calls_sent, 0);
  atomic_init(&s->call_tasks, 0);
  s->spin_us = (unsigned)mpx__env_long("MPX_SPIN_US", 50);
  *out = s;
  return 0;
}

void mpx__sync_set_progress(mpx__sync *s, long (*fn)(void *), void *arg) {
  pthread_mutex_lock(&s->mu);
  s->progress = fn;
  s->progress_arg = arg;
  pthread_mutex_unlock(&s->mu);
}

void mpx__sync_idle_add(mpx__sync *s, double seconds) {
  if (seconds > 0)
    atomic_fetch_add(&s->idle_ns, (unsigned long long)(seconds * 1e9));
}

void mpx__sync_ref(mpx__sync *s) {
  atomic_fetch_add(&s->refs, 1);
}

void mpx__sync_unref(mpx__sync *s) {
  if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
  }
}

/* ---- waiters ---------------------------------------------------------- */

struct mpx__waiter {
  size_t ndone, nexc; /* completions seen since registration */
  size_t need;        /* wake the waiter once ndone reaches this... */
  int on_exc;         /* ...or, if set, at the first exception */
  mpx_future **queue; /* completion order (as_completed), or NULL */
  size_t qhead, qtail;
  mpx__wlink *links; /* one per watched future */
};

/* Under the lock: tells every waiter of f that it completed. Only a waiter
 * whose condition now holds causes a wake-up, so a thread waiting for all
 * of 100,000 futures sleeps through the first 99,999. */
static void notify_waiters_locked(mpx_future *f) {
  int wake = 0;
  for (mpx__wlink *l = f->waiters; l; l = l->next) {
    mpx__waiter *w = l->w;
    w->ndone++;
    if (f->status != 0 && f->status != MPX_ECANCELED)
      w->nexc++;
    if (w->queue)
      w->queue[w->qtail++] = f;
    if (w->ndone >= w->need || (w->on_exc && w->nexc > 0))
      wake = 1;
  }
  f->waiters = NULL;
  if (wake) {
    atomic_fetch_add(&completion_epoch, 1);
    if (f->sync->nwaiters > 0)
      pthread_cond_broadcast(&f->sync->cv);
  }
}

/* Under the lock: removes waiter w from f's list (if still there). */
static void unlink_waiter_locked(mpx_future *f, mpx__waiter *w) {
  for (mpx__wlink **pp = &f->waiters; *pp; pp = &(*pp)->next) {
    if ((*pp)->w == w) {
      *pp = (*pp)->next;
      return;
    }
  }
}

/* ---- futures ---------------------------------------------------------- */

int mpx__future_create(mpx__sync *s, uint64_t id, uint32_t task_id,
                       const void *arg, size_t len, mpx_future **out) {
  void *copy = mpx__alloc(len);
  if (!copy)
    return mpx__fail(MPX_ENOMEM, "out of memory copying %zu bytes of arguments",
                     len);
  if (len)
    memcpy(copy, arg, len);
  return mpx__future_create_owned(s, id, task_id, copy, len, out);
}

int mpx__future_create_owned(mpx__sync *s, uint64_t id, uint32_t task_id,
                             void *arg, size_t len, mpx_future **out) {
  mpx_future *f = calloc(1, sizeof *f);
  if (!f) {
    free(arg);
    return mpx__fail(MPX_ENOMEM, "out of memory for a future");
  }
  f->arg = arg;
  f->arg_len = len;
  f->sync = s;
  mpx__sync_ref(s);
  atomic_init(&f->refs, 2);
  atomic_init(&f->state, MPX_PENDING);
  f->id = id;
  f->task_id = task_id;
  f->worker = -1;
  f->ran_on = -1;
  f->avoid = -1;
  f->limit_ms = -1;
  *out = f;
  return 0;
}

void mpx__future_ref(mpx_future *f) {
  atomic_fetch_add(&f->refs, 1);
}

void mpx__future_unref(mpx_future *f) {
  if (!f || atomic_fetch_sub(&f->refs, 1) != 1)
    return;
  for (mpx__cb *c = f->cbs, *n; c; c = n) {
    n = c->next;
    free(c);
  }
  free(f->arg);
  free(f->result);
  free(f->error);
  mpx__retry_free(f->rt);
  mpx__sync_unref(f->sync);
  free(f);
}

void mpx__retry_free(mpx__retry *rt) {
  if (!rt)
    return;
  for (uint64_t i = 0; rt->res && i < rt->n; i++)
    free(rt->res[i]);
  free(rt->st);
  free(rt->res);
  free(rt->rl);
  free(rt->map);
  free(rt);
}

int mpx__future_set_running_or_notify_cancel_locked(mpx_future *f) {
  if (atomic_load(&f->state) != MPX_PENDING)
    return 0;
  atomic_store(&f->state, MPX_RUNNING);
  return 1;
}

/* Moves f's callbacks into q, holding a reference until they have run. */
static int detach_callbacks_locked(mpx_future *f, mpx__cbq *q) {
  if (!f->cbs)
    return 0;
  if (mpx__grow(&q->v, &q->cap, q->n + 1, sizeof *q->v, 16) != 0)
    return MPX_ENOMEM;
  mpx__future_ref(f);
  q->v[q->n].f = f;
  q->v[q->n].cbs = f->cbs;
  q->n++;
  f->cbs = NULL;
  return 0;
}

/* Runs and frees a detached list of callbacks, in order. */
static void run_cb_list(mpx_future *f, mpx__cb *c) {
  for (mpx__cb *n; c; c = n) {
    n = c->next;
    run_cb(f, c->fn, c->arg);
    free(c);
  }
}

/* Under the lock: moves f's callbacks into q. Without memory for the queue
 * they still run exactly once, here and now with the lock released, rather
 * than be lost. */
static void hand_over_callbacks_locked(mpx_future *f, mpx__cbq *q) {
  if (detach_callbacks_locked(f, q) == 0)
    return;
  mpx__cb *c = f->cbs;
  f->cbs = NULL;
  pthread_mutex_unlock(&f->sync->mu);
  run_cb_list(f, c);
  pthread_mutex_lock(&f->sync->mu);
}

void mpx__future_finish_locked(mpx_future *f, int status, void *result,
                               size_t result_len, char *error, mpx__cbq *q) {
  int st = atomic_load(&f->state);
  if (st == MPX_FINISHED || st == MPX_CANCELLED) {
    free(result);
    free(error);
    return;
  }
  if (st == MPX_PENDING) {
    free(f->arg);
    f->arg = NULL;
  }
  f->status = status;
  f->result = result;
  f->result_len = result ? result_len : 0;
  f->error = error;
  atomic_store(&f->state, MPX_FINISHED);
  notify_waiters_locked(f);
  hand_over_callbacks_locked(f, q);
}

/* Moves a future that is not done to CANCELLED and notifies (lock held). */
static void become_cancelled_locked(mpx_future *f, mpx__cbq *q) {
  free(f->arg);
  f->arg = NULL;
  f->status = MPX_ECANCELED;
  atomic_store(&f->state, MPX_CANCELLED);
  notify_waiters_locked(f);
  hand_over_callbacks_locked(f, q);
}

int mpx__future_cancel_locked(mpx_future *f, mpx__cbq *q) {
  int st = atomic_load(&f->state);
  if (st == MPX_CANCELLED)
    return 0;
  if (st != MPX_PENDING)
    return MPX_EBUSY;
  become_cancelled_locked(f, q);
  return 0;
}

void mpx__future_cancel_sent_locked(mpx_future *f, mpx__cbq *q) {
  int st = atomic_load(&f->state);
  if (st != MPX_FINISHED && st != MPX_CANCELLED)
    become_cancelled_locked(f, q);
}

void mpx__cbq_run(mpx__cbq *q) {
  for (size_t i = 0; i < q->n; i++) {
    run_cb_list(q->v[i].f, q->v[i].cbs);
    mpx__future_unref(q->v[i].f);
  }
  q->n = 0;
}

void mpx__cbq_free(mpx__cbq *q) {
  mpx__cbq_run(q);
  free(q->v);
  q->v = NULL;
  q->cap = 0;
}

/* ---- waiting ---------------------------------------------------------- */

/* Absolute deadline for a relative timeout (-1: none), by the rule of
 * mpx__deadline. */
static double deadline_of(double timeout) {
  return mpx__deadline(timeout);
}

/* Under the lock: waits for a completion or the deadline, spinning briefly
 * first. Returns 0 after a wake-up (maybe spurious), MPX_ETIMEDOUT once the
 * deadline passed. */
static int block_locked(mpx__sync *s, double deadline) {
  double now = mpx__now();
  if (deadline >= 0 && now >= deadline)
    return MPX_ETIMEDOUT;
  if (s->progress) {
    /* Caller progress: this thread turns the pool, then waits as long as
     * the turn says (a completion by another thread's turn wakes it). */
    long (*fn)(void *) = s->progress;
    void *arg = s->progress_arg;
    pthread_mutex_unlock(&s->mu);
    long us = fn(arg);
    pthread_mutex_lock(&s->mu);
    if (us <= 0)
      return 0;
    s->nwaiters++;
    mpx__sync_idle_add(s, mpx__cond_sleep_locked(&s->cv, &s->mu, us, deadline));
    s->nwaiters--;
    return deadline >= 0 && mpx__now() >= deadline ? MPX_ETIMEDOUT : 0;
  }
  if (s->spin_us) {
    unsigned long e0 = atomic_load(&completion_epoch);
    pthread_mutex_unlock(&s->mu);
    double spin_end = now + 1e-6 * s->spin_us;
    if (deadline >= 0 && spin_end > deadline)
      spin_end = deadline;
    int changed = 0;
    for (unsigned i = 0;; i++) {
      if (atomic_load(&completion_epoch) != e0) {
        changed = 1;
        break;
      }
      if ((i & 63) == 63 && mpx__now() >= spin_end)
        break;
      mpx__cpu_relax();
    }
    pthread_mutex_lock(&s->mu);
    /* Completions bump the epoch under the lock, so one that landed after
     * the spin gave up shows here and must not be slept through. */
    if (changed || atomic_load(&completion_epoch) != e0)
      return 0;
  }
  s->nwaiters++;
  int rc;
  if (deadline < 0) {
    rc = pthread_cond_wait(&s->cv, &s->mu);
  } else {
    struct timespec ts = mpx__timespec(deadline);
    rc = pthread_cond_timedwait(&s->cv, &s->mu, &ts);
  }
  s->nwaiters--;
  if (rc == ETIMEDOUT)
    return mpx__now() >= deadline ? MPX_ETIMEDOUT : 0;
  return 0;
}

static int is_done_state(int st) {
  return st == MPX_FINISHED || st == MPX_CANCELLED;
}

/* Returns the future's state, MPX_NO_FUTURE for NULL. */
mpx_state mpx_future_state(const mpx_future *f) {
  if (!f)
    return MPX_NO_FUTURE;
  return (mpx_state)atomic_load(&((mpx_future *)f)->state);
}

/* Returns 1 when the future is finished or cancelled, 0 (also for NULL). */
int mpx_future_done(const mpx_future *f) {
  return f && is_done_state(atomic_load(&((mpx_future *)f)->state));
}

/* mpx_future_wait for the public call named call (its messages name it). */
static int wait_named(mpx_future *f, double timeout, const char *call) {
  if (!f)
    return mpx__fail(MPX_EINVAL, "%s: NULL future", call);
  int rc = mpx__timeout_nan(timeout, call);
  if (rc)
    return rc;
  if (is_done_state(atomic_load(&f->state)))
    return 0;
  if (mpx__timeout_polls(timeout))
    return mpx__fail(MPX_ETIMEDOUT, "%s: the future is not done yet", call);
  if (no_block)
    return mpx__fail(MPX_EDEADLK,
                     "%s: blocking on an unfinished future from the manager "
                     "thread (a done-callback, or a task of a one-rank "
                     "pool)",
                     call);
  double dl = deadline_of(timeout);
  mpx__sync *s = f->sync;
  pthread_mutex_lock(&s->mu);
  mpx__waiter w = {0};
  w.need = 1;
  mpx__wlink link = {&w, NULL};
  if (!is_done_state(atomic_load(&f->state))) {
    link.next = f->waiters;
    f->waiters = &link;
    while (w.ndone == 0 && rc == 0)
      rc = block_locked(s, dl);
    if (w.ndone == 0) {
      unlink_waiter_locked(f, &w);
    } else {
      rc = 0;
    }
  }
  pthread_mutex_unlock(&s->mu);
  if (rc == MPX_ETIMEDOUT)
    return mpx__fail(rc, "%s: the future is not done after %g s", call,
                     timeout);
  return rc;
}

/* Under the lock: the outcome of a done future for the public call named
 * call, with a message naming the call when it is a failure. */
static int outcome_locked(const mpx_future *f, const char *call) {
  if (f->status == 0)
    return 0;
  if (f->status == MPX_ECANCELED)
    return mpx__fail(MPX_ECANCELED, "%s: the future was cancelled", call);
  return mpx__fail(f->status, "%s: the future finished with %s: %s", call,
                   mpx_err_name(f->status),
                   f->error ? f->error : mpx_strerror(f->status));
}

/* Waits for the future to be done (its outcome is not a failure here). */
int mpx_future_wait(mpx_future *f, double timeout) {
  return wait_named(f, timeout, "mpx_future_wait");
}

/* Waits for the future and returns its outcome (Future.exception()). */
int mpx_future_exception(mpx_future *f, double timeout) {
  int rc = wait_named(f, timeout, "mpx_future_exception");
  if (rc)
    return rc;
  pthread_mutex_lock(&f->sync->mu);
  rc = outcome_locked(f, "mpx_future_exception");
  pthread_mutex_unlock(&f->sync->mu);
  return rc;
}

/* Waits for the future and lends its result; fails once it was taken. */
int mpx_future_result(mpx_future *f, double timeout, const void **data,
                      size_t *len) {
  if (data)
    *data = NULL;
  if (len)
    *len = 0;
  int rc = wait_named(f, timeout, "mpx_future_result");
  if (rc)
    return rc;
  pthread_mutex_lock(&f->sync->mu);
  rc = outcome_locked(f, "mpx_future_result");
  if (rc == 0 && f->taken)
    rc = mpx__fail(MPX_EINVAL, "mpx_future_result: the result was taken by "
                               "mpx_future_take");
  if (rc == 0) {
    if (data)
      *data = f->result;
    if (len)
      *len = f->result_len;
  }
  pthread_mutex_unlock(&f->sync->mu);
  return rc;
}

/* Waits for the future and hands its result over; fails once it was
 * taken. */
int mpx_future_take(mpx_future *f, double timeout, void **data, size_t *len) {
  if (data)
    *data = NULL;
  if (len)
    *len = 0;
  int rc = wait_named(f, timeout, "mpx_future_take");
  if (rc)
    return rc;
  pthread_mutex_lock(&f->sync->mu);
  rc = outcome_locked(f, "mpx_future_take");
  if (rc == 0 && f->taken)
    rc = mpx__fail(MPX_EINVAL, "mpx_future_take: the result was taken by an "
                               "earlier mpx_future_take");
  if (rc == 0) {
    if (data) {
      *data = f->result;
      f->result = NULL;
      f->taken = 1;
    }
    if (len)
      *len = f->result_len;
    if (data)
      f->result_len = 0;
  }
  pthread_mutex_unlock(&f->sync->mu);
  return rc;
}

/* Returns the failure message of a done future, or NULL. */
const char *mpx_future_error(const mpx_future *f) {
  if (!f || !is_done_state(atomic_load(&((mpx_future *)f)->state)))
    return NULL;
  return f->error;
}

/* Returns the rank that ran the future, -1 if none (or NULL). */
int mpx_future_worker(const mpx_future *f) {
  if (!f)
    return -1;
  pthread_mutex_lock(&f->sync->mu);
  int w = f->ran_on >= 0 ? f->ran_on : f->worker;
  pthread_mutex_unlock(&f->sync->mu);
  return w;
}

/* Returns the work id of the future, 0 for NULL. */
uint64_t mpx_future_id(const mpx_future *f) {
  return f ? f->id : 0;
}

/* Stores the user's pointer on f; atomic, so any thread may read it while
 * another sets it. Returns 0, or MPX_EINVAL for a NULL future. */
int mpx_future_set_data(mpx_future *f, void *data) {
  if (!f)
    return mpx__fail(MPX_EINVAL, "mpx_future_set_data: NULL future");
  atomic_store(&f->data, data);
  return 0;
}

/* Returns the user's pointer of f, or NULL (also for a NULL future). */
void *mpx_future_data(const mpx_future *f) {
  return f ? atomic_load(&((mpx_future *)f)->data) : NULL;
}

/* Adds a callback, or runs it now when the future is already done. */
int mpx_future_add_done_callback(mpx_future *f, mpx_done_cb cb, void *arg) {
  if (!f || !cb)
    return mpx__fail(MPX_EINVAL, "mpx_future_add_done_callback: NULL "
                                 "future or callback");
  mpx__cb *c = malloc(sizeof *c);
  if (!c)
    return mpx__fail(MPX_ENOMEM,
                     "mpx_future_add_done_callback: out of memory (the "
                     "callback will not run)");
  c->fn = cb;
  c->arg = arg;
  c->next = NULL;
  pthread_mutex_lock(&f->sync->mu);
  if (!is_done_state(atomic_load(&f->state))) {
    /* Append, so callbacks run in the order they were added. */
    mpx__cb **pp = &f->cbs;
    while (*pp)
      pp = &(*pp)->next;
    *pp = c;
    pthread_mutex_unlock(&f->sync->mu);
    return 0;
  }
  pthread_mutex_unlock(&f->sync->mu);
  run_cb(f, cb, arg);
  free(c);
  return 0;
}

/* Cancels a pending future. */
int mpx_future_cancel(mpx_future *f) {
  if (!f)
    return mpx__fail(MPX_EINVAL, "mpx_future_cancel: NULL future");
  mpx__cbq q = {0};
  pthread_mutex_lock(&f->sync->mu);
  int rc = mpx__future_cancel_locked(f, &q);
  int st = atomic_load(&f->state);
  pthread_mutex_unlock(&f->sync->mu);
  mpx__cbq_free(&q);
  if (rc)
    return mpx__fail(rc, "mpx_future_cancel: the future is %s",
                     st == MPX_RUNNING ? "running" : "finished");
  return rc;
}

/* Releases the caller's reference and clears *fp. */
void mpx_future_destroy(mpx_future **fp) {
  if (!fp || !*fp)
    return;
  mpx__future_unref(*fp);
  *fp = NULL;
}

/* Frees a taken result. */
void mpx_free(void *p) {
  free(p);
}

/* Checks that the n futures are non-NULL and share one sync. */
static int check_futures(mpx_future *const *fs, size_t n, const char *who) {
  if (n && !fs)
    return mpx__fail(MPX_EINVAL, "%s: NULL future array", who);
  for (size_t i = 0; i < n; i++) {
    if (!fs[i])
      return mpx__fail(MPX_EINVAL, "%s: future %zu is NULL", who, i);
    if (fs[i]->sync != fs[0]->sync)
      return mpx__fail(MPX_EINVAL, "%s: futures of different executors", who);
  }
  return 0;
}

/* Whether the wait condition of mode holds. */
static int wait_met(mpx_wait_mode mode, size_t n, size_t ndone, size_t nexc) {
  switch (mode) {
  case MPX_FIRST_COMPLETED:
    return ndone > 0;
  case MPX_FIRST_EXCEPTION:
    return nexc > 0 || ndone == n;
  default:
    return ndone == n;
  }
}

/* Waits for the condition of mode over n futures. */
int mpx_wait(mpx_future *const *fs, size_t n, mpx_wait_mode mode,
             double timeout, unsigned char *done, size_t *ndone) {
  if (ndone)
    *ndone = 0;
  int rc = check_futures(fs, n, "mpx_wait");
  if (rc == 0)
    rc = mpx__timeout_nan(timeout, "mpx_wait");
  if (rc)
    return rc;
  if (mode != MPX_FIRST_COMPLETED && mode != MPX_FIRST_EXCEPTION &&
      mode != MPX_ALL_COMPLETED)
    return mpx__fail(MPX_EINVAL, "mpx_wait: unknown mode %d", (int)mode);
  if (n == 0)
    return 0;
  double dl = deadline_of(timeout);
  mpx__sync *s = fs[0]->sync;
  mpx__waiter w = {0};
  pthread_mutex_lock(&s->mu);
  size_t nd = 0, ne = 0, nlinks = 0;
  for (size_t i = 0; i < n; i++) {
    if (is_done_state(atomic_load(&fs[i]->state))) {
      nd++;
      if (fs[i]->status != 0 && fs[i]->status != MPX_ECANCELED)
        ne++;
    }
  }
  if (!wait_met(mode, n, nd, ne)) {
    if (mpx__timeout_polls(timeout)) {
      rc = mpx__fail(MPX_ETIMEDOUT, "mpx_wait: the condition does not hold "
                                    "yet");
    } else if (no_block) {
      rc = mpx__fail(MPX_EDEADLK, "mpx_wait: blocking from a done-callback");
    } else {
      w.need = mode == MPX_FIRST_COMPLETED ? 1 : n - nd;
      w.on_exc = mode == MPX_FIRST_EXCEPTION;
      w.links = calloc(n - nd, sizeof *w.links);
      if (!w.links) {
        rc = mpx__fail(MPX_ENOMEM,
                       "mpx_wait: out of memory for %zu waiter "
                       "links",
                       n - nd);
      } else {
        for (size_t i = 0; i < n; i++) {
          if (!is_done_state(atomic_load(&fs[i]->state))) {
            mpx__wlink *l = &w.links[nlinks++];
            l->w = &w;
            l->next = fs[i]->waiters;
            fs[i]->waiters = l;
          }
        }
        /* One link per occurrence, so a future listed twice counts twice
         * in ndone, as it does in n. */
        while (rc == 0 && !wait_met(mode, n, nd + w.ndone, ne + w.nexc))
          rc = block_locked(s, dl);
        if (wait_met(mode, n, nd + w.ndone, ne + w.nexc))
          rc = 0;
        else if (rc == MPX_ETIMEDOUT)
          rc = mpx__fail(rc,
                         "mpx_wait: the condition does not hold after "
                         "%g s",
                         timeout);
        for (size_t i = 0; i < n; i++)
          if (!is_done_state(atomic_load(&fs[i]->state)))
            unlink_waiter_locked(fs[i], &w);
      }
    }
  }
  size_t count = 0;
  for (size_t i = 0; i < n; i++) {
    int d = is_done_state(atomic_load(&fs[i]->state));
    if (done)
      done[i] = (unsigned char)d;
    count += (size_t)d;
  }
  pthread_mutex_unlock(&s->mu);
  free(w.links);
  if (ndone)
    *ndone = count;
  return rc;
}

/* ---- as_completed ----------------------------------------------------- */

struct mpx_as_completed {
  mpx__sync *sync;
  mpx_future **fs; /* unique futures, each referenced */
  size_t n;
  size_t yielded;
  double deadline;
  mpx__waiter w;
};

/* Numbers the as_completed sets, so that a future can carry the last set
 * that took it in (mpx_future.seen) and a repeat is dropped in O(1). */
static _Atomic uint64_t as_completed_sets;

/* Creates an iterator yielding the futures in completion order. */
int mpx_as_completed_create(mpx_future *const *fs, size_t n, double timeout,
                            mpx_as_completed **out) {
  if (!out)
    return mpx__fail(MPX_EINVAL, "mpx_as_completed_create: NULL output");
  *out = NULL;
  int rc = check_futures(fs, n, "mpx_as_completed_create");
  if (rc == 0)
    rc = mpx__timeout_nan(timeout, "mpx_as_completed_create");
  if (rc)
    return rc;
  mpx_as_completed *it = calloc(1, sizeof *it);
  mpx_future **uniq = malloc((n ? n : 1) * sizeof *uniq);
  mpx_future **queue = malloc((n ? n : 1) * sizeof *queue);
  mpx__wlink *links = calloc(n ? n : 1, sizeof *links);
  if (!it || !uniq || !queue || !links) {
    free(it);
    free(uniq);
    free(queue);
    free(links);
    return mpx__fail(MPX_ENOMEM,
                     "mpx_as_completed_create: out of memory for "
                     "%zu futures",
                     n);
  }
  it->fs = uniq;
  it->deadline = deadline_of(timeout);
  it->w.queue = queue;
  it->w.links = links;
  if (n) {
    it->sync = fs[0]->sync;
    mpx__sync_ref(it->sync);
    uint64_t set = atomic_fetch_add(&as_completed_sets, 1) + 1;
    pthread_mutex_lock(&it->sync->mu);
    /* Each future once, in the order given (a repeat is dropped); those
     * already done are queued first, the rest register a link. */
    size_t m = 0, nl = 0;
    for (size_t i = 0; i < n; i++) {
      if (fs[i]->seen == set)
        continue;
      fs[i]->seen = set;
      uniq[m++] = fs[i];
    }
    it->n = m;
    for (size_t i = 0; i < m; i++) {
      mpx__future_ref(uniq[i]);
      if (is_done_state(atomic_load(&uniq[i]->state))) {
        it->w.queue[it->w.qtail++] = uniq[i];
        continue;
      }
      mpx__wlink *l = &links[nl++];
      l->w = &it->w;
      l->next = uniq[i]->waiters;
      uniq[i]->waiters = l;
    }
    pthread_mutex_unlock(&it->sync->mu);
  }
  *out = it;
  return 0;
}

/* Yields the next finished future of the iterator. */
int mpx_as_completed_next(mpx_as_completed *it, mpx_future **fut) {
  if (!it || !fut)
    return mpx__fail(MPX_EINVAL, "mpx_as_completed_next: NULL argument");
  *fut = NULL;
  if (it->yielded == it->n)
    return mpx__fail(MPX_EOF, "mpx_as_completed_next: every future has been "
                              "yielded");
  mpx__sync *s = it->sync;
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  while (it->w.qhead == it->w.qtail && rc == 0) {
    if (no_block) {
      if (it->deadline >= 0 && mpx__now() >= it->deadline)
        rc = MPX_ETIMEDOUT;
      else
        rc = mpx__fail(MPX_EDEADLK,
                       "mpx_as_completed_next: blocking from a done-callback");
      break;
    }
    it->w.need = it->w.ndone + 1;
    rc = block_locked(s, it->deadline);
  }
  if (it->w.qhead < it->w.qtail) {
    *fut = it->w.queue[it->w.qhead++];
    it->yielded++;
    rc = 0;
  }
  pthread_mutex_unlock(&s->mu);
  if (*fut)
    mpx__sim_charge(MPX__SIM_TAKE, 1); /* (under SMPI) */
  if (rc == MPX_ETIMEDOUT)
    return mpx__fail(rc, "mpx_as_completed_next: the iterator's deadline "
                         "passed");
  return rc;
}

/* Releases the iterator's references and frees it. */
void mpx_as_completed_destroy(mpx_as_completed **itp) {
  if (!itp || !*itp)
    return;
  mpx_as_completed *it = *itp;
  if (it->sync) {
    pthread_mutex_lock(&it->sync->mu);
    for (size_t i = 0; i < it->n; i++)
      if (!is_done_state(atomic_load(&it->fs[i]->state)))
        unlink_waiter_locked(it->fs[i], &it->w);
    pthread_mutex_unlock(&it->sync->mu);
    for (size_t i = 0; i < it->n; i++)
      mpx__future_unref(it->fs[i]);
    mpx__sync_unref(it->sync);
  }
  free(it->fs);
  free(it->w.queue);
  free(it->w.links);
  free(it);
  *itp = NULL;
}
