/* UTF-8 text lines: read (validating), write, copy, select.
 *
 * The whole file becomes the `data` buffer: each '\n' is replaced by the
 * line's NUL in place (a "\r\n" ending is compacted), so reading costs one
 * pass and no copy. Validation: an ASCII fast path (8 bytes at a time) by
 * hand, because utf8proc_iterate decodes one code point per call, which is
 * ~10x slower on the mostly-ASCII texts of this field; multi-byte sequences
 * are checked by utf8proc_iterate (overlongs, surrogates, > U+10FFFF).
 * Files of 2 MiB and more are scanned and split into lines by OpenMP
 * threads over chunks cut at line ends (xmc_texts_from_buffer); a file with
 * '\r', NUL or invalid UTF-8 takes the sequential path, which reports the
 * first problem with its line and column whatever the thread count. A
 * mapped file is scanned block by block as it is copied in (fused_*),
 * falling back to the above on anything unusual.
 * Memory: file size + 8 bytes per line.
 */
#include <omp.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <utf8proc.h>

#include "data/internal.h"
#include "xmc/kernels.h"

size_t xmc_utf8_invalid_at(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        if (!((unsigned char)p[i] & 0x80)) {
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        size_t left = n - i;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)p + i,
                                              (utf8proc_ssize_t)(left > 4 ? 4 : left), &cp);
        if (k <= 0)
            return i;
        i += (size_t)k;
    }
    return (size_t)-1;
}

/* Give back a buffer the readers own: the file mapping, or the heap block. */
static void release(char *buf, xmc_mapping *mp)
{
    if (mp)
        xmc_mapping_unref(mp);
    else
        xmc_free(buf);
}

/* The texts object and its n + 1 offsets for a buffer being read; on
 * failure the buffer (ours by then) is released and ENOMEM reported. */
static int texts_new(int64_t n, char *buf, xmc_mapping *mp, const char *path, xmc_texts **t,
                     int64_t **off, xmc_error *err)
{
    *t = xmc_calloc(1, sizeof **t);
    *off = xmc_malloc(((size_t)n + 1) * sizeof **off);
    if (*t && *off)
        return XMC_OK;
    xmc_free(*t);
    xmc_free(*off);
    release(buf, mp);
    return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
}

/* The texts over buf: owned by the mapping mp (which then also owns the
 * offsets), or a heap block when mp is NULL. */
static void texts_set(xmc_texts *t, int64_t n, int64_t *off, char *buf, xmc_mapping *mp)
{
    t->n = n;
    t->offsets = off;
    t->data = buf;
    if (mp) {
        mp->heap = off;
        t->owner = mp;
    }
}

/* The sequential reader: any input, exact error positions, "\r\n"
 * compaction. */
static int texts_sequential(const char *path, char *buf, size_t len, xmc_mapping *mp,
                            xmc_texts **out, xmc_error *err)
{
    int64_t n = 0;
    const char *nl = buf, *end = buf + len;
    while ((nl = memchr(nl, '\n', (size_t)(end - nl)))) {
        n++;
        nl++;
    }
    if (len > 0 && buf[len - 1] != '\n')
        n++;
    xmc_texts *t;
    int64_t *off;
    int rc = texts_new(n, buf, mp, path, &t, &off, err);
    if (rc)
        return rc;
    size_t r = 0, w = 0;
    for (int64_t i = 0; i < n; i++) {
        char *e = memchr(buf + r, '\n', len - r);
        size_t ll = e ? (size_t)(e - (buf + r)) : len - r;
        size_t nx = r + ll + (e ? 1 : 0);
        if (ll > 0 && buf[r + ll - 1] == '\r')
            ll--;
        const char *z = memchr(buf + r, '\0', ll);
        size_t bad = z ? (size_t)-1 : xmc_utf8_invalid_at(buf + r, ll);
        if (z || bad != (size_t)-1) {
            rc = z ? XMC_ERR(err, XMC_EFORMAT, path, (long)i + 1,
                             "NUL byte at column %zu: expected UTF-8 text",
                             (size_t)(z - (buf + r)) + 1)
                   : XMC_ERR(err, XMC_EFORMAT, path, (long)i + 1,
                             "invalid UTF-8 at column %zu (byte 0x%02x)", bad + 1,
                             (unsigned char)buf[r + bad]);
            xmc_free(t);
            xmc_free(off);
            release(buf, mp);
            return rc;
        }
        if (w != r)
            memmove(buf + w, buf + r, ll);
        off[i] = (int64_t)w;
        w += ll;
        buf[w++] = '\0'; /* the spare byte covers a last line without '\n' */
        r = nx;
    }
    off[n] = (int64_t)w;
    texts_set(t, n, off, buf, mp);
    *out = t;
    return XMC_OK;
}

