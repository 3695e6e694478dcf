#!/usr/bin/env python3
"""Reference for the pick-some-labels losses and heads (tests/test_psl.c).

Naive float64 numpy formulation of UniDEC's losses (Kharbanda et al., WWW
2025): every term is written exactly as the formula, with plain sums of
exponentials (no log-sum-exp tricks), and every gradient comes from central
finite differences of that naive loss (h = 1e-6), so the C code's analytic
gradients are checked against an independent derivation.

Pool (5 queries x 7 pool labels), P_i^B with soft targets:
  row 0: {0: 1.0, 3: 0.5}
  row 1: {1: 1.0}
  row 2: {0: 1.0, 2: 0.7, 5: 1.0}
  row 3: {}                       (no positive: not an anchor)
  row 4: {0..6: 1.0}              (every pool label positive: decoupled loss 0)
Losses with logits z = s / t, anchor a, positives P_a, weights w, W = sum w:
  decoupled  L_a = (1/W) sum_p w_p [log(e^{z_p} + sum_{j not in P_a} e^{z_j}) - z_p]
  supcon     L_a = (1/W) sum_p w_p [log(sum_j e^{z_j}) - z_p]
  direction loss = mean of L_a over anchors with W > 0
  q2l: anchors = queries (rows); l2q: anchors = pool labels (columns)
  mixed = lam * q2l + (1 - lam) * l2q
  bce   = (1/nq) sum_{i,c} [max(s,0) - s y + log1p(exp(-|s|))]
Heads (no dropout):
  DE  y = normalize(tanh(H W^T + b));  CLF  y = H W^T + b
  reported for a fixed upstream dY: loss = sum(y * dY) and its gradients.

Writes tests/data/psl/psl_ref.txt: one array per line, "name count v...".
Run: python3 tests/ref/psl_ref.py
"""
import os
import numpy as np

NQ, NL = 5, 7
T = 0.5
LAM = 0.3
POS = [{0: 1.0, 3: 0.5}, {1: 1.0}, {0: 1.0, 2: 0.7, 5: 1.0}, {}, {j: 1.0 for j in range(NL)}]
B, DIN, DOUT = 3, 5, 4

rng = np.random.default_rng(5)
S = rng.normal(0, 1.5, (NQ, NL)).astype(np.float32).astype(np.float64)


def dir_loss(Sm, kind, direction):
    A = Sm if direction == 0 else Sm.T
    if direction == 0:
        pos = POS
    else:
        pos = [{i: POS[i][c] for i in range(NQ) if c in POS[i]} for c in range(NL)]
    total, n = 0.0, 0
    for a in range(A.shape[0]):
        P = pos[a]
        W = sum(P.values())
        if W <= 0:
            continue
        z = A[a] / T
        La = 0.0
        for p, w in P.items():
            if kind == "decoupled":
                den = np.exp(z[p]) + sum(np.exp(z[j]) for j in range(len(z)) if j not in P)
            else:
                den = sum(np.exp(z[j]) for j in range(len(z)))
            La += w * (np.log(den) - z[p])
        total += La / W
        n += 1
    return total / n if n else 0.0


def bce(Sm):
    tot = 0.0
    for i in range(NQ):
        for c in range(NL):
            y = POS[i].get(c, 0.0)
            s = Sm[i, c]
            tot += max(s, 0) - s * y + np.log1p(np.exp(-abs(s)))
    return tot / NQ


def fd(f, X, h=1e-6):
    G = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        Xp = X.copy()
        Xm = X.copy()
        Xp[idx] += h
        Xm[idx] -= h
        G[idx] = (f(Xp) - f(Xm)) / (2 * h)
    return G


out = {"S": S, "t": np.array([T]), "lam": np.array([LAM])}
# the pool structure, for the C test to rebuild exactly
qptr, qcol, qval = [0], [], []
for i in range(NQ):
    for c in sorted(POS[i]):
        qcol.append(c)
        qval.append(POS[i][c])
    qptr.append(len(qcol))
out["qptr"] = np.array(qptr, dtype=np.float64)
out["qcol"] = np.array(qcol, dtype=np.float64)
out["qval"] = np.array(qval, dtype=np.float64)
for kind in ("decoupled", "supcon"):
    for d in (0, 1):
        f = lambda X, kind=kind, d=d: dir_loss(X, kind, d)
        out[f"{kind}_dir{d}_loss"] = np.array([f(S)])
        out[f"{kind}_dir{d}_dS"] = fd(f, S)
    fm = lambda X, kind=kind: LAM * dir_loss(X, kind, 0) + (1 - LAM) * dir_loss(X, kind, 1)
    out[f"{kind}_mixed_loss"] = np.array([fm(S)])
    out[f"{kind}_mixed_dS"] = fd(fm, S)
out["bce_loss"] = np.array([bce(S)])
out["bce_dS"] = fd(bce, S)

# heads
H = rng.normal(0, 1, (B, DIN)).astype(np.float32).astype(np.float64)
Wt = rng.normal(0, 0.5, (DOUT, DIN)).astype(np.float32).astype(np.float64)
bt = rng.normal(0, 0.2, (DOUT,)).astype(np.float32).astype(np.float64)
dY = rng.normal(0, 1, (B, DOUT)).astype(np.float32).astype(np.float64)


def de(Hm, Wm, bm):
    u = np.tanh(Hm @ Wm.T + bm)
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def clf(Hm, Wm, bm):
    return Hm @ Wm.T + bm


out.update(H=H, W=Wt, b=bt, dY=dY)
for name, fn in (("de", de), ("clf", clf)):
    out[f"{name}_Y"] = fn(H, Wt, bt)
    out[f"{name}_dH"] = fd(lambda X: np.sum(fn(X, Wt, bt) * dY), H)
    out[f"{name}_dW"] = fd(lambda X: np.sum(fn(H, X, bt) * dY), Wt)
    out[f"{name}_db"] = fd(lambda X: np.sum(fn(H, Wt, X) * dY), bt)

here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(os.path.join(here, "..", "data", "psl"), exist_ok=True)
path = os.path.join(here, "..", "data", "psl", "psl_ref.txt")
with open(path, "w") as f:
    f.write(f"# tests/ref/psl_ref.py: nq={NQ} nl={NL} t={T} lam={LAM} heads B={B} {DIN}->{DOUT}\n")
    for k, v in out.items():
        flat = np.asarray(v, dtype=np.float64).ravel()
        f.write(k + " " + str(flat.size) + " " + " ".join(f"{x:.12g}" for x in flat) + "\n")
print("wrote", path)
