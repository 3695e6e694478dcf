/* Distance kernels: plain C references and the run-time choice of variant.
 *
 * The references are the oracle the SIMD variants are tested against
 * (tests/test_hnsw_distance.c) and the fallback on CPUs without AVX2. They
 * accumulate in float like the SIMD code, in one sequential chain, so
 * variants differ from them only by summation order (and, for dpbf16, by the
 * hardware's flush of denormals to zero).
 */
#include "kernels/distance.h"

#include <math.h>
#include <string.h>

#include "xmc/kernels.h"

static float dot_f32_ref(const void *a_, const void *b_, size_t d)
{
    const float *a = a_, *b = b_;
    float s = 0.0f;
    for (size_t i = 0; i < d; i++)
        s += a[i] * b[i];
    return s;
}

static float l2sq_f32_ref(const void *a_, const void *b_, size_t d)
{
    const float *a = a_, *b = b_;
    float s = 0.0f;
    for (size_t i = 0; i < d; i++) {
        float t = a[i] - b[i];
        s += t * t;
    }
    return s;
}

/* Cosine of two unnormalised vectors; 0 when either is zero. */
static float cos_f32_ref(const void *a_, const void *b_, size_t d)
{
    const float *a = a_, *b = b_;
    float ab = 0.0f, aa = 0.0f, bb = 0.0f;
    for (size_t i = 0; i < d; i++) {
        ab += a[i] * b[i];
        aa += a[i] * a[i];
        bb += b[i] * b[i];
    }
    return aa > 0.0f && bb > 0.0f ? ab / sqrtf(aa * bb) : 0.0f;
}

static float dot_bf16_ref(const void *a_, const void *b_, size_t d)
{
    const uint16_t *a = a_, *b = b_;
    float s = 0.0f;
    for (size_t i = 0; i < d; i++)
        s += xmc_bf16_to_f32(a[i]) * xmc_bf16_to_f32(b[i]);
    return s;
}

static float l2sq_bf16_ref(const void *a_, const void *b_, size_t d)
{
    const uint16_t *a = a_, *b = b_;
    float s = 0.0f;
    for (size_t i = 0; i < d; i++) {
        float t = xmc_bf16_to_f32(a[i]) - xmc_bf16_to_f32(b[i]);
        s += t * t;
    }
    return s;
}

static float cos_bf16_ref(const void *a_, const void *b_, size_t d)
{
    const uint16_t *a = a_, *b = b_;
    float ab = 0.0f, aa = 0.0f, bb = 0.0f;
    for (size_t i = 0; i < d; i++) {
        float x = xmc_bf16_to_f32(a[i]), y = xmc_bf16_to_f32(b[i]);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    return aa > 0.0f && bb > 0.0f ? ab / sqrtf(aa * bb) : 0.0f;
}

const xmc_dist_kernels xmc_dist_ref = {
    dot_f32_ref, l2sq_f32_ref, cos_f32_ref, dot_bf16_ref, l2sq_bf16_ref, cos_bf16_ref, "ref",
};

const xmc_dist_kernels *xmc_dist_kernels_best(void)
{
    unsigned f = xmc_cpu_features();
    if (f & XMC_CPU_AVX512BF16)
        return &xmc_dist_avx512bf16;
    if (f & XMC_CPU_AVX512)
        return &xmc_dist_avx512;
    if (f & XMC_CPU_AVX2)
        return &xmc_dist_avx2;
    return &xmc_dist_ref;
}

const xmc_dist_kernels *xmc_dist_kernels_get(const char *level)
{
    unsigned f = xmc_cpu_features_hw();
    if (!strcmp(level, "ref"))
        return &xmc_dist_ref;
    if (!strcmp(level, "avx2"))
        return (f & XMC_CPU_AVX2) ? &xmc_dist_avx2 : NULL;
    if (!strcmp(level, "avx512"))
        return (f & XMC_CPU_AVX512) ? &xmc_dist_avx512 : NULL;
    if (!strcmp(level, "avx512bf16"))
        return (f & XMC_CPU_AVX512BF16) ? &xmc_dist_avx512bf16 : NULL;
    return NULL;
}
