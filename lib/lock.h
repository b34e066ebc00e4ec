/*
 * lock.h -- one writer per output: an exclusive lock on path + ".mpxlock",
 * held by the job for its whole run, with the holder (host, PID, start
 * time) written inside so that a second run can say who holds it.
 *
 * The lock is an open-file-description fcntl lock (F_OFD_SETLK): released
 * by the kernel when the process dies, whatever killed it, so a killed job
 * never leaves a stale lock. fcntl locks work on local file systems, on
 * NFS (through the NFS lock manager) and on Lustre mounted with -o flock;
 * where the file system refuses locks the job goes on unlocked and says so
 * in its report.
 */
#ifndef MPX_LOCK_H
#define MPX_LOCK_H

typedef struct mpx__lock {
  int fd;
  char *path;
  char warning[512]; /* why the file system gave no lock, or "" */
} mpx__lock;

/* Takes the lock of output path without waiting (or, where the file
 * system has no locks, goes on without one and says why in warning).
 * Returns 0, MPX_EBUSY
 * (another process holds it; the message names the holder), MPX_EIO,
 * MPX_ENOMEM. */
int mpx__lock_take(const char *output, mpx__lock *l);

/* Removes the lock file and releases the lock. Accepts a lock not taken. */
void mpx__lock_release(mpx__lock *l);

#endif
