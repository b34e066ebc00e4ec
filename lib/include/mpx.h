/*
 * mpx.h -- the one header users include.
 *
 * mpx brings Python's concurrent.futures programming model to MPI programs:
 * tasks are C functions registered by name on every rank; creating an
 * executor is collective over a communicator; the root rank gets the
 * executor (submit, futures, wait, as_completed, shutdown) and every other
 * rank serves tasks until the root shuts the pool down. With a single rank
 * the tasks run on a worker thread inside the root process.
 *
 * Conventions (see STYLE.md):
 *  - every fallible call returns 0 or a negative MPX_E* code (mpx_errors.h);
 *    mpx_strerror()/mpx_err_name() describe it and mpx_last_error() gives
 *    the detailed message of the calling thread's last failed call;
 *  - timeouts are double seconds; MPX_FOREVER waits without limit and 0
 *    only polls;
 *  - each prototype says whether it is Collective, Root only or Any rank,
 *    and who owns what.
 */
#ifndef MPX_H
#define MPX_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "mpx_errors.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MPX_BUILDING) && defined(__GNUC__)
#define MPX_API __attribute__((visibility("default")))
#else
#define MPX_API
#endif

#define MPX_VERSION_MAJOR 0
#define MPX_VERSION_MINOR 1
#define MPX_VERSION_PATCH 0
#define MPX_VERSION_STRING "0.1.0"

/* A timeout that never expires. */
#define MPX_FOREVER (-1.0)

/* The longest task name, in bytes, without the terminating NUL. */
#define MPX_TASK_NAME_MAX 63

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* Returns a static English sentence for an mpx code, or "unknown error".
 * Any rank, thread-safe. */
MPX_API const char *mpx_strerror(int code);

/* Returns the symbolic name of an mpx code ("MPX_ETIMEDOUT"), or
 * "MPX_EUNKNOWN". Any rank, thread-safe. */
MPX_API const char *mpx_err_name(int code);

/* Returns the detailed message of the last mpx call that failed on the
 * calling thread (for example which ranks registered different tasks), or
 * "" if none failed yet. Any rank, thread-safe (the text is thread-local).
 * Ownership: the string belongs to mpx and is valid until the thread's next
 * failing mpx call. */
MPX_API const char *mpx_last_error(void);

/* ------------------------------------------------------------------------ */
/* MPI start-up helpers                                                     */
/* ------------------------------------------------------------------------ */

/* Initialises MPI with MPI_THREAD_MULTIPLE unless it is already initialised.
 * Collective over MPI_COMM_WORLD (as MPI_Init_thread).
 * Errors: MPX_EMPI if MPI_Init_thread fails, MPX_ETHREAD if the library
 * provides less than MPI_THREAD_SERIALIZED. */
MPX_API int mpx_init(int *argc, char ***argv);

/* Finalises MPI if mpx_init initialised it and it is not finalised yet.
 * Collective over MPI_COMM_WORLD. Returns 0 or MPX_EMPI. */
MPX_API int mpx_finalize(void);

/* ------------------------------------------------------------------------ */
/* Tasks                                                                    */
/* ------------------------------------------------------------------------ */

/* The context of one task call, handed to the task function. */
typedef struct mpx_task_ctx mpx_task_ctx;

/* A task: reads len bytes at arg (arg is valid for the call only; it is
 * 8-byte aligned) and returns 0 on success or any other value on failure.
 * A task produces its result with mpx_task_return() or mpx_task_output();
 * a task that sets no result returns an empty result. */
typedef int (*mpx_task_fn)(mpx_task_ctx *ctx, const void *arg, size_t len);

/* Registers fn under name for this process. Call it on every rank, in the
 * same order, before mpx_executor_create(); the root checks at creation that
 * all ranks registered the same names in the same order.
 * Any rank; not thread-safe against executor creation.
 * Errors: MPX_EINVAL (NULL or empty name, NULL fn), MPX_E2BIG (name longer
 * than MPX_TASK_NAME_MAX), MPX_EEXIST (name already registered), MPX_EBUSY
 * (an executor is live in this process), MPX_ENOMEM. */
