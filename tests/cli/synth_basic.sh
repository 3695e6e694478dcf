#!/bin/bash
# xmc synth: the files of layout 3 with their headers, byte-identical output
# for a seed, refusal of bad arguments, and the synth -> eval pipeline (the
# truth scored against itself gives P@1 = 100).
set -u
XMC=${XMC:-xmc}
T=${XMC_TMP:-/tmp/xmc_cli_synth_basic}
rm -rf "$T" && mkdir -p "$T" && cd "$T" || exit 1
fails=0
check() {
    local name=$1; shift
    if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}

"$XMC" synth --out a --points 3000 --labels 200 --seed 4 > out.txt 2> err.txt
check "exit 0" test $? -eq 0
for f in trn_X_Y.txt tst_X_Y.txt trn_X.txt tst_X.txt trn_X_Xf.txt tst_X_Xf.txt Y.txt; do
    check "$f exists" test -s "a/$f"
done
check "no temp files left" bash -c "! ls a | grep -q tmp"
check "train labels header" test "$(head -1 a/trn_X_Y.txt)" = "2400 200"
check "test labels header" test "$(head -1 a/tst_X_Y.txt)" = "600 200"
check "features header" test "$(head -1 a/trn_X_Xf.txt)" = "2400 5200"
check "train texts: one line per point" test "$(wc -l < a/trn_X.txt)" -eq 2400
check "label texts: one line per label" test "$(wc -l < a/Y.txt)" -eq 200
check "summary printed" grep -q "2400 train, 600 test" out.txt

"$XMC" synth --out b --points 3000 --labels 200 --seed 4 > /dev/null 2>&1
same=1
for f in trn_X_Y.txt tst_X_Y.txt trn_X.txt tst_X.txt trn_X_Xf.txt tst_X_Xf.txt Y.txt; do
    cmp -s "a/$f" "b/$f" || same=0
done
check "same seed, same bytes" test $same -eq 1
OMP_NUM_THREADS=1 "$XMC" synth --out c --points 3000 --labels 200 --seed 4 > /dev/null 2>&1
check "one thread, same bytes" cmp -s a/trn_X_Xf.txt c/trn_X_Xf.txt
"$XMC" synth --out d --points 3000 --labels 200 --seed 5 > /dev/null 2>&1
check "other seed, other bytes" bash -c "! cmp -s a/trn_X.txt d/trn_X.txt"

"$XMC" synth --out z --points 0 > /dev/null 2> e1.txt
check "points 0 refused" test $? -eq 1
check "points 0 message" grep -q '^xmc: synth: --points must be >= 1' e1.txt
"$XMC" synth --out z --labels 0 > /dev/null 2> e2.txt
check "labels 0 refused" grep -q '^xmc: synth: --labels must be' e2.txt
"$XMC" synth --out z --test-frac 1 > /dev/null 2> e3.txt
check "test-frac 1 refused" grep -q 'test-frac must be in' e3.txt
check "nothing written when refused" test ! -e z
"$XMC" synth --points 10 > /dev/null 2>&1
check "--out required exits 2" test $? -eq 2

# Pipeline: the test labels as a prediction (every score 1) score P@1 = 100.
"$XMC" eval --truth a/tst --pred a/tst_X_Y.txt --train a/trn --k 1 > ev.txt 2> everr.txt
check "eval of synth data runs" test $? -eq 0
check "perfect prediction P@1 = 100" grep -qE '^P +100\.00$' ev.txt
check "perfect prediction nDCG@1 = 100" grep -qE '^nDCG +100\.00$' ev.txt
check "PSP printed with --train" grep -qE '^PSP +[0-9]' ev.txt

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; cat err.txt everr.txt 2>/dev/null; exit 1; }
echo "all synth checks passed"
