#!/usr/bin/env bash
# cross_launcher.sh LAUNCHER "FLAGS" MPX_BENCH -- mpx-bench built with one
# MPI, started on 2 processes by the other MPI's launcher: every process
# sees itself alone. It must exit non-zero with MPX_ELAUNCH's message
# naming the launcher's variable, never print a result (two separate
# pools, each "succeeding"); with MPX_SINGLETON=1 each process is meant to
# run alone and does.
set -uo pipefail
launcher=$1 flags=$2 bench=$3
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# shellcheck disable=SC2086
"$launcher" -n 2 $flags "$bench" tiny --tasks 100 > "$out" 2>&1
rc=$?
fail() { echo "cross_launcher: $*"; cat "$out"; exit 1; }
[ "$rc" -ne 0 ] || fail "exit 0 under the other MPI's launcher"
grep -q 'launcher of another MPI' "$out" || fail "no MPX_ELAUNCH message"
grep -Eq 'OMPI_COMM_WORLD_SIZE=2|PMI_SIZE=2' "$out" ||
  fail "the message names no launcher variable"
if grep -q '"workload"' "$out"; then fail "a process ran a pool"; fi
# shellcheck disable=SC2086
MPX_SINGLETON=1 "$launcher" -n 2 $flags "$bench" tiny --tasks 100 > "$out" 2>&1 ||
  fail "MPX_SINGLETON=1: exit $?"
[ "$(grep -c '"ranks":1' "$out")" -eq 2 ] || fail "MPX_SINGLETON=1: not two one-process runs"
echo "cross_launcher: refused as it should ($launcher)"
