/* The vector row kernels of the sparse readers (src/data/rowscan*.c) against
 * the scalar parser: on random and edge inputs every variant (ref, avx2,
 * avx512 where the CPU has them) must give the same matrices, bit for bit,
 * and on malformed inputs the same error code, message and line. Every
 * value is also compared with strtof. Also the texts reader's two vector
 * passes (16- and 32-byte variants) and pass 1 of the sparse readers
 * (count3). Bodies are exact-size heap copies, so ASan sees any read past
 * the end. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"
#include "testutil.h"

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static int64_t count_rows(const char *p, size_t n)
{
    int64_t r = 0;
    for (size_t i = 0; i < n; i++)
        r += p[i] == '\n';
    return r + (n && p[n - 1] != '\n');
}

typedef struct result {
    int rc;
    xmc_error err;
    xmc_csr *X, *Y;
} result;

/* Parse an exact-size heap copy of body with `row` (NULL = scalar). */
static result run(const char *body, size_t n, int mode, int64_t ncols, int64_t nlabels,
                  xmc_sparse_row_fn row, int threads)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, body, n);
    result r = {0};
    xmc_set_threads(threads);
    r.rc = xmc_sparse_parse("t.txt", copy, n, 2, mode, count_rows(body, n), ncols, nlabels, row,
                            &r.X, mode == XMC_SP_XC ? &r.Y : NULL, &r.err);
    free(copy);
    return r;
}

static void same_csr(const xmc_csr *a, const xmc_csr *b, const char *what)
{
    if (!a || !b) {
        if (a != b)
            fail_msg("%s: one variant has no matrix", what);
        return;
    }
    if (!xmc_csr_equal(a, b))
        fail_msg("%s: matrices differ", what);
    int64_t nnz = xmc_csr_nnz(a);
    if (nnz && memcmp(a->values, b->values, (size_t)nnz * sizeof(float)))
        fail_msg("%s: values differ in their bits", what);
}

static const char *const levels[] = {"ref", "avx2", "avx512"};
static long n_compared;

/* Every variant and 1 or 2 threads against the scalar parser on 1 thread.
 * Returns the scalar result's code. */
static int compare_all(const char *body, size_t n, int mode, int64_t ncols, int64_t nlabels)
{
    result ref = run(body, n, mode, ncols, nlabels, NULL, 1);
    for (int li = 0; li < 3; li++) {
        xmc_sparse_row_fn fn = xmc_sparse_row_get(levels[li]);
        if (!fn)
            continue;
        for (int th = 1; th <= 2; th++) {
            result r = run(body, n, mode, ncols, nlabels, fn, th);
            if (r.rc != ref.rc || strcmp(r.err.msg, ref.err.msg) || r.err.line != ref.err.line)
                fail_msg("%s, %d threads, mode %d: rc %d line %ld '%s'; scalar: rc %d line %ld "
                         "'%s'\nbody (%zu bytes): %.200s",
                         levels[li], th, mode, r.rc, r.err.line, r.err.msg, ref.rc,
                         ref.err.line, ref.err.msg, n, body);
            same_csr(r.X, ref.X, levels[li]);
            same_csr(r.Y, ref.Y, levels[li]);
            xmc_csr_free(r.X);
            xmc_csr_free(r.Y);
            n_compared++;
        }
    }
    xmc_csr_free(ref.X);
    xmc_csr_free(ref.Y);
    xmc_set_threads(0);
    return ref.rc;
}

/* A random value in one of the shapes the files hold, and the ones the fast
 * paths hand on: long mantissas, exponents, signs, "5." and ".5". */
