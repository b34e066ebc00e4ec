/*
 * job.c -- mpx_job_run(): an ordered map written to one HDF5 file by one
 * writer thread, with a completion record that makes a killed job
 * resumable.
 *
 * The calling thread drives the map (pulling inputs from the producer as
 * the window frees) and hands whole chunks, in input order, to the writer
 * thread through a bounded queue; the writer alone calls HDF5. It stages
 * each input's arrays, and every commit_interval seconds commits: writes
 * what is staged, flushes and syncs the file, then appends a commit line
 * to the record (on the interval even while no result arrives, so that a
 * slow input does not hold finished ones uncommitted).
 *
 * On resume the writer checks that the record is of this job (task, count,
 * identity, gzip level), opens only the datasets it names, reads back what
 * each commit wrote without changing anything, and then: leaves a finished
 * job that checks out as it is; refuses a finished job that does not, and
 * an output that holds inputs beside a record that says nothing; or cuts
 * the file to the last commit that checks out and the map starts after it.
 * A lock on path + ".mpxlock" keeps a second process off the output for
 * the whole run, and mpx_job_interrupt() (a signal handler) stops the job
 * after committing what is whole.
 *
 * Inputs that failed in their task (MPX_ETASK), or whose task killed its
 * process or exceeded a limit under isolation (MPX_ECRASHED, MPX_EEXIT,
 * MPX_ETIMELIMIT, MPX_EMEMLIMIT, after any retries), are recorded as
 * failed with their status and message, and the job goes on. Inputs that did
 * not run for reasons outside the task (a broken pool, a shutdown, a cancelled
 * map) are never recorded, so a resumed job computes them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "executor.h"
#include "future.h"
#include "h5out.h"
#include "jobctl.h"
#include "lock.h"
#include "map.h"
#include "record.h"
#include "registry.h"
#include "undo.h"
#include "util.h"

typedef struct job {
  mpx_executor *ex;
  const char *task, *path;
  char *rec_path;
  uint64_t n;
  mpx_job_options jo;
  mpx_map_options mo;

  pthread_mutex_t mu;
  pthread_cond_t cv;
  mpx__chunk **q; /* ring of chunks for the writer */
  size_t qhead, qn, qcap;
  uint64_t q_items, q_max;
  int closing; /* no more chunks will come */
  int opened;  /* the writer has opened the output */
  int wrc;     /* the writer's error, or 0 */
  char wmsg[1024];
  uint64_t start;   /* inputs recorded when the job started */
  uint64_t written; /* inputs staged by the writer (start included) */
  uint64_t committed, committed_rows, rows, failed;
  uint64_t committed_failed; /* failed inputs among the committed */
  int complete_before;       /* the output was complete: nothing to do */
  int rolled_back;           /* a resume put the output back (undo.h) */
  char notes[2048];          /* for the report (writer, then caller) */

  mpx__h5 *h; /* writer thread only */
  mpx__rec rec;
  int rec_schema; /* the record holds the schema line */
} job;

/* ---- test hook: die at a named point --------------------------------------
 */

/* MPX_TEST_KILL=point:count sends SIGKILL to this process the count-th time
 * the writer reaches point (created, staged, flushed, recorded, closing),
 * for the kill-and-resume tests. */
static void kill_point(const char *point) {
  static int count;
  const char *s = getenv("MPX_TEST_KILL");
  size_t l = strlen(point);
  if (!s || strncmp(s, point, l) != 0 || s[l] != ':')
    return;
  if (++count == atoi(s + l + 1))
    raise(SIGKILL);
}

/* ---- interruption -------------------------------------------------------- */

/* mpx_job_interrupt() is in jobctl.c, shared with the HDF5-free build. */

/* "SIGTERM" for the signals a job is stopped with. */
static const char *signal_name(int sig) {
  switch (sig) {
  case SIGINT:
    return "SIGINT";
  case SIGTERM:
    return "SIGTERM";
  case SIGUSR1:
    return "SIGUSR1";
  case SIGUSR2:
    return "SIGUSR2";
  case SIGHUP:
    return "SIGHUP";
  default:
    return "a signal";
  }
}

/* ---- the writer thread
 * ------------------------------------------------------- */

/* Records the writer's failure (the first one wins). */
static void writer_fail(job *j, int rc) {
  pthread_mutex_lock(&j->mu);
  if (!j->wrc) {
    j->wrc = rc;
    snprintf(j->wmsg, sizeof j->wmsg, "%s", mpx_last_error());
  }
  pthread_cond_broadcast(&j->cv);
  pthread_mutex_unlock(&j->mu);
}

/* Adds a line to the job's notes for the report (mpx prints nothing of
 * it itself: the caller decides). */
