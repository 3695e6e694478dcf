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
 * The norm tail (MIPS only). The reduction places every row on the sphere
 * of radius phi = max |w|. When a few rows have norms far above the bulk's
 * (a model whose encoder tables trained with SGD-m: |w| from 8 to 368, the
 * median 24, and those rows are most queries' top labels), the bulk sits in
 * a small cap around the added axis and the heavy rows far from it: graph
 * search from the bulk rarely reaches them (recall@5 of rows with |w| >
 * 100: 0.02 at ef 50, hnswlib the same; docs/ann.md). So rows with |w| >
 * XMC_ANN_TAIL_RATIO x the median (at most L / XMC_ANN_TAIL_MAX_DIV of
 * them, the heaviest) are kept out of the index and scored exactly for
 * every query (one GEMM); the index covers the rest with their own phi. A
 * model with alike norms (Adam-trained tables: |w| in [8, 31]) has no tail
 * and the index of before. Norm-ranging (Yan et al., NeurIPS 2018) splits
 * by norm for the same reason; one exact tail was enough here (bins of
 * ratio 1.25 over the bulk added nothing, measured).
 *
 * Memory: the index (hnsw.h: ~4 d + 8 M + 20 bytes per label for fp32),
 * |w_l| (L floats), with a tail its rows (<= L/16 x d floats) and the
 * index's row ids (L int32), and per call one batch of embeddings and
 * candidates (max_batch x (d + 3 kc + XMC_ANN_TAIL_BLOCK) words). Opening
 * copies W once (L x d floats) to checksum it and, when no stored index
 * matches, to build one.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmc/ann.h"

struct xmc_ann {
    xmc_hnsw *h;
    float *wnorm; /* (L) |w_l| */
    int64_t L;       /* rows indexed: this rank's label shard, or all labels */
    int64_t l0;      /* global id of the first row (the shard's first label) */
    int64_t L_all;   /* labels of the model (score-matrix columns) */
    xmc_dist *dist;  /* the model's group (borrowed): top-k lists merge on rank 0 */
    int dim;
    int metric; /* XMC_METRIC_COSINE (Renee), XMC_METRIC_L2 (MIPS reduction) or _IP */
    double phi2; /* L2: max_l |w_l|^2 over the indexed rows */
    int64_t n_tail;  /* rows scored exactly (the norm tail; MIPS only) */
    int32_t *tail;   /* (n_tail) their row ids, ascending */
    float *tw;       /* (n_tail x dim) their weights */
    int32_t *ids;    /* (L - n_tail) row of each index id; NULL: identity */
};

#define XMC_ANN_TAIL_RATIO 1.25  /* measured on two SGD-m models: 1.25-1.5 right, 2 too high */
#define XMC_ANN_TAIL_MAX_DIV 16  /* the tail's exact scoring stays <= 1/16 of exact search */
#define XMC_ANN_TAIL_BLOCK 4096  /* tail columns scored per GEMM (bounds the scratch) */

void xmc_ann_free(xmc_ann *a)
{
    if (!a)
        return;
    xmc_hnsw_free(a->h);
    xmc_free(a->wnorm);
    xmc_free(a->tail);
    xmc_free(a->tw);
    xmc_free(a->ids);
    xmc_free(a);
}

const xmc_hnsw *xmc_ann_index(const xmc_ann *a) { return a ? a->h : NULL; }

static int cmp_float(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

/* The norm tail (top of file): rows with |w| > XMC_ANN_TAIL_RATIO x median,
 * the heaviest L / XMC_ANN_TAIL_MAX_DIV at most. Sets a->tail, a->tw and
 * the index-to-row map a->ids, and compacts W (L x dim) to the indexed
 * rows in place. Deterministic in W, so a stored index's rows are
 * re-derived on load. */
static int split_tail(xmc_ann *a, float *W, xmc_error *err)
{
    const int64_t L = a->L;
    const int dim = a->dim;
    float *srt = xmc_malloc(sizeof(float) * (size_t)L);
    if (!srt)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ann: out of memory (%lld norms)", (long long)L);
    memcpy(srt, a->wnorm, sizeof(float) * (size_t)L);
    qsort(srt, (size_t)L, sizeof(float), cmp_float);
    double tau = XMC_ANN_TAIL_RATIO * srt[(L - 1) / 2];
    int64_t cap = L / XMC_ANN_TAIL_MAX_DIV;
    if (cap > 0 && srt[L - 1 - cap] > tau) /* more than cap above: keep the heaviest */
        tau = srt[L - 1 - cap];
    xmc_free(srt);
    int64_t nt = 0;
    for (int64_t l = 0; l < L; l++)
        nt += a->wnorm[l] > tau;
    if (nt == 0)
        return XMC_OK;
    a->tail = xmc_malloc(sizeof(int32_t) * (size_t)nt);
    a->tw = xmc_malloc(sizeof(float) * (size_t)nt * (size_t)dim);
    a->ids = xmc_malloc(sizeof(int32_t) * (size_t)(L - nt));
    if (!a->tail || !a->tw || !a->ids)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ann: out of memory (norm tail of %lld rows)",
                       (long long)nt);
    int64_t t = 0, b = 0;
    for (int64_t l = 0; l < L; l++) {
        const float *w = W + l * dim;
        if (a->wnorm[l] > tau) {
            memcpy(a->tw + t * dim, w, sizeof(float) * (size_t)dim);
            a->tail[t++] = (int32_t)l;
        } else {
            memmove(W + b * dim, w, sizeof(float) * (size_t)dim);
            a->ids[b++] = (int32_t)l;
        }
    }
    a->n_tail = nt;
    return XMC_OK;
}

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
    a->l0 = hc->label_offset;
    a->dist = xmc_dist_active(xmc_model_dist(m)) ? xmc_model_dist(m) : NULL;
    {
        xmc_model_stats st;
        xmc_model_get_stats(m, &st);
        a->L_all = st.n_labels;
    }
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
    if (p.metric == XMC_METRIC_L2 && (rc = split_tail(a, W, err)) != XMC_OK)
        goto fail;
    const int64_t nb = L - a->n_tail; /* rows in the index */
    if (p.metric == XMC_METRIC_L2) {
        /* MIPS as L2 search (Bachrach et al. 2014): w' = [w, sqrt(phi^2 -
         * |w|^2)], E' = [E, 0], so |E' - w'|^2 = |E|^2 + phi^2 - 2 E.w and
         * the L2 neighbours are exactly the largest inner products, in a
         * metric space where HNSW's pruning is sound (plain IP is not: its
         * Algorithm 4 links everything to high-norm rows). */
        for (int64_t i = 0; i < nb; i++) {
            double wn = a->wnorm[a->ids ? a->ids[i] : i];
            a->phi2 = fmax(a->phi2, wn * wn);
        }
        float *Wa = xmc_malloc(sizeof(float) * (size_t)nb * (size_t)(dim + 1));
        if (!Wa) {
            rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ann: out of memory for %lld x %d weights",
                         (long long)nb, dim + 1);
            goto fail;
        }
        for (int64_t i = 0; i < nb; i++) {
            double wn = a->wnorm[a->ids ? a->ids[i] : i];
            memcpy(Wa + i * (dim + 1), W + i * dim, sizeof(float) * (size_t)dim);
            double r = a->phi2 - wn * wn;
            Wa[i * (dim + 1) + dim] = (float)sqrt(r > 0 ? r : 0);
        }
        xmc_free(W);
        W = Wa;
        idim = dim + 1;
    }
    char path[4096];
    path[0] = 0;
    if (dir) {
        /* A shard's index (rank r of P, labels [l0, l1)) carries its range:
         * each rank writes only its own file. */
        char shard[96] = "", tail[32] = "";
        if (a->n_tail)
            snprintf(tail, sizeof tail, "-t%lld", (long long)a->n_tail);
        if (a->dist)
            snprintf(shard, sizeof shard, "-s%lld-%lld-of%d", (long long)a->l0,
                     (long long)(a->l0 + L), xmc_dist_size(a->dist));
        int len = snprintf(path, sizeof path, "%s/ann-%s-M%d-efc%d%s%s%s-%08x.hnsw", dir,
                           p.metric == XMC_METRIC_IP ? "ip" : p.metric == XMC_METRIC_L2 ? "mips" : "cos", p.M, p.ef_construction, p.storage == XMC_STORE_BF16 ? "-bf16" : "",
                           shard, tail, (unsigned)crc);
        if (len < 0 || (size_t)len >= sizeof path) {
            rc = XMC_ERR(err, XMC_EINVAL, dir, 0, "ann: model directory path too long");
            goto fail;
        }
        if (xmc_file_exists(path)) {
            xmc_error lerr = {0};
            if (xmc_hnsw_load(&a->h, path, XMC_HNSW_LOAD_MMAP, &lerr) == XMC_OK &&
                (xmc_hnsw_size(a->h) != nb || xmc_hnsw_dim(a->h) != idim)) {
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
        xmc_log(XMC_LOG_INFO,
                "ann: building HNSW over %lld classifier rows (d=%d, M=%d, efC=%d); %lld rows "
                "of the norm tail scored exactly",
                (long long)nb, dim, p.M, p.ef_construction, (long long)a->n_tail);
        if ((rc = xmc_hnsw_build(&a->h, W, nb, idim, &p, err)) != XMC_OK)
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

/* Insert x into the best-first list ci[0..*nc) that keeps at most k
 * (insertion sort: k is small); the order is total, so the list is the
 * best k of everything offered, in any order. */
static void cand_keep(cand *ci, int *nc, int k, cand x)
{
    if (*nc == k && !cand_before(&x, &ci[k - 1]))
        return;
    int p = *nc < k ? (*nc)++ : k - 1;
    while (p > 0 && cand_before(&x, &ci[p - 1])) {
        ci[p] = ci[p - 1];
        p--;
    }
    ci[p] = x;
}

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
    /* Sharded: this rank's lists (global ids) go to scratch, then merge on
     * rank 0 as exact top-k does (xmc_model_dist_merge_topk). */
    int32_t *olab = labels, *llab = NULL;
    float *osc = scores, *lsc = NULL;
    int kc = k > ef ? k : ef;
    if (kc > a->L - a->n_tail)
        kc = (int)(a->L - a->n_tail);
    if (ef < kc)
        ef = kc;
    const int64_t tb = a->n_tail < XMC_ANN_TAIL_BLOCK ? a->n_tail : XMC_ANN_TAIL_BLOCK;
    int rc = XMC_OK;
    float *E = xmc_malloc(sizeof(float) * (size_t)B * (size_t)dim);
    float *Eq = idim != dim ? xmc_malloc(sizeof(float) * (size_t)B * (size_t)idim) : E;
    int64_t *rows = xmc_malloc(sizeof(int64_t) * (size_t)B);
    int *ncand = xmc_malloc(sizeof(int) * (size_t)B);
    int64_t *ids = xmc_malloc(sizeof(int64_t) * (size_t)B * (size_t)kc);
    float *dist = xmc_malloc(sizeof(float) * (size_t)B * (size_t)kc);
    cand *c = xmc_malloc(sizeof(cand) * (size_t)B * (size_t)k);
    float *ts = tb ? xmc_malloc(sizeof(float) * (size_t)B * (size_t)tb) : NULL;
    if (a->dist) {
        size_t nk = (size_t)(d->n > 0 ? d->n : 1) * (size_t)k;
        labels = llab = xmc_malloc(nk * sizeof *llab);
        scores = lsc = xmc_malloc(nk * sizeof *lsc);
    }
    if (!E || !Eq || !rows || !ncand || !ids || !dist || !c || (tb && !ts) ||
        (a->dist && (!llab || !lsc))) {
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
            cand *ci = c + (size_t)i * k;
            int nc = 0;
            for (int j = 0; j < kc; j++) {
                int64_t id = ids[(size_t)i * kc + j];
                if (id < 0)
                    continue;
                float dj = dist[(size_t)i * kc + j], sc;
                if (a->ids)
                    id = a->ids[id];
                if (a->metric == XMC_METRIC_L2)
                    sc = (float)(0.5 * (en + a->phi2 - dj));
                else if (a->metric == XMC_METRIC_IP)
                    sc = 1.0f - dj;
                else
                    sc = (1.0f - dj) * enorm * a->wnorm[id];
                cand_keep(ci, &nc, k, (cand){sc, (int32_t)id});
            }
            ncand[i] = nc;
        }
        /* the norm tail, exactly: E . w_t for every tail row, a block at a time */
        for (int64_t t0 = 0; t0 < a->n_tail; t0 += tb) {
            int nt = (int)(a->n_tail - t0 < tb ? a->n_tail - t0 : tb);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, nt, dim, 1.0f, E, dim,
                        a->tw + (size_t)t0 * dim, dim, 0.0f, ts, nt);
#pragma omp parallel for schedule(static)
            for (int i = 0; i < nb; i++) {
                for (int j = 0; j < nt; j++)
                    cand_keep(c + (size_t)i * k, &ncand[i], k,
                              (cand){ts[(size_t)i * nt + j], a->tail[t0 + j]});
            }
        }
        for (int i = 0; i < nb; i++) {
            const cand *ci = c + (size_t)i * k;
            int32_t *lo = labels + (size_t)(r0 + i) * k;
            float *so = scores + (size_t)(r0 + i) * k;
            for (int j = 0; j < k; j++) {
                lo[j] = j < ncand[i] ? (int32_t)(ci[j].l + a->l0) : -1;
                so[j] = j < ncand[i] ? ci[j].s : -INFINITY;
            }
        }
        /* The kNN memory (a model's, in one process) re-ranks these lists. */
        if (!a->dist && (rc = xmc_model_blend_neighbors(m, E, nb, k, labels + (size_t)r0 * k,
                                                        scores + (size_t)r0 * k, err)))
            goto done;
    }
done:
    if (a->dist) /* collective: a rank that failed above still takes part */
        rc = xmc_model_dist_merge_topk(a->dist, rc, llab, lsc, d->n, k, olab, osc, err);
    xmc_free(llab);
    xmc_free(lsc);
    if (Eq != E)
        xmc_free(Eq);
    xmc_free(E);
    xmc_free(rows);
    xmc_free(ncand);
    xmc_free(ids);
    xmc_free(dist);
    xmc_free(c);
    xmc_free(ts);
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
    xmc_enc_data *d = NULL;
    int rc = xmc_model_prepare(m, ds, &d, err);
    if (rc == XMC_OK)
        rc = xmc_ann_predict_data(a, m, d, k, ef, out, err);
    xmc_enc_data_free(d);
    return rc;
}

