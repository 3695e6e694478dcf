/* One-vs-all head (Renee fused pass): numpy reference fixture, finite
 * differences (BCE, squared hinge, soft targets, bf16), chunk/thread
 * invariance, label shards, exact top-k vs brute force, save/load resume,
 * bad configs, and no allocation inside train_step/topk. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/head.h"
#include "xmc/kernels.h"

/* ------------------------------------------------------------ helpers */

static double *fixture(const char *name, int *count)
{
    char path[1024];
    const char *src = getenv("XMC_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/data/head/ova_ref.txt", src ? src : ".");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char line[1 << 16];
    double *out = NULL;
    while (fgets(line, sizeof line, f)) {
        char key[64];
        int n, off;
        if (sscanf(line, "%63s %d%n", key, &n, &off) != 2 || strcmp(key, name))
            continue;
        out = malloc(sizeof *out * (size_t)n);
        char *p = line + off;
        for (int i = 0; i < n; i++)
            out[i] = strtod(p, &p);
        *count = n;
        break;
    }
    fclose(f);
    assert_non_null(out);
    return out;
}

static float *fixture_f(const char *name, int expect)
{
    int n;
    double *d = fixture(name, &n);
    assert_int_equal(n, expect);
    float *f = malloc(sizeof *f * (size_t)n);
    for (int i = 0; i < n; i++)
        f[i] = (float)d[i];
    free(d);
    return f;
}

/* Random CSR targets over ncols labels with soft values (some exactly 1). */
static xmc_csr *random_targets(int nrows, int ncols, int per_row, uint64_t seed)
{
    xmc_csr *Y;
    xmc_error e = {0};
    assert_int_equal(xmc_csr_create(&Y, nrows, ncols, (int64_t)nrows * per_row, 1, &e), XMC_OK);
    xmc_rng r;
    xmc_rng_seed(&r, seed, 7);
    int64_t nnz = 0;
    Y->indptr[0] = 0;
    for (int i = 0; i < nrows; i++) {
        int k = (int)xmc_rng_below(&r, (uint64_t)per_row + 1);
        int last = -1;
        for (int t = 0; t < k; t++) {
            int lab = last + 1 + (int)xmc_rng_below(&r, (uint64_t)(ncols / per_row));
            if (lab >= ncols)
                break;
            Y->indices[nnz] = lab;
            Y->values[nnz] = (t % 2) ? 1.0f : (float)(0.2 + 0.8 * xmc_rng_uniform(&r));
            nnz++;
            last = lab;
        }
        Y->indptr[i + 1] = nnz;
    }
    return Y;
}

static void random_fill(float *a, size_t n, float std, uint64_t seed)
{
    xmc_rng r;
    xmc_rng_seed(&r, seed, 3);
    for (size_t i = 0; i < n; i++)
        a[i] = std * xmc_rng_normal(&r);
}

static xmc_ova *make_head(int64_t L, int64_t off, int d, xmc_dtype dt, xmc_head_opt opt,
                          int64_t chunk, int max_batch, uint64_t seed)
{
    xmc_ova_config c = {.n_labels = L, .label_offset = off, .dim = d, .dtype = dt, .opt = opt,
                        .chunk = chunk, .max_batch = max_batch, .seed = seed};
    xmc_ova *h = NULL;
    xmc_error e = {0};
    assert_int_equal(xmc_ova_create(&c, &h, &e), XMC_OK);
    return h;
}

static xmc_ova_hparams sgd_hp(float lr, xmc_loss loss)
{
    xmc_ova_hparams hp = {.lr = lr, .momentum = 0.9f, .weight_decay = 0.01f, .loss = loss};
    return hp;
}

static float *weights(const xmc_ova *h)
{
    const xmc_ova_config *c = xmc_ova_get_config(h);
    float *w = malloc(sizeof *w * (size_t)(c->n_labels * c->dim));
    xmc_error e = {0};
    assert_int_equal(xmc_ova_get_rows(h, 0, c->n_labels, w, &e), XMC_OK);
    return w;
}

/* --------------------------------------------------- numpy fixture */

