/* Internals of the one-vs-all head (src/head/ova*.c). Not a public header. */
#ifndef XMC_HEAD_INTERNAL_H
#define XMC_HEAD_INTERNAL_H

#include "xmc/head.h"
#include "xmc/kernels.h"

#define XMC_OVA_MAX_THREADS 64

/* One thread's slice of the step scratch, carved from the head's arena at
 * create (sizes for max_batch B and chunk C). */
typedef struct ova_scratch {
    float *x;      /* (B, ldx) logits X_c, then G_c in place */
    float *dw;     /* (C, d) dW_c */
    float *de;     /* (B, d) this thread's dE accumulator (thread 0: unused) */
    float *wf;     /* (C, d) fp32 copy of a bf16 chunk (portable path, topk) */
    float *xsave;  /* (C) logits of one row's positives, before grad0 */
    uint32_t *wbt; /* panel pack of W_c^T (k = d) for X = E W_c^T */
    uint32_t *wb;  /* panel pack of W_c (k = C) for dE += G W_c */
    uint16_t *grm; /* (B, ldr) G_c in bf16, row-major */
    uint32_t *gpb; /* G_c in bf16, panel layout over batch pairs (B of E^T G) */
    float *dwt;    /* (d, ldx) dW_c^T as the bf16 kernels produce it */
} ova_scratch;

struct xmc_ova {
    xmc_ova_config cfg; /* validated, chunk and init_std resolved */
    int64_t L;          /* n_labels */
    int d;
    float *w;           /* (L, d) fp32 weights, or NULL */
    uint16_t *wb;       /* (L, d) bf16 weights, or NULL */
    float *mom;         /* (L, d) SGDM momentum, fp32 head */
    uint16_t *momb;     /* (L, d) SGDM momentum, bf16 head */
    float *am, *av;     /* (L, d) Adam first / second moments (fp32) */
    int64_t t;          /* train steps taken: stochastic-rounding key, Adam fallback */

    /* scratch */
    int nthreads;       /* slices allocated */
    int sized_batch;    /* B the scratch was sized for */
    int64_t ldx;        /* C rounded up to 16 */
    int64_t ldr;        /* C rounded up to 32 */
    xmc_arena *arena;
    ova_scratch *ts;    /* (nthreads) */
    uint16_t *ebf;      /* (B, dpad) E in bf16, row-major, d padded to even */
    uint16_t *etr;      /* (d, lde) E^T in bf16, row-major, B padded to even */
    int64_t lde;
};

/* Allocate a head with zeroed W and state (no random init): load uses it. */
int ova_new(const xmc_ova_config *cfg, xmc_ova **out, xmc_error *err);
int ova_alloc_scratch(xmc_ova *h, int max_batch, int threads, xmc_error *err);

/* Re-sharding (ova_shard.c, ffi_shard.c): the global labels two shards
 * [off_a, off_a + n_a) and [off_b, off_b + n_b) have in common are
 * [*lo, *lo + n); returns n, <= 0 when they share none. */
static inline int64_t shard_overlap(int64_t off_a, int64_t n_a, int64_t off_b, int64_t n_b,
                                    int64_t *lo)
{
    const int64_t e_a = off_a + n_a, e_b = off_b + n_b;
    *lo = off_a > off_b ? off_a : off_b;
    return (e_a < e_b ? e_a : e_b) - *lo;
}

#endif
