#!/usr/bin/env bash
# xmc augment end to end: files written in the label-feature layout (N + L
# rows, soft values), variants, a reproducible subsample, label features for a
# sparse-only set, and the errors users see (message + non-zero exit).
set -euo pipefail
XMC=${XMC:?set XMC to the xmc binary}
T=${XMC_TMP:-$(mktemp -d)}
rm -rf "$T" && mkdir -p "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }

# 6 documents, 4 labels (the hand fixture of tests/test_augment.c, minus the
# unseen label): grain 5, wheat 4, corn 2, ship 1.
printf '%s\n' "doc zero" "doc one" "doc two" "doc three" "doc four" "doc five" > "$T/texts.txt"
printf '%s\n' "grain wheat" "grain wheat corn" "grain corn" "grain" "wheat ship" "grain wheat" \
    > "$T/labels.txt"

"$XMC" augment --train "$T/texts.txt+$T/labels.txt" --out "$T/out/trn" > "$T/log" \
    || fail "augment failed: $(cat "$T/log")"
grep -q 'rows_written=10' "$T/log" || fail "summary: $(cat "$T/log")"
[ "$(head -1 "$T/out/trn_X_Y.txt")" = "10 4" ] || fail "header $(head -1 "$T/out/trn_X_Y.txt")"
[ "$(wc -l < "$T/out/trn_X.txt")" = 10 ] || fail "texts rows"
# Labels are sorted names: corn=0 grain=1 ship=2 wheat=3. Row of "wheat"
# (the last label point): P[grain|wheat] = 3/4, P[corn|wheat] = 1/4,
# P[ship|wheat] = 1/4, self 1.
[ "$(tail -1 "$T/out/trn_X.txt")" = "wheat" ] || fail "label text of the last row"
[ "$(tail -1 "$T/out/trn_X_Y.txt")" = "0:0.25 1:0.75 2:0.25 3:1" ] \
    || fail "wheat targets: $(tail -1 "$T/out/trn_X_Y.txt")"
[ -f "$T/out/Y.txt" ] || fail "no Y.txt"

# δ = 0.25 is strict: the two 1/4 targets go.
"$XMC" augment --train "$T/texts.txt+$T/labels.txt" --out "$T/d25/trn" --delta 0.25 > /dev/null
[ "$(tail -1 "$T/d25/trn_X_Y.txt")" = "1:0.75 3:1" ] || fail "delta 0.25: $(tail -1 "$T/d25/trn_X_Y.txt")"
# gandalf:DELTA spelling as in `xmc train --augment`.
"$XMC" augment --train "$T/texts.txt+$T/labels.txt" --out "$T/g25/trn" --targets gandalf:0.25 > /dev/null
cmp -s "$T/d25/trn_X_Y.txt" "$T/g25/trn_X_Y.txt" || fail "gandalf:0.25 differs from --delta 0.25"

# self: one-hot label points.
"$XMC" augment --train "$T/texts.txt+$T/labels.txt" --out "$T/self/trn" --targets self > /dev/null
[ "$(tail -4 "$T/self/trn_X_Y.txt" | tr '\n' ' ')" = "0:1 1:1 2:1 3:1 " ] || fail "self targets"

# Subsample: size and reproducibility from the seed.
"$XMC" augment --train "$T/texts.txt+$T/labels.txt" --out "$T/s1/trn" --sample 5 --seed 3 > /dev/null
"$XMC" augment --train "$T/texts.txt+$T/labels.txt" --out "$T/s2/trn" --sample 5 --seed 3 > /dev/null
[ "$(head -1 "$T/s1/trn_X_Y.txt")" = "5 4" ] || fail "sample size"
cmp -s "$T/s1/trn_X_Y.txt" "$T/s2/trn_X_Y.txt" && cmp -s "$T/s1/trn_X.txt" "$T/s2/trn_X.txt" \
    || fail "same seed, different subsample"
"$XMC" augment --train "$T/texts.txt+$T/labels.txt" --out "$T/s3/trn" --sample -1 > /dev/null
[ "$(head -1 "$T/s3/trn_X_Y.txt")" = "6 4" ] || fail "--sample -1 keeps N rows"

