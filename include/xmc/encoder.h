/* xmc encoder: maps a batch of dataset rows to embeddings E (B x d) that the
 * one-vs-all head scores, and back-propagates dE into its parameters.
 *
 * Built-in kinds (src/encoder/):
 *   "sparse"  rows of X (L2-normalised) -> Z1 = X W1 + b1 -> act -> optional
 *             second layer act(Z W2 + b2) -> optional bottleneck P (h -> b).
 *             W1 (F x h) is a sparse-row table: a step touches only the rows
 *             of features present in the batch.
 *   "bag"     text -> lower-cased words hashed into n_buckets. extra
 *             "idf": unigrams, sublinear tf-idf (idf of the training texts,
 *             saved as tensor bag.idf), unit rows -> act(x T + b) (the
 *             sparse encoder's layer); extra "" / "mean": unigrams +
 *             bigrams -> mean of embedding rows (fastText-style embedding
 *             bag) -> act -> linear h x h + bias. Either -> optional
 *             bottleneck; table T is n_buckets x h.
 * Transformers (the BERT engineer's module) plug in through the same ops.
 *
 * Framework stages after every kind's output H (B x h), in this order:
 * dropout on H (training) -> optional bottleneck P (h -> b, no bias, Renee
 * sec. 4) -> optional intermediate layer (SPARTEX, Ullah et al. NeurIPS 2024
 * sec. 4: a dense d_in -> d_int layer with bias and optional ReLU between
 * the encoder and the sparse classifier, so a fixed fan-in head picks its F
 * inputs from a wider, trained representation and its gradient reaches the
 * encoder through a dense layer). E is the last stage's output, width dim.
 *
 * Parameters follow llm.c's layout: every dense tensor lives in ONE float
 * buffer `params` (grads and AdamW moments share its layout, so AdamW is one
 * loop over a flat buffer and an MPI allreduce is one call); the name, shape
 * and weight-decay flag of each tensor sit in one table `tensors`. Embedding
 * tables too large for dense updates are `tables`: after backward each holds
 * the list of touched rows and their compact gradients, updated lazily
 * (optim.h, xmc_sparse_adam_step).
 *
 * Threading: forward/backward parallelise over the batch with OpenMP and the
 * GEMMs use OpenBLAS (same pool). An encoder is not re-entrant: one
 * forward/backward pair at a time (activations are cached between them).
 *
 * Memory: all per-step scratch (activations for max_batch rows, touched-row
 * buffers) is allocated at create; forward/backward never allocate.
 */
#ifndef XMC_ENCODER_H
#define XMC_ENCODER_H

#include "xmc/core.h"
#include "xmc/data.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMC_ENC_NAME_MAX 48

#define XMC_ENC_DEFAULT_HIDDEN 512
#define XMC_ENC_MIN_HIDDEN 1
#define XMC_ENC_MAX_HIDDEN 65536
#define XMC_ENC_DEFAULT_BUCKETS (1 << 20) /* bag: hash buckets */
#define XMC_ENC_DEFAULT_DROPOUT 0.2f

typedef enum xmc_act { XMC_ACT_RELU = 0, XMC_ACT_GELU = 1 } xmc_act;

typedef struct xmc_encoder_config {
    char kind[16];      /* "sparse", "bag" (or a plugged-in kind) */
    int64_t n_inputs;   /* sparse: F (features); bag: hash buckets */
    int hidden;         /* h */
    int layers;         /* 1 or 2 (second dense layer h x h) */
    int bottleneck;     /* b: linear h -> b without bias; 0 = none */
    int intermediate;   /* d_int: dense (b or h) -> d_int with bias after the
                         * bottleneck; 0 = none */
    int intermediate_relu; /* 1: ReLU after the intermediate layer (default);
                            * 0: linear */
    xmc_act act;        /* activation after each layer */
    float dropout;      /* on the output embedding while training, [0, 1) */
    float input_dropout; /* drop each input entry (feature / n-gram) while
                          * training, [0, 1); kept ones scaled 1/(1-p) */
    int max_batch;      /* largest B passed to forward */
    uint64_t seed;      /* initialisation and dropout masks */
    float init_std;     /* 0 = 1/sqrt(fan_in) style default (see sparse.c) */
    char extra[256];    /* kind-specific (e.g. a BERT checkpoint dir); "" */
} xmc_encoder_config;

/* One dense tensor inside the flat buffer. */
typedef struct xmc_tensor_info {
    char name[XMC_ENC_NAME_MAX];
    int64_t rows, cols;
    int64_t offset; /* in floats, into params/grads */
    int no_decay;   /* 1 for biases / norms: AdamW skips weight decay */
} xmc_tensor_info;

