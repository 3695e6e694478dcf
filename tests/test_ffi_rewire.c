/* Dynamic sparse training of the fixed fan-in head: pruning by global
 * fraction (exact count, smallest magnitudes, ties) and by threshold,
 * regrowth (exactly F distinct sorted inputs, new inputs unused before,
 * weight and optimizer state zeroed, kept slots untouched), determinism and
 * thread-count independence, frozen topology, the schedule (interval, end,
 * cosine threshold), and the auxiliary meta-classifier targets and alpha. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "head/ffi_internal.h"
#include "testutil.h"

static xmc_ffi *head(int64_t L, int d, int F, xmc_head_opt opt, uint64_t seed)
{
    xmc_ffi_config c = {0};
    c.n_labels = L;
    c.d_in = d;
    c.fan_in = F;
    c.max_batch = 16;
    c.opt = opt;
    c.seed = seed;
    c.init_std = 0.1f;
    xmc_ffi *h = NULL;
    xmc_error e = {0};
    if (xmc_ffi_create(&c, &h, &e))
        fail_msg("create: %s", e.msg);
    return h;
}

/* Fill the optimizer state with non-zero values so zeroing is visible. */
static void fill_state(xmc_ffi *h)
{
    size_t n = (size_t)h->cfg.n_labels * h->cfg.fan_in;
    for (size_t i = 0; i < n; i++) {
        h->m[i] = 1.0f + (float)(i % 7);
        if (h->v)
            h->v[i] = 2.0f + (float)(i % 5);
    }
}

static int has(const int32_t *row, int F, int32_t x)
{
    for (int k = 0; k < F; k++)
        if (row[k] == x)
            return k;
    return -1;
}

static void check_rows(const xmc_ffi *h)
{
    const int F = h->cfg.fan_in, d = h->cfg.d_in;
    for (int64_t u = 0; u < h->cfg.n_labels; u++) {
        const int32_t *row = h->idx + u * F;
        for (int k = 0; k < F; k++) {
            assert_true(row[k] >= 0 && row[k] < d);
            if (k)
                assert_true(row[k] > row[k - 1]); /* sorted, hence distinct */
        }
    }
}

/* Old (idx, W, m, v) vs new: kept slots unchanged, regrown ones zero and
 * new to the label (when fresh inputs were available). Returns #regrown. */
static int64_t check_regrowth(const xmc_ffi *h, const int32_t *oi, const float *oW,
                              const float *om, const float *ov, int expect_fresh)
{
    const int F = h->cfg.fan_in;
    int64_t regrown = 0;
    for (int64_t u = 0; u < h->cfg.n_labels; u++) {
        const int32_t *row = h->idx + u * F;
        for (int k = 0; k < F; k++) {
            int ko = has(oi + u * F, F, row[k]);
            size_t q = (size_t)u * F + k, qo = (size_t)u * F + (size_t)(ko < 0 ? 0 : ko);
            if (ko >= 0 && !(h->W[q] == 0 && h->m[q] == 0)) {
                /* kept */
                assert_true(h->W[q] == oW[qo]);
                assert_true(h->m[q] == om[qo]);
                if (h->v)
                    assert_true(h->v[q] == ov[qo]);
            } else {
                if (expect_fresh)
                    assert_int_equal(ko, -1);
                assert_true(h->W[q] == 0.0f);
                assert_true(h->m[q] == 0.0f);
                if (h->v)
                    assert_true(h->v[q] == 0.0f);
                regrown++;
            }
        }
    }
    return regrown;
}

typedef struct snap {
    int32_t *i;
    float *W, *m, *v;
} snap;

static snap take(const xmc_ffi *h)
{
    size_t n = (size_t)h->cfg.n_labels * h->cfg.fan_in;
    snap s = {malloc(n * 4), malloc(n * 4), malloc(n * 4), malloc(n * 4)};
    memcpy(s.i, h->idx, n * 4);
    memcpy(s.W, h->W, n * 4);
    memcpy(s.m, h->m, n * 4);
    if (h->v)
        memcpy(s.v, h->v, n * 4);
    return s;
}

