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

#endif
