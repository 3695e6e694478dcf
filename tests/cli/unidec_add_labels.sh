#!/usr/bin/env bash
# xmc index add-labels (ann.h, docs/unidec.md "Zero-shot"): label texts added
# to a trained depsl / unidec model after training get ids L.., are embedded
# into the model directory's label index without retraining, and are served
# by predict (exact and --ann, --text shows their texts); errors users see.
set -euo pipefail
XMC=${XMC:?XMC must point at the xmc binary}
T=${XMC_TMP:-$(mktemp -d)}/unidec_add_labels
rm -rf "$T"
mkdir -p "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$XMC" synth --out "$T/data" --points 2000 --labels 200 --seed 3 >/dev/null 2>&1
small=(--epochs 1 --batch 64 --threads 2 --dim 64 --buckets 16384 --seed 5)
"$XMC" train --recipe depsl --train "$T/data/trn" --model "$T/m" "${small[@]}" 2> "$T/train.log" ||
  fail "train: $(tail -3 "$T/train.log")"

# Words that occur in no training text nor label text (synth words are
# consonant-vowel syllables without these letters).
printf 'quokka wombat platypus\nglacier fjord tundra\n' > "$T/new.txt"
"$XMC" index add-labels --model "$T/m" --labels "$T/new.txt" 2> "$T/add.log" ||
  fail "add-labels: $(cat "$T/add.log")"
grep -q "added 2 labels (ids 200..201)" "$T/add.log" || fail "add log: $(cat "$T/add.log")"
[ "$(wc -l < "$T/m/labels-added.txt")" = 2 ] || fail "labels-added.txt: $(cat "$T/m/labels-added.txt")"
idx=$(ls "$T"/m/ann-unidec-de-*.hnsw) || fail "no DE index in the model directory"
"$XMC" index info --index "$idx" | grep -q "^vectors 202$" || fail "index does not hold 202 labels"

# A query equal to an added label's text embeds to the same unit vector:
# that label is ranked first with score 1 (ANN and exact), shown by its text.
printf 'glacier fjord tundra\nquokka wombat platypus\n' |
  "$XMC" predict --model "$T/m" --text --ann --topk 3 > "$T/ann.tsv" 2> "$T/ann.log" ||
  fail "predict --ann --text: $(cat "$T/ann.log")"
grep -q "^1	1	201	1.0000	glacier fjord tundra$" "$T/ann.tsv" || fail "ann: $(cat "$T/ann.tsv")"
grep -q "^2	1	200	1.0000	quokka wombat platypus$" "$T/ann.tsv" || fail "ann: $(cat "$T/ann.tsv")"
printf 'glacier fjord tundra\n' | "$XMC" predict --model "$T/m" --text --topk 1 > "$T/ex.tsv" \
  2>/dev/null || fail "predict --text (exact)"
grep -q "^1	1	201	1.0000	glacier fjord tundra$" "$T/ex.tsv" || fail "exact: $(cat "$T/ex.tsv")"

# Score matrices cover L + added columns; ANN answers agree with exact here.
"$XMC" predict --model "$T/m" --input "$T/data/tst" --out "$T/ex.pred" 2>/dev/null ||
  fail "predict exact"
"$XMC" predict --model "$T/m" --input "$T/data/tst" --out "$T/ann.pred" --ann --ef 200 \
  2> "$T/annp.log" || fail "predict --ann: $(cat "$T/annp.log")"
grep -q "HNSW" "$T/annp.log" && ! grep -q "HNSW built" "$T/annp.log" ||
  fail "the stored index was not reused: $(cat "$T/annp.log")"
read -r n l < "$T/ex.pred"
[ "$n $l" = "400 202" ] || fail "exact header '$n $l', expected '400 202'"
read -r n l < "$T/ann.pred"
[ "$n $l" = "400 202" ] || fail "ann header '$n $l', expected '400 202'"

