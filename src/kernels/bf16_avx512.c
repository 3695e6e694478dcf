/* AVX-512 / AVX512-BF16 variants of the fused-head kernels; references with
 * the same signatures are in bf16.c.
 *
 * Why hand-written: OpenBLAS (Debian 0.3.21) has no bf16 GEMM for this
 * layout with fp32 accumulation into our chunk buffers, and the sigmoid
 * pass must be vectorised to stay a few percent of the GEMM time.
 *
 * bf16 GEMM: register-blocked outer product on vdpbf16ps (_mm512_dpbf16_ps):
 * one instruction does 16 lanes x 2 k-pairs of multiply-adds into fp32. The
 * micro-kernel holds MR x NR accumulators (6 rows x 4 panels of 16 columns =
 * 24 zmm), streams NR panel vectors of B per k-pair and broadcasts one
 * 32-bit pair of A per row. Loops: k-pairs in blocks of KC so that the NR
 * panels of B being reused (NR*KC*64 bytes = 32 KiB) stay in L1 across all
 * row blocks; A comes from L2. No memory is allocated; reentrant.
 */
#include "xmc/kernels.h"

#include <immintrin.h>
#include <stdint.h>

#define MR 6
#define NR 4
#define KC 128

static inline __attribute__((always_inline)) void micro(const int mr, const int nr, __mmask16 lastm,
                                                         int kp, const uint32_t *a, int64_t rsa,
                                                         int64_t csa, const uint32_t *bp,
                                                         size_t pstride, float *c, int64_t ldc,
                                                         int accumulate)
{
    __m512 acc[MR][NR];
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++) {
#pragma GCC unroll 4
        for (int p = 0; p < nr; p++) {
            __mmask16 m = p == nr - 1 ? lastm : (__mmask16)0xffff;
            acc[r][p] = accumulate ? _mm512_maskz_loadu_ps(m, c + (size_t)r * ldc + p * 16)
                                   : _mm512_setzero_ps();
        }
    }
    for (int q = 0; q < kp; q++) {
        __m512bh b[NR];
#pragma GCC unroll 4
        for (int p = 0; p < nr; p++)
            b[p] = (__m512bh)_mm512_loadu_si512(bp + p * pstride + (size_t)q * 16);
        const uint32_t *aq = a + (size_t)q * csa;
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)aq[(size_t)r * rsa]);
#pragma GCC unroll 4
            for (int p = 0; p < nr; p++)
                acc[r][p] = _mm512_dpbf16_ps(acc[r][p], av, b[p]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++) {
#pragma GCC unroll 4
        for (int p = 0; p < nr; p++) {
            __mmask16 m = p == nr - 1 ? lastm : (__mmask16)0xffff;
            _mm512_mask_storeu_ps(c + (size_t)r * ldc + p * 16, m, acc[r][p]);
        }
    }
}

#define MICRO_NR(MRV)                                                                       \
    switch (nr) {                                                                           \
    case 1: micro(MRV, 1, lastm, kp, a, rsa, csa, bp, pstride, c, ldc, accumulate); break; \
    case 2: micro(MRV, 2, lastm, kp, a, rsa, csa, bp, pstride, c, ldc, accumulate); break; \
    case 3: micro(MRV, 3, lastm, kp, a, rsa, csa, bp, pstride, c, ldc, accumulate); break; \
    default: micro(MRV, 4, lastm, kp, a, rsa, csa, bp, pstride, c, ldc, accumulate); break; \
    }

static void micro_any(int mr, int nr, __mmask16 lastm, int kp, const uint32_t *a, int64_t rsa,
                      int64_t csa, const uint32_t *bp, size_t pstride, float *c, int64_t ldc,
                      int accumulate)
{
    switch (mr) {
    case 1: MICRO_NR(1) break;
    case 2: MICRO_NR(2) break;
    case 3: MICRO_NR(3) break;
    case 4: MICRO_NR(4) break;
    case 5: MICRO_NR(5) break;
    default: MICRO_NR(6) break;
    }
}

