/*
 * test_map.c -- mpx_map_*: ordered and unordered maps over arrays,
 * producers and index ranges, at several chunk sizes; failed inputs at
 * their positions; the window bound; cancel, shutdown and destroy in the
 * middle of a map; timeouts; typed array results.
 *
 * Each test builds its own pool with mt_pool_begin(): the root runs the
 * checks while the other ranks serve tasks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpx_test_mpi.h"

static int register_rc;

/* x -> 3x + 1; fails for x % 10 == 3 */
static int task_f(mpx_task_ctx *ctx, const void *arg, size_t len) {
  uint64_t x;
  if (len != sizeof x)
    return mpx_task_fail(ctx, "f wants 8 bytes, got %zu", len);
  memcpy(&x, arg, sizeof x);
  if (x % 10 == 3)
    return mpx_task_fail(ctx, "x = %llu ends in 3", (unsigned long long)x);
  x = 3 * x + 1;
  return mpx_task_return(ctx, &x, sizeof x);
}

/* sleeps arg microseconds, returns arg */
static int task_nap(mpx_task_ctx *ctx, const void *arg, size_t len) {
  uint64_t us;
  if (len != sizeof us)
    return mpx_task_fail(ctx, "nap wants 8 bytes");
  memcpy(&us, arg, sizeof us);
  struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
  nanosleep(&ts, NULL);
  return mpx_task_return(ctx, &us, sizeof us);
}

/* returns its input */
static int task_echo(mpx_task_ctx *ctx, const void *arg, size_t len) {
  return mpx_task_return(ctx, arg, len);
}

/* {start, stop} -> arrays idx int64 [m], sq float64 [m x 2], label str [m] */
static int task_arrays(mpx_task_ctx *ctx, const void *arg, size_t len) {
  int64_t b[2];
  if (len != sizeof b)
    return mpx_task_fail(ctx, "arrays wants a range");
  memcpy(b, arg, sizeof b);
  size_t m = (size_t)(b[1] - b[0]);
  int64_t *idx = mpx_task_array(ctx, "idx", MPX_INT64, m, 1);
  double *sq = mpx_task_array(ctx, "sq", MPX_FLOAT64, m, 2);
  if (!idx || !sq)
    return mpx_task_fail(ctx, "no memory");
  char **labels = calloc(m ? m : 1, sizeof *labels);
  for (size_t i = 0; i < m; i++) {
    idx[i] = b[0] + (int64_t)i;
    sq[2 * i] = (double)idx[i] * (double)idx[i];
    sq[2 * i + 1] = -(double)idx[i];
    labels[i] = malloc(32);
    snprintf(labels[i], 32, "item-%lld", (long long)idx[i]);
  }
  int rc = mpx_task_strings(ctx, "label", (const char *const *)labels, m);
  for (size_t i = 0; i < m; i++)
    free(labels[i]);
  free(labels);
  if (rc)
    return mpx_task_fail(ctx, "strings: %d", rc);
  return 0;
}

/* ---- helpers ---------------------------------------------------------------
 */

