/* BERT encoder: fused kernels against their references and finite
 * differences; BERT / DistilBERT / BF16-BERT fixtures from
 * tests/ref/bert_ref.py (pooled outputs <= 1e-4, every parameter gradient
 * <= 1e-3 relative, two AdamW steps); dropout determinism and its gradient;
 * no allocation per step; clear loader errors; and, when XMC_MINILM_DIR
 * names the all-MiniLM-L6-v2 directory, sentence embeddings against
 * sentence-transformers (cosine >= 0.9999). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/bert.h"
#include "xmc/kernels.h"
#include "xmc/safetensors.h"
#include "xmc/tokenizer.h"

static const char *src_path(const char *rel)
{
    static char buf[4][1200];
    static int k;
    const char *base = getenv("XMC_SOURCE_DIR");
    char *b = buf[k++ & 3];
    snprintf(b, 1200, "%s/%s", base ? base : ".", rel);
    return b;
}

static float *randv(int64_t n, unsigned seed, float scale)
{
    xmc_rng r;
    xmc_rng_seed(&r, seed, 7);
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        v[i] = scale * xmc_rng_normal(&r);
    return v;
}

static double dot(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* ------------------------------------------------------------ kernels */

static void kernels_vs_ref(void)
{
    const int shapes[][2] = {{1, 1}, {3, 7}, {17, 32}, {64, 384}, {5, 1000}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], C = shapes[s][1];
        int64_t n = (int64_t)N * C;
        float *x = randv(n, 1 + (unsigned)s, 3.0f), *w = randv(C, 2, 1.0f), *b = randv(C, 3, 1.0f);
        float *o1 = malloc(4 * n), *o2 = malloc(4 * n), *m1 = malloc(4 * N), *m2 = malloc(4 * N);
        float *r1 = malloc(4 * N), *r2 = malloc(4 * N);
        xmc_bert_layernorm_fwd(o1, m1, r1, x, w, b, N, C, 1e-5f);
        xmc_bert_layernorm_fwd_ref(o2, m2, r2, x, w, b, N, C, 1e-5f);
        assert_true(tu_rel_err(o1, o2, (size_t)n, 1e-5, 1e-5) <= 1);
        float *d = randv(n, 4, 1.0f), *dx1 = malloc(4 * n), *dx2 = malloc(4 * n);
        float *dw1 = calloc((size_t)C, 4), *db1 = calloc((size_t)C, 4);
        float *dw2 = calloc((size_t)C, 4), *db2 = calloc((size_t)C, 4);
        float *scr = malloc(sizeof(float) * 2 * (size_t)C * (size_t)((N + 63) / 64));
        xmc_bert_layernorm_bwd(dx1, dw1, db1, d, x, w, m1, r1, N, C, scr);
        xmc_bert_layernorm_bwd_ref(dx2, dw2, db2, d, x, w, m2, r2, N, C);
        assert_true(tu_rel_err(dx1, dx2, (size_t)n, 1e-5, 1e-4) <= 1);
        assert_true(tu_rel_err(dw1, dw2, (size_t)C, 1e-5, 1e-4) <= 1);
        assert_true(tu_rel_err(db1, db2, (size_t)C, 1e-5, 1e-4) <= 1);
        /* GELU over a wide range, tails included */
        for (int64_t i = 0; i < n; i++)
            x[i] = -12.0f + 24.0f * (float)i / (float)(n > 1 ? n - 1 : 1);
        xmc_bert_gelu_fwd(o1, x, n);
        xmc_bert_gelu_fwd_ref(o2, x, n);
        assert_true(tu_rel_err(o1, o2, (size_t)n, 1e-6, 1e-5) <= 1);
        xmc_bert_gelu_bwd(o1, x, d, n);
        xmc_bert_gelu_bwd_ref(o2, x, d, n);
        assert_true(tu_rel_err(o1, o2, (size_t)n, 1e-6, 1e-5) <= 1);
        /* softmax rows of C with a stride */
        float *p1 = randv(n, 5, 4.0f), *p2 = malloc(4 * n);
        memcpy(p2, p1, 4 * n);
        xmc_bert_softmax_fwd(p1, N, C > 1 ? C - 1 : 1, C);
        xmc_bert_softmax_fwd_ref(p2, N, C > 1 ? C - 1 : 1, C);
        assert_true(tu_rel_err(p1, p2, (size_t)n, 1e-7, 1e-5) <= 1);
        free(x), free(w), free(b), free(o1), free(o2), free(m1), free(m2), free(r1), free(r2);
        free(d), free(dx1), free(dx2), free(dw1), free(db1), free(dw2), free(db2), free(scr);
        free(p1), free(p2);
    }
}

