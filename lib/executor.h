/*
 * executor.h -- what the executor offers the library's other modules (map,
 * job): submitting with an argument buffer the executor takes over, and
 * reading its options.
 */
#ifndef MPX_EXECUTOR_H
#define MPX_EXECUTOR_H

#include "mpx.h"

/* Submits task_id (possibly with MPX__TASK_CHUNK) taking ownership of arg
 * (from mpx__alloc(); freed on failure too), with its own retries and
 * per-task time limit in seconds (-1 for the executor's). Root only,
 * thread-safe. Returns 0 or MPX_EBROKEN, MPX_ESHUTDOWN, MPX_ENOMEM
 * (mpx_last_error() says why). */
int mpx__submit_owned(mpx_executor *ex, uint32_t task_id, void *arg, size_t len,
                      int retries, double limit, mpx_future **fut);

/* Runs fn where it may make MPI calls beside the pool's: at once when MPI
 * provides MPI_THREAD_MULTIPLE or the pool has one rank (its manager makes
 * no MPI call), else on the manager thread between its own MPI calls, as
 * MPI_THREAD_SERIALIZED requires; waits until fn returned. Root only, not
 * from a done-callback. Returns 0 or MPX_EDEADLK, MPX_ESHUTDOWN. */
int mpx__executor_call(mpx_executor *ex, void (*fn)(void));

/* The executor's prefetch option (call items in flight per worker). */
int mpx__executor_prefetch(const mpx_executor *ex);

/* Turns a pool progressed by its callers once and returns how long to
 * wait before the next turn (us); -1 when a manager thread moves it. */
long mpx__executor_turn(mpx_executor *ex);

/* Counts seconds the pool's mover spent idle (a wait's back-off sleep),
 * for mpx_executor_idle_seconds(). Any thread. */
void mpx__executor_idle_add(mpx_executor *ex, double seconds);

#endif
