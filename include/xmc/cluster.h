/* xmc cluster: balanced hierarchical k-means (recursive balanced spherical
 * 2-means, as PECOS builds its label trees and NGAME/UniDEC cluster queries
 * into batches).
 *
 * Each node's points (L2-normalised) are split into two halves whose sizes
 * differ by at most one: with centroids c0, c1, every point is ranked by
 * <x, c0> - <x, c1> and the top ceil(s/2) go left; centroids are re-computed
 * as the normalised means, and this repeats until the objective
 * sum <x, c(x)> improves by less than `tol` (relative) or `max_iter` passes.
 * Splitting stops at the depth where every cluster has at most `max_leaf`
 * points; all leaves are at the same depth, so at every level cluster sizes
 * differ by at most one.
 *
 * Cost O(n d iters) per level, O(n d iters log(n / max_leaf)) in all (the
 * halves come from a linear-time selection, not a sort). Multi-threaded
 * (OpenMP) over points within big nodes and over nodes at deep levels; the
 * result depends only on the data, the parameters and the seed, never on
 * the thread count.
 */
#ifndef XMC_CLUSTER_H
#define XMC_CLUSTER_H

#include "xmc/core.h"
#include "xmc/data.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMC_CLUSTER_DEFAULT_MAX_LEAF 100
#define XMC_CLUSTER_DEFAULT_MAX_ITER 20
#define XMC_CLUSTER_MAX_MAX_ITER 1000
#define XMC_CLUSTER_DEFAULT_TOL 1e-4
#define XMC_CLUSTER_MAX_DEPTH 40

typedef struct xmc_cluster_params {
    int64_t max_leaf; /* target cluster size: split until size <= max_leaf (>= 1) */
    int max_iter;     /* 2-means passes per split (>= 1) */
    double tol;       /* relative objective improvement to stop early (>= 0) */
    uint64_t seed;    /* initial centroid draws */
} xmc_cluster_params;

void xmc_cluster_params_default(xmc_cluster_params *p);

typedef struct xmc_clusters {
    int64_t n;          /* points */
    int depth;          /* number of split levels; n_clusters = 2^depth */
    int64_t n_clusters;
    int64_t *perm;      /* (n) point ids, cluster by cluster */
    int64_t *offsets;   /* (n_clusters + 1) cluster c = perm[offsets[c] .. offsets[c+1]) */
    int32_t *assign;    /* (n) cluster of each point */
    int64_t *tree;      /* offsets of every level, see xmc_clusters_level */
} xmc_clusters;

/* Cluster n dense rows x (n, dim). Rows need not be normalised (they are
 * normalised on the fly; zero rows go anywhere). Free with
 * xmc_clusters_free. Fails with XMC_EINVAL on bad parameters or non-finite
 * values, XMC_ENOMEM. */
int xmc_cluster_balanced(const float *x, int64_t n, int64_t dim, const xmc_cluster_params *p,
                         xmc_clusters **out, xmc_error *err);

/* The same over sparse rows (e.g. PIFA label features, TF-IDF): x->nrows
 * points of dimension x->ncols; centroids are dense (2 x ncols floats per
 * node in flight). */
int xmc_cluster_balanced_csr(const xmc_csr *x, const xmc_cluster_params *p, xmc_clusters **out,
                             xmc_error *err);

/* Offsets of level t (0 = root .. depth = leaves): 2^t + 1 entries into
 * perm; node j of level t has children 2j and 2j+1 at level t + 1. NULL if t
 * is out of range. */
const int64_t *xmc_clusters_level(const xmc_clusters *c, int t);

void xmc_clusters_free(xmc_clusters *c);

#ifdef __cplusplus
}
#endif
#endif
