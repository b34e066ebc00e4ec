/*
 * supervise.c -- supervised task processes (see supervise.h and
 * docs/supervision.md for the design and the measurements behind it).
 *
 * The supervisor forks each task process itself, when the first item
 * needs it, so a task process sees the program as it was when the pool
 * was created (Python's fork start method). The rules the child follows,
 * each from a measurement in docs/supervision.md: it dies with its parent
 * (PR_SET_PDEATHSIG), the MPI library's crash handlers are replaced by
 * ours (which only send a death note and die), it closes every other task
 * process's socket, it never calls MPI, and it leaves only through _exit,
 * so no exit handler of the parent (HDF5's, MPI's) runs in it.
 *
 * Frames, both ways: a 24-byte header {u32 kind, i32 id or status, u64
 * len, u64 extra} and len bytes padded to 8, so every payload is 8-byte
 * aligned. To the child: TASK (extra: flags). From the child: READY (its
 * initializer ran), RESULT (extra: run time in us), NOTE (a death note:
 * status is the signal, or -1 for exit(); extra: exit code | errno << 16)
 * and INITFAIL (the initializer failed; payload: its message).
 *
 * Several tasks are in flight per process, so tiny tasks cost a syscall
 * per batch rather than per task. The child sends its results when it
 * runs out of input, when they are 1 ms old, and after every task that has
 * a time limit, so the supervisor always knows which task is running: the
 * first one not answered. It started when the previous answer came.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sched.h>

#include "registry.h"
#include "supervise.h"
#include "task.h"
#include "util.h"

enum { F_TASK = 1, F_RESULT = 2, F_READY = 3, F_NOTE = 4, F_INITFAIL = 5 };
#define HDR 24
#define FLAG_EAGER 1u /* the task has a time limit: answer at once */

/* Per process: at most this many tasks, or this many bytes, in flight. */
#define DEPTH_TASKS 64
#define DEPTH_BYTES ((size_t)1 << 20)

typedef struct frame_hdr {
  uint32_t kind;
  int32_t id;
  uint64_t len;
  uint64_t extra;
} frame_hdr;

/* ---- the task process --------------------------------------------------- */

/* The child's state, static so that its signal handlers reach it. */
static int c_fd = -1;
static unsigned char *c_out; /* results not yet sent */
static size_t c_out_len, c_out_cap;

/* Sends the results gathered so far; async-signal-safe. */
static void c_flush(void) {
  if (c_out_len && mpx__write_all(c_fd, c_out, c_out_len) != 0)
    _exit(0); /* the supervisor is gone */
  c_out_len = 0;
}

/* Sends a frame header only (no payload); async-signal-safe. */
static void c_send_note(uint32_t kind, int32_t id, uint64_t extra) {
  frame_hdr h = {kind, id, 0, extra};
  mpx__write_all(c_fd, &h, sizeof h);
}

/* A fatal signal in a task: send what is done, then a note naming the
 * signal and errno (an allocation that failed under the memory limit
 * leaves ENOMEM), then die of the signal, its default action restored by
 * SA_RESETHAND. */
static void c_on_signal(int sig) {
  int e = errno;
  c_flush();
  c_send_note(F_NOTE, sig, (uint64_t)e << 16);
  raise(sig); /* blocked until the handler returns, then fatal */
}

/* exit() inside a task: registered last, so it runs first and no other
 * exit handler of the program runs in a task process. */
static void c_on_exit(int code, void *arg) {
  (void)arg;
  int e = errno;
  c_flush();
  c_send_note(F_NOTE, -1, ((uint64_t)e << 16) | (uint64_t)(code & 0xff));
  _exit(code);
}

/* Appends a frame to the child's output. Returns 0 or -1 (no memory). */
static int c_append(uint32_t kind, int32_t status, const void *data, size_t len,
                    uint64_t extra) {
  size_t need = c_out_len + HDR + mpx__pad8(len);
  if (mpx__grow(&c_out, &c_out_cap, need, 1, 65536) != 0)
    return -1;
  frame_hdr h = {kind, status, len, extra};
  memcpy(c_out + c_out_len, &h, HDR);
  if (len)
    memcpy(c_out + c_out_len + HDR, data, len);
  memset(c_out + c_out_len + HDR + len, 0, mpx__pad8(len) - len);
  c_out_len = need;
  return 0;
}

/* Address space in use now, in bytes (from /proc/self/statm), or 0. */
static uint64_t vm_size(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (f) {
    if (fscanf(f, "%lu", &pages) != 1)
      pages = 0;
    fclose(f);
  }
  return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Sets up the task process: see the rules at the top of this file. */
static void c_setup(const mpx__sup_config *c, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(0);
  setpgid(0, 0); /* so that a kill reaches what the task starts */
  static char altstack[65536];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack};
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = c_on_signal;
  sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL,
                              SIGABRT, SIGSYS, SIGTRAP};
  for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
    sigaction(fatal[i], &sa, NULL);
  /* The program's own handlers (mpx_job_interrupt's, say) must not keep a
   * time-limited task alive; a terminal's ^C is the supervisor's to
   * handle, not the task's. */
  static const int dfl[] = {SIGPIPE, SIGCHLD, SIGTERM,
                            SIGHUP,  SIGALRM, SIGQUIT};
  for (size_t i = 0; i < sizeof dfl / sizeof dfl[0]; i++)
    signal(dfl[i], SIG_DFL);
  /* ^C, and a batch system's warning (SLURM's --signal reaches every
   * process of a step), are for the rank, which stops the job and then
   * the task processes; a task that wants them installs its handler. */
  signal(SIGINT, SIG_IGN);
  signal(SIGUSR1, SIG_IGN);
  signal(SIGUSR2, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (!getenv("MPX_TASK_CORE")) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core); /* a crash storm writes no cores */
  }
  if (c->mem_limit) {
    uint64_t lim = vm_size() + c->mem_limit;
    struct rlimit rl = {(rlim_t)lim, (rlim_t)lim};
    setrlimit(RLIMIT_AS, &rl);
  }
  on_exit(c_on_exit, NULL);
}

