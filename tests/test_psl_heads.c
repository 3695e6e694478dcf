/* UniDEC heads and mining (include/xmc/psl.h): Φ_D / Φ_C forward against
 * the numpy fixture, their backward (with dropout) against finite
 * differences, the pool scores' backward, the Ψ table's sparse-row updates,
 * head save/load, and hard-negative mining (exact against brute force, HNSW
 * against exact). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/data.h"
#include "xmc/hnsw.h"
#include "xmc/psl.h"

/* name -> array from tests/data/psl/psl_ref.txt, as floats (count checked) */
static void fix_read(const char *want, float *out, int count)
{
    char path[1024];
    const char *src = getenv("XMC_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/data/psl/psl_ref.txt", src ? src : ".");
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char name[64];
    int c, found = 0;
    while (!found && fscanf(fp, "%63s", name) == 1) {
        if (name[0] == '#') {
            while ((c = fgetc(fp)) != '\n' && c != EOF)
                ;
            continue;
        }
        int cnt;
        assert_int_equal(fscanf(fp, "%d", &cnt), 1);
        int match = strcmp(name, want) == 0;
        if (match)
            assert_int_equal(cnt, count);
        for (int i = 0; i < cnt; i++) {
            double v;
            assert_int_equal(fscanf(fp, "%lf", &v), 1);
            if (match)
                out[i] = (float)v;
        }
        found = match;
    }
    fclose(fp);
    if (!found)
        fail_msg("fixture has no array %s", want);
}

static void test_heads_fixture(void **state)
{
    (void)state;
    const int B = 3, din = 5, dout = 4;
    float H[15], W[20], b[4], dY[12], Y[12], want[20], dH[15];
    fix_read("H", H, 15);
    fix_read("W", W, 20);
    fix_read("b", b, 4);
    fix_read("dY", dY, 12);
    const char *names[2] = {"de", "clf"};
    for (int kind = 0; kind < 2; kind++) {
        xmc_psl_head_config cfg;
        xmc_psl_head_config_default(&cfg, kind, din, dout);
        cfg.dropout = 0.0f;
        cfg.max_batch = 4;
        xmc_psl_head *h;
        xmc_error err = {0};
        assert_int_equal(xmc_psl_head_create(&cfg, &h, &err), XMC_OK);
        memcpy(h->W, W, sizeof W);
        memcpy(h->b, b, sizeof b);
        char nm[32];
        /* inference (train = 0) and training forward agree without dropout */
        assert_int_equal(xmc_psl_head_forward(h, 1, H, B, 0, 0, Y, &err), XMC_OK);
        snprintf(nm, sizeof nm, "%s_Y", names[kind]);
        fix_read(nm, want, 12);
        assert_true(tu_rel_err(Y, want, 12, 1e-5, 1e-5) <= 1.0);
        assert_int_equal(xmc_psl_head_forward(h, 1, H, B, 1, 3, Y, &err), XMC_OK);
        assert_true(tu_rel_err(Y, want, 12, 1e-5, 1e-5) <= 1.0);
        if (kind == XMC_PSL_HEAD_DE)
            for (int r = 0; r < B; r++) {
                double n = 0;
                for (int k = 0; k < dout; k++)
                    n += (double)Y[r * dout + k] * Y[r * dout + k];
                assert_true(fabs(n - 1.0) < 1e-5);
            }
        xmc_psl_head_zero_grad(h);
        /* accumulate = 1 on a buffer of ones: dH = 1 + gradient */
        for (int i = 0; i < 15; i++)
            dH[i] = 1.0f;
        assert_int_equal(xmc_psl_head_backward(h, 1, H, dY, B, dH, 1, &err), XMC_OK);
        for (int i = 0; i < 15; i++)
            dH[i] -= 1.0f;
        snprintf(nm, sizeof nm, "%s_dH", names[kind]);
        fix_read(nm, want, 15);
        assert_true(tu_rel_err(dH, want, 15, 1e-5, 1e-5) <= 1.0);
        snprintf(nm, sizeof nm, "%s_dW", names[kind]);
        fix_read(nm, want, 20);
        assert_true(tu_rel_err(h->gW, want, 20, 1e-5, 1e-5) <= 1.0);
        snprintf(nm, sizeof nm, "%s_db", names[kind]);
        fix_read(nm, want, 4);
        assert_true(tu_rel_err(h->gb, want, 4, 1e-5, 1e-5) <= 1.0);
        /* backward on a slot without a train forward is a state error */
        tu_assert_error(xmc_psl_head_backward(h, 0, H, dY, B, dH, 0, &err), &err, XMC_ESTATE,
                        NULL, 0);
        xmc_psl_head_free(h);
    }
}

