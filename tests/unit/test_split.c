/*
 * test_split.c -- mpx_array_split() and mpx_split_producer() against
 * numpy.array_split itself (Debian's python3-numpy, run as a child
 * process) over a grid of (n, k) that includes n = 0, k = 1, k > n and
 * uneven splits, their errors and int64 extremes; mpx_elements_producer();
 * and the completion
 * record: CRC-32 known values, torn and corrupt lines, another job's
 * record, truncation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpx.h"
#include "record.h"
#include "unit.h"

/* Checks one part of numpy's grid against mpx; returns 1 when they agree. */
typedef int (*part_check)(uint64_t n, uint64_t k, uint64_t i, uint64_t s,
                          uint64_t e);

/* Runs numpy.array_split over a grid of (n, k) and hands every part to
 * check; asserts that all agree and that the whole grid was read. */
static void numpy_grid(part_check check) {
  /* numpy prints "n k i start stop" for every part of the grid */
  const char *py =
      "/usr/bin/python3 -c '\n"
      "import numpy as np\n"
      "for n in (0, 1, 2, 3, 5, 7, 8, 10, 31, 100, 1001, 200000):\n"
      "  for k in (1, 2, 3, 4, 7, 8, 12, 100, 1500):\n"
      "    s = 0\n"
      "    for i, p in enumerate(np.array_split(np.arange(n), k)):\n"
      "      print(n, k, i, s, s + len(p)); s += len(p)\n"
      "'";
  FILE *f = popen(py, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  unsigned long long n, k, i, s, e;
  long lines = 0, bad = 0;
  while (fscanf(f, "%llu %llu %llu %llu %llu", &n, &k, &i, &s, &e) == 5) {
    if (!check(n, k, i, s, e) && bad++ < 5)
      printf("\n  n %llu k %llu part %llu: numpy [%llu, %llu), mpx differs", n,
             k, i, s, e);
    lines++;
  }
  CU_ASSERT_EQUAL(pclose(f), 0);
  CU_ASSERT_EQUAL(bad, 0);
  /* 12 values of n times the sum of the k values */
  CU_ASSERT_EQUAL(lines, 12 * (1 + 2 + 3 + 4 + 7 + 8 + 12 + 100 + 1500));
}

/* mpx_array_split() agrees with numpy on part i. */
static int check_array_split(uint64_t n, uint64_t k, uint64_t i, uint64_t s,
                             uint64_t e) {
  uint64_t a, b;
  return mpx_array_split(n, k, i, &a, &b) == 0 && a == s && b == e;
}

static void test_numpy_grid(void) {
  numpy_grid(check_array_split);
}

/* mpx_split_producer() over [lo, lo + n) yields numpy's part i shifted by
 * lo as a 16-byte mpx_range, and ends after part k - 1. */
static int check_split_producer(uint64_t n, uint64_t k, uint64_t i, uint64_t s,
                                uint64_t e) {
  const int64_t lo = -7;
  mpx_split sp = {lo, lo + (int64_t)n, k, {0, 0}};
  const void *d = NULL;
  size_t l = 0;
  if (mpx_split_producer(&sp, i, &d, &l) != 1 || d != &sp.part ||
      l != sizeof(mpx_range) || sp.part.start != lo + (int64_t)s ||
      sp.part.stop != lo + (int64_t)e)
    return 0;
  return i + 1 < k || mpx_split_producer(&sp, k, &d, &l) == 0;
}

static void test_producer_numpy_grid(void) {
  numpy_grid(check_split_producer);
}

static void test_split_errors(void) {
  uint64_t a, b;
  CU_ASSERT_EQUAL(mpx_array_split(10, 0, 0, &a, &b), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx_array_split(10, 3, 3, &a, &b), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx_array_split(10, 3, 0, NULL, &b), MPX_EINVAL);
  /* huge n: no overflow in the bounds */
  CU_ASSERT_EQUAL(mpx_array_split(UINT64_MAX, 3, 2, &a, &b), 0);
  CU_ASSERT_EQUAL(b, UINT64_MAX);
}

/* The split producer's errors, and ranges at the ends of int64. */
static void test_producer_errors_and_extremes(void) {
  const void *d;
  size_t l;
  mpx_split sp = {0, 10, 0, {0, 0}}; /* k == 0 */
  CU_ASSERT_EQUAL(mpx_split_producer(&sp, 0, &d, &l), MPX_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "mpx_split_producer"));
  sp = (mpx_split){5, 4, 2, {0, 0}}; /* hi < lo */
  CU_ASSERT_EQUAL(mpx_split_producer(&sp, 0, &d, &l), MPX_EINVAL);
  sp = (mpx_split){0, 10, 3, {0, 0}};
  CU_ASSERT_EQUAL(mpx_split_producer(NULL, 0, &d, &l), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx_split_producer(&sp, 0, NULL, &l), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx_split_producer(&sp, 3, &d, &l), 0);
  CU_ASSERT_EQUAL(mpx_split_producer(&sp, UINT64_MAX, &d, &l), 0);
  /* n = 0: k empty parts at lo */
  sp = (mpx_split){42, 42, 4, {0, 0}};
  for (uint64_t i = 0; i < 4; i++) {
    CU_ASSERT_EQUAL(mpx_split_producer(&sp, i, &d, &l), 1);
    CU_ASSERT_EQUAL(sp.part.start, 42);
    CU_ASSERT_EQUAL(sp.part.stop, 42);
  }
  /* the whole int64 range, n = 2^64 - 1: two parts of 2^63 and 2^63 - 1 */
  sp = (mpx_split){INT64_MIN, INT64_MAX, 2, {0, 0}};
  CU_ASSERT_EQUAL(mpx_split_producer(&sp, 0, &d, &l), 1);
  CU_ASSERT_EQUAL(sp.part.start, INT64_MIN);
  CU_ASSERT_EQUAL(sp.part.stop, 0);
  CU_ASSERT_EQUAL(mpx_split_producer(&sp, 1, &d, &l), 1);
  CU_ASSERT_EQUAL(sp.part.start, 0);
  CU_ASSERT_EQUAL(sp.part.stop, INT64_MAX);
  /* three equal parts of (2^64 - 1) / 3, contiguous */
  sp.k = 3;
  int64_t prev = INT64_MIN;
  for (uint64_t i = 0; i < 3; i++) {
    CU_ASSERT_EQUAL(mpx_split_producer(&sp, i, &d, &l), 1);
    CU_ASSERT_EQUAL(sp.part.start, prev);
    CU_ASSERT_EQUAL((uint64_t)sp.part.stop - (uint64_t)sp.part.start,
                    6148914691236517205ull);
    prev = sp.part.stop;
  }
  CU_ASSERT_EQUAL(prev, INT64_MAX);
  /* k far above n: part 9 holds the last item, the others past it none */
  sp = (mpx_split){0, 10, UINT64_MAX, {0, 0}};
  CU_ASSERT_EQUAL(mpx_split_producer(&sp, 9, &d, &l), 1);
  CU_ASSERT_EQUAL(sp.part.start, 9);
  CU_ASSERT_EQUAL(sp.part.stop, 10);
  CU_ASSERT_EQUAL(mpx_split_producer(&sp, UINT64_MAX - 1, &d, &l), 1);
  CU_ASSERT_EQUAL(sp.part.start, 10);
  CU_ASSERT_EQUAL(sp.part.stop, 10);
}

