/* AVX-512 variants of the transformer's element kernels (GELU forward and
 * backward, softmax rows), selected at run time by bert_kernels.c when
 * xmc_cpu_features() reports AVX-512 (XMC_KERNEL=ref forces the portable
 * code). Same formulas as the portable fast path: Cody-Waite exp with a
 * degree-6 polynomial and 2^n by vscalefps, Numerical Recipes' erfcc.
 * Why intrinsics: GCC does not vectorise the portable loop (the erfc
 * polynomial, its reciprocal and blends defeat if-conversion at -O2), and
 * GELU is ~15% of a MiniLM forward when scalar. Tails use masked loads and
 * stores, so any length works. Threading: OpenMP over 16-float blocks;
 * softmax rows are called from inside the attention loop (no OpenMP). */
#include <immintrin.h>
#include <stdint.h>

#include <omp.h>

#include "xmc/bert.h"

void xmc_bert_gelu_fwd_avx512(float *out, const float *x, int64_t n);
void xmc_bert_gelu_bwd_avx512(float *dx, const float *x, const float *dout, int64_t n);
void xmc_bert_softmax_fwd_avx512(float *p, int rows, int cols, int ld);

static inline __m512 exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* Phi(x) = 0.5 erfc(-x / sqrt 2), erfc from Numerical Recipes (erfcc) */
static inline __m512 phi16(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.5f), z, one));
    __m512 q = _mm512_set1_ps(0.17087277f);
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-0.82215223f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(1.48851587f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-1.13520398f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.27886807f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-0.18628806f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.09678418f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(0.37409196f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(1.00002368f));
    q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(-1.26551223f));
    __m512 e = exp16(_mm512_fnmadd_ps(z, z, q));
    __m512 c = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), t), e);
    __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    return _mm512_mask_sub_ps(c, pos, one, c);
}

void xmc_bert_gelu_fwd_avx512(float *out, const float *x, int64_t n)
{
    int64_t nb = (n + 15) / 16;
#pragma omp parallel for schedule(static) if ((n > 32768) && !omp_in_parallel())
    for (int64_t k = 0; k < nb; k++) {
        int64_t i = k * 16;
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(v, phi16(v)));
    }
}

void xmc_bert_gelu_bwd_avx512(float *dx, const float *x, const float *dout, int64_t n)
{
    int64_t nb = (n + 15) / 16;
#pragma omp parallel for schedule(static) if ((n > 32768) && !omp_in_parallel())
    for (int64_t k = 0; k < nb; k++) {
        int64_t i = k * 16;
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 d = _mm512_maskz_loadu_ps(m, dout + i);
        __m512 pdf = _mm512_mul_ps(exp16(_mm512_mul_ps(_mm512_set1_ps(-0.5f), _mm512_mul_ps(v, v))),
                                   _mm512_set1_ps(0.39894228040143268f));
        __m512 g = _mm512_fmadd_ps(v, pdf, phi16(v));
        _mm512_mask_storeu_ps(dx + i, m, _mm512_mul_ps(d, g));
    }
}

void xmc_bert_softmax_fwd_avx512(float *p, int rows, int cols, int ld)
{
    for (int i = 0; i < rows; i++) {
        float *r = p + (int64_t)i * ld;
        __m512 mx = _mm512_set1_ps(-3.0e38f);
        for (int j = 0; j < cols; j += 16) {
            __mmask16 m = cols - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (cols - j)) - 1);
            mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, r + j));
        }
        __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
        __m512 sum = _mm512_setzero_ps();
        for (int j = 0; j < cols; j += 16) {
            __mmask16 m = cols - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (cols - j)) - 1);
            __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, r + j), vmax));
            _mm512_mask_storeu_ps(r + j, m, e);
            sum = _mm512_mask_add_ps(sum, m, sum, e);
        }
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (int j = 0; j < cols; j += 16) {
            __mmask16 m = cols - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (cols - j)) - 1);
            _mm512_mask_storeu_ps(r + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, r + j), inv));
        }
    }
}
