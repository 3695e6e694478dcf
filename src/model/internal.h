/* Model internals shared by model.c (create, step, predict), io.c (model
 * directory) and train.c (the loop). */
#ifndef XMC_MODEL_INTERNAL_H
#define XMC_MODEL_INTERNAL_H

#include "xmc/model.h"
#include "xmc/optim.h"

struct xmc_model {
    xmc_train_config cfg;
    xmc_encoder *enc;
    xmc_ova *head;
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
    char files[3][64];      /* weight files of the loaded / last checkpoint */
};

/* Allocate E/dE/rows for max_batch and the optimizer (with_state). */
int model_alloc_scratch(xmc_model *m, int with_state, xmc_error *err);
/* Top-k of prepared data as an N x L score matrix (rows sorted by label). */
int model_predict_data(xmc_model *m, const xmc_enc_data *d, int k, xmc_csr **out,
                       xmc_error *err);
/* xmc_model_train with propensities for the test metrics taken from
 * prop_train (the original set when train is an augmented D ∪ Z). */
int model_train_ex(xmc_model *m, const xmc_dataset *train, const xmc_dataset *prop_train,
                   const xmc_dataset *test, const char *dir, xmc_error *err);
/* Write a unidec/depsl model directory (see model.h). */
int model_unidec_save(const char *dir, const xmc_train_config *c, const xmc_unidec_config *uc,
                      const xmc_unidec *u, const xmc_dataset *train, xmc_error *err);
/* Planned steps for n_train rows with cfg's batch and epochs. */
int64_t model_plan_steps(const xmc_train_config *c, int64_t n_train);

#endif
