/* Gandalf augmentation: G = YᵀY and the soft targets on a hand-built label
 * matrix (thresholds, strict ties, self and unseen labels, sym), thread-count
 * independence against a dense reference, the augmented dataset (texts,
 * features, subsample), error paths, allocation failures, and the round trip
 * of the written files through the readers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"
#include "testutil.h"
#include "xmc/augment.h"

/* ------------------------------------------------------------ fixture
 *
 * N = 6 points, L = 5 labels (label 4 never occurs):
 *   p0 {0,1}  p1 {0,1,2}  p2 {0,2}  p3 {0}  p4 {1,3}  p5 {0,1}
 * Frequencies G_jj: l0 = 5, l1 = 4, l2 = 2, l3 = 1, l4 = 0.
 * G = YᵀY (symmetric), nnz = 3 + 4 + 3 + 2 + 0 = 12:
 *        0  1  2  3  4
 *   0 [  5  3  2  .  . ]
 *   1 [  3  4  1  1  . ]
 *   2 [  2  1  2  .  . ]
 *   3 [  .  1  .  1  . ]
 *   4 [  .  .  .  .  . ]
 * Gandalf targets y^G_j[i] = G_ij / G_jj (row j):
 *   y0 = {0: 1, 1: 3/5 = .6, 2: 2/5 = .4}
 *   y1 = {0: 3/4, 1: 1, 2: 1/4, 3: 1/4}
 *   y2 = {0: 2/2 = 1, 1: 1/2, 2: 1}
 *   y3 = {1: 1/1, 3: 1}
 *   y4 = {4: 1}                       (unseen: self target only)
 * Sym targets ½(G_ij/G_jj + G_ij/G_ii):
 *   s0 = {0: 1, 1: ½(3/5+3/4) = .675, 2: ½(2/5+2/2) = .7}
 *   s1 = {0: .675, 1: 1, 2: ½(1/4+1/2) = .375, 3: ½(1/4+1/1) = .625}
 *   s2 = {0: .7, 1: .375, 2: 1}
 *   s3 = {1: .625, 3: 1}
 *   s4 = {4: 1}
 */
static const int fix_rows[6][4] = {{0, 1, -1}, {0, 1, 2, -1}, {0, 2, -1},
                                   {0, -1},    {1, 3, -1},    {0, 1, -1}};

static xmc_csr *fixture_Y(int with_values)
{
    xmc_csr *Y;
    xmc_error e = {0};
    assert_int_equal(xmc_csr_create(&Y, 6, 5, 12, with_values, &e), XMC_OK);
    int64_t w = 0;
    for (int r = 0; r < 6; r++) {
        for (int k = 0; fix_rows[r][k] >= 0; k++) {
            Y->indices[w] = fix_rows[r][k];
            if (with_values)
                Y->values[w] = 1.0f;
            w++;
        }
        Y->indptr[r + 1] = w;
    }
    assert_int_equal(w, 12);
    return Y;
}

/* Row j of m must be exactly {idx[k]: val[k]}. */
static void expect_row(const xmc_csr *m, int64_t j, int n, const int *idx, const float *val)
{
    int64_t b = m->indptr[j], e = m->indptr[j + 1];
    if (e - b != n)
        fail_msg("row %lld: %lld entries, expected %d", (long long)j, (long long)(e - b), n);
    for (int k = 0; k < n; k++) {
        assert_int_equal(m->indices[b + k], idx[k]);
        float v = m->values ? m->values[b + k] : 1.0f;
        if (v != val[k])
            fail_msg("row %lld col %d: %.9g, expected %.9g", (long long)j, idx[k], v, val[k]);
    }
}

/* ------------------------------------------------------------ G */

static void test_cooc_counts(void **state)
{
    (void)state;
    xmc_csr *Y = fixture_Y(0), *G;
    xmc_error e = {0};
    int64_t full = 0;
    assert_int_equal(xmc_augment_cooc(Y, 0.0, &G, &full, &e), XMC_OK);
    assert_int_equal(full, 12);
    assert_int_equal(xmc_csr_nnz(G), 12);
    expect_row(G, 0, 3, (int[]){0, 1, 2}, (float[]){5, 3, 2});
    expect_row(G, 1, 4, (int[]){0, 1, 2, 3}, (float[]){3, 4, 1, 1});
    expect_row(G, 2, 3, (int[]){0, 1, 2}, (float[]){2, 1, 2});
    expect_row(G, 3, 2, (int[]){1, 3}, (float[]){1, 1});
    expect_row(G, 4, 0, NULL, NULL); /* unseen: no diagonal in G itself */
    xmc_csr_free(G);

    /* δ = 0.5 during the product: keep G_ij iff G_ij/G_jj > 0.5, diagonal
     * always. Row 0: 3/5 kept, 2/5 dropped. Row 1: 3/4 kept, 1/4 dropped.
     * Row 2: 2/2 kept, 1/2 is a tie: dropped. Row 3: 1/1 kept. */
    assert_int_equal(xmc_augment_cooc(Y, 0.5, &G, &full, &e), XMC_OK);
    assert_int_equal(full, 12); /* nnz before thresholding is still reported */
    assert_int_equal(xmc_csr_nnz(G), 8);
    expect_row(G, 0, 2, (int[]){0, 1}, (float[]){5, 3});
    expect_row(G, 1, 2, (int[]){0, 1}, (float[]){3, 4});
    expect_row(G, 2, 2, (int[]){0, 2}, (float[]){2, 2});
    expect_row(G, 3, 2, (int[]){1, 3}, (float[]){1, 1});
    assert_int_equal(xmc_csr_check(G, "G", &e), XMC_OK);
    xmc_csr_free(G);
    xmc_csr_free(Y);
}

