#define _GNU_SOURCE
/*
 * mpx-features -- the seed blog's feature-extraction job, in C, on MPI:
 *
 *   executor.map(generate_feature, np.array_split(files, 8))
 *   np.save("feature.npy", np.concatenate(...)); np.save("target.npy", ...)
 *
 * becomes one resumable HDF5 file written by mpx_job_run(). The inputs are
 * WAV files (given one by one, as directories of *.wav, or in a list file);
 * they are split into parts by numpy's array_split rule, each part is one
 * task that reads its files and computes, per file, 64 float32 spectral
 * features (apps/features/audio.h) and an int32 target (the number the
 * file name starts with, "7_m3_150.wav" -> 7, else -1). The output holds
 *   /feature      float32 [files x 64]
 *   /target       int32   [files]
 *   /path         str     [files]
 *   /file_status  int32   [files]   0, or -1 when the file could not be read
 *   /file_error   str     [files]   why not ("" when it could)
 * in input order, plus mpx's /mpx records and provenance attributes.
 *
 * Inputs are checked on the root before anything starts: a path that does
 * not exist (on the command line or a line of the list) stops the program
 * with exit status 2 and no output. A file that exists but cannot be read
 * as WAV (not RIFF, empty, a FIFO or a device: the reader takes regular
 * files only and never blocks) keeps its row (zeros, target -1, the reason
 * in /file_error), is reported on stderr, and the job goes on.
 *
 * Resuming. The job is identified by its input list: the paths in input
 * order with each file's size and modification time, digested into
 * "files=N bytes=B digest=<FNV-1a 64>" (or an explicit --job-id key); the
 * library stores it and refuses a resume whose identity differs. The
 * number of parts does not depend on the number of ranks (see --help), so
 * a job resubmitted with another task count resumes.
 *
 * Signals. SIGINT, SIGTERM and SIGUSR1 are caught on every rank: the job
 * stops, commits what is whole, and the program exits with status 75
 * (EX_TEMPFAIL) after the library's message; --resume finishes it. Workers
 * survive the signal their launcher forwards, so the root can commit.
 *
 * Exit status: 0 done, 1 job error, 2 usage or inputs, 75 interrupted.
 * Usage: mpirun -n N mpx-features [options] INPUT...   (see --help)
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audio.h"
#include "mpx.h"

#define TASK "features"
/* Exit status of an interrupted job (EX_TEMPFAIL): run it again. */
#define EXIT_INTERRUPTED 75
/* Input problems printed one by one; the rest are counted. */
#define MAX_REPORTED 20

static const char usage[] =
    "usage: mpirun -n N mpx-features [options] INPUT...\n"
    "  INPUT            a WAV file, or a directory (its *.wav files, sorted)\n"
    "  --list FILE      read input files from FILE, one path per line, row\n"
    "                   i of the output for the i-th path (empty lines and\n"
    "                   lines starting with '#' are skipped)\n"
    "  -o, --out PATH   the HDF5 output (default features.h5)\n"
    "  --parts K        split the files into K tasks by numpy's array_split\n"
    "                   rule (default min(files, max(1024, ceil(files/16))),\n"
    "                   the same at any number of ranks, so that a job\n"
    "                   resubmitted with another task count resumes)\n"
    "  --chunksize C    tasks per message (default 1)\n"
    "  --resume         finish the job the output records (or start it)\n"
    "  --overwrite      replace an existing output\n"
    "  --job-id KEY     the job's identity (default: a digest of the input\n"
    "                   paths, sizes and modification times); a resume with\n"
    "                   another identity is refused\n"
    "  --gzip LEVEL     compress the datasets (1-9)\n"
    "  --commit SEC     seconds between commits (default 1)\n"
    "  --quiet          no progress on stderr\n"
    "  --isolation MODE process (default): each worker runs its tasks in a\n"
    "                   supervised process, so a part that crashes its\n"
    "                   decoder, exits or exceeds a limit is recorded as\n"
    "                   failed and the job goes on; none: inside the ranks\n"
    "  --task-timeout SEC  stop a part after SEC seconds (recorded as\n"
    "                   failed: MPX_ETIMELIMIT)\n"
    "  --memory-limit N bytes a part's process may add (K, M, G suffixes)\n"
    "  --retries N      run a part that crashed or hit a limit again, up to\n"
    "                   N times, on another worker where there is one\n"
    "  --grace SEC      on SIGINT, SIGTERM or SIGUSR1: dispatch nothing more\n"
    "                   and let running parts finish and be committed for\n"
    "                   up to SEC seconds (default 0: stop at once)\n"
    "  --retry-failed   with --resume (implied): compute again the parts the\n"
    "                   output records as failed\n"
    "Every input path must exist (else exit 2, before anything starts); a\n"
    "file that is not a readable WAV is recorded as a failed row.\n"
    "SIGINT, SIGTERM or SIGUSR1 stop the job after committing what is\n"
    "whole: exit 75 (EX_TEMPFAIL); run again with --resume to finish.\n"
    "Exit status: 0 done, 1 job error, 2 usage or inputs, 75 interrupted.\n";

