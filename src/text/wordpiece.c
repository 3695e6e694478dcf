/* BERT WordPiece tokenizer, matching Hugging Face BertTokenizer(Fast).
 *
 * Algorithm: one streaming pass over the UTF-8 text. Each code point is
 * cleaned (control characters dropped, whitespace ends a word), CJK
 * ideographs and punctuation become one-character words, the rest is
 * lower-cased / accent-stripped (utf8proc NFD, Mn marks dropped) and
 * appended to the current word. A finished word goes through WordPiece:
 * greedy longest-match-first against the vocabulary, "##" marking a
 * continuation (Schuster & Nakajima 2012; Wu et al. 2016, sec. 4.1, as
 * implemented by google-research/bert tokenization.py). Why hand-written:
 * no C library ships BERT's basic tokenizer; utf8proc provides the Unicode
 * tables (category, NFD, case).
 *
 * The vocabulary is an open-addressing hash table over an immutable string
 * pool; a continuation lookup hashes "##" + piece without building the
 * string. Words longer than 100 characters are [UNK] anyway, so a word
 * lives in a fixed stack buffer: tokenising never allocates and a
 * tokenizer is safe to share between threads.
 *
 * Known corner cases where HF's slow and fast tokenizers differ from each
 * other (docs/bert.md): we follow the fast one (char-wise lower-casing, so
 * no Greek final-sigma rule; no NFC pre-normalisation when accents are kept).
 */
#include "xmc/tokenizer.h"
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <string.h>
#include <utf8proc.h>


enum { SP_CLS, SP_SEP, SP_PAD, SP_MASK, SP_UNK, SP_COUNT };
static const char *const special_names[SP_COUNT] = {"[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"};

struct xmc_tokenizer {
    char *pool;          /* vocab.txt contents, '\n' replaced by NUL */
    int32_t n;           /* tokens */
    const char **tok;    /* (n) token text */
    uint32_t *tok_len;   /* (n) */
    int32_t *slots;      /* (cap) token id or -1 */
    uint64_t *slot_hash; /* (cap) */
    uint64_t cap;        /* power of two */
    int32_t sp[SP_COUNT];
    int lower, strip, cjk;
    int model_max_length;
    uint32_t fingerprint;
};

/* FNV-1a 64: simple, and incremental so "##" + piece hashes in place. */
#define FNV_OFF 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL
static uint64_t fnv(uint64_t h, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * FNV_PRIME;
    return h;
}
static uint64_t hash_piece(const unsigned char *s, size_t n, int cont)
{
    uint64_t h = FNV_OFF;
    if (cont)
        h = fnv(h, (const unsigned char *)"##", 2);
    return fnv(h, s, n);
}

static int32_t lookup(const xmc_tokenizer *t, const unsigned char *s, size_t n, int cont)
{
    uint64_t h = hash_piece(s, n, cont), mask = t->cap - 1;
    size_t want = n + (cont ? 2 : 0);
    for (uint64_t i = h & mask;; i = (i + 1) & mask) {
        int32_t id = t->slots[i];
        if (id < 0)
            return -1;
        if (t->slot_hash[i] != h || t->tok_len[id] != want)
            continue;
        const char *k = t->tok[id];
        if (cont && (k[0] != '#' || k[1] != '#'))
            continue;
        if (!memcmp(k + (cont ? 2 : 0), s, n))
            return id;
    }
}

int32_t xmc_tokenizer_token_id(const xmc_tokenizer *t, const char *token)
{
    return lookup(t, (const unsigned char *)token, strlen(token), 0);
}

const char *xmc_tokenizer_token(const xmc_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n ? t->tok[id] : NULL;
}

int32_t xmc_tokenizer_vocab_size(const xmc_tokenizer *t) { return t->n; }
int xmc_tokenizer_model_max_length(const xmc_tokenizer *t) { return t->model_max_length; }
uint32_t xmc_tokenizer_fingerprint(const xmc_tokenizer *t) { return t->fingerprint; }

int32_t xmc_tokenizer_special_id(const xmc_tokenizer *t, const char *which)
{
    static const char *const keys[SP_COUNT] = {"cls", "sep", "pad", "mask", "unk"};
    for (int i = 0; i < SP_COUNT; i++)
        if (!strcmp(which, keys[i]))
            return t->sp[i];
    return -1;
}

