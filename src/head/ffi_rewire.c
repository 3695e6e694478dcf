/* Dynamic sparse training of the fixed fan-in head: magnitude pruning with
 * random regrowth (SET, Mocanu et al. 2018) under the constant fan-in
 * constraint (SRigL, Lasby et al. ICLR 2024), on SPARTEX's schedule (Ullah et
 * al. NeurIPS 2024): rewire every rewire_interval steps until rewire_end
 * (default 0.66 of training), then freeze the topology.
 *
 * Global fraction: exactly K = round(fraction L F) weights with the smallest
 * |W| are pruned. The K-th smallest is found by a two-pass radix select over
 * the bit patterns of |W| (non-negative floats order like their uint32
 * bits): a 65536-bin histogram of the top 16 bits, then of the low 16 bits
 * inside the chosen bin; no copy of W, O(L F) time. Ties at the K-th value
 * are pruned in label order (per-thread quotas from a prefix sum), so the
 * result does not depend on the thread count.
 *
 * Regrowth: each label draws its new inputs from the RNG stream (seed,
 * round, global label id) among the inputs it did not use before the call;
 * new weights and their optimizer state are 0; the row is re-sorted by a
 * merge of the kept (sorted) and new (read sorted from a bitmap) entries.
 * Memory: max(T x 65536 x 8, T x O(d + F)) bytes of scratch (the histograms,
 * then the per-thread regrowth buffers reuse the same block), sized at
 * create/load/reserve (ffi_rewire_bytes) so a rewiring round inside training
 * allocates nothing.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "head/ffi_internal.h"

#ifdef _OPENMP
#include <omp.h>
#define THREAD_ID() omp_get_thread_num()
#define THREAD_COUNT() omp_get_num_threads()
#else
#define THREAD_ID() 0
#define THREAD_COUNT() 1
#endif

#define REWIRE_TAG 0x5245574952450000ull /* "REWIRE" */
#define NBINS 65536
#define MAX_THREADS 256

static inline uint32_t key_of(float w)
{
    uint32_t u;
    memcpy(&u, &w, 4);
    return u & 0x7fffffffu; /* |w|; NaN sorts above +inf, so it goes last */
}

static size_t a64(size_t n) { return (n + 63) & ~(size_t)63; }

static int rewire_threads(int threads) { return threads < MAX_THREADS ? threads : MAX_THREADS; }

/* Per-thread regrowth buffers: used, newmap (d bits each), free_list (d),
 * tmp_i, tmp_w, tmp_m, tmp_v, fresh (F each), mark (F bytes). */
static size_t regrow_bytes(int d, int F)
{
    const size_t words = ((size_t)d + 63) / 64;
    return a64(words * 8) * 2 + a64((size_t)d * 4) + a64((size_t)F * 4) * 5 + a64((size_t)F);
}

size_t ffi_rewire_bytes(const xmc_ffi_config *c, int threads)
{
    const size_t T = (size_t)rewire_threads(threads < 1 ? 1 : threads);
    const size_t hist = T * NBINS * 8, regrow = T * regrow_bytes(c->d_in, c->fan_in);
    return hist > regrow ? hist : regrow;
}

/* Regrow the pruned slots (mark[k] = 1) of label u and re-sort its row. */
static void regrow_label(xmc_ffi *h, int64_t u, const unsigned char *mark, int p, uint64_t seed,
                         uint64_t *used, uint64_t *newmap, int32_t *free_list, int32_t *tmp_i,
                         float *tmp_w, float *tmp_m, float *tmp_v, int32_t *fresh)
{
    const int F = h->cfg.fan_in, d = h->cfg.d_in, words = (d + 63) / 64;
    int32_t *idx = h->idx + u * F;
    float *W = h->W + u * F, *m = h->m + u * F, *v = h->v ? h->v + u * F : NULL;
    xmc_rng r;
    xmc_rng_seed(&r, seed, (uint64_t)(h->cfg.label_offset + u));
    memset(used, 0, (size_t)words * 8);
    memset(newmap, 0, (size_t)words * 8);
    for (int k = 0; k < F; k++)
        used[idx[k] >> 6] |= 1ull << (idx[k] & 63);
    if (d - F < p) /* not enough unused inputs: pruned ones may come back */
        for (int k = 0; k < F; k++)
            if (mark[k])
                used[idx[k] >> 6] &= ~(1ull << (idx[k] & 63));
    ffi_sample_distinct(&r, d, p, used, free_list, fresh);
    for (int q = 0; q < p; q++)
        newmap[fresh[q] >> 6] |= 1ull << (fresh[q] & 63);
    /* Merge kept entries (already sorted) with the new ones (bitmap order). */
    int kk = 0, o = 0, w = 0;
    uint64_t bits = newmap[0];
    for (;;) {
        while (kk < F && mark[kk])
            kk++;
        while (!bits && w + 1 < words)
            bits = newmap[++w];
        int nxt = bits ? w * 64 + __builtin_ctzll(bits) : INT32_MAX;
        if (kk >= F && nxt == INT32_MAX)
            break;
        if (kk < F && idx[kk] < nxt) {
            tmp_i[o] = idx[kk], tmp_w[o] = W[kk], tmp_m[o] = m[kk];
            if (v)
                tmp_v[o] = v[kk];
            kk++;
        } else {
            tmp_i[o] = nxt, tmp_w[o] = 0, tmp_m[o] = 0;
            if (v)
                tmp_v[o] = 0;
            bits &= bits - 1;
        }
        o++;
    }
    memcpy(idx, tmp_i, (size_t)F * 4);
    memcpy(W, tmp_w, (size_t)F * 4);
    memcpy(m, tmp_m, (size_t)F * 4);
    if (v)
        memcpy(v, tmp_v, (size_t)F * 4);
}

