/* Renee's fused one-vs-all training step (Jain et al., MLSys 2023, Sec. 3:
 * "fused classifier pass"), on CPU.
 *
 * For a batch E (B x d) and sparse targets Y, loop over label chunks W_c
 * (C x d rows of W):
 *   X_c  = E W_c^T                          (B x C)
 *   G_c  = dl/dX_c in place                 (dense part as if Y = 0, then
 *                                            the batch's positives in the
 *                                            chunk, found from Y's rows)
 *   dE  += G_c W_c                          (W_c before its update)
 *   dW_c = G_c^T E                          (C x d)
 *   W_c  <- optimizer(W_c, dW_c)            (at once; dW never exists)
 * so the B x L logits and the L x d gradient are never materialised:
 * extra memory is O(B*C + C*d) per thread.
 *
 * Losses, per entry (x logit, y target in [0, 1]; the sums over the B x L
 * entries are the objective, as Renee, so gradients are sums over the batch
 * and the learning rate must be scaled by 1/B relative to a mean loss):
 *   BCE:  l = max(x,0) - x y + log1p(exp(-|x|)),  dl/dx = sigmoid(x) - y
 *   squared hinge, s = 2y - 1 for hard targets: l = max(0, 1 - s x)^2 and
 *         dl/dx = -2 s max(0, 1 - s x). Soft targets take the y-weighted
 *         mix of the two sides, l = y max(0,1-x)^2 + (1-y) max(0,1+x)^2,
 *         dl/dx = -2 y max(0,1-x) + 2 (1-y) max(0,1+x): convex, equal to
 *         the hard form at y in {0,1}.
 *
 * Threads: OpenMP over chunks, chunk c to thread c mod T (static, so which
 * chunks a thread sums into its dE accumulator never depends on timing);
 * the T accumulators are added in thread order. Results are bit-identical
 * for a fixed thread count and seed; W after a step does not depend on T at
 * all (each chunk's update reads only E and its own rows). cblas_sgemm
 * called inside the parallel region runs single-threaded: the OpenMP build
 * of OpenBLAS returns 1 from num_cpu_avail() when omp_in_parallel()
 * (common_thread.h), so there is one pool and no oversubscription.
 *
 * Precision: fp32 W goes through OpenBLAS sgemm. bf16 W (and momentum) use
 * the bf16 kernels (E, G_c and W_c rounded to bf16, fp32 accumulation): AMX
 * tiles where the CPU has AMX-BF16 and B, d, C are multiples of 32, else
 * vdpbf16ps (AVX512-BF16); without either, the portable path: W_c widened
 * to fp32 and sgemm. The update is computed in fp32 and rounded back to bf16 with
 * stochastic rounding keyed by (seed, step, element), reproducible and
 * independent of chunking and threads.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---------------------------------------------------------------- losses */

static inline double bce_loss(float x, float y)
{
    return (double)fmaxf(x, 0.0f) - (double)x * y + log1p(exp(-fabs((double)x)));
}

static inline double sqh_loss(float x, float y)
{
    double p = fmax(0.0, 1.0 - x), n = fmax(0.0, 1.0 + x);
    return y * p * p + (1.0 - y) * n * n;
}

static inline float entry_grad(int loss, float x, float y)
{
    if (loss == XMC_LOSS_SQHINGE)
        return -2.0f * y * fmaxf(0.0f, 1.0f - x) + 2.0f * (1.0f - y) * fmaxf(0.0f, 1.0f + x);
    return 1.0f / (1.0f + expf(-x)) - y;
}


/* X (B x cl, stride ldx) -> G in place; returns the loss of these entries
 * when want_loss. Positives come from Y's rows restricted to global labels
 * [g0, g0 + cl); their logits are saved before the dense pass overwrites
 * them (squared hinge cannot be recovered from its dense gradient). */