static void rand_value(xmc_rng *g, char *out)
{
    char d[40];
    int nd = 1 + (int)xmc_rng_below(g, 17);
    for (int i = 0; i < nd; i++)
        d[i] = (char)('0' + xmc_rng_below(g, 10));
    d[nd] = '\0';
    switch (xmc_rng_below(g, 10)) {
    case 0: /* integer */
        snprintf(out, 40, "%.*s", 1 + (int)xmc_rng_below(g, 9), d);
        break;
    case 1: /* exponent, sign */
        snprintf(out, 40, "%s%.*se%d", xmc_rng_below(g, 2) ? "-" : "+", 1 + nd % 6, d,
                 (int)xmc_rng_below(g, 60) - 30);
        break;
    case 2: /* "5." or ".5" */
        snprintf(out, 40, xmc_rng_below(g, 2) ? "%.*s." : ".%.*s", 1 + nd % 7, d);
        break;
    case 3: { /* near a float midpoint, 8-17 significant digits */
        float f = (float)(xmc_rng_uniform(g) * 2.0);
        double mid = ((double)f + (double)nextafterf(f, 2.0f)) / 2;
        snprintf(out, 40, "%.*f", 8 + (int)xmc_rng_below(g, 10), mid);
        break;
    }
    default: /* I.F: the synthetic and real files' shape */
        snprintf(out, 40, "%.*s.%s", 1 + (int)xmc_rng_below(g, 3), d,
                 d + xmc_rng_below(g, (uint64_t)nd));
        if (out[strlen(out) - 1] == '.')
            strcat(out, "5");
        break;
    }
}

/* A random well-formed body. XC mode: label lists first (or none). */
static void rand_body(xmc_rng *g, sbuf *b, int mode, int rows, int max_entries,
                      int64_t ncols, int64_t nlabels, int crlf)
{
    char v[48], t[96];
    for (int r = 0; r < rows; r++) {
        int k = (int)xmc_rng_below(g, (uint64_t)max_entries + 1);
        if (xmc_rng_below(g, 200) == 0)
            k = 3000; /* a long row: many 64-byte blocks */
        if (mode == XMC_SP_XC) {
            int nl = (int)xmc_rng_below(g, 4);
            int64_t l = (int64_t)xmc_rng_below(g, (uint64_t)nlabels / 4 + 1);
            for (int i = 0; i < nl; i++) {
                snprintf(t, sizeof t, "%s%lld", i ? "," : "", (long long)l);
                puts_(b, t);
                l += 1 + (int64_t)xmc_rng_below(g, 3);
                if (l >= nlabels)
                    break;
            }
            if (nl == 0 && xmc_rng_below(g, 2))
                puts_(b, " "); /* no labels: a leading blank */
        } else if (xmc_rng_below(g, 8) == 0) {
            puts_(b, xmc_rng_below(g, 2) ? " " : "\t");
        }
        int64_t id = (int64_t)xmc_rng_below(g, 50);
        int shuffled = mode == XMC_SP_SPARSE && xmc_rng_below(g, 4) == 0;
        for (int i = 0; i < k && id < ncols; i++) {
            rand_value(g, v);
            int64_t shown = shuffled ? ncols - 1 - id : id; /* decreasing: unsorted, distinct */
            const char *sep = (i == 0 && mode != XMC_SP_XC) ? ""
                              : xmc_rng_below(g, 16)       ? " "
                              : xmc_rng_below(g, 2)        ? "  "
                                                           : "\t";
            if (i == 0 && mode == XMC_SP_XC && b->n && b->p[b->n - 1] == ' ')
                sep = "";
            snprintf(t, sizeof t, "%s%s%lld:%s", sep, xmc_rng_below(g, 30) ? "" : "00",
                     (long long)shown, v);
            puts_(b, t);
            id += 1 + (int64_t)xmc_rng_below(g, 300);
        }
        if (xmc_rng_below(g, 10) == 0)
            puts_(b, xmc_rng_below(g, 2) ? " " : " \t ");
        puts_(b, crlf ? "\r\n" : "\n");
    }
}