/* Reads into *buf (growing it) until it holds at least need bytes.
 * Returns 0, or -1 at EOF. With nonblock, returns 1 when nothing more is
 * there right now. */
static int c_read(unsigned char **buf, size_t *len, size_t *cap, size_t need,
                  int nonblock) {
  while (*len < need || nonblock) {
    if (mpx__grow(buf, cap, need > *len + 4096 ? need : *len + 4096, 1,
                  65536) != 0)
      _exit(0); /* the supervisor sees EOF and reports it */
    ssize_t n =
        recv(c_fd, *buf + *len, *cap - *len, nonblock ? MSG_DONTWAIT : 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && nonblock && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 1;
    if (n <= 0)
      return -1;
    *len += (size_t)n;
    if (nonblock)
      return 0;
  }
  return 0;
}

/* The task process's life: initializer, then tasks until EOF. */
static void c_main(const mpx__sup_config *c, pid_t parent, int fd) {
  c_fd = fd;
  c_setup(c, parent);
  void *res = NULL;
  size_t rlen = 0;
  if (c->init_id >= 0) {
    int st = mpx__task_run((uint32_t)c->init_id, c->init_arg, c->init_len,
                           c->rank, c->size, &res, &rlen);
    if (st != 0) {
      c_append(F_INITFAIL, st, res, res ? rlen : 0, 0);
      c_flush();
      _exit(0);
    }
    free(res);
  }
  c_send_note(F_READY, 0, 0);
  unsigned char *in = NULL;
  size_t in_len = 0, in_cap = 0, pos = 0;
  double oldest = 0;
  for (;;) {
    frame_hdr h;
    int have = in_len - pos >= HDR;
    if (have) {
      memcpy(&h, in + pos, HDR);
      have = in_len - pos - HDR >= mpx__pad8(h.len);
    }
    if (!have) {
      if (pos > 0) { /* keep frames 8-aligned at the buffer's start */
        memmove(in, in + pos, in_len - pos);
        in_len -= pos;
        pos = 0;
      }
      size_t need = HDR;
      if (in_len >= HDR) {
        memcpy(&h, in, HDR);
        need = HDR + mpx__pad8(h.len);
      }
      if (c_out_len) {
        int r = c_read(&in, &in_len, &in_cap, need, 1);
        if (r == 1)
          c_flush(); /* nothing more to do now: answer */
        else if (r < 0)
          _exit(0);
        continue;
      }
      if (c_read(&in, &in_len, &in_cap, need, 0) != 0)
        _exit(0); /* the supervisor closed the socket: done */
      continue;
    }
    if (h.kind != F_TASK)
      _exit(2);
    double t0 = mpx__now();
    if (c_out_len && t0 - oldest >= 0.001)
      c_flush();
    int st = mpx__task_run((uint32_t)h.id, in + pos + HDR, (size_t)h.len,
                           c->rank, c->size, &res, &rlen);
    double t1 = mpx__now(), us = (t1 - t0) * 1e6;
    pos += HDR + mpx__pad8(h.len);
    if (c_out_len == 0)
      oldest = t1;
    if (c_append(F_RESULT, st, res, res ? rlen : 0,
                 us >= 4294967295.0 ? UINT32_MAX : (uint64_t)us) != 0) {
      static const char oom[] = "out of memory in the task process for the "
                                "result";
      if (c_append(F_RESULT, MPX_ENOMEM, oom, sizeof oom - 1, 0) != 0)
        _exit(3);
    }
    free(res);
    res = NULL;
    if (h.extra & FLAG_EAGER)
      c_flush();
  }
}

/* ---- the supervisor ------------------------------------------------------ */

/* A map chunk being run input by input. */
typedef struct chunk {
  uint64_t tag;
  uint64_t n, left;
  int *st;
  void **res;
  size_t *rl; /* failure texts count their NUL */
  uint32_t busy;
  int started; /* some input was sent to a process */
} chunk;

typedef struct job {
  uint64_t tag;
  uint32_t task_id;
  const void *arg;
  size_t len;
  double limit;
  chunk *parent; /* NULL for a plain item */
  uint64_t idx;  /* its input in parent */
  struct job *next;
} job;

typedef struct done_node {
  mpx__sup_outcome oc;
  struct done_node *next;
} done_node;

enum { KILL_NONE, KILL_TIME, KILL_TERMINATE, KILL_RETIRE, KILL_EOF };

typedef struct slot {
  pid_t pid; /* 0: no process */
  int fd;
  int pidfd;        /* readable when the process ends (pidfd_open), or -1 */
  int ready;        /* its initializer ran */
  job *head, *tail; /* sent, not answered; head is the one running */
  size_t nflight, flight_bytes;
  unsigned char *w; /* frames not yet written */
  size_t wlen, wpos, wcap;
  unsigned char *r; /* bytes read, not yet parsed */
  size_t rlen, rcap;
  double cur_start; /* when head started */
  int tasks;        /* tasks sent to this process */
  int retiring;     /* max_tasks reached: closes once answered */
  int kill_why;     /* KILL_* */
  int term_sent;
  double kill_at;
  const job *timed; /* the job that ran out of time (KILL_TIME) */
  int noted, note_sig, note_code, note_errno;
  int note_first; /* the death note came before any kill of ours */
  char init_msg[512];
  int init_failed;
  int started; /* a process ran here before: replace it when it ends */
} slot;

struct mpx__sup {
  mpx__sup_config c;
  slot *slots;
  job *qhead, *qtail; /* not yet sent */
  done_node *dhead, *dtail;
  size_t pending; /* items added, outcome not yet returned */
  size_t queued;  /* jobs in the queue and in flight */
  int wake_fd;
  double task_s;    /* moving average of a task's run time, < 0 unknown */
  char broken[640]; /* the processes cannot start: every item fails */
  pid_t self;
};

int mpx__cpus_allowed(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0)
      return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

void mpx__sup_config_init(mpx__sup_config *c, const mpx_executor_options *o,
                          const mpx__pool_init *pi, int rank, int size,
                          int nprocs) {
  memset(c, 0, sizeof *c);
  c->nprocs = nprocs;
  c->rank = rank;
  c->size = size;
  c->time_limit = o->task_timeout;
  c->kill_grace = mpx__env_double("MPX_KILL_GRACE", 1.0);
  c->mem_limit = o->memory_limit;
  c->max_tasks = o->max_tasks_per_child;
  c->init_id = pi ? pi->id : -1;
  c->init_arg = pi ? pi->arg : NULL;
  c->init_len = pi ? pi->len : 0;
}

int mpx__sup_create(const mpx__sup_config *c, mpx__sup **out) {
  mpx__sup *s = calloc(1, sizeof *s);
  if (!s || !(s->slots = calloc((size_t)c->nprocs, sizeof *s->slots))) {
    free(s);
    return mpx__fail(MPX_ENOMEM, "out of memory for a task process pool");
  }
  s->c = *c;
  s->wake_fd = -1;
  s->task_s = -1;
  s->self = getpid();
  for (int i = 0; i < c->nprocs; i++)
    s->slots[i].fd = s->slots[i].pidfd = -1;
  *out = s;
  return 0;
}

void mpx__sup_set_wake(mpx__sup *s, int fd) {
  s->wake_fd = fd;
}

size_t mpx__sup_pending(const mpx__sup *s) {
  return s->pending;
}

size_t mpx__sup_running(const mpx__sup *s) {
  return s->queued;
}

static void push_done(mpx__sup *s, uint64_t tag, int status, void *data,
                      size_t len, uint32_t busy) {
  done_node *d = malloc(sizeof *d);
  if (!d) {
    /* No memory even to report: keep it in the slot of the next outcome
     * would lose it, so wait for memory (this is a few dozen bytes). */
    while (!(d = malloc(sizeof *d)))
      mpx__sleep_us(1000);
  }
  d->oc = (mpx__sup_outcome){tag, status, data, len, busy};
  d->next = NULL;
  if (s->dtail)
    s->dtail->next = d;
  else
    s->dhead = d;
  s->dtail = d;
}

/* Copies len bytes plus a NUL. */
static void *dup0(const void *p, size_t len) {
  char *d = malloc(len + 1);
  if (d) {
    if (len)
      memcpy(d, p, len);
    d[len] = '\0';
  }
  return d;
}

/* Finishes one job with an outcome (data malloc'd, may be NULL for none),
 * and its item when that was the last of a chunk. */
static void job_done(mpx__sup *s, job *j, int status, void *data, size_t len,
                     uint32_t busy) {
  chunk *c = j->parent;
  s->queued--;
  if (!c) {
    if (!data) {
      static const char oom[] = "out of memory for the outcome";
      status = status ? status : MPX_ENOMEM;
      data = dup0(oom, sizeof oom - 1);
      len = data ? sizeof oom - 1 : 0;
    }
    push_done(s, j->tag, status, data, len, busy);
    s->pending--;
    free(j);
    return;
  }
  c->st[j->idx] = status;
  c->res[j->idx] = data;
  c->rl[j->idx] = data ? len + (status != 0) : 0;
  if (!data && status == 0)
    c->st[j->idx] = MPX_ENOMEM;
  c->busy = c->busy + busy < c->busy ? UINT32_MAX : c->busy + busy;
  free(j);
  if (--c->left > 0)
    return;
  void *out = NULL;
  size_t olen = 0;
  int st = mpx__chunk_result_pack(c->n, c->st, c->res, c->rl, &out, &olen);
  for (uint64_t i = 0; i < c->n; i++)
    free(c->res[i]);
  if (st != 0) {
    static const char oom[] = "out of memory for a chunk's results";
    out = dup0(oom, sizeof oom - 1);
    olen = out ? sizeof oom - 1 : 0;
  }
  push_done(s, c->tag, st, out, olen, c->busy);
  s->pending--;
  free(c->st);
  free(c->res);
  free(c->rl);
  free(c);
}

static void enqueue(mpx__sup *s, job *j) {
  j->next = NULL;
  if (s->qtail)
    s->qtail->next = j;
  else
    s->qhead = j;
  s->qtail = j;
}

int mpx__sup_add(mpx__sup *s, uint64_t tag, uint32_t task_id, const void *arg,
                 size_t len, double time_limit) {
  double limit = time_limit < 0 ? s->c.time_limit : time_limit;
  if (!(task_id & MPX__TASK_CHUNK)) {
    job *j = calloc(1, sizeof *j);
    if (!j)
      return mpx__fail(MPX_ENOMEM, "out of memory for a task");
    *j = (job){tag, task_id, arg, len, limit, NULL, 0, NULL};
    enqueue(s, j);
    s->pending++;
    s->queued++;
    return 0;
  }
  uint64_t n = 0;
  int rc = mpx__chunk_arg_parse(arg, len, &n, NULL);
  if (rc)
    return rc;
  if (n == 0) { /* an empty chunk: a result of no outcomes, at once */
    void *out = NULL;
    size_t olen = 0;
    if (mpx__chunk_result_pack(0, NULL, NULL, NULL, &out, &olen) != 0)
      return mpx__fail(MPX_ENOMEM, "out of memory for a chunk");
    push_done(s, tag, 0, out, olen, 0);
    return 0;
  }
  chunk *c = calloc(1, sizeof *c);
  mpx__outcome *in = calloc(n, sizeof *in);
  job *jobs = NULL, *first = NULL;
  if (!c || !in || !(c->st = calloc(n, sizeof *c->st)) ||
      !(c->res = calloc(n, sizeof *c->res)) ||
      !(c->rl = calloc(n, sizeof *c->rl)))
    goto nomem;
  mpx__chunk_arg_parse(arg, len, &n, in);
  for (uint64_t i = n; i-- > 0;) {
    job *j = calloc(1, sizeof *j);
    if (!j)
      goto nomem;
    *j = (job){
        tag,  task_id & ~MPX__TASK_CHUNK, in[i].data, in[i].len, limit, c, i,
        first};
    if (!first)
      jobs = j; /* the last */
    first = j;
  }
  free(in);
  c->tag = tag;
  c->n = c->left = n;
  if (s->qtail)
    s->qtail->next = first;
  else
    s->qhead = first;
  s->qtail = jobs;
  s->pending++;
  s->queued += n;
  return 0;
nomem:
  while (first) {
    job *nx = first->next;
    free(first);
    first = nx;
  }
  if (c) {
    free(c->st);
    free(c->res);
    free(c->rl);
  }
  free(c);
  free(in);
  return mpx__fail(MPX_ENOMEM, "out of memory for a chunk of %llu inputs",
                   (unsigned long long)n);
}

/* ---- processes ------------------------------------------------------------
 */

/* Starts the task process of slot i. Returns 0, or a code with a message
 * (fork or socketpair failed). */
static int spawn(mpx__sup *s, int i) {
  slot *sl = &s->slots[i];
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return mpx__fail(MPX_ESYS, "cannot create a task process's socket: %s",
                     strerror(errno));
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    return mpx__fail(MPX_ESYS, "cannot start a task process: fork: %s",
                     strerror(e));
  }
  if (pid == 0) {
    close(sv[0]);
    for (int k = 0; k < s->c.nprocs; k++) {
      if (s->slots[k].fd >= 0)
        close(s->slots[k].fd);
      if (s->slots[k].pidfd >= 0)
        close(s->slots[k].pidfd);
    }
    if (s->wake_fd >= 0)
      close(s->wake_fd);
    c_main(&s->c, parent, sv[1]);
    _exit(0);
  }
  close(sv[1]);
  setpgid(pid, pid); /* as the child does: no race with a kill */
  fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  sl->pid = pid;
  sl->started = 1;
  sl->fd = sv[0];
#ifdef SYS_pidfd_open
  sl->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (sl->pidfd >= 0)
    fcntl(sl->pidfd, F_SETFD, FD_CLOEXEC);
#else
  sl->pidfd = -1;
#endif
  sl->ready = 0;
  sl->tasks = 0;
  sl->retiring = 0;
  sl->kill_why = KILL_NONE;
  sl->term_sent = 0;
  sl->noted = 0;
  sl->note_first = 0;
  sl->init_failed = 0;
  sl->wlen = sl->wpos = sl->rlen = 0;
  return 0;
}

