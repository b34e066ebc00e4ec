/*
 * test_bigpayload.c -- payloads from zero bytes to 2.5 GiB travel intact.
 *
 * MPI counts are ints, so anything past 2^31 - 1 bytes must be split or
 * described with a derived type; this program checks that a 2.5 GiB
 * argument arrives bit-exact on the worker and comes back bit-exact as the
 * result, after a sweep of sizes around the usual thresholds with all of
 * them in flight together ("verify": the worker checks the argument;
 * "echo": the root checks the copy; "gen": the worker makes a result).
 * Buffers hold a position-dependent 64-bit pattern, checked completely.
 *
 * Time goes mostly to first-touch page faults of the fresh buffers (the
 * caller's, the submitted copy, the worker's argument and output, the
 * result), so the program makes one big round trip only.
 *
 * Memory: the 2.5 GiB round trip holds about four copies at once over all
 * ranks (the submitted copy, the worker's argument and output, the result
 * on the root), so it runs at 1 and 2 ranks only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpx_test_mpi.h"

#define GiB ((size_t)1 << 30)
#define BIG (5 * GiB / 2) /* 2.5 GiB */

/* Word i of the pattern with seed s: cheap, and different at every
 * position and for every seed. */
static inline uint64_t pat(uint64_t i, uint64_t s) {
  uint64_t x = (i + s) * 0x9E3779B97F4A7C15ULL;
  return x ^ (x >> 29);
}

static void fill(void *buf, size_t len, uint64_t seed) {
  uint64_t *w = buf;
  size_t n8 = len / 8;
  for (size_t i = 0; i < n8; i++)
    w[i] = pat(i, seed);
  if (len % 8) {
    uint64_t t = pat(n8, seed);
    memcpy((char *)buf + 8 * n8, &t, len % 8);
  }
}

/* Returns the number of 8-byte words (the partial last one included) that
 * differ from the pattern; buf must be 8-byte aligned. */
static size_t count_bad(const void *buf, size_t len, uint64_t seed) {
  const uint64_t *w = buf;
  size_t n8 = len / 8, bad = 0;
  for (size_t i = 0; i < n8; i++)
    bad += w[i] != pat(i, seed);
  if (len % 8) {
    uint64_t t = pat(n8, seed);
    bad += memcmp((const char *)buf + 8 * n8, &t, len % 8) != 0;
  }
  return bad;
}

/* ---- tasks ------------------------------------------------------------- */

static int task_echo(mpx_task_ctx *ctx, const void *arg, size_t len) {
  void *out = mpx_task_output(ctx, len);
  if (!out)
    return mpx_task_fail(ctx, "no memory for a %zu-byte result", len);
  if (len)
    memcpy(out, arg, len);
  return 0;
}

/* As echo, but first checks that the argument is the pattern seeded with
 * its length, so that a corrupt round trip tells which way it broke. */
static int task_echo_checked(mpx_task_ctx *ctx, const void *arg, size_t len) {
  if (len && ((uintptr_t)arg & 7u))
    return mpx_task_fail(ctx, "argument not 8-byte aligned");
  size_t bad = count_bad(arg, len, len);
  if (bad)
    return mpx_task_fail(ctx,
                         "the %zu-byte argument arrived with %zu bad "
                         "words",
                         len, bad);
  return task_echo(ctx, arg, len);
}

/* The argument is the pattern with the seed given by its length; returns
 * {length seen, bad words}. */
static int task_verify(mpx_task_ctx *ctx, const void *arg, size_t len) {
  if (len && ((uintptr_t)arg & 7u))
    return mpx_task_fail(ctx, "argument not 8-byte aligned");
  uint64_t r[2] = {len, count_bad(arg, len, len)};
  return mpx_task_return(ctx, r, sizeof r);
}

/* Produces {len, seed}'s pattern as its result. */
static int task_gen(mpx_task_ctx *ctx, const void *arg, size_t len) {
  if (len != 2 * sizeof(uint64_t))
    return mpx_task_fail(ctx, "gen wants {len, seed}");
  const uint64_t *a = arg;
  void *out = mpx_task_output(ctx, (size_t)a[0]);
  if (!out)
    return mpx_task_fail(ctx, "no memory for %llu bytes",
                         (unsigned long long)a[0]);
  fill(out, (size_t)a[0], a[1]);
  return 0;
}

/* ---- helpers ----------------------------------------------------------- */

/* Takes the result of f, checks it is len bytes of seed's pattern, frees
 * it and the future. Returns 1 when intact. */
static int take_and_check(mpx_future **f, size_t len, uint64_t seed,
                          const char *what) {
  void *d = NULL;
  size_t l = 0;
  int rc = *f ? mpx_future_take(*f, MPX_FOREVER, &d, &l) : MPX_EINVAL;
  size_t bad = 0;
  int good = rc == 0 && l == len && (len == 0 || d != NULL) &&
             ((uintptr_t)d & 7u) == 0;
  if (good && len)
    good = (bad = count_bad(d, len, seed)) == 0;
  if (!good && mt_is_root())
    printf("\n    %s of %zu bytes: rc %s, got %zu bytes, %zu bad words%s%s\n",
           what, len, mpx_err_name(rc), l, bad, *f ? " " : "",
           *f && mpx_future_error(*f) ? mpx_future_error(*f) : "");
  mpx_free(d);
  mpx_future_destroy(f);
  return good;
}

