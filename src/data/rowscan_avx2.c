/* AVX2 variant of the sparse-row kernel (rowscan.h): separators of 64 bytes
 * from two 32-byte loads (one pshufb lookup and one compare each, two
 * movemasks), the table-driven entry path and the call-free loop for
 * common rows (ROWSCAN_FAST, as rowscan_avx512.c, with movemask and ptest
 * for the mask-register tests); and the 32-byte pass-1 count (the
 * AVX-512 machines use it too). */
#include <immintrin.h>
#include <string.h>

#include "data/internal.h"

/* Separators of 32 bytes: ' ', '\t' and ':' by one table lookup on the
 * low nibble (pshufb; the byte must equal its table entry, so no other
 * byte matches), '\n' (same nibble as ':') by a compare. */
static inline uint64_t scan_mask32(const char *p)
{
    const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
    const __m256i tab = _mm256_setr_epi8(' ', 0, 0, 0, 0, 0, 0, 0, 0, '\t', ':', 0, 0, 0, 0, 0,
                                         ' ', 0, 0, 0, 0, 0, 0, 0, 0, '\t', ':', 0, 0, 0, 0, 0);
    const __m256i hit = _mm256_or_si256(_mm256_cmpeq_epi8(_mm256_shuffle_epi8(tab, v), v),
                                        _mm256_cmpeq_epi8(v, _mm256_set1_epi8('\n')));
    return (uint32_t)_mm256_movemask_epi8(hit);
}

static inline uint64_t scan_mask64(const char *p)
{
    return scan_mask32(p) | scan_mask32(p + 32) << 32;
}

/* BMI1/2 in the kernel (tzcnt, blsr; xmc_sparse_row_get checks). */
#define ROWSCAN_ATTR __attribute__((target("bmi,bmi2")))
#define ROWSCAN_SSE
#define ROWSCAN_FAST
#define ROWSCAN_NAME xmc_sparse_row_avx2
#define ROWS_NAME xmc_sparse_rows_avx2
#define COUNT3_NAME xmc_count3_avx2
#define COUNT3_W 32
#include "data/rowscan.h"
