/* The binary cache PATH.xmcb: a dataset laid out so that mmap gives usable
 * CSR matrices and texts without parsing or copying.
 *
 * Layout (little-endian, as the machines we target):
 *   header (64 B): magic "XMCB\r\n\x1a\n" (catches text-mode mangling, as
 *     PNG's), u32 version, u32 section count, i64 n, n_features, n_labels,
 *     n_unknown_labels, 3 x u32 zero, u32 CRC-32 of the header's first 60
 *     bytes and the section table;
 *   section table: per section u32 id, u32 element size, u64 offset, u64
 *     element count, u32 CRC-32 of the bytes, u32 zero (32 B);
 *   sections, each starting at a 64-byte aligned offset (AVX-512 loads).
 * Mapping checks everything before use: magic, version, bounds, alignment,
 * each section's CRC, then the CSR/texts invariants (a crafted file with
 * valid CRCs still cannot make readers index out of bounds). Any failure is
 * XMC_ECORRUPT. The checks read the file once (CRC-32 at GB/s), so "map" is
 * I/O-bound on a cold cache and fast on a warm one.
 *
 * Memory: the mapping (page cache, shared) + small structs. The mapping is
 * private copy-on-write, so in-place changes (xmc_csr_normalize_rows) work
 * and cost only the pages they touch; the file is never modified.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "data/internal.h"

#define MAGIC "XMCB\r\n\x1a\n"
#define VERSION 1u
#define MAX_SECTIONS 32

enum {
    S_X_PTR = 1, S_X_IDX, S_X_VAL,
    S_Y_PTR, S_Y_IDX, S_Y_VAL,
    S_F_PTR, S_F_IDX, S_F_VAL,
    S_T_OFF, S_T_DATA,
    S_LT_OFF, S_LT_DATA,
    S_LN_OFF, S_LN_DATA,
    S_SPEC,
    S_END
};

static const uint32_t elem_size[S_END] = {
    [S_X_PTR] = 8, [S_X_IDX] = 4, [S_X_VAL] = 4, [S_Y_PTR] = 8, [S_Y_IDX] = 4, [S_Y_VAL] = 4,
    [S_F_PTR] = 8, [S_F_IDX] = 4, [S_F_VAL] = 4, [S_T_OFF] = 8, [S_T_DATA] = 1,
    [S_LT_OFF] = 8, [S_LT_DATA] = 1, [S_LN_OFF] = 8, [S_LN_DATA] = 1, [S_SPEC] = 1,
};

typedef struct hdr {
    char magic[8];
    uint32_t version, nsec;
    int64_t n, n_features, n_labels, n_unknown;
    uint32_t reserved[3], crc;
} hdr;
_Static_assert(sizeof(hdr) == 64, "header is 64 bytes");

typedef struct sec {
    uint32_t id, esize;
    uint64_t offset, count;
    uint32_t crc, zero;
} sec;
_Static_assert(sizeof(sec) == 32, "section entry is 32 bytes");

/* CRC-32 of a large section in 8 MiB blocks on all threads, joined with
 * zlib's crc32_combine: checking is most of the map time, and zlib's
 * CRC runs at ~2 GB/s per core. Same value as xmc_crc32(0, p, n). */
#define CRC_BLOCK ((size_t)8 << 20)

static uint32_t crc_parallel(const void *p, size_t n)
{
    size_t nb = (n + CRC_BLOCK - 1) / CRC_BLOCK;
    if (nb <= 1)
        return xmc_crc32(0, p, n);
    uint32_t part[64];
    uint32_t crc = 0;
    for (size_t b0 = 0; b0 < nb; b0 += 64) { /* 64 blocks per round: no allocation */
        size_t k = nb - b0 < 64 ? nb - b0 : 64;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < k; i++) {
            size_t off = (b0 + i) * CRC_BLOCK, len = n - off < CRC_BLOCK ? n - off : CRC_BLOCK;
            part[i] = xmc_crc32(0, (const char *)p + off, len);
        }
        for (size_t i = 0; i < k; i++) {
            size_t off = (b0 + i) * CRC_BLOCK, len = n - off < CRC_BLOCK ? n - off : CRC_BLOCK;
            crc = (uint32_t)crc32_combine(crc, part[i], (z_off_t)len);
        }
    }
    return crc;
}

