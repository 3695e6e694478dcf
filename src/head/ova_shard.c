/* Re-sharding a one-vs-all head: copy the rows of one label shard into
 * another (Renee's model parallelism, docs/dist.md). A checkpoint written by
 * P ranks holds P shard files; a job on P' ranks (P' = 1 for single-process
 * predict) builds each of its shards from the stored shards it overlaps.
 * Weights AND optimizer state move bit for bit, so re-sharding a checkpoint
 * changes nothing about the model or a resumed run. No allocation. */
#include <string.h>

#include "internal.h"

int xmc_ova_copy_rows(xmc_ova *dst, const xmc_ova *src, xmc_error *err)
{
    const xmc_ova_config *a = &dst->cfg, *b = &src->cfg;
    if (a->dim != b->dim || a->dtype != b->dtype || a->opt != b->opt)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "re-shard: head shards differ in width, dtype or optimizer");
    int64_t l0;
    const int64_t nl =
        shard_overlap(a->label_offset, a->n_labels, b->label_offset, b->n_labels, &l0);
    if (nl <= 0)
        return XMC_OK;
    const size_t d = (size_t)dst->d, n = (size_t)nl * d;
    const size_t od = (size_t)(l0 - a->label_offset) * d, os = (size_t)(l0 - b->label_offset) * d;
#define COPY(f, sz)                                                          \
    do {                                                                     \
        if (dst->f && src->f)                                                \
            memcpy((char *)dst->f + od * (sz), (const char *)src->f + os * (sz), n * (sz)); \
    } while (0)
    COPY(w, sizeof(float));
    COPY(wb, sizeof(uint16_t));
    COPY(mom, sizeof(float));
    COPY(momb, sizeof(uint16_t));
    COPY(am, sizeof(float));
    COPY(av, sizeof(float));
#undef COPY
    dst->t = src->t; /* every shard of one run took the same steps */
    return XMC_OK;
}
