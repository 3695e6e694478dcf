#!/usr/bin/env python3
"""Zero-shot experiment for UniDEC / DEPSL (docs/unidec.md, "Zero-shot").

Labels are held out of training entirely, then served from their texts with
`xmc index add-labels` (ids L.. after the L trained labels) and scored by
`xmc predict --ann --head de`. Reported on the test rows that have at least
one held-out positive:
  zsP@k   (held-out positives in the top k over ALL labels) / k: the number a
          one-vs-all classifier (Renee) cannot raise above 0, as it has no row
          for such a label (generalised zero-shot: trained labels compete);
  zslP@k  the same with only the held-out labels ranked (zero-shot setting;
          from the returned list, so predict with --topk >= L + added for the
          exact value); zslP_chance is a random ranking's value;
  allP@k  P@k with all of the row's positives counted.

  split-names SRC OUT --holdout K [--seed S]   reuters-style TEXTS+LABELS data
      (train_texts.txt / train_labels.txt with label names): K labels with
      test positives are held out; every training row that has one is dropped.
      Writes OUT/train_{texts,labels}.txt, OUT/Y_new.txt (held-out names).
  split-lf SRC OUT                             label-feature data (xmc synth):
      labels without a training positive are held out; the rest are renumbered
      0..S-1 in order, the held-out ones S.. in order. Writes OUT/trn_X.txt,
      OUT/trn_X_Y.txt, OUT/Y.txt (seen label texts), OUT/Y_new.txt (held-out
      texts), OUT/tst_X.txt, OUT/tst_X_Y.txt (seen labels only, for loading)
      and OUT/tst_truth.txt (all test labels, renumbered: eval --truth-ids).
  eval PRED --model DIR (--truth-names FILE | --truth-ids FILE) [--k 1,3,5]
      PRED: `xmc predict --out` file. Held-out ids are those >= the model's L.

Only the standard library; no data is written into the repository.
"""
import json
import os
import random
import sys


def read_lines(p):
    with open(p, encoding="utf-8") as f:
        return f.read().split("\n")[:-1] if os.path.getsize(p) else []


def write_lines(p, lines):
    tmp = p + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for s in lines:
            f.write(s + "\n")
    os.replace(tmp, p)


def read_sparse(p):
    """'N C' header then 'id:v ...' rows -> (C, list of id lists)."""
    lines = read_lines(p)
    n, c = map(int, lines[0].split())
    rows = [[int(t.split(":")[0]) for t in ln.split()] for ln in lines[1:1 + n]]
    return c, rows


def write_sparse(p, c, rows):
    write_lines(p, ["%d %d" % (len(rows), c)] + [" ".join("%d:1" % l for l in r) for r in rows])


def split_names(src, out, k, seed):
    os.makedirs(out, exist_ok=True)
    tr_t = read_lines(os.path.join(src, "train_texts.txt"))
    tr_l = [ln.split() for ln in read_lines(os.path.join(src, "train_labels.txt"))]
    te_l = [ln.split() for ln in read_lines(os.path.join(src, "test_labels.txt"))]
    train_names = sorted({n for r in tr_l for n in r})
    test_names = {n for r in te_l for n in r}
    cand = [n for n in train_names if n in test_names]
    held = sorted(random.Random(seed).sample(cand, k))
    hs = set(held)
    keep = [i for i, r in enumerate(tr_l) if not hs.intersection(r)]
    write_lines(os.path.join(out, "train_texts.txt"), [tr_t[i] for i in keep])
    write_lines(os.path.join(out, "train_labels.txt"), [" ".join(tr_l[i]) for i in keep])
    write_lines(os.path.join(out, "Y_new.txt"), held)
    print("held out %d of %d labels: %s; kept %d of %d training rows" %
          (k, len(train_names), " ".join(held), len(keep), len(tr_l)))


