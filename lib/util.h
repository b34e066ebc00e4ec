/*
 * util.h -- small internal helpers shared by the library's modules: error
 * recording, monotonic time, back-off sleeping and aligned allocation.
 */
#ifndef MPX_UTIL_H
#define MPX_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Empties this thread's mpx_last_error(), so that a callback's own message
 * can be told from an older one. */
void mpx__clear_error(void);

/* Records a detailed message for mpx_last_error() on this thread and returns
 * code, so callers can write `return mpx__fail(MPX_EINVAL, "...")`. */
int mpx__fail(int code, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* How many messages this thread has recorded so far: a public call takes
 * it on entry and hands it to mpx__fail_call() on failure. */
unsigned long mpx__error_seq(void);

/* Names the public call in this thread's message for its failure rc: keeps
 * a message set since seq behind "call: " (once), or writes "call: " and
 * mpx_strerror(rc) when none was set, so that a failure never shows an
 * older, unrelated message. Returns rc (0 and positive values untouched). */
int mpx__fail_call(int rc, const char *call, unsigned long seq);

/* Monotonic time in seconds. */
double mpx__now(void);

/* The absolute timespec of a deadline on the mpx__now() clock, for
 * pthread_cond_timedwait on a condition variable using CLOCK_MONOTONIC. */
struct timespec mpx__timespec(double deadline);

/* The current UTC time as "2026-12-02T04:21:32Z" into buf. */
void mpx__iso_time(char *buf, size_t cap);

/* The absolute deadline (mpx__now() clock) of a relative timeout, by the
 * one rule of every call that takes one: MPX_FOREVER (and only it) waits
 * without limit (-1.0 here), any other value <= 0 polls (the deadline is
 * now), a positive one waits that long. Callers refuse NaN first
 * (mpx__timeout_nan). */
double mpx__deadline(double timeout);

/* 1 when timeout polls (any value <= 0 but MPX_FOREVER), else 0. */
int mpx__timeout_polls(double timeout);

/* MPX_EINVAL ("<call>: the timeout is NaN") for a NaN timeout, else 0. */
int mpx__timeout_nan(double timeout, const char *call);

/* Sleeps for about the given number of microseconds (0 yields). */
void mpx__sleep_us(unsigned us);

/* Initialises cv on CLOCK_MONOTONIC, the mpx__now() clock that
 * mpx__timespec() deadlines and mpx__cond_sleep_locked() use. Returns
 * pthread_cond_init()'s result. */
int mpx__cond_init(pthread_cond_t *cv);

/* A caller-progress wait's back-off sleep, with mu held by the caller and
 * released meanwhile: us microseconds (us < 0: no limit of its own), ending
 * at deadline (mpx__now() clock, < 0: none) at the latest; it returns at
 * once when neither bounds it or the end has passed. The sleep is on cv
 * (from mpx__cond_init()), so a signal or broadcast by another thread ends
 * it early; under SimGrid's SMPI (MPX_SMPI) it is mpx__sleep_us() in
 * simulated time instead (a rank there is a context of one simulator
 * thread, its clock the simulated one, and no other thread of the rank
 * exists to signal it). Returns the seconds it took, which the caller adds
 * to the pool's idle time (mpx_executor_idle_seconds). */
double mpx__cond_sleep_locked(pthread_cond_t *cv, pthread_mutex_t *mu, long us,
                              double deadline);

/* Lowers this thread's timer slack so that short sleeps are short. */
void mpx__low_timer_slack(void);

/* CPU pause hint for spin loops. */
void mpx__cpu_relax(void);

/* The idle back-off of a rank's polling loop (a worker's, a
 * sub-manager's): it spins (mpx__cpu_relax) for MPX_WORKER_SPIN_US after
 * its last activity, then sleeps 1, 2, 4... us up to MPX_IDLE_SLEEP_US,
 * so that an idle rank leaves the core to busy ones. */
typedef struct mpx__backoff {
  double spin_s, last_active;
  unsigned sleep_us, sleep_max;
} mpx__backoff;
void mpx__backoff_init(mpx__backoff *b);
/* Something moved: spin again. */
void mpx__backoff_active(mpx__backoff *b);
/* Nothing moved: one spin step or one sleep. */
void mpx__backoff_idle(mpx__backoff *b);

/* n rounded up to a multiple of 8: payloads in messages, chunk results and
 * typed arrays start 8-byte aligned. */
static inline uint64_t mpx__pad8(uint64_t n) {
  return (n + 7u) & ~(uint64_t)7u;
}

/* Grows the array whose pointer is at bufp (a T **, holding *cap elements
 * of elem bytes) to hold at least need elements, doubling from first
 * (capacities never shrink). Returns 0, or MPX_ENOMEM without setting a
 * message (the caller says what ran out) and the array unchanged. */
int mpx__grow(void *bufp, size_t *cap, size_t need, size_t elem, size_t first);

/* Allocates len bytes (at least 1) aligned to 8 bytes; free with free(). */
void *mpx__alloc(size_t len);

/* The host name of this process (cached, static storage). */
const char *mpx__hostname(void);

/* MPX_EIO (with a message naming the file as "the <what> '<path>'") when
 * path no longer names the file open as fd (removed, or replaced), else 0.
 * A job checks this at every commit: writes to an unlinked file succeed. */
int mpx__same_file(const char *path, int fd, const char *what);

/* Reads a non-negative integer or double from the environment; returns def
 * when unset or malformed. */
long mpx__env_long(const char *name, long def);
double mpx__env_double(const char *name, double def);
/* Reads a byte count ("512M", "2G", "1.5GiB", "4096") from the
 * environment; returns def when unset or malformed. */
uint64_t mpx__env_bytes(const char *name, uint64_t def);

/* Costs charged as simulated computation under SimGrid's SMPI (MPX_SMPI):
 * there the library's own CPU time is not benchmarked
 * (smpi/simulate-computation:no, docs/simulation.md), so the costs
 * measured on real hardware are charged at the points where they arise,
 * each base + per x n seconds (n: the tasks in a message, the workers a
 * dispatch visited). MPX_SIM_COSTS overrides them ("send_call=1.2e-6:8e-8,
 * poll=2e-7"). Without MPX_SMPI nothing is charged and nothing is built. */
enum {
  MPX__SIM_SEND_CALL,   /* root: encode and send a call item of n tasks */
  MPX__SIM_RECV_RESULT, /* root: receive n results and finish their
                           futures */
  MPX__SIM_SUBMIT,      /* root: one submit */
  MPX__SIM_SCAN,        /* root: n worker slots visited by a dispatch */
  MPX__SIM_RECV_CALL,   /* worker: receive a call item, run its n tasks
                           (the tasks' own time is theirs) */
  MPX__SIM_SEND_RESULT, /* worker: encode and send n results */
  MPX__SIM_POLL,        /* any rank: a poll that found nothing */
  MPX__SIM_YIELD,       /* any rank: a spin step's yield (mpx__cpu_relax) */
  MPX__SIM_MAP,         /* root: n results of a map chunk parsed and
                           yielded by mpx_map_next */
  MPX__SIM_RELAY,       /* sub-manager: receive a message of n items and
                           queue or gather them (it runs no task and owns
                           no future: charged instead of recv_call and
                           recv_result there) */
  MPX__SIM_TAKE,        /* root: the program takes a finished future from
                           mpx_as_completed_next (with its result, its
                           destroy and its share of the iterator's set-up) */
  MPX__SIM_PACK,        /* root: n inputs of a map chunk produced and
                           packed one by one (a producer, args[]) */
  MPX__SIM_PACK_FIXED,  /* root: n fixed-size elements of an array map
                           packed in one pass */
  MPX__SIM_N
};
#ifdef MPX_SMPI
void mpx__sim_charge(int what, double n);
/* This rank is a sub-manager: its receives are charged as relays. */
void mpx__sim_relay(void);
#else
#define mpx__sim_charge(what, n) ((void)0)
#define mpx__sim_relay() ((void)0)
#endif

/* Writes all of buf to fd (again after EINTR and short writes);
 * async-signal-safe. Returns 0 or -1 (errno set). */
int mpx__write_all(int fd, const void *buf, size_t len);

#endif