/* ------------------------------------------------------------ targets */

static xmc_csr *targets(const xmc_csr *Y, xmc_augment_kind k, double delta,
                        xmc_augment_stats *st)
{
    xmc_augment_opts o;
    xmc_augment_opts_default(&o);
    o.kind = k;
    o.delta = delta;
    xmc_csr *T;
    xmc_error e = {0};
    int rc = xmc_augment_targets(Y, &o, &T, st, &e);
    if (rc)
        fail_msg("targets: %s", e.msg);
    assert_int_equal(xmc_csr_check(T, "T", &e), XMC_OK);
    return T;
}

static void test_targets_cooc(void **state)
{
    (void)state;
    xmc_csr *Y = fixture_Y(1);
    xmc_augment_stats st;

    /* Default δ = 0.1: every co-occurrence survives (the smallest is 1/4). */
    xmc_csr *T = targets(Y, XMC_AUG_COOC, XMC_AUGMENT_DEFAULT_DELTA, &st);
    assert_int_equal(st.nnz_g, 12);
    assert_int_equal(st.kept, 13); /* 12 + the self target of unseen label 4 */
    assert_int_equal(st.unseen, 1);
    expect_row(T, 0, 3, (int[]){0, 1, 2}, (float[]){1, (float)(3.0 / 5), (float)(2.0 / 5)});
    expect_row(T, 1, 4, (int[]){0, 1, 2, 3}, (float[]){0.75f, 1, 0.25f, 0.25f});
    expect_row(T, 2, 3, (int[]){0, 1, 2}, (float[]){1, 0.5f, 1});
    expect_row(T, 3, 2, (int[]){1, 3}, (float[]){1, 1});
    expect_row(T, 4, 1, (int[]){4}, (float[]){1});
    xmc_csr_free(T);

    /* δ = 0.25: the rule is strict, so the two ties 1/4 in row 1 go. */
    T = targets(Y, XMC_AUG_COOC, 0.25, &st);
    expect_row(T, 1, 2, (int[]){0, 1}, (float[]){0.75f, 1});
    assert_int_equal(st.kept, 11);
    xmc_csr_free(T);

    /* Just below the tie they are kept again: the boundary is exactly δ. */
    T = targets(Y, XMC_AUG_COOC, 0.25 - 1e-12, &st);
    expect_row(T, 1, 4, (int[]){0, 1, 2, 3}, (float[]){0.75f, 1, 0.25f, 0.25f});
    xmc_csr_free(T);

    /* δ = 0.4 is not a binary fraction: 2/5 must still compare as a tie (the
     * ratio is computed in double, correctly rounded like the literal). */
    T = targets(Y, XMC_AUG_COOC, 0.4, &st);
    expect_row(T, 0, 2, (int[]){0, 1}, (float[]){1, (float)(3.0 / 5)});
    expect_row(T, 2, 3, (int[]){0, 1, 2}, (float[]){1, 0.5f, 1});
    xmc_csr_free(T);

    /* δ = 1: nothing exceeds 1 — only the self targets remain, even where
     * P[0|2] = 1 (label 2 always co-occurs with label 0). */
    T = targets(Y, XMC_AUG_COOC, 1.0, &st);
    for (int j = 0; j < 5; j++)
        expect_row(T, j, 1, (int[]){j}, (float[]){1});
    xmc_csr_free(T);
    xmc_csr_free(Y);
}

static void test_targets_sym(void **state)
{
    (void)state;
    xmc_csr *Y = fixture_Y(0);
    xmc_augment_stats st;
    xmc_csr *T = targets(Y, XMC_AUG_SYM, 0.1, &st);
    float a = (float)(0.5 * (3.0 / 5 + 3.0 / 4)), b = (float)(0.5 * (2.0 / 5 + 1.0));
    expect_row(T, 0, 3, (int[]){0, 1, 2}, (float[]){1, a, b});
    expect_row(T, 1, 4, (int[]){0, 1, 2, 3}, (float[]){a, 1, 0.375f, 0.625f});
    expect_row(T, 2, 3, (int[]){0, 1, 2}, (float[]){b, 0.375f, 1});
    expect_row(T, 3, 2, (int[]){1, 3}, (float[]){0.625f, 1});
    expect_row(T, 4, 1, (int[]){4}, (float[]){1});
    /* Symmetric by construction. */
    xmc_csr *TT;
    xmc_error e = {0};
    assert_int_equal(xmc_csr_transpose(T, &TT, &e), XMC_OK);
    assert_true(xmc_csr_equal(T, TT));
    xmc_csr_free(TT);
    xmc_csr_free(T);

    /* δ = 0.375 exactly: the tie .375 between labels 1 and 2 is dropped
     * both ways; .625 survives. */
    T = targets(Y, XMC_AUG_SYM, 0.375, &st);
    expect_row(T, 1, 3, (int[]){0, 1, 3}, (float[]){a, 1, 0.625f});
    expect_row(T, 2, 2, (int[]){0, 2}, (float[]){b, 1});
    xmc_csr_free(T);
    xmc_csr_free(Y);
}

