#!/usr/bin/env bash
# Renee's hybrid parallelism end to end (docs/dist.md): 2 ranks train the
# same model as 1 process (same global batch and seed; dense head with and
# without bottleneck, and SPARTEX's sparse head), a 2-rank checkpoint predicts the same on 1 rank and
# on 2, a 1-process checkpoint re-shards onto 3 ranks, the same over TCP
# only, resume on a different rank count, and a failing rank stops the job
# with a message on rank 0 and a consistent checkpoint.
set -euo pipefail
XMC=${XMC:?XMC must point at the xmc binary}
T=${XMC_TMP:-$(mktemp -d)}/dist_train
rm -rf "$T"
mkdir -p "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "skip: no mpirun"; exit 77; }
# Open MPI keeps MPI_Init's allocations to exit (see dist_mpi.sh): leak
# checking off for the ranks only; the single-process runs below keep it.
mpi=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive

"$XMC" synth --out "$T/data" --points 1500 --labels 301 --features 700 --seed 3 >/dev/null 2>&1
# Dropout on (0.2): masks are keyed by the row of the global batch, so a
# rank draws the masks one process draws for its rows (docs/dist.md).
# One model (--ensemble 1) without a kNN memory (--knn 0): one process
# would otherwise take the auto ensemble and memory, which mpirun does not
# shard.
common=(--train "$T/data/trn" --test "$T/data/tst" --dim 48 --epochs 2 --batch 50 --dropout 0.2
        --seed 5 --threads 1 --ensemble 1 --knn 0)

# Same top-k labels per row and scores within fp32 reduction tolerance; a
# label may differ only at a near-tie with the k-th score.
same_preds() { # A B what
  awk -v what="$3" 'BEGIN { tol = 2e-3 }
    FNR == 1 { next }
    NR == FNR { a[FNR] = $0; next }
    {
      n = split(a[FNR], x, " "); m = split($0, y, " ")
      if (n != m) { print what ": row " FNR-1 " has " n " vs " m " labels"; bad = 1; exit }
      delete s; lo = 1e30
      for (i = 1; i <= n; i++) { split(x[i], p, ":"); s[p[1]] = p[2]; if (p[2] + 0 < lo) lo = p[2] + 0 }
      for (i = 1; i <= m; i++) {
        split(y[i], q, ":")
        if (q[1] in s) {
          d = s[q[1]] - q[2]; if (d < 0) d = -d
          if (d > tol * (1 + (q[2] < 0 ? -q[2] : q[2]))) { print what ": row " FNR-1 " label " q[1] " score " s[q[1]] " vs " q[2]; bad = 1; exit }
        } else if (q[2] - lo > tol || lo - q[2] > tol) {
          print what ": row " FNR-1 " label " q[1] " not in the other top-k (no near-tie)"; bad = 1; exit
        }
      }
      rows++
    }
    END { if (!bad && rows < 1) { print what ": no rows compared"; bad = 1 } exit bad }' "$1" "$2"
}

for variant in plain bottleneck spartex; do
  extra=()
  [ "$variant" = bottleneck ] && extra=(--bottleneck 16)
  # SPARTEX's fixed fan-in head, sharded the same way, rewiring per shard.
  [ "$variant" = spartex ] && extra=(--recipe spartex --fan-in 16 --rewire-interval 5)
  "$XMC" train "${common[@]}" "${extra[@]}" --model "$T/$variant-1" 2> "$T/$variant-1.log" ||
    fail "$variant: 1-process train: $(tail -3 "$T/$variant-1.log")"
  if ! "${mpi[@]}" -np 2 "$XMC" train "${common[@]}" "${extra[@]}" --model "$T/$variant-2" \
    > "$T/$variant-2.log" 2>&1; then
    grep -q "built without MPI" "$T/$variant-2.log" && { echo "skip: xmc built without MPI"; exit 77; }
    fail "$variant: 2-rank train: $(tail -5 "$T/$variant-2.log")"
  fi
  # Rank 0 alone prints progress; the dist summary names both ranks.
  [ "$(grep -c '^epoch 2/2: loss' "$T/$variant-2.log")" = 1 ] || fail "$variant: epoch lines not from rank 0 alone"
  grep -q "^dist: 2 ranks" "$T/$variant-2.log" || fail "$variant: no dist summary"
  # One head file per shard, listed in the manifest written last.
  for r in 0 1; do
    ls "$T/$variant-2"/head-s*-r${r}of2.bin >/dev/null 2>&1 || fail "$variant: no shard $r file"
  done
  grep -q '"head_shards"' "$T/$variant-2/config.json" || fail "$variant: manifest lacks head_shards"
  # Same epoch losses (printed to 4 decimals) as the single process.
  diff <(grep -o '^epoch [0-9]/2: loss [0-9.]*' "$T/$variant-1.log") \
       <(grep -o '^epoch [0-9]/2: loss [0-9.]*' "$T/$variant-2.log") > /dev/null ||
    fail "$variant: 2-rank losses differ from 1 process"
  "$XMC" predict --model "$T/$variant-1" --input "$T/data/tst" --out "$T/$variant-p1.txt" --threads 1 2>/dev/null
  "$XMC" predict --model "$T/$variant-2" --input "$T/data/tst" --out "$T/$variant-p21.txt" --threads 1 2>/dev/null ||
    fail "$variant: the 2-rank checkpoint does not load on 1 process"
  "${mpi[@]}" -np 2 "$XMC" predict --model "$T/$variant-2" --input "$T/data/tst" \
    --out "$T/$variant-p22.txt" --threads 1 > "$T/$variant-p22.log" 2>&1 ||
    fail "$variant: 2-rank predict: $(tail -3 "$T/$variant-p22.log")"
  same_preds "$T/$variant-p1.txt" "$T/$variant-p21.txt" "$variant 1 vs 2 ranks" || fail "$variant: models differ"
  cmp -s "$T/$variant-p21.txt" "$T/$variant-p22.txt" ||
    fail "$variant: the 2-rank checkpoint predicts differently on 1 rank and on 2"
