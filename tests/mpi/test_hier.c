/*
 * test_hier.c -- the hierarchical dispatcher (mpx_executor_options.group,
 * docs/hierarchy.md) under mpirun: sub-managers that forward the root's
 * batches to the ranks of their group must change nothing a program sees
 * but the plan itself.
 *
 * The plan, which this program recomputes to know what to expect: the
 * root excluded, the ranks of each node in ascending order are cut into
 * consecutive chunks of k (MPX_GROUP_NODE: one chunk per node;
 * MPX_GROUP_FLAT, and MPX_GROUP_AUTO below 512 ranks: chunks of 1). A
 * chunk of 2 or more ranks is a group whose first (lowest) rank is its
 * sub-manager and runs no task; a chunk of one rank is a plain worker of
 * the root. mpirun on one machine puts every rank on one node. So
 * mpx_executor_groups() is the number of chunks of 2+ ranks and
 * mpx_executor_workers() is size - 1 - groups (1 for a one-rank pool).
 * Examples, root 0, k 3: np 7 -> {1,2,3} {4,5,6}: sub-managers 1 and 4,
 * workers 2 3 5 6; np 5 -> {1,2,3} {4}: groups 1, workers 2 3 4; np 2 ->
 * {1}: flat.
 *
 * What it checks, each at any process count (1, 2, 4, 5, 7, 8) and under
 * any MPX_GROUP the environment sets:
 *  - plan: groups and workers for flat, auto, k = 2, k = 3 and node, with
 *    the root at rank 0 and at the last rank; every result comes from a
 *    worker of the plan; MPX_GROUP is parsed; group 1 and -7 are refused
 *    with MPX_EINVAL on every rank;
 *  - worker ranks: with k = 3 each future's worker is the rank the task
 *    saw, never the root (2+ ranks) nor a sub-manager, and every worker
 *    runs some of 200 tasks; a burst of tiny tasks all come back right;
 *  - errors: a task failure names the real rank that ran it;
 *  - payloads from 0 bytes to 5 MiB (64 KiB and up travel as separate
 *    messages) come back intact through a sub-manager;
 *  - shutdown(wait, cancel_futures), without and with isolation: each
 *    future finished OK or was cancelled, none failed, and a new pool
 *    serves at once after;
 *  - retries under isolation: a task that crashes on one worker succeeds
 *    on a retry elsewhere where another child of the root exists;
 *  - map: ordered, chunks of 7, results in order, each from a worker;
 *  - terminate with isolation kills sleeping tasks at once; a new pool
 *    serves after.
 *
 * Tests where the plan matters set opts.group themselves; the others use
 * the environment's MPX_GROUP, or k = 3 when it sets none (so that the
 * plain run goes through sub-managers too). Only rank 0 asserts.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpx_test_mpi.h"

static int register_rc;

/* ---- the plan ----------------------------------------------------------- */

enum { ROLE_ROOT = 0, ROLE_SUB = 1, ROLE_WORKER = 2 };

/* What a pool of size ranks, with root and group, should look like. */
typedef struct plan {
  int size, root;
  int groups, workers;
  int children;        /* who the root serves: sub-managers + plain workers */
  int first_worker;    /* the lowest worker rank */
  unsigned char *role; /* role[r], r < size */
} plan;

/* Fills p by the rule at the top, every rank on one node. */
static void plan_of(int size, int root, int group, plan *p) {
  memset(p, 0, sizeof *p);
  p->size = size;
  p->root = root;
  p->role = calloc((size_t)size, 1);
  if (!p->role)
    abort();
  if (size == 1) {
    p->role[0] = ROLE_WORKER; /* the root's manager thread runs tasks */
    p->workers = 1;
    p->first_worker = 0;
    return;
  }
  int k = group == MPX_GROUP_NODE ? size : group >= 2 ? group : 1;
  p->role[root] = ROLE_ROOT;
  int chunk = 0; /* ranks in the current chunk so far */
  int chunk_len = 0;
  p->first_worker = -1;
  for (int r = 0; r < size; r++) {
    if (r == root)
      continue;
    if (chunk == 0) {
      /* a new chunk: its length is the rest of the ranks, at most k */
      int left = size - 1 - (r > root ? r - 1 : r);
      chunk_len = left < k ? left : k;
    }
    if (chunk == 0 && chunk_len >= 2) {
      p->role[r] = ROLE_SUB;
      p->groups++;
      p->children++;
    } else {
      p->role[r] = ROLE_WORKER;
      p->workers++;
      if (chunk_len == 1)
        p->children++;
      if (p->first_worker < 0)
        p->first_worker = r;
    }
    if (++chunk == chunk_len)
      chunk = 0;
  }
}

