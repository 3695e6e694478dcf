/* Fixed fan-in head: create / free, rows, accounting, save / load.
 *
 * Memory: one aligned allocation for W, idx, bias and the optimizer state
 * (bytes per label = xmc_ffi_bytes_per_label), one arena for the per-step
 * scratch (ffi_internal.h). Initialisation runs in parallel over labels; each
 * label draws from the RNG stream of its global id, so the result depends
 * neither on the thread count nor on sharding.
 */
#include <math.h>
#include <string.h>

#include "head/ffi_internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define FFI_MAGIC "XMCFFI\0\1"
#define FFI_VERSION 1u
#define FFI_MAX_DIM (1 << 20)
#define FFI_MAX_BATCH (1 << 20)
#define INIT_TAG 0x46464920494e4954ull /* "FFI INIT" */

static size_t a64(size_t n) { return (n + 63) & ~(size_t)63; }

int ffi_btile(int d_in)
{
    /* A kernel's cost is per touched row (latency of a gathered L2 line), so
     * wide tiles win: on the 2 MiB-L2 Xeon, Bt = 64 beat 16 and 32 by 2-3x
     * at d = 768 and d = 4096 (1 MiB + 1 MiB tiles) alike, and Bt = 128 lost
     * at d = 4096. Narrower tiles only for very wide inputs. */
    return d_in <= 8192 ? 64 : d_in <= 16384 ? 32 : 16;
}

int ffi_config_check(const xmc_ffi_config *in, xmc_ffi_config *c, xmc_error *err)
{
    if (!in)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: config is NULL");
    *c = *in;
    if (c->n_labels < 1 || c->n_labels > INT32_MAX)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: n_labels must be in [1, 2^31), got %lld",
                       (long long)c->n_labels);
    if (c->label_offset < 0 || c->label_offset > (int64_t)INT32_MAX - c->n_labels)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "ffi: label_offset + n_labels must be in [0, 2^31), got %lld + %lld",
                       (long long)c->label_offset, (long long)c->n_labels);
    if (c->d_in < 1 || c->d_in > FFI_MAX_DIM)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: d_in must be in [1, %d], got %d",
                       FFI_MAX_DIM, c->d_in);
    if (c->fan_in < 1 || c->fan_in > c->d_in)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: fan_in must be in [1, d_in = %d], got %d",
                       c->d_in, c->fan_in);
    if (c->max_batch < 1 || c->max_batch > FFI_MAX_BATCH)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: max_batch must be in [1, %d], got %d",
                       FFI_MAX_BATCH, c->max_batch);
    if (c->chunk == 0)
        c->chunk = XMC_FFI_DEFAULT_CHUNK;
    if (c->chunk < XMC_FFI_MIN_CHUNK || c->chunk > XMC_FFI_MAX_CHUNK)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: chunk must be in [%d, %d], got %lld",
                       XMC_FFI_MIN_CHUNK, XMC_FFI_MAX_CHUNK, (long long)c->chunk);
    if (c->bias != 0 && c->bias != 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: bias must be 0 or 1, got %d", c->bias);
    if (c->dtype == XMC_DT_BF16)
        return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                       "ffi: bf16 weights are not implemented; use fp32");
    if (c->dtype != XMC_DT_F32)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: unknown dtype %d", (int)c->dtype);
    if (c->opt != XMC_HEAD_SGDM && c->opt != XMC_HEAD_ADAM)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: unknown optimizer %d", (int)c->opt);
    if (!(c->init_std >= 0) || !isfinite(c->init_std))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: init_std must be finite and >= 0, got %g",
                       (double)c->init_std);
    if (c->init_std == 0)
        c->init_std = XMC_FFI_DEFAULT_INIT_STD;
    return XMC_OK;
}

size_t xmc_ffi_bytes_per_label(const xmc_ffi_config *cfg)
{
    size_t F = (size_t)cfg->fan_in;
    size_t state = cfg->opt == XMC_HEAD_ADAM ? 2 : 1; /* floats of state per weight */
    size_t per = (4 + 4) * F + 4 * state * F;
    if (cfg->bias)
        per += 4 + 4 * state;
    return per;
}

