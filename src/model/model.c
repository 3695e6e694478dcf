/* Model object: creation (encoder auto-pick, dims), the Renee training step
 * and exact top-k prediction.
 *
 * Step (Renee, Jain et al. MLSys 2023, sec. 3): E = enc(x) -> fused OvA pass
 * over all labels (head.h: updates W chunk by chunk, returns dE without ever
 * forming B x L logits) -> encoder backward -> AdamW on the dense encoder
 * tensors + lazy Adam on the embedding-table rows the batch touched.
 * The classifier loss/gradient is a SUM over batch and labels (head.h), so
 * dE rows are per-example gradients and lr1 is per summed step.
 *
 * Memory: E and dE (max_batch x d) and a row buffer, allocated at create;
 * a step allocates nothing (head and encoder scratch are sized at their
 * create / prepare). Threading: inside the encoder and head (OpenMP).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "xmc/augment.h"
#include "xmc/cluster.h"

void xmc_train_config_default(xmc_train_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->recipe, sizeof c->recipe, "renee");
    c->dim = 0;     /* auto: XMC_TRAIN_DEFAULT_DIM, 256 for the mean bag */
    c->buckets = 0; /* auto: from the distinct n-grams of the training texts */
    c->bottleneck = 0;
    c->intermediate = 0;
    c->intermediate_relu = 1;
    c->layers = 1;
    c->act = XMC_ACT_RELU; /* with width 1024 and dropout 0.5 (docs/renee.md, round 3) */
    c->dropout = XMC_TRAIN_DEFAULT_DROPOUT;
    c->epochs = XMC_TRAIN_DEFAULT_EPOCHS;
    c->batch = XMC_TRAIN_DEFAULT_BATCH;
    c->lr1 = 0; /* auto: XMC_TRAIN_DEFAULT_LR1_SPARSE (sparse) or _LR1 */
    c->lr2 = 0; /* auto: XMC_TRAIN_DEFAULT_LR2 (sparse) or _LR2_BAG */
    c->wd1 = XMC_TRAIN_DEFAULT_WD1;
    c->wd2 = XMC_TRAIN_DEFAULT_WD2;
    c->momentum = 0.9f;
    c->head_opt = XMC_HEAD_SGDM;
    c->table_opt = XMC_TABLE_AUTO; /* sgdm when the inputs outnumber the rows (renee) */
    c->lr_table = 0;              /* auto: XMC_TRAIN_DEFAULT_LR_TABLE */
    c->loss = XMC_LOSS_AUTO; /* sqhinge for the tf-idf bag, else bce */
    c->warmup = 0.05f;
    c->seed = 1;
    c->eval_every = 1;
    c->loss_every = 10;
    c->fan_in = XMC_TRAIN_DEFAULT_FAN_IN;
    c->rewire_interval = XMC_TRAIN_DEFAULT_REWIRE_INTERVAL;
    c->rewire_end = (float)XMC_FFI_DEFAULT_REWIRE_END_FRAC;
    c->rewire_threshold = XMC_TRAIN_DEFAULT_REWIRE_THRESHOLD;
    c->rewire_fraction = 0;
    c->aux_clusters = 0;
    c->aux_scale = (float)XMC_FFI_DEFAULT_AUX_SCALE;
    c->meta_cutoff_epoch = 0;
    c->ensemble = 0; /* auto: XMC_TRAIN_DEFAULT_ENSEMBLE on small problems */
    c->ensemble_member = -1;
    c->knn = -1; /* auto: XMC_TRAIN_DEFAULT_KNN on small problems */
    c->knn_temp = XMC_TRAIN_DEFAULT_KNN_TEMP;
    c->knn_weight = XMC_TRAIN_DEFAULT_KNN_WEIGHT;
}

double model_aux_cutoff(const xmc_train_config *c)
{
    if (c->meta_cutoff_epoch > 0)
        return c->meta_cutoff_epoch;
    return c->epochs >= 2 ? (double)(c->epochs / 2) : 1.0;
}

void model_aux_drop(xmc_model *m)
{
    xmc_ffi_free(m->meta);
    m->meta = NULL;
    xmc_free(m->label_cluster);
    xmc_free_aligned(m->dE_meta);
    xmc_free(m->aux_indptr);
    xmc_free(m->aux_idx);
    m->label_cluster = NULL;
    m->dE_meta = NULL;
    m->aux_indptr = NULL;
    m->aux_idx = NULL;
    m->aux_cap = 0;
    m->n_clusters = 0;
}

