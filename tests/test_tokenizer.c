/* Tokenizer: ids identical to Hugging Face BertTokenizerFast on the fixture
 * corpus (tests/ref/tokenizer_ref.py, real bert-base-uncased vocab; skipped
 * when ../shared lacks it), special tokens, truncation/padding, config
 * options, error paths, the batch encoder and the id cache file. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/tokenizer.h"

static char *src_path(const char *rel)
{
    static char buf[4][1200];
    static int k;
    const char *base = getenv("XMC_SOURCE_DIR");
    char *b = buf[k++ & 3];
    snprintf(b, 1200, "%s/%s", base ? base : ".", rel);
    return b;
}

static cJSON *read_json(const char *path)
{
    char *d;
    size_t n;
    xmc_error e = {0};
    assert_int_equal(xmc_read_file(path, &d, &n, &e), XMC_OK);
    cJSON *j = cJSON_ParseWithLength(d, n);
    xmc_free(d);
    assert_non_null(j);
    return j;
}

/* The corpus stores exact bytes as hex (lines contain NULs). */
static size_t unhex(const char *h, char *out, size_t cap)
{
    size_t n = 0;
    for (; h[0] && h[1] && n + 1 < cap; h += 2) {
        unsigned v;
        sscanf(h, "%2x", &v);
        out[n++] = (char)v;
    }
    out[n] = 0;
    return n;
}

static xmc_tokenizer *load_real(void)
{
    const char *v = tu_shared("models/bert-base-uncased-vocab/vocab.txt");
    if (!v)
        return NULL;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s", v);
    *strrchr(dir, '/') = 0;
    xmc_tokenizer *t = NULL;
    xmc_error e = {0};
    assert_int_equal(xmc_tokenizer_load(dir, NULL, &t, &e), XMC_OK);
    return t;
}

static void test_hf_parity(void **state)
{
    (void)state;
    xmc_tokenizer *t = load_real();
    if (!t)
        skip();
    assert_int_equal(xmc_tokenizer_vocab_size(t), 30522);
    cJSON *corpus = read_json(src_path("tests/data/tokenizer/corpus.json"));
    cJSON *exp = read_json(src_path("tests/data/tokenizer/expected.json"));
    cJSON *ids = cJSON_GetObjectItem(exp, "ids");
    int n = cJSON_GetArraySize(corpus);
    assert_true(n > 300);
    assert_int_equal(n, cJSON_GetArraySize(ids));
    int32_t got[2048];
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char s[4096];
        size_t sl = unhex(cJSON_GetObjectItem(cJSON_GetArrayItem(corpus, i), "hex")->valuestring,
                          s, sizeof s);
        cJSON *row = cJSON_GetArrayItem(ids, i);
        int m = cJSON_GetArraySize(row);
        int32_t len = xmc_tokenizer_encode(t, s, sl, 2048, got);
        int ok = len == m;
        for (int k = 0; ok && k < m; k++)
            ok = got[k] == cJSON_GetArrayItem(row, k)->valueint;
        if (!ok && bad++ < 5) {
            fprintf(stderr, "line %d mismatch: %s\n  got:", i, s);
            for (int k = 0; k < len; k++)
                fprintf(stderr, " %d", got[k]);
            fprintf(stderr, "\n  want:");
            for (int k = 0; k < m; k++)
                fprintf(stderr, " %d", cJSON_GetArrayItem(row, k)->valueint);
            fprintf(stderr, "\n");
        }
    }
    assert_int_equal(bad, 0);
    cJSON_Delete(corpus);
    cJSON_Delete(exp);
    xmc_tokenizer_free(t);
}

/* A small hand-made vocabulary makes every rule checkable by eye. */
static const char *small_vocab =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n,\n!\nun\n##aff\n##able\ncafe\n"
    "我\n爱\nhe\n##llo\nnaive\nCafe\n";

