/* Gandalf label-feature augmentation (Kharbanda et al., KDD 2024; thesis
 * ch. 1): co-occurrence G = YᵀY, soft targets y^G_j, and the augmented
 * training set D ∪ Z.
 *
 * Algorithm. Row j of G is the sum of the label rows of the points that carry
 * label j:  G[j,:] = Σ_{n : Y_nj = 1} Y[n,:],  so with the pattern of Yᵀ (the
 * points of each label) every row is an independent sparse accumulation
 * (Gustavson's row-by-row SpGEMM). G_jj = |Yᵀ[j]| is known before the row is
 * formed, and G_ii for the symmetric variant comes from the same counts, so
 * the δ threshold is applied while the row is formed: entries that fail it
 * are never stored.
 *
 * Two passes over the rows: pass 1 forms each row and counts what survives
 * the threshold (and nnz(G) for the report); pass 2 forms it again and writes
 * the survivors into their final slot. The product is paid twice, but the
 * output is allocated once at its exact size and no per-thread buffers need
 * merging, and every row is written by one task only, so the result is
 * bit-identical for any thread count.
 *
 * Memory: the output (12 bytes per kept entry + 8·(L+1)), the pattern of Yᵀ
 * (4·nnz(Y) + 8·(L+1)), a pattern copy of Y only when Y stores non-positive
 * values, and per thread a dense counter and a touched list of L int32 each
 * (8·L bytes per thread: 24 MB per thread at L = 3M). Nothing is O(L²).
 *
 * Threading: OpenMP over labels (rows of Yᵀ), dynamic schedule because label
 * frequencies are power-law distributed; scratch is per thread, the output
 * row slots are disjoint. Progress is reported by thread 0 only.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"
#include "xmc/augment.h"

/* ------------------------------------------------------------ options */

void xmc_augment_opts_default(xmc_augment_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kind = XMC_AUG_COOC;
    o->delta = XMC_AUGMENT_DEFAULT_DELTA;
    o->sample = 0;
    o->seed = XMC_AUGMENT_DEFAULT_SEED;
    o->label_features = NULL;
}

const char *xmc_augment_kind_name(xmc_augment_kind k)
{
    switch (k) {
    case XMC_AUG_SELF:
        return "self";
    case XMC_AUG_COOC:
        return "cooc";
    case XMC_AUG_SYM:
        return "sym";
    }
    return "?";
}

static int check_delta(double d, const char *where, xmc_error *err)
{
    if (!(d >= XMC_AUGMENT_MIN_DELTA && d <= XMC_AUGMENT_MAX_DELTA))
        return XMC_ERR(err, XMC_EINVAL, where, 0,
                       "augment threshold delta must be in [%g, %g], got %g",
                       XMC_AUGMENT_MIN_DELTA, XMC_AUGMENT_MAX_DELTA, d);
    return XMC_OK;
}

int xmc_augment_parse(const char *s, xmc_augment_opts *o, xmc_error *err)
{
    if (!s || !o)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "augment: no recipe given");
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    size_t bl = strlen(buf);
    int pifa = bl >= 5 && !strcmp(buf + bl - 5, "+pifa");
    if (pifa)
        buf[bl - 5] = '\0';
    const char *colon = strchr(buf, ':');
    size_t n = colon ? (size_t)(colon - buf) : strlen(buf);
    xmc_augment_kind k;
    if (strlen(s) >= sizeof buf)
        n = 0; /* too long to be a recipe */
    if ((n == 7 && !strncmp(buf, "gandalf", 7)) || (n == 4 && !strncmp(buf, "cooc", 4)))
        k = XMC_AUG_COOC;
    else if (n == 3 && !strncmp(buf, "sym", 3))
        k = XMC_AUG_SYM;
    else if (n == 4 && !strncmp(buf, "self", 4))
        k = XMC_AUG_SELF;
    else
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "augment: expected gandalf|cooc|sym|self[:DELTA][+pifa], got '%s'", s);
    double d = o->delta;
    if (colon) {
        char *end;
        d = strtod(colon + 1, &end);
        if (end == colon + 1 || *end)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                           "augment: expected a number after ':' in '%s'", s);
        int rc = check_delta(d, NULL, err);
        if (rc)
            return rc;
    }
    o->kind = k;
    o->delta = d;
    if (pifa)
        o->pifa = 1;
    return XMC_OK;
}

/* ------------------------------------------------------------ patterns */

