/* The training loop and `xmc train` as one library call.
 *
 * Epoch e visits the labelled training rows in a permutation drawn from the
 * stream (seed, 1000 + e): it depends only on the seed and the epoch, so a
 * run resumed from an epoch checkpoint sees the same batches as an
 * uninterrupted one. Rows without any label are skipped (they carry only
 * negatives and Renee's data has none). The loss is computed every
 * loss_every steps only (it costs an extra pass over the logits in the head)
 * and reported as the mean over sampled batches of (summed loss / B).
 * Test metrics (P@1/3/5, PSP@5 with A=0.55, B=1.5) come from exact top-5 via
 * the head and the metrics module.
 *
 * Memory: the prepared training/test inputs, a permutation (n int64) and
 * the top-k buffers for the test set (n_test x 5); the step itself
 * allocates nothing.
 */
#include <string.h>

#include "internal.h"
#include "xmc/augment.h"
#include "xmc/metrics.h"

#define MB(x) ((double)(x) / 1048576.0)

static int eval_test(xmc_model *m, const xmc_enc_data *dt, const xmc_dataset *test,
                     const double *inv_prop, xmc_metrics_result *res, xmc_error *err)
{
    xmc_csr *P = NULL;
    int rc = xmc_model_predict_data(m, dt, 5, &P, err);
    if (rc)
        return rc;
    static const int ks[3] = {1, 3, 5};
    xmc_metrics_opts mo = {ks, 3, inv_prop, test->filter};
    /* Labels beyond the training label space cannot be predicted; they still
     * count as misses (the truth keeps its width). */
    rc = xmc_metrics_eval(test->Y, P, &mo, res, err);
    xmc_csr_free(P);
    return rc;
}

/* Inverse propensities (A 0.55, B 1.5) of prop_train's labels over the
 * test's label width; *out NULL when the widths disagree (P@k only). */
static int test_inv_prop(const xmc_dataset *prop_train, const xmc_dataset *test, double **out,
                         xmc_error *err)
{
    *out = NULL;
    xmc_csr Yw = *prop_train->Y;
    Yw.ncols = test->Y->ncols > Yw.ncols ? test->Y->ncols : Yw.ncols;
    if (Yw.ncols != test->Y->ncols)
        return XMC_OK;
    double *ip = xmc_malloc((size_t)(Yw.ncols > 0 ? Yw.ncols : 1) * sizeof(double));
    if (!ip)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (propensities)");
    int rc = xmc_metrics_inv_propensity(&Yw, 0.55, 1.5, ip, err);
    if (rc)
        xmc_free(ip);
    else
        *out = ip;
    return rc;
}

/* "test P@1 .. P@3 .. P@5 ..[ PSP@5 ..]" */
static void fmt_test(const xmc_metrics_result *res, char *buf, size_t n)
{
    int w = snprintf(buf, n, "test P@1 %.2f P@3 %.2f P@5 %.2f", 100 * res->p[0],
                     100 * res->p[1], 100 * res->p[2]);
    if (res->has_ps && w > 0 && (size_t)w < n)
        snprintf(buf + w, n - (size_t)w, " PSP@5 %.2f", 100 * res->psp[2]);
}

int model_log_test(xmc_model *m, const xmc_dataset *prop_train, const xmc_dataset *test,
                   const char *what, xmc_error *err)
{
    xmc_enc_data *dt = NULL;
    double *inv_prop = NULL;
    double tv = xmc_now();
    int rc = xmc_model_prepare(m, test, &dt, err);
    if (!rc)
        rc = test_inv_prop(prop_train, test, &inv_prop, err);
    xmc_metrics_result res;
    if (!rc && !(rc = eval_test(m, dt, test, inv_prop, &res, err))) {
        char line[128];
        fmt_test(&res, line, sizeof line);
        xmc_log(XMC_LOG_INFO, "%s: %s (%.1fs)", what, line, xmc_now() - tv);
    }
    xmc_enc_data_free(dt);
    xmc_free(inv_prop);
    return rc;
}

int xmc_model_train(xmc_model *m, const xmc_dataset *train, const xmc_dataset *test,
                    const char *dir, xmc_error *err)
{
    return model_train_ex(m, train, train, test, dir, err);
}

