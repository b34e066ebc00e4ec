/*
 * util.c -- time, sleeping, allocation and environment helpers.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mpx.h"
#include "util.h"
#ifdef MPX_SMPI
#include <simgrid/engine.h>
#endif

/* Returns CLOCK_MONOTONIC in seconds (under SMPI the simulated clock,
 * read without the benchmark timer clock_gettime costs there). */
double mpx__now(void) {
#ifdef MPX_SMPI
  return simgrid_get_clock();
#endif
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Sleeps us microseconds, or yields the CPU when us is 0. */
#ifdef MPX_SMPI
static double sim_idle_take(void);
#endif

void mpx__sleep_us(unsigned us) {
#ifdef MPX_SMPI
  /* Simulated time (smpicc turns nanosleep into SMPI's sleep); the vain
   * polls before it pass with it. */
  double s = 1e-6 * (double)us + sim_idle_take();
  struct timespec sts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  if (s > 0)
    nanosleep(&sts, NULL);
  return;
#endif
  if (us == 0) {
    sched_yield();
    return;
  }
  struct timespec ts = {.tv_sec = us / 1000000u,
                        .tv_nsec = (long)(us % 1000000u) * 1000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int mpx__cond_init(pthread_cond_t *cv) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
  return rc;
}

double mpx__cond_sleep_locked(pthread_cond_t *cv, pthread_mutex_t *mu, long us,
                              double deadline) {
  double t0 = mpx__now();
  double until = us >= 0 ? t0 + 1e-6 * (double)us : deadline;
  if (deadline >= 0 && deadline < until)
    until = deadline;
  if (until <= t0)
    return 0;
#ifdef MPX_SMPI
  (void)cv;
  pthread_mutex_unlock(mu);
  mpx__sleep_us((unsigned)((until - t0) * 1e6 + 0.5));
  pthread_mutex_lock(mu);
#else
  struct timespec ts = mpx__timespec(until);
  pthread_cond_timedwait(cv, mu, &ts);
#endif
  return mpx__now() - t0;
}

/* The default 50 us timer slack would make every back-off step at least
 * that long; the pool's pollers want their short sleeps short. */
void mpx__low_timer_slack(void) {
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
}

/* A pause hint for spin loops. With more runnable threads than cores (the
 * usual case on a shared node, and MPI's oversubscribed runs) a pause
 * keeps the core from the thread we are waiting for, so the step yields
 * instead unless MPX_SPIN_YIELD=0. */
static int spin_yield;
static pthread_once_t spin_once = PTHREAD_ONCE_INIT;

static void spin_init(void) {
  spin_yield = (int)mpx__env_long("MPX_SPIN_YIELD", 1);
}

void mpx__cpu_relax(void) {
#ifdef MPX_SMPI
  mpx__sim_charge(MPX__SIM_YIELD, 0);
  return;
#endif
  pthread_once(&spin_once, spin_init);
  if (spin_yield) {
    sched_yield();
    return;
  }
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

void mpx__backoff_init(mpx__backoff *b) {
  b->spin_s = 1e-6 * (double)mpx__env_long("MPX_WORKER_SPIN_US", 200);
  b->sleep_max = (unsigned)mpx__env_long("MPX_IDLE_SLEEP_US", 1000);
  mpx__backoff_active(b);
}

void mpx__backoff_active(mpx__backoff *b) {
  b->last_active = mpx__now();
  b->sleep_us = 1;
}

void mpx__backoff_idle(mpx__backoff *b) {
  if (mpx__now() - b->last_active < b->spin_s) {
    mpx__cpu_relax();
    return;
  }
  mpx__sleep_us(b->sleep_us);
  if (b->sleep_us < b->sleep_max)
    b->sleep_us *= 2;
  if (b->sleep_us > b->sleep_max)
    b->sleep_us = b->sleep_max;
}

/* malloc aligns to 16 on our platforms; ask for at least one byte so that a
 * zero-length result is still a distinct, freeable pointer. */
/* Buffers from this size on are backed by transparent huge pages: on the
 * VMs we measured, faulting in fresh 4 KiB pages cost 2.7 s per GiB
 * against 0.06 s with huge pages, and results, received tails and staged
 * rows are all fresh memory. */
#define HUGE_FROM ((size_t)2 << 20)

void *mpx__alloc(size_t len) {
  if (len < HUGE_FROM)
    return malloc(len ? len : 1);
  if (len > SIZE_MAX - HUGE_FROM)
    return NULL; /* rounding up would wrap */
  void *p = NULL;
  size_t round = (len + HUGE_FROM - 1) & ~(HUGE_FROM - 1);
  if (posix_memalign(&p, HUGE_FROM, round) != 0)
    return NULL;
  madvise(p, round, MADV_HUGEPAGE);
  return p;
}

static char host[256];
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static void host_init(void) {
  if (gethostname(host, sizeof host - 1) != 0)
    strcpy(host, "unknown-host");
  host[sizeof host - 1] = 0;
}

/* Returns the host name, looked up once per process. */
const char *mpx__hostname(void) {
  pthread_once(&host_once, host_init);
  return host;
}

/* Parses a non-negative integer environment variable. */
long mpx__env_long(const char *name, long def) {
  const char *s = getenv(name);
  if (!s || !*s)
    return def;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < 0)
    return def;
  return v;
}

/* Parses a non-negative double environment variable. */
/* The number at the start of the variable name, its unit suffix (the
 * rest) in *rest; 0 when unset, empty or not a number. */
static int env_number(const char *name, double *v, const char **rest) {
  const char *s = getenv(name);
  if (!s || !*s)
    return 0;
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  *rest = end;
  return errno == 0 && end != s;
}

double mpx__env_double(const char *name, double def) {
  double v;
  const char *rest;
  if (!env_number(name, &v, &rest) || *rest || !(v >= 0))
    return def;
  return v;
}

uint64_t mpx__env_bytes(const char *name, uint64_t def) {
  double v, mult = 1;
  const char *end;
  if (!env_number(name, &v, &end))
    return def;
  if (*end == 'k' || *end == 'K')
    mult = 1024.0, end++;
  else if (*end == 'm' || *end == 'M')
    mult = 1024.0 * 1024.0, end++;
  else if (*end == 'g' || *end == 'G')
    mult = 1024.0 * 1024.0 * 1024.0, end++;
  if (*end == 'i' || *end == 'I')
    end++;
  if (*end == 'b' || *end == 'B')
    end++;
  if (*end || !(v >= 0) || v * mult > 1.8e19)
    return def;
  return (uint64_t)(v * mult);
}

int mpx__same_file(const char *path, int fd, const char *what) {
  struct stat a, b;
  if (fstat(fd, &a) != 0)
    return 0;
  if (stat(path, &b) != 0)
    return mpx__fail(MPX_EIO,
                     "the %s '%s' was removed while the job ran (%s); what "
                     "was written to it is lost: run the job again",
                     what, path, strerror(errno));
  if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
    return mpx__fail(MPX_EIO,
                     "the %s '%s' was removed or replaced by another file "
                     "while the job ran; what was written to it is lost: "
                     "run the job again",
                     what, path);
  return 0;
}

double mpx__deadline(double timeout) {
  if (timeout == MPX_FOREVER)
    return -1.0;
  double now = mpx__now();
  return timeout > 0 ? now + timeout : now;
}

int mpx__timeout_polls(double timeout) {
  return timeout != MPX_FOREVER && timeout <= 0;
}

int mpx__timeout_nan(double timeout, const char *call) {
  if (isnan(timeout))
    return mpx__fail(MPX_EINVAL,
                     "%s: the timeout is NaN (seconds, or MPX_FOREVER)", call);
  return 0;
}

struct timespec mpx__timespec(double deadline) {
  struct timespec ts;
  ts.tv_sec = (time_t)deadline;
  ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
  return ts;
}

void mpx__iso_time(char *buf, size_t cap) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int mpx__grow(void *bufp, size_t *cap, size_t need, size_t elem, size_t first) {
  if (need <= *cap)
    return 0;
  size_t ncap = *cap ? *cap : first;
  while (ncap < need)
    ncap = ncap > SIZE_MAX / 2 ? need : 2 * ncap;
  if (elem && ncap > SIZE_MAX / elem)
    return MPX_ENOMEM;
  void *old;
  memcpy(&old, bufp, sizeof old);
  void *n = realloc(old, ncap * elem);
  if (!n)
    return MPX_ENOMEM;
  memcpy(bufp, &n, sizeof n);
  *cap = ncap;
  return 0;
}

int mpx__write_all(int fd, const void *buf, size_t len) {
  const unsigned char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

#ifdef MPX_SMPI
/* The costs, measured on the real machine (docs/simulation.md). */
static const char *const sim_names[MPX__SIM_N] = {
    "send_call",   "recv_result", "submit",    "scan", "recv_call",
    "send_result", "poll",        "yield",     "map",  "relay",
    "take",        "pack",        "pack_fixed"};
static double sim_base[MPX__SIM_N] = {1.2e-6,  1.1e-6, 0.46e-6, 0, 1.0e-6,
                                      0.8e-6,  0.1e-6, 0.9e-6,  0, 1.0e-6,
                                      0.39e-6, 0,      0};
/* A map input costs 0.04 us on the root, half packing it and half
 * yielding its result; an element of an array map packs in a tenth of
 * that (callgrind's instructions per input, docs/simulation.md). */
static double sim_per[MPX__SIM_N] = {0.26e-6, 0.29e-6, 0,   5e-9, 0.25e-6,
                                     0.02e-6, 0,       0,   2e-8, 0.05e-6,
                                     0,       2e-8,    2e-9};
static int sim_relay; /* this rank is a sub-manager */

void mpx__sim_relay(void) {
  sim_relay = 1;
}
/* Vain polls and yields not yet passed: they pass with the next charge or
 * sleep, one simulator call instead of one each. */
static double sim_idle;
static pthread_once_t sim_once = PTHREAD_ONCE_INIT;

/* Reads MPX_SIM_COSTS: name=base[:per], comma separated. */
static void sim_init(void) {
  const char *s = getenv("MPX_SIM_COSTS");
  while (s && *s) {
    size_t n = strcspn(s, "=");
    for (int i = 0; i < MPX__SIM_N && s[n] == '='; i++) {
      if (strlen(sim_names[i]) != n || strncmp(s, sim_names[i], n) != 0)
        continue;
      char *end;
      sim_base[i] = strtod(s + n + 1, &end);
      if (*end == ':')
        sim_per[i] = strtod(end + 1, &end);
    }
    s = strchr(s, ',');
    s = s ? s + 1 : NULL;
  }
}

void mpx__sim_charge(int what, double n) {
  pthread_once(&sim_once, sim_init);
  if (sim_relay && (what == MPX__SIM_RECV_CALL || what == MPX__SIM_RECV_RESULT))
    what = MPX__SIM_RELAY;
  double sec = sim_base[what] + sim_per[what] * n;
  if (what == MPX__SIM_POLL) {
    sim_idle += sec; /* passes with the next charge or sleep */
    return;
  }
  if (what == MPX__SIM_YIELD) {
    /* A spin step passes time but, as a spinner that yields does, leaves
     * the core to the ranks that compute: a sleep, not a computation. */
    sim_idle += sec;
    mpx__sleep_us(0);
    return;
  }
  sec += sim_idle_take();
  if (sec > 0)
    smpi_execute_benched(sec); /* at the host's speed: exactly sec */
}

static double sim_idle_take(void) {
  double s = sim_idle;
  sim_idle = 0;
  return s;
}
#endif
