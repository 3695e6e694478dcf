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
 * Schedule (per parameter group): linear warm-up from 0 to lr over `warmup`
 * steps, then cosine decay to lr * min_ratio at `total` steps.
 *
 * Memory: 2 floats per parameter. Threading: OpenMP over elements / rows;
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

/* Optimizer state of one encoder: moments for the dense buffer and for each
 * table (same layout as the parameters). */
typedef struct xmc_enc_optim {
    float *m, *v;         /* (n_params) */
    int64_t n_params;
    int n_tables;
    float **tm, **tv;     /* per table (rows x cols) */
    int64_t *table_n;     /* (n_tables) floats per table */
} xmc_enc_optim;

/* Zeroed moments for e. Free with xmc_enc_optim_free. */
int xmc_enc_optim_create(const xmc_encoder *e, xmc_enc_optim **out, xmc_error *err);
void xmc_enc_optim_free(xmc_enc_optim *o);
size_t xmc_enc_optim_bytes(const xmc_enc_optim *o);

/* One AdamW step on e's dense tensors (hp_dense) and lazy Adam on its
 * tables' touched rows (hp_table), using e->grads and the tables' compact
 * gradients from the last backward. */
void xmc_enc_optim_step(xmc_enc_optim *o, xmc_encoder *e, const xmc_adam_hparams *hp_dense,
                        const xmc_adam_hparams *hp_table);

/* Sparse-row Adam on one table (semantics above). */
void xmc_sparse_adam_step(xmc_sparse_table *t, float *m, float *v,
                          const xmc_adam_hparams *hp);

/* Serialise / restore moments (for bit-identical resume): magic, version,
 * sizes, values, CRC-32. Load into an optimizer created for the same
 * encoder; fails with XMC_ECORRUPT when the sizes differ. */
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
