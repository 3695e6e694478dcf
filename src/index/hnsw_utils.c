/* HNSW utilities: parameters, kernels, levels, vector storage, growth and
 * the pooled per-thread search scratch (pgvector keeps the same kind of
 * helpers in hnswutils.c).
 *
 * Memory: hnsw_reserve grows every per-node array together (amortised 1.5x
 * for incremental adds; exact for a fresh build). The scratch pool holds one
 * visited array (2 bytes per node) and candidate buffers per thread that
 * ever searched, reused across calls: the pool's spin lock guards only the
 * free list, taken twice per search call (never per query).
 */
#include <math.h>
#include <sched.h>
#include <string.h>

#include "index/internal.h"

void hnsw_glock(xmc_hnsw *h)
{
    int expect = 0;
    while (!atomic_compare_exchange_weak_explicit(&h->glock, &expect, 1, memory_order_acquire,
                                                  memory_order_relaxed)) {
        expect = 0;
        sched_yield(); /* the holder may be inside a whole insert */
    }
}

void hnsw_gunlock(xmc_hnsw *h) { atomic_store_explicit(&h->glock, 0, memory_order_release); }

void xmc_hnsw_params_default(xmc_hnsw_params *p)
{
    p->metric = XMC_METRIC_COSINE;
    p->storage = XMC_STORE_F32;
    p->M = XMC_HNSW_DEFAULT_M;
    p->ef_construction = XMC_HNSW_DEFAULT_EF_CONSTRUCTION;
    p->ef_search = XMC_HNSW_DEFAULT_EF_SEARCH;
    p->seed = 1;
}

int hnsw_check_params(const xmc_hnsw_params *p, int64_t dim, xmc_error *err)
{
    if (dim < 1 || dim > XMC_HNSW_MAX_DIM)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw: dimension must be in 1..%d, got %lld",
                       XMC_HNSW_MAX_DIM, (long long)dim);
    if (p->metric < XMC_METRIC_IP || p->metric > XMC_METRIC_L2)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw: unknown metric %d (ip, cosine, l2)",
                       p->metric);
    if (p->storage != XMC_STORE_F32 && p->storage != XMC_STORE_BF16)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw: unknown storage %d (f32, bf16)",
                       p->storage);
    if (p->M < XMC_HNSW_MIN_M || p->M > XMC_HNSW_MAX_M)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw: M must be in %d..%d, got %d",
                       XMC_HNSW_MIN_M, XMC_HNSW_MAX_M, p->M);
    if (p->ef_construction < XMC_HNSW_MIN_EF_CONSTRUCTION ||
        p->ef_construction > XMC_HNSW_MAX_EF_CONSTRUCTION || p->ef_construction < p->M)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "hnsw: ef_construction must be in M..%d (M = %d), got %d",
                       XMC_HNSW_MAX_EF_CONSTRUCTION, p->M, p->ef_construction);
    if (p->ef_search < XMC_HNSW_MIN_EF_SEARCH || p->ef_search > XMC_HNSW_MAX_EF_SEARCH)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw: ef_search must be in %d..%d, got %d",
                       XMC_HNSW_MIN_EF_SEARCH, XMC_HNSW_MAX_EF_SEARCH, p->ef_search);
    return XMC_OK;
}

void hnsw_set_kernel(xmc_hnsw *h)
{
    const xmc_dist_kernels *k = xmc_dist_kernels_best();
    int bf = h->storage == XMC_STORE_BF16;
    /* Cosine vectors are unit length after hnsw_store_vector, so cosine is
     * the dot product. */
    if (h->metric == XMC_METRIC_L2)
        h->dist = bf ? k->l2sq_bf16 : k->l2sq_f32;
    else
        h->dist = bf ? k->dot_bf16 : k->dot_f32;
    h->neg = h->metric != XMC_METRIC_L2;
    h->elem = bf ? 2 : 4;
}