/* every dispatch level the CPU has: the portable code and the best one */
static void test_kernels_vs_ref(void **state)
{
    (void)state;
    setenv("XMC_KERNEL", "ref", 1);
    xmc_cpu_refresh();
    kernels_vs_ref();
    unsetenv("XMC_KERNEL");
    xmc_cpu_refresh();
    fprintf(stderr, "kernels checked at ref and %s\n", xmc_cpu_level_name());
    kernels_vs_ref();
}

/* Finite differences of L = sum(out * R) for LayerNorm, GELU, softmax. */
static void test_kernels_fd(void **state)
{
    (void)state;
    const int N = 3, C = 16;
    const int64_t n = N * C;
    float *x = randv(n, 11, 1.5f), *w = randv(C, 12, 1.0f), *b = randv(C, 13, 1.0f);
    float *R = randv(n, 14, 1.0f), *out = malloc(4 * n), *dx = malloc(4 * n);
    float mean[3], rstd[3], dw[16] = {0}, db[16] = {0}, scr[64];
    xmc_bert_layernorm_fwd(out, mean, rstd, x, w, b, N, C, 1e-5f);
    xmc_bert_layernorm_bwd(dx, dw, db, R, x, w, mean, rstd, N, C, scr);
    const float h = 1e-2f;
    for (int64_t i = 0; i < n; i++) {
        float s = x[i];
        x[i] = s + h;
        xmc_bert_layernorm_fwd(out, mean, rstd, x, w, b, N, C, 1e-5f);
        double lp = dot(out, R, n);
        x[i] = s - h;
        xmc_bert_layernorm_fwd(out, mean, rstd, x, w, b, N, C, 1e-5f);
        double lm = dot(out, R, n);
        x[i] = s;
        assert_float_equal(dx[i], (lp - lm) / (2 * h), 2e-3 + 2e-3 * fabs(dx[i]));
    }
    for (int c = 0; c < C; c++) {
        float s = w[c];
        w[c] = s + h;
        xmc_bert_layernorm_fwd(out, mean, rstd, x, w, b, N, C, 1e-5f);
        double lp = dot(out, R, n);
        w[c] = s - h;
        xmc_bert_layernorm_fwd(out, mean, rstd, x, w, b, N, C, 1e-5f);
        double lm = dot(out, R, n);
        w[c] = s;
        assert_float_equal(dw[c], (lp - lm) / (2 * h), 2e-3 + 2e-3 * fabs(dw[c]));
    }
    /* GELU */
    xmc_bert_gelu_bwd(dx, x, R, n);
    for (int64_t i = 0; i < n; i++) {
        float s = x[i], a, c2;
        x[i] = s + h;
        xmc_bert_gelu_fwd(&a, &x[i], 1);
        x[i] = s - h;
        xmc_bert_gelu_fwd(&c2, &x[i], 1);
        x[i] = s;
        assert_float_equal(dx[i], R[i] * (a - c2) / (2 * h), 2e-3 + 1e-3 * fabs(dx[i]));
    }
    /* softmax: ds = p (dp - <dp, p>) */
    float p[16], q[16], ds[16], dp[16];
    for (int j = 0; j < 10; j++)
        dp[j] = R[j];
    memcpy(p, x, 40);
    xmc_bert_softmax_fwd(p, 1, 10, 16);
    xmc_bert_softmax_bwd(ds, p, dp, 1, 10, 16);
    for (int j = 0; j < 10; j++) {
        memcpy(q, x, 40);
        q[j] += h;
        xmc_bert_softmax_fwd(q, 1, 10, 16);
        double lp = dot(q, dp, 10);
        memcpy(q, x, 40);
        q[j] -= h;
        xmc_bert_softmax_fwd(q, 1, 10, 16);
        double lm = dot(q, dp, 10);
        assert_float_equal(ds[j], (lp - lm) / (2 * h), 1e-3 + 1e-3 * fabs(ds[j]));
    }
    free(x), free(w), free(b), free(R), free(out), free(dx);
}

/* ------------------------------------------------------------ fixtures */

typedef struct fixture {
    xmc_safetensors *st;
    int32_t ids[4 * 12], lens[4];
    int B, T;
} fixture;

