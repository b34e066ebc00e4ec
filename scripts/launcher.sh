# launcher.sh -- sourced by the benchmark scripts: the launcher of a build's
# MPI as CMake found it (CMakeCache.txt).
#
#   mpx_launcher BUILD_DIR NP [OPEN_MPI_FLAGS...]
# prints an MPICH build's "MPIEXEC_EXECUTABLE MPIEXEC_NUMPROC_FLAG NP" (no
# Open MPI flag), else "mpirun OPEN_MPI_FLAGS... -n NP".
mpx_launcher() {
  local c=$1/CMakeCache.txt np=$2
  shift 2
  local vendor exe flag
  vendor=$(sed -n 's/^MPX_MPI_VENDOR_CACHED:[A-Z]*=//p' "$c" 2>/dev/null | head -n 1)
  exe=$(sed -n 's/^MPIEXEC_EXECUTABLE:[A-Z]*=//p' "$c" 2>/dev/null | head -n 1)
  flag=$(sed -n 's/^MPIEXEC_NUMPROC_FLAG:[A-Z]*=//p' "$c" 2>/dev/null | head -n 1)
  if [ "$vendor" = mpich ] && [ -n "$exe" ]; then
    echo "$exe ${flag:--n} $np"
  else
    echo "mpirun $* -n $np"
  fi
}
