/* UniDEC / DEPSL end to end (Kharbanda et al., "UniDEC", WWW 2025; thesis
 * ch. 2) on label-feature data, assembled from the PSL core (psl.h), the
 * shared `bag` encoder Φ (encoder.h), AdamW (optim.h), HNSW (hnsw.h) and
 * balanced clustering (cluster.h).
 *
 * Queries and labels go through Φ in ONE forward pass: the point texts and
 * the label texts are prepared once as one table (rows 0..N-1 points,
 * N..N+L-1 labels), and a step encodes rows [Q_B ; N + L_B]. This keeps the
 * encoder's one-forward/one-backward contract and lets the DE loss push
 * gradients into both sides, as the shared encoder of the paper does.
 *
 * Step (no allocation; all scratch is sized at create for B + |L_B|max rows):
 *   pool -> Φ -> Φ_D on all rows -> S_DE = Q_D L_D^T -> psl_loss
 *   UniDEC: Φ_C on the query rows -> S_CLF = Φ_C(x) Ψ_{L_B}^T -> psl_loss (+BCE)
 *   loss = λ_h loss_DE + (1-λ_h) loss_CLF; backward; AdamW on Φ and heads,
 *   lazy Adam on Ψ's pool rows.
 * Every τ epochs from mine_start (outside the steps, allowed to allocate):
 * embed labels and training queries with Φ_D, mine n·τ hard negatives per
 * query (HNSW when L >= hnsw_min_labels, else exact), and re-cluster the
 * queries into batches of <= B (balanced 2-means on Φ_D(x)).
 *
 * Memory independent of L apart from Ψ (L x d, + Adam moments), the
 * prepared label texts, the label embeddings while mining (L x d) and the
 * index; the mined lists are N x nτ int32. xmc_unidec_get_stats reports it.
 * Reproducible for a seed: batch orders from (seed, epoch), pools from
 * (seed, step), dropout from (seed, step, row).
 */
#include <math.h>
#include <string.h>

#include "xmc/cluster.h"
#include "xmc/encoder.h"
#include "xmc/hnsw.h"
#include "xmc/kernels.h"
#include "xmc/optim.h"
#include "xmc/psl.h"

struct xmc_unidec {
    xmc_unidec_config cfg;
    int64_t N, L;         /* training points, labels */
    int d;                /* head output */
    xmc_encoder *enc;
    xmc_enc_optim *opt;
    xmc_enc_data *comb;   /* prepared [point texts ; label texts] (loaded: label texts) */
    xmc_texts *ltexts;    /* the label texts trained on (saved with the model) */
    xmc_psl_head *hd, *hc;
    xmc_psl_table *psi;
    xmc_psl_sampler *smp;
    int max_pool, max_enc;
    int64_t step;
    int64_t total_steps;
    /* step scratch */
    int64_t *erows;       /* (max_enc) */
    float *H, *dH;        /* (max_enc, h) */
    float *D, *dD;        /* (max_enc, d) */
    float *C, *dC;        /* (batch, d) */
    float *P, *dP;        /* (max_pool, d) Ψ rows of the pool and their grads */
    float *S, *dS;        /* (batch, max_pool) */
    /* mining */
    int K;                /* n·τ */
    int32_t *negs;        /* (N, K), -1 padded; NULL before the first mining */
    int mined;
    xmc_clusters *clusters;
    int64_t *order;       /* (n_train) rows with a label */
    int32_t *seen;        /* (n_seen) labels with a training positive, ascending,
                             when cfg.seen_negatives; else NULL */
    int64_t n_seen;
    int64_t n_train;
    xmc_unidec_stats st;
};

void xmc_unidec_config_default(xmc_unidec_config *c, int depsl)
{
    memset(c, 0, sizeof *c);
    c->depsl = depsl;
    c->hidden = 256;
    c->intermediate_relu = 1;
    c->dim = 128;
    c->buckets = 1 << 18;
    c->epochs = 10;
    c->batch = 128;
    c->beta = XMC_PSL_DEFAULT_BETA;
    c->n_neg = XMC_PSL_DEFAULT_NEG;
    c->tau = XMC_PSL_DEFAULT_TAU;
    c->mine_start = 1;
    c->cluster = 1;
    c->hnsw_min_labels = 1000000; /* exact GEMM mining is faster below (docs/unidec.md) */
    c->temperature = XMC_PSL_DEFAULT_TEMPERATURE;
    c->temperature_clf = 0.1f;
    c->lambda = XMC_PSL_DEFAULT_LAMBDA;
    c->lambda_head = 0.5f;
    c->kind = XMC_PSL_DECOUPLED;
    c->lr_enc = 2e-3f;
    c->lr_head = 1e-3f;
    c->lr_psi = 1e-2f;
    c->wd = 0.01f;
    c->warmup = 0.1f;
    c->dropout_enc = 0.1f;
    c->dropout_head = XMC_PSL_DEFAULT_DROPOUT;
    c->seed = 1;
}

void xmc_unidec_free(xmc_unidec *u)
{
    if (!u)
        return;
    xmc_encoder_free(u->enc);
    xmc_enc_optim_free(u->opt);
    xmc_enc_data_free(u->comb);
    xmc_texts_free(u->ltexts);
    xmc_psl_head_free(u->hd);
    xmc_psl_head_free(u->hc);
    xmc_psl_table_free(u->psi);
    xmc_psl_sampler_free(u->smp);
    xmc_free(u->erows);
    xmc_free(u->H);
    xmc_free(u->dH);
    xmc_free(u->D);
    xmc_free(u->dD);
    xmc_free(u->C);
    xmc_free(u->dC);
    xmc_free(u->P);
    xmc_free(u->dP);
    xmc_free(u->S);
    xmc_free(u->dS);
    xmc_free(u->negs);
    xmc_clusters_free(u->clusters);
    xmc_free(u->order);
    xmc_free(u->seen);
    xmc_free(u);
}

void xmc_unidec_get_stats(const xmc_unidec *u, xmc_unidec_stats *s) { *s = u->st; }

static int check_cfg(const xmc_unidec_config *c, xmc_error *err)
{
    if (c->epochs < 1 || c->batch < 1 || c->batch > XMC_PSL_MAX_BATCH)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "unidec: epochs %d, batch %d out of range",
                       c->epochs, c->batch);
    if (c->hidden < 1 || c->dim < 1 || c->buckets < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "unidec: hidden %d, dim %d, buckets %lld",
                       c->hidden, c->dim, (long long)c->buckets);
    if (c->tau < 1 || c->mine_start < 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "unidec: tau %d (>= 1), mine_start %d (>= 0)",
                       c->tau, c->mine_start);
    if (!(c->lambda_head >= 0.0f && c->lambda_head <= 1.0f) || !(c->bce >= 0.0f) ||
        !(c->temperature_clf > 0.0f))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "unidec: lambda_head %g in [0, 1], bce %g >= 0, temperature_clf %g > 0",
                       (double)c->lambda_head, (double)c->bce, (double)c->temperature_clf);
    return XMC_OK;
}