static void fx_open(fixture *f, const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/bert/%s/expected.safetensors", name);
    xmc_error e = {0};
    assert_int_equal(xmc_safetensors_open(src_path(rel), &f->st, &e), XMC_OK);
    const xmc_st_tensor *ids = xmc_safetensors_find(f->st, "ids");
    const xmc_st_tensor *lens = xmc_safetensors_find(f->st, "lens");
    assert_non_null(ids);
    assert_int_equal(ids->dtype, XMC_ST_I32);
    f->B = (int)ids->shape[0];
    f->T = (int)ids->shape[1];
    assert_true(f->B * f->T <= 48);
    memcpy(f->ids, ids->data, ids->nbytes);
    memcpy(f->lens, lens->data, lens->nbytes);
}

static float *fx_get(const fixture *f, const char *name, int64_t *n)
{
    const xmc_st_tensor *t = xmc_safetensors_find(f->st, name);
    if (!t)
        fail_msg("fixture lacks %s", name);
    float *v = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    xmc_error e = {0};
    assert_int_equal(xmc_safetensors_to_f32(f->st, t, v, &e), XMC_OK);
    if (n)
        *n = t->numel;
    return v;
}

static xmc_bert *load_model_b(const char *name, int train, xmc_bert_pool pool, int max_batch);
static xmc_bert *load_model(const char *name, int train, xmc_bert_pool pool)
{
    return load_model_b(name, train, pool, 4);
}

static xmc_bert *load_model_b(const char *name, int train, xmc_bert_pool pool, int max_batch)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/bert/%s", name);
    xmc_bert_opts o;
    xmc_bert_opts_default(&o);
    o.max_batch = max_batch;
    o.max_len = 12;
    o.train = train;
    o.pooling = pool;
    o.hidden_dropout = o.attn_dropout = 0.0f;
    xmc_bert *m = NULL;
    xmc_error e = {0};
    int rc = xmc_bert_load(src_path(rel), &o, &m, &e);
    if (rc != XMC_OK) {
        char buf[1200];
        fail_msg("%s", xmc_error_format(&e, buf, sizeof buf));
    }
    return m;
}

/* Max over tensors of max|a - b| / max|b|. The key bias has a true
 * gradient of 0 (softmax ignores a per-row constant), so its reference is
 * ~1e-16 and ours fp32 noise: the denominator is floored at 1e-3 of the
 * largest gradient of the model (an absolute 1e-6 relative to that scale). */
static double grad_rel_err(xmc_bert *m, const fixture *f, const char *prefix, const char *label)
{
    double worst = 0, gmax = 0;
    char name[160];
    for (int i = 0; i < xmc_bert_n_tensors(m); i++) {
        snprintf(name, sizeof name, "%s%s", prefix, xmc_bert_tensor_at(m, i)->name);
        int64_t n;
        float *ref = fx_get(f, name, &n);
        for (int64_t k = 0; k < n; k++)
            gmax = fmax(gmax, fabs((double)ref[k]));
        free(ref);
    }
    for (int i = 0; i < xmc_bert_n_tensors(m); i++) {
        const xmc_bert_tensor *t = xmc_bert_tensor_at(m, i);
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        int64_t n;
        float *ref = fx_get(f, name, &n);
        const float *got = xmc_bert_grads(m) + t->offset;
        double md = 0, mr = 0;
        for (int64_t k = 0; k < n; k++) {
            md = fmax(md, fabs((double)got[k] - ref[k]));
            mr = fmax(mr, fabs((double)ref[k]));
        }
        double r = md / fmax(mr, 1e-3 * gmax);
        if (r > 1e-3)
            fprintf(stderr, "%s: %s rel err %.3g (max |ref| %.3g)\n", label, t->name, r, mr);
        worst = fmax(worst, r);
        free(ref);
    }
    return worst;
}

