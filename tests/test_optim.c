/* Optimizers: AdamW against a double-precision reference written from the
 * paper's update (Loshchilov & Hutter, Alg. 2), no decay on no_decay
 * tensors, lazy sparse-row Adam semantics (untouched rows and their moments
 * do not move; touched rows use the global step), lazy sparse-row SGD with
 * momentum against its double-precision update (PyTorch's SGD momentum
 * buffer, decay decoupled), the warm-up + cosine schedule, and the
 * moments' save/load round trip, version-1 files and table-optimizer
 * mismatches included. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "xmc/optim.h"

static void ref_adamw(double *w, const double *g, double *m, double *v, int n, double lr,
                      double b1, double b2, double eps, double wd, int t)
{
    for (int i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        double mh = m[i] / (1 - pow(b1, t)), vh = v[i] / (1 - pow(b2, t));
        w[i] = w[i] - lr * wd * w[i] - lr * mh / (sqrt(vh) + eps);
    }
}

static void test_adamw_matches_reference(void **state)
{
    (void)state;
    enum { N = 257 };
    float w[N], g[N], m[N] = {0}, v[N] = {0};
    double rw[N], rg[N], rm[N] = {0}, rv[N] = {0};
    xmc_rng r;
    xmc_rng_seed(&r, 3, 0);
    for (int i = 0; i < N; i++)
        rw[i] = w[i] = xmc_rng_normal(&r);
    for (int t = 1; t <= 10; t++) {
        for (int i = 0; i < N; i++)
            rg[i] = g[i] = xmc_rng_normal(&r) * (float)(1 + i % 3);
        xmc_adam_hparams hp = {0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, t};
        xmc_adamw_update(w, g, m, v, N, &hp, 1);
        ref_adamw(rw, rg, rm, rv, N, 0.01, 0.9, 0.999, 1e-8, 0.1, t);
    }
    for (int i = 0; i < N; i++)
        assert_true(fabs(w[i] - rw[i]) <= 1e-5 + 1e-5 * fabs(rw[i]));
    /* decay = 0: no weight decay term. */
    float w1[1] = {2.0f}, g1[1] = {0.0f}, m1[1] = {0}, v1[1] = {0};
    xmc_adam_hparams hp = {0.1f, 0.9f, 0.999f, 1e-8f, 0.5f, 1};
    xmc_adamw_update(w1, g1, m1, v1, 1, &hp, 0);
    assert_true(w1[0] == 2.0f);
    xmc_adamw_update(w1, g1, m1, v1, 1, &hp, 1);
    assert_true(fabsf(w1[0] - 2.0f * (1 - 0.05f)) < 1e-6f);
}

/* A table over caller arrays, with room for every row to be touched. */
static xmc_sparse_table table_over(float *w, int rows, int cols, int32_t *touched, float *grad)
{
    xmc_sparse_table t = {0};
    t.w = w;
    t.rows = rows;
    t.cols = cols;
    t.max_touched = rows;
    t.touched = touched;
    t.grad = grad;
    return t;
}

/* This step's touched rows: up to two, -1 = none. */
static void touch(xmc_sparse_table *t, const int rows[2])
{
    t->n_touched = 0;
    for (int k = 0; k < 2; k++)
        if (rows[k] >= 0)
            t->touched[t->n_touched++] = rows[k];
}

static void test_sparse_adam_lazy(void **state)
{
    (void)state;
    enum { ROWS = 6, COLS = 3 };
    float w[ROWS * COLS], m[ROWS * COLS] = {0}, v[ROWS * COLS] = {0};
    double rw[ROWS * COLS], rm[ROWS * COLS] = {0}, rv[ROWS * COLS] = {0};
    for (int i = 0; i < ROWS * COLS; i++)
        rw[i] = w[i] = 0.1f * (float)i;
    int32_t touched[ROWS];
    float grad[ROWS * COLS];
    xmc_sparse_table t = table_over(w, ROWS, COLS, touched, grad);
    /* Step 1 touches rows 1, 4; step 2 touches row 4 only; step 3 row 1. */
    const int plan[3][2] = {{1, 4}, {4, -1}, {1, -1}};
    for (int s = 0; s < 3; s++) {
        touch(&t, plan[s]);
        for (int q = 0; q < t.n_touched; q++)
            for (int c = 0; c < COLS; c++)
                grad[q * COLS + c] = (float)(s + 1) * (c - 1.0f) + 0.5f;
        float before_m0 = m[0];
        xmc_adam_hparams hp = {0.05f, 0.9f, 0.999f, 1e-8f, 0.01f, s + 1};
        xmc_sparse_adam_step(&t, m, v, &hp);
        for (int q = 0; q < t.n_touched; q++) {
            int row = touched[q];
            double gg[COLS];
            for (int c = 0; c < COLS; c++)
                gg[c] = grad[q * COLS + c];
            ref_adamw(rw + row * COLS, gg, rm + row * COLS, rv + row * COLS, COLS, 0.05, 0.9,
                      0.999, 1e-8, 0.01, s + 1);
        }
        assert_true(m[0] == before_m0);
    }
    for (int i = 0; i < ROWS * COLS; i++) {
        assert_true(fabs(w[i] - rw[i]) <= 1e-6 + 1e-5 * fabs(rw[i]));
        assert_true(fabs(m[i] - rm[i]) <= 1e-6);
    }
    /* Rows 0, 2, 3, 5 never touched: weights exactly as initialised. */
    const int untouched[4] = {0, 2, 3, 5};
    for (int k = 0; k < 4; k++)
        for (int c = 0; c < COLS; c++) {
            assert_true(w[untouched[k] * COLS + c] == 0.1f * (float)(untouched[k] * COLS + c));
            assert_true(v[untouched[k] * COLS + c] == 0.0f);
        }
}

