/* Encoder framework: kind registry, the flat parameter buffer (llm.c's
 * "one allocation + struct of pointers", with the name/shape table kept in
 * one place), the shared parts of every encoder (dropout on the embedding,
 * the optional bottleneck P: h -> b without bias, Renee sec. 4, and the
 * optional intermediate layer of SPARTEX, Ullah et al. NeurIPS 2024 sec. 4:
 * A = act(Z Wi^T + bi), Z the bottleneck output or H, Wi d_int x d_in, act
 * ReLU or none), sparse-row gather/scatter helpers, and save/load.
 *
 * Stages: kind -> H (B x h) -> dropout -> [P] -> [Wi, bi, ReLU] -> E.
 * Backward of the intermediate layer: dA = dE .* [A > 0] (ReLU), dbi +=
 * column sums of dA, dWi += dA^T Z, dZ = dA Wi; then the bottleneck's.
 *
 * Memory: params + grads (2 x dense floats, Wi and bi included), tables
 * (rows x cols) plus their touched-row gradient buffers (max_touched x
 * cols), and framework scratch for max_batch rows: H and dH (2 x max_batch
 * x h, with a bottleneck or an intermediate layer), the dropout mask
 * (max_batch x h), the bottleneck output Z and dZ (2 x max_batch x b, only
 * with both stages) and the intermediate output A (max_batch x d_int).
 * Nothing is allocated after prepare.
 *
 * Embedding dropout masks come from one stream per (step, row of the
 * global batch), so they depend only on the seed, the step count and the
 * row: a resumed run draws the same masks, and a rank of a sharded step
 * (batch_row0 = its first row) draws exactly the masks one process draws
 * for those rows.
 */
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "internal.h"

#define MAX_KINDS 16
#define ENC_MAGIC "XMCENC\0\1"
#define ENC_VERSION 3u /* 3: intermediate layer; version 2 files still load */

static const xmc_encoder_ops *kinds[MAX_KINDS] = {&xmc_enc_sparse_ops, &xmc_enc_bag_ops};
static int n_kinds = 2;

typedef struct fw_scratch {
    float *H;    /* (max_batch, base_dim) encoder output before bottleneck */
    float *dH;   /* (max_batch, base_dim) */
    float *mask; /* (max_batch, base_dim) dropout scale 0 or 1/(1-p) */
    float *Z;    /* (max_batch, bottleneck) bottleneck output feeding the
                  * intermediate layer (both stages only) */
    float *dZ;   /* (max_batch, bottleneck) */
    float *A;    /* (max_batch, intermediate) intermediate output, kept for
                  * the ReLU mask: the caller may change E before backward */
    int last_B;
    int has_mask;
} fw_scratch;

int xmc_encoder_register(const xmc_encoder_ops *ops, xmc_error *err)
{
    if (!ops || !ops->kind || !ops->declare || !ops->init || !ops->prepare || !ops->forward ||
        !ops->backward)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "encoder kind: incomplete ops table");
    for (int i = 0; i < n_kinds; i++)
        if (!strcmp(kinds[i]->kind, ops->kind)) {
            kinds[i] = ops;
            return XMC_OK;
        }
    if (n_kinds >= MAX_KINDS)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "too many encoder kinds (max %d)", MAX_KINDS);
    kinds[n_kinds++] = ops;
    return XMC_OK;
}

const xmc_encoder_ops *xmc_encoder_find(const char *kind)
{
    for (int i = 0; i < n_kinds; i++)
        if (!strcmp(kinds[i]->kind, kind))
            return kinds[i];
    return NULL;
}

void xmc_encoder_config_default(xmc_encoder_config *c, const char *kind)
{
    memset(c, 0, sizeof *c);
    snprintf(c->kind, sizeof c->kind, "%s", kind ? kind : "sparse");
    c->n_inputs = !strcmp(c->kind, "bag") ? XMC_ENC_DEFAULT_BUCKETS : 0;
    c->hidden = XMC_ENC_DEFAULT_HIDDEN;
    c->layers = 1;
    c->act = XMC_ACT_RELU;
    c->intermediate_relu = 1;
    c->dropout = XMC_ENC_DEFAULT_DROPOUT;
    c->max_batch = 256;
    c->seed = 1;
}

int xmc_encoder_add_dense(xmc_encoder *e, const char *name, int64_t rows, int64_t cols,
                          int no_decay, xmc_error *err)
{
    size_t n;
    if (rows <= 0 || cols <= 0 || !xmc_mul_ok((size_t)rows, (size_t)cols, &n))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "tensor %s: bad shape %lld x %lld", name,
                       (long long)rows, (long long)cols),
               -1;
    if (e->n_tensors == e->cap_tensors) {
        int cap = e->cap_tensors ? 2 * e->cap_tensors : 8;
        void *p = xmc_realloc(e->tensors, (size_t)cap * sizeof *e->tensors);
        if (!p)
            return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (tensor table)"), -1;
        e->tensors = p;
        e->cap_tensors = cap;
    }
    xmc_tensor_info *t = &e->tensors[e->n_tensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    t->offset = e->n_params;
    t->no_decay = no_decay;
    e->n_params += (int64_t)n;
    return e->n_tensors++;
}

