/* Body of the sparse-row kernels (rowscan.c, rowscan_avx2.c,
 * rowscan_avx512.c), included once per ISA after defining ROWSCAN_NAME,
 * `static inline uint64_t scan_mask64(const char *p)` (bit i set when p[i]
 * is ':', ' ', '\t' or '\n'; rowscan_sep.h for the AVX2 and AVX-512 ones), and the entry parser
 * `static inline int scan_entry(const char *s, const char *c, const char *t,
 * const char *e, int64_t *id, float *v)`: 1 when [s, c) is exactly one
 * integer and [c + 1, t) one number as xmc_parse_uint / xmc_parse_float
 * read them (same values, bit for bit), 0 otherwise; it may read up to e.
 * Not a public header.
 *
 * With ROWSCAN_FAST (avx2, avx512; ROWSCAN_MASKS: the tests in mask
 * registers) also `fast_entry`, the table-driven one-vector entry path,
 * and ROWSCAN_NAME is the call-free loop for common rows (rs_rows,
 * below), which hands any other row back to the loop of this comment
 * (then named rs_general); ROWS_NAME reads a whole run of common rows
 * per call.
 *
 * With COUNT3_NAME and COUNT3_W (16 or 32) defined, also pass 1 of the
 * sparse readers, `void COUNT3_NAME(const char *p, const char *e, int64_t
 * out[3])`: the numbers of '\n', ':' and ',' in [p, e), with W-byte GCC/clang
 * vector compares accumulated in per-lane byte counters for up to 255
 * steps (gcc -O2 does not vectorise the plain byte loop, which made this
 * pass a quarter of the parse time; 32-byte vectors count 235 MB in 21 ms
 * against 28 ms on one core here).
 *
 * Why: the scalar parser finds each token's end by parsing it, so every
 * token's start waits for the previous token's digits (a latency chain of
 * ~3 SWAR steps per entry). Here the separators of 64 bytes come from one
 * vector compare (simdjson's structural pass, Langdale & Lemire 2019), and
 * the positions from the bit mask (tzcnt + clear lowest bit), so the next
 * token's bounds are known before the current one is parsed and the
 * numbers of several entries are converted in parallel by the out-of-order
 * core. The numbers go through the same xmc_parse_uint / xmc_parse_float as
 * the scalar parser (so the values are bit-identical), which must end
 * exactly at the separator.
 *
 * Contract: parse the entries "id:val" of one row from q (after the labels
 * in XC mode) to its '\n' (an optional '\r' before it, blanks between and
 * around entries). Returns the byte after the '\n', with n entries written
 * to xi/xv (ids < ncols; strict = ids must increase, else *unsorted is set
 * when they do not). Returns NULL, with xi/xv possibly scribbled, for
 * anything else — a malformed row, a row without '\n' before e, an id that
 * is out of range — and the caller re-parses the row with the scalar
 * parser, which reports the error; so this path never creates an error
 * message of its own. Reads only [q, e). */

/* The scalar parsers, against the chunk end (their SWAR steps need 8-16
 * readable bytes), then the end must be the separator. */
static inline int scan_uint_scalar(const char *p, const char *t, const char *e, int64_t *v)
{
    return xmc_parse_uint(p, e, v) == t;
}

static inline int scan_float_scalar(const char *p, const char *t, const char *e, float *v)
{
    return xmc_parse_float(p, e, v) == t;
}

#ifdef ROWSCAN_SSE
/* A token of known length as one 16-byte vector (SSSE3/SSE4.1): digits with
 * at most one '.', at most 15 digits, 16 readable bytes. The dot is
 * squeezed out and the digits right-aligned by one pshufb whose indices are
 * computed (index < 0 gives 0), then combined as in simdjson's 16-digit SSE
 * conversion (maddubs, madd, packus, madd). *m = the digits as an integer
 * (< 10^15 < 2^53), *frac = digits after the dot. Returns 1 without a
 * dot, 2 with one, 0 for any other shape (signs, exponents, long or empty tokens): the scalar parser then
 * decides. */
