#!/usr/bin/env bash
# calibrate.sh -- the simulation against the real code on this machine:
# the same mpx-bench cases run for real (R times, under the build's MPI
# launcher) and simulated on the platform "here" (one node of this
# machine's 2 cores; SimGrid is deterministic, so once), at 3 and 16
# ranks, with caller progress. Prints a JSON line per run and a table:
# each case's real median [min-max], the simulated figure, and sim/real.
#
#   BUILD_DIR=build R=5 bash scripts/calibrate.sh [--ranks "3 16"]
#
# Figures compared: tasks/s (tiny, map), efficiency (spin), and the root's
# cost per task: real, the root process's CPU seconds over the run
# (root_cpu_s) per task; simulated, root_busy x seconds per task; and the
# tasks per call message the root sent (tasks_per_call), its batching.
# Where there are more ranks than cores (16 on 2), idle workers sleep at
# once (MPX_WORKER_SPIN_US=0) in both: a spinning worker would take CPU
# from the ones that compute, which SimGrid does not model (it charges
# polls as sleeps, docs/simulation.md); with a core each they spin 200 µs
# as by default.
# Needs a quiet machine: anything else running shows in the real column.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
R=${R:-5}
sizes="3 16"
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) sizes=$2; shift 2 ;;
    *) sed -n '2,18p' "$0" >&2; exit 2 ;;
  esac
done
bench=$BUILD_DIR/apps/mpx-bench
[ -x "$bench" ] || { echo "calibrate.sh: no $bench (bash scripts/build.sh)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
. scripts/launcher.sh
out=$(mktemp /tmp/mpx-calibrate-XXXXXX)
trap 'rm -f "$out"' EXIT

# The cases: workload, µs per task, tasks at 3 ranks, tasks at 16 ranks.
cases=("tiny 0 200000 200000" "spin 1000 1000 2000" "spin 10000 200 300"
       "map 0 2000000 2000000")
args_of() { # workload us tasks
  local a=("$1" --tasks "$3" --progress caller)
  [ "$1" = spin ] && a+=(--us "$2")
  [ "$1" = map ] && a+=(--chunksize 64)
  echo "${a[@]}"
}
for np in $sizes; do
  launch=$(mpx_launcher "$BUILD_DIR" "$np" --oversubscribe --bind-to none)
  if [ "$np" -gt "$(nproc)" ]; then export MPX_WORKER_SPIN_US=0; else unset MPX_WORKER_SPIN_US; fi
  for c in "${cases[@]}"; do
    set -- $c
    n=$3
    [ "$np" -gt 3 ] && n=$4
    for r in $(seq "$R"); do
      line=$(timeout 600 $launch "$bench" $(args_of "$1" "$2" "$n") | grep '^{' | tail -n 1)
      echo "real|$np|$1|$2|$line" | tee -a "$out"
    done
    line=$(scripts/simulate.sh --platform here --ranks "$np" \
      --workload "$1" --us "$2" --tasks "$n" --chunksize 64 --dispatcher flat | tail -n 1)
    echo "sim|$np|$1|$2|$line" | tee -a "$out"
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
real, sim = {}, {}
for line in open(sys.argv[1]):
    kind, np, wl, us, js = line.rstrip("\n").split("|", 4)
    if not js.strip():
        continue
    d = json.loads(js)
    key = (int(np), wl, int(us))
    (real if kind == "real" else sim).setdefault(key, []).append(d)

def metric(d):
    return d["efficiency"] if d["workload"] == "spin" else d["tasks_per_s"]

def root_us(d, kind):
    n = d["tasks"]
    if kind == "real":
        c = d.get("root_cpu_s")
        return None if c is None else 1e6 * c / n
    return 1e6 * d["root_busy"] * d["seconds"] / n

def fmt(v, wl):
    if v is None:
        return "–"
    return f"{v:.3f}" if wl == "spin" else f"{v:,.0f}"

print()
print("| ranks | case | real: median [min–max] | simulated | sim/real "
      "| root µs per task: real CPU median [min–max] | simulated "
      "| tasks per call message: real median | simulated |")
print("|---:|---|---|---|---|---|---|---|---|")
for key in sorted(real):
    np, wl, us = key
    rs = real[key]
    vals = sorted(metric(d) for d in rs)
    med = statistics.median(vals)
    s = sim.get(key, [None])[0]
    sv = metric(s) if s else None
    name = {"tiny": "tiny", "map": "map tiny, chunks of 64"}.get(wl, f"spin {us // 1000} ms")
    ru = sorted(x for x in (root_us(d, "real") for d in rs) if x is not None)
    rus = f"{statistics.median(ru):.2f} [{ru[0]:.2f}–{ru[-1]:.2f}]" if ru else "–"
    su = f"{root_us(s, 'sim'):.2f}" if s else "–"
    ratio = f"{sv / med:.2f}" if sv and med else "–"
    tp = [d["tasks_per_call"] for d in rs if d.get("tasks_per_call") is not None]
    tpr = f"{statistics.median(tp):.1f}" if tp else "–"
    tps = f"{s['tasks_per_call']:.1f}" if s and s.get("tasks_per_call") is not None else "–"
    print(f"| {np} | {name} | {fmt(med, wl)} [{fmt(vals[0], wl)}–{fmt(vals[-1], wl)}] "
          f"| {fmt(sv, wl)} | {ratio} | {rus} | {su} | {tpr} | {tps} |")
PY
