/* Metrics: hand-computed values on a tiny example (rows with no labels, rows
 * with fewer than k predictions, ties, a filter pair, hand-computed
 * propensities), a brute-force cross-check on random data, thread-count
 * independence, the filter-file reader and the error paths. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "testutil.h"
#include "xmc/data.h"
#include "xmc/metrics.h"

/* Build a CSR from per-row lists; rows given as "l:s l:s ..." strings, ids in
 * any order (sorted here, as the readers do). */
static xmc_csr *csr_from(int64_t nrows, int64_t ncols, const char *const *rows)
{
    int64_t nnz = 0;
    for (int64_t i = 0; i < nrows; i++)
        for (const char *p = rows[i]; *p; p++)
            nnz += *p == ':';
    xmc_csr *m = NULL;
    xmc_error e = {0};
    assert_int_equal(xmc_csr_create(&m, nrows, ncols, nnz, 1, &e), XMC_OK);
    int64_t at = 0;
    for (int64_t i = 0; i < nrows; i++) {
        const char *p = rows[i];
        int64_t r0 = at;
        int l, used;
        float s;
        while (sscanf(p, " %d:%f%n", &l, &s, &used) == 2) {
            /* insertion into the sorted row */
            int64_t j = at++;
            while (j > r0 && m->indices[j - 1] > l) {
                m->indices[j] = m->indices[j - 1];
                m->values[j] = m->values[j - 1];
                j--;
            }
            m->indices[j] = l;
            m->values[j] = s;
            p += used;
        }
        m->indptr[i + 1] = at;
    }
    assert_int_equal(at, nnz);
    return m;
}

/* The tiny example, N = 4 points, L = 6 labels:
 *
 *   truth            predictions (score)                      ranked (ties: lower id first)
 *   0: {0, 2}        2:.9  1:.8  0:.8  5:.1                   2 0 1 5      hits 1 1 0 0
 *   1: {1}           4:.5           (fewer than k)            4            hits 0
 *   2: {}            0:1   1:.5     (no labels)               0 1          hits 0 0
 *   3: {3, 4, 5}     5:.7  0:.6  3:.6  4:.2                   5 0 3 4      (unfiltered)
 *
 * Filter pair (3, 5): label 5 leaves row 3's truth AND its predictions, so
 * row 3 becomes y = {3, 4}, ranked 0 3 4 (0 and 3 tie at .6: 0 first), hits 0 1 1.
 */
static const char *const TRUTH[] = {"0:1 2:1", "1:1", "", "3:1 4:1 5:1"};
static const char *const PRED[] = {"2:0.9 1:0.8 0:0.8 5:0.1", "4:0.5", "0:1 1:0.5",
                                   "5:0.7 0:0.6 3:0.6 4:0.2"};
static const char *const FILTER[] = {"", "", "", "5:1"};

#define D2 0.63092975357145743 /* 1/log2(3) */

