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

typedef enum xmc_loss { XMC_LOSS_BCE = 0, XMC_LOSS_SQHINGE = 1 } xmc_loss;
typedef enum xmc_dtype { XMC_DT_F32 = 0, XMC_DT_BF16 = 1 } xmc_dtype;
typedef enum xmc_head_opt { XMC_HEAD_SGDM = 0, XMC_HEAD_ADAM = 1 } xmc_head_opt;

#define XMC_OVA_DEFAULT_CHUNK 2048
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
 * Does not allocate. Y values are the targets (soft targets allowed). */
int xmc_ova_train_step(xmc_ova *h, const float *E, int B, const xmc_csr *Y,
                       const int64_t *rows, const xmc_ova_hparams *hp, float *dE,
                       double *loss_out, xmc_error *err);

/* Exact top-k scores E W^T per row: labels (B x k, global ids, -1 when fewer
 * than k labels) and scores (B x k), best first. O(B*C + B*k) extra memory. */
int xmc_ova_topk(const xmc_ova *h, const float *E, int B, int k, int32_t *labels,
                 float *scores, xmc_error *err);

/* Weights as fp32 rows [l0, l1) of this head into out ((l1-l0) x dim). */
int xmc_ova_get_rows(const xmc_ova *h, int64_t l0, int64_t l1, float *out, xmc_error *err);
int xmc_ova_set_rows(xmc_ova *h, int64_t l0, int64_t l1, const float *in, xmc_error *err);

const xmc_ova_config *xmc_ova_get_config(const xmc_ova *h);
/* Bytes of weights + optimizer state + per-thread scratch. */
size_t xmc_ova_bytes(const xmc_ova *h);

/* Serialise weights and optimizer state (for bit-identical resume) into a
 * stream / read them back. Format: magic, version, config, CRC-32. */
int xmc_ova_save(const xmc_ova *h, FILE *f, const char *path, xmc_error *err);
int xmc_ova_load(FILE *f, const char *path, xmc_ova **out, xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
