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
} wstate;

/* Receives a CANCEL from the root if one is waiting (or, with wait set,
 * blocks until it arrives). Returns 0 or MPX_EMPI. */
static int check_cancel(wstate *w, int wait) {
  int flag = 1, one = 0;
  MPI_Status st;
  /* Two probes: Open MPI's first one matches before it progresses, so a
   * message that arrived while this rank was running a task is only seen
   * by the second. */
  for (int i = 0; !wait && i < 2; i++) {
    int rc = MPI_Iprobe(w->root, MPX_TAG_CTL, w->comm, &flag, &st);
    if (rc != MPI_SUCCESS)
      return mpx__mpi_fail(rc, "MPI_Iprobe on the control tag");
    if (flag)
      break;
  }
  if (flag) {
    int rc = MPI_Recv(&one, 1, MPI_INT, w->root, MPX_TAG_CTL, w->comm, &st);
    if (rc != MPI_SUCCESS)
      return mpx__mpi_fail(rc, "MPI_Recv on the control tag");
    w->cancelling = 1;
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

/* Runs every task of one call item and sends its results. Between tasks
 * it honours the flush interval: results go out before the next task
 * starts when they are flush_interval old, or would be by the time that
 * task ends if it runs as long as the last one did; and it looks for a
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
    } else {
      st = mpx__task_run(it.task_id, it.data, (size_t)it.len, w->rank, w->size,
                         &res, &rlen);
    }
    double t1 = mpx__now(), us = (t1 - t0) * 1e6;
    uint32_t busy = us >= 4294967295.0 ? UINT32_MAX : (uint32_t)us;
    last_run = t1 - t0;
    if (w->out.nitems == 0)
      w->first_unsent = t1;
    if (rlen >= MPX_TAIL_MIN) {
      /* A large result travels alone as a tail, without a copy. */
      if ((rc = flush(w, 0, NULL)) != 0) {
        free(res);
        return rc;
      }
      rc = mpx__msgbuf_add_tail(&w->out, it.work_id, busy, st, res, rlen);
      if (rc == 0)
        rc = flush(w, left == 0, res);
      else
        free(res);
      if (rc)
        return rc;
      continue;
    }
    rc = mpx__msgbuf_add(&w->out, it.work_id, busy, st, res, rlen);
    if (rc && res) {
      /* Out of memory for the result: report the failure in its place. */
      static const char oom[] = "out of memory on the worker";
      rc = mpx__msgbuf_add(&w->out, it.work_id, busy, MPX_ENOMEM, oom,
                           sizeof oom - 1);
    }
    free(res);
    if (rc)
      return rc;
    if (left == 0)
      rc = flush(w, 1, NULL);
    else if (mpx__now() - w->first_unsent + last_run >= o->flush_interval)
      rc = flush(w, 0, NULL);
    if (rc)
      return rc;
  }
  if (r->hdr.nitems == 0)
    return flush(w, 1, NULL);
  return 0;
}

int mpx__worker_loop(MPI_Comm comm, int root, const mpx_executor_options *o) {
  wstate w = {0};
  w.comm = comm;
  w.root = root;
  MPI_Comm_rank(comm, &w.rank);
  MPI_Comm_size(comm, &w.size);
  w.fault = (int)mpx__env_long("MPX_TEST_FAULT", 0);
  mpx__low_timer_slack();
  mpx__msgbuf_begin(&w.out, MPX_MSG_RESULT, 0);
  double spin_s = 1e-6 * (double)mpx__env_long("MPX_WORKER_SPIN_US", 200);
  unsigned sleep_max = (unsigned)mpx__env_long("MPX_IDLE_SLEEP_US", 1000);
  double last_active = mpx__now();
  unsigned sleep_us = 1;
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
      double idle = mpx__now() - last_active;
      if (idle < spin_s) {
        mpx__cpu_relax();
      } else {
        mpx__sleep_us(sleep_us);
        if (sleep_us < sleep_max)
          sleep_us *= 2;
        if (sleep_us > sleep_max)
          sleep_us = sleep_max;
      }
      continue;
    }
    if (r.hdr.kind == MPX_MSG_STOP) {
      /* The acknowledgement follows every result of this worker on the same
       * tag, so once the root has it nothing of ours is still on the way,
       * and no stale message can reach a later pool whose communicator
       * reuses this one's context id. */
      int cancel_sent = (r.hdr.flags & MPX_MSG_CANCEL_SENT) != 0;
      mpx__recvd_free(&r);
      if (cancel_sent && !w.cancelling && (rc = check_cancel(&w, 1)) != 0)
        break;
      rc = send_ack(&w);
      break;
    }
    if (r.hdr.kind == MPX_MSG_CALL)
      rc = run_call(&w, &r, o);
    /* Any other kind is not for a worker: dropped, as above. */
    mpx__recvd_free(&r);
    if (rc)
      break;
    mpx__send_progress(&w.sends, 0);
    last_active = mpx__now();
    sleep_us = 1;
  }
  int rc2 = mpx__send_progress(&w.sends, 1);
  mpx__msgbuf_free(&w.out);
  return rc ? rc : rc2;
}