static void drop(snap *s)
{
    free(s->i);
    free(s->W);
    free(s->m);
    free(s->v);
}

static void test_fraction_prune_regrow(void **state)
{
    (void)state;
    const int64_t L = 300;
    const int d = 64, F = 12;
    for (int opt = 0; opt < 2; opt++) {
        xmc_ffi *h = head(L, d, F, opt ? XMC_HEAD_ADAM : XMC_HEAD_SGDM, 5);
        fill_state(h);
        snap s = take(h);
        int64_t np = -1;
        xmc_error e = {0};
        uint64_t a0 = xmc_mem_alloc_count();
        assert_int_equal(xmc_ffi_rewire(h, 0.3, 0, &np, &e), XMC_OK);
        assert_int_equal(xmc_mem_alloc_count(), a0); /* scratch sized at create */
        int64_t K = llround(0.3 * (double)(L * F));
        assert_int_equal(np, K);
        check_rows(h);
        assert_int_equal(check_regrowth(h, s.i, s.W, s.m, s.v, 1), K);
        /* The pruned weights were the globally smallest: every kept |W| is
         * >= every pruned |W|. */
        float max_pruned = 0, min_kept = INFINITY;
        for (int64_t u = 0; u < L; u++)
            for (int k = 0; k < F; k++) {
                float a = fabsf(s.W[u * F + k]);
                int kn = has(h->idx + u * F, F, s.i[u * F + k]);
                if (kn < 0 || (h->W[u * F + kn] == 0 && h->m[u * F + kn] == 0))
                    max_pruned = a > max_pruned ? a : max_pruned;
                else
                    min_kept = a < min_kept ? a : min_kept;
            }
        assert_true(max_pruned <= min_kept);
        assert_int_equal(xmc_ffi_rewire_rounds(h), 1);
        drop(&s);
        xmc_ffi_free(h);
    }
}

static void test_threshold_prune(void **state)
{
    (void)state;
    const int64_t L = 200;
    const int d = 50, F = 10;
    xmc_ffi *h = head(L, d, F, XMC_HEAD_SGDM, 6);
    fill_state(h);
    snap s = take(h);
    const float thr = 0.05f;
    int64_t want = 0;
    for (int64_t q = 0; q < L * F; q++)
        want += fabsf(s.W[q]) < thr;
    assert_true(want > 0 && want < L * F);
    int64_t np;
    xmc_error e = {0};
    assert_int_equal(xmc_ffi_rewire(h, 0, thr, &np, &e), XMC_OK);
    assert_int_equal(np, want);
    check_rows(h);
    assert_int_equal(check_regrowth(h, s.i, s.W, s.m, s.v, 1), want);
    drop(&s);
    xmc_ffi_free(h);
}

/* Many exact ties (e.g. freshly regrown zeros): exactly K pruned, in label
 * order, whatever the thread count. */
static void test_ties_and_threads(void **state)
{
    (void)state;
    const int64_t L = 97;
    const int d = 40, F = 8;
    int32_t *ref_idx = NULL;
    for (int threads = 1; threads <= 2; threads++) {
        xmc_set_threads(threads);
        xmc_ffi *h = head(L, d, F, XMC_HEAD_SGDM, 7);
        for (int64_t q = 0; q < L * F; q += 3)
            h->W[q] = 0.0f; /* 259 zeros */
        int64_t np;
        xmc_error e = {0};
        assert_int_equal(xmc_ffi_rewire(h, 0.1, 0, &np, &e), XMC_OK);
        assert_int_equal(np, llround(0.1 * L * F)); /* 78 < 259 ties */
        check_rows(h);
        /* Ties go in label order: the first labels' zeros were pruned. */
        assert_int_equal(xmc_ffi_rewire(h, 0.05, 0, &np, &e), XMC_OK);
        check_rows(h);
        if (!ref_idx) {
            ref_idx = malloc((size_t)L * F * 4);
            memcpy(ref_idx, h->idx, (size_t)L * F * 4);
        } else {
            assert_memory_equal(ref_idx, h->idx, (size_t)L * F * 4);
        }
        xmc_ffi_free(h);
    }
    xmc_set_threads(2);
    free(ref_idx);
}

