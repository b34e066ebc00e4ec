/*
 * task.c -- the task context API used inside tasks, and mpx__task_run(),
 * which turns a task's outcome into a result or a failure message that
 * says where it happened (the C analogue of a remote traceback).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "task.h"
#include "util.h"

static void set_out(mpx_task_ctx *ctx, void *p, size_t len) {
  free(ctx->out);
  ctx->out = p;
  ctx->out_len = len;
}

int mpx_task_return(mpx_task_ctx *ctx, const void *data, size_t len) {
  if (!ctx || (len && !data))
    return MPX_EINVAL;
  void *p = mpx__alloc(len);
  if (!p)
    return MPX_ENOMEM;
  if (len)
    memcpy(p, data, len);
  set_out(ctx, p, len);
  return 0;
}

void *mpx_task_output(mpx_task_ctx *ctx, size_t len) {
  if (!ctx)
    return NULL;
  void *p = mpx__alloc(len);
  if (p)
    set_out(ctx, p, len);
  return p;
}

int mpx_task_fail(mpx_task_ctx *ctx, const char *fmt, ...) {
  if (!ctx)
    return MPX_ETASK;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt ? fmt : "", ap);
  va_end(ap);
  free(ctx->err);
  ctx->err = strdup(buf);
  return MPX_ETASK;
}

int mpx_task_rank(const mpx_task_ctx *ctx) {
  return ctx ? ctx->rank : -1;
}

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

int mpx__task_run(uint32_t task_id, const void *arg, size_t len, int rank,
                  int size, void **result, size_t *rlen) {
  static const uint64_t empty_arg = 0;
  mpx_task_fn fn = mpx__registry_fn(task_id);
  *result = NULL;
  *rlen = 0;
  if (!fn) {
    char text[64];
    snprintf(text, sizeof text, "no task with id %u on this rank", task_id);
    *result = where_msg("?", rank, size, text, rlen);
    return MPX_ENOTASK;
  }
  mpx_task_ctx ctx = {rank, size, mpx__registry_name(task_id), NULL, 0, NULL};
  int rc = fn(&ctx, len ? arg : (const void *)&empty_arg, len);
  if (rc == 0) {
    if (!ctx.out && !(ctx.out = mpx__alloc(0)))
      rc = MPX_ENOMEM;
    *result = ctx.out;
    *rlen = ctx.out ? ctx.out_len : 0;
    free(ctx.err);
    if (rc == 0)
      return 0;
    *result = NULL;
    *rlen = 0;
  }
  char text[64];
  if (!ctx.err) {
    snprintf(text, sizeof text, "returned %d", rc);
    if (rc == MPX_ENOMEM)
      snprintf(text, sizeof text, "out of memory for the result");
  }
  free(ctx.out);
  *result = where_msg(ctx.name, rank, size, ctx.err ? ctx.err : text, rlen);
  free(ctx.err);
  return MPX_ETASK;
}
