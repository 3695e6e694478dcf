/* kNN memory (include/xmc/neighbors.h, src/model/neighbors.c): label
 * scores against values worked by hand; the file round-trips and refuses
 * damage; a model's blended top-k equals the blend computed over every
 * label; training builds the memory (auto on a small renee problem, off for
 * spartex), and a run cut short before it resumes into the same memory. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/data.h"
#include "xmc/model.h"
#include "xmc/neighbors.h"

/* Memory rows (2-d) and labels: row 0 (1,0) {0}; row 1 (0,2) {1}; row 2
 * (1,1) {0, 2 (0.5)}; row 3 (-1,0) {3}. */
static xmc_neighbors *small_memory(void)
{
    static const float E[8] = {1, 0, 0, 2, 1, 1, -1, 0};
    static int64_t indptr[5] = {0, 1, 2, 4, 5};
    static int32_t idx[5] = {0, 1, 0, 2, 3};
    static float val[5] = {1, 1, 1, 0.5f, 1};
    xmc_csr Y = {4, 4, indptr, idx, val, NULL};
    xmc_neighbors *nb = NULL;
    xmc_error err = {0};
    assert_int_equal(xmc_neighbors_create(E, 4, 2, &Y, 4, &nb, &err), XMC_OK);
    return nb;
}

static float kval(const xmc_csr *K, int64_t i, int32_t l)
{
    for (int64_t e = K->indptr[i]; e < K->indptr[i + 1]; e++)
        if (K->indices[e] == l)
            return K->values[e];
    return 0.0f;
}

static void test_scores_by_hand(void **state)
{
    (void)state;
    xmc_neighbors *nb = small_memory();
    xmc_error err = {0};
    /* q = (3, 1): cosines row 0 3/sqrt10 = 0.94868, row 2 4/sqrt20 =
     * 0.89443, row 1 1/sqrt10 = 0.31623, row 3 -0.94868. k 2, temperature
     * 0.5: weights exp(0) and exp((0.89443 - 0.94868) / 0.5) = 0.89718,
     * normalised 0.52710 and 0.47290. K_0 = 0.52710 + 0.47290 = 1,
     * K_2 = 0.5 x 0.47290 = 0.23645. q = (0, 0) has no direction: its k 3
     * neighbours are the first three rows, weighted equally. */
    const float Q[4] = {3, 1, 0, 0};
    xmc_csr *K = NULL;
    assert_int_equal(xmc_neighbors_scores(nb, Q, 2, 2, 0.5f, &K, &err), XMC_OK);
    assert_int_equal(K->nrows, 2);
    assert_int_equal(K->ncols, 4);
    assert_int_equal(K->indptr[1], 2); /* labels 0 and 2, ascending */
    assert_int_equal(K->indices[0], 0);
    assert_int_equal(K->indices[1], 2);
    assert_true(fabsf(kval(K, 0, 0) - 1.0f) < 1e-5f);
    assert_true(fabsf(kval(K, 0, 2) - 0.23645f) < 1e-4f);
    assert_true(fabsf(kval(K, 1, 0) - 0.5f) < 1e-6f); /* rows 0 and 1 */
    assert_true(fabsf(kval(K, 1, 1) - 0.5f) < 1e-6f);
    xmc_csr_free(K);
    /* k beyond the memory clamps to it; a low temperature takes the nearest */
    assert_int_equal(xmc_neighbors_scores(nb, Q, 1, 50, 1e-3f, &K, &err), XMC_OK);
    assert_int_equal(K->indptr[1], 4); /* every row's labels appear */
    assert_true(fabsf(kval(K, 0, 0) - 1.0f) < 1e-6f);
    assert_true(kval(K, 0, 3) < 1e-30f);
    xmc_csr_free(K);
    /* bad arguments are refused */
    assert_int_equal(xmc_neighbors_scores(nb, Q, 1, 0, 0.5f, &K, &err), XMC_EINVAL);
    assert_int_equal(xmc_neighbors_scores(nb, Q, 1, 2, 0.0f, &K, &err), XMC_EINVAL);
    xmc_neighbors_free(nb);
}

