/* HNSW: exact brute force is the oracle. Recall 1.0 at ef >= n on small data
 * for every metric, recall above a bar at moderate ef on clustered data,
 * save/load (read and mmap) round trips, incremental add, bad inputs and
 * corrupt files, determinism with one thread, allocation failures, and no
 * allocation per query. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "xmc/hnsw.h"

static float *gauss(int64_t n, int64_t d, uint64_t seed)
{
    xmc_rng r;
    xmc_rng_seed(&r, seed, 7);
    float *x = xmc_malloc(sizeof(float) * (size_t)(n * d));
    assert_non_null(x);
    for (int64_t i = 0; i < n * d; i++)
        x[i] = xmc_rng_normal(&r);
    return x;
}

/* n points around nc Gaussian centres (noise sigma relative to unit centres). */
static float *clustered(int64_t n, int64_t d, int nc, float sigma, uint64_t seed)
{
    xmc_rng r;
    xmc_rng_seed(&r, seed, 9);
    float *c = gauss(nc, d, seed + 1);
    float *x = xmc_malloc(sizeof(float) * (size_t)(n * d));
    assert_non_null(x);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = (int64_t)xmc_rng_below(&r, (uint64_t)nc);
        for (int64_t j = 0; j < d; j++)
            x[i * d + j] = c[k * d + j] + sigma * xmc_rng_normal(&r);
    }
    xmc_free(c);
    return x;
}

static xmc_hnsw_params params(int metric, int M, int efc)
{
    xmc_hnsw_params p;
    xmc_hnsw_params_default(&p);
    p.metric = metric;
    p.M = M;
    p.ef_construction = efc;
    return p;
}

static double recall_vs_exact(const xmc_hnsw *h, const float *base, int64_t n, int64_t d,
                              int metric, const float *q, int64_t nq, int k, int ef)
{
    int64_t *a = xmc_malloc(sizeof(int64_t) * (size_t)(nq * k));
    int64_t *e = xmc_malloc(sizeof(int64_t) * (size_t)(nq * k));
    float *ad = xmc_malloc(sizeof(float) * (size_t)(nq * k));
    float *ed = xmc_malloc(sizeof(float) * (size_t)(nq * k));
    xmc_error err = {0};
    assert_int_equal(xmc_hnsw_search(h, q, nq, d, k, ef, a, ad, &err), XMC_OK);
    assert_int_equal(xmc_knn_exact(base, n, d, metric, q, nq, k, e, ed, &err), XMC_OK);
    /* Recall, where a result tied with the exact k-th distance (within
     * float rounding: cosine is computed on normalised rows here and from
     * norms there) counts as a hit. */
    int64_t hit = 0;
    for (int64_t i = 0; i < nq; i++)
        for (int j = 0; j < k; j++) {
            int ok = ad[i * k + j] <= ed[i * k + k - 1] + 1e-5f * (1 + fabsf(ed[i * k + k - 1]));
            for (int m = 0; m < k && !ok; m++)
                ok = a[i * k + j] == e[i * k + m];
            hit += ok;
        }
    double r = (double)hit / (double)(nq * k);
    assert_true(xmc_knn_recall(a, e, nq, k) <= r);
    if (r == 1.0) /* same neighbours => same distances, up to summation order */
        for (int64_t i = 0; i < nq * k; i++)
            assert_true(fabsf(ad[i] - ed[i]) <= 1e-3f + 1e-4f * fabsf(ed[i]));
    for (int64_t i = 0; i < nq; i++) /* closest first */
        for (int j = 1; j < k; j++)
            assert_true(ad[i * k + j - 1] <= ad[i * k + j]);
    xmc_free(a);
    xmc_free(e);
    xmc_free(ad);
    xmc_free(ed);
    return r;
}

