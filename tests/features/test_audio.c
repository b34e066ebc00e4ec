#define _POSIX_C_SOURCE 200809L
/*
 * test_audio.c -- CUnit tests of the domain code of mpx-features
 * (apps/features/audio.c): the WAV reader on files written here in every
 * supported layout and in many broken ones, the spectral features on
 * synthetic signals whose answer is known, and the label parser.
 *
 * The files go to a fresh mkdtemp directory that the suite removes at the
 * end. The exit code is the number of failed assertions (at most 255).
 */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audio.h"

/* ---- scratch files ------------------------------------------------------ */

#define MAX_FILES 64
static char tmpdir[256];
static char *created[MAX_FILES]; /* files and directories to remove */
static int ncreated;

/* Returns a path inside the scratch directory (static storage, rotated). */
static const char *tmp_path(const char *name) {
  static char paths[8][512];
  static int next;
  char *p = paths[next++ % 8];
  snprintf(p, 512, "%s/%s", tmpdir, name);
  return p;
}

/* Remembers path for removal at the end of the suite. */
static void track(const char *path) {
  for (int i = 0; i < ncreated; i++)
    if (strcmp(created[i], path) == 0)
      return;
  if (ncreated < MAX_FILES)
    created[ncreated++] = strdup(path);
}

/* Writes len bytes to the scratch file name and returns its path. */
static const char *write_file(const char *name, const void *data, size_t len) {
  const char *path = tmp_path(name);
  FILE *f = fopen(path, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  if (len)
    CU_ASSERT_EQUAL(fwrite(data, 1, len, f), len);
  CU_ASSERT_EQUAL(fclose(f), 0);
  track(path);
  return path;
}

/* Creates the scratch directory. */
static int suite_init(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/mpxf_test_XXXXXX",
           base && *base ? base : "/tmp");
  return mkdtemp(tmpdir) ? 0 : -1;
}

/* Removes every scratch file, then the directory. */
static int suite_clean(void) {
  for (int i = ncreated - 1; i >= 0; i--) {
    struct stat st;
    if (stat(created[i], &st) == 0 && S_ISDIR(st.st_mode))
      rmdir(created[i]);
    else
      unlink(created[i]);
    free(created[i]);
  }
  ncreated = 0;
  rmdir(tmpdir);
  mpxf_cleanup();
  return 0;
}

/* ---- a tiny WAV builder ------------------------------------------------- */

typedef struct bytes {
  unsigned char b[8192];
  size_t n;
} bytes;

