/*
 * worker.h -- the loop every non-root rank runs (CPython's
 * _process_worker): receive call items, run them, send result items.
 */
#ifndef MPX_WORKER_H
#define MPX_WORKER_H

#include <mpi.h>

#include "mpx.h"

/* Payloads at least this large travel as a message's tail. */
#define MPX_TAIL_MIN ((size_t)64 * 1024)

/* Serves tasks from root over comm until a STOP arrives. Returns 0, or
 * MPX_EMPI when the communicator failed. */
int mpx__worker_loop(MPI_Comm comm, int root, const mpx_executor_options *opts);

#endif