static void test_oracle_every_metric(void **state)
{
    (void)state;
    const int64_t n = 600, d = 19, nq = 50; /* d = 19: rows padded, kernels' tails */
    float *x = gauss(n, d, 1), *q = gauss(nq, d, 2);
    for (int metric = XMC_METRIC_IP; metric <= XMC_METRIC_L2; metric++) {
        /* M = 16 keeps 600 nodes in one connected component whatever the
         * thread interleaving, so ef = n reaches every node. */
        xmc_hnsw_params p = params(metric, 16, 100);
        xmc_hnsw *h;
        xmc_error err = {0};
        assert_int_equal(xmc_hnsw_build(&h, x, n, d, &p, &err), XMC_OK);
        assert_int_equal(xmc_hnsw_size(h), n);
        assert_true(xmc_hnsw_levels(h) >= 2);
        double r = recall_vs_exact(h, x, n, d, metric, q, nq, 10, (int)n);
        if (r != 1.0)
            print_message("metric %d: recall %.4f at ef = n\n", metric, r);
        assert_true(r == 1.0);
        /* Each base vector finds itself first (cosine/L2; IP favours norms). */
        if (metric != XMC_METRIC_IP) {
            int64_t id[1];
            for (int64_t i = 0; i < n; i += 37) {
                assert_int_equal(xmc_hnsw_search(h, x + i * d, 1, d, 1, 32, id, NULL, &err), XMC_OK);
                assert_int_equal(id[0], i);
            }
        }
        xmc_hnsw_free(h);
    }
    /* bf16 storage: recall against the fp32 oracle stays high. */
    xmc_hnsw_params p = params(XMC_METRIC_COSINE, 8, 64);
    p.storage = XMC_STORE_BF16;
    xmc_hnsw *h;
    xmc_error err = {0};
    assert_int_equal(xmc_hnsw_build(&h, x, n, d, &p, &err), XMC_OK);
    double r = recall_vs_exact(h, x, n, d, XMC_METRIC_COSINE, q, nq, 10, (int)n);
    assert_true(r >= 0.97);
    xmc_hnsw_free(h);
    xmc_free(x);
    xmc_free(q);
}

static void test_recall_clustered_moderate_ef(void **state)
{
    (void)state;
    const int64_t n = 10000, d = 32, nq = 200;
    float *x = clustered(n, d, 50, 0.4f, 3), *q = clustered(nq, d, 50, 0.4f, 3);
    for (int metric = XMC_METRIC_IP; metric <= XMC_METRIC_L2; metric++) {
        xmc_hnsw_params p = params(metric, 12, 100);
        xmc_hnsw *h;
        xmc_error err = {0};
        assert_int_equal(xmc_hnsw_build(&h, x, n, d, &p, &err), XMC_OK);
        double r = recall_vs_exact(h, x, n, d, metric, q, nq, 10, 64);
        print_message("clustered n=%lld metric %d: recall@10 at ef 64 = %.4f\n", (long long)n,
                      metric, r);
        assert_true(r >= 0.95);
        assert_true(recall_vs_exact(h, x, n, d, metric, q, nq, 10, 10) < r + 1e-9);
        xmc_hnsw_free(h);
    }
    xmc_free(x);
    xmc_free(q);
}

static void assert_same_results(const xmc_hnsw *a, const xmc_hnsw *b, const float *q, int64_t nq,
                                int64_t d)
{
    int k = 10;
    int64_t ia[500], ib[500];
    float da[500], db[500];
    assert_true(nq * k <= 500);
    xmc_error err = {0};
    assert_int_equal(xmc_hnsw_search(a, q, nq, d, k, 40, ia, da, &err), XMC_OK);
    assert_int_equal(xmc_hnsw_search(b, q, nq, d, k, 40, ib, db, &err), XMC_OK);
    assert_memory_equal(ia, ib, sizeof(int64_t) * (size_t)(nq * k));
    assert_memory_equal(da, db, sizeof(float) * (size_t)(nq * k));
}