int xmc_ffi_rewire(xmc_ffi *h, double fraction, float threshold, int64_t *n_pruned,
                   xmc_error *err)
{
    if (n_pruned)
        *n_pruned = 0;
    if (!h)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: head is NULL");
    if (h->frozen)
        return XMC_ERR(err, XMC_ESTATE, NULL, 0,
                       "ffi: the topology is frozen (rewire_end passed); no rewiring");
    if (!(fraction >= 0 && fraction <= 1))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: prune fraction must be in [0, 1], got %g",
                       fraction);
    if (fraction == 0 && !(threshold >= 0 && isfinite(threshold)))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "ffi: prune threshold must be finite and >= 0, got %g", (double)threshold);
    const int F = h->cfg.fan_in, d = h->cfg.d_in, words = (d + 63) / 64;
    const int T = rewire_threads(h->threads);
    const int64_t L = h->cfg.n_labels;
    const int64_t LF = L * F;
    const float *Wall = h->W;

    int64_t K = 0;
    uint32_t kth;
    int64_t ties = 0; /* weights with key == kth to prune, in label order */
    if (fraction > 0) {
        K = llround(fraction * (double)LF);
        if (K == 0) {
            h->rounds++;
            return XMC_OK;
        }
        assert(h->rewire_bytes >= (size_t)T * NBINS * 8);
        uint64_t *hist = h->rewire_scr;
        /* Pass 0 bins the top 16 bits of every key; pass 1 the low 16 bits
         * of the keys in the bin holding the K-th smallest. `cum` counts the
         * keys below the current bin. */
        int64_t cum = 0;
        uint32_t hbin = 0, lbin = 0;
        for (int pass = 0; pass < 2; pass++) {
            memset(hist, 0, (size_t)T * NBINS * 8);
#pragma omp parallel num_threads(T)
            {
                int t = THREAD_ID(), nt = THREAD_COUNT();
                uint64_t *hh = hist + (size_t)t * NBINS;
                int64_t lo = LF * t / nt, hi = LF * (t + 1) / nt;
                if (!pass)
                    for (int64_t q = lo; q < hi; q++)
                        hh[key_of(Wall[q]) >> 16]++;
                else
                    for (int64_t q = lo; q < hi; q++) {
                        uint32_t key = key_of(Wall[q]);
                        if (key >> 16 == hbin)
                            hh[key & 0xffff]++;
                    }
            }
            /* Sum into thread 0's bins (threads the runtime did not start
             * left zeros). */
            for (int t = 1; t < T; t++)
                for (int i = 0; i < NBINS; i++)
                    hist[i] += hist[(size_t)t * NBINS + i];
            uint32_t bin = 0;
            while (bin < NBINS - 1 && cum + (int64_t)hist[bin] < K)
                cum += (int64_t)hist[bin++];
            if (!pass)
                hbin = bin;
            else
                lbin = bin;
        }
        kth = (hbin << 16) | lbin;
        ties = K - cum; /* cum = number of keys < kth */
    } else {
        kth = key_of(threshold);
    }

    const size_t per = regrow_bytes(d, F);
    int64_t eq[MAX_THREADS], pruned[MAX_THREADS];
    assert(h->rewire_bytes >= per * (size_t)T);
    unsigned char *scr = h->rewire_scr;
    const uint64_t seed =
        h->cfg.seed ^ REWIRE_TAG ^ ((uint64_t)(h->rounds + 1) * 0x9e3779b97f4a7c15ull);
    int used_T = 1;