int model_train_ex(xmc_model *m, const xmc_dataset *train, const xmc_dataset *prop_train,
                   const xmc_dataset *test, const char *dir, xmc_error *err)
{
    const xmc_train_config *c = &m->cfg;
    xmc_enc_data *dtr = NULL, *dte = NULL;
    int64_t *order = NULL, *perm = NULL;
    double *inv_prop = NULL;
    int rc;
    if (!m->opt)
        return XMC_ERR(err, XMC_ESTATE, NULL, 0, "model loaded without optimizer state");
    if (train->n_labels > m->n_labels)
        return XMC_ERR(err, XMC_EINVAL, train->spec, 0,
                       "training data has %lld labels, the model %lld",
                       (long long)train->n_labels, (long long)m->n_labels);
    double t0 = xmc_now();
    if ((rc = xmc_model_prepare(m, train, &dtr, err)))
        goto done;
    if (test && (rc = xmc_model_prepare(m, test, &dte, err)))
        goto done;
    double t_prep = xmc_now() - t0;
    if ((rc = model_dist_reserve(m, err))) /* sharded step scratch, sized after prepare */
        goto done;
    order = xmc_malloc((size_t)(train->n > 0 ? train->n : 1) * sizeof(int64_t));
    perm = xmc_malloc((size_t)(train->n > 0 ? train->n : 1) * sizeof(int64_t));
    if (!order || !perm) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (permutation)");
        goto done;
    }
    int64_t n = 0;
    for (int64_t i = 0; i < train->n; i++)
        if (train->Y->indptr[i + 1] > train->Y->indptr[i])
            order[n++] = i;
    if (n == 0) {
        rc = XMC_ERR(err, XMC_EINVAL, train->spec, 0, "no training row has a label");
        goto done;
    }
    if ((rc = model_aux_setup(m, train, err)))
        goto done;
    /* Propensities from the (original, un-augmented) training labels. */
    if (test && (rc = test_inv_prop(prop_train, test, &inv_prop, err)))
        goto done;

    xmc_model_stats st;
    xmc_model_get_stats(m, &st);
    size_t data_b = xmc_dataset_bytes(train) + (test ? xmc_dataset_bytes(test) : 0) +
                    xmc_enc_data_bytes(dtr) + xmc_enc_data_bytes(dte);
    char dims[96];
    if (c->bottleneck)
        snprintf(dims, sizeof dims, "%d -> bottleneck %d", c->dim, c->bottleneck);
    else
        snprintf(dims, sizeof dims, "%d", c->dim);
    if (c->intermediate)
        snprintf(dims + strlen(dims), sizeof dims - strlen(dims), " -> intermediate %d%s",
                 c->intermediate, c->intermediate_relu ? " (relu)" : "");
    if (m->ffi)
        snprintf(dims + strlen(dims), sizeof dims - strlen(dims), " -> sparse head F=%d",
                 xmc_ffi_get_config(m->ffi)->fan_in);
    xmc_log(XMC_LOG_INFO,
            "model: %s encoder %lld inputs -> %s, %lld labels; %lld train rows "
            "(%lld labelled), batch %d, %lld steps planned; inputs prepared in %.2fs",
            c->encoder, (long long)st.n_inputs, dims, (long long)m->n_labels,
            (long long)train->n, (long long)n, c->batch, (long long)m->total_steps, t_prep);
    xmc_log(XMC_LOG_INFO,
            "memory: parameters %.1f MB (encoder %.1f, classifier %.1f), optimizer %.1f MB, "
            "activations/scratch %.1f MB, data %.1f MB; total %.1f MB",
            MB(st.encoder_bytes + st.head_bytes), MB(st.encoder_bytes), MB(st.head_bytes),
            MB(st.optim_bytes), MB(st.scratch_bytes), MB(data_b),
            MB(st.encoder_bytes + st.head_bytes + st.optim_bytes + st.scratch_bytes + data_b));

    int64_t saved_step = m->step;
    int ran = 0;
    for (int e = m->epochs_done; e < c->epochs; e++) {
        if (c->stop_after > 0 && ran >= c->stop_after)
            break;
        if (c->max_steps > 0 && m->step >= c->max_steps)
            break;
        memcpy(perm, order, (size_t)n * sizeof(int64_t));
        xmc_rng r;
        xmc_rng_seed(&r, c->seed, 1000 + (uint64_t)e);
        xmc_rng_shuffle_i64(&r, perm, n);
        char what[48], extra[64] = "";
        snprintf(what, sizeof what, "epoch %d/%d", e + 1, c->epochs);
        xmc_progress pg;
        xmc_progress_start(&pg, what, "ex", n);
        double te = xmc_now(), loss_sum = 0;
        int loss_n = 0, partial = 0;
        int64_t seen = 0;
        for (int64_t s0 = 0; s0 < n; s0 += c->batch) {
            if (c->max_steps > 0 && m->step >= c->max_steps) {
                partial = 1;
                break;
            }
            int B = (int)(n - s0 < c->batch ? n - s0 : c->batch);
            double loss = 0;
            int want_loss = (m->step + 1) % c->loss_every == 0 || s0 == 0;
            if ((rc = xmc_model_step(m, dtr, train->Y, perm + s0, B, want_loss ? &loss : NULL,
                                     err)))
                goto done;
            if (want_loss) {
                loss_sum += loss / B;
                loss_n++;
                snprintf(extra, sizeof extra, "loss %.4f", loss / B);
            }
            seen = s0 + B;
            xmc_progress_update(&pg, seen, extra);
        }
        double dt = xmc_now() - te;
        snprintf(extra, sizeof extra, "loss %.4f", loss_n ? loss_sum / loss_n : 0.0);
        xmc_progress_finish(&pg, extra);
        if (partial) {
            xmc_log(XMC_LOG_INFO, "stopped after %lld steps (max_steps): %lld examples in %.1fs "
                    "(%.1f ex/s), sampled loss %.4f", (long long)m->step, (long long)seen, dt,
                    (double)seen / (dt > 0 ? dt : 1e-9), loss_n ? loss_sum / loss_n : 0.0);
            break;
        }
        m->epochs_done = e + 1;
        ran++;
        int last = m->epochs_done == c->epochs;
        if (test && (last || (c->eval_every > 0 && m->epochs_done % c->eval_every == 0))) {
            double tv = xmc_now();
            xmc_metrics_result res;
            if ((rc = eval_test(m, dte, test, inv_prop, &res, err)))
                goto done;
            char line[128];
            fmt_test(&res, line, sizeof line);
            xmc_log(XMC_LOG_INFO, "epoch %d/%d: loss %.4f, %.1fs (%.0f ex/s); %s (%.1fs)",
                    m->epochs_done, c->epochs, loss_n ? loss_sum / loss_n : 0.0, dt,
                    (double)n / (dt > 0 ? dt : 1e-9), line, xmc_now() - tv);
        } else {
            xmc_log(XMC_LOG_INFO, "epoch %d/%d: loss %.4f, %.1fs (%.0f ex/s)", m->epochs_done,
                    c->epochs, loss_n ? loss_sum / loss_n : 0.0, dt,
                    (double)n / (dt > 0 ? dt : 1e-9));
        }
        if (m->ffi) {
            xmc_log(XMC_LOG_INFO,
                    "epoch %d/%d: sparse head F=%d: %lld weights rewired this epoch, %lld "
                    "rewiring rounds so far, topology %s", m->epochs_done, c->epochs,
                    xmc_ffi_get_config(m->ffi)->fan_in, (long long)m->rewired,
                    (long long)xmc_ffi_rewire_rounds(m->ffi),
                    xmc_ffi_frozen(m->ffi) ? "frozen" : "rewiring");
            m->rewired = 0;
        }
        if (m->meta && (double)m->epochs_done >= model_aux_cutoff(c)) {
            model_aux_drop(m);
            xmc_log(XMC_LOG_INFO, "epoch %d/%d: meta-classifier dropped (cutoff epoch %.2f)",
                    m->epochs_done, c->epochs, model_aux_cutoff(c));
        }
        if (dir) {
            if ((rc = xmc_model_save(m, dir, err)))
                goto done;
            saved_step = m->step;
        }
    }
    if (dir && m->step != saved_step && (rc = xmc_model_save(m, dir, err)))
        goto done;
    xmc_log(XMC_LOG_INFO, "trained %lld steps in %.1fs; peak RSS %.1f MB", (long long)m->step,
            xmc_now() - t0, MB(xmc_peak_rss()));
    rc = model_dist_report(m, err);
