/*
 * mpx.h -- the one header users include.
 *
 * mpx brings Python's concurrent.futures programming model to MPI programs:
 * tasks are C functions registered by name on every rank; creating an
 * executor is collective over a communicator; the root rank gets the
 * executor (submit, futures, wait, as_completed, shutdown) and every other
 * rank serves tasks until the root shuts the pool down. With a single rank
 * the tasks run on the root's manager thread.
 *
 * Conventions:
 *  - every fallible call returns 0 or a negative MPX_E* code (mpx_errors.h);
 *    mpx_strerror()/mpx_err_name() describe it and mpx_last_error() gives
 *    the detailed message of the calling thread's last failed call;
 *  - timeouts are double seconds: MPX_FOREVER (and only it) waits without
 *    limit, any other value <= 0 only polls (so a computed deadline - now
 *    that dips below zero polls, as in Python), NaN is MPX_EINVAL; the same
 *    rule in every call that takes a timeout;
 *  - each prototype says where it may be called (Collective over comm,
 *    Root only: the rank holding the executor, Inside a task: on whichever
 *    rank runs it, or Any rank), whether it is thread-safe, and who owns
 *    what;
 *  - done-callbacks, and the tasks of a one-rank pool, run on the manager
 *    thread: a call there that would block fails with MPX_EDEADLK instead
 *    of deadlocking (mpx_map_next() on an unordered map excepted).
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

/* The version this header belongs to (MPX_VERSION_STRING, _MAJOR, ...). */
#include "mpx_version.h"

/* The version of the library loaded at run time ("0.1.0"), which may
 * differ from the header's MPX_VERSION_STRING when a program runs against
 * another install. Any rank, thread-safe. Ownership: static storage. */
MPX_API const char *mpx_version(void);

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
 * "" if none failed yet. Every call that returns a negative code (or NULL
 * for failure) sets it, and the message starts with the call's own name
 * ("mpx_submit: no task named 'fib' is registered"), so it never shows an
 * older, unrelated failure. Any rank, thread-safe (the text is
 * thread-local). Ownership: the string belongs to mpx and is valid until
 * the thread's next failing mpx call. */
MPX_API const char *mpx_last_error(void);

/* ------------------------------------------------------------------------ */
/* MPI start-up helpers                                                     */
/* ------------------------------------------------------------------------ */

/* Initialises MPI with MPI_THREAD_MULTIPLE unless it is already initialised.
 * Collective over MPI_COMM_WORLD (as MPI_Init_thread). Process-wide; not
 * thread-safe: call from one thread, before any other thread uses mpx.
 * Any thread level the MPI provides is accepted; mpx_executor_create()
 * refuses a pool the level cannot carry (MPX_ETHREAD).
 * Errors: MPX_EMPI if MPI_Init_thread fails. */
MPX_API int mpx_init(int *argc, char ***argv);

/* Finalises MPI if mpx_init initialised it and it is not finalised yet;
 * an executor still live is first shut down, waiting (its handle stays
 * for mpx_executor_destroy()). Collective over MPI_COMM_WORLD.
 * Process-wide; not thread-safe: call from the thread that called
 * mpx_init(), once no other thread uses mpx. Returns 0 or MPX_EMPI. */
MPX_API int mpx_finalize(void);

/* As mpx_finalize(), after agreeing on the program's exit status: returns
 * the largest `status` any rank passed, so that main() can return it on
 * every rank (`return mpx_finalize_status(status);`), the root with the
 * job's status and the workers with 0. A launcher that reports the status
 * of some ranks only then still reports the job's: MPICH's Hydra does so
 * when it is itself signalled (SIGTERM to mpiexec, as a batch system
 * sends it), and exited 0 after an interrupted job whose rank 0 alone
 * exited 1. Returns the rank's own status where MPI is not initialised,
 * already finalised or the agreement fails, and 1 for a status of 0 when
 * finalising fails. Collective over MPI_COMM_WORLD; same rules as
 * mpx_finalize(). */
MPX_API int mpx_finalize_status(int status);

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
 * Any rank. Not thread-safe: the table has no lock (it is frozen while an
 * executor lives), so register from one thread, never during creation.
 * Errors: MPX_EINVAL (NULL or empty name, NULL fn), MPX_E2BIG (name longer
 * than MPX_TASK_NAME_MAX), MPX_EEXIST (name already registered), MPX_EBUSY
 * (an executor is live in this process), MPX_ENOMEM. */
MPX_API int mpx_register(const char *name, mpx_task_fn fn);

/* Removes every registration of this process (for tests and for programs
 * that build several pools with different tables). Any rank. Not
 * thread-safe, as mpx_register().
 * Errors: MPX_EBUSY while an executor is live in this process. */
MPX_API int mpx_unregister_all(void);

/* Copies len bytes from data as the task's result, replacing any earlier
 * result. Inside a task. Not thread-safe: one thread per ctx (a task's own
 * threads must not call it at once). Returns 0, MPX_EINVAL (NULL ctx, or
 * NULL data with len > 0) or MPX_ENOMEM. */
MPX_API int mpx_task_return(mpx_task_ctx *ctx, const void *data, size_t len);

/* Allocates a result buffer of len bytes for the task to fill in place and
 * returns it (8-byte aligned), or NULL for a NULL ctx or when out of memory
 * (mpx_last_error() says which). Replaces any earlier result.
 * Inside a task; not thread-safe: one thread per ctx.
 * Ownership: mpx frees it after sending. */
MPX_API void *mpx_task_output(mpx_task_ctx *ctx, size_t len);

/* Records a failure message (printf format) and returns MPX_ETASK, so that a
 * task can end with `return mpx_task_fail(ctx, "bad input %d", x);`. The
 * future finishes with MPX_ETASK and a message naming the task, the rank of
 * the worker, the number of ranks and the host. A task that called it has
 * failed, whatever it returns afterwards (a later `return 0` does not drop
 * the failure). With a NULL ctx it records nothing but mpx_last_error()
 * and still returns MPX_ETASK. Inside a task; not thread-safe: one thread
 * per ctx. */