/* Signals a task process and whatever it started (its own process group;
 * a task's children that kept its socket open would hide its death). */
static void slot_kill(const slot *sl, int sig) {
  if (kill(-sl->pid, sig) != 0)
    kill(sl->pid, sig);
}

/* Appends a TASK frame for j to the slot's write buffer. */
static int encode(slot *sl, const job *j) {
  size_t need = sl->wlen + HDR + mpx__pad8(j->len);
  if (sl->wpos > 0 && sl->wpos == sl->wlen)
    sl->wlen = sl->wpos = 0, need = HDR + mpx__pad8(j->len);
  if (mpx__grow(&sl->w, &sl->wcap, need, 1, 65536) != 0)
    return MPX_ENOMEM;
  frame_hdr h = {F_TASK, (int32_t)j->task_id, j->len,
                 j->limit > 0 ? FLAG_EAGER : 0};
  memcpy(sl->w + sl->wlen, &h, HDR);
  if (j->len)
    memcpy(sl->w + sl->wlen + HDR, j->arg, j->len);
  memset(sl->w + sl->wlen + HDR + j->len, 0, mpx__pad8(j->len) - j->len);
  sl->wlen = need;
  return 0;
}

static const char *signame(int sig) {
  switch (sig) {
  case SIGSEGV:
    return "SIGSEGV";
  case SIGBUS:
    return "SIGBUS";
  case SIGFPE:
    return "SIGFPE";
  case SIGILL:
    return "SIGILL";
  case SIGABRT:
    return "SIGABRT";
  case SIGKILL:
    return "SIGKILL";
  case SIGTERM:
    return "SIGTERM";
  case SIGINT:
    return "SIGINT";
  case SIGHUP:
    return "SIGHUP";
  case SIGPIPE:
    return "SIGPIPE";
  case SIGQUIT:
    return "SIGQUIT";
  case SIGSYS:
    return "SIGSYS";
  case SIGTRAP:
    return "SIGTRAP";
  case SIGUSR1:
    return "SIGUSR1";
  case SIGUSR2:
    return "SIGUSR2";
  case SIGALRM:
    return "SIGALRM";
  case SIGXCPU:
    return "SIGXCPU";
  default:
    return "a signal";
  }
}