static size_t scratch_size(const xmc_ffi_config *c, int threads, int bt)
{
    size_t d = (size_t)c->d_in, B = (size_t)c->max_batch, C = (size_t)c->chunk;
    size_t F = (size_t)c->fan_in;
    size_t per = a64(d * B * 4) + 2 * a64(C * bt * 4) + a64(C * F * 4) + a64(C * 4) + a64(B * 8);
    /* + one 64-byte per-thread record (pointers, loss) */
    return a64(d * B * 4) + (size_t)threads * per + a64((size_t)threads * 64);
}

void ffi_sample_distinct(xmc_rng *r, int d, int F, uint64_t *used, int32_t *free_list,
                         int32_t *out)
{
    int n_used = 0;
    for (int w = 0; w < (d + 63) / 64; w++)
        n_used += __builtin_popcountll(used[w]);
    int n_free = d - n_used;
    if (2 * n_free >= d) {
        /* Rejection: at least half the values are free, so each pick takes
         * at most 2 draws on average. */
        for (int k = 0; k < F; k++) {
            int j;
            do
                j = (int)xmc_rng_below(r, (uint64_t)d);
            while (used[j >> 6] >> (j & 63) & 1);
            used[j >> 6] |= 1ull << (j & 63);
            out[k] = j;
        }
        return;
    }
    /* Few free values: list them and take a partial Fisher-Yates shuffle. */
    int m = 0;
    for (int j = 0; j < d; j++)
        if (!(used[j >> 6] >> (j & 63) & 1))
            free_list[m++] = j;
    for (int k = 0; k < F; k++) {
        int t = k + (int)xmc_rng_below(r, (uint64_t)(m - k));
        int32_t s = free_list[t];
        free_list[t] = free_list[k];
        free_list[k] = s;
        used[s >> 6] |= 1ull << (s & 63);
        out[k] = s;
    }
}

void ffi_sort_row(int32_t *idx, float *w, float *m, float *v, int F)
{
    /* Insertion sort: O(F) on sorted rows (the common case), O(F^2) worst. */
    for (int i = 1; i < F; i++) {
        int32_t key = idx[i];
        if (idx[i - 1] <= key)
            continue;
        float kw = w[i], km = m ? m[i] : 0, kv = v ? v[i] : 0;
        int j = i - 1;
        while (j >= 0 && idx[j] > key) {
            idx[j + 1] = idx[j];
            w[j + 1] = w[j];
            if (m)
                m[j + 1] = m[j];
            if (v)
                v[j + 1] = v[j];
            j--;
        }
        idx[j + 1] = key;
        w[j + 1] = kw;
        if (m)
            m[j + 1] = km;
        if (v)
            v[j + 1] = kv;
    }
}

static int init_params(xmc_ffi *h, xmc_error *err)
{
    const xmc_ffi_config *c = &h->cfg;
    int d = c->d_in, F = c->fan_in, T = h->threads;
    int words = (d + 63) / 64;
    size_t per = a64((size_t)words * 8) + a64((size_t)d * 4);
    unsigned char *scr = xmc_malloc_aligned(per * (size_t)T);
    if (!scr)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ffi: out of memory for init scratch");
    int64_t L = c->n_labels;
#pragma omp parallel num_threads(T)
    {
#ifdef _OPENMP
        int t = omp_get_thread_num();
#else
        int t = 0;
#endif
        uint64_t *used = (uint64_t *)(scr + per * (size_t)t);
        int32_t *free_list = (int32_t *)(scr + per * (size_t)t + a64((size_t)words * 8));
#pragma omp for schedule(static)
        for (int64_t u = 0; u < L; u++) {
            xmc_rng r;
            xmc_rng_seed(&r, c->seed ^ INIT_TAG, (uint64_t)(c->label_offset + u));
            memset(used, 0, (size_t)words * 8);
            int32_t *row = h->idx + u * F;
            ffi_sample_distinct(&r, d, F, used, free_list, row);
            /* Read the chosen set back from the bitmap: sorted for free. */
            int k = 0;
            for (int w = 0; w < words; w++)
                for (uint64_t b = used[w]; b; b &= b - 1)
                    row[k++] = w * 64 + __builtin_ctzll(b);
            float *wr = h->W + u * F;
            for (k = 0; k < F; k++)
                wr[k] = c->init_std * xmc_rng_normal(&r);
        }
    }
    xmc_free_aligned(scr);
    size_t LF = (size_t)L * (size_t)F;
    memset(h->m, 0, LF * 4);
    if (h->v)
        memset(h->v, 0, LF * 4);
    if (h->bias) {
        memset(h->bias, 0, (size_t)L * 4);
        memset(h->mb, 0, (size_t)L * 4);
        if (h->vb)
            memset(h->vb, 0, (size_t)L * 4);
    }
    return XMC_OK;
}