/* sum(Y * R) of a head forward at a fixed step (same dropout mask) */
static double head_obj(xmc_psl_head *h, const float *H, int B, const float *R, float *Y)
{
    xmc_error err = {0};
    assert_int_equal(xmc_psl_head_forward(h, 0, H, B, 1, 17, Y, &err), XMC_OK);
    double s = 0;
    for (int i = 0; i < B * h->cfg.d_out; i++)
        s += (double)Y[i] * R[i];
    return s;
}

static void fd_check(const float *an, float *x, int n, xmc_psl_head *h, const float *H, int B,
                     const float *R, float *Y, const char *what)
{
    float fd[64];
    assert_true(n <= 64);
    const float eps = 1e-3f;
    for (int i = 0; i < n; i++) {
        float x0 = x[i];
        x[i] = x0 + eps;
        double p = head_obj(h, H, B, R, Y);
        x[i] = x0 - eps;
        double m = head_obj(h, H, B, R, Y);
        x[i] = x0;
        fd[i] = (float)((p - m) / (2.0 * eps));
    }
    double e = tu_rel_err(an, fd, (size_t)n, 1e-3, 1e-2);
    if (e > 1.0)
        fail_msg("%s: analytic gradient off FD by %g tolerances", what, e);
}

static void test_heads_fd_dropout(void **state)
{
    (void)state;
    const int B = 4, din = 6, dout = 5;
    for (int kind = 0; kind < 2; kind++) {
        xmc_psl_head_config cfg;
        xmc_psl_head_config_default(&cfg, kind, din, dout);
        cfg.dropout = 0.3f;
        cfg.max_batch = B;
        cfg.seed = 77;
        xmc_psl_head *h;
        xmc_error err = {0};
        assert_int_equal(xmc_psl_head_create(&cfg, &h, &err), XMC_OK);
        xmc_rng r;
        xmc_rng_seed(&r, 1, 2);
        float H[24], R[20], Y[20], dH[24], Y2[20];
        for (int i = 0; i < 24; i++)
            H[i] = xmc_rng_normal(&r);
        for (int i = 0; i < 20; i++)
            R[i] = xmc_rng_normal(&r);
        for (int i = 0; i < dout; i++)
            h->b[i] = 0.1f * xmc_rng_normal(&r);
        /* dropout: some entries zeroed at this step, the same mask again at
         * the same step, a different one at another step */
        head_obj(h, H, B, R, Y);
        int zeros = 0;
        for (int i = 0; i < 20; i++)
            zeros += Y[i] == 0.0f;
        assert_true(zeros >= 1 && zeros <= 14);
        head_obj(h, H, B, R, Y2);
        assert_memory_equal(Y, Y2, sizeof Y);
        assert_int_equal(xmc_psl_head_forward(h, 0, H, B, 1, 18, Y2, &err), XMC_OK);
        assert_true(memcmp(Y, Y2, sizeof Y) != 0);
        /* backward at step 17; an inference forward in between (any B,
         * here 2 * max_batch rows) keeps the training cache; no allocation */
        head_obj(h, H, B, R, Y);
        uint64_t allocs = xmc_mem_alloc_count();
        float H2[48], Y3[40];
        memcpy(H2, H, sizeof H);
        memcpy(H2 + 24, H, sizeof H);
        assert_int_equal(xmc_psl_head_forward(h, 0, H2, 2 * B, 0, 0, Y3, &err), XMC_OK);
        xmc_psl_head_zero_grad(h);
        assert_int_equal(xmc_psl_head_backward(h, 0, H, R, B, dH, 0, &err), XMC_OK);
        assert_int_equal(xmc_mem_alloc_count(), allocs);
        float gW[30], gb[5];
        memcpy(gW, h->gW, sizeof gW);
        memcpy(gb, h->gb, sizeof gb);
        fd_check(dH, H, 24, h, H, B, R, Y, kind ? "clf dH" : "de dH");
        fd_check(gW, h->W, 30, h, H, B, R, Y, kind ? "clf dW" : "de dW");
        fd_check(gb, h->b, 5, h, H, B, R, Y, kind ? "clf db" : "de db");
        /* grads accumulate over two backwards (queries and labels) */
        head_obj(h, H, B, R, Y);
        assert_int_equal(xmc_psl_head_backward(h, 0, H, R, B, dH, 0, &err), XMC_OK);
        for (int i = 0; i < 30; i++)
            assert_true(fabsf(h->gW[i] - 2.0f * gW[i]) <= 1e-5f + 1e-5f * fabsf(gW[i]));
        /* an AdamW step moves W against the gradient */
        float w0 = h->W[0];
        xmc_psl_head_step(h, 0.01f, 0.9f, 0.999f, 1e-8f, 0.0f, 1);
        assert_true((h->W[0] - w0) * h->gW[0] < 0);
        /* save / load round trip */
        const char *path = tu_path(kind ? "clf.bin" : "de.bin");
        FILE *f = fopen(path, "wb");
        assert_int_equal(xmc_psl_head_save(h, f, path, &err), XMC_OK);
        fclose(f);
        f = fopen(path, "rb");
        xmc_psl_head *h2;
        assert_int_equal(xmc_psl_head_load(f, path, B, &h2, &err), XMC_OK);
        fclose(f);
        assert_memory_equal(h2->params, h->params, sizeof(float) * (size_t)h->n_params);
        assert_memory_equal(h2->v, h->v, sizeof(float) * (size_t)h->n_params);
        assert_int_equal(h2->cfg.kind, kind);
        xmc_psl_head_free(h2);
        /* a flipped byte is caught by the checksum */
        assert_int_equal(tu_system("printf '\\x55' | dd of='%s' bs=1 seek=60 conv=notrunc "
                                   "status=none",
                                   path),
                         0);
        f = fopen(path, "rb");
        tu_assert_error(xmc_psl_head_load(f, path, B, &h2, &err), &err, XMC_ECORRUPT, path, 0);
        fclose(f);
        xmc_psl_head_free(h);
    }
    /* bad configs */
    xmc_psl_head_config cfg;
    xmc_psl_head *h;
    xmc_error err = {0};
    xmc_psl_head_config_default(&cfg, XMC_PSL_HEAD_DE, 4, 3);
    cfg.identity_init = 1;
    tu_assert_error(xmc_psl_head_create(&cfg, &h, &err), &err, XMC_EINVAL, NULL, 0);
    xmc_error_clear(&err);
    xmc_psl_head_config_default(&cfg, XMC_PSL_HEAD_DE, 4, 4);
    cfg.dropout = 1.0f;
    tu_assert_error(xmc_psl_head_create(&cfg, &h, &err), &err, XMC_EINVAL, NULL, 0);
}

