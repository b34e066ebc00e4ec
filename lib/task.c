/*
 * task.c -- the task context API used inside tasks, and mpx__task_run(),
 * which turns a task's outcome into a result or a failure message that
 * says where it happened (the C analogue of a remote traceback), for one
 * input or for a chunk of a map's inputs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "task.h"
#include "util.h"

/* Makes p (len bytes) the task's raw result, dropping earlier results. */
static void set_out(mpx_task_ctx *ctx, void *p, size_t len) {
  free(ctx->out);
  ctx->out = p;
  ctx->out_len = len;
  mpx__arrays_clear(ctx);
}

/* Copies len bytes at data as the task's result. */
int mpx_task_return(mpx_task_ctx *ctx, const void *data, size_t len) {
  if (!ctx || (len && !data))
    return mpx__fail(MPX_EINVAL, "mpx_task_return: NULL %s",
                     !ctx ? "context" : "data with a length");
  void *p = mpx__alloc(len);
  if (!p)
    return mpx__fail(MPX_ENOMEM,
                     "mpx_task_return: out of memory for a %zu-byte result",
                     len);
  if (len)
    memcpy(p, data, len);
  set_out(ctx, p, len);
  return 0;
}

/* Allocates the task's result buffer of len bytes and returns it. */
void *mpx_task_output(mpx_task_ctx *ctx, size_t len) {
  if (!ctx) {
    mpx__fail(MPX_EINVAL, "mpx_task_output: NULL context");
    return NULL;
  }
  void *p = mpx__alloc(len);
  if (!p) {
    mpx__fail(MPX_ENOMEM,
              "mpx_task_output: out of memory for a %zu-byte result", len);
    return NULL;
  }
  set_out(ctx, p, len);
  return p;
}

/* Records the task's failure message and returns MPX_ETASK. */
int mpx_task_fail(mpx_task_ctx *ctx, const char *fmt, ...) {
  if (!ctx)
    return mpx__fail(MPX_ETASK, "mpx_task_fail: NULL context");
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt ? fmt : "", ap);
  va_end(ap);
  free(ctx->err);
  /* Copied with malloc (not strdup) so that out of memory is one path,
   * and the failure stands even when its text cannot be kept. */
  size_t n = strlen(buf) + 1;
  ctx->err = malloc(n);
  if (ctx->err)
    memcpy(ctx->err, buf, n);
  ctx->failed = 1;
  return MPX_ETASK;
}

/* Returns the rank running the task, -1 for NULL. */
int mpx_task_rank(const mpx_task_ctx *ctx) {
  return ctx ? ctx->rank : -1;
}

/* The state the initializer kept: one per process (per task process with
 * isolation). */
static void *task_state;

void mpx_task_set_state(mpx_task_ctx *ctx, void *state) {
  (void)ctx;
  task_state = state;
}

void *mpx_task_state(const mpx_task_ctx *ctx) {
  (void)ctx;
  return task_state;
}

/* Returns the name of the task being run, NULL for NULL. */
const char *mpx_task_name(const mpx_task_ctx *ctx) {
  return ctx ? ctx->name : NULL;
}

/* Builds "task 'name' failed on rank r of n (host h): text". */
static char *where_msg(const char *name, int rank, int size, const char *text,
                       size_t *len) {
  const char *fmt = "task '%s' failed on rank %d of %d (host %s): %s";
  int n = snprintf(NULL, 0, fmt, name, rank, size, mpx__hostname(), text);
  char *m = malloc((size_t)n + 1);
  if (!m)
    return NULL;
  snprintf(m, (size_t)n + 1, fmt, name, rank, size, mpx__hostname(), text);
  *len = (size_t)n;
  return m;
}

/* Runs fn on one input; see mpx__task_run() for the outcome. */
static int run_one(mpx_task_fn fn, const char *name, const void *arg,
                   size_t len, int rank, int size, void **result,
                   size_t *rlen) {
  static const uint64_t empty_arg = 0;
  mpx_task_ctx ctx = {rank, size, name, NULL, 0, NULL, NULL, 0, 0, 0};
  int rc = fn(&ctx, len ? arg : (const void *)&empty_arg, len);
  if (rc == 0 && ctx.failed)
    rc = MPX_ETASK; /* it said it failed: a return of 0 does not undo it */
  int oom = 0;      /* mpx, not the task, ran out of memory */
  if (rc == 0 && ctx.narrays && mpx__arrays_pack(&ctx) != 0)
    rc = MPX_ENOMEM, oom = 1;
  mpx__arrays_clear(&ctx);
  if (rc == 0) {
    if (!ctx.out && !(ctx.out = mpx__alloc(0)))
      rc = MPX_ENOMEM, oom = 1;
    *result = ctx.out;
    *rlen = ctx.out ? ctx.out_len : 0;
    free(ctx.err);
    if (rc == 0)
      return 0;
    *result = NULL;
    *rlen = 0;
  }
  char text[96];
  if (!ctx.err) {
    snprintf(text, sizeof text, "returned %d", rc);
    if (rc == MPX_ENOMEM)
      snprintf(text, sizeof text, "out of memory for the result");
    else if (ctx.failed)
      snprintf(text, sizeof text, "failed (out of memory for its message)");
  }
  free(ctx.out);
  *result = where_msg(name, rank, size, ctx.err ? ctx.err : text, rlen);
  free(ctx.err);
  return oom ? MPX_ENOMEM : MPX_ETASK;
}

