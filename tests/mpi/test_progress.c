/*
 * test_progress.c -- a pool without a manager thread, under
 * MPI_THREAD_FUNNELED (MPX_PROGRESS_CALLER, docs/progress.md).
 *
 * MPI is initialised with MPI_Init_thread(MPI_THREAD_FUNNELED), so only
 * the main thread may make MPI calls: the default (MPX_PROGRESS_AUTO)
 * must pick caller progress, MPX_PROGRESS_THREAD must be refused on every
 * rank, the root must run no thread of mpx's, and the pool must move
 * only inside mpx calls made on the main thread: results of a program
 * that computes and calls mpx_executor_progress() now and then, waits,
 * as_completed, maps both ways, a job into an HDF5 file, done-callbacks
 * (on the main thread), and a second thread that may wait but not turn
 * the pool. With one rank the pool keeps its thread (it makes no MPI
 * call). Only rank 0 prints CUnit's summary.
 */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mpx.h"
#include "mpx_test_mpi.h"

static int rank, size;
static pthread_t main_thread;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Busy for ms milliseconds: the program's own work between mpx calls. */
static void compute_ms(double ms) {
  double end = now() + 1e-3 * ms;
  volatile double x = 1;
  while (now() < end)
    for (int i = 0; i < 1000; i++)
      x = x * 1.0000001 + 1e-9;
}

/* The task: naps arg[0] microseconds and returns arg[1] * 3. */
static int nap3(mpx_task_ctx *ctx, const void *arg, size_t len) {
  int64_t a[2];
  if (len != sizeof a)
    return mpx_task_fail(ctx, "nap3 wants two int64");
  memcpy(a, arg, sizeof a);
  usleep((useconds_t)a[0]);
  int64_t r = a[1] * 3;
  return mpx_task_return(ctx, &r, sizeof r);
}

/* A job's task: one row, "v" = its input (an int64) * 3. */
static int row3(mpx_task_ctx *ctx, const void *arg, size_t len) {
  int64_t x;
  if (len != sizeof x)
    return mpx_task_fail(ctx, "row3 wants an int64");
  memcpy(&x, arg, sizeof x);
  int64_t *v = mpx_task_array(ctx, "v", MPX_INT64, 1, 1);
  if (!v)
    return MPX_ENOMEM;
  *v = x * 3;
  return 0;
}

/* Input i of the job: i itself. */
static int produce(void *arg, uint64_t index, const void **data, size_t *len) {
  int64_t *slot = arg;
  *slot = (int64_t)index;
  *data = slot;
  *len = sizeof *slot;
  return 1;
}

static int threads_now(void) {
  DIR *d = opendir("/proc/self/task");
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    n += e->d_name[0] != '.';
  if (d)
    closedir(d);
  return n;
}

static int64_t result_of(mpx_future *f) {
  const void *d = NULL;
  size_t l = 0;
  int64_t v = -1;
  if (mpx_future_result(f, MPX_FOREVER, &d, &l) == 0 && l == sizeof v)
    memcpy(&v, d, sizeof v);
  return v;
}

static int submit_nap(mpx_executor *ex, int64_t us, int64_t x, mpx_future **f) {
  int64_t a[2] = {us, x};
  return mpx_submit(ex, "nap3", a, sizeof a, f);
}

/* Outcomes the root records while the pool is live, checked by CUnit. */
static struct {
  int create_rc, mode, threads_before, threads_after;
  int thread_refused_all; /* MPX_PROGRESS_THREAD refused on every rank */
  char thread_msg[512];
  int computed_ok, computed_done_by_progress;
  int wait_ok, as_completed_ok, map_ok, umap_ok, job_ok;
  int cb_on_main, cb_progress_rc;
  int other_progress_rc, other_wait_rc, other_late_ok;
  int shutdown_ok;
} R;

typedef struct cbctx {
  mpx_executor *ex;
  atomic_int ran;
  int on_main, progress_rc;
} cbctx;

static void on_done(mpx_future *f, void *arg) {
  (void)f;
  cbctx *c = arg;
  c->on_main = pthread_equal(pthread_self(), main_thread) != 0;
  c->progress_rc = mpx_executor_progress(c->ex);
  atomic_store(&c->ran, 1);
}

typedef struct other {
  mpx_executor *ex;
  mpx_future *f;
  int progress_rc, wait_rc, late_rc;
  atomic_int started;
} other;

/* A second thread: may not turn the pool under FUNNELED, may wait for a
 * future (finished by the main thread's turns). */
static void *other_main(void *arg) {
  other *o = arg;
  o->progress_rc = mpx_executor_progress(o->ex);
  o->wait_rc = mpx_future_wait(o->f, 0.05); /* the main thread is asleep */
  atomic_store(&o->started, 1);
  o->late_rc = mpx_future_wait(o->f, 60.0);
  return NULL;
}

