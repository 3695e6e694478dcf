/* Encoders: finite-difference checks of every backward (sparse 1/2 layers,
 * ReLU/GELU, bottleneck, intermediate layer, dropout; bag), touched-row
 * bookkeeping, the n-gram hashing, the bag's idf weights, save/load round
 * trip and corruption (and version-2 files), no allocation in a step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/data.h"
#include "xmc/encoder.h"

/* A random sparse dataset: n rows over F features, up to k nnz per row. */
static xmc_dataset *make_sparse_ds(int64_t n, int64_t F, int k, uint64_t seed)
{
    xmc_rng r;
    xmc_rng_seed(&r, seed, 0);
    xmc_dataset *ds = xmc_calloc(1, sizeof *ds);
    assert_non_null(ds);
    xmc_error e = {0};
    assert_int_equal(xmc_csr_create(&ds->X, n, F, n * k, 1, &e), XMC_OK);
    int64_t q = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t f = (int64_t)xmc_rng_below(&r, 3);
        int cnt = 1 + (int)xmc_rng_below(&r, (uint64_t)k);
        for (int j = 0; j < cnt && f < F; j++) {
            ds->X->indices[q] = (int32_t)f;
            ds->X->values[q] = 0.2f + (float)xmc_rng_uniform(&r);
            q++;
            f += 1 + (int64_t)xmc_rng_below(&r, (uint64_t)(F / k + 1));
        }
        ds->X->indptr[i + 1] = q;
    }
    ds->n = n;
    ds->n_features = F;
    return ds;
}

static xmc_texts *make_texts(const char *const *lines, int64_t n)
{
    xmc_texts *t = xmc_calloc(1, sizeof *t);
    assert_non_null(t);
    size_t total = 0;
    for (int64_t i = 0; i < n; i++)
        total += strlen(lines[i]) + 1;
    t->n = n;
    t->offsets = xmc_malloc((size_t)(n + 1) * sizeof(int64_t));
    t->data = xmc_malloc(total + 1);
    assert_non_null(t->offsets);
    assert_non_null(t->data);
    size_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        t->offsets[i] = (int64_t)off;
        size_t l = strlen(lines[i]);
        memcpy(t->data + off, lines[i], l + 1);
        off += l + 1;
    }
    t->offsets[n] = (int64_t)off;
    return t;
}

/* L = sum R .* E for fixed R; forward in training mode with the dropout
 * stream rewound, so every evaluation sees the same mask. */
static double loss_of(xmc_encoder *enc, const xmc_enc_data *d, const int64_t *rows, int B,
                      const float *R, float *E, uint64_t step0)
{
    xmc_error err = {0};
    enc->step = step0;
    assert_int_equal(xmc_encoder_forward(enc, d, rows, B, 1, E, &err), XMC_OK);
    double L = 0;
    for (int i = 0; i < B * enc->dim; i++)
        L += (double)R[i] * E[i];
    return L;
}

static int close_enough(double num, double ana, double atol, double rtol)
{
    return fabs(num - ana) <= atol + rtol * fabs(num);
}

/* Central differences on up to `per` entries of every dense tensor and of
 * every touched table row; returns the fraction of entries that disagree. */