int xmc_encoder_add_table(xmc_encoder *e, const char *name, int64_t rows, int64_t cols,
                          int64_t max_touched, xmc_error *err)
{
    size_t n;
    if (rows <= 0 || rows > INT32_MAX || cols <= 0 ||
        !xmc_mul_ok((size_t)rows, (size_t)cols, &n))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "table %s: bad shape %lld x %lld", name,
                       (long long)rows, (long long)cols),
               -1;
    if (e->n_tables == e->cap_tables) {
        int cap = e->cap_tables ? 2 * e->cap_tables : 4;
        void *p = xmc_realloc(e->tables, (size_t)cap * sizeof *e->tables);
        if (!p)
            return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (table list)"), -1;
        e->tables = p;
        e->cap_tables = cap;
    }
    xmc_sparse_table *t = &e->tables[e->n_tables];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    if (max_touched > rows)
        max_touched = rows;
    if (max_touched < 1)
        max_touched = 1;
    t->w = xmc_malloc_aligned(n * sizeof(float));
    t->touched = xmc_malloc((size_t)max_touched * sizeof(int32_t));
    t->grad = xmc_malloc_aligned((size_t)max_touched * (size_t)cols * sizeof(float));
    e->n_tables++; /* freed by xmc_encoder_free even when half-made */
    if (!t->w || !t->touched || !t->grad)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory for table %s (%lld x %lld)",
                       name, (long long)rows, (long long)cols),
               -1;
    t->max_touched = max_touched;
    return e->n_tables - 1;
}

void enc_init_normal(float *w, int64_t n, float std, uint64_t seed, uint64_t stream)
{
    xmc_rng r;
    xmc_rng_seed(&r, seed, stream);
    for (int64_t i = 0; i < n; i++)
        w[i] = std * xmc_rng_normal(&r);
}

