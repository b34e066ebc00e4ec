#!/usr/bin/env bash
# bench_mpxrun.sh -- mpx-run against the shell task farms, W = 2 workers
# each, whole runs timed from outside, every variant of a workload taken
# in turn for R rounds (default 5) so that the machine's drift hits them
# alike. Prints each variant's median [min-max] seconds and the ratios the
# README quotes.
#
# Workloads (sizes from the environment):
#   true   N_TRUE (10,000) `true` commands
#   sleep  N_SLEEP (2,000) `sleep 0.01` commands
#   out    N_OUT (2,000) commands printing 100 B, then 100 KiB (`cat F`),
#          mpx-run without -o (the outputs to /dev/null) and with -o
# Variants of true and sleep:
#   mpx-run          mpirun -n 3 mpx-run FILE (rank 0 + 2 workers)
#   mpx-run -o       the same, every result in one HDF5 file
#   parallel -j2     GNU parallel
#   xargs -P 2       xargs -P 2 -I{} sh -c {} (one shell a command: the
#                    floor of fork+exec for shell command lines)
#   exec floor       a 40-line C loop keeping 2 commands running, each
#                    line's words started with posix_spawnp, no shell (as
#                    mpx-run starts such plain commands) and nothing else:
#                    what the processes themselves cost on this machine;
#                    no farm of 2 workers can be faster
#   disBatch-style   a Python loop as disBatch's engine runs tasks: 2
#                    threads, each taking the next line, running it with
#                    subprocess (shell=True) and appending a status line
#
#   BUILD_DIR=build R=5 WORKLOADS="true sleep out" bash scripts/bench_mpxrun.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD_DIR:-build}/apps/mpx-run
R=${R:-5}
N_TRUE=${N_TRUE:-10000}
N_SLEEP=${N_SLEEP:-2000}
N_OUT=${N_OUT:-2000}
WORKLOADS=${WORKLOADS:-true sleep out}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
T=$(mktemp -d /tmp/mpx-bench-run-XXXXXX)
trap 'rm -rf "$T"' EXIT
# The launcher of the build's MPI, as CMake found it (MPICH: mpiexec.mpich,
# no Open MPI flags).
. scripts/launcher.sh
MPI=$(mpx_launcher "${BUILD_DIR:-build}" 3 --oversubscribe)
[ -x "$B" ] || { echo "no $B: build first (bash scripts/build.sh)" >&2; exit 1; }
command -v parallel > /dev/null || { echo "no GNU parallel (scripts/setup.sh)" >&2; exit 1; }

lines() { awk -v n="$1" -v c="$2" 'BEGIN { for (i = 0; i < n; i++) print c }'; }
lines "$N_TRUE" true > "$T/true.txt"
lines "$N_SLEEP" 'sleep 0.01' > "$T/sleep.txt"
/usr/bin/python3 -c 'import sys
for n, p in ((100, "f100"), (102400, "f100k")):
    open(sys.argv[1] + "/" + p, "w").write(("0123456789abcdef" * 6400 + "\n")[:n - 1] + "\n")' "$T"
lines "$N_OUT" "cat $T/f100" > "$T/out100.txt"
lines "$N_OUT" "cat $T/f100k" > "$T/out100k.txt"

