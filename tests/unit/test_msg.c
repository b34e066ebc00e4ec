/*
 * test_msg.c -- the message codec: round trips through mpx__msgbuf_* and
 * mpx__msg_parse/mpx__msg_next, the exact wire layout documented in msg.h,
 * rejection of malformed heads and a deterministic fuzz loop.
 *
 * Heads handed to the parser are copied into heap buffers of exactly their
 * length, so that an ASan build catches any read past the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpx.h"
#include "msg.h"
#include "unit.h"

/* ---- helpers ---------------------------------------------------------- */

static size_t pad8(uint64_t n) {
  return (size_t)((n + 7u) & ~(uint64_t)7u);
}

static uint16_t rd16(const unsigned char *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) {
  return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}
static void wr16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}
static void wr32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
static void wr64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

/* Header field offsets (msg.h). */
enum {
  OFF_MAGIC = 0,
  OFF_VERSION = 4,
  OFF_KIND = 6,
  OFF_NITEMS = 8,
  OFF_FLAGS = 12,
  OFF_HEAD_LEN = 16,
  OFF_TAIL_LEN = 24,
  /* item header */
  IOFF_WORK_ID = 0,
  IOFF_TASK_ID = 8,
  IOFF_STATUS = 12,
  IOFF_LEN = 16
};

/* A heap copy of exactly len bytes (never NULL). */
static unsigned char *dup_exact(const void *src, size_t len) {
  unsigned char *p = malloc(len ? len : 1);
  if (p && len)
    memcpy(p, src, len);
  return p;
}

/* Parses an exact-size heap copy of the first len bytes of src. */
static int parse_copy(const void *src, size_t len, mpx__msg_hdr *h) {
  unsigned char *p = dup_exact(src, len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  int rc = mpx__msg_parse(p, len, h);
  free(p);
  return rc;
}

static void fill_payload(unsigned char *p, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++)
    p[i] = (unsigned char)(seed * 131u + i * 31u + 7u);
}

typedef struct item_spec {
  uint64_t work_id;
  uint32_t task_id;
  int32_t status;
  uint64_t len;
} item_spec;

/* Builds a message of the given items (the payload of item i is
 * fill_payload(.., i)); when tail_len_out is not NULL the last item goes as
 * the tail with payload tail. Returns 0 or the failing call's code. */
static int build(mpx__msgbuf *b, uint16_t kind, uint32_t flags,
                 const item_spec *it, size_t n, const unsigned char *tail) {
  mpx__msgbuf_begin(b, kind, flags);
  for (size_t i = 0; i < n; i++) {
    int rc;
    if (tail && i == n - 1) {
      rc = mpx__msgbuf_add_tail(b, it[i].work_id, it[i].task_id, it[i].status,
                                tail, it[i].len);
    } else {
      unsigned char *pl = malloc(it[i].len ? it[i].len : 1);
      fill_payload(pl, it[i].len, (unsigned)i);
      rc = mpx__msgbuf_add(b, it[i].work_id, it[i].task_id, it[i].status,
                           it[i].len ? pl : NULL, it[i].len);
      free(pl);
    }
    if (rc)
      return rc;
  }
  mpx__msgbuf_finish(b);
  return 0;
}

/* Checks head (len bytes) against the spec, byte for byte where msg.h fixes
 * the layout and through the parser. tail is what the receiver passes as
 * the tail (NULL when there is none). */
