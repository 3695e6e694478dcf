/* Balanced hierarchical k-means: recursive balanced spherical 2-means
 * (PECOS "hierarchical_kmeans" with spherical balanced 2-means, as used for
 * label trees in XR-Linear and for query batches in NGAME / UniDEC).
 *
 * One split of a node of s points (rows scaled by 1/|x| on the fly):
 *   c0, c1 <- two distinct random points of the node (stream seed, node id)
 *   repeat: key(x) = <x, c0> - <x, c1>; the ceil(s/2) largest keys go left
 *           (Hoare's FIND: linear time; keys tie-break on the point id, so
 *           the halves are unique); c0, c1 <- normalised sums of each half;
 *           stop when J = |S0| + |S1| (= sum <x, c(x)> for the new
 *           centroids) improves by <= tol J, or after max_iter passes.
 * Levels are processed top-down; every node of a level has size floor or
 * ceil of n / 2^t, so leaves differ by at most one point.
 *
 * Threads and determinism: nodes above BIG points run one at a time with
 * keys computed over points in parallel and centroid sums taken in NCH
 * fixed chunks added in order; smaller nodes run one per thread, summing
 * in one chunk. Which arithmetic a node gets depends only on its size, so
 * the output never depends on the thread count.
 *
 * Memory: perm, assign, offsets (n int64 + n int32 + 2^depth), BIG-mode
 * scratch (n key pairs + NCH x 2 x dim partial sums) and per thread a
 * BIG-pair array and four dim-sized vectors (sparse: + a dim-byte marker,
 * so small nodes only touch the centroid columns their rows use).
 */
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/distance.h"
#include "xmc/cluster.h"

#define BIG 16384
#define NCH 16

typedef struct pair {
    float key;
    int64_t id;
} pair;

typedef struct source {
    const float *x; /* dense (n, dim), or NULL */
    const xmc_csr *csr;
    int64_t dim;
    float *inv; /* (n) 1 / |x_i|, 0 for zero rows */
    xmc_dist_fn dot;
} source;

typedef struct scratch {
    pair *pr;          /* (cap) */
    float *c0, *c1, *w; /* (dim) */
    float *part;       /* BIG mode: (NCH, 2, dim) */
    uint8_t *mark;     /* sparse small mode: (dim) */
    int32_t *touched;  /* sparse small mode: (dim) */
    int64_t ntouched;
} scratch;

void xmc_cluster_params_default(xmc_cluster_params *p)
{
    p->max_leaf = XMC_CLUSTER_DEFAULT_MAX_LEAF;
    p->max_iter = XMC_CLUSTER_DEFAULT_MAX_ITER;
    p->tol = XMC_CLUSTER_DEFAULT_TOL;
    p->seed = 1;
}

static inline float row_dot(const source *s, int64_t i, const float *w)
{
    float d;
    if (s->csr) {
        const xmc_csr *m = s->csr;
        d = 0.0f;
        for (int64_t j = m->indptr[i]; j < m->indptr[i + 1]; j++)
            d += (m->values ? m->values[j] : 1.0f) * w[m->indices[j]];
    } else {
        d = s->dot(s->x + i * s->dim, w, (size_t)s->dim);
    }
    return d * s->inv[i];
}

/* acc += x_i / |x_i|; in sparse small mode also records new columns. */
static inline void row_add(const source *s, int64_t i, float *acc, scratch *t)
{
    float sc = s->inv[i];
    if (s->csr) {
        const xmc_csr *m = s->csr;
        for (int64_t j = m->indptr[i]; j < m->indptr[i + 1]; j++) {
            int32_t c = m->indices[j];
            if (t && !t->mark[c]) {
                t->mark[c] = 1;
                t->touched[t->ntouched++] = c;
            }
            acc[c] += sc * (m->values ? m->values[j] : 1.0f);
        }
    } else {
        const float *x = s->x + i * s->dim;
        for (int64_t j = 0; j < s->dim; j++)
            acc[j] += sc * x[j];
    }
}

static inline int better(const pair *a, const pair *b)
{
    return a->key > b->key || (a->key == b->key && a->id < b->id);
}

/* Reorder a[0..n) so its h best (largest key, then smallest id) come
 * first: Hoare's FIND with a median-of-three pivot. Keys with ids form a
 * total order, so the split is unique whatever the input order. */
