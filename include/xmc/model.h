/* xmc model: the Renee recipe end to end (Jain et al., "Renee: End-to-end
 * training of extreme classification models", MLSys 2023) — an encoder
 * (encoder.h) trained jointly with a one-vs-all head over ALL labels
 * (head.h), the model directory, training with checkpoints and bit-identical
 * resume, and exact top-k prediction. Recipe "spartex" (docs/spartex.md)
 * runs the same loop with the fixed fan-in head of ffi.h (Ullah et al.,
 * NeurIPS 2024): dynamic sparse training after each step and the optional
 * auxiliary meta-classifier; head-eN.bin is then an xmc_ffi file.
 *
 * One training step (Renee sec. 3): E = encoder(x_batch) -> fused head pass
 * (updates W in place, returns dE) -> encoder backward -> AdamW (dense) +
 * lazy Adam or SGD-m (embedding tables; optim.h). Learning rates follow
 * linear warm-up then cosine decay, one schedule per group (classifier lr1,
 * encoder lr2, tables lr_table).
 * Batches come from a permutation drawn per epoch from (seed, epoch), and
 * dropout masks from (seed, step), so a run resumed from an epoch checkpoint
 * continues bit-identically (same seed and thread count).
 *
 * Model directory (docs/renee.md):
 *   config.json        readable config, written LAST (the manifest): recipe,
 *                      encoder, dims, label count, hyper-parameters, seed,
 *                      data specs, epochs done, and the weight files below
 *   encoder-eN.bin     encoder weights (magic, version, shapes, CRC-32)
 *   head-eN.bin        classifier weights + its optimizer state (head.h)
 *   optim-eN.bin       encoder optimizer moments (optim.h)
 *   meta-sN.bin        spartex --aux-clusters only, until the meta cutoff:
 *                      the meta head (xmc_ffi_save)
 *   labels.txt         label names, one per line, when the data had them
 * Each checkpoint writes new -eN files, then replaces config.json
 * atomically, then removes the previous epoch's files: an interrupted run
 * always leaves a consistent directory.
 *
 * Memory: parameters + optimizer state + per-step scratch sized at create
 * (no allocation inside a step; a test counts them) + the prepared data.
 */
#ifndef XMC_MODEL_H
#define XMC_MODEL_H

#include "xmc/core.h"
#include "xmc/data.h"
#include "xmc/dist.h"
#include "xmc/encoder.h"
#include "xmc/ffi.h"
#include "xmc/head.h"
#include "xmc/neighbors.h"
#include "xmc/optim.h"
#include "xmc/psl.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMC_MODEL_CONFIG "config.json"
#define XMC_MODEL_FORMAT_VERSION 1

#define XMC_TRAIN_DEFAULT_EPOCHS 20
#define XMC_TRAIN_DEFAULT_BATCH 128
#define XMC_TRAIN_MAX_BATCH 8192
#define XMC_TRAIN_DEFAULT_LR1 0.05f  /* classifier SGD-momentum (sum reduction): bag, bert */
/* Sparse encoder (feature sets): 0.03, chosen on the validation splits
 * (bibtex, delicious, cooking better, rcv1sub1 level; docs/renee.md, round 4). */
#define XMC_TRAIN_DEFAULT_LR1_SPARSE 0.03f
/* Squared hinge, any encoder: its gradient 2 max(0, 1 - s x) is larger than
 * BCE's |sigmoid(x) - y| <= 1. It is the tf-idf bag's default loss, with
 * 0.01: reuters21578 validation, 3 seeds, P@1 / P@5 / PSP@5 93.18 / 23.72
 * / 92.53 against bce's 92.73 / 23.72 / 91.98 (docs/renee.md, round 5). */
#define XMC_TRAIN_DEFAULT_LR1_SQHINGE 0.01f
#define XMC_TRAIN_DEFAULT_LR2 0.002f /* encoder AdamW, sparse encoder */
#define XMC_TRAIN_DEFAULT_LR2_BAG 0.01f /* bag: n-gram rows need larger steps */
#define XMC_TRAIN_DEFAULT_LR2_BERT 1e-4f /* bert: pre-trained weights, fine-tuning rate */
/* Tables under SGD-m (sum reduction, momentum as the classifier's): 0.001,
 * on the validation splits (3 seeds, P@1 / P@5 / PSP@5: reuters21578 94.42
 * / 23.85 / 93.99 against lazy Adam's 93.18 / 23.72 / 92.53, rcv1sub1
 * 60.85 / 39.92 / 66.62 against 59.52 / 39.35 / 65.39; 0.002 diverged on
 * one reuters21578 seed of three; docs/renee.md, round 8). */
