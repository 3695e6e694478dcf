/* Data: CSR operations against hand-built matrices; every text format valid
 * and malformed (code + file + line); gzip; split files; texts and UTF-8;
 * the label-feature layout, JSON lines and filters; TEXTS+LABELS with a
 * vocabulary; round trips (text, XC and binary); corrupt binary caches;
 * multi-chunk parallel parsing; cold (evicted) sparse files; the real
 * shared datasets; and an allocation-failure sweep. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "data/internal.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers */

static void write_gz(const char *path, const char *text)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    gzputs(g, text);
    gzclose(g);
}

static xmc_csr *dense_to_csr(int64_t r, int64_t c, const float *d)
{
    int64_t nnz = 0;
    for (int64_t i = 0; i < r * c; i++)
        nnz += d[i] != 0;
    xmc_csr *m;
    xmc_error e = {0};
    assert_int_equal(xmc_csr_create(&m, r, c, nnz, 1, &e), XMC_OK);
    int64_t k = 0;
    for (int64_t i = 0; i < r; i++) {
        for (int64_t j = 0; j < c; j++)
            if (d[i * c + j] != 0) {
                m->indices[k] = (int32_t)j;
                m->values[k++] = d[i * c + j];
            }
        m->indptr[i + 1] = k;
    }
    return m;
}

static xmc_dataset *load_ok(const char *spec, const xmc_load_opts *o)
{
    xmc_error e = {0};
    xmc_dataset *ds = NULL;
    int rc = xmc_dataset_load(spec, o, &ds, &e);
    if (rc) {
        char b[1200];
        fail_msg("load %s: %s", spec, xmc_error_format(&e, b, sizeof b));
    }
    return ds;
}

static void load_err(const char *spec, int code, const char *file, long line)
{
    xmc_error e = {0};
    xmc_dataset *ds = NULL;
    int rc = xmc_dataset_load(spec, NULL, &ds, &e);
    assert_null(ds);
    tu_assert_error(rc, &e, code, file, line);
}

static void assert_row(const xmc_csr *m, int64_t r, int n, const int32_t *idx, const float *val)
{
    assert_int_equal(m->indptr[r + 1] - m->indptr[r], n);
    for (int k = 0; k < n; k++) {
        assert_int_equal(m->indices[m->indptr[r] + k], idx[k]);
        if (val)
            assert_true(m->values[m->indptr[r] + k] == val[k]);
    }
}

/* ------------------------------------------------------------ CSR */

static void test_csr_ops(void **state)
{
    (void)state;
    const float d[3 * 4] = {1, 0, 2, 0, /**/ 0, 0, 0, 0, /**/ 0, 3, 0, 4};
    xmc_csr *m = dense_to_csr(3, 4, d), *s, *t;
    xmc_error e = {0};
    const int64_t rows[4] = {2, 0, 2, 1};
    assert_int_equal(xmc_csr_select_rows(m, rows, 4, &s, &e), XMC_OK);
    const float ds[4 * 4] = {0, 3, 0, 4, 1, 0, 2, 0, 0, 3, 0, 4, 0, 0, 0, 0};
    xmc_csr *want = dense_to_csr(4, 4, ds);
    assert_true(xmc_csr_equal(s, want));
    xmc_csr_free(want);
    xmc_csr_free(s);
    const int64_t bad[1] = {3};
    assert_int_equal(xmc_csr_select_rows(m, bad, 1, &s, &e), XMC_EINVAL);
    assert_null(s);

    assert_int_equal(xmc_csr_transpose(m, &t, &e), XMC_OK);
    const float dt[4 * 3] = {1, 0, 0, 0, 0, 3, 2, 0, 0, 0, 0, 4};
    want = dense_to_csr(4, 3, dt);
    assert_true(xmc_csr_equal(t, want));
    assert_int_equal(xmc_csr_check(t, "t", &e), XMC_OK);
    xmc_csr_free(want);
    xmc_csr_free(t);

    xmc_csr_normalize_rows(m);
    assert_float_equal(m->values[0], 1 / sqrtf(5), 1e-6);
    assert_float_equal(m->values[1], 2 / sqrtf(5), 1e-6);
    assert_float_equal(m->values[2], 0.6f, 1e-6);
    assert_float_equal(m->values[3], 0.8f, 1e-6);
    assert_int_equal(m->indptr[2] - m->indptr[1], 0);
    assert_true(xmc_csr_bytes(m) >= 4 * 8 + 4 * 8);
    xmc_csr_free(m);
    xmc_csr_free(NULL);

    /* triplets: any order, duplicates summed, range checked */
    const int64_t r[5] = {1, 0, 1, 0, 1};
    const int32_t c[5] = {2, 1, 0, 1, 2};
    const float v[5] = {1, 2, 3, 4, 5};
    assert_int_equal(xmc_csr_from_triplets(2, 3, 5, r, c, v, &m, &e), XMC_OK);
    assert_row(m, 0, 1, (int32_t[]){1}, (float[]){6});
    assert_row(m, 1, 2, (int32_t[]){0, 2}, (float[]){3, 6});
    xmc_csr_free(m);
    assert_int_equal(xmc_csr_from_triplets(2, 2, 5, r, c, v, &m, &e), XMC_EINVAL);
    assert_int_equal(xmc_csr_create(&m, -1, 2, 0, 1, &e), XMC_EINVAL);
}

/* ------------------------------------------------------------ XC files */

static void test_xc_valid(void **state)
{
    (void)state;
    const char *p = tu_path("xc.txt");
    tu_write(p, "4 5 3\n"
                "2,0 0:1 3:0.5\n"
                " 1:2.5 4:-1e-3\n"
                "1\r\n"
                "\n");
    xmc_dataset *ds = load_ok(p, NULL);
    assert_int_equal(ds->n, 4);
    assert_int_equal(ds->n_features, 5);
    assert_int_equal(ds->n_labels, 3);
    assert_row(ds->Y, 0, 2, (int32_t[]){0, 2}, (float[]){1, 1});
    assert_row(ds->Y, 1, 0, NULL, NULL);
    assert_row(ds->Y, 2, 1, (int32_t[]){1}, NULL);
    assert_row(ds->Y, 3, 0, NULL, NULL);
    assert_row(ds->X, 0, 2, (int32_t[]){0, 3}, (float[]){1, 0.5f});
    assert_row(ds->X, 1, 2, (int32_t[]){1, 4}, (float[]){2.5f, -1e-3f});
    assert_row(ds->X, 2, 0, NULL, NULL);
    assert_null(ds->texts);
    assert_string_equal(ds->spec, p);
    assert_true(xmc_dataset_bytes(ds) > 0);
    xmc_dataset_free(ds);

    /* gzip variant, with a sibling label_names.txt of L lines */
    write_gz(tu_path("xcz.txt.gz"), "2 3 2\n0 0:1\n1 2:2\n");
    tu_write(tu_path("label_names.txt"), "alpha\nbeta\n");
    ds = load_ok(tu_path("xcz.txt.gz"), NULL);
    assert_int_equal(ds->n, 2);
    assert_non_null(ds->label_names);
    assert_string_equal(xmc_texts_get(ds->label_names, 1), "beta");
    xmc_dataset_free(ds);
    /* a long, unsorted label list (the qsort path) */
    {
        char big[4096];
        size_t k = (size_t)snprintf(big, sizeof big, "1 1 100\n");
        for (int i = 99; i >= 0; i -= 2)
            k += (size_t)snprintf(big + k, sizeof big - k, i == 99 ? "%d" : ",%d", i);
        snprintf(big + k, sizeof big - k, " 0:1\n");
        tu_write(p, big);
        ds = load_ok(p, NULL);
        assert_int_equal(xmc_csr_nnz(ds->Y), 50);
        assert_int_equal(xmc_csr_check(ds->Y, "Y", NULL), XMC_OK);
        assert_int_equal(ds->Y->indices[49], 99);
        xmc_dataset_free(ds);
    }
    /* no trailing newline; a first token with ':' is a feature (no labels);
     * label_names.txt of the wrong length is not used */
    tu_write(p, "2 2 3\n1 1:3\n0:2 1:1");
    ds = load_ok(p, NULL);
    assert_row(ds->X, 0, 1, (int32_t[]){1}, (float[]){3});
    assert_row(ds->X, 1, 2, (int32_t[]){0, 1}, (float[]){2, 1});
    assert_row(ds->Y, 1, 0, NULL, NULL);
    assert_null(ds->label_names);
    /* XC writer without features, then options that demand parts */
    xmc_csr *x = ds->X;
    ds->X = NULL;
    xmc_error e = {0};
    assert_int_equal(xmc_dataset_write_xc(ds, tu_path("nofeat.txt"), &e), XMC_OK);
    ds->X = x;
    xmc_dataset_free(ds);
    ds = load_ok(tu_path("nofeat.txt"), NULL);
    assert_int_equal(ds->n_features, 0);
    assert_row(ds->Y, 0, 1, (int32_t[]){1}, NULL);
    xmc_dataset_free(ds);
    xmc_load_opts o = {.need_texts = 1};
    assert_int_equal(xmc_dataset_load(p, &o, &ds, &e), XMC_EINVAL);
    assert_null(ds);
    o = (xmc_load_opts){.need_features = 1};
    ds = load_ok(p, &o);
    xmc_dataset_free(ds);
}

