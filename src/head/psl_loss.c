/* Pick-some-labels losses over the in-batch pool (UniDEC, Kharbanda et al.
 * WWW 2025, eq. for L_{Q->L} / L_{L->Q}; DEPSL, thesis ch. 2).
 *
 * With logits z = s / t, anchor a (a query i, or a pool label l for the
 * label->query direction), its positives P_a^B with weights w_ap (target
 * values) and W_a = Σ_p w_ap:
 *   decoupled  ℓ_ap = log(e^{z_ap} + Σ_{j∉P_a} e^{z_aj}) - z_ap
 *   SupCon     ℓ_ap = log(Σ_j e^{z_aj}) - z_ap
 *   L_a = (1/W_a) Σ_p w_ap ℓ_ap,  L_dir = mean of L_a over anchors with W_a > 0.
 * Decoupled softmax keeps the other positives of a out of each denominator,
 * so an anchor with many positives is not penalised for scoring all of them
 * high (the point of "pick-some-labels").
 *
 * Gradients (decoupled), D_p = e^{z_ap} + N_a, N_a = Σ_{j∉P_a} e^{z_aj}:
 *   dL_a/dz_ap = (w_ap/W_a) (e^{z_ap}/D_p - 1)
 *   dL_a/dz_aj = (1/W_a) e^{z_aj} Σ_p w_ap / D_p        (j ∉ P_a)
 * Stability: every exponent is taken relative to m_p = max(z_ap, max_neg z),
 * so each D_p is >= 1 in scaled units and nothing underflows to log(0).
 * Sums are in double. The label->query direction is the same routine on S
 * read down columns (stride nl), so both directions share one code path.
 *
 * Memory: none (positives are walked in ascending order beside the row).
 * Threading: single-threaded by design (O(nq nl) exps, small next to the
 * GEMMs that produce S; the result is thread-count independent).
 */
#include <math.h>
#include <string.h>

#include "xmc/psl.h"

void xmc_psl_loss_params_default(xmc_psl_loss_params *p)
{
    p->kind = XMC_PSL_DECOUPLED;
    p->temperature = XMC_PSL_DEFAULT_TEMPERATURE;
    p->lambda = XMC_PSL_DEFAULT_LAMBDA;
}

/* One direction. Element (a, j) is S[a*sa + j*sj]; positives of anchor a
 * are idx[ptr[a] .. ptr[a+1]) (ascending) with weights val[]. Adds
 * scale * dL/dS into dS (if non-NULL); returns L_dir in *loss. */
static void dir_loss(const float *S, int na, int nj, int64_t sa, int64_t sj, const int32_t *ptr,
                     const int32_t *idx, const float *val, int kind, double t, double scale,
                     double *loss, float *dS)
{
    int n_anchor = 0;
    for (int a = 0; a < na; a++) {
        double W = 0;
        for (int32_t e = ptr[a]; e < ptr[a + 1]; e++)
            W += val[e];
        if (W > 0)
            n_anchor++;
    }
    *loss = 0;
    if (n_anchor == 0)
        return;
    const double inv_t = 1.0 / t;
    const double g_scale = scale / n_anchor * inv_t; /* dL/dS = dL/dz / t */
    double total = 0;
    for (int a = 0; a < na; a++) {
        const int32_t p0 = ptr[a], p1 = ptr[a + 1];
        double W = 0;
        for (int32_t e = p0; e < p1; e++)
            W += val[e];
        if (!(W > 0))
            continue;
        const float *row = S + (int64_t)a * sa;
        float *drow = dS ? dS + (int64_t)a * sa : NULL;
        if (kind == XMC_PSL_SUPCON) {
            double M = -INFINITY;
            for (int j = 0; j < nj; j++) {
                double z = row[(int64_t)j * sj] * inv_t;
                if (z > M)
                    M = z;
            }
            double Z = 0;
            for (int j = 0; j < nj; j++)
                Z += exp(row[(int64_t)j * sj] * inv_t - M);
            double lse = M + log(Z), wz = 0;
            for (int32_t e = p0; e < p1; e++)
                wz += val[e] * (row[(int64_t)idx[e] * sj] * inv_t);
            total += lse - wz / W;
            if (drow) {
                int32_t q = p0;
                for (int j = 0; j < nj; j++) {
                    double g = exp(row[(int64_t)j * sj] * inv_t - lse);
                    if (q < p1 && idx[q] == j)
                        g -= val[q++] / W;
                    drow[(int64_t)j * sj] += (float)(g * g_scale);
                }
            }
            continue;
        }
        /* decoupled: max and sum over the non-positives */
        double mneg = -INFINITY;
        int32_t q = p0;
        for (int j = 0; j < nj; j++) {
            if (q < p1 && idx[q] == j) {
                q++;
                continue;
            }
            double z = row[(int64_t)j * sj] * inv_t;
            if (z > mneg)
                mneg = z;
        }
        double N = 0; /* Σ_{j∉P} e^{z_j - mneg} (>= 1 when there are negatives) */
        int has_neg = mneg > -INFINITY;
        if (has_neg) {
            q = p0;
            for (int j = 0; j < nj; j++) {
                if (q < p1 && idx[q] == j) {
                    q++;
                    continue;
                }
                N += exp(row[(int64_t)j * sj] * inv_t - mneg);
            }
        }
        double La = 0, K = 0;
        for (int32_t e = p0; e < p1; e++) {
            double z = row[(int64_t)idx[e] * sj] * inv_t;
            double mp = has_neg && mneg > z ? mneg : z;
            double ep = exp(z - mp);
            double en = has_neg ? N * exp(mneg - mp) : 0.0;
            double D = ep + en; /* >= 1 */
            La += val[e] * (mp + log(D) - z);
            if (drow) {
                drow[(int64_t)idx[e] * sj] += (float)(val[e] / W * (ep / D - 1.0) * g_scale);
                if (has_neg)
                    K += val[e] * exp(mneg - mp) / D;
            }
        }
        total += La / W;
        if (drow && has_neg) {
            double c = K / W * g_scale;
            q = p0;
            for (int j = 0; j < nj; j++) {
                if (q < p1 && idx[q] == j) {
                    q++;
                    continue;
                }
                drow[(int64_t)j * sj] += (float)(c * exp(row[(int64_t)j * sj] * inv_t - mneg));
            }
        }
    }
    *loss = total / n_anchor;
}

