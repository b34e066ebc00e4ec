/*
 * msg.c -- encoding and validating the pool's messages (see msg.h for the
 * layout). Every length read from the wire is checked before use, so a
 * malformed message is an MPX_EPROTO, never a crash.
 */
#include <stdlib.h>
#include <string.h>

#include "mpx_errors.h"
#include "msg.h"
#include "util.h"

static void put16(unsigned char *p, uint16_t v) {
  memcpy(p, &v, 2);
}
static void put32(unsigned char *p, uint32_t v) {
  memcpy(p, &v, 4);
}
static void put64(unsigned char *p, uint64_t v) {
  memcpy(p, &v, 8);
}
static uint16_t get16(const unsigned char *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}
static uint32_t get32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint64_t get64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* Grows the head so that extra more bytes fit. */
static int reserve(mpx__msgbuf *b, size_t extra) {
  if (b->len + extra <= b->cap)
    return 0;
  if (mpx__grow(&b->buf, &b->cap, b->len + extra, 1, 256) != 0)
    return mpx__fail(MPX_ENOMEM, "out of memory for a %zu-byte message",
                     b->len + extra);
  return 0;
}

/* Resets b to an empty message with room for the header. */
void mpx__msgbuf_begin(mpx__msgbuf *b, uint16_t kind, uint32_t flags) {
  b->len = 0;
  b->nitems = 0;
  b->kind = kind;
  b->flags = flags;
  b->tail = NULL;
  b->tail_len = 0;
  if (reserve(b, MPX_MSG_HDR_LEN) == 0) {
    memset(b->buf, 0, MPX_MSG_HDR_LEN);
    b->len = MPX_MSG_HDR_LEN;
  }
}

/* Bytes of an item header in a message with these flags. */
static size_t item_len(uint32_t flags) {
  return MPX_MSG_ITEM_LEN + ((flags & MPX_MSG_RANKED) ? 8u : 0u);
}

/* Appends one item header (with the rank in a RANKED message). */
static int add_item(mpx__msgbuf *b, int rank, uint64_t work_id,
                    uint32_t task_id, int32_t status, uint64_t len,
                    size_t inline_len) {
  if (b->len < MPX_MSG_HDR_LEN || b->tail)
    return mpx__fail(MPX_EINVAL, "a message item after its tail, or in a "
                                 "message without a header");
  if (inline_len > SIZE_MAX - MPX_MSG_ITEM_LEN - 8)
    return mpx__fail(MPX_ENOMEM, "a %zu-byte message item is too large",
                     inline_len);
  size_t ilen = item_len(b->flags);
  int rc = reserve(b, ilen + mpx__pad8(inline_len));
  if (rc)
    return rc;
  unsigned char *p = b->buf + b->len;
  put64(p, work_id);
  put32(p + 8, task_id);
  put32(p + 12, (uint32_t)status);
  put64(p + 16, len);
  if (ilen > MPX_MSG_ITEM_LEN) {
    put32(p + 24, (uint32_t)rank);
    put32(p + 28, 0);
  }
  b->len += ilen;
  b->nitems++;
  return 0;
}

int mpx__msgbuf_add_ranked(mpx__msgbuf *b, int rank, uint64_t work_id,
                           uint32_t task_id, int32_t status, const void *data,
                           uint64_t len) {
  if (len && !data)
    return mpx__fail(MPX_EINVAL, "a message item of %llu bytes at NULL",
                     (unsigned long long)len);
  int rc = add_item(b, rank, work_id, task_id, status, len, (size_t)len);
  if (rc)
    return rc;
  if (len)
    memcpy(b->buf + b->len, data, (size_t)len);
  size_t padded = mpx__pad8(len);
  memset(b->buf + b->len + len, 0, padded - (size_t)len);
  b->len += padded;
  return 0;
}

/* Appends an item whose payload is copied into the head. */
int mpx__msgbuf_add(mpx__msgbuf *b, uint64_t work_id, uint32_t task_id,
                    int32_t status, const void *data, uint64_t len) {
  return mpx__msgbuf_add_ranked(b, -1, work_id, task_id, status, data, len);
}