static xmc_tokenizer *load_small(const char *config)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s", tu_path("small"));
    tu_system("mkdir -p '%s' && rm -f '%s/tokenizer_config.json'", dir, dir);
    char p[1300];
    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    tu_write(p, small_vocab);
    if (config) {
        snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
        tu_write(p, config);
    }
    xmc_tokenizer *t = NULL;
    xmc_error e = {0};
    assert_int_equal(xmc_tokenizer_load(dir, NULL, &t, &e), XMC_OK);
    return t;
}

static void expect_ids(const xmc_tokenizer *t, const char *text, const int32_t *want, int n)
{
    int32_t got[64];
    int64_t m = xmc_tokenizer_tokenize(t, text, strlen(text), got, 64, -1);
    assert_int_equal(m, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
}

static void test_rules_small_vocab(void **state)
{
    (void)state;
    xmc_tokenizer *t = load_small(NULL);
    assert_int_equal(xmc_tokenizer_token_id(t, "##able"), 11);
    assert_int_equal(xmc_tokenizer_token_id(t, "able"), -1);
    assert_string_equal(xmc_tokenizer_token(t, 5), "hello");
    assert_null(xmc_tokenizer_token(t, 99));
    assert_int_equal(xmc_tokenizer_special_id(t, "cls"), 2);
    /* lower-case, punctuation split, continuation pieces */
    expect_ids(t, "Hello, WORLD!", (int32_t[]){5, 7, 6, 8}, 4);
    expect_ids(t, "unaffable", (int32_t[]){9, 10, 11}, 3);
    /* accents stripped with lower-casing; unknown word -> one [UNK] */
    expect_ids(t, "Café naïve xyz", (int32_t[]){12, 17, 1}, 3);
    /* CJK split per character even without spaces */
    expect_ids(t, "我爱hello", (int32_t[]){13, 14, 5}, 3);
    /* control characters vanish without splitting the word */
    expect_ids(t, "hel\x01lo\xef\xbf\xbd", (int32_t[]){5}, 1);
    /* special tokens written in the text are kept whole */
    expect_ids(t, "hello[SEP]world [MASK]", (int32_t[]){5, 3, 6, 4}, 4);
    /* greedy longest match: "hello" beats "he" + "##llo" */
    expect_ids(t, "hello he", (int32_t[]){5, 15}, 2);
    /* a word of 101 characters is [UNK]; whitespace runs collapse */
    char longw[128];
    memset(longw, 'a', 101);
    longw[101] = 0;
    expect_ids(t, longw, (int32_t[]){1}, 1);
    expect_ids(t, " \t\n ", NULL, 0);
    /* invalid UTF-8 bytes are dropped like U+FFFD */
    expect_ids(t, "hel\xff\xfelo", (int32_t[]){5}, 1);

    /* encode: [CLS] .. [SEP], truncation, padding */
    int32_t ids[8];
    assert_int_equal(xmc_tokenizer_encode(t, "hello world", 11, 8, ids), 4);
    int32_t want[8] = {2, 5, 6, 3, 0, 0, 0, 0};
    assert_memory_equal(ids, want, sizeof want);
    assert_int_equal(xmc_tokenizer_encode(t, "hello world , !", 15, 4, ids), 4);
    int32_t want2[4] = {2, 5, 6, 3};
    assert_memory_equal(ids, want2, sizeof want2);
    assert_int_equal(xmc_tokenizer_encode(t, "", 0, 2, ids), 2);
    /* tokenize reports the full count past cap; stop_after cuts it short */
    assert_int_equal(xmc_tokenizer_tokenize(t, "hello world , !", 15, ids, 1, -1), 4);
    assert_int_equal(xmc_tokenizer_tokenize(t, "hello world , !", 15, ids, 8, 2), 2);
    xmc_tokenizer_free(t);
}

static void test_config_options(void **state)
{
    (void)state;
    /* cased model: no lower-casing, no accent stripping */
    xmc_tokenizer *t = load_small("{\"do_lower_case\": false, \"model_max_length\": 256}");
    assert_int_equal(xmc_tokenizer_model_max_length(t), 256);
    expect_ids(t, "Cafe cafe", (int32_t[]){18, 12}, 2);
    expect_ids(t, "Hello", (int32_t[]){1}, 1);
    expect_ids(t, "café", (int32_t[]){1}, 1);
    uint32_t fp_cased = xmc_tokenizer_fingerprint(t);
    xmc_tokenizer_free(t);
    /* lower-case but keep accents */
    t = load_small("{\"do_lower_case\": true, \"strip_accents\": false, "
                   "\"model_max_length\": 1e30}");
    assert_int_equal(xmc_tokenizer_model_max_length(t), 0);
    expect_ids(t, "CAFE café", (int32_t[]){12, 1}, 2);
    assert_int_not_equal(xmc_tokenizer_fingerprint(t), fp_cased);
    xmc_tokenizer_free(t);
    /* no CJK splitting: the run stays one (unknown) word */
    t = load_small("{\"tokenize_chinese_chars\": false}");
    expect_ids(t, "我爱", (int32_t[]){1}, 1);
    xmc_tokenizer_free(t);
    /* opts override the file */
    xmc_tokenizer_opts o = {1, -1, -1};
    xmc_error e = {0};
    assert_int_equal(xmc_tokenizer_load(tu_path("small/vocab.txt"), &o, &t, &e), XMC_OK);
    expect_ids(t, "CAFE", (int32_t[]){12}, 1);
    xmc_tokenizer_free(t);
}

/* A fast-tokenizer-only directory: the vocabulary and the normalizer
 * options come from tokenizer.json. */
static void test_tokenizer_json_only(void **state)
{
    (void)state;
    tu_system("rm -rf '%s' && mkdir -p '%s'", tu_path("tj"), tu_path("tj"));
    tu_write(tu_path("tj/tokenizer.json"),
             "{\"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": false, "
             "\"strip_accents\": null, \"handle_chinese_chars\": true, \"clean_text\": true},"
             " \"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": "
             "{\"[PAD]\": 0, \"[UNK]\": 1, \"[CLS]\": 2, \"[SEP]\": 3, \"Hello\": 5, "
             "\"[MASK]\": 4, \"##s\": 6}}}");
    xmc_tokenizer *t;
    xmc_error e = {0};
    assert_int_equal(xmc_tokenizer_load(tu_path("tj"), NULL, &t, &e), XMC_OK);
    assert_int_equal(xmc_tokenizer_vocab_size(t), 7);
    expect_ids(t, "Hellos hello", (int32_t[]){5, 6, 1}, 3); /* cased: lowercase off */
    xmc_tokenizer_free(t);
    tu_write(tu_path("tj/tokenizer.json"),
             "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}");
    xmc_error_clear(&e);
    int rc = xmc_tokenizer_load(tu_path("tj"), NULL, &t, &e);
    tu_assert_error(rc, &e, XMC_EUNSUPPORTED, "tokenizer.json", 0);
    tu_write(tu_path("tj/tokenizer.json"),
             "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0, \"b\": 5}}}");
    xmc_error_clear(&e);
    rc = xmc_tokenizer_load(tu_path("tj"), NULL, &t, &e);
    tu_assert_error(rc, &e, XMC_EFORMAT, "tokenizer.json", 0);
}

static void test_errors(void **state)
{
    (void)state;
    xmc_tokenizer *t = (xmc_tokenizer *)1;
    xmc_error e = {0};
    int rc = xmc_tokenizer_load(tu_path("nope"), NULL, &t, &e);
    tu_assert_error(rc, &e, XMC_EIO, "nope/vocab.txt", 0);
    assert_null(t);
    tu_system("mkdir -p '%s'", tu_path("bad"));
    tu_write(tu_path("bad/vocab.txt"), "a\nb\nc\n");
    xmc_error_clear(&e);
    rc = xmc_tokenizer_load(tu_path("bad"), NULL, &t, &e);
    tu_assert_error(rc, &e, XMC_EFORMAT, "bad/vocab.txt", 0);
    tu_write(tu_path("bad/vocab.txt"), small_vocab);
    tu_write(tu_path("bad/tokenizer_config.json"), "{not json");
    xmc_error_clear(&e);
    rc = xmc_tokenizer_load(tu_path("bad"), NULL, &t, &e);
    tu_assert_error(rc, &e, XMC_EFORMAT, "tokenizer_config.json", 0);
    /* allocation failures leave nothing behind */
    tu_system("rm -f '%s'", tu_path("bad/tokenizer_config.json"));
    for (uint64_t k = 1; k < 8; k++) {
        xmc_mem_fail_after(k);
        xmc_error_clear(&e);
        rc = xmc_tokenizer_load(tu_path("bad"), NULL, &t, &e);
        xmc_mem_fail_after(0);
        if (rc == XMC_OK)
            xmc_tokenizer_free(t);
        else
            assert_int_equal(rc, XMC_ENOMEM);
    }
}

/* cJSON runs on xmc_malloc (src/core/json.c): its memory is accounted, and
 * an allocation failing inside a parse is XMC_ENOMEM, never a format error. */
static void test_json_alloc(void **state)
{
    (void)state;
    size_t base = xmc_mem_current();
    cJSON *o = cJSON_CreateObject();
    assert_non_null(o);
    assert_true(xmc_mem_current() > base);
    cJSON_Delete(o);
    assert_int_equal(xmc_mem_current(), base);
    /* both JSON files of a fast-tokenizer directory are parsed */
    tu_system("rm -rf '%s' && mkdir -p '%s'", tu_path("ja"), tu_path("ja"));
    tu_write(tu_path("ja/tokenizer.json"),
             "{\"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": true},"
             " \"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": "
             "{\"[PAD]\": 0, \"[UNK]\": 1, \"[CLS]\": 2, \"[SEP]\": 3, \"[MASK]\": 4, "
             "\"hello\": 5, \"##s\": 6}}}");
    tu_write(tu_path("ja/tokenizer_config.json"),
             "{\"do_lower_case\": true, \"model_max_length\": 128, \"name\": \"x\"}");
    xmc_tokenizer *t;
    xmc_error e = {0};
    int rc = XMC_ENOMEM;
    uint64_t k;
    for (k = 1; k < 1000 && rc != XMC_OK; k++) {
        xmc_mem_fail_after(k);
        xmc_error_clear(&e);
        rc = xmc_tokenizer_load(tu_path("ja"), NULL, &t, &e);
        xmc_mem_fail_after(0);
        if (rc != XMC_OK) {
            assert_int_equal(rc, XMC_ENOMEM);
            assert_int_equal(xmc_mem_current(), base);
        }
    }
    assert_int_equal(rc, XMC_OK);
    assert_true(k > 10); /* the loop went through the cJSON parses */
    assert_int_equal(xmc_tokenizer_model_max_length(t), 128);
    xmc_tokenizer_free(t);
    assert_int_equal(xmc_mem_current(), base);
}

