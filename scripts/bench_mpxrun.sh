#!/usr/bin/env bash
# bench_mpxrun.sh -- mpx-run against GNU parallel on N `true` commands
# (default 4,000), 2 workers each, whole runs timed from outside, the
# variants taken in turn for R rounds (default 5) so that the machine's
# drift hits them alike; prints each variant's median [min-max] seconds.
#   BUILD_DIR=build N=4000 R=5 bash scripts/bench_mpxrun.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BUILD_DIR:-build}/apps/mpx-run
N=${N:-4000}
R=${R:-5}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
T=$(mktemp -d /tmp/mpx-bench-run-XXXXXX)
trap 'rm -rf "$T"' EXIT
yes true | head -n "$N" > "$T/cmds.txt"
MPI="mpirun --oversubscribe -n 3"
run() { # name command...
  local name=$1
  shift
  rm -f "$T"/o.h5*
  local s e
  s=$(date +%s.%N)
  "$@" > /dev/null 2>&1 || { echo "$name failed" >&2; exit 1; }
  e=$(date +%s.%N)
  echo "$name $(echo "$e - $s" | bc)" >> "$T/times"
}
for _ in $(seq "$R"); do
  run "mpirun -n 3 mpx-run" $MPI "$B" -q "$T/cmds.txt"
  run "mpirun -n 3 mpx-run -o run.h5 --commit 1" $MPI "$B" -q -o "$T/o.h5" --commit 1 "$T/cmds.txt"
  run "mpirun -n 3 mpx-run -o run.h5" $MPI "$B" -q -o "$T/o.h5" "$T/cmds.txt"
  if command -v parallel > /dev/null; then
    run "parallel -j2" parallel -j2 -a "$T/cmds.txt"
  fi
done
/usr/bin/python3 - "$T/times" "$N" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, t = line.rsplit(" ", 1)
    runs.setdefault(name, []).append(float(t))
n = int(sys.argv[2])
for name, ts in runs.items():
    m = statistics.median(ts)
    print(f"{name:45s} {m:6.2f} s [{min(ts):.2f}-{max(ts):.2f}]  {1000 * m / n:.1f} ms per command")
PY