static void run_fixture(xmc_dtype dt, xmc_head_opt opt, xmc_loss loss, int64_t chunk, int threads)
{
    enum { B = 5, L = 37, D = 8, NR = 7 };
    const char *ln = loss == XMC_LOSS_BCE ? "bce" : "sqhinge";
    float *E = fixture_f("E", B * D), *W0 = fixture_f("W0", L * D);
    int n;
    double *ip = fixture("Y_indptr", &n), *ix = fixture("Y_indices", &n),
           *iv = fixture("Y_values", &n), *rw = fixture("rows", &n);
    xmc_csr *Y;
    xmc_error e = {0};
    int nnz = (int)ip[NR];
    assert_int_equal(xmc_csr_create(&Y, NR, L, nnz, 1, &e), XMC_OK);
    for (int i = 0; i <= NR; i++)
        Y->indptr[i] = (int64_t)ip[i];
    for (int i = 0; i < nnz; i++) {
        Y->indices[i] = (int32_t)ix[i];
        Y->values[i] = (float)iv[i];
    }
    int64_t rows[B];
    for (int i = 0; i < B; i++)
        rows[i] = (int64_t)rw[i];
    xmc_set_threads(threads);
    xmc_ova *h = make_head(L, 0, D, dt, opt, chunk, 8, 1);
    assert_int_equal(xmc_ova_set_rows(h, 0, L, W0, &e), XMC_OK);
    float dE[B * D];
    double lo;
    char key[64];
    for (int step = 1; step <= 2; step++) {
        xmc_ova_hparams hp = sgd_hp(0.1f, loss);
        if (opt == XMC_HEAD_ADAM)
            hp = (xmc_ova_hparams){.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                                   .weight_decay = 0.01f, .loss = loss, .step = step};
        assert_int_equal(xmc_ova_train_step(h, E, B, Y, rows, &hp, dE, &lo, &e), XMC_OK);
        if (step == 1) {
            snprintf(key, sizeof key, "dE_%s", ln);
            float *ref = fixture_f(key, B * D);
            assert_true(tu_rel_err(dE, ref, B * D, 1e-5, 1e-5) <= 1.0);
            free(ref);
            snprintf(key, sizeof key, "loss_%s", ln);
            double *rl = fixture(key, &n);
            assert_true(fabs(lo - rl[0]) <= 1e-5 * fabs(rl[0]));
            free(rl);
        } else if (opt == XMC_HEAD_SGDM) {
            snprintf(key, sizeof key, "sgdm_%s_dE2", ln);
            float *ref = fixture_f(key, B * D);
            assert_true(tu_rel_err(dE, ref, B * D, 1e-5, 1e-5) <= 1.0);
            free(ref);
        }
        snprintf(key, sizeof key, "%s_%s_W%d", opt == XMC_HEAD_SGDM ? "sgdm" : "adam", ln, step);
        float *ref = fixture_f(key, L * D), *w = weights(h);
        double err = tu_rel_err(w, ref, L * D, 1e-5, 1e-5);
        if (err > 1.0)
            print_error("%s step %d chunk %lld: err %g\n", key, step, (long long)chunk, err);
        assert_true(err <= 1.0);
        free(ref);
        free(w);
    }
    xmc_ova_free(h);
    xmc_csr_free(Y);
    free(E), free(W0), free(ip), free(ix), free(iv), free(rw);
}

static void test_fixture_fp32(void **state)
{
    (void)state;
    for (int l = 0; l < 2; l++)
        for (int o = 0; o < 2; o++)
            for (int t = 1; t <= 2; t++) {
                run_fixture(XMC_DT_F32, (xmc_head_opt)o, (xmc_loss)l, 7, t);
                run_fixture(XMC_DT_F32, (xmc_head_opt)o, (xmc_loss)l, 0, t);
            }
}

/* ------------------------------------------------ finite differences */

typedef struct fdprob {
    int B, L, d;
    float *E, *W;
    xmc_csr *Y;
} fdprob;

static double loss_at(xmc_ova *h, const fdprob *p, const float *E, xmc_loss loss, float *dE)
{
    xmc_ova_hparams hp = {.lr = 0.0f, .momentum = 0.0f, .loss = loss};
    double lo = 0;
    xmc_error e = {0};
    assert_int_equal(xmc_ova_train_step(h, E, p->B, p->Y, NULL, &hp, dE, &lo, &e), XMC_OK);
    return lo;
}

