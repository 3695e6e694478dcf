/* libFuzzer: sparse matrix text ("N C" + "c:v ..." rows, any order), through
 * xmc_csr_read_text, then a write/read round trip must give the same matrix.
 * Differential too: the input as a body in both modes (sparse, XC) through
 * the scalar parser and each vector row kernel (rowscan*.c) must give the
 * same matrices bit for bit, or the same error and line; so must the
 * segmented parse with tiny segments (the pipelined path of big files). */
#include <stdlib.h>

#include "data/internal.h"
#include "fuzz_common.h"
#include "xmc/data.h"

/* The segmented parse (segments of 1, 8, 64 bytes, the last two starting
 * at 1/16 of that and doubling: the pipelined path of big files) against
 * one segment: same matrices or the same error and line, also with a
 * header row count one off. */
static void diff_segments(const char *body, size_t size, int mode, int64_t rows)
{
    if (rows < 0)
        return;
    xmc_sparse_row_fn fn = xmc_sparse_row_best();
    xmc_error e0 = {0};
    xmc_csr *X0 = NULL, *Y0 = NULL;
    int rc0 = xmc_sparse_parse("b", body, size, 2, mode, rows, 1000, 50, fn, &X0,
                               mode ? &Y0 : NULL, &e0);
    for (size_t sb = 1; sb <= 64; sb *= 8) {
        xmc_error e = {0};
        xmc_csr *X = NULL, *Y = NULL;
        size_t keep = xmc_sparse_segment_bytes;
        xmc_sparse_segment_bytes = sb;
        int rc = xmc_sparse_parse("b", body, size, 2, mode, rows, 1000, 50, fn, &X,
                                  mode ? &Y : NULL, &e);
        xmc_sparse_segment_bytes = keep;
        if (rc != rc0 || e.line != e0.line || strcmp(e.msg, e0.msg) ||
            !xmc_csr_equal(X, X0) || !xmc_csr_equal(Y, Y0))
            abort();
        if (X && xmc_csr_nnz(X) &&
            memcmp(X->values, X0->values, (size_t)xmc_csr_nnz(X) * sizeof(float)))
            abort();
        xmc_csr_free(X);
        xmc_csr_free(Y);
    }
    xmc_csr_free(X0);
    xmc_csr_free(Y0);
}

static void diff_kernels(const uint8_t *data, size_t size)
{
    static const char *const levels[] = {"ref", "avx2", "avx512"};
    char *body = malloc(size ? size : 1); /* exact size: ASan sees over-reads */
    if (!body)
        return;
    memcpy(body, data, size);
    int64_t rows = size && data[size - 1] != '\n';
    for (size_t i = 0; i < size; i++)
        rows += data[i] == '\n';
    for (int mode = 0; mode < 2; mode++) {
        xmc_error e0 = {0};
        xmc_csr *X0 = NULL, *Y0 = NULL;
        int rc0 = xmc_sparse_parse("b", body, size, 2, mode, rows, 1000, 50, NULL, &X0,
                                   mode ? &Y0 : NULL, &e0);
        for (int li = 0; li < 3; li++) {
            xmc_sparse_row_fn fn = xmc_sparse_row_get(levels[li]);
            if (!fn)
                continue;
            xmc_error e = {0};
            xmc_csr *X = NULL, *Y = NULL;
            int rc = xmc_sparse_parse("b", body, size, 2, mode, rows, 1000, 50, fn, &X,
                                      mode ? &Y : NULL, &e);
            if (rc != rc0 || e.line != e0.line || strcmp(e.msg, e0.msg) ||
                !xmc_csr_equal(X, X0) || !xmc_csr_equal(Y, Y0))
                abort();
            if (X && xmc_csr_nnz(X) &&
                memcmp(X->values, X0->values, (size_t)xmc_csr_nnz(X) * sizeof(float)))
                abort();
            xmc_csr_free(X);
            xmc_csr_free(Y);
        }
        for (int64_t d = -1; d <= 1; d++)
            diff_segments(body, size, mode, rows + d);
        xmc_csr_free(X0);
        xmc_csr_free(Y0);
    }
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_path("m.txt"), *q = fuzz_path("m2.txt");
    fuzz_write(p, data, size);
    xmc_error e = {0};
    xmc_csr *m = NULL, *m2 = NULL;
    if (xmc_csr_read_text(p, &m, &e) == XMC_OK) {
        if (xmc_csr_check(m, "m", NULL))
            abort();
        if (xmc_csr_write_text(q, m, &e) || xmc_csr_read_text(q, &m2, &e) ||
            !xmc_csr_equal(m, m2))
            abort();
        xmc_csr_free(m2);
        xmc_csr_free(m);
    } else if (m || e.code == XMC_OK) {
        abort();
    }
    diff_kernels(data, size);
    return 0;
}