int xmc_ann_predict_data(xmc_ann *a, xmc_model *m, const xmc_enc_data *d, int k, int ef,
                         xmc_csr **out, xmc_error *err)
{
    if (!out)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ann predict: NULL output");
    *out = NULL;
    if (k < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ann predict: k must be >= 1, got %d", k);
    int32_t *labels = NULL;
    float *scores = NULL;
    int rc = XMC_OK;
    size_t nk = (size_t)(d->n > 0 ? d->n : 1) * (size_t)k;
    labels = xmc_malloc(nk * sizeof *labels);
    scores = xmc_malloc(nk * sizeof *scores);
    if (!labels || !scores)
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ann predict: out of memory (%lld x %d)",
                     (long long)d->n, k);
    if (!rc)
        rc = xmc_ann_topk(a, m, d, k, ef, labels, scores, err);
    if (!rc)
        rc = xmc_ann_topk_to_csr(labels, scores, d->n, k, a->L_all, out, err);
    xmc_free(labels);
    xmc_free(scores);
    return rc;
}

/* ------------------------------------------------------ unidec / depsl */

/* A UniDEC / DEPSL model directory keeps, next to unidec.bin,
 *   labels-added.txt                   texts of labels added after training
 *                                      (label L + i is line i), and
 *   ann-unidec-<head>-<crc>.hnsw       per scoring head, an HNSW (inner
 *                                      product) over the label vectors
 *                                      [Φ_D(z_l) ; normalize(Ψ_l)] (or one
 *                                      half) of all L + added labels; crc is
 *                                      the CRC-32 of unidec.bin, so a
 *                                      retrained model never reuses it.
 * Adding labels appends to labels-added.txt (rewritten atomically) and then
 * grows the indexes with xmc_hnsw_add: only the new texts go through the
 * encoder. An index with fewer vectors than labels (e.g. a crash between
 * the two writes) is grown the same way on open; one with more is rebuilt. */

