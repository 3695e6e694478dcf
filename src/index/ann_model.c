/* ANN inference for trained models (include/xmc/ann.h): an HNSW index over
 * the classifier rows, candidates re-scored with the model's own score.
 *
 * Three index kinds (ann.h says when to use which): the MIPS-to-L2
 * reduction (default: exact max inner product), Renee's L2-normalised rows
 * (cosine), and plain inner product. Re-scoring: the index returns
 * max(ef, k) candidates with their distance, from which E . w_l follows
 * exactly (cosine: (1 - dist) |E| |w_l|, with |w_l| kept here, L floats;
 * MIPS: (|E|^2 + phi^2 - dist) / 2), and the best k by that score are kept.
 *
 * Memory: the index (hnsw.h: ~4 d + 8 M + 20 bytes per label for fp32),
 * |w_l| (L floats), and per call one batch of embeddings and candidates
 * (max_batch x (d + 3 kc) words). Opening copies W once (L x d floats) to
 * checksum it and, when no stored index matches, to build one.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "xmc/ann.h"

struct xmc_ann {
    xmc_hnsw *h;
    float *wnorm; /* (L) |w_l| */
    int64_t L;
    int dim;
    int metric; /* XMC_METRIC_COSINE (Renee), XMC_METRIC_L2 (MIPS reduction) or _IP */
    double phi2; /* L2: max_l |w_l|^2 */
};

void xmc_ann_free(xmc_ann *a)
{
    if (!a)
        return;
    xmc_hnsw_free(a->h);
    xmc_free(a->wnorm);
    xmc_free(a);
}

const xmc_hnsw *xmc_ann_index(const xmc_ann *a) { return a ? a->h : NULL; }

int xmc_ann_open(const xmc_model *m, const char *dir, const xmc_hnsw_params *pin, xmc_ann **out,
                 int *built, xmc_error *err)
{
    if (!m || !out)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ann: NULL model or output");
    *out = NULL;
    if (built)
        *built = 0;
    xmc_hnsw_params p;
    if (pin) {
        p = *pin;
    } else {
        xmc_hnsw_params_default(&p);
        p.metric = XMC_METRIC_L2; /* the MIPS reduction: see ann.h */
    }
    if (p.metric < XMC_METRIC_IP || p.metric > XMC_METRIC_L2)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ann: unknown metric %d", p.metric);
    const xmc_ova *head = xmc_model_head(m);
    if (!head) /* e.g. a SPARTEX model: its sparse rows are no dense vectors */
        return XMC_ERR(err, XMC_EUNSUPPORTED, dir, 0,
                       "ann: the model has no dense one-vs-all classifier to index");
    const xmc_encoder *enc = xmc_model_encoder(m);
    const xmc_ova_config *hc = xmc_ova_get_config(head);
    if (hc->dim != enc->dim)
        return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                       "ann: encoder width %d differs from the classifier's %d", enc->dim, hc->dim);
    const int64_t L = hc->n_labels;
    const int dim = hc->dim;
    int rc = XMC_OK;
    float *W = NULL;
    xmc_ann *a = xmc_calloc(1, sizeof *a);
    size_t wbytes;
    if (!a || !xmc_mul_ok((size_t)L, (size_t)dim * sizeof(float), &wbytes) ||
        !(W = xmc_malloc(wbytes ? wbytes : 1)) ||
        !(a->wnorm = xmc_malloc(sizeof(float) * (size_t)(L > 0 ? L : 1)))) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ann: out of memory for %lld x %d weights",
                     (long long)L, dim);
        goto fail;
    }
    a->L = L;
    a->dim = dim;
    a->metric = p.metric;
    if (L > 0 && (rc = xmc_ova_get_rows(head, 0, L, W, err)) != XMC_OK)
        goto fail;
    uint32_t crc = 0;
    for (int64_t l0 = 0; l0 < L; l0 += 1 << 20) { /* zlib's length is a uInt */
        int64_t l1 = l0 + (1 << 20) < L ? l0 + (1 << 20) : L;
        crc = xmc_crc32(crc, W + l0 * dim, (size_t)(l1 - l0) * (size_t)dim * sizeof(float));
    }