int ffi_create(const xmc_ffi_config *cfg, int init, xmc_ffi **out, xmc_error *err)
{
    xmc_ffi *h = NULL;
    xmc_ffi_config c;
    int rc;
    if (!out)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: out is NULL");
    *out = NULL;
    if ((rc = ffi_config_check(cfg, &c, err)) != XMC_OK)
        return rc;
    h = xmc_calloc(1, sizeof *h);
    if (!h)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ffi: out of memory");
    h->cfg = c;
    h->threads = xmc_get_threads();
    if (h->threads < 1)
        h->threads = 1;
    h->btile = ffi_btile(c.d_in);

    size_t L = (size_t)c.n_labels, LF = L * (size_t)c.fan_in;
    int adam = c.opt == XMC_HEAD_ADAM;
    size_t off_W = 0, off_idx = a64(LF * 4), off_m = off_idx + a64(LF * 4);
    size_t off_v = off_m + a64(LF * 4);
    size_t off_b = off_v + (adam ? a64(LF * 4) : 0);
    size_t nb = c.bias ? (adam ? 3 : 2) : 0;
    h->block_bytes = off_b + nb * a64(L * 4);
    h->block = xmc_malloc_aligned(h->block_bytes);
    if (!h->block) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                     "ffi: out of memory for %zu bytes of parameters (%lld labels x %zu bytes)",
                     h->block_bytes, (long long)c.n_labels, xmc_ffi_bytes_per_label(&c));
        goto fail;
    }
    unsigned char *p = h->block;
    h->W = (float *)(p + off_W);
    h->idx = (int32_t *)(p + off_idx);
    h->m = (float *)(p + off_m);
    h->v = adam ? (float *)(p + off_v) : NULL;
    if (c.bias) {
        h->bias = (float *)(p + off_b);
        h->mb = (float *)(p + off_b + a64(L * 4));
        h->vb = adam ? (float *)(p + off_b + 2 * a64(L * 4)) : NULL;
    }
    h->arena = xmc_arena_create(scratch_size(&c, h->threads, h->btile));
    if (!h->arena) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ffi: out of memory for %zu bytes of scratch",
                     scratch_size(&c, h->threads, h->btile));
        goto fail;
    }
    h->rewire_bytes = ffi_rewire_bytes(&c, h->threads);
    h->rewire_scr = xmc_malloc_aligned(h->rewire_bytes);
    if (!h->rewire_scr) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                     "ffi: out of memory for %zu bytes of rewiring scratch", h->rewire_bytes);
        goto fail;
    }
    if (init && (rc = init_params(h, err)) != XMC_OK)
        goto fail;
    *out = h;
    return XMC_OK;
fail:
    xmc_ffi_free(h);
    return rc;
}

int xmc_ffi_create(const xmc_ffi_config *cfg, xmc_ffi **out, xmc_error *err)
{
    return ffi_create(cfg, 1, out, err);
}

void xmc_ffi_free(xmc_ffi *h)
{
    if (!h)
        return;
    xmc_free_aligned(h->block);
    xmc_arena_free(h->arena);
    xmc_free_aligned(h->rewire_scr);
    xmc_free(h);
}

const xmc_ffi_config *xmc_ffi_get_config(const xmc_ffi *h) { return &h->cfg; }

size_t xmc_ffi_scratch_bytes(const xmc_ffi *h)
{
    return xmc_arena_capacity(h->arena) + h->rewire_bytes;
}