/* The elements producer lends element i in place, ends after n, and
 * refuses a missing base, a zero size and an array past the address
 * space. */
static void test_elements_producer(void) {
  struct item {
    int32_t a;
    char tag[8];
  } xs[5];
  for (int i = 0; i < 5; i++) {
    xs[i].a = 100 + i;
    snprintf(xs[i].tag, sizeof xs[i].tag, "x%d", i);
  }
  mpx_elements e = {xs, 5, sizeof xs[0]};
  const void *d = NULL;
  size_t l = 0;
  for (uint64_t i = 0; i < 5; i++) {
    CU_ASSERT_EQUAL(mpx_elements_producer(&e, i, &d, &l), 1);
    CU_ASSERT_PTR_EQUAL(d, &xs[i]);
    CU_ASSERT_EQUAL(l, sizeof xs[0]);
    CU_ASSERT_EQUAL(((const struct item *)d)->a, 100 + (int32_t)i);
  }
  CU_ASSERT_EQUAL(mpx_elements_producer(&e, 5, &d, &l), 0);
  /* n == 0: empty, whatever the base and size */
  mpx_elements none = {NULL, 0, 0};
  CU_ASSERT_EQUAL(mpx_elements_producer(&none, 0, &d, &l), 0);
  mpx_elements zero = {xs, 5, 0};
  CU_ASSERT_EQUAL(mpx_elements_producer(&zero, 0, &d, &l), MPX_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "mpx_elements_producer"));
  mpx_elements nobase = {NULL, 5, 4};
  CU_ASSERT_EQUAL(mpx_elements_producer(&nobase, 0, &d, &l), MPX_EINVAL);
  mpx_elements huge = {xs, SIZE_MAX / 2, 4};
  CU_ASSERT_EQUAL(mpx_elements_producer(&huge, 0, &d, &l), MPX_E2BIG);
  mpx_elements past = {xs, 1, SIZE_MAX - 8};
  CU_ASSERT_EQUAL(mpx_elements_producer(&past, 0, &d, &l), MPX_E2BIG);
  CU_ASSERT_EQUAL(mpx_elements_producer(NULL, 0, &d, &l), MPX_EINVAL);
  CU_ASSERT_EQUAL(mpx_elements_producer(&e, 0, &d, NULL), MPX_EINVAL);
}

