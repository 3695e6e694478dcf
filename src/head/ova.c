/* One-vs-all head: creation, parameters, rows access, accounting.
 *
 * Memory: one allocation per parameter tensor (W, and the optimizer state
 * in the layout of W: SGDM momentum in W's dtype, Adam moments fp32), and
 * one arena holding every thread's step scratch, sized at create from
 * max_batch and the chunk so that train_step and topk never allocate:
 * per thread B*C (logits/gradient) + 2*C*d + B*d floats, plus the bf16
 * packs when W is bf16. Init W ~ N(0, init_std^2) draws row l from the
 * stream (seed, label_offset + l), so label shards of one seed reproduce the
 * full head's weights exactly.
 * Threading: create initialises rows in parallel (OpenMP); none of these
 * calls may run concurrently with another call on the same head.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

#define OVA_MAX_DIM 65536
#define OVA_MAX_CHUNK (1 << 22)

static int check_config(const xmc_ova_config *c, xmc_error *err)
{
    if (!c)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova: config is NULL");
    if (c->n_labels < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova: n_labels must be >= 1, got %lld",
                       (long long)c->n_labels);
    if (c->label_offset < 0 || c->n_labels > INT32_MAX || c->label_offset > INT32_MAX - c->n_labels)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "ova: labels [%lld, %lld) must lie in [0, 2^31-1)",
                       (long long)c->label_offset, (long long)(c->label_offset + c->n_labels));
    if (c->dim < 1 || c->dim > OVA_MAX_DIM)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova: dim must be in [1, %d], got %d",
                       OVA_MAX_DIM, c->dim);
    if (c->dtype != XMC_DT_F32 && c->dtype != XMC_DT_BF16)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova: dtype must be f32 or bf16, got %d",
                       (int)c->dtype);
    if (c->opt != XMC_HEAD_SGDM && c->opt != XMC_HEAD_ADAM)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova: opt must be sgdm or adam, got %d",
                       (int)c->opt);
    if (c->chunk < 0 || c->chunk > OVA_MAX_CHUNK)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova: chunk must be in [0, %d], got %lld",
                       OVA_MAX_CHUNK, (long long)c->chunk);
    if (c->max_batch < 1 || c->max_batch > (1 << 20))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova: max_batch must be in [1, 2^20], got %d",
                       c->max_batch);
    if (!(c->init_std >= 0.0f) || !isfinite(c->init_std))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova: init_std must be finite and >= 0");
    size_t n;
    if (!xmc_mul_ok((size_t)c->n_labels, (size_t)c->dim, &n) || n > (SIZE_MAX / 16))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova: n_labels x dim overflows");
    return XMC_OK;
}

int ova_alloc_scratch(xmc_ova *h, int max_batch, int threads, xmc_error *err)
{
    int64_t C = h->cfg.chunk, B = max_batch, d = h->d;
    int64_t dp = (d + 1) / 2, dpad = 2 * dp;
    int bf = h->cfg.dtype == XMC_DT_BF16;
    if (threads < 1)
        threads = 1;
    if (threads > XMC_OVA_MAX_THREADS)
        threads = XMC_OVA_MAX_THREADS;
    h->ldx = (C + 15) & ~(int64_t)15;
    /* a row stride of a multiple of 1 KiB maps the 16 rows of a tile or
     * micro-kernel onto few cache sets; one extra vector avoids that */
    if (h->ldx % 256 == 0)
        h->ldx += 16;
    h->ldr = (C + 31) & ~(int64_t)31;
    size_t per = 0, shared = 0;
    /* 64 bytes of slack per buffer: the arena rounds each to 64 */
    per += (size_t)(B * h->ldx) * 4 + 64;
    per += (size_t)(C * d) * 4 + 64;
    per += (size_t)(B * d) * 4 + 64;
    per += (size_t)C * 4 + 64;
    if (bf) {
        per += (size_t)(C * d) * 4 + 64;
        per += xmc_bf16_panel_words((int)C, (int)dp) * 4 + 64;
        per += xmc_bf16_panel_words((int)d, (int)((C + 1) / 2)) * 4 + 64;
        per += (size_t)(B * h->ldr) * 2 + 64;
        per += xmc_bf16_panel_words((int)C, (int)((B + 1) / 2)) * 4 + 64;
        per += (size_t)(d * h->ldx) * 4 + 64;
        shared += (size_t)(B * dpad) * 2 + 64;
        shared += (size_t)(d * ((B + 1) & ~(int64_t)1)) * 2 + 64;
    }
    xmc_arena *a = xmc_arena_create(per * (size_t)threads + shared);
    ova_scratch *ts = xmc_calloc((size_t)threads, sizeof *ts);
    if (!a || !ts) {
        xmc_arena_free(a);
        xmc_free(ts);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                       "ova: cannot allocate %zu bytes of step scratch (lower --batch or "
                       "chunk)", per * (size_t)threads + shared);
    }
    for (int t = 0; t < threads; t++) {
        ova_scratch *s = &ts[t];
        s->x = xmc_arena_alloc(a, (size_t)(B * h->ldx) * 4);
        s->dw = xmc_arena_alloc(a, (size_t)(C * d) * 4);
        s->de = xmc_arena_alloc(a, (size_t)(B * d) * 4);
        s->xsave = xmc_arena_alloc(a, (size_t)C * 4);
        if (bf) {
            s->wf = xmc_arena_alloc(a, (size_t)(C * d) * 4);
            s->wbt = xmc_arena_alloc(a, xmc_bf16_panel_words((int)C, (int)dp) * 4);
            s->wb = xmc_arena_alloc(a, xmc_bf16_panel_words((int)d, (int)((C + 1) / 2)) * 4);
            s->grm = xmc_arena_alloc(a, (size_t)(B * h->ldr) * 2);
            s->gpb = xmc_arena_alloc(a, xmc_bf16_panel_words((int)C, (int)((B + 1) / 2)) * 4);
            s->dwt = xmc_arena_alloc(a, (size_t)(d * h->ldx) * 4);
        }
    }
    h->lde = (B + 1) & ~(int64_t)1;
    if (bf) {
        h->ebf = xmc_arena_alloc(a, (size_t)(B * dpad) * 2);
        h->etr = xmc_arena_alloc(a, (size_t)(d * h->lde) * 2);
    } else {
        h->ebf = NULL;
        h->etr = NULL;
    }
    /* the sizes above are exact; a NULL here is our bug, reported not hidden */
    if ((bf && !h->etr) || !ts[threads - 1].xsave) {
        xmc_arena_free(a);
        xmc_free(ts);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ova: scratch arena sized too small (bug)");
    }
    xmc_arena_free(h->arena);
    xmc_free(h->ts);
    h->arena = a;
    h->ts = ts;
    h->nthreads = threads;
    h->sized_batch = max_batch;
    h->cfg.max_batch = max_batch;
    return XMC_OK;
}