static void select_top(pair *a, int64_t n, int64_t h)
{
    int64_t lo = 0, hi = n - 1, k = h - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        pair x = a[lo], y = a[mid], z = a[hi], pv;
        if (better(&x, &y))
            pv = better(&y, &z) ? y : (better(&x, &z) ? z : x);
        else
            pv = better(&x, &z) ? x : (better(&y, &z) ? z : y);
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (better(&a[i], &pv))
                i++;
            while (better(&pv, &a[j]))
                j--;
            if (i <= j) {
                pair t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
}

/* Normalise v over its used columns; returns the norm before. */
static double normalise(float *v, int64_t dim, const scratch *t, int sparse_small)
{
    double ss = 0;
    if (sparse_small) {
        for (int64_t k = 0; k < t->ntouched; k++)
            ss += (double)v[t->touched[k]] * v[t->touched[k]];
    } else {
        for (int64_t j = 0; j < dim; j++)
            ss += (double)v[j] * v[j];
    }
    double nrm = sqrt(ss);
    float sc = nrm > 0 ? (float)(1.0 / nrm) : 0.0f;
    if (sparse_small) {
        for (int64_t k = 0; k < t->ntouched; k++)
            v[t->touched[k]] *= sc;
    } else {
        for (int64_t j = 0; j < dim; j++)
            v[j] *= sc;
    }
    return nrm;
}

static void clear_centroids(scratch *t, int64_t dim, int sparse_small)
{
    if (sparse_small) {
        for (int64_t k = 0; k < t->ntouched; k++) {
            int32_t c = t->touched[k];
            t->c0[c] = t->c1[c] = 0.0f;
            t->mark[c] = 0;
        }
        t->ntouched = 0;
    } else {
        memset(t->c0, 0, sizeof(float) * (size_t)dim);
        memset(t->c1, 0, sizeof(float) * (size_t)dim);
    }
}

/* Split perm[0..s) into its best ceil(s/2) (left) and the rest, in place. */
static void split_node(const source *S, int64_t *perm, int64_t s, const xmc_cluster_params *p,
                       uint64_t stream, scratch *t)
{
    if (s < 2)
        return;
    const int big = s > BIG, sparse_small = S->csr && !big;
    const int64_t h = (s + 1) / 2, dim = S->dim;
    xmc_rng r;
    xmc_rng_seed(&r, p->seed, stream);
    int64_t a = (int64_t)xmc_rng_below(&r, (uint64_t)s);
    int64_t b = (int64_t)xmc_rng_below(&r, (uint64_t)(s - 1));
    b += b >= a;
    clear_centroids(t, dim, sparse_small);
    row_add(S, perm[a], t->c0, sparse_small ? t : NULL);
    row_add(S, perm[b], t->c1, sparse_small ? t : NULL);
    normalise(t->c0, dim, t, sparse_small);
    normalise(t->c1, dim, t, sparse_small);
    double prev = -1.0;
    for (int it = 0; it < p->max_iter; it++) {
        /* Keys: dense data use one dot with w = c0 - c1. */
        const float *w = NULL;
        if (!S->csr) {
            for (int64_t j = 0; j < dim; j++)
                t->w[j] = t->c0[j] - t->c1[j];
            w = t->w;
        }
#pragma omp parallel for schedule(static) if (big)
        for (int64_t i = 0; i < s; i++) {
            int64_t id = perm[i];
            float key = w ? row_dot(S, id, w) : row_dot(S, id, t->c0) - row_dot(S, id, t->c1);
            t->pr[i] = (pair){key, id};
        }
        select_top(t->pr, s, h);
        for (int64_t i = 0; i < s; i++)
            perm[i] = t->pr[i].id;
        /* New centroids: normalised sums of each half. */
        clear_centroids(t, dim, sparse_small);
        if (big) {
#pragma omp parallel for schedule(static)
            for (int ch = 0; ch < NCH; ch++) {
                float *p0 = t->part + (size_t)ch * 2 * (size_t)dim, *p1 = p0 + dim;
                memset(p0, 0, sizeof(float) * 2 * (size_t)dim);
                for (int64_t i = s * ch / NCH; i < s * (ch + 1) / NCH; i++)
                    row_add(S, perm[i], i < h ? p0 : p1, NULL);
            }
            for (int ch = 0; ch < NCH; ch++) {
                const float *p0 = t->part + (size_t)ch * 2 * (size_t)dim, *p1 = p0 + dim;
                for (int64_t j = 0; j < dim; j++) {
                    t->c0[j] += p0[j];
                    t->c1[j] += p1[j];
                }
            }
        } else {
            for (int64_t i = 0; i < s; i++)
                row_add(S, perm[i], i < h ? t->c0 : t->c1, sparse_small ? t : NULL);
        }
        double J = normalise(t->c0, dim, t, sparse_small) + normalise(t->c1, dim, t, sparse_small);
        if (J - prev <= p->tol * J)
            break;
        prev = J;
    }
}

static void scratch_free(scratch *t)
{
    xmc_free(t->pr);
    xmc_free(t->c0);
    xmc_free(t->c1);
    xmc_free(t->w);
    xmc_free(t->part);
    xmc_free(t->mark);
    xmc_free(t->touched);
    memset(t, 0, sizeof *t);
}

static int scratch_init(scratch *t, int64_t cap, int64_t dim, int with_part, int sparse)
{
    memset(t, 0, sizeof *t);
    t->pr = xmc_malloc(sizeof(pair) * (size_t)(cap > 0 ? cap : 1));
    t->c0 = xmc_calloc((size_t)dim, sizeof(float));
    t->c1 = xmc_calloc((size_t)dim, sizeof(float));
    t->w = xmc_malloc(sizeof(float) * (size_t)dim);
    if (with_part)
        t->part = xmc_malloc(sizeof(float) * NCH * 2 * (size_t)dim);
    if (sparse) {
        t->mark = xmc_calloc((size_t)dim, 1);
        t->touched = xmc_malloc(sizeof(int32_t) * (size_t)dim);
    }
    if (!t->pr || !t->c0 || !t->c1 || !t->w || (with_part && !t->part) ||
        (sparse && (!t->mark || !t->touched))) {
        scratch_free(t);
        return 0;
    }
    return 1;
}

const int64_t *xmc_clusters_level(const xmc_clusters *c, int t)
{
    if (!c || t < 0 || t > c->depth)
        return NULL;
    /* Level t starts after levels 0..t-1: sum (2^u + 1) = 2^t - 1 + t. */
    return c->tree + ((int64_t)1 << t) - 1 + t;
}

void xmc_clusters_free(xmc_clusters *c)
{
    if (!c)
        return;
    xmc_free(c->perm);
    xmc_free(c->assign);
    xmc_free(c->tree);
    xmc_free(c);
}

static int run(const source *S, int64_t n, const xmc_cluster_params *pin, xmc_clusters **out,
               xmc_error *err)
{
    xmc_cluster_params p;
    if (pin)
        p = *pin;
    else
        xmc_cluster_params_default(&p);
    if (p.max_leaf < 1 || p.max_iter < 1 || p.max_iter > XMC_CLUSTER_MAX_MAX_ITER ||
        !(p.tol >= 0))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "cluster: need max_leaf >= 1, 1 <= max_iter <= %d, tol >= 0 "
                       "(got %lld, %d, %g)",
                       XMC_CLUSTER_MAX_MAX_ITER, (long long)p.max_leaf, p.max_iter, p.tol);
    int depth = 0;
    while (depth < XMC_CLUSTER_MAX_DEPTH && ((n + ((int64_t)1 << depth) - 1) >> depth) > p.max_leaf)
        depth++;
    if (depth > 30)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "cluster: %lld points into clusters of %lld needs 2^%d clusters (max 2^30)",
                       (long long)n, (long long)p.max_leaf, depth);
    int rc = XMC_OK;
    int nt = xmc_get_threads();
    if (nt < 1)
        nt = 1;
    scratch big = {0}, *ts = NULL;
    xmc_clusters *c = xmc_calloc(1, sizeof *c);
    int64_t tree_len = ((int64_t)1 << (depth + 1)) - 1 + depth + 1;
    if (!c)
        goto oom;
    c->n = n;
    c->depth = depth;
    c->n_clusters = (int64_t)1 << depth;
    c->perm = xmc_malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    c->assign = xmc_malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    c->tree = xmc_malloc(sizeof(int64_t) * (size_t)tree_len);
    ts = xmc_calloc((size_t)nt, sizeof *ts);
    if (!c->perm || !c->assign || !c->tree || !ts)
        goto oom;
    if (n > BIG && !scratch_init(&big, n, S->dim, 1, S->csr != NULL))
        goto oom;
    for (int i = 0; i < nt; i++)
        if (!scratch_init(&ts[i], n < BIG ? n : BIG, S->dim, 0, S->csr != NULL))
            goto oom;
    for (int64_t i = 0; i < n; i++)
        c->perm[i] = i;
    /* Level offsets: children of [lo, hi) are [lo, mid) and [mid, hi). */
    for (int t = 0; t <= depth; t++) {
        int64_t *o = c->tree + ((int64_t)1 << t) - 1 + t;
        if (t == 0) {
            o[0] = 0;
            o[1] = n;
            continue;
        }
        const int64_t *up = o - ((int64_t)1 << (t - 1)) - 1;
        for (int64_t j = 0; j < ((int64_t)1 << (t - 1)); j++) {
            o[2 * j] = up[j];
            o[2 * j + 1] = up[j] + (up[j + 1] - up[j] + 1) / 2;
        }
        o[(int64_t)1 << t] = n;
    }
    c->offsets = c->tree + ((int64_t)1 << depth) - 1 + depth;

    xmc_progress prog;
    xmc_progress_start(&prog, "balanced k-means", "levels", depth);
    for (int t = 0; t < depth; t++) {
        const int64_t *o = xmc_clusters_level(c, t);
        int64_t nodes = (int64_t)1 << t;
        for (int64_t j = 0; j < nodes; j++) /* big nodes: one at a time, points in parallel */
            if (o[j + 1] - o[j] > BIG)
                split_node(S, c->perm + o[j], o[j + 1] - o[j], &p, (uint64_t)nodes + (uint64_t)j,
                           &big);
#pragma omp parallel num_threads(nt)
        {
#ifdef _OPENMP
            scratch *mine = &ts[omp_get_thread_num()];
#else
            scratch *mine = &ts[0];
#endif
#pragma omp for schedule(dynamic, 1)
            for (int64_t j = 0; j < nodes; j++)
                if (o[j + 1] - o[j] <= BIG)
                    split_node(S, c->perm + o[j], o[j + 1] - o[j], &p,
                               (uint64_t)nodes + (uint64_t)j, mine);
        }
        xmc_progress_update(&prog, t + 1, NULL);
    }
    xmc_progress_finish(&prog, NULL);
    for (int64_t k = 0; k < c->n_clusters; k++)
        for (int64_t i = c->offsets[k]; i < c->offsets[k + 1]; i++)
            c->assign[c->perm[i]] = (int32_t)k;
    *out = c;
    c = NULL;
    goto done;
