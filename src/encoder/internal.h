/* Encoder internals shared by the built-in kinds (sparse.c, bag.c) and the
 * framework (encoder.c): activations and the kinds' ops tables. */
#ifndef XMC_ENCODER_INTERNAL_H
#define XMC_ENCODER_INTERNAL_H

#include <math.h>

#include "xmc/encoder.h"

extern const xmc_encoder_ops xmc_enc_sparse_ops;
extern const xmc_encoder_ops xmc_enc_bag_ops;

/* An encoder for cfg with its parameters left zero (no initialisation):
 * for load and the ensemble merge, which fill every value. */
int enc_create_unfilled(const xmc_encoder_config *cfg, xmc_encoder **out, xmc_error *err);
/* Shapes only: the tensors and tables declared, no parameters, gradients
 * or scratch allocated; for xmc_encoder_bytes and xmc_encoder_free only. */
#define ENC_SHAPES (-1)
int enc_create_shapes(const xmc_encoder_config *cfg, xmc_encoder **out, xmc_error *err);

/* GELU, tanh approximation (Hendrycks & Gimpel 2016, eq. in sec. 2). */
static inline float enc_gelu(float x)
{
    const float k = 0.7978845608f; /* sqrt(2/pi) */
    float u = k * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}
static inline float enc_gelu_grad(float x)
{
    const float k = 0.7978845608f;
    float x2 = x * x;
    float u = k * (x + 0.044715f * x2 * x);
    float t = tanhf(u);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * x2);
}

/* out = act(z) over n; z kept for backward. */
static inline void enc_act_forward(xmc_act a, const float *z, float *out, int64_t n)
{
    if (a == XMC_ACT_GELU)
        for (int64_t i = 0; i < n; i++)
            out[i] = enc_gelu(z[i]);
    else
        for (int64_t i = 0; i < n; i++)
            out[i] = z[i] > 0.0f ? z[i] : 0.0f;
}
/* g *= act'(z) over n. */
static inline void enc_act_backward(xmc_act a, const float *z, float *g, int64_t n)
{
    if (a == XMC_ACT_GELU)
        for (int64_t i = 0; i < n; i++)
            g[i] *= enc_gelu_grad(z[i]);
    else
        for (int64_t i = 0; i < n; i++)
            if (!(z[i] > 0.0f))
                g[i] = 0.0f;
}

/* Fill w (n floats) with N(0, std^2) from (seed, stream). */
void enc_init_normal(float *w, int64_t n, float std, uint64_t seed, uint64_t stream);

/* Collect the unique ids of rows[0..B) of ids into t->touched (ascending)
 * and set slot[id] = position; slot must be all -1 on entry. Zeroes the
 * used part of t->grad. Returns XMC_ENOMEM (err set) when the capacity is
 * exceeded (a sizing bug: prepare reserves it). */
int enc_collect_touched(xmc_sparse_table *t, const xmc_csr *ids, const int64_t *rows, int B,
                        int32_t *slot, xmc_error *err);

/* Input dropout: entry p of the data is kept in the step with key `key`
 * iff enc_keep(key, p, thr); kept entries are scaled by 1/(1-p_in). The
 * mask is a hash of (key, entry), not stored, so forward and backward agree
 * and a resumed run draws the same masks. key = 0 disables. */
typedef struct enc_drop {
    uint64_t key;
    uint64_t thr;  /* drop when hash < thr */
    float scale;   /* 1 / (1 - p_in) */
} enc_drop;

static inline int enc_keep(const enc_drop *dr, int64_t p)
{
    if (!dr || !dr->key)
        return 1;
    uint64_t x = dr->key ^ ((uint64_t)p * 0x9e3779b97f4a7c15ull);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x >= dr->thr;
}

/* The input-dropout mask of e's current training step (key 0 when off). */
enc_drop enc_drop_for(const xmc_encoder *e, int train);

/* Accumulate t->grad[slot[f]] += v * dU[i] for every kept (f, v) of rows[i];
 * then reset slot[] to -1. Parallel over column blocks (deterministic). */
void enc_scatter_grad(xmc_sparse_table *t, const xmc_csr *ids, const int64_t *rows, int B,
                      const float *dU, int32_t *slot, const enc_drop *dr);

/* U[i] = sum_j v_ij T[f_ij] over kept entries of rows[0..B) (ids beyond the
 * table ignored). */
void enc_gather_rows(const xmc_sparse_table *t, const xmc_csr *ids, const int64_t *rows, int B,
                     float *U, const enc_drop *dr);

#endif