int model_aux_setup(xmc_model *m, const xmc_dataset *train, xmc_error *err)
{
    const xmc_train_config *c = &m->cfg;
    if (!m->ffi || c->aux_clusters <= 0 || (double)m->epochs_done >= model_aux_cutoff(c)) {
        if (m->meta)
            model_aux_drop(m);
        return XMC_OK;
    }
    if (m->label_cluster)
        return XMC_OK;
    if (!train->X)
        return XMC_ERR(err, XMC_EUNSUPPORTED, train->spec, 0,
                       "--aux-clusters: labels are clustered on PIFA features, which need a "
                       "feature set (this one has texts only)");
    double t0 = xmc_now();
    xmc_csr *Z = NULL;
    xmc_clusters *cl = NULL;
    int rc = xmc_augment_pifa(train->X, train->Y, &Z, err);
    if (rc)
        return rc;
    xmc_cluster_params cp;
    xmc_cluster_params_default(&cp);
    cp.max_leaf = (Z->nrows + c->aux_clusters - 1) / c->aux_clusters;
    if (cp.max_leaf < 1)
        cp.max_leaf = 1;
    cp.seed = c->seed;
    rc = xmc_cluster_balanced_csr(Z, &cp, &cl, err);
    xmc_csr_free(Z);
    if (rc)
        return rc;
    int64_t maxrow = 1;
    for (int64_t i = 0; i < train->Y->nrows; i++) {
        int64_t r = train->Y->indptr[i + 1] - train->Y->indptr[i];
        maxrow = r > maxrow ? r : maxrow;
    }
    m->n_clusters = (int32_t)cl->n_clusters;
    m->aux_cap = (int64_t)m->max_batch * (maxrow < m->n_clusters ? maxrow : m->n_clusters);
    size_t dim = (size_t)m->enc->dim;
    m->label_cluster = xmc_malloc((size_t)(m->n_labels > 0 ? m->n_labels : 1) * sizeof(int32_t));
    m->dE_meta = xmc_malloc_aligned((size_t)m->max_batch * dim * sizeof(float));
    m->aux_indptr = xmc_malloc((size_t)(m->max_batch + 1) * sizeof(int64_t));
    m->aux_idx = xmc_malloc((size_t)m->aux_cap * sizeof(int32_t));
    if (!m->label_cluster || !m->dE_meta || !m->aux_indptr || !m->aux_idx) {
        xmc_clusters_free(cl);
        model_aux_drop(m);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (meta-classifier)");
    }
    /* Labels beyond the training width (none seen) go to cluster 0. */
    for (int64_t l = 0; l < m->n_labels; l++)
        m->label_cluster[l] = l < cl->n ? cl->assign[l] : 0;
    xmc_clusters_free(cl);
    if (!m->meta) {
        xmc_ffi_config fc;
        memset(&fc, 0, sizeof fc);
        fc.n_labels = m->n_clusters;
        fc.d_in = (int)dim;
        fc.fan_in = (int)dim; /* fan_in == d_in: an exact dense head */
        fc.dtype = XMC_DT_F32;
        fc.opt = c->head_opt;
        fc.max_batch = m->max_batch;
        fc.seed = c->seed + 1;
        if ((rc = xmc_ffi_create(&fc, &m->meta, err))) {
            model_aux_drop(m);
            return rc;
        }
    } else if (xmc_ffi_get_config(m->meta)->n_labels != m->n_clusters ||
               xmc_ffi_get_config(m->meta)->d_in != (int)dim) {
        int64_t got = xmc_ffi_get_config(m->meta)->n_labels;
        model_aux_drop(m);
        return XMC_ERR(err, XMC_ECORRUPT, NULL, 0,
                       "meta head has %lld clusters, the training data gives %d",
                       (long long)got, (int)m->n_clusters);
    }
    xmc_log(XMC_LOG_INFO,
            "meta-classifier: %d label clusters (PIFA, balanced 2-means) in %.2fs, dense head "
            "%.1f MB, aux scale %.2f until epoch %.2f", (int)m->n_clusters, xmc_now() - t0,
            (double)xmc_ffi_bytes(m->meta) / 1048576.0, (double)c->aux_scale,
            model_aux_cutoff(c));
    return XMC_OK;
}

int model_is_spartex(const xmc_train_config *c) { return !strcmp(c->recipe, "spartex"); }

void model_spartex_schedule(xmc_model *m)
{
    memset(&m->sched, 0, sizeof m->sched);
    m->sched.total_steps = m->total_steps;
    m->sched.rewire_interval = m->cfg.rewire_interval;
    m->sched.rewire_end = (int64_t)((double)m->cfg.rewire_end * (double)m->total_steps);
    if (m->sched.rewire_end <= 0) { /* 0 would mean the 0.66 default: freeze at once */
        m->sched.rewire_end = 1;
        if (m->cfg.rewire_end <= 0)
            m->sched.rewire_interval = 0;
    }
    m->sched.rewire_threshold = m->cfg.rewire_threshold;
    m->sched.rewire_fraction = m->cfg.rewire_fraction;
}

int head_train_step(xmc_model *m, int B, const xmc_csr *Y, const int64_t *rows,
                    const xmc_ova_hparams *hp, double *loss_out, xmc_error *err)
{
    if (m->ffi)
        return xmc_ffi_train_step(m->ffi, m->E, B, Y, rows, hp, m->dE, loss_out, err);
    return xmc_ova_train_step(m->head, m->E, B, Y, rows, hp, m->dE, loss_out, err);
}

int head_topk(xmc_model *m, int B, int k, int32_t *labels, float *scores, xmc_error *err)
{
    if (m->ffi)
        return xmc_ffi_topk(m->ffi, m->E, B, k, labels, scores, err);
    return xmc_ova_topk(m->head, m->E, B, k, labels, scores, err);
}

int head_save(const xmc_model *m, FILE *f, const char *path, xmc_error *err)
{
    if (m->ffi)
        return xmc_ffi_save(m->ffi, f, path, err);
    return xmc_ova_save(m->head, f, path, err);
}

int head_dim(const xmc_model *m)
{
    return m->ffi ? xmc_ffi_get_config(m->ffi)->d_in : xmc_ova_get_config(m->head)->dim;
}

int64_t head_n_labels(const xmc_model *m)
{
    return m->ffi ? xmc_ffi_get_config(m->ffi)->n_labels : xmc_ova_get_config(m->head)->n_labels;
}

size_t head_param_bytes(const xmc_model *m)
{
    return m->ffi ? xmc_ffi_param_bytes(m->ffi) : xmc_ova_param_bytes(m->head);
}

size_t head_state_bytes(const xmc_model *m)
{
    return m->ffi ? xmc_ffi_state_bytes(m->ffi) : xmc_ova_state_bytes(m->head);
}

size_t head_scratch_bytes(const xmc_model *m)
{
    return m->ffi ? xmc_ffi_scratch_bytes(m->ffi) : xmc_ova_scratch_bytes(m->head);
}

int64_t model_plan_steps(const xmc_train_config *c, int64_t n_train)
{
    int64_t per_epoch = (n_train + c->batch - 1) / c->batch;
    int64_t total = per_epoch * c->epochs;
    if (c->max_steps > 0 && c->max_steps < total)
        total = c->max_steps;
    return total > 0 ? total : 1;
}

