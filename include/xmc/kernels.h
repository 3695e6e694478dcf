/* xmc kernels: CPU feature detection and runtime dispatch, bf16 helpers and
 * the hand-written kernels of the fused one-vs-all head.
 *
 * Every hot kernel has a plain C reference with the same signature; the fast
 * variants (AVX2, AVX-512, AVX512-BF16) live in files named *_avx2.c /
 * *_avx512.c built with those ISA flags, and are chosen once at run time from
 * cpuid + the OS's saved register state. XMC_KERNEL=ref in the environment
 * forces the references (XMC_KERNEL=avx2 caps at AVX2, XMC_KERNEL=avx512 at
 * AVX-512 without BF16, XMC_KERNEL=avx512bf16 at AVX512-BF16 without AMX).
 */
#ifndef XMC_KERNELS_H
#define XMC_KERNELS_H

#include <string.h>

#include "xmc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    XMC_CPU_AVX2 = 1u << 0,    /* AVX2 + FMA, OS saves YMM */
    XMC_CPU_AVX512 = 1u << 1,  /* F + BW + VL + DQ, OS saves ZMM/opmask */
    XMC_CPU_AVX512BF16 = 1u << 2,
    XMC_CPU_AMXBF16 = 1u << 3, /* AMX-TILE + AMX-BF16, OS enabled, permission granted */
};

/* Features usable now (after XMC_KERNEL capping). Cached after first call. */
unsigned xmc_cpu_features(void);
/* Features the hardware has, ignoring XMC_KERNEL. */
unsigned xmc_cpu_features_hw(void);
/* "amx", "avx512bf16", "avx512", "avx2" or "ref": the best level in use. */
const char *xmc_cpu_level_name(void);
/* Re-read XMC_KERNEL (tests switch between variants in one process). */
void xmc_cpu_refresh(void);

/* ------------------------------------------------------------------ bf16
 * bfloat16 is the top 16 bits of an IEEE-754 binary32; we store it as
 * uint16_t. Conversions to fp32 are exact. */

static inline float xmc_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Round to nearest, ties to even (what vcvtneps2bf16 does); NaN stays NaN. */
static inline uint16_t xmc_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Stochastic rounding (Gupta et al. 2015): round up with probability equal
 * to the discarded fraction, so E[round(x)] = x and small updates to bf16
 * weights are not lost. `r` supplies 16 uniform random bits (low half).
 * NaN and +-inf are kept. */
static inline uint16_t xmc_f32_to_bf16_sr(float f, uint32_t r)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u)
        return (uint16_t)((u >> 16) | ((u & 0x7fffffu) ? 0x40u : 0u));
    u += r & 0xffffu;
    return (uint16_t)(u >> 16);
}

/* A 32-bit integer hash (Wellons' "lowbias32"): the random bits of
 * stochastic rounding are hash(key ^ element index), a counter-based
 * generator, so results do not depend on chunking or thread count. */
static inline uint32_t xmc_hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

void xmc_bf16_from_f32(const float *in, size_t n, uint16_t *out); /* RNE */
void xmc_bf16_to_f32_n(const uint16_t *in, size_t n, float *out);

/* ------------------------------------------------------ bf16 GEMM kernel
 * C (m x n, fp32, row stride ldc) = [C +] A B with bf16 operands and fp32
 * accumulation, the shape vdpbf16ps wants: k runs in PAIRS.
 *  A: element pair q of row i (A[i][2q], A[i][2q+1]) is the uint32 word
 *     a[i*rsa + q*csa]; low half = even k. (Row-major bf16 with even row
 *     length: rsa = ld/2, csa = 1; pair-interleaved: rsa = 1, csa = ld.)
 *  B: "panel" layout of a k x n matrix: panels of 16 columns; word
 *     bp[(j/16)*kp*16 + q*16 + j%16] holds (B[2q][j], B[2q+1][j]). Columns
 *     past n in the last panel must be zero-padded (they are computed but
 *     not stored), as do the pair halves past k.
 * kp = ceil(k/2). accumulate != 0 adds into C, else overwrites. */
