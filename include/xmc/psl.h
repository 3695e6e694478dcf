/* xmc psl: the pick-some-labels (PSL) core of UniDEC and DEPSL (Kharbanda et
 * al., "UniDEC: Unified Dual Encoder and Classifier Training for Extreme
 * Multi-Label Classification", WWW 2025; thesis ch. 2). Everything here works
 * on a batch of queries Q_B and its in-batch label pool L_B, never on all L
 * labels, so training memory does not grow with L (apart from the classifier
 * table Ψ and the ANN index).
 *
 *  1. Pool construction (xmc_psl_sampler): for each query i of Q_B sample up
 *     to β positives of Y_i and n hard negatives from its mined list H_i \ Y_i;
 *     L_B is their union (deduplicated, in order of first appearance);
 *     P_i^B = every positive of i that is in L_B (whoever brought it in), with
 *     its target value; P_l^B is the transpose (label -> queries).
 *  2. Losses over the |Q_B| x |L_B| score matrix S (xmc_psl_loss): decoupled
 *     softmax or SupCon, query->label and label->query, mixed by λ; auxiliary
 *     BCE for the classifier head (xmc_psl_bce).
 *  3. Heads: Φ_D = normalize(tanh(g1(h))) and Φ_C = g2(h) (xmc_psl_head),
 *     the classifier lookup table Ψ (L x d) with sparse row updates
 *     (xmc_psl_table), and the pool scores S = A B^T (xmc_psl_scores).
 *  4. Hard-negative mining (xmc_psl_mine): the top-k labels by <Φ_D(x), Φ_D(z)>
 *     that are not positives, exact (blocked GEMM) or through an HNSW index.
 *  5. The recipe assembled from these (xmc_unidec_*, src/model/unidec.c):
 *     train, predict (exact or HNSW, zero-shot labels from text), save/load.
 *
 * The shared encoder Φ and its optimizer come from encoder.h / optim.h;
 * docs/unidec.md says how the pieces are assembled.
 * Nothing here allocates after create, prints or aborts; randomness comes
 * from the user's seed and the caller's step number (reproducible, also on
 * resume).
 */
#ifndef XMC_PSL_H
#define XMC_PSL_H

#include "xmc/core.h"
#include "xmc/data.h"
#include "xmc/hnsw.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tunables: DEFAULT / MIN / MAX. */
#define XMC_PSL_DEFAULT_BETA 3      /* β: positives sampled per query */
#define XMC_PSL_MIN_BETA 1
#define XMC_PSL_MAX_BETA 1024
#define XMC_PSL_DEFAULT_NEG 6       /* n: hard negatives sampled per query */
#define XMC_PSL_MIN_NEG 0
#define XMC_PSL_MAX_NEG 1024
#define XMC_PSL_DEFAULT_TAU 5       /* τ: epochs between re-mining / re-clustering */
#define XMC_PSL_DEFAULT_TEMPERATURE 0.05f /* t: logits are s / t (logit scale 20) */
#define XMC_PSL_DEFAULT_LAMBDA 0.5f /* λ: query->label weight (label->query 1-λ) */
#define XMC_PSL_DEFAULT_DROPOUT 0.1f
#define XMC_PSL_MAX_BATCH 65536

/* ------------------------------------------------------------- the pool */

/* One batch's pool. Columns are pool positions 0..nl-1 (labels[c] is the
 * global label id); rows are batch positions 0..nq-1 (queries[r] is the
 * dataset row). P_i^B (row side) is CSR over pool columns, ascending within
 * a row; P_l^B (column side) is its transpose, ascending batch rows. Values
 * are the targets (1 for hard labels, soft targets otherwise). */