static const char *head_name(int which)
{
    return which == XMC_UNIDEC_SCORE_DE ? "de" : which == XMC_UNIDEC_SCORE_CLF ? "clf" : "both";
}

/* CRC-32 of a file, streamed (unidec.bin can be hundreds of MB). */
static int file_crc(const char *path, uint32_t *out, xmc_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot open the model file");
    char *buf = xmc_malloc(1 << 20);
    if (!buf) {
        fclose(f);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ann: out of memory");
    }
    uint32_t crc = 0;
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0)
        crc = xmc_crc32(crc, buf, n);
    int bad = ferror(f);
    fclose(f);
    xmc_free(buf);
    if (bad)
        return XMC_ERR(err, XMC_EIO, path, 0, "read error");
    *out = crc;
    return XMC_OK;
}

static int index_path(const char *dir, int which, char *path, size_t n, xmc_error *err)
{
    char mpath[4096];
    uint32_t crc = 0;
    int len = snprintf(mpath, sizeof mpath, "%s/%s", dir, XMC_MODEL_UNIDEC_FILE);
    if (len < 0 || (size_t)len >= sizeof mpath)
        return XMC_ERR(err, XMC_EINVAL, dir, 0, "ann: model directory path too long");
    int rc = file_crc(mpath, &crc, err);
    if (rc)
        return rc;
    len = snprintf(path, n, "%s/ann-unidec-%s-%08x.hnsw", dir, head_name(which), (unsigned)crc);
    if (len < 0 || (size_t)len >= n)
        return XMC_ERR(err, XMC_EINVAL, dir, 0, "ann: model directory path too long");
    return XMC_OK;
}

