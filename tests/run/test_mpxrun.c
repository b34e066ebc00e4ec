#define _GNU_SOURCE
/*
 * test_mpxrun.c -- mpx-run as users run it (`mpirun -n N mpx-run ...`),
 * against GNU parallel (`parallel`, Debian's package; scripts/setup.sh
 * installs it) on the same inputs:
 *
 *  1. replacement strings and quoting: `parallel -k` and mpx-run print the
 *     same bytes for templates with {} {.} {/} {//} {/.} {#} (and none:
 *     the argument appended) over tricky arguments, given with :::, with
 *     -a FILE, and as commands on standard input or in a file; at 1, 2
 *     and 3 ranks;
 *  2. the joblog of a failing list: same header and columns, same Seq,
 *     Send, Receive, Exitval, Signal and Command, Starttime as %.3f and
 *     JobRuntime as %10.3f; same exit status;
 *  3. --resume and --resume-failed: the same commands run again;
 *  4. -o out.h5: every column checked with h5py (tests/py/runcheck.py,
 *     which runs each command itself), for commands that fail, are
 *     killed, print NUL bytes, nothing, 3 MB, or are missing (127); an
 *     existing output refused, left byte for byte, --overwrite replaces
 *     it;
 *  5. kill -9 of the whole run at random moments, then --resume: every
 *     command ran, each committed one exactly once, the output equals an
 *     uninterrupted run's;
 *  6. --timeout; 7. --halt now/soon; 8. bad input; 9. --env and --wd.
 *
 * GNU parallel runs commands with the shell it was started from ($SHELL,
 * bash), mpx-run with /bin/sh: `echo -n -n x` differs between bash and
 * dash, so parallel runs here with PARALLEL_SHELL=/bin/sh. Templates that
 * put a replacement string inside quotes themselves ('echo "{}"') are not
 * compared: GNU parallel quotes values with backslashes, mpx-run with
 * single quotes, and inside double quotes the two read differently.
 *
 * Usage (from ctest): test_mpxrun MPX_RUN MPIEXEC "MPIEXEC FLAGS" PY_DIR
 */
#include <CUnit/Basic.h>
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "jobtest.h"
#include "runcmd.h"

static const char *mpxrun, *mpiexec, *flags, *pydir;
static char root[256]; /* the test's directory */
static char dir[300];  /* the running case's: root/NAME */
static int have_parallel;

#define PARALLEL "PARALLEL_SHELL=/bin/sh parallel --will-cite"
#define NO_PARALLEL                                                            \
  "GNU parallel is not installed: scripts/setup.sh installs Debian's "         \
  "package 'parallel'"

/* ---- helpers ------------------------------------------------------------ */

/* A growing string. */
typedef struct str {
  char *p;
  size_t n, cap;
} str;

static void addn(str *s, const char *p, size_t n) {
  if (s->n + n + 1 > s->cap) {
    s->cap = 2 * (s->n + n + 1) + 256;
    s->p = realloc(s->p, s->cap);
    if (!s->p)
      abort();
  }
  memcpy(s->p + s->n, p, n);
  s->n += n;
  s->p[s->n] = '\0';
}

static void addf(str *s, const char *fmt, ...) {
  char *t;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&t, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  addn(s, t, (size_t)n);
  free(t);
}

/* s quoted for sh (single quotes). */
static void addq(str *s, const char *a) {
  addn(s, "'", 1);
  for (; *a; a++)
    if (*a == '\'')
      addn(s, "'\\''", 4);
    else
      addn(s, a, 1);
  addn(s, "'", 1);
}

/* The cases run side by side (rc_add_case), each in a directory of its
 * own: root/name. */
static void enter(const char *name) {
  snprintf(dir, sizeof dir, "%s/%s", root, name);
  if (mkdir(dir, 0755) != 0)
    CU_FAIL_FATAL("mkdir of the case's directory");
}

/* dir/name in a static ring of buffers. */
static const char *at(const char *name) {
  static char bufs[16][512];
  static int k;
  char *b = bufs[k++ % 16];
  snprintf(b, 512, "%s/%s", dir, name);
  return b;
}

static void sfree(str *s) {
  free(s->p);
  memset(s, 0, sizeof *s);
}

/* Appends "MPIEXEC -n np FLAGS MPX-RUN" to s. */
static void add_mpx(str *s, int np) {
  addf(s, "%s -n %d %s %s", mpiexec, np, flags, mpxrun);
}

/* Runs the shell command s (then frees it), its own stdout and stderr in
 * dir/last.log unless it redirects them; returns its exit status. */
static int run(str *s) {
  int rc = rc_run(s->p, at("last.log"));
  free(s->p);
  memset(s, 0, sizeof *s);
  return rc;
}

/* The whole file at path (malloc'd, NUL-terminated; *len its bytes), or
 * NULL. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  str s = {0};
  char buf[65536];
  size_t n;
  addn(&s, "", 0);
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    addn(&s, buf, n);
  fclose(f);
  if (len)
    *len = s.n;
  return s.p;
}

/* Whether files a and b hold the same bytes; says where they first differ
 * otherwise. */
static int same_file(const char *a, const char *b, const char *what) {
  size_t na = 0, nb = 0;
  char *x = slurp(a, &na), *y = slurp(b, &nb);
  int same = x && y && na == nb && memcmp(x, y, na) == 0;
  if (!same) {
    size_t i = 0;
    while (x && y && i < na && i < nb && x[i] == y[i])
      i++;
    fprintf(stderr,
            "\n  %s: %s (%zu bytes) and %s (%zu bytes) differ at byte %zu:\n"
            "    parallel: %.60s\n    mpx-run:  %.60s\n",
            what, a, na, b, nb, i, x && i < na ? x + i : "(end)",
            y && i < nb ? y + i : "(end)");
  }
  free(x);
  free(y);
  return same;
}

/* Writes lines (n of them, each followed by a newline) to path. */
static void write_lines(const char *path, const char *const *lines, int n) {
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  for (int i = 0; i < n; i++)
    fprintf(f, "%s\n", lines[i]);
  fclose(f);
}

static double epoch(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec;
}

/* Runs a checker of pydir; prints its output when it fails. */
static int py(const char *args) {
  char log[512];
  snprintf(log, sizeof log, "%s", at("py.log"));
  int rc = jt_py(pydir, "runcheck.py", args, log);
  if (rc != 0)
    fprintf(stderr, "\n  runcheck.py %s: %s\n", args, rc_slurp(log));
  return rc;
}

/* How many lines of text s hold exactly w. */
static int count_lines(const char *s, const char *w) {
  int n = 0;
  size_t len = strlen(w);
  for (const char *p = s; *p;) {
    const char *e = strchr(p, '\n');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    n += l == len && strncmp(p, w, len) == 0;
    p += l + (e != NULL);
  }
  return n;
}

