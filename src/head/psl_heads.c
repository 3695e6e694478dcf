/* UniDEC's two heads and the classifier lookup table (Kharbanda et al.,
 * WWW 2025, sec. 3; thesis ch. 2), on top of the shared encoder Φ:
 *   Φ_D(h) = normalize(dropout(tanh(g1(h))))   dual-encoder head
 *   Φ_C(h) = dropout(g2(h))                      classifier head (not normalised)
 *   Ψ (L x d)                                    classifier lookup table
 * scored over the pool as s_DE = Φ_D(x)·Φ_D(z_l) and s_CLF = Φ_C(x)·Ψ_l.
 * Dropout sits after tanh (before the normalisation) so Φ_D stays on the unit
 * sphere in training too, and the inner product stays a cosine.
 *
 * Memory: a head holds [W | b] plus grads and AdamW moments (4x params) and,
 * per slot, max_batch x d_out floats of activations and dropout masks (DE:
 * tanh output, mask, output, inverse norms); one shared backward scratch.
 * Ψ holds L x d weights plus the optimizer state (SGDM: one, Adam: two
 * moments); a step touches only the pool's rows (lazy, as PyTorch's
 * SparseAdam), so its cost is O(|L_B| d), independent of L.
 * Threading: GEMMs through OpenBLAS; element loops OpenMP over rows with
 * per-row RNG streams (masks and init independent of the thread count).
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "xmc/psl.h"
#include "xmc/optim.h"

#define PSL_NORM_EPS 1e-12f /* as torch.nn.functional.normalize */
#define PSL_HEAD_MAGIC 0x44485350u /* "PSHD" */
#define PSL_HEAD_VERSION 1u

typedef struct head_cache {
    float *a;    /* (max_batch, d_out) DE: tanh(z); CLF: unused */
    float *mask; /* (max_batch, d_out) dropout scale (0 or 1/(1-p)) */
    float *y;    /* (max_batch, d_out) DE output */
    float *nrm;  /* (max_batch) DE: |u| of each row */
    int B;       /* rows of the last train forward, 0 = none */
} head_cache;

typedef struct head_impl {
    head_cache slot[XMC_PSL_HEAD_SLOTS];
    float *dz;   /* (max_batch, d_out) backward scratch */
} head_impl;

/* ------------------------------------------------------------- scores */

void xmc_psl_scores(const float *A, int na, const float *B, int nb, int d, float *S)
{
    if (na <= 0 || nb <= 0)
        return;
    if (d <= 0) {
        memset(S, 0, sizeof(float) * (size_t)na * (size_t)nb);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, na, nb, d, 1.0f, A, d, B, d, 0.0f, S,
                nb);
}

void xmc_psl_scores_backward(const float *A, int na, const float *B, int nb, int d,
                             const float *dS, float *dA, float *dB, int accumulate)
{
    if (na <= 0 || nb <= 0 || d <= 0)
        return;
    float beta = accumulate ? 1.0f : 0.0f;
    if (dA)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, na, d, nb, 1.0f, dS, nb, B, d,
                    beta, dA, d);
    if (dB)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nb, d, na, 1.0f, dS, nb, A, d, beta,
                    dB, d);
}

/* ------------------------------------------------------------- heads */

void xmc_psl_head_config_default(xmc_psl_head_config *c, int kind, int d_in, int d_out)
{
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->d_in = d_in;
    c->d_out = d_out;
    c->dropout = XMC_PSL_DEFAULT_DROPOUT;
    c->max_batch = 256;
    c->slots = 2;
    c->seed = 1;
}

static void head_free_impl(head_impl *im)
{
    if (!im)
        return;
    for (int s = 0; s < XMC_PSL_HEAD_SLOTS; s++) {
        xmc_free(im->slot[s].a);
        xmc_free(im->slot[s].mask);
        xmc_free(im->slot[s].y);
        xmc_free(im->slot[s].nrm);
    }
    xmc_free(im->dz);
    xmc_free(im);
}

void xmc_psl_head_free(xmc_psl_head *h)
{
    if (!h)
        return;
    xmc_free(h->params);
    xmc_free(h->grads);
    xmc_free(h->m);
    xmc_free(h->v);
    head_free_impl(h->impl);
    xmc_free(h);
}

