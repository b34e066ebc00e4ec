#!/usr/bin/env bash
# scripts/bench.sh [--quick] -- benchmarks mpx against mpi4py.futures
# (MPIPoolExecutor), concurrent.futures.ProcessPoolExecutor and
# multiprocessing.Pool, all with 2 workers (MPI: mpirun -n 3 = 1 root +
# 2 workers).
#
# Workloads: tiny (x*x tasks/s), latency (sequential submit->result p50/p99),
# spin (CPU-burning tasks, efficiency = N*U/(workers*wall)), idle (CPU the
# pool burns doing nothing), startup (whole no-op pool program timed from
# outside, with and without the --mca options for the MPI implementations),
# and for maps and HDF5 jobs:
#   w4       the seed's W4 job end to end: 200,000 indices in 8 array_split
#            parts, each part's rows (feature float32 [m x 64], target int32)
#            computed by a worker and written to a file in $BENCH_DATA. mpx:
#            mpx_job_run -> one HDF5 file; mpi4py: executor.map +
#            np.concatenate + np.save (variant npy, two .npy files) and the
#            same + h5py (variant h5); ppe: ProcessPoolExecutor.map + np.save.
#            Variant zeros (every implementation): the same arrays left
#            zero, nothing computed (mpx: task zero_rows; peers: np.zeros,
#            np.save) -- the pool, the transfer and the file alone, since
#            numpy's vectorised sin makes the computing itself unequal.
#            With BENCH_SYNC=1 (default) every implementation makes its
#            files durable before the clock stops (mpx: job option sync,
#            fdatasync at every commit; peers: os.fsync of each file).
#            Every output is checked against the formula (bench_peers.py
#            verify) and deleted after each run.
#   h5write  disk bandwidth: a 1 GiB feature dataset (4,194,304 rows x 64
#            float32, 64 parts of w4_rows, no compression) written by
#            mpx_job_run (variant job) against raw disk bandwidth measured
#            in the same run by `dd if=/dev/zero of=$BENCH_DATA/dd.bin bs=16M
#            count=64 conv=fdatasync`; GiB/s of each and mpx/dd (target
#            >= 70%). The same dd with oflag=direct (variant direct)
#            shows what the device takes without the page cache: buffered
#            dd copies everything into the cache and only then flushes, so
#            it under-reads the device. For diagnosis also: mpx's job of the task zero_rows
#            (variant zeros: the same arrays left zero, nothing computed --
#            the write path alone, as dd writes zeros), mpx's map alone
#            (variant map: the w4_rows parts through mpx_map_range, results
#            dropped, no file) and mpi4py's map + np.concatenate + h5py
#            (variant h5).
#   map      map throughput of tiny items (x*x) at every chunksize of
#            BENCH_MAP_CHUNKS: mpx_map_create (ordered, every result read
#            with mpx_map_next), mpi4py/ppe executor.map(f, range(N),
#            chunksize=C), multiprocessing.Pool.imap(f, range(N), C);
#            items/s (target: mpx >= 10x mpi4py at every chunksize).
#   rss      peak RSS (ru_maxrss) of the root for an mpx map over a producer
#            of N tiny items (mpx_map_create_producer), N in BENCH_RSS_ITEMS
#            (10^6, 10^7, 10^8: it should stay flat), with items/s; the
#            peers, for contrast, at BENCH_RSS_PEER_ITEMS (10^6) over a
#            generator (mpi4py and ProcessPoolExecutor submit it all).
# Within one run the implementations alternate (mpx, mpi4py, ppe, mpool for
# each workload -- for map, for each chunksize -- repeated R times) so that
# a drifting CPU clock hurts all of them alike; the table shows medians.
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
#   BENCH_DATA          where w4/h5write/dd write their files (default
#                       $BENCH_OUT/data; removed after each run)
#   BENCH_MCA           --mca options for mpx and mpi4py
#                       (default "--mca pml ob1 --mca btl self,vader";
#                       BENCH_MCA= runs with none)
#   BENCH_REPEATS       R (default 3, --quick 1)
#   BENCH_STARTUP_RUNS  start-up runs per implementation (default 5, quick 3)
#   BENCH_TINY BENCH_TINY_MPX BENCH_LATENCY BENCH_SPIN BENCH_SPIN_US
#   BENCH_IDLE_S        workload sizes (see defaults below)
#   BENCH_SYNC          1 (default): w4/h5write outputs are synced to disk
#                       inside the timing (mpx --sync 1, peers --sync);
#                       0: nobody syncs (mpx --sync 0)
#   BENCH_W4_ROWS BENCH_W4_PARTS   w4 size (default 200000 rows, 8 parts)
#   BENCH_H5_ROWS BENCH_H5_PARTS   h5write size (default 4194304 rows = 1 GiB
#                       of feature, 64 parts; --quick 1048576 rows = 256 MiB,
#                       16 parts); dd writes the feature's size
#   BENCH_MAP_CHUNKS    chunksizes of map (default "1 16 256")
#   BENCH_MAP_ITEMS     items per run for mpi4py and ppe, one per chunksize
#                       (default "10000 150000 2000000", quick
#                       "5000 60000 800000")
#   BENCH_MAP_ITEMS_MPOOL  the same for mpool (default "30000 500000
#                       5000000", quick "10000 150000 1500000")
#   BENCH_MAP_ITEMS_MPX    the same for mpx (default "2000000 20000000
#                       30000000", quick "1000000 8000000 15000000")
#   BENCH_RSS_ITEMS     mpx rss map sizes (default "1000000 10000000
#                       100000000", also with --quick)
#   BENCH_RSS_PEER_ITEMS  peers' rss sizes (default "1000000"; "" skips them)
#   BENCH_RSS_CHUNK     chunksize of the rss maps (default 256)
#   BENCH_IMPLS         subset of "mpx mpi4py ppe mpool"
#   BENCH_WORKLOADS     subset of "tiny latency spin idle startup w4 h5write
#                       map rss" (default: all of them)
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
  H5_ROWS=${BENCH_H5_ROWS:-1048576}; H5_PARTS=${BENCH_H5_PARTS:-16}
  MAP_ITEMS=(${BENCH_MAP_ITEMS:-5000 60000 800000})
  MAP_ITEMS_MPOOL=(${BENCH_MAP_ITEMS_MPOOL:-10000 150000 1500000})
  MAP_ITEMS_MPX=(${BENCH_MAP_ITEMS_MPX:-1000000 8000000 15000000})
