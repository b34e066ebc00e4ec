/*
 * jobctl.c -- mpx_job_options_init() and mpx_job_interrupt(), the same in
 * every build (see jobctl.h).
 */
#include "jobctl.h"

#include <signal.h>
#include <string.h>

#include "mpx.h"

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

int mpx__job_interrupt_signal(void) {
  return interrupt_sig;
}