static void test_hand_computed_filtered(void **state)
{
    (void)state;
    xmc_csr *T = csr_from(4, 6, TRUTH), *P = csr_from(4, 6, PRED), *F = csr_from(4, 6, FILTER);
    /* Weights given directly: w_l = l + 1. */
    const double w[6] = {1, 2, 3, 4, 5, 6};
    const int ks[3] = {1, 3, 5};
    xmc_metrics_opts o = {ks, 3, w, F};
    xmc_metrics_result r;
    xmc_error e = {0};
    assert_int_equal(xmc_metrics_eval(T, P, &o, &r, &e), XMC_OK);
    assert_int_equal(r.n_k, 3);
    assert_int_equal(r.n_points, 4);
    assert_int_equal(r.n_empty, 1);
    assert_int_equal(r.n_truth_filtered, 1);
    assert_int_equal(r.n_pred_filtered, 1);
    assert_int_equal(r.n_truth_labels, 5); /* {0,1,2,3,4}: 5 only in the filtered pair */
    assert_true(r.has_ps);
    const double tol = 1e-9;
    /* P@k = mean_i hits_i(k)/k; the empty row 2 counts with 0.
     * P@1 = (1+0+0+0)/4; P@3 = (2/3+0+0+2/3)/4; P@5 = (2/5+2/5)/4. */
    assert_float_equal(r.p[0], 0.25, tol);
    assert_float_equal(r.p[1], 1.0 / 3.0, tol);
    assert_float_equal(r.p[2], 0.2, tol);
    /* nDCG: row 0 is ideal (1 at every k); row 3 at k>=3 has DCG d2+d3 over
     * IDCG d1+d2 (min(k,|y|)=2 ideal positions) with d1=1, d2=1/log2 3, d3=1/2:
     * (0.6309298+0.5)/1.6309298 = 0.6934264. nDCG@3 = (1+0.6934264)/4. */
    assert_float_equal(r.ndcg[0], 0.25, tol);
    assert_float_equal(r.ndcg[1], (1 + (D2 + 0.5) / (1 + D2)) / 4, tol);
    assert_float_equal(r.ndcg[1], 0.4233566009, 1e-9);
    assert_float_equal(r.ndcg[2], r.ndcg[1], tol);
    /* R@k = mean_i hits/|y_i|: R@1 = (1/2)/4, R@3 = R@5 = (1+1)/4. */
    assert_float_equal(r.recall[0], 0.125, tol);
    assert_float_equal(r.recall[1], 0.5, tol);
    assert_float_equal(r.recall[2], 0.5, tol);
    /* coverage: hit labels {2} at rank 1; {2,0,3,4} by rank 3; of 5 truth labels. */
    assert_float_equal(r.coverage[0], 0.2, tol);
    assert_float_equal(r.coverage[1], 0.8, tol);
    assert_float_equal(r.coverage[2], 0.8, tol);
    /* PSP@k = sum_i sum_topk w y / sum_i (top-k of w over y_i):
     * ideal lists: row0 [3,1], row1 [2], row3 [5,4].
     * k=1: hits row0 w2=3 -> 3 / (3+2+5) = 0.3
     * k=3: hits 3+1 (row0) + 4+5 (row3) = 13 / (4+2+9) = 13/15. */
    assert_float_equal(r.psp[0], 0.3, tol);
    assert_float_equal(r.psp[1], 13.0 / 15.0, tol);
    assert_float_equal(r.psp[2], 13.0 / 15.0, tol);
    /* PSnDCG@k = sum_i WDCG_i/IDCG_i / sum_i WIDCG_i/IDCG_i (IDCG unweighted):
     * k=1: (3/1) / (3/1 + 2/1 + 5/1) = 0.3.
     * k=3: row0 (3+1*d2)/c2 both; row1 0 vs 2/1; row3 (4 d2 + 5/2)/c2 vs
     * (5 + 4 d2)/c2, c2 = 1+d2 = 1.6309298:
     * (2.2262943 + 3.0802764) / (2.2262943 + 2 + 4.6131196) = 0.6003291. */
    double c2 = 1 + D2;
    double num = (3 + D2) / c2 + (4 * D2 + 2.5) / c2;
    double den = (3 + D2) / c2 + 2 + (5 + 4 * D2) / c2;
    assert_float_equal(r.psndcg[0], 0.3, tol);
    assert_float_equal(r.psndcg[1], num / den, tol);
    assert_float_equal(r.psndcg[1], 0.6003290535, 1e-9);
    xmc_csr_free(T);
    xmc_csr_free(P);
    xmc_csr_free(F);
}

