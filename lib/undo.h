/*
 * undo.h -- an HDF5 file driver with an undo journal, so that a job's
 * output killed at any moment returns to its last commit, byte for byte.
 *
 * HDF5 updates a file in place: a flush rewrites the superblock, object
 * headers, B-tree nodes, heap collections and the last chunk of each
 * dataset, one write after another. A process killed in the middle of a
 * flush leaves a mixture of two states: seen on HDF5 1.10, files that no
 * longer open ("addr overflow"), files that open but fail the next write,
 * and string references to heap objects never written.
 *
 * This driver writes like HDF5's sec2 driver, except that a write over
 * bytes the file held at its last commit point is held in memory until
 * HDF5 flushes; then the bytes it replaces are appended to the journal
 * <file>.mpxjournal (only the span that changes), the journal is synced
 * when sync is on, and the writes are made. Writes past the commit point's
 * end of file go straight to the file. mpx__undo_commit() makes the
 * file's present state the commit point (the journal is removed). After
 * a kill, mpx__undo_recover() puts the replaced bytes back (newest
 * first), cuts the file to its size at the commit point and removes the
 * journal: the file is the last commit's again.
 */
#ifndef MPX_UNDO_H
#define MPX_UNDO_H

#include <hdf5.h>

#define MPX__UNDO_SUFFIX ".mpxjournal"

typedef struct mpx__undo mpx__undo;

/* A file access property list (to close) with the driver: while a file
 * opened with it is open, *self points to it (NULL after). sync: the
 * journal is synced to disk before the bytes it saves are replaced.
 * Returns the list, or a negative id. */
hid_t mpx__undo_fapl(mpx__undo **self, int sync);

/* Makes the file's present state its commit point: call after HDF5 has
 * flushed it (and it is synced, when wanted). Returns 0 or an mpx code
 * (said). */
int mpx__undo_commit(mpx__undo *u);

/* Makes sure the journal has room for bytes more (disk blocks reserved,
 * as the output's own are before HDF5 writes: HDF5 1.10 cannot close a
 * file after a failed write). Returns 0, or -1 with errno (ENOSPC,
 * EDQUOT, EFBIG, or why the journal cannot be written). */
int mpx__undo_reserve(mpx__undo *u, uint64_t bytes);

/* Whether path has a journal (a run was killed after its last commit
 * point, or one is writing it now). */
int mpx__undo_exists(const char *path);

/* Rolls path back to its last commit point when its journal says that a
 * run stopped after it (call before opening path, holding its lock).
 * Sets *rolled to 1 when it did, else 0. Returns 0, or an mpx code
 * (said): MPX_ECORRUPT when the journal is of another file (nothing
 * touched), MPX_EIO when it cannot be applied. */
int mpx__undo_recover(const char *path, int *rolled);

/* Removes path's journal if there is one (a new output in its place).
 * Returns 0 or MPX_EIO (said). */
int mpx__undo_remove(const char *path);

#endif