static void plan_free(plan *p) {
  free(p->role);
  p->role = NULL;
}

static int is_worker(const plan *p, int r) {
  return r >= 0 && r < p->size && p->role[r] == ROLE_WORKER;
}

/* The group of the tests whose plan is not the point: the environment's
 * MPX_GROUP if it sets one, else groups of 3. */
static mpx_executor_options hier_opts(void) {
  mpx_executor_options o;
  mpx_executor_options_init(&o);
  const char *env = getenv("MPX_GROUP");
  if (!env || !*env)
    o.group = 3;
  return o;
}

/* The plan of a pool over MPI_COMM_WORLD made with o. */
static void plan_for(const mpx_executor_options *o, plan *p) {
  plan_of(mt_size(), o->root, o->group, p);
}

/* A future's failure text, "" while it has none. */
static const char *err_of(const mpx_future *f) {
  const char *e = mpx_future_error(f);
  return e ? e : "";
}

/* ---- tasks -------------------------------------------------------------- */

/* Sleeps for the ms of its optional int argument, then returns its rank as
 * an int32. */
static int task_rank(mpx_task_ctx *ctx, const void *arg, size_t len) {
  if (len == sizeof(int)) {
    int ms;
    memcpy(&ms, arg, sizeof ms);
    if (ms > 0)
      mt_sleep_ms((unsigned)ms);
  } else if (len != 0) {
    return mpx_task_fail(ctx, "rank wants nothing or an int, got %zu", len);
  }
  int32_t r = (int32_t)mpx_task_rank(ctx);
  return mpx_task_return(ctx, &r, sizeof r);
}

static int task_fail(mpx_task_ctx *ctx, const void *arg, size_t len) {
  int32_t x = -1;
  if (len == sizeof x)
    memcpy(&x, arg, sizeof x);
  return mpx_task_fail(ctx, "deliberate failure %d", (int)x);
}

static int task_square(mpx_task_ctx *ctx, const void *arg, size_t len) {
  uint64_t x;
  if (len != sizeof x)
    return mpx_task_fail(ctx, "square wants 8 bytes, got %zu", len);
  memcpy(&x, arg, sizeof x);
  x *= x;
  return mpx_task_return(ctx, &x, sizeof x);
}

static int task_echo(mpx_task_ctx *ctx, const void *arg, size_t len) {
  void *out = mpx_task_output(ctx, len);
  if (!out && len)
    return mpx_task_fail(ctx, "no memory for %zu bytes", len);
  if (len)
    memcpy(out, arg, len);
  return 0;
}

/* x (uint64) -> {3x + 1, rank}; fails for x % 97 == 5. */
static int task_mapf(mpx_task_ctx *ctx, const void *arg, size_t len) {
  uint64_t x;
  if (len != sizeof x)
    return mpx_task_fail(ctx, "mapf wants 8 bytes, got %zu", len);
  memcpy(&x, arg, sizeof x);
  if (x % 97 == 5)
    return mpx_task_fail(ctx, "input %llu is unlucky", (unsigned long long)x);
  uint64_t out[2] = {3 * x + 1, (uint64_t)mpx_task_rank(ctx)};
  return mpx_task_return(ctx, out, sizeof out);
}

/* The argument of "crashon": crash on rank crash (after appending a byte
 * to the file path), else sleep ms and return the rank. */
typedef struct crash_arg {
  int32_t crash;
  int32_t ms;
  char path[256];
} crash_arg;

static int task_crashon(mpx_task_ctx *ctx, const void *arg, size_t len) {
  if (len != sizeof(crash_arg))
    return mpx_task_fail(ctx, "crashon wants a crash_arg, got %zu", len);
  crash_arg a;
  memcpy(&a, arg, sizeof a);
  a.path[sizeof a.path - 1] = 0;
  int32_t r = (int32_t)mpx_task_rank(ctx);
  if (r == a.crash) {
    int fd = open(a.path, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd >= 0) {
      unsigned char b = (unsigned char)r;
      if (write(fd, &b, 1) != 1)
        b = 0;
      close(fd);
    }
    raise(SIGSEGV);
  }
  if (a.ms > 0)
    mt_sleep_ms((unsigned)a.ms);
  return mpx_task_return(ctx, &r, sizeof r);
}

