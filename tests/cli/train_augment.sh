#!/usr/bin/env bash
# xmc train --augment (Gandalf label points, docs/gandalf.md) on a tiny synth
# set: trains with and without it, config.json records the recipe, --resume
# keeps it, and the errors users see (bad recipe, no label inputs).
set -euo pipefail
XMC=${XMC:?XMC must point at the xmc binary}
T=${XMC_TMP:-$(mktemp -d)}/train_augment
rm -rf "$T"
mkdir -p "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$XMC" synth --out "$T/data" --points 2000 --labels 200 --seed 3 >/dev/null 2>&1
small=(--dim 32 --batch 64 --threads 2 --seed 5 --epochs 1)

"$XMC" train --train "$T/data/trn" --test "$T/data/tst" --model "$T/plain" "${small[@]}" \
  2> "$T/plain.log" || fail "plain train exited non-zero: $(tail -3 "$T/plain.log")"
grep -q '"augment":[[:space:]]*null' "$T/plain/config.json" || fail "plain config: augment not null"

"$XMC" train --train "$T/data/trn" --test "$T/data/tst" --model "$T/aug" "${small[@]}" \
  --augment gandalf:0.2 2> "$T/aug.log" || fail "--augment train exited non-zero: $(tail -3 "$T/aug.log")"
grep -q '"augment":[[:space:]]*"gandalf:0.2"' "$T/aug/config.json" || fail "config lacks augment"
# 1600 training rows + 200 label points.
grep -q "^augment gandalf:0.2: 1600 rows + 200 label points -> 1800 rows" "$T/aug.log" ||
  fail "no augment line: $(grep augment "$T/aug.log")"
grep -q "test P@1" "$T/aug.log" || fail "no test metrics with --augment"
grep -q "PSP@5" "$T/aug.log" || fail "no PSP@5 (propensities from the original set)"
"$XMC" predict --model "$T/aug" --input "$T/data/tst" --out "$T/pred.txt" --topk 5 2>/dev/null ||
  fail "predict on an augmented model failed"
read -r n l < "$T/pred.txt"
[ "$l" = 200 ] || fail "pred header width $l, expected 200"

# Other variants run; --resume rebuilds the same set from the saved config.
"$XMC" train --train "$T/data/trn" --model "$T/self" "${small[@]}" --epochs 2 --stop-after 1 \
  --augment self 2>/dev/null || fail "--augment self failed"
"$XMC" train --train "$T/data/trn" --model "$T/self" --resume --threads 2 2> "$T/resume.log" ||
  fail "resume of an augmented run failed: $(tail -3 "$T/resume.log")"
grep -q "^augment self:" "$T/resume.log" || fail "resume did not re-augment"
grep -q '"epochs_done":[[:space:]]*2' "$T/self/config.json" || fail "resume did not finish"

# Errors: bad recipe, and a set whose labels have no text / features.
set +e
"$XMC" train --train "$T/data/trn" --model "$T/x" "${small[@]}" --augment foo 2> "$T/err"; rc=$?
set -e
[ $rc -ne 0 ] || fail "--augment foo succeeded"
grep -q "^xmc: .*gandalf|cooc|sym|self.*'foo'" "$T/err" || fail "bad recipe message: $(cat "$T/err")"
[ ! -e "$T/x/config.json" ] || fail "a model was written for a bad recipe"
printf '%s\n' "3 2 2" "0 0:1" "0,1 1:2" "1 0:1 1:1" > "$T/xc.txt"
if "$XMC" train --train "$T/xc.txt" --model "$T/y" "${small[@]}" --augment gandalf 2> "$T/err"; then
  fail "--augment on a set without label inputs succeeded"; fi
grep -q "^xmc: .*xc.txt: --augment gandalf: the training set has no label texts" "$T/err" ||
  fail "no-label-texts message: $(cat "$T/err")"
echo "ok"
