#!/usr/bin/env bash
# slurm_smoke: starts a private single-node SLURM (slurm-up.sh), submits
#  (a) a trivial batch script,
#  (b) slurm/mpx-seeds.sbatch verbatim with mpirun inside (only what one
#      node cannot hold overridden: -N 1 instead of its --nodes=2; its
#      --ntasks-per-node=4 fits the 64 CPUs the node advertises),
#  (c) the same with MPX_LAUNCHER=srun (srun --mpi=pmix),
# all three side by side; checks each sbatch --wait status and output,
# that nothing of a finished job is left running, and always stops SLURM
# (slurm-down.sh), also when a step fails or the test is interrupted.
# Usage: smoke.sh SOURCE_DIR BUILD_DIR WORK_DIR
# Exit 77 (skip) when not root; a missing package is a failure.
set -uo pipefail

[ $# -eq 3 ] || { echo "usage: smoke.sh SOURCE_DIR BUILD_DIR WORK_DIR" >&2; exit 2; }
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
WORK=$3
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "slurm_smoke: SKIPPED: the local SLURM harness needs root" \
    "(slurmd, munged); run as root" >&2
  exit 77
fi

t_start=$(date +%s.%N)
elapsed() { printf '%.1f' "$(echo "$(date +%s.%N) - $t_start" | bc)"; }
log() { echo "[slurm_smoke +$(elapsed)s] $*"; }

mkdir -p "$WORK"
# A harness killed outright (a ctest timeout sends SIGKILL) cannot stop its
# SLURM: stop what earlier runs in WORK left before starting ours.
for old in "$WORK"/run.*; do
  [ -d "$old" ] || continue
  log "stopping whatever $old left"
  "$HERE/slurm-down.sh" "$old" || true
  rm -rf "$old"
done
D=$(mktemp -d "$WORK/run.XXXXXX")
chmod 0755 "$D"   # munged (the munge user) keeps its files in D/munge

failures=0
fail() { echo "slurm_smoke: FAIL: $*" >&2; failures=$((failures + 1)); }

diagnostics() {
  echo "===== diagnostics ($D)" >&2
  for f in "$D/slurmctld.log" "$D/slurmd.log" "$D/munge/munged.log"; do
    [ -f "$f" ] && { echo "----- tail of $f" >&2; tail -n 40 "$f" >&2; }
  done
  for f in "$D"/jobs/*.show; do
    [ -f "$f" ] && { echo "----- $f" >&2; cat "$f" >&2; }
  done
  echo "----- squeue" >&2
  timeout 5 squeue 2>&1 | head -20 >&2
}

finish() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$failures" -gt 0 ] || [ "$rc" -ne 0 ]; then diagnostics; fi
  log "stopping SLURM"
  if ! "$HERE/slurm-down.sh" "$D"; then
    fail "slurm-down.sh did not stop everything"
  fi
  if [ "$failures" -eq 0 ] && [ "$rc" -eq 0 ]; then
    rm -rf "$D"
    log "PASS (3 jobs)"
    exit 0
  fi
  echo "slurm_smoke: $failures failure(s); state and logs kept in $D" >&2
  [ "$rc" -ne 0 ] && exit "$rc"
  exit 1
}
trap finish EXIT
trap 'fail "interrupted"; exit 130' INT TERM

# Nothing of an outer SLURM (ctest run inside a job) may leak into ours.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(SLURM|SBATCH|SRUN|SALLOC)_')
export SLURM_CONF=$D/slurm.conf
# The job environment comes from here (sbatch --export=ALL).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_mpi_yield_when_idle=1

log "starting SLURM in $D"
if ! "$HERE/slurm-up.sh" "$D"; then
  fail "slurm-up.sh could not start SLURM (reason above)"
  exit 1
fi
log "SLURM up"

cd "$D/jobs" || exit 1

# Processes of job $1 still alive (the batch shell's children that outlive
# it, e.g. an mpirun re-parented outside SLURM).
job_procs() {
  local d
  for d in /proc/[0-9]*; do
    tr '\0' '\n' 2>/dev/null <"$d/environ" | grep -qxF "SLURM_JOB_ID=$1" &&
      echo "${d#/proc/} $(tr '\0' ' ' 2>/dev/null <"$d/cmdline" | cut -c1-100)"
  done
}

# start NAME TIMEOUT sbatch-args...: sbatch --wait in the background (the
# three jobs run side by side: each mostly waits on SLURM and its polls);
# collect NAME then sets JOB and RC and keeps scontrol show job in
# NAME.show.
declare -A PIDS LIMITS
start() {
  local name=$1 limit=$2
  shift 2
  log "$name: sbatch --wait $*"
  timeout "$limit" sbatch --parsable --wait "$@" >"$name.sbatch.out" \
    2>"$name.sbatch.err" &
  PIDS[$name]=$!
  LIMITS[$name]=$limit
}
collect() {
  local name=$1
  wait "${PIDS[$name]}"
  RC=$?
  JOB=$(head -n 1 "$name.sbatch.out" | cut -d';' -f1)
  timeout 5 scontrol show job "$JOB" >"$name.show" 2>&1
  log "$name: job ${JOB:-?} exited $RC"
  if [ "$RC" -eq 124 ]; then
    fail "$name: sbatch --wait still waiting after ${LIMITS[$name]} s"
    [ -n "$JOB" ] && timeout 5 scancel "$JOB"
  fi
  [ -s "$name.sbatch.err" ] && { echo "--- sbatch stderr:"; cat "$name.sbatch.err"; }
  return 0
}

# expect NAME FILE REGEX...: every regex (grep -E) is in FILE.
expect() {
  local name=$1 file=$2 re miss=0
  shift 2
  if [ ! -f "$file" ]; then
    fail "$name: no output file $file"
    return
  fi
  for re in "$@"; do
    grep -qE -- "$re" "$file" || { fail "$name: '$re' not in $file"; miss=1; }
  done
  if [ "$miss" -ne 0 ]; then echo "----- $file"; cat "$file"; fi
}

# no_leftovers NAME: nothing of job $JOB runs once sbatch --wait returned
# (a few seconds of grace for the step's own teardown).
no_leftovers() {
  local left
  for _ in $(seq 50); do
    left=$(job_procs "$JOB")
    [ -z "$left" ] && return
    sleep 0.1
  done
  fail "$1: processes of job $JOB still run after it ended:"$'\n'"$left"
}

# (a) A trivial batch script.
cat >trivial.sh <<'EOF'
#!/bin/bash
#SBATCH --job-name=trivial
#SBATCH --output=trivial-%j.out
echo "hello from job $SLURM_JOB_ID on $(hostname -s), tasks $SLURM_NTASKS, conf $SLURM_CONF"
EOF
start trivial 60 -n 1 trivial.sh

# (b) and (c): the template verbatim. It runs "$BUILD/apps/mpx-seeds" from
# the submission directory and writes mpx-seeds-<job>.out there; mpirun
# (or srun) takes the task count from the allocation: 4 ranks, 3 workers.
# (Not -n 3: with the template's --ntasks-per-node=4 SLURM still allocates
# 4 tasks, mpirun then starts 4 ranks and srun 3.)
export BUILD
if [ ! -x "$BUILD/apps/mpx-seeds" ]; then
  fail "$BUILD/apps/mpx-seeds is missing: build the apps first"
  exit 1
fi
for launcher in mpirun srun; do
  MPX_LAUNCHER=$launcher start "seeds-$launcher" 150 -N 1 \
    "$SRC/slurm/mpx-seeds.sbatch"
done

collect trivial
[ "$RC" -eq 0 ] || fail "trivial: sbatch --wait returned $RC, not 0"
expect trivial "trivial-$JOB.out" \
  "^hello from job $JOB on $(hostname -s), tasks 1, conf $SLURM_CONF\$"
no_leftovers trivial

seeds_checks=(
  '^mpx-seeds: 3 worker\(s\)'
  'result 4: 40'
  'failed on rank [123] of 4 '
  '^10 callbacks ran; pool shut down cleanly'
)
for launcher in mpirun srun; do
  name=seeds-$launcher
  collect "$name"
  [ "$RC" -eq 0 ] || fail "$name: sbatch --wait returned $RC, not 0"
  expect "$name" "mpx-seeds-$JOB.out" "${seeds_checks[@]}"
  # srun makes a job step (slurmd launches its tasks); mpirun on the batch
  # host starts its ranks itself.
  if grep -q "launch task StepId=$JOB\.0 " "$D/slurmd.log"; then step=yes; else step=no; fi
  case $launcher:$step in
    srun:no) fail "$name: no srun step StepId=$JOB.0 in slurmd.log" ;;
    mpirun:yes) fail "$name: a step StepId=$JOB.0 was launched, not mpirun" ;;
  esac
  no_leftovers "$name"
done

[ "$failures" -eq 0 ] || exit 1
exit 0
