/*
 * test_split.c -- mpx_array_split() against numpy.array_split itself
 * (Debian's python3-numpy, run as a child process) over a grid of (n, k)
 * that includes n = 0, k = 1, k > n and uneven splits; and the completion
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

static void test_numpy_grid(void) {
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
    uint64_t a, b;
    CU_ASSERT_EQUAL_FATAL(mpx_array_split(n, k, i, &a, &b), 0);
    if (a != s || b != e) {
      if (bad++ < 5)
        printf("\n  n %llu k %llu part %llu: numpy [%llu, %llu), mpx "
               "[%llu, %llu)",
               n, k, i, s, e, (unsigned long long)a, (unsigned long long)b);
    }
    lines++;
  }
  CU_ASSERT_EQUAL(pclose(f), 0);
  CU_ASSERT_EQUAL(bad, 0);
  /* 12 values of n times the sum of the k values */
  CU_ASSERT_EQUAL(lines, 12 * (1 + 2 + 3 + 4 + 7 + 8 + 12 + 100 + 1500));
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

static void test_crc(void) {
  CU_ASSERT_EQUAL(mpx__crc32(0, "123456789", 9), 0xCBF43926u);
  CU_ASSERT_EQUAL(mpx__crc32(0, "", 0), 0u);
  uint32_t c = mpx__crc32(0, "1234", 4);
  CU_ASSERT_EQUAL(mpx__crc32(c, "56789", 5), 0xCBF43926u);
}

static void test_record(void) {
  char path[] = "/tmp/mpx-rec-XXXXXX";
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  close(fd);
  unlink(path);
  mpx__rec r;
  CU_ASSERT_EQUAL_FATAL(mpx__rec_create(path, "t", 10, &r), 0);
  CU_ASSERT_EQUAL(mpx__rec_commit_append(&r, 3, 30, 0xabcdef01u, 1), 0);
  CU_ASSERT_EQUAL(mpx__rec_commit_append(&r, 7, 70, 0x12345678u, 1), 0);
  mpx__rec_close(&r);
  mpx__rec r2;
  CU_ASSERT_EQUAL(mpx__rec_create(path, "t", 10, &r2), MPX_EFILE);
  /* a torn third line (no newline) and its bytes are dropped */
  FILE *f = fopen(path, "a");
  fputs("commit items=9 rows=90 data=0000", f);
  fclose(f);
  mpx__rec_commit *c;
  size_t nc;
  CU_ASSERT_EQUAL_FATAL(mpx__rec_open(path, "t", 10, &r, &c, &nc), 0);
  CU_ASSERT_EQUAL_FATAL(nc, 2);
  CU_ASSERT_EQUAL(c[0].items, 3);
  CU_ASSERT_EQUAL(c[1].rows, 70);
  CU_ASSERT_EQUAL(c[1].data_crc, 0x12345678u);
  /* appending after the cut starts a line of its own */
  CU_ASSERT_EQUAL(mpx__rec_commit_append(&r, 10, 100, 1, 0), 0);
  mpx__rec_close(&r);
  free(c);
  CU_ASSERT_EQUAL_FATAL(mpx__rec_open(path, "t", 10, &r, &c, &nc), 0);
  CU_ASSERT_EQUAL(nc, 3);
  /* cutting at the second commit */
  CU_ASSERT_EQUAL(mpx__rec_truncate(&r, c[1].offset), 0);
  mpx__rec_close(&r);
  free(c);
  CU_ASSERT_EQUAL_FATAL(mpx__rec_open(path, "t", 10, &r, &c, &nc), 0);
  CU_ASSERT_EQUAL(nc, 1);
  mpx__rec_close(&r);
  free(c);
  /* another job, or not a record */
  CU_ASSERT_EQUAL(mpx__rec_open(path, "t", 11, &r, &c, &nc), MPX_EFILE);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "another job"));
  CU_ASSERT_EQUAL(mpx__rec_open(path, "u", 10, &r, &c, &nc), MPX_EFILE);
  /* a flipped byte in a commit line ends the list there */
  f = fopen(path, "r+");
  fseek(f, -5, SEEK_END);
  fputc('X', f);
  fclose(f);
  CU_ASSERT_EQUAL_FATAL(mpx__rec_open(path, "t", 10, &r, &c, &nc), 0);
  CU_ASSERT_EQUAL(nc, 0);
  mpx__rec_close(&r);
  free(c);
  /* an empty record: killed while creating it */
  f = fopen(path, "w");
  fclose(f);
  CU_ASSERT_EQUAL(mpx__rec_open(path, "t", 10, &r, &c, &nc), 1);
  f = fopen(path, "w");
  fputs("hello\n", f);
  fclose(f);
  CU_ASSERT_EQUAL(mpx__rec_open(path, "t", 10, &r, &c, &nc), MPX_EFILE);
  CU_ASSERT_EQUAL(mpx__rec_open("/nonexistent/x", "t", 10, &r, &c, &nc),
                  MPX_EIO);
  unlink(path);
}

static const unit_test split_tests[] = {
    {"array_split equals numpy over a grid", test_numpy_grid},
    {"array_split errors and extremes", test_split_errors},
    {NULL, NULL}};
static const unit_test record_tests[] = {
    {"crc32 known values", test_crc},
    {"torn, corrupt, foreign and cut records", test_record},
    {NULL, NULL}};
static const unit_suite suites[] = {
    {"array_split", split_tests}, {"record", record_tests}, {NULL, NULL}};

int main(void) {
  return unit_main(suites, 60);
}
