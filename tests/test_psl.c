/* Pick-some-labels core (include/xmc/psl.h): pool construction on a
 * hand-built example and random properties, reproducibility, no allocation
 * per batch; losses (decoupled, SupCon, both directions, mixing, BCE)
 * against finite differences and against the naive numpy reference
 * (tests/ref/psl_ref.py -> tests/data/psl/psl_ref.txt). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/data.h"
#include "xmc/psl.h"

/* ------------------------------------------------------------- fixture */

#define FIX_MAX 64
typedef struct fix {
    int n;
    char name[FIX_MAX][48];
    int count[FIX_MAX];
    double *v[FIX_MAX];
} fix;

static void fix_load(fix *f)
{
    char path[1024];
    const char *src = getenv("XMC_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/data/psl/psl_ref.txt", src ? src : ".");
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    memset(f, 0, sizeof *f);
    char name[48];
    int c;
    while (fscanf(fp, "%47s", name) == 1) {
        if (name[0] == '#') {
            while ((c = fgetc(fp)) != '\n' && c != EOF)
                ;
            continue;
        }
        assert_true(f->n < FIX_MAX);
        int cnt;
        assert_int_equal(fscanf(fp, "%d", &cnt), 1);
        snprintf(f->name[f->n], sizeof f->name[0], "%s", name);
        f->count[f->n] = cnt;
        f->v[f->n] = calloc((size_t)cnt + 1, sizeof(double));
        for (int i = 0; i < cnt; i++)
            assert_int_equal(fscanf(fp, "%lf", &f->v[f->n][i]), 1);
        f->n++;
    }
    fclose(fp);
}

static const double *fix_get(const fix *f, const char *name, int count)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->name[i], name) == 0) {
            assert_int_equal(f->count[i], count);
            return f->v[i];
        }
    fail_msg("fixture has no array %s", name);
    return NULL;
}

static void fix_free(fix *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->v[i]);
}

static void to_float(const double *d, float *out, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = (float)d[i];
}

/* A pool over caller arrays (hand-built), transpose filled. */
typedef struct hand_pool {
    xmc_psl_pool p;
    int32_t labels[64], qptr[65], qcol[512], lptr[65], lrow[512];
    float qval[512], lval[512];
    int64_t queries[64];
} hand_pool;

static void hand_pool_init(hand_pool *h, int nq, int nl)
{
    memset(h, 0, sizeof *h);
    h->p.nq = nq;
    h->p.nl = nl;
    h->p.queries = h->queries;
    h->p.labels = h->labels;
    h->p.qptr = h->qptr;
    h->p.qcol = h->qcol;
    h->p.qval = h->qval;
    h->p.lptr = h->lptr;
    h->p.lrow = h->lrow;
    h->p.lval = h->lval;
    for (int c = 0; c < nl; c++)
        h->labels[c] = c;
    for (int i = 0; i < nq; i++)
        h->queries[i] = i;
}

