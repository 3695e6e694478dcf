#!/usr/bin/env bash
# xmc train --recipe spartex (docs/spartex.md): the Renee loop with the fixed
# fan-in sparse head on a tiny synth set: 1 epoch with test metrics and
# rewiring, config.json (recipe, fan_in), predict + eval agreeing with the
# training metrics, info's bytes per label ((4 + 4) F + 4 F momentum),
# --resume bit-identical to an uninterrupted run, and the errors users see.
set -euo pipefail
XMC=${XMC:?XMC must point at the xmc binary}
T=${XMC_TMP:-$(mktemp -d)}/recipes_spartex
rm -rf "$T"
mkdir -p "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$XMC" synth --out "$T/data" --points 2000 --labels 200 --seed 3 >/dev/null 2>&1
small=(--recipe spartex --batch 64 --threads 2 --dim 64 --seed 5 --fan-in 16
       --rewire-interval 5)

"$XMC" train "${small[@]}" --epochs 1 --train "$T/data/trn" --test "$T/data/tst" \
  --model "$T/m" 2> "$T/m.log" || fail "train exited non-zero: $(tail -3 "$T/m.log")"
grep -q "test P@1 [0-9.]* P@3 [0-9.]* P@5 [0-9.]* PSP@5 [0-9.]*" "$T/m.log" ||
  fail "no test metrics: $(tail -3 "$T/m.log")"
grep -q "sparse head F=16: [0-9]* weights rewired this epoch, [1-9][0-9]* rewiring rounds" \
  "$T/m.log" || fail "no rewiring line: $(tail -3 "$T/m.log")"
grep -q '"recipe":[[:space:]]*"spartex"' "$T/m/config.json" || fail "config lacks recipe"
grep -q '"fan_in":[[:space:]]*16' "$T/m/config.json" || fail "config lacks fan_in"

"$XMC" predict --model "$T/m" --input "$T/data/tst" --out "$T/m.pred" --topk 5 2>/dev/null ||
  fail "predict failed"
read -r n l < "$T/m.pred"
[ "$n" = 400 ] && [ "$l" = 200 ] || fail "pred header '$n $l', expected '400 200'"
"$XMC" eval --truth "$T/data/tst" --pred "$T/m.pred" --train "$T/data/trn" > "$T/m.eval" ||
  fail "eval failed"
p_train=$(grep -o "test P@1 [0-9.]*" "$T/m.log" | awk '{print $3}')
p_eval=$(awk '$1 == "P" {print $2}' "$T/m.eval")
[ "$p_train" = "$p_eval" ] || fail "P@1 train $p_train, predict+eval $p_eval"

"$XMC" info "$T/m" > "$T/m.info" || fail "info failed"
grep -q "^recipe: spartex" "$T/m.info" || fail "info lacks the recipe"
# SGDM: (4 + 4) 16 = 128 bytes of W + idx, 4 * 16 = 64 of momentum.
grep -q "^sparse head: 192 bytes per label (W + idx 128, optimizer state 64)" "$T/m.info" ||
  fail "info bytes per label: $(grep -i sparse "$T/m.info")"

# --resume after 1 of 2 epochs ends bit-identical to 2 epochs in one go.
"$XMC" train "${small[@]}" --epochs 2 --train "$T/data/trn" --model "$T/full" 2>/dev/null ||
  fail "full run failed"
"$XMC" train "${small[@]}" --epochs 2 --train "$T/data/trn" --model "$T/part" --stop-after 1 \
  2>/dev/null || fail "partial run failed"
"$XMC" train --train "$T/data/trn" --model "$T/part" --resume --threads 2 2>/dev/null ||
  fail "resume failed"
for f in encoder-s50.bin head-s50.bin optim-s50.bin; do
  cmp -s "$T/full/$f" "$T/part/$f" || fail "resume: $f differs"
done

