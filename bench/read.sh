#!/usr/bin/env bash
# Is reading a text data set I/O-bound? Reads the files of a DIR/PREFIX
# split with `cat` and `dd bs=4M` (the raw speed) and with `xmc convert
# --binary` (its "read ... s wall, ... s cpu" line: the load alone, not the
# write), interleaved run by run, warm (page cache) and cold (`sync; echo 3
# > /proc/sys/vm/drop_caches` before every read, when permitted: root, not
# in a container that forbids it). Prints each run, then per mode the best
# and median wall time as MB/s, the CPU-seconds of the xmc read, and the
# ratio xmc wall / cat wall (1.0 = as fast as the raw read).
#
#   bash bench/read.sh                         # /tmp/big1m/trn, 5 runs
#   bash bench/read.sh /data/big1m/trn 3 warm  # PREFIX REPS MODES
#   bash bench/read.sh /tmp/big1m/trn 5 "cold1000 cold500"
# coldN = cold with every read of the disk (cat, dd and xmc alike) limited
# to N MB/s by a block-I/O cgroup (v1 blkio.throttle.read_bps_device or v2
# io.max on the disk under PREFIX; root): a disk of that speed, to tell
# whether the load keeps up with it (this VM's own disk streams ~2 GB/s
# from the host's cache, faster than most storage).
# A 1M-point split: xmc synth --out /tmp/big1m --points 1250000 \
#   --labels 100000 --seed 3 (train = 1M points, 428 MB of text).
# Environment: XMC_BUILD (default build; several build directories,
# space-separated, are run one after the other in every round, labelled
# xmc1, xmc2, ...: before/after comparisons; the one run second in a round
# sometimes pays 20-50 ms more CPU on this VM, so also swap the order or
# list them A B B A), OMP_NUM_THREADS.
# Last measured (2026-11-22 20:49 UTC, 2-core VM, the lead's jobs paused,
# main 6811192 (huge pages for the output, read(2) prefetch), ... 7
# "cold500 cold1000 cold warm"; docs/data.md, "Huge-page and prefetch
# round", has the before/after series):
#   cold cat  best 0.212 s (2020 MB/s), median 0.214 s
#   cold xmc  best 0.237 s (1806 MB/s), median 0.241 s, cpu best 0.390 s median 0.405 s
#   warm xmc  best 0.152 s (2816 MB/s), median 0.157 s, cpu best 0.289 s median 0.294 s
#   cold500 / cold1000 xmc medians 0.787 / 0.377 s against cat 0.848 / 0.444 s
# i.e. cold 1.12 x cat on this VM's ~2 GB/s disk (1.3 x before the round),
# at the disk's speed when it is limited to 500-1000 MB/s.
set -euo pipefail
PREFIX=${1:-/tmp/big1m/trn}
REPS=${2:-5}
MODES=${3:-"warm cold"}
BUILDS=(${XMC_BUILD:-build})
TOOLS=()
for i in "${!BUILDS[@]}"; do
  [ -x "${BUILDS[$i]}/xmc" ] || { echo "no ${BUILDS[$i]}/xmc (build first, or set XMC_BUILD)" >&2; exit 1; }
  if [ ${#BUILDS[@]} = 1 ]; then TOOLS+=(xmc); else TOOLS+=("xmc$((i + 1))"); echo "# xmc$((i + 1)) = ${BUILDS[$i]}/xmc"; fi
done
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
FILES=()
for f in "${PREFIX}_X_Y.txt" "${PREFIX}_X_Xf.txt" "${PREFIX}_X.txt" "$(dirname "$PREFIX")/Y.txt"; do
  [ -f "$f" ] && FILES+=("$f")
done
[ ${#FILES[@]} -gt 0 ] || { echo "no ${PREFIX}_X_Y.txt etc." >&2; exit 1; }
BYTES=$(cat "${FILES[@]}" | wc -c)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"; unthrottle' EXIT
can_drop=0
if [ -w /proc/sys/vm/drop_caches ] && sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then
  can_drop=1
fi
drop() { case $1 in cold*) sync; echo 3 > /proc/sys/vm/drop_caches ;; esac; }
# coldN: a cgroup that limits reads of PREFIX's disk to N MB/s; run() puts
# each timed command into it (CG empty: no limit).
CG=
throttle() {
  local rate=$1 dev pk mm
  dev=$(findmnt -no SOURCE -T "${FILES[0]}") && pk=$(lsblk -no PKNAME "$dev" 2>/dev/null | head -1) &&
    mm=$(lsblk -dno MAJ:MIN "/dev/${pk:-${dev#/dev/}}" | tr -d ' ') || return 1
  if [ -d /sys/fs/cgroup/blkio ]; then
    CG=/sys/fs/cgroup/blkio/xmc-read-bench
    mkdir -p "$CG" && echo "$mm $((rate * 1000000))" > "$CG/blkio.throttle.read_bps_device" || return 1
  elif [ -f /sys/fs/cgroup/cgroup.subtree_control ]; then
    CG=/sys/fs/cgroup/xmc-read-bench
    echo +io > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
    mkdir -p "$CG" && echo "$mm rbps=$((rate * 1000000))" > "$CG/io.max" || return 1
  else
    return 1
  fi
}
unthrottle() { if [ -n "$CG" ]; then rmdir "$CG" 2>/dev/null || true; fi; CG=; }
run() {
  if [ -n "$CG" ]; then
    sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG" "$@"
  else
    "$@"
  fi
}
now() { date +%s.%N; }
echo "# $(date -u +%FT%TZ) ${#FILES[@]} files, $BYTES bytes, $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# files: ${FILES[*]}"
R=$OUT/runs
: > "$R"
for mode in $MODES; do
  case $mode in cold*) if [ $can_drop = 0 ]; then
    echo "# $mode: skipped (cannot write /proc/sys/vm/drop_caches)"
    continue
  fi ;; esac
  case $mode in cold[0-9]*) throttle "${mode#cold}" ||
    { echo "# $mode: skipped (no block-I/O cgroup to limit the disk; needs root)"; continue; } ;; esac
  cat "${FILES[@]}" > /dev/null # warm-up (and the first warm run is not a cold one)
  for i in $(seq "$REPS"); do
    drop "$mode"; s=$(now); run cat "${FILES[@]}" > /dev/null; e=$(now)
    echo "$mode cat $(echo "$e - $s" | bc -l) 0" >> "$R"
    drop "$mode"; s=$(now); for f in "${FILES[@]}"; do run dd if="$f" of=/dev/null bs=4M status=none; done; e=$(now)
    echo "$mode dd $(echo "$e - $s" | bc -l) 0" >> "$R"
    for k in "${!BUILDS[@]}"; do
      drop "$mode"
      line=$(run "${BUILDS[$k]}/xmc" convert --input "$PREFIX" --out "$OUT/x" --binary 2>/dev/null |
             grep -o 'read [0-9.]* s wall, [0-9.]* s cpu') ||
        { echo "${BUILDS[$k]}/xmc convert --input $PREFIX failed" >&2; exit 1; }
      rm -f "$OUT/x.xmcb"
      echo "$mode ${TOOLS[$k]} $(echo "$line" | awk '{print $2, $5}')" >> "$R"
    done
    tail -n $((2 + ${#BUILDS[@]})) "$R" |
      awk '{printf "%s %-4s %7.3f s wall%s\n", $1, $2, $3, $2 ~ /^xmc/ ? sprintf(" %6.3f s cpu", $4) : ""}'
  done
  unthrottle
done
echo "# summary (MB = 1e6 bytes): best / median wall, MB/s of the best, xmc CPU-s best / median"
for mode in $MODES; do
  for tool in cat dd "${TOOLS[@]}"; do
    grep "^$mode $tool " "$R" | sort -k3,3g | awk -v m="$mode" -v t="$tool" -v b="$BYTES" '
      { w[NR] = $3; c[NR] = $4 } END {
        if (NR == 0) exit
        for (i = 2; i <= NR; i++) { v = c[i]; for (j = i - 1; j >= 1 && c[j] > v; j--) c[j + 1] = c[j]; c[j + 1] = v }
        printf "%s %-4s best %.3f s (%.0f MB/s), median %.3f s", m, t, w[1], b / w[1] / 1e6, w[int((NR + 1) / 2)]
        if (t ~ /^xmc/) printf ", cpu best %.3f s median %.3f s", c[1], c[int((NR + 1) / 2)]
        printf "\n"
      }'
  done
  for tool in "${TOOLS[@]}"; do
    awk -v m="$mode" -v t="$tool" -v n="$(nproc)" '
      $1 == m && $2 == "cat" && (c == "" || $3 < c) { c = $3 }
      $1 == m && $2 == t && (x == "" || $3 < x) { x = $3 }
      $1 == m && $2 == t && (u == "" || $4 < u) { u = $4 }
      END { if (c != "" && x != "")
        printf "%s %s/cat: best walls %.2f; best cpu / %d cpus = %.3f s (the wall an idle machine would need) = %.2f x cat\n",
               m, t, x / c, n, u / n, u / n / c }' "$R"
  done
done
