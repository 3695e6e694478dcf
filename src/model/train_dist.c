/* Renee's hybrid data/model parallelism (Jain et al., MLSys 2023, sec. 4):
 * the sharded training step and top-k over a process group (dist.h).
 *
 * P ranks; rank r owns labels [r L/P, (r+1) L/P) of W and their optimizer
 * state (its xmc_ova, or SPARTEX's xmc_ffi, has label_offset = r L/P); the
 * encoder is replicated. SPARTEX shards rewire their own labels after the
 * update (threshold schedule, streams keyed by global label id: the
 * single-process topology); the pruned counts are summed for the log.
 * One step on a global batch of B rows (the same rows on every rank):
 *   1. rank r encodes its slice of the batch (xmc_dist_shard(B, P, r)),
 *   2. allgather E (B x d; slices padded to ceil(B/P) rows),
 *   3. fused classifier pass over the rank's label shard for all B rows
 *      (head.h; Y is indexed by global label, so the rank sees only its
 *      columns): updates the shard of W and yields the PARTIAL dE,
 *   4. non-blocking reduce-scatter of dE: rank r receives the sum over
 *      shards for its own rows; the encoder's gradient reset overlaps it
 *      (the fused pass interleaves dE and the W update chunk by chunk, so
 *      dE is final only when the shard's update is done; see docs/dist.md),
 *   5. backward through the encoder for the rank's rows,
 *   6. non-blocking allreduce of the dense encoder gradients, overlapped
 *      with the merge of the sparse embedding-table rows (union of the rows
 *      every rank touched, summed: allgather of ids + rows),
 *   7. AdamW + lazy Adam: the same update on identical inputs on every
 *      rank, so the replicas stay identical.
 * The losses and gradients are sums over the batch (head.h), so the summed
 * dE and encoder gradients equal the single-process ones up to fp32
 * reduction order: P ranks and one process train the same model.
 * Dropout: masks are keyed by (seed, step, row of the global batch), the
 * rank passing its slice's first row (encoder batch_row0), and input
 * dropout by (seed, step, data entry): each rank draws exactly the masks one
 * process draws for those rows, so runs with dropout match too.
 *
 * Top-k: every rank encodes the whole batch (the same E as one process,
 * whatever P), takes the top-k over its shard, and rank 0 merges the P
 * lists (gather) by (score desc, label asc), which is exactly the
 * single-process order: predictions do not depend on P.
 *
 * Faults: after the local encoder pass the ranks agree on a status; a rank
 * that failed makes all return (model_dist_agree), none waits in a
 * collective. XMC_DIST_FAULT=RANK:STEP injects such a failure (tests).
 *
 * Memory per rank: the shard of W + its state, the replicated encoder and
 * its optimizer, and scratch sized once (model_dist_reserve): E slices
 * (2 + P) ceil(B/P) x d floats, and for the sparse-table merge P x T x
 * (cols + 2) floats (T = the table's touched-row capacity) + a slot map of
 * the table's rows. Nothing is allocated inside a step.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MB(x) ((double)(x) / 1048576.0)

typedef struct model_dist {
    int P, r;
    int bmax;          /* ceil(max_batch / P) */
    float *Eloc;       /* (bmax, d) this rank's embeddings */
    float *Eall;       /* (P * bmax, d) gathered */
    float *dEloc;      /* (bmax, d) summed dE of this rank's rows */
    int *counts;       /* (P) reduce-scatter counts */
    double *cnt;       /* (P) touched rows per rank */
    /* sparse-table merge, sized for the largest table */
    int64_t tcap;      /* touched-row capacity per rank */
    int64_t tcols;     /* widest table */
    int64_t trows;     /* rows of the slot map */
    float *tids;       /* (tcap, 2) ids as two exact 16-bit halves */
    float *tids_all;   /* (P * tcap, 2) */
    float *tg_all;     /* (P * tcap, tcols) */
    int32_t *slot;     /* (trows) -1 or the merged position */
    /* counters */
    int64_t steps;
    double step_s, comm_s;
    uint64_t bytes, bytes_model;
    int fault_rank;
    int64_t fault_step;
} model_dist;

int model_sharded(const xmc_model *m) { return m && xmc_dist_active(m->dist); }

