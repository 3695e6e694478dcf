#!/usr/bin/env bash
# Renee's hybrid parallelism (docs/dist.md) at P = 1, 2, 4 ranks on a
# synthetic data set with many labels (default 4M, few points): per-rank
# peak RSS (the classifier shard and its momentum halve with each doubling
# of P), step time, the share of it spent in collectives, and the bytes
# each rank sends per step (xmc_dist_bytes_sent) against the formula of
# docs/dist.md. On a small machine the P > 1 runs are oversubscribed: they
# show memory and traffic, not speed-up (the ranks share the cores).
#
#   bash bench/scale.sh                          # 4M labels, d 256 -> 64
#   LABELS=400000 STEPS=3 bash bench/scale.sh    # quicker
# Environment: XMC_BUILD (default build), LABELS, POINTS, FEATURES, DIM,
# BOTTLENECK, BATCH, STEPS, RANKS ("1 2 4"), THREADS (per rank), DIR.
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
