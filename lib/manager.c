/*
 * manager.c -- the root's manager thread, the analogue of CPython's
 * _queue_management_worker, and the only thread that makes the pool's MPI
 * calls.
 *
 * The user's threads only touch the shared state under sync->mu: they push
 * futures on the pending FIFO (submit), cancel them, or ask for shutdown.
 * The manager owns the work-id table of in-flight items and the per-worker
 * credits: at most `prefetch` call items in flight per worker, each
 * carrying a batch of tasks sized from the backlog (guided
 * self-scheduling: big batches while the queue is long, single tasks near
 * its end), so a worker never waits for its next item and tiny tasks share
 * messages. A second item is queued on a busy worker only while items are
 * known to be short; long ones go to idle workers only, as a shared queue
 * would hand them out. Futures are marked RUNNING, or dropped if
 * cancelled, before their call item is sent.
 *
 * The manager must not burn a core the workers need (MPI's progress engine
 * spins). Workers report how long each task ran, so the manager knows when
 * the next result is due: it spins only when that is within its spin
 * window, otherwise sleeps that long and then backs off exponentially, on a
 * condition variable that submit signals; with nothing in flight it blocks
 * outright, and a backlog waiting for credits does not keep it awake.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/eventfd.h>

#include "manager.h"
#include "task.h"
#include "util.h"
#include "worker.h"

/* The largest head a call item may grow to before the batch is closed. */
#define HEAD_MAX ((size_t)4 << 20)

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
  /* The pending FIFO, then the futures waiting to run again. */
  for (int list = 0; list < 2; list++) {
    for (mpx_future *f = list ? ex->retry_head : ex->pend_head, *n; f; f = n) {
      n = f->next;
      f->next = NULL;
      finish_broken(0, f, &c);
    }
  }
  ex->pend_head = ex->pend_tail = ex->retry_head = ex->retry_tail = NULL;
  ex->npending = ex->nretry = 0;
  mpx__worktable_drain(&ex->table, finish_broken, &c);
  ex->inflight = 0;
  pthread_mutex_unlock(&ex->sync->mu);
  mpx__cbq_free(&q);
}

/* ---- dispatch ------------------------------------------------------------ */

/* Releases a sent future's arguments once the send completed. */
static void release_arg(void *arg) {
  mpx_future *f = arg;
  if (f->retries == 0) { /* else kept to run it again */
    free(f->arg);
    f->arg = NULL;
  }
  mpx__future_unref(f);
}

/* The root's child that rank w is, or is under (hier.c). */
static int child_of(const mpx_executor *ex, int w) {
  return ex->parent && ex->parent[w] != ex->root ? ex->parent[w] : w;
}

/* Under the lock: pops up to max futures that are still pending, marking
 * them RUNNING on worker rank w; cancelled ones are dropped, never sent.
 * A payload big enough to travel as a tail closes the batch. */
static size_t take_batch_locked(mpx_executor *ex, int w, size_t max,
                                mpx_future **out) {
  size_t n = 0, bytes = 0;
  /* Retries first, each on another worker than the one it failed on
   * where there is another. */
  for (mpx_future **pp = &ex->retry_head, *f; n < max && (f = *pp);) {
    if (f->avoid >= 0 && child_of(ex, f->avoid) == w && ex->nchildren > 1) {
      pp = &f->next;
      continue;
    }
    *pp = f->next;
    if (ex->retry_tail == f) {
      ex->retry_tail = NULL;
      for (mpx_future *t = ex->retry_head; t; t = t->next)
        ex->retry_tail = t;
    }
    ex->nretry--;
    f->next = NULL;
    f->worker = w;
    f->ran_on = -1;
    out[n++] = f;
    bytes += f->arg_len;
    if (f->arg_len >= MPX_TAIL_MIN || bytes >= HEAD_MAX)
      return n;
  }
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
    f->ran_on = -1;
    out[n++] = f;
    bytes += f->arg_len;
    if (f->arg_len >= MPX_TAIL_MIN || bytes >= HEAD_MAX)
      break;
  }
  return n;
}

/* The root's batch policy now (credits.h). */
static mpx__batch_policy policy(const mpx_executor *ex) {
  return (mpx__batch_policy){ex->nworkers, ex->opts.prefetch,
                             ex->opts.max_batch, ex->task_s, ex->span};
}

/* Whether child w is a sub-manager (hier.c). */
static int is_lead(const mpx_executor *ex, int w) {
  return ex->fan && ex->fan[w] > 0;
}

/* Workers below child w: a sub-manager's group, else 1. */
static int fan_of(const mpx_executor *ex, int w) {
  return is_lead(ex, w) ? ex->fan[w] : 1;
}

/* Encodes a batch taken for worker w and starts sending it. The futures
 * enter the work-id table before the send, so a fast reply finds them. */
