/* Reader of filter files: the Extreme Classification Repository's
 * *_filter_labels.txt, one "row label" pair of 0-based ids per line (the
 * (point, label) pairs that evaluation must ignore, e.g. a Wikipedia page
 * predicting itself). Used by `xmc eval --filter FILE`.
 *
 * Algorithm: read the pairs (growable arrays), bucket them by row (counting
 * sort), sort and de-duplicate each row, then build the CSR pattern matrix.
 * Memory: 12 bytes per pair while reading, then the matrix. Single-threaded:
 * filter files are small (at most a few pairs per test point).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xmc/metrics.h"

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Parse one non-negative integer at *p, skipping leading blanks. */
static int parse_id(char **p, long long *v)
{
    char *s = *p;
    while (*s == ' ' || *s == '\t' || *s == ',')
        s++;
    if (*s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno)
        return -1;
    *v = x;
    *p = end;
    return 0;
}

int xmc_metrics_read_filter(const char *path, int64_t nrows, int64_t ncols, xmc_csr **out,
                            xmc_error *err)
{
    int rc = XMC_OK;
    xmc_lines *r = NULL;
    int64_t *rows = NULL, *start = NULL;
    int32_t *cols = NULL, *bucket = NULL;
    int64_t n = 0, cap = 0;
    xmc_csr *m = NULL;

    *out = NULL;
    if (nrows < 0 || ncols < 0 || ncols > INT32_MAX)
        return XMC_ERR(err, XMC_EINVAL, path, 0, "filter: bad shape %lld x %lld",
                       (long long)nrows, (long long)ncols);
    rc = xmc_lines_open(&r, path, err);
    if (rc)
        return rc;
    char *line;
    size_t len;
    int got;
    while ((got = xmc_lines_next(r, &line, &len, err)) == 1) {
        char *h = strchr(line, '#');
        if (h)
            *h = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            continue;
        long long a, b;
        if (parse_id(&p, &a) || parse_id(&p, &b)) {
            rc = XMC_ERR(err, XMC_EFORMAT, path, xmc_lines_lineno(r),
                         "expected 'row label' (two non-negative integers), got '%.40s'", line);
            goto done;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p) {
            rc = XMC_ERR(err, XMC_EFORMAT, path, xmc_lines_lineno(r),
                         "expected 'row label', got extra text '%.40s'", p);
            goto done;
        }
        if (a >= nrows || b >= ncols) {
            rc = XMC_ERR(err, XMC_EFORMAT, path, xmc_lines_lineno(r),
                         "pair (%lld, %lld) out of range: expected row < %lld and label < %lld",
                         a, b, (long long)nrows, (long long)ncols);
            goto done;
        }
        if (n == cap) {
            int64_t nc = cap ? 2 * cap : 1024;
            int64_t *nr = xmc_realloc(rows, (size_t)nc * sizeof *rows);
            if (nr)
                rows = nr;
            int32_t *ncl = nr ? xmc_realloc(cols, (size_t)nc * sizeof *cols) : NULL;
            if (!nr || !ncl) {
                rc = XMC_ERR(err, XMC_ENOMEM, path, xmc_lines_lineno(r), "out of memory");
                goto done;
            }
            cols = ncl;
            cap = nc;
        }
        rows[n] = a;
        cols[n] = (int32_t)b;
        n++;
    }
    if (got < 0) {
        rc = err ? err->code : XMC_EIO;
        goto done;
    }

    /* Counting sort by row. */
    start = xmc_calloc((size_t)nrows + 1, sizeof *start);
    bucket = xmc_malloc((size_t)(n ? n : 1) * sizeof *bucket);
    if (!start || !bucket) {
        rc = XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
        goto done;
    }
    for (int64_t e = 0; e < n; e++)
        start[rows[e] + 1]++;
    for (int64_t i = 0; i < nrows; i++)
        start[i + 1] += start[i];
    for (int64_t e = 0; e < n; e++) /* start[r] is row r's fill cursor */
        bucket[start[rows[e]]++] = cols[e];
    for (int64_t i = nrows; i > 0; i--) /* cursors ended one row on: shift back */
        start[i] = start[i - 1];
    start[0] = 0;
    /* Sort + unique per row, compacting in place. */
    int64_t nnz = 0;
    for (int64_t i = 0; i < nrows; i++) {
        int64_t b0 = start[i], b1 = start[i + 1];
        qsort(bucket + b0, (size_t)(b1 - b0), sizeof *bucket, cmp_i32);
        start[i] = nnz;
        for (int64_t e = b0; e < b1; e++)
            if (e == b0 || bucket[e] != bucket[e - 1])
                bucket[nnz++] = bucket[e];
    }
    start[nrows] = nnz;
    rc = xmc_csr_create(&m, nrows, ncols, nnz, 0, err);
    if (rc)
        goto done;
    memcpy(m->indptr, start, ((size_t)nrows + 1) * sizeof *start);
    if (nnz)
        memcpy(m->indices, bucket, (size_t)nnz * sizeof *bucket);
    *out = m;
    m = NULL;

done:
    xmc_csr_free(m);
    xmc_free(rows);
    xmc_free(cols);
    xmc_free(start);
    xmc_free(bucket);
    xmc_lines_close(r);
    return rc;
}
