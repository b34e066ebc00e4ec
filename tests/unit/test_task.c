/*
 * test_task.c -- the worker's side of tasks without MPI: chunks of inputs
 * run through mpx__task_run() (well-formed, truncated and lying chunks
 * must fail as MPX_EPROTO without reading past the buffer), array names a
 * job cannot turn into datasets, shapes whose size overflows, and
 * allocations whose rounding would wrap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpx.h"
#include "registry.h"
#include "task.h"
#include "unit.h"
#include "util.h"

/* Returns its input doubled as one uint64 array "x". */
static int twice(mpx_task_ctx *ctx, const void *arg, size_t len) {
  uint64_t v;
  if (len != sizeof v)
    return mpx_task_fail(ctx, "want 8 bytes, got %zu", len);
  memcpy(&v, arg, sizeof v);
  uint64_t *x = mpx_task_array(ctx, "x", MPX_UINT64, 1, 1);
  if (!x)
    return mpx_task_fail(ctx, "%s", mpx_last_error());
  *x = 2 * v;
  return 0;
}

static uint32_t twice_id(void) {
  int id = mpx__registry_lookup("twice");
  if (id < 0) {
    CU_ASSERT_EQUAL_FATAL(mpx_register("twice", twice), 0);
    id = mpx__registry_lookup("twice");
  }
  CU_ASSERT_FATAL(id >= 0);
  return (uint32_t)id;
}