void xmc_tokenizer_free(xmc_tokenizer *t)
{
    if (!t)
        return;
    xmc_free(t->pool);
    xmc_free(t->tok);
    xmc_free(t->tok_len);
    xmc_free(t->slots);
    xmc_free(t->slot_hash);
    xmc_free(t);
}

/* ------------------------------------------------------------ config */

/* -1 unset, 0/1 from a JSON bool (null leaves it unset). */
static void json_flag(const cJSON *o, const char *key, int *v)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsBool(j))
        *v = cJSON_IsTrue(j) ? 1 : 0;
}

/* An absent file is no error: *out stays NULL. */
static int read_json(const char *path, cJSON **out, xmc_error *err)
{
    *out = NULL;
    return xmc_file_exists(path) ? xmc_json_read_object(path, out, err) : XMC_OK;
}

/* tokenizer.json's normalizer (what the fast tokenizer runs), then
 * tokenizer_config.json (HF re-applies its kwargs over the normalizer). */
static int read_config(const char *dir, int *lower, int *strip, int *cjk, int *mml,
                       xmc_error *err)
{
    char path[4096 + 64];
    cJSON *j;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    int rc = read_json(path, &j, err);
    if (rc != XMC_OK)
        return rc;
    if (j) {
        const cJSON *nz = cJSON_GetObjectItemCaseSensitive(j, "normalizer");
        if (cJSON_IsObject(nz)) {
            const cJSON *ty = cJSON_GetObjectItemCaseSensitive(nz, "type");
            if (cJSON_IsString(ty) && !strcmp(ty->valuestring, "BertNormalizer")) {
                json_flag(nz, "lowercase", lower);
                json_flag(nz, "strip_accents", strip);
                json_flag(nz, "handle_chinese_chars", cjk);
            }
        }
        cJSON_Delete(j);
    }
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    rc = read_json(path, &j, err);
    if (rc != XMC_OK)
        return rc;
    if (j) {
        json_flag(j, "do_lower_case", lower);
        json_flag(j, "strip_accents", strip);
        json_flag(j, "tokenize_chinese_chars", cjk);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model_max_length");
        /* HF writes 1e30 for "no limit". */
        if (cJSON_IsNumber(m) && m->valuedouble >= 2 && m->valuedouble <= 1e6)
            *mml = (int)m->valuedouble;
        cJSON_Delete(j);
    }
    return XMC_OK;
}

/* ------------------------------------------------------------ load */

/* tokenizer.json's WordPiece vocabulary {token: id} as vocab.txt text (one
 * token per line, in id order), so both sources share one parser. */
static int vocab_from_tokenizer_json(const char *path, char **pool, size_t *len,
                                     xmc_error *err)
{
    *pool = NULL;
    *len = 0;
    cJSON *j;
    int rc = read_json(path, &j, err);
    if (rc != XMC_OK)
        return rc;
    if (!j)
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot open");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const char **by_id = NULL;
    int n = cJSON_GetArraySize(vocab);
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "WordPiece") ||
        !cJSON_IsObject(vocab) || n < 1) {
        rc = XMC_ERR(err, XMC_EUNSUPPORTED, path, 0,
                     "model is not a WordPiece vocabulary (type %.32s)",
                     cJSON_IsString(type) ? type->valuestring : "?");
        goto out;
    }
    by_id = xmc_calloc((size_t)n, sizeof *by_id);
    if (!by_id) {
        rc = XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
        goto out;
    }
    size_t total = 0;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        double id = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!(id >= 0 && id < n) || id != (int)id || by_id[(int)id] || strchr(e->string, '\n')) {
            rc = XMC_ERR(err, XMC_EFORMAT, path, 0,
                         "vocab entry '%.40s': ids must be 0..%d, each once", e->string, n - 1);
            goto out;
        }
        by_id[(int)id] = e->string;
        total += strlen(e->string) + 1;
    }
    char *p = xmc_malloc(total + 1);
    if (!p) {
        rc = XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(by_id[i]);
        memcpy(p + k, by_id[i], l);
        p[k + l] = '\n';
        k += l + 1;
    }
    p[k] = 0;
    *pool = p;
    *len = k;
out:
    xmc_free(by_id);
    cJSON_Delete(j);
    return rc;
}