/* How many times the text s holds w. */
static int count_str(const char *s, const char *w) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, w)) != NULL; p += strlen(w))
    n++;
  return n;
}

/* ---- 1. replacement strings and quoting --------------------------------- */

#define NARGS 33
static char big[5001];
static const char *args[NARGS] = {
    "plain",
    "a b",
    "it's",
    "say \"hi\"",
    "$HOME",
    "*",
    "a;b",
    "",
    "-n",
    "--x=1",
    "a.b.c",
    ".bashrc",
    "/abs/p.tar.gz",
    "dir/",
    "dir//",
    "/",
    "//",
    "ü/日本.txt",
    "..",
    "./a",
    "a/.b",
    "x\\y",
    "`id`",
    "$(id)",
    "!x",
    "~",
    "a\ttab",
    "{}",
    "& | > <",
    "#c",
    "100%",
    "  spaces  ",
    big,
};

/* Templates, as written on the shell command lines: most as one word, as
 * users quote them; the last as several words (joined with spaces by both
 * tools, not quoted). */
static const char *const templates[] = {
    "echo",                 /* the argument appended */
    "'printf \"[%s]\\n\"'", /* appended */
    "'printf \"[%s][%s][%s][%s][%s][%s]\\n\" {} {.} {/} {//} {/.} {#}'",
    "'echo pre{}post {.}.out x{/}x'",
    "'printf \"<%s>\" {//} {/.}; echo'",
    "echo {/} and {.}",
};
/* One case each (main). */
_Static_assert(sizeof templates / sizeof templates[0] == 6, "six templates");

/* Compares `parallel -k` with mpx-run at np ranks: how is "::: args",
 * "-a FILE", "< FILE" or "FILE"; tmpl the template (or ""). */
static void compare_output(const char *how, const char *tmpl, int np,
                           const char *tag) {
  str p = {0}, m = {0}, in = {0};
  if (!strcmp(how, ":::")) {
    addn(&in, " :::", 4);
    for (int i = 0; i < NARGS; i++) {
      addn(&in, " ", 1);
      addq(&in, args[i]);
    }
  }
  char po[300], mo[300];
  snprintf(po, sizeof po, "%s", at("p.out"));
  snprintf(mo, sizeof mo, "%s", at("m.out"));
  if (!strcmp(how, "<")) { /* commands on standard input */
    addf(&p, PARALLEL " -k <%s >%s 2>%s", at("cmds.txt"), po, at("p.err"));
    add_mpx(&m, np);
    addf(&m, " <%s >%s 2>%s", at("cmds.txt"), mo, at("m.err"));
  } else if (!strcmp(how, "file")) { /* a commands file */
    addf(&p, PARALLEL " -k <%s >%s 2>%s", at("cmds.txt"), po, at("p.err"));
    add_mpx(&m, np);
    addf(&m, " %s >%s 2>%s", at("cmds.txt"), mo, at("m.err"));
  } else if (!strcmp(how, "-a")) { /* arguments in a file */
    addf(&p, PARALLEL " -k -a %s %s >%s 2>%s", at("args.txt"), tmpl, po,
         at("p.err"));
    add_mpx(&m, np);
    addf(&m, " -a %s %s >%s 2>%s", at("args.txt"), tmpl, mo, at("m.err"));
  } else if (!strcmp(how, "-a cmds")) { /* commands in a file, with -a */
    addf(&p, PARALLEL " -k -a %s >%s 2>%s", at("cmds.txt"), po, at("p.err"));
    add_mpx(&m, np);
    addf(&m, " -a %s >%s 2>%s", at("cmds.txt"), mo, at("m.err"));
  } else {
    addf(&p, PARALLEL " -k %s%s >%s 2>%s", tmpl, in.p, po, at("p.err"));
    add_mpx(&m, np);
    addf(&m, " %s%s >%s 2>%s", tmpl, in.p, mo, at("m.err"));
  }
  sfree(&in);
  int prc = run(&p), mrc = run(&m);
  CU_ASSERT_EQUAL(prc, 0);
  CU_ASSERT_EQUAL(mrc, 0);
  if (mrc != 0)
    fprintf(stderr, "\n  mpx-run %s: exit %d: %s\n", tag, mrc,
            rc_slurp(at("m.err")));
  CU_ASSERT(same_file(po, mo, tag));
}

/* The inputs of case 1: the arguments one a line (none holds a newline)
 * for -a FILE, and commands one a line with the shell's own quoting. */
static void write_repl_inputs(void) {
  write_lines(at("args.txt"), args, NARGS);
  static const char *const cmds[] = {
      "echo one",
      "echo \"two  three\"",
      "printf '%s\\n' \"$HOME\"",
      "echo a;echo b",
      "printf '[%s]\\n' 'it'\\''s' \"say \\\"hi\\\"\" '*' ''",
      "echo ü 日本",
      "printf 'no newline'",
      "true",
      "echo \"$((6 * 7))\" | tr 4 X",
  };
  write_lines(at("cmds.txt"), cmds, sizeof cmds / sizeof cmds[0]);
}

/* Case 1 for template t: its arguments from ::: and from -a FILE. */
static void replacements(int t) {
  if (!have_parallel)
    CU_FAIL_FATAL(NO_PARALLEL);
  char name[32], tag[600];
  snprintf(name, sizeof name, "repl%d", t);
  enter(name);
  write_repl_inputs();
  snprintf(tag, sizeof tag, "%s ::: (np 3)", templates[t]);
  compare_output(":::", templates[t], 3, tag);
  snprintf(tag, sizeof tag, "-a FILE %s (np 3)", templates[t]);
  compare_output("-a", templates[t], 3, tag);
}

/* Case 1 at other rank counts, and commands rather than a template. */
static void test_repl_more(void) {
  if (!have_parallel)
    CU_FAIL_FATAL(NO_PARALLEL);
  enter("repl-more");
  write_repl_inputs();
  compare_output(":::", templates[2], 1, "all strings ::: (np 1)");
  compare_output("-a", templates[2], 2, "all strings -a (np 2)");
  compare_output("<", "", 3, "commands on stdin (np 3)");
  compare_output("file", "", 3, "a commands file (np 3)");
  compare_output("-a cmds", "", 2, "-a FILE without a template (np 2)");
  compare_output("<", "", 1, "commands on stdin (np 1)");
}

/* ---- 2. the joblog --------------------------------------------------------
 */

/* One joblog line split into its 9 columns. */
typedef struct jl_line {
  char *col[9];
} jl_line;

