/*
 * mpx-run -- a task farm for the shell on the mpx executor: runs shell
 * commands on the worker ranks, each in a supervised task process, as GNU
 * parallel runs them on one machine.
 *
 *   mpirun -n N mpx-run [options] TEMPLATE ::: ARG...
 *   mpirun -n N mpx-run [options] -a FILE TEMPLATE
 *   mpirun -n N mpx-run [options] [COMMANDS-FILE]     (one command a line;
 *                                                      standard input
 *                                                      without a file)
 *
 * The template takes GNU parallel's replacement strings ({} {.} {/} {//}
 * {/.} {#} {%}), each value quoted for the shell; a template without one
 * gets the argument appended. Each command runs under /bin/sh -c (one of
 * plain words only, which means the same without a shell, is started
 * directly) in the working directory, its standard input /dev/null, its
 * standard output and error captured. The root prints each command's output in
 * input order (as `parallel -k`), writes GNU parallel's joblog (--joblog), and
 * with -o FILE.h5 one HDF5 file holding every command's seq, command,
 * exit value, signal, start, run time, host, stdout and stderr, resumable
 * with --resume after a kill (mpx_job_run).
 *
 * Exit status (GNU parallel's): 0 every command succeeded, 1-100 that many
 * failed, 101 more than 100 failed, 255 any other error (bad usage, an
 * unwritable log or output, a job error). After --halt: fail=1 the failed
 * command's exit status (128 + signal), fail=P% the percentage that
 * failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mpx.h"

#define TASK "mpx-run.command"
#define EXIT_ERROR 255
#define EXIT_STOPPED 102 /* a signal or --task-time stopped the run */

/* The signal that asked the run to stop (SIGALRM for --task-time), on
 * every rank: workers survive the signal their launcher forwards. */
static volatile sig_atomic_t stop_sig;

static void on_stop_signal(int sig) {
  if (!stop_sig)
    stop_sig = sig;
  mpx_job_interrupt(sig);
}

static void install_stop_handlers(void) {
  static const int sigs[] = {SIGUSR1, SIGTERM, SIGINT};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaction(sigs[i], &sa, NULL);
}

static const char usage[] =
    "usage: mpirun -n N mpx-run [options] TEMPLATE ::: ARG...\n"
    "       mpirun -n N mpx-run [options] -a FILE TEMPLATE\n"
    "       mpirun -n N mpx-run [options] [COMMANDS-FILE]   (one command a "
    "line;\n"
    "                                    standard input without a file)\n"
    "Runs each command with /bin/sh -c on the worker ranks, each in a\n"
    "supervised task process. The template takes GNU parallel's "
    "replacement\n"
    "strings {} {.} {/} {//} {/.} {#} {%}, quoted for the shell; without "
    "one\n"
    "the argument is appended.\n"
    "  -a, --args FILE   arguments, one a line (- for standard input)\n"
    "  -o, --out F.h5    one HDF5 file with every command's outcome and "
    "output\n"
    "  --results DIR     each command's seq, stdout and stderr in files "
    "under\n"
    "                    DIR/1/<argument>/, as GNU parallel's --results\n"
    "  --joblog FILE     GNU parallel's joblog (Seq Host Starttime "
    "JobRuntime\n"
    "                    Send Receive Exitval Signal Command)\n"
    "  --resume          skip the commands the joblog (or the -o output) "
    "holds\n"
    "  --resume-failed   ... and run again those of them that failed "
    "(joblog)\n"
    "  --overwrite       replace an existing -o output\n"
    "  --commit SEC      commit -o at most every SEC seconds (default 0: "
    "every\n"
    "                    result at once, so a kill loses as little as "
    "can be)\n"
    "  --timeout SEC     stop a command after SEC seconds (TERM, KILL 1 s "
    "later)\n"
    "  --retries N       run a failing command again, up to N more times\n"
    "  --halt WHEN       never (default), now,fail=N, soon,fail=N, "
    "now,fail=P%,\n"
    "                    soon,fail=P%: stop after N (P%) failures; now "
    "stops\n"
    "                    running commands, soon lets them finish\n"
    "  --grace SEC       on SIGUSR1, SIGTERM or SIGINT: dispatch nothing "
    "more,\n"
    "                    let running commands finish for SEC seconds "
    "(default\n"
    "                    60), stop the rest, commit, exit 102\n"
    "  --task-time SEC   under SLURM: start no command later than SEC "
    "seconds\n"
    "                    before the job's end time (then stop as on a "
    "signal)\n"
    "  --env VAR         give commands the root's VAR (repeatable)\n"
    "  --wd DIR          run commands in DIR (default: the current "
    "directory)\n"
    "  --bar             progress on standard error\n"
    "  -q, --quiet       do not print the commands' output\n"
    "  --job-id KEY      the -o output's identity (default: a digest of the\n"
    "                    commands)\n"
    "Exit status: 0 all succeeded, 1-100 that many failed, 101 more, 102 "
    "stopped\n"
    "by a signal or --task-time (what finished is recorded: run again with\n"
    "--resume), 255 error.\n";

/* ---- options ------------------------------------------------------------ */

typedef struct opts {
  const char *args_file, *out, *joblog, *wd, *job_id, *results;
  int resume, resume_failed, overwrite, quiet, bar;
  double timeout;
  double commit;    /* seconds between commits of -o (default 0: each result) */
  double grace;     /* after a stop signal: seconds running commands get */
  double task_time; /* --task-time: longest a command may need, or 0 */
  int retries;
  int halt_now, halt_soon; /* --halt */
  long halt_count;         /* failures that halt, or */
  double halt_pct;         /* a share of the commands, or < 0 */
  const char **env;
  int nenv;
  char **tmpl; /* the template's words, or NULL: commands as lines */
  int ntmpl;
  char **args; /* after ::: */
  int nargs;
  int have_args; /* ::: was given */
  const char *commands_file;
} opts;

static int parse_halt(const char *v, opts *o) {
  if (!strcmp(v, "never"))
    return 0;
  const char *p = strchr(v, ',');
  if (!p)
    return -1;
  if (!strncmp(v, "now", (size_t)(p - v)) && p - v == 3)
    o->halt_now = 1;
  else if (!strncmp(v, "soon", (size_t)(p - v)) && p - v == 4)
    o->halt_soon = 1;
  else
    return -1;
  p++;
  if (strncmp(p, "fail=", 5))
    return -1;
  p += 5;
  char *end;
  double x = strtod(p, &end);
  if (end == p || !(x > 0))
    return -1;
  if (*end == '%' && end[1] == '\0') {
    o->halt_pct = x;
    if (x > 100)
      return -1;
  } else if (*end == '\0' && x == (long)x) {
    o->halt_count = (long)x;
  } else {
    return -1;
  }
  return 0;
}

