/* xmc bert: BERT-family transformer encoders (BERT, MiniLM, DistilBERT) in
 * C, forward and backward, loaded from a Hugging Face model directory.
 *
 * Model (Devlin et al. 2019; Sanh et al. 2019 for DistilBERT, which is the
 * same post-LN block without token-type embeddings):
 *   x0 = LN_e(wte[id] + wpe[t] + wtt[0])            embeddings, dropout
 *   per layer:  r1 = x + Dropout(Attn(x) Wo + bo)    Attn: multi-head, keys
 *               h1 = LN1(r1)                         t >= len masked out
 *               r2 = h1 + Dropout(GELU(h1 W1 + b1) W2 + b2)
 *               x  = LN2(r2)
 *   pooled = mean of x over the len real tokens (default) or x[CLS].
 * GELU is the erf form (HF "gelu").
 *
 * Memory layout follows llm.c: ONE flat fp32 parameter buffer and a table
 * of (HF name, shape, offset) for every tensor (Q, K and V of a layer are
 * adjacent, so they form one fused (3H x H) GEMM); the gradient and AdamW
 * moment buffers share that layout. Activations for (max_batch, max_len)
 * are allocated at create (per layer when training, one shared set for
 * inference or with opts.recompute): forward/backward never allocate. Rows past a batch's longest
 * sequence are skipped, and rows past a sequence's own length do not
 * influence real rows (their hidden states are not defined).
 *
 * Threading: GEMMs through OpenBLAS (cblas_sgemm); attention runs one
 * (batch, head) pair per OpenMP task with single-threaded GEMMs; element
 * kernels are OpenMP loops. A model is not re-entrant (activations are kept
 * between forward and backward).
 *
 * Dropout masks come from a counter-based hash of (seed, step, site, index):
 * reproducible from the user's seed, independent of the thread count, and
 * regenerated in backward instead of stored.
 */
#ifndef XMC_BERT_H
#define XMC_BERT_H

#include "xmc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMC_BERT_MAX_LAYERS 64
#define XMC_BERT_DEFAULT_MAX_LEN 128

typedef enum xmc_bert_arch { XMC_BERT_ARCH_BERT = 0, XMC_BERT_ARCH_DISTILBERT = 1 } xmc_bert_arch;
typedef enum xmc_bert_pool { XMC_BERT_POOL_MEAN = 0, XMC_BERT_POOL_CLS = 1 } xmc_bert_pool;

typedef struct xmc_bert_config {
    xmc_bert_arch arch;
    int vocab_size;
    int hidden;       /* H (hidden_size / dim) */
    int n_layers;     /* num_hidden_layers / n_layers */
    int n_heads;      /* num_attention_heads / n_heads; divides H */
    int intermediate; /* intermediate_size / hidden_dim */
    int max_pos;      /* max_position_embeddings */
    int type_vocab;   /* type_vocab_size (0 for DistilBERT) */
    float ln_eps;     /* layer_norm_eps (DistilBERT: 1e-12) */
    float hidden_dropout, attn_dropout;
} xmc_bert_config;

typedef struct xmc_bert_opts {
    int max_batch;         /* largest B passed to forward */
    int max_len;           /* largest T (<= max_pos) */
    xmc_bert_pool pooling;
    int train;             /* allocate grads, backward activations, AdamW moments */
    int no_moments;        /* with train: skip AdamW moments (an outside optimizer) */
    int recompute;         /* with train: keep only layer inputs, recompute each
                            * layer's activations in backward (~1/3 more compute,
                            * activation memory / n_layers) */
    float hidden_dropout;  /* < 0: from the config */
    float attn_dropout;    /* < 0: from the config */
    uint64_t seed;         /* random init (create) and dropout masks */
} xmc_bert_opts;

void xmc_bert_opts_default(xmc_bert_opts *o);

/* Read a Hugging Face config.json. XMC_EUNSUPPORTED names a model_type or
 * activation we do not implement (e.g. "roberta", "gelu_new"). */
int xmc_bert_config_read(const char *path, xmc_bert_config *c, xmc_error *err);

typedef struct xmc_bert xmc_bert;

/* A model with random weights (N(0, 0.02), LayerNorm 1/0, biases 0) from
 * o->seed. Free with xmc_bert_free. */
int xmc_bert_create(const xmc_bert_config *c, const xmc_bert_opts *o, xmc_bert **out,
                    xmc_error *err);
/* DIR/config.json + DIR/model.safetensors (F32, F16 or BF16 tensors, with
 * or without the "bert." / "distilbert." prefix; pooler / MLM heads are
 * ignored). Errors name the file and the missing or mis-shaped tensor. */
int xmc_bert_load(const char *dir, const xmc_bert_opts *o, xmc_bert **out, xmc_error *err);
/* Load weights into an existing model (shapes must match its config). */
int xmc_bert_load_safetensors(xmc_bert *m, const char *path, xmc_error *err);
void xmc_bert_free(xmc_bert *m);

const xmc_bert_config *xmc_bert_get_config(const xmc_bert *m);
const xmc_bert_opts *xmc_bert_get_opts(const xmc_bert *m);

/* pooled (B x H) for token ids (B rows of stride `ld` >= max(lens)) with
 * lens[b] real tokens each (1 <= lens[b] <= max_len). train=1 applies
 * dropout and keeps activations for backward (needs opts.train). Token
 * type ids are 0. Fails (XMC_EINVAL) on a bad shape or an id outside the
 * vocabulary. Does not allocate. */
int xmc_bert_forward(xmc_bert *m, const int32_t *ids, const int32_t *lens, int B, int ld,
                     int train, float *pooled, xmc_error *err);