static int check_head_cfg(const xmc_psl_head_config *c, xmc_error *err)
{
    if (c->kind != XMC_PSL_HEAD_DE && c->kind != XMC_PSL_HEAD_CLF)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl head: unknown kind %d", c->kind);
    if (c->d_in < 1 || c->d_out < 1 || c->d_in > 65536 || c->d_out > 65536)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "psl head: dimensions must be in [1, 65536], got %d -> %d", c->d_in,
                       c->d_out);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl head: dropout must be in [0, 1), got %g",
                       (double)c->dropout);
    if (c->max_batch < 1 || c->max_batch > XMC_PSL_MAX_BATCH)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl head: max_batch must be in [1, %d], got %d",
                       XMC_PSL_MAX_BATCH, c->max_batch);
    if (c->slots < 1 || c->slots > XMC_PSL_HEAD_SLOTS)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl head: slots must be in [1, %d], got %d",
                       XMC_PSL_HEAD_SLOTS, c->slots);
    if (c->identity_init && c->d_in != c->d_out)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "psl head: identity init needs d_in == d_out, got %d -> %d", c->d_in,
                       c->d_out);
    return XMC_OK;
}

/* Allocate a head with zero parameters (load fills them). */
static int head_new(const xmc_psl_head_config *cfg, xmc_psl_head **out, xmc_error *err)
{
    *out = NULL;
    int rc = check_head_cfg(cfg, err);
    if (rc)
        return rc;
    xmc_psl_head *h = xmc_calloc(1, sizeof *h);
    head_impl *im = xmc_calloc(1, sizeof *im);
    if (!h || !im) {
        xmc_free(h);
        xmc_free(im);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "psl head: out of memory");
    }
    h->cfg = *cfg;
    h->impl = im;
    const size_t din = (size_t)cfg->d_in, dout = (size_t)cfg->d_out;
    h->n_params = (int64_t)(dout * din + dout);
    h->params = xmc_calloc((size_t)h->n_params, sizeof(float));
    h->grads = xmc_calloc((size_t)h->n_params, sizeof(float));
    h->m = xmc_calloc((size_t)h->n_params, sizeof(float));
    h->v = xmc_calloc((size_t)h->n_params, sizeof(float));
    const size_t act = (size_t)cfg->max_batch * dout;
    int ok = h->params && h->grads && h->m && h->v;
    for (int s = 0; s < cfg->slots && ok; s++) {
        head_cache *c = &im->slot[s];
        c->mask = xmc_malloc(sizeof(float) * act);
        ok = c->mask != NULL;
        if (ok && cfg->kind == XMC_PSL_HEAD_DE) {
            c->a = xmc_malloc(sizeof(float) * act);
            c->y = xmc_malloc(sizeof(float) * act);
            c->nrm = xmc_malloc(sizeof(float) * (size_t)cfg->max_batch);
            ok = c->a && c->y && c->nrm;
        }
    }
    if (ok) {
        im->dz = xmc_malloc(sizeof(float) * act);
        ok = im->dz != NULL;
    }
    if (!ok) {
        xmc_psl_head_free(h);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                       "psl head: out of memory for %lld parameters and %d x %d activations",
                       (long long)h->n_params, cfg->max_batch, cfg->d_out);
    }
    h->W = h->params;
    h->b = h->params + dout * din;
    h->gW = h->grads;
    h->gb = h->grads + dout * din;
    *out = h;
    return XMC_OK;
}

int xmc_psl_head_create(const xmc_psl_head_config *cfg, xmc_psl_head **out, xmc_error *err)
{
    int rc = head_new(cfg, out, err);
    if (rc)
        return rc;
    xmc_psl_head *h = *out;
    const int din = cfg->d_in, dout = cfg->d_out;
    if (cfg->identity_init) {
        for (int r = 0; r < dout; r++)
            h->W[(size_t)r * din + r] = 1.0f;
    } else {
        const float std = 1.0f / sqrtf((float)din);
#pragma omp parallel for schedule(static) if ((int64_t)dout * din > 65536)
        for (int r = 0; r < dout; r++) {
            xmc_rng g;
            xmc_rng_seed(&g, cfg->seed, 0x68656164ULL + (uint64_t)r); /* "head" stream */
            for (int c = 0; c < din; c++)
                h->W[(size_t)r * din + c] = std * xmc_rng_normal(&g);
        }
    }
    return XMC_OK;
}

