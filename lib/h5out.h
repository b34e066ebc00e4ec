/*
 * h5out.h -- the HDF5 side of a job: one dataset per result array, the
 * concatenation of that array over the inputs in input order, plus the
 * per-input record under /mpx (item_status, item_rows, item_offset,
 * item_error). Rows are staged in memory and written in blocks; a commit
 * writes what is staged, flushes the file (and syncs it) and returns the
 * CRC of what it wrote, for the completion record.
 *
 * Every function here is called from the job's writer thread only: HDF5 is
 * never called from two threads.
 */
#ifndef MPX_H5OUT_H
#define MPX_H5OUT_H

#include "mpx.h"
#include "record.h"

typedef struct mpx__h5 mpx__h5;

/* Initialises the HDF5 library; the one call here not made by a writer.
 * Debian's parallel HDF5 makes MPI calls while it initialises (it hangs its
 * own shutdown on MPI_COMM_SELF), so the executor makes this call on the
 * root before its manager thread starts: the writer's HDF5 calls on the
 * sec2 driver never call MPI, as MPI_THREAD_SERIALIZED requires. */
void mpx__h5_preinit(void);

/* Provenance written as attributes of / when the file is created. */
typedef struct mpx__h5_meta {
  const char *task;
  uint64_t items, chunksize, window;
  int ranks;
} mpx__h5_meta;

/* Creates the output (failing if it exists). Returns 0, MPX_EFILE,
 * MPX_EIO. */
int mpx__h5_create(const char *path, const mpx__h5_meta *meta,
                   const mpx_job_options *jo, mpx__h5 **h);

/* Opens an existing output for appending and reads its datasets.
 * Returns 0 or MPX_EIO (not an HDF5 file, or not one of ours). */
int mpx__h5_open(const char *path, const mpx_job_options *jo, mpx__h5 **h);

/* Reads back what each commit wrote and compares CRCs; the file is then cut
 * to the last commit that matches (and everything before it), whose
 * index is returned in *good (0 when none). Returns 0 or MPX_EIO. */
int mpx__h5_verify(mpx__h5 *h, const mpx__rec_commit *commits, size_t n,
                   size_t *good);

/* Stages input it (the next in input order): its arrays, or its failure.
 * Returns 0, MPX_ESCHEMA (names, types, widths or rows do not match;
 * mpx_last_error() names the input), MPX_EIO, MPX_ENOMEM. */
int mpx__h5_add(mpx__h5 *h, const mpx_map_item *it);

/* Writes what is staged, flushes (and syncs) the file, and returns what it
 * now holds and the CRC of what this commit wrote. Returns 0 or MPX_EIO. */
int mpx__h5_commit(mpx__h5 *h, uint64_t *items, uint64_t *rows, uint32_t *crc);

/* Inputs and rows staged or written, and failed inputs, so far. */
void mpx__h5_counts(const mpx__h5 *h, uint64_t *items, uint64_t *rows,
                    uint64_t *failed);

/* Sets a string attribute of / (replacing it). Returns 0 or MPX_EIO. */
int mpx__h5_attr_str(mpx__h5 *h, const char *name, const char *value);

/* Sets an unsigned 64-bit attribute of /. Returns 0 or MPX_EIO. */
int mpx__h5_attr_u64(mpx__h5 *h, const char *name, uint64_t value);

/* Closes the file (syncing it when the job syncs). Accepts NULL. Returns 0
 * or MPX_EIO. */
int mpx__h5_close(mpx__h5 *h);

#endif