static double fd_check(xmc_encoder *enc, const xmc_enc_data *d, const int64_t *rows, int B,
                       double eps, double atol, double rtol)
{
    xmc_error err = {0};
    const int dim = enc->dim;
    float *R = malloc((size_t)B * dim * sizeof(float));
    float *E = malloc((size_t)B * dim * sizeof(float));
    float *dE = malloc((size_t)B * dim * sizeof(float));
    xmc_rng r;
    xmc_rng_seed(&r, 7, 0);
    for (int i = 0; i < B * dim; i++)
        R[i] = xmc_rng_normal(&r);
    uint64_t step0 = enc->step;
    loss_of(enc, d, rows, B, R, E, step0);
    memcpy(dE, R, (size_t)B * dim * sizeof(float));
    xmc_encoder_zero_grad(enc);
    assert_int_equal(xmc_encoder_backward(enc, dE, B, &err), XMC_OK);
    /* Copy analytic grads: later forwards leave them, but be explicit. */
    float *g = malloc((size_t)enc->n_params * sizeof(float));
    memcpy(g, enc->grads, (size_t)enc->n_params * sizeof(float));
    int bad = 0, checked = 0;
    const int per = 24;
    for (int t = 0; t < enc->n_tensors; t++) {
        const xmc_tensor_info *ti = &enc->tensors[t];
        int64_t n = ti->rows * ti->cols;
        for (int s = 0; s < per && s < n; s++) {
            int64_t idx = ti->offset + (int64_t)xmc_rng_below(&r, (uint64_t)n);
            float keep = enc->params[idx];
            enc->params[idx] = keep + (float)eps;
            double lp = loss_of(enc, d, rows, B, R, E, step0);
            enc->params[idx] = keep - (float)eps;
            double lm = loss_of(enc, d, rows, B, R, E, step0);
            enc->params[idx] = keep;
            double num = (lp - lm) / (2 * eps);
            checked++;
            if (!close_enough(num, g[idx], atol, rtol)) {
                bad++;
                if (bad < 5)
                    print_message("  %s[%lld]: numeric %.6g analytic %.6g\n", ti->name,
                                  (long long)(idx - ti->offset), num, (double)g[idx]);
            }
        }
    }
    for (int t = 0; t < enc->n_tables; t++) {
        xmc_sparse_table *tb = &enc->tables[t];
        int64_t nt = tb->n_touched;
        assert_true(nt > 0);
        float *tg = malloc((size_t)nt * (size_t)tb->cols * sizeof(float));
        int32_t *touched = malloc((size_t)nt * sizeof(int32_t));
        memcpy(tg, tb->grad, (size_t)nt * (size_t)tb->cols * sizeof(float));
        memcpy(touched, tb->touched, (size_t)nt * sizeof(int32_t));
        for (int s = 0; s < per; s++) {
            int64_t q = (int64_t)xmc_rng_below(&r, (uint64_t)nt);
            int64_t c = (int64_t)xmc_rng_below(&r, (uint64_t)tb->cols);
            float *w = tb->w + (size_t)touched[q] * (size_t)tb->cols + c;
            float keep = *w;
            *w = keep + (float)eps;
            double lp = loss_of(enc, d, rows, B, R, E, step0);
            *w = keep - (float)eps;
            double lm = loss_of(enc, d, rows, B, R, E, step0);
            *w = keep;
            double num = (lp - lm) / (2 * eps);
            double ana = tg[q * tb->cols + c];
            checked++;
            if (!close_enough(num, ana, atol, rtol)) {
                bad++;
                if (bad < 5)
                    print_message("  %s[%d,%lld]: numeric %.6g analytic %.6g\n", tb->name,
                                  touched[q], (long long)c, num, ana);
            }
        }
        /* An untouched row has zero gradient: perturbing it changes nothing. */
        for (int32_t f = 0; f < tb->rows; f++) {
            int found = 0;
            for (int64_t q = 0; q < nt; q++)
                found |= touched[q] == f;
            if (found)
                continue;
            float keep = tb->w[(size_t)f * tb->cols];
            tb->w[(size_t)f * tb->cols] = keep + 1.0f;
            double l1 = loss_of(enc, d, rows, B, R, E, step0);
            tb->w[(size_t)f * tb->cols] = keep;
            double l0 = loss_of(enc, d, rows, B, R, E, step0);
            assert_true(l1 == l0);
            break;
        }
        free(tg);
        free(touched);
    }
    free(g);
    free(R);
    free(E);
    free(dE);
    return checked ? (double)bad / checked : 1.0;
}

/* xmc_encoder_load on the file at p; returns its code. */
static int load_file(const char *p, xmc_encoder **out, xmc_error *err)
{
    FILE *f = fopen(p, "rb");
    int rc = xmc_encoder_load(f, p, out, err);
    fclose(f);
    return rc;
}

/* Save enc to p and load it back (both must succeed); the caller frees the
 * copy with xmc_encoder_free. */
static xmc_encoder *save_load(const xmc_encoder *enc, const char *p)
{
    xmc_error err = {0};
    FILE *f = fopen(p, "wb");
    assert_int_equal(xmc_encoder_save(enc, f, p, &err), XMC_OK);
    fclose(f);
    xmc_encoder *out = NULL;
    assert_int_equal(load_file(p, &out, &err), XMC_OK);
    return out;
}

static float input_dropout; /* set by test_input_dropout_fd */
static int inter_dim, inter_relu = 1; /* set by test_intermediate_fd */

static void run_sparse_fd(int layers, xmc_act act, int bottleneck, float dropout, double max_bad,
                          double eps)
{
    xmc_error err = {0};
    xmc_dataset *ds = make_sparse_ds(12, 40, 6, 3);
    xmc_encoder_config c;
    xmc_encoder_config_default(&c, "sparse");
    c.n_inputs = 40;
    c.hidden = 16;
    c.layers = layers;
    c.act = act;
    c.bottleneck = bottleneck;
    c.dropout = dropout;
    c.input_dropout = input_dropout;
    c.intermediate = inter_dim;
    c.intermediate_relu = inter_relu;
    c.max_batch = 8;
    c.seed = 5;
    xmc_encoder *enc = NULL;
    assert_int_equal(xmc_encoder_create(&c, &enc, &err), XMC_OK);
    assert_int_equal(enc->dim, inter_dim ? inter_dim : bottleneck ? bottleneck : 16);
    /* Non-zero biases so they matter in the check. */
    for (int t = 0; t < enc->n_tensors; t++)
        if (enc->tensors[t].no_decay)
            for (int64_t i = 0; i < enc->tensors[t].cols; i++)
                xmc_encoder_dense(enc, t)[i] = 0.05f * (float)((i % 5) - 2);
    xmc_enc_data *d = NULL;
    assert_int_equal(xmc_encoder_prepare(enc, ds, &d, &err), XMC_OK);
    /* Rows are unit-norm after prepare. */
    for (int64_t i = 0; i < d->n; i++) {
        double s = 0;
        for (int64_t p = d->ids->indptr[i]; p < d->ids->indptr[i + 1]; p++)
            s += (double)d->ids->values[p] * d->ids->values[p];
        assert_true(fabs(s - 1.0) < 1e-5);
    }
    int64_t rows[6] = {3, 0, 7, 11, 3, 5}; /* a repeat on purpose */
    double frac = fd_check(enc, d, rows, 6, eps, 2e-3, 2e-2);
    print_message("sparse layers=%d act=%d b=%d int=%d%s p=%.1f: %.1f%% of FD checks off\n",
                  layers, (int)act, bottleneck, inter_dim, inter_relu ? "+relu" : "",
                  (double)dropout, 100 * frac);
    assert_true(frac <= max_bad);
    xmc_enc_data_free(d);
    xmc_encoder_free(enc);
    xmc_dataset_free(ds);
}

