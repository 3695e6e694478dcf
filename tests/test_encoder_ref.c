/* The sparse encoder (2 layers, GELU, bottleneck) forward, backward and one
 * AdamW / lazy-Adam step against the float64 numpy reference in
 * tests/ref/trainer_sparse_ref.py (fixture tests/data/trainer/sparse_ref.txt). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/data.h"
#include "xmc/encoder.h"
#include "xmc/optim.h"

typedef struct arr {
    char name[32];
    int n;
    double *v;
} arr;

static arr arrs[32];
static int n_arrs;

static void load_fixture(void)
{
    const char *src = getenv("XMC_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/trainer/sparse_ref.txt", src ? src : ".");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char name[32];
    int n;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (c == '#') {
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        ungetc(c, f);
        if (fscanf(f, "%31s %d", name, &n) != 2)
            break;
        arr *a = &arrs[n_arrs++];
        snprintf(a->name, sizeof a->name, "%s", name);
        a->n = n;
        a->v = malloc((size_t)n * sizeof(double));
        for (int i = 0; i < n; i++)
            assert_int_equal(fscanf(f, "%lf", &a->v[i]), 1);
        fgetc(f);
    }
    fclose(f);
}

static const arr *get(const char *name)
{
    for (int i = 0; i < n_arrs; i++)
        if (!strcmp(arrs[i].name, name))
            return &arrs[i];
    fail_msg("fixture lacks %s", name);
    return NULL;
}

static int find_tensor(const xmc_encoder *e, const char *name)
{
    for (int i = 0; i < e->n_tensors; i++)
        if (!strcmp(e->tensors[i].name, name))
            return i;
    fail_msg("encoder lacks %s", name);
    return -1;
}

static void put(float *dst, const char *name, int n)
{
    const arr *a = get(name);
    assert_int_equal(a->n, n);
    for (int i = 0; i < n; i++)
        dst[i] = (float)a->v[i];
}

static void check(const float *got, const char *name, int n)
{
    const arr *a = get(name);
    assert_int_equal(a->n, n);
    for (int i = 0; i < n; i++)
        if (fabs(got[i] - a->v[i]) > 1e-5 + 1e-5 * fabs(a->v[i]))
            fail_msg("%s[%d]: got %.8g, reference %.8g", name, i, (double)got[i], a->v[i]);
}

static void test_sparse_encoder_matches_numpy(void **state)
{
    (void)state;
    load_fixture();
    enum { F = 7, H = 5, BN = 3, B = 4 };
    xmc_error err = {0};
    /* X (dense in the fixture) as a CSR dataset. */
    const arr *X = get("X");
    xmc_dataset ds;
    memset(&ds, 0, sizeof ds);
    int nnz = 0;
    for (int i = 0; i < B * F; i++)
        nnz += X->v[i] != 0;
    assert_int_equal(xmc_csr_create(&ds.X, B, F, nnz, 1, &err), XMC_OK);
    int q = 0;
    for (int i = 0; i < B; i++) {
        for (int f = 0; f < F; f++)
            if (X->v[i * F + f] != 0) {
                ds.X->indices[q] = f;
                ds.X->values[q++] = (float)X->v[i * F + f];
            }
        ds.X->indptr[i + 1] = q;
    }
    ds.n = B;
    xmc_encoder_config c;
    xmc_encoder_config_default(&c, "sparse");
    c.n_inputs = F;
    c.hidden = H;
    c.layers = 2;
    c.bottleneck = BN;
    c.act = XMC_ACT_GELU;
    c.dropout = 0;
    c.max_batch = B;
    xmc_encoder *e = NULL;
    assert_int_equal(xmc_encoder_create(&c, &e, &err), XMC_OK);
    put(e->tables[0].w, "W1", F * H);
    put(xmc_encoder_dense(e, find_tensor(e, "sparse.b1")), "b1", H);
    put(xmc_encoder_dense(e, find_tensor(e, "sparse.W2")), "W2", H * H);
    put(xmc_encoder_dense(e, find_tensor(e, "sparse.b2")), "b2", H);
    put(xmc_encoder_dense(e, find_tensor(e, "bottleneck.P")), "P", BN * H);
    xmc_enc_data *d = NULL;
    assert_int_equal(xmc_encoder_prepare(e, &ds, &d, &err), XMC_OK);
    float E[B * BN], dE[B * BN];
    assert_int_equal(xmc_encoder_forward(e, d, NULL, B, 1, E, &err), XMC_OK);
    check(E, "E", B * BN);
    put(dE, "dE", B * BN);
    xmc_encoder_zero_grad(e);
    assert_int_equal(xmc_encoder_backward(e, dE, B, &err), XMC_OK);
    check(xmc_encoder_dense_grad(e, find_tensor(e, "bottleneck.P")), "dP", BN * H);
    check(xmc_encoder_dense_grad(e, find_tensor(e, "sparse.W2")), "dW2", H * H);
    check(xmc_encoder_dense_grad(e, find_tensor(e, "sparse.b2")), "db2", H);
    check(xmc_encoder_dense_grad(e, find_tensor(e, "sparse.b1")), "db1", H);
    /* Table gradient: touched rows only, equal to the dense reference rows. */
    const xmc_sparse_table *t = &e->tables[0];
    const arr *tw = get("touched"), *dW1 = get("dW1");
    assert_int_equal(t->n_touched, tw->n);
    for (int k = 0; k < tw->n; k++) {
        assert_int_equal(t->touched[k], (int)tw->v[k]);
        for (int j = 0; j < H; j++) {
            double ref = dW1->v[t->touched[k] * H + j];
            assert_true(fabs(t->grad[k * H + j] - ref) <= 1e-5 + 1e-5 * fabs(ref));
        }
    }
    /* One optimizer step (t = 1). */
    xmc_enc_optim *o = NULL;
    assert_int_equal(xmc_enc_optim_create(e, XMC_TABLE_ADAM, 0, &o, &err), XMC_OK);
    xmc_adam_hparams hp = {0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, 1};
    xmc_enc_optim_step(o, e, &hp, &hp);
    check(t->w, "W1_new", F * H);
    check(xmc_encoder_dense(e, find_tensor(e, "sparse.b1")), "b1_new", H);
    check(xmc_encoder_dense(e, find_tensor(e, "sparse.W2")), "W2_new", H * H);
    check(xmc_encoder_dense(e, find_tensor(e, "sparse.b2")), "b2_new", H);
    check(xmc_encoder_dense(e, find_tensor(e, "bottleneck.P")), "P_new", BN * H);
    xmc_enc_optim_free(o);
    xmc_enc_data_free(d);
    xmc_encoder_free(e);
    xmc_csr_free(ds.X);
    for (int i = 0; i < n_arrs; i++)
        free(arrs[i].v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sparse_encoder_matches_numpy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
