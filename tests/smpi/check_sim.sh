#!/usr/bin/env bash
# The real library under SimGrid's SMPI at 64 simulated ranks (ctest
# sim_smpi_np64, label smpi): scripts/simulate.sh builds the SMPI variant
# into BUILD_DIR and runs 1 ms spin tasks and tiny tasks, flat and with a
# sub-manager per node; every JSON line must account for every task, with
# 63 workers flat and 61 under 2 sub-managers, a rate above 0, an
# efficiency in (0, 1] (spin) and root_busy in [0, 1]; groups of 16
# ranks cut each node in two (4 sub-managers, 59 workers) and groups of
# 48, larger than a node, join both nodes under one sub-manager (62
# workers); --plot draws them into a PNG.
# Usage: check_sim.sh SOURCE_DIR BUILD_DIR. Exit 77 (skip) without SimGrid.
set -uo pipefail
src=$1 bdir=$2
if ! command -v smpicc >/dev/null || ! command -v smpirun >/dev/null; then
  echo "SKIP: SimGrid's smpicc/smpirun not installed (Debian: libsimgrid-dev)"
  exit 77
fi
out=$("$src/scripts/simulate.sh" --build-dir "$bdir" --ranks 64 --workload spin --us 1000 --tasks 630) || exit 1
out+=$'\n'$("$src/scripts/simulate.sh" --build-dir "$bdir" --ranks 64 --workload tiny --tasks 5000) || exit 1
out+=$'\n'$("$src/scripts/simulate.sh" --build-dir "$bdir" --ranks 64 --workload spin --us 1000 --tasks 630 --dispatcher "16 48") || exit 1
echo "$out"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines() if l.startswith("{")]
want = {"spin": 630, "tiny": 5000}
# Each workload once with each dispatcher (simulate.sh's default).
ok = sorted((d["workload"], d.get("dispatcher")) for d in lines) == [
    ("spin", "16"), ("spin", "48"), ("spin", "flat"), ("spin", "node"),
    ("tiny", "flat"), ("tiny", "node")]
for d in lines:
    bad = []
    # flat: 63 workers; node: a sub-manager per 32-core node (2), which
    # runs no task
    shape = {"flat": (63, 0), "node": (61, 2), "16": (59, 4),
             "48": (62, 1)}[d.get("dispatcher")]
    if d["ranks"] != 64 or (d["workers"], d.get("groups")) != shape:
        bad.append("ranks/workers/groups")
    if d["tasks"] != want[d["workload"]]:
        bad.append("tasks")
    if not d["tasks_per_s"] > 0:
        bad.append("tasks_per_s")
    if d["workload"] == "spin" and not 0 < d["efficiency"] <= 1:
        bad.append("efficiency")
    if not 0 <= d["root_busy"] <= 1:
        bad.append("root_busy")
    if bad:
        ok = False
        print("wrong:", ", ".join(bad), d)
sys.exit(0 if ok else 1)
PY
[ $? -eq 0 ] || exit 1
# The picture of these lines (simulate.sh --plot): a PNG is written.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "$out" > "$tmp/sweep.jsonl"
"$src/scripts/simulate.sh" --plot "$tmp/sim.png" --from "$tmp/sweep.jsonl" || exit 1
[ "$(head -c 8 "$tmp/sim.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || {
  echo "simulate.sh --plot wrote no PNG"; exit 1; }
