/* The "bert" encoder kind: plugs include/xmc/bert.h into the encoder
 * framework (include/xmc/encoder.h), so every recipe can train a BERT /
 * MiniLM / DistilBERT encoder end to end.
 *
 * config.extra = "MODEL_DIR[,max_len=N][,pool=mean|cls][,recompute]"
 * (max_len defaults to 128, capped by the model's positions; recompute
 * trades ~1/3 more compute for activation memory / n_layers: activations
 * grow with max_batch x max_len, ~20 MB per 1000 tokens per MiniLM layer). declare loads the model and
 * registers its tensors in the framework's table in the model's own order,
 * so the framework's flat buffer has the model's layout; init moves the
 * weights into it (xmc_bert_bind_buffers), after which the framework's
 * AdamW (optim.h) updates them in place and its grads receive backward.
 * prepare tokenises the dataset's texts once (OpenMP) into an id matrix
 * kept in xmc_enc_data.impl; forward gathers the batch's rows into scratch
 * allocated at create (no allocation per step).
 *
 * The model's own dropout (config.json) applies inside the transformer;
 * config.dropout is the framework's dropout on the output embedding.
 * A saved encoder records MODEL_DIR: loading it needs that directory (for
 * config.json and the vocabulary; the weights come from the saved file).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmc/bert.h"
#include "xmc/encoder.h"
#include "xmc/tokenizer.h"

typedef struct bert_kind {
    xmc_bert *m;
    xmc_tokenizer *tok;
    int32_t max_len;
    int32_t *ids;  /* (max_batch, max_len) batch scratch */
    int32_t *lens; /* (max_batch) */
} bert_kind;

static int parse_extra(const char *extra, char *dir, size_t ndir, int *max_len, int *pool,
                       int *recompute, xmc_error *err)
{
    char buf[sizeof((xmc_encoder_config *)0)->extra];
    snprintf(buf, sizeof buf, "%s", extra);
    char *save = NULL, *tok = strtok_r(buf, ",", &save);
    if (!tok || !*tok)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "encoder bert needs a model directory (--model-dir HF_DIR)");
    snprintf(dir, ndir, "%s", tok);
    *max_len = XMC_BERT_DEFAULT_MAX_LEN;
    *pool = XMC_BERT_POOL_MEAN;
    while ((tok = strtok_r(NULL, ",", &save))) {
        if (!strncmp(tok, "max_len=", 8)) {
            char *end;
            long v = strtol(tok + 8, &end, 10);
            if (*end || v < 2 || v > 65536)
                return XMC_ERR(err, XMC_EINVAL, NULL, 0, "max_len '%s': expected 2..65536",
                               tok + 8);
            *max_len = (int)v;
        } else if (!strcmp(tok, "recompute")) {
            *recompute = 1;
        } else if (!strcmp(tok, "pool=mean")) {
            *pool = XMC_BERT_POOL_MEAN;
        } else if (!strcmp(tok, "pool=cls")) {
            *pool = XMC_BERT_POOL_CLS;
        } else {
            return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                           "encoder bert option '%s': expected max_len=N, pool=mean|cls or "
                           "recompute",
                           tok);
        }
    }
    return XMC_OK;
}

static void bert_destroy(xmc_encoder *e)
{
    bert_kind *k = e->impl;
    if (!k)
        return;
    xmc_bert_free(k->m);
    xmc_tokenizer_free(k->tok);
    xmc_free(k->ids);
    xmc_free(k->lens);
    xmc_free(k);
    e->impl = NULL;
}

