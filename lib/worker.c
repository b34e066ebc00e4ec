/*
 * worker.c -- the worker loop. It waits for call items with a spin-then-
 * sleep back-off (Open MPI's progress engine spins, and an idle worker must
 * leave the core to the busy ones), runs each task of a call item, and
 * sends results back batched: a batch's results go out when it ends or once
 * the oldest unsent result is flush_interval old, so tiny tasks share
 * messages while slow ones are reported promptly. The last result message
 * of a call item carries END_OF_CALL, which returns the root's credit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "supervise.h"
#include "task.h"
#include "transport.h"
#include "util.h"
#include "worker.h"

typedef struct wstate {
  MPI_Comm comm;
  int root, rank, size;
  mpx__msgbuf out; /* results not yet sent */
  double first_unsent;
  mpx__send *sends;  /* in progress */
  int fault;         /* test fault injection, see MPX_TEST_FAULT */
  int cancelling;    /* a CANCEL came: answer every task not yet started
                        with MPX_ECANCELED until the STOP */
  double last_check; /* when the control tag was last probed */
  int terminating;   /* the CANCEL was a terminate: kill running tasks */
  int ctl_count;     /* control messages received */
  mpx__sup *sup;     /* the task process (isolation), or NULL */
  char broken[600];  /* the initializer failed (no isolation) */
} wstate;

/* Receives a CANCEL from the root if one is waiting (or, with wait set,
 * blocks until it arrives). Returns 0 or MPX_EMPI. */
static int check_cancel(wstate *w, int wait) {
  int one = 0, got = mpx__ctl_recv(w->comm, w->root, wait, &one);
  if (got < 0)
    return got;
  if (got) {
    w->cancelling = 1;
    w->ctl_count++;
    if (one == MPX__CTL_TERMINATE)
      w->terminating = 1;
  }
  w->last_check = mpx__now();
  return 0;
}

/* Sends the results gathered in w->out, if any (or an empty END_OF_CALL
 * message when end is set and nothing is pending). */
static int flush(wstate *w, int end, void *tail_owner) {
  if (w->out.nitems == 0 && !end)
    return 0;
  if (end)
    w->out.flags |= MPX_MSG_END_OF_CALL;
  mpx__msgbuf_finish(&w->out);
  if (w->fault == 1 && w->out.len >= 4) {
    w->out.buf[0] ^= 0xffu; /* corrupt the magic: the root must cope */
    w->fault = 0;
  }
  int rc = mpx__send_start(w->comm, w->root, &w->out, tail_owner ? free : NULL,
                           tail_owner, &w->sends);
  mpx__msgbuf_begin(&w->out, MPX_MSG_RESULT, 0);
  return rc;
}

/* Sends the acknowledgement of a STOP: an empty STOP message. */
static int send_ack(wstate *w) {
  mpx__msgbuf_begin(&w->out, MPX_MSG_STOP, 0);
  mpx__msgbuf_finish(&w->out);
  return mpx__send_start(w->comm, w->root, &w->out, NULL, NULL, &w->sends);
}

/* Adds one task's outcome to the results of the call item (a large
 * result travels alone as a tail, without a copy), and sends them when the
 * call item is done (last) or they are due: flush_interval old, or would
 * be by the time a task of next_run seconds ends. Takes res. */
static int emit(wstate *w, uint64_t work_id, uint32_t busy, int st, void *res,
                size_t rlen, int last, double next_run,
                const mpx_executor_options *o) {
  int rc;
  if (w->out.nitems == 0)
    w->first_unsent = mpx__now();
  if (rlen >= MPX_TAIL_MIN) {
    if ((rc = flush(w, 0, NULL)) != 0) {
      free(res);
      return rc;
    }
    rc = mpx__msgbuf_add_tail(&w->out, work_id, busy, st, res, rlen);
    if (rc == 0)
      return flush(w, last, res);
    free(res);
    return rc;
  }
  rc = mpx__msgbuf_add(&w->out, work_id, busy, st, res, rlen);
  if (rc && res) {
    /* Out of memory for the result: report the failure in its place. */
    static const char oom[] = "out of memory on the worker";
    rc = mpx__msgbuf_add(&w->out, work_id, busy, MPX_ENOMEM, oom,
                         sizeof oom - 1);
  }
  free(res);
  if (rc)
    return rc;
  if (last)
    return flush(w, 1, NULL);
  if (mpx__now() - w->first_unsent + next_run >= o->flush_interval)
    return flush(w, 0, NULL);
  return 0;
}

