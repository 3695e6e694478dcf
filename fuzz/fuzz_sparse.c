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

/* One parse of a body: its code, error and matrices (Y in XC mode). */
typedef struct parsed {
    int rc;
    xmc_error e;
    xmc_csr *X, *Y;
} parsed;

static void parse(const char *body, size_t size, int mode, int64_t rows, xmc_sparse_row_fn fn,
                  parsed *p)
{
    memset(p, 0, sizeof *p);
    p->rc = xmc_sparse_parse("b", body, size, 2, mode, rows, 1000, 50, fn, &p->X,
                             mode ? &p->Y : NULL, &p->e);
}

static void parsed_free(parsed *p)
{
    xmc_csr_free(p->X);
    xmc_csr_free(p->Y);
}

/* p against the reference parse r: the same code, error line and message,
 * and the same matrices with the values bit for bit; abort() if not. Frees
 * p. */
static void same_parse(parsed *p, const parsed *r)
{
    if (p->rc != r->rc || p->e.line != r->e.line || strcmp(p->e.msg, r->e.msg) ||
        !xmc_csr_equal(p->X, r->X) || !xmc_csr_equal(p->Y, r->Y))
        abort();
    if (p->X && xmc_csr_nnz(p->X) &&
        memcmp(p->X->values, r->X->values, (size_t)xmc_csr_nnz(p->X) * sizeof(float)))
        abort();
    parsed_free(p);
}

/* The segmented parse (segments of 1, 8, 64 bytes, the last two starting
 * at 1/16 of that and doubling: the pipelined path of big files) against
 * one segment: same matrices or the same error and line, also with a
 * header row count one off. */
static void diff_segments(const char *body, size_t size, int mode, int64_t rows)
{
    if (rows < 0)
        return;
    xmc_sparse_row_fn fn = xmc_sparse_row_best();
    parsed ref, p;
    parse(body, size, mode, rows, fn, &ref);
    for (size_t sb = 1; sb <= 64; sb *= 8) {
        size_t keep = xmc_sparse_segment_bytes;
        xmc_sparse_segment_bytes = sb;
        parse(body, size, mode, rows, fn, &p);
        xmc_sparse_segment_bytes = keep;
        same_parse(&p, &ref);
    }
    parsed_free(&ref);
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
        parsed ref, p;
        parse(body, size, mode, rows, NULL, &ref);
        for (int li = 0; li < 3; li++) {
            xmc_sparse_row_fn fn = xmc_sparse_row_get(levels[li]);
            if (!fn)
                continue;
            parse(body, size, mode, rows, fn, &p);
            same_parse(&p, &ref);
        }
        for (int64_t d = -1; d <= 1; d++)
            diff_segments(body, size, mode, rows + d);
        parsed_free(&ref);
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