/* ---- helpers ------------------------------------------------------------ */

/* Waits for f and returns the int32 rank it returned, or -100 when it did
 * not succeed with 4 bytes. */
static int rank_result(mpx_future *f, double timeout) {
  const void *d = NULL;
  size_t l = 0;
  if (!f || mpx_future_result(f, timeout, &d, &l) != 0 || l != 4 || !d)
    return -100;
  int32_t r;
  memcpy(&r, d, sizeof r);
  return r;
}

/* Submits n calls of task name, each on the same argument; every submit
 * must succeed. Returns the futures (calloc'd), or NULL without memory. */
static mpx_future **submit_n(mpx_executor *ex, const char *name,
                             const void *arg, size_t len, int n) {
  mpx_future **fs = calloc((size_t)n, sizeof *fs);
  MT_ASSERT(fs != NULL);
  for (int i = 0; fs && i < n; i++)
    MT_ASSERT(mpx_submit(ex, name, arg, len, &fs[i]) == 0);
  return fs;
}

/* Submits n "rank" tasks sleeping ms each, and checks each came from a
 * worker of p that is also its future's worker; counts per rank in hits
 * (may be NULL). Returns the number of bad futures. */
static int run_ranks(mpx_executor *ex, const plan *p, int n, int ms,
                     int *hits) {
  mpx_future **fs = calloc((size_t)n, sizeof *fs);
  if (!fs)
    return n;
  int bad = 0;
  for (int i = 0; i < n; i++)
    if (mpx_submit(ex, "rank", &ms, sizeof ms, &fs[i]) != 0)
      bad++;
  for (int i = 0; i < n; i++) {
    if (!fs[i])
      continue;
    int r = rank_result(fs[i], 120);
    int w = mpx_future_worker(fs[i]);
    if (r != w || !is_worker(p, r)) {
      if (bad < 5 && mt_is_root())
        printf("\n    task %d: returned rank %d, future worker %d (%s)\n", i, r,
               w, err_of(fs[i]));
      bad++;
    } else if (hits) {
      hits[r]++;
    }
    mpx_future_destroy(&fs[i]);
  }
  free(fs);
  return bad;
}

static void test_register(void) {
  MT_ASSERT_ALL(register_rc == 0);
}

/* ---- 1. the plan -------------------------------------------------------- */

static void test_plan_counts(void) {
  const int groups[] = {MPX_GROUP_FLAT, MPX_GROUP_AUTO, 2, 3, MPX_GROUP_NODE};
  for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
    mpx_executor_options o;
    mpx_executor_options_init(&o);
    o.group = groups[g];
    plan p;
    plan_for(&o, &p);
    int ok;
    mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, &o, &ok);
    if (ex) {
      int ng = mpx_executor_groups(ex), nw = mpx_executor_workers(ex);
      if (ng != p.groups || nw != p.workers)
        printf("\n    np %d group %d: groups %d workers %d, expected %d and "
               "%d\n",
               mt_size(), o.group, ng, nw, p.groups, p.workers);
      MT_ASSERT(ng == p.groups);
      MT_ASSERT(nw == p.workers);
      MT_ASSERT(nw == (mt_size() == 1 ? 1 : mt_size() - 1 - ng));
      MT_ASSERT(run_ranks(ex, &p, 4 * p.workers, 0, NULL) == 0);
    }
    mt_pool_end(&ex, ok);
    plan_free(&p);
  }
  /* Null handles. */
  MT_ASSERT(mpx_executor_groups(NULL) == 0);
  MT_ASSERT(mpx_executor_workers(NULL) == 0);
}

/* The root at the last rank: the plan leaves it out, the chunks start at
 * rank 0. Its checks run on that rank and are reduced to rank 0. */
static void test_plan_other_root(void) {
  mpx_executor_options o;
  mpx_executor_options_init(&o);
  o.root = mt_size() - 1;
  o.group = 3;
  plan p;
  plan_for(&o, &p);
  int ok, good = 1;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, &o, &ok);
  if (ex) {
    good &= mt_rank() == o.root;
    good &= mpx_executor_groups(ex) == p.groups;
    good &= mpx_executor_workers(ex) == p.workers;
    if (!good)
      fprintf(stderr, "other root %d: groups %d workers %d, expected %d %d\n",
              o.root, mpx_executor_groups(ex), mpx_executor_workers(ex),
              p.groups, p.workers);
    good &= run_ranks(ex, &p, 4 * p.workers, 0, NULL) == 0;
    good &= mpx_executor_shutdown(ex, 1, 0) == 0;
    good &= mpx_executor_destroy(&ex) == 0;
  }
  MT_ASSERT_ALL(ok && good);
  plan_free(&p);
}

