/*
 * hier.h -- sub-managers: the dispatcher's second level
 * (mpx_executor_options.group, docs/hierarchy.md).
 *
 * A flat root receives every result message and sends every call item of
 * every worker; past about a thousand ranks that alone fills its time. With
 * groups, the root sends its batches to one sub-manager per node (or per k
 * ranks), which hands them out to its workers with the same credits and
 * batch policy as the root's (credits.h) and sends their results back
 * gathered, many per message, each naming the rank that ran it. To the
 * root a sub-manager is a worker that takes bigger call items and may end
 * several in one message; to a worker its sub-manager is the root. The
 * futures, work ids, retries, cancels and jobs stay on the root.
 */
#ifndef MPX_HIER_H
#define MPX_HIER_H

#include <mpi.h>

#include "mpx.h"

/* Who serves whom. */
typedef struct mpx__plan {
  /* On the root (NULL and 0 when flat): */
  int ngroups; /* sub-managers */
  int *parent; /* per rank: the rank it serves (root or its sub-manager);
                  -1 for the root */
  int *fan;    /* per rank: the workers of a sub-manager, 0 for any other */
  /* On every other rank: */
  int up;       /* the rank it serves */
  int *members; /* a sub-manager's workers, ascending; else NULL */
  int nmembers;
} mpx__plan;

/* Makes the plan for the group option (agreed on already) over comm.
 * Collective unless the plan is flat for the option and size alone (no
 * collective then): the ranks of each node
 * (MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)), the root left out, are cut
 * in ascending order into groups of k (the whole node with
 * MPX_GROUP_NODE); the first rank of a group of 2 or more is its
 * sub-manager, a group of one rank is a plain worker of the root.
 * MPX_GROUP_AUTO is one group per node at 512 ranks or more on 2 nodes or
 * more, else flat. Returns 0, MPX_ENOMEM or MPX_EMPI (not agreed). */
int mpx__plan_make(MPI_Comm comm, int root, int group, mpx__plan *p);

/* Frees what the plan owns. */
void mpx__plan_free(mpx__plan *p);

/* The sub-manager's loop on this rank: serves the root's call items
 * through its workers until the root's STOP, then releases them. Returns
 * 0 or MPX_EMPI when the communicator failed. */
int mpx__leader_loop(MPI_Comm comm, int root, const mpx__plan *p,
                     const mpx_executor_options *o);

#endif
