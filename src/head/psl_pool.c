/* Pick-some-labels pool construction (UniDEC, Kharbanda et al. WWW 2025,
 * sec. 3 / thesis ch. 2): for the queries Q_B of a batch, sample up to β
 * positives of each Y_i and n hard negatives from H_i \ Y_i; L_B is their
 * union and P_i^B every positive of i inside L_B (so a label sampled for
 * query j, positive or hard negative, that is also a positive of i counts
 * as a positive of i: the loss must never push i away from its own label).
 *
 * Order: L_B lists labels by first appearance (query 0's positives, query
 * 0's negatives, query 1's ...), so a pool depends only on (seed, step,
 * batch). Sampling without replacement uses Floyd's algorithm (k draws, no
 * scratch proportional to the row), seeded per (seed, step) stream.
 *
 * Memory (all at create, nothing per batch): M = max_batch (β + n) pool
 * slots; an open-addressing hash label -> pool column of 2^ceil(log2 2M)
 * slots for the dedup; P^B arrays of max_batch * min(M, max_row_nnz)
 * entries for each direction. Independent of L. Single-threaded: the work
 * is O(Σ_i min(|Y_i| log |L_B|, |L_B| log |Y_i|)), tiny next to a step.
 */
#include <stdlib.h>
#include <string.h>

#include "xmc/kernels.h"
#include "xmc/psl.h"

struct xmc_psl_sampler {
    xmc_psl_sampler_config cfg;
    int max_pool;
    int64_t cap_pos;     /* capacity of P^B entries */
    uint32_t hmask;      /* hash slots - 1 */
    int32_t *hkey;       /* (slots) label id, -1 empty */
    int32_t *hval;       /* (slots) pool column */
    int32_t *labels;     /* (max_pool) */
    int32_t *qptr, *qcol;
    float *qval;
    int32_t *lptr, *lrow;
    float *lval;
    int32_t *pick;       /* (max(β, n)) Floyd draws */
    int64_t *rows_copy;  /* (max_batch) */
    xmc_psl_pool pool;
};

void xmc_psl_sampler_config_default(xmc_psl_sampler_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_batch = 256;
    c->beta = XMC_PSL_DEFAULT_BETA;
    c->n_neg = XMC_PSL_DEFAULT_NEG;
    c->random_neg = 1;
    c->seed = 1;
}

void xmc_psl_sampler_free(xmc_psl_sampler *s)
{
    if (!s)
        return;
    xmc_free(s->hkey);
    xmc_free(s->hval);
    xmc_free(s->labels);
    xmc_free(s->qptr);
    xmc_free(s->qcol);
    xmc_free(s->qval);
    xmc_free(s->lptr);
    xmc_free(s->lrow);
    xmc_free(s->lval);
    xmc_free(s->pick);
    xmc_free(s->rows_copy);
    xmc_free(s);
}