static void test_targets_self(void **state)
{
    (void)state;
    xmc_csr *Y = fixture_Y(0);
    xmc_augment_stats st;
    xmc_csr *T = targets(Y, XMC_AUG_SELF, 0.1, &st);
    for (int j = 0; j < 5; j++)
        expect_row(T, j, 1, (int[]){j}, (float[]){1});
    assert_int_equal(st.nnz_g, -1);
    assert_int_equal(st.kept, 5);
    assert_int_equal(st.unseen, 1);
    xmc_csr_free(T);
    xmc_csr_free(Y);
}

/* Soft or explicit-zero label values: only entries > 0 are positives. */
static void test_binary_pattern(void **state)
{
    (void)state;
    xmc_csr *Y = fixture_Y(1);
    /* Turn p4's label 3 into a stored 0 and p0's labels into soft 0.3: label 3
     * is now unseen, the rest unchanged (the pattern is binary). */
    Y->values[Y->indptr[4] + 1] = 0.0f;
    Y->values[0] = Y->values[1] = 0.3f;
    xmc_augment_stats st;
    xmc_csr *T = targets(Y, XMC_AUG_COOC, 0.1, &st);
    assert_int_equal(st.unseen, 2);
    expect_row(T, 0, 3, (int[]){0, 1, 2}, (float[]){1, (float)(3.0 / 5), (float)(2.0 / 5)});
    expect_row(T, 1, 3, (int[]){0, 1, 2}, (float[]){0.75f, 1, 0.25f});
    expect_row(T, 3, 1, (int[]){3}, (float[]){1});
    xmc_csr_free(T);
    xmc_csr_free(Y);
}

/* ------------------------------------------------------------ threads */

/* A random label matrix with power-law label frequencies (some labels never
 * occur), as XMC data has. */
static xmc_csr *random_Y(int64_t N, int64_t L, uint64_t seed)
{
    xmc_rng r;
    xmc_rng_seed(&r, seed, 1);
    int64_t cap = N * 8, w = 0;
    int64_t *rows = malloc((size_t)cap * sizeof *rows);
    int32_t *cols = malloc((size_t)cap * sizeof *cols);
    for (int64_t n = 0; n < N; n++) {
        int k = 1 + (int)xmc_rng_below(&r, 6);
        for (int q = 0; q < k; q++) {
            double u = xmc_rng_uniform(&r);
            int64_t l = (int64_t)((double)L * u * u * u); /* skewed to small ids */
            if (l >= L - 7)
                l = L - 8; /* the last 7 labels stay unseen */
            rows[w] = n;
            cols[w++] = (int32_t)l;
        }
    }
    xmc_csr *Y, *B;
    xmc_error e = {0};
    assert_int_equal(xmc_csr_from_triplets(N, L, w, rows, cols, NULL, &Y, &e), XMC_OK);
    free(rows);
    free(cols);
    /* Duplicates were summed: back to a binary matrix. */
    assert_int_equal(xmc_csr_create(&B, N, L, xmc_csr_nnz(Y), 1, &e), XMC_OK);
    memcpy(B->indptr, Y->indptr, (size_t)(N + 1) * sizeof *B->indptr);
    memcpy(B->indices, Y->indices, (size_t)xmc_csr_nnz(Y) * sizeof *B->indices);
    for (int64_t k = 0; k < xmc_csr_nnz(Y); k++)
        B->values[k] = 1.0f;
    xmc_csr_free(Y);
    return B;
}