/* Checks one item of a map of task_f over inputs 0..n-1. */
static void check_f_item(const mpx_map_item *it) {
  uint64_t x = it->index;
  if (x % 10 == 3) {
    CU_ASSERT_EQUAL(it->status, MPX_ETASK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(it->error);
    CU_ASSERT_PTR_NOT_NULL(strstr(it->error, "ends in 3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(it->error, "task 'f' failed on rank"));
  } else {
    CU_ASSERT_EQUAL_FATAL(it->status, 0);
    CU_ASSERT_EQUAL_FATAL(it->len, 8);
    uint64_t y;
    memcpy(&y, it->data, 8);
    CU_ASSERT_EQUAL(y, 3 * x + 1);
  }
}

/* Builds inputs 0..n-1 as 8-byte values. */
static void make_inputs(uint64_t n, uint64_t **vals, const void ***args,
                        size_t **lens) {
  *vals = malloc((n ? n : 1) * sizeof **vals);
  *args = malloc((n ? n : 1) * sizeof **args);
  *lens = malloc((n ? n : 1) * sizeof **lens);
  for (uint64_t i = 0; i < n; i++) {
    (*vals)[i] = i;
    (*args)[i] = &(*vals)[i];
    (*lens)[i] = 8;
  }
}

/* ---- tests -----------------------------------------------------------------
 */

static void test_ordered_chunksizes(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    const uint64_t ns[] = {0, 1, 7, 100, 1000};
    const uint64_t cs[] = {1, 3, 16, 256};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
      for (size_t b = 0; b < sizeof cs / sizeof *cs; b++) {
        uint64_t n = ns[a], *vals;
        const void **args;
        size_t *lens;
        make_inputs(n, &vals, &args, &lens);
        mpx_map_options o;
        mpx_map_options_init(&o);
        o.chunksize = cs[b];
        mpx_map *m = NULL;
        CU_ASSERT_EQUAL_FATAL(mpx_map_create(ex, "f", args, lens, n, &o, &m),
                              0);
        mpx_map_item it;
        uint64_t got = 0;
        int rc;
        while ((rc = mpx_map_next(m, 30.0, &it)) == 0) {
          CU_ASSERT_EQUAL_FATAL(it.index, got);
          check_f_item(&it);
          got++;
        }
        CU_ASSERT_EQUAL(rc, MPX_EOF);
        CU_ASSERT_EQUAL(got, n);
        CU_ASSERT_EQUAL(mpx_map_next(m, 0, &it), MPX_EOF);
        uint64_t sub, yl;
        mpx_map_counts(m, &sub, &yl);
        CU_ASSERT_EQUAL(sub, n);
        CU_ASSERT_EQUAL(yl, n);
        mpx_map_destroy(&m);
        CU_ASSERT_PTR_NULL(m);
        free(vals);
        free(args);
        free(lens);
      }
  }
  mt_pool_end(&ex, ok);
}

static void test_unordered(void) {
  int ok;
  mpx_executor_options po;
  mpx_executor_options_init(&po);
  po.max_batch = 1; /* the slow input travels alone, */
  po.prefetch = 1;  /* and nothing waits behind it */
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, &po, &ok);
  if (ex) {
    const uint64_t cs[] = {1, 5, 64};
    for (size_t b = 0; b < 3; b++) {
      uint64_t n = 2000, *vals;
      const void **args;
      size_t *lens;
      make_inputs(n, &vals, &args, &lens);
      mpx_map_options o;
      mpx_map_options_init(&o);
      o.chunksize = cs[b];
      o.unordered = 1;
      o.window = 100;
      mpx_map *m;
      CU_ASSERT_EQUAL_FATAL(mpx_map_create(ex, "f", args, lens, n, &o, &m), 0);
      unsigned char *seen = calloc(n, 1);
      mpx_map_item it;
      int rc;
      uint64_t got = 0;
      while ((rc = mpx_map_next(m, 30.0, &it)) == 0) {
        CU_ASSERT_FATAL(it.index < n);
        seen[it.index]++;
        check_f_item(&it);
        got++;
      }
      CU_ASSERT_EQUAL(rc, MPX_EOF);
      CU_ASSERT_EQUAL(got, n);
      for (uint64_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(seen[i], 1);
      mpx_map_destroy(&m);
      free(seen);
      free(vals);
      free(args);
      free(lens);
    }
    /* Completion order: a slow first input comes last. */
    uint64_t naps[4] = {300000, 1000, 1000, 1000};
    const void *args[4] = {&naps[0], &naps[1], &naps[2], &naps[3]};
    size_t lens[4] = {8, 8, 8, 8};
    mpx_map_options o;
    mpx_map_options_init(&o);
    o.unordered = 1;
    mpx_map *m;
    CU_ASSERT_EQUAL_FATAL(mpx_map_create(ex, "nap", args, lens, 4, &o, &m), 0);
    mpx_map_item it;
    uint64_t order[4], k = 0;
    while (k < 4 && mpx_map_next(m, 30.0, &it) == 0)
      order[k++] = it.index;
    CU_ASSERT_EQUAL(k, 4);
    /* with one worker (or one rank) the inputs run in turn */
    if (mt_size() > 2)
      CU_ASSERT_EQUAL(order[3], 0);
    mpx_map_destroy(&m);
  }
  mt_pool_end(&ex, ok);
}

/* A producer over 0..limit-1 that records how far ahead of the consumer it
 * ever got. */
typedef struct prod {
  uint64_t limit, produced, val;
  uint64_t *consumed;
  uint64_t max_ahead;
  int fail_at; /* produce this index as an error, or -1 */
} prod;

static int producer(void *arg, uint64_t index, const void **data, size_t *len) {
  prod *p = arg;
  if (index >= p->limit)
    return 0;
  if (p->fail_at >= 0 && index == (uint64_t)p->fail_at)
    return MPX_EIO;
  CU_ASSERT_EQUAL(index, p->produced);
  p->produced = index + 1;
  uint64_t ahead = p->produced - *p->consumed;
  if (ahead > p->max_ahead)
    p->max_ahead = ahead;
  p->val = index;
  *data = &p->val;
  *len = sizeof p->val;
  return 1;
}

static void test_producer_window(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    const uint64_t cs[] = {1, 4, 50};
    for (size_t b = 0; b < 3; b++) {
      uint64_t consumed = 0;
      prod p = {5000, 0, 0, &consumed, 0, -1};
      mpx_map_options o;
      mpx_map_options_init(&o);
      o.chunksize = cs[b];
      o.window = 200;
      mpx_map *m;
      /* n unknown: the producer says when it ends */
      CU_ASSERT_EQUAL_FATAL(mpx_map_create_producer(ex, "f", producer, &p,
                                                    MPX_MAP_UNKNOWN, &o, &m),
                            0);
      mpx_map_item it;
      int rc;
      while ((rc = mpx_map_next(m, 30.0, &it)) == 0) {
        CU_ASSERT_EQUAL_FATAL(it.index, consumed);
        check_f_item(&it);
        consumed++;
      }
      CU_ASSERT_EQUAL(rc, MPX_EOF);
      CU_ASSERT_EQUAL(consumed, 5000);
      /* never more than the window (plus the item being yielded) ahead */
      CU_ASSERT(p.max_ahead <= 200 + cs[b]);
      CU_ASSERT(p.max_ahead >= 100);
      mpx_map_destroy(&m);
    }
    /* first > 0 and a known n: only [first, n) is produced */
    uint64_t consumed = 0;
    prod p = {1000, 400, 0, &consumed, 0, -1};
    mpx_map_options o;
    mpx_map_options_init(&o);
    o.first = 400;
    o.chunksize = 7;
    mpx_map *m;
    CU_ASSERT_EQUAL_FATAL(
        mpx_map_create_producer(ex, "f", producer, &p, 1000, &o, &m), 0);
    mpx_map_item it;
    uint64_t expect = 400;
    consumed = 400;
    while (mpx_map_next(m, 30.0, &it) == 0) {
      CU_ASSERT_EQUAL(it.index, expect);
      check_f_item(&it);
      expect++;
      consumed++;
    }
    CU_ASSERT_EQUAL(expect, 1000);
    mpx_map_destroy(&m);
    /* a producer error ends the map once what was submitted is yielded */
    consumed = 0;
    prod q = {1000, 0, 0, &consumed, 0, 321};
    mpx_map_options_init(&o);
    o.chunksize = 10;
    CU_ASSERT_EQUAL_FATAL(
        mpx_map_create_producer(ex, "f", producer, &q, MPX_MAP_UNKNOWN, &o, &m),
        0);
    int rc;
    while ((rc = mpx_map_next(m, 30.0, &it)) == 0) {
      CU_ASSERT_EQUAL(it.index, consumed);
      consumed++;
    }
    CU_ASSERT_EQUAL(rc, MPX_EIO);
    CU_ASSERT_EQUAL(consumed, 321);
    CU_ASSERT_EQUAL(mpx_map_next(m, 0, &it), MPX_EOF);
    mpx_map_destroy(&m);
  }
  mt_pool_end(&ex, ok);
}

static void test_range(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    const int64_t his[] = {0, 1, 5, 10, 1001};
    const uint64_t ks[] = {1, 3, 8, 12};
    for (size_t a = 0; a < 5; a++)
      for (size_t b = 0; b < 4; b++) {
        int64_t lo = 5, hi = 5 + his[a];
        mpx_map *m;
        CU_ASSERT_EQUAL_FATAL(
            mpx_map_create_range(ex, "echo", lo, hi, ks[b], NULL, &m), 0);
        mpx_map_item it;
        uint64_t i = 0;
        int64_t prev_stop = lo;
        while (mpx_map_next(m, 30.0, &it) == 0) {
          CU_ASSERT_EQUAL_FATAL(it.len, 16);
          int64_t bnd[2];
          memcpy(bnd, it.data, 16);
          uint64_t s, e;
          mpx_array_split((uint64_t)(hi - lo), ks[b], i, &s, &e);
          CU_ASSERT_EQUAL(bnd[0], lo + (int64_t)s);
          CU_ASSERT_EQUAL(bnd[1], lo + (int64_t)e);
          CU_ASSERT_EQUAL(bnd[0], prev_stop);
          prev_stop = bnd[1];
          i++;
        }
        CU_ASSERT_EQUAL(i, ks[b]);
        CU_ASSERT_EQUAL(prev_stop, hi);
        mpx_map_destroy(&m);
      }
    mpx_map *m = (mpx_map *)1;
    CU_ASSERT_EQUAL(mpx_map_create_range(ex, "echo", 5, 4, 2, NULL, &m),
                    MPX_EINVAL);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_EQUAL(mpx_map_create_range(ex, "echo", 0, 4, 0, NULL, &m),
                    MPX_EINVAL);
  }
  mt_pool_end(&ex, ok);
}

