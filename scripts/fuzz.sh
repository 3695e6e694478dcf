#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for ${1:-20} seconds,
# seeded from fuzz/corpus/<target>/ (committed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
secs=${1:-20}
build=build-fuzz
CC=clang cmake -S . -B $build -DXMC_FUZZ=ON -DXMC_TESTS=OFF >$build.configure.log 2>&1 \
  || { cat $build.configure.log >&2; exit 1; }
cmake --build $build -j"$(nproc)"
shopt -s nullglob
for f in $build/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  work=$build/corpus-$name
  mkdir -p "$work"
  seeds=()
  [ -d fuzz/corpus/$name ] && seeds=(fuzz/corpus/$name)
  echo "fuzz: $name for ${secs}s"
  "$f" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=0 "$work" "${seeds[@]}" >"$build/$name.log" 2>&1 \
    || { tail -50 "$build/$name.log"; echo "fuzz: $name FAILED"; exit 1; }
done
echo "fuzz: all targets ran clean"