static double chunk_grad(float *X, int B, int64_t cl, int64_t ldx, const xmc_csr *Y,
                         const int64_t *rows, int64_t g0, int loss, int want_loss, float *xsave,
                         xmc_k_ova_grad0_fn grad0)
{
    double lsum = 0.0;
    for (int b = 0; b < B; b++) {
        float *x = X + (size_t)b * ldx;
        int64_t r = rows ? rows[b] : b;
        int64_t s = xmc_lower_bound_i32(Y->indices, Y->indptr[r], Y->indptr[r + 1], g0);
        int64_t e = xmc_lower_bound_i32(Y->indices, s, Y->indptr[r + 1], g0 + cl);
        for (int64_t p = s; p < e; p++)
            xsave[p - s] = x[Y->indices[p] - g0];
        if (want_loss) {
            double ls = 0.0;
            if (loss == XMC_LOSS_SQHINGE)
                for (int64_t j = 0; j < cl; j++)
                    ls += sqh_loss(x[j], 0.0f);
            else
                for (int64_t j = 0; j < cl; j++)
                    ls += bce_loss(x[j], 0.0f);
            for (int64_t p = s; p < e; p++) {
                float y = Y->values ? Y->values[p] : 1.0f, xv = xsave[p - s];
                ls += loss == XMC_LOSS_SQHINGE ? sqh_loss(xv, y) - sqh_loss(xv, 0.0f)
                                               : bce_loss(xv, y) - bce_loss(xv, 0.0f);
            }
            lsum += ls;
        }
        grad0(x, (size_t)cl, loss);
        for (int64_t p = s; p < e; p++) {
            float y = Y->values ? Y->values[p] : 1.0f;
            x[Y->indices[p] - g0] = entry_grad(loss, xsave[p - s], y);
        }
    }
    return lsum;
}

/* ---------------------------------------------------------------- update */

typedef struct upd {
    int opt, bf16;
    float lr, mu, wd, b1, b2, eps;
    float c1, c2;      /* Adam: 1/(1 - beta^t) */
    uint32_t key;      /* this step's stochastic-rounding key */
    xmc_k_sgdm_bf16_fn sgdm_bf16;
} upd;

static void sgdm_f32(float *restrict w, float *restrict m, const float *restrict dw, size_t n,
                     float lr, float mu, float wd)
{
    for (size_t i = 0; i < n; i++) {
        float g = dw[i] + wd * w[i];
        m[i] = mu * m[i] + g;
        w[i] -= lr * m[i];
    }
}

/* Rows [l0, l0 + cl) of the head from dw (cl x d). SGDM (PyTorch form,
 * dampening 0): g = dW + wd W; m = mu m + g; W -= lr m.
 * Adam (AdamW, decoupled decay): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * W = W (1 - lr wd) - lr mhat / (sqrt(vhat) + eps). bf16 values are
 * rounded stochastically with bits keyed by the global element index. */
static void chunk_update(xmc_ova *h, const upd *u, int64_t l0, int64_t cl, const float *dw)
{
    size_t d = (size_t)h->d, o = (size_t)l0 * d, n = (size_t)cl * d;
    uint64_t go = (uint64_t)(h->cfg.label_offset + l0) * d; /* global element index */
    if (u->opt == XMC_HEAD_SGDM) {
        if (!u->bf16)
            sgdm_f32(h->w + o, h->mom + o, dw, n, u->lr, u->mu, u->wd);
        else
            u->sgdm_bf16(h->wb + o, h->momb + o, dw, n, u->lr, u->mu, u->wd, u->key, go);
        return;
    }
    float *m = h->am + o, *v = h->av + o;
    float decay = 1.0f - u->lr * u->wd;
    for (size_t i = 0; i < n; i++) {
        float g = dw[i];
        m[i] = u->b1 * m[i] + (1.0f - u->b1) * g;
        v[i] = u->b2 * v[i] + (1.0f - u->b2) * g * g;
        float step = u->lr * (m[i] * u->c1) / (sqrtf(v[i] * u->c2) + u->eps);
        if (!u->bf16) {
            h->w[o + i] = h->w[o + i] * decay - step;
        } else {
            float wv = xmc_bf16_to_f32(h->wb[o + i]) * decay - step;
            h->wb[o + i] = xmc_f32_to_bf16_sr(wv, xmc_sr_bits(u->key, go + i));
        }
    }
}