/* [point texts ; label texts] as one dataset for the encoder's prepare. */
static int prepare_combined(xmc_unidec *u, const xmc_dataset *ds, xmc_error *err)
{
    const xmc_texts *lt = ds->label_texts ? ds->label_texts : ds->label_names;
    if (!ds->texts || !lt)
        return XMC_ERR(err, XMC_EINVAL, ds->spec, 0,
                       "unidec/depsl need point texts and label texts (or names); this dataset "
                       "has %s%s",
                       ds->texts ? "" : "no point texts ", lt ? "" : "no label texts");
    if (lt->n != ds->n_labels)
        return XMC_ERR(err, XMC_EINVAL, ds->spec, 0, "%lld label texts for %lld labels",
                       (long long)lt->n, (long long)ds->n_labels);
    xmc_texts *t = NULL;
    int rc = xmc_texts_concat(ds->texts, lt, &t, err);
    if (!rc)
        rc = xmc_texts_concat(lt, NULL, &u->ltexts, err);
    if (rc) {
        xmc_texts_free(t);
        return rc;
    }
    xmc_dataset tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.n = t->n;
    tmp.texts = t;
    tmp.spec = ds->spec;
    rc = xmc_encoder_prepare(u->enc, &tmp, &u->comb, err);
    xmc_texts_free(t);
    return rc;
}

static int create(const xmc_unidec_config *c, const xmc_dataset *ds, xmc_unidec **out,
                  xmc_error *err)
{
    *out = NULL;
    int rc = check_cfg(c, err);
    if (rc)
        return rc;
    xmc_unidec *u = xmc_calloc(1, sizeof *u);
    if (!u)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "unidec: out of memory");
    memcpy(&u->cfg, c, sizeof u->cfg); /* padding too: a checkpoint compares the bytes */
    u->N = ds->n;
    u->L = ds->n_labels;
    u->d = c->dim;
    u->K = c->n_neg * c->tau;
    int64_t max_row = 0;
    u->order = xmc_malloc(sizeof(int64_t) * (size_t)(ds->n > 0 ? ds->n : 1));
    if (!u->order) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "unidec: out of memory");
        goto fail;
    }
    for (int64_t i = 0; i < ds->n; i++) {
        int64_t ny = ds->Y->indptr[i + 1] - ds->Y->indptr[i];
        if (ny > 0)
            u->order[u->n_train++] = i;
        if (ny > max_row)
            max_row = ny;
    }
    if (u->n_train == 0) {
        rc = XMC_ERR(err, XMC_EINVAL, ds->spec, 0, "no training row has a label");
        goto fail;
    }
    if (c->seen_negatives) {
        char *mark = xmc_calloc((size_t)u->L, 1);
        u->seen = xmc_malloc(sizeof(int32_t) * (size_t)u->L);
        if (!mark || !u->seen) {
            xmc_free(mark);
            rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "unidec: out of memory (seen labels)");
            goto fail;
        }
        for (int64_t e = 0; e < xmc_csr_nnz(ds->Y); e++)
            mark[ds->Y->indices[e]] = 1;
        for (int64_t l = 0; l < u->L; l++)
            if (mark[l])
                u->seen[u->n_seen++] = (int32_t)l;
        xmc_free(mark);
    }
    xmc_psl_sampler_config sc;
    xmc_psl_sampler_config_default(&sc);
    sc.neg_labels = u->seen;
    sc.n_neg_labels = u->n_seen;
    sc.max_batch = c->batch;
    sc.beta = c->beta;
    sc.n_neg = c->n_neg;
    sc.n_labels = u->L;
    sc.max_row_nnz = max_row;
    sc.random_neg = 1;
    sc.seed = c->seed;
    if ((rc = xmc_psl_sampler_create(&sc, &u->smp, err)))
        goto fail;
    u->max_pool = xmc_psl_sampler_max_pool(u->smp);
    u->max_enc = c->batch + u->max_pool;

    xmc_encoder_config ec;
    xmc_encoder_config_default(&ec, c->encoder[0] ? c->encoder : "bag");
    if (c->encoder[0] && strcmp(c->encoder, "bag") != 0) /* a plugged-in kind, e.g. bert */
        memcpy(ec.extra, c->encoder_extra, sizeof ec.extra);
    ec.n_inputs = c->buckets;
    ec.hidden = c->hidden;
    ec.intermediate = c->intermediate;
    ec.intermediate_relu = c->intermediate_relu;
    ec.layers = 1;
    ec.dropout = c->dropout_enc;
    ec.max_batch = u->max_enc;
    ec.seed = c->seed;
    if ((rc = xmc_encoder_create(&ec, &u->enc, err)))
        goto fail;
    if ((rc = xmc_enc_optim_create(u->enc, XMC_TABLE_ADAM, 0, &u->opt, err)))
        goto fail;
    if ((rc = prepare_combined(u, ds, err)))
        goto fail;
    const int h = u->enc->dim;
    xmc_psl_head_config hc;
    xmc_psl_head_config_default(&hc, XMC_PSL_HEAD_DE, h, c->dim);
    hc.dropout = c->dropout_head;
    hc.max_batch = u->max_enc;
    hc.slots = 1;
    hc.seed = c->seed ^ 0xde;
    if ((rc = xmc_psl_head_create(&hc, &u->hd, err)))
        goto fail;
    if (!c->depsl) {
        xmc_psl_head_config_default(&hc, XMC_PSL_HEAD_CLF, h, c->dim);
        hc.dropout = c->dropout_head;
        hc.max_batch = u->max_enc; /* predict embeds in chunks of max_enc */
        hc.slots = 1;
        hc.seed = c->seed ^ 0xc1f;
        if ((rc = xmc_psl_head_create(&hc, &u->hc, err)))
            goto fail;
        if ((rc = xmc_psl_table_create(u->L, c->dim, XMC_PSL_TABLE_ADAM, 0.0f, c->seed ^ 0x951,
                                       &u->psi, err)))
            goto fail;
    }
    const size_t me = (size_t)u->max_enc, mp = (size_t)u->max_pool, B = (size_t)c->batch;
    const size_t d = (size_t)c->dim;
    u->erows = xmc_malloc(sizeof(int64_t) * me);
    u->H = xmc_malloc(sizeof(float) * me * (size_t)h);
    u->dH = xmc_malloc(sizeof(float) * me * (size_t)h);
    u->D = xmc_malloc(sizeof(float) * me * d);
    u->dD = xmc_malloc(sizeof(float) * me * d);
    u->C = xmc_malloc(sizeof(float) * B * d);
    u->dC = xmc_malloc(sizeof(float) * B * d);
    u->P = xmc_malloc(sizeof(float) * mp * d);
    u->dP = xmc_malloc(sizeof(float) * mp * d);
    u->S = xmc_malloc(sizeof(float) * B * mp);
    u->dS = xmc_malloc(sizeof(float) * B * mp);
    if (u->K > 0)
        u->negs = xmc_malloc(sizeof(int32_t) * (size_t)u->N * (size_t)u->K);
    if (!u->erows || !u->H || !u->dH || !u->D || !u->dD || !u->C || !u->dC || !u->P || !u->dP ||
        !u->S || !u->dS || (u->K > 0 && !u->negs)) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "unidec: out of memory for step scratch (%zu rows)",
                     me);
        goto fail;
    }
    u->st.encoder_bytes = xmc_encoder_bytes(u->enc);
    u->st.optim_bytes = xmc_enc_optim_bytes(u->opt);
    u->st.heads_bytes = xmc_psl_head_bytes(u->hd) + xmc_psl_head_bytes(u->hc);
    u->st.psi_bytes = xmc_psl_table_bytes(u->psi);
    u->st.step_bytes = xmc_psl_sampler_bytes(u->smp) +
                       sizeof(float) * (me * (size_t)h * 2 + me * d * 2 + B * d * 2 +
                                        mp * d * 2 + B * mp * 2) +
                       sizeof(int64_t) * me;
    u->st.negs_bytes = u->negs ? sizeof(int32_t) * (size_t)u->N * (size_t)u->K : 0;
    *out = u;
    return XMC_OK;
