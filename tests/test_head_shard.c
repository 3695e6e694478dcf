/* Label shards of the one-vs-all head (Renee's model parallelism,
 * docs/dist.md): shards of one seed are the rows of the whole head; a step
 * on each shard updates exactly its rows of the whole head's step and the
 * shards' dE sum to the whole head's dE; xmc_ova_copy_rows moves weights and
 * optimizer state (re-sharding a checkpoint) so training continues as if
 * never split; mismatched heads are refused. The same for SPARTEX's fixed
 * fan-in head (xmc_ffi_copy_rows), across a rewiring round. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/ffi.h"
#include "xmc/head.h"

enum { L = 37, D = 12, B = 9, S0 = 15 }; /* shards [0, 15) and [15, 37) */

static xmc_csr *targets(uint64_t seed)
{
    xmc_error e = {0};
    xmc_csr *Y;
    assert_int_equal(xmc_csr_create(&Y, B, L, (int64_t)B * 3, 1, &e), XMC_OK);
    xmc_rng r;
    xmc_rng_seed(&r, seed, 0);
    for (int i = 0; i < B; i++) {
        Y->indptr[i + 1] = Y->indptr[i] + 3;
        for (int j = 0; j < 3; j++) { /* distinct, ascending, in both shards */
            Y->indices[i * 3 + j] = (int32_t)(j * 12 + (int)xmc_rng_below(&r, 12));
            Y->values[i * 3 + j] = 1.0f;
        }
    }
    return Y;
}

static xmc_ova *head(int64_t off, int64_t n, xmc_head_opt opt)
{
    xmc_ova_config c;
    memset(&c, 0, sizeof c);
    c.n_labels = n;
    c.label_offset = off;
    c.dim = D;
    c.opt = opt;
    c.chunk = 8; /* several chunks, ragged ends */
    c.max_batch = B;
    c.seed = 7;
    xmc_ova *h = NULL;
    xmc_error e = {0};
    assert_int_equal(xmc_ova_create(&c, &h, &e), XMC_OK);
    return h;
}

static void rows_of(const xmc_ova *h, float *w)
{
    xmc_error e = {0};
    const xmc_ova_config *c = xmc_ova_get_config(h);
    assert_int_equal(xmc_ova_get_rows(h, 0, c->n_labels, w, &e), XMC_OK);
}

/* Step t's hyper-parameters, Adam's betas and eps fixed. */
static xmc_ova_hparams hparams(float lr, float momentum, int64_t t)
{
    xmc_ova_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.lr = lr;
    hp.momentum = momentum;
    hp.beta1 = 0.9f;
    hp.beta2 = 0.999f;
    hp.eps = 1e-8f;
    hp.step = t;
    return hp;
}

/* A batch of B embeddings uniform in [-0.5, 0.5). */
static void random_embeddings(uint64_t seed, float *E)
{
    xmc_rng r;
    xmc_rng_seed(&r, seed, 0);
    for (int i = 0; i < B * D; i++)
        E[i] = (float)(xmc_rng_uniform(&r) - 0.5);
}

static void step(xmc_ova *h, const float *E, const xmc_csr *Y, int64_t t, float *dE)
{
    xmc_ova_hparams hp = hparams(0.1f, 0.9f, t);
    xmc_error e = {0};
    assert_int_equal(xmc_ova_train_step(h, E, B, Y, NULL, &hp, dE, NULL, &e), XMC_OK);
}

static void check_sharded_steps(xmc_head_opt opt)
{
    float E[B * D], dE[B * D], dE0[B * D], dE1[B * D];
    float w[L * D], ws[L * D];
    random_embeddings(3, E);
    xmc_csr *Y = targets(11);
    xmc_ova *whole = head(0, L, opt), *a = head(0, S0, opt), *b = head(S0, L - S0, opt);
    /* Same init: shard rows are the whole head's rows. */
    rows_of(whole, w);
    rows_of(a, ws);
    rows_of(b, ws + S0 * D);
    assert_memory_equal(w, ws, sizeof w);
    for (int64_t t = 1; t <= 3; t++) {
        step(whole, E, Y, t, dE);
        step(a, E, Y, t, dE0);
        step(b, E, Y, t, dE1);
        for (int i = 0; i < B * D; i++)
            dE0[i] += dE1[i]; /* what the reduce-scatter sums */
        assert_true(tu_rel_err(dE0, dE, B * D, 1e-6, 1e-5) <= 1.0);
        rows_of(whole, w);
        rows_of(a, ws);
        rows_of(b, ws + S0 * D);
        assert_true(tu_rel_err(ws, w, L * D, 1e-7, 1e-6) <= 1.0);
    }
    /* Re-shard 2 -> 3 ([0,10) [10,30) [30,37)) with the optimizer state:
     * the next step matches the unsplit head (momentum carried over; a
     * fresh momentum would differ by lr * 0.9 * m). */
    xmc_error e = {0};
    xmc_ova *p[3] = {head(0, 10, opt), head(10, 20, opt), head(30, 7, opt)};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(xmc_ova_copy_rows(p[k], a, &e), XMC_OK);
        assert_int_equal(xmc_ova_copy_rows(p[k], b, &e), XMC_OK);
        assert_int_equal(xmc_ova_steps(p[k]), 3);
    }
    step(whole, E, Y, 4, dE);
    for (int k = 0; k < 3; k++)
        step(p[k], E, Y, 4, dE0);
    rows_of(whole, w);
    rows_of(p[0], ws);
    rows_of(p[1], ws + 10 * D);
    rows_of(p[2], ws + 30 * D);
    assert_true(tu_rel_err(ws, w, L * D, 1e-7, 1e-6) <= 1.0);
    /* Heads that cannot exchange rows are refused. */
    xmc_ova *other = head(0, L, opt == XMC_HEAD_SGDM ? XMC_HEAD_ADAM : XMC_HEAD_SGDM);
    tu_assert_error(xmc_ova_copy_rows(other, whole, &e), &e, XMC_EINVAL, NULL, 0);
    xmc_ova_free(other);
    for (int k = 0; k < 3; k++)
        xmc_ova_free(p[k]);
    xmc_ova_free(whole);
    xmc_ova_free(a);
    xmc_ova_free(b);
    xmc_csr_free(Y);
}

