#!/usr/bin/env bash
# Runs mpx-bench, the real library, under SimGrid's SMPI (docs/simulation.md).
#
#   scripts/simulate.sh                     the sweep: tiny, spin 1 ms and
#                                           spin 10 ms at 64, 256, 1024,
#                                           4096 and 16384 ranks
#   scripts/simulate.sh --ranks R --workload tiny|spin|map [--us U]
#                       [--tasks N] [--chunksize C] [--inputs list|array]
#                                           one run (map: tiny tasks, or
#                                           spin U us, through an ordered
#                                           mpx_map of chunks of C, default
#                                           64; inputs from args[] or, with
#                                           array, mpx_map_create_array)
#   scripts/simulate.sh --plot PNG [--from SWEEP.jsonl...]
#                                           the sweep (or the JSON lines of
#                                           earlier ones) drawn with
#                                           scripts/smpi/plot.py: efficiency
#                                           and rank 0's busy share against
#                                           the ranks, per workload and
#                                           dispatcher
# Options: --platform cluster|here (cluster: 32-core nodes, 10 Gbps, 1 us
# links; here: this machine, 2 cores, for calibration), --sizes "64 256"
# (the sweep's rank counts), --progress caller|auto, --build-dir DIR
# (default build-smpi), --keep (keep the platform files), --dispatcher
# "flat node" (the dispatchers run, each an MPX_GROUP value: flat, one
# sub-manager per node, or groups of k ranks; default both).
# Each run prints one JSON line: workload, ranks, workers, tasks,
# tasks_per_s, efficiency (spin: N*U / (workers * simulated seconds); tiny:
# null), root_busy (share of simulated time rank 0 spent working the pool,
# not sleeping or polling in vain), plus us, seconds (simulated) and
# sim_wall_s (the real seconds the simulation took). Exit status 77 when
# SimGrid (smpicc, smpirun) is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
 chunksize=64 inputs=list ranks="" workload="" us="" tasks="" platform=cluster progress=caller dispatchers="flat node"
sizes="64 256 1024 4096 16384" bdir=build-smpi keep=0 plot="" from=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks=$2; shift 2 ;;
    --workload) workload=$2; shift 2 ;;
    --us) us=$2; shift 2 ;;
    --tasks) tasks=$2; shift 2 ;;
    --chunksize) chunksize=$2; shift 2 ;;
    --inputs) inputs=$2; shift 2 ;;
    --platform) platform=$2; shift 2 ;;
    --progress) progress=$2; shift 2 ;;
    --dispatcher) dispatchers=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --build-dir) bdir=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --plot) plot=$2; shift 2 ;;
    --from) from+=("$2"); shift 2 ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
  esac
done
if [ -n "$plot" ] && [ ${#from[@]} -gt 0 ]; then
  exec /usr/bin/python3 scripts/smpi/plot.py "${from[@]}" --out "$plot"
fi
case "$workload" in ""|tiny|spin|map) ;; *) echo "simulate.sh: workload tiny, spin or map" >&2; exit 2 ;; esac
case "$inputs" in list|array) ;; *) echo "simulate.sh: inputs list or array" >&2; exit 2 ;; esac
case "$platform" in cluster|here) ;; *) echo "simulate.sh: platform cluster or here" >&2; exit 2 ;; esac
if ! command -v smpicc >/dev/null || ! command -v smpirun >/dev/null; then
  echo "simulate.sh: SimGrid's smpicc/smpirun not found (Debian: libsimgrid-dev)" >&2
  exit 77
fi

# The SMPI build: libmpx inside the program, no HDF5, no tests.
if [ ! -x "$bdir/apps/mpx-bench" ] || [ -n "$(find lib apps/mpx-bench.c apps/w4.c -newer "$bdir/apps/mpx-bench" -print -quit)" ]; then
  CC=smpicc cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DMPX_SMPI=ON \
    -DMPX_WITH_HDF5=OFF -DMPX_BUILD_TESTS=OFF -DMPX_BUILD_APPS=OFF >/dev/null
  cmake --build "$bdir" -j"$(nproc)" >/dev/null
fi
bench=$(cd "$bdir/apps" && pwd)/mpx-bench

# Each simulated rank maps its own copy of the program (dlopen
# privatization) and a stack: about a dozen memory maps. Linux's default
# of 65,530 maps per process runs out near 5,000 ranks, where the
# simulation dies in mmap. Raise it when running as root, else say how.
most=${ranks:-0}
for r in $sizes; do [ -z "$ranks" ] && [ "$r" -gt "$most" ] && most=$r; done
want=$(( most * 16 ))
have=$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo "$want")
if [ "$have" -lt "$want" ]; then
  if [ "$(id -u)" = 0 ] && sysctl -q -w vm.max_map_count="$want" 2>/dev/null; then
    echo "simulate.sh: raised vm.max_map_count from $have to $want for $most ranks" >&2
  else
    echo "simulate.sh: $most simulated ranks need vm.max_map_count >= $want (it is $have);" \
      "run: sysctl -w vm.max_map_count=$want" >&2
    exit 1
  fi
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mpx-sim.XXXXXX")
[ "$keep" = 1 ] || trap 'rm -rf "$tmp"' EXIT

