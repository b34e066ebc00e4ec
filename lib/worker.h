/*
 * worker.h -- the loop every non-root rank runs (CPython's
 * _process_worker): receive call items, run them, send result items.
 */
#ifndef MPX_WORKER_H
#define MPX_WORKER_H

#include <mpi.h>

#include "mpx.h"
#include "supervise.h"

/* Payloads at least this large travel as a message's tail. */
#define MPX_TAIL_MIN ((size_t)64 * 1024)

/* What a CANCEL on the control tag asks: answer the tasks not started with
 * MPX_ECANCELED (a cancelling shutdown), or also kill the running ones
 * (terminate; with isolation only). */
#define MPX__CTL_CANCEL 1
#define MPX__CTL_TERMINATE 2

/* Serves tasks from root over comm until a STOP arrives, running the
 * pool's initializer pi first (in each task process with isolation).
 * Returns 0, or MPX_EMPI when the communicator failed. */
int mpx__worker_loop(MPI_Comm comm, int root, const mpx_executor_options *opts,
                     const mpx__pool_init *pi);

#endif
