/* A model's kNN memory (include/xmc/neighbors.h): built from the training
 * rows once training is complete, saved in the model directory, and blended
 * into every prediction, exact or --ann.
 *
 * Blend: score_l = (1 - a) sigmoid(x_l) + a K_l, K from the k nearest
 * training rows. Exact top-k of the blend without scoring all labels: a
 * label outside q's neighbours' labels has K_l = 0, so its score grows with
 * x_l alone and only the classifier's own top k can reach the top k. The
 * candidates are therefore the classifier's top k plus the neighbours'
 * labels, whose logits are computed directly (xmc_ova_score_labels).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "xmc/kernels.h"
#include "xmc/neighbors.h"

#define MB(x) ((double)(x) / 1048576.0)

typedef struct cand {
    int32_t l;
    float s;
} cand;

/* Higher score first, ties to the lower label (xmc_ova_topk's order). */
static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? 1 : -1;
    return (x->l > y->l) - (x->l < y->l);
}

static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

int xmc_model_blend_neighbors(xmc_model *m, const float *E, int B, int k, int32_t *labels,
                              float *scores, xmc_error *err)
{
    if (!m->nbr || !m->use_nbr || B < 1)
        return XMC_OK;
    if (!m->head)
        return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0, "kNN memory: needs the dense head");
    const float a = m->cfg.knn_weight;
    xmc_csr *K = NULL;
    int rc = xmc_neighbors_scores(m->nbr, E, B, m->cfg.knn, m->cfg.knn_temp, &K, err);
    if (rc)
        return rc;
    int64_t maxk = 0;
    for (int i = 0; i < B; i++)
        if (K->indptr[i + 1] - K->indptr[i] > maxk)
            maxk = K->indptr[i + 1] - K->indptr[i];
    cand *c = xmc_malloc((size_t)(k + maxk) * sizeof *c);
    int32_t *extra = xmc_malloc((size_t)(maxk > 0 ? maxk : 1) * sizeof *extra);
    float *ex = xmc_malloc((size_t)(maxk > 0 ? maxk : 1) * sizeof *ex);
    if (!c || !extra || !ex) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (kNN blend)");
        goto out;
    }
    const int dim = m->enc->dim;
    for (int i = 0; i < B && !rc; i++) {
        int32_t *lo = labels + (size_t)i * k;
        float *so = scores + (size_t)i * k;
        const int64_t k0 = K->indptr[i], k1 = K->indptr[i + 1];
        int n = 0, ne = 0;
        for (int j = 0; j < k && lo[j] >= 0; j++) {
            int64_t p = xmc_lower_bound_i32(K->indices, k0, k1, lo[j]);
            float kl = p < k1 && K->indices[p] == lo[j] ? K->values[p] : 0.0f;
            c[n++] = (cand){lo[j], (1 - a) * sigmoid(so[j]) + a * kl};
        }
        for (int64_t p = k0; p < k1; p++) { /* neighbours' labels the classifier left out */
            int in = 0;
            for (int j = 0; j < k && lo[j] >= 0 && !in; j++)
                in = lo[j] == K->indices[p];
            if (!in)
                extra[ne++] = K->indices[p];
        }
        if (ne && (rc = xmc_ova_score_labels(m->head, E + (size_t)i * dim, extra, ne, ex, err)))
            break;
        for (int j = 0, p = 0; j < ne; j++) {
            while (K->indices[k0 + p] != extra[j]) /* both ascending */
                p++;
            c[n++] = (cand){extra[j], (1 - a) * sigmoid(ex[j]) + a * K->values[k0 + p]};
        }
        qsort(c, (size_t)n, sizeof *c, cmp_cand);
        for (int j = 0; j < k; j++) {
            lo[j] = j < n ? c[j].l : -1;
            so[j] = j < n ? c[j].s : -INFINITY;
        }
    }
out:
    xmc_csr_free(K);
    xmc_free(c);
    xmc_free(extra);
    xmc_free(ex);
    return rc;
}

void xmc_model_use_neighbors(xmc_model *m, int on) { m->use_nbr = on != 0; }
const xmc_neighbors *xmc_model_neighbors(const xmc_model *m) { return m->nbr; }

int model_knn_auto(const xmc_train_config *c, const char *encoder, int64_t n_train,
                   int dist_active)
{
    if (c->knn >= 0)
        return c->knn;
    return !strcmp(c->recipe, "renee") && !dist_active &&
                   (!strcmp(encoder, "sparse") || !strcmp(encoder, "bag")) &&
                   n_train <= XMC_TRAIN_KNN_AUTO_MAX_ROWS
               ? XMC_TRAIN_DEFAULT_KNN
               : 0;
}

/* The memory of m from ds's labelled rows (embedded as prediction does). */
static int build(xmc_model *m, const xmc_dataset *ds, xmc_error *err)
{
    xmc_enc_data *d = NULL;
    xmc_csr *Y = NULL;
    float *E = NULL;
    int64_t *rows = NULL, n = 0;
    const int dim = m->enc->dim;
    int rc = xmc_model_prepare(m, ds, &d, err);
    if (rc)
        return rc;
    rows = xmc_malloc((size_t)(ds->n > 0 ? ds->n : 1) * sizeof *rows);
    if (!rows) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (kNN memory)");
        goto out;
    }
    for (int64_t i = 0; i < ds->n; i++)
        if (ds->Y->indptr[i + 1] > ds->Y->indptr[i])
            rows[n++] = i;
    E = xmc_malloc((size_t)(n > 0 ? n : 1) * (size_t)dim * sizeof *E);
    if (!E) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (kNN memory of %lld x %d)",
                     (long long)n, dim);
        goto out;
    }
    /* Labelled rows come in runs: embed each run as one range. */
    for (int64_t i = 0; i < n && !rc;) {
        int64_t j = i + 1;
        while (j < n && rows[j] == rows[j - 1] + 1)
            j++;
        rc = xmc_model_embed(m, d, rows[i], j - i, E + (size_t)i * (size_t)dim, err);
        i = j;
    }
    if (!rc && !(rc = xmc_csr_select_rows(ds->Y, rows, n, &Y, err))) {
        Y->ncols = m->n_labels;
        rc = xmc_neighbors_create(E, n, dim, Y, m->n_labels, &m->nbr, err);
    }
out:
    xmc_enc_data_free(d);
    xmc_csr_free(Y);
    xmc_free(E);
    xmc_free(rows);
    return rc;
}

int model_neighbors_finish(xmc_model *m, const xmc_dataset *prop_train, const xmc_dataset *test,
                           const char *dir, xmc_error *err)
{
    if (m->cfg.knn <= 0 || m->nbr || m->cfg.ensemble_member >= 0 ||
        m->epochs_done < m->cfg.epochs || model_sharded(m)) /* (refused at create) */
        return XMC_OK;
    double t0 = xmc_now();
    int rc = build(m, prop_train, err);
    if (!rc && dir)
        rc = model_save_neighbors(m, dir, err);
    if (rc)
        return rc;
    m->use_nbr = 1;
    xmc_log(XMC_LOG_INFO,
            "kNN memory: %lld training rows x %d (%.1f MB) in %.1fs; prediction blends "
            "%.2f x the labels of the %d nearest (temperature %.2f) with the classifier",
            (long long)xmc_neighbors_rows(m->nbr), xmc_neighbors_dim(m->nbr),
            MB(xmc_neighbors_bytes(m->nbr)), xmc_now() - t0, m->cfg.knn_weight, m->cfg.knn,
            m->cfg.knn_temp);
    return test ? model_log_test(m, prop_train, test, "with the kNN memory", err) : XMC_OK;
}
