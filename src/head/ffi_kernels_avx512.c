/* AVX-512 fixed fan-in kernels (contracts in ffi_internal.h).
 *
 * Vectorised over the batch: a label's F inputs are F rows of the transposed
 * batch tile, each a contiguous run of n <= Bt floats, so the forward is F
 * broadcast-FMAs into 4 zmm accumulators per 64 columns (4 independent FMA
 * chains cover the FMA latency), and the backward does, per input row, one
 * dot product (for gW) and one axpy into the private dE^T tile (for gx) in a
 * single pass over the row. A ragged tail (< 64 columns, also whole tiles
 * when d is large and Bt < 64) runs the same single pass with masked loads
 * and stores; full blocks stay unmasked (masked stores are slow on Zen 4).
 * The tiles are L2-resident, and neither software prefetch of the next rows
 * nor batching the 16 horizontal sums of the backward into one shuffle tree
 * measured any gain (1-thread CPU time, d = 768 and 4096), so neither is
 * here.
 *
 * The sigmoid needs exp: glibc's vector expf (libmvec) is only reachable with
 * -ffast-math, so exp is the Cephes single-precision polynomial (Moshier),
 * 2^n applied with vscalefps, within a few ulp of expf.
 */
#include <immintrin.h>

#include "head/ffi_internal.h"

static inline __mmask16 tail_mask(int r) { return (__mmask16)((1u << r) - 1u); }
/* Mask of the first r lanes, r clamped to [0, 16]. */
static inline __mmask16 tail_mask16(int r)
{
    return r <= 0 ? (__mmask16)0 : r >= 16 ? (__mmask16)0xffff : tail_mask(r);
}

void ffi_fwd_avx512(const float *X, int64_t ld, const int32_t *idx, const float *w, int F,
                    float z0, int n, float *z)
{
    const __m512 init = _mm512_set1_ps(z0);
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 a0 = init, a1 = init, a2 = init, a3 = init;
        const float *Xi = X + i;
        for (int k = 0; k < F; k++) {
            const float *x = Xi + (int64_t)idx[k] * ld;
            __m512 wk = _mm512_set1_ps(w[k]);
            a0 = _mm512_fmadd_ps(wk, _mm512_loadu_ps(x), a0);
            a1 = _mm512_fmadd_ps(wk, _mm512_loadu_ps(x + 16), a1);
            a2 = _mm512_fmadd_ps(wk, _mm512_loadu_ps(x + 32), a2);
            a3 = _mm512_fmadd_ps(wk, _mm512_loadu_ps(x + 48), a3);
        }
        _mm512_storeu_ps(z + i, a0);
        _mm512_storeu_ps(z + i + 16, a1);
        _mm512_storeu_ps(z + i + 32, a2);
        _mm512_storeu_ps(z + i + 48, a3);
    }
    if (i < n) {
        /* Ragged tail (< 64 columns): the same 4-accumulator pass, masked. */
        const int rem = n - i;
        const __mmask16 m0 = tail_mask16(rem), m1 = tail_mask16(rem - 16);
        const __mmask16 m2 = tail_mask16(rem - 32), m3 = tail_mask16(rem - 48);
        __m512 a0 = init, a1 = init, a2 = init, a3 = init;
        const float *Xi = X + i;
        for (int k = 0; k < F; k++) {
            const float *x = Xi + (int64_t)idx[k] * ld;
            __m512 wk = _mm512_set1_ps(w[k]);
            a0 = _mm512_fmadd_ps(wk, _mm512_maskz_loadu_ps(m0, x), a0);
            a1 = _mm512_fmadd_ps(wk, _mm512_maskz_loadu_ps(m1, x + 16), a1);
            a2 = _mm512_fmadd_ps(wk, _mm512_maskz_loadu_ps(m2, x + 32), a2);
            a3 = _mm512_fmadd_ps(wk, _mm512_maskz_loadu_ps(m3, x + 48), a3);
        }
        _mm512_mask_storeu_ps(z + i, m0, a0);
        _mm512_mask_storeu_ps(z + i + 16, m1, a1);
        _mm512_mask_storeu_ps(z + i + 32, m2, a2);
        _mm512_mask_storeu_ps(z + i + 48, m3, a3);
    }
}