static void check_message(const unsigned char *head, size_t len, uint16_t kind,
                          uint32_t flags, const item_spec *it, size_t n,
                          const unsigned char *tail, uint64_t tail_len) {
  /* Expected size: header, item headers, padded inline payloads. */
  size_t want = MPX_MSG_HDR_LEN;
  for (size_t i = 0; i < n; i++) {
    want += MPX_MSG_ITEM_LEN;
    if (!(tail_len > 0 && i == n - 1))
      want += pad8(it[i].len);
  }
  CU_ASSERT_EQUAL_FATAL(len, want);
  CU_ASSERT_EQUAL(len % 8, 0);

  /* Raw header layout. */
  CU_ASSERT(memcmp(head + OFF_MAGIC, "MPX1", 4) == 0);
  CU_ASSERT_EQUAL(rd32(head + OFF_MAGIC), MPX_MSG_MAGIC);
  CU_ASSERT_EQUAL(rd16(head + OFF_VERSION), MPX_MSG_VERSION);
  CU_ASSERT_EQUAL(rd16(head + OFF_KIND), kind);
  CU_ASSERT_EQUAL(rd32(head + OFF_NITEMS), n);
  CU_ASSERT_EQUAL(rd32(head + OFF_FLAGS), flags);
  CU_ASSERT_EQUAL(rd64(head + OFF_HEAD_LEN), len);
  CU_ASSERT_EQUAL(rd64(head + OFF_TAIL_LEN), tail_len);

  /* Parse an exact-size copy and iterate it. */
  unsigned char *copy = dup_exact(head, len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
  mpx__msg_hdr h;
  memset(&h, 0xAB, sizeof h);
  CU_ASSERT_EQUAL_FATAL(mpx__msg_parse(copy, len, &h), 0);
  CU_ASSERT_EQUAL(h.kind, kind);
  CU_ASSERT_EQUAL(h.nitems, n);
  CU_ASSERT_EQUAL(h.flags, flags);
  CU_ASSERT_EQUAL(h.head_len, len);
  CU_ASSERT_EQUAL(h.tail_len, tail_len);

  size_t pos = 0, off = MPX_MSG_HDR_LEN, count = 0;
  mpx__msg_item item;
  while (count <= n && mpx__msg_next(copy, &h, &pos, tail, &item)) {
    size_t i = count++;
    if (i >= n)
      break;
    /* Raw item header at the documented offset. */
    CU_ASSERT_EQUAL(rd64(copy + off + IOFF_WORK_ID), it[i].work_id);
    CU_ASSERT_EQUAL(rd32(copy + off + IOFF_TASK_ID), it[i].task_id);
    CU_ASSERT_EQUAL((int32_t)rd32(copy + off + IOFF_STATUS), it[i].status);
    CU_ASSERT_EQUAL(rd64(copy + off + IOFF_LEN), it[i].len);
    /* Parsed item. */
    CU_ASSERT_EQUAL(item.work_id, it[i].work_id);
    CU_ASSERT_EQUAL(item.task_id, it[i].task_id);
    CU_ASSERT_EQUAL(item.status, it[i].status);
    CU_ASSERT_EQUAL(item.len, it[i].len);
    if (tail_len > 0 && i == n - 1) {
      /* The tail item's data is the tail the receiver passed in. */
      CU_ASSERT_PTR_EQUAL(item.data, tail);
      off += MPX_MSG_ITEM_LEN;
    } else {
      const unsigned char *d = item.data;
      if (it[i].len > 0) {
        CU_ASSERT_PTR_EQUAL(d, copy + off + MPX_MSG_ITEM_LEN);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        /* 8-aligned relative to the head start. */
        CU_ASSERT_EQUAL((size_t)(d - copy) % 8, 0);
        unsigned char *want_pl = malloc(it[i].len);
        fill_payload(want_pl, it[i].len, (unsigned)i);
        CU_ASSERT(memcmp(d, want_pl, it[i].len) == 0);
        free(want_pl);
      } else if (d != NULL) {
        CU_ASSERT(d >= copy && d <= copy + len);
        CU_ASSERT_EQUAL((size_t)(d - copy) % 8, 0);
      }
      off += MPX_MSG_ITEM_LEN + pad8(it[i].len);
    }
  }
  CU_ASSERT_EQUAL(count, n);
  CU_ASSERT_EQUAL(off, len);
  /* The iterator stays at the end. */
  CU_ASSERT_EQUAL(mpx__msg_next(copy, &h, &pos, tail, &item), 0);
  free(copy);
}

/* ---- round trips ------------------------------------------------------ */

static void test_roundtrip_empty(void) {
  static const uint16_t kinds[] = {MPX_MSG_CALL, MPX_MSG_RESULT, MPX_MSG_STOP};
  mpx__msgbuf b;
  memset(&b, 0, sizeof b);
  for (size_t k = 0; k < 3; k++) {
    for (uint32_t flags = 0; flags <= MPX_MSG_END_OF_CALL; flags++) {
      CU_ASSERT_EQUAL_FATAL(build(&b, kinds[k], flags, NULL, 0, NULL), 0);
      CU_ASSERT_EQUAL(b.nitems, 0);
      CU_ASSERT_EQUAL(b.len, MPX_MSG_HDR_LEN);
      check_message(b.buf, b.len, kinds[k], flags, NULL, 0, NULL, 0);
    }
  }
  mpx__msgbuf_free(&b);
}

static void test_roundtrip_one(void) {
  static const uint64_t lens[] = {0, 1, 7, 8, 9, 64, 1000};
  mpx__msgbuf b;
  memset(&b, 0, sizeof b);
  for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
    item_spec it = {0x0123456789ABCDEFull, 42, -7, lens[k]};
    CU_ASSERT_EQUAL_FATAL(build(&b, MPX_MSG_CALL, 0, &it, 1, NULL), 0);
    CU_ASSERT_EQUAL(b.nitems, 1);
    check_message(b.buf, b.len, MPX_MSG_CALL, 0, &it, 1, NULL, 0);
  }
  mpx__msgbuf_free(&b);
}