static void test_threads_and_dense_reference(void **state)
{
    (void)state;
    const int64_t N = 40000, L = 300;
    xmc_csr *Y = random_Y(N, L, 42);
    /* Large enough for the threaded path: Σ|y_n|² >= PAR_MIN_WORK (2^19) in
     * augment.c. */
    int64_t work = 0;
    for (int64_t n = 0; n < N; n++)
        work += (Y->indptr[n + 1] - Y->indptr[n]) * (Y->indptr[n + 1] - Y->indptr[n]);
    assert_true(work >= (1 << 19));
    /* Dense reference G. */
    int32_t *D = calloc((size_t)(L * L), sizeof *D);
    for (int64_t n = 0; n < N; n++)
        for (int64_t a = Y->indptr[n]; a < Y->indptr[n + 1]; a++)
            for (int64_t b = Y->indptr[n]; b < Y->indptr[n + 1]; b++)
                D[Y->indices[a] * L + Y->indices[b]]++;
    int64_t dense_nnz = 0;
    for (int64_t k = 0; k < L * L; k++)
        dense_nnz += D[k] > 0;

    const double deltas[] = {0.0, 0.1, 0.3};
    const xmc_augment_kind kinds[] = {XMC_AUG_COOC, XMC_AUG_SYM};
    for (size_t di = 0; di < 3; di++)
        for (size_t ki = 0; ki < 2; ki++) {
            xmc_csr *T[3];
            xmc_augment_stats st;
            for (int t = 1; t <= 3; t++) {
                xmc_set_threads(t);
                T[t - 1] = targets(Y, kinds[ki], deltas[di], &st);
                assert_int_equal(st.nnz_g, dense_nnz);
            }
            xmc_set_threads(2);
            assert_true(xmc_csr_equal(T[0], T[1]));
            assert_true(xmc_csr_equal(T[0], T[2]));
            /* Against the dense reference, entry by entry. */
            int64_t expect_kept = 0;
            for (int64_t j = 0; j < L; j++) {
                int64_t gjj = D[j * L + j], p = T[0]->indptr[j];
                if (gjj == 0) {
                    expect_row(T[0], j, 1, (int[]){(int)j}, (float[]){1});
                    expect_kept++;
                    continue;
                }
                for (int64_t i = 0; i < L; i++) {
                    int64_t gij = D[j * L + i], gii = D[i * L + i];
                    if (!gij)
                        continue;
                    double v = (double)gij / (double)gjj;
                    if (kinds[ki] == XMC_AUG_SYM)
                        v = 0.5 * (v + (double)gij / (double)gii);
                    if (i != j && !(v > deltas[di]))
                        continue;
                    expect_kept++;
                    assert_true(p < T[0]->indptr[j + 1]);
                    assert_int_equal(T[0]->indices[p], i);
                    assert_true(T[0]->values[p] == (i == j ? 1.0f : (float)v));
                    p++;
                }
                assert_int_equal(p, T[0]->indptr[j + 1]);
            }
            assert_int_equal(expect_kept, xmc_csr_nnz(T[0]));
            for (int t = 0; t < 3; t++)
                xmc_csr_free(T[t]);
        }
    free(D);
    xmc_csr_free(Y);
}

/* ------------------------------------------------------------ dataset */

static const char *point_texts[6] = {"doc zero", "doc one", "doc two",
                                     "doc three", "doc four", "doc five"};
static const char *label_names[5] = {"grain", "wheat", "corn", "ship", "gold"};

static xmc_dataset *fixture_ds(int texts, int names, int features)
{
    xmc_dataset *ds;
    xmc_error e = {0};
    assert_int_equal(xmc_dataset_alloc(&ds, "fixture", &e), XMC_OK);
    ds->Y = fixture_Y(0);
    if (texts)
        assert_int_equal(xmc_texts_create(point_texts, 6, &ds->texts, &e), XMC_OK);
    if (names)
        assert_int_equal(xmc_texts_create(label_names, 5, &ds->label_names, &e), XMC_OK);
    if (features) {
        /* X = 6 x 3 with X[n] = {n % 3: n + 1}. */
        assert_int_equal(xmc_csr_create(&ds->X, 6, 3, 6, 1, &e), XMC_OK);
        for (int n = 0; n < 6; n++) {
            ds->X->indptr[n + 1] = n + 1;
            ds->X->indices[n] = n % 3;
            ds->X->values[n] = (float)(n + 1);
        }
    }
    assert_int_equal(xmc_dataset_finish(ds, "fixture", &e), XMC_OK);
    return ds;
}

static void test_augment_texts(void **state)
{
    (void)state;
    xmc_dataset *ds = fixture_ds(1, 1, 0), *aug;
    xmc_error e = {0};
    xmc_augment_stats st;
    assert_int_equal(xmc_augment_ex(ds, NULL, &aug, &st, &e), XMC_OK);
    assert_int_equal(aug->n, 11);
    assert_int_equal(aug->n_labels, 5);
    assert_int_equal(st.rows_in, 6);
    assert_int_equal(st.rows_out, 11);
    assert_null(aug->X);
    assert_int_equal(aug->texts->n, 11);
    assert_string_equal(xmc_texts_get(aug->texts, 2), "doc two");
    assert_string_equal(xmc_texts_get(aug->texts, 6), "grain");
    assert_string_equal(xmc_texts_get(aug->texts, 10), "gold");
    assert_non_null(aug->label_names);
    assert_string_equal(xmc_texts_get(aug->label_names, 1), "wheat");
    /* D keeps its labels (now with values 1); Z carries y^G. */
    expect_row(aug->Y, 1, 3, (int[]){0, 1, 2}, (float[]){1, 1, 1});
    expect_row(aug->Y, 6, 3, (int[]){0, 1, 2}, (float[]){1, (float)(3.0 / 5), (float)(2.0 / 5)});
    expect_row(aug->Y, 7, 4, (int[]){0, 1, 2, 3}, (float[]){0.75f, 1, 0.25f, 0.25f});
    expect_row(aug->Y, 10, 1, (int[]){4}, (float[]){1});
    assert_int_equal(xmc_csr_check(aug->Y, "aug", &e), XMC_OK);
    xmc_dataset_free(aug);

    /* Label texts win over label names. */
    const char *lt[5] = {"grain cereal", "wheat", "corn maize", "ship", "gold metal"};
    assert_int_equal(xmc_texts_create(lt, 5, &ds->label_texts, &e), XMC_OK);
    assert_int_equal(xmc_augment(ds, NULL, &aug, &e), XMC_OK);
    assert_string_equal(xmc_texts_get(aug->texts, 8), "corn maize");
    assert_int_equal(aug->label_texts->n, 5);
    xmc_dataset_free(aug);
    xmc_dataset_free(ds);
}

