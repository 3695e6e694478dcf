#!/usr/bin/env bash
# Install the Debian packages xmc needs, only those missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config zlib1g-dev libopenblas-openmp-dev
      libcmocka-dev libutf8proc-dev libcjson-dev libopenmpi-dev openmpi-bin
      clang libclang-rt-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "xmc: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