int mpx__chunkbuf_add(mpx__chunkbuf *b, const void *data, size_t len) {
  size_t at = b->len ? b->len : 8, pad = mpx__pad8(len);
  size_t need = at + 8 + pad;
  if (need > b->cap && mpx__grow(&b->buf, &b->cap, need, 1, 256) != 0)
    return mpx__fail(MPX_ENOMEM, "out of memory for a %zu-byte chunk", need);
  unsigned char *p = b->buf + at;
  uint64_t l = len;
  memcpy(p, &l, 8);
  if (len)
    memcpy(p + 8, data, len);
  if (pad != len)
    memset(p + 8 + len, 0, pad - len);
  b->len = need;
  b->count++;
  return 0;
}

int mpx__chunkbuf_add_fixed(mpx__chunkbuf *b, const void *base, uint64_t count,
                            size_t size) {
  size_t at = b->len ? b->len : 8, pad = mpx__pad8(size), per = 8 + pad;
  if (count > (SIZE_MAX - at) / per)
    return mpx__fail(MPX_ENOMEM,
                     "a chunk of %llu inputs of %zu bytes does not "
                     "fit the address space",
                     (unsigned long long)count, size);
  size_t need = at + (size_t)count * per;
  if (need > b->cap && mpx__grow(&b->buf, &b->cap, need, 1, need) != 0)
    return mpx__fail(MPX_ENOMEM, "out of memory for a %zu-byte chunk", need);
  unsigned char *p = b->buf + at;
  const unsigned char *src = base;
  uint64_t l = size;
  if (size == 8) /* the common int64/double element, without a call each */
    for (uint64_t i = 0; i < count; i++, p += 16, src += 8) {
      memcpy(p, &l, 8);
      memcpy(p + 8, src, 8);
    }
  else
    for (uint64_t i = 0; i < count; i++, p += per, src += size) {
      memcpy(p, &l, 8);
      memcpy(p + 8, src, size);
      if (pad != size)
        memset(p + 8 + size, 0, pad - size);
    }
  b->len = need;
  b->count += count;
  return 0;
}

void mpx__chunkbuf_reserve(mpx__chunkbuf *b, uint64_t count, size_t len) {
  size_t cap = (size_t)16 << 20; /* at most */
  if (len > cap)
    return;
  size_t per = 8 + mpx__pad8(len);
  size_t need = count > (cap - 8) / per ? cap : 8 + (size_t)count * per;
  if (need > b->cap)
    (void)mpx__grow(&b->buf, &b->cap, need, 1, need);
}

void *mpx__chunkbuf_finish(mpx__chunkbuf *b, size_t *len) {
  void *p = b->buf;
  if (p)
    memcpy(p, &b->count, 8);
  *len = b->len;
  memset(b, 0, sizeof *b);
  return p;
}

int mpx__chunk_arg_parse(const void *arg, size_t len, uint64_t *n,
                         mpx__outcome *in) {
  const unsigned char *a = arg;
  uint64_t cnt = 0;
  if (len < 8 || (memcpy(&cnt, a, 8), cnt > (len - 8) / 8))
    return mpx__fail(MPX_EPROTO, "malformed chunk");
  size_t pos = 8;
  for (uint64_t i = 0; i < cnt; i++) {
    uint64_t l;
    if (len - pos < 8)
      return mpx__fail(MPX_EPROTO, "malformed chunk");
    memcpy(&l, a + pos, 8);
    pos += 8;
    if (l > len - pos || mpx__pad8(l) > len - pos)
      return mpx__fail(MPX_EPROTO, "malformed chunk");
    if (in)
      in[i] = (mpx__outcome){0, a + pos, (size_t)l};
    pos += mpx__pad8(l);
  }
  *n = cnt;
  return 0;
}

int mpx__chunk_result_pack(uint64_t n, const int *st, void *const *res,
                           const size_t *rl, void **out, size_t *olen) {
  size_t total = 8 + 16 * (size_t)n;
  for (uint64_t i = 0; i < n; i++)
    total += mpx__pad8(rl[i]);
  unsigned char *o = mpx__alloc(total);
  if (!o)
    return MPX_ENOMEM;
  memcpy(o, &n, 8);
  size_t p = 8 + 16 * (size_t)n;
  for (uint64_t i = 0; i < n; i++) {
    int32_t s32 = st[i];
    uint32_t zero = 0;
    uint64_t l = rl[i];
    memcpy(o + 8 + 16 * i, &s32, 4);
    memcpy(o + 12 + 16 * i, &zero, 4);
    memcpy(o + 16 + 16 * i, &l, 8);
    if (l)
      memcpy(o + p, res[i], l);
    memset(o + p + l, 0, mpx__pad8(l) - l);
    p += mpx__pad8(l);
  }
  *out = o;
  *olen = total;
  return 0;
}