# Why each option is set: docs/simulation.md.
opts=(
  --cfg=smpi/simulate-computation:no      # mpx charges measured costs itself
  --cfg=smpi/host-speed:1Gf
  --cfg=smpi/async-small-thresh:65536     # eager sends below 64 KiB
  --cfg=smpi/send-is-detached-thresh:65536
  --cfg=smpi/iprobe:0 --cfg=smpi/test:0   # mpx charges its polls
  --cfg=smpi/wtime:0 --cfg=smpi/grow-injected-times:no
  --cfg=smpi/lat-factor:0:1 --cfg=smpi/bw-factor:0:1
  --cfg=smpi/privatization:dlopen         # a copy of libmpx's globals per rank
  # Trees for the start-up's collectives: SMPI's default reduce is linear,
  # an O(ranks^2) waitany at the root (40 minutes at 16,384 ranks).
  # Allreduce as a binomial reduce then bcast (redbcast), not recursive
  # doubling: SimGrid 3.32 keeps every small (detached) send in flight in
  # one list it scans as each ends, and rdb has all ranks sending at once
  # in each of its log2(ranks) rounds, O(ranks^2 log ranks) in all (half
  # the start-up's time at 4,096 ranks).
  --cfg=smpi/allreduce:redbcast --cfg=smpi/reduce:binomial
  --cfg=smpi/bcast:binomial_tree --cfg=smpi/gather:ompi_binomial
  --cfg=smpi/scatter:ompi_binomial
  --cfg=contexts/stack-size:256
  --cfg=maxmin/precision:1e-4             # SimGrid 3.32 aborts on a rounding at 1e-5 (see docs)
  --cfg=smpi/tmpdir:"$tmp"
  --log=root.thres:critical
)

run() { # workload ranks us tasks dispatcher
  local wl=$1 r=$2 u=$3 n=$4 disp=${5:-flat}
  local plat args t0 t1 line
  plat=$(scripts/smpi/platform.sh "$platform" "$r" "$tmp")
  args=("$wl" --tasks "$n" --progress "$progress")
  [ "$wl" = spin ] && args+=(--us "$u")
  [ "$wl" = map ] && [ "$u" -gt 0 ] && args+=(--us "$u")
  [ "$wl" = map ] && args+=(--chunksize "$chunksize" --inputs "$inputs")
  t0=$(date +%s.%N)
  line=$(cd "$tmp" && MPX_GROUP=$disp smpirun -np "$r" -platform "$plat" -hostfile "$tmp/hostfile-$r" \
           "${opts[@]}" "$bench" "${args[@]}" 2>"$tmp/err" | grep '^{' | tail -1) || true
  t1=$(date +%s.%N)
  if [ -z "$line" ]; then
    echo "simulate.sh: $wl at $r ranks produced no result:" >&2
    tail -20 "$tmp/err" >&2
    return 1
  fi
  /usr/bin/python3 - "$line" "$u" "$t0" "$t1" "$platform" "$disp" <<'PY'
import json, os, sys
d = json.loads(sys.argv[1])
out = {k: d.get(k) for k in ("workload", "ranks", "workers", "tasks",
                             "tasks_per_s", "efficiency", "root_busy")}
out["us"] = int(sys.argv[2]) if d["workload"] == "spin" or d.get("us") else None
if d.get("chunksize"):
    out["chunksize"] = d["chunksize"]
    out["inputs"] = d.get("inputs", "list")
out["tasks_per_call"] = d.get("tasks_per_call")
# Idle workers' spin before they sleep (MPX_WORKER_SPIN_US; 0 runs the
# simulation 2-3 times faster, docs/simulation.md).
out["worker_spin_us"] = int(os.environ.get("MPX_WORKER_SPIN_US", "200"))
out["seconds"] = d.get("seconds")
out["platform"] = sys.argv[5]
out["sim_wall_s"] = round(float(sys.argv[4]) - float(sys.argv[3]), 1)
# flat: one root serves every worker; node (or a group size): one
# sub-manager per node (docs/hierarchy.md), for plot.py's lines.
out["dispatcher"] = sys.argv[6]
out["groups"] = d.get("groups", 0)
print(json.dumps(out), flush=True)
PY
}

# Task counts: tiny 20,000 (at least 4 per worker: its rate is the
# root's, reached long before), spin 20 tasks per worker for 1 ms and 4
# per worker for 10 ms (at least 40 in all); beyond 4,096 workers 4 and 2
# per worker, so that 16,384 ranks simulate in minutes (the flat root is
# saturated there whatever the count).
default_tasks() { # workload ranks us
  local w=$(( $2 > 1 ? $2 - 1 : 1 )) per
  if [ "$1" = tiny ] || [ "$1" = map ]; then
    echo $(( 4 * w > 20000 ? 4 * w : 20000 ))
    return
  fi
  if [ "$3" -ge 10000 ]; then per=4; else per=20; fi
  [ "$w" -gt 4096 ] && per=$(( per / 5 > 2 ? per / 5 : 2 ))
  echo $(( per * w > 40 ? per * w : 40 ))
}

if [ -n "$ranks" ]; then
  wl=${workload:-tiny}
  u=${us:-$([ "$wl" = map ] && echo 0 || echo 1000)}
  rc=0
  for d in $dispatchers; do
    run "$wl" "$ranks" "$u" "${tasks:-$(default_tasks "$wl" "$ranks" "$u")}" "$d" || rc=1
  done
  exit $rc
fi
rc=0
lines="$tmp/sweep.jsonl"
for r in $sizes; do
  for case in "tiny 0" "spin 1000" "spin 10000"; do
    set -- $case
    [ -n "$workload" ] && [ "$workload" != "$1" ] && continue
    for d in $dispatchers; do
      run "$1" "$r" "$2" "${tasks:-$(default_tasks "$1" "$r" "$2")}" "$d" | tee -a "$lines" || rc=1
    done
  done
done
if [ -n "$plot" ]; then
  /usr/bin/python3 scripts/smpi/plot.py "$lines" --out "$plot" >&2 || rc=1
fi
exit $rc
