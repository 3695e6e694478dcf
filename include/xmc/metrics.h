/* xmc metrics: ranking metrics of extreme classification, defined exactly as
 * the Extreme Classification Repository and pyxclib
 * (xclib/evaluation/xc_metrics.py) define them; coverage@k as napkinXC
 * (napkinxc/measures.py) defines it. docs/metrics.md has every formula.
 *
 * For each k in a list: P@k, nDCG@k, R@k, coverage@k and, given inverse
 * propensities, PSP@k and PSnDCG@k (Jain, Prabhu, Varma, "Extreme multi-label
 * loss functions for recommendation, tagging, ranking & other missing label
 * applications", KDD 2016).
 *
 * Ranking: each prediction row is ranked by score, highest first; equal
 * scores rank the lower label id first. Every stored entry is a candidate,
 * whatever its sign; a row with fewer than k entries simply has empty
 * positions (they are never hits).
 *
 * Truth: an entry is relevant when stored with a nonzero value (values other
 * than 0 are treated as 1). A row with no relevant label counts in every mean
 * with 0 (pyxclib does the same: its DCG is 0 and its normaliser is positive).
 *
 * Filter (the repository's *_filter_labels.txt): each (row, label) pair is
 * removed from BOTH the truth and the predictions before scoring, so a
 * filtered prediction frees its rank for the next one.
 *
 * Cost: O(nnz(pred) log kmax + nnz(truth) log kmax) time, multi-threaded over
 * rows (OpenMP); memory O(L) (coverage needs, per label, the best rank at
 * which it was hit) + O(threads * kmax). No N x L buffer. Results do not
 * depend on the thread count (rows are summed in fixed chunks, in order).
 */
#ifndef XMC_METRICS_H
#define XMC_METRICS_H

#include "xmc/core.h"
#include "xmc/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Propensity model constants (Jain et al. 2016): the repository's default,
 * and the conventions for Amazon and Wikipedia datasets. */
#define XMC_PROP_DEFAULT_A 0.55
#define XMC_PROP_DEFAULT_B 1.5
#define XMC_PROP_AMAZON_A 0.6
#define XMC_PROP_AMAZON_B 2.6
#define XMC_PROP_WIKIPEDIA_A 0.5
#define XMC_PROP_WIKIPEDIA_B 0.4

#define XMC_METRICS_MAX_KS 16     /* at most this many k values per call */
#define XMC_METRICS_MAX_K 100000  /* largest k */

/* Inverse propensities from TRAINING labels:
 *   w_l = 1 + C (n_l + B)^-A,   C = (ln N - 1) (B + 1)^A
 * N = train_Y->nrows (rows without labels count, as in pyxclib), n_l = number
 * of training rows where label l is stored with a nonzero value.
 * `w` must hold train_Y->ncols entries. Fails (XMC_EINVAL) when N = 0 or
 * A, B are not finite, B <= -1 or B < 0 with a label of count 0. */
int xmc_metrics_inv_propensity(const xmc_csr *train_Y, double A, double B, double *w,
                               xmc_error *err);

typedef struct xmc_metrics_opts {
    const int *ks;           /* k values, each in [1, XMC_METRICS_MAX_K] */
    int n_k;                 /* 1 .. XMC_METRICS_MAX_KS */
    const double *inv_prop;  /* truth->ncols weights, or NULL (no PSP/PSnDCG) */
    const xmc_csr *filter;   /* truth->nrows x any (row, label) pairs, or NULL */
} xmc_metrics_opts;

/* Values are fractions in [0, 1] (not percentages). */
typedef struct xmc_metrics_result {
    int n_k;
    int k[XMC_METRICS_MAX_KS];
    double p[XMC_METRICS_MAX_KS];        /* P@k */
    double ndcg[XMC_METRICS_MAX_KS];     /* nDCG@k */
    double recall[XMC_METRICS_MAX_KS];   /* R@k */
    double coverage[XMC_METRICS_MAX_KS]; /* coverage@k */
    double psp[XMC_METRICS_MAX_KS];      /* PSP@k (has_ps) */
    double psndcg[XMC_METRICS_MAX_KS];   /* PSnDCG@k (has_ps) */
    int has_ps;
    int64_t n_points;          /* rows scored (= truth->nrows) */
    int64_t n_empty;           /* rows with no relevant label after filtering */
    int64_t n_truth_labels;    /* distinct labels relevant somewhere (after filtering) */
    int64_t n_truth_filtered;  /* relevant truth pairs removed by the filter */
    int64_t n_pred_filtered;   /* prediction entries removed by the filter */
} xmc_metrics_result;

/* Score `pred` (N x L' scores) against `truth` (N x L). Fails with
 * XMC_EINVAL (nothing in *out is meaningful) when the row counts differ, a
 * predicted label id is >= L, a k is out of range, or the filter's row count
 * differs from N; XMC_ENOMEM when scratch cannot be allocated. */
int xmc_metrics_eval(const xmc_csr *truth, const xmc_csr *pred, const xmc_metrics_opts *opts,
                     xmc_metrics_result *out, xmc_error *err);

/* The label-frequency baseline, a prediction any tool can compute: each of
 * n_rows points gets the k labels stored (nonzero) in the most rows of
 * train_Y, scored by that count; ties go to the lower label id. k is capped
 * at train_Y->ncols. *out is n_rows x train_Y->ncols; free it with
 * xmc_csr_free. */
int xmc_metrics_freq_baseline(const xmc_csr *train_Y, int64_t n_rows, int k, xmc_csr **out,
                              xmc_error *err);

/* Filter files are read with xmc_filter_read (data.h). */

#ifdef __cplusplus
}
#endif
#endif
