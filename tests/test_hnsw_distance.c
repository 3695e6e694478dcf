/* Distance kernels: every variant this CPU can run against the plain C
 * reference, on random dimensions with ragged tails (1..300, so every
 * remainder mod 8/16/32/64 occurs), fp32 and bf16, misaligned pointers;
 * tolerance abs + rel * |ref|. Also the dispatcher honours XMC_KERNEL. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/distance.h"
#include "testutil.h"

static const char *levels[] = {"ref", "avx2", "avx512", "avx512bf16"};

static void fill(xmc_rng *r, float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = scale * xmc_rng_normal(r);
}

static void check(const char *what, const char *lvl, size_t d, float got, float ref, double atol,
                  double rtol)
{
    double err = fabs((double)got - ref);
    if (!(err <= atol + rtol * fabs((double)ref)))
        fail_msg("%s %s d=%zu: got %.8g, reference %.8g", what, lvl, d, got, ref);
}

static void test_variants_match_reference(void **state)
{
    (void)state;
    xmc_rng r;
    xmc_rng_seed(&r, 5, 0);
    enum { MAXD = 300 };
    /* +1 element so &buf[1] is misaligned for every vector width. */
    float *a = xmc_malloc(sizeof(float) * (MAXD + 1)), *b = xmc_malloc(sizeof(float) * (MAXD + 1));
    uint16_t *ah = xmc_malloc(2 * (MAXD + 1)), *bh = xmc_malloc(2 * (MAXD + 1));
    const xmc_dist_kernels *ref = xmc_dist_kernels_get("ref");
    assert_non_null(ref);
    int ran = 0;
    for (size_t li = 1; li < sizeof levels / sizeof levels[0]; li++) {
        const xmc_dist_kernels *k = xmc_dist_kernels_get(levels[li]);
        if (!k) {
            print_message("skipping %s: not supported by this CPU\n", levels[li]);
            continue;
        }
        assert_string_equal(k->name, levels[li]);
        ran++;
        for (size_t d = 1; d <= MAXD; d += (d < 70 ? 1 : 7)) {
            for (int off = 0; off < 2; off++) {
                float *x = a + off, *y = b + off;
                uint16_t *xh = ah + off, *yh = bh + off;
                fill(&r, x, d, 1.0f);
                fill(&r, y, d, 0.5f);
                for (size_t i = 0; i < d; i++) {
                    xh[i] = xmc_f32_to_bf16(x[i]);
                    yh[i] = xmc_f32_to_bf16(y[i]);
                }
                /* Sums of d terms of size ~1: error ~ d eps, relative to
                 * the magnitude of the terms (sqrt(d)), not of the sum. */
                double at = 1e-5 * d, rt = 1e-5;
                check("dot_f32", levels[li], d, k->dot_f32(x, y, d), ref->dot_f32(x, y, d), at, rt);
                check("l2sq_f32", levels[li], d, k->l2sq_f32(x, y, d), ref->l2sq_f32(x, y, d), at, rt);
                check("cos_f32", levels[li], d, k->cos_f32(x, y, d), ref->cos_f32(x, y, d), 1e-5, 1e-4);
                check("dot_bf16", levels[li], d, k->dot_bf16(xh, yh, d), ref->dot_bf16(xh, yh, d), at, rt);
                check("l2sq_bf16", levels[li], d, k->l2sq_bf16(xh, yh, d), ref->l2sq_bf16(xh, yh, d), at, rt);
                check("cos_bf16", levels[li], d, k->cos_bf16(xh, yh, d), ref->cos_bf16(xh, yh, d), 1e-5, 1e-4);
            }
        }
    }
    print_message("%d SIMD variant(s) checked against the reference\n", ran);
    /* The reference itself, against double precision on known values. */
    float u[5] = {1, 2, 3, 4, 5}, v[5] = {5, 4, 3, 2, 1};
    assert_true(ref->dot_f32(u, v, 5) == 35.0f);
    assert_true(ref->l2sq_f32(u, v, 5) == 40.0f);
    assert_true(fabsf(ref->cos_f32(u, v, 5) - 35.0f / 55.0f) < 1e-6f);
    float z[5] = {0};
    assert_true(ref->cos_f32(u, z, 5) == 0.0f); /* zero vector: 0, not NaN */
    for (size_t li = 0; li < sizeof levels / sizeof levels[0]; li++) {
        const xmc_dist_kernels *k = xmc_dist_kernels_get(levels[li]);
        if (k) {
            assert_true(k->cos_f32(u, z, 5) == 0.0f);
            assert_true(k->dot_f32(u, v, 0) == 0.0f); /* d = 0 */
        }
    }
    xmc_free(a);
    xmc_free(b);
    xmc_free(ah);
    xmc_free(bh);
}

static void test_bf16_rounding(void **state)
{
    (void)state;
    assert_int_equal(xmc_f32_to_bf16(1.0f), 0x3f80);
    /* 1 + 2^-8 is halfway between bf16 1.0 and 1 + 2^-7: ties to even (1.0). */
    assert_int_equal(xmc_f32_to_bf16(1.0f + 1.0f / 256), 0x3f80);
    assert_int_equal(xmc_f32_to_bf16(1.0f + 3.0f / 256), 0x3f82);
    assert_true(isnan(xmc_bf16_to_f32(xmc_f32_to_bf16(NAN))));
    assert_true(xmc_bf16_to_f32(xmc_f32_to_bf16(-2.5f)) == -2.5f);
}

static void test_dispatch_honours_env(void **state)
{
    (void)state;
    setenv("XMC_KERNEL", "ref", 1);
    xmc_cpu_refresh();
    assert_string_equal(xmc_dist_kernels_best()->name, "ref");
    setenv("XMC_KERNEL", "avx2", 1);
    xmc_cpu_refresh();
    const char *n = xmc_dist_kernels_best()->name;
    assert_true(!strcmp(n, "avx2") || !strcmp(n, "ref"));
    unsetenv("XMC_KERNEL");
    xmc_cpu_refresh();
    unsigned f = xmc_cpu_features_hw();
    const char *best = xmc_dist_kernels_best()->name;
    if (f & XMC_CPU_AVX512BF16)
        assert_string_equal(best, "avx512bf16");
    else if (f & XMC_CPU_AVX512)
        assert_string_equal(best, "avx512");
    assert_null(xmc_dist_kernels_get("sse9"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variants_match_reference),
        cmocka_unit_test(test_bf16_rounding),
        cmocka_unit_test(test_dispatch_honours_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