static void test_plan_invalid(void) {
  const int bad[] = {1, -3, -7};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mpx_executor_options o;
    mpx_executor_options_init(&o);
    o.group = bad[i];
    mpx_executor *ex = NULL;
    int rc = mpx_executor_create(MPI_COMM_WORLD, &o, &ex);
    if (rc != MPX_EINVAL && mt_is_root())
      printf("\n    group %d: %s (%s)\n", bad[i], mpx_err_name(rc),
             mpx_last_error());
    MT_ASSERT_ALL(rc == MPX_EINVAL && ex == NULL);
  }
  /* Refusals leave nothing behind: a pool still works. */
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex)
    MT_ASSERT(mt_nap_once(ex, 1));
  mt_pool_end(&ex, ok);
}

/* MPX_GROUP=auto|flat|node|k sets the option's default. */
static void test_plan_env(void) {
  const char *old = getenv("MPX_GROUP");
  char *saved = old ? strdup(old) : NULL;
  static const struct {
    const char *env;
    int group;
  } cases[] = {{"auto", MPX_GROUP_AUTO},
               {"flat", MPX_GROUP_FLAT},
               {"node", MPX_GROUP_NODE},
               {"3", 3},
               {"2", 2},
               {"16", 16}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    setenv("MPX_GROUP", cases[i].env, 1);
    mpx_executor_options o;
    mpx_executor_options_init(&o);
    if (o.group != cases[i].group && mt_is_root())
      printf("\n    MPX_GROUP=%s: group %d\n", cases[i].env, o.group);
    MT_ASSERT(o.group == cases[i].group);
  }
  unsetenv("MPX_GROUP");
  mpx_executor_options o;
  mpx_executor_options_init(&o);
  MT_ASSERT(o.group == MPX_GROUP_AUTO); /* the default */
  if (saved) {
    setenv("MPX_GROUP", saved, 1);
    free(saved);
  }
}

/* ---- 2. worker ranks ---------------------------------------------------- */

static void test_worker_ranks(void) {
  enum { N = 200 };
  mpx_executor_options o;
  mpx_executor_options_init(&o);
  o.group = 3;
  plan p;
  plan_for(&o, &p);
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, &o, &ok);
  if (ex) {
    int *hits = calloc((size_t)mt_size(), sizeof *hits);
    MT_ASSERT(hits != NULL);
    if (hits) {
      /* 2 ms each, so that no worker can take them all */
      MT_ASSERT(run_ranks(ex, &p, N, 2, hits) == 0);
      int idle = 0;
      for (int r = 0; r < mt_size(); r++) {
        if (p.role[r] == ROLE_WORKER && hits[r] == 0) {
          printf("\n    worker rank %d ran none of %d tasks\n", r, N);
          idle++;
        }
        if (p.role[r] != ROLE_WORKER)
          MT_ASSERT(hits[r] == 0);
      }
      MT_ASSERT(idle == 0);
      free(hits);
    }
  }
  mt_pool_end(&ex, ok);
  plan_free(&p);
}

/* Many tiny tasks through groups of 2 (the smallest groups: one worker
 * each), collected as they complete. */
static void test_burst(void) {
  enum { N = 3000 };
  mpx_executor_options o;
  mpx_executor_options_init(&o);
  o.group = 2;
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, &o, &ok);
  if (ex) {
    static mpx_future *fs[N];
    static uint64_t xs[N];
    int sub = 0;
    for (int i = 0; i < N; i++) {
      xs[i] = (uint64_t)i + 1;
      sub += mpx_submit(ex, "square", &xs[i], 8, &fs[i]) == 0;
      if (fs[i])
        mpx_future_set_data(fs[i], &xs[i]);
    }
    MT_ASSERT(sub == N);
    mpx_as_completed *it = NULL;
    MT_ASSERT(mpx_as_completed_create(fs, N, 120, &it) == 0);
    int seen = 0, wrong = 0, rc;
    mpx_future *f;
    while (it && (rc = mpx_as_completed_next(it, &f)) == 0) {
      const uint64_t *x = mpx_future_data(f);
      const void *d;
      size_t l;
      seen++;
      if (mpx_future_result(f, 0, &d, &l) != 0 || l != 8 ||
          *(const uint64_t *)d != *x * *x)
        wrong++;
    }
    mpx_as_completed_destroy(&it);
    MT_ASSERT(seen == N);
    MT_ASSERT(wrong == 0);
    for (int i = 0; i < N; i++)
      mpx_future_destroy(&fs[i]);
  }
  mt_pool_end(&ex, ok);
}

