/* The kNN memory of include/xmc/neighbors.h: normalised training
 * embeddings and their label rows, searched exactly by xmc_knn_exact
 * (exact.c) and turned into per-label scores here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "xmc/hnsw.h"
#include "xmc/neighbors.h"

#define NBR_MAGIC "XMCNBR\0\0"
#define NBR_VERSION 1u

struct xmc_neighbors {
    int64_t n, L;
    int dim;
    float *E;        /* (n, dim), unit rows (or zero) */
    int64_t *indptr; /* (n + 1) */
    int64_t maxrow;  /* the most labels of one row: k of them bound a query's list */
    int32_t *idx;    /* (nnz) */
    float *val;      /* (nnz) */
};

static void normalise(const float *in, int64_t n, int dim, float *out)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *x = in + (size_t)i * (size_t)dim;
        float *y = out + (size_t)i * (size_t)dim;
        double s = 0;
        for (int j = 0; j < dim; j++)
            s += (double)x[j] * x[j];
        float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
        for (int j = 0; j < dim; j++)
            y[j] = x[j] * inv;
    }
}

static int nbr_alloc(int64_t n, int dim, int64_t L, int64_t nnz, xmc_neighbors **out,
                     xmc_error *err)
{
    xmc_neighbors *nb = xmc_calloc(1, sizeof *nb);
    if (nb) {
        nb->n = n;
        nb->dim = dim;
        nb->L = L;
        nb->E = xmc_malloc((size_t)(n > 0 ? n : 1) * (size_t)dim * sizeof(float));
        nb->indptr = xmc_malloc((size_t)(n + 1) * sizeof(int64_t));
        nb->idx = xmc_malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(int32_t));
        nb->val = xmc_malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof(float));
    }
    if (!nb || !nb->E || !nb->indptr || !nb->idx || !nb->val) {
        xmc_neighbors_free(nb);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (kNN memory of %lld x %d)",
                       (long long)n, dim);
    }
    *out = nb;
    return XMC_OK;
}

static int64_t max_row(const xmc_neighbors *nb)
{
    int64_t m = 0;
    for (int64_t i = 0; i < nb->n; i++)
        if (nb->indptr[i + 1] - nb->indptr[i] > m)
            m = nb->indptr[i + 1] - nb->indptr[i];
    return m;
}

int xmc_neighbors_create(const float *E, int64_t n, int dim, const xmc_csr *Y, int64_t n_labels,
                         xmc_neighbors **out, xmc_error *err)
{
    *out = NULL;
    if (!E || !Y || n < 1 || dim < 1 || n_labels < 1 || Y->nrows != n)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "kNN memory: expected n >= 1 rows of dim >= 1 and their n label rows");
    const int64_t nnz = xmc_csr_nnz(Y);
    for (int64_t e = 0; e < nnz; e++)
        if (Y->indices[e] < 0 || Y->indices[e] >= n_labels)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "kNN memory: label %d outside [0, %lld)",
                           Y->indices[e], (long long)n_labels);
    for (size_t i = 0; i < (size_t)n * (size_t)dim; i++)
        if (!isfinite(E[i]))
            return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                           "kNN memory: row %lld's embedding is not finite (did training "
                           "diverge?)", (long long)(i / (size_t)dim));
    xmc_neighbors *nb = NULL;
    int rc = nbr_alloc(n, dim, n_labels, nnz, &nb, err);
    if (rc)
        return rc;
    normalise(E, n, dim, nb->E);
    memcpy(nb->indptr, Y->indptr, (size_t)(n + 1) * sizeof(int64_t));
    memcpy(nb->idx, Y->indices, (size_t)nnz * sizeof(int32_t));
    for (int64_t e = 0; e < nnz; e++)
        nb->val[e] = Y->values ? Y->values[e] : 1.0f;
    nb->maxrow = max_row(nb);
    *out = nb;
    return XMC_OK;
}

void xmc_neighbors_free(xmc_neighbors *nb)
{
    if (!nb)
        return;
    xmc_free(nb->E);
    xmc_free(nb->indptr);
    xmc_free(nb->idx);
    xmc_free(nb->val);
    xmc_free(nb);
}

int64_t xmc_neighbors_rows(const xmc_neighbors *nb) { return nb->n; }
int xmc_neighbors_dim(const xmc_neighbors *nb) { return nb->dim; }

size_t xmc_neighbors_bytes_for(int64_t n, int dim, int64_t nnz)
{
    return (size_t)n * (size_t)dim * sizeof(float) + (size_t)(n + 1) * sizeof(int64_t) +
           (size_t)nnz * (sizeof(int32_t) + sizeof(float));
}

size_t xmc_neighbors_bytes(const xmc_neighbors *nb)
{
    return nb ? xmc_neighbors_bytes_for(nb->n, nb->dim, nb->indptr[nb->n]) : 0;
}

typedef struct lab_w {
    int32_t l;
    float w;
} lab_w;