static inline int tok_digits(const char *p, int len, uint64_t *m, int *frac)
{
    if (len < 1 || len > 16)
        return 0;
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    const __m128i d = _mm_sub_epi8(v, _mm_set1_epi8('0'));
    const unsigned live = (1u << len) - 1;
    unsigned dig = (unsigned)_mm_movemask_epi8(
                       _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d)) & live;
    unsigned dot = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('.'))) & live;
    if ((dig | dot) != live || !dig || (dot & (dot - 1)) || (!dot && len > 15))
        return 0;
    int f = dot ? len - 1 - __builtin_ctz(dot) : 0;
    /* Output byte j takes input byte j + len - 16, minus one more for the
     * integer digits (j < 16 - f) when there is a dot, skipping it. */
    const __m128i iota = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m128i idx = _mm_add_epi8(iota, _mm_set1_epi8((char)(len - 16)));
    idx = _mm_add_epi8(idx, _mm_cmplt_epi8(iota, _mm_set1_epi8((char)(dot ? 16 - f : 0))));
    const __m128i r = _mm_shuffle_epi8(d, idx);
    const __m128i t1 = _mm_maddubs_epi16(
        r, _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1));
    const __m128i t2 = _mm_madd_epi16(t1, _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1));
    const __m128i t3 = _mm_packus_epi32(t2, t2);
    const __m128i t4 = _mm_madd_epi16(t3, _mm_setr_epi16(10000, 1, 10000, 1, 0, 0, 0, 0));
    const uint64_t x = (uint64_t)_mm_cvtsi128_si64(t4);
    *m = (x & 0xffffffffu) * 100000000u + (x >> 32);
    *frac = f;
    return dot ? 2 : 1;
}

static inline int scan_uint(const char *p, const char *t, const char *e, int64_t *v)
{
    uint64_t m;
    int f;
    if (e - p >= 16 && t - p <= 10 && tok_digits(p, (int)(t - p), &m, &f) == 1) {
        *v = (int64_t)m;
        return 1;
    }
    return scan_uint_scalar(p, t, e, v);
}

/* The value m * 10^-frac (m < 2^52, frac <= 15) as xmc_parse_float
 * computes it: exact for an integer (an exact double, so one rounding to
 * float), else m * RN(10^-frac) accepted away from float midpoints
 * (parse.c says why). Returns 0 near a midpoint: the caller then parses
 * the text with the general parser. */
static const float rs_p10f[11] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                                  1e6f, 1e7f, 1e8f, 1e9f, 1e10f}; /* exact floats */

static inline int dec_to_float(uint64_t m, int f, float *v)
{
    /* Clinger's fast path in float: m < 2^23 and 10^f (f <= 10) are exact
     * floats, so one IEEE division rounds m / 10^f correctly, i.e. to
     * strtof's value, with no midpoint to check (most values of real and
     * synthetic files: "0.059197" is 59197 / 10^6). (float)m as m in the
     * mantissa of 2^23, minus 2^23 (no cvtsi2ss, see below). */
    if (m < (1u << 23) && f <= 10) {
        const uint32_t u32 = (uint32_t)m | 0x4b000000u;
        float x;
        memcpy(&x, &u32, sizeof x);
        *v = (x - 8388608.0f) / rs_p10f[f];
        return 1;
    }
    /* (double)m without cvtsi2sd (whose merge with a stale register
     * stalled here): m in the mantissa of 2^52, minus 2^52. */
    uint64_t u = m | 0x4330000000000000ULL;
    double d;
    memcpy(&d, &u, sizeof d);
    d -= 4503599627370496.0;
    if (f == 0 || m == 0) {
        *v = (float)d;
        return 1;
    }
    d *= xmc_p10_inv[f];
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    int be = (int)((bits >> 52) & 0x7ff) - 1023;
    if (be >= -126 && (bits & 0x1fffffffULL) - (0x10000000ULL - 16) > 32) {
        *v = (float)d;
        return 1;
    }
    return 0;
}

static inline int scan_float(const char *p, const char *t, const char *e, float *v)
{
    uint64_t m;
    int f;
    if (e - p >= 16 && tok_digits(p, (int)(t - p), &m, &f) && dec_to_float(m, f, v))
        return 1;
    return scan_float_scalar(p, t, e, v);
}

/* pshufb indices of a number of n <= 9 bytes (digits and at most one
 * dot) right-aligned in 8 bytes: rs_idx[n][k] when the dot is at k < n,
 * rs_idx[n][9] without a dot; byte j of the result (little-endian) is the
 * index, from the number's start, of the digit that output byte j takes,
 * 0x80 (pshufb: 0) left of the digits and for impossible shapes. Generated
 * by the formula the vector code used before (output byte 8 + j takes
 * byte j + n - 8, one less left of the dot; tests/test_data_rowscan.c
 * checks every value against strtof). */
