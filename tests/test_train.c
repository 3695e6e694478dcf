/* Training loop and model directory: no allocation inside a step, the model
 * learns a planted task, resume is bit-identical to an uninterrupted run,
 * checkpoints replace their files atomically, load errors name the file,
 * prediction output is a well-formed score matrix. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "xmc/data.h"
#include "xmc/head.h"
#include "xmc/model.h"

/* Planted task: label l is "on" for a point when feature 2l (or 2l+1) is
 * present; plus noise features. N x F features, L labels. */
static xmc_dataset *planted(int64_t N, int L, uint64_t seed)
{
    const int64_t F = 2 * L + 30;
    xmc_rng r;
    xmc_rng_seed(&r, seed, 0);
    xmc_dataset *ds = xmc_calloc(1, sizeof *ds);
    assert_non_null(ds);
    xmc_error e = {0};
    assert_int_equal(xmc_csr_create(&ds->X, N, F, N * 8, 1, &e), XMC_OK);
    assert_int_equal(xmc_csr_create(&ds->Y, N, L, N * 2, 1, &e), XMC_OK);
    int64_t qx = 0, qy = 0;
    for (int64_t i = 0; i < N; i++) {
        int l1 = (int)xmc_rng_below(&r, (uint64_t)L), l2 = (int)xmc_rng_below(&r, (uint64_t)L);
        if (l2 < l1) {
            int t = l1;
            l1 = l2;
            l2 = t;
        }
        char on[512] = {0};
        on[2 * l1 + (int)xmc_rng_below(&r, 2)] = 1;
        if (i % 3 == 0)
            on[2 * l2 + (int)xmc_rng_below(&r, 2)] = 1;
        for (int k = 0; k < 3; k++)
            on[2 * L + (int)xmc_rng_below(&r, 30)] = 1;
        for (int64_t f = 0; f < F; f++)
            if (on[f]) {
                ds->X->indices[qx] = (int32_t)f;
                ds->X->values[qx++] = 1.0f;
            }
        ds->X->indptr[i + 1] = qx;
        ds->Y->indices[qy] = l1;
        ds->Y->values[qy++] = 1.0f;
        if (i % 3 == 0 && l2 != l1) {
            ds->Y->indices[qy] = l2;
            ds->Y->values[qy++] = 1.0f;
        }
        ds->Y->indptr[i + 1] = qy;
    }
    ds->n = N;
    ds->n_features = F;
    ds->n_labels = L;
    ds->spec = xmc_strdup("planted");
    return ds;
}

static void small_config(xmc_train_config *c)
{
    xmc_train_config_default(c);
    c->dim = 32;
    c->batch = 32;
    c->epochs = 3;
    c->lr1 = 0.05f;
    c->lr2 = 0.01f;
    c->seed = 11;
    c->eval_every = 0;
    c->loss_every = 3;
}

static void test_step_allocates_nothing(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_dataset *ds = planted(200, 12, 1);
    xmc_train_config c;
    small_config(&c);
    c.bottleneck = 8;
    c.layers = 2;
    xmc_model *m = NULL;
    assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_OK);
    xmc_enc_data *d = NULL;
    assert_int_equal(xmc_model_prepare(m, ds, &d, &err), XMC_OK);
    int64_t rows[32];
    for (int i = 0; i < 32; i++)
        rows[i] = (i * 7) % 200;
    double loss = 0;
    assert_int_equal(xmc_model_step(m, d, ds->Y, rows, 32, &loss, &err), XMC_OK);
    uint64_t a0 = xmc_mem_alloc_count();
    for (int s = 0; s < 10; s++) {
        for (int i = 0; i < 32; i++)
            rows[i] = (rows[i] + 13) % 200;
        assert_int_equal(xmc_model_step(m, d, ds->Y, rows, s % 2 ? 32 : 17,
                                        s % 3 ? NULL : &loss, &err),
                         XMC_OK);
    }
    assert_int_equal(xmc_mem_alloc_count(), a0);
    assert_true(loss > 0);
    xmc_enc_data_free(d);
    xmc_model_free(m);
    xmc_dataset_free(ds);
}

