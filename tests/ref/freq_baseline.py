#!/usr/bin/env python3
"""Label-frequency baseline: every test point gets the k most frequent
training labels, scored by their training frequency (ties: lower label id
first), written as a score matrix (header 'N L', then 'label:score' rows).
A prediction any tool can compute; bench/eval_check.sh scores it with
`xmc eval` and with tests/ref/eval_ref.py.

With --jitter SEED each row instead ranks its own candidates: every label's
frequency times a random factor in [0.5, 1.5), rounded to 1 decimal (so rows
differ and ties are common): a harder cross-check of the two evaluators.

Usage: freq_baseline.py --train SPEC --truth SPEC --out FILE [--k 10]
                        [--jitter SEED]
(specs as in eval_ref.py; for TEXTS+LABELS the training label names fix the
ids of both parts).
"""
import argparse
import os
import random
import sys

sys.dont_write_bytecode = True  # keep tests/ref free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval_ref import load_labels  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--jitter", type=int)
    a = ap.parse_args()
    train, L, vocab, _ = load_labels(a.train)
    truth, Lt, _, _ = load_labels(a.truth, vocab)
    freq = [0] * L
    for r in train:
        for l in r:
            freq[l] += 1
    top = sorted(range(L), key=lambda l: (-freq[l], l))[: a.k]
    row = " ".join(f"{l}:{freq[l]}" for l in top) + "\n"
    with open(a.out + ".tmp", "w") as f:
        f.write(f"{len(truth)} {Lt}\n")
        if a.jitter is None:
            for _ in truth:
                f.write(row)
        else:
            rng = random.Random(a.jitter)
            cand = sorted(range(L), key=lambda l: (-freq[l], l))[: 3 * a.k]
            for _ in truth:
                sc = [(round(freq[l] * (0.5 + rng.random()), 1), l) for l in cand]
                sc = sorted(sc, key=lambda t: (-t[0], t[1]))[: a.k]
                rng.shuffle(sc)  # any order in the file
                f.write(" ".join(f"{l}:{s}" for s, l in sc) + "\n")
    os.replace(a.out + ".tmp", a.out)


if __name__ == "__main__":
    main()
