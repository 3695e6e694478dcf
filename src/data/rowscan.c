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

xmc_sparse_row_fn xmc_sparse_row_get(const char *level)
{
    unsigned hw = xmc_cpu_features_hw();
    if (!strcmp(level, "ref"))
        return xmc_sparse_row_ref;
    if (!strcmp(level, "avx2"))
        return (hw & XMC_CPU_AVX2) ? xmc_sparse_row_avx2 : NULL;
    if (!strcmp(level, "avx512"))
        return (hw & XMC_CPU_AVX512) ? xmc_sparse_row_avx512 : NULL;
    return NULL;
}

xmc_sparse_row_fn xmc_sparse_row_best(void)
{
    unsigned f = xmc_cpu_features();
    if (f & XMC_CPU_AVX512)
        return xmc_sparse_row_avx512;
    if (f & XMC_CPU_AVX2)
        return xmc_sparse_row_avx2;
    /* The reference's byte-at-a-time mask makes it ~30 % slower than the
     * scalar parser alone: it is the yardstick of the vector variants in
     * tests, not a path for users. */
    return NULL;
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
