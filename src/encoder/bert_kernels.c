/* Fused element kernels of the transformer: LayerNorm, GELU (erf form),
 * softmax, and column sums, each beside a plain reference. GELU and
 * softmax dispatch to bert_kernels_avx512.c when the CPU has AVX-512
 * (XMC_KERNEL=ref keeps the portable code below).
 *
 * Why hand-written: BLAS has no such kernels, and libm's erff/expf are
 * scalar calls the compiler cannot vectorise; at MiniLM size GELU alone
 * runs on 3M elements per layer per pass, so the fast variants use
 * branch-free polynomial exp/erfc that `#pragma omp simd` turns into
 * AVX-512 code without intrinsics (one source for every ISA):
 *   exp:  Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, degree-6
 *         Taylor polynomial (relative error < 2e-7), 2^n via the exponent.
 *   erfc: Numerical Recipes' erfcc (Chebyshev fit, fractional error
 *         < 1.2e-7 everywhere), so GELU keeps relative accuracy in the
 *         negative tail where x * Phi(x) is tiny.
 * Reductions over rows (LayerNorm dw/db, bias grads) sum fixed 64-row
 * blocks, then the blocks in order: results do not depend on the thread
 * count.
 */
#include <math.h>
#include <string.h>

#include <omp.h>

#include "xmc/bert.h"
#include "xmc/kernels.h"

#if defined(__clang__)
/* `omp simd` is a request: under sanitizers clang declines some loops and
 * says so per loop; the code is correct either way. */
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

void xmc_bert_gelu_fwd_avx512(float *out, const float *x, int64_t n);
void xmc_bert_gelu_bwd_avx512(float *dx, const float *x, const float *dout, int64_t n);
void xmc_bert_softmax_fwd_avx512(float *p, int rows, int cols, int ld);

#define BLK 64

/* ------------------------------------------------------------ exp / erfc */

#pragma omp declare simd notinbranch
static inline float fexp(float x)
{
    x = fminf(fmaxf(x, -87.0f), 88.0f);
    /* round to nearest without rintf (a libm call below SSE4.1) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187e-06f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &e, 4);
    return p * s;
}

/* erfc(z) for z >= 0 (Numerical Recipes in C, 2nd ed., sec. 6.2). */
#pragma omp declare simd notinbranch
static inline float ferfc_pos(float z)
{
    float t = 1.0f / (1.0f + 0.5f * z);
    float q = 0.17087277f;
    q = q * t - 0.82215223f;
    q = q * t + 1.48851587f;
    q = q * t - 1.13520398f;
    q = q * t + 0.27886807f;
    q = q * t - 0.18628806f;
    q = q * t + 0.09678418f;
    q = q * t + 0.37409196f;
    q = q * t + 1.00002368f;
    q = q * t - 1.26551223f;
    return t * fexp(-z * z + q);
}

/* Phi(x) = 0.5 erfc(-x / sqrt 2) */
#pragma omp declare simd notinbranch
static inline float fphi(float x)
{
    float z = fabsf(x) * 0.70710678118654752f;
    float c = 0.5f * ferfc_pos(z);
    float pos = (float)(x >= 0.0f); /* a blend without a branch */
    return c + pos * (1.0f - 2.0f * c);
}

/* ------------------------------------------------------------ GELU */

void xmc_bert_gelu_fwd_ref(float *out, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void xmc_bert_gelu_fwd(float *out, const float *x, int64_t n)
{
    if (xmc_cpu_features() & XMC_CPU_AVX512) {
        xmc_bert_gelu_fwd_avx512(out, x, n);
        return;
    }
#pragma omp parallel for simd schedule(static) if ((n > 32768) && !omp_in_parallel())
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] * fphi(x[i]);
}

void xmc_bert_gelu_bwd_ref(float *dx, const float *x, const float *dout, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
        float pdf = expf(-0.5f * v * v) * 0.39894228040143268f;
        dx[i] = dout[i] * (cdf + v * pdf);
    }
}