static void run_fd(xmc_loss loss)
{
    fdprob p = {.B = 6, .L = 50, .d = 12};
    p.E = malloc(sizeof(float) * (size_t)(p.B * p.d));
    p.W = malloc(sizeof(float) * (size_t)(p.L * p.d));
    random_fill(p.E, (size_t)(p.B * p.d), 1.0f, 11);
    random_fill(p.W, (size_t)(p.L * p.d), 0.4f, 12);
    /* bf16-representable weights, so the fp32 and bf16 heads hold the same W */
    for (int i = 0; i < p.L * p.d; i++)
        p.W[i] = xmc_bf16_to_f32(xmc_f32_to_bf16(p.W[i]));
    p.Y = random_targets(p.B, p.L, 6, 13);
    xmc_error e = {0};
    xmc_ova *h = make_head(p.L, 0, p.d, XMC_DT_F32, XMC_HEAD_SGDM, 9, p.B, 5);
    xmc_ova *hb = make_head(p.L, 0, p.d, XMC_DT_BF16, XMC_HEAD_SGDM, 9, p.B, 5);
    assert_int_equal(xmc_ova_set_rows(h, 0, p.L, p.W, &e), XMC_OK);
    assert_int_equal(xmc_ova_set_rows(hb, 0, p.L, p.W, &e), XMC_OK);
    size_t n = (size_t)(p.B * p.d);
    float *dE = malloc(n * 4), *dEb = malloc(n * 4), *num = malloc(n * 4), *tmp = malloc(n * 4),
          *Ep = malloc(n * 4);
    loss_at(h, &p, p.E, loss, dE);
    loss_at(hb, &p, p.E, loss, dEb);
    const float eps = 1e-2f;
    for (size_t i = 0; i < n; i++) {
        memcpy(Ep, p.E, n * 4);
        Ep[i] = p.E[i] + eps;
        double lp = loss_at(h, &p, Ep, loss, tmp);
        Ep[i] = p.E[i] - eps;
        double lm = loss_at(h, &p, Ep, loss, tmp);
        num[i] = (float)((lp - lm) / (2.0 * eps));
    }
    /* central differences: O(eps^2) truncation (the hinge kink adds a bit) */
    double err = tu_rel_err(dE, num, n, 2e-3, 2e-3);
    if (err > 1.0)
        print_error("fd fp32 loss %d: err %g\n", (int)loss, err);
    assert_true(err <= 1.0);
    /* bf16 kernels round E and G to bf16: ~2^-8 relative per term */
    double errb = tu_rel_err(dEb, num, n, 5e-2, 2e-2);
    if (errb > 1.0)
        print_error("fd bf16 loss %d: err %g\n", (int)loss, errb);
    assert_true(errb <= 1.0);
    /* W untouched at lr = 0 */
    float *w = weights(h), *wb = weights(hb);
    assert_memory_equal(w, p.W, (size_t)(p.L * p.d) * 4);
    assert_memory_equal(wb, p.W, (size_t)(p.L * p.d) * 4);
    free(w), free(wb);
    xmc_ova_free(h);
    xmc_ova_free(hb);
    xmc_csr_free(p.Y);
    free(p.E), free(p.W), free(dE), free(dEb), free(num), free(tmp), free(Ep);
}

static void test_finite_diff(void **state)
{
    (void)state;
    /* ~600 tiny steps: one thread, so a loaded machine's scheduling of
     * OpenMP teams does not dominate the test's time */
    xmc_set_threads(1);
    run_fd(XMC_LOSS_BCE);
    run_fd(XMC_LOSS_SQHINGE);
    xmc_set_threads(2);
}

/* bf16 kernel paths agree: portable (XMC_KERNEL=ref: widen + sgemm),
 * AVX512-BF16 (vdpbf16ps) and AMX; B, d and the chunk are multiples of 32
 * so AMX takes the full chunks (the ragged last chunk falls back). */
static void test_bf16_paths_agree(void **state)
{
    (void)state;
    if (!(xmc_cpu_features_hw() & XMC_CPU_AVX512BF16))
        skip();
    enum { B = 32, L = 301, d = 32 };
    float *E = malloc(sizeof(float) * (size_t)(B * d));
    random_fill(E, (size_t)(B * d), 1.0f, 21);
    xmc_csr *Y = random_targets(B, L, 5, 22);
    static float dE[3][B * d];
    float *w[3];
    xmc_error e = {0};
    const char *kern[3] = {"ref", "avx512bf16", ""};
    for (int v = 0; v < 3; v++) {
        setenv("XMC_KERNEL", kern[v], 1);
        xmc_cpu_refresh();
        xmc_ova *h = make_head(L, 0, d, XMC_DT_BF16, XMC_HEAD_SGDM, 64, B, 3);
        xmc_ova_hparams hp = sgd_hp(0.01f, XMC_LOSS_BCE);
        for (int s = 0; s < 3; s++)
            assert_int_equal(xmc_ova_train_step(h, E, B, Y, NULL, &hp, dE[v], NULL, &e), XMC_OK);
        w[v] = weights(h);
        xmc_ova_free(h);
    }
    unsetenv("XMC_KERNEL");
    xmc_cpu_refresh();
    for (int v = 1; v < 3; v++) {
        /* |dE| ~ 5-10, summed over 301 labels after 3 steps of drift */
        assert_true(tu_rel_err(dE[v], dE[0], (size_t)(B * d), 1e-1, 2e-2) <= 1.0);
        /* E and G rounded to bf16 in the kernels: ~2^-9 relative error in dW,
         * so a few bf16 ulps of W after lr * m */
        assert_true(tu_rel_err(w[v], w[0], (size_t)(L * d), 2e-3, 2e-2) <= 1.0);
    }
    /* vdpbf16ps and AMX see the same bf16 operands; only fp32 summation
     * order differs */
    assert_true(tu_rel_err(dE[2], dE[1], (size_t)(B * d), 1e-4, 1e-3) <= 1.0);
    for (int v = 0; v < 3; v++)
        free(w[v]);
    free(E);
    xmc_csr_free(Y);
}