fail:
    xmc_unidec_free(u);
    return rc;
}

/* Embeddings of rows r0 + (ids ? ids[i] : i), i < n, of d into out (n rows,
 * stride ld floats, starting at column col): Φ_D (which = DE) or
 * normalize(Φ_C) (CLF). */
static int embed(xmc_unidec *u, const xmc_enc_data *d, int64_t r0, const int32_t *ids, int64_t n,
                 int which, float *out, int64_t ld, int64_t col, xmc_error *err)
{
    const int dim = u->d;
    for (int64_t a = 0; a < n; a += u->max_enc) {
        int B = (int)(n - a < u->max_enc ? n - a : u->max_enc);
        for (int i = 0; i < B; i++)
            u->erows[i] = r0 + (ids ? ids[a + i] : a + i);
        int rc = xmc_encoder_forward(u->enc, d, u->erows, B, 0, u->H, err);
        if (!rc)
            rc = xmc_psl_head_forward(which == XMC_UNIDEC_SCORE_DE ? u->hd : u->hc, 0, u->H, B, 0,
                                      0, u->D, err);
        if (rc)
            return rc;
        for (int i = 0; i < B; i++) {
            float *dst = out + (size_t)(a + i) * (size_t)ld + col;
            const float *src = u->D + (size_t)i * dim;
            float inv = 1.0f;
            if (which == XMC_UNIDEC_SCORE_CLF) {
                double s = 0;
                for (int k = 0; k < dim; k++)
                    s += (double)src[k] * src[k];
                inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
            }
            for (int k = 0; k < dim; k++)
                dst[k] = src[k] * inv;
        }
    }
    return XMC_OK;
}

/* Mine hard negatives and re-cluster the training queries. */
static int mine(xmc_unidec *u, const xmc_dataset *ds, xmc_error *err)
{
    double t0 = xmc_now();
    const int d = u->d;
    /* candidate labels: all L, or the seen ones (then ids are positions in
     * u->seen, mapped back below; Y's labels are all seen, so its indices
     * map monotonically onto positions) */
    const int64_t Lc = u->seen ? u->n_seen : u->L;
    float *LE = xmc_malloc(sizeof(float) * (size_t)Lc * (size_t)d);
    float *QE = xmc_malloc(sizeof(float) * (size_t)u->n_train * (size_t)d);
    int32_t *ids = NULL;
    if (u->K > 0)
        ids = xmc_malloc(sizeof(int32_t) * (size_t)u->n_train * (size_t)u->K);
    xmc_csr *Ysub = NULL;
    xmc_hnsw *index = NULL;
    int rc = XMC_OK;
    if (!LE || !QE || (u->K > 0 && !ids)) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "unidec: out of memory for mining embeddings");
        goto done;
    }
    if ((rc = embed(u, u->comb, u->N, u->seen, Lc, XMC_UNIDEC_SCORE_DE, LE, d, 0, err)))
        goto done;
    for (int64_t a = 0; a < u->n_train; a += u->max_enc) {
        int B = (int)(u->n_train - a < u->max_enc ? u->n_train - a : u->max_enc);
        for (int i = 0; i < B; i++)
            u->erows[i] = u->order[a + i];
        if ((rc = xmc_encoder_forward(u->enc, u->comb, u->erows, B, 0, u->H, err)) ||
            (rc = xmc_psl_head_forward(u->hd, 0, u->H, B, 0, 0, QE + (size_t)a * d, err)))
            goto done;
    }
    if (u->K > 0) {
        if ((rc = xmc_csr_select_rows(ds->Y, u->order, u->n_train, &Ysub, err)))
            goto done;
        if (u->seen) {
            Ysub->ncols = Lc;
            for (int64_t e = 0; e < xmc_csr_nnz(Ysub); e++)
                Ysub->indices[e] =
                    (int32_t)xmc_lower_bound_i32(u->seen, 0, u->n_seen, Ysub->indices[e]);
        }
        int k = u->K < Lc ? u->K : (int)Lc;
        if (Lc >= u->cfg.hnsw_min_labels) {
            xmc_hnsw_params hp;
            xmc_hnsw_params_default(&hp);
            hp.metric = XMC_METRIC_IP;
            hp.ef_construction = 64; /* negatives need not be the exact top: cheaper build */
            hp.seed = u->cfg.seed;
            if ((rc = xmc_hnsw_build(&index, LE, Lc, d, &hp, err)))
                goto done;
            size_t ib = xmc_hnsw_bytes(index);
            if (ib > u->st.index_bytes)
                u->st.index_bytes = ib;
        }
        if ((rc = xmc_psl_mine(LE, Lc, QE, u->n_train, d, Ysub, k, index, 0, ids, NULL, err)))
            goto done;
        if (u->seen)
            for (int64_t i = 0; i < u->n_train * (int64_t)k; i++)
                if (ids[i] >= 0)
                    ids[i] = u->seen[ids[i]];
        for (int64_t i = 0; i < u->N * (int64_t)u->K; i++)
            u->negs[i] = -1;
        for (int64_t i = 0; i < u->n_train; i++)
            memcpy(u->negs + (size_t)u->order[i] * u->K, ids + (size_t)i * k,
                   sizeof(int32_t) * (size_t)k);
        u->mined = 1;
    }
    if (u->cfg.cluster && u->n_train > u->cfg.batch) {
        xmc_cluster_params cp;
        xmc_cluster_params_default(&cp);
        cp.max_leaf = u->cfg.batch;
        cp.seed = u->cfg.seed;
        xmc_clusters_free(u->clusters);
        u->clusters = NULL;
        if ((rc = xmc_cluster_balanced(QE, u->n_train, d, &cp, &u->clusters, err)))
            goto done;
    }
done:
    xmc_hnsw_free(index);
    xmc_csr_free(Ysub);
    xmc_free(LE);
    xmc_free(QE);
    xmc_free(ids);
    u->st.mine_s += xmc_now() - t0;
    return rc;
}

static void scale(float *x, size_t n, float s)
{
    for (size_t i = 0; i < n; i++)
        x[i] *= s;
}

