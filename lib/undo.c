/*
 * undo.c -- the HDF5 file driver with an undo journal (see undo.h).
 *
 * The journal: a header {magic "MPXUNDO1", u64 device, u64 inode, u64
 * size of the file at the commit point, u32 CRC of the 32 bytes before}
 * and records {u64 offset, u32 length, u32 CRC of the offset, length and
 * bytes, bytes}: what the file held there before a write replaced it.
 * Each record is in the journal before its write starts, so a record cut
 * short by a kill was never acted on, and recovery stops at it.
 * Recovery writes the records back newest first (the oldest, the commit
 * point's bytes, land last) and cuts the file to the commit point's size.
 */
#include "undo.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpx_errors.h"
#include "record.h"
#include "util.h"

#define MAGIC "MPXUNDO1"
enum { HEAD = 36, REC = 16 };

/* A write over the commit point's bytes, held until HDF5 flushes. */
typedef struct pending {
  haddr_t addr;
  size_t size;
  unsigned char *buf;
  size_t cap; /* of buf, kept for the next window's writes */
} pending;

struct mpx__undo {
  H5FD_t pub; /* first: HDF5 sees this */
  int fd, jfd;
  char *path, *jpath;
  dev_t dev;
  ino_t ino;
  haddr_t eoa, eof;
  uint64_t base; /* the file's size at the commit point */
  int sync, failed;
  int lost; /* the journal could not be written: none until the next
             * commit point (a partial one would restore a mixture) */
  mpx__undo **self;
  pending *pend; /* [0, npend) held; up to cappend with buffers to reuse */
  size_t npend, cappend;
  unsigned char *old; /* the bytes a held write replaces */
  size_t oldcap;
};

/* The driver's property: where to say which file is open. */
typedef struct undo_fa {
  mpx__undo **self;
  int sync;
} undo_fa;

static hid_t driver_id = H5I_INVALID_HID;
static pthread_mutex_t driver_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- plain I/O ------------------------------------------------------------
 */