static int create_common(const xmc_encoder_config *cfg, int fresh, xmc_encoder **out,
                         xmc_error *err)
{
    *out = NULL;
    const xmc_encoder_ops *ops = xmc_encoder_find(cfg->kind);
    if (!ops)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "unknown encoder '%s' (expected sparse or bag)", cfg->kind);
    if (cfg->hidden < XMC_ENC_MIN_HIDDEN || cfg->hidden > XMC_ENC_MAX_HIDDEN)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "encoder dim %d out of range [%d, %d]",
                       cfg->hidden, XMC_ENC_MIN_HIDDEN, XMC_ENC_MAX_HIDDEN);
    if (cfg->bottleneck < 0 || cfg->bottleneck > XMC_ENC_MAX_HIDDEN)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "bottleneck %d out of range", cfg->bottleneck);
    if (cfg->intermediate < 0 || cfg->intermediate > XMC_ENC_MAX_HIDDEN)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "intermediate width %d out of range [0, %d]",
                       cfg->intermediate, XMC_ENC_MAX_HIDDEN);
    if (cfg->intermediate_relu != 0 && cfg->intermediate_relu != 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "intermediate activation %d: expected 0 or 1",
                       cfg->intermediate_relu);
    if (!(cfg->dropout >= 0.0f && cfg->dropout < 1.0f))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "dropout %g: expected [0, 1)",
                       (double)cfg->dropout);
    if (!(cfg->input_dropout >= 0.0f && cfg->input_dropout < 1.0f))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "input dropout %g: expected [0, 1)",
                       (double)cfg->input_dropout);
    if (cfg->max_batch < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "max_batch %d: expected >= 1", cfg->max_batch);
    if (cfg->max_batch > (1 << 24)) /* rows key dropout streams in 24 bits */
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "max_batch %d: expected <= %d", cfg->max_batch,
                       1 << 24);
    if (cfg->layers < 1 || cfg->layers > 2)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "layers %d: expected 1 or 2", cfg->layers);
    if (cfg->layers == 2 && strcmp(cfg->kind, "sparse")) /* the others have no W2 */
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "layers 2: only the sparse encoder has a second dense layer (not %s)",
                       cfg->kind);
    if (cfg->act != XMC_ACT_RELU && cfg->act != XMC_ACT_GELU)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "unknown activation %d", (int)cfg->act);

    int rc = XMC_ENOMEM;
    xmc_encoder *e = xmc_calloc(1, sizeof *e);
    if (!e)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (encoder)");
    e->ops = ops;
    e->cfg = *cfg;
    e->bottleneck_tensor = -1;
    e->inter_tensor = -1;
    if ((rc = ops->declare(e, err)) != XMC_OK)
        goto fail;
    if (e->base_dim < 1) {
        rc = XMC_ERR(err, XMC_EINVAL, NULL, 0, "encoder %s declared no output", cfg->kind);
        goto fail;
    }
    e->dim = e->base_dim;
    if (cfg->bottleneck > 0) {
        e->bottleneck_tensor =
            xmc_encoder_add_dense(e, "bottleneck.P", cfg->bottleneck, e->base_dim, 0, err);
        if (e->bottleneck_tensor < 0) {
            rc = err ? err->code : XMC_EINVAL;
            goto fail;
        }
        e->dim = cfg->bottleneck;
    }
    if (cfg->intermediate > 0) {
        int in = e->dim;
        e->inter_tensor =
            xmc_encoder_add_dense(e, "intermediate.W", cfg->intermediate, in, 0, err);
        /* The bias is the next tensor: forward/backward find it at +1. */
        if (e->inter_tensor < 0 ||
            xmc_encoder_add_dense(e, "intermediate.b", 1, cfg->intermediate, 1, err) < 0) {
            rc = err ? err->code : XMC_EINVAL;
            goto fail;
        }
        e->dim = cfg->intermediate;
    }
    if (fresh == ENC_SHAPES) { /* tables are malloc'd, untouched: no pages yet */
        *out = e;
        return XMC_OK;
    }
    size_t nb = (size_t)(e->n_params > 0 ? e->n_params : 1) * sizeof(float);
    e->params = xmc_malloc_aligned(nb);
    e->grads = xmc_malloc_aligned(nb);
    fw_scratch *fw = xmc_calloc(1, sizeof *fw);
    e->fw = fw;
    if (!e->params || !e->grads || !fw) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (%lld encoder parameters)",
                     (long long)e->n_params);
        goto fail;
    }
    memset(e->params, 0, nb);
    memset(e->grads, 0, nb);
    size_t nh = (size_t)cfg->max_batch * (size_t)e->base_dim * sizeof(float);
    if (cfg->bottleneck > 0 || cfg->intermediate > 0) {
        fw->H = xmc_malloc_aligned(nh);
        fw->dH = xmc_malloc_aligned(nh);
        if (!fw->H || !fw->dH) {
            rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (bottleneck scratch)");
            goto fail;
        }
    }
    if (cfg->intermediate > 0) {
        size_t nz = (size_t)cfg->max_batch * (size_t)cfg->bottleneck * sizeof(float);
        if (cfg->bottleneck > 0) {
            fw->Z = xmc_malloc_aligned(nz);
            fw->dZ = xmc_malloc_aligned(nz);
        }
        fw->A = xmc_malloc_aligned((size_t)cfg->max_batch * (size_t)cfg->intermediate *
                                   sizeof(float));
        if (!fw->A || (cfg->bottleneck > 0 && (!fw->Z || !fw->dZ))) {
            rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (intermediate layer scratch)");
            goto fail;
        }
    }
    if (cfg->dropout > 0.0f) {
        fw->mask = xmc_malloc_aligned(nh);
        if (!fw->mask) {
            rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (dropout mask)");
            goto fail;
        }
    }
    if ((rc = ops->init(e, fresh, err)) != XMC_OK)
        goto fail;
    if (fresh && e->bottleneck_tensor >= 0) {
        const xmc_tensor_info *t = &e->tensors[e->bottleneck_tensor];
        enc_init_normal(xmc_encoder_dense(e, e->bottleneck_tensor), t->rows * t->cols,
                        1.0f / sqrtf((float)e->base_dim), cfg->seed, 901);
    }
    if (fresh && e->inter_tensor >= 0) {
        /* He initialisation keeps the variance through the ReLU; the bias
         * starts at 0 (already zeroed). */
        const xmc_tensor_info *t = &e->tensors[e->inter_tensor];
        float gain = cfg->intermediate_relu ? 2.0f : 1.0f;
        enc_init_normal(xmc_encoder_dense(e, e->inter_tensor), t->rows * t->cols,
                        sqrtf(gain / (float)t->cols), cfg->seed, 902);
    }
    *out = e;
    return XMC_OK;
fail:
    xmc_encoder_free(e);
    return rc ? rc : XMC_EINVAL;
}

int xmc_encoder_create(const xmc_encoder_config *cfg, xmc_encoder **out, xmc_error *err)
{
    return create_common(cfg, 1, out, err);
}

int enc_create_unfilled(const xmc_encoder_config *cfg, xmc_encoder **out, xmc_error *err)
{
    return create_common(cfg, 0, out, err);
}

int enc_create_shapes(const xmc_encoder_config *cfg, xmc_encoder **out, xmc_error *err)
{
    return create_common(cfg, ENC_SHAPES, out, err);
}

