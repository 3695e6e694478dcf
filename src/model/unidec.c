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
    int64_t n = ds->n + lt->n;
    const char **strs = xmc_malloc(sizeof(char *) * (size_t)n);
    if (!strs)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "unidec: out of memory (texts)");
    for (int64_t i = 0; i < ds->n; i++)
        strs[i] = xmc_texts_get(ds->texts, i);
    for (int64_t l = 0; l < lt->n; l++)
        strs[ds->n + l] = xmc_texts_get(lt, l);
    xmc_texts *t = NULL;
    int rc = xmc_texts_create(strs, n, &t, err);
    if (!rc)
        rc = xmc_texts_create(strs + ds->n, lt->n, &u->ltexts, err);
    xmc_free(strs);
    if (rc)
        return rc;
    xmc_dataset tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.n = n;
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
    u->cfg = *c;
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
    xmc_encoder_config_default(&ec, "bag");
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
    if ((rc = xmc_enc_optim_create(u->enc, &u->opt, err)))
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
            for (int64_t e = 0; e < xmc_csr_nnz(Ysub); e++) {
                int64_t lo = 0, hi = u->n_seen;
                while (lo < hi) {
                    int64_t mid = lo + (hi - lo) / 2;
                    if (u->seen[mid] < Ysub->indices[e])
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                Ysub->indices[e] = (int32_t)lo;
            }
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

int xmc_unidec_train(const xmc_unidec_config *cfg, const xmc_dataset *train, xmc_unidec **out,
                     xmc_error *err)
{
    xmc_unidec *u = NULL;
    int rc = create(cfg, train, &u, err);
    if (rc)
        return rc;
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
    for (int e = 0; e < c->epochs; e++) {
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
