/* xmc neighbors: label scores from the nearest training rows, blended into a
 * classifier's scores at prediction (retrieval-augmented prediction, as in
 * RAE-XMC: Wang et al., "Retrieval-augmented encoders for extreme
 * multi-label text classification", 2024, and the kNN half of NGAME /
 * SiameseXML shortlists).
 *
 * A memory holds the training rows' embeddings (what the head scores, L2
 * normalised) and their label rows. For a query embedding q, its k nearest
 * rows by cosine, s_1 >= ... >= s_k, give
 *     K_l(q) = sum_j softmax_j(s_j / temp) y_jl,
 * a distribution over the labels of q's neighbours (y soft targets allowed).
 * The model's score of label l is then (1 - weight) sigmoid(x_l) + weight
 * K_l(q), x_l the classifier's logit (src/model/neighbors.c). The search is
 * exact (xmc_knn_exact: OpenBLAS GEMM over the memory plus a per-query
 * top-k), so it costs n d multiply-adds per query: the memory is meant for
 * problems of up to about 10^5 training rows (model.h, the auto rule).
 *
 * File (little-endian, as the host):
 *   "XMCNBR\0\0"  8-byte magic
 *   u32 version (1)
 *   i64 n, dim, n_labels, nnz
 *   E (n x dim f32, rows of unit norm or zero), indptr (n + 1 i64),
 *   indices (nnz i32), values (nnz f32)
 *   u32 CRC-32 of every byte after the magic
 */
#ifndef XMC_NEIGHBORS_H
#define XMC_NEIGHBORS_H

#include "xmc/core.h"
#include "xmc/data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xmc_neighbors xmc_neighbors;

/* A memory of n rows: E (n x dim, copied and L2-normalised; a zero row stays
 * zero) and their labels Y (n rows, ids < n_labels; values NULL = 1). */
int xmc_neighbors_create(const float *E, int64_t n, int dim, const xmc_csr *Y, int64_t n_labels,
                         xmc_neighbors **out, xmc_error *err);
void xmc_neighbors_free(xmc_neighbors *nb);

int64_t xmc_neighbors_rows(const xmc_neighbors *nb);
int xmc_neighbors_dim(const xmc_neighbors *nb);
/* Bytes held (embeddings and labels). */
size_t xmc_neighbors_bytes(const xmc_neighbors *nb);
/* What a memory of n rows x dim with nnz label entries holds. */
size_t xmc_neighbors_bytes_for(int64_t n, int dim, int64_t nnz);

/* K(q) for the nq queries Q (nq x dim) with k neighbours (clamped to the
 * memory's rows) and temperature temp > 0: *out an nq x n_labels CSR, each
 * row's labels ascending with K_l as values (rows sum to 1 when the
 * neighbours have labels). Free with xmc_csr_free. Deterministic: ties in
 * similarity go to the lower row. */
int xmc_neighbors_scores(const xmc_neighbors *nb, const float *Q, int64_t nq, int k, float temp,
                         xmc_csr **out, xmc_error *err);

int xmc_neighbors_save(const xmc_neighbors *nb, FILE *f, const char *path, xmc_error *err);
int xmc_neighbors_load(FILE *f, const char *path, xmc_neighbors **out, xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