void xmc_k_bf16_gemm_avx512(int m, int n, int kp, const uint32_t *a, int64_t rsa, int64_t csa,
                            const uint32_t *bp, float *c, int64_t ldc, int accumulate)
{
    int np = (n + 15) / 16;
    size_t pstride = (size_t)kp * 16;
    if (m <= 0 || n <= 0)
        return;
    if (kp <= 0) {
        if (!accumulate)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                    c[(size_t)i * ldc + j] = 0.0f;
        return;
    }
    for (int q0 = 0; q0 < kp; q0 += KC) {
        int kc = kp - q0 < KC ? kp - q0 : KC;
        int acc = accumulate || q0 > 0;
        for (int p0 = 0; p0 < np; p0 += NR) {
            int nr = np - p0 < NR ? np - p0 : NR;
            int ncols = n - p0 * 16 < nr * 16 ? n - p0 * 16 : nr * 16;
            int rem = ncols - (nr - 1) * 16;
            __mmask16 lastm = (__mmask16)(rem >= 16 ? 0xffff : (1u << rem) - 1);
            const uint32_t *bq = bp + (size_t)p0 * pstride + (size_t)q0 * 16;
            for (int i0 = 0; i0 < m; i0 += MR) {
                int mr = m - i0 < MR ? m - i0 : MR;
                micro_any(mr, nr, lastm, kc, a + (size_t)i0 * rsa + (size_t)q0 * csa, rsa, csa,
                          bq, pstride, c + (size_t)i0 * ldc + p0 * 16, ldc, acc);
            }
        }
    }
}

static inline __mmask16 tailmask(int64_t left)
{
    return (__mmask16)(left >= 16 ? 0xffff : left <= 0 ? 0 : (1u << left) - 1);
}

void xmc_k_bf16_split_avx512(const float *g, int m, int n, int64_t ldg, uint16_t *rm,
                             int64_t ldr, uint32_t *pb)
{
    if (rm) {
        for (int i = 0; i < m; i++) {
            const float *gi = g + (size_t)i * ldg;
            uint16_t *o = rm + (size_t)i * ldr;
            for (int64_t j = 0; j < ldr; j += 32) {
                __m512 lo = _mm512_maskz_loadu_ps(tailmask(n - j), gi + j);
                __m512 hi = _mm512_maskz_loadu_ps(tailmask(n - j - 16), gi + j + 16);
                __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
                int64_t left = ldr - j;
                __mmask32 sm = left >= 32 ? 0xffffffffu : (__mmask32)((1u << left) - 1);
                _mm512_mask_storeu_epi16(o + j, sm, v);
            }
        }
    }
    if (pb) {
        /* 16-bit lane 2t <- lane t (row 2q), lane 2t+1 <- lane 16+t (row 2q+1) */
        const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25,
                                             9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2,
                                             17, 1, 16, 0);
        int mp = (m + 1) / 2, np = (n + 15) / 16;
        for (int q = 0; q < mp; q++) {
            const float *r0 = g + (size_t)(2 * q) * ldg;
            const float *r1 = 2 * q + 1 < m ? r0 + ldg : NULL;
            for (int p = 0; p < np; p++) {
                __mmask16 lm = tailmask(n - p * 16);
                __m512 v0 = _mm512_maskz_loadu_ps(lm, r0 + p * 16);
                __m512 v1 = r1 ? _mm512_maskz_loadu_ps(lm, r1 + p * 16) : _mm512_setzero_ps();
                __m512i v = _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(v1, v0));
                _mm512_storeu_si512(pb + (size_t)p * mp * 16 + (size_t)q * 16, v);
            }
        }
    }
}

/* B = M^T: panel p, pair q holds word q of rows 16p..16p+15, a 32-bit
 * gather per (p, q) (rows past n masked to 0). Odd k or an odd stride make
 * the pairs unaligned words: the reference handles those. */