static void test_save_load_round_trip(void **state)
{
    (void)state;
    const int64_t n = 3000, d = 24, nq = 50;
    float *x = clustered(n, d, 20, 0.5f, 4), *q = clustered(nq, d, 20, 0.5f, 5);
    for (int storage = XMC_STORE_F32; storage <= XMC_STORE_BF16; storage++) {
        xmc_hnsw_params p = params(XMC_METRIC_L2, 10, 60);
        p.storage = storage;
        p.ef_search = 33;
        xmc_hnsw *h, *r1, *r2;
        xmc_error err = {0};
        assert_int_equal(xmc_hnsw_build(&h, x, n, d, &p, &err), XMC_OK);
        const char *path = tu_path("idx.hnsw");
        assert_int_equal(xmc_hnsw_save(h, path, &err), XMC_OK);
        assert_int_equal(xmc_hnsw_load(&r1, path, 0, &err), XMC_OK);
        assert_int_equal(xmc_hnsw_load(&r2, path, XMC_HNSW_LOAD_MMAP, &err), XMC_OK);
        xmc_hnsw_params g;
        xmc_hnsw_get_params(r2, &g);
        assert_int_equal(g.M, 10);
        assert_int_equal(g.ef_search, 33);
        assert_int_equal(g.storage, storage);
        assert_int_equal(xmc_hnsw_size(r1), n);
        assert_int_equal(xmc_hnsw_levels(r1), xmc_hnsw_levels(h));
        assert_true(xmc_hnsw_bytes(r1) > (size_t)(n * d * (storage ? 2 : 4)));
        assert_same_results(h, r1, q, nq, d);
        assert_same_results(h, r2, q, nq, d);
        /* Saving the loaded copies gives the same bytes. */
        const char *p2 = tu_path("idx2.hnsw");
        assert_int_equal(xmc_hnsw_save(r2, p2, &err), XMC_OK);
        assert_int_equal(tu_system("cmp -s '%s' '%s'", path, p2), 0);
        xmc_hnsw_free(h);
        xmc_hnsw_free(r1);
        xmc_hnsw_free(r2);
    }
    /* An empty index round-trips too. */
    xmc_hnsw *e, *e2;
    xmc_error err = {0};
    assert_int_equal(xmc_hnsw_create(&e, 5, NULL, &err), XMC_OK);
    assert_int_equal(xmc_hnsw_save(e, tu_path("empty.hnsw"), &err), XMC_OK);
    assert_int_equal(xmc_hnsw_load(&e2, tu_path("empty.hnsw"), 0, &err), XMC_OK);
    assert_int_equal(xmc_hnsw_size(e2), 0);
    assert_int_equal(xmc_hnsw_add(e2, x, 10, 5, &err), XMC_OK); /* reuse x as 5-dim rows */
    assert_int_equal(xmc_hnsw_size(e2), 10);
    xmc_hnsw_free(e);
    xmc_hnsw_free(e2);
    xmc_free(x);
    xmc_free(q);
}