size_t xmc_ffi_param_bytes(const xmc_ffi *h)
{
    return (size_t)h->cfg.n_labels * ((size_t)8 * h->cfg.fan_in + (h->cfg.bias ? 4 : 0));
}

size_t xmc_ffi_state_bytes(const xmc_ffi *h)
{
    return (size_t)h->cfg.n_labels * xmc_ffi_bytes_per_label(&h->cfg) - xmc_ffi_param_bytes(h);
}

int64_t xmc_ffi_steps(const xmc_ffi *h) { return h->steps; }

int xmc_ffi_reserve(xmc_ffi *h, int max_batch, xmc_error *err)
{
    if (!h)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: head is NULL");
    if (max_batch < 1 || max_batch > FFI_MAX_BATCH)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: max_batch must be in [1, %d], got %d",
                       FFI_MAX_BATCH, max_batch);
    xmc_ffi_config c = h->cfg;
    c.max_batch = max_batch;
    int T = xmc_get_threads() < 1 ? 1 : xmc_get_threads();
    size_t bytes = scratch_size(&c, T, h->btile);
    size_t rbytes = ffi_rewire_bytes(&c, T);
    xmc_arena *a = xmc_arena_create(bytes);
    void *rs = a ? xmc_malloc_aligned(rbytes) : NULL;
    if (!rs) {
        xmc_arena_free(a);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ffi: out of memory for %zu bytes of scratch",
                       bytes + rbytes);
    }
    xmc_arena_free(h->arena);
    h->arena = a;
    xmc_free_aligned(h->rewire_scr);
    h->rewire_scr = rs;
    h->rewire_bytes = rbytes;
    h->cfg.max_batch = max_batch;
    h->threads = T;
    return XMC_OK;
}

size_t xmc_ffi_bytes(const xmc_ffi *h)
{
    return (size_t)h->cfg.n_labels * xmc_ffi_bytes_per_label(&h->cfg) + xmc_ffi_scratch_bytes(h);
}

void xmc_ffi_freeze(xmc_ffi *h) { h->frozen = 1; }
int xmc_ffi_frozen(const xmc_ffi *h) { return h->frozen; }
int64_t xmc_ffi_rewire_rounds(const xmc_ffi *h) { return h->rounds; }

static int check_range(const xmc_ffi *h, int64_t l0, int64_t l1, xmc_error *err)
{
    if (l0 < 0 || l1 < l0 || l1 > h->cfg.n_labels)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: rows [%lld, %lld) outside [0, %lld)",
                       (long long)l0, (long long)l1, (long long)h->cfg.n_labels);
    return XMC_OK;
}

int xmc_ffi_get_rows(const xmc_ffi *h, int64_t l0, int64_t l1, float *W, int32_t *idx,
                     float *bias, xmc_error *err)
{
    int rc = check_range(h, l0, l1, err);
    if (rc)
        return rc;
    size_t F = (size_t)h->cfg.fan_in, n = (size_t)(l1 - l0);
    if (W)
        memcpy(W, h->W + l0 * (int64_t)F, n * F * 4);
    if (idx)
        memcpy(idx, h->idx + l0 * (int64_t)F, n * F * 4);
    if (bias && h->bias)
        memcpy(bias, h->bias + l0, n * 4);
    return XMC_OK;
}