/* One step on training rows rows[0..B). */
static int step(xmc_unidec *u, const xmc_csr *Y, const int64_t *rows, int B, double *loss,
                xmc_error *err)
{
    const xmc_unidec_config *c = &u->cfg;
    const int64_t t = u->step + 1;
    const int d = u->d;
    xmc_psl_negs negs = {u->N, u->K, u->negs, NULL};
    const xmc_psl_pool *p;
    int rc = xmc_psl_sampler_build(u->smp, Y, rows, B, u->mined ? &negs : NULL, (uint64_t)t, &p,
                                   err);
    if (rc)
        return rc;
    const int nl = p->nl, Be = B + nl;
    for (int i = 0; i < B; i++)
        u->erows[i] = rows[i];
    for (int l = 0; l < nl; l++)
        u->erows[B + l] = u->N + p->labels[l];
    if ((rc = xmc_encoder_forward(u->enc, u->comb, u->erows, Be, 1, u->H, err)))
        return rc;
    if ((rc = xmc_psl_head_forward(u->hd, 0, u->H, Be, 1, (uint64_t)t, u->D, err)))
        return rc;
    /* DE: S_DE = Φ_D(x) Φ_D(z)^T over the pool */
    const float wde = c->depsl ? 1.0f : c->lambda_head;
    xmc_psl_loss_params lp = {c->kind, c->temperature, c->lambda};
    double lde = 0, lclf = 0, lbce = 0;
    xmc_psl_scores(u->D, B, u->D + (size_t)B * d, nl, d, u->S);
    if ((rc = xmc_psl_loss(p, u->S, &lp, &lde, u->dS, err)))
        return rc;
    scale(u->dS, (size_t)B * nl, wde);
    xmc_psl_scores_backward(u->D, B, u->D + (size_t)B * d, nl, d, u->dS, u->dD,
                            u->dD + (size_t)B * d, 0);
    xmc_psl_head_zero_grad(u->hd);
    if ((rc = xmc_psl_head_backward(u->hd, 0, u->H, u->dD, Be, u->dH, 0, err)))
        return rc;
    const int64_t warm = (int64_t)((double)c->warmup * (double)u->total_steps);
    xmc_schedule s_enc = {c->lr_enc, warm, u->total_steps, 0.0f};
    xmc_schedule s_head = {c->lr_head, warm, u->total_steps, 0.0f};
    xmc_schedule s_psi = {c->lr_psi, warm, u->total_steps, 0.0f};
    if (!c->depsl) {
        /* CLF: S_CLF = Φ_C(x) Ψ_{L_B}^T, the same pool and losses */
        if ((rc = xmc_psl_head_forward(u->hc, 0, u->H, B, 1, (uint64_t)t, u->C, err)) ||
            (rc = xmc_psl_table_gather(u->psi, p->labels, nl, u->P, err)))
            return rc;
        xmc_psl_scores(u->C, B, u->P, nl, d, u->S);
        xmc_psl_loss_params lc = {c->kind, c->temperature_clf, c->lambda};
        if ((rc = xmc_psl_loss(p, u->S, &lc, &lclf, u->dS, err)))
            return rc;
        if (c->bce > 0.0f && (rc = xmc_psl_bce(p, u->S, c->bce, &lbce, u->dS, err)))
            return rc;
        scale(u->dS, (size_t)B * nl, 1.0f - c->lambda_head);
        xmc_psl_scores_backward(u->C, B, u->P, nl, d, u->dS, u->dC, u->dP, 0);
        xmc_psl_head_zero_grad(u->hc);
        if ((rc = xmc_psl_head_backward(u->hc, 0, u->H, u->dC, B, u->dH, 1, err)))
            return rc;
        if ((rc = xmc_psl_table_update(u->psi, p->labels, nl, u->dP,
                                       xmc_schedule_lr(&s_psi, t), 0.0f, XMC_ADAM_DEFAULT_BETA1,
                                       XMC_ADAM_DEFAULT_BETA2, XMC_ADAM_DEFAULT_EPS, 0.0f, t,
                                       err)))
            return rc;
        xmc_psl_head_step(u->hc, xmc_schedule_lr(&s_head, t), XMC_ADAM_DEFAULT_BETA1,
                          XMC_ADAM_DEFAULT_BETA2, XMC_ADAM_DEFAULT_EPS, c->wd, t);
    }
    xmc_encoder_zero_grad(u->enc);
    if ((rc = xmc_encoder_backward(u->enc, u->dH, Be, err)))
        return rc;
    xmc_adam_hparams a = {xmc_schedule_lr(&s_enc, t), XMC_ADAM_DEFAULT_BETA1,
                          XMC_ADAM_DEFAULT_BETA2, XMC_ADAM_DEFAULT_EPS, c->wd, t};
    xmc_enc_optim_step(u->opt, u->enc, &a, &a);
    xmc_psl_head_step(u->hd, xmc_schedule_lr(&s_head, t), XMC_ADAM_DEFAULT_BETA1,
                      XMC_ADAM_DEFAULT_BETA2, XMC_ADAM_DEFAULT_EPS, c->wd, t);
    u->step = t;
    *loss = wde * lde + (c->depsl ? 0.0 : (1.0 - c->lambda_head) * (lclf + c->bce * lbce));
    return XMC_OK;
}

/* Steps of the whole run, for the learning-rate schedule: ceil(n/B) per
 * random epoch; a clustered epoch has one batch per leaf, and the balanced
 * tree has the fewest 2^t leaves with ceil(n / 2^t) <= B. */
static int64_t plan_steps(const xmc_unidec_config *c, int64_t n)
{
    int64_t rnd = (n + c->batch - 1) / c->batch, leaves = 1;
    while ((n + leaves - 1) / leaves > c->batch)
        leaves *= 2;
    int64_t total = 0;
    for (int e = 0; e < c->epochs; e++)
        total += c->cluster && n > c->batch && e >= c->mine_start ? leaves : rnd;
    return total;
}

/* The accounting split by what grows with L: the step's working set must
 * not (docs/unidec.md compares two L). While mining, L x d floats of label
 * embeddings (and the HNSW when L >= hnsw_min_labels) come on top. */
static void log_label_memory(const xmc_unidec *u)
{
    const double MB = 1048576.0;
    size_t fixed = u->st.encoder_bytes + u->st.optim_bytes + u->st.heads_bytes +
                   u->st.step_bytes + u->st.negs_bytes;
    size_t mine = sizeof(float) * (size_t)(u->seen ? u->n_seen : u->L) * (size_t)u->d;
    xmc_log(XMC_LOG_INFO,
            "%s memory: independent of L %.1f MB (encoder + optimizer + heads + step scratch "
            "+ mined lists); grows with L: Psi %.1f MB, prepared texts %.1f MB (%lld points + "
            "%lld labels), label embeddings while mining %.1f MB",
            u->cfg.depsl ? "depsl" : "unidec", fixed / MB, u->st.psi_bytes / MB,
            xmc_enc_data_bytes(u->comb) / MB, (long long)u->N, (long long)u->L, mine / MB);
}

static int ckpt_save(const xmc_unidec *u, int epochs_done, const xmc_unidec_ckpt *ck,
                     xmc_error *err);
static int ckpt_restore(xmc_unidec *u, const xmc_dataset *ds, const char *path, int *epochs_done,
                        xmc_error *err);

int xmc_unidec_train(const xmc_unidec_config *cfg, const xmc_dataset *train, xmc_unidec **out,
                     xmc_error *err)
{
    return xmc_unidec_train_ckpt(cfg, train, NULL, out, err);
}