static void test_hand_computed_unfiltered(void **state)
{
    (void)state;
    xmc_csr *T = csr_from(4, 6, TRUTH), *P = csr_from(4, 6, PRED);
    const int ks[2] = {3, 1}; /* any order */
    xmc_metrics_opts o = {ks, 2, NULL, NULL};
    xmc_metrics_result r;
    xmc_error e = {0};
    assert_int_equal(xmc_metrics_eval(T, P, &o, &r, &e), XMC_OK);
    assert_false(r.has_ps);
    assert_int_equal(r.k[0], 3);
    assert_int_equal(r.k[1], 1);
    /* Row 3 unfiltered: y = {3,4,5}, ranked 5 0 3 4: hits at ranks 1 and 3.
     * P@1 = (1+0+0+1)/4 = 0.5; P@3 = (2/3 + 2/3)/4 = 1/3. */
    assert_float_equal(r.p[1], 0.5, 1e-12);
    assert_float_equal(r.p[0], 1.0 / 3.0, 1e-12);
    /* nDCG@3 row 3: (1 + 1/2) / (1 + d2 + 1/2) (3 ideal positions). */
    assert_float_equal(r.ndcg[0], (1 + 1.5 / (1.5 + D2)) / 4, 1e-12);
    /* R@3 = (1 + 0 + 0 + 2/3)/4. */
    assert_float_equal(r.recall[0], (1 + 2.0 / 3.0) / 4, 1e-12);
    /* coverage@1 = {2,5}/6 labels; @3 = {2,0,5,3}/6. */
    assert_float_equal(r.coverage[1], 2.0 / 6.0, 1e-12);
    assert_float_equal(r.coverage[0], 4.0 / 6.0, 1e-12);
    assert_int_equal(r.n_truth_labels, 6);
    xmc_csr_free(T);
    xmc_csr_free(P);
}

static void test_soft_and_zero_truth_values(void **state)
{
    (void)state;
    /* Stored zeros are not relevant; any nonzero value counts as 1. */
    const char *const truth[] = {"0:0.5 1:0 2:3"};
    const char *const pred[] = {"1:1 0:0.5 2:0.25"};
    xmc_csr *T = csr_from(1, 3, truth), *P = csr_from(1, 3, pred);
    const int ks[3] = {1, 2, 3};
    xmc_metrics_opts o = {ks, 3, NULL, NULL};
    xmc_metrics_result r;
    xmc_error e = {0};
    assert_int_equal(xmc_metrics_eval(T, P, &o, &r, &e), XMC_OK);
    assert_float_equal(r.p[0], 0.0, 1e-12);       /* label 1 is stored as 0 */
    assert_float_equal(r.p[1], 0.5, 1e-12);       /* label 0 (0.5) is relevant */
    assert_float_equal(r.recall[2], 1.0, 1e-12);  /* |y| = 2: labels 0 and 2 */
    assert_float_equal(r.ndcg[2], (D2 + 0.5) / (1 + D2), 1e-12);
    assert_int_equal(r.n_truth_labels, 2);
    xmc_csr_free(T);
    xmc_csr_free(P);
}

static void test_inv_propensity_by_hand(void **state)
{
    (void)state;
    /* 4 training points; label counts n = (0, 1, 2, 4); label 4 stored with
     * value 0 (not relevant). */
    const char *const rows[] = {"1:1 2:1 3:1", "2:1 3:1", "3:1 4:0", "3:1"};
    xmc_csr *Y = csr_from(4, 5, rows);
    double w[5];
    xmc_error e = {0};
    /* Wikipedia A=0.5, B=0.4: C = (ln 4 - 1) * 1.4^0.5 = 0.3862944 * 1.1832160 = 0.4570697
     * w = 1 + C (n + 0.4)^-0.5:
     *   n=0: 1 + 0.4570697 / 0.6324555 = 1.7226906
     *   n=1: 1 + C / 1.4^0.5 = ln 4 = 1.3862944 (true for any A, B: w = ln N at n = 1)
     *   n=2: 1 + 0.4570697 / 1.5491933 = 1.2950372
     *   n=4: 1 + 0.4570697 / 2.0976177 = 1.2178994 */
    assert_int_equal(xmc_metrics_inv_propensity(Y, 0.5, 0.4, w, &e), XMC_OK);
    assert_float_equal(w[0], 1.7226906, 1e-6);
    assert_float_equal(w[1], log(4.0), 1e-12);
    assert_float_equal(w[2], 1.2950372, 1e-6);
    assert_float_equal(w[3], 1.2178994, 1e-6);
    assert_float_equal(w[4], w[0], 1e-12);
    /* Defaults A=0.55, B=1.5: C = 0.3862944 * 2.5^0.55 = 0.6394188;
     * n=0: 1 + C * 1.5^-0.55 = 1.5116055; n=2: 1 + C * 3.5^-0.55 = 1.3210317. */
    assert_int_equal(xmc_metrics_inv_propensity(Y, XMC_PROP_DEFAULT_A, XMC_PROP_DEFAULT_B, w, &e),
                     XMC_OK);
    assert_float_equal(w[0], 1.5116055, 1e-6);
    assert_float_equal(w[1], log(4.0), 1e-12);
    assert_float_equal(w[2], 1.3210317, 1e-6);
    /* Bad parameters. */
    assert_int_equal(xmc_metrics_inv_propensity(Y, 0.5, 0.0, w, &e), XMC_EINVAL);
    xmc_error e2 = {0};
    assert_int_equal(xmc_metrics_inv_propensity(Y, NAN, 1.5, w, &e2), XMC_EINVAL);
    xmc_csr_free(Y);
}