typedef struct bad_case {
    const char *text;
    long line;
    const char *what;
} bad_case;

static void test_xc_malformed(void **state)
{
    (void)state;
    const bad_case cases[] = {
        {"", 1, "empty file"},
        {"3 4\n", 1, "two header fields"},
        {"a 4 5\n", 1, "non-numeric header"},
        {"1 2 3 4\n0 0:1\n", 1, "four header fields"},
        {"3 4 2\n0 0:1\n1 1:1\n", 4, "too few rows"},
        {"1 4 2\n0 0:1\n1 1:1\n", 3, "too many rows"},
        {"2 4 2\n0 0:1\n2 1:1\n", 3, "label out of range"},
        {"2 4 2\n0 0:1\n1 4:1\n", 3, "feature out of range"},
        {"2 4 2\n0 2:1 1:1\n1 1:1\n", 2, "unsorted features"},
        {"2 4 2\n0 1:1 1:2\n1 1:1\n", 2, "duplicate feature"},
        {"2 4 2\n0 1:abc\n1 1:1\n", 2, "non-numeric value"},
        {"2 4 2\n0 1:inf\n1 1:1\n", 2, "inf"},
        {"2 4 2\n0 1:nan\n1 1:1\n", 2, "nan"},
        {"2 4 2\n0 1:1e50\n1 1:1\n", 2, "overflow"},
        {"2 4 2\n0 1:\n1 1:1\n", 2, "missing value"},
        {"2 4 2\n0 1\n1 1:1\n", 1 + 1, "label then bare id"},
        {"2 4 2\n0 0:1\nx 1:1\n", 3, "bad label"},
        {"2 4 2\n0, 0:1\n1 1:1\n", 2, "trailing comma"},
        {"2 4 2\n1,1 0:1\n1 1:1\n", 2, "duplicate label"},
        {"2 4 2\n0 -1:1\n1 1:1\n", 2, "negative id"},
        {"2 4 2\n0 0:1 junk\n1 1:1\n", 2, "junk token"},
        {"2 4 2\n0 0:1:2\n1 1:1\n", 2, "two colons"},
        {"2 4 3000000000\n", 1, "L over int32"},
    };
    const char *p = tu_path("bad.txt");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_write(p, cases[i].text);
        xmc_error e = {0};
        xmc_dataset *ds = NULL;
        int rc = xmc_dataset_load(p, NULL, &ds, &e);
        char b[1200];
        if (rc != XMC_EFORMAT || e.line != cases[i].line || !strstr(e.path, "bad.txt"))
            fail_msg("case '%s': rc %d, %s (want line %ld)", cases[i].what, rc,
                     xmc_error_format(&e, b, sizeof b), cases[i].line);
        assert_null(ds);
    }
    /* Messages say what was expected and what was found. */
    tu_write(p, "2 4 2\n0 0:1\n1 2:1 1:1\n");
    xmc_error e = {0};
    xmc_dataset *ds;
    xmc_dataset_load(p, NULL, &ds, &e);
    assert_non_null(strstr(e.msg, "1 after 2"));
    xmc_error_clear(&e);
    tu_write(p, "3 4\n");
    xmc_dataset_load(p, NULL, &ds, &e);
    assert_non_null(strstr(e.msg, "N F L"));
    /* Truncated gzip. */
    char big[1 << 16];
    size_t k = (size_t)snprintf(big, sizeof big, "3000 100 10\n");
    for (int i = 0; i < 3000 && k < sizeof big - 64; i++)
        k += (size_t)snprintf(big + k, sizeof big - k, "%d %d:%d\n", i % 10, i % 100, i);
    write_gz(tu_path("t.txt.gz"), big);
    assert_int_equal(tu_system("head -c 300 '%s' > '%s'", tu_path("t.txt.gz"),
                               tu_path("trunc.txt.gz")), 0);
    load_err(tu_path("trunc.txt.gz"), XMC_EFORMAT, "trunc.txt.gz", 0);
    load_err(tu_path("does_not_exist"), XMC_EIO, "does_not_exist", 0);
    load_err("", XMC_EINVAL, NULL, 0);
}

/* Bodies above the chunk size are parsed in parallel: the error line must
 * still be the global one, and the matrix identical to a 1-thread parse. */
static void test_xc_multichunk(void **state)
{
    (void)state;
    const int n = 60000;
    size_t cap = (size_t)n * 48 + 64, k = 0;
    char *b = malloc(cap);
    k += (size_t)snprintf(b, cap, "%d 1000 50\n", n);
    for (int i = 0; i < n; i++) {
        if (i % 7 == 3)
            k += (size_t)snprintf(b + k, cap - k, " ");
        else
            k += (size_t)snprintf(b + k, cap - k, "%d,%d ", i % 50, (i % 50 + 1 + i % 3) % 50);
        k += (size_t)snprintf(b + k, cap - k, "%d:%d.25 %d:1\n", i % 500, i % 97,
                              500 + i % 500);
    }
    const char *p = tu_path("big.txt");
    tu_write(p, b);
    assert_true(k > 1000000); /* several chunks */
    int saved = xmc_get_threads();
    xmc_set_threads(1);
    xmc_dataset *one = load_ok(p, NULL);
    xmc_set_threads(2);
    xmc_dataset *two = load_ok(p, NULL);
    assert_true(xmc_csr_equal(one->X, two->X));
    assert_true(xmc_csr_equal(one->Y, two->Y));
    assert_int_equal(xmc_csr_nnz(one->X), 2 * n);
    assert_int_equal(xmc_csr_check(two->X, "X", NULL), XMC_OK);
    assert_int_equal(xmc_csr_check(two->Y, "Y", NULL), XMC_OK);
    assert_row(two->X, 59999, 2, (int32_t[]){59999 % 500, 500 + 59999 % 500},
               (float[]){(float)(59999 % 97) + 0.25f, 1});
    xmc_dataset_free(one);
    xmc_dataset_free(two);
    /* An error deep in the file (row 50000 = line 50002). */
    char *q = strstr(b, "\n"), *line = b;
    for (int i = 0; i < 50001; i++) {
        line = q + 1;
        q = strchr(line, '\n');
    }
    char *colon = strchr(line, ':');
    *colon = '#';
    tu_write(p, b);
    load_err(p, XMC_EFORMAT, "big.txt", 50002);
    xmc_set_threads(saved);
    free(b);
}

/* Evict a file from the page cache (written back first); 1 when its first
 * page is then out, i.e. the next read is cold. */
static int evict(const char *path)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    fsync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    unsigned char v = 1;
    if (p != MAP_FAILED) {
        mincore(p, 4096, &v);
        munmap(p, 4096);
    }
    close(fd);
    return !(v & 1);
}

/* A cold file (evicted from the page cache) is parsed in segments that grow
 * from 1/16 of xmc_sparse_segment_bytes, then to its end once its last page
 * is in, and its mapping is dropped chunk by chunk as they are parsed: the
 * same matrix bit for bit as the warm read (one segment), and the same
 * error. Where eviction is not possible (tmpfs) both reads are warm. */