typedef void (*xmc_k_bf16_gemm_fn)(int m, int n, int kp, const uint32_t *a, int64_t rsa,
                                   int64_t csa, const uint32_t *bp, float *c, int64_t ldc,
                                   int accumulate);
void xmc_k_bf16_gemm_ref(int m, int n, int kp, const uint32_t *a, int64_t rsa, int64_t csa,
                         const uint32_t *bp, float *c, int64_t ldc, int accumulate);
void xmc_k_bf16_gemm_avx512(int m, int n, int kp, const uint32_t *a, int64_t rsa, int64_t csa,
                            const uint32_t *bp, float *c, int64_t ldc, int accumulate);
/* AMX tiles (tdpbf16ps) for m, n multiples of 32, kp of 16 and csa = 1;
 * other shapes go to the AVX512-BF16 kernel. Needs XMC_CPU_AMXBF16. */
void xmc_k_bf16_gemm_amx(int m, int n, int kp, const uint32_t *a, int64_t rsa, int64_t csa,
                         const uint32_t *bp, float *c, int64_t ldc, int accumulate);
/* The best variant usable now, or NULL without AVX512-BF16 (callers then
 * take their portable fp32 path). */
xmc_k_bf16_gemm_fn xmc_k_bf16_gemm(void);

/* uint32 words of a panel-packed k x n operand: ceil(n/16)*16*kp. */
size_t xmc_bf16_panel_words(int n, int kp);
/* Pack B = M^T where M is n x k bf16 row-major (stride ldm): pairs run
 * along M's rows. */
void xmc_bf16_pack_bt(const uint16_t *M, int64_t ldm, int n, int k, uint32_t *bp);
/* Pack B = M where M is k x n row-major: bf16 (stride ldm) or fp32 rounded
 * to nearest even. */
void xmc_bf16_pack_b(const uint16_t *M, int64_t ldm, int k, int n, uint32_t *bp);
void xmc_bf16_pack_b_f32(const float *M, int64_t ldm, int k, int n, uint32_t *bp);
/* AVX-512 twins of the two bf16 packs (identical output); per-chunk
 * packing of W_c is on the bf16 head's hot path. */
typedef void (*xmc_bf16_pack_fn)(const uint16_t *M, int64_t ldm, int rows, int cols,
                                 uint32_t *bp);
void xmc_bf16_pack_bt_avx512(const uint16_t *M, int64_t ldm, int n, int k, uint32_t *bp);
void xmc_bf16_pack_b_avx512(const uint16_t *M, int64_t ldm, int k, int n, uint32_t *bp);
xmc_bf16_pack_fn xmc_bf16_pack_bt_best(void);
xmc_bf16_pack_fn xmc_bf16_pack_b_best(void);

/* fp32 G (m x n, stride ldg) -> bf16 (RNE) in two layouts at once, both
 * zero-padded: `rm` row-major m x ldr (ldr even >= n, pairs along n: the A
 * operand of G W) and `pb` the panel layout of G as a k x n operand with
 * k = m (pairs along rows: the B operand of E^T G), xmc_bf16_panel_words(n,
 * ceil(m/2)) words; an odd m pads the last pair with 0. Either output may be
 * NULL. */
typedef void (*xmc_k_bf16_split_fn)(const float *g, int m, int n, int64_t ldg, uint16_t *rm,
                                    int64_t ldr, uint32_t *pb);
void xmc_k_bf16_split_ref(const float *g, int m, int n, int64_t ldg, uint16_t *rm,
                          int64_t ldr, uint32_t *pb);
void xmc_k_bf16_split_avx512(const float *g, int m, int n, int64_t ldg, uint16_t *rm,
                             int64_t ldr, uint32_t *pb);
xmc_k_bf16_split_fn xmc_k_bf16_split(void);

/* out (cols x rows, stride ldo) = in^T, in rows x cols with stride ldi
 * (the bf16 head's dW_c^T -> dW_c). */
typedef void (*xmc_k_transpose_fn)(const float *in, int rows, int cols, int64_t ldi, float *out,
                                   int64_t ldo);
void xmc_k_transpose_ref(const float *in, int rows, int cols, int64_t ldi, float *out,
                         int64_t ldo);
void xmc_k_transpose_avx512(const float *in, int rows, int cols, int64_t ldi, float *out,
                            int64_t ldo);