/* Formats a byte count as "512 MiB". */
static void fmt_bytes(char *buf, size_t cap, uint64_t b) {
  if (b >= ((uint64_t)1 << 30) && b % ((uint64_t)1 << 30) == 0)
    snprintf(buf, cap, "%llu GiB", (unsigned long long)(b >> 30));
  else if (b >= ((uint64_t)1 << 20) && b % ((uint64_t)1 << 20) == 0)
    snprintf(buf, cap, "%llu MiB", (unsigned long long)(b >> 20));
  else if (b >= ((uint64_t)1 << 20))
    snprintf(buf, cap, "%.1f MiB", (double)b / (1 << 20));
  else
    snprintf(buf, cap, "%llu bytes", (unsigned long long)b);
}

/* The outcome of the task that was running when slot sl's process ended
 * with wait status ws: its code and a message. */
static int death_cause(const mpx__sup *s, const slot *sl, const job *j, int ws,
                       char **msg, size_t *mlen) {
  char cause[256];
  int code;
  char lim[64] = "";
  if (s->c.mem_limit)
    fmt_bytes(lim, sizeof lim, s->c.mem_limit);
  int oom = s->c.mem_limit && sl->noted && sl->note_errno == ENOMEM;
  /* Killed by a signal mpx does not send: the process crashed by itself,
   * even when its time limit passed before it was gone (a core dump being
   * written, a sanitizer reporting the crash). */
  int own_sig =
      WIFSIGNALED(ws) && WTERMSIG(ws) != SIGTERM && WTERMSIG(ws) != SIGKILL;
  if (sl->kill_why == KILL_TIME && !sl->note_first && !own_sig) {
    code = MPX_ETIMELIMIT;
    snprintf(cause, sizeof cause,
             "exceeded its time limit of %g s (stopped with %s)", j->limit,
             WIFSIGNALED(ws) ? signame(WTERMSIG(ws)) : "SIGTERM");
  } else if (sl->kill_why == KILL_TERMINATE) {
    code = MPX_ECANCELED;
    snprintf(cause, sizeof cause, "was stopped by terminate");
  } else if (sl->kill_why == KILL_EOF && !sl->noted) {
    code = MPX_ECRASHED;
    snprintf(cause, sizeof cause,
             "closed its task process's connection to mpx (a descriptor it "
             "did not open), so its process was killed");
  } else if (oom) {
    code = MPX_EMEMLIMIT;
    if (sl->note_sig > 0)
      snprintf(cause, sizeof cause,
               "exceeded its memory limit of %s (an allocation failed, then "
               "its process was killed by %s)",
               lim, signame(sl->note_sig));
    else
      snprintf(cause, sizeof cause,
               "exceeded its memory limit of %s (an allocation failed, then "
               "it called exit(%d))",
               lim, sl->note_code);
  } else if (sl->noted && sl->note_sig < 0) {
    code = MPX_EEXIT;
    snprintf(cause, sizeof cause, "called exit(%d), which ends its process",
             sl->note_code);
  } else if (WIFSIGNALED(ws) && !sl->noted &&
             (WTERMSIG(ws) == SIGTERM || WTERMSIG(ws) == SIGINT ||
              WTERMSIG(ws) == SIGHUP)) {
    /* Stopped from outside (scancel signals every process of a job, a
     * shutdown, a user): not the task's failure, so not recorded; the
     * job stops and a resume runs the task again. */
    code = MPX_EINTR;
    snprintf(cause, sizeof cause,
             "was stopped by %s from outside mpx (a batch system ending the "
             "job?); it is not recorded: a resume runs it again",
             signame(WTERMSIG(ws)));
  } else if (WIFSIGNALED(ws) || (sl->noted && sl->note_sig > 0)) {
    /* The note's signal when it came first: the death itself may have
     * been our SIGTERM at a time limit while it was dying slowly. */
    int sig = sl->note_first && sl->note_sig > 0 ? sl->note_sig : WTERMSIG(ws);
    code = MPX_ECRASHED;
    char late[96] = "";
    if (sl->kill_why == KILL_TIME && !sl->note_first)
      snprintf(late, sizeof late, ", dying after its time limit of %g s",
               j->limit);
    snprintf(cause, sizeof cause, "was killed by %s (%s)%s%s", signame(sig),
             strsignal(sig), late,
             sig == SIGKILL && !sl->noted
                 ? "; from outside mpx: the kernel's OOM killer or a user"
                 : "");
  } else if (WIFEXITED(ws)) {
    code = MPX_EEXIT;
    snprintf(cause, sizeof cause,
             "ended its process with status %d (_exit or exec)",
             WEXITSTATUS(ws));
  } else {
    code = MPX_ECRASHED;
    snprintf(cause, sizeof cause, "lost its process (wait status %#x)", ws);
  }
  const char *name = mpx__registry_name(j->task_id);
  const char *fmt = "task '%s' %s on rank %d of %d (host %s, task process %d)";
  int n = snprintf(NULL, 0, fmt, name ? name : "?", cause, s->c.rank, s->c.size,
                   mpx__hostname(), (int)sl->pid);
  *msg = malloc((size_t)n + 1);
  if (*msg) {
    snprintf(*msg, (size_t)n + 1, fmt, name ? name : "?", cause, s->c.rank,
             s->c.size, mpx__hostname(), (int)sl->pid);
    *mlen = (size_t)n;
  }
  return code;
}