/* A map of "echo" over the inputs of fn(arg), n of them, in chunks of
 * chunksize; NULL if it could not be created. */
static mpx_map *producer_map(mpx_executor *ex, mpx_producer fn, void *arg,
                             uint64_t n, uint64_t chunksize) {
  mpx_map_options o;
  mpx_map_options_init(&o);
  o.chunksize = chunksize;
  mpx_map *m = NULL;
  return mpx_map_create_producer(ex, "echo", fn, arg, n, &o, &m) == 0 ? m
                                                                      : NULL;
}

/* One element of the arrays mapped below: 24 bytes, echoed back. */
typedef struct elem {
  uint64_t i;
  double x;
  char tag[8];
} elem;

/* mpx_map_create_array(): input i is element i of the array, ordered and
 * unordered, at several chunk sizes; n == 0 maps nothing; bad arrays fail
 * at creation naming the call. */
static void test_map_array(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    enum { N = 777 };
    static elem xs[N];
    for (uint64_t i = 0; i < N; i++) {
      xs[i].i = i;
      xs[i].x = 0.5 * (double)i;
      snprintf(xs[i].tag, sizeof xs[i].tag, "e%llu", (unsigned long long)i);
    }
    const uint64_t cs[] = {1, 7, 100};
    for (int un = 0; un < 2; un++)
      for (int c = 0; c < 3; c++) {
        mpx_map_options o;
        mpx_map_options_init(&o);
        o.chunksize = cs[c];
        o.unordered = un;
        mpx_map *m = NULL;
        CU_ASSERT_EQUAL_FATAL(
            mpx_map_create_array(ex, "echo", xs, N, sizeof xs[0], &o, &m), 0);
        static unsigned char seen[N];
        memset(seen, 0, sizeof seen);
        mpx_map_item it;
        uint64_t got = 0, bad = 0;
        while (mpx_map_next(m, 30.0, &it) == 0) {
          if (it.status != 0 || it.index >= N || it.len != sizeof(elem) ||
              memcmp(it.data, &xs[it.index], sizeof(elem)) != 0 ||
              seen[it.index] || (!un && it.index != got))
            bad++;
          else
            seen[it.index] = 1;
          got++;
        }
        CU_ASSERT_EQUAL(got, N);
        CU_ASSERT_EQUAL(bad, 0);
        mpx_map_destroy(&m);
      }
    /* Elements of 1 to 13 bytes (padded in the chunk), from a first
     * index (as a resumed job's map), past the end, and a window smaller
     * than two chunks. */
    static unsigned char bytes[N * 13];
    for (size_t i = 0; i < sizeof bytes; i++)
      bytes[i] = (unsigned char)(i * 131 + 7);
    for (size_t size = 1; size <= 13; size += 3)
      for (int f = 0; f < 5; f++) {
        const uint64_t firsts[] = {0, 388, N - 1, N, N + 5}, first = firsts[f];
        mpx_map_options o;
        mpx_map_options_init(&o);
        o.chunksize = 10;
        o.window = 15;
        o.first = first;
        mpx_map *m = NULL;
        CU_ASSERT_EQUAL_FATAL(
            mpx_map_create_array(ex, "echo", bytes, N, size, &o, &m), 0);
        mpx_map_item it;
        uint64_t want = first, bad = 0;
        while (mpx_map_next(m, 30.0, &it) == 0) {
          if (it.status != 0 || it.index != want || it.len != size ||
              memcmp(it.data, bytes + want * size, size) != 0)
            bad++;
          want++;
        }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(want, first > N ? first : N);
        mpx_map_destroy(&m);
      }
    /* The stock producer over an array (as a job takes it), with a count
     * equal to, below and above the array's, and unknown: the map ends
     * where the producer would; a bad array ends it with the producer's
     * error once what was submitted has been yielded. */
    mpx_elements e = {bytes, N, 5};
    const uint64_t ns[] = {N, 100, N + 50, MPX_MAP_UNKNOWN};
    for (int k = 0; k < 4; k++) {
      mpx_map *m = producer_map(ex, mpx_elements_producer, &e, ns[k], 16);
      CU_ASSERT_PTR_NOT_NULL_FATAL(m);
      mpx_map_item it;
      uint64_t want = 0, bad = 0;
      int rc;
      while ((rc = mpx_map_next(m, 30.0, &it)) == 0) {
        if (it.status != 0 || it.index != want || it.len != 5 ||
            memcmp(it.data, bytes + want * 5, 5) != 0)
          bad++;
        want++;
      }
      CU_ASSERT_EQUAL(rc, MPX_EOF);
      CU_ASSERT_EQUAL(bad, 0);
      CU_ASSERT_EQUAL(want, ns[k] < N ? ns[k] : N);
      mpx_map_destroy(&m);
    }
    mpx_elements nosize = {bytes, N, 0};
    mpx_map *bm = NULL;
    CU_ASSERT_EQUAL_FATAL(mpx_map_create_producer(ex, "echo",
                                                  mpx_elements_producer,
                                                  &nosize, N, NULL, &bm),
                          0);
    mpx_map_item bit;
    CU_ASSERT_EQUAL(mpx_map_next(bm, 30.0, &bit), MPX_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "mpx_elements_producer"));
    mpx_map_destroy(&bm);
    mpx_map *m = NULL;
    mpx_map_item it;
    CU_ASSERT_EQUAL_FATAL(
        mpx_map_create_array(ex, "echo", NULL, 0, 0, NULL, &m), 0);
    CU_ASSERT_EQUAL(mpx_map_next(m, 30.0, &it), MPX_EOF);
    mpx_map_destroy(&m);
    m = (mpx_map *)1;
    CU_ASSERT_EQUAL(mpx_map_create_array(ex, "echo", xs, N, 0, NULL, &m),
                    MPX_EINVAL);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "mpx_map_create_array"));
    CU_ASSERT_EQUAL(mpx_map_create_array(ex, "echo", NULL, N, 8, NULL, &m),
                    MPX_EINVAL);
    CU_ASSERT_EQUAL(
        mpx_map_create_array(ex, "echo", xs, UINT64_MAX / 2, 8, NULL, &m),
        MPX_E2BIG);
    CU_ASSERT_EQUAL(
        mpx_map_create_array(ex, "nosuch", xs, N, sizeof xs[0], NULL, &m),
        MPX_ENOTASK);
  }
  mt_pool_end(&ex, ok);
}