static void test_fixture_losses(void **state)
{
    (void)state;
    fix f;
    fix_load(&f);
    const int nq = 5, nl = 7;
    hand_pool hp;
    hand_pool_init(&hp, nq, nl);
    const double *qptr = fix_get(&f, "qptr", nq + 1);
    int nnz = (int)qptr[nq];
    const double *qcol = fix_get(&f, "qcol", nnz), *qval = fix_get(&f, "qval", nnz);
    for (int i = 0; i <= nq; i++)
        hp.qptr[i] = (int32_t)qptr[i];
    for (int e = 0; e < nnz; e++) {
        hp.qcol[e] = (int32_t)qcol[e];
        hp.qval[e] = (float)qval[e];
    }
    xmc_psl_pool_transpose(&hp.p);
    xmc_error err = {0};
    assert_int_equal(xmc_psl_pool_check(&hp.p, &err), XMC_OK);
    float S[35], dS[35], want[35];
    to_float(fix_get(&f, "S", 35), S, 35);
    float t = (float)fix_get(&f, "t", 1)[0], lam = (float)fix_get(&f, "lam", 1)[0];
    const char *kinds[2] = {"decoupled", "supcon"};
    for (int k = 0; k < 2; k++) {
        char name[64];
        for (int d = 0; d < 2; d++) {
            double loss;
            memset(dS, 0, sizeof dS);
            assert_int_equal(xmc_psl_loss_dir(&hp.p, S, k, t, d, 1.0f, &loss, dS, &err), XMC_OK);
            snprintf(name, sizeof name, "%s_dir%d_loss", kinds[k], d);
            assert_true(fabs(loss - fix_get(&f, name, 1)[0]) < 1e-5);
            snprintf(name, sizeof name, "%s_dir%d_dS", kinds[k], d);
            to_float(fix_get(&f, name, 35), want, 35);
            assert_true(tu_rel_err(dS, want, 35, 1e-5, 1e-5) <= 1.0);
        }
        xmc_psl_loss_params lp = {k, t, lam};
        double loss;
        assert_int_equal(xmc_psl_loss(&hp.p, S, &lp, &loss, dS, &err), XMC_OK);
        snprintf(name, sizeof name, "%s_mixed_loss", kinds[k]);
        assert_true(fabs(loss - fix_get(&f, name, 1)[0]) < 1e-5);
        snprintf(name, sizeof name, "%s_mixed_dS", kinds[k]);
        to_float(fix_get(&f, name, 35), want, 35);
        assert_true(tu_rel_err(dS, want, 35, 1e-5, 1e-5) <= 1.0);
    }
    double loss;
    memset(dS, 0, sizeof dS);
    assert_int_equal(xmc_psl_bce(&hp.p, S, 1.0f, &loss, dS, &err), XMC_OK);
    assert_true(fabs(loss - fix_get(&f, "bce_loss", 1)[0]) < 1e-5);
    to_float(fix_get(&f, "bce_dS", 35), want, 35);
    assert_true(tu_rel_err(dS, want, 35, 1e-5, 1e-5) <= 1.0);
    /* Row 4 has every pool label positive: its decoupled loss and gradient
     * are exactly 0; row 3 has no positive: no gradient in the q->l term. */
    memset(dS, 0, sizeof dS);
    assert_int_equal(xmc_psl_loss_dir(&hp.p, S, XMC_PSL_DECOUPLED, t, 0, 1.0f, &loss, dS, &err),
                     XMC_OK);
    for (int c = 0; c < nl; c++) {
        assert_true(dS[3 * nl + c] == 0.0f);
        assert_true(dS[4 * nl + c] == 0.0f);
    }
    fix_free(&f);
}

/* ------------------------------------------------------------- FD */

static double loss_of(const xmc_psl_pool *p, const float *S, int which, int kind, float t,
                      float lam)
{
    double l = 0;
    xmc_error err = {0};
    if (which == 0 || which == 1)
        assert_int_equal(xmc_psl_loss_dir(p, S, kind, t, which, 1.0f, &l, NULL, &err), XMC_OK);
    else if (which == 2) {
        xmc_psl_loss_params lp = {kind, t, lam};
        assert_int_equal(xmc_psl_loss(p, S, &lp, &l, NULL, &err), XMC_OK);
    } else
        assert_int_equal(xmc_psl_bce(p, S, 1.0f, &l, NULL, &err), XMC_OK);
    return l;
}

/* Random pool: each query gets 0..4 random positives with soft targets. */
static void random_pool(hand_pool *hp, int nq, int nl, uint64_t seed)
{
    hand_pool_init(hp, nq, nl);
    xmc_rng r;
    xmc_rng_seed(&r, seed, 0);
    int e = 0;
    for (int i = 0; i < nq; i++) {
        hp->qptr[i] = e;
        for (int c = 0; c < nl; c++)
            if (xmc_rng_uniform(&r) < 0.25) {
                hp->qcol[e] = c;
                float soft = (float)(0.2 + 0.8 * xmc_rng_uniform(&r));
                hp->qval[e] = xmc_rng_uniform(&r) < 0.5 ? 1.0f : soft;
                e++;
            }
    }
    hp->qptr[nq] = e;
    xmc_psl_pool_transpose(&hp->p);
}

