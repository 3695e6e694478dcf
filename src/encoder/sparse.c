/* The "sparse" encoder: a shallow MLP over sparse (tf-idf / bag-of-words)
 * features, the CPU counterpart of Renee's encoder for feature data.
 *
 *   x   = row of X, L2-normalised              (prepare, once)
 *   Z1  = x W1 + b1          W1: F x h table, sparse-row updates
 *   A1  = act(Z1)
 *   [Z2 = A1 W2 + b2, A2 = act(Z2)]            layers == 2, W2: h x h dense
 *   H   = last A                               (framework: dropout, bottleneck)
 *
 * Forward gathers the rows of W1 of the batch's features (O(nnz h)); backward
 * scatters dZ1 into the touched rows only, so a step costs O(nnz h + B h^2)
 * whatever F is. Memory: W1 (F x h) + its touched-row gradient buffer, plus
 * Z1, A1 (and Z2, dA1) for max_batch rows, and an F-entry slot map.
 * Threading: gather parallel over rows, scatter over column blocks, GEMMs in
 * OpenBLAS; results do not depend on the thread count.
 */
#include <string.h>

#include <cblas.h>

#include "internal.h"

typedef struct sparse_impl {
    int t_w1;          /* table index of W1 */
    int d_b1, d_w2, d_b2; /* dense tensor indices (-1 absent) */
    float *Z1, *A1, *Z2, *dA1; /* (max_batch, h) */
    int32_t *slot;     /* (F) -1 or the touched position */
    const xmc_enc_data *last_d;
    const int64_t *last_rows;
    int last_B;
} sparse_impl;

static void sparse_destroy(xmc_encoder *e)
{
    sparse_impl *s = e->impl;
    if (!s)
        return;
    xmc_free_aligned(s->Z1);
    xmc_free_aligned(s->A1);
    xmc_free_aligned(s->Z2);
    xmc_free_aligned(s->dA1);
    xmc_free(s->slot);
    xmc_free(s);
    e->impl = NULL;
}

static int sparse_declare(xmc_encoder *e, xmc_error *err)
{
    const xmc_encoder_config *c = &e->cfg;
    if (c->n_inputs < 1 || c->n_inputs > INT32_MAX)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "sparse encoder: %lld input features, expected [1, 2^31)",
                       (long long)c->n_inputs);
    sparse_impl *s = xmc_calloc(1, sizeof *s);
    if (!s)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (sparse encoder)");
    e->impl = s;
    s->d_w2 = s->d_b2 = -1;
    const int h = c->hidden;
    /* The touched-row capacity is fixed by prepare (max_batch x longest row). */
    if ((s->t_w1 = xmc_encoder_add_table(e, "sparse.W1", c->n_inputs, h, 1, err)) < 0 ||
        (s->d_b1 = xmc_encoder_add_dense(e, "sparse.b1", 1, h, 1, err)) < 0)
        return err ? err->code : XMC_ENOMEM;
    if (c->layers == 2 && ((s->d_w2 = xmc_encoder_add_dense(e, "sparse.W2", h, h, 0, err)) < 0 ||
                           (s->d_b2 = xmc_encoder_add_dense(e, "sparse.b2", 1, h, 1, err)) < 0))
        return err ? err->code : XMC_ENOMEM;
    size_t nh = (size_t)c->max_batch * (size_t)h * sizeof(float);
    s->Z1 = xmc_malloc_aligned(nh);
    s->A1 = xmc_malloc_aligned(nh);
    if (c->layers == 2) {
        s->Z2 = xmc_malloc_aligned(nh);
        s->dA1 = xmc_malloc_aligned(nh);
    }
    s->slot = xmc_malloc((size_t)c->n_inputs * sizeof(int32_t));
    if (!s->Z1 || !s->A1 || !s->slot || (c->layers == 2 && (!s->Z2 || !s->dA1)))
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (sparse encoder scratch)");
    memset(s->slot, 0xff, (size_t)c->n_inputs * sizeof(int32_t));
    e->base_dim = h;
    return XMC_OK;
}

static int sparse_init(xmc_encoder *e, int fresh, xmc_error *err)
{
    (void)err;
    if (!fresh)
        return XMC_OK;
    sparse_impl *s = e->impl;
    const int h = e->cfg.hidden;
    /* Rows of X have unit norm, so Z1 has per-unit std equal to W1's: 1/sqrt(h)
     * keeps ||Z1|| ~ 1 whatever F is (a fan-in rule would shrink it by
     * sqrt(F) for sparse inputs). W2 uses He-style 1/sqrt(h) too. */
    float std = e->cfg.init_std > 0 ? e->cfg.init_std : 1.0f / sqrtf((float)h);
    xmc_sparse_table *t = &e->tables[s->t_w1];
    enc_init_normal(t->w, t->rows * t->cols, std, e->cfg.seed, 101);
    if (s->d_w2 >= 0)
        enc_init_normal(xmc_encoder_dense(e, s->d_w2), (int64_t)h * h,
                        sqrtf(2.0f / (float)h), e->cfg.seed, 102);
    return XMC_OK;
}

