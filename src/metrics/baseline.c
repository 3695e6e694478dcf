/* The label-frequency baseline prediction (`xmc eval --baseline freq`): the
 * floor any model must beat, and a prediction the README's quick start can
 * score before any model is trained.
 *
 * Algorithm: count each label's training rows, sort (count desc, id asc),
 * keep the first k, and repeat that row n_rows times. Memory: 16 bytes per
 * label for the sort, then the n_rows x k output. Single-threaded (O(L log L
 * + n_rows k), dominated by writing the output).
 */
#include <stdlib.h>
#include <string.h>

#include "xmc/metrics.h"

typedef struct label_count {
    int64_t n;
    int32_t l;
} label_count;

static int by_count_desc(const void *a, const void *b)
{
    const label_count *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return (x->l > y->l) - (x->l < y->l);
}

static int by_id(const void *a, const void *b)
{
    const label_count *x = a, *y = b;
    return (x->l > y->l) - (x->l < y->l);
}

int xmc_metrics_freq_baseline(const xmc_csr *train_Y, int64_t n_rows, int k, xmc_csr **out,
                              xmc_error *err)
{
    *out = NULL;
    if (!train_Y || n_rows < 0 || k < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0,
                       "frequency baseline: expected training labels, rows >= 0 and k >= 1");
    const int64_t L = train_Y->ncols;
    if (k > L)
        k = (int)L;
    label_count *c = xmc_calloc((size_t)(L ? L : 1), sizeof *c);
    if (!c)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "frequency baseline: out of memory (L=%lld)",
                       (long long)L);
    for (int64_t l = 0; l < L; l++)
        c[l].l = (int32_t)l;
    for (int64_t e = 0; e < xmc_csr_nnz(train_Y); e++) {
        int32_t l = train_Y->indices[e];
        if (l >= 0 && l < L && (!train_Y->values || train_Y->values[e] != 0.0f))
            c[l].n++;
    }
    qsort(c, (size_t)L, sizeof *c, by_count_desc);
    qsort(c, (size_t)k, sizeof *c, by_id); /* a CSR row is sorted by label id */
    xmc_csr *m = NULL;
    int rc = xmc_csr_create(&m, n_rows, L, n_rows * k, 1, err);
    if (rc == XMC_OK) {
        for (int64_t i = 0; i < n_rows; i++) {
            for (int j = 0; j < k; j++) {
                m->indices[i * k + j] = c[j].l;
                m->values[i * k + j] = (float)c[j].n;
            }
            m->indptr[i + 1] = (i + 1) * k;
        }
        *out = m;
    }
    xmc_free(c);
    return rc;
}