#define XMC_TRAIN_DEFAULT_LR_TABLE 0.001f
#define XMC_TRAIN_DEFAULT_WD1 0.0f
#define XMC_TRAIN_DEFAULT_WD2 0.01f
/* Width, activation and dropout of the sparse / tf-idf encoders: ReLU,
 * 1024, 0.5, chosen on validation splits of the five shared sets
 * (docs/renee.md, round 3); the mean bag keeps 256. */
#define XMC_TRAIN_DEFAULT_DIM 1024
#define XMC_TRAIN_DEFAULT_DROPOUT 0.5f
/* Ensembles (docs/renee.md "Ensembles"): members trained with seeds s, s+1,
 * ... and merged into one model whose scores are the members' mean. Auto
 * (ensemble 0) takes 3 members, as Parabel's and omikuji's 3 trees, on
 * problems of at most 100,000 training rows and 100,000 labels, where
 * three members cost little; 1 above that. On the validation splits the
 * ensemble of seeds 1-3 beats the mean of those single models on all 15
 * cells (P@1: bibtex 64.45 -> 64.96, delicious 69.17 -> 69.50, rcv1sub1
 * 60.85 -> 61.89, stackex_cooking 59.23 -> 59.69, reuters21578 94.42 ->
 * 94.53; docs/renee.md, round 9). */
#define XMC_TRAIN_DEFAULT_ENSEMBLE 3
#define XMC_TRAIN_ENSEMBLE_AUTO_MAX_ROWS 100000
#define XMC_TRAIN_ENSEMBLE_AUTO_MAX_LABELS 100000
#define XMC_TRAIN_MAX_ENSEMBLE 16
/* kNN memory (neighbors.h, docs/renee.md "kNN memory"): the training rows'
 * embeddings and labels, blended into prediction as (1 - weight)
 * sigmoid(x) + weight K(q), K from the knn nearest rows at temperature
 * knn_temp. Auto (knn -1): 15 neighbours, temperature 0.1, weight 0.2 for
 * the renee recipe's sparse and bag encoders with at most 100,000 training
 * rows, in one process; off otherwise. Chosen on the validation splits of
 * the five shared sets over k 10-50, temperature 0.03-0.2, weight 0.1-0.5
 * (the ensemble of 3): P@1 +1.33 rcv1sub1, +1.23 bibtex, +0.55 delicious,
 * +0.32 stackex_cooking, 0.00 reuters21578 (docs/renee.md, round 10). */
#define XMC_TRAIN_DEFAULT_KNN 15
#define XMC_TRAIN_DEFAULT_KNN_TEMP 0.1f
#define XMC_TRAIN_DEFAULT_KNN_WEIGHT 0.2f
#define XMC_TRAIN_KNN_AUTO_MAX_ROWS 100000
#define XMC_TRAIN_MAX_KNN 1024

