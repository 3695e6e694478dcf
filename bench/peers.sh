#!/usr/bin/env bash
# Side-by-side accuracy and cost of xmc against fastText (-loss ova),
# napkinXC (PLT and OVR) and omikuji on the shared datasets, same splits,
# one table:
#   P@1, P@5, PSP@5 (all scored by `xmc eval`, A=0.55 B=1.5), train time,
#   predict time, peak RSS (/usr/bin/time -v) of train and predict;
#   then, per cell, xmc minus the best peer with a 95% paired-bootstrap
#   interval over the test rows ($OUT/paired.md), which says whether a gap
#   is more than the test split's sampling noise.
#
# usage: bench/peers.sh [dataset ...]   (default: all five)
#   env: XMC (xmc binary, default build/xmc), OUT (work dir, default
#        out/peers), THREADS (default 2), PEERS_VENV (napkinXC venv,
#        default $OUT/venv), XMC_FLAGS (extra flags for xmc train)
#
# Installs what is missing: fastText via apt-get (Debian package
# `fasttext`, needs root), napkinXC and omikuji via pip into a venv. Data
# stays in ../shared/data; converted copies go under $OUT.
#
# Input conversions (the peers need their own formats):
#  - napkinXC and omikuji read the same sparse features as xmc (napkinXC a
#    scipy CSR and L2-normalises rows itself, norm=True; omikuji the XC
#    text file). For reuters21578 (raw text) their features are built
#    here: lower-cased \w+ unigrams, vocabulary from the training split,
#    tf-idf (log idf), rows L2-normalised.
#  - fastText reads text. For XC sparse-feature data each feature id f is
#    written as the token "f<id>", repeated by its value when values are
#    integer counts (stackex_cooking, capped at 10), once otherwise (binary
#    bibtex/delicious; tf-idf rcv1sub1, where weights cannot be expressed
#    as repeats). For reuters21578 it gets the raw lower-cased text.
#  - Predictions (top-5) of every system are written in the score-matrix
#    format and scored by the same `xmc eval`.
set -euo pipefail
cd "$(dirname "$0")/.."
XMC=${XMC:-build/xmc}
OUT=${OUT:-out/peers}
THREADS=${THREADS:-2}
PEERS_VENV=${PEERS_VENV:-$OUT/venv}
DATA=${XMC_SHARED_DATA:-../shared/data}
# OpenMP threads sleep instead of spinning while waiting: on a shared or
# loaded machine spinning costs xmc 2-3x in wall time (docs/renee.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
mkdir -p "$OUT"
[ -x "$XMC" ] || { echo "peers.sh: $XMC not found (bash scripts/build.sh)" >&2; exit 1; }
[ -d "$DATA" ] || { echo "peers.sh: $DATA not found" >&2; exit 77; }

if ! command -v fasttext >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q fasttext >/dev/null; else
    echo "peers.sh: fastText missing (apt-get install fasttext)" >&2; exit 1; fi
fi
PY=$PEERS_VENV/bin/python
if ! [ -x "$PY" ] || ! "$PY" -c "import napkinxc, scipy" 2>/dev/null; then
  python3 -m venv "$PEERS_VENV"
  "$PEERS_VENV/bin/pip" install -q napkinxc numpy scipy
fi
# omikuji: a binary wheel on PyPI for CPython x86_64 (0.5.2 on 3.11); where
# it does not install the table says so and the other peers still run.
HAVE_OMIKUJI=0
if "$PY" -c "import omikuji" 2>/dev/null || "$PEERS_VENV/bin/pip" install -q omikuji >/dev/null 2>&1; then
  HAVE_OMIKUJI=1
else
  echo "peers.sh: omikuji did not install (pip install omikuji); skipped" >&2
fi

datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(bibtex delicious rcv1sub1 stackex_cooking reuters21578)