static void test_augment_features(void **state)
{
    (void)state;
    xmc_error e = {0};
    xmc_dataset *aug;
    xmc_augment_opts o;
    xmc_augment_opts_default(&o);

    /* X and texts, no label features: Z rows have texts and empty features. */
    xmc_dataset *ds = fixture_ds(1, 1, 1);
    assert_int_equal(xmc_augment(ds, &o, &aug, &e), XMC_OK);
    assert_int_equal(aug->X->nrows, 11);
    assert_int_equal(aug->n_features, 3);
    expect_row(aug->X, 4, 1, (int[]){1}, (float[]){5});
    for (int j = 6; j < 11; j++)
        expect_row(aug->X, j, 0, NULL, NULL);
    xmc_dataset_free(aug);
    xmc_dataset_free(ds);

    /* X only, with label features Xf (5 x 3, Xf[j] = {j % 3: 10 + j}). */
    ds = fixture_ds(0, 0, 1);
    xmc_csr *Xf;
    assert_int_equal(xmc_csr_create(&Xf, 5, 3, 5, 1, &e), XMC_OK);
    for (int j = 0; j < 5; j++) {
        Xf->indptr[j + 1] = j + 1;
        Xf->indices[j] = j % 3;
        Xf->values[j] = (float)(10 + j);
    }
    o.label_features = Xf;
    assert_int_equal(xmc_augment(ds, &o, &aug, &e), XMC_OK);
    assert_null(aug->texts);
    expect_row(aug->X, 0, 1, (int[]){0}, (float[]){1});
    expect_row(aug->X, 9, 1, (int[]){0}, (float[]){13});
    expect_row(aug->Y, 9, 2, (int[]){1, 3}, (float[]){1, 1});
    xmc_dataset_free(aug);

    /* Label features of the wrong width. */
    Xf->ncols = 4;
    tu_assert_error(xmc_augment(ds, &o, &aug, &e), &e, XMC_EINVAL, "fixture", 0);
    assert_null(aug);
    assert_non_null(strstr(e.msg, "label features"));
    Xf->ncols = 3;
    xmc_csr_free(Xf);

    /* X only, no label features: a clear error. */
    xmc_error_clear(&e);
    o.label_features = NULL;
    tu_assert_error(xmc_augment(ds, &o, &aug, &e), &e, XMC_EINVAL, "fixture", 0);
    assert_non_null(strstr(e.msg, "requires label texts or label features"));
    xmc_dataset_free(ds);
}

/* PIFA label features (xmc extension). With X[n] = {n % 3: n + 1}, every
 * x_n / ||x_n|| is the unit vector e_{n % 3}, so (before normalising)
 *   z0 = p0+p1+p2+p3+p5 = e0+e1+e2+e0+e2 = (2, 1, 2)  -> /3
 *   z1 = p0+p1+p4+p5    = e0+e1+e1+e2    = (1, 2, 1)  -> /sqrt(6)
 *   z2 = p1+p2          = e1+e2          = (0, 1, 1)  -> /sqrt(2)
 *   z3 = p4             = e1
 *   z4 = {}             (unseen) */
static void expect_row_near(const xmc_csr *m, int64_t j, int n, const int *idx,
                            const double *val)
{
    int64_t b = m->indptr[j];
    assert_int_equal(m->indptr[j + 1] - b, n);
    for (int k = 0; k < n; k++) {
        assert_int_equal(m->indices[b + k], idx[k]);
        if (fabs(m->values[b + k] - val[k]) > 1e-6)
            fail_msg("row %lld col %d: %.9g, expected %.9g", (long long)j, idx[k],
                     m->values[b + k], val[k]);
    }
}