/* Allocate parameters and state (zeroed) without initialising W. */
int ova_new(const xmc_ova_config *cfg, xmc_ova **out, xmc_error *err)
{
    *out = NULL;
    int rc = check_config(cfg, err);
    if (rc)
        return rc;
    xmc_ova *h = xmc_calloc(1, sizeof *h);
    if (!h)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "ova: out of memory");
    h->cfg = *cfg;
    if (h->cfg.chunk == 0)
        h->cfg.chunk = XMC_OVA_DEFAULT_CHUNK;
    if (h->cfg.chunk > cfg->n_labels)
        h->cfg.chunk = cfg->n_labels;
    if (h->cfg.init_std == 0.0f)
        h->cfg.init_std = XMC_OVA_DEFAULT_INIT_STD;
    h->L = cfg->n_labels;
    h->d = cfg->dim;
    size_t n = (size_t)h->L * (size_t)h->d;
    int bf = cfg->dtype == XMC_DT_BF16;
    if (bf)
        h->wb = xmc_calloc(n, 2);
    else
        h->w = xmc_calloc(n, 4);
    if (cfg->opt == XMC_HEAD_SGDM) {
        if (bf)
            h->momb = xmc_calloc(n, 2);
        else
            h->mom = xmc_calloc(n, 4);
    } else {
        h->am = xmc_calloc(n, 4);
        h->av = xmc_calloc(n, 4);
    }
    if ((bf ? !h->wb : !h->w) ||
        (cfg->opt == XMC_HEAD_SGDM ? (bf ? !h->momb : !h->mom) : (!h->am || !h->av))) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                     "ova: cannot allocate weights + optimizer state for %lld x %d labels",
                     (long long)h->L, h->d);
        xmc_ova_free(h);
        return rc;
    }
    rc = ova_alloc_scratch(h, cfg->max_batch, xmc_get_threads(), err);
    if (rc) {
        xmc_ova_free(h);
        return rc;
    }
    *out = h;
    return XMC_OK;
}