static void test_sparse_fd_gelu(void **state)
{
    (void)state;
    run_sparse_fd(2, XMC_ACT_GELU, 0, 0.0f, 0.0, 1e-2);
    run_sparse_fd(1, XMC_ACT_GELU, 5, 0.3f, 0.0, 1e-2);
    run_sparse_fd(2, XMC_ACT_GELU, 4, 0.25f, 0.0, 1e-2);
}

static void test_input_dropout_fd(void **state)
{
    (void)state;
    input_dropout = 0.3f;
    run_sparse_fd(1, XMC_ACT_GELU, 3, 0.2f, 0.0, 1e-2);
    run_sparse_fd(2, XMC_ACT_GELU, 0, 0.0f, 0.0, 1e-2);
    input_dropout = 0.0f;
}

static void test_sparse_fd_relu(void **state)
{
    (void)state;
    /* ReLU kinks: a perturbation can cross 0, so use a small step and
     * allow a few misses (bias entries move every row of the batch). */
    run_sparse_fd(1, XMC_ACT_RELU, 0, 0.0f, 0.05, 1e-4);
    run_sparse_fd(2, XMC_ACT_RELU, 6, 0.2f, 0.05, 1e-4);
}

/* The intermediate layer (SPARTEX) alone, after a bottleneck, linear and
 * with ReLU, with dropout upstream: every tensor including intermediate.W
 * and .b is checked by fd_check (biases made non-zero by run_sparse_fd). */
static void test_intermediate_fd(void **state)
{
    (void)state;
    inter_dim = 9;
    inter_relu = 0;
    run_sparse_fd(1, XMC_ACT_GELU, 0, 0.2f, 0.0, 1e-2);
    run_sparse_fd(2, XMC_ACT_GELU, 5, 0.0f, 0.0, 1e-2);
    /* ReLU: kinks as in test_sparse_fd_relu. */
    inter_relu = 1;
    inter_dim = 11;
    run_sparse_fd(1, XMC_ACT_GELU, 0, 0.0f, 0.05, 1e-4);
    run_sparse_fd(1, XMC_ACT_GELU, 4, 0.3f, 0.05, 1e-4);
    inter_dim = 0;
}

/* Shapes, accounting, the ReLU, and that the layer really is A = act(Z Wi^T
 * + bi) on the bottleneck output: computed by hand from an encoder without
 * the layer that shares the seed (same kind weights and P). */