static void check_model(const char *name)
{
    fixture f;
    fx_open(&f, name);
    xmc_bert *m = load_model(name, 1, XMC_BERT_POOL_MEAN);
    const xmc_bert_config *c = xmc_bert_get_config(m);
    int H = c->hidden;
    float pooled[4 * 64];
    xmc_error e = {0};
    assert_int_equal(xmc_bert_forward(m, f.ids, f.lens, f.B, f.T, 1, pooled, &e), XMC_OK);
    int64_t n;
    float *want = fx_get(&f, "pooled_mean", &n);
    assert_int_equal(n, f.B * H);
    double err = tu_rel_err(pooled, want, (size_t)n, 1e-4, 0);
    fprintf(stderr, "%s: pooled_mean max |err| / 1e-4 = %.3f\n", name, err);
    assert_true(err <= 1);
    float *R = fx_get(&f, "R", NULL);
    xmc_bert_zero_grad(m);
    assert_int_equal(xmc_bert_backward(m, R, &e), XMC_OK);
    double gerr = grad_rel_err(m, &f, "grad.", name);
    fprintf(stderr, "%s: worst gradient relative error %.2e over %d tensors\n", name, gerr,
            xmc_bert_n_tensors(m));
    assert_true(gerr <= 1e-3);
    /* inference-only model (shared activations) gives the same output */
    xmc_bert *mi = load_model(name, 0, XMC_BERT_POOL_MEAN);
    float p2[4 * 64];
    assert_int_equal(xmc_bert_forward(mi, f.ids, f.lens, f.B, f.T, 0, p2, &e), XMC_OK);
    assert_true(tu_rel_err(p2, pooled, (size_t)n, 1e-6, 1e-6) <= 1);
    assert_int_equal(xmc_bert_backward(mi, R, &e), XMC_ESTATE);
    xmc_bert_free(mi);
    /* CLS pooling */
    mi = load_model(name, 0, XMC_BERT_POOL_CLS);
    assert_int_equal(xmc_bert_forward(mi, f.ids, f.lens, f.B, f.T, 0, p2, &e), XMC_OK);
    float *cls = fx_get(&f, "pooled_cls", NULL);
    assert_true(tu_rel_err(p2, cls, (size_t)n, 1e-4, 0) <= 1);
    xmc_bert_free(mi);
    /* the batch repeated 5 times runs as several chunks (~128 rows each):
     * same rows out, and 5x the gradients */
    enum { REP = 5 };
    mi = load_model_b(name, 1, XMC_BERT_POOL_MEAN, 4 * REP);
    static int32_t ids5[4 * REP * 12], lens5[4 * REP];
    static float R5[4 * REP * 64], p5[4 * REP * 64];
    for (int r = 0; r < REP; r++) {
        memcpy(ids5 + r * f.B * f.T, f.ids, sizeof(int32_t) * (size_t)(f.B * f.T));
        memcpy(lens5 + r * f.B, f.lens, sizeof(int32_t) * (size_t)f.B);
        memcpy(R5 + r * n, R, sizeof(float) * (size_t)n);
    }
    assert_int_equal(xmc_bert_forward(mi, ids5, lens5, f.B * REP, f.T, 1, p5, &e), XMC_OK);
    for (int r = 0; r < REP; r++)
        assert_true(tu_rel_err(p5 + r * n, pooled, (size_t)n, 1e-6, 1e-5) <= 1);
    xmc_bert_zero_grad(mi);
    assert_int_equal(xmc_bert_backward(mi, R5, &e), XMC_OK);
    for (int64_t i = 0; i < xmc_bert_n_params(m); i++) {
        float a5 = xmc_bert_grads(mi)[i], a1 = xmc_bert_grads(m)[i];
        if (fabsf(a5 - REP * a1) > 1e-4f + 1e-4f * fabsf(REP * a1))
            fail_msg("param %lld: grad %g with 5 copies vs 5 x %g", (long long)i, a5, a1);
    }
    xmc_bert_free(mi);
    free(want), free(R), free(cls);
    xmc_bert_free(m);
    xmc_safetensors_close(f.st);
}

static void test_bert_fixture(void **state)
{
    (void)state;
    check_model("bert");
}
static void test_distilbert_fixture(void **state)
{
    (void)state;
    check_model("distilbert");
}
static void test_bf16_prefixed_fixture(void **state)
{
    (void)state;
    check_model("bert_bf16");
}

