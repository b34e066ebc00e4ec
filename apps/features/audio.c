#define _POSIX_C_SOURCE 200809L
/*
 * audio.c -- WAV decoding and the 64 spectral features of mpx-features
 * (see audio.h for the exact specification both follow).
 *
 * The reader loads the whole file into memory and walks its chunks there,
 * which keeps every bounds check in one place; the files it is meant for
 * are short clips. The feature code keeps one FFTW plan, its aligned
 * buffers, the window and the mel filter bank of the last sample rate in
 * static storage, created on first use: cheap per call, but one thread per
 * process only.
 */
#include "audio.h"

#include <errno.h>
#include <fcntl.h>
#include <fftw3.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(sizeof(float) == 4 && sizeof(double) == 8,
               "IEEE float32/float64 expected");

#define NBINS (MPXF_FRAME / 2 + 1)
#define NPOINTS (MPXF_NMEL + 2)
#define LOG_FLOOR 1e-10

/* Formats a message into err[errlen] (if any) and returns -1. */
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* Little-endian unsigned 16- and 32-bit loads. */
static unsigned le16(const unsigned char *p) {
  return (unsigned)p[0] | (unsigned)p[1] << 8;
}
static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

/* The kind of a file that is not a regular one, for messages. */
static const char *file_kind(mode_t mode) {
  if (S_ISDIR(mode))
    return "directory";
  if (S_ISFIFO(mode))
    return "FIFO";
  if (S_ISCHR(mode))
    return "character device";
  if (S_ISBLK(mode))
    return "block device";
  if (S_ISSOCK(mode))
    return "socket";
  return "unknown file type";
}

/* Reads the whole file at path into a malloc'ed buffer; 0 or -1 with err.
 * The file is opened without blocking and must be a regular file: a FIFO
 * (or a device) named like a WAV file would otherwise hold the reader
 * forever, waiting for a writer or for data. */
static int slurp(const char *path, unsigned char **buf, size_t *len, char *err,
                 size_t errlen) {
  *buf = NULL;
  *len = 0;
  if (!path)
    return fail(err, errlen, "cannot open: no path");
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return fail(err, errlen, "cannot open: %s", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return fail(err, errlen, "cannot stat: %s", strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return fail(err, errlen, "not a regular file (%s)", file_kind(st.st_mode));
  }
  /* Regular files ignore O_NONBLOCK, but leave no surprise for later reads. */
  int fl = fcntl(fd, F_GETFL);
  if (fl != -1)
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 65536;
  size_t used = 0;
  unsigned char *b = malloc(cap);
  for (;;) {
    if (b && used == cap) {
      unsigned char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(b, cap * 2);
      if (!nb)
        free(b);
      b = nb;
      cap *= 2;
    }
    if (!b) {
      close(fd);
      return fail(err, errlen, "out of memory reading the file");
    }
    ssize_t r = read(fd, b + used, cap - used);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int e = errno;
      free(b);
      close(fd);
      return fail(err, errlen, "cannot read: %s", strerror(e));
    }
    if (r == 0)
      break;
    used += (size_t)r;
  }
  close(fd);
  *buf = b;
  *len = used;
  return 0;
}

/* The decoded "fmt " chunk. */
typedef struct wav_fmt {
  unsigned tag;      /* 1 PCM or 3 float, after resolving 0xFFFE */
  unsigned channels; /* >= 1 */
  uint32_t rate;     /* Hz */
  unsigned bytes;    /* bytes per sample of one channel */
} wav_fmt;

/* Parses and validates a fmt chunk body of len bytes; 0 or -1 with err. */
static int parse_fmt(const unsigned char *p, size_t len, wav_fmt *f, char *err,
                     size_t errlen) {
  if (len < 16)
    return fail(err, errlen, "truncated fmt chunk (%zu bytes, need 16)", len);
  unsigned tag = le16(p);
  f->channels = le16(p + 2);
  f->rate = le32(p + 4);
  unsigned align = le16(p + 12);
  unsigned bits = le16(p + 14);
  if (tag == 0xFFFE) {
    if (len < 40 || le16(p + 16) < 22)
      return fail(err, errlen,
                  "truncated fmt chunk (extensible format "
                  "without its 22-byte extension)");
    unsigned sub = le16(p + 24);
    if (sub != 1 && sub != 3)
      return fail(err, errlen,
                  "unsupported extensible sub-format %u (only PCM and float)",
                  sub);
    tag = sub;
  } else if (tag != 1 && tag != 3) {
    return fail(err, errlen, "unsupported format %u (only PCM and float)", tag);
  }
  f->tag = tag;
  if (f->channels == 0)
    return fail(err, errlen, "0 channels");
  if (f->rate == 0 || f->rate > INT_MAX)
    return fail(err, errlen, "invalid sample rate %lu", (unsigned long)f->rate);
  if (tag == 1 && (bits < 1 || bits > 32))
    return fail(err, errlen, "unsupported PCM sample width %u bits", bits);
  if (tag == 3 && bits != 32 && bits != 64)
    return fail(err, errlen, "unsupported float sample width %u bits", bits);
  f->bytes = (bits + 7) / 8;
  if (align != f->channels * f->bytes)
    return fail(err, errlen,
                "block align %u does not match %u channel(s) of %u bytes",
                align, f->channels, f->bytes);
  return 0;
}