/* Reads a joblog: its header into *header (malloc'd), its lines sorted by
 * Seq into lines (at most max); returns their count, or -1. */
static int read_joblog(const char *path, char **header, jl_line *lines,
                       int max) {
  char *s = slurp(path, NULL);
  if (!s)
    return -1;
  int n = 0;
  char *save = NULL;
  *header = NULL;
  for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    if (!*header) {
      *header = strdup(l);
      continue;
    }
    if (n == max)
      break;
    jl_line *j = &lines[n];
    char *p = l;
    for (int c = 0; c < 9; c++) {
      j->col[c] = p;
      char *tab = c < 8 ? strchr(p, '\t') : NULL;
      if (c < 8 && !tab) {
        free(s);
        return -1;
      }
      if (tab) {
        *tab = '\0';
        p = tab + 1;
      }
    }
    for (int c = 0; c < 9; c++)
      j->col[c] = strdup(j->col[c]);
    n++;
  }
  free(s);
  /* by Seq (GNU parallel logs in completion order) */
  for (int a = 1; a < n; a++)
    for (int b = a; b > 0 && atol(lines[b].col[0]) < atol(lines[b - 1].col[0]);
         b--) {
      jl_line t = lines[b];
      lines[b] = lines[b - 1];
      lines[b - 1] = t;
    }
  return n;
}

static void free_joblog(char *header, jl_line *lines, int n) {
  free(header);
  for (int i = 0; i < n; i++)
    for (int c = 0; c < 9; c++)
      free(lines[i].col[c]);
}

/* Whether s is digits, '.', exactly 3 digits. */
static int is_ms(const char *s) {
  const char *dot = strchr(s, '.');
  if (!dot || dot == s || strlen(dot + 1) != 3)
    return 0;
  for (const char *p = s; *p; p++)
    if (p != dot && !isdigit((unsigned char)*p))
      return 0;
  return 1;
}

/* Starttime as "%.3f" of an epoch near now, JobRuntime as "%10.3f". */
static int formats_ok(const jl_line *j) {
  double st = atof(j->col[2]);
  const char *rt = j->col[3];
  while (*rt == ' ')
    rt++;
  return is_ms(j->col[2]) && st > epoch() - 600 && st < epoch() + 1 &&
         strlen(j->col[3]) == 10 && is_ms(rt) && *j->col[1];
}

/* Compares two joblogs (parallel's p, mpx-run's m): header, Seq, Send,
 * Receive, Exitval, Signal, Command per line, and the formats. */
static void compare_joblogs(const char *p, const char *m, int want) {
  jl_line pl[64], ml[64];
  char *ph = NULL, *mh = NULL;
  int np = read_joblog(p, &ph, pl, 64), nm = read_joblog(m, &mh, ml, 64);
  CU_ASSERT_EQUAL(np, want);
  CU_ASSERT_EQUAL(nm, want);
  CU_ASSERT_PTR_NOT_NULL(mh);
  if (ph && mh)
    CU_ASSERT_STRING_EQUAL(ph, mh);
  for (int i = 0; i < np && i < nm; i++) {
    static const int cols[] = {0, 4, 5, 6, 7, 8};
    for (int c = 0; c < 6; c++)
      if (strcmp(pl[i].col[cols[c]], ml[i].col[cols[c]])) {
        fprintf(stderr,
                "\n  joblog seq %s column %d: parallel '%s', "
                "mpx-run '%s'\n",
                pl[i].col[0], cols[c], pl[i].col[cols[c]], ml[i].col[cols[c]]);
        CU_FAIL("joblog column differs");
      }
    CU_ASSERT(formats_ok(&pl[i]));
    if (!formats_ok(&ml[i])) {
      fprintf(stderr,
              "\n  mpx-run joblog seq %s: host '%s' start '%s' "
              "runtime '%s'\n",
              ml[i].col[0], ml[i].col[1], ml[i].col[2], ml[i].col[3]);
      CU_FAIL("mpx-run joblog format");
    }
  }
  free_joblog(ph, pl, np > 0 ? np : 0);
  free_joblog(mh, ml, nm > 0 ? nm : 0);
}

static void test_joblog(void) {
  if (!have_parallel)
    CU_FAIL_FATAL(NO_PARALLEL);
  enter("joblog");
  static const char *const cmds[] = {
      "exit 0",
      "exit 1",
      "exit 3",
      "kill -9 $$",
      "head -c 1234 /dev/zero",
      "printf '%05000d' 7",
      "echo hi; exit 2",
      "printf 'a\\tb\\n'",
  };
  write_lines(at("jl.txt"), cmds, 8);
  str p = {0}, m = {0};
  addf(&p, PARALLEL " -k --joblog %s <%s >/dev/null 2>&1", at("jl-p.log"),
       at("jl.txt"));
  add_mpx(&m, 3);
  addf(&m, " --joblog %s <%s >/dev/null 2>%s", at("jl-m.log"), at("jl.txt"),
       at("m.err"));
  int prc = run(&p), mrc = run(&m);
  CU_ASSERT_EQUAL(prc, 4); /* exit 1, exit 3, kill -9, exit 2 */
  CU_ASSERT_EQUAL(mrc, prc);
  compare_joblogs(at("jl-p.log"), at("jl-m.log"), 8);
}

/* ---- 3. --resume and --resume-failed ------------------------------------ */

/* Runs one round in dir/rp (parallel) and dir/rm (mpx-run) with opts;
 * compares exit statuses and the side files S (which commands ran), then
 * empties them. */
static void resume_round(const char *opts, const char *want) {
  str p = {0}, m = {0};
  addf(&p,
       "cd %s && " PARALLEL " -k --joblog J %s < ../rs.txt >/dev/null "
       "2>&1",
       at("rp"), opts);
  addf(&m, "cd %s && ", at("rm"));
  add_mpx(&m, 3);
  addf(&m, " --joblog J %s < ../rs.txt >/dev/null 2>../m.err", opts);
  int prc = run(&p), mrc = run(&m);
  char sp[600], sm[600];
  str sort = {0};
  addf(&sort,
       "cd %s && sort -n rp/S 2>/dev/null | tr '\\n' ' ' >sp.txt; "
       "sort -n rm/S 2>/dev/null | tr '\\n' ' ' >sm.txt; "
       ": >rp/S; : >rm/S",
       dir);
  run(&sort);
  snprintf(sp, sizeof sp, "%s", rc_slurp(at("sp.txt")));
  snprintf(sm, sizeof sm, "%s", rc_slurp(at("sm.txt")));
  printf("\n  %-22s parallel: exit %d ran [%s]  mpx-run: exit %d ran [%s]",
         *opts ? opts : "(first run)", prc, sp, mrc, sm);
  CU_ASSERT_EQUAL(prc, mrc);
  CU_ASSERT_STRING_EQUAL(sp, sm);
  CU_ASSERT_STRING_EQUAL(sm, want);
}