static void test_freq_baseline(void **state)
{
    (void)state;
    /* Counts: label 3 in 4 rows, 2 in 2, 1 in 1 and 4 stored as 0 (not
     * counted), 0 never: ranking 3 2 1 0 4 (ties to the lower id). */
    const char *const rows[] = {"1:1 2:1 3:1", "2:1 3:1", "3:1 4:0", "3:1"};
    xmc_csr *Y = csr_from(4, 5, rows), *P = NULL;
    xmc_error e = {0};
    assert_int_equal(xmc_metrics_freq_baseline(Y, 3, 4, &P, &e), XMC_OK);
    assert_int_equal(P->nrows, 3);
    assert_int_equal(P->ncols, 5);
    for (int64_t i = 0; i < 3; i++) {
        assert_int_equal(P->indptr[i + 1] - P->indptr[i], 4);
        const int32_t *ix = P->indices + P->indptr[i];
        const float *v = P->values + P->indptr[i];
        /* sorted by id: 0 1 2 3 with scores 0 1 2 4 */
        assert_int_equal(ix[0], 0);
        assert_int_equal(ix[3], 3);
        assert_float_equal(v[0], 0, 0);
        assert_float_equal(v[1], 1, 0);
        assert_float_equal(v[2], 2, 0);
        assert_float_equal(v[3], 4, 0);
    }
    xmc_csr_free(P);
    /* k above L is capped; k = 0 refused. */
    assert_int_equal(xmc_metrics_freq_baseline(Y, 2, 50, &P, &e), XMC_OK);
    assert_int_equal(xmc_csr_nnz(P), 10);
    xmc_csr_free(P);
    assert_int_equal(xmc_metrics_freq_baseline(Y, 2, 0, &P, &e), XMC_EINVAL);
    assert_null(P);
    xmc_csr_free(Y);
}

/* ---- brute force: full sort per row, dense relevance, plain formulas ---- */

typedef struct bf_pair {
    float s;
    int l;
} bf_pair;

static int bf_cmp(const void *a, const void *b)
{
    const bf_pair *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return x->l - y->l;
}