static void test_incremental_add(void **state)
{
    (void)state;
    const int64_t n = 4000, n0 = 2500, d = 16, nq = 100;
    float *x = clustered(n, d, 30, 0.5f, 6), *q = clustered(nq, d, 30, 0.5f, 8);
    xmc_hnsw_params p = params(XMC_METRIC_COSINE, 12, 80);
    for (int mode = 0; mode < 3; mode++) { /* in memory, after load, after mmap load */
        xmc_hnsw *h;
        xmc_error err = {0};
        assert_int_equal(xmc_hnsw_build(&h, x, n0, d, &p, &err), XMC_OK);
        if (mode > 0) {
            assert_int_equal(xmc_hnsw_save(h, tu_path("inc.hnsw"), &err), XMC_OK);
            xmc_hnsw_free(h);
            assert_int_equal(xmc_hnsw_load(&h, tu_path("inc.hnsw"),
                                           mode == 2 ? XMC_HNSW_LOAD_MMAP : 0, &err),
                             XMC_OK);
        }
        /* Add in two batches (the second grows the arrays again). */
        assert_int_equal(xmc_hnsw_add(h, x + n0 * d, 1000, d, &err), XMC_OK);
        assert_int_equal(xmc_hnsw_add(h, x + (n0 + 1000) * d, n - n0 - 1000, d, &err), XMC_OK);
        assert_int_equal(xmc_hnsw_size(h), n);
        /* New vectors are findable: each finds itself. */
        int found = 0;
        for (int64_t i = n0; i < n; i++) {
            int64_t id[1];
            assert_int_equal(xmc_hnsw_search(h, x + i * d, 1, d, 1, 40, id, NULL, &err), XMC_OK);
            found += id[0] == i;
        }
        assert_true(found >= (n - n0) * 99 / 100);
        double r = recall_vs_exact(h, x, n, d, XMC_METRIC_COSINE, q, nq, 10, 64);
        assert_true(r >= 0.95);
        xmc_hnsw_free(h);
    }
    xmc_free(x);
    xmc_free(q);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    const int64_t n = 200, d = 8;
    float *x = gauss(n, d, 10);
    xmc_hnsw *h = NULL;
    xmc_error err = {0};
    xmc_hnsw_params p = params(XMC_METRIC_L2, 8, 40);
    int64_t ids[20];
    /* Bad parameters. */
    xmc_hnsw_params b = p;
    b.M = 1;
    tu_assert_error(xmc_hnsw_build(&h, x, n, d, &b, &err), &err, XMC_EINVAL, NULL, 0);
    assert_null(h);
    assert_non_null(strstr(err.msg, "M must be"));
    b = p;
    b.ef_construction = 4; /* < M */
    xmc_error_clear(&err);
    tu_assert_error(xmc_hnsw_build(&h, x, n, d, &b, &err), &err, XMC_EINVAL, NULL, 0);
    b = p;
    b.metric = 7;
    xmc_error_clear(&err);
    tu_assert_error(xmc_hnsw_build(&h, x, n, d, &b, &err), &err, XMC_EINVAL, NULL, 0);
    b = p;
    b.ef_search = 0;
    xmc_error_clear(&err);
    tu_assert_error(xmc_hnsw_build(&h, x, n, d, &b, &err), &err, XMC_EINVAL, NULL, 0);
    xmc_error_clear(&err);
    tu_assert_error(xmc_hnsw_build(&h, x, n, 0, &p, &err), &err, XMC_EINVAL, NULL, 0);
    /* Non-finite input names the vector. */
    x[5 * d + 3] = NAN;
    xmc_error_clear(&err);
    tu_assert_error(xmc_hnsw_build(&h, x, n, d, &p, &err), &err, XMC_EINVAL, NULL, 0);
    assert_non_null(strstr(err.msg, "vector 5"));
    x[5 * d + 3] = 0.5f;
    xmc_error_clear(&err);
    assert_int_equal(xmc_hnsw_build(&h, x, n, d, &p, &err), XMC_OK);
    /* Search and add errors leave the index usable. */
    tu_assert_error(xmc_hnsw_search(h, x, 1, d + 1, 5, 0, ids, NULL, &err), &err, XMC_EINVAL, NULL, 0);
    assert_non_null(strstr(err.msg, "dimension"));
    xmc_error_clear(&err);
    tu_assert_error(xmc_hnsw_search(h, x, 1, d, (int)n + 1, 0, ids, NULL, &err), &err, XMC_EINVAL,
                    NULL, 0);
    xmc_error_clear(&err);
    tu_assert_error(xmc_hnsw_search(h, x, 1, d, 0, 0, ids, NULL, &err), &err, XMC_EINVAL, NULL, 0);
    xmc_error_clear(&err);
    tu_assert_error(xmc_hnsw_search(h, x, 1, d, -3, 0, ids, NULL, &err), &err, XMC_EINVAL, NULL, 0);
    xmc_error_clear(&err);
    tu_assert_error(xmc_hnsw_add(h, x, 3, d - 1, &err), &err, XMC_EINVAL, NULL, 0);
    assert_int_equal(xmc_hnsw_size(h), n);
    xmc_error_clear(&err);
    assert_int_equal(xmc_hnsw_search(h, x, 1, d, 5, 0, ids, NULL, &err), XMC_OK);
    assert_int_equal(ids[0], 0);
    /* k > n on an empty index. */
    xmc_hnsw *e;
    assert_int_equal(xmc_hnsw_create(&e, d, &p, &err), XMC_OK);
    tu_assert_error(xmc_hnsw_search(e, x, 1, d, 1, 0, ids, NULL, &err), &err, XMC_EINVAL, NULL, 0);
    xmc_hnsw_free(e);
    xmc_error_clear(&err);
    tu_assert_error(xmc_knn_exact(x, n, d, XMC_METRIC_L2, x, 1, (int)n + 1, ids, NULL, &err), &err,
                    XMC_EINVAL, NULL, 0);

    /* Files: missing, not an index, truncated, flipped data byte, flipped
     * header byte. Each names the path. */
    char path[1200];
    snprintf(path, sizeof path, "%s", tu_path("bad.hnsw"));
    xmc_error_clear(&err);
    assert_int_equal(xmc_hnsw_save(h, path, &err), XMC_OK);
    xmc_hnsw *r = NULL;
    tu_assert_error(xmc_hnsw_load(&r, tu_path("missing.hnsw"), 0, &err), &err, XMC_EIO,
                    "missing.hnsw", 0);
    char text[600];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = 0;
    tu_write(tu_path("text.hnsw"), text);
    xmc_error_clear(&err);
    tu_assert_error(xmc_hnsw_load(&r, tu_path("text.hnsw"), 0, &err), &err, XMC_ECORRUPT,
                    "text.hnsw", 0);
    assert_non_null(strstr(err.msg, "magic"));
    assert_int_equal(tu_system("head -c 5000 '%s' > '%s'", path, tu_path("trunc.hnsw")), 0);
    xmc_error_clear(&err);
    tu_assert_error(xmc_hnsw_load(&r, tu_path("trunc.hnsw"), 0, &err), &err, XMC_ECORRUPT,
                    "trunc.hnsw", 0);
    assert_int_equal(tu_system("head -c 100 '%s' > '%s'", path, tu_path("trunc2.hnsw")), 0);
    xmc_error_clear(&err);
    tu_assert_error(xmc_hnsw_load(&r, tu_path("trunc2.hnsw"), 0, &err), &err, XMC_ECORRUPT,
                    "trunc2.hnsw", 0);
    for (int flags = 0; flags <= XMC_HNSW_LOAD_MMAP; flags++) {
        long offs[] = {3000, 40}; /* data, header */
        for (int j = 0; j < 2; j++) {
            assert_int_equal(tu_system("cp '%s' '%s' && printf '\\377' | dd of='%s' bs=1 seek=%ld "
                                       "conv=notrunc status=none",
                                       path, tu_path("flip.hnsw"), tu_path("flip.hnsw"), offs[j]),
                             0);
            xmc_error_clear(&err);
            tu_assert_error(xmc_hnsw_load(&r, tu_path("flip.hnsw"), flags, &err), &err,
                            XMC_ECORRUPT, "flip.hnsw", 0);
            assert_non_null(strstr(err.msg, "checksum"));
            assert_null(r);
        }
    }
    xmc_hnsw_free(h);
    xmc_hnsw_free(NULL);
    xmc_free(x);
}