static void test_shards_sgdm(void **state)
{
    (void)state;
    check_sharded_steps(XMC_HEAD_SGDM);
}

static void test_shards_adam(void **state)
{
    (void)state;
    check_sharded_steps(XMC_HEAD_ADAM);
}

static xmc_ffi *ffi(int64_t off, int64_t n)
{
    xmc_ffi_config c;
    memset(&c, 0, sizeof c);
    c.n_labels = n;
    c.label_offset = off;
    c.d_in = D;
    c.fan_in = 5;
    c.bias = 1;
    c.opt = XMC_HEAD_ADAM;
    c.chunk = 8;
    c.max_batch = B;
    c.seed = 9;
    xmc_ffi *h = NULL;
    xmc_error e = {0};
    assert_int_equal(xmc_ffi_create(&c, &h, &e), XMC_OK);
    return h;
}

static void ffi_rows(const xmc_ffi *h, float *w, int32_t *idx)
{
    xmc_error e = {0};
    const xmc_ffi_config *c = xmc_ffi_get_config(h);
    assert_int_equal(xmc_ffi_get_rows(h, 0, c->n_labels, w, idx, NULL, &e), XMC_OK);
}

static void ffi_step(xmc_ffi *h, const float *E, const xmc_csr *Y, int64_t t, float *dE)
{
    xmc_ova_hparams hp = hparams(0.05f, 0.0f, t);
    xmc_error e = {0};
    assert_int_equal(xmc_ffi_train_step(h, E, B, Y, NULL, &hp, dE, NULL, &e), XMC_OK);
}

static void test_ffi_reshard(void **state)
{
    (void)state;
    enum { F = 5 };
    float E[B * D], dE[B * D], w[L * F], ws[L * F];
    int32_t idx[L * F], idxs[L * F];
    random_embeddings(4, E);
    xmc_csr *Y = targets(13);
    xmc_ffi *whole = ffi(0, L), *a = ffi(0, S0), *b = ffi(S0, L - S0);
    xmc_error e = {0};
    for (int64_t t = 1; t <= 3; t++) {
        ffi_step(whole, E, Y, t, dE);
        ffi_step(a, E, Y, t, dE);
        ffi_step(b, E, Y, t, dE);
    }
    /* A rewiring round on each: streams keyed by global label id. */
    int64_t n0 = 0, n1 = 0, n2 = 0;
    assert_int_equal(xmc_ffi_rewire(whole, 0, 0.03f, &n0, &e), XMC_OK);
    assert_int_equal(xmc_ffi_rewire(a, 0, 0.03f, &n1, &e), XMC_OK);
    assert_int_equal(xmc_ffi_rewire(b, 0, 0.03f, &n2, &e), XMC_OK);
    assert_int_equal(n0, n1 + n2);
    assert_true(n0 > 0); /* the round did change the topology */
    xmc_ffi *p[3] = {ffi(0, 10), ffi(10, 20), ffi(30, 7)};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(xmc_ffi_copy_rows(p[k], a, &e), XMC_OK);
        assert_int_equal(xmc_ffi_copy_rows(p[k], b, &e), XMC_OK);
        assert_int_equal(xmc_ffi_steps(p[k]), 3);
        assert_int_equal(xmc_ffi_rewire_rounds(p[k]), 1);
    }
    ffi_step(whole, E, Y, 4, dE);
    for (int k = 0; k < 3; k++)
        ffi_step(p[k], E, Y, 4, dE);
    ffi_rows(whole, w, idx);
    ffi_rows(p[0], ws, idxs);
    ffi_rows(p[1], ws + 10 * F, idxs + 10 * F);
    ffi_rows(p[2], ws + 30 * F, idxs + 30 * F);
    assert_memory_equal(idx, idxs, sizeof idx);
    assert_true(tu_rel_err(ws, w, L * F, 1e-7, 1e-5) <= 1.0);
    for (int k = 0; k < 3; k++)
        xmc_ffi_free(p[k]);
    xmc_ffi_free(whole);
    xmc_ffi_free(a);
    xmc_ffi_free(b);
    xmc_csr_free(Y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shards_sgdm),
        cmocka_unit_test(test_shards_adam),
        cmocka_unit_test(test_ffi_reshard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