static void note(job *j, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void note(job *j, const char *fmt, ...) {
  size_t len = strlen(j->notes);
  if (len + 2 >= sizeof j->notes)
    return;
  if (len)
    j->notes[len++] = '\n';
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(j->notes + len, sizeof j->notes - len, fmt, ap);
  va_end(ap);
}

static int exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static int remove_file(const char *p) {
  if (unlink(p) != 0 && errno != ENOENT)
    return mpx__fail(MPX_EIO, "cannot remove '%s': %s", p, strerror(errno));
  return 0;
}

/* The record header of this job. */
static mpx__rec_head job_head(const job *j) {
  mpx__rec_head h = {j->task, j->n, j->jo.compression, j->jo.identity};
  return h;
}

/* Appends a line about this run to /mpx/runs: what it used and where it
 * started, so that the file says how every run that wrote it ran. */
static int add_run(job *j, uint64_t recorded) {
  char t[64], line[512];
  mpx__iso_time(t, sizeof t);
  snprintf(line, sizeof line,
           "%s host=%s pid=%ld ranks=%d gzip=%d chunksize=%llu window=%llu "
           "recorded=%llu mpx=%s",
           t, mpx__hostname(), (long)getpid(), mpx_executor_workers(j->ex) + 1,
           j->jo.compression, (unsigned long long)j->mo.chunksize,
           (unsigned long long)mpx__map_window(j->ex, &j->mo),
           (unsigned long long)recorded, MPX_VERSION_STRING);
  return mpx__h5_add_run(j->h, line);
}

/* Creates the HDF5 output with the job's provenance. */
static int create_output(job *j) {
  mpx__h5_meta meta = {j->task,
                       j->jo.identity,
                       j->n,
                       j->mo.chunksize,
                       mpx__map_window(j->ex, &j->mo),
                       mpx_executor_workers(j->ex) + 1};
  int rc = mpx__h5_create(j->path, &meta, &j->jo, &j->h);
  if (rc == 0)
    rc = add_run(j, 0);
  if (rc == 0)
    rc = mpx__h5_checkpoint(j->h);
  if (rc == 0)
    kill_point("opened");
  return rc;
}

/* Creates a new output and its record. */
static int open_fresh(job *j) {
  mpx__rec_head head = job_head(j);
  int rc = mpx__rec_create(j->rec_path, &head, &j->rec);
  if (rc)
    return rc;
  kill_point("created");
  rc = create_output(j);
  if (rc) {
    /* Leave nothing behind that claims a job. */
    mpx__rec_close(&j->rec);
    unlink(j->rec_path);
  }
  return rc;
}

/* Is the record's job this one? MPX_EFILE saying what differs if not. */
static int same_job(const job *j, const mpx__rec_info *in) {
  const char *id = j->jo.identity;
  const char *how = "; pass overwrite to start this job over (the output "
                    "and its record are replaced)";
  if (strcmp(in->task, j->task) != 0 || in->items != j->n)
    return mpx__fail(MPX_EFILE,
                     "'%s' records another job (task '%s' over %llu inputs); "
                     "this run is task '%s' over %llu inputs%s",
                     j->rec_path, in->task, (unsigned long long)in->items,
                     j->task, (unsigned long long)j->n, how);
  if (strcmp(in->identity, id) != 0)
    return mpx__fail(MPX_EFILE,
                     "'%s' records another job: its identity is '%s', this "
                     "run's is '%s' (the inputs changed?)%s",
                     j->rec_path, in->identity, id, how);
  if (in->gzip != j->jo.compression)
    return mpx__fail(MPX_EFILE,
                     "'%s' was created with gzip level %d, this run asks "
                     "for %d; resume with the same gzip level%s",
                     j->path, in->gzip, j->jo.compression, how);
  return 0;
}

/* Moves an output HDF5 cannot open to path + ".unreadable" (one such copy
 * is kept: an older one is replaced). */
static int move_aside(job *j, const char *why, size_t ncommits) {
  size_t l = strlen(j->path) + 12;
  char *aside = malloc(l);
  if (!aside)
    return mpx__fail(MPX_ENOMEM, "out of memory");
  snprintf(aside, l, "%s.unreadable", j->path);
  int older = exists(aside);
  if (rename(j->path, aside) != 0) {
    int rc = mpx__fail(MPX_EIO, "cannot move the unreadable '%s' aside: %s",
                       j->path, strerror(errno));
    free(aside);
    return rc;
  }
  note(j,
       "resume: '%s' cannot be read (%s); moved it to '%s'%s; the "
       "%zu commits its record claimed are dropped and the job starts "
       "over",
       j->path, why, aside, older ? " (replacing an older copy)" : "",
       ncommits);
  free(aside);
  return 0;
}

/* MPX_EBUSY when another program holds HDF5's lock on the output (h5py
 * or another HDF5 program has it open: HDF5 takes flock() on the files it
 * opens), shared or, with exclusive, any; else 0. Without this check, such
 * a file would look unreadable. */
static int in_use(const job *j, int exclusive) {
  int fd = open(j->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return 0;
  int busy = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0 &&
             errno == EWOULDBLOCK;
  close(fd); /* releases what was taken */
  if (!busy)
    return 0;
  return mpx__fail(MPX_EBUSY,
                   "'%s' is open %sin another program (it holds HDF5's file "
                   "lock); close it there and run again",
                   j->path, exclusive ? "" : "for writing ");
}

static int finish_file(job *j);

/* Resumes where the record's header is empty, torn or corrupt: only an
 * output that holds nothing (a run killed while creating it) may start
 * afresh; anything else is refused untouched. */
static int resume_damaged_record(job *j) {
  if (!exists(j->path)) {
    int rc = remove_file(j->rec_path);
    return rc ? rc : open_fresh(j);
  }
  mpx__h5 *h = NULL;
  int rc = in_use(j, 0);
  if (rc)
    return rc;
  rc = mpx__h5_open(j->path, &j->jo, NULL, 0, &h);
  uint64_t items = rc == 0 ? mpx__h5_file_items(h) : 0;
  mpx__h5_close(h);
  if (rc)
    return mpx__fail(MPX_ECORRUPT,
                     "the completion record '%s' is empty or damaged and "
                     "'%s' cannot be read as an mpx output (%s): mpx cannot "
                     "tell what it holds and changes nothing; pass overwrite "
                     "to start over",
                     j->rec_path, j->path, mpx_last_error());
  if (items)
    return mpx__fail(MPX_ECORRUPT,
                     "the completion record '%s' is empty or damaged, but "
                     "'%s' holds %llu inputs: mpx cannot tell which of them "
                     "are whole and changes nothing; restore the record, or "
                     "pass overwrite to start over",
                     j->rec_path, j->path, (unsigned long long)items);
  note(j,
       "resume: the record '%s' is empty or damaged and '%s' holds "
       "no inputs (a run killed while creating it): starting afresh",
       j->rec_path, j->path);
  if ((rc = remove_file(j->path)) || (rc = remove_file(j->rec_path)))
    return rc;
  return open_fresh(j);
}

/* Verifies an opened output against its record and decides: complete
 * (nothing to do), refused, or cut back to the last commit that checks
 * out. */
static int resume_output(job *j, mpx__rec_info *in) {
  mpx__h5 *h = NULL;
  int rc = in_use(j, 0);
  if (rc)
    return rc;
  rc = mpx__h5_open(j->path, &j->jo, in->schema, 0, &h);
  if (rc == MPX_EIO || (rc == MPX_ECORRUPT && in->ncommits == 0)) {
    /* HDF5 cannot read it at all, or the record claims nothing and the
     * file is not whole (a kill during the first commit can leave even
     * /mpx unwritten): nothing in it was committed, so keep it aside and
     * start over. */
    char why[512];
    snprintf(why, sizeof why, "%s", mpx_last_error());
    if ((rc = move_aside(j, why, in->ncommits)) != 0 ||
        (rc = mpx__rec_truncate(&j->rec, in->head)) != 0)
      return rc;
    return create_output(j);
  }
  const char *how = "; mpx changed nothing: restore the file, or pass "
                    "overwrite to compute it again";
  if (rc)
    return mpx__fail(rc, "cannot resume '%s': %s%s", j->path, mpx_last_error(),
                     how);
  const char *fid = mpx__h5_identity(h), *fs = mpx__h5_file_schema(h);
  if (!fid || strcmp(fid, in->identity) != 0) {
    rc = mpx__fail(MPX_ECORRUPT,
                   "'%s' is the output of another job than its record "
                   "'%s' (identity '%s', the record's '%s')%s",
                   j->path, j->rec_path, fid ? fid : "(none)", in->identity,
                   how);
  } else if (in->schema && (!fs || strcmp(fs, in->schema) != 0)) {
    rc = mpx__fail(MPX_ECORRUPT,
                   "'%s' names the datasets '%s', its record '%s' names "
                   "'%s'%s",
                   j->path, fs ? fs : "(none)", j->rec_path, in->schema, how);
  }
  size_t nc = in->ncommits, good = 0;
  char why[1024] = "";
  if (rc == 0)
    rc = mpx__h5_verify(h, in->commits, nc, &good, why, sizeof why);
  const mpx__rec_commit *last = nc ? &in->commits[nc - 1] : NULL;
  int finished = last && last->items == j->n;
  int closed = 0;
  if (rc == 0 && finished && good == nc) {
    /* A finished job's datasets end where its last commit does. */
    if (mpx__h5_beyond(h, last->items, last->rows, why, sizeof why))
      good = nc - 1;
    closed = mpx__h5_closed(h);
    j->rows = last->rows;
    j->failed = mpx__h5_count_failed(h, last->items);
  }
  size_t keep = good; /* commits kept: before the first failure to retry */
  uint64_t nfailed = 0, first = UINT64_MAX;
  if (rc == 0 && j->jo.retry_failed && good > 0)
    rc = mpx__h5_scan_failed(h, in->commits[good - 1].items, &nfailed, &first);
  while (keep > 0 && first != UINT64_MAX && in->commits[keep - 1].items > first)
    keep--;
  mpx__h5_close(h);
  if (rc)
    return rc;
  if (finished && good == nc && keep < good) {
    finished = 0; /* it is computed again from the first failure on */
  } else if (finished && good == nc) {
    j->complete_before = 1;
    if (j->rolled_back || !closed) {
      /* Killed while it closed the file: the closing attributes (that
       * the roll-back took away) are written again (the writer closes
       * it). */
      if ((rc = in_use(j, 1)) == 0 &&
          (rc = mpx__h5_open(j->path, &j->jo, in->schema, 1, &j->h)) == 0 &&
          (rc = mpx__h5_cut(j->h, last->items, last->rows)) == 0)
        rc = finish_file(j);
      if (rc == 0)
        note(j,
             "resume: '%s' is complete: its %llu inputs are recorded and "
             "verified; its closing attributes are written again",
             j->path, (unsigned long long)j->n);
      return rc;
    }
    note(j,
         "resume: '%s' is already complete: its %llu inputs are recorded "
         "and verified; nothing to do, nothing changed",
         j->path, (unsigned long long)j->n);
    return 0;
  }
  if (finished)
    return mpx__fail(MPX_ECORRUPT,
                     "'%s' fails the check of its completion record '%s', "
                     "which says the job finished: %s%s",
                     j->path, j->rec_path, why, how);
  if (good < nc)
    note(j,
         "resume: the record of '%s' claims %zu commits but only the "
         "first %zu check out (%s); the rest is recomputed",
         j->path, nc, good, why);
  if (keep < good)
    note(j,
         "resume: retry failed: %llu recorded failures, the first at input "
         "%llu; the output keeps input order, so the job is computed again "
         "from input %llu on (the commit holding it)",
         (unsigned long long)nfailed, (unsigned long long)first,
         (unsigned long long)(keep ? in->commits[keep - 1].items : 0));
  good = keep;
  if ((rc = in_use(j, 1)) != 0)
    return rc;
  uint64_t items = good ? in->commits[good - 1].items : 0;
  uint64_t rows = good ? in->commits[good - 1].rows : 0;
  rc = mpx__h5_open(j->path, &j->jo, in->schema, 1, &j->h);
  if (rc == 0)
    rc = mpx__h5_cut(j->h, items, rows);
  if ((rc == MPX_EIO || rc == MPX_ECORRUPT) && nc == 0) {
    /* A run killed while it created the file (before its first
     * checkpoint) can leave one that opens but fails the first write:
     * nothing in it was committed. */
    char why[512];
    snprintf(why, sizeof why, "%s", mpx_last_error());
    mpx__h5_close(j->h);
    j->h = NULL;
    if ((rc = move_aside(j, why, 0)) != 0 ||
        (rc = mpx__rec_truncate(&j->rec, in->head)) != 0)
      return rc;
    return create_output(j);
  }
  if (rc == 0)
    rc = mpx__rec_truncate(&j->rec,
                           good < nc ? in->commits[good].offset : in->end);
  j->rec_schema = in->schema != NULL;
  if (rc == 0)
    rc = add_run(j, items);
  if (rc == 0)
    rc = mpx__h5_checkpoint(j->h);
  if (rc == 0)
    kill_point("opened");
  return rc;
}

/* Puts the output back as its last commit left it when a run was killed
 * while writing it (its undo journal says so: undo.h), unless a running
 * program holds it. */
static int roll_back(job *j) {
  if (!mpx__undo_exists(j->path))
    return 0; /* a reader may hold it: nothing to put back */
  int rc = in_use(j, 1), rolled = 0;
  if (rc == 0)
    rc = mpx__undo_recover(j->path, &rolled);
  j->rolled_back = rolled;
  if (rolled)
    note(j,
         "resume: '%s' was stopped while it was being written; it is back "
         "as its last commit left it (from its journal '%s" MPX__UNDO_SUFFIX
         "')",
         j->path, j->path);
  return rc;
}

/* Opens an output to resume: checks that its record is of this job,
 * verifies what the record claims, and cuts both to what checks out. */
static int open_resume(job *j) {
  mpx__rec_info in;
  int rc = roll_back(j);
  if (rc)
    return rc;
  rc = mpx__rec_open(j->rec_path, &j->rec, &in);
  if (rc == 1)
    return resume_damaged_record(j);
  if (rc)
    return rc;
  if ((rc = same_job(j, &in)) == 0) {
    if (exists(j->path)) {
      rc = resume_output(j, &in);
    } else {
      note(j,
           "resume: '%s' is missing; the %zu commits its record '%s' "
           "claims are dropped and the job starts over",
           j->path, in.ncommits, j->rec_path);
      if ((rc = mpx__rec_truncate(&j->rec, in.head)) == 0)
        rc = create_output(j);
    }
  }
  mpx__rec_info_free(&in);
  return rc;
}

/* Commits what is staged and records it. */
static int commit(job *j) {
  uint64_t items, rows;
  uint32_t crc;
  const uint32_t *sums;
  size_t nsums;
  int rc = mpx__h5_commit(j->h, &items, &rows, &crc, &sums, &nsums);
  if (rc)
    return rc;
  kill_point("flushed");
  if (items == j->committed && items != 0)
    return 0; /* nothing new */
  const char *schema = mpx__h5_schema(j->h);
  if (!j->rec_schema && schema) {
    if ((rc = mpx__rec_schema_append(&j->rec, schema, j->jo.sync)) != 0)
      return rc;
    j->rec_schema = 1;
  }
  rc = mpx__rec_commit_append(&j->rec, items, rows, crc, sums, nsums,
                              j->jo.sync);
  if (rc == 0)
    rc = mpx__same_file(j->rec_path, j->rec.fd, "completion record");
  if (rc)
    return rc;
  kill_point("recorded");
  uint64_t all, all_rows, failed; /* = what was just committed */
  mpx__h5_counts(j->h, &all, &all_rows, &failed);
  pthread_mutex_lock(&j->mu);
  j->committed = items;
  j->committed_rows = rows;
  j->committed_failed = failed;
  pthread_mutex_unlock(&j->mu);
  return 0;
}

/* Is this failure the task's own (recorded), or the pool's (not)? */
static int recordable(int status) {
  return status == 0 || status == MPX_ETASK || status == MPX_ENOTASK ||
         status == MPX_ECRASHED || status == MPX_EEXIT ||
         status == MPX_ETIMELIMIT || status == MPX_EMEMLIMIT;
}

/* Whether every input of a done chunk ran (its outcome is recordable). */
static int chunk_ran(const mpx__chunk *c) {
  for (uint64_t k = 0; k < c->count; k++) {
    mpx_map_item it;
    mpx__chunk_item(c, k, &it);
    if (!recordable(it.status))
      return 0;
  }
  return 1;
}

/* Stages every input of a chunk; returns 0 or the error that stops the
 * job. *keep says whether what was staged before that error is whole and
 * may still be committed: yes for an input that did not run and for a
 * schema error (both found before anything of the input is staged), not
 * for a failed write or allocation, after which the file is left as the
 * last commit left it. */
static int write_chunk(job *j, mpx__chunk *c, int *keep) {
  *keep = 1;
  for (uint64_t k = 0; k < c->count; k++) {
    mpx_map_item it;
    mpx__chunk_item(c, k, &it);
    if (!recordable(it.status))
      return mpx__fail(it.status, "input %llu did not run: %s",
                       (unsigned long long)it.index,
                       it.error ? it.error : mpx_strerror(it.status));
    int rc = mpx__h5_add(j->h, &it);
    if (rc) {
      *keep = rc == MPX_ESCHEMA;
      return rc;
    }
    kill_point("staged");
  }
  pthread_mutex_lock(&j->mu);
  mpx__h5_counts(j->h, &j->written, &j->rows, &j->failed);
  pthread_mutex_unlock(&j->mu);
  return 0;
}

/* Writes the closing attributes when every input is in. */
static int finish_file(job *j) {
  uint64_t items, rows, failed;
  mpx__h5_counts(j->h, &items, &rows, &failed);
  if (items != j->n)
    return 0;
  char t[64];
  mpx__iso_time(t, sizeof t);
  int rc = mpx__h5_attr_str(j->h, "end_time", t);
  if (rc == 0)
    rc = mpx__h5_attr_u64(j->h, "rows", rows);
  if (rc == 0)
    rc = mpx__h5_attr_u64(j->h, "failed", failed);
  return rc;
}

static void *writer_main(void *arg) {
  job *j = arg;
  int rc = j->jo.mode == MPX_JOB_RESUME && exists(j->rec_path) ? open_resume(j)
                                                               : open_fresh(j);
  uint64_t items = 0, rows = 0, failed = 0;
  if (rc == 0 && j->complete_before) {
    items = j->n;
    rows = j->rows;
    failed = j->failed;
  } else if (rc == 0)
    mpx__h5_counts(j->h, &items, &rows, &failed);
  else
    writer_fail(j, rc); /* before opened: the job must not start */
  pthread_mutex_lock(&j->mu);
  j->opened = 1;
  j->start = j->committed = j->written = items;
  if (rc == 0) {
    j->rows = j->committed_rows = rows;
    j->failed = j->committed_failed = failed;
  }
  pthread_cond_broadcast(&j->cv);
  pthread_mutex_unlock(&j->mu);
  if (rc || j->complete_before) {
    if (j->h)
      mpx__h5_close(j->h);
    mpx__rec_close(&j->rec);
    return NULL;
  }
  double last = mpx__now();
  int err = 0;
  for (;;) {
    pthread_mutex_lock(&j->mu);
    int due = 0;
    while (j->qn == 0 && !j->closing) {
      /* Staged inputs are committed on the interval even when no more
       * results come (a slow input behind finished ones). */
      if (err || j->written <= j->committed) {
        pthread_cond_wait(&j->cv, &j->mu);
        continue;
      }
      double at = last + j->jo.commit_interval;
      if (mpx__now() >= at) {
        due = 1;
        break;
      }
      struct timespec ts = mpx__timespec(at);
      pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    }
    if (due) {
      pthread_mutex_unlock(&j->mu);
      if ((err = commit(j)) != 0)
        writer_fail(j, err);
      last = mpx__now();
      continue;
    }
    if (j->qn == 0) {
      pthread_mutex_unlock(&j->mu);
      break;
    }
    mpx__chunk *c = j->q[j->qhead];
    j->qhead = (j->qhead + 1) % j->qcap;
    j->qn--;
    j->q_items -= c->count;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    int keep;
    if (!err && (err = write_chunk(j, c, &keep)) != 0) {
      writer_fail(j, err);
      if (keep)
        commit(j); /* what came before the bad input is good */
    }
    mpx__chunk_free(c);
    if (!err && mpx__now() - last >= j->jo.commit_interval) {
      if ((err = commit(j)) != 0)
        writer_fail(j, err);
      last = mpx__now();
    }
  }
  if (!err && (err = commit(j)) == 0 && (err = finish_file(j)) == 0)
    kill_point("closing");
  if (err && !j->wrc)
    writer_fail(j, err);
  rc = mpx__h5_close(j->h);
  if (rc && !err)
    writer_fail(j, rc);
  mpx__rec_close(&j->rec);
  return NULL;
}

/* ---- progress
 * ------------------------------------------------------------------ */

typedef struct progress {
  int tty, progress;
  double t0, last;
  double every; /* seconds between lines when not a terminal */
  const char *label;
} progress;

static void show(progress *p, const job *j, uint64_t done, uint64_t failed,
                 int final) {
  if (!p->progress)
    return;
  double now = mpx__now();
  if (!final && now - p->last < (p->tty ? 0.2 : p->every))
    return;
  p->last = now;
  double el = now - p->t0;
  uint64_t new_done = done - j->start;
  double rate = el > 0 ? (double)new_done / el : 0;
  double eta = rate > 0 ? (double)(j->n - done) / rate : 0;
  double pct = j->n ? 100.0 * (double)done / (double)j->n : 100.0;
  if (p->tty) {
    char bar[31];
    int fill = (int)(pct * 30 / 100);
    for (int i = 0; i < 30; i++)
      bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr,
            "\r%s [%s] %5.1f%% %llu/%llu inputs, %.1f/s, eta %.0fs, %llu "
            "failed ",
            p->label, bar, pct, (unsigned long long)done,
            (unsigned long long)j->n, rate, eta, (unsigned long long)failed);
    if (final)
      fputc('\n', stderr);
  } else {
    char tail[48] = "done";
    if (!final)
      snprintf(tail, sizeof tail, "eta %.0fs", eta);
    fprintf(stderr,
            "%s: %llu/%llu inputs (%.1f%%), %.1f/s, %llu failed, %.1fs "
            "elapsed, %s\n",
            p->label, (unsigned long long)done, (unsigned long long)j->n, pct,
            rate, (unsigned long long)failed, el, tail);
  }
  fflush(stderr);
}

/* ---- the job
 * --------------------------------------------------------------------- */

/* Hands a chunk to the writer, waiting while its queue is full. Returns 0,
 * or the writer's error (the chunk is then freed). */
static int push(job *j, mpx__chunk *c) {
  pthread_mutex_lock(&j->mu);
  while (!j->wrc && j->qn && j->q_items + c->count > j->q_max)
    pthread_cond_wait(&j->cv, &j->mu);
  int rc = j->wrc;
  if (!rc && j->qn == j->qcap) {
    size_t cap = j->qcap ? 2 * j->qcap : 64;
    mpx__chunk **q = malloc(cap * sizeof *q);
    if (!q) {
      rc = mpx__fail(MPX_ENOMEM, "out of memory");
    } else {
      for (size_t i = 0; i < j->qn; i++)
        q[i] = j->q[(j->qhead + i) % j->qcap];
      free(j->q);
      j->q = q;
      j->qhead = 0;
      j->qcap = cap;
    }
  }
  if (!rc) {
    j->q[(j->qhead + j->qn) % j->qcap] = c;
    j->qn++;
    j->q_items += c->count;
    pthread_cond_broadcast(&j->cv);
  }
  pthread_mutex_unlock(&j->mu);
  if (rc)
    mpx__chunk_free(c);
  return rc;
}

static int check_args(mpx_executor *ex, const char *name, mpx_producer fn,
                      uint64_t n, const char *path, const mpx_job_options *jo,
                      const mpx_map_options *mo) {
  if (!ex || !name || !fn || !path || !*path)
    return mpx__fail(MPX_EINVAL,
                     "mpx_job_run: NULL executor, task, producer or path");
  if (n == 0 || n == MPX_MAP_UNKNOWN)
    return mpx__fail(MPX_EINVAL,
                     "mpx_job_run: the job has no inputs (n = 0) or an "
                     "unknown count; a job needs a known, non-zero count");
  if (jo->mode < MPX_JOB_CREATE || jo->mode > MPX_JOB_RESUME ||
      jo->compression < 0 || jo->compression > 9 || !(jo->commit_interval >= 0))
    return mpx__fail(MPX_EINVAL,
                     "mpx_job_run: bad options (mode %d, compression %d, "
                     "commit interval %g)",
                     (int)jo->mode, jo->compression, jo->commit_interval);
  if (mo->chunksize == 0)
    return mpx__fail(MPX_EINVAL, "mpx_job_run: chunksize must be >= 1");
  if (!(jo->grace >= 0) || jo->grace > 1e7)
    return mpx__fail(MPX_EINVAL, "mpx_job_run: grace must be >= 0 seconds");
  if (jo->retry_failed && jo->mode != MPX_JOB_RESUME)
    return mpx__fail(MPX_EINVAL, "mpx_job_run: retry_failed needs mode "
                                 "MPX_JOB_RESUME (it computes again the "
                                 "failures an output records)");
  if (jo->identity && strlen(jo->identity) > MPX_JOB_IDENTITY_MAX)
    return mpx__fail(MPX_EINVAL,
                     "mpx_job_run: the identity is %zu bytes, more than "
                     "MPX_JOB_IDENTITY_MAX (%d)",
                     strlen(jo->identity), MPX_JOB_IDENTITY_MAX);
  if (mpx__registry_lookup(name) < 0)
    return mpx__fail(MPX_ENOTASK, "mpx_job_run: no task named '%s'", name);
  return 0;
}

/* Checks what is at the job's path against its mode: an output or record
 * that CREATE must not touch, an output without a record that RESUME must
 * not adopt; and removes the files OVERWRITE replaces. Returns 0 or the
 * error. */
static int output_check(const job *j) {
  const char *path = j->path, *rec = j->rec_path;
  if (j->jo.mode == MPX_JOB_CREATE && (exists(path) || exists(rec)))
    return mpx__fail(MPX_EFILE,
                     "the output '%s' %s; pass resume to finish the job it "
                     "records, or overwrite to replace it",
                     exists(path) ? path : rec,
                     exists(path) ? "exists"
                                  : "(an earlier job's record) exists");
  if (j->jo.mode == MPX_JOB_RESUME && exists(path) && !exists(rec))
    return mpx__fail(MPX_EFILE,
                     "the output '%s' exists but has no completion record "
                     "'%s': it was not written by an mpx job (or its record "
                     "was removed); pass overwrite to replace it",
                     path, rec);
  if (j->jo.mode == MPX_JOB_OVERWRITE) {
    int rc = remove_file(path);
    return rc ? rc : remove_file(rec);
  }
  return 0;
}

/* Fills j for the job (its options, its record's path, the lock's warning
 * as a note) and checks its output (output_check). The caller holds the
 * output's lock. Returns 0, or the error with nothing left to free. */
static int job_prepare(job *j, mpx_executor *ex, const char *name,
                       const char *path, uint64_t n, const mpx_job_options *jo,
                       const mpx_map_options *mo, const mpx__lock *lock) {
  memset(j, 0, sizeof *j);
  j->ex = ex;
  j->task = name;
  j->path = path;
  j->n = n;
  j->jo = *jo;
  if (!j->jo.identity)
    j->jo.identity = ""; /* none: "" in the record and the file */
  j->mo = *mo;
  j->rec.fd = -1;
  if (lock->warning[0])
    note(j, "%s", lock->warning);
  j->rec_path = malloc(strlen(path) + 8);
  if (!j->rec_path)
    return mpx__fail(MPX_ENOMEM, "out of memory");
  sprintf(j->rec_path, "%s.mpxrec", path);
  int rc = output_check(j);
  if (rc) {
    free(j->rec_path);
    j->rec_path = NULL;
  }
  return rc;
}

/* Starts the writer thread, which opens (or resumes) the output, and waits
 * until it has: *start receives the inputs already recorded and *wrc the
 * writer's error (0 when the output is open). Returns 0, or MPX_ESYS when
 * the thread cannot start. */
static int writer_start(job *j, pthread_t *th, uint64_t *start, int *wrc) {
  j->q_max = j->mo.window ? j->mo.window : 64 * j->mo.chunksize;
  pthread_mutex_init(&j->mu, NULL);
  mpx__cond_init(&j->cv);
  if (pthread_create(th, NULL, writer_main, j) != 0) {
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    return mpx__fail(MPX_ESYS, "cannot start the writer thread");
  }
  pthread_mutex_lock(&j->mu);
  while (!j->opened)
    pthread_cond_wait(&j->cv, &j->mu);
  *wrc = j->wrc;
  *start = j->start;
  pthread_mutex_unlock(&j->mu);
  return 0;
}

/* Runs the map over inputs [start, n) on this thread and hands each chunk,
 * in input order, to the writer, showing progress, until the map ends, the
 * writer fails or the job is interrupted. Returns 0 or the error that
 * stopped the map (its message kept for mpx_last_error()). */
static int map_to_writer(job *j, mpx_producer fn, void *arg, uint64_t start,
                         progress *pg) {
  mpx_map *m = NULL;
  mpx_map_options mo = j->mo;
  mo.first = start;
  int map_rc = mpx_map_create_producer(j->ex, j->task, fn, arg, j->n, &mo, &m);
  double give_up = -1; /* after an interrupt: when running tasks are lost */
  while (map_rc == 0) {
    if (mpx__job_interrupt_signal() && give_up < 0) {
      /* Stop dispatching; what runs may finish within the grace period
       * and be committed. MPX_EINTR is reported by job_status, with what
       * was committed. */
      if (!(j->jo.grace > 0)) {
        map_rc = MPX_EINTR;
        break;
      }
      give_up = mpx__now() + j->jo.grace;
      mpx_map_cancel(m);
    }
    if (give_up >= 0 && mpx__now() >= give_up) {
      map_rc = MPX_EINTR;
      break;
    }
    mpx__chunk *c;
    int r = mpx__map_next_chunk(m, 0.1, &c);
    pthread_mutex_lock(&j->mu);
    uint64_t done = j->written, failed = j->failed;
    int wrc = j->wrc;
    pthread_mutex_unlock(&j->mu);
    show(pg, j, done, failed, 0);
    if (wrc) {
      if (r == 0)
        mpx__chunk_free(c); /* taken, and nobody will write it now */
      break;
    }
    if (r == MPX_ETIMEDOUT)
      continue;
    if (r == MPX_EOF) {
      if (give_up >= 0)
        map_rc = MPX_EINTR;
      break;
    }
    if (r != 0) {
      map_rc = give_up >= 0 ? MPX_EINTR : r;
      break;
    }
    if (give_up >= 0 && !chunk_ran(c)) {
      /* Cancelled by the interrupt: nothing after it can be written in
       * input order. */
      mpx__chunk_free(c);
      map_rc = MPX_EINTR;
      break;
    }
    for (uint64_t k = 0; j->jo.on_result && k < c->count; k++) {
      mpx_map_item it;
      mpx__chunk_item(c, k, &it);
      j->jo.on_result(j->jo.on_result_arg, &it);
    }
    if ((map_rc = push(j, c)) != 0)
      break; /* the writer's error (reported below) or no memory */
  }
  char saved[1024];
  snprintf(saved, sizeof saved, "%s", mpx_last_error());
  mpx_map_destroy(&m);
  if (map_rc)
    mpx__fail(map_rc, "%s", saved[0] ? saved : mpx_strerror(map_rc));
  return map_rc;
}

/* Tells the writer that no more chunks come and waits for its last commit
 * and the closing of the output. */
static void writer_stop(job *j, pthread_t th) {
  pthread_mutex_lock(&j->mu);
  j->closing = 1;
  pthread_cond_broadcast(&j->cv);
  pthread_mutex_unlock(&j->mu);
  pthread_join(th, NULL);
}

/* Describes the finished run in *report (may be NULL). */
static void job_report(const job *j, uint64_t start, double t0,
                       mpx_job_report *report) {
  if (!report)
    return;
  report->items = j->n;
  report->recorded = start;
  report->computed = j->committed > start ? j->committed - start : 0;
  report->failed = j->committed_failed;
  report->rows = j->committed_rows;
  report->seconds = mpx__now() - t0;
  report->complete = j->complete_before;
  snprintf(report->notes, sizeof report->notes, "%s", j->notes);
}

/* The job's outcome: the writer's error first, then the map's (an
 * interruption says what was committed and how to resume), and MPX_EIO if
 * a clean run did not commit every input. */
static int job_status(const job *j, int map_rc) {
  int rc = j->wrc ? mpx__fail(j->wrc, "%s", j->wmsg) : map_rc;
  if (rc == MPX_EINTR)
    rc = mpx__fail(MPX_EINTR,
                   "interrupted by %s: committed %llu of %llu inputs to "
                   "'%s' and its record; run the job again with resume to "
                   "finish it",
                   signal_name(mpx__job_interrupt_signal()),
                   (unsigned long long)j->committed, (unsigned long long)j->n,
                   j->path);
  if (rc == 0 && j->committed != j->n)
    rc = mpx__fail(MPX_EIO, "'%s': only %llu of %llu inputs were committed",
                   j->path, (unsigned long long)j->committed,
                   (unsigned long long)j->n);
  return rc;
}

/* Runs one job: resolves the options, takes the output's lock, prepares
 * the output, starts the writer, maps the inputs not yet recorded into it,
 * stops the writer and reports. */
static int run_job(mpx_executor *ex, const char *name, mpx_producer fn,
                   void *arg, uint64_t n, const mpx_map_options *mo_in,
                   const char *path, const mpx_job_options *jo_in,
                   mpx_job_report *report) {
  double t0 = mpx__now();
  mpx_job_options jo;
  mpx_map_options mo;
  mpx_job_options_init(&jo);
  mpx_map_options_init(&mo);
  if (jo_in)
    jo = *jo_in;
  if (mo_in)
    mo = *mo_in;
  mo.unordered = 0;
  int rc = check_args(ex, name, fn, n, path, &jo, &mo);
  if (rc)
    return rc;
  if (mpx__job_interrupt_signal())
    return mpx__fail(MPX_EINTR,
                     "interrupted by %s before the job started: nothing was "
                     "done to '%s'",
                     signal_name(mpx__job_interrupt_signal()), path);
  /* One writer per output, from before the first look at it to the end. */
  mpx__lock lock;
  if ((rc = mpx__lock_take(path, &lock)) != 0)
    return rc;
  /* Directories and unwritable places fail here, before any work. */
  job j;
  if ((rc = job_prepare(&j, ex, name, path, n, &jo, &mo, &lock)) != 0) {
    mpx__lock_release(&lock);
    return rc;
  }
  pthread_t th;
  uint64_t start = 0;
  int wrc = 0;
  if ((rc = writer_start(&j, &th, &start, &wrc)) != 0) {
    free(j.rec_path);
    mpx__lock_release(&lock);
    return rc;
  }
  progress pg = {isatty(2), jo.progress, mpx__now(),
                 0,         10.0,        jo.label ? jo.label : name};
  pg.every = mpx__env_double("MPX_PROGRESS_INTERVAL", 10.0);
  int map_rc = 0;
  if (!wrc && start < n)
    map_rc = map_to_writer(&j, fn, arg, start, &pg);
  writer_stop(&j, th);
  show(&pg, &j, j.written, j.failed, 1);
  job_report(&j, start, t0, report);
  rc = job_status(&j, map_rc);
  free(j.q);
  free(j.rec_path);
  mpx__lock_release(&lock);
  pthread_mutex_destroy(&j.mu);
  pthread_cond_destroy(&j.cv);
  return rc;
}

/* HDF5 is not thread-safe: one job (one writer thread) at a time. */
static atomic_int job_running;

int mpx_job_run(mpx_executor *ex, const char *name, mpx_producer fn, void *arg,
                uint64_t n, const mpx_map_options *mo, const char *path,
                const mpx_job_options *jo, mpx_job_report *report) {
  if (report) /* zero on every refusal as on a run that fails early */
    memset(report, 0, sizeof *report);
  if (mpx__future_no_block()) {
    /* Before any file is touched: the job would wait for results that
     * only this (the manager) thread can deliver. */
    return mpx__fail(MPX_EDEADLK, "mpx_job_run: called from a done-callback "
                                  "on the manager thread, where waiting for "
                                  "results would deadlock");
  }
  int provided = MPI_THREAD_MULTIPLE;
  MPI_Query_thread(&provided);
  if (provided < MPI_THREAD_FUNNELED)
    return mpx__fail(
        MPX_ETHREAD,
        "mpx_job_run: MPI provides MPI_THREAD_SINGLE, and a job "
        "writes its HDF5 file from a thread of its own; "
        "initialise MPI with MPI_THREAD_FUNNELED or more (mpx_init)");
  int idle = 0;
  if (!atomic_compare_exchange_strong(&job_running, &idle, 1))
    return mpx__fail(MPX_EBUSY,
                     "mpx_job_run: another job is running in this process "
                     "(HDF5 is called from one writer thread at a time); "
                     "run jobs one after another");
  unsigned long seq = mpx__error_seq();
  int rc = ex ? mpx__executor_call(ex, mpx__h5_preinit) : 0;
  if (rc == 0) {
    mpx__h5_handler saved;
    mpx__h5_handler_save(&saved);
    rc = run_job(ex, name, fn, arg, n, mo, path, jo, report);
    mpx__h5_handler_restore(&saved);
  }
  atomic_store(&job_running, 0);
  return mpx__fail_call(rc, "mpx_job_run", seq);
}
