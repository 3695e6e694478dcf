/* AdamW over the encoder's flat buffer, lazy (sparse-row) Adam or SGD with
 * momentum for its embedding tables, and the warm-up + cosine schedule. Semantics are in
 * include/xmc/optim.h. Memory: m and v, one float each per parameter, in the
 * parameters' layout (no v for SGD-m tables). Threading: OpenMP static split over elements / touched
 * rows; every element's update is independent, so results do not depend on
 * the thread count.
 */
#include <math.h>
#include <string.h>

#include "xmc/optim.h"

void xmc_adamw_update(float *w, const float *g, float *m, float *v, int64_t n,
                      const xmc_adam_hparams *hp, int decay)
{
    const float b1 = hp->beta1, b2 = hp->beta2, eps = hp->eps, lr = hp->lr;
    const float c1 = 1.0f - powf(b1, (float)hp->step);
    const float c2 = 1.0f - powf(b2, (float)hp->step);
    const float shrink = decay ? 1.0f - lr * hp->weight_decay : 1.0f;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = w[i] * shrink - lr * (mi / c1) / (sqrtf(vi / c2) + eps);
    }
}

void xmc_sparse_adam_step(xmc_sparse_table *t, float *m, float *v, const xmc_adam_hparams *hp)
{
    const int64_t h = t->cols;
    const float b1 = hp->beta1, b2 = hp->beta2, eps = hp->eps, lr = hp->lr;
    const float c1 = 1.0f - powf(b1, (float)hp->step);
    const float c2 = 1.0f - powf(b2, (float)hp->step);
    const float shrink = 1.0f - lr * hp->weight_decay;
#pragma omp parallel for schedule(static) if (t->n_touched * h > 65536)
    for (int64_t q = 0; q < t->n_touched; q++) {
        size_t r = (size_t)t->touched[q];
        const float *g = t->grad + (size_t)q * (size_t)h;
        float *w = t->w + r * (size_t)h, *mr = m + r * (size_t)h, *vr = v + r * (size_t)h;
        for (int64_t c = 0; c < h; c++) {
            float mi = b1 * mr[c] + (1.0f - b1) * g[c];
            float vi = b2 * vr[c] + (1.0f - b2) * g[c] * g[c];
            mr[c] = mi;
            vr[c] = vi;
            w[c] = w[c] * shrink - lr * (mi / c1) / (sqrtf(vi / c2) + eps);
        }
    }
}

void xmc_sparse_sgdm_step(xmc_sparse_table *t, float *m, float lr, float mu, float wd)
{
    const int64_t h = t->cols;
    const float shrink = 1.0f - lr * wd;
#pragma omp parallel for schedule(static) if (t->n_touched * h > 65536)
    for (int64_t q = 0; q < t->n_touched; q++) {
        size_t r = (size_t)t->touched[q];
        const float *g = t->grad + (size_t)q * (size_t)h;
        float *w = t->w + r * (size_t)h, *mr = m + r * (size_t)h;
        for (int64_t c = 0; c < h; c++) {
            mr[c] = mu * mr[c] + g[c];
            w[c] = w[c] * shrink - lr * mr[c];
        }
    }
}