static int check_config(const xmc_train_config *c, xmc_error *err)
{
    if (strcmp(c->recipe, "renee") != 0 && strcmp(c->recipe, "spartex") != 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "unknown recipe '%s' (expected renee, spartex, unidec or depsl)",
                       c->recipe);
    if (c->encoder[0] && !xmc_encoder_find(c->encoder))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "unknown encoder '%s' (expected sparse, bag or bert)",
                       c->encoder);
    if (c->epochs < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "--epochs %d: expected >= 1", c->epochs);
    if (c->batch < 1 || c->batch > XMC_TRAIN_MAX_BATCH)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "--batch %d: expected [1, %d]", c->batch,
                       XMC_TRAIN_MAX_BATCH);
    if (!(c->lr1 >= 0) || !(c->lr2 >= 0) || !(c->lr_table >= 0) || !(c->wd1 >= 0) ||
        !(c->wd2 >= 0) || !isfinite(c->lr1) || !isfinite(c->lr2) || !isfinite(c->lr_table))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "learning rates and weight decays must be finite and >= 0");
    if (!(c->warmup >= 0 && c->warmup < 1))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "warm-up fraction %g: expected [0, 1)",
                       (double)c->warmup);
    if (c->loss != XMC_LOSS_AUTO && c->loss != XMC_LOSS_BCE && c->loss != XMC_LOSS_SQHINGE)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "unknown loss");
    if (c->table_opt != XMC_TABLE_AUTO && c->table_opt != XMC_TABLE_ADAM &&
        c->table_opt != XMC_TABLE_SGDM)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "unknown table optimizer");
    if (c->loss_every < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "loss_every %d: expected >= 1", c->loss_every);
    if (c->knn < -1 || c->knn > XMC_TRAIN_MAX_KNN || !(c->knn_temp > 0 && c->knn_temp <= 1e3) ||
        !(c->knn_weight >= 0 && c->knn_weight <= 1))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "--knn %d --knn-temp %g --knn-weight %g: expected --knn 0..%d (-1 auto), "
                       "a temperature in (0, 1000] and a weight in [0, 1]",
                       c->knn, (double)c->knn_temp, (double)c->knn_weight, XMC_TRAIN_MAX_KNN);
    if (c->knn > 0 && model_is_spartex(c))
        return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                       "--knn: the kNN memory blends with the dense head (recipe renee)");
    return XMC_OK;
}

int model_alloc_scratch(xmc_model *m, int with_state, xmc_error *err)
{
    size_t n = (size_t)m->max_batch * (size_t)m->enc->dim * sizeof(float);
    m->E = xmc_malloc_aligned(n);
    m->dE = xmc_malloc_aligned(n);
    m->rows = xmc_malloc((size_t)m->max_batch * sizeof(int64_t));
    if (!m->E || !m->dE || !m->rows)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (batch buffers)");
    if (with_state && !m->opt)
        return xmc_enc_optim_create(m->enc, m->cfg.table_opt, m->cfg.momentum, &m->opt, err);
    return XMC_OK;
}

/* Buckets for the bag encoder: the distinct n-grams (up to max_n words) of
 * the training texts, counted by hashing into 2^24 bits, rounded to a power
 * of two and halved (a few collisions cost little, as fastText's fixed
 * -bucket shows), clamped to [2^12, 2^20]. Reuters-21578: 336k distinct uni
 * + bigrams, 2^18 buckets; 24k unigrams, 2^14 buckets. */
static int auto_buckets(const xmc_texts *t, int max_n, int64_t *out, xmc_error *err)
{
    const int64_t nbits = 1 << 24;
    uint64_t *bits = xmc_calloc((size_t)nbits / 64, sizeof(uint64_t));
    int64_t cap = 4096;
    int32_t *ids = xmc_malloc((size_t)cap * sizeof(int32_t));
    if (!bits || !ids) {
        xmc_free(bits);
        xmc_free(ids);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (counting n-grams)");
    }
    int64_t distinct = 0;
    for (int64_t i = 0; i < t->n; i++) {
        int64_t k = xmc_bag_hash_grow(xmc_texts_get(t, i), nbits, max_n, &ids, &cap);
        if (k < 0) {
            xmc_free(bits);
            xmc_free(ids);
            return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (counting n-grams)");
        }
        for (int64_t j = 0; j < k; j++) {
            uint64_t m = 1ull << (ids[j] & 63);
            if (!(bits[ids[j] >> 6] & m)) {
                bits[ids[j] >> 6] |= m;
                distinct++;
            }
        }
    }
    xmc_free(bits);
    xmc_free(ids);
    int64_t b = 1;
    while (b < distinct)
        b <<= 1;
    b /= 2;
    *out = b < (1 << 12) ? (1 << 12) : b > (1 << 20) ? (1 << 20) : b;
    return XMC_OK;
}

/* Budget when cfg->mem_budget is 0: MemAvailable (what can be had now
 * without swapping), capped by a cgroup v2 limit minus its usage; physical
 * RAM when /proc is unreadable. */
static size_t auto_budget(char *src, size_t n)
{
    size_t b = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            unsigned long long kb;
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                b = (size_t)kb * 1024;
                snprintf(src, n, "MemAvailable");
                break;
            }
        }
        fclose(f);
    }
    if (!b) {
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGE_SIZE);
        if (pages > 0 && psz > 0) {
            b = (size_t)pages * (size_t)psz;
            snprintf(src, n, "physical memory");
        }
    }
    unsigned long long lim = 0, cur = 0;
    f = fopen("/sys/fs/cgroup/memory.max", "r");
    if (f) {
        if (fscanf(f, "%llu", &lim) != 1)
            lim = 0; /* "max": no limit */
        fclose(f);
    }
    f = fopen("/sys/fs/cgroup/memory.current", "r");
    if (f) {
        if (fscanf(f, "%llu", &cur) != 1)
            cur = 0;
        fclose(f);
    }
    if (lim > 0 && (lim <= cur || (size_t)(lim - cur) < b || !b)) {
        b = lim > cur ? (size_t)(lim - cur) : 0;
        snprintf(src, n, "cgroup memory.max");
    }
    return b;
}