static void test_deterministic(void **state)
{
    (void)state;
    xmc_ffi *a = head(150, 30, 6, XMC_HEAD_ADAM, 9), *b = head(150, 30, 6, XMC_HEAD_ADAM, 9);
    xmc_ffi *c = head(150, 30, 6, XMC_HEAD_ADAM, 10);
    xmc_error e = {0};
    for (int r = 0; r < 3; r++) {
        assert_int_equal(xmc_ffi_rewire(a, 0.2, 0, NULL, &e), XMC_OK);
        assert_int_equal(xmc_ffi_rewire(b, 0.2, 0, NULL, &e), XMC_OK);
        assert_int_equal(xmc_ffi_rewire(c, 0.2, 0, NULL, &e), XMC_OK);
        /* give the regrown zeros some weight so the next round differs */
        for (int64_t q = 0; q < 150 * 6; q++) {
            float t = 0.01f * (float)((q * 37) % 11);
            a->W[q] += t, b->W[q] += t, c->W[q] += t;
        }
    }
    assert_memory_equal(a->idx, b->idx, 150 * 6 * 4);
    assert_memory_equal(a->W, b->W, 150 * 6 * 4);
    assert_memory_not_equal(a->idx, c->idx, 150 * 6 * 4);
    xmc_ffi_free(a);
    xmc_ffi_free(b);
    xmc_ffi_free(c);
}

/* Few free inputs (F close to d, or F == d): pruned inputs may return, the
 * row stays F distinct inputs. */
static void test_nearly_dense(void **state)
{
    (void)state;
    const int d = 20;
    const int Fs[] = {19, 20, 15};
    for (int i = 0; i < 3; i++) {
        xmc_ffi *h = head(50, d, Fs[i], XMC_HEAD_SGDM, 11);
        fill_state(h);
        snap s = take(h);
        int64_t np;
        assert_int_equal(xmc_ffi_rewire(h, 0.5, 0, &np, NULL), XMC_OK);
        assert_int_equal(np, llround(0.5 * 50 * Fs[i]));
        check_rows(h);
        check_regrowth(h, s.i, s.W, s.m, s.v, 0);
        drop(&s);
        xmc_ffi_free(h);
    }
}

static void test_frozen(void **state)
{
    (void)state;
    xmc_ffi *h = head(60, 30, 5, XMC_HEAD_SGDM, 12);
    xmc_ffi_schedule s = {.total_steps = 100, .rewire_interval = 10, .rewire_threshold = 0.2f};
    assert_int_equal(xmc_ffi_schedule_end(&s), 66);
    xmc_error e = {0};
    int64_t np;
    int rounds = 0;
    snap before = take(h);
    for (int64_t step = 1; step <= 100; step++) {
        if (step == 67) {
            /* Frozen from step 66 on. */
            assert_true(xmc_ffi_frozen(h));
            drop(&before);
            before = take(h);
        }
        assert_int_equal(xmc_ffi_schedule_apply(h, &s, step, &np, &e), XMC_OK);
        if (xmc_ffi_schedule_due(&s, step))
            rounds++;
        if (step > 66)
            assert_int_equal(np, 0);
    }
    assert_int_equal(rounds, 6);
    assert_int_equal(xmc_ffi_rewire_rounds(h), 6);
    assert_memory_equal(before.i, h->idx, 60 * 5 * 4);
    assert_memory_equal(before.W, h->W, 60 * 5 * 4);
    /* Direct rewiring is refused and changes nothing. */
    assert_int_equal(xmc_ffi_rewire(h, 0.5, 0, &np, &e), XMC_ESTATE);
    assert_int_equal(np, 0);
    assert_memory_equal(before.i, h->idx, 60 * 5 * 4);
    assert_memory_equal(before.W, h->W, 60 * 5 * 4);
    drop(&before);
    /* Freezing by hand too. */
    xmc_ffi *g = head(10, 8, 2, XMC_HEAD_SGDM, 1);
    xmc_ffi_freeze(g);
    assert_int_equal(xmc_ffi_rewire(g, 0, 1.0f, NULL, NULL), XMC_ESTATE);
    xmc_ffi_free(g);
    xmc_ffi_free(h);
}