int xmc_ffi_set_rows(xmc_ffi *h, int64_t l0, int64_t l1, const float *W, const int32_t *idx,
                     const float *bias, xmc_error *err)
{
    int rc = check_range(h, l0, l1, err);
    if (rc)
        return rc;
    int F = h->cfg.fan_in, d = h->cfg.d_in;
    if (idx) {
        /* Validate everything before changing anything. */
        int32_t *tmp = xmc_malloc((size_t)F * 4);
        float *dummy = xmc_malloc((size_t)F * 4);
        if (!tmp || !dummy) {
            xmc_free(tmp);
            xmc_free(dummy);
            return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ffi: out of memory");
        }
        for (int64_t u = l0; u < l1 && !rc; u++) {
            memcpy(tmp, idx + (u - l0) * F, (size_t)F * 4);
            for (int k = 0; k < F && !rc; k++)
                if (tmp[k] < 0 || tmp[k] >= d)
                    rc = XMC_ERR(err, XMC_EINVAL, NULL, 0,
                                 "ffi: row %lld: input index %d outside [0, %d)", (long long)u,
                                 (int)tmp[k], d);
            if (rc)
                break;
            ffi_sort_row(tmp, dummy, NULL, NULL, F);
            for (int k = 1; k < F && !rc; k++)
                if (tmp[k] == tmp[k - 1])
                    rc = XMC_ERR(err, XMC_EINVAL, NULL, 0,
                                 "ffi: row %lld: input index %d repeated (fan-in indices must "
                                 "be distinct)",
                                 (long long)u, (int)tmp[k]);
        }
        xmc_free(tmp);
        xmc_free(dummy);
        if (rc)
            return rc;
    }
    size_t n = (size_t)(l1 - l0);
    if (W)
        memcpy(h->W + l0 * F, W, n * (size_t)F * 4);
    if (idx)
        memcpy(h->idx + l0 * F, idx, n * (size_t)F * 4);
    if (idx) {
        memset(h->m + l0 * F, 0, n * (size_t)F * 4);
        if (h->v)
            memset(h->v + l0 * F, 0, n * (size_t)F * 4);
        for (int64_t u = l0; u < l1; u++)
            ffi_sort_row(h->idx + u * F, h->W + u * F, NULL, NULL, F);
        if (h->bias) {
            memset(h->mb + l0, 0, n * 4);
            if (h->vb)
                memset(h->vb + l0, 0, n * 4);
        }
    }
    if (h->bias && bias)
        memcpy(h->bias + l0, bias, n * 4);
    return XMC_OK;
}

/* ------------------------------------------------------------ save / load */

typedef struct io {
    FILE *f;
    const char *path;
    uint32_t crc;
} io;

static int wr(io *s, const void *p, size_t n, xmc_error *err)
{
    if (n && fwrite(p, 1, n, s->f) != n)
        return XMC_ERR(err, XMC_EIO, s->path, 0, "ffi: write failed");
    s->crc = xmc_crc32(s->crc, p, n);
    return XMC_OK;
}

static int rd(io *s, void *p, size_t n, xmc_error *err)
{
    if (n && fread(p, 1, n, s->f) != n)
        return XMC_ERR(err, XMC_ECORRUPT, s->path, 0,
                       "ffi: truncated head (expected %zu more bytes)", n);
    s->crc = xmc_crc32(s->crc, p, n);
    return XMC_OK;
}

/* Fixed-width header; integers in host order (x86-64 little-endian). */
typedef struct ffi_header {
    int64_t n_labels, label_offset, chunk, rounds, steps;
    uint64_t seed;
    int32_t d_in, fan_in, bias, dtype, opt, max_batch, frozen;
    float init_std;
} ffi_header;

static size_t state_arrays(const xmc_ffi *h, void **ptrs, size_t *sizes)
{
    size_t L = (size_t)h->cfg.n_labels, LF = L * (size_t)h->cfg.fan_in, n = 0;
    ptrs[n] = h->W, sizes[n++] = LF * 4;
    ptrs[n] = h->idx, sizes[n++] = LF * 4;
    ptrs[n] = h->m, sizes[n++] = LF * 4;
    if (h->v)
        ptrs[n] = h->v, sizes[n++] = LF * 4;
    if (h->bias) {
        ptrs[n] = h->bias, sizes[n++] = L * 4;
        ptrs[n] = h->mb, sizes[n++] = L * 4;
        if (h->vb)
            ptrs[n] = h->vb, sizes[n++] = L * 4;
    }
    return n;
}

