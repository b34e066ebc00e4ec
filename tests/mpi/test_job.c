/*
 * test_job.c -- mpx_job_run() through its API at 1, 2 and 4 ranks: typed
 * outputs of many inputs with varying rows, failed inputs recorded at their
 * positions while the job goes on, and the schema errors (a changed width,
 * type, set of arrays, unequal rows, raw bytes) that stop a job naming the
 * input, keeping what came before it. Files are checked by resuming them
 * (the record must verify) and, in tests/job, with h5py.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "mpx_test_mpi.h"

static int register_rc;

/* Input: uint64 index i. Output: rows = i % 4 rows of val float32 [x 3]
 * (= i + column) and name str ("i-r"); "mode" says how to misbehave. */
static int rows_task(mpx_task_ctx *ctx, const void *arg, size_t len) {
  uint64_t in[2];
  if (len != sizeof in)
    return mpx_task_fail(ctx, "want {index, mode}");
  memcpy(in, arg, sizeof in);
  uint64_t i = in[0], mode = in[1];
  if (mode == 1 && i % 5 == 2)
    return mpx_task_fail(ctx, "input %llu fails", (unsigned long long)i);
  if (mode == 6 && i == 7)
    return mpx_task_return(ctx, &i, sizeof i); /* raw bytes */
  if (mode == 7) { /* many arrays: a000..a099, i % 4 rows of i*1000+k */
    for (int k = 0; k < 100; k++) {
      char nm[16];
      snprintf(nm, sizeof nm, "a%03d", k);
      int32_t *v = mpx_task_array(ctx, nm, MPX_INT32, (size_t)(i % 4), 1);
      if (!v)
        return mpx_task_fail(ctx, "no memory");
      for (size_t r = 0; r < i % 4; r++)
        v[r] = (int32_t)(i * 1000 + (uint64_t)k);
    }
    return 0;
  }
  size_t m = (size_t)(i % 4);
  size_t width = mode == 2 && i == 7 ? 4 : 3;
  mpx_dtype t = mode == 3 && i == 7 ? MPX_FLOAT64 : MPX_FLOAT32;
  void *v = mpx_task_array(ctx, "val", t, m, width);
  if (!v)
    return mpx_task_fail(ctx, "no memory");
  for (size_t r = 0; r < m; r++)
    for (size_t c = 0; c < width; c++)
      if (t == MPX_FLOAT32)
        ((float *)v)[r * width + c] = (float)(i + c);
  if (mode == 4 && i == 7)
    return 0; /* no "name" array */
  size_t nm = mode == 5 && i == 7 ? m + 1 : m;
  char buf[8][32];
  const char *names[8];
  for (size_t r = 0; r < nm; r++) {
    snprintf(buf[r], sizeof buf[r], "%llu-%zu", (unsigned long long)i, r);
    names[r] = buf[r];
  }
  return mpx_task_strings(ctx, "name", names, nm) ? mpx_task_fail(ctx, "x") : 0;
}

/* Input: an mpx_range. Output: idx int64, one row per index of the part,
 * so a job over the parts of [0, n) holds exactly n rows. */
static int part_task(mpx_task_ctx *ctx, const void *arg, size_t len) {
  mpx_range r;
  if (len != sizeof r)
    return mpx_task_fail(ctx, "want an mpx_range, got %zu bytes", len);
  memcpy(&r, arg, sizeof r);
  if (r.stop < r.start)
    return mpx_task_fail(ctx, "stop %lld < start %lld", (long long)r.stop,
                         (long long)r.start);
  size_t m = (size_t)(r.stop - r.start);
  int64_t *idx = mpx_task_array(ctx, "idx", MPX_INT64, m, 1);
  if (!idx && m)
    return mpx_task_fail(ctx, "no memory");
  for (size_t j = 0; j < m; j++)
    idx[j] = r.start + (int64_t)j;
  return 0;
}

typedef struct src {
  uint64_t mode, pair[2];
} src;

static int produce(void *arg, uint64_t i, const void **d, size_t *l) {
  src *s = arg;
  s->pair[0] = i;
  s->pair[1] = s->mode;
  *d = s->pair;
  *l = sizeof s->pair;
  return 1;
}

static char path[256];

static void paths(const char *tag) {
  snprintf(path, sizeof path, "/tmp/mpx-test-job-%d-%s.h5", (int)getppid(),
           tag);
  char rec[300];
  snprintf(rec, sizeof rec, "%s.mpxrec", path);
  unlink(path);
  unlink(rec);
}