static int pwrite_all(int fd, const void *buf, size_t n, off_t off) {
  const unsigned char *p = buf;
  while (n > 0) {
    ssize_t w = pwrite(fd, p, n, off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
    off += w;
  }
  return 0;
}

/* Reads n bytes at off; bytes past the end of the file read as zero. */
static int pread_all(int fd, void *buf, size_t n, off_t off) {
  unsigned char *p = buf;
  while (n > 0) {
    ssize_t r = pread(fd, p, n, off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -1;
    if (r == 0) {
      memset(p, 0, n);
      return 0;
    }
    p += r;
    n -= (size_t)r;
    off += r;
  }
  return 0;
}

static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static uint32_t get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static char *journal_path(const char *path) {
  char *j = NULL;
  if (asprintf(&j, "%s" MPX__UNDO_SUFFIX, path) < 0)
    return NULL;
  return j;
}

/* ---- the journal ----------------------------------------------------------
 */

/* Begins the journal of this commit window (its header) if not yet. */
static int journal_begin(mpx__undo *u) {
  if (u->jfd >= 0)
    return 0;
  if (u->lost)
    return -1;
  u->jfd = open(u->jpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (u->jfd < 0)
    return -1;
  unsigned char h[HEAD];
  memcpy(h, MAGIC, 8);
  put64(h + 8, (uint64_t)u->dev);
  put64(h + 16, (uint64_t)u->ino);
  put64(h + 24, u->base);
  put32(h + 32, mpx__crc32(0, h, 32));
  return mpx__write_all(u->jfd, h, HEAD);
}

/* Appends a record of the file's bytes [off, off + n) as they are now. */
static int journal_save(mpx__undo *u, uint64_t off, const unsigned char *old,
                        size_t n) {
  if (journal_begin(u) != 0)
    return -1;
  unsigned char r[REC];
  put64(r, off);
  put32(r + 8, (uint32_t)n);
  uint32_t crc = mpx__crc32(mpx__crc32(0, r, 12), old, n);
  put32(r + 12, crc);
  return mpx__write_all(u->jfd, r, REC) == 0 &&
                 mpx__write_all(u->jfd, old, n) == 0
             ? 0
             : -1;
}

/* Saves what the write p would replace (the span that differs) to the
 * journal. */
static int save_replaced(mpx__undo *u, const pending *p) {
  if (p->size > u->oldcap) {
    unsigned char *o = realloc(u->old, p->size);
    if (!o)
      return -1;
    u->old = o;
    u->oldcap = p->size;
  }
  unsigned char *old = u->old;
  if (pread_all(u->fd, old, p->size, (off_t)p->addr) != 0)
    return -1;
  /* HDF5 rewrites a whole chunk for a few new rows: find the span that
   * changes a block at a time (memcmp), then byte by byte. */
  enum { BLK = 4096 };
  size_t a = 0, b = p->size;
  while (b - a >= BLK && memcmp(old + a, p->buf + a, BLK) == 0)
    a += BLK;
  while (a < b && old[a] == p->buf[a])
    a++;
  while (b - a >= BLK && memcmp(old + b - BLK, p->buf + b - BLK, BLK) == 0)
    b -= BLK;
  while (b > a && old[b - 1] == p->buf[b - 1])
    b--;
  return a < b ? journal_save(u, p->addr + a, old + a, b - a) : 0;
}

/* Gives up the journal of this commit window when it cannot be written
 * (its directory removed, the disk full past what was reserved): it is
 * emptied and removed, so that no run replays part of it, and the writes
 * go on unprotected until the next commit point. HDF5 1.10 cannot close a
 * file after a failed write: failing the write would be worse, and the
 * job finds a removed directory or a full disk itself. */
static void lose_journal(mpx__undo *u) {
  if (u->jfd >= 0) {
    if (ftruncate(u->jfd, 0) != 0) {
      /* the unlink below is the last resort */
    }
    close(u->jfd);
    u->jfd = -1;
  }
  unlink(u->jpath);
  u->lost = 1;
}

/* Journals and makes the held writes. */
static int apply_pending(mpx__undo *u) {
  if (u->npend == 0)
    return 0;
  for (size_t i = 0; i < u->npend && !u->lost; i++)
    if (save_replaced(u, &u->pend[i]) != 0)
      lose_journal(u);
  if (!u->lost && u->sync && u->jfd >= 0 && fdatasync(u->jfd) != 0)
    lose_journal(u);
  for (size_t i = 0; i < u->npend; i++)
    if (pwrite_all(u->fd, u->pend[i].buf, u->pend[i].size,
                   (off_t)u->pend[i].addr) != 0)
      return -1;
  u->npend = 0; /* the buffers stay for the next window */
  return 0;
}

/* Holds a write over the commit point's bytes. */
static int hold(mpx__undo *u, haddr_t addr, size_t size, const void *buf) {
  for (size_t i = 0; i < u->npend; i++) /* the same block written again */
    if (u->pend[i].addr == addr && u->pend[i].size == size) {
      memcpy(u->pend[i].buf, buf, size);
      return 0;
    }
  if (u->npend == u->cappend) {
    size_t cap = u->cappend ? 2 * u->cappend : 16;
    pending *np = realloc(u->pend, cap * sizeof *np);
    if (!np)
      return -1;
    memset(np + u->cappend, 0, (cap - u->cappend) * sizeof *np);
    u->pend = np;
    u->cappend = cap;
  }
  pending *p = &u->pend[u->npend];
  if (size > p->cap) {
    unsigned char *b = realloc(p->buf, size);
    if (!b)
      return -1;
    p->buf = b;
    p->cap = size;
  }
  memcpy(p->buf, buf, size);
  p->addr = addr;
  p->size = size;
  u->npend++;
  return 0;
}

/* ---- the driver's callbacks ------------------------------------------------
 */

static H5FD_t *undo_open(const char *name, unsigned flags, hid_t fapl,
                         haddr_t maxaddr) {
  (void)maxaddr;
  const undo_fa *fa = H5Pget_driver_info(fapl);
  int o = O_CLOEXEC | ((flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY);
  if (flags & H5F_ACC_TRUNC)
    o |= O_TRUNC;
  if (flags & H5F_ACC_CREAT)
    o |= O_CREAT;
  if (flags & H5F_ACC_EXCL)
    o |= O_EXCL;
  int fd = open(name, o, 0666);
  if (fd < 0)
    return NULL;
  struct stat sb;
  mpx__undo *u = calloc(1, sizeof *u);
  if (!u || fstat(fd, &sb) != 0 || !(u->path = strdup(name)) ||
      !(u->jpath = journal_path(name))) {
    if (u) {
      free(u->path);
      free(u);
    }
    close(fd);
    return NULL;
  }
  u->fd = fd;
  u->jfd = -1;
  u->dev = sb.st_dev;
  u->ino = sb.st_ino;
  u->eof = (haddr_t)sb.st_size;
  u->base = (uint64_t)sb.st_size;
  u->sync = fa ? fa->sync : 1;
  u->self = fa ? fa->self : NULL;
  if (u->self)
    *u->self = u;
  return &u->pub;
}

static herr_t undo_close(H5FD_t *f) {
  mpx__undo *u = (mpx__undo *)f;
  int rc = apply_pending(u);
  if (u->self && *u->self == u)
    *u->self = NULL;
  /* Closed whole: the file is complete, the journal has done its work.
   * After a failure it stays, for the next run to roll back. */
  if (rc == 0 && !u->failed && u->jfd >= 0) {
    if ((!u->sync || fdatasync(u->fd) == 0) && unlink(u->jpath) == 0)
      ;
    else
      rc = -1;
  }
  if (u->jfd >= 0)
    close(u->jfd);
  if (close(u->fd) != 0)
    rc = -1;
  for (size_t i = 0; i < u->cappend; i++)
    free(u->pend[i].buf);
  free(u->pend);
  free(u->old);
  free(u->path);
  free(u->jpath);
  free(u);
  return rc ? -1 : 0;
}

static int undo_cmp(const H5FD_t *a, const H5FD_t *b) {
  const mpx__undo *x = (const mpx__undo *)a, *y = (const mpx__undo *)b;
  if (x->dev != y->dev)
    return x->dev < y->dev ? -1 : 1;
  if (x->ino != y->ino)
    return x->ino < y->ino ? -1 : 1;
  return 0;
}

static herr_t undo_query(const H5FD_t *f, unsigned long *flags) {
  (void)f;
  /* as sec2's, but not compatible with the default driver's handle
   * sharing: writes here go through the journal */
  *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA |
           H5FD_FEAT_DATA_SIEVE | H5FD_FEAT_AGGREGATE_SMALLDATA |
           H5FD_FEAT_POSIX_COMPAT_HANDLE;
  return 0;
}

static haddr_t undo_get_eoa(const H5FD_t *f, H5FD_mem_t type) {
  (void)type;
  return ((const mpx__undo *)f)->eoa;
}

static herr_t undo_set_eoa(H5FD_t *f, H5FD_mem_t type, haddr_t addr) {
  (void)type;
  ((mpx__undo *)f)->eoa = addr;
  return 0;
}

static haddr_t undo_get_eof(const H5FD_t *f, H5FD_mem_t type) {
  (void)type;
  return ((const mpx__undo *)f)->eof;
}

static herr_t undo_get_handle(H5FD_t *f, hid_t fapl, void **handle) {
  (void)fapl;
  *handle = &((mpx__undo *)f)->fd;
  return 0;
}

static herr_t undo_read(H5FD_t *f, H5FD_mem_t type, hid_t dxpl, haddr_t addr,
                        size_t size, void *buf) {
  (void)type;
  (void)dxpl;
  mpx__undo *u = (mpx__undo *)f;
  if (addr == HADDR_UNDEF || addr + size > u->eoa)
    return -1;
  if (pread_all(u->fd, buf, size, (off_t)addr) != 0)
    return -1;
  /* what is held and not yet written, in the order it was written */
  for (size_t i = 0; i < u->npend; i++) {
    const pending *p = &u->pend[i];
    haddr_t a = p->addr > addr ? p->addr : addr;
    haddr_t b =
        p->addr + p->size < addr + size ? p->addr + p->size : addr + size;
    if (a < b)
      memcpy((unsigned char *)buf + (a - addr), p->buf + (a - p->addr),
             (size_t)(b - a));
  }
  return 0;
}

static herr_t undo_write(H5FD_t *f, H5FD_mem_t type, hid_t dxpl, haddr_t addr,
                         size_t size, const void *buf) {
  (void)type;
  (void)dxpl;
  mpx__undo *u = (mpx__undo *)f;
  if (addr == HADDR_UNDEF || addr + size > u->eoa) {
    u->failed = 1;
    return -1;
  }
  const unsigned char *p = buf;
  size_t held =
      addr < u->base
          ? (size_t)((addr + size < u->base ? addr + size : u->base) - addr)
          : 0;
  if ((held && hold(u, addr, held, p) != 0) ||
      (size > held &&
       pwrite_all(u->fd, p + held, size - held, (off_t)(addr + held)) != 0)) {
    u->failed = 1;
    return -1;
  }
  if (addr + size > u->eof)
    u->eof = addr + size;
  return 0;
}

static herr_t undo_flush(H5FD_t *f, hid_t dxpl, hbool_t closing) {
  (void)dxpl;
  (void)closing;
  mpx__undo *u = (mpx__undo *)f;
  if (apply_pending(u) != 0) {
    u->failed = 1;
    return -1;
  }
  return 0;
}

static herr_t undo_truncate(H5FD_t *f, hid_t dxpl, hbool_t closing) {
  if (undo_flush(f, dxpl, closing) != 0)
    return -1;
  mpx__undo *u = (mpx__undo *)f;
  if (u->eoa == u->eof)
    return 0;
  if (u->eoa < u->base && !u->lost) {
    /* the commit point's bytes past the new end, kept */
    size_t n = (size_t)(u->base - u->eoa);
    unsigned char *old = malloc(n);
    if (!old || pread_all(u->fd, old, n, (off_t)u->eoa) != 0 ||
        journal_save(u, u->eoa, old, n) != 0 ||
        (u->sync && fdatasync(u->jfd) != 0))
      lose_journal(u);
    free(old);
  }
  if (ftruncate(u->fd, (off_t)u->eoa) != 0) {
    u->failed = 1;
    return -1;
  }
  u->eof = u->eoa;
  return 0;
}

static herr_t undo_lock(H5FD_t *f, hbool_t rw) {
  mpx__undo *u = (mpx__undo *)f;
  if (flock(u->fd, (rw ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0)
    return errno == ENOSYS ? 0 : -1; /* file systems without locks */
  return 0;
}

static herr_t undo_unlock(H5FD_t *f) {
  mpx__undo *u = (mpx__undo *)f;
  if (flock(u->fd, LOCK_UN) != 0)
    return errno == ENOSYS ? 0 : -1;
  return 0;
}

static const H5FD_class_t undo_class = {
    "mpx-undo",
    (haddr_t)INT64_MAX, /* maxaddr: off_t */
    H5F_CLOSE_WEAK,
    NULL, /* terminate */
    NULL, /* sb_size: no driver block, any HDF5 reader opens the file */
    NULL,
    NULL,
    sizeof(undo_fa),
    NULL, /* fapl_get */
    NULL, /* fapl_copy: a byte copy */
    NULL, /* fapl_free */
    0,
    NULL,
    NULL,
    undo_open,
    undo_close,
    undo_cmp,
    undo_query,
    NULL, /* get_type_map */
    NULL, /* alloc */
    NULL, /* free */
    undo_get_eoa,
    undo_set_eoa,
    undo_get_eof,
    undo_get_handle,
    undo_read,
    undo_write,
    undo_flush,
    undo_truncate,
    undo_lock,
    undo_unlock,
    H5FD_FLMAP_DICHOTOMY,
};

/* ---- the module's calls ---------------------------------------------------
 */

hid_t mpx__undo_fapl(mpx__undo **self, int sync) {
  pthread_mutex_lock(&driver_lock);
  if (driver_id < 0 || H5Iis_valid(driver_id) <= 0)
    driver_id = H5FDregister(&undo_class);
  hid_t id = driver_id;
  pthread_mutex_unlock(&driver_lock);
  if (id < 0)
    return H5I_INVALID_HID;
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  undo_fa fa = {self, sync};
  if (fapl >= 0 && H5Pset_driver(fapl, id, &fa) < 0) {
    H5Pclose(fapl);
    return H5I_INVALID_HID;
  }
  if (self)
    *self = NULL;
  return fapl;
}

int mpx__undo_commit(mpx__undo *u) {
  if (!u)
    return 0;
  if (u->npend && apply_pending(u) != 0) {
    u->failed = 1;
    return mpx__fail(MPX_EIO, "cannot write to '%s': %s", u->path,
                     strerror(errno));
  }
  if (u->jfd >= 0) {
    close(u->jfd);
    u->jfd = -1;
    if (unlink(u->jpath) != 0 && errno != ENOENT)
      return mpx__fail(MPX_EIO, "cannot remove the journal '%s': %s", u->jpath,
                       strerror(errno));
  }
  u->lost = 0; /* a new window, protected again */
  struct stat sb;
  if (fstat(u->fd, &sb) != 0)
    return mpx__fail(MPX_EIO, "cannot stat '%s': %s", u->path, strerror(errno));
  u->base = (uint64_t)sb.st_size;
  return 0;
}

int mpx__undo_reserve(mpx__undo *u, uint64_t bytes) {
  if (!u)
    return 0;
  struct stat sb;
  if (journal_begin(u) != 0 || fstat(u->jfd, &sb) != 0)
    return -1;
  if (fallocate(u->jfd, FALLOC_FL_KEEP_SIZE, 0,
                (off_t)((uint64_t)sb.st_size + bytes)) != 0 &&
      (errno == ENOSPC || errno == EDQUOT || errno == EFBIG))
    return -1;
  return 0; /* file systems without fallocate: carry on */
}

int mpx__undo_exists(const char *path) {
  char *j = journal_path(path);
  int e = j && access(j, F_OK) == 0;
  free(j);
  return e;
}

int mpx__undo_remove(const char *path) {
  char *j = journal_path(path);
  if (!j)
    return mpx__fail(MPX_ENOMEM, "out of memory");
  int rc = 0;
  if (unlink(j) != 0 && errno != ENOENT)
    rc = mpx__fail(MPX_EIO, "cannot remove the journal '%s': %s", j,
                   strerror(errno));
  free(j);
  return rc;
}

/* Reads the journal jfd (size bytes) into a list of record offsets;
 * returns how many whole records it holds (a torn or damaged one and
 * what follows were never acted on). */
static size_t read_records(const unsigned char *j, size_t size, size_t **offs) {
  size_t n = 0, cap = 0, at = HEAD;
  *offs = NULL;
  while (at + REC <= size) {
    uint32_t len = get32(j + at + 8);
    if (len > size - at - REC)
      break;
    uint32_t crc = mpx__crc32(mpx__crc32(0, j + at, 12), j + at + REC, len);
    if (crc != get32(j + at + 12))
      break;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      size_t *no = realloc(*offs, cap * sizeof *no);
      if (!no)
        break;
      *offs = no;
    }
    (*offs)[n++] = at;
    at += REC + len;
  }
  return n;
}

int mpx__undo_recover(const char *path, int *rolled) {
  *rolled = 0;
  char *jp = journal_path(path);
  if (!jp)
    return mpx__fail(MPX_ENOMEM, "out of memory");
  int jfd = open(jp, O_RDONLY | O_CLOEXEC);
  if (jfd < 0) {
    int e = errno;
    free(jp);
    return e == ENOENT
               ? 0
               : mpx__fail(MPX_EIO, "cannot read the journal of '%s': %s", path,
                           strerror(e));
  }
  struct stat js, fs;
  unsigned char *j = NULL;
  int rc = 0;
  if (fstat(jfd, &js) != 0 || !(j = malloc((size_t)js.st_size + 1)) ||
      pread_all(jfd, j, (size_t)js.st_size, 0) != 0) {
    rc = mpx__fail(MPX_EIO, "cannot read the journal '%s': %s", jp,
                   strerror(errno));
    goto out;
  }
  size_t size = (size_t)js.st_size;
  if (size < HEAD || memcmp(j, MAGIC, 8) != 0 ||
      mpx__crc32(0, j, 32) != get32(j + 32)) {
    /* cut short while it was begun: nothing was replaced yet */
    if (unlink(jp) != 0)
      rc = mpx__fail(MPX_EIO, "cannot remove the journal '%s': %s", jp,
                     strerror(errno));
    goto out;
  }
  if (stat(path, &fs) != 0) {
    if (unlink(jp) != 0) /* no file to put back: nothing to do */
      rc = mpx__fail(MPX_EIO, "cannot remove the journal '%s': %s", jp,
                     strerror(errno));
    goto out;
  }
  if ((uint64_t)fs.st_dev != get64(j + 8) ||
      (uint64_t)fs.st_ino != get64(j + 16)) {
    rc = mpx__fail(MPX_ECORRUPT,
                   "the journal '%s' is of another file than '%s' (it was "
                   "copied, moved or replaced): mpx changes neither; remove "
                   "the journal if '%s' is whole, or pass overwrite",
                   jp, path, path);
    goto out;
  }
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    rc = mpx__fail(MPX_EIO, "cannot open '%s' to roll it back: %s", path,
                   strerror(errno));
    goto out;
  }
  size_t *offs = NULL, n = read_records(j, size, &offs);
  for (size_t k = n; rc == 0 && k-- > 0;) {
    const unsigned char *r = j + offs[k];
    if (pwrite_all(fd, r + REC, get32(r + 8), (off_t)get64(r)) != 0)
      rc = -1;
  }
  if (rc == 0 && ftruncate(fd, (off_t)get64(j + 24)) != 0)
    rc = -1;
  if (rc == 0 && fdatasync(fd) != 0)
    rc = -1;
  if (rc)
    rc = mpx__fail(MPX_EIO, "cannot roll '%s' back to its last commit: %s",
                   path, strerror(errno));
  close(fd);
  free(offs);
  if (rc == 0 && unlink(jp) != 0)
    rc = mpx__fail(MPX_EIO, "cannot remove the journal '%s': %s", jp,
                   strerror(errno));
  if (rc == 0)
    *rolled = 1;
out:
  free(j);
  close(jfd);
  free(jp);
  return rc;
}
