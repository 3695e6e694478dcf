/* AVX2 variant of the texts reader's two vector passes (textscan.h): 32-byte
 * compares, the '\n' mask of 64 bytes from two movemasks. */
#include <immintrin.h>
#include <string.h>

#include "data/internal.h"

static inline uint64_t nl_mask64(const char *p)
{
    const __m256i vn = _mm256_set1_epi8('\n');
    const __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)p);
    const __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    return (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, vn)) |
           (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, vn)) << 32;
}

#define TS_W 32
#define TS_NL_MASK
#define TSCAN_NAME xmc_tscan_avx2
#define TFILL_NAME xmc_tfill_avx2
#define TSCAN1_NAME xmc_tscan1_avx2
#include "data/textscan.h"