static int send_batch(mpx_executor *ex, int w, mpx_future **batch, size_t n) {
  /* A sub-manager learns the worker each retry failed on, to avoid it. */
  int lead = is_lead(ex, w);
  mpx__msgbuf_begin(&ex->mb, MPX_MSG_CALL, lead ? MPX_MSG_RANKED : 0);
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
    /* A call item's status carries its time limit: 0 the pool's, else
     * 1 + the limit in ms (1: none). */
    int lim = f->limit_ms < 0 ? 0 : f->limit_ms + 1;
    int avoid = lead ? f->avoid : -1;
    if (f->arg_len >= MPX_TAIL_MIN) {
      rc = mpx__msgbuf_add_tail_ranked(&ex->mb, avoid, f->id, f->task_id, lim,
                                       f->arg, f->arg_len);
      tailf = f;
    } else {
      rc = mpx__msgbuf_add_ranked(&ex->mb, avoid, f->id, f->task_id, lim,
                                  f->arg, f->arg_len);
      if (f->retries == 0) { /* else kept to run it again */
        free(f->arg);
        f->arg = NULL;
      }
    }
  }
  if (rc)
    return mpx__fail(rc, "cannot encode a call item");
  mpx__msgbuf_finish(&ex->mb);
  atomic_fetch_add(&ex->sync->calls_sent, 1);
  atomic_fetch_add(&ex->sync->call_tasks, ex->mb.nitems);
  if (tailf)
    mpx__future_ref(tailf);
  rc = mpx__send_start(ex->comm, w, &ex->mb, tailf ? release_arg : NULL, tailf,
                       &ex->sends);
  mpx__credits_take(&ex->credits, w); /* w had a free credit */
  return rc;
}

/* Sends call items to workers with credit, breadth first: every idle
 * worker gets an item before any worker gets a second one, and among
 * equals the warmest (the one that reported last) goes first. Only the
 * workers with a free credit are visited (ex->credits keeps them in
 * lists by the items they hold), so a turn costs nothing per busy rank.
 * Returns the number of tasks sent, or a negative code when the pool must
 * break. */
static long dispatch(mpx_executor *ex, mpx_future ***bufp, size_t *capp) {
  long sent = 0;
  int prefetch = -1; /* decided under the lock, once something may go out */
  for (int held = 0; held < ex->opts.prefetch; held++) {
    if (prefetch >= 0 && held >= prefetch)
      break;
    for (int w = mpx__credits_first(&ex->credits, held), next; w >= 0;
         w = next) {
      next = mpx__credits_next(&ex->credits, w); /* before w moves */
#ifdef MPX_SMPI
      ex->sim_visits++; /* charged by mgr_step (MPX__SIM_SCAN) */
#endif
      int fan = fan_of(ex, w);
      pthread_mutex_lock(&ex->sync->mu);
      size_t backlog = ex->npending + ex->nretry;
      mpx__batch_policy p = policy(ex);
      if (prefetch < 0)
        prefetch = mpx__prefetch_now(&p, backlog);
      /* A sub-manager's credits count the items it has not handed on to
       * its workers yet (hier.c); it is sent fan times a worker's share,
       * and holds as many items as a worker would. */
      if (held >= prefetch) {
        pthread_mutex_unlock(&ex->sync->mu);
        return sent;
      }
      size_t want = mpx__batch_size(&p, backlog, prefetch, fan);
      if (mpx__grow(bufp, capp, want, sizeof **bufp, want) != 0) {
        pthread_mutex_unlock(&ex->sync->mu);
        return mpx__fail(MPX_ENOMEM, "manager out of memory");
      }
      size_t n = take_batch_locked(ex, w, want, *bufp);
      int more = ex->retry_head != NULL; /* for another worker */
      pthread_mutex_unlock(&ex->sync->mu);
      if (n == 0 && !more)
        return sent;
      if (n == 0)
        continue;
      int rc = send_batch(ex, w, *bufp, n);
      if (rc)
        return rc;
      sent += (long)n;
    }
  }
  return sent;
}

/* ---- retries ------------------------------------------------------------- */

/* Whether a failure may go away on another try: the task's process died
 * (a crash, exit(), a limit), or the task failed and the pool was asked
 * to retry those too. */
static int retryable(const mpx_executor *ex, int st) {
  return st == MPX_ECRASHED || st == MPX_EEXIT || st == MPX_ETIMELIMIT ||
         st == MPX_EMEMLIMIT ||
         (st == MPX_ETASK && ex->opts.retry_task_failures);
}

/* Queues f to run again (manager only; lock held). */
static void retry_push(mpx_executor *ex, mpx_future *f) {
  f->tries++;
  f->avoid = f->ran_on >= 0 ? f->ran_on : f->worker;
  f->next = NULL;
  if (ex->retry_tail)
    ex->retry_tail->next = f;
  else
    ex->retry_head = f;
  ex->retry_tail = f;
  ex->nretry++;
}