static void test_sparse_cold(void **state)
{
    (void)state;
    const int n = 40000;
    size_t cap = (size_t)n * 64 + 64, k = 0;
    char *b = malloc(cap);
    k += (size_t)snprintf(b, cap, "%d 100000\n", n);
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(b + k, cap - k, "%d:0.%05d %d:%d.5 %d:1e-3\n", i % 1000,
                              (i * 7919) % 100000, 1000 + i % 977, i % 13, 50000 + i);
    assert_true(k > (1u << 20));
    const char *p = tu_path("cold.txt");
    tu_write(p, b);
    size_t keep = xmc_sparse_segment_bytes;
    xmc_error e = {0};
    xmc_csr *warm, *cold;
    assert_int_equal(xmc_csr_read_text(p, &warm, &e), XMC_OK);
    for (int round = 0; round < 2; round++) {
        xmc_sparse_segment_bytes = round ? (size_t)64 << 10 : keep; /* 4 KiB, 8, .. 64 */
        evict(p);
        assert_int_equal(xmc_csr_read_text(p, &cold, &e), XMC_OK);
        assert_true(xmc_csr_equal(cold, warm));
        assert_memory_equal(cold->values, warm->values,
                            (size_t)xmc_csr_nnz(warm) * sizeof(float));
        xmc_csr_free(cold);
    }
    xmc_csr_free(warm);
    /* An error three quarters in: the same line, cold or warm. */
    char *q = b + k * 3 / 4;
    q = strchr(q, '\n') + 1;
    long line = 2;
    for (const char *t = strchr(b, '\n') + 1; t < q; t = strchr(t, '\n') + 1)
        line++;
    *strchr(q, ':') = '#';
    tu_write(p, b);
    for (int round = 0; round < 2; round++) {
        xmc_sparse_segment_bytes = round ? (size_t)64 << 10 : keep;
        evict(p);
        xmc_error_clear(&e);
        tu_assert_error(xmc_csr_read_text(p, &cold, &e), &e, XMC_EFORMAT, "cold.txt", line);
    }
    xmc_sparse_segment_bytes = keep;
    free(b);
}

/* ------------------------------------------------------------ sparse text */