oom:
    rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "cluster: out of memory for %lld points of dim %lld",
                 (long long)n, (long long)S->dim);
done:
    xmc_clusters_free(c);
    scratch_free(&big);
    if (ts)
        for (int i = 0; i < nt; i++)
            scratch_free(&ts[i]);
    xmc_free(ts);
    return rc;
}

int xmc_cluster_balanced(const float *x, int64_t n, int64_t dim, const xmc_cluster_params *p,
                         xmc_clusters **out, xmc_error *err)
{
    if (!out)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "cluster: NULL output");
    *out = NULL;
    if (n < 0 || dim < 1 || (!x && n > 0))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "cluster: need n >= 0, dim >= 1 and data (got %lld x %lld)",
                       (long long)n, (long long)dim);
    float *inv = xmc_malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!inv)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "cluster: out of memory");
    int64_t bad = -1;
#pragma omp parallel for schedule(static) reduction(max : bad)
    for (int64_t i = 0; i < n; i++) {
        double ss = 0;
        for (int64_t j = 0; j < dim; j++)
            ss += (double)x[i * dim + j] * x[i * dim + j];
        if (!isfinite(ss))
            bad = bad > i ? bad : i;
        inv[i] = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    }
    int rc;
    if (bad >= 0) {
        rc = XMC_ERR(err, XMC_EINVAL, NULL, 0, "cluster: row %lld has a non-finite value",
                     (long long)bad);
    } else {
        source S = {x, NULL, dim, inv, xmc_dist_kernels_best()->dot_f32};
        rc = run(&S, n, p, out, err);
    }
    xmc_free(inv);
    return rc;
}