else
  R=${BENCH_REPEATS:-3}; STARTUP_RUNS=${BENCH_STARTUP_RUNS:-5}
  TINY=${BENCH_TINY:-20000}; SPIN=${BENCH_SPIN:-2000}; IDLE_S=${BENCH_IDLE_S:-2}
  H5_ROWS=${BENCH_H5_ROWS:-4194304}; H5_PARTS=${BENCH_H5_PARTS:-64}
  MAP_ITEMS=(${BENCH_MAP_ITEMS:-10000 150000 2000000})
  MAP_ITEMS_MPOOL=(${BENCH_MAP_ITEMS_MPOOL:-30000 500000 5000000})
  MAP_ITEMS_MPX=(${BENCH_MAP_ITEMS_MPX:-2000000 20000000 30000000})
fi
TINY_MPX=${BENCH_TINY_MPX:-200000}
LAT=${BENCH_LATENCY:-2000}
SPIN_US=${BENCH_SPIN_US:-1000}
SYNC=${BENCH_SYNC:-1}
W4_ROWS=${BENCH_W4_ROWS:-200000}; W4_PARTS=${BENCH_W4_PARTS:-8}
MAP_CHUNKS=(${BENCH_MAP_CHUNKS:-1 16 256})
RSS_ITEMS=(${BENCH_RSS_ITEMS:-1000000 10000000 100000000})
RSS_PEER_ITEMS=(${BENCH_RSS_PEER_ITEMS-1000000})
RSS_CHUNK=${BENCH_RSS_CHUNK:-256}
IMPLS=(${BENCH_IMPLS:-mpx mpi4py ppe mpool})
WORKLOADS=(${BENCH_WORKLOADS:-tiny latency spin idle startup w4 h5write map rss})
DATA=${BENCH_DATA:-$OUT/data}
# dd writes as many bytes as the feature dataset holds, in 16 MiB blocks.
DD_COUNT=$(( (H5_ROWS * 256 + 16777215) / 16777216 ))