/* A pattern-only CSR view: either borrowed arrays of a matrix, or owned. */
typedef struct pattern {
    int64_t nrows, ncols;
    const int64_t *indptr;  /* (nrows + 1) */
    const int32_t *indices; /* (nnz) */
    int64_t *own_indptr;
    int32_t *own_indices;
} pattern;

static void pattern_free(pattern *p)
{
    xmc_free(p->own_indptr);
    xmc_free(p->own_indices);
    memset(p, 0, sizeof *p);
}

/* Binary pattern of Y: the stored entries with value > 0 (a stored 0 or a
 * negative is not a positive label). Borrows Y's arrays when none is
 * dropped, which is the common case (binary labels, NULL values). */
static int pattern_of(const xmc_csr *Y, pattern *p, xmc_error *err)
{
    memset(p, 0, sizeof *p);
    p->nrows = Y->nrows;
    p->ncols = Y->ncols;
    int64_t nnz = xmc_csr_nnz(Y), drop = 0;
    if (Y->values)
        for (int64_t k = 0; k < nnz; k++)
            drop += !(Y->values[k] > 0.0f);
    if (!drop) {
        p->indptr = Y->indptr;
        p->indices = Y->indices;
        return XMC_OK;
    }
    p->own_indptr = xmc_malloc((size_t)(Y->nrows + 1) * sizeof *p->own_indptr);
    p->own_indices = xmc_malloc((size_t)(nnz - drop > 0 ? nnz - drop : 1) * sizeof(int32_t));
    if (!p->own_indptr || !p->own_indices) {
        pattern_free(p);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "augment: out of memory (label pattern)");
    }
    int64_t w = 0;
    p->own_indptr[0] = 0;
    for (int64_t r = 0; r < Y->nrows; r++) {
        for (int64_t k = Y->indptr[r]; k < Y->indptr[r + 1]; k++)
            if (Y->values[k] > 0.0f)
                p->own_indices[w++] = Y->indices[k];
        p->own_indptr[r + 1] = w;
    }
    p->indptr = p->own_indptr;
    p->indices = p->own_indices;
    return XMC_OK;
}

/* Pattern of Aᵀ by a counting sort; scanning A's rows in order leaves each
 * row of Aᵀ sorted. Row ids become int32 indices, hence the limit. */
static int pattern_transpose(const pattern *a, pattern *t, xmc_error *err)
{
    memset(t, 0, sizeof *t);
    if (a->nrows > INT32_MAX)
        return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                       "augment: %lld training points exceed the 2^31 limit of the label index",
                       (long long)a->nrows);
    int64_t nnz = a->indptr[a->nrows];
    t->nrows = a->ncols;
    t->ncols = a->nrows;
    t->own_indptr = xmc_calloc((size_t)a->ncols + 1, sizeof *t->own_indptr);
    t->own_indices = xmc_malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(int32_t));
    int64_t *cur = xmc_malloc((size_t)(a->ncols > 0 ? a->ncols : 1) * sizeof *cur);
    if (!t->own_indptr || !t->own_indices || !cur) {
        xmc_free(cur);
        pattern_free(t);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "augment: out of memory (label transpose)");
    }
    for (int64_t k = 0; k < nnz; k++)
        t->own_indptr[a->indices[k] + 1]++;
    for (int64_t c = 0; c < a->ncols; c++)
        t->own_indptr[c + 1] += t->own_indptr[c];
    memcpy(cur, t->own_indptr, (size_t)a->ncols * sizeof *cur);
    for (int64_t r = 0; r < a->nrows; r++)
        for (int64_t k = a->indptr[r]; k < a->indptr[r + 1]; k++)
            t->own_indices[cur[a->indices[k]]++] = (int32_t)r;
    xmc_free(cur);
    t->indptr = t->own_indptr;
    t->indices = t->own_indices;
    return XMC_OK;
}

/* ------------------------------------------------------------ the product */

typedef enum mode { MODE_COUNT, MODE_COOC, MODE_SYM } mode;

/* Below this many accumulations (Σ_n |y_n|², or Σ_n |y_n| |x_n| for PIFA:
 * about a millisecond of work) the passes run on one thread (see
 * product_run). */
#define PAR_MIN_WORK (1 << 19)

/* Accumulations of one pass: each point n is visited once per label it
 * carries, and each visit adds |row n of M| entries. */
static int64_t pass_work(const pattern *Y, const int64_t *m_indptr)
{
    int64_t w = 0;
    for (int64_t n = 0; n < Y->nrows; n++)
        w += (Y->indptr[n + 1] - Y->indptr[n]) * (m_indptr[n + 1] - m_indptr[n]);
    return w;
}