static int cmp_lab_w(const void *a, const void *b)
{
    int32_t x = ((const lab_w *)a)->l, y = ((const lab_w *)b)->l;
    return (x > y) - (x < y);
}

/* Row i's neighbour labels with their softmax weights, merged by label into
 * buf (ascending); returns the count. */
static int64_t row_scores(const xmc_neighbors *nb, const int64_t *ids, const float *dist, int k,
                          float temp, lab_w *buf)
{
    /* dist = 1 - cos; the softmax is shifted by the best neighbour. */
    double z = 0;
    for (int j = 0; j < k && ids[j] >= 0; j++)
        z += exp((double)(dist[0] - dist[j]) / temp);
    int64_t c = 0;
    for (int j = 0; j < k && ids[j] >= 0; j++) {
        float w = (float)(exp((double)(dist[0] - dist[j]) / temp) / z);
        for (int64_t e = nb->indptr[ids[j]]; e < nb->indptr[ids[j] + 1]; e++)
            buf[c++] = (lab_w){nb->idx[e], w * nb->val[e]};
    }
    qsort(buf, (size_t)c, sizeof *buf, cmp_lab_w);
    int64_t m = 0;
    for (int64_t e = 0; e < c; e++) {
        if (m > 0 && buf[m - 1].l == buf[e].l)
            buf[m - 1].w += buf[e].w;
        else
            buf[m++] = buf[e];
    }
    return m;
}

int xmc_neighbors_scores(const xmc_neighbors *nb, const float *Q, int64_t nq, int k, float temp,
                         xmc_csr **out, xmc_error *err)
{
    *out = NULL;
    if (!nb || (!Q && nq > 0) || nq < 0 || k < 1 || !(temp > 0))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "kNN scores: expected queries, k >= 1 and temperature > 0");
    if (k > nb->n)
        k = (int)nb->n;
    size_t nk = (size_t)(nq > 0 ? nq : 1) * (size_t)k;
    float *Qn = xmc_malloc((size_t)(nq > 0 ? nq : 1) * (size_t)nb->dim * sizeof(float));
    int64_t *ids = xmc_malloc(nk * sizeof(int64_t));
    float *dist = xmc_malloc(nk * sizeof(float));
    lab_w *buf = xmc_malloc((size_t)(nb->maxrow * k > 0 ? nb->maxrow * k : 1) * sizeof(lab_w));
    xmc_csr *K = NULL;
    int rc = XMC_OK;
    if (!Qn || !ids || !dist || !buf) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (kNN scores of %lld rows)",
                     (long long)nq);
        goto out;
    }
    normalise(Q, nq, nb->dim, Qn);
    if (nq > 0 && (rc = xmc_knn_exact(nb->E, nb->n, nb->dim, XMC_METRIC_IP, Qn, nq, k, ids, dist,
                                      err)))
        goto out;
    /* The neighbours' label counts bound the output; each row is then
     * weighted and merged once, straight into it. */
    int64_t bound = 0;
    for (size_t e = 0; e < (size_t)nq * (size_t)k; e++)
        if (ids[e] >= 0)
            bound += nb->indptr[ids[e] + 1] - nb->indptr[ids[e]];
    if ((rc = xmc_csr_create(&K, nq, nb->L, bound, 1, err)))
        goto out;
    for (int64_t i = 0; i < nq; i++) {
        int64_t m = row_scores(nb, ids + (size_t)i * k, dist + (size_t)i * k, k, temp, buf);
        for (int64_t e = 0; e < m; e++) {
            K->indices[K->indptr[i] + e] = buf[e].l;
            K->values[K->indptr[i] + e] = buf[e].w;
        }
        K->indptr[i + 1] = K->indptr[i] + m;
    }
    *out = K;
out:
    xmc_free(Qn);
    xmc_free(ids);
    xmc_free(dist);
    xmc_free(buf);
    return rc;
}

/* ------------------------------------------------------------ file */

typedef struct stream {
    FILE *f;
    uint32_t crc;
    int bad;
} stream;

static void put(stream *s, const void *p, size_t n)
{
    if (s->bad || n == 0)
        return;
    if (fwrite(p, 1, n, s->f) != n)
        s->bad = 1;
    s->crc = xmc_crc32(s->crc, p, n);
}

static void get(stream *s, void *p, size_t n)
{
    if (s->bad || n == 0)
        return;
    if (fread(p, 1, n, s->f) != n)
        s->bad = 1;
    else
        s->crc = xmc_crc32(s->crc, p, n);
}