# Python helpers: convert, run napkinXC, convert fastText output.
cat > "$OUT/peers.py" <<'PYEOF'
import sys, re, os, math, time
import numpy as np, scipy.sparse as sp

def read_xc(path, rows=None):
    with open(path) as f:
        n, F, L = map(int, f.readline().split())
        lines = f.read().split('\n')[:n]
    if rows is not None:
        lines = [lines[r] for r in rows]
    Y, ind, val, ptr = [], [], [], [0]
    for ln in lines:
        parts = ln.split(' ')
        lab = parts[0]
        Y.append([int(x) for x in lab.split(',')] if lab and ':' not in lab else [])
        for tok in parts[1:] if (lab and ':' not in lab) or ln.startswith(' ') else parts:
            if ':' in tok:
                a, b = tok.split(':'); ind.append(int(a)); val.append(float(b))
        ptr.append(len(ind))
    X = sp.csr_matrix((np.array(val, np.float32), np.array(ind), np.array(ptr)), shape=(len(lines), F))
    return X, Y, L

def read_split(path):
    return [int(l.split()[0]) - 1 for l in open(path) if l.strip()]

def tfidf(train_docs, test_docs):
    tok = lambda s: re.findall(r'\w+', s.lower())
    vocab, df = {}, {}
    tr = [tok(d) for d in train_docs]
    for ws in tr:
        for w in set(ws):
            df[w] = df.get(w, 0) + 1
    for w in sorted(df):
        vocab[w] = len(vocab)
    N = len(tr)
    idf = np.zeros(len(vocab), np.float32)
    for w, i in vocab.items():
        idf[i] = math.log(N / df[w]) + 1
    def mat(docs):
        ind, val, ptr = [], [], [0]
        for ws in docs:
            c = {}
            for w in ws:
                if w in vocab:
                    c[vocab[w]] = c.get(vocab[w], 0) + 1
            row = sorted(c.items())
            v = np.array([cnt * idf[i] for i, cnt in row], np.float32)
            nrm = np.linalg.norm(v) or 1.0
            ind += [i for i, _ in row]; val += list(v / nrm); ptr.append(len(ind))
        return sp.csr_matrix((np.array(val, np.float32), np.array(ind, dtype=np.int64), np.array(ptr)), shape=(len(docs), len(vocab)))
    return mat(tr), mat([tok(d) for d in test_docs])

def ft_line(labels, X, i, integer):
    toks = []
    for p in range(X.indptr[i], X.indptr[i + 1]):
        f, v = X.indices[p], X.data[p]
        rep = min(10, max(1, int(round(v)))) if integer else 1
        toks += ['f%d' % f] * rep
    return ' '.join(['__label__%d' % l for l in labels] + (toks or ['_empty_']))

def write_xc(path, X, Y, L):
    with open(path, 'w') as f:
        f.write('%d %d %d\n' % (X.shape[0], X.shape[1], L))
        for i in range(X.shape[0]):
            feats = ' '.join('%d:%g' % (X.indices[p], X.data[p]) for p in range(X.indptr[i], X.indptr[i + 1]))
            f.write(','.join(map(str, Y[i])) + ' ' + feats + '\n')

