#!/usr/bin/env bash
# xmc train / predict / info end to end on a small synthetic dataset:
# exit codes, files, messages, --config, --resume bit-identity, --text.
set -euo pipefail
XMC=${XMC:?XMC must point at the xmc binary}
T=${XMC_TMP:-$(mktemp -d)}/train_basic
rm -rf "$T"
mkdir -p "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
. "$(dirname "$0")/lib/grain_crude.sh"

"$XMC" synth --out "$T/data" --points 600 --labels 40 --seed 3 >/dev/null 2>&1
small=(--dim 32 --batch 32 --threads 2 --seed 5 --ensemble 1) # one model: its files are checked

# Train with a test split: per-epoch metrics, a model directory.
"$XMC" train --train "$T/data/trn" --test "$T/data/tst" --model "$T/m" --epochs 2 "${small[@]}" \
  2> "$T/train.log" || fail "train exited non-zero: $(tail -3 "$T/train.log")"
grep -q "test P@1" "$T/train.log" || fail "no test metrics in the log"
grep -q "^memory: parameters" "$T/train.log" || fail "no memory accounting"
grep -q "peak RSS" "$T/train.log" || fail "no peak RSS"
[ -f "$T/m/config.json" ] || fail "no config.json"
grep -q '"recipe":[[:space:]]*"renee"' "$T/m/config.json" || fail "config lacks the recipe"
grep -q '"epochs_done":[[:space:]]*2' "$T/m/config.json" || fail "config lacks epochs_done 2"
# The default classifier rate follows the encoder (0.03 sparse, 0.05 bag).
grep -q '"lr1":[[:space:]]*0.03[,}]' "$T/m/config.json" || fail "sparse lr1 is not 0.03"
# 5,040 features > 480 training rows: the table trains with SGD-m at 0.001.
grep -q '"table_optimizer":[[:space:]]*"sgdm"' "$T/m/config.json" || fail "table optimizer is not sgdm"
grep -q '"lr_table":[[:space:]]*0.001[,}]' "$T/m/config.json" || fail "lr_table is not 0.001"
grep -q 'optimizer 0.6 MB' "$T/train.log" || fail "optimizer bytes: $(grep ^memory "$T/train.log")"

# info: config + tensors + counts.
"$XMC" info "$T/m" > "$T/info.txt" || fail "info failed"
for w in sparse.W1 sparse.b1 classifier.W "parameters: encoder" "kNN memory: 480 training rows"; do
  grep -q "$w" "$T/info.txt" || fail "info lacks '$w'"
done

# predict: score-matrix file with the right header and k entries per row.
"$XMC" predict --model "$T/m" --input "$T/data/tst" --out "$T/pred.txt" --topk 3 2>/dev/null ||
  fail "predict failed"
read -r n l < "$T/pred.txt"
[ "$n" = 120 ] && [ "$l" = 40 ] || fail "pred header '$n $l', expected '120 40'"
awk 'NR > 1 && NF != 3 { bad = 1 } END { exit bad }' "$T/pred.txt" || fail "rows without 3 labels"
# The kNN memory (auto on a problem this small): built after the last
# epoch, its test line logged; predictions are blends in [0, 1], and
# --no-knn gives the classifier's logits back (some negative).
grep -q "^kNN memory: 480 training rows x 32" "$T/train.log" || fail "no kNN memory line"
grep -q "^with the kNN memory: test P@1" "$T/train.log" || fail "no kNN test line"
grep -q '"neighbors":[[:space:]]*"neighbors-s' "$T/m/config.json" || fail "manifest lacks the memory"
awk 'NR > 1 { for (i = 1; i <= NF; i++) { split($i, a, ":"); if (a[2] < 0 || a[2] > 1) bad = 1 } }
     END { exit bad }' "$T/pred.txt" || fail "blended scores outside [0, 1]"
