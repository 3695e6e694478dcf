/* xmc_train_run with recipe "spartex" (docs/spartex.md): the Renee loop with
 * the fixed fan-in head (ffi.h). The model directory records the recipe,
 * fan-in and rewiring schedule and loads back with an xmc_ffi head; the head
 * holds (4 + 4) F bytes per label + SGDM momentum; the schedule rewires and
 * then freezes the topology; a run stopped after one epoch and resumed ends
 * bit-identical to an uninterrupted one, with and without the auxiliary
 * meta-classifier (--aux-clusters) and with the intermediate layer; the
 * memory plan equals what create allocates and a budget below it refuses
 * up front; bad settings fail before any data is read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/internal.h" /* model_aux_setup: the meta head outside the loop */
#include "testutil.h"
#include "xmc/ffi.h"
#include "xmc/model.h"
#include "xmc/synth.h"

static const char *synth_spec(void)
{
    static char spec[1000];
    static int done;
    const char *d = tu_path("data");
    if (!done) {
        xmc_synth_config sc;
        xmc_synth_config_default(&sc);
        sc.n_points = 2000;
        sc.n_labels = 200;
        sc.seed = 3;
        xmc_error err = {0};
        assert_int_equal(xmc_synth_write(&sc, d, NULL, &err), XMC_OK);
        done = 1;
    }
    snprintf(spec, sizeof spec, "%s/trn", d);
    return spec;
}

static void spx_config(xmc_train_config *c)
{
    xmc_train_config_default(c);
    snprintf(c->recipe, sizeof c->recipe, "spartex");
    c->dim = 64;
    c->batch = 64;
    c->epochs = 2;
    c->seed = 5;
    c->threads = 2;
    c->fan_in = 16;
    c->rewire_interval = 7;
    snprintf(c->train_spec, sizeof c->train_spec, "%s", synth_spec());
}