static const uint64_t rs_idx[10][10] = {
    {0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL,
     0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL,
     0x8080808080808080ULL, 0x8080808080808080ULL},
    {0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL,
     0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL,
     0x8080808080808080ULL, 0x0080808080808080ULL},
    {0x0180808080808080ULL, 0x0080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL,
     0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL,
     0x8080808080808080ULL, 0x0100808080808080ULL},
    {0x0201808080808080ULL, 0x0200808080808080ULL, 0x0100808080808080ULL, 0x8080808080808080ULL,
     0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL,
     0x8080808080808080ULL, 0x0201008080808080ULL},
    {0x0302018080808080ULL, 0x0302008080808080ULL, 0x0301008080808080ULL, 0x0201008080808080ULL,
     0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL,
     0x8080808080808080ULL, 0x0302010080808080ULL},
    {0x0403020180808080ULL, 0x0403020080808080ULL, 0x0403010080808080ULL, 0x0402010080808080ULL,
     0x0302010080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL,
     0x8080808080808080ULL, 0x0403020100808080ULL},
    {0x0504030201808080ULL, 0x0504030200808080ULL, 0x0504030100808080ULL, 0x0504020100808080ULL,
     0x0503020100808080ULL, 0x0403020100808080ULL, 0x8080808080808080ULL, 0x8080808080808080ULL,
     0x8080808080808080ULL, 0x0504030201008080ULL},
    {0x0605040302018080ULL, 0x0605040302008080ULL, 0x0605040301008080ULL, 0x0605040201008080ULL,
     0x0605030201008080ULL, 0x0604030201008080ULL, 0x0504030201008080ULL, 0x8080808080808080ULL,
     0x8080808080808080ULL, 0x0605040302010080ULL},
    {0x0706050403020180ULL, 0x0706050403020080ULL, 0x0706050403010080ULL, 0x0706050402010080ULL,
     0x0706050302010080ULL, 0x0706040302010080ULL, 0x0705040302010080ULL, 0x0605040302010080ULL,
     0x8080808080808080ULL, 0x0706050403020100ULL},
    {0x0807060504030201ULL, 0x0807060504030200ULL, 0x0807060504030100ULL, 0x0807060504020100ULL,
     0x0807060503020100ULL, 0x0807060403020100ULL, 0x0807050403020100ULL, 0x0806050403020100ULL,
     0x0706050403020100ULL, 0x8080808080808080ULL},
};

/* A whole entry "id:value" [s, t) (colon at c) in one vector, when it fits
 * in 16 bytes with at most 8 digits on each side: one pshufb puts the id
 * right-aligned in bytes 0-7 and the value's digits (dot squeezed out)
 * right-aligned in bytes 8-15, and one 16-digit conversion yields both (its
 * two 8-digit halves). Half the work of two tok_digits; most entries of
 * real and synthetic files ("4711:0.059197") fit. The shuffle indices come
 * from rs_idx (id: rs_idx[li][9]; value: rs_idx[value bytes][dot], plus
 * the value's offset li + 1 in every byte: 0x80 + li + 1 still reads as
 * zero), two loads instead of ten vector ops. Returns 0 otherwise. */
static inline int tok_entry(const char *s, const char *c, const char *t, uint64_t *id,
                            uint64_t *m, int *frac)
{
    const int li = (int)(c - s), len = (int)(t - s);
    if (li < 1 || li > 8 || len > 16 || len < li + 2)
        return 0;
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
    const __m128i d = _mm_sub_epi8(v, _mm_set1_epi8('0'));
    const unsigned live = (1u << len) - 1, idm = (1u << li) - 1;
    const unsigned vm = live & ~((2u << li) - 1); /* the value's bytes */
    unsigned dig = (unsigned)_mm_movemask_epi8(
                       _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d)) & live;
    unsigned dot = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('.'))) & vm;
    if ((dig & idm) != idm || ((dig & vm) | dot) != vm || !(dig & vm) || (dot & (dot - 1)))
        return 0;
    const int vl = len - li - 1; /* value bytes, dot included */
    if (vl - (dot != 0) > 8)
        return 0;
    const int dp = dot ? __builtin_ctz(dot) - li - 1 : 9;
    const uint64_t hi = rs_idx[vl][dp] + 0x0101010101010101ULL * (uint64_t)(li + 1);
    const __m128i idx = _mm_set_epi64x((int64_t)hi, (int64_t)rs_idx[li][9]);
    const __m128i r = _mm_shuffle_epi8(d, idx);
    const __m128i t1 = _mm_maddubs_epi16(
        r, _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1));
    const __m128i t2 = _mm_madd_epi16(t1, _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1));
    const __m128i t3 = _mm_packus_epi32(t2, t2);
    const __m128i t4 = _mm_madd_epi16(t3, _mm_setr_epi16(10000, 1, 10000, 1, 0, 0, 0, 0));
    const uint64_t x = (uint64_t)_mm_cvtsi128_si64(t4);
    *id = x & 0xffffffffu;
    *m = x >> 32;
    *frac = dot ? vl - 1 - dp : 0;
    return 1;
}