int xmc_unidec_train_ckpt(const xmc_unidec_config *cfg, const xmc_dataset *train,
                          const xmc_unidec_ckpt *ck, xmc_unidec **out, xmc_error *err)
{
    xmc_unidec *u = NULL;
    int rc = create(cfg, train, &u, err), e0 = 0;
    if (rc)
        return rc;
    if (ck && ck->resume && (rc = ckpt_restore(u, train, ck->path, &e0, err))) {
        xmc_unidec_free(u);
        return rc;
    }
    const xmc_unidec_config *c = &u->cfg;
    int64_t *perm = xmc_malloc(sizeof(int64_t) * (size_t)u->n_train);
    int64_t *batch = xmc_malloc(sizeof(int64_t) * (size_t)c->batch);
    int64_t *corder = NULL;
    if (!perm || !batch) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "unidec: out of memory (permutation)");
        goto done;
    }
    u->total_steps = plan_steps(c, u->n_train);
    u->st.planned_steps = u->total_steps;
    xmc_log(XMC_LOG_INFO,
            "%s: %lld train rows, %lld labels; memory: encoder %.1f MB, optimizer %.1f MB, "
            "heads %.1f MB, Psi %.1f MB, step scratch %.1f MB, mined lists %.1f MB",
            c->depsl ? "depsl" : "unidec", (long long)u->n_train, (long long)u->L,
            u->st.encoder_bytes / 1048576.0, u->st.optim_bytes / 1048576.0,
            u->st.heads_bytes / 1048576.0, u->st.psi_bytes / 1048576.0,
            u->st.step_bytes / 1048576.0, u->st.negs_bytes / 1048576.0);
    log_label_memory(u);
    if (e0 > 0)
        xmc_log(XMC_LOG_INFO, "%s: resuming after epoch %d (step %lld)",
                c->depsl ? "depsl" : "unidec", e0, (long long)u->step);
    for (int e = e0; e < c->epochs; e++) {
        if (ck && ck->stop_after > 0 && e - e0 >= ck->stop_after)
            break;
        if (e >= c->mine_start && (e - c->mine_start) % c->tau == 0 &&
            (u->K > 0 || c->cluster)) {
            if ((rc = mine(u, train, err)))
                goto done;
        }
        int64_t nb = 0;
        xmc_rng r;
        xmc_rng_seed(&r, c->seed, 1000 + (uint64_t)e);
        if (u->clusters) {
            /* clustered batches: each leaf is a batch, leaves in random order */
            int64_t nc = u->clusters->n_clusters;
            xmc_free(corder);
            corder = xmc_malloc(sizeof(int64_t) * (size_t)nc);
            if (!corder) {
                rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "unidec: out of memory (clusters)");
                goto done;
            }
            for (int64_t q = 0; q < nc; q++)
                corder[q] = q;
            xmc_rng_shuffle_i64(&r, corder, nc);
            int64_t at = 0;
            for (int64_t q = 0; q < nc; q++)
                for (int64_t j = u->clusters->offsets[corder[q]];
                     j < u->clusters->offsets[corder[q] + 1]; j++)
                    perm[at++] = u->order[u->clusters->perm[j]];
        } else {
            memcpy(perm, u->order, sizeof(int64_t) * (size_t)u->n_train);
            xmc_rng_shuffle_i64(&r, perm, u->n_train);
        }
        double sum = 0, t0 = xmc_now();
        uint64_t allocs0 = xmc_mem_alloc_count();
        int64_t at = 0;
        int64_t q = 0;
        while (at < u->n_train) {
            int B;
            if (u->clusters) {
                int64_t cl = corder[q++];
                B = (int)(u->clusters->offsets[cl + 1] - u->clusters->offsets[cl]);
                if (B == 0)
                    continue;
            } else
                B = (int)(u->n_train - at < c->batch ? u->n_train - at : c->batch);
            memcpy(batch, perm + at, sizeof(int64_t) * (size_t)B);
            double l;
            if ((rc = step(u, train->Y, batch, B, &l, err)))
                goto done;
            sum += l;
            nb++;
            at += B;
        }
        u->st.step_allocs += xmc_mem_alloc_count() - allocs0;
        u->st.train_s += xmc_now() - t0;
        double mean = nb ? sum / nb : 0;
        if (e == 0)
            u->st.loss_first = mean;
        u->st.loss_last = mean;
        xmc_log(XMC_LOG_INFO, "%s epoch %d/%d: loss %.4f, %lld steps, %.1f s",
                c->depsl ? "depsl" : "unidec", e + 1, c->epochs, mean, (long long)nb,
                xmc_now() - t0);
        u->st.epochs_done = e + 1;
        u->st.steps = u->step;
        double tc = xmc_now();
        if (ck && ck->path && (rc = ckpt_save(u, e + 1, ck, err)))
            goto done;
        u->st.ckpt_s += xmc_now() - tc;
    }
    u->st.steps = u->step;
done:
    xmc_free(perm);
    xmc_free(batch);
    xmc_free(corder);
    if (rc) {
        xmc_unidec_free(u);
        return rc;
    }
    *out = u;
    return XMC_OK;
}

/* Label texts as prepared encoder input (for zero-shot labels). */
static int prepare_texts(xmc_unidec *u, const xmc_texts *t, xmc_enc_data **out, xmc_error *err)
{
    xmc_dataset tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.n = t->n;
    tmp.texts = (xmc_texts *)t;
    return xmc_encoder_prepare(u->enc, &tmp, out, err);
}

int xmc_unidec_predict(xmc_unidec *u, const xmc_dataset *ds, const xmc_texts *label_texts,
                       int k, int which, int ef, xmc_csr **out, xmc_error *err)
{
    *out = NULL;
    if (label_texts && label_texts->n < u->L)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "unidec predict: %lld label texts, the model was trained on %lld labels",
                       (long long)label_texts->n, (long long)u->L);
    const int64_t L = label_texts ? label_texts->n : u->L;
    xmc_enc_data *dl = NULL;
    xmc_hnsw *index = NULL;
    if (u->cfg.depsl)
        which = XMC_UNIDEC_SCORE_DE;
    if (which < 1 || which > 3 || k < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "unidec predict: head %d, k %d", which, k);
    if (k > L)
        k = (int)L;
    const int d = u->d;
    const int64_t dd = which == XMC_UNIDEC_SCORE_BOTH ? 2 * d : d;
    xmc_enc_data *dt = NULL;
    float *LE = NULL, *QE = NULL, *sims = NULL;
    int32_t *ids = NULL, *cols = NULL;
    int64_t *rr = NULL;
    int rc = xmc_encoder_prepare(u->enc, ds, &dt, err);
    if (!rc && label_texts)
        rc = prepare_texts(u, label_texts, &dl, err);
    if (rc) {
        xmc_enc_data_free(dt);
        return rc;
    }
    const int64_t n = ds->n;
    LE = xmc_calloc((size_t)L * (size_t)dd, sizeof(float));
    QE = xmc_malloc(sizeof(float) * (size_t)(n > 0 ? n : 1) * (size_t)dd);
    ids = xmc_malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1) * (size_t)k);
    sims = xmc_malloc(sizeof(float) * (size_t)(n > 0 ? n : 1) * (size_t)k);
    rr = xmc_malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1) * (size_t)k);
    cols = xmc_malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1) * (size_t)k);
    if (!LE || !QE || !ids || !sims || !rr || !cols) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "unidec predict: out of memory");
        goto done;
    }
    int64_t col = 0;
    if (which & XMC_UNIDEC_SCORE_DE) {
        rc = dl ? embed(u, dl, 0, NULL, L, XMC_UNIDEC_SCORE_DE, LE, dd, 0, err)
                : embed(u, u->comb, u->N, NULL, L, XMC_UNIDEC_SCORE_DE, LE, dd, 0, err);
        if (rc || (rc = embed(u, dt, 0, NULL, n, XMC_UNIDEC_SCORE_DE, QE, dd, 0, err)))
            goto done;
        col = d;
    }
    if (which & XMC_UNIDEC_SCORE_CLF) {
        if ((rc = embed(u, dt, 0, NULL, n, XMC_UNIDEC_SCORE_CLF, QE, dd, col, err)))
            goto done;
        for (int64_t l = 0; l < u->L; l++) {
            const float *w = u->psi->w + (size_t)l * d;
            double s = 0;
            for (int j = 0; j < d; j++)
                s += (double)w[j] * w[j];
            float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
            for (int j = 0; j < d; j++)
                LE[(size_t)l * dd + col + j] = w[j] * inv;
        }
    }
    if (ef > 0) {
        xmc_hnsw_params hp;
        xmc_hnsw_params_default(&hp);
        hp.metric = XMC_METRIC_IP;
        hp.seed = u->cfg.seed;
        if ((rc = xmc_hnsw_build(&index, LE, L, dd, &hp, err)))
            goto done;
    }
    if (n > 0 && (rc = xmc_psl_mine(LE, L, QE, n, (int)dd, NULL, k, index, ef, ids, sims, err)))
        goto done;
    int64_t nnz = 0;
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            if (ids[i * k + j] >= 0) {
                rr[nnz] = i;
                cols[nnz] = ids[i * k + j];
                sims[nnz] = sims[i * k + j];
                nnz++;
            }
    rc = xmc_csr_from_triplets(n, L, nnz, rr, cols, sims, out, err);
