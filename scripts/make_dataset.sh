#!/usr/bin/env bash
# Generates the default spoken-digit data set of mpx-features with espeak-ng
# (offline): COUNT WAV files named <digit>_<voice>_<speed>.wav, the digit
# spoken as its English word by the espeak-ng variants en+m1..m7 and
# en+f1..f4 at 120 to 200 words per minute. File i says digit i % 10; the
# (voice, speed) pair of group j = i / 10 is (j % 11, 120 + 5 (j % 17)),
# unique for up to 1870 files, so every digit is equally represented and
# the set is the same on every machine.
#
# Usage: scripts/make_dataset.sh [DIR] [COUNT]
#   DIR defaults to data/digits under the repository root, COUNT to 400.
# Idempotent: a DIR already holding COUNT .wav files is left alone. The
# files are written into a temporary sibling directory that is renamed to
# DIR at the end, so an interrupted run never leaves a partial data set.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/data/digits}
count=${2:-400}
max=1870

if ! [[ "$count" =~ ^[0-9]+$ ]] || [ "$count" -lt 1 ] || [ "$count" -gt "$max" ]; then
  echo "make_dataset: COUNT must be an integer from 1 to $max, got '$count'" >&2
  exit 2
fi
if ! command -v espeak-ng >/dev/null; then
  echo "make_dataset: espeak-ng not found (apt-get install espeak-ng)" >&2
  exit 1
fi

if [ -d "$dir" ]; then
  have=$(find "$dir" -maxdepth 1 -type f -name '*.wav' | wc -l)
  if [ "$have" -eq "$count" ]; then
    echo "make_dataset: $dir already holds $count .wav files; nothing to do"
    exit 0
  fi
  if [ -n "$(ls -A "$dir")" ]; then
    echo "make_dataset: $dir exists with $have .wav files, not $count;" \
      "remove it or choose another DIR" >&2
    exit 1
  fi
elif [ -e "$dir" ]; then
  echo "make_dataset: $dir exists and is not a directory" >&2
  exit 1
fi

parent=$(dirname "$dir")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.$(basename "$dir").tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

words=(zero one two three four five six seven eight nine)
voices=(m1 m2 m3 m4 m5 m6 m7 f1 f2 f3 f4)
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s.%N)

# One line of arguments per file (word, voice, speed, path), run by
# $jobs espeak-ng processes at a time; any failure fails the pipeline.
# shellcheck disable=SC2016 # $1..$4 belong to the inner sh
for ((i = 0; i < count; i++)); do
  d=$((i % 10))
  j=$((i / 10))
  v=${voices[j % 11]}
  s=$((120 + 5 * (j % 17)))
  printf '%s\0%s\0%s\0%s\0' "${words[d]}" "$v" "$s" "$tmp/${d}_${v}_${s}.wav"
done | xargs -0 -n 4 -P "$jobs" \
  sh -c 'exec espeak-ng -v "en+$2" -s "$3" -w "$4" "$1"' make_dataset

made=$(find "$tmp" -maxdepth 1 -type f -name '*.wav' | wc -l)
if [ "$made" -ne "$count" ]; then
  echo "make_dataset: made $made files instead of $count" >&2
  exit 1
fi
chmod 755 "$tmp"
if [ -d "$dir" ]; then
  rmdir "$dir"
fi
mv -T "$tmp" "$dir"
awk -v n="$count" -v d="$dir" -v t0="$start" -v t1="$(date +%s.%N)" \
  'BEGIN { printf "make_dataset: wrote %d .wav files to %s in %.1f s\n", n, d, t1 - t0 }'