def convert(name, data, out):
    os.makedirs(out, exist_ok=True)
    d = os.path.join(data, name)
    if name in ('bibtex', 'delicious'):
        Xtr, Ytr, L = read_xc(f'{d}/{name}_train.txt'); Xte, Yte, _ = read_xc(f'{d}/{name}_test.txt')
        integer = False
    elif name in ('rcv1sub1', 'stackex_cooking'):
        pre = {'rcv1sub1': 'rcv1subset1', 'stackex_cooking': 'cooking'}[name]
        tr, te = read_split(f'{d}/{pre}_trSplit.txt'), read_split(f'{d}/{pre}_tstSplit.txt')
        Xtr, Ytr, L = read_xc(f'{d}/{pre}_data.txt', tr); Xte, Yte, _ = read_xc(f'{d}/{pre}_data.txt', te)
        integer = name == 'stackex_cooking'
    else:  # reuters21578: texts + label names (ids = sorted training names)
        trt = open(f'{d}/train_texts.txt').read().split('\n')[:-1]
        tet = open(f'{d}/test_texts.txt').read().split('\n')[:-1]
        trl = [l.split() for l in open(f'{d}/train_labels.txt').read().split('\n')[:-1]]
        tel = [l.split() for l in open(f'{d}/test_labels.txt').read().split('\n')[:-1]]
        names = sorted({x for ls in trl for x in ls}); idx = {n: i for i, n in enumerate(names)}
        L = len(names)
        Ytr = [sorted(idx[x] for x in ls) for ls in trl]
        Yte = [sorted(idx[x] for x in ls if x in idx) for ls in tel]
        Xtr, Xte = tfidf(trt, tet)
        clean = lambda s: ' '.join(re.findall(r'\w+', s.lower())) or '_empty_'
        with open(f'{out}/ft_train.txt', 'w') as f:
            for ls, t in zip(Ytr, trt):
                f.write(' '.join('__label__%d' % l for l in ls) + ' ' + clean(t) + '\n')
        with open(f'{out}/ft_test.txt', 'w') as f:
            for t in tet:
                f.write(clean(t) + '\n')
        write_xc(f'{out}/train.xc', Xtr, Ytr, L); write_xc(f'{out}/test.xc', Xte, Yte, L)
        open(f'{out}/L', 'w').write(str(L))
        return
    with open(f'{out}/ft_train.txt', 'w') as f:
        for i in range(Xtr.shape[0]):
            if Ytr[i]:
                f.write(ft_line(Ytr[i], Xtr, i, integer) + '\n')
    with open(f'{out}/ft_test.txt', 'w') as f:
        for i in range(Xte.shape[0]):
            f.write(ft_line([], Xte, i, integer) + '\n')
    write_xc(f'{out}/train.xc', Xtr, Ytr, L); write_xc(f'{out}/test.xc', Xte, Yte, L)
    open(f'{out}/L', 'w').write(str(L))

def write_pred(path, preds, L):
    with open(path, 'w') as f:
        f.write('%d %d\n' % (len(preds), L))
        for row in preds:
            row = sorted(row)
            f.write(' '.join('%d:%.6f' % (l, s) for l, s in row) + '\n')

def napkin(kind, out, phase, threads):
    from napkinxc.models import PLT, BR
    Xtr, Ytr, L = read_xc(f'{out}/train.xc')
    keep = [i for i in range(len(Ytr)) if Ytr[i]]
    mdir = f'{out}/nxc_{kind}'
    M = (PLT if kind == 'plt' else BR)(mdir, threads=threads, seed=1)
    if phase == 'train':
        M.fit(Xtr[keep], [Ytr[i] for i in keep])
    else:
        M.load()
        Xte, _, _ = read_xc(f'{out}/test.xc')
        P = M.predict_proba(Xte, top_k=5)
        write_pred(f'{out}/pred_nxc_{kind}.txt', [[(int(l), float(s)) for l, s in row] for row in P], L)

def omikuji_run(out, phase, threads):
    # Omikuji (Parabel / Bonsai-style label trees, PyPI `omikuji`) with its
    # default hyper-parameters; it reads the XC text format itself, rows
    # with no label or no feature left out (its reader refuses them).
    import omikuji
    mdir = f'{out}/omikuji_model'
    if phase == 'train':
        with open(f'{out}/train.xc') as f, open(f'{out}/omikuji_train.xc', 'w') as g:
            hdr = f.readline().split()
            rows = [ln for ln in f if ln.strip() and not ln.startswith(' ') and ':' in ln]
            g.write('%d %s %s\n' % (len(rows), hdr[1], hdr[2]))
            g.writelines(rows)
        m = omikuji.Model.train_on_data(f'{out}/omikuji_train.xc', omikuji.Model.default_hyper_param(),
                                        n_threads=threads)
        m.save(mdir)
    else:
        m = omikuji.Model.load(mdir)
        Xte, _, L = read_xc(f'{out}/test.xc')
        preds = []
        for i in range(Xte.shape[0]):
            fv = [(int(Xte.indices[p]), float(Xte.data[p])) for p in range(Xte.indptr[i], Xte.indptr[i + 1])]
            preds.append(m.predict(fv, top_k=5) if fv else [])
        write_pred(f'{out}/pred_omikuji.txt', preds, L)

