/*
 * executor.c -- collective creation, the root's executor and its manager
 * thread (CPython's _queue_management_worker).
 *
 * The user's threads only touch the shared state under sync->mu: they push
 * futures on the pending FIFO (submit), cancel them, or ask for shutdown.
 * The manager thread alone makes the pool's MPI calls. It owns the work-id
 * table of in-flight items and the per-worker credits: at most `prefetch`
 * call items in flight per worker, each carrying a batch of tasks sized
 * from the backlog (guided self-scheduling: big batches while the queue is
 * long, single tasks near its end), so a worker never waits for its next
 * item and tiny tasks share messages. Futures are marked RUNNING, or
 * dropped if cancelled, before their call item is sent.
 *
 * The manager must not burn a core the workers need (MPI's progress engine
 * spins). Workers report how long each task ran, so the manager knows when
 * the next result is due: it spins only when that is within its spin
 * window, otherwise sleeps that long and then backs off exponentially, on a
 * condition variable that submit signals; with nothing pending or in
 * flight it blocks outright.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "executor.h"
#include "future.h"
#include "msg.h"
#include "registry.h"
#include "task.h"
#include "transport.h"
#include "util.h"
#include "worker.h"
#include "worktable.h"

/* The largest head a call item may grow to before the batch is closed. */
#define HEAD_MAX ((size_t)4 << 20)

struct mpx_executor {
  mpx__sync *sync;
  MPI_Comm comm; /* duplicated, MPI_ERRORS_RETURN */
  int root, size, nworkers, local;
  mpx_options opts;
  pthread_t mgr;
  pthread_cond_t mgr_cv; /* the manager sleeps here; submit signals it */

  /* Guarded by sync->mu. */
  mpx_future *pend_head, *pend_tail; /* FIFO of pending futures */
  size_t npending;
  uint64_t next_id;
  int mgr_sleeping;
  int kicked;         /* submit or shutdown happened since the manager slept */
  void (*call)(void); /* mpx__executor_call(): for the manager to run */
  int cancel_req;     /* shutdown asked to cancel calls sent but not started */
  int shutdown;       /* no more submits */
  int mgr_done;       /* the manager thread has finished */
  int broken;         /* MPX_EBROKEN cause code, or 0 */
  char broken_msg[512];

  /* Manager thread only. */
  mpx__worktable table;
  int *credits;     /* per rank: call items that may still be sent */
  double gap;       /* moving average of the expected time between results */
  double task_s;    /* moving average of one task's run time, < 0 unknown */
  int last_rank;    /* the worker that reported last (warmest) */
  int cancels_sent; /* cancel_req was passed on to the workers */
  unsigned char *cancelled; /* per rank: a CANCEL was sent to it */
  double spin_s;            /* MPX_MANAGER_SPIN_US */
  long sleep_max_us;        /* MPX_IDLE_SLEEP_US */
  double span; /* longest call item worth queueing behind another (s) */
  size_t inflight;
  mpx__send *sends;
  mpx__msgbuf mb;

  /* Guarded by live_mu. */
  struct mpx_executor *live_next; /* this process's executors */
  int joined;                     /* the manager thread was joined */
};

/* ---- the executors this process holds ----------------------------------- */

/* Executors created on this process and not destroyed: create refuses a
 * second live one (its workers are busy in the first one's loop, so a
 * second creation would wait for them forever), and mpx_finalize() shuts
 * the live ones down before MPI is finalised. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static mpx_executor *live_head;

static void live_add(mpx_executor *ex) {
  pthread_mutex_lock(&live_mu);
  ex->live_next = live_head;
  live_head = ex;
  pthread_mutex_unlock(&live_mu);
}

static void live_remove(mpx_executor *ex) {
  pthread_mutex_lock(&live_mu);
  for (mpx_executor **p = &live_head; *p; p = &(*p)->live_next)
    if (*p == ex) {
      *p = ex->live_next;
      break;
    }
  pthread_mutex_unlock(&live_mu);
}

/* The number of this process's executors whose manager still runs. */
static int live_count(void) {
  int n = 0;
  pthread_mutex_lock(&live_mu);
  for (mpx_executor *ex = live_head; ex; ex = ex->live_next) {
    pthread_mutex_lock(&ex->sync->mu);
    n += !ex->mgr_done;
    pthread_mutex_unlock(&ex->sync->mu);
  }
  pthread_mutex_unlock(&live_mu);
  return n;
}

/* ---- options ---------------------------------------------------------- */

void mpx_options_init(mpx_options *o) {
  if (!o)
    return;
  o->root = 0;
  o->prefetch = (int)mpx__env_long("MPX_PREFETCH", 2);
  o->max_batch = (int)mpx__env_long("MPX_MAX_BATCH", 64);
  o->flush_interval = mpx__env_double("MPX_FLUSH_INTERVAL", 0.001);
}

static int check_options(const mpx_options *o, int size) {
  if (o->root < 0 || o->root >= size)
    return mpx__fail(MPX_EINVAL,
                     "root %d is not a rank of a communicator "
                     "of size %d",
                     o->root, size);
  if (o->prefetch < 1)
    return mpx__fail(MPX_EINVAL, "prefetch must be at least 1 (got %d)",
                     o->prefetch);
  if (o->max_batch < 1)
    return mpx__fail(MPX_EINVAL, "max_batch must be at least 1 (got %d)",
                     o->max_batch);
  if (!(o->flush_interval >= 0))
    return mpx__fail(MPX_EINVAL, "flush_interval must be >= 0");
  return 0;
}

/* ---- breaking the pool -------------------------------------------------- */

typedef struct break_ctx {
  mpx_executor *ex;
  mpx__cbq *q;
} break_ctx;