int xmc_ffi_save(const xmc_ffi *h, FILE *f, const char *path, xmc_error *err)
{
    io s = {f, path, 0};
    int rc;
    if (fwrite(FFI_MAGIC, 1, 8, f) != 8)
        return XMC_ERR(err, XMC_EIO, path, 0, "ffi: write failed");
    uint32_t ver = FFI_VERSION;
    ffi_header hd = {0};
    hd.n_labels = h->cfg.n_labels, hd.label_offset = h->cfg.label_offset;
    hd.chunk = h->cfg.chunk, hd.rounds = h->rounds, hd.steps = h->steps, hd.seed = h->cfg.seed;
    hd.d_in = h->cfg.d_in, hd.fan_in = h->cfg.fan_in, hd.bias = h->cfg.bias;
    hd.dtype = h->cfg.dtype, hd.opt = h->cfg.opt, hd.max_batch = h->cfg.max_batch;
    hd.frozen = h->frozen, hd.init_std = h->cfg.init_std;
    if ((rc = wr(&s, &ver, 4, err)) || (rc = wr(&s, &hd, sizeof hd, err)))
        return rc;
    void *ptrs[8];
    size_t sizes[8], n = state_arrays(h, ptrs, sizes);
    for (size_t i = 0; i < n; i++)
        if ((rc = wr(&s, ptrs[i], sizes[i], err)))
            return rc;
    uint32_t crc = s.crc;
    if (fwrite(&crc, 1, 4, f) != 4)
        return XMC_ERR(err, XMC_EIO, path, 0, "ffi: write failed");
    return XMC_OK;
}

int xmc_ffi_load(FILE *f, const char *path, xmc_ffi **out, xmc_error *err)
{
    io s = {f, path, 0};
    xmc_ffi *h = NULL;
    char magic[8];
    uint32_t ver, crc;
    ffi_header hd;
    int rc;
    if (!out)
        return XMC_ERR(err, XMC_EINVAL, path, 0, "ffi: out is NULL");
    *out = NULL;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, FFI_MAGIC, 8))
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "ffi: not a fixed fan-in head (bad magic)");
    if ((rc = rd(&s, &ver, 4, err)))
        return rc;
    if (ver != FFI_VERSION)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "ffi: version %u, expected %u", ver,
                       FFI_VERSION);
    if ((rc = rd(&s, &hd, sizeof hd, err)))
        return rc;
    xmc_ffi_config c = {0};
    c.n_labels = hd.n_labels, c.label_offset = hd.label_offset, c.chunk = hd.chunk;
    c.seed = hd.seed, c.d_in = hd.d_in, c.fan_in = hd.fan_in, c.bias = hd.bias;
    c.dtype = (xmc_dtype)hd.dtype, c.opt = (xmc_head_opt)hd.opt, c.max_batch = hd.max_batch;
    c.init_std = hd.init_std;
    xmc_error e2 = {0};
    if (ffi_config_check(&c, &c, &e2) != XMC_OK || (hd.frozen != 0 && hd.frozen != 1) ||
        hd.rounds < 0 || hd.steps < 0)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "ffi: bad header: %s",
                       e2.code ? e2.msg : "frozen flag, rewiring rounds or steps");
    if ((rc = ffi_create(&c, 0, &h, err)))
        return rc;
    h->frozen = hd.frozen;
    h->rounds = hd.rounds;
    h->steps = hd.steps;
    void *ptrs[8];
    size_t sizes[8], n = state_arrays(h, ptrs, sizes);
    for (size_t i = 0; i < n; i++)
        if ((rc = rd(&s, ptrs[i], sizes[i], err)))
            goto fail;
    if (fread(&crc, 1, 4, f) != 4) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "ffi: truncated head (no checksum)");
        goto fail;
    }
    if (crc != s.crc) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "ffi: checksum mismatch (%08x, expected %08x)",
                     s.crc, crc);
        goto fail;
    }
    int F = c.fan_in;
    for (int64_t u = 0; u < c.n_labels; u++) {
        const int32_t *row = h->idx + u * F;
        for (int k = 0; k < F; k++)
            if (row[k] < 0 || row[k] >= c.d_in || (k && row[k] <= row[k - 1])) {
                rc = XMC_ERR(err, XMC_ECORRUPT, path, 0,
                             "ffi: label %lld: input indices not sorted, distinct, in [0, %d)",
                             (long long)u, c.d_in);
                goto fail;
            }
    }
    *out = h;
    return XMC_OK;
fail:
    xmc_ffi_free(h);
    return rc;
}