/* Copies len bytes, plus a NUL for a failure text. */
static void *copy_outcome(const mpx__outcome *o) {
  size_t n = o->len + (o->status != 0);
  void *p = mpx__alloc(n);
  if (p && o->len)
    memcpy(p, o->data, o->len);
  if (p && o->status != 0)
    ((char *)p)[o->len] = '\0';
  return p;
}

/* A chunk's result came back: gathers its outcomes into f->rt and, when
 * some inputs failed in a way worth retrying and tries are left (again),
 * makes f's argument a chunk of just those inputs and returns 1. Else
 * returns 0, with *res the chunk's final result (all inputs, in order). */
static int settle_chunk(mpx_executor *ex, mpx_future *f, void **res,
                        size_t *rlen, int again) {
  uint64_t n = 0;
  if (!f->arg || mpx__chunk_arg_parse(f->arg, f->arg_len, &n, NULL) != 0)
    return 0;
  mpx__outcome *in = calloc(n ? n : 1, sizeof *in);
  mpx__outcome *oc = calloc(n ? n : 1, sizeof *oc);
  int requeue = 0;
  if (!in || !oc || mpx__chunk_result_parse(*res, *rlen, n, oc) != 0)
    goto out;
  mpx__chunk_arg_parse(f->arg, f->arg_len, &n, in);
  uint64_t bad = 0;
  for (uint64_t k = 0; k < n; k++)
    bad += retryable(ex, oc[k].status) != 0;
  if (bad == 0 && !f->rt)
    goto out; /* the common case: nothing to gather */
  mpx__retry *rt = f->rt;
  if (!rt) {
    rt = calloc(1, sizeof *rt);
    if (!rt || !(rt->st = calloc(n, sizeof *rt->st)) ||
        !(rt->res = calloc(n, sizeof *rt->res)) ||
        !(rt->rl = calloc(n, sizeof *rt->rl)) ||
        !(rt->map = calloc(n, sizeof *rt->map))) {
      mpx__retry_free(rt);
      goto out; /* no memory: the outcomes stand as they are */
    }
    rt->n = rt->nmap = n;
    for (uint64_t k = 0; k < n; k++)
      rt->map[k] = k;
    f->rt = rt;
  }
  for (uint64_t k = 0; k < n && k < rt->nmap; k++) {
    uint64_t i = rt->map[k];
    free(rt->res[i]);
    rt->st[i] = oc[k].status;
    rt->res[i] = copy_outcome(&oc[k]);
    rt->rl[i] = rt->res[i] ? oc[k].len + (oc[k].status != 0) : 0;
    if (!rt->res[i] && oc[k].status == 0)
      rt->st[i] = MPX_ENOMEM;
  }
  if (again && bad > 0) {
    mpx__chunkbuf cb = {0};
    uint64_t *map = calloc(bad, sizeof *map), m = 0;
    int ok = map != NULL;
    for (uint64_t k = 0; ok && k < n; k++) {
      if (!retryable(ex, oc[k].status))
        continue;
      ok = mpx__chunkbuf_add(&cb, in[k].data, in[k].len) == 0;
      map[m++] = rt->map[k];
    }
    size_t alen = 0;
    void *arg = mpx__chunkbuf_finish(&cb, &alen);
    if (ok && arg) {
      free(f->arg);
      f->arg = arg;
      f->arg_len = alen;
      free(rt->map);
      rt->map = map;
      rt->nmap = m;
      requeue = 1;
      goto out;
    }
    free(arg);
    free(map);
  }
  void *packed = NULL;
  size_t plen = 0;
  if (mpx__chunk_result_pack(rt->n, rt->st, rt->res, rt->rl, &packed, &plen) ==
      0) {
    free(*res);
    *res = packed;
    *rlen = plen;
  }
  mpx__retry_free(rt);
  f->rt = NULL;
out:
  free(in);
  free(oc);
  return requeue;
}

/* Adds "(ran N times)" to a failure's text after retries. */
static char *annotate(char *err, int runs) {
  if (!err)
    return err;
  size_t n = strlen(err);
  char *m = realloc(err, n + 48);
  if (!m)
    return err;
  snprintf(m + n, 48, " (ran %d times)", runs);
  return m;
}

/* Decides what a finished run of f means (lock held): runs it again
 * (returns 1; the work table's reference moves to the retry list), or
 * leaves the outcome in *st, *res, *rlen, *err for the caller to finish
 * the future with (returns 0). */
