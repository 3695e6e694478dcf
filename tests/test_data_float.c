/* The hand-written float parser agrees bit-for-bit with strtof (C locale) on
 * millions of decimal strings of every shape, and the writer's shortest
 * format reads back exactly. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"
#include "testutil.h"

static long n_checked;

/* The parser reads against the end of its range, not of the number: the
 * sparse readers pass the chunk end, which enables the 16-byte SWAR fast
 * path. So every string is parsed twice: alone, and followed by a blank
 * and 16 more bytes (the result must be the same). */
static void check_padded(const char *s, size_t n, const char *e, float a)
{
    char buf[640];
    if (n + 20 > sizeof buf)
        return;
    memcpy(buf, s, n);
    memcpy(buf + n, " 123456789:1.5e3\n", 18);
    float c = 0;
    const char *f = xmc_parse_float(buf, buf + n + 18, &c);
    if ((e == s + n) != (f == buf + n))
        fail_msg("'%s': parser %s alone but %s when followed by more text", s,
                 e == s + n ? "accepts" : "rejects", f == buf + n ? "accepts" : "rejects");
    if (f == buf + n && memcmp(&a, &c, 4))
        fail_msg("'%s': %.9g alone, %.9g followed by more text", s, (double)a, (double)c);
}

static void check(const char *s)
{
    float a = 0, b;
    const char *e = xmc_parse_float(s, s + strlen(s), &a);
    check_padded(s, strlen(s), e, a);
    char *q;
    b = strtof(s, &q);
    if (!isfinite(b) || *q) {
        if (e && e == s + strlen(s))
            fail_msg("'%s': parser accepted (%g), strtof says invalid/non-finite", s, (double)a);
        return;
    }
    if (!e || e != s + strlen(s))
        fail_msg("'%s': parser rejected, strtof gives %.9g", s, (double)b);
    uint32_t ua, ub;
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    if (ua != ub)
        fail_msg("'%s': parser %.9g (0x%08x) != strtof %.9g (0x%08x)", s, (double)a, ua,
                 (double)b, ub);
    n_checked++;
}

