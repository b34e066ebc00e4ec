/*
 * task.h -- running one registered task and capturing its outcome, shared
 * by the worker loop and the single-rank executor.
 */
#ifndef MPX_TASK_H
#define MPX_TASK_H

#include "mpx.h"

struct mpx_task_ctx {
  int rank, size;
  const char *name;
  void *out; /* result buffer (malloc'd) */
  size_t out_len;
  char *err; /* failure text (malloc'd) */
};

/* Runs task task_id on arg. Returns the status (0, MPX_ETASK or
 * MPX_ENOTASK); on 0 *result and *rlen hold the result (malloc'd), otherwise
 * *result is a malloc'd, NUL-terminated failure message naming the task,
 * rank, size and host, and *rlen its length. */
int mpx__task_run(uint32_t task_id, const void *arg, size_t len, int rank,
                  int size, void **result, size_t *rlen);

#endif
