#!/usr/bin/env bash
# The test command: install what is missing, build (warnings as errors) and run
# the whole suite with ctest. XMC_SANITIZE=1 XMC_BUILD=build-asan for the
# sanitizer run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
build=${XMC_BUILD:-build}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build" && ctest --output-on-failure -j"$(nproc)"