/* Parses argv; returns 0, 1 after --help, or 2 after saying why not. */
static int parse(int argc, char **argv, opts *o) {
  memset(o, 0, sizeof *o);
  o->halt_pct = -1;
  o->grace = 60;
  o->env = calloc((size_t)argc, sizeof *o->env);
  if (!o->env)
    return 2;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    char *end = NULL;
    if (!strcmp(a, "--")) {
      i++;
      break;
    }
    if (a[0] != '-' || !a[1])
      break; /* the template, or a commands file */
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      fputs(usage, stdout);
      return 1;
    } else if ((!strcmp(a, "-a") || !strcmp(a, "--args")) && v) {
      o->args_file = argv[++i];
    } else if ((!strcmp(a, "-o") || !strcmp(a, "--out")) && v) {
      o->out = argv[++i];
    } else if (!strcmp(a, "--results") && v) {
      o->results = argv[++i];
    } else if (!strcmp(a, "--joblog") && v) {
      o->joblog = argv[++i];
    } else if (!strcmp(a, "--wd") && v) {
      o->wd = argv[++i];
    } else if (!strcmp(a, "--job-id") && v) {
      o->job_id = argv[++i];
    } else if (!strcmp(a, "--env") && v) {
      o->env[o->nenv++] = argv[++i];
    } else if (!strcmp(a, "--resume")) {
      o->resume = 1;
    } else if (!strcmp(a, "--resume-failed")) {
      o->resume = o->resume_failed = 1;
    } else if (!strcmp(a, "--overwrite")) {
      o->overwrite = 1;
    } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
      o->quiet = 1;
    } else if (!strcmp(a, "--bar") || !strcmp(a, "--progress")) {
      o->bar = 1;
    } else if (!strcmp(a, "--timeout") && v) {
      o->timeout = strtod(argv[++i], &end);
      if (!*end && !(o->timeout > 0))
        end = (char *)"x";
    } else if (!strcmp(a, "--commit") && v) {
      o->commit = strtod(argv[++i], &end);
      if (!*end && !(o->commit >= 0))
        end = (char *)"x";
    } else if (!strcmp(a, "--grace") && v) {
      o->grace = strtod(argv[++i], &end);
      if (!*end && !(o->grace >= 0))
        end = (char *)"x";
    } else if (!strcmp(a, "--task-time") && v) {
      o->task_time = strtod(argv[++i], &end);
      if (!*end && !(o->task_time > 0))
        end = (char *)"x";
    } else if (!strcmp(a, "--retries") && v) {
      long r = strtol(argv[++i], &end, 10);
      if (!*end && (r < 0 || r > 1000))
        end = (char *)"x";
      o->retries = (int)r;
    } else if (!strcmp(a, "--halt") && v) {
      if (parse_halt(argv[++i], o) != 0) {
        fprintf(stderr,
                "mpx-run: --halt wants never, now,fail=N, soon,fail=N, "
                "now,fail=P%% or soon,fail=P%%; got '%s'\n",
                argv[i]);
        return 2;
      }
    } else {
      fprintf(stderr, "mpx-run: unknown option '%s'\n%s", a, usage);
      return 2;
    }
    if (end && *end) {
      fprintf(stderr, "mpx-run: '%s' wants a number >= 0, got '%s'\n", a,
              argv[i]);
      return 2;
    }
  }
  /* The rest: TEMPLATE words [::: ARG...], or a commands file. */
  int sep = -1;
  for (int k = i; k < argc; k++)
    if (!strcmp(argv[k], ":::")) {
      sep = k;
      break;
    }
  int tend = sep >= 0 ? sep : argc;
  if (sep >= 0) {
    o->have_args = 1;
    o->args = argv + sep + 1;
    o->nargs = argc - sep - 1;
    for (int k = 0; k < o->nargs; k++)
      if (!strcmp(o->args[k], ":::")) {
        fprintf(stderr, "mpx-run: one ::: list only (no combinations of "
                        "several)\n");
        return 2;
      }
  }
  if (sep < 0 && !o->args_file) {
    /* No arguments: the words left name a commands file (or none). */
    if (tend - i > 1) {
      fprintf(stderr, "mpx-run: a template needs its arguments (::: ARG... "
                      "or -a FILE); without them give one commands file\n");
      return 2;
    }
    o->commands_file = tend > i ? argv[i] : NULL;
  } else {
    o->tmpl = argv + i;
    o->ntmpl = tend - i;
    if (o->ntmpl == 0) /* arguments without a template: run them as is */
      o->tmpl = NULL;
  }
  if (o->have_args && o->args_file) {
    fprintf(stderr, "mpx-run: give the arguments with ::: or -a, not both\n");
    return 2;
  }
  if (o->resume && o->overwrite) {
    fprintf(stderr, "mpx-run: --resume and --overwrite exclude each other\n");
    return 2;
  }
  if (o->resume && !o->joblog && !o->out) {
    fprintf(stderr, "mpx-run: --resume needs --joblog or -o (what to resume "
                    "from)\n");
    return 2;
  }
  if (o->resume_failed && o->out) {
    fprintf(stderr, "mpx-run: --resume-failed works from the joblog; with -o "
                    "the output keeps every command's exit value: use "
                    "--resume\n");
    return 2;
  }
  return 0;
}

/* ---- commands ----------------------------------------------------------- */

typedef struct strv {
  char **v;
  size_t n, cap;
} strv;

static int strv_add(strv *s, char *p) {
  if (!p)
    return -1;
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 256;
    char **v = realloc(s->v, cap * sizeof *v);
    if (!v) {
      free(p);
      return -1;
    }
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = p;
  return 0;
}

static void strv_free(strv *s) {
  for (size_t i = 0; i < s->n; i++)
    free(s->v[i]);
  free(s->v);
  memset(s, 0, sizeof *s);
}

/* Reads the lines of path ("-" or NULL: standard input) into s, without
 * their newlines (and a CR before one). Returns 0 or -1 with errno. */
static int read_lines(const char *path, strv *s) {
  FILE *f = !path || !strcmp(path, "-") ? stdin : fopen(path, "r");
  if (!f)
    return -1;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int rc = 0;
  errno = 0;
  while ((len = getline(&line, &cap, f)) >= 0) {
    if (len > 0 && line[len - 1] == '\n')
      line[--len] = '\0';
    if (len > 0 && line[len - 1] == '\r')
      line[--len] = '\0';
    if (strv_add(s, strdup(line)) != 0) {
      rc = -1;
      break;
    }
  }
  if (ferror(f))
    rc = -1;
  free(line);
  if (f != stdin)
    fclose(f);
  return rc;
}

/* Appends to a growing string. */
typedef struct sbuf {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) {
  sb_put(b, s, strlen(s));
}

/* s quoted for /bin/sh: as is when it is made of safe bytes only, else in
 * single quotes (a ' becomes '\''). */
static void sb_quoted(sbuf *b, const char *s, size_t n) {
  int safe = n > 0;
  for (size_t i = 0; i < n && safe; i++) {
    unsigned char c = (unsigned char)s[i];
    safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || strchr("_-./,:+@%^=", c);
  }
  if (safe) {
    sb_put(b, s, n);
    return;
  }
  sb_put(b, "'", 1);
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\'')
      sb_put(b, "'\\''", 4);
    else
      sb_put(b, s + i, 1);
  }
  sb_put(b, "'", 1);
}

/* GNU parallel's replacement strings, as its Perl computes them:
 *   {/}   s:.*\/::        what follows the last slash
 *   {.}   s:\.[^/.]*$::   without the last extension (".bashrc" gives "")
 *   {/.}  {/}, then as {.}
 *   {//}  File::Basename's dirname ("a" and "a/" give ".", "/a" "/")
 * Each writes its value, quoted for the shell, to b. */
static size_t after_slash(const char *a, size_t n) {
  for (size_t i = n; i > 0; i--)
    if (a[i - 1] == '/')
      return i;
  return 0;
}

static size_t drop_ext(const char *a, size_t from, size_t n) {
  for (size_t i = n; i > from; i--) {
    if (a[i - 1] == '/')
      return n;
    if (a[i - 1] == '.')
      return i - 1;
  }
  return n;
}

static void put_dirname(sbuf *b, const char *a, size_t n) {
  for (int round = 0; round < 2; round++) {
    size_t cut = after_slash(a, n); /* fileparse: dir is a[0..cut) */
    size_t base = n - cut;
    const char *dir = cut ? a : "./";
    size_t dlen = cut ? cut : 2;
    while (dlen > 1 && dir[dlen - 1] == '/')
      dlen--; /* Perl: s{(.)/+$}{$1} */
    if (base > 0 || round == 1) {
      sb_quoted(b, dir, dlen);
      return;
    }
    a = dir; /* the path ended in a slash: once more on what is left */
    n = dlen;
  }
}

/* Expands one replacement string at *p (just after '{') into b; returns
 * the length consumed after '{', or 0 when it is not one. */
static size_t replace_one(sbuf *b, const char *p, const char *arg,
                          uint64_t seq) {
  size_t n = strlen(arg), base = after_slash(arg, n);
  if (p[0] == '}') {
    sb_quoted(b, arg, n);
    return 1;
  }
  if (p[0] == '.' && p[1] == '}') {
    sb_quoted(b, arg, drop_ext(arg, 0, n));
    return 2;
  }
  if (p[0] == '/' && p[1] == '}') {
    sb_quoted(b, arg + base, n - base);
    return 2;
  }
  if (p[0] == '/' && p[1] == '/' && p[2] == '}') {
    put_dirname(b, arg, n);
    return 3;
  }
  if (p[0] == '/' && p[1] == '.' && p[2] == '}') {
    sb_quoted(b, arg + base, drop_ext(arg, base, n) - base);
    return 3;
  }
  if (p[0] == '#' && p[1] == '}') {
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)seq);
    sb_str(b, num);
    return 2;
  }
  return 0;
}

