#!/usr/bin/env bash
# xmc train --encoder bert (tests/data/bert/bert, a tiny random BERT) on a
# tiny synth text set: config.json keeps the checkpoint dir (absolute) and
# options, --dim is ignored, predict --input / --text, info, resume, errors.
set -euo pipefail
XMC=${XMC:?XMC must point at the xmc binary}
SRC=${XMC_SOURCE_DIR:?XMC_SOURCE_DIR must point at the source tree}
T=${XMC_TMP:-$(mktemp -d)}/train_bert
rm -rf "$T"
mkdir -p "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
BERT=$SRC/tests/data/bert/bert

"$XMC" synth --out "$T/data" --points 500 --labels 50 --seed 3 >/dev/null 2>&1
small=(--batch 32 --threads 2 --seed 5)

# Relative --model-dir: stored absolute. --dim 999 is ignored (hidden 32).
(cd "$SRC" && "$XMC" train --train "$T/data/trn" --test "$T/data/tst" --model "$T/m" --epochs 2 \
  --stop-after 1 --encoder bert --model-dir tests/data/bert/bert --max-len 16 --pool cls \
  --dim 999 "${small[@]}") 2> "$T/train.log" || fail "bert train failed: $(tail -3 "$T/train.log")"
grep -q "test P@1" "$T/train.log" || fail "no test metrics"
grep -q '"kind":[[:space:]]*"bert"' "$T/m/config.json" || fail "config: kind not bert"
grep -q "\"extra\":[[:space:]]*\"$BERT,max_len=16,pool=cls\"" "$T/m/config.json" ||
  fail "config: extra $(grep extra "$T/m/config.json")"
grep -q '"dim":[[:space:]]*32,' "$T/m/config.json" || fail "config: dim is not the hidden size"
"$XMC" train --train "$T/data/trn" --model "$T/m" --resume --threads 2 2> "$T/resume.log" ||
  fail "bert resume failed: $(tail -3 "$T/resume.log")"
grep -q '"epochs_done":[[:space:]]*2' "$T/m/config.json" || fail "resume did not finish"

"$XMC" predict --model "$T/m" --input "$T/data/tst" --out "$T/pred.txt" --topk 3 2>/dev/null ||
  fail "predict --input failed"
read -r n l < "$T/pred.txt"
[ "$n" = 100 ] && [ "$l" = 50 ] || fail "pred header '$n $l', expected '100 50'"
"$XMC" eval --truth "$T/data/tst" --pred "$T/pred.txt" > "$T/eval.txt" || fail "eval failed"
head -3 "$T/data/tst_X.txt" | "$XMC" predict --model "$T/m" --text --topk 2 > "$T/text.out" ||
  fail "predict --text failed"
[ "$(grep -c -P '^[123]\t[12]\t\d+\t[0-9.]+\t' "$T/text.out")" = 6 ] || fail "--text: $(cat "$T/text.out")"

"$XMC" info "$T/m" > "$T/info.txt" || fail "info failed"
grep -q "^recipe: renee; encoder: bert ($BERT,max_len=16,pool=cls), width 32" "$T/info.txt" ||
  fail "info encoder line: $(grep encoder: "$T/info.txt")"
grep -q "encoder.layer.1.output.dense.weight" "$T/info.txt" || fail "info lacks bert tensors"

# Errors: message + non-zero exit.
if "$XMC" train --train "$T/data/trn" --model "$T/x" --encoder bert 2> "$T/err"; then
  fail "bert without --model-dir succeeded"; fi
grep -q "^xmc: .*--model-dir" "$T/err" || fail "no --model-dir message: $(cat "$T/err")"
if "$XMC" train --train "$T/data/trn" --model "$T/x" --model-dir "$BERT" 2> "$T/err"; then
  fail "--model-dir without --encoder bert succeeded"; fi
grep -q "^xmc: .*--encoder bert" "$T/err" || fail "message: $(cat "$T/err")"
if "$XMC" train --train "$T/data/trn" --model "$T/x" --encoder bert --model-dir "$T/none" \
  2> "$T/err"; then fail "missing checkpoint dir succeeded"; fi
grep -q "^xmc: .*none" "$T/err" || fail "missing dir message: $(cat "$T/err")"
if "$XMC" train --train "$T/data/trn" --model "$T/x" --encoder bert --model-dir "$BERT" \
  --pool max 2> "$T/err"; then fail "--pool max succeeded"; fi
grep -q "^xmc: .*--pool" "$T/err" || fail "--pool message: $(cat "$T/err")"
printf '%s\n' "3 2 2" "0 0:1" "0,1 1:2" "1 0:1 1:1" > "$T/xc.txt"
if "$XMC" train --train "$T/xc.txt" --model "$T/x" --encoder bert --model-dir "$BERT" \
  2> "$T/err"; then fail "bert on a feature-only set succeeded"; fi
grep -q "^xmc: .*needs texts" "$T/err" || fail "feature-only message: $(cat "$T/err")"
echo "ok"