static void test_roundtrip_many(void) {
  static const uint64_t lens[] = {0, 1, 2,  3,  4,   5,    6,   7,
                                  8, 9, 15, 16, 17,  0,    31,  33,
                                  0, 0, 63, 65, 255, 1000, 4097};
  enum { N = sizeof lens / sizeof lens[0] };
  item_spec it[N];
  for (size_t i = 0; i < N; i++) {
    it[i].work_id = i == 3 ? UINT64_MAX : 1000 + 17 * (uint64_t)i;
    it[i].task_id = i == 4 ? UINT32_MAX : (uint32_t)(7 * i);
    it[i].status = i % 3 == 0 ? 0 : (i % 3 == 1 ? MPX_ETASK : INT32_MIN);
    it[i].len = lens[i];
  }
  mpx__msgbuf b;
  memset(&b, 0, sizeof b);
  CU_ASSERT_EQUAL_FATAL(
      build(&b, MPX_MSG_RESULT, MPX_MSG_END_OF_CALL, it, N, NULL), 0);
  CU_ASSERT_EQUAL(b.nitems, N);
  check_message(b.buf, b.len, MPX_MSG_RESULT, MPX_MSG_END_OF_CALL, it, N, NULL,
                0);
  mpx__msgbuf_free(&b);
}

static void test_roundtrip_many_items_grow(void) {
  /* Enough items to force the buffer to grow many times. */
  enum { N = 3000 };
  item_spec *it = malloc(N * sizeof *it);
  CU_ASSERT_PTR_NOT_NULL_FATAL(it);
  for (size_t i = 0; i < N; i++)
    it[i] = (item_spec){i, (uint32_t)(i % 5), 0, i % 13};
  mpx__msgbuf b;
  memset(&b, 0, sizeof b);
  CU_ASSERT_EQUAL_FATAL(build(&b, MPX_MSG_CALL, 0, it, N, NULL), 0);
  check_message(b.buf, b.len, MPX_MSG_CALL, 0, it, N, NULL, 0);
  mpx__msgbuf_free(&b);
  free(it);
}

static void test_reuse_buffer(void) {
  /* begin() on a used buffer starts afresh: no items, no tail. */
  mpx__msgbuf b;
  memset(&b, 0, sizeof b);
  item_spec big[3] = {{1, 1, 0, 500}, {2, 2, 0, 3}, {3, 3, 0, 40}};
  unsigned char tail[40];
  fill_payload(tail, sizeof tail, 2);
  CU_ASSERT_EQUAL_FATAL(build(&b, MPX_MSG_RESULT, 0, big, 3, tail), 0);
  item_spec small = {9, 9, MPX_ETASK, 5};
  CU_ASSERT_EQUAL_FATAL(build(&b, MPX_MSG_CALL, 0, &small, 1, NULL), 0);
  CU_ASSERT_EQUAL(b.nitems, 1);
  CU_ASSERT_EQUAL(b.tail_len, 0);
  check_message(b.buf, b.len, MPX_MSG_CALL, 0, &small, 1, NULL, 0);
  CU_ASSERT_EQUAL_FATAL(build(&b, MPX_MSG_STOP, 0, NULL, 0, NULL), 0);
  check_message(b.buf, b.len, MPX_MSG_STOP, 0, NULL, 0, NULL, 0);
  mpx__msgbuf_free(&b);
}