static void cleanup(void) {
  char rec[300];
  snprintf(rec, sizeof rec, "%s.mpxrec", path);
  unlink(path);
  unlink(rec);
}

/* The options of every job here: no fdatasync (and, by default, no
 * progress line). */
static void quiet_options(mpx_job_options *jo) {
  mpx_job_options_init(jo);
  jo->sync = 0;
}

static int run(mpx_executor *ex, uint64_t mode, uint64_t n, uint64_t cs,
               mpx_job_mode om, mpx_job_report *r) {
  src s = {mode, {0, 0}};
  mpx_map_options mo;
  mpx_map_options_init(&mo);
  mo.chunksize = cs;
  mpx_job_options jo;
  quiet_options(&jo);
  jo.mode = om;
  jo.commit_interval = 0.01;
  return mpx_job_run(ex, "rows", produce, &s, n, &mo, path, &jo, r);
}

static void test_rows_and_failures(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    const uint64_t cs[] = {1, 4, 64};
    for (int k = 0; k < 3; k++) {
      paths("rows");
      mpx_job_report r;
      CU_ASSERT_EQUAL(run(ex, 0, 1000, cs[k], MPX_JOB_CREATE, &r), 0);
      CU_ASSERT_EQUAL(r.complete, 0);
      CU_ASSERT_STRING_EQUAL(r.notes, "");
      CU_ASSERT_EQUAL(r.items, 1000);
      CU_ASSERT_EQUAL(r.computed, 1000);
      CU_ASSERT_EQUAL(r.failed, 0);
      CU_ASSERT_EQUAL(r.rows, 1500); /* 0+1+2+3 per 4 inputs */
      /* resuming a finished job verifies it and computes nothing */
      CU_ASSERT_EQUAL(run(ex, 0, 1000, cs[k], MPX_JOB_RESUME, &r), 0);
      CU_ASSERT_EQUAL(r.recorded, 1000);
      CU_ASSERT_EQUAL(r.computed, 0);
      CU_ASSERT_EQUAL(r.rows, 1500);
      CU_ASSERT_EQUAL(r.complete, 1); /* said in the report, not printed */
      CU_ASSERT_PTR_NOT_NULL(strstr(r.notes, "already complete"));
      /* failures are recorded and the job goes on */
      paths("fail");
      CU_ASSERT_EQUAL(run(ex, 1, 1000, cs[k], MPX_JOB_CREATE, &r), 0);
      CU_ASSERT_EQUAL(r.failed, 200);
      CU_ASSERT_EQUAL(r.computed, 1000);
      CU_ASSERT_EQUAL(r.rows, 1500 - 300); /* failed: i % 4 cycles 2,3,0,1 */
      CU_ASSERT_EQUAL(run(ex, 1, 1000, cs[k], MPX_JOB_RESUME, &r), 0);
      CU_ASSERT_EQUAL(r.failed, 200);
      CU_ASSERT_EQUAL(r.computed, 0);
      cleanup();
      paths("rows");
      cleanup();
    }
  }
  mt_pool_end(&ex, ok);
}

static void test_schema_errors(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    const char *want[] = {NULL,
                          NULL,
                          "'val' is float32 with 4 columns",
                          "'val' is float64 with 3 columns",
                          "holds 1 arrays, the output 2",
                          "has 4 rows but",
                          "not typed arrays"};
    for (uint64_t mode = 2; mode <= 6; mode++) {
      paths("schema");
      mpx_job_report r;
      int rc = run(ex, mode, 50, 1, MPX_JOB_CREATE, &r);
      CU_ASSERT_EQUAL(rc, MPX_ESCHEMA);
      CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "input 7"));
      CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), want[mode]));
      if (!strstr(mpx_last_error(), want[mode]))
        printf("\n  mode %llu: %s\n", (unsigned long long)mode,
               mpx_last_error());
      /* the inputs before it were committed and verify on resume (which
       * stops at the same input again) */
      CU_ASSERT_EQUAL(r.computed, 7);
      CU_ASSERT_EQUAL(run(ex, mode, 50, 1, MPX_JOB_RESUME, &r), MPX_ESCHEMA);
      CU_ASSERT_EQUAL(r.recorded, 7);
      cleanup();
    }
  }
  mt_pool_end(&ex, ok);
}