/* Runs every task of one call item in this process and sends its results.
 * Between tasks it honours the flush interval (emit) and looks for a
 * CANCEL at the same moments, so tiny tasks pay neither. */
static int run_call(wstate *w, mpx__recvd *r, const mpx_executor_options *o) {
  size_t pos = 0;
  mpx__msg_item it;
  uint32_t left = r->hdr.nitems;
  double last_run = 0;
  while (mpx__msg_next(r->head, &r->hdr, &pos, r->tail, &it)) {
    left--;
    void *res = NULL;
    size_t rlen = 0;
    double t0 = mpx__now();
    int rc, st;
    if (!w->cancelling && t0 - w->last_check + last_run >= o->flush_interval &&
        (rc = check_cancel(w, 0)) != 0)
      return rc;
    if (w->cancelling) {
      st = MPX_ECANCELED; /* never started: the root cancels its future */
    } else if (w->broken[0]) {
      st = MPX_EBROKEN;
      res = strdup(w->broken);
      rlen = res ? strlen(res) : 0;
    } else {
      st = mpx__task_run(it.task_id, it.data, (size_t)it.len, w->rank, w->size,
                         &res, &rlen);
    }
    double t1 = mpx__now(), us = (t1 - t0) * 1e6;
    uint32_t busy = us >= 4294967295.0 ? UINT32_MAX : (uint32_t)us;
    last_run = t1 - t0;
    if ((rc = emit(w, it.work_id, busy, st, res, rlen, left == 0, last_run,
                   o)) != 0)
      return rc;
  }
  if (r->hdr.nitems == 0)
    return flush(w, 1, NULL);
  return 0;
}

/* Runs the tasks of one call item in the rank's task process (isolation)
 * and sends their results as they come, checking for a CANCEL or a
 * terminate every few milliseconds meanwhile. */
static int run_call_isolated(wstate *w, mpx__recvd *r,
                             const mpx_executor_options *o) {
  size_t pos = 0, n = 0, done = 0;
  mpx__msg_item it;
  int rc = 0;
  while (mpx__msg_next(r->head, &r->hdr, &pos, r->tail, &it)) {
    n++;
    if (w->cancelling) {
      done++;
      rc = emit(w, it.work_id, 0, MPX_ECANCELED, NULL, 0, done == r->hdr.nitems,
                0, o);
    } else if ((rc = mpx__sup_add(
                    w->sup, it.work_id, it.task_id, it.data, (size_t)it.len,
                    it.status <= 0 ? -1 : (it.status - 1) / 1000.0)) != 0) {
      /* A malformed chunk or no memory: this item fails in place. */
      done++;
      char *m = strdup(mpx_last_error());
      rc = emit(w, it.work_id, 0, rc, m, m ? strlen(m) : 0,
                done == r->hdr.nitems, 0, o);
    }
    if (rc)
      return rc;
  }
  if (n == 0)
    return flush(w, 1, NULL);
  while (done < n) {
    double wait = 0.002; /* how often the control tag is looked at */
    if (w->out.nitems) {
      double due = w->first_unsent + o->flush_interval - mpx__now();
      wait = due < 0 ? 0 : due < wait ? due : wait;
    }
    mpx__sup_outcome oc;
    int got = mpx__sup_next(w->sup, wait, &oc);
    if (got < 0)
      return got;
    if (got == 1) {
      done++;
      if ((rc = emit(w, oc.tag, oc.busy_us, oc.status, oc.data, oc.len,
                     done == n, 0, o)) != 0)
        return rc;
      continue;
    }
    if (w->out.nitems && mpx__now() - w->first_unsent >= o->flush_interval &&
        (rc = flush(w, 0, NULL)) != 0)
      return rc;
    if ((rc = mpx__send_progress(&w->sends, 0)) != 0)
      return rc;
    int was = w->cancelling, was_term = w->terminating;
    if ((rc = check_cancel(w, 0)) != 0)
      return rc;
    if ((w->cancelling && !was) || (w->terminating && !was_term))
      mpx__sup_cancel(w->sup, w->terminating);
  }
  return 0;
}