MPX_API int mpx_task_fail(mpx_task_ctx *ctx, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The rank (in the executor's communicator) running this task; the root
 * rank in single-rank mode; -1 for a NULL ctx. Inside a task, thread-safe
 * (it only reads ctx). */
MPX_API int mpx_task_rank(const mpx_task_ctx *ctx);

/* Keeps state for the tasks that follow in this process: meant for the
 * pool's initializer (mpx_executor_options.initializer), as Python's
 * initializer sets globals. The pointer is per process (per task process
 * with isolation). Inside a task or initializer; not thread-safe. */
MPX_API void mpx_task_set_state(mpx_task_ctx *ctx, void *state);

/* The pointer the initializer kept with mpx_task_set_state(), or NULL.
 * Inside a task; thread-safe (it only reads). */
MPX_API void *mpx_task_state(const mpx_task_ctx *ctx);

/* The name of the task being run, or NULL for a NULL ctx. Inside a task,
 * thread-safe (it only reads ctx). Ownership: borrowed, valid during the
 * call. */
MPX_API const char *mpx_task_name(const mpx_task_ctx *ctx);

/* ------------------------------------------------------------------------ */
/* Executor                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct mpx_executor mpx_executor;
typedef struct mpx_future mpx_future;

/* Options of an executor. Fill with mpx_executor_options_init(), then override.
 */
typedef struct mpx_executor_options {
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
  /* Supervised task processes (docs/supervision.md). */
  int isolation;       /* MPX_ISOLATION_NONE: tasks run inside the worker ranks
                          (the root's manager thread with one rank), so a task
                          that crashes takes its rank and the job down;
                          MPX_ISOLATION_PROCESS: each worker rank runs its tasks
                          in a task process it supervises, and a one-rank pool
                          runs `processes` local task processes; a crash, exit(),
                          time or memory limit then fails only that task's
                          future (default none; env MPX_ISOLATION=none|process) */
  int processes;       /* task processes of a one-rank pool with isolation
                          (default 0: as many as the CPUs this process may run
                          on; env MPX_PROCESSES); ignored with 2+ ranks, where
                          each worker rank runs one */
  double task_timeout; /* per-task time limit in seconds, 0 for none: the
                          task's process is stopped (SIGTERM, SIGKILL
                          after MPX_KILL_GRACE seconds, default 1) and the
                          future fails with MPX_ETIMELIMIT; needs
                          isolation (default 0; env MPX_TASK_TIMEOUT) */
  uint64_t memory_limit;   /* bytes of address space a task process may add
                              to what it inherited (RLIMIT_AS): allocations
                              beyond fail, and a task that dies of it fails
                              with MPX_EMEMLIMIT; needs isolation (default 0:
                              none; env MPX_MEMORY_LIMIT, with a K, M or G
                              suffix) */
  int retries;             /* runs a task again, on another worker where there
                              is one, when it crashed, exited or exceeded a
                              limit, up to this many times (default 0; env
                              MPX_RETRIES) */
  int retry_task_failures; /* also retry MPX_ETASK failures (default 0) */
  int max_tasks_per_child; /* replace a task process after this many tasks
                              (multiprocessing's maxtasksperchild; default
                              0: never; needs isolation; env
                              MPX_MAX_TASKS_PER_CHILD) */
  const char *initializer; /* name of a registered task run once in each
                              task process (each worker rank without
                              isolation) before its first task, on initarg
                              (Pool(initializer, initargs)); it may keep
                              state with mpx_task_set_state(). A failing
                              initializer breaks the pool: its tasks fail
                              with MPX_EBROKEN naming it (default NULL) */
  const void *initarg;     /* its argument, copied at creation (the root's
                              is sent to every rank) */
  size_t initarg_len;
  int progress; /* who moves the pool on the root (docs/progress.md):
                   MPX_PROGRESS_THREAD, a manager thread (needs
                   MPI_THREAD_SERIALIZED or more); MPX_PROGRESS_CALLER, no
                   thread: the calls that wait (result, wait, as_completed,
                   map_next, jobs, shutdown with wait) and
                   mpx_executor_progress() move it, from the main thread
                   only under MPI_THREAD_FUNNELED; MPX_PROGRESS_AUTO
                   (default), a thread where MPI provides
                   MPI_THREAD_SERIALIZED or more, else the callers (env
                   MPX_PROGRESS=auto|thread|caller). A one-rank pool makes
                   no MPI call and always has its thread */
  int group;    /* the dispatcher (docs/hierarchy.md): MPX_GROUP_FLAT, the root
                   serves every worker itself; MPX_GROUP_NODE, one sub-manager
                   per node (MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)): the
                   lowest rank of each node (the root excluded) forwards the
                   root's batches to the node's other ranks and sends their
                   results back gathered, and runs no task itself; k >= 2,
                   the same with groups of k ranks (sub-manager included)
                   within each node, so it can be tried on one node; a k
                   above the largest node's rank count joins ceil(k / that
                   count) consecutive nodes into each group instead (fewer
                   sub-managers, so fewer cores that run no task);
                   MPX_GROUP_AUTO (default): one per node when the pool has
                   at least 512 ranks on 2 or more nodes, else flat (env
                   MPX_GROUP=auto|flat|node|k). A group of one rank is a
                   plain worker of the root. Futures, cancel, errors,
                   ordering and jobs behave alike either way */
} mpx_executor_options;

/* Values of mpx_executor_options.group (k >= 2: groups of k ranks). */
#define MPX_GROUP_AUTO -1
#define MPX_GROUP_FLAT 0
#define MPX_GROUP_NODE -2

/* Values of mpx_executor_options.progress. */
#define MPX_PROGRESS_AUTO -1
#define MPX_PROGRESS_THREAD 0
#define MPX_PROGRESS_CALLER 1

/* Values of mpx_executor_options.isolation. */
#define MPX_ISOLATION_NONE 0
#define MPX_ISOLATION_PROCESS 1

/* Fills opts with the defaults, then applies the MPX_* environment
 * variables named above. Any rank, thread-safe (unless another thread
 * changes the environment meanwhile). Does nothing for NULL. */
MPX_API void mpx_executor_options_init(mpx_executor_options *opts);

/* Creates an executor over comm. Collective over comm: every rank calls it
 * with the same root. The communicator is duplicated, so the pool's traffic
 * never mixes with the caller's.
 *  - On the root it starts the manager thread and returns with *ex set.
 *  - On every other rank it serves tasks until the root shuts the pool down,
 *    then returns 0 with *ex set to NULL.
 *  - With a single rank, tasks run on the root's manager thread (so a task
 *    that blocks on a future gets MPX_EDEADLK).
 * opts may be NULL for the defaults.
 * Errors (returned on every rank alike where the cause is global):
 * MPX_EINVAL (bad options, root out of range, MPI not initialised),
 * MPX_ETHREAD (MPI thread level below MPI_THREAD_SERIALIZED with progress
 * MPX_PROGRESS_THREAD; under MPI_THREAD_SINGLE, as SimGrid's SMPI
 * provides, only a pool of several ranks moved by its callers runs, since
 * it starts no thread),
 * MPX_ELAUNCH (a one-process MPI whose launcher says it started more: a
 * program built with another MPI than the launcher's; MPX_SINGLETON=1 when
 * one process alone is meant),
 * MPX_EMISMATCH (ranks registered different tasks; mpx_last_error() names
 * the difference), MPX_EBUSY (this process already holds an executor whose
 * manager still runs; refused before any collective), MPX_EMPI,
 * MPX_ENOMEM, MPX_ESYS.
 * Threads: not thread-safe, one creation at a time per process (the check
 * for a live executor and the registration of the new one are not one
 * step). With MPI_THREAD_MULTIPLE the root may use MPI on other
 * communicators while the pool is live; with MPI_THREAD_SERIALIZED it must
 * make no MPI call between creation and mpx_executor_destroy() unless the
 * pool is progressed by its callers (then the root's own MPI calls only
 * must not overlap mpx calls). */
MPX_API int mpx_executor_create(MPI_Comm comm, const mpx_executor_options *opts,
                                mpx_executor **ex);

/* With caller progress (mpx_executor_options.progress): receives the
 * results that have arrived (their futures finish, their done-callbacks
 * run on this thread) and sends queued work to free workers, without
 * blocking. A program that computes between mpx calls calls it now and
 * then (every few milliseconds of its own work) so that workers do not
 * sit idle; the calls that wait do it themselves. With a manager thread
 * it returns 0 at once. Root only.
 * Errors: MPX_EINVAL (NULL), MPX_ETHREAD (not the main thread while MPI
 * provides MPI_THREAD_FUNNELED), MPX_EDEADLK (from a done-callback). */
MPX_API int mpx_executor_progress(mpx_executor *ex);

/* MPX_PROGRESS_THREAD or MPX_PROGRESS_CALLER: who moves this pool (the
 * option's MPX_PROGRESS_AUTO resolved); -1 for NULL. Root only. */
MPX_API int mpx_executor_progress_mode(const mpx_executor *ex);

/* Seconds the pool's mover has spent idle since creation: with a manager
 * thread its sleeps and the turns that found nothing to do; with caller
 * progress the back-off sleeps of the calls that wait and their turns that
 * found nothing. 1 - (its growth over an interval) / (the interval) is the
 * share of the root's time spent working the pool (mpx-bench's
 * root_busy). -1 for NULL. Root only, thread-safe. */
MPX_API double mpx_executor_idle_seconds(const mpx_executor *ex);

/* The call messages the root has sent since creation (to workers, or to
 * sub-managers) and the tasks they carried: *tasks / *calls is how many
 * tasks a message takes on average, the batching that makes small tasks
 * cheap (mpx-bench's tasks_per_call). Either pointer may be NULL. Root
 * only, thread-safe. Returns 0, or MPX_EINVAL for a NULL executor. */
MPX_API int mpx_executor_calls_sent(const mpx_executor *ex, uint64_t *calls,
                                    uint64_t *tasks);

/* Number of worker ranks, the ranks that run tasks (size of comm - 1 -
 * the sub-managers), or 1 in single-rank mode; 0 for NULL. Root only,
 * thread-safe. */
MPX_API int mpx_executor_workers(const mpx_executor *ex);

/* Number of sub-managers (mpx_executor_options.group): 0 when the root
 * serves every worker itself, or for NULL. Root only, thread-safe. */
MPX_API int mpx_executor_groups(const mpx_executor *ex);

/* Submits a call of the task registered as name with a copy of len bytes at
 * arg (arg may be NULL when len is 0) and returns its future in *fut.
 * Root only, thread-safe; may be called from a done-callback.
 * Ownership: the arguments are copied, the caller may free them at once;
 * the caller owns *fut and releases it with mpx_future_destroy().
 * Errors: MPX_EINVAL, MPX_ENOTASK (no task of that name), MPX_ESHUTDOWN
 * (after mpx_executor_shutdown()), MPX_EBROKEN (the pool broke),
 * MPX_ENOMEM. On error *fut is set to NULL and no future exists. */
MPX_API int mpx_submit(mpx_executor *ex, const char *name, const void *arg,
                       size_t len, mpx_future **fut);

/* Stops accepting work. With cancel_futures, every future still pending is
 * cancelled (its callbacks fire with MPX_ECANCELED), and so is every call
 * already sent to a worker that has not started it (its future, RUNNING
 * until then, finishes CANCELLED); tasks that started finish.
 * With wait, returns once every submitted future is done and the workers
 * have been released; otherwise returns at once and the manager finishes in
 * the background. Idempotent: later calls only add what they ask for
 * (cancel_futures, wait). Root only, thread-safe except from a
 * done-callback with wait set (MPX_EDEADLK).
 * Errors: MPX_EINVAL, MPX_EDEADLK. */
MPX_API int mpx_executor_shutdown(mpx_executor *ex, int wait,
                                  int cancel_futures);

/* Python's Pool.terminate(): shuts the pool down at once. Pending
 * futures and calls sent but not started are cancelled as by
 * mpx_executor_shutdown(ex, 1, 1); with isolation the processes running
 * tasks are killed too, and those futures end CANCELLED (without
 * isolation a running task cannot be stopped: it finishes). Returns once
 * every future is done and the workers are released. Root only,
 * thread-safe; not from a done-callback (MPX_EDEADLK).
 * Errors: MPX_EINVAL, MPX_EDEADLK. */
MPX_API int mpx_executor_terminate(mpx_executor *ex);

/* Destroys a shut-down executor: waits for the manager to finish, releases
 * the workers and the duplicated communicator, and sets *ex to NULL.
 * Accepts NULL and *ex == NULL (returns 0). Futures stay valid after it.
 * Root only. Not thread-safe: call once, after every other call on ex has
 * returned (it frees ex); not from a done-callback (MPX_EDEADLK).
 * Errors: MPX_EBUSY if the executor was not shut down (nothing is freed),
 * MPX_EDEADLK from a done-callback. */
MPX_API int mpx_executor_destroy(mpx_executor **ex);

/* ------------------------------------------------------------------------ */
/* Futures                                                                  */
/* ------------------------------------------------------------------------ */

typedef enum mpx_state {
  MPX_NO_FUTURE = -1, /* what mpx_future_state(NULL) returns */
  MPX_PENDING = 0,    /* submitted, not yet sent to a worker */
  MPX_RUNNING = 1,    /* sent to a worker (cannot be cancelled any more) */
  MPX_FINISHED = 2,   /* finished with a result or an error */
  MPX_CANCELLED = 3   /* cancelled while pending; will never run */
} mpx_state;

/* Callback run once when a future finishes or is cancelled. It runs on the
 * manager thread (or at once on the calling thread when the future is
 * already done, or on the cancelling thread); keep it short. Blocking waits
 * on unfinished futures from it fail with MPX_EDEADLK; calls that do not
 * block (mpx_submit, mpx_future_cancel, ...) are allowed. */
typedef void (*mpx_done_cb)(mpx_future *fut, void *arg);

/* Current state; MPX_NO_FUTURE for NULL. Root only, thread-safe, never
 * blocks. */
MPX_API mpx_state mpx_future_state(const mpx_future *fut);

/* 1 when finished or cancelled, else 0 (also for NULL). Root only,
 * thread-safe. */
MPX_API int mpx_future_done(const mpx_future *fut);

/* Cancels a pending future: it will never be sent, waiters see it done and
 * its callbacks fire (on this thread) with MPX_ECANCELED.
 * Returns 0 if the future is (now or already) cancelled, MPX_EBUSY if it is
 * running or finished, MPX_EINVAL for NULL. Root only, thread-safe; may be
 * called from a done-callback. */
MPX_API int mpx_future_cancel(mpx_future *fut);

/* Waits up to timeout seconds for the future to be done.
 * Returns 0 when done (whatever the outcome, and also after
 * mpx_future_take()), MPX_ETIMEDOUT, MPX_EINVAL (NULL, NaN timeout), or
 * MPX_EDEADLK (called from a done-callback on an unfinished future).
 * Root only, thread-safe; not from a done-callback unless the future is
 * done or the timeout only polls (MPX_EDEADLK). */
MPX_API int mpx_future_wait(mpx_future *fut, double timeout);

/* Waits up to timeout seconds and returns the outcome: 0 (success), the
 * code the future finished with (MPX_ETASK, MPX_ECANCELED, MPX_EBROKEN,
 * MPX_EPROTO, MPX_ENOMEM when the worker had no memory for the result...),
 * MPX_ETIMEDOUT, MPX_EINVAL (NULL, NaN timeout) or MPX_EDEADLK (as
 * mpx_future_wait()); a failure outcome also sets mpx_last_error() to the
 * future's message. The analogue of Python's Future.exception(); after
 * mpx_future_take() it still reports the outcome (0). Root only,
 * thread-safe. */
MPX_API int mpx_future_exception(mpx_future *fut, double timeout);

/* Waits up to timeout seconds for the result and lends it: *data and *len
 * (either may be NULL) describe the result bytes, 8-byte aligned.
 * Returns as mpx_future_exception(), and MPX_EINVAL ("mpx_future_result:
 * the result was taken by mpx_future_take") once mpx_future_take() handed
 * the result over; on anything but 0 *data is NULL and *len is 0.
 * Ownership: the result belongs to the future and stays valid until
 * mpx_future_take() or mpx_future_destroy(). Root only, thread-safe; not
 * from a done-callback on an unfinished future (MPX_EDEADLK). */
MPX_API int mpx_future_result(mpx_future *fut, double timeout,
                              const void **data, size_t *len);

/* As mpx_future_result(), but hands the result over: the caller frees *data
 * with mpx_free(). A take with data NULL only reports the length and hands
 * nothing over; once the result was handed over, later takes and results
 * fail with MPX_EINVAL (*data NULL, *len 0). Root only, thread-safe (one
 * take wins); not from a done-callback on an unfinished future
 * (MPX_EDEADLK). */
MPX_API int mpx_future_take(mpx_future *fut, double timeout, void **data,
                            size_t *len);

/* The failure message of a failed future (task name, rank, host and the
 * task's own text), or NULL when the future has not failed (or is NULL).
 * Ownership: borrowed from the future. Root only, thread-safe. */
MPX_API const char *mpx_future_error(const mpx_future *fut);

/* The rank that ran the future, or -1 if it has not been sent (or is
 * NULL); while it is under a sub-manager (mpx_executor_options.group),
 * that sub-manager's rank until its result names the worker. Root only,
 * thread-safe. */
MPX_API int mpx_future_worker(const mpx_future *fut);

/* The work id of the future: unique within its executor, increasing in
 * submission order from 1; 0 for NULL. Root only, thread-safe. */
MPX_API uint64_t mpx_future_id(const mpx_future *fut);

/* Attaches the caller's pointer data to the future (replacing any earlier
 * one), so that `{executor.submit(f, x): x for x in xs}` needs no table:
 * a future from mpx_wait() or mpx_as_completed_next() tells its input by
 * mpx_future_data(). mpx never reads or writes through it, and the manager
 * thread never touches it. Root only, thread-safe (a done-callback may read
 * it while another thread sets it). Ownership: the caller's; mpx never
 * frees it, not even in mpx_future_destroy().
 * Errors: MPX_EINVAL (NULL future). */
MPX_API int mpx_future_set_data(mpx_future *fut, void *data);

/* The pointer last given to mpx_future_set_data(), NULL if none was, or
 * NULL for a NULL future. Root only, thread-safe. Ownership: the caller's. */
MPX_API void *mpx_future_data(const mpx_future *fut);

/* Adds a callback that runs exactly once when the future is done; if it is
 * already done, cb runs at once on the calling thread before this returns.
 * Root only, thread-safe; may be called from a done-callback.
 * Errors: MPX_EINVAL, MPX_ENOMEM (then cb never runs). */
MPX_API int mpx_future_add_done_callback(mpx_future *fut, mpx_done_cb cb,
                                         void *arg);

/* Releases the caller's reference. A future that is still pending or
 * running keeps running; its result is dropped. Accepts NULL and
 * *fut == NULL; sets *fut to NULL. Root only, thread-safe (each reference
 * is released once); may be called from a done-callback. */
MPX_API void mpx_future_destroy(mpx_future **fut);

/* Frees a result obtained from mpx_future_take(). Accepts NULL. Any rank,
 * thread-safe. */
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
 * thread-safe; not from a done-callback unless the condition already holds
 * or the timeout only polls (MPX_EDEADLK). */
MPX_API int mpx_wait(mpx_future *const *fs, size_t n, mpx_wait_mode mode,
                     double timeout, unsigned char *done, size_t *ndone);

/* An iterator that yields futures as they finish (completion order). */
typedef struct mpx_as_completed mpx_as_completed;

/* Creates an as-completed iterator over n futures of one executor. Like
 * Python, the timeout counts from this call for the whole iteration;
 * duplicates are yielded once; futures already done are yielded first,
 * in the order given (as Python's as_completed does). The set is taken in
 * O(n). Root only, thread-safe. Ownership: the iterator holds references, so the
 * caller may destroy its futures while iterating; *it is freed with
 * mpx_as_completed_destroy(). Errors: MPX_EINVAL, MPX_ENOMEM. */
MPX_API int mpx_as_completed_create(mpx_future *const *fs, size_t n,
                                    double timeout, mpx_as_completed **it);

/* Waits for the next finished future and stores it in *fut (borrowed: the
 * same handle the caller passed in).
 * Returns 0, MPX_EOF when every future has been yielded, MPX_ETIMEDOUT when
 * the iterator's deadline passed (later calls keep returning it unless a
 * future finished meanwhile), MPX_EDEADLK, MPX_EINVAL (NULL it or fut).
 * Root only. Not thread-safe: one thread at a time per iterator. Not from
 * a done-callback while no future is ready (MPX_EDEADLK). */
MPX_API int mpx_as_completed_next(mpx_as_completed *it, mpx_future **fut);

/* Destroys the iterator; accepts NULL and *it == NULL. Root only. Not
 * thread-safe: no other call on it may run or follow. */
MPX_API void mpx_as_completed_destroy(mpx_as_completed **it);

/* ------------------------------------------------------------------------ */
/* numpy.array_split                                                        */
/* ------------------------------------------------------------------------ */

/* The bounds of part i when n items are split into k parts by numpy's
 * array_split rule: the first n % k parts hold n / k + 1 items, the others
 * n / k; with k > n the last parts are empty. Part i is [*start, *stop).
 * Any rank, thread-safe. Errors: MPX_EINVAL (k == 0, i >= k, NULL). */
MPX_API int mpx_array_split(uint64_t n, uint64_t k, uint64_t i, uint64_t *start,
                            uint64_t *stop);

/* ------------------------------------------------------------------------ */
/* Typed results: named arrays                                              */
/* ------------------------------------------------------------------------ */

/* Element types of result arrays (values never change). MPX_STRING is one
 * variable-length UTF-8 string per row (width 1): the data is the rows'
 * NUL-terminated strings, back to back. */
typedef enum mpx_dtype {
  MPX_INT8 = 1,
  MPX_UINT8 = 2,
  MPX_INT16 = 3,
  MPX_UINT16 = 4,
  MPX_INT32 = 5,
  MPX_UINT32 = 6,
  MPX_INT64 = 7,
  MPX_UINT64 = 8,
  MPX_FLOAT32 = 9,
  MPX_FLOAT64 = 10,
  MPX_STRING = 11
} mpx_dtype;

/* The longest array name, in bytes, without the terminating NUL. */
#define MPX_ARRAY_NAME_MAX 63

/* Bytes per element of t (0 for MPX_STRING and unknown types). Never
 * fails. Any rank, thread-safe. */
MPX_API size_t mpx_dtype_size(mpx_dtype t);

/* The numpy-style name of t ("float32", "int32", "str"), or "?". Any
 * rank, thread-safe. Ownership: static storage. */
MPX_API const char *mpx_dtype_name(mpx_dtype t);

/* Inside a task: adds the array name (rows x width elements of dtype) to the
 * task's result and returns its buffer (8-byte aligned, zeroed) to fill.
 * A task's result is either raw bytes (mpx_task_return/mpx_task_output) or
 * named arrays: adding an array drops raw bytes set before, and raw bytes
 * set later drop the arrays. Names must be unique within one result, 1 to
 * MPX_ARRAY_NAME_MAX bytes, without '/', and neither "." nor "mpx" (a job
 * makes each name a dataset of the HDF5 file's root group, beside /mpx).
 * Not for MPX_STRING (use mpx_task_strings). Not thread-safe: one thread
 * per ctx. Returns NULL on a bad argument (mpx_last_error() says which) or
 * when out of memory. Ownership: mpx frees the buffer after sending. */
MPX_API void *mpx_task_array(mpx_task_ctx *ctx, const char *name,
                             mpx_dtype dtype, size_t rows, size_t width);

/* Inside a task: adds the MPX_STRING array name with one row per string
 * (copied). Not thread-safe: one thread per ctx. Returns 0, MPX_EINVAL
 * (NULL ctx, bad or duplicate name, NULL string), MPX_ENOMEM. */
MPX_API int mpx_task_strings(mpx_task_ctx *ctx, const char *name,
                             const char *const *strs, size_t rows);

/* One array of a typed result, as decoded by mpx_arrays_parse(). */
typedef struct mpx_array {
  const char *name; /* borrowed from the result buffer */
  mpx_dtype dtype;
  uint64_t rows, width;
  const void *data; /* rows * width elements; for MPX_STRING the strings */
  uint64_t nbytes;
} mpx_array;

/* Decodes a typed result of len bytes (a future's result, or an item of a
 * map): stores up to max arrays in arrays and their count in *n. A result
 * with no arrays (raw bytes, or empty) gives *n == 0 only when len == 0.
 * Any rank, thread-safe. Ownership: the arrays borrow from buf.
 * Errors: MPX_EINVAL (not a typed result, or malformed), MPX_E2BIG (more
 * than max arrays; *n holds the count). */
MPX_API int mpx_arrays_parse(const void *buf, size_t len, mpx_array *arrays,
                             size_t max, size_t *n);

/* ------------------------------------------------------------------------ */
/* map: ordered, chunked, windowed                                          */
/* ------------------------------------------------------------------------ */

/* An iterator over the results of one task applied to many inputs. */
typedef struct mpx_map mpx_map;

/* "The number of inputs is not known": the producer says when it ends. */
#define MPX_MAP_UNKNOWN UINT64_MAX

/* Options of a map. Fill with mpx_map_options_init(), then override. */
typedef struct mpx_map_options {
  uint64_t chunksize;  /* inputs per call: a chunk is one future whose
                          inputs a worker runs back to back (default 1) */
  uint64_t window;     /* most inputs submitted and not yet yielded, the
                          bound on the root's memory (default 0: chunksize
                          x max(256, 8 x workers x prefetch), see
                          docs/api.md and docs/how-it-works.md) */
  int unordered;       /* yield in completion order, as imap_unordered
                          (default 0: input order, as Executor.map) */
  uint64_t first;      /* index of the first input to produce (default 0;
                          resumed jobs start after what is recorded) */
  int retries;         /* as the executor's option, for this map's inputs:
                          an input whose task crashed, exited or exceeded a
                          limit runs again, up to this many times (default
                          -1: the executor's) */
  double task_timeout; /* per-input time limit in seconds (0: none;
                          default -1: the executor's); needs isolation */
} mpx_map_options;

/* Fills o with the defaults. Any rank, thread-safe. Does nothing for
 * NULL. */
MPX_API void mpx_map_options_init(mpx_map_options *o);

/* Produces input index: sets *data and *len (data borrowed until the
 * producer is called again or the map is destroyed; it is copied at once)
 * and returns 1, returns 0 when there are no more inputs, or a negative
 * MPX_E* code to end the map with that error. Called on the thread that
 * creates or advances the map, with increasing indices. */
typedef int (*mpx_producer)(void *arg, uint64_t index, const void **data,
                            size_t *len);

/* Maps the task name over n inputs args[i] of lens[i] bytes (copied as they
 * are submitted; the caller keeps args valid until the map is destroyed or
 * yields MPX_EOF). Root only; the map is used from one thread at a time.
 * Errors: MPX_EINVAL, MPX_ENOTASK, MPX_ESHUTDOWN, MPX_EBROKEN, MPX_ENOMEM;
 * on error *m is NULL. */
MPX_API int mpx_map_create(mpx_executor *ex, const char *name,
                           const void *const *args, const size_t *lens,
                           uint64_t n, const mpx_map_options *o, mpx_map **m);

/* Maps the task name over the inputs of a producer, pulled only as the
 * window frees (so a map over 10^8 inputs keeps the root's memory flat).
 * n is the number of inputs or MPX_MAP_UNKNOWN. Root only; the map (and
 * so fn) is used from one thread at a time.
 * Errors: as mpx_map_create(). */
MPX_API int mpx_map_create_producer(mpx_executor *ex, const char *name,
                                    mpx_producer fn, void *arg, uint64_t n,
                                    const mpx_map_options *o, mpx_map **m);

/* Maps the task name over the n elements of one array: input i is the
 * size bytes at (const char *)base + i * size, as Executor.map(f, xs) over
 * an array of fixed-size items (no args[]/lens[] to build). Each element is
 * copied as its chunk is submitted, so the caller keeps the array valid
 * (and unchanged) until the map is destroyed or yields MPX_EOF. The same
 * inputs as mpx_map_create_producer(ex, name, mpx_elements_producer, &e,
 * n, o, m) with e = {base, n, size}. Root only; the map is used from one
 * thread at a time. Errors: as mpx_map_create(), MPX_EINVAL (n > 0 with a
 * NULL base or a size of 0), MPX_E2BIG (n * size does not fit the address
 * space); on error *m is NULL. */
MPX_API int mpx_map_create_array(mpx_executor *ex, const char *name,
                                 const void *base, uint64_t n, size_t size,
                                 const mpx_map_options *o, mpx_map **m);

/* One part of a range: the input of each task of mpx_map_create_range() and of
 * mpx_split_producer() (16 bytes, two int64; a task may read its 8-byte
 * aligned argument as a `const mpx_range *` after checking its length). */
typedef struct mpx_range {
  int64_t start, stop; /* the part is [start, stop) */
} mpx_range;

/* Maps the task name over [lo, hi) split into k parts by the array_split
 * rule (np.array_split(range(lo, hi), k)): input i is the mpx_range of
 * part i; with k > hi - lo the last parts are empty. Root only; the map
 * is used from one thread at a time.
 * Errors: as mpx_map_create(), MPX_EINVAL for hi < lo or k == 0. */
MPX_API int mpx_map_create_range(mpx_executor *ex, const char *name, int64_t lo,
                                 int64_t hi, uint64_t k,
                                 const mpx_map_options *o, mpx_map **m);

/* The state of mpx_split_producer(): [lo, hi) cut into k parts. Set lo, hi
 * and k (`mpx_split s = {0, n, 8};`); part is the producer's output. */
typedef struct mpx_split {
  int64_t lo, hi;
  uint64_t k;
  mpx_range part; /* written by the producer: the part it produced last */
} mpx_split;

/* A stock mpx_producer over an mpx_split (arg): input i is the mpx_range
 * of part i of np.array_split(range(lo, hi), k), and it ends after part
 * k - 1. It is how a job takes the array_split form directly:
 *   mpx_split s = {0, n, 8};
 *   mpx_job_run(ex, "f", mpx_split_producer, &s, s.k, ...);
 * (mpx_map_create_producer() takes it alike; mpx_map_create_range() is the
 * short form). Any rank. Thread-safety: it writes s->part, so one
 * mpx_split serves one map or job at a time. Ownership: s stays the
 * caller's and must outlive the map or job; *data points into s->part.
 * Errors: MPX_EINVAL (NULL s, data or len, hi < lo, k == 0). */
MPX_API int mpx_split_producer(void *arg, uint64_t index, const void **data,
                               size_t *len);

/* The state of mpx_elements_producer(): n elements of size bytes each,
 * element i at (const char *)base + i * size. */
typedef struct mpx_elements {
  const void *base;
  uint64_t n;
  size_t size;
} mpx_elements;

/* A stock mpx_producer over an mpx_elements (arg): input i is element i,
 * lent without a copy (the map or job copies it as it submits it), and it
 * ends after element n - 1. For a job over an array:
 *   mpx_elements e = {xs, n, sizeof xs[0]};
 *   mpx_job_run(ex, "f", mpx_elements_producer, &e, n, ...);
 * Any rank, thread-safe (it only reads e). Ownership: e and the array stay
 * the caller's and must stay valid until the map or job is done with them.
 * Errors: MPX_EINVAL (NULL e, data or len; n > 0 with a NULL base or a
 * size of 0), MPX_E2BIG (n * size does not fit the address space). */
MPX_API int mpx_elements_producer(void *arg, uint64_t index, const void **data,
                                  size_t *len);

/* One result of a map. */
typedef struct mpx_map_item {
  uint64_t index;    /* the input's index */
  int status;        /* 0, MPX_ETASK, MPX_ECANCELED, MPX_EBROKEN... */
  const void *data;  /* the result (status 0), 8-byte aligned */
  size_t len;        /* its length */
  const char *error; /* the failure message (status != 0), else NULL */
  int worker;        /* the rank that ran it, -1 if none did */
} mpx_map_item;

/* Waits up to timeout seconds for the next result (the next input in order,
 * or the next to finish when unordered) and describes it in *item. A failed
 * input is yielded at its position with its status and message; the map
 * goes on. Returns 0, MPX_EOF after the last result, MPX_ETIMEDOUT (call
 * again), MPX_EINVAL (NULL m or item, NaN timeout), or the error that
 * ended the producing of inputs (a producer's code, MPX_ESHUTDOWN,
 * MPX_EBROKEN) once every submitted input has been yielded, with the
 * message it had then; later calls return MPX_EOF. Root only. Not
 * thread-safe: one thread at a time per map. Not from a done-callback
 * unless the timeout only polls (an ordered map returns MPX_EDEADLK; an
 * unordered one would wait for good).
 * Ownership: item's data and error are borrowed until the next call of
 * mpx_map_next() or mpx_map_destroy(). */
MPX_API int mpx_map_next(mpx_map *m, double timeout, mpx_map_item *item);

/* Stops the map: no further input is produced and chunks not yet sent are
 * cancelled. mpx_map_next() still yields what was submitted (finished ones
 * with their results, cancelled ones with MPX_ECANCELED), then MPX_EOF.
 * Root only; not thread-safe: one thread at a time per map.
 * Returns 0 or MPX_EINVAL. */
MPX_API int mpx_map_cancel(mpx_map *m);

/* Number of inputs submitted so far and yielded so far (either may be
 * NULL); both 0 for a NULL m. Root only; not thread-safe: one thread at a
 * time per map. */
MPX_API void mpx_map_counts(const mpx_map *m, uint64_t *submitted,
                            uint64_t *yielded);

/* Cancels what is pending, drops the rest (running chunks finish on their
 * workers, their results are discarded) and frees the map; accepts NULL
 * and *m == NULL. Root only. Not thread-safe: no other call on the map
 * may run or follow. */
MPX_API void mpx_map_destroy(mpx_map **m);

/* ------------------------------------------------------------------------ */
/* Jobs: a map written to one HDF5 file, resumable after a kill             */
/* ------------------------------------------------------------------------ */

/* What to do with an existing output. */
typedef enum mpx_job_mode {
  MPX_JOB_CREATE = 0,    /* fail with MPX_EFILE if the file exists */
  MPX_JOB_OVERWRITE = 1, /* replace it (and its completion record) */
  MPX_JOB_RESUME = 2     /* finish the job the file records, or create it */
} mpx_job_mode;

/* Options of an HDF5 job. Fill with mpx_job_options_init(). */
typedef struct mpx_job_options {
  mpx_job_mode mode;
  int compression;        /* gzip level 1-9, 0 for none (default 0) */
  uint64_t chunk_rows;    /* HDF5 chunk rows, 0: about 1 MiB per chunk */
  double commit_interval; /* seconds between commits to the file and the
                             completion record (default 1.0) */
  int sync;               /* fdatasync() at every commit, against power
                             loss as well as killed jobs (default 1) */
  int progress;           /* 1: a progress line on stderr (a bar on a
                             terminal); default 0, nothing printed */
  const char *label;      /* progress line label (default the task name) */
  const char *identity;   /* what this job is, beyond its task and count:
                             a digest of its inputs or an explicit key (one
                             line, at most MPX_JOB_IDENTITY_MAX bytes),
                             stored in the record and the file; a resume
                             with another identity is refused with
                             MPX_EFILE (default NULL: none) */
  /* Called on the thread running the job for each input this run
   * computes, in input order, as its outcome arrives (before it is
   * committed): for a log or live output beside the file. item is
   * borrowed for the call. Default NULL. */
  void (*on_result)(void *arg, const mpx_map_item *item);
  void *on_result_arg;
  double grace;     /* after mpx_job_interrupt(): seconds the tasks
                       already running may take to finish and be
                       committed, while nothing new is dispatched
                       (a SLURM time-limit warning); 0 (default)
                       stops at once. Tasks still running after it
                       are not recorded: a resume runs them (the
                       caller may then mpx_executor_terminate()). */
  int retry_failed; /* with MPX_JOB_RESUME: compute again the inputs
                       the output records as failed (a task failure,
                       a crash, a limit). The output keeps input
                       order, so the job is computed again from the
                       commit that holds the first recorded failure
                       on (default 0: failures stay recorded) */
} mpx_job_options;

/* The longest job identity, in bytes. */
#define MPX_JOB_IDENTITY_MAX 1024

/* Fills o with the defaults. Any rank, thread-safe. Does nothing for
 * NULL. */
MPX_API void mpx_job_options_init(mpx_job_options *o);

/* What a job did. */
typedef struct mpx_job_report {
  uint64_t items;    /* inputs in the job */
  uint64_t recorded; /* inputs the completion record held at start */
  uint64_t computed; /* inputs computed by this run */
  uint64_t failed;   /* inputs recorded as failed (whole job) */
  uint64_t rows;     /* rows in every dataset at the end */
  double seconds;    /* wall time of this run */
  int complete;      /* the output was already complete: nothing was done
                        and nothing changed */
  char notes[2048];  /* what a resume found and did, one line each ("...
                        is already complete", "moved it to ...",
                        "only the first k commits check out"), or "";
                        mpx prints nothing of it: the caller decides */
} mpx_job_report;

/* Asks the running job to stop: it stops dispatching, commits what is
 * whole, and mpx_job_run() returns MPX_EINTR with a message saying what was
 * committed and how to resume. A request made while no job runs is kept
 * and stops the next job at its start (signo 0 clears it). Meant to be
 * called from a signal handler (SIGINT, SIGTERM, SIGUSR1) installed on
 * every rank, so that workers survive the signal their launcher forwards.
 * Any rank, async-signal-safe. */
MPX_API void mpx_job_interrupt(int signo);

/* Runs the task name over n inputs from a producer (which must produce any
 * index it is asked for, as a resumed job starts after the recorded ones)
 * and writes the typed results to the HDF5 file at path: each array name
 * becomes the dataset /name, the concatenation of that array over the
 * inputs in input order (as np.concatenate of the ordered results), while
 * results arrive in any order. Every successful input must return the same
 * array names, types and widths, and the same rows in each of its arrays;
 * a mismatch stops the job with MPX_ESCHEMA naming the input. Failed inputs
 * add no rows; /mpx/item_status, /mpx/item_error, /mpx/item_rows and
 * /mpx/item_offset record every input. Attributes of / record the task,
 * inputs, chunking, mpx version, ranks, start and end time.
 * A completion record (path + ".mpxrec") is written after every commit; a
 * job killed at any moment and rerun with MPX_JOB_RESUME recomputes only
 * what was not recorded and ends with the same datasets as an
 * uninterrupted run. HDF5 is called from one writer thread only, so a
 * process runs one job at a time (a second concurrent call: MPX_EBUSY).
 * A resume checks that it resumes the same job (task, count, identity,
 * schema and compression, stored in the record and under /mpx) and touches
 * only the job's own datasets and attributes: anything else in the file is
 * left as it is. A finished job resumed again changes nothing. One process
 * at a time writes an output: the job holds a lock (path + ".mpxlock") for
 * its whole run.
 * Root only. Thread-safe in that a second job, from any thread, fails with
 * MPX_EBUSY; fn is called on the calling thread. Not from a done-callback
 * (MPX_EDEADLK).
 * Errors: MPX_EINVAL, MPX_EBUSY (another job in this process,
 * or another process holds the output), MPX_EFILE (exists, or records
 * another job), MPX_ECORRUPT (the record cannot be read beside an output
 * that holds rows, or the file fails its record's check where the job had
 * finished), MPX_EIO (cannot create, write or read; disk full; the output
 * removed while the job ran), MPX_EINTR (mpx_job_interrupt), MPX_ESCHEMA,
 * MPX_ENOTASK, MPX_ESHUTDOWN, MPX_EBROKEN, MPX_ENOMEM (also a worker
 * without memory for a result: not recorded, a resume recomputes it), or
 * the producer's code; mpx_last_error() names the file and the cause.
 * What was committed before an error stays in the file and its record. */
MPX_API int mpx_job_run(mpx_executor *ex, const char *name, mpx_producer fn,
                        void *arg, uint64_t n, const mpx_map_options *mo,
                        const char *path, const mpx_job_options *jo,
                        mpx_job_report *report);

#ifdef __cplusplus
}
#endif

#endif /* MPX_H */
