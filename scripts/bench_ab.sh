#!/usr/bin/env bash
# bench_ab.sh -- two builds of mpx-bench (before/after a change) side by side
# at 3 ranks: tiny, latency, 1 ms spin and an ordered map of x*x in chunks
# of 256 (MAP inputs, 0 to leave it out), each with the manager thread and
# with caller progress, the builds alternating in every round so that the
# machine's drift hits them alike. Prints each case's median [min-max] and
# the ratio after/before (> 1: after is better).
#
#   A=/path/build-before B=/path/build-after R=5 bash scripts/bench_ab.sh
#
# Each side runs under its build's MPI launcher (an MPICH build's
# mpiexec.mpich, else "mpirun --oversubscribe --bind-to none -n 3"), so two
# MPIs can be set side by side (B=build-mpich); A_LAUNCH and B_LAUNCH
# override it.
#
# PROGRESS lists the progress modes to run (default "thread caller");
# "default" passes no --progress at all, so that a build from before
# caller progress existed (ca85a51 and older) runs its only mode against
# the other build's default: PROGRESS=default.
set -euo pipefail
cd "$(dirname "$0")/.."
A=${A:?A=build dir before}
B=${B:?B=build dir after}
R=${R:-5}
TINY=${TINY:-200000}
LAT=${LAT:-3000}
SPIN=${SPIN:-1000}
MAP=${MAP:-2000000}
PROGRESS=${PROGRESS:-thread caller}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp /tmp/mpx-bench-ab-XXXXXX)
trap 'rm -f "$out"' EXIT
for d in "$A" "$B"; do
  [ -x "$d/apps/mpx-bench" ] || { echo "no $d/apps/mpx-bench" >&2; exit 1; }
done
# A build's launcher as CMake found it: an MPICH build's mpiexec.mpich
# (no Open MPI flags), else Open MPI's mpirun with its flags for 2 cores.
. scripts/launcher.sh
A_LAUNCH=${A_LAUNCH:-$(mpx_launcher "$A" 3 --oversubscribe --bind-to none)}
B_LAUNCH=${B_LAUNCH:-$(mpx_launcher "$B" 3 --oversubscribe --bind-to none)}
one() { # build label progress workload args...
  local d=$1 label=$2 prog=$3
  shift 3
  local line launch=$A_LAUNCH
  [ "$label" = B ] && launch=$B_LAUNCH
  local flags=(--progress "$prog")
  [ "$prog" = default ] && flags=()
  line=$(timeout 300 $launch "$d/apps/mpx-bench" "$@" "${flags[@]}" |
    tail -n 1)
  echo "$label|$prog|$1|$line" >> "$out"
}
for r in $(seq "$R"); do
  echo "round $r of $R" >&2
  for prog in $PROGRESS; do
    for side in A B; do
      d=$A
      [ $side = B ] && d=$B
      one "$d" $side $prog tiny --tasks "$TINY"
      one "$d" $side $prog latency --tasks "$LAT"
      one "$d" $side $prog spin --tasks "$SPIN" --us 1000
      if [ "$MAP" -gt 0 ]; then
        one "$d" $side $prog map --tasks "$MAP" --chunksize 256
      fi
    done
  done
done
/usr/bin/python3 - "$out" "$A" "$B" "$A_LAUNCH" "$B_LAUNCH" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    side, prog, wl, js = line.rstrip("\n").split("|", 3)
    j = json.loads(js)
    key = {"tiny": "tasks_per_s", "latency": "p50_us", "spin": "efficiency",
           "map": "tasks_per_s"}[wl]
    runs.setdefault((wl, prog), {}).setdefault(side, []).append(j[key])
print(f"A = {sys.argv[2]} ({sys.argv[4]}), B = {sys.argv[3]} ({sys.argv[5]})")
for (wl, prog), by in sorted(runs.items()):
    a, b = by.get("A", []), by.get("B", [])
    ma, mb = statistics.median(a), statistics.median(b)
    better = ma / mb if wl == "latency" else mb / ma
    unit = {"tiny": "tasks/s", "latency": "us p50", "spin": "efficiency",
            "map": "inputs/s"}[wl]
    print(f"{wl:8s} {prog:7s} A {ma:12.4g} [{min(a):.4g}-{max(a):.4g}]"
          f"  B {mb:12.4g} [{min(b):.4g}-{max(b):.4g}] {unit:10s} B/A {better:.3f}")
for wl in ("tiny", "latency", "spin", "map"):
    t, c = runs.get((wl, "thread"), {}).get("B"), runs.get((wl, "caller"), {}).get("B")
    if t and c:
        mt, mc = statistics.median(t), statistics.median(c)
        r = mt / mc if wl == "latency" else mc / mt
        print(f"B, caller progress against the manager thread: {wl} {r:.3f}")
PY