static void test_schedule(void **state)
{
    (void)state;
    xmc_ffi_schedule s = {.total_steps = 1000, .rewire_interval = 100, .rewire_threshold = 0.1f};
    assert_int_equal(xmc_ffi_schedule_end(&s), 660);
    assert_false(xmc_ffi_schedule_due(&s, 0));
    assert_false(xmc_ffi_schedule_due(&s, 50));
    assert_true(xmc_ffi_schedule_due(&s, 100));
    assert_true(xmc_ffi_schedule_due(&s, 600));
    assert_false(xmc_ffi_schedule_due(&s, 700));
    assert_true(fabsf(xmc_ffi_schedule_threshold(&s, 0) - 0.1f) < 1e-7f);
    float mid = 1e-4f + 0.5f * (0.1f - 1e-4f);
    assert_true(fabsf(xmc_ffi_schedule_threshold(&s, 330) - mid) < 1e-6f);
    assert_true(fabsf(xmc_ffi_schedule_threshold(&s, 660) - 1e-4f) < 1e-9f);
    assert_true(fabsf(xmc_ffi_schedule_threshold(&s, 900) - 1e-4f) < 1e-9f);
    assert_true(xmc_ffi_schedule_threshold(&s, 100) > xmc_ffi_schedule_threshold(&s, 200));
    s.rewire_end = 250;
    assert_true(xmc_ffi_schedule_due(&s, 200));
    assert_false(xmc_ffi_schedule_due(&s, 300));
    s.rewire_interval = 0;
    assert_false(xmc_ffi_schedule_due(&s, 200));
    /* Bad arguments. */
    xmc_ffi *h = head(10, 8, 2, XMC_HEAD_SGDM, 1);
    assert_int_equal(xmc_ffi_rewire(h, 1.5, 0, NULL, NULL), XMC_EINVAL);
    assert_int_equal(xmc_ffi_rewire(h, 0, -1.0f, NULL, NULL), XMC_EINVAL);
    assert_int_equal(xmc_ffi_rewire(h, 0, NAN, NULL, NULL), XMC_EINVAL);
    xmc_ffi_free(h);
}

/* ----------------------------------------------------- auxiliary meta head */