/* mpx_split_producer() through mpx_map_create_producer(): the parts equal
 * numpy's rule computed here independently (the first n % k parts hold
 * one item more), for k below, at and above n and for n == 0. */
static void test_map_split_producer(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    const uint64_t ns[] = {0, 3, 10, 1001};
    const uint64_t ks[] = {1, 3, 8, 12};
    for (size_t a = 0; a < 4; a++)
      for (size_t b = 0; b < 4; b++) {
        uint64_t n = ns[a], k = ks[b];
        mpx_split sp = {-3, -3 + (int64_t)n, k, {0, 0}};
        mpx_map *m = producer_map(ex, mpx_split_producer, &sp, k, 2);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        mpx_map_item it;
        uint64_t i = 0, bad = 0;
        int64_t start = -3;
        while (mpx_map_next(m, 30.0, &it) == 0) {
          int64_t count = (int64_t)(n / k + (i < n % k ? 1 : 0));
          mpx_range r = {0, 0};
          if (it.len == sizeof r)
            memcpy(&r, it.data, sizeof r);
          if (it.len != sizeof r || r.start != start || r.stop != start + count)
            bad++;
          start += count;
          i++;
        }
        CU_ASSERT_EQUAL(i, k);
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(start, -3 + (int64_t)n);
        mpx_map_destroy(&m);
      }
  }
  mt_pool_end(&ex, ok);
}