/* Prints how long a big transfer took, fill and checks included. */
static void report(const char *what, size_t len, double t0) {
  if (mt_is_root())
    printf("(%s of %.2f GiB: %.1f s) ", what, (double)len / (double)GiB,
           mt_now() - t0);
  fflush(stdout);
}

/* ---- tests ------------------------------------------------------------- */

static int register_rc; /* OR of the registrations in main */

static void test_register(void) {
  MT_ASSERT_ALL(register_rc == 0);
}

static void test_zero_length(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    mpx_future *f = NULL;
    MT_ASSERT(mpx_submit(ex, "echo", NULL, 0, &f) == 0);
    MT_ASSERT(take_and_check(&f, 0, 0, "echo"));
    uint64_t g[2] = {0, 1};
    MT_ASSERT(mpx_submit(ex, "gen", g, sizeof g, &f) == 0);
    MT_ASSERT(take_and_check(&f, 0, 1, "gen"));
  }
  mt_pool_end(&ex, ok);
}

/* Sizes around page, eager-limit and batching thresholds, all in flight at
 * once, mixed with tiny tasks. */
static void test_size_sweep(void) {
  static const size_t sizes[] = {1,
                                 7,
                                 8,
                                 9,
                                 4095,
                                 4096,
                                 4097,
                                 65535,
                                 65537,
                                 (1u << 20) - 1,
                                 (1u << 20) + 1,
                                 (4u << 20) - 1,
                                 4u << 20,
                                 (4u << 20) + 1,
                                 (16u << 20) + 3,
                                 (64u << 20) + 5};
  enum { N = sizeof sizes / sizeof sizes[0] };
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    mpx_future *fs[N] = {NULL}, *tiny[N] = {NULL};
    int sub = 1;
    for (int i = 0; i < N; i++) {
      void *b = malloc(sizes[i]);
      if (!b) {
        sub = 0;
        break;
      }
      fill(b, sizes[i], sizes[i]);
      sub &=
          mpx_submit(ex, i % 2 ? "echo" : "verify", b, sizes[i], &fs[i]) == 0;
      free(b); /* the arguments were copied */
      uint64_t g[2] = {(uint64_t)i, 77};
      sub &= mpx_submit(ex, "gen", g, sizeof g, &tiny[i]) == 0;
    }
    MT_ASSERT(sub);
    int good = 1;
    for (int i = 0; i < N; i++) {
      if (i % 2) {
        good &= take_and_check(&fs[i], sizes[i], sizes[i], "echo");
      } else {
        const void *d = NULL;
        size_t l = 0;
        int rc =
            fs[i] ? mpx_future_result(fs[i], MPX_FOREVER, &d, &l) : MPX_EINVAL;
        uint64_t r[2] = {0, 1};
        if (rc == 0 && l == sizeof r)
          memcpy(r, d, sizeof r);
        int g1 = rc == 0 && l == sizeof r && r[0] == sizes[i] && r[1] == 0;
        if (!g1 && mt_is_root())
          printf("\n    verify of %zu bytes: rc %s, saw %llu bytes, %llu "
                 "bad\n",
                 sizes[i], mpx_err_name(rc), (unsigned long long)r[0],
                 (unsigned long long)r[1]);
        good &= g1;
        mpx_future_destroy(&fs[i]);
      }
      good &= take_and_check(&tiny[i], (size_t)i, 77, "gen");
    }
    MT_ASSERT(good);
  }
  mt_pool_end(&ex, ok);
}

/* 2.5 GiB out and back: both messages are past INT_MAX bytes. The worker
 * checks the argument, the root the result. */
static void test_echo_2_5_gib(void) {
  int ok;
  mpx_executor *ex = mt_pool_begin(MPI_COMM_WORLD, NULL, &ok);
  if (ex) {
    double t0 = mt_now();
    void *b = malloc(BIG);
    MT_ASSERT(b != NULL);
    mpx_future *f = NULL;
    if (b) {
      fill(b, BIG, BIG);
      MT_ASSERT(mpx_submit(ex, "echo_checked", b, BIG, &f) == 0);
      free(b); /* the arguments were copied; the pattern is recomputed */
    }
    MT_ASSERT(take_and_check(&f, BIG, BIG, "echo_checked"));
    report("round trip", BIG, t0);
  }
  mt_pool_end(&ex, ok);
}

static const mt_test tests[] = {{"register", test_register},
                                {"zero_length", test_zero_length},
                                {"size_sweep", test_size_sweep},
                                {"echo_2_5_gib", test_echo_2_5_gib},
                                {NULL, NULL}};

static const mt_suite suites[] = {{"bigpayload", tests}, {NULL, NULL}};

int main(int argc, char **argv) {
  mt_init(&argc, &argv);
  register_rc |= mpx_register("echo", task_echo);
  register_rc |= mpx_register("verify", task_verify);
  register_rc |= mpx_register("gen", task_gen);
  register_rc |= mpx_register("echo_checked", task_echo_checked);
  return mt_run(suites, 580);
}
