/* xmc kernels: CPU feature detection and runtime dispatch.
 *
 * Every hot kernel has a plain C reference with the same signature; the fast
 * variants (AVX2, AVX-512, AVX512-BF16) live in files named *_avx2.c /
 * *_avx512.c built with those ISA flags, and are chosen once at run time from
 * cpuid + the OS's saved register state. XMC_KERNEL=ref in the environment
 * forces the references (XMC_KERNEL=avx2 caps at AVX2).
 */
#ifndef XMC_KERNELS_H
#define XMC_KERNELS_H

#include "xmc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    XMC_CPU_AVX2 = 1u << 0,    /* AVX2 + FMA, OS saves YMM */
    XMC_CPU_AVX512 = 1u << 1,  /* F + BW + VL + DQ, OS saves ZMM/opmask */
    XMC_CPU_AVX512BF16 = 1u << 2,
};

/* Features usable now (after XMC_KERNEL capping). Cached after first call. */
unsigned xmc_cpu_features(void);
/* Features the hardware has, ignoring XMC_KERNEL. */
unsigned xmc_cpu_features_hw(void);
/* "avx512bf16", "avx512", "avx2" or "ref": the best level in use. */
const char *xmc_cpu_level_name(void);
/* Re-read XMC_KERNEL (tests switch between variants in one process). */
void xmc_cpu_refresh(void);

#ifdef __cplusplus
}
#endif
#endif