static void test_intermediate_forward(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_dataset *ds = make_sparse_ds(10, 30, 5, 9);
    xmc_encoder_config c;
    xmc_encoder_config_default(&c, "sparse");
    assert_int_equal(c.intermediate, 0);
    assert_int_equal(c.intermediate_relu, 1);
    c.n_inputs = 30;
    c.hidden = 12;
    c.bottleneck = 6;
    c.dropout = 0.0f;
    c.max_batch = 10;
    xmc_encoder *base = NULL, *enc = NULL;
    assert_int_equal(xmc_encoder_create(&c, &base, &err), XMC_OK);
    c.intermediate = 20;
    assert_int_equal(xmc_encoder_create(&c, &enc, &err), XMC_OK);
    assert_int_equal(enc->dim, 20);
    assert_int_equal(enc->base_dim, 12);
    assert_true(enc->inter_tensor >= 0);
    const xmc_tensor_info *tw = &enc->tensors[enc->inter_tensor];
    const xmc_tensor_info *tb = &enc->tensors[enc->inter_tensor + 1];
    assert_string_equal(tw->name, "intermediate.W");
    assert_int_equal(tw->rows, 20);
    assert_int_equal(tw->cols, 6);
    assert_int_equal(tw->no_decay, 0);
    assert_string_equal(tb->name, "intermediate.b");
    assert_int_equal(tb->cols, 20);
    assert_int_equal(tb->no_decay, 1);
    /* Parameters and scratch: + Wi, bi (params and grads) + A + Z, dZ. */
    assert_int_equal(xmc_encoder_param_count(enc) - xmc_encoder_param_count(base), 20 * 6 + 20);
    assert_int_equal(xmc_encoder_bytes(enc) - xmc_encoder_bytes(base),
                     2 * (20 * 6 + 20) * 4 + 10 * 20 * 4 + 2 * 10 * 6 * 4);
    /* Same seed: kind weights and P equal. */
    assert_memory_equal(enc->params, base->params, (size_t)base->n_params * 4);
    float *Wi = xmc_encoder_dense(enc, enc->inter_tensor);
    float *bi = xmc_encoder_dense(enc, enc->inter_tensor + 1);
    for (int j = 0; j < 20; j++) {
        assert_true(bi[j] == 0.0f);
        bi[j] = 0.1f * (float)(j % 7) - 0.3f;
    }
    xmc_enc_data *d = NULL;
    assert_int_equal(xmc_encoder_prepare(enc, ds, &d, &err), XMC_OK);
    float Z[10 * 6], E[10 * 20];
    assert_int_equal(xmc_encoder_forward(base, d, NULL, 10, 0, Z, &err), XMC_OK);
    assert_int_equal(xmc_encoder_forward(enc, d, NULL, 10, 0, E, &err), XMC_OK);
    int zeros = 0, pos = 0;
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 20; j++) {
            double a = bi[j];
            for (int k = 0; k < 6; k++)
                a += (double)Z[i * 6 + k] * Wi[j * 6 + k];
            double want = a > 0 ? a : 0;
            assert_true(fabs(E[i * 20 + j] - want) < 1e-5);
            zeros += E[i * 20 + j] == 0.0f;
            pos += E[i * 20 + j] > 0.0f;
        }
    assert_true(zeros > 0 && pos > 0); /* the ReLU was exercised both ways */
    /* Linear: the same pre-activations, negative ones kept. */
    enc->cfg.intermediate_relu = 0;
    assert_int_equal(xmc_encoder_forward(enc, d, NULL, 10, 0, E, &err), XMC_OK);
    int neg = 0;
    for (int i = 0; i < 10 * 20; i++)
        neg += E[i] < 0.0f;
    assert_true(neg > 0);
    enc->cfg.intermediate_relu = 1;
    /* Bad configurations. */
    xmc_encoder *bad = NULL;
    c.intermediate = -1;
    xmc_error_clear(&err);
    assert_int_equal(xmc_encoder_create(&c, &bad, &err), XMC_EINVAL);
    assert_non_null(strstr(err.msg, "intermediate"));
    c.intermediate = 4;
    c.intermediate_relu = 2;
    xmc_error_clear(&err);
    assert_int_equal(xmc_encoder_create(&c, &bad, &err), XMC_EINVAL);
    assert_null(bad);
    /* Allocation failures at every point: ENOMEM, nothing leaked. */
    c.intermediate_relu = 1;
    size_t before = xmc_mem_current();
    for (uint64_t k = 1; k < 40; k++) {
        xmc_mem_fail_after(k);
        xmc_error_clear(&err);
        int rc = xmc_encoder_create(&c, &bad, &err);
        xmc_mem_fail_after(0);
        if (rc == XMC_OK) {
            xmc_encoder_free(bad);
            break;
        }
        assert_int_equal(rc, XMC_ENOMEM);
        assert_int_equal(xmc_mem_current(), before);
    }
    xmc_enc_data_free(d);
    xmc_encoder_free(enc);
    xmc_encoder_free(base);
    xmc_dataset_free(ds);
}

static const char *const docs[] = {
    "The quick brown fox jumps over the lazy dog",
    "Grüße aus Köln: ÄRGER über Übermut!",
    "",
    "fox fox fox",
    "a b c d e f g h i j k l m n o p",
    "prices rose 3.5% in 1987, the company said",
};

static void test_bag_fd(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_dataset *ds = xmc_calloc(1, sizeof *ds);
    ds->texts = make_texts(docs, 6);
    ds->n = 6;
    xmc_encoder_config c;
    xmc_encoder_config_default(&c, "bag");
    c.n_inputs = 97;
    c.hidden = 12;
    c.act = XMC_ACT_GELU;
    c.bottleneck = 5;
    c.dropout = 0.2f;
    c.input_dropout = 0.25f;
    c.max_batch = 6;
    xmc_encoder *enc = NULL;
    assert_int_equal(xmc_encoder_create(&c, &enc, &err), XMC_OK);
    xmc_enc_data *d = NULL;
    assert_int_equal(xmc_encoder_prepare(enc, ds, &d, &err), XMC_OK);
    /* Weights of a row sum to 1 (mean); the empty text has none. */
    for (int64_t i = 0; i < d->n; i++) {
        double s = 0;
        for (int64_t p = d->ids->indptr[i]; p < d->ids->indptr[i + 1]; p++)
            s += d->ids->values[p];
        if (i == 2)
            assert_int_equal(d->ids->indptr[3] - d->ids->indptr[2], 0);
        else
            assert_true(fabs(s - 1.0) < 1e-5);
    }
    double frac = fd_check(enc, d, NULL, 6, 1e-2, 2e-3, 2e-2);
    print_message("bag: %.1f%% of FD checks off\n", 100 * frac);
    assert_true(frac == 0.0);
    xmc_enc_data_free(d);
    xmc_encoder_free(enc);
    xmc_dataset_free(ds);
    /* No texts: a clear error. */
    xmc_dataset empty = {0};
    empty.spec = "feat.txt";
    assert_int_equal(xmc_encoder_create(&c, &enc, &err), XMC_OK);
    xmc_error_clear(&err);
    assert_int_equal(xmc_encoder_prepare(enc, &empty, &d, &err), XMC_EINVAL);
    assert_non_null(strstr(err.msg, "texts"));
    xmc_encoder_free(enc);
}