static void test_bad_args(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    paths("args");
    src s = {0, {0, 0}};
    mpx_job_report r;
    CU_ASSERT_EQUAL(
        mpx_job_run(ex, "rows", produce, &s, 0, NULL, path, NULL, &r),
        MPX_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "no inputs"));
    CU_ASSERT_EQUAL(mpx_job_run(ex, "rows", produce, &s, MPX_MAP_UNKNOWN, NULL,
                                path, NULL, &r),
                    MPX_EINVAL);
    CU_ASSERT_EQUAL(
        mpx_job_run(ex, "nope", produce, &s, 5, NULL, path, NULL, &r),
        MPX_ENOTASK);
    CU_ASSERT_EQUAL(mpx_job_run(ex, "rows", NULL, &s, 5, NULL, path, NULL, &r),
                    MPX_EINVAL);
    CU_ASSERT_EQUAL(mpx_job_run(ex, "rows", produce, &s, 5, NULL, "", NULL, &r),
                    MPX_EINVAL);
    mpx_job_options jo;
    mpx_job_options_init(&jo);
    jo.compression = 12;
    CU_ASSERT_EQUAL(
        mpx_job_run(ex, "rows", produce, &s, 5, NULL, path, &jo, &r),
        MPX_EINVAL);
    CU_ASSERT_EQUAL(access(path, F_OK), -1); /* nothing was created */
  }
  mt_pool_end(&ex, ok);
}

/* A producer that holds its job at input 0 until the test lets it go, and
 * fails at input fail_at (if not 0) with code fail_rc. */
typedef struct gate {
  src s;
  atomic_int started, release;
  uint64_t fail_at;
  int fail_rc;
} gate;

static int produce_gated(void *arg, uint64_t i, const void **d, size_t *l) {
  gate *g = arg;
  if (i == 0) {
    atomic_store(&g->started, 1);
    while (!atomic_load(&g->release))
      mt_sleep_ms(1);
  }
  if (g->fail_at && i == g->fail_at)
    return g->fail_rc;
  return produce(&g->s, i, d, l);
}

typedef struct job_call {
  mpx_executor *ex;
  gate *g;
  char path[256];
  int rc;
  mpx_job_report r;
} job_call;

static void *job_thread(void *arg) {
  job_call *c = arg;
  mpx_job_options jo;
  quiet_options(&jo);
  c->rc = mpx_job_run(c->ex, "rows", produce_gated, c->g, 40, NULL, c->path,
                      &jo, &c->r);
  return NULL;
}

static void test_one_job_at_a_time(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    paths("busy");
    gate g;
    memset(&g, 0, sizeof g);
    job_call c;
    memset(&c, 0, sizeof c);
    c.ex = ex;
    c.g = &g;
    snprintf(c.path, sizeof c.path, "%s", path);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, job_thread, &c), 0);
    while (!atomic_load(&g.started))
      mt_sleep_ms(1);
    /* HDF5 is not thread-safe: a second job waits its turn */
    char other[300];
    snprintf(other, sizeof other, "%s-2.h5", path);
    src s = {0, {0, 0}};
    mpx_job_report r;
    CU_ASSERT_EQUAL(
        mpx_job_run(ex, "rows", produce, &s, 5, NULL, other, NULL, &r),
        MPX_EBUSY);
    CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "another job"));
    CU_ASSERT_EQUAL(access(other, F_OK), -1);
    atomic_store(&g.release, 1);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(c.rc, 0);
    CU_ASSERT_EQUAL(c.r.computed, 40);
    cleanup();
    /* then it runs */
    paths("busy");
    CU_ASSERT_EQUAL(run(ex, 0, 5, 1, MPX_JOB_CREATE, &r), 0);
    cleanup();
  }
  mt_pool_end(&ex, ok);
}

static void test_producer_failure(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    paths("producer");
    gate g;
    memset(&g, 0, sizeof g);
    atomic_store(&g.release, 1);
    g.fail_at = 3;
    g.fail_rc = MPX_EINVAL;
    uint64_t s, e; /* leaves an unrelated message behind */
    CU_ASSERT_EQUAL(mpx_array_split(5, 0, 0, &s, &e), MPX_EINVAL);
    mpx_job_options jo;
    quiet_options(&jo);
    mpx_map_options mo;
    mpx_map_options_init(&mo);
    mo.chunksize = 1;
    mpx_job_report r;
    CU_ASSERT_EQUAL(
        mpx_job_run(ex, "rows", produce_gated, &g, 10, &mo, path, &jo, &r),
        MPX_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(mpx_last_error(), "the producer failed at input 3"));
    CU_ASSERT_EQUAL(r.computed, 3); /* what came before it is kept */
    cleanup();
  }
  mt_pool_end(&ex, ok);
}