static double train_p1(xmc_model *m, const xmc_dataset *ds)
{
    xmc_error err = {0};
    xmc_csr *P = NULL;
    assert_int_equal(xmc_model_predict(m, ds, 1, &P, &err), XMC_OK);
    assert_int_equal(P->nrows, ds->n);
    int64_t hit = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        assert_int_equal(P->indptr[i + 1] - P->indptr[i], 1);
        int32_t l = P->indices[P->indptr[i]];
        for (int64_t p = ds->Y->indptr[i]; p < ds->Y->indptr[i + 1]; p++)
            hit += ds->Y->indices[p] == l;
    }
    xmc_csr_free(P);
    return (double)hit / (double)ds->n;
}

static void test_learns_planted_task(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_dataset *ds = planted(600, 20, 2);
    xmc_dataset *te = planted(200, 20, 3);
    xmc_train_config c;
    small_config(&c);
    c.epochs = 8;
    xmc_model *m = NULL;
    assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_OK);
    double before = train_p1(m, te);
    assert_int_equal(xmc_model_train(m, ds, te, NULL, &err), XMC_OK);
    double after = train_p1(m, te);
    print_message("planted task: test P@1 %.3f before, %.3f after training\n", before, after);
    assert_true(after > 0.8);
    assert_true(after > before + 0.3);
    /* Top-k output: k labels per row, sorted ids, scores as returned. */
    xmc_csr *P = NULL;
    assert_int_equal(xmc_model_predict(m, te, 5, &P, &err), XMC_OK);
    assert_int_equal(P->ncols, 20);
    for (int64_t i = 0; i < P->nrows; i++) {
        assert_int_equal(P->indptr[i + 1] - P->indptr[i], 5);
        for (int64_t p = P->indptr[i] + 1; p < P->indptr[i + 1]; p++)
            assert_true(P->indices[p] > P->indices[p - 1]);
    }
    xmc_csr_free(P);
    /* k larger than L is clamped. */
    assert_int_equal(xmc_model_predict(m, te, 50, &P, &err), XMC_OK);
    assert_int_equal(P->indptr[1], 20);
    xmc_csr_free(P);
    xmc_model_free(m);
    xmc_dataset_free(ds);
    xmc_dataset_free(te);
}

/* xmc_model_embed returns what the head scores: with a bottleneck the
 * rows are b-wide, E W^T reproduces predict's top-1 label and score, and a
 * sub-range (crossing batch blocks) is the same slice of the whole. */