/* Finishes one in-flight future with the pool's breakage (lock held). */
static void finish_broken(uint64_t id, void *val, void *arg) {
  (void)id;
  break_ctx *c = arg;
  mpx_future *f = val;
  mpx__future_finish_locked(f, MPX_EBROKEN, NULL, 0, strdup(c->ex->broken_msg),
                            c->q);
  mpx__future_unref(f); /* the table's reference */
}

/* Marks the pool broken: every pending and in-flight future finishes with
 * MPX_EBROKEN and a message naming the cause (CPython's BrokenProcessPool).
 * Manager only. */
static void break_pool(mpx_executor *ex, int cause, const char *msg) {
  mpx__cbq q = {0};
  break_ctx c = {ex, &q};
  pthread_mutex_lock(&ex->sync->mu);
  if (!ex->broken) {
    ex->broken = cause;
    snprintf(ex->broken_msg, sizeof ex->broken_msg,
             "process pool is broken (%s): %s", mpx_err_name(cause), msg);
  }
  for (mpx_future *f = ex->pend_head, *n; f; f = n) {
    n = f->next;
    f->next = NULL;
    finish_broken(0, f, &c);
  }
  ex->pend_head = ex->pend_tail = NULL;
  ex->npending = 0;
  mpx__worktable_drain(&ex->table, finish_broken, &c);
  ex->inflight = 0;
  pthread_mutex_unlock(&ex->sync->mu);
  mpx__cbq_free(&q);
}

/* ---- dispatch ------------------------------------------------------------ */

/* Releases a sent future's arguments once the send completed. */
static void release_arg(void *arg) {
  mpx_future *f = arg;
  free(f->arg);
  f->arg = NULL;
  mpx__future_unref(f);
}

/* Under the lock: pops up to max futures that are still pending, marking
 * them RUNNING on worker rank w; cancelled ones are dropped, never sent.
 * A payload big enough to travel as a tail closes the batch. */
static size_t take_batch_locked(mpx_executor *ex, int w, size_t max,
                                mpx_future **out) {
  size_t n = 0, bytes = 0;
  while (n < max && ex->pend_head) {
    mpx_future *f = ex->pend_head;
    if (n > 0 && f->arg_len >= MPX_TAIL_MIN)
      break;
    ex->pend_head = f->next;
    if (!ex->pend_head)
      ex->pend_tail = NULL;
    ex->npending--;
    f->next = NULL;
    if (!mpx__future_set_running_or_notify_cancel_locked(f)) {
      mpx__future_unref(f); /* the executor's reference */
      continue;
    }
    f->worker = w;
    out[n++] = f;
    bytes += f->arg_len;
    if (f->arg_len >= MPX_TAIL_MIN || bytes >= HEAD_MAX)
      break;
  }
  return n;
}

/* Prefetch hides the time between a result and the next call item, which
 * is the manager's reaction time: at most its longest idle sleep
 * (MPX_IDLE_SLEEP_US, 1 ms) plus a round trip. A call item expected to run
 * longer than PREFETCH_SPAN times that gains under 5% from being queued
 * behind another, and may wait behind a long task while another worker is
 * idle; such items are sent only to idle workers, as a shared queue
 * (Python's pools) would hand them out. */
#define PREFETCH_SPAN 20.0

/* Guided batch size: a share of the backlog per credit, within limits, and
 * no longer than the prefetch span once task times are known, so a batch
 * never holds much more work than one call item should. */
static size_t batch_size(const mpx_executor *ex, size_t npending,
                         int prefetch) {
  size_t slots = (size_t)ex->nworkers * (size_t)prefetch * 2;
  size_t b = (npending + slots - 1) / slots;
  if (b > (size_t)ex->opts.max_batch)
    b = (size_t)ex->opts.max_batch;
  if (ex->task_s > 0 && (double)b * ex->task_s > ex->span) {
    double fit = ex->span / ex->task_s;
    b = fit < 1 ? 1 : (size_t)fit;
  }
  return b < 1 ? 1 : b;
}

/* How many call items a worker may hold: the prefetch option while tasks
 * are known to be short, one while they are long or not yet measured (the
 * first results arrive within a round trip for tiny tasks, so this costs
 * them nothing). */
static int prefetch_now(const mpx_executor *ex, size_t npending) {
  if (ex->opts.prefetch == 1 || ex->task_s < 0)
    return 1;
  size_t b = batch_size(ex, npending, ex->opts.prefetch);
  return (double)b * ex->task_s < ex->span ? ex->opts.prefetch : 1;
}

/* Encodes a batch taken for worker w and starts sending it. The futures
 * enter the work-id table before the send, so a fast reply finds them. */
static int send_batch(mpx_executor *ex, int w, mpx_future **batch, size_t n) {
  mpx__msgbuf_begin(&ex->mb, MPX_MSG_CALL, 0);
  mpx_future *tailf = NULL;
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    mpx_future *f = batch[i];
    ex->inflight++;
    if (mpx__worktable_put(&ex->table, f->id, f) != 0) {
      /* Keep the invariant "every RUNNING future is in the table or
       * finished": fail this one in place. */
      mpx__cbq q = {0};
      char *why = strdup(mpx_last_error());
      pthread_mutex_lock(&ex->sync->mu);
      mpx__future_finish_locked(f, MPX_ENOMEM, NULL, 0, why, &q);
      pthread_mutex_unlock(&ex->sync->mu);
      mpx__cbq_free(&q);
      mpx__future_unref(f);
      ex->inflight--;
      continue;
    }
    if (rc)
      continue;
    if (f->arg_len >= MPX_TAIL_MIN) {
      rc = mpx__msgbuf_add_tail(&ex->mb, f->id, f->task_id, 0, f->arg,
                                f->arg_len);
      tailf = f;
    } else {
      rc = mpx__msgbuf_add(&ex->mb, f->id, f->task_id, 0, f->arg, f->arg_len);
      free(f->arg);
      f->arg = NULL;
    }
  }
  if (rc)
    return mpx__fail(rc, "cannot encode a call item");
  mpx__msgbuf_finish(&ex->mb);
  if (tailf)
    mpx__future_ref(tailf);
  rc = mpx__send_start(ex->comm, w, &ex->mb, tailf ? release_arg : NULL, tailf,
                       &ex->sends);
  ex->credits[w]--;
  return rc;
}