/* More arrays than fit the writer's parse space on the stack: 100 per
 * result, written and resumed. */
static void test_many_arrays(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    paths("many");
    mpx_job_report r;
    CU_ASSERT_EQUAL(run(ex, 7, 200, 3, MPX_JOB_CREATE, &r), 0);
    CU_ASSERT_EQUAL(r.rows, 300);
    CU_ASSERT_EQUAL(run(ex, 7, 200, 3, MPX_JOB_RESUME, &r), 0);
    CU_ASSERT_EQUAL(r.recorded, 200);
    CU_ASSERT_EQUAL(r.rows, 300);
    /* the lock is gone with the job */
    char lock[300];
    snprintf(lock, sizeof lock, "%s.mpxlock", path);
    CU_ASSERT_NOT_EQUAL(access(lock, F_OK), 0);
    cleanup();
  }
  mt_pool_end(&ex, ok);
}

/* A resume of another identity is refused, naming both; an interrupt
 * asked before a job stops it at its start, and 0 clears it. */
static void test_identity_and_interrupt(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    paths("ident");
    src s = {0, {0, 0}};
    mpx_map_options mo;
    mpx_map_options_init(&mo);
    mpx_job_options jo;
    quiet_options(&jo);
    jo.identity = "inputs v1";
    mpx_job_report r;
    CU_ASSERT_EQUAL(
        mpx_job_run(ex, "rows", produce, &s, 40, &mo, path, &jo, &r), 0);
    jo.mode = MPX_JOB_RESUME;
    jo.identity = "inputs v2";
    CU_ASSERT_EQUAL(
        mpx_job_run(ex, "rows", produce, &s, 40, &mo, path, &jo, &r),
        MPX_EFILE);
    CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "inputs v1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "inputs v2"));
    jo.identity = NULL;
    CU_ASSERT_EQUAL(
        mpx_job_run(ex, "rows", produce, &s, 40, &mo, path, &jo, &r),
        MPX_EFILE);
    jo.identity = "inputs v1";
    jo.compression = 3;
    CU_ASSERT_EQUAL(
        mpx_job_run(ex, "rows", produce, &s, 40, &mo, path, &jo, &r),
        MPX_EFILE);
    CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "gzip"));
    jo.compression = 0;
    CU_ASSERT_EQUAL(
        mpx_job_run(ex, "rows", produce, &s, 40, &mo, path, &jo, &r), 0);
    CU_ASSERT_EQUAL(r.recorded, 40);
    cleanup();
    paths("intr");
    jo.mode = MPX_JOB_CREATE;
    mpx_job_interrupt(SIGUSR1);
    CU_ASSERT_EQUAL(
        mpx_job_run(ex, "rows", produce, &s, 40, &mo, path, &jo, &r),
        MPX_EINTR);
    CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "SIGUSR1"));
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0); /* nothing was done */
    mpx_job_interrupt(0);
    CU_ASSERT_EQUAL(
        mpx_job_run(ex, "rows", produce, &s, 40, &mo, path, &jo, &r), 0);
    cleanup();
  }
  mt_pool_end(&ex, ok);
}

/* The stock producers drive jobs directly: the parts of an array_split
 * (k below and above n) give n rows in k inputs, and the elements of an
 * array of {index, mode} pairs give what the hand-written producer gives. */