static void test_embed_scores_as_predict(void **state)
{
    (void)state;
    xmc_error err = {0};
    const int L = 12, N = 200, b = 8;
    xmc_dataset *ds = planted(N, L, 4);
    xmc_train_config c;
    small_config(&c);
    c.bottleneck = b;
    c.epochs = 2;
    xmc_model *m = NULL;
    assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_OK);
    assert_int_equal(xmc_model_train(m, ds, NULL, NULL, &err), XMC_OK);
    xmc_model_stats st;
    xmc_model_get_stats(m, &st);
    assert_int_equal(st.dim, b);
    xmc_enc_data *d = NULL;
    assert_int_equal(xmc_model_prepare(m, ds, &d, &err), XMC_OK);
    float *E = xmc_malloc((size_t)N * b * sizeof(float));
    float *E2 = xmc_malloc((size_t)N * b * sizeof(float));
    float *W = xmc_malloc((size_t)L * b * sizeof(float));
    assert_non_null(E);
    assert_non_null(E2);
    assert_non_null(W);
    assert_int_equal(xmc_model_embed(m, d, 0, N, E, &err), XMC_OK);
    assert_int_equal(xmc_model_embed(m, d, 25, 100, E2, &err), XMC_OK);
    assert_memory_equal(E2, E + 25 * b, (size_t)100 * b * sizeof(float));
    assert_int_equal(xmc_model_embed(m, d, 150, 51, E2, &err), XMC_EINVAL);
    assert_int_equal(xmc_ova_get_rows(xmc_model_head(m), 0, L, W, &err), XMC_OK);
    xmc_csr *P = NULL;
    assert_int_equal(xmc_model_predict(m, ds, 1, &P, &err), XMC_OK);
    for (int i = 0; i < N; i++) {
        int best = 0;
        double bs = -1e30, s_pred = P->values[P->indptr[i]];
        for (int l = 0; l < L; l++) {
            double s = 0;
            for (int k = 0; k < b; k++)
                s += (double)E[i * b + k] * W[l * b + k];
            if (s > bs) {
                bs = s;
                best = l;
            }
        }
        assert_int_equal(best, P->indices[P->indptr[i]]);
        assert_true(fabs(bs - s_pred) <= 1e-5 * (1.0 + fabs(bs)));
    }
    xmc_csr_free(P);
    xmc_free(W);
    xmc_free(E2);
    xmc_free(E);
    xmc_enc_data_free(d);
    xmc_model_free(m);
    xmc_dataset_free(ds);
}

static int files_equal(const char *a, const char *b)
{
    return tu_system("cmp -s '%s' '%s'", a, b) == 0;
}

static void test_resume_bit_identical(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_dataset *ds = planted(300, 16, 4);
    xmc_train_config c;
    small_config(&c);
    c.dropout = 0.3f;
    c.layers = 2;
    c.bottleneck = 8;
    const char *dA = tu_path("runA");
    const char *dB = tu_path("runB");
    xmc_model *m = NULL;
    /* A: 3 epochs in one go. */
    assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_OK);
    assert_int_equal(xmc_model_train(m, ds, NULL, dA, &err), XMC_OK);
    xmc_model_stats st;
    xmc_model_get_stats(m, &st);
    int64_t steps = st.steps_done;
    assert_int_equal(st.epochs_done, 3);
    xmc_model_free(m);
    /* B: stop after 1 epoch (as if killed after its checkpoint), then resume
     * from the directory (stop_after is not saved: the rest runs). */
    c.stop_after = 1;
    assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_OK);
    assert_int_equal(xmc_model_train(m, ds, NULL, dB, &err), XMC_OK);
    xmc_model_free(m);
    assert_int_equal(xmc_model_load(dB, 1, &m, &err), XMC_OK);
    xmc_model_get_stats(m, &st);
    assert_int_equal(st.epochs_done, 1);
    assert_int_equal(xmc_model_train(m, ds, NULL, dB, &err), XMC_OK);
    xmc_model_get_stats(m, &st);
    assert_int_equal(st.epochs_done, 3);
    assert_int_equal(st.steps_done, steps);
    xmc_model_free(m);
    char fa[512], fb[512];
    const char *kinds[3] = {"encoder", "head", "optim"};
    for (int k = 0; k < 3; k++) {
        snprintf(fa, sizeof fa, "%s/%s-s%lld.bin", dA, kinds[k], (long long)steps);
        snprintf(fb, sizeof fb, "%s/%s-s%lld.bin", dB, kinds[k], (long long)steps);
        assert_true(xmc_file_exists(fa));
        assert_true(files_equal(fa, fb));
    }
    /* Only the last checkpoint's files remain (old ones removed). */
    assert_int_equal(tu_system("test $(ls '%s' | wc -l) -eq 4", dB), 0); /* 3 bins + config */
    /* A model loaded for prediction predicts like the trained one. */
    assert_int_equal(xmc_model_load(dA, 0, &m, &err), XMC_OK);
    xmc_model *m2 = NULL;
    assert_int_equal(xmc_model_load(dB, 0, &m2, &err), XMC_OK);
    xmc_csr *P1 = NULL, *P2 = NULL;
    assert_int_equal(xmc_model_predict(m, ds, 3, &P1, &err), XMC_OK);
    assert_int_equal(xmc_model_predict(m2, ds, 3, &P2, &err), XMC_OK);
    assert_true(xmc_csr_equal(P1, P2));
    /* Prediction-only models cannot step. */
    assert_int_equal(xmc_model_train(m, ds, NULL, NULL, &err), XMC_ESTATE);
    xmc_csr_free(P1);
    xmc_csr_free(P2);
    xmc_model_free(m);
    xmc_model_free(m2);
    xmc_dataset_free(ds);
}