static void test_resume(void) {
  if (!have_parallel)
    CU_FAIL_FATAL(NO_PARALLEL);
  enter("resume");
  static const char *const cmds[] = {
      "echo 1 >> S", "echo 2 >> S; exit 1",     "echo 3 >> S; exit 3",
      "echo 4 >> S", "echo 5 >> S; kill -9 $$", "echo 6 >> S",
  };
  write_lines(at("rs.txt"), cmds, 6);
  mkdir(at("rp"), 0755);
  mkdir(at("rm"), 0755);
  resume_round("", "1 2 3 4 5 6 ");
  resume_round("--resume", "");
  /* A joblog that holds only seq 1-3 (as a run killed after them): the
   * rest runs. */
  str cut = {0};
  addf(&cut,
       "cd %s && for d in rp rm; do awk -F'\\t' 'NR == 1 || $1 <= 3' "
       "$d/J >$d/J2 && mv $d/J2 $d/J; done",
       dir);
  CU_ASSERT_EQUAL(run(&cut), 0);
  resume_round("--resume", "4 5 6 ");
  resume_round("--resume", "");
  resume_round("--resume-failed", "2 3 5 ");
  resume_round("--resume-failed", "2 3 5 ");
  printf("\n  ");
  compare_joblogs(at("rp/J"), at("rm/J"), 12);
}

/* ---- 4. -o out.h5 ---------------------------------------------------------
 */

static void test_output(void) {
  enter("output");
  static const char *const cmds[] = {
      "echo hello",
      "printf 'a\\000b%%c\\n'",
      "echo oops >&2",
      "exit 7",
      "kill -TERM $$",
      "printf 'x\\000'; printf 'e\\000%%' >&2; exit 1",
      "printf '100%%25 not escaped'",
      "head -c 70000 /dev/zero | tr '\\0' y",
      "true",                                   /* prints nothing */
      "no-such-program-mpx-run-test",           /* missing: 127, sh's message */
      "head -c 3000000 /dev/zero | tr '\\0' z", /* 3 MB */
  };
  write_lines(at("o.txt"), cmds, 11);
  const char *out = at("o.h5");
  str m = {0};
  double t0 = epoch();
  add_mpx(&m, 3);
  addf(&m, " -q -o %s %s 2>%s", out, at("o.txt"), at("m.err"));
  CU_ASSERT_EQUAL(run(&m), 4); /* exit 7, kill -TERM, exit 1, missing */
  double t1 = epoch();
  str a = {0};
  addf(&a, "check %s %s %.3f %.3f 4:7:0,5:0:15,6:1:0,9:0:0,10:127:0",
       at("o.txt"), out, t0, t1);
  CU_ASSERT_EQUAL(py(a.p), 0);
  sfree(&a);
  /* a second run refuses the output and leaves it as it is */
  char before[33], after[33];
  jt_md5(out, before);
  add_mpx(&m, 3);
  addf(&m, " -q -o %s %s 2>%s", out, at("o.txt"), at("m.err"));
  CU_ASSERT_EQUAL(run(&m), 255);
  const char *err = rc_slurp(at("m.err"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "exists"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err, out));
  jt_md5(out, after);
  CU_ASSERT_STRING_EQUAL(before, after);
  /* --overwrite replaces it: a new run, checked again */
  t0 = epoch();
  add_mpx(&m, 2);
  addf(&m, " -q --overwrite -o %s %s 2>%s", out, at("o.txt"), at("m.err"));
  CU_ASSERT_EQUAL(run(&m), 4);
  t1 = epoch();
  jt_md5(out, after);
  CU_ASSERT_STRING_NOT_EQUAL(before, after);
  addf(&a, "check %s %s %.3f %.3f", at("o.txt"), out, t0, t1);
  CU_ASSERT_EQUAL(py(a.p), 0);
  sfree(&a);
}

/* ---- 5. kill -9 and --resume --------------------------------------------- */

/* A kill during the job's first commit has been seen (1 round in ~10) to
 * leave an output without /mpx and a record without a commit line. That
 * --resume refused it (MPX_ECORRUPT "has no /mpx group") was a library
 * bug, fixed: with no commit recorded the file is moved aside and the job
 * starts over (job_integrity checks that case deterministically). */

enum { KCMDS = 40 };

/* How many lines of the side file hold each seq, into runs[1..KCMDS]. */
static void count_runs(const char *side, int *runs) {
  const char *s = rc_slurp(side);
  for (int k = 1; k <= KCMDS; k++) {
    char w[16];
    snprintf(w, sizeof w, "%d", k);
    runs[k] = count_lines(s, w);
  }
}

/* Whether a process of the run writing out (every one has it in its
 * command line) is still there; with sig, signals them all. */
static int run_alive(const char *out, const char *sig) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "%s -f -- '[m]px-run -q -o %s' >/dev/null",
           sig ? sig : "pgrep", out);
  return system(cmd) == 0;
}

