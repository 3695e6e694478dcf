/* xmc synth: a synthetic label-feature dataset that looks like the real ones
 * (docs/synth.md has the generative model and measured numbers).
 *
 * Written in the label-feature layout (README "Data", spec DIR/trn, DIR/tst):
 *   DIR/trn_X_Y.txt, DIR/tst_X_Y.txt     labels, header "N L", "l:1 ..." per row
 *   DIR/trn_X.txt,   DIR/tst_X.txt       point texts, one per line
 *   DIR/trn_X_Xf.txt, DIR/tst_X_Xf.txt   tf-idf of the words, header "N F",
 *                                        sorted ids, rows L2-normalised
 *   DIR/Y.txt                            label texts, one per line (L lines)
 *
 * Model in brief: a vocabulary of F pronounceable synthetic words (feature id
 * = word id); labels grouped into topic clusters of labels of similar
 * popularity; each label's text is 2-5 words: a topic word of its cluster and
 * 1-3 words of its own. Label popularity is Zipf-Mandelbrot,
 * P(rank r) ~ (r + q)^-s (s = `zipf`, q = 3). Each point has 1 + Poisson(mean
 * - 1) labels: an anchor by popularity, the others from the anchor's cluster
 * (probability 1/2) or by popularity again; its text mixes its labels' words
 * (sometimes a sibling label's word instead: related labels share
 * vocabulary) with Zipf-distributed noise words.
 *
 * Cost: time linear in the output; memory O(F + threads * batch), nothing
 * O(N) or O(L), so millions of points and labels fit in little memory. Two
 * passes over the points (document frequencies, then writing) regenerate each
 * point from its own random stream xmc_rng(seed, point): output is identical
 * byte for byte for a seed, whatever the thread count. Every file is written
 * atomically (xmc_outfile); progress through xmc_progress.
 */
#ifndef XMC_SYNTH_H
#define XMC_SYNTH_H

#include "xmc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMC_SYNTH_DEFAULT_POINTS 10000
#define XMC_SYNTH_DEFAULT_LABELS 1000
#define XMC_SYNTH_DEFAULT_TEST_FRAC 0.2
#define XMC_SYNTH_DEFAULT_ZIPF 1.0
#define XMC_SYNTH_MIN_ZIPF 0.2
#define XMC_SYNTH_MAX_ZIPF 3.0
#define XMC_SYNTH_DEFAULT_MEAN_LABELS 4.0
#define XMC_SYNTH_MIN_MEAN_LABELS 1.0
#define XMC_SYNTH_MAX_MEAN_LABELS 30.0
#define XMC_SYNTH_DEFAULT_CLUSTER 10
#define XMC_SYNTH_MIN_FEATURES 100
#define XMC_SYNTH_MAX_FEATURES (1LL << 26)
#define XMC_SYNTH_MAX_LABELS ((1LL << 31) - 1)

typedef struct xmc_synth_config {
    int64_t n_points;   /* N, train + test (>= 1) */
    int64_t n_labels;   /* L (>= 1) */
    int64_t n_features; /* F = vocabulary size; 0 = default clamp(L + 5000, 5000, 2^20) */
    uint64_t seed;
    double test_frac;   /* share of the points in the test split, [0, 1) */
    double zipf;        /* label-popularity exponent s */
    double mean_labels; /* mean labels per point */
    int cluster_size;   /* labels per topic cluster (>= 1) */
} xmc_synth_config;

/* Defaults above; seed 0. */
void xmc_synth_config_default(xmc_synth_config *c);

typedef struct xmc_synth_stats {
    int64_t n_train, n_test;
    int64_t n_features;            /* F actually used */
    int64_t train_pairs, test_pairs; /* label assignments */
    int64_t train_words;           /* word tokens in training texts */
    uint64_t bytes;                /* bytes written, all files */
    double seconds;
} xmc_synth_stats;

/* Generate the dataset into directory `dir` (created if missing). On failure
 * no temp file is left; every file is committed (renamed) only after all
 * seven are fully written, so a failure while generating leaves none of the
 * new files (only a failing fsync/rename at the very end can leave some).
 * Files of an earlier run stay until replaced. `stats` may be NULL. */
int xmc_synth_write(const xmc_synth_config *c, const char *dir, xmc_synth_stats *stats,
                    xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