void xmc_bert_gelu_bwd(float *dx, const float *x, const float *dout, int64_t n)
{
    if (xmc_cpu_features() & XMC_CPU_AVX512) {
        xmc_bert_gelu_bwd_avx512(dx, x, dout, n);
        return;
    }
#pragma omp parallel for simd schedule(static) if ((n > 32768) && !omp_in_parallel())
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float pdf = fexp(-0.5f * v * v) * 0.39894228040143268f;
        dx[i] = dout[i] * (fphi(v) + v * pdf);
    }
}

/* ------------------------------------------------------------ softmax */

void xmc_bert_softmax_fwd_ref(float *p, int rows, int cols, int ld)
{
    for (int i = 0; i < rows; i++) {
        float *r = p + (int64_t)i * ld;
        float mx = -INFINITY, s = 0.0f;
        for (int j = 0; j < cols; j++)
            mx = r[j] > mx ? r[j] : mx;
        for (int j = 0; j < cols; j++) {
            r[j] = expf(r[j] - mx);
            s += r[j];
        }
        for (int j = 0; j < cols; j++)
            r[j] /= s;
    }
}

/* Called per (batch, head) inside a parallel region: no OpenMP here. */
void xmc_bert_softmax_fwd(float *p, int rows, int cols, int ld)
{
    if (xmc_cpu_features() & XMC_CPU_AVX512) {
        xmc_bert_softmax_fwd_avx512(p, rows, cols, ld);
        return;
    }
    for (int i = 0; i < rows; i++) {
        float *r = p + (int64_t)i * ld;
        float mx = -INFINITY, s = 0.0f;
        for (int j = 0; j < cols; j++)
            mx = r[j] > mx ? r[j] : mx;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < cols; j++) {
            r[j] = fexp(r[j] - mx);
            s += r[j];
        }
        float inv = 1.0f / s;
#pragma omp simd
        for (int j = 0; j < cols; j++)
            r[j] *= inv;
    }
}

void xmc_bert_softmax_bwd(float *ds, const float *p, const float *dp, int rows, int cols, int ld)
{
    for (int i = 0; i < rows; i++) {
        const float *pr = p + (int64_t)i * ld, *dr = dp + (int64_t)i * ld;
        float *o = ds + (int64_t)i * ld;
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < cols; j++)
            s += pr[j] * dr[j];
#pragma omp simd
        for (int j = 0; j < cols; j++)
            o[j] = pr[j] * (dr[j] - s);
    }
}

/* ------------------------------------------------------------ LayerNorm */

void xmc_bert_layernorm_fwd_ref(float *out, float *mean, float *rstd, const float *x,
                                const float *w, const float *b, int64_t N, int C, float eps)
{
    for (int64_t i = 0; i < N; i++) {
        const float *r = x + i * C;
        float m = 0.0f, v = 0.0f;
        for (int c = 0; c < C; c++)
            m += r[c];
        m /= (float)C;
        for (int c = 0; c < C; c++)
            v += (r[c] - m) * (r[c] - m);
        v /= (float)C;
        float s = 1.0f / sqrtf(v + eps);
        for (int c = 0; c < C; c++)
            out[i * C + c] = (r[c] - m) * s * w[c] + b[c];
        mean[i] = m;
        rstd[i] = s;
    }
}

void xmc_bert_layernorm_fwd(float *out, float *mean, float *rstd, const float *x,
                            const float *w, const float *b, int64_t N, int C, float eps)
{
#pragma omp parallel for schedule(static) if ((N * C > 32768) && !omp_in_parallel())
    for (int64_t i = 0; i < N; i++) {
        const float *r = x + i * C;
        float *o = out + i * C;
        float m = 0.0f, v = 0.0f;
#pragma omp simd reduction(+ : m)
        for (int c = 0; c < C; c++)
            m += r[c];
        m /= (float)C;
#pragma omp simd reduction(+ : v)
        for (int c = 0; c < C; c++)
            v += (r[c] - m) * (r[c] - m);
        v /= (float)C;
        float s = 1.0f / sqrtf(v + eps);
#pragma omp simd
        for (int c = 0; c < C; c++)
            o[c] = (r[c] - m) * s * w[c] + b[c];
        mean[i] = m;
        rstd[i] = s;
    }
}