/* Accumulate d(loss)/d(params) into the grad buffer from d(loss)/d(pooled)
 * (B x H) of the last train forward. Does not allocate. */
int xmc_bert_backward(xmc_bert *m, const float *dpooled, xmc_error *err);
void xmc_bert_zero_grad(xmc_bert *m);
/* Training forwards count steps (the dropout stream); the next train
 * forward uses step + 1. For resuming a run, or replaying the same dropout
 * masks (finite-difference tests). */
void xmc_bert_set_step(xmc_bert *m, uint64_t step);
uint64_t xmc_bert_get_step(const xmc_bert *m);

/* Move the parameters into caller-owned buffers of n_params floats with
 * the same layout (the encoder framework's flat buffers): current values
 * are copied into params, the model's own buffers are freed, and from then
 * on forward reads params and backward accumulates into grads (may be NULL
 * without opts.train). The caller keeps them alive until xmc_bert_free. */
void xmc_bert_bind_buffers(xmc_bert *m, float *params, float *grads);

/* The flat buffers (NULL grads when not training). */
float *xmc_bert_params(xmc_bert *m);
float *xmc_bert_grads(xmc_bert *m);
int64_t xmc_bert_n_params(const xmc_bert *m);

typedef struct xmc_bert_tensor {
    char name[96];    /* HF name without the model prefix */
    int ndim;         /* 1 or 2 */
    int64_t shape[2];
    int64_t offset;   /* floats into params / grads */
    int no_decay;     /* biases and LayerNorm: no weight decay */
} xmc_bert_tensor;

int xmc_bert_n_tensors(const xmc_bert *m);
const xmc_bert_tensor *xmc_bert_tensor_at(const xmc_bert *m, int i);
const xmc_bert_tensor *xmc_bert_tensor_find(const xmc_bert *m, const char *name);

/* Bytes of parameters, grads, moments and activations. */
size_t xmc_bert_bytes(const xmc_bert *m);

/* AdamW (Loshchilov & Hutter 2019) over the flat buffer, as
 * torch.optim.AdamW: decoupled decay lr*wd*p on tensors without no_decay,
 * bias-corrected moments. step is 1-based. Needs opts.train. */
typedef struct xmc_bert_adamw {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step;
} xmc_bert_adamw;
int xmc_bert_adamw_step(xmc_bert *m, const xmc_bert_adamw *hp, xmc_error *err);

/* ------------------------------------------------------------------------
 * Fused element kernels (src/encoder/bert_kernels.c), exposed for tests.
 * LayerNorm, GELU and softmax have a plain reference (_ref) beside the
 * variant the model uses (AVX-512 where the CPU has it); softmax_bwd and
 * colsum are simple loops checked by finite differences and the model
 * tests. Rows are contiguous with the given width.
 */
/* out = (x - mean) * rstd * w + b per row of C; mean, rstd (N) kept. */
void xmc_bert_layernorm_fwd(float *out, float *mean, float *rstd, const float *x,
                            const float *w, const float *b, int64_t N, int C, float eps);
void xmc_bert_layernorm_fwd_ref(float *out, float *mean, float *rstd, const float *x,
                                const float *w, const float *b, int64_t N, int C, float eps);
/* dx = LN'(dout) (overwritten); dw, db accumulated. scratch holds
 * 2 * C * ceil(N / 64) floats (fixed 64-row blocks: the result does not
 * depend on the thread count). */
void xmc_bert_layernorm_bwd(float *dx, float *dw, float *db, const float *dout, const float *x,
                            const float *w, const float *mean, const float *rstd, int64_t N,
                            int C, float *scratch);
void xmc_bert_layernorm_bwd_ref(float *dx, float *dw, float *db, const float *dout,
                                const float *x, const float *w, const float *mean,
                                const float *rstd, int64_t N, int C);
/* out = x * Phi(x) (erf form). The fast one uses a polynomial erf/exp
 * (|error| < 1e-6) that the compiler vectorises; the reference uses erff. */
void xmc_bert_gelu_fwd(float *out, const float *x, int64_t n);
void xmc_bert_gelu_fwd_ref(float *out, const float *x, int64_t n);
/* dx = dout * GELU'(x); dx may alias dout. */
void xmc_bert_gelu_bwd(float *dx, const float *x, const float *dout, int64_t n);
void xmc_bert_gelu_bwd_ref(float *dx, const float *x, const float *dout, int64_t n);
/* In place softmax of `rows` rows of `cols` entries (row stride ld). */
void xmc_bert_softmax_fwd(float *p, int rows, int cols, int ld);
void xmc_bert_softmax_fwd_ref(float *p, int rows, int cols, int ld);
/* ds = p * (dp - sum(dp * p)) per row; ds may alias dp. */
void xmc_bert_softmax_bwd(float *ds, const float *p, const float *dp, int rows, int cols, int ld);
/* Column sums of an (N x C) matrix added to out (fixed 64-row blocks;
 * scratch C * ceil(N / 64)). */
void xmc_bert_colsum_add(float *out, const float *x, int64_t N, int C, float *scratch);

/* ------------------------------------------------------------------------
 * The "bert" kind of the encoder framework (include/xmc/encoder.h), in
 * src/encoder/bert_adapter.c. xmc_encoder_config.extra holds
 * "MODEL_DIR[,max_len=N][,pool=mean|cls][,recompute]"; prepare tokenises the dataset's
 * texts with MODEL_DIR's WordPiece vocabulary. Call the register function
 * once before creating encoders (not thread-safe, like
 * xmc_encoder_register). */
int xmc_bert_encoder_register(xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
