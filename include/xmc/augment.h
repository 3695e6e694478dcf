/* xmc augment: Gandalf label-feature augmentation (Kharbanda et al.,
 * "Learning label-label correlations in extreme classification via
 * label features", KDD 2024 / thesis ch. 1).
 *
 * For a training set D = {(x_n, y_n)} with label matrix Y (N x L) and a text
 * (or feature vector) z_j for every label j, Gandalf adds L training points
 * Z = {(z_j, y^G_j)} whose soft targets come from label co-occurrence:
 *
 *   G = YᵀY (binary pattern of Y), G_jj = frequency of label j,
 *   y^G_j[i] = G_ij / G_jj = P[i | j]   kept when it EXCEEDS δ (strict >),
 *   y^G_j[j] = 1                        always (also for unseen labels).
 *
 * Variants (xmc_augment_targets):
 *   XMC_AUG_SELF  one-hot self annotation y_j = e_j (Renee "-Aug");
 *   XMC_AUG_COOC  Gandalf, the default;
 *   XMC_AUG_SYM   ½(P[i|j] + P[j|i]) = ½ G_ij (1/G_jj + 1/G_ii), same δ rule.
 * and an optional uniform subsample of D ∪ Z (seeded) to keep the compute
 * budget of the original set.
 *
 * Ties: a target is kept iff the double value v = G_ij / G_jj (resp. the sym
 * mean) satisfies v > δ. IEEE division is correctly rounded, so a ratio equal
 * to a decimal δ (2/5 vs "0.4") compares equal and is DROPPED.
 *
 * Threading: the product runs with OpenMP over the rows of Yᵀ (one label per
 * task); results are identical for every thread count. Memory: O(kept
 * entries) for the output plus 8·L bytes per thread of scratch and the
 * pattern of Yᵀ (4·nnz(Y) + 8·L bytes). See src/data/augment.c.
 */
#ifndef XMC_AUGMENT_H
#define XMC_AUGMENT_H

#include "xmc/core.h"
#include "xmc/data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum xmc_augment_kind {
    XMC_AUG_SELF = 0, /* one-hot self target (Renee "-Aug") */
    XMC_AUG_COOC = 1, /* Gandalf: P[i|j] thresholded at δ (default) */
    XMC_AUG_SYM = 2   /* ½(P[i|j] + P[j|i]) thresholded at δ */
} xmc_augment_kind;

#define XMC_AUGMENT_DEFAULT_DELTA 0.1
#define XMC_AUGMENT_MIN_DELTA 0.0
#define XMC_AUGMENT_MAX_DELTA 1.0
#define XMC_AUGMENT_DEFAULT_SEED 0x6a6eda1full

/* Subsample size meaning "as many rows as the original training set". */
#define XMC_AUGMENT_SAMPLE_ORIGINAL (-1)

typedef struct xmc_augment_opts {
    xmc_augment_kind kind; /* XMC_AUG_COOC by default */
    double delta;          /* δ in [0, 1]; targets <= δ are dropped */
    int64_t sample;        /* 0: keep all N+L rows; >0: uniform subsample of
                            * that many rows of D ∪ Z; XMC_AUGMENT_SAMPLE_ORIGINAL:
                            * subsample of N rows (same budget as D) */
    uint64_t seed;         /* for the subsample */
    /* Optional L x F' sparse label features (e.g. DIR/Y_Xf.txt), used as the
     * feature rows of Z when the training set has sparse features X
     * (F' must equal F). NULL: Z has texts only. Not owned. */
    const xmc_csr *label_features;
    /* 1: when the set has X and no label_features, derive label features by
     * PIFA (xmc_augment_pifa) instead of leaving Z's feature rows empty (or
     * failing, for a set without texts). An xmc extension, not the paper. */
    int pifa;
} xmc_augment_opts;

