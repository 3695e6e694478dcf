/* Ensembles of Renee models (model.h, xmc_train_config.ensemble): n members
 * trained one after the other with seeds s, s+1, ... into DIR/member-k, then
 * merged into one model in DIR whose score is exactly the members' mean:
 * encoders side by side (xmc_encoder_create_ensemble) and each label's head
 * row the n member rows, each scaled 1/n. Averaging seeds is the variance
 * reduction Parabel and omikuji get from their 3 trees; merging (instead
 * of keeping n models) keeps prediction, --ann, info and the model format
 * unchanged, at n times the width.
 *
 * Interruption: every member checkpoints as a model of its own; --resume
 * skips the finished ones, continues the one in progress and starts the
 * rest, so a resumed ensemble is bit-identical to an uninterrupted one. The
 * merged model is written (manifest last) before the members are removed. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static void member_dir(char *out, size_t n, const char *dir, int k)
{
    snprintf(out, n, "%s/member-%d", dir, k);
}

static int member_done(const xmc_model *m)
{
    return m->epochs_done >= m->cfg.epochs || (m->cfg.max_steps > 0 && m->step >= m->cfg.max_steps);
}

int model_ensemble_state(const char *dir, int *n)
{
    char md[4096];
    int member = -1;
    *n = 1;
    if (model_dir_ensemble(dir, n, &member, NULL) == XMC_OK) {
        if (*n <= 1)
            return 0;
        for (int k = 0; k < *n; k++) { /* a clean-up cut short */
            member_dir(md, sizeof md, dir, k);
            if (model_dir_ensemble(md, &(int){0}, &member, NULL) == XMC_OK)
                model_remove_dir(md);
        }
        return 2;
    }
    member_dir(md, sizeof md, dir, 0);
    return model_dir_ensemble(md, n, &member, NULL) == XMC_OK && *n > 1 ? 1 : 0;
}

int model_ensemble_check(const xmc_train_config *c, int n, int dist_active, const char *dir,
                         xmc_error *err)
{
    if (n < 1 || n > XMC_TRAIN_MAX_ENSEMBLE)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "--ensemble %d: expected 1..%d (0 = auto)", n,
                       XMC_TRAIN_MAX_ENSEMBLE);
    if (n == 1)
        return XMC_OK;
    if (strcmp(c->recipe, "renee") != 0)
        return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                       "--ensemble %d: ensembles are for recipe renee (not %s)", n, c->recipe);
    if (!strcmp(c->encoder, "bert") || c->intermediate > 0)
        return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                       "--ensemble %d: members merge for the sparse and bag encoders without "
                       "--intermediate (a transformer mixes its hidden units)",
                       n);
    if (dist_active)
        return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                       "--ensemble %d: ensembles train on one process (not under mpirun)", n);
    if (!dir)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "--ensemble %d: members are trained into a model directory", n);
    return XMC_OK;
}

int model_ensemble_members(const xmc_train_config *c, const xmc_dataset *train, int dist_active,
                           const char *dir)
{
    if (c->ensemble > 0)
        return c->ensemble;
    /* auto: the default where members can merge (model_ensemble_check) and
     * the problem is small */
    if (train->n > XMC_TRAIN_ENSEMBLE_AUTO_MAX_ROWS ||
        train->n_labels > XMC_TRAIN_ENSEMBLE_AUTO_MAX_LABELS ||
        model_ensemble_check(c, XMC_TRAIN_DEFAULT_ENSEMBLE, dist_active, dir, NULL) != XMC_OK)
        return 1;
    return XMC_TRAIN_DEFAULT_ENSEMBLE;
}

/* Member k's rows scaled 1/n into columns [k d, (k+1) d) of dst, a chunk
 * of labels at a time (bf16 heads round once more, to nearest). */
static int place_head(xmc_ova *dst, const xmc_ova *src, int k, int n, xmc_error *err)
{
    const int64_t L = xmc_ova_get_config(src)->n_labels, CH = 1024;
    const int d = xmc_ova_get_config(src)->dim, D = xmc_ova_get_config(dst)->dim;
    float *s = xmc_malloc((size_t)CH * (size_t)d * sizeof(float));
    float *t = xmc_malloc((size_t)CH * (size_t)D * sizeof(float));
    int rc = s && t ? XMC_OK : XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (head merge)");
    for (int64_t l0 = 0; l0 < L && !rc; l0 += CH) {
        int64_t l1 = l0 + CH < L ? l0 + CH : L;
        if ((rc = xmc_ova_get_rows(src, l0, l1, s, err)) ||
            (rc = xmc_ova_get_rows(dst, l0, l1, t, err)))
            break;
        for (int64_t i = 0; i < l1 - l0; i++)
            for (int j = 0; j < d; j++)
                t[i * D + (int64_t)k * d + j] = s[i * d + j] / (float)n;
        rc = xmc_ova_set_rows(dst, l0, l1, t, err);
    }
    xmc_free(s);
    xmc_free(t);
    return rc;
}

/* The wide model for member 0 (m0, weights only; its label names move
 * over). Parameters are filled by place_member. */
static int make_merged(xmc_model *m0, int n, xmc_model **out, xmc_error *err)
{
    *out = NULL;
    xmc_model *m = xmc_calloc(1, sizeof *m);
    if (!m)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (model)");
    m->cfg = m0->cfg;
    m->cfg.dim = n * m0->enc->cfg.hidden;
    m->cfg.bottleneck = n * m0->enc->cfg.bottleneck;
    m->cfg.ensemble = n;
    m->cfg.ensemble_member = -1;
    m->n_labels = m0->n_labels;
    m->n_train = m0->n_train;
    m->total_steps = m0->total_steps;
    m->epochs_done = m0->epochs_done;
    m->step = m0->step;
    m->max_batch = m0->max_batch;
    m->label_names = m0->label_names;
    m0->label_names = NULL;
    xmc_ova_config hc = *xmc_ova_get_config(m0->head);
    hc.dim *= n;
    int rc;
    if ((rc = xmc_encoder_create_ensemble(&m0->enc->cfg, n, &m->enc, err)) ||
        (rc = xmc_ova_create(&hc, &m->head, err)) || (rc = model_alloc_scratch(m, 0, err))) {
        xmc_model_free(m);
        return rc;
    }
    *out = m;
    return XMC_OK;
}