static void test_kill(void) {
  enter("kill");
  static char lines[KCMDS][80];
  const char *cmds[KCMDS];
  for (int k = 0; k < KCMDS; k++) {
    snprintf(lines[k], sizeof lines[k],
             "sleep 0.1; echo %d >> side.txt; echo out %d", k + 1, k + 1);
    cmds[k] = lines[k];
  }
  write_lines(at("k.txt"), cmds, KCMDS);
  mkdir(at("kref"), 0755);
  str m = {0};
  addf(&m, "cd %s && ", at("kref"));
  add_mpx(&m, 3);
  addf(&m, " -q -o %s ../k.txt 2>../m.err", at("kref.h5"));
  CU_ASSERT_EQUAL_FATAL(run(&m), 0);
  /* the commands and their uninterrupted output, for case 11 too */
  FILE *ok = fopen(at("kref.ok"), "w");
  if (ok)
    fclose(ok);
  unsigned seed = (unsigned)time(NULL);
  srand(seed);
  printf("\n  seed %u", seed);
  for (int round = 0; round < 3; round++) {
    char name[32], out[600], rec[700], side[700], wd[512];
    snprintf(name, sizeof name, "k%d", round);
    snprintf(wd, sizeof wd, "%s", at(name));
    mkdir(wd, 0755);
    snprintf(out, sizeof out, "%s/k.h5", wd);
    snprintf(rec, sizeof rec, "%s.mpxrec", out);
    snprintf(side, sizeof side, "%s/side.txt", wd);
    /* kill once the side file holds `when` lines, plus 0-50 ms */
    int when = 2 + rand() % 34, extra_us = rand() % 50000;
    addf(&m, "cd %s && exec ", wd);
    add_mpx(&m, 3);
    addf(&m, " -q -o %s ../k.txt", out);
    pid_t pid = rc_start(m.p, at("kill.log"));
    free(m.p);
    memset(&m, 0, sizeof m);
    int st = 0, ended;
    double until = rc_now() + 30;
    int runs[KCMDS + 1];
    while (!(ended = rc_poll(pid, &st)) && rc_now() < until) {
      count_runs(side, runs);
      int n = 0;
      for (int k = 1; k <= KCMDS; k++)
        n += runs[k];
      if (n >= when)
        break;
      usleep(2000);
    }
    if (!ended) {
      usleep((useconds_t)extra_us);
      kill(-pid, SIGKILL); /* mpirun's process group */
      run_alive(out, "pkill -KILL");
      st = rc_finish(pid);
    }
    for (int i = 0; i < 200 && run_alive(out, NULL); i++)
      usleep(50000);
    CU_ASSERT(!run_alive(out, NULL));
    usleep(300000); /* a command the kill missed would append by now */
    long committed = jt_recorded_items(rec);
    int first[KCMDS + 1];
    count_runs(side, first);
    add_mpx(&m, 3);
    addf(&m, " -q --resume -o %s ../k.txt 2>../m.err", out);
    char *c = NULL;
    if (asprintf(&c, "cd %s && %s", wd, m.p) < 0)
      abort();
    free(m.p);
    m.p = c;
    CU_ASSERT_EQUAL(run(&m), 0);
    count_runs(side, runs);
    int missing = 0, twice = 0, rerun_committed = 0, ran_first = 0;
    for (int k = 1; k <= KCMDS; k++) {
      missing += runs[k] == 0;
      twice += runs[k] > 1;
      ran_first += first[k] > 0;
      rerun_committed += k <= committed && runs[k] != 1;
    }
    printf("\n  kill after %2d side-file lines +%2d ms (exit %d): %2d ran "
           "before, %2ld committed; after --resume: %d never ran, %d ran "
           "twice, %d committed ran again",
           when, extra_us / 1000, st, ran_first, committed, missing, twice,
           rerun_committed);
    CU_ASSERT_EQUAL(missing, 0);
    CU_ASSERT_EQUAL(rerun_committed, 0);
    CU_ASSERT(twice <= KCMDS - committed);
    str a = {0};
    addf(&a, "same %s %s", at("kref.h5"), out);
    CU_ASSERT_EQUAL(py(a.p), 0);
    sfree(&a);
  }
}

/* ---- 6. --timeout ---------------------------------------------------------
 */

static void test_timeout(void) {
  enter("timeout");
  str m = {0};
  FILE *f = fopen(at("t.txt"), "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("sleep 5\necho fine\n", f);
  fclose(f);
  /* 1 s, not less: the limit holds for "echo fine" too, whose start alone
   * took 0.37 s once on a machine loaded by other tests (a fresh-clone
   * run with cases side by side). */
  double t0 = rc_now();
  add_mpx(&m, 3);
  addf(&m, " --timeout 1 --joblog %s -o %s %s >/dev/null 2>%s", at("t-m.log"),
       at("t.h5"), at("t.txt"), at("m.err"));
  CU_ASSERT_EQUAL(run(&m), 1); /* one failed */
  double t = rc_now() - t0;
  /* The whole run includes MPI's start-up (seconds under ASan): the
   * command's own run time in the joblog, checked below, shows that the
   * time limit struck. */
  printf("\n  --timeout 1 on sleep 5: %.2f s in all", t);
  jl_line ml[4];
  char *mh = NULL;
  int n = read_joblog(at("t-m.log"), &mh, ml, 4);
  CU_ASSERT_EQUAL_FATAL(n, 2);
  CU_ASSERT_STRING_EQUAL(ml[0].col[7], "15"); /* Signal */
  CU_ASSERT_STRING_EQUAL(ml[0].col[6], "-1"); /* Exitval, as parallel */
  CU_ASSERT_STRING_EQUAL(ml[1].col[6], "0");
  CU_ASSERT(atof(ml[0].col[3]) >= 0.99 && atof(ml[0].col[3]) < 4);
  if (have_parallel) { /* GNU parallel logs the same */
    str p = {0};
    jl_line pl[4];
    char *ph = NULL;
    addf(&p, PARALLEL " -k --timeout 1 --joblog %s -a %s >/dev/null 2>&1",
         at("t-p.log"), at("t.txt"));
    CU_ASSERT_EQUAL(run(&p), 1);
    int np = read_joblog(at("t-p.log"), &ph, pl, 4);
    CU_ASSERT_EQUAL(np, 2);
    if (np == 2) {
      CU_ASSERT_STRING_EQUAL(pl[0].col[6], ml[0].col[6]);
      CU_ASSERT_STRING_EQUAL(pl[0].col[7], ml[0].col[7]);
    }
    free_joblog(ph, pl, np > 0 ? np : 0);
  }
  free_joblog(mh, ml, n);
}

/* ---- 7. --halt ------------------------------------------------------------
 */

enum { HCMDS = 10 };

/* Runs the halt list in dir/name with cmdline; returns its exit status,
 * the seqs that ran in ran (" 1 2 ...") and their count. */
static int halt_run(const char *name, str *cmdline, char *ran, size_t cap,
                    int *nran) {
  int rc = run(cmdline);
  usleep(1200000); /* anything left running would append by now */
  str s = {0};
  addf(&s, "sort -n %s/S 2>/dev/null | tr '\\n' ' ' >%s/ran.txt", at(name),
       at(name));
  run(&s);
  char path[600];
  snprintf(path, sizeof path, "%s/ran.txt", at(name));
  snprintf(ran, cap, "%s", rc_slurp(path));
  *nran = 0;
  for (const char *p = ran; *p; p++)
    *nran += *p == ' ';
  return rc;
}

static void test_halt(void) {
  enter("halt");
  static char lines[HCMDS][64];
  const char *cmds[HCMDS];
  for (int k = 0; k < HCMDS; k++) {
    if (k == 1)
      snprintf(lines[k], sizeof lines[k], "echo 2 >> S; exit 3");
    else
      snprintf(lines[k], sizeof lines[k], "sleep 1; echo %d >> S", k + 1);
    cmds[k] = lines[k];
  }
  write_lines(at("h.txt"), cmds, HCMDS);
  const char *whens[] = {"now,fail=1", "soon,fail=1"};
  for (int w = 0; w < 2; w++) {
    char pname[32], mname[32], pran[256] = "", mran[256] = "";
    int pn = 0, mn = 0, prc = -1;
    snprintf(pname, sizeof pname, "hp%d", w);
    snprintf(mname, sizeof mname, "hm%d", w);
    mkdir(at(pname), 0755);
    mkdir(at(mname), 0755);
    if (have_parallel) {
      str p = {0};
      addf(&p,
           "cd %s && " PARALLEL " -j2 --halt %s < ../h.txt >/dev/null "
           "2>&1",
           at(pname), whens[w]);
      prc = halt_run(pname, &p, pran, sizeof pran, &pn);
    }
    str m = {0};
    addf(&m, "cd %s && ", at(mname));
    add_mpx(&m, 3); /* 2 workers, as -j2 */
    addf(&m, " --halt %s < ../h.txt >/dev/null 2>../m.err", whens[w]);
    double t0 = rc_now();
    int mrc = halt_run(mname, &m, mran, sizeof mran, &mn);
    printf("\n  --halt %-11s parallel -j2: exit %d ran [%s]  mpx-run -n 3: "
           "exit %d ran [%s] (%.1f s)",
           whens[w], prc, pran, mrc, mran, rc_now() - t0 - 1.2);
    CU_ASSERT_NOT_EQUAL(mrc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(mran, "2 "));
    CU_ASSERT(mn < HCMDS);
    /* fail=1: the failed command's exit status, as GNU parallel */
    CU_ASSERT_EQUAL(mrc, 3);
    if (have_parallel) {
      CU_ASSERT_EQUAL(prc, mrc);
      CU_ASSERT(pn < HCMDS);
    }
  }
  if (!have_parallel)
    CU_FAIL(NO_PARALLEL);
}

/* ---- 8. bad input ---------------------------------------------------------
 */

/* Runs mpx-run at np ranks with args in a fresh directory dir/name;
 * expects exit 255, the message naming what (once), and no file made. */
static void bad(const char *name, int np, const char *args, const char *what) {
  char wd[512];
  snprintf(wd, sizeof wd, "%s", at(name));
  mkdir(wd, 0755);
  FILE *f = fopen(at("empty.txt"), "w");
  if (f)
    fclose(f);
  str m = {0};
  addf(&m, "cd %s && ", wd);
  add_mpx(&m, np);
  addf(&m, " %s </dev/null >../bad.out 2>../bad.err", args);
  int rc = run(&m);
  const char *err = rc_slurp(at("bad.err"));
  int said = count_str(err, what);
  if (rc != 255 || said != 1)
    fprintf(stderr, "\n  mpx-run %s: exit %d, '%s' said %d times:\n%s\n", args,
            rc, what, said, err);
  CU_ASSERT_EQUAL(rc, 255);
  CU_ASSERT_EQUAL(said, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "mpx-run: "));
  str ls = {0};
  addf(&ls, "test -z \"$(ls -A %s)\"", wd);
  int empty = run(&ls) == 0;
  if (!empty)
    fprintf(stderr, "\n  mpx-run %s left files in %s\n", args, wd);
  CU_ASSERT(empty);
}