typedef struct xmc_train_config {
    char recipe[16];     /* "renee", "spartex", or "unidec" / "depsl" (psl.h;
                          * xmc_train_run) */
    char encoder[16];    /* "sparse", "bag", "bert" (after xmc_bert_encoder_register),
                          * or "" = auto (sparse with features) */
    /* Kind-specific encoder settings, xmc_encoder_config.extra: for bert
     * "MODEL_DIR[,max_len=N][,pool=mean|cls][,recompute]" (include/xmc/bert.h;
     * MODEL_DIR absolute, so the model directory loads from anywhere). */
    char extra[256];
    int dim;             /* encoder width h (0 = auto: 512 sparse, 256 bag;
                          * bert: ignored, the checkpoint's hidden size) */
    int bottleneck;      /* b (0 = none) */
    int intermediate;    /* d_int: dense layer (b or h) -> d_int with bias
                          * between encoder and classifier (SPARTEX's
                          * intermediate layer; encoder.h), 0 = none */
    int intermediate_relu; /* 1: ReLU after it (default), 0: linear */
    int layers;          /* encoder dense layers (1 or 2) */
    xmc_act act;
    float dropout;
    float input_dropout; /* per input entry (feature / n-gram), training only */
    int64_t buckets;     /* bag: hash buckets (0 = auto from distinct n-grams) */
    int epochs;
    int batch;
    float lr1, lr2;      /* classifier / encoder peak rates (0 = auto by encoder) */
    float wd1, wd2;
    float momentum;      /* classifier SGDM (and tables under SGD-m) */
    xmc_head_opt head_opt;
    /* The encoder's embedding tables (the sparse encoder's first layer, the
     * bag's rows): lazy Adam at lr2 or SGD-m at lr_table (optim.h). AUTO:
     * SGD-m for the renee recipe's sparse and tf-idf encoders when their
     * inputs outnumber the training rows, else Adam. lr_table 0 = auto. */
    xmc_table_opt table_opt;
    float lr_table;
    xmc_loss loss;
    int bf16;            /* classifier weights in bf16 */
    float warmup;        /* fraction of all steps spent warming up */
    int threads;         /* 0 = leave as is */
    uint64_t seed;
    int eval_every;      /* test metrics every E epochs (0 = only at the end) */
    int loss_every;      /* steps between loss samples */
    int stop_after;      /* stop this invocation after N epochs (0 = run all) */
    int64_t max_steps;   /* stop after this many steps in total (0 = no cap) */
    char train_spec[1024];
    char test_spec[1024];
    /* Gandalf augmentation as `xmc train --augment` takes it
     * (xmc_augment_parse: "gandalf[:δ]", "cooc", "sym", "self", "+pifa"),
     * "" = none. Training runs on D ∪ Z (augment.h); test propensities and
     * the label vocabulary still come from the original D. */
    char augment[64];
    /* Recipe "spartex" (docs/spartex.md, include/xmc/ffi.h): the Renee loop
     * with the fixed fan-in sparse head instead of the dense one. fan_in F
     * inputs per label (default 64, clamped to the head width); dynamic
     * sparse training after each step with xmc_ffi_schedule_apply: rewire
     * every rewire_interval steps (0 = never) until rewire_end (fraction of
     * all steps, default 0.66; then the topology is frozen), pruning
     * |W| < the cosine-decayed rewire_threshold (default 0.3), or
     * rewire_fraction > 0 of the weights instead. */
    int fan_in;
    int64_t rewire_interval;
    float rewire_end;
    float rewire_threshold;
    double rewire_fraction;
    /* SPARTEX auxiliary meta-classifier (0 = off): labels clustered into
     * about aux_clusters groups (balanced 2-means over PIFA label features,
     * a power of two; feature datasets only), a dense meta head over the
     * clusters trained beside the sparse one with loss (1 - alpha_t) L_main
     * + alpha_t L_meta, alpha_t = aux_scale cosine-decayed to 0 at
     * meta_cutoff_epoch (<= 0: half the epochs), then dropped. */
    int aux_clusters;
    float aux_scale;
    float meta_cutoff_epoch;
    /* Ensemble members (0 = auto, see XMC_TRAIN_DEFAULT_ENSEMBLE; 1 = one
     * model). With n > 1, xmc_train_run trains member k (seed + k) into
     * DIR/member-k, one after the other, each with its own checkpoints and
     * resume, then merges them into DIR: encoders side by side (n times the
     * width: tables and biases by column blocks, square layers and the
     * bottleneck block-diagonal; xmc_encoder_create_ensemble) and head
     * rows of the n member rows scaled 1/n, so the merged model's score is
     * exactly the members' mean and predict, --ann and info see one
     * model. Recipe renee with the sparse or bag encoder, one process, a
     * model directory. The merged model keeps no encoder optimizer state:
     * it is final. ensemble_member: k in a member's config, -1 otherwise. */
    int ensemble;
    int ensemble_member;
    /* kNN memory (see XMC_TRAIN_DEFAULT_KNN): knn neighbours (-1 = auto,
     * 0 = none), built once all epochs are done (an ensemble's merged model,
     * not its members) from the original training rows (not Gandalf's
     * label points), saved as neighbors-sN.bin. */
    int knn;
    float knn_temp;
    float knn_weight;
    /* Memory budget in bytes, checked by xmc_model_create BEFORE the
     * classifier is allocated (xmc_model_plan_memory): 0 = the memory
     * available now (MemAvailable, capped by a cgroup limit; physical RAM
     * when unknown), < 0 = no check. */
    int64_t mem_budget;
} xmc_train_config;

