#!/usr/bin/env bash
# scripts/bench.sh [--quick] -- benchmarks mpx against mpi4py.futures
# (MPIPoolExecutor), concurrent.futures.ProcessPoolExecutor and
# multiprocessing.Pool, all with 2 workers (MPI: mpirun -n 3 = 1 root +
# 2 workers).
#
# Workloads: tiny (x*x tasks/s), latency (sequential submit->result p50/p99),
# spin (CPU-burning tasks, efficiency = N*U/(workers*wall)), idle (CPU the
# pool burns doing nothing) and startup (whole no-op pool program timed from
# outside, with and without the --mca options for the MPI implementations).
# Within one run the implementations alternate (mpx, mpi4py, ppe, mpool for
# each workload, repeated R times) so that a drifting CPU clock hurts all of
# them alike; the table shows medians.
#
# Output: the exact commands first, progress, then a Markdown table, which is
# also written to $OUT/table.md; every raw JSON line goes to
# $OUT/results.jsonl and each run's stdout/stderr to $OUT/logs/.
#
# Environment (all optional):
#   BUILD_DIR           build tree with apps/mpx-bench (default ./build); if
#                       the binary is missing it is built there with
#                       cmake -DCMAKE_BUILD_TYPE=Release unless BENCH_NO_BUILD=1
#   BENCH_OUT           output directory (default ./build/bench)
#   BENCH_MCA           --mca options for mpx and mpi4py
#                       (default "--mca pml ob1 --mca btl self,vader";
#                       BENCH_MCA= runs with none)
#   BENCH_REPEATS       R (default 3, --quick 1)
#   BENCH_STARTUP_RUNS  start-up runs per implementation (default 5, quick 3)
#   BENCH_TINY BENCH_TINY_MPX BENCH_LATENCY BENCH_SPIN BENCH_SPIN_US
#   BENCH_IDLE_S        workload sizes (see defaults below)
#   BENCH_IMPLS         subset of "mpx mpi4py ppe mpool"
#   BENCH_WORKLOADS     subset of "tiny latency spin idle startup"
#   BENCH_TIMEOUT       seconds before a run is killed (default 300)
#   BENCH_SPIN_CLOCK    thread (default, CPU time) or perf (wall clock) for the
#                       Python spin tasks
#   MPX_*               passed to every MPI rank with mpirun -x
set -uo pipefail

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
# The peers (python3-mpi4py, python3-numpy) come from Debian like the rest.
bash scripts/setup.sh || exit 1
BUILD=${BUILD_DIR:-$ROOT/build}
OUT=${BENCH_OUT:-$ROOT/build/bench}
PY=/usr/bin/python3          # the pyenv python3 on PATH lacks mpi4py/numpy
PEERS=scripts/bench_peers.py
MPXBENCH=$BUILD/apps/mpx-bench

if ((QUICK)); then
  R=${BENCH_REPEATS:-1}; STARTUP_RUNS=${BENCH_STARTUP_RUNS:-3}
  TINY=${BENCH_TINY:-5000}; SPIN=${BENCH_SPIN:-500}; IDLE_S=${BENCH_IDLE_S:-1}
else
  R=${BENCH_REPEATS:-3}; STARTUP_RUNS=${BENCH_STARTUP_RUNS:-5}
  TINY=${BENCH_TINY:-20000}; SPIN=${BENCH_SPIN:-2000}; IDLE_S=${BENCH_IDLE_S:-2}
fi
TINY_MPX=${BENCH_TINY_MPX:-200000}
LAT=${BENCH_LATENCY:-2000}
SPIN_US=${BENCH_SPIN_US:-1000}
IMPLS=(${BENCH_IMPLS:-mpx mpi4py ppe mpool})
WORKLOADS=(${BENCH_WORKLOADS:-tiny latency spin idle startup})

