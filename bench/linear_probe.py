#!/usr/bin/env python3
"""Per-label linear SVMs on sparse features, xmc embeddings, or both
(docs/renee.md, "Round 7"): how far a convex one-vs-rest classifier fitted
to convergence gets on the same rows, i.e. whether a gap between xmc and a
linear peer is in xmc's representation or in its classifier.

  linear_probe.py --train TRAIN.xc --test TEST.xc --out PRED.txt
                  [--train-emb TR.npy --test-emb TE.npy] [--alpha A]
                  [--no-sparse] [--C C] [--loss hinge|squared_hinge]

  TRAIN.xc, TEST.xc  Extreme Classification Repository files (header
                     "N F L", rows "l1,l2 f:v ..."), e.g. the ones
                     bench/peers.sh writes (OUT/<dataset>/train.xc, test.xc)
  TR.npy, TE.npy     `xmc predict --model DIR --input SPEC --embed FILE.npy`
                     of the same rows in the same order; rows are
                     L2-normalised and scaled by A (default 1) before being
                     placed beside the sparse features (--no-sparse: alone)
  PRED.txt           top-5 per row in the score-matrix format; score it with
                     `xmc eval --truth SPEC --train SPEC --pred PRED.txt`

Needs numpy, scipy and scikit-learn (LinearSVC, i.e. liblinear's dual
coordinate descent). Sparse rows are L2-normalised as omikuji and napkinXC
see them.
"""
import argparse
import os

import numpy as np
import scipy.sparse as sp
from sklearn.svm import LinearSVC


def read_xc(path):
    with open(path) as f:
        n, nf, nl = map(int, f.readline().split())
        labels, r, c, v = [], [], [], []
        for i in range(n):
            toks = f.readline().rstrip('\n').split(' ')
            if toks and toks[0] and ':' not in toks[0]:
                labels.append([int(a) for a in toks[0].split(',') if a])
                toks = toks[1:]
            else:
                labels.append([])
            for t in toks:
                if ':' in t:
                    a, b = t.split(':')
                    r.append(i)
                    c.append(int(a))
                    v.append(float(b))
    X = sp.csr_matrix((v, (r, c)), shape=(n, nf), dtype=np.float64)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(1)).ravel())
    return sp.diags(1.0 / np.maximum(norms, 1e-12)) @ X, labels, nl


def features(X, emb_path, alpha, sparse):
    if not emb_path:
        return X
    E = np.load(emb_path).astype(np.float64)
    if E.shape[0] != X.shape[0]:
        raise SystemExit(f'{emb_path}: {E.shape[0]} rows, the .xc file has {X.shape[0]}')
    E = alpha * E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    return sp.hstack([X, sp.csr_matrix(E)]).tocsr() if sparse else E


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--train', required=True)
    ap.add_argument('--test', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--train-emb')
    ap.add_argument('--test-emb')
    ap.add_argument('--alpha', type=float, default=1.0)
    ap.add_argument('--no-sparse', action='store_true')
    ap.add_argument('--C', type=float, default=1.0)
    ap.add_argument('--loss', default='squared_hinge', choices=['hinge', 'squared_hinge'])
    a = ap.parse_args()
    if bool(a.train_emb) != bool(a.test_emb):
        raise SystemExit('give both --train-emb and --test-emb, or neither')
    if a.no_sparse and not a.train_emb:
        raise SystemExit('--no-sparse needs embeddings')
    Xtr, Ytr, nl = read_xc(a.train)
    Xte, _, _ = read_xc(a.test)
    if Xte.shape[1] != Xtr.shape[1]:
        raise SystemExit(f'{a.test}: {Xte.shape[1]} features, {a.train} has {Xtr.shape[1]}')
    Ftr = features(Xtr, a.train_emb, a.alpha, not a.no_sparse)
    Fte = features(Xte, a.test_emb, a.alpha, not a.no_sparse)
    S = np.full((Fte.shape[0], nl), -np.inf)
    for lab in range(nl):
        y = np.fromiter((lab in ls for ls in Ytr), dtype=bool, count=len(Ytr))
        if y.any():
            m = LinearSVC(C=a.C, loss=a.loss, dual=True, max_iter=2000).fit(Ftr, y)
            S[:, lab] = m.decision_function(Fte)
    tmp = f'{a.out}.tmp.{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(f'{S.shape[0]} {nl}\n')
        for row in S:
            top = [t for t in np.argsort(-row, kind='stable')[:5] if np.isfinite(row[t])]
            f.write(' '.join(f'{t}:{row[t]:.6f}' for t in sorted(top)) + '\n')
    os.replace(tmp, a.out)


if __name__ == '__main__':
    main()