# --aux-clusters: the meta-classifier until its cutoff epoch, then dropped.
"$XMC" train "${small[@]}" --epochs 2 --aux-clusters 8 --meta-cutoff-epoch 1 \
  --train "$T/data/trn" --test "$T/data/tst" --model "$T/aux" 2> "$T/aux.log" ||
  fail "aux train failed: $(tail -3 "$T/aux.log")"
grep -q "^meta-classifier: 8 label clusters" "$T/aux.log" || fail "no meta line: $(head -3 "$T/aux.log")"
grep -q "epoch 1/2: meta-classifier dropped" "$T/aux.log" || fail "meta head not dropped"

# --intermediate 96: the head reads the layer's 96 outputs; config.json says so.
"$XMC" train "${small[@]}" --epochs 1 --intermediate 96 --train "$T/data/trn" \
  --model "$T/int" 2> "$T/int.log" || fail "intermediate train failed: $(tail -3 "$T/int.log")"
grep -q "64 -> intermediate 96 (relu) -> sparse head F=16" "$T/int.log" ||
  fail "no intermediate in the model line: $(grep '^model:' "$T/int.log")"
grep -q '"intermediate":[[:space:]]*96' "$T/int/config.json" || fail "config lacks intermediate"
"$XMC" train "${small[@]}" --epochs 1 --intermediate 96 --intermediate-act none \
  --train "$T/data/trn" --model "$T/intl" 2>/dev/null || fail "--intermediate-act none failed"
grep -q '"intermediate_activation":[[:space:]]*"none"' "$T/intl/config.json" ||
  fail "config lacks intermediate_activation none"

# --plan prints the accounting and allocates no head; --mem-budget refuses up front.
"$XMC" train "${small[@]}" --plan --train "$T/data/trn" --model "$T/p" > "$T/plan" ||
  fail "--plan failed"
grep -q "^memory plan: fixed fan-in F=16 classifier 200 labels x 64 inputs" "$T/plan" ||
  fail "plan line: $(cat "$T/plan")"
[ ! -e "$T/p" ] || fail "--plan wrote a model directory"
if "$XMC" train --batch 64 --threads 2 --dim 64 --seed 5 --recipe renee --mem-budget 0.001 \
  --train "$T/data/trn" --model "$T/b" 2> "$T/err"; then fail "--mem-budget 0.001 succeeded"; fi
grep -q "^xmc: memory plan: dense classifier .* EXCEEDS the budget 0.00 GiB (--mem-budget" \
  "$T/err" || fail "budget message: $(cat "$T/err")"
# SPARTEX's settings on another recipe are refused, not ignored.
if "$XMC" train "${small[@]}" --recipe renee --train "$T/data/trn" --model "$T/x" 2> "$T/err"; then
  fail "--fan-in with --recipe renee succeeded"; fi
grep -q "^xmc: --fan-in, --rewire-\*, --aux-\* and --meta-cutoff-epoch are for --recipe spartex" \
  "$T/err" || fail "spartex flags message: $(cat "$T/err")"

# Errors.
if "$XMC" train "${small[@]}" --intermediate-act tanh --train "$T/data/trn" --model "$T/x" \
  2> "$T/err"; then fail "--intermediate-act tanh succeeded"; fi
grep -q "^xmc: .*intermediate-act" "$T/err" || fail "--intermediate-act message: $(cat "$T/err")"
if "$XMC" predict --model "$T/m" --input "$T/data/tst" --out "$T/x.pred" --ann 2> "$T/err"; then
  fail "--ann on a spartex model succeeded"; fi
grep -q "^xmc: .*spartex" "$T/err" || fail "--ann message: $(cat "$T/err")"
if "$XMC" train "${small[@]}" --fan-in 0 --train "$T/data/trn" --model "$T/x" 2> "$T/err"; then
  fail "--fan-in 0 succeeded"; fi
grep -q "^xmc: .*fan-in" "$T/err" || fail "--fan-in message: $(cat "$T/err")"
echo "ok"