/* ---------------------------------------------------------------- step */

static int check_step(const xmc_ova *h, const float *E, int B, const xmc_csr *Y,
                      const int64_t *rows, const xmc_ova_hparams *hp, const float *dE,
                      xmc_error *err)
{
    if (!h || !E || !Y || !hp || !dE)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova train_step: NULL argument");
    if (B < 1 || B > h->sized_batch)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "ova train_step: batch %d outside [1, max_batch %d]", B, h->sized_batch);
    if (hp->loss != XMC_LOSS_BCE && hp->loss != XMC_LOSS_SQHINGE)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova train_step: unknown loss %d", (int)hp->loss);
    if (!isfinite(hp->lr) || !isfinite(hp->weight_decay) || !isfinite(hp->momentum))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova train_step: lr/momentum/decay not finite");
    if (h->cfg.opt == XMC_HEAD_ADAM &&
        (!(hp->beta1 >= 0.0f && hp->beta1 < 1.0f) || !(hp->beta2 >= 0.0f && hp->beta2 < 1.0f) ||
         !(hp->eps > 0.0f)))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "ova train_step: Adam needs beta1, beta2 in [0,1) and eps > 0");
    for (int b = 0; b < B; b++) {
        int64_t r = rows ? rows[b] : b;
        if (r < 0 || r >= Y->nrows)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                           "ova train_step: batch row %d is Y row %lld, Y has %lld rows", b,
                           (long long)r, (long long)Y->nrows);
    }
    return XMC_OK;
}

static uint32_t sr_key(const xmc_ova *h, int64_t t)
{
    uint64_t s = h->cfg.seed;
    return xmc_hash32((uint32_t)s ^ xmc_hash32((uint32_t)(s >> 32) ^ xmc_hash32((uint32_t)t)) ^
                      (uint32_t)((uint64_t)t >> 32));
}