def fasttext_pred(out, L):
    rows = []
    for ln in open(f'{out}/ft_pred.txt'):
        t = ln.split()
        rows.append([(int(t[j][9:]), float(t[j + 1])) for j in range(0, len(t) - 1, 2)])
    write_pred(f'{out}/pred_fasttext.txt', rows, L)

PEER_NAMES = {'fasttext': 'fastText ova', 'nxc_plt': 'napkinXC plt', 'nxc_ovr': 'napkinXC ovr',
              'omikuji': 'omikuji'}

def top5(path, n):
    with open(path) as f:
        f.readline()
        rows = []
        for _ in range(n):
            s = [(int(a), float(b)) for a, b in (t.split(':') for t in f.readline().split())]
            rows.append([l for l, _ in sorted(s, key=lambda t: (-t[1], t[0]))[:5]])
    return rows

def paired(out, datasets, resamples=2000):
    # Is xmc's lead or lag in a cell more than the test split's sampling
    # noise? Paired bootstrap over test rows (the same resampled rows score
    # xmc and the peer), against the best peer of each cell. Per-row P@1,
    # P@5 and PSP@5 as `xmc eval` computes them (P over all rows, rows
    # without labels scoring 0; propensities A=0.55 B=1.5 from the
    # training labels; PSP@k the ratio of summed gains to summed ideal
    # gains), so the point values are the table's.
    rng = np.random.default_rng(1)
    print('| dataset | metric | xmc | best peer | xmc - peer | 95% interval |')
    print('|---|---|---|---|---|---|')
    for ds in datasets:
        o = os.path.join(out, ds)
        _, Ytr, L = read_xc(f'{o}/train.xc'); _, Yte, _ = read_xc(f'{o}/test.xc')
        cnt = np.zeros(L)
        for y in Ytr:
            cnt[sorted(set(y))] += 1  # reuters21578 repeats a label in a few rows
        A, B = 0.55, 1.5
        C = (math.log(len(Ytr)) - 1) * (B + 1) ** A
        inv_p = 1 + C * np.exp(-A * np.log(cnt + B))
        def per_row(path):
            P = top5(path, len(Yte))
            r = np.zeros((len(Yte), 4))
            for i, p in enumerate(P):
                y = set(Yte[i])
                if not y:
                    continue
                r[i] = (bool(p) and p[0] in y, sum(l in y for l in p) / 5,
                        sum(inv_p[l] for l in p if l in y), np.sort(inv_p[sorted(y)])[::-1][:5].sum())
            return r
        def metrics(r, idx):  # idx: (resamples, n) row indices -> (resamples, 3) in %
            s = r[idx].sum(axis=-2)
            return 100 * np.stack([s[..., 0] / idx.shape[-1], s[..., 1] / idx.shape[-1], s[..., 2] / s[..., 3]], -1)
        if not os.path.exists(f'{o}/pred_xmc.txt'):
            continue
        rx = per_row(f'{o}/pred_xmc.txt')
        peers = {k: per_row(f'{o}/pred_{k}.txt') for k in PEER_NAMES if os.path.exists(f'{o}/pred_{k}.txt')}
        if not peers:
            continue
        idx = rng.integers(0, len(Yte), size=(resamples, len(Yte)))
        full = np.arange(len(Yte))[None, :]
        mx, bx = metrics(rx, full)[0], metrics(rx, idx)
        point = {k: metrics(r, full)[0] for k, r in peers.items()}
        boot = {}
        for m, name in enumerate(['P@1', 'P@5', 'PSP@5']):
            k = max(point, key=lambda k: point[k][m])
            mp = point[k][m]
            if k not in boot:
                boot[k] = metrics(peers[k], idx)
            d = np.sort(bx[:, m] - boot[k][:, m])
            lo, hi = d[int(0.025 * resamples)], d[int(0.975 * resamples) - 1]
            print('| %s | %s | %.2f | %s %.2f | %+.2f | [%+.2f, %+.2f] |' % (ds, name, mx[m], PEER_NAMES[k], mp, mx[m] - mp, lo, hi))