int xmc_unidec_added_labels(const char *dir, xmc_texts **out, xmc_error *err)
{
    char path[4096];
    *out = NULL;
    int len = snprintf(path, sizeof path, "%s/%s", dir, XMC_UNIDEC_ADDED_FILE);
    if (len < 0 || (size_t)len >= sizeof path)
        return XMC_ERR(err, XMC_EINVAL, dir, 0, "model directory path too long");
    if (!xmc_file_exists(path))
        return XMC_OK;
    return xmc_texts_read(path, out, err);
}

/* Texts of labels [a, b) of the concatenation training ++ added. */
static int label_range(const xmc_unidec *u, const xmc_texts *added, int64_t a, int64_t b,
                       xmc_texts **out, xmc_error *err)
{
    const int64_t L = xmc_unidec_n_labels(u);
    const xmc_texts *lt = xmc_unidec_label_texts(u);
    const char **strs = xmc_malloc(sizeof(char *) * (size_t)(b > a ? b - a : 1));
    if (!strs)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ann: out of memory (label texts)");
    for (int64_t l = a; l < b; l++)
        strs[l - a] = l < L ? xmc_texts_get(lt, l) : xmc_texts_get(added, l - L);
    int rc = xmc_texts_create(strs, b - a, out, err);
    xmc_free(strs);
    return rc;
}