static void *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc((size_t)sz + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static void same_file(const char *a, const char *b)
{
    size_t na, nb;
    void *x = slurp(a, &na), *y = slurp(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na);
    free(x);
    free(y);
}

/* Resume the stopped run in `part` to the end, as `xmc train --resume` does:
 * a default config, everything else read from the directory. */
static void resume_run(const char *part, xmc_error *err)
{
    xmc_train_config r;
    xmc_train_config_default(&r);
    r.threads = 2;
    assert_int_equal(xmc_train_run(&r, part, 1, err), XMC_OK);
}

/* The encoder, head and optimizer checkpoints at `step` (e.g. "s75") are
 * byte-identical in `full` and `part`. */
static void same_checkpoints(const char *full, const char *part, const char *step)
{
    const char *names[3] = {"encoder", "head", "optim"};
    for (int i = 0; i < 3; i++) {
        char a[1200], b[1200];
        snprintf(a, sizeof a, "%s/%s-%s.bin", full, names[i], step);
        snprintf(b, sizeof b, "%s/%s-%s.bin", part, names[i], step);
        same_file(a, b);
    }
}

static void test_spartex_dir(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_train_config c;
    spx_config(&c);
    const char *d = tu_path("spx");
    assert_int_equal(xmc_train_run(&c, d, 0, &err), XMC_OK);
    assert_int_equal(tu_system("grep -q '\"recipe\":[[:space:]]*\"spartex\"' '%s/config.json'", d),
                     0);
    assert_int_equal(tu_system("grep -q '\"fan_in\":[[:space:]]*16' '%s/config.json'", d), 0);
    xmc_model *m = NULL;
    assert_int_equal(xmc_model_load(d, 0, &m, &err), XMC_OK);
    assert_null(xmc_model_head(m));
    const xmc_ffi *h = xmc_model_ffi_head(m);
    assert_non_null(h);
    const xmc_ffi_config *fc = xmc_ffi_get_config(h);
    assert_int_equal(fc->fan_in, 16);
    assert_int_equal(fc->d_in, 64);
    assert_int_equal(fc->n_labels, 200);
    /* (4 + 4) F of weights and indices + 4 F of SGD momentum per label. */
    assert_int_equal(xmc_ffi_bytes_per_label(fc), 12 * 16);
    xmc_model_stats st;
    xmc_model_get_stats(m, &st);
    assert_int_equal(st.head_params, 200 * 16);
    assert_int_equal(st.head_bytes, (size_t)200 * 8 * 16);
    assert_int_equal(xmc_model_config(m)->rewire_interval, 7);
    /* 50 steps, rewire every 7 until step 33: rounds at 7 .. 28, frozen. */
    assert_int_equal(xmc_ffi_rewire_rounds(h), 4);
    assert_true(xmc_ffi_frozen(h));
    /* Prediction works through the sparse head. */
    xmc_dataset *ds = NULL;
    xmc_load_opts lo;
    memset(&lo, 0, sizeof lo);
    assert_int_equal(xmc_dataset_load(synth_spec(), &lo, &ds, &err), XMC_OK);
    xmc_csr *P = NULL;
    assert_int_equal(xmc_model_predict(m, ds, 5, &P, &err), XMC_OK);
    assert_int_equal(P->nrows, ds->n);
    assert_int_equal(P->indptr[P->nrows], ds->n * 5);
    xmc_csr_free(P);
    xmc_dataset_free(ds);
    xmc_model_free(m);
}

static void test_spartex_resume_bit_identical(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_train_config c;
    spx_config(&c);
    c.epochs = 3;
    const char *full = tu_path("full"), *part = tu_path("part");
    assert_int_equal(xmc_train_run(&c, full, 0, &err), XMC_OK);
    c.stop_after = 1;
    assert_int_equal(xmc_train_run(&c, part, 0, &err), XMC_OK);
    resume_run(part, &err);
    same_checkpoints(full, part, "s75");
}

/* --aux-clusters: the meta head is saved with each checkpoint until its
 * cutoff epoch, then dropped; resume across it is bit-identical. */
static void test_spartex_aux_resume(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_train_config c;
    spx_config(&c);
    c.epochs = 3;
    c.aux_clusters = 8;
    c.meta_cutoff_epoch = 2;
    const char *full = tu_path("afull"), *part = tu_path("apart");
    assert_int_equal(xmc_train_run(&c, full, 0, &err), XMC_OK);
    c.stop_after = 1;
    assert_int_equal(xmc_train_run(&c, part, 0, &err), XMC_OK);
    assert_int_equal(tu_system("test -f '%s/meta-s25.bin'", part), 0);
    assert_int_equal(tu_system("grep -q '\"aux_clusters\":[[:space:]]*8' '%s/config.json'", part),
                     0);
    resume_run(part, &err);
    assert_int_not_equal(tu_system("ls '%s'/meta-* 2>/dev/null", part), 0);
    same_checkpoints(full, part, "s75");
    /* The meta head changes training: not the same as without it. */
    spx_config(&c);
    c.epochs = 3;
    const char *plain = tu_path("aplain");
    assert_int_equal(xmc_train_run(&c, plain, 0, &err), XMC_OK);
    assert_int_not_equal(tu_system("cmp -s '%s/head-s75.bin' '%s/head-s75.bin'", plain, full), 0);
}

/* A spartex step with the meta head and the intermediate layer on
 * allocates nothing, rewiring rounds included: their scratch is sized when
 * the head and the encoder are created. */
static void test_spartex_step_allocates_nothing(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_train_config c;
    spx_config(&c);
    c.aux_clusters = 8;
    c.rewire_interval = 2;
    c.intermediate = 48; /* its scratch is sized at create too */
    xmc_dataset *ds = NULL;
    xmc_load_opts lo;
    memset(&lo, 0, sizeof lo);
    assert_int_equal(xmc_dataset_load(c.train_spec, &lo, &ds, &err), XMC_OK);
    xmc_model *m = NULL;
    assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_OK);
    assert_int_equal(model_aux_setup(m, ds, &err), XMC_OK);
    assert_non_null(m->meta);
    xmc_enc_data *d = NULL;
    assert_int_equal(xmc_model_prepare(m, ds, &d, &err), XMC_OK);
    int64_t rows[64];
    for (int i = 0; i < 64; i++)
        rows[i] = (i * 7) % ds->n;
    double loss = 0;
    assert_int_equal(xmc_model_step(m, d, ds->Y, rows, 64, &loss, &err), XMC_OK);
    uint64_t a0 = xmc_mem_alloc_count();
    for (int s = 0; s < 6; s++) {
        for (int i = 0; i < 64; i++)
            rows[i] = (rows[i] + 13) % ds->n;
        assert_int_equal(xmc_model_step(m, d, ds->Y, rows, s % 2 ? 64 : 17, &loss, &err),
                         XMC_OK);
    }
    assert_int_equal(xmc_mem_alloc_count(), a0);
    assert_true(xmc_ffi_rewire_rounds(m->ffi) >= 3); /* rounds at steps 2, 4, 6 */
    assert_true(loss > 0);
    xmc_enc_data_free(d);
    xmc_model_free(m);
    xmc_dataset_free(ds);
}