void xmc_bf16_pack_bt_avx512(const uint16_t *M, int64_t ldm, int n, int k, uint32_t *bp)
{
    if ((k & 1) || (ldm & 1) || ((uintptr_t)M & 3) || ldm / 2 * 16 > INT32_MAX) {
        xmc_bf16_pack_bt(M, ldm, n, k, bp);
        return;
    }
    int kp = k / 2, np = (n + 15) / 16;
    const __m512i vidx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)(ldm / 2)));
    for (int p = 0; p < np; p++) {
        const uint32_t *base = (const uint32_t *)(M + (size_t)p * 16 * ldm);
        __mmask16 rows = tailmask(n - p * 16);
        uint32_t *o = bp + (size_t)p * kp * 16;
        for (int q = 0; q < kp; q++) {
            __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), rows, vidx, base + q, 4);
            _mm512_storeu_si512(o + (size_t)q * 16, v);
        }
    }
}

/* B = M: interleave 16 columns of rows 2q and 2q+1 into 16 words. */
void xmc_bf16_pack_b_avx512(const uint16_t *M, int64_t ldm, int k, int n, uint32_t *bp)
{
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                         24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                         16, 0);
    int kp = (k + 1) / 2, np = (n + 15) / 16;
    for (int q = 0; q < kp; q++) {
        const uint16_t *r0 = M + (size_t)(2 * q) * ldm;
        const uint16_t *r1 = 2 * q + 1 < k ? r0 + ldm : NULL;
        for (int p = 0; p < np; p++) {
            __mmask16 m = tailmask(n - p * 16);
            __m256i lo = _mm256_maskz_loadu_epi16(m, r0 + p * 16);
            __m256i hi = r1 ? _mm256_maskz_loadu_epi16(m, r1 + p * 16) : _mm256_setzero_si256();
            __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            _mm512_storeu_si512(bp + (size_t)p * kp * 16 + (size_t)q * 16,
                                _mm512_permutexvar_epi16(idx, v));
        }
    }
}

/* 16 x 16 blocks transposed in registers (unpack 32-bit, unpack 64-bit,
 * then two 128-bit lane shuffles); ragged edges by the reference. */
void xmc_k_transpose_avx512(const float *in, int rows, int cols, int64_t ldi, float *out,
                            int64_t ldo)
{
    int r16 = rows & ~15, c16 = cols & ~15;
    for (int i0 = 0; i0 < r16; i0 += 16) {
        for (int j0 = 0; j0 < c16; j0 += 16) {
            __m512 r[16], t[16];
            for (int i = 0; i < 16; i++)
                r[i] = _mm512_loadu_ps(in + (size_t)(i0 + i) * ldi + j0);
            for (int i = 0; i < 16; i += 2) {
                t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 16; i += 4) {
                r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
                r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
                r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
                r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
            }
            /* r[4g + s] holds, in each 128-bit lane L, column 4L + s of rows 4g..4g+3 */
            for (int g = 0; g < 4; g += 2)
                for (int s = 0; s < 4; s++) {
                    t[4 * g + s] = _mm512_shuffle_f32x4(r[4 * g + s], r[4 * (g + 1) + s], 0x88);
                    t[4 * (g + 1) + s] = _mm512_shuffle_f32x4(r[4 * g + s], r[4 * (g + 1) + s], 0xdd);
                }
            for (int s = 0; s < 4; s++) {
                __m512 a = _mm512_shuffle_f32x4(t[s], t[8 + s], 0x88);
                __m512 b = _mm512_shuffle_f32x4(t[4 + s], t[12 + s], 0x88);
                __m512 c = _mm512_shuffle_f32x4(t[s], t[8 + s], 0xdd);
                __m512 d = _mm512_shuffle_f32x4(t[4 + s], t[12 + s], 0xdd);
                _mm512_storeu_ps(out + (size_t)(j0 + s) * ldo + i0, a);
                _mm512_storeu_ps(out + (size_t)(j0 + 4 + s) * ldo + i0, b);
                _mm512_storeu_ps(out + (size_t)(j0 + 8 + s) * ldo + i0, c);
                _mm512_storeu_ps(out + (size_t)(j0 + 12 + s) * ldo + i0, d);
            }
        }
    }
    if (c16 < cols)
        xmc_k_transpose_ref(in + c16, r16, cols - c16, ldi, out + (size_t)c16 * ldo, ldo);
    if (r16 < rows)
        xmc_k_transpose_ref(in + (size_t)r16 * ldi, rows - r16, cols, ldi, out + r16, ldo);
}

static inline __m512i hash32v(__m512i x)
{
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7feb352d));
    x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
    x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0x846ca68bu));
    return _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
}