/* ---- 3. errors name the real rank --------------------------------------- */

static void test_errors(void) {
  mpx_executor_options o;
  mpx_executor_options_init(&o);
  o.group = 3;
  plan p;
  plan_for(&o, &p);
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, &o, &ok);
  if (ex) {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    int n = 4 * p.workers;
    mpx_future **fs = calloc((size_t)n, sizeof *fs);
    MT_ASSERT(fs != NULL);
    int bad = 0;
    for (int i = 0; fs && i < n; i++) {
      int32_t x = i;
      MT_ASSERT(mpx_submit(ex, "fail", &x, sizeof x, &fs[i]) == 0);
    }
    for (int i = 0; fs && i < n; i++) {
      if (!fs[i])
        continue;
      int st = mpx_future_exception(fs[i], 120);
      int w = mpx_future_worker(fs[i]);
      const char *e = err_of(fs[i]);
      char want[128], text[64];
      snprintf(want, sizeof want, "task 'fail' failed on rank %d of %d (host ",
               w, mt_size());
      snprintf(text, sizeof text, "deliberate failure %d", i);
      int right = st == MPX_ETASK && is_worker(&p, w) && mt_contains(e, want) &&
                  mt_contains(e, text) && (!host[0] || mt_contains(e, host));
      if (!right && bad++ < 5)
        printf("\n    fail %d: %s, worker %d: %s\n", i, mpx_err_name(st), w, e);
      mpx_future_destroy(&fs[i]);
    }
    MT_ASSERT(bad == 0);
    free(fs);
    /* The failures did not harm the pool. */
    MT_ASSERT(run_ranks(ex, &p, 2 * p.workers, 0, NULL) == 0);
  }
  mt_pool_end(&ex, ok);
  plan_free(&p);
}

/* ---- 4. payloads through a sub-manager ---------------------------------- */

static uint64_t pat(uint64_t i, uint64_t s) {
  uint64_t x = (i + s) * 0x9E3779B97F4A7C15ULL;
  return x ^ (x >> 29);
}

static void fill(unsigned char *buf, size_t len, uint64_t seed) {
  for (size_t i = 0; i < len; i += 8) {
    uint64_t w = pat(i / 8, seed);
    memcpy(buf + i, &w, len - i < 8 ? len - i : 8);
  }
}

static int intact(const unsigned char *buf, size_t len, uint64_t seed) {
  for (size_t i = 0; i < len; i += 8) {
    uint64_t w = pat(i / 8, seed);
    if (memcmp(buf + i, &w, len - i < 8 ? len - i : 8) != 0)
      return 0;
  }
  return 1;
}

static void test_payloads(void) {
  const size_t sizes[] = {0,        1,        65535, 65536,         65537,
                          1u << 20, 5u << 20, 8,     (5u << 20) + 3};
  enum { NS = sizeof sizes / sizeof sizes[0], COPIES = 3 };
  mpx_executor_options o = hier_opts();
  plan p;
  plan_for(&o, &p);
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, &o, &ok);
  if (ex) {
    /* Every size several times, all in flight together, so that they
     * spread over workers and sub-managers. */
    mpx_future *fs[NS * COPIES] = {0};
    for (int c = 0; c < COPIES; c++) {
      for (int s = 0; s < NS; s++) {
        size_t len = sizes[s];
        unsigned char *buf = malloc(len ? len : 1);
        MT_ASSERT(buf != NULL);
        if (!buf)
          continue;
        fill(buf, len, (uint64_t)(s * COPIES + c));
        MT_ASSERT(mpx_submit(ex, "echo", len ? buf : NULL, len,
                             &fs[c * NS + s]) == 0);
        free(buf); /* the submit copied it */
      }
    }
    int bad = 0;
    for (int c = 0; c < COPIES; c++) {
      for (int s = 0; s < NS; s++) {
        mpx_future *f = fs[c * NS + s];
        if (!f)
          continue;
        const void *d = NULL;
        size_t l = 99;
        int st = mpx_future_result(f, 120, &d, &l);
        int right = st == 0 && l == sizes[s] && (l == 0 || d) &&
                    ((uintptr_t)d & 7u) == 0 &&
                    intact(d, l, (uint64_t)(s * COPIES + c)) &&
                    is_worker(&p, mpx_future_worker(f));
        if (!right && bad++ < 5)
          printf("\n    echo of %zu bytes: %s, %zu bytes back, worker %d %s\n",
                 sizes[s], mpx_err_name(st), l, mpx_future_worker(f),
                 err_of(f));
        mpx_future_destroy(&fs[c * NS + s]);
      }
    }
    MT_ASSERT(bad == 0);
  }
  mt_pool_end(&ex, ok);
  plan_free(&p);
}