done:
    xmc_hnsw_free(index);
    xmc_enc_data_free(dt);
    xmc_enc_data_free(dl);
    xmc_free(LE);
    xmc_free(QE);
    xmc_free(ids);
    xmc_free(sims);
    xmc_free(rr);
    xmc_free(cols);
    return rc;
}

/* ------------------------------------------------------------- save / load */

#define UNIDEC_MAGIC 0x4d445558u /* "XUDM" */
#define UNIDEC_VERSION 1u

static int wr(FILE *f, uint32_t *crc, const void *p, size_t n)
{
    *crc = xmc_crc32(*crc, p, n);
    return fwrite(p, 1, n, f) == n;
}

static int rd(FILE *f, uint32_t *crc, void *p, size_t n)
{
    if (fread(p, 1, n, f) != n)
        return 0;
    *crc = xmc_crc32(*crc, p, n);
    return 1;
}

int xmc_unidec_save(const xmc_unidec *u, const char *path, xmc_error *err)
{
    xmc_outfile o;
    int rc = xmc_outfile_open(&o, path, err);
    if (rc)
        return rc;
    FILE *f = o.fp;
    uint32_t crc = 0, magic = UNIDEC_MAGIC, version = UNIDEC_VERSION;
    uint32_t cs = (uint32_t)sizeof u->cfg;
    int64_t L = u->L, step = u->step;
    int ok = wr(f, &crc, &magic, 4) && wr(f, &crc, &version, 4) && wr(f, &crc, &cs, 4) &&
             wr(f, &crc, &u->cfg, sizeof u->cfg) && wr(f, &crc, &L, 8) && wr(f, &crc, &step, 8);
    for (int64_t l = 0; ok && l < L; l++) {
        const char *t = xmc_texts_get(u->ltexts, l);
        uint32_t len = (uint32_t)strlen(t);
        ok = wr(f, &crc, &len, 4) && wr(f, &crc, t, len);
    }
    uint32_t c = crc;
    ok = ok && fwrite(&c, 4, 1, f) == 1;
    if (!ok) {
        xmc_outfile_abort(&o);
        return XMC_ERR(err, XMC_EIO, path, 0, "unidec: write failed");
    }
    if ((rc = xmc_encoder_save(u->enc, f, path, err)) ||
        (rc = xmc_psl_head_save(u->hd, f, path, err)) ||
        (!u->cfg.depsl && ((rc = xmc_psl_head_save(u->hc, f, path, err)) ||
                           (rc = xmc_psl_table_save(u->psi, f, path, err))))) {
        xmc_outfile_abort(&o);
        return rc;
    }
    return xmc_outfile_commit(&o, err);
}

int xmc_unidec_load(const char *path, xmc_unidec **out, xmc_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot open the model file");
    xmc_unidec *u = xmc_calloc(1, sizeof *u);
    char **strs = NULL;
    int64_t nstr = 0;
    int rc = XMC_OK;
    if (!u) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "unidec: out of memory");
        goto done;
    }
    uint32_t crc = 0, magic, version, cs, want;
    int64_t L, step;
    if (!rd(f, &crc, &magic, 4) || !rd(f, &crc, &version, 4) || !rd(f, &crc, &cs, 4) ||
        magic != UNIDEC_MAGIC || version != UNIDEC_VERSION || cs != sizeof u->cfg ||
        !rd(f, &crc, &u->cfg, sizeof u->cfg) || !rd(f, &crc, &L, 8) || !rd(f, &crc, &step, 8) ||
        L < 1 || L > INT32_MAX || u->cfg.dim < 1 || u->cfg.dim > 65536) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0,
                     "not a unidec model of this version (bad magic, version or header)");
        goto done;
    }
    strs = xmc_calloc((size_t)L, sizeof(char *));
    if (!strs) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "unidec: out of memory (label texts)");
        goto done;
    }
    for (nstr = 0; nstr < L; nstr++) {
        uint32_t len;
        if (!rd(f, &crc, &len, 4) || len > (1u << 24) || !(strs[nstr] = xmc_malloc(len + 1)) ||
            !rd(f, &crc, strs[nstr], len)) {
            rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "truncated or bad label texts");
            nstr += strs[nstr] != NULL;
            goto done;
        }
        strs[nstr][len] = '\0';
    }
    if (fread(&want, 4, 1, f) != 1 || want != crc) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "header checksum mismatch");
        goto done;
    }
    u->L = L;
    u->N = 0; /* comb holds only the label texts: label l is row l */
    u->step = step;
    u->d = u->cfg.dim;
    if ((rc = xmc_texts_create((const char *const *)strs, L, &u->ltexts, err)) ||
        (rc = xmc_encoder_load(f, path, &u->enc, err)))
        goto done;
    u->max_enc = u->enc->cfg.max_batch;
    if ((rc = xmc_psl_head_load(f, path, u->max_enc, &u->hd, err)) ||
        (!u->cfg.depsl && ((rc = xmc_psl_head_load(f, path, u->max_enc, &u->hc, err)) ||
                           (rc = xmc_psl_table_load(f, path, &u->psi, err)))))
        goto done;
    if (u->hd->cfg.d_out != u->d || (u->psi && (u->psi->L != L || u->psi->d != u->d))) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "head / table shapes disagree with the config");
        goto done;
    }
    if ((rc = prepare_texts(u, u->ltexts, &u->comb, err)))
        goto done;
    u->erows = xmc_malloc(sizeof(int64_t) * (size_t)u->max_enc);
    u->H = xmc_malloc(sizeof(float) * (size_t)u->max_enc * (size_t)u->enc->dim);
    u->D = xmc_malloc(sizeof(float) * (size_t)u->max_enc * (size_t)u->d);
    if (!u->erows || !u->H || !u->D)
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "unidec: out of memory (predict scratch)");
done:
    fclose(f);
    for (int64_t i = 0; i < nstr; i++)
        xmc_free(strs[i]);
    xmc_free(strs);
    if (rc) {
        xmc_unidec_free(u);
        return rc;
    }
    *out = u;
    return XMC_OK;
}

/* ------------------------------------------------ embeddings for an index */

