#!/usr/bin/env bash
# Configures and builds mpx into a build directory (default: build).
# Usage: scripts/build.sh [--sanitize address|thread] [--release]
#                          [--mpi mpich]
# The sanitizer builds go to build-asan / build-tsan; --mpi mpich builds
# with MPICH (mpicc.mpich, installed beside Open MPI) into build-mpich.
set -euo pipefail
cd "$(dirname "$0")/.."
san=""
type=RelWithDebInfo
mpi_args=()
mpi_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) san="$2"; shift 2 ;;
    --release) type=Release; shift ;;
    --mpi)
      case "$2" in
        mpich) mpi_args=(-DMPI_C_COMPILER=mpicc.mpich); mpi_dir=build-mpich ;;
        openmpi) ;;
        *) echo "scripts/build.sh: unknown MPI '$2' (mpich)" >&2; exit 2 ;;
      esac
      shift 2 ;;
    *) echo "usage: scripts/build.sh [--sanitize address|thread] [--release] [--mpi mpich]" >&2; exit 2 ;;
  esac
done
dir=${BUILD_DIR:-${mpi_dir:-build}}
case "$san" in
  "") ;;
  address) dir=${BUILD_DIR:-build-asan} ;;
  thread) dir=${BUILD_DIR:-build-tsan} ;;
  *) echo "scripts/build.sh: unknown sanitizer '$san'" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DMPX_SANITIZE="$san" \
  "${mpi_args[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
echo "$dir"
