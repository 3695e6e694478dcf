/* Fixed fan-in head: the fused training pass, logits and top-k.
 *
 * Algorithm (Renee's fused chunked pass, Jain et al. MLSys 2023, applied to
 * the fixed fan-in layer of SPARTEX, Ullah et al. NeurIPS 2024):
 *   ET = E^T in B-tiles (ffi_internal.h); each thread t owns the labels
 *   [L t/T, L (t+1)/T) and a private D_t = (dE)^T accumulator;
 *   for each chunk of its labels, for each B-tile:
 *     Z[u, :] = bias[u] + sum_k W[u,k] ET[idx[u,k], :]     (kernel fwd)
 *     G = dl/dZ at target 0 (kernel act), then the positives of Y (sparse,
 *         walked with one cursor per batch row, since Y's rows are sorted)
 *         are fixed up in place; the loss is summed when asked;
 *     gW[u,k] += ET[idx[u,k], :] . G[u, :];  D_t[idx[u,k], :] += W[u,k] G[u, :]
 *   then the chunk's W, bias and optimizer state are updated at once.
 *   dE = sum_t D_t^T, threads summed in order.
 * Extra memory: O(T (d B + chunk (Bt + F))) from the arena; no B x L buffer,
 * no allocation. Every (label, k) and every D_t element sees its additions in
 * the same order whatever the chunk size, so results are bit-identical
 * across chunk sizes; the thread count changes only the order of the final
 * sum over threads.
 */
#include <math.h>
#include <string.h>

#include "head/ffi_internal.h"
#include "xmc/kernels.h"

#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID() omp_get_thread_num()
#define THREAD_COUNT() omp_get_num_threads()
#else
#define THREAD_ID() 0
#define THREAD_COUNT() 1
#endif

typedef struct tls {
    float *D, *Z, *G, *gW, *gb;
    int64_t *cur;
    double loss;
} tls;
_Static_assert(sizeof(tls) <= 64, "per-thread record must fit the 64 bytes sized in ffi.c");

/* E (B x d) -> ET in B-tiles of width bt: tile at ET + d*b0, row j at + j*n. */
static void transpose_tiles(const float *E, int B, int d, int bt, float *ET, int T)
{
    int ntiles = (B + bt - 1) / bt;
#pragma omp parallel for schedule(static) num_threads(T) collapse(2)
    for (int t = 0; t < ntiles; t++)
        for (int j0 = 0; j0 < d; j0 += 64) {
            int b0 = t * bt, n = B - b0 < bt ? B - b0 : bt;
            int j1 = j0 + 64 < d ? j0 + 64 : d;
            float *tile = ET + (size_t)d * b0;
            for (int i = 0; i < n; i++) {
                const float *e = E + (size_t)(b0 + i) * d;
                for (int j = j0; j < j1; j++)
                    tile[(size_t)j * n + i] = e[j];
            }
        }
}


static double softplus(double z) { return (z > 0 ? z : 0) + log1p(exp(-fabs(z))); }

typedef struct opt_consts {
    float lr, mu, wd, b1, b2, eps, bc1, bc2;
    int adam;
} opt_consts;

/* SGDM: g += wd w (L2 into the gradient); m = mu m + g; w -= lr m.
 * Adam: w -= lr wd w (decoupled, first); m, v moments; w -= lr mhat /
 * (sqrt(vhat) + eps) -- the order of include/xmc/optim.h. */
static void update(float *restrict w, float *restrict m, float *restrict v,
                   const float *restrict g, size_t n, const opt_consts *o, int decay)
{
    float lr = o->lr, wd = decay ? o->wd : 0.0f;
    if (!o->adam) {
        float mu = o->mu;
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + wd * w[i];
            m[i] = mu * m[i] + gi;
            w[i] -= lr * m[i];
        }
        return;
    }
    float b1 = o->b1, b2 = o->b2, eps = o->eps, ibc1 = 1.0f / o->bc1, ibc2 = 1.0f / o->bc2;
    for (size_t i = 0; i < n; i++) {
        float wi = w[i] - lr * wd * w[i], gi = g[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        w[i] = wi - lr * (m[i] * ibc1) / (sqrtf(v[i] * ibc2) + eps);
    }
}