static void test_file_round_trip_and_damage(void **state)
{
    (void)state;
    xmc_neighbors *nb = small_memory(), *back = NULL;
    xmc_error err = {0};
    const char *p = tu_path("mem.bin");
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(xmc_neighbors_save(nb, f, p, &err), XMC_OK);
    fclose(f);
    f = fopen(p, "rb");
    assert_int_equal(xmc_neighbors_load(f, p, &back, &err), XMC_OK);
    fclose(f);
    assert_int_equal(xmc_neighbors_rows(back), 4);
    assert_int_equal(xmc_neighbors_dim(back), 2);
    const float Q[2] = {3, 1};
    xmc_csr *K1 = NULL, *K2 = NULL;
    assert_int_equal(xmc_neighbors_scores(nb, Q, 1, 3, 0.1f, &K1, &err), XMC_OK);
    assert_int_equal(xmc_neighbors_scores(back, Q, 1, 3, 0.1f, &K2, &err), XMC_OK);
    assert_int_equal(K1->indptr[1], K2->indptr[1]);
    assert_memory_equal(K1->indices, K2->indices, (size_t)K1->indptr[1] * sizeof(int32_t));
    assert_memory_equal(K1->values, K2->values, (size_t)K1->indptr[1] * sizeof(float));
    xmc_csr_free(K1);
    xmc_csr_free(K2);
    xmc_neighbors_free(back);
    back = NULL;
    /* one flipped byte in the embeddings: the checksum says so */
    assert_int_equal(tu_system("printf '\\x7f' | dd of='%s' bs=1 seek=50 conv=notrunc "
                               "status=none", p), 0);
    f = fopen(p, "rb");
    tu_assert_error(xmc_neighbors_load(f, p, &back, &err), &err, XMC_ECORRUPT, "mem.bin", 0);
    assert_non_null(strstr(err.msg, "checksum"));
    fclose(f);
    err = (xmc_error){0};
    /* truncated */
    assert_int_equal(tu_system("truncate -s 60 '%s'", p), 0);
    f = fopen(p, "rb");
    tu_assert_error(xmc_neighbors_load(f, p, &back, &err), &err, XMC_ECORRUPT, "mem.bin", 0);
    fclose(f);
    err = (xmc_error){0};
    /* not a memory at all */
    tu_write(p, "XMCOVA\0\0 something else");
    f = fopen(p, "rb");
    tu_assert_error(xmc_neighbors_load(f, p, &back, &err), &err, XMC_ECORRUPT, "mem.bin", 0);
    assert_non_null(strstr(err.msg, "magic"));
    fclose(f);
    assert_null(back);
    xmc_neighbors_free(nb);
}

static void config(xmc_train_config *c, int knn)
{
    xmc_train_config_default(c);
    c->dim = 16;
    c->batch = 16;
    c->epochs = 2;
    c->seed = 3;
    c->threads = 2;
    c->eval_every = 0;
    c->ensemble = 1;
    c->knn = knn;
    c->buckets = 4096;
    snprintf(c->train_spec, sizeof c->train_spec, "%s", tu_news_spec());
}

typedef struct lab_s {
    int32_t l;
    float s;
} lab_s;

static int by_score(const void *a, const void *b)
{
    const lab_s *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? 1 : -1;
    return (x->l > y->l) - (x->l < y->l);
}

/* The blend's top-k from xmc_model_topk equals the blend of every label's
 * logit with K, ranked in full. */
static void test_blend_is_exact(void **state)
{
    (void)state;
    xmc_train_config c;
    config(&c, 7);
    c.knn_weight = 0.6f; /* large enough that neighbours move labels in */
    const char *dir = tu_path("blend");
    tu_train_ok(&c, dir, 0);
    xmc_error err = {0};
    xmc_model *m = NULL;
    assert_int_equal(xmc_model_load(dir, 0, &m, &err), XMC_OK);
    const xmc_neighbors *nb = xmc_model_neighbors(m);
    assert_non_null(nb);
    xmc_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.label_vocab = xmc_model_label_names(m);
    xmc_dataset *ds = NULL;
    assert_int_equal(xmc_dataset_load(tu_news_spec(), &lo, &ds, &err), XMC_OK);
    xmc_enc_data *d = NULL;
    assert_int_equal(xmc_model_prepare(m, ds, &d, &err), XMC_OK);
    xmc_model_stats st;
    xmc_model_get_stats(m, &st);
    const int L = (int)st.n_labels, k = 2, n = (int)d->n;
    int32_t *lab_all = malloc(sizeof(int32_t) * (size_t)n * L), *lab = malloc(sizeof(int32_t) * (size_t)n * k);
    float *sc_all = malloc(sizeof(float) * (size_t)n * L), *sc = malloc(sizeof(float) * (size_t)n * k);
    float *E = malloc(sizeof(float) * (size_t)n * (size_t)st.dim);
    assert_non_null(lab_all);
    assert_non_null(E);
    xmc_model_use_neighbors(m, 0);
    assert_int_equal(xmc_model_topk(m, d, L, lab_all, sc_all, &err), XMC_OK); /* logits */
    xmc_model_use_neighbors(m, 1);
    assert_int_equal(xmc_model_topk(m, d, k, lab, sc, &err), XMC_OK);
    assert_int_equal(xmc_model_embed(m, d, 0, n, E, &err), XMC_OK);
    xmc_csr *K = NULL;
    assert_int_equal(xmc_neighbors_scores(nb, E, n, 7, c.knn_temp, &K, &err), XMC_OK);
    const float a = c.knn_weight;
    int moved = 0; /* rows whose blended top-1 is not the classifier's */
    lab_s *all = malloc(sizeof(lab_s) * (size_t)L);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < L; j++) {
            int32_t l = lab_all[(size_t)i * L + j];
            float x = sc_all[(size_t)i * L + j];
            all[j] = (lab_s){l, (1 - a) / (1 + expf(-x)) + a * kval(K, i, l)};
        }
        qsort(all, (size_t)L, sizeof *all, by_score);
        for (int j = 0; j < k; j++) {
            assert_int_equal(lab[(size_t)i * k + j], all[j].l);
            assert_true(fabsf(sc[(size_t)i * k + j] - all[j].s) < 1e-5f);
        }
        moved += lab[(size_t)i * k] != lab_all[(size_t)i * L];
    }
    print_message("blend: %d of %d rows change their top label\n", moved, n);
    free(all);
    xmc_csr_free(K);
    free(lab_all);
    free(lab);
    free(sc_all);
    free(sc);
    free(E);
    xmc_enc_data_free(d);
    xmc_dataset_free(ds);
    xmc_model_free(m);
}