/* Builds the command of argument arg (seq from 1) from the template's
 * words: each word joined by a space, replacement strings expanded; a
 * template without one gets the quoted argument appended. {%} (the job
 * slot) is not known on the root: it is written as %MPXSLOT% and set by
 * the worker. Returns a malloc'd string or NULL when out of memory. */
static char *expand(char **tmpl, int ntmpl, const char *arg, uint64_t seq) {
  sbuf b = {0};
  int replaced = 0;
  for (int w = 0; w < ntmpl; w++) {
    if (w)
      sb_put(&b, " ", 1);
    for (const char *p = tmpl[w]; *p;) {
      size_t n = 0;
      if (*p == '{' && p[1] == '%' && p[2] == '}') {
        sb_str(&b, "${MPX_RUN_SLOT}");
        n = 3;
        replaced = 1;
      } else if (*p == '{' && (n = replace_one(&b, p + 1, arg, seq)) > 0) {
        n += 1;
        replaced = 1;
      }
      if (n) {
        p += n;
      } else {
        sb_put(&b, p, 1);
        p++;
      }
    }
  }
  if (!replaced) {
    sb_put(&b, " ", 1);
    sb_quoted(&b, arg, strlen(arg));
  }
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p ? b.p : strdup("");
}

/* ---- the task: one command ---------------------------------------------- */

/* The task's argument: u64 seq, f64 timeout, u32 retries, u32 nenv, then
 * NUL-terminated strings: the working directory, nenv "VAR=value", the
 * command. */
typedef struct cmd_arg {
  uint64_t seq;
  double timeout;
  uint32_t retries, nenv;
} cmd_arg;

static double now_epoch(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec;
}

static double now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Reads what is ready on fd into b; returns 1 at EOF. */
static int drain(int fd, sbuf *b) {
  char buf[65536];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n > 0) {
    sb_put(b, buf, (size_t)n);
    return 0;
  }
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return 0;
  return 1;
}

typedef struct run_out {
  int exitval, sig;
  int timed_out; /* --timeout stopped it */
  double start, runtime;
  sbuf out, err;
} run_out;

/* The guard of this task process's commands, forked once per task
 * process: in a process group of its own, it reads the process group of
 * the command running now (0 when none) from a pipe, and when the task
 * process dies (EOF) it kills that group. A command has a group of its
 * own (so that --timeout stops all it started), out of reach of the kill
 * that takes the task process's group down when --halt now terminates
 * the run or the rank dies: without the guard it would run on. */
static int guard_fd = -1;

static void guard_tell(pid_t pgid) {
  if (guard_fd < 0) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
      return; /* then the command runs unguarded */
    pid_t g = fork();
    if (g == 0) {
      setpgid(0, 0);
      static const int ign[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};
      for (size_t i = 0; i < sizeof ign / sizeof ign[0]; i++)
        signal(ign[i], SIG_IGN);
      dup2(p[0], 0);
      close_range(1, ~0U, 0); /* no command's pipe, nor mpx's socket */
      int32_t cur = 0, v;
      for (;;) {
        ssize_t n = read(0, &v, sizeof v);
        if (n == (ssize_t)sizeof v)
          cur = v;
        else if (!(n < 0 && errno == EINTR))
          break;
      }
      if (cur > 0)
        kill(-cur, SIGKILL);
      _exit(0);
    }
    close(p[0]);
    if (g < 0) {
      close(p[1]);
      return;
    }
    guard_fd = p[1];
  }
  int32_t v = (int32_t)pgid;
  ssize_t w = write(guard_fd, &v, sizeof v);
  (void)w; /* a guard that is gone cannot help */
}

/* Whether the variable s ("NAME=value") is one the MPI launcher gave this
 * rank to join the job: a command is not part of the job, and an MPI
 * program it starts must run as a process of its own (with them it would
 * try to join this job, or see itself alone while they say otherwise). */
static int launcher_var(const char *s) {
  static const char *const prefixes[] = {"OMPI_COMM_WORLD_",
                                         "OMPI_MCA_orte_",
                                         "OMPI_MCA_ess",
                                         "OMPI_MCA_pmix",
                                         "OMPI_MCA_initial_wdir=",
                                         "OMPI_FILE_LOCATION=",
                                         "OMPI_UNIVERSE_SIZE=",
                                         "OMPI_FIRST_RANKS=",
                                         "OMPI_APP_CTX_NUM_PROCS=",
                                         "OMPI_NUM_APP_CTX=",
                                         "OMPI_COMMAND=",
                                         "OMPI_ARGV=",
                                         "PMIX_",
                                         "PMI_",
                                         "MPI_LOCALNRANKS=",
                                         "MPI_LOCALRANKID="};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    if (strncmp(s, prefixes[i], strlen(prefixes[i])) == 0)
      return 1;
  return 0;
}

/* The environment of a command: this process's without the launcher's
 * variables (launcher_var), with env[0..nenv) ("VAR=value") set. Returns
 * a malloc'd array (the strings borrowed). */
static char **command_env(char **env, uint32_t nenv) {
  extern char **environ;
  size_t all = 0;
  while (environ[all])
    all++;
  char **e = malloc((all + nenv + 1) * sizeof *e);
  if (!e)
    return NULL;
  size_t n = 0;
  for (size_t i = 0; i < all; i++)
    if (!launcher_var(environ[i]))
      e[n++] = environ[i];
  for (uint32_t k = 0; k < nenv; k++) {
    size_t name = strcspn(env[k], "=");
    size_t i = 0;
    while (i < n && !(strncmp(e[i], env[k], name) == 0 && e[i][name] == '='))
      i++;
    e[i] = env[k];
    if (i == n)
      n++;
  }
  e[n] = NULL;
  return e;
}

/* A command made of plain words only (no quoting, expansion, redirection,
 * assignment or shell keyword, and a first word that is no shell builtin)
 * means the same with or without the shell: it runs without one, one
 * process fewer per command (dash forks once more for an external
 * command). Its words go to argv (at most max - 1), the rest of the
 * command's bytes are written over with NULs. Returns the word count, 0
 * when the shell is needed. */
static int plain_words(char *cmd, char **argv, int max) {
  static const char *const shell_words[] = {
      ".",      ":",       "alias",   "bg",       "break", "case",
      "cd",     "chdir",   "command", "continue", "do",    "done",
      "echo",   "elif",    "else",    "esac",     "eval",  "exec",
      "exit",   "export",  "false",   "fc",       "fg",    "fi",
      "for",    "getopts", "hash",    "if",       "in",    "jobs",
      "kill",   "local",   "printf",  "pwd",      "read",  "readonly",
      "return", "set",     "shift",   "test",     "then",  "times",
      "trap",   "true",    "type",    "ulimit",   "umask", "unalias",
      "unset",  "until",   "wait",    "while"};
  int n = 0;
  for (char *p = cmd; *p;) {
    if (*p == ' ' || *p == '\t') {
      *p++ = '\0';
      continue;
    }
    if (n == max - 1)
      return 0;
    argv[n++] = p;
    for (; *p && *p != ' ' && *p != '\t'; p++) {
      unsigned char c = (unsigned char)*p;
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || strchr("_-./,:+@%^=", c)) ||
          (n == 1 && c == '='))
        return 0;
    }
  }
  if (n == 0)
    return 0;
  argv[n] = NULL;
  for (size_t i = 0; i < sizeof shell_words / sizeof shell_words[0]; i++)
    if (strcmp(argv[0], shell_words[i]) == 0)
      return 0;
  return n;
}

/* The value of name in the environment e, or NULL. */
static const char *env_get(char **e, const char *name) {
  size_t n = strlen(name);
  for (; *e; e++)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
      return *e + n + 1;
  return NULL;
}

