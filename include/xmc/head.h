/* xmc head: the one-vs-all classifier over all labels, trained with Renee's
 * fused pass (Jain et al., "Renee: End-to-end training of extreme
 * classification models", MLSys 2023).
 *
 * For a batch of embeddings E (B x d) and sparse targets Y, loop over label
 * chunks W_c (C x d):  X_c = E W_c^T;  G_c = dloss/dX_c in place (sigmoid(X)-Y
 * for BCE, Y applied sparsely);  dE += G_c W_c (with W_c before its update);
 * dW_c = G_c^T E;  update W_c and its optimizer state at once. The B x L
 * logits and the full dW never exist: extra memory is O(B*C) per thread.
 *
 * Reduction: the loss and the classifier gradient are SUMS over the batch and
 * the labels (as Renee), not means; learning rates are scaled for that.
 *
 * A head may hold a shard of the label space (labels [label_offset,
 * label_offset + n_labels) of the global space) for model parallelism; Y is
 * always indexed by global label ids and labels outside the shard are skipped.
 */
#ifndef XMC_HEAD_H
#define XMC_HEAD_H

#include "xmc/core.h"
#include "xmc/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* XMC_LOSS_AUTO: a training config's "the encoder's default", resolved
 * when the model is made (model.c); a head never sees it. */
typedef enum xmc_loss { XMC_LOSS_AUTO = -1, XMC_LOSS_BCE = 0, XMC_LOSS_SQHINGE = 1 } xmc_loss;
typedef enum xmc_dtype { XMC_DT_F32 = 0, XMC_DT_BF16 = 1 } xmc_dtype;
typedef enum xmc_head_opt { XMC_HEAD_SGDM = 0, XMC_HEAD_ADAM = 1 } xmc_head_opt;

#define XMC_OVA_DEFAULT_CHUNK 512 /* tuned: see docs/head.md */
#define XMC_OVA_DEFAULT_INIT_STD 0.02f

typedef struct xmc_ova_config {
    int64_t n_labels;     /* labels in this head (shard) */
    int64_t label_offset; /* global id of its first label (0 unless sharded) */
    int dim;              /* d */
    xmc_dtype dtype;      /* weight (and momentum) storage; math is fp32 */
    xmc_head_opt opt;     /* SGD with momentum (default) or Adam */
    int64_t chunk;        /* labels per chunk, 0 = XMC_OVA_DEFAULT_CHUNK */
    int max_batch;        /* largest B passed to train_step/topk */
    uint64_t seed;        /* init N(0, init_std^2), stochastic rounding */
    float init_std;       /* 0 = XMC_OVA_DEFAULT_INIT_STD */
} xmc_ova_config;

typedef struct xmc_ova_hparams {
    float lr;           /* this step's learning rate (schedule applied by caller) */
    float momentum;     /* SGDM, e.g. 0.9 */
    float weight_decay; /* decoupled (AdamW-style for Adam; L2 into grad for SGDM) */
    float beta1, beta2, eps; /* Adam */
    xmc_loss loss;
    int64_t step;       /* 1-based step count (Adam bias correction) */
} xmc_ova_hparams;

typedef struct xmc_ova xmc_ova;

int xmc_ova_create(const xmc_ova_config *cfg, xmc_ova **out, xmc_error *err);
void xmc_ova_free(xmc_ova *h);

/* One fused training step on rows `rows[0..B)` of Y (rows == NULL: rows 0..B-1
 * of Y). E is B x dim row-major. On return dE (B x dim) holds
 * d(sum loss)/dE from this head's labels (overwritten, not accumulated).
 * If loss_out is non-NULL the summed loss over the B x n_labels entries is
 * computed too (stable form; costs extra, so callers ask every N steps).
 * Does not allocate. Y values are the targets (soft targets allowed, in
 * [0, 1]; NULL values = all ones).
 * Losses per entry (x logit, y target): BCE max(x,0) - x y + log1p(e^-|x|);
 * squared hinge y max(0,1-x)^2 + (1-y) max(0,1+x)^2 (= max(0, 1 - s x)^2,
 * s = 2y-1, for hard targets). Sum reduction: scale lr by 1/B against a
 * per-example-mean formulation.
 * Optimizers: SGDM g = dW + wd W, m = momentum m + g, W -= lr m (bf16 W:
 * m and W stochastically rounded); Adam (AdamW, decoupled wd) uses
 * hp->step for bias correction (<= 0: the head's own step count).
 * Determinism: bit-identical for a fixed seed and thread count; W after the
 * step does not depend on the thread count. Not thread-safe on one head. */