static void brute_force(const xmc_csr *T, const xmc_csr *P, const xmc_csr *F, const double *w,
                        const int *ks, int n_k, xmc_metrics_result *r)
{
    int64_t N = T->nrows, L = T->ncols;
    char *rel = calloc((size_t)L, 1);
    int *best = malloc((size_t)L * sizeof *best);
    char *any = calloc((size_t)L, 1);
    bf_pair *pp = malloc((size_t)(L + 1) * sizeof *pp);
    double *ideal = malloc((size_t)(L + 1) * sizeof *ideal);
    for (int64_t l = 0; l < L; l++)
        best[l] = 1 << 30;
    double sp[16] = {0}, sn[16] = {0}, sr[16] = {0}, pn[16] = {0}, pd[16] = {0}, qn[16] = {0},
           qd[16] = {0};
    for (int64_t i = 0; i < N; i++) {
        memset(rel, 0, (size_t)L);
        for (int64_t e = T->indptr[i]; e < T->indptr[i + 1]; e++)
            rel[T->indices[e]] = T->values[e] != 0;
        if (F)
            for (int64_t e = F->indptr[i]; e < F->indptr[i + 1]; e++)
                rel[F->indices[e]] = 0;
        int ny = 0;
        for (int64_t l = 0; l < L; l++)
            if (rel[l]) {
                any[l] = 1;
                ideal[ny++] = w[l];
            }
        for (int a = 1; a < ny; a++) /* sort weights descending */
            for (int b = a; b > 0 && ideal[b] > ideal[b - 1]; b--) {
                double t = ideal[b];
                ideal[b] = ideal[b - 1];
                ideal[b - 1] = t;
            }
        int np = 0;
        for (int64_t e = P->indptr[i]; e < P->indptr[i + 1]; e++) {
            int l = P->indices[e], filtered = 0;
            if (F)
                for (int64_t g = F->indptr[i]; g < F->indptr[i + 1]; g++)
                    filtered |= F->indices[g] == l;
            if (!filtered)
                pp[np++] = (bf_pair){P->values[e], l};
        }
        qsort(pp, (size_t)np, sizeof *pp, bf_cmp);
        for (int q = 0; q < n_k; q++) {
            int k = ks[q];
            double hits = 0, dcg = 0, ws = 0, wd = 0, iws = 0, iwd = 0, idcg = 0;
            for (int j = 0; j < k; j++) {
                double dj = 1 / log2(j + 2.0);
                if (j < np && rel[pp[j].l]) {
                    hits++;
                    dcg += dj;
                    ws += w[pp[j].l];
                    wd += w[pp[j].l] * dj;
                    if (j < best[pp[j].l])
                        best[pp[j].l] = j;
                }
                if (j < ny) {
                    iws += ideal[j];
                    iwd += ideal[j] * dj;
                    idcg += dj;
                }
            }
            sp[q] += hits / k;
            pn[q] += ws / k;
            pd[q] += iws / k;
            if (ny) {
                sn[q] += dcg / idcg;
                sr[q] += hits / ny;
                qn[q] += wd / idcg;
                qd[q] += iwd / idcg;
            }
        }
    }
    int nl = 0;
    for (int64_t l = 0; l < L; l++)
        nl += any[l];
    for (int q = 0; q < n_k; q++) {
        r->p[q] = sp[q] / N;
        r->ndcg[q] = sn[q] / N;
        r->recall[q] = sr[q] / N;
        r->psp[q] = pn[q] / pd[q];
        r->psndcg[q] = qn[q] / qd[q];
        int cov = 0;
        for (int64_t l = 0; l < L; l++)
            cov += best[l] < ks[q];
        r->coverage[q] = (double)cov / nl;
    }
    free(rel);
    free(best);
    free(any);
    free(pp);
    free(ideal);
}

/* Random truth (some rows empty), predictions with many ties (scores on a
 * 0.1 grid, some negative), a random filter. */
static void random_problem(uint64_t seed, int64_t N, int64_t L, xmc_csr **T, xmc_csr **P,
                           xmc_csr **F)
{
    xmc_rng g;
    xmc_rng_seed(&g, seed, 0);
    xmc_csr **out[3] = {T, P, F};
    int64_t maxper[3] = {6, 25, 2};
    for (int m = 0; m < 3; m++) {
        xmc_error e = {0};
        assert_int_equal(xmc_csr_create(out[m], N, L, N * maxper[m], 1, &e), XMC_OK);
        xmc_csr *M = *out[m];
        int64_t at = 0;
        for (int64_t i = 0; i < N; i++) {
            int64_t n = (int64_t)xmc_rng_below(&g, (uint64_t)maxper[m] + 1);
            if (m == 0 && i % 7 == 3)
                n = 0;
            /* distinct sorted ids: sample by scanning */
            int64_t need = n;
            for (int64_t l = 0; l < L && need > 0; l++)
                if ((int64_t)xmc_rng_below(&g, (uint64_t)(L - l)) < need) {
                    M->indices[at] = (int32_t)l;
                    M->values[at] = m == 1 ? (float)((int)xmc_rng_below(&g, 12) - 2) / 10.0f
                                           : 1.0f;
                    at++;
                    need--;
                }
            M->indptr[i + 1] = at;
        }
    }
}

