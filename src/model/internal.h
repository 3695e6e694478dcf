/* Model internals shared by model.c (create, step, predict), io.c (model
 * directory) and train.c (the loop). */
#ifndef XMC_MODEL_INTERNAL_H
#define XMC_MODEL_INTERNAL_H

#include "xmc/model.h"
#include "xmc/ffi.h"
#include "xmc/optim.h"

/* Files a model directory lists: encoder, head, optim, meta, neighbors. */
#define MODEL_PARTS 5

struct xmc_model {
    xmc_train_config cfg;
    xmc_encoder *enc;
    xmc_ova *head;          /* dense head (renee), or NULL */
    xmc_ffi *ffi;           /* fixed fan-in head (spartex), or NULL */
    xmc_ffi_schedule sched; /* spartex rewiring schedule (from cfg, total_steps) */
    int64_t rewired;        /* weights rewired since the last epoch log */
    /* spartex --aux-clusters: the meta head and its per-step buffers */
    xmc_ffi *meta;          /* dense meta head over the clusters, or NULL */
    int32_t *label_cluster; /* (n_labels) cluster of each label, or NULL */
    int32_t n_clusters;
    float *dE_meta;         /* (max_batch, dim) */
    int64_t *aux_indptr;    /* (max_batch + 1) */
    int32_t *aux_idx;       /* (aux_cap) */
    int64_t aux_cap;
    xmc_texts *label_names; /* (n_labels) or NULL */
    int64_t n_labels;
    int64_t n_train;        /* training rows used (rows with a label) */
    int64_t total_steps;    /* planned steps of the whole run (schedule) */
    int epochs_done;
    int64_t step;           /* steps taken */
    xmc_enc_optim *opt;     /* NULL when loaded for prediction */
    int max_batch;
    float *E, *dE;          /* (max_batch, dim) */
    int64_t *rows;          /* (max_batch) predict batch rows */
    xmc_dist *dist;         /* process group (borrowed), NULL = single process */
    struct model_dist *dd;  /* sharded-step scratch and counters, or NULL */
    xmc_neighbors *nbr;     /* kNN memory, or NULL (neighbors.c) */
    int use_nbr;            /* blend it into top-k (xmc_model_use_neighbors) */
    char files[MODEL_PARTS][64]; /* weight files of the loaded / last checkpoint: encoder,
                                  * head, optim, meta, neighbors ("" when none) */
};

/* The head, whichever kind (xmc_ova for renee, xmc_ffi for spartex): same
 * semantics (ffi.h mirrors head.h). */
int head_train_step(xmc_model *m, int B, const xmc_csr *Y, const int64_t *rows,
                    const xmc_ova_hparams *hp, double *loss_out, xmc_error *err);
int head_topk(xmc_model *m, int B, int k, int32_t *labels, float *scores, xmc_error *err);
int head_save(const xmc_model *m, FILE *f, const char *path, xmc_error *err);
int head_dim(const xmc_model *m);
int64_t head_n_labels(const xmc_model *m);
size_t head_param_bytes(const xmc_model *m);
size_t head_state_bytes(const xmc_model *m);
size_t head_scratch_bytes(const xmc_model *m);
/* 1 for recipe "spartex". */
int model_is_spartex(const xmc_train_config *c);
/* The rewiring schedule of a spartex model from its config and total_steps. */
void model_spartex_schedule(xmc_model *m);

/* spartex --aux-clusters before training from `train` (clusters, meta head,
 * buffers); no-op when off or past the cutoff. */
int model_aux_setup(xmc_model *m, const xmc_dataset *train, xmc_error *err);
/* The effective meta cutoff epoch. */
double model_aux_cutoff(const xmc_train_config *c);
/* Drop the meta head (after the cutoff). */
void model_aux_drop(xmc_model *m);

/* Allocate E/dE/rows for max_batch and the optimizer (with_state). */
int model_alloc_scratch(xmc_model *m, int with_state, xmc_error *err);
/* xmc_model_train with propensities for the test metrics taken from
 * prop_train (the original set when train is an augmented D ∪ Z). */
int model_train_ex(xmc_model *m, const xmc_dataset *train, const xmc_dataset *prop_train,
                   const xmc_dataset *test, const char *dir, xmc_error *err);
/* Write a unidec/depsl model directory (see model.h). */
int model_unidec_save(const char *dir, const xmc_train_config *c, const xmc_unidec_config *uc,
                      const xmc_unidec *u, const xmc_dataset *train, xmc_error *err);
/* Planned steps for n_train rows with cfg's batch and epochs. */
int64_t model_plan_steps(const xmc_train_config *c, int64_t n_train);

/* ---- Renee's hybrid parallelism (train_dist.c, shard_io.c) ---- */
/* 1 when m runs sharded over more than one process. */
int model_sharded(const xmc_model *m);
/* This rank's label range of n_labels. */
void model_shard_range(const xmc_dist *d, int64_t n_labels, int64_t *l0, int64_t *l1);
/* Allocate the sharded-step scratch (after xmc_model_prepare: it sizes the
 * sparse-table merge from the encoder's touched-row capacity). No-op when
 * single-process or already sized. */
