/*
 * credits.h -- which workers may be sent a call item, without scanning
 * the ranks.
 *
 * Every worker may hold up to `levels` call items (the prefetch option).
 * The workers holding h items (h < levels) form list h, so the dispatcher
 * finds a worker with a free credit in O(1) and walks only the workers
 * that have one: at 4,096 ranks with every worker busy, a manager turn no
 * longer looks at 4,095 ranks to send nothing. A worker that is sent an
 * item goes to the back of the next list (breadth first: every idle worker
 * is served before any gets a second item); a worker whose result returns
 * a credit goes to the front of the list below (the warmest first, as it
 * reported last). Owned by the manager alone (no locking).
 */
#ifndef MPX_CREDITS_H
#define MPX_CREDITS_H

#include <stddef.h>

typedef struct mpx__credits {
  int size;         /* ranks */
  int levels;       /* items a worker may hold (>= 1) */
  int *held;        /* per rank: items held; -1 for a rank that is no worker */
  int *next, *prev; /* per rank: neighbours in its list, -1 at the ends */
  int *head, *tail; /* per level: first and last worker, -1 if none */
} mpx__credits;

/* Every rank but root is a worker holding nothing, listed from root + 1
 * upwards (wrapping). Returns 0 or MPX_ENOMEM. */
int mpx__credits_init(mpx__credits *c, int size, int root, int levels);
/* The same for the children of rank me: the ranks w != root with
 * parent[w] == me (every rank but root when parent is NULL), listed from
 * me + 1 upwards (wrapping). */
int mpx__credits_init_children(mpx__credits *c, int size, int root, int levels,
                               const int *parent, int me);
void mpx__credits_destroy(mpx__credits *c);

/* The first worker holding `held` items, or -1 (also when held is out of
 * range). */
int mpx__credits_first(const mpx__credits *c, int held);

/* The worker after w in w's list, or -1. */
int mpx__credits_next(const mpx__credits *c, int w);

/* Items worker w holds (-1 for a rank that is no worker). */
int mpx__credits_held(const mpx__credits *c, int w);

/* w was sent an item: it moves to the back of the next list (or to no
 * list once it holds `levels`). Returns 0, or MPX_EINVAL when w is no
 * worker or holds `levels` already. */
int mpx__credits_take(mpx__credits *c, int w);

/* w returned an item: it moves to the front of the list below. Returns 0,
 * or MPX_EINVAL when w is no worker or holds nothing. */
int mpx__credits_give(mpx__credits *c, int w);

/* How long a call item may be expected to run and still be queued behind
 * another on a worker, in units of the dispatcher's longest idle sleep
 * (see mpx__prefetch_now). */
#define MPX__PREFETCH_SPAN 20.0

/* How big a call item is and how many a worker may hold, for the root's
 * dispatcher and a sub-manager's alike (manager.c, hier.c). */
typedef struct mpx__batch_policy {
  int workers;   /* ranks that run tasks below the dispatcher */
  int prefetch;  /* the prefetch option */
  int max_batch; /* the max_batch option */
  double task_s; /* moving average of a task's run time, < 0 unknown */
  double span;   /* longest call item worth queueing behind another (s) */
} mpx__batch_policy;

/* Guided batch size: a share of the backlog per credit, within limits, and
 * no longer than the prefetch span once task times are known, so a batch
 * never holds much more work than one call item should. A sub-manager of
 * fan workers is sent fan times as much (its limits scale alike). */
size_t mpx__batch_size(const mpx__batch_policy *p, size_t backlog, int prefetch,
                       int fan);

/* How many call items a worker may hold: the prefetch option while tasks
 * are known to be short, one while they are long or not yet measured (the
 * first results arrive within a round trip for tiny tasks, so this costs
 * them nothing). Prefetch hides the dispatcher's reaction time: at most
 * its longest idle sleep (MPX_IDLE_SLEEP_US, 1 ms) plus a round trip. A
 * call item expected to run longer than MPX__PREFETCH_SPAN times that
 * gains under 5% from being queued behind another, and may wait behind a
 * long task while another worker is idle; such items go to idle workers
 * only, as a shared queue (Python's pools) would hand them out. */
int mpx__prefetch_now(const mpx__batch_policy *p, size_t backlog);

#endif