static void compare(const xmc_metrics_result *a, const xmc_metrics_result *b, int n_k)
{
    for (int q = 0; q < n_k; q++) {
        assert_float_equal(a->p[q], b->p[q], 1e-12);
        assert_float_equal(a->ndcg[q], b->ndcg[q], 1e-12);
        assert_float_equal(a->recall[q], b->recall[q], 1e-12);
        assert_float_equal(a->coverage[q], b->coverage[q], 1e-12);
        assert_float_equal(a->psp[q], b->psp[q], 1e-12);
        assert_float_equal(a->psndcg[q], b->psndcg[q], 1e-12);
    }
}

static void test_random_vs_brute_force(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        xmc_csr *T, *P, *F;
        int64_t L = seed == 4 ? 3 : 40; /* L < k exercises short rows */
        random_problem(seed, 500, L, &T, &P, &F);
        double w[40];
        xmc_rng g;
        xmc_rng_seed(&g, seed, 9);
        for (int l = 0; l < L; l++)
            w[l] = 1 + 3 * xmc_rng_uniform(&g);
        const int ks[5] = {1, 2, 5, 10, 50};
        xmc_metrics_opts o = {ks, 5, w, F};
        xmc_metrics_result r, bf;
        xmc_error e = {0};
        assert_int_equal(xmc_metrics_eval(T, P, &o, &r, &e), XMC_OK);
        memset(&bf, 0, sizeof bf);
        brute_force(T, P, F, w, ks, 5, &bf);
        compare(&r, &bf, 5);
        /* Without filter too. */
        o.filter = NULL;
        assert_int_equal(xmc_metrics_eval(T, P, &o, &r, &e), XMC_OK);
        brute_force(T, P, NULL, w, ks, 5, &bf);
        compare(&r, &bf, 5);
        xmc_csr_free(T);
        xmc_csr_free(P);
        xmc_csr_free(F);
    }
}

static void test_thread_count_independent(void **state)
{
    (void)state;
    xmc_csr *T, *P, *F;
    random_problem(77, 3000, 200, &T, &P, &F);
    double w[200];
    for (int l = 0; l < 200; l++)
        w[l] = 1 + 1.0 / (l + 1);
    const int ks[3] = {1, 3, 5};
    xmc_metrics_opts o = {ks, 3, w, F};
    xmc_metrics_result r1, r2;
    xmc_error e = {0};
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    assert_int_equal(xmc_metrics_eval(T, P, &o, &r1, &e), XMC_OK);
    omp_set_num_threads(3);
    assert_int_equal(xmc_metrics_eval(T, P, &o, &r2, &e), XMC_OK);
    omp_set_num_threads(saved);
    assert_memory_equal(&r1, &r2, sizeof r1); /* bit-identical */
    xmc_csr_free(T);
    xmc_csr_free(P);
    xmc_csr_free(F);
}

/* Against the independent Python implementation: tests/ref/eval_ref.py's
 * output for the problem in tests/data/metrics (made by
 * tests/ref/make_metrics_fixture.py: empty rows, ties, negative scores, rows
 * shorter than k, a filter, propensities from training labels). */
static void fixture_path(char *buf, size_t n, const char *name)
{
    const char *src = getenv("XMC_SOURCE_DIR");
    snprintf(buf, n, "%s/tests/data/metrics/%s", src ? src : ".", name);
}

