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
 * in input order, plus mpx's /mpx records and provenance attributes. A file
 * that cannot be read keeps its row (zeros, target -1) and is reported on
 * stderr; the job goes on.
 *
 * Usage: mpirun -n N mpx-features [options] INPUT...   (see --help)
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audio.h"
#include "mpx.h"

#define TASK "features"

static const char usage[] =
    "usage: mpirun -n N mpx-features [options] INPUT...\n"
    "  INPUT            a WAV file, or a directory (its *.wav files, sorted)\n"
    "  --list FILE      read input paths from FILE, one per line\n"
    "  -o, --out PATH   the HDF5 output (default features.h5)\n"
    "  --parts K        split the files into K tasks by numpy's array_split\n"
    "                   rule (default: 4 per worker, at most one per file)\n"
    "  --chunksize C    tasks per message (default 1)\n"
    "  --resume         finish the job the output records (or start it)\n"
    "  --overwrite      replace an existing output\n"
    "  --gzip LEVEL     compress the datasets (1-9)\n"
    "  --commit SEC     seconds between commits (default 1)\n"
    "  --quiet          no progress on stderr\n";

/* ---- the task ---------------------------------------------------------- */

/* Input: the paths of one part, NUL-terminated, back to back. */
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

/* ---- inputs
 * ------------------------------------------------------------------ */

typedef struct files {
  char **v;
  size_t n, cap;
} files;

static int add_file(files *f, const char *path) {
  if (f->n == f->cap) {
    size_t cap = f->cap ? 2 * f->cap : 64;
    char **v = realloc(f->v, cap * sizeof *v);
    if (!v)
      return -1;
    f->v = v;
    f->cap = cap;
  }
  return (f->v[f->n++] = strdup(path)) ? 0 : -1;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_wav(const char *name) {
  size_t l = strlen(name);
  return l > 4 && strcasecmp(name + l - 4, ".wav") == 0;
}

/* Adds an input: a directory's *.wav files (sorted), or the path itself
 * (even when it is missing: the task reports it). Returns 0 or -1. */
static int add_input(files *f, const char *path) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
    return add_file(f, path);
  DIR *d = opendir(path);
  if (!d) {
    fprintf(stderr, "mpx-features: cannot read directory '%s': %s\n", path,
            strerror(errno));
    return -1;
  }
  size_t first = f->n;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || !is_wav(e->d_name))
      continue;
    char full[4096];
    snprintf(full, sizeof full, "%s/%s", path, e->d_name);
    if (add_file(f, full) != 0)
      break;
  }
  closedir(d);
  qsort(f->v + first, f->n - first, sizeof *f->v, cmp_str);
  return 0;
}

static int add_list(files *f, const char *list) {
  FILE *in = fopen(list, "r");
  if (!in) {
    fprintf(stderr, "mpx-features: cannot open list '%s': %s\n", list,
            strerror(errno));
    return -1;
  }
  char line[4096];
  while (fgets(line, sizeof line, in)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (line[0] && line[0] != '#' && add_file(f, line) != 0)
      break;
  }
  fclose(in);
  return 0;
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
    need += strlen(p->f->v[j]) + 1;
  if (need > p->cap) {
    char *b = realloc(p->buf, need);
    if (!b)
      return MPX_ENOMEM;
    p->buf = b;
    p->cap = need;
  }
  size_t pos = 0;
  for (uint64_t j = s; j < e; j++) {
    size_t l = strlen(p->f->v[j]) + 1;
    memcpy(p->buf + pos, p->f->v[j], l);
    pos += l;
  }
  *data = p->buf;
  *len = pos;
  return 1;
}

/* ---- main
 * ---------------------------------------------------------------------- */

typedef struct args {
  const char *out, *list;
  uint64_t parts;
  mpx_map_options mo;
  mpx_job_options jo;
  char **inputs;
  int ninputs;
} args;