/* ---- 5. cancel and shutdown --------------------------------------------- */

/* Without and with isolation (where a worker's task process holds the
 * tasks of its call items), shutdown waiting and not. */
static void test_shutdown_cancel(void) {
  for (int v = 0; v < 4; v++) {
    int wait = !(v & 1), iso = v >> 1;
    mpx_executor_options o = hier_opts();
    o.isolation = iso ? MPX_ISOLATION_PROCESS : MPX_ISOLATION_NONE;
    o.processes = 2;
    plan p;
    plan_for(&o, &p);
    int ok;
    mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, &o, &ok);
    if (ex) {
      int n = 4 * p.workers + 4, ms = 50;
      mpx_future **fs = submit_n(ex, "nap", &ms, sizeof ms, n);
      mt_sleep_ms(30); /* some run, some are sent, some still pending */
      double t0 = mt_now();
      MT_ASSERT(mpx_executor_shutdown(ex, wait, 1) == 0);
      if (!wait)
        MT_ASSERT(mpx_wait(fs, (size_t)n, MPX_ALL_COMPLETED, 60, NULL, NULL) ==
                  0);
      MT_ASSERT(mt_now() - t0 < 20);
      int finished = 0, cancelled = 0, other = 0;
      for (int i = 0; fs && i < n; i++) {
        if (!fs[i])
          continue;
        mpx_state s = mpx_future_state(fs[i]);
        int st = mpx_future_exception(fs[i], 0);
        const void *d = NULL;
        size_t l = 0;
        if (s == MPX_FINISHED && st == 0 &&
            mpx_future_result(fs[i], 0, &d, &l) == 0 && l == sizeof ms &&
            *(const int *)d == ms && is_worker(&p, mpx_future_worker(fs[i])))
          finished++;
        else if (s == MPX_CANCELLED && st == MPX_ECANCELED)
          cancelled++;
        else if (other++ < 5)
          printf("\n    nap %d (wait %d, isolation %d): state %d, %s, worker "
                 "%d: %s\n",
                 i, wait, iso, (int)s, mpx_err_name(st),
                 mpx_future_worker(fs[i]), err_of(fs[i]));
        mpx_future_destroy(&fs[i]);
      }
      MT_ASSERT(other == 0);
      MT_ASSERT(finished + cancelled == n);
      free(fs);
      /* No more work is taken. */
      mpx_future *late = NULL;
      MT_ASSERT(mpx_submit(ex, "nap", &ms, sizeof ms, &late) == MPX_ESHUTDOWN);
      MT_ASSERT(late == NULL);
      MT_ASSERT(mpx_executor_destroy(&ex) == 0);
    }
    MT_ASSERT_ALL(ok);
    /* A new pool right after serves every worker: nothing of the old one
     * was left in flight. */
    ex = mt_pool_begin(MPI_COMM_WORLD, &o, &ok);
    if (ex) {
      MT_ASSERT(mpx_executor_groups(ex) == p.groups);
      MT_ASSERT(run_ranks(ex, &p, 3 * p.workers, 1, NULL) == 0);
    }
    mt_pool_end(&ex, ok);
    plan_free(&p);
  }
}

/* ---- 6. retries under isolation ----------------------------------------- */