/* Appends the last item, its payload travelling as the tail. */
int mpx__msgbuf_add_tail(mpx__msgbuf *b, uint64_t work_id, uint32_t task_id,
                         int32_t status, const void *data, uint64_t len) {
  return mpx__msgbuf_add_tail_ranked(b, -1, work_id, task_id, status, data,
                                     len);
}

int mpx__msgbuf_add_tail_ranked(mpx__msgbuf *b, int rank, uint64_t work_id,
                                uint32_t task_id, int32_t status,
                                const void *data, uint64_t len) {
  if (len && !data)
    return mpx__fail(MPX_EINVAL, "a message item of %llu bytes at NULL",
                     (unsigned long long)len);
  int rc = add_item(b, rank, work_id, task_id, status, len, 0);
  if (rc)
    return rc;
  b->tail = data ? data : (const void *)b->buf;
  b->tail_len = len;
  return 0;
}

/* Fills in the header now that the items are known. */
void mpx__msgbuf_finish(mpx__msgbuf *b) {
  if (b->len < MPX_MSG_HDR_LEN)
    return;
  put32(b->buf, MPX_MSG_MAGIC);
  put16(b->buf + 4, MPX_MSG_VERSION);
  put16(b->buf + 6, b->kind);
  put32(b->buf + 8, b->nitems);
  put32(b->buf + 12, b->flags);
  put64(b->buf + 16, b->len);
  put64(b->buf + 24, b->tail_len);
}

void mpx__msgbuf_free(mpx__msgbuf *b) {
  free(b->buf);
  memset(b, 0, sizeof *b);
}

/* Checks the header and walks every item once to prove it fits. */
int mpx__msg_parse(const void *head, size_t len, mpx__msg_hdr *h) {
  const unsigned char *p = head;
  if (!head || len < MPX_MSG_HDR_LEN)
    return MPX_EPROTO;
  if (get32(p) != MPX_MSG_MAGIC || get16(p + 4) != MPX_MSG_VERSION)
    return MPX_EPROTO;
  h->kind = get16(p + 6);
  h->nitems = get32(p + 8);
  h->flags = get32(p + 12);
  h->head_len = get64(p + 16);
  h->tail_len = get64(p + 24);
  if (h->kind < 1 || h->kind > MPX_MSG_KIND_MAX || h->head_len != len)
    return MPX_EPROTO;
  if (h->tail_len && h->nitems == 0)
    return MPX_EPROTO;
  size_t pos = MPX_MSG_HDR_LEN, hlen = item_len(h->flags);
  for (uint32_t i = 0; i < h->nitems; i++) {
    if (len - pos < hlen)
      return MPX_EPROTO;
    uint64_t ilen = get64(p + pos + 16);
    pos += hlen;
    int is_tail = h->tail_len && i + 1 == h->nitems;
    if (is_tail) {
      if (ilen != h->tail_len)
        return MPX_EPROTO;
      continue;
    }
    if (ilen > len - pos || mpx__pad8(ilen) > len - pos)
      return MPX_EPROTO;
    pos += mpx__pad8(ilen);
  }
  return pos == len ? 0 : MPX_EPROTO;
}

/* Returns the item at *pos and advances past it. */
int mpx__msg_next(const void *head, const mpx__msg_hdr *h, size_t *pos,
                  const void *tail, mpx__msg_item *it) {
  const unsigned char *p = head;
  size_t hlen = item_len(h->flags);
  if (*pos == 0)
    *pos = MPX_MSG_HDR_LEN;
  if (*pos + hlen > h->head_len)
    return 0;
  it->work_id = get64(p + *pos);
  it->task_id = get32(p + *pos + 8);
  it->status = (int32_t)get32(p + *pos + 12);
  it->len = get64(p + *pos + 16);
  it->rank = hlen > MPX_MSG_ITEM_LEN ? (int)get32(p + *pos + 24) : -1;
  *pos += hlen;
  if (h->tail_len && *pos == h->head_len) {
    it->data = tail;
  } else {
    it->data = p + *pos;
    *pos += mpx__pad8(it->len);
  }
  return 1;
}

unsigned mpx__msg_ends(const mpx__msg_hdr *h) {
  if (!(h->flags & MPX_MSG_END_OF_CALL))
    return 0;
  unsigned n = h->flags >> MPX_MSG_ENDS_SHIFT;
  return n ? n : 1;
}
