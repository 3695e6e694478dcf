/* Re-sharding a fixed fan-in head (docs/dist.md): copy the rows of one label
 * shard into another, as ova_shard.c does for the dense head. A row is its
 * weights, input indices, bias and optimizer state; all move bit for bit,
 * with the step and rewiring-round counts and the frozen flag (every shard
 * of one run has the same ones), so a re-sharded checkpoint trains on as if
 * never split. No allocation. */
#include <string.h>

#include "head/ffi_internal.h"
#include "head/internal.h" /* shard_overlap */

int xmc_ffi_copy_rows(xmc_ffi *dst, const xmc_ffi *src, xmc_error *err)
{
    const xmc_ffi_config *a = &dst->cfg, *b = &src->cfg;
    if (a->d_in != b->d_in || a->fan_in != b->fan_in || a->opt != b->opt || a->bias != b->bias)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "re-shard: sparse head shards differ in width, fan-in, optimizer or bias");
    int64_t l0;
    const int64_t nl =
        shard_overlap(a->label_offset, a->n_labels, b->label_offset, b->n_labels, &l0);
    if (nl <= 0)
        return XMC_OK;
    const size_t F = (size_t)a->fan_in, n = (size_t)nl;
    const size_t od = (size_t)(l0 - a->label_offset), os = (size_t)(l0 - b->label_offset);
#define COPY(f, per)                                                                  \
    do {                                                                              \
        if (dst->f && src->f)                                                         \
            memcpy(dst->f + od * (per), src->f + os * (per), n * (per) * sizeof *dst->f); \
    } while (0)
    COPY(W, F);
    COPY(idx, F);
    COPY(m, F);
    COPY(v, F);
    COPY(bias, 1);
    COPY(mb, 1);
    COPY(vb, 1);
#undef COPY
    dst->steps = src->steps;
    dst->rounds = src->rounds;
    dst->frozen = src->frozen;
    return XMC_OK;
}