#pragma omp parallel for schedule(static)
    for (int64_t l = 0; l < L; l++) {
        double s = 0;
        for (int j = 0; j < dim; j++)
            s += (double)W[l * dim + j] * W[l * dim + j];
        a->wnorm[l] = (float)sqrt(s);
    }
    int idim = dim;
    if (p.metric == XMC_METRIC_L2) {
        /* MIPS as L2 search (Bachrach et al. 2014): w' = [w, sqrt(phi^2 -
         * |w|^2)], E' = [E, 0], so |E' - w'|^2 = |E|^2 + phi^2 - 2 E.w and
         * the L2 neighbours are exactly the largest inner products, in a
         * metric space where HNSW's pruning is sound (plain IP is not: its
         * Algorithm 4 links everything to high-norm rows). */
        for (int64_t l = 0; l < L; l++)
            a->phi2 = fmax(a->phi2, (double)a->wnorm[l] * a->wnorm[l]);
        float *Wa = xmc_malloc(sizeof(float) * (size_t)L * (size_t)(dim + 1));
        if (!Wa) {
            rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ann: out of memory for %lld x %d weights",
                         (long long)L, dim + 1);
            goto fail;
        }
        for (int64_t l = 0; l < L; l++) {
            memcpy(Wa + l * (dim + 1), W + l * dim, sizeof(float) * (size_t)dim);
            double r = a->phi2 - (double)a->wnorm[l] * a->wnorm[l];
            Wa[l * (dim + 1) + dim] = (float)sqrt(r > 0 ? r : 0);
        }
        xmc_free(W);
        W = Wa;
        idim = dim + 1;
    }
    char path[4096];
    path[0] = 0;
    if (dir) {
        int len = snprintf(path, sizeof path, "%s/ann-%s-M%d-efc%d%s-%08x.hnsw", dir,
                           p.metric == XMC_METRIC_IP ? "ip" : p.metric == XMC_METRIC_L2 ? "mips" : "cos", p.M, p.ef_construction, p.storage == XMC_STORE_BF16 ? "-bf16" : "",
                           (unsigned)crc);
        if (len < 0 || (size_t)len >= sizeof path) {
            rc = XMC_ERR(err, XMC_EINVAL, dir, 0, "ann: model directory path too long");
            goto fail;
        }
        if (xmc_file_exists(path)) {
            xmc_error lerr = {0};
            if (xmc_hnsw_load(&a->h, path, XMC_HNSW_LOAD_MMAP, &lerr) == XMC_OK &&
                (xmc_hnsw_size(a->h) != L || xmc_hnsw_dim(a->h) != idim)) {
                xmc_hnsw_free(a->h);
                a->h = NULL;
            }
            if (!a->h) /* damaged or foreign: rebuild over it */
                xmc_log(XMC_LOG_WARN, "%s: %s; rebuilding", path,
                        lerr.code ? lerr.msg : "size mismatch");
            else
                xmc_hnsw_set_ef_search(a->h, p.ef_search);
        }
    }
    if (!a->h) {
        if (L == 0) {
            rc = XMC_ERR(err, XMC_EINVAL, NULL, 0, "ann: the model has no labels");
            goto fail;
        }
        xmc_log(XMC_LOG_INFO, "ann: building HNSW over %lld classifier rows (d=%d, M=%d, efC=%d)",
                (long long)L, dim, p.M, p.ef_construction);
        if ((rc = xmc_hnsw_build(&a->h, W, L, idim, &p, err)) != XMC_OK)
            goto fail;
        if (built)
            *built = 1;
        if (dir && (rc = xmc_hnsw_save(a->h, path, err)) != XMC_OK)
            goto fail;
    }
    xmc_free(W);
    *out = a;
    return XMC_OK;
fail:
    xmc_free(W);
    xmc_ann_free(a);
    return rc;
}

typedef struct cand {
    float s;
    int32_t l;
} cand;

/* Higher score first; ties to the lower label, as xmc_ova_topk. */
static int cand_before(const cand *x, const cand *y) { return x->s > y->s || (x->s == y->s && x->l < y->l); }

