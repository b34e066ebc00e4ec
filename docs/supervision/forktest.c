/* forktest.c - Design A correctness/cost: fork() after MPI_Init_thread.
 * usage: forktest MODE NFORK [HEAPMB] [H5]
 *  MODE: normal (_exit(0)), exit (exit(0): atexit handlers), segv, abort,
 *        touch (child writes into MPI recv/send buffers then _exit),
 *        touchexit (touch + exit(0)), mix (cycle through all)
 *  NFORK: forks per rank (every rank, incl. 0, forks)
 *  HEAPMB: touched heap in MiB before measuring fork latency (default 0)
 *  H5: if "h5", call H5open() (and create/close a file via MPI-IO on COMM_SELF)
 * first Between forks: 4 round trips rank0<->every other rank (small + 256 KiB
 * msg, content verified). At end: 2000 small round trips + barrier + finalize.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef WITH_H5
#include <hdf5.h>
#endif

static int rank, size;
#define BIG (256 * 1024)
static char *sbuf, *rbuf;

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static long bad = 0;
static void exchange(int iters, int big, int tag) {
  for (int it = 0; it < iters; it++) {
    int n = big ? BIG : 8;
    if (rank == 0) {
      for (int p = 1; p < size; p++) {
        memset(sbuf, (char)(it + p), n);
        MPI_Send(sbuf, n, MPI_CHAR, p, tag, MPI_COMM_WORLD);
        MPI_Recv(rbuf, n, MPI_CHAR, p, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        for (int i = 0; i < n; i++)
          if (rbuf[i] != (char)(it + p + 1)) {
            bad++;
            break;
          }
      }
    } else {
      MPI_Recv(rbuf, n, MPI_CHAR, 0, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      for (int i = 0; i < n; i++)
        if (rbuf[i] != (char)(it + rank)) {
          bad++;
          break;
        }
      memset(sbuf, (char)(it + rank + 1), n);
      MPI_Send(sbuf, n, MPI_CHAR, 0, tag, MPI_COMM_WORLD);
    }
  }
}

/* names of /dev/shm entries present now */
static char shm[256][256];
static int nshm;
static void snap_shm(void) {
  DIR *d = opendir("/dev/shm");
  struct dirent *e;
  nshm = 0;
  while (d && (e = readdir(d)) && nshm < 256)
    if (e->d_name[0] != '.')
      snprintf(shm[nshm++], 256, "%s", e->d_name);
  if (d)
    closedir(d);
}
static int lost_shm(void) {
  int lost = 0;
  char p[300];
  struct stat st;
  for (int i = 0; i < nshm; i++) {
    snprintf(p, sizeof p, "/dev/shm/%s", shm[i]);
    if (stat(p, &st) != 0) {
      fprintf(stderr, "[%d] /dev/shm/%s disappeared\n", rank, shm[i]);
      lost++;
    }
  }
  return lost;
}

static void atexit_probe(void) { /* shows the child runs atexit handlers */
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "normal";
  int nfork = argc > 2 ? atoi(argv[2]) : 100;
  long heapmb = argc > 3 ? atol(argv[3]) : 0;
  int h5 = argc > 4 && !strcmp(argv[4], "h5");
  int prov;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &prov);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  atexit(atexit_probe);
  sbuf = malloc(BIG);
  rbuf = malloc(BIG);
#ifdef WITH_H5
  if (h5) {
    H5open();
    char fn[64];
    snprintf(fn, sizeof fn, "/tmp/mpx-forktest-h5_%d.h5", rank);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, MPI_COMM_SELF, MPI_INFO_NULL);
    hid_t f = H5Fcreate(fn, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    H5Fclose(f); /* a second file is kept open across the forks */
    snprintf(fn, sizeof fn, "/tmp/mpx-forktest-h5o_%d.h5", rank);
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, MPI_COMM_SELF, MPI_INFO_NULL);
    static hid_t keep;
    keep = H5Fcreate(fn, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    (void)keep;
  }
#endif
  exchange(200, 0, 1);
  exchange(20, 1, 2);
  char *heap = NULL;
  if (heapmb) {
    heap = malloc(heapmb << 20);
    memset(heap, 1, heapmb << 20);
  }
  snap_shm();
  static const char *modes[] = {"normal", "exit",  "segv",
                                "abort",  "touch", "touchexit"};
  double *lat_fork = malloc(nfork * sizeof(double)),
         *lat_cycle = malloc(nfork * sizeof(double));
  long unexpected = 0, lost = 0;
  for (int i = 0; i < nfork; i++) {
    const char *m = strcmp(mode, "mix") ? mode : modes[i % 6];
    double t0 = now_us();
    pid_t pid = fork();
    if (pid == 0) {
      if (!strncmp(m, "touch", 5)) {
        memset(rbuf, 0x5a, BIG);
        memset(sbuf, 0x5a, BIG);
      }
      if (!strcmp(m, "normal") || !strcmp(m, "touch"))
        _exit(0);
      if (!strcmp(m, "exit") || !strcmp(m, "touchexit"))
        exit(0);
      if (!strcmp(m, "segv")) {
        signal(SIGSEGV, SIG_DFL);
        raise(SIGSEGV);
      }
      if (!strcmp(m, "abort"))
        abort();
      _exit(3);
    }
    double t1 = now_us();
    int st;
    waitpid(pid, &st, 0);
    double t2 = now_us();
    lat_fork[i] = t1 - t0;
    lat_cycle[i] = t2 - t0;
    int expsig = !strcmp(m, "segv")    ? SIGSEGV
                 : !strcmp(m, "abort") ? SIGABRT
                                       : 0;
    if (expsig ? !(WIFSIGNALED(st) && WTERMSIG(st) == expsig)
               : !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
      unexpected++;
      if (unexpected < 5)
        fprintf(stderr, "[%d] fork %d mode %s: status 0x%x\n", rank, i, m, st);
    }
    if (i % 50 == 0)
      lost += lost_shm();
    exchange(3, 0, 3);
    exchange(1, 1, 4);
  }
  double t0 = now_us();
  exchange(2000, 0, 5);
  exchange(100, 1, 6);
  double tex = now_us() - t0;
  lost += lost_shm();
  qsort(lat_fork, nfork, sizeof(double), cmpd);
  qsort(lat_cycle, nfork, sizeof(double), cmpd);
  printf(
      "rank %d mode %s nfork %d heap %ldMiB h5 %d: fork() med %.1f us p10 %.1f "
      "p90 %.1f | fork+exit+wait med %.1f p10 %.1f p90 %.1f us | unexpected "
      "%ld badmsg %ld lostshm %ld | final 2000 rt+100 big %.1f ms\n",
      rank, mode, nfork, heapmb, h5, lat_fork[nfork / 2], lat_fork[nfork / 10],
      lat_fork[nfork * 9 / 10], lat_cycle[nfork / 2], lat_cycle[nfork / 10],
      lat_cycle[nfork * 9 / 10], unexpected, bad, lost, tex / 1e3);
  fflush(stdout);
  MPI_Barrier(MPI_COMM_WORLD);
  long tot;
  MPI_Allreduce(&bad, &tot, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0)
    printf("TOTAL badmsg %ld\n", tot);
  free(heap);
  MPI_Finalize();
  return 0;
}
