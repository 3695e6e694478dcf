/* Fixed fan-in head (include/xmc/ffi.h): numpy fixture (logits, losses, dE,
 * weights after two SGDM / Adam steps), finite differences of dE, gW and the
 * bias gradient (BCE and squared hinge, soft targets), chunk / thread /
 * kernel invariance, determinism, save / load, top-k, accounting, bad
 * configurations and arguments, allocation failures, no allocation in a
 * step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/ffi.h"
#include "xmc/kernels.h"

/* ---------------------------------------------------------------- helpers */

typedef struct ycsr {
    xmc_csr m;
    int64_t indptr[512];
    int32_t indices[4096];
    float values[4096];
} ycsr;

/* Random Y (nrows x ncols), up to maxl labels per row, soft values when
 * soft (some 1, some in (0, 1)). */
static void make_y(ycsr *y, int nrows, int ncols, int maxl, int soft, uint64_t seed)
{
    xmc_rng r;
    xmc_rng_seed(&r, seed, 7);
    assert_true(nrows < 512);
    y->m.nrows = nrows;
    y->m.ncols = ncols;
    y->m.indptr = y->indptr;
    y->m.indices = y->indices;
    y->m.values = soft ? y->values : NULL;
    y->m.owner = NULL;
    int64_t nnz = 0;
    y->indptr[0] = 0;
    for (int b = 0; b < nrows; b++) {
        int n = (int)xmc_rng_below(&r, (uint64_t)maxl + 1);
        int64_t start = nnz;
        for (int q = 0; q < n; q++) {
            int32_t c = (int32_t)xmc_rng_below(&r, (uint64_t)ncols);
            int64_t p = nnz;
            while (p > start && y->indices[p - 1] > c)
                p--;
            if (p > start && y->indices[p - 1] == c)
                continue;
            assert_true(nnz < 4096);
            memmove(y->indices + p + 1, y->indices + p, (size_t)(nnz - p) * 4);
            y->indices[p] = c;
            nnz++;
        }
        for (int64_t p = start; p < nnz; p++)
            y->values[p] = xmc_rng_below(&r, 3) ? 1.0f : (float)(0.1 + 0.8 * xmc_rng_uniform(&r));
        y->indptr[b + 1] = nnz;
    }
}

static float *rand_floats(size_t n, float scale, uint64_t seed)
{
    xmc_rng r;
    xmc_rng_seed(&r, seed, 1);
    float *a = malloc(n * sizeof *a);
    assert_non_null(a);
    for (size_t i = 0; i < n; i++)
        a[i] = scale * xmc_rng_normal(&r);
    return a;
}

static xmc_ffi_config base_cfg(int64_t L, int d, int F, int B)
{
    xmc_ffi_config c = {0};
    c.n_labels = L;
    c.d_in = d;
    c.fan_in = F;
    c.max_batch = B;
    c.seed = 42;
    c.init_std = 0.3f;
    return c;
}

static xmc_ova_hparams hp_sgdm(float lr, float mu, float wd, xmc_loss loss)
{
    xmc_ova_hparams h = {0};
    h.lr = lr;
    h.momentum = mu;
    h.weight_decay = wd;
    h.loss = loss;
    h.step = 1;
    return h;
}

static xmc_ffi *make_head(const xmc_ffi_config *c)
{
    xmc_ffi *h = NULL;
    xmc_error e = {0};
    int rc = xmc_ffi_create(c, &h, &e);
    if (rc)
        fail_msg("create: %s", e.msg);
    return h;
}

static void use_kernel(const char *name)
{
    if (name)
        setenv("XMC_KERNEL", name, 1);
    else
        unsetenv("XMC_KERNEL");
    xmc_cpu_refresh();
}

/* ---------------------------------------------------------------- fixture */

typedef struct fixture {
    char *text;
} fixture;

/* Values of section `name` (count must be n) as floats / doubles. */
static void fx_get(const char *text, const char *name, size_t n, double *out)
{
    char key[128];
    int kn = snprintf(key, sizeof key, "\n%s ", name);
    assert_true(kn > 0 && (size_t)kn < sizeof key);
    const char *p = strstr(text, key);
    if (!p)
        fail_msg("fixture: no section %s", name);
    p += strlen(key);
    char *end;
    long cnt = strtol(p, &end, 10);
    assert_int_equal(cnt, (long)n);
    p = end;
    for (size_t i = 0; i < n; i++) {
        out[i] = strtod(p, &end);
        assert_true(end != p);
        p = end;
    }
}

static char *fx_load(void)
{
    const char *src = getenv("XMC_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/ffi/ref.txt", src ? src : ".");
    char *d;
    size_t n;
    xmc_error e = {0};
    if (xmc_read_file(path, &d, &n, &e))
        fail_msg("%s: %s", path, e.msg);
    return d;
}

static void to_f32(const double *a, float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (float)a[i];
}

static void check_close(const float *got, const double *want, size_t n, double tol,
                        const char *what)
{
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= tol * (1 + fabs(want[i]))))
            fail_msg("%s[%zu]: got %.9g want %.9g", what, i, (double)got[i], want[i]);
    }
}

