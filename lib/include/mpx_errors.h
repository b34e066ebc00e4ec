/*
 * mpx_errors.h -- the error codes of mpx, generated from one table.
 *
 * Every fallible mpx call returns 0 or one of these negative codes. The
 * values never change once released; new codes are appended. The same
 * table generates mpx_strerror() and mpx_err_name().
 */
#ifndef MPX_ERRORS_H
#define MPX_ERRORS_H

/* X(name, value, message) */
#define MPX_ERRNO_MAP(X)                                                       \
  X(EINVAL, -1, "invalid argument")                                            \
  X(ENOMEM, -2, "out of memory")                                               \
  X(ENOTASK, -3, "unknown task name")                                          \
  X(EEXIST, -4, "task name already registered")                                \
  X(ETIMEDOUT, -5, "timed out")                                                \
  X(ECANCELED, -6, "future was cancelled")                                     \
  X(ETASK, -7, "task failed")                                                  \
  X(EBROKEN, -8, "process pool is broken")                                     \
  X(ESHUTDOWN, -9, "executor is shut down")                                    \
  X(EBUSY, -10,                                                                \
    "resource busy (future running or finished, or executor "                  \
    "still live)")                                                             \
  X(EDEADLK, -11, "blocking wait from the manager thread would deadlock")      \
  X(EMPI, -12, "MPI call failed")                                              \
  X(EPROTO, -13, "malformed or unknown message")                               \
  X(EMISMATCH, -14, "ranks registered different tasks")                        \
  X(ETHREAD, -15,                                                              \
    "MPI thread support below what the pool needs (MPI_THREAD_FUNNELED, "      \
    "MPI_THREAD_SERIALIZED for a manager thread)")                             \
  X(EOF, -16, "iterator exhausted")                                            \
  X(ESYS, -17, "system call failed")                                           \
  X(E2BIG, -18, "argument too large")                                          \
  X(EIO, -19, "input/output error on a file")                                  \
  X(ESCHEMA, -20,                                                              \
    "result arrays do not match the output's names, types or widths")          \
  X(EFILE, -21, "output file exists or belongs to another job")                \
  X(ECORRUPT, -22,                                                             \
    "output or its completion record is damaged or does not match")            \
  X(EINTR, -23, "interrupted by a signal; what was committed is kept")         \
  X(ECRASHED, -24, "task's process was killed by a signal")                    \
  X(EEXIT, -25, "task ended its process (exit() inside a task)")               \
  X(ETIMELIMIT, -26, "task exceeded its time limit")                           \
  X(EMEMLIMIT, -27, "task exceeded its memory limit")                          \
  X(ELAUNCH, -28,                                                              \
    "started by the launcher of another MPI: each process sees itself alone")

enum mpx_errno {
#define MPX_ERRNO_ENUM(name, value, msg) MPX_##name = value,
  MPX_ERRNO_MAP(MPX_ERRNO_ENUM)
#undef MPX_ERRNO_ENUM
};

#endif