int xmc_ova_train_step(xmc_ova *h, const float *E, int B, const xmc_csr *Y,
                       const int64_t *rows, const xmc_ova_hparams *hp, float *dE,
                       double *loss_out, xmc_error *err)
{
    int rc = check_step(h, E, B, Y, rows, hp, dE, err);
    if (rc)
        return rc;
    const int d = h->d;
    const int64_t L = h->L, C = h->cfg.chunk, ldx = h->ldx;
    const int64_t nchunks = (L + C - 1) / C;
    const int bf = h->cfg.dtype == XMC_DT_BF16;
    xmc_k_bf16_gemm_fn bgemm = bf ? xmc_k_bf16_gemm() : NULL;
    xmc_k_bf16_split_fn bsplit = xmc_k_bf16_split();
    xmc_k_ova_grad0_fn grad0 = xmc_k_ova_grad0();
    xmc_bf16_pack_fn pack_bt = xmc_bf16_pack_bt_best(), pack_b = xmc_bf16_pack_b_best();
    xmc_k_transpose_fn transpose = xmc_k_transpose();
    int T = xmc_get_threads();
    if (T > h->nthreads)
        T = h->nthreads;
    if (T > nchunks)
        T = (int)nchunks;
    if (T < 1)
        T = 1;

    h->t++;
    upd u = {.opt = h->cfg.opt, .bf16 = bf, .lr = hp->lr, .mu = hp->momentum,
             .wd = hp->weight_decay, .b1 = hp->beta1, .b2 = hp->beta2, .eps = hp->eps,
             .key = sr_key(h, h->t), .sgdm_bf16 = xmc_k_sgdm_bf16()};
    if (u.opt == XMC_HEAD_ADAM) {
        int64_t st = hp->step > 0 ? hp->step : h->t;
        u.c1 = (float)(1.0 / (1.0 - pow((double)hp->beta1, (double)st)));
        u.c2 = (float)(1.0 / (1.0 - pow((double)hp->beta2, (double)st)));
    }
    const int dp = (d + 1) / 2;
    if (bgemm) {
        /* E once per step, in bf16: row-major (A of X = E W^T) and
         * transposed (A of dW^T = E^T G), pairs along k in both. */
        const int64_t lde = h->lde;
        for (int b = 0; b < B; b++) {
            xmc_bf16_from_f32(E + (size_t)b * d, (size_t)d, h->ebf + (size_t)b * 2 * dp);
            if (d & 1)
                h->ebf[(size_t)b * 2 * dp + d] = 0;
        }
        for (int k = 0; k < d; k++) {
            uint16_t *o = h->etr + (size_t)k * lde;
            for (int b = 0; b < B; b++)
                o[b] = xmc_f32_to_bf16(E[(size_t)b * d + k]);
            if (B & 1)
                o[B] = 0;
        }
    }
    memset(dE, 0, (size_t)B * d * sizeof *dE);
    double lsums[XMC_OVA_MAX_THREADS] = {0};
    const int want_loss = loss_out != NULL;

#pragma omp parallel num_threads(T)
    {
#ifdef _OPENMP
        int tid = omp_get_thread_num();
#else
        int tid = 0;
#endif
        ova_scratch *s = &h->ts[tid];
        float *de = tid == 0 ? dE : s->de;
        if (tid != 0)
            memset(de, 0, (size_t)B * d * sizeof *de);
        double lsum = 0.0;
        for (int64_t c = tid; c < nchunks; c += T) {
            int64_t l0 = c * C, cl = L - l0 < C ? L - l0 : C;
            int64_t g0 = h->cfg.label_offset + l0;
            if (!bf || !bgemm) {
                const float *wc;
                if (bf) {
                    xmc_bf16_to_f32_n(h->wb + (size_t)l0 * d, (size_t)(cl * d), s->wf);
                    wc = s->wf;
                } else {
                    wc = h->w + (size_t)l0 * d;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, (int)cl, d, 1.0f, E, d,
                            wc, d, 0.0f, s->x, (int)ldx);
                lsum += chunk_grad(s->x, B, cl, ldx, Y, rows, g0, hp->loss, want_loss, s->xsave,
                                   grad0);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, d, (int)cl, 1.0f, s->x,
                            (int)ldx, wc, d, 1.0f, de, d);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)cl, d, B, 1.0f, s->x,
                            (int)ldx, E, d, 0.0f, s->dw, d);
            } else {
                const uint16_t *wc = h->wb + (size_t)l0 * d;
                const int cp = (int)((cl + 1) / 2);
                pack_bt(wc, d, (int)cl, d, s->wbt);
                bgemm(B, (int)cl, dp, (const uint32_t *)h->ebf, dp, 1, s->wbt, s->x, ldx, 0);
                lsum += chunk_grad(s->x, B, cl, ldx, Y, rows, g0, hp->loss, want_loss, s->xsave,
                                   grad0);
                bsplit(s->x, B, (int)cl, ldx, s->grm, h->ldr, s->gpb);
                pack_b(wc, d, (int)cl, d, s->wb);
                bgemm(B, d, cp, (const uint32_t *)s->grm, h->ldr / 2, 1, s->wb, de, d, 1);
                /* dW_c^T = E^T G_c: G_c is then the panel-packed operand, which
                 * the split above writes directly (no transpose of G_c) */
                bgemm(d, (int)cl, (B + 1) / 2, (const uint32_t *)h->etr, h->lde / 2, 1, s->gpb,
                      s->dwt, ldx, 0);
                transpose(s->dwt, d, (int)cl, ldx, s->dw, d);
            }
            chunk_update(h, &u, l0, cl, s->dw);
        }
        lsums[tid] = lsum;
    }
    /* deterministic reduction: thread order, element-parallel */
    if (T > 1) {
        size_t n = (size_t)B * d;
#pragma omp parallel for num_threads(T) schedule(static)
        for (size_t i = 0; i < n; i++) {
            float acc = dE[i];
            for (int t = 1; t < T; t++)
                acc += h->ts[t].de[i];
            dE[i] = acc;
        }
    }
    if (loss_out) {
        double l = 0.0;
        for (int t = 0; t < T; t++)
            l += lsums[t];
        *loss_out = l;
    }
    return XMC_OK;
}