for wl in "${WORKLOADS[@]}"; do
  case $wl in
    tiny|latency|spin|idle|startup|w4|h5write|map|rss) ;;
    *) echo "bench.sh: unknown workload '$wl' in BENCH_WORKLOADS" >&2; exit 2 ;;
  esac
done
if [[ $SYNC != 0 && $SYNC != 1 ]]; then echo "bench.sh: BENCH_SYNC must be 0 or 1" >&2; exit 2; fi
for v in MAP_ITEMS MAP_ITEMS_MPOOL MAP_ITEMS_MPX; do
  declare -n arr=$v
  if ((${#arr[@]} != ${#MAP_CHUNKS[@]})); then
    echo "bench.sh: $v needs one size per chunksize in BENCH_MAP_CHUNKS (${MAP_CHUNKS[*]})" >&2
    exit 2
  fi
  unset -n arr
done

MCA_STR=${BENCH_MCA-"--mca pml ob1 --mca btl self,vader"}
read -r -a MCA <<<"$MCA_STR"
XENV=()
for v in $(compgen -e | grep -E '^(MPX_[A-Za-z0-9_]*|BENCH_SPIN_CLOCK)$'); do
  XENV+=(-x "$v")
done
TIMEOUT=(timeout "${BENCH_TIMEOUT:-300}")
MPIBASE=(mpirun -n 3 --oversubscribe --allow-run-as-root --bind-to none)

mkdir -p "$OUT/logs" "$DATA" || exit 1
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
# map_items IMPL CHUNKSIZE -> the number of items of that map run
map_items() {
  local i
  for i in "${!MAP_CHUNKS[@]}"; do
    if [[ ${MAP_CHUNKS[$i]} == "$2" ]]; then
      case $1 in
        mpx)   echo "${MAP_ITEMS_MPX[$i]}" ;;
        mpool) echo "${MAP_ITEMS_MPOOL[$i]}" ;;
        *)     echo "${MAP_ITEMS[$i]}" ;;
      esac
      return
    fi
  done
}

# plan WORKLOAD -> lines "IMPL VARIANT" ("-" = no variant), in run order
plan() {
  local wl=$1 impl c n
  case $wl in
    w4)
      for impl in "${IMPLS[@]}"; do
        case $impl in
          mpx)    echo "mpx -"; echo "mpx zeros" ;;
          mpi4py) echo "mpi4py npy"; echo "mpi4py h5"; echo "mpi4py zeros" ;;
          ppe)    echo "ppe npy"; echo "ppe zeros" ;;
        esac                       # mpool: not part of this comparison
      done ;;
    h5write)
      echo "dd -"; echo "dd direct"
      has mpx "${IMPLS[@]}" && { echo "mpx job"; echo "mpx zeros"; echo "mpx map"; }
      has mpi4py "${IMPLS[@]}" && echo "mpi4py h5"
      ;;
    map)
      for c in "${MAP_CHUNKS[@]}"; do
        for impl in "${IMPLS[@]}"; do echo "$impl c$c"; done
      done ;;
    rss)
      if has mpx "${IMPLS[@]}"; then
        for n in "${RSS_ITEMS[@]}"; do echo "mpx n$n"; done
      fi
      for n in "${RSS_PEER_ITEMS[@]}"; do
        for impl in "${IMPLS[@]}"; do [[ $impl == mpx ]] || echo "$impl n$n"; done
      done ;;
    *)
      for impl in "${IMPLS[@]}"; do echo "$impl -"; done ;;
  esac
}