size_t model_dist_bytes(const xmc_model *m)
{
    const model_dist *md = m->dd;
    if (!md)
        return 0;
    const size_t row = (size_t)m->enc->dim * sizeof(float), P = (size_t)md->P;
    return (2 + P) * (size_t)md->bmax * row + P * (sizeof(int) + sizeof(double)) +
           (size_t)md->tcap * 2 * sizeof(float) * (1 + P) +
           P * (size_t)md->tcap * (size_t)md->tcols * sizeof(float) +
           (size_t)md->trows * sizeof(int32_t);
}

void model_shard_range(const xmc_dist *d, int64_t n_labels, int64_t *l0, int64_t *l1)
{
    xmc_dist_shard(n_labels, xmc_dist_size(d), xmc_dist_rank(d), l0, l1);
}

int model_dist_agree(xmc_dist *d, int local_rc, const char *what, xmc_error *err)
{
    if (!xmc_dist_active(d))
        return local_rc;
    xmc_error e2 = {0};
    int failed = -1;
    int code = xmc_dist_agree(d, local_rc, &failed, &e2);
    if (code == XMC_OK)
        return XMC_OK;
    if (failed < 0) { /* the agreement itself failed: MPI is broken */
        if (err)
            *err = e2;
        return code;
    }
    /* Ship the failing rank's message to rank 0 (an error path: allocating
     * here is fine). */
    const int P = xmc_dist_size(d), me = xmc_dist_rank(d);
    char mine[1040] = "";
    if (me == failed && err)
        snprintf(mine, sizeof mine, "%.500s%s%.500s", err->path[0] ? err->path : "",
                 err->path[0] ? ": " : "", err->msg);
    char *all = me == 0 ? xmc_calloc((size_t)P, sizeof mine) : NULL;
    xmc_dist_gather(d, mine, sizeof mine, all ? all : mine, 0, &e2);
    if (me == failed) {
        xmc_free(all);
        return local_rc ? local_rc : code;
    }
    XMC_ERR(err, XMC_EDIST, NULL, 0, "rank %d of %d failed %s: %s", failed, P, what,
            all ? all + (size_t)failed * sizeof mine : "(its message is on its own stderr)");
    xmc_free(all);
    return XMC_EDIST;
}

void model_dist_free(xmc_model *m)
{
    model_dist *md = m->dd;
    if (!md)
        return;
    xmc_free_aligned(md->Eloc);
    xmc_free_aligned(md->Eall);
    xmc_free_aligned(md->dEloc);
    xmc_free(md->counts);
    xmc_free(md->cnt);
    xmc_free(md->tids);
    xmc_free(md->tids_all);
    xmc_free_aligned(md->tg_all);
    xmc_free(md->slot);
    xmc_free(md);
    m->dd = NULL;
}

int model_dist_reserve(xmc_model *m, xmc_error *err)
{
    if (!model_sharded(m))
        return XMC_OK;
    model_dist *md = m->dd;
    if (!md) {
        if (!(md = m->dd = xmc_calloc(1, sizeof *md)))
            return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (sharded step)");
        md->P = xmc_dist_size(m->dist);
        md->r = xmc_dist_rank(m->dist);
        md->bmax = (m->max_batch + md->P - 1) / md->P;
        const size_t row = (size_t)m->enc->dim * sizeof(float);
        md->Eloc = xmc_malloc_aligned((size_t)md->bmax * row);
        md->Eall = xmc_malloc_aligned((size_t)md->P * (size_t)md->bmax * row);
        md->dEloc = xmc_malloc_aligned((size_t)md->bmax * row);
        md->counts = xmc_calloc((size_t)md->P, sizeof(int));
        md->cnt = xmc_calloc((size_t)md->P, sizeof(double));
        md->fault_rank = -1;
        const char *f = getenv("XMC_DIST_FAULT"); /* RANK:STEP, for the tests */
        if (f && strchr(f, ':')) {
            md->fault_rank = atoi(f);
            md->fault_step = atoll(strchr(f, ':') + 1);
        }
        if (!md->Eloc || !md->Eall || !md->dEloc || !md->counts || !md->cnt)
            return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (sharded step buffers)");
    }
    int64_t cap = 0, cols = 0, rows = 0;
    for (int i = 0; i < m->enc->n_tables; i++) {
        const xmc_sparse_table *t = &m->enc->tables[i];
        cap = t->max_touched > cap ? t->max_touched : cap;
        cols = t->cols > cols ? t->cols : cols;
        rows = t->rows > rows ? t->rows : rows;
    }
    if (cap <= md->tcap && cols <= md->tcols && rows <= md->trows)
        return XMC_OK;
    xmc_free(md->tids);
    xmc_free(md->tids_all);
    xmc_free_aligned(md->tg_all);
    xmc_free(md->slot);
    md->tcap = md->tcols = md->trows = 0;
    const size_t P = (size_t)md->P;
    md->tids = xmc_malloc((size_t)cap * 2 * sizeof(float));
    md->tids_all = xmc_malloc(P * (size_t)cap * 2 * sizeof(float));
    md->tg_all = xmc_malloc_aligned(P * (size_t)cap * (size_t)cols * sizeof(float));
    md->slot = xmc_malloc((size_t)rows * sizeof(int32_t));
    if (!md->tids || !md->tids_all || !md->tg_all || !md->slot)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                       "out of memory (sparse-row merge: %d ranks x %lld rows x %lld floats)",
                       md->P, (long long)cap, (long long)cols);
    for (int64_t i = 0; i < rows; i++)
        md->slot[i] = -1;
    md->tcap = cap;
    md->tcols = cols;
    md->trows = rows;
    return XMC_OK;
}

