/* Balanced hierarchical k-means: sizes differ by <= 1 on every level, the
 * output is a permutation consistent with assign/offsets, quality beats a
 * random balanced assignment by a wide margin on clustered data (dense and
 * sparse), the result does not depend on the thread count, bad inputs and
 * allocation failures. */
#include <math.h>
#include <string.h>

#include "testutil.h"
#include "xmc/cluster.h"

/* n points: point i belongs to true cluster i % nc (centre + sigma noise). */
static float *mixture(int64_t n, int64_t d, int nc, float sigma, uint64_t seed)
{
    xmc_rng r;
    xmc_rng_seed(&r, seed, 0);
    float *c = xmc_malloc(sizeof(float) * (size_t)(nc * d));
    float *x = xmc_malloc(sizeof(float) * (size_t)(n * d));
    assert_non_null(c);
    assert_non_null(x);
    for (int64_t i = 0; i < nc * d; i++)
        c[i] = xmc_rng_normal(&r);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++)
            x[i * d + j] = c[(i % nc) * d + j] + sigma * xmc_rng_normal(&r);
    xmc_free(c);
    return x;
}

static void check_structure(const xmc_clusters *c, int64_t n, int64_t max_leaf)
{
    assert_int_equal(c->n, n);
    assert_int_equal(c->n_clusters, (int64_t)1 << c->depth);
    char *seen = xmc_calloc((size_t)(n > 0 ? n : 1), 1);
    for (int64_t i = 0; i < n; i++) {
        assert_true(c->perm[i] >= 0 && c->perm[i] < n);
        assert_false(seen[c->perm[i]]);
        seen[c->perm[i]] = 1;
    }
    xmc_free(seen);
    for (int t = 0; t <= c->depth; t++) {
        const int64_t *o = xmc_clusters_level(c, t);
        assert_non_null(o);
        int64_t lo = INT64_MAX, hi = 0;
        assert_int_equal(o[0], 0);
        assert_int_equal(o[(int64_t)1 << t], n);
        for (int64_t j = 0; j < ((int64_t)1 << t); j++) {
            int64_t s = o[j + 1] - o[j];
            lo = s < lo ? s : lo;
            hi = s > hi ? s : hi;
            if (t < c->depth) { /* children partition the parent */
                const int64_t *oc = xmc_clusters_level(c, t + 1);
                assert_int_equal(oc[2 * j], o[j]);
                assert_int_equal(oc[2 * j + 2], o[j + 1]);
            }
        }
        assert_true(hi - lo <= 1); /* balance on every level */
    }
    assert_null(xmc_clusters_level(c, c->depth + 1));
    assert_null(xmc_clusters_level(c, -1));
    for (int64_t k = 0; k < c->n_clusters; k++) {
        assert_true(c->offsets[k + 1] - c->offsets[k] <= max_leaf);
        for (int64_t i = c->offsets[k]; i < c->offsets[k + 1]; i++)
            assert_int_equal(c->assign[c->perm[i]], k);
    }
    if (c->depth > 0) /* the depth is the smallest that reaches max_leaf */
        assert_true((n + ((int64_t)1 << (c->depth - 1)) - 1) >> (c->depth - 1) > max_leaf);
}

/* Mean cosine of each point to its cluster's mean direction. */
static double intra_similarity(const float *x, int64_t n, int64_t d, const int64_t *perm,
                               const int64_t *offsets, int64_t nclu)
{
    double total = 0;
    float *m = xmc_malloc(sizeof(float) * (size_t)d);
    for (int64_t k = 0; k < nclu; k++) {
        memset(m, 0, sizeof(float) * (size_t)d);
        for (int64_t i = offsets[k]; i < offsets[k + 1]; i++) {
            const float *xi = x + perm[i] * d;
            double nr = 0;
            for (int64_t j = 0; j < d; j++)
                nr += (double)xi[j] * xi[j];
            for (int64_t j = 0; j < d; j++)
                m[j] += (float)(xi[j] / sqrt(nr));
        }
        double mn = 0;
        for (int64_t j = 0; j < d; j++)
            mn += (double)m[j] * m[j];
        mn = sqrt(mn);
        for (int64_t i = offsets[k]; i < offsets[k + 1]; i++) {
            const float *xi = x + perm[i] * d;
            double dot = 0, nr = 0;
            for (int64_t j = 0; j < d; j++) {
                dot += (double)xi[j] * m[j];
                nr += (double)xi[j] * xi[j];
            }
            total += mn > 0 ? dot / (sqrt(nr) * mn) : 0;
        }
    }
    xmc_free(m);
    return total / (double)n;
}

