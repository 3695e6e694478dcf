/* Fixed fan-in kernels: every variant against the plain C reference on
 * random shapes with ragged tails (n not a multiple of 16 or 64), several
 * fan-ins and row strides; the sigmoid / squared-hinge activation including
 * extreme inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "head/ffi_internal.h"
#include "testutil.h"
#include "xmc/kernels.h"

static const ffi_kernels *variants(int *n)
{
    static const ffi_kernels *v[2];
    *n = 0;
    if (xmc_cpu_features_hw() & XMC_CPU_AVX512)
        v[(*n)++] = &ffi_kernels_avx512;
    return v[0];
}

static void fill(float *a, size_t n, xmc_rng *r)
{
    for (size_t i = 0; i < n; i++)
        a[i] = xmc_rng_normal(r);
}

static void test_fwd_bwd_variants(void **state)
{
    (void)state;
    int nv;
    const ffi_kernels *v = variants(&nv);
    if (!nv)
        skip();
    xmc_rng r;
    xmc_rng_seed(&r, 1, 0);
    const int ns[] = {1, 5, 15, 16, 17, 31, 33, 48, 63, 64, 65, 100, 127, 128, 130, 200};
    const int Fs[] = {1, 3, 17, 64};
    const int d = 70;
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof Fs / sizeof Fs[0]; b++) {
            int n = ns[a], F = Fs[b];
            int64_t ld = n + (int)(a % 3); /* strides other than n too */
            float *X = malloc((size_t)d * ld * 4), *D1 = malloc((size_t)d * ld * 4);
            float *D2 = malloc((size_t)d * ld * 4);
            float w[64], g[256], z1[256], z2[256], gw1[64], gw2[64];
            int32_t idx[64];
            fill(X, (size_t)d * ld, &r);
            fill(D1, (size_t)d * ld, &r);
            memcpy(D2, D1, (size_t)d * ld * 4);
            fill(w, (size_t)F, &r);
            fill(g, (size_t)n, &r);
            fill(gw1, (size_t)F, &r);
            memcpy(gw2, gw1, (size_t)F * 4);
            for (int k = 0; k < F; k++) /* distinct, increasing */
                idx[k] = k * (d / F) + (int)xmc_rng_below(&r, (uint64_t)(d / F));
            /* Guard value past n: kernels must not write beyond the tile. */
            z1[n] = z2[n] = 12345.0f;
            ffi_fwd_ref(X, ld, idx, w, F, 0.25f, n, z1);
            v->fwd(X, ld, idx, w, F, 0.25f, n, z2);
            assert_true(tu_rel_err(z2, z1, (size_t)n, 1e-5, 1e-5) <= 1);
            assert_true(z2[n] == 12345.0f);
            ffi_bwd_ref(X, D1, ld, idx, w, F, g, n, gw1);
            v->bwd(X, D2, ld, idx, w, F, g, n, gw2);
            assert_true(tu_rel_err(gw2, gw1, (size_t)F, 1e-4, 1e-5) <= 1);
            assert_true(tu_rel_err(D2, D1, (size_t)d * ld, 1e-5, 1e-5) <= 1);
            /* D NULL: gradient of W only. */
            memcpy(gw2, gw1, (size_t)F * 4);
            ffi_bwd_ref(X, NULL, ld, idx, w, F, g, n, gw1);
            v->bwd(X, NULL, ld, idx, w, F, g, n, gw2);
            assert_true(tu_rel_err(gw2, gw1, (size_t)F, 1e-4, 1e-5) <= 1);
            free(X);
            free(D1);
            free(D2);
        }
}

static void test_act_variants(void **state)
{
    (void)state;
    int nv;
    const ffi_kernels *v = variants(&nv);
    if (!nv)
        skip();
    xmc_rng r;
    xmc_rng_seed(&r, 2, 0);
    float z[300], g1[300], g2[300];
    for (int i = 0; i < 300; i++)
        z[i] = 8.0f * xmc_rng_normal(&r);
    const float extreme[] = {0.0f, -0.0f, 1.0f, -1.0f, 88.0f, -88.0f, 100.0f, -100.0f,
                             1e4f, -1e4f, 1e30f, -1e30f, INFINITY, -INFINITY, 1e-8f, -1e-8f};
    memcpy(z, extreme, sizeof extreme);
    const size_t ns[] = {1, 15, 16, 17, 299, 300};
    for (int loss = 0; loss < 2; loss++)
        for (size_t a = 0; a < 6; a++) {
            size_t n = ns[a];
            ffi_act_ref(z, g1, n, loss);
            v->act(z, g2, n, loss);
            for (size_t i = 0; i < n; i++) {
                if (g2[i] == g1[i]) /* covers +-inf */
                    continue;
                double e = fabs((double)g2[i] - g1[i]);
                if (!(e <= 1e-6 * (1 + fabs(g1[i]))))
                    fail_msg("loss %d z=%g: ref %.9g, variant %.9g", loss, z[i], g1[i], g2[i]);
            }
            /* In place. */
            float zz[300];
            memcpy(zz, z, n * 4);
            v->act(zz, zz, n, loss);
            assert_memory_equal(zz, g2, n * 4);
        }
}

/* XMC_KERNEL=ref selects the reference table. */
static void test_dispatch(void **state)
{
    (void)state;
    setenv("XMC_KERNEL", "ref", 1);
    xmc_cpu_refresh();
    assert_ptr_equal(ffi_kernels_best(), &ffi_kernels_ref);
    unsetenv("XMC_KERNEL");
    xmc_cpu_refresh();
    if (xmc_cpu_features() & XMC_CPU_AVX512)
        assert_ptr_equal(ffi_kernels_best(), &ffi_kernels_avx512);
}

int main(void)
{
    /* Sleep, not spin, at OpenMP barriers: on a shared, oversubscribed machine
     * a spinning thread waits for a descheduled partner (7.7 s vs 0.4 s for
     * this program under ASan). Must precede the first OpenMP call. */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fwd_bwd_variants),
        cmocka_unit_test(test_act_variants),
        cmocka_unit_test(test_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
