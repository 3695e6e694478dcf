/* xmc hnsw: approximate k-nearest-neighbour search with a Hierarchical
 * Navigable Small World graph (Malkov & Yashunin, "Efficient and robust
 * approximate nearest neighbor search using Hierarchical Navigable Small
 * World graphs", TPAMI 2018), plus exact brute-force k-NN (the oracle).
 *
 * Used to mine hard negatives (UniDEC), to serve a trained model's top-k over
 * L2-normalised classifier rows (Renee), and by `xmc bench ann`. No Debian C
 * library offers HNSW, so xmc has its own; it follows hnswlib's algorithm
 * and pgvector's file split (hnsw_build.c, _insert.c, _search.c, _io.c).
 *
 * Distances returned (smaller = closer), as hnswlib reports them:
 *   XMC_METRIC_IP      1 - <q, x>
 *   XMC_METRIC_COSINE  1 - cos(q, x)   (vectors are normalised at insert)
 *   XMC_METRIC_L2      |q - x|^2
 *
 * Ids are insertion order: the first vector added is 0, and xmc_hnsw_add
 * continues from xmc_hnsw_size().
 *
 * Threads: build, add and search run on the OpenMP pool (xmc_set_threads).
 * Searches may run concurrently with each other; xmc_hnsw_add must not run
 * concurrently with anything else on the same index (the caller serialises).
 */
#ifndef XMC_HNSW_H
#define XMC_HNSW_H

#include "xmc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum xmc_metric {
    XMC_METRIC_IP = 0,
    XMC_METRIC_COSINE = 1,
    XMC_METRIC_L2 = 2,
} xmc_metric;

typedef enum xmc_storage {
    XMC_STORE_F32 = 0,
    XMC_STORE_BF16 = 1, /* half the memory; queries are rounded to bf16 too */
} xmc_storage;

/* Tunables: DEFAULT / MIN / MAX. M is the paper's M (links per node on
 * layers >= 1); layer 0 keeps M0 = 2M (Mmax0). ef_construction must be >= M. */
#define XMC_HNSW_DEFAULT_M 16
#define XMC_HNSW_MIN_M 2
#define XMC_HNSW_MAX_M 128
#define XMC_HNSW_DEFAULT_EF_CONSTRUCTION 200
#define XMC_HNSW_MIN_EF_CONSTRUCTION 1
#define XMC_HNSW_MAX_EF_CONSTRUCTION 4096
#define XMC_HNSW_DEFAULT_EF_SEARCH 64
#define XMC_HNSW_MIN_EF_SEARCH 1
#define XMC_HNSW_MAX_EF_SEARCH 65536
#define XMC_HNSW_MAX_DIM 65536
#define XMC_HNSW_MAX_SIZE 2147483647LL /* ids are int32 inside */

typedef struct xmc_hnsw_params {
    int metric;          /* xmc_metric */
    int storage;         /* xmc_storage */
    int M;               /* links per node, layers >= 1 */
    int ef_construction; /* candidate list size while inserting */
    int ef_search;       /* default candidate list size for search */
    uint64_t seed;       /* layer draws; 1 thread => identical graph */
} xmc_hnsw_params;

void xmc_hnsw_params_default(xmc_hnsw_params *p);

typedef struct xmc_hnsw xmc_hnsw;

/* An empty index over vectors of `dim` (p NULL: defaults). Free with
 * xmc_hnsw_free. Fails with XMC_EINVAL on bad parameters. */
int xmc_hnsw_create(xmc_hnsw **out, int64_t dim, const xmc_hnsw_params *p, xmc_error *err);

/* Insert n vectors x (n, dim), row-major, as ids size()..size()+n-1,
 * multi-threaded (Algorithm 1). Works after build or load (no rebuild).
 * On failure the index keeps the vectors it had before the call. */
int xmc_hnsw_add(xmc_hnsw *h, const float *x, int64_t n, int64_t dim, xmc_error *err);

/* create + add. */
int xmc_hnsw_build(xmc_hnsw **out, const float *x, int64_t n, int64_t dim,
                   const xmc_hnsw_params *p, xmc_error *err);

/* k nearest neighbours of each of nq queries q (nq, dim): ids (nq, k) and
 * dist (nq, k) (dist may be NULL), closest first. ef <= 0 uses the index's
 * ef_search; ef < k is raised to k. Parallel over queries; no allocation per
 * query (per-thread visited sets are pooled in the index). Slots left when
 * fewer than k nodes are reachable get id -1 and dist INFINITY.
 * Errors: XMC_EINVAL for dim mismatch, k <= 0, k > size, bad ef. */
int xmc_hnsw_search(const xmc_hnsw *h, const float *q, int64_t nq, int64_t dim, int k, int ef,
                    int64_t *ids, float *dist, xmc_error *err);

/* Versioned, CRC-32-checksummed file of flat 64-byte-aligned arrays,
 * written atomically (temp + rename). */
int xmc_hnsw_save(const xmc_hnsw *h, const char *path, xmc_error *err);

enum { XMC_HNSW_LOAD_MMAP = 1 }; /* map the file read-only instead of reading it */
/* Load a saved index. With XMC_HNSW_LOAD_MMAP the arrays stay in the page
 * cache (shared between processes); a later xmc_hnsw_add copies them to the
 * heap first. Bad magic, version, checksum, sizes or truncation give
 * XMC_ECORRUPT with the path; a missing file XMC_EIO. */
int xmc_hnsw_load(xmc_hnsw **out, const char *path, int flags, xmc_error *err);

void xmc_hnsw_free(xmc_hnsw *h);

int64_t xmc_hnsw_size(const xmc_hnsw *h);
int64_t xmc_hnsw_dim(const xmc_hnsw *h);
void xmc_hnsw_get_params(const xmc_hnsw *h, xmc_hnsw_params *p);
/* Change the default ef for later searches (clamped to MIN..MAX). */
void xmc_hnsw_set_ef_search(xmc_hnsw *h, int ef);
/* Bytes held: vectors, links, locks and pooled search scratch (a mapped
 * index counts its mapping). */
size_t xmc_hnsw_bytes(const xmc_hnsw *h);
/* Number of layers (max level + 1), 0 when empty. */
int xmc_hnsw_levels(const xmc_hnsw *h);

/* Exact k-NN by brute force (OpenBLAS GEMM in blocks + per-query top-k),
 * with the distances above: the oracle for recall. base (n, dim), q (nq, dim),
 * ids (nq, k), dist (nq, k) or NULL. Ties go to the smaller id. */
int xmc_knn_exact(const float *base, int64_t n, int64_t dim, int metric, const float *q,
                  int64_t nq, int k, int64_t *ids, float *dist, xmc_error *err);

/* Mean over queries of |approx top-k ∩ exact top-k| / k: recall@k. */
double xmc_knn_recall(const int64_t *approx, const int64_t *exact, int64_t nq, int k);

#ifdef __cplusplus
}
#endif
#endif
