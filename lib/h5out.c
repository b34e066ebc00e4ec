/*
 * h5out.c -- the HDF5 output of a job (see h5out.h).
 *
 * Each dataset is chunked and extendable along its first dimension (rank
 * 1 for width-1 arrays and strings, rank 2 otherwise), optionally gzip-
 * compressed. Rows are staged per dataset and written in blocks of a few
 * MiB with one H5Dset_extent + H5Dwrite each, so that small inputs do not
 * cost one HDF5 call each. A commit returns the CRC of the bytes each
 * dataset gained (strings as their NUL-terminated bytes), in dataset-name
 * order and then the /mpx datasets', and their combination; verification
 * recomputes each from the file and names the dataset that differs.
 *
 * The job's datasets are those its schema names ("name:dtype:width,...",
 * stored as the /mpx attribute "schema" before they are created, and in
 * the completion record): a file is never listed, so datasets, groups and
 * attributes that a user adds are never opened, cut or rewritten.
 */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "h5out.h"
#include "task.h"
#include "undo.h"
#include "util.h"

#define STAGE_MAX ((size_t)8 << 20) /* staged bytes before a block write */
#define PARSE_ARRAYS 16             /* arrays parsed on the stack */

typedef struct ds {
  char name[MPX_ARRAY_NAME_MAX + 1];
  mpx_dtype dtype;
  uint64_t width;
  size_t rowbytes;   /* 0 for strings */
  size_t chunkbytes; /* bytes of one HDF5 chunk (strings: their pointers) */
  hid_t id, mtype;
  uint64_t file_rows;   /* rows in the dataset */
  uint64_t staged_rows; /* rows in buf */
  unsigned char *buf;   /* staged rows, or NUL-terminated strings */
  size_t len, cap;
  uint32_t crc; /* of the bytes staged or written since the last commit */
} ds;

enum { M_STATUS, M_ROWS, M_OFFSET, M_ERROR, M_N };

struct mpx__h5 {
  char *path;
  hid_t file, grp;
  mpx__undo *undo; /* the file's driver when writable (undo.h) */
  int fd, writable;
  mpx_job_options jo;
  ds *ds; /* result datasets, sorted by name */
  size_t nds;
  int schema;        /* ds[] known */
  char *schema_text; /* "name:dtype:width,..." of ds[] (escaped names) */
  char *file_schema; /* /mpx attribute "schema" when opened, or NULL */
  char *file_id;     /* /mpx attribute "identity" when opened, or NULL */
  uint32_t *sums;    /* per-dataset CRCs of the last commit */
  mpx_array *arrays; /* parse space for results of many arrays */
  const mpx_array **by_ds;
  size_t arrays_cap;
  ds meta[M_N];
  uint64_t items, rows, failed; /* staged or written */
  uint64_t commit_rows;         /* rows at the last commit */
  size_t staged;                /* bytes staged over all datasets */
  size_t unsynced;              /* bytes written since writeback started */
};

static const char *meta_names[M_N] = {"item_status", "item_rows", "item_offset",
                                      "item_error"};

/* ---- errors ----------------------------------------------------------------
 */

/* The innermost description of HDF5's last failure, captured by the error
 * handler when the failing call returns (later calls clear the stack). */
static char h5_last[256];

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *arg) {
  (void)n;
  char *out = arg;
  if (!out[0] && e->desc && e->desc[0])
    snprintf(out, sizeof h5_last, "%s (in %s)", e->desc, e->func_name);
  return 0;
}

static herr_t on_h5_error(hid_t stack, void *arg) {
  (void)arg;
  h5_last[0] = '\0';
  H5Ewalk2(stack, H5E_WALK_UPWARD, walk_cb, h5_last);
  return 0;
}

/* Fails with code, adding HDF5's description and errno when one is set
 * (callers clear errno before the HDF5 call). */
static int h5fail(int code, const char *path, const char *what) {
  int e = errno;
  char *nl = strchr(h5_last, '\n');
  if (nl)
    *nl = '\0'; /* HDF5's write errors run over several lines */
  int rc = mpx__fail(code, "%s '%s': %s%s%s", what, path,
                     h5_last[0] ? h5_last : "HDF5 error",
                     e ? "; system error: " : "", e ? strerror(e) : "");
  h5_last[0] = '\0';
  return rc;
}

/* ---- types ------------------------------------------------------------------
 */

static hid_t str_type(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

/* The memory type of d (a copy for strings). */
static hid_t mem_type(mpx_dtype d) {
  switch (d) {
  case MPX_INT8:
    return H5Tcopy(H5T_NATIVE_INT8);
  case MPX_UINT8:
    return H5Tcopy(H5T_NATIVE_UINT8);
  case MPX_INT16:
    return H5Tcopy(H5T_NATIVE_INT16);
  case MPX_UINT16:
    return H5Tcopy(H5T_NATIVE_UINT16);
  case MPX_INT32:
    return H5Tcopy(H5T_NATIVE_INT32);
  case MPX_UINT32:
    return H5Tcopy(H5T_NATIVE_UINT32);
  case MPX_INT64:
    return H5Tcopy(H5T_NATIVE_INT64);
  case MPX_UINT64:
    return H5Tcopy(H5T_NATIVE_UINT64);
  case MPX_FLOAT32:
    return H5Tcopy(H5T_NATIVE_FLOAT);
  case MPX_FLOAT64:
    return H5Tcopy(H5T_NATIVE_DOUBLE);
  case MPX_STRING:
    return str_type();
  }
  return H5I_INVALID_HID;
}

/* The mpx type of a dataset's file type, or 0. */
static mpx_dtype from_h5(hid_t t) {
  size_t sz = H5Tget_size(t);
  switch (H5Tget_class(t)) {
  case H5T_INTEGER: {
    int s = H5Tget_sign(t) == H5T_SGN_2;
    if (sz == 1)
      return s ? MPX_INT8 : MPX_UINT8;
    if (sz == 2)
      return s ? MPX_INT16 : MPX_UINT16;
    if (sz == 4)
      return s ? MPX_INT32 : MPX_UINT32;
    if (sz == 8)
      return s ? MPX_INT64 : MPX_UINT64;
    return 0;
  }
  case H5T_FLOAT:
    return sz == 4 ? MPX_FLOAT32 : sz == 8 ? MPX_FLOAT64 : 0;
  case H5T_STRING:
    return H5Tis_variable_str(t) > 0 ? MPX_STRING : 0;
  default:
    return 0;
  }
}

/* ---- datasets
 * ---------------------------------------------------------------- */

static void ds_init(ds *d, const char *name, mpx_dtype t, uint64_t width) {
  memset(d, 0, sizeof *d);
  snprintf(d->name, sizeof d->name, "%s", name);
  d->dtype = t;
  d->width = width;
  d->rowbytes = (size_t)(mpx_dtype_size(t) * width);
  d->id = d->mtype = H5I_INVALID_HID;
}

static int ds_create(mpx__h5 *h, hid_t loc, ds *d) {
  int rank = d->width > 1 ? 2 : 1;
  hsize_t dims[2] = {0, d->width}, maxd[2] = {H5S_UNLIMITED, d->width};
  hsize_t chunk[2] = {h->jo.chunk_rows, d->width};
  if (!chunk[0]) {
    size_t rb = d->rowbytes ? d->rowbytes : 64;
    chunk[0] = rb >= ((size_t)1 << 20) ? 1 : ((size_t)1 << 20) / rb;
  }
  d->mtype = mem_type(d->dtype);
  d->chunkbytes = (size_t)chunk[0] * (d->rowbytes ? d->rowbytes : 16);
  hid_t sp = H5Screate_simple(rank, dims, maxd);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, rank, chunk);
  if (d->dtype != MPX_STRING) /* HDF5 refuses it for variable lengths */
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
  if (h->jo.compression > 0) {
    if (d->rowbytes)
      H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, (unsigned)h->jo.compression);
  }
  hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
  H5Pset_chunk_cache(dapl, 521, (size_t)16 << 20, 1.0);
  errno = 0;
  d->id = H5Dcreate2(loc, d->name, d->mtype, sp, H5P_DEFAULT, dcpl, dapl);
  H5Pclose(dapl);
  H5Pclose(dcpl);
  H5Sclose(sp);
  if (d->id < 0)
    return h5fail(MPX_EIO, h->path, "cannot create a dataset in");
  return 0;
}