int xmc_ann_topk(xmc_ann *a, xmc_model *m, const xmc_enc_data *d, int k, int ef,
                 int32_t *labels, float *scores, xmc_error *err)
{
    if (!a || !m || !d || (!labels && d->n > 0) || (!scores && d->n > 0))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ann topk: NULL argument");
    if (k < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ann topk: k must be >= 1, got %d", k);
    /* Forward in eval mode changes only the encoder's scratch, which the
     * model owns for exactly this (xmc_model_topk does the same). */
    xmc_encoder *enc = (xmc_encoder *)xmc_model_encoder(m);
    const int dim = a->dim, idim = a->metric == XMC_METRIC_L2 ? dim + 1 : dim;
    int B = enc->cfg.max_batch > 0 ? enc->cfg.max_batch : 1;
    if (ef <= 0) {
        xmc_hnsw_params hp;
        xmc_hnsw_get_params(a->h, &hp);
        ef = hp.ef_search;
    }
    int kc = k > ef ? k : ef;
    if (kc > a->L)
        kc = (int)a->L;
    if (ef < kc)
        ef = kc;
    int rc = XMC_OK;
    float *E = xmc_malloc(sizeof(float) * (size_t)B * (size_t)dim);
    float *Eq = idim != dim ? xmc_malloc(sizeof(float) * (size_t)B * (size_t)idim) : E;
    int64_t *rows = xmc_malloc(sizeof(int64_t) * (size_t)B);
    int64_t *ids = xmc_malloc(sizeof(int64_t) * (size_t)B * (size_t)kc);
    float *dist = xmc_malloc(sizeof(float) * (size_t)B * (size_t)kc);
    cand *c = xmc_malloc(sizeof(cand) * (size_t)B * (size_t)kc);
    if (!E || !Eq || !rows || !ids || !dist || !c) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ann topk: out of memory (batch %d, k %d)", B, kc);
        goto done;
    }
    for (int64_t r0 = 0; r0 < d->n; r0 += B) {
        int nb = (int)(d->n - r0 < B ? d->n - r0 : B);
        for (int i = 0; i < nb; i++)
            rows[i] = r0 + i;
        if ((rc = xmc_encoder_forward(enc, d, rows, nb, 0, E, err)) != XMC_OK)
            goto done;
        if (Eq != E)
            for (int i = 0; i < nb; i++) {
                memcpy(Eq + (size_t)i * idim, E + (size_t)i * dim, sizeof(float) * (size_t)dim);
                Eq[(size_t)i * idim + dim] = 0.0f;
            }
        if ((rc = xmc_hnsw_search(a->h, Eq, nb, idim, kc, ef, ids, dist, err)) != XMC_OK)
            goto done;
#pragma omp parallel for schedule(static)
        for (int i = 0; i < nb; i++) {
            double en = 0;
            for (int j = 0; j < dim; j++)
                en += (double)E[(size_t)i * dim + j] * E[(size_t)i * dim + j];
            float enorm = (float)sqrt(en);
            cand *ci = c + (size_t)i * kc;
            int nc = 0;
            for (int j = 0; j < kc; j++) {
                int64_t id = ids[(size_t)i * kc + j];
                if (id < 0)
                    continue;
                float dj = dist[(size_t)i * kc + j], sc;
                if (a->metric == XMC_METRIC_L2)
                    sc = (float)(0.5 * (en + a->phi2 - dj));
                else if (a->metric == XMC_METRIC_IP)
                    sc = 1.0f - dj;
                else
                    sc = (1.0f - dj) * enorm * a->wnorm[id];
                cand x = {sc, (int32_t)id};
                int p = nc++; /* insertion sort: kc is small (ef) */
                while (p > 0 && cand_before(&x, &ci[p - 1])) {
                    ci[p] = ci[p - 1];
                    p--;
                }
                ci[p] = x;
            }
            int32_t *lo = labels + (size_t)(r0 + i) * k;
            float *so = scores + (size_t)(r0 + i) * k;
            for (int j = 0; j < k; j++) {
                lo[j] = j < nc ? ci[j].l : -1;
                so[j] = j < nc ? ci[j].s : -INFINITY;
            }
        }
    }
done:
    if (Eq != E)
        xmc_free(Eq);
    xmc_free(E);
    xmc_free(rows);
    xmc_free(ids);
    xmc_free(dist);
    xmc_free(c);
    return rc;
}

int xmc_ann_topk_to_csr(const int32_t *labels, const float *scores, int64_t n, int k,
                        int64_t n_labels, xmc_csr **out, xmc_error *err)
{
    *out = NULL;
    int64_t nnz = 0;
    for (int64_t i = 0; i < n * k; i++)
        nnz += labels[i] >= 0;
    xmc_csr *P;
    int rc = xmc_csr_create(&P, n, n_labels, nnz, 1, err);
    if (rc != XMC_OK)
        return rc;
    int64_t q = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t start = q;
        for (int j = 0; j < k; j++) {
            int32_t l = labels[i * k + j];
            if (l < 0)
                continue;
            int64_t p = q++; /* insert sorted by label id */
            while (p > start && P->indices[p - 1] > l) {
                P->indices[p] = P->indices[p - 1];
                P->values[p] = P->values[p - 1];
                p--;
            }
            P->indices[p] = l;
            P->values[p] = scores[i * k + j];
        }
        P->indptr[i + 1] = q;
    }
    *out = P;
    return XMC_OK;
}

int xmc_ann_predict(xmc_ann *a, xmc_model *m, const xmc_dataset *ds, int k, int ef,
                    xmc_csr **out, xmc_error *err)
{
    if (!out)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ann predict: NULL output");
    *out = NULL;
    if (k < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ann predict: k must be >= 1, got %d", k);
    xmc_enc_data *d = NULL;
    int32_t *labels = NULL;
    float *scores = NULL;
    int rc = xmc_model_prepare(m, ds, &d, err);
    if (rc != XMC_OK)
        return rc;
    size_t nk = (size_t)(d->n > 0 ? d->n : 1) * (size_t)k;
    labels = xmc_malloc(nk * sizeof *labels);
    scores = xmc_malloc(nk * sizeof *scores);
    if (!labels || !scores)
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ann predict: out of memory (%lld x %d)",
                     (long long)d->n, k);
    if (!rc)
        rc = xmc_ann_topk(a, m, d, k, ef, labels, scores, err);
    if (!rc)
        rc = xmc_ann_topk_to_csr(labels, scores, d->n, k, a->L, out, err);
    xmc_free(labels);
    xmc_free(scores);
    xmc_enc_data_free(d);
    return rc;
}
