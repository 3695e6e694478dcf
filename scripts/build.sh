#!/usr/bin/env bash
# Configure and build xmc into ${XMC_BUILD:-build}. XMC_SANITIZE=1 adds
# AddressSanitizer + UBSan. Warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
build=${XMC_BUILD:-build}
san=OFF
[ "${XMC_SANITIZE:-0}" = 1 ] && san=ON
cmake -S . -B "$build" -DXMC_WERROR=ON -DXMC_SANITIZE=$san >"$build.configure.log" 2>&1 \
  || { cat "$build.configure.log" >&2; exit 1; }
cmake --build "$build" -j"$(nproc)"
