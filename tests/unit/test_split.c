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
  CU_ASSERT_EQUAL(mpx__rec_schema_append(&r, "a:float32:64,b%20c:str:1", 1),
                  0);
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