static void test_pifa(void **state)
{
    (void)state;
    xmc_dataset *ds = fixture_ds(0, 0, 1), *aug;
    xmc_csr *Z;
    xmc_error e = {0};
    assert_int_equal(xmc_augment_pifa(ds->X, ds->Y, &Z, &e), XMC_OK);
    double s6 = 1 / sqrt(6.0), s2 = 1 / sqrt(2.0);
    expect_row_near(Z, 0, 3, (int[]){0, 1, 2}, (double[]){2 / 3.0, 1 / 3.0, 2 / 3.0});
    expect_row_near(Z, 1, 3, (int[]){0, 1, 2}, (double[]){s6, 2 * s6, s6});
    expect_row_near(Z, 2, 2, (int[]){1, 2}, (double[]){s2, s2});
    expect_row_near(Z, 3, 1, (int[]){1}, (double[]){1});
    expect_row_near(Z, 4, 0, NULL, NULL);

    /* In the augmented set: label points carry these rows. */
    xmc_augment_opts o;
    xmc_augment_opts_default(&o);
    assert_int_equal(xmc_augment_parse("gandalf:0.2+pifa", &o, &e), XMC_OK);
    assert_int_equal(o.pifa, 1);
    assert_true(o.delta == 0.2);
    assert_int_equal(xmc_augment(ds, &o, &aug, &e), XMC_OK);
    assert_int_equal(aug->n, 11);
    for (int64_t j = 0; j < 5; j++) {
        int64_t a = aug->X->indptr[6 + j], n = Z->indptr[j + 1] - Z->indptr[j];
        assert_int_equal(aug->X->indptr[7 + j] - a, n);
        assert_memory_equal(aug->X->values + a, Z->values + Z->indptr[j],
                            (size_t)n * sizeof(float));
    }
    xmc_dataset_free(aug);
    xmc_csr_free(Z);
    xmc_dataset_free(ds);

    /* Thread-count independence on random data. */
    /* Σ|y_n| |x_n| = 5 nnz(Y) >= PAR_MIN_WORK (2^19): the threaded path. */
    const int64_t N = 40000, L = 200, F = 500;
    xmc_csr *Y = random_Y(N, L, 7), *X, *Z1, *Z2;
    assert_true(5 * xmc_csr_nnz(Y) >= (1 << 19));
    xmc_rng r;
    xmc_rng_seed(&r, 9, 0);
    assert_int_equal(xmc_csr_create(&X, N, F, N * 5, 1, &e), XMC_OK);
    for (int64_t n = 0; n < N; n++) {
        X->indptr[n + 1] = X->indptr[n] + 5;
        for (int q = 0; q < 5; q++) {
            X->indices[n * 5 + q] = (int32_t)(q * 100 + (int)xmc_rng_below(&r, 100));
            X->values[n * 5 + q] = (float)xmc_rng_uniform(&r);
        }
    }
    xmc_set_threads(1);
    assert_int_equal(xmc_augment_pifa(X, Y, &Z1, &e), XMC_OK);
    xmc_set_threads(2);
    assert_int_equal(xmc_augment_pifa(X, Y, &Z2, &e), XMC_OK);
    assert_true(xmc_csr_equal(Z1, Z2));
    assert_int_equal(xmc_csr_check(Z1, "Z", &e), XMC_OK);
    xmc_csr_free(Z1);
    xmc_csr_free(Z2);
    xmc_csr_free(X);
    xmc_csr_free(Y);
}

static void test_errors(void **state)
{
    (void)state;
    xmc_error e = {0};
    static xmc_dataset dummy;
    xmc_dataset *aug = &dummy; /* must be reset to NULL */

    /* Texts but neither label texts nor names. */
    xmc_dataset *ds = fixture_ds(1, 0, 0);
    tu_assert_error(xmc_augment(ds, NULL, &aug, &e), &e, XMC_EINVAL, "fixture", 0);
    assert_null(aug);
    assert_non_null(strstr(e.msg, "requires label texts or label features"));

    /* Bad options. */
    xmc_augment_opts o;
    xmc_augment_opts_default(&o);
    o.delta = 1.5;
    xmc_error_clear(&e);
    assert_int_equal(xmc_texts_create(label_names, 5, &ds->label_names, &e), XMC_OK);
    tu_assert_error(xmc_augment(ds, &o, &aug, &e), &e, XMC_EINVAL, NULL, 0);
    o.delta = NAN;
    xmc_error_clear(&e);
    tu_assert_error(xmc_augment(ds, &o, &aug, &e), &e, XMC_EINVAL, NULL, 0);
    o.delta = 0.1;
    o.sample = 12; /* > N + L = 11 */
    xmc_error_clear(&e);
    tu_assert_error(xmc_augment(ds, &o, &aug, &e), &e, XMC_EINVAL, "fixture", 0);
    o.sample = -2;
    xmc_error_clear(&e);
    tu_assert_error(xmc_augment(ds, &o, &aug, &e), &e, XMC_EINVAL, "fixture", 0);
    xmc_dataset_free(ds);

    /* Recipe strings as `xmc train --augment` takes them. */
    xmc_augment_opts_default(&o);
    assert_int_equal(xmc_augment_parse("gandalf", &o, &e), XMC_OK);
    assert_int_equal(o.kind, XMC_AUG_COOC);
    assert_true(o.delta == 0.1);
    assert_int_equal(xmc_augment_parse("sym:0.25", &o, &e), XMC_OK);
    assert_int_equal(o.kind, XMC_AUG_SYM);
    assert_true(o.delta == 0.25);
    assert_int_equal(xmc_augment_parse("self", &o, &e), XMC_OK);
    assert_int_equal(o.kind, XMC_AUG_SELF);
    assert_true(o.delta == 0.25); /* left alone without ':' */
    xmc_error_clear(&e);
    assert_int_equal(xmc_augment_parse("gandalf:", &o, &e), XMC_EINVAL);
    xmc_error_clear(&e);
    assert_int_equal(xmc_augment_parse("gandalf:2", &o, &e), XMC_EINVAL);
    xmc_error_clear(&e);
    assert_int_equal(xmc_augment_parse("self+pif", &o, &e), XMC_EINVAL);
    xmc_error_clear(&e);
    assert_int_equal(xmc_augment_parse("mixup", &o, &e), XMC_EINVAL);
    assert_non_null(strstr(e.msg, "mixup"));
    assert_int_equal(o.kind, XMC_AUG_SELF); /* unchanged on failure */
}