/* --intermediate: encoder h -> d_int (ReLU) -> sparse head over d_int. The
 * directory records it, the model loads with it (the head's inputs are the
 * layer's outputs), and resume through it is bit-identical. */
static void test_spartex_intermediate(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_train_config c;
    spx_config(&c);
    c.epochs = 2;
    c.intermediate = 96;
    c.aux_clusters = 8;
    const char *full = tu_path("ifull"), *part = tu_path("ipart");
    assert_int_equal(xmc_train_run(&c, full, 0, &err), XMC_OK);
    assert_int_equal(
        tu_system("grep -q '\"intermediate\":[[:space:]]*96' '%s/config.json'", full), 0);
    assert_int_equal(
        tu_system("grep -q '\"intermediate_activation\":[[:space:]]*\"relu\"' '%s/config.json'",
                  full),
        0);
    xmc_model *m = NULL;
    assert_int_equal(xmc_model_load(full, 0, &m, &err), XMC_OK);
    const xmc_encoder *e = xmc_model_encoder(m);
    assert_int_equal(e->dim, 96);
    assert_int_equal(e->base_dim, 64);
    assert_int_equal(e->cfg.intermediate_relu, 1);
    assert_int_equal(xmc_ffi_get_config(xmc_model_ffi_head(m))->d_in, 96);
    assert_int_equal(xmc_model_config(m)->intermediate, 96);
    xmc_model_stats st;
    xmc_model_get_stats(m, &st);
    assert_int_equal(st.dim, 96);
    xmc_model_free(m);
    c.stop_after = 1;
    assert_int_equal(xmc_train_run(&c, part, 0, &err), XMC_OK);
    resume_run(part, &err);
    same_checkpoints(full, part, "s50");
}

/* xmc_model_plan_memory (computed before the head exists) equals the bytes
 * the created model reports, for the dense head (SGDM, Adam) and the fixed
 * fan-in head (with the intermediate layer); a budget one byte below the
 * plan makes xmc_model_create fail with the accounting and leak nothing. */
