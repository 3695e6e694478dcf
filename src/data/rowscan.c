/* Sparse-row kernels: the plain C reference of the separator scan and the
 * run-time choice among the variants (rowscan.h says what they do and why;
 * the vector variants are in rowscan_avx2.c and rowscan_avx512.c). */
#include <string.h>

#include "data/internal.h"
#include "xmc/kernels.h"

/* Reference: one byte at a time (gcc does not vectorise this into a mask). */
static inline uint64_t scan_mask64(const char *p)
{
    uint64_t m = 0;
    for (int i = 0; i < 64; i++) {
        char ch = p[i];
        m |= (uint64_t)(ch == ':' || ch == ' ' || ch == '\t' || ch == '\n') << i;
    }
    return m;
}

#define ROWSCAN_NAME xmc_sparse_row_ref
#define COUNT3_NAME xmc_count3_ref
#define COUNT3_W 16 /* SSE2 on any x86-64, NEON on arm64 */
#include "data/rowscan.h"

/* The one-vector entry path of the AVX-512 kernel (rowscan.h, fast_entry):
 * the pshufb indices of an entry "id:value" in the 16 bytes from its start,
 * by dpos = the first '.' of the 16 bytes (16 = none), a = c - s (id
 * digits, 0-8) and b = t - c (value bytes + 1, 0-15), at i = (dpos * 9 +
 * a) * 16 + b (the cheapest index to compute: lea, add, shl, add), so that
 * one load gives them. Output bytes 0-7 take the id right-aligned, bytes
 * 8-15 the value's digits right-aligned with the dot squeezed out; 0x80
 * (pshufb: zero) left of the digits. A shape that the path must not take
 * (empty id or value, a dot in the id, more than 8 digits a side, over 16
 * bytes) takes byte a, the ':', into every lane: not a digit, so the digit
 * test after the shuffle rejects it, and the general parsers decide. A '.'
 * after the entry is "no dot"; a second '.' in the value lands in a digit
 * lane and is rejected the same way. div: 10^(digits after the dot), same
 * index, in the same object (one base register). 39 KB + 10 KB, of which
 * a file's few shapes touch a few lines. Built by constant macros so the
 * table is plain read-only data. Here li = a, vl = b - 1. */
#define RS_DV(li, vl, dp) ((dp) <= (li) ? -2 : (dp) >= (li) + 1 + (vl) ? -1 : (dp) - (li) - 1)
#define RS_ND(li, vl, dp) ((vl) - (RS_DV(li, vl, dp) >= 0))
#define RS_OK(li, vl, dp)                                                                 \
    ((li) >= 1 && RS_DV(li, vl, dp) != -2 && RS_ND(li, vl, dp) >= 1 &&                   \
     RS_ND(li, vl, dp) <= 8 && (li) + 1 + (vl) <= 16)
#define RS_Q(li, vl, dp, j) ((j) - 16 + RS_ND(li, vl, dp)) /* value digit of lane j >= 8 */
#define RS_B(li, vl, dp, j)                                                               \
    (uint8_t)(!RS_OK(li, vl, dp) ? (li)                                                   \
              : (j) < 8          ? ((j) >= 8 - (li) ? (j) - 8 + (li) : 0x80)              \
              : RS_Q(li, vl, dp, j) < 0                                                   \
                  ? 0x80                                                                  \
                  : (li) + 1 + RS_Q(li, vl, dp, j) +                                      \
                        (RS_DV(li, vl, dp) >= 0 && RS_Q(li, vl, dp, j) >= RS_DV(li, vl, dp)))
#define RS_E(a, b, dp)                                                                    \
    {RS_B(a, (b) - 1, dp, 0),  RS_B(a, (b) - 1, dp, 1),  RS_B(a, (b) - 1, dp, 2),           \
     RS_B(a, (b) - 1, dp, 3),  RS_B(a, (b) - 1, dp, 4),  RS_B(a, (b) - 1, dp, 5),           \
     RS_B(a, (b) - 1, dp, 6),  RS_B(a, (b) - 1, dp, 7),  RS_B(a, (b) - 1, dp, 8),           \
     RS_B(a, (b) - 1, dp, 9),  RS_B(a, (b) - 1, dp, 10), RS_B(a, (b) - 1, dp, 11),          \
     RS_B(a, (b) - 1, dp, 12), RS_B(a, (b) - 1, dp, 13), RS_B(a, (b) - 1, dp, 14),          \
     RS_B(a, (b) - 1, dp, 15)}
