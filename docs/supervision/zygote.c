/* zygote.c - Design B: a helper forked BEFORE MPI_Init_thread; after MPI is up,
 * the rank asks it (socketpair) to fork task processes; each task computes,
 * writes its 8-byte result on the socket and exits (or crashes). The zygote
 * reports {result,status} per request. usage: zygote NTASK END   END: clean
 * (tell zygote to quit before Finalize), leave (zygote still alive at Finalize,
 * no PDEATHSIG), leavepd (alive, with PDEATHSIG), kill1 (rank 1 SIGKILLs itself
 * mid-run; zygote without PDEATHSIG), kill1pd (same with PDEATHSIG)
 */
#define _GNU_SOURCE
#include <mpi.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

struct req {
  int32_t kind;
  uint64_t arg;
}; /* kind 0 quit, 1 ok, 2 segv, 3 exit() */
struct rsp {
  int32_t status;
  uint64_t res;
};

static int stubborn;
static void zygote(int fd, int pd) {
  if (pd) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
      _exit(0);
  }
  struct req q;
  while (read(fd, &q, sizeof q) == sizeof q) {
    if (q.kind == 0)
      _exit(0);
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      close(p[0]);
      if (q.kind == 2)
        raise(SIGSEGV);
      uint64_t r = q.arg * 3 + 1;
      write(p[1], &r, 8);
      if (q.kind == 3)
        exit(0);
      _exit(0);
    }
    close(p[1]);
    struct rsp s = {0, 0};
    if (read(p[0], &s.res, 8) != 8)
      s.res = 0;
    close(p[0]);
    waitpid(c, &s.status, 0);
    write(fd, &s, sizeof s);
  }
  if (stubborn)
    sleep(20); /* outlive the rank on purpose */
  _exit(0);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 200;
  const char *end = argc > 2 ? argv[2] : "clean";
  int pd = strstr(end, "pd") != NULL;
  stubborn = strcmp(end, "clean") != 0;
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
  pid_t z = fork();
  if (z == 0) {
    close(sv[0]);
    zygote(sv[1], pd);
  }
  close(sv[1]);
  int prov, rank, size;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &prov);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  printf("rank %d pid %d zygote pid %d\n", rank, getpid(), z);
  fflush(stdout);
  double *lat = malloc(n * sizeof(double));
  int bad = 0;
  for (int i = 0; i < n; i++) {
    struct req q = {1 + (i % 10 == 9 ? 1 : i % 10 == 8 ? 2 : 0), (uint64_t)i};
    double t0 = now_us();
    write(sv[0], &q, sizeof q);
    struct rsp s;
    read(sv[0], &s, sizeof s);
    lat[i] = now_us() - t0;
    if (q.kind == 2 ? !(WIFSIGNALED(s.status) && WTERMSIG(s.status) == SIGSEGV)
                    : (s.status != 0 || s.res != q.arg * 3 + 1))
      bad++;
    int x = i, y;
    MPI_Allreduce(&x, &y, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (y != i * size)
      bad++;
    if (i == n / 2 && rank == 1 && !strncmp(end, "kill1", 5)) {
      printf("rank 1 kills itself\n");
      fflush(stdout);
      raise(SIGKILL);
    }
  }
  qsort(lat, n, sizeof(double), cmpd);
  printf("rank %d: %d tasks via zygote (fork per task): med %.1f us p10 %.1f "
         "p90 %.1f, bad %d\n",
         rank, n, lat[n / 2], lat[n / 10], lat[n * 9 / 10], bad);
  fflush(stdout);
  if (!strcmp(end, "clean")) {
    struct req q = {0, 0};
    write(sv[0], &q, sizeof q);
    waitpid(z, NULL, 0);
  }
  MPI_Finalize();
  return 0;
}