static void test_adamw_vs_torch(void **state)
{
    (void)state;
    fixture f;
    fx_open(&f, "bert");
    xmc_bert *m = load_model("bert", 1, XMC_BERT_POOL_MEAN);
    xmc_error e = {0};
    char name[160];
    for (int step = 1; step <= 2; step++) {
        for (int i = 0; i < xmc_bert_n_tensors(m); i++) {
            const xmc_bert_tensor *t = xmc_bert_tensor_at(m, i);
            snprintf(name, sizeof name, "grad.%s", t->name);
            int64_t n;
            float *g = fx_get(&f, name, &n);
            for (int64_t k = 0; k < n; k++)
                xmc_bert_grads(m)[t->offset + k] = g[k] * (step == 1 ? 1.0f : 0.5f);
            free(g);
        }
        xmc_bert_adamw hp = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step};
        assert_int_equal(xmc_bert_adamw_step(m, &hp, &e), XMC_OK);
        double worst = 0;
        for (int i = 0; i < xmc_bert_n_tensors(m); i++) {
            const xmc_bert_tensor *t = xmc_bert_tensor_at(m, i);
            snprintf(name, sizeof name, "adamw%d.%s", step, t->name);
            int64_t n;
            float *w = fx_get(&f, name, &n);
            worst = fmax(worst, tu_rel_err(xmc_bert_params(m) + t->offset, w, (size_t)n, 2e-6,
                                           1e-6));
            free(w);
        }
        fprintf(stderr, "AdamW step %d: worst error / (2e-6 + 1e-6|w|) = %.3f\n", step, worst);
        assert_true(worst <= 1);
    }
    xmc_bert_adamw bad = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0};
    assert_int_equal(xmc_bert_adamw_step(m, &bad, &e), XMC_EINVAL);
    xmc_bert_free(m);
    xmc_safetensors_close(f.st);
}

/* ------------------------------------------------------------ random models */

static xmc_bert_config tiny_config(void)
{
    xmc_bert_config c = {XMC_BERT_ARCH_BERT, 50, 16, 2, 4, 24, 16, 2, 1e-12f, 0.1f, 0.1f};
    return c;
}

/* Whole-model finite differences with dropout on (masks replayed by
 * resetting the step): attention, FFN, LayerNorm and embeddings at once. */
static void test_model_fd_with_dropout(void **state)
{
    (void)state;
    xmc_bert_config c = tiny_config();
    xmc_bert_opts o;
    xmc_bert_opts_default(&o);
    o.max_batch = 3;
    o.max_len = 8;
    o.train = 1;
    o.hidden_dropout = 0.2f;
    o.attn_dropout = 0.3f;
    o.seed = 5;
    xmc_bert *m;
    xmc_error e = {0};
    assert_int_equal(xmc_bert_create(&c, &o, &m, &e), XMC_OK);
    /* wider weights than the default init, so every path carries signal */
    xmc_rng r;
    xmc_rng_seed(&r, 9, 0);
    float *P = xmc_bert_params(m);
    for (int64_t i = 0; i < xmc_bert_n_params(m); i++)
        P[i] += 0.3f * xmc_rng_normal(&r);
    int32_t ids[3 * 8], lens[3] = {8, 5, 2};
    for (int i = 0; i < 24; i++)
        ids[i] = (int32_t)(1 + xmc_rng_below(&r, 49));
    float pooled[3 * 16], *R = randv(48, 21, 1.0f);
    assert_int_equal(xmc_bert_forward(m, ids, lens, 3, 8, 1, pooled, &e), XMC_OK);
    uint64_t step = xmc_bert_get_step(m);
    assert_int_equal(step, 1);
    xmc_bert_zero_grad(m);
    assert_int_equal(xmc_bert_backward(m, R, &e), XMC_OK);
    /* dropout is really on: eval output differs, and replaying the step
     * reproduces the training output exactly */
    float pe[48], pt[48];
    assert_int_equal(xmc_bert_forward(m, ids, lens, 3, 8, 0, pe, &e), XMC_OK);
    assert_true(tu_rel_err(pe, pooled, 48, 1e-3, 0) > 1);
    xmc_bert_set_step(m, step - 1);
    assert_int_equal(xmc_bert_forward(m, ids, lens, 3, 8, 1, pt, &e), XMC_OK);
    assert_memory_equal(pt, pooled, sizeof pt);
    const int names_n = 8;
    const char *names[] = {"encoder.layer.0.attention.self.query.weight",
                           "encoder.layer.0.attention.self.key.weight",
                           "encoder.layer.1.attention.self.value.bias",
                           "encoder.layer.1.attention.output.dense.weight",
                           "encoder.layer.0.intermediate.dense.weight",
                           "encoder.layer.1.output.LayerNorm.weight",
                           "embeddings.word_embeddings.weight",
                           "embeddings.position_embeddings.weight"};
    const float *G = xmc_bert_grads(m);
    int checked = 0;
    for (int k = 0; k < names_n; k++) {
        const xmc_bert_tensor *t = xmc_bert_tensor_find(m, names[k]);
        assert_non_null(t);
        int64_t n = t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1);
        for (int rep = 0; rep < 6; rep++) {
            int64_t i = t->offset + (int64_t)xmc_rng_below(&r, (uint64_t)n);
            if (k == 6) /* a word row that occurs */
                i = t->offset + (int64_t)ids[3] * 16 + rep;
            float s = P[i];
            const float h = 2e-3f;
            P[i] = s + h;
            xmc_bert_set_step(m, step - 1);
            xmc_bert_forward(m, ids, lens, 3, 8, 1, pt, &e);
            double lp = dot(pt, R, 48);
            P[i] = s - h;
            xmc_bert_set_step(m, step - 1);
            xmc_bert_forward(m, ids, lens, 3, 8, 1, pt, &e);
            double lm = dot(pt, R, 48);
            P[i] = s;
            double fd = (lp - lm) / (2 * h);
            if (fabs(G[i] - fd) > 2e-2 + 2e-2 * fabs(fd))
                fail_msg("%s[%lld]: analytic %.6f, finite difference %.6f", names[k],
                         (long long)(i - t->offset), G[i], fd);
            checked++;
        }
    }
    assert_int_equal(checked, 48);
    free(R);
    xmc_bert_free(m);
}

