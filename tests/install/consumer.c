/* Uses the installed mpx: one task, result checked on the root; alone or
 * under mpiexec, where the other ranks serve it and then exit 0. */
#include <stdio.h>
#include <string.h>

#include <mpx.h>

static int twice(mpx_task_ctx *ctx, const void *arg, size_t len) {
  int v;
  if (len != sizeof v)
    return mpx_task_fail(ctx, "bad size %zu", len);
  memcpy(&v, arg, sizeof v);
  v *= 2;
  return mpx_task_return(ctx, &v, sizeof v);
}

int main(int argc, char **argv) {
  if (mpx_init(&argc, &argv) != 0)
    return 1;
  mpx_register("twice", twice);
  mpx_executor *ex;
  int rc = mpx_executor_create(MPI_COMM_WORLD, NULL, &ex);
  int v = 21, out = 0;
  int served = rc == 0 && !ex; /* a worker rank, released by the root */
  if (rc == 0 && ex) {
    mpx_future *f;
    const void *p;
    rc = mpx_submit(ex, "twice", &v, sizeof v, &f);
    if (rc == 0 && (rc = mpx_future_result(f, 10.0, &p, NULL)) == 0)
      memcpy(&out, p, sizeof out);
    mpx_future_destroy(&f);
    int workers = mpx_executor_workers(ex);
    mpx_executor_shutdown(ex, 1, 0);
    mpx_executor_destroy(&ex);
    printf("consumer: twice(21) = %d (%s), %d workers, mpx %s (header %s)\n",
           out, mpx_err_name(rc), workers, mpx_version(),
           MPX_VERSION_STRING);
    if (strcmp(mpx_version(), MPX_VERSION_STRING) != 0)
      rc = -1; /* the installed header and library disagree */
  }
  mpx_finalize();
  return rc == 0 && (served || out == 42) ? 0 : 1;
}
