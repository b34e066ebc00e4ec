/*
 * record.c -- the completion record (see record.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "mpx.h"
#include "record.h"
#include "util.h"

uint32_t mpx__crc32(uint32_t crc, const void *p, size_t n) {
  /* zlib's, which folds several bytes per step: the writer checksums every
   * byte it writes, so a byte-wise table was its hottest loop. */
  while (n > 0) {
    uInt step = n > (size_t)UINT32_MAX ? UINT32_MAX : (uInt)n;
    crc = (uint32_t)crc32((uLong)crc, p, step);
    p = (const unsigned char *)p + step;
    n -= step;
  }
  return crc;
}

/* Writes all of buf; returns 0 or -1 with errno. */
static int write_all(int fd, const char *buf, size_t len) {
  while (len) {
    ssize_t w = write(fd, buf, len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

/* Appends text plus " crc=<hex>\n" as one write. */
static int append_line(mpx__rec *r, const char *text, int sync) {
  char line[1024];
  int n = snprintf(line, sizeof line, "%s crc=%08" PRIx32 "\n", text,
                   mpx__crc32(0, text, strlen(text)));
  if (n < 0 || (size_t)n >= sizeof line)
    return mpx__fail(MPX_EINVAL, "record line too long");
  if (write_all(r->fd, line, (size_t)n) != 0 || (sync && fdatasync(r->fd)))
    return mpx__fail(MPX_EIO, "cannot write the completion record '%s': %s",
                     r->path, strerror(errno));
  return 0;
}

static void header_text(char *buf, size_t cap, const char *task, uint64_t n) {
  snprintf(buf, cap, "mpxrec 1 items=%" PRIu64 " task=%s", n, task);
}

int mpx__rec_create(const char *path, const char *task, uint64_t n,
                    mpx__rec *r) {
  r->path = strdup(path);
  r->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (r->fd < 0) {
    int e = errno;
    free(r->path);
    r->path = NULL;
    return mpx__fail(e == EEXIST ? MPX_EFILE : MPX_EIO,
                     "cannot create the completion record '%s': %s", path,
                     strerror(e));
  }
  char h[512];
  header_text(h, sizeof h, task, n);
  int rc = append_line(r, h, 1);
  if (rc)
    mpx__rec_close(r);
  return rc;
}

/* Splits "text crc=<hex>" and checks the CRC; returns 1 when valid and
 * cuts line at the " crc=". */
static int check_line(char *line) {
  char *c = strstr(line, " crc=");
  if (!c)
    return 0;
  char *end;
  unsigned long v = strtoul(c + 5, &end, 16);
  if (end == c + 5 || *end != '\0')
    return 0;
  *c = '\0';
  return mpx__crc32(0, line, strlen(line)) == (uint32_t)v;
}

int mpx__rec_open(const char *path, const char *task, uint64_t n, mpx__rec *r,
                  mpx__rec_commit **commits, size_t *ncommits) {
  *commits = NULL;
  *ncommits = 0;
  r->fd = open(path, O_RDWR | O_CLOEXEC);
  if (r->fd < 0)
    return mpx__fail(MPX_EIO, "cannot open the completion record '%s': %s",
                     path, strerror(errno));
  r->path = strdup(path);
  int fd2 = dup(r->fd);
  FILE *f = fd2 >= 0 ? fdopen(fd2, "r") : NULL;
  if (!f) {
    if (fd2 >= 0)
      close(fd2);
    mpx__rec_close(r);
    return mpx__fail(MPX_EIO, "cannot read '%s': %s", path, strerror(errno));
  }
  char line[1024], want[512];
  header_text(want, sizeof want, task, n);
  int rc = 0;
  if (!fgets(line, sizeof line, f) || !strchr(line, '\n')) {
    rc = 1; /* empty or torn: killed while it was being created */
  } else {
    *strchr(line, '\n') = '\0';
    if (!check_line(line))
      rc = mpx__fail(MPX_EFILE, "'%s' is not an mpx completion record", path);
    else if (strcmp(line, want) != 0)
      rc = mpx__fail(MPX_EFILE,
                     "'%s' records another job ('%s'); this run is '%s'", path,
                     line, want);
  }
  size_t cap = 0;
  off_t off = (off_t)ftello(f);
  while (rc == 0 && fgets(line, sizeof line, f)) {
    off_t next = (off_t)ftello(f);
    char *nl = strchr(line, '\n');
    if (!nl)
      break; /* torn by a kill */
    *nl = '\0';
    mpx__rec_commit c = {0, 0, 0, off};
    unsigned long dc;
    if (!check_line(line) ||
        sscanf(line, "commit items=%" SCNu64 " rows=%" SCNu64 " data=%lx",
               &c.items, &c.rows, &dc) != 3)
      break;
    c.data_crc = (uint32_t)dc;
    if (*ncommits == cap) {
      cap = cap ? 2 * cap : 64;
      mpx__rec_commit *nc = realloc(*commits, cap * sizeof *nc);
      if (!nc) {
        rc = mpx__fail(MPX_ENOMEM, "out of memory reading '%s'", path);
        break;
      }
      *commits = nc;
    }
    (*commits)[(*ncommits)++] = c;
    off = next;
  }
  fclose(f);
  if (rc > 0) {
    mpx__rec_close(r);
    return 1;
  }
  if (rc) {
    free(*commits);
    *commits = NULL;
    *ncommits = 0;
    mpx__rec_close(r);
    return rc;
  }
  /* Drop a torn tail now, so appends start on a line of their own. */
  return mpx__rec_truncate(r, off);
}

int mpx__rec_truncate(mpx__rec *r, off_t offset) {
  if (ftruncate(r->fd, offset) != 0 ||
      lseek(r->fd, offset, SEEK_SET) != offset || fdatasync(r->fd) != 0)
    return mpx__fail(MPX_EIO, "cannot cut the completion record '%s': %s",
                     r->path, strerror(errno));
  return 0;
}

int mpx__rec_commit_append(mpx__rec *r, uint64_t items, uint64_t rows,
                           uint32_t data_crc, int sync) {
  char t[256];
  snprintf(t, sizeof t,
           "commit items=%" PRIu64 " rows=%" PRIu64 " data=%08" PRIx32, items,
           rows, data_crc);
  return append_line(r, t, sync);
}

void mpx__rec_close(mpx__rec *r) {
  if (r->fd >= 0)
    close(r->fd);
  r->fd = -1;
  free(r->path);
  r->path = NULL;
}