/* Opens dataset name under loc into d; returns 0 or MPX_EIO. */
static int ds_open(mpx__h5 *h, hid_t loc, const char *name, ds *d) {
  errno = 0;
  hid_t id = H5Dopen2(loc, name, H5P_DEFAULT);
  if (id < 0)
    return h5fail(MPX_EIO, h->path, "cannot open a dataset of");
  hid_t t = H5Dget_type(id), sp = H5Dget_space(id);
  hsize_t dims[2] = {0, 1};
  int rank = H5Sget_simple_extent_ndims(sp);
  mpx_dtype dt = from_h5(t);
  if (rank >= 1 && rank <= 2)
    H5Sget_simple_extent_dims(sp, dims, NULL);
  H5Sclose(sp);
  H5Tclose(t);
  if (!dt || rank < 1 || rank > 2) {
    H5Dclose(id);
    return mpx__fail(MPX_EIO, "'%s': dataset '%s' was not written by mpx",
                     h->path, name);
  }
  ds_init(d, name, dt, rank == 2 ? dims[1] : 1);
  d->id = id;
  d->mtype = mem_type(dt);
  d->file_rows = dims[0];
  hid_t dcpl = H5Dget_create_plist(id);
  hsize_t chunk[2] = {1, 1};
  if (dcpl >= 0 && H5Pget_chunk(dcpl, 2, chunk) >= 1)
    d->chunkbytes = (size_t)chunk[0] * (d->rowbytes ? d->rowbytes : 16);
  if (dcpl >= 0)
    H5Pclose(dcpl);
  return 0;
}

static void ds_close(ds *d) {
  if (d->id >= 0)
    H5Dclose(d->id);
  if (d->mtype >= 0)
    H5Tclose(d->mtype);
  free(d->buf);
  memset(d, 0, sizeof *d);
  d->id = d->mtype = H5I_INVALID_HID;
}

/* Appends nrows rows (nbytes bytes) to d's staging buffer. */
static int ds_stage(mpx__h5 *h, ds *d, const void *data, uint64_t nrows,
                    size_t nbytes) {
  if (mpx__grow(&d->buf, &d->cap, d->len + nbytes, 1, 4096) != 0)
    return mpx__fail(MPX_ENOMEM, "out of memory staging rows of '%s'", d->name);
  if (nbytes)
    memcpy(d->buf + d->len, data, nbytes);
  d->len += nbytes;
  d->staged_rows += nrows;
  d->crc = mpx__crc32(d->crc, data, nbytes);
  h->staged += nbytes;
  return 0;
}

/* Selects rows [r0, r1) of d in a new file space and a matching memory
 * space. */
static void ds_select(const ds *d, uint64_t r0, uint64_t r1, hid_t *fsp,
                      hid_t *msp) {
  int rank = d->width > 1 && d->dtype != MPX_STRING ? 2 : 1;
  hsize_t start[2] = {r0, 0}, count[2] = {r1 - r0, d->width};
  *fsp = H5Dget_space(d->id);
  H5Sselect_hyperslab(*fsp, H5S_SELECT_SET, start, NULL, count, NULL);
  *msp = H5Screate_simple(rank, count, NULL);
}

/* Appends rows rows from buf (numeric rows, or for strings an array of
 * pointers) at the end of d. */
static int ds_write(mpx__h5 *h, ds *d, const void *buf, uint64_t rows) {
  hsize_t dims[2] = {d->file_rows + rows, d->width};
  errno = 0;
  if (H5Dset_extent(d->id, dims) < 0)
    return h5fail(MPX_EIO, h->path, "cannot extend a dataset of");
  hid_t fsp, msp;
  ds_select(d, d->file_rows, dims[0], &fsp, &msp);
  errno = 0;
  herr_t rc = H5Dwrite(d->id, d->mtype, msp, fsp, H5P_DEFAULT, buf);
  H5Sclose(fsp);
  H5Sclose(msp);
  if (rc < 0)
    return h5fail(MPX_EIO, h->path, "cannot write to");
  d->file_rows = dims[0];
  return 0;
}

/* Writes d's staged rows at its end. */
static int ds_flush(mpx__h5 *h, ds *d) {
  if (d->staged_rows == 0)
    return 0;
  int rc;
  if (d->dtype == MPX_STRING) {
    char **p = malloc((size_t)d->staged_rows * sizeof *p);
    if (!p)
      return mpx__fail(MPX_ENOMEM, "out of memory writing '%s'", d->name);
    char *s = (char *)d->buf;
    for (uint64_t i = 0; i < d->staged_rows; i++) {
      p[i] = s;
      s += strlen(s) + 1;
    }
    rc = ds_write(h, d, p, d->staged_rows);
    free(p);
  } else {
    rc = ds_write(h, d, d->buf, d->staged_rows);
  }
  if (rc)
    return rc;
  h->staged -= d->len;
  d->staged_rows = 0;
  d->len = 0;
  return 0;
}