static void run_fixture_case(const char *text, const char *loss, const char *opt)
{
    double dims[6];
    fx_get(text, "dims", 6, dims);
    int L = (int)dims[0], OFF = (int)dims[1], NC = (int)dims[2], D = (int)dims[3];
    int F = (int)dims[4], B = (int)dims[5];
    double E64[64], W64[64], I64[64], b64[16], ip[8], yi[32], yv[32];
    fx_get(text, "E", (size_t)B * D, E64);
    fx_get(text, "W0", (size_t)L * F, W64);
    fx_get(text, "idx", (size_t)L * F, I64);
    fx_get(text, "bias0", (size_t)L, b64);
    fx_get(text, "Y_indptr", (size_t)B + 1, ip);
    int nnz = (int)ip[B];
    fx_get(text, "Y_indices", (size_t)nnz, yi);
    fx_get(text, "Y_values", (size_t)nnz, yv);
    float E[64], W[64], bias[16], yvals[32];
    int32_t idx[64], yind[32];
    int64_t yptr[8];
    to_f32(E64, E, (size_t)B * D);
    to_f32(W64, W, (size_t)L * F);
    to_f32(b64, bias, (size_t)L);
    for (int i = 0; i < L * F; i++)
        idx[i] = (int32_t)I64[i];
    for (int i = 0; i <= B; i++)
        yptr[i] = (int64_t)ip[i];
    for (int i = 0; i < nnz; i++)
        yind[i] = (int32_t)yi[i], yvals[i] = (float)yv[i];
    xmc_csr Y = {B, NC, yptr, yind, yvals, NULL};

    xmc_ffi_config c = base_cfg(L, D, F, B);
    c.label_offset = OFF;
    c.bias = 1;
    c.chunk = 3; /* several chunks, one ragged */
    c.opt = !strcmp(opt, "adam") ? XMC_HEAD_ADAM : XMC_HEAD_SGDM;
    xmc_ffi *h = make_head(&c);
    xmc_error e = {0};
    assert_int_equal(xmc_ffi_set_rows(h, 0, L, W, idx, bias, &e), XMC_OK);
    xmc_ova_hparams hp = hp_sgdm(0.1f, 0.9f, 0.01f,
                                 !strcmp(loss, "bce") ? XMC_LOSS_BCE : XMC_LOSS_SQHINGE);
    hp.beta1 = 0.9f, hp.beta2 = 0.999f, hp.eps = 1e-8f;
    char name[128];
    double want[128];
    float got[128], dE[64];
    for (int step = 1; step <= 2; step++) {
        hp.step = step;
        snprintf(name, sizeof name, "%s_%s_logits%d", loss, opt, step);
        fx_get(text, name, (size_t)B * L, want);
        assert_int_equal(xmc_ffi_logits(h, E, B, 0, L, got, &e), XMC_OK);
        check_close(got, want, (size_t)B * L, 1e-5, name);
        double lsum = 0;
        assert_int_equal(xmc_ffi_train_step(h, E, B, &Y, NULL, &hp, dE, &lsum, &e), XMC_OK);
        snprintf(name, sizeof name, "%s_%s_loss%d", loss, opt, step);
        fx_get(text, name, 1, want);
        if (!(fabs(lsum - want[0]) <= 1e-5 * (1 + fabs(want[0]))))
            fail_msg("%s: got %.9g want %.9g", name, lsum, want[0]);
        snprintf(name, sizeof name, "%s_%s_dE%d", loss, opt, step);
        fx_get(text, name, (size_t)B * D, want);
        check_close(dE, want, (size_t)B * D, 1e-5, name);
        float Wg[64], bg[16];
        assert_int_equal(xmc_ffi_get_rows(h, 0, L, Wg, NULL, bg, &e), XMC_OK);
        snprintf(name, sizeof name, "%s_%s_W%d", loss, opt, step);
        fx_get(text, name, (size_t)L * F, want);
        check_close(Wg, want, (size_t)L * F, 1e-5, name);
        snprintf(name, sizeof name, "%s_%s_bias%d", loss, opt, step);
        fx_get(text, name, (size_t)L, want);
        check_close(bg, want, (size_t)L, 1e-5, name);
    }
    xmc_ffi_free(h);
}

static void test_numpy_fixture(void **state)
{
    (void)state;
    char *text = fx_load();
    const char *kernels[] = {"ref", NULL};
    for (int k = 0; k < 2; k++) {
        use_kernel(kernels[k]);
        run_fixture_case(text, "bce", "sgdm");
        run_fixture_case(text, "hinge", "sgdm");
        run_fixture_case(text, "bce", "adam");
    }
    use_kernel(NULL);
    xmc_free(text);
}

/* ------------------------------------------------------ finite differences */

static double loss_at(xmc_ffi *h, const float *E, int B, const xmc_csr *Y, xmc_loss loss,
                      float *dE)
{
    xmc_ova_hparams hp = hp_sgdm(0, 0, 0, loss); /* lr 0: W unchanged */
    double l = 0;
    xmc_error e = {0};
    assert_int_equal(xmc_ffi_train_step(h, E, B, Y, NULL, &hp, dE, &l, &e), XMC_OK);
    return l;
}

