#!/usr/bin/env bash
# The bag encoder's idf weights (docs/renee.md): a new text model records
# encoder.extra "idf" and predicts after a reload; a model written before
# idf existed (tests/data/trainer/bag_v1, the mean bag of xmc 0.1.0 at
# 237c38a) still loads and predicts exactly what that build printed;
# --resume of an idf model is bit-identical; --bag mean trains the old kind.
set -euo pipefail
XMC=${XMC:?}
SRC=${XMC_SOURCE_DIR:?}
T=${XMC_TMP:-$(mktemp -d)}
rm -rf "$T" && mkdir -p "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/lib/grain_crude.sh"

printf 'the oil barrel\nharvest of wheat\ncrude wheat 7\n' |
  "$XMC" predict --model "$SRC/tests/data/trainer/bag_v1" --text --topk 2 > "$T/old.out" ||
  fail "old bag model did not load"
cmp -s "$T/old.out" "$SRC/tests/data/trainer/bag_v1_text.out" ||
  fail "old bag model predicts differently: $(diff "$T/old.out" "$SRC/tests/data/trainer/bag_v1_text.out")"
"$XMC" info "$SRC/tests/data/trainer/bag_v1" > "$T/info" || fail "info on the old model"

grain_crude_data "$T"
"$XMC" train --train "$T/texts.txt+$T/labels.txt" --model "$T/new" --epochs 6 --dim 16 --batch 16 \
  --threads 2 2>/dev/null || fail "bag train failed"
grep -q '"extra":[[:space:]]*"idf"' "$T/new/config.json" || fail "new bag model is not idf"
"$XMC" info "$T/new" | grep -qF "bag.idf" || fail "info does not list bag.idf: $("$XMC" info "$T/new")"
grain_crude_predict "$T/new" "$T/text.out"
# --resume reloads the saved idf (no refit): bit-identical to one run.
"$XMC" train --train "$T/texts.txt+$T/labels.txt" --model "$T/part" --epochs 6 --dim 16 --batch 16 \
  --threads 2 --stop-after 2 2>/dev/null || fail "partial train failed"
"$XMC" train --train "$T/texts.txt+$T/labels.txt" --model "$T/part" --resume --threads 2 \
  2>/dev/null || fail "resume failed"
for f in "$T"/new/encoder-*.bin "$T"/new/head-*.bin; do
  cmp -s "$f" "$T/part/$(basename "$f")" || fail "resumed $(basename "$f") differs"
done
# --bag mean: the uni + bigram mean bag, still available for new models.
"$XMC" train --train "$T/texts.txt+$T/labels.txt" --model "$T/mean" --epochs 2 --dim 8 --batch 16 \
  --bag mean --threads 2 2>/dev/null || fail "--bag mean train failed"
grep -q '"extra":[[:space:]]*"mean"' "$T/mean/config.json" || fail "--bag mean not recorded"
if "$XMC" info "$T/mean" | grep -qF "bag.idf"; then fail "--bag mean has an idf"; fi
if "$XMC" train --train "$T/texts.txt+$T/labels.txt" --model "$T/x" --bag tfidf 2> "$T/err"; then
  fail "--bag tfidf accepted"; fi
grep -q "expected idf or mean" "$T/err" || fail "--bag message: $(cat "$T/err")"
# --layers 2 is the sparse encoder's: refused for a bag, not silently ignored.
if "$XMC" train --train "$T/texts.txt+$T/labels.txt" --model "$T/x" --layers 2 2> "$T/err"; then
  fail "--layers 2 accepted for a bag"; fi
grep -q "only the sparse encoder has a second dense layer" "$T/err" || fail "--layers message: $(cat "$T/err")"
echo "ok"