static void test_bad_args(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    mpx_map *m = (mpx_map *)1;
    uint64_t v = 1;
    const void *args[1] = {&v};
    size_t lens[1] = {8};
    CU_ASSERT_EQUAL(mpx_map_create(ex, "nope", args, lens, 1, NULL, &m),
                    MPX_ENOTASK);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "nope"));
    mpx_map_options o;
    mpx_map_options_init(&o);
    o.chunksize = 0;
    CU_ASSERT_EQUAL(mpx_map_create(ex, "f", args, lens, 1, &o, &m), MPX_EINVAL);
    CU_ASSERT_EQUAL(mpx_map_create(ex, "f", NULL, NULL, 1, NULL, &m),
                    MPX_EINVAL);
    CU_ASSERT_EQUAL(mpx_map_create(NULL, "f", args, lens, 1, NULL, &m),
                    MPX_EINVAL);
    CU_ASSERT_EQUAL(mpx_map_create_producer(ex, "f", NULL, NULL, 1, NULL, &m),
                    MPX_EINVAL);
    /* a NULL input with a length is refused when it is produced */
    const void *bad[2] = {&v, NULL};
    size_t blen[2] = {8, 8};
    CU_ASSERT_EQUAL_FATAL(mpx_map_create(ex, "f", bad, blen, 2, NULL, &m), 0);
    mpx_map_item it;
    CU_ASSERT_EQUAL(mpx_map_next(m, 30.0, &it), 0);
    CU_ASSERT_EQUAL(mpx_map_next(m, 30.0, &it), MPX_EINVAL);
    CU_ASSERT_EQUAL(mpx_map_next(m, 30.0, &it), MPX_EOF);
    mpx_map_destroy(&m);
    CU_ASSERT_EQUAL(mpx_map_next(NULL, 0, &it), MPX_EINVAL);
    mpx_map_destroy(NULL);
    mpx_map_destroy(&m);
  }
  mt_pool_end(&ex, ok);
}