static void fd_case(xmc_loss loss)
{
    const int L = 13, D = 9, F = 5, B = 6;
    xmc_ffi_config c = base_cfg(L, D, F, B);
    c.bias = 1;
    c.chunk = 4;
    c.init_std = 0.5f;
    xmc_ffi *h = make_head(&c);
    ycsr y;
    make_y(&y, B, L, 4, 1, 99);
    float *E = rand_floats((size_t)B * D, 1.0f, 5);
    float dE[64], scratch[64];
    double l0 = loss_at(h, E, B, &y.m, loss, dE);
    assert_true(l0 > 0);
    const double hstep = 1e-2;
    /* dE */
    for (int i = 0; i < B * D; i++) {
        float keep = E[i];
        E[i] = keep + (float)hstep;
        double lp = loss_at(h, E, B, &y.m, loss, scratch);
        E[i] = keep - (float)hstep;
        double lm = loss_at(h, E, B, &y.m, loss, scratch);
        E[i] = keep;
        double fd = (lp - lm) / (2 * hstep);
        if (!(fabs(fd - dE[i]) <= 2e-3 + 1e-2 * fabs(fd)))
            fail_msg("loss %d dE[%d]: analytic %.6g, finite difference %.6g", loss, i, dE[i], fd);
    }
    /* gW and the bias gradient: one SGD step with lr 1, no momentum or
     * decay, moves W by exactly -gW. */
    float W[128], Wp[128], bias[16], bp[16];
    int32_t idx[128];
    xmc_error e = {0};
    assert_int_equal(xmc_ffi_get_rows(h, 0, L, W, idx, bias, &e), XMC_OK);
    double fdW[128], fdb[16];
    for (int q = 0; q < L * F + L; q++) {
        int isb = q >= L * F;
        int u = isb ? q - L * F : q / F;
        float *p = isb ? &bias[u] : &W[q];
        float keep = *p;
        double l[2];
        for (int s = 0; s < 2; s++) {
            *p = keep + (float)(s ? -hstep : hstep);
            assert_int_equal(xmc_ffi_set_rows(h, u, u + 1, W + u * F, NULL, bias + u, &e), XMC_OK);
            l[s] = loss_at(h, E, B, &y.m, loss, scratch);
        }
        *p = keep;
        assert_int_equal(xmc_ffi_set_rows(h, u, u + 1, W + u * F, NULL, bias + u, &e), XMC_OK);
        (isb ? fdb : fdW)[isb ? u : q] = (l[0] - l[1]) / (2 * hstep);
    }
    xmc_ova_hparams hp = hp_sgdm(1.0f, 0, 0, loss);
    assert_int_equal(xmc_ffi_train_step(h, E, B, &y.m, NULL, &hp, dE, NULL, &e), XMC_OK);
    assert_int_equal(xmc_ffi_get_rows(h, 0, L, Wp, NULL, bp, &e), XMC_OK);
    for (int q = 0; q < L * F; q++) {
        double g = (double)W[q] - Wp[q];
        if (!(fabs(g - fdW[q]) <= 2e-3 + 1e-2 * fabs(fdW[q])))
            fail_msg("loss %d gW[%d]: analytic %.6g, finite difference %.6g", loss, q, g, fdW[q]);
    }
    for (int u = 0; u < L; u++) {
        double g = (double)bias[u] - bp[u];
        if (!(fabs(g - fdb[u]) <= 2e-3 + 1e-2 * fabs(fdb[u])))
            fail_msg("loss %d gb[%d]: analytic %.6g, finite difference %.6g", loss, u, g, fdb[u]);
    }
    free(E);
    xmc_ffi_free(h);
}

static void test_finite_differences(void **state)
{
    (void)state;
    fd_case(XMC_LOSS_BCE);
    fd_case(XMC_LOSS_SQHINGE);
}

/* loss_scale multiplies every gradient, not the reported loss. */
static void test_loss_scale(void **state)
{
    (void)state;
    const int L = 40, D = 20, F = 6, B = 9;
    xmc_ffi_config c = base_cfg(L, D, F, B);
    ycsr y;
    make_y(&y, B, L, 3, 0, 3);
    float *E = rand_floats((size_t)B * D, 1.0f, 8);
    float dE1[180], dE2[180], W1[240], W2[240];
    xmc_ova_hparams hp = hp_sgdm(0.05f, 0, 0, XMC_LOSS_BCE);
    xmc_error e = {0};
    double l1, l2;
    xmc_ffi *a = make_head(&c), *b = make_head(&c);
    assert_int_equal(xmc_ffi_train_step(a, E, B, &y.m, NULL, &hp, dE1, &l1, &e), XMC_OK);
    hp.lr = 0.05f / 0.25f; /* plain SGD: scale 0.25 with lr / 0.25 gives the same step */
    assert_int_equal(xmc_ffi_train_step_ex(b, E, B, &y.m, NULL, &hp, 0.25f, dE2, &l2, &e), XMC_OK);
    assert_true(fabs(l1 - l2) <= 1e-9 * fabs(l1));
    for (int i = 0; i < B * D; i++)
        assert_true(fabsf(dE2[i] - 0.25f * dE1[i]) <= 1e-6f + 1e-5f * fabsf(dE1[i]));
    xmc_ffi_get_rows(a, 0, L, W1, NULL, NULL, &e);
    xmc_ffi_get_rows(b, 0, L, W2, NULL, NULL, &e);
    assert_true(tu_rel_err(W2, W1, (size_t)L * F, 1e-6, 1e-5) <= 1);
    xmc_ffi_free(a);
    xmc_ffi_free(b);
    free(E);
}

/* ------------------------------------------------------------- invariance */

typedef struct run_out {
    float *W, *dE;
    double loss;
} run_out;

/* Two steps (the second with other rows) on a fresh head; returns W, dE. */
static run_out run_two(xmc_ffi_config c, int threads, const float *E, int B, const xmc_csr *Y,
                       xmc_loss loss)
{
    xmc_set_threads(threads);
    xmc_ffi *h = make_head(&c);
    xmc_ova_hparams hp = hp_sgdm(0.05f, 0.9f, 1e-3f, loss);
    hp.beta1 = 0.9f, hp.beta2 = 0.99f, hp.eps = 1e-6f;
    run_out o;
    o.W = malloc((size_t)c.n_labels * c.fan_in * 4);
    o.dE = malloc((size_t)B * c.d_in * 4);
    int64_t rows[512];
    for (int b = 0; b < B; b++)
        rows[b] = (b * 7 + 3) % B;
    xmc_error e = {0};
    assert_int_equal(xmc_ffi_train_step(h, E, B, Y, NULL, &hp, o.dE, &o.loss, &e), XMC_OK);
    hp.step = 2;
    assert_int_equal(xmc_ffi_train_step(h, E, B, Y, rows, &hp, o.dE, &o.loss, &e), XMC_OK);
    assert_int_equal(xmc_ffi_get_rows(h, 0, c.n_labels, o.W, NULL, NULL, &e), XMC_OK);
    xmc_ffi_free(h);
    return o;
}

