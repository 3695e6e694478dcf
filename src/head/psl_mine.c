/* Hard-negative mining for UniDEC / DEPSL (Kharbanda et al., WWW 2025,
 * sec. 3.3; NGAME-style): every τ epochs the trainer embeds all labels with
 * Φ_D, and each training query gets the top n·τ labels by <Φ_D(x), Φ_D(z)>
 * that are not its positives; the sampler then draws n of them per step.
 *
 * Exact path (the reference, and the fallback when no index is given):
 * blocks of QB queries x LB labels scored with one cblas_sgemm each, then per
 * query a size-k min-heap (root = worst kept: lowest score, ties the higher
 * id). Positives are only checked (binary search in the sorted Y row) for a
 * candidate that would enter the heap, so the check costs O(k log |Y_i|)
 * per improvement, not per label. Memory: QB x LB floats of scores + QB x k
 * heap scores. OpenMP over the queries of a block (the GEMM uses OpenBLAS's
 * threads); the result does not depend on the thread count.
 *
 * HNSW path: search k' = k + max_{i in block} |Y_i| neighbours (capped at
 * L) for a block of queries at once (xmc_hnsw_search parallelises over
 * them), then drop the positives and keep the first k. Approximate: recall
 * is the index's; similarities are 1 - distance (IP / cosine metrics).
 * Memory: QB x k' ids and distances.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "xmc/kernels.h"
#include "xmc/psl.h"

#define MINE_QB 256
#define MINE_LB 4096


static int mine_exact(const float *E, int64_t L, const float *Q, int64_t N, int d,
                      const xmc_csr *Y, int k, int32_t *ids, float *sims, xmc_error *err)
{
    int64_t lb = L < MINE_LB ? L : MINE_LB;
    float *S = xmc_malloc(sizeof(float) * (size_t)MINE_QB * (size_t)lb);
    float *hs = xmc_malloc(sizeof(float) * (size_t)MINE_QB * (size_t)k);
    int *hn = xmc_malloc(sizeof(int) * MINE_QB);
    if (!S || !hs || !hn) {
        xmc_free(S);
        xmc_free(hs);
        xmc_free(hn);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "psl mine: out of memory for block scratch");
    }
    for (int64_t q0 = 0; q0 < N; q0 += MINE_QB) {
        int nq = (int)(N - q0 < MINE_QB ? N - q0 : MINE_QB);
        for (int i = 0; i < nq; i++)
            hn[i] = 0;
        for (int64_t l0 = 0; l0 < L; l0 += lb) {
            int nl = (int)(L - l0 < lb ? L - l0 : lb);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nl, d, 1.0f,
                        Q + (size_t)q0 * d, d, E + (size_t)l0 * d, d, 0.0f, S, nl);
#pragma omp parallel for schedule(dynamic, 8)
            for (int i = 0; i < nq; i++) {
                int64_t r = q0 + i;
                const int32_t *y = Y ? Y->indices + Y->indptr[r] : NULL;
                int64_t ny = Y ? Y->indptr[r + 1] - Y->indptr[r] : 0;
                float *s = hs + (size_t)i * k;
                int32_t *id = ids + (size_t)r * k;
                int n = hn[i];
                const float *row = S + (size_t)i * nl;
                for (int j = 0; j < nl; j++) {
                    int32_t l = (int32_t)(l0 + j);
                    float v = row[j];
                    if (n == k && !xmc_topk_worse(s[0], id[0], v, l))
                        continue;
                    if (ny && xmc_sorted_has_i32(y, ny, l))
                        continue;
                    xmc_topk_push(s, id, &n, k, v, l);
                }
                hn[i] = n;
            }
        }
        for (int i = 0; i < nq; i++) {
            float *s = hs + (size_t)i * k;
            int32_t *id = ids + (size_t)(q0 + i) * k;
            xmc_topk_finish(s, id, hn[i], k);
            if (sims)
                memcpy(sims + (size_t)(q0 + i) * k, s, sizeof(float) * (size_t)k);
        }
    }
    xmc_free(S);
    xmc_free(hs);
    xmc_free(hn);
    return XMC_OK;
}

static int mine_hnsw(const xmc_hnsw *index, const float *Q, int64_t N, int d, const xmc_csr *Y,
                     int k, int ef, int32_t *ids, float *sims, xmc_error *err)
{
    int64_t L = xmc_hnsw_size(index);
    int64_t maxy = 0;
    if (Y)
        for (int64_t r = 0; r < N; r++) {
            int64_t ny = Y->indptr[r + 1] - Y->indptr[r];
            if (ny > maxy)
                maxy = ny;
        }
    int64_t kmax = (int64_t)k + maxy < L ? (int64_t)k + maxy : L;
    int64_t *nb = xmc_malloc(sizeof(int64_t) * (size_t)MINE_QB * (size_t)kmax);
    float *dist = xmc_malloc(sizeof(float) * (size_t)MINE_QB * (size_t)kmax);
    if (!nb || !dist) {
        xmc_free(nb);
        xmc_free(dist);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "psl mine: out of memory for search scratch");
    }
    xmc_hnsw_params hp;
    xmc_hnsw_get_params(index, &hp);
    int rc = XMC_OK;
    for (int64_t q0 = 0; q0 < N && rc == XMC_OK; q0 += MINE_QB) {
        int nq = (int)(N - q0 < MINE_QB ? N - q0 : MINE_QB);
        int64_t by = 0;
        if (Y)
            for (int i = 0; i < nq; i++) {
                int64_t ny = Y->indptr[q0 + i + 1] - Y->indptr[q0 + i];
                if (ny > by)
                    by = ny;
            }
        int kk = (int)((int64_t)k + by < L ? (int64_t)k + by : L);
        rc = xmc_hnsw_search(index, Q + (size_t)q0 * d, nq, d, kk, ef, nb, dist, err);
        if (rc)
            break;
        for (int i = 0; i < nq; i++) {
            int64_t r = q0 + i;
            const int32_t *y = Y ? Y->indices + Y->indptr[r] : NULL;
            int64_t ny = Y ? Y->indptr[r + 1] - Y->indptr[r] : 0;
            int n = 0;
            for (int j = 0; j < kk && n < k; j++) {
                int64_t l = nb[(size_t)i * kk + j];
                if (l < 0 || (ny && xmc_sorted_has_i32(y, ny, (int32_t)l)))
                    continue;
                ids[(size_t)r * k + n] = (int32_t)l;
                if (sims) {
                    float dv = dist[(size_t)i * kk + j];
                    sims[(size_t)r * k + n] = hp.metric == XMC_METRIC_L2 ? -dv : 1.0f - dv;
                }
                n++;
            }
            for (; n < k; n++) {
                ids[(size_t)r * k + n] = -1;
                if (sims)
                    sims[(size_t)r * k + n] = -INFINITY;
            }
        }
    }
    xmc_free(nb);
    xmc_free(dist);
    return rc;
}

int xmc_psl_mine(const float *E, int64_t L, const float *Q, int64_t N, int d, const xmc_csr *Y,
                 int k, const xmc_hnsw *index, int ef, int32_t *ids, float *sims,
                 xmc_error *err)
{
    if (L < 1 || L > INT32_MAX || N < 0 || d < 1 || k < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "psl mine: expected L in [1, 2^31), N >= 0, d >= 1, k >= 1; got L %lld, "
                       "N %lld, d %d, k %d",
                       (long long)L, (long long)N, d, k);
    if (Y && (Y->nrows != N || Y->ncols != L))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "psl mine: Y is %lld x %lld, expected %lld x %lld", (long long)Y->nrows,
                       (long long)Y->ncols, (long long)N, (long long)L);
    if (N == 0)
        return XMC_OK;
    if (index) {
        if (xmc_hnsw_dim(index) != d || xmc_hnsw_size(index) != L)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                           "psl mine: the index holds %lld vectors of dim %lld, expected %lld "
                           "of dim %d",
                           (long long)xmc_hnsw_size(index), (long long)xmc_hnsw_dim(index),
                           (long long)L, d);
        return mine_hnsw(index, Q, N, d, Y, k, ef, ids, sims, err);
    }
    if (!E)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl mine: label embeddings are required");
    return mine_exact(E, L, Q, N, d, Y, k, ids, sims, err);
}
