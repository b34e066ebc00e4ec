/*
 * manager.h -- the root's executor object, shared by executor.c (creation,
 * submit, shutdown, destroy) and manager.c (the manager thread, CPython's
 * _queue_management_worker). Private: never installed.
 */
#ifndef MPX_MANAGER_H
#define MPX_MANAGER_H

#include <pthread.h>
#include <stdatomic.h>

#include "credits.h"
#include "future.h"
#include "msg.h"
#include "supervise.h"
#include "transport.h"
#include "worktable.h"

/* The manager loop's own state (manager thread, or caller progress). */
typedef struct mpx__mgr_loop {
  mpx_future **buf; /* dispatch()'s batch buffer */
  size_t cap;
  mpx__cbq q;         /* done-callbacks to run outside the lock */
  double last_active; /* when a turn last moved something */
  int ended;          /* the pool ended: workers released */
} mpx__mgr_loop;

struct mpx_executor {
  mpx__sync *sync;
  MPI_Comm comm; /* duplicated, MPI_ERRORS_RETURN */
  int root, size, nworkers, local;
  int ngroups;   /* sub-managers (mpx_executor_options.group), 0 flat */
  int nchildren; /* ranks the root sends to: sub-managers, plain workers */
  int *parent;   /* per rank: the rank it serves (hier.c), NULL when flat */
  int *fan;      /* per rank: workers below it (sub-managers), NULL flat */
  mpx_executor_options opts;
  mpx__pool_init init; /* the initializer every rank agreed on */
  void *initarg;       /* its argument (owned) */
  int wake_fd;         /* eventfd of a one-rank pool with isolation, which
                          waits in poll(), not on mgr_cv; -1 otherwise */
  pthread_t mgr;
  pthread_cond_t mgr_cv; /* the manager sleeps here; submit signals it */
  int caller;            /* MPX_PROGRESS_CALLER: no manager thread; the
                            callers turn the loop (step_mu held) */
  int funneled;          /* MPI provides less than MPI_THREAD_SERIALIZED:
                            only the main thread turns it */
  pthread_mutex_t step_mu;
  long caller_sleep_us; /* the callers' back-off (step_mu) */
  unsigned submits;     /* submits while every worker was busy (step_mu) */
  double submit_turn;   /* when a submit last turned the pool (step_mu) */
  long sim_visits;      /* MPX_SMPI: worker slots dispatch visited */

  /* Guarded by sync->mu. */
  mpx_future *pend_head, *pend_tail; /* FIFO of pending futures */
  size_t npending;
  uint64_t next_id;
  int mgr_sleeping;
  int kicked;         /* submit or shutdown happened since the manager slept */
  void (*call)(void); /* mpx__executor_call(): for the manager to run */
  /* Set under the lock, read without it by the manager's loop, which
   * checks them on every turn (a lock there slows submit down). */
  atomic_int call_pending;  /* call is set */
  atomic_int cancel_req;    /* shutdown asked to cancel calls sent but not
                               started */
  atomic_int terminate_req; /* ... and to kill running tasks (terminate) */
  int shutdown;             /* no more submits */
  int mgr_done;             /* the manager thread has finished */
  int broken;               /* MPX_EBROKEN cause code, or 0 */
  char broken_msg[512];

  /* Manager thread only (with caller progress: whoever holds step_mu). */
  mpx__mgr_loop loop;
  mpx__worktable table;
  mpx__credits credits; /* the workers by call items held */
  double gap;       /* moving average of the expected time between results */
  double task_s;    /* moving average of one task's run time, < 0 unknown */
  int cancels_sent; /* cancel_req was passed on to the workers */
  unsigned char *cancelled; /* per rank: a CANCEL was sent to it */
  double spin_s;            /* MPX_MANAGER_SPIN_US */
  long sleep_max_us;        /* MPX_IDLE_SLEEP_US */
  double span; /* longest call item worth queueing behind another (s) */
  size_t inflight;
  mpx_future *retry_head, *retry_tail; /* failed, to run again */
  size_t nretry;
  mpx__send *sends;
  mpx__msgbuf mb;

  /* Guarded by live_mu. */
  struct mpx_executor *live_next; /* this process's executors */
  int joined;                     /* the manager thread was joined */
};

/* The manager thread's body (pthread start routine, arg: the executor). */
void *mpx__manager_main(void *arg);

/* Caller progress (no manager thread): sets the pool up to be turned by
 * the threads that wait on it (the sync's progress hook); provided is
 * MPI's thread level. Returns 0 or MPX_ESYS. */
int mpx__manager_caller_setup(mpx_executor *ex, int provided);
/* The sync's progress hook itself, for a wait outside the sync (an
 * unordered map's queue): turns the pool once if this thread may and no
 * other does; returns how long to wait before the next turn (us). */
long mpx__manager_caller_turn(mpx_executor *ex);
/* One turn, for mpx_executor_progress(): *moved says whether anything
 * did. Returns 0, or MPX_ETHREAD off the main thread under
 * MPI_THREAD_FUNNELED. */
int mpx__manager_turn(mpx_executor *ex, int *moved);
/* After a submit with caller progress: turns the pool at once while a
 * child of the root (a worker, or a sub-manager) is idle, so that work
 * goes out before the next wait; then, while
 * a worker may be short of work (or on every 16th submit), at most every
 * 20 us, so that a loop of submits sends batches. */
void mpx__manager_submitted(mpx_executor *ex);
/* Turns the loop until the pool has ended (shutdown with wait, destroy). */
void mpx__manager_caller_run(mpx_executor *ex);

/* Wakes the manager for new work, a shutdown or a call (lock held). */
void mpx__manager_kick_locked(mpx_executor *ex);

/* Tells every worker to leave its loop and waits for each one's
 * acknowledgement. Called by the manager when it ends, and by creation
 * when it fails after the workers started serving. */
void mpx__manager_release_workers(mpx_executor *ex);

#endif