#pragma omp parallel num_threads(T)
    {
        int t = THREAD_ID(), nt = THREAD_COUNT();
        if (t == 0)
            used_T = nt;
        const int64_t lo = L * t / nt, hi = L * (t + 1) / nt;
        int64_t e = 0;
        if (ties > 0)
            for (int64_t q = lo * F; q < hi * F; q++)
                e += key_of(Wall[q]) == kth;
        eq[t] = e;
#pragma omp barrier
        int64_t quota = 0;
        if (ties > 0) {
            int64_t before = 0;
            for (int s = 0; s < t; s++)
                before += eq[s];
            quota = ties - before;
            quota = quota < 0 ? 0 : quota > e ? e : quota;
        }
        unsigned char *base = scr + per * (size_t)t;
        uint64_t *used = (uint64_t *)base;
        uint64_t *newmap = (uint64_t *)(base + a64((size_t)words * 8));
        int32_t *free_list = (int32_t *)(base + 2 * a64((size_t)words * 8));
        unsigned char *q0 = base + 2 * a64((size_t)words * 8) + a64((size_t)d * 4);
        int32_t *tmp_i = (int32_t *)q0;
        float *tmp_w = (float *)(q0 + a64((size_t)F * 4));
        float *tmp_m = (float *)(q0 + 2 * a64((size_t)F * 4));
        float *tmp_v = (float *)(q0 + 3 * a64((size_t)F * 4));
        int32_t *fresh = (int32_t *)(q0 + 4 * a64((size_t)F * 4));
        unsigned char *mark = q0 + 5 * a64((size_t)F * 4);
        int64_t np = 0;
        for (int64_t u = lo; u < hi; u++) {
            const float *W = h->W + u * F;
            int p = 0;
            for (int k = 0; k < F; k++) {
                uint32_t key = key_of(W[k]);
                int cut = key < kth;
                if (!cut && key == kth && quota > 0) {
                    cut = 1;
                    quota--;
                }
                mark[k] = (unsigned char)cut;
                p += cut;
            }
            if (p)
                regrow_label(h, u, mark, p, seed, used, newmap, free_list, tmp_i, tmp_w, tmp_m,
                             tmp_v, fresh);
            np += p;
        }
        pruned[t] = np;
    }
    int64_t total = 0;
    for (int t = 0; t < used_T; t++)
        total += pruned[t];
    if (n_pruned)
        *n_pruned = total;
    h->rounds++;
    return XMC_OK;
}

int64_t xmc_ffi_schedule_end(const xmc_ffi_schedule *s)
{
    if (s->rewire_end > 0)
        return s->rewire_end;
    return (int64_t)floor(XMC_FFI_DEFAULT_REWIRE_END_FRAC * (double)s->total_steps);
}

int xmc_ffi_schedule_due(const xmc_ffi_schedule *s, int64_t step)
{
    return s->rewire_interval > 0 && step >= 1 && step % s->rewire_interval == 0 &&
           step <= xmc_ffi_schedule_end(s);
}

float xmc_ffi_schedule_threshold(const xmc_ffi_schedule *s, int64_t step)
{
    const double lo = XMC_FFI_REWIRE_THRESHOLD_FINAL, hi = s->rewire_threshold;
    int64_t end = xmc_ffi_schedule_end(s);
    if (end <= 0 || step >= end)
        return (float)lo;
    double x = step < 0 ? 0 : (double)step / (double)end;
    return (float)(lo + (hi - lo) * 0.5 * (1 + cos(M_PI * x)));
}

int xmc_ffi_schedule_apply(xmc_ffi *h, const xmc_ffi_schedule *s, int64_t step,
                           int64_t *n_pruned, xmc_error *err)
{
    if (n_pruned)
        *n_pruned = 0;
    if (!h || !s)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi: NULL head or schedule");
    if (h->frozen)
        return XMC_OK;
    int rc = XMC_OK;
    if (xmc_ffi_schedule_due(s, step))
        rc = xmc_ffi_rewire(h, s->rewire_fraction > 0 ? s->rewire_fraction : 0,
                            xmc_ffi_schedule_threshold(s, step), n_pruned, err);
    if (rc == XMC_OK && step >= xmc_ffi_schedule_end(s))
        h->frozen = 1;
    return rc;
}