/* Training rows with at least one label (the others are skipped). */
static int64_t labelled_rows(const xmc_dataset *train)
{
    int64_t n = 0;
    for (int64_t i = 0; i < train->n; i++)
        n += train->Y->indptr[i + 1] > train->Y->indptr[i];
    return n;
}

/* The classifier's bytes from its shape (mirrors xmc_ova_create and
 * xmc_ffi_bytes_per_label), the rest from the created encoder. */
static int plan_fill(const xmc_model *m, const xmc_dataset *train, int n_ens,
                     xmc_model_plan *p, xmc_error *err)
{
    const xmc_train_config *c = &m->cfg;
    memset(p, 0, sizeof *p);
    int64_t l0 = 0, l1 = train->n_labels;
    model_shard_range(m->dist, train->n_labels, &l0, &l1); /* this rank's shard under MPI */
    p->n_labels = l1 - l0;
    p->dim = m->enc->dim;
    size_t L = (size_t)(l1 - l0), d = (size_t)m->enc->dim;
    if (model_is_spartex(c)) {
        int F = c->fan_in > 0 ? c->fan_in : XMC_TRAIN_DEFAULT_FAN_IN;
        if (F > m->enc->dim)
            F = m->enc->dim;
        p->fan_in = F;
        xmc_ffi_config fc;
        memset(&fc, 0, sizeof fc);
        fc.fan_in = F;
        fc.opt = c->head_opt;
        p->head_param_bytes = L * (4 + 4) * (size_t)F;
        p->head_state_bytes = L * xmc_ffi_bytes_per_label(&fc) - p->head_param_bytes;
        if (c->aux_clusters > 0) {
            size_t C = 1; /* balanced 2-means: a power of two */
            while (C < (size_t)c->aux_clusters)
                C <<= 1;
            fc.fan_in = (int)d;
            p->meta_bytes = C * xmc_ffi_bytes_per_label(&fc);
        }
    } else {
        size_t w = c->bf16 ? 2 : 4;
        p->head_param_bytes = L * d * w;
        p->head_state_bytes = c->head_opt == XMC_HEAD_ADAM ? L * d * 8 : L * d * w;
    }
    p->encoder_bytes = xmc_encoder_bytes(m->enc);
    p->encoder_optim_bytes = xmc_enc_optim_plan_bytes(m->enc, c->table_opt);
    p->batch_bytes = (size_t)m->max_batch * (2 * d * sizeof(float) + sizeof(int64_t));
    p->data_bytes = xmc_dataset_bytes(train);
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGE_SIZE);
    p->physical = pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz : 0;
    p->total = p->encoder_bytes + p->encoder_optim_bytes + p->head_param_bytes +
               p->head_state_bytes + p->meta_bytes + p->batch_bytes + p->data_bytes;
    if (c->knn > 0) { /* built after training, beside the final model (width n_ens d) */
        p->knn_bytes = xmc_neighbors_bytes_for(labelled_rows(train),
                                               (n_ens > 1 ? n_ens : 1) * m->enc->dim,
                                               xmc_csr_nnz(train->Y));
        if (n_ens <= 1) /* an ensemble builds it in the merge phase */
            p->total += p->knn_bytes;
    }
    p->ensemble = n_ens > 1 ? n_ens : 1;
    if (n_ens > 1) { /* ensemble.c's merge: the wide model n times the width, one member */
        size_t wide_enc, head = p->head_param_bytes + p->head_state_bytes;
        int rc = xmc_encoder_ensemble_bytes(&m->enc->cfg, n_ens, &wide_enc, err);
        if (rc)
            return rc;
        p->merge_bytes = wide_enc + (size_t)n_ens * (head + p->batch_bytes) + p->encoder_bytes +
                         head + p->batch_bytes + p->data_bytes + p->knn_bytes;
        if (p->merge_bytes > p->total)
            p->total = p->merge_bytes;
    }
    if (c->mem_budget > 0) {
        p->budget = (size_t)c->mem_budget;
        snprintf(p->budget_source, sizeof p->budget_source, "--mem-budget");
    } else if (c->mem_budget == 0) {
        p->budget = auto_budget(p->budget_source, sizeof p->budget_source);
    }
    return XMC_OK;
}

#define GIB(x) ((double)(x) / 1073741824.0)

void xmc_model_plan_format(const xmc_model_plan *p, char *buf, size_t n)
{
    char head[96], bud[128];
    if (p->fan_in)
        snprintf(head, sizeof head, "fixed fan-in F=%d", p->fan_in);
    else
        snprintf(head, sizeof head, "dense");
    if (p->budget)
        snprintf(bud, sizeof bud, "%s budget %.2f GiB (%s; RAM %.2f GiB)",
                 p->total <= p->budget ? "within the" : "EXCEEDS the", GIB(p->budget),
                 p->budget_source, GIB(p->physical));
    else
        snprintf(bud, sizeof bud, "no budget check");
    snprintf(buf, n,
             "memory plan: %s classifier %lld labels x %d inputs: weights%s %.3f GiB + "
             "optimizer state %.3f GiB; encoder %.3f GiB + optimizer %.3f GiB; batch "
             "%.3f GiB; data %.3f GiB; total %.3f GiB, %s",
             head, (long long)p->n_labels, p->dim, p->fan_in ? " + indices" : "",
             GIB(p->head_param_bytes), GIB(p->head_state_bytes), GIB(p->encoder_bytes),
             GIB(p->encoder_optim_bytes), GIB(p->batch_bytes), GIB(p->data_bytes),
             GIB(p->total), bud);
    size_t k = strlen(buf);
    if (p->meta_bytes && k < n)
        snprintf(buf + k, n - k, "; meta head %.3f GiB included", GIB(p->meta_bytes));
    k = strlen(buf);
    if (p->knn_bytes && k < n)
        snprintf(buf + k, n - k, "; kNN memory %.3f GiB included", GIB(p->knn_bytes));
    k = strlen(buf);
    if (p->ensemble > 1 && k < n) /* the total is the larger phase */
        snprintf(buf + k, n - k, "; ensemble of %d: training a member as above, the merge %.3f GiB",
                 p->ensemble, GIB(p->merge_bytes));
}

