/*
 * arrays.c -- typed results: named arrays a task adds with mpx_task_array()
 * or mpx_task_strings(), packed into one self-describing result buffer,
 * and mpx_arrays_parse(), which reads that buffer back on the root.
 *
 * Packed form (8-byte aligned, little-endian):
 *   u32 magic "MPXA", u32 count, then per array a 96-byte header
 *     char name[64] (NUL-padded), u32 dtype, u32 0, u64 rows, u64 width,
 *     u64 nbytes
 *   followed by its nbytes of data padded to 8.
 */
#include <stdlib.h>
#include <string.h>

#include "task.h"
#include "util.h"

#define ARR_MAGIC 0x4158504Du /* "MPXA" */
#define ARR_HDR 96u

size_t mpx_dtype_size(mpx_dtype t) {
  switch (t) {
  case MPX_INT8:
  case MPX_UINT8:
    return 1;
  case MPX_INT16:
  case MPX_UINT16:
    return 2;
  case MPX_INT32:
  case MPX_UINT32:
  case MPX_FLOAT32:
    return 4;
  case MPX_INT64:
  case MPX_UINT64:
  case MPX_FLOAT64:
    return 8;
  default:
    return 0;
  }
}

const char *mpx_dtype_name(mpx_dtype t) {
  static const char *names[] = {"?",      "int8",    "uint8",   "int16",
                                "uint16", "int32",   "uint32",  "int64",
                                "uint64", "float32", "float64", "str"};
  return (int)t >= 1 && (int)t <= MPX_STRING ? names[t] : "?";
}

void mpx__arrays_clear(mpx_task_ctx *ctx) {
  for (size_t i = 0; i < ctx->narrays; i++)
    free(ctx->arrays[i].data);
  free(ctx->arrays);
  ctx->arrays = NULL;
  ctx->narrays = ctx->arrays_cap = 0;
}

_Static_assert(MPX_ARRAY_NAME_MAX == 63, "the message below says 63");

const char *mpx__array_name_problem(const char *name) {
  if (!name || !*name)
    return "is empty";
  if (strlen(name) > MPX_ARRAY_NAME_MAX)
    return "is longer than 63 bytes (MPX_ARRAY_NAME_MAX)";
  if (strchr(name, '/'))
    return "holds a '/'";
  if (strcmp(name, ".") == 0 || strcmp(name, "mpx") == 0)
    return "is reserved";
  return NULL;
}

/* Checks name and points *slot at a new empty slot for it (not yet
 * counted). Returns 0, MPX_EINVAL or MPX_ENOMEM (with mpx_last_error()
 * naming the public call). */
static int add_slot(mpx_task_ctx *ctx, const char *name, mpx__array **slot,
                    const char *call) {
  if (!ctx || !name)
    return mpx__fail(MPX_EINVAL, "%s: NULL context or name", call);
  const char *why = mpx__array_name_problem(name);
  if (why)
    return mpx__fail(MPX_EINVAL, "%s: the name '%.40s' %s", call, name, why);
  for (size_t i = 0; i < ctx->narrays; i++)
    if (strcmp(ctx->arrays[i].name, name) == 0)
      return mpx__fail(MPX_EINVAL, "%s: '%s' added twice", call, name);
  if (mpx__grow(&ctx->arrays, &ctx->arrays_cap, ctx->narrays + 1,
                sizeof *ctx->arrays, 4) != 0)
    return mpx__fail(MPX_ENOMEM, "%s: out of memory", call);
  if (ctx->out) {
    /* Arrays replace raw bytes set earlier. */
    free(ctx->out);
    ctx->out = NULL;
    ctx->out_len = 0;
  }
  mpx__array *s = &ctx->arrays[ctx->narrays];
  memset(s, 0, sizeof *s);
  strcpy(s->name, name);
  *slot = s;
  return 0;
}

/* Adds a numeric array to the task's result and returns its buffer. */
void *mpx_task_array(mpx_task_ctx *ctx, const char *name, mpx_dtype dtype,
                     size_t rows, size_t width) {
  size_t es = mpx_dtype_size(dtype);
  if (es == 0) {
    mpx__fail(MPX_EINVAL,
              "mpx_task_array: dtype %d is not a numeric type (strings go "
              "through mpx_task_strings)",
              (int)dtype);
    return NULL;
  }
  if (width == 0 || width > SIZE_MAX / es / (rows ? rows : 1)) {
    mpx__fail(MPX_EINVAL, "mpx_task_array: bad shape %zu x %zu", rows, width);
    return NULL;
  }
  mpx__array *s;
  if (add_slot(ctx, name, &s, "mpx_task_array") != 0)
    return NULL;
  size_t nb = rows * width * es;
  s->data = mpx__alloc(nb);
  if (!s->data) {
    mpx__fail(MPX_ENOMEM, "mpx_task_array: out of memory for %zu bytes", nb);
    return NULL;
  }
  memset(s->data, 0, nb);
  s->dtype = dtype;
  s->rows = rows;
  s->width = width;
  s->nbytes = nb;
  ctx->narrays++;
  return s->data;
}

