/* bf16 GEMM on AMX tiles (Intel AMX-BF16: tdpbf16ps), same contract and
 * operand layouts as xmc_k_bf16_gemm_ref / _avx512 (include/xmc/kernels.h).
 *
 * Why: on this machine's cores vdpbf16ps issues at half the rate of fp32
 * FMA, so AVX512-BF16 alone cannot make the bf16 head faster than the fp32
 * one; one tdpbf16ps does a 16x16x32 block (16384 flops). Our operand
 * layouts were chosen to be tile-loadable as they are: A row-major with k
 * in pairs (a 16 x 32-bf16 tile is 16 rows of 64 bytes, stride rsa*4), and
 * B in 16-column panels of k-pairs, which is exactly the "VNNI" layout the
 * B tile wants (16 pair-rows of 64 bytes, stride 64).
 *
 * Blocking: 2 x 2 accumulator tiles (tmm0-3: a 32 x 32 block of C), two A
 * tiles (tmm4-5) and two B tiles (tmm6-7) per 32-wide step of k. Shapes that
 * are not multiples of the tiles (m, n % 32, kp % 16) or a strided A
 * (csa != 1) go to the AVX512-BF16 kernel instead.
 * Threading: tile configuration is per thread; each call loads it and
 * releases the tiles at the end, so calls are reentrant.
 */
#include "xmc/kernels.h"

#include <immintrin.h>
#include <string.h>

typedef struct tilecfg {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

__attribute__((target("amx-tile,amx-bf16"))) static void
amx_blocks(int m, int n, int kp, const uint32_t *a, int64_t rsa, const uint32_t *bp, float *c,
           int64_t ldc, int accumulate)
{
    tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    _tile_loadconfig(&cfg);
    const size_t pstride = (size_t)kp * 16;
    const long sa = (long)rsa * 4, sc = (long)ldc * 4;
    for (int j0 = 0; j0 < n; j0 += 32) {
        const uint32_t *b0 = bp + (size_t)(j0 / 16) * pstride, *b1 = b0 + pstride;
        for (int i0 = 0; i0 < m; i0 += 32) {
            float *c00 = c + (size_t)i0 * ldc + j0, *c10 = c00 + 16 * (size_t)ldc;
            if (accumulate) {
                _tile_loadd(0, c00, sc);
                _tile_loadd(1, c00 + 16, sc);
                _tile_loadd(2, c10, sc);
                _tile_loadd(3, c10 + 16, sc);
            } else {
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
            }
            const uint32_t *a0 = a + (size_t)i0 * rsa, *a1 = a0 + 16 * (size_t)rsa;
            for (int q = 0; q < kp; q += 16) {
                _tile_loadd(4, a0 + q, sa);
                _tile_loadd(5, a1 + q, sa);
                _tile_loadd(6, b0 + (size_t)q * 16, 64);
                _tile_loadd(7, b1 + (size_t)q * 16, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            _tile_stored(0, c00, sc);
            _tile_stored(1, c00 + 16, sc);
            _tile_stored(2, c10, sc);
            _tile_stored(3, c10 + 16, sc);
        }
    }
    _tile_release();
}

void xmc_k_bf16_gemm_amx(int m, int n, int kp, const uint32_t *a, int64_t rsa, int64_t csa,
                         const uint32_t *bp, float *c, int64_t ldc, int accumulate)
{
    if (m <= 0 || n <= 0 || kp <= 0 || m % 32 || n % 32 || kp % 16 || csa != 1) {
        xmc_k_bf16_gemm_avx512(m, n, kp, a, rsa, csa, bp, c, ldc, accumulate);
        return;
    }
    amx_blocks(m, n, kp, a, rsa, bp, c, ldc, accumulate);
}