typedef struct product {
    const pattern *Y, *YT; /* N x L and L x N */
    mode m;
    double delta;
} product;

/* G_jj: points carrying label j. */
static inline int64_t freq(const pattern *YT, int64_t j)
{
    return YT->indptr[j + 1] - YT->indptr[j];
}

/* Row j of G into the dense counters acc (zero on entry); the columns hit
 * are appended to touched. Returns how many. */
static int64_t row_form(const product *p, int64_t j, int32_t *acc, int32_t *touched)
{
    int64_t nt = 0;
    const pattern *Y = p->Y, *YT = p->YT;
    const int64_t k0 = YT->indptr[j], k1 = YT->indptr[j + 1];
    for (int64_t k = k0; k < k1; k++) {
        int64_t n = YT->indices[k];
#if defined(__GNUC__)
        /* The points of a label are scattered over Y: each visit is a cache
         * miss on indptr then on the row. Fetch both a few points ahead. */
        if (k + 16 < k1)
            __builtin_prefetch(&Y->indptr[YT->indices[k + 16]]);
        if (k + 8 < k1)
            __builtin_prefetch(&Y->indices[Y->indptr[YT->indices[k + 8]]]);
#endif
        for (int64_t q = Y->indptr[n]; q < Y->indptr[n + 1]; q++) {
            int32_t i = Y->indices[q];
            if (acc[i]++ == 0)
                touched[nt++] = i;
        }
    }
    return nt;
}

/* The score compared with δ: P[i|j] = G_ij / G_jj, or for SYM the mean of
 * P[i|j] and P[j|i] = G_ij / G_ii. Computed in double: IEEE division is
 * correctly rounded, so a ratio equal to a decimal δ (2/5 vs 0.4) compares
 * equal and a tie is decided exactly (dropped, since the rule is strict). */
static inline double score(const product *p, int64_t gij, int64_t gjj, int64_t gii)
{
    double a = (double)gij / (double)gjj;
    if (p->m != MODE_SYM)
        return a;
    return 0.5 * (a + (double)gij / (double)gii);
}

static inline int keep(const product *p, int64_t i, int64_t j, int64_t gij, int64_t gjj,
                       int64_t gii)
{
    return i == j || score(p, gij, gjj, gii) > p->delta;
}

static inline float value(const product *p, int64_t i, int64_t j, int64_t gij, int64_t gjj,
                          int64_t gii)
{
    if (p->m == MODE_COUNT)
        return (float)gij;
    if (i == j)
        return 1.0f; /* y^G_j[j] = 1 by definition, not by arithmetic */
    return (float)score(p, gij, gjj, gii);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Run both passes; *out is L x L. */
static int product_run(const product *p, xmc_csr **out, int64_t *nnz_full, xmc_error *err)
{
    *out = NULL;
    const int64_t L = p->YT->nrows;
    int nthr = xmc_get_threads();
    if (nthr < 1)
        nthr = 1;
    int rc = XMC_OK;
    xmc_csr *G = NULL;
    int64_t *cnt = xmc_malloc((size_t)(L + 1) * sizeof *cnt);
    size_t scratch_n = 0;
    int32_t *acc = NULL, *touched = NULL;
    if (!xmc_mul_ok((size_t)nthr, (size_t)(L > 0 ? L : 1), &scratch_n)) {
        xmc_free(cnt);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "augment: scratch size overflows");
    }
    acc = xmc_calloc(scratch_n, sizeof *acc);
    touched = xmc_malloc(scratch_n * sizeof *touched);
    if (!cnt || !acc || !touched) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                     "augment: out of memory (%d threads x 8*L = %lld bytes of scratch)", nthr,
                     (long long)(8 * (int64_t)nthr * L));
        goto out;
    }

    /* Small products run on one thread: an OpenMP region costs more than the
     * work, and far more on a loaded machine where spinning threads wait for
     * a time slice. The result is the same either way. */
    const int par = nthr > 1 && pass_work(p->Y, p->Y->indptr) >= PAR_MIN_WORK;
    xmc_progress prog;
    xmc_progress_start(&prog, "augment: label co-occurrence", "labels", 2 * L);
    atomic_llong done = 0;
    int64_t full = 0;
    const int self_row = p->m != MODE_COUNT; /* targets: unseen labels get e_j */

    /* Pass 1: count the survivors of each row. */
