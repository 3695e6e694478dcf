/* xmc ann: approximate top-k for a trained model through an HNSW index over
 * its classifier rows (Renee, Jain et al. 2023, served a 120M-label model
 * through an ANN index over L2-normalised classifier rows).
 *
 * The model scores label l by E . w_l. The index kind is params->metric:
 *   XMC_METRIC_L2      (default) the MIPS-to-L2 reduction (Bachrach et al.
 *                      2014): rows [w, sqrt(phi^2 - |w|^2)], queries [E, 0];
 *                      L2 neighbours are exactly the top inner products.
 *   XMC_METRIC_COSINE  Renee's L2-normalised rows: ranks by cos(E, w_l);
 *                      good when row norms are alike, poor otherwise (on a
 *                      synthetic Renee model, |w| in [14, 42]: recall@5
 *                      0.60 at ef 100, vs 1.00 for L2; docs/ann.md).
 *   XMC_METRIC_IP      plain inner product: HNSW's pruning is unsound for it
 *                      (high-norm rows capture the links); not recommended.
 * The MIPS index leaves out the norm tail (rows with |w| > 1.25 x the
 * median, at most L/16): those are scored exactly for every query, since
 * the reduction strands them far from the bulk (docs/ann.md, "What recall
 * depends on").
 * A query embedding E is searched with efSearch = ef; the max(ef, k)
 * candidates are re-scored with the model's own score E . w_l (recovered
 * exactly from the distance) and the best k are returned: scores are the
 * model's, only the candidate set is approximate.
 *
 * The index is stored in the model directory as
 * ann-<kind>-M<M>-efc<efC>[-t<tail rows>]-<crc>.hnsw, where crc is the CRC-32 of the
 * classifier weights: built once, reloaded (mmap) by later runs, and never
 * reused for retrained weights. Older ann-*.hnsw files are left in place.
 *
 * A sharded model (xmc_model_load_dist, P > 1) gets one index per label
 * shard, ann-<kind>-M<M>-efc<efC>-s<l0>-<l1>-of<P>-<crc>.hnsw (crc of the
 * shard's rows), each rank writing only its own; xmc_ann_topk/predict are
 * then collective: each rank searches its shard for every query and rank 0
 * merges the P lists as exact sharded top-k does (others get -1 / empty).
 */
#ifndef XMC_ANN_H
#define XMC_ANN_H

#include "xmc/core.h"
#include "xmc/data.h"
#include "xmc/hnsw.h"
#include "xmc/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xmc_ann xmc_ann;

/* The ANN index of model m: loaded from dir when a matching file exists,
 * else built (multi-threaded) and, when dir is non-NULL, saved there.
 * p: metric (above), M, ef_construction, ef_search, seed, storage; NULL =
 * xmc_hnsw_params_default with metric XMC_METRIC_L2. *built (may be NULL) says whether it was built.
 * Free with xmc_ann_free. */
int xmc_ann_open(const xmc_model *m, const char *dir, const xmc_hnsw_params *p, xmc_ann **out,
                 int *built, xmc_error *err);
void xmc_ann_free(xmc_ann *a);
const xmc_hnsw *xmc_ann_index(const xmc_ann *a);

/* ANN top-k of rows [0, d->n) of prepared data (xmc_model_prepare), like
 * xmc_model_topk: labels and scores (n x k), best first, label -1 where
 * fewer than k were found. ef <= 0: the index's ef_search. */
int xmc_ann_topk(xmc_ann *a, xmc_model *m, const xmc_enc_data *d, int k, int ef,
                 int32_t *labels, float *scores, xmc_error *err);

/* Like xmc_model_predict, through the index: an N x L score matrix (free
 * with xmc_csr_free). */
int xmc_ann_predict(xmc_ann *a, xmc_model *m, const xmc_dataset *ds, int k, int ef,
                    xmc_csr **out, xmc_error *err);
/* The same from prepared data (xmc_model_prepare). */
int xmc_ann_predict_data(xmc_ann *a, xmc_model *m, const xmc_enc_data *d, int k, int ef,
                         xmc_csr **out, xmc_error *err);

/* Top-k lists (n x k, -1 = empty) as an n x L score matrix, columns sorted. */
int xmc_ann_topk_to_csr(const int32_t *labels, const float *scores, int64_t n, int k,
                        int64_t n_labels, xmc_csr **out, xmc_error *err);

/* ---- UniDEC / DEPSL (psl.h): a persistent label index that grows ----
 * The model directory (xmc train --recipe unidec|depsl) keeps
 * labels-added.txt (texts of labels added after training; label L + i is
 * line i) and per scoring head an HNSW (inner product) over the label
 * vectors [Φ_D(z_l) ; normalize(Ψ_l)] (or one half) of all L + added labels,
 * named ann-unidec-<de|clf|both>-<CRC-32 of unidec.bin>.hnsw. Labels added
 * after training have no Ψ row: their CLF half is 0, so the DE half serves
 * them (zero-shot). */
#define XMC_UNIDEC_ADDED_FILE "labels-added.txt"

/* Texts of the labels added to dir so far (*out NULL when none). */
int xmc_unidec_added_labels(const char *dir, xmc_texts **out, xmc_error *err);

/* The index of head `which` over the L + added->n labels (added may be
 * NULL): loaded (mmap) when a file for this model exists, grown by the
 * labels it lacks, or built; saved back when changed. *built (may be NULL):
 * 0 loaded as is, 1 built, 2 grown. Free *out with xmc_hnsw_free. */
int xmc_unidec_ann_open(xmc_unidec *u, const char *dir, int which, const xmc_texts *added,
                        xmc_hnsw **out, int *built, xmc_error *err);

/* Append new_texts (none empty) to dir's added labels, embed only them, and
 * add them to every index of the model in dir plus the one of head `which`
 * (built when missing). *first (may be NULL): the id of the first new label.
 * labels-added.txt is written first (atomically); if growing an index then
 * fails, the next xmc_unidec_ann_open grows it. */
int xmc_unidec_add_labels(xmc_unidec *u, const char *dir, const xmc_texts *new_texts, int which,
                          int64_t *first, xmc_error *err);

/* Top-k of every row of ds through index (of head `which`, from
 * xmc_unidec_ann_open) with candidate list ef: an N x size(index) score
 * matrix of inner products (free with xmc_csr_free). */
int xmc_unidec_ann_predict(xmc_unidec *u, const xmc_hnsw *index, int which, const xmc_dataset *ds,
                           int k, int ef, xmc_csr **out, xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
