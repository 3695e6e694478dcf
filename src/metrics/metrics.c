/* Ranking metrics of extreme classification: P@k, nDCG@k, R@k, coverage@k,
 * PSP@k, PSnDCG@k (definitions: include/xmc/metrics.h, docs/metrics.md).
 *
 * Algorithm, per row i (independent, so rows run in parallel):
 *   1. y_i = the truth row minus the filter row (both sorted: one merge);
 *   2. the top kmax predictions, filtered, by a bounded heap ordered by
 *      (score desc, label asc): O(nnz log kmax), then sorted;
 *   3. the ideal propensity-weighted ranking: the top kmax of w_l over
 *      l in y_i (pyxclib's `ps_indices`), by a second bounded heap;
 *   4. one pass over positions j < kmax accumulating hits, DCG, weighted
 *      hits and their ideal counterparts; at each requested k the row's
 *      terms are added to its chunk's sums.
 * Hits are found by binary search in the sorted truth row: O(log |y_i|).
 *
 * Memory: two L-sized arrays for coverage (the best rank at which each label
 * was hit, and whether it is relevant anywhere), per-thread heaps of kmax
 * entries, and per-chunk sums. Rows are cut into a fixed number of chunks
 * whatever the thread count and chunk sums are added in order, so results
 * are bit-identical for any OMP_NUM_THREADS. The coverage arrays are shared:
 * updated with atomic min / atomic store (relaxed: only the final values are
 * read, after the parallel region's barrier).
 */
#include "xmc/metrics.h"
#include "xmc/kernels.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Fixed number of row chunks: the unit of work and of summation order. */
#define N_CHUNKS 256

/* The six per-k sums, over rows. */
enum { S_P, S_NDCG, S_R, S_PSP_NUM, S_PSP_DEN, S_PSN_NUM, S_PSN_DEN, S_COUNT };


typedef struct chunk_sums {
    double v[XMC_METRICS_MAX_KS][S_COUNT];
    int64_t n_empty, n_truth_filtered, n_pred_filtered;
} chunk_sums;

typedef struct scratch {
    float *top_s;   /* (kmax) bounded heap of predictions: scores */
    int32_t *top_l; /* (kmax) and their labels (xmc_topk, kernels.h) */
    double *ideal; /* (kmax) bounded heap of relevant weights */
} scratch;

int xmc_metrics_inv_propensity(const xmc_csr *train_Y, double A, double B, double *w,
                               xmc_error *err)
{
    if (!train_Y || !w)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "inverse propensity: no training labels");
    if (train_Y->nrows <= 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "inverse propensity: the training set has no points (N = 0)");
    if (!isfinite(A) || !isfinite(B) || A < 0 || B <= 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "inverse propensity: expected A >= 0 and B > 0, got A=%g B=%g", A, B);
    const int64_t L = train_Y->ncols;
    for (int64_t l = 0; l < L; l++)
        w[l] = 0;
    /* Counts first (in w), then the weights in place. */
    for (int64_t e = 0; e < xmc_csr_nnz(train_Y); e++) {
        int32_t l = train_Y->indices[e];
        if (l >= 0 && l < L && (!train_Y->values || train_Y->values[e] != 0.0f))
            w[l] += 1.0;
    }
    const double C = (log((double)train_Y->nrows) - 1.0) * pow(B + 1.0, A);
    for (int64_t l = 0; l < L; l++)
        w[l] = 1.0 + C * pow(w[l] + B, -A);
    return XMC_OK;
}

/* Same for doubles, larger first (ideal weighted ranking). */
static void dbl_push(double *h, int *n, int cap, double x)
{
    int i;
    if (*n < cap) {
        i = (*n)++;
        while (i > 0) {
            int p = (i - 1) / 2;
            if (!(h[p] > x))
                break;
            h[i] = h[p];
            i = p;
        }
        h[i] = x;
        return;
    }
    if (!(x > h[0]))
        return;
    i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c] > h[c + 1])
            c++;
        if (!(x > h[c]))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void dbl_sort(double *h, int n)
{
    for (int end = n - 1; end > 0; end--) {
        double worst = h[0], x = h[end];
        h[end] = worst;
        int i = 0;
        for (;;) {
            int c = 2 * i + 1;
            if (c >= end)
                break;
            if (c + 1 < end && h[c] > h[c + 1])
                c++;
            if (!(x > h[c]))
                break;
            h[i] = h[c];
            i = c;
        }
        h[i] = x;
    }
}