static int settle_locked(mpx_executor *ex, mpx_future *f, int *st, void **res,
                         size_t *rlen, char **err) {
  if (f->retries == 0)
    return 0;
  int again =
      f->tries < f->retries && !atomic_load(&ex->cancel_req) && !ex->broken;
  int requeue = 0;
  if (*st == 0 && (f->task_id & MPX__TASK_CHUNK)) {
    requeue = settle_chunk(ex, f, res, rlen, again);
  } else if (*st != 0 && again && retryable(ex, *st)) {
    requeue = 1;
  }
  if (requeue) {
    if (!(f->task_id & MPX__TASK_CHUNK) || *st != 0) {
      free(*err);
      *err = NULL;
    }
    free(*res);
    *res = NULL;
    retry_push(ex, f);
    return 1;
  }
  if (*st != 0 && f->tries > 0)
    *err = annotate(*err, f->tries + 1);
  if (f->arg_len < MPX_TAIL_MIN) { /* a tail is freed by its send */
    free(f->arg);
    f->arg = NULL;
  }
  return 0;
}

/* Settles one outcome of f (lock held): cancelled if it never started,
 * run again, or finished. Drops the work table's reference unless f
 * runs again. Takes res and err. */
static void complete_locked(mpx_executor *ex, mpx_future *f, int st, void *res,
                            size_t rlen, char *err, mpx__cbq *q) {
  if (st == MPX_ECANCELED) { /* sent, never started: cancelled */
    free(res);
    free(err);
    mpx__future_cancel_sent_locked(f, q);
  } else if (settle_locked(ex, f, &st, &res, &rlen, &err)) {
    return;
  } else {
    mpx__future_finish_locked(f, st, res, res ? rlen : 0, err, q);
  }
  mpx__future_unref(f);
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
  int ranked = (r->hdr.flags & MPX_MSG_RANKED) != 0;
  pthread_mutex_lock(&ex->sync->mu);
  while (mpx__msg_next(r->head, &r->hdr, &pos, r->tail, &it)) {
    if (ranked && it.work_id == 0) {
      /* A sub-manager's own failure (hier.c): the pool breaks. */
      int st = it.status < 0 ? it.status : MPX_EPROTO;
      rc = mpx__fail(st, "sub-manager rank %d: %.*s", r->src,
                     (int)(it.len < 400 ? it.len : 400),
                     it.len ? (const char *)it.data : "");
      break;
    }
    mpx_future *f = mpx__worktable_get(&ex->table, it.work_id);
    if (!f || f->worker != r->src) {
      rc = mpx__fail(MPX_EPROTO, "rank %d returned unknown work id %llu",
                     r->src, (unsigned long long)it.work_id);
      break;
    }
    busy_us += it.task_id; /* in results: the worker's run time */
    f->ran_on = ranked ? it.rank : r->src;
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
      /* The task's failure, a task unknown there, a worker out of memory
       * (not the task's fault: a job does not record it), a task process's
       * death, or an initializer that broke the worker's processes. */
      if (st != MPX_ETASK && st != MPX_ENOTASK && st != MPX_ENOMEM &&
          st != MPX_ECANCELED && st != MPX_ECRASHED && st != MPX_EEXIT &&
          st != MPX_ETIMELIMIT && st != MPX_EMEMLIMIT && st != MPX_EBROKEN &&
          st != MPX_ESYS && st != MPX_EINTR)
        st = MPX_EPROTO;
      if (st != MPX_ECANCELED)
        err = strndup(it.data, (size_t)it.len);
    }
    ntasks += st != MPX_ECANCELED;
    complete_locked(ex, f, st, res, (size_t)it.len, err, q);
  }
  pthread_mutex_unlock(&ex->sync->mu);
  for (unsigned e = rc == 0 ? mpx__msg_ends(&r->hdr) : 0; e > 0; e--)
    if (mpx__credits_give(&ex->credits, r->src) != 0) {
      rc = mpx__fail(MPX_EPROTO, "rank %d ended a call item it did not hold",
                     r->src);
      break;
    }
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
  if (!atomic_load(&ex->call_pending))
    return;
  pthread_mutex_lock(&ex->sync->mu);
  void (*fn)(void) = ex->call;
  pthread_mutex_unlock(&ex->sync->mu);
  if (!fn)
    return;
  fn();
  pthread_mutex_lock(&ex->sync->mu);
  ex->call = NULL;
  atomic_store(&ex->call_pending, 0);
  pthread_cond_broadcast(&ex->sync->cv);
  pthread_mutex_unlock(&ex->sync->mu);
}

/* Wakes the manager for new work or a shutdown (lock held). */
void mpx__manager_kick_locked(mpx_executor *ex) {
  ex->kicked = 1;
  if (ex->mgr_sleeping) {
    pthread_cond_signal(&ex->mgr_cv);
    if (ex->wake_fd >= 0) {
      uint64_t one = 1;
      ssize_t w = write(ex->wake_fd, &one, sizeof one);
      (void)w; /* a full counter is awake already */
    }
  }
}

/* A cancelling shutdown: futures waiting to run again will not; they end
 * CANCELLED, as calls sent but not started. Manager only. */