/* Puts the jobs of list (in order) back at the front of the queue. */
static void requeue_front(mpx__sup *s, job *list) {
  if (!list)
    return;
  job *last = list;
  while (last->next)
    last = last->next;
  last->next = s->qhead;
  s->qhead = list;
  if (!s->qtail)
    s->qtail = last;
}

/* Fails a job with a copy of text. */
static void job_fail(mpx__sup *s, job *j, int code, const char *text) {
  job_done(s, j, code, dup0(text, strlen(text)), strlen(text), 0);
}

/* The process of slot sl ended (EOF) or must end (terminate, retire):
 * reaps it and settles what it held. */
static void reap(mpx__sup *s, slot *sl) {
  int ws = 0;
  /* Wait for the end without reaping, so that the pid, and the process
   * group named after it, stay this process's until the group is killed:
   * what the task started dies with it. */
  siginfo_t si;
  /* A dying process closes its descriptors a moment before it becomes a
   * zombie: give that moment (and a retiring one its exit) before taking
   * it for alive. */
  double until = mpx__now() + (sl->kill_why == KILL_RETIRE ? 1.0
                               : sl->kill_why == KILL_NONE ? 0.05
                                                           : 0.0);
  for (;;) {
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)sl->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
        si.si_pid != 0)
      break;
    double left = until - mpx__now();
    if (left <= 0)
      break;
    if (sl->pidfd >= 0) { /* readable the moment it ends */
      struct pollfd p = {sl->pidfd, POLLIN, 0};
      poll(&p, 1, (int)(left * 1000) + 1);
    } else {
      mpx__sleep_us(100);
    }
  }
  if (si.si_pid == 0 && sl->kill_why == KILL_NONE)
    sl->kill_why = KILL_EOF; /* alive, but its socket closed */
  slot_kill(sl, SIGKILL);
  if (waitpid(sl->pid, &ws, 0) < 0)
    ws = 0; /* reaped elsewhere (a program's own waitpid(-1)): the note
               alone tells */
  close(sl->fd);
  sl->fd = -1;
  if (sl->pidfd >= 0)
    close(sl->pidfd);
  sl->pidfd = -1;
  job *held = sl->head;
  sl->head = sl->tail = NULL;
  sl->nflight = sl->flight_bytes = 0;
  if (sl->init_failed || (!sl->ready && s->c.init_id >= 0)) {
    /* The initializer failed or killed its process: no process of this
     * pool can serve, as Python's pool breaks (BrokenProcessPool). */
    char why[600];
    if (sl->init_failed)
      snprintf(why, sizeof why, "%s", sl->init_msg);
    else if (WIFSIGNALED(ws))
      snprintf(why, sizeof why, "its process was killed by %s",
               signame(WTERMSIG(ws)));
    else
      snprintf(why, sizeof why, "its process ended with status %d",
               WEXITSTATUS(ws));
    snprintf(s->broken, sizeof s->broken,
             "the initializer '%s' failed on rank %d of %d (host %s): %.400s",
             mpx__registry_name((uint32_t)s->c.init_id), s->c.rank, s->c.size,
             mpx__hostname(), why);
    requeue_front(s, held);
    sl->pid = 0;
    return;
  }
  if (held) {
    job *rest = held->next;
    held->next = NULL;
    if (sl->kill_why == KILL_TIME && held != sl->timed) {
      /* The late task answered before its process died: the others
       * never started. */
      held->next = rest;
      requeue_front(s, held);
    } else if (sl->kill_why == KILL_TERMINATE) {
      /* terminate: what it held ends cancelled, nothing runs again. */
      for (job *j = held, *nx; j; j = nx) {
        nx = j == held ? rest : j->next;
        job_fail(s, j, MPX_ECANCELED,
                 "cancelled: terminate stopped its task "
                 "process");
      }
    } else {
      char *msg = NULL;
      size_t mlen = 0;
      int code = death_cause(s, sl, held, ws, &msg, &mlen);
      job_done(s, held, code, msg, mlen, 0);
      requeue_front(s, rest); /* not started: they run again */
    }
  }
  sl->pid = 0;
}

