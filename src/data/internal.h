/* Internals of the data module: the number parsers, whole-file input, the
 * shared memory-mapping owner of the binary cache, and the parsers each
 * format file calls. Not part of the public API (tests and fuzzers include
 * it through src/). */
#ifndef XMC_DATA_INTERNAL_H
#define XMC_DATA_INTERNAL_H

#include <math.h>
#include <pthread.h>
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
/* Non-negative decimal integer (at most 18 digits) in [p, e); NULL if none.
 * Inline: one call per id in the sparse files. */
static inline const char *xmc_parse_uint(const char *p, const char *e, int64_t *out);
/* Write v so that xmc_parse_float reads back exactly v (shortest of %.6g ..
 * %.9g that round-trips). Returns the length; buf needs 32 bytes. */
int xmc_format_float(char *buf, float v);
/* A short printable excerpt of [p, e) for error messages (static per-thread). */
const char *xmc_excerpt(const char *p, const char *e);

/* Inline: it is most of the parse time of a sparse file. */
static const double xmc_p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
/* RN(10^-k): decimal literals are correctly rounded by the compiler. */
static const double xmc_p10_inv[23] = {1e-0,  1e-1,  1e-2,  1e-3,  1e-4,  1e-5,
                                       1e-6,  1e-7,  1e-8,  1e-9,  1e-10, 1e-11,
                                       1e-12, 1e-13, 1e-14, 1e-15, 1e-16, 1e-17,
                                       1e-18, 1e-19, 1e-20, 1e-21, 1e-22};

/* SWAR: the number of leading decimal digits among the 8 bytes at p (0..8)
 * and, when 1..7, their value (the first is the most significant). A byte is
 * a digit when its high nibble is 3 and adding 6 keeps it so; a carry out
 * of a byte only disturbs bytes after the first non-digit. The value is the
 * three-multiply combine of simdjson's parse_eight_digits_unrolled
 * (Lemire), after shifting the non-digits out as leading zeros. */
static inline int xmc_digits8(const char *p, uint64_t *val)
{
    uint64_t v;
    memcpy(&v, p, 8);
    const uint64_t hi = 0xF0F0F0F0F0F0F0F0ULL, three = 0x3030303030303030ULL;
    uint64_t bad = ((v & hi) ^ three) | (((v + 0x0606060606060606ULL) & hi) ^ three);
    int k = bad ? __builtin_ctzll(bad) >> 3 : 8;
    if (k == 0 || k == 8)
        return k;
    uint64_t t = (v & 0x0F0F0F0F0F0F0F0FULL) << (8 * (8 - k));
    t = (t * 2561) >> 8;
    t = ((t & 0x00FF00FF00FF00FFULL) * 6553601) >> 16;
    *val = ((t & 0x0000FFFF0000FFFFULL) * 42949672960001ULL) >> 32;
    return k;
}

static inline const char *xmc_parse_uint(const char *p, const char *e, int64_t *out)
{
    if (e - p >= 8) { /* ids are short: one SWAR step */
        uint64_t v;
        int k = xmc_digits8(p, &v);
        if (k == 0)
            return NULL;
        if (k < 8) {
            *out = (int64_t)v;
            return p + k;
        }
    }
    const char *s = p;
    uint64_t v = 0; /* unsigned: a 30-digit crafted id wraps, then is refused */
    while (p < e && (unsigned)(*p - '0') < 10) {
        v = v * 10 + (unsigned)(*p - '0');
        p++;
    }
    if (p == s || p - s > 18)
        return NULL;
    *out = (int64_t)v;
    return p;
}

static const uint64_t xmc_p10_u64[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};