#define RS_P10(f)                                                                         \
    ((f) == 0 ? 1e0f : (f) == 1 ? 1e1f : (f) == 2 ? 1e2f : (f) == 3 ? 1e3f : (f) == 4 ? 1e4f  \
     : (f) == 5 ? 1e5f : (f) == 6 ? 1e6f : (f) == 7 ? 1e7f : 1e8f)
#define RS_F(a, b, dp)                                                                    \
    (RS_DV(a, (b) - 1, dp) < 0 ? 1.0f : RS_P10((b) - 2 - RS_DV(a, (b) - 1, dp)))
#define RS_16(M, a, dp)                                                                   \
    M(a, 0, dp), M(a, 1, dp), M(a, 2, dp), M(a, 3, dp), M(a, 4, dp), M(a, 5, dp),           \
        M(a, 6, dp), M(a, 7, dp), M(a, 8, dp), M(a, 9, dp), M(a, 10, dp), M(a, 11, dp),     \
        M(a, 12, dp), M(a, 13, dp), M(a, 14, dp), M(a, 15, dp)
#define RS_9(M, dp)                                                                       \
    RS_16(M, 0, dp), RS_16(M, 1, dp), RS_16(M, 2, dp), RS_16(M, 3, dp), RS_16(M, 4, dp),    \
        RS_16(M, 5, dp), RS_16(M, 6, dp), RS_16(M, 7, dp), RS_16(M, 8, dp)
#define RS_17(M)                                                                          \
    {RS_9(M, 0),  RS_9(M, 1),  RS_9(M, 2),  RS_9(M, 3),  RS_9(M, 4),  RS_9(M, 5),         \
     RS_9(M, 6),  RS_9(M, 7),  RS_9(M, 8),  RS_9(M, 9),  RS_9(M, 10), RS_9(M, 11),        \
     RS_9(M, 12), RS_9(M, 13), RS_9(M, 14), RS_9(M, 15), RS_9(M, 16)}

const struct xmc_rs_tab xmc_rs_tab = {RS_17(RS_E), RS_17(RS_F)};

xmc_sparse_row_fn xmc_sparse_row_get(const char *level)
{
    unsigned hw = xmc_cpu_features_hw();
    if (!strcmp(level, "ref"))
        return xmc_sparse_row_ref;
    if (!strcmp(level, "avx2")) /* rowscan_avx2.c uses BMI1/2 too */
        return (hw & XMC_CPU_AVX2) && __builtin_cpu_supports("bmi2") ? xmc_sparse_row_avx2
                                                                      : NULL;
    if (!strcmp(level, "avx512"))
        return (hw & XMC_CPU_AVX512) && __builtin_cpu_supports("bmi2") ? xmc_sparse_row_avx512
                                                                        : NULL;
    return NULL;
}

xmc_sparse_row_fn xmc_sparse_row_best(void)
{
    unsigned f = xmc_cpu_features();
    if ((f & XMC_CPU_AVX512) && __builtin_cpu_supports("bmi2")) /* rowscan_avx512.c */
        return xmc_sparse_row_avx512;
    if ((f & XMC_CPU_AVX2) && __builtin_cpu_supports("bmi2"))
        return xmc_sparse_row_avx2;
    /* The reference's byte-at-a-time mask makes it ~30 % slower than the
     * scalar parser alone: it is the yardstick of the vector variants in
     * tests, not a path for users. */
    return NULL;
}

xmc_sparse_rows_fn xmc_sparse_rows_for(xmc_sparse_row_fn row)
{
    return !row                          ? NULL
           : row == xmc_sparse_row_avx512 ? xmc_sparse_rows_avx512
           : row == xmc_sparse_row_avx2   ? xmc_sparse_rows_avx2
                                          : NULL;
}

xmc_count3_fn xmc_count3_get(const char *level)
{
    if (!strcmp(level, "ref"))
        return xmc_count3_ref;
    if (!strcmp(level, "avx2"))
        return (xmc_cpu_features_hw() & XMC_CPU_AVX2) ? xmc_count3_avx2 : NULL;
    return NULL;
}

xmc_count3_fn xmc_count3_best(void)
{
    return (xmc_cpu_features() & XMC_CPU_AVX2) ? xmc_count3_avx2 : xmc_count3_ref;
}