/* Reads what the slot's process sent and settles whole frames. Returns 1
 * at EOF, else 0. */
static int slot_read(mpx__sup *s, slot *sl) {
  int eof = 0;
  for (;;) {
    if (mpx__grow(&sl->r, &sl->rcap, sl->rlen + 65536, 1, 65536) != 0)
      break; /* parse what is there; try again later */
    ssize_t n = read(sl->fd, sl->r + sl->rlen, sl->rcap - sl->rlen);
    if (n > 0) {
      sl->rlen += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
      eof = 1;
    break;
  }
  size_t pos = 0;
  double now = mpx__now();
  while (sl->rlen - pos >= HDR) {
    frame_hdr h;
    memcpy(&h, sl->r + pos, HDR);
    if (sl->rlen - pos - HDR < mpx__pad8(h.len))
      break;
    const unsigned char *p = sl->r + pos + HDR;
    pos += HDR + mpx__pad8(h.len);
    if (h.kind == F_READY) {
      sl->ready = 1;
      sl->cur_start = now;
    } else if (h.kind == F_NOTE) {
      sl->noted = 1;
      sl->note_first = sl->kill_why == KILL_NONE; /* it was dying already */
      sl->note_sig = h.id;
      sl->note_code = (int)(h.extra & 0xff);
      sl->note_errno = (int)(h.extra >> 16);
    } else if (h.kind == F_INITFAIL) {
      sl->init_failed = 1;
      snprintf(sl->init_msg, sizeof sl->init_msg, "%.*s",
               (int)(h.len < 500 ? h.len : 500), (const char *)p);
    } else if (h.kind == F_RESULT && sl->head) {
      job *j = sl->head;
      sl->head = j->next;
      if (!sl->head)
        sl->tail = NULL;
      sl->nflight--;
      sl->flight_bytes -= j->len;
      sl->cur_start = now;
      double t = 1e-6 * (double)(uint32_t)h.extra;
      s->task_s = s->task_s < 0 ? t : 0.75 * s->task_s + 0.25 * t;
      job_done(s, j, h.id, dup0(p, (size_t)h.len), (size_t)h.len,
               (uint32_t)h.extra);
    }
  }
  memmove(sl->r, sl->r + pos, sl->rlen - pos);
  sl->rlen -= pos;
  return eof;
}

/* Writes what the slot has pending without blocking. Returns 1 when the
 * socket is broken (the process is dying: its EOF follows). */
static int slot_write(slot *sl) {
  while (sl->wpos < sl->wlen) {
    ssize_t n = send(sl->fd, sl->w + sl->wpos, sl->wlen - sl->wpos,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sl->wpos += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 0;
    return 1;
  }
  sl->wpos = sl->wlen = 0;
  return 0;
}

/* Fails every queued job with the broken pool's message. */
static void fail_queue(mpx__sup *s) {
  while (s->qhead) {
    job *j = s->qhead;
    s->qhead = j->next;
    if (!s->qhead)
      s->qtail = NULL;
    job_fail(s, j, MPX_EBROKEN, s->broken);
  }
}

/* How many tasks a process may hold: one until task times are known, then
 * as many as run in about 2 ms, so tiny tasks share system calls while a
 * long task never waits behind another in one process as a second
 * process idles. */
static size_t depth(const mpx__sup *s) {
  if (s->task_s < 0)
    return 1;
  double d = 0.002 / (s->task_s > 1e-7 ? s->task_s : 1e-7);
  return d < 1 ? 1 : d > DEPTH_TASKS ? DEPTH_TASKS : (size_t)d;
}

/* Hands queued jobs to processes, starting processes as needed: first one
 * to every process that has none (breadth first), then up to depth(). */
static void fill(mpx__sup *s) {
  if (s->broken[0]) {
    fail_queue(s);
    return;
  }
  for (int pass = 0; pass < 2; pass++) {
    size_t limit = pass == 0 ? 1 : depth(s);
    for (int i = 0; i < s->c.nprocs && s->qhead; i++) {
      slot *sl = &s->slots[i];
      if (sl->pid == 0) {
        if (pass > 0)
          continue;
        if (spawn(s, i) != 0) {
          /* No process: fail the job at the head, so nothing waits
           * forever (a retry may find the system less loaded). */
          job *j = s->qhead;
          s->qhead = j->next;
          if (!s->qhead)
            s->qtail = NULL;
          job_fail(s, j, MPX_ESYS, mpx_last_error());
          continue;
        }
      }
      if (sl->retiring || sl->kill_why != KILL_NONE)
        continue;
      while (s->qhead && sl->nflight < limit &&
             (sl->nflight == 0 ||
              sl->flight_bytes + s->qhead->len <= DEPTH_BYTES)) {
        job *j = s->qhead;
        if (encode(sl, j) != 0)
          break;
        s->qhead = j->next;
        if (!s->qhead)
          s->qtail = NULL;
        j->next = NULL;
        if (sl->tail) {
          sl->tail->next = j;
        } else {
          sl->head = j;
          sl->cur_start = mpx__now();
        }
        sl->tail = j;
        sl->nflight++;
        sl->flight_bytes += j->len;
        if (j->parent)
          j->parent->started = 1;
        if (s->c.max_tasks > 0 && ++sl->tasks >= s->c.max_tasks) {
          sl->retiring = 1;
          break;
        }
      }
      slot_write(sl); /* a broken socket: its EOF follows */
    }
  }
}

/* Applies the time limits: SIGTERM at the deadline, SIGKILL after the
 * grace period. Returns the time until the next deadline (seconds), or a
 * large number. */
static double enforce(mpx__sup *s, double now) {
  double next = 1e9;
  for (int i = 0; i < s->c.nprocs; i++) {
    slot *sl = &s->slots[i];
    if (!sl->pid || !sl->head || !sl->ready)
      continue;
    if (sl->term_sent) {
      if (now >= sl->kill_at) {
        slot_kill(sl, SIGKILL);
        sl->kill_at = now + 3600;
      }
      if (sl->kill_at - now < next)
        next = sl->kill_at - now;
      continue;
    }
    double lim = sl->head->limit;
    if (lim <= 0)
      continue;
    double due = sl->cur_start + lim;
    if (now >= due) {
      sl->kill_why = KILL_TIME;
      sl->timed = sl->head;
      sl->term_sent = 1;
      sl->kill_at = now + s->c.kill_grace;
      slot_kill(sl, SIGTERM);
      if (s->c.kill_grace < next)
        next = s->c.kill_grace;
    } else if (due - now < next) {
      next = due - now;
    }
  }
  return next;
}

int mpx__sup_next(mpx__sup *s, double timeout, mpx__sup_outcome *oc) {
  double end = timeout < 0 ? -1 : mpx__now() + timeout;
  struct pollfd *pf = NULL;
  int *which = NULL;
  int rc = 0;
  for (;;) {
    if (s->dhead) {
      done_node *d = s->dhead;
      s->dhead = d->next;
      if (!s->dhead)
        s->dtail = NULL;
      *oc = d->oc;
      free(d);
      rc = 1;
      break;
    }
    fill(s);
    if (s->dhead)
      continue;
    /* Retiring processes that have answered everything: close them. */
    for (int i = 0; i < s->c.nprocs; i++) {
      slot *sl = &s->slots[i];
      if (sl->pid && sl->retiring && !sl->head && sl->wpos == sl->wlen) {
        sl->kill_why = KILL_RETIRE;
        shutdown(sl->fd, SHUT_WR);
        reap(s, sl);
      }
    }
    double now = mpx__now();
    double wait = enforce(s, now);
    if (end >= 0) {
      if (now >= end)
        break;
      if (end - now < wait)
        wait = end - now;
    }
    if (!pf) {
      pf = calloc(2 * (size_t)s->c.nprocs + 1, sizeof *pf);
      which = calloc(2 * (size_t)s->c.nprocs + 1, sizeof *which);
      if (!pf || !which) {
        rc = mpx__fail(MPX_ENOMEM, "out of memory polling task processes");
        break;
      }
    }
    int n = 0;
    for (int i = 0; i < s->c.nprocs; i++) {
      slot *sl = &s->slots[i];
      if (!sl->pid)
        continue;
      pf[n].fd = sl->fd;
      pf[n].events = POLLIN | (sl->wpos < sl->wlen ? POLLOUT : 0);
      pf[n].revents = 0;
      which[n++] = i;
      if (sl->pidfd >= 0) {
        pf[n].fd = sl->pidfd;
        pf[n].events = POLLIN;
        pf[n].revents = 0;
        which[n++] = -2 - i;
      }
    }
    if (s->wake_fd >= 0) {
      pf[n].fd = s->wake_fd;
      pf[n].events = POLLIN;
      pf[n].revents = 0;
      which[n++] = -1;
    }
    if (n == 0 && s->queued == 0 && !s->qhead)
      break; /* nothing can happen */
    int ms = wait >= 1e8 ? -1 : (int)(wait * 1000.0 + 0.999);
    if (ms < 0 && end < 0 && n == 0)
      break;
    int got = poll(pf, (nfds_t)n, ms);
    if (got < 0 && errno != EINTR) {
      rc = mpx__fail(MPX_ESYS, "poll on task processes: %s", strerror(errno));
      break;
    }
    int woken = 0;
    for (int k = 0; got > 0 && k < n; k++) {
      if (!pf[k].revents)
        continue;
      if (which[k] == -1) {
        woken = 1;
        continue;
      }
      if (which[k] <= -2) {
        /* The process ended: what it sent is all there (its socket may
         * stay open in a child it left, which reap() kills). */
        slot *sl = &s->slots[-2 - which[k]];
        if (sl->pid) {
          slot_read(s, sl);
          reap(s, sl);
        }
        continue;
      }
      slot *sl = &s->slots[which[k]];
      if (!sl->pid)
        continue; /* reaped above in this round */
      if (pf[k].revents & POLLOUT)
        slot_write(sl);
      if (pf[k].revents & (POLLIN | POLLHUP | POLLERR)) {
        if (slot_read(s, sl))
          reap(s, sl);
      }
    }
    if (woken && !s->dhead)
      break;
  }
  free(pf);
  free(which);
  return rc;
}

void mpx__sup_prestart(mpx__sup *s) {
  if (s->broken[0] || s->qhead)
    return;
  for (int i = 0; i < s->c.nprocs; i++) {
    slot *sl = &s->slots[i];
    if (sl->pid == 0 && sl->started && spawn(s, i) != 0)
      return; /* tried again when a task needs it */
  }
}

void mpx__sup_cancel(mpx__sup *s, int kill_running) {
  /* Unstarted items: plain jobs and chunks none of whose inputs went out. */
  job **pp = &s->qhead;
  s->qtail = NULL;
  while (*pp) {
    job *j = *pp;
    if (!j->parent || !j->parent->started) {
      *pp = j->next;
      job_done(s, j, MPX_ECANCELED, dup0("cancelled before it ran", 23), 23, 0);
      continue;
    }
    s->qtail = j;
    pp = &j->next;
  }
  if (!kill_running)
    return;
  for (int i = 0; i < s->c.nprocs; i++) {
    slot *sl = &s->slots[i];
    if (!sl->pid)
      continue;
    sl->kill_why = KILL_TERMINATE;
    slot_kill(sl, SIGKILL);
    slot_read(s, sl); /* answers already sent still count */
    reap(s, sl);
  }
  while (s->qhead) { /* inputs of started chunks */
    job *j = s->qhead;
    s->qhead = j->next;
    job_fail(s, j, MPX_ECANCELED, "cancelled: terminate stopped the pool");
  }
  s->qtail = NULL;
}

void mpx__sup_destroy(mpx__sup *s) {
  if (!s)
    return;
  for (int i = 0; i < s->c.nprocs; i++) {
    slot *sl = &s->slots[i];
    if (sl->pid) {
      shutdown(sl->fd, SHUT_WR); /* EOF: an idle process leaves at once */
      sl->kill_why = KILL_RETIRE;
      reap(s, sl);
    }
    free(sl->w);
    free(sl->r);
  }
  /* Whatever was left: drop (the caller gave up on it). */
  while (s->qhead) {
    job *j = s->qhead;
    s->qhead = j->next;
    job_done(s, j, MPX_ECANCELED, NULL, 0, 0);
  }
  while (s->dhead) {
    done_node *d = s->dhead;
    s->dhead = d->next;
    free(d->oc.data);
    free(d);
  }
  free(s->slots);
  free(s);
}
