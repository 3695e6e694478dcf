/* xmc ffi: the fixed fan-in (FFI) sparse classifier of SPARTEX, its fused
 * training pass, dynamic sparse training (prune / regrow) and the math of the
 * auxiliary meta-classifier.
 *
 * Ullah, Schultheis, Lasby, Ioannou, Babbar, "Navigating Extremes: Dynamic
 * Sparsity in Large Output Spaces", NeurIPS 2024 (SPARTEX); Schultheis &
 * Babbar, "Towards Memory-Efficient Training for Extremely Large Output
 * Spaces", ECML-PKDD 2023 (the fixed fan-in layer); Lasby et al., "Dynamic
 * Sparse Training with Structured Sparsity", ICLR 2024 (constant fan-in).
 *
 * Each label u has exactly F incoming weights W[u,k] on input features
 * idx[u,k] (distinct, sorted ascending), plus an optional bias:
 *     y[b,u]  = bias[u] + sum_k W[u,k] x[b, idx[u,k]]
 *     gW[u,k] = sum_b x[b, idx[u,k]] g[b,u]
 *     gx[b, idx[u,k]] += W[u,k] g[b,u]
 * Memory per label: (4 + 4) F bytes of weights and indices, plus 4F of SGD
 * momentum or 8F of Adam moments (+ 4 / 8 / 12 bytes for the bias).
 *
 * xmc_ffi mirrors xmc_ova (include/xmc/head.h) so the trainer can use either:
 * same hyper-parameters (xmc_ova_hparams), same train-step contract (sum
 * reduction, dE overwritten, sparse Y indexed by global label ids, label
 * shard [label_offset, label_offset + n_labels)), same loss definitions:
 *   BCE:            l(z, y) = softplus(z) - y z          g = sigmoid(z) - y
 *   squared hinge:  l(z, y) = y max(0, 1 - z)^2 + (1 - y) max(0, 1 + z)^2
 * (for soft targets y in [0, 1] the hinge is the y-weighted mix of the
 * positive and negative hinge terms). An xmc_ffi with fan_in == d_in is an
 * exact dense head (usable as the small meta-classifier head).
 *
 * Threading: OpenMP with the thread count set at create or xmc_ffi_reserve
 * (xmc_set_threads before); results are bit-identical run to run and for any
 * chunk size; W is bit-identical for any thread count too, dE and the loss
 * equal up to float rounding. A head is not safe for concurrent calls that
 * modify it.
 */
#ifndef XMC_FFI_H
#define XMC_FFI_H

#include "xmc/core.h"
#include "xmc/data.h"
#include "xmc/head.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMC_FFI_DEFAULT_CHUNK 128
#define XMC_FFI_MIN_CHUNK 1
#define XMC_FFI_MAX_CHUNK 65536
#define XMC_FFI_DEFAULT_INIT_STD 0.02f
/* Dynamic sparse training defaults (SPARTEX): topology frozen after 66% of
 * training; the magnitude threshold decays by cosine to 1e-4. */
#define XMC_FFI_DEFAULT_REWIRE_END_FRAC 0.66
#define XMC_FFI_REWIRE_THRESHOLD_FINAL 1e-4f
/* Auxiliary meta-classifier default (SPARTEX): alpha starts at 0.4. */
#define XMC_FFI_DEFAULT_AUX_SCALE 0.4

typedef struct xmc_ffi_config {
    int64_t n_labels;     /* labels in this head (shard), >= 1 */
    int64_t label_offset; /* global id of its first label */
    int d_in;             /* input dimension d */
    int fan_in;           /* F in [1, d_in]; sparsity = 1 - F / d_in */
    int bias;             /* 1: a trained per-label bias (init 0) */
    xmc_dtype dtype;      /* XMC_DT_F32 only (bf16: XMC_EUNSUPPORTED) */
    xmc_head_opt opt;     /* SGD with momentum or Adam */
    int64_t chunk;        /* labels per chunk, 0 = XMC_FFI_DEFAULT_CHUNK */
    int max_batch;        /* largest B passed to train_step */
    uint64_t seed;        /* init of W ~ N(0, init_std^2) and idx; rewiring */
    float init_std;       /* 0 = XMC_FFI_DEFAULT_INIT_STD */
} xmc_ffi_config;

typedef struct xmc_ffi xmc_ffi;

/* Validates cfg (XMC_EINVAL naming the field), allocates weights, indices,
 * optimizer state and the per-step scratch (one block each), and draws
 * W[u,:] ~ N(0, init_std^2), idx[u,:] = F distinct uniform inputs, sorted,
 * from the RNG stream of the GLOBAL label id: a sharded head holds exactly
 * the rows of the unsharded one. Free with xmc_ffi_free. */