static void test_sparse_text(void **state)
{
    (void)state;
    const char *p = tu_path("m.txt");
    tu_write(p, "3 6\n5:0.5 1:2 3:1\n\n0:7\n");
    xmc_csr *m;
    xmc_error e = {0};
    assert_int_equal(xmc_csr_read_text(p, &m, &e), XMC_OK);
    assert_int_equal(m->nrows, 3);
    assert_int_equal(m->ncols, 6);
    assert_row(m, 0, 3, (int32_t[]){1, 3, 5}, (float[]){2, 1, 0.5f});
    assert_row(m, 1, 0, NULL, NULL);
    assert_row(m, 2, 1, (int32_t[]){0}, (float[]){7});
    /* write sorted, read back equal */
    const char *p2 = tu_path("m2.txt");
    assert_int_equal(xmc_csr_write_text(p2, m, &e), XMC_OK);
    xmc_csr *m2;
    assert_int_equal(xmc_csr_read_text(p2, &m2, &e), XMC_OK);
    assert_true(xmc_csr_equal(m, m2));
    xmc_csr_free(m2);
    xmc_csr_free(m);
    /* "\r\n" endings, a last line ending in a bare '\r', and rows long
     * enough for the parser's 16-byte fast path (it reads to the chunk end,
     * not the line end). */
    tu_write(p, "3 100\r\n5:0.125 17:12.5 42:1 99:0.0000001 7:3\r\n\r\n0:7 3:0.33333334\r");
    assert_int_equal(xmc_csr_read_text(p, &m, &e), XMC_OK);
    assert_row(m, 0, 5, (int32_t[]){5, 7, 17, 42, 99},
               (float[]){0.125f, 3, 12.5f, 1, 0.0000001f});
    assert_row(m, 1, 0, NULL, NULL);
    assert_row(m, 2, 2, (int32_t[]){0, 3}, (float[]){7, 0.33333334f});
    xmc_csr_free(m);
    const char *xc = tu_path("xc_crlf.txt");
    tu_write(xc, "2 5 3\r\n2,0 1:0.25 4:3\r\n1\r\n");
    xmc_dataset *ds = load_ok(xc, NULL);
    assert_row(ds->Y, 0, 2, (int32_t[]){0, 2}, NULL);
    assert_row(ds->Y, 1, 1, (int32_t[]){1}, NULL);
    assert_row(ds->X, 0, 2, (int32_t[]){1, 4}, (float[]){0.25f, 3});
    assert_row(ds->X, 1, 0, NULL, NULL);
    xmc_dataset_free(ds);
    const bad_case cases[] = {
        {"2 6\r\n1:1\r2:1\r\n\r\n", 2, "bare '\\r' inside a row"},
        {"2 6\n1:0.5\r \n\n", 2, "'\\r' before a blank"},
        {"2 6\n1:1 2:0.25x 3:1 4:1 5:1\n\n", 2, "junk after a fast-path value"},
        {"3 6 1\n", 1, "three fields"},
        {"2 6\n1:1 1:2\n\n", 2, "duplicate"},
        {"2 6\n1:1\n6:2\n", 3, "column out of range"},
        {"2 6\n1:1\n", 3, "too few"},
        {"2 6\n1:1\n2:1\n3:1\n", 4, "too many"},
        {"2 6\n1:1\n2:x\n", 3, "bad value"},
        {"2 6\n1:1\n2\n", 3, "bare id"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_write(p, cases[i].text);
        xmc_error_clear(&e);
        int rc = xmc_csr_read_text(p, &m, &e);
        char b[1200];
        if (rc != XMC_EFORMAT || e.line != cases[i].line)
            fail_msg("case '%s': rc %d, %s", cases[i].what, rc, xmc_error_format(&e, b, sizeof b));
        assert_null(m);
    }
}

/* ------------------------------------------------------------ splits */

static void test_split(void **state)
{
    (void)state;
    char d[1200];
    snprintf(d, sizeof d, "%s", tu_path("s.txt"));
    tu_write(d, "4 3 2\n0 0:1\n1 1:1\n0,1 2:1\n 0:2\n");
    tu_write(tu_path("tr.txt"), "4 x\n2\t7\n\n");
    char spec[2600];
    snprintf(spec, sizeof spec, "%s@%s", d, tu_path("tr.txt"));
    xmc_dataset *ds = load_ok(spec, NULL);
    assert_int_equal(ds->n, 2);
    assert_row(ds->X, 0, 1, (int32_t[]){0}, (float[]){2});
    assert_row(ds->Y, 1, 1, (int32_t[]){1}, NULL);
    assert_string_equal(ds->spec, spec);
    xmc_dataset_free(ds);
    int64_t *rows, n;
    xmc_error e = {0};
    tu_write(tu_path("bad1.txt"), "1\n5\n");
    assert_int_equal(xmc_split_read(tu_path("bad1.txt"), 4, &rows, &n, &e), XMC_EFORMAT);
    assert_int_equal(e.line, 2);
    xmc_error_clear(&e);
    tu_write(tu_path("bad2.txt"), "1\n2\n0\n");
    assert_int_equal(xmc_split_read(tu_path("bad2.txt"), 4, &rows, &n, &e), XMC_EFORMAT);
    assert_int_equal(e.line, 3);
    xmc_error_clear(&e);
    tu_write(tu_path("bad3.txt"), "1\nx2\n");
    assert_int_equal(xmc_split_read(tu_path("bad3.txt"), 4, &rows, &n, &e), XMC_EFORMAT);
    assert_int_equal(e.line, 2);
    snprintf(spec, sizeof spec, "%s@%s", d, tu_path("bad1.txt"));
    load_err(spec, XMC_EFORMAT, "bad1.txt", 2);
}

/* ------------------------------------------------------------ texts */

/* Run with xmc_inbuf_own_map_bytes at its default (these small files are
 * read into the heap) and at 0 (a private mapping of the file, which the
 * texts then own). */
static void texts_cases(void)
{
    const char *p = tu_path("t.txt");
    tu_write(p, "h\xc3\xa9llo\r\n\nlast");
    xmc_texts *t;
    xmc_error e = {0};
    assert_int_equal(xmc_texts_read(p, &t, &e), XMC_OK);
    assert_int_equal(t->n, 3);
    assert_string_equal(xmc_texts_get(t, 0), "h\xc3\xa9llo");
    assert_string_equal(xmc_texts_get(t, 1), "");
    assert_string_equal(xmc_texts_get(t, 2), "last");
    for (int i = 0; i < 3; i++)
        assert_int_equal(t->data[t->offsets[i + 1] - 1], '\0');
    const char *p2 = tu_path("t2.txt");
    assert_int_equal(xmc_texts_write(p2, t, &e), XMC_OK);
    xmc_texts *t2;
    assert_int_equal(xmc_texts_read(p2, &t2, &e), XMC_OK);
    assert_int_equal(t2->n, 3);
    assert_memory_equal(t2->data, t->data, (size_t)t->offsets[3]);
    xmc_texts_free(t2);
    const int64_t rows[2] = {2, 0};
    assert_int_equal(xmc_texts_select_rows(t, rows, 2, &t2, &e), XMC_OK);
    assert_string_equal(xmc_texts_get(t2, 0), "last");
    assert_string_equal(xmc_texts_get(t2, 1), "h\xc3\xa9llo");
    xmc_texts_free(t2);
    xmc_texts_free(t);
    const char *strs[2] = {"a", "b\nc"};
    assert_int_equal(xmc_texts_create(strs, 2, &t, &e), XMC_EINVAL);
    struct {
        const char *text;
        long line;
    } bad[] = {
        {"ok\nbad \xff here\n", 2},        {"ok\nok\n\xc3(\n", 3},
        {"\xe0\x80\x80 overlong\n", 1},    {"ok\n\xed\xa0\x80 surrogate\n", 2},
        {"ok\ntrunc \xe2\x82", 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_write(p, bad[i].text);
        xmc_error_clear(&e);
        tu_assert_error(xmc_texts_read(p, &t, &e), &e, XMC_EFORMAT, "t.txt", bad[i].line);
        assert_null(t);
    }
    FILE *f = fopen(p, "wb");
    fwrite("a\nb\0c\n", 1, 6, f);
    fclose(f);
    xmc_error_clear(&e);
    tu_assert_error(xmc_texts_read(p, &t, &e), &e, XMC_EFORMAT, "t.txt", 2);
    /* A file of exactly one page (and two) without a final '\n': the
     * terminating NUL goes in the spare byte past it. */
    for (size_t len = 4096; len <= 8192; len += 4096) {
        char *big = malloc(len + 1);
        memset(big, 'x', len);
        big[len] = '\0';
        big[100] = '\n';
        tu_write(p, big);
        xmc_error_clear(&e);
        assert_int_equal(xmc_texts_read(p, &t, &e), XMC_OK);
        assert_int_equal(t->n, 2);
        assert_int_equal(strlen(xmc_texts_get(t, 0)), 100);
        assert_int_equal(strlen(xmc_texts_get(t, 1)), len - 101);
        assert_int_equal(t->offsets[2], (int64_t)len + 1);
        free(big);
        xmc_texts_free(t);
    }
}

static void test_texts(void **state)
{
    (void)state;
    size_t keep = xmc_inbuf_own_map_bytes;
    for (int mapped = 0; mapped < 3; mapped++) {
        xmc_inbuf_own_map_bytes = mapped ? 0 : keep;
        /* mapped 2: the fused reader cut into 16-byte chunks (through
         * lines, "\r\n" and UTF-8 sequences) */
        xmc_texts_fused_chunk = mapped == 2 ? 16 : 0;
        texts_cases();
        /* Who owns the lines: the mapping (with the offsets), or the heap. */
        const char *p = tu_path("t.txt");
        tu_write(p, "one\ntwo\n");
        xmc_texts *t;
        xmc_error e = {0};
        assert_int_equal(xmc_texts_read(p, &t, &e), XMC_OK);
        assert_true(mapped ? t->owner != NULL : t->owner == NULL);
        const int64_t rows[3] = {1, 1, 0};
        xmc_texts *s;
        assert_int_equal(xmc_texts_select_rows(t, rows, 3, &s, &e), XMC_OK);
        xmc_texts_free(t); /* the copy outlives it */
        assert_string_equal(xmc_texts_get(s, 2), "one");
        assert_null(s->owner);
        xmc_texts_free(s);
    }
    xmc_inbuf_own_map_bytes = keep;
    xmc_texts_fused_chunk = 0;
}

/* Texts of several MiB take the parallel path (chunks cut at line ends):
 * the same lines as the sequential reader whatever the thread count, with
 * and without a final '\n', "\r\n" endings, and exact error lines. */
static void texts_line(char *s, int i)
{
    static const char *words[] = {"alpha", "b\xc3\xa9ta", "gamma", "\xe2\x82\xac", "delta", ""};
    int n = 0, k = i % 37;
    for (int w = 0; w < k; w++)
        n += sprintf(s + n, "%s%s", w ? " " : "", words[(i + w) % 6]);
    s[n] = '\0';
}

static char *texts_big(int nl, const char *eol, int final_eol, size_t *len)
{
    size_t cap = (size_t)nl * 260 + 16, k = 0;
    char *b = malloc(cap), s[256];
    for (int i = 0; i < nl; i++) {
        texts_line(s, i);
        k += (size_t)snprintf(b + k, cap - k, "%s%s", s, i + 1 < nl || final_eol ? eol : "");
    }
    *len = k;
    return b;
}

static void check_texts_big(const char *p, int nl)
{
    int saved = xmc_get_threads();
    size_t keep = xmc_inbuf_own_map_bytes;
    for (int th = 1; th <= 6; th++) {
        xmc_set_threads(1 + th % 2);
        xmc_inbuf_own_map_bytes = th <= 4 ? keep : SIZE_MAX; /* mapped, then heap */
        xmc_texts_fused_chunk = th > 2 ? 16 << th : 0; /* chunks of 128, 256 bytes */
        xmc_texts *t;
        xmc_error e = {0};
        assert_int_equal(xmc_texts_read(p, &t, &e), XMC_OK);
        assert_int_equal(t->n, nl);
        char s[256];
        for (int i = 0; i < nl; i++) {
            texts_line(s, i);
            assert_string_equal(xmc_texts_get(t, i), s);
            assert_int_equal(t->offsets[i + 1] - t->offsets[i], (int64_t)strlen(s) + 1);
        }
        assert_true(th <= 4 ? t->owner != NULL : t->owner == NULL);
        xmc_texts_free(t);
    }
    xmc_inbuf_own_map_bytes = keep;
    xmc_texts_fused_chunk = 0;
    xmc_set_threads(saved);
}

static void test_texts_multichunk(void **state)
{
    (void)state;
    const int nl = 60000;
    const char *p = tu_path("tbig.txt");
    size_t len;
    char *b = texts_big(nl, "\n", 1, &len);
    assert_true(len > 3000000); /* several chunks */
    tu_write(p, b);
    check_texts_big(p, nl);
    free(b);
    b = texts_big(nl, "\n", 0, &len);
    tu_write(p, b);
    check_texts_big(p, nl);
    free(b);
    b = texts_big(nl, "\r\n", 1, &len);
    tu_write(p, b);
    check_texts_big(p, nl);
    free(b);
    /* Errors deep in the file (seen by the parallel scan, reported by the
     * sequential reader): invalid UTF-8 at line 50001, NUL at 40001. */
    b = texts_big(nl, "\n", 1, &len);
    char *line = b;
    for (int i = 0; i < 50000; i++)
        line = strchr(line, '\n') + 1;
    char keep = line[0];
    line[0] = (char)0xff;
    tu_write(p, b);
    line[0] = keep;
    int saved = xmc_get_threads();
    for (int th = 1; th <= 4; th++) {
        xmc_set_threads(1 + th % 2);
        xmc_texts_fused_chunk = th > 2 ? 64 : 0;
        xmc_texts *t;
        xmc_error e = {0};
        tu_assert_error(xmc_texts_read(p, &t, &e), &e, XMC_EFORMAT, "tbig.txt", 50001);
        assert_null(t);
    }
    line = b;
    for (int i = 0; i < 40000; i++)
        line = strchr(line, '\n') + 1;
    line[0] = '\0';
    FILE *f = fopen(p, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
    for (int th = 1; th <= 4; th++) {
        xmc_set_threads(1 + th % 2);
        xmc_texts_fused_chunk = th > 2 ? 64 : 0;
        xmc_texts *t;
        xmc_error e = {0};
        tu_assert_error(xmc_texts_read(p, &t, &e), &e, XMC_EFORMAT, "tbig.txt", 40001);
        assert_null(t);
    }
    xmc_texts_fused_chunk = 0;
    xmc_set_threads(saved);
    free(b);
}

/* ------------------------------------------------------------ LF layout */

static void write_lf(const char *dir, int gz)
{
    char p[1200];
    assert_int_equal(tu_system("mkdir -p '%s'", dir), 0);
    const char *xy = "3 4\n2:1 0:1\n\n3:0.5\n";
    snprintf(p, sizeof p, gz ? "%s/trn_X_Y.txt.gz" : "%s/trn_X_Y.txt", dir);
    gz ? write_gz(p, xy) : tu_write(p, xy);
    snprintf(p, sizeof p, "%s/trn_X.txt", dir);
    tu_write(p, "first doc\nsecond \xe2\x82\xac\nthird\n");
    snprintf(p, sizeof p, "%s/trn_X_Xf.txt", dir);
    tu_write(p, "3 5\n4:1.5\n0:1 1:2\n\n");
    snprintf(p, sizeof p, "%s/Y.txt", dir);
    tu_write(p, "label zero\nlabel one\nlabel two\nlabel three\n");
    snprintf(p, sizeof p, "%s/trn_filter_labels.txt", dir);
    tu_write(p, "0 1\n2 3\n0 1\n");
}

static void check_lf(const xmc_dataset *ds)
{
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->n_labels, 4);
    assert_int_equal(ds->n_features, 5);
    assert_row(ds->Y, 0, 2, (int32_t[]){0, 2}, (float[]){1, 1});
    assert_row(ds->Y, 2, 1, (int32_t[]){3}, (float[]){0.5f});
    assert_row(ds->X, 1, 2, (int32_t[]){0, 1}, (float[]){1, 2});
    assert_string_equal(xmc_texts_get(ds->texts, 1), "second \xe2\x82\xac");
    assert_string_equal(xmc_texts_get(ds->label_texts, 3), "label three");
    assert_non_null(ds->filter);
    assert_int_equal(xmc_csr_nnz(ds->filter), 2);
    assert_row(ds->filter, 0, 1, (int32_t[]){1}, (float[]){1});
}

static void test_lf_layout(void **state)
{
    (void)state;
    char dir[1200], spec[1300], p[1300];
    snprintf(dir, sizeof dir, "%s", tu_path("lf"));
    write_lf(dir, 0);
    snprintf(spec, sizeof spec, "%s/trn", dir);
    xmc_dataset *ds = load_ok(spec, NULL);
    check_lf(ds);
    xmc_dataset_free(ds);
    snprintf(dir, sizeof dir, "%s", tu_path("lfgz"));
    write_lf(dir, 1);
    snprintf(spec, sizeof spec, "%s/trn", dir);
    ds = load_ok(spec, NULL);
    check_lf(ds);
    xmc_dataset_free(ds);
    /* Count mismatches name the file that disagrees. */
    snprintf(p, sizeof p, "%s/trn_X.txt", dir);
    tu_write(p, "only\ntwo\n");
    load_err(spec, XMC_EFORMAT, "trn_X.txt", 3);
    tu_write(p, "a\nb\nc\n");
    snprintf(p, sizeof p, "%s/Y.txt", dir);
    tu_write(p, "l0\nl1\nl2\n");
    load_err(spec, XMC_EFORMAT, "Y.txt", 4);
    tu_write(p, "l0\nl1\nl2\nl3\n");
    snprintf(p, sizeof p, "%s/trn_X_Xf.txt", dir);
    tu_write(p, "2 5\n4:1.5\n0:1 1:2\n");
    load_err(spec, XMC_EFORMAT, "trn_X_Xf.txt", 1);
    tu_write(p, "3 5\n4:1.5\n0:1 1:2\n\n");
    snprintf(p, sizeof p, "%s/trn_filter_labels.txt", dir);
    tu_write(p, "0 1\n3 0\n");
    load_err(spec, XMC_EFORMAT, "trn_filter_labels.txt", 2);
    tu_write(p, "0 1\n1 x\n");
    load_err(spec, XMC_EFORMAT, "trn_filter_labels.txt", 2);
    snprintf(spec, sizeof spec, "%s/nothing", dir);
    load_err(spec, XMC_EIO, "nothing", 0);
}

static void test_jsonl(void **state)
{
    (void)state;
    char dir[1200], spec[1300], p[1300];
    snprintf(dir, sizeof dir, "%s", tu_path("js"));
    assert_int_equal(tu_system("mkdir -p '%s'", dir), 0);
    snprintf(p, sizeof p, "%s/lbl.json", dir);
    tu_write(p, "{\"uid\":\"a\",\"title\":\"Label A\"}\n{\"title\":\"Label B\",\"content\":\"x\"}\n"
                "{\"title\":\"C\"}\n");
    snprintf(p, sizeof p, "%s/tst.json.gz", dir);
    write_gz(p, "{\"title\":\"T1\",\"content\":\"body\\none\",\"target_ind\":[2,0],"
                "\"target_rel\":[0.5,1]}\n"
                "\n"
                "{\"title\":\"T\\u00e9\",\"target_ind\":[]}\n");
    snprintf(spec, sizeof spec, "%s/tst", dir);
    xmc_dataset *ds = load_ok(spec, NULL);
    assert_int_equal(ds->n, 2);
    assert_int_equal(ds->n_labels, 3);
    assert_null(ds->X);
    assert_string_equal(xmc_texts_get(ds->texts, 0), "T1 body one");
    assert_string_equal(xmc_texts_get(ds->texts, 1), "T\xc3\xa9");
    assert_string_equal(xmc_texts_get(ds->label_texts, 1), "Label B x");
    assert_row(ds->Y, 0, 2, (int32_t[]){0, 2}, (float[]){1, 0.5f});
    assert_row(ds->Y, 1, 0, NULL, NULL);
    xmc_dataset_free(ds);
    struct {
        const char *text;
        long line;
    } bad[] = {
        {"{\"title\":\"a\",\"target_ind\":[3]}\n", 1},
        {"{\"title\":\"a\",\"target_ind\":[0]}\n{\"title\": \"b\", \"target_ind\": [1,\n", 2},
        {"{\"title\":\"a\"}\n", 1},
        {"{\"title\":\"a\",\"target_ind\":[1,1]}\n", 1},
        {"{\"title\":\"a\",\"target_ind\":[1],\"target_rel\":[1,2]}\n", 1},
        {"{\"title\":\"a\",\"target_ind\":[\"1\"]}\n", 1},
        {"[1]\n", 1},
        {"{\"title\":\"\xff\",\"target_ind\":[1]}\n", 1},
    };
    snprintf(p, sizeof p, "%s/tst.json.gz", dir);
    remove(p);
    snprintf(p, sizeof p, "%s/tst.json", dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_write(p, bad[i].text);
        load_err(spec, XMC_EFORMAT, "tst.json", bad[i].line);
    }
    snprintf(p, sizeof p, "%s/lbl.json", dir);
    remove(p);
    load_err(spec, XMC_EIO, "tst.json", 0);
}

/* ------------------------------------------------------------ TEXTS+LABELS */

static void test_texts_labels(void **state)
{
    (void)state;
    const char *tx = tu_path("tl_texts.txt"), *lb = tu_path("tl_labels.txt");
    tu_write(tx, "doc one\ndoc two\ndoc three\n");
    tu_write(lb, "grain wheat\n  corn \t grain corn\n\n");
    char spec[2600];
    snprintf(spec, sizeof spec, "%s+%s", tx, lb);
    xmc_dataset *ds = load_ok(spec, NULL);
    assert_int_equal(ds->n, 3);
    assert_int_equal(ds->n_labels, 3); /* corn grain wheat */
    assert_string_equal(xmc_texts_get(ds->label_names, 0), "corn");
    assert_string_equal(xmc_texts_get(ds->label_names, 2), "wheat");
    assert_row(ds->Y, 0, 2, (int32_t[]){1, 2}, (float[]){1, 1});
    assert_row(ds->Y, 1, 2, (int32_t[]){0, 1}, (float[]){1, 1});
    assert_row(ds->Y, 2, 0, NULL, NULL);
    assert_int_equal(ds->n_unknown_labels, 0);
    /* A test split mapped through the training vocabulary. */
    const char *tx2 = tu_path("tl_t2.txt"), *lb2 = tu_path("tl_l2.txt");
    tu_write(tx2, "a\nb\n");
    tu_write(lb2, "wheat barley\noats corn\n");
    char spec2[2600];
    snprintf(spec2, sizeof spec2, "%s+%s", tx2, lb2);
    xmc_load_opts o = {.label_vocab = ds->label_names};
    xmc_dataset *te = load_ok(spec2, &o);
    assert_int_equal(te->n_labels, 3);
    assert_int_equal(te->n_unknown_labels, 2);
    assert_row(te->Y, 0, 1, (int32_t[]){2}, NULL);
    assert_row(te->Y, 1, 1, (int32_t[]){0}, NULL);
    assert_string_equal(xmc_texts_get(te->label_names, 1), "grain");
    xmc_dataset_free(te);
    /* A vocabulary in another order keeps its own positions as ids. */
    xmc_texts *v;
    xmc_error e = {0};
    const char *names[3] = {"wheat", "corn", "barley"};
    assert_int_equal(xmc_texts_create(names, 3, &v, &e), XMC_OK);
    o.label_vocab = v;
    te = load_ok(spec2, &o);
    assert_row(te->Y, 0, 2, (int32_t[]){0, 2}, NULL);
    assert_row(te->Y, 1, 1, (int32_t[]){1}, NULL);
    assert_int_equal(te->n_unknown_labels, 1);
    xmc_dataset_free(te);
    xmc_texts_free(v);
    xmc_texts *vv;
    assert_int_equal(xmc_label_vocab_read(lb, &vv, &e), XMC_OK);
    assert_int_equal(vv->n, 3);
    assert_string_equal(xmc_texts_get(vv, 1), "grain");
    xmc_texts_free(vv);
    xmc_dataset_free(ds);
    /* Count mismatch. */
    tu_write(lb, "a\nb\n");
    load_err(spec, XMC_EFORMAT, "tl_labels.txt", 3);
    tu_write(lb, "a\n\xff\nc\n");
    load_err(spec, XMC_EFORMAT, "tl_labels.txt", 2);
}

/* ------------------------------------------------------------ round trips */

static void assert_texts_equal(const xmc_texts *a, const xmc_texts *b)
{
    if (!a || !b) {
        assert_ptr_equal(a, b);
        return;
    }
    assert_int_equal(a->n, b->n);
    for (int64_t i = 0; i < a->n; i++)
        assert_string_equal(xmc_texts_get(a, i), xmc_texts_get(b, i));
}

static void assert_ds_equal(const xmc_dataset *a, const xmc_dataset *b, int names_as_texts)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->n_features, b->n_features);
    assert_int_equal(a->n_labels, b->n_labels);
    assert_true(xmc_csr_equal(a->X, b->X));
    assert_true(xmc_csr_equal(a->Y, b->Y));
    assert_true(xmc_csr_equal(a->filter, b->filter));
    assert_texts_equal(a->texts, b->texts);
    if (names_as_texts) {
        assert_texts_equal(a->label_texts ? a->label_texts : a->label_names, b->label_texts);
    } else {
        assert_texts_equal(a->label_texts, b->label_texts);
        assert_texts_equal(a->label_names, b->label_names);
    }
}

