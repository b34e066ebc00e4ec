/*
 * map.h -- what the map offers the job module: whole chunks in input
 * order, handed over with their future so that results are not copied.
 */
#ifndef MPX_MAP_H
#define MPX_MAP_H

#include "mpx.h"
#include "task.h"
#include <stdatomic.h>

/* One submitted chunk: inputs [first, first + count) in one future. */
typedef struct mpx__chunk {
  uint64_t first, count;
  mpx_future *fut;
  int status;       /* the future's outcome once done */
  int worker;       /* the rank that ran it, once done (each item's) */
  mpx__outcome *oc; /* per input, once done and status 0 */
  char **texts;     /* per input, the failure text naming the input, for
                       a task process's death (malloc'd), or NULL */
  atomic_int refs;  /* the map's, plus the done-callback's (unordered) */
  struct mpx__map_rq *rq;
  struct mpx__chunk *next;      /* submission order */
  struct mpx__chunk *next_done; /* completion order (unordered) */
} mpx__chunk;

/* Waits for the next chunk in input order (ordered maps only) and hands it
 * over, done and parsed; the caller releases it with mpx__chunk_free().
 * Returns as mpx_map_next(). */
int mpx__map_next_chunk(mpx_map *m, double timeout, mpx__chunk **c);

/* Describes input j of a done chunk (as mpx_map_next() does). */
void mpx__chunk_item(const mpx__chunk *c, uint64_t j, mpx_map_item *it);

/* The window a map with options o gets on ex (o->window, or the default
 * chunksize x max(256, 8 x workers x prefetch)). */
uint64_t mpx__map_window(const mpx_executor *ex, const mpx_map_options *o);

/* Releases a chunk (its future and outcomes). */
void mpx__chunk_free(mpx__chunk *c);

#endif
