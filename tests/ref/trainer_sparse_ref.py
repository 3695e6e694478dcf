#!/usr/bin/env python3
"""Reference for the sparse encoder + optimizer step (tests/test_encoder_ref.c).

Naive float64 numpy formulation of the xmc "sparse" encoder with two layers
and a bottleneck (no dropout), its backward from a given dE, then one AdamW
step on the dense tensors (no decay on biases) and one lazy-Adam step on the
rows of W1 touched by the batch (PyTorch SparseAdam semantics + decoupled
decay on touched rows). Writes tests/data/trainer/sparse_ref.txt:
one array per line, "name count v1 v2 ...".

usage: python3 tests/ref/trainer_sparse_ref.py   (needs numpy)
"""
import os
import numpy as np

rng = np.random.default_rng(12345)
F, h, b, B = 7, 5, 3, 4
# Batch rows of X (dense here; zeros are absent features). Row 2 repeats row 0.
X = np.zeros((B, F))
X[0, [0, 3, 5]] = [1.0, 2.0, 0.5]
X[1, [1, 3]] = [0.3, 0.7]
X[2] = X[0]
X[3, [6]] = [4.0]
Xn = X / np.linalg.norm(X, axis=1, keepdims=True)

W1 = rng.normal(0, 0.5, (F, h))
b1 = rng.normal(0, 0.1, h)
W2 = rng.normal(0, 0.5, (h, h))
b2 = rng.normal(0, 0.1, h)
P = rng.normal(0, 0.5, (b, h))
dE = rng.normal(0, 1.0, (B, b))

k = np.sqrt(2 / np.pi)
gelu = lambda x: 0.5 * x * (1 + np.tanh(k * (x + 0.044715 * x ** 3)))
def gelu_grad(x):
    t = np.tanh(k * (x + 0.044715 * x ** 3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)

Z1 = Xn @ W1 + b1
A1 = gelu(Z1)
Z2 = A1 @ W2 + b2
H = gelu(Z2)
E = H @ P.T

dP = dE.T @ H
dH = dE @ P
dZ2 = dH * gelu_grad(Z2)
dW2 = A1.T @ dZ2
db2 = dZ2.sum(0)
dA1 = dZ2 @ W2.T
dZ1 = dA1 * gelu_grad(Z1)
db1 = dZ1.sum(0)
dW1 = Xn.T @ dZ1
touched = np.nonzero(np.abs(X).sum(0))[0]

lr, b1_, b2_, eps, wd, t = 0.01, 0.9, 0.999, 1e-8, 0.1, 1
def adamw(w, g, decay):
    m = (1 - b1_) * g
    v = (1 - b2_) * g * g
    mh, vh = m / (1 - b1_ ** t), v / (1 - b2_ ** t)
    return w - (lr * wd * w if decay else 0) - lr * mh / (np.sqrt(vh) + eps)

W1n = W1.copy()
W1n[touched] = adamw(W1[touched], dW1[touched], True)
out = {
    'X': X, 'W1': W1, 'b1': b1, 'W2': W2, 'b2': b2, 'P': P, 'dE': dE,
    'E': E, 'dP': dP, 'dW2': dW2, 'db2': db2, 'db1': db1, 'dW1': dW1,
    'touched': touched.astype(float),
    'W1_new': W1n, 'b1_new': adamw(b1, db1, False), 'W2_new': adamw(W2, dW2, True),
    'b2_new': adamw(b2, db2, False), 'P_new': adamw(P, dP, True),
}
path = os.path.join(os.path.dirname(__file__), '..', 'data', 'trainer', 'sparse_ref.txt')
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, 'w') as f:
    f.write('# tests/ref/trainer_sparse_ref.py: F=7 h=5 b=3 B=4, GELU, 2 layers, lr=0.01 wd=0.1\n')
    for name, a in out.items():
        a = np.asarray(a, dtype=float).ravel()
        f.write(name + ' ' + str(a.size) + ' ' + ' '.join('%.17g' % x for x in a) + '\n')
print('wrote', path)
