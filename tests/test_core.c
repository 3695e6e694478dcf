/* Core: errors keep their origin, atomic files, the line reader over plain and
 * gzip input, arena, RNG reproducibility, fault injection. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"

static void test_error_first_wins(void **state)
{
    (void)state;
    xmc_error e = {0};
    assert_int_equal(XMC_ERR(&e, XMC_EFORMAT, "a.txt", 17, "expected %s", "N F L"), XMC_EFORMAT);
    XMC_ERR(&e, XMC_EIO, "b.txt", 3, "later");
    char buf[256];
    assert_string_equal(xmc_error_format(&e, buf, sizeof buf), "a.txt:17: expected N F L");
    assert_int_equal(XMC_ERR(NULL, XMC_EINVAL, NULL, 0, "x"), XMC_EINVAL);
    xmc_error_clear(&e);
    assert_int_equal(e.code, XMC_OK);
}

static void test_outfile_atomic(void **state)
{
    (void)state;
    const char *p = tu_path("out.txt");
    xmc_error e = {0};
    xmc_outfile o;
    assert_int_equal(xmc_outfile_open(&o, p, &e), XMC_OK);
    fputs("half", o.fp);
    assert_false(xmc_file_exists(p)); /* nothing visible before commit */
    xmc_outfile_abort(&o);
    assert_false(xmc_file_exists(p));
    assert_int_equal(xmc_outfile_open(&o, p, &e), XMC_OK);
    fputs("whole\n", o.fp);
    assert_int_equal(xmc_outfile_commit(&o, &e), XMC_OK);
    char *d;
    size_t n;
    assert_int_equal(xmc_read_file(p, &d, &n, &e), XMC_OK);
    assert_string_equal(d, "whole\n");
    xmc_free(d);
    assert_int_not_equal(xmc_outfile_open(&o, "/nonexistent/dir/x", &e), XMC_OK);
    assert_int_equal(e.code, XMC_EIO);
}

static void read_all(const char *p, int expect_lines, const char *last)
{
    xmc_error e = {0};
    xmc_lines *r;
    assert_int_equal(xmc_lines_open(&r, p, &e), XMC_OK);
    char *line;
    size_t len;
    int n = 0, got;
    char prev[64] = "";
    while ((got = xmc_lines_next(r, &line, &len, &e)) == 1) {
        n++;
        snprintf(prev, sizeof prev, "%s", line);
        assert_int_equal(strlen(line), len);
    }
    assert_int_equal(got, 0);
    assert_int_equal(n, expect_lines);
    assert_int_equal(xmc_lines_lineno(r), expect_lines);
    assert_string_equal(prev, last);
    xmc_lines_close(r);
}

static void test_lines_plain_gzip_crlf(void **state)
{
    (void)state;
    tu_write(tu_path("a.txt"), "one\r\ntwo\n\nfour");
    read_all(tu_path("a.txt"), 4, "four");
    gzFile g = gzopen(tu_path("a.txt.gz"), "wb");
    for (int i = 0; i < 100000; i++)
        gzprintf(g, "line %d\n", i);
    gzclose(g);
    read_all(tu_path("a.txt.gz"), 100000, "line 99999");
    /* Truncated gzip: an error, not a silent short read. */
    assert_int_equal(tu_system("head -c 2000 '%s' > '%s'", tu_path("a.txt.gz"),
                               tu_path("trunc.gz")), 0);
    xmc_error e = {0};
    xmc_lines *r;
    assert_int_equal(xmc_lines_open(&r, tu_path("trunc.gz"), &e), XMC_OK);
    char *line;
    size_t len;
    int got;
    while ((got = xmc_lines_next(r, &line, &len, &e)) == 1) {
    }
    assert_int_equal(got, -1);
    assert_int_equal(e.code, XMC_EFORMAT);
    xmc_lines_close(r);
    assert_int_equal(xmc_lines_open(&r, tu_path("missing"), &e), XMC_EIO);
    assert_int_equal(e.code, XMC_EFORMAT); /* the first error is kept */
}

static void test_arena(void **state)
{
    (void)state;
    xmc_arena *a = xmc_arena_create(1000);
    assert_non_null(a);
    void *p = xmc_arena_alloc(a, 10);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    assert_null(xmc_arena_alloc(a, 5000));
    xmc_arena_reset(a);
    assert_int_equal(xmc_arena_used(a), 0);
    assert_true(xmc_arena_high_water(a) >= 64);
    xmc_arena_free(a);
    xmc_arena_free(NULL);
}

static void test_rng(void **state)
{
    (void)state;
    xmc_rng a, b, c;
    xmc_rng_seed(&a, 42, 0);
    xmc_rng_seed(&b, 42, 0);
    xmc_rng_seed(&c, 42, 1);
    int same_c = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = xmc_rng_u64(&a);
        assert_int_equal(x, xmc_rng_u64(&b));
        same_c += x == xmc_rng_u64(&c);
    }
    assert_int_equal(same_c, 0);
    /* below(): all residues hit, none out of range. */
    int hist[7] = {0};
    for (int i = 0; i < 7000; i++) {
        uint64_t v = xmc_rng_below(&a, 7);
        assert_true(v < 7);
        hist[v]++;
    }
    for (int i = 0; i < 7; i++)
        assert_true(hist[i] > 800 && hist[i] < 1200);
    double s = 0, s2 = 0;
    for (int i = 0; i < 20000; i++) {
        double z = xmc_rng_normal(&a);
        s += z;
        s2 += z * z;
    }
    assert_true(s / 20000 > -0.05 && s / 20000 < 0.05);
    assert_true(s2 / 20000 > 0.95 && s2 / 20000 < 1.05);
}

static void test_mem_accounting_and_faults(void **state)
{
    (void)state;
    size_t before = xmc_mem_current();
    uint64_t n0 = xmc_mem_alloc_count();
    void *p = xmc_malloc(1000);
    assert_int_equal(xmc_mem_current(), before + 1000);
    assert_int_equal(xmc_mem_alloc_count(), n0 + 1);
    p = xmc_realloc(p, 3000);
    assert_int_equal(xmc_mem_current(), before + 3000);
    xmc_free(p);
    assert_int_equal(xmc_mem_current(), before);
    xmc_mem_fail_after(2);
    void *a = xmc_malloc(8), *b = xmc_malloc(8), *c = xmc_malloc(8);
    assert_non_null(a);
    assert_null(b);
    assert_non_null(c);
    xmc_free(a);
    xmc_free(c);
    assert_null(xmc_calloc(SIZE_MAX / 2, 4)); /* overflow refused */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_first_wins),   cmocka_unit_test(test_outfile_atomic),
        cmocka_unit_test(test_lines_plain_gzip_crlf), cmocka_unit_test(test_arena),
        cmocka_unit_test(test_rng),                cmocka_unit_test(test_mem_accounting_and_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