if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'convert': convert(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == 'napkin': napkin(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif cmd == 'ftpred': fasttext_pred(sys.argv[2], int(sys.argv[3]))
    elif cmd == 'omikuji': omikuji_run(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == 'paired': paired(sys.argv[2], sys.argv[3:])
PYEOF

# xmc's own specs for each dataset (the same splits as the conversion).
spec_train() {
  case $1 in
    bibtex|delicious) echo "$DATA/$1/$1_train.txt" ;;
    rcv1sub1) echo "$DATA/rcv1sub1/rcv1subset1_data.txt@$DATA/rcv1sub1/rcv1subset1_trSplit.txt" ;;
    stackex_cooking) echo "$DATA/stackex_cooking/cooking_data.txt@$DATA/stackex_cooking/cooking_trSplit.txt" ;;
    reuters21578) echo "$DATA/reuters21578/train_texts.txt+$DATA/reuters21578/train_labels.txt" ;;
  esac
}
spec_test() {
  case $1 in
    bibtex|delicious) echo "$DATA/$1/$1_test.txt" ;;
    rcv1sub1) echo "$DATA/rcv1sub1/rcv1subset1_data.txt@$DATA/rcv1sub1/rcv1subset1_tstSplit.txt" ;;
    stackex_cooking) echo "$DATA/stackex_cooking/cooking_data.txt@$DATA/stackex_cooking/cooking_tstSplit.txt" ;;
    reuters21578) echo "$DATA/reuters21578/test_texts.txt+$DATA/reuters21578/test_labels.txt" ;;
  esac
}

# timed LOG CMD...: runs CMD under /usr/bin/time -v, prints "seconds peakMB".
timed() {
  local log=$1; shift
  /usr/bin/time -v "$@" > "$log" 2>&1 || { echo "peers.sh: failed: $* (see $log)" >&2; tail -5 "$log" >&2; return 1; }
  awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; t = s }
              /Maximum resident set size/ { m = $2 / 1024 }
              END { printf "%.1f %.0f\n", t, m }' "$log"
}

scores() { # DATASET PRED -> "P@1 P@5 PSP@5" in %
  "$XMC" eval --truth "$(spec_test "$1")" --pred "$2" --train "$(spec_train "$1")" --k 1,5 --json |
    "$PY" -c 'import json,sys; r=json.load(sys.stdin); print("%.2f %.2f %.2f" % (100*r["P"][0], 100*r["P"][1], 100*r["PSP"][1]))'
}