static int model_create_impl(const xmc_train_config *cfg, const xmc_dataset *train,
                             xmc_dist *dist, xmc_model **out, xmc_model_plan *plan_out,
                             xmc_error *err);

int xmc_model_plan_memory(const xmc_train_config *cfg, const xmc_dataset *train,
                          xmc_model_plan *out, xmc_error *err)
{
    memset(out, 0, sizeof *out);
    xmc_model *m = NULL;
    /* As xmc train will run it: members and their check, in a directory */
    int n = model_ensemble_members(cfg, train, 0, "");
    int rc = model_ensemble_check(cfg, n, 0, "", err);
    if (rc)
        return rc;
    xmc_train_config c = *cfg;
    c.ensemble = n;
    c.ensemble_member = n > 1 ? 0 : -1;
    return model_create_impl(&c, train, NULL, &m, out, err);
}

int xmc_model_create(const xmc_train_config *cfg, const xmc_dataset *train, xmc_model **out,
                     xmc_error *err)
{
    return model_create_impl(cfg, train, NULL, out, NULL, err);
}

int xmc_model_create_dist(const xmc_train_config *cfg, const xmc_dataset *train, xmc_dist *dist,
                          xmc_model **out, xmc_error *err)
{
    return model_create_impl(cfg, train, dist, out, NULL, err);
}