int hnsw_random_level(const xmc_hnsw *h, int64_t id)
{
    xmc_rng r;
    xmc_rng_seed(&r, h->seed, (uint64_t)id);
    double u = 1.0 - xmc_rng_uniform(&r); /* (0, 1] */
    double l = -log(u) * h->mL;
    return l >= HNSW_MAX_LEVEL ? HNSW_MAX_LEVEL : (int)l;
}

static void to_storage(const xmc_hnsw *h, const float *x, void *dst)
{
    double ss = 0;
    if (h->metric == XMC_METRIC_COSINE)
        for (int64_t j = 0; j < h->dim; j++)
            ss += (double)x[j] * x[j];
    float scale = ss > 0 ? (float)(1.0 / sqrt(ss)) : 1.0f;
    if (h->storage == XMC_STORE_BF16) {
        uint16_t *o = dst;
        for (int64_t j = 0; j < h->dim; j++)
            o[j] = xmc_f32_to_bf16(x[j] * scale);
        for (int64_t j = h->dim; j < h->stride; j++)
            o[j] = 0;
    } else {
        float *o = dst;
        for (int64_t j = 0; j < h->dim; j++)
            o[j] = x[j] * scale;
        for (int64_t j = h->dim; j < h->stride; j++)
            o[j] = 0.0f;
    }
}

void hnsw_store_vector(xmc_hnsw *h, int64_t id, const float *x)
{
    to_storage(h, x, (char *)h->vec + (size_t)id * (size_t)h->stride * h->elem);
}

void hnsw_prepare_query(const xmc_hnsw *h, const float *q, void *buf) { to_storage(h, q, buf); }

/* Grow one array to `n` elements of `size`, keeping `used` of them. */
static int grow(void **p, int64_t used, int64_t n, size_t size)
{
    size_t bytes;
    if (!xmc_mul_ok((size_t)n, size, &bytes))
        return 0;
    void *q = xmc_malloc(bytes ? bytes : 1);
    if (!q)
        return 0;
    if (*p && used > 0)
        memcpy(q, *p, (size_t)used * size);
    xmc_free(*p);
    *p = q;
    return 1;
}

int hnsw_reserve(xmc_hnsw *h, int64_t cap, int64_t up_cap, xmc_error *err)
{
    if (cap > XMC_HNSW_MAX_SIZE)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw: %lld vectors exceed the limit %lld",
                       (long long)cap, XMC_HNSW_MAX_SIZE);
    if (cap > h->cap) {
        /* Allocate all new arrays first so a failure leaves h unchanged. */
        void *vec = NULL, *level = NULL, *links0 = NULL, *up_off = NULL, *locks = NULL;
        int ok = grow(&vec, 0, cap, (size_t)h->stride * h->elem) && grow(&level, 0, cap, 1) &&
                 grow(&links0, 0, cap, sizeof(int32_t) * (size_t)(1 + h->M0)) &&
                 grow(&up_off, 0, cap, sizeof(int64_t)) && grow(&locks, 0, cap, 1);
        if (!ok) {
            xmc_free(vec);
            xmc_free(level);
            xmc_free(links0);
            xmc_free(up_off);
            xmc_free(locks);
            return XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                           "hnsw: out of memory growing to %lld vectors (~%zu MB)",
                           (long long)cap,
                           (size_t)cap * ((size_t)h->stride * h->elem + 4u * (1u + h->M0) + 10u) >>
                               20);
        }
        if (h->n > 0) {
            memcpy(vec, h->vec, (size_t)h->n * (size_t)h->stride * h->elem);
            memcpy(level, h->level, (size_t)h->n);
            memcpy(links0, h->links0, (size_t)h->n * sizeof(int32_t) * (size_t)(1 + h->M0));
            memcpy(up_off, h->up_off, (size_t)h->n * sizeof(int64_t));
        }
        memset(locks, 0, (size_t)cap);
        xmc_free(h->vec);
        xmc_free(h->level);
        xmc_free(h->links0);
        xmc_free(h->up_off);
        xmc_free((void *)h->locks);
        h->vec = vec;
        h->level = level;
        h->links0 = links0;
        h->up_off = up_off;
        h->locks = locks;
        h->cap = cap;
    }
    if (up_cap > h->up_cap) {
        void *up = (void *)h->up;
        if (!grow(&up, h->up_words, up_cap, sizeof(int32_t)))
            return XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                           "hnsw: out of memory growing upper layers to %lld words",
                           (long long)up_cap);
        h->up = up;
        h->up_cap = up_cap;
    }
    return XMC_OK;
}

