#!/usr/bin/env python3
"""A linear model on synthetic data, to show `xmc synth` data is learnable:
the label-centroid classifier (w_l = normalised sum of the tf-idf rows of
label l's training points; score = x . w_l), written as a score matrix with
the top 10 labels per test point, for `xmc eval`. Needs numpy; dense, so for
small sets only (N x F floats).

Usage: synth_centroid.py DIR OUT_PRED
"""
import sys

import numpy as np


def read(path):
    with open(path) as f:
        n, c = (int(x) for x in f.readline().split())
        m = np.zeros((n, c), dtype=np.float32)
        for i, line in enumerate(f):
            for tok in line.split():
                a, b = tok.split(":")
                m[i, int(a)] = float(b)
    return m


def main():
    d, out = sys.argv[1], sys.argv[2]
    Xt, Yt, Xs = read(d + "/trn_X_Xf.txt"), read(d + "/trn_X_Y.txt"), read(d + "/tst_X_Xf.txt")
    W = Yt.T @ Xt
    W /= np.linalg.norm(W, axis=1, keepdims=True) + 1e-12
    S = Xs @ W.T
    top = np.argsort(-S, axis=1, kind="stable")[:, :10]
    with open(out, "w") as f:
        f.write(f"{S.shape[0]} {S.shape[1]}\n")
        for i in range(S.shape[0]):
            f.write(" ".join(f"{l}:{S[i, l]:.6f}" for l in top[i]) + "\n")


if __name__ == "__main__":
    main()