static void test_sparse_sgdm_lazy(void **state)
{
    (void)state;
    enum { ROWS = 5, COLS = 4 };
    float w[ROWS * COLS], m[ROWS * COLS] = {0}, grad[ROWS * COLS];
    double rw[ROWS * COLS], rm[ROWS * COLS] = {0};
    for (int i = 0; i < ROWS * COLS; i++)
        rw[i] = w[i] = 0.2f * (float)i - 1.0f;
    int32_t touched[ROWS];
    xmc_sparse_table t = table_over(w, ROWS, COLS, touched, grad);
    /* Row 3 is touched at steps 1 and 3, not 2: its momentum waits. */
    const int plan[3][2] = {{3, 0}, {0, -1}, {3, -1}};
    const double lr = 0.1, mu = 0.9, wd = 0.05;
    for (int s = 0; s < 3; s++) {
        touch(&t, plan[s]);
        for (int q = 0; q < t.n_touched; q++)
            for (int c = 0; c < COLS; c++)
                grad[q * COLS + c] = (float)(s + 1) * (c - 1.5f) + 0.25f * (float)q;
        xmc_sparse_sgdm_step(&t, m, (float)lr, (float)mu, (float)wd);
        for (int q = 0; q < t.n_touched; q++)
            for (int c = 0; c < COLS; c++) {
                int i = touched[q] * COLS + c;
                rm[i] = mu * rm[i] + grad[q * COLS + c];
                rw[i] = rw[i] * (1 - lr * wd) - lr * rm[i];
            }
    }
    for (int i = 0; i < ROWS * COLS; i++) {
        assert_true(fabs(w[i] - rw[i]) <= 1e-6 + 1e-6 * fabs(rw[i]));
        assert_true(fabs(m[i] - rm[i]) <= 1e-6 + 1e-6 * fabs(rm[i]));
    }
    /* Hand check of row 3, column 0 (w = 1.4; g = -1.5, then -4.5 two steps
     * later): m = -1.5 -> w = 1.4 * 0.995 + 0.15 = 1.543; m = 0.9 * -1.5 -
     * 4.5 = -5.85 -> w = 1.543 * 0.995 + 0.585 = 2.120285. */
    assert_true(fabsf(m[3 * COLS] - -5.85f) < 1e-5f);
    assert_true(fabsf(w[3 * COLS] - 2.120285f) < 1e-5f);
    for (int r = 1; r < ROWS; r++) /* rows 1, 2, 4 never touched */
        for (int c = 0; r != 3 && c < COLS; c++) {
            assert_true(w[r * COLS + c] == 0.2f * (float)(r * COLS + c) - 1.0f);
            assert_true(m[r * COLS + c] == 0.0f);
        }
}

static void test_schedule(void **state)
{
    (void)state;
    xmc_schedule s = {1.0f, 10, 110, 0.0f};
    assert_true(fabsf(xmc_schedule_lr(&s, 1) - 0.1f) < 1e-7f);
    assert_true(fabsf(xmc_schedule_lr(&s, 5) - 0.5f) < 1e-7f);
    assert_true(fabsf(xmc_schedule_lr(&s, 10) - 1.0f) < 1e-7f);
    assert_true(fabsf(xmc_schedule_lr(&s, 60) - 0.5f) < 1e-6f); /* half way: cos = 0 */
    assert_true(fabsf(xmc_schedule_lr(&s, 110)) < 1e-7f);
    assert_true(fabsf(xmc_schedule_lr(&s, 500)) < 1e-7f); /* clamps past the end */
    s.min_ratio = 0.1f;
    assert_true(fabsf(xmc_schedule_lr(&s, 110) - 0.1f) < 1e-7f);
    /* Monotone non-increasing after warm-up. */
    float prev = xmc_schedule_lr(&s, 10);
    for (int t = 11; t <= 110; t++) {
        float x = xmc_schedule_lr(&s, t);
        assert_true(x <= prev + 1e-7f);
        prev = x;
    }
    xmc_schedule nw = {0.3f, 0, 5, 0.0f};
    assert_true(fabsf(xmc_schedule_lr(&nw, 1) - 0.3f * 0.5f * (1 + cosf(3.14159265f / 5))) <
                1e-6f);
}