static void free_out(run_out *o)
{
    free(o->W);
    free(o->dE);
}

static void test_chunk_thread_invariance(void **state)
{
    (void)state;
    const int L = 301, D = 70, F = 16, B = 150; /* B-tiles 64, 64, 22 */
    ycsr y;
    make_y(&y, B, L, 5, 1, 11);
    float *E = rand_floats((size_t)B * D, 1.0f, 12);
    for (int opt = 0; opt < 2; opt++) {
        xmc_ffi_config c = base_cfg(L, D, F, B);
        c.bias = 1;
        c.opt = opt ? XMC_HEAD_ADAM : XMC_HEAD_SGDM;
        xmc_loss loss = opt ? XMC_LOSS_SQHINGE : XMC_LOSS_BCE;
        c.chunk = 128;
        run_out ref = run_two(c, 2, E, B, &y.m, loss);
        /* Same configuration again: bit-identical. */
        run_out again = run_two(c, 2, E, B, &y.m, loss);
        assert_memory_equal(ref.W, again.W, (size_t)L * F * 4);
        assert_memory_equal(ref.dE, again.dE, (size_t)B * D * 4);
        assert_true(ref.loss == again.loss);
        free_out(&again);
        /* Other chunk sizes: bit-identical too. */
        const int64_t chunks[] = {1, 7, 1000};
        for (int i = 0; i < 3; i++) {
            c.chunk = chunks[i];
            run_out o = run_two(c, 2, E, B, &y.m, loss);
            assert_memory_equal(ref.W, o.W, (size_t)L * F * 4);
            assert_memory_equal(ref.dE, o.dE, (size_t)B * D * 4);
            free_out(&o);
        }
        /* One thread: W is still bit-identical (a label's gradient is summed
         * by one thread), dE and the loss equal up to rounding. */
        c.chunk = 128;
        run_out one = run_two(c, 1, E, B, &y.m, loss);
        assert_memory_equal(ref.W, one.W, (size_t)L * F * 4);
        assert_true(tu_rel_err(one.dE, ref.dE, (size_t)B * D, 1e-5, 1e-5) <= 1);
        assert_true(fabs(one.loss - ref.loss) <= 1e-9 * fabs(ref.loss));
        free_out(&one);
        /* The reference kernels: equal up to rounding. */
        use_kernel("ref");
        run_out rk = run_two(c, 2, E, B, &y.m, loss);
        use_kernel(NULL);
        assert_true(tu_rel_err(rk.W, ref.W, (size_t)L * F, 1e-5, 1e-4) <= 1);
        assert_true(tu_rel_err(rk.dE, ref.dE, (size_t)B * D, 1e-5, 1e-4) <= 1);
        free_out(&rk);
        free_out(&ref);
    }
    xmc_set_threads(2);
    free(E);
}

/* A shard [off, off + n) holds exactly the unsharded head's rows, and its
 * training step updates them the same way. */
static void test_shard_matches_full(void **state)
{
    (void)state;
    const int L = 50, D = 30, F = 7, B = 20, OFF = 17, N = 13;
    xmc_ffi_config c = base_cfg(L, D, F, B);
    xmc_ffi *full = make_head(&c);
    c.label_offset = OFF;
    c.n_labels = N;
    xmc_ffi *part = make_head(&c);
    float Wf[350], Wp[350];
    int32_t If[350], Ip[350];
    xmc_error e = {0};
    assert_int_equal(xmc_ffi_get_rows(full, OFF, OFF + N, Wf, If, NULL, &e), XMC_OK);
    assert_int_equal(xmc_ffi_get_rows(part, 0, N, Wp, Ip, NULL, &e), XMC_OK);
    assert_memory_equal(Wf, Wp, (size_t)N * F * 4);
    assert_memory_equal(If, Ip, (size_t)N * F * 4);
    ycsr y;
    make_y(&y, B, L, 6, 0, 21);
    float *E = rand_floats((size_t)B * D, 1.0f, 22);
    float *dE = malloc((size_t)B * D * 4);
    xmc_ova_hparams hp = hp_sgdm(0.1f, 0.5f, 0, XMC_LOSS_BCE);
    assert_int_equal(xmc_ffi_train_step(full, E, B, &y.m, NULL, &hp, dE, NULL, &e), XMC_OK);
    assert_int_equal(xmc_ffi_train_step(part, E, B, &y.m, NULL, &hp, dE, NULL, &e), XMC_OK);
    xmc_ffi_get_rows(full, OFF, OFF + N, Wf, NULL, NULL, &e);
    xmc_ffi_get_rows(part, 0, N, Wp, NULL, NULL, &e);
    assert_memory_equal(Wf, Wp, (size_t)N * F * 4);
    free(E);
    free(dE);
    xmc_ffi_free(full);
    xmc_ffi_free(part);
}

/* fan_in == d_in is a dense layer: logits equal E W^T. */
static void test_dense_equivalence(void **state)
{
    (void)state;
    const int L = 9, D = 21, B = 70;
    xmc_ffi_config c = base_cfg(L, D, D, B);
    xmc_ffi *h = make_head(&c);
    float W[9 * 21], out[70 * 9];
    int32_t idx[9 * 21];
    xmc_error e = {0};
    xmc_ffi_get_rows(h, 0, L, W, idx, NULL, &e);
    for (int i = 0; i < L * D; i++)
        assert_int_equal(idx[i], i % D);
    float *E = rand_floats((size_t)B * D, 1.0f, 31);
    assert_int_equal(xmc_ffi_logits(h, E, B, 0, L, out, &e), XMC_OK);
    for (int b = 0; b < B; b++)
        for (int u = 0; u < L; u++) {
            double s = 0;
            for (int j = 0; j < D; j++)
                s += (double)E[b * D + j] * W[u * D + j];
            assert_true(fabs(s - out[b * L + u]) <= 1e-5 * (1 + fabs(s)));
        }
    free(E);
    xmc_ffi_free(h);
}