/* CRC of rows [r0, r1) of d as read back from the file. */
static int ds_read_crc(mpx__h5 *h, ds *d, uint64_t r0, uint64_t r1,
                       uint32_t *crc) {
  *crc = 0;
  if (r1 > d->file_rows)
    return mpx__fail(MPX_EIO, "'%s': dataset '%s' holds %llu rows, not %llu",
                     h->path, d->name, (unsigned long long)d->file_rows,
                     (unsigned long long)r1);
  size_t per = d->rowbytes ? d->rowbytes : sizeof(char *);
  uint64_t block = ((size_t)16 << 20) / per;
  if (block == 0)
    block = 1;
  void *buf = malloc((size_t)(block < r1 - r0 ? block : r1 - r0) * per + 1);
  if (!buf)
    return mpx__fail(MPX_ENOMEM, "out of memory reading back '%s'", d->name);
  int rc = 0;
  for (uint64_t a = r0; a < r1 && rc == 0; a += block) {
    uint64_t b = a + block < r1 ? a + block : r1;
    hid_t fsp, msp;
    ds_select(d, a, b, &fsp, &msp);
    errno = 0;
    if (H5Dread(d->id, d->mtype, msp, fsp, H5P_DEFAULT, buf) < 0) {
      rc = h5fail(MPX_EIO, h->path, "cannot read back");
    } else if (d->dtype == MPX_STRING) {
      char **p = buf;
      for (uint64_t i = 0; i < b - a; i++)
        *crc = mpx__crc32(*crc, p[i] ? p[i] : "", p[i] ? strlen(p[i]) + 1 : 1);
      H5Dvlen_reclaim(d->mtype, msp, H5P_DEFAULT, buf);
    } else {
      *crc = mpx__crc32(*crc, buf, (size_t)(b - a) * per);
    }
    H5Sclose(fsp);
    H5Sclose(msp);
  }
  free(buf);
  return rc;
}

static int ds_truncate(mpx__h5 *h, ds *d, uint64_t rows) {
  hsize_t dims[2] = {rows, d->width};
  if (H5Dset_extent(d->id, dims) < 0)
    return h5fail(MPX_EIO, h->path, "cannot cut a dataset of");
  d->file_rows = rows;
  return 0;
}

/* ---- what a killed run left beyond the commit ---------------------------
 *
 * A variable-length string element holds a reference to an object in one
 * of HDF5's global heap collections. A run killed while HDF5 flushed a
 * commit can leave, past the committed rows, a chunk that holds such
 * references while the heap objects they name were never written; the
 * dataset's extent still ends at the commit, so no reader sees them. But
 * HDF5 writes a string over an element by first freeing the heap object
 * the element held, and the next run allocates its objects from the same
 * collection with the same indices the killed run used: writing row R
 * would free the object a string written a moment before had just taken,
 * and that string would read as another (seen: a resumed mpx-run output
 * whose stdout row 4 read "out 4" instead of "out 5", exit status 0).
 * So before a resumed run writes anything, every element of a string
 * dataset at or past its kept rows is set to zero (no heap object) in the
 * raw chunks, chunks past the extent included. */

enum { VL_DISK = 16 }; /* a string element on disk: length, address, index */

/* Zeroes elements [from, ...) of the raw chunk of d at row off (rows rows
 * of VL_DISK bytes), inflating and deflating it when it is compressed.
 * Sets *found when the chunk exists. */
static int scrub_chunk(mpx__h5 *h, ds *d, hsize_t off, hsize_t rows,
                       uint64_t from, int deflate, int *found) {
  hsize_t o[2] = {off, 0}, size = 0;
  unsigned mask = 0;
  haddr_t addr = HADDR_UNDEF;
  *found = 0;
  if (H5Dget_chunk_info_by_coord(d->id, o, &mask, &addr, &size) < 0)
    return h5fail(MPX_EIO, h->path, "cannot look up a chunk of");
  if (addr == HADDR_UNDEF || size == 0)
    return 0;
  *found = 1;
  size_t plain = (size_t)rows * VL_DISK;
  unsigned char *raw = malloc((size_t)size), *buf = malloc(plain);
  int rc = 0;
  if (!raw || !buf) {
    rc = mpx__fail(MPX_ENOMEM, "out of memory cleaning '%s'", d->name);
    goto out;
  }
  uint32_t rmask = 0;
  if (H5Dread_chunk(d->id, H5P_DEFAULT, o, &rmask, raw) < 0) {
    rc = h5fail(MPX_EIO, h->path, "cannot read a chunk of");
    goto out;
  }
  int packed = deflate && !(rmask & 1);
  memset(buf, 0, plain);
  uLongf n = (uLongf)plain;
  int bad = 0;
  if (!packed)
    memcpy(buf, raw, size < plain ? (size_t)size : plain);
  else
    bad = uncompress(buf, &n, raw, (uLong)size) != Z_OK || n != plain;
  size_t keep = from > off ? (size_t)(from - off) : 0;
  if (bad && keep > 0) { /* the kept rows were verified: not expected */
    rc = mpx__fail(MPX_ECORRUPT,
                   "'%s': the chunk of dataset '%s' at row %llu cannot be "
                   "read",
                   h->path, d->name, (unsigned long long)off);
    goto out;
  }
  memset(buf + keep * VL_DISK, 0, plain - keep * VL_DISK);
  if (!packed) {
    if (H5Dwrite_chunk(d->id, H5P_DEFAULT, rmask, o, plain, buf) < 0)
      rc = h5fail(MPX_EIO, h->path, "cannot clean a chunk of");
    goto out;
  }
  uLongf zn = compressBound((uLong)plain);
  unsigned char *z = malloc((size_t)zn);
  if (!z)
    rc = mpx__fail(MPX_ENOMEM, "out of memory cleaning '%s'", d->name);
  else if (compress2(z, &zn, buf, (uLong)plain,
                     h->jo.compression > 0 ? h->jo.compression : 1) != Z_OK)
    rc = mpx__fail(MPX_ENOMEM, "cannot compress a chunk of '%s'", d->name);
  else if (H5Dwrite_chunk(d->id, H5P_DEFAULT, 0, o, (size_t)zn, z) < 0)
    rc = h5fail(MPX_EIO, h->path, "cannot clean a chunk of");
  free(z);
out:
  free(raw);
  free(buf);
  return rc;
}

/* Clears every element of string dataset d at or past row `from`. */
static int ds_scrub(mpx__h5 *h, ds *d, uint64_t from) {
  if (d->dtype != MPX_STRING || d->id < 0)
    return 0;
  hid_t dcpl = H5Dget_create_plist(d->id);
  hsize_t chunk[2] = {0, 1}, nchunks = 0;
  int deflate = 0, other = 0;
  if (dcpl >= 0 && H5Pget_chunk(dcpl, 2, chunk) >= 1) {
    int nf = H5Pget_nfilters(dcpl);
    for (int i = 0; i < nf; i++) {
      unsigned flags;
      size_t ne = 0;
      H5Z_filter_t f =
          H5Pget_filter2(dcpl, (unsigned)i, &flags, &ne, NULL, 0, NULL, NULL);
      if (f == H5Z_FILTER_DEFLATE && i == 0)
        deflate = 1;
      else
        other = 1;
    }
  }
  if (dcpl >= 0)
    H5Pclose(dcpl);
  if (chunk[0] == 0 || other)
    return mpx__fail(MPX_ECORRUPT,
                     "'%s': dataset '%s' is not laid out as mpx writes it",
                     h->path, d->name);
  hid_t sp = H5Dget_space(d->id); /* HDF5 1.10 refuses H5S_ALL here */
  herr_t nrc = sp < 0 ? -1 : H5Dget_num_chunks(d->id, sp, &nchunks);
  if (sp >= 0)
    H5Sclose(sp);
  if (nrc < 0)
    return h5fail(MPX_EIO, h->path, "cannot count the chunks of");
  /* The kept rows fill the chunks below `from` (verified): the others are
   * at or past it, in order from the killed run's appends, but a flush cut
   * short may have left gaps. */
  hsize_t below = (hsize_t)(from / chunk[0]),
          left = nchunks > below ? nchunks - below : 0;
  hsize_t misses = 0;
  for (hsize_t off = below * chunk[0]; left > 0 && misses < 4096;
       off += chunk[0]) {
    int found = 0;
    int rc = scrub_chunk(h, d, off, chunk[0], from, deflate, &found);
    if (rc)
      return rc;
    if (found)
      left--;
    else
      misses++;
  }
  return 0;
}