static void test_bad_input(void) {
  enter("bad");
  bad("b1", 3, "--joblog j.log -o o.h5 ../empty.txt", "no commands to run");
  bad("b2", 3, "--joblog j.log -o o.h5 echo :::", "no commands to run");
  bad("b3", 1, "--joblog j.log ../empty.txt", "no commands to run");
  bad("b4", 3, "-a missing.txt --joblog j.log -o o.h5 echo", "missing.txt");
  bad("b5", 3, "--joblog nodir/j.log -o o.h5 echo ::: a", "nodir/j.log");
}

static void test_bad_input2(void) {
  enter("bad2");
  bad("b6", 3, "-o nodir/o.h5 echo ::: a", "nodir/o.h5");
  bad("b7", 3, "--resume echo ::: a", "--resume needs --joblog or -o");
  bad("b8", 3, "--wd nodir --joblog j.log -o o.h5 echo ::: a", "nodir");
  bad("b9", 3, "--bogus --joblog j.log echo ::: a", "--bogus");
  bad("b10", 2, "--timeout soon echo ::: a", "soon");
  bad("b11", 3, "--halt later echo ::: a", "later");
}

/* ---- 9. --env and --wd ----------------------------------------------------
 */

/* --results DIR: the same tree of DIR/1/<argument>/{seq,stdout,stderr}
 * as parallel's for the tricky arguments (all but the 5000-byte one,
 * which no file system takes as a name), contents byte for byte. */
static void test_results(void) {
  CU_ASSERT_FATAL(have_parallel);
  enter("results");
  str in = {0}, p = {0}, m = {0};
  for (int i = 0; i < NARGS - 1; i++) {
    addn(&in, " ", 1);
    addq(&in, args[i]);
  }
  addf(&p, PARALLEL " --results %s echo :::%s >/dev/null 2>&1", at("results-p"),
       in.p);
  add_mpx(&m, 3);
  addf(&m, " -q --results %s echo :::%s", at("results-m"), in.p);
  sfree(&in);
  CU_ASSERT_EQUAL(run(&p), 0);
  CU_ASSERT_EQUAL(run(&m), 0);
  str d = {0};
  addf(&d, "diff -r %s %s", at("results-p"), at("results-m"));
  int rc = run(&d);
  CU_ASSERT_EQUAL(rc, 0);
  if (rc != 0)
    fprintf(stderr, "\n  --results trees differ: %s\n",
            rc_slurp(at("last.log")));
  /* An unwritable results directory: refused before anything runs. */
  str b = {0};
  add_mpx(&b, 2);
  addf(&b, " --results /proc/mpx-run-no/such echo ::: a");
  CU_ASSERT_EQUAL(run(&b), 255);
}

/* SIGUSR1 mid-run (a SLURM time-limit warning): nothing more is
 * dispatched, the running commands finish within --grace and are
 * committed, exit 102; --resume then finishes, no command ran twice and
 * the output equals an uninterrupted run's (kref.h5 of case 5, whose
 * commands k.txt it runs: it waits for them). */
