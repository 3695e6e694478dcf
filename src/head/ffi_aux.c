/* SPARTEX's auxiliary meta-classifier (Ullah et al. NeurIPS 2024): labels
 * are partitioned into C clusters; a dense head over the clusters learns
 * multi-hot targets (a cluster is positive when it holds a positive label),
 * and the training loss is
 *     (1 - alpha_t) L_main + alpha_t L_meta,
 * alpha_t cosine-decayed from aux_scale (0.4) to 0 at meta_cutoff_epoch,
 * after which the meta head is dropped. It gives the encoder a dense,
 * well-conditioned gradient while the sparse head's topology is still
 * random. This file holds the target construction and the schedule; the meta
 * head is any dense head (an xmc_ova over C labels, or an xmc_ffi with
 * fan_in = d_in, which is exactly dense).
 *
 * Targets are built into caller-owned arrays (no allocation, O(nnz log nnz)
 * per row with an in-place insertion sort of the row's cluster ids).
 */
#include <math.h>

#include "head/ffi_internal.h"

int xmc_ffi_aux_targets(const xmc_csr *Y, const int64_t *rows, int B,
                        const int32_t *label_cluster, int64_t n_labels, int32_t n_clusters,
                        int64_t *indptr, int32_t *indices, int64_t cap, xmc_error *err)
{
    if (!Y || !label_cluster || !indptr || (!indices && cap > 0))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi aux: NULL argument");
    if (B < 0 || n_clusters < 1 || n_labels < 0 || cap < 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "ffi aux: need B >= 0, n_clusters >= 1, cap >= 0 (got %d, %d, %lld)", B,
                       (int)n_clusters, (long long)cap);
    int64_t nnz = 0;
    indptr[0] = 0;
    for (int b = 0; b < B; b++) {
        int64_t r = rows ? rows[b] : b;
        if (r < 0 || r >= Y->nrows)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "ffi aux: row %lld outside [0, %lld)",
                           (long long)r, (long long)Y->nrows);
        const int64_t start = nnz;
        for (int64_t p = Y->indptr[r]; p < Y->indptr[r + 1]; p++) {
            if (Y->values && !(Y->values[p] > 0))
                continue;
            int32_t l = Y->indices[p];
            if (l < 0 || l >= n_labels)
                return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                               "ffi aux: label %d outside the cluster map [0, %lld)", (int)l,
                               (long long)n_labels);
            int32_t c = label_cluster[l];
            if (c < 0 || c >= n_clusters)
                return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                               "ffi aux: label %d has cluster %d outside [0, %d)", (int)l,
                               (int)c, (int)n_clusters);
            /* Insert c into the row's sorted, unique list. */
            int64_t q = nnz;
            while (q > start && indices[q - 1] > c)
                q--;
            if (q > start && indices[q - 1] == c)
                continue;
            if (nnz >= cap) {
                return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                               "ffi aux: target capacity %lld too small at row %d (use B * "
                               "min(n_clusters, max labels per row))",
                               (long long)cap, b);
            }
            for (int64_t s = nnz; s > q; s--)
                indices[s] = indices[s - 1];
            indices[q] = c;
            nnz++;
        }
        indptr[b + 1] = nnz;
    }
    return XMC_OK;
}

double xmc_ffi_aux_alpha(double aux_scale, double epoch, double meta_cutoff_epoch)
{
    if (!(meta_cutoff_epoch > 0) || !(epoch < meta_cutoff_epoch))
        return 0.0;
    double x = epoch > 0 ? epoch / meta_cutoff_epoch : 0.0;
    return aux_scale * 0.5 * (1.0 + cos(M_PI * x));
}