int xmc_enc_optim_create(const xmc_encoder *e, xmc_table_opt topt, float mu,
                         xmc_enc_optim **out, xmc_error *err)
{
    *out = NULL;
    xmc_enc_optim *o = xmc_calloc(1, sizeof *o);
    if (!o)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (optimizer)");
    o->n_params = e->n_params;
    o->n_tables = e->n_tables;
    o->table_opt = topt == XMC_TABLE_SGDM ? XMC_TABLE_SGDM : XMC_TABLE_ADAM;
    o->table_momentum = mu;
    size_t nb = (size_t)(e->n_params > 0 ? e->n_params : 1) * sizeof(float);
    o->m = xmc_malloc_aligned(nb);
    o->v = xmc_malloc_aligned(nb);
    o->tm = xmc_calloc((size_t)(e->n_tables + 1), sizeof(float *));
    o->tv = xmc_calloc((size_t)(e->n_tables + 1), sizeof(float *));
    o->table_n = xmc_calloc((size_t)(e->n_tables + 1), sizeof(int64_t));
    if (!o->m || !o->v || !o->tm || !o->tv || !o->table_n)
        goto oom;
    memset(o->m, 0, nb);
    memset(o->v, 0, nb);
    for (int i = 0; i < e->n_tables; i++) {
        o->table_n[i] = e->tables[i].rows * e->tables[i].cols;
        size_t n = (size_t)o->table_n[i] * sizeof(float);
        o->tm[i] = xmc_malloc_aligned(n);
        if (!o->tm[i])
            goto oom;
        memset(o->tm[i], 0, n);
        if (o->table_opt == XMC_TABLE_SGDM)
            continue;
        if (!(o->tv[i] = xmc_malloc_aligned(n)))
            goto oom;
        memset(o->tv[i], 0, n);
    }
    *out = o;
    return XMC_OK;
oom:
    xmc_enc_optim_free(o);
    return XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                   "out of memory for optimizer state (%lld dense parameters, %d tables)",
                   (long long)e->n_params, e->n_tables);
}

void xmc_enc_optim_free(xmc_enc_optim *o)
{
    if (!o)
        return;
    xmc_free_aligned(o->m);
    xmc_free_aligned(o->v);
    for (int i = 0; o->tm && i < o->n_tables; i++) {
        xmc_free_aligned(o->tm[i]);
        xmc_free_aligned(o->tv[i]);
    }
    xmc_free(o->tm);
    xmc_free(o->tv);
    xmc_free(o->table_n);
    xmc_free(o);
}

/* m and v per dense parameter; m, and v unless SGD-m, per table parameter. */
static size_t state_bytes(int64_t n_dense, int64_t n_table, xmc_table_opt topt)
{
    const size_t per = topt == XMC_TABLE_SGDM ? 1 : 2;
    return (2 * (size_t)n_dense + per * (size_t)n_table) * sizeof(float);
}

size_t xmc_enc_optim_bytes(const xmc_enc_optim *o)
{
    int64_t nt = 0;
    for (int i = 0; i < o->n_tables; i++)
        nt += o->table_n[i];
    return state_bytes(o->n_params, nt, o->table_opt);
}

size_t xmc_enc_optim_plan_bytes(const xmc_encoder *e, xmc_table_opt topt)
{
    int64_t nt = 0;
    for (int i = 0; i < e->n_tables; i++)
        nt += e->tables[i].rows * e->tables[i].cols;
    return state_bytes(e->n_params, nt, topt);
}

void xmc_enc_optim_step(xmc_enc_optim *o, xmc_encoder *e, const xmc_adam_hparams *hp_dense,
                        const xmc_adam_hparams *hp_table)
{
    for (int i = 0; i < e->n_tensors; i++) {
        const xmc_tensor_info *t = &e->tensors[i];
        int64_t off = t->offset, n = t->rows * t->cols;
        xmc_adamw_update(e->params + off, e->grads + off, o->m + off, o->v + off, n, hp_dense,
                         !t->no_decay);
    }
    for (int i = 0; i < e->n_tables; i++) {
        if (o->table_opt == XMC_TABLE_SGDM)
            xmc_sparse_sgdm_step(&e->tables[i], o->tm[i], hp_table->lr, o->table_momentum,
                                 hp_table->weight_decay);
        else
            xmc_sparse_adam_step(&e->tables[i], o->tm[i], o->tv[i], hp_table);
    }
}

#define OPT_MAGIC "XMCOPT\0\1"
#define OPT_VERSION 2u /* 2: the table optimizer after the table count */

