#!/usr/bin/env bash
# xmc convert: every input form to the label-feature layout and the binary
# cache, exit codes, and the "xmc: FILE:LINE: message" error format.
# Env: XMC (binary), XMC_TMP (scratch), XMC_SHARED (shared dir, optional).
set -u
X=${XMC:?XMC must name the xmc binary}
T=${XMC_TMP:-$(mktemp -d)}
rm -rf "$T" && mkdir -p "$T"
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect_rc() { # rc cmd...
  local want=$1; shift
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  [ "$rc" = "$want" ] || fail "exit $rc (want $want): $* -- $(cat "$T/err")"
}

# XC file -> label-feature layout, label names as Y.txt.
printf '3 4 2\n0,1 0:1 2:0.5\n 1:2\n1 3:0.25\n' >"$T/d.txt"
printf 'first\nsecond\n' >"$T/d_label_names.txt"
expect_rc 0 "$X" convert --input "$T/d.txt" --out "$T/lf/trn"
[ "$(head -1 "$T/lf/trn_X_Y.txt")" = "3 2" ] || fail "X_Y header: $(head -1 "$T/lf/trn_X_Y.txt")"
[ "$(sed -n 2p "$T/lf/trn_X_Y.txt")" = "0:1 1:1" ] || fail "X_Y row 1"
[ "$(sed -n 3p "$T/lf/trn_X_Y.txt")" = "" ] || fail "X_Y empty row"
[ "$(sed -n 2p "$T/lf/trn_X_Xf.txt")" = "0:1 2:0.5" ] || fail "Xf row 1"
[ "$(cat "$T/lf/Y.txt")" = "$(printf 'first\nsecond')" ] || fail "label names as Y.txt"
ls "$T/lf" | grep -q tmp && fail "temp files left behind"

# Layout -> binary -> layout again: identical files.
expect_rc 0 "$X" convert --input "$T/lf/trn" --out "$T/c" --binary
[ -s "$T/c.xmcb" ] || fail "no binary cache written"
expect_rc 0 "$X" convert --input "$T/c.xmcb" --out "$T/lf2/trn"
for f in trn_X_Y.txt trn_X_Xf.txt Y.txt; do
  cmp -s "$T/lf/$f" "$T/lf2/$f" || fail "round trip through .xmcb changed $f"
done

# FILE@SPLIT
printf '3\n1\n' >"$T/split.txt"
expect_rc 0 "$X" convert --input "$T/d.txt@$T/split.txt" --out "$T/sp/tst"
[ "$(head -1 "$T/sp/tst_X_Y.txt")" = "2 2" ] || fail "split rows"
[ "$(sed -n 2p "$T/sp/tst_X_Y.txt")" = "1:1" ] || fail "split order"

# TEXTS+LABELS with --labels-from: test ids follow the training vocabulary.
printf 'a b\nc\n' >"$T/tr_texts.txt"; printf 'wheat corn\nbarley\n' >"$T/tr_labels.txt"
printf 'x\ny\n' >"$T/te_texts.txt"; printf 'corn oats\nwheat\n' >"$T/te_labels.txt"
expect_rc 0 "$X" convert --input "$T/te_texts.txt+$T/te_labels.txt" \
  --labels-from "$T/tr_texts.txt+$T/tr_labels.txt" --out "$T/tl/tst"
[ "$(sed -n 2,3p "$T/tl/tst_X_Y.txt" | tr '\n' '|')" = "1:1|2:1|" ] || fail "vocab ids"
[ "$(cat "$T/tl/Y.txt" | tr '\n' ' ')" = "barley corn wheat " ] || fail "vocab as Y.txt"
grep -q "dropped 1 label" "$T/out" || fail "unknown label not reported"
[ "$(cat "$T/tl/tst_X.txt" | tr '\n' ' ')" = "x y " ] || fail "texts"

# Errors: "xmc: FILE:LINE: message", non-zero exit, no output file.
printf '2 4 2\n0 0:1\n1 2:1 1:1\n' >"$T/bad.txt"
expect_rc 1 "$X" convert --input "$T/bad.txt" --out "$T/bad/trn"
grep -q "^xmc: $T/bad.txt:3: feature ids must increase" "$T/err" || fail "message: $(cat "$T/err")"
[ -e "$T/bad/trn_X_Y.txt" ] && fail "output written despite the error"
printf '2 4 2\n0 0:1\n' >"$T/short.txt"
expect_rc 1 "$X" convert --input "$T/short.txt" --out "$T/bad/trn"
grep -q "^xmc: $T/short.txt:3: expected 2 rows" "$T/err" || fail "short: $(cat "$T/err")"
expect_rc 1 "$X" convert --input "$T/nothing" --out "$T/bad/trn"
grep -q "^xmc: $T/nothing: no dataset" "$T/err" || fail "missing: $(cat "$T/err")"
head -c 100 "$T/c.xmcb" >"$T/trunc.xmcb"
expect_rc 1 "$X" convert --input "$T/trunc.xmcb" --out "$T/bad/trn"
grep -q "^xmc: $T/trunc.xmcb: " "$T/err" || fail "truncated cache: $(cat "$T/err")"
expect_rc 2 "$X" convert --out "$T/x"
expect_rc 0 "$X" convert --help

# Real data when present: rcv1sub1 train split, via the binary cache.
S=${XMC_SHARED:-}
R="$S/data/rcv1sub1/rcv1subset1_data.txt"
if [ -n "$S" ] && [ -f "$R" ]; then
  expect_rc 0 "$X" convert --input "$R@$S/data/rcv1sub1/rcv1subset1_trSplit.txt" \
    --out "$T/rcv" --binary
  expect_rc 0 "$X" convert --input "$T/rcv.xmcb" --out "$T/rcv/trn"
  [ "$(head -1 "$T/rcv/trn_X_Xf.txt")" = "4500 47236" ] || fail "rcv1 split shape"
fi

[ "$fails" = 0 ] && echo "data_convert: all checks passed"
exit $((fails > 0))
