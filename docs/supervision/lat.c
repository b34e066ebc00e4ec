/* lat.c - cost measurements. Build with and without -DUSE_MPI.
 * usage: lat HEAPMB N
 * Rank 0 (or the lone process) measures, other ranks wait in MPI_Barrier.
 *  fork:      fork() return in parent; fork+_exit+waitpid cycle
 *  vfork:     vfork+_exit+waitpid
 *  spawn:     posix_spawn(/proc/self/exe, env LAT_HOST=1) -> host writes 1 byte
 * "ready" -> parent reads -> host exits, waitpid pipe rtt:  persistent child
 * (forked), 8-byte arg -> 8-byte result, over a pipe pair shm rtt:   same over
 * a shared-memory mailbox with futex wait/wake (spin first 2000 iterations)
 *  respawn:   SIGKILL the persistent child; detect via poll() POLLHUP on result
 * pipe, waitpid, fork a new one and do one round trip -> total ms
 */
#define _GNU_SOURCE
#ifdef USE_MPI
#include <mpi.h>
#endif
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
extern char **environ;

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static void report(const char *what, double *v, int n) {
  fflush(stdout);
  qsort(v, n, sizeof(double), cmpd);
  printf("  %-34s n=%d med %9.1f us  p10 %9.1f  p90 %9.1f  min %9.1f\n", what,
         n, v[n / 2], v[n / 10], v[n * 9 / 10], v[0]);
  fflush(stdout);
}
static uint64_t task(uint64_t x) {
  return x * 2654435761u + 1;
}