/* Embed labels [a, b) for head `which` and build (h == NULL) or grow *h. */
static int index_labels(xmc_unidec *u, const xmc_texts *added, int which, int64_t a, int64_t b,
                        xmc_hnsw **h, xmc_error *err)
{
    const int64_t dd = (which == XMC_UNIDEC_SCORE_BOTH ? 2 : 1) * (int64_t)xmc_unidec_dim(u);
    const int64_t n = b - a;
    xmc_texts *t = NULL;
    float *E = xmc_malloc(sizeof(float) * (size_t)(n > 0 ? n : 1) * (size_t)dd);
    int rc = E ? XMC_OK : XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ann: out of memory (%lld labels)",
                                  (long long)n);
    /* the training labels in one piece reuse the model's prepared texts */
    if (!rc && !(a == 0 && b == xmc_unidec_n_labels(u)))
        rc = label_range(u, added, a, b, &t, err);
    if (!rc)
        rc = xmc_unidec_embed_labels(u, t, a, which, E, err);
    if (!rc && !*h) {
        xmc_hnsw_params hp;
        xmc_hnsw_params_default(&hp);
        hp.metric = XMC_METRIC_IP; /* as xmc_unidec_predict: Φ_D halves are unit vectors */
        rc = xmc_hnsw_build(h, E, n, dd, &hp, err);
    } else if (!rc)
        rc = xmc_hnsw_add(*h, E, n, dd, err);
    xmc_texts_free(t);
    xmc_free(E);
    return rc;
}