xmc_k_transpose_fn xmc_k_transpose(void);

/* --------------------------------------------- bf16 optimizer updates
 * SGD with momentum on bf16 weights w and momentum m (n elements) from an
 * fp32 gradient: g = dw + wd w; m = mu m + g; w -= lr m, computed in fp32,
 * then both rounded stochastically. Element i draws 32 random bits
 * xmc_sr_bits(key, e0 + i) (e0: global index of element 0): the low 16
 * round w, the high 16 round m. */
static inline uint32_t xmc_sr_bits(uint32_t key, uint64_t e)
{
    return xmc_hash32((uint32_t)e ^ xmc_hash32((uint32_t)(e >> 32) ^ key));
}
typedef void (*xmc_k_sgdm_bf16_fn)(uint16_t *w, uint16_t *m, const float *dw, size_t n,
                                   float lr, float mu, float wd, uint32_t key, uint64_t e0);
void xmc_k_sgdm_bf16_ref(uint16_t *w, uint16_t *m, const float *dw, size_t n, float lr,
                         float mu, float wd, uint32_t key, uint64_t e0);
void xmc_k_sgdm_bf16_avx512(uint16_t *w, uint16_t *m, const float *dw, size_t n, float lr,
                            float mu, float wd, uint32_t key, uint64_t e0);
xmc_k_sgdm_bf16_fn xmc_k_sgdm_bf16(void);

/* ------------------------------------------------------ OvA loss kernels
 * The dense part of the one-vs-all gradient, in place over n logits, as if
 * every target were 0 (the sparse positives are fixed up afterwards):
 *   loss 0 (BCE):            x <- sigmoid(x)
 *   loss 1 (squared hinge):  x <- 2 max(0, 1 + x)
 * The fast sigmoid differs from 1/(1+expf(-x)) by a few ulp. */
typedef void (*xmc_k_ova_grad0_fn)(float *x, size_t n, int loss);
void xmc_k_ova_grad0_ref(float *x, size_t n, int loss);
void xmc_k_ova_grad0_avx512(float *x, size_t n, int loss);
xmc_k_ova_grad0_fn xmc_k_ova_grad0(void);

/* ------------------------------------------------------ bounded top-k
 * The best k of a stream of (score, id) pairs, in caller storage s[k], id[k]:
 * a min-heap whose root is the worst kept entry, so a push is O(1) when the
 * candidate loses and O(log k) otherwise. Order: higher score first, equal
 * scores prefer the lower id; NaN counts as -inf. *n is the number kept so
 * far (start at 0). Finish sorts best first and pads to k with (-inf, -1).
 * Used by every exact top-k (heads, mining); inline because it sits in the
 * innermost loop over labels. */
static inline int xmc_topk_worse(float sa, int32_t ia, float sb, int32_t ib)
{
    return sa < sb || (sa == sb && ia > ib);
}

void xmc_topk_sift_down(float *s, int32_t *id, int n, int i);
void xmc_topk_sift_up(float *s, int32_t *id, int i);

static inline void xmc_topk_push(float *s, int32_t *id, int *n, int k, float score,
                                 int32_t label)
{
    if (score != score)
        score = -__builtin_inff();
    if (*n < k) {
        s[*n] = score;
        id[*n] = label;
        xmc_topk_sift_up(s, id, (*n)++);
    } else if (xmc_topk_worse(s[0], id[0], score, label)) {
        s[0] = score;
        id[0] = label;
        xmc_topk_sift_down(s, id, k, 0);
    }
}

void xmc_topk_finish(float *s, int32_t *id, int n, int k);

/* First index in the ascending a[lo, hi) whose value is >= key (hi if
 * none): label lookups in sorted CSR rows and label lists. */
static inline int64_t xmc_lower_bound_i32(const int32_t *a, int64_t lo, int64_t hi, int64_t key)
{
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Is key in the ascending a[0, n)? */
static inline int xmc_sorted_has_i32(const int32_t *a, int64_t n, int64_t key)
{
    int64_t i = xmc_lower_bound_i32(a, 0, n, key);
    return i < n && a[i] == key;
}

#ifdef __cplusplus
}
#endif
#endif
