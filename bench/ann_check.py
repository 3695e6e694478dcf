#!/usr/bin/env python3
"""Independent check of `xmc bench ann --dump DIR` output, and how hard the
data is: recomputes the exact top-k of the first Q queries by float64 brute
force (numpy) and compares with DIR/<data>.gt.i32 (xmc_knn_exact, GEMM);
then, over each query's 100 nearest neighbours, the local intrinsic
dimension (Levina-Bickel MLE), the relative contrast (mean distance / nearest
distance) and the gap between the k-th and (k+1)-th neighbour.

    python3 bench/ann_check.py DIR [DATA=random] [Q=100] [DIM=64] [K=10]
L2 only (the default metric of xmc bench ann). Memory: the base in float64.
"""
import sys

import numpy as np

dirn = sys.argv[1]
data = sys.argv[2] if len(sys.argv) > 2 else "random"
nq = int(sys.argv[3]) if len(sys.argv) > 3 else 100
d = int(sys.argv[4]) if len(sys.argv) > 4 else 64
k = int(sys.argv[5]) if len(sys.argv) > 5 else 10
X = np.fromfile(f"{dirn}/{data}.base.f32", dtype=np.float32).reshape(-1, d).astype(np.float64)
Q = np.fromfile(f"{dirn}/{data}.query.f32", dtype=np.float32).reshape(-1, d).astype(np.float64)
G = np.fromfile(f"{dirn}/{data}.gt.i32", dtype=np.int32).reshape(-1, k)
xn = (X * X).sum(1)
bad, lid, rc, gap = 0, [], [], []
for i in range(nq):
    D = np.maximum(xn - 2 * X @ Q[i] + Q[i] @ Q[i], 0)
    o = np.argpartition(D, 100)[:101]
    o = o[np.argsort(D[o], kind="stable")]
    bad += set(o[:k]) != set(G[i])
    r = np.sqrt(D[o])
    lid.append(-1 / np.mean(np.log(r[:99] / r[99])))
    rc.append(np.sqrt(D).mean() / r[0])
    gap.append(r[k] / r[k - 1] - 1)
print(f"{data}: n={X.shape[0]} d={d} k={k}, {nq} queries: {bad} top-{k} sets differ from the dump")
print(f"LID (MLE, 100 NN) {np.mean(lid):.1f}; relative contrast {np.mean(rc):.3f}; "
      f"neighbour {k + 1} is {100 * np.mean(gap):.2f}% farther than neighbour {k}")
sys.exit(1 if bad else 0)
