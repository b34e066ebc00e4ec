/*
 * lock.c -- one writer per output (see lock.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lock.h"
#include "mpx.h"
#include "util.h"

#ifndef F_OFD_SETLK
#define F_OFD_SETLK F_SETLK /* process-associated locks: one per process */
#endif

/* The holder text of a lock file, trimmed, into buf. */
static void read_holder(int fd, char *buf, size_t cap) {
  ssize_t n = pread(fd, buf, cap - 1, 0);
  buf[n > 0 ? n : 0] = '\0';
  buf[strcspn(buf, "\n")] = '\0';
}

int mpx__lock_take(const char *output, mpx__lock *l) {
  l->fd = -1;
  l->warning[0] = '\0';
  l->path = malloc(strlen(output) + 9);
  if (!l->path)
    return mpx__fail(MPX_ENOMEM, "out of memory");
  sprintf(l->path, "%s.mpxlock", output);
  /* The lock file is removed by its holder at the end: a run that opened
   * the old file before the removal finds, once it holds the lock, that
   * the path names another file (or none) and tries again. */
  for (int tries = 0; tries < 100; tries++) {
    int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      int e = errno;
      int rc =
          mpx__fail(e == EISDIR ? MPX_EFILE : MPX_EIO,
                    "cannot create the lock '%s': %s", l->path, strerror(e));
      mpx__lock_release(l);
      return rc;
    }
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
      int e = errno;
      if (e == EAGAIN || e == EACCES) {
        char who[256];
        read_holder(fd, who, sizeof who);
        close(fd);
        int rc = mpx__fail(MPX_EBUSY,
                           "the output '%s' is being written by another job "
                           "(%s; lock '%s'); wait for it to end, or stop it "
                           "first",
                           output, who[0] ? who : "holder unknown", l->path);
        mpx__lock_release(l);
        return rc;
      }
      /* No locks on this file system: say so, and go on. */
      snprintf(l->warning, sizeof l->warning,
               "warning: cannot lock '%s' (%s): the file system has no "
               "locks; make sure no other job writes the output at the same "
               "time",
               l->path, strerror(e));
      l->fd = fd;
      return 0;
    }
    struct stat a, b;
    if (fstat(fd, &a) != 0 || stat(l->path, &b) != 0 || a.st_dev != b.st_dev ||
        a.st_ino != b.st_ino) {
      close(fd); /* removed by the holder we waited behind: again */
      continue;
    }
    char t[64], who[512];
    mpx__iso_time(t, sizeof t);
    int n = snprintf(who, sizeof who, "pid %ld on host %s, since %s\n",
                     (long)getpid(), mpx__hostname(), t);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, who, (size_t)n, 0) != n) {
      /* The holder text is a courtesy; the lock itself is held. */
    }
    l->fd = fd;
    return 0;
  }
  mpx__lock_release(l);
  return mpx__fail(MPX_EBUSY,
                   "cannot take the lock of '%s': it keeps "
                   "changing under other jobs",
                   output);
}

void mpx__lock_release(mpx__lock *l) {
  if (l->fd >= 0) {
    /* Removed while held, so that nobody locks the old file after us. */
    unlink(l->path);
    close(l->fd);
  }
  l->fd = -1;
  free(l->path);
  l->path = NULL;
}