int xmc_ffi_create(const xmc_ffi_config *cfg, xmc_ffi **out, xmc_error *err);
void xmc_ffi_free(xmc_ffi *h);

/* One fused training step (semantics of xmc_ova_train_step): rows rows[0..B)
 * of Y (NULL: rows 0..B-1), E is B x d_in row-major, dE (B x d_in) is
 * overwritten with d(sum loss)/dE (using W before this step's update);
 * loss_out (may be NULL) gets the summed loss over B x n_labels.
 * Optimizers as xmc_ova: SGDM g = gW + wd W, m = momentum m + g, W -= lr m;
 * Adam = AdamW (decoupled wd, applied first), bias corrected with hp->step
 * (<= 0: the head's own step count). The bias gets no weight decay.
 * Labels are processed in chunks: logits of the chunk, gradient in place with
 * Y applied sparsely, dE accumulation, gW, update. No B x L buffer, no
 * allocation. On error nothing is modified. */
int xmc_ffi_train_step(xmc_ffi *h, const float *E, int B, const xmc_csr *Y,
                       const int64_t *rows, const xmc_ova_hparams *hp, float *dE,
                       double *loss_out, xmc_error *err);
/* As above with the loss multiplied by loss_scale (gradients dE, gW and gb
 * are scaled; loss_out reports the UNSCALED loss). SPARTEX's auxiliary
 * objective (1 - alpha) L_main + alpha L_meta uses loss_scale = 1 - alpha. */
int xmc_ffi_train_step_ex(xmc_ffi *h, const float *E, int B, const xmc_csr *Y,
                          const int64_t *rows, const xmc_ova_hparams *hp, float loss_scale,
                          float *dE, double *loss_out, xmc_error *err);

/* Logits of labels [l0, l1) of this head for B rows of E into out
 * (B x (l1 - l0), row-major). Allocates O(B d) scratch. */
int xmc_ffi_logits(const xmc_ffi *h, const float *E, int B, int64_t l0, int64_t l1,
                   float *out, xmc_error *err);
/* Exact top-k logits per row: labels (B x k, global ids, -1 when fewer than k
 * labels) and scores (B x k, -inf in unfilled slots), best first, ties to the
 * smaller label id (as xmc_ova_topk; to merge shards, concatenate the lists
 * and keep the k best by that order). B <= max_batch (xmc_ffi_reserve to
 * grow it). Uses the head's step scratch, no allocation; threads split the
 * rows (B >= 16 threads to use them all). Not concurrently with another call
 * on the same head. */
int xmc_ffi_topk(const xmc_ffi *h, const float *E, int B, int k, int32_t *labels,
                 float *scores, xmc_error *err);

/* Rows [l0, l1) of this head: W ((l1-l0) x F), idx ((l1-l0) x F) and bias
 * (l1-l0; ignored / left alone without a bias). Any output may be NULL. */
int xmc_ffi_get_rows(const xmc_ffi *h, int64_t l0, int64_t l1, float *W, int32_t *idx,
                     float *bias, xmc_error *err);
/* Replace rows [l0, l1): each label's F indices must be in [0, d_in) and
 * distinct (XMC_EINVAL otherwise, nothing changed); they are stored sorted
 * (W permuted alike) and, as the topology may change, the rows' optimizer
 * state is zeroed. idx NULL keeps the topology (W in stored order) and the
 * optimizer state, as xmc_ova_set_rows; bias NULL keeps the bias. */
int xmc_ffi_set_rows(xmc_ffi *h, int64_t l0, int64_t l1, const float *W, const int32_t *idx,
                     const float *bias, xmc_error *err);

const xmc_ffi_config *xmc_ffi_get_config(const xmc_ffi *h);
/* Bytes of parameters + indices + optimizer state per label for a config:
 * (4 + 4) F + 4F (SGDM) or 8F (Adam), + (4 + 4 or 8) with a bias. */
size_t xmc_ffi_bytes_per_label(const xmc_ffi_config *cfg);
/* Total bytes held: n_labels * bytes_per_label + per-step scratch, and its
 * parts: W + idx (+ bias); optimizer state; step scratch (all threads). */
size_t xmc_ffi_bytes(const xmc_ffi *h);
size_t xmc_ffi_param_bytes(const xmc_ffi *h);
size_t xmc_ffi_state_bytes(const xmc_ffi *h);
size_t xmc_ffi_scratch_bytes(const xmc_ffi *h);
/* Train steps taken (saved with the head). */
int64_t xmc_ffi_steps(const xmc_ffi *h);
/* Re-size the step scratch for a new max_batch and the current thread count
 * (xmc_get_threads()). Allocates: call between steps. On failure the head
 * keeps its old scratch and max_batch. */
int xmc_ffi_reserve(xmc_ffi *h, int max_batch, xmc_error *err);

