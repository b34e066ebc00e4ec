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
 * to the record. On resume the writer reads the record, reads back what
 * each commit wrote, cuts the file to the last commit that checks out and
 * the map starts after it.
 *
 * Inputs that failed in their task (MPX_ETASK) are recorded as failed with
 * their message. Inputs that did not run for reasons outside the task (a
 * broken pool, a shutdown, a cancelled map) are never recorded, so a
 * resumed job computes them.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h5out.h"
#include "map.h"
#include "record.h"
#include "registry.h"
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

  mpx__h5 *h; /* writer thread only */
  mpx__rec rec;
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

/* The signal that asked the job to stop, or 0. */
static volatile sig_atomic_t interrupt_sig;

void mpx_job_interrupt(int signo) {
  interrupt_sig = signo;
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

static int exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static int remove_file(const char *p) {
  if (unlink(p) != 0 && errno != ENOENT)
    return mpx__fail(MPX_EIO, "cannot remove '%s': %s", p, strerror(errno));
  return 0;
}

/* Creates the HDF5 output with the job's provenance. */
static int create_output(job *j) {
  mpx__h5_meta meta = {j->task, j->n, j->mo.chunksize,
                       mpx__map_window(j->ex, &j->mo),
                       mpx_executor_workers(j->ex) + 1};
  return mpx__h5_create(j->path, &meta, &j->jo, &j->h);
}

/* Creates a new output and its record. */
static int open_fresh(job *j) {
  int rc = mpx__rec_create(j->rec_path, j->task, j->n, &j->rec);
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

/* Opens an output to resume: verifies what its record claims and cuts both
 * to what checks out. */
static int open_resume(job *j) {
  mpx__rec_commit *c = NULL;
  size_t nc = 0;
  int rc = mpx__rec_open(j->rec_path, j->task, j->n, &j->rec, &c, &nc);
  if (rc == 1) {
    /* Killed while the record was being created: nothing was done. */
    if ((rc = remove_file(j->path)) || (rc = remove_file(j->rec_path)))
      return rc;
    return open_fresh(j);
  }
  if (rc)
    return rc;
  off_t header_end = 0;
  if (nc)
    header_end = c[0].offset;
  else
    header_end = lseek(j->rec.fd, 0, SEEK_CUR);
  if (!exists(j->path) || mpx__h5_open(j->path, &j->jo, &j->h) != 0) {
    /* The output is gone or unreadable: keep it aside, start over. */
    char aside[4200] = "";
    if (exists(j->path)) {
      snprintf(aside, sizeof aside, "%s.unreadable-%ld", j->path,
               (long)time(NULL));
      if (rename(j->path, aside) != 0) {
        free(c);
        return mpx__fail(MPX_EIO, "cannot move the unreadable '%s' aside: %s",
                         j->path, strerror(errno));
      }
    }
    fprintf(stderr,
            "mpx: resume: '%s' %s%s; its %zu recorded commits are dropped and "
            "the job starts over\n",
            j->path, aside[0] ? "was unreadable, moved to " : "is missing",
            aside, nc);
    free(c);
    if ((rc = mpx__rec_truncate(&j->rec, header_end)) != 0)
      return rc;
    return create_output(j);
  }
  size_t good = 0;
  rc = mpx__h5_verify(j->h, c, nc, &good);
  if (rc == 0 && good < nc) {
    fprintf(stderr,
            "mpx: resume: the record of '%s' claims %zu commits but the file "
            "holds only the first %zu intact; the rest is recomputed\n",
            j->path, nc, good);
    rc = mpx__rec_truncate(&j->rec, c[good].offset);
  }
  free(c);
  return rc;
}

/* Commits what is staged and records it. */
static int commit(job *j) {
  uint64_t items, rows;
  uint32_t crc;
  int rc = mpx__h5_commit(j->h, &items, &rows, &crc);
  if (rc)
    return rc;
  kill_point("flushed");
  if (items == j->committed && items != 0)
    return 0; /* nothing new */
  rc = mpx__rec_commit_append(&j->rec, items, rows, crc, j->jo.sync);
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
  return status == 0 || status == MPX_ETASK || status == MPX_ENOTASK;
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
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
  int rc = mpx__h5_attr_str(j->h, "end_time", t);
  if (rc == 0)
    rc = mpx__h5_attr_u64(j->h, "rows", rows);
  if (rc == 0)
    rc = mpx__h5_attr_u64(j->h, "failed", failed);
  return rc;
}

static void *writer_main(void *arg) {
  job *j = arg;
  int rc = j->jo.mode == MPX_OUT_RESUME && exists(j->rec_path) ? open_resume(j)
                                                               : open_fresh(j);
  uint64_t items = 0, rows, failed;
  if (rc == 0)
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
  if (rc) {
    if (j->h)
      mpx__h5_close(j->h);
    mpx__rec_close(&j->rec);
    return NULL;
  }
  double last = mpx__now();
  int err = 0;
  for (;;) {
    pthread_mutex_lock(&j->mu);
    while (j->qn == 0 && !j->closing)
      pthread_cond_wait(&j->cv, &j->mu);
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
  int tty, quiet;
  double t0, last;
  double every; /* seconds between lines when not a terminal */
  const char *label;
} progress;

static void show(progress *p, const job *j, uint64_t done, uint64_t failed,
                 int final) {
  if (p->quiet)
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
    fprintf(stderr,
            "%s: %llu/%llu inputs (%.1f%%), %.1f/s, %llu failed, %.1fs "
            "elapsed%s\n",
            p->label, (unsigned long long)done, (unsigned long long)j->n, pct,
            rate, (unsigned long long)failed, el, final ? ", done" : "");
  }
  fflush(stderr);
}

/* ---- the job
 * --------------------------------------------------------------------- */

void mpx_job_options_init(mpx_job_options *o) {
  if (!o)
    return;
  memset(o, 0, sizeof *o);
  o->mode = MPX_OUT_CREATE;
  o->commit_interval = 1.0;
  o->sync = 1;
}

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
  if (jo->mode < MPX_OUT_CREATE || jo->mode > MPX_OUT_RESUME ||
      jo->compression < 0 || jo->compression > 9 || !(jo->commit_interval >= 0))
    return mpx__fail(MPX_EINVAL,
                     "mpx_job_run: bad options (mode %d, compression %d, "
                     "commit interval %g)",
                     (int)jo->mode, jo->compression, jo->commit_interval);
  if (mo->chunksize == 0)
    return mpx__fail(MPX_EINVAL, "mpx_job_run: chunksize must be >= 1");
  if (mpx__registry_lookup(name) < 0)
    return mpx__fail(MPX_ENOTASK, "mpx_job_run: no task named '%s'", name);
  return 0;
}

static int run_job(mpx_executor *ex, const char *name, mpx_producer fn,
                   void *arg, uint64_t n, const mpx_map_options *mo_in,
                   const char *path, const mpx_job_options *jo_in,
                   mpx_job_report *report) {
  double t0 = mpx__now();
  if (report)
    memset(report, 0, sizeof *report);
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
  /* Directories and unwritable places fail here, before any work. */
  job j;
  memset(&j, 0, sizeof j);
  j.ex = ex;
  j.task = name;
  j.path = path;
  j.n = n;
  j.jo = jo;
  j.mo = mo;
  j.rec.fd = -1;
  j.rec_path = malloc(strlen(path) + 8);
  if (!j.rec_path)
    return mpx__fail(MPX_ENOMEM, "out of memory");
  sprintf(j.rec_path, "%s.mpxrec", path);
  if (jo.mode == MPX_OUT_CREATE && (exists(path) || exists(j.rec_path))) {
    rc =
        mpx__fail(MPX_EFILE,
                  "the output '%s' %s; pass resume to finish the job it "
                  "records, or overwrite to replace it",
                  exists(path) ? path : j.rec_path,
                  exists(path) ? "exists" : "(an earlier job's record) exists");
    free(j.rec_path);
    return rc;
  }
  if (jo.mode == MPX_OUT_RESUME && exists(path) && !exists(j.rec_path)) {
    rc = mpx__fail(MPX_EFILE,
                   "the output '%s' exists but has no completion record "
                   "'%s': it was not written by an mpx job (or its record "
                   "was removed); pass overwrite to replace it",
                   path, j.rec_path);
    free(j.rec_path);
    return rc;
  }
  if (jo.mode == MPX_OUT_OVERWRITE &&
      ((rc = remove_file(path)) || (rc = remove_file(j.rec_path)))) {
    free(j.rec_path);
    return rc;
  }
  j.q_max = mo.window ? mo.window : 64 * mo.chunksize;
  pthread_mutex_init(&j.mu, NULL);
  pthread_cond_init(&j.cv, NULL);
  pthread_t th;
  if (pthread_create(&th, NULL, writer_main, &j) != 0) {
    free(j.rec_path);
    return mpx__fail(MPX_ESYS, "cannot start the writer thread");
  }
  pthread_mutex_lock(&j.mu);
  while (!j.opened)
    pthread_cond_wait(&j.cv, &j.mu);
  int wrc = j.wrc;
  uint64_t start = j.start;
  pthread_mutex_unlock(&j.mu);

  progress pg = {isatty(2), jo.quiet, mpx__now(),
                 0,         10.0,     jo.label ? jo.label : name};
  pg.every = mpx__env_double("MPX_PROGRESS_INTERVAL", 10.0);
  int map_rc = 0;
  if (!wrc && start < n) {
    mpx_map *m = NULL;
    mo.first = start;
    map_rc = mpx_map_create_producer(ex, name, fn, arg, n, &mo, &m);
    while (map_rc == 0) {
      mpx__chunk *c;
      int r = mpx__map_next_chunk(m, 0.5, &c);
      pthread_mutex_lock(&j.mu);
      uint64_t done = j.written, failed = j.failed;
      wrc = j.wrc;
      pthread_mutex_unlock(&j.mu);
      show(&pg, &j, done, failed, 0);
      if (wrc) {
        if (r == 0)
          mpx__chunk_free(c); /* taken, and nobody will write it now */
        break;
      }
      if (r == MPX_ETIMEDOUT)
        continue;
      if (r == MPX_EOF)
        break;
      if (r != 0) {
        map_rc = r;
        break;
      }
      if ((map_rc = push(&j, c)) != 0)
        break; /* the writer's error (reported below) or no memory */
    }
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", mpx_last_error());
    mpx_map_destroy(&m);
    if (map_rc)
      mpx__fail(map_rc, "%s", saved[0] ? saved : mpx_strerror(map_rc));
  }
  pthread_mutex_lock(&j.mu);
  j.closing = 1;
  pthread_cond_broadcast(&j.cv);
  pthread_mutex_unlock(&j.mu);
  pthread_join(th, NULL);
  show(&pg, &j, j.written, j.failed, 1);
  if (report) {
    report->items = n;
    report->recorded = start;
    report->computed = j.committed > start ? j.committed - start : 0;
    report->failed = j.committed_failed;
    report->rows = j.committed_rows;
    report->seconds = mpx__now() - t0;
  }
  rc = j.wrc ? mpx__fail(j.wrc, "%s", j.wmsg) : map_rc;
  if (rc == 0 && j.committed != n)
    rc =
        mpx__fail(MPX_EIO, "'%s': only %llu of %llu inputs were committed",
                  path, (unsigned long long)j.committed, (unsigned long long)n);
  free(j.q);
  free(j.rec_path);
  pthread_mutex_destroy(&j.mu);
  pthread_cond_destroy(&j.cv);
  return rc;
}

/* HDF5 is not thread-safe: one job (one writer thread) at a time. */
static atomic_int job_running;

int mpx_job_run(mpx_executor *ex, const char *name, mpx_producer fn, void *arg,
                uint64_t n, const mpx_map_options *mo, const char *path,
                const mpx_job_options *jo, mpx_job_report *report) {
  int idle = 0;
  if (!atomic_compare_exchange_strong(&job_running, &idle, 1)) {
    if (report)
      memset(report, 0, sizeof *report);
    return mpx__fail(MPX_EBUSY,
                     "mpx_job_run: another job is running in this process "
                     "(HDF5 is called from one writer thread at a time); "
                     "run jobs one after another");
  }
  int rc = run_job(ex, name, fn, arg, n, mo, path, jo, report);
  atomic_store(&job_running, 0);
  return rc;
}