/* Runs the pool's initializer once in this rank (no isolation: in the
 * rank's own process). A failure is kept: every task then fails with
 * MPX_EBROKEN and its message, as Python's pools break. */
static void run_initializer(wstate *w, const mpx__pool_init *pi) {
  if (pi->id < 0)
    return;
  void *res = NULL;
  size_t rlen = 0;
  int st = mpx__task_run((uint32_t)pi->id, pi->arg, pi->len, w->rank, w->size,
                         &res, &rlen);
  if (st != 0) {
    snprintf(w->broken, sizeof w->broken, "the initializer failed: %s",
             res ? (const char *)res : "?");
  }
  free(res);
}

int mpx__worker_loop(MPI_Comm comm, int root, const mpx_executor_options *o,
                     const mpx__pool_init *pi) {
  wstate w = {0};
  w.comm = comm;
  w.root = root;
  MPI_Comm_rank(comm, &w.rank);
  MPI_Comm_size(comm, &w.size);
  w.fault = (int)mpx__env_long("MPX_TEST_FAULT", 0);
  mpx__low_timer_slack();
  mpx__msgbuf_begin(&w.out, MPX_MSG_RESULT, 0);
  if (o->isolation == MPX_ISOLATION_PROCESS) {
    mpx__sup_config c;
    mpx__sup_config_init(&c, o, pi, w.rank, w.size, 1);
    if (mpx__sup_create(&c, &w.sup) != 0) /* out of memory: tasks fail */
      snprintf(w.broken, sizeof w.broken, "%s", mpx_last_error());
  } else {
    run_initializer(&w, pi);
  }
  mpx__backoff idle;
  mpx__backoff_init(&idle);
  int rc = 0;
  for (;;) {
    mpx__recvd r;
    int got = mpx__recv_poll(comm, &r);
    if (got < 0) {
      if (got == MPX_EPROTO)
        continue; /* garbage on the pool's own communicator: dropped (the
                     library prints nothing; mpx_last_error() says why) */
      rc = got;
      break;
    }
    if (got == 0) {
      if ((rc = mpx__send_progress(&w.sends, 0)) != 0)
        break;
      mpx__backoff_idle(&idle);
      continue;
    }
    if (r.hdr.kind == MPX_MSG_STOP) {
      /* The acknowledgement follows every result of this worker on the same
       * tag, so once the root has it nothing of ours is still on the way,
       * and no stale message can reach a later pool whose communicator
       * reuses this one's context id. */
      int want = (r.hdr.flags & MPX_MSG_CANCEL_SENT)
                     ? 1 + ((r.hdr.flags & MPX_MSG_TWO_CTL) != 0)
                     : 0;
      mpx__recvd_free(&r);
      while (w.ctl_count < want && (rc = check_cancel(&w, 1)) == 0)
        ;
      if (rc)
        break;
      rc = send_ack(&w);
      break;
    }
    if (r.hdr.kind == MPX_MSG_CALL)
      rc = w.sup ? run_call_isolated(&w, &r, o) : run_call(&w, &r, o);
    if (rc == 0 && w.sup) {
      /* The results are on their way: replace a task process that died
       * now, before the next call item needs it. */
      mpx__send_progress(&w.sends, 0);
      mpx__sup_prestart(w.sup);
    }
    /* Any other kind is not for a worker: dropped, as above. */
    mpx__recvd_free(&r);
    if (rc)
      break;
    mpx__send_progress(&w.sends, 0);
    mpx__backoff_active(&idle);
  }
  int rc2 = mpx__send_progress(&w.sends, 1);
  mpx__msgbuf_free(&w.out);
  mpx__sup_destroy(w.sup);
  return rc ? rc : rc2;
}