void xmc_encoder_free(xmc_encoder *e)
{
    if (!e)
        return;
    if (e->ops && e->ops->destroy)
        e->ops->destroy(e);
    for (int i = 0; i < e->n_tables; i++) {
        xmc_free_aligned(e->tables[i].w);
        xmc_free(e->tables[i].touched);
        xmc_free_aligned(e->tables[i].grad);
    }
    xmc_free(e->tables);
    xmc_free(e->tensors);
    xmc_free_aligned(e->params);
    xmc_free_aligned(e->grads);
    fw_scratch *fw = e->fw;
    if (fw) {
        xmc_free_aligned(fw->H);
        xmc_free_aligned(fw->dH);
        xmc_free_aligned(fw->mask);
        xmc_free_aligned(fw->Z);
        xmc_free_aligned(fw->dZ);
        xmc_free_aligned(fw->A);
        xmc_free(fw);
    }
    xmc_free(e);
}

/* ------------------------------------------------------------ data */

void xmc_enc_data_free(xmc_enc_data *d)
{
    if (!d)
        return;
    xmc_csr_free(d->ids);
    if (d->impl_free)
        d->impl_free(d->impl);
    xmc_free(d);
}

size_t xmc_enc_data_bytes(const xmc_enc_data *d)
{
    return d ? sizeof *d + (d->ids ? xmc_csr_bytes(d->ids) : 0) : 0;
}

static int cmp_i64_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

static int grow_table(xmc_sparse_table *t, int64_t need, xmc_error *err)
{
    if (need > t->rows)
        need = t->rows;
    if (need <= t->max_touched)
        return XMC_OK;
    int32_t *touched = xmc_malloc((size_t)need * sizeof(int32_t));
    float *grad = xmc_malloc_aligned((size_t)need * (size_t)t->cols * sizeof(float));
    if (!touched || !grad) {
        xmc_free(touched);
        xmc_free_aligned(grad);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                       "out of memory for %lld touched rows of table %s (lower --batch)",
                       (long long)need, t->name);
    }
    xmc_free(t->touched);
    xmc_free_aligned(t->grad);
    t->touched = touched;
    t->grad = grad;
    t->max_touched = need;
    t->n_touched = 0;
    return XMC_OK;
}

int xmc_encoder_prepare(xmc_encoder *e, const xmc_dataset *ds, xmc_enc_data **out,
                        xmc_error *err)
{
    *out = NULL;
    int rc = e->ops->prepare(e, ds, out, err);
    if (rc)
        return rc;
    const xmc_csr *ids = (*out)->ids;
    if (ids && ids->nrows > 0) {
        /* A batch touches at most the sum of its B longest rows: reserve
         * exactly that (capped at the table's rows), so no step can run out
         * and none allocates. */
        int64_t *len = xmc_malloc((size_t)ids->nrows * sizeof(int64_t));
        if (!len) {
            xmc_enc_data_free(*out);
            *out = NULL;
            return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (row lengths)");
        }
        for (int64_t i = 0; i < ids->nrows; i++)
            len[i] = ids->indptr[i + 1] - ids->indptr[i];
        qsort(len, (size_t)ids->nrows, sizeof(int64_t), cmp_i64_desc);
        int64_t need = 0;
        for (int64_t i = 0; i < ids->nrows && i < e->cfg.max_batch; i++)
            need += len[i];
        xmc_free(len);
        for (int i = 0; i < e->n_tables; i++)
            if ((rc = grow_table(&e->tables[i], need, err)) != XMC_OK) {
                xmc_enc_data_free(*out);
                *out = NULL;
                return rc;
            }
    }
    return XMC_OK;
}

/* ------------------------------------------------------------ sparse rows */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int enc_collect_touched(xmc_sparse_table *t, const xmc_csr *ids, const int64_t *rows, int B,
                        int32_t *slot, xmc_error *err)
{
    int64_t n = 0;
    for (int i = 0; i < B; i++) {
        int64_t r = rows ? rows[i] : i;
        for (int64_t p = ids->indptr[r]; p < ids->indptr[r + 1]; p++) {
            int32_t f = ids->indices[p];
            if (f < 0 || f >= t->rows || slot[f] >= 0)
                continue;
            if (n >= t->max_touched) {
                for (int64_t q = 0; q < n; q++)
                    slot[t->touched[q]] = -1;
                t->n_touched = 0;
                return XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                               "table %s: more than %lld touched rows in a batch", t->name,
                               (long long)t->max_touched);
            }
            slot[f] = 0;
            t->touched[n++] = f;
        }
    }
    /* Ascending order makes the optimizer's memory walk sequential and the
     * result independent of batch order. */
    qsort(t->touched, (size_t)n, sizeof(int32_t), cmp_i32);
    for (int64_t q = 0; q < n; q++)
        slot[t->touched[q]] = (int32_t)q;
    t->n_touched = n;
    memset(t->grad, 0, (size_t)n * (size_t)t->cols * sizeof(float));
    return XMC_OK;
}