done:
    xmc_enc_data_free(dtr);
    xmc_enc_data_free(dte);
    xmc_free(order);
    xmc_free(perm);
    xmc_free(inv_prop);
    return rc;
}

/* Gandalf (augment.h): the set D ∪ Z a recipe trains on, rebuilt in memory
 * from c->augment on every run (so --resume sees the same set). Label
 * features beside a DIR/PREFIX spec (Y_Xf.txt) feed Z's feature rows.
 * text_only: the recipe encodes only texts (unidec/depsl), so Z gets the
 * label texts and no feature rows (X is hidden, not copied; the caller
 * refuses '+pifa'). On success *aug is the new set (free with
 * xmc_dataset_free); NULL on failure. */
static int train_augment(const xmc_train_config *c, const xmc_augment_opts *opts,
                         const xmc_dataset *train, int text_only, xmc_dataset **aug,
                         xmc_error *err)
{
    xmc_augment_opts ao = *opts;
    xmc_augment_stats as;
    xmc_csr *label_feat = NULL;
    xmc_dataset view = *train;
    int rc;
    *aug = NULL;
    if (text_only) {
        view.X = NULL;
        view.n_features = 0;
    } else if ((rc = xmc_augment_label_features_load(c->train_spec, &label_feat, err))) {
        return rc;
    }
    /* The label points need an input: a text (label text or name) or a
     * feature row. Say so in train's own terms before augment.c does (its
     * message names `xmc augment` flags). */
    int has_text = view.texts && (view.label_texts || view.label_names);
    int has_feat = view.X && (label_feat || ao.pifa);
    if (!has_text && !has_feat) {
        if (text_only)
            return XMC_ERR(err, XMC_EINVAL, c->train_spec, 0,
                           "--augment %s: the training set has no label texts or label names "
                           "(recipe %s needs DIR/Y.txt beside a DIR/PREFIX spec, or a "
                           "TEXTS+LABELS spec)", c->augment, c->recipe);
        xmc_csr_free(label_feat);
        return XMC_ERR(err, XMC_EINVAL, c->train_spec, 0,
                       "--augment %s: the training set has no label texts, label names or "
                       "label features (expected DIR/Y.txt or DIR/Y_Xf.txt beside a "
                       "DIR/PREFIX spec, or add '+pifa' for a feature set)", c->augment);
    }
    ao.label_features = label_feat;
    /* Its error already names the spec and what is missing. The label
     * features are copied into *aug. */
    rc = xmc_augment_ex(&view, &ao, aug, &as, err);
    xmc_csr_free(label_feat);
    if (rc)
        return rc;
    xmc_log(XMC_LOG_INFO,
            "augment %s: %lld rows + %lld label points -> %lld rows, %lld targets "
            "(%lld unseen labels) in %.2fs", c->augment, (long long)as.rows_in,
            (long long)train->n_labels, (long long)as.rows_out, (long long)as.kept,
            (long long)as.unseen, as.seconds);
    return XMC_OK;
}