/* Parallel fast path for the common file (no '\r', no NUL, valid UTF-8).
 * Pass 1 scans each chunk 64 bytes a step with vector compares: counts
 * '\n' and ORs together "saw NUL or '\r'" and the high bits; only a chunk
 * with non-ASCII bytes is handed to the UTF-8 check. Validating a chunk at
 * once equals validating its lines one by one: '\n' is ASCII and never a
 * continuation byte, so a sequence cut by a line end is invalid either way.
 * Pass 2 writes each chunk's line offsets (prefix sums of pass 1) and turns
 * its '\n' into NUL. Where the ISA has the '\n' mask (x86-64), pass 1 does
 * pass 2's work too, into a per-chunk scratch array, and pass 2 only copies
 * it (xmc_tscan1_*: the texts are read once, ~10 ms less CPU on 146 MB). A
 * chunk that sees anything unusual sends the whole file (its '\n' put
 * back) to texts_sequential, which reports the first problem exactly. */
#define TEXT_CHUNK ((size_t)1 << 20)

/* The passes (textscan.h), with 16-byte GCC/clang vectors (SSE2 on x86-64,
 * NEON on arm64: a 64-byte vector type is emulated badly without AVX-512
 * flags) here and 32-byte ones in texts_avx2.c, chosen at run time. */
#ifdef __SSE2__
static inline uint64_t nl_mask64(const char *p)
{
    const __m128i vn = _mm_set1_epi8('\n');
    const __m128i *q = (const __m128i *)(const void *)p;
    return (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(q), vn)) |
           (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(q + 1), vn))
               << 16 |
           (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(q + 2), vn))
               << 32 |
           (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(q + 3), vn))
               << 48;
}
#define TS_NL_MASK
#endif
#define TS_W 16
#define TSCAN_NAME xmc_tscan_ref
#define TFILL_NAME xmc_tfill_ref
#define TSCAN1_NAME xmc_tscan1_ref
#include "data/textscan.h"

void xmc_tchunk_restore(char *buf, xmc_tchunk *c)
{
    for (int64_t j = 1; j < c->nt; j++)
        buf[c->tmp[j] - 1] = '\n';
    if (c->last)
        buf[c->e - 1] = '\n';
    c->nt = 0;
    c->last = 0;
}

xmc_tscan1_fn xmc_tscan1_get(const char *level)
{
    if (!strcmp(level, "avx2"))
        return (xmc_cpu_features_hw() & XMC_CPU_AVX2) ? xmc_tscan1_avx2 : NULL;
#ifdef TS_NL_MASK
    if (!strcmp(level, "ref"))
        return xmc_tscan1_ref;
#endif
    return NULL;
}

xmc_tscan1_fn xmc_tscan1_best(void)
{
    if (xmc_cpu_features() & XMC_CPU_AVX2)
        return xmc_tscan1_avx2;
#ifdef TS_NL_MASK
    return xmc_tscan1_ref;
#else
    return NULL;
#endif
}

xmc_tscan_fn xmc_tscan_get(const char *level, xmc_tfill_fn *fill)
{
    if (!strcmp(level, "avx2")) {
        if (!(xmc_cpu_features_hw() & XMC_CPU_AVX2))
            return NULL;
        *fill = xmc_tfill_avx2;
        return xmc_tscan_avx2;
    }
    if (strcmp(level, "ref"))
        return NULL;
    *fill = xmc_tfill_ref;
    return xmc_tscan_ref;
}