void xmc_mapping_ref(xmc_mapping *m) { atomic_fetch_add(&m->refs, 1); }

void xmc_mapping_unref(xmc_mapping *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
        munmap(m->base, m->len);
        xmc_free(m->heap);
        xmc_free(m);
    }
}

/* ------------------------------------------------------------ write */

typedef struct part {
    uint32_t id;
    const void *p;
    uint64_t count;
} part;

static int add_csr(part *ps, int *np, const xmc_csr *m, uint32_t base)
{
    if (!m)
        return 0;
    ps[(*np)++] = (part){base, m->indptr, (uint64_t)m->nrows + 1};
    ps[(*np)++] = (part){base + 1, m->indices, (uint64_t)xmc_csr_nnz(m)};
    if (m->values)
        ps[(*np)++] = (part){base + 2, m->values, (uint64_t)xmc_csr_nnz(m)};
    return 0;
}

static void add_texts(part *ps, int *np, const xmc_texts *t, uint32_t base)
{
    if (!t)
        return;
    ps[(*np)++] = (part){base, t->offsets, (uint64_t)t->n + 1};
    ps[(*np)++] = (part){base + 1, t->data, (uint64_t)t->offsets[t->n]};
}

int xmc_dataset_write_binary(const xmc_dataset *ds, const char *path, xmc_error *err)
{
    part ps[MAX_SECTIONS];
    int np = 0;
    add_csr(ps, &np, ds->X, S_X_PTR);
    add_csr(ps, &np, ds->Y, S_Y_PTR);
    add_csr(ps, &np, ds->filter, S_F_PTR);
    add_texts(ps, &np, ds->texts, S_T_OFF);
    add_texts(ps, &np, ds->label_texts, S_LT_OFF);
    add_texts(ps, &np, ds->label_names, S_LN_OFF);
    const char *spec = ds->spec ? ds->spec : "";
    ps[np++] = (part){S_SPEC, spec, (uint64_t)strlen(spec) + 1};

    hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, 8);
    h.version = VERSION;
    h.nsec = (uint32_t)np;
    h.n = ds->n;
    h.n_features = ds->n_features;
    h.n_labels = ds->n_labels;
    h.n_unknown = ds->n_unknown_labels;
    sec tab[MAX_SECTIONS];
    memset(tab, 0, sizeof tab);
    uint64_t off = sizeof h + (uint64_t)np * sizeof(sec);
    for (int i = 0; i < np; i++) {
        off = (off + 63) & ~(uint64_t)63;
        uint32_t es = elem_size[ps[i].id];
        tab[i] = (sec){ps[i].id, es, off, ps[i].count,
                       xmc_crc32(0, ps[i].p, (size_t)(ps[i].count * es)), 0};
        off += ps[i].count * es;
    }
    h.crc = xmc_crc32(xmc_crc32(0, &h, 60), tab, (size_t)np * sizeof(sec));

    xmc_outfile o;
    int rc = xmc_outfile_open(&o, path, err);
    if (rc)
        return rc;
    static const char zeros[64];
    fwrite(&h, sizeof h, 1, o.fp);
    fwrite(tab, sizeof(sec), (size_t)np, o.fp);
    uint64_t pos = sizeof h + (uint64_t)np * sizeof(sec);
    for (int i = 0; i < np; i++) {
        fwrite(zeros, 1, (size_t)(tab[i].offset - pos), o.fp);
        size_t bytes = (size_t)(tab[i].count * tab[i].esize);
        if (bytes && fwrite(ps[i].p, 1, bytes, o.fp) != bytes)
            o.failed = 1;
        pos = tab[i].offset + bytes;
    }
    return xmc_outfile_commit(&o, err);
}

/* ------------------------------------------------------------ map */

typedef struct view {
    const void *p;
    uint64_t count;
    int present;
} view;