static void test_deterministic_one_thread(void **state)
{
    (void)state;
    const int64_t n = 2000, d = 12;
    float *x = clustered(n, d, 10, 0.5f, 11);
    int saved = xmc_get_threads();
    xmc_set_threads(1);
    xmc_hnsw_params p = params(XMC_METRIC_COSINE, 8, 50);
    xmc_error err = {0};
    const char *names[3] = {"det_a.hnsw", "det_b.hnsw", "det_c.hnsw"};
    for (int i = 0; i < 3; i++) {
        p.seed = i < 2 ? 42 : 43;
        xmc_hnsw *h;
        assert_int_equal(xmc_hnsw_build(&h, x, n, d, &p, &err), XMC_OK);
        assert_int_equal(xmc_hnsw_save(h, tu_path(names[i]), &err), XMC_OK);
        xmc_hnsw_free(h);
    }
    xmc_set_threads(saved);
    char a[512], b[512];
    snprintf(a, sizeof a, "%s", tu_path(names[0]));
    snprintf(b, sizeof b, "%s", tu_path(names[1]));
    assert_int_equal(tu_system("cmp -s '%s' '%s'", a, b), 0);
    snprintf(b, sizeof b, "%s", tu_path(names[2]));
    assert_int_not_equal(tu_system("cmp -s '%s' '%s'", a, b), 0);
    xmc_free(x);
}

static void test_no_alloc_per_query_and_faults(void **state)
{
    (void)state;
    const int64_t n = 1500, d = 16;
    float *x = gauss(n, d, 12);
    xmc_hnsw_params p = params(XMC_METRIC_L2, 8, 40);
    xmc_hnsw *h;
    xmc_error err = {0};
    assert_int_equal(xmc_hnsw_build(&h, x, n, d, &p, &err), XMC_OK);
    int64_t ids[10 * 100];
    assert_int_equal(xmc_hnsw_search(h, x, 100, d, 10, 50, ids, NULL, &err), XMC_OK);
    uint64_t a0 = xmc_mem_alloc_count();
    for (int rep = 0; rep < 3; rep++)
        assert_int_equal(xmc_hnsw_search(h, x, 100, d, 10, 50, ids, NULL, &err), XMC_OK);
    for (int i = 0; i < 20; i++) /* single-query calls reuse the pool too */
        assert_int_equal(xmc_hnsw_search(h, x + i * d, 1, d, 10, 50, ids, NULL, &err), XMC_OK);
    assert_int_equal(xmc_mem_alloc_count(), a0);
    xmc_hnsw_free(h);

    /* Every allocation of a build, in turn, fails cleanly: ENOMEM, no leak. */
    size_t base = xmc_mem_current();
    for (uint64_t k = 1; k <= 40; k++) {
        xmc_error e = {0};
        xmc_mem_fail_after(k);
        int rc = xmc_hnsw_build(&h, x, 300, d, &p, &e);
        xmc_mem_fail_after(0);
        if (rc == XMC_OK) {
            xmc_hnsw_free(h);
            continue;
        }
        assert_int_equal(rc, XMC_ENOMEM);
        assert_null(h);
        assert_int_equal(xmc_mem_current(), base);
    }
    xmc_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oracle_every_metric),
        cmocka_unit_test(test_recall_clustered_moderate_ef),
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_incremental_add),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_deterministic_one_thread),
        cmocka_unit_test(test_no_alloc_per_query_and_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