/* Index of a row's text among the unaugmented D ∪ Z order. */
static int64_t text_id(const char *s)
{
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, point_texts[i]))
            return i;
    for (int j = 0; j < 5; j++)
        if (!strcmp(s, label_names[j]))
            return 6 + j;
    fail_msg("unknown text '%s'", s);
    return -1;
}

static void test_sample(void **state)
{
    (void)state;
    xmc_dataset *ds = fixture_ds(1, 1, 0), *full, *a, *b;
    xmc_error e = {0};
    xmc_augment_opts o;
    xmc_augment_opts_default(&o);
    assert_int_equal(xmc_augment(ds, &o, &full, &e), XMC_OK);

    o.sample = 7;
    o.seed = 5;
    xmc_augment_stats st;
    assert_int_equal(xmc_augment_ex(ds, &o, &a, &st, &e), XMC_OK);
    assert_int_equal(a->n, 7);
    assert_int_equal(st.rows_out, 7);
    assert_int_equal(xmc_augment(ds, &o, &b, &e), XMC_OK);
    /* Same seed, same rows. */
    assert_true(xmc_csr_equal(a->Y, b->Y));
    for (int64_t i = 0; i < 7; i++)
        assert_string_equal(xmc_texts_get(a->texts, i), xmc_texts_get(b->texts, i));
    /* Distinct rows of D ∪ Z, in order, each with its own labels. */
    int64_t prev = -1;
    for (int64_t i = 0; i < 7; i++) {
        int64_t id = text_id(xmc_texts_get(a->texts, i));
        assert_true(id > prev);
        prev = id;
        int64_t n = a->Y->indptr[i + 1] - a->Y->indptr[i];
        assert_int_equal(n, full->Y->indptr[id + 1] - full->Y->indptr[id]);
        assert_memory_equal(a->Y->indices + a->Y->indptr[i],
                            full->Y->indices + full->Y->indptr[id], (size_t)n * sizeof(int32_t));
    }
    xmc_dataset_free(b);

    /* Other seeds give other subsets (all 11-choose-7 = 330 are possible):
     * at least one of several differs. */
    int differ = 0;
    for (uint64_t s = 6; s < 12 && !differ; s++) {
        o.seed = s;
        assert_int_equal(xmc_augment(ds, &o, &b, &e), XMC_OK);
        differ = !xmc_csr_equal(a->Y, b->Y);
        for (int64_t i = 0; i < 7 && !differ; i++)
            differ = strcmp(xmc_texts_get(a->texts, i), xmc_texts_get(b->texts, i)) != 0;
        xmc_dataset_free(b);
    }
    assert_true(differ);
    xmc_dataset_free(a);

    /* -1: the compute budget of D (N = 6 rows). N + L: everything. */
    o.sample = XMC_AUGMENT_SAMPLE_ORIGINAL;
    assert_int_equal(xmc_augment(ds, &o, &a, &e), XMC_OK);
    assert_int_equal(a->n, 6);
    xmc_dataset_free(a);
    o.sample = 11;
    assert_int_equal(xmc_augment(ds, &o, &a, &e), XMC_OK);
    assert_true(xmc_csr_equal(a->Y, full->Y));
    xmc_dataset_free(a);

    /* Uniformity, roughly: over 400 seeds, sampling 5 of 11 rows, each row
     * is drawn 400 * 5/11 ≈ 182 times (binomial sd ≈ 10; allow ±50). */
    int64_t hits[11] = {0};
    o.sample = 5;
    for (uint64_t s = 0; s < 400; s++) {
        o.seed = s;
        assert_int_equal(xmc_augment(ds, &o, &a, &e), XMC_OK);
        for (int64_t i = 0; i < 5; i++)
            hits[text_id(xmc_texts_get(a->texts, i))]++;
        xmc_dataset_free(a);
    }
    for (int i = 0; i < 11; i++)
        if (hits[i] < 132 || hits[i] > 232)
            fail_msg("row %d sampled %lld times of 400, expected ~182", i, (long long)hits[i]);
    xmc_dataset_free(full);
    xmc_dataset_free(ds);
}