/* plan_out != NULL: stop after the encoder, fill the plan, create nothing. */
static int model_create_impl(const xmc_train_config *cfg, const xmc_dataset *train,
                             xmc_dist *dist, xmc_model **out, xmc_model_plan *plan_out,
                             xmc_error *err)
{
    *out = NULL;
    int rc = check_config(cfg, err);
    if (rc)
        return rc;
    if (xmc_dist_active(dist) && model_is_spartex(cfg) &&
        (cfg->aux_clusters > 0 || cfg->rewire_fraction > 0))
        return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                       "recipe spartex under mpirun: --aux-clusters and --rewire-fraction need "
                       "all labels in one process (clusters, a global |W| quantile); use the "
                       "threshold schedule, or one process");
    if (!train->Y || train->n_labels < 1)
        return XMC_ERR(err, XMC_EINVAL, train->spec, 0, "training data has no labels");
    xmc_model *m = xmc_calloc(1, sizeof *m);
    if (!m)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (model)");
    m->cfg = *cfg;
    m->dist = dist;
    if (!m->cfg.encoder[0]) /* auto: features beat hashed text when both exist */
        snprintf(m->cfg.encoder, sizeof m->cfg.encoder, "%s", train->X ? "sparse" : "bag");
    if (!strcmp(m->cfg.encoder, "sparse") && !train->X) {
        rc = XMC_ERR(err, XMC_EINVAL, train->spec, 0,
                     "--encoder sparse needs features, and this dataset has only texts "
                     "(use --encoder bag)");
        goto fail;
    }
    if (!strcmp(m->cfg.encoder, "bag") && !train->texts) {
        rc = XMC_ERR(err, XMC_EINVAL, train->spec, 0,
                     "--encoder bag needs texts, and this dataset has only features "
                     "(use --encoder sparse)");
        goto fail;
    }
    /* Bag settings on a run whose data picked the sparse encoder would be
     * ignored: say so rather than train something else than asked. */
    if (!strcmp(m->cfg.encoder, "sparse") && (m->cfg.buckets > 0 || m->cfg.extra[0])) {
        rc = XMC_ERR(err, XMC_EINVAL, train->spec, 0,
                     "--buckets and --bag are for the bag encoder, and this run uses the sparse "
                     "one (the data has features; --encoder bag hashes its texts instead)");
        goto fail;
    }
    int is_bert = !strcmp(m->cfg.encoder, "bert");
    if (is_bert && !train->texts) {
        rc = XMC_ERR(err, XMC_EINVAL, train->spec, 0,
                     "--encoder bert needs texts, and this dataset has only features "
                     "(use --encoder sparse)");
        goto fail;
    }
    if (is_bert && !m->cfg.extra[0]) {
        rc = XMC_ERR(err, XMC_EINVAL, NULL, 0,
                     "--encoder bert needs a checkpoint directory (--model-dir HF_DIR)");
        goto fail;
    }
    int is_bag = !strcmp(m->cfg.encoder, "bag");
    /* bag: unit-norm tf-idf n-grams into the sparse encoder's layer (bag.c
     * "idf"), so the sparse encoder's width and rate; docs/renee.md. */
    if (is_bag && !m->cfg.extra[0])
        snprintf(m->cfg.extra, sizeof m->cfg.extra, "idf");
    int bag_mean = is_bag && xmc_bag_ngram_order(m->cfg.extra) == 2;
    if (m->cfg.dim <= 0)
        m->cfg.dim = bag_mean ? 256 : XMC_TRAIN_DEFAULT_DIM;
    if (m->cfg.loss == XMC_LOSS_AUTO)
        m->cfg.loss = is_bag && !bag_mean ? XMC_LOSS_SQHINGE : XMC_LOSS_BCE;
    /* Reuters-21578 test P@1, mean bag: lr2 0.002 87.74 (20 epochs), 0.01 89.33 (10). */
    if (m->cfg.lr1 <= 0)
        m->cfg.lr1 = m->cfg.loss == XMC_LOSS_SQHINGE         ? XMC_TRAIN_DEFAULT_LR1_SQHINGE
                     : !strcmp(m->cfg.encoder, "sparse") ? XMC_TRAIN_DEFAULT_LR1_SPARSE
                                                         : XMC_TRAIN_DEFAULT_LR1;
    if (m->cfg.lr2 <= 0)
        m->cfg.lr2 = bag_mean  ? XMC_TRAIN_DEFAULT_LR2_BAG
                     : is_bert ? XMC_TRAIN_DEFAULT_LR2_BERT
                               : XMC_TRAIN_DEFAULT_LR2;
    if (is_bag && m->cfg.buckets <= 0 &&
        (rc = auto_buckets(train->texts, xmc_bag_ngram_order(m->cfg.extra), &m->cfg.buckets,
                           err)) != XMC_OK)
        goto fail;
    m->n_labels = train->n_labels;
    m->max_batch = cfg->batch;
    xmc_encoder_config ec;
    xmc_encoder_config_default(&ec, m->cfg.encoder);
    /* Other registered kinds (e.g. a transformer) size their own inputs. */
    ec.n_inputs = is_bag                              ? m->cfg.buckets
                  : !strcmp(m->cfg.encoder, "sparse") ? train->X->ncols
                                                      : 0;
    /* Tables: SGD-m where the inputs outnumber the training rows, i.e. a
     * vocabulary of mostly rare features (optim.h says why; measured for the
     * renee recipe's sparse and tf-idf encoders, so the others keep Adam). */
    if (m->cfg.table_opt == XMC_TABLE_AUTO)
        m->cfg.table_opt = !strcmp(m->cfg.recipe, "renee") && !bag_mean && !is_bert &&
                                   ec.n_inputs > train->n
                               ? XMC_TABLE_SGDM
                               : XMC_TABLE_ADAM;
    if (m->cfg.lr_table <= 0)
        m->cfg.lr_table = m->cfg.table_opt == XMC_TABLE_SGDM ? XMC_TRAIN_DEFAULT_LR_TABLE
                                                             : m->cfg.lr2;
    if (m->cfg.knn > 0 && xmc_dist_active(dist)) {
        rc = XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                     "--knn under mpirun: the kNN blend needs every label in one process "
                     "(--knn 0, or one process)");
        goto fail;
    }
    m->cfg.knn = model_knn_auto(&m->cfg, m->cfg.encoder, labelled_rows(train),
                                xmc_dist_active(dist));
    ec.hidden = m->cfg.dim;
    ec.layers = cfg->layers;
    ec.bottleneck = cfg->bottleneck;
    ec.intermediate = cfg->intermediate;
    ec.intermediate_relu = cfg->intermediate_relu;
    ec.act = cfg->act;
    ec.dropout = cfg->dropout;
    ec.input_dropout = cfg->input_dropout;
    ec.max_batch = cfg->batch;
    ec.seed = cfg->seed;
    memcpy(ec.extra, m->cfg.extra, sizeof ec.extra);
    if ((rc = xmc_encoder_create(&ec, &m->enc, err)) != XMC_OK)
        goto fail;
    if (is_bert) /* the width is the checkpoint's hidden size, not --dim */
        m->cfg.dim = m->enc->base_dim;
    {
        xmc_model_plan p; /* a member plans for the merge to come */
        int n_ens = cfg->ensemble_member >= 0 ? cfg->ensemble : 1;
        if ((rc = plan_fill(m, train, n_ens, &p, err)))
            goto fail;
        if (plan_out) {
            *plan_out = p;
            xmc_model_free(m);
            return XMC_OK;
        }
        if (p.budget && p.total > p.budget) {
            char line[768];
            xmc_model_plan_format(&p, line, sizeof line);
            rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                         "%s: not allocating (a fixed fan-in head, --recipe spartex "
                         "--fan-in F, needs (8 + 4) F bytes per label with SGDM; or "
                         "--bottleneck, --head-opt sgdm, --bf16%s; --mem-budget GIB overrides)",
                         line, p.ensemble > 1 ? ", --ensemble 1" : "");
            goto fail;
        }
    }
    int64_t l0 = 0, l1 = train->n_labels; /* rank r's label shard (all labels single-process) */
    model_shard_range(m->dist, train->n_labels, &l0, &l1);
    if (model_is_spartex(&m->cfg)) {
        if (cfg->bf16) {
            rc = XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                         "recipe spartex: --bf16 is not supported (fp32 sparse head)");
            goto fail;
        }
        if (m->cfg.fan_in <= 0)
            m->cfg.fan_in = XMC_TRAIN_DEFAULT_FAN_IN;
        if (m->cfg.fan_in > m->enc->dim) /* F = d is the dense layer */
            m->cfg.fan_in = m->enc->dim;
        xmc_ffi_config fc;
        memset(&fc, 0, sizeof fc);
        fc.n_labels = l1 - l0;
        fc.label_offset = l0;
        fc.d_in = m->enc->dim;
        fc.fan_in = m->cfg.fan_in;
        fc.dtype = XMC_DT_F32;
        fc.opt = cfg->head_opt;
        fc.max_batch = cfg->batch;
        fc.seed = cfg->seed;
        if ((rc = xmc_ffi_create(&fc, &m->ffi, err)) != XMC_OK)
            goto fail;
    } else {
        xmc_ova_config hc;
        memset(&hc, 0, sizeof hc);
        hc.n_labels = l1 - l0;
        hc.label_offset = l0;
        hc.dim = m->enc->dim;
        hc.dtype = cfg->bf16 ? XMC_DT_BF16 : XMC_DT_F32;
        hc.opt = cfg->head_opt;
        hc.max_batch = cfg->batch;
        hc.seed = cfg->seed;
        if ((rc = xmc_ova_create(&hc, &m->head, err)) != XMC_OK)
            goto fail;
    }
    if ((rc = model_alloc_scratch(m, 1, err)) != XMC_OK)
        goto fail;
    if (train->label_names) {
        const xmc_texts *t = train->label_names;
        int64_t *all = xmc_malloc((size_t)(t->n > 0 ? t->n : 1) * sizeof(int64_t));
        if (!all) {
            rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (label names)");
            goto fail;
        }
        for (int64_t i = 0; i < t->n; i++)
            all[i] = i;
        rc = xmc_texts_select_rows(t, all, t->n, &m->label_names, err);
        xmc_free(all);
        if (rc)
            goto fail;
    }
    int64_t used = labelled_rows(train);
    m->n_train = used;
    m->total_steps = model_plan_steps(&m->cfg, used);
    if (m->ffi)
        model_spartex_schedule(m);
    *out = m;
    return XMC_OK;
fail:
    xmc_model_free(m);
    return rc;
}

