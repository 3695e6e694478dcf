/* Internals of the fixed fan-in head (include/xmc/ffi.h): the object, its
 * memory layout and the hand-written kernels with their references.
 *
 * Layout. Parameters are ONE allocation carved into W (L x F), idx (L x F),
 * bias (L), and the optimizer state with the same shapes (m, v; mb, vb for
 * the bias), so the optimizer is one loop per chunk. Per-step scratch is an
 * xmc_arena sized at create for max_batch and the thread count:
 *   ET   (d x B)           the batch transposed, in B-tiles (see below)
 *   per thread: D (d x B)  its private dE^T accumulator (no races; reduced
 *                          in thread order, so results are deterministic)
 *               Z, G (chunk x Bt) logits / gradients of one chunk and tile
 *               gW (chunk x F), gb (chunk)
 *               cur (B)    per-row cursor into Y (labels are sorted)
 *
 * B-tiles. ET is stored tile-major: tile t (columns b0 = t*Bt .. b0+nt) is a
 * contiguous d x nt block at ET + d*b0, row j at + j*nt. With Bt = 64 and
 * d = 768 a tile of ET plus the matching tile of D is 384 KiB, which stays in
 * L2 (1 MiB on Zen 4, 2 MiB on Sapphire Rapids) while a chunk's labels gather
 * their F random rows; see ffi_btile for the measured choice.
 */
#ifndef XMC_HEAD_FFI_INTERNAL_H
#define XMC_HEAD_FFI_INTERNAL_H

#include "xmc/ffi.h"

struct xmc_ffi {
    xmc_ffi_config cfg;
    void *block;     /* the one parameter allocation (xmc_malloc_aligned) */
    size_t block_bytes;
    float *W;        /* (L, F) */
    int32_t *idx;    /* (L, F) sorted, distinct, in [0, d) */
    float *bias;     /* (L) or NULL */
    float *m, *v;    /* (L, F) momentum / Adam moments; v NULL for SGDM */
    float *mb, *vb;  /* (L) bias state, NULL without bias (vb: Adam only) */
    int threads;     /* OpenMP threads used (scratch sized for them) */
    int btile;       /* Bt: batch columns per tile (multiple of 16) */
    xmc_arena *arena; /* per-step scratch */
    void *rewire_scr; /* rewiring scratch, ffi_rewire_bytes() at create/reserve */
    size_t rewire_bytes;
    int frozen;      /* topology frozen: rewiring refused */
    int64_t rounds;  /* rewiring rounds done (seeds the next one) */
    int64_t steps;   /* train steps taken */
};

/* Kernels: one label, one B-tile of n columns. X (and D) are d x n tiles with
 * row stride ld. Variants must agree with the reference to float rounding.
 *
 * fwd: z[i] = z0 + sum_k w[k] X[idx[k]*ld + i]          (i < n)
 * bwd: gw[k] += sum_i X[idx[k]*ld + i] g[i];
 *      D[idx[k]*ld + i] += w[k] g[i]   (skipped when D is NULL)
 * act: g[i] = dloss/dz at target 0: sigmoid(z[i]) (BCE) or
 *      2 max(0, 1 + z[i]) (squared hinge); z == g allowed. */
typedef void (*ffi_fwd_fn)(const float *X, int64_t ld, const int32_t *idx, const float *w,
                           int F, float z0, int n, float *z);
typedef void (*ffi_bwd_fn)(const float *X, float *D, int64_t ld, const int32_t *idx,
                           const float *w, int F, const float *g, int n, float *gw);
typedef void (*ffi_act_fn)(const float *z, float *g, size_t n, int loss);

typedef struct ffi_kernels {
    const char *name;
    ffi_fwd_fn fwd;
    ffi_bwd_fn bwd;
    ffi_act_fn act;
} ffi_kernels;

void ffi_fwd_ref(const float *X, int64_t ld, const int32_t *idx, const float *w, int F,
                 float z0, int n, float *z);
void ffi_bwd_ref(const float *X, float *D, int64_t ld, const int32_t *idx, const float *w,
                 int F, const float *g, int n, float *gw);
void ffi_act_ref(const float *z, float *g, size_t n, int loss);
void ffi_fwd_avx512(const float *X, int64_t ld, const int32_t *idx, const float *w, int F,
                    float z0, int n, float *z);
void ffi_bwd_avx512(const float *X, float *D, int64_t ld, const int32_t *idx, const float *w,
                    int F, const float *g, int n, float *gw);
void ffi_act_avx512(const float *z, float *g, size_t n, int loss);

extern const ffi_kernels ffi_kernels_ref;
extern const ffi_kernels ffi_kernels_avx512;
/* The best variant usable now (xmc_cpu_features(), XMC_KERNEL honoured). */
const ffi_kernels *ffi_kernels_best(void);

/* Internal create: init = 0 leaves W, idx, bias and state uninitialised
 * (load fills them). */
int ffi_create(const xmc_ffi_config *cfg, int init, xmc_ffi **out, xmc_error *err);
/* Validate a config, filling defaults into *c (XMC_EINVAL / EUNSUPPORTED). */
int ffi_config_check(const xmc_ffi_config *in, xmc_ffi_config *c, xmc_error *err);
/* Bytes of rewiring scratch for `threads` threads (xmc_ffi_rewire allocates
 * nothing; the head holds this from create/load/reserve). */
size_t ffi_rewire_bytes(const xmc_ffi_config *c, int threads);
/* Batch tile width for a config. */
int ffi_btile(int d_in);
/* Draw F distinct values of [0, d) not marked in `used` (a d-bit bitmap,
 * which is updated), appending them to out. `free_list` is scratch of d
 * ints. Needs at least F unmarked values. */
void ffi_sample_distinct(xmc_rng *r, int d, int F, uint64_t *used, int32_t *free_list,
                         int32_t *out);
/* Sort label row (idx, and W, m, v, alongside; m/v may be NULL) by idx. */
void ffi_sort_row(int32_t *idx, float *w, float *m, float *v, int F);

#endif
