/* AVX-512 variant of the sparse-row kernel (rowscan.h): separators of 64
 * bytes from two 32-byte loads and four byte compares each straight into
 * mask registers (AVX512BW+VL; no movemask). One 64-byte zmm compare was
 * measured 10-15 % slower per file on the Xeon we test on (512-bit ops
 * share ports and lower the clock), so the vectors stay 256 bits wide. */
#include <immintrin.h>
#include <string.h>

#include "data/internal.h"

static inline uint32_t scan_mask32(const char *p)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
    return _mm256_cmpeq_epi8_mask(v, _mm256_set1_epi8(':')) |
           _mm256_cmpeq_epi8_mask(v, _mm256_set1_epi8(' ')) |
           _mm256_cmpeq_epi8_mask(v, _mm256_set1_epi8('\t')) |
           _mm256_cmpeq_epi8_mask(v, _mm256_set1_epi8('\n'));
}

static inline uint64_t scan_mask64(const char *p)
{
    return scan_mask32(p) | (uint64_t)scan_mask32(p + 32) << 32;
}

#define ROWSCAN_SSE
#define ROWSCAN_NAME xmc_sparse_row_avx512
#include "data/rowscan.h"
