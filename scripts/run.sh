#!/usr/bin/env bash
# The main job, from a fresh machine: installs what is missing, builds,
# generates the default data set (400 spoken digits, espeak-ng) if it is
# not there, runs mpx-features on it under mpirun (1 root + NP-1 workers),
# and shows where the HDF5 file is and what it holds.
# Usage: scripts/run.sh [NP] (default 4 ranks)
# Environment: MPX_DATA (default data/digits), MPX_OUT (default
# build/features.h5; replaced on every run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
dir=$(bash scripts/build.sh | tail -n 1)
np=${1:-4}
data=${MPX_DATA:-data/digits}
out=${MPX_OUT:-$dir/features.h5}
bash scripts/make_dataset.sh "$data" 400
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
set -x
mpirun -n "$np" --oversubscribe --bind-to none \
  "$dir/apps/mpx-features" "$data" -o "$out" --overwrite
h5ls -r "$out"
{ set +x; } 2>/dev/null
/usr/bin/python3 - "$out" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    print(f"\n{sys.argv[1]}:")
    for k in ("task", "items", "ranks", "mpx_version", "start_time", "end_time"):
        print(f"  @{k} = {f.attrs[k]}")
    feat, tgt, st = f["feature"], f["target"][()], f["file_status"][()]
    print(f"  feature {feat.dtype} {feat.shape}, target {tgt.dtype} {tgt.shape}")
    print(f"  files read: {(st == 0).sum()}, failed: {(st != 0).sum()}")
    print(f"  targets: {dict(zip(*np.unique(tgt, return_counts=True)))}")
PY
