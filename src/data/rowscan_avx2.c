/* AVX2 variant of the sparse-row kernel (rowscan.h): separators of 64 bytes
 * from two 32-byte loads, four byte compares each and two movemasks; and
 * the 32-byte pass-1 count (the AVX-512 machines use it too). */
#include <immintrin.h>
#include <string.h>

#include "data/internal.h"

static inline uint64_t scan_mask32(const char *p)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i s = _mm256_or_si256(
        _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(':')),
                        _mm256_cmpeq_epi8(v, _mm256_set1_epi8(' '))),
        _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('\t')),
                        _mm256_cmpeq_epi8(v, _mm256_set1_epi8('\n'))));
    return (uint32_t)_mm256_movemask_epi8(s);
}

static inline uint64_t scan_mask64(const char *p)
{
    return scan_mask32(p) | scan_mask32(p + 32) << 32;
}

#define ROWSCAN_SSE
#define ROWSCAN_NAME xmc_sparse_row_avx2
#define COUNT3_NAME xmc_count3_avx2
#define COUNT3_W 32
#include "data/rowscan.h"