int xmc_ova_train_step(xmc_ova *h, const float *E, int B, const xmc_csr *Y,
                       const int64_t *rows, const xmc_ova_hparams *hp, float *dE,
                       double *loss_out, xmc_error *err);

/* Exact top-k scores E W^T per row: labels (B x k, global ids, -1 when fewer
 * than k labels) and scores (B x k, -inf in unfilled slots), best first;
 * ties go to the lower label id. Scores are exact fp32 dot products with
 * the stored weights (bf16 weights are widened, not E rounded). Threads
 * split the rows (use B >= threads). Uses only the head's scratch (no
 * allocation); O(B*C) extra memory, heaps live in labels/scores. To merge
 * label shards, concatenate their per-row lists and keep the k best by the
 * same order. */
int xmc_ova_topk(const xmc_ova *h, const float *E, int B, int k, int32_t *labels,
                 float *scores, xmc_error *err);

/* Scores e . w_l of one embedding e (dim) for n labels (global ids of this
 * head's shard) into out: fp32 dot products with the stored weights (bf16
 * widened), equal to xmc_ova_topk's to rounding (the kNN blend's extra
 * candidates, src/model/neighbors.c). */
int xmc_ova_score_labels(const xmc_ova *h, const float *e, const int32_t *labels, int n,
                         float *out, xmc_error *err);

/* Weights as fp32 rows [l0, l1) of this head into out ((l1-l0) x dim).
 * set_rows rounds to nearest-even for a bf16 head; optimizer state is kept. */
int xmc_ova_get_rows(const xmc_ova *h, int64_t l0, int64_t l1, float *out, xmc_error *err);
int xmc_ova_set_rows(xmc_ova *h, int64_t l0, int64_t l1, const float *in, xmc_error *err);

/* Copy weights and optimizer state (bit for bit) of the labels dst and src
 * have in common (global ids: label_offset ranges) from src into dst, and
 * src's step count: re-sharding a checkpoint (docs/dist.md). Both must have
 * the same dim, dtype and optimizer. Does not allocate. */
int xmc_ova_copy_rows(xmc_ova *dst, const xmc_ova *src, xmc_error *err);

const xmc_ova_config *xmc_ova_get_config(const xmc_ova *h);
/* Bytes of weights + optimizer state + per-thread scratch. */
size_t xmc_ova_bytes(const xmc_ova *h);
/* The parts of xmc_ova_bytes: W; optimizer state (SGDM momentum in W's
 * dtype, or Adam's two fp32 moments); step scratch (all threads). */
size_t xmc_ova_param_bytes(const xmc_ova *h);
size_t xmc_ova_state_bytes(const xmc_ova *h);
size_t xmc_ova_scratch_bytes(const xmc_ova *h);
/* Train steps taken (saved with the head). */
int64_t xmc_ova_steps(const xmc_ova *h);

/* Re-size the step scratch for a new max_batch and the current thread
 * count (xmc_get_threads(); scratch is sized for the thread count at
 * create/load/reserve, and later calls use at most that many threads).
 * Allocates: call between steps, e.g. after load for a larger predict
 * batch. On failure the head keeps its old scratch. */
int xmc_ova_reserve(xmc_ova *h, int max_batch, xmc_error *err);

/* Serialise weights and optimizer state (for bit-identical resume) into a
 * stream / read them back. Format: magic, version, config, CRC-32. */
int xmc_ova_save(const xmc_ova *h, FILE *f, const char *path, xmc_error *err);
int xmc_ova_load(FILE *f, const char *path, xmc_ova **out, xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