xmc_tscan_fn xmc_tscan_best(xmc_tfill_fn *fill)
{
    if (xmc_cpu_features() & XMC_CPU_AVX2) {
        *fill = xmc_tfill_avx2;
        return xmc_tscan_avx2;
    }
    *fill = xmc_tfill_ref;
    return xmc_tscan_ref;
}

/* One block of room for the offsets of lines of 32 bytes on average in
 * each chunk (a chunk with shorter lines overflows it and takes pass 2),
 * sliced into the chunks' tmp / cap; NULL when out of memory. */
static int64_t *chunks_scratch(xmc_tchunk *ch, int64_t nch)
{
    size_t total = 0;
    for (int64_t i = 0; i < nch; i++)
        total += (ch[i].e - ch[i].b) / 32 + 64;
    int64_t *tmp = xmc_malloc(total * sizeof *tmp), *q = tmp;
    for (int64_t i = 0; tmp && i < nch; i++) {
        ch[i].tmp = q;
        ch[i].cap = (int64_t)((ch[i].e - ch[i].b) / 32 + 64);
        q += ch[i].cap;
    }
    return tmp;
}

static int texts_build(const char *path, char *buf, size_t len, xmc_mapping *mp,
                       xmc_texts **out, xmc_error *err)
{
    *out = NULL;
    int nth = xmc_get_threads();
    if (nth < 1)
        nth = 1;
    size_t want = len / TEXT_CHUNK + 1;
    int nch = want > (size_t)(8 * nth) ? 8 * nth : (int)want;
    if (nch < 2) /* small file: no thread start-up */
        return texts_sequential(path, buf, len, mp, out, err);
    xmc_tchunk *ch = xmc_calloc((size_t)nch, sizeof *ch);
    if (!ch) {
        release(buf, mp);
        return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
    }
    size_t pos = 0;
    for (int i = 0; i < nch; i++) {
        ch[i].b = pos;
        size_t t = i == nch - 1 ? len : (size_t)((double)len * (i + 1) / nch);
        if (t < pos)
            t = pos;
        if (t < len && t > 0 && buf[t - 1] != '\n') {
            const char *nl = memchr(buf + t, '\n', len - t);
            t = nl ? (size_t)(nl - buf) + 1 : len;
        }
        ch[i].e = t;
        pos = t;
    }
    xmc_tfill_fn tfill;
    const xmc_tscan_fn tscan = xmc_tscan_best(&tfill);
    /* One pass where the ISA has it: room for the offsets of lines of 32
     * bytes on average per chunk (a chunk with shorter lines is restored
     * and takes pass 2). Only the pages written are touched. */
    const xmc_tscan1_fn tscan1 = xmc_tscan1_best();
    const int open_end = buf[len - 1] != '\n'; /* last line without '\n' (before NULs) */
    int64_t *tmp = NULL;
    if (tscan1 && !(tmp = chunks_scratch(ch, nch))) {
        xmc_free(ch);
        release(buf, mp);
        return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int i = 0; i < nch; i++) {
        if (tscan1)
            tscan1(buf, &ch[i]);
        else
            tscan(buf, &ch[i]);
    }
    int64_t n = 0;
    int odd = 0;
    for (int i = 0; i < nch; i++) {
        int64_t k = ch[i].lines;
        ch[i].lines = n;
        n += k;
        odd |= ch[i].odd;
    }
    if (odd) {
        for (int i = 0; i < nch; i++) /* the '\n' back, for the sequential reader */
            xmc_tchunk_restore(buf, &ch[i]);
        xmc_free(tmp);
        xmc_free(ch);
        return texts_sequential(path, buf, len, mp, out, err);
    }
    n += open_end;
    xmc_texts *t;
    int64_t *off;
    int rc = texts_new(n, buf, mp, path, &t, &off, err);
    if (rc) {
        xmc_free(tmp);
        xmc_free(ch);
        return rc;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
    for (int i = 0; i < nch; i++) {
        const xmc_tchunk *c = &ch[i];
        if (c->nt) {
            memcpy(off + c->lines, c->tmp, (size_t)c->nt * sizeof *off);
            if (c->e > c->b && buf[c->e - 1] != '\0') /* as tfill: an open last line */
                buf[c->e] = '\0';
        } else {
            tfill(buf, c, off);
        }
    }
    off[n] = (int64_t)len + open_end;
    xmc_free(tmp);
    xmc_free(ch);
    texts_set(t, n, off, buf, mp);
    *out = t;
    return XMC_OK;
}

/* The fused reader (large files, cold cache): the first pass (tscan1) of
 * each populated block runs on the thread that has just copied it in
 * (map_own's hook), while the disk still streams the later blocks, where
 * texts_build could only start after the last block arrived (~50 ms of
 * tail on the 146 MB texts of the 1M split). Its chunks are cut at fixed
 * offsets, not line ends, so afterwards: a chunk's first offset (its start)
 * is a line start only when the chunk before ended with '\n'; and UTF-8 is
 * validated in each chunk away from its cuts, the few bytes around each
 * cut here (a cut at a byte that is no continuation byte splits the check
 * exactly; a cut in a run of 4 or more continuation bytes leaves a piece
 * that starts with one, invalid as the whole file is). Anything unusual
 * (a NUL, '\r', invalid UTF-8, offsets that do not fit) puts the '\n'
 * back and hands the buffer to texts_build, so errors are its own. */
size_t xmc_texts_fused_chunk = 0;

typedef struct fused {
    char *buf;
    size_t len, sub; /* file length; chunk size (divides the block) */
    int64_t per;     /* chunks per block */
    int64_t nch;
    xmc_tchunk *ch;
    int64_t *tmp;
    xmc_tscan1_fn scan;
} fused;

static int fused_begin(void *ctx, char *base, size_t len, size_t block, int64_t nblocks)
{
    fused *f = ctx;
    (void)nblocks;
    f->scan = xmc_tscan1_best();
    if (!f->scan)
        return 1;
    size_t sub = xmc_texts_fused_chunk;
    f->sub = sub >= 16 && block % sub == 0 ? sub : block;
    f->per = (int64_t)(block / f->sub);
    f->nch = (int64_t)((len + f->sub - 1) / f->sub);
    f->buf = base;
    f->len = len;
    f->ch = xmc_calloc((size_t)f->nch, sizeof *f->ch);
    if (f->ch)
        for (int64_t j = 0; j < f->nch; j++) {
            f->ch[j].b = (size_t)j * f->sub;
            f->ch[j].e = f->ch[j].b + f->sub < len ? f->ch[j].b + f->sub : len;
        }
    if (!f->ch || !(f->tmp = chunks_scratch(f->ch, f->nch))) {
        xmc_free(f->ch);
        memset(f, 0, sizeof *f);
        return 1;
    }
    return 0;
}

static int is_cont(char ch) { return ((unsigned char)ch & 0xc0) == 0x80; }

static void fused_block(void *ctx, int64_t i)
{
    fused *f = ctx;
    const char *buf = f->buf;
    int64_t z = (i + 1) * f->per < f->nch ? (i + 1) * f->per : f->nch;
    for (int64_t j = i * f->per; j < z; j++) {
        xmc_tchunk *c = &f->ch[j];
        size_t k = 0;
        if (j > 0) /* up to 3 continuation bytes belong to the cut */
            while (k < 3 && c->b + k < c->e && is_cont(buf[c->b + k]))
                k++;
        int run4 = k == 3 && c->b + 3 < c->e && is_cont(buf[c->b + 3]);
        c->vskip_b = k;
        c->vskip_e = 0;
        if (j + 1 < f->nch) /* from the last lead or ASCII byte of the last 3 */
            for (size_t p = c->e; p > c->e - 3 && p - 1 >= c->b + k; p--)
                if (!is_cont(buf[p - 1])) {
                    c->vskip_e = c->e - (p - 1);
                    break;
                }
        f->scan(f->buf, c);
        c->odd |= run4;
    }
}

/* After every block: the offsets, or texts_build's result on the same
 * buffer (the '\n' put back). */
static int fused_finish(const char *path, fused *f, xmc_mapping *mp, xmc_texts **out,
                        xmc_error *err)
{
    char *buf = f->buf;
    int64_t n = 0, nl = 0;
    int fallback = 0;
    for (int64_t j = 0; j < f->nch && !fallback; j++) {
        xmc_tchunk *c = &f->ch[j];
        fallback = c->odd || c->nt == 0;
        if (j + 1 < f->nch) {
            size_t a = c->e - c->vskip_e, z = f->ch[j + 1].b + f->ch[j + 1].vskip_b;
            fallback |= xmc_utf8_invalid_at(buf + a, z - a) != (size_t)-1;
        }
        const int64_t skip = j > 0 && !f->ch[j - 1].last; /* starts mid-line */
        nl += c->lines;
        c->lines = n;
        n += c->nt - skip;
    }
    const int open_end = !f->ch[f->nch - 1].last;
    if (fallback || n != nl + open_end) {
        for (int64_t j = 0; j < f->nch; j++)
            xmc_tchunk_restore(buf, &f->ch[j]);
        return texts_build(path, buf, f->len, mp, out, err);
    }
    xmc_texts *t;
    int64_t *off;
    int rc = texts_new(n, buf, mp, path, &t, &off, err);
    if (rc)
        return rc;
#pragma omp parallel for schedule(static) if (f->nch > 1)
    for (int64_t j = 0; j < f->nch; j++) {
        const xmc_tchunk *c = &f->ch[j];
        const int64_t skip = j > 0 && !f->ch[j - 1].last;
        memcpy(off + c->lines, c->tmp + skip, (size_t)(c->nt - skip) * sizeof *off);
    }
    if (open_end)
        buf[f->len] = '\0'; /* the spare byte */
    off[n] = (int64_t)f->len + open_end;
    texts_set(t, n, off, buf, mp);
    *out = t;
    return XMC_OK;
}

int xmc_texts_from_buffer(const char *path, char *buf, size_t len, xmc_texts **out,
                          xmc_error *err)
{
    return texts_build(path, buf, len, NULL, out, err);
}

int xmc_texts_read(const char *path, xmc_texts **out, xmc_error *err)
{
    *out = NULL;
    /* A buffer we may write: a populated private mapping of the file for
     * large files (no zeroing, no user copy: parse.c), else an exact-size
     * heap block (xmc_read_file grows by doubling: up to 2x the file, kept
     * for the texts' lifetime); one spare byte either way. */
    xmc_inbuf b;
    fused f = {0};
    const xmc_own_hook hook = {fused_begin, fused_block, &f};
    int rc = xmc_inbuf_open_ex(&b, path, XMC_INBUF_OWN, &hook, err);
    const size_t n = rc == XMC_OK ? b.len : 0;
    if (rc == XMC_OK && b.map) {
        xmc_mapping *mp = xmc_calloc(1, sizeof *mp);
        if (!mp) {
            xmc_inbuf_close(&b);
            rc = XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
        } else {
            mp->base = b.map;
            mp->len = b.map_len;
            atomic_init(&mp->refs, 1);
            b.map = NULL;
            xmc_inbuf_close(&b);
            rc = f.ch ? fused_finish(path, &f, mp, out, err)
                      : texts_build(path, mp->base, n, mp, out, err);
        }
    } else if (rc == XMC_OK) { /* small file, or no MADV_POPULATE_WRITE: the heap */
        char *d = b.heap;
        b.heap = NULL;
        xmc_inbuf_close(&b);
        rc = texts_build(path, d, n, NULL, out, err);
    }
    xmc_free(f.ch);
    xmc_free(f.tmp);
    return rc;
}

int xmc_texts_write(const char *path, const xmc_texts *t, xmc_error *err)
{
    xmc_outfile o;
    int rc = xmc_outfile_open(&o, path, err);
    if (rc)
        return rc;
    for (int64_t i = 0; i < t->n; i++) {
        const char *s = xmc_texts_get(t, i);
        size_t k = (size_t)(t->offsets[i + 1] - t->offsets[i] - 1);
        if (memchr(s, '\n', k)) {
            xmc_outfile_abort(&o);
            return XMC_ERR(err, XMC_EINVAL, path, 0, "text %lld contains a newline",
                           (long long)i);
        }
        fwrite(s, 1, k, o.fp);
        fputc('\n', o.fp);
    }
    return xmc_outfile_commit(&o, err);
}

void xmc_texts_free(xmc_texts *t)
{
    if (!t)
        return;
    if (t->owner) {
        xmc_mapping_unref(t->owner);
    } else {
        xmc_free(t->offsets);
        xmc_free(t->data);
    }
    xmc_free(t);
}

size_t xmc_texts_bytes(const xmc_texts *t)
{
    if (!t)
        return 0;
    return sizeof *t + ((size_t)t->n + 1) * sizeof(int64_t) + (size_t)t->offsets[t->n];
}

static int texts_alloc(int64_t n, size_t bytes, xmc_texts **out, xmc_error *err)
{
    xmc_texts *t = xmc_calloc(1, sizeof *t);
    if (t) {
        t->offsets = xmc_malloc(((size_t)n + 1) * sizeof(int64_t));
        t->data = xmc_malloc(bytes + 1);
    }
    if (!t || !t->offsets || !t->data) {
        xmc_texts_free(t);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
    }
    t->n = n;
    *out = t;
    return XMC_OK;
}

int xmc_texts_create(const char *const *strs, int64_t n, xmc_texts **out, xmc_error *err)
{
    *out = NULL;
    size_t bytes = 0;
    for (int64_t i = 0; i < n; i++) {
        if (strchr(strs[i], '\n'))
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "text %lld contains a newline",
                           (long long)i);
        bytes += strlen(strs[i]) + 1;
    }
    xmc_texts *t;
    int rc = texts_alloc(n, bytes, &t, err);
    if (rc)
        return rc;
    size_t w = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t k = strlen(strs[i]) + 1;
        t->offsets[i] = (int64_t)w;
        memcpy(t->data + w, strs[i], k);
        w += k;
    }
    t->offsets[n] = (int64_t)w;
    *out = t;
    return XMC_OK;
}