static void test_float_fixed_cases(void **state)
{
    (void)state;
    const char *ok[] = {"0", "1", "-1", "+2.5", "0.037683", "1e-05", "1E5", ".5", "5.",
                        "0.000001", "123456789", "3.4028234e38", "1.17549435e-38",
                        "1.4e-45", "7e-46", "0.1", "0.2", "0.3", "16777217", "16777219",
                        "9007199254740993", "1.00000005960464477539062",
                        "1.000000059604644775390625", "1.0000000596046447753906251",
                        "123456789012345678901234567890", "0.00000000000000000000000000001",
                        "-0", "-0.0", "00000000000000000000000000001.5"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        check(ok[i]);
    const char *bad[] = {"", "-", "+", ".", "e5", "1e", "1e+", "abc", "inf", "nan", "1e39",
                         "-1e39", "0x10", "1..2", "--1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        float v;
        const char *s = bad[i];
        const char *e = xmc_parse_float(s, s + strlen(s), &v);
        if (e && e == s + strlen(s))
            fail_msg("'%s' accepted as %g", s, (double)v);
    }
    /* Stops at the end pointer, not at a NUL. */
    float v;
    const char *s = "12345";
    assert_ptr_equal(xmc_parse_float(s, s + 2, &v), s + 2);
    assert_true(v == 12.0f);
}

static void test_float_random(void **state)
{
    (void)state;
    xmc_rng r;
    xmc_rng_seed(&r, 7, 0);
    char buf[96];
    for (int i = 0; i < 400000; i++) {
        /* Random bit patterns printed at several precisions. */
        uint32_t u = xmc_rng_u32(&r);
        float f;
        memcpy(&f, &u, 4);
        if (!isfinite(f))
            continue;
        int prec = 1 + (int)xmc_rng_below(&r, 12);
        snprintf(buf, sizeof buf, i & 1 ? "%.*g" : "%.*e", prec, (double)f);
        check(buf);
    }
    for (int i = 0; i < 400000; i++) {
        /* Random decimal strings: m digits, a point, an exponent. */
        int nd = 1 + (int)xmc_rng_below(&r, 20), k = 0;
        if (xmc_rng_below(&r, 4) == 0)
            buf[k++] = '-';
        int dot = (int)xmc_rng_below(&r, (uint64_t)nd + 1);
        for (int j = 0; j < nd; j++) {
            if (j == dot)
                buf[k++] = '.';
            buf[k++] = (char)('0' + xmc_rng_below(&r, 10));
        }
        if (xmc_rng_below(&r, 2))
            k += snprintf(buf + k, 16, "e%d", (int)xmc_rng_below(&r, 90) - 50);
        buf[k] = '\0';
        check(buf);
    }
    for (int i = 0; i < 200000; i++) {
        /* Exact midpoints between adjacent floats (the double-rounding trap),
         * and their neighbours, printed exactly. */
        uint32_t u = xmc_rng_u32(&r) & 0x7effffff;
        float a, b;
        memcpy(&a, &u, 4);
        u++;
        memcpy(&b, &u, 4);
        double mid = ((double)a + (double)b) / 2;
        snprintf(buf, sizeof buf, "%.40g", mid);
        check(buf);
        snprintf(buf, sizeof buf, "%.17g", mid);
        check(buf);
    }
    assert_true(n_checked > 900000);
}

/* Decimals of 8 to 16 significant digits in fixed notation ("0.000123..."),
 * close to float midpoints: the inputs that reach the multiply-by-10^-k
 * fast path (m < 2^53, 1 <= k <= 22) and its near-midpoint fallback. Each
 * midpoint is printed rounded to d digits, and its last digit nudged by
 * -1, 0 and +1. */
static void test_float_near_midpoints(void **state)
{
    (void)state;
    xmc_rng r;
    xmc_rng_seed(&r, 11, 0);
    char buf[96];
    long before = n_checked;
    for (int i = 0; i < 150000; i++) {
        /* Floats in [1e-6, 1e7): |exponent| small enough for fixed notation. */
        int ex = (int)xmc_rng_below(&r, 44) - 20;
        uint32_t u = ((uint32_t)(ex + 127) << 23) | (xmc_rng_u32(&r) & 0x7fffff);
        float a, b;
        memcpy(&a, &u, 4);
        u++;
        memcpy(&b, &u, 4);
        double mid = ((double)a + (double)b) / 2;
        int d = 8 + (int)xmc_rng_below(&r, 9); /* significant digits */
        int lead = (int)floor(log10(mid));     /* position of the first digit */
        int frac = d - 1 - lead;               /* digits after the point */
        if (frac < 1 || frac > 22)
            continue;
        snprintf(buf, sizeof buf, "%.*f", frac, mid);
        check(buf);
        size_t n = strlen(buf);
        char last = buf[n - 1];
        if (last < '9') {
            buf[n - 1] = (char)(last + 1);
            check(buf);
        }
        if (last > '0') {
            buf[n - 1] = (char)(last - 1);
            check(buf);
        }
    }
    assert_true(n_checked - before > 300000);
}

static void test_format_roundtrip(void **state)
{
    (void)state;
    xmc_rng r;
    xmc_rng_seed(&r, 9, 0);
    char buf[32];
    for (int i = 0; i < 200000; i++) {
        uint32_t u = xmc_rng_u32(&r);
        float f, g;
        memcpy(&f, &u, 4);
        if (!isfinite(f))
            continue;
        int n = xmc_format_float(buf, f);
        assert_int_equal(n, strlen(buf));
        assert_non_null(xmc_parse_float(buf, buf + n, &g));
        if (memcmp(&f, &g, 4) && !(f == 0 && g == 0))
            fail_msg("%.9g printed as '%s' reads back as %.9g", (double)f, buf, (double)g);
    }
    assert_int_equal(xmc_format_float(buf, 1.0f), 1);
    assert_string_equal(buf, "1");
    xmc_format_float(buf, 0.5f);
    assert_string_equal(buf, "0.5");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_fixed_cases),
        cmocka_unit_test(test_float_random),
        cmocka_unit_test(test_float_near_midpoints),
        cmocka_unit_test(test_format_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
