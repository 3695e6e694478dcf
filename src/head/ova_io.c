/* Save / load a one-vs-all head with its optimizer state, so a resumed run
 * continues bit-identically (the step counter that keys stochastic
 * rounding is saved too).
 *
 * Format (little-endian, as the host; x86-64 only):
 *   "XMCOVA\0\0"                      8-byte magic
 *   u32 version (1)
 *   i64 n_labels, label_offset, dim, dtype, opt, chunk, max_batch
 *   u64 seed; u32 init_std bits; i64 steps
 *   W (L*d values: f32, or bf16 as u16)
 *   state: SGDM momentum in W's dtype, or Adam m then v (f32)
 *   u32 CRC-32 of every byte after the magic
 * Streaming: arrays are written and read in place (no copy of W), the CRC
 * accumulated on the way.
 */
#include <string.h>

#include "internal.h"

#define OVA_MAGIC "XMCOVA\0\0"
#define OVA_VERSION 1u

typedef struct wctx {
    FILE *f;
    uint32_t crc;
    int bad;
} wctx;

static void put(wctx *w, const void *p, size_t n)
{
    if (w->bad || n == 0)
        return;
    if (fwrite(p, 1, n, w->f) != n)
        w->bad = 1;
    w->crc = xmc_crc32(w->crc, p, n);
}

static void put_i64(wctx *w, int64_t v) { put(w, &v, sizeof v); }

int xmc_ova_save(const xmc_ova *h, FILE *f, const char *path, xmc_error *err)
{
    if (!h || !f)
        return XMC_ERR(err, XMC_EINVAL, path, 0, "ova save: NULL argument");
    if (fwrite(OVA_MAGIC, 1, 8, f) != 8)
        return XMC_ERR(err, XMC_EIO, path, 0, "ova save: write failed");
    wctx w = {f, 0, 0};
    uint32_t ver = OVA_VERSION, stdbits;
    memcpy(&stdbits, &h->cfg.init_std, 4);
    put(&w, &ver, 4);
    put_i64(&w, h->cfg.n_labels);
    put_i64(&w, h->cfg.label_offset);
    put_i64(&w, h->cfg.dim);
    put_i64(&w, h->cfg.dtype);
    put_i64(&w, h->cfg.opt);
    put_i64(&w, h->cfg.chunk);
    put_i64(&w, h->cfg.max_batch);
    put(&w, &h->cfg.seed, 8);
    put(&w, &stdbits, 4);
    put_i64(&w, h->t);
    size_t n = (size_t)h->L * (size_t)h->d;
    if (h->w)
        put(&w, h->w, n * 4);
    else
        put(&w, h->wb, n * 2);
    if (h->mom)
        put(&w, h->mom, n * 4);
    else if (h->momb)
        put(&w, h->momb, n * 2);
    else {
        put(&w, h->am, n * 4);
        put(&w, h->av, n * 4);
    }
    uint32_t crc = w.crc;
    if (w.bad || fwrite(&crc, 1, 4, f) != 4)
        return XMC_ERR(err, XMC_EIO, path, 0, "ova save: write failed");
    return XMC_OK;
}

typedef struct rctx {
    FILE *f;
    uint32_t crc;
    int short_read;
} rctx;

static void get(rctx *r, void *p, size_t n)
{
    if (r->short_read || n == 0)
        return;
    if (fread(p, 1, n, r->f) != n) {
        r->short_read = 1;
        return;
    }
    r->crc = xmc_crc32(r->crc, p, n);
}

static int64_t get_i64(rctx *r)
{
    int64_t v = 0;
    get(r, &v, sizeof v);
    return v;
}

int xmc_ova_load(FILE *f, const char *path, xmc_ova **out, xmc_error *err)
{
    if (!out || !f)
        return XMC_ERR(err, XMC_EINVAL, path, 0, "ova load: NULL argument");
    *out = NULL;
    char magic[8];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, OVA_MAGIC, 8) != 0)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0,
                       "ova load: expected magic XMCOVA (classifier head), not found");
    rctx r = {f, 0, 0};
    uint32_t ver = 0, stdbits = 0;
    get(&r, &ver, 4);
    if (r.short_read)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "ova load: truncated header");
    if (ver != OVA_VERSION)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "ova load: expected version %u, got %u",
                       OVA_VERSION, ver);
    xmc_ova_config c = {0};
    c.n_labels = get_i64(&r);
    c.label_offset = get_i64(&r);
    int64_t dim = get_i64(&r), dt = get_i64(&r), opt = get_i64(&r);
    c.chunk = get_i64(&r);
    int64_t mb = get_i64(&r);
    get(&r, &c.seed, 8);
    get(&r, &stdbits, 4);
    int64_t steps = get_i64(&r);
    if (r.short_read)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "ova load: truncated header");
    if (dim < 1 || dim > INT32_MAX || dt < 0 || dt > 1 || opt < 0 || opt > 1 || mb < 1 ||
        mb > INT32_MAX || steps < 0)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "ova load: implausible header values");
    c.dim = (int)dim;
    c.dtype = (xmc_dtype)dt;
    c.opt = (xmc_head_opt)opt;
    c.max_batch = (int)mb;
    memcpy(&c.init_std, &stdbits, 4);
    xmc_ova *h = NULL;
    xmc_error e2 = {0};
    /* allocate without the random init: everything is overwritten */
    int rc = ova_new(&c, &h, &e2);
    if (rc) {
        if (rc == XMC_EINVAL)
            return XMC_ERR(err, XMC_ECORRUPT, path, 0, "ova load: bad config: %s", e2.msg);
        return XMC_ERR(err, rc, path, 0, "ova load: %s", e2.msg);
    }
    h->t = steps;
    size_t n = (size_t)h->L * (size_t)h->d;
    if (h->w)
        get(&r, h->w, n * 4);
    else
        get(&r, h->wb, n * 2);
    if (h->mom)
        get(&r, h->mom, n * 4);
    else if (h->momb)
        get(&r, h->momb, n * 2);
    else {
        get(&r, h->am, n * 4);
        get(&r, h->av, n * 4);
    }
    uint32_t want = r.crc, got = 0;
    if (r.short_read || fread(&got, 1, 4, f) != 4) {
        xmc_ova_free(h);
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "ova load: truncated (weights or state)");
    }
    if (got != want) {
        xmc_ova_free(h);
        return XMC_ERR(err, XMC_ECORRUPT, path, 0,
                       "ova load: checksum mismatch (expected %08x, found %08x)", want, got);
    }
    *out = h;
    return XMC_OK;
}