/* ------------------------------------ chunk, thread and shard invariance */

static void train_steps(xmc_ova *h, const float *E, int B, const xmc_csr *Y, int steps,
                        xmc_loss loss, float *dE)
{
    xmc_error e = {0};
    xmc_ova_hparams hp = sgd_hp(0.05f, loss);
    for (int s = 0; s < steps; s++)
        assert_int_equal(xmc_ova_train_step(h, E, B, Y, NULL, &hp, dE, NULL, &e), XMC_OK);
}

static void test_chunk_invariance(void **state)
{
    (void)state;
    int B = 16, L = 203, d = 24;
    float *E = malloc(sizeof(float) * (size_t)(B * d));
    random_fill(E, (size_t)(B * d), 1.0f, 31);
    xmc_csr *Y = random_targets(B, L, 8, 32);
    for (int dt = 0; dt < 2; dt++) {
        float dE1[16 * 24], dE2[16 * 24];
        xmc_ova *a = make_head(L, 0, d, (xmc_dtype)dt, XMC_HEAD_SGDM, 7, B, 4);
        xmc_ova *b = make_head(L, 0, d, (xmc_dtype)dt, XMC_HEAD_SGDM, 4096, B, 4);
        train_steps(a, E, B, Y, 3, XMC_LOSS_BCE, dE1);
        train_steps(b, E, B, Y, 3, XMC_LOSS_BCE, dE2);
        float *wa = weights(a), *wb = weights(b);
        assert_true(tu_rel_err(dE1, dE2, (size_t)(B * d), 1e-5, 1e-4) <= 1.0);
        /* bf16: stochastic rounding can flip one ulp where fp32 sums differ */
        assert_true(tu_rel_err(wa, wb, (size_t)(L * d), 1e-5, dt ? 1e-2 : 1e-4) <= 1.0);
        free(wa), free(wb);
        xmc_ova_free(a);
        xmc_ova_free(b);
    }
    xmc_csr_free(Y);
    free(E);
}

static void test_thread_determinism(void **state)
{
    (void)state;
    int B = 12, L = 517, d = 32;
    float *E = malloc(sizeof(float) * (size_t)(B * d));
    random_fill(E, (size_t)(B * d), 1.0f, 41);
    xmc_csr *Y = random_targets(B, L, 9, 42);
    for (int dt = 0; dt < 2; dt++) {
        float dE[3][12 * 32], *w[3];
        int thr[3] = {2, 2, 1};
        for (int v = 0; v < 3; v++) {
            xmc_set_threads(thr[v]);
            xmc_ova *h = make_head(L, 0, d, (xmc_dtype)dt, XMC_HEAD_SGDM, 50, B, 9);
            train_steps(h, E, B, Y, 3, XMC_LOSS_SQHINGE, dE[v]);
            w[v] = weights(h);
            xmc_ova_free(h);
        }
        xmc_set_threads(2);
        /* same thread count: bit-identical */
        assert_memory_equal(dE[0], dE[1], sizeof dE[0]);
        assert_memory_equal(w[0], w[1], (size_t)(L * d) * 4);
        /* other thread count: dE sums in another order; W after one step
         * is the same (each chunk's update reads only E and its rows), and
         * after that only dE-independent, so still the same */
        assert_true(tu_rel_err(dE[0], dE[2], (size_t)(B * d), 1e-5, 1e-4) <= 1.0);
        assert_memory_equal(w[0], w[2], (size_t)(L * d) * 4);
        for (int v = 0; v < 3; v++)
            free(w[v]);
    }
    xmc_csr_free(Y);
    free(E);
}