static void test_chunk_roundtrip(void) {
  mpx__chunkbuf cb;
  memset(&cb, 0, sizeof cb);
  for (uint64_t v = 0; v < 5; v++)
    CU_ASSERT_EQUAL_FATAL(mpx__chunkbuf_add(&cb, &v, sizeof v), 0);
  uint64_t bad = 9; /* a wrong size: fails in its place */
  CU_ASSERT_EQUAL_FATAL(mpx__chunkbuf_add(&cb, &bad, 4), 0);
  size_t len;
  void *arg = mpx__chunkbuf_finish(&cb, &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(arg);
  void *res = NULL;
  size_t rlen = 0;
  CU_ASSERT_EQUAL_FATAL(
      mpx__task_run(twice_id() | MPX__TASK_CHUNK, arg, len, 1, 2, &res, &rlen),
      0);
  mpx__outcome oc[6];
  CU_ASSERT_EQUAL_FATAL(mpx__chunk_result_parse(res, rlen, 6, oc), 0);
  for (uint64_t v = 0; v < 5; v++) {
    CU_ASSERT_EQUAL_FATAL(oc[v].status, 0);
    mpx_array a[1];
    size_t n;
    CU_ASSERT_EQUAL_FATAL(mpx_arrays_parse(oc[v].data, oc[v].len, a, 1, &n), 0);
    CU_ASSERT_EQUAL(((const uint64_t *)a[0].data)[0], 2 * v);
  }
  CU_ASSERT_EQUAL(oc[5].status, MPX_ETASK);
  CU_ASSERT_PTR_NOT_NULL(strstr(oc[5].data, "want 8 bytes, got 4"));
  free(res);
  free(arg);
}

/* Inputs of every length from 0 to 40 bytes, after a reserve sized for
 * the first (as a map reserves a chunk): each comes back whole, and the
 * padding after it is zero. */
static void test_chunk_lengths(void) {
  for (int reserve = 0; reserve < 2; reserve++) {
    mpx__chunkbuf cb;
    memset(&cb, 0, sizeof cb);
    unsigned char src[40];
    for (int i = 0; i < 40; i++)
      src[i] = (unsigned char)(0xa0 + i);
    for (size_t l = 0; l <= 40; l++) {
      CU_ASSERT_EQUAL_FATAL(mpx__chunkbuf_add(&cb, src, l), 0);
      if (reserve && cb.count == 1)
        mpx__chunkbuf_reserve(&cb, 41, l);
    }
    size_t len;
    unsigned char *arg = mpx__chunkbuf_finish(&cb, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(arg);
    uint64_t n = 0;
    mpx__outcome in[41];
    CU_ASSERT_EQUAL_FATAL(mpx__chunk_arg_parse(arg, len, &n, in), 0);
    CU_ASSERT_EQUAL_FATAL(n, 41);
    for (size_t l = 0; l <= 40; l++) {
      CU_ASSERT_EQUAL(in[l].len, l);
      CU_ASSERT(l == 0 || memcmp(in[l].data, src, l) == 0);
      const unsigned char *pad = (const unsigned char *)in[l].data + l;
      for (size_t k = l; k < ((l + 7) & ~(size_t)7); k++)
        CU_ASSERT_EQUAL(pad[k - l], 0);
    }
    free(arg);
  }
}

/* mpx__chunkbuf_add_fixed() writes, byte for byte, what one
 * mpx__chunkbuf_add() per element writes, for elements of 0 to 40 bytes,
 * appended after inputs already in the chunk; a count whose size wraps
 * fails with MPX_ENOMEM and leaves the chunk as it was. */
static void test_chunk_fixed(void) {
  unsigned char src[7 * 40];
  for (size_t i = 0; i < sizeof src; i++)
    src[i] = (unsigned char)(i * 37 + 1);
  for (size_t size = 0; size <= 40; size++) {
    mpx__chunkbuf a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    CU_ASSERT_EQUAL_FATAL(mpx__chunkbuf_add(&a, src, 3), 0);
    CU_ASSERT_EQUAL_FATAL(mpx__chunkbuf_add(&b, src, 3), 0);
    for (size_t i = 0; i < 7; i++)
      CU_ASSERT_EQUAL_FATAL(mpx__chunkbuf_add(&a, src + i * size, size), 0);
    CU_ASSERT_EQUAL_FATAL(mpx__chunkbuf_add_fixed(&b, src, 7, size), 0);
    CU_ASSERT_EQUAL(b.count, 8);
    CU_ASSERT_EQUAL_FATAL(a.len, b.len);
    CU_ASSERT(memcmp(a.buf + 8, b.buf + 8, a.len - 8) == 0);
    size_t la, lb;
    void *pa = mpx__chunkbuf_finish(&a, &la),
         *pb = mpx__chunkbuf_finish(&b, &lb);
    CU_ASSERT(la == lb && memcmp(pa, pb, la) == 0);
    free(pa);
    free(pb);
  }
  mpx__chunkbuf c;
  memset(&c, 0, sizeof c);
  CU_ASSERT_EQUAL_FATAL(mpx__chunkbuf_add_fixed(&c, src, 2, 8), 0);
  size_t len = c.len;
  CU_ASSERT_EQUAL(mpx__chunkbuf_add_fixed(&c, src, UINT64_MAX / 8, 8),
                  MPX_ENOMEM);
  CU_ASSERT_EQUAL(c.count, 2);
  CU_ASSERT_EQUAL(c.len, len);
  free(mpx__chunkbuf_finish(&c, &len));
}

/* Records a failure, then returns 0 anyway. */
static int fail_then_zero(mpx_task_ctx *ctx, const void *arg, size_t len) {
  (void)arg;
  (void)len;
  mpx_task_fail(ctx, "noted failure");
  return 0;
}

/* A failure recorded with mpx_task_fail is not dropped by a return of 0. */
static void test_fail_then_return_zero(void) {
  if (mpx__registry_lookup("fail_then_zero") < 0)
    CU_ASSERT_EQUAL_FATAL(mpx_register("fail_then_zero", fail_then_zero), 0);
  int id = mpx__registry_lookup("fail_then_zero");
  CU_ASSERT_FATAL(id >= 0);
  uint64_t v = 1;
  void *res = NULL;
  size_t rlen = 0;
  CU_ASSERT_EQUAL(mpx__task_run((uint32_t)id, &v, sizeof v, 1, 2, &res, &rlen),
                  MPX_ETASK);
  CU_ASSERT_PTR_NOT_NULL_FATAL(res);
  CU_ASSERT_PTR_NOT_NULL(strstr(res, "noted failure"));
  CU_ASSERT_PTR_NOT_NULL(strstr(res, "fail_then_zero"));
  free(res);
}

/* Runs a hand-made chunk; returns the status (and frees the outcome). */
static int run_raw(const uint64_t *words, size_t nwords) {
  void *res = NULL;
  size_t rlen = 0;
  int st = mpx__task_run(twice_id() | MPX__TASK_CHUNK, words, nwords * 8, 1, 2,
                         &res, &rlen);
  free(res);
  return st;
}

static void test_malformed_chunks(void) {
  /* 2 inputs claimed; the first fills the buffer, no room for the second's
   * length (the reads past the end ASan would catch) */
  uint64_t a[3] = {2, 8, 42};
  CU_ASSERT_EQUAL(run_raw(a, 3), MPX_EPROTO);
  /* an input longer than what is left */
  uint64_t b[3] = {1, 64, 42};
  CU_ASSERT_EQUAL(run_raw(b, 3), MPX_EPROTO);
  /* a count that cannot fit */
  uint64_t c[2] = {UINT64_MAX, 0};
  CU_ASSERT_EQUAL(run_raw(c, 2), MPX_EPROTO);
  /* a length that wraps when padded */
  uint64_t d[3] = {1, UINT64_MAX - 2, 0};
  CU_ASSERT_EQUAL(run_raw(d, 3), MPX_EPROTO);
  /* shorter than its count */
  CU_ASSERT_EQUAL(run_raw(a, 0), MPX_EPROTO);
  /* well-formed: one input */
  uint64_t e[3] = {1, 8, 21};
  CU_ASSERT_EQUAL(run_raw(e, 3), 0);
}

static void test_array_names_and_shapes(void) {
  mpx_task_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.name = "t";
  const char *bad[] = {"",
                       "a/b",
                       "/x",
                       "mpx",
                       ".",
                       "0123456789012345678901234567890123456789012345678901"
                       "234567890123"};
  const char *why[] = {"is empty",    "holds a '/'", "holds a '/'",
                       "is reserved", "is reserved", "longer than 63"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    CU_ASSERT_PTR_NULL(mpx_task_array(&ctx, bad[i], MPX_FLOAT32, 1, 1));
    CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), why[i]));
    const char *one = "s";
    CU_ASSERT_EQUAL(mpx_task_strings(&ctx, bad[i], &one, 1), MPX_EINVAL);
  }
  CU_ASSERT_EQUAL(ctx.narrays, 0);
  /* names a dataset can have */
  CU_ASSERT_PTR_NOT_NULL(mpx_task_array(&ctx, "mpx2", MPX_INT8, 2, 1));
  CU_ASSERT_PTR_NOT_NULL(mpx_task_array(&ctx, "a.b", MPX_INT8, 2, 1));
  /* widths whose row size overflows, with and without rows */
  CU_ASSERT_PTR_NULL(mpx_task_array(&ctx, "w0", MPX_FLOAT64, 0, SIZE_MAX / 2));
  CU_ASSERT_PTR_NULL(mpx_task_array(&ctx, "w1", MPX_FLOAT64, 3, SIZE_MAX / 8));
  CU_ASSERT_PTR_NOT_NULL(mpx_task_array(&ctx, "w2", MPX_FLOAT64, 0, 5));
  CU_ASSERT_EQUAL(ctx.narrays, 3);
  mpx__arrays_clear(&ctx);
}

