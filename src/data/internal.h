/* Internals of the data module: the number parsers, whole-file input, the
 * shared memory-mapping owner of the binary cache, and the parsers each
 * format file calls. Not part of the public API (tests and fuzzers include
 * it through src/). */
#ifndef XMC_DATA_INTERNAL_H
#define XMC_DATA_INTERNAL_H

#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "xmc/data.h"

/* ------------------------------------------------------------ numbers */

/* Parse a decimal float in [p, e): [+-]digits[.digits][(e|E)[+-]digits].
 * Returns the end of the number, or NULL when the text is not such a number
 * or its value is not a finite float. Correctly rounded (same result as
 * strtof in the C locale): see parse.c for why it is hand-written. */
static inline const char *xmc_parse_float(const char *p, const char *e, float *out);
/* strtof_l in the C locale on [s, end): the cases the fast path declines. */
const char *xmc_parse_float_slow(const char *s, const char *end, float *out);
/* Non-negative decimal integer (at most 18 digits) in [p, e); NULL if none. */
const char *xmc_parse_uint(const char *p, const char *e, int64_t *out);
/* Write v so that xmc_parse_float reads back exactly v (shortest of %.6g ..
 * %.9g that round-trips). Returns the length; buf needs 32 bytes. */
int xmc_format_float(char *buf, float v);
/* A short printable excerpt of [p, e) for error messages (static per-thread). */
const char *xmc_excerpt(const char *p, const char *e);

/* Inline: it is most of the parse time of a sparse file. */
static const double xmc_p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static inline const char *xmc_parse_float(const char *p, const char *e, float *out)
{
    const char *s = p;
    int neg = 0;
    if (p < e && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    uint64_t m = 0;
    int nd = 0, exp10 = 0, any = 0, lost = 0;
    while (p < e && (unsigned)(*p - '0') < 10) {
        any = 1;
        if (nd < 19) {
            m = m * 10 + (unsigned)(*p - '0');
            nd += m != 0;
        } else {
            exp10++;
            lost |= *p != '0';
        }
        p++;
    }
    if (p < e && *p == '.') {
        p++;
        while (p < e && (unsigned)(*p - '0') < 10) {
            any = 1;
            if (nd < 19) {
                m = m * 10 + (unsigned)(*p - '0');
                nd += m != 0;
                exp10--;
            } else {
                lost |= *p != '0';
            }
            p++;
        }
    }
    if (!any)
        return NULL;
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < e && (*p == '-' || *p == '+'))
            eneg = *p++ == '-';
        if (p >= e || (unsigned)(*p - '0') >= 10)
            return NULL;
        int x = 0;
        while (p < e && (unsigned)(*p - '0') < 10) {
            if (x < 100000)
                x = x * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -x : x;
    }
    if (m == 0 && !lost) {
        *out = neg ? -0.0f : 0.0f;
        return p;
    }
    if (!lost && m <= (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
        double d = exp10 < 0 ? (double)m / xmc_p10[-exp10] : (double)m * xmc_p10[exp10];
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        int be = (int)((bits >> 52) & 0x7ff) - 1023;
        /* Normal float range and not a float midpoint (low 29 mantissa bits
         * exactly 1000...0): then float(d) == float(exact value). */
        if (be >= -126 && be <= 127 && (bits & 0x1fffffffULL) != 0x10000000ULL) {
            float f = (float)d;
            if (isfinite(f)) {
                *out = neg ? -f : f;
                return p;
            }
        }
    }
    return xmc_parse_float_slow(s, p, out);
}


/* ------------------------------------------------------------ input */

/* A whole input file in memory: plain files are read (small) or mmap'ed
 * (large, read-only), gzip files are inflated by zlib. */
typedef struct xmc_inbuf {
    const char *data;
    size_t len;
    void *map;      /* mmap base, or NULL */
    size_t map_len;
    char *heap;     /* heap copy (gz or small), or NULL */
} xmc_inbuf;

int xmc_inbuf_open(xmc_inbuf *b, const char *path, xmc_error *err);
/* heap = 1: always an exact-size heap buffer with one spare byte (b->heap),
 * which the caller may take over (set b->heap = NULL before closing). */
int xmc_inbuf_open_ex(xmc_inbuf *b, const char *path, int heap, xmc_error *err);
void xmc_inbuf_close(xmc_inbuf *b);

/* Path that exists among "base" and "base.gz" (static per-thread buffer), or
 * NULL. */
const char *xmc_find_gz(const char *base);

/* ------------------------------------------------------------ mapping */

/* The memory mapping behind a binary-cache dataset: every csr/texts that
 * points into it holds one reference (their `owner` field); the last free
 * unmaps. */
typedef struct xmc_mapping {
    void *base;
    size_t len;
    atomic_long refs;
} xmc_mapping;

void xmc_mapping_ref(xmc_mapping *m);
void xmc_mapping_unref(xmc_mapping *m);

/* ------------------------------------------------------------ parsers */

/* Sparse rows after a header. mode XC: "l1,l2 f:v ..." rows giving X and Y;
 * mode SPARSE: "c:v ..." rows (any order) giving X only. */
enum { XMC_SP_SPARSE = 0, XMC_SP_XC = 1 };

/* Parse the body [buf, buf+len) of `path` whose first body line is line
 * `first_line`, with nrows rows. In XC mode *Y gets the labels (nlabels
 * columns, values 1). */
int xmc_sparse_parse(const char *path, const char *buf, size_t len, long first_line,
                     int mode, int64_t nrows, int64_t ncols, int64_t nlabels, xmc_csr **X,
                     xmc_csr **Y, xmc_error *err);

/* XC repository data file. */
int xmc_xc_read(const char *path, xmc_csr **X, xmc_csr **Y, xmc_error *err);

/* Texts from an in-memory buffer (takes ownership of heap `buf` of `len`
 * bytes with one spare byte after it) — shared by texts and JSON readers. */
int xmc_texts_from_buffer(const char *path, char *buf, size_t len, xmc_texts **out,
                          xmc_error *err);
/* Validate UTF-8 in [p, p+n): returns the offset of the first bad byte, or
 * (size_t)-1 when valid. */
size_t xmc_utf8_invalid_at(const char *p, size_t n);

/* Label-feature layout DIR/PREFIX and its JSON-lines variant. */
int xmc_lf_exists(const char *prefix);
int xmc_lf_load(const char *prefix, xmc_dataset *ds, xmc_error *err);
/* TEXTS+LABELS. */
int xmc_tl_load(const char *texts, const char *labels, const xmc_texts *vocab,
                xmc_dataset *ds, xmc_error *err);

/* Dataset helpers. */
int xmc_dataset_alloc(xmc_dataset **out, const char *spec, xmc_error *err);
/* Fill n/n_features/n_labels from the parts and check they agree. */
int xmc_dataset_finish(xmc_dataset *ds, const char *where, xmc_error *err);

#endif