/* `xmc train --recipe unidec|depsl`: the common settings onto
 * xmc_unidec_config (model.h), train, save the model directory, then test
 * metrics with the propensities of the training labels. */
/* --resume of a unidec / depsl run: the config and data specs come from
 * the checkpoint (its note: "recipe\ntrain\ntest\naugment"), stop_after and threads
 * from the command line. */
static int unidec_resume_config(const char *ckpt, const xmc_train_config *cli,
                                xmc_train_config *c, xmc_unidec_config *uc, xmc_error *err)
{
    char *note = NULL;
    int done = 0, rc = xmc_unidec_ckpt_info(ckpt, uc, &done, &note, err);
    if (rc)
        return rc;
    *c = *cli;
    char *a = note, *b = strchr(a, '\n'), *t = b ? strchr(b + 1, '\n') : NULL;
    char *g = t ? strchr(t + 1, '\n') : NULL;
    if (!b || !t || !g || (size_t)(b - a) >= sizeof c->recipe ||
        (size_t)(t - b - 1) >= sizeof c->train_spec ||
        (size_t)(g - t - 1) >= sizeof c->test_spec || strlen(g + 1) >= sizeof c->augment) {
        xmc_free(note);
        return XMC_ERR(err, XMC_ECORRUPT, ckpt, 0,
                       "checkpoint note is not recipe/train/test/augment");
    }
    *b = *t = *g = '\0';
    snprintf(c->recipe, sizeof c->recipe, "%s", a);
    snprintf(c->train_spec, sizeof c->train_spec, "%s", b + 1);
    snprintf(c->test_spec, sizeof c->test_spec, "%s", t + 1);
    snprintf(c->augment, sizeof c->augment, "%s", g + 1);
    c->epochs = uc->epochs;
    xmc_free(note);
    xmc_log(XMC_LOG_INFO, "resuming %s run after epoch %d of %d (%s)", c->recipe, done,
            uc->epochs, ckpt);
    return XMC_OK;
}