/* Sends call items to workers with credit, breadth first: every idle
 * worker gets an item before any worker gets a second one, and among
 * equals the warmest (the one that reported last) goes first. Returns the
 * number of tasks sent, or a negative code when the pool must break. */
static long dispatch(mpx_executor *ex, mpx_future ***bufp, size_t *capp) {
  long sent = 0;
  pthread_mutex_lock(&ex->sync->mu);
  int prefetch = prefetch_now(ex, ex->npending);
  pthread_mutex_unlock(&ex->sync->mu);
  for (int level = 1; level <= prefetch; level++) {
    for (int k = 0; k < ex->size; k++) {
      int w = (ex->last_rank + k) % ex->size;
      /* credits[w] counts down from opts.prefetch as items go out. */
      if (w == ex->root || ex->opts.prefetch - ex->credits[w] >= level)
        continue;
      pthread_mutex_lock(&ex->sync->mu);
      size_t want = batch_size(ex, ex->npending, prefetch);
      if (want > *capp) {
        mpx_future **nb = realloc(*bufp, want * sizeof *nb);
        if (!nb) {
          pthread_mutex_unlock(&ex->sync->mu);
          return mpx__fail(MPX_ENOMEM, "manager out of memory");
        }
        *bufp = nb;
        *capp = want;
      }
      size_t n = take_batch_locked(ex, w, want, *bufp);
      pthread_mutex_unlock(&ex->sync->mu);
      if (n == 0)
        return sent;
      int rc = send_batch(ex, w, *bufp, n);
      if (rc)
        return rc;
      sent += (long)n;
    }
  }
  return sent;
}

/* ---- results ------------------------------------------------------------- */

/* Completes the futures of one result message. Returns 0 or MPX_EPROTO. */
static int handle_result(mpx_executor *ex, mpx__recvd *r, mpx__cbq *q) {
  if (r->hdr.kind != MPX_MSG_RESULT)
    return mpx__fail(MPX_EPROTO, "unexpected message kind %u from rank %d",
                     r->hdr.kind, r->src);
  size_t pos = 0;
  mpx__msg_item it;
  int rc = 0;
  double busy_us = 0;
  size_t ntasks = 0;
  pthread_mutex_lock(&ex->sync->mu);
  while (mpx__msg_next(r->head, &r->hdr, &pos, r->tail, &it)) {
    mpx_future *f = mpx__worktable_get(&ex->table, it.work_id);
    if (!f || f->worker != r->src) {
      rc = mpx__fail(MPX_EPROTO, "rank %d returned unknown work id %llu",
                     r->src, (unsigned long long)it.work_id);
      break;
    }
    busy_us += it.task_id; /* in results: the worker's run time */
    mpx__worktable_pop(&ex->table, it.work_id);
    ex->inflight--;
    void *res = NULL;
    char *err = NULL;
    int st = it.status;
    if (st == 0) {
      if (it.data == r->tail && r->tail) {
        res = r->tail; /* adopt the separately received payload */
        r->tail = NULL;
      } else if ((res = mpx__alloc((size_t)it.len)) != NULL) {
        memcpy(res, it.data, (size_t)it.len);
      } else {
        st = MPX_ENOMEM;
      }
    } else {
      /* The task's failure, a task unknown there, or a worker out of
       * memory (not the task's fault: a job does not record it). */
      if (st != MPX_ETASK && st != MPX_ENOTASK && st != MPX_ENOMEM &&
          st != MPX_ECANCELED)
        st = MPX_EPROTO;
      if (st != MPX_ECANCELED)
        err = strndup(it.data, (size_t)it.len);
    }
    if (st != MPX_ECANCELED)
      ntasks++;
    if (st == MPX_ECANCELED) /* sent, never started: shutdown cancelled it */
      mpx__future_cancel_sent_locked(f, q);
    else
      mpx__future_finish_locked(f, st, res, res ? (size_t)it.len : 0, err, q);
    mpx__future_unref(f); /* the table's reference */
  }
  pthread_mutex_unlock(&ex->sync->mu);
  if (rc == 0 && (r->hdr.flags & MPX_MSG_END_OF_CALL))
    ex->credits[r->src]++;
  ex->last_rank = r->src;
  /* The worker's own run time for this message: with nworkers such streams
   * a result is due about every busy / nworkers, whatever the manager's
   * own reaction time was. */
  ex->gap = 0.75 * ex->gap + 0.25 * 1e-6 * busy_us / ex->nworkers;
  if (ntasks > 0) {
    double t = 1e-6 * busy_us / (double)ntasks;
    ex->task_s = ex->task_s < 0 ? t : 0.75 * ex->task_s + 0.25 * t;
  }
  return rc;
}

/* ---- the manager thread ---------------------------------------------- */

/* Sleeps on mgr_cv for up to us microseconds (forever when us < 0) unless
 * a submit or shutdown came since the last sleep; they set `kicked` and
 * signal. Pending futures alone do not keep the manager awake: dispatch()
 * has just sent all it could, so what is left waits for a credit, which
 * only a result can return. */