/* A sparse encoder over 20 inputs, width 4: its table is 20 x 4. */
static xmc_encoder *small_sparse_encoder(int layers)
{
    xmc_error err = {0};
    xmc_encoder_config c;
    xmc_encoder_config_default(&c, "sparse");
    c.n_inputs = 20;
    c.hidden = 4;
    c.layers = layers;
    c.max_batch = 2;
    xmc_encoder *e = NULL;
    assert_int_equal(xmc_encoder_create(&c, &e, &err), XMC_OK);
    return e;
}

static void test_enc_optim_step_and_io(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_encoder *e = small_sparse_encoder(2);
    xmc_enc_optim *o = NULL;
    assert_int_equal(xmc_enc_optim_create(e, XMC_TABLE_ADAM, 0, &o, &err), XMC_OK);
    assert_int_equal(xmc_enc_optim_bytes(o), (size_t)2 * 4 * (4 + 16 + 4 + 80));
    /* A bias (no_decay) with zero grad stays put; a weight decays. */
    for (int64_t i = 0; i < e->n_params; i++)
        e->params[i] = 1.0f, e->grads[i] = 0.0f;
    e->tables[0].n_touched = 0;
    xmc_adam_hparams hp = {0.1f, 0.9f, 0.999f, 1e-8f, 0.5f, 1};
    xmc_enc_optim_step(o, e, &hp, &hp);
    for (int t = 0; t < e->n_tensors; t++) {
        float want = e->tensors[t].no_decay ? 1.0f : 0.95f;
        assert_true(fabsf(xmc_encoder_dense(e, t)[0] - want) < 1e-6f);
    }
    for (int64_t i = 0; i < o->n_params; i++)
        o->m[i] = (float)i, o->v[i] = (float)(2 * i);
    o->tm[0][7] = 3.5f;
    const char *p = tu_path("opt.bin");
    FILE *f = fopen(p, "wb");
    assert_int_equal(xmc_enc_optim_save(o, f, p, &err), XMC_OK);
    fclose(f);
    xmc_enc_optim *o2 = NULL;
    assert_int_equal(xmc_enc_optim_create(e, XMC_TABLE_ADAM, 0, &o2, &err), XMC_OK);
    f = fopen(p, "rb");
    assert_int_equal(xmc_enc_optim_load(o2, f, p, &err), XMC_OK);
    fclose(f);
    assert_memory_equal(o->m, o2->m, (size_t)o->n_params * 4);
    assert_memory_equal(o->v, o2->v, (size_t)o->n_params * 4);
    assert_true(o2->tm[0][7] == 3.5f);
    /* Truncated: ECORRUPT with the path. */
    assert_int_equal(tu_system("truncate -s 60 '%s'", p), 0);
    f = fopen(p, "rb");
    xmc_error_clear(&err);
    tu_assert_error(xmc_enc_optim_load(o2, f, p, &err), &err, XMC_ECORRUPT, "opt.bin", 0);
    fclose(f);
    xmc_enc_optim_free(o);
    xmc_enc_optim_free(o2);
    xmc_encoder_free(e);
}

/* A file as version 1 wrote it: no table-optimizer field, CRC over the rest. */
static void write_v1(const char *from, const char *to)
{
    FILE *f = fopen(from, "rb");
    assert_non_null(f);
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(n > 32 && n < sizeof buf);
    const size_t at = 8 + 4 + 8 + 4; /* magic, version, n_params, n_tables */
    memmove(buf + at, buf + at + 4, n - at - 4);
    n -= 4;
    uint32_t ver = 1, crc;
    memcpy(buf + 8, &ver, 4);
    crc = xmc_crc32(0, buf + 8, n - 8 - 4);
    memcpy(buf + n - 4, &crc, 4);
    f = fopen(to, "wb");
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
}