static void test_alloc_extremes(void) {
  CU_ASSERT_PTR_NULL(mpx__alloc(SIZE_MAX));
  CU_ASSERT_PTR_NULL(mpx__alloc(SIZE_MAX - 100));
  CU_ASSERT_PTR_NULL(mpx__alloc(SIZE_MAX - ((size_t)2 << 20) + 1));
  void *p = mpx__alloc((size_t)3 << 20); /* huge-page backed */
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  memset(p, 1, (size_t)3 << 20);
  free(p);
  p = mpx__alloc(0);
  CU_ASSERT_PTR_NOT_NULL(p);
  free(p);
}

static const unit_test task_tests[] = {
    {"chunk of inputs, one failing in place", test_chunk_roundtrip},
    {"chunk inputs of 0 to 40 bytes, padded with zeros", test_chunk_lengths},
    {"a chunk of fixed-size elements in one pass", test_chunk_fixed},
    {"truncated and lying chunks", test_malformed_chunks},
    {"array names and overflowing shapes", test_array_names_and_shapes},
    {"allocation sizes that would wrap", test_alloc_extremes},
    {"mpx_task_fail then return 0 still fails", test_fail_then_return_zero},
    {NULL, NULL}};
static const unit_suite suites[] = {{"task", task_tests}, {NULL, NULL}};

int main(void) {
  return unit_main(suites, 60);
}
