#!/usr/bin/env python3
"""Independent reference for `xmc eval` (pure Python, no numpy needed).

Implements the same definitions as include/xmc/metrics.h / docs/metrics.md
(pyxclib's xc_metrics for P, nDCG, PSP, PSnDCG, R; napkinXC's coverage) in
the most direct way: full sort of each prediction row, Python sets for the
truth, and its own readers of the dataset formats. It shares no code with the
C library, so agreement between the two is evidence both read the formats and
apply the formulas the same way.

Usage:
  eval_ref.py --truth SPEC --pred FILE [--train SPEC] [--A a --B b]
              [--k 1,3,5] [--filter FILE]
prints JSON with the keys of `xmc eval --json` (values are fractions).

Specs: FILE (XC data file), FILE@SPLIT, TEXTS+LABELS (label ids = sorted
label names of --train, else of the spec itself), DIR/PREFIX
(PREFIX_X_Y.txt, and PREFIX_filter_labels.txt if present).
"""
import argparse
import json
import math
import os
import sys


def read_xc(path):
    """XC data file -> (list of label sets, L)."""
    with open(path) as f:
        n, _, L = (int(x) for x in f.readline().split())
        rows = []
        for line in f:
            line = line.rstrip("\n")
            if line.startswith(" ") or not line:
                rows.append(set())
                continue
            head = line.split(" ", 1)[0]
            if ":" in head:
                rows.append(set())
            else:
                rows.append({int(x) for x in head.split(",") if x != ""})
    if len(rows) != n:
        sys.exit(f"{path}: header says {n} rows, found {len(rows)}")
    return rows, L


def read_sparse(path):
    """'N C' header then 'col:val' rows -> (list of dict col->val, C)."""
    with open(path) as f:
        n, c = (int(x) for x in f.readline().split())
        rows = []
        for line in f:
            d = {}
            for tok in line.split():
                a, b = tok.split(":")
                d[int(a)] = float(b)
            rows.append(d)
    while len(rows) < n:  # trailing empty rows may lack their newline
        rows.append({})
    if len(rows) != n:
        sys.exit(f"{path}: header says {n} rows, found {len(rows)}")
    return rows, c


def read_split(path):
    with open(path) as f:
        return [int(line.split()[0]) - 1 for line in f if line.strip()]


def label_names(path):
    with open(path) as f:
        return [line.split() for line in f]


def load_labels(spec, vocab=None):
    """Spec -> (label sets, L, vocab or None, filter pairs or None)."""
    if os.path.isfile(spec):
        rows, L = read_xc(spec)
        return rows, L, None, None
    if "@" in spec:
        base, split = spec.rsplit("@", 1)
        rows, L = read_xc(base)
        return [rows[i] for i in read_split(split)], L, None, None
    if "+" in spec:
        texts, labels = spec.split("+", 1)
        names = label_names(labels)
        if vocab is None:
            vocab = sorted({n for row in names for n in row})
        index = {n: i for i, n in enumerate(vocab)}
        rows = [{index[n] for n in row if n in index} for row in names]
        return rows, len(vocab), vocab, None
    rows, L = read_sparse(spec + "_X_Y.txt")
    rows = [{l for l, v in r.items() if v != 0} for r in rows]
    filt = None
    fpath = spec + "_filter_labels.txt"
    if os.path.isfile(fpath):
        filt = read_pairs(fpath)
    return rows, L, None, filt


def read_pairs(path):
    pairs = set()
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if line:
                pairs.add((int(line[0]), int(line[1])))
    return pairs


def inv_propensity(train_rows, L, A, B):
    N = len(train_rows)
    freq = [0] * L
    for r in train_rows:
        for l in r:
            freq[l] += 1
    C = (math.log(N) - 1.0) * (B + 1.0) ** A
    return [1.0 + C * (n + B) ** (-A) for n in freq]


def evaluate(truth, pred, ks, w=None, filt=None):
    N = len(truth)
    kmax = max(ks)
    disc = [1.0 / math.log2(j + 2) for j in range(kmax)]
    acc = {k: dict(p=0.0, n=0.0, r=0.0, pn=0.0, pd=0.0, qn=0.0, qd=0.0) for k in ks}
    first_hit = {}  # label -> best (lowest) rank of a correct prediction
    labels_in_truth = set()
    empty = 0
    for i in range(N):
        y = set(truth[i])
        p = dict(pred[i])
        if filt:
            for l in list(y):
                if (i, l) in filt:
                    y.discard(l)
            for l in list(p):
                if (i, l) in filt:
                    del p[l]
        labels_in_truth |= y
        if not y:
            empty += 1
        ranked = sorted(p.items(), key=lambda t: (-t[1], t[0]))
        ranked = [l for l, _ in ranked[:kmax]]
        for j, l in enumerate(ranked):
            if l in y and first_hit.get(l, kmax) > j:
                first_hit[l] = j
        ideal = sorted((w[l] for l in y), reverse=True) if w else []
        for k in ks:
            top = ranked[:k]
            hits = [1.0 if l in y else 0.0 for l in top]
            a = acc[k]
            a["p"] += sum(hits) / k
            if y:
                idcg = sum(disc[: min(k, len(y))])
                a["n"] += sum(h * disc[j] for j, h in enumerate(hits)) / idcg
                a["r"] += sum(hits) / len(y)
            if w:
                ws = [w[l] * h for l, h in zip(top, hits)]
                iw = ideal[:k]
                a["pn"] += sum(ws) / k
                a["pd"] += sum(iw) / k
                if y:
                    a["qn"] += sum(x * disc[j] for j, x in enumerate(ws)) / idcg
                    a["qd"] += sum(x * disc[j] for j, x in enumerate(iw)) / idcg
    out = {"points": N, "rows_without_labels": empty, "k": ks}
    out["P"] = [acc[k]["p"] / N for k in ks]
    out["nDCG"] = [acc[k]["n"] / N for k in ks]
    if w:
        out["PSP"] = [acc[k]["pn"] / acc[k]["pd"] if acc[k]["pd"] else 0.0 for k in ks]
        out["PSnDCG"] = [acc[k]["qn"] / acc[k]["qd"] if acc[k]["qd"] else 0.0 for k in ks]
    out["R"] = [acc[k]["r"] / N for k in ks]
    nl = len(labels_in_truth)
    out["coverage"] = [
        sum(1 for j in first_hit.values() if j < k) / nl if nl else 0.0 for k in ks
    ]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--truth", required=True)
    ap.add_argument("--pred", required=True)
    ap.add_argument("--train")
    ap.add_argument("--A", type=float, default=0.55)
    ap.add_argument("--B", type=float, default=1.5)
    ap.add_argument("--k", default="1,3,5")
    ap.add_argument("--filter")
    a = ap.parse_args()
    ks = [int(x) for x in a.k.split(",")]
    vocab = None
    train = None
    if a.train:
        train, Ltr, vocab, _ = load_labels(a.train)
    truth, L, _, filt = load_labels(a.truth, vocab)
    if a.filter:
        filt = read_pairs(a.filter)
    pred, Lp = read_sparse(a.pred)
    if len(pred) != len(truth):
        sys.exit(f"{a.pred}: {len(pred)} rows, truth has {len(truth)}")
    w = inv_propensity(train, L, a.A, a.B) if train is not None else None
    res = evaluate(truth, pred, ks, w, filt)
    res["labels"] = L
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
