#!/usr/bin/env bash
# xmc train --recipe depsl|unidec (psl.h, docs/unidec.md) on a tiny synth
# set: 1 epoch each with test metrics, the model directory, predict (exact,
# --head, --ann), eval, info, bit-identical --resume, and the errors users see.
set -euo pipefail
XMC=${XMC:?XMC must point at the xmc binary}
T=${XMC_TMP:-$(mktemp -d)}/recipes_unidec
rm -rf "$T"
mkdir -p "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$XMC" synth --out "$T/data" --points 2000 --labels 200 --seed 3 >/dev/null 2>&1
small=(--epochs 1 --batch 64 --threads 2 --dim 64 --buckets 16384 --seed 5)

for r in depsl unidec; do
  "$XMC" train --recipe "$r" --train "$T/data/trn" --test "$T/data/tst" --model "$T/$r" \
    "${small[@]}" 2> "$T/$r.log" || fail "$r train exited non-zero: $(tail -3 "$T/$r.log")"
  grep -q "^$r: test P@1 [0-9.]* P@3 [0-9.]* P@5 [0-9.]* PSP@5 [0-9.]*" "$T/$r.log" ||
    fail "$r: no test metrics: $(tail -3 "$T/$r.log")"
  [ -f "$T/$r/unidec.bin" ] || fail "$r: no unidec.bin"
  grep -q "\"recipe\":[[:space:]]*\"$r\"" "$T/$r/config.json" || fail "$r: config lacks recipe"
  grep -q '"hidden":[[:space:]]*64' "$T/$r/config.json" || fail "$r: --dim not mapped to hidden"
  grep -q '"n_labels":[[:space:]]*200' "$T/$r/config.json" || fail "$r: config lacks n_labels"

  "$XMC" predict --model "$T/$r" --input "$T/data/tst" --out "$T/$r.pred" --topk 5 2>/dev/null ||
    fail "$r: predict failed"
  read -r n l < "$T/$r.pred"
  [ "$n" = 400 ] && [ "$l" = 200 ] || fail "$r: pred header '$n $l', expected '400 200'"
  awk 'NR > 1 && NF != 5 { bad = 1 } END { exit bad }' "$T/$r.pred" || fail "$r: rows without 5"
  "$XMC" eval --truth "$T/data/tst" --pred "$T/$r.pred" --train "$T/data/trn" > "$T/$r.eval" ||
    fail "$r: eval failed"
  grep -q "^P " "$T/$r.eval" || fail "$r: eval output: $(cat "$T/$r.eval")"
  # The test P@1 of train and of predict + eval agree (same exact scores).
  p_train=$(grep -o "test P@1 [0-9.]*" "$T/$r.log" | awk '{print $3}')
  p_eval=$(awk '$1 == "P" {print $2}' "$T/$r.eval")
  [ "$p_train" = "$p_eval" ] || fail "$r: P@1 train $p_train, predict+eval $p_eval"

  "$XMC" info "$T/$r" > "$T/$r.info" || fail "$r: info failed"
  grep -q "^recipe: $r" "$T/$r.info" || fail "$r: info lacks the recipe"
done

# unidec: one head at a time, and the HNSW path.
"$XMC" predict --model "$T/unidec" --input "$T/data/tst" --out "$T/de.pred" --head de 2>/dev/null ||
  fail "--head de failed"
"$XMC" predict --model "$T/unidec" --input "$T/data/tst" --out "$T/clf.pred" --head clf \
  2>/dev/null || fail "--head clf failed"
"$XMC" predict --model "$T/unidec" --input "$T/data/tst" --out "$T/ann.pred" --ann --ef 64 \
  2> "$T/ann.log" || fail "--ann failed: $(cat "$T/ann.log")"
grep -q "HNSW" "$T/ann.log" || fail "--ann did not use the HNSW path"
"$XMC" eval --truth "$T/data/tst" --pred "$T/ann.pred" > "$T/ann.eval" || fail "eval of --ann"

# Errors.
if "$XMC" predict --model "$T/depsl" --input "$T/data/tst" --out "$T/x.pred" --head clf \
  2> "$T/err"; then fail "depsl --head clf succeeded"; fi
grep -q "^xmc: .*only the DE head" "$T/err" || fail "message: $(cat "$T/err")"

