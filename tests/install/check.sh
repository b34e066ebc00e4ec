#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, then builds a consumer
# with find_package(mpx) and another with pkg-config, and runs both.
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/mpx.h"
test -f "$work/prefix/lib/cmake/mpx/mpxConfig.cmake" || test -f "$work/prefix/lib64/cmake/mpx/mpxConfig.cmake"
cmake -S "$src" -B "$work/b" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/b" >/dev/null
libdir=$(dirname "$(find "$work/prefix" -name 'libmpx.so*' | head -n 1)")
LD_LIBRARY_PATH="$libdir" "$work/b/consumer"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -o "$work/pc" "$src/consumer.c" $(pkg-config --cflags --libs mpx)
LD_LIBRARY_PATH="$libdir" "$work/pc"
echo "install check: find_package and pkg-config consumers passed"
