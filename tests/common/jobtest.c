#define _GNU_SOURCE
/*
 * jobtest.c -- see jobtest.h.
 */
#include "jobtest.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runcmd.h"

int jt_args(int argc, char **argv, const char *usage, jt_w4job *w,
            const char **last) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s\n", usage);
    return -1;
  }
  w->path = argv[1];
  w->mpiexec = argv[2];
  w->flags = argv[3];
  w->exec = 0;
  *last = argv[4];
  return 0;
}

void jt_job_cmd(char *buf, size_t cap, const jt_w4job *w, int delay_us,
                const char *env, const char *out, const char *extra) {
  /* The variables reach the ranks as the launcher's environment: both
   * Open MPI's mpirun and MPICH's Hydra pass it to the ranks they start on
   * their own node (no -x, an Open MPI flag). */
  snprintf(buf, cap,
           "%senv MPX_W4_DELAY_US=%d %s %s -n 3 %s "
           "%s --out %s --items %d --parts %d --commit 0.1 %s",
           w->exec ? "exec " : "", delay_us, env, w->mpiexec, w->flags, w->path,
           out, JT_ITEMS, JT_PARTS, extra);
}

/* The first complete line of the record text s at or after p that starts
 * with "commit items=", or NULL when there is none (a line without its
 * newline is torn, and the last). */
static const char *next_commit(const char *s, const char *p) {
  for (; (p = strstr(p, "commit items=")) != NULL; p++) {
    if (p != s && p[-1] != '\n')
      continue;
    return strchr(p, '\n') ? p : NULL;
  }
  return NULL;
}

long jt_recorded_items(const char *rec) {
  const char *s = rc_slurp(rec);
  long items = 0;
  for (const char *p = s; (p = next_commit(s, p)) != NULL; p++)
    items = strtol(p + 13, NULL, 10);
  return items;
}

int jt_record_has(const char *rec, long items) {
  char want[64];
  int n = snprintf(want, sizeof want, "commit items=%ld ", items);
  const char *s = rc_slurp(rec);
  for (const char *p = s; (p = next_commit(s, p)) != NULL; p++)
    if (strncmp(p, want, (size_t)n) == 0)
      return 1;
  return 0;
}

int jt_parse_report(const char *text, char *rc, long *recorded,
                    long *computed) {
  const char *p = strstr(text, "job: rc=");
  if (!p)
    return -1;
  return sscanf(p, "job: rc=%31s items=%*d recorded=%ld computed=%ld", rc,
                recorded, computed) == 3
             ? 0
             : -1;
}

int jt_log_report(const char *log, char *rc, long *recorded, long *computed) {
  return jt_parse_report(rc_slurp(log), rc, recorded, computed);
}

int jt_job_alive(const char *out) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "pgrep -f -- '[-]-out %s ' >/dev/null", out);
  return system(cmd) == 0;
}

int jt_wait_gone(const char *out) {
  for (int i = 0; i < 200 && jt_job_alive(out); i++)
    usleep(50000);
  return !jt_job_alive(out);
}

int jt_signal_job(const char *out, const char *sig) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "pkill -%s -f -- '[-]-out %s '", sig, out);
  return system(cmd) == 0;
}

void jt_md5(const char *path, char sum[33]) {
  char cmd[1300]; /* paths of up to 1200 bytes and the command */
  sum[0] = '\0';
  if (access(path, R_OK) != 0)
    return;
  snprintf(cmd, sizeof cmd, "md5sum < '%s'", path);
  FILE *p = popen(cmd, "r");
  if (!p)
    return;
  if (fscanf(p, "%32s", sum) != 1)
    sum[0] = '\0';
  pclose(p);
}

void jt_job_md5(const char *out, jt_sums *s) {
  char rec[1200];
  snprintf(rec, sizeof rec, "%s.mpxrec", out);
  jt_md5(out, s->out);
  jt_md5(rec, s->rec);
}

int jt_py(const char *dir, const char *script, const char *args,
          const char *log) {
  char *cmd = NULL; /* any length: some checks take hundreds of files */
  if (asprintf(&cmd, "/usr/bin/python3 %s%s%s %s", dir ? dir : "",
               dir ? "/" : "", script, args) < 0)
    return -1;
  int rc = rc_run(cmd, log);
  free(cmd);
  return rc;
}

/* Whether c belongs to a name (or number). */
static int word_char(char c) {
  return isalnum((unsigned char)c) || c == '-' || c == '_';
}

int jt_has_word(const char *s, const char *w) {
  size_t n = strlen(w);
  for (const char *p = s; (p = strstr(p, w)) != NULL; p++)
    if ((p == s || !word_char(p[-1]) || !word_char(w[0])) && !word_char(p[n]))
      return 1;
  return 0;
}

int jt_finish_within(pid_t pid, const char *out, double timeout) {
  double until = rc_now() + timeout;
  int status;
  while (!rc_poll(pid, &status)) {
    if (rc_now() > until) {
      fprintf(stderr, "run on %s still going after %.0f s: killed\n", out,
              timeout);
      kill(-pid, SIGKILL);
      if (!jt_signal_job(out, "KILL"))
        fprintf(stderr, "pkill -KILL found nothing for %s\n", out);
      rc_finish(pid);
      jt_wait_gone(out);
      return -1;
    }
    usleep(5000);
  }
  return status;
}