/* Recomputing activations in backward gives the same gradients (dropout
 * on, several chunks) with less memory. */
static void test_recompute_same_grads(void **state)
{
    (void)state;
    xmc_bert_config c = tiny_config();
    c.n_layers = 3;
    xmc_bert_opts o;
    xmc_bert_opts_default(&o);
    o.max_batch = 40;
    o.max_len = 8;
    o.train = 1;
    o.seed = 17;
    xmc_bert *a, *b;
    xmc_error e = {0};
    assert_int_equal(xmc_bert_create(&c, &o, &a, &e), XMC_OK);
    o.recompute = 1;
    assert_int_equal(xmc_bert_create(&c, &o, &b, &e), XMC_OK);
    assert_true(xmc_bert_bytes(b) < xmc_bert_bytes(a));
    int32_t ids[40 * 8], lens[40];
    for (int i = 0; i < 40 * 8; i++)
        ids[i] = (i * 31 + 7) % 50;
    for (int i = 0; i < 40; i++)
        lens[i] = 1 + (i * 5) % 8;
    float pa[40 * 16], pb[40 * 16], *R = randv(40 * 16, 3, 1.0f);
    for (int step = 0; step < 2; step++) {
        assert_int_equal(xmc_bert_forward(a, ids, lens, 40, 8, 1, pa, &e), XMC_OK);
        assert_int_equal(xmc_bert_forward(b, ids, lens, 40, 8, 1, pb, &e), XMC_OK);
        assert_memory_equal(pa, pb, sizeof pa);
        xmc_bert_zero_grad(a);
        xmc_bert_zero_grad(b);
        assert_int_equal(xmc_bert_backward(a, R, &e), XMC_OK);
        assert_int_equal(xmc_bert_backward(b, R, &e), XMC_OK);
        assert_true(tu_rel_err(xmc_bert_grads(b), xmc_bert_grads(a),
                               (size_t)xmc_bert_n_params(a), 1e-7, 1e-6) <= 1);
    }
    free(R);
    xmc_bert_free(a);
    xmc_bert_free(b);
}