static void test_losses_fd(void **state)
{
    (void)state;
    const int nq = 6, nl = 9;
    hand_pool hp;
    random_pool(&hp, nq, nl, 11);
    xmc_error err = {0};
    assert_int_equal(xmc_psl_pool_check(&hp.p, &err), XMC_OK);
    float S[54], dS[54], fd[54];
    xmc_rng r;
    xmc_rng_seed(&r, 3, 1);
    for (int i = 0; i < nq * nl; i++)
        S[i] = 0.8f * xmc_rng_normal(&r);
    const float t = 0.7f, lam = 0.4f;
    for (int kind = 0; kind < 2; kind++)
        for (int which = 0; which < 4; which++) {
            if (which == 3 && kind == 1)
                continue;
            memset(dS, 0, sizeof dS);
            double l;
            if (which < 2)
                assert_int_equal(xmc_psl_loss_dir(&hp.p, S, kind, t, which, 1.0f, &l, dS, &err),
                                 XMC_OK);
            else if (which == 2) {
                xmc_psl_loss_params lp = {kind, t, lam};
                assert_int_equal(xmc_psl_loss(&hp.p, S, &lp, &l, dS, &err), XMC_OK);
            } else
                assert_int_equal(xmc_psl_bce(&hp.p, S, 1.0f, &l, dS, &err), XMC_OK);
            assert_true(isfinite(l) && l > 0);
            const float h = 1e-3f;
            for (int i = 0; i < nq * nl; i++) {
                float s0 = S[i];
                S[i] = s0 + h;
                double lp_ = loss_of(&hp.p, S, which, kind, t, lam);
                S[i] = s0 - h;
                double lm = loss_of(&hp.p, S, which, kind, t, lam);
                S[i] = s0;
                fd[i] = (float)((lp_ - lm) / (2.0 * h));
            }
            double e = tu_rel_err(dS, fd, (size_t)(nq * nl), 2e-4, 2e-3);
            if (e > 1.0)
                fail_msg("kind %d which %d: gradient off FD by %g tolerances", kind, which, e);
        }
    /* scale: loss_dir adds scale * gradient */
    float d2[54];
    memset(dS, 0, sizeof dS);
    memset(d2, 0, sizeof d2);
    double l1, l2;
    assert_int_equal(xmc_psl_loss_dir(&hp.p, S, 0, t, 0, 1.0f, &l1, dS, &err), XMC_OK);
    assert_int_equal(xmc_psl_loss_dir(&hp.p, S, 0, t, 0, 2.5f, &l2, d2, &err), XMC_OK);
    assert_true(l1 == l2);
    for (int i = 0; i < nq * nl; i++)
        assert_true(fabsf(d2[i] - 2.5f * dS[i]) <= 1e-6f + 1e-5f * fabsf(d2[i]));
}