"$XMC" predict --model "$T/m" --input "$T/data/tst" --out "$T/pred0.txt" --topk 3 --no-knn \
  2>/dev/null || fail "predict --no-knn failed"
grep -q ':-' "$T/pred0.txt" || fail "--no-knn: no negative logit"

# --embed: a float32 .npy of the 120 rows x 32 dims (NumPy 1.0 header padded
# to 64 bytes); the C test (test_train.c) checks that its rows score as predict.
"$XMC" predict --model "$T/m" --input "$T/data/tst" --embed "$T/e.npy" 2> "$T/emb.log" ||
  fail "--embed failed: $(cat "$T/emb.log")"
[ "$(head -c 6 "$T/e.npy" | tail -c 5)" = NUMPY ] || fail "--embed: no .npy magic"
head -c 128 "$T/e.npy" | grep -aq "'descr': '<f4', 'fortran_order': False, 'shape': (120, 32), }" ||
  fail "--embed: header $(head -c 128 "$T/e.npy" | tr -d '\0')"
[ "$(stat -c %s "$T/e.npy")" = $((128 + 120 * 32 * 4)) ] ||
  fail "--embed: $(stat -c %s "$T/e.npy") bytes, expected $((128 + 120 * 32 * 4))"
if "$XMC" predict --model "$T/m" --text --embed "$T/e2.npy" < /dev/null 2> "$T/err"; then
  fail "--embed --text should fail"; fi
grep -q "embed" "$T/err" || fail "--embed --text message: $(cat "$T/err")"
if "$XMC" predict --model "$T/m" --input "$T/data/tst" 2> "$T/err"; then
  fail "--input without --out or --embed should fail"; fi
grep -q "out FILE and/or --embed FILE" "$T/err" || fail "no-output message: $(cat "$T/err")"

# Errors: clear message, non-zero exit.
# --ann: HNSW over the classifier rows (ann.h), built once, then reloaded.
"$XMC" predict --model "$T/m" --input "$T/data/tst" --out "$T/p2.txt" --topk 3 --ann --ef 64 \
  2> "$T/ann.log" || fail "--ann failed: $(cat "$T/ann.log")"
grep -q "HNSW, index built" "$T/ann.log" || fail "--ann did not build: $(cat "$T/ann.log")"
ls "$T"/m/ann-*.hnsw > /dev/null 2>&1 || fail "--ann left no index in the model directory"
"$XMC" predict --model "$T/m" --input "$T/data/tst" --out "$T/p2.txt" --topk 3 --ann \
  2> "$T/ann.log" || fail "--ann (reload) failed: $(cat "$T/ann.log")"
grep -q "HNSW, index loaded" "$T/ann.log" || fail "--ann did not reload: $(cat "$T/ann.log")"
read -r n l < "$T/p2.txt"
[ "$n" = 120 ] && [ "$l" = 40 ] || fail "--ann pred header '$n $l', expected '120 40'"
# 40 labels, ef 100: the candidate list holds every label, so --ann finds
# the exact labels (scores recovered from the distance differ in the last bits).
labels_only() {
  awk 'NR > 1 { s = ""; for (i = 1; i <= NF; i++) { split($i, a, ":"); s = s " " a[1] }; print s }' \
    "$1"
}
[ "$(labels_only "$T/pred.txt")" = "$(labels_only "$T/p2.txt")" ] ||
  fail "--ann on 40 labels finds other labels than exact"
if "$XMC" predict --model "$T/m" --text --ann < /dev/null 2> "$T/err"; then
  fail "--ann --text should fail"; fi
grep -q "ann" "$T/err" || fail "--ann --text message: $(cat "$T/err")"
if "$XMC" predict --model "$T/nowhere" --input "$T/data/tst" --out "$T/p3.txt" 2> "$T/err"; then
  fail "missing model should fail"; fi
