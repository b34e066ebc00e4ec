/*
 * job_none.c -- the job calls of a build without HDF5 (MPX_WITH_HDF5=OFF,
 * as the SimGrid SMPI build): mpx_job_run() fails with a sentence saying
 * why; the options and interruption calls are jobctl.c's, as usual.
 */
#include <string.h>

#include "mpx.h"
#include "util.h"

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