static void test_retries(void) {
  mpx_executor_options o;
  mpx_executor_options_init(&o);
  o.group = 3;
  o.isolation = MPX_ISOLATION_PROCESS;
  o.processes = 2;
  o.retries = 2;
  plan p;
  plan_for(&o, &p);
  if (p.workers < 2) {
    if (mt_is_root())
      printf("\n    skipped: %d worker(s) at %d rank(s)\n", p.workers,
             mt_size());
    plan_free(&p);
    return;
  }
  char dir[] = "/tmp/mpx_hier_XXXXXX";
  int made = 1;
  if (mt_is_root())
    made = mkdtemp(dir) != NULL;
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, &o, &ok);
  if (ex) {
    MT_ASSERT(made);
    crash_arg a;
    memset(&a, 0, sizeof a);
    a.crash = p.first_worker;
    a.ms = 20;
    snprintf(a.path, sizeof a.path, "%s/crashes", dir);
    int n = 6 * p.workers;
    mpx_future **fs = submit_n(ex, "crashon", &a, sizeof a, n);
    /* A retry runs on another worker than the one it crashed on: under
     * another child of the root where there is one, else on another
     * worker of the same sub-manager (the root tells it which to avoid).
     * Every task succeeds. */
    int strict = 1;
    int good = 0, crashed = 0, wrong = 0;
    for (int i = 0; fs && i < n; i++) {
      if (!fs[i])
        continue;
      int r = rank_result(fs[i], 120);
      int w = mpx_future_worker(fs[i]);
      int st = mpx_future_exception(fs[i], 0);
      if (st == 0 && r == w && r != a.crash && is_worker(&p, r))
        good++;
      else if (!strict && st == MPX_ECRASHED &&
               mt_contains(err_of(fs[i]), "(ran 3 times)"))
        crashed++;
      else if (wrong++ < 5)
        printf("\n    crashon %d: %s, rank %d, worker %d: %s\n", i,
               mpx_err_name(st), r, w, err_of(fs[i]));
      mpx_future_destroy(&fs[i]);
    }
    free(fs);
    unsigned char ranks[4096];
    int fd = open(a.path, O_RDONLY);
    ssize_t tries = fd >= 0 ? read(fd, ranks, sizeof ranks) : 0;
    if (fd >= 0)
      close(fd);
    printf("\n    %d children, crash rank %d: %d ok, %d crashed, %zd "
           "crashes seen\n",
           p.children, a.crash, good, crashed, tries);
    MT_ASSERT(wrong == 0);
    MT_ASSERT(good + crashed == n);
    if (strict)
      MT_ASSERT(good == n);
    /* Every worker is handed some of 6 per worker: the crashing one too. */
    MT_ASSERT(tries >= 1);
    for (ssize_t k = 0; k < tries; k++)
      MT_ASSERT(ranks[k] == (unsigned char)a.crash);
    /* The pool still serves, its crashing worker included. */
    MT_ASSERT(run_ranks(ex, &p, 2 * p.workers, 0, NULL) == 0);
    unlink(a.path);
  }
  mt_pool_end(&ex, ok);
  if (mt_is_root() && made)
    rmdir(dir);
  plan_free(&p);
}

/* ---- 7. map ------------------------------------------------------------- */

static void test_map(void) {
  enum { N = 1000 };
  mpx_executor_options o = hier_opts();
  plan p;
  plan_for(&o, &p);
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, &o, &ok);
  if (ex) {
    static uint64_t xs[N];
    static const void *args[N];
    static size_t lens[N];
    for (int i = 0; i < N; i++) {
      xs[i] = (uint64_t)i;
      args[i] = &xs[i];
      lens[i] = sizeof xs[i];
    }
    mpx_map_options mo;
    mpx_map_options_init(&mo);
    mo.chunksize = 7;
    mpx_map *m = NULL;
    MT_ASSERT(mpx_map_create(ex, "mapf", args, lens, N, &mo, &m) == 0);
    mpx_map_item it;
    uint64_t next = 0;
    int wrong = 0, failed = 0, rc = MPX_EOF;
    while (m && (rc = mpx_map_next(m, 120, &it)) == 0) {
      uint64_t x = it.index;
      int right = x == next++ && is_worker(&p, it.worker);
      if (x % 97 == 5) {
        char want[96];
        snprintf(want, sizeof want, "task 'mapf' failed on rank %d of %d",
                 it.worker, mt_size());
        right &= it.status == MPX_ETASK && mt_contains(it.error, want) &&
                 mt_contains(it.error, "is unlucky");
        failed++;
      } else {
        uint64_t v[2] = {0, 0};
        if (it.status == 0 && it.len == sizeof v)
          memcpy(v, it.data, sizeof v);
        right &= it.status == 0 && it.len == sizeof v && v[0] == 3 * x + 1 &&
                 v[1] == (uint64_t)it.worker;
      }
      if (!right && wrong++ < 5)
        printf("\n    item %llu (expected %llu): %s, worker %d, %zu bytes: "
               "%s\n",
               (unsigned long long)x, (unsigned long long)(next - 1),
               mpx_err_name(it.status), it.worker, it.len,
               it.error ? it.error : "");
    }
    MT_ASSERT(rc == MPX_EOF);
    MT_ASSERT(next == N);
    MT_ASSERT(wrong == 0);
    MT_ASSERT(failed == (N + 97 - 1 - 5) / 97);
    mpx_map_destroy(&m);
  }
  mt_pool_end(&ex, ok);
  plan_free(&p);
}