static int run_unidec(const xmc_train_config *cli, const char *dir, int resume, xmc_error *err)
{
    xmc_unidec_config uc;
    xmc_train_config cr;
    const xmc_train_config *c = cli;
    xmc_unidec *u = NULL;
    xmc_dataset *train = NULL, *test = NULL, *aug = NULL;
    xmc_csr *P = NULL;
    double *inv_prop = NULL;
    char ckpt[4096] = "", note[4 * 4096];
    xmc_augment_opts ao;
    int rc;
    if (dir && snprintf(ckpt, sizeof ckpt, "%s/%s", dir, XMC_UNIDEC_CKPT_FILE) >=
                   (int)sizeof ckpt)
        return XMC_ERR(err, XMC_EINVAL, dir, 0, "model directory path too long");
    if (resume) {
        if (!dir || !xmc_file_exists(ckpt)) {
            char rec[16];
            if (dir && xmc_model_dir_recipe(dir, rec, sizeof rec, NULL) == XMC_OK &&
                xmc_recipe_is_unidec(rec)) {
                xmc_log(XMC_LOG_INFO, "%s: all epochs done already (no %s)", dir,
                        XMC_UNIDEC_CKPT_FILE);
                return XMC_OK;
            }
            return XMC_ERR(err, XMC_EIO, ckpt, 0, "no unidec checkpoint to resume from");
        }
        if ((rc = unidec_resume_config(ckpt, cli, &cr, &uc, err)))
            return rc;
        c = &cr;
    }
    int depsl = !strcmp(c->recipe, "depsl");
    if (c->encoder[0] && strcmp(c->encoder, "bag") && strcmp(c->encoder, "bert"))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "recipe %s: the encoder must be bag or bert (%s encodes point and label "
                       "texts)", c->recipe, c->recipe);
    if (!c->train_spec[0])
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "no training data (--train)");
    xmc_augment_opts_default(&ao);
    if (c->augment[0] && (rc = xmc_augment_parse(c->augment, &ao, err)))
        return rc;
    if (ao.pifa)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "--augment %s: recipe %s trains on point and label texts only, so "
                       "'+pifa' label features would not be used (drop '+pifa')",
                       c->augment, c->recipe);
    snprintf(note, sizeof note, "%s\n%s\n%s\n%s", c->recipe, c->train_spec, c->test_spec,
             c->augment);
    if (resume)
        goto configured;
    xmc_unidec_config_default(&uc, depsl);
    uc.epochs = c->epochs;
    uc.batch = c->batch;
    uc.seed = c->seed;
    if (c->dim > 0)
        uc.hidden = c->dim;
    if (c->bottleneck > 0)
        uc.dim = c->bottleneck;
    uc.intermediate = c->intermediate;
    uc.intermediate_relu = c->intermediate_relu;
    if (c->buckets > 0)
        uc.buckets = c->buckets;
    if (c->lr2 > 0)
        uc.lr_enc = c->lr2;
    if (!strcmp(c->encoder, "bert")) {
        snprintf(uc.encoder, sizeof uc.encoder, "bert");
        memcpy(uc.encoder_extra, c->extra, sizeof uc.encoder_extra < sizeof c->extra
                                               ? sizeof uc.encoder_extra : sizeof c->extra);
        uc.encoder_extra[sizeof uc.encoder_extra - 1] = '\0';
        if (!(c->lr2 > 0))
            uc.lr_enc = XMC_TRAIN_DEFAULT_LR2_BERT;
    }