# build_cmd IMPL WORKLOAD [VARIANT] -> CMD (startup: VARIANT "default" = no
# --mca; w4: npy|h5 for the peers; h5write: job|zeros|map for mpx, h5 for
# mpi4py; map: cC; rss: nN)
build_cmd() {
  local impl=$1 wl=$2 variant=${3:-} args=() mpi
  [[ $variant == - ]] && variant=
  case $wl in
    tiny)    if [[ $impl == mpx ]]; then args=(--tasks "$TINY_MPX"); else args=(--tasks "$TINY"); fi ;;
    latency) args=(--tasks "$LAT") ;;
    spin)    args=(--tasks "$SPIN" --us "$SPIN_US") ;;
    idle)    args=(--seconds "$IDLE_S") ;;
    noop)    args=() ;;
    w4|h5write)
      if [[ $wl == w4 ]]; then args=(--rows "$W4_ROWS" --parts "$W4_PARTS")
      else args=(--rows "$H5_ROWS" --parts "$H5_PARTS"); fi
      if [[ $impl == mpx ]]; then
        case $variant in
          job)   args+=(--mode job) ;;
          zeros) args+=(--mode job --task zero_rows) ;;
          map)   args+=(--mode map) ;;
        esac
        [[ $variant == map ]] || args+=(--out "$DATA" --sync "$SYNC" --keep)
      else
        if [[ $variant == zeros ]]; then args+=(--format npy --zeros)
        else args+=(--format "$variant"); fi
        args+=(--out "$DATA" --keep)
        ((SYNC)) && args+=(--sync)
      fi ;;
    map)     args=(--tasks "$(map_items "$impl" "${variant#c}")" --chunksize "${variant#c}") ;;
    rss)     args=(--tasks "${variant#n}" --chunksize "$RSS_CHUNK") ;;
  esac
  if [[ $variant == default ]]; then
    mpi=("${TIMEOUT[@]}" "${MPIBASE[@]}" "${XENV[@]}")
  else
    mpi=("${TIMEOUT[@]}" "${MPIBASE[@]}" "${MCA[@]}" "${XENV[@]}")
  fi
  case $impl in
    dd)     CMD=("${TIMEOUT[@]}" dd if=/dev/zero "of=$DATA/dd.bin" bs=16M "count=$DD_COUNT" conv=fdatasync)
            [[ $variant == direct ]] && CMD+=(oflag=direct) ;;
    mpx)    CMD=("${mpi[@]}" "$MPXBENCH" "$wl" "${args[@]}") ;;
    mpi4py) CMD=("${mpi[@]}" "$PY" -m mpi4py.futures "$PEERS" mpi4py "$wl" "${args[@]}") ;;
    *)      CMD=("${TIMEOUT[@]}" "$PY" "$PEERS" "$impl" "$wl" "${args[@]}") ;;
  esac
}