int xmc_unidec_ann_open(xmc_unidec *u, const char *dir, int which, const xmc_texts *added,
                        xmc_hnsw **out, int *built, xmc_error *err)
{
    *out = NULL;
    if (built)
        *built = 0;
    const int64_t L = xmc_unidec_n_labels(u) + (added ? added->n : 0);
    const int64_t dd = (which == XMC_UNIDEC_SCORE_BOTH ? 2 : 1) * (int64_t)xmc_unidec_dim(u);
    char path[4096];
    xmc_hnsw *h = NULL;
    int rc = index_path(dir, which, path, sizeof path, err);
    if (rc)
        return rc;
    if (xmc_file_exists(path)) {
        xmc_error lerr = {0};
        if (xmc_hnsw_load(&h, path, XMC_HNSW_LOAD_MMAP, &lerr) == XMC_OK &&
            (xmc_hnsw_size(h) > L || xmc_hnsw_dim(h) != dd)) {
            xmc_hnsw_free(h);
            h = NULL;
        }
        if (!h) /* damaged or foreign: rebuild over it */
            xmc_log(XMC_LOG_WARN, "%s: %s; rebuilding", path,
                    lerr.code ? lerr.msg : "more labels than the model has");
    }
    int changed = 0;
    if (!h) {
        xmc_log(XMC_LOG_INFO, "ann: building HNSW over %lld label vectors (head %s, d=%lld)",
                (long long)L, head_name(which), (long long)dd);
        const int64_t L0 = xmc_unidec_n_labels(u);
        /* training labels first (prepared already), then the added ones */
        rc = index_labels(u, added, which, 0, L0, &h, err);
        if (!rc && L > L0)
            rc = index_labels(u, added, which, L0, L, &h, err);
        changed = 1;
        if (built)
            *built = 1;
    } else if (xmc_hnsw_size(h) < L) {
        xmc_log(XMC_LOG_INFO, "ann: adding labels %lld..%lld to %s", (long long)xmc_hnsw_size(h),
                (long long)L - 1, path);
        rc = index_labels(u, added, which, xmc_hnsw_size(h), L, &h, err);
        changed = 1;
        if (built)
            *built = 2;
    }
    if (!rc && changed)
        rc = xmc_hnsw_save(h, path, err);
    if (rc) {
        xmc_hnsw_free(h);
        return rc;
    }
    *out = h;
    return XMC_OK;
}