static int check_hparams(const xmc_ffi *h, const xmc_ova_hparams *hp, float scale,
                         xmc_error *err)
{
    if (hp->loss != XMC_LOSS_BCE && hp->loss != XMC_LOSS_SQHINGE)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: unknown loss %d", (int)hp->loss);
    if (!isfinite(hp->lr) || hp->lr < 0 || !isfinite(hp->weight_decay) || !isfinite(scale))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "ffi: lr (%g), weight_decay (%g) and loss_scale (%g) must be finite, "
                       "lr >= 0",
                       (double)hp->lr, (double)hp->weight_decay, (double)scale);
    if (h->cfg.opt == XMC_HEAD_SGDM && !(hp->momentum >= 0 && hp->momentum < 1))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: momentum must be in [0, 1), got %g",
                       (double)hp->momentum);
    if (h->cfg.opt == XMC_HEAD_ADAM &&
        (!(hp->beta1 >= 0 && hp->beta1 < 1) || !(hp->beta2 >= 0 && hp->beta2 < 1) ||
         !(hp->eps > 0)))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "ffi: Adam needs beta1, beta2 in [0, 1) and eps > 0; got %g %g %g",
                       (double)hp->beta1, (double)hp->beta2, (double)hp->eps);
    return XMC_OK;
}

static int check_batch(const xmc_ffi *h, const float *E, int B, const xmc_csr *Y,
                       const int64_t *rows, xmc_error *err)
{
    if (!E)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: E is NULL");
    if (B < 1 || B > h->cfg.max_batch)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: batch %d outside [1, max_batch = %d]", B,
                       h->cfg.max_batch);
    if (!Y)
        return XMC_OK;
    if (Y->ncols < h->cfg.label_offset + h->cfg.n_labels)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "ffi: Y has %lld columns, the head's labels reach %lld",
                       (long long)Y->ncols, (long long)(h->cfg.label_offset + h->cfg.n_labels));
    if (!rows && B > Y->nrows)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: batch %d > Y rows %lld", B,
                       (long long)Y->nrows);
    if (rows)
        for (int b = 0; b < B; b++)
            if (rows[b] < 0 || rows[b] >= Y->nrows)
                return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: rows[%d] = %lld outside [0, %lld)",
                               b, (long long)rows[b], (long long)Y->nrows);
    return XMC_OK;
}

int xmc_ffi_train_step(xmc_ffi *h, const float *E, int B, const xmc_csr *Y,
                       const int64_t *rows, const xmc_ova_hparams *hp, float *dE,
                       double *loss_out, xmc_error *err)
{
    return xmc_ffi_train_step_ex(h, E, B, Y, rows, hp, 1.0f, dE, loss_out, err);
}

int xmc_ffi_train_step_ex(xmc_ffi *h, const float *E, int B, const xmc_csr *Y,
                          const int64_t *rows, const xmc_ova_hparams *hp, float loss_scale,
                          float *dE, double *loss_out, xmc_error *err)
{
    int rc;
    if (!h || !hp || !dE || !Y)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: NULL head, Y, hparams or dE");
    if ((rc = check_batch(h, E, B, Y, rows, err)) || (rc = check_hparams(h, hp, loss_scale, err)))
        return rc;

    const ffi_kernels *K = ffi_kernels_best();
    const int d = h->cfg.d_in, F = h->cfg.fan_in, bt = h->btile, T = h->threads;
    const int64_t L = h->cfg.n_labels, off = h->cfg.label_offset, C = h->cfg.chunk;
    const int loss = hp->loss, want_loss = loss_out != NULL;
    opt_consts oc = {hp->lr, hp->momentum, hp->weight_decay, hp->beta1, hp->beta2, hp->eps,
                     1, 1, h->cfg.opt == XMC_HEAD_ADAM};
    if (oc.adam) {
        double t = hp->step > 0 ? (double)hp->step : (double)(h->steps + 1);
        oc.bc1 = (float)(1.0 - pow((double)hp->beta1, t));
        oc.bc2 = (float)(1.0 - pow((double)hp->beta2, t));
    }

    xmc_arena *a = h->arena;
    xmc_arena_reset(a);
    float *ET = xmc_arena_alloc(a, (size_t)d * B * 4);
    tls *tl = xmc_arena_alloc(a, (size_t)T * 64);
    int ok = ET && tl;
    for (int t = 0; ok && t < T; t++) {
        tl[t].D = xmc_arena_alloc(a, (size_t)d * B * 4);
        tl[t].Z = xmc_arena_alloc(a, (size_t)C * bt * 4);
        tl[t].G = xmc_arena_alloc(a, (size_t)C * bt * 4);
        tl[t].gW = xmc_arena_alloc(a, (size_t)C * F * 4);
        tl[t].gb = xmc_arena_alloc(a, (size_t)C * 4);
        tl[t].cur = xmc_arena_alloc(a, (size_t)B * 8);
        tl[t].loss = 0;
        ok = tl[t].D && tl[t].Z && tl[t].G && tl[t].gW && tl[t].gb && tl[t].cur;
    }
    if (!ok) /* a sizing bug of ours (ffi.c scratch_size) */
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ffi: step scratch exceeds the arena (%zu bytes)",
                       xmc_arena_capacity(a));
    transpose_tiles(E, B, d, bt, ET, T);

    int used_T = 1;