enc_drop enc_drop_for(const xmc_encoder *e, int train)
{
    enc_drop d = {0, 0, 1.0f};
    float p = e->cfg.input_dropout;
    if (!train || !(p > 0.0f))
        return d;
    /* splitmix of (seed, step): never 0 in practice; 0 would mean "off". */
    uint64_t k = e->cfg.seed * 0x9e3779b97f4a7c15ull + e->step + 0x632be59bd9b4e019ull;
    k ^= k >> 31;
    k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 29;
    d.key = k ? k : 1;
    d.thr = (uint64_t)((double)p * 18446744073709551615.0);
    d.scale = 1.0f / (1.0f - p);
    return d;
}

void enc_scatter_grad(xmc_sparse_table *t, const xmc_csr *ids, const int64_t *rows, int B,
                      const float *dU, int32_t *slot, const enc_drop *dr)
{
    const int64_t h = t->cols;
    /* Column blocks: every thread walks all entries but owns its columns, so
     * there are no write conflicts and the sums do not depend on threads. */
    const int64_t blk = 64;
    const int64_t nblk = (h + blk - 1) / blk;
    const float sc = dr && dr->key ? dr->scale : 1.0f;
#pragma omp parallel for schedule(static)
    for (int64_t cb = 0; cb < nblk; cb++) {
        int64_t c0 = cb * blk, c1 = c0 + blk < h ? c0 + blk : h;
        for (int i = 0; i < B; i++) {
            int64_t r = rows ? rows[i] : i;
            const float *g = dU + (size_t)i * (size_t)h;
            for (int64_t p = ids->indptr[r]; p < ids->indptr[r + 1]; p++) {
                int32_t f = ids->indices[p];
                if (f < 0 || f >= t->rows || !enc_keep(dr, p))
                    continue;
                float v = (ids->values ? ids->values[p] : 1.0f) * sc;
                float *dst = t->grad + (size_t)slot[f] * (size_t)h;
                for (int64_t c = c0; c < c1; c++)
                    dst[c] += v * g[c];
            }
        }
    }
    for (int64_t q = 0; q < t->n_touched; q++)
        slot[t->touched[q]] = -1;
}

void enc_gather_rows(const xmc_sparse_table *t, const xmc_csr *ids, const int64_t *rows, int B,
                     float *U, const enc_drop *dr)
{
    const float sc = dr && dr->key ? dr->scale : 1.0f;
    const int64_t h = t->cols;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < B; i++) {
        int64_t r = rows ? rows[i] : i;
        float *u = U + (size_t)i * (size_t)h;
        memset(u, 0, (size_t)h * sizeof(float));
        for (int64_t p = ids->indptr[r]; p < ids->indptr[r + 1]; p++) {
            int32_t f = ids->indices[p];
            if (f < 0 || f >= t->rows || !enc_keep(dr, p))
                continue;
            float v = (ids->values ? ids->values[p] : 1.0f) * sc;
            const float *w = t->w + (size_t)f * (size_t)h;
            for (int64_t c = 0; c < h; c++)
                u[c] += v * w[c];
        }
    }
}

/* ------------------------------------------------------------ forward/backward */

/* A = act(Z Wi^T + bi) into fw->A and E (B x d_int). */
static void intermediate_forward(xmc_encoder *e, const float *Z, int zw, int B, float *E)
{
    fw_scratch *fw = e->fw;
    const int di = e->cfg.intermediate;
    const float *Wi = xmc_encoder_dense(e, e->inter_tensor);
    const float *bi = xmc_encoder_dense(e, e->inter_tensor + 1);
    float *A = fw->A;
    for (int i = 0; i < B; i++)
        memcpy(A + (size_t)i * di, bi, (size_t)di * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, di, zw, 1.0f, Z, zw, Wi, zw, 1.0f,
                A, di);
    const size_t n = (size_t)B * (size_t)di;
    if (e->cfg.intermediate_relu)
        for (size_t i = 0; i < n; i++)
            A[i] = A[i] > 0.0f ? A[i] : 0.0f;
    memcpy(E, A, n * sizeof(float));
}

/* dE (B x d_int, overwritten with dA) -> dWi, dbi accumulated; returns dZ
 * (fw->dZ with a bottleneck, else fw->dH). */
