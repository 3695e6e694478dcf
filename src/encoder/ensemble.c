/* Ensemble merge of encoders (encoder.h, xmc_encoder_create_ensemble): n
 * members of one config side by side in one encoder of n times the width.
 * Which block a tensor goes to follows from its shape in the member and in
 * the wide encoder, so every tensor of the two kinds is covered without a
 * list of names: (r, c) -> (r, c) shared, (r, c) -> (r, n c) column block,
 * (r, c) -> (n r, n c) diagonal block. */
#include <string.h>

#include "internal.h"

/* The wide config: n times the hidden and bottleneck widths. */
static int wide_config(const xmc_encoder_config *member, int n, xmc_encoder_config *c,
                       xmc_error *err)
{
    if (strcmp(member->kind, "sparse") != 0 && strcmp(member->kind, "bag") != 0)
        return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                       "an ensemble merges sparse and bag encoders, whose hidden units are "
                       "independent (not %s)",
                       member->kind);
    if (member->intermediate > 0)
        return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                       "an ensemble cannot merge encoders with an intermediate layer");
    if (n < 1 || member->hidden > XMC_ENC_MAX_HIDDEN / n ||
        member->bottleneck > XMC_ENC_MAX_HIDDEN / n)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "ensemble of %d: width %d x %d exceeds %d", n, n, member->hidden,
                       XMC_ENC_MAX_HIDDEN);
    *c = *member;
    c->hidden *= n;
    c->bottleneck *= n;
    return XMC_OK;
}

int xmc_encoder_create_ensemble(const xmc_encoder_config *member, int n, xmc_encoder **out,
                                xmc_error *err)
{
    *out = NULL;
    xmc_encoder_config c;
    xmc_encoder *e = NULL;
    int rc = wide_config(member, n, &c, err);
    if (rc || (rc = enc_create_unfilled(&c, &e, err)))
        return rc;
    for (int i = 0; i < e->n_tables; i++)
        memset(e->tables[i].w, 0,
               (size_t)e->tables[i].rows * (size_t)e->tables[i].cols * sizeof(float));
    *out = e;
    return XMC_OK;
}

int xmc_encoder_ensemble_bytes(const xmc_encoder_config *member, int n, size_t *out,
                               xmc_error *err)
{
    *out = 0;
    xmc_encoder_config c;
    xmc_encoder *e = NULL;
    int rc = wide_config(member, n, &c, err);
    if (rc || (rc = enc_create_shapes(&c, &e, err)))
        return rc;
    *out = xmc_encoder_bytes(e);
    xmc_encoder_free(e);
    return XMC_OK;
}

/* rows x cols of src (row stride sc) into dst at (r0, c0) (row stride dc). */
static void put_block(float *dst, int64_t dc, int64_t r0, int64_t c0, const float *src,
                      int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++)
        memcpy(dst + (r0 + r) * dc + c0, src + r * cols, (size_t)cols * sizeof(float));
}

int xmc_encoder_set_member(xmc_encoder *e, const xmc_encoder *m, int k, int n, xmc_error *err)
{
    if (k < 0 || k >= n || strcmp(e->cfg.kind, m->cfg.kind) != 0 ||
        e->n_tensors != m->n_tensors || e->n_tables != m->n_tables ||
        e->base_dim != n * m->base_dim || e->dim != n * m->dim ||
        e->cfg.n_inputs != m->cfg.n_inputs)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "ensemble member %d of %d: a %s encoder of width %d does not fit a "
                       "%s encoder of width %d",
                       k, n, m->cfg.kind, m->base_dim, e->cfg.kind, e->base_dim);
    for (int i = 0; i < m->n_tables; i++) {
        const xmc_sparse_table *s = &m->tables[i];
        xmc_sparse_table *d = &e->tables[i];
        if (d->rows != s->rows || d->cols != n * s->cols)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ensemble: table %s is %lld x %lld, "
                           "member %d's %lld x %lld",
                           d->name, (long long)d->rows, (long long)d->cols, k,
                           (long long)s->rows, (long long)s->cols);
        put_block(d->w, d->cols, 0, k * s->cols, s->w, s->rows, s->cols);
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const xmc_tensor_info *s = &m->tensors[i], *d = &e->tensors[i];
        const float *src = xmc_encoder_dense(m, i);
        float *dst = xmc_encoder_dense(e, i);
        size_t bytes = (size_t)(s->rows * s->cols) * sizeof(float);
        if (d->rows == s->rows && d->cols == s->cols) { /* shared */
            if (k == 0)
                memcpy(dst, src, bytes);
            else if (memcmp(dst, src, bytes) != 0)
                return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                               "ensemble: tensor %s differs between member 0 and member %d "
                               "(members must share it: same training data)",
                               s->name, k);
        } else if (d->rows == s->rows && d->cols == n * s->cols) {
            put_block(dst, d->cols, 0, k * s->cols, src, s->rows, s->cols);
        } else if (d->rows == n * s->rows && d->cols == n * s->cols) {
            put_block(dst, d->cols, k * s->rows, k * s->cols, src, s->rows, s->cols);
        } else {
            return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                           "ensemble: tensor %s is %lld x %lld, member %d's %lld x %lld",
                           s->name, (long long)d->rows, (long long)d->cols, k,
                           (long long)s->rows, (long long)s->cols);
        }
    }
    return XMC_OK;
}
