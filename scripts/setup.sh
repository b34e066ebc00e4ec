#!/usr/bin/env bash
# Installs every Debian package mpx needs to build, test and benchmark,
# including a single-node SLURM (munge, slurmctld, slurmd, slurm-client)
# for the slurm tests (nothing is started: tests/slurm/slurm-up.sh does it)
# and GNU parallel, which the mpx-run tests compare against. MPICH and its
# HDF5 install beside Open MPI, which stays the default (mpicc, mpirun).
# SimGrid (libsimgrid-dev: smpicc, smpirun) runs the library under
# simulated MPI at thousands of ranks (scripts/simulate.sh; matplotlib
# draws its sweep).
# Idempotent: packages already present are not fetched again, and apt is
# only updated when something is missing.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git
  openmpi-bin libopenmpi-dev
  libhdf5-openmpi-dev hdf5-tools
  mpich libmpich-dev libhdf5-mpich-dev
  libcunit1-dev
  libfftw3-dev espeak-ng zlib1g-dev
  python3 python3-mpi4py python3-numpy python3-h5py
  munge slurmctld slurmd slurm-client
  parallel
  libsimgrid-dev python3-matplotlib
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present" >&2
fi