#pragma omp parallel num_threads(T)
    {
        const int t = THREAD_ID(), nt = THREAD_COUNT();
        if (t == 0)
            used_T = nt;
        tls *me = &tl[t];
        memset(me->D, 0, (size_t)d * B * 4);
        const int64_t lo = L * t / nt, hi = L * (t + 1) / nt;
        for (int b = 0; b < B; b++) {
            int64_t r = rows ? rows[b] : b;
            me->cur[b] = xmc_lower_bound_i32(Y->indices, Y->indptr[r], Y->indptr[r + 1], off + lo);
        }
        double lsum = 0;
        for (int64_t c0 = lo; c0 < hi; c0 += C) {
            const int nc = (int)(hi - c0 < C ? hi - c0 : C);
            const int64_t c1 = c0 + nc;
            memset(me->gW, 0, (size_t)nc * F * 4);
            memset(me->gb, 0, (size_t)nc * 4);
            for (int b0 = 0; b0 < B; b0 += bt) {
                const int n = B - b0 < bt ? B - b0 : bt;
                const float *X = ET + (size_t)d * b0;
                float *Dt = me->D + (size_t)d * b0;
                float *Z = me->Z, *G = me->G;
                for (int u = 0; u < nc; u++)
                    K->fwd(X, n, h->idx + (c0 + u) * F, h->W + (c0 + u) * F, F,
                           h->bias ? h->bias[c0 + u] : 0.0f, n, Z + (size_t)u * n);
                K->act(Z, G, (size_t)nc * n, loss);
                if (want_loss) {
                    for (size_t q = 0; q < (size_t)nc * n; q++) {
                        double z = Z[q], t1 = 1 + z;
                        lsum += loss == XMC_LOSS_BCE ? softplus(z) : (t1 > 0 ? t1 * t1 : 0);
                    }
                }
                /* Positives of this chunk and tile, from each row's cursor. */
                for (int i = 0; i < n; i++) {
                    const int64_t r = rows ? rows[b0 + i] : b0 + i;
                    int64_t p = me->cur[b0 + i];
                    const int64_t pend = Y->indptr[r + 1];
                    for (; p < pend && Y->indices[p] < off + c1; p++) {
                        size_t q = (size_t)(Y->indices[p] - off - c0) * n + i;
                        float y = Y->values ? Y->values[p] : 1.0f, z = Z[q];
                        if (loss == XMC_LOSS_BCE) {
                            G[q] -= y;
                            if (want_loss)
                                lsum -= (double)y * z;
                        } else {
                            float tp = 1.0f - z > 0 ? 1.0f - z : 0.0f;
                            float tn = 1.0f + z > 0 ? 1.0f + z : 0.0f;
                            G[q] = (1.0f - y) * G[q] - 2.0f * y * tp;
                            if (want_loss)
                                lsum += (double)y * ((double)tp * tp - (double)tn * tn);
                        }
                    }
                    me->cur[b0 + i] = p;
                }
                if (loss_scale != 1.0f)
                    for (size_t q = 0; q < (size_t)nc * n; q++)
                        G[q] *= loss_scale;
                for (int u = 0; u < nc; u++) {
                    const float *g = G + (size_t)u * n;
                    K->bwd(X, Dt, n, h->idx + (c0 + u) * F, h->W + (c0 + u) * F, F, g, n,
                           me->gW + (size_t)u * F);
                    if (h->bias) {
                        float s = 0;
                        for (int i = 0; i < n; i++)
                            s += g[i];
                        me->gb[u] += s;
                    }
                }
            }
            update(h->W + c0 * F, h->m + c0 * F, h->v ? h->v + c0 * F : NULL, me->gW,
                   (size_t)nc * F, &oc, 1);
            if (h->bias)
                update(h->bias + c0, h->mb + c0, h->vb ? h->vb + c0 : NULL, me->gb, (size_t)nc,
                       &oc, 0);
        }
        me->loss = lsum;
    }

    /* dE = sum_t D_t^T, in thread order (deterministic). */
#pragma omp parallel for schedule(static) num_threads(T)
    for (int b = 0; b < B; b++) {
        const int b0 = b / bt * bt, n = B - b0 < bt ? B - b0 : bt, i = b - b0;
        float *out = dE + (size_t)b * d;
        for (int j = 0; j < d; j++) {
            size_t q = (size_t)d * b0 + (size_t)j * n + i;
            float s = tl[0].D[q];
            for (int t = 1; t < used_T; t++)
                s += tl[t].D[q];
            out[j] = s;
        }
    }
    if (loss_out) {
        double s = 0;
        for (int t = 0; t < used_T; t++)
            s += tl[t].loss;
        *loss_out = s;
    }
    h->steps++;
    return XMC_OK;
}