/* Adds a string array (copied) to the task's result. */
int mpx_task_strings(mpx_task_ctx *ctx, const char *name,
                     const char *const *strs, size_t rows) {
  size_t nb = 0;
  if (!ctx)
    return mpx__fail(MPX_EINVAL, "mpx_task_strings: NULL context");
  for (size_t i = 0; i < rows; i++) {
    if (!strs || !strs[i])
      return mpx__fail(MPX_EINVAL, "mpx_task_strings: string %zu is NULL", i);
    nb += strlen(strs[i]) + 1;
  }
  mpx__array *s;
  int rc = add_slot(ctx, name, &s, "mpx_task_strings");
  if (rc != 0)
    return rc;
  s->data = mpx__alloc(nb);
  if (!s->data)
    return mpx__fail(MPX_ENOMEM, "mpx_task_strings: out of memory");
  char *p = s->data;
  for (size_t i = 0; i < rows; i++) {
    size_t l = strlen(strs[i]) + 1;
    memcpy(p, strs[i], l);
    p += l;
  }
  s->dtype = MPX_STRING;
  s->rows = rows;
  s->width = 1;
  s->nbytes = nb;
  ctx->narrays++;
  return 0;
}

/* Packs the task's arrays into one typed result buffer. */
int mpx__arrays_pack(mpx_task_ctx *ctx) {
  uint64_t total = 8;
  for (size_t i = 0; i < ctx->narrays; i++)
    total += ARR_HDR + mpx__pad8(ctx->arrays[i].nbytes);
  unsigned char *b = mpx__alloc((size_t)total);
  if (!b)
    return mpx__fail(MPX_ENOMEM, "out of memory packing %llu bytes of arrays",
                     (unsigned long long)total);
  uint32_t magic = ARR_MAGIC, cnt = (uint32_t)ctx->narrays;
  memcpy(b, &magic, 4);
  memcpy(b + 4, &cnt, 4);
  size_t pos = 8;
  for (size_t i = 0; i < ctx->narrays; i++) {
    const mpx__array *a = &ctx->arrays[i];
    uint32_t dt = (uint32_t)a->dtype, zero = 0;
    memset(b + pos, 0, 64);
    memcpy(b + pos, a->name, strlen(a->name));
    memcpy(b + pos + 64, &dt, 4);
    memcpy(b + pos + 68, &zero, 4);
    memcpy(b + pos + 72, &a->rows, 8);
    memcpy(b + pos + 80, &a->width, 8);
    memcpy(b + pos + 88, &a->nbytes, 8);
    pos += ARR_HDR;
    memcpy(b + pos, a->data, a->nbytes);
    memset(b + pos + a->nbytes, 0, mpx__pad8(a->nbytes) - a->nbytes);
    pos += mpx__pad8(a->nbytes);
  }
  free(ctx->out);
  ctx->out = b;
  ctx->out_len = (size_t)total;
  mpx__arrays_clear(ctx);
  return 0;
}

/* Decodes a typed result into at most max array descriptions. */
int mpx_arrays_parse(const void *buf, size_t len, mpx_array *arrays, size_t max,
                     size_t *n) {
  if (n)
    *n = 0;
  if (!n || (max && !arrays) || (len && !buf))
    return mpx__fail(MPX_EINVAL, "mpx_arrays_parse: NULL argument");
  if (len == 0)
    return 0;
  const unsigned char *b = buf;
  uint32_t magic, cnt;
  if (len < 8 || (memcpy(&magic, b, 4), magic != ARR_MAGIC))
    return mpx__fail(
        MPX_EINVAL,
        "mpx_arrays_parse: the result (%zu bytes) is not typed arrays "
        "(the task used mpx_task_return?)",
        len);
  memcpy(&cnt, b + 4, 4);
  size_t pos = 8;
  for (uint32_t i = 0; i < cnt; i++) {
    if (len - pos < ARR_HDR)
      return mpx__fail(MPX_EINVAL,
                       "mpx_arrays_parse: typed result truncated in array %u",
                       i);
    const char *name = (const char *)b + pos;
    uint32_t dt;
    uint64_t rows, width, nb;
    memcpy(&dt, b + pos + 64, 4);
    memcpy(&rows, b + pos + 72, 8);
    memcpy(&width, b + pos + 80, 8);
    memcpy(&nb, b + pos + 88, 8);
    if (memchr(name, '\0', 64) == NULL || !name[0])
      return mpx__fail(
          MPX_EINVAL, "mpx_arrays_parse: typed result: array %u has a bad name",
          i);
    pos += ARR_HDR;
    if (nb > len - pos || mpx__pad8(nb) > len - pos)
      return mpx__fail(MPX_EINVAL,
                       "mpx_arrays_parse: typed result: array '%s' truncated",
                       name);
    const unsigned char *d = b + pos;
    size_t es = mpx_dtype_size((mpx_dtype)dt);
    if (dt == MPX_STRING) {
      uint64_t nuls = 0;
      for (uint64_t k = 0; k < nb; k++)
        nuls += d[k] == 0;
      if (width != 1 || nuls != rows || (nb && d[nb - 1] != 0))
        return mpx__fail(
            MPX_EINVAL,
            "mpx_arrays_parse: typed result: string array '%s' is malformed",
            name);
    } else if (es == 0 || width == 0 ||
               width > UINT64_MAX / es / (rows ? rows : 1) ||
               rows * width * es != nb) {
      return mpx__fail(MPX_EINVAL,
                       "mpx_arrays_parse: typed result: array '%s' has type %u "
                       "and shape %llu x "
                       "%llu but %llu bytes",
                       name, dt, (unsigned long long)rows,
                       (unsigned long long)width, (unsigned long long)nb);
    }
    if (i < max) {
      arrays[i].name = name;
      arrays[i].dtype = (mpx_dtype)dt;
      arrays[i].rows = rows;
      arrays[i].width = width;
      arrays[i].data = d;
      arrays[i].nbytes = nb;
    }
    pos += mpx__pad8(nb);
  }
  *n = cnt;
  if (cnt > max)
    return mpx__fail(
        MPX_E2BIG,
        "mpx_arrays_parse: typed result holds %u arrays, room for %zu", cnt,
        max);
  return 0;
}
