#!/usr/bin/env python3
"""Reference for the fused one-vs-all head (tests/test_head.c).

The naive full-logit formulation, in float64 numpy: logits = E W^T (B x L),
G = dloss/dlogits over the whole B x L matrix, dE = G W, dW = G^T E, then
optimizer steps. The C head never builds B x L; it must match this to 1e-5.

Losses (sum over all B x L entries, soft targets y in [0, 1]):
  bce:     max(x,0) - x y + log1p(exp(-|x|));  dl/dx = sigmoid(x) - y
  sqhinge: y max(0,1-x)^2 + (1-y) max(0,1+x)^2
Optimizers (two steps each, on the same batch, starting from zero state):
  sgdm: g = dW + wd W; m = mu m + g; W -= lr m
  adam: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; bias-corrected;
        W = W (1 - lr wd) - lr mhat / (sqrt(vhat) + eps)

Writes tests/data/head/ova_ref.txt: one array per line, "name count v...".
Run: python3 tests/ref/head_ref.py
"""
import os
import numpy as np

B, L, D, NROWS = 5, 37, 8, 7
ROWS = [3, 0, 6, 2, 5]
SGD = dict(lr=0.1, mu=0.9, wd=0.01)
ADAM = dict(lr=0.01, b1=0.9, b2=0.999, eps=1e-8, wd=0.01)

rng = np.random.default_rng(20231)
E = rng.normal(0, 1, (B, D)).astype(np.float32).astype(np.float64)
W0 = rng.normal(0, 0.5, (L, D)).astype(np.float32).astype(np.float64)

# Y: NROWS x L CSR with soft values; some rows empty or dense-ish
indptr, indices, values = [0], [], []
for r in range(NROWS):
    k = [0, 3, 1, 6, 2, 9, 4][r]
    labs = np.sort(rng.choice(L, size=k, replace=False))
    vals = np.round(rng.uniform(0.2, 1.0, size=k), 3)
    vals[::3] = 1.0
    indices += labs.tolist()
    values += vals.tolist()
    indptr.append(len(indices))
Yfull = np.zeros((NROWS, L))
for r in range(NROWS):
    for p in range(indptr[r], indptr[r + 1]):
        Yfull[r, indices[p]] = np.float32(values[p])
Y = Yfull[ROWS]


def grads(W, loss):
    X = E @ W.T
    if loss == "bce":
        G = 1 / (1 + np.exp(-X)) - Y
        lo = (np.maximum(X, 0) - X * Y + np.log1p(np.exp(-np.abs(X)))).sum()
    else:
        G = -2 * Y * np.maximum(0, 1 - X) + 2 * (1 - Y) * np.maximum(0, 1 + X)
        lo = (Y * np.maximum(0, 1 - X) ** 2 + (1 - Y) * np.maximum(0, 1 + X) ** 2).sum()
    return G @ W, G.T @ E, lo


out = {}
out["E"] = E
out["W0"] = W0
out["Y_indptr"] = np.array(indptr, dtype=np.float64)
out["Y_indices"] = np.array(indices, dtype=np.float64)
out["Y_values"] = np.array(values, dtype=np.float64)
out["rows"] = np.array(ROWS, dtype=np.float64)
for loss in ("bce", "sqhinge"):
    dE, _, lo = grads(W0, loss)
    out[f"dE_{loss}"] = dE
    out[f"loss_{loss}"] = np.array([lo])
    # SGD with momentum, two steps
    W, m = W0.copy(), np.zeros_like(W0)
    for step in (1, 2):
        dE_s, dW, _ = grads(W, loss)
        g = dW + SGD["wd"] * W
        m = SGD["mu"] * m + g
        W = W - SGD["lr"] * m
        out[f"sgdm_{loss}_dE{step}"] = dE_s
        out[f"sgdm_{loss}_W{step}"] = W
    # Adam, two steps
    W, am, av = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    for step in (1, 2):
        dE_s, dW, _ = grads(W, loss)
        am = ADAM["b1"] * am + (1 - ADAM["b1"]) * dW
        av = ADAM["b2"] * av + (1 - ADAM["b2"]) * dW * dW
        mh = am / (1 - ADAM["b1"] ** step)
        vh = av / (1 - ADAM["b2"] ** step)
        W = W * (1 - ADAM["lr"] * ADAM["wd"]) - ADAM["lr"] * mh / (np.sqrt(vh) + ADAM["eps"])
        out[f"adam_{loss}_W{step}"] = W

here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "..", "data", "head", "ova_ref.txt")
with open(path, "w") as f:
    f.write(f"# tests/ref/head_ref.py: B={B} L={L} d={D} rows={ROWS} sgdm={SGD} adam={ADAM}\n")
    for k, v in out.items():
        flat = np.asarray(v, dtype=np.float64).ravel()
        f.write(k + " " + str(flat.size) + " " + " ".join(f"{x:.10g}" for x in flat) + "\n")
print("wrote", path)