static void test_scores_and_table(void **state)
{
    (void)state;
    const int na = 3, nb = 4, d = 5;
    float A[15], Bm[20], S[12], dS[12], dA[15], dB[20];
    xmc_rng r;
    xmc_rng_seed(&r, 4, 0);
    for (int i = 0; i < 15; i++)
        A[i] = xmc_rng_normal(&r);
    for (int i = 0; i < 20; i++)
        Bm[i] = xmc_rng_normal(&r);
    for (int i = 0; i < 12; i++)
        dS[i] = xmc_rng_normal(&r);
    xmc_psl_scores(A, na, Bm, nb, d, S);
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++) {
            double s = 0;
            for (int k = 0; k < d; k++)
                s += (double)A[i * d + k] * Bm[j * d + k];
            assert_true(fabs(S[i * nb + j] - s) < 1e-5);
        }
    for (int i = 0; i < 15; i++)
        dA[i] = 2.0f;
    xmc_psl_scores_backward(A, na, Bm, nb, d, dS, dA, dB, 1);
    xmc_psl_scores_backward(A, na, Bm, nb, d, dS, NULL, dB, 0); /* overwrite dB */
    for (int i = 0; i < na; i++)
        for (int k = 0; k < d; k++) {
            double g = 0;
            for (int j = 0; j < nb; j++)
                g += (double)dS[i * nb + j] * Bm[j * d + k];
            assert_true(fabs(dA[i * d + k] - 2.0 - g) < 1e-5);
        }
    for (int j = 0; j < nb; j++)
        for (int k = 0; k < d; k++) {
            double g = 0;
            for (int i = 0; i < na; i++)
                g += (double)dS[i * nb + j] * A[i * d + k];
            assert_true(fabs(dB[j * d + k] - g) < 1e-5);
        }

    /* Ψ: gather and sparse updates touch only the pool's rows */
    const int64_t L = 50;
    for (int opt = 0; opt < 2; opt++) {
        xmc_psl_table *t, *t0;
        xmc_error err = {0};
        assert_int_equal(xmc_psl_table_create(L, d, opt, 0.0f, 8, &t, &err), XMC_OK);
        assert_int_equal(xmc_psl_table_create(L, d, opt, 0.0f, 8, &t0, &err), XMC_OK);
        assert_memory_equal(t->w, t0->w, sizeof(float) * (size_t)(L * d)); /* seeded */
        assert_true(xmc_psl_table_bytes(t) >= sizeof(float) * (size_t)(L * d) * 2);
        const int32_t ids[3] = {41, 7, 19};
        float rows[15], g[15];
        assert_int_equal(xmc_psl_table_gather(t, ids, 3, rows, &err), XMC_OK);
        for (int i = 0; i < 3; i++)
            assert_memory_equal(rows + i * d, t->w + ids[i] * d, sizeof(float) * (size_t)d);
        for (int i = 0; i < 15; i++)
            g[i] = xmc_rng_normal(&r);
        const float lr = 0.1f, mom = 0.9f, wd = 0.01f;
        uint64_t allocs = xmc_mem_alloc_count();
        for (int step = 1; step <= 2; step++)
            assert_int_equal(xmc_psl_table_update(t, ids, 3, g, lr, mom, 0.9f, 0.999f, 1e-8f, wd,
                                                  step, &err),
                             XMC_OK);
        assert_int_equal(xmc_mem_alloc_count(), allocs);
        for (int64_t l = 0; l < L; l++) {
            int touched = -1;
            for (int i = 0; i < 3; i++)
                if (ids[i] == l)
                    touched = i;
            if (touched < 0) {
                assert_memory_equal(t->w + l * d, t0->w + l * d, sizeof(float) * (size_t)d);
                for (int k = 0; k < d; k++)
                    assert_true(t->m[l * d + k] == 0.0f);
                continue;
            }
            for (int k = 0; k < d; k++) {
                /* replay the documented update in double */
                double w = t0->w[l * d + k], m = 0, v = 0, gk = g[touched * d + k];
                for (int step = 1; step <= 2; step++) {
                    if (opt == XMC_PSL_TABLE_SGDM) {
                        m = mom * m + gk + wd * w;
                        w -= lr * m;
                    } else {
                        m = 0.9 * m + 0.1 * gk;
                        v = 0.999 * v + 0.001 * gk * gk;
                        double mh = m / (1 - pow(0.9, step)), vh = v / (1 - pow(0.999, step));
                        w = w * (1 - lr * wd) - lr * mh / (sqrt(vh) + 1e-8);
                    }
                }
                assert_true(fabs(t->w[l * d + k] - w) < 1e-5);
            }
        }
        const int32_t bad[1] = {50};
        tu_assert_error(xmc_psl_table_gather(t, bad, 1, rows, &err), &err, XMC_EINVAL, NULL, 0);
        xmc_error_clear(&err);
        /* save / load keeps weights and optimizer state; corruption is caught */
        const char *path = tu_path(opt ? "psi_adam.bin" : "psi_sgdm.bin");
        FILE *f = fopen(path, "wb");
        assert_int_equal(xmc_psl_table_save(t, f, path, &err), XMC_OK);
        fclose(f);
        xmc_psl_table *t2;
        f = fopen(path, "rb");
        assert_int_equal(xmc_psl_table_load(f, path, &t2, &err), XMC_OK);
        fclose(f);
        assert_int_equal(t2->opt, opt);
        assert_memory_equal(t2->w, t->w, sizeof(float) * (size_t)(L * d));
        assert_memory_equal(t2->m, t->m, sizeof(float) * (size_t)(L * d));
        if (opt == XMC_PSL_TABLE_ADAM)
            assert_memory_equal(t2->v, t->v, sizeof(float) * (size_t)(L * d));
        xmc_psl_table_free(t2);
        assert_int_equal(tu_system("printf '\\x07' | dd of='%s' bs=1 seek=100 conv=notrunc "
                                   "status=none",
                                   path),
                         0);
        f = fopen(path, "rb");
        tu_assert_error(xmc_psl_table_load(f, path, &t2, &err), &err, XMC_ECORRUPT, path, 0);
        fclose(f);
        xmc_error_clear(&err);
        xmc_psl_table_free(t);
        xmc_psl_table_free(t0);
    }
}

