/*
 * record.h -- the completion record of a job: a small append-only text
 * file beside the output (path + ".mpxrec") saying what the job is and
 * which prefix of its inputs is safely in the output file.
 *
 *   mpxrec 2 items=<n> gzip=<level> task=<name> id=<identity> crc=<hex>
 *   schema <name>:<dtype>:<width>,... crc=<hex>
 *   commit items=<end> rows=<end> data=<hex> sums=<hex>,... crc=<hex>
 *   ...
 *
 * Names and the identity are escaped (mpx__escape) so that a line splits on
 * spaces. The schema line is written once, before the first commit that
 * adds rows. Each line carries a CRC-32 of its own text, and a commit line
 * also the CRC of what that commit wrote to each job dataset and to each
 * /mpx record dataset (sums, in schema order, then item_status, item_rows,
 * item_offset, item_error) and their combination (data), so a line torn by
 * a kill is ignored and a commit whose data did not reach the file, or was
 * changed since, is found by reading it back. A commit line is appended
 * only after the output file was flushed (and synced), so the record never
 * claims what is not on disk. Lines may be of any length.
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

/* What a job is: written in the record's header. */
typedef struct mpx__rec_head {
  const char *task;
  uint64_t items;
  int gzip;
  const char *identity; /* "" or NULL: none */
} mpx__rec_head;

/* One commit line: the inputs and rows the file held after it, the CRCs of
 * what it wrote, and where the line starts in the record. */
typedef struct mpx__rec_commit {
  uint64_t items, rows;
  uint32_t data_crc;
  uint32_t *sums; /* per dataset, see above (malloc'd) */
  size_t nsums;
  off_t offset;
} mpx__rec_commit;

/* What an existing record holds (mpx__rec_info_free frees it). */
typedef struct mpx__rec_info {
  char *task, *identity;
  uint64_t items;
  int gzip;
  char *schema; /* the schema line's text (escaped), or NULL */
  mpx__rec_commit *commits;
  size_t ncommits;
  off_t head;  /* where the header line ends */
  off_t body;  /* where the first commit line starts or would start */
  off_t end;   /* where the valid lines end (a torn tail after it) */
  off_t bytes; /* the record's size */
} mpx__rec_info;

/* CRC-32 (IEEE, as zlib's crc32), continued from crc (0 to start). */
uint32_t mpx__crc32(uint32_t crc, const void *p, size_t n);

/* s with bytes a record or schema cannot hold verbatim (space and control
 * bytes, '%', ',', ':', '=', bytes >= 0x7f) as %XX; malloc'd, NULL when
 * out of memory. */
char *mpx__escape(const char *s);

/* The inverse of mpx__escape, in place; returns s. */
char *mpx__unescape(char *s);

/* Creates the record (failing if it exists) with its header line, synced.
 * Returns 0, MPX_EFILE, MPX_EIO, MPX_ENOMEM. */
int mpx__rec_create(const char *path, const mpx__rec_head *h, mpx__rec *r);

/* Opens an existing record and reads it into *info without changing it.
 * Returns 0; 1 when the header line is missing, torn or fails its CRC
 * (nothing is open then: the record says nothing); MPX_EFILE (a record of
 * another format version, or not a record); MPX_EIO; MPX_ENOMEM. A torn or
 * corrupt line ends the commits read. */
int mpx__rec_open(const char *path, mpx__rec *r, mpx__rec_info *info);

void mpx__rec_info_free(mpx__rec_info *info);

/* Cuts the record at offset (dropping the lines from there), synced. */
int mpx__rec_truncate(mpx__rec *r, off_t offset);

/* Appends the schema line (synced when sync is set). Returns 0, MPX_EIO,
 * MPX_ENOMEM. */
int mpx__rec_schema_append(mpx__rec *r, const char *schema, int sync);

/* Appends a commit line (synced when sync is set). Returns 0, MPX_EIO,
 * MPX_ENOMEM. */
int mpx__rec_commit_append(mpx__rec *r, uint64_t items, uint64_t rows,
                           uint32_t data_crc, const uint32_t *sums,
                           size_t nsums, int sync);

void mpx__rec_close(mpx__rec *r);

#endif