/* The signal that asked us to stop, or 0 (see on_signal). */
static volatile sig_atomic_t got_signal;

/* Passes SIGINT, SIGTERM and SIGUSR1 to the library, which stops the job
 * and commits what is whole; the flag stops the input scan too. */
static void on_signal(int sig) {
  got_signal = sig;
  mpx_job_interrupt(sig);
}

/* Installs on_signal for SIGINT, SIGTERM and SIGUSR1. Interrupted system
 * calls restart, so that reading inputs or writing the output is not cut
 * short by a signal that only asks for a clean stop. */
static void install_handlers(void) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGUSR1};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaction(sigs[i], &sa, NULL);
}

/* ---- the task ---------------------------------------------------------- */

/* Computes the rows of one part: per file its features, target, path,
 * status and error. Input: the paths, NUL-terminated, back to back. */
static int features_task(mpx_task_ctx *ctx, const void *arg, size_t len) {
  const char *p = arg, *end = p + len;
  size_t m = 0;
  if (len == 0 || p[len - 1] != '\0')
    return mpx_task_fail(ctx, "input is not a list of NUL-terminated paths");
  for (const char *s = p; s < end; s += strlen(s) + 1)
    m++;
  float *feat = mpx_task_array(ctx, "feature", MPX_FLOAT32, m, MPXF_NFEAT);
  int32_t *target = mpx_task_array(ctx, "target", MPX_INT32, m, 1);
  int32_t *status = mpx_task_array(ctx, "file_status", MPX_INT32, m, 1);
  const char **paths = malloc((m ? m : 1) * sizeof *paths);
  char **errs = calloc(m ? m : 1, sizeof *errs);
  if (!feat || !target || !status || !paths || !errs) {
    free(paths);
    free(errs);
    return mpx_task_fail(ctx, "out of memory for %zu files", m);
  }
  size_t i = 0;
  for (const char *s = p; s < end; s += strlen(s) + 1, i++) {
    char err[512] = "";
    paths[i] = s;
    if (mpxf_file_features(s, feat + i * MPXF_NFEAT, err, sizeof err) == 0) {
      target[i] = mpxf_target_from_path(s);
      status[i] = 0;
    } else {
      memset(feat + i * MPXF_NFEAT, 0, MPXF_NFEAT * sizeof *feat);
      target[i] = -1;
      status[i] = -1;
      /* Reported where it happens; the output records it too. */
      fprintf(stderr, "mpx-features: skipped '%s' (rank %d): %s\n", s,
              mpx_task_rank(ctx), err);
    }
    errs[i] = strdup(err);
  }
  int rc = mpx_task_strings(ctx, "path", paths, m);
  if (rc == 0)
    rc = mpx_task_strings(ctx, "file_error", (const char *const *)errs, m);
  for (i = 0; i < m; i++)
    free(errs[i]);
  free(errs);
  free(paths);
  return rc ? mpx_task_fail(ctx, "%s", mpx_strerror(rc)) : 0;
}

/* ---- inputs ------------------------------------------------------------ */

/* One input file, with what the job identity digests. */
typedef struct entry {
  char *path;
  int64_t size;     /* bytes, or -1 when it cannot be stat'ed */
  int64_t mtime_ns; /* modification time in ns since the epoch, or 0 */
} entry;

typedef struct files {
  entry *v;
  size_t n, cap;
  size_t bad; /* input paths refused (they do not exist, ...) */
} files;

/* Frees the entries of f. */
static void files_free(files *f) {
  for (size_t i = 0; i < f->n; i++)
    free(f->v[i].path);
  free(f->v);
  f->v = NULL;
  f->n = f->cap = 0;
}

/* Appends path (taken: freed on failure) with its size and time from st
 * (NULL: unknown). Returns 0, or -1 after printing that memory ran out. */