/* ------------------------------------------------------------ topology */

static void test_init_topology(void **state)
{
    (void)state;
    const int L = 500, D = 40;
    const int Fs[] = {1, 13, 30, 40};
    for (int i = 0; i < 4; i++) {
        int F = Fs[i];
        xmc_ffi_config c = base_cfg(L, D, F, 4);
        xmc_ffi *h = make_head(&c), *h2 = make_head(&c);
        int32_t *idx = malloc((size_t)L * F * 4), *idx2 = malloc((size_t)L * F * 4);
        float *W = malloc((size_t)L * F * 4);
        xmc_error e = {0};
        xmc_ffi_get_rows(h, 0, L, W, idx, NULL, &e);
        xmc_ffi_get_rows(h2, 0, L, NULL, idx2, NULL, &e);
        assert_memory_equal(idx, idx2, (size_t)L * F * 4); /* same seed, same draw */
        long hits[40] = {0};
        double s2 = 0;
        for (int u = 0; u < L; u++)
            for (int k = 0; k < F; k++) {
                int32_t v = idx[u * F + k];
                assert_true(v >= 0 && v < D);
                if (k)
                    assert_true(v > idx[u * F + k - 1]);
                hits[v]++;
                s2 += (double)W[u * F + k] * W[u * F + k];
            }
        /* Inputs are drawn uniformly: every input used, none hugely often. */
        for (int j = 0; j < D; j++)
            assert_true(hits[j] > 0 && hits[j] < 3.0 * L * F / D + 10);
        double sd = sqrt(s2 / ((double)L * F));
        assert_true(fabs(sd - 0.3) < 0.05);
        c.seed = 43;
        xmc_ffi *h3 = make_head(&c);
        xmc_ffi_get_rows(h3, 0, L, NULL, idx2, NULL, &e);
        if (F < D)
            assert_memory_not_equal(idx, idx2, (size_t)L * F * 4);
        free(idx);
        free(idx2);
        free(W);
        xmc_ffi_free(h);
        xmc_ffi_free(h2);
        xmc_ffi_free(h3);
    }
}

