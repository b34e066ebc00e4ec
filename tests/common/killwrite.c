#define _GNU_SOURCE
/*
 * killwrite.c -- an LD_PRELOAD library for the tests that kill a job at
 * every write it makes to its HDF5 output (tests/job/test_killwrite.c).
 *
 *   MPX_KILLWRITE_AT=N     the process raises SIGKILL just before its Nth
 *                          write to a file whose name ends in ".h5"
 *                          (write, pwrite, pwrite64: what HDF5's sec2
 *                          driver calls), so that the file holds what the
 *                          first N-1 writes made of it, as after a kill -9
 *                          at that moment;
 *   MPX_KILLWRITE_COUNT=F  at exit, the number of such writes goes to F.
 *
 * The counting follows the process that writes (the job's root): other
 * processes never write an .h5 file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static long writes;

/* Whether fd is an open file whose name ends in ".h5". */
static int is_h5(int fd) {
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 3)
    return 0;
  target[n] = '\0';
  return strcmp(target + n - 3, ".h5") == 0;
}

static void count(int fd) {
  static long at = -1;
  if (at < 0) {
    const char *s = getenv("MPX_KILLWRITE_AT");
    at = s ? atol(s) : 0;
  }
  if ((at > 0 || getenv("MPX_KILLWRITE_COUNT")) && is_h5(fd) && ++writes == at)
    raise(SIGKILL);
}

__attribute__((destructor)) static void report(void) {
  const char *path = getenv("MPX_KILLWRITE_COUNT");
  if (!path || writes == 0)
    return;
  FILE *f = fopen(path, "w");
  if (f) {
    fprintf(f, "%ld\n", writes);
    fclose(f);
  }
}

/* The system calls themselves, not the next library's wrappers: under a
 * sanitizer the next one is its interceptor, which may not be set up yet
 * when the process's first writes happen (TSan crashed there). */
ssize_t write(int fd, const void *buf, size_t n) {
  count(fd);
  return syscall(SYS_write, fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  count(fd);
  return syscall(SYS_pwrite64, fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  count(fd);
  return syscall(SYS_pwrite64, fd, buf, n, off);
}
