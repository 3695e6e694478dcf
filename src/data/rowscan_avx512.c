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

/* Constants of fast_entry, made opaque once per call (empty asm) so that
 * gcc keeps them in registers instead of re-creating each per entry. */
typedef struct rs_consts {
    __m128i dot, zero, nine, lim, w1, w2, w3;
} rs_consts;

#define RS_OPAQUE(x) __asm__("" : "+x"(x))

static inline rs_consts rs_init(int64_t ncols)
{
    /* lim: id < ncols and m < 2^24 (then m and 10^f are exact floats) in
     * one unsigned compare of the lanes [id, m] */
    uint32_t nc = ncols < 0 ? 0 : ncols > UINT32_MAX ? UINT32_MAX : (uint32_t)ncols;
    rs_consts k = {
        _mm_set1_epi8('.'),
        _mm_set1_epi8('0'),
        _mm_set1_epi8(9),
        _mm_setr_epi32((int)nc, 1 << 24, -1, -1),
        _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1),
        _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1),
        _mm_setr_epi16(10000, 1, 10000, 1, 0, 0, 0, 0),
    };
    RS_OPAQUE(k.dot);
    RS_OPAQUE(k.zero);
    RS_OPAQUE(k.nine);
    RS_OPAQUE(k.lim);
    RS_OPAQUE(k.w1);
    RS_OPAQUE(k.w2);
    RS_OPAQUE(k.w3);
    return k;
}

/* The entry [s, t) (':' at c, t at its separator) when it has the common
 * shape (xmc_rs_tab): stored at *xi, *xv, returns the id; -1 otherwise.
 * Values are m / 10^f with m < 2^24 and f <= 8, two exact floats, so one
 * IEEE division rounds them as strtof does (Clinger's fast path). */
static inline int64_t fast_entry(const char *s, const char *c, const char *t, const rs_consts *k,
                                 int32_t *xi, float *xv)
{
    const size_t a = (size_t)(c - s), b = (size_t)(t - c);
    if (a > 8 || b > 15)
        return -1;
    const __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
    const unsigned dpos = (unsigned)__builtin_ctz(_mm_cmpeq_epi8_mask(x, k->dot) | 0x10000u);
    const size_t i = (dpos * 9 + a) * 16 + b;
    const __m128i r =
        _mm_shuffle_epi8(_mm_sub_epi8(x, k->zero),
                         _mm_load_si128((const __m128i *)(const void *)xmc_rs_tab.shuf[i]));
    const __m128i t2 = _mm_madd_epi16(_mm_maddubs_epi16(r, k->w1), k->w2);
    const __m128i t4 = _mm_madd_epi16(_mm_packus_epi32(t2, t2), k->w3);
    if (!_kortestz_mask16_u8(_mm_cmpgt_epu8_mask(r, k->nine), _mm_cmpge_epu32_mask(t4, k->lim)))
        return -1;
    const uint32_t id = (uint32_t)_mm_cvtsi128_si32(t4);
    *xi = (int32_t)id;
    _mm_store_ss(xv, _mm_div_ss(_mm_cvtepi32_ps(_mm_srli_epi64(t4, 32)),
                                _mm_load_ss(&xmc_rs_tab.div[i])));
    return id;
}

/* BMI1/2 in the kernel (tzcnt, blsr; every AVX-512 CPU has them, and
 * xmc_sparse_row_get checks). */
#define ROWSCAN_ATTR __attribute__((target("bmi,bmi2")))
#define ROWSCAN_SSE
#define ROWSCAN_FAST
#define ROWSCAN_NAME xmc_sparse_row_avx512
#define ROWS_NAME xmc_sparse_rows_avx512
#include "data/rowscan.h"