void xmc_bert_layernorm_bwd_ref(float *dx, float *dw, float *db, const float *dout,
                                const float *x, const float *w, const float *mean,
                                const float *rstd, int64_t N, int C)
{
    for (int64_t i = 0; i < N; i++) {
        const float *d = dout + i * C, *r = x + i * C;
        float a = 0.0f, bsum = 0.0f;
        for (int c = 0; c < C; c++) {
            float xh = (r[c] - mean[i]) * rstd[i];
            a += d[c] * w[c];
            bsum += d[c] * w[c] * xh;
        }
        a /= (float)C;
        bsum /= (float)C;
        for (int c = 0; c < C; c++) {
            float xh = (r[c] - mean[i]) * rstd[i];
            dw[c] += d[c] * xh;
            db[c] += d[c];
            dx[i * C + c] = (d[c] * w[c] - a - xh * bsum) * rstd[i];
        }
    }
}

void xmc_bert_layernorm_bwd(float *dx, float *dw, float *db, const float *dout, const float *x,
                            const float *w, const float *mean, const float *rstd, int64_t N,
                            int C, float *scratch)
{
    int64_t nb = (N + BLK - 1) / BLK;
#pragma omp parallel for schedule(static) if ((N * C > 32768) && !omp_in_parallel())
    for (int64_t k = 0; k < nb; k++) {
        float *pw = scratch + k * 2 * C, *pb = pw + C;
        memset(pw, 0, sizeof(float) * 2 * (size_t)C);
        int64_t i1 = (k + 1) * BLK < N ? (k + 1) * BLK : N;
        for (int64_t i = k * BLK; i < i1; i++) {
            const float *d = dout + i * C, *r = x + i * C;
            float *o = dx + i * C;
            float m = mean[i], s = rstd[i], a = 0.0f, bs = 0.0f;
#pragma omp simd reduction(+ : a, bs)
            for (int c = 0; c < C; c++) {
                float xh = (r[c] - m) * s;
                a += d[c] * w[c];
                bs += d[c] * w[c] * xh;
            }
            a /= (float)C;
            bs /= (float)C;
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float xh = (r[c] - m) * s;
                pw[c] += d[c] * xh;
                pb[c] += d[c];
                o[c] = (d[c] * w[c] - a - xh * bs) * s;
            }
        }
    }
    for (int64_t k = 0; k < nb; k++) {
        const float *pw = scratch + k * 2 * C, *pb = pw + C;
#pragma omp simd
        for (int c = 0; c < C; c++) {
            dw[c] += pw[c];
            db[c] += pb[c];
        }
    }
}

void xmc_bert_colsum_add(float *out, const float *x, int64_t N, int C, float *scratch)
{
    int64_t nb = (N + BLK - 1) / BLK;
#pragma omp parallel for schedule(static) if ((N * C > 32768) && !omp_in_parallel())
    for (int64_t k = 0; k < nb; k++) {
        float *p = scratch + k * C;
        memset(p, 0, sizeof(float) * (size_t)C);
        int64_t i1 = (k + 1) * BLK < N ? (k + 1) * BLK : N;
        for (int64_t i = k * BLK; i < i1; i++) {
            const float *r = x + i * C;
#pragma omp simd
            for (int c = 0; c < C; c++)
                p[c] += r[c];
        }
    }
    for (int64_t k = 0; k < nb; k++) {
        const float *p = scratch + k * C;
#pragma omp simd
        for (int c = 0; c < C; c++)
            out[c] += p[c];
    }
}