int hnsw_materialize(xmc_hnsw *h, xmc_error *err)
{
    if (!h->map)
        return XMC_OK;
    /* Point at the mapping as if it were a heap copy of size n, grow into
     * fresh heap arrays, then drop the mapping. */
    xmc_hnsw tmp = *h;
    h->vec = NULL;
    h->level = NULL;
    h->links0 = NULL;
    h->up_off = NULL;
    h->up = NULL;
    h->locks = NULL;
    h->cap = 0;
    h->up_cap = 0;
    int64_t n = h->n;
    int64_t upw = h->up_words;
    h->n = 0;
    h->up_words = 0;
    int rc = hnsw_reserve(h, n > 0 ? n : 1, upw > 0 ? upw : 1, err);
    if (rc != XMC_OK) {
        *h = tmp;
        return rc;
    }
    memcpy(h->vec, tmp.vec, (size_t)n * (size_t)h->stride * h->elem);
    memcpy(h->level, tmp.level, (size_t)n);
    memcpy(h->links0, tmp.links0, (size_t)n * sizeof(int32_t) * (size_t)(1 + h->M0));
    memcpy(h->up_off, tmp.up_off, (size_t)n * sizeof(int64_t));
    if (upw > 0)
        memcpy(h->up, tmp.up, (size_t)upw * sizeof(int32_t));
    h->n = n;
    h->up_words = upw;
    hnsw_unmap(h->map, h->map_len);
    h->map = NULL;
    h->map_len = 0;
    return XMC_OK;
}

/* ---- scratch pool */

static void scratch_free(hnsw_scratch *s)
{
    if (!s)
        return;
    xmc_free(s->visited);
    xmc_free(s->pool);
    xmc_free(s->ep);
    xmc_free(s->sel);
    xmc_free(s->nbr);
    xmc_free(s->chosen);
    xmc_free(s->q);
    xmc_free(s);
}

static size_t scratch_size(const hnsw_scratch *s, const xmc_hnsw *h)
{
    return sizeof *s + (size_t)s->vis_cap * 2 + (size_t)s->pool_cap * 2 * sizeof(hnsw_cand) +
           (size_t)(h->M0 + 2) * (sizeof(hnsw_cand) + 4) + (size_t)h->stride * h->elem +
           sizeof(hnsw_cand) * (size_t)(HNSW_MAX_LEVEL + 1) * (size_t)h->M;
}

/* Make s fit an index of h->n nodes and lists of ef; 0 on allocation failure. */
static int scratch_fit(hnsw_scratch *s, const xmc_hnsw *h, int ef)
{
    if (s->vis_cap < h->n) {
        int64_t cap = h->n + h->n / 4 + 64;
        uint16_t *v = xmc_calloc((size_t)cap, sizeof *v);
        if (!v)
            return 0;
        xmc_free(s->visited);
        s->visited = v;
        s->vis_cap = cap;
        s->epoch = 0;
    }
    if (s->pool_cap < ef + 1) {
        hnsw_cand *p = xmc_malloc(sizeof *p * (size_t)(ef + 1));
        hnsw_cand *e = xmc_malloc(sizeof *e * (size_t)(ef + 1));
        if (!p || !e) {
            xmc_free(p);
            xmc_free(e);
            return 0;
        }
        xmc_free(s->pool);
        xmc_free(s->ep);
        s->pool = p;
        s->ep = e;
        s->pool_cap = ef + 1;
    }
    return 1;
}

static hnsw_scratch *scratch_new(const xmc_hnsw *h)
{
    hnsw_scratch *s = xmc_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->sel = xmc_malloc(sizeof *s->sel * (size_t)(h->M0 + 2));
    s->nbr = xmc_malloc(sizeof *s->nbr * (size_t)(h->M0 + 2));
    s->chosen = xmc_malloc(sizeof *s->chosen * (size_t)(HNSW_MAX_LEVEL + 1) * (size_t)h->M);
    s->q = xmc_malloc((size_t)h->stride * h->elem);
    if (!s->sel || !s->nbr || !s->chosen || !s->q) {
        scratch_free(s);
        return NULL;
    }
    return s;
}

