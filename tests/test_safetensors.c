/* safetensors reader: a valid file in every float dtype (values checked
 * bit for bit, including F16 subnormals, Inf and NaN), lookup, and each
 * malformed header rejected with the file name and the reason. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/safetensors.h"

/* header JSON + payload -> a safetensors image in buf; returns its size */
static size_t build(unsigned char *buf, const char *json, const void *payload, size_t plen)
{
    uint64_t n = strlen(json);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, json, n);
    memcpy(buf + 8 + n, payload, plen);
    return 8 + n + plen;
}

static void test_valid(void **state)
{
    (void)state;
    unsigned char payload[64];
    float f[3] = {1.5f, -2.0f, 3.25f};
    memcpy(payload, f, 12);
    /* F16: 1.0, -2.0, smallest subnormal, +Inf; BF16: 1.0, -0.5 */
    uint16_t h[4] = {0x3C00, 0xC000, 0x0001, 0x7C00};
    memcpy(payload + 12, h, 8);
    uint16_t bf[2] = {0x3F80, 0xBF00};
    memcpy(payload + 20, bf, 4);
    int64_t iv[1] = {42};
    memcpy(payload + 24, iv, 8);
    const char *json =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"b.f16\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[12,20]},"
        "\"a.f32\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
        "\"c.bf16\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[20,24]},"
        "\"d.i64\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[24,32]},"
        "\"e.empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[32,32]}}";
    unsigned char buf[1024];
    size_t n = build(buf, json, payload, 32);
    const char *path = tu_path("ok.safetensors");
    FILE *fp = fopen(path, "wb");
    fwrite(buf, 1, n, fp);
    fclose(fp);
    xmc_safetensors *st;
    xmc_error e = {0};
    assert_int_equal(xmc_safetensors_open(path, &st, &e), XMC_OK);
    assert_int_equal(xmc_safetensors_count(st), 5);
    assert_string_equal(xmc_safetensors_get(st, 0)->name, "a.f32"); /* sorted by name */
    assert_null(xmc_safetensors_find(st, "zzz"));
    const xmc_st_tensor *t = xmc_safetensors_find(st, "a.f32");
    float out[8];
    assert_int_equal(xmc_safetensors_to_f32(st, t, out, &e), XMC_OK);
    assert_memory_equal(out, f, 12);
    t = xmc_safetensors_find(st, "b.f16");
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[1], 2);
    assert_int_equal(xmc_safetensors_to_f32(st, t, out, &e), XMC_OK);
    assert_true(out[0] == 1.0f && out[1] == -2.0f);
    assert_true(out[2] == ldexpf(1.0f, -24));
    assert_true(isinf(out[3]) && out[3] > 0);
    assert_true(isnan(xmc_st_f16_to_f32(0x7E00)));
    assert_true(xmc_st_f16_to_f32(0x8000) == 0.0f && signbit(xmc_st_f16_to_f32(0x8000)));
    assert_true(xmc_st_f16_to_f32(0x7BFF) == 65504.0f);
    assert_true(xmc_st_f16_to_f32(0x03FF) == ldexpf(1023.0f, -24)); /* largest subnormal */
    t = xmc_safetensors_find(st, "c.bf16");
    assert_int_equal(xmc_safetensors_to_f32(st, t, out, &e), XMC_OK);
    assert_true(out[0] == 1.0f && out[1] == -0.5f);
    t = xmc_safetensors_find(st, "d.i64");
    assert_int_equal(t->dtype, XMC_ST_I64);
    int rc = xmc_safetensors_to_f32(st, t, out, &e);
    tu_assert_error(rc, &e, XMC_EUNSUPPORTED, "ok.safetensors", 0);
    assert_non_null(strstr(e.msg, "I64"));
    assert_int_equal(xmc_safetensors_find(st, "e.empty")->numel, 0);
    xmc_safetensors_close(st);
    xmc_safetensors_close(NULL);
}

