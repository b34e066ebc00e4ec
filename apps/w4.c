#define _POSIX_C_SOURCE 200809L
/*
 * w4.c -- the W4 task (see w4.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpx.h"
#include "w4.h"

int32_t w4_row(int64_t i, float row[W4_WIDTH]) {
  for (int j = 0; j < W4_WIDTH; j++)
    row[j] = (float)sin(0.001 * (double)i + 0.1 * (double)j);
  return (int32_t)(i % 7);
}

static long env_long(const char *name) {
  const char *s = getenv(name);
  return s ? strtol(s, NULL, 10) : 0;
}

int w4_part(mpx_task_ctx *ctx, const char *task, const void *arg, size_t len,
            int64_t b[2]) {
  if (len != 2 * sizeof *b)
    return mpx_task_fail(ctx, "%s needs {start, stop}, got %zu bytes", task,
                         len);
  memcpy(b, arg, 2 * sizeof *b);
  if (b[1] < b[0])
    return mpx_task_fail(ctx, "%s: stop %lld < start %lld", task,
                         (long long)b[1], (long long)b[0]);
  return 0;
}

static int w4_rows(mpx_task_ctx *ctx, const void *arg, size_t len) {
  int64_t b[2];
  int rc = w4_part(ctx, W4_TASK, arg, len, b);
  if (rc)
    return rc;
  long fail_every = env_long("MPX_W4_FAIL_EVERY");
  if (fail_every > 0 && b[0] % fail_every == 0)
    return mpx_task_fail(ctx, "part starting at %lld fails on purpose",
                         (long long)b[0]);
  return w4_fill(ctx, W4_TASK, b);
}

int w4_fill(mpx_task_ctx *ctx, const char *task, const int64_t b[2]) {
  size_t m = (size_t)(b[1] - b[0]);
  float *feat = mpx_task_array(ctx, "feature", MPX_FLOAT32, m, W4_WIDTH);
  int32_t *tgt = mpx_task_array(ctx, "target", MPX_INT32, m, 1);
  if (!feat || !tgt)
    return mpx_task_fail(ctx, "%s: no memory for %zu rows", task, m);
  /* MPX_W4_SLOW=R:MS: the part holding row R sleeps MS ms first. */
  const char *slow = getenv("MPX_W4_SLOW");
  if (slow) {
    long row = strtol(slow, NULL, 10), ms = 0;
    const char *c = strchr(slow, ':');
    if (c)
      ms = strtol(c + 1, NULL, 10);
    if (row >= b[0] && row < b[1] && ms > 0) {
      struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
      nanosleep(&ts, NULL);
    }
  }
  long delay = env_long("MPX_W4_DELAY_US");
  for (size_t r = 0; r < m; r++) {
    tgt[r] = w4_row(b[0] + (int64_t)r, feat + r * W4_WIDTH);
    if (delay > 0) {
      struct timespec ts = {delay / 1000000, (delay % 1000000) * 1000};
      nanosleep(&ts, NULL);
    }
  }
  return 0;
}

int w4_register(void) {
  return mpx_register(W4_TASK, w4_rows);
}
