/* Ensembles (model.h, xmc_train_config.ensemble; src/model/ensemble.c): the
 * merged model scores every label with exactly the mean of its members'
 * scores, each member being the plain run of its seed (sparse encoder with
 * two layers and a bottleneck: block-diagonal merge; tf-idf bag: column
 * blocks and the shared idf); an interrupted ensemble resumes
 * bit-identically; auto takes 3 members on a small renee problem and 1
 * for spartex; what cannot merge is refused up front. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "xmc/data.h"
#include "xmc/encoder.h"
#include "xmc/model.h"

/* XC-format features file (N F L header; "l1,l2 f:v ...") of a planted
 * task: label l is on when feature 2l or 2l+1 is, plus noise features. */
static const char *planted_file(int n, int L)
{
    const char *p = tu_path("planted.txt");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    xmc_rng r;
    xmc_rng_seed(&r, 5, 0);
    const int F = 2 * L + 30;
    fprintf(f, "%d %d %d\n", n, F, L);
    for (int i = 0; i < n; i++) {
        int l1 = (int)xmc_rng_below(&r, (uint64_t)L), l2 = (int)xmc_rng_below(&r, (uint64_t)L);
        int two = i % 3 == 0 && l2 != l1;
        if (two && l2 < l1) {
            int t = l1;
            l1 = l2;
            l2 = t;
        }
        if (two)
            fprintf(f, "%d,%d", l1, l2);
        else
            fprintf(f, "%d", l1);
        char on[512] = {0};
        on[2 * l1 + (int)xmc_rng_below(&r, 2)] = 1;
        if (two)
            on[2 * l2 + (int)xmc_rng_below(&r, 2)] = 1;
        for (int k = 0; k < 3; k++)
            on[2 * L + (int)xmc_rng_below(&r, 30)] = 1;
        for (int j = 0; j < F; j++)
            if (on[j])
                fprintf(f, " %d:1", j);
        fprintf(f, "\n");
    }
    fclose(f);
    return p;
}

static void config(xmc_train_config *c, const char *spec, int ensemble)
{
    xmc_train_config_default(c);
    c->dim = 16;
    c->batch = 16;
    c->epochs = 2;
    c->seed = 7;
    c->threads = 2;
    c->eval_every = 0;
    c->ensemble = ensemble;
    snprintf(c->train_spec, sizeof c->train_spec, "%s", spec);
}

/* Every label's score of every row of spec under the model in dir (n x L,
 * caller frees); its ensemble config in *members / *member. */
static float *all_scores(const char *dir, const char *spec, int64_t *n, int64_t *L,
                         int *members, int *member)
{
    xmc_error err = {0};
    xmc_model *m = NULL;
    assert_int_equal(xmc_model_load(dir, 0, &m, &err), XMC_OK);
    xmc_model_use_neighbors(m, 0); /* the classifiers' scores (the merge's subject) */
    *members = xmc_model_config(m)->ensemble;
    *member = xmc_model_config(m)->ensemble_member;
    xmc_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.label_vocab = xmc_model_label_names(m);
    xmc_dataset *ds = NULL;
    assert_int_equal(xmc_dataset_load(spec, &lo, &ds, &err), XMC_OK);
    xmc_model_stats st;
    xmc_model_get_stats(m, &st);
    *L = st.n_labels;
    *n = ds->n;
    xmc_csr *P = NULL;
    assert_int_equal(xmc_model_predict(m, ds, (int)*L, &P, &err), XMC_OK);
    float *S = calloc((size_t)(*n * *L), sizeof *S);
    assert_non_null(S);
    for (int64_t i = 0; i < *n; i++) {
        assert_int_equal(P->indptr[i + 1] - P->indptr[i], *L); /* every label scored */
        for (int64_t j = P->indptr[i]; j < P->indptr[i + 1]; j++)
            S[i * *L + P->indices[j]] = P->values[j];
    }
    xmc_csr_free(P);
    xmc_dataset_free(ds);
    xmc_model_free(m);
    return S;
}

/* Train an ensemble of n from c, and its members as plain runs of seeds
 * seed..seed+n-1; the ensemble's scores must be their mean. */