static int add_entry(files *f, char *path, const struct stat *st) {
  if (path && f->n == f->cap) {
    size_t cap = f->cap ? 2 * f->cap : 64;
    entry *v = realloc(f->v, cap * sizeof *v);
    if (!v) {
      free(path);
      path = NULL;
    } else {
      f->v = v;
      f->cap = cap;
    }
  }
  if (!path) {
    fprintf(stderr, "mpx-features: out of memory for the input list\n");
    return -1;
  }
  entry *e = &f->v[f->n++];
  e->path = path;
  e->size = st ? (int64_t)st->st_size : -1;
  e->mtime_ns = st ? (int64_t)st->st_mtim.tv_sec * 1000000000 +
                         (int64_t)st->st_mtim.tv_nsec
                   : 0;
  return 0;
}

/* Prints a path for a message, quoted: whole when short, else its start,
 * its end and its length, so that a runaway list line stays readable. */
static void put_path(const char *path) {
  size_t l = strlen(path);
  if (l <= 200)
    fprintf(stderr, "'%s'", path);
  else
    fprintf(stderr, "'%.80s...%s' (%zu bytes)", path, path + l - 60, l);
}

/* Reports an input path that cannot be used, as "FILE:LINE: 'path':
 * reason" for a line of a list (file non-NULL) or "mpx-features: 'path':
 * reason"; only the first MAX_REPORTED are printed, all are counted. */
static void bad_input(files *f, const char *file, unsigned long line,
                      const char *path, const char *reason) {
  if (f->bad++ >= MAX_REPORTED)
    return;
  if (file)
    fprintf(stderr, "%s:%lu: ", file, line);
  else
    fputs("mpx-features: ", stderr);
  put_path(path);
  fprintf(stderr, ": %s\n", reason);
}

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const entry *)a)->path, ((const entry *)b)->path);
}

static int is_wav(const char *name) {
  size_t l = strlen(name);
  return l > 4 && strcasecmp(name + l - 4, ".wav") == 0;
}

/* Adds the *.wav files of directory path, sorted by path. An entry that
 * cannot be stat'ed (a dangling link) is still added: its row records why
 * it could not be read. Returns 0, or -1 when memory ran out. */
static int add_dir(files *f, const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    bad_input(f, NULL, 0, path, strerror(errno));
    return 0;
  }
  size_t first = f->n, pl = strlen(path);
  const char *sep = pl && path[pl - 1] == '/' ? "" : "/";
  int rc = 0;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      if (errno)
        bad_input(f, NULL, 0, path, strerror(errno));
      break;
    }
    if (e->d_name[0] == '.' || !is_wav(e->d_name))
      continue;
    struct stat st;
    int ok = fstatat(dirfd(d), e->d_name, &st, 0) == 0;
    char *full = NULL;
    if (asprintf(&full, "%s%s%s", path, sep, e->d_name) < 0)
      full = NULL;
    if ((rc = add_entry(f, full, ok ? &st : NULL)) != 0 || got_signal)
      break;
  }
  closedir(d);
  qsort(f->v + first, f->n - first, sizeof *f->v, cmp_entry);
  return rc;
}

/* Adds one input path: a file as itself, a directory as its *.wav files
 * when dirs is set (command-line inputs; a list names files, one row per
 * line). A path that does not exist is reported with its place (file and
 * line of a list, or NULL) and counted. Returns 0, or -1 when memory ran
 * out. */
static int add_path(files *f, const char *path, int dirs, const char *file,
                    unsigned long line) {
  struct stat st;
  if (stat(path, &st) != 0) {
    bad_input(f, file, line, path, strerror(errno));
    return 0;
  }
  if (dirs && S_ISDIR(st.st_mode))
    return add_dir(f, path);
  return add_entry(f, strdup(path), &st);
}

/* Whether a list line holds nothing but blanks. */
static int is_blank(const char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  return *s == '\0';
}

/* Adds the paths listed in the file list, one per line of any length; a
 * trailing CR is dropped, blank lines and '#' comments are skipped.
 * Returns 0 (problems with the paths are counted in f->bad), 2 after
 * printing that the list cannot be opened or read, or -1 when memory ran
 * out. */