/* Parses the command line; returns 0, or 2 after printing why not. */
static int parse(int argc, char **argv, args *a) {
  a->out = "features.h5";
  mpx_map_options_init(&a->mo);
  mpx_job_options_init(&a->jo);
  a->jo.label = "mpx-features";
  a->inputs = calloc((size_t)argc, sizeof *a->inputs);
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
    } else if (!strcmp(o, "--parts") && v) {
      a->parts = strtoull(argv[++i], &end, 10);
    } else if (!strcmp(o, "--chunksize") && v) {
      a->mo.chunksize = strtoull(argv[++i], &end, 10);
    } else if (!strcmp(o, "--gzip") && v) {
      a->jo.compression = (int)strtol(argv[++i], &end, 10);
    } else if (!strcmp(o, "--commit") && v) {
      a->jo.commit_interval = strtod(argv[++i], &end);
    } else if (!strcmp(o, "--resume")) {
      a->jo.mode = MPX_OUT_RESUME;
    } else if (!strcmp(o, "--overwrite")) {
      a->jo.mode = MPX_OUT_OVERWRITE;
    } else if (!strcmp(o, "--quiet")) {
      a->jo.quiet = 1;
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
  return 0;
}

/* Runs the job on the root. Returns the exit status. */
static int run_root(mpx_executor *ex, args *a) {
  files f = {0};
  for (int i = 0; i < a->ninputs; i++)
    if (add_input(&f, a->inputs[i]) != 0)
      return 2;
  if (a->list && add_list(&f, a->list) != 0)
    return 2;
  if (f.n == 0) {
    fprintf(stderr, "mpx-features: no input files (give WAV files, "
                    "directories holding *.wav, or --list FILE)\n");
    return 2;
  }
  uint64_t k = a->parts;
  if (k == 0)
    k = 4 * (uint64_t)mpx_executor_workers(ex);
  if (k > f.n)
    k = f.n;
  parts p = {&f, k, NULL, 0};
  mpx_job_report r;
  int rc = mpx_job_run(ex, TASK, produce, &p, k, &a->mo, a->out, &a->jo, &r);
  free(p.buf);
  int status = 0;
  if (rc) {
    fprintf(stderr, "mpx-features: %s: %s\n", mpx_err_name(rc),
            mpx_last_error());
    status = 1;
  } else {
    printf("mpx-features: %zu files in %llu parts on %d workers -> %s "
           "(%llu rows; %llu parts recorded before, %llu computed now, "
           "%.2f s)\n",
           f.n, (unsigned long long)k, mpx_executor_workers(ex), a->out,
           (unsigned long long)r.rows, (unsigned long long)r.recorded,
           (unsigned long long)r.computed, r.seconds);
    if (r.failed)
      printf("mpx-features: %llu parts failed as a whole (see "
             "/mpx/item_error)\n",
             (unsigned long long)r.failed);
  }
  for (size_t i = 0; i < f.n; i++)
    free(f.v[i]);
  free(f.v);
  return status;
}

int main(int argc, char **argv) {
  args a = {0};
  int prc = parse(argc, argv, &a);
  if (prc) {
    free(a.inputs);
    return prc == 1 ? 0 : 2;
  }
  if (mpx_init(&argc, &argv) != 0) {
    fprintf(stderr, "mpx-features: %s\n", mpx_last_error());
    return 1;
  }
  mpx_register(TASK, features_task);
  mpx_executor *ex = NULL;
  int rc = mpx_executor_create(MPI_COMM_WORLD, NULL, &ex);
  int status = 0;
  if (rc) {
    fprintf(stderr, "mpx-features: %s\n", mpx_last_error());
    status = 1;
  } else if (ex) {
    status = run_root(ex, &a);
    mpx_executor_shutdown(ex, 1, 1);
    mpx_executor_destroy(&ex);
  }
  free(a.inputs);
  mpx_finalize();
  return status;
}