int xmc_neighbors_save(const xmc_neighbors *nb, FILE *f, const char *path, xmc_error *err)
{
    if (!nb || !f)
        return XMC_ERR(err, XMC_EINVAL, path, 0, "kNN memory save: NULL argument");
    if (fwrite(NBR_MAGIC, 1, 8, f) != 8)
        return XMC_ERR(err, XMC_EIO, path, 0, "kNN memory save: write failed");
    stream s = {f, 0, 0};
    uint32_t ver = NBR_VERSION;
    int64_t hdr[4] = {nb->n, nb->dim, nb->L, nb->indptr[nb->n]};
    put(&s, &ver, 4);
    put(&s, hdr, sizeof hdr);
    put(&s, nb->E, (size_t)nb->n * (size_t)nb->dim * sizeof(float));
    put(&s, nb->indptr, (size_t)(nb->n + 1) * sizeof(int64_t));
    put(&s, nb->idx, (size_t)hdr[3] * sizeof(int32_t));
    put(&s, nb->val, (size_t)hdr[3] * sizeof(float));
    uint32_t crc = s.crc;
    if (s.bad || fwrite(&crc, 1, 4, f) != 4)
        return XMC_ERR(err, XMC_EIO, path, 0, "kNN memory save: write failed");
    return XMC_OK;
}

int xmc_neighbors_load(FILE *f, const char *path, xmc_neighbors **out, xmc_error *err)
{
    *out = NULL;
    char magic[8];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, NBR_MAGIC, 8) != 0)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0,
                       "kNN memory load: expected magic XMCNBR (kNN memory), not found");
    stream s = {f, 0, 0};
    uint32_t ver = 0;
    int64_t hdr[4] = {0};
    get(&s, &ver, 4);
    get(&s, hdr, sizeof hdr);
    if (s.bad)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "kNN memory load: truncated header");
    if (ver != NBR_VERSION)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "kNN memory load: expected version %u, got %u",
                       NBR_VERSION, ver);
    /* Sizes are bounded before anything is allocated from them. */
    if (hdr[0] < 1 || hdr[0] > INT32_MAX || hdr[1] < 1 || hdr[1] > 1 << 20 || hdr[2] < 1 ||
        hdr[2] > INT32_MAX || hdr[3] < 0 || hdr[3] > hdr[0] * hdr[2])
        return XMC_ERR(err, XMC_ECORRUPT, path, 0,
                       "kNN memory load: implausible header (rows %lld, dim %lld, labels %lld, "
                       "entries %lld)", (long long)hdr[0], (long long)hdr[1], (long long)hdr[2],
                       (long long)hdr[3]);
    /* ... and against what the file holds, so a damaged header cannot ask
     * for more memory than the file could fill. */
    struct stat sb;
    long pos = ftell(f);
    uint64_t need = (uint64_t)hdr[0] * (uint64_t)hdr[1] * 4 + (uint64_t)(hdr[0] + 1) * 8 +
                    (uint64_t)hdr[3] * 8 + 4;
    if (pos >= 0 && fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) &&
        need > (uint64_t)sb.st_size - (uint64_t)pos)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0,
                       "kNN memory load: truncated (the header needs %llu more bytes, the file "
                       "has %llu)", (unsigned long long)need,
                       (unsigned long long)((uint64_t)sb.st_size - (uint64_t)pos));
    xmc_neighbors *nb = NULL;
    int rc = nbr_alloc(hdr[0], (int)hdr[1], hdr[2], hdr[3], &nb, err);
    if (rc)
        return rc;
    get(&s, nb->E, (size_t)nb->n * (size_t)nb->dim * sizeof(float));
    get(&s, nb->indptr, (size_t)(nb->n + 1) * sizeof(int64_t));
    get(&s, nb->idx, (size_t)hdr[3] * sizeof(int32_t));
    get(&s, nb->val, (size_t)hdr[3] * sizeof(float));
    uint32_t want = s.crc, got = 0;
    if (s.bad || fread(&got, 1, 4, f) != 4)
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "kNN memory load: truncated data");
    else if (got != want)
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0,
                     "kNN memory load: checksum mismatch (expected %08x, found %08x)", want, got);
    /* A matching checksum does not make the CSR well formed: check it. */
    for (int64_t i = 0; !rc && i < nb->n; i++)
        if (nb->indptr[0] != 0 || nb->indptr[i + 1] < nb->indptr[i] ||
            nb->indptr[i + 1] > hdr[3])
            rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "kNN memory load: bad row offsets");
    if (!rc && nb->indptr[nb->n] != hdr[3])
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "kNN memory load: bad row offsets");
    for (int64_t i = 0; !rc && i < nb->n; i++) { /* rows were written unit or zero */
        const float *x = nb->E + (size_t)i * (size_t)nb->dim;
        double q = 0;
        for (int j = 0; j < nb->dim; j++)
            q += (double)x[j] * x[j];
        if (!(q == 0 || fabs(q - 1) < 1e-3))
            rc = XMC_ERR(err, XMC_ECORRUPT, path, 0,
                         "kNN memory load: row %lld is not a unit vector", (long long)i);
    }
    for (int64_t e = 0; !rc && e < hdr[3]; e++)
        if (nb->idx[e] < 0 || nb->idx[e] >= nb->L || !isfinite(nb->val[e]))
            rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "kNN memory load: bad label entry %lld",
                         (long long)e);
    if (rc) {
        xmc_neighbors_free(nb);
        return rc;
    }
    nb->maxrow = max_row(nb);
    *out = nb;
    return XMC_OK;
}