static void pool_lock(xmc_hnsw *h)
{
    int expect = 0;
    while (!atomic_compare_exchange_weak_explicit(&h->scratch_lock, &expect, 1,
                                                  memory_order_acquire, memory_order_relaxed)) {
        expect = 0;
        sched_yield();
    }
}

int hnsw_scratch_acquire(const xmc_hnsw *hc, int n, int ef, hnsw_scratch **out, xmc_error *err)
{
    /* The pool is a cache inside a logically const index: searches share it. */
    xmc_hnsw *h = (xmc_hnsw *)hc;
    for (int i = 0; i < n; i++) {
        pool_lock(h);
        hnsw_scratch *s = h->scratch;
        if (s)
            h->scratch = s->next;
        atomic_store_explicit(&h->scratch_lock, 0, memory_order_release);
        if (!s)
            s = scratch_new(h);
        size_t before = s ? scratch_size(s, h) : 0;
        if (!s || !scratch_fit(s, h, ef)) {
            if (s) {
                atomic_fetch_sub(&h->scratch_bytes, before);
                scratch_free(s);
            }
            hnsw_scratch_release(h, i, out);
            return XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                           "hnsw: out of memory for search scratch (%lld nodes, ef %d)",
                           (long long)h->n, ef);
        }
        atomic_fetch_add(&h->scratch_bytes, scratch_size(s, h) - before);
        s->next = NULL;
        out[i] = s;
    }
    return XMC_OK;
}

void hnsw_scratch_release(const xmc_hnsw *hc, int n, hnsw_scratch **s)
{
    xmc_hnsw *h = (xmc_hnsw *)hc;
    pool_lock(h);
    for (int i = 0; i < n; i++) {
        s[i]->next = h->scratch;
        h->scratch = s[i];
        s[i] = NULL;
    }
    atomic_store_explicit(&h->scratch_lock, 0, memory_order_release);
}

void hnsw_scratch_free_all(xmc_hnsw *h)
{
    while (h->scratch) {
        hnsw_scratch *s = h->scratch;
        h->scratch = s->next;
        scratch_free(s);
    }
    h->scratch_bytes = 0;
}

/* ---- accessors */

int64_t xmc_hnsw_size(const xmc_hnsw *h) { return h ? h->n : 0; }
int64_t xmc_hnsw_dim(const xmc_hnsw *h) { return h ? h->dim : 0; }
int xmc_hnsw_levels(const xmc_hnsw *h) { return h && h->entry >= 0 ? h->max_level + 1 : 0; }

void xmc_hnsw_get_params(const xmc_hnsw *h, xmc_hnsw_params *p)
{
    p->metric = h->metric;
    p->storage = h->storage;
    p->M = h->M;
    p->ef_construction = h->ef_construction;
    p->ef_search = h->ef_search;
    p->seed = h->seed;
}

void xmc_hnsw_set_ef_search(xmc_hnsw *h, int ef)
{
    if (ef < XMC_HNSW_MIN_EF_SEARCH)
        ef = XMC_HNSW_MIN_EF_SEARCH;
    if (ef > XMC_HNSW_MAX_EF_SEARCH)
        ef = XMC_HNSW_MAX_EF_SEARCH;
    h->ef_search = ef;
}

size_t xmc_hnsw_bytes(const xmc_hnsw *h)
{
    if (!h)
        return 0;
    size_t b = sizeof *h + atomic_load(&h->scratch_bytes);
    if (h->map)
        return b + h->map_len + (h->locks ? (size_t)h->cap : 0);
    b += (size_t)h->cap * ((size_t)h->stride * h->elem + 1 + 4u * (size_t)(1 + h->M0) + 8 + 1);
    b += (size_t)h->up_cap * 4;
    return b;
}