static void cancel_retries(mpx_executor *ex) {
  mpx__cbq q = {0};
  pthread_mutex_lock(&ex->sync->mu);
  for (mpx_future *f = ex->retry_head, *n; f; f = n) {
    n = f->next;
    f->next = NULL;
    mpx__future_cancel_sent_locked(f, &q);
    mpx__future_unref(f);
  }
  ex->retry_head = ex->retry_tail = NULL;
  ex->nretry = 0;
  pthread_mutex_unlock(&ex->sync->mu);
  mpx__cbq_run(&q);
  mpx__cbq_free(&q);
}

/* Passes a shutdown's cancel_futures on to the workers: each worker that
 * holds call items gets a CANCEL on the control tag and answers the tasks
 * it has not started with MPX_ECANCELED. Manager only. */
static int send_cancels(mpx_executor *ex) {
  int want = atomic_load(&ex->terminate_req) ? MPX__CTL_TERMINATE
             : atomic_load(&ex->cancel_req)  ? MPX__CTL_CANCEL
                                             : 0;
  if (want <= ex->cancels_sent)
    return 0;
  if (!ex->cancels_sent)
    cancel_retries(ex);
  ex->cancels_sent = want;
  for (int w = 0; w < ex->size; w++) {
    int held = mpx__credits_held(&ex->credits, w);
    if (held < 0 || (held == 0 && !is_lead(ex, w)))
      continue; /* the root, a worker holding nothing (a sub-manager may
                   have handed everything on: its workers hold it) */
    int rc = MPI_Send(&want, 1, MPI_INT, w, MPX_TAG_CTL, ex->comm);
    if (rc != MPI_SUCCESS)
      return mpx__mpi_fail(rc, "MPI_Send of a cancel");
    ex->cancelled[w]++;
  }
  return 0;
}

/* Whether the manager may stop: shut down and nothing left to do. */
static int mgr_finished(mpx_executor *ex) {
  pthread_mutex_lock(&ex->sync->mu);
  int done = ex->shutdown && !ex->pend_head && !ex->retry_head;
  pthread_mutex_unlock(&ex->sync->mu);
  return done && ex->inflight == 0;
}

/* The root's children for mpx__release: every worker when flat, else
 * the sub-managers and plain workers. */
static int child_at(void *arg, int w, int *ctl) {
  mpx_executor *ex = arg;
  if (w == ex->root || child_of(ex, w) != w)
    return -1;
  *ctl = ex->cancelled ? ex->cancelled[w] : 0;
  return w;
}

/* Tells every worker to leave its loop, then receives until each has
 * acknowledged. A worker's acknowledgement is its last message, so after it
 * nothing of the pool is in flight: results still on the way (after a
 * breakage) are discarded here instead of surfacing in a later pool whose
 * communicator reuses this one's context id. Only the root's children are
 * told: a sub-manager releases its own workers. */
void mpx__manager_release_workers(mpx_executor *ex) {
  mpx__release(ex->comm, ex->size, child_at, ex, &ex->mb, &ex->sends);
  mpx__send_progress(&ex->sends, 1);
}

/* One turn of the multi-rank manager: results first (they return credits
 * for the dispatch), then dispatch, cancels, a call left for the manager,
 * sends. Returns 1 when something moved, 0 when nothing did, -1 once the
 * pool has ended (finished after shutdown, or broken): the workers are
 * then released and mgr_done is set. Run by the manager thread, or with
 * caller progress by the thread that holds step_mu. */