/* ------------------------------------------------------------- mining */

static void normalize_rows(float *x, int64_t n, int d)
{
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < d; k++)
            s += (double)x[i * d + k] * x[i * d + k];
        float inv = (float)(1.0 / sqrt(s));
        for (int k = 0; k < d; k++)
            x[i * d + k] *= inv;
    }
}

static int is_pos(const xmc_csr *Y, int64_t r, int32_t l)
{
    for (int64_t e = Y->indptr[r]; e < Y->indptr[r + 1]; e++)
        if (Y->indices[e] == l)
            return 1;
    return 0;
}

/* random Y: 0..6 labels per row, plus the true nearest label for some rows
 * (so the positive-exclusion matters) */
static xmc_csr *mine_Y(int64_t N, int64_t L, const float *E, const float *Q, int d, xmc_rng *r)
{
    int64_t cap = N * 8, nnz = 0;
    int64_t *rr = xmc_malloc(sizeof(int64_t) * (size_t)cap);
    int32_t *cc = xmc_malloc(sizeof(int32_t) * (size_t)cap);
    for (int64_t i = 0; i < N; i++) {
        int len = (int)xmc_rng_below(r, 7);
        for (int j = 0; j < len; j++) {
            rr[nnz] = i;
            cc[nnz++] = (int32_t)xmc_rng_below(r, (uint64_t)L);
        }
        if (i % 2 == 0) {
            int32_t best = 0;
            float bs = -INFINITY;
            for (int64_t l = 0; l < L; l++) {
                float s = 0;
                for (int k = 0; k < d; k++)
                    s += Q[i * d + k] * E[l * d + k];
                if (s > bs) {
                    bs = s;
                    best = (int32_t)l;
                }
            }
            rr[nnz] = i;
            cc[nnz++] = best;
        }
    }
    xmc_csr *Y;
    xmc_error err = {0};
    assert_int_equal(xmc_csr_from_triplets(N, L, nnz, rr, cc, NULL, &Y, &err), XMC_OK);
    xmc_free(rr);
    xmc_free(cc);
    return Y;
}

