/*
 * transport.h -- moving msg.h messages over MPI.
 *
 * A head travels as one message on MPX_TAG_HEAD; a tail follows on
 * MPX_TAG_TAIL from the same sender in fragments of at most frag_max
 * bytes (MPI counts are int, and MPI keeps the order of messages between
 * one pair of ranks on one tag, so the fragments arrive in order). Heads
 * are found with matched probes (MPI_Improbe/MPI_Mrecv), which are safe
 * when other threads use MPI too.
 */
#ifndef MPX_TRANSPORT_H
#define MPX_TRANSPORT_H

#include <mpi.h>

#include "msg.h"

#define MPX_TAG_HEAD 7301
#define MPX_TAG_TAIL 7302
/* Root -> worker control messages that must overtake queued call items:
 * one int, 1 = cancel the tasks not started (shutdown's cancel_futures). */
#define MPX_TAG_CTL 7303

/* A send in progress; its buffers are released when it completes. */
typedef struct mpx__send {
  MPI_Request *reqs;
  int nreqs;
  unsigned char *head;        /* owned */
  void (*release)(void *arg); /* called once the send completed */
  void *release_arg;
  struct mpx__send *next;
} mpx__send;

/* The largest fragment in bytes (env MPX_FRAG_MAX, default 1 GiB). */
size_t mpx__frag_max(void);

/* Starts sending b (finished) to dest and pushes the send on *list, to be
 * completed by mpx__send_progress(). Takes b's head buffer (b is reset to
 * empty); the tail must stay valid until the send completes.
 * release(release_arg) (may be NULL) runs exactly once: when the send
 * completes, or at once when no send could be started. Returns 0,
 * MPX_ENOMEM, MPX_E2BIG or MPX_EMPI. */
int mpx__send_start(MPI_Comm comm, int dest, mpx__msgbuf *b,
                    void (*release)(void *), void *release_arg,
                    mpx__send **list);

/* Tests the sends of *list, frees the completed ones. Returns 0 or
 * MPX_EMPI. With wait set, blocks until all complete. */
int mpx__send_progress(mpx__send **list, int wait);

/* A received message. */
typedef struct mpx__recvd {
  int src;
  unsigned char *head; /* owned */
  mpx__msg_hdr hdr;
  void *tail; /* owned, or NULL */
} mpx__recvd;

/* Receives one head if any is waiting (from any source), validates it, and
 * receives its tail. Returns 1 with *r filled, 0 when nothing is waiting,
 * MPX_EPROTO (r->src set; nothing owned), MPX_EMPI or MPX_ENOMEM. */
int mpx__recv_poll(MPI_Comm comm, mpx__recvd *r);

/* Frees what r owns. */
void mpx__recvd_free(mpx__recvd *r);

/* Receives a control message (MPX_TAG_CTL, one int) from rank `from` if
 * one waits, or with wait set blocks until it arrives. Returns 1 with
 * *value set, 0 when none waits, or MPX_EMPI. */
int mpx__ctl_recv(MPI_Comm comm, int from, int wait, int *value);

/* Tells ranks to leave their loops and receives until each has
 * acknowledged; what else arrives meanwhile is dropped (a worker's
 * acknowledgement is its last message, so after it nothing of the pool is
 * in flight). who(arg, i, &ctl) gives the i-th of n ranks, or -1 to skip
 * it, and in ctl the control messages it was sent, which it must receive
 * before it leaves (or they would reach a later pool reusing this context
 * id). Used by the root and by sub-managers. Returns 0, or MPX_EMPI when
 * nothing more can be received. */
int mpx__release(MPI_Comm comm, int n, int (*who)(void *arg, int i, int *ctl),
                 void *arg, mpx__msgbuf *mb, mpx__send **sends);

/* Describes an MPI error code with MPI's own text. */
int mpx__mpi_fail(int mpirc, const char *what);

#endif