/* Value of bucket `id` in row i of d (0 when absent). */
static float row_weight(const xmc_enc_data *d, int64_t i, int32_t id)
{
    for (int64_t p = d->ids->indptr[i]; p < d->ids->indptr[i + 1]; p++)
        if (d->ids->indices[p] == id)
            return d->ids->values[p];
    return 0.0f;
}

static const float *find_tensor(const xmc_encoder *e, const char *name)
{
    for (int i = 0; i < e->n_tensors; i++)
        if (!strcmp(e->tensors[i].name, name))
            return xmc_encoder_dense(e, i);
    return NULL;
}

/* extra "idf": unigrams, sublinear tf x idf with unit rows, idf fitted by
 * the first prepare only, saved and loaded with the weights, gradients
 * right; "" keeps the mean of uni + bigrams and the h x h layer. */
static void test_bag_idf(void **state)
{
    (void)state;
    xmc_error err = {0};
    const int64_t nb = 1 << 12;
    xmc_dataset *ds = xmc_calloc(1, sizeof *ds);
    ds->texts = make_texts(docs, 6);
    ds->n = 6;
    xmc_encoder_config c;
    xmc_encoder_config_default(&c, "bag");
    c.n_inputs = nb;
    c.hidden = 8;
    c.act = XMC_ACT_GELU; /* smooth: the bias sits before it (ReLU kinks fail FD) */
    c.max_batch = 6;
    xmc_encoder *plain = NULL, *enc = NULL, *enc2 = NULL;
    assert_int_equal(xmc_encoder_create(&c, &plain, &err), XMC_OK);
    snprintf(c.extra, sizeof c.extra, "idf");
    assert_int_equal(xmc_encoder_create(&c, &enc, &err), XMC_OK);
    /* idf: T, b and the idf (no h x h layer). */
    assert_int_equal(xmc_encoder_param_count(enc), xmc_encoder_param_count(plain) - 8 * 8 + nb);
    assert_null(find_tensor(enc, "bag.W"));
    assert_null(find_tensor(plain, "bag.idf"));
    const float *idf = find_tensor(enc, "bag.idf");
    assert_non_null(idf);
    xmc_enc_data *d = NULL, *d2 = NULL, *dp = NULL;
    assert_int_equal(xmc_encoder_prepare(enc, ds, &d, &err), XMC_OK);
    assert_int_equal(xmc_encoder_prepare(plain, ds, &dp, &err), XMC_OK);
    for (int64_t i = 0; i < d->n; i++) {
        double ss = 0;
        for (int64_t p = d->ids->indptr[i]; p < d->ids->indptr[i + 1]; p++)
            ss += (double)d->ids->values[p] * d->ids->values[p];
        assert_true(i == 2 ? ss == 0 : fabs(ss - 1.0) < 1e-5);
    }
    /* Unigrams only: row 0 has 8 distinct words and no bigram. */
    assert_int_equal(d->ids->indptr[1] - d->ids->indptr[0], 8);
    assert_int_equal(xmc_bag_ngram_order("idf"), 1);
    assert_int_equal(xmc_bag_ngram_order(""), 2);
    /* Row 0: "the" twice and in 2 of 6 texts, "quick" once in 1 text. */
    int32_t the, quick;
    assert_int_equal(xmc_bag_hash_text("the", nb, &the, 1), 1);
    assert_int_equal(xmc_bag_hash_text("quick", nb, &quick, 1), 1);
    double idf_the = 1 + log(7.0 / 3.0), idf_quick = 1 + log(7.0 / 2.0);
    assert_true(fabs(idf[the] - idf_the) < 1e-5 && fabs(idf[quick] - idf_quick) < 1e-5);
    double want = (1 + log(2.0)) * idf_the / idf_quick;
    assert_true(fabs(row_weight(d, 0, the) / row_weight(d, 0, quick) - want) < 1e-5);
    /* Without idf the same row is the mean: "the" weighs 2 of 17 n-grams. */
    assert_true(fabs(row_weight(dp, 0, the) - 2.0f / 17.0f) < 1e-6);
    /* A later prepare (test data) uses the fitted idf, never refits it. */
    float *snap = malloc((size_t)nb * sizeof(float));
    memcpy(snap, idf, (size_t)nb * sizeof(float));
    xmc_dataset *other = xmc_calloc(1, sizeof *other);
    const char *const od[] = {"the the zebra", "zebra"};
    other->texts = make_texts(od, 2);
    other->n = 2;
    assert_int_equal(xmc_encoder_prepare(enc, other, &d2, &err), XMC_OK);
    assert_memory_equal(snap, idf, (size_t)nb * sizeof(float));
    xmc_enc_data_free(d2);
    d2 = NULL;
    /* Saved and loaded with the weights: same inputs after load. */
    const char *p = tu_path("bag_idf.bin");
    enc2 = save_load(enc, p);
    assert_string_equal(enc2->cfg.extra, "idf");
    assert_memory_equal(find_tensor(enc2, "bag.idf"), snap, (size_t)nb * sizeof(float));
    assert_int_equal(xmc_encoder_prepare(enc2, other, &d2, &err), XMC_OK);
    assert_true(d2->ids->indptr[2] > 0);
    xmc_enc_data *d3 = NULL;
    assert_int_equal(xmc_encoder_prepare(enc, other, &d3, &err), XMC_OK);
    assert_memory_equal(d2->ids->values, d3->ids->values, (size_t)d2->ids->indptr[2] * sizeof(float));
    /* Gradients stay right with idf weights (the idf tensor has none). */
    double frac = fd_check(enc, d, NULL, 6, 1e-2, 2e-3, 2e-2);
    print_message("bag idf: %.1f%% of FD checks off\n", 100 * frac);
    assert_true(frac == 0.0);
    /* An unknown option is refused by name. */
    snprintf(c.extra, sizeof c.extra, "tfidf");
    xmc_encoder *bad = NULL;
    xmc_error_clear(&err);
    assert_int_equal(xmc_encoder_create(&c, &bad, &err), XMC_EINVAL);
    assert_non_null(strstr(err.msg, "tfidf"));
    assert_null(bad);
    free(snap);
    xmc_enc_data_free(d);
    xmc_enc_data_free(d2);
    xmc_enc_data_free(d3);
    xmc_enc_data_free(dp);
    xmc_encoder_free(enc);
    xmc_encoder_free(enc2);
    xmc_encoder_free(plain);
    xmc_dataset_free(ds);
    xmc_dataset_free(other);
}