static void test_random_bodies(void **state)
{
    (void)state;
    xmc_rng g;
    xmc_rng_seed(&g, 7, 0);
    for (int it = 0; it < 25; it++) {
        for (int mode = 0; mode < 2; mode++) {
            sbuf b = {0};
            int crlf = it % 5 == 3;
            rand_body(&g, &b, mode, 1 + (int)xmc_rng_below(&g, 400),
                      (int)xmc_rng_below(&g, 60), 1000000, 5000, crlf);
            if (it % 7 == 6 && b.n) /* last row without its newline */
                b.n -= crlf ? 2 : 1;
            compare_all(b.p, b.n, mode, 1000000, 5000);
            free(b.p);
        }
    }
    assert_true(n_compared > 0);
}

/* Rows of every length 1..200 (from the row start, where the kernels'
 * 64-byte blocks start), so the '\n', a ':' or a value's last digit falls
 * on each block boundary; with LF, CRLF and trailing blanks. */
static void test_block_boundaries(void **state)
{
    (void)state;
    for (int variant = 0; variant < 4; variant++) {
        for (int mode = 0; mode < 2; mode++) {
            sbuf b = {0};
            for (int len = 1; len <= 200; len++) {
                sbuf row = {0};
                int id = 0;
                if (mode == XMC_SP_XC)
                    puts_(&row, "3,17");
                while ((int)row.n + 8 <= len) {
                    char t[32];
                    snprintf(t, sizeof t, "%s%d:0.5", row.n ? " " : "", id++);
                    puts_(&row, t);
                }
                while ((int)row.n < len) /* pad: a longer value or blanks */
                    puts_(&row, variant & 1 ? " " : (row.n && row.p[row.n - 1] != ' ' &&
                                                     strchr(row.p, '.'))
                                                        ? "1"
                                                        : " ");
                put(&b, row.p, row.n);
                puts_(&b, variant & 2 ? "\r\n" : "\n");
                free(row.p);
            }
            compare_all(b.p, b.n, mode, 1000, 100);
            /* The same rows, each alone: the body ends right after it (the
             * kernels' tail block). */
            const char *p = b.p;
            while (variant % 3 == 0 && p < b.p + b.n) {
                const char *nl = memchr(p, '\n', (size_t)(b.p + b.n - p));
                compare_all(p, (size_t)(nl + 1 - p), mode, 1000, 100);
                compare_all(p, (size_t)(nl - p), mode, 1000, 100); /* no '\n' */
                p = nl + 1;
            }
            free(b.p);
        }
    }
}

/* Values one per row, each parsed by every variant, compared with strtof. */
static void test_values_vs_strtof(void **state)
{
    (void)state;
    xmc_rng g;
    xmc_rng_seed(&g, 11, 0);
    enum { N = 60000 };
    sbuf b = {0};
    float *want = malloc(N * sizeof *want);
    assert_non_null(want);
    int n = 0;
    static const char *const fixed[] = {
        "0",         "1",           "0.5",        "0.059197",   "0.12574",  "1.5",
        "007",       "0.0000001",   "123456789",  "9007199254740993",     "3.4028235e38",
        "1e-38",     "1.17549435e-38", "1e-45",   "0.333333343267631531", "16777217",
        "5.",        ".5",          "-0",         "+2.5",       "0.000000000000001",
        "999999999999999",          "1.00000005960464477539", "0.100000001490116119384765625",
        "8388607",   "8388608",     "0.8388607",  "0.8388608",  "838860.7", "0.0000000001",
        "0.00000000001",            "1677721.5",  "16777.215"};
    char v[48];
    for (int i = 0; i < N; i++) {
        if (i < (int)(sizeof fixed / sizeof *fixed))
            snprintf(v, sizeof v, "%s", fixed[i]);
        else
            rand_value(&g, v);
        char *end;
        float f = strtof(v, &end);
        if (*end || !isfinite(f))
            continue;
        want[n++] = f;
        char t[64];
        snprintf(t, sizeof t, "0:%s\n", v);
        puts_(&b, t);
    }
    compare_all(b.p, b.n, XMC_SP_SPARSE, 1, 0);
    for (int li = 0; li < 3; li++) {
        xmc_sparse_row_fn fn = xmc_sparse_row_get(levels[li]);
        if (!fn)
            continue;
        result r = run(b.p, b.n, XMC_SP_SPARSE, 1, 0, fn, 1);
        assert_int_equal(r.rc, XMC_OK);
        assert_int_equal(xmc_csr_nnz(r.X), n);
        for (int i = 0; i < n; i++)
            if (memcmp(&r.X->values[i], &want[i], 4)) {
                const char *p = b.p;
                for (int k = 0; k < i; k++)
                    p = strchr(p, '\n') + 1;
                fail_msg("%s: row %d '%.40s': %.9g, strtof %.9g", levels[li], i + 1, p,
                         (double)r.X->values[i], (double)want[i]);
            }
        xmc_csr_free(r.X);
    }
    free(want);
    free(b.p);
}