static inline int scan_entry(const char *s, const char *c, const char *t, const char *e,
                             int64_t *id, float *v)
{
    uint64_t i, m;
    int f;
    if (e - s >= 16 && tok_entry(s, c, t, &i, &m, &f)) {
        *id = (int64_t)i;
        return dec_to_float(m, f, v) || scan_float_scalar(c + 1, t, e, v);
    }
    return scan_uint(s, c, e, id) && scan_float(c + 1, t, e, v);
}
#else
static inline int scan_entry(const char *s, const char *c, const char *t, const char *e,
                             int64_t *id, float *v)
{
    return scan_uint_scalar(s, c, e, id) && scan_float_scalar(c + 1, t, e, v);
}
#endif

/* The entry [s, t) (':' at c, t at the separator after it) by the general
 * parsers: stored at *xi, *xv; returns its id, or -1 to decline the row.
 * Out of line, so that the hot loop keeps its values in registers. */
static __attribute__((noinline)) int64_t slow_entry(const char *s, const char *c, const char *t,
                                                    const char *e, const int64_t *ncols,
                                                    int32_t *xi, float *xv)
{
    const char *tt = *t == '\n' && t[-1] == '\r' ? t - 1 : t; /* "\r\n" */
    int64_t id = 0;
    float v;
    if (!scan_entry(s, c, tt, e, &id, &v) || id >= *ncols)
        return -1;
    *xi = (int32_t)id;
    *xv = v;
    return id;
}

#define RS_UNLIKELY(x) __builtin_expect(!!(x), 0)

#ifdef ROWSCAN_FAST
/* Constants of fast_entry, made opaque once per call (empty asm) so that
 * gcc keeps them in registers instead of re-creating each per entry. */
typedef struct rs_consts {
    __m128i dot, zero, nine, lim, w1, w2, w3;
} rs_consts;

#define RS_OPAQUE(x) __asm__("" : "+x"(x))

static inline rs_consts rs_init(int64_t ncols)
{
    /* lim: id < ncols and m < 2^24 (then m and 10^f are exact floats) in
     * one compare of the lanes [id, m]: unsigned t4 >= lim with mask
     * registers, signed t4 > lim - 1 without (ids and m < 10^8 < 2^31) */
#ifdef ROWSCAN_MASKS
    uint32_t nc = ncols < 0 ? 0 : ncols > UINT32_MAX ? UINT32_MAX : (uint32_t)ncols;
    const __m128i lim = _mm_setr_epi32((int)nc, 1 << 24, -1, -1);
#else
    int32_t nc1 = ncols < 0 ? -1 : ncols > INT32_MAX ? INT32_MAX - 1 : (int32_t)ncols - 1;
    const __m128i lim = _mm_setr_epi32(nc1, (1 << 24) - 1, INT32_MAX, INT32_MAX);
#endif
    rs_consts k = {
        _mm_set1_epi8('.'),
        _mm_set1_epi8('0'),
        _mm_set1_epi8(9),
        lim,
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
#ifdef ROWSCAN_MASKS
    const unsigned dots = _mm_cmpeq_epi8_mask(x, k->dot);
#else
    const unsigned dots = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, k->dot));
#endif
    const unsigned dpos = (unsigned)__builtin_ctz(dots | 0x10000u);
    const size_t i = (dpos * 9 + a) * 16 + b;
    const __m128i r =
        _mm_shuffle_epi8(_mm_sub_epi8(x, k->zero),
                         _mm_load_si128((const __m128i *)(const void *)xmc_rs_tab.shuf[i]));
    const __m128i t2 = _mm_madd_epi16(_mm_maddubs_epi16(r, k->w1), k->w2);
    const __m128i t4 = _mm_madd_epi16(_mm_packus_epi32(t2, t2), k->w3);
#ifdef ROWSCAN_MASKS
    if (!_kortestz_mask16_u8(_mm_cmpgt_epu8_mask(r, k->nine), _mm_cmpge_epu32_mask(t4, k->lim)))
        return -1;
