/* bf16 helpers and the fused-head kernels: every fast variant against its
 * plain C reference on random shapes with ragged tails (abs + rel
 * tolerance), packing layouts against their definitions, rounding modes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/kernels.h"

static int have_bf16(void) { return (xmc_cpu_features_hw() & XMC_CPU_AVX512BF16) != 0; }
static int have_512(void) { return (xmc_cpu_features_hw() & XMC_CPU_AVX512) != 0; }

static void test_rounding(void **state)
{
    (void)state;
    /* RNE: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 -> even (1) */
    assert_int_equal(xmc_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(xmc_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    assert_int_equal(xmc_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    assert_int_equal(xmc_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82); /* tie -> even up */
    assert_true(isnan(xmc_bf16_to_f32(xmc_f32_to_bf16(NAN))));
    assert_true(isinf(xmc_bf16_to_f32(xmc_f32_to_bf16(INFINITY))));
    assert_true(xmc_bf16_to_f32(xmc_f32_to_bf16(-2.5f)) == -2.5f);
    /* stochastic rounding: exact values stay; the mean is unbiased */
    assert_int_equal(xmc_f32_to_bf16_sr(1.5f, 0xffff), 0x3fc0);
    assert_true(isnan(xmc_bf16_to_f32(xmc_f32_to_bf16_sr(NAN, 0x1234))));
    assert_true(isinf(xmc_bf16_to_f32(xmc_f32_to_bf16_sr(-INFINITY, 0xffff))));
    float x = 1.0f + 0x1p-9f + 0x1p-11f; /* 0.3125 of the way from 1 to next */
    double sum = 0;
    int up = 0, n = 100000;
    for (int i = 0; i < n; i++) {
        uint16_t b = xmc_f32_to_bf16_sr(x, xmc_hash32((uint32_t)i));
        sum += xmc_bf16_to_f32(b);
        up += b != 0x3f80;
    }
    assert_true(fabs(sum / n - x) < 2e-5);
    assert_true(fabs((double)up / n - 0.3125) < 0.01);
    /* negative values round toward -inf with the same probability */
    assert_true(xmc_bf16_to_f32(xmc_f32_to_bf16_sr(-x, 0xffff)) < -x);
    assert_true(xmc_bf16_to_f32(xmc_f32_to_bf16_sr(-x, 0)) > -x);
}

static void fill_bf16(uint16_t *a, size_t n, xmc_rng *r)
{
    for (size_t i = 0; i < n; i++)
        a[i] = xmc_f32_to_bf16(xmc_rng_normal(r));
}

/* element (i, j) of B as packed, via the layout definition */
static float panel_at(const uint32_t *bp, int kp, int kk, int j)
{
    uint32_t w = bp[(size_t)(j / 16) * kp * 16 + (size_t)(kk / 2) * 16 + j % 16];
    return xmc_bf16_to_f32((uint16_t)(kk % 2 ? w >> 16 : w));
}

static void test_packing(void **state)
{
    (void)state;
    xmc_rng r;
    xmc_rng_seed(&r, 1, 0);
    int shapes[][2] = {{1, 1}, {3, 5}, {17, 33}, {16, 32}, {40, 7}, {33, 64}, {5, 2}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int n = shapes[s][0], k = shapes[s][1], kp = (k + 1) / 2;
        size_t words = xmc_bf16_panel_words(n, kp);
        uint16_t *M = malloc(sizeof *M * (size_t)(n * (k + 3)));
        uint32_t *bp = malloc(words * 4);
        fill_bf16(M, (size_t)(n * (k + 3)), &r);
        /* pack_bt: B = M^T, M n x k with stride k+3 */
        xmc_bf16_pack_bt(M, k + 3, n, k, bp);
        if (have_512()) {
            /* the fast variant needs aligned pairs: even k and stride */
            uint32_t *bq = malloc(words * 4);
            int64_t ld = (k + 3) & ~1;
            xmc_bf16_pack_bt(M, ld, n, k & ~1, bp);
            xmc_bf16_pack_bt_avx512(M, ld, n, k & ~1, bq);
            assert_memory_equal(bp, bq, xmc_bf16_panel_words(n, (k & ~1) / 2) * 4);
            xmc_bf16_pack_bt_avx512(M, k + 3, n, k, bq); /* unaligned: falls back */
            xmc_bf16_pack_bt(M, k + 3, n, k, bp);
            assert_memory_equal(bp, bq, words * 4);
            free(bq);
        }
        for (int j = 0; j < (n + 15) / 16 * 16; j++)
            for (int kk = 0; kk < 2 * kp; kk++) {
                float want = (j < n && kk < k) ? xmc_bf16_to_f32(M[(size_t)j * (k + 3) + kk]) : 0.0f;
                assert_true(panel_at(bp, kp, kk, j) == want);
            }
        free(bp);
        /* pack_b: B = M, M k x n (reuse buffer as k rows of stride n+3) */
        uint16_t *M2 = malloc(sizeof *M2 * (size_t)(k * (n + 3)));
        float *F2 = malloc(sizeof *F2 * (size_t)(k * (n + 3)));
        fill_bf16(M2, (size_t)(k * (n + 3)), &r);
        for (int i = 0; i < k * (n + 3); i++)
            F2[i] = xmc_bf16_to_f32(M2[i]);
        bp = malloc(xmc_bf16_panel_words(n, kp) * 4);
        uint32_t *bp2 = malloc(xmc_bf16_panel_words(n, kp) * 4);
        xmc_bf16_pack_b(M2, n + 3, k, n, bp);
        xmc_bf16_pack_b_f32(F2, n + 3, k, n, bp2);
        assert_memory_equal(bp, bp2, xmc_bf16_panel_words(n, kp) * 4);
        if (have_512()) {
            xmc_bf16_pack_b_avx512(M2, n + 3, k, n, bp2);
            assert_memory_equal(bp, bp2, xmc_bf16_panel_words(n, kp) * 4);
        }
        for (int j = 0; j < (n + 15) / 16 * 16; j++)
            for (int kk = 0; kk < 2 * kp; kk++) {
                float want = (j < n && kk < k) ? F2[(size_t)kk * (n + 3) + j] : 0.0f;
                assert_true(panel_at(bp, kp, kk, j) == want);
            }
        free(M), free(M2), free(F2), free(bp), free(bp2);
    }
}

static void gemm_case(xmc_k_bf16_gemm_fn fn, int m, int n, int kp, int layout, int accumulate,
                      xmc_rng *r)
{
    int64_t ldc = n + (int64_t)xmc_rng_below(r, 5);
    /* A: row-major pairs (rsa = kp + pad, csa = 1) or interleaved (1, m + pad) */
    int64_t rsa = layout ? 1 : kp + 2 * (int64_t)xmc_rng_below(r, 2), csa = layout ? m + 3 : 1;
    size_t asz = layout ? (size_t)(kp * csa) : (size_t)(m * rsa);
    uint32_t *a = malloc(asz * 4);
    for (size_t i = 0; i < asz; i++)
        a[i] = (uint32_t)xmc_f32_to_bf16(xmc_rng_normal(r)) |
               ((uint32_t)xmc_f32_to_bf16(xmc_rng_normal(r)) << 16);
    int k = 2 * kp;
    uint16_t *Bm = malloc(sizeof *Bm * (size_t)(k * n));
    fill_bf16(Bm, (size_t)(k * n), r);
    uint32_t *bp = malloc(xmc_bf16_panel_words(n, kp) * 4);
    xmc_bf16_pack_b(Bm, n, k, n, bp);
    float *c0 = malloc(sizeof(float) * (size_t)(m * ldc)), *c1 = malloc(sizeof(float) * (size_t)(m * ldc));
    for (int i = 0; i < m * ldc; i++)
        c0[i] = c1[i] = xmc_rng_normal(r);
    xmc_k_bf16_gemm_ref(m, n, kp, a, rsa, csa, bp, c0, ldc, accumulate);
    fn(m, n, kp, a, rsa, csa, bp, c1, ldc, accumulate);
    /* sums of ~2k products of N(0,1): error scales with sqrt(k) */
    double err = tu_rel_err(c1, c0, (size_t)(m * ldc), 1e-5 * sqrt((double)k), 1e-5);
    if (err > 1.0)
        print_error("m %d n %d kp %d layout %d acc %d: err %g\n", m, n, kp, layout, accumulate,
                    err);
    assert_true(err <= 1.0);
    /* padding columns between n and ldc untouched */
    for (int i = 0; i < m; i++)
        for (int64_t j = n; j < ldc; j++)
            assert_true(c0[i * ldc + j] == c1[i * ldc + j]);
    free(a), free(Bm), free(bp), free(c0), free(c1);
}

static void test_gemm_variants(void **state)
{
    (void)state;
    if (!have_bf16())
        skip();
    xmc_rng r;
    xmc_rng_seed(&r, 2, 0);
    for (int trial = 0; trial < 60; trial++) {
        int m = 1 + (int)xmc_rng_below(&r, 20), n = 1 + (int)xmc_rng_below(&r, 90);
        int kp = 1 + (int)xmc_rng_below(&r, trial < 50 ? 60 : 300); /* > KC too */
        gemm_case(xmc_k_bf16_gemm_avx512, m, n, kp, (int)xmc_rng_below(&r, 2),
                  (int)xmc_rng_below(&r, 2), &r);
    }
}

static void test_gemm_amx(void **state)
{
    (void)state;
    if (!(xmc_cpu_features_hw() & XMC_CPU_AMXBF16))
        skip();
    xmc_rng r;
    xmc_rng_seed(&r, 5, 0);
    for (int trial = 0; trial < 30; trial++) {
        /* tile-friendly shapes, and ragged ones that take the fallback */
        int tile = trial < 20;
        int m = tile ? 32 * (1 + (int)xmc_rng_below(&r, 4)) : 1 + (int)xmc_rng_below(&r, 70);
        int n = tile ? 32 * (1 + (int)xmc_rng_below(&r, 4)) : 1 + (int)xmc_rng_below(&r, 70);
        int kp = tile ? 16 * (1 + (int)xmc_rng_below(&r, 20)) : 1 + (int)xmc_rng_below(&r, 40);
        gemm_case(xmc_k_bf16_gemm_amx, m, n, kp, tile ? 0 : (int)xmc_rng_below(&r, 2),
                  (int)xmc_rng_below(&r, 2), &r);
    }
}

static void test_split_variants(void **state)
{
    (void)state;
    if (!have_bf16())
        skip();
    xmc_rng r;
    xmc_rng_seed(&r, 3, 0);
    for (int trial = 0; trial < 40; trial++) {
        int m = 1 + (int)xmc_rng_below(&r, 13), n = 1 + (int)xmc_rng_below(&r, 100);
        int64_t ldg = n + (int64_t)xmc_rng_below(&r, 4);
        int64_t ldr = ((n + 1) & ~1) + 2 * (int64_t)xmc_rng_below(&r, 20);
        float *g = malloc(sizeof *g * (size_t)(m * ldg));
        for (int i = 0; i < m * ldg; i++)
            g[i] = xmc_rng_normal(&r) * 10.0f;
        size_t nr = (size_t)(m * ldr), np = xmc_bf16_panel_words(n, (m + 1) / 2);
        uint16_t *r0 = malloc(nr * 2), *r1 = malloc(nr * 2);
        uint32_t *p0 = malloc(np * 4), *p1 = malloc(np * 4);
        memset(r0, 0xab, nr * 2), memset(r1, 0xcd, nr * 2);
        memset(p0, 0xab, np * 4), memset(p1, 0xcd, np * 4);
        xmc_k_bf16_split_ref(g, m, n, ldg, r0, ldr, p0);
        xmc_k_bf16_split_avx512(g, m, n, ldg, r1, ldr, p1);
        /* both round to nearest even: bit-identical, padding zeroed */
        assert_memory_equal(r0, r1, nr * 2);
        assert_memory_equal(p0, p1, np * 4);
        /* the panel output is G packed as a k x n operand (k = m) */
        for (int j = 0; j < n; j++)
            for (int kk = 0; kk < m; kk++)
                assert_true(panel_at(p0, (m + 1) / 2, kk, j) ==
                            xmc_bf16_to_f32(xmc_f32_to_bf16(g[(size_t)kk * ldg + j])));
        free(g), free(r0), free(r1), free(p0), free(p1);
    }
}

static void test_grad0_variants(void **state)
{
    (void)state;
    if (!have_512())
        skip();
    xmc_rng r;
    xmc_rng_seed(&r, 4, 0);
    for (int loss = 0; loss < 2; loss++) {
        for (int trial = 0; trial < 20; trial++) {
            size_t n = 1 + xmc_rng_below(&r, 200);
            float *a = malloc(n * 4), *b = malloc(n * 4);
            for (size_t i = 0; i < n; i++)
                a[i] = b[i] = xmc_rng_normal(&r) * (trial < 10 ? 3.0f : 40.0f);
            if (n > 3) {
                a[0] = b[0] = 100.0f;
                a[1] = b[1] = -100.0f;
                a[2] = b[2] = 0.0f;
            }
            xmc_k_ova_grad0_ref(a, n, loss);
            xmc_k_ova_grad0_avx512(b, n, loss);
            assert_true(tu_rel_err(b, a, n, 1e-7, 1e-6) <= 1.0);
            free(a), free(b);
        }
    }
}

static void test_sgdm_variants(void **state)
{
    (void)state;
    if (!have_512())
        skip();
    xmc_rng r;
    xmc_rng_seed(&r, 6, 0);
    for (int trial = 0; trial < 20; trial++) {
        size_t n = 1 + xmc_rng_below(&r, 300);
        /* element indices near 2^32 cross the high word inside a vector */
        uint64_t e0 = trial % 4 == 3 ? (1ull << 32) - 7 : xmc_rng_below(&r, 1u << 30);
        uint16_t *w0 = malloc(n * 2), *m0 = malloc(n * 2), *w1 = malloc(n * 2), *m1 = malloc(n * 2);
        float *dw = malloc(n * 4);
        for (size_t i = 0; i < n; i++) {
            w0[i] = w1[i] = xmc_f32_to_bf16(xmc_rng_normal(&r));
            m0[i] = m1[i] = xmc_f32_to_bf16(xmc_rng_normal(&r));
            dw[i] = xmc_rng_normal(&r);
        }
        if (n > 2) {
            w0[0] = w1[0] = xmc_f32_to_bf16(NAN);
            m0[1] = m1[1] = xmc_f32_to_bf16(INFINITY);
        }
        uint32_t key = (uint32_t)xmc_rng_u32(&r);
        xmc_k_sgdm_bf16_ref(w0, m0, dw, n, 0.1f, 0.9f, 0.01f, key, e0);
        xmc_k_sgdm_bf16_avx512(w1, m1, dw, n, 0.1f, 0.9f, 0.01f, key, e0);
        /* same fp32 operations and the same random bits: identical */
        assert_memory_equal(w0, w1, n * 2);
        assert_memory_equal(m0, m1, n * 2);
        free(w0), free(m0), free(w1), free(m1), free(dw);
    }
    /* unbiased: many steps of an update below half an ulp still move w */
    uint16_t w = xmc_f32_to_bf16(1.0f), m = 0;
    float dw = 1.0f;
    for (int s = 0; s < 1000; s++) {
        m = 0;
        xmc_k_sgdm_bf16_ref(&w, &m, &dw, 1, 1e-4f, 0.0f, 0.0f, 1234u + (uint32_t)s, 0);
    }
    /* expected 1 - 1000 * 1e-4 = 0.9 */
    /* (std of the walk ~0.02; round-to-nearest would stay at 1) */
    assert_true(fabsf(xmc_bf16_to_f32(w) - 0.9f) < 0.06f);
}

static void test_transpose_variants(void **state)
{
    (void)state;
    if (!have_512())
        skip();
    xmc_rng r;
    xmc_rng_seed(&r, 7, 0);
    for (int trial = 0; trial < 20; trial++) {
        int rows = 1 + (int)xmc_rng_below(&r, 70), cols = 1 + (int)xmc_rng_below(&r, 70);
        if (trial < 3)
            rows = cols = 16 * (trial + 1);
        int64_t ldi = cols + (int64_t)xmc_rng_below(&r, 3), ldo = rows + (int64_t)xmc_rng_below(&r, 3);
        float *in = malloc(sizeof *in * (size_t)(rows * ldi));
        float *o0 = calloc((size_t)(cols * ldo), sizeof *o0), *o1 = calloc((size_t)(cols * ldo), sizeof *o1);
        for (int i = 0; i < rows * ldi; i++)
            in[i] = (float)i;
        xmc_k_transpose_ref(in, rows, cols, ldi, o0, ldo);
        xmc_k_transpose_avx512(in, rows, cols, ldi, o1, ldo);
        assert_memory_equal(o0, o1, sizeof *o0 * (size_t)(cols * ldo));
        assert_true(o0[(size_t)(cols - 1) * ldo + rows - 1] == in[(size_t)(rows - 1) * ldi + cols - 1]);
        free(in), free(o0), free(o1);
    }
}

static void test_dispatch(void **state)
{
    (void)state;
    setenv("XMC_KERNEL", "ref", 1);
    xmc_cpu_refresh();
    assert_null(xmc_k_bf16_gemm());
    assert_true(xmc_k_ova_grad0() == xmc_k_ova_grad0_ref);
    assert_string_equal(xmc_cpu_level_name(), "ref");
    unsetenv("XMC_KERNEL");
    xmc_cpu_refresh();
    setenv("XMC_KERNEL", "avx512bf16", 1);
    xmc_cpu_refresh();
    if (have_bf16())
        assert_true(xmc_k_bf16_gemm() == xmc_k_bf16_gemm_avx512);
    unsetenv("XMC_KERNEL");
    xmc_cpu_refresh();
    if (xmc_cpu_features_hw() & XMC_CPU_AMXBF16)
        assert_true(xmc_k_bf16_gemm() == xmc_k_bf16_gemm_amx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_packing),
        cmocka_unit_test(test_gemm_variants),
        cmocka_unit_test(test_gemm_amx),
        cmocka_unit_test(test_split_variants),
        cmocka_unit_test(test_grad0_variants),
        cmocka_unit_test(test_sgdm_variants),
        cmocka_unit_test(test_transpose_variants),
        cmocka_unit_test(test_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