static void test_roundtrips(void **state)
{
    (void)state;
    char dir[1200], spec[1300], out[1300];
    snprintf(dir, sizeof dir, "%s", tu_path("rt"));
    write_lf(dir, 0);
    snprintf(spec, sizeof spec, "%s/trn", dir);
    xmc_dataset *a = load_ok(spec, NULL), *b, *c;
    xmc_error e = {0};
    /* LF text -> LF text */
    snprintf(out, sizeof out, "%s/out/new", dir);
    assert_int_equal(xmc_dataset_write(a, out, &e), XMC_OK);
    b = load_ok(out, NULL);
    assert_ds_equal(a, b, 0);
    xmc_dataset_free(b);
    /* binary */
    snprintf(out, sizeof out, "%s/c.xmcb", dir);
    assert_int_equal(xmc_dataset_write_binary(a, out, &e), XMC_OK);
    b = load_ok(out, NULL);
    assert_non_null(b->Y->owner);
    assert_int_equal((uintptr_t)b->X->indices % 64, 0);
    assert_int_equal((uintptr_t)b->Y->values % 64, 0);
    assert_ds_equal(a, b, 0);
    /* copy-on-write: normalising a mapped X works and leaves the file alone */
    xmc_csr_normalize_rows(b->X);
    assert_float_equal(b->X->values[1], 1 / sqrtf(5), 1e-6);
    xmc_dataset *again = load_ok(out, NULL);
    assert_true(xmc_csr_equal(a->X, again->X));
    xmc_dataset_free(again);
    /* parts outlive the dataset struct through the mapping's refcount */
    xmc_csr *keep = b->Y;
    b->Y = NULL;
    xmc_dataset_free(b);
    assert_true(xmc_csr_equal(keep, a->Y));
    xmc_csr_free(keep);
    /* select rows of a mapped dataset copies */
    b = load_ok(out, NULL);
    const int64_t rows[2] = {2, 0};
    assert_int_equal(xmc_dataset_select_rows(b, rows, 2, &c, &e), XMC_OK);
    assert_null(c->Y->owner);
    assert_row(c->Y, 0, 1, (int32_t[]){3}, (float[]){0.5f});
    xmc_dataset_free(c);
    xmc_dataset_free(b);
    /* XC writer -> XC reader (label values are 1 in XC) */
    snprintf(out, sizeof out, "%s/xc.txt", dir);
    assert_int_equal(xmc_dataset_write_xc(a, out, &e), XMC_OK);
    b = load_ok(out, NULL);
    assert_true(xmc_csr_equal(a->X, b->X));
    assert_int_equal(xmc_csr_nnz(a->Y), xmc_csr_nnz(b->Y));
    assert_memory_equal(a->Y->indices, b->Y->indices, 3 * sizeof(int32_t));
    xmc_dataset_free(b);
    xmc_dataset_free(a);
    /* TEXTS+LABELS -> LF: names become label texts */
    const char *tx = tu_path("rt_t.txt"), *lb = tu_path("rt_l.txt");
    tu_write(tx, "x\ny\n");
    tu_write(lb, "b a\nc\n");
    snprintf(spec, sizeof spec, "%s+%s", tx, lb);
    a = load_ok(spec, NULL);
    snprintf(out, sizeof out, "%s/tl/trn", dir);
    assert_int_equal(xmc_dataset_write(a, out, &e), XMC_OK);
    b = load_ok(out, NULL);
    assert_ds_equal(a, b, 1);
    xmc_dataset_free(b);
    xmc_dataset_free(a);
}

