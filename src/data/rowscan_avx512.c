/* AVX-512 variant of the sparse-row kernel (rowscan.h): separators of 64
 * bytes from two 32-byte loads (one pshufb lookup and one compare each),
 * the one-vector entry path fast_entry with its table (rowscan.c,
 * xmc_rs_tab) and mask compares (AVX512BW+VL), and ROWSCAN_FAST: the
 * call-free loop for common rows, per row and per run of rows
 * (xmc_sparse_rows_avx512). One 64-byte zmm compare was measured 10-15 %
 * slower per file on the Xeon we test on (512-bit ops share ports and
 * lower the clock), so the vectors stay 256 bits wide or less. */
#include <immintrin.h>
#include <string.h>

#include "data/internal.h"

/* Separators of 32 bytes: ' ', '\t' and ':' by one table lookup on the
 * low nibble (pshufb; the byte must equal its table entry, so no other
 * byte matches), '\n' (same nibble as ':') by a compare; four compares
 * into mask registers and their kmovs were 12 more ops per 64 bytes. */
static inline uint32_t scan_mask32(const char *p)
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
    return scan_mask32(p) | (uint64_t)scan_mask32(p + 32) << 32;
}

/* BMI1/2 in the kernel (tzcnt, blsr; every AVX-512 CPU has them, and
 * xmc_sparse_row_get checks). */
#define ROWSCAN_ATTR __attribute__((target("bmi,bmi2")))
#define ROWSCAN_MASKS /* fast_entry's tests in mask registers */
#define ROWSCAN_SSE
#define ROWSCAN_FAST
#define ROWSCAN_NAME xmc_sparse_row_avx512
#define ROWS_NAME xmc_sparse_rows_avx512
#include "data/rowscan.h"
