#!/usr/bin/env bash
# xmc train --recipe depsl|unidec (psl.h, docs/unidec.md) on a tiny synth
# set: 1 epoch each with test metrics, the model directory, predict (exact,
# --head, --ann), eval, info, and the errors users see.
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
if "$XMC" train --train "$T/data/trn" --model "$T/unidec" --resume 2> "$T/err"; then
  fail "unidec --resume succeeded"; fi
grep -q "^xmc: .*resume is not supported" "$T/err" || fail "resume message: $(cat "$T/err")"
if "$XMC" train --recipe nosuch --train "$T/data/trn" --model "$T/x" 2> "$T/err"; then
  fail "unknown recipe succeeded"; fi
grep -q "^xmc: .*nosuch" "$T/err" || fail "unknown recipe message: $(cat "$T/err")"
if "$XMC" train --recipe unidec --train "$T/data/trn" --model "$T/x" --encoder bag \
  2> "$T/err"; then fail "unidec --encoder succeeded"; fi
grep -q "^xmc: .*--encoder is for recipes renee and spartex" "$T/err" ||
  fail "unidec --encoder message: $(cat "$T/err")"
echo "ok"