void ffi_bwd_avx512(const float *X, float *D, int64_t ld, const int32_t *idx, const float *w,
                    int F, const float *g, int n, float *gw)
{
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m512 g0 = _mm512_loadu_ps(g + i), g1 = _mm512_loadu_ps(g + i + 16);
        const __m512 g2 = _mm512_loadu_ps(g + i + 32), g3 = _mm512_loadu_ps(g + i + 48);
        const float *Xi = X + i;
        float *Di = D ? D + i : NULL;
        for (int k = 0; k < F; k++) {
            int64_t off = (int64_t)idx[k] * ld;
            const float *x = Xi + off;
            __m512 s0 = _mm512_mul_ps(_mm512_loadu_ps(x), g0);
            __m512 s1 = _mm512_mul_ps(_mm512_loadu_ps(x + 16), g1);
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + 32), g2, s0);
            s1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + 48), g3, s1);
            gw[k] += _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
            if (Di) {
                float *d = Di + off;
                __m512 wk = _mm512_set1_ps(w[k]);
                _mm512_storeu_ps(d, _mm512_fmadd_ps(wk, g0, _mm512_loadu_ps(d)));
                _mm512_storeu_ps(d + 16, _mm512_fmadd_ps(wk, g1, _mm512_loadu_ps(d + 16)));
                _mm512_storeu_ps(d + 32, _mm512_fmadd_ps(wk, g2, _mm512_loadu_ps(d + 32)));
                _mm512_storeu_ps(d + 48, _mm512_fmadd_ps(wk, g3, _mm512_loadu_ps(d + 48)));
            }
        }
    }
    if (i < n) {
        const int rem = n - i;
        const __mmask16 m0 = tail_mask16(rem), m1 = tail_mask16(rem - 16);
        const __mmask16 m2 = tail_mask16(rem - 32), m3 = tail_mask16(rem - 48);
        const __m512 g0 = _mm512_maskz_loadu_ps(m0, g + i);
        const __m512 g1 = _mm512_maskz_loadu_ps(m1, g + i + 16);
        const __m512 g2 = _mm512_maskz_loadu_ps(m2, g + i + 32);
        const __m512 g3 = _mm512_maskz_loadu_ps(m3, g + i + 48);
        const float *Xi = X + i;
        float *Di = D ? D + i : NULL;
        for (int k = 0; k < F; k++) {
            int64_t off = (int64_t)idx[k] * ld;
            const float *x = Xi + off;
            __m512 s0 = _mm512_mul_ps(_mm512_maskz_loadu_ps(m0, x), g0);
            __m512 s1 = _mm512_mul_ps(_mm512_maskz_loadu_ps(m1, x + 16), g1);
            s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m2, x + 32), g2, s0);
            s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m3, x + 48), g3, s1);
            gw[k] += _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
            if (Di) {
                float *d = Di + off;
                __m512 wk = _mm512_set1_ps(w[k]);
                _mm512_mask_storeu_ps(d, m0, _mm512_fmadd_ps(wk, g0, _mm512_maskz_loadu_ps(m0, d)));
                _mm512_mask_storeu_ps(d + 16, m1,
                                      _mm512_fmadd_ps(wk, g1, _mm512_maskz_loadu_ps(m1, d + 16)));
                _mm512_mask_storeu_ps(d + 32, m2,
                                      _mm512_fmadd_ps(wk, g2, _mm512_maskz_loadu_ps(m2, d + 32)));
                _mm512_mask_storeu_ps(d + 48, m3,
                                      _mm512_fmadd_ps(wk, g3, _mm512_maskz_loadu_ps(m3, d + 48)));
            }
        }
    }
}

/* exp(x) for x in [-100, 100] (clamped): x = n ln2 + r, |r| <= ln2/2,
 * e^r = 1 + r + r^2 P(r) with Cephes' expf coefficients. */
static inline __m512 exp512(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-100.0f)), _mm512_set1_ps(100.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

static inline __m512 act512(__m512 z, int loss)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    if (loss == XMC_LOSS_SQHINGE)
        return _mm512_mul_ps(_mm512_set1_ps(2.0f),
                             _mm512_max_ps(_mm512_add_ps(one, z), _mm512_setzero_ps()));
    __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), z));
    return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

void ffi_act_avx512(const float *z, float *g, size_t n, int loss)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(g + i, act512(_mm512_loadu_ps(z + i), loss));
    if (i < n) {
        __mmask16 m = tail_mask((int)(n - i));
        _mm512_mask_storeu_ps(g + i, m, act512(_mm512_maskz_loadu_ps(m, z + i), loss));
    }
}

const ffi_kernels ffi_kernels_avx512 = {"avx512", ffi_fwd_avx512, ffi_bwd_avx512,
                                        ffi_act_avx512};