size_t xmc_psl_head_bytes(const xmc_psl_head *h)
{
    if (!h)
        return 0;
    size_t act = (size_t)h->cfg.max_batch * (size_t)h->cfg.d_out * sizeof(float);
    size_t per_slot = act * (h->cfg.kind == XMC_PSL_HEAD_DE ? 3 : 1) +
                      (h->cfg.kind == XMC_PSL_HEAD_DE ? (size_t)h->cfg.max_batch * 4 : 0);
    return sizeof *h + sizeof(head_impl) + (size_t)h->n_params * 4 * sizeof(float) +
           per_slot * (size_t)h->cfg.slots + act;
}

void xmc_psl_head_zero_grad(xmc_psl_head *h)
{
    memset(h->grads, 0, sizeof(float) * (size_t)h->n_params);
}

int xmc_psl_head_forward(xmc_psl_head *h, int slot, const float *H, int B, int train,
                         uint64_t step, float *Y, xmc_error *err)
{
    const xmc_psl_head_config *cfg = &h->cfg;
    if (slot < 0 || slot >= cfg->slots)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl head: slot %d outside [0, %d)", slot,
                       cfg->slots);
    if (B < 0 || (train && B > cfg->max_batch))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl head: batch of %d rows, max_batch %d", B,
                       cfg->max_batch);
    head_impl *im = h->impl;
    head_cache *c = &im->slot[slot];
    if (train)
        c->B = 0; /* an inference forward leaves the slot's training cache alone */
    if (B == 0)
        return XMC_OK;
    const int din = cfg->d_in, dout = cfg->d_out;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, dout, din, 1.0f, H, din, h->W, din,
                0.0f, Y, dout);
    const int de = cfg->kind == XMC_PSL_HEAD_DE;
    const float p = train ? cfg->dropout : 0.0f;
    const float keep_scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if ((int64_t)B * dout > 32768)
    for (int r = 0; r < B; r++) {
        float *y = Y + (size_t)r * dout;
        float *mask = train ? c->mask + (size_t)r * dout : NULL;
        xmc_rng g;
        if (p > 0.0f)
            xmc_rng_seed(&g, cfg->seed,
                         ((step * XMC_PSL_HEAD_SLOTS + (uint64_t)slot) << 24) ^ (uint64_t)r);
        for (int k = 0; k < dout; k++) {
            float z = y[k] + h->b[k];
            float a = de ? tanhf(z) : z;
            if (de && train)
                c->a[(size_t)r * dout + k] = a;
            float mk = 1.0f;
            if (p > 0.0f)
                mk = xmc_rng_uniform(&g) < p ? 0.0f : keep_scale;
            if (mask)
                mask[k] = mk;
            y[k] = a * mk;
        }
        if (de) {
            double ss = 0;
            for (int k = 0; k < dout; k++)
                ss += (double)y[k] * y[k];
            float n = (float)sqrt(ss);
            float inv = 1.0f / (n > PSL_NORM_EPS ? n : PSL_NORM_EPS);
            for (int k = 0; k < dout; k++)
                y[k] *= inv;
            if (train) {
                c->nrm[r] = n;
                memcpy(c->y + (size_t)r * dout, y, sizeof(float) * (size_t)dout);
            }
        }
    }
    if (train)
        c->B = B;
    return XMC_OK;
}

int xmc_psl_head_backward(xmc_psl_head *h, int slot, const float *H, const float *dY, int B,
                          float *dH, int accumulate, xmc_error *err)
{
    const xmc_psl_head_config *cfg = &h->cfg;
    if (slot < 0 || slot >= cfg->slots)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl head: slot %d outside [0, %d)", slot,
                       cfg->slots);
    head_impl *im = h->impl;
    head_cache *c = &im->slot[slot];
    if (B == 0)
        return XMC_OK;
    if (c->B != B)
        return XMC_ERR(err, XMC_ESTATE, NULL, 0,
                       "psl head: backward of %d rows, the last train forward of slot %d had %d",
                       B, slot, c->B);
    const int din = cfg->d_in, dout = cfg->d_out;
    const int de = cfg->kind == XMC_PSL_HEAD_DE;
    float *dz = im->dz;