#define XMC_TRAIN_DEFAULT_FAN_IN 64
#define XMC_TRAIN_DEFAULT_REWIRE_INTERVAL 100
#define XMC_TRAIN_DEFAULT_REWIRE_THRESHOLD 0.3f

void xmc_train_config_default(xmc_train_config *c);

typedef struct xmc_model xmc_model;

/* A fresh model for `train` (encoder auto-picked when cfg->encoder is ""),
 * ready to train. Free with xmc_model_free. */
int xmc_model_create(const xmc_train_config *cfg, const xmc_dataset *train, xmc_model **out,
                     xmc_error *err);
void xmc_model_free(xmc_model *m);

/* Load DIR. with_state = 1 also loads the optimizer state and allocates
 * training scratch (for resume); 0 loads weights only (predict). */
int xmc_model_load(const char *dir, int with_state, xmc_model **out, xmc_error *err);
/* Checkpoint into DIR (created if missing), as described above. */
int xmc_model_save(const xmc_model *m, const char *dir, xmc_error *err);

/* Train until cfg.epochs (continuing from the epochs already done), with
 * a checkpoint into dir (may be NULL) after every epoch and test metrics
 * when test != NULL. Progress and the per-epoch lines go to xmc_log. */
int xmc_model_train(xmc_model *m, const xmc_dataset *train, const xmc_dataset *test,
                    const char *dir, xmc_error *err);

/* Convert a dataset for this model's encoder (free with xmc_enc_data_free). */
int xmc_model_prepare(xmc_model *m, const xmc_dataset *ds, xmc_enc_data **out, xmc_error *err);
/* One training step on rows[0..B) of (d, Y). loss_out (may be NULL) gets
 * the summed loss of the batch. Does not allocate. */
int xmc_model_step(xmc_model *m, const xmc_enc_data *d, const xmc_csr *Y, const int64_t *rows,
                   int B, double *loss_out, xmc_error *err);

/* Exact top-k for rows [0, d->n): labels and scores are (n x k), best first,
 * label -1 where fewer than k labels exist. */
int xmc_model_topk(xmc_model *m, const xmc_enc_data *d, int k, int32_t *labels, float *scores,
                   xmc_error *err);
/* The embeddings the head scores (the encoder's output, after the
 * bottleneck) of rows [r0, r0 + n) of d into E (n x dim, row-major; dim as
 * xmc_model_get_stats reports), computed as prediction computes them (no
 * dropout). */
int xmc_model_embed(xmc_model *m, const xmc_enc_data *d, int64_t r0, int64_t n, float *E,
                    xmc_error *err);
/* A model with a kNN memory (xmc_train_config.knn) blends it into
 * xmc_model_topk, xmc_model_predict and --ann's top-k: scores are then
 * (1 - w) sigmoid(logit) + w K, in [0, 1]. use_neighbors(m, 0) scores with
 * the classifier alone (logits); the memory of a loaded model is on. */
void xmc_model_use_neighbors(xmc_model *m, int on);
const xmc_neighbors *xmc_model_neighbors(const xmc_model *m);
/* Rewrite one batch's classifier top-k lists (labels / scores, B x k,
 * logits, best first, from E, B x dim) into the blend's top-k, exactly
 * (src/model/neighbors.c says why the candidates suffice). No-op without
 * a memory in use. ann.h calls it on its own lists. */
int xmc_model_blend_neighbors(xmc_model *m, const float *E, int B, int k, int32_t *labels,
                              float *scores, xmc_error *err);
/* Top-k of a dataset as an N x L score matrix (the prediction file format;
 * write with xmc_csr_write_text). Free with xmc_csr_free. */