# Resume: 3 epochs (mining and clustering from epoch 1) stopped after 2 and
# resumed give the same unidec.bin, byte for byte, as 3 epochs in one go; the
# checkpoint carries the optimizer moments, mined negatives and clusters.
three=(--epochs 3 --batch 64 --threads 2 --dim 64 --buckets 16384 --seed 5)
for r in depsl unidec; do
  "$XMC" train --recipe "$r" --train "$T/data/trn" --model "$T/full_$r" "${three[@]}" 2>/dev/null ||
    fail "$r: 3-epoch run"
  [ ! -e "$T/full_$r/unidec.ckpt" ] || fail "$r: checkpoint left after a complete run"
  "$XMC" train --recipe "$r" --train "$T/data/trn" --model "$T/res_$r" "${three[@]}" \
    --stop-after 2 2> "$T/stop.log" || fail "$r: --stop-after 2: $(tail -3 "$T/stop.log")"
  [ -f "$T/res_$r/unidec.ckpt" ] || fail "$r: no checkpoint after --stop-after"
  grep -q "stopped after epoch 2 of 3" "$T/stop.log" || fail "$r: $(tail -3 "$T/stop.log")"
  grep -q '"epochs_done":[[:space:]]*2' "$T/res_$r/config.json" || fail "$r: epochs_done != 2"
  if cmp -s "$T/full_$r/unidec.bin" "$T/res_$r/unidec.bin"; then
    fail "$r: the 2-epoch model equals the 3-epoch one"; fi
  cp "$T/res_$r/unidec.ckpt" "$T/ckpt_$r"
  "$XMC" train --train "$T/data/trn" --model "$T/res_$r" --resume --threads 2 2> "$T/res.log" ||
    fail "$r: --resume: $(tail -3 "$T/res.log")"
  grep -q "resuming after epoch 2" "$T/res.log" || fail "$r: $(cat "$T/res.log")"
  cmp "$T/full_$r/unidec.bin" "$T/res_$r/unidec.bin" ||
    fail "$r: resumed model differs from the uninterrupted run"
  grep -q '"epochs_done":[[:space:]]*3' "$T/res_$r/config.json" || fail "$r: epochs_done != 3"
  [ ! -e "$T/res_$r/unidec.ckpt" ] || fail "$r: checkpoint left after the resumed run ended"
  "$XMC" train --train "$T/data/trn" --model "$T/res_$r" --resume 2> "$T/res.log" ||
    fail "$r: --resume of a finished run"
  grep -q "all epochs done already" "$T/res.log" || fail "$r: $(cat "$T/res.log")"
done
# A damaged checkpoint is refused with its name.
cp "$T/ckpt_unidec" "$T/res_unidec/unidec.ckpt"
printf '\x55' | dd of="$T/res_unidec/unidec.ckpt" bs=1 seek=40 conv=notrunc 2>/dev/null
if "$XMC" train --train "$T/data/trn" --model "$T/res_unidec" --resume 2> "$T/err"; then
  fail "a damaged checkpoint was accepted"; fi
grep -q "^xmc: .*unidec.ckpt.*checksum mismatch" "$T/err" || fail "message: $(cat "$T/err")"
cp "$T/ckpt_unidec" "$T/res_unidec/unidec.ckpt"
truncate -s -100 "$T/res_unidec/unidec.ckpt"
if "$XMC" train --train "$T/data/trn" --model "$T/res_unidec" --resume 2> "$T/err"; then
  fail "a truncated checkpoint was accepted"; fi
grep -q "^xmc: .*unidec.ckpt" "$T/err" || fail "message: $(cat "$T/err")"
if "$XMC" train --recipe nosuch --train "$T/data/trn" --model "$T/x" 2> "$T/err"; then
  fail "unknown recipe succeeded"; fi
grep -q "^xmc: .*nosuch" "$T/err" || fail "unknown recipe message: $(cat "$T/err")"
if "$XMC" train --recipe unidec --train "$T/data/trn" --model "$T/x" --encoder sparse \
  2> "$T/err"; then fail "unidec --encoder sparse succeeded"; fi
grep -q "^xmc: .*the encoder must be bag or bert" "$T/err" ||
  fail "unidec --encoder message: $(cat "$T/err")"
echo "ok"