static void test_no_alloc_per_step(void **state)
{
    (void)state;
    xmc_bert_config c = tiny_config();
    xmc_bert_opts o;
    xmc_bert_opts_default(&o);
    o.max_batch = 4;
    o.max_len = 16;
    o.train = 1;
    xmc_bert *m;
    xmc_error e = {0};
    assert_int_equal(xmc_bert_create(&c, &o, &m, &e), XMC_OK);
    int32_t ids[4 * 16] = {0}, lens[4] = {16, 3, 9, 1};
    for (int i = 0; i < 64; i++)
        ids[i] = i % 50;
    float pooled[64], dp[64];
    for (int i = 0; i < 64; i++)
        dp[i] = 0.01f * (float)i;
    xmc_bert_adamw hp = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1};
    uint64_t before = xmc_mem_alloc_count();
    for (int s = 0; s < 3; s++) {
        assert_int_equal(xmc_bert_forward(m, ids, lens, 4, 16, 1, pooled, &e), XMC_OK);
        xmc_bert_zero_grad(m);
        assert_int_equal(xmc_bert_backward(m, dp, &e), XMC_OK);
        hp.step = s + 1;
        assert_int_equal(xmc_bert_adamw_step(m, &hp, &e), XMC_OK);
    }
    assert_int_equal(xmc_mem_alloc_count(), before);
    for (int i = 0; i < 64; i++)
        assert_true(isfinite(pooled[i]));
    /* a short batch gives the same rows as the same rows in a long batch */
    float p1[16];
    int32_t l1 = 3;
    assert_int_equal(xmc_bert_forward(m, ids + 16, &l1, 1, 16, 0, p1, &e), XMC_OK);
    assert_int_equal(xmc_bert_forward(m, ids, lens, 4, 16, 0, pooled, &e), XMC_OK);
    assert_true(tu_rel_err(p1, pooled + 16, 16, 1e-5, 1e-5) <= 1);
    /* bad inputs */
    int32_t bad = 50;
    int32_t one = 1, zero = 0, big = 17;
    xmc_error_clear(&e);
    assert_int_equal(xmc_bert_forward(m, &bad, &one, 1, 1, 0, p1, &e), XMC_EINVAL);
    assert_non_null(strstr(e.msg, "outside the vocabulary"));
    assert_int_equal(xmc_bert_forward(m, ids, &zero, 1, 16, 0, p1, &e), XMC_EINVAL);
    assert_int_equal(xmc_bert_forward(m, ids, &big, 1, 17, 0, p1, &e), XMC_EINVAL);
    assert_int_equal(xmc_bert_forward(m, ids, lens, 5, 16, 0, p1, &e), XMC_EINVAL);
    xmc_bert_free(m);
    xmc_bert_free(NULL);
    /* allocation failures at create are reported, never crash */
    for (uint64_t k = 1; k < 16; k++) {
        xmc_mem_fail_after(k);
        xmc_error_clear(&e);
        int rc = xmc_bert_create(&c, &o, &m, &e);
        xmc_mem_fail_after(0);
        if (rc == XMC_OK)
            xmc_bert_free(m);
        else
            assert_int_equal(rc, XMC_ENOMEM);
    }
}

/* ------------------------------------------------------------ errors */

static void copy_dir(const char *name, const char *to)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/bert/%s", name);
    assert_int_equal(tu_system("rm -rf '%s' && cp -r '%s' '%s'", to, src_path(rel), to), 0);
}

static void test_load_errors(void **state)
{
    (void)state;
    xmc_bert *m = NULL;
    xmc_error e = {0};
    const char *d = tu_path("m1");
    /* a DistilBERT config over BERT weights: the first missing tensor */
    copy_dir("bert", d);
    assert_int_equal(tu_system("cp '%s' '%s/config.json'",
                               src_path("tests/data/bert/distilbert/config.json"), d),
                     0);
    int rc = xmc_bert_load(d, NULL, &m, &e);
    tu_assert_error(rc, &e, XMC_EFORMAT, "m1/model.safetensors", 0);
    assert_non_null(strstr(e.msg, "transformer.layer.0.attention.q_lin.weight"));
    assert_null(m);
    /* shape mismatch names the tensor and both shapes */
    copy_dir("bert", d);
    assert_int_equal(tu_system("sed -i 's/\"intermediate_size\": 64/\"intermediate_size\": 65/' "
                               "'%s/config.json'",
                               d),
                     0);
    xmc_error_clear(&e);
    rc = xmc_bert_load(d, NULL, &m, &e);
    tu_assert_error(rc, &e, XMC_EFORMAT, "model.safetensors", 0);
    assert_non_null(strstr(e.msg, "encoder.layer.0.intermediate.dense.weight"));
    assert_non_null(strstr(e.msg, "[64, 32]"));
    assert_non_null(strstr(e.msg, "[65, 32]"));
    /* unsupported architecture and activation are named */
    copy_dir("bert", d);
    tu_system("sed -i 's/\"model_type\": \"bert\"/\"model_type\": \"roberta\"/' '%s/config.json'",
              d);
    xmc_error_clear(&e);
    rc = xmc_bert_load(d, NULL, &m, &e);
    tu_assert_error(rc, &e, XMC_EUNSUPPORTED, "config.json", 0);
    assert_non_null(strstr(e.msg, "roberta"));
    copy_dir("bert", d);
    tu_system("sed -i 's/\"hidden_act\": \"gelu\"/\"hidden_act\": \"gelu_new\"/' '%s/config.json'",
              d);
    xmc_error_clear(&e);
    rc = xmc_bert_load(d, NULL, &m, &e);
    tu_assert_error(rc, &e, XMC_EUNSUPPORTED, "config.json", 0);
    assert_non_null(strstr(e.msg, "gelu_new"));
    copy_dir("bert", d);
    tu_system("sed -i 's/\"num_attention_heads\": 4/\"num_attention_heads\": 5/' '%s/config.json'",
              d);
    xmc_error_clear(&e);
    rc = xmc_bert_load(d, NULL, &m, &e);
    tu_assert_error(rc, &e, XMC_EFORMAT, "config.json", 0);
    xmc_error_clear(&e);
    rc = xmc_bert_load(tu_path("nowhere"), NULL, &m, &e);
    tu_assert_error(rc, &e, XMC_EIO, "nowhere/config.json", 0);
    /* truncated weights */
    copy_dir("bert", d);
    tu_system("truncate -s 5000 '%s/model.safetensors'", d);
    xmc_error_clear(&e);
    rc = xmc_bert_load(d, NULL, &m, &e);
    tu_assert_error(rc, &e, XMC_ECORRUPT, "model.safetensors", 0);
    /* max_len beyond the position table */
    xmc_bert_opts o;
    xmc_bert_opts_default(&o);
    o.max_len = 33;
    xmc_error_clear(&e);
    rc = xmc_bert_load(src_path("tests/data/bert/bert"), &o, &m, &e);
    assert_int_equal(rc, XMC_EINVAL);
    /* training calls on an inference model */
    o.max_len = 8;
    assert_int_equal(xmc_bert_load(src_path("tests/data/bert/bert"), &o, &m, &e), XMC_OK);
    int32_t ids[2] = {2, 3}, len = 2;
    float out[32];
    assert_int_equal(xmc_bert_forward(m, ids, &len, 1, 2, 1, out, &e), XMC_ESTATE);
    xmc_bert_adamw hp = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1};
    assert_int_equal(xmc_bert_adamw_step(m, &hp, &e), XMC_ESTATE);
    xmc_bert_free(m);
}