static void test_balance_on_every_level(void **state)
{
    (void)state;
    const int64_t d = 16;
    int64_t sizes[] = {0, 1, 2, 7, 50, 51, 10007};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t n = sizes[s];
        float *x = mixture(n > 0 ? n : 1, d, 10, 0.5f, 1);
        xmc_cluster_params p;
        xmc_cluster_params_default(&p);
        p.max_leaf = 50;
        xmc_clusters *c;
        xmc_error err = {0};
        assert_int_equal(xmc_cluster_balanced(x, n, d, &p, &c, &err), XMC_OK);
        check_structure(c, n, p.max_leaf);
        if (n <= 50)
            assert_int_equal(c->depth, 0);
        if (n == 10007)
            assert_int_equal(c->n_clusters, 256); /* ceil(10007 / 256) = 40 <= 50 < 79 */
        xmc_clusters_free(c);
        xmc_free(x);
    }
    xmc_clusters_free(NULL);
}

static void test_quality_beats_random(void **state)
{
    (void)state;
    const int64_t n = 8192, d = 32;
    const int nc = 64;
    float *x = mixture(n, d, nc, 0.6f, 2);
    xmc_cluster_params p;
    xmc_cluster_params_default(&p);
    p.max_leaf = n / nc; /* 64 clusters of 128 */
    xmc_clusters *c;
    xmc_error err = {0};
    assert_int_equal(xmc_cluster_balanced(x, n, d, &p, &c, &err), XMC_OK);
    check_structure(c, n, p.max_leaf);
    assert_int_equal(c->n_clusters, nc);
    double ours = intra_similarity(x, n, d, c->perm, c->offsets, c->n_clusters);
    /* A random balanced assignment with the same sizes. */
    int64_t *rp = xmc_malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        rp[i] = i;
    xmc_rng r;
    xmc_rng_seed(&r, 3, 0);
    xmc_rng_shuffle_i64(&r, rp, n);
    double rnd = intra_similarity(x, n, d, rp, c->offsets, c->n_clusters);
    /* Purity: share of points in their cluster's majority true cluster. */
    int64_t pure = 0;
    for (int64_t k = 0; k < c->n_clusters; k++) {
        int cnt[64] = {0}, best = 0;
        for (int64_t i = c->offsets[k]; i < c->offsets[k + 1]; i++) {
            int tc = (int)(c->perm[i] % nc);
            if (++cnt[tc] > best)
                best = cnt[tc];
        }
        pure += best;
    }
    print_message("intra-cluster cosine: balanced k-means %.3f, random %.3f, purity %.3f\n", ours,
                  rnd, (double)pure / n);
    assert_true(ours > rnd + 0.4);
    assert_true(ours > 3 * rnd);
    assert_true((double)pure / n > 0.7); /* a balanced split may cut a true cluster */
    xmc_free(rp);
    xmc_clusters_free(c);
    xmc_free(x);
}

static void test_thread_count_independent(void **state)
{
    (void)state;
    const int64_t n = 40000, d = 8; /* > BIG: the root runs in parallel mode */
    float *x = mixture(n, d, 20, 0.8f, 4);
    xmc_cluster_params p;
    xmc_cluster_params_default(&p);
    p.max_leaf = 600;
    p.max_iter = 8;
    int saved = xmc_get_threads();
    xmc_clusters *c1, *c2, *c3;
    xmc_error err = {0};
    xmc_set_threads(1);
    assert_int_equal(xmc_cluster_balanced(x, n, d, &p, &c1, &err), XMC_OK);
    xmc_set_threads(2);
    assert_int_equal(xmc_cluster_balanced(x, n, d, &p, &c2, &err), XMC_OK);
    p.seed = 99;
    assert_int_equal(xmc_cluster_balanced(x, n, d, &p, &c3, &err), XMC_OK);
    xmc_set_threads(saved);
    check_structure(c1, n, p.max_leaf);
    assert_memory_equal(c1->perm, c2->perm, sizeof(int64_t) * (size_t)n);
    assert_memory_equal(c1->assign, c2->assign, sizeof(int32_t) * (size_t)n);
    assert_memory_not_equal(c1->assign, c3->assign, sizeof(int32_t) * (size_t)n);
    xmc_clusters_free(c1);
    xmc_clusters_free(c2);
    xmc_clusters_free(c3);
    xmc_free(x);
}

/* Sparse rows: true cluster k owns columns [20k, 20k + 20); each row has 6
 * of them plus 2 random noise columns. */