#else
    const __m128i bad = _mm_or_si128(_mm_subs_epu8(r, k->nine), _mm_cmpgt_epi32(t4, k->lim));
    if (!_mm_testz_si128(bad, bad))
        return -1;
#endif
    const uint32_t id = (uint32_t)_mm_cvtsi128_si32(t4);
    *xi = (int32_t)id;
    _mm_store_ss(xv, _mm_div_ss(_mm_cvtepi32_ps(_mm_srli_epi64(t4, 32)),
                                _mm_load_ss(&xmc_rs_tab.div[i])));
    return id;
}
#endif
#ifdef ROWSCAN_FAST
#define RS_GENERAL rs_general
#else
#define RS_GENERAL ROWSCAN_NAME
#endif

/* The mask of the last, short block, out of line: its stack buffer would
 * otherwise give the kernel a realigned frame and cost it a register. */
static __attribute__((noinline)) uint64_t scan_tail(const char *p, const char *e)
{
    char buf[64] = {0}; /* NUL is not a separator */
    memcpy(buf, p, (size_t)(e - p));
    return scan_mask64(buf);
}

static inline uint64_t scan_block(const char *p, const char *e)
{
    return e - p >= 64 ? scan_mask64(p) : scan_tail(p, e);
}

#ifdef ROWSCAN_FAST
static __attribute__((noinline))
#endif
const char *
RS_GENERAL(const char *q, const char *e, int64_t ncols, int strict, int32_t *xi, float *xv,
           int64_t *n_out, int *unsorted)
{
    /* What only the rare paths read stays in memory (its address goes to
     * slow_entry), so that the hot loop has the registers: gcc kept
     * these in registers and spilled xi, xv and prev instead. */
    struct {
        int64_t ncols;
        int32_t *xi0;
        int strict, uns;
    } cold = {ncols, xi, strict, 0};
    const char *base = q, *s = q, *c, *t;
    uint64_t m = scan_block(base, e);
    int32_t prev = -1;
#ifdef ROWSCAN_FAST
    /* the last start with 16 readable bytes (0: none) */
    const uintptr_t s16 = e - q >= 16 ? (uintptr_t)(e - 16) : 0;
    const rs_consts K = rs_init(ncols);
#endif
/* pos = the next separator at or after the last one, NULL at e. */
#define NEXT(pos)                                                                        \
    do {                                                                                 \
        while (!m) {                                                                     \
            base += 64;                                                                  \
            if (base >= e)                                                               \
                return NULL;                                                             \
            m = scan_block(base, e);                                                     \
        }                                                                                \
        pos = base + __builtin_ctzll(m);                                                 \
        m &= m - 1;                                                                      \
    } while (0)
    for (;;) {
        NEXT(c);
        if (RS_UNLIKELY(*c != ':')) {
            if (*c == '\n') { /* row end after blanks, or an empty row */
                if (c == s || (c == s + 1 && *s == '\r'))
                    break;
                return NULL;
            }
            if (c != s)
                return NULL; /* a token without ':' */
            s = c + 1;       /* consecutive blanks */
            continue;
        }
        NEXT(t);
        const char tc = *t;
        if (RS_UNLIKELY(tc == ':'))
            return NULL;
        int64_t id;
#ifdef ROWSCAN_FAST
        if (RS_UNLIKELY((uintptr_t)s > s16 || (id = fast_entry(s, c, t, &K, xi, xv)) < 0))
#endif
            if ((id = slow_entry(s, c, t, e, &cold.ncols, xi, xv)) < 0)
                return NULL;
        if (RS_UNLIKELY((int32_t)id <= prev)) {
            if (cold.strict)
                return NULL;
            cold.uns = 1;
        }
        prev = (int32_t)id;
        xi++;
        xv++;
        if (RS_UNLIKELY(tc == '\n')) {
            c = t;
            break;
        }
        s = t + 1;
    }
#undef NEXT
    *n_out = xi - cold.xi0;
    *unsorted = cold.uns;
    return c + 1;
}

#ifdef ROWSCAN_FAST
/* The kernel proper: whole rows of the common shape, i.e. entries that
 * fast_entry converts, single blanks (or a leading one), increasing ids,
 * '\n' ends, 80 readable bytes past every block start (16 past any
 * entry's start, so no bounds checks per entry); at most maxrows of them
 * from q, their lengths in lens. Returns the start of the first row not
 * taken (the caller reads it with RS_GENERAL or the scalar parser, rare:
 * a file of such rows costs what it did before this loop), with *nrows
 * rows and *nent entries done. Without calls in its loop, because gcc
 * kept the hot values of the combined loop in memory: 10 -> 6 ns per
 * entry with the same conversion. One call reads a whole chunk of a
 * sparse file (xmc_sparse_rows_*): no per-row call, setup and first block. */