static void test_bag_hash(void **state)
{
    (void)state;
    int32_t a[16], b[16];
    /* Two words: 2 unigrams + 1 bigram. Case and punctuation do not matter. */
    assert_int_equal(xmc_bag_hash_text("Hello, World!", 1 << 20, a, 16), 3);
    assert_int_equal(xmc_bag_hash_text("hello world", 1 << 20, b, 16), 3);
    assert_memory_equal(a, b, 3 * sizeof(int32_t));
    /* Unicode lower-casing (Ä -> ä). */
    assert_int_equal(xmc_bag_hash_text("ÄRGER", 1 << 20, a, 16), 1);
    assert_int_equal(xmc_bag_hash_text("ärger", 1 << 20, b, 16), 1);
    assert_int_equal(a[0], b[0]);
    /* Order matters for bigrams, not for the unigram set. */
    xmc_bag_hash_text("red fox", 1 << 20, a, 16);
    xmc_bag_hash_text("fox red", 1 << 20, b, 16);
    assert_int_equal(a[0], b[1]);
    assert_int_equal(a[1], b[0]);
    assert_int_not_equal(a[2], b[2]);
    /* Count beyond max is still reported; ids stay inside the buckets. */
    assert_int_equal(xmc_bag_hash_text("a b c d e", 7, a, 4), 9);
    for (int i = 0; i < 4; i++)
        assert_true(a[i] >= 0 && a[i] < 7);
    assert_int_equal(xmc_bag_hash_text("  ,;  ", 7, a, 4), 0);
}

static void test_touched_rows(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_dataset *ds = make_sparse_ds(20, 50, 5, 9);
    xmc_encoder_config c;
    xmc_encoder_config_default(&c, "sparse");
    c.n_inputs = 50;
    c.hidden = 8;
    c.max_batch = 4;
    c.dropout = 0;
    xmc_encoder *enc = NULL;
    assert_int_equal(xmc_encoder_create(&c, &enc, &err), XMC_OK);
    xmc_enc_data *d = NULL;
    assert_int_equal(xmc_encoder_prepare(enc, ds, &d, &err), XMC_OK);
    int64_t rows[4] = {19, 2, 2, 10};
    float E[32], dE[32];
    assert_int_equal(xmc_encoder_forward(enc, d, rows, 4, 1, E, &err), XMC_OK);
    for (int i = 0; i < 32; i++)
        dE[i] = 1.0f;
    xmc_encoder_zero_grad(enc);
    assert_int_equal(xmc_encoder_backward(enc, dE, 4, &err), XMC_OK);
    char want[50] = {0};
    int nwant = 0;
    for (int i = 0; i < 4; i++)
        for (int64_t p = ds->X->indptr[rows[i]]; p < ds->X->indptr[rows[i] + 1]; p++)
            if (!want[ds->X->indices[p]]++)
                nwant++;
    const xmc_sparse_table *t = &enc->tables[0];
    assert_int_equal(t->n_touched, nwant);
    for (int64_t q = 0; q < t->n_touched; q++) {
        assert_true(want[t->touched[q]]);
        if (q)
            assert_true(t->touched[q] > t->touched[q - 1]);
    }
    /* Backward twice without forward is a state error. */
    assert_int_equal(xmc_encoder_backward(enc, dE, 4, &err), XMC_ESTATE);
    /* Bad rows are rejected before any work. */
    int64_t badrows[1] = {20};
    xmc_error_clear(&err);
    assert_int_equal(xmc_encoder_forward(enc, d, badrows, 1, 1, E, &err), XMC_EINVAL);
    assert_int_equal(xmc_encoder_forward(enc, d, rows, 5, 1, E, &err), XMC_EINVAL);
    xmc_enc_data_free(d);
    xmc_encoder_free(enc);
    /* Features beyond the encoder's inputs (unseen at training) are dropped. */
    c.n_inputs = 10;
    assert_int_equal(xmc_encoder_create(&c, &enc, &err), XMC_OK);
    assert_int_equal(xmc_encoder_prepare(enc, ds, &d, &err), XMC_OK);
    for (int64_t p = 0; p < xmc_csr_nnz(d->ids); p++)
        assert_true(d->ids->indices[p] < 10);
    xmc_enc_data_free(d);
    xmc_encoder_free(enc);
    xmc_dataset_free(ds);
    /* No features: a clear error. */
    xmc_dataset empty = {0};
    empty.spec = "texts.txt";
    assert_int_equal(xmc_encoder_create(&c, &enc, &err), XMC_OK);
    xmc_error_clear(&err);
    assert_int_equal(xmc_encoder_prepare(enc, &empty, &d, &err), XMC_EINVAL);
    assert_non_null(strstr(err.msg, "features"));
    xmc_encoder_free(enc);
}

