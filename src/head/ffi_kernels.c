/* Plain C references of the fixed fan-in kernels (ffi_internal.h) and the
 * run-time choice of variant.
 *
 * Why hand-written: a fixed fan-in layer is a gather (each label reads F
 * arbitrary rows of the transposed batch), which no BLAS call expresses;
 * sparse BLAS (CSR SpMM) would need the transposed product and the
 * scatter-add of the input gradient as two more passes and loses the fusion
 * with the loss and the update. The references are also the fallback for
 * CPUs without AVX-512 and for XMC_KERNEL=ref.
 */
#include <math.h>

#include "head/ffi_internal.h"
#include "xmc/kernels.h"

void ffi_fwd_ref(const float *X, int64_t ld, const int32_t *idx, const float *w, int F,
                 float z0, int n, float *z)
{
    for (int i = 0; i < n; i++)
        z[i] = z0;
    for (int k = 0; k < F; k++) {
        const float *x = X + (int64_t)idx[k] * ld;
        float wk = w[k];
        for (int i = 0; i < n; i++)
            z[i] += wk * x[i];
    }
}

void ffi_bwd_ref(const float *X, float *D, int64_t ld, const int32_t *idx, const float *w,
                 int F, const float *g, int n, float *gw)
{
    for (int k = 0; k < F; k++) {
        const float *x = X + (int64_t)idx[k] * ld;
        float s = 0;
        for (int i = 0; i < n; i++)
            s += x[i] * g[i];
        gw[k] += s;
        if (D) {
            float *d = D + (int64_t)idx[k] * ld;
            float wk = w[k];
            for (int i = 0; i < n; i++)
                d[i] += wk * g[i];
        }
    }
}

void ffi_act_ref(const float *z, float *g, size_t n, int loss)
{
    if (loss == XMC_LOSS_SQHINGE) {
        for (size_t i = 0; i < n; i++) {
            float t = 1.0f + z[i];
            g[i] = t > 0 ? 2.0f * t : 0.0f;
        }
    } else {
        for (size_t i = 0; i < n; i++)
            g[i] = 1.0f / (1.0f + expf(-z[i]));
    }
}

const ffi_kernels ffi_kernels_ref = {"ref", ffi_fwd_ref, ffi_bwd_ref, ffi_act_ref};

const ffi_kernels *ffi_kernels_best(void)
{
    if (xmc_cpu_features() & XMC_CPU_AVX512)
        return &ffi_kernels_avx512;
    return &ffi_kernels_ref;
}
