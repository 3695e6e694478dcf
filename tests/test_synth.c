/* Synthetic data: byte-identical output for a seed whatever the thread count,
 * the statistics the generator promises (Zipf slope of label frequency vs
 * rank, labels per point, label texts of 2-5 words, L2-normalised sorted
 * features), loading through xmc_dataset_load, learnability (a linear model
 * beats the label-frequency baseline by far), and refusal of bad arguments. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/data.h"
#include "xmc/metrics.h"
#include "xmc/synth.h"

static const char *const FILES[] = {"trn_X_Y.txt",  "tst_X_Y.txt",  "trn_X.txt", "tst_X.txt",
                                    "trn_X_Xf.txt", "tst_X_Xf.txt", "Y.txt"};

static void gen(const char *dir, int64_t n, int64_t L, uint64_t seed, double zipf, int threads)
{
    xmc_synth_config c;
    xmc_synth_config_default(&c);
    c.n_points = n;
    c.n_labels = L;
    c.seed = seed;
    c.zipf = zipf;
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    xmc_error e = {0};
    xmc_synth_stats st;
    int rc = xmc_synth_write(&c, dir, &st, &e);
    omp_set_num_threads(saved);
    char buf[1200];
    if (rc)
        fail_msg("synth failed: %s", xmc_error_format(&e, buf, sizeof buf));
    assert_int_equal(st.n_train + st.n_test, n);
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *d = NULL;
    xmc_error e = {0};
    assert_int_equal(xmc_read_file(p, &d, len, &e), XMC_OK);
    return d;
}

static void test_deterministic(void **state)
{
    (void)state;
    const char *a = tu_path("det_a"), *b = tu_path("det_b"), *c = tu_path("det_c");
    /* Batches are 16384 points: 40000 spans three, so thread slices differ. */
    gen(a, 40000, 3000, 7, 1.0, 1);
    gen(b, 40000, 3000, 7, 1.0, 3);
    gen(c, 40000, 3000, 8, 1.0, 2);
    int differs_c = 0;
    for (size_t f = 0; f < sizeof FILES / sizeof FILES[0]; f++) {
        size_t na, nb, nc;
        char *da = slurp(a, FILES[f], &na), *db = slurp(b, FILES[f], &nb),
             *dc = slurp(c, FILES[f], &nc);
        assert_true(na > 0);
        assert_int_equal(na, nb);
        assert_memory_equal(da, db, na);
        differs_c += na != nc || memcmp(da, dc, na) != 0;
        xmc_free(da);
        xmc_free(db);
        xmc_free(dc);
    }
    assert_int_equal(differs_c, 7); /* another seed changes every file */
}

static int cmp_i32_asc(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

static int cmp_desc_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a < b) - (a > b);
}

/* Least-squares slope of log(count) on log(rank), sampled at log-spaced ranks
 * from 10 to the last rank with count >= 10 (the noisy tail and the flat
 * Mandelbrot head are left out). */
