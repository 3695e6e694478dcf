/* Distance kernels, AVX2 + FMA variants (built with -mavx2 -mfma; chosen at
 * run time by xmc_dist_kernels_best()). Four 8-float accumulators hide FMA
 * latency; the ragged tail (d % 8) runs scalar. bf16 inputs widen to fp32 by
 * a 16-bit left shift (bf16 is the upper half of a float), so products are
 * exact and the result matches the reference up to summation order. */
#include <immintrin.h>
#include <math.h>

#include "kernels/distance.h"

static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 load_bf16x8(const uint16_t *p)
{
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static float dot_f32_avx2(const void *a_, const void *b_, size_t d)
{
    const float *a = a_, *b = b_;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= d; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < d; i++)
        s += a[i] * b[i];
    return s;
}

static float l2sq_f32_avx2(const void *a_, const void *b_, size_t d)
{
    const float *a = a_, *b = b_;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 t2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 t3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
        s2 = _mm256_fmadd_ps(t2, t2, s2);
        s3 = _mm256_fmadd_ps(t3, t3, s3);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 t = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(t, t, s0);
    }
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < d; i++) {
        float t = a[i] - b[i];
        s += t * t;
    }
    return s;
}

static float cos_f32_avx2(const void *a_, const void *b_, size_t d)
{
    const float *a = a_, *b = b_;
    __m256 ab = _mm256_setzero_ps(), aa = ab, bb = ab;
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256 x = _mm256_loadu_ps(a + i), y = _mm256_loadu_ps(b + i);
        ab = _mm256_fmadd_ps(x, y, ab);
        aa = _mm256_fmadd_ps(x, x, aa);
        bb = _mm256_fmadd_ps(y, y, bb);
    }
    float sab = hsum256(ab), saa = hsum256(aa), sbb = hsum256(bb);
    for (; i < d; i++) {
        sab += a[i] * b[i];
        saa += a[i] * a[i];
        sbb += b[i] * b[i];
    }
    return saa > 0.0f && sbb > 0.0f ? sab / sqrtf(saa * sbb) : 0.0f;
}

static float dot_bf16_avx2(const void *a_, const void *b_, size_t d)
{
    const uint16_t *a = a_, *b = b_;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        s0 = _mm256_fmadd_ps(load_bf16x8(a + i), load_bf16x8(b + i), s0);
        s1 = _mm256_fmadd_ps(load_bf16x8(a + i + 8), load_bf16x8(b + i + 8), s1);
    }
    for (; i + 8 <= d; i += 8)
        s0 = _mm256_fmadd_ps(load_bf16x8(a + i), load_bf16x8(b + i), s0);
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < d; i++)
        s += xmc_bf16_to_f32(a[i]) * xmc_bf16_to_f32(b[i]);
    return s;
}

static float l2sq_bf16_avx2(const void *a_, const void *b_, size_t d)
{
    const uint16_t *a = a_, *b = b_;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m256 t0 = _mm256_sub_ps(load_bf16x8(a + i), load_bf16x8(b + i));
        __m256 t1 = _mm256_sub_ps(load_bf16x8(a + i + 8), load_bf16x8(b + i + 8));
        s0 = _mm256_fmadd_ps(t0, t0, s0);
        s1 = _mm256_fmadd_ps(t1, t1, s1);
    }
    for (; i + 8 <= d; i += 8) {
        __m256 t = _mm256_sub_ps(load_bf16x8(a + i), load_bf16x8(b + i));
        s0 = _mm256_fmadd_ps(t, t, s0);
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < d; i++) {
        float t = xmc_bf16_to_f32(a[i]) - xmc_bf16_to_f32(b[i]);
        s += t * t;
    }
    return s;
}

static float cos_bf16_avx2(const void *a_, const void *b_, size_t d)
{
    const uint16_t *a = a_, *b = b_;
    __m256 ab = _mm256_setzero_ps(), aa = ab, bb = ab;
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256 x = load_bf16x8(a + i), y = load_bf16x8(b + i);
        ab = _mm256_fmadd_ps(x, y, ab);
        aa = _mm256_fmadd_ps(x, x, aa);
        bb = _mm256_fmadd_ps(y, y, bb);
    }
    float sab = hsum256(ab), saa = hsum256(aa), sbb = hsum256(bb);
    for (; i < d; i++) {
        float x = xmc_bf16_to_f32(a[i]), y = xmc_bf16_to_f32(b[i]);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    return saa > 0.0f && sbb > 0.0f ? sab / sqrtf(saa * sbb) : 0.0f;
}

const xmc_dist_kernels xmc_dist_avx2 = {
    dot_f32_avx2, l2sq_f32_avx2, cos_f32_avx2, dot_bf16_avx2, l2sq_bf16_avx2, cos_bf16_avx2, "avx2",
};
