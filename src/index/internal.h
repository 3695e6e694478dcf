/* Internals of the HNSW index (src/index/hnsw_*.c), shared by the build,
 * insert, search and file code, as pgvector's src/hnsw.h is.
 *
 * Memory layout: flat arrays, so a saved file maps straight back:
 *   vec     (cap, stride) fp32 or bf16   rows zero-padded to 64 bytes
 *   level   (cap) uint8                  the node's top layer l
 *   links0  (cap, 1 + M0) int32          layer 0: count, then neighbours
 *   up_off  (cap) int64                  word offset of the node's layer-1
 *                                        list in `up`, or -1 when l = 0
 *   up      (up_words) int32             layers 1..l, each (1 + M) words
 *   locks   (cap) uint8                  per-node spinlocks (not saved)
 * Bytes per node ~ 4 stride + 4 (1 + 2M) + 9 + 1 + 4 (1 + M) / (M - 1).
 *
 * Locks (the trade-off pgvector discusses in hnswinsert.c): one global lock
 * guards `entry` and `max_level`; one spinlock per node guards that node's
 * neighbour lists on every layer. Readers copy a list under its lock and
 * compute distances outside it, so a lock is held for ~M0 word copies (or,
 * when shrinking a full list, for one Algorithm 4 over M0 + 1 candidates).
 * A 1-byte spinlock per node costs 1 MB per million nodes where a mutex
 * would cost 40 MB, and contention is rare (two inserts touching one node at
 * the same instant). A node whose level exceeds the current maximum keeps
 * the global lock for its whole insert, as hnswlib does: that happens
 * O(log n) times, so serialising it costs nothing and keeps the entry point
 * consistent. After build, searches read without locks (no writers:
 * xmc_hnsw_add is documented as exclusive).
 */
#ifndef XMC_INDEX_INTERNAL_H
#define XMC_INDEX_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "kernels/distance.h"
#include "xmc/hnsw.h"

#define HNSW_MAGIC "XMCHNSW\0"
#define HNSW_VERSION 1u
#define HNSW_MAX_LEVEL 30

/* A candidate: internal distance (smaller is closer; -dot for IP/cosine)
 * and node id; `checked` marks candidates already expanded. */
typedef struct hnsw_cand {
    float d;
    int32_t id;
    int32_t checked;
} hnsw_cand;

/* Per-thread scratch, pooled in the index so searches allocate nothing per
 * query: an epoch-stamped visited set (hnswlib's VisitedList: bump the
 * epoch instead of clearing n entries) and candidate buffers. */
typedef struct hnsw_scratch {
    uint16_t *visited; /* (vis_cap) */
    int64_t vis_cap;
    uint16_t epoch;
    hnsw_cand *pool; /* (pool_cap): C and W of Algorithm 2, sorted */
    hnsw_cand *ep;   /* (pool_cap): entry points for the next layer */
    int pool_cap;
    hnsw_cand *sel;  /* (M0 + 2): neighbour selection */
    int32_t *nbr;    /* (M0 + 2): a copied neighbour list */
    hnsw_cand *chosen; /* (HNSW_MAX_LEVEL + 1, M): an insert's picks per layer */
    void *q;         /* (stride) the query in storage format */
    struct hnsw_scratch *next;
} hnsw_scratch;

struct xmc_hnsw {
    int64_t n, cap, dim, stride; /* stride: elements per stored row */
    int metric, storage, M, M0, ef_construction, ef_search;
    uint64_t seed;
    double mL; /* level normalisation 1 / ln M (paper section 4.1) */

    int32_t entry; /* enter point ep, -1 when empty; global lock */
    int max_level; /* L, top layer; global lock */

    void *vec;       /* (cap, stride) */
    uint8_t *level;  /* (cap) */
    int32_t *links0; /* (cap, 1 + M0) */
    int64_t *up_off; /* (cap) */
    int32_t *up;     /* (up_cap) words, up_words used */
    int64_t up_words, up_cap;
    _Atomic uint8_t *locks; /* (cap), NULL for a mapped index */

    xmc_dist_fn dist;   /* kernel for metric + storage */
    int neg;            /* internal distance = -kernel (IP, cosine) */
    size_t elem;        /* bytes per stored element: 4 or 2 */

    void *map; /* mmap of the file, or NULL (arrays on the heap) */
    size_t map_len;