#define CORRUPT(...) XMC_ERR(err, XMC_ECORRUPT, path, 0, __VA_ARGS__)

static int map_csr(const char *path, xmc_mapping *mp, const view *v, uint32_t base, int64_t nr,
                   int64_t nc, const char *what, xmc_csr **out, xmc_error *err)
{
    const view *ptr = &v[base], *idx = &v[base + 1], *val = &v[base + 2];
    if (!ptr->present)
        return (idx->present || val->present) ? CORRUPT("%s: arrays without indptr", what)
                                              : XMC_OK;
    if (ptr->count != (uint64_t)nr + 1 || !idx->present)
        return CORRUPT("%s: indptr has %llu entries, expected %lld", what,
                       (unsigned long long)ptr->count, (long long)nr + 1);
    const int64_t *ip = ptr->p;
    if (ip[0] != 0 || ip[nr] < 0 || (uint64_t)ip[nr] != idx->count ||
        (val->present && val->count != idx->count))
        return CORRUPT("%s: indptr does not match the %llu entries", what,
                       (unsigned long long)idx->count);
    xmc_csr *m = xmc_calloc(1, sizeof *m);
    if (!m)
        return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
    m->nrows = nr;
    m->ncols = nc;
    m->indptr = (int64_t *)ip;
    m->indices = (int32_t *)idx->p;
    m->values = val->present ? (float *)val->p : NULL;
    xmc_mapping_ref(mp);
    m->owner = mp;
    xmc_error e = {0};
    if (xmc_csr_check(m, what, &e)) {
        xmc_csr_free(m);
        return CORRUPT("%s", e.msg[0] ? e.msg : "bad matrix");
    }
    *out = m;
    return XMC_OK;
}

static int map_texts(const char *path, xmc_mapping *mp, const view *v, uint32_t base,
                     int64_t n, const char *what, xmc_texts **out, xmc_error *err)
{
    const view *off = &v[base], *dat = &v[base + 1];
    if (!off->present)
        return dat->present ? CORRUPT("%s: data without offsets", what) : XMC_OK;
    if (!dat->present || off->count != (uint64_t)n + 1)
        return CORRUPT("%s: %llu offsets, expected %lld", what,
                       (unsigned long long)off->count, (long long)n + 1);
    const int64_t *o = off->p;
    const char *d = dat->p;
    if (o[0] != 0 || (uint64_t)o[n] != dat->count)
        return CORRUPT("%s: offsets do not match the data", what);
    for (int64_t i = 0; i < n; i++)
        if (o[i + 1] <= o[i] || o[i + 1] > o[n] || d[o[i + 1] - 1] != '\0')
            return CORRUPT("%s: text %lld is not NUL-terminated", what, (long long)i);
    xmc_texts *t = xmc_calloc(1, sizeof *t);
    if (!t)
        return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
    t->n = n;
    t->offsets = (int64_t *)o;
    t->data = (char *)d;
    xmc_mapping_ref(mp);
    t->owner = mp;
    *out = t;
    return XMC_OK;
}

