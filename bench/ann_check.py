#!/usr/bin/env python3
"""Independent check of `xmc bench ann --dump DIR` output, and how hard the
data is: recomputes the exact top-k of the first Q queries by float64 brute
force (numpy) and compares with DIR/<data>.gt.i32 (xmc_knn_exact, GEMM);
then, over each query's 100 nearest neighbours, the local intrinsic
dimension (Levina-Bickel MLE), the relative contrast (mean distance / nearest
distance) and the gap between the k-th and (k+1)-th neighbour.

    python3 bench/ann_check.py DIR [DATA=random] [Q=100] [DIM=64] [K=10]
L2 only (the default metric of xmc bench ann). Memory: the base in float64.

    python3 bench/ann_check.py --graph INDEX.hnsw
reads a saved index (file format in docs/ann.md) and reports layer 0's
out-degrees, the nodes no other node links to (in-degree 0: a search can
only find them as the entry point of layer 0) and how many nodes a
breadth-first walk from the entry point reaches on layer 0.
"""
import sys

import numpy as np


def graph(path):
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    h = raw[:256].tobytes()
    n, _, _, _ = (int(v) for v in np.frombuffer(h[16:48], dtype=np.int64))
    _, _, M, M0, _, _ = (int(v) for v in np.frombuffer(h[48:72], dtype=np.int32))
    entry, top = (int(v) for v in np.frombuffer(h[80:88], dtype=np.int32))
    off = [int(v) for v in np.frombuffer(h[88:136], dtype=np.uint64)]
    L0 = np.frombuffer(raw[off[2]:off[2] + n * 4 * (1 + M0)].tobytes(), dtype=np.int32)
    L0 = L0.reshape(n, 1 + M0)
    cnt, nb = L0[:, 0], L0[:, 1:]
    live = np.arange(M0)[None, :] < cnt[:, None]
    indeg = np.bincount(nb[live], minlength=n)
    seen = np.zeros(n, bool)
    seen[entry] = True
    front = np.array([entry])
    while front.size:
        nxt = np.unique(nb[front][live[front]])
        nxt = nxt[~seen[nxt]]
        seen[nxt] = True
        front = nxt
    print(f"{path}: n={n} M={M} M0={M0} layers={top + 1}; layer 0 out-degree mean "
          f"{cnt.mean():.1f} (min {cnt.min()}, {100 * np.mean(cnt == M0):.0f}% full); "
          f"in-degree 0: {np.sum(indeg == 0)} nodes; reachable from the entry point: "
          f"{seen.sum()} of {n}")


if sys.argv[1] == "--graph":
    graph(sys.argv[2])
    sys.exit(0)
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
