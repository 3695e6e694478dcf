#!/usr/bin/env python3
"""Writes tests/data/metrics/: a small random evaluation problem (training
labels, test labels with empty rows, a filter, predictions with ties, negative
scores and short rows) and expected.json, the metrics eval_ref.py computes
for it. tests/test_metrics.c compares the C library against expected.json.

Usage: python3 tests/ref/make_metrics_fixture.py   (deterministic; seed 2)
"""
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep tests/ref free of __pycache__
sys.path.insert(0, HERE)
import eval_ref  # noqa: E402

OUT = os.path.join(HERE, "..", "data", "metrics")
N_TRN, N_TST, L = 300, 200, 30
rng = random.Random(2)


def zipf_label():
    # popularity ~ 1/(rank+1): a head and a tail
    while True:
        l = int(L ** rng.random()) - 1
        if 0 <= l < L:
            return l


def rows(n, empty_every):
    out = []
    for i in range(n):
        k = 0 if empty_every and i % empty_every == 3 else rng.randint(1, 5)
        out.append(sorted({zipf_label() for _ in range(k)}))
    return out


def write_labels(path, rs):
    with open(path, "w") as f:
        f.write(f"{len(rs)} {L}\n")
        for r in rs:
            f.write(" ".join(f"{l}:1" for l in r) + "\n")


os.makedirs(OUT, exist_ok=True)
trn, tst = rows(N_TRN, 0), rows(N_TST, 9)
write_labels(os.path.join(OUT, "trn_X_Y.txt"), trn)
write_labels(os.path.join(OUT, "tst_X_Y.txt"), tst)
with open(os.path.join(OUT, "filter.txt"), "w") as f:
    for i in range(0, N_TST, 7):
        if tst[i]:
            f.write(f"{i} {tst[i][0]}\n")  # a true pair
        f.write(f"{i} {(i * 7) % L}\n")    # maybe a predicted one
with open(os.path.join(OUT, "pred.txt"), "w") as f:
    f.write(f"{N_TST} {L}\n")
    for i in range(N_TST):
        n = rng.randint(0, 12)
        labs = rng.sample(range(L), n)
        # scores on a coarse grid: many ties; some negative
        f.write(" ".join(f"{l}:{rng.randint(-2, 6) / 4}" for l in labs) + "\n")

truth, _, _, _ = eval_ref.load_labels(os.path.join(OUT, "tst"))
train, _, _, _ = eval_ref.load_labels(os.path.join(OUT, "trn"))
pred, _ = eval_ref.read_sparse(os.path.join(OUT, "pred.txt"))
filt = eval_ref.read_pairs(os.path.join(OUT, "filter.txt"))
ks = [1, 2, 3, 5, 10, 20]
w = eval_ref.inv_propensity(train, L, 0.55, 1.5)
res = eval_ref.evaluate(truth, pred, ks, w, filt)
res["A"], res["B"] = 0.55, 1.5
with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(res, f, indent=1)
print("wrote", OUT)