static int bert_declare(xmc_encoder *e, xmc_error *err)
{
    char dir[sizeof e->cfg.extra];
    int max_len = 0, pool = 0, recompute = 0;
    int rc = parse_extra(e->cfg.extra, dir, sizeof dir, &max_len, &pool, &recompute, err);
    if (rc != XMC_OK)
        return rc;
    bert_kind *k = xmc_calloc(1, sizeof *k);
    if (!k)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
    e->impl = k;
    char path[sizeof dir + 16];
    snprintf(path, sizeof path, "%s/config.json", dir);
    xmc_bert_config c;
    if ((rc = xmc_bert_config_read(path, &c, err)) != XMC_OK)
        return rc;
    if (max_len > c.max_pos)
        max_len = c.max_pos;
    xmc_bert_opts o;
    xmc_bert_opts_default(&o);
    o.max_batch = e->cfg.max_batch;
    o.max_len = max_len;
    o.pooling = (xmc_bert_pool)pool;
    o.train = 1;
    o.no_moments = 1; /* the framework's optimizer owns the moments */
    o.recompute = recompute;
    o.seed = e->cfg.seed;
    if ((rc = xmc_bert_load(dir, &o, &k->m, err)) != XMC_OK)
        return rc;
    if ((rc = xmc_tokenizer_load(dir, NULL, &k->tok, err)) != XMC_OK)
        return rc;
    if (xmc_tokenizer_vocab_size(k->tok) > c.vocab_size)
        return XMC_ERR(err, XMC_EFORMAT, dir, 0,
                       "vocab.txt has %d tokens but config.json's vocab_size is %d",
                       (int)xmc_tokenizer_vocab_size(k->tok), c.vocab_size);
    k->max_len = max_len;
    k->ids = xmc_malloc(sizeof(int32_t) * (size_t)o.max_batch * (size_t)max_len);
    k->lens = xmc_malloc(sizeof(int32_t) * (size_t)o.max_batch);
    if (!k->ids || !k->lens)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (batch ids)");
    for (int i = 0; i < xmc_bert_n_tensors(k->m); i++) {
        const xmc_bert_tensor *t = xmc_bert_tensor_at(k->m, i);
        int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
        int idx = xmc_encoder_add_dense(e, t->name, rows, cols, t->no_decay, err);
        if (idx < 0)
            return err && err->code ? err->code : XMC_EINVAL;
        if (e->tensors[idx].offset != t->offset)
            return XMC_ERR(err, XMC_ESTATE, NULL, 0,
                           "encoder bert: tensor %s must be declared first", t->name);
    }
    e->base_dim = c.hidden;
    return XMC_OK;
}

static int bert_init(xmc_encoder *e, int fresh, xmc_error *err)
{
    (void)fresh; /* weights come from MODEL_DIR; a saved encoder overwrites them */
    bert_kind *k = e->impl;
    xmc_bert_bind_buffers(k->m, e->params, e->grads);
    return XMC_OK;
}

static void free_ids(void *p) { xmc_token_ids_free(p); }

static int bert_prepare(const xmc_encoder *e, const xmc_dataset *ds, xmc_enc_data **out,
                        xmc_error *err)
{
    *out = NULL;
    const bert_kind *k = e->impl;
    if (!ds->texts)
        return XMC_ERR(err, XMC_EINVAL, ds->spec, 0,
                       "encoder bert needs point texts; this dataset has none");
    xmc_enc_data *d = xmc_calloc(1, sizeof *d);
    if (!d)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
    xmc_token_ids *ti;
    int rc = xmc_tokenizer_encode_texts(k->tok, ds->texts, k->max_len, &ti, err);
    if (rc != XMC_OK) {
        xmc_free(d);
        return rc;
    }
    d->n = ds->n;
    d->impl = ti;
    d->impl_free = free_ids;
    *out = d;
    return XMC_OK;
}

static int bert_forward(xmc_encoder *e, const xmc_enc_data *d, const int64_t *rows, int B,
                        int train, float *H, xmc_error *err)
{
    bert_kind *k = e->impl;
    const xmc_token_ids *ti = d->impl;
    if (!ti || ti->max_len != k->max_len)
        return XMC_ERR(err, XMC_ESTATE, NULL, 0, "encoder bert: data not prepared for it");
    for (int b = 0; b < B; b++) {
        int64_t r = rows ? rows[b] : b;
        if (r < 0 || r >= ti->n)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "row %lld out of range", (long long)r);
        memcpy(k->ids + (int64_t)b * k->max_len, ti->ids + r * ti->max_len,
               sizeof(int32_t) * (size_t)k->max_len);
        k->lens[b] = ti->lens[r];
    }
    /* The model keys its dropout by its own step count, which a loaded
     * encoder does not restore: tie it to the framework's (saved) counter,
     * which this forward has already advanced. Same masks as counting in the
     * model, and a resumed run draws the masks an uninterrupted one would. */
    if (train)
        xmc_bert_set_step(k->m, e->step - 1);
    return xmc_bert_forward(k->m, k->ids, k->lens, B, k->max_len, train, H, err);
}

static int bert_backward(xmc_encoder *e, float *dH, int B, xmc_error *err)
{
    bert_kind *k = e->impl;
    (void)B; /* the model remembers the batch of its last forward */
    return xmc_bert_backward(k->m, dH, err);
}

static const xmc_encoder_ops bert_ops = {
    "bert", bert_declare, bert_init, bert_prepare, bert_forward, bert_backward, bert_destroy,
};

int xmc_bert_encoder_register(xmc_error *err)
{
    if (xmc_encoder_find("bert"))
        return XMC_OK;
    return xmc_encoder_register(&bert_ops, err);
}