static int sparse_prepare(const xmc_encoder *e, const xmc_dataset *ds, xmc_enc_data **out,
                          xmc_error *err)
{
    if (!ds->X)
        return XMC_ERR(err, XMC_EINVAL, ds->spec, 0,
                       "the sparse encoder needs features, and this dataset has none "
                       "(use --encoder bag for texts)");
    xmc_enc_data *d = xmc_calloc(1, sizeof *d);
    if (!d)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
    const xmc_csr *X = ds->X;
    const int64_t F = e->cfg.n_inputs;
    /* Copy, dropping features the encoder has no row for (test-only ids),
     * then normalise so each point has unit L2 norm. */
    int64_t nnz = 0;
    for (int64_t p = 0; p < xmc_csr_nnz(X); p++)
        nnz += X->indices[p] < F;
    int rc = xmc_csr_create(&d->ids, X->nrows, F, nnz, 1, err);
    if (rc) {
        xmc_free(d);
        return rc;
    }
    int64_t q = 0;
    for (int64_t i = 0; i < X->nrows; i++) {
        for (int64_t p = X->indptr[i]; p < X->indptr[i + 1]; p++) {
            if (X->indices[p] >= F)
                continue;
            d->ids->indices[q] = X->indices[p];
            d->ids->values[q] = X->values ? X->values[p] : 1.0f;
            q++;
        }
        d->ids->indptr[i + 1] = q;
    }
    xmc_csr_normalize_rows(d->ids);
    d->n = X->nrows;
    *out = d;
    return XMC_OK;
}

static int sparse_forward(xmc_encoder *e, const xmc_enc_data *d, const int64_t *rows, int B,
                          int train, float *H, xmc_error *err)
{
    (void)err;
    sparse_impl *s = e->impl;
    const int h = e->cfg.hidden;
    const size_t n = (size_t)B * (size_t)h;
    enc_drop dr = enc_drop_for(e, train);
    enc_gather_rows(&e->tables[s->t_w1], d->ids, rows, B, s->Z1, &dr);
    const float *b1 = xmc_encoder_dense(e, s->d_b1);
    for (int i = 0; i < B; i++)
        for (int c = 0; c < h; c++)
            s->Z1[(size_t)i * h + c] += b1[c];
    if (e->cfg.layers == 1) {
        enc_act_forward(e->cfg.act, s->Z1, H, (int64_t)n);
    } else {
        enc_act_forward(e->cfg.act, s->Z1, s->A1, (int64_t)n);
        const float *b2 = xmc_encoder_dense(e, s->d_b2);
        for (int i = 0; i < B; i++)
            memcpy(s->Z2 + (size_t)i * h, b2, (size_t)h * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, h, h, 1.0f, s->A1, h,
                    xmc_encoder_dense(e, s->d_w2), h, 1.0f, s->Z2, h);
        enc_act_forward(e->cfg.act, s->Z2, H, (int64_t)n);
    }
    if (train) {
        s->last_d = d;
        s->last_rows = rows;
        s->last_B = B;
    }
    return XMC_OK;
}

static int sparse_backward(xmc_encoder *e, float *dH, int B, xmc_error *err)
{
    sparse_impl *s = e->impl;
    if (!s->last_d || s->last_B != B)
        return XMC_ERR(err, XMC_ESTATE, NULL, 0, "sparse encoder: backward without forward");
    const int h = e->cfg.hidden;
    const int64_t n = (int64_t)B * h;
    float *dZ1 = dH;
    if (e->cfg.layers == 2) {
        enc_act_backward(e->cfg.act, s->Z2, dH, n); /* dH is now dZ2 */
        float *db2 = xmc_encoder_dense_grad(e, s->d_b2);
        for (int i = 0; i < B; i++)
            for (int c = 0; c < h; c++)
                db2[c] += dH[(size_t)i * h + c];
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h, h, B, 1.0f, s->A1, h, dH, h,
                    1.0f, xmc_encoder_dense_grad(e, s->d_w2), h);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, h, h, 1.0f, dH, h,
                    xmc_encoder_dense(e, s->d_w2), h, 0.0f, s->dA1, h);
        dZ1 = s->dA1;
    }
    enc_act_backward(e->cfg.act, s->Z1, dZ1, n);
    float *db1 = xmc_encoder_dense_grad(e, s->d_b1);
    for (int i = 0; i < B; i++)
        for (int c = 0; c < h; c++)
            db1[c] += dZ1[(size_t)i * h + c];
    xmc_sparse_table *t = &e->tables[s->t_w1];
    int rc = enc_collect_touched(t, s->last_d->ids, s->last_rows, B, s->slot, err);
    if (rc)
        return rc;
    enc_drop dr = enc_drop_for(e, 1);
    enc_scatter_grad(t, s->last_d->ids, s->last_rows, B, dZ1, s->slot, &dr);
    s->last_d = NULL;
    return XMC_OK;
}

const xmc_encoder_ops xmc_enc_sparse_ops = {
    .kind = "sparse",
    .declare = sparse_declare,
    .init = sparse_init,
    .prepare = sparse_prepare,
    .forward = sparse_forward,
    .backward = sparse_backward,
    .destroy = sparse_destroy,
};