#pragma omp parallel for schedule(static) if ((int64_t)B * dout > 32768)
    for (int r = 0; r < B; r++) {
        const float *dy = dY + (size_t)r * dout;
        const float *mask = c->mask + (size_t)r * dout;
        float *g = dz + (size_t)r * dout;
        if (de) {
            /* y = u / |u|: du = (dy - y (y.dy)) / |u| (eps-clamped: du = dy / eps) */
            const float *y = c->y + (size_t)r * dout;
            const float *a = c->a + (size_t)r * dout;
            float n = c->nrm[r];
            double yd = 0;
            if (n > PSL_NORM_EPS)
                for (int k = 0; k < dout; k++)
                    yd += (double)y[k] * dy[k];
            float inv = 1.0f / (n > PSL_NORM_EPS ? n : PSL_NORM_EPS);
            for (int k = 0; k < dout; k++) {
                float du = (dy[k] - y[k] * (float)yd) * inv;
                g[k] = du * mask[k] * (1.0f - a[k] * a[k]);
            }
        } else {
            for (int k = 0; k < dout; k++)
                g[k] = dy[k] * mask[k];
        }
    }
    /* dW += dZ^T H, db += Σ_r dZ_r, dH (+)= dZ W */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dout, din, B, 1.0f, dz, dout, H, din,
                1.0f, h->gW, din);
    for (int r = 0; r < B; r++)
        for (int k = 0; k < dout; k++)
            h->gb[k] += dz[(size_t)r * dout + k];
    if (dH)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, din, dout, 1.0f, dz, dout, h->W,
                    din, accumulate ? 1.0f : 0.0f, dH, din);
    return XMC_OK;
}

void xmc_psl_head_step(xmc_psl_head *h, float lr, float beta1, float beta2, float eps,
                       float weight_decay, int64_t step)
{
    xmc_adam_hparams hp = {lr, beta1, beta2, eps, weight_decay, step};
    int64_t nw = (int64_t)h->cfg.d_out * h->cfg.d_in;
    xmc_adamw_update(h->W, h->gW, h->m, h->v, nw, &hp, 1);
    xmc_adamw_update(h->b, h->gb, h->m + nw, h->v + nw, h->cfg.d_out, &hp, 0);
}

/* Serialised form: magic, version, kind, d_in, d_out, dropout, slots, seed,
 * params, m, v, CRC-32 of everything before it. */
typedef struct head_hdr {
    uint32_t magic, version;
    int32_t kind, d_in, d_out, slots;
    float dropout;
    uint32_t pad;
    uint64_t seed;
} head_hdr;

static int put(FILE *f, uint32_t *crc, const void *p, size_t n)
{
    *crc = xmc_crc32(*crc, p, n);
    return fwrite(p, 1, n, f) == n;
}

static int get(FILE *f, uint32_t *crc, void *p, size_t n)
{
    if (fread(p, 1, n, f) != n)
        return 0;
    *crc = xmc_crc32(*crc, p, n);
    return 1;
}

int xmc_psl_head_save(const xmc_psl_head *h, FILE *f, const char *path, xmc_error *err)
{
    head_hdr hd = {PSL_HEAD_MAGIC, PSL_HEAD_VERSION, h->cfg.kind, h->cfg.d_in, h->cfg.d_out,
                   h->cfg.slots, h->cfg.dropout, 0, h->cfg.seed};
    uint32_t crc = 0;
    size_t n = sizeof(float) * (size_t)h->n_params;
    int ok = put(f, &crc, &hd, sizeof hd) && put(f, &crc, h->params, n) &&
             put(f, &crc, h->m, n) && put(f, &crc, h->v, n);
    uint32_t c = crc;
    ok = ok && fwrite(&c, sizeof c, 1, f) == 1;
    if (!ok)
        return XMC_ERR(err, XMC_EIO, path, 0, "psl head: write failed");
    return XMC_OK;
}