static void run_shards(xmc_dtype dt)
{
    int B = 10, L = 150, d = 16, cut = 67, k = 7;
    float *E = malloc(sizeof(float) * (size_t)(B * d));
    random_fill(E, (size_t)(B * d), 1.0f, 51);
    xmc_csr *Y = random_targets(B, L, 6, 52);
    xmc_ova *full = make_head(L, 0, d, dt, XMC_HEAD_SGDM, 32, B, 77);
    xmc_ova *s0 = make_head(cut, 0, d, dt, XMC_HEAD_SGDM, 32, B, 77);
    xmc_ova *s1 = make_head(L - cut, cut, d, dt, XMC_HEAD_SGDM, 32, B, 77);
    float *wf = weights(full), *w0 = weights(s0), *w1 = weights(s1);
    /* the seed gives the same initial rows in the shards */
    assert_memory_equal(wf, w0, (size_t)(cut * d) * 4);
    assert_memory_equal(wf + cut * d, w1, (size_t)((L - cut) * d) * 4);
    free(wf), free(w0), free(w1);
    float dEf[10 * 16], dE0[10 * 16], dE1[10 * 16], sum[10 * 16];
    train_steps(full, E, B, Y, 2, XMC_LOSS_BCE, dEf);
    train_steps(s0, E, B, Y, 2, XMC_LOSS_BCE, dE0);
    train_steps(s1, E, B, Y, 2, XMC_LOSS_BCE, dE1);
    for (int i = 0; i < B * d; i++)
        sum[i] = dE0[i] + dE1[i];
    assert_true(tu_rel_err(sum, dEf, (size_t)(B * d), dt == XMC_DT_BF16 ? 1e-3 : 1e-5, 1e-4) <= 1.0);
    wf = weights(full), w0 = weights(s0), w1 = weights(s1);
    /* bf16: stochastic rounding keyed by global element, so equal up to
     * an ulp where the kernels' fp32 sums differ (AMX vs ragged chunks) */
    double rt = dt == XMC_DT_BF16 ? 1e-2 : 1e-5;
    assert_true(tu_rel_err(w0, wf, (size_t)(cut * d), 1e-6, rt) <= 1.0);
    assert_true(tu_rel_err(w1, wf + cut * d, (size_t)((L - cut) * d), 1e-6, rt) <= 1.0);
    /* top-k merges (shards given the full head's exact weights) */
    xmc_error e0 = {0};
    assert_int_equal(xmc_ova_set_rows(s0, 0, cut, wf, &e0), XMC_OK);
    assert_int_equal(xmc_ova_set_rows(s1, 0, L - cut, wf + cut * d, &e0), XMC_OK);
    int32_t lf[10 * 7], la[10 * 14];
    float sf[10 * 7], sa[10 * 14];
    xmc_error e = {0};
    assert_int_equal(xmc_ova_topk(full, E, B, k, lf, sf, &e), XMC_OK);
    int32_t l0[10 * 7], l1[10 * 7];
    float f0[10 * 7], f1[10 * 7];
    assert_int_equal(xmc_ova_topk(s0, E, B, k, l0, f0, &e), XMC_OK);
    assert_int_equal(xmc_ova_topk(s1, E, B, k, l1, f1, &e), XMC_OK);
    for (int b = 0; b < B; b++) {
        /* merge two sorted lists by (score desc, label asc) */
        int i = 0, j = 0;
        for (int t = 0; t < k; t++) {
            int take0 = j >= k || (i < k && (f0[b * k + i] > f1[b * k + j] ||
                                             (f0[b * k + i] == f1[b * k + j] &&
                                              l0[b * k + i] < l1[b * k + j])));
            la[b * k + t] = take0 ? l0[b * k + i] : l1[b * k + j];
            sa[b * k + t] = take0 ? f0[b * k + i++] : f1[b * k + j++];
        }
        for (int t = 0; t < k; t++) {
            assert_int_equal(la[b * k + t], lf[b * k + t]);
            assert_true(fabsf(sa[b * k + t] - sf[b * k + t]) <= 1e-5f);
        }
    }
    free(wf), free(w0), free(w1), free(E);
    xmc_ova_free(full);
    xmc_ova_free(s0);
    xmc_ova_free(s1);
    xmc_csr_free(Y);
}

static void test_shards(void **state)
{
    (void)state;
    run_shards(XMC_DT_F32);
    run_shards(XMC_DT_BF16);
}

/* ---------------------------------------------------------------- top-k */

