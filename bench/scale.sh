#!/usr/bin/env bash
# Renee's hybrid parallelism (docs/dist.md) at P = 1, 2, 4 ranks on a
# synthetic data set with many labels (default 4M, few points): per-rank
# peak RSS (the classifier shard and its momentum halve with each doubling
# of P), step time, the share of it spent in collectives, and the bytes
# each rank sends per step (xmc_dist_bytes_sent) against the formula of
# docs/dist.md. On a small machine the P > 1 runs are oversubscribed: they
# show memory and traffic, not speed-up (the ranks share the cores).
# Then a wire check independent of xmc's accounting: 2 ranks over TCP only
# on a smaller label set, the loopback interface's transmitted bytes
# (/proc/net/dev) for WIRE_STEPS2 minus WIRE_STEPS1 steps, per step and
# rank, against bytes_sent (the rest is TCP/IP and MPI headers; other
# loopback users on the machine would add noise).
#
#   bash bench/scale.sh                          # 4M labels, d 256 -> 64
#   LABELS=400000 STEPS=3 bash bench/scale.sh    # quicker
# Environment: XMC_BUILD (default build), LABELS, POINTS, FEATURES, DIM,
# BOTTLENECK, BATCH, STEPS, RANKS ("1 2 4"), THREADS (per rank), DIR,
# WIRE (1; 0 skips the wire check), WIRE_LABELS, WIRE_STEPS1, WIRE_STEPS2.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${XMC_BUILD:-build}
LABELS=${LABELS:-4000000} POINTS=${POINTS:-2000} FEATURES=${FEATURES:-2000}
DIM=${DIM:-256} BOTTLENECK=${BOTTLENECK:-64} BATCH=${BATCH:-64} STEPS=${STEPS:-3}
RANKS=${RANKS:-1 2 4} THREADS=${THREADS:-1}
xmc=$PWD/$build/xmc
[ -x "$xmc" ] || { echo "scale.sh: $xmc not built" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "scale.sh: needs mpirun (Open MPI)" >&2; exit 1; }
dir=${DIR:-$(mktemp -d /tmp/xmc_scale.XXXXXX)}
mkdir -p "$dir"
trap 'rm -rf "$dir"/m*' EXIT
mpi=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
export OMP_NUM_THREADS=$THREADS OMP_WAIT_POLICY=passive

[ -f "$dir/data/trn_X_Y.txt" ] ||
  "$xmc" synth --out "$dir/data" --points "$POINTS" --labels "$LABELS" --features "$FEATURES" \
    --test-frac 0.01 --seed 1 > /dev/null 2>&1
args=(--train "$dir/data/trn" --dim "$DIM" --bottleneck "$BOTTLENECK" --batch "$BATCH"
      --max-steps "$STEPS" --epochs 1 --threads "$THREADS" --seed 1)
echo "labels $LABELS, points $POINTS, d $DIM -> $BOTTLENECK, batch $BATCH, $STEPS steps," \
     "$THREADS thread(s) per rank, $(nproc --all) cores; load: $(uptime | sed 's/.*load/load/')"
printf "%-3s %-28s %9s %7s %14s %14s %14s\n" P "peak RSS per rank (MB)" "step (s)" "comm %" \
  "bytes/step" "formula" "dense part"
for P in $RANKS; do
  log=$dir/p$P.log
  rm -rf "$dir/m$P"
  if [ "$P" = 1 ]; then
    "$xmc" train "${args[@]}" --model "$dir/m$P" > "$log" 2>&1
    rss=$(sed -n 's/.*peak RSS \([0-9.]*\) MB.*/\1/p' "$log" | tail -1)
    step=$(sed -n 's/^stopped after \([0-9]*\) steps.* in \([0-9.]*\)s.*/\2 \1/p' "$log" |
           awk '{ printf "%.3f", $1 / $2 }')
    printf "%-3s %-28s %9s %7s %14s %14s %14s\n" 1 "$rss" "$step" 0 0 0 0
  else
    "${mpi[@]}" -np "$P" "$xmc" train "${args[@]}" --model "$dir/m$P" > "$log" 2>&1
    line=$(grep '^dist:' "$log")
    rss=$(sed 's/.*peak RSS per rank MB: //' <<< "$line")
    step=$(sed -n 's/.*; step \([0-9.]*\)s, .*/\1/p' <<< "$line")
    comm=$(sed -n 's/.*communication [0-9.]*s (\([0-9.]*\)%).*/\1/p' <<< "$line")
    sent=$(sed -n 's/.*per step (rank 0) \([0-9]*\), model \([0-9]*\) .*/\1/p' <<< "$line")
    model=$(sed -n 's/.*per step (rank 0) \([0-9]*\), model \([0-9]*\) .*/\2/p' <<< "$line")
    dense=$(sed -n 's/.*N_enc=[0-9]*: \([0-9]*\)).*/\1/p' <<< "$line")
    printf "%-3s %-28s %9s %7s %14s %14s %14s\n" "$P" "$rss" "$step" "$comm" "$sent" "$model" "$dense"
  fi
done
echo "(logs in $dir/p*.log; bytes/step: xmc_dist_bytes_sent of rank 0 per step; formula:" \
     "docs/dist.md, dense part + the sparse first-layer rows)"

WIRE=${WIRE:-1} WIRE_LABELS=${WIRE_LABELS:-20000} WIRE_STEPS1=${WIRE_STEPS1:-10}
WIRE_STEPS2=${WIRE_STEPS2:-60}
[ "$WIRE" = 1 ] && [ -r /proc/net/dev ] || exit 0
[ -f "$dir/wire/trn_X_Y.txt" ] ||
  "$xmc" synth --out "$dir/wire" --points "$POINTS" --labels "$WIRE_LABELS" \
    --features "$FEATURES" --test-frac 0.01 --seed 1 > /dev/null 2>&1
lo_tx() { awk '/^ *lo:/ { print $10 }' /proc/net/dev; }
declare -A tx sent
for n in "$WIRE_STEPS1" "$WIRE_STEPS2"; do
  rm -rf "$dir/mw"
  a=$(lo_tx)
  "${mpi[@]}" --mca btl tcp,self -np 2 "$xmc" train --train "$dir/wire/trn" --dim "$DIM" \
    --bottleneck "$BOTTLENECK" --batch "$BATCH" --max-steps "$n" --epochs 1000 \
    --threads "$THREADS" --seed 1 --model "$dir/mw" > "$dir/wire$n.log" 2>&1
  tx[$n]=$(( $(lo_tx) - a ))
  sent[$n]=$(sed -n 's/.*per step (rank 0) \([0-9]*\),.*/\1/p' "$dir/wire$n.log")
done
awk -v t1="${tx[$WIRE_STEPS1]}" -v t2="${tx[$WIRE_STEPS2]}" -v s1="${sent[$WIRE_STEPS1]}" \
    -v s2="${sent[$WIRE_STEPS2]}" -v n1="$WIRE_STEPS1" -v n2="$WIRE_STEPS2" 'BEGIN {
  wire = (t2 - t1) / (n2 - n1) / 2; acc = (s2 * n2 - s1 * n1) / (n2 - n1)
  printf "wire check (2 ranks, TCP on loopback, %d labels): %.0f bytes per step and rank on the" \
         " wire, %.0f counted by xmc_dist_bytes_sent: ratio %.3f\n", '"$WIRE_LABELS"', wire, acc, wire / acc }'