/* Weights, indices, bias, optimizer state, the rewiring round and the frozen
 * flag (bit-identical resume). Format: magic "XMCFFI", version, config,
 * arrays, CRC-32. load validates the indices (XMC_ECORRUPT). */
int xmc_ffi_save(const xmc_ffi *h, FILE *f, const char *path, xmc_error *err);
int xmc_ffi_load(FILE *f, const char *path, xmc_ffi **out, xmc_error *err);
/* Copy every row (weights, input indices, bias, optimizer state; bit for
 * bit) of the labels dst and src have in common (global ids) from src into
 * dst, and src's step / rewiring-round counts and frozen flag: re-sharding
 * a checkpoint (docs/dist.md). Same d_in, fan_in, optimizer and bias
 * required. Does not allocate. */
int xmc_ffi_copy_rows(xmc_ffi *dst, const xmc_ffi *src, xmc_error *err);

/* ------------------------------------------------ dynamic sparse training */

/* Prune by magnitude and regrow (SET-style random regrowth under the fixed
 * fan-in constraint, as SPARTEX):
 *  - fraction > 0: prune exactly round(fraction * n_labels * F) weights with
 *    the globally (within this head) smallest |W|, ties in label order;
 *  - fraction == 0: prune every weight with |W| < threshold.
 * Each pruned slot of label u is regrown at a new uniformly random input not
 * used by u before this call (when fewer are free, pruned inputs may come
 * back), with weight 0 and zeroed optimizer state; indices are re-sorted.
 * Random streams: (seed, rewiring round, global label id): deterministic and
 * independent of the thread count. *n_pruned (may be NULL) gets the count.
 * A frozen topology is never touched: XMC_ESTATE. */
int xmc_ffi_rewire(xmc_ffi *h, double fraction, float threshold, int64_t *n_pruned,
                   xmc_error *err);
/* Freeze the topology for good (rewire then fails with XMC_ESTATE). */
void xmc_ffi_freeze(xmc_ffi *h);
int xmc_ffi_frozen(const xmc_ffi *h);
int64_t xmc_ffi_rewire_rounds(const xmc_ffi *h);

typedef struct xmc_ffi_schedule {
    int64_t total_steps;     /* training steps */
    int64_t rewire_interval; /* rewire every this many steps; 0 = never */
    int64_t rewire_end;      /* last step that may rewire; <= 0: 0.66 total */
    float rewire_threshold;  /* initial magnitude threshold (cosine-decayed) */
    double rewire_fraction;  /* > 0: prune this fraction instead */
} xmc_ffi_schedule;

/* The effective rewire_end. */
int64_t xmc_ffi_schedule_end(const xmc_ffi_schedule *s);
/* 1 when step (1-based) rewires: interval > 0, step % interval == 0 and
 * step <= end. */
int xmc_ffi_schedule_due(const xmc_ffi_schedule *s, int64_t step);
/* Threshold at step: 1e-4 + (rewire_threshold - 1e-4) (1 + cos(pi s/end))/2
 * for s in [0, end], 1e-4 after. */
float xmc_ffi_schedule_threshold(const xmc_ffi_schedule *s, int64_t step);
/* Call after train step `step`: rewires when due, then freezes the topology
 * once step >= end. No-op on a frozen head. *n_pruned (may be NULL). */
int xmc_ffi_schedule_apply(xmc_ffi *h, const xmc_ffi_schedule *s, int64_t step,
                           int64_t *n_pruned, xmc_error *err);

/* ------------------------------------------ auxiliary meta-classifier math */

/* Multi-hot cluster targets for the meta head: row b of the output holds
 * cluster c (value 1, sorted, unique) iff row rows[b] of Y (NULL: row b) has
 * a positive (value > 0) label l with label_cluster[l] == c. Y's column ids
 * are global label ids < n_labels. The output is written into caller arrays
 * indptr (B + 1) and indices (cap); wrap them as an xmc_csr {B, n_clusters,
 * indptr, indices, NULL}. cap = B * min(n_clusters, max labels per row)
 * always suffices; XMC_EINVAL when it does not (output then incomplete), or
 * when a label or cluster id is out of range. No allocation. */
int xmc_ffi_aux_targets(const xmc_csr *Y, const int64_t *rows, int B,
                        const int32_t *label_cluster, int64_t n_labels, int32_t n_clusters,
                        int64_t *indptr, int32_t *indices, int64_t cap, xmc_error *err);
/* alpha_t = aux_scale (1 + cos(pi epoch / cutoff)) / 2 for epoch < cutoff,
 * else 0 (the meta head is then dropped). epoch may be fractional. */
double xmc_ffi_aux_alpha(double aux_scale, double epoch, double meta_cutoff_epoch);

#ifdef __cplusplus
}
#endif
#endif