static void brute_topk(const float *E, const float *W, int B, int L, int d, int k, int32_t *lab,
                       float *sc)
{
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < k; t++) {
            lab[b * k + t] = -1;
            sc[b * k + t] = -INFINITY;
        }
        for (int l = 0; l < L; l++) {
            float s = 0;
            for (int j = 0; j < d; j++)
                s += E[b * d + j] * W[l * d + j];
            /* insertion into a sorted list of k */
            int pos = k;
            while (pos > 0 && (lab[b * k + pos - 1] < 0 || s > sc[b * k + pos - 1] ||
                               (s == sc[b * k + pos - 1] && l < lab[b * k + pos - 1])))
                pos--;
            if (pos >= k)
                continue;
            for (int t = k - 1; t > pos; t--) {
                lab[b * k + t] = lab[b * k + t - 1];
                sc[b * k + t] = sc[b * k + t - 1];
            }
            lab[b * k + pos] = l;
            sc[b * k + pos] = s;
        }
    }
}

static void test_topk(void **state)
{
    (void)state;
    int B = 11, L = 97, d = 8;
    float *E = malloc(sizeof(float) * (size_t)(B * d)), *W = malloc(sizeof(float) * (size_t)(L * d));
    /* small integers: dot products are exact, and many scores tie */
    xmc_rng r;
    xmc_rng_seed(&r, 61, 0);
    for (int i = 0; i < B * d; i++)
        E[i] = (float)((int)xmc_rng_below(&r, 5) - 2);
    for (int i = 0; i < L * d; i++)
        W[i] = (float)((int)xmc_rng_below(&r, 3) - 1);
    xmc_error e = {0};
    int ks[3] = {1, 6, 120};
    for (int dt = 0; dt < 2; dt++) {
        for (int c = 0; c < 2; c++) {
            xmc_ova *h = make_head(L, 0, d, (xmc_dtype)dt, XMC_HEAD_SGDM, c ? 10 : 0, B, 1);
            assert_int_equal(xmc_ova_set_rows(h, 0, L, W, &e), XMC_OK);
            for (int t = 0; t < 3; t++) {
                int k = ks[t];
                int32_t *lab = malloc(sizeof *lab * (size_t)(B * k)), *rl = malloc(sizeof *rl * (size_t)(B * k));
                float *sc = malloc(sizeof *sc * (size_t)(B * k)), *rs = malloc(sizeof *rs * (size_t)(B * k));
                uint64_t before = xmc_mem_alloc_count();
                assert_int_equal(xmc_ova_topk(h, E, B, k, lab, sc, &e), XMC_OK);
                assert_int_equal(xmc_mem_alloc_count(), before);
                brute_topk(E, W, B, L, d, k, rl, rs);
                assert_memory_equal(lab, rl, sizeof *lab * (size_t)(B * k));
                for (int i = 0; i < B * k; i++)
                    assert_true(sc[i] == rs[i]);
                if (k > L)
                    assert_int_equal(lab[k - 1], -1);
                free(lab), free(rl), free(sc), free(rs);
            }
            xmc_ova_free(h);
        }
    }
    free(E), free(W);
}

/* ------------------------------------------------------------ save/load */