/* ---- the file
 * ----------------------------------------------------------------- */

void mpx__h5_preinit(void) {
  H5open();
}

void mpx__h5_handler_save(mpx__h5_handler *saved) {
  H5E_auto2_t func = NULL;
  void *data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &func, &data);
  saved->func = (void (*)(void))func;
  saved->data = data;
}

void mpx__h5_handler_restore(const mpx__h5_handler *saved) {
  H5Eset_auto2(H5E_DEFAULT, (H5E_auto2_t)saved->func, saved->data);
}

static mpx__h5 *h5_new(const char *path, const mpx_job_options *jo) {
  mpx__h5 *h = calloc(1, sizeof *h);
  if (!h)
    return NULL;
  h->path = strdup(path);
  h->jo = *jo;
  h->file = h->grp = H5I_INVALID_HID;
  h->fd = -1;
  h->writable = 1;
  for (int i = 0; i < M_N; i++)
    ds_init(&h->meta[i], meta_names[i],
            i == M_STATUS  ? MPX_INT32
            : i == M_ERROR ? MPX_STRING
                           : MPX_INT64,
            1);
  /* The library reports errors itself, with HDF5's text in the message. */
  H5Eset_auto2(H5E_DEFAULT, on_h5_error, NULL);
  return h;
}

static void get_fd(mpx__h5 *h) {
  int *fdp = NULL;
  if (H5Fget_vfd_handle(h->file, H5P_DEFAULT, (void **)&fdp) >= 0 && fdp)
    h->fd = *fdp;
}

/* Replaces attribute name of the object loc (/ or /mpx) with a scalar of
 * type t from buf. */
static int set_attr(mpx__h5 *h, hid_t loc, const char *name, hid_t t,
                    const void *buf) {
  errno = 0;
  if (H5Aexists(loc, name) > 0)
    H5Adelete(loc, name);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = a < 0 ? -1 : H5Awrite(a, t, buf);
  if (a >= 0)
    H5Aclose(a);
  H5Sclose(sp);
  if (rc < 0)
    return h5fail(MPX_EIO, h->path, "cannot write an attribute of");
  return 0;
}

/* Sets a string attribute of loc (replacing it). */
static int attr_str(mpx__h5 *h, hid_t loc, const char *name,
                    const char *value) {
  hid_t t = str_type();
  int rc = set_attr(h, loc, name, t, &value);
  H5Tclose(t);
  return rc;
}

/* Sets a string attribute of /mpx (replacing it). */
static int grp_attr_str(mpx__h5 *h, const char *name, const char *value) {
  return attr_str(h, h->grp, name, value);
}

/* The string attribute name of loc (malloc'd), or NULL when absent. */
static char *attr_get(hid_t loc, const char *name) {
  if (H5Aexists(loc, name) <= 0)
    return NULL;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0)
    return NULL;
  hid_t ft = H5Aget_type(a), t = str_type();
  char *v = NULL, *out = NULL;
  if (H5Tget_class(ft) == H5T_STRING && H5Tis_variable_str(ft) > 0 &&
      H5Aread(a, t, &v) >= 0 && v) {
    out = strdup(v);
    H5free_memory(v);
  }
  H5Tclose(t);
  H5Tclose(ft);
  H5Aclose(a);
  return out;
}

/* The string attribute name of /mpx (malloc'd), or NULL when absent. */
static char *grp_attr_get(mpx__h5 *h, const char *name) {
  return attr_get(h->grp, name);
}

int mpx__h5_closed(mpx__h5 *h) {
  char *end = attr_get(h->file, "end_time");
  int closed = end && *end;
  free(end);
  return closed;
}