static void test_binary_corrupt(void **state)
{
    (void)state;
    char dir[1200], spec[1300], out[1300], bad[1300];
    snprintf(dir, sizeof dir, "%s", tu_path("bc"));
    write_lf(dir, 0);
    snprintf(spec, sizeof spec, "%s/trn", dir);
    xmc_dataset *a = load_ok(spec, NULL);
    xmc_error e = {0};
    snprintf(out, sizeof out, "%s/c.xmcb", dir);
    snprintf(bad, sizeof bad, "%s/bad.xmcb", dir);
    assert_int_equal(xmc_dataset_write_binary(a, out, &e), XMC_OK);
    char *d;
    size_t n;
    assert_int_equal(xmc_read_file(out, &d, &n, &e), XMC_OK);
    /* Flip one byte at a time across the file: rejected, or (a padding
     * byte) the same data; never a crash. */
    int rejected = 0, tried = 0;
    for (size_t off = 0; off < n; off += 7) {
        d[off] ^= 0x5a;
        FILE *f = fopen(bad, "wb");
        fwrite(d, 1, n, f);
        fclose(f);
        d[off] ^= 0x5a;
        xmc_dataset *ds = NULL;
        xmc_error_clear(&e);
        int rc = xmc_dataset_map_binary(bad, &ds, &e);
        tried++;
        if (rc) {
            assert_int_equal(rc, XMC_ECORRUPT);
            rejected++;
        } else {
            assert_ds_equal(a, ds, 0);
        }
        xmc_dataset_free(ds);
    }
    assert_true(rejected > tried / 4);
    xmc_dataset_free(a);
    /* Truncations. */
    size_t cuts[] = {0, 10, 64, 100, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        FILE *f = fopen(bad, "wb");
        fwrite(d, 1, cuts[i], f);
        fclose(f);
        xmc_dataset *ds = NULL;
        xmc_error_clear(&e);
        tu_assert_error(xmc_dataset_map_binary(bad, &ds, &e), &e, XMC_ECORRUPT, "bad.xmcb", 0);
    }
    xmc_free(d);
    tu_write(bad, "XMCB\r\n\x1a\n but then text............................................."
                  "...........................");
    xmc_dataset *ds = NULL;
    xmc_error_clear(&e);
    tu_assert_error(xmc_dataset_map_binary(bad, &ds, &e), &e, XMC_ECORRUPT, "bad.xmcb", 0);
}