/* Huge logits: log-sum-exp keeps the loss finite and the gradient exact. */
static void test_losses_stable(void **state)
{
    (void)state;
    hand_pool hp;
    hand_pool_init(&hp, 2, 3);
    /* row 0: positive col 0; row 1: positives cols 1, 2 */
    int32_t qptr[3] = {0, 1, 3}, qcol[3] = {0, 1, 2};
    memcpy(hp.qptr, qptr, sizeof qptr);
    memcpy(hp.qcol, qcol, sizeof qcol);
    hp.qval[0] = hp.qval[1] = hp.qval[2] = 1.0f;
    xmc_psl_pool_transpose(&hp.p);
    /* query 0 scores its negative 5000/t above its positive; query 1 ranks
     * its positives far below the negative col 0 */
    float S[6] = {-1000.f, 4000.f, 0.f, 1000.f, -2000.f, -2100.f};
    float dS[6];
    xmc_error err = {0};
    for (int kind = 0; kind < 2; kind++) {
        xmc_psl_loss_params lp = {kind, 0.05f, 1.0f};
        double l;
        assert_int_equal(xmc_psl_loss(&hp.p, S, &lp, &l, dS, &err), XMC_OK);
        assert_true(isfinite(l));
        /* row 0: loss ≈ (4000 - (-1000)) / t = 100000 */
        assert_true(l > 1e4);
        for (int i = 0; i < 6; i++)
            assert_true(isfinite(dS[i]));
        /* the positive of row 0 is pushed up with the full -1/(t * nq) */
        assert_true(fabsf(dS[0] - (-1.0f / 0.05f / 2.0f)) < 1e-3f);
    }
    /* perfectly separated: loss ~ 0, no NaN from exp underflow */
    float S2[6] = {3000.f, -3000.f, -3000.f, -3000.f, 3000.f, 3000.f};
    xmc_psl_loss_params lp = {XMC_PSL_DECOUPLED, 0.01f, 0.5f};
    double l;
    assert_int_equal(xmc_psl_loss(&hp.p, S2, &lp, &l, dS, &err), XMC_OK);
    assert_true(l >= 0 && l < 1e-12);
    for (int i = 0; i < 6; i++)
        assert_true(dS[i] == 0.0f || fabsf(dS[i]) < 1e-20f);
    /* bad parameters */
    lp.temperature = 0.0f;
    tu_assert_error(xmc_psl_loss(&hp.p, S2, &lp, &l, dS, &err), &err, XMC_EINVAL, NULL, 0);
    xmc_error_clear(&err);
    lp.temperature = 1.0f;
    lp.lambda = 1.5f;
    tu_assert_error(xmc_psl_loss(&hp.p, S2, &lp, &l, dS, &err), &err, XMC_EINVAL, NULL, 0);
    xmc_error_clear(&err);
    lp.lambda = 0.5f;
    S2[2] = NAN;
    tu_assert_error(xmc_psl_loss(&hp.p, S2, &lp, &l, dS, &err), &err, XMC_EINVAL, NULL, 0);
}

/* ------------------------------------------------------------- pool */

static xmc_csr *csr_from_rows(int64_t n, int64_t L, const int *const *rows, const int *lens,
                              const float *const *vals)
{
    int64_t nnz = 0;
    for (int64_t i = 0; i < n; i++)
        nnz += lens[i];
    xmc_csr *m;
    xmc_error err = {0};
    assert_int_equal(xmc_csr_create(&m, n, L, nnz, vals != NULL, &err), XMC_OK);
    int64_t e = 0;
    for (int64_t i = 0; i < n; i++) {
        m->indptr[i] = e;
        for (int j = 0; j < lens[i]; j++) {
            m->indices[e] = rows[i][j];
            if (vals)
                m->values[e] = vals[i] ? vals[i][j] : 1.0f;
            e++;
        }
    }
    m->indptr[n] = e;
    assert_int_equal(xmc_csr_check(m, "test", &err), XMC_OK);
    return m;
}

static int pool_col(const xmc_psl_pool *p, int32_t label)
{
    for (int c = 0; c < p->nl; c++)
        if (p->labels[c] == label)
            return c;
    return -1;
}

/* The example: a hard negative of query 0 (label 5) is a positive
 * of query 2, so it must land in P_2^B; query 1's own positive 3 listed in
 * H_1 is skipped as its negative. β and n cover every candidate, so the
 * pool is fully determined. */