static int put(FILE *f, uint32_t *crc, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    *crc = xmc_crc32(*crc, p, n);
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int get(FILE *f, uint32_t *crc, void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (fread(p, 1, n, f) != n)
        return -1;
    *crc = xmc_crc32(*crc, p, n);
    return 0;
}

int xmc_enc_optim_save(const xmc_enc_optim *o, FILE *f, const char *path, xmc_error *err)
{
    uint32_t crc = 0, ver = OPT_VERSION;
    int32_t nt = o->n_tables, topt = o->table_opt;
    int bad = fwrite(OPT_MAGIC, 1, 8, f) != 8;
    bad |= put(f, &crc, &ver, 4) | put(f, &crc, &o->n_params, 8) | put(f, &crc, &nt, 4) |
           put(f, &crc, &topt, 4);
    for (int i = 0; i < o->n_tables; i++)
        bad |= put(f, &crc, &o->table_n[i], 8);
    bad |= put(f, &crc, o->m, (size_t)o->n_params * 4) |
           put(f, &crc, o->v, (size_t)o->n_params * 4);
    for (int i = 0; i < o->n_tables; i++)
        bad |= put(f, &crc, o->tm[i], (size_t)o->table_n[i] * 4) |
               (o->tv[i] ? put(f, &crc, o->tv[i], (size_t)o->table_n[i] * 4) : 0);
    if (!bad)
        bad = fwrite(&crc, 4, 1, f) != 1;
    if (bad)
        return XMC_ERR(err, XMC_EIO, path, 0, "write failed (disk full?)");
    return XMC_OK;
}

int xmc_enc_optim_load(xmc_enc_optim *o, FILE *f, const char *path, xmc_error *err)
{
    char magic[8];
    uint32_t crc = 0, ver = 0, fcrc = 0;
    int64_t np = 0;
    int32_t nt = 0, topt = XMC_TABLE_ADAM;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, OPT_MAGIC, 8) != 0)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "not an xmc optimizer state (bad magic)");
    if (get(f, &crc, &ver, 4) || ver < 1 || ver > OPT_VERSION)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0,
                       "optimizer state version %u, expected 1 to %u", ver, OPT_VERSION);
    if (get(f, &crc, &np, 8) || get(f, &crc, &nt, 4) || np != o->n_params ||
        nt != o->n_tables)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0,
                       "optimizer state for %lld parameters / %d tables, model has %lld / %d",
                       (long long)np, nt, (long long)o->n_params, o->n_tables);
    if (ver >= 2 && get(f, &crc, &topt, 4))
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "optimizer state truncated");
    if (topt != (int32_t)o->table_opt)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0,
                       "optimizer state of %s tables, model trains them with %s",
                       topt == XMC_TABLE_SGDM ? "sgdm" : "adam",
                       o->table_opt == XMC_TABLE_SGDM ? "sgdm" : "adam");
    for (int i = 0; i < o->n_tables; i++) {
        int64_t tn = 0;
        if (get(f, &crc, &tn, 8) || tn != o->table_n[i])
            return XMC_ERR(err, XMC_ECORRUPT, path, 0, "optimizer table %d: size mismatch", i);
    }
    int bad = get(f, &crc, o->m, (size_t)np * 4) | get(f, &crc, o->v, (size_t)np * 4);
    for (int i = 0; i < o->n_tables && !bad; i++)
        bad = get(f, &crc, o->tm[i], (size_t)o->table_n[i] * 4) |
              (o->tv[i] ? get(f, &crc, o->tv[i], (size_t)o->table_n[i] * 4) : 0);
    if (bad || fread(&fcrc, 4, 1, f) != 1)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "truncated optimizer state");
    if (fcrc != crc)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "optimizer state checksum mismatch");
    return XMC_OK;
}

float xmc_schedule_lr(const xmc_schedule *s, int64_t t)
{
    if (t < 1)
        t = 1;
    if (s->warmup > 0 && t <= s->warmup)
        return s->lr * (float)t / (float)s->warmup;
    int64_t span = s->total - s->warmup;
    if (span <= 0)
        return s->lr;
    double x = (double)(t - s->warmup) / (double)span;
    if (x > 1.0)
        x = 1.0;
    double cosv = 0.5 * (1.0 + cos(3.14159265358979323846 * x));
    return (float)((double)s->lr * ((double)s->min_ratio + (1.0 - (double)s->min_ratio) * cosv));
}