/* Sizes measured by one run (all counts are entries of L x L matrices). */
typedef struct xmc_augment_stats {
    int64_t nnz_g;       /* nnz(YᵀY) before thresholding (-1 for SELF: not computed) */
    int64_t kept;        /* stored targets, self entries included */
    int64_t unseen;      /* labels with G_jj = 0 (self target only) */
    int64_t rows_in;     /* N */
    int64_t rows_out;    /* rows of the augmented set (after subsampling) */
    double seconds_g;    /* time of the co-occurrence product */
    double seconds;      /* total */
} xmc_augment_stats;

/* Defaults: COOC, δ = 0.1, no subsample, XMC_AUGMENT_DEFAULT_SEED. */
void xmc_augment_opts_default(xmc_augment_opts *o);

/* Parse a recipe string as `xmc train --augment` takes it into *o (other
 * fields left alone): "gandalf" | "cooc" | "sym" | "self", each optionally
 * followed by ":DELTA" (e.g. "gandalf:0.2") and then "+pifa" (sets o->pifa,
 * e.g. "gandalf:0.2+pifa"). XMC_EINVAL on anything else, *o unchanged. */
int xmc_augment_parse(const char *s, xmc_augment_opts *o, xmc_error *err);
const char *xmc_augment_kind_name(xmc_augment_kind k);

/* Co-occurrence counts G = YᵀY over the binary pattern of Y (stored entries
 * with value > 0; NULL values = all ones), thresholded DURING the product:
 * row j keeps G_ij iff G_ij / G_jj > delta, and always keeps G_jj when label
 * j occurs. delta = 0 gives the full G. Values are counts (float, exact up
 * to 2^24). L x L, rows sorted. *nnz_full (may be NULL) gets nnz(G) before
 * thresholding. Free *G with xmc_csr_free; *G is NULL on failure. */
int xmc_augment_cooc(const xmc_csr *Y, double delta, xmc_csr **G, int64_t *nnz_full,
                     xmc_error *err);

/* The L x L soft-target matrix T whose row j is y^G_j for the chosen kind
 * and δ (see the top of this file); every row holds its self entry 1.
 * stats (may be NULL) gets nnz_g, kept, unseen and seconds_g. Free *T with
 * xmc_csr_free; *T is NULL on failure. */
int xmc_augment_targets(const xmc_csr *Y, const xmc_augment_opts *o, xmc_csr **T,
                        xmc_augment_stats *stats, xmc_error *err);

/* The augmented training set D ∪ Z in memory: rows 0..N-1 are the training
 * points (labels as given, NULL values become 1), rows N..N+L-1 the label
 * points (text z_j = label text, else label name; features = the label
 * features, PIFA ones with o->pifa, or an empty row when the set has X but
 * no label features), then
 * the optional subsample (rows kept in order). Label texts/names are copied.
 * Fails with XMC_EINVAL when the labels have neither texts nor names (for a
 * text set) or the set has only sparse features and no label features.
 * Free *out with xmc_dataset_free; *out is NULL on failure. */
int xmc_augment(const xmc_dataset *train, const xmc_augment_opts *o, xmc_dataset **out,
                xmc_error *err);
/* Same, also filling stats (may be NULL). */
int xmc_augment_ex(const xmc_dataset *train, const xmc_augment_opts *o, xmc_dataset **out,
                   xmc_augment_stats *stats, xmc_error *err);

/* PIFA label features (Yu et al., PECOS, JMLR 2022), an xmc extension:
 * z_j = normalize(Σ_{n: y_nj > 0} x_n / ||x_n||), L x F, rows L2-normalised
 * (empty for unseen labels). Threaded over labels, thread-count independent.
 * Free *Z with xmc_csr_free; *Z is NULL on failure. */
int xmc_augment_pifa(const xmc_csr *X, const xmc_csr *Y, xmc_csr **Z, xmc_error *err);

/* Label features beside a DIR/PREFIX spec: DIR/Y_Xf.txt[.gz] if it exists
 * (read with xmc_csr_read_text), else *out = NULL and XMC_OK. Other spec
 * forms give NULL too. Free *out with xmc_csr_free. */
int xmc_augment_label_features_load(const char *spec, xmc_csr **out, xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
