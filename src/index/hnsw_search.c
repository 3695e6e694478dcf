/* HNSW search: SEARCH-LAYER (Algorithm 2), the greedy descent of
 * K-NN-SEARCH (Algorithm 5) and the batch k-NN entry point.
 *
 * Algorithm 2 keeps a candidate set C (min-heap) and the found set W
 * (max-heap of size ef). A candidate farther than W's worst is never
 * expanded, so C can be cut to W's members: we keep one array of at most ef
 * candidates sorted by distance, each flagged when expanded, and expand the
 * closest unexpanded one until none is left (the "pool" form of NSG, Fu et
 * al. 2019, and DiskANN). Same result as the two heaps, with no heap
 * bookkeeping and a memmove of at most ef entries per insertion.
 *
 * Memory: nothing is allocated per query. Each thread takes a scratch from
 * the index's pool for the whole batch: an epoch-stamped visited array
 * (uint16 per node; a new query bumps the epoch, and the array is cleared
 * only when the epoch wraps, every 65,535 queries — hnswlib's VisitedList)
 * and two candidate arrays of ef + 1.
 *
 * Locks: `locked` (inserts in flight) copies a node's list under its
 * spinlock and computes distances outside it; plain searches read lists
 * directly (no writers, see hnsw.h).
 */
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "index/internal.h"

/* Insert (d, id) into the sorted pool of *size <= ef entries; the worst
 * falls off when full. Returns the position, or ef when not inserted. */
static inline int pool_insert(hnsw_cand *pool, int *size, int ef, float d, int32_t id)
{
    int n = *size;
    if (n == ef && d >= pool[n - 1].d)
        return ef;
    int lo = 0, hi = n;
    while (lo < hi) { /* first position with pool[pos].d > d */
        int mid = (lo + hi) >> 1;
        if (pool[mid].d <= d)
            lo = mid + 1;
        else
            hi = mid;
    }
    int move = (n == ef ? n - 1 : n) - lo;
    if (move > 0)
        memmove(pool + lo + 1, pool + lo, (size_t)move * sizeof *pool);
    pool[lo].d = d;
    pool[lo].id = id;
    pool[lo].checked = 0;
    if (n < ef)
        *size = n + 1;
    return lo;
}

static inline void prefetch_vec(const xmc_hnsw *h, int32_t id)
{
    const char *p = hnsw_vec(h, id);
    size_t bytes = (size_t)h->stride * h->elem;
    for (size_t off = 0; off < bytes && off < 256; off += 64)
        __builtin_prefetch(p + off, 0, 3);
}

/* The neighbour list of `id` on layer lc: into buf under the node's lock
 * when inserts are in flight, else in place. Returns the count. */
static inline int get_links(const xmc_hnsw *h, int32_t id, int lc, int locked, int32_t *buf,
                            const int32_t **list)
{
    const int32_t *l = hnsw_links(h, id, lc);
    if (!locked) {
        *list = l + 1;
        return l[0];
    }
    hnsw_lock(&h->locks[id]);
    int c = l[0];
    memcpy(buf, l + 1, (size_t)c * sizeof *buf);
    hnsw_unlock(&h->locks[id]);
    *list = buf;
    return c;
}

int hnsw_search_layer(const xmc_hnsw *h, hnsw_scratch *s, const void *q, int nep, int ef,
                      int lc, int locked)
{
    if (++s->epoch == 0) {
        memset(s->visited, 0, (size_t)s->vis_cap * sizeof *s->visited);
        s->epoch = 1;
    }
    const uint16_t ep = s->epoch;
    uint16_t *vis = s->visited;
    hnsw_cand *pool = s->pool;
    int size = 0;
    for (int i = 0; i < nep; i++) {
        int32_t id = s->ep[i].id;
        if (vis[id] == ep)
            continue;
        vis[id] = ep;
        pool_insert(pool, &size, ef, s->ep[i].d, id);
    }
    int i = 0;
    while (i < size) {
        if (pool[i].checked) {
            i++;
            continue;
        }
        pool[i].checked = 1;
        const int32_t *list;
        int c = get_links(h, pool[i].id, lc, locked, s->nbr, &list);
        /* Filter unvisited neighbours first and prefetch their vectors, so
         * the memory latency of the next distances overlaps this one's. */
        int32_t *fresh = s->nbr;
        int nf = 0;
        for (int j = 0; j < c; j++) {
            int32_t e = list[j];
            if (vis[e] == ep)
                continue;
            vis[e] = ep;
            fresh[nf++] = e;
            prefetch_vec(h, e);
        }
        int nk = size;
        for (int j = 0; j < nf; j++) {
            float d = hnsw_dist(h, q, fresh[j]);
            int r = pool_insert(pool, &size, ef, d, fresh[j]);
            if (r < nk)
                nk = r;
        }
        i = nk <= i ? nk : i + 1;
    }
    return size;
}