static float *intermediate_backward(xmc_encoder *e, float *dE, int B)
{
    fw_scratch *fw = e->fw;
    const int di = e->cfg.intermediate;
    const int has_bn = e->bottleneck_tensor >= 0;
    const int zw = has_bn ? e->cfg.bottleneck : e->base_dim;
    const float *Z = has_bn ? fw->Z : fw->H;
    float *dZ = has_bn ? fw->dZ : fw->dH;
    const float *Wi = xmc_encoder_dense(e, e->inter_tensor);
    float *dWi = xmc_encoder_dense_grad(e, e->inter_tensor);
    float *dbi = xmc_encoder_dense_grad(e, e->inter_tensor + 1);
    const size_t n = (size_t)B * (size_t)di;
    if (e->cfg.intermediate_relu) /* the derivative at 0 is taken as 0 */
        for (size_t i = 0; i < n; i++)
            dE[i] = fw->A[i] > 0.0f ? dE[i] : 0.0f;
    for (int i = 0; i < B; i++) {
        const float *g = dE + (size_t)i * di;
        for (int j = 0; j < di; j++)
            dbi[j] += g[j];
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, di, zw, B, 1.0f, dE, di, Z, zw, 1.0f,
                dWi, zw);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, zw, di, 1.0f, dE, di, Wi, zw, 0.0f,
                dZ, zw);
    return dZ;
}

int xmc_encoder_forward(xmc_encoder *e, const xmc_enc_data *d, const int64_t *rows, int B,
                        int train, float *E, xmc_error *err)
{
    if (B < 1 || B > e->cfg.max_batch)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "batch %d outside [1, %d]", B,
                       e->cfg.max_batch);
    if (rows)
        for (int i = 0; i < B; i++)
            if (rows[i] < 0 || rows[i] >= d->n)
                return XMC_ERR(err, XMC_EINVAL, NULL, 0, "row %lld outside [0, %lld)",
                               (long long)rows[i], (long long)d->n);
    if (!rows && B > d->n)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "batch %d exceeds %lld rows", B,
                       (long long)d->n);
    fw_scratch *fw = e->fw;
    const int h = e->base_dim;
    const int has_bn = e->bottleneck_tensor >= 0, has_int = e->inter_tensor >= 0;
    float *H = has_bn || has_int ? fw->H : E;
    if (train)
        e->step++; /* keys this step's dropout masks (input and embedding) */
    int rc = e->ops->forward(e, d, rows, B, train, H, err);
    if (rc)
        return rc;
    fw->last_B = B;
    fw->has_mask = 0;
    if (train && e->cfg.dropout > 0.0f) {
        const float p = e->cfg.dropout, keep = 1.0f / (1.0f - p);
        for (int i = 0; i < B; i++) {
            /* stream: top bit set (apart from other streams), step, row */
            xmc_rng r;
            xmc_rng_seed(&r, e->cfg.seed,
                         (1ull << 63) | (e->step << 24) | (uint64_t)(e->batch_row0 + i));
            float *m = fw->mask + (size_t)i * (size_t)h, *x = H + (size_t)i * (size_t)h;
            for (int c = 0; c < h; c++) {
                m[c] = xmc_rng_uniform(&r) < (double)p ? 0.0f : keep;
                x[c] *= m[c];
            }
        }
        fw->has_mask = 1;
    }
    const float *Z = H; /* input of the intermediate layer */
    int zw = h;
    if (has_bn) {
        const int b = e->cfg.bottleneck;
        float *out = has_int ? fw->Z : E;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, b, h, 1.0f, H, h,
                    xmc_encoder_dense(e, e->bottleneck_tensor), h, 0.0f, out, b);
        Z = out;
        zw = b;
    }
    if (has_int)
        intermediate_forward(e, Z, zw, B, E);
    return XMC_OK;
}

void xmc_encoder_zero_grad(xmc_encoder *e)
{
    memset(e->grads, 0, (size_t)e->n_params * sizeof(float));
    for (int i = 0; i < e->n_tables; i++)
        e->tables[i].n_touched = 0;
}

int xmc_encoder_backward(xmc_encoder *e, float *dE, int B, xmc_error *err)
{
    fw_scratch *fw = e->fw;
    if (B != fw->last_B)
        return XMC_ERR(err, XMC_ESTATE, NULL, 0, "backward of %d rows after forward of %d", B,
                       fw->last_B);
    const int h = e->base_dim;
    float *dH = dE;
    if (e->inter_tensor >= 0)
        dH = intermediate_backward(e, dE, B);
    if (e->bottleneck_tensor >= 0) {
        const int b = e->cfg.bottleneck;
        const float *P = xmc_encoder_dense(e, e->bottleneck_tensor);
        float *dP = xmc_encoder_dense_grad(e, e->bottleneck_tensor);
        float *dZ = dH; /* B x b */
        /* dP += dZ^T H (b x h); dH = dZ P (B x h). */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b, h, B, 1.0f, dZ, b, fw->H, h,
                    1.0f, dP, h);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, h, b, 1.0f, dZ, b, P, h, 0.0f,
                    fw->dH, h);
        dH = fw->dH;
    }
    if (fw->has_mask) {
        const size_t n = (size_t)B * (size_t)h;
        for (size_t i = 0; i < n; i++)
            dH[i] *= fw->mask[i];
    }
    return e->ops->backward(e, dH, B, err);
}