grep -q "nowhere/config.json" "$T/err" || fail "missing model message: $(cat "$T/err")"
set +e
"$XMC" train --model "$T/x" 2> "$T/err"; rc=$?
set -e
[ $rc = 2 ] || fail "missing --train: exit $rc, expected 2"
if "$XMC" train --train "$T/none.txt" --model "$T/x" 2> "$T/err"; then fail "bad spec should fail"; fi
grep -q "^xmc: .*none.txt" "$T/err" || fail "bad spec message: $(cat "$T/err")"
if "$XMC" train --train "$T/data/trn" --model "$T/x" --encoder conv 2> "$T/err"; then
  fail "bad encoder should fail"; fi
grep -q "conv" "$T/err" || fail "bad encoder message: $(cat "$T/err")"

# --config: values from the file, flags override.
printf 'epochs 1\ndim 24  # comment\nbatch = 16\nensemble 1\n' > "$T/cfg.txt"
"$XMC" train --train "$T/data/trn" --model "$T/c" --config "$T/cfg.txt" --batch 20 --threads 2 \
  2>/dev/null || fail "train --config failed"
grep -q '"dim":[[:space:]]*24' "$T/c/config.json" || fail "--config dim not applied"
grep -q '"batch":[[:space:]]*20' "$T/c/config.json" || fail "flag did not override --config"

# --table-opt: adam recorded (and the old rate, lr2, for its tables); bad
# values and recipes that have no use for it are refused.
"$XMC" train --train "$T/data/trn" --model "$T/ta" --epochs 1 --table-opt adam "${small[@]}" \
  2> "$T/ta.log" || fail "--table-opt adam failed: $(tail -3 "$T/ta.log")"
grep -q '"table_optimizer":[[:space:]]*"adam"' "$T/ta/config.json" || fail "adam not recorded"
grep -q '"lr_table":[[:space:]]*0.002[,}]' "$T/ta/config.json" || fail "adam lr_table is not lr2"
if "$XMC" train --train "$T/data/trn" --model "$T/tb" --table-opt sgd 2> "$T/err"; then
  fail "--table-opt sgd should fail"; fi
grep -q "expected sgdm or adam" "$T/err" || fail "--table-opt message: $(cat "$T/err")"
if "$XMC" train --train "$T/data/trn" --model "$T/tb" --recipe unidec --lr-table 0.1 2> "$T/err"; then
  fail "--lr-table with unidec should fail"; fi
grep -q "renee or spartex" "$T/err" || fail "--lr-table unidec message: $(cat "$T/err")"

# --resume: 1 epoch + resume == 3 epochs straight, byte for byte (SGD-m
# tables here; tests/test_train.c resumes an Adam one).
"$XMC" train --train "$T/data/trn" --model "$T/a" --epochs 3 "${small[@]}" 2>/dev/null
"$XMC" train --train "$T/data/trn" --model "$T/b" --epochs 3 --stop-after 1 "${small[@]}" 2>/dev/null
grep -q '"epochs_done":[[:space:]]*1' "$T/b/config.json" || fail "--stop-after 1 did not stop"
"$XMC" train --train "$T/data/trn" --model "$T/b" --resume "${small[@]}" 2> "$T/resume.log" ||
  fail "resume failed: $(tail -3 "$T/resume.log")"