static void test_set_rows_validates(void **state)
{
    (void)state;
    xmc_ffi_config c = base_cfg(3, 10, 4, 4);
    xmc_ffi *h = make_head(&c);
    float W[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, Wg[12];
    int32_t idx[12] = {9, 0, 5, 2, 1, 2, 3, 4, 0, 1, 2, 3}, ig[12];
    xmc_error e = {0};
    assert_int_equal(xmc_ffi_set_rows(h, 0, 3, W, idx, NULL, &e), XMC_OK);
    xmc_ffi_get_rows(h, 0, 3, Wg, ig, NULL, &e);
    /* Row 0 sorted, weights follow their inputs. */
    const int32_t want_i[4] = {0, 2, 5, 9};
    const float want_w[4] = {2, 4, 3, 1};
    assert_memory_equal(ig, want_i, 16);
    assert_memory_equal(Wg, want_w, 16);
    int32_t dup[4] = {1, 3, 3, 0}, out[4] = {1, 2, 3, 10};
    assert_int_equal(xmc_ffi_set_rows(h, 1, 2, W, dup, NULL, &e), XMC_EINVAL);
    assert_non_null(strstr(e.msg, "repeated"));
    xmc_error_clear(&e);
    assert_int_equal(xmc_ffi_set_rows(h, 1, 2, W, out, NULL, &e), XMC_EINVAL);
    xmc_error_clear(&e);
    assert_int_equal(xmc_ffi_set_rows(h, 2, 4, W, idx, NULL, &e), XMC_EINVAL);
    xmc_ffi_get_rows(h, 0, 3, NULL, ig, NULL, &e);
    assert_memory_equal(ig + 4, idx + 4, 32); /* rows 1, 2 unchanged by failures */
    xmc_ffi_free(h);
}

/* ------------------------------------------------------------ save / load */

static void test_save_load(void **state)
{
    (void)state;
    const int L = 77, D = 33, F = 9, B = 12;
    xmc_ffi_config c = base_cfg(L, D, F, B);
    c.bias = 1;
    c.opt = XMC_HEAD_ADAM;
    xmc_ffi *h = make_head(&c);
    ycsr y;
    make_y(&y, B, L, 4, 1, 41);
    float *E = rand_floats((size_t)B * D, 1.0f, 42);
    float *dE = malloc((size_t)B * D * 4);
    xmc_ova_hparams hp = hp_sgdm(0.01f, 0, 0.01f, XMC_LOSS_BCE);
    hp.beta1 = 0.9f, hp.beta2 = 0.999f, hp.eps = 1e-8f;
    xmc_error e = {0};
    assert_int_equal(xmc_ffi_train_step(h, E, B, &y.m, NULL, &hp, dE, NULL, &e), XMC_OK);
    assert_int_equal(xmc_ffi_rewire(h, 0.1, 0, NULL, &e), XMC_OK);
    const char *p = tu_path("head.ffi");
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(xmc_ffi_save(h, f, p, &e), XMC_OK);
    fclose(f);
    xmc_ffi *g = NULL;
    f = fopen(p, "rb");
    assert_int_equal(xmc_ffi_load(f, p, &g, &e), XMC_OK);
    fclose(f);
    assert_int_equal(xmc_ffi_get_config(g)->n_labels, L);
    assert_int_equal(xmc_ffi_get_config(g)->opt, XMC_HEAD_ADAM);
    assert_int_equal(xmc_ffi_rewire_rounds(g), 1);
    assert_int_equal(xmc_ffi_steps(g), 1);
    /* Both continue identically (optimizer state restored). */
    hp.step = 2;
    float *dE2 = malloc((size_t)B * D * 4);
    assert_int_equal(xmc_ffi_train_step(h, E, B, &y.m, NULL, &hp, dE, NULL, &e), XMC_OK);
    assert_int_equal(xmc_ffi_train_step(g, E, B, &y.m, NULL, &hp, dE2, NULL, &e), XMC_OK);
    assert_memory_equal(dE, dE2, (size_t)B * D * 4);
    float W1[77 * 9], W2[77 * 9], b1[77], b2[77];
    int32_t i1[77 * 9], i2[77 * 9];
    xmc_ffi_get_rows(h, 0, L, W1, i1, b1, &e);
    xmc_ffi_get_rows(g, 0, L, W2, i2, b2, &e);
    assert_memory_equal(W1, W2, sizeof W1);
    assert_memory_equal(i1, i2, sizeof i1);
    assert_memory_equal(b1, b2, sizeof b1);
    xmc_ffi_free(g);

    /* A flipped byte: checksum. Truncation, bad magic: corrupt. */
    char *data;
    size_t n;
    assert_int_equal(xmc_read_file(p, &data, &n, &e), XMC_OK);
    const char *q = tu_path("bad.ffi");
    const size_t cuts[] = {n / 2, n - 2, 4};
    for (int t = 0; t < 4; t++) {
        f = fopen(q, "wb");
        if (t < 3) {
            fwrite(data, 1, cuts[t], f);
        } else {
            data[n / 2] ^= 0x10;
            fwrite(data, 1, n, f);
        }
        fclose(f);
        f = fopen(q, "rb");
        xmc_error_clear(&e);
        g = NULL;
        assert_int_equal(xmc_ffi_load(f, q, &g, &e), XMC_ECORRUPT);
        assert_null(g);
        assert_non_null(strstr(e.path, "bad.ffi"));
        fclose(f);
    }
    xmc_free(data);
    free(E);
    free(dE);
    free(dE2);
    xmc_ffi_free(h);
}

/* ------------------------------------------------------------------ top-k */

static void test_topk(void **state)
{
    (void)state;
    const int L = 203, D = 25, F = 8, B = 67, K = 5;
    xmc_ffi_config c = base_cfg(L, D, F, B);
    c.label_offset = 1000;
    xmc_ffi *h = make_head(&c);
    float *E = rand_floats((size_t)B * D, 1.0f, 51);
    float *lg = malloc((size_t)B * L * 4), sc[67 * 5];
    int32_t lab[67 * 5];
    xmc_error e = {0};
    /* Two labels with identical rows tie: the smaller id must come first. */
    float W[8];
    int32_t idx[8];
    xmc_ffi_get_rows(h, 3, 4, W, idx, NULL, &e);
    for (int k = 0; k < F; k++)
        W[k] = 5.0f;
    xmc_ffi_set_rows(h, 3, 4, W, idx, NULL, &e);
    xmc_ffi_set_rows(h, 100, 101, W, idx, NULL, &e);
    assert_int_equal(xmc_ffi_logits(h, E, B, 0, L, lg, &e), XMC_OK);
    uint64_t n0 = xmc_mem_alloc_count();
    assert_int_equal(xmc_ffi_topk(h, E, B, K, lab, sc, &e), XMC_OK);
    assert_int_equal(xmc_mem_alloc_count(), n0); /* step scratch only */
    assert_int_equal(xmc_ffi_topk(h, E, B + 1, K, lab, sc, NULL), XMC_EINVAL);
    assert_int_equal(xmc_ffi_topk(h, E, B, 0, lab, sc, NULL), XMC_EINVAL);
    for (int b = 0; b < B; b++) {
        char taken[203] = {0};
        for (int q = 0; q < K; q++) {
            int best = -1;
            for (int u = 0; u < L; u++)
                if (!taken[u] && (best < 0 || lg[b * L + u] > lg[b * L + best]))
                    best = u;
            taken[best] = 1;
            assert_int_equal(lab[b * K + q], 1000 + best);
            assert_true(sc[b * K + q] == lg[b * L + best]);
        }
    }
    /* k > L: padded with -1. */
    float sc2[2 * 210];
    int32_t lab2[2 * 210];
    assert_int_equal(xmc_ffi_topk(h, E, 2, 210, lab2, sc2, &e), XMC_OK);
    assert_true(lab2[202] >= 1000);
    assert_int_equal(lab2[203], -1);
    assert_int_equal(lab2[209], -1);
    free(E);
    free(lg);
    xmc_ffi_free(h);
}

/* ------------------------------------------------------ accounting, errors */

static void test_bytes(void **state)
{
    (void)state;
    xmc_ffi_config c = base_cfg(1000, 768, 64, 8);
    assert_int_equal(xmc_ffi_bytes_per_label(&c), 8 * 64 + 4 * 64);
    c.opt = XMC_HEAD_ADAM;
    assert_int_equal(xmc_ffi_bytes_per_label(&c), 8 * 64 + 8 * 64);
    c.bias = 1;
    assert_int_equal(xmc_ffi_bytes_per_label(&c), 8 * 64 + 8 * 64 + 12);
    size_t before = xmc_mem_current();
    xmc_ffi *h = make_head(&c);
    size_t held = xmc_mem_current() - before;
    assert_int_equal(xmc_ffi_bytes(h),
                     1000 * xmc_ffi_bytes_per_label(&c) + xmc_ffi_scratch_bytes(h));
    assert_int_equal(xmc_ffi_param_bytes(h), 1000 * (8 * 64 + 4));
    assert_int_equal(xmc_ffi_param_bytes(h) + xmc_ffi_state_bytes(h) + xmc_ffi_scratch_bytes(h),
                     xmc_ffi_bytes(h));
    /* What is allocated is what is reported, up to alignment padding. */
    assert_true(held >= xmc_ffi_bytes(h) && held < xmc_ffi_bytes(h) + 4096);
    xmc_ffi_free(h);
    assert_int_equal(xmc_mem_current(), before);
}

static void test_bad_config(void **state)
{
    (void)state;
    xmc_error e = {0};
    xmc_ffi *h = (xmc_ffi *)&e;
    xmc_ffi_config c = base_cfg(10, 8, 9, 4); /* F > d_in */
    assert_int_equal(xmc_ffi_create(&c, &h, &e), XMC_EINVAL);
    assert_null(h);
    assert_non_null(strstr(e.msg, "fan_in"));
    const int bad_F[] = {0, -3};
    for (int i = 0; i < 2; i++) {
        c = base_cfg(10, 8, bad_F[i], 4);
        xmc_error_clear(&e);
        assert_int_equal(xmc_ffi_create(&c, &h, &e), XMC_EINVAL);
    }
    c = base_cfg(0, 8, 4, 4);
    assert_int_equal(xmc_ffi_create(&c, &h, NULL), XMC_EINVAL);
    c = base_cfg(10, 0, 4, 4);
    assert_int_equal(xmc_ffi_create(&c, &h, NULL), XMC_EINVAL);
    c = base_cfg(10, 8, 4, 0);
    assert_int_equal(xmc_ffi_create(&c, &h, NULL), XMC_EINVAL);
    c = base_cfg(10, 8, 4, 4);
    c.chunk = -1;
    assert_int_equal(xmc_ffi_create(&c, &h, NULL), XMC_EINVAL);
    c.chunk = 0;
    c.label_offset = -1;
    assert_int_equal(xmc_ffi_create(&c, &h, NULL), XMC_EINVAL);
    c.label_offset = 0;
    c.init_std = NAN;
    assert_int_equal(xmc_ffi_create(&c, &h, NULL), XMC_EINVAL);
    c.init_std = 0;
    c.dtype = XMC_DT_BF16;
    assert_int_equal(xmc_ffi_create(&c, &h, NULL), XMC_EUNSUPPORTED);
    c.dtype = XMC_DT_F32;
    c.opt = (xmc_head_opt)7;
    assert_int_equal(xmc_ffi_create(&c, &h, NULL), XMC_EINVAL);
    assert_int_equal(xmc_ffi_create(NULL, &h, NULL), XMC_EINVAL);
    xmc_ffi_free(NULL);
}

static void test_bad_step_args(void **state)
{
    (void)state;
    const int L = 10, D = 8, F = 3, B = 4;
    xmc_ffi_config c = base_cfg(L, D, F, B);
    c.label_offset = 5;
    xmc_ffi *h = make_head(&c);
    ycsr y;
    make_y(&y, B, L + 5, 3, 0, 61);
    float E[40] = {0}, dE[40], W0[30], W1[30];
    xmc_error e = {0};
    xmc_ffi_get_rows(h, 0, L, W0, NULL, NULL, &e);
    xmc_ova_hparams hp = hp_sgdm(0.1f, 0.9f, 0, XMC_LOSS_BCE);
    assert_int_equal(xmc_ffi_train_step(h, E, B + 1, &y.m, NULL, &hp, dE, NULL, &e), XMC_EINVAL);
    int64_t rows[4] = {0, 1, 4, 2};
    xmc_error_clear(&e);
    assert_int_equal(xmc_ffi_train_step(h, E, B, &y.m, rows, &hp, dE, NULL, &e), XMC_EINVAL);
    assert_non_null(strstr(e.msg, "rows[2]"));
    y.m.ncols = L + 4; /* does not cover the shard */
    assert_int_equal(xmc_ffi_train_step(h, E, B, &y.m, NULL, &hp, dE, NULL, NULL), XMC_EINVAL);
    y.m.ncols = L + 5;
    hp.loss = (xmc_loss)9;
    assert_int_equal(xmc_ffi_train_step(h, E, B, &y.m, NULL, &hp, dE, NULL, NULL), XMC_EINVAL);
    hp.loss = XMC_LOSS_BCE;
    hp.lr = NAN;
    assert_int_equal(xmc_ffi_train_step(h, E, B, &y.m, NULL, &hp, dE, NULL, NULL), XMC_EINVAL);
    hp.lr = 0.1f;
    hp.momentum = 1.5f;
    assert_int_equal(xmc_ffi_train_step(h, E, B, &y.m, NULL, &hp, dE, NULL, NULL), XMC_EINVAL);
    xmc_ffi_get_rows(h, 0, L, W1, NULL, NULL, &e);
    assert_memory_equal(W0, W1, sizeof W0); /* nothing changed */
    xmc_ffi_free(h);
}

static void test_alloc_failures_and_no_alloc_in_step(void **state)
{
    (void)state;
    xmc_ffi_config c = base_cfg(100, 16, 4, 8);
    c.bias = 1;
    size_t before = xmc_mem_current();
    for (int n = 1; n <= 6; n++) {
        xmc_ffi *h = NULL;
        xmc_mem_fail_after((uint64_t)n);
        int rc = xmc_ffi_create(&c, &h, NULL);
        xmc_mem_fail_after(0);
        if (rc == XMC_OK) {
            xmc_ffi_free(h);
            continue;
        }
        assert_int_equal(rc, XMC_ENOMEM);
        assert_null(h);
        assert_int_equal(xmc_mem_current(), before);
    }
    xmc_ffi *h = make_head(&c);
    ycsr y;
    make_y(&y, 8, 100, 3, 1, 71);
    float *E = rand_floats(8 * 16, 1.0f, 72);
    float dE[128];
    double l;
    xmc_ova_hparams hp = hp_sgdm(0.1f, 0.9f, 0, XMC_LOSS_BCE);
    uint64_t n0 = xmc_mem_alloc_count();
    assert_int_equal(xmc_ffi_train_step(h, E, 8, &y.m, NULL, &hp, dE, &l, NULL), XMC_OK);
    assert_int_equal(xmc_ffi_train_step(h, E, 5, &y.m, NULL, &hp, dE, NULL, NULL), XMC_OK);
    assert_int_equal(xmc_mem_alloc_count(), n0);
    free(E);
    xmc_ffi_free(h);
}

/* reserve grows the batch; Adam's step <= 0 uses the head's own count. */
static void test_reserve_and_steps(void **state)
{
    (void)state;
    const int L = 40, D = 16, F = 4;
    xmc_ffi_config c = base_cfg(L, D, F, 4);
    c.opt = XMC_HEAD_ADAM;
    xmc_ffi *a = make_head(&c), *b = make_head(&c);
    ycsr y;
    make_y(&y, 8, L, 3, 0, 81);
    float *E = rand_floats(8 * D, 1.0f, 82);
    float dE[128], Wa[160], Wb[160];
    xmc_ova_hparams hp = hp_sgdm(0.01f, 0, 0, XMC_LOSS_BCE);
    hp.beta1 = 0.9f, hp.beta2 = 0.999f, hp.eps = 1e-8f;
    xmc_error e = {0};
    assert_int_equal(xmc_ffi_train_step(a, E, 8, &y.m, NULL, &hp, dE, NULL, &e), XMC_EINVAL);
    size_t s0 = xmc_ffi_scratch_bytes(a);
    assert_int_equal(xmc_ffi_reserve(a, 8, &e), XMC_OK);
    assert_int_equal(xmc_ffi_reserve(b, 8, &e), XMC_OK);
    assert_true(xmc_ffi_scratch_bytes(a) > s0);
    assert_int_equal(xmc_ffi_reserve(a, 0, NULL), XMC_EINVAL);
    for (int step = 1; step <= 3; step++) {
        hp.step = step;
        assert_int_equal(xmc_ffi_train_step(a, E, 8, &y.m, NULL, &hp, dE, NULL, &e), XMC_OK);
        hp.step = 0;
        assert_int_equal(xmc_ffi_train_step(b, E, 8, &y.m, NULL, &hp, dE, NULL, &e), XMC_OK);
    }
    assert_int_equal(xmc_ffi_steps(a), 3);
    assert_int_equal(xmc_ffi_steps(b), 3);
    xmc_ffi_get_rows(a, 0, L, Wa, NULL, NULL, &e);
    xmc_ffi_get_rows(b, 0, L, Wb, NULL, NULL, &e);
    assert_memory_equal(Wa, Wb, sizeof Wa);
    free(E);
    xmc_ffi_free(a);
    xmc_ffi_free(b);
}

/* `xmc bench classifier --head ffi` end to end (small): runs, prints both
 * heads and the dense baselines, and its byte accounting matches. */
static void test_bench_cli(void **state)
{
    (void)state;
    const char *bin = tu_xmc_bin();
    if (!getenv("XMC_BIN") || !xmc_file_exists(bin))
        skip();
    const char *out = tu_path("bench.txt");
    assert_int_equal(tu_system("OMP_WAIT_POLICY=passive '%s' bench classifier --head ffi "
                               "--fan-in 8,4 --labels 500 --dim 32 --batch 16 --reps 1 "
                               "--dense both --with-ref > '%s' 2>&1",
                               bin, out),
                     0);
    char *text;
    size_t n;
    xmc_error e = {0};
    assert_int_equal(xmc_read_file(out, &text, &n, &e), XMC_OK);
    assert_non_null(strstr(text, "dense-ova"));
    assert_non_null(strstr(text, "dense-blas"));
    assert_non_null(strstr(text, "ffi-ref"));
    const char *m = strstr(text, "F=8: bytes/label (4+4)*F + state = 96;");
    assert_non_null(m);
    assert_non_null(strstr(m, "(match)"));
    assert_non_null(strstr(text, "F=4: bytes/label (4+4)*F + state = 48;"));
    assert_null(strstr(text, "MISMATCH"));
    xmc_free(text);
    /* F > dim: the library's XMC_EINVAL, exit 1; a bad flag: usage, exit 2. */
    assert_int_equal(tu_system("'%s' bench classifier --head ffi --fan-in 64 --dim 32 "
                               "--labels 10 --reps 1 --dense none > /dev/null 2>&1",
                               bin),
                     1);
    assert_int_equal(tu_system("'%s' bench classifier --head ffi --fan-in 8 --bogus > /dev/null "
                               "2>&1",
                               bin),
                     2);
}

int main(void)
{
    /* Sleep, not spin, at OpenMP barriers: on a shared, oversubscribed machine
     * a spinning thread waits for a descheduled partner (7.7 s vs 0.4 s for
     * this program under ASan). Must precede the first OpenMP call. */
    setenv("OMP_WAIT_POLICY", "passive", 0);
    xmc_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numpy_fixture),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_loss_scale),
        cmocka_unit_test(test_chunk_thread_invariance),
        cmocka_unit_test(test_shard_matches_full),
        cmocka_unit_test(test_dense_equivalence),
        cmocka_unit_test(test_init_topology),
        cmocka_unit_test(test_set_rows_validates),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_topk),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_bad_step_args),
        cmocka_unit_test(test_alloc_failures_and_no_alloc_in_step),
        cmocka_unit_test(test_reserve_and_steps),
        cmocka_unit_test(test_bench_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
