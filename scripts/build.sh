#!/usr/bin/env bash
# Configures and builds mpx into a build directory (default: build).
# Usage: scripts/build.sh [--sanitize address|thread] [--release]
# The sanitizer builds go to build-asan / build-tsan.
set -euo pipefail
cd "$(dirname "$0")/.."
san=""
type=RelWithDebInfo
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) san="$2"; shift 2 ;;
    --release) type=Release; shift ;;
    *) echo "usage: scripts/build.sh [--sanitize address|thread] [--release]" >&2; exit 2 ;;
  esac
done
dir=${BUILD_DIR:-build}
case "$san" in
  "") ;;
  address) dir=${BUILD_DIR:-build-asan} ;;
  thread) dir=${BUILD_DIR:-build-tsan} ;;
  *) echo "scripts/build.sh: unknown sanitizer '$san'" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DMPX_SANITIZE="$san" >/dev/null
cmake --build "$dir" -j"$(nproc)"
echo "$dir"
