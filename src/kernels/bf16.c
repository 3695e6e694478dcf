/* bf16 conversions, operand packing, and the plain C references of the
 * fused-head kernels (their AVX-512 twins are in bf16_avx512.c), plus the
 * runtime choice between them.
 *
 * Packing is layout work, O(k*n) per operand against O(m*k*n) for the GEMM
 * that consumes it, so it stays portable C. The references accumulate in
 * fp32 in k order; the fast kernels use a different order (and vdpbf16ps
 * flushes denormals), so tests compare with abs + rel tolerance.
 * Threading: all functions are pure and reentrant.
 */
#include "xmc/kernels.h"

#include <math.h>

void xmc_bf16_from_f32(const float *in, size_t n, uint16_t *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = xmc_f32_to_bf16(in[i]);
}

void xmc_bf16_to_f32_n(const uint16_t *in, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = xmc_bf16_to_f32(in[i]);
}

static inline uint32_t pair16(uint16_t lo, uint16_t hi) { return (uint32_t)lo | ((uint32_t)hi << 16); }

size_t xmc_bf16_panel_words(int n, int kp)
{
    return (size_t)((n + 15) / 16) * 16 * (size_t)kp;
}

void xmc_bf16_pack_bt(const uint16_t *M, int64_t ldm, int n, int k, uint32_t *bp)
{
    int kp = (k + 1) / 2, np = (n + 15) / 16;
    for (int p = 0; p < np; p++) {
        uint32_t *panel = bp + (size_t)p * kp * 16;
        for (int jj = 0; jj < 16; jj++) {
            int j = p * 16 + jj;
            if (j >= n) {
                for (int q = 0; q < kp; q++)
                    panel[(size_t)q * 16 + jj] = 0;
                continue;
            }
            const uint16_t *row = M + (size_t)j * ldm;
            for (int q = 0; q < kp; q++) {
                uint16_t lo = row[2 * q], hi = 2 * q + 1 < k ? row[2 * q + 1] : 0;
                panel[(size_t)q * 16 + jj] = pair16(lo, hi);
            }
        }
    }
}

/* Loops run pair-of-rows outer so each source row is read once, in order;
 * the writes go to np panels, 64 contiguous bytes each. */
void xmc_bf16_pack_b(const uint16_t *M, int64_t ldm, int k, int n, uint32_t *bp)
{
    int kp = (k + 1) / 2, np = (n + 15) / 16;
    for (int q = 0; q < kp; q++) {
        const uint16_t *r0 = M + (size_t)(2 * q) * ldm;
        const uint16_t *r1 = 2 * q + 1 < k ? r0 + ldm : NULL;
        for (int p = 0; p < np; p++) {
            uint32_t *o = bp + (size_t)p * kp * 16 + (size_t)q * 16;
            int j0 = p * 16, w = n - j0 < 16 ? n - j0 : 16;
            if (r1)
                for (int jj = 0; jj < w; jj++)
                    o[jj] = pair16(r0[j0 + jj], r1[j0 + jj]);
            else
                for (int jj = 0; jj < w; jj++)
                    o[jj] = pair16(r0[j0 + jj], 0);
            for (int jj = w; jj < 16; jj++)
                o[jj] = 0;
        }
    }
}

void xmc_bf16_pack_b_f32(const float *M, int64_t ldm, int k, int n, uint32_t *bp)
{
    int kp = (k + 1) / 2, np = (n + 15) / 16;
    for (int q = 0; q < kp; q++) {
        const float *r0 = M + (size_t)(2 * q) * ldm;
        const float *r1 = 2 * q + 1 < k ? r0 + ldm : NULL;
        for (int p = 0; p < np; p++) {
            uint32_t *o = bp + (size_t)p * kp * 16 + (size_t)q * 16;
            int j0 = p * 16, w = n - j0 < 16 ? n - j0 : 16;
            for (int jj = 0; jj < w; jj++)
                o[jj] = pair16(xmc_f32_to_bf16(r0[j0 + jj]), r1 ? xmc_f32_to_bf16(r1[j0 + jj]) : 0);
            for (int jj = w; jj < 16; jj++)
                o[jj] = 0;
        }
    }
}

void xmc_k_bf16_gemm_ref(int m, int n, int kp, const uint32_t *a, int64_t rsa, int64_t csa,
                         const uint32_t *bp, float *c, int64_t ldc, int accumulate)
{
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            const uint32_t *panel = bp + (size_t)(j / 16) * kp * 16 + (j % 16);
            float s = accumulate ? c[(size_t)i * ldc + j] : 0.0f;
            for (int q = 0; q < kp; q++) {
                uint32_t wa = a[(size_t)i * rsa + (size_t)q * csa], wb = panel[(size_t)q * 16];
                /* bf16 x bf16 products are exact in fp32 */
                s += xmc_bf16_to_f32((uint16_t)wa) * xmc_bf16_to_f32((uint16_t)wb);
                s += xmc_bf16_to_f32((uint16_t)(wa >> 16)) * xmc_bf16_to_f32((uint16_t)(wb >> 16));
            }
            c[(size_t)i * ldc + j] = s;
        }
    }
}