int xmc_dataset_map_binary(const char *path, xmc_dataset **out, xmc_error *err)
{
    *out = NULL;
    xmc_mapping *mp = NULL;
    xmc_dataset *ds = NULL;
    int rc = XMC_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return XMC_ERR(err, XMC_EIO, path, 0, "not a regular file");
    }
    size_t len = (size_t)st.st_size;
    if (len < sizeof(hdr)) {
        close(fd);
        return CORRUPT("truncated binary cache (%zu bytes, header needs 64)", len);
    }
    /* Private and writable: pages stay shared with the page cache until
     * someone writes (e.g. xmc_csr_normalize_rows), who then gets a private
     * copy of that page; the file never changes. */
    void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (base == MAP_FAILED)
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot map: %s", strerror(errno));
    mp = xmc_calloc(1, sizeof *mp);
    if (!mp) {
        munmap(base, len);
        return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
    }
    mp->base = base;
    mp->len = len;
    atomic_init(&mp->refs, 1); /* ours until the end of this function */
    hdr h;
    memcpy(&h, base, sizeof h);
    if (memcmp(h.magic, MAGIC, 8)) {
        rc = CORRUPT("not an xmc binary cache (bad magic)");
        goto out;
    }
    if (h.version != VERSION) {
        rc = CORRUPT("binary cache version %u, this build reads %u (re-run xmc convert)",
                     h.version, VERSION);
        goto out;
    }
    if (h.nsec == 0 || h.nsec > MAX_SECTIONS || sizeof h + (size_t)h.nsec * sizeof(sec) > len) {
        rc = CORRUPT("truncated or bad section table (%u sections)", h.nsec);
        goto out;
    }
    const sec *tab = (const sec *)((const char *)base + sizeof h);
    if (xmc_crc32(xmc_crc32(0, &h, 60), tab, (size_t)h.nsec * sizeof(sec)) != h.crc) {
        rc = CORRUPT("header checksum mismatch");
        goto out;
    }
    if (h.n < 0 || h.n_features < 0 || h.n_labels < 0 || h.n_features > INT32_MAX + 1LL ||
        h.n_labels > INT32_MAX + 1LL || h.n_unknown < 0) {
        rc = CORRUPT("bad dataset shape in header");
        goto out;
    }
    view v[S_END];
    memset(v, 0, sizeof v);
    for (uint32_t i = 0; i < h.nsec; i++) {
        sec s;
        memcpy(&s, &tab[i], sizeof s);
        if (s.id == 0 || s.id >= S_END || v[s.id].present || s.esize != elem_size[s.id]) {
            rc = CORRUPT("section %u: bad id %u or element size", i, s.id);
            goto out;
        }
        uint64_t bytes = s.count * s.esize;
        if (s.offset % 64 || s.count > len || s.offset > len || bytes > len - s.offset) {
            rc = CORRUPT("section %u lies outside the file (truncated?)", s.id);
            goto out;
        }
        const void *p = (const char *)base + s.offset;
        if (crc_parallel(p, (size_t)bytes) != s.crc) {
            rc = CORRUPT("section %u: checksum mismatch", s.id);
            goto out;
        }
        v[s.id] = (view){p, s.count, 1};
    }
    if (!v[S_Y_PTR].present || !v[S_SPEC].present || v[S_SPEC].count == 0 ||
        ((const char *)v[S_SPEC].p)[v[S_SPEC].count - 1] != '\0') {
        rc = CORRUPT("missing labels or spec section");
        goto out;
    }
    if ((rc = xmc_dataset_alloc(&ds, path, err))) /* S_SPEC: the source, for info */
        goto out;
    ds->n_unknown_labels = h.n_unknown;
    if ((rc = map_csr(path, mp, v, S_X_PTR, h.n, h.n_features, "X", &ds->X, err)) ||
        (rc = map_csr(path, mp, v, S_Y_PTR, h.n, h.n_labels, "Y", &ds->Y, err)) ||
        (rc = map_csr(path, mp, v, S_F_PTR, h.n, h.n_labels, "filter", &ds->filter, err)) ||
        (rc = map_texts(path, mp, v, S_T_OFF, h.n, "texts", &ds->texts, err)) ||
        (rc = map_texts(path, mp, v, S_LT_OFF, h.n_labels, "label texts", &ds->label_texts,
                        err)) ||
        (rc = map_texts(path, mp, v, S_LN_OFF, h.n_labels, "label names", &ds->label_names,
                        err)))
        goto out;
    if ((rc = xmc_dataset_finish(ds, path, err)) != XMC_OK) {
        rc = XMC_ECORRUPT;
        if (err)
            err->code = XMC_ECORRUPT;
        goto out;
    }
    if (!ds->X && h.n_features != 0) {
        rc = CORRUPT("header has F = %lld but no feature matrix", (long long)h.n_features);
        goto out;
    }
    *out = ds;
    ds = NULL;
out:
    xmc_dataset_free(ds);
    xmc_mapping_unref(mp);
    return rc;
}