/* Auto: a small renee problem gets 15 neighbours over its labelled rows;
 * spartex none; --knn with spartex is refused. */
static void test_auto_and_refusals(void **state)
{
    (void)state;
    xmc_train_config c;
    config(&c, -1);
    const char *dir = tu_path("auto");
    tu_train_ok(&c, dir, 0);
    xmc_error err = {0};
    xmc_model *m = NULL;
    assert_int_equal(xmc_model_load(dir, 0, &m, &err), XMC_OK);
    assert_int_equal(xmc_model_config(m)->knn, XMC_TRAIN_DEFAULT_KNN);
    assert_non_null(xmc_model_neighbors(m));
    assert_int_equal(xmc_neighbors_rows(xmc_model_neighbors(m)), 150); /* every row labelled */
    xmc_model_free(m);
    assert_int_equal(tu_system("grep -q '\"neighbors\":[[:space:]]*\"neighbors-s' "
                               "'%s/config.json'", dir),
                     0);
    config(&c, -1);
    snprintf(c.recipe, sizeof c.recipe, "spartex");
    c.fan_in = 8;
    dir = tu_path("spx");
    tu_train_ok(&c, dir, 0);
    assert_int_equal(xmc_model_load(dir, 0, &m, &err), XMC_OK);
    assert_int_equal(xmc_model_config(m)->knn, 0);
    assert_null(xmc_model_neighbors(m));
    xmc_model_free(m);
    c.knn = 5;
    tu_assert_error(xmc_train_run(&c, tu_path("spx2"), 0, &err), &err, XMC_EUNSUPPORTED, NULL,
                    0);
    assert_non_null(strstr(err.msg, "--knn"));
    config(&c, 3);
    c.knn_weight = 1.5f;
    err = (xmc_error){0};
    tu_assert_error(xmc_train_run(&c, tu_path("badw"), 0, &err), &err, XMC_EINVAL, NULL, 0);
    assert_false(xmc_file_exists(tu_path("badw")));
}

/* A run cut short after its last checkpoint and before the memory (the
 * manifest does not list one yet) builds the same memory on --resume. */
static void test_resume_builds_memory(void **state)
{
    (void)state;
    xmc_train_config c;
    config(&c, 5);
    const char *dir = tu_path("res");
    tu_train_ok(&c, dir, 0);
    /* the memory aside, and the manifest's entry for it renamed away */
    assert_int_equal(tu_system("cd '%s' && mv neighbors-s*.bin ../res-keep.bin && sed -i "
                               "'s/\"neighbors\":\\([[:space:]]*\\)\"neighbors-s/\"was\":\\1\"neighbors-s/' "
                               "config.json && ! grep -q '\"neighbors\":[[:space:]]*\"' "
                               "config.json",
                               dir),
                     0);
    xmc_error err = {0};
    xmc_model *m = NULL;
    assert_int_equal(xmc_model_load(dir, 0, &m, &err), XMC_OK);
    assert_null(xmc_model_neighbors(m));
    xmc_model_free(m);
    xmc_train_config r;
    xmc_train_config_default(&r);
    tu_train_ok(&r, dir, 1);
    assert_int_equal(tu_system("cmp '%s/../res-keep.bin' '%s'/neighbors-s*.bin", dir, dir), 0);
    assert_int_equal(xmc_model_load(dir, 0, &m, &err), XMC_OK);
    assert_non_null(xmc_model_neighbors(m));
    xmc_model_free(m);
    /* and a complete model with its memory has nothing left to do */
    tu_train_ok(&r, dir, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scores_by_hand),
        cmocka_unit_test(test_file_round_trip_and_damage),
        cmocka_unit_test(test_blend_is_exact),
        cmocka_unit_test(test_auto_and_refusals),
        cmocka_unit_test(test_resume_builds_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