static void test_enc_optim_sgdm_tables(void **state)
{
    (void)state;
    xmc_error err = {0};
    xmc_encoder *e = small_sparse_encoder(1);
    xmc_enc_optim *s = NULL, *a = NULL;
    assert_int_equal(xmc_enc_optim_create(e, XMC_TABLE_SGDM, 0.5f, &s, &err), XMC_OK);
    assert_int_equal(xmc_enc_optim_create(e, XMC_TABLE_ADAM, 0, &a, &err), XMC_OK);
    /* One float per table parameter instead of two. */
    assert_int_equal(xmc_enc_optim_bytes(a) - xmc_enc_optim_bytes(s), (size_t)4 * 80);
    assert_null(s->tv[0]);
    assert_int_equal(xmc_enc_optim_plan_bytes(e, XMC_TABLE_SGDM), xmc_enc_optim_bytes(s));
    assert_int_equal(xmc_enc_optim_plan_bytes(e, XMC_TABLE_ADAM), xmc_enc_optim_bytes(a));
    /* The step routes the table to SGD-m (lr and decay from hp_table, mu
     * from create) and the dense tensors to AdamW (hp_dense). */
    xmc_sparse_table *t = &e->tables[0];
    for (int64_t i = 0; i < e->n_params; i++)
        e->grads[i] = 0.0f;
    float w7 = t->w[7 * 4 + 1];
    t->n_touched = 1;
    t->touched[0] = 7;
    for (int k = 0; k < 4; k++)
        t->grad[k] = 2.0f;
    xmc_adam_hparams hd = {0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 1};
    xmc_adam_hparams ht = {0.25f, 0.9f, 0.999f, 1e-8f, 0.0f, 1};
    xmc_enc_optim_step(s, e, &hd, &ht);
    assert_true(fabsf(t->w[7 * 4 + 1] - (w7 - 0.25f * 2.0f)) < 1e-6f);
    xmc_enc_optim_step(s, e, &hd, &ht); /* same grad: m = 0.5 * 2 + 2 = 3 */
    assert_true(fabsf(t->w[7 * 4 + 1] - (w7 - 0.25f * 2.0f - 0.25f * 3.0f)) < 1e-6f);
    assert_true(s->tm[0][7 * 4 + 1] == 3.0f);
    /* Save / load keeps the momentum; the other optimizer's file is refused
     * both ways, by name; a version-1 file loads as Adam's. */
    const char *p = tu_path("opt_sgdm.bin"), *pa = tu_path("opt_adam.bin"),
               *p1 = tu_path("opt_v1.bin");
    FILE *f = fopen(p, "wb");
    assert_int_equal(xmc_enc_optim_save(s, f, p, &err), XMC_OK);
    fclose(f);
    xmc_enc_optim *s2 = NULL;
    assert_int_equal(xmc_enc_optim_create(e, XMC_TABLE_SGDM, 0.5f, &s2, &err), XMC_OK);
    f = fopen(p, "rb");
    assert_int_equal(xmc_enc_optim_load(s2, f, p, &err), XMC_OK);
    fclose(f);
    assert_memory_equal(s->tm[0], s2->tm[0], 80 * 4);
    f = fopen(p, "rb");
    tu_assert_error(xmc_enc_optim_load(a, f, p, &err), &err, XMC_ECORRUPT, "opt_sgdm.bin", 0);
    assert_non_null(strstr(err.msg, "sgdm"));
    fclose(f);
    a->tv[0][5] = 0.75f;
    f = fopen(pa, "wb");
    assert_int_equal(xmc_enc_optim_save(a, f, pa, &err), XMC_OK);
    fclose(f);
    xmc_error_clear(&err);
    f = fopen(pa, "rb");
    tu_assert_error(xmc_enc_optim_load(s2, f, pa, &err), &err, XMC_ECORRUPT, "opt_adam.bin", 0);
    fclose(f);
    write_v1(pa, p1);
    xmc_enc_optim *a2 = NULL;
    assert_int_equal(xmc_enc_optim_create(e, XMC_TABLE_ADAM, 0, &a2, &err), XMC_OK);
    f = fopen(p1, "rb");
    assert_int_equal(xmc_enc_optim_load(a2, f, p1, &err), XMC_OK);
    fclose(f);
    assert_true(a2->tv[0][5] == 0.75f);
    xmc_enc_optim_free(s);
    xmc_enc_optim_free(s2);
    xmc_enc_optim_free(a);
    xmc_enc_optim_free(a2);
    xmc_encoder_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_matches_reference),
        cmocka_unit_test(test_sparse_adam_lazy),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_enc_optim_step_and_io),
        cmocka_unit_test(test_sparse_sgdm_lazy),
        cmocka_unit_test(test_enc_optim_sgdm_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