int xmc_psl_head_load(FILE *f, const char *path, int max_batch, xmc_psl_head **out,
                      xmc_error *err)
{
    *out = NULL;
    head_hdr hd;
    uint32_t crc = 0;
    if (!get(f, &crc, &hd, sizeof hd))
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "psl head: truncated header");
    if (hd.magic != PSL_HEAD_MAGIC || hd.version != PSL_HEAD_VERSION)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0,
                       "psl head: expected magic %08x version %u, got %08x version %u",
                       PSL_HEAD_MAGIC, PSL_HEAD_VERSION, hd.magic, hd.version);
    xmc_psl_head_config cfg;
    xmc_psl_head_config_default(&cfg, hd.kind, hd.d_in, hd.d_out);
    cfg.dropout = hd.dropout;
    cfg.slots = hd.slots;
    cfg.seed = hd.seed;
    cfg.max_batch = max_batch;
    xmc_psl_head *h;
    int rc = head_new(&cfg, &h, err);
    if (rc) {
        if (rc == XMC_EINVAL && err)
            err->code = XMC_ECORRUPT;
        return rc == XMC_EINVAL ? XMC_ECORRUPT : rc;
    }
    size_t n = sizeof(float) * (size_t)h->n_params;
    uint32_t want;
    int ok = get(f, &crc, h->params, n) && get(f, &crc, h->m, n) && get(f, &crc, h->v, n) &&
             fread(&want, sizeof want, 1, f) == 1;
    if (!ok || want != crc) {
        xmc_psl_head_free(h);
        return XMC_ERR(err, XMC_ECORRUPT, path, 0,
                       ok ? "psl head: checksum mismatch" : "psl head: truncated parameters");
    }
    *out = h;
    return XMC_OK;
}

/* ------------------------------------------------------------- Ψ */

void xmc_psl_table_free(xmc_psl_table *t)
{
    if (!t)
        return;
    xmc_free(t->w);
    xmc_free(t->m);
    xmc_free(t->v);
    xmc_free(t);
}

int xmc_psl_table_create(int64_t L, int d, int opt, float init_std, uint64_t seed,
                         xmc_psl_table **out, xmc_error *err)
{
    *out = NULL;
    if (L < 1 || L > INT32_MAX || d < 1 || d > 65536)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "psl table: shape must be [1, 2^31) x [1, 65536], got %lld x %d",
                       (long long)L, d);
    if (opt != XMC_PSL_TABLE_SGDM && opt != XMC_PSL_TABLE_ADAM)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl table: unknown optimizer %d", opt);
    size_t n;
    if (!xmc_mul_ok((size_t)L, (size_t)d, &n))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl table: %lld x %d overflows", (long long)L,
                       d);
    xmc_psl_table *t = xmc_calloc(1, sizeof *t);
    if (!t)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "psl table: out of memory");
    t->L = L;
    t->d = d;
    t->opt = opt;
    t->w = xmc_malloc(sizeof(float) * n);
    t->m = xmc_calloc(n, sizeof(float));
    if (opt == XMC_PSL_TABLE_ADAM)
        t->v = xmc_calloc(n, sizeof(float));
    if (!t->w || !t->m || (opt == XMC_PSL_TABLE_ADAM && !t->v)) {
        xmc_psl_table_free(t);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                       "psl table: out of memory for %lld x %d weights and optimizer state",
                       (long long)L, d);
    }
    const float std = init_std > 0.0f ? init_std : 1.0f / sqrtf((float)d);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t r = 0; r < L; r++) {
        xmc_rng g;
        xmc_rng_seed(&g, seed, 0x707369ULL + (uint64_t)r); /* "psi" stream per row */
        for (int k = 0; k < d; k++)
            t->w[(size_t)r * d + k] = std * xmc_rng_normal(&g);
    }
    *out = t;
    return XMC_OK;
}

size_t xmc_psl_table_bytes(const xmc_psl_table *t)
{
    if (!t)
        return 0;
    size_t n = (size_t)t->L * (size_t)t->d * sizeof(float);
    return sizeof *t + n * (t->v ? 3 : 2);
}

static int check_ids(const xmc_psl_table *t, const int32_t *ids, int n, xmc_error *err)
{
    if (n < 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl table: %d rows", n);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->L)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl table: row %d outside [0, %lld)",
                           ids[i], (long long)t->L);
    return XMC_OK;
}

int xmc_psl_table_gather(const xmc_psl_table *t, const int32_t *ids, int n, float *out,
                         xmc_error *err)
{
    int rc = check_ids(t, ids, n, err);
    if (rc)
        return rc;
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * t->d, t->w + (size_t)ids[i] * t->d, sizeof(float) * (size_t)t->d);
    return XMC_OK;
}

