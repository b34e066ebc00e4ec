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
 * own shutdown on MPI_COMM_SELF, with MPI_Comm_create_keyval and
 * MPI_Comm_set_attr), so only programs that run a job initialise it, at
 * their first job, through mpx__executor_call(): at once where MPI allows
 * concurrent calls, else on the manager thread between its own MPI calls.
 * The writer's later HDF5 calls (sec2 driver) never call MPI, as
 * MPI_THREAD_SERIALIZED requires. */
void mpx__h5_preinit(void);

/* The process's HDF5 error handler (HDF5 here is not thread-safe, so it is
 * one per process): a job saves it when it starts, installs its own (which
 * turns HDF5's error stack into mpx messages) and restores it at the end,
 * so a host program that uses HDF5 itself keeps its handler. */
typedef struct mpx__h5_handler {
  void (*func)(void); /* an H5E_auto2_t, cast back to call */
  void *data;
} mpx__h5_handler;
void mpx__h5_handler_save(mpx__h5_handler *saved);
void mpx__h5_handler_restore(const mpx__h5_handler *saved);

/* Provenance written as attributes of / when the file is created (and the
 * identity as an attribute of /mpx). */
typedef struct mpx__h5_meta {
  const char *task, *identity;
  uint64_t items, chunksize, window;
  int ranks;
} mpx__h5_meta;

/* Creates the output (failing if it exists). Returns 0, MPX_EFILE,
 * MPX_EIO. */
int mpx__h5_create(const char *path, const mpx__h5_meta *meta,
                   const mpx_job_options *jo, mpx__h5 **h);

/* Opens an existing output of a job (read-only unless writable) and its
 * /mpx record datasets, and of the other datasets only those schema names
 * ("name:dtype:width,...", the record's; NULL when the record names none):
 * nothing else in the file is ever opened. With no schema, datasets that
 * the file's own /mpx schema attribute names were made by a run that
 * committed none of their rows; opened writable, they are removed to be
 * made again. Returns 0, MPX_EIO (HDF5 cannot open it), MPX_ECORRUPT (not
 * an mpx output, or the job's datasets are missing or of other types),
 * MPX_ENOMEM. */
int mpx__h5_open(const char *path, const mpx_job_options *jo,
                 const char *schema, int writable, mpx__h5 **h);

/* The /mpx attributes "identity" and "schema" as the file held them when
 * opened (NULL when absent). */
const char *mpx__h5_identity(const mpx__h5 *h);
const char *mpx__h5_file_schema(const mpx__h5 *h);

/* Rows of /mpx/item_status in the file: the inputs it holds. */
uint64_t mpx__h5_file_items(const mpx__h5 *h);

/* Whether the file's closing attributes are written (end_time set): a
 * finished job killed while it closed the file has all its inputs but
 * not them. */
int mpx__h5_closed(mpx__h5 *h);

/* The job's schema text once its datasets exist, else NULL. */
const char *mpx__h5_schema(const mpx__h5 *h);

/* Reads back what each commit wrote and compares every dataset's CRC with
 * the record's: *good is the number of leading commits that check out, and
 * why says what differs in the first one that does not ("" when all do).
 * Changes nothing. Returns 0. */
int mpx__h5_verify(mpx__h5 *h, const mpx__rec_commit *commits, size_t n,
                   size_t *good, char *why, size_t whycap);

/* Cuts the job's datasets to the first items inputs and rows rows (a
 * verified commit) and counts the failed inputs among them. Returns 0 or
 * MPX_EIO. */
int mpx__h5_cut(mpx__h5 *h, uint64_t items, uint64_t rows);

/* 1 (with why saying which) when a job dataset holds more rows than the
 * commit of items inputs and rows rows, else 0. */
int mpx__h5_beyond(const mpx__h5 *h, uint64_t items, uint64_t rows, char *why,
                   size_t whycap);

/* The failed inputs among the first items of the file. */
uint64_t mpx__h5_count_failed(mpx__h5 *h, uint64_t items);

/* Counts the failed inputs among the first items (*count) and finds the
 * first of them (*first, UINT64_MAX for none). Returns 0, MPX_EIO or
 * MPX_ENOMEM. */
int mpx__h5_scan_failed(mpx__h5 *h, uint64_t items, uint64_t *count,
                        uint64_t *first);

/* Flushes HDF5's buffers to the file (no sync). A process killed during
 * the flush leaves a file that may not open: the undo journal (undo.h)
 * puts it back. Returns 0 or MPX_EIO. */
int mpx__h5_flush(mpx__h5 *h);

/* Flushes the file (and syncs it, when the job syncs) and makes its state
 * the one a run killed from here on returns to (undo.h): for the states
 * between commits that the record accounts for (a new file, a resumed
 * one after its cut). Returns 0 or an mpx code (said). */
int mpx__h5_checkpoint(mpx__h5 *h);

/* Appends a line describing this run to /mpx/runs. Returns 0 or MPX_EIO. */
int mpx__h5_add_run(mpx__h5 *h, const char *text);

/* Stages input it (the next in input order): its arrays, or its failure.
 * Returns 0, MPX_ESCHEMA (names, types, widths or rows do not match;
 * mpx_last_error() names the input), MPX_EIO, MPX_ENOMEM. */
int mpx__h5_add(mpx__h5 *h, const mpx_map_item *it);

/* Writes what is staged, flushes (and syncs) the file, makes its state
 * the one a kill returns to (undo.h), and returns what it now holds, the CRC of
 * what this commit wrote and its per-dataset CRCs
 * (*sums, owned by h, valid until the next commit). Returns 0 or MPX_EIO
 * (also when the file was removed or replaced meanwhile). */
int mpx__h5_commit(mpx__h5 *h, uint64_t *items, uint64_t *rows, uint32_t *crc,
                   const uint32_t **sums, size_t *nsums);

/* MPX_EIO when the output's path no longer names the file being written
 * (removed, or replaced), else 0. */
int mpx__h5_check_path(const mpx__h5 *h);

/* Inputs and rows staged or written, and failed inputs, so far. */
void mpx__h5_counts(const mpx__h5 *h, uint64_t *items, uint64_t *rows,
                    uint64_t *failed);

/* Sets a string attribute of / (replacing it). Returns 0 or MPX_EIO. */
int mpx__h5_attr_str(mpx__h5 *h, const char *name, const char *value);

/* Sets an unsigned 64-bit attribute of /. Returns 0 or MPX_EIO. */
int mpx__h5_attr_u64(mpx__h5 *h, const char *name, uint64_t value);

/* Closes the file (flushing it when writable, syncing it when the job
 * syncs, and checking that its path still names it). Accepts NULL.
 * Returns 0 or MPX_EIO. */
int mpx__h5_close(mpx__h5 *h);

#endif
