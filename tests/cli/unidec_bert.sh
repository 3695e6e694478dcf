#!/usr/bin/env bash
# xmc train --recipe depsl|unidec --encoder bert (tests/data/bert/bert, a tiny
# random BERT) on a tiny synth text set: trains, records the encoder, resumes
# bit-identically, serves an added label from its text.
set -euo pipefail
XMC=${XMC:?XMC must point at the xmc binary}
SRC=${XMC_SOURCE_DIR:?XMC_SOURCE_DIR must point at the source tree}
T=${XMC_TMP:-$(mktemp -d)}/unidec_bert
rm -rf "$T"
mkdir -p "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
BERT=$SRC/tests/data/bert/bert

"$XMC" synth --out "$T/data" --points 400 --labels 40 --seed 3 >/dev/null 2>&1
opts=(--encoder bert --model-dir "$BERT" --max-len 16 --epochs 3 --batch 32 --threads 2 --seed 5)
for r in depsl unidec; do
  "$XMC" train --recipe $r --train "$T/data/trn" --test "$T/data/tst" --model "$T/full_$r" \
    "${opts[@]}" 2> "$T/train.log" || fail "$r bert train: $(tail -3 "$T/train.log")"
  grep -q "^$r: test P@1" "$T/train.log" || fail "$r: no test metrics"
  grep -q '"encoder":[[:space:]]*"bert"' "$T/full_$r/config.json" || fail "$r: encoder not recorded"
  "$XMC" train --recipe $r --train "$T/data/trn" --model "$T/res_$r" "${opts[@]}" --stop-after 2 \
    2>/dev/null || fail "$r: --stop-after"
  "$XMC" train --train "$T/data/trn" --model "$T/res_$r" --resume --threads 2 2> "$T/res.log" ||
    fail "$r: resume: $(tail -3 "$T/res.log")"
  cmp "$T/full_$r/unidec.bin" "$T/res_$r/unidec.bin" || fail "$r: resumed bert model differs"
done
printf 'quokka wombat\n' > "$T/new.txt"
"$XMC" index add-labels --model "$T/full_depsl" --labels "$T/new.txt" 2>/dev/null ||
  fail "add-labels on a bert model"
# (the tiny random BERT maps many texts alike, so only "served, with the
# maximal score 1" is asserted, not the rank)
printf 'quokka wombat\n' | "$XMC" predict --model "$T/full_depsl" --text --topk 41 \
  2>/dev/null | grep -q "^1	[0-9]*	40	1.0000	quokka wombat$" || fail "added label not served"
echo "ok"