int mpx__h5_create(const char *path, const mpx__h5_meta *meta,
                   const mpx_job_options *jo, mpx__h5 **out) {
  *out = NULL;
  mpx__h5 *h = h5_new(path, jo);
  if (!h)
    return mpx__fail(MPX_ENOMEM, "out of memory");
  hid_t fapl = mpx__undo_fapl(&h->undo, h->jo.sync);
  errno = 0;
  h->file = fapl < 0 ? H5I_INVALID_HID
                     : H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
  if (fapl >= 0)
    H5Pclose(fapl);
  int rc = h->file < 0 ? h5fail(errno == EEXIST ? MPX_EFILE : MPX_EIO, path,
                                "cannot create the output")
                       : mpx__undo_remove(path); /* an older file's */
  if (rc) {
    mpx__h5_close(h);
    return rc;
  }
  get_fd(h);
  errno = 0;
  h->grp = H5Gcreate2(h->file, "mpx", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  rc = h->grp < 0 ? h5fail(MPX_EIO, path, "cannot create /mpx in") : 0;
  for (int i = 0; rc == 0 && i < M_N; i++)
    rc = ds_create(h, h->grp, &h->meta[i]);
  if (rc == 0)
    rc = grp_attr_str(h, "identity", meta->identity ? meta->identity : "");
  char t[64];
  mpx__iso_time(t, sizeof t);
  if (rc == 0)
    rc = mpx__h5_attr_str(h, "task", meta->task);
  if (rc == 0)
    rc = mpx__h5_attr_u64(h, "items", meta->items);
  if (rc == 0)
    rc = mpx__h5_attr_u64(h, "chunksize", meta->chunksize);
  if (rc == 0)
    rc = mpx__h5_attr_u64(h, "window", meta->window);
  if (rc == 0)
    rc = mpx__h5_attr_u64(h, "ranks", (uint64_t)meta->ranks);
  if (rc == 0)
    rc = mpx__h5_attr_str(h, "mpx_version", MPX_VERSION_STRING);
  if (rc == 0)
    rc = mpx__h5_attr_str(h, "host", mpx__hostname());
  if (rc == 0)
    rc = mpx__h5_attr_str(h, "start_time", t);
  if (rc == 0)
    rc = mpx__h5_attr_str(h, "end_time", "");
  if (rc) {
    mpx__h5_close(h);
    unlink(path); /* created above, so ours */
    return rc;
  }
  *out = h;
  return 0;
}

static int cmp_ds(const void *a, const void *b) {
  return strcmp(((const ds *)a)->name, ((const ds *)b)->name);
}

/* The mpx type named name ("float32"), or 0. */
static mpx_dtype dtype_by_name(const char *name) {
  for (int t = MPX_INT8; t <= MPX_STRING; t++)
    if (strcmp(mpx_dtype_name((mpx_dtype)t), name) == 0)
      return (mpx_dtype)t;
  return 0;
}

/* Parses a schema text into h->ds (unopened). Returns 0 or MPX_ECORRUPT. */
static int parse_schema(mpx__h5 *h, const char *text) {
  size_t n = 1;
  for (const char *p = text; *p; p++)
    n += *p == ',';
  char *copy = strdup(text);
  h->ds = calloc(n, sizeof *h->ds);
  if (!copy || !h->ds) {
    free(copy);
    return mpx__fail(MPX_ENOMEM, "out of memory");
  }
  int rc = 0;
  char *save = NULL;
  for (char *e = strtok_r(copy, ",", &save); e && rc == 0;
       e = strtok_r(NULL, ",", &save)) {
    char *c1 = strchr(e, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) {
      rc = -1;
      break;
    }
    *c1 = *c2 = '\0';
    mpx__unescape(e);
    mpx_dtype t = dtype_by_name(c1 + 1);
    char *end;
    unsigned long long w = strtoull(c2 + 1, &end, 10);
    if (!t || *end || w == 0 || strlen(e) > MPX_ARRAY_NAME_MAX ||
        mpx__array_name_problem(e))
      rc = -1;
    else
      ds_init(&h->ds[h->nds++], e, t, w);
  }
  free(copy);
  if (rc || h->nds == 0)
    return mpx__fail(MPX_ECORRUPT, "'%s': the job's schema '%s' is malformed",
                     h->path, text);
  return 0;
}

/* Builds h->schema_text from h->ds. */
static int schema_text(mpx__h5 *h) {
  size_t cap = 1, len = 0;
  char **esc = calloc(h->nds ? h->nds : 1, sizeof *esc);
  int ok = esc != NULL;
  for (size_t i = 0; ok && i < h->nds; i++) {
    esc[i] = mpx__escape(h->ds[i].name);
    ok = esc[i] != NULL;
    if (ok)
      cap += strlen(esc[i]) + 48;
  }
  char *t = ok ? malloc(cap) : NULL;
  for (size_t i = 0; t && i < h->nds; i++)
    len += (size_t)sprintf(t + len, "%s%s:%s:%llu", i ? "," : "", esc[i],
                           mpx_dtype_name(h->ds[i].dtype),
                           (unsigned long long)h->ds[i].width);
  for (size_t i = 0; esc && i < h->nds; i++)
    free(esc[i]);
  free(esc);
  if (!t)
    return mpx__fail(MPX_ENOMEM, "out of memory");
  if (h->nds == 0)
    t[0] = '\0';
  free(h->schema_text);
  h->schema_text = t;
  return 0;
}

/* Removes the datasets a file's schema attribute names (created by a run
 * that committed none of their rows) and the attribute, so that they are
 * made again from the first result. */
static int drop_uncommitted(mpx__h5 *h) {
  mpx__h5 tmp = {0};
  tmp.path = h->path;
  int rc = parse_schema(&tmp, h->file_schema);
  for (size_t i = 0; rc == 0 && i < tmp.nds; i++)
    if (H5Lexists(h->file, tmp.ds[i].name, H5P_DEFAULT) > 0 &&
        H5Ldelete(h->file, tmp.ds[i].name, H5P_DEFAULT) < 0)
      rc = h5fail(MPX_EIO, h->path, "cannot remove an uncommitted dataset of");
  free(tmp.ds);
  if (rc == 0 && H5Adelete(h->grp, "schema") < 0)
    rc = h5fail(MPX_EIO, h->path, "cannot update /mpx in");
  return rc;
}

int mpx__h5_open(const char *path, const mpx_job_options *jo,
                 const char *schema, int writable, mpx__h5 **out) {
  *out = NULL;
  mpx__h5 *h = h5_new(path, jo);
  if (!h)
    return mpx__fail(MPX_ENOMEM, "out of memory");
  h->writable = writable;
  /* Written through the undo journal; read as any reader does. */
  hid_t fapl = writable ? mpx__undo_fapl(&h->undo, h->jo.sync) : H5P_DEFAULT;
  errno = 0;
  h->file = fapl < 0
                ? H5I_INVALID_HID
                : H5Fopen(path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
  if (writable && fapl >= 0)
    H5Pclose(fapl);
  if (h->file < 0) {
    int rc = h5fail(MPX_EIO, path, "cannot open the output");
    mpx__h5_close(h);
    return rc;
  }
  get_fd(h);
  errno = 0;
  h->grp = H5Lexists(h->file, "mpx", H5P_DEFAULT) > 0
               ? H5Gopen2(h->file, "mpx", H5P_DEFAULT)
               : H5I_INVALID_HID;
  int rc = h->grp < 0 ? mpx__fail(MPX_ECORRUPT,
                                  "'%s' has no /mpx group: it is not the "
                                  "output of an mpx job",
                                  path)
                      : 0;
  for (int i = 0; rc == 0 && i < M_N; i++) {
    ds d;
    if ((rc = ds_open(h, h->grp, meta_names[i], &d)) != 0)
      rc = MPX_ECORRUPT; /* the file opens: its datasets are wrong */
    if (rc == 0 && (d.dtype != h->meta[i].dtype || d.width != 1)) {
      ds_close(&d);
      rc = mpx__fail(MPX_ECORRUPT, "'%s': /mpx/%s has the wrong type", path,
                     meta_names[i]);
    }
    if (rc == 0) {
      ds_close(&h->meta[i]);
      h->meta[i] = d;
    }
  }
  if (rc == 0) {
    h->file_schema = grp_attr_get(h, "schema");
    h->file_id = grp_attr_get(h, "identity");
  }
  if (rc == 0 && schema && schema[0]) {
    rc = parse_schema(h, schema);
    for (size_t i = 0; rc == 0 && i < h->nds; i++) {
      ds *want = &h->ds[i];
      if (H5Lexists(h->file, want->name, H5P_DEFAULT) <= 0) {
        rc = mpx__fail(MPX_ECORRUPT,
                       "'%s': the job's dataset '%s' is missing from the "
                       "file",
                       path, want->name);
        break;
      }
      ds d;
      if ((rc = ds_open(h, h->file, want->name, &d)) != 0) {
        rc = MPX_ECORRUPT; /* the file opens: its datasets are wrong */
        break;
      }
      if (d.dtype != want->dtype || d.width != want->width) {
        rc = mpx__fail(MPX_ECORRUPT,
                       "'%s': the job's dataset '%s' is %s with %llu "
                       "columns, its record says %s with %llu",
                       path, want->name, mpx_dtype_name(d.dtype),
                       (unsigned long long)d.width, mpx_dtype_name(want->dtype),
                       (unsigned long long)want->width);
        ds_close(&d);
        break;
      }
      *want = d;
    }
    if (rc == 0 && (rc = schema_text(h)) == 0)
      h->schema = 1;
  } else if (rc == 0 && h->file_schema && writable) {
    rc = drop_uncommitted(h);
  }
  if (rc) {
    mpx__h5_close(h);
    return rc;
  }
  *out = h;
  return 0;
}

const char *mpx__h5_identity(const mpx__h5 *h) {
  return h->file_id;
}

const char *mpx__h5_file_schema(const mpx__h5 *h) {
  return h->file_schema;
}

uint64_t mpx__h5_file_items(const mpx__h5 *h) {
  return h->meta[M_STATUS].file_rows;
}

const char *mpx__h5_schema(const mpx__h5 *h) {
  return h->schema ? h->schema_text : NULL;
}

/* Combines the CRCs of one commit: datasets (only when rows were added),
 * then the /mpx datasets. */
static uint32_t combine(const uint32_t *sums, size_t nds, int rows_added) {
  uint32_t c = 0;
  for (size_t i = 0; rows_added && i < nds; i++)
    c = mpx__crc32(c, &sums[i], 4);
  for (int i = 0; i < M_N; i++)
    c = mpx__crc32(c, &sums[nds + (size_t)i], 4);
  return c;
}

int mpx__h5_verify(mpx__h5 *h, const mpx__rec_commit *c, size_t n, size_t *good,
                   char *why, size_t whycap) {
  *good = 0;
  why[0] = '\0';
  uint64_t pi = 0, pr = 0;
  for (size_t k = 0; k < n; k++) {
    const mpx__rec_commit *ck = &c[k];
    if (ck->items < pi || ck->rows < pr) {
      snprintf(why, whycap, "commit %zu goes backwards", k + 1);
      break;
    }
    if (ck->rows > pr && !h->schema) {
      snprintf(why, whycap,
               "commit %zu claims rows but the record names no datasets",
               k + 1);
      break;
    }
    if (ck->nsums != h->nds + M_N) {
      snprintf(why, whycap,
               "commit %zu has %zu checksums for %zu datasets (with /mpx)",
               k + 1, ck->nsums, h->nds + (size_t)M_N);
      break;
    }
    int ok = 1;
    for (size_t i = 0; ok && i < h->nds + M_N; i++) {
      ds *d = i < h->nds ? &h->ds[i] : &h->meta[i - h->nds];
      int meta = i >= h->nds;
      uint64_t r0 = meta ? pi : pr, r1 = meta ? ck->items : ck->rows;
      uint32_t crc = 0;
      if (r1 > d->file_rows) {
        snprintf(why, whycap,
                 "dataset '%s%s' holds %llu rows, commit %zu claims %llu",
                 meta ? "mpx/" : "", d->name, (unsigned long long)d->file_rows,
                 k + 1, (unsigned long long)r1);
        ok = 0;
      } else if (r1 > r0 && ds_read_crc(h, d, r0, r1, &crc) != 0) {
        snprintf(why, whycap, "dataset '%s%s' cannot be read: %s",
                 meta ? "mpx/" : "", d->name, mpx_last_error());
        ok = 0;
      } else if (crc != ck->sums[i]) {
        snprintf(why, whycap,
                 "dataset '%s%s' rows %llu-%llu differ from what commit %zu "
                 "wrote (CRC %08x, recorded %08x)",
                 meta ? "mpx/" : "", d->name, (unsigned long long)r0,
                 (unsigned long long)r1 - 1, k + 1, (unsigned)crc,
                 (unsigned)ck->sums[i]);
        ok = 0;
      }
    }
    if (!ok)
      break;
    pi = ck->items;
    pr = ck->rows;
    *good = k + 1;
  }
  return 0;
}

int mpx__h5_beyond(const mpx__h5 *h, uint64_t items, uint64_t rows, char *why,
                   size_t whycap) {
  for (size_t i = 0; i < h->nds + M_N; i++) {
    const ds *d = i < h->nds ? &h->ds[i] : &h->meta[i - h->nds];
    uint64_t want = i < h->nds ? rows : items;
    if (d->file_rows > want) {
      snprintf(why, whycap, "dataset '%s%s' holds %llu rows, %llu committed",
               i < h->nds ? "" : "mpx/", d->name,
               (unsigned long long)d->file_rows, (unsigned long long)want);
      return 1;
    }
  }
  return 0;
}

int mpx__h5_scan_failed(mpx__h5 *h, uint64_t items, uint64_t *count,
                        uint64_t *first) {
  *count = 0;
  *first = UINT64_MAX;
  if (items == 0 || items > h->meta[M_STATUS].file_rows)
    return 0;
  int32_t *st = malloc((size_t)items * sizeof *st);
  if (!st)
    return mpx__fail(MPX_ENOMEM, "out of memory reading %llu input statuses",
                     (unsigned long long)items);
  hid_t fsp, msp;
  ds_select(&h->meta[M_STATUS], 0, items, &fsp, &msp);
  int rc = 0;
  if (H5Dread(h->meta[M_STATUS].id, h->meta[M_STATUS].mtype, msp, fsp,
              H5P_DEFAULT, st) >= 0) {
    for (uint64_t i = items; i-- > 0;)
      if (st[i] != 0) {
        ++*count;
        *first = i;
      }
  } else {
    rc = h5fail(MPX_EIO, h->path, "reading /mpx/item_status");
  }
  H5Sclose(fsp);
  H5Sclose(msp);
  free(st);
  return rc;
}

uint64_t mpx__h5_count_failed(mpx__h5 *h, uint64_t items) {
  uint64_t failed = 0, first;
  mpx__h5_scan_failed(h, items, &failed, &first);
  return failed;
}

int mpx__h5_cut(mpx__h5 *h, uint64_t items, uint64_t rows) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < h->nds; i++)
    if (h->ds[i].file_rows != rows)
      rc = ds_truncate(h, &h->ds[i], rows);
  for (int i = 0; rc == 0 && i < M_N; i++)
    if (h->meta[i].file_rows != items)
      rc = ds_truncate(h, &h->meta[i], items);
  /* What a killed run left past the kept rows (see ds_scrub). */
  for (size_t i = 0; rc == 0 && i < h->nds; i++)
    rc = ds_scrub(h, &h->ds[i], rows);
  for (int i = 0; rc == 0 && i < M_N; i++)
    rc = ds_scrub(h, &h->meta[i], items);
  h->items = items;
  h->rows = h->commit_rows = rows;
  h->failed = rc == 0 ? mpx__h5_count_failed(h, items) : 0;
  return rc;
}