/* The program a plain command's first word names, found as the shell finds
 * it on the command's PATH, into buf; 0 when it is not found as plainly
 * (no PATH, a relative PATH entry): the shell then runs it and says what
 * it says. */
static int find_program(const char *word, char **envp, char *buf, size_t cap) {
  if (strchr(word, '/'))
    return snprintf(buf, cap, "%s", word) < (int)cap;
  const char *path = env_get(envp, "PATH");
  if (!path)
    return 0;
  for (const char *d = path;; d++) {
    size_t len = strcspn(d, ":");
    if (len == 0 || d[0] != '/')
      return 0;
    if (snprintf(buf, cap, "%.*s/%s", (int)len, d, word) < (int)cap) {
      struct stat st;
      if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
        return 1;
    }
    d += len;
    if (!*d)
      return 0;
  }
}

/* The PWD the shell would export: the environment's when it names the
 * command's directory (wd, or this process's; a path through a symbolic
 * link, say), else the directory's physical path. Written to buf ("PWD=..."); 0
 * when it cannot be told. */
static int shell_pwd(char **envp, const char *wd, char *buf, size_t cap) {
  const char *dir = wd && *wd ? wd : ".";
  struct stat a, b;
  const char *pwd = env_get(envp, "PWD");
  if (stat(dir, &a) != 0)
    return 0;
  if (pwd && pwd[0] == '/' && stat(pwd, &b) == 0 && a.st_dev == b.st_dev &&
      a.st_ino == b.st_ino)
    return snprintf(buf, cap, "PWD=%s", pwd) < (int)cap;
  char *real = realpath(dir, NULL);
  if (!real)
    return 0;
  int ok = snprintf(buf, cap, "PWD=%s", real) < (int)cap;
  free(real);
  return ok;
}

/* Runs cmd once under /bin/sh -c with a time limit (0: none): stdout and
 * stderr captured, stdin /dev/null, in a process group of its own (a time
 * limit stops everything it started) that the guard (guard_tell) knows.
 * Spawned with posix_spawn (vfork): a fork of a task process, a copy of
 * an MPI rank, costs far more. Returns 0, or -1 when it could not start
 * (errno). */
static int run_once(const char *cmd, const char *wd, char **env, uint32_t nenv,
                    double timeout, run_out *r) {
  int po[2], pe[2];
  if (pipe2(po, O_CLOEXEC) != 0)
    return -1;
  if (pipe2(pe, O_CLOEXEC) != 0) {
    close(po[0]);
    close(po[1]);
    return -1;
  }
  char **envp = command_env(env, nenv);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, po[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
  if (wd && *wd)
    posix_spawn_file_actions_addchdir_np(&fa, wd);
  posix_spawnattr_init(&at);
  sigset_t dfl, none;
  sigemptyset(&none);
  sigemptyset(&dfl);
  /* SIGUSR1 and SIGUSR2 stay ignored, as in the task process: srun passes
   * a SLURM warning to every process of the step, and the warning is for
   * mpx-run, not for the commands. */
  static const int sigs[] = {SIGPIPE, SIGINT,  SIGTERM,
                             SIGHUP,  SIGQUIT, SIGALRM};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaddset(&dfl, sigs[i]); /* task processes ignore some of them */
  posix_spawnattr_setsigdefault(&at, &dfl);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setpgroup(&at, 0);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                    POSIX_SPAWN_SETSIGMASK);
  char *argv[] = {"sh", "-c", (char *)cmd, NULL};
  r->start = now_epoch();
  double t0 = now_mono();
  pid_t pid = -1;
  int src = ENOMEM;
  if (envp) {
    /* A plain command runs without the shell, with the PWD the shell
     * would have exported; anything unusual (not found, cannot start)
     * goes to the shell, which says what a shell says. */
    char *words = strdup(cmd), *wargv[256], prog[PATH_MAX], pwd[PATH_MAX + 8];
    src = -1;
    if (words && plain_words(words, wargv, 256) &&
        find_program(wargv[0], envp, prog, sizeof prog) &&
        shell_pwd(envp, wd, pwd, sizeof pwd)) {
      size_t k = 0;
      while (envp[k] && strncmp(envp[k], "PWD=", 4) != 0)
        k++;
      if (envp[k]) {
        char *was = envp[k];
        envp[k] = pwd;
        src = posix_spawn(&pid, prog, &fa, &at, wargv, envp);
        envp[k] = was;
      } else {
        char **e2 = realloc(envp, (k + 2) * sizeof *envp);
        if (e2) {
          envp = e2;
          envp[k] = pwd;
          envp[k + 1] = NULL;
          src = posix_spawn(&pid, prog, &fa, &at, wargv, envp);
          envp[k] = NULL;
        }
      }
    }
    free(words);
    if (src != 0)
      src = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, envp);
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  free(envp);
  close(po[1]);
  close(pe[1]);
  if (src != 0) {
    close(po[0]);
    close(pe[0]);
    if (wd && *wd && access(wd, X_OK) != 0) {
      /* As a shell that cannot enter its directory: status 127. */
      char m[600];
      snprintf(m, sizeof m, "mpx-run: cannot enter '%s': %s\n", wd,
               strerror(errno));
      sb_str(&r->err, m);
      r->exitval = 127;
      r->runtime = now_mono() - t0;
      return 0;
    }
    errno = src;
    return -1;
  }
  guard_tell(pid);
  int open_o = 1, open_e = 1, status = 0, reaped = 0, termed = 0;
  double kill_at = 0;
  while (open_o || open_e || !reaped) {
    double wait_s = 0.1;
    if (timeout > 0) {
      double left = (termed ? kill_at : t0 + timeout) - now_mono();
      if (left <= 0) {
        kill(-pid, termed ? SIGKILL : SIGTERM);
        if (!termed) {
          termed = 1;
          kill_at = now_mono() + 1.0;
        } else {
          kill_at = now_mono() + 3600;
        }
        continue;
      }
      if (left < wait_s)
        wait_s = left;
    }
    if (!open_o && !open_e) {
      /* Its output is closed: it is ending (or left children that closed
       * theirs). Without a time limit wait for it; with one, look often. */
      if (timeout <= 0 && waitpid(pid, &status, 0) == pid)
        reaped = 1;
      else if (waitpid(pid, &status, WNOHANG) == pid)
        reaped = 1;
      else
        usleep(200);
      continue;
    }
    struct pollfd pf[2];
    int n = 0;
    if (open_o)
      pf[n++] = (struct pollfd){po[0], POLLIN, 0};
    if (open_e)
      pf[n++] = (struct pollfd){pe[0], POLLIN, 0};
    poll(pf, (nfds_t)n, (int)(wait_s * 1000) + 1);
    for (int k = 0; k < n; k++) {
      if (!pf[k].revents)
        continue;
      if (pf[k].fd == po[0] && drain(po[0], &r->out))
        open_o = 0;
      else if (pf[k].fd == pe[0] && drain(pe[0], &r->err))
        open_e = 0;
    }
    if (!reaped && waitpid(pid, &status, WNOHANG) == pid)
      reaped = 1;
  }
  close(po[0]);
  close(pe[0]);
  guard_tell(0);
  r->runtime = now_mono() - t0;
  r->exitval = WIFEXITED(status) ? WEXITSTATUS(status) : 0; /* as $? >> 8 */
  r->sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  r->timed_out = termed;
  if (termed && !r->sig)
    r->sig = SIGTERM; /* stopped by --timeout, though it exited itself */
  if (termed && r->exitval == 0)
    r->exitval = -1; /* as GNU parallel records a job it timed out */
  return 0;
}

/* Adds an output as a string array; bytes a C string cannot hold (NUL) are
 * kept by %-escaping the text (%25 for %, %00 for NUL) and setting bit in
 * *escaped. */
