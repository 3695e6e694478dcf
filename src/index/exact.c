/* Exact k-NN by brute force: the oracle for HNSW recall (tests, `xmc bench
 * ann`) and the exact baseline for ANN inference.
 *
 * Scores come from OpenBLAS GEMM over blocks of QB queries x NB base rows
 * (S = Q X^T), then each query keeps its k best in a sorted array. L2 uses
 * |q|^2 - 2 q.x + |x|^2 and cosine divides by the norms, both from norms
 * computed once. Only the top-k merge is hand-written (GEMM has no fused
 * top-k). Memory: QB x NB floats of scores (8 MB) + n norms.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "index/internal.h"

#define QB 256
#define NB 8192

static void norms(const float *x, int64_t n, int64_t dim, float *out)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < dim; j++)
            s += (double)x[i * dim + j] * x[i * dim + j];
        out[i] = (float)s;
    }
}

int xmc_knn_exact(const float *base, int64_t n, int64_t dim, int metric, const float *q,
                  int64_t nq, int k, int64_t *ids, float *dist, xmc_error *err)
{
    if ((!base && n > 0) || (!q && nq > 0) || (!ids && nq > 0) || n < 0 || nq < 0 || dim < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "exact k-NN: NULL data or bad sizes");
    if (metric < XMC_METRIC_IP || metric > XMC_METRIC_L2)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "exact k-NN: unknown metric %d", metric);
    if (k <= 0 || k > n)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "exact k-NN: k must be in 1..%lld, got %d",
                       (long long)n, k);
    if (dim > 0x7fffffff || n > 0x7fffffff)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "exact k-NN: sizes exceed int range");
    int rc = XMC_OK;
    float *S = xmc_malloc(sizeof(float) * QB * NB);
    float *bn = metric == XMC_METRIC_IP ? NULL : xmc_malloc(sizeof(float) * (size_t)n);
    float *qn = metric == XMC_METRIC_IP ? NULL : xmc_malloc(sizeof(float) * (size_t)nq);
    float *bd = xmc_malloc(sizeof(float) * (size_t)nq * (size_t)k); /* internal, ascending */
    if (!S || !bd || (metric != XMC_METRIC_IP && (!bn || (!qn && nq > 0)))) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "exact k-NN: out of memory");
        goto out;
    }
    if (bn) {
        norms(base, n, dim, bn);
        norms(q, nq, dim, qn);
    }
    for (int64_t i = 0; i < nq * k; i++) {
        bd[i] = INFINITY;
        ids[i] = -1;
    }
    for (int64_t q0 = 0; q0 < nq; q0 += QB) {
        int qb = (int)(nq - q0 < QB ? nq - q0 : QB);
        for (int64_t b0 = 0; b0 < n; b0 += NB) {
            int nb = (int)(n - b0 < NB ? n - b0 : NB);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qb, nb, (int)dim, 1.0f,
                        q + q0 * dim, (int)dim, base + b0 * dim, (int)dim, 0.0f, S, nb);
#pragma omp parallel for schedule(static)
            for (int i = 0; i < qb; i++) {
                int64_t qi = q0 + i;
                float *kd = bd + qi * k;
                int64_t *ki = ids + qi * k;
                const float *row = S + (size_t)i * nb;
                for (int j = 0; j < nb; j++) {
                    int64_t id = b0 + j;
                    float d;
                    if (metric == XMC_METRIC_IP)
                        d = -row[j];
                    else if (metric == XMC_METRIC_COSINE)
                        d = qn[qi] > 0 && bn[id] > 0 ? -row[j] / sqrtf(qn[qi] * bn[id]) : 0.0f;
                    else
                        d = fmaxf(qn[qi] - 2.0f * row[j] + bn[id], 0.0f);
                    if (d >= kd[k - 1]) /* ties keep the smaller id (seen first) */
                        continue;
                    int p = k - 1;
                    while (p > 0 && kd[p - 1] > d) {
                        kd[p] = kd[p - 1];
                        ki[p] = ki[p - 1];
                        p--;
                    }
                    kd[p] = d;
                    ki[p] = id;
                }
            }
        }
    }
    if (dist)
        for (int64_t i = 0; i < nq * k; i++)
            dist[i] = metric == XMC_METRIC_L2 ? bd[i] : 1.0f + bd[i];
out:
    xmc_free(S);
    xmc_free(bn);
    xmc_free(qn);
    xmc_free(bd);
    return rc;
}

double xmc_knn_recall(const int64_t *approx, const int64_t *exact, int64_t nq, int k)
{
    if (nq <= 0 || k <= 0)
        return 0.0;
    int64_t hit = 0;
    for (int64_t i = 0; i < nq; i++)
        for (int a = 0; a < k; a++) {
            int64_t x = approx[i * k + a];
            if (x < 0)
                continue;
            for (int b = 0; b < k; b++)
                if (exact[i * k + b] == x) {
                    hit++;
                    break;
                }
        }
    return (double)hit / ((double)nq * k);
}