/* Creates the result datasets from the first successful input's arrays. */
static int make_schema(mpx__h5 *h, const mpx_array *a, size_t n) {
  h->ds = calloc(n, sizeof *h->ds);
  if (!h->ds)
    return mpx__fail(MPX_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++)
    ds_init(&h->ds[i], a[i].name, a[i].dtype, a[i].width);
  qsort(h->ds, n, sizeof *h->ds, cmp_ds);
  /* The file says which datasets are the job's before they exist, so that
   * a resume after a kill here finds them by name and nothing else. */
  h->nds = n;
  int src = schema_text(h);
  h->nds = 0;
  if (src || (src = grp_attr_str(h, "schema", h->schema_text)) != 0)
    return src;
  for (size_t i = 0; i < n; i++) {
    int rc = ds_create(h, h->file, &h->ds[i]);
    if (rc)
      return rc;
    h->nds++;
  }
  h->schema = 1;
  return 0;
}

static int stage_meta(mpx__h5 *h, int32_t status, int64_t rows,
                      const char *err) {
  int64_t off = (int64_t)h->rows;
  int rc = ds_stage(h, &h->meta[M_STATUS], &status, 1, 4);
  if (rc == 0)
    rc = ds_stage(h, &h->meta[M_ROWS], &rows, 1, 8);
  if (rc == 0)
    rc = ds_stage(h, &h->meta[M_OFFSET], &off, 1, 8);
  if (rc == 0)
    rc = ds_stage(h, &h->meta[M_ERROR], err, 1, strlen(err) + 1);
  return rc;
}