done

# A 1-process checkpoint re-sharded onto 3 ranks predicts byte for byte the same.
"${mpi[@]}" -np 3 "$XMC" predict --model "$T/plain-1" --input "$T/data/tst" --out "$T/p13.txt" \
  --threads 1 > "$T/p13.log" 2>&1 || fail "3-rank predict: $(tail -3 "$T/p13.log")"
cmp -s "$T/plain-p1.txt" "$T/p13.txt" || fail "re-sharded onto 3 ranks: predictions differ"

# --ann under mpirun: one HNSW per label shard (each rank writes its own),
# the per-rank lists merged on rank 0; top-1 agrees with one process's
# single index on >= 99% of rows (two graphs, so not byte for byte).
"$XMC" predict --model "$T/plain-2" --input "$T/data/tst" --out "$T/ann1.txt" --ann --ef 200 \
  --threads 1 > "$T/ann1.log" 2>&1 || fail "1-process --ann: $(tail -3 "$T/ann1.log")"
"${mpi[@]}" -np 2 "$XMC" predict --model "$T/plain-2" --input "$T/data/tst" --out "$T/ann2.txt" \
  --ann --ef 200 --threads 1 > "$T/ann2.log" 2>&1 || fail "2-rank --ann: $(tail -3 "$T/ann2.log")"
ls "$T/plain-2"/ann-mips-*-s0-151-of2-*.hnsw "$T/plain-2"/ann-mips-*-s151-301-of2-*.hnsw \
  >/dev/null 2>&1 || fail "2-rank --ann: shard index files missing"
awk 'FNR == 1 { next }
  { best = ""; bs = -1e30
    for (i = 1; i <= NF; i++) { split($i, p, ":"); if (p[2] + 0 > bs) { bs = p[2] + 0; best = p[1] } }
    if (NR == FNR) top[FNR] = best; else { rows++; same += (top[FNR] == best) } }
  END { printf "ann top-1: %d of %d rows agree\n", same, rows; exit !(rows > 0 && same >= 0.99 * rows) }' \
  "$T/ann1.txt" "$T/ann2.txt" || fail "2-rank --ann: top-1 differs from 1 process on > 1% of rows"

# TCP only: not bound to shared memory.
"${mpi[@]}" --mca btl tcp,self -np 2 "$XMC" train "${common[@]}" --bottleneck 16 --model "$T/tcp" \
  > "$T/tcp.log" 2>&1 || fail "tcp train: $(tail -5 "$T/tcp.log")"
"${mpi[@]}" --mca btl tcp,self -np 2 "$XMC" predict --model "$T/tcp" --input "$T/data/tst" \
  --out "$T/tcp-p.txt" --threads 1 > "$T/tcp-p.log" 2>&1 || fail "tcp predict: $(tail -3 "$T/tcp-p.log")"
same_preds "$T/bottleneck-p1.txt" "$T/tcp-p.txt" "tcp vs 1 process" || fail "tcp: model differs"

# A rank that fails stops the job: clear message on rank 0, no hang, and the
# last checkpoint (epoch 1, 24 steps) stays complete and loadable.
set +e
XMC_DIST_FAULT=1:40 timeout 60 "${mpi[@]}" -x XMC_DIST_FAULT -np 2 "$XMC" train "${common[@]}" \
  --model "$T/fault" > "$T/fault.log" 2>&1
rc=$?
set -e
[ "$rc" != 0 ] || fail "fault: job exited 0"
[ "$rc" != 124 ] || fail "fault: job hung"
grep -q "rank 1 of 2 failed at step 40: injected fault" "$T/fault.log" ||
  fail "fault: no message naming rank 1 on rank 0: $(tail -5 "$T/fault.log")"
grep -q '"epochs_done":[[:space:]]*1' "$T/fault/config.json" || fail "fault: checkpoint lost"

# Resume on another rank count from that checkpoint: epoch 1 on 2 ranks,
# epoch 2 on 1 process (the head's optimizer state re-sharded with it) =
# 2 epochs on 1 process.
"$XMC" train --model "$T/fault" --train "$T/data/trn" --resume --threads 1 2> "$T/res.log" ||
  fail "resume on 1 process: $(tail -3 "$T/res.log")"
"$XMC" predict --model "$T/fault" --input "$T/data/tst" --out "$T/res-p.txt" --threads 1 2>/dev/null
same_preds "$T/plain-p1.txt" "$T/res-p.txt" "2 ranks then resumed on 1" || fail "resume across rank counts differs"
echo "dist_train: 2 ranks = 1 process (plain, bottleneck, spartex, tcp), re-shard 2->1, 1->3, resume 2->1, fault ok"