cat > "$T/disbatch.py" <<'PY'
import subprocess, sys, threading, time
cmds = [l.rstrip("\n") for l in open(sys.argv[1])]
status = open(sys.argv[2], "w")
lock = threading.Lock()
nxt = 0
def engine():
    global nxt
    while True:
        with lock:
            i = nxt
            nxt += 1
        if i >= len(cmds):
            return
        t0 = time.time()
        rc = subprocess.run(cmds[i], shell=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode
        with lock:
            status.write(f"{i}\t{rc}\t{t0:.3f}\t{time.time():.3f}\t{cmds[i]}\n")
            status.flush()
ts = [threading.Thread(target=engine) for _ in range(int(sys.argv[3]))]
for t in ts: t.start()
for t in ts: t.join()
PY

cat > "$T/floor.c" <<'C'
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
extern char **environ;
int main(int argc, char **argv) {
  int w = atoi(argv[1]), running = 0, bad = 0;
  FILE *f = fopen(argv[2], "r");
  char line[4096];
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  for (;;) {
    int more = f && fgets(line, sizeof line, f) != NULL;
    if (!more && running == 0)
      break;
    if (running == w || !more) {
      int st;
      if (wait(&st) > 0) {
        running--;
        bad += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
      }
    }
    if (!more)
      continue;
    char *av[64];
    int n = 0;
    for (char *t = strtok(line, " \t\n"); t && n < 63; t = strtok(NULL, " \t\n"))
      av[n++] = t;
    av[n] = NULL;
    pid_t pid;
    if (n && posix_spawnp(&pid, av[0], &fa, NULL, av, environ) == 0)
      running++;
    else
      bad++;
  }
  return bad != 0;
}
C
cc -O2 -include fcntl.h -o "$T/floor" "$T/floor.c"

run() { # workload name command...
  local w=$1 name=$2
  shift 2
  rm -f "$T"/o.h5*
  local s e
  s=$(date +%s.%N)
  "$@" > /dev/null 2>&1 || { echo "$w: $name failed" >&2; exit 1; }
  e=$(date +%s.%N)
  echo "$w|$name|$(echo "$e - $s" | bc)" >> "$T/times"
}
farms() { # workload file
  run "$1" "mpx-run" $MPI "$B" -q "$2"
  run "$1" "mpx-run -o" $MPI "$B" -q -o "$T/o.h5" "$2"
  run "$1" "parallel -j2" parallel -j2 -a "$2"
  run "$1" "xargs -P 2" xargs -P 2 -I{} sh -c {} < "$2"
  run "$1" "exec floor" "$T/floor" 2 "$2"
  run "$1" "disBatch-style" /usr/bin/python3 "$T/disbatch.py" "$2" "$T/status" 2
}
for r in $(seq "$R"); do
  echo "round $r of $R" >&2
  for w in $WORKLOADS; do
    case $w in
      true) farms true "$T/true.txt" ;;
      sleep) farms sleep "$T/sleep.txt" ;;
      out)
        run out "100 B" $MPI "$B" -q "$T/out100.txt"
        run out "100 B -o" $MPI "$B" -q -o "$T/o.h5" "$T/out100.txt"
        run out "100 KiB" $MPI "$B" -q "$T/out100k.txt"
        run out "100 KiB -o" $MPI "$B" -q -o "$T/o.h5" "$T/out100k.txt"
        ;;
      *) echo "unknown workload $w" >&2; exit 2 ;;
    esac
  done
done
/usr/bin/python3 - "$T/times" "$N_TRUE" "$N_SLEEP" "$N_OUT" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    w, name, t = line.rstrip("\n").split("|")
    runs.setdefault(w, {}).setdefault(name, []).append(float(t))
sizes = {"true": int(sys.argv[2]), "sleep": int(sys.argv[3]), "out": int(sys.argv[4])}
med = lambda ts: statistics.median(ts)
for w, by in runs.items():
    n = sizes[w]
    print(f"== {w}: {n} commands, {len(next(iter(by.values())))} rounds")
    for name, ts in by.items():
        m = med(ts)
        print(f"  {name:16s} {m:7.2f} s [{min(ts):.2f}-{max(ts):.2f}]"
              f"  {n / m:7.0f} commands/s  {1000 * m / n:6.2f} ms each")
    if "mpx-run" in by and w != "out":
        base = med(by["mpx-run"])
        for peer in ("parallel -j2", "xargs -P 2", "exec floor", "disBatch-style"):
            if peer in by:
                print(f"  mpx-run throughput / {peer}: {med(by[peer]) / base:.2f}")
        if "exec floor" in by and "parallel -j2" in by:
            print(f"  the exec floor's throughput / parallel -j2: "
                  f"{med(by['parallel -j2']) / med(by['exec floor']):.2f}"
                  f" (the most any farm of 2 could reach here)")
        if "mpx-run -o" in by:
            print(f"  mpx-run -o throughput / parallel -j2: "
                  f"{med(by['parallel -j2']) / med(by['mpx-run -o']):.2f},"
                  f" / xargs -P 2: {med(by['xargs -P 2']) / med(by['mpx-run -o']):.2f}")
    if w == "out":
        for size in ("100 B", "100 KiB"):
            if size in by and size + " -o" in by:
                d = med(by[size + " -o"]) - med(by[size])
                print(f"  -o costs {1e6 * d / n:7.1f} us per command printing {size}"
                      f" ({100 * d / med(by[size]):+.1f}%)")
PY
