/*
 * record.h -- the completion record of a job: a small append-only text
 * file beside the output (path + ".mpxrec") saying which prefix of the
 * inputs is safely in the output file.
 *
 *   mpxrec 1 items=<n> task=<name> crc=<hex>
 *   commit items=<end> rows=<end> data=<hex> crc=<hex>
 *   ...
 *
 * Each line carries a CRC-32 of its own text, and a commit line also the
 * CRC of the data that commit wrote, so a line torn by a kill is ignored
 * and a commit whose data did not reach the file is found by reading it
 * back. A commit line is appended only after the output file was flushed
 * (and synced), so the record never claims what is not on disk.
 */
#ifndef MPX_RECORD_H
#define MPX_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct mpx__rec {
  int fd;
  char *path;
} mpx__rec;

/* One commit line: the inputs and rows the file held after it, the CRC of
 * what it wrote, and where the line starts in the record. */
typedef struct mpx__rec_commit {
  uint64_t items, rows;
  uint32_t data_crc;
  off_t offset;
} mpx__rec_commit;

/* CRC-32 (IEEE, as zlib's crc32), continued from crc (0 to start). */
uint32_t mpx__crc32(uint32_t crc, const void *p, size_t n);

/* Creates the record (failing if it exists) with its header line for a
 * job of task over n inputs, synced. Returns 0, MPX_EFILE, MPX_EIO. */
int mpx__rec_create(const char *path, const char *task, uint64_t n,
                    mpx__rec *r);

/* Opens an existing record for a job of task over n inputs and reads its
 * valid commit lines into *commits (malloc'd, *ncommits of them); a torn
 * or corrupt line ends the list. Returns 0, 1 when the header itself is
 * missing or torn (killed while the record was being created; nothing is
 * open then), MPX_EFILE (the record is of another job, or not a record),
 * MPX_EIO, MPX_ENOMEM. */
int mpx__rec_open(const char *path, const char *task, uint64_t n, mpx__rec *r,
                  mpx__rec_commit **commits, size_t *ncommits);

/* Cuts the record at offset (dropping the commit lines from there). */
int mpx__rec_truncate(mpx__rec *r, off_t offset);

/* Appends a commit line (synced when sync is set). Returns 0 or MPX_EIO. */
int mpx__rec_commit_append(mpx__rec *r, uint64_t items, uint64_t rows,
                           uint32_t data_crc, int sync);

void mpx__rec_close(mpx__rec *r);

#endif
