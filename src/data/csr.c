/* CSR matrices: create/free, row selection, transpose, row normalisation,
 * building from triplets, equality and invariant checks.
 *
 * Memory: indptr (nrows+1) int64, indices (nnz) int32, values (nnz) float,
 * each one xmc_malloc block, plus the struct. A matrix whose `owner` is set
 * points into a binary-cache mapping and only drops its reference on free.
 * Threading: row-parallel (OpenMP) where the work is O(nnz); no shared state.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

static int csr_create(xmc_csr **out, int64_t nrows, int64_t ncols, int64_t nnz,
                      int with_values, int fresh, xmc_error *err)
{
    *out = NULL;
    if (nrows < 0 || ncols < 0 || nnz < 0 || ncols > INT32_MAX + 1LL)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "bad matrix shape %lld x %lld with %lld entries", (long long)nrows,
                       (long long)ncols, (long long)nnz);
    size_t bp, bi, bv;
    if (!xmc_mul_ok((size_t)nrows + 1, sizeof(int64_t), &bp) ||
        !xmc_mul_ok((size_t)nnz, sizeof(int32_t), &bi) ||
        !xmc_mul_ok((size_t)nnz, sizeof(float), &bv))
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "matrix too large");
    xmc_csr *m = xmc_calloc(1, sizeof *m);
    if (!m)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
    m->nrows = nrows;
    m->ncols = ncols;
    m->indptr = fresh ? xmc_malloc(bp) : xmc_calloc(1, bp);
    /* +1 so that nnz = 0 still gets a non-NULL pointer. */
    m->indices = xmc_malloc(bi + sizeof(int32_t));
    m->values = with_values ? xmc_malloc(bv + sizeof(float)) : NULL;
    if (!m->indptr || !m->indices || (with_values && !m->values)) {
        xmc_csr_free(m);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                       "out of memory for a %lld x %lld matrix with %lld entries",
                       (long long)nrows, (long long)ncols, (long long)nnz);
    }
    if (fresh) {
        xmc_advise_huge(m->indptr, bp);
        xmc_advise_huge(m->indices, bi);
        xmc_advise_huge(m->values, bv);
    }
    *out = m;
    return XMC_OK;
}

int xmc_csr_create(xmc_csr **out, int64_t nrows, int64_t ncols, int64_t nnz,
                   int with_values, xmc_error *err)
{
    return csr_create(out, nrows, ncols, nnz, with_values, 0, err);
}

int xmc_csr_create_fresh(xmc_csr **out, int64_t nrows, int64_t ncols, int64_t nnz,
                         int with_values, xmc_error *err)
{
    return csr_create(out, nrows, ncols, nnz, with_values, 1, err);
}

void xmc_csr_free(xmc_csr *m)
{
    if (!m)
        return;
    if (m->owner) {
        xmc_mapping_unref(m->owner);
    } else {
        xmc_free(m->indptr);
        xmc_free(m->indices);
        xmc_free(m->values);
    }
    xmc_free(m);
}

int xmc_csr_select_rows(const xmc_csr *m, const int64_t *rows, int64_t n, xmc_csr **out,
                        xmc_error *err)
{
    *out = NULL;
    int64_t nnz = 0;
    for (int64_t i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= m->nrows)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "row %lld out of range [0, %lld)",
                           (long long)rows[i], (long long)m->nrows);
        nnz += m->indptr[rows[i] + 1] - m->indptr[rows[i]];
    }
    xmc_csr *o;
    int rc = xmc_csr_create(&o, n, m->ncols, nnz, m->values != NULL, err);
    if (rc)
        return rc;
    for (int64_t i = 0; i < n; i++)
        o->indptr[i + 1] = o->indptr[i] + m->indptr[rows[i] + 1] - m->indptr[rows[i]];
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        int64_t s = m->indptr[rows[i]], k = m->indptr[rows[i] + 1] - s;
        memcpy(o->indices + o->indptr[i], m->indices + s, (size_t)k * sizeof(int32_t));
        if (m->values)
            memcpy(o->values + o->indptr[i], m->values + s, (size_t)k * sizeof(float));
    }
    *out = o;
    return XMC_OK;
}

/* Counting sort by column: rows are visited in order, so each output row's
 * indices come out sorted. Sequential: it is memory-bound and a parallel
 * version needs per-thread column counts (ncols x threads). */
int xmc_csr_transpose(const xmc_csr *m, xmc_csr **out, xmc_error *err)
{
    *out = NULL;
    int64_t nnz = xmc_csr_nnz(m);
    xmc_csr *t;
    int rc = xmc_csr_create(&t, m->ncols, m->nrows, nnz, m->values != NULL, err);
    if (rc)
        return rc;
    if (m->nrows > INT32_MAX + 1LL) {
        xmc_csr_free(t);
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "cannot transpose: %lld rows exceed int32 ids",
                       (long long)m->nrows);
    }
    for (int64_t k = 0; k < nnz; k++)
        t->indptr[m->indices[k] + 1]++;
    for (int64_t c = 0; c < t->nrows; c++)
        t->indptr[c + 1] += t->indptr[c];
    int64_t *next = xmc_malloc(((size_t)t->nrows + 1) * sizeof(int64_t));
    if (!next) {
        xmc_csr_free(t);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
    }
    memcpy(next, t->indptr, ((size_t)t->nrows + 1) * sizeof(int64_t));
    for (int64_t r = 0; r < m->nrows; r++)
        for (int64_t k = m->indptr[r]; k < m->indptr[r + 1]; k++) {
            int64_t d = next[m->indices[k]]++;
            t->indices[d] = (int32_t)r;
            if (m->values)
                t->values[d] = m->values[k];
        }
    xmc_free(next);
    *out = t;
    return XMC_OK;
}

