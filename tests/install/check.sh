#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, then builds a consumer
# with find_package(mpx) and another with pkg-config, told nothing of the
# MPI, checks that each links the MPI libmpx links and no other, and runs
# both (alone, and with --mpiexec under that launcher at 3 ranks); then
# (with --apps) moves the prefix and runs the installed apps alone and
# under mpirun, all without LD_LIBRARY_PATH.
# Usage: check.sh BUILD_DIR [--apps] [--mpiexec LAUNCHER]
set -euo pipefail
build=$1
shift
apps=""
launcher=""
while [ $# -gt 0 ]; do
  case "$1" in
    --apps) apps=--apps; shift ;;
    --mpiexec) launcher=$2; shift 2 ;;
    *) echo "usage: check.sh BUILD_DIR [--apps] [--mpiexec LAUNCHER]" >&2; exit 2 ;;
  esac
done
src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/mpx.h"
test -f "$work/prefix/lib/cmake/mpx/mpxConfig.cmake" || test -f "$work/prefix/lib64/cmake/mpx/mpxConfig.cmake"
cmake -S "$src" -B "$work/b" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/b" >/dev/null
# Nothing below sets LD_LIBRARY_PATH: what is installed must find libmpx
# by itself.
unset LD_LIBRARY_PATH
libdir=$(dirname "$(find "$work/prefix" -name 'libmpx.so*' | head -n 1)")
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# The README's recipe: the rpath makes ./app run from any prefix.
cc -o "$work/pc" "$src/consumer.c" $(pkg-config --cflags --libs mpx) \
  -Wl,-rpath,"$(pkg-config --variable=libdir mpx)"
# The MPI libraries a program loads (libmpi.so.40 of Open MPI, libmpich.so.12
# of MPICH, ...): a consumer that found another MPI than libmpx has two.
mpi_libs() {
  ldd "$1" | awk '$1 ~ /^lib(mpi|mpich)[._]/ {print $1}' | sort -u | paste -sd' '
}
want=$(mpi_libs "$libdir/libmpx.so")
for prog in "$work/b/consumer" "$work/pc"; do
  got=$(mpi_libs "$prog")
  if [ -z "$want" ] || [ "$got" != "$want" ]; then
    echo "install check: $prog loads MPI '$got', libmpx '$want'" >&2
    exit 1
  fi
  "$prog"
  if [ -n "$launcher" ]; then
    # One job of 3 ranks (3 singletons would print 3 lines of 1 worker).
    out=$($launcher -n 3 "$prog")
    echo "$out"
    [ "$(grep -c 'twice(21) = 42 (MPX_OK), 2 workers' <<<"$out")" = 1 ]
  fi
done
echo "install check: find_package and pkg-config consumers passed" \
  "(MPI: $want${launcher:+, also under $launcher -n 3})"
[ "$apps" = --apps ] || exit 0
# The installed apps start, alone and under mpirun, from a moved prefix.
mv "$work/prefix" "$work/moved"
out=$(readelf -d "$work/moved/bin/mpx-seeds")
grep -q 'RUNPATH.*\$ORIGIN' <<<"$out"
out=$("$work/moved/bin/mpx-seeds" --unit 0.01)
grep -q 'pool shut down cleanly' <<<"$out"
out=$(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  mpirun -n 3 --oversubscribe "$work/moved/bin/mpx-seeds" --unit 0.01)
grep -q 'pool shut down cleanly' <<<"$out"
out=$("$work/moved/bin/mpx-features" --help)
grep -q 'usage' <<<"$out"
echo "install check: installed apps at 1 and 3 ranks from a moved prefix," \
  "no LD_LIBRARY_PATH: passed"