/* ------------------------------------------------------------ MiniLM */

static void test_minilm_sentence_embeddings(void **state)
{
    (void)state;
    const char *dir = getenv("XMC_MINILM_DIR");
    if (!dir || !*dir)
        skip();
    xmc_error e = {0};
    xmc_tokenizer *tok;
    assert_int_equal(xmc_tokenizer_load(dir, NULL, &tok, &e), XMC_OK);
    xmc_bert_opts o;
    xmc_bert_opts_default(&o);
    o.max_batch = 20;
    o.max_len = 128;
    xmc_bert *m;
    assert_int_equal(xmc_bert_load(dir, &o, &m, &e), XMC_OK);
    xmc_lines *r;
    assert_int_equal(xmc_lines_open(&r, src_path("tests/data/bert/minilm_expected.txt"), &e),
                     XMC_OK);
    static int32_t ids[20 * 128];
    int32_t lens[20];
    static float want[20 * 384], got[20 * 384];
    char *line;
    size_t len;
    int n = 0;
    while (n < 20 && xmc_lines_next(r, &line, &len, &e) == 1) {
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = 0;
        lens[n] = xmc_tokenizer_encode(tok, line, strlen(line), 128, ids + n * 128);
        char *p = tab + 1;
        for (int k = 0; k < 384; k++)
            want[n * 384 + k] = strtof(p, &p);
        n++;
    }
    xmc_lines_close(r);
    assert_int_equal(n, 20);
    assert_int_equal(xmc_bert_forward(m, ids, lens, 20, 128, 0, got, &e), XMC_OK);
    double worst = 1;
    for (int i = 0; i < 20; i++) {
        double c = dot(got + i * 384, want + i * 384, 384) /
                   sqrt(dot(got + i * 384, got + i * 384, 384) *
                        dot(want + i * 384, want + i * 384, 384));
        worst = fmin(worst, c);
    }
    fprintf(stderr,
            "all-MiniLM-L6-v2: min cosine vs sentence-transformers over 20 = %.9f (1 - cos = "
            "%.2e)\n",
            worst, 1 - worst);
    assert_true(worst >= 0.9999);
    xmc_bert_free(m);
    xmc_tokenizer_free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_vs_ref),
        cmocka_unit_test(test_kernels_fd),
        cmocka_unit_test(test_bert_fixture),
        cmocka_unit_test(test_distilbert_fixture),
        cmocka_unit_test(test_bf16_prefixed_fixture),
        cmocka_unit_test(test_adamw_vs_torch),
        cmocka_unit_test(test_model_fd_with_dropout),
        cmocka_unit_test(test_recompute_same_grads),
        cmocka_unit_test(test_no_alloc_per_step),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_minilm_sentence_embeddings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