static void test_model_dir_errors(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_model *m = NULL;
    tu_assert_error(xmc_model_load(tu_path("nothing"), 0, &m, &err), &err, XMC_EIO,
                    "nothing/config.json", 0);
    assert_null(m);
    xmc_dataset *ds = planted(100, 8, 5);
    xmc_train_config c;
    small_config(&c);
    c.epochs = 1;
    const char *d = tu_path("m");
    assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_OK);
    assert_int_equal(xmc_model_train(m, ds, NULL, d, &err), XMC_OK);
    xmc_model_free(m);
    m = NULL;
    /* Corrupt a weight file: ECORRUPT naming it. */
    assert_int_equal(tu_system("cd '%s' && f=$(ls head-s*.bin) && printf 'XX' | dd of=$f bs=1 "
                               "seek=100 conv=notrunc status=none", d), 0);
    xmc_error_clear(&err);
    tu_assert_error(xmc_model_load(d, 0, &m, &err), &err, XMC_ECORRUPT, "head-s", 0);
    /* Missing file. */
    assert_int_equal(tu_system("rm '%s'/encoder-s*.bin", d), 0);
    xmc_error_clear(&err);
    tu_assert_error(xmc_model_load(d, 0, &m, &err), &err, XMC_EIO, "encoder-s", 0);
    /* Broken config. */
    tu_write(tu_path("m/config.json"), "{\"format\": \"xmc-model\", \"version\": 1}");
    xmc_error_clear(&err);
    tu_assert_error(xmc_model_load(d, 0, &m, &err), &err, XMC_ECORRUPT, "config.json", 0);
    tu_write(tu_path("m/config.json"), "{not json");
    xmc_error_clear(&err);
    tu_assert_error(xmc_model_load(d, 0, &m, &err), &err, XMC_ECORRUPT, "config.json", 0);
    assert_null(m);
    /* Bad configurations are refused before any work. */
    small_config(&c);
    c.batch = 0;
    xmc_error_clear(&err);
    assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_EINVAL);
    small_config(&c);
    snprintf(c.encoder, sizeof c.encoder, "bag"); /* no texts */
    xmc_error_clear(&err);
    assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_EINVAL);
    assert_non_null(strstr(err.msg, "texts"));
    snprintf(c.recipe, sizeof c.recipe, "dexml");
    xmc_error_clear(&err);
    assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_EINVAL);
    xmc_dataset_free(ds);
}

/* A save that runs out of memory fails with ENOMEM and leaves no
 * config.json; one that succeeds writes the same manifest as a save with
 * no failure (cJSON drops fields it cannot allocate without a sign, so the
 * writer must notice: io.c, xmc_json_failures). */