typedef struct xmc_psl_pool {
    int nq;              /* |Q_B| */
    int nl;              /* |L_B| */
    const int64_t *queries; /* (nq) dataset rows */
    int32_t *labels;     /* (nl) global label ids of L_B */
    int32_t *qptr;       /* (nq + 1) P_i^B = qcol[qptr[i] .. qptr[i+1]) */
    int32_t *qcol;       /* (qptr[nq]) pool columns */
    float *qval;         /* (qptr[nq]) target values */
    int32_t *lptr;       /* (nl + 1) P_l^B = lrow[lptr[c] .. lptr[c+1]) */
    int32_t *lrow;       /* (qptr[nq]) batch rows */
    float *lval;         /* (qptr[nq]) target values */
} xmc_psl_pool;

/* Fill lptr/lrow/lval (caller-sized: nl+1 and qptr[nq]) from the row side.
 * For pools built by hand (tests, other samplers). */
void xmc_psl_pool_transpose(xmc_psl_pool *p);
/* Check the invariants (ranges, ascending, transpose consistent, values
 * finite and >= 0): XMC_OK or XMC_EINVAL. */
int xmc_psl_pool_check(const xmc_psl_pool *p, xmc_error *err);

/* Mined hard negatives H, one list per dataset row: either dense (n x k
 * int32 label ids, -1 = empty slot; xmc_psl_mine writes this) or a CSR
 * (n x L, its indices are the lists). Set exactly one of ids / csr. */
typedef struct xmc_psl_negs {
    int64_t n;           /* rows (dense form) */
    int k;               /* slots per row (dense form) */
    const int32_t *ids;  /* (n, k) or NULL */
    const xmc_csr *csr;  /* or NULL */
} xmc_psl_negs;

typedef struct xmc_psl_sampler_config {
    int max_batch;       /* largest |Q_B| */
    int beta;            /* β, positives per query (XMC_PSL_DEFAULT_BETA) */
    int n_neg;           /* n, hard negatives per query (XMC_PSL_DEFAULT_NEG) */
    int64_t n_labels;    /* L */
    int64_t max_row_nnz; /* largest |Y_i| (bounds |P_i^B|); 0 = |L_B| max */
    int random_neg;      /* without H: 1 = n uniform random non-positive
                            labels per query, 0 = no negatives (in-batch only) */
    const int32_t *neg_labels; /* random negatives come from these label ids
                            (e.g. the labels seen in training, so that
                            zero-shot labels are never pushed away); NULL =
                            all L. Not copied: keep it alive. */
    int64_t n_neg_labels;
    uint64_t seed;
} xmc_psl_sampler_config;

void xmc_psl_sampler_config_default(xmc_psl_sampler_config *c);

typedef struct xmc_psl_sampler xmc_psl_sampler;

/* All scratch (pool arrays, dedup hash) is sized here from max_batch, β, n
 * and max_row_nnz; build never allocates. Free with xmc_psl_sampler_free. */
int xmc_psl_sampler_create(const xmc_psl_sampler_config *cfg, xmc_psl_sampler **out,
                           xmc_error *err);
void xmc_psl_sampler_free(xmc_psl_sampler *s);
size_t xmc_psl_sampler_bytes(const xmc_psl_sampler *s);
/* Largest |L_B| (max_batch * (β + n)). */
int xmc_psl_sampler_max_pool(const xmc_psl_sampler *s);

/* Build the pool of rows[0..B) of Y (N x L; values NULL = hard 1s). H may
 * be NULL (before the first mining: random or no negatives, per config).
 * The draws depend only on (seed, step, the batch): the same step always
 * gives the same pool. Positives and negatives are drawn without
 * replacement (Floyd's algorithm); a hard negative that is a positive of
 * ITS query is skipped, but one that is a positive of ANOTHER query in the
 * batch enters that query's P_i^B. *pool points into the sampler (valid
 * until the next build or free). Fails with XMC_EINVAL on bad ids or B,
 * XMC_ENOMEM when |P^B| exceeds the capacity from max_row_nnz. */
int xmc_psl_sampler_build(xmc_psl_sampler *s, const xmc_csr *Y, const int64_t *rows, int B,
                          const xmc_psl_negs *H, uint64_t step, const xmc_psl_pool **pool,
                          xmc_error *err);