static void test_save_load_and_no_alloc(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_dataset *ds = make_sparse_ds(30, 60, 7, 4);
    xmc_encoder_config c;
    xmc_encoder_config_default(&c, "sparse");
    c.n_inputs = 60;
    c.hidden = 10;
    c.layers = 2;
    c.bottleneck = 3;
    c.intermediate = 5;
    c.intermediate_relu = 0;
    c.max_batch = 8;
    xmc_encoder *enc = NULL, *enc2 = NULL;
    assert_int_equal(xmc_encoder_create(&c, &enc, &err), XMC_OK);
    assert_int_equal(xmc_encoder_param_count(enc), 60 * 10 + 10 + 100 + 10 + 30 + 15 + 5);
    xmc_enc_data *d = NULL;
    assert_int_equal(xmc_encoder_prepare(enc, ds, &d, &err), XMC_OK);
    float E[40], dE[40], E2[40];
    int64_t rows[8] = {0, 1, 2, 3, 4, 5, 6, 29};
    /* Steady state: forward + backward allocate nothing. */
    uint64_t a0 = xmc_mem_alloc_count();
    for (int it = 0; it < 5; it++) {
        assert_int_equal(xmc_encoder_forward(enc, d, rows, 8, 1, E, &err), XMC_OK);
        memcpy(dE, E, sizeof E);
        xmc_encoder_zero_grad(enc);
        assert_int_equal(xmc_encoder_backward(enc, dE, 8, &err), XMC_OK);
    }
    assert_int_equal(xmc_mem_alloc_count(), a0);
    /* Eval mode is deterministic (no dropout). */
    assert_int_equal(xmc_encoder_forward(enc, d, rows, 8, 0, E, &err), XMC_OK);
    const char *p = tu_path("enc.bin");
    enc2 = save_load(enc, p);
    assert_int_equal(enc2->step, enc->step);
    assert_int_equal(enc2->cfg.intermediate, 5);
    assert_int_equal(enc2->cfg.intermediate_relu, 0);
    assert_int_equal(enc2->dim, 5);
    xmc_enc_data *d2 = NULL;
    assert_int_equal(xmc_encoder_prepare(enc2, ds, &d2, &err), XMC_OK);
    assert_int_equal(xmc_encoder_forward(enc2, d2, rows, 8, 0, E2, &err), XMC_OK);
    assert_memory_equal(E, E2, sizeof E);
    xmc_encoder_free(enc2);
    enc2 = NULL;
    /* Flip one byte in the middle: checksum error. */
    assert_int_equal(tu_system("printf '\\x55' | dd of='%s' bs=1 seek=2000 conv=notrunc "
                               "status=none", p), 0);
    xmc_error_clear(&err);
    assert_int_not_equal(load_file(p, &enc2, &err), XMC_OK);
    assert_int_equal(err.code, XMC_ECORRUPT);
    assert_null(enc2);
    /* Truncated file. */
    assert_int_equal(tu_system("truncate -s 100 '%s'", p), 0);
    xmc_error_clear(&err);
    assert_int_equal(load_file(p, &enc2, &err), XMC_ECORRUPT);
    xmc_enc_data_free(d);
    xmc_enc_data_free(d2);
    xmc_encoder_free(enc);
    xmc_dataset_free(ds);
}