/* Every entry shape of the one-vector path (tok_entry: ids of 1-9 digits,
 * values of 1-10 bytes with the dot at each position or none, random
 * digits) and of the float division path (mantissas up to and past 2^23,
 * 0-11 decimals): one entry per row, every value against strtof; then the
 * same entries several per row (ids distinct within a row), against the
 * scalar parser. */
static void test_entry_shapes(void **state)
{
    (void)state;
    xmc_rng g;
    xmc_rng_seed(&g, 13, 0);
    enum { MAXN = 5000 };
    char(*ent)[40] = malloc(MAXN * sizeof *ent);
    long *ids = malloc(MAXN * sizeof *ids);
    float *want = malloc(MAXN * sizeof *want);
    assert_true(ent && ids && want);
    int n = 0;
    for (int rep = 0; rep < 4; rep++)
        for (int li = 1; li <= 9; li++)
            for (int vl = 1; vl <= 10; vl++)
                for (int dp = -1; dp < vl; dp++) {
                    if (vl == 1 && dp == 0)
                        continue; /* "." */
                    char id[16], v[16];
                    for (int i = 0; i < li; i++)
                        id[i] = (char)('0' + (i == 0 && li > 1 ? 1 + xmc_rng_below(&g, 9)
                                                               : xmc_rng_below(&g, 10)));
                    id[li] = '\0';
                    for (int i = 0; i < vl; i++)
                        v[i] = i == dp ? '.' : (char)('0' + xmc_rng_below(&g, 10));
                    v[vl] = '\0';
                    snprintf(ent[n], sizeof ent[n], "%s:%s", id, v);
                    ids[n] = atol(id);
                    want[n++] = strtof(v, NULL);
                }
    /* Values m / 10^f around the division path's limits (m < 2^23). */
    static const long ms[] = {0, 1, 7, 59197, 8388607, 8388608, 8388609, 16777215, 16777216,
                              99999999};
    for (int k = 0; k < (int)(sizeof ms / sizeof *ms); k++)
        for (int f = 0; f <= 11; f++) {
            char d[32], v[32];
            snprintf(d, sizeof d, "%0*ld", f + 1, ms[k]);
            int nd = (int)strlen(d);
            if (f > 0)
                snprintf(v, sizeof v, "%.*s.%s", nd - f, d, d + nd - f);
            else
                snprintf(v, sizeof v, "%s", d);
            snprintf(ent[n], sizeof ent[n], "%d:%s", k + f, v);
            ids[n] = k + f;
            want[n++] = strtof(v, NULL);
        }
    assert_true(n <= MAXN);
    sbuf one = {0}, multi = {0};
    int nrow = 0;
    for (int i = 0; i < n; i++) {
        puts_(&one, ent[i]);
        puts_(&one, "\n");
        for (int k = 1; k <= nrow; k++)
            if (ids[i - k] == ids[i]) { /* a duplicate id would be an error */
                puts_(&multi, "\n");
                nrow = 0;
            }
        if (nrow)
            puts_(&multi, " ");
        puts_(&multi, ent[i]);
        nrow++;
        if (nrow == 16 || xmc_rng_below(&g, 4) == 0) {
            puts_(&multi, "\n");
            nrow = 0;
        }
    }
    puts_(&multi, "\n");
    assert_int_equal(compare_all(one.p, one.n, XMC_SP_SPARSE, 1000000000, 0), XMC_OK);
    assert_int_equal(compare_all(multi.p, multi.n, XMC_SP_SPARSE, 1000000000, 0), XMC_OK);
    for (int lv = 0; lv < 3; lv++) {
        xmc_sparse_row_fn fn = xmc_sparse_row_get(levels[lv]);
        if (!fn)
            continue;
        result r = run(one.p, one.n, XMC_SP_SPARSE, 1000000000, 0, fn, 1);
        if (r.rc != XMC_OK)
            fail_msg("%s: line %ld: %s", levels[lv], r.err.line, r.err.msg);
        assert_int_equal(xmc_csr_nnz(r.X), n);
        for (int i = 0; i < n; i++)
            if (memcmp(&r.X->values[i], &want[i], 4))
                fail_msg("%s: entry '%s': %.9g, strtof %.9g", levels[lv], ent[i],
                         (double)r.X->values[i], (double)want[i]);
        xmc_csr_free(r.X);
    }
    free(ent);
    free(ids);
    free(want);
    free(one.p);
    free(multi.p);
}