static void test_timeout_and_cancel(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    /* 200 naps of 5 ms, window 20: cancel after 10 results */
    enum { N = 200 };
    uint64_t naps[N];
    const void *args[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
      naps[i] = 5000;
      args[i] = &naps[i];
      lens[i] = 8;
    }
    naps[0] = 1000000; /* long enough that a loaded machine still sees the
                          first waits time out */
    mpx_map_options o;
    mpx_map_options_init(&o);
    o.window = 20;
    mpx_map *m;
    CU_ASSERT_EQUAL_FATAL(mpx_map_create(ex, "nap", args, lens, N, &o, &m), 0);
    mpx_map_item it;
    int first = mpx_map_next(m, 0.01, &it);
    if (first != MPX_ETIMEDOUT)
      printf("\n    mpx_map_next: %s, item %llu status %s (%s) on rank %d\n",
             mpx_err_name(first), (unsigned long long)it.index,
             mpx_err_name(it.status), it.error ? it.error : "", it.worker);
    CU_ASSERT_EQUAL(first, MPX_ETIMEDOUT);
    /* the timeout rule: a negative (computed) timeout polls, NaN is
     * refused; neither blocks while input 0 naps */
    CU_ASSERT_EQUAL(mpx_map_next(m, -0.001, &it), MPX_ETIMEDOUT);
    CU_ASSERT_EQUAL(mpx_map_next(m, __builtin_nan(""), &it), MPX_EINVAL);
    CU_ASSERT_EQUAL(mpx_map_next(m, 30.0, &it), 0);
    CU_ASSERT_EQUAL(it.index, 0);
    for (int i = 1; i < 10; i++) {
      CU_ASSERT_EQUAL(mpx_map_next(m, 30.0, &it), 0);
      CU_ASSERT_EQUAL(it.status, 0);
    }
    CU_ASSERT_EQUAL(mpx_map_cancel(m), 0);
    uint64_t after = 0, cancelled = 0, prev = 9;
    int rc;
    while ((rc = mpx_map_next(m, 30.0, &it)) == 0) {
      CU_ASSERT_EQUAL(it.index, prev + 1);
      prev = it.index;
      CU_ASSERT(it.status == 0 || it.status == MPX_ECANCELED);
      if (it.status == MPX_ECANCELED) {
        cancelled++;
        CU_ASSERT_PTR_NOT_NULL(it.error);
        CU_ASSERT_EQUAL(it.worker, -1);
      }
      after++;
    }
    CU_ASSERT_EQUAL(rc, MPX_EOF);
    uint64_t sub;
    mpx_map_counts(m, &sub, NULL);
    CU_ASSERT_EQUAL(10 + after, sub);
    CU_ASSERT(sub <= 10 + 20 + 1);
    CU_ASSERT(cancelled > 0);
    mpx_map_destroy(&m);

    /* destroy in the middle, ordered and unordered, with work running */
    for (int u = 0; u < 2; u++) {
      mpx_map_options_init(&o);
      o.unordered = u;
      o.chunksize = 3;
      CU_ASSERT_EQUAL_FATAL(mpx_map_create(ex, "nap", args, lens, N, &o, &m),
                            0);
      CU_ASSERT_EQUAL(mpx_map_next(m, 30.0, &it), 0);
      mpx_map_destroy(&m);
    }
  }
  mt_pool_end(&ex, ok);
}