static void test_stop_signal(void) {
  enter("stop");
  char wd[512], out[600], side[700], cmds[600], kref[600], mark[600];
  snprintf(cmds, sizeof cmds, "%s/kill/k.txt", root);
  snprintf(kref, sizeof kref, "%s/kill/kref.h5", root);
  snprintf(mark, sizeof mark, "%s/kill/kref.ok", root);
  CU_ASSERT_FATAL(rc_wait_file(mark, 120));
  snprintf(wd, sizeof wd, "%s", at("stop"));
  mkdir(wd, 0755);
  snprintf(out, sizeof out, "%s/k.h5", wd);
  snprintf(side, sizeof side, "%s/side.txt", wd);
  str m = {0};
  addf(&m, "cd %s && exec ", wd);
  add_mpx(&m, 3);
  addf(&m, " -q --grace 20 -o %s %s", out, cmds);
  pid_t pid = rc_start(m.p, at("stop.log"));
  sfree(&m);
  int runs[KCMDS + 1], st = 0, ended = 0;
  double until = rc_now() + 30;
  for (;;) {
    if ((ended = rc_poll(pid, &st)) != 0 || rc_now() > until)
      break;
    count_runs(side, runs);
    int n = 0;
    for (int k = 1; k <= KCMDS; k++)
      n += runs[k];
    if (n >= 8)
      break;
    usleep(2000);
  }
  CU_ASSERT_FATAL(!ended);
  kill(-pid, SIGUSR1); /* mpirun's process group: mpirun and the ranks */
  st = rc_finish(pid);
  CU_ASSERT_EQUAL(st, 102);
  if (st != 102)
    fprintf(stderr, "\n  stop: exit %d: %s\n", st, rc_slurp(at("stop.log")));
  int first[KCMDS + 1], n1 = 0;
  count_runs(side, first);
  for (int k = 1; k <= KCMDS; k++)
    n1 += first[k];
  CU_ASSERT(n1 < KCMDS); /* it stopped before the end */
  addf(&m, "cd %s && ", wd);
  add_mpx(&m, 3);
  addf(&m, " -q --resume -o %s %s", out, cmds);
  CU_ASSERT_EQUAL(run(&m), 0);
  count_runs(side, runs);
  int twice = 0, never = 0;
  for (int k = 1; k <= KCMDS; k++) {
    twice += runs[k] > 1;
    never += runs[k] == 0;
  }
  printf("\n  stopped after %d of %d commands; after --resume: %d never "
         "ran, %d ran twice",
         n1, KCMDS, never, twice);
  CU_ASSERT_EQUAL(never, 0);
  CU_ASSERT_EQUAL(twice, 0); /* the grace let every running one finish */
  char args[1400];
  snprintf(args, sizeof args, "same %s %s", kref, out);
  CU_ASSERT_EQUAL(py(args), 0);
}

/* --task-time under SLURM: no command starts later than SEC before the
 * job's end, read with squeue. A stand-in squeue (MPX_RUN_SQUEUE) gives an end
 * 4 s away; with --task-time 3 and 1 s commands the run stops after about a
 * second (exit 102), and --resume (end far away) finishes the rest. */