static void test_aux_targets(void **state)
{
    (void)state;
    /* 8 labels in 3 clusters. */
    const int32_t cl[8] = {0, 2, 1, 2, 0, 1, 1, 2};
    int64_t ip[5] = {0, 3, 3, 5, 8};
    int32_t ind[8] = {1, 3, 6, /* row 1 empty */ 0, 4, 2, 5, 7};
    float val[8] = {1, 1, 0.5f, 1, 1, 0, 1, 1};
    xmc_csr Y = {4, 8, ip, ind, val, NULL};
    int64_t optr[5];
    int32_t oind[12];
    xmc_error e = {0};
    assert_int_equal(xmc_ffi_aux_targets(&Y, NULL, 4, cl, 8, 3, optr, oind, 12, &e), XMC_OK);
    const int64_t want_ptr[5] = {0, 2, 2, 3, 5};
    const int32_t want_ind[5] = {1, 2, 0, 1, 2}; /* {2,2,1}; {}; {0,0}; {1(0 val skipped),1,2} */
    assert_memory_equal(optr, want_ptr, sizeof want_ptr);
    assert_memory_equal(oind, want_ind, sizeof want_ind);
    /* Selected rows, repeated. */
    int64_t rows[3] = {3, 3, 1};
    assert_int_equal(xmc_ffi_aux_targets(&Y, rows, 3, cl, 8, 3, optr, oind, 12, &e), XMC_OK);
    assert_int_equal(optr[3], 4);
    assert_int_equal(oind[0], 1);
    assert_int_equal(oind[1], 2);
    /* Capacity too small, cluster id or label out of range. */
    assert_int_equal(xmc_ffi_aux_targets(&Y, NULL, 4, cl, 8, 3, optr, oind, 3, &e), XMC_EINVAL);
    const int32_t badcl[8] = {0, 2, 1, 3, 0, 1, 1, 2};
    xmc_error_clear(&e);
    assert_int_equal(xmc_ffi_aux_targets(&Y, NULL, 4, badcl, 8, 3, optr, oind, 12, &e),
                     XMC_EINVAL);
    assert_non_null(strstr(e.msg, "cluster"));
    assert_int_equal(xmc_ffi_aux_targets(&Y, NULL, 4, cl, 7, 3, optr, oind, 12, NULL), XMC_EINVAL);
    rows[0] = 4;
    assert_int_equal(xmc_ffi_aux_targets(&Y, rows, 3, cl, 8, 3, optr, oind, 12, NULL), XMC_EINVAL);
}

static void test_aux_alpha(void **state)
{
    (void)state;
    assert_true(fabs(xmc_ffi_aux_alpha(0.4, 0, 10) - 0.4) < 1e-12);
    assert_true(fabs(xmc_ffi_aux_alpha(0.4, 5, 10) - 0.2) < 1e-12);
    assert_true(fabs(xmc_ffi_aux_alpha(0.4, 2.5, 10) - 0.2 * (1 + cos(M_PI / 4))) < 1e-12);
    assert_true(xmc_ffi_aux_alpha(0.4, 10, 10) == 0);
    assert_true(xmc_ffi_aux_alpha(0.4, 12, 10) == 0);
    assert_true(xmc_ffi_aux_alpha(0.4, 1, 0) == 0);
    double prev = 1;
    for (double ep = 0; ep < 10; ep += 0.5) {
        double a = xmc_ffi_aux_alpha(XMC_FFI_DEFAULT_AUX_SCALE, ep, 10);
        assert_true(a <= prev && a > 0);
        prev = a;
    }
}

/* SPARTEX's objective (1 - alpha) L_main + alpha L_meta with an FFI main
 * head and a dense meta head (an xmc_ffi with fan_in = d) over clusters:
 * targets from xmc_ffi_aux_targets, gradients through loss_scale; the summed
 * dE matches finite differences of the combined loss. */
static double combined(xmc_ffi *main_h, xmc_ffi *meta, const float *E, int B, const xmc_csr *Y,
                       const xmc_csr *Yc, double alpha, float *dE)
{
    xmc_ova_hparams hp = {0}; /* lr 0: weights stay */
    hp.loss = XMC_LOSS_BCE;
    float dE2[64];
    double l1, l2;
    assert_int_equal(xmc_ffi_train_step_ex(main_h, E, B, Y, NULL, &hp, (float)(1 - alpha), dE,
                                           &l1, NULL),
                     XMC_OK);
    assert_int_equal(xmc_ffi_train_step_ex(meta, E, B, Yc, NULL, &hp, (float)alpha, dE2, &l2, NULL),
                     XMC_OK);
    for (int i = 0; i < B * meta->cfg.d_in; i++)
        dE[i] += dE2[i];
    return (1 - alpha) * l1 + alpha * l2;
}