static void test_mine_exact(void **state)
{
    (void)state;
    /* L > one label block (4096) and N > one query block (256) */
    const int64_t L = 4500, N = 300;
    const int d = 6, k = 7;
    xmc_rng r;
    xmc_rng_seed(&r, 21, 0);
    float *E = xmc_malloc(sizeof(float) * (size_t)(L * d));
    float *Q = xmc_malloc(sizeof(float) * (size_t)(N * d));
    for (int64_t i = 0; i < L * d; i++)
        E[i] = xmc_rng_normal(&r);
    for (int64_t i = 0; i < N * d; i++)
        Q[i] = xmc_rng_normal(&r);
    normalize_rows(E, L, d);
    normalize_rows(Q, N, d);
    /* a few duplicated label vectors: ties go to the lower id */
    memcpy(E + 100 * d, E + 4400 * d, sizeof(float) * (size_t)d);
    xmc_csr *Y = mine_Y(N, L, E, Q, d, &r);
    int32_t *ids = xmc_malloc(sizeof(int32_t) * (size_t)(N * k));
    float *sims = xmc_malloc(sizeof(float) * (size_t)(N * k));
    xmc_error err = {0};
    assert_int_equal(xmc_psl_mine(E, L, Q, N, d, Y, k, NULL, 0, ids, sims, &err), XMC_OK);
    float *all = xmc_malloc(sizeof(float) * (size_t)L);
    for (int64_t i = 0; i < N; i++) {
        for (int64_t l = 0; l < L; l++) {
            float s = 0;
            for (int q = 0; q < d; q++)
                s += Q[i * d + q] * E[l * d + q];
            all[l] = s;
        }
        /* brute force: repeatedly the best non-positive after the previous
         * one in (score desc, id asc) order */
        int32_t prev = -1;
        float prev_s = INFINITY;
        for (int j = 0; j < k; j++) {
            int32_t best = -1;
            float bs = -INFINITY;
            for (int64_t l = 0; l < L; l++) {
                float s = all[l];
                if (!(s < prev_s || (s == prev_s && (int32_t)l > prev)))
                    continue;
                if (is_pos(Y, i, (int32_t)l))
                    continue;
                if (best < 0 || s > bs) {
                    best = (int32_t)l;
                    bs = s;
                }
            }
            prev = best;
            prev_s = bs;
            int32_t got = ids[i * k + j];
            assert_true(got >= 0);
            assert_false(is_pos(Y, i, got));
            /* the same label, or an equal score up to GEMM-vs-loop rounding */
            if (got != best)
                assert_true(fabsf(all[got] - bs) < 2e-6f);
            assert_true(fabsf(sims[i * k + j] - all[got]) < 1e-5f);
        }
        /* the duplicated vector: 100 always comes before 4400 if both listed */
        for (int j = 0; j < k; j++)
            if (ids[i * k + j] == 4400)
                for (int j2 = j + 1; j2 < k; j2++)
                    assert_int_not_equal(ids[i * k + j2], 100);
        for (int j = 1; j < k; j++)
            assert_true(sims[i * k + j] <= sims[i * k + j - 1]);
    }
    /* k larger than the non-positives: -1 padding */
    const int64_t L2 = 5;
    int32_t ids2[3 * 8];
    float sims2[3 * 8];
    const int r0[] = {0, 1}, r1[] = {4}, r2[] = {0};
    int64_t rows3[4] = {0, 0, 1, 2};
    int32_t cols3[4] = {r0[0], r0[1], r1[0], r2[0]};
    xmc_csr *Y2;
    assert_int_equal(xmc_csr_from_triplets(3, L2, 4, rows3, cols3, NULL, &Y2, &err), XMC_OK);
    assert_int_equal(xmc_psl_mine(E, L2, Q, 3, d, Y2, 8, NULL, 0, ids2, sims2, &err), XMC_OK);
    int filled = 0;
    for (int j = 0; j < 8; j++) {
        if (ids2[j] >= 0) {
            filled++;
            assert_true(ids2[j] >= 2);
        } else
            assert_true(isinf(sims2[j]) && sims2[j] < 0);
    }
    assert_int_equal(filled, 3);
    tu_assert_error(xmc_psl_mine(E, L2, Q, 4, d, Y2, 3, NULL, 0, ids2, NULL, &err), &err,
                    XMC_EINVAL, NULL, 0);
    xmc_csr_free(Y2);
    xmc_free(all);
    xmc_free(ids);
    xmc_free(sims);
    xmc_free(E);
    xmc_free(Q);
    xmc_csr_free(Y);
}