/* The AVX-512 kernel's loop for common rows (rowscan.h) hands a row back
 * to the general loop when it sees anything else: each such thing placed
 * at the start, middle and end of long rows (more than one 64-byte block,
 * 80+ bytes before the body end), in both modes, against the scalar
 * parser: ids at ncols - 1 and ncols, equal and decreasing ids, a value
 * of 2^24 and more, 9-digit ids, blanks, tabs, '\r', a ':' ending a
 * value, and rows the loop takes whole around them. */
static void test_fast_row_edges(void **state)
{
    (void)state;
    static const char *const odd[] = {
        "999:0.25",  "1000:0.25", "7:0.5 7:0.5", "9:0.5 8:0.5", "5:16777216",
        "5:16777215", "6:1.6777217", "123456789:1", "5:0.5  6:0.5", "5:0.5\t6:0.5",
        "5:0.5:6",   "5:",        ":5",          "5:.",         "5:0.5 x",
        "12345678:0.125", "1:12345678", "1:1234567.8", "1:99999999", "3:0.0000001"};
    const int nodd = (int)(sizeof odd / sizeof *odd);
    for (int mode = 0; mode < 2; mode++)
        for (int k = 0; k < nodd; k++)
            for (int where = 0; where < 3; where++) {
                sbuf b = {0};
                for (int r = 0; r < 6; r++) {
                    char t[64];
                    if (mode == XMC_SP_XC)
                        puts_(&b, r & 1 ? "1,4 " : " ");
                    int nent = 12; /* ~110 bytes a row */
                    for (int i = 0; i < nent; i++) {
                        if (r == 3 && i == (where == 0 ? 0 : where == 1 ? nent / 2 : nent - 1)) {
                            snprintf(t, sizeof t, "%s%s", i ? " " : "", odd[k]);
                            puts_(&b, t);
                            continue;
                        }
                        int id = i < nent / 2 ? i : 10 + 80 * i;
                        snprintf(t, sizeof t, "%s%d:0.0%d5%d", i ? " " : "", id, i, r);
                        puts_(&b, t);
                    }
                    puts_(&b, r == 4 ? "\r\n" : "\n");
                }
                compare_all(b.p, b.n, mode, 1000, 10);
                free(b.p);
            }
}

/* Malformed bodies: random bytes changed, inserted or deleted in a valid
 * body. Whatever the scalar parser says (code, message, line), every
 * variant must say too. */