/* fp32 bits u + 16 random bits r, truncated: xmc_f32_to_bf16_sr on 16 lanes
 * (inf/NaN lanes skip the add; NaN gets the quiet bit). */
static inline __m256i sr16(__m512 f, __m512i r)
{
    __m512i u = _mm512_castps_si512(f);
    const __m512i expm = _mm512_set1_epi32(0x7f800000);
    __mmask16 fin = _mm512_cmpneq_epi32_mask(_mm512_and_si512(u, expm), expm);
    __mmask16 nan = _mm512_mask_test_epi32_mask((__mmask16)~fin, u, _mm512_set1_epi32(0x7fffff));
    u = _mm512_mask_add_epi32(u, fin, u, _mm512_and_si512(r, _mm512_set1_epi32(0xffff)));
    u = _mm512_srli_epi32(u, 16);
    u = _mm512_mask_or_epi32(u, nan, u, _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(u);
}

static inline __m512 bf16x16_to_f32(const uint16_t *p, __mmask16 m)
{
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

void xmc_k_sgdm_bf16_avx512(uint16_t *w, uint16_t *m, const float *dw, size_t n, float lr,
                            float mu, float wd, uint32_t key, uint64_t e0)
{
    const __m512 vlr = _mm512_set1_ps(lr), vmu = _mm512_set1_ps(mu), vwd = _mm512_set1_ps(wd);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (size_t i = 0; i < n; i += 16) {
        uint64_t e = e0 + i;
        if ((e >> 32) != ((e + 15) >> 32)) { /* the high word changes inside: rare */
            size_t left = n - i < 16 ? n - i : 16;
            xmc_k_sgdm_bf16_ref(w + i, m + i, dw + i, left, lr, mu, wd, key, e);
            continue;
        }
        __mmask16 k = tailmask((int64_t)(n - i));
        __m512 wv = bf16x16_to_f32(w + i, k);
        __m512 g = _mm512_add_ps(_mm512_maskz_loadu_ps(k, dw + i), _mm512_mul_ps(vwd, wv));
        /* the reference's operation order, unfused (ISO C mode compiles it
         * with -ffp-contract=off), so both variants give identical bits */
        __m512 mv = _mm512_add_ps(_mm512_mul_ps(vmu, bf16x16_to_f32(m + i, k)), g);
        wv = _mm512_sub_ps(wv, _mm512_mul_ps(vlr, mv));
        __m512i kh = _mm512_set1_epi32((int)xmc_hash32((uint32_t)(e >> 32) ^ key));
        __m512i bits = hash32v(_mm512_xor_si512(
            _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)e), iota), kh));
        _mm256_mask_storeu_epi16(m + i, k, sr16(mv, _mm512_srli_epi32(bits, 16)));
        _mm256_mask_storeu_epi16(w + i, k, sr16(wv, bits));
    }
}

/* exp(t) for t clamped to [-87.3, 88.3] by 2^n * p(r), r = t - n ln2, with
 * the Cephes expf polynomial (rel. error ~2 ulp). */
static inline __m512 exp512(__m512 t)
{
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), t);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

void xmc_k_ova_grad0_avx512(float *x, size_t n, int loss)
{
    size_t i = 0;
    if (loss == 1) {
        const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f);
        for (; i < n; i += 16) {
            __mmask16 m = tailmask((int64_t)(n - i));
            __m512 v = _mm512_maskz_loadu_ps(m, x + i);
            v = _mm512_mul_ps(two, _mm512_max_ps(_mm512_add_ps(v, one), _mm512_setzero_ps()));
            _mm512_mask_storeu_ps(x + i, m, v);
        }
        return;
    }
    const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f);
    for (; i < n; i += 16) {
        __mmask16 m = tailmask((int64_t)(n - i));
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 d = _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), v)));
        /* 1/d: rcp14 + one Newton step, ~1 ulp, far cheaper than vdivps */
        __m512 y = _mm512_rcp14_ps(d);
        y = _mm512_mul_ps(y, _mm512_fnmadd_ps(d, y, two));
        _mm512_mask_storeu_ps(x + i, m, y);
    }
}
