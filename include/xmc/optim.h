/* xmc optim: the encoder's optimizers and the learning-rate schedule.
 *
 * Dense AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
 * ICLR 2019) runs one loop over the encoder's flat parameter buffer; the
 * moments m, v share its layout. Tensors flagged no_decay (biases) get no
 * weight decay.
 *
 * Sparse-row ("lazy") Adam for embedding tables, as PyTorch's SparseAdam:
 * at step t only the rows touched by the batch are updated. For a touched
 * row r with gradient g:
 *     m_r = beta1 m_r + (1 - beta1) g
 *     v_r = beta2 v_r + (1 - beta2) g^2
 *     w_r -= lr * (m_r / (1 - beta1^t)) / (sqrt(v_r / (1 - beta2^t)) + eps)
 *     w_r -= lr * wd * w_r        (decoupled decay, touched rows only)
 * with t the GLOBAL step count. Untouched rows keep their weights AND their
 * moments (no decay of m, v between visits): this is what makes a step cost
 * O(touched rows) instead of O(table). The decay term is applied before the
 * Adam step (like torch.optim.AdamW), on touched rows only.
 *
 * Sparse-row SGD with momentum for embedding tables, the alternative
 * (xmc_table_opt): for a touched row r with gradient g
 *     m_r = mu m_r + g
 *     w_r -= lr * wd * w_r        (decoupled decay, touched rows only)
 *     w_r -= lr * m_r
 * and, as above, untouched rows keep their weights and momentum. Why both:
 * Adam divides each coordinate's step by its own gradient scale, so a
 * feature seen in two documents moves as far as one seen in two thousand
 * (sign-like steps, whose implicit bias is the l-inf margin), while SGD
 * steps in proportion to the gradient (the l2 margin of a linear SVM). Where
 * the inputs outnumber the training rows (a text vocabulary: most features
 * rare) that lets Adam fit rare features to single documents; SGD-m gives
 * reuters21578 +1.2 P@1 and rcv1sub1 +1.3 on validation, and loses on
 * small, dense feature sets (bibtex, delicious), where Adam stays
 * (docs/renee.md, round 8). One momentum buffer: memory 1 float per
 * table parameter instead of 2.
 *
 * Schedule (per parameter group): linear warm-up from 0 to lr over `warmup`
 * steps, then cosine decay to lr * min_ratio at `total` steps.
 *
 * Memory: 2 floats per parameter (1 per table parameter under SGD-m).
 * Threading: OpenMP over elements / rows;
 * results do not depend on the thread count.
 */
#ifndef XMC_OPTIM_H
#define XMC_OPTIM_H

#include "xmc/core.h"
#include "xmc/encoder.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMC_ADAM_DEFAULT_BETA1 0.9f
#define XMC_ADAM_DEFAULT_BETA2 0.999f
#define XMC_ADAM_DEFAULT_EPS 1e-8f

typedef struct xmc_adam_hparams {
    float lr;           /* this step's rate (schedule applied) */
    float beta1, beta2, eps;
    float weight_decay; /* decoupled */
    int64_t step;       /* 1-based global step (bias correction) */
} xmc_adam_hparams;

/* w -= ... over n floats; decay applies when `decay` is 1. */
void xmc_adamw_update(float *w, const float *g, float *m, float *v, int64_t n,
                      const xmc_adam_hparams *hp, int decay);

/* The embedding tables' optimizer (the dense tensors always take AdamW).
 * XMC_TABLE_AUTO is a training config's "the recipe's default", resolved
 * when the model is made (model.h). */
typedef enum xmc_table_opt {
    XMC_TABLE_AUTO = -1,
    XMC_TABLE_ADAM = 0, /* lazy Adam */
    XMC_TABLE_SGDM = 1  /* lazy SGD with momentum */
} xmc_table_opt;

/* Optimizer state of one encoder: moments for the dense buffer and for each
 * table (same layout as the parameters). */
typedef struct xmc_enc_optim {
    float *m, *v;         /* (n_params) */
    int64_t n_params;
    int n_tables;
    xmc_table_opt table_opt;
    float table_momentum; /* XMC_TABLE_SGDM: mu */
    float **tm, **tv;     /* per table (rows x cols); tv NULL under SGD-m */
    int64_t *table_n;     /* (n_tables) floats per table */
} xmc_enc_optim;

/* Zeroed state for e, its tables trained with `topt` (ADAM or SGDM; mu is
 * SGD-m's momentum). Free with xmc_enc_optim_free. */
int xmc_enc_optim_create(const xmc_encoder *e, xmc_table_opt topt, float mu,
                         xmc_enc_optim **out, xmc_error *err);
void xmc_enc_optim_free(xmc_enc_optim *o);
size_t xmc_enc_optim_bytes(const xmc_enc_optim *o);
/* What xmc_enc_optim_create(e, topt, ...) will hold, before creating it
 * (the memory plan). */
size_t xmc_enc_optim_plan_bytes(const xmc_encoder *e, xmc_table_opt topt);

/* One AdamW step on e's dense tensors (hp_dense) and a lazy Adam or SGD-m
 * step on its tables' touched rows (hp_table; SGD-m reads its lr and
 * weight_decay), using e->grads and the tables' compact gradients from the
 * last backward. */
void xmc_enc_optim_step(xmc_enc_optim *o, xmc_encoder *e, const xmc_adam_hparams *hp_dense,
                        const xmc_adam_hparams *hp_table);

/* Sparse-row Adam on one table (semantics above). */
void xmc_sparse_adam_step(xmc_sparse_table *t, float *m, float *v,
                          const xmc_adam_hparams *hp);

/* Sparse-row SGD with momentum on one table (semantics above). */
void xmc_sparse_sgdm_step(xmc_sparse_table *t, float *m, float lr, float mu, float wd);

/* Serialise / restore moments (for bit-identical resume): magic, version,
 * sizes, the table optimizer, values, CRC-32. Load into an optimizer
 * created for the same encoder and table optimizer (version-1 files, from
 * before SGD-m, are Adam's); fails with XMC_ECORRUPT when they differ. */
int xmc_enc_optim_save(const xmc_enc_optim *o, FILE *f, const char *path, xmc_error *err);
int xmc_enc_optim_load(xmc_enc_optim *o, FILE *f, const char *path, xmc_error *err);

typedef struct xmc_schedule {
    float lr;        /* peak rate */
    int64_t warmup;  /* steps of linear warm-up */
    int64_t total;   /* steps in the run */
    float min_ratio; /* final rate / peak, e.g. 0 */
} xmc_schedule;

/* Rate for 1-based step t: lr*t/warmup while t <= warmup, then
 * lr*(min + (1-min)*0.5*(1+cos(pi*(t-warmup)/(total-warmup)))). */
float xmc_schedule_lr(const xmc_schedule *s, int64_t t);

#ifdef __cplusplus
}
#endif
#endif
