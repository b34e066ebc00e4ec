/*
 * job_none.c -- the job calls of a build without HDF5 (MPX_WITH_HDF5=OFF,
 * as the SimGrid SMPI build): the options and interruption calls work as
 * usual, mpx_job_run() fails with a sentence saying why.
 */
#include <signal.h>
#include <string.h>

#include "mpx.h"
#include "util.h"

void mpx_job_options_init(mpx_job_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->mode = MPX_JOB_CREATE;
  o->commit_interval = 1.0;
  o->sync = 1;
}

static volatile sig_atomic_t interrupt_sig;

void mpx_job_interrupt(int signo) {
  interrupt_sig = signo;
}

int mpx_job_run(mpx_executor *ex, const char *name, mpx_producer fn, void *arg,
                uint64_t n, const mpx_map_options *mo, const char *path,
                const mpx_job_options *jo, mpx_job_report *report) {
  (void)ex;
  (void)name;
  (void)fn;
  (void)arg;
  (void)n;
  (void)mo;
  (void)jo;
  if (report)
    memset(report, 0, sizeof *report);
  return mpx__fail(MPX_EINVAL,
                   "mpx_job_run: this mpx was built without HDF5 "
                   "(MPX_WITH_HDF5=OFF), so jobs cannot write '%s'; use a "
                   "map, or an mpx built with HDF5",
                   path ? path : "(null)");
}