static void test_task_time(void) {
  enter("task-time");
  char wd[512], bin[600], out[600], sq[700];
  snprintf(wd, sizeof wd, "%s", at("tt"));
  mkdir(wd, 0755);
  snprintf(bin, sizeof bin, "%s/bin", wd);
  mkdir(bin, 0755);
  snprintf(out, sizeof out, "%s/tt.h5", wd);
  static const char *const cmds[] = {"sleep 1; echo 1", "sleep 1; echo 2",
                                     "sleep 1; echo 3", "sleep 1; echo 4",
                                     "sleep 1; echo 5", "sleep 1; echo 6",
                                     "sleep 1; echo 7", "sleep 1; echo 8"};
  write_lines(at("tt.txt"), cmds, 8);
  /* squeue -h -j ID -o %e: the end time in local time, END_IN s away. */
  snprintf(sq, sizeof sq, "%s/squeue", bin);
  FILE *f = fopen(sq, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs("#!/bin/sh\n"
        "date -d @$(( $(date +%s) + ${END_IN:-4} )) +%Y-%m-%dT%H:%M:%S\n",
        f);
  fclose(f);
  chmod(sq, 0755);
  str m = {0};
  addf(&m, "cd %s && MPX_RUN_SQUEUE=%s SLURM_JOB_ID=42 END_IN=4 ", wd, sq);
  add_mpx(&m, 3);
  addf(&m, " -q --task-time 3 -o %s ../tt.txt 2>tt.err", out);
  double t0 = rc_now();
  int rc = run(&m);
  double took = rc_now() - t0;
  CU_ASSERT_EQUAL(rc, 102); /* stopped for the time limit */
  /* Only a bound against a hang: exit 102 is what shows the stop. Under
   * ASan, with other tests beside it, MPI's start-up alone took over 8 s
   * once (the bound was 8). */
  CU_ASSERT(took < 60);
  if (rc != 102)
    fprintf(stderr, "\n  --task-time: exit %d\n", rc);
  addf(&m, "cd %s && MPX_RUN_SQUEUE=%s SLURM_JOB_ID=42 END_IN=3600 ", wd, sq);
  add_mpx(&m, 3);
  addf(&m, " -q --task-time 3 --resume -o %s ../tt.txt 2>tt2.err", out);
  CU_ASSERT_EQUAL(run(&m), 0);
  char args[1400];
  snprintf(args, sizeof args, "check %s %s 0 9e9", at("tt.txt"), out);
  CU_ASSERT_EQUAL(py(args), 0);
  /* Outside SLURM it is an error before anything runs. */
  addf(&m, "cd %s && env -u SLURM_JOB_ID ", wd);
  add_mpx(&m, 2);
  addf(&m, " --task-time 3 ../tt.txt >/dev/null 2>tt3.err");
  CU_ASSERT_EQUAL(run(&m), 255);
}

static void test_env_wd(void) {
  enter("env");
  char wd[512];
  snprintf(wd, sizeof wd, "%s", at("work dir"));
  mkdir(wd, 0755);
  static const char *const cmds[] = {
      "printf '%s|%s\\n' \"$MPXRUN_TEST_VAR\" \"$(pwd)\"",
      "printf '%s|%s\\n' \"$MPXRUN_TEST_VAR\" \"$PWD\"",
      "ls",
  };
  write_lines(at("e.txt"), cmds, 3);
  FILE *f = fopen(at("work dir/marker"), "w");
  if (f)
    fclose(f);
  const char *value = "a b 'c' \"d\" $e";
  for (int np = 1; np <= 3; np += 2) {
    str m = {0};
    addf(&m, "cd / && MPXRUN_TEST_VAR=");
    addq(&m, value);
    addf(&m, " ");
    add_mpx(&m, np);
    addf(&m, " --env MPXRUN_TEST_VAR --wd ");
    addq(&m, wd);
    addf(&m, " %s >%s 2>%s", at("e.txt"), at("e.out"), at("m.err"));
    CU_ASSERT_EQUAL(run(&m), 0);
    str want = {0};
    addf(&want, "%s|%s\n%s|%s\nmarker\n", value, wd, value, wd);
    const char *got = rc_slurp(at("e.out"));
    if (strcmp(got, want.p))
      fprintf(stderr, "\n  np %d: got\n%s  want\n%s", np, got, want.p);
    CU_ASSERT_STRING_EQUAL(got, want.p);
    free(want.p);
  }
}

/* ---- 13. plain commands run without the shell, as the shell runs them --
 * Each command of plain words is followed by itself with ";" appended,
 * which the shell runs: stdout, stderr, exit value and signal must agree
 * (runcheck.py pairs). One worker, so MPX_RUN_SLOT agrees too. Run in a
 * directory given by --wd, with a PATH given by --env (a program of the
 * test's own found there), and from the current directory, entered
 * through a symbolic link. */
static void test_plain(void) {
  enter("plain");
  char wd[512], bin[512], path[1200];
  snprintf(wd, sizeof wd, "%s", at("plain dir"));
  snprintf(bin, sizeof bin, "%s", at("plain bin"));
  mkdir(wd, 0755);
  mkdir(bin, 0755);
  static const struct {
    const char *name, *text;
    mode_t mode;
  } files[] = {
      {"plain bin/mpxplain", "#!/bin/sh\necho mine \"$@\" \"$PWD\"\n", 0755},
      {"plain dir/noshebang", "echo run by sh \"$0\" \"$PWD\"\n", 0755},
      {"plain dir/notexec", "#!/bin/sh\necho never\n", 0644},
      {"plain dir/data", "some data\n", 0644},
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    FILE *f = fopen(at(files[i].name), "w");
    if (f) {
      fputs(files[i].text, f);
      fclose(f);
    }
    chmod(at(files[i].name), files[i].mode);
  }
  static const char *const plain[] = {
      "env",
      "/usr/bin/env",
      "pwd",
      "/bin/pwd -L",
      "/bin/pwd -P",
      "ls -a",
      "cat data",
      "cat no-such-file",
      "mpxplain a,b c@d+e:f^g=h %x",
      "./noshebang 1 2",
      "./notexec",
      "./no-such-program",
      "no-such-program-mpx-plain",
      "/etc",
      "sleep 0.01",
      "sh -c exit\t3",
      "head -c 100000 /dev/zero",
      "dd if=data bs=1 count=4 status=none",
  };
  enum { NP = sizeof plain / sizeof plain[0] };
  const char *lines[2 * NP];
  char twin[NP][200];
  for (int i = 0; i < NP; i++) {
    snprintf(twin[i], sizeof twin[i], "%s;", plain[i]);
    lines[2 * i] = plain[i];
    lines[2 * i + 1] = twin[i];
  }
  write_lines(at("plain.txt"), lines, 2 * NP);
  snprintf(path, sizeof path, "%s:/usr/bin:/bin", bin);
  for (int round = 0; round < 2; round++) {
    str m = {0};
    if (round == 0) {
      /* through a link: the shell keeps the logical $PWD */
      symlink(wd, at("plain link"));
      addf(&m, "cd ");
      addq(&m, at("plain link"));
      addf(&m, " && ");
    } else {
      addf(&m, "cd / && PATH=");
      addq(&m, path);
      addf(&m, " ");
    }
    add_mpx(&m, 2);
    if (round == 1) {
      addf(&m, " --env PATH --wd ");
      addq(&m, wd);
    }
    addf(&m, " -q -o %s %s 2>%s", at("plain.h5"), at("plain.txt"), at("m.err"));
    unlink(at("plain.h5"));
    unlink(at("plain.h5.mpxrec"));
    int rc = run(&m);
    /* each twice: cat no-such-file, ./notexec, the two missing programs
     * and /etc; in round 0 also mpxplain, not on the PATH then */
    int want = round == 0 ? 12 : 10;
    CU_ASSERT_EQUAL(rc, want);
    if (rc != want)
      fprintf(stderr, "\n  round %d: exit %d: %s\n", round, rc,
              rc_slurp(at("m.err")));
    str a = {0};
    addf(&a, "pairs %s %d", at("plain.h5"), 2 * NP);
    CU_ASSERT_EQUAL(py(a.p), 0);
    sfree(&a);
  }
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: test_mpxrun MPX_RUN MPIEXEC \"MPIEXEC FLAGS\" "
                    "PY_DIR\n");
    return 2;
  }
  mpxrun = argv[1];
  mpiexec = argv[2];
  flags = argv[3];
  pydir = argv[4];
  if (rc_cunit_init(root, sizeof root, "/tmp/mpx-run-XXXXXX") != 0)
    return 2;
  snprintf(dir, sizeof dir, "%s", root);
  have_parallel = system("command -v parallel >/dev/null 2>&1") == 0;
  if (!have_parallel)
    fprintf(stderr, "%s\n", NO_PARALLEL);
  /* GNU parallel keeps its state here, not in the user's home */
  setenv("PARALLEL_HOME", at("parallel-home"), 1);
  memset(big, 'x', 5000);
  memcpy(big + 2000, "/dir.d/", 7); /* something for {/} {//} {.} to cut */
  /* Two cases time a whole run (launch included): they run first, alone.
   * Then every other case runs side by side with two others, the longest
   * first: most of their time is mpirun's start and end, and sleeps. */
  CU_pSuite s = CU_add_suite("mpx-run", NULL, NULL);
  CU_add_test(s, "12. --task-time (a stand-in squeue)", test_task_time);
  CU_add_test(s, "6. --timeout", test_timeout);
  rc_add_case(s, "5. kill -9 at random moments, --resume -o", test_kill);
  rc_add_case(s, "7. --halt now/soon vs parallel", test_halt);
  rc_add_case(s, "3. --resume, --resume-failed vs parallel", test_resume);
  for (int t = 0; t < 6; t++) {
    char name[300];
    snprintf(name, sizeof name,
             "1. replacement strings and quoting vs parallel -k: %s",
             templates[t]);
    rc_add_case_arg(s, name, replacements, t);
  }
  rc_add_case(s, "1. ... 1 and 2 ranks, commands on stdin and in files",
              test_repl_more);
  rc_add_case(s, "11. SIGUSR1 mid-run: grace, 102, --resume", test_stop_signal);
  rc_add_case(s, "4. -o out.h5 (h5py), existing output, --overwrite",
              test_output);
  rc_add_case(s, "8. bad input", test_bad_input);
  rc_add_case(s, "8. bad input, more", test_bad_input2);
  rc_add_case(s, "13. plain commands without the shell, as with it",
              test_plain);
  rc_add_case(s, "10. --results vs parallel --results", test_results);
  rc_add_case(s, "9. --env and --wd", test_env_wd);
  rc_add_case(s, "2. joblog vs parallel --joblog", test_joblog);
  double t0 = rc_now();
  int rc = rc_cunit_run(root);
  printf("test_mpxrun: %.1f s\n", rc_now() - t0);
  return rc;
}