static double zipf_slope(const xmc_csr *Y)
{
    int64_t L = Y->ncols;
    int64_t *cnt = calloc((size_t)L, sizeof *cnt);
    for (int64_t e = 0; e < xmc_csr_nnz(Y); e++)
        cnt[Y->indices[e]]++;
    qsort(cnt, (size_t)L, sizeof *cnt, cmp_desc_i64);
    int64_t last = 0;
    while (last < L && cnt[last] >= 10)
        last++;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int n = 0;
    for (double r = 10; r <= (double)last; r *= 1.25) {
        double x = log(r), y = log((double)cnt[(int64_t)r - 1]);
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
        n++;
    }
    free(cnt);
    assert_true(n >= 8);
    return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

static void test_statistics(void **state)
{
    (void)state;
    const char *d = tu_path("stats");
    const int64_t N = 40000, L = 20000; /* L ~ N: a long tail */
    gen(d, N, L, 11, 1.0, 2);
    char p[1200];
    xmc_error e = {0};
    xmc_csr *Y = NULL, *X = NULL;
    snprintf(p, sizeof p, "%s/trn_X_Y.txt", d);
    assert_int_equal(xmc_csr_read_text(p, &Y, &e), XMC_OK);
    assert_int_equal(Y->ncols, L);
    assert_int_equal(Y->nrows, 32000); /* default test share 0.2 */
    /* Labels per point: 1 + Poisson(3) has mean 4 (duplicates redrawn). */
    double mean = (double)xmc_csr_nnz(Y) / (double)Y->nrows;
    assert_true(mean > 3.7 && mean < 4.3);
    for (int64_t i = 0; i < Y->nrows; i++)
        assert_true(Y->indptr[i + 1] > Y->indptr[i]); /* every point has a label */
    double s1 = zipf_slope(Y);
    print_message("zipf 1.0: labels/point %.3f, log-log slope %.3f\n", mean, s1);
    assert_true(s1 < -0.8 && s1 > -1.2);
    /* A long tail: many labels with 1-5 training points. */
    int64_t *cnt = calloc((size_t)L, sizeof *cnt);
    for (int64_t k = 0; k < xmc_csr_nnz(Y); k++)
        cnt[Y->indices[k]]++;
    int64_t few = 0;
    for (int64_t l = 0; l < L; l++)
        few += cnt[l] >= 1 && cnt[l] <= 5;
    free(cnt);
    print_message("labels with 1-5 training points: %lld of %lld\n", (long long)few, (long long)L);
    assert_true(few > L / 4);
    xmc_csr_free(Y);

    /* Features: sorted ids below F, rows of unit L2 norm. */
    snprintf(p, sizeof p, "%s/trn_X_Xf.txt", d);
    assert_int_equal(xmc_csr_read_text(p, &X, &e), XMC_OK);
    assert_int_equal(X->nrows, 32000);
    assert_int_equal(X->ncols, L + 5000);
    for (int64_t i = 0; i < X->nrows; i++) {
        double s = 0;
        assert_true(X->indptr[i + 1] > X->indptr[i]);
        for (int64_t k = X->indptr[i]; k < X->indptr[i + 1]; k++)
            s += (double)X->values[k] * X->values[k];
        assert_float_equal(s, 1.0, 2e-4);
    }
    xmc_csr_free(X);

    /* Label texts: L lines of 2 to 5 words. */
    size_t n;
    char *t = slurp(d, "Y.txt", &n);
    int64_t lines = 0;
    int words = 1;
    for (size_t k = 0; k < n; k++) {
        if (t[k] == ' ')
            words++;
        else if (t[k] == '\n') {
            assert_true(words >= 2 && words <= 5);
            assert_true(k > 0 && t[k - 1] != '\n');
            lines++;
            words = 1;
        }
    }
    assert_int_equal(lines, L);
    xmc_free(t);

    /* A steeper exponent gives a steeper slope. */
    const char *d2 = tu_path("stats2");
    gen(d2, N, L, 11, 1.5, 2);
    snprintf(p, sizeof p, "%s/trn_X_Y.txt", d2);
    assert_int_equal(xmc_csr_read_text(p, &Y, &e), XMC_OK);
    double s15 = zipf_slope(Y);
    print_message("zipf 1.5: log-log slope %.3f\n", s15);
    assert_true(s15 < -1.25 && s15 > -1.75);
    xmc_csr_free(Y);
}

static void test_loads_as_dataset(void **state)
{
    (void)state;
    const char *d = tu_path("load");
    gen(d, 1000, 50, 3, 1.0, 2);
    char p[1200];
    snprintf(p, sizeof p, "%s/trn", d);
    xmc_dataset *ds = NULL;
    xmc_error e = {0};
    char buf[1200];
    int rc = xmc_dataset_load(p, NULL, &ds, &e);
    if (rc)
        fail_msg("load %s: %s", p, xmc_error_format(&e, buf, sizeof buf));
    assert_int_equal(ds->n, 800);
    assert_int_equal(ds->n_labels, 50);
    assert_non_null(ds->X);
    assert_non_null(ds->texts);
    assert_non_null(ds->label_texts);
    assert_int_equal(ds->label_texts->n, 50);
    assert_int_equal(ds->texts->n, 800);
    for (int64_t l = 0; l < 50; l++)
        assert_true(strlen(xmc_texts_get(ds->label_texts, l)) > 0);
    xmc_dataset_free(ds);
    snprintf(p, sizeof p, "%s/tst", d);
    assert_int_equal(xmc_dataset_load(p, NULL, &ds, &e), XMC_OK);
    assert_int_equal(ds->n, 200);
    xmc_dataset_free(ds);
}

static xmc_csr *read_m(const char *dir, const char *name)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    xmc_csr *m = NULL;
    xmc_error e = {0};
    assert_int_equal(xmc_csr_read_text(p, &m, &e), XMC_OK);
    return m;
}

/* Top-10 of dense scores (n x L) as a CSR score matrix. */
static xmc_csr *top10(const float *S, int64_t n, int64_t L)
{
    xmc_csr *P = NULL;
    xmc_error e = {0};
    assert_int_equal(xmc_csr_create(&P, n, L, n * 10, 1, &e), XMC_OK);
    for (int64_t i = 0; i < n; i++) {
        int32_t best[10];
        int nb = 0;
        for (int64_t l = 0; l < L; l++) {
            int j = nb < 10 ? nb++ : 10;
            if (j == 10 && !(S[i * L + l] > S[i * L + best[9]]))
                continue;
            if (j == 10)
                j = 9;
            while (j > 0 && S[i * L + l] > S[i * L + best[j - 1]]) {
                best[j] = best[j - 1];
                j--;
            }
            best[j] = (int32_t)l;
        }
        /* CSR rows must be sorted by label id. */
        qsort(best, (size_t)nb, sizeof best[0], cmp_i32_asc);
        for (int j = 0; j < nb; j++) {
            P->indices[i * 10 + j] = best[j];
            P->values[i * 10 + j] = S[i * L + best[j]];
        }
        P->indptr[i + 1] = P->indptr[i] + nb;
    }
    return P;
}