    _Atomic int glock;         /* the global lock (spin) */
    _Atomic int scratch_lock;  /* guards `scratch` */
    hnsw_scratch *scratch;     /* free list */
    _Atomic size_t scratch_bytes;
};

/* ---- hnsw_utils.c */
static inline void hnsw_lock(_Atomic uint8_t *l)
{
    while (atomic_exchange_explicit(l, 1, memory_order_acquire))
        while (atomic_load_explicit(l, memory_order_relaxed))
            __builtin_ia32_pause();
}
static inline void hnsw_unlock(_Atomic uint8_t *l)
{
    atomic_store_explicit(l, 0, memory_order_release);
}
void hnsw_glock(xmc_hnsw *h);
void hnsw_gunlock(xmc_hnsw *h);

static inline const void *hnsw_vec(const xmc_hnsw *h, int64_t id)
{
    return (const char *)h->vec + (size_t)id * (size_t)h->stride * h->elem;
}
/* Neighbour list of node id on layer lc: [count, ids...]. */
static inline int32_t *hnsw_links(const xmc_hnsw *h, int64_t id, int lc)
{
    if (lc == 0)
        return h->links0 + (size_t)id * (size_t)(1 + h->M0);
    return h->up + h->up_off[id] + (int64_t)(lc - 1) * (1 + h->M);
}
static inline float hnsw_dist(const xmc_hnsw *h, const void *q, int64_t id)
{
    float s = h->dist(q, hnsw_vec(h, id), (size_t)h->stride);
    return h->neg ? -s : s;
}
/* Internal distance -> the distance reported to users (see hnsw.h). */
static inline float hnsw_user_dist(const xmc_hnsw *h, float d)
{
    return h->neg ? 1.0f + d : d;
}

int hnsw_check_params(const xmc_hnsw_params *p, int64_t dim, xmc_error *err);
/* Pick the kernel for h->metric / h->storage and set dist, neg, elem. */
void hnsw_set_kernel(xmc_hnsw *h);
/* The level of node id: floor(-ln(U) mL) (paper eq. in Algorithm 1, line 4)
 * from RNG stream (seed, id), so levels do not depend on thread count. */
int hnsw_random_level(const xmc_hnsw *h, int64_t id);
/* Store vector x (dim floats) as row id: normalised for cosine, rounded for
 * bf16, zero-padded to stride. */
void hnsw_store_vector(xmc_hnsw *h, int64_t id, const float *x);
/* The query q in storage format into buf (stride elements). */
void hnsw_prepare_query(const xmc_hnsw *h, const float *q, void *buf);
/* Grow arrays to hold `cap` nodes and `up_cap` upper-layer words. */
int hnsw_reserve(xmc_hnsw *h, int64_t cap, int64_t up_cap, xmc_error *err);
/* Copy a mapped index to the heap so it can grow. */
int hnsw_materialize(xmc_hnsw *h, xmc_error *err);

/* Scratch pool: take `n` scratches sized for the index now and for
 * candidate lists of `ef`; give them back with hnsw_scratch_release. */
int hnsw_scratch_acquire(const xmc_hnsw *h, int n, int ef, hnsw_scratch **out, xmc_error *err);
void hnsw_scratch_release(const xmc_hnsw *h, int n, hnsw_scratch **s);
void hnsw_scratch_free_all(xmc_hnsw *h);

/* ---- hnsw_io.c */
void hnsw_unmap(void *map, size_t len);

/* ---- hnsw_search.c */
/* Algorithm 2 (SEARCH-LAYER) from the `nep` entry points in s->ep: leaves
 * the ef closest found in s->pool, sorted, and returns their count. `locked`:
 * copy neighbour lists under the node locks (during inserts). */
int hnsw_search_layer(const xmc_hnsw *h, hnsw_scratch *s, const void *q, int nep, int ef,
                      int lc, int locked);
/* Greedy descent with ef = 1 on layer lc (Algorithm 5 lines 4-6). */
hnsw_cand hnsw_greedy(const xmc_hnsw *h, const void *q, hnsw_cand cur, int lc, int locked,
                      int32_t *nbr);

/* ---- hnsw_insert.c */
/* Algorithm 1 (INSERT) for node q, whose vector, level and empty lists are
 * already in place. */
void hnsw_insert(xmc_hnsw *h, hnsw_scratch *s, int32_t q);

#endif
