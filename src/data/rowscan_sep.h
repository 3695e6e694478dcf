/* Separators of 64 bytes for the AVX2 and AVX-512 sparse-row kernels
 * (rowscan_avx2.c, rowscan_avx512.c; each compiles it with its own target
 * flags): ' ', '\t' and ':' by one table lookup on the low nibble (pshufb;
 * the byte must equal its table entry, so no other byte matches), '\n'
 * (same nibble as ':') by a compare, per 32 bytes. Four compares into mask
 * registers and their kmovs were 12 more ops per 64 bytes on AVX-512.
 * Bit i of scan_mask64 is set when p[i] is ':', ' ', '\t' or '\n', as
 * rowscan.h expects. Not a public header. */
#include <immintrin.h>
#include <stdint.h>

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