def split_lf(src, out):
    os.makedirs(out, exist_ok=True)
    L, tr = read_sparse(os.path.join(src, "trn_X_Y.txt"))
    _, te = read_sparse(os.path.join(src, "tst_X_Y.txt"))
    texts = read_lines(os.path.join(src, "Y.txt"))
    seen = sorted({l for r in tr for l in r})
    ss = set(seen)
    held = [l for l in range(L) if l not in ss]
    new = {l: i for i, l in enumerate(seen + held)}
    write_sparse(os.path.join(out, "trn_X_Y.txt"), len(seen), [sorted(new[l] for l in r) for r in tr])
    # the loader needs test labels within the trained ones: the full truth
    # (held-out ids S..) goes to tst_truth.txt for eval
    write_sparse(os.path.join(out, "tst_X_Y.txt"), len(seen),
                 [sorted(new[l] for l in r if l in ss) for r in te])
    write_sparse(os.path.join(out, "tst_truth.txt"), L, [sorted(new[l] for l in r) for r in te])
    write_lines(os.path.join(out, "Y.txt"), [texts[l] for l in seen])
    write_lines(os.path.join(out, "Y_new.txt"), [texts[l] for l in held])
    for f in ("trn_X.txt", "tst_X.txt"):
        d = os.path.join(out, f)
        if not os.path.exists(d):
            os.symlink(os.path.abspath(os.path.join(src, f)), d)
    print("%d labels: %d with a training positive (kept, ids 0..%d), %d held out (ids %d..)" %
          (L, len(seen), len(seen) - 1, len(held), len(seen)))


def read_pred(p):
    """score-matrix file -> per row the label ids ranked by score."""
    lines = read_lines(p)
    n = int(lines[0].split()[0])
    out = []
    for ln in lines[1:1 + n]:
        pairs = [(float(t.split(":")[1]), -int(t.split(":")[0])) for t in ln.split()]
        out.append([-l for _, l in sorted(pairs, reverse=True)])
    return out


def evaluate(pred, model, truth_names, truth_ids, ks):
    cfg = json.load(open(os.path.join(model, "config.json")))
    L = int(cfg["head"]["n_labels"])
    added = os.path.join(model, "labels-added.txt")
    if truth_names:
        names = read_lines(os.path.join(model, "labels.txt")) + \
            (read_lines(added) if os.path.exists(added) else [])
        ids = {n: i for i, n in enumerate(names)}
        truth = [[ids[n] for n in ln.split() if n in ids] for ln in read_lines(truth_names)]
    else:
        truth = read_sparse(truth_ids)[1]
    P = read_pred(pred)
    assert len(P) == len(truth), "prediction rows %d vs truth rows %d" % (len(P), len(truth))
    rows = [i for i, t in enumerate(truth) if any(l >= L for l in t)]
    only = sum(1 for i in rows if all(l >= L for l in truth[i]))
    U = max(1, max((l for r in P for l in r), default=L - 1) + 1 - L)  # labels added (seen)
    if os.path.exists(added):
        U = len(read_lines(added))
    # a random ranking of the U held-out labels puts k * h_i / U of row i's
    # h_i held-out positives in its top k: P@k = h_i / U for every k <= U
    chance = sum(sum(1 for l in truth[i] if l >= L) / U for i in rows) / max(1, len(rows))
    res = {"model_labels": L, "added_labels": U, "test_rows": len(truth), "zs_rows": len(rows),
           "zs_only_rows": only, "zslP_chance": round(100.0 * chance, 4)}
    for k in ks:
        zs = sum(sum(1 for l in P[i][:k] if l >= L and l in truth[i]) for i in rows)
        al = sum(sum(1 for l in P[i][:k] if l in truth[i]) for i in rows)
        # ranking among the held-out labels only (the ZSL setting): the
        # first k held-out ids of each returned list; exact when the list
        # holds every held-out label (--topk >= L + added), else a lower bound
        zl = sum(sum(1 for l in [l for l in P[i] if l >= L][:k] if l in truth[i]) for i in rows)
        res["zsP@%d" % k] = round(100.0 * zs / (k * max(1, len(rows))), 2)
        res["zslP@%d" % k] = round(100.0 * zl / (k * max(1, len(rows))), 2)
        res["allP@%d" % k] = round(100.0 * al / (k * max(1, len(rows))), 2)
    print(json.dumps(res))


def main(a):
    def opt(name, default=None):
        return a[a.index(name) + 1] if name in a else default
    if a[0] == "split-names":
        split_names(a[1], a[2], int(opt("--holdout")), int(opt("--seed", 1)))
    elif a[0] == "split-lf":
        split_lf(a[1], a[2])
    elif a[0] == "eval":
        evaluate(a[1], opt("--model"), opt("--truth-names"), opt("--truth-ids"),
                 [int(x) for x in opt("--k", "1,3,5").split(",")])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:] or ["help"])