static int check_args(const xmc_psl_pool *p, const float *S, int kind, float temperature,
                      xmc_error *err)
{
    if (!p || !S)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl loss: pool and scores are required");
    if (kind != XMC_PSL_DECOUPLED && kind != XMC_PSL_SUPCON)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl loss: unknown kind %d", kind);
    if (!(temperature > 0.0f) || !isfinite(temperature))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl loss: temperature must be > 0, got %g",
                       (double)temperature);
    return XMC_OK;
}

int xmc_psl_loss_dir(const xmc_psl_pool *p, const float *S, int kind, float temperature,
                     int dir, float scale, double *loss, float *dS, xmc_error *err)
{
    int rc = check_args(p, S, kind, temperature, err);
    if (rc)
        return rc;
    if (dir != 0 && dir != 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl loss: direction must be 0 or 1, got %d",
                       dir);
    double l = 0;
    if (dir == 0)
        dir_loss(S, p->nq, p->nl, p->nl, 1, p->qptr, p->qcol, p->qval, kind, temperature, scale,
                 &l, dS);
    else
        dir_loss(S, p->nl, p->nq, 1, p->nl, p->lptr, p->lrow, p->lval, kind, temperature, scale,
                 &l, dS);
    if (loss)
        *loss = l;
    if (!isfinite(l))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "psl loss: not finite (scores must be finite), got %g", l);
    return XMC_OK;
}

int xmc_psl_loss(const xmc_psl_pool *p, const float *S, const xmc_psl_loss_params *lp,
                 double *loss, float *dS, xmc_error *err)
{
    int rc = check_args(p, S, lp->kind, lp->temperature, err);
    if (rc)
        return rc;
    if (!(lp->lambda >= 0.0f && lp->lambda <= 1.0f))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl loss: lambda must be in [0, 1], got %g",
                       (double)lp->lambda);
    if (dS)
        memset(dS, 0, sizeof(float) * (size_t)p->nq * (size_t)p->nl);
    double l0 = 0, l1 = 0;
    if (lp->lambda > 0.0f) {
        rc = xmc_psl_loss_dir(p, S, lp->kind, lp->temperature, 0, lp->lambda, &l0, dS, err);
        if (rc)
            return rc;
    }
    if (lp->lambda < 1.0f) {
        rc = xmc_psl_loss_dir(p, S, lp->kind, lp->temperature, 1, 1.0f - lp->lambda, &l1, dS,
                              err);
        if (rc)
            return rc;
    }
    if (loss)
        *loss = (double)lp->lambda * l0 + (1.0 - (double)lp->lambda) * l1;
    return XMC_OK;
}

int xmc_psl_bce(const xmc_psl_pool *p, const float *S, float scale, double *loss, float *dS,
                xmc_error *err)
{
    if (!p || !S)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl bce: pool and scores are required");
    double total = 0;
    if (p->nq == 0) {
        if (loss)
            *loss = 0;
        return XMC_OK;
    }
    const double g = (double)scale / p->nq;
    for (int i = 0; i < p->nq; i++) {
        const float *row = S + (int64_t)i * p->nl;
        float *drow = dS ? dS + (int64_t)i * p->nl : NULL;
        int32_t q = p->qptr[i], q1 = p->qptr[i + 1];
        for (int c = 0; c < p->nl; c++) {
            double y = 0;
            if (q < q1 && p->qcol[q] == c)
                y = p->qval[q++];
            double s = row[c];
            total += (s > 0 ? s : 0) - s * y + log1p(exp(-fabs(s)));
            if (drow) {
                double sig = s >= 0 ? 1.0 / (1.0 + exp(-s)) : exp(s) / (1.0 + exp(s));
                drow[c] += (float)((sig - y) * g);
            }
        }
    }
    total /= p->nq;
    if (loss)
        *loss = total;
    if (!isfinite(total))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "psl bce: not finite (scores must be finite)");
    return XMC_OK;
}