int xmc_psl_sampler_create(const xmc_psl_sampler_config *cfg, xmc_psl_sampler **out,
                           xmc_error *err)
{
    *out = NULL;
    if (cfg->max_batch < 1 || cfg->max_batch > XMC_PSL_MAX_BATCH)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl: max_batch must be in [1, %d], got %d",
                       XMC_PSL_MAX_BATCH, cfg->max_batch);
    if (cfg->beta < XMC_PSL_MIN_BETA || cfg->beta > XMC_PSL_MAX_BETA)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl: beta must be in [%d, %d], got %d",
                       XMC_PSL_MIN_BETA, XMC_PSL_MAX_BETA, cfg->beta);
    if (cfg->n_neg < XMC_PSL_MIN_NEG || cfg->n_neg > XMC_PSL_MAX_NEG)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl: n_neg must be in [%d, %d], got %d",
                       XMC_PSL_MIN_NEG, XMC_PSL_MAX_NEG, cfg->n_neg);
    if (cfg->n_labels < 1 || cfg->n_labels > INT32_MAX)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl: n_labels must be in [1, 2^31), got %lld",
                       (long long)cfg->n_labels);
    if (cfg->neg_labels && cfg->n_neg_labels < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl: neg_labels given with %lld entries",
                       (long long)cfg->n_neg_labels);
    for (int64_t i = 0; cfg->neg_labels && i < cfg->n_neg_labels; i++)
        if (cfg->neg_labels[i] < 0 || cfg->neg_labels[i] >= cfg->n_labels)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl: neg_labels[%lld] = %d outside [0, %lld)",
                           (long long)i, cfg->neg_labels[i], (long long)cfg->n_labels);
    if (cfg->max_row_nnz < 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl: max_row_nnz must be >= 0, got %lld",
                       (long long)cfg->max_row_nnz);
    int64_t mp = (int64_t)cfg->max_batch * (cfg->beta + cfg->n_neg);
    if (mp > INT32_MAX / 4)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "psl: max_batch * (beta + n_neg) = %lld is too large", (long long)mp);
    xmc_psl_sampler *s = xmc_calloc(1, sizeof *s);
    if (!s)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "psl: out of memory for the sampler");
    s->cfg = *cfg;
    s->max_pool = (int)mp;
    int64_t per_row = mp;
    if (cfg->max_row_nnz > 0 && cfg->max_row_nnz < per_row)
        per_row = cfg->max_row_nnz;
    s->cap_pos = (int64_t)cfg->max_batch * per_row;
    uint32_t slots = 16;
    while (slots < 2u * (uint32_t)mp)
        slots <<= 1;
    s->hmask = slots - 1;
    int pk = cfg->beta > cfg->n_neg ? cfg->beta : cfg->n_neg;
    s->hkey = xmc_malloc(sizeof(int32_t) * slots);
    s->hval = xmc_malloc(sizeof(int32_t) * slots);
    s->labels = xmc_malloc(sizeof(int32_t) * (size_t)mp);
    s->qptr = xmc_malloc(sizeof(int32_t) * ((size_t)cfg->max_batch + 1));
    s->qcol = xmc_malloc(sizeof(int32_t) * (size_t)s->cap_pos);
    s->qval = xmc_malloc(sizeof(float) * (size_t)s->cap_pos);
    s->lptr = xmc_malloc(sizeof(int32_t) * ((size_t)mp + 1));
    s->lrow = xmc_malloc(sizeof(int32_t) * (size_t)s->cap_pos);
    s->lval = xmc_malloc(sizeof(float) * (size_t)s->cap_pos);
    s->pick = xmc_malloc(sizeof(int32_t) * (size_t)(pk > 0 ? pk : 1));
    s->rows_copy = xmc_malloc(sizeof(int64_t) * (size_t)cfg->max_batch);
    if (!s->hkey || !s->hval || !s->labels || !s->qptr || !s->qcol || !s->qval || !s->lptr ||
        !s->lrow || !s->lval || !s->pick || !s->rows_copy) {
        xmc_psl_sampler_free(s);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                       "psl: out of memory for a sampler of %d pool slots, %lld P^B entries",
                       (int)mp, (long long)per_row * cfg->max_batch);
    }
    *out = s;
    return XMC_OK;
}

size_t xmc_psl_sampler_bytes(const xmc_psl_sampler *s)
{
    if (!s)
        return 0;
    size_t slots = (size_t)s->hmask + 1, mp = (size_t)s->max_pool, cp = (size_t)s->cap_pos;
    return sizeof *s + slots * 8 + mp * 4 * 2 + cp * 16 + (size_t)s->cfg.max_batch * 12;
}

int xmc_psl_sampler_max_pool(const xmc_psl_sampler *s) { return s->max_pool; }

/* ------------------------------------------------------------- helpers */

static uint32_t hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* Pool column of label, or -1. */
static int32_t pool_find(const xmc_psl_sampler *s, int32_t label)
{
    uint32_t h = hash32((uint32_t)label) & s->hmask;
    while (s->hkey[h] >= 0) {
        if (s->hkey[h] == label)
            return s->hval[h];
        h = (h + 1) & s->hmask;
    }
    return -1;
}