configured:;
    double t0 = xmc_now();
    xmc_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.need_texts = 1;
    if ((rc = xmc_dataset_load(c->train_spec, &lo, &train, err)))
        goto done;
    if (c->test_spec[0]) {
        lo.label_vocab = train->label_names;
        if ((rc = xmc_dataset_load(c->test_spec, &lo, &test, err)))
            goto done;
    }
    xmc_log(XMC_LOG_INFO, "data: %lld train rows%s in %.1fs; recipe %s", (long long)train->n,
            test ? " + test split" : "", xmc_now() - t0, c->recipe);
    /* Gandalf: the label points join the queries; their soft targets weight
     * the positives of the PSL losses (psl_loss.c). Propensities, the saved
     * label names and the test stay those of the original set. */
    if (c->augment[0] && (rc = train_augment(c, &ao, train, 1, &aug, err)))
        goto done;
    /* a checkpoint after every epoch; removed once the run is complete */
    xmc_unidec_ckpt ck = {dir ? ckpt : NULL, resume, c->stop_after, note};
    if (dir && (rc = xmc_mkdir_p(dir, err)))
        goto done;
    if ((rc = xmc_unidec_train_ckpt(&uc, aug ? aug : train, &ck, &u, err)))
        goto done;
    if (dir && (rc = model_unidec_save(dir, c, &uc, u, train, err)))
        goto done;
    xmc_unidec_stats sd;
    xmc_unidec_get_stats(u, &sd);
    if (dir && sd.epochs_done >= uc.epochs)
        remove(ckpt);
    else if (dir)
        xmc_log(XMC_LOG_INFO, "stopped after epoch %d of %d; continue with --resume",
                sd.epochs_done, uc.epochs);
    if (test) {
        double tv = xmc_now();
        int which = depsl ? XMC_UNIDEC_SCORE_DE : XMC_UNIDEC_SCORE_BOTH;
        if ((rc = xmc_unidec_predict(u, test, NULL, 5, which, 0, &P, err)))
            goto done;
        xmc_csr Yw = *train->Y;
        if (Yw.ncols == test->Y->ncols) {
            inv_prop = xmc_malloc((size_t)(Yw.ncols > 0 ? Yw.ncols : 1) * sizeof(double));
            if (!inv_prop) {
                rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (propensities)");
                goto done;
            }
            if ((rc = xmc_metrics_inv_propensity(&Yw, 0.55, 1.5, inv_prop, err)))
                goto done;
        }
        static const int ks[3] = {1, 3, 5};
        xmc_metrics_opts mo = {ks, 3, inv_prop, test->filter};
        xmc_metrics_result res;
        if ((rc = xmc_metrics_eval(test->Y, P, &mo, &res, err)))
            goto done;
        char ps[48] = "";
        if (res.has_ps)
            snprintf(ps, sizeof ps, " PSP@5 %.2f", 100 * res.psp[2]);
        xmc_log(XMC_LOG_INFO, "%s: test P@1 %.2f P@3 %.2f P@5 %.2f%s (%.1fs)", c->recipe,
                100 * res.p[0], 100 * res.p[1], 100 * res.p[2], ps, xmc_now() - tv);
    }
    xmc_unidec_stats st;
    xmc_unidec_get_stats(u, &st);
    xmc_log(XMC_LOG_INFO,
            "trained %lld steps in %.1fs (steps %.1fs, mining %.1fs, checkpoints %.1fs); peak "
            "RSS %.1f MB",
            (long long)st.steps, xmc_now() - t0, st.train_s, st.mine_s, st.ckpt_s,
            MB(xmc_peak_rss()));
    rc = XMC_OK;
done:
    xmc_unidec_free(u);
    xmc_dataset_free(aug);
    xmc_dataset_free(train);
    xmc_dataset_free(test);
    xmc_csr_free(P);
    xmc_free(inv_prop);
    return rc;
}