static void run_root(mpx_executor *ex) {
  int w = mpx_executor_workers(ex);
  R.mode = mpx_executor_progress_mode(ex);
  R.threads_after = threads_now();

  /* 1. compute between calls, with progress now and then */
  enum { N = 40 };
  mpx_future *fs[N];
  int sub = 1;
  for (int i = 0; i < N; i++)
    sub &= submit_nap(ex, 5000, i, &fs[i]) == 0;
  double end = now() + 60;
  int done = 0;
  while (sub && done < N && now() < end) {
    compute_ms(1);
    mpx_executor_progress(ex);
    done = 0;
    for (int i = 0; i < N; i++)
      done += mpx_future_done(fs[i]);
  }
  R.computed_done_by_progress = done == N;
  int ok = sub;
  for (int i = 0; sub && i < N; i++) {
    ok &= result_of(fs[i]) == 3 * i;
    mpx_future_destroy(&fs[i]);
  }
  R.computed_ok = ok;

  /* 2. mpx_wait and as_completed move the pool themselves */
  for (int i = 0; i < N; i++)
    sub &= submit_nap(ex, 2000, i, &fs[i]) == 0;
  size_t nd = 0;
  R.wait_ok = sub && mpx_wait(fs, N, MPX_ALL_COMPLETED, 60.0, NULL, &nd) == 0 &&
              nd == N;
  for (int i = 0; i < N; i++)
    mpx_future_destroy(&fs[i]);
  for (int i = 0; i < N; i++)
    sub &= submit_nap(ex, 1000, i, &fs[i]) == 0;
  mpx_as_completed *it = NULL;
  int seen = 0;
  int64_t sum = 0;
  if (sub && mpx_as_completed_create(fs, N, 60.0, &it) == 0) {
    mpx_future *y;
    while (mpx_as_completed_next(it, &y) == 0) {
      seen++;
      sum += result_of(y);
    }
    mpx_as_completed_destroy(&it);
  }
  R.as_completed_ok = seen == N && sum == 3 * (N * (N - 1) / 2);
  for (int i = 0; i < N; i++)
    mpx_future_destroy(&fs[i]);

  /* 3. maps, in order and unordered */
  for (int u = 0; u < 2; u++) {
    int64_t args[N][2];
    const void *ap[N];
    size_t al[N];
    for (int i = 0; i < N; i++) {
      args[i][0] = 500 * (i % 3);
      args[i][1] = i;
      ap[i] = args[i];
      al[i] = sizeof args[i];
    }
    mpx_map_options mo;
    mpx_map_options_init(&mo);
    mo.unordered = u;
    mo.chunksize = 3;
    mpx_map *m = NULL;
    int good = mpx_map_create(ex, "nap3", ap, al, N, &mo, &m) == 0;
    int count = 0;
    int64_t total = 0, last = -1, in_order = 1;
    mpx_map_item item;
    while (good && mpx_map_next(m, 60.0, &item) == 0) {
      int64_t v = -1;
      if (item.status == 0 && item.len == sizeof v)
        memcpy(&v, item.data, sizeof v);
      in_order &= (int64_t)item.index == last + 1;
      last = (int64_t)item.index;
      good &= v == 3 * (int64_t)item.index;
      total += v;
      count++;
    }
    mpx_map_destroy(&m);
    good &= count == N && total == 3 * (N * (N - 1) / 2);
    if (u)
      R.umap_ok = good;
    else
      R.map_ok = good && in_order;
  }

  /* 4. a job into an HDF5 file */
  char path[] = "/tmp/mpx-progress-XXXXXX";
  if (mkdtemp(path)) {
    char file[600];
    snprintf(file, sizeof file, "%s/job.h5", path);
    mpx_job_report rep;
    int64_t slot;
    int rc =
        mpx_job_run(ex, "row3", produce, &slot, 50, NULL, file, NULL, &rep);
    R.job_ok = rc == 0 && rep.items == 50 && rep.computed == 50 &&
               rep.failed == 0 && rep.rows == 50;
    if (!R.job_ok)
      fprintf(stderr, "\n  job: %s: %s\n", mpx_err_name(rc), mpx_last_error());
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", path);
  }

  /* 5. a done-callback runs on the main thread and may not turn */
  cbctx c = {ex, 0, 0, 0};
  mpx_future *f = NULL;
  if (submit_nap(ex, 20000, 7, &f) == 0 &&
      mpx_future_add_done_callback(f, on_done, &c) == 0) {
    result_of(f);
    R.cb_on_main = c.on_main;
    R.cb_progress_rc = c.progress_rc;
  }
  mpx_future_destroy(&f);

  /* 6. a second thread */
  other o = {ex, NULL, -100, -100, -100, 0};
  if (submit_nap(ex, 10000, 9, &o.f) == 0) {
    pthread_t th;
    if (pthread_create(&th, NULL, other_main, &o) == 0) {
      while (!atomic_load(&o.started))
        usleep(1000);
      /* now the main thread turns the pool until the other's wait ends */
      mpx_future_wait(o.f, 60.0);
      pthread_join(th, NULL);
    }
    R.other_progress_rc = o.progress_rc;
    R.other_wait_rc = o.wait_rc;
    R.other_late_ok = o.late_rc == 0 && result_of(o.f) == 27;
  }
  mpx_future_destroy(&o.f);
  (void)w;
}