int model_dist_reserve(xmc_model *m, xmc_error *err);
void model_dist_free(xmc_model *m);
/* Bytes of that scratch (0 single-process). */
size_t model_dist_bytes(const xmc_model *m);
/* The sharded step / top-k behind xmc_model_step / xmc_model_topk. */
int model_dist_step(xmc_model *m, const xmc_enc_data *d, const xmc_csr *Y, const int64_t *rows,
                    int B, double *loss_out, xmc_error *err);
int model_dist_topk(xmc_model *m, const xmc_enc_data *d, int k, int32_t *labels, float *scores,
                    xmc_error *err);
/* Log traffic, comm share and per-rank peak RSS (collective; rank 0 logs). */
int model_dist_report(xmc_model *m, xmc_error *err);
/* All ranks agree on local_rc; on failure every rank returns an error:
 * the failing rank keeps its own, the others get XMC_EDIST with its text
 * (what: "at step 3", "writing the checkpoint"). Collective. */
int model_dist_agree(xmc_dist *d, int local_rc, const char *what, xmc_error *err);
/* Learning-rate hparams of step t (shared by both step paths): the head's,
 * the encoder's dense tensors' (a) and its tables' (at). */
void model_step_hparams(const xmc_model *m, int64_t t, xmc_ova_hparams *hp,
                        xmc_adam_hparams *a, xmc_adam_hparams *at);
/* Sharded checkpoint (shard_io.c) and the io.c pieces it reuses. */
int model_shard_save(const xmc_model *m, const char *dir, xmc_error *err);
/* The dense head of this rank's shard from the manifest's shard list
 * (`shards`: the cJSON "head_shards" array, or NULL = files[1] holds all
 * labels), re-sharding when the layouts differ. */
int model_shard_load_head(xmc_model *m, const char *dir, const void *shards, xmc_error *err);
int model_write_part(const char *dir, const char *name, int part, const xmc_model *m,
                     xmc_error *err);
/* dir/name, one head file (an xmc_ffi when ffi, else an xmc_ova), into *out. */
int model_read_head(const char *dir, const char *name, int ffi, void **out, xmc_error *err);
int model_write_config(const char *dir, const xmc_model *m, const char *files[MODEL_PARTS],
                       const void *shards, xmc_error *err);
/* The weight files the manifest in dir lists now (to delete once replaced;
 * "" when none), and when shards is not NULL its "head_shards" list (a
 * cJSON array, free with cJSON_Delete; NULL when none). One read of
 * config.json. */
void model_old_files(const char *dir, char names[MODEL_PARTS][64], void **shards);
/* The "ensemble" of dir/config.json: members (1 when absent) and member
 * (k in a member's directory, -1 otherwise). */
int model_dir_ensemble(const char *dir, int *members, int *member, xmc_error *err);
/* Delete a (single-process) model directory: its manifest, the files it
 * names, labels.txt, then the directory (a warning if anything else is
 * left in it). */
void model_remove_dir(const char *dir);

/* ---- kNN memory (neighbors.c; model.h, xmc_train_config.knn) ---- */
/* The neighbours a run of c takes (auto resolved for its encoder, labelled
 * training rows and process group). */
int model_knn_auto(const xmc_train_config *c, const char *encoder, int64_t n_train,
                   int dist_active);
/* When m is complete (all epochs, not an ensemble member) and has knn > 0
 * but no memory yet: build it from prop_train, save it into dir (may be
 * NULL) and log the test metrics with it when test != NULL. */
int model_neighbors_finish(xmc_model *m, const xmc_dataset *prop_train, const xmc_dataset *test,
                           const char *dir, xmc_error *err);
/* Write m's memory and a manifest naming it beside the files of m's last
 * checkpoint in dir (io.c). */
int model_save_neighbors(const xmc_model *m, const char *dir, xmc_error *err);

/* ---- Ensembles (ensemble.c; model.h, xmc_train_config.ensemble) ---- */
/* What dir holds of an ensemble: 0 none (a plain model, or nothing), 1
 * members in training (*n of them, from member 0's config), 2 a merged
 * ensemble of *n (member directories left by a cut-short clean-up are
 * removed). */
int model_ensemble_state(const char *dir, int *n);
/* The members a run of cfg on train takes (auto resolved); dist_active and
 * dir as xmc_train_run_dist has them. */
int model_ensemble_members(const xmc_train_config *cfg, const xmc_dataset *train,
                           int dist_active, const char *dir);
/* Refuse n > 1 where members cannot be merged (recipe, encoder, group,
 * no directory) with a message naming why. */
int model_ensemble_check(const xmc_train_config *cfg, int n, int dist_active, const char *dir,
                         xmc_error *err);
/* Train the n members of cfg into dir/member-k (resume: continue those
 * that exist; c is then member 0's config), then merge them into dir and
 * remove the members. Returns XMC_OK also when a member stopped early
 * (stop_after, max_steps): --resume continues. */
int model_ensemble_train(const xmc_train_config *cfg, int n, const char *dir, int resume,
                         const xmc_dataset *fit, const xmc_dataset *prop_train,
                         const xmc_dataset *test, xmc_error *err);
/* Test metrics of m on test (propensities from prop_train), logged as
 * "<what>: test P@1 ... P@3 ... P@5 ... [PSP@5 ...]". */
int model_log_test(xmc_model *m, const xmc_dataset *prop_train, const xmc_dataset *test,
                   const char *what, xmc_error *err);

#endif
