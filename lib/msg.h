/*
 * msg.h -- the wire format of the pool's messages (pure code, no MPI).
 *
 * A message is a head and an optional tail. The head starts with a fixed
 * 32-byte header:
 *   u32 magic "MPX1", u16 version, u16 kind, u32 nitems, u32 flags,
 *   u64 head_len (bytes of the head, header included), u64 tail_len
 * followed by nitems items, each a 24-byte item header
 *   u64 work_id, u32 task_id, i32 status, u64 len
 * and, except for a tail item, len payload bytes padded to 8 bytes.
 * In RESULT items task_id carries instead the microseconds the worker spent
 * running the item (saturating): the root knows the task from the work id,
 * and the worker's own timing lets it predict when results are due without
 * counting its own reaction time.
 * When tail_len > 0 the payload of the last item is not in the head: it is
 * the tail, which travels as separate fragments so that the receiver can
 * allocate it on its own (the result buffer handed to the user) and so
 * that payloads over 2 GiB need no single MPI message of that size.
 * All integers are little-endian as on every platform we run on (the
 * header's magic detects a mismatch).
 */
#ifndef MPX_MSG_H
#define MPX_MSG_H

#include <stddef.h>
#include <stdint.h>

#define MPX_MSG_MAGIC 0x3158504Du /* "MPX1" */
#define MPX_MSG_VERSION 1u
#define MPX_MSG_HDR_LEN 32u
#define MPX_MSG_ITEM_LEN 24u

enum mpx__msg_kind {
  MPX_MSG_CALL = 1,   /* root -> worker: tasks to run */
  MPX_MSG_RESULT = 2, /* worker -> root: results (status 0 or error text) */
  MPX_MSG_STOP = 3,   /* root -> worker: leave the worker loop; worker ->
                         root: the acknowledgement, its last message */
  MPX_MSG_KIND_MAX = 3
};

/* flags */
#define MPX_MSG_END_OF_CALL 1u /* the last result of a call item */
#define MPX_MSG_CANCEL_SENT                                                    \
  2u /* on a STOP: a CANCEL preceded it on the                                 \
        control tag and must be received */
#define MPX_MSG_TWO_CTL                                                        \
  4u /* on a STOP with CANCEL_SENT: two control                                \
        messages (a CANCEL, then a terminate) */
/* RANKED: every item header is followed by 8 bytes, u32 a rank and u32
 * zero. On a RESULT from a sub-manager (hier.c) the rank ran the item,
 * and with END_OF_CALL the flags' top 16 bits count the call items whose
 * credit the message returns (those it has handed on to its workers); an
 * item of work id 0 reports the sub-manager's own failure: its status and
 * text break the pool. On a CALL to a sub-manager the rank is a worker
 * the item failed on, to avoid (-1: none). */
#define MPX_MSG_RANKED 8u
#define MPX_MSG_ENDS_SHIFT 16

typedef struct mpx__msg_hdr {
  uint16_t kind;
  uint32_t nitems;
  uint32_t flags;
  uint64_t head_len;
  uint64_t tail_len;
} mpx__msg_hdr;

typedef struct mpx__msg_item {
  uint64_t work_id;
  uint32_t task_id;
  int32_t status;
  uint64_t len;
  int rank;         /* MPX_MSG_RANKED: the rank that ran it; else -1 */
  const void *data; /* into the head, or the tail for a tail item */
} mpx__msg_item;

/* A message under construction. */
typedef struct mpx__msgbuf {
  unsigned char *buf; /* the head */
  size_t len, cap;
  uint32_t nitems;
  uint16_t kind;
  uint32_t flags;
  const void *tail; /* borrowed */
  uint64_t tail_len;
} mpx__msgbuf;

/* Starts an empty message of the given kind, reusing b's buffer. */
void mpx__msgbuf_begin(mpx__msgbuf *b, uint16_t kind, uint32_t flags);

/* Appends an item with its payload copied into the head. Fails with
 * MPX_EINVAL after a tail item, MPX_ENOMEM. */
int mpx__msgbuf_add(mpx__msgbuf *b, uint64_t work_id, uint32_t task_id,
                    int32_t status, const void *data, uint64_t len);

/* Appends the last item, whose payload is sent as the tail without being
 * copied (data must stay valid until the message is sent). */
int mpx__msgbuf_add_tail(mpx__msgbuf *b, uint64_t work_id, uint32_t task_id,
                         int32_t status, const void *data, uint64_t len);

/* The same for a message begun with MPX_MSG_RANKED: the item carries the
 * rank that ran it. */
int mpx__msgbuf_add_ranked(mpx__msgbuf *b, int rank, uint64_t work_id,
                           uint32_t task_id, int32_t status, const void *data,
                           uint64_t len);
int mpx__msgbuf_add_tail_ranked(mpx__msgbuf *b, int rank, uint64_t work_id,
                                uint32_t task_id, int32_t status,
                                const void *data, uint64_t len);

/* The call items a RESULT ends: 0 without END_OF_CALL, else the count a
 * sub-manager put in the flags (at least 1). */
unsigned mpx__msg_ends(const mpx__msg_hdr *h);

/* Writes the header; the head is then b->buf[0 .. b->len). */
void mpx__msgbuf_finish(mpx__msgbuf *b);

/* Frees the buffer. */
void mpx__msgbuf_free(mpx__msgbuf *b);

/* Parses and validates a whole head of len bytes: magic, version, kind,
 * lengths, and that every item fits. Returns 0 or MPX_EPROTO. */
int mpx__msg_parse(const void *head, size_t len, mpx__msg_hdr *h);

/* Iterates the items of a validated head: *pos starts at 0; returns 1 and
 * fills *it while items remain, 0 at the end. tail is the received tail
 * (may be NULL when tail_len is 0). */
int mpx__msg_next(const void *head, const mpx__msg_hdr *h, size_t *pos,
                  const void *tail, mpx__msg_item *it);

#endif
