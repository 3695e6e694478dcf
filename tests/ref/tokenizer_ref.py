#!/usr/bin/env python3
"""Expected WordPiece ids for tests/test_tokenizer.c.

Writes tests/data/tokenizer/corpus.json (a JSON array of {"text", "hex"}: accents,
punctuation, CJK, emoji, control characters, very long words, mixed case,
special tokens written in the text, plus seeded random mixtures of all of
these) and expected.json ({"ids": [[...], ...], "disagree": [...]}) with the
ids of Hugging Face BertTokenizerFast (the default AutoTokenizer) for each
line, [CLS] and [SEP] included, no truncation. Lines where the slow
BertTokenizer gives different ids are listed in "disagree" (the C tokenizer
follows the fast one; docs/bert.md).

Usage: python tests/ref/tokenizer_ref.py [VOCAB_DIR]
(default ../shared/models/bert-base-uncased-vocab). Needs transformers.
"""
import json
import os
import random
import sys

from transformers import BertTokenizerFast

try:  # transformers 5 keeps the pure-Python tokenizer as *_legacy
    from transformers.models.bert.tokenization_bert_legacy import \
        BertTokenizerLegacy as BertTokenizer
except ImportError:
    from transformers import BertTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VOCAB_DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    ROOT, "..", "shared", "models", "bert-base-uncased-vocab")
OUT = os.path.join(ROOT, "tests", "data", "tokenizer")

FIXED = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "café naïve Crème Brûlée ÅNGSTRÖM résumé façade",
    "Hello, world!!! (test) [x] {y} a-b_c d/e f\\g h|i ~j `k` ^l @m #n $o %p &q *r +s =t <u> ?v",
    "我爱北京天安门",
    "BERT模型很好,非常好!",
    "日本語のテキスト カタカナ ひらがな",
    "한국어 텍스트입니다",
    "I love 🍕 and 😀! 👍🏽👨‍👩‍👧",
    "a\x00b\x01c\u200bd\ufffde\x7ff",
    "tab\tseparated\nnew\rline",
    "a" * 150,
    "b" * 100,
    "c" * 101,
    "supercalifragilisticexpialidocious" * 3,
    "iPhone XS Max McDonald's O'Neill",
    "NBSP\u00a0here and\u3000ideographic space",
    "Ελληνικά κείμενο ΟΔΟΣ",
    "Русский текст, Ёлка",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "3.14159 1,000,000 2nd 10:30pm",
    "https://example.com/path?q=1&r=2#frag",
    "İstanbul ıIiI",
    "[CLS] hello [SEP] x[MASK]y [unk] [UNK][PAD]",
    "∑∫≈ ≠ ±",
    "$100 €50 ¥300 £7",
    "U.S.A. don't … — “quoted” ‘single’ «guillemets»",
    "ＡＢＣ１２３ ﬁ ligature ½",
    "line\u2028separator\u2029para",
    "soft\u00adhyphen zero\u200dwidth",
    "Ǆ ǅ ǆ ẞ ß",
    "",
    "   ",
    "\x00\x01\x02",
    "Mixed CASE WoRdS With UPPER and lower",
    "unaffable unbelievable antidisestablishmentarianism",
    "e\u0301 a\u0300 combining marks",
    "emoji-only 🤗🤗🤗",
    "x" * 99 + "é",
    "Tokenization of [SEP]-adjacent punctuation: [SEP]. ([CLS])",
    "ﾊﾝｶｸ halfwidth katakana",
    "Ⅻ roman numeral Ⅻ",
    "𠀀𠀁 CJK extension B",
    "ǰ̣ stacked marks",
]

POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 3 +
        list(" \t\n.,!?;:'\"()[]{}-_/\\@#$%^&*+=<>|~`") +
        list("éèêëàâäôöûüçñÅØßÆœ") + list("我爱北京天安门中文字") + list("ひらがなカタカナ") +
        list("한국어") + ["😀", "🍕", "👍", "🏽", "\u200d", "\u200b", "\x00", "\x01",
                        "\ufffd", "\u00a0", "\u3000", "\u0301", "İ", "Σ", "ς", "ﬁ"] +
        ["[CLS]", "[SEP]", "[MASK]", "##", "##ing", " un", "able", "ing "])


def random_lines(n, seed=1234):
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        k = rng.randint(1, 60)
        lines.append("".join(rng.choice(POOL) for _ in range(k)))
    return lines


def main():
    fast = BertTokenizerFast(os.path.join(VOCAB_DIR, "vocab.txt"), do_lower_case=True)
    slow = None
    if BertTokenizer is not None:
        try:
            slow = BertTokenizer(os.path.join(VOCAB_DIR, "vocab.txt"), do_lower_case=True)
        except Exception:  # transformers 5 may map it to the fast class
            slow = None
    corpus = FIXED + random_lines(300)
    ids, disagree = [], []
    for i, s in enumerate(corpus):
        f = fast(s, add_special_tokens=True, truncation=False)["input_ids"]
        ids.append(f)
        if slow is not None and type(slow) is not type(fast):
            sl = slow(s, add_special_tokens=True, truncation=False)["input_ids"]
            if sl != f:
                disagree.append(i)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "corpus.json"), "w", encoding="utf-8") as fh:
        # hex: the exact UTF-8 bytes (C's cJSON strings stop at an embedded NUL)
        json.dump([{"text": s, "hex": s.encode("utf-8").hex()} for s in corpus], fh,
                  ensure_ascii=True, indent=0)
    with open(os.path.join(OUT, "expected.json"), "w") as fh:
        json.dump({"slow_class": type(slow).__name__ if slow else None,
                   "disagree": disagree, "ids": ids}, fh, separators=(",", ":"))
    print(f"{len(corpus)} lines; slow/fast disagree on {disagree}")


if __name__ == "__main__":
    main()
