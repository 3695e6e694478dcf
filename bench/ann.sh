#!/usr/bin/env bash
# Side-by-side ANN benchmark: xmc's HNSW vs hnswlib on the same synthetic
# vectors, parameters and threads. `xmc bench ann --dump --save` generates
# the data, builds (build time), measures, and writes the vectors, exact
# ground truth and its index; the hnswlib shim (bench/hnswlib_shim.cpp, built
# when libhnswlib-dev is installed) builds hnswlib on the same vectors, loads
# the xmc index, and times both searches interleaved (fair on a shared
# machine); the table joins both, then hnswlib's per-query cost (nodes
# expanded, neighbour entries scanned: load-independent).
#
#   bash bench/ann.sh                       # 1M random + 1M clustered, d=64
#   N=100000 EF=10,40,160 bash bench/ann.sh # quicker
# Environment: XMC_BUILD (build dir, default build), N, DIM, DATA, METRIC,
# M, EFC, EF, K, Q (queries), LAT (single-query timings), REPS (batch
# repetitions, best kept), THREADS, SEED.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${XMC_BUILD:-build}
N=${N:-1000000} DIM=${DIM:-64} DATA=${DATA:-random,clustered} METRIC=${METRIC:-l2}
M=${M:-16} EFC=${EFC:-200} EF=${EF:-10,20,40,80,160,320} K=${K:-10} Q=${Q:-1000}
LAT=${LAT:-1000} REPS=${REPS:-5} THREADS=${THREADS:-$(nproc)} SEED=${SEED:-1}
xmc=$build/xmc shim=$build/bench/hnswlib_shim
[ -x "$xmc" ] || { echo "ann.sh: $xmc not built" >&2; exit 1; }
dir=$(mktemp -d /tmp/xmc_ann.XXXXXX)
trap 'rm -rf "$dir"' EXIT

# One data set at a time, xmc then hnswlib, so each pair runs under the
# same machine load (it is shared; absolute numbers drift).
: > "$dir/xmc.txt"
: > "$dir/hnswlib.txt"
for d in ${DATA//,/ }; do
    "$xmc" bench ann --n "$N" --dim "$DIM" --data "$d" --metric "$METRIC" --M "$M" \
        --ef-construction "$EFC" --ef "$EF" --k "$K" --queries "$Q" --latency "$LAT" \
        --reps "$REPS" --threads "$THREADS" --seed "$SEED" --dump "$dir" --save "$dir/idx" \
        | tee -a "$dir/xmc.txt"
    if [ -x "$shim" ]; then
        "$shim" --dir "$dir" --data "$d" --n "$N" --dim "$DIM" --queries "$Q" --k "$K" \
            --metric "$METRIC" --M "$M" --ef-construction "$EFC" --ef "$EF" --latency "$LAT" \
            --reps "$REPS" --threads "$THREADS" --seed "$SEED" --xmc-index "$dir/idx.$d.hnsw" \
            | tee -a "$dir/hnswlib.txt"
    else
        echo "ann.sh: $shim not built (apt-get install libhnswlib-dev); xmc only" >&2
    fi
    rm -f "$dir/$d".*.f32 "$dir/$d".gt.i32 "$dir/idx.$d.hnsw"
done

echo
echo "n=$N d=$DIM metric=$METRIC M=$M efC=$EFC k=$K queries=$Q threads=$THREADS"
# Search rows: the shim's interleaved ones when it ran, else xmc's own.
if [ -s "$dir/hnswlib.txt" ]; then
    { grep '^BUILD' "$dir/xmc.txt"; cat "$dir/hnswlib.txt"; }
else
    cat "$dir/xmc.txt"
fi | awk '
$1 == "BUILD" { b[$2 "," $3] = $4; ds[$3] = 1 }
$1 == "COST" { cost[$3 "," $4] = sprintf("%.0f hops, %.0f neighbour entries scanned", $5, $6) }
$1 == "RESULT" { r[$2 "," $3 "," $4] = $5; q[$2 "," $3 "," $4] = $6;
                 l[$2 "," $3 "," $4] = sprintf("%.0f/%.0f", $7, $8);
                 if (!(($3 "," $4) in seen)) { seen[$3 "," $4] = 1; order[++n] = $3 "," $4 } }
END {
  for (d in ds) printf("build %-10s xmc %8.1f s   hnswlib %8s s   ratio %s\n", d, b["xmc," d],
      (("hnswlib," d) in b) ? sprintf("%.1f", b["hnswlib," d]) : "-",
      (("hnswlib," d) in b) ? sprintf("%.2f", b["hnswlib," d] / b["xmc," d]) : "-");
  printf("%-10s %5s | %8s %9s %13s | %8s %9s %13s | %7s\n", "data", "ef", "xmc R@k", "xmc q/s",
         "p50/p99 us", "hnsw R@k", "hnsw q/s", "p50/p99 us", "q/s x");
  for (i = 1; i <= n; i++) {
    split(order[i], a, ","); kx = "xmc," order[i]; kh = "hnswlib," order[i];
    printf("%-10s %5s | %8s %9s %13s | %8s %9s %13s | %7s\n", a[1], a[2], r[kx], q[kx], l[kx],
           (kh in r) ? r[kh] : "-", (kh in q) ? q[kh] : "-", (kh in l) ? l[kh] : "-",
           (kh in q && q[kh] > 0) ? sprintf("%.2f", q[kx] / q[kh]) : "-");
  }
  for (i = 1; i <= n; i++)
    if (order[i] in cost) {
      split(order[i], a, ",");
      printf("hnswlib cost per query  %-10s ef %5s: %s\n", a[1], a[2], cost[order[i]]);
    }
}'