static void test_crc(void) {
  CU_ASSERT_EQUAL(mpx__crc32(0, "123456789", 9), 0xCBF43926u);
  CU_ASSERT_EQUAL(mpx__crc32(0, "", 0), 0u);
  uint32_t c = mpx__crc32(0, "1234", 4);
  CU_ASSERT_EQUAL(mpx__crc32(c, "56789", 5), 0xCBF43926u);
}

/* Opens path as a record; returns mpx__rec_open's code. */
static int rec_read(const char *path, mpx__rec *r, mpx__rec_info *in) {
  int rc = mpx__rec_open(path, r, in);
  if (rc == 0)
    mpx__rec_close(r);
  return rc;
}

static void test_record(void) {
  char path[] = "/tmp/mpx-rec-XXXXXX";
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
  unlink(path);
  mpx__rec r;
  mpx__rec_head head = {"t", 10, 4, "files=3 id with spaces, commas=1:2%"};
  uint32_t s1[3] = {1, 2, 3}, s2[3] = {0xffffffffu, 0, 0xabcdef01u};
  CU_ASSERT_EQUAL_FATAL(mpx__rec_create(path, &head, &r), 0);
  CU_ASSERT_EQUAL(mpx__rec_schema_append(&r, "a:float32:64,b%20c:str:1", 1), 0);
  CU_ASSERT_EQUAL(mpx__rec_commit_append(&r, 3, 30, 0xabcdef01u, s1, 3, 1), 0);
  CU_ASSERT_EQUAL(mpx__rec_commit_append(&r, 7, 70, 0x12345678u, s2, 3, 1), 0);
  mpx__rec_close(&r);
  mpx__rec r2;
  CU_ASSERT_EQUAL(mpx__rec_create(path, &head, &r2), MPX_EFILE);
  /* a torn line (no newline) is not a commit, and not cut by reading */
  FILE *f = fopen(path, "a");
  fputs("commit items=9 rows=90 data=0000", f);
  fclose(f);
  mpx__rec_info in;
  CU_ASSERT_EQUAL_FATAL(mpx__rec_open(path, &r, &in), 0);
  CU_ASSERT_STRING_EQUAL(in.task, "t");
  CU_ASSERT_STRING_EQUAL(in.identity, head.identity);
  CU_ASSERT_EQUAL(in.items, 10);
  CU_ASSERT_EQUAL(in.gzip, 4);
  CU_ASSERT_STRING_EQUAL(in.schema, "a:float32:64,b%20c:str:1");
  CU_ASSERT_EQUAL_FATAL(in.ncommits, 2);
  CU_ASSERT_EQUAL(in.commits[0].items, 3);
  CU_ASSERT_EQUAL(in.commits[1].rows, 70);
  CU_ASSERT_EQUAL(in.commits[1].data_crc, 0x12345678u);
  CU_ASSERT_EQUAL_FATAL(in.commits[1].nsums, 3);
  CU_ASSERT_EQUAL(in.commits[1].sums[0], 0xffffffffu);
  CU_ASSERT_EQUAL(in.commits[1].sums[2], 0xabcdef01u);
  CU_ASSERT(in.end < in.bytes);
  CU_ASSERT(in.head < in.body && in.body == in.commits[0].offset);
  /* cut the torn tail; appending then starts a line of its own */
  CU_ASSERT_EQUAL(mpx__rec_truncate(&r, in.end), 0);
  CU_ASSERT_EQUAL(mpx__rec_commit_append(&r, 10, 100, 1, s1, 3, 0), 0);
  mpx__rec_close(&r);
  off_t second = in.commits[1].offset;
  mpx__rec_info_free(&in);
  CU_ASSERT_EQUAL_FATAL(mpx__rec_open(path, &r, &in), 0);
  CU_ASSERT_EQUAL(in.ncommits, 3);
  CU_ASSERT_EQUAL(in.end, in.bytes);
  /* cutting at the second commit */
  CU_ASSERT_EQUAL(mpx__rec_truncate(&r, second), 0);
  mpx__rec_close(&r);
  mpx__rec_info_free(&in);
  CU_ASSERT_EQUAL_FATAL(rec_read(path, &r, &in), 0);
  CU_ASSERT_EQUAL(in.ncommits, 1);
  mpx__rec_info_free(&in);
  /* a flipped byte in a commit line ends the list there */
  f = fopen(path, "r+");
  fseek(f, -5, SEEK_END);
  fputc('X', f);
  fclose(f);
  CU_ASSERT_EQUAL_FATAL(rec_read(path, &r, &in), 0);
  CU_ASSERT_EQUAL(in.ncommits, 0);
  CU_ASSERT_PTR_NOT_NULL(in.schema);
  mpx__rec_info_free(&in);
  /* an empty, torn or corrupt header says nothing */
  f = fopen(path, "w");
  fclose(f);
  CU_ASSERT_EQUAL(rec_read(path, &r, &in), 1);
  f = fopen(path, "w");
  fputs("mpxrec 2 ite", f);
  fclose(f);
  CU_ASSERT_EQUAL(rec_read(path, &r, &in), 1);
  f = fopen(path, "w");
  fputs("hello\n", f);
  fclose(f);
  CU_ASSERT_EQUAL(rec_read(path, &r, &in), 1);
  /* a valid line that is not a header, and an older format */
  char line[128];
  snprintf(line, sizeof line, "hello crc=%08x\n", mpx__crc32(0, "hello", 5));
  f = fopen(path, "w");
  fputs(line, f);
  fclose(f);
  CU_ASSERT_EQUAL(rec_read(path, &r, &in), MPX_EFILE);
  const char *v1 = "mpxrec 1 items=10 task=t";
  snprintf(line, sizeof line, "%s crc=%08x\n", v1,
           mpx__crc32(0, v1, strlen(v1)));
  f = fopen(path, "w");
  fputs(line, f);
  fclose(f);
  CU_ASSERT_EQUAL(rec_read(path, &r, &in), MPX_EFILE);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "format 1"));
  CU_ASSERT_EQUAL(rec_read("/nonexistent/x", &r, &in), MPX_EIO);
  unlink(path);
}

static void test_escape(void) {
  const char *cases[] = {"", "plain", "a b,c:d=e%f\n\t", "\xc3\xa9t\xc3\xa9"};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char *e = mpx__escape(cases[i]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_PTR_NULL(strpbrk(e, " ,:=\n\t"));
    CU_ASSERT_STRING_EQUAL(mpx__unescape(e), cases[i]);
    free(e);
  }
}

static const unit_test split_tests[] = {
    {"array_split equals numpy over a grid", test_numpy_grid},
    {"array_split errors and extremes", test_split_errors},
    {"split producer equals numpy over a grid", test_producer_numpy_grid},
    {"split producer errors and extremes", test_producer_errors_and_extremes},
    {"elements producer", test_elements_producer},
    {NULL, NULL}};
static const unit_test record_tests[] = {
    {"crc32 known values", test_crc},
    {"torn, corrupt, foreign and cut records", test_record},
    {"escaped names and identities", test_escape},
    {NULL, NULL}};
static const unit_suite suites[] = {
    {"array_split", split_tests}, {"record", record_tests}, {NULL, NULL}};

int main(void) {
  return unit_main(suites, 60);
}