static void test_learnable(void **state)
{
    (void)state;
    const char *d = tu_path("learn");
    gen(d, 5000, 200, 21, 1.0, 2);
    xmc_csr *Xt = read_m(d, "trn_X_Xf.txt"), *Yt = read_m(d, "trn_X_Y.txt"),
            *Xs = read_m(d, "tst_X_Xf.txt"), *Ys = read_m(d, "tst_X_Y.txt");
    int64_t L = Yt->ncols, F = Xt->ncols, n = Xs->nrows;
    /* Label centroids W = normalise(Y^T X) (the simplest linear model). */
    float *W = calloc((size_t)(L * F), sizeof *W);
    for (int64_t i = 0; i < Xt->nrows; i++)
        for (int64_t a = Yt->indptr[i]; a < Yt->indptr[i + 1]; a++)
            for (int64_t b = Xt->indptr[i]; b < Xt->indptr[i + 1]; b++)
                W[Yt->indices[a] * F + Xt->indices[b]] += Xt->values[b];
    for (int64_t l = 0; l < L; l++) {
        double s = 0;
        for (int64_t f = 0; f < F; f++)
            s += (double)W[l * F + f] * W[l * F + f];
        for (int64_t f = 0; s > 0 && f < F; f++)
            W[l * F + f] /= (float)sqrt(s);
    }
    float *S = calloc((size_t)(n * L), sizeof *S), *Sf = calloc((size_t)(n * L), sizeof *Sf);
    int64_t *freq = calloc((size_t)L, sizeof *freq);
    for (int64_t k = 0; k < xmc_csr_nnz(Yt); k++)
        freq[Yt->indices[k]]++;
    for (int64_t i = 0; i < n; i++)
        for (int64_t l = 0; l < L; l++) {
            float acc = 0;
            for (int64_t b = Xs->indptr[i]; b < Xs->indptr[i + 1]; b++)
                acc += Xs->values[b] * W[l * F + Xs->indices[b]];
            S[i * L + l] = acc;
            Sf[i * L + l] = (float)freq[l];
        }
    xmc_csr *Pc = top10(S, n, L), *Pf = top10(Sf, n, L);
    const int ks[2] = {1, 5};
    xmc_metrics_opts o = {ks, 2, NULL, NULL};
    xmc_metrics_result rc, rf;
    xmc_error e = {0};
    assert_int_equal(xmc_metrics_eval(Ys, Pc, &o, &rc, &e), XMC_OK);
    assert_int_equal(xmc_metrics_eval(Ys, Pf, &o, &rf, &e), XMC_OK);
    print_message("P@1: label centroids %.3f, label frequency %.3f\n", rc.p[0], rf.p[0]);
    assert_true(rc.p[0] > 0.6);
    assert_true(rf.p[0] < 0.3);
    free(W);
    free(S);
    free(Sf);
    free(freq);
    xmc_csr_free(Xt);
    xmc_csr_free(Yt);
    xmc_csr_free(Xs);
    xmc_csr_free(Ys);
    xmc_csr_free(Pc);
    xmc_csr_free(Pf);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    const char *d = tu_path("bad");
    xmc_synth_config c;
    xmc_error e = {0};
    struct {
        int64_t points, labels, features;
        double test_frac, zipf;
    } cases[] = {
        {0, 10, 0, 0.2, 1.0},   {10, 0, 0, 0.2, 1.0},  {-5, 10, 0, 0.2, 1.0},
        {10, 10, 5, 0.2, 1.0},  {10, 10, 0, 1.0, 1.0}, {10, 10, 0, -0.1, 1.0},
        {10, 10, 0, 0.2, 0.0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        xmc_synth_config_default(&c);
        c.n_points = cases[k].points;
        c.n_labels = cases[k].labels;
        c.n_features = cases[k].features;
        c.test_frac = cases[k].test_frac;
        c.zipf = cases[k].zipf;
        xmc_error_clear(&e);
        assert_int_equal(xmc_synth_write(&c, d, NULL, &e), XMC_EINVAL);
        assert_true(strlen(e.msg) > 0);
    }
    assert_false(xmc_file_exists(d)); /* refused before any work */
    /* Tiny but valid: one label, one point (kept in train). */
    xmc_synth_config_default(&c);
    c.n_points = 1;
    c.n_labels = 1;
    xmc_synth_stats st;
    assert_int_equal(xmc_synth_write(&c, d, &st, &e), XMC_OK);
    assert_int_equal(st.n_train, 1);
    assert_int_equal(st.n_test, 0);
    /* Allocation failures are reported and leave no temp files behind. */
    size_t before = xmc_mem_current();
    for (int n = 1; n <= 6; n++) {
        xmc_error_clear(&e);
        xmc_mem_fail_after((uint64_t)n);
        int rc = xmc_synth_write(&c, d, NULL, &e);
        xmc_mem_fail_after(0);
        assert_true(rc == XMC_OK || rc == XMC_ENOMEM);
        assert_int_equal(xmc_mem_current(), before);
    }
    assert_int_equal(tu_system("ls '%s' | grep -q tmp", d), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_statistics),
        cmocka_unit_test(test_loads_as_dataset),
        cmocka_unit_test(test_learnable),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