#pragma omp parallel num_threads(nthr) reduction(+ : full) if (par)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        int32_t *a = acc + (size_t)tid * (size_t)L, *t = touched + (size_t)tid * (size_t)L;
#pragma omp for schedule(dynamic, 16)
        for (int64_t j = 0; j < L; j++) {
            int64_t gjj = freq(p->YT, j), nt = row_form(p, j, a, t), kept = 0;
            for (int64_t k = 0; k < nt; k++) {
                int32_t i = t[k];
                kept += keep(p, i, j, a[i], gjj, freq(p->YT, i));
                a[i] = 0;
            }
            if (nt == 0 && self_row)
                kept = 1;
            cnt[j + 1] = kept;
            full += nt;
            long long d = atomic_fetch_add_explicit(&done, 1, memory_order_relaxed) + 1;
            if (tid == 0)
                xmc_progress_update(&prog, d, NULL);
        }
    }
    cnt[0] = 0;
    for (int64_t j = 0; j < L; j++)
        cnt[j + 1] += cnt[j];

    rc = xmc_csr_create(&G, L, L, cnt[L], 1, err);
    if (rc)
        goto out;
    memcpy(G->indptr, cnt, (size_t)(L + 1) * sizeof *cnt);

    /* Pass 2: form each row again and write its survivors in column order. */
#pragma omp parallel num_threads(nthr) if (par)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        int32_t *a = acc + (size_t)tid * (size_t)L, *t = touched + (size_t)tid * (size_t)L;
#pragma omp for schedule(dynamic, 16)
        for (int64_t j = 0; j < L; j++) {
            int64_t gjj = freq(p->YT, j), nt = row_form(p, j, a, t);
            int64_t base = G->indptr[j], w = base;
            if (nt == 0 && self_row) {
                G->indices[w] = (int32_t)j;
                G->values[w++] = 1.0f;
            }
            for (int64_t k = 0; k < nt; k++)
                if (keep(p, t[k], j, a[t[k]], gjj, freq(p->YT, t[k])))
                    G->indices[w++] = t[k];
            /* The row holds only survivors here: sort them, not the touched
             * list, as rows of frequent labels touch far more than survive. */
            if (nt > 0)
                qsort(G->indices + base, (size_t)(w - base), sizeof(int32_t), cmp_i32);
            if (nt > 0)
                for (int64_t k = base; k < w; k++) {
                    int32_t i = G->indices[k];
                    G->values[k] = value(p, i, j, a[i], gjj, freq(p->YT, i));
                }
            for (int64_t k = 0; k < nt; k++)
                a[t[k]] = 0;
            long long d = atomic_fetch_add_explicit(&done, 1, memory_order_relaxed) + 1;
            if (tid == 0)
                xmc_progress_update(&prog, d, NULL);
        }
    }
    xmc_progress_finish(&prog, NULL);
    if (nnz_full)
        *nnz_full = full;
    *out = G;
    G = NULL;
out:
    xmc_csr_free(G);
    xmc_free(cnt);
    xmc_free(acc);
    xmc_free(touched);
    return rc;
}

static int check_labels(const xmc_csr *Y, xmc_error *err)
{
    if (!Y)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "augment: no label matrix");
    if (Y->ncols > INT32_MAX)
        return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0, "augment: L = %lld exceeds 2^31",
                       (long long)Y->ncols);
    return xmc_csr_check(Y, "training labels", err);
}

/* Both patterns, ready for the product. */
static int patterns(const xmc_csr *Y, pattern *pY, pattern *pYT, xmc_error *err)
{
    int rc = pattern_of(Y, pY, err);
    if (rc)
        return rc;
    rc = pattern_transpose(pY, pYT, err);
    if (rc)
        pattern_free(pY);
    return rc;
}

int xmc_augment_cooc(const xmc_csr *Y, double delta, xmc_csr **G, int64_t *nnz_full,
                     xmc_error *err)
{
    if (G)
        *G = NULL;
    if (!G)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "augment: no output");
    int rc = check_labels(Y, err);
    if (rc || (rc = check_delta(delta, NULL, err)))
        return rc;
    pattern pY, pYT;
    if ((rc = patterns(Y, &pY, &pYT, err)))
        return rc;
    product p = {&pY, &pYT, MODE_COUNT, delta};
    rc = product_run(&p, G, nnz_full, err);
    pattern_free(&pY);
    pattern_free(&pYT);
    return rc;
}