static void test_malformed_same_errors(void **state)
{
    (void)state;
    xmc_rng g;
    xmc_rng_seed(&g, 13, 0);
    static const char bad[] = "0123456789:., \t\r\n-+eEx\x80";
    int failures = 0;
    for (int it = 0; it < 1000; it++) {
        int mode = it & 1;
        sbuf b = {0};
        rand_body(&g, &b, mode, 1 + (int)xmc_rng_below(&g, 12), 12, 5000, 50, it % 3 == 0);
        int edits = 1 + (int)xmc_rng_below(&g, 3);
        for (int k = 0; k < edits && b.n > 1; k++) {
            size_t at = (size_t)xmc_rng_below(&g, b.n);
            char c = bad[xmc_rng_below(&g, sizeof bad)]; /* includes the NUL */
            switch (xmc_rng_below(&g, 3)) {
            case 0:
                b.p[at] = c;
                break;
            case 1:
                put(&b, "", 0);
                put(&b, " ", 1);
                memmove(b.p + at + 1, b.p + at, b.n - 1 - at);
                b.p[at] = c;
                break;
            default:
                memmove(b.p + at, b.p + at + 1, b.n - at - 1);
                b.n--;
                break;
            }
        }
        /* Ids beyond the header, too. */
        failures += compare_all(b.p, b.n, mode, it % 4 ? 5000 : 300, it % 4 ? 50 : 5) != 0;
        free(b.p);
    }
    assert_true(failures > 150); /* the edits did hit the error paths */
}

/* Multi-chunk bodies (several MiB): chunk ends fall inside the kernels'
 * blocks, and the earliest error wins whatever the thread count. */
/* The segmented parse of a cold file (segments of 1/16 of the size,
 * doubling up to it; here 16 KiB .. 256 KiB) against one segment: the same
 * matrix bit for bit, or the same error. */
static void same_as_segmented(const char *body, size_t n, int mode)
{
    result one = run(body, n, mode, 1000000, 5000, xmc_sparse_row_best(), 2);
    size_t keep = xmc_sparse_segment_bytes;
    xmc_sparse_segment_bytes = (size_t)256 << 10;
    result seg = run(body, n, mode, 1000000, 5000, xmc_sparse_row_best(), 2);
    xmc_sparse_segment_bytes = keep;
    assert_int_equal(seg.rc, one.rc);
    assert_int_equal(seg.err.line, one.err.line);
    assert_string_equal(seg.err.msg, one.err.msg);
    same_csr(seg.X, one.X, "segmented");
    same_csr(seg.Y, one.Y, "segmented");
    xmc_csr_free(one.X);
    xmc_csr_free(one.Y);
    xmc_csr_free(seg.X);
    xmc_csr_free(seg.Y);
    xmc_set_threads(0);
}

static void test_large_and_error_deep(void **state)
{
    (void)state;
    xmc_rng g;
    xmc_rng_seed(&g, 17, 0);
    sbuf b = {0};
    rand_body(&g, &b, XMC_SP_SPARSE, 30000, 30, 1000000, 0, 0);
    assert_true(b.n > 1u << 20);
    assert_int_equal(compare_all(b.p, b.n, XMC_SP_SPARSE, 1000000, 0), XMC_OK);
    same_as_segmented(b.p, b.n, XMC_SP_SPARSE);
    sbuf xc = {0};
    rand_body(&g, &xc, XMC_SP_XC, 30000, 30, 1000000, 5000, 0);
    same_as_segmented(xc.p, xc.n, XMC_SP_XC);
    free(xc.p);
    /* An error in the middle: a value replaced by letters. */
    char *mid = strchr(b.p + b.n / 2, ':');
    assert_non_null(mid);
    mid[1] = 'x';
    assert_int_equal(compare_all(b.p, b.n, XMC_SP_SPARSE, 1000000, 0), XMC_EFORMAT);
    result r = run(b.p, b.n, XMC_SP_SPARSE, 1000000, 0, xmc_sparse_row_best(), 2);
    assert_int_equal(r.err.line, 2 + count_rows(b.p, (size_t)(mid - b.p)) - 1);
    assert_non_null(strstr(r.err.msg, "expected a finite number"));
    xmc_csr_free(r.X);
    same_as_segmented(b.p, b.n, XMC_SP_SPARSE);
    free(b.p);
}