int64_t xmc_encoder_param_count(const xmc_encoder *e)
{
    int64_t n = e->n_params;
    for (int i = 0; i < e->n_tables; i++)
        n += e->tables[i].rows * e->tables[i].cols;
    return n;
}

size_t xmc_encoder_bytes(const xmc_encoder *e)
{
    size_t b = sizeof *e + 2 * (size_t)e->n_params * sizeof(float);
    for (int i = 0; i < e->n_tables; i++) {
        const xmc_sparse_table *t = &e->tables[i];
        b += (size_t)(t->rows + t->max_touched) * (size_t)t->cols * sizeof(float) +
             (size_t)t->max_touched * sizeof(int32_t);
    }
    /* The scratch create_common allocates, from the config (a shapes-only
     * encoder has none allocated yet). */
    const xmc_encoder_config *c = &e->cfg;
    size_t nh = (size_t)c->max_batch * (size_t)e->base_dim * sizeof(float);
    if (c->bottleneck > 0 || c->intermediate > 0)
        b += 2 * nh; /* H, dH */
    if (c->dropout > 0.0f)
        b += nh; /* mask */
    if (c->intermediate > 0 && c->bottleneck > 0)
        b += 2 * (size_t)c->max_batch * (size_t)c->bottleneck * sizeof(float); /* Z, dZ */
    if (c->intermediate > 0)
        b += (size_t)c->max_batch * (size_t)c->intermediate * sizeof(float); /* A */
    return b;
}

/* ------------------------------------------------------------ save/load */

/* Little-endian host layout (x86-64, aarch64): the file is the in-memory
 * bytes; a big-endian host would fail the CRC rather than misread. */
typedef struct wr {
    FILE *f;
    uint32_t crc;
    int fail;
} wr;

static void put(wr *w, const void *p, size_t n)
{
    if (w->fail || n == 0)
        return;
    w->crc = xmc_crc32(w->crc, p, n);
    if (fwrite(p, 1, n, w->f) != n)
        w->fail = 1;
}

typedef struct rd {
    FILE *f;
    uint32_t crc;
    int fail;
} rd;

static void get(rd *r, void *p, size_t n)
{
    if (r->fail || n == 0)
        return;
    if (fread(p, 1, n, r->f) != n) {
        r->fail = 1;
        memset(p, 0, n);
        return;
    }
    r->crc = xmc_crc32(r->crc, p, n);
}

typedef struct disk_cfg {
    char kind[16];
    int64_t n_inputs;
    int32_t hidden, layers, bottleneck, act;
    float dropout;
    int32_t max_batch;
    uint64_t seed;
    float init_std;
    float input_dropout;
    int32_t n_tensors, n_tables;
    uint64_t step;
    char extra[256];
} disk_cfg;

/* Version 3 appends this after disk_cfg (version 2 files have none: no
 * intermediate layer). */
typedef struct disk_cfg3 {
    int32_t intermediate, intermediate_relu;
    int32_t reserved[6];
} disk_cfg3;

int xmc_encoder_save(const xmc_encoder *e, FILE *f, const char *path, xmc_error *err)
{
    wr w = {f, 0, 0};
    if (fwrite(ENC_MAGIC, 1, 8, f) != 8)
        return XMC_ERR(err, XMC_EIO, path, 0, "write failed");
    uint32_t ver = ENC_VERSION;
    put(&w, &ver, 4);
    disk_cfg c;
    memset(&c, 0, sizeof c);
    memcpy(c.kind, e->cfg.kind, sizeof c.kind);
    c.n_inputs = e->cfg.n_inputs;
    c.hidden = e->cfg.hidden;
    c.layers = e->cfg.layers;
    c.bottleneck = e->cfg.bottleneck;
    c.act = (int32_t)e->cfg.act;
    c.dropout = e->cfg.dropout;
    c.max_batch = e->cfg.max_batch;
    c.seed = e->cfg.seed;
    c.init_std = e->cfg.init_std;
    c.input_dropout = e->cfg.input_dropout;
    c.n_tensors = e->n_tensors;
    c.n_tables = e->n_tables;
    c.step = e->step;
    memcpy(c.extra, e->cfg.extra, sizeof c.extra);
    put(&w, &c, sizeof c);
    disk_cfg3 c3;
    memset(&c3, 0, sizeof c3);
    c3.intermediate = e->cfg.intermediate;
    c3.intermediate_relu = e->cfg.intermediate_relu;
    put(&w, &c3, sizeof c3);
    for (int i = 0; i < e->n_tensors; i++) {
        put(&w, e->tensors[i].name, XMC_ENC_NAME_MAX);
        put(&w, &e->tensors[i].rows, 8);
        put(&w, &e->tensors[i].cols, 8);
    }
    for (int i = 0; i < e->n_tables; i++) {
        put(&w, e->tables[i].name, XMC_ENC_NAME_MAX);
        put(&w, &e->tables[i].rows, 8);
        put(&w, &e->tables[i].cols, 8);
    }
    put(&w, e->params, (size_t)e->n_params * sizeof(float));
    for (int i = 0; i < e->n_tables; i++)
        put(&w, e->tables[i].w, (size_t)e->tables[i].rows * (size_t)e->tables[i].cols * 4);
    uint32_t crc = w.crc;
    if (!w.fail && fwrite(&crc, 4, 1, f) != 1)
        w.fail = 1;
    if (w.fail)
        return XMC_ERR(err, XMC_EIO, path, 0, "write failed (disk full?)");
    return XMC_OK;
}