static void mgr_sleep(mpx_executor *ex, long us) {
  pthread_mutex_lock(&ex->sync->mu);
  if (!ex->kicked) {
    ex->mgr_sleeping = 1;
    if (us < 0) {
      pthread_cond_wait(&ex->mgr_cv, &ex->sync->mu);
    } else {
      struct timespec ts = mpx__timespec(mpx__now() + 1e-6 * (double)us);
      pthread_cond_timedwait(&ex->mgr_cv, &ex->sync->mu, &ts);
    }
    ex->mgr_sleeping = 0;
  }
  ex->kicked = 0;
  pthread_mutex_unlock(&ex->sync->mu);
}

/* Runs the function mpx__executor_call() left for the manager, if any,
 * and tells its caller. Manager only. */
static void mgr_run_call(mpx_executor *ex) {
  pthread_mutex_lock(&ex->sync->mu);
  void (*fn)(void) = ex->call;
  pthread_mutex_unlock(&ex->sync->mu);
  if (!fn)
    return;
  fn();
  pthread_mutex_lock(&ex->sync->mu);
  ex->call = NULL;
  pthread_cond_broadcast(&ex->sync->cv);
  pthread_mutex_unlock(&ex->sync->mu);
}

/* Wakes the manager for new work or a shutdown (lock held). */
static void mgr_kick_locked(mpx_executor *ex) {
  ex->kicked = 1;
  if (ex->mgr_sleeping)
    pthread_cond_signal(&ex->mgr_cv);
}

/* Passes a shutdown's cancel_futures on to the workers: each worker that
 * holds call items gets a CANCEL on the control tag and answers the tasks
 * it has not started with MPX_ECANCELED. Manager only. */
static int send_cancels(mpx_executor *ex) {
  pthread_mutex_lock(&ex->sync->mu);
  int want = ex->cancel_req && !ex->cancels_sent;
  pthread_mutex_unlock(&ex->sync->mu);
  if (!want)
    return 0;
  ex->cancels_sent = 1;
  for (int w = 0; w < ex->size; w++) {
    if (w == ex->root || ex->credits[w] == ex->opts.prefetch)
      continue;
    int one = 1;
    int rc = MPI_Send(&one, 1, MPI_INT, w, MPX_TAG_CTL, ex->comm);
    if (rc != MPI_SUCCESS)
      return mpx__mpi_fail(rc, "MPI_Send of a cancel");
    ex->cancelled[w] = 1;
  }
  return 0;
}

/* Whether the manager may stop: shut down and nothing left to do. */
static int mgr_finished(mpx_executor *ex) {
  pthread_mutex_lock(&ex->sync->mu);
  int done = ex->shutdown && !ex->pend_head;
  pthread_mutex_unlock(&ex->sync->mu);
  return done && ex->inflight == 0;
}

/* Tells every worker to leave its loop, then receives until each has
 * acknowledged. A worker's acknowledgement is its last message, so after it
 * nothing of the pool is in flight: results still on the way (after a
 * breakage) are discarded here instead of surfacing in a later pool whose
 * communicator reuses this one's context id. */
static void release_workers(mpx_executor *ex) {
  int pending = 0;
  for (int w = 0; w < ex->size; w++) {
    if (w == ex->root)
      continue;
    /* A worker that was sent a CANCEL must receive it before it leaves,
     * or it would reach a later pool that reuses this context id. */
    mpx__msgbuf_begin(&ex->mb, MPX_MSG_STOP,
                      ex->cancelled && ex->cancelled[w] ? MPX_MSG_CANCEL_SENT
                                                        : 0);
    mpx__msgbuf_finish(&ex->mb);
    if (mpx__send_start(ex->comm, w, &ex->mb, NULL, NULL, &ex->sends) == 0)
      pending++;
  }
  unsigned sleep_us = 1;
  while (pending > 0) {
    mpx__recvd r;
    int got = mpx__recv_poll(ex->comm, &r);
    if (got == MPX_EPROTO)
      continue; /* garbage from a broken pool: drop it */
    if (got < 0)
      break; /* MPI itself failed: nothing more can be received */
    if (got == 0) {
      mpx__send_progress(&ex->sends, 0);
      mpx__sleep_us(sleep_us);
      sleep_us = sleep_us < 1000 ? sleep_us * 2 : 1000;
      continue;
    }
    if (r.hdr.kind == MPX_MSG_STOP)
      pending--;
    mpx__recvd_free(&r);
    sleep_us = 1;
  }
  mpx__send_progress(&ex->sends, 1);
}

/* The multi-rank manager loop. */
static void manager_mpi(mpx_executor *ex) {
  const double spin_s = ex->spin_s;
  const long sleep_max = ex->sleep_max_us;
  double last_active = mpx__now();
  long sleep_us = 1;
  mpx_future **buf = NULL;
  size_t cap = 0;
  mpx__cbq q = {0};
  for (;;) {
    int progress = 0, rc = 0;
    /* Results first: they return credits for the dispatch below. */
    for (int i = 0; i < 256; i++) {
      mpx__recvd r;
      int got = mpx__recv_poll(ex->comm, &r);
      if (got <= 0) {
        rc = got;
        break;
      }
      rc = handle_result(ex, &r, &q);
      mpx__recvd_free(&r);
      progress = 1;
      if (rc)
        break;
    }
    mpx__cbq_run(&q);
    if (rc == 0) {
      long sent = dispatch(ex, &buf, &cap);
      if (sent < 0)
        rc = (int)sent;
      else if (sent > 0)
        progress = 1;
    }
    if (rc == 0)
      rc = send_cancels(ex);
    mgr_run_call(ex);
    if (rc == 0)
      rc = mpx__send_progress(&ex->sends, 0);
    if (rc) {
      break_pool(ex, rc, mpx_last_error());
      break;
    }
    if (mgr_finished(ex))
      break;
    if (progress) {
      /* The next result is due in about `gap` seconds: sleep that long
       * first rather than 1 us, since every wake-up of this thread on a
       * full node preempts a worker, and the workers' prefetched items keep
       * them busy meanwhile. */
      last_active = mpx__now();
      sleep_us = (long)(ex->gap * 1e6);
      sleep_us = sleep_us < 1 ? 1 : sleep_us > sleep_max ? sleep_max : sleep_us;
      continue;
    }
    /* Spin only while results come back faster than the spin window:
     * with millisecond tasks spinning would take the core from a worker,
     * and prefetched items keep the workers busy while the manager
     * sleeps. */
    if (ex->gap < spin_s && mpx__now() - last_active < spin_s) {
      mpx__cpu_relax();
      continue;
    }
    /* Nothing in flight: nothing can arrive, so block until submit. The
     * timeout only bounds how long an error from MPI could go unseen. */
    if (ex->inflight == 0) {
      mgr_sleep(ex, 100000);
      continue;
    }
    mgr_sleep(ex, sleep_us);
    sleep_us = sleep_us * 2 < sleep_max ? sleep_us * 2 : sleep_max;
  }
  mpx__cbq_free(&q);
  free(buf);
  release_workers(ex);
}