static void test_shutdown_mid_map(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    uint64_t consumed = 0;
    prod p = {100000, 0, 0, &consumed, 0, -1};
    mpx_map_options o;
    mpx_map_options_init(&o);
    o.window = 64;
    o.chunksize = 4;
    mpx_map *m;
    CU_ASSERT_EQUAL_FATAL(
        mpx_map_create_producer(ex, "f", producer, &p, 100000, &o, &m), 0);
    mpx_map_item it;
    for (int i = 0; i < 10; i++) {
      CU_ASSERT_EQUAL(mpx_map_next(m, 30.0, &it), 0);
      consumed++;
    }
    CU_ASSERT_EQUAL(mpx_executor_shutdown(ex, 0, 1), 0);
    int rc;
    uint64_t n = 10;
    while ((rc = mpx_map_next(m, 30.0, &it)) == 0) {
      CU_ASSERT_EQUAL(it.index, n);
      CU_ASSERT(it.status == 0 || it.status == MPX_ETASK ||
                it.status == MPX_ECANCELED);
      n++;
      consumed++;
    }
    CU_ASSERT_EQUAL(rc, MPX_ESHUTDOWN);
    CU_ASSERT(n < 100000);
    CU_ASSERT_EQUAL(mpx_map_next(m, 0, &it), MPX_EOF);
    mpx_map_destroy(&m);
    /* a map on a shut-down executor fails at creation */
    CU_ASSERT_EQUAL(mpx_map_create_range(ex, "echo", 0, 10, 2, NULL, &m),
                    MPX_ESHUTDOWN);
    CU_ASSERT_PTR_NULL(m);
  }
  mt_pool_end(&ex, ok);
}