/* Reserves disk blocks for the next bytes HDF5 will write, so that a full
 * disk is found here, before HDF5 writes anything: HDF5 1.10 cannot close
 * a file after a failed write (and crashes retrying at MPI_Finalize), while
 * a refused reservation leaves the file as the last commit left it. */
static int reserve(mpx__h5 *h, size_t bytes) {
  haddr_t eoa = 0;
  if (h->fd < 0 || bytes == 0 || H5Fget_eoa(h->file, &eoa) < 0)
    return 0;
  /* HDF5 writes at and below its end of allocation (chunks may leave holes
   * there): reserve everything up to it plus the new bytes, a chunk of
   * each dataset, and room for metadata. */
  off_t need = (off_t)eoa + (off_t)(bytes + bytes / 8) + ((off_t)1 << 20);
  for (size_t i = 0; i < h->nds; i++)
    need += (off_t)(2 * h->ds[i].chunkbytes);
  /* A string row costs more on disk than its staged bytes: a 16-byte heap
   * reference in the dataset and a global heap object (header, padding). */
  for (size_t i = 0; i < h->nds + M_N; i++) {
    const ds *d = i < h->nds ? &h->ds[i] : &h->meta[i - h->nds];
    if (d->dtype == MPX_STRING)
      need += (off_t)(48 * d->staged_rows);
  }
  /* The undo journal of the commit (undo.h) holds what the flush
   * rewrites: at most the last chunk of each dataset, and metadata. */
  uint64_t journal = (uint64_t)1 << 20;
  for (size_t i = 0; i < h->nds + M_N; i++)
    journal +=
        i < h->nds ? h->ds[i].chunkbytes : h->meta[i - h->nds].chunkbytes;
  if ((fallocate(h->fd, FALLOC_FL_KEEP_SIZE, 0, need) != 0 &&
       (errno == ENOSPC || errno == EDQUOT || errno == EFBIG)) ||
      mpx__undo_reserve(h->undo, journal) != 0)
    return mpx__fail(MPX_EIO,
                     "cannot write %zu more bytes to '%s': %s (what was "
                     "committed before stays in the file and its record)",
                     bytes, h->path, strerror(errno));
  return 0; /* file systems without fallocate: carry on */
}

/* With sync on, starts the disk writing what was written so far (without
 * waiting for it) once a few MiB are dirty, so that a commit's fdatasync
 * finds most of the data already on its way instead of all of it. */