/* All a model holds (xmc_model_stats' four parts). */
static size_t model_bytes(const xmc_model *m)
{
    xmc_model_stats st;
    xmc_model_get_stats(m, &st);
    return st.encoder_bytes + st.head_bytes + st.optim_bytes + st.scratch_bytes;
}

static int place_member(xmc_model *m, const xmc_model *mk, int k, int n, const char *path,
                        xmc_error *err)
{
    if (!mk->head || mk->n_labels != m->n_labels)
        return XMC_ERR(err, XMC_EINVAL, path, 0,
                       "ensemble member %d: %lld labels, member 0 %lld (dense heads of one "
                       "training set expected)",
                       k, (long long)mk->n_labels, (long long)m->n_labels);
    int rc = xmc_encoder_set_member(m->enc, mk->enc, k, n, err);
    return rc ? rc : place_head(m->head, mk->head, k, n, err);
}

static int merge(const char *dir, int n, const xmc_dataset *prop_train, const xmc_dataset *test,
                 xmc_error *err)
{
    char md[4096];
    xmc_model *m = NULL, *mk = NULL;
    double t0 = xmc_now();
    size_t held = 0; /* the merged model and one member: the merge's memory */
    int rc = XMC_OK;
    for (int k = 0; k < n && !rc; k++) { /* one member in memory at a time */
        member_dir(md, sizeof md, dir, k);
        if ((rc = xmc_model_load(md, 0, &mk, err)))
            break;
        if (k == 0 && !(rc = make_merged(mk, n, &m, err)))
            held = model_bytes(m) + model_bytes(mk);
        if (!rc)
            rc = place_member(m, mk, k, n, md, err);
        xmc_model_free(mk);
        mk = NULL;
    }
    if (!rc)
        rc = xmc_model_save(m, dir, err);
    if (!rc) {
        xmc_model_stats st;
        xmc_model_get_stats(m, &st);
        xmc_log(XMC_LOG_INFO, "ensemble of %d merged into %s in %.1fs: width %d, %.1f MB of "
                "parameters; merged model and one member %.1f MB, peak RSS %.1f MB",
                n, dir, xmc_now() - t0, st.dim,
                (double)(st.encoder_bytes + st.head_bytes) / 1048576.0,
                (double)held / 1048576.0, (double)xmc_peak_rss() / 1048576.0);
        for (int k = 0; k < n; k++) {
            member_dir(md, sizeof md, dir, k);
            model_remove_dir(md);
        }
        char what[48];
        snprintf(what, sizeof what, "ensemble of %d", n);
        if (test)
            rc = model_log_test(m, prop_train, test, what, err);
        if (!rc)
            rc = model_neighbors_finish(m, prop_train, test, dir, err);
    }
    xmc_model_free(m);
    return rc;
}

int model_ensemble_train(const xmc_train_config *c, int n, const char *dir, int resume,
                         const xmc_dataset *fit, const xmc_dataset *prop_train,
                         const xmc_dataset *test, xmc_error *err)
{
    int rc = XMC_OK; /* the first checkpoint makes dir: a refused run leaves none */
    int left = c->stop_after; /* epochs this invocation may still run (stop_after > 0) */
    char md[4096], cp[4200];
    for (int k = 0; k < n && !rc; k++) {
        member_dir(md, sizeof md, dir, k);
        snprintf(cp, sizeof cp, "%s/%s", md, XMC_MODEL_CONFIG);
        xmc_model *m = NULL;
        if (resume && xmc_file_exists(cp)) {
            if ((rc = xmc_model_load(md, 1, &m, err)))
                break;
            /* As a plain resume: only settings that leave the maths alone. */
            m->cfg.stop_after = left;
            m->cfg.eval_every = c->eval_every;
            m->cfg.threads = c->threads;
            if (member_done(m) || (c->stop_after > 0 && left <= 0)) {
                int done = member_done(m);
                xmc_model_free(m);
                if (done)
                    continue;
                goto stopped;
            }
            xmc_log(XMC_LOG_INFO, "ensemble member %d/%d: resuming %s after epoch %d", k + 1,
                    n, md, m->epochs_done);
        } else {
            if (c->stop_after > 0 && left <= 0)
                goto stopped;
            xmc_train_config mc = *c;
            mc.stop_after = left;
            mc.seed = c->seed + (uint64_t)k;
            mc.ensemble = n;
            mc.ensemble_member = k;
            xmc_log(XMC_LOG_INFO, "ensemble member %d/%d: seed %llu into %s", k + 1, n,
                    (unsigned long long)mc.seed, md);
            if ((rc = xmc_model_create(&mc, fit, &m, err)))
                break;
        }
        int e0 = m->epochs_done;
        rc = model_train_ex(m, fit, prop_train, test, md, err);
        int done = member_done(m);
        left -= m->epochs_done - e0;
        xmc_model_free(m);
        if (!rc && !done)
            goto stopped;
    }
    return rc ? rc : merge(dir, n, prop_train, test, err);
stopped:
    xmc_log(XMC_LOG_INFO, "stopped in the ensemble of %d (members finish in turn); continue "
            "with --resume", n);
    return XMC_OK;
}
