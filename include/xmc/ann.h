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
 * A query embedding E is searched with efSearch = ef; the max(ef, k)
 * candidates are re-scored with the model's own score E . w_l (recovered
 * exactly from the distance) and the best k are returned: scores are the
 * model's, only the candidate set is approximate.
 *
 * The index is stored in the model directory as
 * ann-<kind>-M<M>-efc<efC>-<crc>.hnsw, where crc is the CRC-32 of the
 * classifier weights: built once, reloaded (mmap) by later runs, and never
 * reused for retrained weights. Older ann-*.hnsw files are left in place.
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

/* Top-k lists (n x k, -1 = empty) as an n x L score matrix, columns sorted. */
int xmc_ann_topk_to_csr(const int32_t *labels, const float *scores, int64_t n, int k,
                        int64_t n_labels, xmc_csr **out, xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