/* The single-rank manager: it is also the worker thread, running each
 * pending task in turn inside the root process. */
static void manager_local(mpx_executor *ex) {
  int rank = 0;
  mpx__cbq q = {0};
  MPI_Comm_rank(ex->comm, &rank);
  for (;;) {
    mpx_future *f = NULL;
    pthread_mutex_lock(&ex->sync->mu);
    while (!f && ex->pend_head) {
      if (take_batch_locked(ex, rank, 1, &f) == 0)
        f = NULL;
    }
    pthread_mutex_unlock(&ex->sync->mu);
    if (!f) {
      if (mgr_finished(ex))
        break;
      mgr_sleep(ex, 100000);
      continue;
    }
    void *res = NULL;
    size_t rlen = 0;
    int st =
        mpx__task_run(f->task_id, f->arg, f->arg_len, rank, 1, &res, &rlen);
    pthread_mutex_lock(&ex->sync->mu);
    free(f->arg);
    f->arg = NULL;
    if (st == 0)
      mpx__future_finish_locked(f, 0, res, rlen, NULL, &q);
    else
      mpx__future_finish_locked(f, st, NULL, 0, res, &q);
    pthread_mutex_unlock(&ex->sync->mu);
    mpx__cbq_run(&q);
    mpx__future_unref(f);
  }
  mpx__cbq_free(&q);
}

static void *manager_main(void *arg) {
  mpx_executor *ex = arg;
  mpx__future_set_no_block(1);
  mpx__low_timer_slack();
  if (ex->local)
    manager_local(ex);
  else
    manager_mpi(ex);
  pthread_mutex_lock(&ex->sync->mu);
  ex->mgr_done = 1;
  pthread_cond_broadcast(&ex->sync->cv);
  pthread_mutex_unlock(&ex->sync->mu);
  return NULL;
}

/* ---- creation ---------------------------------------------------------- */

/* Agrees on an error code over comm: the most negative wins, and the ranks
 * that did not fail themselves learn which rank did. */
static int agree(MPI_Comm comm, int rc, const char *what) {
  int all = 0;
  int mrc = MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MIN, comm);
  if (mrc != MPI_SUCCESS) {
    char call[160];
    snprintf(call, sizeof call, "MPI_Allreduce while %s", what);
    return mpx__mpi_fail(mrc, call);
  }
  if (all != 0 && rc == 0)
    return mpx__fail(all, "another rank failed while %s with %s", what,
                     mpx_err_name(all));
  return all;
}

/* Agrees on the options, collectively over comm, before anything that
 * depends on them. One reduction checks every rank's thread level and
 * that every rank names the
 * same root (a different root would leave the ranks waiting in
 * collectives rooted at different ranks); then the root's options are
 * broadcast, so that a value set on the root only (flush_interval, which
 * the workers apply) holds on every rank, and checked alike everywhere.
 * Returns 0 or the same error code on every rank. */
static int agree_options(MPI_Comm comm, int size, mpx_options *o) {
  int provided = 0, rc = 0;
  MPI_Query_thread(&provided);
  if (provided < MPI_THREAD_SERIALIZED)
    rc = mpx__fail(MPX_ETHREAD,
                   "mpx_executor_create: MPI provides thread level %d; mpx "
                   "needs MPI_THREAD_SERIALIZED or higher (use mpx_init or "
                   "MPI_Init_thread)",
                   provided);
  else if (o->root < 0 || o->root >= size)
    rc = mpx__fail(MPX_EINVAL,
                   "mpx_executor_create: root %d is not a rank of a "
                   "communicator of size %d",
                   o->root, size);
  int in[3] = {rc, rc ? INT_MAX : o->root, rc ? INT_MAX : -o->root}, all[3];
  int mrc = MPI_Allreduce(in, all, 3, MPI_INT, MPI_MIN, comm);
  if (mrc != MPI_SUCCESS)
    return mpx__mpi_fail(mrc, "mpx_executor_create: MPI_Allreduce");
  if (all[0] != 0)
    return rc ? rc
              : mpx__fail(all[0],
                          "mpx_executor_create: another rank failed "
                          "with %s (its own message says why)",
                          mpx_err_name(all[0]));
  if (all[1] != -all[2])
    return mpx__fail(MPX_EINVAL,
                     "mpx_executor_create: the ranks passed different "
                     "roots (from %d to %d); every rank must pass the same "
                     "opts.root",
                     all[1], -all[2]);
  int root = all[1];
  mrc = MPI_Bcast(o, (int)sizeof *o, MPI_BYTE, root, comm);
  if (mrc != MPI_SUCCESS)
    return mpx__mpi_fail(mrc, "mpx_executor_create: MPI_Bcast of the options");
  return check_options(o, size);
}