static void test_batch_and_cache(void **state)
{
    (void)state;
    xmc_tokenizer *t = load_small(NULL);
    enum { N = 5000 };
    static char buf[N][96];
    const char *strs[N];
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "%s hello%s world , %d", i % 3 ? "unaffable" : "",
                 i % 7 ? "" : " hello hello hello hello", i);
        strs[i] = buf[i];
    }
    xmc_texts *tx;
    xmc_error e = {0};
    assert_int_equal(xmc_texts_create(strs, N, &tx, &e), XMC_OK);
    xmc_token_ids *a, *b;
    assert_int_equal(xmc_tokenizer_encode_texts(t, tx, 8, &a, &e), XMC_OK);
    assert_int_equal(xmc_tokenizer_encode_strings(t, strs, N, 8, &b, &e), XMC_OK);
    for (int i = 0; i < N; i++) {
        int32_t one[8];
        int32_t l = xmc_tokenizer_encode(t, strs[i], strlen(strs[i]), 8, one);
        assert_int_equal(a->lens[i], l);
        assert_memory_equal(a->ids + (size_t)i * 8, one, sizeof one);
    }
    assert_memory_equal(a->ids, b->ids, (size_t)N * 8 * 4);
    xmc_token_ids_free(b);

    const char *cache = tu_path("ids.tok");
    int hit = -1;
    assert_int_equal(xmc_tokenizer_encode_cached(t, tx, 8, cache, &b, &hit, &e), XMC_OK);
    assert_int_equal(hit, 0);
    xmc_token_ids_free(b);
    assert_int_equal(xmc_tokenizer_encode_cached(t, tx, 8, cache, &b, &hit, &e), XMC_OK);
    assert_int_equal(hit, 1);
    assert_non_null(b->map);
    assert_memory_equal(a->ids, b->ids, (size_t)N * 8 * 4);
    assert_memory_equal(a->lens, b->lens, (size_t)N * 4);
    xmc_token_ids_free(b);
    /* a different max_len is a miss that rewrites the cache */
    assert_int_equal(xmc_tokenizer_encode_cached(t, tx, 6, cache, &b, &hit, &e), XMC_OK);
    assert_int_equal(hit, 0);
    xmc_token_ids_free(b);

    /* damaged caches are refused with a reason */
    assert_int_equal(xmc_token_ids_write(a, cache, &e), XMC_OK);
    tu_system("printf 'X' | dd of='%s' bs=1 seek=100 conv=notrunc 2>/dev/null", cache);
    xmc_error_clear(&e);
    int rc = xmc_token_ids_map(cache, &b, &e);
    tu_assert_error(rc, &e, XMC_ECORRUPT, "ids.tok", 0);
    assert_non_null(strstr(e.msg, "checksum"));
    tu_system("head -c 1000 '%s' > '%s'", tu_path("ids.tok"), tu_path("short.tok"));
    xmc_error_clear(&e);
    rc = xmc_token_ids_map(tu_path("short.tok"), &b, &e);
    tu_assert_error(rc, &e, XMC_ECORRUPT, "short.tok", 0);
    tu_write(tu_path("magic.tok"), "this is not a cache file at all, no it is not, really not");
    xmc_error_clear(&e);
    rc = xmc_token_ids_map(tu_path("magic.tok"), &b, &e);
    tu_assert_error(rc, &e, XMC_ECORRUPT, "magic.tok", 0);
    xmc_error_clear(&e);
    rc = xmc_tokenizer_encode_texts(t, tx, 1, &b, &e);
    assert_int_equal(rc, XMC_EINVAL);

    xmc_token_ids_free(a);
    xmc_texts_free(tx);
    xmc_tokenizer_free(t);
}

