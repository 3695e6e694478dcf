/* HNSW build: create an empty index, add vectors (a build is one add into an
 * empty index, so incremental adds after build or load share the code),
 * free.
 *
 * An add runs in three phases so that the parallel phase allocates nothing
 * and cannot fail:
 *  1. validate (dimension, finite values) and draw every new node's level
 *     from RNG stream (seed, id) — levels never depend on thread count;
 *  2. grow the arrays once, store the vectors (normalised for cosine,
 *     rounded for bf16) and empty neighbour lists, take one scratch per
 *     thread;
 *  3. INSERT (Algorithm 1, hnsw_insert.c) the new ids on all threads, the
 *     first node of an empty index alone first. With one thread the ids are
 *     inserted in order, so the graph is a function of (data, params, seed).
 * A failure in phases 1-2 leaves the index as it was.
 */
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "index/internal.h"

int xmc_hnsw_create(xmc_hnsw **out, int64_t dim, const xmc_hnsw_params *p, xmc_error *err)
{
    xmc_hnsw_params def;
    if (!out)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw create: NULL output");
    *out = NULL;
    if (!p) {
        xmc_hnsw_params_default(&def);
        p = &def;
    }
    int rc = hnsw_check_params(p, dim, err);
    if (rc != XMC_OK)
        return rc;
    xmc_hnsw *h = xmc_calloc(1, sizeof *h);
    if (!h)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "hnsw create: out of memory");
    h->dim = dim;
    h->metric = p->metric;
    h->storage = p->storage;
    h->M = p->M;
    h->M0 = 2 * p->M;
    h->ef_construction = p->ef_construction;
    h->ef_search = p->ef_search;
    h->seed = p->seed;
    h->mL = 1.0 / log((double)p->M);
    h->entry = -1;
    h->max_level = -1;
    hnsw_set_kernel(h);
    /* Rows padded with zeros to a multiple of 64 bytes: aligned loads, no
     * kernel tail, and padding changes neither dot products nor L2. */
    int64_t per = (int64_t)(64 / h->elem);
    h->stride = (dim + per - 1) / per * per;
    *out = h;
    return XMC_OK;
}

void xmc_hnsw_free(xmc_hnsw *h)
{
    if (!h)
        return;
    if (h->map) {
        hnsw_unmap(h->map, h->map_len);
    } else {
        xmc_free(h->vec);
        xmc_free(h->level);
        xmc_free(h->links0);
        xmc_free(h->up_off);
        xmc_free(h->up);
    }
    xmc_free((void *)h->locks);
    hnsw_scratch_free_all(h);
    xmc_free(h);
}

int xmc_hnsw_add(xmc_hnsw *h, const float *x, int64_t n, int64_t dim, xmc_error *err)
{
    if (!h || (!x && n > 0) || n < 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw add: NULL index or vectors");
    if (dim != h->dim)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "hnsw add: vectors have dimension %lld, the index %lld", (long long)dim,
                       (long long)h->dim);
    if (n == 0)
        return XMC_OK;
    if (n > XMC_HNSW_MAX_SIZE - h->n)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw add: %lld + %lld vectors exceed %lld",
                       (long long)h->n, (long long)n, XMC_HNSW_MAX_SIZE);
    /* Phase 1: validate and draw levels. */
    int64_t bad = -1;
#pragma omp parallel for schedule(static) reduction(max : bad)
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < dim; j++)
            if (!isfinite(x[i * dim + j]))
                bad = bad > i ? bad : i;
    if (bad >= 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw add: vector %lld has a non-finite value",
                       (long long)bad);
    int rc = hnsw_materialize(h, err);
    if (rc != XMC_OK)
        return rc;
    const int64_t n0 = h->n, n1 = h->n + n, w0 = h->up_words;
    uint8_t *lv = xmc_malloc((size_t)n);
    if (!lv)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "hnsw add: out of memory");
    int64_t words = 0;
    for (int64_t i = 0; i < n; i++) {
        lv[i] = (uint8_t)hnsw_random_level(h, n0 + i);
        words += (int64_t)lv[i] * (1 + h->M);
    }

    /* Phase 2: grow (exact for a first build, 1.5x for later adds). */
    int64_t cap = h->cap >= n1 ? h->cap : (n0 == 0 ? n1 : (n1 > h->cap * 3 / 2 ? n1 : h->cap * 3 / 2));
    int64_t upc = h->up_cap >= w0 + words ? h->up_cap
                  : (w0 == 0 ? w0 + words : (w0 + words > h->up_cap * 3 / 2 ? w0 + words : h->up_cap * 3 / 2));
    rc = hnsw_reserve(h, cap, upc, err);
    if (rc != XMC_OK) {
        xmc_free(lv);
        return rc;
    }
    int64_t w = w0;
    for (int64_t i = 0; i < n; i++) {
        int64_t id = n0 + i;
        h->level[id] = lv[i];
        h->links0[id * (1 + h->M0)] = 0;
        if (lv[i] > 0) {
            h->up_off[id] = w;
            for (int lc = 1; lc <= lv[i]; lc++)
                h->up[w + (int64_t)(lc - 1) * (1 + h->M)] = 0;
            w += (int64_t)lv[i] * (1 + h->M);
        } else {
            h->up_off[id] = -1;
        }
    }
    xmc_free(lv);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        hnsw_store_vector(h, n0 + i, x + i * dim);
    h->n = n1;
    h->up_words = w;

    int nt = xmc_get_threads();
    if (nt < 1)
        nt = 1;
    if (nt > 256)
        nt = 256;
    if (nt > n)
        nt = (int)n;
    hnsw_scratch *sc[256];
    int ef = h->ef_construction > h->M0 + 1 ? h->ef_construction : h->M0 + 1;
    rc = hnsw_scratch_acquire(h, nt, ef, sc, err);
    if (rc != XMC_OK) {
        h->n = n0;
        h->up_words = w0;
        return rc;
    }

    /* Phase 3: insert. */
    xmc_progress prog;
    xmc_progress_start(&prog, "hnsw build", "vectors", n);
    int64_t start = n0;
    if (h->entry < 0)
        hnsw_insert(h, sc[0], (int32_t)start++);
    _Atomic int64_t done = 0;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
#ifdef _OPENMP
        int t = omp_get_thread_num();
#else
        int t = 0;
#endif
        hnsw_scratch *s = sc[t];
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = start; i < n1; i++) {
            hnsw_insert(h, s, (int32_t)i);
            int64_t d = atomic_fetch_add_explicit(&done, 1, memory_order_relaxed) + 1;
            if (t == 0 && (d & 1023) == 0)
                xmc_progress_update(&prog, d, NULL);
        }
    }
    xmc_progress_finish(&prog, NULL);
    hnsw_scratch_release(h, nt, sc);
    return XMC_OK;
}

int xmc_hnsw_build(xmc_hnsw **out, const float *x, int64_t n, int64_t dim,
                   const xmc_hnsw_params *p, xmc_error *err)
{
    if (!out)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw build: NULL output");
    *out = NULL;
    xmc_hnsw *h;
    int rc = xmc_hnsw_create(&h, dim, p, err);
    if (rc != XMC_OK)
        return rc;
    rc = xmc_hnsw_add(h, x, n, dim, err);
    if (rc != XMC_OK) {
        xmc_hnsw_free(h);
        return rc;
    }
    *out = h;
    return XMC_OK;
}