int64_t xmc_unidec_n_labels(const xmc_unidec *u) { return u->L; }
int xmc_unidec_dim(const xmc_unidec *u) { return u->d; }
int xmc_unidec_is_depsl(const xmc_unidec *u) { return u->cfg.depsl; }
const xmc_texts *xmc_unidec_label_texts(const xmc_unidec *u) { return u->ltexts; }

static int check_which(const xmc_unidec *u, int which, xmc_error *err)
{
    if (which < XMC_UNIDEC_SCORE_DE || which > XMC_UNIDEC_SCORE_BOTH ||
        (u->cfg.depsl && which != XMC_UNIDEC_SCORE_DE))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "unidec: head %d (%s has %s)", which,
                       u->cfg.depsl ? "depsl" : "unidec",
                       u->cfg.depsl ? "only the DE head" : "de = 1, clf = 2, both = 3");
    return XMC_OK;
}

int xmc_unidec_embed_labels(xmc_unidec *u, const xmc_texts *t, int64_t l0, int which, float *out,
                            xmc_error *err)
{
    int rc = check_which(u, which, err);
    if (rc)
        return rc;
    const int64_t n = t ? t->n : u->L;
    if (l0 < 0 || (!t && l0 != 0))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "unidec embed: first label %lld", (long long)l0);
    const int d = u->d;
    const int64_t dd = which == XMC_UNIDEC_SCORE_BOTH ? 2 * d : d;
    int64_t col = 0;
    if (which & XMC_UNIDEC_SCORE_DE) {
        xmc_enc_data *dl = NULL;
        if (t && (rc = prepare_texts(u, t, &dl, err)))
            return rc;
        /* the training labels' texts are already prepared (rows N.. of comb) */
        rc = embed(u, dl ? dl : u->comb, dl ? 0 : u->N, NULL, n, XMC_UNIDEC_SCORE_DE, out, dd, 0,
                   err);
        xmc_enc_data_free(dl);
        if (rc)
            return rc;
        col = d;
    }
    if (which & XMC_UNIDEC_SCORE_CLF)
        for (int64_t i = 0; i < n; i++) {
            float *dst = out + (size_t)i * (size_t)dd + col;
            const int64_t l = l0 + i;
            /* a label added after training has no Ψ row: its CLF half is 0 */
            const float *w = l < u->L ? u->psi->w + (size_t)l * d : NULL;
            double s = 0;
            for (int j = 0; w && j < d; j++)
                s += (double)w[j] * w[j];
            float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
            for (int j = 0; j < d; j++)
                dst[j] = w ? w[j] * inv : 0.0f;
        }
    return XMC_OK;
}

int xmc_unidec_embed_queries(xmc_unidec *u, const xmc_dataset *ds, int which, float *out,
                             xmc_error *err)
{
    int rc = check_which(u, which, err);
    if (rc)
        return rc;
    xmc_enc_data *dt = NULL;
    if ((rc = xmc_encoder_prepare(u->enc, ds, &dt, err)))
        return rc;
    const int d = u->d;
    const int64_t dd = which == XMC_UNIDEC_SCORE_BOTH ? 2 * d : d;
    int64_t col = 0;
    if (which & XMC_UNIDEC_SCORE_DE) {
        rc = embed(u, dt, 0, NULL, ds->n, XMC_UNIDEC_SCORE_DE, out, dd, 0, err);
        col = d;
    }
    if (!rc && (which & XMC_UNIDEC_SCORE_CLF))
        rc = embed(u, dt, 0, NULL, ds->n, XMC_UNIDEC_SCORE_CLF, out, dd, col, err);
    xmc_enc_data_free(dt);
    return rc;
}

/* ------------------------------------------------------------- checkpoints */

/* One file: a checksummed header (config, counters, stats, caller note),
 * then the encoder, its optimizer moments, the heads (moments included) and
 * Ψ (moments included) in their own formats, then the mined lists and the
 * clusters, each block with its CRC-32. Everything a next epoch reads is
 * here; the sampler and batch orders are functions of (seed, step / epoch). */
#define UNIDEC_CKPT_MAGIC 0x43445558u /* "XUDC" */
#define UNIDEC_CKPT_VERSION 1u

typedef struct ckpt_hdr {
    uint32_t magic, version, cfg_size, stats_size;
    xmc_unidec_config cfg;
    int32_t epochs_done, mined, has_clusters, depth;
    int64_t step, N, L, K, n_train, n_clusters;
    xmc_unidec_stats st;
    uint32_t note_n;
} ckpt_hdr;

static int ckpt_save(const xmc_unidec *u, int epochs_done, const xmc_unidec_ckpt *ck,
                     xmc_error *err)
{
    const char *path = ck->path;
    ckpt_hdr h;
    memset(&h, 0, sizeof h); /* padding too: the file is a function of the state */
    h.magic = UNIDEC_CKPT_MAGIC;
    h.version = UNIDEC_CKPT_VERSION;
    h.cfg_size = (uint32_t)sizeof h.cfg;
    h.stats_size = (uint32_t)sizeof h.st;
    memcpy(&h.cfg, &u->cfg, sizeof h.cfg);
    h.epochs_done = epochs_done;
    h.mined = u->mined;
    h.has_clusters = u->clusters != NULL;
    h.depth = u->clusters ? u->clusters->depth : 0;
    h.step = u->step;
    h.N = u->N;
    h.L = u->L;
    h.K = u->K;
    h.n_train = u->n_train;
    h.n_clusters = u->clusters ? u->clusters->n_clusters : 0;
    h.st = u->st;
    h.st.train_s = h.st.mine_s = h.st.ckpt_s = 0; /* wall times: not part of the state */
    h.note_n = ck->note ? (uint32_t)strlen(ck->note) : 0;
    xmc_outfile o;
    int rc = xmc_outfile_open(&o, path, err);
    if (rc)
        return rc;
    FILE *f = o.fp;
    uint32_t crc = 0;
    int ok = wr(f, &crc, &h, sizeof h) && (h.note_n == 0 || wr(f, &crc, ck->note, h.note_n)) &&
             fwrite(&crc, 4, 1, f) == 1;
    if (ok && ((rc = xmc_encoder_save(u->enc, f, path, err)) ||
               (rc = xmc_enc_optim_save(u->opt, f, path, err)) ||
               (rc = xmc_psl_head_save(u->hd, f, path, err)) ||
               (!u->cfg.depsl && ((rc = xmc_psl_head_save(u->hc, f, path, err)) ||
                                  (rc = xmc_psl_table_save(u->psi, f, path, err)))))) {
        xmc_outfile_abort(&o);
        return rc;
    }
    crc = 0;
    if (ok && u->mined)
        ok = wr(f, &crc, u->negs, sizeof(int32_t) * (size_t)u->N * (size_t)u->K);
    if (ok && u->clusters)
        ok = wr(f, &crc, u->clusters->perm, sizeof(int64_t) * (size_t)u->clusters->n) &&
             wr(f, &crc, u->clusters->offsets, sizeof(int64_t) * (size_t)(h.n_clusters + 1));
    ok = ok && fwrite(&crc, 4, 1, f) == 1;
    if (!ok) {
        xmc_outfile_abort(&o);
        return XMC_ERR(err, XMC_EIO, path, 0, "unidec checkpoint: write failed");
    }
    return xmc_outfile_commit(&o, err);
}