/* '\n', ':' and ',' of [p, p + len) by a byte loop; then every count3
 * variant this CPU has must say the same. */
static void count3_check(const char *p, size_t len)
{
    static const char *const lv[] = {"ref", "avx2"};
    int64_t want[3] = {0, 0, 0}, got[3];
    for (size_t i = 0; i < len; i++) {
        want[0] += p[i] == '\n';
        want[1] += p[i] == ':';
        want[2] += p[i] == ',';
    }
    for (int v = 0; v < 2; v++) {
        xmc_count3_fn fn = xmc_count3_get(lv[v]);
        if (!fn)
            continue;
        fn(p, p + len, got);
        assert_memory_equal(got, want, sizeof want);
    }
    xmc_count3_best()(p, p + len, got);
    assert_memory_equal(got, want, sizeof want);
}

/* Pass 1's counts of '\n', ':' and ',': every variant against a byte loop,
 * on random text of every length up to 700 at every offset in 0..63
 * (ragged tails, the 255-step counter flush on the long ones). */
static void test_count3(void **state)
{
    (void)state;
    static const char alpha[] = "0123456789:,\n .e-\t";
    xmc_rng g;
    xmc_rng_seed(&g, 23, 0);
    size_t cap = 20000;
    char *buf = malloc(cap + 64);
    assert_non_null(buf);
    for (size_t i = 0; i < cap + 64; i++)
        buf[i] = alpha[xmc_rng_below(&g, sizeof alpha - 1)];
    for (size_t len = 0; len <= 700; len++)
        for (size_t off = 0; off < 64; off += 1 + len % 7)
            count3_check(buf + off, len);
    count3_check(buf, cap);
    free(buf);
}

/* The texts reader's passes (textscan.h), 16- and 32-byte variants, on
 * exact-size heap copies of random chunks at every length 0-700 and start
 * offset mod 64, and on 20,000 bytes (lane counters flushed; all '\n' too):
 * pass 1's count and flag against a byte loop, pass 2's offsets and
 * buffer against each other and against a byte loop; the one-pass variant
 * the same, with room for all offsets, half (then the chunk as read) and
 * none, and its restore (the buffer as read). */