static void test_pool_hand(void **state)
{
    (void)state;
    const int r0[] = {1, 2}, r1[] = {3, 7}, r2[] = {2, 5, 8}, r3[] = {0}, r4[] = {4};
    const int *rows[] = {r0, r1, r2, r3, r4};
    const int lens[] = {2, 2, 3, 1, 1};
    const float v2[] = {1.0f, 0.25f, 0.5f};
    const float *vals[] = {NULL, NULL, v2, NULL, NULL};
    xmc_csr *Y = csr_from_rows(5, 10, rows, lens, vals);
    /* dense H, 3 slots, -1 = empty */
    const int32_t H[5 * 3] = {5, 9, -1, 3, 4, 6, 0, 9, -1, 1, 2, 3, 5, 6, 7};
    xmc_psl_negs negs = {5, 3, H, NULL};
    xmc_psl_sampler_config cfg;
    xmc_psl_sampler_config_default(&cfg);
    cfg.max_batch = 4;
    cfg.beta = 3;
    cfg.n_neg = 2;
    cfg.n_labels = 10;
    cfg.seed = 42;
    xmc_psl_sampler *s;
    xmc_error err = {0};
    assert_int_equal(xmc_psl_sampler_create(&cfg, &s, &err), XMC_OK);
    const int64_t batch[3] = {0, 1, 2};
    const xmc_psl_pool *p;
    assert_int_equal(xmc_psl_sampler_build(s, Y, batch, 3, &negs, 7, &p, &err), XMC_OK);
    assert_int_equal(xmc_psl_pool_check(p, &err), XMC_OK);
    /* L_B in first-appearance order */
    const int32_t want_labels[] = {1, 2, 5, 9, 3, 7, 4, 6, 8, 0};
    assert_int_equal(p->nq, 3);
    assert_int_equal(p->nl, 10);
    for (int c = 0; c < 10; c++)
        assert_int_equal(p->labels[c], want_labels[c]);
    /* P_i^B (pool columns) and targets */
    const int32_t want_qptr[] = {0, 2, 4, 7};
    const int32_t want_qcol[] = {0, 1, 4, 5, 1, 2, 8};
    const float want_qval[] = {1, 1, 1, 1, 1.0f, 0.25f, 0.5f};
    for (int i = 0; i <= 3; i++)
        assert_int_equal(p->qptr[i], want_qptr[i]);
    for (int e = 0; e < 7; e++) {
        assert_int_equal(p->qcol[e], want_qcol[e]);
        assert_true(p->qval[e] == want_qval[e]);
    }
    /* label 5 (q0's hard negative) is a positive of q2 */
    int c5 = pool_col(p, 5);
    assert_int_equal(c5, 2);
    assert_int_equal(p->lptr[c5 + 1] - p->lptr[c5], 1);
    assert_int_equal(p->lrow[p->lptr[c5]], 2);
    assert_true(p->lval[p->lptr[c5]] == 0.25f);
    /* label 2 is a positive of q0 and q2 */
    int c2 = pool_col(p, 2);
    assert_int_equal(p->lptr[c2 + 1] - p->lptr[c2], 2);
    assert_int_equal(p->lrow[p->lptr[c2]], 0);
    assert_int_equal(p->lrow[p->lptr[c2] + 1], 2);
    /* 3 was in H_1 but is q1's positive: it is in L_B as a positive only */
    assert_int_equal(p->lptr[pool_col(p, 3) + 1] - p->lptr[pool_col(p, 3)], 1);
    /* negatives-only labels have empty P_l^B */
    for (int c = 0; c < p->nl; c++)
        if (p->labels[c] == 9 || p->labels[c] == 4 || p->labels[c] == 6 || p->labels[c] == 0)
            assert_int_equal(p->lptr[c + 1], p->lptr[c]);

    /* the same lists as a CSR give the same pool */
    const int h0[] = {5, 9}, h1[] = {3, 4, 6}, h2[] = {0, 9}, h3[] = {1, 2, 3}, h4[] = {5, 6, 7};
    const int *hr[] = {h0, h1, h2, h3, h4};
    const int hl[] = {2, 3, 2, 3, 3};
    xmc_csr *Hc = csr_from_rows(5, 10, hr, hl, NULL);
    xmc_psl_negs negc = {0, 0, NULL, Hc};
    int32_t keep[10];
    memcpy(keep, p->labels, sizeof keep);
    assert_int_equal(xmc_psl_sampler_build(s, Y, batch, 3, &negc, 7, &p, &err), XMC_OK);
    assert_int_equal(p->nl, 10);
    assert_memory_equal(p->labels, keep, sizeof keep);

    /* errors: batch too large, bad row, bad negative id, both forms given */
    const int64_t big[5] = {0, 1, 2, 3, 4};
    tu_assert_error(xmc_psl_sampler_build(s, Y, big, 5, &negs, 0, &p, &err), &err, XMC_EINVAL,
                    NULL, 0);
    xmc_error_clear(&err);
    const int64_t bad[1] = {5};
    tu_assert_error(xmc_psl_sampler_build(s, Y, bad, 1, &negs, 0, &p, &err), &err, XMC_EINVAL,
                    NULL, 0);
    xmc_error_clear(&err);
    int32_t Hbad[15];
    memcpy(Hbad, H, sizeof Hbad);
    Hbad[1] = 10;
    xmc_psl_negs nb = {5, 3, Hbad, NULL};
    tu_assert_error(xmc_psl_sampler_build(s, Y, batch, 3, &nb, 0, &p, &err), &err, XMC_EINVAL,
                    NULL, 0);
    xmc_error_clear(&err);
    xmc_psl_negs both = {5, 3, H, Hc};
    tu_assert_error(xmc_psl_sampler_build(s, Y, batch, 3, &both, 0, &p, &err), &err, XMC_EINVAL,
                    NULL, 0);
    xmc_error_clear(&err);
    xmc_psl_sampler_free(s);

    /* capacity: max_row_nnz = 1 sizes P^B for 4 entries; four copies of
     * q2 bring 12 (an error with a hint, not an overflow) */
    cfg.max_row_nnz = 1;
    assert_int_equal(xmc_psl_sampler_create(&cfg, &s, &err), XMC_OK);
    const int64_t b2[4] = {2, 2, 2, 2};
    tu_assert_error(xmc_psl_sampler_build(s, Y, b2, 4, &negs, 0, &p, &err), &err, XMC_ENOMEM,
                    NULL, 0);
    assert_non_null(strstr(err.msg, "max_row_nnz"));
    xmc_psl_sampler_free(s);
    xmc_csr_free(Hc);
    xmc_csr_free(Y);
}