/* A crafted cache with valid checksums must still be refused: the
 * structural checks behind the CRCs (found by fuzz_binary). */
static void fix_crcs(unsigned char *d)
{
    uint32_t nsec;
    memcpy(&nsec, d + 12, 4);
    for (uint32_t i = 0; i < nsec; i++) {
        unsigned char *s = d + 64 + i * 32;
        uint32_t es, c;
        uint64_t off, cnt;
        memcpy(&es, s + 4, 4);
        memcpy(&off, s + 8, 8);
        memcpy(&cnt, s + 16, 8);
        c = xmc_crc32(0, d + off, (size_t)(cnt * es));
        memcpy(s + 24, &c, 4);
    }
    uint32_t c = xmc_crc32(xmc_crc32(0, d, 60), d + 64, (size_t)nsec * 32);
    memcpy(d + 60, &c, 4);
}

static unsigned char *section(unsigned char *d, uint32_t id)
{
    uint32_t nsec;
    memcpy(&nsec, d + 12, 4);
    for (uint32_t i = 0; i < nsec; i++) {
        uint32_t sid;
        uint64_t off;
        memcpy(&sid, d + 64 + i * 32, 4);
        memcpy(&off, d + 64 + i * 32 + 8, 8);
        if (sid == id)
            return d + off;
    }
    fail_msg("no section %u", id);
    return NULL;
}

static void test_binary_crafted(void **state)
{
    (void)state;
    char dir[1200], spec[1300], out[1300], bad[1300];
    snprintf(dir, sizeof dir, "%s", tu_path("cr"));
    write_lf(dir, 0);
    snprintf(spec, sizeof spec, "%s/trn", dir);
    snprintf(out, sizeof out, "%s/c.xmcb", dir);
    snprintf(bad, sizeof bad, "%s/bad.xmcb", dir);
    xmc_dataset *a = load_ok(spec, NULL);
    xmc_error e = {0};
    assert_int_equal(xmc_dataset_write_binary(a, out, &e), XMC_OK);
    xmc_dataset_free(a);
    char *orig;
    size_t n;
    assert_int_equal(xmc_read_file(out, &orig, &n, &e), XMC_OK);
    /* section ids as in src/data/binary.c: 1-3 X, 4-6 Y, 10-11 texts */
    struct {
        uint32_t id;
        size_t at;
        int64_t v;
        int width;
    } edits[] = {
        {10, 8, INT64_C(1) << 35, 8}, /* text offset overshoots, comes back later */
        {10, 8, 0, 8},                /* empty text: no NUL of its own */
        {11, 0, 'x', 1},              /* where a NUL was... (byte 0 is text) */
        {11, 9, 'x', 1},              /* a NUL replaced by text */
        {4, 8, INT64_C(1) << 35, 8},  /* Y indptr overshoots */
        {4, 16, 0, 8},                /* Y indptr decreases */
        {5, 0, 4, 4},                 /* label id = L */
        {5, 0, -1, 4},                /* negative label id */
        {2, 0, 3, 4},                 /* X row 0 column order: 4 -> 3 fine, */
        {2, 8, 0, 4},                 /* but row 1 [0,1] -> [0,0] duplicate */
        {6, 0, 0x7f800000, 4},        /* Y value +inf */
    };
    int refused = 0;
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        unsigned char *d = malloc(n);
        memcpy(d, orig, n);
        unsigned char *sp = section(d, edits[i].id) + edits[i].at;
        if (edits[i].width == 8)
            memcpy(sp, &edits[i].v, 8);
        else if (edits[i].width == 4) {
            int32_t v = (int32_t)edits[i].v;
            memcpy(sp, &v, 4);
        } else {
            *sp = (unsigned char)edits[i].v;
        }
        fix_crcs(d);
        FILE *f = fopen(bad, "wb");
        fwrite(d, 1, n, f);
        fclose(f);
        free(d);
        xmc_dataset *ds = NULL;
        xmc_error_clear(&e);
        int rc = xmc_dataset_map_binary(bad, &ds, &e);
        if (rc == XMC_OK) { /* only harmless edits may pass: a text byte, a valid order */
            if (i != 2 && i != 8)
                fail_msg("crafted edit %zu accepted", i);
            xmc_dataset_free(ds);
        } else {
            tu_assert_error(rc, &e, XMC_ECORRUPT, "bad.xmcb", 0);
            refused++;
        }
    }
    assert_int_equal(refused, (int)(sizeof edits / sizeof edits[0]) - 2);
    xmc_free(orig);
}

/* Sections above the 8 MiB CRC block are checksummed in parallel pieces:
 * the combined CRC must equal the whole-section one the writer stored. */
static void test_binary_large(void **state)
{
    (void)state;
    const int64_t n = 1000, per = 2500; /* 2.5M entries: 10 MB per array */
    xmc_dataset *ds;
    xmc_error e = {0};
    assert_int_equal(xmc_dataset_alloc(&ds, "large", &e), XMC_OK);
    assert_int_equal(xmc_csr_create(&ds->Y, n, per * 2, n * per, 1, &e), XMC_OK);
    for (int64_t r = 0; r < n; r++) {
        ds->Y->indptr[r + 1] = (r + 1) * per;
        for (int64_t k = 0; k < per; k++) {
            ds->Y->indices[r * per + k] = (int32_t)(2 * k + (r & 1));
            ds->Y->values[r * per + k] = (float)(r + k) * 0.5f;
        }
    }
    assert_int_equal(xmc_dataset_finish(ds, "large", &e), XMC_OK);
    const char *p = tu_path("large.xmcb");
    assert_int_equal(xmc_dataset_write_binary(ds, p, &e), XMC_OK);
    xmc_dataset *m = load_ok(p, NULL);
    assert_true(xmc_csr_equal(ds->Y, m->Y));
    xmc_dataset_free(m);
    /* One flipped bit deep in the second block is caught. */
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, 9L << 20, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 9L << 20, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    load_err(p, XMC_ECORRUPT, "large.xmcb", 0);
    xmc_dataset_free(ds);
}

/* ------------------------------------------------------------ real data */

static void test_shared_datasets(void **state)
{
    (void)state;
    const char *bib = tu_shared("data/bibtex/bibtex_train.txt");
    if (!bib)
        skip();
    struct {
        const char *rel, *rel2;
        int64_t n, f, l;
    } sets[] = {
        {"data/bibtex/bibtex_train.txt", NULL, 4880, 1836, 159},
        {"data/bibtex/bibtex_test.txt", NULL, 2515, 1836, 159},
        {"data/delicious/delicious_train.txt", NULL, 12920, 500, 983},
        {"data/rcv1sub1/rcv1subset1_data.txt", NULL, 6000, 47236, 101},
        {"data/rcv1sub1/rcv1subset1_data.txt", "data/rcv1sub1/rcv1subset1_trSplit.txt", 4500,
         47236, 101},
        {"data/stackex_cooking/cooking_data.txt", "data/stackex_cooking/cooking_tstSplit.txt",
         2623, 577, 400},
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        char spec[2600];
        const char *a = tu_shared(sets[i].rel);
        if (!a)
            continue;
        snprintf(spec, sizeof spec, "%s", a);
        if (sets[i].rel2)
            snprintf(spec + strlen(spec), sizeof spec - strlen(spec), "@%s",
                     tu_shared(sets[i].rel2));
        double t = xmc_now();
        xmc_dataset *ds = load_ok(spec, NULL);
        t = xmc_now() - t;
        assert_int_equal(ds->n, sets[i].n);
        assert_int_equal(ds->n_features, sets[i].f);
        assert_int_equal(ds->n_labels, sets[i].l);
        assert_non_null(ds->label_names);
        if (strstr(spec, "rcv1") && !sets[i].rel2) {
            assert_int_equal(xmc_csr_nnz(ds->X), 463400);
            assert_true(t < 1.0); /* the bar; ~0.02 s here */
        }
        xmc_dataset_free(ds);
    }
    const char *tx = tu_shared("data/reuters21578/train_texts.txt");
    if (tx) {
        char spec[2600], spec2[2600];
        snprintf(spec, sizeof spec, "%s+%s", tx, tu_shared("data/reuters21578/train_labels.txt"));
        xmc_dataset *tr = load_ok(spec, NULL);
        assert_int_equal(tr->n, 7770);
        assert_int_equal(tr->n_labels, 90);
        snprintf(spec2, sizeof spec2, "%s+%s", tu_shared("data/reuters21578/test_texts.txt"),
                 tu_shared("data/reuters21578/test_labels.txt"));
        xmc_load_opts o = {.label_vocab = tr->label_names};
        xmc_dataset *te = load_ok(spec2, &o);
        assert_int_equal(te->n, 3019);
        assert_int_equal(te->n_labels, 90);
        xmc_dataset_free(te);
        xmc_dataset_free(tr);
    }
}