int xmc_ova_create(const xmc_ova_config *cfg, xmc_ova **out, xmc_error *err)
{
    if (!out)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova: out is NULL");
    *out = NULL;
    xmc_ova *h;
    int rc = ova_new(cfg, &h, err);
    if (rc)
        return rc;
    int d = h->d;
    float std = h->cfg.init_std;
    /* rows draw from their own streams: parallel and still reproducible */
#pragma omp parallel for schedule(static)
    for (int64_t l = 0; l < h->L; l++) {
        xmc_rng r;
        xmc_rng_seed(&r, h->cfg.seed, (uint64_t)(h->cfg.label_offset + l));
        for (int k = 0; k < d; k++) {
            float v = std * xmc_rng_normal(&r);
            if (h->w)
                h->w[l * d + k] = v;
            else
                h->wb[l * d + k] = xmc_f32_to_bf16(v);
        }
    }
    *out = h;
    return XMC_OK;
}

void xmc_ova_free(xmc_ova *h)
{
    if (!h)
        return;
    xmc_free(h->w);
    xmc_free(h->wb);
    xmc_free(h->mom);
    xmc_free(h->momb);
    xmc_free(h->am);
    xmc_free(h->av);
    xmc_arena_free(h->arena);
    xmc_free(h->ts);
    xmc_free(h);
}

int xmc_ova_reserve(xmc_ova *h, int max_batch, xmc_error *err)
{
    if (!h)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova: head is NULL");
    if (max_batch < 1 || max_batch > (1 << 20))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova: max_batch must be in [1, 2^20], got %d",
                       max_batch);
    return ova_alloc_scratch(h, max_batch, xmc_get_threads(), err);
}

static int check_range(const xmc_ova *h, int64_t l0, int64_t l1, const void *p, xmc_error *err)
{
    if (!h || !p)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova: NULL argument");
    if (l0 < 0 || l1 < l0 || l1 > h->L)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ova: rows [%lld, %lld) outside [0, %lld)",
                       (long long)l0, (long long)l1, (long long)h->L);
    return XMC_OK;
}

int xmc_ova_get_rows(const xmc_ova *h, int64_t l0, int64_t l1, float *out, xmc_error *err)
{
    int rc = check_range(h, l0, l1, out, err);
    if (rc)
        return rc;
    size_t n = (size_t)(l1 - l0) * (size_t)h->d, o = (size_t)l0 * (size_t)h->d;
    if (h->w)
        memcpy(out, h->w + o, n * sizeof *out);
    else
        xmc_bf16_to_f32_n(h->wb + o, n, out);
    return XMC_OK;
}

int xmc_ova_set_rows(xmc_ova *h, int64_t l0, int64_t l1, const float *in, xmc_error *err)
{
    int rc = check_range(h, l0, l1, in, err);
    if (rc)
        return rc;
    size_t n = (size_t)(l1 - l0) * (size_t)h->d, o = (size_t)l0 * (size_t)h->d;
    if (h->w)
        memcpy(h->w + o, in, n * sizeof *in);
    else
        xmc_bf16_from_f32(in, n, h->wb + o);
    return XMC_OK;
}

const xmc_ova_config *xmc_ova_get_config(const xmc_ova *h) { return h ? &h->cfg : NULL; }

int64_t xmc_ova_steps(const xmc_ova *h) { return h ? h->t : 0; }

size_t xmc_ova_param_bytes(const xmc_ova *h)
{
    return h ? (size_t)h->L * (size_t)h->d * (h->w ? 4 : 2) : 0;
}

size_t xmc_ova_state_bytes(const xmc_ova *h)
{
    if (!h)
        return 0;
    size_t n = (size_t)h->L * (size_t)h->d;
    return h->mom ? n * 4 : h->momb ? n * 2 : 2 * n * 4;
}

size_t xmc_ova_scratch_bytes(const xmc_ova *h)
{
    return h ? xmc_arena_capacity(h->arena) + (size_t)h->nthreads * sizeof(ova_scratch) : 0;
}

size_t xmc_ova_bytes(const xmc_ova *h)
{
    if (!h)
        return 0;
    return sizeof *h + xmc_ova_param_bytes(h) + xmc_ova_state_bytes(h) + xmc_ova_scratch_bytes(h);
}