/* ------------------------------------------------------------- losses */

typedef enum xmc_psl_kind {
    XMC_PSL_DECOUPLED = 0, /* other positives left out of each denominator */
    XMC_PSL_SUPCON = 1,    /* all pool labels in the denominator */
} xmc_psl_kind;

typedef struct xmc_psl_loss_params {
    int kind;          /* xmc_psl_kind */
    float temperature; /* t > 0: logits z = s / t */
    float lambda;      /* λ in [0, 1]: λ L_{Q->L} + (1 - λ) L_{L->Q} */
} xmc_psl_loss_params;

void xmc_psl_loss_params_default(xmc_psl_loss_params *p);

/* Loss over S (nq x nl, row-major, S[i*nl + c] = score of query i, pool
 * label c) and its gradient dS = dloss/dS (overwritten; may be NULL).
 *
 * Query->label (anchor i over the pool, positives P_i^B, weights w_ip = the
 * target values, W_i = Σ_p w_ip):
 *   DECOUPLED  L_i = (1/W_i) Σ_{p∈P_i^B} w_ip [ log(e^{z_ip} + Σ_{l∈L_B\P_i^B} e^{z_il}) - z_ip ]
 *   SUPCON     L_i = (1/W_i) Σ_{p∈P_i^B} w_ip [ log(Σ_{l∈L_B} e^{z_il}) - z_ip ]
 *   L_{Q->L} = mean of L_i over the queries with P_i^B non-empty.
 * Label->query: the same with the roles swapped (anchor l over Q_B,
 * positives P_l^B), mean over the pool labels with P_l^B non-empty.
 * Total λ L_{Q->L} + (1-λ) L_{L->Q}; a direction with no anchors adds 0.
 * Stable: log-sum-exp around the row maximum, accumulated in double.
 * Single-threaded: O(nq nl) exps, small next to the GEMMs that make S. */
int xmc_psl_loss(const xmc_psl_pool *p, const float *S, const xmc_psl_loss_params *lp,
                 double *loss, float *dS, xmc_error *err);

/* One direction alone (dir 0 = query->label, 1 = label->query), with the
 * gradient scaled by `scale` and ADDED into dS (the building block of
 * xmc_psl_loss; returns the unscaled direction loss in *loss). */
int xmc_psl_loss_dir(const xmc_psl_pool *p, const float *S, int kind, float temperature,
                     int dir, float scale, double *loss, float *dS, xmc_error *err);

/* Auxiliary BCE on classifier scores over the pool: target y_ic = the value
 * of c in P_i^B, else 0; loss = (1/nq) Σ_i Σ_c [max(s,0) - s y + log1p(e^{-|s|})]
 * (summed over the pool, mean over queries). dS (may be NULL) is scaled by
 * `scale` and ADDED. */
int xmc_psl_bce(const xmc_psl_pool *p, const float *S, float scale, double *loss, float *dS,
                xmc_error *err);

/* ------------------------------------------------------------- heads */

/* S (na x nb) = A (na x d) B^T (nb x d): s_DE = Φ_D(x)·Φ_D(z) over the pool,
 * or s_CLF = Φ_C(x)·Ψ_l. OpenBLAS. */
void xmc_psl_scores(const float *A, int na, const float *B, int nb, int d, float *S);
/* Backward of the above: dA (na x d) and dB (nb x d) get dS B and dS^T A,
 * added when accumulate = 1, overwritten when 0 (either may be NULL). */
void xmc_psl_scores_backward(const float *A, int na, const float *B, int nb, int d,
                             const float *dS, float *dA, float *dB, int accumulate);

typedef enum xmc_psl_head_kind {
    XMC_PSL_HEAD_DE = 0,  /* Φ_D: y = normalize(dropout(tanh(h W^T + b))) */
    XMC_PSL_HEAD_CLF = 1, /* Φ_C: y = dropout(h W^T + b), not normalised */
} xmc_psl_head_kind;

