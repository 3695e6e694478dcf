#!/usr/bin/env bash
# Quick start: install what is missing, build, generate a synthetic dataset,
# train on it, predict the test split and print the metrics table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
xmc=build/xmc
out=${XMC_DEMO_DIR:-out/demo}
$xmc synth --out "$out/data" --points 20000 --labels 2000 --seed 1
# 5 epochs keep the demo under two minutes on 2 cores; the defaults (20
# epochs) gain a few points more (docs/renee.md).
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} \
  $xmc train --train "$out/data/trn" --test "$out/data/tst" --model "$out/model" --seed 1 --epochs 5
$xmc predict --model "$out/model" --input "$out/data/tst" --out "$out/pred.txt" --topk 5
$xmc eval --truth "$out/data/tst" --pred "$out/pred.txt" --train "$out/data/trn"