# outputs IMPL WORKLOAD VARIANT -> the file (or .npy prefix) a w4/h5write
# run leaves behind for bench_peers.py verify ("" if none)
outputs() {
  case $1/$2/$3 in
    dd/*|mpx/h5write/map|*/map/*|*/rss/*) echo "" ;;
    mpx/*)       echo "$DATA/$2-mpx.h5" ;;
    */*/h5)      echo "$DATA/$2-$1.h5" ;;
    */*/npy|*/*/zeros) echo "$DATA/$2-$1" ;;
  esac
}
# verify_args WORKLOAD VARIANT -> VARGS for bench_peers.py verify
verify_args() {
  if [[ $1 == w4 ]]; then VARGS=(--rows "$W4_ROWS" --full); else VARGS=(--rows "$H5_ROWS"); fi
  [[ $2 == zeros ]] && VARGS+=(--zeros)
}
clean_data() {
  rm -f "$DATA"/dd.bin "$DATA"/w4-*.h5 "$DATA"/w4-*.h5.mpxrec "$DATA"/w4-*.npy \
        "$DATA"/h5write-*.h5 "$DATA"/h5write-*.h5.mpxrec "$DATA"/h5write-*.npy
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
  echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), host $(hostname), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //'), load average at start $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null) (other work on the machine skews every number)"
  echo "- mpx: git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (+uncommitted changes)'), binary ${MPXBENCH}$(has mpx "${IMPLS[@]}" || echo ' (missing)')"
  echo "- $(mpirun --version 2>/dev/null | head -n1); Python $($PY -c 'import sys; print(sys.version.split()[0])'); mpi4py $($PY -c 'import mpi4py; print(mpi4py.__version__)' 2>/dev/null || echo missing)"
  echo "- repeats R=$R (startup: $STARTUP_RUNS runs); sizes: tiny mpx $TINY_MPX / peers $TINY tasks, latency $LAT calls, spin $SPIN tasks x $SPIN_US us, idle ${IDLE_S} s; spin clock of the Python peers: ${BENCH_SPIN_CLOCK:-thread}"
  echo "- sizes of the map/job workloads: w4 $W4_ROWS rows in $W4_PARTS parts; h5write $H5_ROWS rows x 64 float32 = $(awk -v r="$H5_ROWS" 'BEGIN{printf "%.3g", r*256/2^30}') GiB of feature in $H5_PARTS parts, dd bs=16M count=$DD_COUNT; map chunksizes ${MAP_CHUNKS[*]} with items mpx ${MAP_ITEMS_MPX[*]} / mpi4py,ppe ${MAP_ITEMS[*]} / mpool ${MAP_ITEMS_MPOOL[*]}; rss chunksize $RSS_CHUNK, mpx ${RSS_ITEMS[*]} items, peers ${RSS_PEER_ITEMS[*]:-none}"
  echo "- files of w4/h5write/dd go to $DATA; BENCH_SYNC=$SYNC: $( ((SYNC)) && echo 'every implementation syncs its files inside the timing (mpx job option sync = fdatasync at each commit; peers os.fsync per file; dd conv=fdatasync)' || echo 'nobody syncs (mpx job sync=0, peers no fsync) except dd conv=fdatasync')"
  echo "- implementations: ${IMPLS[*]}; workloads: ${WORKLOADS[*]}"
  for n in "${NOTES[@]}"; do echo "- **$n**"; done
  echo
  echo "## Commands (run from $ROOT)"
  echo
  echo '```sh'
  for wl in "${WORKLOADS[@]}"; do
    if [[ $wl == startup ]]; then
      for impl in "${IMPLS[@]}"; do
        if is_mpi "$impl"; then
          build_cmd "$impl" noop default; echo "$(q "${CMD[@]}")    # startup, no --mca (timed from outside)"
          build_cmd "$impl" noop mca;     echo "$(q "${CMD[@]}")    # startup, with --mca (timed from outside)"
        else
          build_cmd "$impl" noop;         echo "$(q "${CMD[@]}")    # startup (timed from outside)"
        fi
      done
      continue
    fi
    mapfile -t PLAN < <(plan "$wl")
    for pv in "${PLAN[@]}"; do
      read -r impl variant <<<"$pv"
      build_cmd "$impl" "$wl" "$variant"; echo "$(q "${CMD[@]}")"
      f=$(outputs "$impl" "$wl" "$variant")
      if [[ -n $f ]]; then
        verify_args "$wl" "$variant"
        echo "  $(q "$PY" "$PEERS" verify "$f" "${VARGS[@]}")    # then deleted"
      elif [[ $impl == dd ]]; then
        echo "  rm -f $(q "$DATA/dd.bin")"
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
# process becomes "seconds"; for dd the bytes and seconds dd reports) and
# prints a one-line summary. w4/h5write outputs are verified, then deleted.
run_one() {
  local impl=$1 wl=$2 variant=$3 rep=$4 t0 t1 rc line tag f vline=
  [[ $variant == - ]] && variant=
  if [[ $wl == startup ]]; then build_cmd "$impl" noop "$variant"; else build_cmd "$impl" "$wl" "$variant"; fi
  tag=$impl-$wl${variant:+-$variant}-$rep
  [[ $wl == w4 || $wl == h5write ]] && clean_data
  t0=$(date +%s.%N)
  "${CMD[@]}" >"$OUT/logs/$tag.out" 2>"$OUT/logs/$tag.err" </dev/null
  rc=$?
  t1=$(date +%s.%N)
  line=$(grep '^{' "$OUT/logs/$tag.out" | tail -n 1)
  if [[ $wl == w4 || $wl == h5write ]]; then
    f=$(outputs "$impl" "$wl" "$variant")
    if [[ -n $f && $rc == 0 ]]; then
      verify_args "$wl" "$variant"
      vline=$("$PY" "$PEERS" verify "$f" "${VARGS[@]}" 2>>"$OUT/logs/$tag.err" </dev/null | tail -n 1)
      [[ -n $vline ]] || vline='{"verified": false, "error": "verify printed nothing"}'
    fi
    clean_data
  fi
  "$PY" - "$impl" "$wl" "$variant" "$rep" "$t0" "$t1" "$rc" "$line" "$OUT/logs/$tag.err" "$RESULTS" "$vline" <<'EOF'
import json, re, sys
impl, wl, variant, rep, t0, t1, rc, line, errlog, results, vline = sys.argv[1:]
wall = float(t1) - float(t0)
rec = {"impl": impl, "workload": wl}
err = None
if rc != "0":
    err = "exit status %s%s" % (rc, " (timeout)" if rc == "124" else "")
try:
    got = json.loads(line) if line else None
except ValueError:
    got = None
if impl == "dd" and err is None:
    # "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.42974 s, 442 MB/s"
    try:
        m = re.search(r"^(\d+) bytes .* copied, ([0-9.eE+-]+) s",
                      open(errlog, errors="replace").read(), re.M)
    except OSError:
        m = None
    if m:
        nbytes, secs = int(m.group(1)), float(m.group(2))
        got = {"bytes": nbytes, "seconds": secs,
               "gib_per_s": nbytes / secs / 2**30 if secs > 0 else None,
               "synced": True, "format": "raw"}
if got is None and err is None:
    err = "no JSON line on stdout" if impl != "dd" else "no dd summary on stderr"
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
        rec["workload"] = wl
if variant:
    rec["variant"] = variant
if vline:
    try:
        v = json.loads(vline)
    except ValueError:
        v = {"verified": False, "error": "bad verify output: " + vline[:80]}
    rec["verified"] = bool(v.get("verified"))
    if not rec["verified"]:
        rec["verify_error"] = v.get("error", "?")
        if err is None:
            err = "output wrong: " + rec["verify_error"]
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
    unit = "items/s" if wl in ("map", "rss") else "tasks/s"
    if wl in ("w4", "h5write"):
        m.append("%.3f s" % rec["seconds"])
        if rec.get("rows_per_s") is not None:
            m.append("{:,.0f} rows/s".format(rec["rows_per_s"]))
        if rec.get("gib_per_s") is not None:
            m.append("%.3f GiB/s" % rec["gib_per_s"])
        m.append("synced" if rec.get("synced") else "not synced")
        if "verified" in rec:
            m.append("output verified")
    elif rec.get("tasks_per_s") is not None and wl != "startup":
        m.append("{:,.0f} {}".format(rec["tasks_per_s"], unit))
    if rec.get("maxrss_kib") is not None:
        m.append("peak RSS %.1f MiB (before the map %.1f MiB)" % (
            rec["maxrss_kib"] / 1024, (rec.get("baseline_rss_kib") or 0) / 1024))
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
    mapfile -t PLAN < <(plan "$wl")
    for pv in "${PLAN[@]}"; do
      read -r impl variant <<<"$pv"
      run_one "$impl" "$wl" "$variant" "$rep"
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