int xmc_encoder_load(FILE *f, const char *path, xmc_encoder **out, xmc_error *err)
{
    *out = NULL;
    char magic[8];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, ENC_MAGIC, 8) != 0)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "not an xmc encoder file (bad magic)");
    rd r = {f, 0, 0};
    uint32_t ver = 0;
    get(&r, &ver, 4);
    if (ver != ENC_VERSION && ver != 2u)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "encoder file version %u, expected 2 or %u",
                       ver, ENC_VERSION);
    disk_cfg c;
    get(&r, &c, sizeof c);
    disk_cfg3 c3;
    memset(&c3, 0, sizeof c3);
    c3.intermediate_relu = 1;
    if (ver >= 3u)
        get(&r, &c3, sizeof c3);
    if (r.fail)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "truncated encoder header");
    xmc_encoder_config cfg;
    memset(&cfg, 0, sizeof cfg);
    memcpy(cfg.kind, c.kind, sizeof cfg.kind);
    cfg.kind[sizeof cfg.kind - 1] = '\0';
    cfg.n_inputs = c.n_inputs;
    cfg.hidden = c.hidden;
    cfg.layers = c.layers;
    cfg.bottleneck = c.bottleneck;
    cfg.act = (xmc_act)c.act;
    cfg.dropout = c.dropout;
    cfg.max_batch = c.max_batch;
    cfg.seed = c.seed;
    cfg.init_std = c.init_std;
    cfg.input_dropout = c.input_dropout;
    cfg.intermediate = c3.intermediate;
    cfg.intermediate_relu = c3.intermediate_relu;
    memcpy(cfg.extra, c.extra, sizeof cfg.extra);
    cfg.extra[sizeof cfg.extra - 1] = '\0';
    xmc_encoder *e = NULL;
    int rc = create_common(&cfg, 0, &e, err);
    if (rc)
        return rc;
    if (c.n_tensors != e->n_tensors || c.n_tables != e->n_tables) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "encoder has %d tensors / %d tables, file %d / %d",
                     e->n_tensors, e->n_tables, c.n_tensors, c.n_tables);
        goto fail;
    }
    for (int i = 0; i < e->n_tensors + e->n_tables; i++) {
        char name[XMC_ENC_NAME_MAX];
        int64_t rows, cols;
        get(&r, name, sizeof name);
        get(&r, &rows, 8);
        get(&r, &cols, 8);
        name[sizeof name - 1] = '\0';
        const char *en = i < e->n_tensors ? e->tensors[i].name : e->tables[i - e->n_tensors].name;
        int64_t er = i < e->n_tensors ? e->tensors[i].rows : e->tables[i - e->n_tensors].rows;
        int64_t ec = i < e->n_tensors ? e->tensors[i].cols : e->tables[i - e->n_tensors].cols;
        if (r.fail || strcmp(name, en) || rows != er || cols != ec) {
            rc = XMC_ERR(err, XMC_ECORRUPT, path, 0,
                         "tensor %d: file has %s %lld x %lld, expected %s %lld x %lld", i, name,
                         (long long)rows, (long long)cols, en, (long long)er, (long long)ec);
            goto fail;
        }
    }
    get(&r, e->params, (size_t)e->n_params * sizeof(float));
    for (int i = 0; i < e->n_tables; i++)
        get(&r, e->tables[i].w, (size_t)e->tables[i].rows * (size_t)e->tables[i].cols * 4);
    uint32_t crc = 0;
    if (r.fail || fread(&crc, 4, 1, f) != 1) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "truncated encoder file");
        goto fail;
    }
    if (crc != r.crc) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "encoder checksum mismatch (file %08x, data %08x)",
                     crc, r.crc);
        goto fail;
    }
    e->step = c.step;
    *out = e;
    return XMC_OK;
fail:
    xmc_encoder_free(e);
    return rc;
}
