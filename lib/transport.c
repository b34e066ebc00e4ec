/*
 * transport.c -- heads and fragmented tails over MPI (see transport.h).
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mpx_errors.h"
#include "transport.h"
#include "util.h"

static size_t frag_max;
static pthread_once_t frag_once = PTHREAD_ONCE_INIT;

static void frag_init(void) {
  long v = mpx__env_long("MPX_FRAG_MAX", 1L << 30);
  frag_max = (size_t)(v < 1 || v > INT_MAX ? 1L << 30 : v);
}

/* Read once: every message asks. */
size_t mpx__frag_max(void) {
  pthread_once(&frag_once, frag_init);
  return frag_max;
}

/* Records MPI's own text for mpirc and returns MPX_EMPI. */
int mpx__mpi_fail(int mpirc, const char *what) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(mpirc, text, &len) != MPI_SUCCESS)
    strcpy(text, "unknown MPI error");
  return mpx__fail(MPX_EMPI, "%s failed: %s", what, text);
}

/* Starts sending a finished message (head, then the tail's fragments). */
int mpx__send_start(MPI_Comm comm, int dest, mpx__msgbuf *b,
                    void (*release)(void *), void *release_arg,
                    mpx__send **list) {
  size_t frag = mpx__frag_max();
  uint64_t nfrag = b->tail_len ? (b->tail_len + frag - 1) / frag : 0;
  if (b->kind == MPX_MSG_CALL || b->kind == MPX_MSG_RESULT)
    mpx__sim_charge(b->kind == MPX_MSG_CALL ? MPX__SIM_SEND_CALL
                                            : MPX__SIM_SEND_RESULT,
                    b->nitems);
  mpx__send *s = calloc(1, sizeof *s);
  MPI_Request *reqs = malloc((size_t)(1 + nfrag) * sizeof *reqs);
  if (!s || !reqs || b->len > INT_MAX) {
    free(s);
    free(reqs);
    /* Nothing reached MPI, so the tail's owner can let go now. */
    if (release)
      release(release_arg);
    if (b->len > INT_MAX)
      return mpx__fail(MPX_E2BIG,
                       "cannot send a %zu-byte message head to rank %d (MPI "
                       "counts stop at %d)",
                       b->len, dest, INT_MAX);
    return mpx__fail(MPX_ENOMEM,
                     "out of memory starting a send of %llu fragments to "
                     "rank %d",
                     (unsigned long long)(1 + nfrag), dest);
  }
  s->reqs = reqs;
  s->head = b->buf;
  s->release = release;
  s->release_arg = release_arg;
  int rc = MPI_Isend(b->buf, (int)b->len, MPI_BYTE, dest, MPX_TAG_HEAD, comm,
                     &reqs[0]);
  s->nreqs = 1;
  const char *t = b->tail;
  for (uint64_t off = 0; rc == MPI_SUCCESS && off < b->tail_len; off += frag) {
    uint64_t n = b->tail_len - off < frag ? b->tail_len - off : frag;
    rc = MPI_Isend(t + off, (int)n, MPI_BYTE, dest, MPX_TAG_TAIL, comm,
                   &reqs[s->nreqs]);
    if (rc == MPI_SUCCESS)
      s->nreqs++;
  }
  /* The head now belongs to the send. */
  b->buf = NULL;
  b->cap = b->len = 0;
  s->next = *list;
  *list = s;
  if (rc != MPI_SUCCESS)
    return mpx__mpi_fail(rc, "MPI_Isend");
  return 0;
}

static void send_free(mpx__send *s) {
  if (s->release)
    s->release(s->release_arg);
  free(s->head);
  free(s->reqs);
  free(s);
}

