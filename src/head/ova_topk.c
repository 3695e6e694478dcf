/* Exact top-k of E W^T without the B x L score matrix.
 *
 * Blocked over label chunks: X_c = E_rows W_c^T (sgemm; a bf16 chunk is
 * widened to fp32 first, so the scores are exact fp32 products of the
 * stored weights), then each row's scores are offered to a min-heap of size
 * k kept directly in the caller's output arrays (xmc_topk_push, kernels.h). Extra memory: the B x C chunk of scores (+ C x d for bf16).
 * Order: higher score first; equal scores -> lower label id first; NaN
 * scores rank as -inf. This is a total order, so the result is unique and
 * does not depend on chunking or threads.
 * Threads: OpenMP over rows (thread t owns a contiguous block of rows and
 * its heaps), each walking all chunks; sgemm inside runs single-threaded.
 */
#include <cblas.h>
#include <math.h>

#include "internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

int xmc_ova_topk(const xmc_ova *h, const float *E, int B, int k, int32_t *labels,
                 float *scores, xmc_error *err)
{
    if (!h || !E || !labels || !scores)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova topk: NULL argument");
    if (B < 1 || B > h->sized_batch)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova topk: batch %d outside [1, max_batch %d]",
                       B, h->sized_batch);
    if (k < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova topk: k must be >= 1, got %d", k);
    const int d = h->d;
    const int64_t L = h->L, C = h->cfg.chunk, ldx = h->ldx;
    const int32_t off = (int32_t)h->cfg.label_offset;
    int T = xmc_get_threads();
    if (T > h->nthreads)
        T = h->nthreads;
    if (T > B)
        T = B;
    if (T < 1)
        T = 1;

#pragma omp parallel num_threads(T)
    {
#ifdef _OPENMP
        int tid = omp_get_thread_num();
#else
        int tid = 0;
#endif
        ova_scratch *s = &h->ts[tid];
        int r0 = (int)((int64_t)B * tid / T), r1 = (int)((int64_t)B * (tid + 1) / T);
        int nr = r1 - r0;
        int64_t seen = 0;
        for (int64_t l0 = 0; l0 < L && nr > 0; l0 += C) {
            int64_t cl = L - l0 < C ? L - l0 : C;
            const float *wc = h->w ? h->w + (size_t)l0 * d : s->wf;
            if (!h->w)
                xmc_bf16_to_f32_n(h->wb + (size_t)l0 * d, (size_t)(cl * d), s->wf);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, (int)cl, d, 1.0f,
                        E + (size_t)r0 * d, d, wc, d, 0.0f, s->x, (int)ldx);
            for (int i = 0; i < nr; i++) {
                float *hs = scores + (size_t)(r0 + i) * k;
                int32_t *hl = labels + (size_t)(r0 + i) * k;
                const float *x = s->x + (size_t)i * ldx;
                int cnt = seen < k ? (int)seen : k;
                for (int64_t j = 0; j < cl; j++)
                    xmc_topk_push(hs, hl, &cnt, k, x[j], off + (int32_t)(l0 + j));
            }
            seen += cl;
        }
        int filled = seen < k ? (int)seen : k;
        for (int i = 0; i < nr; i++)
            xmc_topk_finish(scores + (size_t)(r0 + i) * k, labels + (size_t)(r0 + i) * k, filled, k);
    }
    return XMC_OK;
}

int xmc_ova_score_labels(const xmc_ova *h, const float *e, const int32_t *labels, int n,
                         float *out, xmc_error *err)
{
    const int d = h->d;
    for (int i = 0; i < n; i++) {
        int64_t l = (int64_t)labels[i] - h->cfg.label_offset;
        if (l < 0 || l >= h->L)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova score: label %d not in this head",
                           labels[i]);
        float s;
        if (h->w) {
            s = cblas_sdot(d, e, 1, h->w + (size_t)l * d, 1);
        } else {
            const uint16_t *wb = h->wb + (size_t)l * d;
            s = 0;
            for (int j = 0; j < d; j++)
                s += e[j] * xmc_bf16_to_f32(wb[j]);
        }
        out[i] = s;
    }
    return XMC_OK;
}