/* Random data: invariants of every pool, reproducibility per (seed, step),
 * no allocation per build, rows longer than the pool (binary-search path). */
static void test_pool_random(void **state)
{
    (void)state;
    const int64_t N = 200, L = 300;
    const int beta = 3, nneg = 6, Bmax = 32, K = 20;
    xmc_rng r;
    xmc_rng_seed(&r, 9, 0);
    int64_t *rr = xmc_malloc(sizeof(int64_t) * 20000);
    int32_t *cc = xmc_malloc(sizeof(int32_t) * 20000);
    int64_t nnz = 0;
    for (int64_t i = 0; i < N; i++) {
        /* most rows 0..8 labels, every 10th row 400-ish (more than a pool) */
        int len = i % 10 == 0 ? 250 : (int)xmc_rng_below(&r, 9);
        for (int j = 0; j < len; j++) {
            rr[nnz] = i;
            cc[nnz] = (int32_t)xmc_rng_below(&r, (uint64_t)L);
            nnz++;
        }
    }
    xmc_error err = {0};
    xmc_csr *Y;
    assert_int_equal(xmc_csr_from_triplets(N, L, nnz, rr, cc, NULL, &Y, &err), XMC_OK);
    /* duplicates were summed: make the targets soft-but-valid */
    for (int64_t e = 0; e < xmc_csr_nnz(Y); e++)
        Y->values[e] = 1.0f / Y->values[e];
    int32_t *H = xmc_malloc(sizeof(int32_t) * (size_t)(N * K));
    for (int64_t i = 0; i < N * K; i++)
        H[i] = xmc_rng_uniform(&r) < 0.1 ? -1 : (int32_t)xmc_rng_below(&r, (uint64_t)L);
    xmc_psl_negs negs = {N, K, H, NULL};

    xmc_psl_sampler_config cfg;
    xmc_psl_sampler_config_default(&cfg);
    cfg.max_batch = Bmax;
    cfg.beta = beta;
    cfg.n_neg = nneg;
    cfg.n_labels = L;
    cfg.seed = 5;
    xmc_psl_sampler *s, *s2;
    assert_int_equal(xmc_psl_sampler_create(&cfg, &s, &err), XMC_OK);
    assert_int_equal(xmc_psl_sampler_create(&cfg, &s2, &err), XMC_OK);
    assert_true(xmc_psl_sampler_bytes(s) > 0);
    assert_int_equal(xmc_psl_sampler_max_pool(s), Bmax * (beta + nneg));
    int64_t batch[32];
    float *S = xmc_malloc(sizeof(float) * (size_t)Bmax * (size_t)(Bmax * (beta + nneg)));
    float *dS = xmc_malloc(sizeof(float) * (size_t)Bmax * (size_t)(Bmax * (beta + nneg)));
    int differ = 0;
    for (int step = 0; step < 40; step++) {
        int B = 1 + (int)xmc_rng_below(&r, Bmax);
        for (int i = 0; i < B; i++)
            batch[i] = (int64_t)xmc_rng_below(&r, (uint64_t)N);
        const xmc_psl_negs *hn = step % 3 == 0 ? NULL : &negs;
        uint64_t before = xmc_mem_alloc_count();
        const xmc_psl_pool *p;
        assert_int_equal(xmc_psl_sampler_build(s, Y, batch, B, hn, (uint64_t)step, &p, &err),
                         XMC_OK);
        /* losses on the pool: no allocation either */
        for (int i = 0; i < p->nq * p->nl; i++)
            S[i] = (float)xmc_rng_normal(&r);
        xmc_psl_loss_params lp;
        xmc_psl_loss_params_default(&lp);
        double l;
        assert_int_equal(xmc_psl_loss(p, S, &lp, &l, dS, &err), XMC_OK);
        assert_int_equal(xmc_mem_alloc_count(), before);
        assert_int_equal(xmc_psl_pool_check(p, &err), XMC_OK);
        assert_true(p->nl <= B * (beta + nneg));
        /* L_B unique; P_i^B = exactly the labels of Y_i in L_B */
        for (int c = 0; c < p->nl; c++)
            for (int c2 = c + 1; c2 < p->nl; c2++)
                assert_int_not_equal(p->labels[c], p->labels[c2]);
        for (int i = 0; i < B; i++) {
            int64_t row = batch[i];
            int e = p->qptr[i];
            int sampled_pos = 0;
            for (int c = 0; c < p->nl; c++) {
                int found = -1;
                for (int64_t q = Y->indptr[row]; q < Y->indptr[row + 1]; q++)
                    if (Y->indices[q] == p->labels[c])
                        found = (int)q;
                if (found >= 0) {
                    assert_true(e < p->qptr[i + 1]);
                    assert_int_equal(p->qcol[e], c);
                    assert_true(p->qval[e] == Y->values[found]);
                    e++;
                    sampled_pos++;
                }
            }
            assert_int_equal(e, p->qptr[i + 1]);
            /* a query with positives has at least one in the pool */
            if (Y->indptr[row + 1] > Y->indptr[row])
                assert_true(sampled_pos >= 1);
        }
        /* every pool label came from some query's Y_i or H_i (or is random
         * when hn == NULL) */
        if (hn)
            for (int c = 0; c < p->nl; c++) {
                int ok = 0;
                for (int i = 0; i < B && !ok; i++) {
                    int64_t row = batch[i];
                    for (int64_t q = Y->indptr[row]; q < Y->indptr[row + 1]; q++)
                        ok |= Y->indices[q] == p->labels[c];
                    for (int k = 0; k < K; k++)
                        ok |= H[row * K + k] == p->labels[c];
                }
                assert_true(ok);
            }
        /* reproducible: another sampler, same (seed, step) -> same pool */
        int32_t keep[32 * 9];
        int nl = p->nl;
        memcpy(keep, p->labels, sizeof(int32_t) * (size_t)nl);
        const xmc_psl_pool *p2;
        assert_int_equal(xmc_psl_sampler_build(s2, Y, batch, B, hn, (uint64_t)step, &p2, &err),
                         XMC_OK);
        assert_int_equal(p2->nl, nl);
        assert_memory_equal(p2->labels, keep, sizeof(int32_t) * (size_t)nl);
        assert_memory_equal(p2->qptr, p->qptr, sizeof(int32_t) * (size_t)(B + 1));
        /* a different step draws differently (at least sometimes) */
        assert_int_equal(
            xmc_psl_sampler_build(s2, Y, batch, B, hn, (uint64_t)step + 1000, &p2, &err), XMC_OK);
        if (p2->nl != nl || memcmp(p2->labels, keep, sizeof(int32_t) * (size_t)nl) != 0)
            differ++;
    }
    assert_true(differ > 20);
    /* no negatives at all: the pool is the sampled positives only */
    cfg.random_neg = 0;
    xmc_psl_sampler *s3;
    assert_int_equal(xmc_psl_sampler_create(&cfg, &s3, &err), XMC_OK);
    const xmc_psl_pool *p3;
    for (int i = 0; i < 8; i++)
        batch[i] = i + 1;
    assert_int_equal(xmc_psl_sampler_build(s3, Y, batch, 8, NULL, 0, &p3, &err), XMC_OK);
    for (int c = 0; c < p3->nl; c++)
        assert_true(p3->lptr[c + 1] > p3->lptr[c]); /* every label is someone's positive */
    xmc_psl_sampler_free(s3);
    /* random negatives restricted to a list (e.g. labels seen in training):
     * every pool label is a positive of the batch or from the list */
    const int32_t allowed[3] = {5, 17, 42};
    cfg.random_neg = 1;
    cfg.neg_labels = allowed;
    cfg.n_neg_labels = 3;
    assert_int_equal(xmc_psl_sampler_create(&cfg, &s3, &err), XMC_OK);
    for (int step = 0; step < 5; step++) {
        assert_int_equal(xmc_psl_sampler_build(s3, Y, batch, 8, NULL, (uint64_t)step, &p3, &err),
                         XMC_OK);
        int from_list = 0;
        for (int c = 0; c < p3->nl; c++) {
            int l = p3->labels[c];
            int ok = p3->lptr[c + 1] > p3->lptr[c];
            if (l == 5 || l == 17 || l == 42) {
                ok = 1;
                from_list++;
            }
            assert_true(ok);
        }
        assert_true(from_list >= 1);
    }
    xmc_psl_sampler_free(s3);
    const int32_t bad_list[1] = {(int32_t)L};
    cfg.neg_labels = bad_list;
    cfg.n_neg_labels = 1;
    tu_assert_error(xmc_psl_sampler_create(&cfg, &s3, &err), &err, XMC_EINVAL, NULL, 0);
    xmc_error_clear(&err);
    cfg.neg_labels = NULL;
    cfg.n_neg_labels = 0;
    /* bad configs */
    cfg.beta = 0;
    tu_assert_error(xmc_psl_sampler_create(&cfg, &s3, &err), &err, XMC_EINVAL, NULL, 0);
    xmc_error_clear(&err);
    cfg.beta = 3;
    cfg.n_labels = 0;
    tu_assert_error(xmc_psl_sampler_create(&cfg, &s3, &err), &err, XMC_EINVAL, NULL, 0);
    xmc_error_clear(&err);
    /* allocation failure is reported, nothing leaks */
    cfg.n_labels = L;
    for (uint64_t k = 1; k <= 12; k++) {
        xmc_mem_fail_after(k);
        int rc = xmc_psl_sampler_create(&cfg, &s3, &err);
        xmc_mem_fail_after(0);
        if (rc == XMC_OK)
            xmc_psl_sampler_free(s3);
        else
            assert_int_equal(rc, XMC_ENOMEM);
        xmc_error_clear(&err);
    }
    xmc_free(S);
    xmc_free(dS);
    xmc_psl_sampler_free(s);
    xmc_psl_sampler_free(s2);
    xmc_free(H);
    xmc_free(rr);
    xmc_free(cc);
    xmc_csr_free(Y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_losses), cmocka_unit_test(test_losses_fd),
        cmocka_unit_test(test_losses_stable),  cmocka_unit_test(test_pool_hand),
        cmocka_unit_test(test_pool_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