void xmc_csr_normalize_rows(xmc_csr *m)
{
    if (!m->values)
        return; /* pattern-only: no values to scale */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < m->nrows; r++) {
        double s = 0;
        for (int64_t k = m->indptr[r]; k < m->indptr[r + 1]; k++)
            s += (double)m->values[k] * m->values[k];
        if (s > 0) {
            float inv = (float)(1.0 / sqrt(s));
            for (int64_t k = m->indptr[r]; k < m->indptr[r + 1]; k++)
                m->values[k] *= inv;
        }
    }
}

size_t xmc_csr_bytes(const xmc_csr *m)
{
    if (!m)
        return 0;
    size_t nnz = (size_t)xmc_csr_nnz(m);
    return sizeof *m + ((size_t)m->nrows + 1) * sizeof(int64_t) + nnz * sizeof(int32_t) +
           (m->values ? nnz * sizeof(float) : 0);
}

typedef struct trip {
    int64_t r;
    int32_t c;
    float v;
} trip;

static int trip_cmp(const void *a, const void *b)
{
    const trip *x = a, *y = b;
    if (x->r != y->r)
        return x->r < y->r ? -1 : 1;
    return (x->c > y->c) - (x->c < y->c);
}

int xmc_csr_from_triplets(int64_t nrows, int64_t ncols, int64_t nnz, const int64_t *rows,
                          const int32_t *cols, const float *vals, xmc_csr **out,
                          xmc_error *err)
{
    *out = NULL;
    for (int64_t k = 0; k < nnz; k++)
        if (rows[k] < 0 || rows[k] >= nrows || cols[k] < 0 || cols[k] >= ncols)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                           "triplet %lld: (%lld, %d) outside %lld x %lld", (long long)k,
                           (long long)rows[k], cols[k], (long long)nrows, (long long)ncols);
    trip *t = xmc_malloc(((size_t)nnz + 1) * sizeof *t);
    if (!t)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
    for (int64_t k = 0; k < nnz; k++)
        t[k] = (trip){rows[k], cols[k], vals ? vals[k] : 1.0f};
    qsort(t, (size_t)nnz, sizeof *t, trip_cmp);
    int64_t u = 0; /* unique entries, duplicates summed */
    for (int64_t k = 0; k < nnz; k++) {
        if (u > 0 && t[u - 1].r == t[k].r && t[u - 1].c == t[k].c)
            t[u - 1].v += t[k].v;
        else
            t[u++] = t[k];
    }
    xmc_csr *m;
    int rc = xmc_csr_create(&m, nrows, ncols, u, 1, err);
    if (rc) {
        xmc_free(t);
        return rc;
    }
    for (int64_t k = 0; k < u; k++) {
        m->indptr[t[k].r + 1]++;
        m->indices[k] = t[k].c;
        m->values[k] = t[k].v;
    }
    for (int64_t r = 0; r < nrows; r++)
        m->indptr[r + 1] += m->indptr[r];
    xmc_free(t);
    *out = m;
    return XMC_OK;
}

int xmc_csr_equal(const xmc_csr *a, const xmc_csr *b)
{
    if (!a || !b)
        return a == b;
    if (a->nrows != b->nrows || a->ncols != b->ncols)
        return 0;
    if (memcmp(a->indptr, b->indptr, ((size_t)a->nrows + 1) * sizeof(int64_t)))
        return 0;
    int64_t nnz = xmc_csr_nnz(a);
    if (nnz && memcmp(a->indices, b->indices, (size_t)nnz * sizeof(int32_t)))
        return 0;
    for (int64_t k = 0; k < nnz; k++) {
        float x = a->values ? a->values[k] : 1.0f, y = b->values ? b->values[k] : 1.0f;
        if (x != y)
            return 0;
    }
    return 1;
}

int xmc_csr_check(const xmc_csr *m, const char *what, xmc_error *err)
{
    if (m->nrows < 0 || m->ncols < 0 || m->ncols > INT32_MAX + 1LL || m->indptr[0] != 0)
        return XMC_ERR(err, XMC_EFORMAT, what, 0, "bad matrix header");
    for (int64_t r = 0; r < m->nrows; r++) {
        /* Bounded by the last entry before the row is read: a crafted indptr
         * may rise above nnz and fall back later. */
        if (m->indptr[r + 1] < m->indptr[r] || m->indptr[r + 1] > m->indptr[m->nrows])
            return XMC_ERR(err, XMC_EFORMAT, what, 0, "row %lld: indptr out of order",
                           (long long)r);
        for (int64_t k = m->indptr[r]; k < m->indptr[r + 1]; k++) {
            if (m->indices[k] < 0 || m->indices[k] >= m->ncols)
                return XMC_ERR(err, XMC_EFORMAT, what, 0, "row %lld: column %d out of range",
                               (long long)r, m->indices[k]);
            if (k > m->indptr[r] && m->indices[k] <= m->indices[k - 1])
                return XMC_ERR(err, XMC_EFORMAT, what, 0,
                               "row %lld: columns not increasing", (long long)r);
            if (m->values && !isfinite(m->values[k]))
                return XMC_ERR(err, XMC_EFORMAT, what, 0, "row %lld: non-finite value",
                               (long long)r);
        }
    }
    return XMC_OK;
}