static int ckpt_header(FILE *f, const char *path, ckpt_hdr *h, char **note, xmc_error *err)
{
    uint32_t crc = 0, want;
    if (note)
        *note = NULL;
    if (!rd(f, &crc, h, sizeof *h) || h->magic != UNIDEC_CKPT_MAGIC ||
        h->version != UNIDEC_CKPT_VERSION || h->cfg_size != sizeof h->cfg ||
        h->stats_size != sizeof h->st || h->note_n > (1u << 20))
        return XMC_ERR(err, XMC_ECORRUPT, path, 0,
                       "not a unidec checkpoint of this version (bad magic, version or sizes)");
    char *nt = xmc_malloc((size_t)h->note_n + 1);
    if (!nt)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "unidec checkpoint: out of memory");
    if (!rd(f, &crc, nt, h->note_n) || fread(&want, 4, 1, f) != 1 || want != crc) {
        xmc_free(nt);
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "checkpoint header checksum mismatch");
    }
    nt[h->note_n] = '\0';
    if (note)
        *note = nt;
    else
        xmc_free(nt);
    return XMC_OK;
}

int xmc_unidec_ckpt_info(const char *path, xmc_unidec_config *cfg, int *epochs_done, char **note,
                         xmc_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot open the checkpoint");
    ckpt_hdr h;
    int rc = ckpt_header(f, path, &h, note, err);
    fclose(f);
    if (rc)
        return rc;
    if (cfg)
        memcpy(cfg, &h.cfg, sizeof *cfg); /* padding too (see create) */
    if (epochs_done)
        *epochs_done = h.epochs_done;
    return XMC_OK;
}

/* Replace u's freshly created state by the checkpoint's. u was created
 * from the same config and data; the encoder is reloaded, so the prepared
 * texts (which belong to it) are prepared again. */
static int ckpt_restore(xmc_unidec *u, const xmc_dataset *ds, const char *path, int *epochs_done,
                        xmc_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot open the checkpoint");
    ckpt_hdr h;
    xmc_encoder *enc = NULL;
    xmc_psl_head *hd = NULL, *hc = NULL;
    xmc_psl_table *psi = NULL;
    xmc_clusters *cl = NULL;
    int rc = ckpt_header(f, path, &h, NULL, err);
    if (rc)
        goto done;
    if (memcmp(&h.cfg, &u->cfg, sizeof h.cfg) != 0) {
        rc = XMC_ERR(err, XMC_EINVAL, path, 0,
                     "the checkpoint was written with another configuration");
        goto done;
    }
    if (h.N != u->N || h.L != u->L || h.K != u->K || h.n_train != u->n_train) {
        rc = XMC_ERR(err, XMC_EINVAL, path, 0,
                     "the checkpoint is for %lld rows (%lld with labels) and %lld labels; the "
                     "training data has %lld (%lld) and %lld",
                     (long long)h.N, (long long)h.n_train, (long long)h.L, (long long)u->N,
                     (long long)u->n_train, (long long)u->L);
        goto done;
    }
    if (h.epochs_done < 1 || h.epochs_done > h.cfg.epochs || h.step < 0 ||
        (h.has_clusters && (h.n_clusters < 1 || h.n_clusters > u->n_train))) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "checkpoint counters out of range");
        goto done;
    }
    if ((rc = xmc_encoder_load(f, path, &enc, err)))
        goto done;
    /* the optimizer and the prepared texts belong to the encoder */
    xmc_enc_optim_free(u->opt);
    u->opt = NULL;
    xmc_encoder_free(u->enc);
    u->enc = enc;
    enc = NULL;
    if ((rc = xmc_enc_optim_create(u->enc, XMC_TABLE_ADAM, 0, &u->opt, err)) ||
        (rc = xmc_enc_optim_load(u->opt, f, path, err)) ||
        (rc = xmc_psl_head_load(f, path, u->max_enc, &hd, err)) ||
        (!u->cfg.depsl && ((rc = xmc_psl_head_load(f, path, u->max_enc, &hc, err)) ||
                           (rc = xmc_psl_table_load(f, path, &psi, err)))))
        goto done;
    if (hd->cfg.d_out != u->d || (psi && (psi->L != u->L || psi->d != u->d))) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "checkpoint head / table shapes disagree");
        goto done;
    }
    uint32_t crc = 0, want;
    int ok = 1;
    if (h.mined)
        ok = rd(f, &crc, u->negs, sizeof(int32_t) * (size_t)u->N * (size_t)u->K);
    if (ok && h.has_clusters) {
        cl = xmc_calloc(1, sizeof *cl);
        if (cl) {
            cl->n = u->n_train;
            cl->depth = h.depth;
            cl->n_clusters = h.n_clusters;
            cl->perm = xmc_malloc(sizeof(int64_t) * (size_t)cl->n);
            cl->tree = xmc_malloc(sizeof(int64_t) * (size_t)(cl->n_clusters + 1));
            cl->offsets = cl->tree; /* freed with tree by xmc_clusters_free */
        }
        if (!cl || !cl->perm || !cl->tree) {
            rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "unidec checkpoint: out of memory");
            goto done;
        }
        ok = rd(f, &crc, cl->perm, sizeof(int64_t) * (size_t)cl->n) &&
             rd(f, &crc, cl->offsets, sizeof(int64_t) * (size_t)(cl->n_clusters + 1));
    }
    if (!ok || fread(&want, 4, 1, f) != 1 || want != crc) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "truncated checkpoint or checksum mismatch");
        goto done;
    }
    if (cl) { /* indices used to address arrays: validate */
        for (int64_t i = 0; ok && i < cl->n; i++)
            ok = cl->perm[i] >= 0 && cl->perm[i] < cl->n;
        for (int64_t c = 0; ok && c < cl->n_clusters; c++)
            ok = cl->offsets[c] >= 0 && cl->offsets[c] <= cl->offsets[c + 1] &&
                 cl->offsets[c + 1] - cl->offsets[c] <= u->cfg.batch;
        if (!ok || cl->offsets[0] != 0 || cl->offsets[cl->n_clusters] != cl->n) {
            rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "checkpoint clusters are inconsistent");
            goto done;
        }
    }
    for (int64_t i = 0; h.mined && i < u->N * u->K; i++)
        if (u->negs[i] < -1 || u->negs[i] >= u->L) {
            rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "checkpoint negative %lld out of range",
                         (long long)i);
            goto done;
        }
    /* prepared rows size the new encoder's scratch: prepare them again */
    xmc_enc_data_free(u->comb);
    xmc_texts_free(u->ltexts);
    u->comb = NULL;
    u->ltexts = NULL;
    if ((rc = prepare_combined(u, ds, err)))
        goto done;
    xmc_psl_head_free(u->hd);
    xmc_psl_head_free(u->hc);
    xmc_psl_table_free(u->psi);
    u->hd = hd;
    u->hc = hc;
    u->psi = psi;
    hd = hc = NULL;
    psi = NULL;
    xmc_clusters_free(u->clusters);
    u->clusters = cl;
    cl = NULL;
    u->mined = h.mined;
    u->step = h.step;
    u->st = h.st;
    *epochs_done = h.epochs_done;
done:
    fclose(f);
    xmc_encoder_free(enc);
    xmc_psl_head_free(hd);
    xmc_psl_head_free(hc);
    xmc_psl_table_free(psi);
    xmc_clusters_free(cl);
    return rc;
}