/* ---- shared-memory mailbox ---- */
struct mbox {
  _Atomic uint32_t req, rsp;
  uint64_t arg, res;
};
static void fwait(_Atomic uint32_t *a, uint32_t old) {
  for (int i = 0; i < 2000; i++) {
    if (atomic_load(a) != old)
      return;
    __builtin_ia32_pause();
  }
  while (atomic_load(a) == old)
    syscall(SYS_futex, a, FUTEX_WAIT, old, NULL, NULL, 0);
}
static void fwake(_Atomic uint32_t *a) {
  atomic_fetch_add(a, 1);
  syscall(SYS_futex, a, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static int
host_main(void) { /* re-exec'ed task host: say ready, serve pipe 0->1 */
  char c = 'r';
  if (write(1, &c, 1) != 1)
    return 1;
  uint64_t x;
  while (read(0, &x, 8) == 8) {
    x = task(x);
    if (write(1, &x, 8) != 8)
      break;
  }
  return 0;
}

static pid_t start_pipe_child(int *wfd, int *rfd) {
  int a[2], b[2];
  if (pipe2(a, O_CLOEXEC) || pipe2(b, O_CLOEXEC))
    abort();
  pid_t p = fork();
  if (p == 0) {
    close(a[1]);
    close(b[0]);
    uint64_t x;
    while (read(a[0], &x, 8) == 8) {
      x = task(x);
      if (write(b[1], &x, 8) != 8)
        break;
    }
    _exit(0);
  }
  close(a[0]);
  close(b[1]);
  *wfd = a[1];
  *rfd = b[0];
  return p;
}

int main(int argc, char **argv) {
  if (getenv("LAT_HOST"))
    return host_main();
  long heapmb = argc > 1 ? atol(argv[1]) : 0;
  int N = argc > 2 ? atoi(argv[2]) : 200;
  int rank = 0, size = 1;
#ifdef USE_MPI
  int prov;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &prov);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  {
    int x = 1, y;
    MPI_Allreduce(&x, &y, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  }
#endif
  if (rank == 0) {
    char *heap = NULL;
    if (heapmb) {
      heap = malloc(heapmb << 20);
      memset(heap, 1, heapmb << 20);
    }
    printf("lat: mpi=%d size=%d heap=%ldMiB\n",
#ifdef USE_MPI
           1,
#else
           0,
#endif
           size, heapmb);
    double *a = malloc(N * sizeof(double)), *b = malloc(N * sizeof(double));
    for (int i = 0; i < N; i++) {
      double t0 = now_us();
      pid_t p = fork();
      if (p == 0)
        _exit(0);
      double t1 = now_us();
      waitpid(p, NULL, 0);
      a[i] = t1 - t0;
      b[i] = now_us() - t0;
    }
    report("fork() return (parent)", a, N);
    report("fork+_exit+waitpid", b, N);
    for (int i = 0; i < N; i++) {
      double t0 = now_us();
      pid_t p = vfork();
      if (p == 0)
        _exit(0);
      waitpid(p, NULL, 0);
      a[i] = now_us() - t0;
    }
    report("vfork+_exit+waitpid", a, N);
    /* posix_spawn of /proc/self/exe as host */
    char **env;
    int ne = 0;
    while (environ[ne])
      ne++;
    env = calloc(ne + 2, sizeof(char *));
    memcpy(env, environ, ne * sizeof(char *));
    env[ne] = "LAT_HOST=1";
    int n2 = N < 100 ? N : 100;
    for (int i = 0; i < n2; i++) {
      int in[2], out[2];
      pipe2(in, O_CLOEXEC);
      pipe2(out, O_CLOEXEC);
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_adddup2(&fa, in[0], 0);
      posix_spawn_file_actions_adddup2(&fa, out[1], 1);
      char *av[] = {"lathost", NULL};
      pid_t p;
      double t0 = now_us();
      if (posix_spawn(&p, "/proc/self/exe", &fa, NULL, av, env))
        abort();
      double t1 = now_us();
      close(in[0]);
      close(out[1]);
      char c;
      read(out[0], &c, 1);
      double t2 = now_us();
      close(in[1]);
      waitpid(p, NULL, 0);
      close(out[0]);
      posix_spawn_file_actions_destroy(&fa);
      a[i] = t1 - t0;
      b[i] = t2 - t0;
    }
    report("posix_spawn() return", a, n2);
    report("posix_spawn->host ready", b, n2);
    /* persistent child over pipes */
    int w, r;
    pid_t p = start_pipe_child(&w, &r);
    int M = 20000;
    double *c = malloc(M * sizeof(double));
    uint64_t x = 1, y;
    for (int i = 0; i < M; i++) {
      double t0 = now_us();
      write(w, &x, 8);
      read(r, &y, 8);
      c[i] = now_us() - t0;
      if (y != task(x)) {
        printf("bad\n");
      }
      x = y;
    }
    report("pipe round trip (persistent child)", c, M);
    /* respawn cost */
    for (int i = 0; i < n2; i++) {
      double t0 = now_us();
      kill(p, SIGKILL);
      struct pollfd pf = {r, POLLIN, 0};
      poll(&pf, 1, -1); /* POLLHUP */
      double t1 = now_us();
      waitpid(p, NULL, 0);
      close(w);
      close(r);
      p = start_pipe_child(&w, &r);
      write(w, &x, 8);
      read(r, &y, 8);
      a[i] = t1 - t0;
      b[i] = now_us() - t0;
    }
    report("kill -> POLLHUP seen", a, n2);
    report("kill -> respawned + 1 task done", b, n2);
    close(w);
    close(r);
    waitpid(p, NULL, 0);
    /* shared memory mailbox */
    struct mbox *mb = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    memset(mb, 0, sizeof *mb);
    p = fork();
    if (p == 0) {
      uint32_t seen = 0;
      for (;;) {
        fwait(&mb->req, seen);
        seen = atomic_load(&mb->req);
        if (mb->arg == 0)
          _exit(0);
        mb->res = task(mb->arg);
        fwake(&mb->rsp);
      }
    }
    uint32_t rs = 0;
    x = 1;
    for (int i = 0; i < M; i++) {
      double t0 = now_us();
      mb->arg = x;
      fwake(&mb->req);
      fwait(&mb->rsp, rs);
      rs = atomic_load(&mb->rsp);
      y = mb->res;
      c[i] = now_us() - t0;
      if (y != task(x))
        printf("bad shm\n");
      x = y;
    }
    report("shm+futex round trip (spin 2000)", c, M);
    mb->arg = 0;
    fwake(&mb->req);
    waitpid(p, NULL, 0);
    free(heap);
  }
#ifdef USE_MPI
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Finalize();
#endif
  return 0;
}