int xmc_model_predict(xmc_model *m, const xmc_dataset *ds, int k, xmc_csr **out,
                      xmc_error *err);
/* The same from prepared data (xmc_model_prepare), for a caller that also
 * embeds it (xmc_model_embed) and so prepares once. */
int xmc_model_predict_data(xmc_model *m, const xmc_enc_data *d, int k, xmc_csr **out,
                           xmc_error *err);

typedef struct xmc_model_stats {
    int64_t n_labels, n_inputs;
    int dim;                     /* embedding width the head sees */
    int64_t encoder_params, head_params;
    size_t encoder_bytes, head_bytes; /* parameters */
    size_t optim_bytes;          /* optimizer state (encoder + head) */
    size_t scratch_bytes;        /* activations / per-step scratch */
    int epochs_done;
    int64_t steps_done;
} xmc_model_stats;

void xmc_model_get_stats(const xmc_model *m, xmc_model_stats *s);

/* What a model for (cfg, train) will hold, computed before anything large
 * is allocated: the encoder is created (its size is known only then; it is
 * small next to a large head) and freed, the classifier is accounted from
 * its shape. xmc_model_create refuses with XMC_ENOMEM and this accounting
 * when total > budget, so a head that cannot fit fails up front instead of
 * being OOM-killed half-way through initialisation. It plans what
 * xmc_train_run will do with cfg: cfg->ensemble members (0 = the auto
 * rule, for a model directory), whose merge holds the wide model and one
 * member at once; a member refuses up front when that merge will not fit. */
typedef struct xmc_model_plan {
    int64_t n_labels;
    int dim;                    /* head input width d */
    int fan_in;                 /* spartex: F; 0 = dense head */
    size_t encoder_bytes;       /* parameters, grads, scratch (xmc_encoder_bytes) */
    size_t encoder_optim_bytes; /* AdamW / lazy Adam moments: 2 x parameters */
    size_t head_param_bytes;    /* dense: L d (4 or 2 with bf16); ffi: L (4 + 4) F */
    size_t head_state_bytes;    /* momentum (L d or L F) or Adam moments (x 2) */
    size_t meta_bytes;          /* spartex --aux-clusters: the dense meta head */
    size_t batch_bytes;         /* E, dE and the row buffer */
    size_t data_bytes;          /* the training set as loaded */
    int ensemble;               /* members (1 = a single model) */
    size_t knn_bytes;           /* the kNN memory (training rows x d, their labels), built
                                 * after training beside the final model; counted in total */
    size_t merge_bytes;         /* ensemble: the merge holds the wide model, one member
                                 * (weights, head momentum, gradients, scratch) and the data */
    size_t total;               /* the larger of training (the sum above) and the merge */
    size_t budget;              /* the budget total is checked against (0 = none) */
    size_t physical;            /* the machine's RAM (0 = unknown), for the record */
    char budget_source[64];     /* "MemAvailable", "cgroup memory.max", "--mem-budget", ... */
} xmc_model_plan;

int xmc_model_plan_memory(const xmc_train_config *cfg, const xmc_dataset *train,
                          xmc_model_plan *out, xmc_error *err);
/* One line: "memory plan: classifier ... total X GiB of budget Y GiB (...)". */
void xmc_model_plan_format(const xmc_model_plan *p, char *buf, size_t n);
const xmc_train_config *xmc_model_config(const xmc_model *m);
/* Label names (L lines) or NULL when the training data had none. */
const xmc_texts *xmc_model_label_names(const xmc_model *m);
const xmc_encoder *xmc_model_encoder(const xmc_model *m);
/* The dense head; NULL for a spartex model (see xmc_model_ffi_head). */
const xmc_ova *xmc_model_head(const xmc_model *m);
/* The fixed fan-in head of a spartex model; NULL otherwise. */
const xmc_ffi *xmc_model_ffi_head(const xmc_model *m);
/* The config.json text of a model directory (free with xmc_free). */
int xmc_model_read_config_text(const char *dir, char **text, xmc_error *err);

/* The whole `xmc train`: load cfg->train_spec (and test_spec, mapped with
 * the training label vocabulary), create or resume (resume = 1: continue
 * from dir's last checkpoint with its saved config; epochs/stop_after/
 * max_steps/eval_every/threads from cfg), train, checkpoint into dir. */