#define XMC_PSL_HEAD_SLOTS 4 /* activation caches (queries, labels, ...) */

typedef struct xmc_psl_head_config {
    int kind;          /* xmc_psl_head_kind */
    int d_in;          /* width of the encoder output h */
    int d_out;         /* width of the head output */
    float dropout;     /* [0, 1), XMC_PSL_DEFAULT_DROPOUT */
    int max_batch;     /* largest B per forward (per slot) */
    int slots;         /* activation caches, 1..XMC_PSL_HEAD_SLOTS (2: x and z) */
    int identity_init; /* 1: W = I (d_in == d_out), b = 0; 0: N(0, 1/d_in) */
    uint64_t seed;     /* init and dropout masks */
} xmc_psl_head_config;

void xmc_psl_head_config_default(xmc_psl_head_config *c, int kind, int d_in, int d_out);

/* A head: parameters [W (d_out x d_in) | b (d_out)] in one buffer, grads and
 * AdamW moments in the same layout, activation caches per slot. */
typedef struct xmc_psl_head {
    xmc_psl_head_config cfg;
    float *params;       /* (n_params): W then b */
    float *grads;        /* (n_params) */
    float *m, *v;        /* (n_params) AdamW moments */
    int64_t n_params;
    float *W, *b;        /* views into params */
    float *gW, *gb;      /* views into grads */
    void *impl;          /* caches */
} xmc_psl_head;

int xmc_psl_head_create(const xmc_psl_head_config *cfg, xmc_psl_head **out, xmc_error *err);
void xmc_psl_head_free(xmc_psl_head *h);
size_t xmc_psl_head_bytes(const xmc_psl_head *h);

/* Y (B x d_out) = head(H (B x d_in)). train = 1 applies dropout (mask from
 * (seed, step, slot, row): thread-count independent) and caches what
 * backward needs in `slot` (B <= max_batch); train = 0 is deterministic (no
 * dropout), takes any B and leaves the caches alone. Does not allocate. */
int xmc_psl_head_forward(xmc_psl_head *h, int slot, const float *H, int B, int train,
                         uint64_t step, float *Y, xmc_error *err);
/* Back-propagate dY (B x d_out) through the last train forward of `slot`;
 * H must be the same input. Adds dW, db into grads; dH (B x d_in) gets
 * dY-through-the-head, ADDED when accumulate = 1 (two heads feeding one
 * encoder), overwritten when 0. Does not allocate. */
int xmc_psl_head_backward(xmc_psl_head *h, int slot, const float *H, const float *dY, int B,
                          float *dH, int accumulate, xmc_error *err);
void xmc_psl_head_zero_grad(xmc_psl_head *h);
/* AdamW on [W | b] (no decay on b); hp->step is the 1-based global step.
 * Hyper-parameters are optim.h's xmc_adam_hparams fields. */
void xmc_psl_head_step(xmc_psl_head *h, float lr, float beta1, float beta2, float eps,
                       float weight_decay, int64_t step);
/* Parameters: magic, version, config, values, CRC-32 (moments included). */
int xmc_psl_head_save(const xmc_psl_head *h, FILE *f, const char *path, xmc_error *err);
int xmc_psl_head_load(FILE *f, const char *path, int max_batch, xmc_psl_head **out,
                      xmc_error *err);

/* The classifier lookup table Ψ (L x d): a step gathers the pool's rows,
 * and updates only them (sparse rows, like Renee's head but over L_B only). */
typedef enum xmc_psl_table_opt { XMC_PSL_TABLE_SGDM = 0, XMC_PSL_TABLE_ADAM = 1 } xmc_psl_table_opt;

typedef struct xmc_psl_table {
    int64_t L;
    int d;
    int opt;             /* xmc_psl_table_opt */
    float *w;            /* (L, d) Ψ */
    float *m;            /* (L, d) momentum (SGDM) or first moment (Adam) */
    float *v;            /* (L, d) second moment (Adam) or NULL */
} xmc_psl_table;