static void test_save_out_of_memory(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_model *m = NULL;
    xmc_dataset *ds = planted(60, 8, 5);
    xmc_train_config c;
    small_config(&c);
    c.epochs = 1;
    assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_OK);
    assert_int_equal(xmc_model_train(m, ds, NULL, NULL, &err), XMC_OK);
    assert_int_equal(xmc_model_save(m, tu_path("ref"), &err), XMC_OK);
    char *want = NULL, *got = NULL;
    assert_int_equal(xmc_model_read_config_text(tu_path("ref"), &want, &err), XMC_OK);
    int ok = 0, failed = 0;
    for (uint64_t k = 1; k < 400 && !ok; k++) {
        assert_int_equal(tu_system("rm -rf '%s'", tu_path("oom")), 0);
        xmc_error_clear(&err);
        xmc_mem_fail_after(k);
        int rc = xmc_model_save(m, tu_path("oom"), &err);
        xmc_mem_fail_after(0);
        if (rc != XMC_OK) {
            assert_int_equal(rc, XMC_ENOMEM);
            assert_false(xmc_file_exists(tu_path("oom/config.json")));
            failed++;
            continue;
        }
        assert_int_equal(xmc_model_read_config_text(tu_path("oom"), &got, &err), XMC_OK);
        assert_string_equal(got, want);
        xmc_free(got);
        ok = 1;
    }
    assert_true(ok);
    assert_true(failed > 20); /* the failures reached the manifest's tree */
    xmc_free(want);
    xmc_model_free(m);
    xmc_dataset_free(ds);
}

static void test_bag_model_with_names(void **state)
{
    (void)state;
    xmc_error err = {0};
    /* TEXTS+LABELS through the data module; the bag encoder is auto-picked
     * and the label names travel with the model. */
    const char *tx = tu_path("t.txt"), *lb = tu_path("l.txt");
    FILE *ft = fopen(tx, "w"), *fl = fopen(lb, "w");
    const char *words[3] = {"wheat grain harvest", "oil crude barrel", "bank rate interest"};
    const char *names[3] = {"grain", "crude", "money-fx"};
    for (int i = 0; i < 150; i++) {
        int k = i % 3;
        fprintf(ft, "report %d on %s and more %s news\n", i, words[k], words[(k + i) % 3] + 4);
        fprintf(fl, "%s\n", names[k]);
    }
    fclose(ft);
    fclose(fl);
    char spec[1000];
    snprintf(spec, sizeof spec, "%s+%s", tx, lb);
    xmc_dataset *ds = NULL;
    assert_int_equal(xmc_dataset_load(spec, NULL, &ds, &err), XMC_OK);
    assert_non_null(ds->texts);
    assert_non_null(ds->label_names);
    xmc_train_config c;
    small_config(&c);
    c.buckets = 4096;
    c.epochs = 6;
    snprintf(c.train_spec, sizeof c.train_spec, "%s", spec);
    const char *d = tu_path("bag");
    xmc_model *m = NULL;
    assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_OK);
    assert_string_equal(xmc_model_config(m)->encoder, "bag");
    assert_int_equal(xmc_model_train(m, ds, NULL, d, &err), XMC_OK);
    xmc_model_free(m);
    assert_int_equal(xmc_model_load(d, 0, &m, &err), XMC_OK);
    const xmc_texts *ln = xmc_model_label_names(m);
    assert_non_null(ln);
    assert_int_equal(ln->n, 3);
    const char *q[2] = {"crude oil barrel prices", "wheat harvest"};
    xmc_dataset qd;
    memset(&qd, 0, sizeof qd);
    assert_int_equal(xmc_texts_create(q, 2, &qd.texts, &err), XMC_OK);
    qd.n = 2;
    xmc_csr *P = NULL;
    assert_int_equal(xmc_model_predict(m, &qd, 1, &P, &err), XMC_OK);
    assert_string_equal(xmc_texts_get(ln, P->indices[0]), "crude");
    assert_string_equal(xmc_texts_get(ln, P->indices[1]), "grain");
    xmc_csr_free(P);
    xmc_texts_free(qd.texts);
    xmc_model_free(m);
    xmc_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_allocates_nothing),
        cmocka_unit_test(test_learns_planted_task),
        cmocka_unit_test(test_embed_scores_as_predict),
        cmocka_unit_test(test_resume_bit_identical),
        cmocka_unit_test(test_model_dir_errors),
        cmocka_unit_test(test_save_out_of_memory),
        cmocka_unit_test(test_bag_model_with_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