static void test_mine_hnsw(void **state)
{
    (void)state;
    const int64_t L = 2000, N = 200;
    const int d = 16, k = 10;
    xmc_rng r;
    xmc_rng_seed(&r, 33, 0);
    float *E = xmc_malloc(sizeof(float) * (size_t)(L * d));
    float *Q = xmc_malloc(sizeof(float) * (size_t)(N * d));
    for (int64_t i = 0; i < L * d; i++)
        E[i] = xmc_rng_normal(&r);
    for (int64_t i = 0; i < N * d; i++)
        Q[i] = xmc_rng_normal(&r);
    normalize_rows(E, L, d);
    normalize_rows(Q, N, d);
    xmc_csr *Y = mine_Y(N, L, E, Q, d, &r);
    xmc_hnsw_params hp;
    xmc_hnsw_params_default(&hp);
    hp.metric = XMC_METRIC_IP;
    hp.seed = 3;
    xmc_hnsw *index;
    xmc_error err = {0};
    int rc = xmc_hnsw_build(&index, E, L, d, &hp, &err);
    if (rc != XMC_OK) {
        xmc_free(E);
        xmc_free(Q);
        xmc_csr_free(Y);
        skip(); /* HNSW not available in this build */
    }
    int32_t *ex = xmc_malloc(sizeof(int32_t) * (size_t)(N * k));
    int32_t *ap = xmc_malloc(sizeof(int32_t) * (size_t)(N * k));
    float *sims = xmc_malloc(sizeof(float) * (size_t)(N * k));
    assert_int_equal(xmc_psl_mine(E, L, Q, N, d, Y, k, NULL, 0, ex, NULL, &err), XMC_OK);
    assert_int_equal(xmc_psl_mine(NULL, L, Q, N, d, Y, k, index, 100, ap, sims, &err), XMC_OK);
    int64_t hit = 0;
    for (int64_t i = 0; i < N; i++)
        for (int j = 0; j < k; j++) {
            int32_t a = ap[i * k + j];
            assert_true(a >= 0);
            assert_false(is_pos(Y, i, a));
            float s = 0;
            for (int q = 0; q < d; q++)
                s += Q[i * d + q] * E[a * d + q];
            assert_true(fabsf(sims[i * k + j] - s) < 1e-4f);
            for (int j2 = 0; j2 < k; j2++)
                hit += ex[i * k + j2] == a;
        }
    double recall = (double)hit / (double)(N * k);
    print_message("psl mine: HNSW recall@%d vs exact %.3f\n", k, recall);
    assert_true(recall >= 0.9);
    /* index of the wrong size */
    tu_assert_error(xmc_psl_mine(NULL, L - 1, Q, N, d, NULL, k, index, 0, ap, NULL, &err), &err,
                    XMC_EINVAL, NULL, 0);
    xmc_hnsw_free(index);
    xmc_free(ex);
    xmc_free(ap);
    xmc_free(sims);
    xmc_free(E);
    xmc_free(Q);
    xmc_csr_free(Y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heads_fixture), cmocka_unit_test(test_heads_fd_dropout),
        cmocka_unit_test(test_scores_and_table), cmocka_unit_test(test_mine_exact),
        cmocka_unit_test(test_mine_hnsw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