static void test_auto_mode(void) {
  CU_ASSERT_EQUAL(R.create_rc, 0);
  CU_ASSERT_EQUAL(R.mode, size > 1 ? MPX_PROGRESS_CALLER : MPX_PROGRESS_THREAD);
}

static void test_thread_refused(void) {
  if (size == 1)
    return; /* a one-rank pool's thread makes no MPI call: allowed */
  CU_ASSERT_TRUE(R.thread_refused_all);
  CU_ASSERT_PTR_NOT_NULL(strstr(R.thread_msg, "MPX_PROGRESS"));
}

static void test_no_thread(void) {
  /* a one-rank pool has its thread */
  CU_ASSERT_EQUAL(R.threads_after, R.threads_before + (size == 1));
}

static void test_compute_progress(void) {
  CU_ASSERT_TRUE(R.computed_done_by_progress);
  CU_ASSERT_TRUE(R.computed_ok);
}

static void test_waits(void) {
  CU_ASSERT_TRUE(R.wait_ok);
  CU_ASSERT_TRUE(R.as_completed_ok);
}

static void test_maps_job(void) {
  CU_ASSERT_TRUE(R.map_ok);
  CU_ASSERT_TRUE(R.umap_ok);
  CU_ASSERT_TRUE(R.job_ok);
}

static void test_callback(void) {
  /* with a thread (one rank) the callback runs on it */
  CU_ASSERT_EQUAL(R.cb_on_main, size > 1);
  CU_ASSERT_EQUAL(R.cb_progress_rc, size > 1 ? MPX_EDEADLK : 0);
}

static void test_other_thread(void) {
  CU_ASSERT_EQUAL(R.other_progress_rc, size > 1 ? MPX_ETHREAD : 0);
  /* it timed out, or (one rank, a thread) the task was already done */
  CU_ASSERT(R.other_wait_rc == MPX_ETIMEDOUT || R.other_wait_rc == 0);
  CU_ASSERT_TRUE(R.other_late_ok);
}

static void test_shutdown(void) {
  CU_ASSERT_TRUE(R.shutdown_ok);
}

int main(int argc, char **argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  main_thread = pthread_self();
  mpx_register("nap3", nap3);
  mpx_register("row3", row3);

  /* MPX_PROGRESS_THREAD is refused under FUNNELED, on every rank. */
  mpx_executor_options o;
  mpx_executor_options_init(&o);
  o.progress = MPX_PROGRESS_THREAD;
  mpx_executor *ex = NULL;
  int trc = mpx_executor_create(MPI_COMM_WORLD, &o, &ex);
  if (trc)
    snprintf(R.thread_msg, sizeof R.thread_msg, "%s", mpx_last_error());
  int mine = trc == MPX_ETHREAD && ex == NULL;
  MPI_Allreduce(&mine, &R.thread_refused_all, 1, MPI_INT, MPI_MIN,
                MPI_COMM_WORLD);
  if (ex) { /* one rank: a thread is fine */
    mpx_executor_shutdown(ex, 1, 0);
    mpx_executor_destroy(&ex);
  }

  R.threads_before = threads_now();
  mpx_executor_options_init(&o); /* MPX_PROGRESS_AUTO */
  R.create_rc = mpx_executor_create(MPI_COMM_WORLD, &o, &ex);
  if (ex) {
    run_root(ex);
    R.shutdown_ok =
        mpx_executor_shutdown(ex, 1, 0) == 0 && mpx_executor_destroy(&ex) == 0;
  }
  if (rank == 0) {
    if (provided != MPI_THREAD_FUNNELED)
      fprintf(stderr, "note: MPI gave thread level %d for FUNNELED\n",
              provided);
    CU_initialize_registry();
    CU_pSuite s =
        CU_add_suite("caller progress (MPI_THREAD_FUNNELED)", NULL, NULL);
    CU_add_test(s, "auto picks caller progress", test_auto_mode);
    CU_add_test(s, "MPX_PROGRESS_THREAD refused", test_thread_refused);
    CU_add_test(s, "no manager thread", test_no_thread);
    CU_add_test(s, "computing with mpx_executor_progress",
                test_compute_progress);
    CU_add_test(s, "mpx_wait, as_completed", test_waits);
    CU_add_test(s, "maps and a job", test_maps_job);
    CU_add_test(s, "done-callbacks on the main thread", test_callback);
    CU_add_test(s, "a second thread", test_other_thread);
    CU_add_test(s, "shutdown and destroy", test_shutdown);
  }
  int failures = mt_run_on_root();
  MPI_Finalize();
  return failures ? 1 : 0;
}