int xmc_train_run(const xmc_train_config *cfg, const char *dir, int resume, xmc_error *err);

/* ------------------------------------------------------------------------
 * Renee's hybrid data/model parallelism over a process group (dist.h,
 * docs/dist.md). With dist == NULL or one process these are the calls above.
 * With P > 1 processes (recipe renee, or spartex without --aux-clusters /
 * --rewire-fraction): the head holds rank r's label shard (xmc_dist_shard
 * over the labels), the encoder is replicated;
 * xmc_model_step is then collective (every rank passes the same GLOBAL batch
 * rows and runs the sharded step), xmc_model_topk/predict are collective and
 * return the merged result on rank 0 only (other ranks get labels -1 / an
 * empty matrix), xmc_model_save writes one head file per shard plus the
 * encoder and optimizer (rank 0) and then the manifest (rank 0, last).
 * Loading on any number of ranks re-shards a checkpoint from any P. A rank
 * that fails makes every rank return: the failing one its own error, the
 * others XMC_EDIST naming it (rank 0's message carries its text). The group
 * is borrowed: it must outlive the model. */
int xmc_model_create_dist(const xmc_train_config *cfg, const xmc_dataset *train, xmc_dist *dist,
                          xmc_model **out, xmc_error *err);
int xmc_model_load_dist(const char *dir, int with_state, xmc_dist *dist, xmc_model **out,
                        xmc_error *err);
/* The model's process group (NULL when it has none). */
xmc_dist *xmc_model_dist(const xmc_model *m);
/* The sharded top-k merge behind xmc_model_topk (collective), for callers
 * that rank a shard themselves (ann.h): every rank passes local_rc and its
 * n x k lists (global label ids, best first, -1 = empty); rank 0 gets in
 * labels/scores the best k of the P lists by (score desc, label asc), the
 * others -1 / -inf. A failing rank makes every rank return, as above. With
 * no active group the lists are copied. Rank 0 holds P n k labels and
 * scores while merging. */
int xmc_model_dist_merge_topk(xmc_dist *dist, int local_rc, const int32_t *lab, const float *sc,
                              int64_t n, int k, int32_t *labels, float *scores, xmc_error *err);
/* xmc_train_run on the group (collective; rank 0 alone logs and writes the
 * shared files). */
int xmc_train_run_dist(const xmc_train_config *cfg, const char *dir, int resume, xmc_dist *dist,
                       xmc_error *err);

/* ------------------------------------------------------------------------
 * Recipes "unidec" and "depsl" (include/xmc/psl.h, src/model/unidec.c),
 * run by xmc_train_run when cfg->recipe names them. The common settings map
 * onto xmc_unidec_config (docs/renee.md "Recipes and options"): epochs,
 * batch, seed; dim > 0 -> hidden h, bottleneck > 0 -> head width d,
 * intermediate -> the encoder's intermediate layer, buckets > 0, lr2 > 0 -> encoder rate; the rest keep the recipe's
 * defaults. Model directory: unidec.bin (xmc_unidec_save), labels.txt when
 * the data had label names, then config.json (recipe, settings, label
 * count, steps) written last; during training DIR/unidec.ckpt (psl.h,
 * xmc_unidec_train_ckpt) after every epoch, removed when the run completes:
 * --resume continues from it bit-identically.
 * Test metrics (P@1/3/5, PSP@5 with the training propensities) use both
 * heads for unidec, the DE head for depsl. */
#define XMC_MODEL_UNIDEC_FILE "unidec.bin"

/* 1 when recipe is "unidec" or "depsl". */
int xmc_recipe_is_unidec(const char *recipe);
/* The "recipe" of DIR/config.json into out (n bytes). */
int xmc_model_dir_recipe(const char *dir, char *out, size_t n, xmc_error *err);
/* Load a unidec/depsl model directory for prediction. *label_names gets the
 * label names or NULL (none stored). Free with xmc_unidec_free and
 * xmc_texts_free; both NULL on failure. */
int xmc_model_load_unidec(const char *dir, xmc_unidec **u, xmc_texts **label_names,
                          xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