/* e_j for every label: the Renee "-Aug" targets. */
static int identity(int64_t L, xmc_csr **out, xmc_error *err)
{
    int rc = xmc_csr_create(out, L, L, L, 1, err);
    if (rc)
        return rc;
    for (int64_t j = 0; j < L; j++) {
        (*out)->indptr[j + 1] = j + 1;
        (*out)->indices[j] = (int32_t)j;
        (*out)->values[j] = 1.0f;
    }
    return XMC_OK;
}

static int64_t count_unseen(const xmc_csr *Y)
{
    /* Only for SELF, where no transpose is built: one pass with a marker. */
    int64_t L = Y->ncols, seen = 0, nnz = xmc_csr_nnz(Y);
    unsigned char *m = xmc_calloc((size_t)(L > 0 ? L : 1), 1);
    if (!m)
        return -1;
    for (int64_t k = 0; k < nnz; k++)
        if ((!Y->values || Y->values[k] > 0.0f) && !m[Y->indices[k]]) {
            m[Y->indices[k]] = 1;
            seen++;
        }
    xmc_free(m);
    return L - seen;
}

int xmc_augment_targets(const xmc_csr *Y, const xmc_augment_opts *o, xmc_csr **T,
                        xmc_augment_stats *stats, xmc_error *err)
{
    if (T)
        *T = NULL;
    if (!T)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "augment: no output");
    xmc_augment_opts def;
    if (!o) {
        xmc_augment_opts_default(&def);
        o = &def;
    }
    int rc = check_labels(Y, err);
    if (rc || (rc = check_delta(o->delta, NULL, err)))
        return rc;
    if (o->kind != XMC_AUG_SELF && o->kind != XMC_AUG_COOC && o->kind != XMC_AUG_SYM)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "augment: unknown target kind %d",
                       (int)o->kind);
    double t0 = xmc_now();
    int64_t full = -1, unseen = 0;
    if (o->kind == XMC_AUG_SELF) {
        if ((rc = identity(Y->ncols, T, err)))
            return rc;
        unseen = count_unseen(Y);
        if (unseen < 0) {
            xmc_csr_free(*T);
            *T = NULL;
            return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "augment: out of memory");
        }
    } else {
        pattern pY, pYT;
        if ((rc = patterns(Y, &pY, &pYT, err)))
            return rc;
        product p = {&pY, &pYT, o->kind == XMC_AUG_SYM ? MODE_SYM : MODE_COOC, o->delta};
        rc = product_run(&p, T, &full, err);
        for (int64_t j = 0; j < pYT.nrows; j++)
            unseen += freq(&pYT, j) == 0;
        pattern_free(&pY);
        pattern_free(&pYT);
        if (rc)
            return rc;
    }
    if (stats) {
        stats->nnz_g = full;
        stats->kept = xmc_csr_nnz(*T);
        stats->unseen = unseen;
        stats->seconds_g = xmc_now() - t0;
    }
    return XMC_OK;
}

/* ------------------------------------------------------------ PIFA */

/* Label features z_j = normalize(Σ_{n: y_nj > 0} x_n / ||x_n||): Positive
 * Instance Feature Aggregation (Yu et al., "PECOS", JMLR 2022). NOT part of
 * Gandalf, which takes label features from label texts: an xmc extension so
 * that sets with sparse features but neither label texts nor label features
 * (bibtex, delicious) and sets whose label texts cannot be featurised like
 * their points can still be augmented. Same two-pass row-by-row scheme as the
 * product; scratch per thread: float accumulator, marker and touched list
 * over F (9 bytes per feature). The sums run over the points of a label in
 * increasing order, so the result does not depend on the thread count. */