static void test_typed_arrays(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    mpx_map *m;
    CU_ASSERT_EQUAL_FATAL(
        mpx_map_create_range(ex, "arrays", 0, 50, 4, NULL, &m), 0);
    mpx_map_item it;
    int64_t next = 0;
    while (mpx_map_next(m, 30.0, &it) == 0) {
      CU_ASSERT_EQUAL_FATAL(it.status, 0);
      mpx_array a[4];
      size_t n;
      CU_ASSERT_EQUAL_FATAL(mpx_arrays_parse(it.data, it.len, a, 4, &n), 0);
      CU_ASSERT_EQUAL_FATAL(n, 3);
      CU_ASSERT_STRING_EQUAL(a[0].name, "idx");
      CU_ASSERT_EQUAL(a[0].dtype, MPX_INT64);
      CU_ASSERT_STRING_EQUAL(a[1].name, "sq");
      CU_ASSERT_EQUAL(a[1].width, 2);
      CU_ASSERT_STRING_EQUAL(a[2].name, "label");
      CU_ASSERT_EQUAL(a[2].dtype, MPX_STRING);
      const int64_t *idx = a[0].data;
      const double *sq = a[1].data;
      const char *s = a[2].data;
      for (uint64_t r = 0; r < a[0].rows; r++) {
        CU_ASSERT_EQUAL(idx[r], next);
        CU_ASSERT_EQUAL(sq[2 * r], (double)next * (double)next);
        char want[32];
        snprintf(want, sizeof want, "item-%lld", (long long)next);
        CU_ASSERT_STRING_EQUAL(s, want);
        s += strlen(s) + 1;
        next++;
      }
      CU_ASSERT_EQUAL(a[1].rows, a[0].rows);
      CU_ASSERT_EQUAL(a[2].rows, a[0].rows);
      /* too small an output array */
      CU_ASSERT_EQUAL(mpx_arrays_parse(it.data, it.len, a, 2, &n), MPX_E2BIG);
      CU_ASSERT_EQUAL(n, 3);
      /* truncated buffers are refused, never read past */
      for (size_t cut = 1; cut < it.len; cut += 7)
        CU_ASSERT_NOT_EQUAL(mpx_arrays_parse(it.data, it.len - cut, a, 4, &n),
                            0);
    }
    CU_ASSERT_EQUAL(next, 50);
    mpx_map_destroy(&m);
    /* a raw result is not typed arrays */
    uint64_t v = 7;
    mpx_array a[1];
    size_t n;
    CU_ASSERT_EQUAL(mpx_arrays_parse(&v, 8, a, 1, &n), MPX_EINVAL);
    CU_ASSERT_EQUAL(mpx_arrays_parse(NULL, 0, a, 1, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
  }
  mt_pool_end(&ex, ok);
}

static void test_registration(void) {
  MT_ASSERT_ALL(register_rc == 0);
}

static const mt_test map_tests[] = {
    {"registration", test_registration},
    {"ordered map at chunk sizes 1..256", test_ordered_chunksizes},
    {"unordered map", test_unordered},
    {"producer and window bound", test_producer_window},
    {"map_range follows array_split", test_range},
    {"map over the elements of one array", test_map_array},
    {"split producer parts through a map", test_map_split_producer},
    {"bad arguments", test_bad_args},
    {"timeout, cancel and destroy mid-map", test_timeout_and_cancel},
    {"shutdown mid-map", test_shutdown_mid_map},
    {"typed array results", test_typed_arrays},
    {NULL, NULL}};

static const mt_suite suites[] = {{"map", map_tests}, {NULL, NULL}};

int main(int argc, char **argv) {
  mt_init(&argc, &argv);
  register_rc |= mpx_register("f", task_f);
  register_rc |= mpx_register("nap", task_nap);
  register_rc |= mpx_register("echo", task_echo);
  register_rc |= mpx_register("arrays", task_arrays);
  return mt_run(suites, 170);
}