/* Against an independent reader (tests/ref/data_ref.py, plain Python): the
 * shapes, entry counts, value sums and position checksums recorded in
 * tests/data/data/shared_ref.txt. */
static void ds_stats(const xmc_dataset *ds, double *sx, uint64_t *ckx, uint64_t *cky)
{
    *sx = 0;
    *ckx = *cky = 0;
    for (int64_t r = 0; r < ds->n; r++) {
        for (int64_t k = ds->Y->indptr[r]; k < ds->Y->indptr[r + 1]; k++)
            *cky += (uint64_t)(r + 1) * (uint64_t)(ds->Y->indices[k] + 1);
        if (ds->X)
            for (int64_t k = ds->X->indptr[r]; k < ds->X->indptr[r + 1]; k++) {
                *ckx += (uint64_t)(r + 1) * (uint64_t)(ds->X->indices[k] + 1);
                *sx += ds->X->values[k];
            }
    }
}

static void test_shared_vs_reference(void **state)
{
    (void)state;
    const char *root = tu_shared("data");
    const char *src = getenv("XMC_SOURCE_DIR");
    if (!root || !src)
        skip();
    char refp[1200];
    snprintf(refp, sizeof refp, "%s/tests/data/data/shared_ref.txt", src);
    FILE *f = fopen(refp, "r");
    assert_non_null(f);
    char d[1100];
    snprintf(d, sizeof d, "%s", root);
    char trl[2600];
    snprintf(trl, sizeof trl, "%s/reuters21578/train_texts.txt+%s/reuters21578/train_labels.txt",
             d, d);
    xmc_dataset *vocab_ds = load_ok(trl, NULL);
    char line[512];
    int checked = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        char name[64];
        long long n, F, L, nx, ny;
        double sx;
        unsigned long long ckx, cky;
        assert_int_equal(sscanf(line, "%63s %lld %lld %lld %lld %lld %lf %llu %llu", name, &n,
                                &F, &L, &nx, &ny, &sx, &ckx, &cky), 9);
        char spec[2600];
        xmc_load_opts o = {0};
        if (!strcmp(name, "bibtex_train"))
            snprintf(spec, sizeof spec, "%s/bibtex/bibtex_train.txt", d);
        else if (!strcmp(name, "delicious_test"))
            snprintf(spec, sizeof spec, "%s/delicious/delicious_test.txt", d);
        else if (!strcmp(name, "rcv1sub1_tst"))
            snprintf(spec, sizeof spec,
                     "%s/rcv1sub1/rcv1subset1_data.txt@%s/rcv1sub1/rcv1subset1_tstSplit.txt", d, d);
        else if (!strcmp(name, "cooking_tr"))
            snprintf(spec, sizeof spec,
                     "%s/stackex_cooking/cooking_data.txt@%s/stackex_cooking/cooking_trSplit.txt",
                     d, d);
        else if (!strcmp(name, "reuters_train"))
            snprintf(spec, sizeof spec, "%s", trl);
        else if (!strcmp(name, "reuters_test")) {
            snprintf(spec, sizeof spec,
                     "%s/reuters21578/test_texts.txt+%s/reuters21578/test_labels.txt", d, d);
            o.label_vocab = vocab_ds->label_names;
        } else
            fail_msg("unknown reference entry %s", name);
        xmc_dataset *ds = load_ok(spec, &o);
        double csx;
        uint64_t cx, cy;
        ds_stats(ds, &csx, &cx, &cy);
        assert_int_equal(ds->n, n);
        assert_int_equal(ds->n_features, F);
        assert_int_equal(ds->n_labels, L);
        assert_int_equal(ds->X ? xmc_csr_nnz(ds->X) : 0, nx);
        assert_int_equal(xmc_csr_nnz(ds->Y), ny);
        assert_true(fabs(csx - sx) <= 1e-6 * (fabs(sx) + 1));
        assert_true(cx == ckx);
        assert_true(cy == cky);
        xmc_dataset_free(ds);
        checked++;
    }
    fclose(f);
    xmc_dataset_free(vocab_ds);
    assert_int_equal(checked, 6);
}

/* ------------------------------------------------------------ faults */

/* Every allocation of a load, failed in turn: XMC_ENOMEM, nothing leaked
 * (ASan), never a crash. */
static void sweep(const char *spec, const xmc_load_opts *o)
{
    int ok = 0;
    for (uint64_t k = 1; k < 400 && !ok; k++) {
        size_t before = xmc_mem_current();
        xmc_mem_fail_after(k);
        xmc_error e = {0};
        xmc_dataset *ds = NULL;
        int rc = xmc_dataset_load(spec, o, &ds, &e);
        xmc_mem_fail_after(0);
        if (rc == XMC_OK) {
            ok = 1;
            xmc_dataset_free(ds);
        } else {
            char b[1200];
            if (rc != XMC_ENOMEM)
                fail_msg("%s, failing allocation %llu: rc %d %s", spec, (unsigned long long)k, rc,
                         xmc_error_format(&e, b, sizeof b));
            assert_null(ds);
        }
        assert_int_equal(xmc_mem_current(), before);
    }
    assert_true(ok);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    char dir[1200], spec[2600];
    snprintf(dir, sizeof dir, "%s", tu_path("af"));
    write_lf(dir, 0);
    snprintf(spec, sizeof spec, "%s/trn", dir);
    sweep(spec, NULL);
    xmc_dataset *a = load_ok(spec, NULL);
    char bin[1300];
    snprintf(bin, sizeof bin, "%s/c.xmcb", dir);
    xmc_error e = {0};
    assert_int_equal(xmc_dataset_write_binary(a, bin, &e), XMC_OK);
    xmc_dataset_free(a);
    sweep(bin, NULL);
    tu_write(tu_path("af_xc.txt"), "3 4 2\n0 0:1\n1 1:1 2:3\n 3:1\n");
    tu_write(tu_path("af_split.txt"), "3\n1\n");
    snprintf(spec, sizeof spec, "%s@%s", tu_path("af_xc.txt"), tu_path("af_split.txt"));
    sweep(spec, NULL);
    tu_write(tu_path("af_t.txt"), "a\nb\n");
    tu_write(tu_path("af_l.txt"), "x y\nz\n");
    snprintf(spec, sizeof spec, "%s+%s", tu_path("af_t.txt"), tu_path("af_l.txt"));
    sweep(spec, NULL);
    snprintf(dir, sizeof dir, "%s", tu_path("afj"));
    assert_int_equal(tu_system("mkdir -p '%s'", dir), 0);
    char p[1300];
    snprintf(p, sizeof p, "%s/lbl.json", dir);
    tu_write(p, "{\"title\":\"A\"}\n{\"title\":\"B\"}\n");
    snprintf(p, sizeof p, "%s/trn.json", dir);
    tu_write(p, "{\"title\":\"t\",\"target_ind\":[1,0]}\n");
    snprintf(spec, sizeof spec, "%s/trn", dir);
    sweep(spec, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csr_ops),         cmocka_unit_test(test_xc_valid),
        cmocka_unit_test(test_xc_malformed),    cmocka_unit_test(test_xc_multichunk),
        cmocka_unit_test(test_sparse_cold),
        cmocka_unit_test(test_sparse_text),     cmocka_unit_test(test_split),
        cmocka_unit_test(test_texts),           cmocka_unit_test(test_texts_multichunk),
        cmocka_unit_test(test_lf_layout),
        cmocka_unit_test(test_jsonl),           cmocka_unit_test(test_texts_labels),
        cmocka_unit_test(test_roundtrips),      cmocka_unit_test(test_binary_corrupt),
        cmocka_unit_test(test_binary_large),    cmocka_unit_test(test_binary_crafted),
        cmocka_unit_test(test_shared_datasets), cmocka_unit_test(test_shared_vs_reference),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
