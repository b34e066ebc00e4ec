#!/usr/bin/env bash
# The installed package of an mpx built with MPICH, on a machine where
# another MPI (Debian: Open MPI) is the default: builds mpx from SOURCE_DIR
# with mpicc.mpich into a scratch directory, then runs check.sh on it, whose
# consumers are told nothing of the MPI and must still get MPICH, and run
# under mpiexec.mpich.
# Usage: check_mpich.sh SOURCE_DIR
# Exits 77 (ctest: skipped) when MPICH or its HDF5 is not installed.
set -euo pipefail
src=$1
here=$(cd "$(dirname "$0")" && pwd)
missing=()
command -v mpicc.mpich >/dev/null || missing+=(mpicc.mpich)
command -v mpiexec.mpich >/dev/null || missing+=(mpiexec.mpich)
pkg-config --exists hdf5-mpich 2>/dev/null ||
  missing+=("pkg-config module hdf5-mpich")
if [ ${#missing[@]} -gt 0 ]; then
  list=$(printf '%s, ' "${missing[@]}")
  echo "install check (MPICH): skipped, not found: ${list%, }" \
    "(Debian: apt-get install mpich libmpich-dev libhdf5-mpich-dev)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake -S "$src" -B "$work/build" -DMPI_C_COMPILER=mpicc.mpich \
  -DMPX_BUILD_APPS=OFF -DMPX_BUILD_BENCH=OFF -DMPX_BUILD_TESTS=OFF >/dev/null
cmake --build "$work/build" -j"$(nproc)" >/dev/null
# The package pins MPICH (its wrapper) and libmpx uses MPICH's HDF5.
grep -q 'mpicc\.mpich' "$work/build/lib/mpxConfig.cmake"
# (grep reads all of ldd's output: grep -q may leave ldd writing into a
# closed pipe, and with pipefail its SIGPIPE failed the check now and then)
ldd "$work/build/lib/libmpx.so" | grep 'libhdf5_mpich' >/dev/null
"$here/check.sh" "$work/build" --mpiexec mpiexec.mpich