static void check_mean(xmc_train_config *c, int n, const char *name)
{
    char dir[600], one[700];
    snprintf(dir, sizeof dir, "%s", tu_path(name));
    tu_train_ok(c, dir, 0);
    int64_t N, L;
    int members, member;
    float *E = all_scores(dir, c->train_spec, &N, &L, &members, &member);
    assert_int_equal(members, n);
    assert_int_equal(member, -1);
    snprintf(one, sizeof one, "%s/member-0", dir);
    assert_false(xmc_file_exists(one)); /* merged, then removed */
    float *mean = calloc((size_t)(N * L), sizeof *mean);
    assert_non_null(mean);
    xmc_train_config p = *c;
    p.ensemble = 1;
    for (int k = 0; k < n; k++) {
        p.seed = c->seed + (uint64_t)k;
        snprintf(one, sizeof one, "%s-plain%d", dir, k);
        tu_train_ok(&p, one, 0);
        int64_t N1, L1;
        float *S = all_scores(one, c->train_spec, &N1, &L1, &members, &member);
        assert_int_equal(N1, N);
        assert_int_equal(L1, L);
        assert_int_equal(members, 1);
        for (int64_t i = 0; i < N * L; i++)
            mean[i] += S[i] / (float)n;
        free(S);
    }
    double e = tu_rel_err(E, mean, (size_t)(N * L), 1e-5, 1e-4);
    print_message("%s: ensemble of %d vs the mean of its members: max err %.3g of tolerance\n",
                  name, n, e);
    assert_true(e <= 1.0);
    /* and it is not just one member (they differ) */
    snprintf(one, sizeof one, "%s-plain0", dir);
    float *S0 = all_scores(one, c->train_spec, &N, &L, &members, &member);
    assert_true(tu_rel_err(E, S0, (size_t)(N * L), 1e-5, 1e-4) > 10);
    free(S0);
    free(E);
    free(mean);
}

static void test_sparse_block_diagonal(void **state)
{
    (void)state;
    xmc_train_config c;
    config(&c, planted_file(300, 16), 2);
    c.layers = 2;     /* W2: block-diagonal */
    c.bottleneck = 8; /* P: block-diagonal */
    c.dropout = 0.3f;
    check_mean(&c, 2, "sparse");
    /* config.json records the width of the merged model */
    xmc_model *m = NULL;
    xmc_error err = {0};
    assert_int_equal(xmc_model_load(tu_path("sparse"), 0, &m, &err), XMC_OK);
    xmc_model_stats st;
    xmc_model_get_stats(m, &st);
    assert_int_equal(st.dim, 16);
    assert_int_equal(xmc_model_config(m)->dim, 32);
    xmc_model_free(m);
    /* a merged ensemble is final: --resume has nothing to do */
    xmc_train_config r;
    xmc_train_config_default(&r);
    tu_train_ok(&r, tu_path("sparse"), 1);
    /* a malformed "ensemble" is refused on load, naming the file */
    assert_int_equal(tu_system("cd '%s' && sed -i 's/\"member\":[[:space:]]*null/\"member\": 5/' "
                               "config.json && grep -q '\"member\": 5' config.json",
                               tu_path("sparse")),
                     0);
    assert_int_equal(xmc_model_load(tu_path("sparse"), 0, &m, &err), XMC_ECORRUPT);
    assert_non_null(strstr(err.msg, "ensemble: expected"));
    assert_non_null(strstr(err.path, "config.json"));
}

static void test_bag_auto_three(void **state)
{
    (void)state;
    xmc_train_config c;
    config(&c, tu_news_spec(), 0); /* auto: a small renee problem -> 3 */
    c.buckets = 4096;
    check_mean(&c, 3, "bag");
}

static void test_resume_bit_identical(void **state)
{
    (void)state;
    xmc_train_config c;
    config(&c, planted_file(300, 16), 2);
    c.bottleneck = 8;
    const char *a = tu_path("full");
    tu_train_ok(&c, a, 0);
    /* One epoch per invocation: 2 members x 2 epochs = 4 invocations. */
    const char *b = tu_path("parts");
    c.stop_after = 1;
    tu_train_ok(&c, b, 0);
    char cfg[700];
    snprintf(cfg, sizeof cfg, "%s/config.json", b);
    int runs = 1;
    xmc_train_config r;
    xmc_train_config_default(&r);
    r.stop_after = 1;
    r.threads = 2;
    while (!xmc_file_exists(cfg) && runs < 8) {
        tu_train_ok(&r, b, 1);
        runs++;
    }
    assert_int_equal(runs, 4);
    assert_int_equal(tu_system("cd '%s' && for f in encoder-*.bin head-*.bin labels.txt; do "
                               "[ -e \"$f\" ] || continue; cmp -s \"$f\" '%s'/\"$f\" || exit 1; "
                               "done; ls encoder-*.bin head-*.bin >/dev/null",
                               a, b),
                     0);
    /* no encoder optimizer state is kept, and the members are gone */
    assert_int_equal(tu_system("! ls '%s' | grep -q -e optim -e member", b), 0);
}