static void test_stock_producers(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    mpx_job_options jo;
    quiet_options(&jo);
    mpx_job_report r;
    const uint64_t ns[] = {1000, 5, 0}, ks[] = {7, 12, 3};
    for (int c = 0; c < 3; c++) {
      paths("split");
      mpx_split sp = {0, (int64_t)ns[c], ks[c], {0, 0}};
      CU_ASSERT_EQUAL(mpx_job_run(ex, "part", mpx_split_producer, &sp, sp.k,
                                  NULL, path, &jo, &r),
                      0);
      CU_ASSERT_EQUAL(r.items, ks[c]);
      CU_ASSERT_EQUAL(r.computed, ks[c]);
      CU_ASSERT_EQUAL(r.failed, 0);
      CU_ASSERT_EQUAL(r.rows, ns[c]);
      cleanup();
    }
    enum { N = 1000 };
    static uint64_t pairs[N][2];
    for (uint64_t i = 0; i < N; i++) {
      pairs[i][0] = i;
      pairs[i][1] = 0;
    }
    paths("elements");
    mpx_elements e = {pairs, N, sizeof pairs[0]};
    mpx_map_options mo;
    mpx_map_options_init(&mo);
    mo.chunksize = 16;
    CU_ASSERT_EQUAL(mpx_job_run(ex, "rows", mpx_elements_producer, &e, N, &mo,
                                path, &jo, &r),
                    0);
    CU_ASSERT_EQUAL(r.items, N);
    CU_ASSERT_EQUAL(r.failed, 0);
    CU_ASSERT_EQUAL(r.rows, 1500); /* as test_rows_and_failures */
    cleanup();
  }
  mt_pool_end(&ex, ok);
}

/* Counts the calls of a host program's own HDF5 error handler. */
static int host_handler_calls;
static herr_t host_handler(hid_t stack, void *data) {
  (void)stack;
  (void)data;
  host_handler_calls++;
  return 0;
}

/* A job inside someone else's program: the host's HDF5 error handler is
 * back in place afterwards (and mpx's failures did not reach it), and with
 * the default options nothing is written to stderr, not even when the job
 * fails. */
static void test_host_program(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    int marker = 0;
    H5Eset_auto2(H5E_DEFAULT, host_handler, &marker);
    host_handler_calls = 0;
    char errpath[] = "/tmp/mpx-test-stderr-XXXXXX";
    int efd = mkstemp(errpath);
    CU_ASSERT_FATAL(efd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(efd, 2);
    paths("host");
    mpx_job_report r;
    CU_ASSERT_EQUAL(run(ex, 0, 100, 4, MPX_JOB_CREATE, &r), 0);
    /* HDF5 fails inside the job: the output beside its record is no
     * longer an HDF5 file, so the resume moves it aside and starts over;
     * then a create over it fails. */
    for (int k = 0; k < 2; k++) {
      FILE *junk = fopen(path, "w");
      if (junk) {
        fputs("not hdf5", junk);
        fclose(junk);
      }
      int rc = run(ex, 0, 100, 4, k ? MPX_JOB_CREATE : MPX_JOB_RESUME, &r);
      if (rc != (k ? MPX_EFILE : 0))
        printf("\n    job over a non-HDF5 output: %s\n", mpx_last_error());
      CU_ASSERT_EQUAL(rc, k ? MPX_EFILE : 0);
    }
    char aside[300];
    snprintf(aside, sizeof aside, "%s.unreadable", path);
    unlink(aside);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    struct stat st;
    CU_ASSERT(fstat(efd, &st) == 0 && st.st_size == 0);
    close(efd);
    unlink(errpath);
    H5E_auto2_t func = NULL;
    void *data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &func, &data);
    CU_ASSERT(func == host_handler && data == &marker);
    CU_ASSERT_EQUAL(host_handler_calls, 0);
    H5Eset_auto2(H5E_DEFAULT, (H5E_auto2_t)H5Eprint2, stderr);
    cleanup();
  }
  mt_pool_end(&ex, ok);
}

static void test_registration(void) {
  MT_ASSERT_ALL(register_rc == 0);
}

static const mt_test job_tests[] = {
    {"registration", test_registration},
    {"rows and failed inputs, resume of a finished job",
     test_rows_and_failures},
    {"schema errors name the input", test_schema_errors},
    {"bad arguments", test_bad_args},
    {"one job at a time", test_one_job_at_a_time},
    {"a producer's failure stops the job, keeping what came before",
     test_producer_failure},
    {"100 arrays per result", test_many_arrays},
    {"inside a host program: its HDF5 handler kept, nothing printed",
     test_host_program},
    {"jobs over the stock producers", test_stock_producers},
    {"identity and gzip checked on resume; interrupt",
     test_identity_and_interrupt},
    {NULL, NULL}};

static const mt_suite suites[] = {{"job", job_tests}, {NULL, NULL}};

int main(int argc, char **argv) {
  mt_init(&argc, &argv);
  register_rc |= mpx_register("rows", rows_task);
  register_rc |= mpx_register("part", part_task);
  return mt_run(suites, 170);
}