int xmc_psl_table_update(xmc_psl_table *t, const int32_t *ids, int n, const float *g, float lr,
                         float momentum, float beta1, float beta2, float eps,
                         float weight_decay, int64_t step, xmc_error *err)
{
    int rc = check_ids(t, ids, n, err);
    if (rc)
        return rc;
    if (t->opt == XMC_PSL_TABLE_ADAM && step < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl table: Adam step must be >= 1, got %lld",
                       (long long)step);
    const int d = t->d;
    const float c1 = 1.0f - powf(beta1, (float)step), c2 = 1.0f - powf(beta2, (float)step);
    /* rows are unique (a pool's labels), so rows update independently */
#pragma omp parallel for schedule(static) if ((int64_t)n * d > 65536)
    for (int i = 0; i < n; i++) {
        float *w = t->w + (size_t)ids[i] * d;
        float *m = t->m + (size_t)ids[i] * d;
        const float *gi = g + (size_t)i * d;
        if (t->opt == XMC_PSL_TABLE_SGDM) {
            for (int k = 0; k < d; k++) {
                float mk = momentum * m[k] + gi[k] + weight_decay * w[k];
                m[k] = mk;
                w[k] -= lr * mk;
            }
        } else {
            float *v = t->v + (size_t)ids[i] * d;
            const float shrink = 1.0f - lr * weight_decay;
            for (int k = 0; k < d; k++) {
                float mk = beta1 * m[k] + (1.0f - beta1) * gi[k];
                float vk = beta2 * v[k] + (1.0f - beta2) * gi[k] * gi[k];
                m[k] = mk;
                v[k] = vk;
                w[k] = w[k] * shrink - lr * (mk / c1) / (sqrtf(vk / c2) + eps);
            }
        }
    }
    return XMC_OK;
}

#define PSL_TABLE_MAGIC 0x49535350u /* "PSSI" */
#define PSL_TABLE_VERSION 1u

typedef struct table_hdr {
    uint32_t magic, version;
    int64_t L;
    int32_t d, opt;
} table_hdr;

int xmc_psl_table_save(const xmc_psl_table *t, FILE *f, const char *path, xmc_error *err)
{
    table_hdr hd = {PSL_TABLE_MAGIC, PSL_TABLE_VERSION, t->L, t->d, t->opt};
    uint32_t crc = 0;
    size_t n = sizeof(float) * (size_t)t->L * (size_t)t->d;
    int ok = put(f, &crc, &hd, sizeof hd) && put(f, &crc, t->w, n) && put(f, &crc, t->m, n) &&
             (!t->v || put(f, &crc, t->v, n));
    uint32_t c = crc;
    if (!ok || fwrite(&c, sizeof c, 1, f) != 1)
        return XMC_ERR(err, XMC_EIO, path, 0, "psl table: write failed");
    return XMC_OK;
}

int xmc_psl_table_load(FILE *f, const char *path, xmc_psl_table **out, xmc_error *err)
{
    *out = NULL;
    table_hdr hd;
    uint32_t crc = 0;
    if (!get(f, &crc, &hd, sizeof hd))
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "psl table: truncated header");
    if (hd.magic != PSL_TABLE_MAGIC || hd.version != PSL_TABLE_VERSION || hd.L < 1 ||
        hd.L > INT32_MAX || hd.d < 1 || hd.d > 65536 ||
        (hd.opt != XMC_PSL_TABLE_SGDM && hd.opt != XMC_PSL_TABLE_ADAM))
        return XMC_ERR(err, XMC_ECORRUPT, path, 0,
                       "psl table: bad header (magic %08x version %u, %lld x %d, opt %d)",
                       hd.magic, hd.version, (long long)hd.L, hd.d, hd.opt);
    xmc_psl_table *t;
    int rc = xmc_psl_table_create(hd.L, hd.d, hd.opt, 1.0f, 0, &t, err);
    if (rc)
        return rc;
    size_t n = sizeof(float) * (size_t)t->L * (size_t)t->d;
    uint32_t want;
    int ok = get(f, &crc, t->w, n) && get(f, &crc, t->m, n) && (!t->v || get(f, &crc, t->v, n)) &&
             fread(&want, sizeof want, 1, f) == 1;
    if (!ok || want != crc) {
        xmc_psl_table_free(t);
        return XMC_ERR(err, XMC_ECORRUPT, path, 0,
                       ok ? "psl table: checksum mismatch" : "psl table: truncated values");
    }
    *out = t;
    return XMC_OK;
}
