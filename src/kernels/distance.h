/* Distance kernels for the ANN index (src/index/) and exact k-NN: dot
 * product, squared L2 and cosine over fp32 or bf16-stored vectors.
 *
 * Every kernel has a plain C reference (distance.c) and fast variants with
 * the same signature (distance_avx2.c, distance_avx512.c); xmc_dist_kernels()
 * picks a table once from xmc_cpu_features() (XMC_KERNEL=ref forces the
 * reference). Arguments are `const void *` so one function-pointer type
 * serves both storage formats; a table's bf16 entries take uint16_t arrays
 * holding bfloat16 bit patterns (the upper half of an IEEE float).
 *
 * Internal to libxmc (not installed): the public API is include/xmc/hnsw.h.
 */
#ifndef XMC_KERNELS_DISTANCE_H
#define XMC_KERNELS_DISTANCE_H

#include <stddef.h>
#include <stdint.h>

#include "xmc/kernels.h" /* xmc_bf16_to_f32, xmc_f32_to_bf16 */

typedef float (*xmc_dist_fn)(const void *a, const void *b, size_t d);

typedef struct xmc_dist_kernels {
    xmc_dist_fn dot_f32, l2sq_f32, cos_f32;    /* a, b: float[d] */
    xmc_dist_fn dot_bf16, l2sq_bf16, cos_bf16; /* a, b: uint16_t[d] (bf16) */
    const char *name;                          /* "ref", "avx2", "avx512", "avx512bf16" */
} xmc_dist_kernels;

/* The best table for the CPU (after XMC_KERNEL capping). Never NULL. */
const xmc_dist_kernels *xmc_dist_kernels_best(void);

/* Every variant, for tests and benchmarks: returns the table for `level`
 * ("ref", "avx2", "avx512", "avx512bf16") or NULL when this CPU (hardware,
 * ignoring XMC_KERNEL) cannot run it. */
const xmc_dist_kernels *xmc_dist_kernels_get(const char *level);

/* Variant tables, defined in their ISA files. */
extern const xmc_dist_kernels xmc_dist_ref;
extern const xmc_dist_kernels xmc_dist_avx2;
extern const xmc_dist_kernels xmc_dist_avx512;
extern const xmc_dist_kernels xmc_dist_avx512bf16;

#endif