/* Index of x in the ascending a[0..n), or -1. */
static inline int64_t index_i32(const int32_t *a, int64_t n, int32_t x)
{
    int64_t i = xmc_lower_bound_i32(a, 0, n, x);
    return i < n && a[i] == x ? i : -1;
}

static inline void atomic_min_i32(int32_t *p, int32_t v)
{
    int32_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (v < cur &&
           !__atomic_compare_exchange_n(p, &cur, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

static inline void atomic_min_i64(int64_t *p, int64_t v)
{
    int64_t cur = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (v < cur &&
           !__atomic_compare_exchange_n(p, &cur, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

typedef struct eval_ctx {
    const xmc_csr *truth, *pred, *filter;
    const double *w;
    int n_k, kmax;
    int korder[XMC_METRICS_MAX_KS]; /* q indices sorted by k ascending */
    const int *ks;
    const double *disc;    /* (kmax) 1/log2(j+2) */
    const double *cumdisc; /* (kmax) sum of disc[0..j] */
    int32_t *best_rank;    /* (L) */
    unsigned char *relevant_somewhere; /* (L) */
    int64_t bad_row;       /* smallest row with an out-of-range label */
    int32_t bad_label;
} eval_ctx;

/* Add row i's terms at k (position q of the k list) to the chunk sums. The
 * row state is cumulative over the first min(k, positions seen) ranks. */
static inline void record(chunk_sums *cs, const eval_ctx *c, int q, int k, int n_rel, double hits,
                          double dcg, double wsum, double wdcg, double iwsum, double iwdcg)
{
    double *v = cs->v[q];
    v[S_P] += hits / k;
    v[S_PSP_NUM] += wsum / k;
    v[S_PSP_DEN] += iwsum / k;
    if (n_rel > 0) {
        /* IDCG over min(k, |y_i|) ideal positions (pyxclib: min(n, cumsum)). */
        double idcg = c->cumdisc[(k < n_rel ? k : n_rel) - 1];
        v[S_NDCG] += dcg / idcg;
        v[S_R] += hits / n_rel;
        v[S_PSN_NUM] += wdcg / idcg;
        v[S_PSN_DEN] += iwdcg / idcg;
    }
}

static void eval_row(const eval_ctx *c, int64_t i, scratch *sc, chunk_sums *cs)
{
    const xmc_csr *T = c->truth, *P = c->pred, *F = c->filter;
    const int64_t L = T->ncols;
    const int32_t *t = T->indices + T->indptr[i];
    const float *tv = T->values ? T->values + T->indptr[i] : NULL;
    const int64_t nt = T->indptr[i + 1] - T->indptr[i];
    const int32_t *f = NULL;
    int64_t nf = 0;
    if (F) {
        f = F->indices + F->indptr[i];
        nf = F->indptr[i + 1] - F->indptr[i];
    }

    /* 1. relevant labels: nonzero truth entries not in the filter (merge). */
    int n_rel = 0, n_ideal = 0;
    int64_t fj = 0;
    for (int64_t j = 0; j < nt; j++) {
        if (tv && tv[j] == 0.0f)
            continue;
        while (fj < nf && f[fj] < t[j])
            fj++;
        if (fj < nf && f[fj] == t[j]) {
            cs->n_truth_filtered++;
            continue;
        }
        n_rel++;
        if (t[j] >= 0 && t[j] < L) {
            __atomic_store_n(&c->relevant_somewhere[t[j]], 1, __ATOMIC_RELAXED);
            if (c->w)
                dbl_push(sc->ideal, &n_ideal, c->kmax, c->w[t[j]]);
        }
    }
    if (n_rel == 0)
        cs->n_empty++;
    if (c->w)
        dbl_sort(sc->ideal, n_ideal);

    /* 2. top kmax predictions. */
    const int32_t *p = P->indices + P->indptr[i];
    const float *ps = P->values ? P->values + P->indptr[i] : NULL;
    const int64_t np = P->indptr[i + 1] - P->indptr[i];
    int n_top = 0;
    for (int64_t j = 0; j < np; j++) {
        if (p[j] < 0 || p[j] >= L) {
            atomic_min_i64((int64_t *)&c->bad_row, i);
            continue;
        }
        if (nf && xmc_sorted_has_i32(f, nf, p[j])) {
            cs->n_pred_filtered++;
            continue;
        }
        /* Higher score first, ties to the lower label id (our documented
         * tie break; pyxclib leaves ties to its sort); NaN ranks last. */
        xmc_topk_push(sc->top_s, sc->top_l, &n_top, c->kmax, ps ? ps[j] : 1.0f, p[j]);
    }
    xmc_topk_finish(sc->top_s, sc->top_l, n_top, c->kmax);

    /* 3+4. positions. */
    double hits = 0, dcg = 0, wsum = 0, wdcg = 0, iwsum = 0, iwdcg = 0;
    int qi = 0; /* next k (in ascending order) to record */
    int jend = n_top > n_ideal ? n_top : n_ideal;
    if (jend > c->kmax)
        jend = c->kmax;
    for (int j = 0; j < jend && qi < c->n_k; j++) {
        if (j < n_top) {
            int32_t l = sc->top_l[j];
            int64_t at = index_i32(t, nt, l);
            /* Filtered labels never reach the ranking (step 2). */
            int rel = at >= 0 && (!tv || tv[at] != 0.0f);
            if (rel) {
                hits += 1;
                dcg += c->disc[j];
                atomic_min_i32(&c->best_rank[l], j);
                if (c->w) {
                    wsum += c->w[l];
                    wdcg += c->w[l] * c->disc[j];
                }
            }
        }
        if (j < n_ideal) {
            iwsum += sc->ideal[j];
            iwdcg += sc->ideal[j] * c->disc[j];
        }
        while (qi < c->n_k && c->ks[c->korder[qi]] == j + 1) {
            int q = c->korder[qi++];
            record(cs, c, q, c->ks[q], n_rel, hits, dcg, wsum, wdcg, iwsum, iwdcg);
        }
    }
    /* Past the last ranked position nothing changes. */
    while (qi < c->n_k) {
        int q = c->korder[qi++];
        record(cs, c, q, c->ks[q], n_rel, hits, dcg, wsum, wdcg, iwsum, iwdcg);
    }
}

int xmc_metrics_eval(const xmc_csr *truth, const xmc_csr *pred, const xmc_metrics_opts *opts,
                     xmc_metrics_result *out, xmc_error *err)
{
    int rc = XMC_OK;
    double *disc = NULL;
    int32_t *best_rank = NULL;
    unsigned char *rel_any = NULL;
    chunk_sums *sums = NULL;
    scratch *scr = NULL;
    int n_threads = 0;

    if (!truth || !pred || !opts || !out)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "metrics: missing argument");
    memset(out, 0, sizeof *out);
    if (opts->n_k < 1 || opts->n_k > XMC_METRICS_MAX_KS || !opts->ks)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "metrics: expected 1 to %d values of k, got %d",
                       XMC_METRICS_MAX_KS, opts->n_k);
    int kmax = 0;
    for (int q = 0; q < opts->n_k; q++) {
        if (opts->ks[q] < 1 || opts->ks[q] > XMC_METRICS_MAX_K)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "metrics: k must be in [1, %d], got %d",
                           XMC_METRICS_MAX_K, opts->ks[q]);
        if (opts->ks[q] > kmax)
            kmax = opts->ks[q];
    }
    const int64_t N = truth->nrows, L = truth->ncols;
    if (N <= 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "metrics: the ground truth has no points");
    if (pred->nrows != N)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "metrics: predictions have %lld rows, the ground truth has %lld",
                       (long long)pred->nrows, (long long)N);
    if (opts->filter && opts->filter->nrows != N)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "metrics: the filter has %lld rows, the ground truth has %lld",
                       (long long)opts->filter->nrows, (long long)N);

    eval_ctx c;
    memset(&c, 0, sizeof c);
    c.truth = truth;
    c.pred = pred;
    c.filter = opts->filter;
    c.w = opts->inv_prop;
    c.n_k = opts->n_k;
    c.ks = opts->ks;
    c.kmax = kmax;
    c.bad_row = INT64_MAX;
    for (int q = 0; q < c.n_k; q++)
        c.korder[q] = q;
    for (int a = 1; a < c.n_k; a++) /* insertion sort: at most 16 */
        for (int b = a; b > 0 && c.ks[c.korder[b]] < c.ks[c.korder[b - 1]]; b--) {
            int tmp = c.korder[b];
            c.korder[b] = c.korder[b - 1];
            c.korder[b - 1] = tmp;
        }

    disc = xmc_malloc(2 * (size_t)kmax * sizeof *disc);
    best_rank = xmc_malloc((size_t)(L > 0 ? L : 1) * sizeof *best_rank);
    rel_any = xmc_calloc((size_t)(L > 0 ? L : 1), 1);
    int n_chunks = N < N_CHUNKS ? (int)N : N_CHUNKS;
    sums = xmc_calloc((size_t)n_chunks, sizeof *sums);
    n_threads = omp_get_max_threads();
    scr = xmc_calloc((size_t)n_threads, sizeof *scr);
    if (!disc || !best_rank || !rel_any || !sums || !scr) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "metrics: out of memory (L=%lld, kmax=%d)",
                     (long long)L, kmax);
        goto done;
    }
    for (int t = 0; t < n_threads; t++) {
        scr[t].top_s = xmc_malloc((size_t)kmax * sizeof *scr[t].top_s);
        scr[t].top_l = xmc_malloc((size_t)kmax * sizeof *scr[t].top_l);
        scr[t].ideal = xmc_malloc((size_t)kmax * sizeof *scr[t].ideal);
        if (!scr[t].top_s || !scr[t].top_l || !scr[t].ideal) {
            rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "metrics: out of memory (kmax=%d)", kmax);
            goto done;
        }
    }
    double *cumdisc = disc + kmax;
    for (int j = 0; j < kmax; j++) {
        disc[j] = 1.0 / log2(j + 2.0);
        cumdisc[j] = disc[j] + (j ? cumdisc[j - 1] : 0.0);
    }
    for (int64_t l = 0; l < L; l++)
        best_rank[l] = INT32_MAX;
    c.disc = disc;
    c.cumdisc = cumdisc;
    c.best_rank = best_rank;
    c.relevant_somewhere = rel_any;

#pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
    for (int ch = 0; ch < n_chunks; ch++) {
        scratch *sc = &scr[omp_get_thread_num()];
        int64_t r0 = N * ch / n_chunks, r1 = N * (ch + 1) / n_chunks;
        for (int64_t i = r0; i < r1; i++)
            eval_row(&c, i, sc, &sums[ch]);
    }

    if (c.bad_row != INT64_MAX) {
        int64_t i = c.bad_row;
        int32_t bad = 0;
        for (int64_t e = pred->indptr[i]; e < pred->indptr[i + 1]; e++)
            if (pred->indices[e] < 0 || pred->indices[e] >= L) {
                bad = pred->indices[e];
                break;
            }
        rc = XMC_ERR(err, XMC_EINVAL, NULL, 0,
                     "metrics: prediction row %lld has label id %d, expected < %lld (the "
                     "ground truth's label count)",
                     (long long)i, (int)bad, (long long)L);
        goto done;
    }

    double tot[XMC_METRICS_MAX_KS][S_COUNT];
    memset(tot, 0, sizeof tot);
    for (int ch = 0; ch < n_chunks; ch++) {
        for (int q = 0; q < c.n_k; q++)
            for (int s = 0; s < S_COUNT; s++)
                tot[q][s] += sums[ch].v[q][s];
        out->n_empty += sums[ch].n_empty;
        out->n_truth_filtered += sums[ch].n_truth_filtered;
        out->n_pred_filtered += sums[ch].n_pred_filtered;
    }
    int64_t n_labels = 0;
    for (int64_t l = 0; l < L; l++)
        n_labels += rel_any[l];
    out->n_truth_labels = n_labels;
    out->n_points = N;
    out->n_k = c.n_k;
    out->has_ps = c.w != NULL;
    for (int q = 0; q < c.n_k; q++) {
        int k = c.ks[q];
        out->k[q] = k;
        out->p[q] = tot[q][S_P] / (double)N;
        out->ndcg[q] = tot[q][S_NDCG] / (double)N;
        out->recall[q] = tot[q][S_R] / (double)N;
        if (c.w) {
            /* Ratios of dataset sums (pyxclib: _precision(flags)/_precision(ps_flags));
             * 0 when no point has a relevant label. */
            out->psp[q] = tot[q][S_PSP_DEN] > 0 ? tot[q][S_PSP_NUM] / tot[q][S_PSP_DEN] : 0.0;
            out->psndcg[q] =
                tot[q][S_PSN_DEN] > 0 ? tot[q][S_PSN_NUM] / tot[q][S_PSN_DEN] : 0.0;
        }
        int64_t covered = 0;
        for (int64_t l = 0; l < L; l++)
            covered += best_rank[l] < k;
        out->coverage[q] = n_labels ? (double)covered / (double)n_labels : 0.0;
    }

done:
    if (scr)
        for (int t = 0; t < n_threads; t++) {
            xmc_free(scr[t].top_s);
            xmc_free(scr[t].top_l);
            xmc_free(scr[t].ideal);
        }
    xmc_free(scr);
    xmc_free(sums);
    xmc_free(rel_any);
    xmc_free(best_rank);
    xmc_free(disc);
    if (rc != XMC_OK)
        memset(out, 0, sizeof *out);
    return rc;
}