static int put_output(mpx_task_ctx *ctx, const char *name, const sbuf *b,
                      int bit, int8_t *escaped) {
  const char *s = b->p ? b->p : "";
  size_t n = b->n;
  if (memchr(s, '\0', n) == NULL) {
    const char *one[1] = {s};
    return mpx_task_strings(ctx, name, one, 1);
  }
  sbuf e = {0};
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\0')
      sb_put(&e, "%00", 3);
    else if (s[i] == '%')
      sb_put(&e, "%25", 3);
    else
      sb_put(&e, s + i, 1);
  }
  if (e.oom)
    return MPX_ENOMEM;
  *escaped |= (int8_t)bit;
  const char *one[1] = {e.p ? e.p : ""};
  int rc = mpx_task_strings(ctx, name, one, 1);
  free(e.p);
  return rc;
}

/* A stop signal this task process received from outside (SIGTERM or
 * SIGHUP to every process of the job): told apart from a command that
 * signals itself. */
static volatile sig_atomic_t outside_sig;

static void on_outside_signal(int sig) {
  outside_sig = sig;
}

static int command_task(mpx_task_ctx *ctx, const void *arg, size_t len) {
  static int watching;
  if (!watching) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_outside_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    watching = 1;
  }
  cmd_arg h;
  if (len < sizeof h)
    return mpx_task_fail(ctx, "malformed command (%zu bytes)", len);
  memcpy(&h, arg, sizeof h);
  const char *p = (const char *)arg + sizeof h, *end = (const char *)arg + len;
  const char *strs[2 + 4096];
  uint32_t want = 2 + h.nenv;
  if (h.nenv > 4096)
    return mpx_task_fail(ctx, "malformed command (%u variables)", h.nenv);
  for (uint32_t k = 0; k < want; k++) {
    const char *z = memchr(p, '\0', (size_t)(end - p));
    if (!z)
      return mpx_task_fail(ctx, "malformed command");
    strs[k] = p;
    p = z + 1;
  }
  const char *wd = strs[0], *cmd = strs[want - 1];
  char *env[4096 + 1];
  for (uint32_t k = 0; k < h.nenv; k++)
    env[k] = (char *)strs[1 + k];
  char slot[48];
  snprintf(slot, sizeof slot, "MPX_RUN_SLOT=%d", mpx_task_rank(ctx));
  env[h.nenv] = slot;
  run_out r;
  int tries = 0;
  for (;;) {
    memset(&r, 0, sizeof r);
    tries++;
    if (run_once(cmd, wd, env, h.nenv + 1, h.timeout, &r) != 0)
      return mpx_task_fail(ctx, "cannot start /bin/sh: %s", strerror(errno));
    if (!r.timed_out && outside_sig && r.sig == outside_sig) {
      /* Stopped from outside: scancel signals every process of the job,
       * this one included. It goes the same way, so that the command is
       * not recorded as done (nor tried again) and a resume runs it
       * again. (A command that signals itself is recorded as GNU
       * parallel records it: this process got no signal then.) */
      free(r.out.p);
      free(r.err.p);
      signal(r.sig, SIG_DFL);
      raise(r.sig);
    }
    if ((r.exitval == 0 && r.sig == 0) || tries > (int)h.retries)
      break;
    free(r.out.p);
    free(r.err.p);
  }
  if (r.out.oom || r.err.oom) {
    free(r.out.p);
    free(r.err.p);
    return mpx_task_fail(ctx, "out of memory for the command's output");
  }
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  int rc = 0;
  int64_t *seq = mpx_task_array(ctx, "seq", MPX_INT64, 1, 1);
  int32_t *ex = mpx_task_array(ctx, "exitval", MPX_INT32, 1, 1);
  int32_t *sg = mpx_task_array(ctx, "signal", MPX_INT32, 1, 1);
  int32_t *tr = mpx_task_array(ctx, "tries", MPX_INT32, 1, 1);
  double *st = mpx_task_array(ctx, "starttime", MPX_FLOAT64, 1, 1);
  double *rt = mpx_task_array(ctx, "runtime", MPX_FLOAT64, 1, 1);
  int8_t *esc = mpx_task_array(ctx, "escaped", MPX_INT8, 1, 1);
  if (!seq || !ex || !sg || !tr || !st || !rt || !esc) {
    rc = mpx_task_fail(ctx, "cannot build the result: %s", mpx_last_error());
  } else {
    *seq = (int64_t)h.seq;
    *ex = r.exitval;
    *sg = r.sig;
    *tr = tries;
    *st = r.start;
    *rt = r.runtime;
    *esc = 0;
    const char *hs[1] = {host}, *cs[1] = {cmd};
    if ((rc = mpx_task_strings(ctx, "host", hs, 1)) == 0 &&
        (rc = mpx_task_strings(ctx, "command", cs, 1)) == 0 &&
        (rc = put_output(ctx, "stdout", &r.out, 1, esc)) == 0)
      rc = put_output(ctx, "stderr", &r.err, 2, esc);
    if (rc)
      rc = mpx_task_fail(ctx, "cannot build the result: %s", mpx_last_error());
  }
  free(r.out.p);
  free(r.err.p);
  return rc;
}

/* ---- the root -------------------------------------------------------------
 */

typedef struct run {
  opts *o;
  strv cmds;       /* every command, seq = index + 1 */
  strv args;       /* their arguments (empty: the commands are the lines) */
  int results_err; /* a --results file could not be written */
  double last_bar; /* when the progress line was last printed */
  uint64_t *todo;  /* indices to run (a joblog resume skips some) */
  uint64_t ntodo;
  char *cwd;
  unsigned char *buf; /* the producer's argument under construction */
  size_t buflen, bufcap;
  FILE *joblog;
  uint64_t failed, done;
  int halted, halt_rc;
  mpx_executor *ex;
  mpx_map *map; /* the map of a run without -o (for --halt) */
  double t0;
  double end_time; /* the SLURM job's end (epoch), for --task-time, or 0 */
} run;

/* A producer over the commands to run: input i is command todo[i] with
 * its settings (cmd_arg and strings). */
static int produce(void *a, uint64_t i, const void **data, size_t *len) {
  run *r = a;
  if (i >= r->ntodo)
    return 0;
  if (r->end_time > 0 && now_epoch() + r->o->task_time > r->end_time) {
    /* This command might not finish before the allocation ends: start
     * nothing more, as on a SLURM warning signal. */
    if (!stop_sig) {
      stop_sig = SIGALRM;
      mpx_job_interrupt(SIGALRM);
    }
    return MPX_EINTR;
  }
  uint64_t k = r->todo[i];
  const char *wd = r->o->wd ? r->o->wd : r->cwd;
  cmd_arg h = {k + 1, r->o->timeout, (uint32_t)r->o->retries,
               (uint32_t)r->o->nenv};
  sbuf b = {0};
  sb_put(&b, (const char *)&h, sizeof h);
  sb_put(&b, wd, strlen(wd) + 1);
  for (int e = 0; e < r->o->nenv; e++) {
    const char *v = getenv(r->o->env[e]);
    sb_str(&b, r->o->env[e]);
    sb_put(&b, "=", 1);
    sb_put(&b, v ? v : "", strlen(v ? v : "") + 1);
  }
  sb_put(&b, r->cmds.v[k], strlen(r->cmds.v[k]) + 1);
  if (b.oom) {
    free(b.p);
    return MPX_ENOMEM;
  }
  free(r->buf);
  r->buf = (unsigned char *)b.p;
  *data = b.p;
  *len = b.n;
  return 1;
}

/* Writes s to f with tabs and newlines as GNU parallel's joblog keeps a
 * command on one line. */
static void joblog_line(run *r, uint64_t seq, const char *host, double start,
                        double runtime, uint64_t recv, int exitval, int sig,
                        const char *cmd) {
  if (!r->joblog)
    return;
  fprintf(r->joblog, "%llu\t%s\t%.3f\t%10.3f\t0\t%llu\t%d\t%d\t",
          (unsigned long long)seq, host, start, runtime,
          (unsigned long long)recv, exitval, sig);
  for (const char *p = cmd; *p; p++)
    fputc(*p == '\n' || *p == '\t' ? ' ' : *p, r->joblog);
  fputc('\n', r->joblog);
  fflush(r->joblog);
}

/* The length in bytes of an output as the command wrote it (escaped:
 * each %00 and %25 stands for one byte). */