static void tscan_check(const char *src, size_t len)
{
    static const char *const lv[] = {"ref", "avx2"};
    int64_t nl = 0;
    int odd = 0;
    for (size_t i = 0; i < len; i++) {
        nl += src[i] == '\n';
        odd |= src[i] == '\0' || src[i] == '\r';
    }
    odd |= xmc_utf8_invalid_at(src, len) != (size_t)-1;
    int64_t *want = malloc(((size_t)nl + 2) * sizeof *want);
    int64_t *got = malloc(((size_t)nl + 2) * sizeof *got);
    char *buf = malloc(len + 1);
    assert_true(want && got && buf);
    int64_t k = 0;
    for (size_t i = 0; i < len; i++)
        if (i == 0 || (src[i - 1] == '\n'))
            want[k++] = (int64_t)i;
    for (int v = 0; v < 2; v++) {
        xmc_tfill_fn fill;
        xmc_tscan_fn scan = xmc_tscan_get(lv[v], &fill);
        if (!scan)
            continue;
        memcpy(buf, src, len);
        xmc_tchunk c = {.b = 0, .e = len, .lines = -1, .odd = -1};
        scan(buf, &c);
        if (c.lines != nl || (c.odd != 0) != odd)
            fail_msg("%s: len %zu: %lld lines, odd %d; want %lld, %d", lv[v], len,
                     (long long)c.lines, c.odd, (long long)nl, odd);
        c.lines = 0;
        fill(buf, &c, got);
        assert_memory_equal(got, want, (size_t)k * sizeof *got);
        for (size_t i = 0; i < len; i++)
            if (buf[i] != (src[i] == '\n' ? '\0' : src[i]))
                fail_msg("%s: len %zu: byte %zu", lv[v], len, i);
        if (len && src[len - 1] != '\n' && buf[len] != '\0')
            fail_msg("%s: len %zu: no NUL after an open last line", lv[v], len);
    }
    /* The one-pass variant, with room for every offset, for half of them
     * (restored, as read) and for none. */
    for (int v = 0; v < 2; v++) {
        xmc_tscan1_fn one = xmc_tscan1_get(lv[v]);
        if (!one)
            continue;
        for (int room = 0; room < 3; room++) {
            int64_t cap = room == 0 ? k : room == 1 ? k / 2 : 0;
            int64_t *tmp = malloc(((size_t)cap + 1) * sizeof *tmp);
            assert_non_null(tmp);
            memcpy(buf, src, len);
            xmc_tchunk c = {.b = 0, .e = len, .lines = -1, .odd = -1, .tmp = tmp, .cap = cap};
            one(buf, &c);
            if (c.lines != nl || (c.odd != 0) != odd)
                fail_msg("%s one pass: len %zu: %lld lines, odd %d; want %lld, %d", lv[v], len,
                         (long long)c.lines, c.odd, (long long)nl, odd);
            if (cap < k) { /* did not fit: as read */
                assert_int_equal(c.nt, 0);
                assert_memory_equal(buf, src, len);
            } else {
                assert_int_equal(c.nt, k);
                assert_memory_equal(tmp, want, (size_t)k * sizeof *tmp);
                for (size_t i = 0; i < len; i++)
                    if (buf[i] != (src[i] == '\n' ? '\0' : src[i]))
                        fail_msg("%s one pass: len %zu: byte %zu", lv[v], len, i);
                xmc_tchunk_restore(buf, &c);
                assert_memory_equal(buf, src, len);
            }
            free(tmp);
        }
    }
    free(want);
    free(got);
    free(buf);
}

static void test_tscan(void **state)
{
    (void)state;
    static const char ascii[] = "abc def\nxyz 0123\n";
    static const char odd[] = "ab\n\r\0\xc3\xa9\xff\xe2\x82\xac\n";
    xmc_rng g;
    xmc_rng_seed(&g, 29, 0);
    size_t cap = 20000;
    char *a = malloc(cap + 64), *o = malloc(cap + 64);
    assert_true(a && o);
    for (size_t i = 0; i < cap + 64; i++) {
        a[i] = ascii[xmc_rng_below(&g, sizeof ascii - 1)];
        o[i] = xmc_rng_below(&g, 200) ? a[i] : odd[xmc_rng_below(&g, sizeof odd - 1)];
    }
    for (size_t len = 0; len <= 700; len++)
        for (size_t off = 0; off < 64; off += 1 + len % 13) {
            tscan_check(a + off, len);
            tscan_check(o + off, len);
        }
    tscan_check(a, cap);
    tscan_check(o, cap);
    memset(a, '\n', cap);
    tscan_check(a, cap);
    xmc_tfill_fn fill;
    assert_non_null(xmc_tscan_best(&fill));
    assert_non_null(fill);
    free(a);
    free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_bodies),
        cmocka_unit_test(test_block_boundaries),
        cmocka_unit_test(test_values_vs_strtof),
        cmocka_unit_test(test_entry_shapes),
        cmocka_unit_test(test_fast_row_edges),
        cmocka_unit_test(test_malformed_same_errors),
        cmocka_unit_test(test_large_and_error_deep),
        cmocka_unit_test(test_count3),
        cmocka_unit_test(test_tscan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
