#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main example: the seeds'
# three examples (download_flag + as_completed, loiter in input order, fib-
# style failures caught by done-callbacks) with one root and three workers.
# Usage: scripts/run.sh [NP] (default 4 ranks)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
dir=$(bash scripts/build.sh | tail -n 1)
np=${1:-4}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
set -x
mpirun -n "$np" --oversubscribe --bind-to none "$dir/apps/mpx-seeds"