/* Decodes one sample of the given format at p to a double. */
static double decode_one(const unsigned char *p, const wav_fmt *f) {
  if (f->tag == 3) {
    if (f->bytes == 4) {
      uint32_t u = le32(p);
      float v;
      memcpy(&v, &u, sizeof v);
      return v;
    }
    uint64_t u = (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
  }
  switch (f->bytes) {
  case 1:
    return ((double)p[0] - 128.0) / 128.0;
  case 2: {
    long v = (long)le16(p);
    return (double)(v >= 32768 ? v - 65536 : v) / 32768.0;
  }
  case 3: {
    long v = (long)p[0] | (long)p[1] << 8 | (long)p[2] << 16;
    return (double)(v >= 8388608 ? v - 16777216 : v) / 8388608.0;
  }
  default: {
    int64_t v = (int64_t)le32(p);
    return (double)(v >= 2147483648LL ? v - 4294967296LL : v) / 2147483648.0;
  }
  }
}

/* Reads a RIFF/WAVE file into mono float samples (see audio.h). */
int mpxf_wav_read(const char *path, float **samples, size_t *n, int *rate,
                  char *err, size_t errlen) {
  *samples = NULL;
  *n = 0;
  *rate = 0;
  unsigned char *buf;
  size_t len;
  if (slurp(path, &buf, &len, err, errlen) != 0)
    return -1;
  int rc = -1;
  if (len == 0) {
    fail(err, errlen, "empty file");
    goto out;
  }
  if (len < 12) {
    if (memcmp(buf, "RIFF", len < 4 ? len : 4) == 0)
      fail(err, errlen, "truncated RIFF header (%zu bytes)", len);
    else
      fail(err, errlen, "not a RIFF/WAVE file");
    goto out;
  }
  if (memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0) {
    fail(err, errlen, "not a RIFF/WAVE file");
    goto out;
  }

  wav_fmt fmt = {0, 0, 0, 0};
  int have_fmt = 0, have_data = 0;
  size_t data_off = 0, data_len = 0;
  for (size_t pos = 12; pos + 8 <= len;) {
    const unsigned char *id = buf + pos;
    size_t size = le32(buf + pos + 4);
    size_t body = pos + 8, avail = len - body;
    size_t take = size < avail ? size : avail;
    if (!have_fmt && memcmp(id, "fmt ", 4) == 0) {
      if (parse_fmt(buf + body, take, &fmt, err, errlen) != 0)
        goto out;
      have_fmt = 1;
    } else if (!have_data && memcmp(id, "data", 4) == 0) {
      data_off = body;
      data_len = take; /* clamped to what the file holds */
      have_data = 1;
    }
    if (size >= avail)
      break; /* this chunk reaches (or claims to pass) the end of file */
    pos = body + size + (size & 1);
  }
  if (!have_fmt) {
    fail(err, errlen,
         have_data ? "no fmt chunk before the end of file" : "no fmt chunk");
    goto out;
  }
  if (!have_data) {
    fail(err, errlen, "no data chunk");
    goto out;
  }

  size_t frame = (size_t)fmt.channels * fmt.bytes;
  size_t count = data_len / frame;
  if (count == 0) {
    fail(err, errlen, "0 samples");
    goto out;
  }
  float *x = malloc(count * sizeof *x);
  if (!x) {
    fail(err, errlen, "out of memory for %zu samples", count);
    goto out;
  }
  const unsigned char *p = buf + data_off;
  for (size_t i = 0; i < count; i++) {
    double sum = 0.0;
    for (unsigned c = 0; c < fmt.channels; c++, p += fmt.bytes)
      sum += decode_one(p, &fmt);
    x[i] = (float)(sum / fmt.channels);
  }
  *samples = x;
  *n = count;
  *rate = (int)fmt.rate;
  rc = 0;
out:
  free(buf);
  return rc;
}

/* Process-wide FFT state: the plan, its buffers, the window and the mel
 * filter bank of the sample rate bank_rate (0: not computed yet). */
static double *fft_in;
static fftw_complex *fft_out;
static fftw_plan fft_plan;
static double window[MPXF_FRAME];
static double bank[MPXF_NMEL][NBINS];
static int bank_rate;

/* Creates the plan, buffers and window on first use; 0 or -1. */
static int fft_setup(void) {
  if (fft_plan)
    return 0;
  fft_in = fftw_malloc(sizeof(double) * MPXF_FRAME);
  fft_out = fftw_malloc(sizeof(fftw_complex) * NBINS);
  if (fft_in && fft_out)
    fft_plan = fftw_plan_dft_r2c_1d(MPXF_FRAME, fft_in, fft_out, FFTW_ESTIMATE);
  if (!fft_plan) {
    mpxf_cleanup();
    return -1;
  }
  const double pi = 3.14159265358979323846;
  for (int i = 0; i < MPXF_FRAME; i++)
    window[i] = 0.5 - 0.5 * cos(2.0 * pi * i / MPXF_FRAME);
  return 0;
}

/* HTK mel scale and its inverse. */
static double hz_to_mel(double f) {
  return 2595.0 * log10(1.0 + f / 700.0);
}
static double mel_to_hz(double m) {
  return 700.0 * (pow(10.0, m / 2595.0) - 1.0);
}

/* Fills bank[][] with the triangular filters for sample rate rate. */
static void bank_setup(int rate) {
  if (bank_rate == rate)
    return;
  double lo = hz_to_mel(0.0), hi = hz_to_mel(rate / 2.0);
  double h[NPOINTS];
  for (int j = 0; j < NPOINTS; j++)
    h[j] = mel_to_hz(lo + j * (hi - lo) / (NPOINTS - 1));
  for (int k = 0; k < MPXF_NMEL; k++) {
    for (int b = 0; b < NBINS; b++) {
      double f = (double)b * rate / MPXF_FRAME;
      double up = (f - h[k]) / (h[k + 1] - h[k]);
      double down = (h[k + 2] - f) / (h[k + 2] - h[k + 1]);
      double w = up < down ? up : down;
      bank[k][b] = w > 0.0 ? w : 0.0;
    }
  }
  bank_rate = rate;
}

/* Computes the 64 features of x[0..n-1] (see audio.h). */
int mpxf_features(const float *x, size_t n, int rate, float out[MPXF_NFEAT],
                  char *err, size_t errlen) {
  if (!x || n == 0)
    return fail(err, errlen, "0 samples");
  if (rate <= 0)
    return fail(err, errlen, "invalid sample rate %d", rate);
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i]))
      return fail(err, errlen, "sample %zu is not finite", i);
  if (fft_setup() != 0)
    return fail(err, errlen, "cannot create the FFTW plan");
  bank_setup(rate);

  size_t nframes = n < MPXF_FRAME ? 1 : 1 + (n - MPXF_FRAME) / MPXF_HOP;
  double *logs = malloc(nframes * MPXF_NMEL * sizeof *logs);
  if (!logs)
    return fail(err, errlen, "out of memory for %zu frames", nframes);
  for (size_t t = 0; t < nframes; t++) {
    const float *fr = x + t * MPXF_HOP;
    size_t have = n - t * MPXF_HOP < MPXF_FRAME ? n - t * MPXF_HOP : MPXF_FRAME;
    for (size_t i = 0; i < MPXF_FRAME; i++)
      fft_in[i] = i < have ? window[i] * (double)fr[i] : 0.0;
    fftw_execute(fft_plan);
    double power[NBINS];
    for (int b = 0; b < NBINS; b++)
      power[b] = fft_out[b][0] * fft_out[b][0] + fft_out[b][1] * fft_out[b][1];
    for (int k = 0; k < MPXF_NMEL; k++) {
      double e = 0.0;
      for (int b = 0; b < NBINS; b++)
        e += bank[k][b] * power[b];
      logs[t * MPXF_NMEL + k] = log10(e + LOG_FLOOR);
    }
  }
  for (int k = 0; k < MPXF_NMEL; k++) {
    double sum = 0.0;
    for (size_t t = 0; t < nframes; t++)
      sum += logs[t * MPXF_NMEL + k];
    double mean = sum / (double)nframes, ss = 0.0;
    for (size_t t = 0; t < nframes; t++) {
      double d = logs[t * MPXF_NMEL + k] - mean;
      ss += d * d;
    }
    out[k] = (float)mean;
    out[MPXF_NMEL + k] = (float)sqrt(ss / (double)nframes);
  }
  free(logs);
  return 0;
}

/* Reads the file at path and computes its features. */
int mpxf_file_features(const char *path, float out[MPXF_NFEAT], char *err,
                       size_t errlen) {
  float *x;
  size_t n;
  int rate;
  if (mpxf_wav_read(path, &x, &n, &rate, err, errlen) != 0)
    return -1;
  int rc = mpxf_features(x, n, rate, out, err, errlen);
  free(x);
  return rc;
}

/* Parses the leading "<digits>_" of the basename of path. */
int32_t mpxf_target_from_path(const char *path) {
  if (!path)
    return -1;
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  int64_t v = 0;
  const char *p = base;
  for (; *p >= '0' && *p <= '9'; p++) {
    v = v * 10 + (*p - '0');
    if (v > INT32_MAX)
      return -1;
  }
  if (p == base || *p != '_')
    return -1;
  return (int32_t)v;
}

/* Destroys the FFTW plan and frees its buffers. */
void mpxf_cleanup(void) {
  if (fft_plan)
    fftw_destroy_plan(fft_plan);
  fftw_free(fft_in);
  fftw_free(fft_out);
  fft_plan = NULL;
  fft_in = NULL;
  fft_out = NULL;
}