/* An embedding table updated by rows. After backward, rows touched[0..n)
 * (unique, ascending) have gradients grad[i*cols .. (i+1)*cols). */
typedef struct xmc_sparse_table {
    char name[XMC_ENC_NAME_MAX];
    float *w;           /* (rows, cols) */
    int64_t rows;
    int64_t cols;
    int64_t max_touched; /* capacity of touched/grad */
    int64_t n_touched;
    int32_t *touched;   /* (max_touched) */
    float *grad;        /* (max_touched, cols) */
} xmc_sparse_table;

/* Inputs of one dataset converted once for an encoder (normalised features,
 * hashed n-grams, token ids...), never re-derived per epoch. */
typedef struct xmc_enc_data {
    int64_t n;       /* rows */
    xmc_csr *ids;    /* n x n_inputs: feature / bucket / token ids + weights */
    void *impl;      /* kind-specific extra (may be NULL) */
    void (*impl_free)(void *impl);
} xmc_enc_data;

typedef struct xmc_encoder xmc_encoder;

/* What a kind implements. `declare` registers tensors and tables with
 * xmc_encoder_add_dense / xmc_encoder_add_table (shapes only); the framework
 * then allocates one buffer and calls `init`, where the kind points its own
 * struct at xmc_encoder_dense(e, i) and initialises from its seed. forward
 * writes H (B x base_dim) and caches what backward needs; backward takes dH
 * (may be overwritten) and ADDS into grads / fills the tables' touched rows.
 * Dropout, the bottleneck and the intermediate layer are applied by the
 * framework after forward. */
typedef struct xmc_encoder_ops {
    const char *kind;
    int (*declare)(xmc_encoder *e, xmc_error *err);
    int (*init)(xmc_encoder *e, int fresh, xmc_error *err);
    int (*prepare)(const xmc_encoder *e, const xmc_dataset *ds, xmc_enc_data **out,
                   xmc_error *err);
    int (*forward)(xmc_encoder *e, const xmc_enc_data *d, const int64_t *rows, int B,
                   int train, float *H, xmc_error *err);
    int (*backward)(xmc_encoder *e, float *dH, int B, xmc_error *err);
    void (*destroy)(xmc_encoder *e); /* frees impl only */
} xmc_encoder_ops;

struct xmc_encoder {
    const xmc_encoder_ops *ops;
    xmc_encoder_config cfg;
    int base_dim;        /* output width of the kind (h), set by declare */
    int dim;             /* d: base_dim, or the bottleneck b, or the
                          * intermediate width d_int (the last stage) */
    float *params;       /* (n_params) all dense tensors */
    float *grads;        /* (n_params) */
    int64_t n_params;
    xmc_tensor_info *tensors;
    int n_tensors, cap_tensors;
    xmc_sparse_table *tables;
    int n_tables, cap_tables;
    int bottleneck_tensor; /* index of P (b x h), -1 without */
    int inter_tensor;    /* index of intermediate.W (d_int x d_in), -1 without;
                          * its bias intermediate.b (1 x d_int) follows */
    uint64_t step;       /* forward calls in training mode (keys dropout masks) */
    int64_t batch_row0;  /* index of this call's row 0 in the global batch (a rank's
                          * slice in a sharded step; 0 otherwise): keys the
                          * embedding dropout masks per global row */
    void *impl;          /* the kind's state */
    void *fw;            /* framework scratch (bottleneck, intermediate,
                          * dropout) */
};

/* Register a kind (built-ins are registered already). Not thread-safe; call
 * before creating encoders. At most 16 kinds. */
int xmc_encoder_register(const xmc_encoder_ops *ops, xmc_error *err);
const xmc_encoder_ops *xmc_encoder_find(const char *kind);

void xmc_encoder_config_default(xmc_encoder_config *c, const char *kind);

/* Create an encoder and initialise its parameters from cfg->seed. Free with
 * xmc_encoder_free. */
int xmc_encoder_create(const xmc_encoder_config *cfg, xmc_encoder **out, xmc_error *err);
void xmc_encoder_free(xmc_encoder *e);

/* For kinds' declare: returns the tensor/table index or -1 (err set). */
int xmc_encoder_add_dense(xmc_encoder *e, const char *name, int64_t rows, int64_t cols,
                          int no_decay, xmc_error *err);
int xmc_encoder_add_table(xmc_encoder *e, const char *name, int64_t rows, int64_t cols,
                          int64_t max_touched, xmc_error *err);
