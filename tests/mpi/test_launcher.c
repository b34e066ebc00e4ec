/*
 * test_launcher.c -- a program started by another MPI's launcher.
 *
 * An MPICH-built program under Open MPI's mpirun (or the other way round)
 * initialises as N separate one-process MPI jobs; each would run a pool of
 * its own and compute everything N times, exiting 0. Creation must refuse
 * with MPX_ELAUNCH, naming the variable that gave the launcher away. Run
 * at one process, the variables each launcher sets are put in the
 * environment after MPI_Init (as the other MPI's launcher would have set
 * them), then taken away again. The real thing, both ways, runs in
 * scripts/test.sh's MPICH stage.
 */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "mpx.h"
#include "mpx_test_mpi.h"

static int noop(mpx_task_ctx *ctx, const void *arg, size_t len) {
  (void)arg;
  (void)len;
  return mpx_task_return(ctx, NULL, 0);
}

/* Creates and tears down a pool; returns creation's code. */
static int create(void) {
  mpx_executor *ex = NULL;
  int rc = mpx_executor_create(MPI_COMM_WORLD, NULL, &ex);
  if (ex) {
    mpx_future *f = NULL;
    if (mpx_submit(ex, "noop", NULL, 0, &f) == 0)
      mpx_future_wait(f, MPX_FOREVER);
    mpx_future_destroy(&f);
    mpx_executor_shutdown(ex, 1, 0);
    mpx_executor_destroy(&ex);
  }
  return rc;
}

enum { NVARS = 6 };
static char *saved[NVARS];
static const char *const names[NVARS] = {
    "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS",
    "SLURM_STEP_NUM_TASKS", "PMI_RANK", "PMIX_RANK"};

static void clear_all(void) {
  for (int i = 0; i < NVARS; i++)
    unsetenv(names[i]);
  unsetenv("MPX_SINGLETON");
}

static void test_refused(void) {
  for (int i = 0; i < 3; i++) {
    clear_all();
    setenv(names[i], "4", 1);
    CU_ASSERT_EQUAL(create(), MPX_ELAUNCH);
    const char *m = mpx_last_error();
    CU_ASSERT_PTR_NOT_NULL(strstr(m, names[i]));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "started 4"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "MPX_SINGLETON"));
  }
  /* srun's count, when srun wired MPI up (PMI_RANK or PMIX_RANK) */
  clear_all();
  setenv("SLURM_STEP_NUM_TASKS", "3", 1);
  setenv("PMI_RANK", "0", 1);
  CU_ASSERT_EQUAL(create(), MPX_ELAUNCH);
  CU_ASSERT_PTR_NOT_NULL(strstr(mpx_last_error(), "SLURM_STEP_NUM_TASKS"));
}

static void test_allowed(void) {
  /* one process meant: the launcher's own count of 1, no launcher, a
   * SLURM step's task that srun did not wire up (a command it starts),
   * or MPX_SINGLETON=1 */
  clear_all();
  setenv("OMPI_COMM_WORLD_SIZE", "1", 1);
  CU_ASSERT_EQUAL(create(), 0);
  clear_all();
  CU_ASSERT_EQUAL(create(), 0);
  setenv("SLURM_STEP_NUM_TASKS", "3", 1);
  CU_ASSERT_EQUAL(create(), 0);
  clear_all();
  setenv("PMI_SIZE", "8", 1);
  setenv("MPX_SINGLETON", "1", 1);
  CU_ASSERT_EQUAL(create(), 0);
  /* garbage is no count */
  clear_all();
  setenv("PMI_SIZE", "8x", 1);
  CU_ASSERT_EQUAL(create(), 0);
}

int main(int argc, char **argv) {
  if (mpx_init(&argc, &argv) != 0)
    return 2;
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 1) {
    fprintf(stderr, "test_launcher runs at one process\n");
    mpx_finalize();
    return 2;
  }
  for (int i = 0; i < NVARS; i++) {
    const char *v = getenv(names[i]);
    saved[i] = v ? strdup(v) : NULL;
  }
  mpx_register("noop", noop);
  CU_initialize_registry();
  CU_pSuite s = CU_add_suite("another MPI's launcher", NULL, NULL);
  CU_add_test(s, "refused with MPX_ELAUNCH", test_refused);
  CU_add_test(s, "one process meant", test_allowed);
  int failures = mt_run_on_root();
  clear_all();
  for (int i = 0; i < NVARS; i++)
    if (saved[i]) {
      setenv(names[i], saved[i], 1);
      free(saved[i]);
    }
  mpx_finalize();
  return failures ? 1 : 0;
}
