/*
 * mpx_test_mpi.h -- the tiny harness shared by the CUnit programs that run
 * under mpirun (STYLE.md point 8).
 *
 * Every rank registers the same suites in the same order and runs every
 * test function, because the functions make collective calls (creating an
 * executor is collective: the root gets the executor, the other ranks serve
 * tasks inside mpx_executor_create() until the root destroys it). Only rank
 * 0 of MPI_COMM_WORLD asserts and prints; the other ranks run the suites
 * through CUnit's core runner, which prints nothing (CUnit 2.1-3's basic
 * runner still prints its run summary in CU_BRM_SILENT mode). At the end
 * the failure counts are reduced over all ranks, so every rank exits with
 * the same code and the log holds one CUnit summary.
 *
 * Checks that must hold on every rank (for example that creation failed
 * everywhere with the same code) are reduced with mt_allok() and asserted
 * on the root.
 *
 * A watchdog alarm on every rank turns a hang (a deadlock in the library,
 * a worker that never returns from mpx_executor_create) into a prompt,
 * explained failure instead of a bare ctest timeout.
 */
#ifndef MPX_TEST_MPI_H
#define MPX_TEST_MPI_H

#include <CUnit/CUnit.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "mpx.h"

typedef struct mt_test {
  const char *name;
  CU_TestFunc fn;
} mt_test;

typedef struct mt_suite {
  const char *name;
  const mt_test *tests; /* ends with {NULL, NULL} */
} mt_suite;

/* Initialises MPI through mpx_init() and records this rank and the size of
 * MPI_COMM_WORLD. Call first in main(), on every rank. Exits the process
 * with status 2 when MPI cannot be initialised. */
void mt_init(int *argc, char ***argv);

/* Runs the suites (NULL-name terminated) on every rank, reduces the
 * failures over all ranks, finalises MPI and returns the exit status every
 * rank shares: 0 without failures, 1 on failures, 2 when CUnit itself
 * failed somewhere. A non-zero watchdog_s arms an alarm on every rank that
 * aborts the run after that many seconds (the environment variable
 * MPX_TEST_WATCHDOG overrides it). */
int mt_run(const mt_suite *suites, unsigned watchdog_s);

/* For programs that initialise MPI themselves (at another thread level)
 * and do their MPI work before CUnit runs: rank 0 runs the tests it
 * registered with the basic runner (the summary CI reads) and cleans the
 * registry up; returns rank 0's failure count on every rank. Collective
 * over MPI_COMM_WORLD. */
int mt_run_on_root(void);

/* Arms the watchdog mt_run() uses (0: none; MPX_TEST_WATCHDOG overrides
 * it), for programs that cannot use mt_run(). */
void mt_watchdog(unsigned watchdog_s);

/* This process's rank in MPI_COMM_WORLD and the size of MPI_COMM_WORLD. */
int mt_rank(void);
int mt_size(void);

/* 1 on the rank that asserts and prints (rank 0 of MPI_COMM_WORLD). */
int mt_is_root(void);

/* Collective over MPI_COMM_WORLD: returns 1 on every rank when ok is
 * non-zero on every rank, else 0. On failure the root prints which ranks
 * failed, labelled with what. */
int mt_allok(int ok, const char *what);

/* Asserts on the root only. The library's root-only calls run where the
 * executor lives, which is the root in every test here, so this is the
 * assertion the test bodies use; on the other ranks it evaluates nothing. */
#define MT_ASSERT(cond)                                                        \
  do {                                                                         \
    if (mt_is_root()) {                                                        \
      CU_ASSERT(cond);                                                         \
    }                                                                          \
  } while (0)

/* Collective: reduces a per-rank condition and asserts the result on the
 * root. Every rank must reach it. */
#define MT_ASSERT_ALL(cond)                                                    \
  do {                                                                         \
    int mt_ok_ = mt_allok((cond) ? 1 : 0, #cond);                              \
    if (mt_is_root()) {                                                        \
      CU_assertImplementation(mt_ok_ ? CU_TRUE : CU_FALSE, __LINE__,           \
                              "on every rank: " #cond, __FILE__, "",           \
                              CU_FALSE);                                       \
    }                                                                          \
  } while (0)

/* Collective over comm: every rank creates an executor with opts (NULL for
 * the defaults) and *ok records whether this rank saw what the contract
 * promises: 0 returned, and an executor on the pool's root only. Returns
 * the executor on the pool's root and NULL on the other ranks, which have
 * served tasks until the root destroyed the pool. On failure the root
 * prints the code and mpx_last_error(). */
mpx_executor *mt_pool_begin(MPI_Comm comm, const mpx_executor_options *opts,
                            int *ok);

/* Collective: on the rank holding *ex (if any) shuts the pool down with
 * wait and destroys it, asserting both succeed; then asserts on the root
 * that ok held on every rank. Every rank that called mt_pool_begin()
 * calls it, with the ok that call gave. */
void mt_pool_end(mpx_executor **ex, int ok);

/* A task that sleeps for the milliseconds it is given as one int and
 * returns them; register it as "nap". */
int mt_task_nap(mpx_task_ctx *ctx, const void *arg, size_t len);

/* Submits one nap of ms on ex and waits for it: 1 when it succeeded. */
int mt_nap_once(mpx_executor *ex, int ms);

/* Monotonic clock in seconds. */
double mt_now(void);

/* Sleeps for ms milliseconds (restarting after signals). */
void mt_sleep_ms(unsigned ms);

/* A deterministic xorshift64* generator so that runs are reproducible. */
uint64_t mt_rand(uint64_t *state);

/* Waits up to timeout seconds for *counter to reach at least target;
 * returns 1 when it did. Callbacks may still be running on
 * the manager thread when a wait on their future returns, so tests poll
 * for them instead of assuming an order. */
int mt_wait_count(atomic_int *counter, int target, double timeout);

/* Whether the pool of the last mt_pool_begin() is moved by its callers
 * (MPX_PROGRESS_CALLER): its done-callbacks then run on the thread that
 * waits, and mt_wait_count() turns it (mpx_executor_progress) as a
 * program that computes between calls does. */
int mt_caller_mode(void);

/* 1 when the NUL-terminated text s contains sub (NULL s never does). */
int mt_contains(const char *s, const char *sub);

#endif
