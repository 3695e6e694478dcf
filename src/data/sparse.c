/* Readers and writers of the sparse text formats: the XC repository data
 * file ("N F L" + "l1,l2 f:v ..." rows), the sparse matrix text format
 * ("N C" + "c:v ..." rows; X_Y, X_Xf and score matrices) and split files.
 *
 * Algorithm (reading): the whole body is in memory (mmap or inflated), cut
 * into segments at line boundaries (1 MiB, then doubling up to ~16 MiB, so
 * the cores start on a cold file once its first MiB has arrived), and each
 * segment into chunks. Each chunk is parsed once, into a scratch buffer
 * from a pool (rows and slots from 0); as soon as every earlier chunk is
 * parsed, its first row, entry and label slot are known (running sums, in
 * file order, under one critical section) and it is copied into the
 * matrices by whichever thread got there, while its output is still in
 * the cache. (A first pass that counted lines, ':' and ',' of every chunk
 * to know these offsets read the input twice: ~10 % of the load's CPU.)
 * Segments pipeline a cold read: the prefetch thread streams segment s+1
 * while s is parsed. A body already in memory (page cache, heap) is one
 * segment. The arrays are sized from the first MiB's counts projected to
 * the body (+3 %; exact for a body of at most 1 MiB) and before each later
 * segment from the entries so far; chunks past that room wait in their
 * scratch until the segment's end, when the arrays grow (a copy), and
 * more than 1/8 unused is given back at the end.
 * Once the rows exceed the header's N, or a chunk fails, nothing more is
 * placed and the rest is only counted: the row-count error wins over any
 * other, as before, and otherwise the earliest chunk's error is reported
 * (its line is the chunk's first row plus the row in the chunk), so the
 * message is the same whatever the thread or segment count.
 *
 * Memory: the input (mapped or heap) + the output CSR arrays (up to ~3 %
 * slack when projected) + one scratch per chunk in flight (~28 bytes of
 * address space per chunk byte, only the used part touched).
 * Threading: OpenMP over chunks, dynamic schedule; chunks write disjoint
 * slices. Critical sections: xmc_sparse_order (the running sums),
 * xmc_sparse_pool (the scratch pool), progress and page dropping.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "data/internal.h"

#define MIN_CHUNK (256u << 10)
#define SEGMENT_BYTES ((size_t)16 << 20)

/* One chunk's parsed output before it is placed in the matrices, rows and
 * slots numbered from 0. Sized from the chunk's bytes: there are no more
 * rows, ':' or ',' than bytes, and a kernel writes at most one entry per
 * ':' and one length per row (+ SCRATCH_PAD for safety). They come from a
 * pool and go back once placed, so their pages are faulted once and are
 * mostly still in the cache when reused. */
typedef struct chunk_out {
    int32_t *xi, *yi;
    float *xv;
    int64_t *xp, *yp; /* row lengths at [r + 1], as indptr holds them */
    size_t room;      /* chunk bytes it can hold */
} chunk_out;

#define SCRATCH_PAD 64

/* What order_chunk decided for a parsed chunk. */
enum { C_SKIP, C_PLACE, C_DEFER };

typedef struct chunk {
    const char *b, *e;
    int parsed; /* SP_ZAP bookkeeping, under the critical section zap */
    int fate;   /* C_*: set in iteration order */
    int64_t lines, colons, commas;
    int64_t row0, ent0, lab0; /* first row, entry slot, label slot */
    int64_t nent, nlab;       /* actually written */
    int ready;                /* parsed (or counted): order_chunk may take it */
    int out;                  /* its chunk_out in the pool, or -1 */
    xmc_error err;
} chunk;

static inline int is_ws(char c) { return c == ' ' || c == '\t'; }

/* Pass 1: '\n', ':' and ',' of a chunk, by the variant for this CPU
 * (xmc_count3_best: 16- or 32-byte vector compares, rowscan.h). */
static void count_chunk(chunk *c, xmc_count3_fn count)
{
    int64_t k[3];
    count(c->b, c->e, k);
    if (c->e > c->b && c->e[-1] != '\n')
        k[0]++; /* last line without '\n' */
    c->lines = k[0];
    c->colons = k[1];
    c->commas = k[2];
}

typedef struct pair {
    int32_t i;
    float v;
} pair;

