/*
 * task.h -- running one registered task and capturing its outcome, shared
 * by the worker loop and the single-rank executor. A call item whose task
 * id carries MPX__TASK_CHUNK holds a chunk of a map: many inputs for the
 * task, run back to back, whose outcomes travel back as one result.
 *
 * Chunk argument:  u64 count, then per input u64 len and its bytes padded
 *                  to 8 (built one input at a time, as a producer yields).
 * Chunk result:    u64 count, {i32 status, u32 0, u64 len}[count], then each
 *                  outcome padded to 8 (the result bytes for status 0, the
 *                  failure message otherwise).
 */
#ifndef MPX_TASK_H
#define MPX_TASK_H

#include "mpx.h"

#define MPX__TASK_CHUNK 0x80000000u

/* One named array a task added (see arrays.c). */
typedef struct mpx__array {
  char name[MPX_ARRAY_NAME_MAX + 1];
  mpx_dtype dtype;
  uint64_t rows, width, nbytes;
  void *data; /* malloc'd */
} mpx__array;

struct mpx_task_ctx {
  int rank, size;
  const char *name;
  void *out; /* result buffer (malloc'd) */
  size_t out_len;
  char *err;          /* failure text (malloc'd) */
  mpx__array *arrays; /* typed result, packed into out at the end */
  size_t narrays, arrays_cap;
  int failed; /* mpx_task_fail() was called, even if err could not be
                 copied */
};

/* Runs task task_id on arg. Returns the status (0, MPX_ETASK, MPX_ENOTASK,
 * MPX_ENOMEM when mpx itself ran out of memory packing the result, or
 * MPX_EPROTO for a malformed chunk); on 0 *result and *rlen hold the result
 * (malloc'd), otherwise *result is a malloc'd, NUL-terminated failure message
 * naming the task, rank, size and host, and *rlen its length. With
 * MPX__TASK_CHUNK set the argument is a chunk and a status 0 result is the
 * chunk result. */
int mpx__task_run(uint32_t task_id, const void *arg, size_t len, int rank,
                  int size, void **result, size_t *rlen);

/* Drops the arrays of ctx (arrays.c). */
void mpx__arrays_clear(mpx_task_ctx *ctx);

/* Packs the arrays of ctx into ctx->out (arrays.c), freeing them. Returns 0
 * or MPX_ENOMEM. */
int mpx__arrays_pack(mpx_task_ctx *ctx);

/* Why name cannot name an array (and so a dataset): "is empty", "holds a
 * '/'"..., or NULL when it can. */
const char *mpx__array_name_problem(const char *name);

/* A chunk argument under construction. */
typedef struct mpx__chunkbuf {
  unsigned char *buf;
  size_t len, cap;
  uint64_t count;
} mpx__chunkbuf;

/* Appends one input (copied). Returns 0 or MPX_ENOMEM. */
int mpx__chunkbuf_add(mpx__chunkbuf *b, const void *data, size_t len);

/* Appends count inputs of size bytes each, input i the size bytes at
 * base + i * size (copied): mpx__chunkbuf_add() in one pass for an array
 * of fixed-size items. Returns 0 or MPX_ENOMEM (then b is unchanged). */
int mpx__chunkbuf_add_fixed(mpx__chunkbuf *b, const void *base, uint64_t count,
                            size_t size);

/* Makes room, when it can, for count inputs of len bytes each, up to
 * 16 MiB (a hint: a failure is left to mpx__chunkbuf_add). */
void mpx__chunkbuf_reserve(mpx__chunkbuf *b, uint64_t count, size_t len);

/* Hands over the finished chunk argument (malloc'd; NULL if nothing was
 * added) and its length, and empties b. */
void *mpx__chunkbuf_finish(mpx__chunkbuf *b, size_t *len);

/* One input's outcome inside a chunk result. */
typedef struct mpx__outcome {
  int status;
  const void *data; /* result bytes, or the NUL-terminated failure text */
  size_t len;
} mpx__outcome;

/* Validates a chunk argument of len bytes; sets *n to its number of inputs
 * and, when in is not NULL (room for *n entries), in[i].data/.len to input
 * i. Returns 0 or MPX_EPROTO. */
int mpx__chunk_arg_parse(const void *arg, size_t len, uint64_t *n,
                         mpx__outcome *in);

/* Packs n outcomes (status st[i], rl[i] bytes at res[i]; a failure text
 * counts its NUL) into a chunk result (*out, malloc'd, *olen bytes).
 * Returns 0 or MPX_ENOMEM. */
int mpx__chunk_result_pack(uint64_t n, const int *st, void *const *res,
                           const size_t *rl, void **out, size_t *olen);

/* Validates a chunk result of len bytes that must hold n outcomes and
 * describes them in out[0..n). Returns 0 or MPX_EPROTO. */
int mpx__chunk_result_parse(const void *buf, size_t len, uint64_t n,
                            mpx__outcome *out);

#endif