/* The memory plan counts the merge (the wide model and one member at
 * once): its wide encoder is, byte for byte, the merged model's; the merge
 * is the larger phase; a budget between training a member and merging
 * refuses before the first member trains, naming --ensemble 1. */
static void test_plan_counts_merge(void **state)
{
    (void)state;
    xmc_train_config c;
    xmc_error err = {0};
    config(&c, planted_file(300, 16), 2);
    c.layers = 2;
    c.bottleneck = 8;
    c.dropout = 0.3f;
    xmc_dataset *ds = NULL;
    assert_int_equal(xmc_dataset_load(c.train_spec, NULL, &ds, &err), XMC_OK);
    xmc_model_plan p, one;
    assert_int_equal(xmc_model_plan_memory(&c, ds, &p, &err), XMC_OK);
    xmc_train_config c1 = c;
    c1.ensemble = 1;
    assert_int_equal(xmc_model_plan_memory(&c1, ds, &one, &err), XMC_OK);
    assert_int_equal(p.ensemble, 2);
    assert_int_equal(one.ensemble, 1);
    assert_int_equal(one.merge_bytes, 0);
    assert_true(p.merge_bytes > one.total); /* merging is the peak */
    assert_int_equal(p.total, p.merge_bytes);
    char line[1024];
    xmc_model_plan_format(&p, line, sizeof line);
    assert_non_null(strstr(line, "ensemble of 2"));

    /* the wide encoder the plan counts is the one the merge makes */
    tu_train_ok(&c, tu_path("planned"), 0);
    xmc_model *m = NULL, *m1 = NULL;
    assert_int_equal(xmc_model_load(tu_path("planned"), 0, &m, &err), XMC_OK);
    assert_int_equal(xmc_model_create(&c1, ds, &m1, &err), XMC_OK);
    size_t wide = 0;
    assert_int_equal(xmc_encoder_ensemble_bytes(&xmc_model_encoder(m1)->cfg, 2, &wide, &err),
                     XMC_OK);
    assert_int_equal(wide, xmc_encoder_bytes(xmc_model_encoder(m)));
    assert_true(wide >= 2 * xmc_encoder_bytes(xmc_model_encoder(m1))); /* W2, P: 4x */
    xmc_model_free(m);
    xmc_model_free(m1);

    /* room to train a member but not to merge: refused up front */
    c.mem_budget = (int64_t)(one.total + p.merge_bytes) / 2;
    const char *dir = tu_path("too-big");
    xmc_error_clear(&err);
    assert_int_equal(xmc_train_run(&c, dir, 0, &err), XMC_ENOMEM);
    assert_non_null(strstr(err.msg, "ensemble of 2"));
    assert_non_null(strstr(err.msg, "--ensemble 1"));
    assert_false(xmc_file_exists(dir));
    c.ensemble = 1; /* a single model fits */
    tu_train_ok(&c, dir, 0);
    xmc_dataset_free(ds);
}

static void test_refusals(void **state)
{
    (void)state;
    xmc_train_config c;
    xmc_error err = {0};
    const char *spec = planted_file(300, 16);
    config(&c, spec, -1);
    assert_int_equal(xmc_train_run(&c, tu_path("x"), 0, &err), XMC_EINVAL);
    assert_non_null(strstr(err.msg, "--ensemble -1"));
    config(&c, spec, 2);
    snprintf(c.recipe, sizeof c.recipe, "spartex");
    xmc_error_clear(&err);
    assert_int_equal(xmc_train_run(&c, tu_path("x"), 0, &err), XMC_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "recipe renee"));
    config(&c, spec, 2);
    c.intermediate = 8;
    xmc_error_clear(&err);
    assert_int_equal(xmc_train_run(&c, tu_path("x"), 0, &err), XMC_EUNSUPPORTED);
    config(&c, spec, 2);
    xmc_error_clear(&err);
    assert_int_equal(xmc_train_run(&c, NULL, 0, &err), XMC_EINVAL);
    assert_non_null(strstr(err.msg, "model directory"));
    /* auto is one model for spartex */
    config(&c, spec, 0);
    snprintf(c.recipe, sizeof c.recipe, "spartex");
    c.fan_in = 8;
    c.epochs = 1;
    tu_train_ok(&c, tu_path("sx"), 0);
    assert_int_equal(tu_system("grep -q '\"members\":[[:space:]]*1' '%s/config.json'",
                               tu_path("sx")),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sparse_block_diagonal),
        cmocka_unit_test(test_bag_auto_three),
        cmocka_unit_test(test_resume_bit_identical),
        cmocka_unit_test(test_plan_counts_merge),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