int xmc_cluster_balanced_csr(const xmc_csr *x, const xmc_cluster_params *p, xmc_clusters **out,
                             xmc_error *err)
{
    if (!out)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "cluster: NULL output");
    *out = NULL;
    if (!x || x->nrows < 0 || x->ncols < 1 || x->ncols > 0x7fffffff || !x->indptr)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "cluster: need a CSR matrix with >= 1 column");
    int64_t n = x->nrows;
    float *inv = xmc_malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!inv)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "cluster: out of memory");
    int64_t bad = -1;
#pragma omp parallel for schedule(static) reduction(max : bad)
    for (int64_t i = 0; i < n; i++) {
        double ss = 0;
        for (int64_t j = x->indptr[i]; j < x->indptr[i + 1]; j++) {
            double v = x->values ? x->values[j] : 1.0;
            ss += v * v;
            if (x->indices[j] < 0 || x->indices[j] >= x->ncols)
                ss = NAN;
        }
        if (!isfinite(ss) || x->indptr[i + 1] < x->indptr[i])
            bad = bad > i ? bad : i;
        inv[i] = ss > 0 && isfinite(ss) ? (float)(1.0 / sqrt(ss)) : 0.0f;
    }
    int rc;
    if (bad >= 0) {
        rc = XMC_ERR(err, XMC_EINVAL, NULL, 0,
                     "cluster: row %lld has a non-finite value or a column out of range",
                     (long long)bad);
    } else {
        source S = {NULL, x, x->ncols, inv, NULL};
        rc = run(&S, n, p, out, err);
    }
    xmc_free(inv);
    return rc;
}