/* Checks that every rank registered the same tasks. Collective over comm.
 * On a mismatch every rank returns MPX_EMISMATCH with the root's sentence
 * naming the difference. Local failures (memory) are agreed on before each
 * collective step so that no rank is left waiting in one; a failed MPI
 * call returns MPX_EMPI with MPI's text. */
static int check_registry(MPI_Comm comm, int root) {
  int rank, size, mrc;
  if ((mrc = MPI_Comm_rank(comm, &rank)) != MPI_SUCCESS ||
      (mrc = MPI_Comm_size(comm, &size)) != MPI_SUCCESS)
    return mpx__mpi_fail(mrc, "MPI_Comm_rank/MPI_Comm_size on the pool's "
                              "communicator");
  char *tab = NULL, *all = NULL;
  int *lens = NULL, *displs = NULL;
  char msg[512] = "";
  size_t len = 0;
  int verdict = 0, ilen = 0;
  int rc = mpx__registry_serialize(&tab, &len);
  if (rc == 0 && len > INT_MAX)
    rc = mpx__fail(MPX_E2BIG, "the task table is %zu bytes", len);
  if (rc == 0 && rank == root) {
    lens = calloc((size_t)size, sizeof *lens);
    displs = calloc((size_t)size, sizeof *displs);
    if (!lens || !displs)
      rc =
          mpx__fail(MPX_ENOMEM, "out of memory gathering %d task tables", size);
  }
  if ((rc = agree(comm, rc, "serialising the task table")) != 0)
    goto out;
  ilen = (int)len;
  if ((mrc = MPI_Gather(&ilen, 1, MPI_INT, lens, 1, MPI_INT, root, comm)) !=
      MPI_SUCCESS) {
    rc = mpx__mpi_fail(mrc, "MPI_Gather of the task table lengths");
    goto out;
  }
  if (rank == root) {
    size_t total = 0;
    for (int i = 0; i < size; i++) {
      displs[i] = (int)total;
      total += (size_t)lens[i];
    }
    if (total > INT_MAX)
      rc = mpx__fail(MPX_E2BIG, "the task tables of %d ranks are %zu bytes",
                     size, total);
    else if (!(all = malloc(total + 1)))
      rc = mpx__fail(MPX_ENOMEM, "out of memory for %zu bytes of task tables",
                     total + 1);
  }
  if ((rc = agree(comm, rc, "gathering the task tables")) != 0)
    goto out;
  if ((mrc = MPI_Gatherv(tab, ilen, MPI_CHAR, all, lens, displs, MPI_CHAR, root,
                         comm)) != MPI_SUCCESS) {
    rc = mpx__mpi_fail(mrc, "MPI_Gatherv of the task tables");
    goto out;
  }
  if (rank == root) {
    for (int i = 0; i < size && verdict == 0; i++)
      verdict = mpx__registry_compare(tab, len, root, all + displs[i],
                                      (size_t)lens[i], i, msg, sizeof msg);
  }
  if ((mrc = MPI_Bcast(&verdict, 1, MPI_INT, root, comm)) != MPI_SUCCESS ||
      (mrc = MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, root, comm)) !=
          MPI_SUCCESS) {
    rc = mpx__mpi_fail(mrc, "MPI_Bcast of the task table verdict");
    goto out;
  }
  if (verdict)
    rc = mpx__fail(verdict, "ranks registered different tasks: %s", msg);
out:
  free(tab);
  free(all);
  free(lens);
  free(displs);
  return rc;
}

/* Creates the executor (see mpx_executor_create); failures set a message
 * that mpx_executor_create() prefixes with its name. */
static int executor_create(MPI_Comm comm, const mpx_options *opts,
                           mpx_executor **out) {
  if (!out)
    return mpx__fail(MPX_EINVAL, "NULL output");
  *out = NULL;
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (!inited || finalized)
    return mpx__fail(MPX_EINVAL, "MPI is not initialised (call mpx_init "
                                 "or MPI_Init_thread first)");
  if (comm == MPI_COMM_NULL)
    return mpx__fail(MPX_EINVAL, "MPI_COMM_NULL");
  mpx_options o;
  if (opts)
    o = *opts;
  else
    mpx_options_init(&o);
  /* Before any collective: the workers of a live pool are in its loop and
   * would never join one, so this is refused here and now. */
  if (live_count() > 0)
    return mpx__fail(MPX_EBUSY, "mpx_executor_create: this process already "
                                "holds a live executor (its workers serve "
                                "it until it is shut down); shut it down "
                                "with wait first");
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int rc = agree_options(comm, size, &o);
  if (rc != 0)
    return rc;

  MPI_Comm pc;
  int mrc = MPI_Comm_dup(comm, &pc);
  if (mrc != MPI_SUCCESS)
    return mpx__mpi_fail(mrc, "MPI_Comm_dup");
  MPI_Comm_set_errhandler(pc, MPI_ERRORS_RETURN);
  if ((rc = check_registry(pc, o.root)) != 0) {
    MPI_Comm_free(&pc);
    return rc;
  }

  if (rank != o.root) {
    mpx__registry_hold(1);
    rc = mpx__worker_loop(pc, o.root, &o);
    mpx__registry_hold(-1);
    MPI_Comm_free(&pc);
    return rc;
  }

  mpx_executor *ex = calloc(1, sizeof *ex);
  int *credits = calloc((size_t)size, sizeof *credits);
  unsigned char *cancelled = calloc((size_t)size, 1);
  if (!ex || !credits || !cancelled || mpx__sync_create(&ex->sync) != 0 ||
      mpx__worktable_init(&ex->table) != 0) {
    if (ex && ex->sync)
      mpx__sync_unref(ex->sync);
    if (ex)
      mpx__worktable_destroy(&ex->table);
    free(ex);
    free(credits);
    free(cancelled);
    /* The workers are already serving: release them before failing. */
    mpx_executor tmp = {.comm = pc, .root = o.root, .size = size};
    release_workers(&tmp);
    mpx__msgbuf_free(&tmp.mb);
    MPI_Comm_free(&pc);
    return mpx__fail(MPX_ENOMEM, "out of memory for the executor");
  }
  ex->comm = pc;
  ex->root = o.root;
  ex->size = size;
  ex->local = size == 1;
  ex->nworkers = size > 1 ? size - 1 : 1;
  ex->opts = o;
  ex->credits = credits;
  ex->cancelled = cancelled;
  ex->task_s = -1;
  ex->spin_s = 1e-6 * (double)mpx__env_long("MPX_MANAGER_SPIN_US", 200);
  ex->sleep_max_us = mpx__env_long("MPX_IDLE_SLEEP_US", 1000);
  ex->span = PREFETCH_SPAN * 1e-6 * (double)ex->sleep_max_us;
  for (int w = 0; w < size; w++)
    credits[w] = w == o.root ? 0 : o.prefetch;
  ex->last_rank = (o.root + 1) % size;
  ex->next_id = 1;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ex->mgr_cv, &ca);
  pthread_condattr_destroy(&ca);
  mpx__registry_hold(1);
  if (pthread_create(&ex->mgr, NULL, manager_main, ex) != 0) {
    /* Mark everything done so that destroy can run its normal path. */
    ex->shutdown = 1;
    ex->mgr_done = 1;
    if (!ex->local)
      release_workers(ex);
    ex->mgr = pthread_self();
    mpx_executor_destroy(&ex);
    return mpx__fail(MPX_ESYS, "cannot start the manager thread");
  }
  live_add(ex);
  *out = ex;
  return 0;
}