/* Every allocation failure is reported as ENOMEM and leaks nothing. */
static void test_alloc_failures(void **state)
{
    (void)state;
    xmc_dataset *ds = fixture_ds(1, 1, 1), *aug;
    xmc_augment_opts o;
    xmc_augment_opts_default(&o);
    o.sample = 8;
    xmc_error e = {0};
    size_t before = xmc_mem_current();
    int ok = 0;
    for (uint64_t k = 1; k < 200 && !ok; k++) {
        xmc_error_clear(&e);
        xmc_mem_fail_after(k);
        int rc = xmc_augment(ds, &o, &aug, &e);
        xmc_mem_fail_after(0);
        if (rc == XMC_OK) {
            ok = 1;
            xmc_dataset_free(aug);
        } else {
            assert_int_equal(rc, XMC_ENOMEM);
            assert_null(aug);
        }
        assert_int_equal(xmc_mem_current(), before);
    }
    assert_true(ok);
    xmc_dataset_free(ds);
}

/* ------------------------------------------------------------ files */

static void test_roundtrip(void **state)
{
    (void)state;
    xmc_dataset *ds = fixture_ds(1, 1, 0), *aug, *back;
    xmc_error e = {0};
    xmc_augment_opts o;
    xmc_augment_opts_default(&o);
    o.kind = XMC_AUG_SYM; /* values like .675 that must survive the text format */
    assert_int_equal(xmc_augment(ds, &o, &aug, &e), XMC_OK);
    char prefix[1300];
    snprintf(prefix, sizeof prefix, "%s/aug/trn", tu_tmpdir());
    assert_int_equal(xmc_mkdir_p(tu_path("aug"), &e), XMC_OK);
    int rc = xmc_dataset_write(aug, prefix, &e);
    if (rc)
        fail_msg("write: %s", e.msg);
    rc = xmc_dataset_load(prefix, NULL, &back, &e);
    if (rc)
        fail_msg("load: %s", e.msg);
    assert_int_equal(back->n, 11);
    assert_true(xmc_csr_equal(aug->Y, back->Y));
    assert_non_null(back->texts);
    for (int64_t i = 0; i < 11; i++)
        assert_string_equal(xmc_texts_get(aug->texts, i), xmc_texts_get(back->texts, i));
    const xmc_texts *lt = back->label_texts ? back->label_texts : back->label_names;
    assert_non_null(lt);
    assert_string_equal(xmc_texts_get(lt, 3), "ship");
    xmc_dataset_free(back);
    xmc_dataset_free(aug);
    xmc_dataset_free(ds);
}

/* ------------------------------------------------------------ real data */

static void test_reuters(void **state)
{
    (void)state;
    const char *t = tu_shared("data/reuters21578/train_texts.txt");
    const char *l = tu_shared("data/reuters21578/train_labels.txt");
    if (!t || !l)
        skip();
    char spec[2600];
    snprintf(spec, sizeof spec, "%s+%s", t, l);
    xmc_dataset *ds, *aug;
    xmc_error e = {0};
    if (xmc_dataset_load(spec, NULL, &ds, &e))
        fail_msg("load %s: %s", spec, e.msg);
    xmc_augment_stats st;
    if (xmc_augment_ex(ds, NULL, &aug, &st, &e))
        fail_msg("augment: %s", e.msg);
    int64_t N = ds->n, L = ds->n_labels;
    assert_int_equal(aug->n, N + L);
    assert_int_equal(st.unseen, 0);
    /* "wheat" documents are nearly always "grain" documents too. */
    const xmc_texts *names = ds->label_names;
    int64_t wheat = -1, grain = -1;
    for (int64_t j = 0; j < L; j++) {
        if (!strcmp(xmc_texts_get(names, j), "wheat"))
            wheat = j;
        if (!strcmp(xmc_texts_get(names, j), "grain"))
            grain = j;
    }
    assert_true(wheat >= 0 && grain >= 0);
    assert_string_equal(xmc_texts_get(aug->texts, N + wheat), "wheat");
    const xmc_csr *Y = aug->Y;
    float p = 0;
    for (int64_t k = Y->indptr[N + wheat]; k < Y->indptr[N + wheat + 1]; k++)
        if (Y->indices[k] == grain)
            p = Y->values[k];
    assert_true(p > 0.9f);
    xmc_dataset_free(aug);
    xmc_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cooc_counts),
        cmocka_unit_test(test_targets_cooc),
        cmocka_unit_test(test_targets_sym),
        cmocka_unit_test(test_targets_self),
        cmocka_unit_test(test_binary_pattern),
        cmocka_unit_test(test_threads_and_dense_reference),
        cmocka_unit_test(test_augment_texts),
        cmocka_unit_test(test_augment_features),
        cmocka_unit_test(test_pifa),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_sample),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_reuters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