static void test_sparse_input(void **state)
{
    (void)state;
    const int64_t n = 4096, F = 2000;
    const int nc = 32, per = 8;
    xmc_csr m = {0};
    m.nrows = n;
    m.ncols = F;
    m.indptr = xmc_malloc(sizeof(int64_t) * (size_t)(n + 1));
    m.indices = xmc_malloc(sizeof(int32_t) * (size_t)(n * per));
    m.values = xmc_malloc(sizeof(float) * (size_t)(n * per));
    xmc_rng r;
    xmc_rng_seed(&r, 6, 0);
    m.indptr[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t base = i * per;
        int k = (int)(i % nc);
        for (int j = 0; j < per; j++) {
            int32_t col;
            int dup;
            do { /* unique columns within the row */
                col = j < 6 ? (int32_t)(20 * k + (int)xmc_rng_below(&r, 20))
                            : (int32_t)xmc_rng_below(&r, (uint64_t)F);
                dup = 0;
                for (int q = 0; q < j; q++)
                    dup |= m.indices[base + q] == col;
            } while (dup);
            m.indices[base + j] = col;
            m.values[base + j] = 0.5f + (float)xmc_rng_uniform(&r);
        }
        m.indptr[i + 1] = base + per;
    }
    xmc_cluster_params p;
    xmc_cluster_params_default(&p);
    p.max_leaf = n / nc;
    xmc_clusters *c;
    xmc_error err = {0};
    assert_int_equal(xmc_cluster_balanced_csr(&m, &p, &c, &err), XMC_OK);
    check_structure(c, n, p.max_leaf);
    int64_t pure = 0;
    for (int64_t k = 0; k < c->n_clusters; k++) {
        int cnt[32] = {0}, best = 0;
        for (int64_t i = c->offsets[k]; i < c->offsets[k + 1]; i++) {
            int tc = (int)(c->perm[i] % nc);
            if (++cnt[tc] > best)
                best = cnt[tc];
        }
        pure += best;
    }
    print_message("sparse purity %.3f (random ~%.3f)\n", (double)pure / n, 2.0 / nc);
    assert_true((double)pure / n > 0.8);
    xmc_clusters_free(c);
    /* A column out of range is refused, naming the row. */
    m.indices[5 * per] = (int32_t)F;
    tu_assert_error(xmc_cluster_balanced_csr(&m, &p, &c, &err), &err, XMC_EINVAL, NULL, 0);
    assert_non_null(strstr(err.msg, "row 5"));
    xmc_free(m.indptr);
    xmc_free(m.indices);
    xmc_free(m.values);
}

static void test_bad_inputs_and_faults(void **state)
{
    (void)state;
    const int64_t n = 300, d = 4;
    float *x = mixture(n, d, 4, 0.3f, 7);
    xmc_cluster_params p;
    xmc_cluster_params_default(&p);
    xmc_clusters *c = NULL;
    xmc_error err = {0};
    xmc_cluster_params b = p;
    b.max_leaf = 0;
    tu_assert_error(xmc_cluster_balanced(x, n, d, &b, &c, &err), &err, XMC_EINVAL, NULL, 0);
    assert_null(c);
    b = p;
    b.max_iter = 0;
    xmc_error_clear(&err);
    tu_assert_error(xmc_cluster_balanced(x, n, d, &b, &c, &err), &err, XMC_EINVAL, NULL, 0);
    b = p;
    b.tol = NAN;
    xmc_error_clear(&err);
    tu_assert_error(xmc_cluster_balanced(x, n, d, &b, &c, &err), &err, XMC_EINVAL, NULL, 0);
    xmc_error_clear(&err);
    tu_assert_error(xmc_cluster_balanced(x, n, 0, &p, &c, &err), &err, XMC_EINVAL, NULL, 0);
    x[17 * d + 2] = INFINITY;
    xmc_error_clear(&err);
    tu_assert_error(xmc_cluster_balanced(x, n, d, &p, &c, &err), &err, XMC_EINVAL, NULL, 0);
    assert_non_null(strstr(err.msg, "row 17"));
    x[17 * d + 2] = 1.0f;
    /* Zero rows are allowed (they go anywhere). */
    memset(x, 0, sizeof(float) * 10 * (size_t)d);
    p.max_leaf = 10;
    xmc_error_clear(&err);
    assert_int_equal(xmc_cluster_balanced(x, n, d, &p, &c, &err), XMC_OK);
    check_structure(c, n, p.max_leaf);
    xmc_clusters_free(c);
    /* Every allocation failing in turn: ENOMEM and no leak. */
    size_t base = xmc_mem_current();
    for (uint64_t k = 1; k <= 16; k++) {
        xmc_error e = {0};
        xmc_mem_fail_after(k);
        int rc = xmc_cluster_balanced(x, n, d, &p, &c, &e);
        xmc_mem_fail_after(0);
        if (rc == XMC_OK) {
            xmc_clusters_free(c);
            continue;
        }
        assert_int_equal(rc, XMC_ENOMEM);
        assert_null(c);
        assert_int_equal(xmc_mem_current(), base);
    }
    xmc_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_balance_on_every_level),
        cmocka_unit_test(test_quality_beats_random),
        cmocka_unit_test(test_thread_count_independent),
        cmocka_unit_test(test_sparse_input),
        cmocka_unit_test(test_bad_inputs_and_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