/* Timed collective: adds the wall time of `call` to *tc. */
#define COMM(tc, call)                    \
    do {                                  \
        double t0_ = xmc_now();           \
        rc = (call);                      \
        *(tc) += xmc_now() - t0_;         \
        if (rc)                           \
            return rc;                    \
    } while (0)

/* Step 6b: every rank ends with the union of the touched rows of all ranks
 * and their summed gradients, in rank order (so all ranks agree). */
static int merge_tables(xmc_model *m, double *tc, double *model_bytes, xmc_error *err)
{
    model_dist *md = m->dd;
    xmc_dist *g = m->dist;
    const int P = md->P;
    int rc;
    for (int i = 0; i < m->enc->n_tables; i++) {
        xmc_sparse_table *t = &m->enc->tables[i];
        memset(md->cnt, 0, (size_t)P * sizeof(double));
        md->cnt[md->r] = (double)t->n_touched;
        COMM(tc, xmc_dist_allreduce_f64(g, md->cnt, P, err));
        int64_t T = 0;
        for (int k = 0; k < P; k++)
            T = (int64_t)md->cnt[k] > T ? (int64_t)md->cnt[k] : T;
        if (T == 0)
            continue;
        if (T > md->tcap || t->cols > md->tcols || t->rows > md->trows || T > t->max_touched)
            return XMC_ERR(err, XMC_ESTATE, NULL, 0,
                           "table %s: %lld touched rows exceed the merge capacity %lld",
                           t->name, (long long)T, (long long)md->tcap);
        const size_t cols = (size_t)t->cols;
        for (int64_t q = 0; q < t->n_touched; q++) {
            md->tids[2 * q] = (float)(t->touched[q] >> 16);
            md->tids[2 * q + 1] = (float)(t->touched[q] & 0xffff);
        }
        memset(md->tids + 2 * t->n_touched, 0, (size_t)(T - t->n_touched) * 2 * sizeof(float));
        memset(t->grad + (size_t)t->n_touched * cols, 0,
               (size_t)(T - t->n_touched) * cols * sizeof(float));
        COMM(tc, xmc_dist_allgather_f32(g, md->tids, 2 * T, md->tids_all, err));
        COMM(tc, xmc_dist_allgather_f32(g, t->grad, T * (int64_t)cols, md->tg_all, err));
        *model_bytes += 2.0 * (P - 1) / P * P * 8.0 + (double)(P - 1) * (double)T * (cols + 2) * 4.0;
        int64_t n = 0;
        for (int k = 0; k < P; k++)
            for (int64_t q = 0; q < (int64_t)md->cnt[k]; q++) {
                const float *ip = md->tids_all + 2 * ((size_t)k * (size_t)T + (size_t)q);
                int32_t id = ((int32_t)ip[0] << 16) | (int32_t)ip[1];
                const float *gr = md->tg_all + ((size_t)k * (size_t)T + (size_t)q) * cols;
                int32_t s = md->slot[id];
                if (s < 0) {
                    if (n >= t->max_touched)
                        return XMC_ERR(err, XMC_ESTATE, NULL, 0,
                                       "table %s: merged rows exceed its capacity %lld", t->name,
                                       (long long)t->max_touched);
                    md->slot[id] = (int32_t)n;
                    t->touched[n] = id;
                    memcpy(t->grad + (size_t)n * cols, gr, cols * sizeof(float));
                    n++;
                } else {
                    float *dst = t->grad + (size_t)s * cols;
                    for (size_t c = 0; c < cols; c++)
                        dst[c] += gr[c];
                }
            }
        for (int64_t q = 0; q < n; q++)
            md->slot[t->touched[q]] = -1;
        t->n_touched = n;
    }
    return XMC_OK;
}