static int pair_cmp(const void *a, const void *b)
{
    int32_t x = ((const pair *)a)->i, y = ((const pair *)b)->i;
    return (x > y) - (x < y);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void sort_i32(int32_t *a, int64_t n)
{
    if (n > 32) { /* a crafted or transposed file: stay O(n log n) */
        qsort(a, (size_t)n, sizeof *a, cmp_i32);
        return;
    }
    for (int64_t i = 1; i < n; i++) { /* label lists are short */
        int32_t v = a[i];
        int64_t j = i - 1;
        while (j >= 0 && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

/* Sort a row's (index, value) pairs in place: indices and values are two
 * arrays, so use a small scratch of pairs. Returns 0 on a duplicate. */
static int sort_row(int32_t *idx, float *val, int64_t n, pair **scratch, int64_t *cap,
                    int32_t *dup)
{
    int sorted = 1;
    for (int64_t k = 1; k < n; k++)
        if (idx[k] <= idx[k - 1]) {
            sorted = 0;
            break;
        }
    if (sorted)
        return 1;
    if (n > *cap) {
        pair *s = xmc_realloc(*scratch, (size_t)n * sizeof(pair));
        if (!s)
            return -1;
        *scratch = s;
        *cap = n;
    }
    pair *s = *scratch;
    for (int64_t k = 0; k < n; k++)
        s[k] = (pair){idx[k], val[k]};
    qsort(s, (size_t)n, sizeof(pair), pair_cmp);
    for (int64_t k = 0; k < n; k++) {
        if (k > 0 && s[k].i == s[k - 1].i) {
            *dup = s[k].i;
            return 0;
        }
        idx[k] = s[k].i;
        val[k] = s[k].v;
    }
    return 1;
}

typedef struct job {
    const char *path;
    int mode;
    xmc_sparse_row_fn row;   /* fast path, or NULL */
    xmc_sparse_rows_fn rows; /* whole rows (sparse mode, avx512), or NULL */
    int64_t ncols, nlabels;
    long first_line; /* of the chunk: errors add the chunk's first row later */
} job;

/* Files this large report progress (MiB parsed) as chunks finish. */
#define PROGRESS_BYTES ((size_t)64 << 20)

#define FAIL(c, ln, ...)                                                                 \
    do {                                                                                 \
        XMC_ERR(&(c)->err, XMC_EFORMAT, j->path, (ln), __VA_ARGS__);                     \
        goto done;                                                                       \
    } while (0)

/* End of the line starting at or before q (for error messages only: the
 * parse loop itself never looks for the line end ahead of time). */
static const char *line_end(const char *q, const char *e)
{
    const char *le = memchr(q, '\n', (size_t)(e - q));
    if (!le)
        le = e;
    return le;
}

/* 1 when q (< e) ends the line: '\n', or a '\r' right before '\n' or the
 * end of the chunk (a "\r\n" file). */
static inline int at_eol(const char *q, const char *e)
{
    return *q == '\n' || (*q == '\r' && (q + 1 == e || q[1] == '\n'));
}

/* Parse one chunk. The tokens are parsed against the chunk end `e` rather
 * than the line end: digits, '.', 'e' never match '\n' or '\r', so every
 * number stops where it would at the line end and no per-line memchr is
 * needed (it was a tenth of the time). Error messages recompute the line
 * end, so they read exactly as before. */
static void parse_chunk(const job *j, chunk *c, const chunk_out *o)
{
    int64_t row = 0, ent = 0, lab = 0;
    int32_t *xi = o->xi, *yi = o->yi;
    float *xv = o->xv;
    int64_t *xp = o->xp;
    const int64_t ncols = j->ncols;
    pair *scratch = NULL;
    int64_t cap = 0;
    const char *p = c->b, *e = c->e;
    int skip = 0; /* rows left to read one by one after j->rows handed one back */
    while (p < e) {
        if (j->rows) {
            if (skip == 0) {
                int64_t nr, ne;
                const char *r = j->rows(p, e, ncols, xi + ent, xv + ent, xp + row + 1, &nr, &ne);
                if (nr > 0) {
                    row += nr;
                    ent += ne;
                    p = r;
                    continue;
                }
                skip = 16; /* a file of odd rows ("\r\n", tabs) pays ~1 call in 16 */
            } else {
                skip--;
            }
        }
        long ln = j->first_line + (long)row;
        const char *q = p, *le;
        if (j->mode == XMC_SP_XC) {
            /* Labels: the first token, unless the row starts with a space
             * (no labels) or the token is already a feature (has ':'). */
            const char *te = q;
            while (te < e && !is_ws(*te) && *te != '\n')
                te++;
            if (te > q && te[-1] == '\r' && (te == e || *te == '\n'))
                te--;
            if (te > q && !memchr(q, ':', (size_t)(te - q))) {
                int64_t l0 = lab;
                while (q < te) {
                    int64_t v;
                    const char *r = xmc_parse_uint(q, te, &v);
                    if (!r || (r < te && *r != ','))
                        FAIL(c, ln, "expected a label id (0-based integer), found %s",
                             xmc_excerpt(q, te));
                    if (v >= j->nlabels)
                        FAIL(c, ln, "label id %lld out of range: header says L = %lld",
                             (long long)v, (long long)j->nlabels);
                    yi[lab++] = (int32_t)v;
                    q = r;
                    if (q < te) {
                        q++; /* ',' */
                        if (q == te) {
                            le = line_end(q, e);
                            if (le > p && le[-1] == '\r')
                                le--;
                            FAIL(c, ln, "expected a label id after ',', found %s",
                                 xmc_excerpt(q, le));
                        }
                    }
                }
                sort_i32(yi + l0, lab - l0);
                for (int64_t k = l0 + 1; k < lab; k++)
                    if (yi[k] == yi[k - 1])
                        FAIL(c, ln, "duplicate label id %d", yi[k]);
                o->yp[row + 1] = lab - l0;
            } else {
                o->yp[row + 1] = 0; /* indptr is not zeroed */
            }
        }
        int64_t e0 = ent;
        int32_t prev = -1;
        int unsorted = 0;
        if (j->row) {
            int64_t nf;
            const char *r =
                j->row(q, e, ncols, j->mode == XMC_SP_XC, xi + ent, xv + ent, &nf, &unsorted);
            if (r) {
                ent += nf;
                p = r;
                goto row_end;
            }
            unsorted = 0; /* declined: the scalar loop re-reads the row */
        }
        for (;;) {
            while (q < e && is_ws(*q))
                q++;
            if (q >= e || at_eol(q, e))
                break;
            int64_t id;
            const char *r = xmc_parse_uint(q, e, &id);
            if (!r || r >= e || *r != ':') {
                le = line_end(q, e);
                if (le > p && le[-1] == '\r')
                    le--;
                FAIL(c, ln, "expected 'index:value', found %s", xmc_excerpt(q, le));
            }
            if (id >= ncols)
                FAIL(c, ln, "%s id %lld out of range: header says %lld",
                     j->mode == XMC_SP_XC ? "feature" : "column", (long long)id,
                     (long long)ncols);
            float v;
            const char *ve = xmc_parse_float(r + 1, e, &v);
            if (!ve || (ve < e && !is_ws(*ve) && !at_eol(ve, e))) {
                le = line_end(r + 1, e);
                if (le > p && le[-1] == '\r')
                    le--;
                ve = r + 1;
                while (ve < le && !is_ws(*ve))
                    ve++;
                FAIL(c, ln, "expected a finite number after '%lld:', found %s", (long long)id,
                     xmc_excerpt(r + 1, ve));
            }
            if ((int32_t)id <= prev) {
                if (j->mode == XMC_SP_XC) {
                    if ((int32_t)id == prev)
                        FAIL(c, ln, "duplicate feature id %lld", (long long)id);
                    FAIL(c, ln, "feature ids must increase: %lld after %d", (long long)id,
                         prev);
                }
                unsorted = 1;
            }
            prev = (int32_t)id;
            xi[ent] = (int32_t)id;
            xv[ent] = v;
            ent++;
            q = ve;
        }
        /* q is at the line end: '\n', "\r\n", a final '\r', or e. */
        if (q < e && *q == '\r')
            q++;
        p = q < e ? q + 1 : e;
    row_end:
        if (unsorted) {
            int32_t dup = 0;
            int s = sort_row(xi + e0, xv + e0, ent - e0, &scratch, &cap, &dup);
            if (s < 0) {
                XMC_ERR(&c->err, XMC_ENOMEM, j->path, ln, "out of memory");
                goto done;
            }
            if (s == 0)
                FAIL(c, ln, "duplicate column id %d", dup);
        }
        xp[row + 1] = ent - e0;
        row++;
    }
done:
    c->lines = row; /* the chunk's line count when it parsed cleanly */
    c->nent = ent;
    c->nlab = lab;
    xmc_free(scratch);
}

#undef FAIL

/* Bytes per segment of the pipelined parse (internal.h); tests and fuzzers
 * lower it to cover the segment joins on small inputs. */
size_t xmc_sparse_segment_bytes = SEGMENT_BYTES;

/* Cut [b, e) into nch chunks at line boundaries, counts cleared. */
static void cut_chunks(chunk *ch, int nch, const char *b, const char *e)
{
    size_t len = (size_t)(e - b);
    const char *p = b;
    for (int i = 0; i < nch; i++) {
        memset(&ch[i], 0, sizeof ch[i]);
        ch[i].b = p;
        const char *t = i == nch - 1 ? e : b + (size_t)((double)len * (i + 1) / nch);
        if (t < p)
            t = p;
        if (t < e && t > b && t[-1] != '\n') {
            const char *nl = memchr(t, '\n', (size_t)(e - t));
            t = nl ? nl + 1 : e;
        }
        ch[i].e = t;
        p = t;
    }
}

/* Room for `need` entries in m (cap now *cap): grow to `want` (>= need). */
static int grow_csr(xmc_csr *m, int64_t *cap, int64_t need, int64_t want)
{
    if (need <= *cap)
        return 1;
    size_t bi, bv;
    if (!xmc_mul_ok((size_t)want + 1, sizeof(int32_t), &bi) ||
        !xmc_mul_ok((size_t)want + 1, sizeof(float), &bv))
        return 0;
    int32_t *ni = xmc_realloc(m->indices, bi);
    if (!ni)
        return 0;
    m->indices = ni;
    if (m->values) {
        float *nv = xmc_realloc(m->values, bv);
        if (!nv)
            return 0; /* indices grown, cap unchanged: still consistent */
        m->values = nv;
    }
    *cap = want;
    return 1;
}

/* Give back the slack of an upper-bound allocation when it is worth a copy
 * (xmc_realloc copies; untouched slack pages are never faulted in). */
static void shrink_csr(xmc_csr *m, int64_t cap, int64_t n)
{
    if (cap - n <= cap / 8)
        return;
    int32_t *ni = xmc_realloc(m->indices, ((size_t)n + 1) * sizeof(int32_t));
    if (ni)
        m->indices = ni;
    if (m->values) {
        float *nv = xmc_realloc(m->values, ((size_t)n + 1) * sizeof(float));
        if (nv)
            m->values = nv;
    }
}

static void scratch_free(chunk_out *s)
{
    xmc_free(s->xi);
    xmc_free(s->xv);
    xmc_free(s->xp);
    xmc_free(s->yi);
    xmc_free(s->yp);
    memset(s, 0, sizeof *s);
}

/* Room in s for a chunk of `bytes` (labels too when xc). 0: out of memory
 * (s is then empty). */
static int scratch_fit(chunk_out *s, size_t bytes, int xc)
{
    if (s->xi && bytes <= s->room && (!xc || s->yi))
        return 1;
    scratch_free(s);
    size_t n = bytes + SCRATCH_PAD;
    s->xi = xmc_malloc(n * sizeof *s->xi);
    s->xv = xmc_malloc(n * sizeof *s->xv);
    s->xp = xmc_malloc((n + 1) * sizeof *s->xp);
    if (xc) {
        s->yi = xmc_malloc(n * sizeof *s->yi);
        s->yp = xmc_malloc((n + 1) * sizeof *s->yp);
    }
    if (!s->xi || !s->xv || !s->xp || (xc && (!s->yi || !s->yp))) {
        scratch_free(s);
        return 0;
    }
    s->room = bytes;
    return 1;
}

/* Copy a parsed chunk from its scratch to its place in X (and Y). Its
 * destination is first touched here, by the thread of the chunk, so the
 * page faults and zeroing of the fresh output are spread over the cores. */
static void place_chunk(xmc_csr *x, xmc_csr *y, const chunk *c, const chunk_out *o)
{
    memcpy(x->indptr + c->row0 + 1, o->xp + 1, (size_t)c->lines * sizeof *o->xp);
    memcpy(x->indices + c->ent0, o->xi, (size_t)c->nent * sizeof *o->xi);
    memcpy(x->values + c->ent0, o->xv, (size_t)c->nent * sizeof *o->xv);
    if (!y)
        return;
    memcpy(y->indptr + c->row0 + 1, o->yp + 1, (size_t)c->lines * sizeof *o->yp);
    memcpy(y->indices + c->lab0, o->yi, (size_t)c->nlab * sizeof *o->yi);
    for (int64_t k = c->lab0; k < c->lab0 + c->nlab; k++)
        y->values[k] = 1.0f;
}

/* Where the chunks of a parse go: the next free row, entry and label slot,
 * advanced in chunk order by order_chunk. */
typedef struct place {
    int64_t rows, ent, lab;
    int64_t cap_ent, cap_lab; /* room in the arrays */
    int64_t nrows;            /* the header's N */
    int stop;                 /* a chunk failed or the rows exceed N: place no more */
    int front;                /* chunks before it are ordered */
    int *free, nfree;         /* the pool's unused chunk_outs (a stack) */
} place;

/* Chunk c's first row and slots, and its fate (called in chunk order,
 * under the critical section xmc_sparse_order). A chunk that failed stops
 * all placing, so its error is the first in file order; so do more rows
 * than N (the row-count error wins over any other). A chunk past the room
 * is deferred (kept in its scratch), as are all after it, since the slots
 * only grow. */
static void order_chunk(place *pl, chunk *c)
{
    c->row0 = pl->rows;
    c->ent0 = pl->ent;
    c->lab0 = pl->lab;
    pl->rows += c->lines;
    c->fate = C_SKIP;
    if (c->err.code && c->err.line > 0)
        c->err.line += (long)c->row0; /* parsed with rows from 0 */
    if (pl->stop || c->err.code || pl->rows > pl->nrows) {
#pragma omp atomic write
        pl->stop = 1;
        return;
    }
    pl->ent += c->nent;
    pl->lab += c->nlab;
    c->fate = pl->ent <= pl->cap_ent && pl->lab <= pl->cap_lab ? C_PLACE : C_DEFER;
}

/* A chunk_out from the pool (there is one per chunk: never empty). */
static int pool_take(place *pl)
{
    int k;
#pragma omp critical(xmc_sparse_pool)
    k = pl->free[--pl->nfree];
    return k;
}

static void pool_give(place *pl, int k)
{
#pragma omp critical(xmc_sparse_pool)
    pl->free[pl->nfree++] = k;
}

/* Act on an ordered chunk's fate: place it and give its chunk_out back,
 * or keep it (C_DEFER: placed after the segment, when the arrays grew). */
static void settle(xmc_csr *x, xmc_csr *y, chunk *c, chunk_out *sc, place *pl)
{
    if (c->fate == C_PLACE)
        place_chunk(x, y, c, &sc[c->out]);
    if (c->fate != C_DEFER && c->out >= 0)
        pool_give(pl, c->out);
}

/* Flags of sparse_parse for a body in a read-only file mapping. */
enum {
    /* Not all in the page cache at open: once the segments have grown to
     * seg, a body whose last page has arrived is parsed to its end as one
     * segment. The prefetch thread reads in order and faster than the
     * cores parse, so the cold tail of a file is usually all in memory by
     * then, and every segment costs two barriers. (A page that is missing
     * after all only makes its reader wait.) */
    SP_PROBE = 1,
    /* Unmap each chunk's whole pages once it is parsed (MADV_DONTNEED,
     * which for a read-only file mapping only drops our page-table
     * entries): the parsing threads do it in parallel, where the final
     * munmap of a 248 MB mapping took 4-9 ms on one core while the other
     * waited. Nothing reads a parsed chunk again. */
    SP_ZAP = 2,
};

/* Drop the whole pages of [b, e) from the mapping (SP_ZAP). */
static void zap(const char *b, const char *e)
{
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)b + pg - 1) & ~(pg - 1), z = (uintptr_t)e & ~(pg - 1);
    if (z > a)
        madvise((void *)a, z - a, MADV_DONTNEED); /* advice: errors ignored */
}

#define ZAP_BYTES ((size_t)16 << 20)

/* Chunk i of nch is parsed: drop the pages of the parsed prefix of the
 * chunks once it spans ZAP_BYTES (or all of them). Each madvise interrupts
 * the other cores for a TLB flush: one call per 1 MiB chunk was ~20 ms of
 * CPU per cold 1M load (smp_call_function_many_cond, native_write_msr in
 * perf), one per 16 MiB is 16 times fewer. *zc: chunks zapped so far. */
static void zap_parsed(chunk *ch, int nch, int i, int *zc)
{
    const char *b = NULL, *e = NULL;
#pragma omp critical(xmc_sparse_zap)
    {
        ch[i].parsed = 1;
        int k = *zc;
        while (k < nch && ch[k].parsed)
            k++;
        if (k > *zc && (k == nch || (size_t)(ch[k - 1].e - ch[*zc].b) >= ZAP_BYTES)) {
            b = ch[*zc].b;
            e = ch[k - 1].e;
            *zc = k;
        }
    }
    if (b)
        zap(b, e);
}

/* Room for the entries and labels before any chunk is parsed: exact when
 * the body is at most SAMPLE_BYTES (counted whole, as small inputs always
 * were), else the counts of its first SAMPLE_BYTES projected to the whole
 * body (+3 %). A short guess only defers chunks (order_chunk); a long one
 * is untouched address space, shrunk at the end. Returns 1 when exact. */
#define SAMPLE_BYTES ((size_t)1 << 20)

static int first_room(const char *b, size_t len, xmc_count3_fn count, int64_t *want_e,
                      int64_t *want_l)
{
    chunk c = {.b = b, .e = b + (len < SAMPLE_BYTES ? len : SAMPLE_BYTES)};
    if (c.e < b + len && c.e > b) { /* end the sample at a line end */
        const char *nl = memchr(c.e, '\n', (size_t)(b + len - c.e));
        c.e = nl ? nl + 1 : b + len;
    }
    count_chunk(&c, count);
    int64_t e = c.colons, l = c.commas + c.lines;
    if (c.e == b + len) {
        *want_e = e;
        *want_l = l;
        return 1;
    }
    double scale = (double)len / (double)(c.e - b) * 1.03;
    *want_e = (int64_t)((double)e * scale) + 1;
    *want_l = (int64_t)((double)l * scale) + 1;
    return 0;
}

/* xmc_sparse_parse with segments of `seg` bytes (len: one segment) and the
 * SP_* flags. One pass per chunk (the file's opening comment): parse into
 * a pooled scratch, order the chunks that are ready (order_chunk), place
 * them (settle). A thread that finishes a chunk before an earlier one
 * moves on; the thread that finishes the earlier one places both, so
 * nobody waits in chunk order (an `omp ordered` step did, and cost warm
 * wall time). */
static int sparse_parse(const char *path, const char *buf, size_t len, long first_line,
                        int mode, int64_t nrows, int64_t ncols, int64_t nlabels,
                        xmc_sparse_row_fn row, xmc_csr **X, xmc_csr **Y, size_t seg,
                        int flags, xmc_error *err)
{
    *X = NULL;
    if (Y)
        *Y = NULL;
    int nth = xmc_get_threads();
    if (nth < 1)
        nth = 1;
    /* At least 32 chunks per thread per segment, and chunks of at most
     * ~1 MiB: a thread that runs out of chunks waits at the barrier for
     * the last one (a 4 MiB chunk of a 248 MB file is ~6 ms). */
    size_t mib = len >> 20;
    int maxch = (int)(mib < 4096 ? mib : 4096);
    if (maxch < 32 * nth)
        maxch = 32 * nth;
    chunk *ch = xmc_calloc((size_t)maxch, sizeof *ch);
    chunk_out *sc = xmc_calloc((size_t)maxch, sizeof *sc); /* the pool: one per chunk */
    int *freel = xmc_calloc((size_t)maxch, sizeof *freel);
    xmc_csr *x = NULL, *y = NULL;
    int rc = XMC_OK;
    xmc_error perr = {0}; /* the first parse (or allocation) error */
    if (!ch || !sc || !freel) {
        rc = XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
        goto out;
    }
    const char *end = buf + len, *s = buf;
    const xmc_count3_fn count = xmc_count3_best();
    if (seg == 0)
        seg = 1;
    /* The first segment waits for its bytes with nothing to overlap, so
     * segments start at seg / 16 and double up to seg. */
    size_t cur = seg < len && seg >= 16 ? seg / 16 : seg;
    int64_t lines = 0; /* counted, placed or not */
    int projected = 0; /* arrays sized from a projection, not the exact count */
    place pl = {.nrows = nrows, .free = freel, .nfree = maxch};
    for (int i = 0; i < maxch; i++)
        freel[i] = maxch - 1 - i; /* low ones first: they are reused, warm */
    /* Lines are at least one byte: more rows than bytes is a truncation
     * error, found by counting alone (no allocation proportional to N). */
    int parsing = nrows <= (int64_t)len;
    int prog_on = len >= PROGRESS_BYTES;
    xmc_progress prog;
    int64_t done = 0;
    if (prog_on) {
        const char *base = strrchr(path, '/');
        xmc_progress_start(&prog, base ? base + 1 : path, "MiB", (int64_t)(len >> 20));
    }
    while (s < end) {
        if ((flags & SP_PROBE) && cur == seg && xmc_resident(end - 1, 1))
            cur = (size_t)(end - s);
        const char *t = (size_t)(end - s) <= cur ? end : s + cur;
        cur = cur < seg / 2 ? 2 * cur : seg;
        if (t < end && t[-1] != '\n') {
            const char *nl = memchr(t, '\n', (size_t)(end - t));
            t = nl ? nl + 1 : end;
        }
        int nch = (int)((size_t)(t - s) / MIN_CHUNK) + 1;
        if (nch > maxch)
            nch = maxch;
        cut_chunks(ch, nch, s, t);
        if (parsing && !x) {
            int64_t want_e, want_l;
            projected = !first_room(buf, len, count, &want_e, &want_l);
            if (xmc_csr_create_fresh(&x, nrows, ncols, want_e, 1, &perr) ||
                (mode == XMC_SP_XC &&
                 xmc_csr_create_fresh(&y, nrows, nlabels, want_l, 1, &perr)))
                parsing = 0;
            pl.cap_ent = want_e;
            pl.cap_lab = want_l;
        } else if (parsing && s > buf) {
            /* Room for this segment: the slots per byte so far, projected
             * to the segment's end (+3 %), grown to the whole body's. */
            double per = (double)len / (double)(s - buf) * 1.03;
            double to = (double)(t - buf) / (double)len;
            int64_t we = (int64_t)((double)pl.ent * per) + 1;
            int64_t wl = (int64_t)((double)pl.lab * per) + 1;
            if (!grow_csr(x, &pl.cap_ent, (int64_t)((double)we * to), we) ||
                (y && !grow_csr(y, &pl.cap_lab, (int64_t)((double)wl * to), wl))) {
                XMC_ERR(&perr, XMC_ENOMEM, NULL, 0,
                        "out of memory for a %lld x %lld matrix with %lld entries",
                        (long long)nrows, (long long)ncols, (long long)we);
                parsing = 0;
            }
        }
        if (!parsing) {
            /* Only count: the row-count error wins over anything else. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
            for (int i = 0; i < nch; i++)
                count_chunk(&ch[i], count);
            for (int i = 0; i < nch; i++)
                lines += ch[i].lines;
            s = t;
            continue;
        }
        int zc = 0;
        pl.front = 0;
        job j = {path,  mode,    row, mode == XMC_SP_SPARSE ? xmc_sparse_rows_for(row) : NULL,
                 ncols, nlabels, first_line};
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
        for (int i = 0; i < nch; i++) {
            chunk *c = &ch[i];
            int stop;
#pragma omp atomic read
            stop = pl.stop;
            c->out = stop ? -1 : pool_take(&pl);
            if (c->out >= 0 && !scratch_fit(&sc[c->out], (size_t)(c->e - c->b), y != NULL)) {
                pool_give(&pl, c->out);
                c->out = -1;
                XMC_ERR(&c->err, XMC_ENOMEM, path, 0, "out of memory");
            }
            if (c->out >= 0)
                parse_chunk(&j, c, &sc[c->out]);
            if (c->out < 0 || c->err.code)
                count_chunk(c, count); /* all its lines, for the row count */
            if (flags & SP_ZAP)
                zap_parsed(ch, nch, i, &zc);
            /* Order every chunk that is now ready in file order, and place
             * them: this thread may place a chunk another thread parsed,
             * so no thread waits for an earlier chunk to finish. */
            int a, b;
#pragma omp critical(xmc_sparse_order)
            {
                c->ready = 1;
                a = pl.front;
                while (pl.front < nch && ch[pl.front].ready)
                    order_chunk(&pl, &ch[pl.front++]);
                b = pl.front;
            }
            for (int k = a; k < b; k++)
                settle(x, y, &ch[k], sc, &pl);
            if (prog_on) {
#pragma omp critical(xmc_sparse_progress)
                {
                    done += c->e - c->b;
                    xmc_progress_update(&prog, done >> 20, NULL);
                }
            }
        }
        int ndefer = 0;
        for (int i = 0; i < nch; i++) {
            lines += ch[i].lines;
            ndefer += ch[i].fate == C_DEFER;
        }
        for (int i = 0; i < nch && !perr.code; i++)
            if (ch[i].err.code)
                perr = ch[i].err; /* the first in file order */
        if (pl.stop)
            parsing = 0;
        if (ndefer && parsing &&
            (!grow_csr(x, &pl.cap_ent, pl.ent, pl.ent) ||
             (y && !grow_csr(y, &pl.cap_lab, pl.lab, pl.lab)))) {
            XMC_ERR(&perr, XMC_ENOMEM, NULL, 0,
                    "out of memory for a %lld x %lld matrix with %lld entries",
                    (long long)nrows, (long long)ncols, (long long)pl.ent);
            parsing = 0;
        }
        for (int i = 0; i < nch; i++)
            if (ch[i].fate == C_DEFER) {
                if (parsing) /* rare: the guessed room was short */
                    place_chunk(x, y, &ch[i], &sc[ch[i].out]);
                pool_give(&pl, ch[i].out);
            }
        s = t;
    }
    if (prog_on)
        xmc_progress_finish(&prog, NULL);
    if (lines != nrows) {
        if (lines < nrows)
            rc = XMC_ERR(err, XMC_EFORMAT, path, first_line + (long)lines,
                         "expected %lld rows as the header says, found %lld (truncated file?)",
                         (long long)nrows, (long long)lines);
        else
            rc = XMC_ERR(err, XMC_EFORMAT, path, first_line + (long)nrows,
                         "expected %lld rows as the header says, found %lld (extra rows)",
                         (long long)nrows, (long long)lines);
        goto out;
    }
    if (perr.code) {
        if (err && !err->code)
            *err = perr;
        rc = perr.code;
        goto out;
    }
    if (!x) { /* an empty body: no segment */
        if ((rc = xmc_csr_create_fresh(&x, nrows, ncols, 0, 1, err)))
            goto out;
        if (mode == XMC_SP_XC && (rc = xmc_csr_create_fresh(&y, nrows, nlabels, 0, 1, err)))
            goto out;
    }
    x->indptr[0] = 0;
    for (int64_t r = 0; r < nrows; r++)
        x->indptr[r + 1] += x->indptr[r];
    if (projected)
        shrink_csr(x, pl.cap_ent, pl.ent);
    if (y) {
        y->indptr[0] = 0;
        for (int64_t r = 0; r < nrows; r++)
            y->indptr[r + 1] += y->indptr[r];
        if (projected)
            shrink_csr(y, pl.cap_lab, pl.lab);
    }
    *X = x;
    x = NULL;
    if (Y) {
        *Y = y;
        y = NULL;
    }
out:
    for (int i = 0; sc && i < maxch; i++)
        scratch_free(&sc[i]);
    xmc_free(sc);
    xmc_free(freel);
    xmc_csr_free(x);
    xmc_csr_free(y);
    xmc_free(ch);
    return rc;
}

int xmc_sparse_parse(const char *path, const char *buf, size_t len, long first_line,
                     int mode, int64_t nrows, int64_t ncols, int64_t nlabels,
                     xmc_sparse_row_fn row, xmc_csr **X, xmc_csr **Y, xmc_error *err)
{
    return sparse_parse(path, buf, len, first_line, mode, nrows, ncols, nlabels, row, X, Y,
                        xmc_sparse_segment_bytes, 0, err);
}

/* Segments only pay when there is I/O to overlap: a body already in memory
 * (page cache, heap) is one segment, with no extra barriers. */
static size_t seg_for(const xmc_inbuf *b)
{
    return b->resident ? b->len : xmc_sparse_segment_bytes;
}

static int sp_flags(const xmc_inbuf *b)
{
    return b->map ? (b->resident ? 0 : SP_PROBE) | SP_ZAP : 0;
}

/* Header: `nf` non-negative integers separated by blanks. Returns the body
 * offset or sets err. */
static int parse_header(const char *path, const char *buf, size_t len, int nf,
                        const char *expect, int64_t *v, size_t *body, xmc_error *err)
{
    if (len == 0)
        return XMC_ERR(err, XMC_EFORMAT, path, 1, "expected header '%s', found an empty file",
                       expect);
    const char *e = memchr(buf, '\n', len);
    const char *le = e ? e : buf + len;
    *body = e ? (size_t)(e + 1 - buf) : len;
    if (le > buf && le[-1] == '\r')
        le--;
    const char *p = buf;
    int n = 0;
    for (;;) {
        while (p < le && is_ws(*p))
            p++;
        if (p >= le)
            break;
        const char *t = p;
        while (t < le && !is_ws(*t))
            t++;
        int64_t x;
        const char *r = xmc_parse_uint(p, t, &x);
        if (!r || r != t)
            return XMC_ERR(err, XMC_EFORMAT, path, 1,
                           "expected header '%s' (non-negative integers), found %s", expect,
                           xmc_excerpt(buf, le));
        if (n < nf)
            v[n] = x;
        n++;
        p = t;
    }
    if (n != nf)
        return XMC_ERR(err, XMC_EFORMAT, path, 1, "expected header '%s', got %d field%s%s",
                       expect, n, n == 1 ? "" : "s",
                       nf == 3 && n == 2
                           ? " (a label-feature matrix? load it as DIR/PREFIX)"
                           : "");
    for (int i = 1; i < nf; i++)
        if (v[i] > INT32_MAX)
            return XMC_ERR(err, XMC_EFORMAT, path, 1,
                           "header field %d = %lld exceeds the 32-bit id limit", i + 1,
                           (long long)v[i]);
    if (v[0] > (INT64_C(1) << 40))
        return XMC_ERR(err, XMC_EFORMAT, path, 1, "header row count %lld is implausible",
                       (long long)v[0]);
    return XMC_OK;
}

int xmc_xc_read(const char *path, xmc_csr **X, xmc_csr **Y, xmc_error *err)
{
    *X = *Y = NULL;
    xmc_inbuf b;
    int rc = xmc_inbuf_open(&b, path, err);
    if (rc)
        return rc;
    int64_t h[3];
    size_t body = 0; /* set by parse_header on success; -Werror=maybe-uninitialized */
    rc = parse_header(path, b.data, b.len, 3, "N F L", h, &body, err);
    if (rc == XMC_OK)
        rc = sparse_parse(path, b.data + body, b.len - body, 2, XMC_SP_XC, h[0], h[1], h[2],
                          xmc_sparse_row_best(), X, Y, seg_for(&b), sp_flags(&b), err);
    xmc_inbuf_close(&b);
    return rc;
}

int xmc_csr_read_text(const char *path, xmc_csr **out, xmc_error *err)
{
    *out = NULL;
    xmc_inbuf b;
    int rc = xmc_inbuf_open(&b, path, err);
    if (rc)
        return rc;
    int64_t h[2];
    size_t body = 0; /* set by parse_header on success; -O3 cannot see it */
    rc = parse_header(path, b.data, b.len, 2, "N C", h, &body, err);
    if (rc == XMC_OK)
        rc = sparse_parse(path, b.data + body, b.len - body, 2, XMC_SP_SPARSE, h[0], h[1], 0,
                          xmc_sparse_row_best(), out, NULL, seg_for(&b), sp_flags(&b), err);
    xmc_inbuf_close(&b);
    return rc;
}

/* Writers. Formatting dominates (shortest exact float, parse.c), so rows are
 * formatted in parallel into one buffer per thread, batch by batch, and the
 * buffers written in row order: memory stays O(threads x batch). */
#define WRITE_BATCH 8192 /* rows per thread per round */

typedef struct fmtbuf {
    char *p;
    size_t len, cap;
    int oom;
} fmtbuf;

static char *fb_room(fmtbuf *b, size_t need)
{
    if (b->len + need > b->cap) {
        size_t c = b->cap ? b->cap : 1 << 16;
        while (c < b->len + need)
            c *= 2;
        char *q = xmc_realloc(b->p, c);
        if (!q) {
            b->oom = 1;
            return NULL;
        }
        b->p = q;
        b->cap = c;
    }
    return b->p + b->len;
}

static size_t put_int(char *w, int64_t v)
{
    char t[24];
    size_t n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        w[i] = t[n - 1 - i];
    return n;
}

/* One row: XC labels of L (comma-separated) when L, then the "i:v" pairs of
 * M (space-separated; after a space when L), then '\n'. */
static void fmt_row(fmtbuf *b, const xmc_csr *L, const xmc_csr *M, int64_t r)
{
    if (L)
        for (int64_t k = L->indptr[r]; k < L->indptr[r + 1]; k++) {
            char *w = fb_room(b, 16);
            if (!w)
                return;
            if (k > L->indptr[r])
                *w++ = ',', b->len++;
            b->len += put_int(w, L->indices[k]);
        }
    if (M)
        for (int64_t k = M->indptr[r]; k < M->indptr[r + 1]; k++) {
            char *w = fb_room(b, 48);
            if (!w)
                return;
            char *w0 = w;
            if (k > M->indptr[r] || L)
                *w++ = ' ';
            w += put_int(w, M->indices[k]);
            *w++ = ':';
            w += xmc_format_float(w, M->values ? M->values[k] : 1.0f);
            b->len += (size_t)(w - w0);
        }
    char *w = fb_room(b, 1);
    if (w)
        *w = '\n', b->len++;
}

static int write_rows(xmc_outfile *o, const xmc_csr *L, const xmc_csr *M, int64_t nrows,
                      xmc_error *err)
{
    int nth = xmc_get_threads();
    if (nth < 1)
        nth = 1;
    fmtbuf *bufs = xmc_calloc((size_t)nth, sizeof *bufs);
    if (!bufs)
        return XMC_ERR(err, XMC_ENOMEM, o->path, 0, "out of memory");
    int rc = XMC_OK;
    for (int64_t r0 = 0; r0 < nrows && rc == XMC_OK; r0 += (int64_t)WRITE_BATCH * nth) {
#pragma omp parallel for schedule(static, 1) num_threads(nth)
        for (int t = 0; t < nth; t++) {
            bufs[t].len = 0;
            int64_t a = r0 + (int64_t)t * WRITE_BATCH, z = a + WRITE_BATCH;
            for (int64_t r = a; r < z && r < nrows && !bufs[t].oom; r++)
                fmt_row(&bufs[t], L, M, r);
        }
        for (int t = 0; t < nth; t++) {
            if (bufs[t].oom) {
                rc = XMC_ERR(err, XMC_ENOMEM, o->path, 0, "out of memory");
                break;
            }
            if (bufs[t].len && fwrite(bufs[t].p, 1, bufs[t].len, o->fp) != bufs[t].len)
                o->failed = 1;
        }
    }
    for (int t = 0; t < nth; t++)
        xmc_free(bufs[t].p);
    xmc_free(bufs);
    return rc;
}

int xmc_csr_write_text(const char *path, const xmc_csr *m, xmc_error *err)
{
    xmc_outfile o;
    int rc = xmc_outfile_open(&o, path, err);
    if (rc)
        return rc;
    fprintf(o.fp, "%lld %lld\n", (long long)m->nrows, (long long)m->ncols);
    if ((rc = write_rows(&o, NULL, m, m->nrows, err))) {
        xmc_outfile_abort(&o);
        return rc;
    }
    return xmc_outfile_commit(&o, err);
}

int xmc_dataset_write_xc(const xmc_dataset *ds, const char *path, xmc_error *err)
{
    if (!ds->Y || (ds->X && ds->X->nrows != ds->Y->nrows))
        return XMC_ERR(err, XMC_EINVAL, path, 0, "dataset needs Y (and X with as many rows)");
    xmc_outfile o;
    int rc = xmc_outfile_open(&o, path, err);
    if (rc)
        return rc;
    const xmc_csr *Y = ds->Y, *X = ds->X;
    fprintf(o.fp, "%lld %lld %lld\n", (long long)Y->nrows, (long long)(X ? X->ncols : 0),
            (long long)Y->ncols);
    if ((rc = write_rows(&o, Y, X, Y->nrows, err))) {
        xmc_outfile_abort(&o);
        return rc;
    }
    return xmc_outfile_commit(&o, err);
}

int xmc_split_read(const char *path, int64_t n_rows, int64_t **rows, int64_t *n,
                   xmc_error *err)
{
    *rows = NULL;
    *n = 0;
    xmc_inbuf b;
    int rc = xmc_inbuf_open(&b, path, err);
    if (rc)
        return rc;
    int64_t cap = 1;
    for (size_t i = 0; i < b.len; i++)
        cap += b.data[i] == '\n';
    int64_t *out = xmc_malloc((size_t)cap * sizeof *out), cnt = 0;
    if (!out) {
        rc = XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
        goto done;
    }
    const char *p = b.data, *end = b.data + b.len;
    long ln = 0;
    while (p < end) {
        ln++;
        const char *le = memchr(p, '\n', (size_t)(end - p));
        const char *next = le ? le + 1 : end;
        if (!le)
            le = end;
        if (le > p && le[-1] == '\r')
            le--;
        const char *q = p;
        while (q < le && is_ws(*q))
            q++;
        if (q < le) {
            int64_t v;
            const char *r = xmc_parse_uint(q, le, &v);
            if (!r || (r < le && !is_ws(*r))) {
                rc = XMC_ERR(err, XMC_EFORMAT, path, ln,
                             "expected a 1-based row id in the first column, found %s",
                             xmc_excerpt(q, le));
                goto done;
            }
            if (v < 1 || v > n_rows) {
                rc = XMC_ERR(err, XMC_EFORMAT, path, ln,
                             "row id %lld out of range: the data has rows 1..%lld", (long long)v,
                             (long long)n_rows);
                goto done;
            }
            out[cnt++] = v - 1;
        }
        p = next;
    }
    *rows = out;
    *n = cnt;
    out = NULL;
done:
    xmc_free(out);
    xmc_inbuf_close(&b);
    return rc;
}
