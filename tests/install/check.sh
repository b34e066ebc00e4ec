#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, then builds a consumer
# with find_package(mpx) and another with pkg-config, and runs both; then
# (with --apps) moves the prefix and runs the installed apps alone and
# under mpirun, all without LD_LIBRARY_PATH.
# Usage: check.sh BUILD_DIR [--apps]
set -euo pipefail
build=$1
apps=${2:-}
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
"$work/b/consumer"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# The README's recipe: the rpath makes ./app run from any prefix.
cc -o "$work/pc" "$src/consumer.c" $(pkg-config --cflags --libs mpx) \
  -Wl,-rpath,"$(pkg-config --variable=libdir mpx)"
"$work/pc"
echo "install check: find_package and pkg-config consumers passed"
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