static void test_create_errors_and_oom(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_encoder_config c;
    xmc_encoder_config_default(&c, "conv");
    xmc_encoder *enc = NULL;
    assert_int_equal(xmc_encoder_create(&c, &enc, &err), XMC_EINVAL);
    assert_non_null(strstr(err.msg, "conv"));
    xmc_encoder_config_default(&c, "sparse");
    c.n_inputs = 100;
    c.dropout = 1.0f;
    xmc_error_clear(&err);
    assert_int_equal(xmc_encoder_create(&c, &enc, &err), XMC_EINVAL);
    c.dropout = 0.1f;
    c.hidden = 0;
    xmc_error_clear(&err);
    assert_int_equal(xmc_encoder_create(&c, &enc, &err), XMC_EINVAL);
    c.hidden = 8;
    c.bottleneck = 4;
    c.layers = 2;
    /* Every allocation failure point gives ENOMEM and leaks nothing. */
    size_t before = xmc_mem_current();
    for (uint64_t k = 1; k < 40; k++) {
        xmc_mem_fail_after(k);
        xmc_error_clear(&err);
        int rc = xmc_encoder_create(&c, &enc, &err);
        xmc_mem_fail_after(0);
        if (rc == XMC_OK) {
            xmc_encoder_free(enc);
            break;
        }
        assert_int_equal(rc, XMC_ENOMEM);
        assert_null(enc);
        assert_int_equal(xmc_mem_current(), before);
    }
    /* Same seed, same parameters. */
    xmc_encoder *a = NULL, *b = NULL;
    assert_int_equal(xmc_encoder_create(&c, &a, &err), XMC_OK);
    assert_int_equal(xmc_encoder_create(&c, &b, &err), XMC_OK);
    assert_memory_equal(a->params, b->params, (size_t)a->n_params * 4);
    assert_memory_equal(a->tables[0].w, b->tables[0].w, 100 * 8 * 4);
    xmc_encoder_free(a);
    xmc_encoder_free(b);
}

/* A version-2 file (before the intermediate layer: no disk_cfg3 block)
 * still loads, as an encoder without the layer. Made from a version-3 file
 * by dropping the 32-byte block and re-computing the CRC. */
static void test_load_version2(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_encoder_config c;
    xmc_encoder_config_default(&c, "sparse");
    c.n_inputs = 20;
    c.hidden = 6;
    c.bottleneck = 4;
    xmc_encoder *enc = NULL, *enc2 = NULL;
    assert_int_equal(xmc_encoder_create(&c, &enc, &err), XMC_OK);
    const char *p = tu_path("enc3.bin");
    FILE *f = fopen(p, "wb");
    assert_int_equal(xmc_encoder_save(enc, f, p, &err), XMC_OK);
    long S = ftell(f);
    fclose(f);
    unsigned char *buf = malloc((size_t)S);
    f = fopen(p, "rb");
    assert_int_equal(fread(buf, 1, (size_t)S, f), (size_t)S);
    fclose(f);
    /* S = 8 magic + 4 version + cfg + 32 + 64 per tensor/table + values + 4 CRC. */
    long values = (long)xmc_encoder_param_count(enc) * 4;
    long cfg = S - 8 - 4 - 32 - 64L * (enc->n_tensors + enc->n_tables) - values - 4;
    assert_true(cfg > 0);
    long off3 = 12 + cfg;
    unsigned char *v2 = malloc((size_t)S);
    memcpy(v2, buf, (size_t)off3);
    memcpy(v2 + off3, buf + off3 + 32, (size_t)(S - off3 - 32 - 4));
    long S2 = S - 32;
    uint32_t two = 2;
    memcpy(v2 + 8, &two, 4);
    uint32_t crc = xmc_crc32(0, v2 + 8, (size_t)(S2 - 8 - 4));
    memcpy(v2 + S2 - 4, &crc, 4);
    const char *p2 = tu_path("enc2.bin");
    f = fopen(p2, "wb");
    assert_int_equal(fwrite(v2, 1, (size_t)S2, f), (size_t)S2);
    fclose(f);
    assert_int_equal(load_file(p2, &enc2, &err), XMC_OK);
    assert_int_equal(enc2->cfg.intermediate, 0);
    assert_int_equal(enc2->dim, 4);
    assert_memory_equal(enc2->params, enc->params, (size_t)enc->n_params * 4);
    assert_memory_equal(enc2->tables[0].w, enc->tables[0].w, 20 * 6 * 4);
    xmc_encoder_free(enc2);
    /* Version 1 (never written by this code) is refused. */
    uint32_t one = 1;
    memcpy(v2 + 8, &one, 4);
    f = fopen(p2, "wb");
    assert_int_equal(fwrite(v2, 1, (size_t)S2, f), (size_t)S2);
    fclose(f);
    enc2 = NULL;
    xmc_error_clear(&err);
    assert_int_equal(load_file(p2, &enc2, &err), XMC_ECORRUPT);
    assert_non_null(strstr(err.msg, "version"));
    free(buf);
    free(v2);
    xmc_encoder_free(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sparse_fd_gelu),
        cmocka_unit_test(test_sparse_fd_relu),
        cmocka_unit_test(test_input_dropout_fd),
        cmocka_unit_test(test_intermediate_fd),
        cmocka_unit_test(test_intermediate_forward),
        cmocka_unit_test(test_load_version2),
        cmocka_unit_test(test_bag_fd),
        cmocka_unit_test(test_bag_hash),
        cmocka_unit_test(test_bag_idf),
        cmocka_unit_test(test_touched_rows),
        cmocka_unit_test(test_save_load_and_no_alloc),
        cmocka_unit_test(test_create_errors_and_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