static size_t output_len(const char *s, int escaped) {
  size_t n = 0;
  for (; *s; s++, n++)
    if (escaped && s[0] == '%' &&
        ((s[1] == '0' && s[2] == '0') || (s[1] == '2' && s[2] == '5')))
      s += 2;
  return n;
}

/* GNU parallel's exit status: the failed commands, 101 for more than 100. */
static int exit_status(const run *r) {
  return r->failed > 100 ? 101 : (int)r->failed;
}

/* Writes len bytes to path (replacing it). Returns 0 or -1 (errno). */
static int write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return -1;
  const char *p = data;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int e = errno;
      close(fd);
      errno = e ? e : EIO;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return close(fd);
}

/* mkdir -p of path. Returns 0 or -1 (errno). */
static int make_dirs(char *path) {
  for (char *p = path + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      int rc = mkdir(path, 0755);
      int e = errno;
      *p = c;
      if (rc != 0 && e != EEXIST)
        return -1;
      if (!c)
        return 0;
    }
  }
}

/* An output as the bytes the command wrote (escaped NULs restored). */
static void unescape_output(sbuf *b, const char *s, int escaped) {
  if (!escaped) {
    sb_str(b, s);
    return;
  }
  for (; *s; s++) {
    if (s[0] == '%' && s[1] == '0' && s[2] == '0') {
      sb_put(b, "", 1);
      s += 2;
    } else if (s[0] == '%' && s[1] == '2' && s[2] == '5') {
      sb_put(b, "%", 1);
      s += 2;
    } else {
      sb_put(b, s, 1);
    }
  }
}

/* Prints an output as the bytes the command wrote. */
static void print_output(FILE *f, const char *s, int escaped) {
  if (!escaped) {
    fputs(s, f);
    return;
  }
  sbuf b = {0};
  unescape_output(&b, s, escaped);
  if (b.p)
    fwrite(b.p, 1, b.n, f);
  free(b.p);
}

/* --results DIR: DIR/1/<argument>/{seq,stdout,stderr}, the argument with
 * '\\' doubled, '/' written as '\\_', a tab as '\\t' and a newline as
 * '\\n', as GNU parallel names them. */
static void write_results(run *r, uint64_t k, const char *out, int esc_out,
                          const char *err, int esc_err) {
  const char *arg = r->args.n ? r->args.v[k] : r->cmds.v[k];
  sbuf path = {0}, data = {0};
  sb_str(&path, r->o->results);
  sb_str(&path, "/1/");
  for (const char *c = arg; *c; c++) {
    if (*c == '\\')
      sb_str(&path, "\\\\");
    else if (*c == '/')
      sb_str(&path, "\\_");
    else if (*c == '\t')
      sb_str(&path, "\\t");
    else if (*c == '\n')
      sb_str(&path, "\\n");
    else
      sb_put(&path, c, 1);
  }
  char seq[32];
  snprintf(seq, sizeof seq, "%llu", (unsigned long long)(k + 1));
  size_t base = path.n;
  int rc = path.oom ? -1 : make_dirs(path.p);
  const char *what = "seq";
  if (rc == 0) {
    sb_str(&path, "/seq");
    rc = path.oom ? -1 : write_file(path.p, seq, strlen(seq));
  }
  for (int f = 0; rc == 0 && f < 2; f++) {
    what = f ? "stderr" : "stdout";
    path.n = base;
    sb_str(&path, f ? "/stderr" : "/stdout");
    data.n = 0;
    unescape_output(&data, f ? err : out, f ? esc_err : esc_out);
    rc = path.oom || data.oom
             ? -1
             : write_file(path.p, data.p ? data.p : "", data.n);
  }
  if (rc != 0) {
    if (!r->results_err)
      fprintf(stderr,
              "mpx-run: cannot write %s of command %s under '%s': "
              "%s\n",
              what, seq, r->o->results, strerror(errno ? errno : ENOMEM));
    r->results_err = 1;
  }
  free(path.p);
  free(data.p);
}

/* --bar without -o: a progress line, as a job prints its own. */
static void show_progress(run *r, int final) {
  if (!r->o->bar || r->o->out)
    return;
  double now = now_mono();
  int tty = isatty(2);
  if (!final && now - r->last_bar < (tty ? 0.2 : 10))
    return;
  r->last_bar = now;
  double el = now - r->t0, rate = el > 0 ? r->done / el : 0;
  double eta = rate > 0 ? (r->ntodo - r->done) / rate : 0;
  fprintf(stderr,
          "%smpx-run: %llu/%llu commands (%.1f%%), %.1f/s, %llu failed, "
          "%.1fs elapsed, ",
          tty ? "\r" : "", (unsigned long long)r->done,
          (unsigned long long)r->ntodo, 100.0 * r->done / r->ntodo, rate,
          (unsigned long long)r->failed, el);
  if (final)
    fprintf(stderr, "done\n");
  else
    fprintf(stderr, "eta %.0fs%s", eta, tty ? " " : "\n");
}

/* One command's outcome, in input order: print, log, count, halt. */
static void on_result(void *a, const mpx_map_item *it) {
  run *r = a;
  uint64_t k = r->todo[it->index];
  const char *cmd = r->cmds.v[k];
  int status = 0; /* the command's, as the shell's $? (255: not run) */
  if (it->status == MPX_EINTR) {
    /* Stopped from outside before it finished: neither logged nor
     * counted; a resume runs it again. */
    fprintf(stderr, "mpx-run: command %llu stopped from outside: %s\n",
            (unsigned long long)(k + 1), it->error ? it->error : "?");
    return;
  }
  r->done++;
  if (it->status != 0) {
    /* The command's task process died or the command could not start:
     * counted as failed, logged with exit value -1. */
    r->failed++;
    fprintf(stderr, "mpx-run: command %llu (%s): %s\n",
            (unsigned long long)(k + 1), cmd, it->error ? it->error : "?");
    joblog_line(r, k + 1, "?", now_epoch(), 0, 0, -1, 0, cmd);
    status = 255;
  } else {
    mpx_array arr[16];
    size_t n = 0;
    const char *out = "", *err = "", *host = "?";
    int exitval = -1, sig = 0, esc = 0;
    double start = 0, runtime = 0;
    if (mpx_arrays_parse(it->data, it->len, arr, 16, &n) == 0) {
      for (size_t i = 0; i < n; i++) {
        const mpx_array *x = &arr[i];
        if (!strcmp(x->name, "stdout"))
          out = x->data;
        else if (!strcmp(x->name, "stderr"))
          err = x->data;
        else if (!strcmp(x->name, "host"))
          host = x->data;
        else if (!strcmp(x->name, "exitval"))
          exitval = *(const int32_t *)x->data;
        else if (!strcmp(x->name, "signal"))
          sig = *(const int32_t *)x->data;
        else if (!strcmp(x->name, "escaped"))
          esc = *(const int8_t *)x->data;
        else if (!strcmp(x->name, "starttime"))
          start = *(const double *)x->data;
        else if (!strcmp(x->name, "runtime"))
          runtime = *(const double *)x->data;
      }
    }
    if (!r->o->quiet) {
      print_output(stdout, out, esc & 1);
      fflush(stdout);
      print_output(stderr, err, esc & 2);
    }
    if (r->o->results)
      write_results(r, k, out, esc & 1, err, esc & 2);
    if (exitval != 0 || sig != 0)
      r->failed++;
    status = exitval ? exitval & 255 : sig ? 128 + sig : 0;
    joblog_line(r, k + 1, host, start, runtime, output_len(out, esc & 1),
                exitval, sig, cmd);
  }
  show_progress(r, 0);
  /* --halt: enough failures stop the run. */
  opts *o = r->o;
  if (!r->halted && (o->halt_now || o->halt_soon) &&
      ((o->halt_count > 0 && (long)r->failed >= o->halt_count) ||
       (o->halt_pct > 0 && r->failed * 100.0 >= o->halt_pct * r->ntodo))) {
    /* GNU parallel's exit status after a halt: fail=1 the failed
     * command's (128 + signal when a signal stopped it), fail=N the
     * failures (101 for more than 100), fail=P% their percentage of the
     * commands, rounded up (but the failed command's when P% of the
     * commands is exactly 1, as GNU parallel has it). */
    r->halted = 1;
    if (o->halt_count == 1 ||
        (o->halt_pct > 0 && o->halt_pct * (double)r->ntodo / 100 == 1))
      r->halt_rc = status;
    else if (o->halt_pct > 0)
      r->halt_rc = (int)((r->failed * 100 + r->ntodo - 1) / r->ntodo);
    else
      r->halt_rc = exit_status(r);
    fprintf(stderr,
            "mpx-run: halting after %llu failed command%s (--halt "
            "%s)\n",
            (unsigned long long)r->failed, r->failed == 1 ? "" : "s",
            o->halt_now ? "now" : "soon");
    if (r->map)
      mpx_map_cancel(r->map);
    else
      mpx_job_interrupt(SIGTERM);
    if (o->halt_now)
      mpx_executor_terminate(r->ex); /* running commands are killed */
  }
}