/* Ψ initialised N(0, init_std^2) from seed (init_std <= 0: 1/sqrt(d)). */
int xmc_psl_table_create(int64_t L, int d, int opt, float init_std, uint64_t seed,
                         xmc_psl_table **out, xmc_error *err);
void xmc_psl_table_free(xmc_psl_table *t);
size_t xmc_psl_table_bytes(const xmc_psl_table *t);
/* out (n x d) = Ψ rows ids[0..n) (ids must be in [0, L)). */
int xmc_psl_table_gather(const xmc_psl_table *t, const int32_t *ids, int n, float *out,
                         xmc_error *err);
/* Update rows ids[0..n) (UNIQUE, as a pool's labels are) with their
 * gradients g (n x d); untouched rows keep weights and optimizer state
 * (lazy, as SparseAdam):
 *   SGDM  m = momentum m + g + wd w;  w -= lr m
 *   ADAM  m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *         w = w (1 - lr wd) - lr m̂ / (sqrt(v̂) + eps), t = step (global). */
int xmc_psl_table_update(xmc_psl_table *t, const int32_t *ids, int n, const float *g, float lr,
                         float momentum, float beta1, float beta2, float eps,
                         float weight_decay, int64_t step, xmc_error *err);

/* Ψ and its optimizer state: magic, version, L, d, opt, values, CRC-32.
 * Load gives XMC_ECORRUPT on a bad magic, size, checksum or truncation. */
int xmc_psl_table_save(const xmc_psl_table *t, FILE *f, const char *path, xmc_error *err);
int xmc_psl_table_load(FILE *f, const char *path, xmc_psl_table **out, xmc_error *err);

/* ------------------------------------------------------------- mining */

/* For each query i (rows of Q, N x d) the top k labels of E (L x d) by inner
 * product <q_i, e_l> (cosine when both are normalised, as Φ_D outputs are)
 * that are NOT positives of Y row i (Y: N x L, may be NULL). ids (N x k)
 * best first, ties to the lower id, -1 in unfilled slots; sims (N x k,
 * may be NULL) the scores (-inf unfilled).
 * index == NULL: exact, blocked cblas_sgemm + per-query top-k (the
 * reference). index != NULL: an HNSW over E (XMC_METRIC_IP or COSINE,
 * ids = label ids) searched for k + |Y_i| neighbours in blocks of queries
 * with candidate list ef (<= 0: the index default), positives dropped.
 * Memory O(block * (block_labels + k)); OpenMP over queries. Allocates its
 * block scratch (it runs once every τ epochs, not per step). */
int xmc_psl_mine(const float *E, int64_t L, const float *Q, int64_t N, int d, const xmc_csr *Y,
                 int k, const xmc_hnsw *index, int ef, int32_t *ids, float *sims,
                 xmc_error *err);

/* ------------------------------------------------------------- recipe */

/* UniDEC / DEPSL end to end over a label-feature dataset (point texts and
 * label texts), with the `bag` text encoder (or `bert`: cfg.encoder) as the
 * shared Φ (src/model/unidec.c; docs/unidec.md). One step on a batch Q_B:
 *   pool = sampler(Q_B, H); H_all = Φ([x_i ; z_l]) in ONE encoder pass;
 *   DE:  S_DE = Φ_D(x) Φ_D(z)^T, loss_DE = psl_loss(S_DE, t_DE, λ)
 *   CLF: S_CLF = Φ_C(x) Ψ_{L_B}^T, loss_CLF = psl_loss(S_CLF, t_CLF, λ) (+ BCE)
 *   loss = λ_h loss_DE + (1 - λ_h) loss_CLF     (DEPSL: loss_DE only)
 * then backward through heads and encoder, AdamW (encoder, heads), lazy
 * row updates of Ψ. Every τ epochs from `mine_start`: embed labels and
 * queries with Φ_D, mine n·τ hard negatives per query (HNSW over the labels
 * when L >= hnsw_min_labels, else exact) and, with `cluster`, group queries
 * into batches by balanced clustering of Φ_D(x). */