/* Throughput on the real vocabulary: not a benchmark, a regression guard
 * that the hash lookup stays fast (~1 us per short text). */
static void test_speed_real(void **state)
{
    (void)state;
    xmc_tokenizer *t = load_real();
    if (!t)
        skip();
    cJSON *corpus = read_json(src_path("tests/data/tokenizer/corpus.json"));
    int n = cJSON_GetArraySize(corpus);
    enum { REP = 40 };
    const char **strs = malloc(sizeof *strs * (size_t)n * REP);
    for (int r = 0; r < REP; r++)
        for (int i = 0; i < n; i++)
            strs[r * n + i] = cJSON_GetObjectItem(cJSON_GetArrayItem(corpus, i), "text")->valuestring;
    xmc_token_ids *ti;
    xmc_error e = {0};
    double t0 = xmc_now();
    assert_int_equal(xmc_tokenizer_encode_strings(t, strs, (int64_t)n * REP, 128, &ti, &e),
                     XMC_OK);
    double dt = xmc_now() - t0;
    fprintf(stderr, "tokenised %d texts in %.3f s (%.0f texts/s)\n", n * REP, dt,
            n * REP / dt);
    xmc_token_ids_free(ti);
    free(strs);
    cJSON_Delete(corpus);
    xmc_tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_parity),       cmocka_unit_test(test_rules_small_vocab),
        cmocka_unit_test(test_config_options),  cmocka_unit_test(test_tokenizer_json_only),
        cmocka_unit_test(test_errors),          cmocka_unit_test(test_json_alloc),
        cmocka_unit_test(test_batch_and_cache), cmocka_unit_test(test_speed_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
