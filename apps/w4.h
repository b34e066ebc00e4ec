/*
 * w4.h -- the seed workload W4 as an mpx task, shared by mpx-bench and the
 * job tests: the task "w4_rows" takes a part {int64 start, int64 stop} of
 * an index range and returns, per index i in [start, stop), one row of the
 * arrays
 *   feature  float32 [64]   feature[j] = (float)sin(0.001 * i + 0.1 * j)
 *   target   int32          target = i % 7
 * (a cheap deterministic function; scripts/bench_peers.py computes the same
 * with numpy). The environment variable MPX_W4_DELAY_US makes every row
 * sleep that long, to stretch a job for the kill-and-resume tests,
 * MPX_W4_SLOW=R:MS makes the part holding row R sleep MS milliseconds
 * before it computes, and MPX_W4_FAIL_EVERY=K makes parts whose start is
 * a multiple of K fail.
 */
#ifndef MPX_W4_H
#define MPX_W4_H

#include <stddef.h>
#include <stdint.h>

#include "mpx.h"

#define W4_WIDTH 64
#define W4_TASK "w4_rows"

/* Registers "w4_rows" (call on every rank, before the executor). Returns
 * mpx_register()'s code. */
int w4_register(void);

/* Fills one feature row and returns the target of index i. */
int32_t w4_row(int64_t i, float row[W4_WIDTH]);

/* Reads a part {int64 start, int64 stop} into b for the task named task.
 * Returns 0, or mpx_task_fail()'s code (for the task to return) when the
 * argument is the wrong size or stop < start. */
int w4_part(mpx_task_ctx *ctx, const char *task, const void *arg, size_t len,
            int64_t b[2]);

/* The arrays "feature" and "target" of the part b = {start, stop}, as
 * "w4_rows" returns them (MPX_W4_SLOW and MPX_W4_DELAY_US included), for
 * tasks built on W4; task names the task in a failure. Returns 0 or
 * mpx_task_fail()'s code. */
int w4_fill(mpx_task_ctx *ctx, const char *task, const int64_t b[2]);

#endif