/* Appends raw bytes, then little-endian integers. */
static void put(bytes *o, const void *p, size_t n) {
  CU_ASSERT_FATAL(o->n + n <= sizeof o->b);
  memcpy(o->b + o->n, p, n);
  o->n += n;
}
static void put16(bytes *o, unsigned v) {
  unsigned char p[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
  put(o, p, 2);
}
static void put32(bytes *o, uint32_t v) {
  unsigned char p[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                        (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
  put(o, p, 4);
}

/* Starts a RIFF/WAVE file (the RIFF size is patched by finish()). */
static void riff(bytes *o) {
  o->n = 0;
  put(o, "RIFF", 4);
  put32(o, 0);
  put(o, "WAVE", 4);
}

/* Appends a chunk with its pad byte when len is odd. */
static void chunk(bytes *o, const char *id, const void *body, size_t len) {
  put(o, id, 4);
  put32(o, (uint32_t)len);
  put(o, body, len);
  if (len & 1)
    put(o, "", 1);
}

/* Appends a canonical 16-byte fmt chunk. */
static void fmt(bytes *o, unsigned tag, unsigned ch, uint32_t rate,
                unsigned bits) {
  unsigned align = ch * ((bits + 7) / 8);
  put(o, "fmt ", 4);
  put32(o, 16);
  put16(o, tag);
  put16(o, ch);
  put32(o, rate);
  put32(o, rate * align);
  put16(o, align);
  put16(o, bits);
}

/* Appends a WAVE_FORMAT_EXTENSIBLE fmt chunk with sub-format sub. */
static void fmt_ext(bytes *o, unsigned sub, unsigned ch, uint32_t rate,
                    unsigned bits) {
  static const unsigned char guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10,
                                              0x00, 0x80, 0x00, 0x00, 0xAA,
                                              0x00, 0x38, 0x9B, 0x71};
  unsigned align = ch * ((bits + 7) / 8);
  put(o, "fmt ", 4);
  put32(o, 40);
  put16(o, 0xFFFE);
  put16(o, ch);
  put32(o, rate);
  put32(o, rate * align);
  put16(o, align);
  put16(o, bits);
  put16(o, 22);   /* cbSize */
  put16(o, bits); /* valid bits */
  put32(o, ch == 1 ? 4 : 3);
  put16(o, sub);
  put(o, guid_tail, sizeof guid_tail);
}

/* Patches the RIFF size and writes the file; returns its path. */
static const char *finish(bytes *o, const char *name) {
  uint32_t sz = (uint32_t)(o->n - 8);
  unsigned char p[4] = {(unsigned char)sz, (unsigned char)(sz >> 8),
                        (unsigned char)(sz >> 16), (unsigned char)(sz >> 24)};
  memcpy(o->b + 4, p, 4);
  return write_file(name, o->b, o->n);
}

/* Reads path and checks that it decodes to want[0..n-1] at rate exactly. */
static void expect_samples(const char *path, const float *want, size_t n,
                           int rate) {
  float *x = NULL;
  size_t got = 0;
  int r = 0;
  char err[256] = "";
  int rc = mpxf_wav_read(path, &x, &got, &r, err, sizeof err);
  if (rc != 0)
    fprintf(stderr, "\n  %s: %s\n", path, err);
  CU_ASSERT_EQUAL_FATAL(rc, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  CU_ASSERT_EQUAL(r, rate);
  CU_ASSERT_EQUAL(got, n);
  for (size_t i = 0; i < n && i < got; i++) {
    if (x[i] != want[i])
      fprintf(stderr, "\n  %s: sample %zu is %.9g, want %.9g\n", path, i,
              (double)x[i], (double)want[i]);
    CU_ASSERT_EQUAL(x[i], want[i]);
  }
  free(x);
}

/* Checks that path fails to decode with a message containing want. */
static void expect_error(const char *path, const char *want) {
  static float sentinel;
  float *x = &sentinel; /* must be reset to NULL */
  size_t n = 1;
  int r = 1;
  char err[256] = "";
  CU_ASSERT_EQUAL(mpxf_wav_read(path, &x, &n, &r, err, sizeof err), -1);
  CU_ASSERT_PTR_NULL(x);
  if (!strstr(err, want))
    fprintf(stderr, "\n  %s: error \"%s\", want \"%s\"\n", path, err, want);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
  /* mpxf_file_features reports the same failure. */
  float out[MPXF_NFEAT];
  char err2[256] = "";
  CU_ASSERT_EQUAL(mpxf_file_features(path, out, err2, sizeof err2), -1);
  CU_ASSERT_STRING_EQUAL(err2, err);
}

/* ---- decoding each format ----------------------------------------------- */

static void test_pcm8(void) {
  const unsigned char d[] = {0, 64, 128, 192, 255};
  const float want[] = {-1.0f, -0.5f, 0.0f, 0.5f, 127.0f / 128.0f};
  bytes o;
  riff(&o);
  fmt(&o, 1, 1, 8000, 8);
  chunk(&o, "data", d, sizeof d); /* odd size: padded */
  expect_samples(finish(&o, "pcm8.wav"), want, 5, 8000);
}

static void test_pcm16(void) {
  const int v[] = {-32768, -16384, 0, 1, 32767};
  float want[5];
  bytes d = {.n = 0}, o;
  for (int i = 0; i < 5; i++) {
    put16(&d, (unsigned)(v[i] & 0xFFFF));
    want[i] = (float)(v[i] / 32768.0);
  }
  riff(&o);
  fmt(&o, 1, 1, 16000, 16);
  chunk(&o, "data", d.b, d.n);
  expect_samples(finish(&o, "pcm16.wav"), want, 5, 16000);
}

static void test_pcm24(void) {
  const long v[] = {-8388608L, -1, 0, 4194304L, 8388607L};
  float want[5];
  bytes d = {.n = 0}, o;
  for (int i = 0; i < 5; i++) {
    unsigned long u = (unsigned long)v[i] & 0xFFFFFFUL;
    unsigned char p[3] = {(unsigned char)u, (unsigned char)(u >> 8),
                          (unsigned char)(u >> 16)};
    put(&d, p, 3);
    want[i] = (float)(v[i] / 8388608.0);
  }
  riff(&o);
  fmt(&o, 1, 1, 44100, 24);
  chunk(&o, "data", d.b, d.n); /* 15 bytes: padded */
  expect_samples(finish(&o, "pcm24.wav"), want, 5, 44100);
}

static void test_pcm32(void) {
  const int64_t v[] = {INT32_MIN, -1, 0, 1 << 30, INT32_MAX, 123456789};
  float want[6];
  bytes d = {.n = 0}, o;
  for (int i = 0; i < 6; i++) {
    put32(&d, (uint32_t)(v[i] & 0xFFFFFFFF));
    want[i] = (float)((double)v[i] / 2147483648.0);
  }
  riff(&o);
  fmt(&o, 1, 1, 48000, 32);
  chunk(&o, "data", d.b, d.n);
  expect_samples(finish(&o, "pcm32.wav"), want, 6, 48000);
}

static void test_float32(void) {
  const float want[] = {-1.5f, 0.25f, 0.0f, 1e-3f, 3.0f, -0.1f};
  bytes d = {.n = 0}, o;
  for (int i = 0; i < 6; i++) {
    uint32_t u;
    memcpy(&u, &want[i], 4);
    put32(&d, u);
  }
  riff(&o);
  fmt(&o, 3, 1, 22050, 32);
  chunk(&o, "data", d.b, d.n);
  expect_samples(finish(&o, "float32.wav"), want, 6, 22050);
}

static void test_float64(void) {
  const double v[] = {0.1, -0.75, 1e-300};
  float want[3];
  bytes d = {.n = 0}, o;
  for (int i = 0; i < 3; i++) {
    uint64_t u;
    memcpy(&u, &v[i], 8);
    put32(&d, (uint32_t)u);
    put32(&d, (uint32_t)(u >> 32));
    want[i] = (float)v[i];
  }
  riff(&o);
  fmt(&o, 3, 1, 8000, 64);
  chunk(&o, "data", d.b, d.n);
  expect_samples(finish(&o, "float64.wav"), want, 3, 8000);
}

static void test_stereo_mixdown(void) {
  const int l[] = {100, -32768, 32767, 1, -3};
  const int r[] = {200, 32767, 32767, 0, 0};
  float want[5];
  bytes d = {.n = 0}, o;
  for (int i = 0; i < 5; i++) {
    put16(&d, (unsigned)(l[i] & 0xFFFF));
    put16(&d, (unsigned)(r[i] & 0xFFFF));
    want[i] = (float)((l[i] / 32768.0 + r[i] / 32768.0) / 2);
  }
  riff(&o);
  fmt(&o, 1, 2, 16000, 16);
  chunk(&o, "data", d.b, d.n);
  expect_samples(finish(&o, "stereo16.wav"), want, 5, 16000);
}

static void test_three_channels_float(void) {
  const float v[2][3] = {{0.5f, 0.25f, -0.125f}, {1.0f, 1.0f, 1.0f}};
  float want[2];
  bytes d = {.n = 0}, o;
  for (int i = 0; i < 2; i++) {
    double s = 0;
    for (int c = 0; c < 3; c++) {
      uint32_t u;
      memcpy(&u, &v[i][c], 4);
      put32(&d, u);
      s += v[i][c];
    }
    want[i] = (float)(s / 3);
  }
  riff(&o);
  fmt(&o, 3, 3, 16000, 32);
  chunk(&o, "data", d.b, d.n);
  expect_samples(finish(&o, "float3ch.wav"), want, 2, 16000);
}

static void test_extensible(void) {
  bytes d = {.n = 0}, o;
  put16(&d, 16384);
  put16(&d, 0xC000); /* -16384 */
  const float w16[] = {0.5f, -0.5f};
  riff(&o);
  fmt_ext(&o, 1, 1, 16000, 16);
  chunk(&o, "data", d.b, d.n);
  expect_samples(finish(&o, "ext_pcm16.wav"), w16, 2, 16000);

  /* Extensible float, stereo. */
  const float fv[4] = {0.5f, -0.5f, 0.75f, 0.25f};
  d.n = 0;
  for (int i = 0; i < 4; i++) {
    uint32_t u;
    memcpy(&u, &fv[i], 4);
    put32(&d, u);
  }
  const float wf[] = {0.0f, 0.5f};
  riff(&o);
  fmt_ext(&o, 3, 2, 48000, 32);
  chunk(&o, "data", d.b, d.n);
  expect_samples(finish(&o, "ext_float.wav"), wf, 2, 48000);
}

static void test_extra_chunks(void) {
  bytes d = {.n = 0}, o;
  put16(&d, 16384);
  put16(&d, 8192);
  const float want[] = {0.5f, 0.25f};
  /* An odd-sized chunk before fmt, another between fmt and data, and a
   * LIST after data: all skipped, pad bytes honoured. */
  riff(&o);
  chunk(&o, "JUNK", "abc", 3);
  fmt(&o, 1, 1, 16000, 16);
  chunk(&o, "LIST", "INFOISFT\x01\0\0\0x", 13);
  chunk(&o, "data", d.b, d.n);
  chunk(&o, "LIST", "zz", 2);
  expect_samples(finish(&o, "extra_chunks.wav"), want, 2, 16000);

  /* An 18-byte fmt chunk (cbSize = 0), as some writers produce. */
  riff(&o);
  unsigned char f18[18] = {1, 0, 1, 0, 0x80, 0x3E, 0,  0,
                           0, 0, 0, 0, 2,    0,    16, 0};
  chunk(&o, "fmt ", f18, sizeof f18);
  chunk(&o, "data", d.b, d.n);
  expect_samples(finish(&o, "fmt18.wav"), want, 2, 16000);

  /* data before fmt still decodes. */
  riff(&o);
  chunk(&o, "data", d.b, d.n);
  fmt(&o, 1, 1, 16000, 16);
  expect_samples(finish(&o, "data_first.wav"), want, 2, 16000);
}

static void test_oversized_data(void) {
  bytes o;
  const float want[] = {0.5f, 0.25f, -0.5f};
  /* The streaming writers' 0xFFFFFFFF (also in the RIFF size). */
  riff(&o);
  fmt(&o, 1, 1, 22050, 16);
  put(&o, "data", 4);
  put32(&o, 0xFFFFFFFFu);
  put16(&o, 16384);
  put16(&o, 8192);
  put16(&o, 0xC000);
  memset(o.b + 4, 0xFF, 4);
  expect_samples(write_file("stream.wav", o.b, o.n), want, 3, 22050);

  /* espeak-ng --stdout's guess, with a trailing partial frame. */
  riff(&o);
  fmt(&o, 1, 1, 22050, 16);
  put(&o, "data", 4);
  put32(&o, 0x7FFFF000u);
  put16(&o, 16384);
  put16(&o, 8192);
  put16(&o, 0xC000);
  put(&o, "\x01", 1);
  expect_samples(finish(&o, "guess.wav"), want, 3, 22050);
}

/* ---- errors ------------------------------------------------------------- */

static void test_error_open(void) {
  expect_error(tmp_path("does-not-exist.wav"),
               "cannot open: No such file or directory");
  const char *dir = tmp_path("subdir.wav");
  CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
  track(dir);
  expect_error(dir, "not a regular file (directory)");
  expect_error(write_file("empty.wav", "", 0), "empty file");
  expect_error("/dev/null", "not a regular file (character device)");
}

/* A FIFO named like a WAV file fails at once instead of waiting for a
 * writer that never comes (the suite would hang until its timeout). */
static void test_error_fifo(void) {
  const char *fifo = tmp_path("7_fifo.wav");
  CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
  track(fifo);
  expect_error(fifo, "not a regular file (FIFO)");
}

static void test_error_header(void) {
  expect_error(write_file("short.wav", "RIF", 3), "truncated RIFF header");
  expect_error(write_file("short2.wav", "RIFF\x10\0\0\0WA", 10),
               "truncated RIFF header");
  expect_error(write_file("text.wav", "hello, world\n", 13),
               "not a RIFF/WAVE file");
  expect_error(write_file("avi.wav", "RIFF\x10\0\0\0AVI LIST", 16),
               "not a RIFF/WAVE file");
  expect_error(write_file("tiny.wav", "x", 1), "not a RIFF/WAVE file");
}

static void test_error_fmt(void) {
  bytes o;
  riff(&o);
  put(&o, "fmt ", 4);
  put32(&o, 16);
  put16(&o, 1);
  put16(&o, 1);
  put16(&o, 0x3E80);
  expect_error(finish(&o, "trunc_fmt.wav"), "truncated fmt chunk");

  riff(&o);
  chunk(&o, "fmt ", "\x01\0\x01\0\x80\x3E\0\0", 8);
  chunk(&o, "data", "\0\0", 2);
  expect_error(finish(&o, "small_fmt.wav"), "truncated fmt chunk");

  riff(&o);
  fmt(&o, 85, 1, 16000, 16);
  chunk(&o, "data", "\0\0", 2);
  expect_error(finish(&o, "mp3.wav"),
               "unsupported format 85 (only PCM and float)");

  riff(&o);
  fmt_ext(&o, 2, 1, 16000, 16);
  chunk(&o, "data", "\0\0", 2);
  expect_error(finish(&o, "ext_adpcm.wav"),
               "unsupported extensible sub-format 2");

  riff(&o);
  fmt(&o, 3, 1, 16000, 16);
  chunk(&o, "data", "\0\0", 2);
  expect_error(finish(&o, "half.wav"), "unsupported float sample width");

  riff(&o);
  fmt(&o, 1, 0, 16000, 16);
  chunk(&o, "data", "\0\0", 2);
  expect_error(finish(&o, "nochan.wav"), "0 channels");

  riff(&o);
  fmt(&o, 1, 1, 0, 16);
  chunk(&o, "data", "\0\0", 2);
  expect_error(finish(&o, "norate.wav"), "invalid sample rate");

  riff(&o);
  fmt(&o, 1, 2, 16000, 16);
  o.b[o.n - 4] = 2; /* block align 2 for 2 x 16 bits */
  chunk(&o, "data", "\0\0\0\0", 4);
  expect_error(finish(&o, "align.wav"), "block align 2 does not match");

  riff(&o);
  chunk(&o, "data", "\0\0", 2);
  expect_error(finish(&o, "nofmt.wav"), "no fmt chunk");
}

static void test_error_data(void) {
  bytes o;
  riff(&o);
  fmt(&o, 1, 1, 16000, 16);
  expect_error(finish(&o, "nodata.wav"), "no data chunk");

  riff(&o);
  fmt(&o, 1, 1, 16000, 16);
  chunk(&o, "LIST", "abcd", 4);
  expect_error(finish(&o, "nodata2.wav"), "no data chunk");

  riff(&o);
  fmt(&o, 1, 1, 16000, 16);
  chunk(&o, "data", "", 0);
  expect_error(finish(&o, "zero.wav"), "0 samples");

  riff(&o);
  fmt(&o, 1, 2, 16000, 16);
  chunk(&o, "data", "\0\0\0", 3); /* less than one frame */
  expect_error(finish(&o, "partial.wav"), "0 samples");
}

/* ---- features ----------------------------------------------------------- */

/* The triangle weight of mel filter k at frequency f for rate, written
 * independently of audio.c from the specification in audio.h. */
static double mel_weight(int k, double f, int rate) {
  double top = 2595.0 * log10(1.0 + rate / 2.0 / 700.0);
  double h[3];
  for (int j = 0; j < 3; j++)
    h[j] = 700.0 * (pow(10.0, top * (k + j) / 33.0 / 2595.0) - 1.0);
  double w = fmin((f - h[0]) / (h[1] - h[0]), (h[2] - f) / (h[2] - h[1]));
  return w > 0 ? w : 0;
}

/* Fills x with amp * sin(2 pi freq i / rate). */
static void sine(float *x, size_t n, double freq, int rate, double amp) {
  const double pi = 3.14159265358979323846;
  for (size_t i = 0; i < n; i++)
    x[i] = (float)(amp * sin(2 * pi * freq * (double)i / rate));
}

static void test_sine_peak(void) {
  enum { N = 16000 };
  static float x[N];
  const int rate = 16000;
  sine(x, N, 1000.0, rate, 0.5);
  float out[MPXF_NFEAT];
  char err[128] = "";
  CU_ASSERT_EQUAL_FATAL(mpxf_features(x, N, rate, out, err, sizeof err), 0);
  for (int i = 0; i < MPXF_NFEAT; i++)
    CU_ASSERT(isfinite(out[i]));
  /* 1000 Hz is bin 32 exactly: the band weighting it most is the peak. */
  int want = 0, got = 0;
  for (int k = 1; k < MPXF_NMEL; k++) {
    if (mel_weight(k, 1000.0, rate) > mel_weight(want, 1000.0, rate))
      want = k;
    if (out[k] > out[got])
      got = k;
  }
  CU_ASSERT_EQUAL(got, want);
  /* A bin-centred sine under a periodic Hann window: |X[32]| = 128 A and
   * |X[31]| = |X[33]| = 64 A, so the band energy is known in closed form. */
  const double a = 0.5;
  double e =
      mel_weight(want, 1000.0, rate) * (128 * a) * (128 * a) +
      (mel_weight(want, 968.75, rate) + mel_weight(want, 1031.25, rate)) *
          (64 * a) * (64 * a);
  CU_ASSERT_DOUBLE_EQUAL(out[want], log10(e + 1e-10), 1e-4);
  /* The hop is a whole number of periods: every frame is the same. */
  CU_ASSERT(out[MPXF_NMEL + want] < 1e-5);
  /* Far from 1 kHz there is (almost) nothing. */
  CU_ASSERT(out[MPXF_NMEL - 1] < out[want] - 8);
}

static void test_deterministic(void) {
  enum { N = 5000 };
  static float x[N], y[N];
  uint64_t s = 88172645463325252ULL;
  for (int i = 0; i < N; i++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    x[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
  }
  sine(y, N, 440.0, 22050, 0.3);
  float a[MPXF_NFEAT], b[MPXF_NFEAT], c[MPXF_NFEAT];
  CU_ASSERT_EQUAL(mpxf_features(x, N, 16000, a, NULL, 0), 0);
  CU_ASSERT_EQUAL(mpxf_features(y, N, 22050, c, NULL, 0), 0); /* new rate */
  CU_ASSERT_EQUAL(mpxf_features(x, N, 16000, b, NULL, 0), 0);
  CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
  mpxf_cleanup(); /* a fresh plan gives the same answer */
  CU_ASSERT_EQUAL(mpxf_features(x, N, 16000, b, NULL, 0), 0);
  CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
  /* White noise: every band mean is finite, deviations positive. */
  for (int k = 0; k < MPXF_NMEL; k++)
    CU_ASSERT(isfinite(a[k]) && a[MPXF_NMEL + k] > 0);
}

static void test_silence(void) {
  static float z[2048];
  float out[MPXF_NFEAT];
  CU_ASSERT_EQUAL_FATAL(mpxf_features(z, 2048, 8000, out, NULL, 0), 0);
  for (int k = 0; k < MPXF_NMEL; k++) {
    CU_ASSERT_DOUBLE_EQUAL(out[k], -10.0, 1e-6);
    CU_ASSERT_EQUAL(out[MPXF_NMEL + k], 0.0f);
  }
}

static void test_short_and_framing(void) {
  static float x[1024], pad[512];
  sine(x, 1024, 300.0, 8000, 0.8);
  float a[MPXF_NFEAT], b[MPXF_NFEAT];
  char err[128] = "";
  /* Fewer than 512 samples: one zero-padded frame. */
  memcpy(pad, x, 100 * sizeof *x);
  CU_ASSERT_EQUAL_FATAL(mpxf_features(x, 100, 8000, a, err, sizeof err), 0);
  CU_ASSERT_EQUAL_FATAL(mpxf_features(pad, 512, 8000, b, err, sizeof err), 0);
  CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
  for (int k = 0; k < MPXF_NMEL; k++)
    CU_ASSERT_EQUAL(a[MPXF_NMEL + k], 0.0f); /* one frame: std 0 */
  CU_ASSERT_EQUAL(mpxf_features(x, 1, 8000, a, err, sizeof err), 0);
  /* 767 samples are one frame (the rest dropped), 768 are two. */
  CU_ASSERT_EQUAL(mpxf_features(x, 512, 8000, a, NULL, 0), 0);
  CU_ASSERT_EQUAL(mpxf_features(x, 767, 8000, b, NULL, 0), 0);
  CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
  CU_ASSERT_EQUAL(mpxf_features(x, 768, 8000, b, NULL, 0), 0);
  CU_ASSERT_NOT_EQUAL(memcmp(a, b, sizeof a), 0);
  /* 256 samples then 512 zeros: frame 0 equals the padded 256-sample frame
   * (log bands a[k]), frame 1 is silence (-10), so the mean is their
   * average and the population deviation half their distance. */
  memset(x + 256, 0, 768 * sizeof *x);
  CU_ASSERT_EQUAL_FATAL(mpxf_features(x, 256, 8000, a, NULL, 0), 0);
  CU_ASSERT_EQUAL_FATAL(mpxf_features(x, 768, 8000, b, NULL, 0), 0);
  for (int k = 0; k < MPXF_NMEL; k++) {
    CU_ASSERT_DOUBLE_EQUAL(b[k], (a[k] - 10.0) / 2, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(b[MPXF_NMEL + k], fabs(a[k] + 10.0) / 2, 1e-5);
  }
}

static void test_feature_errors(void) {
  float x[4] = {0, 0, 0, 0}, out[MPXF_NFEAT];
  char err[128] = "";
  CU_ASSERT_EQUAL(mpxf_features(x, 0, 8000, out, err, sizeof err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "0 samples"));
  CU_ASSERT_EQUAL(mpxf_features(x, 4, 0, out, err, sizeof err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "invalid sample rate"));
  x[2] = NAN;
  CU_ASSERT_EQUAL(mpxf_features(x, 4, 8000, out, err, sizeof err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "sample 2 is not finite"));
  CU_ASSERT_EQUAL(mpxf_features(x, 4, 8000, out, NULL, 0), -1);

  /* A float WAV holding an infinity decodes, but has no features. */
  bytes o;
  riff(&o);
  fmt(&o, 3, 1, 8000, 32);
  chunk(&o, "data", "\0\0\0\0\0\0\x80\x7F", 8);
  const char *path = finish(&o, "inf.wav");
  float *s;
  size_t n;
  int rate;
  CU_ASSERT_EQUAL(mpxf_wav_read(path, &s, &n, &rate, NULL, 0), 0);
  free(s);
  CU_ASSERT_EQUAL(mpxf_file_features(path, out, err, sizeof err), -1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "sample 1 is not finite"));
}

static void test_file_features(void) {
  enum { N = 3000 };
  static float x[N];
  bytes o;
  riff(&o);
  fmt(&o, 1, 1, 11025, 16);
  put(&o, "data", 4);
  put32(&o, 2 * N);
  size_t hdr = o.n;
  CU_ASSERT_FATAL(hdr + 2 * N <= sizeof o.b);
  for (int i = 0; i < N; i++) {
    int v = (int)lround(20000 * sin(0.05 * i) * cos(0.001 * i));
    put16(&o, (unsigned)(v & 0xFFFF));
    x[i] = (float)(v / 32768.0);
  }
  const char *path = finish(&o, "file_features.wav");
  float a[MPXF_NFEAT], b[MPXF_NFEAT];
  char err[128] = "";
  CU_ASSERT_EQUAL_FATAL(mpxf_file_features(path, a, err, sizeof err), 0);
  CU_ASSERT_EQUAL_FATAL(mpxf_features(x, N, 11025, b, err, sizeof err), 0);
  CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
}

/* ---- labels ------------------------------------------------------------- */

static void test_target(void) {
  CU_ASSERT_EQUAL(mpxf_target_from_path("/d/7_m3_150.wav"), 7);
  CU_ASSERT_EQUAL(mpxf_target_from_path("7_x"), 7);
  CU_ASSERT_EQUAL(mpxf_target_from_path("0_f1_120.wav"), 0);
  CU_ASSERT_EQUAL(mpxf_target_from_path("data/12_a.wav"), 12);
  CU_ASSERT_EQUAL(mpxf_target_from_path("007_a.wav"), 7);
  CU_ASSERT_EQUAL(mpxf_target_from_path("a/b/3_"), 3);
  CU_ASSERT_EQUAL(mpxf_target_from_path("2147483647_a.wav"), 2147483647);
  CU_ASSERT_EQUAL(mpxf_target_from_path("2147483648_a.wav"), -1);
  CU_ASSERT_EQUAL(mpxf_target_from_path("99999999999999999999_a.wav"), -1);
  CU_ASSERT_EQUAL(mpxf_target_from_path("x7_a.wav"), -1);
  CU_ASSERT_EQUAL(mpxf_target_from_path("7.wav"), -1);
  CU_ASSERT_EQUAL(mpxf_target_from_path("_7.wav"), -1);
  CU_ASSERT_EQUAL(mpxf_target_from_path("-7_a.wav"), -1);
  CU_ASSERT_EQUAL(mpxf_target_from_path("/d/5_a/x.wav"), -1);
  CU_ASSERT_EQUAL(mpxf_target_from_path("/d/"), -1);
  CU_ASSERT_EQUAL(mpxf_target_from_path(""), -1);
  CU_ASSERT_EQUAL(mpxf_target_from_path(NULL), -1);
}

/* ---- runner ------------------------------------------------------------- */

typedef struct test_entry {
  const char *name;
  CU_TestFunc fn;
} test_entry;

static const test_entry tests[] = {
    {"pcm 8-bit", test_pcm8},
    {"pcm 16-bit", test_pcm16},
    {"pcm 24-bit", test_pcm24},
    {"pcm 32-bit", test_pcm32},
    {"float32", test_float32},
    {"float64", test_float64},
    {"stereo mixdown", test_stereo_mixdown},
    {"three channels float", test_three_channels_float},
    {"extensible", test_extensible},
    {"extra and odd chunks", test_extra_chunks},
    {"oversized data size", test_oversized_data},
    {"error: open", test_error_open},
    {"error: FIFO", test_error_fifo},
    {"error: header", test_error_header},
    {"error: fmt", test_error_fmt},
    {"error: data", test_error_data},
    {"features: sine peak", test_sine_peak},
    {"features: deterministic", test_deterministic},
    {"features: silence", test_silence},
    {"features: short input and framing", test_short_and_framing},
    {"features: errors", test_feature_errors},
    {"features: file", test_file_features},
    {"target from path", test_target},
};

/* Runs the suite; the exit status is the number of failures (capped). */
int main(void) {
  if (CU_initialize_registry() != CUE_SUCCESS)
    return 255;
  CU_pSuite s = CU_add_suite("audio", suite_init, suite_clean);
  if (!s)
    return 255;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
    if (!CU_add_test(s, tests[i].name, tests[i].fn))
      return 255;
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned nfail = CU_get_number_of_failures();
  if (CU_get_error() != CUE_SUCCESS || CU_get_number_of_suites_failed())
    nfail = nfail ? nfail : 1;
  CU_cleanup_registry();
  return nfail > 255 ? 255 : (int)nfail;
}