/* Runs every input of a chunk and packs the outcomes. Returns 0 with the
 * chunk result, or a failure for the chunk as a whole (malformed chunk,
 * out of memory) in the same form as run_one(). */
static int run_chunk(mpx_task_fn fn, const char *name, const void *arg,
                     size_t len, int rank, int size, void **result,
                     size_t *rlen) {
  uint64_t n = 0;
  const char *bad = NULL;
  int bad_st = 0;
  mpx__outcome *in = NULL;
  void **res = NULL;
  size_t *rl = NULL;
  int *st = NULL;
  if (mpx__chunk_arg_parse(arg, len, &n, NULL) != 0) {
    bad = "malformed chunk";
    bad_st = MPX_EPROTO;
  } else if (n) {
    in = calloc(n, sizeof *in);
    res = calloc(n, sizeof *res);
    rl = calloc(n, sizeof *rl);
    st = calloc(n, sizeof *st);
    if (!in || !res || !rl || !st) {
      bad = "out of memory for the chunk's results";
      bad_st = MPX_ENOMEM;
    } else {
      mpx__chunk_arg_parse(arg, len, &n, in);
    }
  }
  for (uint64_t i = 0; !bad && i < n; i++) {
    st[i] =
        run_one(fn, name, in[i].data, in[i].len, rank, size, &res[i], &rl[i]);
    if (st[i] != 0 && res[i])
      rl[i]++; /* keep the NUL */
    if (!res[i]) {
      /* No memory even for the message: report it in place. */
      static const char oom[] = "out of memory on the worker";
      st[i] = MPX_ENOMEM;
      res[i] = strdup(oom);
      rl[i] = res[i] ? sizeof oom : 0;
    }
  }
  void *out = NULL;
  size_t total = 0;
  if (!bad && mpx__chunk_result_pack(n, st, res, rl, &out, &total) != 0) {
    bad = "out of memory for the chunk's results";
    bad_st = MPX_ENOMEM;
  }
  for (uint64_t i = 0; res && i < n; i++)
    free(res[i]);
  free(in);
  free(res);
  free(rl);
  free(st);
  if (bad) {
    *result = where_msg(name, rank, size, bad, rlen);
    return bad_st;
  }
  *result = out;
  *rlen = total;
  return 0;
}

int mpx__chunk_result_parse(const void *buf, size_t len, uint64_t n,
                            mpx__outcome *out) {
  const unsigned char *b = buf;
  uint64_t cnt;
  if (len < 8 || (memcpy(&cnt, b, 8), cnt != n) || n > (len - 8) / 16)
    return mpx__fail(MPX_EPROTO,
                     "a chunk result of %zu bytes does not hold "
                     "%llu outcomes",
                     len, (unsigned long long)n);
  size_t pos = 8 + 16 * (size_t)n;
  for (uint64_t i = 0; i < n; i++) {
    int32_t st;
    uint64_t l;
    memcpy(&st, b + 8 + 16 * i, 4);
    memcpy(&l, b + 16 + 16 * i, 8);
    if (l > len - pos || mpx__pad8(l) > len - pos)
      return mpx__fail(MPX_EPROTO,
                       "outcome %llu of a chunk result overruns "
                       "it",
                       (unsigned long long)i);
    if (st != 0 && (l == 0 || b[pos + l - 1] != '\0'))
      return mpx__fail(MPX_EPROTO,
                       "outcome %llu of a chunk result has an "
                       "unterminated failure text",
                       (unsigned long long)i); /* texts end with NUL */
    out[i].status = st;
    out[i].data = b + pos;
    out[i].len = st != 0 ? l - 1 : l;
    pos += mpx__pad8(l);
  }
  return 0;
}

int mpx__task_run(uint32_t task_id, const void *arg, size_t len, int rank,
                  int size, void **result, size_t *rlen) {
  uint32_t id = task_id & ~MPX__TASK_CHUNK;
  mpx_task_fn fn = mpx__registry_fn(id);
  *result = NULL;
  *rlen = 0;
  if (!fn) {
    char text[64];
    snprintf(text, sizeof text, "no task with id %u on this rank", id);
    *result = where_msg("?", rank, size, text, rlen);
    return MPX_ENOTASK;
  }
  const char *name = mpx__registry_name(id);
  if (task_id & MPX__TASK_CHUNK)
    return run_chunk(fn, name, arg, len, rank, size, result, rlen);
  return run_one(fn, name, arg, len, rank, size, result, rlen);
}
