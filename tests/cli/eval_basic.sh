#!/bin/bash
# xmc eval end to end on the hand-computed example of tests/test_metrics.c:
# table and JSON values, the dataset's filter honoured by default, --filter,
# --no-filter, propensity presets, and each error path's message + exit code.
set -u
XMC=${XMC:-xmc}
T=${XMC_TMP:-/tmp/xmc_cli_eval_basic}
rm -rf "$T" && mkdir -p "$T/d" && cd "$T" || exit 1
fails=0
check() { # check NAME COND...
    local name=$1; shift
    if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
has() { grep -qE -- "$2" "$1"; }

printf '4 6\n0:1 2:1\n1:1\n\n3:1 4:1 5:1\n' > d/tst_X_Y.txt
printf '3 5\n' > d/tst_filter_labels.txt
printf '4 6\n0:1 1:1 2:1\n1:1 2:1\n2:1 3:1\n3:1\n' > d/trn_X_Y.txt
printf '4 6\n2:0.9 1:0.8 0:0.8 5:0.1\n4:0.5\n0:1 1:0.5\n5:0.7 0:0.6 3:0.6 4:0.2\n' > pred.txt

# Filtered (dataset filter by default): the hand-computed values.
"$XMC" eval --truth d/tst --pred pred.txt > out1.txt 2> err1.txt
check "exit 0" test $? -eq 0
check "filter reported" has out1.txt 'filter: dataset \(1 true pairs, 1 predictions removed\)'
check "P row" has out1.txt '^P +25\.00 +33\.33 +20\.00$'
check "nDCG row" has out1.txt '^nDCG +25\.00 +42\.34 +42\.34$'
check "R row" has out1.txt '^R +12\.50 +50\.00 +50\.00$'
check "coverage row" has out1.txt '^coverage +20\.00 +80\.00 +80\.00$'
check "no PSP without --train" bash -c "! grep -q PSP out1.txt"

# --no-filter: row 3 keeps label 5, ranked first.
"$XMC" eval --truth d/tst --pred pred.txt --no-filter --k 1 > out2.txt
check "unfiltered P@1" has out2.txt '^P +50\.00$'

# --filter FILE replaces the dataset's filter.
printf '0 2\n' > f.txt
"$XMC" eval --truth d/tst --pred pred.txt --filter f.txt --k 1 > out3.txt
check "--filter file replaces the dataset's" has out3.txt 'filter: f\.txt \(1 true pairs, 1 predictions removed\)'
check "--filter file: P@1 (row 0 ranks 0 first, row 3 keeps 5)" has out3.txt '^P +50\.00$'

# JSON: fractions.
"$XMC" eval --truth d/tst --pred pred.txt --json --k 1,3 > out4.json
check "json P" has out4.json '"P":[[:space:]]*\[0\.25, 0\.3333333333'
check "json coverage" has out4.json '"coverage":[[:space:]]*\[0\.2, 0\.8'
check "json rows without labels" has out4.json '"rows_without_labels":[[:space:]]*1'

# Propensities: which constants were used is printed.
"$XMC" eval --truth d/tst --pred pred.txt --train d/trn > out5.txt
check "default A/B printed" has out5.txt 'propensity A=0\.55 B=1\.5 \(default\), from 4 training points'
check "PSP row" has out5.txt '^PSP +[0-9]'
"$XMC" eval --truth d/tst --pred pred.txt --train d/trn --preset wikipedia > out6.txt
check "wikipedia preset" has out6.txt 'A=0\.5 B=0\.4 \(wikipedia\)'
"$XMC" eval --truth d/tst --pred pred.txt --train d/trn --A 0.6 --B 2.6 --json > out7.json
check "custom in json" has out7.json '"preset":[[:space:]]*"custom"'

# --baseline freq: training counts 2:3 1:2 3:2 0:1 4:0 5:0 rank 2 1 3 0 4
# (ties to the lower id); with the filter, row 0 hits 2 (and 0 at rank 4),
# row 1 hits 1 at rank 2, row 3 hits 3 at rank 3 and 4 at rank 5.
"$XMC" eval --truth d/tst --train d/trn --baseline freq > out8.txt
check "baseline P" has out8.txt '^P +25\.00 +25\.00 +25\.00$'
check "baseline R" has out8.txt '^R +12\.50 +50\.00 +75\.00$'
check "baseline coverage" has out8.txt '^coverage +20\.00 +60\.00 +100\.00$'
"$XMC" eval --truth d/tst --baseline freq > /dev/null 2> e10.txt
check "baseline needs --train" has e10.txt 'needs --train'
"$XMC" eval --truth d/tst --pred pred.txt --train d/trn --baseline freq > /dev/null 2> e11.txt
check "--pred and --baseline exclusive" has e11.txt 'exactly one of'

# Errors: "xmc: FILE:LINE: message", non-zero exit.
printf '3 6\n0:1\n1:1\n2:1\n' > short.txt
"$XMC" eval --truth d/tst --pred short.txt > /dev/null 2> e1.txt
check "row count mismatch exits 1" test $? -eq 1
check "row count mismatch message" has e1.txt '^xmc: short\.txt:1: header says 3 rows, but the ground truth d/tst has 4 points'
printf '4 9\n0:1\n\n\n8:1\n' > wide.txt
"$XMC" eval --truth d/tst --pred wide.txt > /dev/null 2> e2.txt
check "label count mismatch" has e2.txt '^xmc: wide\.txt:1: header says 9 labels'
printf '4 6\n0:1\n\n\n6:1\n' > badid.txt
"$XMC" eval --truth d/tst --pred badid.txt > /dev/null 2> e3.txt
check "label id out of range exits non-zero" test -s e3.txt
check "label id error names the file and line 5" has e3.txt '^xmc: badid\.txt:5:'
"$XMC" eval --truth d/tst --pred pred.txt --preset nope > /dev/null 2> e4.txt
check "bad preset" has e4.txt 'expected amazon or wikipedia'
"$XMC" eval --truth d/tst --pred pred.txt --A 0.5 > /dev/null 2> e5.txt
check "--A needs --train" has e5.txt 'need --train'
"$XMC" eval --truth d/tst --pred pred.txt --k 1,x > /dev/null 2> e6.txt
check "bad --k" has e6.txt '--k: expected'
printf '0 1\n9 9\n' > badf.txt
"$XMC" eval --truth d/tst --pred pred.txt --filter badf.txt > /dev/null 2> e7.txt
check "filter out of range names line 2" has e7.txt '^xmc: badf\.txt:2: pair \(9, 9\) outside'
"$XMC" eval --truth d/tst --pred missing.txt > /dev/null 2> e8.txt
check "missing prediction file" has e8.txt '^xmc: missing\.txt'
"$XMC" eval --pred pred.txt > /dev/null 2> e9.txt
check "--truth required exits 2" test $? -eq 2

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all eval checks passed"