static int add_list(files *f, const char *list) {
  FILE *in = fopen(list, "r");
  if (!in) {
    fprintf(stderr, "mpx-features: cannot open list '%s': %s\n", list,
            strerror(errno));
    return 2;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  unsigned long lineno = 0;
  int rc = 0;
  errno = 0;
  while (!got_signal && (len = getline(&line, &cap, in)) >= 0) {
    lineno++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
      line[--len] = '\0';
    if (strlen(line) != (size_t)len)
      bad_input(f, list, lineno, line, "the line holds a NUL byte");
    else if (!is_blank(line) && line[0] != '#' &&
             (rc = add_path(f, line, 0, list, lineno)) != 0)
      break;
    errno = 0;
  }
  if (rc == 0 && !got_signal && !feof(in)) {
    fprintf(stderr, "mpx-features: cannot read list '%s' after line %lu: %s\n",
            list, lineno, strerror(errno ? errno : EIO));
    rc = 2;
  }
  free(line);
  fclose(in);
  return rc;
}

/* Folds n bytes into an FNV-1a 64 hash. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

/* Folds v as 8 little-endian bytes, the same on every machine. */
static uint64_t fnv1a_i64(uint64_t h, int64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++)
    b[i] = (unsigned char)((uint64_t)v >> (8 * i));
  return fnv1a(h, b, sizeof b);
}

/* Writes the job identity of the inputs into buf: "files=N bytes=B
 * digest=D", D the FNV-1a 64 of every path (with its NUL), size and
 * modification time in ns, in input order. Another list, order, size or
 * time gives another identity, so a resume cannot mix two data sets. */
static void identity(const files *f, char *buf, size_t cap) {
  uint64_t h = 0xcbf29ce484222325ULL, bytes = 0;
  for (size_t i = 0; i < f->n; i++) {
    const entry *e = &f->v[i];
    h = fnv1a(h, e->path, strlen(e->path) + 1);
    h = fnv1a_i64(fnv1a_i64(h, e->size), e->mtime_ns);
    if (e->size > 0)
      bytes += (uint64_t)e->size;
  }
  snprintf(buf, cap, "files=%zu bytes=%llu digest=%016llx", f->n,
           (unsigned long long)bytes, (unsigned long long)h);
}

typedef struct parts {
  const files *f;
  uint64_t k;
  char *buf;
  size_t cap;
} parts;

/* Produces part i: the NUL-terminated paths of array_split(files, k)[i]. */
static int produce(void *arg, uint64_t i, const void **data, size_t *len) {
  parts *p = arg;
  uint64_t s, e;
  if (i >= p->k)
    return 0;
  mpx_array_split(p->f->n, p->k, i, &s, &e);
  size_t need = 0;
  for (uint64_t j = s; j < e; j++)
    need += strlen(p->f->v[j].path) + 1;
  if (need > p->cap) {
    char *b = realloc(p->buf, need);
    if (!b)
      return MPX_ENOMEM;
    p->buf = b;
    p->cap = need;
  }
  size_t pos = 0;
  for (uint64_t j = s; j < e; j++) {
    size_t l = strlen(p->f->v[j].path) + 1;
    memcpy(p->buf + pos, p->f->v[j].path, l);
    pos += l;
  }
  *data = p->buf;
  *len = pos;
  return 1;
}

/* The default number of parts of n files: min(n, max(1024, ceil(n/16))).
 * It depends on the files only, never on the ranks, so that a job
 * resubmitted with another task count is the same job; 1024 parts keep
 * up to a few hundred workers busy, and 16 files per part at most keep a
 * killed part's loss small. */
static uint64_t default_parts(uint64_t n) {
  uint64_t k = n / 16 + (n % 16 != 0);
  if (k < 1024)
    k = 1024;
  return k < n ? k : n;
}

/* ---- main -------------------------------------------------------------- */

typedef struct args {
  const char *out, *list, *job_id;
  uint64_t parts;
  mpx_executor_options eo;
  mpx_map_options mo;
  mpx_job_options jo;
  char **inputs;
  int ninputs;
} args;

/* Parses the command line; returns 0, 1 after --help, or 2 after printing
 * why not. */