/* ---- 8. terminate ------------------------------------------------------- */

static void test_terminate(void) {
  mpx_executor_options o = hier_opts();
  o.isolation = MPX_ISOLATION_PROCESS;
  o.processes = 2;
  plan p;
  plan_for(&o, &p);
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, &o, &ok);
  if (ex) {
    int n = 2 * p.workers + 3, ms = 10000;
    mpx_future **fs = submit_n(ex, "nap", &ms, sizeof ms, n);
    mt_sleep_ms(500); /* every worker is running one */
    double t0 = mt_now();
    MT_ASSERT(mpx_executor_terminate(ex) == 0);
    double took = mt_now() - t0;
    if (took >= 5)
      printf("\n    terminate took %.1f s\n", took);
    MT_ASSERT(took < 5);
    /* With isolation, the running tasks are killed and their futures end
     * cancelled, as the pending ones. */
    int cancelled = 0;
    for (int i = 0; fs && i < n; i++) {
      if (!fs[i])
        continue;
      MT_ASSERT(mpx_future_done(fs[i]));
      if (mpx_future_state(fs[i]) == MPX_CANCELLED)
        cancelled++;
      else
        printf("\n    nap %d: state %d, %s\n", i, (int)mpx_future_state(fs[i]),
               err_of(fs[i]));
      mpx_future_destroy(&fs[i]);
    }
    MT_ASSERT(cancelled == n);
    free(fs);
    MT_ASSERT(mpx_executor_destroy(&ex) == 0);
  }
  MT_ASSERT_ALL(ok);
  /* A new pool serves at once. */
  mpx_executor_options o2 = hier_opts();
  ex = mt_pool_begin(MPI_COMM_WORLD, &o2, &ok);
  if (ex) {
    double t0 = mt_now();
    MT_ASSERT(run_ranks(ex, &p, 3 * p.workers, 0, NULL) == 0);
    MT_ASSERT(mt_now() - t0 < 5); /* no worker still sleeping */
  }
  mt_pool_end(&ex, ok);
  plan_free(&p);
}

/* ---- main --------------------------------------------------------------- */

static const mt_test plan_tests[] = {
    {"register", test_register},    {"env", test_plan_env},
    {"counts", test_plan_counts},   {"other_root", test_plan_other_root},
    {"invalid", test_plan_invalid}, {NULL, NULL}};

static const mt_test work_tests[] = {{"worker_ranks", test_worker_ranks},
                                     {"burst", test_burst},
                                     {"errors", test_errors},
                                     {"payloads", test_payloads},
                                     {"map", test_map},
                                     {NULL, NULL}};

static const mt_test stop_tests[] = {{"shutdown_cancel", test_shutdown_cancel},
                                     {"retries", test_retries},
                                     {"terminate", test_terminate},
                                     {NULL, NULL}};

static const mt_suite suites[] = {{"hier_plan", plan_tests},
                                  {"hier_work", work_tests},
                                  {"hier_stop", stop_tests},
                                  {NULL, NULL}};

int main(int argc, char **argv) {
  mt_init(&argc, &argv);
  register_rc =
      mpx_register("nap", mt_task_nap) | mpx_register("rank", task_rank) |
      mpx_register("fail", task_fail) | mpx_register("square", task_square) |
      mpx_register("echo", task_echo) | mpx_register("mapf", task_mapf) |
      mpx_register("crashon", task_crashon);
  return mt_run(suites, 240);
}
