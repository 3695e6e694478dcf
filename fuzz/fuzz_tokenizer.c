/* libFuzzer: BERT WordPiece over arbitrary bytes (invalid UTF-8, NULs,
 * controls, huge words). The first byte picks the options (lower-case,
 * strip accents, CJK splitting) and a max_len; the rest is the text.
 * Invariants: ids inside the vocabulary, [CLS] first, [SEP] at len-1, pads
 * after; the count does not depend on the output capacity; a truncated
 * encoding is a prefix of a longer one. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xmc/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char vocab[] =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nab\n##b\n##a\n##ab\nc\n##c\n,\n!\n.\n"
    "\xe6\x88\x91\n\xc3\xa9\n##\xc3\xa9\ne\n##e\nhello\n##llo\nhe\n";

static xmc_tokenizer *toks[8];
static char path[256];

static void cleanup(void) { unlink(path); }

static xmc_tokenizer *get(int opt)
{
    if (toks[opt])
        return toks[opt];
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/xmc_fuzz_vocab_%ld.txt", (long)getpid());
        FILE *f = fopen(path, "wb");
        if (!f)
            abort();
        fputs(vocab, f);
        fclose(f);
        atexit(cleanup);
    }
    xmc_tokenizer_opts o = {opt & 1, (opt >> 1) & 1, (opt >> 2) & 1};
    xmc_error err = {0};
    if (xmc_tokenizer_load(path, &o, &toks[opt], &err) != XMC_OK)
        abort();
    return toks[opt];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    xmc_tokenizer *t = get(data[0] & 7);
    int32_t max_len = 2 + (data[0] >> 3);
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    int32_t nv = xmc_tokenizer_vocab_size(t);
    int64_t total = xmc_tokenizer_tokenize(t, text, n, NULL, 0, -1);
    int32_t *all = malloc(sizeof(int32_t) * (size_t)(total + 1));
    if (!all)
        return 0;
    if (xmc_tokenizer_tokenize(t, text, n, all, total, -1) != total)
        __builtin_trap();
    for (int64_t i = 0; i < total; i++)
        if (all[i] < 0 || all[i] >= nv)
            __builtin_trap();
    int32_t ids[64];
    int32_t len = xmc_tokenizer_encode(t, text, n, max_len, ids);
    int64_t want = total < max_len - 2 ? total : max_len - 2;
    if (len != want + 2 || ids[0] != xmc_tokenizer_special_id(t, "cls") ||
        ids[len - 1] != xmc_tokenizer_special_id(t, "sep"))
        __builtin_trap();
    if (memcmp(ids + 1, all, sizeof(int32_t) * (size_t)want) != 0)
        __builtin_trap();
    for (int32_t i = len; i < max_len; i++)
        if (ids[i] != xmc_tokenizer_special_id(t, "pad"))
            __builtin_trap();
    free(all);
    return 0;
}