int xmc_tokenizer_load(const char *dir, const xmc_tokenizer_opts *opts, xmc_tokenizer **out,
                       xmc_error *err)
{
    *out = NULL;
    char vpath[4096 + 64], cdir[4096];
    size_t dl = strlen(dir);
    if (dl >= 4000)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "model path too long (%zu bytes)", dl);
    if (dl >= 4 && !strcmp(dir + dl - 4, ".txt")) {
        snprintf(vpath, sizeof vpath, "%s", dir);
        snprintf(cdir, sizeof cdir, "%s", dir);
        char *slash = strrchr(cdir, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(cdir, sizeof cdir, ".");
    } else {
        snprintf(vpath, sizeof vpath, "%s/vocab.txt", dir);
        snprintf(cdir, sizeof cdir, "%s", dir);
    }
    int lower = -1, strip = -1, cjk = -1, mml = 0;
    int rc = read_config(cdir, &lower, &strip, &cjk, &mml, err);
    if (rc != XMC_OK)
        return rc;
    if (opts) {
        if (opts->do_lower_case >= 0)
            lower = opts->do_lower_case;
        if (opts->strip_accents >= 0)
            strip = opts->strip_accents;
        if (opts->tokenize_chinese_chars >= 0)
            cjk = opts->tokenize_chinese_chars;
    }
    if (lower < 0)
        lower = 1;
    if (strip < 0) /* HF: unset strip_accents follows lower-casing */
        strip = lower;
    if (cjk < 0)
        cjk = 1;

    xmc_tokenizer *t = xmc_calloc(1, sizeof *t);
    size_t len = 0;
    if (!t)
        return XMC_ERR(err, XMC_ENOMEM, vpath, 0, "out of memory");
    t->lower = lower;
    t->strip = strip;
    t->cjk = cjk;
    t->model_max_length = mml;
    size_t vl = strlen(vpath);
    if (vl >= 10 && !strcmp(vpath + vl - 10, "/vocab.txt") && !xmc_file_exists(vpath)) {
        /* no vocab.txt: a fast-tokenizer-only directory */
        char tj[4096 + 32];
        snprintf(tj, sizeof tj, "%s/tokenizer.json", cdir);
        if (!xmc_file_exists(tj)) {
            rc = XMC_ERR(err, XMC_EIO, vpath, 0,
                         "cannot open: no such file (nor a tokenizer.json beside it)");
        } else {
            rc = vocab_from_tokenizer_json(tj, &t->pool, &len, err);
            snprintf(vpath, sizeof vpath, "%s", tj); /* later errors name it */
        }
    } else {
        rc = xmc_read_file(vpath, &t->pool, &len, err);
    }
    if (rc != XMC_OK)
        goto fail;
    if (len == 0) {
        rc = XMC_ERR(err, XMC_EFORMAT, vpath, 1, "empty vocabulary");
        goto fail;
    }
    int64_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += t->pool[i] == '\n';
    if (t->pool[len - 1] != '\n')
        n++;
    if (n > INT32_MAX / 4) {
        rc = XMC_ERR(err, XMC_EFORMAT, vpath, 0, "too many tokens (%lld)", (long long)n);
        goto fail;
    }
    t->n = (int32_t)n;
    t->cap = 64;
    while (t->cap < 2 * (uint64_t)n)
        t->cap <<= 1;
    t->tok = xmc_malloc((size_t)n * sizeof *t->tok);
    t->tok_len = xmc_malloc((size_t)n * sizeof *t->tok_len);
    t->slots = xmc_malloc(t->cap * sizeof *t->slots);
    t->slot_hash = xmc_malloc(t->cap * sizeof *t->slot_hash);
    if (!t->tok || !t->tok_len || !t->slots || !t->slot_hash) {
        rc = XMC_ERR(err, XMC_ENOMEM, vpath, 0, "out of memory for %lld tokens", (long long)n);
        goto fail;
    }
    memset(t->slots, 0xff, t->cap * sizeof *t->slots);
    uint32_t crc = 0;
    char *p = t->pool;
    for (int32_t id = 0; id < t->n; id++) {
        char *e = memchr(p, '\n', (size_t)(t->pool + len - p));
        if (!e)
            e = t->pool + len; /* the NUL xmc_read_file appends */
        *e = 0;
        /* HF load_vocab strips only '\n', so a '\r' stays in the token */
        size_t l = (size_t)(e - p);
        t->tok[id] = p;
        t->tok_len[id] = (uint32_t)l;
        crc = xmc_crc32(crc, p, l + 1);
        uint64_t h = hash_piece((const unsigned char *)p, l, 0), mask = t->cap - 1;
        uint64_t i = h & mask;
        for (; t->slots[i] >= 0; i = (i + 1) & mask)
            if (t->slot_hash[i] == h && t->tok_len[t->slots[i]] == l &&
                !memcmp(t->tok[t->slots[i]], p, l))
                break; /* duplicate: the later id wins, as in HF's dict */
        t->slots[i] = id;
        t->slot_hash[i] = h;
        p = e + 1;
    }
    for (int i = 0; i < SP_COUNT; i++)
        t->sp[i] = xmc_tokenizer_token_id(t, special_names[i]);
    if (t->sp[SP_UNK] < 0 || t->sp[SP_CLS] < 0 || t->sp[SP_SEP] < 0 || t->sp[SP_PAD] < 0) {
        rc = XMC_ERR(err, XMC_EFORMAT, vpath, 0,
                     "vocabulary lacks one of [UNK] [CLS] [SEP] [PAD] (not a BERT WordPiece "
                     "vocab?)");
        goto fail;
    }
    unsigned char flags[3] = {(unsigned char)lower, (unsigned char)strip, (unsigned char)cjk};
    t->fingerprint = xmc_crc32(crc, flags, sizeof flags);
    *out = t;
    return XMC_OK;
fail:
    xmc_tokenizer_free(t);
    return rc;
}

