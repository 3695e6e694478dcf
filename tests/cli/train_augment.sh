#!/usr/bin/env bash
# xmc train --augment (Gandalf label points, docs/gandalf.md) on a tiny synth
# set: trains with and without it, config.json records the recipe, --resume
# keeps it, the SPARTEX, UniDEC and DEPSL recipes train on the label points
# too, and the errors users see (bad recipe, no label inputs, '+pifa' for a
# text-only recipe).
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

# SPARTEX (the Renee loop) with the auxiliary head, whose label clusters
# come from PIFA over D ∪ Z; the label points take PIFA features.
"$XMC" train --recipe spartex --fan-in 16 --aux-clusters 8 --train "$T/data/trn" \
  --test "$T/data/tst" --model "$T/spx" "${small[@]}" --augment gandalf:0.2+pifa \
  2> "$T/spx.log" || fail "spartex --augment failed: $(tail -3 "$T/spx.log")"
grep -q "^augment gandalf:0.2+pifa: 1600 rows + 200 label points -> 1800 rows" "$T/spx.log" ||
  fail "spartex: no augment line: $(grep augment "$T/spx.log")"
grep -q "1800 train rows (1800 labelled)" "$T/spx.log" || fail "spartex did not train on 1800 rows"
grep -q "test P@1 .* PSP@5" "$T/spx.log" || fail "spartex --augment: no test metrics"

# UniDEC / DEPSL: the label points join the queries (1600 + 200), the soft
# targets weight the positives; the plain run has 1600 queries.
us=(--batch 64 --threads 2 --dim 64 --buckets 16384 --seed 5 --epochs 1)
"$XMC" train --recipe unidec --train "$T/data/trn" --model "$T/u0" "${us[@]}" 2> "$T/u0.log" ||
  fail "plain unidec failed: $(tail -3 "$T/u0.log")"
grep -q "^unidec: 1600 train rows, 200 labels" "$T/u0.log" || fail "plain unidec row count"
for r in unidec depsl; do
  "$XMC" train --recipe $r --train "$T/data/trn" --test "$T/data/tst" --model "$T/$r" "${us[@]}" \
    --augment gandalf:0.2 2> "$T/$r.log" || fail "$r --augment failed: $(tail -3 "$T/$r.log")"
  grep -q "^augment gandalf:0.2: 1600 rows + 200 label points -> 1800 rows" "$T/$r.log" ||
    fail "$r: no augment line: $(grep augment "$T/$r.log")"
  grep -q "^$r: 1800 train rows, 200 labels" "$T/$r.log" ||
    fail "$r did not train on the label points: $(grep 'train rows' "$T/$r.log")"
  grep -q "^$r: test P@1 [0-9.]* P@3 [0-9.]* P@5 [0-9.]* PSP@5 [0-9.]*" "$T/$r.log" ||
    fail "$r --augment: no test metrics"
  grep -q '"augment":[[:space:]]*"gandalf:0.2"' "$T/$r/config.json" || fail "$r config: augment"
  grep -q '"n_labels":[[:space:]]*200' "$T/$r/config.json" || fail "$r config: n_labels"
done
grep -q '"augment":[[:space:]]*null' "$T/u0/config.json" || fail "plain unidec config: augment"
"$XMC" predict --model "$T/unidec" --input "$T/data/tst" --out "$T/u.pred" --topk 5 2>/dev/null ||
  fail "predict on an augmented unidec model failed"
read -r n l < "$T/u.pred"
[ "$n" = 400 ] && [ "$l" = 200 ] || fail "unidec pred header '$n $l', expected '400 200'"

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
# A text-only recipe cannot use PIFA label features; a set without texts
# cannot train it at all. Nothing is written either way.
if "$XMC" train --recipe unidec --train "$T/data/trn" --model "$T/z" "${us[@]}" \
  --augment self+pifa 2> "$T/err"; then fail "unidec --augment self+pifa succeeded"; fi
grep -q "^xmc: --augment self+pifa: recipe unidec trains on point and label texts only, so '+pifa'" \
  "$T/err" || fail "unidec +pifa message: $(cat "$T/err")"
if "$XMC" train --recipe depsl --train "$T/xc.txt" --model "$T/z" "${us[@]}" --augment gandalf \
  2> "$T/err"; then fail "depsl --augment on a set without texts succeeded"; fi
grep -q "^xmc: .*xc.txt: this dataset has no point texts" "$T/err" ||
  fail "depsl no-texts message: $(cat "$T/err")"
if "$XMC" train --recipe depsl --train "$T/data/trn" --model "$T/z" "${us[@]}" --augment nope \
  2> "$T/err"; then fail "depsl --augment nope succeeded"; fi
grep -q "^xmc: .*gandalf|cooc|sym|self.*'nope'" "$T/err" || fail "depsl bad recipe: $(cat "$T/err")"
[ ! -e "$T/z" ] || fail "a model directory was written for a failed run"

# --resume of an augmented depsl run: the checkpoint keeps --augment, so the
# resumed run trains on the same N + L rows and ends byte-identical.
ra=(--recipe depsl --train "$T/data/trn" "${us[@]}" --epochs 2 --augment self)
"$XMC" train "${ra[@]}" --model "$T/rfull" 2>/dev/null || fail "depsl augmented run failed"
"$XMC" train "${ra[@]}" --model "$T/rpart" --stop-after 1 2>/dev/null || fail "stop-after failed"
"$XMC" train --train "$T/data/trn" --model "$T/rpart" --resume 2> "$T/rlog" ||
  fail "augmented resume failed: $(tail -3 "$T/rlog")"
grep -q "^augment self: " "$T/rlog" || fail "resume did not re-augment: $(cat "$T/rlog")"
cmp -s "$T/rfull/unidec.bin" "$T/rpart/unidec.bin" || fail "augmented resume differs"
echo "ok"