static inline const char *xmc_parse_float(const char *p, const char *e, float *out)
{
    /* Fast path for the common shapes "I" and "I.F" (1-7 digits each, no
     * sign or exponent) with 16 readable bytes: two SWAR steps. An integer
     * below 10^7 is an exact float; I.F is m * 10^-k with m < 10^14, handed
     * to the same multiply-and-check as below. Anything else, or a product
     * too close to a float midpoint, takes the general path from the start. */
    if (e - p >= 16) {
        uint64_t a, b;
        int ka = xmc_digits8(p, &a);
        if (ka > 0 && ka < 8) {
            const char *q = p + ka;
            if (*q != '.' && (*q | 0x20) != 'e') {
                *out = (float)a;
                return q;
            }
            int kb = *q == '.' ? xmc_digits8(q + 1, &b) : 0;
            if (kb > 0 && kb < 8 && (q[1 + kb] | 0x20) != 'e') {
                uint64_t m = a * xmc_p10_u64[kb] + b;
                if (m == 0) {
                    *out = 0.0f;
                    return q + 1 + kb;
                }
                double d = (double)m * xmc_p10_inv[kb];
                uint64_t bits;
                memcpy(&bits, &d, sizeof bits);
                int be = (int)((bits >> 52) & 0x7ff) - 1023;
                if (be >= -126 && (bits & 0x1fffffffULL) - (0x10000000ULL - 16) > 32) {
                    *out = (float)d;
                    return q + 1 + kb;
                }
            }
        }
    }
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
        double d;
        uint64_t bits;
        int be;
        if (exp10 < 0) {
            /* Division is slow (a fifth of a sparse file's parse time), so
             * first multiply by RN(10^-k): the product is within 2 ulps
             * (double) of the exact value, so when it is more than 16 ulps
             * from a float midpoint (low 29 bits 0x10000000), no midpoint
             * lies between it and the exact value and both round to the same
             * float. Otherwise, Clinger's division below. */
            d = (double)m * xmc_p10_inv[-exp10];
            memcpy(&bits, &d, sizeof bits);
            be = (int)((bits >> 52) & 0x7ff) - 1023;
            if (be >= -126 && be <= 127 &&
                (bits & 0x1fffffffULL) - (0x10000000ULL - 16) > 32) {
                float f = (float)d;
                *out = neg ? -f : f; /* |d| < 2^53: finite */
                return p;
            }
            d = (double)m / xmc_p10[-exp10];
        } else {
            d = (double)m * xmc_p10[exp10];
        }
        memcpy(&bits, &d, sizeof bits);
        be = (int)((bits >> 52) & 0x7ff) - 1023;
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

/* Read files into the page cache in the background: a helper thread
 * queues readahead for each file in order (POSIX_FADV_WILLNEED, 2 MiB per
 * call, at most 64 MiB ahead of the reads completed, so they complete in
 * this order), so on a cold cache the device streams the later files while
 * the earlier ones are parsed (the readers' own page-fault readahead keeps
 * only a few hundred KiB in flight). Best effort: no errors, and no thread
 * when one cannot be created. The path strings must outlive the join, which
 * stops the helper early. */
#define XMC_PREFETCH_MAX 8
typedef struct xmc_prefetcher {
    pthread_t th;
    int started;
    atomic_int stop; /* set by the join: queue no more */
    int n;
    const char *paths[XMC_PREFETCH_MAX];
} xmc_prefetcher;

void xmc_prefetch_start(xmc_prefetcher *pf, const char *const *paths, int n);
void xmc_prefetch_join(xmc_prefetcher *pf); /* waits for the helper; idempotent */

/* A whole input file in memory: plain files are read (small) or mmap'ed
 * (large, read-only), gzip files are inflated by zlib. */
typedef struct xmc_inbuf {
    const char *data;
    size_t len;
    void *map;      /* mmap base, or NULL */
    size_t map_len;
    char *heap;     /* heap copy (gz or small), or NULL */
    xmc_prefetcher pf; /* readahead of a large mapping, joined on close */
    int resident;   /* every page was in memory when opened (heap: always) */
} xmc_inbuf;

/* How xmc_inbuf_open_ex holds the file:
 * MAP: read-only mapping for plain files of 1 MiB or more, else an
 *      exact-size heap block with one spare byte (b->heap);
 * OWN: a writable buffer with one spare byte that the caller may take over:
 *      for plain files of xmc_inbuf_own_map_bytes or more, a private
 *      mapping already copied into memory (b->map, b->map_len bytes:
 *      munmap), else the heap block (b->heap: xmc_free). Take it over by
 *      setting that field to NULL before closing.
 * gzip input and pipes are inflated or read into the heap in both modes. */
enum { XMC_INBUF_MAP = 0, XMC_INBUF_OWN = 1 };
int xmc_inbuf_open(xmc_inbuf *b, const char *path, xmc_error *err); /* MAP */
void xmc_inbuf_close(xmc_inbuf *b);
/* Size from which OWN maps (default 1 MiB); tests and fuzzers lower it to
 * 0 to cover the mapping on small files (not thread-safe). */
extern size_t xmc_inbuf_own_map_bytes;
/* OWN's per-block hook (xmc_inbuf_open_ex): when the file is mapped
 * (above), begin() is called with the mapping, the file's length, the
 * block size (a multiple of the page) and the block count before any
 * block is copied in (nonzero: no hook calls), then block(ctx, i) by the
 * thread that has just copied in block i, [i * block, (i + 1) * block)
 * cut at len, while other blocks are still being read: the caller's first
 * pass streams with the disk (texts.c). Blocks run concurrently and in any
 * order. */
typedef struct xmc_own_hook {
    int (*begin)(void *ctx, char *base, size_t len, size_t block, int64_t nblocks);
    void (*block)(void *ctx, int64_t i);
    void *ctx;
} xmc_own_hook;
/* hook: OWN only (NULL: none). */
int xmc_inbuf_open_ex(xmc_inbuf *b, const char *path, int mode, const xmc_own_hook *hook,
                      xmc_error *err);

/* Ask for transparent huge pages on the 2 MiB-aligned interior of a fresh
 * heap block of n bytes (no-op below 4 MiB): filling a 150 MB buffer then
 * takes ~75 page faults instead of ~37,000, which were a third of the time
 * of reading a texts file. Advice only; never fails. Not used for the CSR
 * arrays: on this VM (free page reporting, docs/data.md) huge-page faults
 * made the system time 3-7 times higher in most runs. */
void xmc_advise_huge(void *p, size_t n);

/* xmc_csr_create for a reader that writes every indptr[r + 1] (r < nrows)
 * and indptr[0] itself: indptr is not zeroed (its first touch is then in
 * the parsing threads, not a serial memset). Same errors as xmc_csr_create. */
int xmc_csr_create_fresh(xmc_csr **out, int64_t nrows, int64_t ncols, int64_t nnz,
                         int with_values, xmc_error *err);


/* Path that exists among "base" and "base.gz" (static per-thread buffer), or
 * NULL. */
const char *xmc_find_gz(const char *base);

/* ------------------------------------------------------------ mapping */

/* The memory mapping behind a binary-cache dataset, or behind the lines of
 * a texts file read whole (xmc_texts_read): every csr/texts that points
 * into it holds one reference (their `owner` field); the last free
 * unmaps. */
typedef struct xmc_mapping {
    void *base;
    size_t len;
    void *heap; /* freed (xmc_free) with the mapping, or NULL: a texts file's offsets */
    atomic_long refs;
} xmc_mapping;

void xmc_mapping_ref(xmc_mapping *m);
void xmc_mapping_unref(xmc_mapping *m);

/* ------------------------------------------------------------ parsers */

/* Sparse rows after a header. mode XC: "l1,l2 f:v ..." rows giving X and Y;
 * mode SPARSE: "c:v ..." rows (any order) giving X only. */
enum { XMC_SP_SPARSE = 0, XMC_SP_XC = 1 };

/* The entries "id:val ..." of one row, up to and past its '\n', with a
 * vector scan for the separators; NULL declines the row (malformed or
 * unusual), which the scalar parser then reads and reports. Contract and
 * why in rowscan.h; variants in rowscan*.c. */
typedef const char *(*xmc_sparse_row_fn)(const char *q, const char *e, int64_t ncols,
                                         int strict, int32_t *xi, float *xv, int64_t *n,
                                         int *unsorted);
const char *xmc_sparse_row_ref(const char *q, const char *e, int64_t ncols, int strict,
                               int32_t *xi, float *xv, int64_t *n, int *unsorted);
const char *xmc_sparse_row_avx2(const char *q, const char *e, int64_t ncols, int strict,
                                int32_t *xi, float *xv, int64_t *n, int *unsorted);
const char *xmc_sparse_row_avx512(const char *q, const char *e, int64_t ncols, int strict,
                                  int32_t *xi, float *xv, int64_t *n, int *unsorted);
/* Whole rows "c:v ..." of a sparse file from q, as many as take the
 * common shape (rowscan.h, rs_rows): their entries to xi/xv, their
 * lengths to lens; returns the start of the first row not taken (the
 * caller reads it with the row kernel or the scalar parser), with *nrows
 * rows and *nent entries done. Where the row kernel is avx2 or avx512. */
typedef const char *(*xmc_sparse_rows_fn)(const char *q, const char *e, int64_t ncols,
                                          int32_t *xi, float *xv, int64_t *lens,
                                          int64_t *nrows, int64_t *nent);
const char *xmc_sparse_rows_avx512(const char *q, const char *e, int64_t ncols, int32_t *xi,
                                   float *xv, int64_t *lens, int64_t *nrows, int64_t *nent);
const char *xmc_sparse_rows_avx2(const char *q, const char *e, int64_t ncols, int32_t *xi,
                                 float *xv, int64_t *lens, int64_t *nrows, int64_t *nent);
/* The whole-row kernel that goes with the row kernel `row`, or NULL. */
xmc_sparse_rows_fn xmc_sparse_rows_for(xmc_sparse_row_fn row);
/* Table of the one-vector entry path of the avx2 / avx512 kernels
 * (rowscan.c says what it holds). */
struct xmc_rs_tab {
    _Alignas(16) uint8_t shuf[17 * 9 * 16][16]; /* [(dpos * 9 + a) * 16 + b] */
    float div[17 * 9 * 16];
};
extern const struct xmc_rs_tab xmc_rs_tab;
/* The best variant for this CPU after XMC_KERNEL capping; NULL (the scalar
 * parser alone) without AVX2 or under XMC_KERNEL=ref. */
xmc_sparse_row_fn xmc_sparse_row_best(void);
/* "ref", "avx2", "avx512", or NULL when the hardware lacks it (tests). */
xmc_sparse_row_fn xmc_sparse_row_get(const char *level);

/* Counts for the sparse readers (the first MiB, to size the arrays; the
 * lines of chunks not parsed to their end): out[0..2] = the numbers of
 * '\n', ':' and ',' in [p, e). Variants (rowscan.h): 16-byte vectors
 * (ref: any CPU) and 32-byte (avx2); xmc_count3_best follows
 * xmc_cpu_features (XMC_KERNEL). */
typedef void (*xmc_count3_fn)(const char *p, const char *e, int64_t out[3]);
void xmc_count3_ref(const char *p, const char *e, int64_t out[3]);
void xmc_count3_avx2(const char *p, const char *e, int64_t out[3]);
xmc_count3_fn xmc_count3_best(void);
/* "ref" or "avx2", or NULL when the hardware lacks it (tests). */
xmc_count3_fn xmc_count3_get(const char *level);

/* Parse the body [buf, buf+len) of `path` whose first body line is line
 * `first_line`, with nrows rows. In XC mode *Y gets the labels (nlabels
 * columns, values 1). `row` is the fast row kernel (NULL: the scalar parser
 * alone; results and errors are the same either way). */
int xmc_sparse_parse(const char *path, const char *buf, size_t len, long first_line,
                     int mode, int64_t nrows, int64_t ncols, int64_t nlabels,
                     xmc_sparse_row_fn row, xmc_csr **X, xmc_csr **Y, xmc_error *err);
/* The body is parsed segment by segment (about this many bytes,
 * cut at a newline), so reads of later bytes overlap the parse of earlier
 * ones; default 16 MiB, the first ones smaller (1/16 of it, doubling; the
 * file readers use one segment for a body that was all in memory at open).
 * Tests and fuzzers lower it (not thread-safe). */
extern size_t xmc_sparse_segment_bytes;
/* 1 when the mapping [p, p+n) is in the page cache, as far as one page per
 * MiB and the last page tell (mincore; xmc_inbuf_open asks before it
 * queues the prefetch). */
int xmc_resident(const void *p, size_t n);

/* XC repository data file. */
int xmc_xc_read(const char *path, xmc_csr **X, xmc_csr **Y, xmc_error *err);

/* Texts from an in-memory buffer (takes ownership of heap `buf` of `len`
 * bytes with one spare byte after it) — shared by texts and JSON readers. */
int xmc_texts_from_buffer(const char *path, char *buf, size_t len, xmc_texts **out,
                          xmc_error *err);
/* Validate UTF-8 in [p, p+n): returns the offset of the first bad byte, or
 * (size_t)-1 when valid. */
size_t xmc_utf8_invalid_at(const char *p, size_t n);

/* The parallel texts reader's passes over a chunk of a file (texts.c,
 * textscan.h): pass 1 counts its '\n' and flags NUL, '\r' or invalid
 * UTF-8; pass 2 writes its line offsets from off[lines] and turns each '\n'
 * into NUL. "ref" = 16-byte vectors, "avx2" = 32-byte (NULL when the
 * hardware lacks it; tests); xmc_tscan_best follows xmc_cpu_features. */
typedef struct xmc_tchunk {
    size_t b, e;   /* byte range, cut after a '\n' */
    int64_t lines; /* '\n' count, then the first line index */
    int odd;       /* NUL, '\r' or invalid UTF-8 seen */
    /* The one-pass variant (xmc_tscan1_*): the line offsets into tmp[0,
     * cap), nt of them (0: the chunk is as read, pass 2 needed), and
     * last = 1 when its last byte, a '\n', became NUL too. */
    int64_t *tmp, cap, nt;
    int last;
    /* xmc_tscan1_*: validate UTF-8 over [b + vskip_b, e - vskip_e) only:
     * the fused reader's chunks are cut anywhere, and the caller checks
     * the bytes around each cut (texts.c). 0 for chunks cut at line ends. */
    size_t vskip_b, vskip_e;
} xmc_tchunk;
typedef void (*xmc_tscan_fn)(const char *buf, xmc_tchunk *c);
typedef void (*xmc_tfill_fn)(char *buf, const xmc_tchunk *c, int64_t *off);
void xmc_tscan_ref(const char *buf, xmc_tchunk *c);
void xmc_tfill_ref(char *buf, const xmc_tchunk *c, int64_t *off);
void xmc_tscan_avx2(const char *buf, xmc_tchunk *c);
void xmc_tfill_avx2(char *buf, const xmc_tchunk *c, int64_t *off);
xmc_tscan_fn xmc_tscan_get(const char *level, xmc_tfill_fn *fill);
xmc_tscan_fn xmc_tscan_best(xmc_tfill_fn *fill);
/* Pass 1 and 2 in one (textscan.h): counts and flags as pass 1, and each
 * '\n' turned into NUL with the line offsets written to c->tmp (c->nt of
 * them) as long as they fit in c->cap (else the chunk is restored, c->nt
 * = 0); xmc_tchunk_restore puts the '\n' back (a file found odd). */
void xmc_tscan1_ref(char *buf, xmc_tchunk *c);
void xmc_tscan1_avx2(char *buf, xmc_tchunk *c);
typedef void (*xmc_tscan1_fn)(char *buf, xmc_tchunk *c);
xmc_tscan1_fn xmc_tscan1_get(const char *level);
xmc_tscan1_fn xmc_tscan1_best(void);
void xmc_tchunk_restore(char *buf, xmc_tchunk *c);
/* Chunk size of the fused texts reader (0: the populate block); tests and
 * fuzzers set a small power of two (16 or more) to cut many chunks. */
extern size_t xmc_texts_fused_chunk;

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