static inline float *xmc_encoder_dense(const xmc_encoder *e, int i)
{
    return e->params + e->tensors[i].offset;
}
static inline float *xmc_encoder_dense_grad(const xmc_encoder *e, int i)
{
    return e->grads + e->tensors[i].offset;
}

/* Convert a dataset for this encoder (free with xmc_enc_data_free). Fails
 * with XMC_EINVAL if the dataset lacks what the kind needs (features /
 * texts). Columns of d->ids index the encoder's tables (ids >= n_inputs are
 * dropped, e.g. test features unseen in training). Also grows the tables'
 * touched-row capacity to max_batch x the longest row, so later steps never
 * allocate. */
int xmc_encoder_prepare(xmc_encoder *e, const xmc_dataset *ds, xmc_enc_data **out,
                        xmc_error *err);
void xmc_enc_data_free(xmc_enc_data *d);
size_t xmc_enc_data_bytes(const xmc_enc_data *d);

/* E (B x dim) for rows rows[0..B) of d (rows == NULL: 0..B-1). train=1 applies
 * dropout and caches activations for backward; d and rows must stay valid
 * until that backward (kinds keep the pointers). Does not allocate. */
int xmc_encoder_forward(xmc_encoder *e, const xmc_enc_data *d, const int64_t *rows, int B,
                        int train, float *E, xmc_error *err);
/* Zero dense grads and table touched lists (call before backward). */
void xmc_encoder_zero_grad(xmc_encoder *e);
/* Back-propagate dE (B x dim, overwritten) from the last train forward:
 * dense grads are accumulated, table gradients filled. Does not allocate. */
int xmc_encoder_backward(xmc_encoder *e, float *dE, int B, xmc_error *err);

/* Parameter counts: dense floats + table floats. */
int64_t xmc_encoder_param_count(const xmc_encoder *e);
/* Bytes of parameters, grads and scratch (not optimizer state). */
size_t xmc_encoder_bytes(const xmc_encoder *e);

/* Serialise parameters (config, tensor table, values; magic, version,
 * CRC-32) / read them back into a new encoder. */
int xmc_encoder_save(const xmc_encoder *e, FILE *f, const char *path, xmc_error *err);
int xmc_encoder_load(FILE *f, const char *path, xmc_encoder **out, xmc_error *err);

/* Ensembles (model.h, xmc_train_config.ensemble): n encoders made from one
 * config (seeds differ) become one encoder of n times the width whose
 * output is the members' outputs side by side. Tables and biases go by
 * column blocks, square layers and the bottleneck block-diagonal (zeros
 * between members), tensors whose shape does not scale with the width
 * (the bag's idf) are shared and must be equal. Exact because the sparse
 * and bag kinds never mix hidden units across a member's width
 * (elementwise activations); a transformer's layer norm and attention
 * would, so only those two kinds merge, without an intermediate layer.
 * create_ensemble makes the wide encoder for member config `member`
 * (parameters zero); set_member copies member k of n into its block. */
int xmc_encoder_create_ensemble(const xmc_encoder_config *member, int n, xmc_encoder **out,
                                xmc_error *err);
int xmc_encoder_set_member(xmc_encoder *e, const xmc_encoder *member, int k, int n,
                           xmc_error *err);
/* The bytes (xmc_encoder_bytes) the wide encoder will hold, from shapes
 * alone: nothing is allocated for good, so a memory plan can ask it. */
int xmc_encoder_ensemble_bytes(const xmc_encoder_config *member, int n, size_t *out,
                               xmc_error *err);

/* bag: the tokenisation used by prepare, exposed for tests and --text:
 * writes up to max bucket ids of the unigrams and bigrams of `text`
 * (lower-cased with utf8proc, words = runs of letters/digits) and returns
 * how many n-grams there were (may exceed max). */
int64_t xmc_bag_hash_text(const char *text, int64_t n_buckets, int32_t *ids, int64_t max);
/* The same with unigrams only (max_n = 1) or unigrams + bigrams (2). */
int64_t xmc_bag_hash_ngrams(const char *text, int64_t n_buckets, int max_n, int32_t *ids,
                            int64_t max);
/* xmc_bag_hash_ngrams into *ids (capacity *cap), grown to fit: the id
 * count, or -1 when growing fails (*ids and *cap stay valid). */
int64_t xmc_bag_hash_grow(const char *text, int64_t n_buckets, int max_n, int32_t **ids,
                          int64_t *cap);
/* The n-gram order a bag encoder with config `extra` hashes: 1 for "idf"
 * (unit-norm tf-idf unigrams), 2 for "" or "mean" (the mean of uni +
 * bigrams). */
int xmc_bag_ngram_order(const char *extra);

#ifdef __cplusplus
}
#endif
#endif
