/* xmc tokenizer: BERT WordPiece, token-for-token identical to Hugging Face
 * BertTokenizer / BertTokenizerFast, and a tokenised-dataset cache.
 *
 * Pipeline (docs/bert.md has the details and the known corner cases):
 *   1. the special tokens [CLS] [SEP] [PAD] [MASK] [UNK] written verbatim in
 *      the text are kept whole (HF's added-token split);
 *   2. clean: drop NUL, U+FFFD and control characters (category C* except
 *      \t \n \r), whitespace (\t \n \r, Z*) separates words;
 *   3. CJK ideographs become words of their own;
 *   4. lower-case (do_lower_case) and strip accents (NFD via utf8proc, drop
 *      Mn marks; on by default with lower-casing, as HF);
 *   5. punctuation (ASCII 33-47, 58-64, 91-96, 123-126 and Unicode P*) is a
 *      word of its own;
 *   6. WordPiece: greedy longest-match-first with "##" continuations; a word
 *      of more than 100 characters, or with an unmatchable piece, is [UNK].
 * Encoding adds [CLS] ... [SEP], truncates to max_len and pads with [PAD];
 * the attention mask of a row is t < len.
 *
 * Memory: the vocabulary (strings + an open-addressing hash table, ~1 MB for
 * 30k tokens). Tokenising uses only stack scratch, so one tokenizer may be
 * used by many threads at once.
 */
#ifndef XMC_TOKENIZER_H
#define XMC_TOKENIZER_H

#include "xmc/core.h"
#include "xmc/data.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMC_TOK_MAX_WORD_CHARS 100 /* HF max_input_chars_per_word */
#define XMC_TOK_DEFAULT_MAX_LEN 128

typedef struct xmc_tokenizer_opts {
    int do_lower_case;          /* 1/0; -1: from the model dir (default 1) */
    int strip_accents;          /* 1/0; -1: as HF: follows do_lower_case */
    int tokenize_chinese_chars; /* 1/0; -1: from the model dir (default 1) */
} xmc_tokenizer_opts;

typedef struct xmc_tokenizer xmc_tokenizer;

/* Load DIR/vocab.txt and, where present, DIR/tokenizer_config.json and
 * DIR/tokenizer.json (do_lower_case, strip_accents,
 * tokenize_chinese_chars, model_max_length); opts (may be NULL) override.
 * `dir` may also name a vocab.txt file directly. Free with
 * xmc_tokenizer_free. Errors name the file (and line for vocab.txt). */
int xmc_tokenizer_load(const char *dir, const xmc_tokenizer_opts *opts, xmc_tokenizer **out,
                       xmc_error *err);
void xmc_tokenizer_free(xmc_tokenizer *t);

int32_t xmc_tokenizer_vocab_size(const xmc_tokenizer *t);
/* Id of an exact vocabulary entry, or -1. */
int32_t xmc_tokenizer_token_id(const xmc_tokenizer *t, const char *token);
/* Text of id (NULL when out of range); valid while t lives. */
const char *xmc_tokenizer_token(const xmc_tokenizer *t, int32_t id);
int32_t xmc_tokenizer_special_id(const xmc_tokenizer *t, const char *which); /* "cls", "sep", "pad", "unk", "mask" */
/* model_max_length from the config (0 when absent or absurd). */
int xmc_tokenizer_model_max_length(const xmc_tokenizer *t);
/* CRC-32 of the vocabulary and options: caches record it. */
uint32_t xmc_tokenizer_fingerprint(const xmc_tokenizer *t);

/* Word-piece ids of `text` (len bytes; need not be NUL-terminated; invalid
 * UTF-8 bytes are treated as U+FFFD and dropped), without [CLS]/[SEP]: at
 * most `cap` ids are written to `ids` (cap may be 0). Returns the total
 * number of ids the whole text has (may exceed cap). Stops early once
 * `stop_after` ids are known (stop_after < 0: never), which makes truncated
 * encodings of long texts cheap. Cannot fail. */
int64_t xmc_tokenizer_tokenize(const xmc_tokenizer *t, const char *text, size_t len,
                               int32_t *ids, int64_t cap, int64_t stop_after);

/* [CLS] pieces [SEP] truncated to max_len (>= 2), then [PAD] up to max_len:
 * ids[0..max_len). Returns the unpadded length (attention mask t < len). */
int32_t xmc_tokenizer_encode(const xmc_tokenizer *t, const char *text, size_t len,
                             int32_t max_len, int32_t *ids);

/* A tokenised dataset: ids (n x max_len, row-major, padded) and lens (n).
 * Either heap (built) or a read-only memory mapping (cache file). */
typedef struct xmc_token_ids {
    int64_t n;
    int32_t max_len;
    int32_t pad_id;
    uint32_t fingerprint; /* xmc_tokenizer_fingerprint of the tokenizer used */
    int32_t *ids;         /* (n, max_len) */
    int32_t *lens;        /* (n) tokens incl. [CLS] and [SEP] */
    void *map;            /* mapping or NULL */
    size_t map_len;
} xmc_token_ids;

/* Encode all n texts (OpenMP over rows; deterministic). Free with
 * xmc_token_ids_free. `texts` is an xmc_texts (data.h); `strs` a plain
 * array. Long jobs report through xmc_progress. */
int xmc_tokenizer_encode_texts(const xmc_tokenizer *t, const xmc_texts *texts, int32_t max_len,
                               xmc_token_ids **out, xmc_error *err);
int xmc_tokenizer_encode_strings(const xmc_tokenizer *t, const char *const *strs, int64_t n,
                                 int32_t max_len, xmc_token_ids **out, xmc_error *err);
void xmc_token_ids_free(xmc_token_ids *ti);

/* Cache file: magic "XMCTOKID", version, n, max_len, pad id, fingerprint,
 * CRC-32 of the payload, then lens and ids (little-endian int32). Written
 * atomically; mapped read-only (no copy). map fails with XMC_ECORRUPT on a
 * bad magic, version, size or checksum. */
int xmc_token_ids_write(const xmc_token_ids *ti, const char *path, xmc_error *err);
int xmc_token_ids_map(const char *path, xmc_token_ids **out, xmc_error *err);

/* Map `cache` when it exists and matches (fingerprint, max_len, n);
 * otherwise encode `texts` and write it (cache NULL: just encode). *hit says
 * which (may be NULL). */
int xmc_tokenizer_encode_cached(const xmc_tokenizer *t, const xmc_texts *texts, int32_t max_len,
                                const char *cache, xmc_token_ids **out, int *hit,
                                xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