static void run_resume(xmc_dtype dt, xmc_head_opt opt)
{
    int B = 7, L = 90, d = 10;
    float *E = malloc(sizeof(float) * (size_t)(B * d));
    random_fill(E, (size_t)(B * d), 1.0f, 71);
    xmc_csr *Y = random_targets(B, L, 5, 72);
    xmc_error e = {0};
    xmc_ova_hparams hp = sgd_hp(0.05f, XMC_LOSS_BCE);
    if (opt == XMC_HEAD_ADAM)
        hp = (xmc_ova_hparams){.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                               .weight_decay = 0.01f, .loss = XMC_LOSS_BCE};
    xmc_ova *a = make_head(L, 0, d, dt, opt, 16, B, 81);
    float dA[7 * 10], dB[7 * 10];
    for (int s = 0; s < 2; s++)
        assert_int_equal(xmc_ova_train_step(a, E, B, Y, NULL, &hp, dA, NULL, &e), XMC_OK);
    const char *path = tu_path("head.bin");
    FILE *f = fopen(path, "wb");
    assert_int_equal(xmc_ova_save(a, f, path, &e), XMC_OK);
    fclose(f);
    xmc_ova *b = NULL;
    f = fopen(path, "rb");
    assert_int_equal(xmc_ova_load(f, path, &b, &e), XMC_OK);
    fclose(f);
    assert_int_equal(xmc_ova_steps(b), 2);
    assert_int_equal(xmc_ova_get_config(b)->dtype, dt);
    for (int s = 0; s < 3; s++) {
        assert_int_equal(xmc_ova_train_step(a, E, B, Y, NULL, &hp, dA, NULL, &e), XMC_OK);
        assert_int_equal(xmc_ova_train_step(b, E, B, Y, NULL, &hp, dB, NULL, &e), XMC_OK);
    }
    float *wa = weights(a), *wb = weights(b);
    assert_memory_equal(wa, wb, (size_t)(L * d) * 4);
    assert_memory_equal(dA, dB, sizeof dA);
    free(wa), free(wb);
    xmc_ova_free(b);

    /* one flipped byte in the weights: checksum; a cut file: truncated */
    char *data;
    size_t len;
    assert_int_equal(xmc_read_file(path, &data, &len, &e), XMC_OK);
    data[len / 2] ^= 0x10;
    f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
    f = fopen(path, "rb");
    int rc = xmc_ova_load(f, path, &b, &e);
    fclose(f);
    tu_assert_error(rc, &e, XMC_ECORRUPT, "head.bin", 0);
    assert_null(b);
    xmc_error_clear(&e);
    data[len / 2] ^= 0x10;
    f = fopen(path, "wb");
    fwrite(data, 1, len - 9, f);
    fclose(f);
    f = fopen(path, "rb");
    rc = xmc_ova_load(f, path, &b, &e);
    fclose(f);
    tu_assert_error(rc, &e, XMC_ECORRUPT, "head.bin", 0);
    xmc_error_clear(&e);
    f = fopen(path, "wb");
    fwrite("XMCFOO\0\0", 1, 8, f);
    fclose(f);
    f = fopen(path, "rb");
    rc = xmc_ova_load(f, path, &b, &e);
    fclose(f);
    tu_assert_error(rc, &e, XMC_ECORRUPT, "head.bin", 0);
    xmc_free(data);
    xmc_ova_free(a);
    xmc_csr_free(Y);
    free(E);
}

static void test_save_load_resume(void **state)
{
    (void)state;
    run_resume(XMC_DT_F32, XMC_HEAD_SGDM);
    run_resume(XMC_DT_BF16, XMC_HEAD_SGDM);
    run_resume(XMC_DT_F32, XMC_HEAD_ADAM);
    run_resume(XMC_DT_BF16, XMC_HEAD_ADAM);
}

/* ------------------------------------------------------------- errors */

static void test_bad_config(void **state)
{
    (void)state;
    xmc_ova_config good = {.n_labels = 10, .dim = 4, .max_batch = 2};
    xmc_ova_config bad[8];
    for (int i = 0; i < 8; i++)
        bad[i] = good;
    bad[0].n_labels = 0;
    bad[1].dim = 0;
    bad[2].max_batch = 0;
    bad[3].dtype = (xmc_dtype)7;
    bad[4].opt = (xmc_head_opt)5;
    bad[5].chunk = -1;
    bad[6].label_offset = -3;
    bad[7].init_std = NAN;
    for (int i = 0; i < 8; i++) {
        xmc_ova *h = (xmc_ova *)&good; /* must be reset to NULL */
        xmc_error e = {0};
        assert_int_equal(xmc_ova_create(&bad[i], &h, &e), XMC_EINVAL);
        assert_int_equal(e.code, XMC_EINVAL);
        assert_null(h);
    }
    /* bad step arguments */
    xmc_ova *h = make_head(10, 0, 4, XMC_DT_F32, XMC_HEAD_ADAM, 0, 2, 1);
    xmc_csr *Y = random_targets(2, 10, 2, 1);
    float E[12] = {0}, dE[12];
    xmc_error e = {0};
    xmc_ova_hparams hp = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    assert_int_equal(xmc_ova_train_step(h, E, 3, Y, NULL, &hp, dE, NULL, &e), XMC_EINVAL);
    int64_t rows[2] = {0, 5};
    assert_int_equal(xmc_ova_train_step(h, E, 2, Y, rows, &hp, dE, NULL, &e), XMC_EINVAL);
    hp.beta2 = 1.0f;
    assert_int_equal(xmc_ova_train_step(h, E, 2, Y, NULL, &hp, dE, NULL, &e), XMC_EINVAL);
    int32_t lab[2];
    float sc[2];
    assert_int_equal(xmc_ova_topk(h, E, 2, 0, lab, sc, &e), XMC_EINVAL);
    float rowsbuf[8];
    assert_int_equal(xmc_ova_get_rows(h, 9, 11, rowsbuf, &e), XMC_EINVAL);
    /* reserve grows the batch */
    assert_int_equal(xmc_ova_reserve(h, 3, &e), XMC_OK);
    assert_int_equal(xmc_ova_get_config(h)->max_batch, 3);
    xmc_csr *Y3 = random_targets(3, 10, 2, 2);
    hp.beta2 = 0.999f;
    assert_int_equal(xmc_ova_train_step(h, E, 3, Y3, NULL, &hp, dE, NULL, &e), XMC_OK);
    xmc_csr_free(Y3);
    xmc_ova_free(h);
    xmc_csr_free(Y);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    xmc_ova_config c = {.n_labels = 100, .dim = 8, .max_batch = 4, .dtype = XMC_DT_BF16};
    size_t base = xmc_mem_current();
    int failed = 0;
    for (uint64_t n = 1; n < 12; n++) {
        xmc_ova *h = NULL;
        xmc_error e = {0};
        xmc_mem_fail_after(n);
        int rc = xmc_ova_create(&c, &h, &e);
        xmc_mem_fail_after(0);
        if (rc) {
            assert_int_equal(rc, XMC_ENOMEM);
            assert_null(h);
            failed++;
        }
        xmc_ova_free(h);
        assert_int_equal(xmc_mem_current(), base);
    }
    assert_true(failed >= 3);
}