/* Add label to L_B if absent (capacity is max_pool; the caller adds at most
 * β + n per query, so it never overflows). */
static void pool_add(xmc_psl_sampler *s, int32_t label)
{
    uint32_t h = hash32((uint32_t)label) & s->hmask;
    while (s->hkey[h] >= 0) {
        if (s->hkey[h] == label)
            return;
        h = (h + 1) & s->hmask;
    }
    s->hkey[h] = label;
    s->hval[h] = s->pool.nl;
    s->labels[s->pool.nl++] = label;
}

/* Floyd's algorithm: k distinct draws from [0, n) into pick (k <= n).
 * O(k^2) membership checks, fine for k = β or n (a handful). */
static void floyd(xmc_rng *r, int64_t n, int k, int32_t *pick)
{
    int m = 0;
    for (int64_t j = n - k; j < n; j++) {
        int32_t t = (int32_t)xmc_rng_below(r, (uint64_t)j + 1);
        int dup = 0;
        for (int q = 0; q < m; q++)
            if (pick[q] == t) {
                dup = 1;
                break;
            }
        pick[m++] = dup ? (int32_t)j : t;
    }
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Sort P_i^B of one row (columns with their values) by column: insertion
 * sort, rows hold at most min(|Y_i|, |L_B|) entries and are mostly short. */
static void sort_row(int32_t *col, float *val, int64_t n)
{
    for (int64_t a = 1; a < n; a++) {
        int32_t c = col[a];
        float v = val[a];
        int64_t b = a - 1;
        while (b >= 0 && col[b] > c) {
            col[b + 1] = col[b];
            val[b + 1] = val[b];
            b--;
        }
        col[b + 1] = c;
        val[b + 1] = v;
    }
}

void xmc_psl_pool_transpose(xmc_psl_pool *p)
{
    int nl = p->nl;
    for (int c = 0; c <= nl; c++)
        p->lptr[c] = 0;
    int32_t nnz = p->qptr[p->nq];
    for (int32_t e = 0; e < nnz; e++)
        p->lptr[p->qcol[e] + 1]++;
    for (int c = 0; c < nl; c++)
        p->lptr[c + 1] += p->lptr[c];
    /* lptr[c] serves as column c's fill cursor (then shifted back by one
     * column); rows are visited in order, so each column comes out ascending. */
    for (int i = 0; i < p->nq; i++)
        for (int32_t e = p->qptr[i]; e < p->qptr[i + 1]; e++) {
            int32_t c = p->qcol[e];
            int32_t at = p->lptr[c]++;
            p->lrow[at] = i;
            p->lval[at] = p->qval[e];
        }
    for (int c = nl; c > 0; c--)
        p->lptr[c] = p->lptr[c - 1];
    p->lptr[0] = 0;
}

int xmc_psl_pool_check(const xmc_psl_pool *p, xmc_error *err)
{
    if (p->nq < 0 || p->nl < 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl pool: negative size %d x %d", p->nq,
                       p->nl);
    if (p->qptr[0] != 0 || p->lptr[0] != 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl pool: pointers must start at 0");
    for (int i = 0; i < p->nq; i++) {
        if (p->qptr[i + 1] < p->qptr[i])
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl pool: qptr decreases at row %d", i);
        for (int32_t e = p->qptr[i]; e < p->qptr[i + 1]; e++) {
            if (p->qcol[e] < 0 || p->qcol[e] >= p->nl)
                return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                               "psl pool: row %d has column %d outside [0, %d)", i, p->qcol[e],
                               p->nl);
            if (e > p->qptr[i] && p->qcol[e] <= p->qcol[e - 1])
                return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                               "psl pool: row %d columns not strictly ascending", i);
            if (!(p->qval[e] >= 0.0f) || p->qval[e] > 3.4e38f)
                return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                               "psl pool: row %d has a target that is not finite and >= 0", i);
        }
    }
    if (p->lptr[p->nl] != p->qptr[p->nq])
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "psl pool: the transpose holds %d entries, the rows %d", p->lptr[p->nl],
                       p->qptr[p->nq]);
    for (int c = 0; c < p->nl; c++) {
        if (p->lptr[c + 1] < p->lptr[c])
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl pool: lptr decreases at column %d", c);
        for (int32_t e = p->lptr[c]; e < p->lptr[c + 1]; e++) {
            int32_t i = p->lrow[e];
            if (i < 0 || i >= p->nq || (e > p->lptr[c] && i <= p->lrow[e - 1]))
                return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                               "psl pool: column %d rows out of range or not ascending", c);
            /* the entry must exist on the row side with the same value */
            int64_t lo = xmc_lower_bound_i32(p->qcol, p->qptr[i], p->qptr[i + 1], c);
            if (lo >= p->qptr[i + 1] || p->qcol[lo] != c || p->qval[lo] != p->lval[e])
                return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                               "psl pool: column %d row %d is not in the row side", c, i);
        }
    }
    return XMC_OK;
}