hnsw_cand hnsw_greedy(const xmc_hnsw *h, const void *q, hnsw_cand cur, int lc, int locked,
                      int32_t *nbr)
{
    for (int changed = 1; changed;) {
        changed = 0;
        const int32_t *list;
        int c = get_links(h, cur.id, lc, locked, nbr, &list);
        for (int j = 0; j < c; j++) {
            float d = hnsw_dist(h, q, list[j]);
            if (d < cur.d) {
                cur.d = d;
                cur.id = list[j];
                changed = 1;
            }
        }
    }
    return cur;
}

/* Algorithm 5 (K-NN-SEARCH) for one query. */
static void search_one(const xmc_hnsw *h, hnsw_scratch *s, const float *q, int k, int ef,
                       int64_t *ids, float *dist)
{
    hnsw_prepare_query(h, q, s->q);
    hnsw_cand cur = {hnsw_dist(h, s->q, h->entry), h->entry, 0};
    for (int lc = h->max_level; lc >= 1; lc--)
        cur = hnsw_greedy(h, s->q, cur, lc, 0, s->nbr);
    s->ep[0] = cur;
    int size = hnsw_search_layer(h, s, s->q, 1, ef, 0, 0);
    for (int j = 0; j < k; j++) {
        if (j < size) {
            ids[j] = s->pool[j].id;
            if (dist)
                dist[j] = hnsw_user_dist(h, s->pool[j].d);
        } else {
            ids[j] = -1;
            if (dist)
                dist[j] = INFINITY;
        }
    }
}

int xmc_hnsw_search(const xmc_hnsw *h, const float *q, int64_t nq, int64_t dim, int k, int ef,
                    int64_t *ids, float *dist, xmc_error *err)
{
    if (!h || (!q && nq > 0) || (!ids && nq > 0) || nq < 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw search: NULL index, queries or output");
    if (dim != h->dim)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "hnsw search: queries have dimension %lld, the index %lld",
                       (long long)dim, (long long)h->dim);
    if (k <= 0 || k > h->n)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw search: k must be in 1..%lld (the index size), got %d",
                       (long long)h->n, k);
    if (ef <= 0)
        ef = h->ef_search;
    if (ef > XMC_HNSW_MAX_EF_SEARCH)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw search: ef must be at most %d, got %d",
                       XMC_HNSW_MAX_EF_SEARCH, ef);
    if (ef < k)
        ef = k;
    if (nq == 0)
        return XMC_OK;
    int nt = xmc_get_threads();
    if (nt < 1)
        nt = 1;
    if (nq < nt)
        nt = (int)nq;
    hnsw_scratch *sc[256];
    if (nt > 256)
        nt = 256;
    int rc = hnsw_scratch_acquire(h, nt, ef, sc, err);
    if (rc != XMC_OK)
        return rc;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
#ifdef _OPENMP
        hnsw_scratch *s = sc[omp_get_thread_num()];
#else
        hnsw_scratch *s = sc[0];
#endif
#pragma omp for schedule(dynamic, 4)
        for (int64_t i = 0; i < nq; i++)
            search_one(h, s, q + i * dim, k, ef, ids + i * k, dist ? dist + i * k : NULL);
    }
    hnsw_scratch_release(h, nt, sc);
    return XMC_OK;
}