/* Reads a joblog's finished (and failed) sequence numbers into done[]
 * (1: finished, 2: failed) for n commands. Returns 0, or -1 (errno) when
 * it cannot be read; a missing joblog is empty. */
static int read_joblog(const char *path, unsigned char *done, uint64_t n) {
  FILE *f = fopen(path, "r");
  if (!f)
    return errno == ENOENT ? 0 : -1;
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) >= 0) {
    unsigned long long seq;
    char host[256];
    double st, rt;
    unsigned long long snd, rcv;
    int ev, sg;
    if (sscanf(line, "%llu\t%255s\t%lf\t%lf\t%llu\t%llu\t%d\t%d", &seq, host,
               &st, &rt, &snd, &rcv, &ev, &sg) != 8)
      continue; /* the header, or a torn line */
    if (seq >= 1 && seq <= n)
      done[seq - 1] = ev == 0 && sg == 0 ? 1 : 2;
  }
  free(line);
  fclose(f);
  return 0;
}

/* A digest of the commands (FNV-1a 64), the -o output's identity. */
static void identity(const run *r, char *buf, size_t cap) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < r->cmds.n; i++)
    for (const unsigned char *p = (const unsigned char *)r->cmds.v[i];; p++) {
      h = (h ^ *p) * 1099511628211ull;
      if (!*p)
        break;
    }
  snprintf(buf, cap, "mpx-run commands=%zu digest=%016llx", r->cmds.n,
           (unsigned long long)h);
}

/* The end time of the SLURM job this runs in (epoch seconds), from
 * squeue, or 0 with errno-free message in why. */
static double slurm_end_time(char *why, size_t cap) {
  const char *id = getenv("SLURM_JOB_ID");
  if (!id || !*id || strspn(id, "0123456789_") != strlen(id)) {
    snprintf(why, cap, "SLURM_JOB_ID is not set: not inside a SLURM job");
    return 0;
  }
  char line[128] = "";
  /* MPX_RUN_SQUEUE: a stand-in for the tests (mpirun puts its own
   * directory first on the ranks' PATH, so PATH cannot provide one). */
  const char *sq = getenv("MPX_RUN_SQUEUE");
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "%s -h -j %s -o %%e 2>&1",
           sq && *sq && strlen(sq) < 1000 ? sq : "squeue", id);
  FILE *p = popen(cmd, "r");
  if (!p || !fgets(line, sizeof line, p)) {
    snprintf(why, cap, "'%.200s' printed nothing", cmd);
    if (p)
      pclose(p);
    return 0;
  }
  pclose(p);
  line[strcspn(line, "\n")] = '\0';
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *rest = strptime(line, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest || *rest) {
    snprintf(why, cap, "'%.100s' printed '%.100s', not an end time", cmd, line);
    return 0;
  }
  tm.tm_isdst = -1;
  time_t t = mktime(&tm); /* squeue prints local time */
  if (t == (time_t)-1) {
    snprintf(why, cap, "cannot read the end time '%s'", line);
    return 0;
  }
  return (double)t;
}

/* Builds the command list. Returns 0 or 255 (said why). */
static int build_commands(run *r) {
  opts *o = r->o;
  if (!o->tmpl && !o->have_args && !o->args_file) {
    if (read_lines(o->commands_file, &r->cmds) != 0) {
      fprintf(stderr, "mpx-run: cannot read the commands from %s: %s\n",
              o->commands_file ? o->commands_file : "standard input",
              strerror(errno));
      return EXIT_ERROR;
    }
    return 0;
  }
  strv args = {0};
  if (o->args_file) {
    if (read_lines(o->args_file, &args) != 0) {
      fprintf(stderr, "mpx-run: cannot read the arguments from '%s': %s\n",
              o->args_file, strerror(errno));
      strv_free(&args);
      return EXIT_ERROR;
    }
  } else {
    for (int i = 0; i < o->nargs; i++)
      if (strv_add(&args, strdup(o->args[i])) != 0) {
        strv_free(&args);
        return EXIT_ERROR;
      }
  }
  for (size_t i = 0; i < args.n; i++) {
    char *c = o->tmpl ? expand(o->tmpl, o->ntmpl, args.v[i], i + 1)
                      : strdup(args.v[i]);
    if (strv_add(&r->cmds, c) != 0) {
      fprintf(stderr, "mpx-run: out of memory building the commands\n");
      strv_free(&args);
      return EXIT_ERROR;
    }
  }
  r->args = args; /* --results names each command's directory after it */
  return 0;
}

/* Opens the joblog: a fresh one (header), or, resuming, the one there
 * (appending). Returns 0 or 255. */
static int open_joblog(run *r) {
  if (!r->o->joblog)
    return 0;
  struct stat sb;
  int exists = stat(r->o->joblog, &sb) == 0;
  r->joblog = fopen(r->o->joblog, r->o->resume ? "a" : "w");
  if (!r->joblog) {
    fprintf(stderr, "mpx-run: cannot write the joblog '%s': %s\n", r->o->joblog,
            strerror(errno));
    return EXIT_ERROR;
  }
  if (!r->o->resume || !exists || sb.st_size == 0)
    fputs("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\t"
          "Command\n",
          r->joblog);
  fflush(r->joblog);
  return 0;
}

