/* The "bert" encoder kind: through the encoder framework it gives the same
 * embeddings and gradients as the model used directly (dropout included:
 * same seed, same masks), the framework's flat buffers are the model's
 * weights, and bad configurations are reported. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/bert.h"
#include "xmc/encoder.h"
#include "xmc/tokenizer.h"

static const char *model_dir(void)
{
    static char b[200];
    const char *base = getenv("XMC_SOURCE_DIR");
    snprintf(b, sizeof b, "%.160s/tests/data/bert/bert", base ? base : ".");
    return b;
}

static const char *texts[6] = {"tok1 tok2 tok3", "tok50 tok7",      "tok9",
                               "tok3 tok3 tok3 tok3 tok3 tok3 tok3 tok3 tok3 tok3 tok3 tok3 x",
                               "",               "tok90, tok91!"};

static void matches_direct_model(const char *opt)
{
    xmc_error e = {0};
    assert_int_equal(xmc_bert_encoder_register(&e), XMC_OK);
    assert_int_equal(xmc_bert_encoder_register(&e), XMC_OK); /* idempotent */
    xmc_encoder_config cfg;
    xmc_encoder_config_default(&cfg, "bert");
    snprintf(cfg.extra, sizeof cfg.extra, "%s,max_len=12%s", model_dir(), opt);
    cfg.max_batch = 4;
    cfg.dropout = 0.0f;
    cfg.seed = 3;
    xmc_encoder *enc;
    if (xmc_encoder_create(&cfg, &enc, &e) != XMC_OK) {
        char buf[1200];
        fail_msg("%s", xmc_error_format(&e, buf, sizeof buf));
    }
    assert_int_equal(enc->dim, 32);
    xmc_dataset ds;
    memset(&ds, 0, sizeof ds);
    assert_int_equal(xmc_texts_create(texts, 6, &ds.texts, &e), XMC_OK);
    ds.n = 6;
    xmc_enc_data *d;
    assert_int_equal(xmc_encoder_prepare(enc, &ds, &d, &e), XMC_OK);

    /* the same model directly, with the same seed (dropout masks) */
    xmc_bert_opts o;
    xmc_bert_opts_default(&o);
    o.max_batch = 4;
    o.max_len = 12;
    o.train = 1;
    o.seed = 3;
    xmc_bert *m;
    assert_int_equal(xmc_bert_load(model_dir(), &o, &m, &e), XMC_OK);
    assert_int_equal(xmc_bert_n_params(m), enc->n_params);
    assert_memory_equal(xmc_bert_params(m), enc->params, sizeof(float) * (size_t)enc->n_params);
    xmc_tokenizer *tok;
    assert_int_equal(xmc_tokenizer_load(model_dir(), NULL, &tok, &e), XMC_OK);
    int64_t rows[4] = {5, 0, 3, 1};
    int32_t ids[4 * 12], lens[4];
    for (int b = 0; b < 4; b++)
        lens[b] = xmc_tokenizer_encode(tok, texts[rows[b]], strlen(texts[rows[b]]), 12,
                                       ids + b * 12);
    assert_int_equal(lens[2], 12); /* truncated */

    float E1[4 * 32], E2[4 * 32], dE[4 * 32];
    for (int i = 0; i < 4 * 32; i++)
        dE[i] = 0.01f * (float)((i * 7) % 13) - 0.05f;
    assert_int_equal(xmc_encoder_forward(enc, d, rows, 4, 1, E1, &e), XMC_OK);
    assert_int_equal(xmc_bert_forward(m, ids, lens, 4, 12, 1, E2, &e), XMC_OK);
    assert_true(tu_rel_err(E1, E2, 4 * 32, 1e-6, 1e-6) <= 1);
    xmc_encoder_zero_grad(enc);
    xmc_bert_zero_grad(m);
    float dE2[4 * 32];
    memcpy(dE2, dE, sizeof dE);
    assert_int_equal(xmc_encoder_backward(enc, dE, 4, &e), XMC_OK);
    assert_int_equal(xmc_bert_backward(m, dE2, &e), XMC_OK);
    assert_true(tu_rel_err(enc->grads, xmc_bert_grads(m), (size_t)enc->n_params, 1e-6, 1e-5) <=
                1);
    /* the framework's buffer IS the model: changing it changes the output */
    enc->params[enc->tensors[0].offset + 32 * 2] += 1.0f; /* [CLS] embedding */
    assert_int_equal(xmc_encoder_forward(enc, d, rows, 4, 0, E1, &e), XMC_OK);
    assert_int_equal(xmc_bert_forward(m, ids, lens, 4, 12, 0, E2, &e), XMC_OK);
    assert_true(tu_rel_err(E1, E2, 4 * 32, 1e-4, 0) > 1);
    assert_true(strstr(enc->tensors[5].name, "encoder.layer.0.attention.self.query") != NULL);
    assert_int_equal(enc->tensors[8].no_decay, 1); /* query bias */

    xmc_tokenizer_free(tok);
    xmc_bert_free(m);
    xmc_enc_data_free(d);
    xmc_texts_free(ds.texts);
    /* no texts */
    memset(&ds, 0, sizeof ds);
    ds.n = 1;
    assert_int_equal(xmc_encoder_prepare(enc, &ds, &d, &e), XMC_EINVAL);
    xmc_encoder_free(enc);
}

static void test_matches_direct_model(void **state)
{
    (void)state;
    matches_direct_model("");
    matches_direct_model(",recompute,pool=mean");
}

static void test_bad_config(void **state)
{
    (void)state;
    xmc_error e = {0};
    assert_int_equal(xmc_bert_encoder_register(&e), XMC_OK);
    xmc_encoder_config cfg;
    xmc_encoder_config_default(&cfg, "bert");
    xmc_encoder *enc = NULL;
    assert_int_equal(xmc_encoder_create(&cfg, &enc, &e), XMC_EINVAL);
    assert_non_null(strstr(e.msg, "model directory"));
    snprintf(cfg.extra, sizeof cfg.extra, "%s,max_len=x", model_dir());
    xmc_error_clear(&e);
    assert_int_equal(xmc_encoder_create(&cfg, &enc, &e), XMC_EINVAL);
    snprintf(cfg.extra, sizeof cfg.extra, "%s,colour=blue", model_dir());
    xmc_error_clear(&e);
    assert_int_equal(xmc_encoder_create(&cfg, &enc, &e), XMC_EINVAL);
    snprintf(cfg.extra, sizeof cfg.extra, "%s", tu_path("nope"));
    xmc_error_clear(&e);
    int rc = xmc_encoder_create(&cfg, &enc, &e);
    tu_assert_error(rc, &e, XMC_EIO, "nope/config.json", 0);
    assert_null(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_direct_model),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