static int parse(int argc, char **argv, args *a) {
  a->out = "features.h5";
  mpx_executor_options_init(&a->eo);
  if (!getenv("MPX_ISOLATION")) /* the app isolates unless told not to */
    a->eo.isolation = MPX_ISOLATION_PROCESS;
  mpx_map_options_init(&a->mo);
  mpx_job_options_init(&a->jo);
  a->jo.label = "mpx-features";
  a->jo.progress = 1; /* the app shows progress unless --quiet */
  a->inputs = calloc((size_t)argc, sizeof *a->inputs);
  if (!a->inputs)
    return 2;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    char *end = NULL;
    if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
      fputs(usage, stdout);
      return 1;
    } else if ((!strcmp(o, "-o") || !strcmp(o, "--out")) && v) {
      a->out = argv[++i];
    } else if (!strcmp(o, "--list") && v) {
      a->list = argv[++i];
    } else if (!strcmp(o, "--job-id") && v) {
      a->job_id = argv[++i];
    } else if (!strcmp(o, "--parts") && v) {
      a->parts = strtoull(argv[++i], &end, 10);
    } else if (!strcmp(o, "--chunksize") && v) {
      a->mo.chunksize = strtoull(argv[++i], &end, 10);
    } else if (!strcmp(o, "--gzip") && v) {
      a->jo.compression = (int)strtol(argv[++i], &end, 10);
    } else if (!strcmp(o, "--commit") && v) {
      a->jo.commit_interval = strtod(argv[++i], &end);
    } else if (!strcmp(o, "--resume")) {
      a->jo.mode = MPX_JOB_RESUME;
    } else if (!strcmp(o, "--overwrite")) {
      a->jo.mode = MPX_JOB_OVERWRITE;
    } else if (!strcmp(o, "--quiet")) {
      a->jo.progress = 0;
    } else if (!strcmp(o, "--isolation") && v) {
      const char *m = argv[++i];
      if (strcmp(m, "process") && strcmp(m, "none")) {
        fprintf(stderr,
                "mpx-features: --isolation wants process or none, "
                "got '%s'\n",
                m);
        return 2;
      }
      a->eo.isolation =
          strcmp(m, "process") ? MPX_ISOLATION_NONE : MPX_ISOLATION_PROCESS;
    } else if (!strcmp(o, "--task-timeout") && v) {
      a->eo.task_timeout = strtod(argv[++i], &end);
      if (!(a->eo.task_timeout > 0) && !*end) {
        fprintf(stderr, "mpx-features: --task-timeout wants seconds > 0\n");
        return 2;
      }
    } else if (!strcmp(o, "--memory-limit") && v) {
      double b = strtod(argv[++i], &end);
      double mult = *end == 'K'   ? 1024.0
                    : *end == 'M' ? 1048576.0
                    : *end == 'G' ? 1073741824.0
                                  : 1;
      if (mult > 1)
        end++;
      if (!(b > 0)) {
        fprintf(stderr, "mpx-features: --memory-limit wants bytes > 0\n");
        return 2;
      }
      a->eo.memory_limit = (uint64_t)(b * mult);
    } else if (!strcmp(o, "--retries") && v) {
      a->eo.retries = (int)strtol(argv[++i], &end, 10);
      if (a->eo.retries < 0 && !*end) {
        fprintf(stderr, "mpx-features: --retries wants N >= 0\n");
        return 2;
      }
    } else if (!strcmp(o, "--grace") && v) {
      a->jo.grace = strtod(argv[++i], &end);
      if (!(a->jo.grace >= 0) && !*end) {
        fprintf(stderr, "mpx-features: --grace wants seconds >= 0\n");
        return 2;
      }
    } else if (!strcmp(o, "--retry-failed")) {
      a->jo.retry_failed = 1;
      a->jo.mode = MPX_JOB_RESUME;
    } else if (o[0] == '-' && o[1]) {
      fprintf(stderr, "mpx-features: unknown option '%s'\n%s", o, usage);
      return 2;
    } else {
      a->inputs[a->ninputs++] = argv[i];
    }
    if (end && *end) {
      fprintf(stderr, "mpx-features: '%s' needs a number, got '%s'\n", o,
              argv[i]);
      return 2;
    }
  }
  if (a->jo.retry_failed && a->jo.mode != MPX_JOB_RESUME) {
    fprintf(stderr, "mpx-features: --retry-failed resumes an output; it "
                    "cannot go with --overwrite\n");
    return 2;
  }
  if (a->job_id && (!a->job_id[0] || strlen(a->job_id) > MPX_JOB_IDENTITY_MAX ||
                    strpbrk(a->job_id, "\r\n"))) {
    fprintf(stderr, "mpx-features: --job-id wants one line of 1 to %d bytes\n",
            MPX_JOB_IDENTITY_MAX);
    return 2;
  }
  return 0;
}

/* Collects the inputs named on the command line and in the list into f.
 * Returns 0, 2 when an input path or the list cannot be used (reported,
 * nothing started), 1 when memory ran out, or EXIT_INTERRUPTED after a
 * signal. */