/* ------------------------------------------------------------ characters */

/* HF _is_chinese_char: the CJK Unified Ideographs blocks (not Hangul,
 * Hiragana or Katakana, which are split on spaces like other scripts). */
static int is_cjk(int32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static int is_ws(int32_t c, int cat)
{
    /* Python's str.split() in whitespace_tokenize also splits on Zl/Zp;
     * the other C0 separators it knows are removed as controls first. */
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || cat == UTF8PROC_CATEGORY_ZS ||
           cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

static int is_control(int32_t c, int cat)
{
    if (c == '\t' || c == '\n' || c == '\r')
        return 0;
    return cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
           cat == UTF8PROC_CATEGORY_CS || cat == UTF8PROC_CATEGORY_CO ||
           cat == UTF8PROC_CATEGORY_CN;
}

static int is_punct(int32_t c)
{
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
        (c >= 123 && c <= 126))
        return 1;
    int cat = utf8proc_category(c);
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

/* ------------------------------------------------------------ tokenising */

#define WORD_CHARS (XMC_TOK_MAX_WORD_CHARS + 1)

typedef struct word {
    int nchar; /* may exceed WORD_CHARS: then only the count is kept */
    int nbytes;
    int off[WORD_CHARS + 1];
    unsigned char b[4 * WORD_CHARS + 4];
} word;

typedef struct sink {
    int32_t *ids;
    int64_t cap, n, stop;
} sink;

static inline int emit(sink *s, int32_t id)
{
    if (s->n < s->cap)
        s->ids[s->n] = id;
    s->n++;
    return s->stop >= 0 && s->n >= s->stop;
}

static void word_push(word *w, int32_t cp)
{
    if (w->nchar < WORD_CHARS) {
        w->off[w->nchar] = w->nbytes;
        w->nbytes += (int)utf8proc_encode_char(cp, w->b + w->nbytes);
    }
    w->nchar++;
}

/* WordPiece of the current word; returns 1 when the sink is full. */
static int flush(const xmc_tokenizer *t, word *w, sink *s)
{
    int nchar = w->nchar;
    if (nchar == 0)
        return 0;
    w->nchar = 0;
    int nbytes = w->nbytes;
    w->nbytes = 0;
    if (nchar > XMC_TOK_MAX_WORD_CHARS)
        return emit(s, t->sp[SP_UNK]);
    w->off[nchar] = nbytes;
    int32_t sub[XMC_TOK_MAX_WORD_CHARS];
    int nsub = 0;
    for (int start = 0; start < nchar;) {
        int end = nchar;
        int32_t id = -1;
        for (; end > start; end--) {
            id = lookup(t, w->b + w->off[start], (size_t)(w->off[end] - w->off[start]),
                        start > 0);
            if (id >= 0)
                break;
        }
        if (id < 0)
            return emit(s, t->sp[SP_UNK]); /* one unmatchable piece: the whole word */
        sub[nsub++] = id;
        start = end;
    }
    for (int i = 0; i < nsub; i++)
        if (emit(s, sub[i]))
            return 1;
    return 0;
}

/* Lower-case / strip accents of one code point into out (returns count). */
static int normalise(const xmc_tokenizer *t, int32_t cp, int32_t *out, int cap)
{
    int n = 0;
    int32_t tmp[2];
    int nt = 1;
    tmp[0] = cp;
    if (t->lower) {
        if (cp == 0x130) { /* full lower-case mapping: 'i' + COMBINING DOT ABOVE */
            tmp[0] = 'i';
            tmp[1] = 0x307;
            nt = 2;
        } else {
            tmp[0] = utf8proc_tolower(cp);
        }
    }
    if (!t->strip) {
        for (int i = 0; i < nt; i++)
            out[n++] = tmp[i];
        return n;
    }
    for (int i = 0; i < nt; i++) {
        int32_t d[32];
        int last = 0;
        utf8proc_ssize_t k =
            utf8proc_decompose_char(tmp[i], d, 32, UTF8PROC_DECOMPOSE, &last);
        if (k < 0 || k > 32) {
            d[0] = tmp[i];
            k = 1;
        }
        for (utf8proc_ssize_t j = 0; j < k && n < cap; j++)
            if (utf8proc_category(d[j]) != UTF8PROC_CATEGORY_MN)
                out[n++] = d[j];
    }
    return n;
}

static int special_at(const xmc_tokenizer *t, const unsigned char *p, size_t left, int *len)
{
    for (int i = 0; i < SP_COUNT; i++) {
        size_t l = strlen(special_names[i]);
        if (t->sp[i] >= 0 && left >= l && !memcmp(p, special_names[i], l)) {
            *len = (int)l;
            return t->sp[i];
        }
    }
    return -1;
}

int64_t xmc_tokenizer_tokenize(const xmc_tokenizer *t, const char *text, size_t len,
                               int32_t *ids, int64_t cap, int64_t stop_after)
{
    sink s = {ids, cap < 0 ? 0 : cap, 0, stop_after};
    word w;
    w.nchar = w.nbytes = 0;
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        if (p[i] == '[') {
            int sl = 0;
            int32_t id = special_at(t, p + i, len - i, &sl);
            if (id >= 0) {
                if (flush(t, &w, &s) || emit(&s, id))
                    return s.n;
                i += (size_t)sl;
                continue;
            }
        }
        int32_t cp;
        utf8proc_ssize_t k;
        if (p[i] < 0x80) { /* ASCII fast path */
            cp = p[i];
            k = 1;
        } else {
            size_t left = len - i;
            k = utf8proc_iterate(p + i, left > 4 ? 4 : (utf8proc_ssize_t)left, &cp);
            if (k <= 0) { /* invalid byte: U+FFFD, which cleaning drops */
                i++;
                continue;
            }
        }
        i += (size_t)k;
        if (cp == 0 || cp == 0xFFFD)
            continue;
        int cat = utf8proc_category(cp);
        if (is_control(cp, cat))
            continue;
        if (is_ws(cp, cat)) {
            if (flush(t, &w, &s))
                return s.n;
            continue;
        }
        if (t->cjk && is_cjk(cp)) {
            if (flush(t, &w, &s))
                return s.n;
            word_push(&w, cp);
            if (flush(t, &w, &s))
                return s.n;
            continue;
        }
        int32_t norm[40];
        int nn;
        if (cp < 0x80) {
            norm[0] = t->lower && cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
            nn = 1;
        } else {
            nn = normalise(t, cp, norm, 40);
        }
        for (int j = 0; j < nn; j++) {
            if (is_punct(norm[j])) {
                if (flush(t, &w, &s))
                    return s.n;
                word_push(&w, norm[j]);
                if (flush(t, &w, &s))
                    return s.n;
            } else {
                word_push(&w, norm[j]);
            }
        }
    }
    flush(t, &w, &s);
    return s.n;
}

int32_t xmc_tokenizer_encode(const xmc_tokenizer *t, const char *text, size_t len,
                             int32_t max_len, int32_t *ids)
{
    if (max_len < 2)
        return 0;
    int64_t room = max_len - 2;
    int64_t n = xmc_tokenizer_tokenize(t, text, len, ids + 1, room, room);
    if (n > room)
        n = room;
    ids[0] = t->sp[SP_CLS];
    ids[n + 1] = t->sp[SP_SEP];
    for (int64_t i = n + 2; i < max_len; i++)
        ids[i] = t->sp[SP_PAD];
    return (int32_t)(n + 2);
}