int model_dist_step(xmc_model *m, const xmc_enc_data *d, const xmc_csr *Y, const int64_t *rows,
                    int B, double *loss_out, xmc_error *err)
{
    if (m->meta)
        return XMC_ERR(err, XMC_EUNSUPPORTED, NULL, 0,
                       "the sharded step has no meta-classifier (--aux-clusters)");
    /* Normally sized after prepare by the loop; this is the fallback. */
    int rc = model_dist_reserve(m, err);
    model_dist *md = m->dd;
    xmc_dist *g = m->dist;
    const int64_t t = m->step + 1;
    char what[64];
    snprintf(what, sizeof what, "at step %lld", (long long)t);
    if (rc || !md)
        return model_dist_agree(g, rc ? rc : XMC_ENOMEM, what, err);
    const int P = md->P, r = md->r, dim = m->enc->dim;
    const size_t row = (size_t)dim * sizeof(float);
    const double ts = xmc_now();
    double tc = 0, model_bytes = 0;
    const uint64_t bytes0 = xmc_dist_bytes_sent(g);
    int64_t s0, s1;
    xmc_dist_shard(B, P, r, &s0, &s1);
    const int Br = (int)(s1 - s0), bm = (B + P - 1) / P;

    /* 1. this rank's rows */
    int lrc = XMC_OK;
    if (Br > 0) {
        m->enc->batch_row0 = s0; /* dropout keyed by global row (top of file) */
        lrc = xmc_encoder_forward(m->enc, d, rows + s0, Br, 1, md->Eloc, err);
        m->enc->batch_row0 = 0;
    } else
        m->enc->step++; /* keeps the dropout key in step with the other ranks */
    if (!lrc && md->fault_rank == r && md->fault_step == t)
        lrc = XMC_ERR(err, XMC_EINVAL, NULL, 0, "injected fault (XMC_DIST_FAULT=%d:%lld)", r,
                      (long long)t);
    COMM(&tc, model_dist_agree(g, lrc, what, err));

    /* 2. E of the whole batch */
    memset((char *)md->Eloc + (size_t)Br * row, 0, (size_t)(bm - Br) * row);
    COMM(&tc, xmc_dist_allgather_f32(g, md->Eloc, (int64_t)bm * dim, md->Eall, err));
    for (int k = 0; k < P; k++) {
        int64_t c0, c1;
        xmc_dist_shard(B, P, k, &c0, &c1);
        memcpy((char *)m->E + (size_t)c0 * row, (char *)md->Eall + (size_t)k * bm * row,
               (size_t)(c1 - c0) * row);
        md->counts[k] = (int)((c1 - c0) * dim);
    }
    model_bytes += (double)(P - 1) * bm * dim * 4.0;

    /* 3. the shard's fused pass: W shard updated, partial dE */
    xmc_ova_hparams hp;
    xmc_adam_hparams a, at;
    model_step_hparams(m, t, &hp, &a, &at);
    double loss = 0;
    if ((rc = head_train_step(m, B, Y, rows, &hp, loss_out ? &loss : NULL, err)))
        return rc;

    /* 4. sum dE over shards, scattered by rows */
    xmc_dist_req req;
    COMM(&tc, xmc_dist_ireduce_scatter_f32(g, m->dE, md->dEloc, md->counts, &req, err));
    xmc_encoder_zero_grad(m->enc); /* overlaps the reduce-scatter */
    COMM(&tc, xmc_dist_wait(g, &req, err));
    model_bytes += (double)(P - 1) / P * (double)B * dim * 4.0;
    if (loss_out) {
        COMM(&tc, xmc_dist_allreduce_f64(g, &loss, 1, err));
        *loss_out = loss;
        model_bytes += 2.0 * (P - 1) / P * 8.0;
    }

    /* 5. backward of this rank's rows */
    if (Br > 0 && (rc = xmc_encoder_backward(m->enc, md->dEloc, Br, err)))
        return rc;

    /* 6. encoder gradients: dense sum in flight while the sparse rows merge */
    const int64_t np = m->enc->n_params;
    if (np > 0 && np <= INT_MAX) {
        COMM(&tc, xmc_dist_iallreduce_f32(g, m->enc->grads, np, &req, err));
        if ((rc = merge_tables(m, &tc, &model_bytes, err)))
            return rc;
        COMM(&tc, xmc_dist_wait(g, &req, err));
    } else {
        if (np > 0)
            COMM(&tc, xmc_dist_allreduce_f32(g, m->enc->grads, np, err));
        if ((rc = merge_tables(m, &tc, &model_bytes, err)))
            return rc;
    }
    model_bytes += 2.0 * (P - 1) / P * (double)np * 4.0;

    /* 7. the same update on every rank */
    xmc_enc_optim_step(m->opt, m->enc, &a, &at);
    m->step = t;
    if (m->ffi) { /* SPARTEX: each shard rewires its own labels (threshold
                   * schedule; streams keyed by global label id) */
        int64_t pruned = 0;
        if ((rc = xmc_ffi_schedule_apply(m->ffi, &m->sched, t, &pruned, err)))
            return rc;
        if (xmc_ffi_schedule_due(&m->sched, t)) {
            double pr = (double)pruned; /* the epoch log counts all shards */
            COMM(&tc, xmc_dist_allreduce_f64(g, &pr, 1, err));
            pruned = (int64_t)pr;
            model_bytes += 2.0 * (P - 1) / P * 8.0;
        }
        m->rewired += pruned;
    }
    md->steps++;
    md->step_s += xmc_now() - ts;
    md->comm_s += tc;
    md->bytes += xmc_dist_bytes_sent(g) - bytes0;
    md->bytes_model += (uint64_t)model_bytes;
    return XMC_OK;
}