/* Creates an executor over comm, collectively; every failure's message
 * names the call. */
int mpx_executor_create(MPI_Comm comm, const mpx_options *opts,
                        mpx_executor **out) {
  unsigned long seq = mpx__error_seq();
  return mpx__fail_call(executor_create(comm, opts, out), "mpx_executor_create",
                        seq);
}

/* Returns the number of workers of ex, 0 for NULL. */
int mpx_executor_workers(const mpx_executor *ex) {
  return ex ? ex->nworkers : 0;
}

/* ---- submit / shutdown / destroy ---------------------------------------- */

/* Queues a new future for task_id, with arg already copied (owned: freed on
 * every failure). Returns 0 or MPX_EBROKEN, MPX_ESHUTDOWN, MPX_ENOMEM. */
static int submit_owned(mpx_executor *ex, uint32_t task_id, void *arg,
                        size_t len, mpx_future **fut) {
  mpx__sync *s = ex->sync;
  pthread_mutex_lock(&s->mu);
  int rc = 0;
  if (ex->broken)
    rc = mpx__fail(MPX_EBROKEN, "cannot submit: %s", ex->broken_msg);
  else if (ex->shutdown)
    rc = mpx__fail(MPX_ESHUTDOWN, "cannot submit '%s' after shutdown",
                   mpx__registry_name(task_id & ~MPX__TASK_CHUNK));
  uint64_t id = ex->next_id++;
  pthread_mutex_unlock(&s->mu);
  if (rc) {
    free(arg);
    return rc;
  }
  mpx_future *f;
  if ((rc = mpx__future_create_owned(s, id, task_id, arg, len, &f)) != 0)
    return rc;
  pthread_mutex_lock(&s->mu);
  if (ex->broken || ex->shutdown) {
    rc = ex->broken ? MPX_EBROKEN : MPX_ESHUTDOWN;
    pthread_mutex_unlock(&s->mu);
    mpx__future_unref(f);
    mpx__future_unref(f);
    return mpx__fail(rc, "cannot submit: the executor %s meanwhile",
                     rc == MPX_EBROKEN ? "broke" : "was shut down");
  }
  if (ex->pend_tail)
    ex->pend_tail->next = f;
  else
    ex->pend_head = f;
  ex->pend_tail = f;
  ex->npending++;
  mgr_kick_locked(ex);
  pthread_mutex_unlock(&s->mu);
  *fut = f;
  return 0;
}

int mpx__submit_owned(mpx_executor *ex, uint32_t task_id, void *arg, size_t len,
                      mpx_future **fut) {
  return submit_owned(ex, task_id, arg, len, fut);
}

int mpx__executor_call(mpx_executor *ex, void (*fn)(void)) {
  int provided = MPI_THREAD_SINGLE;
  MPI_Query_thread(&provided);
  if (provided == MPI_THREAD_MULTIPLE || ex->local) {
    fn();
    return 0;
  }
  if (mpx__future_no_block())
    return mpx__fail(MPX_EDEADLK, "waiting for the manager thread from a "
                                  "done-callback would deadlock");
  mpx__sync *s = ex->sync;
  pthread_mutex_lock(&s->mu);
  if (ex->mgr_done) {
    /* No manager, so no MPI call from it any more: run it here. */
    pthread_mutex_unlock(&s->mu);
    fn();
    return 0;
  }
  ex->call = fn;
  mgr_kick_locked(ex);
  while (ex->call && !ex->mgr_done) {
    s->nwaiters++;
    pthread_cond_wait(&s->cv, &s->mu);
    s->nwaiters--;
  }
  int ran = ex->call == NULL;
  ex->call = NULL;
  pthread_mutex_unlock(&s->mu);
  if (!ran)
    fn(); /* the manager ended first, making no more MPI calls */
  return 0;
}

int mpx__executor_prefetch(const mpx_executor *ex) {
  return ex->opts.prefetch;
}