int mpx__send_progress(mpx__send **list, int wait) {
  int result = 0;
  for (mpx__send **pp = list; *pp;) {
    mpx__send *s = *pp;
    int done = 0, rc;
    /* MPICH's MPI_STATUSES_IGNORE is (MPI_Status *)1, which GCC 12 takes
     * for an empty array that MPI would write to. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
    if (wait)
      rc = MPI_Waitall(s->nreqs, s->reqs, MPI_STATUSES_IGNORE), done = 1;
    else
      rc = MPI_Testall(s->nreqs, s->reqs, &done, MPI_STATUSES_IGNORE);
#pragma GCC diagnostic pop
    if (rc != MPI_SUCCESS) {
      result = mpx__mpi_fail(rc, "MPI_Testall on a send");
      done = 1;
    }
    if (done) {
      *pp = s->next;
      send_free(s);
    } else {
      pp = &s->next;
    }
  }
  return result;
}

/* A matched probe for a message head, and its receive. SimGrid's SMPI has
 * no MPI_Improbe/MPI_Mrecv; its ranks run one thread (MPI_THREAD_SINGLE),
 * so no other receive can take the probed head before an MPI_Recv by its
 * source and tag gets it (messages of one source and tag do not overtake
 * each other). */
static int head_probe(MPI_Comm comm, int *flag, MPI_Message *m,
                      MPI_Status *st) {
#ifdef MPX_SMPI
  *m = MPI_MESSAGE_NULL;
  int rc = MPI_Iprobe(MPI_ANY_SOURCE, MPX_TAG_HEAD, comm, flag, st);
  return rc == MPI_SUCCESS ? 0 : mpx__mpi_fail(rc, "MPI_Iprobe");
#else
  int rc = MPI_Improbe(MPI_ANY_SOURCE, MPX_TAG_HEAD, comm, flag, m, st);
  return rc == MPI_SUCCESS ? 0 : mpx__mpi_fail(rc, "MPI_Improbe");
#endif
}

static int head_recv(void *buf, int count, MPI_Message *m, const MPI_Status *st,
                     MPI_Comm comm) {
#ifdef MPX_SMPI
  (void)m;
  return MPI_Recv(buf, count, MPI_BYTE, st->MPI_SOURCE, MPX_TAG_HEAD, comm,
                  MPI_STATUS_IGNORE);
#else
  (void)st;
  (void)comm;
  return MPI_Mrecv(buf, count, MPI_BYTE, m, MPI_STATUS_IGNORE);
#endif
}

int mpx__recv_poll(MPI_Comm comm, mpx__recvd *r) {
  memset(r, 0, sizeof *r);
  int flag = 0, count = 0;
  MPI_Message m;
  MPI_Status st;
  int rc = head_probe(comm, &flag, &m, &st);
  if (rc != 0)
    return rc;
  if (!flag) {
    mpx__sim_charge(MPX__SIM_POLL, 0);
    return 0;
  }
  r->src = st.MPI_SOURCE;
  MPI_Get_count(&st, MPI_BYTE, &count);
  unsigned char *head = malloc(count > 0 ? (size_t)count : 1);
  if (!head) {
    head_recv(NULL, 0, &m, &st, comm);
    return mpx__fail(MPX_ENOMEM,
                     "out of memory receiving a %d-byte message head from "
                     "rank %d",
                     count, r->src);
  }
  rc = head_recv(head, count, &m, &st, comm);
  if (rc != MPI_SUCCESS) {
    free(head);
    return mpx__mpi_fail(rc, "MPI_Mrecv");
  }
  if (count < 0 || mpx__msg_parse(head, (size_t)count, &r->hdr) != 0) {
    free(head);
    return mpx__fail(MPX_EPROTO, "malformed message of %d bytes from rank %d",
                     count, r->src);
  }
  r->head = head;
  if (r->hdr.kind == MPX_MSG_CALL || r->hdr.kind == MPX_MSG_RESULT)
    mpx__sim_charge(r->hdr.kind == MPX_MSG_CALL ? MPX__SIM_RECV_CALL
                                                : MPX__SIM_RECV_RESULT,
                    r->hdr.nitems);
  if (r->hdr.tail_len) {
    if (r->hdr.tail_len > SIZE_MAX - 16 ||
        !(r->tail = mpx__alloc((size_t)r->hdr.tail_len))) {
      mpx__recvd_free(r);
      return mpx__fail(MPX_ENOMEM,
                       "cannot allocate a %llu-byte payload from "
                       "rank %d",
                       (unsigned long long)r->hdr.tail_len, r->src);
    }
    size_t frag = mpx__frag_max();
    char *t = r->tail;
    for (uint64_t off = 0; off < r->hdr.tail_len; off += frag) {
      uint64_t n = r->hdr.tail_len - off < frag ? r->hdr.tail_len - off : frag;
      MPI_Status ts;
      rc = MPI_Recv(t + off, (int)n, MPI_BYTE, r->src, MPX_TAG_TAIL, comm, &ts);
      int got = 0;
      if (rc == MPI_SUCCESS)
        MPI_Get_count(&ts, MPI_BYTE, &got);
      if (rc != MPI_SUCCESS || (uint64_t)got != n) {
        mpx__recvd_free(r);
        return rc != MPI_SUCCESS
                   ? mpx__mpi_fail(rc, "MPI_Recv of a payload fragment")
                   : mpx__fail(MPX_EPROTO,
                               "short payload fragment from rank "
                               "%d",
                               st.MPI_SOURCE);
      }
    }
  }
  return 1;
}

void mpx__recvd_free(mpx__recvd *r) {
  free(r->head);
  free(r->tail);
  r->head = NULL;
  r->tail = NULL;
}

int mpx__release(MPI_Comm comm, int n, int (*who)(void *arg, int i, int *ctl),
                 void *arg, mpx__msgbuf *mb, mpx__send **sends) {
  int pending = 0, rc = 0;
  for (int i = 0; i < n; i++) {
    int ctl = 0, w = who(arg, i, &ctl);
    if (w < 0)
      continue;
    mpx__msgbuf_begin(mb, MPX_MSG_STOP,
                      (ctl ? MPX_MSG_CANCEL_SENT : 0) |
                          (ctl > 1 ? MPX_MSG_TWO_CTL : 0));
    mpx__msgbuf_finish(mb);
    if (mpx__send_start(comm, w, mb, NULL, NULL, sends) == 0)
      pending++;
  }
  unsigned sleep_us = 1;
  while (pending > 0) {
    mpx__recvd r;
    int got = mpx__recv_poll(comm, &r);
    if (got == MPX_EPROTO)
      continue; /* garbage from a broken pool: drop it */
    if (got < 0) {
      rc = got; /* MPI itself failed: nothing more can be received */
      break;
    }
    if (got == 0) {
      mpx__send_progress(sends, 0);
      mpx__sleep_us(sleep_us);
      sleep_us = sleep_us < 1000 ? sleep_us * 2 : 1000;
      continue;
    }
    if (r.hdr.kind == MPX_MSG_STOP)
      pending--;
    mpx__recvd_free(&r);
    sleep_us = 1;
  }
  return rc;
}

int mpx__ctl_recv(MPI_Comm comm, int from, int wait, int *value) {
  int flag = 1;
  MPI_Status st;
  /* Two probes: Open MPI's first one matches before it progresses, so a
   * message that arrived while this rank was busy is only seen by the
   * second. */
  for (int i = 0; !wait && i < 2; i++) {
    int rc = MPI_Iprobe(from, MPX_TAG_CTL, comm, &flag, &st);
    if (rc != MPI_SUCCESS)
      return mpx__mpi_fail(rc, "MPI_Iprobe on the control tag");
    if (flag)
      break;
  }
  if (!flag)
    return 0;
  int rc = MPI_Recv(value, 1, MPI_INT, from, MPX_TAG_CTL, comm, &st);
  if (rc != MPI_SUCCESS)
    return mpx__mpi_fail(rc, "MPI_Recv on the control tag");
  return 1;
}