typedef struct xmc_unidec_config {
    int depsl;            /* 1: DEPSL (DE head only); 0: UniDEC */
    int hidden;           /* encoder width h */
    int intermediate;     /* encoder.h intermediate layer h -> d_int (0 = none) */
    int intermediate_relu;/* 1: ReLU after it */
    int dim;              /* head output d */
    int64_t buckets;      /* bag hash buckets */
    int epochs, batch;
    int beta, n_neg, tau;
    int mine_start;       /* first epoch (0-based) that mines / clusters */
    int cluster;          /* 1: clustered batches after mining */
    int seen_negatives;   /* 1: negatives (random and mined) only among labels
                             with a training positive (labels without one are
                             then never seen in training, as if added later);
                             0: all L (default, the paper's setting) */
    int64_t hnsw_min_labels; /* mine through HNSW from this many labels */
    float temperature;    /* t for S_DE */
    float temperature_clf;/* t for S_CLF (unnormalised scores; 0.1) */
    float lambda;         /* query->label vs label->query */
    float lambda_head;    /* DE vs CLF */
    float bce;            /* weight of the auxiliary BCE on S_CLF (0 = off) */
    int kind;             /* xmc_psl_kind */
    float lr_enc, lr_head, lr_psi, wd, warmup;
    float dropout_enc, dropout_head;
    uint64_t seed;
    char encoder[16];     /* Φ's kind: "" or "bag" (default), or "bert" (after
                             xmc_bert_encoder_register; hidden, buckets ignored) */
    char encoder_extra[256]; /* bert: "HF_DIR[,max_len=N][,pool=mean|cls]" (bert.h) */
} xmc_unidec_config;

void xmc_unidec_config_default(xmc_unidec_config *c, int depsl);

typedef struct xmc_unidec xmc_unidec;

typedef struct xmc_unidec_stats {
    double loss_first, loss_last; /* mean loss of the first / last epoch */
    double train_s, mine_s;       /* seconds in steps / in mining + clustering */
    int64_t steps, planned_steps; /* taken / planned (the lr schedule's length) */
    size_t encoder_bytes, heads_bytes, psi_bytes, optim_bytes, step_bytes, negs_bytes;
    size_t index_bytes;           /* largest HNSW built while mining */
    uint64_t step_allocs;         /* xmc_malloc calls inside steps (must be 0) */
    int epochs_done;              /* epochs completed (< epochs after a stop_after) */
    double ckpt_s;                /* seconds writing checkpoints */
} xmc_unidec_stats;

/* Train on `train` (needs point texts and label texts, or label names).
 * Free with xmc_unidec_free. Progress goes to xmc_log. */
int xmc_unidec_train(const xmc_unidec_config *cfg, const xmc_dataset *train, xmc_unidec **out,
                     xmc_error *err);
void xmc_unidec_free(xmc_unidec *u);

/* Training with a checkpoint after every epoch, and resume from it. The
 * checkpoint (one file, rewritten atomically: temp + rename) holds the
 * config, the step, the encoder, heads and Ψ WITH their optimizer moments,
 * the mined negative lists and the query clusters of the current τ window,
 * and the stats, each section with a CRC-32: a resumed run is bit-identical
 * to an uninterrupted one with the same config (batch orders come from
 * (seed, epoch), pools from (seed, step), dropout from the saved step
 * counters). Its size is about 3 x (encoder + heads + Ψ) + N·nτ int32.
 * resume = 1: cfg must equal the checkpoint's (xmc_unidec_ckpt_info reads
 * it) and `train` must be the same data (N, L, rows with labels are
 * checked); training continues after the saved epoch. stop_after > 0: stop
 * after that many epochs of this call (st.epochs_done says where). */