/* Submits a call of the task name with a copy of the arguments. */
int mpx_submit(mpx_executor *ex, const char *name, const void *arg, size_t len,
               mpx_future **fut) {
  if (fut)
    *fut = NULL;
  if (!ex || !name || !fut || (len && !arg))
    return mpx__fail(MPX_EINVAL, "mpx_submit: NULL executor, name or output, "
                                 "or NULL arguments with a length");
  int tid = mpx__registry_lookup(name);
  if (tid < 0)
    return mpx__fail(MPX_ENOTASK,
                     "mpx_submit: no task named '%s' is "
                     "registered",
                     name);
  /* The copy happens outside the lock: arguments may be large. */
  void *copy = mpx__alloc(len);
  if (!copy)
    return mpx__fail(MPX_ENOMEM,
                     "mpx_submit: out of memory copying %zu "
                     "bytes of arguments",
                     len);
  if (len)
    memcpy(copy, arg, len);
  unsigned long seq = mpx__error_seq();
  return mpx__fail_call(submit_owned(ex, (uint32_t)tid, copy, len, fut),
                        "mpx_submit", seq);
}

/* Stops accepting work, optionally cancelling and waiting. */
int mpx_executor_shutdown(mpx_executor *ex, int wait, int cancel_futures) {
  if (!ex)
    return mpx__fail(MPX_EINVAL, "mpx_executor_shutdown: NULL executor");
  if (wait && mpx__future_no_block())
    return mpx__fail(MPX_EDEADLK, "mpx_executor_shutdown: waiting from a "
                                  "done-callback would deadlock");
  mpx__cbq q = {0};
  mpx__sync *s = ex->sync;
  pthread_mutex_lock(&s->mu);
  ex->shutdown = 1;
  if (cancel_futures) {
    /* Cancelled futures stay on the FIFO; the manager drops them, and asks
     * the workers to give back the calls they hold but have not started. */
    for (mpx_future *f = ex->pend_head; f; f = f->next)
      mpx__future_cancel_locked(f, &q);
    ex->cancel_req = 1;
  }
  mgr_kick_locked(ex);
  pthread_mutex_unlock(&s->mu);
  mpx__cbq_free(&q);
  if (wait) {
    pthread_mutex_lock(&s->mu);
    while (!ex->mgr_done) {
      s->nwaiters++;
      pthread_cond_wait(&s->cv, &s->mu);
      s->nwaiters--;
    }
    pthread_mutex_unlock(&s->mu);
  }
  return 0;
}

/* Destroys a shut-down executor and clears *exp. */
int mpx_executor_destroy(mpx_executor **exp) {
  if (!exp || !*exp)
    return 0;
  mpx_executor *ex = *exp;
  pthread_mutex_lock(&ex->sync->mu);
  int shut = ex->shutdown;
  pthread_mutex_unlock(&ex->sync->mu);
  if (!shut)
    return mpx__fail(MPX_EBUSY, "mpx_executor_destroy: the executor is live; "
                                "call mpx_executor_shutdown first");
  if (mpx__future_no_block())
    return mpx__fail(MPX_EDEADLK, "mpx_executor_destroy: called from a "
                                  "done-callback");
  live_remove(ex);
  if (!ex->joined && !pthread_equal(ex->mgr, pthread_self()))
    pthread_join(ex->mgr, NULL);
  /* Futures still pending here were cancelled; drop the FIFO's refs. */
  for (mpx_future *f = ex->pend_head, *n; f; f = n) {
    n = f->next;
    mpx__future_unref(f);
  }
  mpx__send_progress(&ex->sends, 1);
  mpx__msgbuf_free(&ex->mb);
  mpx__worktable_destroy(&ex->table);
  pthread_cond_destroy(&ex->mgr_cv);
  if (ex->comm != MPI_COMM_NULL) /* mpx_finalize() may have freed it */
    MPI_Comm_free(&ex->comm);
  free(ex->credits);
  free(ex->cancelled);
  mpx__registry_hold(-1);
  mpx__sync_unref(ex->sync);
  free(ex);
  *exp = NULL;
  return 0;
}

/* ---- MPI start-up helpers -------------------------------------------------
 */

static int we_initialised;

/* Initialises MPI with MPI_THREAD_MULTIPLE unless it already is. */
int mpx_init(int *argc, char ***argv) {
  int inited = 0, provided = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (rc != MPI_SUCCESS)
      return mpx__fail(MPX_EMPI, "mpx_init: MPI_Init_thread failed (%d)", rc);
    we_initialised = 1;
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_SERIALIZED)
    return mpx__fail(MPX_ETHREAD,
                     "mpx_init: MPI provides thread level %d, below "
                     "MPI_THREAD_SERIALIZED",
                     provided);
  return 0;
}

/* Finalises MPI if mpx_init initialised it. */
int mpx_finalize(void) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  /* As Python joins its executors at exit: a pool never shut down is shut
   * down here (waiting, nothing cancelled), since its workers wait in
   * their loop and MPI_Finalize would wait for them forever. Its handle
   * stays valid for mpx_executor_destroy(); only its communicator goes,
   * while MPI is still there to free it. */
  pthread_mutex_lock(&live_mu);
  for (mpx_executor *ex = live_head; ex && !finalized; ex = ex->live_next) {
    mpx_executor_shutdown(ex, 1, 0);
    if (!ex->joined && !pthread_equal(ex->mgr, pthread_self())) {
      pthread_join(ex->mgr, NULL);
      ex->joined = 1;
    }
    if (ex->comm != MPI_COMM_NULL)
      MPI_Comm_free(&ex->comm);
  }
  pthread_mutex_unlock(&live_mu);
  if (we_initialised && !finalized && MPI_Finalize() != MPI_SUCCESS)
    return mpx__fail(MPX_EMPI, "mpx_finalize: MPI_Finalize failed");
  return 0;
}