static void test_no_alloc_in_step(void **state)
{
    (void)state;
    int B = 8, L = 400, d = 20;
    float *E = malloc(sizeof(float) * (size_t)(B * d));
    random_fill(E, (size_t)(B * d), 1.0f, 91);
    xmc_csr *Y = random_targets(B, L, 4, 92);
    float dE[8 * 20];
    xmc_error e = {0};
    for (int dt = 0; dt < 2; dt++)
        for (int o = 0; o < 2; o++) {
            xmc_ova *h = make_head(L, 0, d, (xmc_dtype)dt, (xmc_head_opt)o, 64, B, 1);
            xmc_ova_hparams hp = {.lr = 0.01f, .momentum = 0.9f, .beta1 = 0.9f,
                                  .beta2 = 0.99f, .eps = 1e-8f, .loss = XMC_LOSS_BCE};
            double lo;
            uint64_t before = xmc_mem_alloc_count();
            for (int s = 0; s < 3; s++)
                assert_int_equal(xmc_ova_train_step(h, E, B, Y, NULL, &hp, dE, &lo, &e), XMC_OK);
            assert_int_equal(xmc_mem_alloc_count(), before);
            assert_true(xmc_ova_bytes(h) >= xmc_ova_param_bytes(h) + xmc_ova_state_bytes(h));
            xmc_ova_free(h);
        }
    xmc_csr_free(Y);
    free(E);
}

/* Training reduces the loss (a smoke test that the update has the right sign). */
static void test_loss_decreases(void **state)
{
    (void)state;
    int B = 32, L = 64, d = 16;
    float *E = malloc(sizeof(float) * (size_t)(B * d));
    random_fill(E, (size_t)(B * d), 1.0f, 101);
    xmc_csr *Y = random_targets(B, L, 4, 102);
    float dE[32 * 16];
    xmc_error e = {0};
    for (int dt = 0; dt < 2; dt++) {
        xmc_ova *h = make_head(L, 0, d, (xmc_dtype)dt, XMC_HEAD_SGDM, 16, B, 1);
        xmc_ova_hparams hp = {.lr = 0.5f / B, .momentum = 0.9f, .loss = XMC_LOSS_BCE};
        double first = 0, last = 0;
        for (int s = 0; s < 30; s++) {
            assert_int_equal(xmc_ova_train_step(h, E, B, Y, NULL, &hp, dE, &last, &e), XMC_OK);
            if (s == 0)
                first = last;
        }
        assert_true(last < 0.5 * first);
        xmc_ova_free(h);
    }
    xmc_csr_free(Y);
    free(E);
}

int main(void)
{
    xmc_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_fp32),
        cmocka_unit_test(test_finite_diff),
        cmocka_unit_test(test_bf16_paths_agree),
        cmocka_unit_test(test_chunk_invariance),
        cmocka_unit_test(test_thread_determinism),
        cmocka_unit_test(test_shards),
        cmocka_unit_test(test_topk),
        cmocka_unit_test(test_save_load_resume),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_no_alloc_in_step),
        cmocka_unit_test(test_loss_decreases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