void xmc_model_free(xmc_model *m)
{
    if (!m)
        return;
    model_dist_free(m);
    xmc_encoder_free(m->enc);
    xmc_ova_free(m->head);
    xmc_ffi_free(m->ffi);
    model_aux_drop(m);
    xmc_texts_free(m->label_names);
    xmc_enc_optim_free(m->opt);
    xmc_neighbors_free(m->nbr);
    xmc_free_aligned(m->E);
    xmc_free_aligned(m->dE);
    xmc_free(m->rows);
    xmc_free(m);
}

int xmc_model_prepare(xmc_model *m, const xmc_dataset *ds, xmc_enc_data **out, xmc_error *err)
{
    return xmc_encoder_prepare(m->enc, ds, out, err);
}

void model_step_hparams(const xmc_model *m, int64_t t, xmc_ova_hparams *hp,
                        xmc_adam_hparams *a, xmc_adam_hparams *at)
{
    const int64_t warm = (int64_t)((double)m->cfg.warmup * (double)m->total_steps);
    xmc_schedule s1 = {m->cfg.lr1, warm, m->total_steps, 0.0f};
    xmc_schedule s2 = {m->cfg.lr2, warm, m->total_steps, 0.0f};
    xmc_schedule s3 = {m->cfg.lr_table, warm, m->total_steps, 0.0f};
    memset(hp, 0, sizeof *hp);
    hp->lr = xmc_schedule_lr(&s1, t);
    hp->momentum = m->cfg.momentum;
    hp->weight_decay = m->cfg.wd1;
    hp->beta1 = XMC_ADAM_DEFAULT_BETA1;
    hp->beta2 = XMC_ADAM_DEFAULT_BETA2;
    hp->eps = XMC_ADAM_DEFAULT_EPS;
    hp->loss = m->cfg.loss;
    hp->step = t;
    *a = (xmc_adam_hparams){xmc_schedule_lr(&s2, t), XMC_ADAM_DEFAULT_BETA1,
                            XMC_ADAM_DEFAULT_BETA2, XMC_ADAM_DEFAULT_EPS, m->cfg.wd2, t};
    *at = *a;
    at->lr = xmc_schedule_lr(&s3, t);
}

int xmc_model_step(xmc_model *m, const xmc_enc_data *d, const xmc_csr *Y, const int64_t *rows,
                   int B, double *loss_out, xmc_error *err)
{
    if (!m->opt)
        return XMC_ERR(err, XMC_ESTATE, NULL, 0, "model loaded without optimizer state");
    if (B < 1 || B > m->max_batch)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "batch %d outside [1, %d]", B, m->max_batch);
    if (model_sharded(m))
        return model_dist_step(m, d, Y, rows, B, loss_out, err);
    const int64_t t = m->step + 1;
    int rc = xmc_encoder_forward(m->enc, d, rows, B, 1, m->E, err);
    if (rc)
        return rc;
    xmc_ova_hparams hp;
    xmc_adam_hparams a, at;
    model_step_hparams(m, t, &hp, &a, &at);
    double alpha = 0;
    if (m->meta && m->label_cluster) {
        int64_t per_epoch = (m->n_train + m->cfg.batch - 1) / m->cfg.batch;
        double epoch = (double)(t - 1) / (double)(per_epoch > 0 ? per_epoch : 1);
        alpha = xmc_ffi_aux_alpha(m->cfg.aux_scale, epoch, model_aux_cutoff(&m->cfg));
    }
    if (alpha > 0) {
        /* (1 - alpha) L_main + alpha L_meta; dE summed over both heads. */
        if ((rc = xmc_ffi_aux_targets(Y, rows, B, m->label_cluster, m->n_labels, m->n_clusters,
                                      m->aux_indptr, m->aux_idx, m->aux_cap, err)))
            return rc;
        xmc_csr T = {.nrows = B, .ncols = m->n_clusters, .indptr = m->aux_indptr,
                     .indices = m->aux_idx, .values = NULL, .owner = NULL};
        if ((rc = xmc_ffi_train_step_ex(m->ffi, m->E, B, Y, rows, &hp, (float)(1 - alpha),
                                        m->dE, loss_out, err)) ||
            (rc = xmc_ffi_train_step_ex(m->meta, m->E, B, &T, NULL, &hp, (float)alpha,
                                        m->dE_meta, NULL, err)))
            return rc;
        const size_t nd = (size_t)B * (size_t)m->enc->dim;
        for (size_t i = 0; i < nd; i++)
            m->dE[i] += m->dE_meta[i];
    } else if ((rc = head_train_step(m, B, Y, rows, &hp, loss_out, err))) {
        return rc;
    }
    xmc_encoder_zero_grad(m->enc);
    if ((rc = xmc_encoder_backward(m->enc, m->dE, B, err)))
        return rc;
    xmc_enc_optim_step(m->opt, m->enc, &a, &at);
    m->step = t;
    if (m->ffi) { /* dynamic sparse training: rewire when due, freeze at the end */
        int64_t pruned = 0;
        if ((rc = xmc_ffi_schedule_apply(m->ffi, &m->sched, t, &pruned, err)))
            return rc;
        m->rewired += pruned;
    }
    return XMC_OK;
}

int xmc_model_topk(xmc_model *m, const xmc_enc_data *d, int k, int32_t *labels, float *scores,
                   xmc_error *err)
{
    if (k < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "--topk %d: expected >= 1", k);
    if (model_sharded(m))
        return model_dist_topk(m, d, k, labels, scores, err);
    for (int64_t r0 = 0; r0 < d->n; r0 += m->max_batch) {
        int B = (int)(d->n - r0 < m->max_batch ? d->n - r0 : m->max_batch);
        for (int i = 0; i < B; i++)
            m->rows[i] = r0 + i;
        int rc = xmc_encoder_forward(m->enc, d, m->rows, B, 0, m->E, err);
        if (!rc)
            rc = head_topk(m, B, k, labels + (size_t)r0 * (size_t)k,
                           scores + (size_t)r0 * (size_t)k, err);
        if (!rc)
            rc = xmc_model_blend_neighbors(m, m->E, B, k, labels + (size_t)r0 * (size_t)k,
                                           scores + (size_t)r0 * (size_t)k, err);
        if (rc)
            return rc;
    }
    return XMC_OK;
}