static void test_memory_plan(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_dataset *ds = NULL;
    assert_int_equal(xmc_dataset_load(synth_spec(), NULL, &ds, &err), XMC_OK);
    for (int v = 0; v < 4; v++) {
        xmc_train_config c;
        spx_config(&c);
        if (v < 2)
            snprintf(c.recipe, sizeof c.recipe, "renee");
        c.head_opt = v == 1 ? XMC_HEAD_ADAM : XMC_HEAD_SGDM;
        c.intermediate = v == 3 ? 80 : 0;
        c.ensemble = 1; /* one model: what xmc_model_create makes */
        xmc_model_plan p;
        assert_int_equal(xmc_model_plan_memory(&c, ds, &p, &err), XMC_OK);
        xmc_model *m = NULL;
        assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_OK);
        xmc_model_stats st;
        xmc_model_get_stats(m, &st);
        assert_int_equal(p.n_labels, 200);
        assert_int_equal(p.dim, v == 3 ? 80 : 64);
        assert_int_equal(p.fan_in, v >= 2 ? 16 : 0);
        assert_int_equal(p.head_param_bytes, st.head_bytes);
        assert_int_equal(p.encoder_bytes, xmc_encoder_bytes(xmc_model_encoder(m)));
        /* optim_bytes = encoder moments + head state. */
        assert_int_equal(p.encoder_optim_bytes + p.head_state_bytes, st.optim_bytes);
        assert_int_equal(p.head_state_bytes, (size_t)200 * (v == 0   ? 64 * 4
                                                             : v == 1 ? 64 * 8
                                                                      : 16 * 4));
        assert_true(p.total > p.head_param_bytes + p.head_state_bytes);
        assert_true(p.budget > 0); /* the default budget: memory available now */
        xmc_model_free(m);
        m = NULL;
        /* One byte short: refused before the head exists, nothing leaked. */
        c.mem_budget = (int64_t)p.total - 1;
        size_t before = xmc_mem_current();
        xmc_error_clear(&err);
        assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_ENOMEM);
        assert_null(m);
        assert_int_equal(xmc_mem_current(), before);
        assert_non_null(strstr(err.msg, "memory plan"));
        assert_non_null(strstr(err.msg, "EXCEEDS the budget"));
        assert_non_null(strstr(err.msg, v >= 2 ? "fixed fan-in F=16" : "dense classifier"));
        /* Exactly the plan: allowed; < 0: no check at all. */
        c.mem_budget = (int64_t)p.total;
        assert_int_equal(xmc_model_create(&c, ds, &m, &err), XMC_OK);
        xmc_model_free(m);
        c.mem_budget = -1;
        assert_int_equal(xmc_model_plan_memory(&c, ds, &p, &err), XMC_OK);
        assert_int_equal(p.budget, 0);
        char line[768];
        xmc_model_plan_format(&p, line, sizeof line);
        assert_non_null(strstr(line, "no budget check"));
    }
    xmc_dataset_free(ds);
}

static void test_spartex_bad_settings(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_train_config c;
    spx_config(&c);
    snprintf(c.train_spec, sizeof c.train_spec, "%s", tu_path("missing.txt"));
    c.fan_in = 0;
    assert_int_equal(xmc_train_run(&c, tu_path("x"), 0, &err), XMC_EINVAL);
    assert_non_null(strstr(err.msg, "fan-in"));
    spx_config(&c);
    snprintf(c.train_spec, sizeof c.train_spec, "%s", tu_path("missing.txt"));
    c.rewire_fraction = 1.5;
    xmc_error_clear(&err);
    assert_int_equal(xmc_train_run(&c, tu_path("x"), 0, &err), XMC_EINVAL);
    spx_config(&c);
    c.bf16 = 1;
    xmc_error_clear(&err);
    assert_int_equal(xmc_train_run(&c, tu_path("y"), 0, &err), XMC_EUNSUPPORTED);
    spx_config(&c);
    snprintf(c.train_spec, sizeof c.train_spec, "%s", tu_path("missing.txt"));
    c.aux_scale = 1.5f;
    xmc_error_clear(&err);
    assert_int_equal(xmc_train_run(&c, tu_path("x"), 0, &err), XMC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spartex_dir),
        cmocka_unit_test(test_spartex_resume_bit_identical),
        cmocka_unit_test(test_spartex_aux_resume),
        cmocka_unit_test(test_spartex_step_allocates_nothing),
        cmocka_unit_test(test_spartex_intermediate),
        cmocka_unit_test(test_memory_plan),
        cmocka_unit_test(test_spartex_bad_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