grep -q "resuming" "$T/resume.log" || fail "resume did not say so"
for f in "$T"/a/*.bin; do
  cmp -s "$f" "$T/b/$(basename "$f")" || fail "resume differs in $(basename "$f")"
done

# Texts + label names: bag encoder auto-picked, --text prints names.
grain_crude_data "$T"
"$XMC" train --train "$T/texts.txt+$T/labels.txt" --model "$T/bag" --epochs 4 --dim 16 --batch 16 \
  --buckets 4096 --threads 2 2>/dev/null || fail "bag train failed"
grep -q '"kind":[[:space:]]*"bag"' "$T/bag/config.json" || fail "bag not auto-picked"
# The tf-idf bag's defaults: squared hinge at lr1 0.01; bce keeps 0.05.
grep -q '"loss":[[:space:]]*"sqhinge"' "$T/bag/config.json" || fail "bag loss is not sqhinge"
grep -q '"lr1":[[:space:]]*0.01[,}]' "$T/bag/config.json" || fail "bag lr1 is not 0.01"
"$XMC" train --train "$T/texts.txt+$T/labels.txt" --model "$T/bagbce" --epochs 1 --dim 16 \
  --batch 16 --buckets 4096 --threads 2 --loss bce 2>/dev/null || fail "bag --loss bce failed"
grep -q '"loss":[[:space:]]*"bce"' "$T/bagbce/config.json" || fail "--loss bce not recorded"
grep -q '"lr1":[[:space:]]*0.05[,}]' "$T/bagbce/config.json" || fail "bag bce lr1 is not 0.05"
grep -q '"loss":[[:space:]]*"bce"' "$T/m/config.json" || fail "sparse loss is not bce"
[ -f "$T/bag/labels.txt" ] || fail "labels.txt not stored"
grain_crude_predict "$T/bag" "$T/text.out"
# The defaults on a problem this small: an ensemble of 3 seeds merged into
# one model of 3 x 16 dims (test_ensemble.c checks its scores are the mean).
grep -q '"members":[[:space:]]*3' "$T/bag/config.json" || fail "bag is not an ensemble of 3"
grep -q '"dim":[[:space:]]*48' "$T/bag/config.json" || fail "merged width is not 48"
[ ! -e "$T/bag/member-0" ] || fail "member directories left after the merge"
# --plan counts the merge (the wide model and one member at once).
"$XMC" train --train "$T/texts.txt+$T/labels.txt" --model "$T/bagplan" --dim 16 --batch 16 \
  --buckets 4096 --plan > "$T/plan" || fail "--plan of an ensemble failed"
grep -q "kNN memory [0-9.]* GiB included" "$T/plan" || fail "plan lacks the kNN memory"
grep -q "; ensemble of 3: training a member as above, the merge [0-9.]* GiB$" "$T/plan" ||
  fail "ensemble plan: $(cat "$T/plan")"
"$XMC" info "$T/bag" > "$T/info.txt" || fail "info on an ensemble failed"
"$XMC" train --train "$T/texts.txt+$T/labels.txt" --model "$T/bag" --resume 2> "$T/err" || fail "resume of a merged ensemble failed"
grep -q "merged: all epochs done" "$T/err" || fail "resume of an ensemble: $(cat "$T/err")"
if "$XMC" train --train "$T/data/trn" --model "$T/x" --recipe spartex --ensemble 2 2> "$T/err"
then fail "--ensemble 2 accepted for spartex"; fi
grep -q "ensembles are for recipe renee" "$T/err" || fail "--ensemble message: $(cat "$T/err")"
# Settings the run would ignore are refused: bag settings on a feature set
# (sparse encoder), --intermediate-act without --intermediate.
for f in "--buckets 4096" "--bag mean"; do
  if "$XMC" train --train "$T/data/trn" --model "$T/x" $f 2> "$T/err"; then
    fail "$f accepted for the sparse encoder"; fi
  grep -q "are for the bag encoder, and this run uses the sparse one" "$T/err" ||
    fail "$f message: $(cat "$T/err")"
done
if "$XMC" train --train "$T/data/trn" --model "$T/x" --intermediate-act none 2> "$T/err"; then
  fail "--intermediate-act without --intermediate accepted"; fi
grep -q "intermediate-act is for the layer of --intermediate" "$T/err" ||
  fail "--intermediate-act message: $(cat "$T/err")"
[ ! -e "$T/x" ] || fail "a refused run left a model directory"
# A feature model refuses --text with a hint.
if echo "x" | "$XMC" predict --model "$T/m" --text 2> "$T/err"; then fail "--text on sparse"; fi
grep -q "bag" "$T/err" || fail "--text on sparse message: $(cat "$T/err")"
echo "ok"
