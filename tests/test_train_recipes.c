/* xmc_train_run beyond the plain Renee run: --augment (Gandalf label points)
 * is recorded in config.json and survives load; bad recipe strings fail
 * before any data is read; unidec / depsl model directories (recipe in
 * config.json, unidec.bin, labels.txt) load for prediction and refuse
 * --resume and the Renee loader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/data.h"
#include "xmc/model.h"

static void small_config(xmc_train_config *c, const char *spec)
{
    xmc_train_config_default(c);
    c->dim = 16;
    c->batch = 16;
    c->epochs = 1;
    c->buckets = 4096;
    c->seed = 7;
    c->threads = 2;
    snprintf(c->train_spec, sizeof c->train_spec, "%s", spec);
}

static void test_augment_recorded(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_train_config c;
    small_config(&c, tu_news_spec());
    snprintf(c.augment, sizeof c.augment, "gandalf:0.2");
    const char *d = tu_path("aug");
    assert_int_equal(xmc_train_run(&c, d, 0, &err), XMC_OK);
    xmc_model *m = NULL;
    assert_int_equal(xmc_model_load(d, 0, &m, &err), XMC_OK);
    assert_string_equal(xmc_model_config(m)->augment, "gandalf:0.2");
    xmc_model_stats st;
    xmc_model_get_stats(m, &st);
    assert_int_equal(st.n_labels, 3);
    assert_non_null(xmc_model_label_names(m));
    xmc_model_free(m);
    /* 150 rows + 3 label points were trained on. */
    assert_int_equal(tu_system("grep -q '\"n_train\":[[:space:]]*153' '%s/config.json'", d), 0);

    /* Without --augment the key is null and loads as "". */
    small_config(&c, tu_news_spec());
    d = tu_path("plain");
    assert_int_equal(xmc_train_run(&c, d, 0, &err), XMC_OK);
    assert_int_equal(xmc_model_load(d, 0, &m, &err), XMC_OK);
    assert_string_equal(xmc_model_config(m)->augment, "");
    xmc_model_free(m);
}

static void test_bad_settings_fail_first(void **state)
{
    (void)state;
    xmc_train_config c;
    /* The spec does not exist: EINVAL (not EIO) shows nothing was read. */
    small_config(&c, tu_path("missing.txt"));
    snprintf(c.augment, sizeof c.augment, "gandalf:2");
    xmc_error err = {0};
    assert_int_equal(xmc_train_run(&c, tu_path("x"), 0, &err), XMC_EINVAL);
    small_config(&c, tu_path("missing.txt"));
    snprintf(c.recipe, sizeof c.recipe, "nosuch");
    xmc_error_clear(&err);
    assert_int_equal(xmc_train_run(&c, tu_path("x"), 0, &err), XMC_EINVAL);
    assert_non_null(strstr(err.msg, "nosuch"));
    small_config(&c, tu_path("missing.txt"));
    snprintf(c.recipe, sizeof c.recipe, "unidec");
    snprintf(c.augment, sizeof c.augment, "self:2");
    xmc_error_clear(&err);
    assert_int_equal(xmc_train_run(&c, tu_path("x"), 0, &err), XMC_EINVAL);
    /* unidec/depsl take --augment, but not PIFA label features (texts only) */
    snprintf(c.augment, sizeof c.augment, "self+pifa");
    xmc_error_clear(&err);
    assert_int_equal(xmc_train_run(&c, tu_path("x"), 0, &err), XMC_EINVAL);
    assert_non_null(strstr(err.msg, "'+pifa' label features would not be used"));
}

static void test_unidec_dir(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_train_config c;
    small_config(&c, tu_news_spec());
    snprintf(c.recipe, sizeof c.recipe, "depsl");
    const char *d = tu_path("depsl");
    if (xmc_train_run(&c, d, 0, &err) != XMC_OK) {
        char buf[1200];
        fail_msg("%s", xmc_error_format(&err, buf, sizeof buf));
    }
    char recipe[16];
    assert_int_equal(xmc_model_dir_recipe(d, recipe, sizeof recipe, &err), XMC_OK);
    assert_string_equal(recipe, "depsl");
    assert_true(xmc_recipe_is_unidec(recipe));
    assert_false(xmc_recipe_is_unidec("renee"));
    xmc_unidec *u = NULL;
    xmc_texts *names = NULL;
    assert_int_equal(xmc_model_load_unidec(d, &u, &names, &err), XMC_OK);
    assert_non_null(names);
    assert_int_equal(names->n, 3);
    /* Predict through the loaded model: 150 rows, 3 labels. */
    xmc_dataset *ds = NULL;
    xmc_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.label_vocab = names;
    assert_int_equal(xmc_dataset_load(c.train_spec, &lo, &ds, &err), XMC_OK);
    xmc_csr *P = NULL;
    assert_int_equal(xmc_unidec_predict(u, ds, NULL, 2, XMC_UNIDEC_SCORE_DE, 0, &P, &err),
                     XMC_OK);
    assert_int_equal(P->nrows, 150);
    assert_int_equal(P->ncols, 3);
    xmc_csr_free(P);
    xmc_dataset_free(ds);
    xmc_unidec_free(u);
    xmc_texts_free(names);
    /* The Renee loader refuses it with a message; a finished run leaves no
     * checkpoint, and resuming it has nothing to do (tests/cli/
     * recipes_unidec.sh resumes an unfinished one bit-identically). */
    xmc_model *m = NULL;
    xmc_error_clear(&err);
    assert_int_not_equal(xmc_model_load(d, 0, &m, &err), XMC_OK);
    assert_null(m);
    char ck[4096];
    snprintf(ck, sizeof ck, "%s/%s", d, XMC_UNIDEC_CKPT_FILE);
    assert_false(xmc_file_exists(ck));
    xmc_error_clear(&err);
    xmc_train_config_default(&c);
    assert_int_equal(xmc_train_run(&c, d, 1, &err), XMC_OK);
    /* A Renee directory is not a unidec one. */
    small_config(&c, tu_news_spec());
    const char *r = tu_path("renee");
    xmc_error_clear(&err);
    assert_int_equal(xmc_train_run(&c, r, 0, &err), XMC_OK);
    tu_assert_error(xmc_model_load_unidec(r, &u, &names, &err), &err, XMC_EINVAL, "config.json",
                    0);
    assert_null(u);
    assert_null(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_augment_recorded),
        cmocka_unit_test(test_bad_settings_fail_first),
        cmocka_unit_test(test_unidec_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