int xmc_texts_concat(const xmc_texts *a, const xmc_texts *b, xmc_texts **out, xmc_error *err)
{
    const int64_t na = a ? a->n : 0, nb = b ? b->n : 0;
    const char **s = xmc_malloc((size_t)(na + nb > 0 ? na + nb : 1) * sizeof *s);
    if (!s)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (texts)");
    for (int64_t i = 0; i < na; i++)
        s[i] = xmc_texts_get(a, i);
    for (int64_t i = 0; i < nb; i++)
        s[na + i] = xmc_texts_get(b, i);
    int rc = xmc_texts_create(s, na + nb, out, err);
    xmc_free(s);
    return rc;
}

int xmc_texts_select_rows(const xmc_texts *t, const int64_t *rows, int64_t n,
                          xmc_texts **out, xmc_error *err)
{
    *out = NULL;
    size_t bytes = 0;
    for (int64_t i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= t->n)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "row %lld out of range [0, %lld)",
                           (long long)rows[i], (long long)t->n);
        bytes += (size_t)(t->offsets[rows[i] + 1] - t->offsets[rows[i]]);
    }
    xmc_texts *o;
    int rc = texts_alloc(n, bytes, &o, err);
    if (rc)
        return rc;
    size_t w = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t k = (size_t)(t->offsets[rows[i] + 1] - t->offsets[rows[i]]);
        o->offsets[i] = (int64_t)w;
        memcpy(o->data + w, t->data + t->offsets[rows[i]], k);
        w += k;
    }
    o->offsets[n] = (int64_t)w;
    *out = o;
    return XMC_OK;
}