#define XMC_UNIDEC_CKPT_FILE "unidec.ckpt" /* in a model directory (xmc train) */
typedef struct xmc_unidec_ckpt {
    const char *path;  /* checkpoint file (NULL: none written) */
    int resume;        /* 1: restore from path first */
    int stop_after;    /* epochs of this call, 0 = to the end */
    const char *note;  /* caller text kept in the checkpoint (e.g. data specs), may be NULL */
} xmc_unidec_ckpt;
int xmc_unidec_train_ckpt(const xmc_unidec_config *cfg, const xmc_dataset *train,
                          const xmc_unidec_ckpt *ck, xmc_unidec **out, xmc_error *err);
/* Config, epochs done and note of a checkpoint (header only, checksummed).
 * *note (may be NULL) freed with xmc_free. */
int xmc_unidec_ckpt_info(const char *path, xmc_unidec_config *cfg, int *epochs_done, char **note,
                         xmc_error *err);

void xmc_unidec_get_stats(const xmc_unidec *u, xmc_unidec_stats *s);

/* A trained model for prediction, in one file written atomically (temp +
 * rename): magic, version, config, label texts (the ones trained on), the
 * encoder (encoder.h format), the heads and Ψ (each with its CRC-32).
 * Optimizer state, mined lists and clusters are not in it: a loaded model
 * predicts (and serves zero-shot labels); resume uses xmc_unidec_train_ckpt's
 * checkpoint. */
int xmc_unidec_save(const xmc_unidec *u, const char *path, xmc_error *err);
int xmc_unidec_load(const char *path, xmc_unidec **out, xmc_error *err);

enum { XMC_UNIDEC_SCORE_DE = 1, XMC_UNIDEC_SCORE_CLF = 2, XMC_UNIDEC_SCORE_BOTH = 3 };
/* Top-k of every row of ds (point texts) over all labels, scored by
 * <[Φ_D(x) ; normalize(Φ_C(x))], [Φ_D(z_l) ; normalize(Ψ_l)]> (or one half,
 * `which`; DEPSL has only the DE half). As an N x L' CSR (free with
 * xmc_csr_free). label_texts NULL: the training labels (L' = L). Otherwise
 * L' = label_texts->n >= L labels embedded from these texts, the first L
 * being the training labels: labels l >= L were never trained (zero-shot)
 * and have no Ψ row, so only their DE half scores them (their CLF half is
 * 0). ef <= 0: exact search (the reference); ef > 0: an HNSW (IP metric)
 * over the label vectors, searched with candidate list ef (scores are then
 * the same inner products, recall is the index's). */
int xmc_unidec_predict(xmc_unidec *u, const xmc_dataset *ds, const xmc_texts *label_texts,
                       int k, int which, int ef, xmc_csr **out, xmc_error *err);

/* Shape and label texts of a model (for indexes kept outside it, ann.h). */
int64_t xmc_unidec_n_labels(const xmc_unidec *u);
int xmc_unidec_dim(const xmc_unidec *u);      /* d: a half's width (BOTH: 2d) */
int xmc_unidec_is_depsl(const xmc_unidec *u);
const xmc_texts *xmc_unidec_label_texts(const xmc_unidec *u);

/* The vectors xmc_unidec_predict scores with, for head `which`, row-major
 * into out (n x d, or n x 2d for BOTH):
 *   labels  [Φ_D(z_l) ; normalize(Ψ_l)]: t NULL = the training labels
 *           (l0 must be 0, n = L); else t holds the texts of labels
 *           l0 .. l0 + t->n - 1, and a label >= L (added after training)
 *           has no Ψ row, so its CLF half is 0;
 *   queries [Φ_D(x) ; normalize(Φ_C(x))] for the point texts of ds.
 * Fails (XMC_EINVAL) for a head the model lacks (DEPSL: DE only). */
int xmc_unidec_embed_labels(xmc_unidec *u, const xmc_texts *t, int64_t l0, int which, float *out,
                            xmc_error *err);
int xmc_unidec_embed_queries(xmc_unidec *u, const xmc_dataset *ds, int which, float *out,
                             xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