# The written set reads back as a DIR/PREFIX spec (label texts from Y.txt).
"$XMC" augment --train "$T/out/trn" --out "$T/again/trn" --targets self > "$T/log2" \
    || fail "re-reading the output: $(cat "$T/log2")"
[ "$(head -1 "$T/again/trn_X_Y.txt")" = "14 4" ] || fail "re-augmented rows"

# A sparse-only set (XC file, no names) needs label features.
printf '%s\n' "3 2 2" "0 0:1" "0,1 1:2" "1 0:1 1:1" > "$T/xc.txt"
if "$XMC" augment --train "$T/xc.txt" --out "$T/xc/trn" 2> "$T/err"; then
    fail "sparse-only set without label features succeeded"
fi
grep -q '^xmc: .*requires label texts or label features' "$T/err" || fail "message: $(cat "$T/err")"
printf '%s\n' "2 2" "0:1" "1:1" > "$T/lf.txt"
"$XMC" augment --train "$T/xc.txt" --label-features "$T/lf.txt" --out "$T/xc/trn" > /dev/null \
    || fail "with --label-features"
[ "$(head -1 "$T/xc/trn_X_Y.txt")" = "5 2" ] || fail "xc rows"
[ "$(tail -1 "$T/xc/trn_X_Xf.txt")" = "1:1" ] || fail "label feature row: $(tail -1 "$T/xc/trn_X_Xf.txt")"

# Label-feature layout with DIR/Y_Xf.txt: picked up without a flag, its rows
# become the label points' features.
mkdir -p "$T/lf"
printf '%s\n' "3 2" "0:1" "0:1 1:1" "1:1" > "$T/lf/trn_X_Y.txt"
printf '%s\n' "3 3" "0:0.5" "1:1" "2:1" > "$T/lf/trn_X_Xf.txt"
printf '%s\n' "a b" "c d" "e f" > "$T/lf/trn_X.txt"
printf '%s\n' "first label" "second label" > "$T/lf/Y.txt"
printf '%s\n' "2 3" "0:0.25 2:1" "1:2" > "$T/lf/Y_Xf.txt"
"$XMC" augment --train "$T/lf/trn" --out "$T/lfo/trn" > "$T/log" || fail "LF layout"
grep -q 'label_features=yes' "$T/log" || fail "Y_Xf.txt not used: $(cat "$T/log")"
[ "$(tail -2 "$T/lfo/trn_X_Xf.txt" | tr '\n' '|')" = "0:0.25 2:1|1:2|" ] \
    || fail "label feature rows: $(tail -2 "$T/lfo/trn_X_Xf.txt")"
[ "$(tail -2 "$T/lfo/trn_X.txt" | tr '\n' '|')" = "first label|second label|" ] || fail "label texts"
# P[1|0] = 1/2 (not > 1/2 with --delta 0.5), P[0|1] = 1/2.
"$XMC" augment --train "$T/lf/trn" --out "$T/lfo2/trn" --delta 0.49 > /dev/null
[ "$(tail -2 "$T/lfo2/trn_X_Y.txt" | tr '\n' '|')" = "0:1 1:0.5|0:0.5 1:1|" ] \
    || fail "LF targets: $(tail -2 "$T/lfo2/trn_X_Y.txt")"

# Usage errors.
if "$XMC" augment --train "$T/texts.txt+$T/labels.txt" --out "$T/bad/trn" --targets mixup 2> "$T/err"; then
    fail "--targets mixup accepted"
fi
grep -q "^xmc: .*mixup" "$T/err" || fail "targets message: $(cat "$T/err")"
if "$XMC" augment --train "$T/texts.txt+$T/labels.txt" --out "$T/bad/trn" --delta 2 2> "$T/err"; then
    fail "--delta 2 accepted"
fi
if "$XMC" augment --train "$T/texts.txt+$T/labels.txt" --out "$T/bad/trn" --sample 11 2> "$T/err"; then
    fail "--sample 11 > N+L accepted"
fi
grep -q "^xmc: .*sample" "$T/err" || fail "sample message: $(cat "$T/err")"
if "$XMC" augment --train "$T/nonexistent" --out "$T/bad/trn" 2> "$T/err"; then
    fail "missing input accepted"
fi
[ ! -e "$T/bad" ] || [ -z "$(ls -A "$T/bad")" ] || fail "files left after errors"
echo "augment_basic: ok"