/* Rank 0's half of the sharded top-k: the best k of P lists per row
 * (glab/gsc: P blocks of B x k, best first, -1 = empty) by (score desc,
 * label asc), exactly one process's order; pos: P ints of scratch. P = 0
 * (ranks > 0) fills L / S with -1 / -inf. */
static void merge_lists(int P, int64_t B, int k, const int32_t *glab, const float *gsc, int *pos,
                        int32_t *L, float *S)
{
    for (int64_t i = 0; i < B; i++) {
        for (int p = 0; p < P; p++)
            pos[p] = 0;
        for (int j = 0; j < k; j++) {
            int best = -1;
            int32_t bl = -1;
            float bs = -INFINITY;
            for (int p = 0; p < P; p++) {
                if (pos[p] >= k)
                    continue;
                size_t o = ((size_t)p * (size_t)B + (size_t)i) * (size_t)k + (size_t)pos[p];
                int32_t l = glab[o];
                float s = gsc[o];
                if (l >= 0 && (best < 0 || s > bs || (s == bs && l < bl))) {
                    best = p;
                    bl = l;
                    bs = s;
                }
            }
            if (best >= 0)
                pos[best]++;
            L[(size_t)i * k + j] = bl; /* -1 / -inf: fewer than k labels (or rank > 0) */
            S[(size_t)i * k + j] = bs;
        }
    }
}

int model_dist_topk(xmc_model *m, const xmc_enc_data *d, int k, int32_t *labels, float *scores,
                    xmc_error *err)
{
    xmc_dist *g = m->dist;
    const int P = xmc_dist_size(g), me = xmc_dist_rank(g);
    const size_t bk = (size_t)m->max_batch * (size_t)k;
    int32_t *lab = xmc_malloc(bk * sizeof(int32_t)), *glab = NULL;
    float *sc = xmc_malloc(bk * sizeof(float)), *gsc = NULL;
    int *pos = xmc_calloc((size_t)P, sizeof(int));
    if (me == 0) {
        glab = xmc_malloc((size_t)P * bk * sizeof(int32_t));
        gsc = xmc_malloc((size_t)P * bk * sizeof(float));
    }
    int rc = (!lab || !sc || !pos || (me == 0 && (!glab || !gsc)))
                 ? XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (sharded top-k)")
                 : XMC_OK;
    if ((rc = model_dist_agree(g, rc, "preparing top-k", err)))
        goto done;
    for (int64_t r0 = 0; r0 < d->n; r0 += m->max_batch) {
        int B = (int)(d->n - r0 < m->max_batch ? d->n - r0 : m->max_batch);
        for (int i = 0; i < B; i++)
            m->rows[i] = r0 + i;
        /* The whole batch on every rank: E (and so every score) as one
         * process computes it, whatever P. */
        int lrc = xmc_encoder_forward(m->enc, d, m->rows, B, 0, m->E, err);
        if (!lrc)
            lrc = head_topk(m, B, k, lab, sc, err);
        if ((rc = model_dist_agree(g, lrc, "in top-k", err)))
            goto done;
        const size_t n = (size_t)B * (size_t)k;
        if ((rc = xmc_dist_gather(g, lab, n * sizeof(int32_t), glab, 0, err)) ||
            (rc = xmc_dist_gather(g, sc, n * sizeof(float), gsc, 0, err)))
            goto done;
        merge_lists(me == 0 ? P : 0, B, k, glab, gsc, pos, labels + (size_t)r0 * (size_t)k,
                    scores + (size_t)r0 * (size_t)k);
    }
done:
    xmc_free(lab);
    xmc_free(sc);
    xmc_free(glab);
    xmc_free(gsc);
    xmc_free(pos);
    return rc;
}

