#!/usr/bin/env bash
# Stops the private SLURM that tests/slurm/slurm-up.sh DIR started, whatever
# state it is in (also after a failed or partial start, or twice): cancels
# every job, stops slurmd, slurmctld and munged (munged only if slurm-up
# started it), each by the PID in its PID file in DIR, then ends whatever
# is left of the jobs: slurmstepd, job processes, and an mpirun that
# outlived its batch shell (with proctrack/linuxproc it is re-parented and
# runs on outside SLURM). Those are found by the SLURM_CONF=DIR/slurm.conf
# in their environment, so another harness's jobs are never touched.
# Usage: tests/slurm/slurm-down.sh DIR     (DIR is kept: logs stay readable)
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: slurm-down.sh DIR" >&2; exit 2; }
[ -d "$1" ] || exit 0
DIR=$(cd "$1" && pwd)
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

# A zombie is gone for our purposes (PID 1 may not reap: not an init).
alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

# The PID in FILE if that process is alive and its command is NAME.
pid_of() {
  local f=$1 name=$2 pid
  [ -r "$f" ] || return 1
  pid=$(tr -dc 0-9 <"$f")
  [ -n "$pid" ] && alive "$pid" || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
  echo "$pid"
}

# TERM, wait up to $2 tenths of a second, then KILL.
stop_pid() {
  local pid=$1 n=${2:-100}
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq "$n"); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  echo "slurm-down: PID $pid needed SIGKILL" >&2
}

# Cancel every job while slurmctld and slurmd still run, so that slurmd
# ends the steps itself; wait for the queue to drain (KillWait is 5 s).
if [ -f "$CONF" ] && pid_of "$DIR/slurmctld.pid" slurmctld >/dev/null; then
  jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    # shellcheck disable=SC2086
    timeout 10 scancel $jobs 2>/dev/null
    for _ in $(seq 150); do
      left=$(timeout 5 squeue -h -t R,CG,PD,S -o %A 2>/dev/null)
      [ -z "$left" ] && break
      sleep 0.1
    done
  fi
fi

if pid=$(pid_of "$DIR/slurmd.pid" slurmd); then stop_pid "$pid"; fi
if pid=$(pid_of "$DIR/slurmctld.pid" slurmctld); then stop_pid "$pid"; fi

# Leftovers of this SLURM's jobs: every process whose environment carries
# SLURM_CONF=DIR/slurm.conf and a job id (the job's processes and an mpirun
# re-parented outside SLURM), slurmstepd (which inherits slurmd's
# environment), and clients still waiting on this SLURM (an sbatch --wait
# of a harness killed outright), but never this script or its callers.
ancestors=" "
p=$$
while [ -n "$p" ] && [ "$p" -gt 1 ]; do
  ancestors+="$p "
  p=$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null)
done
leftovers() {
  local d pid env
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    case "$ancestors" in *" $pid "*) continue ;; esac
    env=$(tr '\0' '\n' 2>/dev/null <"$d/environ") || continue
    grep -qxF "SLURM_CONF=$CONF" <<<"$env" || continue
    case "$(cat "$d/comm" 2>/dev/null)" in
      slurmstepd | sbatch | srun | salloc | sattach) echo "$pid"; continue ;;
    esac
    if grep -q '^SLURM_JOB_ID=' <<<"$env"; then
      echo "$pid"
    fi
  done
}
for sig in TERM KILL; do
  left=$(leftovers)
  [ -z "$left" ] && break
  echo "slurm-down: SIG$sig to leftovers:" >&2
  for pid in $left; do
    echo "  $pid $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | cut -c1-120)" >&2
    kill -"$sig" "$pid" 2>/dev/null
  done
  for _ in $(seq 30); do
    [ -z "$(leftovers)" ] && break
    sleep 0.1
  done
done

if [ -e "$DIR/munge/started-by-us" ] &&
   pid=$(pid_of "$DIR/munge/munged.pid" munged); then
  stop_pid "$pid"
fi
rm -f "$DIR/munge/started-by-us"

left=""
for f in slurmd.pid slurmctld.pid munge/munged.pid; do
  for name in slurmd slurmctld munged; do
    if pid=$(pid_of "$DIR/$f" "$name"); then left+=" $name($pid)"; fi
  done
done
left2=$(leftovers | tr '\n' ' ')
if [ -n "$left$left2" ]; then
  echo "slurm-down: still running:$left $left2" >&2
  exit 1
fi
exit 0