int xmc_augment_pifa(const xmc_csr *X, const xmc_csr *Y, xmc_csr **Z, xmc_error *err)
{
    if (Z)
        *Z = NULL;
    if (!X || !Y || !Z)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "augment: pifa needs features and labels");
    if (X->nrows != Y->nrows)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "augment: %lld feature rows for %lld label rows", (long long)X->nrows,
                       (long long)Y->nrows);
    int rc = check_labels(Y, err);
    if (rc || (rc = xmc_csr_check(X, "training features", err)))
        return rc;
    const int64_t N = X->nrows, F = X->ncols, L = Y->ncols;
    int nthr = xmc_get_threads();
    if (nthr < 1)
        nthr = 1;
    pattern pY, pYT;
    if ((rc = patterns(Y, &pY, &pYT, err)))
        return rc;
    xmc_csr *out = NULL;
    size_t sn = 0;
    float *inv = xmc_malloc((size_t)(N > 0 ? N : 1) * sizeof *inv);
    int64_t *cnt = xmc_malloc((size_t)(L + 1) * sizeof *cnt);
    int ok = xmc_mul_ok((size_t)nthr, (size_t)(F > 0 ? F : 1), &sn);
    float *acc = ok ? xmc_calloc(sn, sizeof *acc) : NULL;
    unsigned char *seen = ok ? xmc_calloc(sn, 1) : NULL;
    int32_t *touched = ok ? xmc_malloc(sn * sizeof *touched) : NULL;
    if (!inv || !cnt || !acc || !seen || !touched) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                     "augment: out of memory (pifa: %d threads x 9*F = %lld bytes)", nthr,
                     (long long)(9 * (int64_t)nthr * F));
        goto out;
    }
    for (int64_t n = 0; n < N; n++) {
        double s = 0;
        for (int64_t k = X->indptr[n]; k < X->indptr[n + 1]; k++) {
            double v = X->values ? X->values[k] : 1.0;
            s += v * v;
        }
        inv[n] = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    }

    const int par = nthr > 1 && pass_work(&pY, X->indptr) >= PAR_MIN_WORK;
    /* Pass 1: size of each label's feature union. */
#pragma omp parallel num_threads(nthr) if (par)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        unsigned char *m = seen + (size_t)tid * (size_t)F;
        int32_t *t = touched + (size_t)tid * (size_t)F;
#pragma omp for schedule(dynamic, 16)
        for (int64_t j = 0; j < L; j++) {
            int64_t nt = 0;
            for (int64_t k = pYT.indptr[j]; k < pYT.indptr[j + 1]; k++) {
                int64_t n = pYT.indices[k];
                for (int64_t q = X->indptr[n]; q < X->indptr[n + 1]; q++)
                    if (!m[X->indices[q]]) {
                        m[X->indices[q]] = 1;
                        t[nt++] = X->indices[q];
                    }
            }
            for (int64_t k = 0; k < nt; k++)
                m[t[k]] = 0;
            cnt[j + 1] = nt;
        }
    }
    cnt[0] = 0;
    for (int64_t j = 0; j < L; j++)
        cnt[j + 1] += cnt[j];
    if ((rc = xmc_csr_create(&out, L, F, cnt[L], 1, err)))
        goto out;
    memcpy(out->indptr, cnt, (size_t)(L + 1) * sizeof *cnt);

    /* Pass 2: sums, in column order, L2-normalised. */
#pragma omp parallel num_threads(nthr) if (par)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *a = acc + (size_t)tid * (size_t)F;
        unsigned char *m = seen + (size_t)tid * (size_t)F;
#pragma omp for schedule(dynamic, 16)
        for (int64_t j = 0; j < L; j++) {
            int64_t base = out->indptr[j], w = base;
            for (int64_t k = pYT.indptr[j]; k < pYT.indptr[j + 1]; k++) {
                int64_t n = pYT.indices[k];
                for (int64_t q = X->indptr[n]; q < X->indptr[n + 1]; q++) {
                    int32_t f = X->indices[q];
                    if (!m[f]) {
                        m[f] = 1;
                        out->indices[w++] = f;
                    }
                    a[f] += (X->values ? X->values[q] : 1.0f) * inv[n];
                }
            }
            qsort(out->indices + base, (size_t)(w - base), sizeof(int32_t), cmp_i32);
            double s = 0;
            for (int64_t k = base; k < w; k++) {
                int32_t f = out->indices[k];
                out->values[k] = a[f];
                s += (double)a[f] * a[f];
                a[f] = 0;
                m[f] = 0;
            }
            float sc = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
            for (int64_t k = base; k < w; k++)
                out->values[k] *= sc;
        }
    }
    *Z = out;
    out = NULL;
out:
    xmc_csr_free(out);
    xmc_free(inv);
    xmc_free(cnt);
    xmc_free(acc);
    xmc_free(seen);
    xmc_free(touched);
    pattern_free(&pY);
    pattern_free(&pYT);
    return rc;
}

/* ------------------------------------------------------------ the dataset */

/* [a; b] where b may be NULL for nb empty rows. Values are materialised
 * (ones for a NULL side) when either side has them or force_values. */
