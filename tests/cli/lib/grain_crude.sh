# The two-label text dataset of the bag-encoder CLI tests, sourced by
# tests/cli/train_basic.sh and train_bag_idf.sh (not a test itself: CMake
# runs only tests/cli/*.sh). The callers define XMC and fail().

# grain_crude_data DIR: DIR/texts.txt + DIR/labels.txt, 60 "wheat grain"
# texts labelled grain and 60 "crude oil" texts labelled crude, alternating.
grain_crude_data() {
  : > "$1/texts.txt"
  : > "$1/labels.txt"
  for i in $(seq 1 60); do
    echo "wheat grain harvest report $i" >> "$1/texts.txt"; echo "grain" >> "$1/labels.txt"
    echo "crude oil barrel output $i" >> "$1/texts.txt"; echo "crude" >> "$1/labels.txt"
  done
}

# grain_crude_predict MODEL OUT: predict --text --topk 1 (output in OUT)
# names crude for an oil text and grain for a wheat text.
grain_crude_predict() {
  printf 'the oil barrel\nharvest of wheat\n' | "$XMC" predict --model "$1" --text --topk 1 \
    > "$2" || fail "predict --text failed"
  grep -qP "^1\t1\t\d+\t[0-9.]+\tcrude$" "$2" || fail "--text line 1: $(cat "$2")"
  grep -qP "^2\t1\t\d+\t[0-9.]+\tgrain$" "$2" || fail "--text line 2: $(cat "$2")"
}