static void expect_bad(const char *json, size_t plen, int code, const char *what)
{
    unsigned char payload[256] = {0};
    unsigned char buf[2048];
    size_t n = build(buf, json, payload, plen);
    xmc_safetensors *st = (xmc_safetensors *)1;
    xmc_error e = {0};
    int rc = xmc_safetensors_open_buffer(buf, n, "bad.safetensors", &st, &e);
    if (rc != code || !strstr(e.msg, what))
        fail_msg("json %s: rc %d (want %d), msg '%s' (want '%s')", json, rc, code, e.msg, what);
    assert_null(st);
    assert_non_null(strstr(e.path, "bad.safetensors"));
}

static void test_malformed(void **state)
{
    (void)state;
    expect_bad("[1,2]", 0, XMC_EFORMAT, "not a JSON object");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]", 0, XMC_EFORMAT, "not a JSON object");
    expect_bad("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, XMC_EFORMAT,
               "unknown dtype 'Q4'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
               XMC_ECORRUPT, "does not match");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
               XMC_ECORRUPT, "past the data");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               12, XMC_ECORRUPT, "overlap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, XMC_EFORMAT, "appears twice");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
               XMC_EFORMAT, "not a valid size");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
               XMC_EFORMAT, "not a valid size");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
               "\"data_offsets\":[0,4]}}",
               4, XMC_EFORMAT, "not a valid size");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
               XMC_EFORMAT, "begin <= end");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
               "\"data_offsets\":[0,4]}}",
               4, XMC_EFORMAT, "dimensions");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":\"x\",\"data_offsets\":[0,4]}}", 4,
               XMC_EFORMAT, "array shape");
    expect_bad("{\"a\":5}", 0, XMC_EFORMAT, "expected an object");
    expect_bad("{\"__metadata__\":3}", 0, XMC_EFORMAT, "__metadata__");

    /* too short for the length, and a length past the end */
    xmc_safetensors *st;
    xmc_error e = {0};
    unsigned char tiny[4] = {1, 0, 0, 0};
    int rc = xmc_safetensors_open_buffer(tiny, 4, "short.safetensors", &st, &e);
    tu_assert_error(rc, &e, XMC_ECORRUPT, "short.safetensors", 0);
    unsigned char big[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    xmc_error_clear(&e);
    rc = xmc_safetensors_open_buffer(big, 10, "long.safetensors", &st, &e);
    tu_assert_error(rc, &e, XMC_ECORRUPT, "long.safetensors", 0);
    assert_non_null(strstr(e.msg, "exceeds"));
    xmc_error_clear(&e);
    rc = xmc_safetensors_open(tu_path("missing.safetensors"), &st, &e);
    tu_assert_error(rc, &e, XMC_EIO, "missing.safetensors", 0);
    /* an empty header object is a valid, empty file */
    unsigned char empty[10] = {2, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    assert_int_equal(xmc_safetensors_open_buffer(empty, 10, "e", &st, &e), XMC_OK);
    assert_int_equal(xmc_safetensors_count(st), 0);
    xmc_safetensors_close(st);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    const char *json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    unsigned char buf[256], payload[4] = {0};
    size_t n = build(buf, json, payload, 4);
    for (uint64_t k = 1; k < 6; k++) {
        xmc_safetensors *st = NULL;
        xmc_error e = {0};
        xmc_mem_fail_after(k);
        int rc = xmc_safetensors_open_buffer(buf, n, "m", &st, &e);
        xmc_mem_fail_after(0);
        if (rc == XMC_OK)
            xmc_safetensors_close(st);
        else
            assert_int_equal(rc, XMC_ENOMEM);
    }
}

/* The Python-written fixture: every tensor of the tiny BERT is listed. */
static void test_fixture(void **state)
{
    (void)state;
    char p[1200];
    const char *src = getenv("XMC_SOURCE_DIR");
    snprintf(p, sizeof p, "%s/tests/data/bert/bert_bf16/model.safetensors", src ? src : ".");
    xmc_safetensors *st;
    xmc_error e = {0};
    assert_int_equal(xmc_safetensors_open(p, &st, &e), XMC_OK);
    const xmc_st_tensor *t = xmc_safetensors_find(st, "bert.embeddings.word_embeddings.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, XMC_ST_BF16);
    assert_int_equal(t->shape[0], 100);
    assert_int_equal(t->shape[1], 32);
    assert_non_null(xmc_safetensors_find(st, "bert.embeddings.position_ids"));
    xmc_safetensors_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