MPX_API int mpx_register(const char *name, mpx_task_fn fn);

/* Removes every registration of this process (for tests and for programs
 * that build several pools with different tables). Any rank.
 * Errors: MPX_EBUSY while an executor is live in this process. */
MPX_API int mpx_unregister_all(void);

/* Copies len bytes from data as the task's result, replacing any earlier
 * result. Called from inside a task. Returns 0 or MPX_ENOMEM. */
MPX_API int mpx_task_return(mpx_task_ctx *ctx, const void *data, size_t len);

/* Allocates a result buffer of len bytes for the task to fill in place and
 * returns it (8-byte aligned), or NULL when out of memory. Replaces any
 * earlier result. Ownership: mpx frees it after sending. */
MPX_API void *mpx_task_output(mpx_task_ctx *ctx, size_t len);

/* Records a failure message (printf format) and returns MPX_ETASK, so that a
 * task can end with `return mpx_task_fail(ctx, "bad input %d", x);`. The
 * future finishes with MPX_ETASK and a message naming the task, the rank of
 * the worker, the number of ranks and the host. */
MPX_API int mpx_task_fail(mpx_task_ctx *ctx, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The rank (in the executor's communicator) running this task; the root
 * rank in single-rank mode. */
MPX_API int mpx_task_rank(const mpx_task_ctx *ctx);

/* The name of the task being run. Ownership: borrowed, valid during the
 * call. */
MPX_API const char *mpx_task_name(const mpx_task_ctx *ctx);

/* ------------------------------------------------------------------------ */
/* Executor                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct mpx_executor mpx_executor;
typedef struct mpx_future mpx_future;

/* Options of an executor. Fill with mpx_options_init(), then override. */
typedef struct mpx_options {
  int root;      /* the rank that owns the executor (default 0) */
  int prefetch;  /* call items in flight per worker (default 2, >= 1;
                    env MPX_PREFETCH) */
  int max_batch; /* most tasks one call item may carry; the manager sizes
                    batches from the backlog, guided-scheduling style, so
                    a short queue is sent one task per item (default 64,
                    >= 1; 1 sends every task alone; env MPX_MAX_BATCH) */
  double flush_interval; /* a worker running a batch sends the results it
                            holds once they are this old, in seconds
                            (default 0.001; env MPX_FLUSH_INTERVAL) */
} mpx_options;

/* Fills opts with the defaults, then applies the MPX_* environment
 * variables named above. Any rank. */
MPX_API void mpx_options_init(mpx_options *opts);

/* Creates an executor over comm. Collective over comm: every rank calls it
 * with the same root. The communicator is duplicated, so the pool's traffic
 * never mixes with the caller's.
 *  - On the root it starts the manager thread and returns with *ex set.
 *  - On every other rank it serves tasks until the root shuts the pool down,
 *    then returns 0 with *ex set to NULL.
 *  - With a single rank, tasks run on a worker thread of the root process.
 * opts may be NULL for the defaults.
 * Errors (returned on every rank alike where the cause is global):
 * MPX_EINVAL (bad options, root out of range, MPI not initialised),
 * MPX_ETHREAD (MPI thread level below MPI_THREAD_SERIALIZED),
 * MPX_EMISMATCH (ranks registered different tasks; mpx_last_error() names
 * the difference), MPX_EMPI, MPX_ENOMEM, MPX_ESYS.
 * Threads: with MPI_THREAD_MULTIPLE the root may use MPI on other
 * communicators while the pool is live; with MPI_THREAD_SERIALIZED it must
 * make no MPI call between creation and mpx_executor_destroy(). */
MPX_API int mpx_executor_create(MPI_Comm comm, const mpx_options *opts,
                                mpx_executor **ex);

/* Number of worker ranks (size of comm - 1), or 1 in single-rank mode.
 * Root only, thread-safe. */
MPX_API int mpx_executor_workers(const mpx_executor *ex);

/* Submits a call of the task registered as name with a copy of len bytes at
 * arg (arg may be NULL when len is 0) and returns its future in *fut.
 * Root only, thread-safe.
 * Ownership: the arguments are copied, the caller may free them at once;
 * the caller owns *fut and releases it with mpx_future_destroy().
 * Errors: MPX_EINVAL, MPX_ENOTASK (no task of that name), MPX_ESHUTDOWN
 * (after mpx_executor_shutdown()), MPX_EBROKEN (the pool broke),
 * MPX_ENOMEM. On error *fut is set to NULL and no future exists. */
MPX_API int mpx_submit(mpx_executor *ex, const char *name, const void *arg,
                       size_t len, mpx_future **fut);

/* Stops accepting work. With cancel_futures, every future still pending is
 * cancelled (its callbacks fire with MPX_ECANCELED); running ones finish.
 * With wait, returns once every submitted future is done and the workers
 * have been released; otherwise returns at once and the manager finishes in
 * the background. Idempotent: later calls only add what they ask for
 * (cancel_futures, wait). Root only, thread-safe except from a
 * done-callback with wait set (MPX_EDEADLK).
 * Errors: MPX_EINVAL, MPX_EDEADLK. */
MPX_API int mpx_executor_shutdown(mpx_executor *ex, int wait,
                                  int cancel_futures);

/* Destroys a shut-down executor: waits for the manager to finish, releases
 * the workers and the duplicated communicator, and sets *ex to NULL.
 * Accepts NULL and *ex == NULL (returns 0). Futures stay valid after it.
 * Root only.
 * Errors: MPX_EBUSY if the executor was not shut down (nothing is freed),
 * MPX_EDEADLK from a done-callback. */
MPX_API int mpx_executor_destroy(mpx_executor **ex);

/* ------------------------------------------------------------------------ */
/* Futures                                                                  */
/* ------------------------------------------------------------------------ */

typedef enum mpx_future_state {
  MPX_PENDING = 0,  /* submitted, not yet sent to a worker */
  MPX_RUNNING = 1,  /* sent to a worker (cannot be cancelled any more) */
  MPX_FINISHED = 2, /* finished with a result or an error */
  MPX_CANCELLED = 3 /* cancelled while pending; will never run */
} mpx_future_state;

/* Callback run once when a future finishes or is cancelled. It runs on the
 * manager thread (or at once on the calling thread when the future is
 * already done, or on the cancelling thread); keep it short. Blocking waits
 * on unfinished futures from it fail with MPX_EDEADLK. */
typedef void (*mpx_done_cb)(mpx_future *fut, void *arg);

/* Current state. Root only, thread-safe, never blocks. */
MPX_API mpx_future_state mpx_future_state_get(const mpx_future *fut);

/* 1 when finished or cancelled, else 0. Root only, thread-safe. */
MPX_API int mpx_future_done(const mpx_future *fut);

/* Cancels a pending future: it will never be sent, waiters see it done and
 * its callbacks fire (on this thread) with MPX_ECANCELED.
 * Returns 0 if the future is (now or already) cancelled, MPX_EBUSY if it is
 * running or finished. Root only, thread-safe. */
MPX_API int mpx_future_cancel(mpx_future *fut);

/* Waits up to timeout seconds for the future to be done.
 * Returns 0 when done, MPX_ETIMEDOUT, or MPX_EDEADLK (called from a
 * done-callback on an unfinished future). Root only, thread-safe. */
MPX_API int mpx_future_wait(mpx_future *fut, double timeout);

/* Waits up to timeout seconds and returns the outcome: 0 (success), the
 * code the future finished with (MPX_ETASK, MPX_ECANCELED, MPX_EBROKEN,
 * MPX_EPROTO...), MPX_ETIMEDOUT or MPX_EDEADLK. The analogue of Python's
 * Future.exception(). Root only, thread-safe. */
MPX_API int mpx_future_exception(mpx_future *fut, double timeout);

/* Waits up to timeout seconds for the result and lends it: *data and *len
 * (either may be NULL) describe the result bytes, 8-byte aligned.
 * Returns as mpx_future_exception(); on anything but 0 *data is NULL and
 * *len is 0. Ownership: the result belongs to the future and stays valid
 * until mpx_future_take() or mpx_future_destroy(). Root only, thread-safe. */
MPX_API int mpx_future_result(mpx_future *fut, double timeout,
                              const void **data, size_t *len);

/* As mpx_future_result(), but hands the result over: the caller frees *data
 * with mpx_free(). A second take returns an empty result (NULL, 0).
 * Root only, thread-safe. */
MPX_API int mpx_future_take(mpx_future *fut, double timeout, void **data,
                            size_t *len);

/* The failure message of a failed future (task name, rank, host and the
 * task's own text), or NULL when the future has not failed. Ownership:
 * borrowed from the future. Root only, thread-safe. */
MPX_API const char *mpx_future_error(const mpx_future *fut);

/* The rank that ran the future, or -1 if it has not been sent. Root only. */
MPX_API int mpx_future_worker(const mpx_future *fut);

/* The work id of the future: unique within its executor, increasing in
 * submission order. Root only. */
MPX_API uint64_t mpx_future_id(const mpx_future *fut);

/* Adds a callback that runs exactly once when the future is done; if it is
 * already done, cb runs at once on the calling thread before this returns.
 * Root only, thread-safe. Errors: MPX_EINVAL, MPX_ENOMEM (then cb never
 * runs). */
MPX_API int mpx_future_add_done_callback(mpx_future *fut, mpx_done_cb cb,
                                         void *arg);

/* Releases the caller's reference. A future that is still pending or
 * running keeps running; its result is dropped. Accepts NULL and
 * *fut == NULL; sets *fut to NULL. Root only, thread-safe. */
MPX_API void mpx_future_destroy(mpx_future **fut);

/* Frees a result obtained from mpx_future_take(). Accepts NULL. */
MPX_API void mpx_free(void *p);

/* ------------------------------------------------------------------------ */
/* Waiting on many futures                                                  */
/* ------------------------------------------------------------------------ */

typedef enum mpx_wait_mode {
  MPX_FIRST_COMPLETED = 0, /* return when any future is done */
  MPX_FIRST_EXCEPTION = 1, /* ... when any finishes with an error (a
                              cancelled one does not count), or all done */
  MPX_ALL_COMPLETED = 2    /* ... when all are done */
} mpx_wait_mode;

/* Waits up to timeout seconds for the condition of mode over the n futures
 * (all of one executor). If done is not NULL it receives, per future, 1 if
 * it was done when the wait returned, else 0; *ndone (may be NULL) counts
 * them. Returns 0 when the condition holds, MPX_ETIMEDOUT otherwise,
 * MPX_EINVAL, MPX_EDEADLK. n == 0 returns 0 at once. Root only,
 * thread-safe. */
MPX_API int mpx_wait(mpx_future *const *fs, size_t n, mpx_wait_mode mode,
                     double timeout, unsigned char *done, size_t *ndone);

/* An iterator that yields futures as they finish (completion order). */
typedef struct mpx_as_completed mpx_as_completed;

/* Creates an as-completed iterator over n futures of one executor. Like
 * Python, the timeout counts from this call for the whole iteration;
 * duplicates are yielded once; futures already done are yielded first.
 * Root only. Ownership: the iterator holds references, so the caller may
 * destroy its futures while iterating; *it is freed with
 * mpx_as_completed_destroy(). Errors: MPX_EINVAL, MPX_ENOMEM. */
MPX_API int mpx_as_completed_create(mpx_future *const *fs, size_t n,
                                    double timeout, mpx_as_completed **it);

/* Waits for the next finished future and stores it in *fut (borrowed: the
 * same handle the caller passed in).
 * Returns 0, MPX_EOF when every future has been yielded, MPX_ETIMEDOUT when
 * the iterator's deadline passed (later calls keep returning it unless a
 * future finished meanwhile), MPX_EDEADLK. */
MPX_API int mpx_as_completed_next(mpx_as_completed *it, mpx_future **fut);

/* Destroys the iterator; accepts NULL and *it == NULL. */
MPX_API void mpx_as_completed_destroy(mpx_as_completed **it);

#ifdef __cplusplus
}
#endif

#endif /* MPX_H */
