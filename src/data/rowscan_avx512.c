/* AVX-512BW variant of the sparse-row kernel (rowscan.h): separators of 64
 * bytes from one load and four byte compares into mask registers. */
#include <immintrin.h>
#include <string.h>

#include "data/internal.h"

static inline uint64_t scan_mask64(const char *p)
{
    __m512i v = _mm512_loadu_si512((const void *)p);
    return _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(':')) |
           _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(' ')) |
           _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\t')) |
           _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n'));
}

#define ROWSCAN_SSE
#define ROWSCAN_NAME xmc_sparse_row_avx512
#include "data/rowscan.h"
