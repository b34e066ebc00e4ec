/*
 * future.h -- futures, their state machine and the waiters behind wait()
 * and as_completed (pure pthreads, no MPI, so it is unit-testable).
 *
 * Every future of an executor shares one mpx__sync: a mutex that guards
 * all future states, the pending FIFO and waiter lists, and a condition
 * variable broadcast when futures finish. A future is also the work item
 * of CPython's _WorkItem: it carries the task id and the copied arguments.
 *
 * State machine (transitions under sync->mu):
 *   PENDING -> RUNNING        mpx__future_set_running_or_notify_cancel()
 *   PENDING -> CANCELLED      mpx_future_cancel()
 *   RUNNING -> FINISHED       mpx__future_finish_locked()
 *   PENDING -> FINISHED       mpx__future_finish_locked() (broken pool)
 *   RUNNING -> CANCELLED      mpx__future_cancel_sent_locked() (a call
 *                             sent but not started, given back)
 * Callbacks run exactly once, outside the lock.
 */
#ifndef MPX_FUTURE_H
#define MPX_FUTURE_H

#include <pthread.h>
#include <stdatomic.h>

#include "mpx.h"

typedef struct mpx__sync {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* broadcast when a future a waiter watches is done */
  atomic_int refs;   /* the owner plus one per live future */
  int nwaiters;      /* threads blocked on cv */
  unsigned spin_us;  /* spin this long before blocking */
  /* With caller progress: turns the pool once and returns how long to
   * wait before the next turn (microseconds; 0: at once). NULL while a
   * manager thread moves the pool. Set before any future, cleared when
   * the executor goes (under mu). */
  long (*progress)(void *arg);
  void *progress_arg;
  /* Nanoseconds the pool's mover spent idle: back-off sleeps and turns
   * that moved nothing (mpx_executor_idle_seconds). */
  atomic_ullong idle_ns;
  /* Call messages the root sent, and the tasks in them
   * (mpx_executor_calls_sent). */
  atomic_ullong calls_sent, call_tasks;
} mpx__sync;

/* Adds seconds (> 0) to the sync's idle time. Any thread, lock-free. */
void mpx__sync_idle_add(mpx__sync *s, double seconds);

/* Sets (or with NULL clears) the sync's progress hook. */
void mpx__sync_set_progress(mpx__sync *s, long (*fn)(void *), void *arg);

/* Creates a sync with one reference (the owner's). */
int mpx__sync_create(mpx__sync **s);
void mpx__sync_ref(mpx__sync *s);
/* Drops a reference; frees at zero. */
void mpx__sync_unref(mpx__sync *s);

typedef struct mpx__cb {
  mpx_done_cb fn;
  void *arg;
  struct mpx__cb *next;
} mpx__cb;

typedef struct mpx__waiter mpx__waiter;

/* A registration of a waiter on a future (one per future per waiter). */
typedef struct mpx__wlink {
  mpx__waiter *w;
  struct mpx__wlink *next;
} mpx__wlink;

struct mpx_future {
  mpx__sync *sync;
  atomic_int refs;   /* user + manager table + iterators */
  _Atomic int state; /* mpx_state; written under sync->mu */
  uint64_t id;
  uint32_t task_id;
  int status; /* 0 or MPX_E* once FINISHED / CANCELLED */
  int worker; /* rank sent to (a sub-manager, hier.c), -1 until sent */
  int ran_on; /* the rank that ran it, as its result says; -1 */
  void *arg;  /* copied arguments, freed once sent */
  size_t arg_len;
  void *result; /* owned result (malloc'd), or NULL */
  size_t result_len;
  char *error;             /* failure message, or NULL */
  int taken;               /* the result was handed over by a take */
  mpx__cb *cbs;            /* callbacks to run at completion */
  mpx__wlink *waiters;     /* waiters to notify at completion */
  struct mpx_future *next; /* pending FIFO / manager lists */
  void *_Atomic data;      /* the user's pointer (mpx_future_set_data) */
  uint64_t seen; /* the last as_completed set that took it in, to drop a
                    repeat (under sync->mu) */
  /* Manager only: retries of tasks that crashed or hit a limit. */
  int retries;           /* how many times it may run again */
  int tries;             /* how many times it ran again so far */
  int limit_ms;          /* per-task time limit in ms, -1: the pool's */
  int avoid;             /* the rank it failed on last, -1 none */
  struct mpx__retry *rt; /* a chunk's outcomes gathered over retries */
};

/* A map chunk being retried input by input: the outcomes so far of its n
 * inputs, and which of them the chunk now being run holds (map[k] is the
 * input of its k-th). Freed with the future. */
typedef struct mpx__retry {
  uint64_t n, nmap;
  int *st;
  void **res;
  size_t *rl; /* failure texts count their NUL */
  uint64_t *map;
} mpx__retry;

/* Frees a retry record (NULL allowed). */
void mpx__retry_free(mpx__retry *rt);

/* A set of callbacks detached from futures, to run outside the lock. */
typedef struct mpx__cbq {
  struct mpx__cbq_ent {
    mpx_future *f;
    mpx__cb *cbs;
  } * v;
  size_t n, cap;
} mpx__cbq;

/* Creates a PENDING future with a copy of the arguments and two references
 * (the caller's and the executor's). Returns 0 or MPX_ENOMEM. */
int mpx__future_create(mpx__sync *s, uint64_t id, uint32_t task_id,
                       const void *arg, size_t len, mpx_future **out);

/* As mpx__future_create(), taking ownership of arg (from mpx__alloc(); it is
 * freed on failure too). */
int mpx__future_create_owned(mpx__sync *s, uint64_t id, uint32_t task_id,
                             void *arg, size_t len, mpx_future **out);

void mpx__future_ref(mpx_future *f);
/* Drops one reference; frees at zero (and unrefs the sync). */
void mpx__future_unref(mpx_future *f);

/* Under sync->mu: PENDING -> RUNNING and returns 1, or returns 0 when the
 * future was cancelled (it must then be dropped, never sent). */
int mpx__future_set_running_or_notify_cancel_locked(mpx_future *f);

/* Under sync->mu: finishes the future (RUNNING or PENDING) with status and
 * takes ownership of result (malloc'd, may be NULL) and error (malloc'd,
 * may be NULL); notifies waiters and moves callbacks into q. A future that
 * is already done is left alone and result/error are freed. */
void mpx__future_finish_locked(mpx_future *f, int status, void *result,
                               size_t result_len, char *error, mpx__cbq *q);

/* Under sync->mu: PENDING -> CANCELLED, notifying waiters, callbacks to q.
 * Returns 0, or MPX_EBUSY when not pending (already cancelled returns 0). */
int mpx__future_cancel_locked(mpx_future *f, mpx__cbq *q);

/* RUNNING -> CANCELLED for a future whose call item was sent but never
 * started (a worker gave it back after shutdown's cancel_futures): it
 * finishes as cancelled, as Python cancels the calls a pool has not
 * started. No-op when already done. Lock held. */
void mpx__future_cancel_sent_locked(mpx_future *f, mpx__cbq *q);

/* Runs and frees the callbacks gathered in q (no lock held), then empties
 * it. */
void mpx__cbq_run(mpx__cbq *q);
void mpx__cbq_free(mpx__cbq *q);

/* Marks the calling thread as one that must not block on futures (the
 * manager thread); blocking waits there return MPX_EDEADLK. */
void mpx__future_set_no_block(int on);
int mpx__future_no_block(void);

#endif