int xmc_model_embed(xmc_model *m, const xmc_enc_data *d, int64_t r0, int64_t n, float *E,
                    xmc_error *err)
{
    if (r0 < 0 || n < 0 || r0 + n > d->n)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "embed rows [%lld, %lld): the data has %lld",
                       (long long)r0, (long long)(r0 + n), (long long)d->n);
    const size_t dim = (size_t)m->enc->dim;
    for (int64_t b0 = r0; b0 < r0 + n; b0 += m->max_batch) {
        int B = (int)(r0 + n - b0 < m->max_batch ? r0 + n - b0 : m->max_batch);
        for (int i = 0; i < B; i++)
            m->rows[i] = b0 + i;
        int rc = xmc_encoder_forward(m->enc, d, m->rows, B, 0, m->E, err);
        if (rc)
            return rc;
        memcpy(E + (size_t)(b0 - r0) * dim, m->E, (size_t)B * dim * sizeof(float));
    }
    return XMC_OK;
}

typedef struct lab_score {
    int32_t l;
    float s;
} lab_score;

static int cmp_lab(const void *a, const void *b)
{
    int32_t x = ((const lab_score *)a)->l, y = ((const lab_score *)b)->l;
    return (x > y) - (x < y);
}

int xmc_model_predict(xmc_model *m, const xmc_dataset *ds, int k, xmc_csr **out,
                      xmc_error *err)
{
    *out = NULL;
    xmc_enc_data *d = NULL;
    int rc = xmc_model_prepare(m, ds, &d, err);
    if (!rc)
        rc = xmc_model_predict_data(m, d, k, out, err);
    xmc_enc_data_free(d);
    return rc;
}

int xmc_model_predict_data(xmc_model *m, const xmc_enc_data *d, int k, xmc_csr **out,
                       xmc_error *err)
{
    *out = NULL;
    if (k < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "--topk %d: expected >= 1", k);
    if (k > m->n_labels)
        k = (int)m->n_labels;
    int32_t *labels = NULL;
    float *scores = NULL;
    xmc_csr *P = NULL;
    int rc = XMC_OK;
    size_t n = (size_t)(d->n > 0 ? d->n : 1) * (size_t)k;
    labels = xmc_malloc(n * sizeof(int32_t));
    scores = xmc_malloc(n * sizeof(float));
    if (!labels || !scores) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (%lld x %d predictions)",
                     (long long)d->n, k);
        goto done;
    }
    if ((rc = xmc_model_topk(m, d, k, labels, scores, err)))
        goto done;
    if ((rc = xmc_csr_create(&P, d->n, m->n_labels, d->n * k, 1, err)))
        goto done;
    int64_t q = 0;
    lab_score tmp[256];
    for (int64_t i = 0; i < d->n; i++) {
        int c = 0;
        for (int j = 0; j < k; j++) {
            int32_t l = labels[(size_t)i * k + j];
            if (l < 0)
                continue;
            if (c < 256) {
                tmp[c].l = l;
                tmp[c].s = scores[(size_t)i * k + j];
            }
            c++;
        }
        if (c <= 256) {
            qsort(tmp, (size_t)c, sizeof tmp[0], cmp_lab);
            for (int j = 0; j < c; j++, q++) {
                P->indices[q] = tmp[j].l;
                P->values[q] = tmp[j].s;
            }
        } else {
            /* Large k: sort in place inside the output arrays. */
            lab_score *big = xmc_malloc((size_t)c * sizeof *big);
            if (!big) {
                rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
                goto done;
            }
            int cc = 0;
            for (int j = 0; j < k; j++) {
                int32_t l = labels[(size_t)i * k + j];
                if (l >= 0)
                    big[cc++] = (lab_score){l, scores[(size_t)i * k + j]};
            }
            qsort(big, (size_t)cc, sizeof *big, cmp_lab);
            for (int j = 0; j < cc; j++, q++) {
                P->indices[q] = big[j].l;
                P->values[q] = big[j].s;
            }
            xmc_free(big);
        }
        P->indptr[i + 1] = q;
    }
    *out = P;
    P = NULL;
done:
    xmc_csr_free(P);
    xmc_free(labels);
    xmc_free(scores);
    return rc;
}

void xmc_model_get_stats(const xmc_model *m, xmc_model_stats *s)
{
    memset(s, 0, sizeof *s);
    s->n_labels = m->n_labels;
    s->n_inputs = m->enc->cfg.n_inputs;
    s->dim = m->enc->dim;
    s->encoder_params = xmc_encoder_param_count(m->enc);
    s->head_params = m->n_labels * (int64_t)(m->ffi ? xmc_ffi_get_config(m->ffi)->fan_in
                                                      : m->enc->dim);
    s->encoder_bytes = (size_t)s->encoder_params * sizeof(float);
    s->head_bytes = head_param_bytes(m);
    s->optim_bytes = (m->opt ? xmc_enc_optim_bytes(m->opt) : 0) + head_state_bytes(m);
    s->scratch_bytes = xmc_encoder_bytes(m->enc) - s->encoder_bytes + head_scratch_bytes(m) +
                       2 * (size_t)m->max_batch * (size_t)m->enc->dim * sizeof(float) +
                       model_dist_bytes(m);
    s->epochs_done = m->epochs_done;
    s->steps_done = m->step;
}

const xmc_train_config *xmc_model_config(const xmc_model *m) { return &m->cfg; }
const xmc_texts *xmc_model_label_names(const xmc_model *m) { return m->label_names; }
const xmc_encoder *xmc_model_encoder(const xmc_model *m) { return m->enc; }
const xmc_ova *xmc_model_head(const xmc_model *m) { return m->head; }
const xmc_ffi *xmc_model_ffi_head(const xmc_model *m) { return m->ffi; }