static int collect(const args *a, files *f) {
  int rc = 0;
  for (int i = 0; rc == 0 && !got_signal && i < a->ninputs; i++)
    rc = add_path(f, a->inputs[i], 1, NULL, 0);
  if (rc == 0 && !got_signal && a->list)
    rc = add_list(f, a->list);
  if (got_signal) {
    fprintf(stderr,
            "mpx-features: interrupted by signal %d while reading the "
            "inputs; nothing was written\n",
            (int)got_signal);
    return EXIT_INTERRUPTED;
  }
  if (rc)
    return rc < 0 ? 1 : rc;
  if (f->bad) {
    if (f->bad > MAX_REPORTED)
      fprintf(stderr, "mpx-features: ... and %zu more\n",
              f->bad - MAX_REPORTED);
    fprintf(stderr,
            "mpx-features: %zu input path%s cannot be used; nothing was "
            "started\n",
            f->bad, f->bad == 1 ? "" : "s");
    return 2;
  }
  if (f->n == 0) {
    fprintf(stderr, "mpx-features: no input files (give WAV files, "
                    "directories holding *.wav, or --list FILE)\n");
    return 2;
  }
  return 0;
}

/* Runs the job on the root. Returns the exit status. */
static int run_root(mpx_executor *ex, args *a) {
  files f = {0};
  int status = collect(a, &f);
  if (status) {
    files_free(&f);
    return status;
  }
  char id[128];
  identity(&f, id, sizeof id);
  a->jo.identity = a->job_id ? a->job_id : id;
  uint64_t k = a->parts ? a->parts : default_parts(f.n);
  if (k > f.n)
    k = f.n;
  parts p = {&f, k, NULL, 0};
  mpx_job_report r;
  int rc = mpx_job_run(ex, TASK, produce, &p, k, &a->mo, a->out, &a->jo, &r);
  free(p.buf);
  /* What a resume found and did (the library prints nothing of it). */
  for (const char *n = r.notes; *n;) {
    size_t len = strcspn(n, "\n");
    fprintf(stderr, "mpx-features: %.*s\n", (int)len, n);
    n += len + (n[len] == '\n');
  }
  if (rc) {
    fprintf(stderr, "mpx-features: %s: %s\n", mpx_err_name(rc),
            mpx_last_error());
    status = rc == MPX_EINTR ? EXIT_INTERRUPTED : 1;
  } else {
    printf("mpx-features: %zu files in %llu parts on %d workers -> %s "
           "(%llu rows; %llu parts recorded before, %llu computed now, "
           "%.2f s)\n",
           f.n, (unsigned long long)k, mpx_executor_workers(ex), a->out,
           (unsigned long long)r.rows, (unsigned long long)r.recorded,
           (unsigned long long)r.computed, r.seconds);
    if (r.failed)
      printf("mpx-features: %llu parts failed as a whole (see "
             "/mpx/item_status and /mpx/item_error; --retry-failed computes "
             "them again)\n",
             (unsigned long long)r.failed);
  }
  files_free(&f);
  return status;
}

/* Parses the options on every rank, then runs the job on the root while
 * the other ranks serve as workers. */
int main(int argc, char **argv) {
  args a = {0};
  int prc = parse(argc, argv, &a);
  if (prc) {
    free(a.inputs);
    return prc == 1 ? 0 : 2;
  }
  if (mpx_init(&argc, &argv) != 0) {
    fprintf(stderr, "mpx-features: %s\n", mpx_last_error());
    free(a.inputs);
    return 1;
  }
  /* Every rank, before the pool starts: workers must outlive the signal
   * the launcher forwards to them, or the root could not commit. */
  install_handlers();
  mpx_register(TASK, features_task);
  mpx_executor *ex = NULL;
  int rc = mpx_executor_create(MPI_COMM_WORLD, &a.eo, &ex);
  int status = 0;
  if (rc) {
    fprintf(stderr, "mpx-features: %s\n", mpx_last_error());
    status = 1;
  } else if (ex) {
    status = run_root(ex, &a);
    if (status == EXIT_INTERRUPTED)
      mpx_executor_terminate(ex); /* parts still running are not waited
                                     for (with isolation they are killed) */
    else
      mpx_executor_shutdown(ex, 1, 1);
    mpx_executor_destroy(&ex);
  }
  free(a.inputs);
  /* Every rank exits with the job's status (MPICH's Hydra, signalled,
   * may report a worker's). */
  return mpx_finalize_status(status);
}