/* ------------------------------------------------------------- build */

/* The hard-negative list of dataset row r: ids[0..n) (dense rows may hold
 * -1 slots; they are skipped by the caller). */
static void negs_row(const xmc_psl_negs *H, int64_t r, const int32_t **ids, int64_t *n)
{
    if (H->ids) {
        *ids = H->ids + (size_t)r * (size_t)H->k;
        *n = H->k;
    } else {
        *ids = H->csr->indices + H->csr->indptr[r];
        *n = H->csr->indptr[r + 1] - H->csr->indptr[r];
    }
}

int xmc_psl_sampler_build(xmc_psl_sampler *s, const xmc_csr *Y, const int64_t *rows, int B,
                          const xmc_psl_negs *H, uint64_t step, const xmc_psl_pool **pool,
                          xmc_error *err)
{
    const xmc_psl_sampler_config *c = &s->cfg;
    *pool = NULL;
    if (B < 1 || B > c->max_batch)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl: batch of %d rows, expected 1..%d", B,
                       c->max_batch);
    if (Y->ncols != c->n_labels)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl: Y has %lld labels, the sampler %lld",
                       (long long)Y->ncols, (long long)c->n_labels);
    if (H) {
        if ((H->ids == NULL) == (H->csr == NULL))
            return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                           "psl: hard negatives need exactly one of ids / csr");
        int64_t hn = H->ids ? H->n : H->csr->nrows;
        if (hn != Y->nrows)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                           "psl: hard negatives have %lld rows, Y has %lld", (long long)hn,
                           (long long)Y->nrows);
        if (H->ids && H->k < 0)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl: hard negatives k = %d", H->k);
    }
    for (int i = 0; i < B; i++) {
        int64_t r = rows ? rows[i] : i;
        if (r < 0 || r >= Y->nrows)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl: batch row %lld outside [0, %lld)",
                           (long long)r, (long long)Y->nrows);
        s->rows_copy[i] = r;
    }
    memset(s->hkey, 0xff, sizeof(int32_t) * ((size_t)s->hmask + 1));
    xmc_psl_pool *p = &s->pool;
    p->nq = B;
    p->nl = 0;
    p->queries = s->rows_copy;
    p->labels = s->labels;
    p->qptr = s->qptr;
    p->qcol = s->qcol;
    p->qval = s->qval;
    p->lptr = s->lptr;
    p->lrow = s->lrow;
    p->lval = s->lval;

    /* One stream per step: the pool is a function of (seed, step, batch). */
    xmc_rng rng;
    xmc_rng_seed(&rng, c->seed, 0x9e3779b97f4a7c15ULL ^ step);
    for (int i = 0; i < B; i++) {
        int64_t r = s->rows_copy[i];
        const int32_t *y = Y->indices + Y->indptr[r];
        int64_t ny = Y->indptr[r + 1] - Y->indptr[r];
        /* up to β positives */
        int kp = ny < c->beta ? (int)ny : c->beta;
        floyd(&rng, ny, kp, s->pick);
        for (int q = 0; q < kp; q++)
            pool_add(s, y[s->pick[q]]);
        if (c->n_neg == 0)
            continue;
        if (H) {
            const int32_t *h;
            int64_t nh;
            negs_row(H, r, &h, &nh);
            /* candidates = H_i minus its positives (and empty slots) */
            int64_t nc = 0;
            for (int64_t a = 0; a < nh; a++) {
                if (h[a] < -1 || h[a] >= c->n_labels)
                    return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                                   "psl: hard negative %d of row %lld outside [0, %lld)", h[a],
                                   (long long)r, (long long)c->n_labels);
                if (h[a] >= 0 && !xmc_sorted_has_i32(y, ny, h[a]))
                    nc++;
            }
            int kn = nc < c->n_neg ? (int)nc : c->n_neg;
            floyd(&rng, nc, kn, s->pick);
            /* map candidate ranks to ids in one pass over the sorted ranks */
            qsort(s->pick, (size_t)kn, sizeof(int32_t), cmp_i32);
            int64_t rank = 0;
            int q = 0;
            for (int64_t a = 0; a < nh && q < kn; a++) {
                if (h[a] < 0 || xmc_sorted_has_i32(y, ny, h[a]))
                    continue;
                if (rank == s->pick[q]) {
                    pool_add(s, h[a]);
                    q++;
                }
                rank++;
            }
        } else if (c->random_neg) {
            /* Before the first mining: uniform random labels that are not
             * positives of i, by rejection (bounded tries, so a query whose
             * positives cover almost all labels just gets fewer). */
            int got = 0;
            for (int tries = 0; got < c->n_neg && tries < 16 * c->n_neg; tries++) {
                int32_t l =
                    c->neg_labels
                        ? c->neg_labels[xmc_rng_below(&rng, (uint64_t)c->n_neg_labels)]
                        : (int32_t)xmc_rng_below(&rng, (uint64_t)c->n_labels);
                if (xmc_sorted_has_i32(y, ny, l))
                    continue;
                pool_add(s, l);
                got++;
            }
        }
    }

    /* P_i^B: every positive of i present in L_B, whoever brought it in.
     * Probe the hash with each y in Y_i, or, for rows longer than the pool,
     * binary-search each pool label in Y_i. */
    int64_t e = 0;
    for (int i = 0; i < B; i++) {
        int64_t r = s->rows_copy[i];
        const int32_t *y = Y->indices + Y->indptr[r];
        const float *yv = Y->values ? Y->values + Y->indptr[r] : NULL;
        int64_t ny = Y->indptr[r + 1] - Y->indptr[r];
        p->qptr[i] = (int32_t)e;
        int64_t start = e;
        if (ny <= p->nl) {
            for (int64_t a = 0; a < ny; a++) {
                if (y[a] < 0 || y[a] >= c->n_labels)
                    return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                                   "psl: Y row %lld has label %d outside [0, %lld)", (long long)r,
                                   y[a], (long long)c->n_labels);
                int32_t col = pool_find(s, y[a]);
                if (col < 0)
                    continue;
                if (e >= s->cap_pos)
                    goto full;
                s->qcol[e] = col;
                s->qval[e] = yv ? yv[a] : 1.0f;
                e++;
            }
            sort_row(s->qcol + start, s->qval + start, e - start);
        } else {
            for (int col = 0; col < p->nl; col++) {
                int32_t l = s->labels[col];
                int64_t lo = xmc_lower_bound_i32(y, 0, ny, l);
                if (lo >= ny || y[lo] != l)
                    continue;
                if (e >= s->cap_pos)
                    goto full;
                s->qcol[e] = col;
                s->qval[e] = yv ? yv[lo] : 1.0f;
                e++;
            }
        }
    }
    p->qptr[B] = (int32_t)e;
    xmc_psl_pool_transpose(p);
    *pool = p;
    return XMC_OK;
full:
    return XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                   "psl: more than %lld in-batch positives; raise max_row_nnz (the largest "
                   "number of labels of a row) in the sampler config",
                   (long long)s->cap_pos);
}