table=$OUT/table.md
{
  echo "| dataset | method | P@1 | P@5 | PSP@5 | train s | predict s | train peak MB | predict peak MB |"
  echo "|---|---|---|---|---|---|---|---|---|"
} > "$table"
for ds in "${datasets[@]}"; do
  o=$OUT/$ds
  mkdir -p "$o"
  "$PY" "$OUT/peers.py" convert "$ds" "$DATA" "$o"
  L=$(cat "$o/L")
  # xmc (defaults: no tuning flags) -- XMC_FLAGS adds any.
  tr=$(timed "$o/xmc_train.log" "$XMC" train --train "$(spec_train "$ds")" --model "$o/xmc_model" \
       --threads "$THREADS" ${XMC_FLAGS:-})
  pr=$(timed "$o/xmc_pred.log" "$XMC" predict --model "$o/xmc_model" --input "$(spec_test "$ds")" \
       --out "$o/pred_xmc.txt" --topk 5 --threads "$THREADS")
  echo "| $ds | xmc | $(scores "$ds" "$o/pred_xmc.txt" | sed 's/ / | /g') | ${tr% *} | ${pr% *} | ${tr#* } | ${pr#* } |" >> "$table"
  # fastText, one-vs-all loss: lr 0.5 (best on bibtex by hand); when it
  # diverges (NaN, e.g. delicious with 19 labels per point) retry lower.
  ngr=1; [ "$ds" = reuters21578 ] && ngr=2
  tr=""
  for lr in 0.5 0.2 0.1 0.05; do
    if tr=$(timed "$o/ft_train.log" fasttext supervised -input "$o/ft_train.txt" -output "$o/ft_model" \
         -loss ova -lr $lr -epoch 50 -dim 100 -wordNgrams $ngr -minCount 1 -thread "$THREADS" -verbose 0 2>/dev/null); then
      break; fi
    tr=""
  done
  if [ -n "$tr" ] && pr=$(timed "$o/ft_pred.log" sh -c "fasttext predict-prob '$o/ft_model.bin' '$o/ft_test.txt' 5 > '$o/ft_pred.txt'"); then
    "$PY" "$OUT/peers.py" ftpred "$o" "$L"
    echo "| $ds | fastText ova (lr $lr) | $(scores "$ds" "$o/pred_fasttext.txt" | sed 's/ / | /g') | ${tr% *} | ${pr% *} | ${tr#* } | ${pr#* } |" >> "$table"
  else
    echo "| $ds | fastText ova | failed | | | | | | |" >> "$table"
  fi
  for kind in plt ovr; do
    if ! tr=$(timed "$o/nxc_${kind}_train.log" "$PY" "$OUT/peers.py" napkin "$kind" "$o" train "$THREADS") ||
       ! pr=$(timed "$o/nxc_${kind}_pred.log" "$PY" "$OUT/peers.py" napkin "$kind" "$o" predict "$THREADS"); then
      echo "| $ds | napkinXC $kind | failed | | | | | | |" >> "$table"; continue
    fi
    echo "| $ds | napkinXC $kind | $(scores "$ds" "$o/pred_nxc_${kind}.txt" | sed 's/ / | /g') | ${tr% *} | ${pr% *} | ${tr#* } | ${pr#* } |" >> "$table"
  done
  if [ "$HAVE_OMIKUJI" = 1 ]; then
    if tr=$(timed "$o/omikuji_train.log" "$PY" "$OUT/peers.py" omikuji "$o" train "$THREADS") &&
       pr=$(timed "$o/omikuji_pred.log" "$PY" "$OUT/peers.py" omikuji "$o" predict "$THREADS"); then
      echo "| $ds | omikuji | $(scores "$ds" "$o/pred_omikuji.txt" | sed 's/ / | /g') | ${tr% *} | ${pr% *} | ${tr#* } | ${pr#* } |" >> "$table"
    else
      echo "| $ds | omikuji | failed | | | | | | |" >> "$table"
    fi
  fi
done
cat "$table"
# Which gaps are beyond the test split's sampling noise (peers.py paired);
# the table above stands whatever happens here.
echo
echo "xmc against the best peer of each cell, paired bootstrap over test rows (2000 resamples):"
if "$PY" "$OUT/peers.py" paired "$OUT" "${datasets[@]}" > "$OUT/paired.md.tmp"; then
  mv "$OUT/paired.md.tmp" "$OUT/paired.md"
  cat "$OUT/paired.md"
else
  echo "peers.sh: the paired bootstrap failed (see above)" >&2
  exit 1
fi