static void expect_array(const cJSON *root, const char *key, const double *got, int n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    assert_non_null(a);
    assert_int_equal(cJSON_GetArraySize(a), n);
    for (int q = 0; q < n; q++) {
        double want = cJSON_GetArrayItem(a, q)->valuedouble;
        if (fabs(got[q] - want) > 1e-9)
            fail_msg("%s[%d]: got %.12f, eval_ref.py says %.12f", key, q, got[q], want);
    }
}

static void test_against_python_reference(void **state)
{
    (void)state;
    char p[1200];
    xmc_error e = {0};
    xmc_csr *T = NULL, *P = NULL, *Tr = NULL, *F = NULL;
    fixture_path(p, sizeof p, "tst_X_Y.txt");
    assert_int_equal(xmc_csr_read_text(p, &T, &e), XMC_OK);
    fixture_path(p, sizeof p, "trn_X_Y.txt");
    assert_int_equal(xmc_csr_read_text(p, &Tr, &e), XMC_OK);
    fixture_path(p, sizeof p, "pred.txt");
    assert_int_equal(xmc_csr_read_text(p, &P, &e), XMC_OK);
    fixture_path(p, sizeof p, "filter.txt");
    assert_int_equal(xmc_filter_read(p, T->nrows, T->ncols, &F, &e), XMC_OK);
    fixture_path(p, sizeof p, "expected.json");
    char *js;
    size_t n;
    assert_int_equal(xmc_read_file(p, &js, &n, &e), XMC_OK);
    cJSON *root = cJSON_Parse(js);
    assert_non_null(root);
    double *w = malloc((size_t)Tr->ncols * sizeof *w);
    assert_int_equal(xmc_metrics_inv_propensity(Tr, 0.55, 1.5, w, &e), XMC_OK);
    const int ks[6] = {1, 2, 3, 5, 10, 20};
    xmc_metrics_opts o = {ks, 6, w, F};
    xmc_metrics_result r;
    assert_int_equal(xmc_metrics_eval(T, P, &o, &r, &e), XMC_OK);
    assert_int_equal(r.n_empty,
                     (int64_t)cJSON_GetObjectItem(root, "rows_without_labels")->valuedouble);
    expect_array(root, "P", r.p, 6);
    expect_array(root, "nDCG", r.ndcg, 6);
    expect_array(root, "PSP", r.psp, 6);
    expect_array(root, "PSnDCG", r.psndcg, 6);
    expect_array(root, "R", r.recall, 6);
    expect_array(root, "coverage", r.coverage, 6);
    cJSON_Delete(root);
    xmc_free(js);
    free(w);
    xmc_csr_free(T);
    xmc_csr_free(Tr);
    xmc_csr_free(P);
    xmc_csr_free(F);
}

static void test_errors(void **state)
{
    (void)state;
    xmc_csr *T = csr_from(4, 6, TRUTH), *P = csr_from(4, 6, PRED);
    const char *const three[] = {"0:1", "1:1", "2:1"};
    const char *const bad_id[] = {"0:1", "1:1", "", "7:1"};
    xmc_csr *P3 = csr_from(3, 6, three), *Pbad = csr_from(4, 8, bad_id);
    int ks[2] = {1, 0};
    xmc_metrics_opts o = {ks, 1, NULL, NULL};
    xmc_metrics_result r;
    xmc_error e = {0};
    assert_int_equal(xmc_metrics_eval(T, P3, &o, &r, &e), XMC_EINVAL);
    assert_non_null(strstr(e.msg, "3 rows"));
    xmc_error_clear(&e);
    assert_int_equal(xmc_metrics_eval(T, Pbad, &o, &r, &e), XMC_EINVAL);
    assert_non_null(strstr(e.msg, "row 3"));
    assert_non_null(strstr(e.msg, "7"));
    xmc_error_clear(&e);
    o.n_k = 2; /* k = 0 */
    assert_int_equal(xmc_metrics_eval(T, P, &o, &r, &e), XMC_EINVAL);
    xmc_error_clear(&e);
    o.n_k = 0;
    assert_int_equal(xmc_metrics_eval(T, P, &o, &r, &e), XMC_EINVAL);
    xmc_error_clear(&e);
    o.n_k = 1;
    o.filter = P3; /* wrong row count */
    assert_int_equal(xmc_metrics_eval(T, P, &o, &r, &e), XMC_EINVAL);
    /* Allocation failure: reported, nothing leaks. */
    o.filter = NULL;
    size_t before = xmc_mem_current();
    for (int n = 1; n <= 8; n++) {
        xmc_error_clear(&e);
        xmc_mem_fail_after((uint64_t)n);
        int rc = xmc_metrics_eval(T, P, &o, &r, &e);
        xmc_mem_fail_after(0);
        assert_true(rc == XMC_OK || rc == XMC_ENOMEM);
        assert_int_equal(xmc_mem_current(), before);
    }
    xmc_csr_free(T);
    xmc_csr_free(P);
    xmc_csr_free(P3);
    xmc_csr_free(Pbad);
}