/* ------------------------------------------------------------- inference */

int xmc_ffi_logits(const xmc_ffi *h, const float *E, int B, int64_t l0, int64_t l1,
                   float *out, xmc_error *err)
{
    int rc;
    if (!h || !out)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: NULL head or output");
    if (B < 1 || !E)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: batch %d < 1 or E NULL", B);
    if (l0 < 0 || l1 < l0 || l1 > h->cfg.n_labels)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: labels [%lld, %lld) outside [0, %lld)",
                       (long long)l0, (long long)l1, (long long)h->cfg.n_labels);
    const ffi_kernels *K = ffi_kernels_best();
    const int d = h->cfg.d_in, F = h->cfg.fan_in, bt = h->btile, T = h->threads;
    float *ET = xmc_malloc_aligned((size_t)d * B * 4);
    float *z = xmc_malloc_aligned((size_t)T * bt * 4);
    if (!ET || !z) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ffi: out of memory for logits scratch");
        goto done;
    }
    transpose_tiles(E, B, d, bt, ET, T);
    const int64_t nl = l1 - l0;
#pragma omp parallel for schedule(static) num_threads(T)
    for (int64_t u = l0; u < l1; u++) {
        float *zt = z + (size_t)THREAD_ID() * bt;
        for (int b0 = 0; b0 < B; b0 += bt) {
            int n = B - b0 < bt ? B - b0 : bt;
            K->fwd(ET + (size_t)d * b0, n, h->idx + u * F, h->W + u * F, F,
                   h->bias ? h->bias[u] : 0.0f, n, zt);
            for (int i = 0; i < n; i++)
                out[(size_t)(b0 + i) * nl + (u - l0)] = zt[i];
        }
    }
    rc = XMC_OK;
done:
    xmc_free_aligned(ET);
    xmc_free_aligned(z);
    return rc;
}

int xmc_ffi_topk(const xmc_ffi *h, const float *E, int B, int k, int32_t *labels,
                 float *scores, xmc_error *err)
{
    if (!h || !labels || !scores)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: NULL head or output");
    if (!E || k < 1 || B < 1 || B > h->cfg.max_batch)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "ffi: top-k needs k >= 1 and batch in [1, max_batch = %d] (grow it with "
                       "xmc_ffi_reserve); got k %d, batch %d",
                       h->cfg.max_batch, k, B);
    const ffi_kernels *K = ffi_kernels_best();
    const int d = h->cfg.d_in, F = h->cfg.fan_in, T = h->threads;
    const int64_t L = h->cfg.n_labels, off = h->cfg.label_offset;
    /* Threads split the rows (tiles of rt rows), each scanning all labels, so
     * a row's list lives in its output slots and needs no merge. The step
     * scratch is reused: ET (d x B), then T tiles of z and B counts. */
    int rt = (B + T - 1) / T;
    rt = (rt + 15) / 16 * 16;
    if (rt > h->btile)
        rt = h->btile;
    xmc_arena *a = h->arena; /* scratch only: the weights are not touched */
    xmc_arena_reset(a);
    float *ET = xmc_arena_alloc(a, (size_t)d * B * 4);
    float *z = xmc_arena_alloc(a, (size_t)T * rt * 4);
    int *cnt = xmc_arena_alloc(a, (size_t)B * sizeof *cnt);
    if (!ET || !z || !cnt) /* a sizing bug of ours (ffi.c scratch_size) */
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ffi: top-k scratch exceeds the arena (%zu bytes)",
                       xmc_arena_capacity(a));
    transpose_tiles(E, B, d, rt, ET, T);
    const int ntiles = (B + rt - 1) / rt;
#pragma omp parallel for schedule(dynamic, 1) num_threads(T)
    for (int t = 0; t < ntiles; t++) {
        const int b0 = t * rt, n = B - b0 < rt ? B - b0 : rt;
        float *zt = z + (size_t)THREAD_ID() * rt;
        for (int i = 0; i < n; i++)
            cnt[b0 + i] = 0;
        for (int64_t u = 0; u < L; u++) {
            K->fwd(ET + (size_t)d * b0, n, h->idx + u * F, h->W + u * F, F,
                   h->bias ? h->bias[u] : 0.0f, n, zt);
            for (int i = 0; i < n; i++) {
                size_t row = (size_t)(b0 + i) * k;
                xmc_topk_push(scores + row, labels + row, cnt + b0 + i, k, zt[i],
                              (int32_t)(off + u));
            }
        }
        for (int i = 0; i < n; i++)
            xmc_topk_finish(scores + (size_t)(b0 + i) * k, labels + (size_t)(b0 + i) * k,
                            cnt[b0 + i], k);
    }
    return XMC_OK;
}
