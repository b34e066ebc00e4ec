/*
 * supervise.h -- supervised task processes: the isolation mode's engine,
 * used by the worker loop (one task process per worker rank) and by a
 * one-rank pool (N local task processes, a real process pool).
 *
 * The supervisor forks persistent task processes (they never call MPI and
 * leave only through _exit), feeds them tasks over a socket pair as
 * length-prefixed frames, several in flight per process, and turns each
 * task's fate into an outcome: its result or failure, or a death it
 * caused (killed by a signal, exit() inside the task, a time limit, a
 * memory limit). Tasks sent behind a task that killed its process run
 * again in a fresh one. A call item that is a map chunk is run input by
 * input, so a crash loses only its own input. See docs/supervision.md.
 *
 * Single-threaded: one thread owns a supervisor.
 */
#ifndef MPX_SUPERVISE_H
#define MPX_SUPERVISE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mpx.h"

/* The pool's initializer as every rank knows it once creation agreed on
 * it: a task id (-1: none) and its argument. */
typedef struct mpx__pool_init {
  int id;
  const void *arg;
  size_t len;
} mpx__pool_init;

typedef struct mpx__sup mpx__sup;

typedef struct mpx__sup_config {
  int nprocs;           /* task processes, >= 1 */
  int rank, size;       /* where the tasks run, for messages */
  double time_limit;    /* default per-task time limit in seconds, 0 none */
  double kill_grace;    /* seconds from SIGTERM to SIGKILL at a time limit */
  uint64_t mem_limit;   /* bytes of address space a task process may add
                           to what it inherited; 0 none */
  int max_tasks;        /* tasks per process before it is replaced, 0 none */
  int init_id;          /* task id of the initializer, or -1 */
  const void *init_arg; /* its argument (borrowed for the supervisor's
                           life) */
  size_t init_len;
} mpx__sup_config;

/* The outcome of one item. */
typedef struct mpx__sup_outcome {
  uint64_t tag;
  int status; /* 0, or the MPX_E* of the failure */
  void *data; /* malloc'd: the result, or a NUL-terminated message
                 (len without the NUL) naming task, rank, host, cause */
  size_t len;
  uint32_t busy_us; /* the task's run time in its process */
} mpx__sup_outcome;

/* Fills c from the executor's options for nprocs processes at rank of
 * size (kill grace: env MPX_KILL_GRACE, default 1 s). */
void mpx__sup_config_init(mpx__sup_config *c, const mpx_executor_options *o,
                          const mpx__pool_init *pi, int rank, int size,
                          int nprocs);

/* Creates a supervisor; no process starts until the first item. Returns 0
 * or MPX_ENOMEM. */
int mpx__sup_create(const mpx__sup_config *c, mpx__sup **out);

/* Queues an item: task task_id (MPX__TASK_CHUNK set for a map chunk) on
 * len bytes at arg, which stays valid and unchanged until its outcome is
 * returned. time_limit < 0 takes the configured default, 0 is none.
 * Returns 0, MPX_ENOMEM, or MPX_EPROTO for a malformed chunk. */
int mpx__sup_add(mpx__sup *s, uint64_t tag, uint32_t task_id, const void *arg,
                 size_t len, double time_limit);

/* Runs the processes until an outcome is ready (returns 1 and fills *oc,
 * whose data the caller then owns), timeout seconds pass (< 0: forever),
 * or the wake descriptor becomes readable (returns 0 for both). Returns a
 * negative code when polling itself fails. */
int mpx__sup_next(mpx__sup *s, double timeout, mpx__sup_outcome *oc);

/* Items queued whose outcome was not returned yet. */
size_t mpx__sup_pending(const mpx__sup *s);

/* Items any process may still be working on or is yet to start. */
size_t mpx__sup_running(const mpx__sup *s);

/* Starts again, now, each process that ended since it last ran a task
 * (a crash, a time limit, max_tasks_per_child), so that the next task
 * does not wait for the fork. Call when idle. */
void mpx__sup_prestart(mpx__sup *s);

/* Gives back every item no process has started: each becomes an outcome
 * MPX_ECANCELED (a chunk of which some input started runs to its end).
 * With kill, the processes are killed too and what they were running, or
 * held, ends MPX_ECANCELED (terminate). */
void mpx__sup_cancel(mpx__sup *s, int kill);

/* A descriptor whose readability ends a wait in mpx__sup_next() (an
 * eventfd the caller drains), or -1. */
void mpx__sup_set_wake(mpx__sup *s, int fd);

/* Ends every process (closing its socket, then SIGKILL after a short
 * wait), reaps them and frees s; queued items are dropped. */
void mpx__sup_destroy(mpx__sup *s);

/* The number of CPUs this process may run on (sched_getaffinity), >= 1. */
int mpx__cpus_allowed(void);

#endif