static int mgr_step(mpx_executor *ex) {
  mpx__mgr_loop *L = &ex->loop;
  if (L->ended)
    return -1;
  int progress = 0, rc = 0;
  for (int i = 0; i < 256; i++) {
    mpx__recvd r;
    int got = mpx__recv_poll(ex->comm, &r);
    if (got <= 0) {
      rc = got;
      break;
    }
    rc = handle_result(ex, &r, &L->q);
    mpx__recvd_free(&r);
    progress = 1;
    if (rc)
      break;
  }
  mpx__cbq_run(&L->q);
  if (rc == 0) {
    long sent = dispatch(ex, &L->buf, &L->cap);
#ifdef MPX_SMPI
    mpx__sim_charge(MPX__SIM_SCAN, (double)ex->sim_visits);
    ex->sim_visits = 0;
#endif
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
  if (rc)
    break_pool(ex, rc, mpx_last_error());
  if (rc || mgr_finished(ex)) {
    L->ended = 1;
    mpx__cbq_free(&L->q);
    free(L->buf);
    L->buf = NULL;
    mpx__manager_release_workers(ex);
    pthread_mutex_lock(&ex->sync->mu);
    ex->mgr_done = 1;
    pthread_cond_broadcast(&ex->sync->cv);
    pthread_mutex_unlock(&ex->sync->mu);
    return -1;
  }
  if (progress)
    L->last_active = mpx__now();
  return progress;
}

/* How long to wait before the next turn after one that moved nothing
 * (microseconds; 0: turn again at once), growing from *sleep_us. The
 * next result is due in about `gap` seconds: sleep that long first
 * rather than 1 us, since every wake-up on a full node preempts a worker,
 * and the workers' prefetched items keep them busy meanwhile. Spin only
 * while results come back faster than the spin window: with millisecond
 * tasks spinning would take the core from a worker. Nothing in flight:
 * nothing can arrive, so wait for a submit (the 100 ms only bound how long
 * an error from MPI could go unseen). */
static long mgr_idle_us(mpx_executor *ex, int moved, long *sleep_us) {
  if (moved) {
    long us = (long)(ex->gap * 1e6);
    *sleep_us = us < 1 ? 1 : us > ex->sleep_max_us ? ex->sleep_max_us : us;
    return 0;
  }
  if (ex->gap < ex->spin_s && mpx__now() - ex->loop.last_active < ex->spin_s)
    return 0;
  if (ex->inflight == 0)
    return 100000;
  long us = *sleep_us;
  *sleep_us = us * 2 < ex->sleep_max_us ? us * 2 : ex->sleep_max_us;
  return us;
}

/* The multi-rank manager loop. */
static void manager_mpi(mpx_executor *ex) {
  ex->loop.last_active = mpx__now();
  long sleep_us = 1;
  for (;;) {
    double t0 = mpx__now();
    int moved = mgr_step(ex);
    if (moved < 0)
      break;
    long us = mgr_idle_us(ex, moved, &sleep_us);
    if (us > 0)
      mgr_sleep(ex, us);
    else if (!moved)
      mpx__cpu_relax();
    if (!moved) /* an empty poll and its back-off: idle, not work */
      mpx__sync_idle_add(ex->sync, mpx__now() - t0);
  }
}

/* ---- caller progress ---------------------------------------------------- */

/* Whether this thread may make the pool's MPI calls. */
static int may_turn(const mpx_executor *ex) {
  if (!ex->funneled)
    return 1;
  int main_thread = 0;
  MPI_Is_thread_main(&main_thread);
  return main_thread;
}

/* One turn on a caller's thread (step_mu held): its done-callbacks may not
 * wait, as on the manager thread. Returns mgr_step()'s result. */
static int caller_step(mpx_executor *ex) {
  int saved = mpx__future_no_block();
  mpx__future_set_no_block(1);
  int moved = mgr_step(ex);
  mpx__future_set_no_block(saved);
  return moved;
}

/* One turn of a pool progressed by its callers (the sync's progress hook):
 * returns how long the caller should wait before the next turn, in
 * microseconds (0: at once). Only one thread turns at a time (step_mu);
 * under MPI_THREAD_FUNNELED only the main thread does, and the others
 * wait for its completions. */
static long caller_turn(void *arg) {
  mpx_executor *ex = arg;
  if (!may_turn(ex))
    return ex->sleep_max_us;
  if (pthread_mutex_trylock(&ex->step_mu) != 0)
    return 50; /* another thread turns: its completions wake this one */
  double t0 = mpx__now();
  int moved = caller_step(ex);
  if (moved == 0) /* a poll that found nothing: idle, not work */
    mpx__sync_idle_add(ex->sync, mpx__now() - t0);
  long us = moved < 0 ? 0 : mgr_idle_us(ex, moved, &ex->caller_sleep_us);
  pthread_mutex_unlock(&ex->step_mu);
  /* No thread sleeps on mgr_cv to be woken by a submit here. */
  return us < ex->sleep_max_us ? us : ex->sleep_max_us;
}

long mpx__manager_caller_turn(mpx_executor *ex) {
  return caller_turn(ex);
}

int mpx__manager_caller_setup(mpx_executor *ex, int provided) {
  ex->loop.last_active = mpx__now();
  ex->caller_sleep_us = 1;
  /* Under MPI_THREAD_SINGLE the rank has one thread: no check needed. */
  ex->funneled = provided == MPI_THREAD_FUNNELED;
  if (pthread_mutex_init(&ex->step_mu, NULL) != 0)
    return MPX_ESYS;
  mpx__sync_set_progress(ex->sync, caller_turn, ex);
  return 0;
}

/* Turns after submits are at least this far apart (s) once every child
 * of the root has work (fewer tasks in flight than the root's workers or
 * sub-managers: at once, so that a short burst of submits followed by
 * computing leaves no flat worker idle; test_sched's cancel_sent): a
 * program that submits in a loop would otherwise send each
 * task as its own call item, at about 3 us of the root's time each (the
 * SMPI sweep showed the root saturated by that alone at 1,024 ranks);
 * spaced out, the submits in between leave together, in batches sized
 * from the backlog. */
#define SUBMIT_TURN_S 20e-6

void mpx__manager_submitted(mpx_executor *ex) {
  if (!may_turn(ex) || pthread_mutex_trylock(&ex->step_mu) != 0)
    return;
  if (ex->inflight < (size_t)ex->nchildren) { /* a child is idle */
    caller_step(ex);
  } else if (ex->inflight < (size_t)ex->nworkers * (size_t)ex->opts.prefetch ||
             ++ex->submits % 16 == 0) {
    double now = mpx__now();
    if (now - ex->submit_turn >= SUBMIT_TURN_S) {
      ex->submit_turn = now;
      caller_step(ex);
    }
  }
  pthread_mutex_unlock(&ex->step_mu);
}

int mpx__manager_turn(mpx_executor *ex, int *moved) {
  *moved = 0;
  if (!may_turn(ex))
    return mpx__fail(MPX_ETHREAD,
                     "MPI provides MPI_THREAD_FUNNELED: only the main "
                     "thread may progress the pool");
  pthread_mutex_lock(&ex->step_mu);
  int m = caller_step(ex);
  if (m > 0)
    ex->caller_sleep_us = 1;
  pthread_mutex_unlock(&ex->step_mu);
  *moved = m > 0;
  return 0;
}

void mpx__manager_caller_run(mpx_executor *ex) {
  for (;;) {
    pthread_mutex_lock(&ex->sync->mu);
    int done = ex->mgr_done;
    pthread_mutex_unlock(&ex->sync->mu);
    if (done)
      return;
    long us = caller_turn(ex);
    if (us > 0) {
      double t0 = mpx__now();
      mpx__sleep_us((unsigned)us);
      mpx__sync_idle_add(ex->sync, mpx__now() - t0);
    } else {
      mpx__cpu_relax();
    }
  }
}

/* Runs the pool's initializer on the manager thread of a one-rank pool
 * without isolation; a failure breaks the pool. Returns 0 or MPX_EBROKEN. */
static int local_initializer(mpx_executor *ex, int rank) {
  if (ex->init.id < 0)
    return 0;
  void *res = NULL;
  size_t rlen = 0;
  int st = mpx__task_run((uint32_t)ex->init.id, ex->init.arg, ex->init.len,
                         rank, 1, &res, &rlen);
  if (st != 0) {
    char msg[600];
    snprintf(msg, sizeof msg, "the initializer failed: %s",
             res ? (const char *)res : "?");
    break_pool(ex, MPX_EBROKEN, msg);
  }
  free(res);
  return st ? MPX_EBROKEN : 0;
}

/* The single-rank manager without isolation: it is also the worker
 * thread, running each pending task in turn inside the root process. */
static void manager_local(mpx_executor *ex) {
  int rank = 0;
  mpx__cbq q = {0};
  MPI_Comm_rank(ex->comm, &rank);
  if (local_initializer(ex, rank) != 0)
    return;
  for (;;) {
    mpx_future *f = NULL;
    pthread_mutex_lock(&ex->sync->mu);
    while (!f && (ex->pend_head || ex->retry_head)) {
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
    if (st == 0)
      complete_locked(ex, f, 0, res, rlen, NULL, &q);
    else
      complete_locked(ex, f, st, NULL, 0, res, &q);
    pthread_mutex_unlock(&ex->sync->mu);
    mpx__cbq_run(&q);
  }
  mpx__cbq_free(&q);
}

/* Futures a one-rank pool with isolation hands to its task processes
 * ahead of time: enough to keep each busy for the prefetch span, at least
 * two each (one running, one queued), so futures stay cancellable while
 * tasks are long. */
static size_t local_ahead(const mpx_executor *ex, int nprocs) {
  double per = ex->task_s > 0 ? ex->span / ex->task_s : 2;
  per = per < 2 ? 2 : per > 64 ? 64 : per;
  return (size_t)nprocs * (size_t)per;
}

/* The single-rank manager with isolation: a local process pool, as
 * ProcessPoolExecutor(max_workers=processes). It waits in poll() on the
 * task processes and on an eventfd that submit and shutdown write. */
static void manager_local_isolated(mpx_executor *ex) {
  int rank = 0;
  MPI_Comm_rank(ex->comm, &rank);
  int nprocs =
      ex->opts.processes > 0 ? ex->opts.processes : mpx__cpus_allowed();
  mpx__sup_config c;
  mpx__sup_config_init(&c, &ex->opts, &ex->init, rank, 1, nprocs);
  mpx__sup *sup = NULL;
  int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0 || mpx__sup_create(&c, &sup) != 0) {
    if (efd >= 0)
      close(efd);
    break_pool(ex, efd < 0 ? MPX_ESYS : MPX_ENOMEM,
               efd < 0 ? "cannot create an eventfd" : mpx_last_error());
    return;
  }
  mpx__sup_set_wake(sup, efd);
  pthread_mutex_lock(&ex->sync->mu);
  ex->wake_fd = efd;
  pthread_mutex_unlock(&ex->sync->mu);
  mpx__cbq q = {0};
  int cancelled = 0, terminated = 0;
  for (;;) {
    /* Hand futures over while the processes are short of work. */
    size_t ahead = local_ahead(ex, nprocs);
    while (mpx__sup_running(sup) < ahead) {
      mpx_future *f = NULL;
      pthread_mutex_lock(&ex->sync->mu);
      size_t n = take_batch_locked(ex, rank, 1, &f);
      pthread_mutex_unlock(&ex->sync->mu);
      if (n == 0)
        break;
      double lim = f->limit_ms < 0 ? -1 : f->limit_ms / 1000.0;
      /* In the work table, as in a pool of ranks, so that a breakage
       * finishes it. */
      int rc = mpx__worktable_put(&ex->table, f->id, f);
      if (rc == 0 && (rc = mpx__sup_add(sup, f->id, f->task_id, f->arg,
                                        f->arg_len, lim)) != 0)
        mpx__worktable_pop(&ex->table, f->id);
      if (rc != 0) {
        char *m = strdup(mpx_last_error());
        pthread_mutex_lock(&ex->sync->mu);
        complete_locked(ex, f, rc, NULL, 0, m, &q);
        pthread_mutex_unlock(&ex->sync->mu);
      } else {
        ex->inflight++;
      }
    }
    mpx__cbq_run(&q);
    if (!cancelled && atomic_load(&ex->cancel_req)) {
      cancelled = 1;
      cancel_retries(ex);
    }
    if (!terminated && atomic_load(&ex->terminate_req)) {
      terminated = cancelled = 1;
      mpx__sup_cancel(sup, 1);
    } else if (cancelled == 1) {
      cancelled = 2;
      mpx__sup_cancel(sup, 0);
    }
    if (mgr_finished(ex))
      break;
    /* Replace a task process that died, while nothing waits for it. */
    if (mpx__sup_running(sup) == 0)
      mpx__sup_prestart(sup);
    /* Block unless something arrived since the last look. */
    double wait = -1;
    pthread_mutex_lock(&ex->sync->mu);
    if (ex->kicked)
      wait = 0;
    else
      ex->mgr_sleeping = 1;
    ex->kicked = 0;
    pthread_mutex_unlock(&ex->sync->mu);
    mpx__sup_outcome oc;
    int got = mpx__sup_next(sup, wait, &oc);
    pthread_mutex_lock(&ex->sync->mu);
    ex->mgr_sleeping = 0;
    pthread_mutex_unlock(&ex->sync->mu);
    uint64_t drain;
    while (read(efd, &drain, sizeof drain) > 0)
      ;
    if (got < 0) {
      break_pool(ex, got, mpx_last_error());
      break;
    }
    while (got == 1) {
      mpx_future *f = mpx__worktable_get(&ex->table, oc.tag);
      if (!f) { /* finished by a breakage meanwhile */
        free(oc.data);
        got = mpx__sup_next(sup, 0, &oc);
        continue;
      }
      mpx__worktable_pop(&ex->table, oc.tag);
      ex->inflight--;
      double t = 1e-6 * oc.busy_us;
      if (oc.status != MPX_ECANCELED)
        ex->task_s = ex->task_s < 0 ? t : 0.75 * ex->task_s + 0.25 * t;
      pthread_mutex_lock(&ex->sync->mu);
      if (oc.status == 0)
        complete_locked(ex, f, 0, oc.data, oc.len, NULL, &q);
      else
        complete_locked(ex, f, oc.status, NULL, 0, oc.data, &q);
      pthread_mutex_unlock(&ex->sync->mu);
      got = mpx__sup_next(sup, 0, &oc);
      if (got < 0) {
        mpx__cbq_run(&q);
        break_pool(ex, got, mpx_last_error());
        goto out;
      }
    }
    mpx__cbq_run(&q);
  }
out:
  mpx__cbq_free(&q);
  pthread_mutex_lock(&ex->sync->mu);
  ex->wake_fd = -1;
  pthread_mutex_unlock(&ex->sync->mu);
  mpx__sup_destroy(sup);
  close(efd);
}

void *mpx__manager_main(void *arg) {
  mpx_executor *ex = arg;
  mpx__future_set_no_block(1);
  mpx__low_timer_slack();
  if (ex->local && ex->opts.isolation == MPX_ISOLATION_PROCESS)
    manager_local_isolated(ex);
  else if (ex->local)
    manager_local(ex);
  else
    manager_mpi(ex);
  pthread_mutex_lock(&ex->sync->mu);
  ex->mgr_done = 1;
  pthread_cond_broadcast(&ex->sync->cv);
  pthread_mutex_unlock(&ex->sync->mu);
  return NULL;
}
