/* Distance kernels, AVX-512 variants (built with -mavx512f/bw/vl/dq/bf16;
 * chosen at run time by xmc_dist_kernels_best()).
 *
 * The ragged tail (d % 16) is one masked load, so there is no scalar loop.
 * Two tables: `avx512` widens bf16 to fp32 by a shift (exact products, any
 * AVX-512 CPU); `avx512bf16` uses VDPBF16PS for the bf16 dot and cosine:
 * 32 bf16 pairs per instruction, products exact, accumulated in fp32 with
 * denormals flushed (Intel SDM), so it halves the instructions of the
 * dominant kernel for bf16-stored indexes. L2 has no bf16 dot form without
 * the |a|^2 - 2ab + |b|^2 cancellation, so it keeps the shift widening. */
#include <immintrin.h>
#include <math.h>

#include "kernels/distance.h"

static inline __m512 load_bf16x16(const uint16_t *p)
{
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

static inline __m512 maskload_bf16x16(const uint16_t *p, __mmask16 m)
{
    __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

static inline __mmask16 tail16(size_t r) { return (__mmask16)((1u << r) - 1u); }

static float dot_f32_avx512(const void *a_, const void *b_, size_t d)
{
    const float *a = a_, *b = b_;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 64 <= d; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= d; i += 16)
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < d) {
        __mmask16 m = tail16(d - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static float l2sq_f32_avx512(const void *a_, const void *b_, size_t d)
{
    const float *a = a_, *b = b_;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 64 <= d; i += 64) {
        __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 t2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 t3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_fmadd_ps(t0, t0, s0);
        s1 = _mm512_fmadd_ps(t1, t1, s1);
        s2 = _mm512_fmadd_ps(t2, t2, s2);
        s3 = _mm512_fmadd_ps(t3, t3, s3);
    }
    for (; i + 16 <= d; i += 16) {
        __m512 t = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(t, t, s0);
    }
    if (i < d) {
        __mmask16 m = tail16(d - i);
        __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(t, t, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static float cos_f32_avx512(const void *a_, const void *b_, size_t d)
{
    const float *a = a_, *b = b_;
    __m512 ab = _mm512_setzero_ps(), aa = ab, bb = ab;
    for (size_t i = 0; i < d; i += 16) {
        __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : tail16(d - i);
        __m512 x = _mm512_maskz_loadu_ps(m, a + i), y = _mm512_maskz_loadu_ps(m, b + i);
        ab = _mm512_fmadd_ps(x, y, ab);
        aa = _mm512_fmadd_ps(x, x, aa);
        bb = _mm512_fmadd_ps(y, y, bb);
    }
    float sab = _mm512_reduce_add_ps(ab), saa = _mm512_reduce_add_ps(aa),
          sbb = _mm512_reduce_add_ps(bb);
    return saa > 0.0f && sbb > 0.0f ? sab / sqrtf(saa * sbb) : 0.0f;
}

static float dot_bf16_avx512(const void *a_, const void *b_, size_t d)
{
    const uint16_t *a = a_, *b = b_;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        s0 = _mm512_fmadd_ps(load_bf16x16(a + i), load_bf16x16(b + i), s0);
        s1 = _mm512_fmadd_ps(load_bf16x16(a + i + 16), load_bf16x16(b + i + 16), s1);
    }
    for (; i < d; i += 16) {
        __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : tail16(d - i);
        s0 = _mm512_fmadd_ps(maskload_bf16x16(a + i, m), maskload_bf16x16(b + i, m), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static float l2sq_bf16_avx512(const void *a_, const void *b_, size_t d)
{
    const uint16_t *a = a_, *b = b_;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m512 t0 = _mm512_sub_ps(load_bf16x16(a + i), load_bf16x16(b + i));
        __m512 t1 = _mm512_sub_ps(load_bf16x16(a + i + 16), load_bf16x16(b + i + 16));
        s0 = _mm512_fmadd_ps(t0, t0, s0);
        s1 = _mm512_fmadd_ps(t1, t1, s1);
    }
    for (; i < d; i += 16) {
        __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : tail16(d - i);
        __m512 t = _mm512_sub_ps(maskload_bf16x16(a + i, m), maskload_bf16x16(b + i, m));
        s0 = _mm512_fmadd_ps(t, t, s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static float cos_bf16_avx512(const void *a_, const void *b_, size_t d)
{
    const uint16_t *a = a_, *b = b_;
    __m512 ab = _mm512_setzero_ps(), aa = ab, bb = ab;
    for (size_t i = 0; i < d; i += 16) {
        __mmask16 m = d - i >= 16 ? (__mmask16)0xffff : tail16(d - i);
        __m512 x = maskload_bf16x16(a + i, m), y = maskload_bf16x16(b + i, m);
        ab = _mm512_fmadd_ps(x, y, ab);
        aa = _mm512_fmadd_ps(x, x, aa);
        bb = _mm512_fmadd_ps(y, y, bb);
    }
    float sab = _mm512_reduce_add_ps(ab), saa = _mm512_reduce_add_ps(aa),
          sbb = _mm512_reduce_add_ps(bb);
    return saa > 0.0f && sbb > 0.0f ? sab / sqrtf(saa * sbb) : 0.0f;
}

/* ---- AVX512-BF16: VDPBF16PS multiplies 32 bf16 pairs and adds adjacent
 * products into 16 fp32 lanes. */

static inline __mmask32 tail32(size_t r)
{
    return r >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << r) - 1u);
}

static float dot_bf16_dpbf16(const void *a_, const void *b_, size_t d)
{
    const uint16_t *a = a_, *b = b_;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0;
    size_t i = 0;
    for (; i + 64 <= d; i += 64) {
        s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_loadu_si512(a + i),
                              (__m512bh)_mm512_loadu_si512(b + i));
        s1 = _mm512_dpbf16_ps(s1, (__m512bh)_mm512_loadu_si512(a + i + 32),
                              (__m512bh)_mm512_loadu_si512(b + i + 32));
    }
    for (; i < d; i += 32) {
        __mmask32 m = tail32(d - i);
        s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_maskz_loadu_epi16(m, a + i),
                              (__m512bh)_mm512_maskz_loadu_epi16(m, b + i));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static float cos_bf16_dpbf16(const void *a_, const void *b_, size_t d)
{
    const uint16_t *a = a_, *b = b_;
    __m512 ab = _mm512_setzero_ps(), aa = ab, bb = ab;
    for (size_t i = 0; i < d; i += 32) {
        __mmask32 m = tail32(d - i);
        __m512bh x = (__m512bh)_mm512_maskz_loadu_epi16(m, a + i);
        __m512bh y = (__m512bh)_mm512_maskz_loadu_epi16(m, b + i);
        ab = _mm512_dpbf16_ps(ab, x, y);
        aa = _mm512_dpbf16_ps(aa, x, x);
        bb = _mm512_dpbf16_ps(bb, y, y);
    }
    float sab = _mm512_reduce_add_ps(ab), saa = _mm512_reduce_add_ps(aa),
          sbb = _mm512_reduce_add_ps(bb);
    return saa > 0.0f && sbb > 0.0f ? sab / sqrtf(saa * sbb) : 0.0f;
}

const xmc_dist_kernels xmc_dist_avx512 = {
    dot_f32_avx512,  l2sq_f32_avx512,  cos_f32_avx512, dot_bf16_avx512,
    l2sq_bf16_avx512, cos_bf16_avx512, "avx512",
};

const xmc_dist_kernels xmc_dist_avx512bf16 = {
    dot_f32_avx512,  l2sq_f32_avx512,  cos_f32_avx512, dot_bf16_dpbf16,
    l2sq_bf16_avx512, cos_bf16_dpbf16, "avx512bf16",
};
