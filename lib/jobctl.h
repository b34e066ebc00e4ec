/*
 * jobctl.h -- what the job calls share whether or not this mpx was built
 * with HDF5 (job.c, job_none.c): the default options and the interruption
 * flag mpx_job_interrupt() sets. Private: never installed.
 */
#ifndef MPX_JOBCTL_H
#define MPX_JOBCTL_H

/* The signal that asked the job to stop (mpx_job_interrupt), or 0. */
int mpx__job_interrupt_signal(void);

#endif