void xmc_k_bf16_split_ref(const float *g, int m, int n, int64_t ldg, uint16_t *rm,
                          int64_t ldr, uint32_t *pb)
{
    if (rm) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++)
                rm[(size_t)i * ldr + j] = xmc_f32_to_bf16(g[(size_t)i * ldg + j]);
            for (int64_t j = n; j < ldr; j++)
                rm[(size_t)i * ldr + j] = 0;
        }
    }
    if (pb) {
        int mp = (m + 1) / 2, np = (n + 15) / 16;
        for (int q = 0; q < mp; q++) {
            const float *r0 = g + (size_t)(2 * q) * ldg, *r1 = 2 * q + 1 < m ? r0 + ldg : NULL;
            for (int j = 0; j < np * 16; j++)
                pb[(size_t)(j / 16) * mp * 16 + (size_t)q * 16 + j % 16] =
                    j < n ? pair16(xmc_f32_to_bf16(r0[j]), r1 ? xmc_f32_to_bf16(r1[j]) : 0) : 0;
        }
    }
}

void xmc_k_sgdm_bf16_ref(uint16_t *w, uint16_t *m, const float *dw, size_t n, float lr,
                         float mu, float wd, uint32_t key, uint64_t e0)
{
    for (size_t i = 0; i < n; i++) {
        float wv = xmc_bf16_to_f32(w[i]);
        float g = dw[i] + wd * wv;
        float mv = mu * xmc_bf16_to_f32(m[i]) + g;
        wv -= lr * mv;
        uint32_t bits = xmc_sr_bits(key, e0 + i);
        m[i] = xmc_f32_to_bf16_sr(mv, bits >> 16);
        w[i] = xmc_f32_to_bf16_sr(wv, bits);
    }
}

void xmc_k_ova_grad0_ref(float *x, size_t n, int loss)
{
    if (loss == 1) {
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > -1.0f ? 2.0f * (1.0f + x[i]) : 0.0f;
    } else {
        for (size_t i = 0; i < n; i++)
            x[i] = 1.0f / (1.0f + expf(-x[i]));
    }
}

xmc_k_bf16_gemm_fn xmc_k_bf16_gemm(void)
{
    unsigned f = xmc_cpu_features();
    if (f & XMC_CPU_AMXBF16)
        return xmc_k_bf16_gemm_amx;
    return (f & XMC_CPU_AVX512BF16) ? xmc_k_bf16_gemm_avx512 : NULL;
}

xmc_k_bf16_split_fn xmc_k_bf16_split(void)
{
    return (xmc_cpu_features() & XMC_CPU_AVX512BF16) ? xmc_k_bf16_split_avx512
                                                       : xmc_k_bf16_split_ref;
}

void xmc_k_transpose_ref(const float *in, int rows, int cols, int64_t ldi, float *out,
                         int64_t ldo)
{
    for (int j = 0; j < cols; j++)
        for (int i = 0; i < rows; i++)
            out[(size_t)j * ldo + i] = in[(size_t)i * ldi + j];
}

xmc_k_transpose_fn xmc_k_transpose(void)
{
    return (xmc_cpu_features() & XMC_CPU_AVX512) ? xmc_k_transpose_avx512 : xmc_k_transpose_ref;
}

xmc_bf16_pack_fn xmc_bf16_pack_bt_best(void)
{
    return (xmc_cpu_features() & XMC_CPU_AVX512) ? xmc_bf16_pack_bt_avx512 : xmc_bf16_pack_bt;
}

xmc_bf16_pack_fn xmc_bf16_pack_b_best(void)
{
    return (xmc_cpu_features() & XMC_CPU_AVX512) ? xmc_bf16_pack_b_avx512 : xmc_bf16_pack_b;
}

xmc_k_sgdm_bf16_fn xmc_k_sgdm_bf16(void)
{
    return (xmc_cpu_features() & XMC_CPU_AVX512) ? xmc_k_sgdm_bf16_avx512 : xmc_k_sgdm_bf16_ref;
}

xmc_k_ova_grad0_fn xmc_k_ova_grad0(void)
{
    return (xmc_cpu_features() & XMC_CPU_AVX512) ? xmc_k_ova_grad0_avx512 : xmc_k_ova_grad0_ref;
}
