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

#define REC_VERSION 2

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

static int needs_escape(unsigned char c) {
  return c <= 0x20 || c >= 0x7f || c == '%' || c == ',' || c == ':' || c == '=';
}

char *mpx__escape(const char *s) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    n += needs_escape(*p) ? 3 : 1;
  char *out = malloc(n + 1), *o = out;
  if (!out)
    return NULL;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (needs_escape(*p)) {
      sprintf(o, "%%%02X", *p);
      o += 3;
    } else {
      *o++ = (char)*p;
    }
  }
  *o = '\0';
  return out;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

char *mpx__unescape(char *s) {
  char *o = s;
  for (const char *p = s; *p; p++) {
    int hi, lo;
    if (*p == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0) {
      *o++ = (char)(hi * 16 + lo);
      p += 2;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
  return s;
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
  size_t len = strlen(text);
  char *line = malloc(len + 16);
  if (!line)
    return mpx__fail(MPX_ENOMEM, "out of memory writing the record '%s'",
                     r->path);
  int n =
      sprintf(line, "%s crc=%08" PRIx32 "\n", text, mpx__crc32(0, text, len));
  int rc = 0;
  if (write_all(r->fd, line, (size_t)n) != 0 || (sync && fdatasync(r->fd)))
    rc = mpx__fail(MPX_EIO, "cannot write the completion record '%s': %s",
                   r->path, strerror(errno));
  free(line);
  return rc;
}

int mpx__rec_create(const char *path, const mpx__rec_head *h, mpx__rec *r) {
  r->fd = -1;
  r->path = strdup(path);
  char *task = mpx__escape(h->task);
  char *id = mpx__escape(h->identity ? h->identity : "");
  char *text = NULL;
  if (!r->path || !task || !id ||
      asprintf(&text, "mpxrec %d items=%" PRIu64 " gzip=%d task=%s id=%s",
               REC_VERSION, h->items, h->gzip, task, id) < 0) {
    free(task);
    free(id);
    mpx__rec_close(r);
    return mpx__fail(MPX_ENOMEM, "out of memory");
  }
  free(task);
  free(id);
  r->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (r->fd < 0) {
    int e = errno;
    free(text);
    mpx__rec_close(r);
    return mpx__fail(e == EEXIST ? MPX_EFILE : MPX_EIO,
                     "cannot create the completion record '%s': %s", path,
                     strerror(e));
  }
  int rc = append_line(r, text, 1);
  free(text);
  if (rc)
    mpx__rec_close(r);
  return rc;
}

/* Splits "text crc=<hex>" and checks the CRC; returns 1 when valid and
 * cuts line at the " crc=". */
static int check_line(char *line) {
  char *c = strrchr(line, ' ');
  if (!c || strncmp(c, " crc=", 5) != 0)
    return 0;
  char *end;
  unsigned long v = strtoul(c + 5, &end, 16);
  if (end == c + 5 || *end != '\0')
    return 0;
  *c = '\0';
  return mpx__crc32(0, line, strlen(line)) == (uint32_t)v;
}

/* The value of " key=" in a header line (malloc'd, unescaped), or NULL. */
static char *field(const char *line, const char *key) {
  size_t kl = strlen(key);
  for (const char *p = line; (p = strchr(p, ' ')) != NULL; p++)
    if (strncmp(p + 1, key, kl) == 0 && p[1 + kl] == '=') {
      const char *v = p + 2 + kl;
      return mpx__unescape(strndup(v, strcspn(v, " ")));
    }
  return NULL;
}

/* Parses "sums=<hex>,<hex>..." into c. Returns 0 or -1. */
static int parse_sums(const char *s, mpx__rec_commit *c) {
  size_t n = 1;
  for (const char *p = s; *p; p++)
    n += *p == ',';
  c->sums = malloc(n * sizeof *c->sums);
  if (!c->sums)
    return -1;
  c->nsums = 0;
  const char *p = s;
  for (;;) {
    char *end;
    unsigned long v = strtoul(p, &end, 16);
    if (end == p)
      return -1;
    c->sums[c->nsums++] = (uint32_t)v;
    if (*end == ',')
      p = end + 1;
    else
      return *end == '\0' ? 0 : -1;
  }
}

/* Parses a commit line (its CRC already checked). Returns 0 or -1. */
static int parse_commit(const char *line, mpx__rec_commit *c) {
  unsigned long dc;
  int used = 0;
  if (sscanf(line, "commit items=%" SCNu64 " rows=%" SCNu64 " data=%lx%n",
             &c->items, &c->rows, &dc, &used) != 3)
    return -1;
  c->data_crc = (uint32_t)dc;
  const char *rest = line + used;
  if (strncmp(rest, " sums=", 6) != 0)
    return -1;
  return parse_sums(rest + 6, c);
}

void mpx__rec_info_free(mpx__rec_info *info) {
  if (!info)
    return;
  for (size_t i = 0; i < info->ncommits; i++)
    free(info->commits[i].sums);
  free(info->commits);
  free(info->task);
  free(info->identity);
  free(info->schema);
  memset(info, 0, sizeof *info);
}

/* Reads the header line into info. Returns 0, 1 (damaged), MPX_EFILE. */
static int read_header(const char *path, char *line, ssize_t len,
                       mpx__rec_info *info) {
  if (len <= 0 || line[len - 1] != '\n')
    return 1; /* empty or torn: killed while it was being created */
  line[len - 1] = '\0';
  if (!check_line(line))
    return 1;
  int version = 0;
  if (sscanf(line, "mpxrec %d", &version) != 1)
    return mpx__fail(MPX_EFILE, "'%s' is not an mpx completion record", path);
  if (version != REC_VERSION)
    return mpx__fail(MPX_EFILE,
                     "'%s' is a completion record of format %d, written by "
                     "another version of mpx (this one reads format %d); "
                     "finish the job with that version, or pass overwrite "
                     "to start over",
                     path, version, REC_VERSION);
  char *items = field(line, "items"), *gzip = field(line, "gzip");
  info->task = field(line, "task");
  info->identity = field(line, "id");
  int ok = items && gzip && info->task && info->identity;
  if (ok) {
    info->items = strtoull(items, NULL, 10);
    info->gzip = atoi(gzip);
  }
  free(items);
  free(gzip);
  if (!ok)
    return mpx__fail(MPX_EFILE, "'%s': the record's header is incomplete",
                     path);
  return 0;
}

/* Reads the lines after the header. Returns 0 or MPX_ENOMEM. */
static int read_body(FILE *f, const char *path, mpx__rec_info *info) {
  char *line = NULL;
  size_t cap = 0, ccap = 0;
  ssize_t len;
  off_t off = info->end;
  int rc = 0;
  while ((len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] != '\n')
      break; /* torn by a kill */
    line[len - 1] = '\0';
    if (!check_line(line))
      break;
    if (!info->schema && info->ncommits == 0 &&
        strncmp(line, "schema ", 7) == 0) {
      if (!(info->schema = strdup(line + 7))) {
        rc = mpx__fail(MPX_ENOMEM, "out of memory reading '%s'", path);
        break;
      }
      off += len;
      info->end = info->body = off;
      continue;
    }
    mpx__rec_commit c = {0};
    c.offset = off;
    if (parse_commit(line, &c) != 0) {
      free(c.sums);
      break;
    }
    if (mpx__grow(&info->commits, &ccap, info->ncommits + 1,
                  sizeof *info->commits, 64) != 0) {
      free(c.sums);
      rc = mpx__fail(MPX_ENOMEM, "out of memory reading '%s'", path);
      break;
    }
    info->commits[info->ncommits++] = c;
    off += len;
    info->end = off;
  }
  free(line);
  return rc;
}

int mpx__rec_open(const char *path, mpx__rec *r, mpx__rec_info *info) {
  memset(info, 0, sizeof *info);
  r->path = NULL;
  r->fd = open(path, O_RDWR | O_CLOEXEC);
  if (r->fd < 0)
    return mpx__fail(MPX_EIO, "cannot open the completion record '%s': %s",
                     path, strerror(errno));
  r->path = strdup(path);
  int fd2 = dup(r->fd);
  FILE *f = fd2 >= 0 ? fdopen(fd2, "r") : NULL;
  if (!f || !r->path) {
    int e = errno;
    if (fd2 >= 0 && !f)
      close(fd2);
    if (f)
      fclose(f);
    mpx__rec_close(r);
    return mpx__fail(MPX_EIO, "cannot read '%s': %s", path, strerror(e));
  }
  struct stat st;
  if (fstat(r->fd, &st) == 0)
    info->bytes = st.st_size;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len = getline(&line, &cap, f);
  int rc = read_header(path, line, len, info);
  free(line);
  if (rc == 0) {
    info->head = info->end = info->body = (off_t)len;
    rc = read_body(f, path, info);
  }
  fclose(f);
  if (rc) {
    mpx__rec_info_free(info);
    mpx__rec_close(r);
  }
  return rc;
}

int mpx__rec_truncate(mpx__rec *r, off_t offset) {
  if (ftruncate(r->fd, offset) != 0 ||
      lseek(r->fd, offset, SEEK_SET) != offset || fdatasync(r->fd) != 0)
    return mpx__fail(MPX_EIO, "cannot cut the completion record '%s': %s",
                     r->path, strerror(errno));
  return 0;
}

int mpx__rec_schema_append(mpx__rec *r, const char *schema, int sync) {
  char *t = NULL;
  if (asprintf(&t, "schema %s", schema) < 0)
    return mpx__fail(MPX_ENOMEM, "out of memory");
  int rc = append_line(r, t, sync);
  free(t);
  return rc;
}

int mpx__rec_commit_append(mpx__rec *r, uint64_t items, uint64_t rows,
                           uint32_t data_crc, const uint32_t *sums,
                           size_t nsums, int sync) {
  char *t = malloc(96 + 9 * (nsums + 1));
  if (!t)
    return mpx__fail(MPX_ENOMEM, "out of memory");
  int n = sprintf(
      t, "commit items=%" PRIu64 " rows=%" PRIu64 " data=%08" PRIx32 " sums=",
      items, rows, data_crc);
  for (size_t i = 0; i < nsums; i++)
    n += sprintf(t + n, "%s%08" PRIx32, i ? "," : "", sums[i]);
  int rc = append_line(r, t, sync);
  free(t);
  return rc;
}

void mpx__rec_close(mpx__rec *r) {
  if (r->fd >= 0)
    close(r->fd);
  r->fd = -1;
  free(r->path);
  r->path = NULL;
}