static int csr_vstack(const xmc_csr *a, const xmc_csr *b, int64_t nb, int force_values,
                      xmc_csr **out, xmc_error *err)
{
    int64_t na = a->nrows, nnz_a = xmc_csr_nnz(a), nnz_b = b ? xmc_csr_nnz(b) : 0;
    int vals = force_values || a->values || (b && b->values);
    int rc = xmc_csr_create(out, na + nb, a->ncols, nnz_a + nnz_b, vals, err);
    if (rc)
        return rc;
    xmc_csr *m = *out;
    memcpy(m->indptr, a->indptr, (size_t)(na + 1) * sizeof *m->indptr);
    memcpy(m->indices, a->indices, (size_t)nnz_a * sizeof *m->indices);
    for (int64_t r = 0; r < nb; r++)
        m->indptr[na + r + 1] = nnz_a + (b ? b->indptr[r + 1] : 0);
    if (b)
        memcpy(m->indices + nnz_a, b->indices, (size_t)nnz_b * sizeof *m->indices);
    if (vals) {
        for (int64_t k = 0; k < nnz_a; k++)
            m->values[k] = a->values ? a->values[k] : 1.0f;
        for (int64_t k = 0; k < nnz_b; k++)
            m->values[nnz_a + k] = b->values ? b->values[k] : 1.0f;
    }
    return XMC_OK;
}

/* S of the M row ids, uniformly without replacement (partial Fisher–Yates
 * from the user's seed), returned sorted so D stays before Z. */
static int sample_rows(int64_t M, int64_t S, uint64_t seed, int64_t **rows, xmc_error *err)
{
    int64_t *r = xmc_malloc((size_t)(M > 0 ? M : 1) * sizeof *r);
    if (!r)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "augment: out of memory (sample)");
    for (int64_t i = 0; i < M; i++)
        r[i] = i;
    xmc_rng g;
    xmc_rng_seed(&g, seed, 0x61756741ull /* "augA": this use's stream */);
    for (int64_t i = 0; i < S; i++) {
        int64_t k = i + (int64_t)xmc_rng_below(&g, (uint64_t)(M - i));
        int64_t t = r[i];
        r[i] = r[k];
        r[k] = t;
    }
    /* Sorting S ids of [0, M): a marker pass is O(M) and simpler than qsort. */
    unsigned char *mark = xmc_calloc((size_t)(M > 0 ? M : 1), 1);
    if (!mark) {
        xmc_free(r);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "augment: out of memory (sample)");
    }
    for (int64_t i = 0; i < S; i++)
        mark[r[i]] = 1;
    int64_t w = 0;
    for (int64_t i = 0; i < M; i++)
        if (mark[i])
            r[w++] = i;
    xmc_free(mark);
    *rows = r;
    return XMC_OK;
}

int xmc_augment(const xmc_dataset *train, const xmc_augment_opts *o, xmc_dataset **out,
                xmc_error *err)
{
    return xmc_augment_ex(train, o, out, NULL, err);
}

