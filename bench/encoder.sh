#!/usr/bin/env bash
# Encoder throughput, xmc vs PyTorch, side by side in one run.
#
# MiniLM-L6 shape (H 384, 6 layers, 12 heads, FFN 1536, vocab 30522; the
# real all-MiniLM-L6-v2 weights when MODEL_DIR is set), batch 64 x length 32:
#   infer: forward + mean pooling       (xmc: inference buffers; torch: eval,
#                                        inference_mode)
#   train: forward + backward + AdamW   (dropout 0.1; loss sum(pooled * R))
# Both run with the same thread count (THREADS, default 2) and report the
# median and the best of REPS steps after one warm-up, plus the process's
# peak RSS. The two programs alternate for ROUNDS rounds (the machine is
# shared: compare the ratios within a round; the *_best ratios are the
# steadier ones when the load changes between the two programs).
#
# Usage: bench/encoder.sh            (env: XMC=path/to/xmc PYTHON=python3
#                                     THREADS=2 REPS=5 ROUNDS=2 MODEL_DIR=)
# Needs `xmc bench encoder` (cli/bench_encoder.c) and, for the comparison,
# a Python with torch and transformers (pip install torch transformers).
set -euo pipefail
XMC=${XMC:-build/xmc}
PYTHON=${PYTHON:-python3}
THREADS=${THREADS:-2}
REPS=${REPS:-5}
ROUNDS=${ROUNDS:-2}
MODEL_DIR=${MODEL_DIR:-}
BATCH=64
LEN=32
export OMP_NUM_THREADS=$THREADS

if ! "$XMC" bench encoder --help >/dev/null 2>&1; then
    echo "encoder.sh: '$XMC bench encoder' is not available (build xmc; cli/cmd_bench.c must list bench_encoder)" >&2
    exit 2
fi
have_torch=1
"$PYTHON" -c "import torch, transformers" 2>/dev/null || have_torch=0
[ $have_torch = 1 ] || echo "encoder.sh: $PYTHON lacks torch/transformers: xmc only" >&2

TORCH_PY=$(mktemp /tmp/xmc_enc_bench.XXXXXX.py)
trap 'rm -f "$TORCH_PY"' EXIT
cat > "$TORCH_PY" <<'PY'
import os, resource, statistics, sys, time
import torch
from transformers import BertConfig, BertModel
threads, reps, batch, length = (int(a) for a in sys.argv[1:5])
model_dir = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] else None
torch.set_num_threads(threads)
torch.manual_seed(1)
if model_dir:
    model = BertModel.from_pretrained(model_dir, add_pooling_layer=False)
else:
    cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6,
                     num_attention_heads=12, intermediate_size=1536,
                     max_position_embeddings=512)
    model = BertModel(cfg, add_pooling_layer=False)
ids = torch.randint(1000, 30522, (batch, length))
ids[:, 0], ids[:, -1] = 101, 102
mask = torch.ones(batch, length, dtype=torch.long)
R = 1e-3 * torch.randn(batch, cfg.hidden_size if not model_dir else model.config.hidden_size)
def pool(h):
    m = mask.unsqueeze(-1).float()
    return (h * m).sum(1) / m.sum(1)
model.eval()
t = []
with torch.inference_mode():
    for i in range(reps + 1):
        t0 = time.perf_counter(); pool(model(input_ids=ids, attention_mask=mask).last_hidden_state)
        t.append(time.perf_counter() - t0)
med = statistics.median(t[1:])
print(f"RESULT torch infer {batch / med:.1f} examples/s ({med * 1e3:.1f} ms/step)")
print(f"RESULT torch infer_best {batch / min(t[1:]):.1f} examples/s ({min(t[1:]) * 1e3:.1f} ms/step)")
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
t = []
for i in range(reps + 1):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=False)
    loss = (pool(model(input_ids=ids, attention_mask=mask).last_hidden_state) * R).sum()
    loss.backward(); opt.step()
    t.append(time.perf_counter() - t0)
med = statistics.median(t[1:])
print(f"RESULT torch train {batch / med:.1f} examples/s ({med * 1e3:.1f} ms/step)")
print(f"RESULT torch train_best {batch / min(t[1:]):.1f} examples/s ({min(t[1:]) * 1e3:.1f} ms/step)")
print(f"RESULT torch peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")
print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
PY

val() { awk -v k="$2" '$1=="RESULT" && $3==k {print $4}' <<<"$1"; }
echo "encoder benchmark: batch $BATCH x len $LEN, $THREADS threads, median of $REPS, ${MODEL_DIR:-random MiniLM-L6 shape}"
for r in $(seq 1 "$ROUNDS"); do
    xo=$("$XMC" bench encoder --batch $BATCH --len $LEN --reps "$REPS" --threads "$THREADS" \
         ${MODEL_DIR:+--model-dir "$MODEL_DIR"})
    echo "--- round $r"; grep RESULT <<<"$xo"
    if [ $have_torch = 1 ]; then
        to=$("$PYTHON" "$TORCH_PY" "$THREADS" "$REPS" $BATCH $LEN "$MODEL_DIR" 2>/dev/null)
        grep -E "RESULT|torch " <<<"$to"
        for k in infer train infer_best train_best; do
            awk -v a="$(val "$xo" $k)" -v b="$(val "$to" $k)" -v k=$k \
                'BEGIN { if (b > 0) printf "RATIO %s xmc/torch %.2fx\n", k, a / b }'
        done
    fi
done