static inline const char *rs_rows(const char *q, const char *e, int64_t ncols, int32_t *xi,
                                  float *xv, int64_t *lens, int64_t maxrows, int64_t *nrows,
                                  int64_t *nent)
{
    const char *row = q; /* the start of the row being read */
    int32_t *x = xi, *xrow = xi;
    float *v = xv;
    int64_t nr = 0;
    if (e - q >= 80 && maxrows > 0) {
        const char *const last = e - 80; /* the last block start of this loop */
        const rs_consts K = rs_init(ncols);
        const char *base = q, *s = q, *c, *t;
        uint64_t m = scan_mask64(base);
        int64_t prev = -1;
        for (;;) {
            if (RS_UNLIKELY(!m)) {
                base += 64;
                if (RS_UNLIKELY(base > last) || !(m = scan_mask64(base)))
                    break;
            }
            c = base + __builtin_ctzll(m);
            m &= m - 1;
            if (RS_UNLIKELY(*c != ':')) {
                if (c != s)
                    break; /* a token without ':' */
                if (*c == ' ') {
                    s = c + 1; /* the blank after an XC row's labels, or a second one */
                    continue;
                }
                if (*c != '\n')
                    break;
                t = c; /* an empty row, or blanks at the end */
                goto row_end;
            }
            if (RS_UNLIKELY(!m)) {
                base += 64;
                if (RS_UNLIKELY(base > last) || !(m = scan_mask64(base)))
                    break;
            }
            t = base + __builtin_ctzll(m);
            m &= m - 1;
            const int64_t id = fast_entry(s, c, t, &K, x, v);
            if (RS_UNLIKELY(id <= prev)) /* id < 0: declined */
                break;
            prev = id;
            x++;
            v++;
            s = t + 1;
            if (RS_UNLIKELY(*t != ' ')) {
                if (*t != '\n')
                    break;
            row_end:
                lens[nr++] = x - xrow;
                xrow = x;
                row = s = t + 1;
                prev = -1;
                if (nr == maxrows)
                    break;
            }
        }
    }
    *nrows = nr;
    *nent = xrow - xi;
    return row;
}

ROWSCAN_ATTR const char *ROWSCAN_NAME(const char *q, const char *e, int64_t ncols, int strict,
                                      int32_t *xi, float *xv, int64_t *n_out, int *unsorted)
{
    int64_t nr, ne;
    const char *r = rs_rows(q, e, ncols, xi, xv, n_out, 1, &nr, &ne);
    if (nr == 1) {
        *unsorted = 0;
        return r;
    }
    return RS_GENERAL(q, e, ncols, strict, xi, xv, n_out, unsorted);
}

ROWSCAN_ATTR const char *ROWS_NAME(const char *q, const char *e, int64_t ncols, int32_t *xi,
                                   float *xv, int64_t *lens, int64_t *nrows, int64_t *nent)
{
    return rs_rows(q, e, ncols, xi, xv, lens, INT64_MAX, nrows, nent);
}
#endif

#ifdef COUNT3_NAME
typedef unsigned char count3_vec __attribute__((vector_size(COUNT3_W)));

void COUNT3_NAME(const char *p, const char *e, int64_t out[3])
{
    int64_t nl = 0, co = 0, cm = 0;
    count3_vec vn, vc, vm;
    memset(&vn, '\n', sizeof vn);
    memset(&vc, ':', sizeof vc);
    memset(&vm, ',', sizeof vm);
    while (p + COUNT3_W <= e) {
        count3_vec an = {0}, ac = {0}, am = {0};
        for (int k = 0; k < 255 && p + COUNT3_W <= e; k++, p += COUNT3_W) {
            count3_vec w;
            memcpy(&w, p, sizeof w);
            an -= (count3_vec)(w == vn); /* a match is 0xff: subtracting adds 1 */
            ac -= (count3_vec)(w == vc);
            am -= (count3_vec)(w == vm);
        }
        for (int i = 0; i < COUNT3_W; i++) {
            nl += an[i];
            co += ac[i];
            cm += am[i];
        }
    }
    for (; p < e; p++) {
        nl += *p == '\n';
        co += *p == ':';
        cm += *p == ',';
    }
    out[0] = nl;
    out[1] = co;
    out[2] = cm;
}
#endif