int model_dist_report(xmc_model *m, xmc_error *err)
{
    if (!model_sharded(m) || !m->dd || m->dd->steps == 0)
        return XMC_OK;
    const model_dist *md = m->dd;
    const int P = md->P;
    double mine[4] = {MB(xmc_peak_rss()), md->step_s / md->steps, md->comm_s / md->steps,
                      (double)md->bytes / md->steps};
    double *all = md->r == 0 ? xmc_calloc((size_t)P * 4, sizeof(double)) : NULL;
    int rc = xmc_dist_gather(m->dist, mine, sizeof mine, all ? all : mine, 0, err);
    if (rc || md->r != 0) {
        xmc_free(all);
        return rc;
    }
    char rss[256] = "";
    size_t o = 0;
    for (int k = 0; k < P && o < sizeof rss - 16; k++)
        o += (size_t)snprintf(rss + o, sizeof rss - o, "%s%.1f", k ? ", " : "", all[4 * k]);
    const int64_t B = m->cfg.batch, dim = m->enc->dim, np = m->enc->n_params;
    const double f = 4.0 * ((double)(P - 1) * (double)((B + P - 1) / P) * (double)dim +
                            (double)(P - 1) / P * (double)(B * dim) +
                            2.0 * (P - 1) / P * (double)np);
    xmc_log(XMC_LOG_INFO,
            "dist: %d ranks, %lld sharded steps; step %.3fs, communication %.3fs (%.1f%%); "
            "bytes sent per step (rank 0) %.0f, model %.0f (dense formula B=%lld d=%lld "
            "N_enc=%lld: %.0f); peak RSS per rank MB: %s",
            P, (long long)md->steps, mine[1], mine[2], 100.0 * mine[2] / (mine[1] > 0 ? mine[1] : 1),
            mine[3], (double)md->bytes_model / md->steps, (long long)B, (long long)dim,
            (long long)np, f, rss);
    xmc_free(all);
    return XMC_OK;
}

xmc_dist *xmc_model_dist(const xmc_model *m) { return m ? m->dist : NULL; }

int xmc_model_dist_merge_topk(xmc_dist *dist, int local_rc, const int32_t *lab, const float *sc,
                              int64_t n, int k, int32_t *labels, float *scores, xmc_error *err)
{
    const size_t nk = (size_t)(n > 0 ? n : 0) * (size_t)k;
    if (!xmc_dist_active(dist)) {
        if (!local_rc && nk) {
            memcpy(labels, lab, nk * sizeof(int32_t));
            memcpy(scores, sc, nk * sizeof(float));
        }
        return local_rc;
    }
    const int P = xmc_dist_size(dist), me = xmc_dist_rank(dist);
    int32_t *glab = NULL;
    float *gsc = NULL;
    int *pos = NULL;
    if (!local_rc && me == 0 && n > 0 &&
        (!(glab = xmc_malloc((size_t)P * nk * sizeof(int32_t))) ||
         !(gsc = xmc_malloc((size_t)P * nk * sizeof(float))) ||
         !(pos = xmc_calloc((size_t)P, sizeof(int)))))
        local_rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0,
                           "out of memory (merging %d x %lld x %d top-k lists)", P, (long long)n, k);
    int rc = model_dist_agree(dist, local_rc, "in top-k", err);
    if (!rc && n > 0 &&
        !(rc = xmc_dist_gather(dist, lab, nk * sizeof(int32_t), glab, 0, err)) &&
        !(rc = xmc_dist_gather(dist, sc, nk * sizeof(float), gsc, 0, err))) {
        merge_lists(me == 0 ? P : 0, n, k, glab, gsc, pos, labels, scores);
    }
    xmc_free(glab);
    xmc_free(gsc);
    xmc_free(pos);
    return rc;
}