int xmc_augment_ex(const xmc_dataset *train, const xmc_augment_opts *o, xmc_dataset **out,
                   xmc_augment_stats *stats, xmc_error *err)
{
    if (out)
        *out = NULL;
    if (!train || !out)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "augment: no dataset or no output");
    xmc_augment_opts def;
    if (!o) {
        xmc_augment_opts_default(&def);
        o = &def;
    }
    const char *where = train->spec;
    double t0 = xmc_now();
    if (!train->Y)
        return XMC_ERR(err, XMC_EINVAL, where, 0, "augment: the training set has no labels");
    const int64_t N = train->Y->nrows, L = train->Y->ncols;
    const xmc_texts *lt = train->label_texts ? train->label_texts : train->label_names;
    const xmc_csr *lf = o->label_features;
    if (lt && lt->n != L)
        return XMC_ERR(err, XMC_EINVAL, where, 0, "augment: %lld label texts for L = %lld labels",
                       (long long)lt->n, (long long)L);
    if (!train->texts && !train->X)
        return XMC_ERR(err, XMC_EINVAL, where, 0,
                       "augment: the training set has neither texts nor features");
    if (train->texts && !lt)
        return XMC_ERR(err, XMC_EINVAL, where, 0,
                       "augment requires label texts or label features: the labels have "
                       "no texts (DIR/Y.txt) and no names");
    if (!train->texts && !lf && !o->pifa)
        return XMC_ERR(err, XMC_EINVAL, where, 0,
                       "augment requires label texts or label features: this set has only "
                       "sparse features and no label features (give DIR/Y_Xf.txt or "
                       "--label-features FILE, or derive them with --label-features pifa)");
    if (lf && train->X && (lf->nrows != L || lf->ncols != train->X->ncols))
        return XMC_ERR(err, XMC_EINVAL, where, 0,
                       "augment: label features are %lld x %lld, expected L x F = %lld x %lld",
                       (long long)lf->nrows, (long long)lf->ncols, (long long)L,
                       (long long)train->X->ncols);
    if (lf && !train->X)
        xmc_log(XMC_LOG_WARN, "augment: label features ignored: the training set has no "
                              "sparse features (label points get their texts)");
    int64_t M = N + L, S = o->sample == XMC_AUGMENT_SAMPLE_ORIGINAL ? N : o->sample;
    if (S < 0 || S > M)
        return XMC_ERR(err, XMC_EINVAL, where, 0,
                       "augment: --sample %lld: expected 1..N+L = %lld (or 0 for no sampling)",
                       (long long)o->sample, (long long)M);

    xmc_augment_stats st = {0};
    xmc_csr *T = NULL, *pifa = NULL;
    xmc_dataset *full = NULL, *sub = NULL;
    int64_t *rows = NULL;
    char spec[1024];
    snprintf(spec, sizeof spec, "augment(%s:%g)+%s", xmc_augment_kind_name(o->kind), o->delta,
             where ? where : "");
    int rc = xmc_augment_targets(train->Y, o, &T, &st, err);
    if (rc)
        goto out;
    if (train->X && !lf && o->pifa) {
        if ((rc = xmc_augment_pifa(train->X, train->Y, &pifa, err)))
            goto out;
        lf = pifa;
    }
    if (train->X && !lf)
        xmc_log(XMC_LOG_WARN,
                "augment: no label features: the %lld label points get empty feature rows "
                "(only text encoders use them; see --label-features)",
                (long long)L);
    if ((rc = xmc_dataset_alloc(&full, spec, err)))
        goto out;
    if ((rc = csr_vstack(train->Y, T, L, 1, &full->Y, err)))
        goto out;
    if (train->X &&
        (rc = csr_vstack(train->X, lf && train->X ? lf : NULL, L, 0, &full->X, err)))
        goto out;
    if (train->texts && (rc = xmc_texts_concat(train->texts, lt, &full->texts, err)))
        goto out;
    if (train->label_texts &&
        (rc = xmc_texts_concat(train->label_texts, NULL, &full->label_texts, err)))
        goto out;
    if (train->label_names &&
        (rc = xmc_texts_concat(train->label_names, NULL, &full->label_names, err)))
        goto out;
    if (train->filter && (rc = csr_vstack(train->filter, NULL, L, 0, &full->filter, err)))
        goto out;
    full->n_unknown_labels = train->n_unknown_labels;
    if ((rc = xmc_dataset_finish(full, spec, err)))
        goto out;
    if (S > 0 && S < M) {
        if ((rc = sample_rows(M, S, o->seed, &rows, err)))
            goto out;
        if ((rc = xmc_dataset_select_rows(full, rows, S, &sub, err)))
            goto out;
        xmc_dataset_free(full);
        full = sub;
        sub = NULL;
    }
    st.rows_in = N;
    st.rows_out = full->n;
    st.seconds = xmc_now() - t0;
    if (stats)
        *stats = st;
    *out = full;
    full = NULL;
out:
    xmc_csr_free(T);
    xmc_csr_free(pifa);
    xmc_dataset_free(full);
    xmc_dataset_free(sub);
    xmc_free(rows);
    return rc;
}

/* ------------------------------------------------------------ label features */

int xmc_augment_label_features_load(const char *spec, xmc_csr **out, xmc_error *err)
{
    *out = NULL;
    if (!spec || xmc_file_exists(spec) || strchr(spec, '+'))
        return XMC_OK; /* a file spec or TEXTS+LABELS: no DIR/PREFIX layout */
    char base[4096];
    snprintf(base, sizeof base, "%s", spec);
    /* DIR/PREFIX@SPLIT: the layout is what precedes the split file. */
    char *at = strrchr(base, '@');
    if (at && xmc_file_exists(at + 1))
        *at = '\0';
    char *slash = strrchr(base, '/');
    char path[4200];
    if (slash) {
        *slash = '\0';
        snprintf(path, sizeof path, "%s/Y_Xf.txt", base);
    } else {
        snprintf(path, sizeof path, "Y_Xf.txt");
    }
    const char *found = xmc_find_gz(path);
    if (!found)
        return XMC_OK;
    char copy[4200];
    snprintf(copy, sizeof copy, "%s", found); /* xmc_find_gz's buffer is static */
    return xmc_csr_read_text(copy, out, err);
}