int xmc_train_run(const xmc_train_config *cfg, const char *dir, int resume, xmc_error *err)
{
    return xmc_train_run_dist(cfg, dir, resume, NULL, err);
}

int xmc_train_run_dist(const xmc_train_config *cfg, const char *dir, int resume, xmc_dist *dist,
                       xmc_error *err)
{
    if (xmc_recipe_is_unidec(cfg->recipe) && !resume) {
        if (xmc_dist_active(dist))
            return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                           "recipe %s runs on one process (the sharded step covers renee)",
                           cfg->recipe);
        if (cfg->threads > 0)
            xmc_set_threads(cfg->threads);
        return run_unidec(cfg, dir, 0, err);
    }
    if (!resume && strcmp(cfg->recipe, "renee") != 0 &&
        strcmp(cfg->recipe, "spartex") != 0) /* before loading any data */
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "unknown recipe '%s' (expected renee, spartex, unidec or depsl)",
                       cfg->recipe);
    if (!resume && model_is_spartex(cfg) &&
        (cfg->fan_in < 1 || cfg->rewire_interval < 0 || cfg->rewire_end < 0 ||
         cfg->rewire_end > 1 || !(cfg->rewire_threshold >= 0) || !(cfg->rewire_fraction >= 0) ||
         cfg->rewire_fraction >= 1 || cfg->aux_clusters < 0 || !(cfg->aux_scale >= 0) ||
         cfg->aux_scale >= 1))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "recipe spartex: expected --fan-in >= 1, --rewire-interval >= 0, "
                       "--rewire-end in [0, 1], --rewire-threshold >= 0, --rewire-fraction "
                       "in [0, 1), --aux-clusters >= 0, --aux-scale in [0, 1)");
    if (!resume && (cfg->ensemble < 0 || cfg->ensemble > XMC_TRAIN_MAX_ENSEMBLE))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "--ensemble %d: expected 1..%d (0 = auto)",
                       cfg->ensemble, XMC_TRAIN_MAX_ENSEMBLE);
    xmc_model *m = NULL, *ens0 = NULL; /* ens0: member 0 of an ensemble being resumed */
    xmc_model *fin = NULL; /* a complete model that still needs its kNN memory */
    xmc_train_config ec;
    int n_ens = 0;
    xmc_dataset *train = NULL, *test = NULL, *aug = NULL;
    xmc_augment_opts ao;
    int rc;
    xmc_augment_opts_default(&ao);
    /* Validate the recipe string before loading anything. */
    if (!resume && cfg->augment[0] && (rc = xmc_augment_parse(cfg->augment, &ao, err)))
        return rc;
    if (cfg->threads > 0)
        xmc_set_threads(cfg->threads);
    if (resume) {
        char rec[16];
        char ck[4096];
        snprintf(ck, sizeof ck, "%s/%s", dir, XMC_UNIDEC_CKPT_FILE);
        if (xmc_file_exists(ck) || (xmc_model_dir_recipe(dir, rec, sizeof rec, NULL) == XMC_OK &&
                                    xmc_recipe_is_unidec(rec))) {
            if (xmc_dist_active(dist))
                return XMC_ERR(err, XMC_EUNSUPPORTED, dir, 0,
                               "recipe unidec/depsl runs on one process (the sharded step "
                               "covers renee)");
            return run_unidec(cfg, dir, 1, err);
        }
        int st = model_ensemble_state(dir, &n_ens);
        if (st == 2) {
            if ((rc = xmc_model_load(dir, 0, &fin, err)))
                return rc;
            if (fin->cfg.knn <= 0 || fin->nbr) {
                xmc_log(XMC_LOG_INFO, "%s: an ensemble of %d, merged: all epochs done already",
                        dir, n_ens);
                xmc_model_free(fin);
                return XMC_OK;
            }
            xmc_log(XMC_LOG_INFO, "%s: an ensemble of %d, merged; building its kNN memory", dir,
                    n_ens);
        }
        if (st == 1) {
            char md[4096];
            snprintf(md, sizeof md, "%s/member-0", dir);
            if ((rc = xmc_model_load(md, 0, &ens0, err)))
                return rc;
            /* Only settings that do not change the maths may differ on resume. */
            ec = ens0->cfg;
            ec.stop_after = cfg->stop_after;
            ec.eval_every = cfg->eval_every;
            ec.threads = cfg->threads;
            xmc_log(XMC_LOG_INFO, "resuming the ensemble of %d in %s", n_ens, dir);
        } else {
            if ((rc = xmc_model_load_dist(dir, 1, dist, &m, err)))
                return rc;
            m->cfg.stop_after = cfg->stop_after;
            m->cfg.eval_every = cfg->eval_every;
            m->cfg.threads = cfg->threads;
            if (m->epochs_done >= m->cfg.epochs && (m->cfg.knn <= 0 || m->nbr)) {
                xmc_log(XMC_LOG_INFO, "%s: all %d epochs done already", dir, m->cfg.epochs);
                xmc_model_free(m);
                return XMC_OK;
            }
            if (m->epochs_done >= m->cfg.epochs) {
                fin = m;
                m = NULL;
                xmc_log(XMC_LOG_INFO, "%s: all %d epochs done; building its kNN memory", dir,
                        fin->cfg.epochs);
            } else {
                xmc_log(XMC_LOG_INFO, "resuming %s after epoch %d (step %lld)", dir,
                        m->epochs_done, (long long)m->step);
            }
        }
    }
    const xmc_train_config *c = m ? &m->cfg : fin ? &fin->cfg : ens0 ? &ec : cfg;
    const xmc_model *vocab = m ? m : fin ? fin : ens0; /* a resumed run's label ids */
    if (resume && c->augment[0] && (rc = xmc_augment_parse(c->augment, &ao, err)))
        goto done;
    if (!c->train_spec[0]) {
        rc = XMC_ERR(err, XMC_EINVAL, NULL, 0, "no training data (--train)");
        goto done;
    }
    double t0 = xmc_now();
    xmc_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.label_vocab = vocab ? xmc_model_label_names(vocab) : NULL;
    if ((rc = xmc_dataset_load(c->train_spec, &lo, &train, err)))
        goto done;
    if (c->test_spec[0]) {
        /* The test split maps label names with the TRAINING vocabulary. */
        lo.label_vocab = vocab ? xmc_model_label_names(vocab) : train->label_names;
        if ((rc = xmc_dataset_load(c->test_spec, &lo, &test, err)))
            goto done;
        if (test->n_unknown_labels > 0)
            xmc_log(XMC_LOG_WARN, "%s: %lld label names not in the training vocabulary (ignored)",
                    c->test_spec, (long long)test->n_unknown_labels);
    }
    xmc_log(XMC_LOG_INFO, "data: %lld train rows%s in %.1fs", (long long)train->n,
            test ? " + test split" : "", xmc_now() - t0);
    if (c->augment[0] && (rc = train_augment(c, &ao, train, 0, &aug, err)))
        goto done;
    const xmc_dataset *fit = aug ? aug : train;
    if (fin) {
        rc = xmc_dist_active(dist)
                 ? XMC_ERR(err, XMC_EUNSUPPORTED, dir, 0,
                           "the kNN memory is built on one process: run this --resume without "
                           "mpirun")
                 : model_neighbors_finish(fin, train, test, dir, err);
        goto done;
    }
    if (!m) {
        if (!ens0)
            n_ens = model_ensemble_members(cfg, fit, xmc_dist_active(dist), dir);
        if ((rc = model_ensemble_check(c, n_ens, xmc_dist_active(dist), dir, err)))
            goto done;
        if (n_ens > 1) {
            rc = model_ensemble_train(c, n_ens, dir, ens0 != NULL, fit, train, test, err);
            goto done;
        }
        xmc_train_config one = *cfg;
        one.ensemble = 1;
        if ((rc = xmc_model_create_dist(&one, fit, dist, &m, err)))
            goto done;
    }
    rc = model_train_ex(m, fit, train, test, dir, err);
    if (!rc)
        rc = model_neighbors_finish(m, train, test, dir, err);
done:
    xmc_model_free(m);
    xmc_model_free(fin);
    xmc_model_free(ens0);
    xmc_dataset_free(aug);
    xmc_dataset_free(train);
    xmc_dataset_free(test);
    return rc;
}