# A second batch continues the ids and grows the stored index in place.
printf 'volcano magma\n' > "$T/new2.txt"
"$XMC" index add-labels --model "$T/m" --labels "$T/new2.txt" 2> "$T/add2.log" ||
  fail "add-labels 2: $(cat "$T/add2.log")"
grep -q "ids 202..202" "$T/add2.log" || fail "add log 2: $(cat "$T/add2.log")"
grep -q "adding labels 202..202" "$T/add2.log" || fail "index not grown: $(cat "$T/add2.log")"
"$XMC" index info --index "$idx" | grep -q "^vectors 203$" || fail "index does not hold 203"
printf 'volcano magma\n' | "$XMC" predict --model "$T/m" --text --ann --topk 1 2>/dev/null |
  grep -q "^1	1	202	1.0000	volcano magma$" || fail "label 202 not served"

# unidec: an added label has no Ψ row, so its CLF half is 0 and under
# --head both it scores exactly its DE half (1 for its own text); the default
# index for unidec is the `both` one, and --head de serves it first.
"$XMC" train --recipe unidec --train "$T/data/trn" --model "$T/u" "${small[@]}" 2>/dev/null ||
  fail "unidec train"
"$XMC" index add-labels --model "$T/u" --labels "$T/new.txt" 2> "$T/addu.log" ||
  fail "unidec add-labels: $(cat "$T/addu.log")"
ls "$T"/u/ann-unidec-both-*.hnsw >/dev/null 2>&1 || fail "unidec: no 'both' index built"
printf 'glacier fjord tundra\n' | "$XMC" predict --model "$T/u" --text --ann --head de --topk 1 \
  2>/dev/null | grep -q "^1	1	201	1.0000	glacier fjord tundra$" || fail "unidec --head de"
printf 'glacier fjord tundra\n' | "$XMC" predict --model "$T/u" --text --head both --topk 202 \
  > "$T/both.tsv" 2>/dev/null || fail "unidec --head both"
grep -q "^1	[0-9]*	201	1.0000	glacier fjord tundra$" "$T/both.tsv" ||
  fail "unidec --head both: the added label's score is not its DE half alone"

# Errors.
printf 'ok text\n  \nmore\n' > "$T/empty_line.txt"
if "$XMC" index add-labels --model "$T/m" --labels "$T/empty_line.txt" 2> "$T/err"; then
  fail "an empty line was accepted"; fi
grep -q "^xmc: .*empty_line.txt:2: empty label text" "$T/err" || fail "message: $(cat "$T/err")"
: > "$T/none.txt"
if "$XMC" index add-labels --model "$T/m" --labels "$T/none.txt" 2> "$T/err"; then
  fail "an empty file was accepted"; fi
grep -q "^xmc: .*none.txt: no label texts" "$T/err" || fail "message: $(cat "$T/err")"
[ "$(wc -l < "$T/m/labels-added.txt")" = 3 ] || fail "a refused file changed labels-added.txt"
if "$XMC" index add-labels --model "$T/m" --labels "$T/new.txt" --head clf 2> "$T/err"; then
  fail "depsl --head clf accepted"; fi
grep -q "^xmc: .*only the DE head" "$T/err" || fail "message: $(cat "$T/err")"
if "$XMC" index add-labels --model "$T/nosuch" --labels "$T/new.txt" 2> "$T/err"; then
  fail "a missing model directory was accepted"; fi
grep -q "^xmc: .*nosuch" "$T/err" || fail "message: $(cat "$T/err")"
"$XMC" train --train "$T/data/trn" --model "$T/renee" --encoder bag --epochs 1 --dim 32 \
  --buckets 4096 --threads 2 2> "$T/renee.log" || fail "renee train: $(tail -3 "$T/renee.log")"
if "$XMC" index add-labels --model "$T/renee" --labels "$T/new.txt" 2> "$T/err"; then
  fail "a renee model was accepted"; fi
grep -q "^xmc: .*recipe renee has no dual-encoder (DE) head" "$T/err" || fail "message: $(cat "$T/err")"
echo "ok"