static void test_read_filter(void **state)
{
    (void)state;
    const char *p = tu_path("filter.txt");
    tu_write(p, "3 5\n# comment\n\n0 1\n3 2\n3 5\n0\t4\n");
    xmc_csr *F = NULL;
    xmc_error e = {0};
    assert_int_equal(xmc_filter_read(p, 4, 6, &F, &e), XMC_OK);
    assert_int_equal(F->nrows, 4);
    assert_int_equal(F->ncols, 6);
    assert_int_equal(xmc_csr_nnz(F), 4); /* duplicate (3,5) merged */
    const int64_t ip[5] = {0, 2, 2, 2, 4};
    const int32_t ix[4] = {1, 4, 2, 5};
    assert_memory_equal(F->indptr, ip, sizeof ip);
    assert_memory_equal(F->indices, ix, sizeof ix);
    xmc_csr_free(F);

    tu_write(p, "0 1\n1 x\n");
    assert_int_equal(xmc_filter_read(p, 4, 6, &F, &e), XMC_EFORMAT);
    tu_assert_error(XMC_EFORMAT, &e, XMC_EFORMAT, "filter.txt", 2);
    assert_null(F);
    xmc_error_clear(&e);
    tu_write(p, "0 1\n\n2 6\n");
    assert_int_equal(xmc_filter_read(p, 4, 6, &F, &e), XMC_EFORMAT);
    tu_assert_error(XMC_EFORMAT, &e, XMC_EFORMAT, "filter.txt", 3);
    xmc_error_clear(&e);
    tu_write(p, "4 0\n");
    assert_int_equal(xmc_filter_read(p, 4, 6, &F, &e), XMC_EFORMAT);
    tu_assert_error(XMC_EFORMAT, &e, XMC_EFORMAT, "filter.txt", 1);
    xmc_error_clear(&e);
    tu_write(p, "1 2 3\n");
    assert_int_equal(xmc_filter_read(p, 4, 6, &F, &e), XMC_EFORMAT);
    xmc_error_clear(&e);
    assert_int_equal(xmc_filter_read(tu_path("missing.txt"), 4, 6, &F, &e), XMC_EIO);
    /* Empty file: a valid empty filter. */
    xmc_error_clear(&e);
    tu_write(p, "");
    assert_int_equal(xmc_filter_read(p, 4, 6, &F, &e), XMC_OK);
    assert_int_equal(xmc_csr_nnz(F), 0);
    xmc_csr_free(F);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed_filtered),
        cmocka_unit_test(test_hand_computed_unfiltered),
        cmocka_unit_test(test_soft_and_zero_truth_values),
        cmocka_unit_test(test_inv_propensity_by_hand),
        cmocka_unit_test(test_freq_baseline),
        cmocka_unit_test(test_random_vs_brute_force),
        cmocka_unit_test(test_thread_count_independent),
        cmocka_unit_test(test_against_python_reference),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_read_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
