#!/usr/bin/env python3
"""Independent reader for the shared datasets (plain Python, no xmc code):
writes tests/data/data/shared_ref.txt, which tests/test_data.c compares
against xmc_dataset_load. One line per spec:

    name n F L nnzX nnzY sumX ckX ckY

sumX is the sum of all feature values (float64 of the decimal text), ckX and
ckY are sum((row+1) * (col+1)) mod 2^64 over the entries (rows in spec order).

    python3 tests/ref/data_ref.py ../shared/data > tests/data/data/shared_ref.txt
"""
import sys

M = 1 << 64


def read_xc(path):
    with open(path) as f:
        n, F, L = map(int, f.readline().split())
        rows = []
        for line in f:
            line = line.rstrip("\n")
            toks = line.split(" ")
            labels = []
            if toks and toks[0] and ":" not in toks[0]:
                labels = [int(x) for x in toks[0].split(",")]
                toks = toks[1:]
            feats = []
            for t in toks:
                if t:
                    i, v = t.split(":")
                    feats.append((int(i), float(v)))
            rows.append((sorted(labels), feats))
    assert len(rows) == n
    return n, F, L, rows


def read_split(path):
    with open(path) as f:
        return [int(l.split()[0]) - 1 for l in f if l.strip()]


def stats(name, F, L, rows):
    sx = 0.0
    ckx = cky = nx = ny = 0
    for r, (labels, feats) in enumerate(rows):
        for c in labels:
            cky = (cky + (r + 1) * (c + 1)) % M
        for c, v in feats:
            ckx = (ckx + (r + 1) * (c + 1)) % M
            sx += v
        nx += len(feats)
        ny += len(labels)
    print(f"{name} {len(rows)} {F} {L} {nx} {ny} {sx:.9g} {ckx} {cky}")


def main(d):
    for name, data, split in [
        ("bibtex_train", "bibtex/bibtex_train.txt", None),
        ("delicious_test", "delicious/delicious_test.txt", None),
        ("rcv1sub1_tst", "rcv1sub1/rcv1subset1_data.txt", "rcv1sub1/rcv1subset1_tstSplit.txt"),
        ("cooking_tr", "stackex_cooking/cooking_data.txt", "stackex_cooking/cooking_trSplit.txt"),
    ]:
        n, F, L, rows = read_xc(f"{d}/{data}")
        if split:
            rows = [rows[i] for i in read_split(f"{d}/{split}")]
        stats(name, F, L, rows)
    # TEXTS+LABELS: vocabulary = sorted unique names of the training labels.
    r = f"{d}/reuters21578"
    tr = [l.split() for l in open(f"{r}/train_labels.txt")]
    vocab = sorted({x for l in tr for x in l})
    ids = {x: i for i, x in enumerate(vocab)}
    for name, part in [("reuters_train", "train"), ("reuters_test", "test")]:
        lab = [l.split() for l in open(f"{r}/{part}_labels.txt")]
        rows = [(sorted({ids[x] for x in l if x in ids}), []) for l in lab]
        unknown = sum(1 for l in lab for x in l if x not in ids)
        stats(name, 0, len(vocab), rows)
        print(f"# {name} unknown {unknown}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