/* Runs the commands on the root. Returns the exit status. */
static int run_root(mpx_executor *ex, opts *o) {
  run r = {0};
  r.o = o;
  r.ex = ex;
  r.cwd = getcwd(NULL, 0);
  int status = build_commands(&r);
  if (status == 0 && r.cmds.n == 0) {
    fprintf(stderr, "mpx-run: no commands to run (an empty %s)\n",
            o->tmpl ? "argument list" : "command list");
    status = EXIT_ERROR;
  }
  if (status == 0 && o->wd) {
    struct stat sb;
    if (stat(o->wd, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
      fprintf(stderr, "mpx-run: --wd '%s' is not a directory\n", o->wd);
      status = EXIT_ERROR;
    }
  }
  if (status == 0 && !(r.todo = calloc(r.cmds.n, sizeof *r.todo)))
    status = EXIT_ERROR;
  if (status == 0) {
    unsigned char *done = calloc(r.cmds.n, 1);
    if (!done) {
      status = EXIT_ERROR;
    } else if (o->resume && !o->out && o->joblog &&
               read_joblog(o->joblog, done, r.cmds.n) != 0) {
      fprintf(stderr, "mpx-run: cannot read the joblog '%s': %s\n", o->joblog,
              strerror(errno));
      status = EXIT_ERROR;
    }
    for (uint64_t k = 0; status == 0 && k < r.cmds.n; k++)
      if (!done[k] || (done[k] == 2 && o->resume_failed))
        r.todo[r.ntodo++] = k;
    free(done);
  }
  if (status == 0 && o->task_time > 0) {
    char why[256];
    if ((r.end_time = slurm_end_time(why, sizeof why)) <= 0) {
      fprintf(stderr, "mpx-run: --task-time needs the job's end time: %s\n",
              why);
      status = EXIT_ERROR;
    }
  }
  if (status == 0 && o->results) {
    size_t l = strlen(o->results) + 4;
    char *d = malloc(l);
    if (d)
      snprintf(d, l, "%s/1", o->results);
    if (!d || make_dirs(d) != 0) {
      fprintf(stderr,
              "mpx-run: cannot create the --results directory "
              "'%s/1': %s\n",
              o->results, strerror(d ? errno : ENOMEM));
      status = EXIT_ERROR;
    }
    free(d);
  }
  if (status == 0)
    status = open_joblog(&r);
  if (status != 0)
    goto out;
  r.t0 = now_mono();
  if (r.ntodo == 0) {
    fprintf(stderr, "mpx-run: the joblog holds every command; nothing to "
                    "do\n");
    goto out;
  }
  if (o->out) {
    mpx_map_options mo;
    mpx_map_options_init(&mo);
    if (o->task_time > 0) /* produced as a worker frees, so the check on
                             the end time is made as the command starts */
      mo.window = (uint64_t)mpx_executor_workers(ex);
    mpx_job_options jo;
    mpx_job_options_init(&jo);
    jo.mode = o->resume      ? MPX_JOB_RESUME
              : o->overwrite ? MPX_JOB_OVERWRITE
                             : MPX_JOB_CREATE;
    jo.progress = o->bar;
    jo.label = "mpx-run";
    char id[128];
    identity(&r, id, sizeof id);
    jo.identity = o->job_id ? o->job_id : id;
    jo.on_result = on_result;
    jo.on_result_arg = &r;
    jo.grace = o->grace;
    /* A command's result is committed (and synced) as soon as it arrives:
     * after a kill, what finished runs again only if it was in flight. */
    jo.commit_interval = o->commit;
    /* HDF5 rewrites each dataset's last chunk at every commit: with rows
     * of a few bytes, 1024-row chunks (8 KiB of int64) instead of the
     * default 1 MiB make a per-result commit cheap (4,000 commands with
     * -o: 9.66 s against 23.69 s, docs/mpx-run.md). */
    jo.chunk_rows = 1024;
    mpx_job_report rep;
    int rc =
        mpx_job_run(ex, TASK, produce, &r, r.ntodo, &mo, o->out, &jo, &rep);
    for (const char *n = rep.notes; *n;) {
      size_t len = strcspn(n, "\n");
      fprintf(stderr, "mpx-run: %.*s\n", (int)len, n);
      n += len + (n[len] == '\n');
    }
    if (rc == MPX_EINTR && r.halted) {
      status = r.halted ? r.halt_rc : exit_status(&r);
    } else if (rc == MPX_EINTR && stop_sig) {
      fprintf(stderr, "mpx-run: %s\n", mpx_last_error());
      status = EXIT_STOPPED;
    } else if (rc) {
      fprintf(stderr, "mpx-run: %s: %s\n", mpx_err_name(rc), mpx_last_error());
      status = EXIT_ERROR;
    } else {
      status = r.halted ? r.halt_rc : exit_status(&r);
    }
  } else {
    mpx_map_options mo;
    mpx_map_options_init(&mo);
    if (o->task_time > 0) /* produced as a worker frees, so the check on
                             the end time is made as the command starts */
      mo.window = (uint64_t)mpx_executor_workers(ex);
    int rc =
        mpx_map_create_producer(ex, TASK, produce, &r, r.ntodo, &mo, &r.map);
    mpx_map_item it;
    double give_up = -1; /* after a stop: when running commands are lost */
    while (rc == 0) {
      if (stop_sig && give_up < 0) {
        give_up = now_mono() + o->grace;
        mpx_map_cancel(r.map); /* nothing more is dispatched */
      }
      if (give_up >= 0 && now_mono() >= give_up)
        break;
      rc = mpx_map_next(r.map, 0.2, &it);
      if (rc == MPX_ETIMEDOUT) {
        rc = 0;
        show_progress(&r, 0);
        continue;
      }
      if (rc != 0)
        break;
      if (it.status == MPX_ECANCELED && (r.halted || stop_sig))
        continue; /* not run: --halt or a stop ended the run first */
      on_result(&r, &it);
    }
    mpx_map_destroy(&r.map);
    show_progress(&r, 1);
    if (stop_sig && !r.halted) {
      fprintf(stderr,
              "mpx-run: stopped by signal %d: %llu of %llu commands "
              "finished and logged; run again with --resume to finish\n",
              (int)stop_sig, (unsigned long long)r.done,
              (unsigned long long)r.ntodo);
      status = EXIT_STOPPED;
    } else if (rc != MPX_EOF && !(r.halted && rc == MPX_ESHUTDOWN)) {
      fprintf(stderr, "mpx-run: %s: %s\n", mpx_err_name(rc), mpx_last_error());
      status = EXIT_ERROR;
    } else {
      status = r.halted ? r.halt_rc : exit_status(&r);
    }
  }
out:
  if (r.results_err && status != EXIT_STOPPED)
    status = EXIT_ERROR; /* said once, when it happened */
  if (r.joblog && fclose(r.joblog) != 0 && status == 0) {
    fprintf(stderr, "mpx-run: cannot write the joblog '%s': %s\n", o->joblog,
            strerror(errno));
    status = EXIT_ERROR;
  }
  free(r.todo);
  free(r.buf);
  free(r.cwd);
  strv_free(&r.cmds);
  strv_free(&r.args);
  return status;
}

/* The rank the launcher gave this process (0 without one). */
static int launcher_rank(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK",
                                     "PMI_RANK"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    if (v)
      return atoi(v);
  }
  return 0;
}

/* Parses argv on every rank (before MPI starts), but only rank 0 says
 * what is wrong, or prints --help: once, not once per rank. */
static int parse_quietly(int argc, char **argv, opts *o) {
  int keep[2] = {-1, -1}, dn = -1;
  if (launcher_rank() != 0 && (dn = open("/dev/null", O_WRONLY)) >= 0)
    for (int fd = 1; fd <= 2; fd++) {
      fflush(fd == 1 ? stdout : stderr);
      keep[fd - 1] = dup(fd);
      dup2(dn, fd);
    }
  int rc = parse(argc, argv, o);
  for (int fd = 1; fd <= 2; fd++)
    if (keep[fd - 1] >= 0) {
      fflush(fd == 1 ? stdout : stderr);
      dup2(keep[fd - 1], fd);
      close(keep[fd - 1]);
    }
  if (dn >= 0)
    close(dn);
  return rc;
}

int main(int argc, char **argv) {
  opts o;
  int prc = parse_quietly(argc, argv, &o);
  if (prc) {
    free(o.env);
    /* Only rank 0 says why and fails: a rank that failed first would
     * make mpirun kill rank 0 before it printed its message. */
    return prc == 1 || launcher_rank() != 0 ? 0 : EXIT_ERROR;
  }
  if (mpx_init(&argc, &argv) != 0) {
    fprintf(stderr, "mpx-run: %s\n", mpx_last_error());
    return EXIT_ERROR;
  }
  install_stop_handlers();
  mpx_register(TASK, command_task);
  mpx_executor_options eo;
  mpx_executor_options_init(&eo);
  eo.isolation = MPX_ISOLATION_PROCESS; /* a command that takes its task
                                           process down fails alone */
  /* One command a call item. The executor's prefetch (2, MPX_PREFETCH)
   * lets a worker hold a second command only while commands are known to
   * be short (under 20 ms): then the next starts without waiting a round
   * trip through rank 0 (1,000 `true` 25% faster); longer commands go one
   * at a time to whoever is free. */
  eo.max_batch = 1;
  mpx_executor *ex = NULL;
  int status = 0;
  if (mpx_executor_create(MPI_COMM_WORLD, &eo, &ex) != 0) {
    fprintf(stderr, "mpx-run: %s\n", mpx_last_error());
    status = EXIT_ERROR;
  } else if (ex) {
    status = run_root(ex, &o);
    if (status == EXIT_STOPPED)
      mpx_executor_terminate(ex); /* past the grace: running ones stop */
    else
      mpx_executor_shutdown(ex, 1, 1);
    mpx_executor_destroy(&ex);
  }
  free(o.env);
  /* Every rank exits with the run's status (MPICH's Hydra, signalled,
   * may report a worker's). */
  return mpx_finalize_status(status);
}