static void test_aux_composition(void **state)
{
    (void)state;
    enum { NL = 12, NC = 4, DD = 10, NB = 5 };
    int32_t cl[NL];
    for (int u = 0; u < NL; u++)
        cl[u] = (int32_t)((u * 7) % NC);
    int64_t ip[NB + 1] = {0, 2, 3, 3, 6, 8};
    int32_t ind[8] = {1, 5, 11, /* empty */ 0, 4, 8, 2, 6};
    xmc_csr Y = {NB, NL, ip, ind, NULL, NULL};
    int64_t cip[NB + 1];
    int32_t cind[NB * NC];
    assert_int_equal(xmc_ffi_aux_targets(&Y, NULL, NB, cl, NL, NC, cip, cind, NB * NC, NULL),
                     XMC_OK);
    /* Brute force: cluster c of row b is positive iff a label of b is in c. */
    for (int b = 0; b < NB; b++) {
        int want[NC] = {0}, got[NC] = {0};
        for (int64_t p = ip[b]; p < ip[b + 1]; p++)
            want[cl[ind[p]]] = 1;
        for (int64_t p = cip[b]; p < cip[b + 1]; p++)
            got[cind[p]] = 1;
        assert_memory_equal(want, got, sizeof want);
    }
    xmc_csr Yc = {NB, NC, cip, cind, NULL, NULL};
    xmc_ffi_config c = {0};
    c.n_labels = NL, c.d_in = DD, c.fan_in = 3, c.max_batch = NB, c.seed = 3, c.init_std = 0.5f;
    xmc_ffi *main_h = NULL, *meta = NULL;
    assert_int_equal(xmc_ffi_create(&c, &main_h, NULL), XMC_OK);
    c.n_labels = NC, c.fan_in = DD, c.bias = 1;
    assert_int_equal(xmc_ffi_create(&c, &meta, NULL), XMC_OK);
    float E[NB * DD], dE[NB * DD], tmp[NB * DD];
    xmc_rng r;
    xmc_rng_seed(&r, 4, 0);
    for (int i = 0; i < NB * DD; i++)
        E[i] = xmc_rng_normal(&r);
    const double alpha = xmc_ffi_aux_alpha(XMC_FFI_DEFAULT_AUX_SCALE, 1.0, 4.0);
    assert_true(alpha > 0.3 && alpha < 0.4);
    combined(main_h, meta, E, NB, &Y, &Yc, alpha, dE);
    const float hstep = 1e-2f;
    for (int i = 0; i < NB * DD; i++) {
        float keep = E[i];
        E[i] = keep + hstep;
        double lp = combined(main_h, meta, E, NB, &Y, &Yc, alpha, tmp);
        E[i] = keep - hstep;
        double lm = combined(main_h, meta, E, NB, &Y, &Yc, alpha, tmp);
        E[i] = keep;
        double fd = (lp - lm) / (2.0 * hstep);
        if (!(fabs(fd - dE[i]) <= 2e-3 + 1e-2 * fabs(fd)))
            fail_msg("dE[%d]: analytic %.6g, finite difference %.6g", i, dE[i], fd);
    }
    xmc_ffi_free(main_h);
    xmc_ffi_free(meta);
}

int main(void)
{
    /* Sleep, not spin, at OpenMP barriers: on a shared, oversubscribed machine
     * a spinning thread waits for a descheduled partner (7.7 s vs 0.4 s for
     * this program under ASan). Must precede the first OpenMP call. */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    xmc_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fraction_prune_regrow),
        cmocka_unit_test(test_threshold_prune),
        cmocka_unit_test(test_ties_and_threads),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_nearly_dense),
        cmocka_unit_test(test_frozen),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_aux_targets),
        cmocka_unit_test(test_aux_alpha),
        cmocka_unit_test(test_aux_composition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