int xmc_unidec_add_labels(xmc_unidec *u, const char *dir, const xmc_texts *new_texts, int which,
                          int64_t *first, xmc_error *err)
{
    if (!new_texts || new_texts->n < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "add labels: no label texts given");
    for (int64_t i = 0; i < new_texts->n; i++) {
        const char *s = xmc_texts_get(new_texts, i);
        while (*s == ' ' || *s == '\t' || *s == '\r')
            s++;
        if (!*s) /* an empty text embeds to the bias alone: refuse, it is a typo */
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "add labels: label text %lld is empty",
                           (long long)i + 1);
    }
    xmc_texts *old = NULL, *all = NULL;
    int rc = xmc_unidec_added_labels(dir, &old, err);
    if (rc)
        return rc;
    const int64_t L0 = xmc_unidec_n_labels(u), n_old = old ? old->n : 0;
    if (L0 + n_old + new_texts->n > INT32_MAX) {
        xmc_texts_free(old);
        return XMC_ERR(err, XMC_EINVAL, dir, 0, "add labels: more than %d labels", INT32_MAX);
    }
    rc = xmc_texts_concat(old, new_texts, &all, err);
    char path[4096];
    if (!rc) {
        snprintf(path, sizeof path, "%s/%s", dir, XMC_UNIDEC_ADDED_FILE);
        rc = xmc_texts_write(path, all, err);
    }
    /* grow every head's index that exists, and build the asked-for one */
    for (int h = XMC_UNIDEC_SCORE_DE; !rc && h <= XMC_UNIDEC_SCORE_BOTH; h++) {
        if (xmc_unidec_is_depsl(u) && h != XMC_UNIDEC_SCORE_DE)
            continue;
        if (h != which && ((rc = index_path(dir, h, path, sizeof path, err)) ||
                           !xmc_file_exists(path)))
            continue;
        xmc_hnsw *idx = NULL;
        rc = xmc_unidec_ann_open(u, dir, h, all, &idx, NULL, err);
        xmc_hnsw_free(idx);
    }
    if (!rc && first)
        *first = L0 + n_old;
    xmc_texts_free(old);
    xmc_texts_free(all);
    return rc;
}

int xmc_unidec_ann_predict(xmc_unidec *u, const xmc_hnsw *index, int which, const xmc_dataset *ds,
                           int k, int ef, xmc_csr **out, xmc_error *err)
{
    *out = NULL;
    const int64_t L = xmc_hnsw_size(index), n = ds->n;
    const int dd = (which == XMC_UNIDEC_SCORE_BOTH ? 2 : 1) * xmc_unidec_dim(u);
    if (k < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ann predict: k must be >= 1, got %d", k);
    if (k > L)
        k = (int)L;
    const size_t nk = (size_t)(n > 0 ? n : 1) * (size_t)k;
    float *Q = xmc_malloc(sizeof(float) * (size_t)(n > 0 ? n : 1) * (size_t)dd);
    int32_t *ids = xmc_malloc(sizeof(int32_t) * nk);
    float *sims = xmc_malloc(sizeof(float) * nk);
    int rc = Q && ids && sims ? XMC_OK : XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                                                 "ann predict: out of memory (%lld rows)",
                                                 (long long)n);
    if (!rc && n > 0)
        rc = xmc_unidec_embed_queries(u, ds, which, Q, err);
    /* psl_mine with an index and no Y: the top-k inner products it finds */
    if (!rc && n > 0)
        rc = xmc_psl_mine(NULL, L, Q, n, dd, NULL, k, index, ef, ids, sims, err);
    if (!rc)
        rc = xmc_ann_topk_to_csr(ids, sims, n, k, L, out, err);
    xmc_free(Q);
    xmc_free(ids);
    xmc_free(sims);
    return rc;
}