MCA_STR=${BENCH_MCA-"--mca pml ob1 --mca btl self,vader"}
read -r -a MCA <<<"$MCA_STR"
XENV=()
for v in $(compgen -e | grep -E '^(MPX_[A-Za-z0-9_]*|BENCH_SPIN_CLOCK)$'); do
  XENV+=(-x "$v")
done
TIMEOUT=(timeout "${BENCH_TIMEOUT:-300}")
MPIBASE=(mpirun -n 3 --oversubscribe --allow-run-as-root --bind-to none)

mkdir -p "$OUT/logs" || exit 1
RESULTS=$OUT/results.jsonl
TABLE=$OUT/table.md
: >"$RESULTS"
rm -f "$OUT"/logs/*.out "$OUT"/logs/*.err

has() { local x; for x in "${@:2}"; do [[ $x == "$1" ]] && return 0; done; return 1; }
drop_impl() { local keep=() i; for i in "${IMPLS[@]}"; do [[ $i == "$1" ]] || keep+=("$i"); done; IMPLS=("${keep[@]}"); }

NOTES=()

# ---------------------------------------------------------------- mpx binary
if has mpx "${IMPLS[@]}"; then
  if [[ ! -x $MPXBENCH ]]; then
    if [[ ${BENCH_NO_BUILD:-0} == 1 ]]; then
      echo "bench.sh: $MPXBENCH not found and BENCH_NO_BUILD=1" >&2
    elif [[ -f $ROOT/apps/CMakeLists.txt ]]; then
      echo "bench.sh: $MPXBENCH not found; building:" >&2
      echo "  cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release && cmake --build $BUILD -j2" >&2
      if ! { cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release &&
             cmake --build "$BUILD" -j2; } >"$OUT/build.log" 2>&1; then
        echo "bench.sh: build failed, see $OUT/build.log" >&2
      fi
    else
      echo "bench.sh: $MPXBENCH not found and apps/ has no sources yet" >&2
    fi
  fi
  if [[ ! -x $MPXBENCH ]]; then
    NOTES+=("mpx SKIPPED: $MPXBENCH does not exist (set BUILD_DIR, or build with: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2). Peers only.")
    echo "bench.sh: *** ${NOTES[-1]}" >&2
    drop_impl mpx
  fi
fi
if has mpi4py "${IMPLS[@]}" && ! $PY -c 'import mpi4py.futures' 2>/dev/null; then
  NOTES+=("mpi4py SKIPPED: $PY cannot import mpi4py.futures (apt-get install python3-mpi4py).")
  echo "bench.sh: *** ${NOTES[-1]}" >&2
  drop_impl mpi4py
fi
if ((${#IMPLS[@]} == 0)); then echo "bench.sh: nothing to run" >&2; exit 1; fi

# ------------------------------------------------------------------ commands
# build_cmd IMPL WORKLOAD [VARIANT] -> CMD (VARIANT "default" = no --mca)
build_cmd() {
  local impl=$1 wl=$2 variant=${3:-} args=() mpi
  case $wl in
    tiny)    if [[ $impl == mpx ]]; then args=(--tasks "$TINY_MPX"); else args=(--tasks "$TINY"); fi ;;
    latency) args=(--tasks "$LAT") ;;
    spin)    args=(--tasks "$SPIN" --us "$SPIN_US") ;;
    idle)    args=(--seconds "$IDLE_S") ;;
    noop)    args=() ;;
  esac
  if [[ $variant == default ]]; then
    mpi=("${TIMEOUT[@]}" "${MPIBASE[@]}" "${XENV[@]}")
  else
    mpi=("${TIMEOUT[@]}" "${MPIBASE[@]}" "${MCA[@]}" "${XENV[@]}")
  fi
  case $impl in
    mpx)    CMD=("${mpi[@]}" "$MPXBENCH" "$wl" "${args[@]}") ;;
    mpi4py) CMD=("${mpi[@]}" "$PY" -m mpi4py.futures "$PEERS" mpi4py "$wl" "${args[@]}") ;;
    *)      CMD=("${TIMEOUT[@]}" "$PY" "$PEERS" "$impl" "$wl" "${args[@]}") ;;
  esac
}
is_mpi() { [[ $1 == mpx || $1 == mpi4py ]]; }
q() {  # shell-quotes only the words that need it
  local w out=()
  for w in "$@"; do
    if [[ $w =~ ^[A-Za-z0-9_./,=:+@%-]+$ ]]; then out+=("$w"); else out+=("$(printf '%q' "$w")"); fi
  done
  printf '%s' "${out[*]}"
}

HEADER=$OUT/.header.md
{
  echo "# mpx benchmark ($( ((QUICK)) && echo quick || echo full ) run)"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), host $(hostname), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')"
  echo "- mpx: git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (+uncommitted changes)'), binary ${MPXBENCH}$(has mpx "${IMPLS[@]}" || echo ' (missing)')"
  echo "- $(mpirun --version 2>/dev/null | head -n1); Python $($PY -c 'import sys; print(sys.version.split()[0])'); mpi4py $($PY -c 'import mpi4py; print(mpi4py.__version__)' 2>/dev/null || echo missing)"
  echo "- repeats R=$R (startup: $STARTUP_RUNS runs); sizes: tiny mpx $TINY_MPX / peers $TINY tasks, latency $LAT calls, spin $SPIN tasks x $SPIN_US us, idle ${IDLE_S} s; spin clock of the Python peers: ${BENCH_SPIN_CLOCK:-thread}"
  echo "- implementations: ${IMPLS[*]}; workloads: ${WORKLOADS[*]}"
  for n in "${NOTES[@]}"; do echo "- **$n**"; done
  echo
  echo "## Commands (run from $ROOT)"
  echo
  echo '```sh'
  for wl in "${WORKLOADS[@]}"; do
    for impl in "${IMPLS[@]}"; do
      if [[ $wl == startup ]]; then
        if is_mpi "$impl"; then
          build_cmd "$impl" noop default; echo "$(q "${CMD[@]}")    # startup, no --mca (timed from outside)"
          build_cmd "$impl" noop mca;     echo "$(q "${CMD[@]}")    # startup, with --mca (timed from outside)"
        else
          build_cmd "$impl" noop;         echo "$(q "${CMD[@]}")    # startup (timed from outside)"
        fi
      else
        build_cmd "$impl" "$wl"; echo "$(q "${CMD[@]}")"
      fi
    done
  done
  echo '```'
} >"$HEADER"
cat "$HEADER"
echo
echo "## Progress (raw JSON: $RESULTS, logs: $OUT/logs)"
echo

# ----------------------------------------------------------------------- run
# run_one IMPL WORKLOAD VARIANT REP: runs CMD, appends one JSON line to
# RESULTS (impl, rep and wall_s added; for startup the wall time of the whole
# process becomes "seconds") and prints a one-line summary.
run_one() {
  local impl=$1 wl=$2 variant=$3 rep=$4 t0 t1 rc line tag
  if [[ $wl == startup ]]; then build_cmd "$impl" noop "$variant"; else build_cmd "$impl" "$wl"; fi
  tag=$impl-$wl${variant:+-$variant}-$rep
  t0=$(date +%s.%N)
  "${CMD[@]}" >"$OUT/logs/$tag.out" 2>"$OUT/logs/$tag.err" </dev/null
  rc=$?
  t1=$(date +%s.%N)
  line=$(grep '^{' "$OUT/logs/$tag.out" | tail -n 1)
  "$PY" - "$impl" "$wl" "$variant" "$rep" "$t0" "$t1" "$rc" "$line" "$OUT/logs/$tag.err" "$RESULTS" <<'EOF'
import json, sys
impl, wl, variant, rep, t0, t1, rc, line, errlog, results = sys.argv[1:]
wall = float(t1) - float(t0)
rec = {"impl": impl, "workload": wl}
err = None
if rc != "0":
    err = "exit status %s%s" % (rc, " (timeout)" if rc == "124" else "")
try:
    got = json.loads(line) if line else None
except ValueError:
    got = None
if got is None and err is None:
    err = "no JSON line on stdout"
if got is not None:
    got.pop("impl", None)
    if wl == "startup":
        rec["inner_workload"] = got.pop("workload", None)
        rec["inner_seconds"] = got.pop("seconds", None)
        rec.update(got)
        rec["tasks_per_s"] = None
        rec["seconds"] = wall
    else:
        rec.update(got)
if variant:
    rec["variant"] = variant
rec["rep"] = int(rep)
rec["wall_s"] = round(wall, 6)
if err:
    rec["error"] = err
with open(results, "a") as f:
    f.write(json.dumps(rec) + "\n")
name = "%-6s %-8s%s rep %s" % (impl, wl, (" " + variant) if variant else "", rep)
if err:
    tail = ""
    try:
        lines = [l.strip() for l in open(errlog, errors="replace")]
        lines = [l for l in lines if l.strip("-= ")]   # skip mpirun rulers
        boiler = ("Primary job", "a non-zero exit code", "mpirun noticed",
                  "mpirun detected", "mpirun: Forwarding", "Process name:",
                  "Exit code:", "Per user-direction")
        own = [l for l in lines if not l.startswith(boiler)]
        sig = [l for l in lines if l.startswith(("mpirun noticed",
                                                 "mpirun detected"))]
        pick = (own or sig or lines)[:1]
        tail = (": " + pick[0][:160]) if pick else ""
    except OSError:
        pass
    print("  %-34s FAILED (%s)%s" % (name, err, tail))
else:
    m = []
    if rec.get("tasks_per_s") is not None and wl != "startup":
        m.append("{:,.0f} tasks/s".format(rec["tasks_per_s"]))
    if rec.get("p50_us") is not None:
        m.append("p50 %.0f us, p99 %.0f us" % (rec["p50_us"], rec["p99_us"] or 0))
    if rec.get("efficiency") is not None:
        m.append("efficiency %.1f%%" % (100 * rec["efficiency"]))
    if rec.get("root_cpu_share") is not None:
        w = rec.get("worker_cpu_share")
        m.append("root CPU %.1f%%, worker CPU %s" % (
            100 * rec["root_cpu_share"], "n/a" if w is None else "%.1f%%" % (100 * w)))
    if wl == "startup":
        m.append("%.3f s whole process" % wall)
    print("  %-34s %s" % (name, "; ".join(m)))
EOF
}

for ((rep = 1; rep <= R; rep++)); do
  for wl in "${WORKLOADS[@]}"; do
    [[ $wl == startup ]] && continue
    for impl in "${IMPLS[@]}"; do
      run_one "$impl" "$wl" "" "$rep"
    done
  done
done
if has startup "${WORKLOADS[@]}"; then
  for ((rep = 1; rep <= STARTUP_RUNS; rep++)); do
    for variant in default mca; do
      for impl in "${IMPLS[@]}"; do
        if is_mpi "$impl"; then
          run_one "$impl" startup "$variant" "$rep"
        elif [[ $variant == default ]]; then
          run_one "$impl" startup "" "$rep"
        fi
      done
    done
  done
fi

# --------------------------------------------------------------------- table
IMPL_CSV=$(IFS=,; echo "${IMPLS[*]}")
{
  cat "$HEADER"
  echo
  echo "## Results (median of $R runs; startup: median of $STARTUP_RUNS; '--mca' = $MCA_STR)"
  echo
  "$PY" scripts/bench_table.py "$RESULTS" --impls "$IMPL_CSV"
} >"$TABLE"
rm -f "$HEADER"
echo
sed -n '/^## Results/,$p' "$TABLE"
echo
echo "(table written to $TABLE, raw results to $RESULTS)"