static void test_tail(void) {
  enum { TL = 1000 };
  unsigned char *tail = malloc(TL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(tail);
  item_spec it[3] = {{10, 1, 0, 3}, {11, 2, 0, 0}, {12, 3, 0, TL}};
  fill_payload(tail, TL, 2);
  mpx__msgbuf b;
  memset(&b, 0, sizeof b);
  CU_ASSERT_EQUAL_FATAL(
      build(&b, MPX_MSG_RESULT, MPX_MSG_END_OF_CALL, it, 3, tail), 0);
  CU_ASSERT_EQUAL(b.nitems, 3);
  CU_ASSERT_PTR_EQUAL(b.tail, tail); /* borrowed, not copied */
  CU_ASSERT_EQUAL(b.tail_len, TL);
  /* The receiver has the tail in a buffer of its own. */
  unsigned char *received = dup_exact(tail, TL);
  check_message(b.buf, b.len, MPX_MSG_RESULT, MPX_MSG_END_OF_CALL, it, 3,
                received, TL);
  CU_ASSERT(memcmp(received, tail, TL) == 0);

  /* Adding anything after the tail item fails and changes nothing. */
  size_t len_before = b.len;
  unsigned char x[4] = {1, 2, 3, 4};
  CU_ASSERT_EQUAL(mpx__msgbuf_add(&b, 13, 4, 0, x, sizeof x), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx__msgbuf_add(&b, 13, 4, 0, NULL, 0), MPX_EINVAL);
  CU_ASSERT_EQUAL(b.nitems, 3);
  CU_ASSERT_EQUAL(b.len, len_before);
  CU_ASSERT_EQUAL(b.tail_len, TL);

  /* A message that is only a tail item. */
  item_spec only = {77, 5, 0, TL};
  CU_ASSERT_EQUAL_FATAL(build(&b, MPX_MSG_CALL, 0, &only, 1, tail), 0);
  check_message(b.buf, b.len, MPX_MSG_CALL, 0, &only, 1, received, TL);

  /* add after tail before finish() fails too. */
  mpx__msgbuf_begin(&b, MPX_MSG_CALL, 0);
  CU_ASSERT_EQUAL(mpx__msgbuf_add(&b, 1, 1, 0, x, sizeof x), 0);
  CU_ASSERT_EQUAL(mpx__msgbuf_add_tail(&b, 2, 1, 0, tail, TL), 0);
  CU_ASSERT_EQUAL(mpx__msgbuf_add(&b, 3, 1, 0, x, sizeof x), MPX_EINVAL);
  CU_ASSERT_EQUAL(b.nitems, 2);
  mpx__msgbuf_finish(&b);
  mpx__msg_hdr h;
  CU_ASSERT_EQUAL(parse_copy(b.buf, b.len, &h), 0);
  CU_ASSERT_EQUAL(h.nitems, 2);
  CU_ASSERT_EQUAL(h.tail_len, TL);

  mpx__msgbuf_free(&b);
  free(received);
  free(tail);
}

/* ---- malformed heads -------------------------------------------------- */

/* A valid two-item RESULT message (payloads 5 and 12 bytes: 104 bytes). */
static unsigned char *valid_two(size_t *len) {
  item_spec it[2] = {{1, 2, 0, 5}, {3, 4, MPX_ETASK, 12}};
  mpx__msgbuf b;
  memset(&b, 0, sizeof b);
  CU_ASSERT_EQUAL_FATAL(build(&b, MPX_MSG_RESULT, 0, it, 2, NULL), 0);
  unsigned char *p = dup_exact(b.buf, b.len);
  *len = b.len;
  mpx__msgbuf_free(&b);
  CU_ASSERT_EQUAL_FATAL(*len, 32 + (24 + 8) + (24 + 16));
  mpx__msg_hdr h;
  CU_ASSERT_EQUAL_FATAL(parse_copy(p, *len, &h), 0);
  return p;
}

static void test_reject_truncated_header(void) {
  size_t len;
  unsigned char *v = valid_two(&len);
  mpx__msg_hdr h;
  for (size_t l = 0; l < MPX_MSG_HDR_LEN; l++)
    CU_ASSERT_EQUAL(parse_copy(v, l, &h), MPX_EPROTO);
  CU_ASSERT_EQUAL(mpx__msg_parse(NULL, 0, &h), MPX_EPROTO);
  /* A bare header of a message with items, cut after the header. */
  CU_ASSERT_EQUAL(parse_copy(v, MPX_MSG_HDR_LEN, &h), MPX_EPROTO);
  free(v);
}

static void test_reject_truncated_items(void) {
  size_t len;
  unsigned char *v = valid_two(&len);
  mpx__msg_hdr h;
  /* Cut anywhere: head_len no longer matches. */
  for (size_t l = MPX_MSG_HDR_LEN; l < len; l++)
    CU_ASSERT_EQUAL(parse_copy(v, l, &h), MPX_EPROTO);
  /* Cut anywhere with head_len patched to match: the items do not fit. */
  for (size_t l = MPX_MSG_HDR_LEN; l < len; l++) {
    unsigned char *c = dup_exact(v, len);
    wr64(c + OFF_HEAD_LEN, l);
    CU_ASSERT_EQUAL(parse_copy(c, l, &h), MPX_EPROTO);
    free(c);
  }
  free(v);
}

/* Applies fn to a copy of v and expects MPX_EPROTO. */
#define EXPECT_BAD(v, len, stmt)                                               \
  do {                                                                         \
    unsigned char *c_ = dup_exact((v), (len));                                 \
    unsigned char *c = c_;                                                     \
    stmt;                                                                      \
    mpx__msg_hdr h_;                                                           \
    CU_ASSERT_EQUAL(parse_copy(c_, (len), &h_), MPX_EPROTO);                   \
    free(c_);                                                                  \
  } while (0)

static void test_reject_bad_magic(void) {
  size_t len;
  unsigned char *v = valid_two(&len);
  for (int i = 0; i < 4; i++)
    EXPECT_BAD(v, len, c[OFF_MAGIC + i] ^= 0xFF);
  EXPECT_BAD(v, len, wr32(c + OFF_MAGIC, 0));
  EXPECT_BAD(v, len, wr32(c + OFF_MAGIC, 0x4D505831u)); /* byte-swapped */
  EXPECT_BAD(v, len, wr32(c + OFF_MAGIC, 0x3258504Du)); /* "MPX2" */
  free(v);
}

static void test_reject_bad_version(void) {
  size_t len;
  unsigned char *v = valid_two(&len);
  static const uint16_t bad[] = {0, 2, 3, 0x100, 0xFFFF};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    EXPECT_BAD(v, len, wr16(c + OFF_VERSION, bad[i]));
  free(v);
}

static void test_reject_bad_kind(void) {
  size_t len;
  unsigned char *v = valid_two(&len);
  static const uint16_t bad[] = {0, MPX_MSG_KIND_MAX + 1, 99, 0x100, 0xFFFF};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    EXPECT_BAD(v, len, wr16(c + OFF_KIND, bad[i]));
  /* The valid kinds are accepted on the same message. */
  for (uint16_t k = 1; k <= MPX_MSG_KIND_MAX; k++) {
    unsigned char *c = dup_exact(v, len);
    wr16(c + OFF_KIND, k);
    mpx__msg_hdr h;
    CU_ASSERT_EQUAL(parse_copy(c, len, &h), 0);
    CU_ASSERT_EQUAL(h.kind, k);
    free(c);
  }
  free(v);
}

static void test_reject_head_len_mismatch(void) {
  size_t len;
  unsigned char *v = valid_two(&len);
  const uint64_t bad[] = {0,       1,       MPX_MSG_HDR_LEN, len - 8,   len - 1,
                          len + 1, len + 8, UINT64_MAX,      1ull << 63};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    EXPECT_BAD(v, len, wr64(c + OFF_HEAD_LEN, bad[i]));
  /* A buffer longer than head_len (trailing bytes). */
  unsigned char *longer = calloc(1, len + 8);
  memcpy(longer, v, len);
  mpx__msg_hdr h;
  CU_ASSERT_EQUAL(parse_copy(longer, len + 8, &h), MPX_EPROTO);
  free(longer);
  free(v);
}

static void test_reject_too_many_items(void) {
  size_t len;
  unsigned char *v = valid_two(&len);
  static const uint32_t bad[] = {3, 4, 5, 1000, 0x7FFFFFFFu, UINT32_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    EXPECT_BAD(v, len, wr32(c + OFF_NITEMS, bad[i]));
  /* An empty message that claims one item. */
  mpx__msgbuf b;
  memset(&b, 0, sizeof b);
  mpx__msgbuf_begin(&b, MPX_MSG_STOP, 0);
  mpx__msgbuf_finish(&b);
  EXPECT_BAD(b.buf, b.len, wr32(c + OFF_NITEMS, 1));
  EXPECT_BAD(b.buf, b.len, wr32(c + OFF_NITEMS, UINT32_MAX));
  mpx__msgbuf_free(&b);
  free(v);
}

static void test_reject_item_len_overflow(void) {
  size_t len;
  unsigned char *v = valid_two(&len);
  const size_t first = MPX_MSG_HDR_LEN;
  const size_t second = MPX_MSG_HDR_LEN + MPX_MSG_ITEM_LEN + 8;
  const uint64_t bad[] = {
      UINT64_MAX, UINT64_MAX - 6,   UINT64_MAX - 7, UINT64_MAX - 8,
      1ull << 63, (1ull << 63) - 1, 1ull << 32,     len,
      len + 1};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    EXPECT_BAD(v, len, wr64(c + first + IOFF_LEN, bad[i]));
    EXPECT_BAD(v, len, wr64(c + second + IOFF_LEN, bad[i]));
  }
  /* One byte too many for the first item's padded slot (5 -> 9 needs 16). */
  EXPECT_BAD(v, len, wr64(c + first + IOFF_LEN, 9));
  /* The last item grows past the end by one padded word. */
  EXPECT_BAD(v, len, wr64(c + second + IOFF_LEN, 17));
  free(v);
}

static void test_reject_tail_without_items(void) {
  mpx__msgbuf b;
  memset(&b, 0, sizeof b);
  mpx__msgbuf_begin(&b, MPX_MSG_RESULT, 0);
  mpx__msgbuf_finish(&b);
  static const uint64_t tl[] = {1, 8, 1000, UINT64_MAX};
  for (size_t i = 0; i < sizeof tl / sizeof tl[0]; i++)
    EXPECT_BAD(b.buf, b.len, wr64(c + OFF_TAIL_LEN, tl[i]));
  mpx__msgbuf_free(&b);
}

static void test_reject_tail_len_mismatch(void) {
  /* The tail is the last item's payload: its length must match. */
  unsigned char tail[100];
  fill_payload(tail, sizeof tail, 1);
  item_spec it[2] = {{1, 1, 0, 4}, {2, 2, 0, sizeof tail}};
  mpx__msgbuf b;
  memset(&b, 0, sizeof b);
  CU_ASSERT_EQUAL_FATAL(build(&b, MPX_MSG_RESULT, 0, it, 2, tail), 0);
  mpx__msg_hdr h;
  CU_ASSERT_EQUAL(parse_copy(b.buf, b.len, &h), 0);
  const size_t last = MPX_MSG_HDR_LEN + MPX_MSG_ITEM_LEN + 8;
  EXPECT_BAD(b.buf, b.len, wr64(c + OFF_TAIL_LEN, sizeof tail + 1));
  EXPECT_BAD(b.buf, b.len, wr64(c + OFF_TAIL_LEN, sizeof tail - 1));
  EXPECT_BAD(b.buf, b.len, wr64(c + last + IOFF_LEN, sizeof tail + 8));
  EXPECT_BAD(b.buf, b.len, wr64(c + last + IOFF_LEN, UINT64_MAX));
  /* Dropping tail_len makes the last item claim inline bytes that are not
   * there. */
  EXPECT_BAD(b.buf, b.len, wr64(c + OFF_TAIL_LEN, 0));
  mpx__msgbuf_free(&b);
}

/* ---- fuzz ------------------------------------------------------------- */

typedef struct fuzz_base {
  unsigned char *head;
  size_t len;
} fuzz_base;

static volatile unsigned fuzz_sink;

static void test_fuzz(void) {
  enum { NB = 5, ROUNDS = 10000 };
  fuzz_base base[NB];
  static unsigned char tailbuf[256];
  mpx__msgbuf b;
  memset(&b, 0, sizeof b);
  item_spec three[3] = {{1, 1, 0, 3}, {2, 2, MPX_ETASK, 0}, {3, 3, 0, 17}};
  item_spec tailed[2] = {{5, 1, 0, 9}, {6, 2, 0, 200}};
  item_spec zero[1] = {{7, 0, 0, 0}};
  item_spec many[6] = {{1, 0, 0, 1}, {2, 0, 0, 2},  {3, 0, 0, 8},
                       {4, 0, 0, 0}, {5, 0, 0, 33}, {6, 0, 0, 64}};
  for (int i = 0; i < NB; i++) {
    int rc = 0;
    switch (i) {
    case 0:
      rc = build(&b, MPX_MSG_STOP, 0, NULL, 0, NULL);
      break;
    case 1:
      rc = build(&b, MPX_MSG_RESULT, MPX_MSG_END_OF_CALL, three, 3, NULL);
      break;
    case 2:
      rc = build(&b, MPX_MSG_RESULT, 0, tailed, 2, tailbuf);
      break;
    case 3:
      rc = build(&b, MPX_MSG_CALL, 0, zero, 1, NULL);
      break;
    default:
      rc = build(&b, MPX_MSG_CALL, 0, many, 6, NULL);
      break;
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    base[i].head = dup_exact(b.buf, b.len);
    base[i].len = b.len;
  }
  mpx__msgbuf_free(&b);

  uint64_t rng = 0x9E3779B97F4A7C15ull;
  unsigned accepted = 0, bad_count = 0, bad_range = 0, bad_tail = 0;
  for (int r = 0; r < ROUNDS; r++) {
    const fuzz_base *fb = &base[unit_rand(&rng) % NB];
    size_t len = fb->len;
    unsigned mode = (unsigned)(unit_rand(&rng) % 16);
    if (mode == 0 && len > 0) {
      len = (size_t)(unit_rand(&rng) % len); /* truncate */
    } else if (mode == 1) {
      len += 1 + (size_t)(unit_rand(&rng) % 16); /* extend */
    }
    unsigned char *m = malloc(len ? len : 1);
    size_t keep = len < fb->len ? len : fb->len;
    memcpy(m, fb->head, keep);
    for (size_t i = keep; i < len; i++)
      m[i] = (unsigned char)unit_rand(&rng);
    if (len > 0) {
      unsigned flips = 1 + (unsigned)(unit_rand(&rng) % 4);
      for (unsigned k = 0; k < flips; k++) {
        /* Half of the flips hit the header and first item header, where
         * most of the validation lives. */
        size_t span = (unit_rand(&rng) & 1) && len > 56 ? 56 : len;
        size_t p = (size_t)(unit_rand(&rng) % span);
        m[p] ^= (unsigned char)(1 + unit_rand(&rng) % 255);
      }
      if (mode == 2 && len >= 32) /* keep head_len consistent */
        wr64(m + OFF_HEAD_LEN, len);
    }
    mpx__msg_hdr h;
    if (mpx__msg_parse(m, len, &h) == 0) {
      accepted++;
      size_t pos = 0, count = 0;
      mpx__msg_item it;
      const void *tail = h.tail_len ? tailbuf : NULL;
      while (count <= h.nitems && mpx__msg_next(m, &h, &pos, tail, &it)) {
        count++;
        int is_tail = h.tail_len > 0 && count == h.nitems;
        if (is_tail) {
          if (it.data != tail)
            bad_tail++;
          continue; /* the tail's bytes are the receiver's business */
        }
        const unsigned char *d = it.data;
        if (it.len > 0 && (d < m + MPX_MSG_HDR_LEN || d > m + len ||
                           it.len > (uint64_t)(m + len - d))) {
          bad_range++;
          continue;
        }
        unsigned s = 0;
        for (uint64_t i = 0; i < it.len; i++)
          s += d[i]; /* ASan checks these reads */
        fuzz_sink += s;
      }
      if (count != h.nitems)
        bad_count++;
    }
    free(m);
  }
  CU_ASSERT_EQUAL(bad_count, 0);
  CU_ASSERT_EQUAL(bad_range, 0);
  CU_ASSERT_EQUAL(bad_tail, 0);
  /* Some mutations (for example in payload bytes) must stay valid. */
  CU_ASSERT(accepted > 0);
  printf("\n    fuzz: %u of %d mutated heads accepted ", accepted, ROUNDS);
  for (int i = 0; i < NB; i++)
    free(base[i].head);
}

/* A sub-manager's gathered result (MPX_MSG_RANKED): every item names the
 * rank that ran it, a tail item too; the ends count rides in the flags. */
static void test_ranked(void) {
  mpx__msgbuf b = {0};
  unsigned char big[100];
  fill_payload(big, sizeof big, 9);
  mpx__msgbuf_begin(&b, MPX_MSG_RESULT,
                    MPX_MSG_RANKED | MPX_MSG_END_OF_CALL |
                        (3u << MPX_MSG_ENDS_SHIFT));
  CU_ASSERT_EQUAL(mpx__msgbuf_add_ranked(&b, 7, 11, 5, 0, "abc", 3), 0);
  CU_ASSERT_EQUAL(mpx__msgbuf_add_ranked(&b, 70000, 12, 6, MPX_ETASK, NULL, 0),
                  0);
  CU_ASSERT_EQUAL(mpx__msgbuf_add_tail_ranked(&b, 2, 13, 7, 0, big, sizeof big),
                  0);
  mpx__msgbuf_finish(&b);
  /* 32 + (24 + 8 + 8) + (24 + 8) + (24 + 8): 8 more per item. */
  CU_ASSERT_EQUAL(b.len, 32u + 40u + 32u + 32u);
  mpx__msg_hdr h;
  CU_ASSERT_EQUAL_FATAL(parse_copy(b.buf, b.len, &h), 0);
  CU_ASSERT_EQUAL(mpx__msg_ends(&h), 3u);
  size_t pos = 0;
  mpx__msg_item it;
  int ranks[3] = {7, 70000, 2};
  uint64_t ids[3] = {11, 12, 13};
  for (int i = 0; i < 3; i++) {
    CU_ASSERT_FATAL(mpx__msg_next(b.buf, &h, &pos, big, &it) == 1);
    CU_ASSERT_EQUAL(it.rank, ranks[i]);
    CU_ASSERT_EQUAL(it.work_id, ids[i]);
  }
  CU_ASSERT(it.data == big && it.len == sizeof big);
  CU_ASSERT_EQUAL(mpx__msg_next(b.buf, &h, &pos, big, &it), 0);
  /* -1 (no rank to avoid, in a call item) survives the trip. */
  mpx__msgbuf_begin(&b, MPX_MSG_CALL, MPX_MSG_RANKED);
  CU_ASSERT_EQUAL(mpx__msgbuf_add_ranked(&b, -1, 1, 2, 0, "x", 1), 0);
  mpx__msgbuf_finish(&b);
  CU_ASSERT_EQUAL_FATAL(parse_copy(b.buf, b.len, &h), 0);
  pos = 0;
  CU_ASSERT_FATAL(mpx__msg_next(b.buf, &h, &pos, NULL, &it) == 1);
  CU_ASSERT_EQUAL(it.rank, -1);
  CU_ASSERT_EQUAL(mpx__msg_ends(&h), 0u);
  /* Plain messages: no rank, and one end for END_OF_CALL alone. */
  mpx__msgbuf_begin(&b, MPX_MSG_RESULT, MPX_MSG_END_OF_CALL);
  CU_ASSERT_EQUAL(mpx__msgbuf_add(&b, 4, 0, 0, "y", 1), 0);
  mpx__msgbuf_finish(&b);
  CU_ASSERT_EQUAL_FATAL(parse_copy(b.buf, b.len, &h), 0);
  CU_ASSERT_EQUAL(mpx__msg_ends(&h), 1u);
  pos = 0;
  CU_ASSERT_FATAL(mpx__msg_next(b.buf, &h, &pos, NULL, &it) == 1);
  CU_ASSERT_EQUAL(it.rank, -1);
  /* A ranked head cut by 8 bytes (its last item's rank) is refused. */
  mpx__msgbuf_begin(&b, MPX_MSG_RESULT, MPX_MSG_RANKED);
  CU_ASSERT_EQUAL(mpx__msgbuf_add_ranked(&b, 1, 4, 0, 0, NULL, 0), 0);
  mpx__msgbuf_finish(&b);
  unsigned char cut[64];
  memcpy(cut, b.buf, b.len - 8);
  uint64_t hl = b.len - 8;
  memcpy(cut + 16, &hl, 8);
  CU_ASSERT_EQUAL(parse_copy(cut, b.len - 8, &h), MPX_EPROTO);
  mpx__msgbuf_free(&b);
}

static const unit_test roundtrip_tests[] = {
    {"empty", test_roundtrip_empty},
    {"one_item", test_roundtrip_one},
    {"many_items_padding", test_roundtrip_many},
    {"many_items_grow", test_roundtrip_many_items_grow},
    {"reuse_buffer", test_reuse_buffer},
    {"tail_item", test_tail},
    {"ranked", test_ranked},
    {NULL, NULL}};

static const unit_test malformed_tests[] = {
    {"truncated_header", test_reject_truncated_header},
    {"truncated_items", test_reject_truncated_items},
    {"bad_magic", test_reject_bad_magic},
    {"bad_version", test_reject_bad_version},
    {"bad_kind", test_reject_bad_kind},
    {"head_len_mismatch", test_reject_head_len_mismatch},
    {"too_many_items", test_reject_too_many_items},
    {"item_len_overflow", test_reject_item_len_overflow},
    {"tail_without_items", test_reject_tail_without_items},
    {"tail_len_mismatch", test_reject_tail_len_mismatch},
    {NULL, NULL}};

static const unit_test fuzz_tests[] = {{"random_byte_flips", test_fuzz},
                                       {NULL, NULL}};

int main(void) {
  const unit_suite suites[] = {{"msg_roundtrip", roundtrip_tests},
                               {"msg_malformed", malformed_tests},
                               {"msg_fuzz", fuzz_tests},
                               {NULL, NULL}};
  return unit_main(suites, 60);
}