static void start_writeback(mpx__h5 *h, size_t bytes) {
  h->unsynced += bytes;
  if (!h->jo.sync || h->fd < 0 || h->unsynced < STAGE_MAX)
    return;
  h->unsynced = 0;
#ifdef SYNC_FILE_RANGE_WRITE
  sync_file_range(h->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
}

/* Writes every staged block. */
static int flush_all(mpx__h5 *h) {
  size_t bytes = h->staged;
  int rc = reserve(h, bytes);
  if (rc)
    return rc;
  for (size_t i = 0; rc == 0 && i < h->nds; i++)
    rc = ds_flush(h, &h->ds[i]);
  for (int i = 0; rc == 0 && i < M_N; i++)
    rc = ds_flush(h, &h->meta[i]);
  if (rc == 0)
    start_writeback(h, bytes);
  return rc;
}

/* Makes room for n arrays in the parse space and the dataset-to-array
 * table (which keep their contents). Returns 0 or -1 when out of memory. */
static int grow_arrays(mpx__h5 *h, size_t n) {
  if (n <= h->arrays_cap)
    return 0;
  mpx_array *na = realloc(h->arrays, n * sizeof *na);
  if (na)
    h->arrays = na;
  const mpx_array **nb = na ? realloc(h->by_ds, n * sizeof *nb) : NULL;
  if (nb)
    h->by_ds = nb;
  if (!na || !nb)
    return -1;
  h->arrays_cap = n;
  return 0;
}

int mpx__h5_add(mpx__h5 *h, const mpx_map_item *it) {
  if (it->status != 0) {
    int rc = stage_meta(h, it->status, 0, it->error ? it->error : "");
    if (rc == 0) {
      h->items++;
      h->failed++;
    }
    return rc;
  }
  mpx_array stack[PARSE_ARRAYS], *a = stack;
  size_t n = 0;
  int prc = mpx_arrays_parse(it->data, it->len, a, PARSE_ARRAYS, &n);
  if (prc == MPX_E2BIG) {
    /* Any number of arrays: parse again into room for all of them. */
    if (grow_arrays(h, n) != 0)
      return mpx__fail(MPX_ENOMEM, "out of memory for %zu arrays", n);
    a = h->arrays;
    prc = mpx_arrays_parse(it->data, it->len, a, n, &n);
  }
  if (prc != 0 || n == 0)
    return mpx__fail(MPX_ESCHEMA, "input %llu: %s",
                     (unsigned long long)it->index,
                     prc ? mpx_last_error()
                         : "the result holds no arrays (tasks of "
                           "a job return mpx_task_array)");
  for (size_t i = 0; i < n; i++) {
    const char *why = mpx__array_name_problem(a[i].name);
    if (why)
      return mpx__fail(MPX_ESCHEMA, "input %llu: the array name '%s' %s",
                       (unsigned long long)it->index, a[i].name, why);
    for (size_t k = 0; k < i; k++)
      if (strcmp(a[k].name, a[i].name) == 0)
        return mpx__fail(MPX_ESCHEMA, "input %llu: two arrays named '%s'",
                         (unsigned long long)it->index, a[i].name);
  }
  for (size_t i = 1; i < n; i++)
    if (a[i].rows != a[0].rows)
      return mpx__fail(MPX_ESCHEMA,
                       "input %llu: array '%s' has %llu rows but '%s' has "
                       "%llu; the arrays of one input must have equal rows",
                       (unsigned long long)it->index, a[i].name,
                       (unsigned long long)a[i].rows, a[0].name,
                       (unsigned long long)a[0].rows);
  if (!h->schema) {
    int rc = make_schema(h, a, n);
    if (rc)
      return rc;
  }
  /* Match every array against the datasets, before staging anything. */
  int parsed_here = a == h->arrays;
  if (grow_arrays(h, h->nds) != 0)
    return mpx__fail(MPX_ENOMEM, "out of memory for %zu arrays", h->nds);
  if (parsed_here)
    a = h->arrays; /* moved by the growth */
  const mpx_array **by_ds = h->by_ds;
  if (n != h->nds)
    return mpx__fail(MPX_ESCHEMA,
                     "input %llu: the result holds %zu arrays, the output "
                     "%zu datasets (first: '%s')",
                     (unsigned long long)it->index, n, h->nds,
                     h->nds ? h->ds[0].name : "");
  for (size_t d = 0; d < h->nds; d++) {
    by_ds[d] = NULL;
    for (size_t i = 0; i < n; i++)
      if (strcmp(a[i].name, h->ds[d].name) == 0)
        by_ds[d] = &a[i];
    const ds *D = &h->ds[d];
    const mpx_array *A = by_ds[d];
    if (!A)
      return mpx__fail(MPX_ESCHEMA, "input %llu: no array '%s' in the result",
                       (unsigned long long)it->index, D->name);
    if (A->dtype != D->dtype || A->width != D->width)
      return mpx__fail(MPX_ESCHEMA,
                       "input %llu: array '%s' is %s with %llu columns, the "
                       "output's is %s with %llu",
                       (unsigned long long)it->index, D->name,
                       mpx_dtype_name(A->dtype), (unsigned long long)A->width,
                       mpx_dtype_name(D->dtype), (unsigned long long)D->width);
  }
  int rc = 0;
  for (size_t d = 0; rc == 0 && d < h->nds; d++) {
    ds *D = &h->ds[d];
    const mpx_array *A = by_ds[d];
    if (A->nbytes >= STAGE_MAX && D->dtype != MPX_STRING) {
      /* A big array goes to the file straight from the result. */
      if ((rc = ds_flush(h, D)) == 0 &&
          (rc = reserve(h, (size_t)A->nbytes)) == 0)
        rc = ds_write(h, D, A->data, A->rows);
      if (rc == 0) {
        D->crc = mpx__crc32(D->crc, A->data, (size_t)A->nbytes);
        start_writeback(h, (size_t)A->nbytes);
      }
    } else {
      rc = ds_stage(h, D, A->data, A->rows, (size_t)A->nbytes);
    }
  }
  if (rc == 0)
    rc = stage_meta(h, 0, (int64_t)a[0].rows, "");
  if (rc)
    return rc;
  h->items++;
  h->rows += a[0].rows;
  if (h->staged >= STAGE_MAX)
    return flush_all(h);
  return 0;
}

int mpx__h5_commit(mpx__h5 *h, uint64_t *items, uint64_t *rows, uint32_t *crc,
                   const uint32_t **sums_out, size_t *nsums) {
  int rc = flush_all(h);
  if (rc)
    return rc;
  uint32_t *sums = realloc(h->sums, (h->nds + M_N) * sizeof *sums);
  if (!sums)
    return mpx__fail(MPX_ENOMEM, "out of memory");
  h->sums = sums;
  for (size_t i = 0; i < h->nds + M_N; i++) {
    ds *d = i < h->nds ? &h->ds[i] : &h->meta[i - h->nds];
    sums[i] = d->crc;
    d->crc = 0;
  }
  *crc = combine(sums, h->nds, h->rows > h->commit_rows);
  *sums_out = sums;
  *nsums = h->nds + M_N;
  if ((rc = mpx__h5_flush(h)) != 0)
    return rc;
  if (h->jo.sync && h->fd >= 0 && fdatasync(h->fd) != 0)
    return mpx__fail(MPX_EIO, "cannot sync '%s': %s", h->path, strerror(errno));
  /* The file as it is now is what a kill from here on returns to. */
  if ((rc = mpx__undo_commit(h->undo)) != 0)
    return rc;
  h->unsynced = 0;
  h->commit_rows = h->rows;
  *items = h->items;
  *rows = h->rows;
  return mpx__h5_check_path(h);
}

int mpx__h5_check_path(const mpx__h5 *h) {
  if (h->fd < 0)
    return 0;
  return mpx__same_file(h->path, h->fd, "output");
}

int mpx__h5_checkpoint(mpx__h5 *h) {
  int rc = mpx__h5_flush(h);
  if (rc == 0 && h->jo.sync && h->fd >= 0 && fdatasync(h->fd) != 0)
    rc = mpx__fail(MPX_EIO, "cannot sync '%s': %s", h->path, strerror(errno));
  return rc ? rc : mpx__undo_commit(h->undo);
}

int mpx__h5_flush(mpx__h5 *h) {
  errno = 0;
  if (H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0)
    return h5fail(MPX_EIO, h->path, "cannot flush");
  return 0;
}

int mpx__h5_add_run(mpx__h5 *h, const char *text) {
  ds d;
  int rc = 0;
  errno = 0;
  if (H5Lexists(h->grp, "runs", H5P_DEFAULT) > 0) {
    rc = ds_open(h, h->grp, "runs", &d);
    if (rc == 0 && d.dtype != MPX_STRING) {
      ds_close(&d);
      return mpx__fail(MPX_ECORRUPT, "'%s': /mpx/runs has the wrong type",
                       h->path);
    }
  } else {
    ds_init(&d, "runs", MPX_STRING, 1);
    rc = ds_create(h, h->grp, &d);
  }
  if (rc == 0 && h->writable)
    rc = ds_scrub(h, &d, d.file_rows); /* a killed run's line past the end */
  if (rc == 0) {
    const char *p = text;
    rc = ds_write(h, &d, &p, 1);
  }
  ds_close(&d);
  return rc;
}

void mpx__h5_counts(const mpx__h5 *h, uint64_t *items, uint64_t *rows,
                    uint64_t *failed) {
  *items = h->items;
  *rows = h->rows;
  *failed = h->failed;
}

int mpx__h5_attr_str(mpx__h5 *h, const char *name, const char *value) {
  return attr_str(h, h->file, name, value);
}

int mpx__h5_attr_u64(mpx__h5 *h, const char *name, uint64_t value) {
  return set_attr(h, h->file, name, H5T_NATIVE_UINT64, &value);
}

int mpx__h5_close(mpx__h5 *h) {
  if (!h)
    return 0;
  int rc = 0;
  if (h->file >= 0 && h->writable) {
    /* What was set since the last commit (the closing attributes). */
    rc = mpx__h5_flush(h);
    if (rc == 0 && h->jo.sync && h->fd >= 0 && fdatasync(h->fd) != 0)
      rc = mpx__fail(MPX_EIO, "cannot sync '%s': %s", h->path, strerror(errno));
    if (rc == 0)
      rc = mpx__h5_check_path(h);
  }
  for (size_t i = 0; i < h->nds; i++)
    ds_close(&h->ds[i]);
  for (int i = 0; i < M_N; i++)
    ds_close(&h->meta[i]);
  if (h->grp >= 0)
    H5Gclose(h->grp);
  if (h->file >= 0) {
    errno = 0;
    if (H5Fclose(h->file) < 0 && rc == 0)
      rc = h5fail(MPX_EIO, h->path, "cannot close");
  }
  free(h->ds);
  free(h->schema_text);
  free(h->file_schema);
  free(h->file_id);
  free(h->sums);
  free(h->arrays);
  free(h->by_ds);
  free(h->path);
  free(h);
  return rc;
}
