#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *tu_tmpdir(void)
{
    static char dir[1024];
    if (dir[0])
        return dir;
    const char *base = getenv("XMC_TMP");
    if (base && *base) {
        snprintf(dir, sizeof dir, "%s", base);
        char cmd[2200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
        if (system(cmd) != 0)
            fail_msg("cannot create %s", dir);
    } else {
        snprintf(dir, sizeof dir, "/tmp/xmc_test_XXXXXX");
        if (!mkdtemp(dir))
            fail_msg("mkdtemp failed");
    }
    return dir;
}

const char *tu_path(const char *name)
{
    static char bufs[8][1200];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, 1200, "%s/%s", tu_tmpdir(), name);
    return b;
}

void tu_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

const char *tu_shared(const char *rel)
{
    static char bufs[4][1200];
    static int k;
    const char *base = getenv("XMC_SHARED");
    if (!base)
        base = "../shared";
    char *b = bufs[k++ & 3];
    snprintf(b, 1200, "%s/%s", base, rel);
    struct stat st;
    return stat(b, &st) == 0 ? b : NULL;
}

void tu_assert_error(int rc, const xmc_error *err, int code, const char *path_substr,
                     long line)
{
    char buf[1200];
    xmc_error_format(err, buf, sizeof buf);
    if (rc != code || err->code != code)
        fail_msg("expected code %d (%s), got rc=%d err=%d: %s", code, xmc_strerror(code), rc,
                 err->code, buf);
    if (path_substr && !strstr(err->path, path_substr))
        fail_msg("error path '%s' lacks '%s' (%s)", err->path, path_substr, buf);
    if (line > 0 && err->line != line)
        fail_msg("error line %ld, expected %ld (%s)", err->line, line, buf);
    if (!err->msg[0])
        fail_msg("empty error message");
}

double tu_rel_err(const float *a, const float *b, size_t n, double atol, double rtol)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]) / (atol + rtol * fabs((double)b[i]));
        if (!(e <= worst)) /* catches NaN */
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

int tu_system(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *tu_xmc_bin(void)
{
    const char *b = getenv("XMC_BIN");
    return b ? b : "xmc";
}

void tu_tagged_make(tu_tagged *s, int64_t n, int nl, uint64_t seed, int zero_shot_every,
                    float vfirst, float vrest)
{
    xmc_rng r;
    xmc_rng_seed(&r, seed, 0);
    char **strs = xmc_malloc(sizeof(char *) * (size_t)n);
    int64_t *rows = xmc_malloc(sizeof(int64_t) * (size_t)n * 3);
    int32_t *cols = xmc_malloc(sizeof(int32_t) * (size_t)n * 3);
    float *vals = xmc_malloc(sizeof(float) * (size_t)n * 3);
    int64_t nnz = 0;
    for (int64_t i = 0; i < n; i++) {
        strs[i] = xmc_malloc(256);
        int zs = zero_shot_every > 0 && i % zero_shot_every == 0;
        int nlab = 1 + (int)xmc_rng_below(&r, 3), at = 0, kept = 0;
        int32_t got[3];
        for (int j = 0; j < nlab; j++) {
            int32_t l = zs ? TU_TAGGED_NSEEN
                                 + (int32_t)xmc_rng_below(&r, TU_TAGGED_NL - TU_TAGGED_NSEEN)
                           : (int32_t)xmc_rng_below(&r, TU_TAGGED_NSEEN);
            int dup = 0;
            for (int q = 0; q < j; q++)
                dup |= got[q] == l;
            got[j] = dup ? -1 : l;
            if (dup)
                continue;
            rows[nnz] = i;
            cols[nnz] = l;
            vals[nnz++] = kept++ ? vrest : vfirst;
            at += snprintf(strs[i] + at, (size_t)(256 - at), "tag%d%c ", l,
                           xmc_rng_below(&r, 2) ? 'a' : 'b');
        }
        snprintf(strs[i] + at, (size_t)(256 - at), "noise%d", (int)xmc_rng_below(&r, 20));
    }
    xmc_error err = {0};
    assert_int_equal(xmc_texts_create((const char *const *)strs, n, &s->texts, &err), XMC_OK);
    assert_int_equal(xmc_csr_from_triplets(n, nl, nnz, rows, cols, vals, &s->Y, &err), XMC_OK);
    char *lt[TU_TAGGED_NL];
    for (int l = 0; l < nl; l++) {
        lt[l] = xmc_malloc(64);
        snprintf(lt[l], 64, "tag%da tag%db", l, l);
    }
    assert_int_equal(xmc_texts_create((const char *const *)lt, nl, &s->ltexts, &err), XMC_OK);
    for (int l = 0; l < nl; l++)
        xmc_free(lt[l]);
    for (int64_t i = 0; i < n; i++)
        xmc_free(strs[i]);
    xmc_free(strs);
    xmc_free(rows);
    xmc_free(cols);
    xmc_free(vals);
    memset(&s->ds, 0, sizeof s->ds);
    s->ds.n = n;
    s->ds.n_labels = nl;
    s->ds.Y = s->Y;
    s->ds.texts = s->texts;
    s->ds.label_texts = s->ltexts;
}

void tu_tagged_free(tu_tagged *s)
{
    xmc_texts_free(s->texts);
    xmc_texts_free(s->ltexts);
    xmc_csr_free(s->Y);
}

double tu_tagged_p_at_1(const xmc_csr *P, const xmc_csr *Y, int only_unseen)
{
    int64_t hit = 0, n = 0;
    for (int64_t i = 0; i < Y->nrows; i++) {
        if (Y->indptr[i + 1] == Y->indptr[i])
            continue;
        if (only_unseen && Y->indices[Y->indptr[i]] < TU_TAGGED_NSEEN)
            continue;
        n++;
        int32_t best = -1;
        float bs = -INFINITY;
        for (int64_t e = P->indptr[i]; e < P->indptr[i + 1]; e++)
            if (P->values[e] > bs) {
                bs = P->values[e];
                best = P->indices[e];
            }
        for (int64_t e = Y->indptr[i]; e < Y->indptr[i + 1]; e++)
            hit += Y->indices[e] == best;
    }
    return n ? (double)hit / (double)n : 0.0;
}

const char *tu_news_spec(void)
{
    static char spec[1000];
    const char *tx = tu_path("t.txt"), *lb = tu_path("l.txt");
    FILE *ft = fopen(tx, "w"), *fl = fopen(lb, "w");
    assert_non_null(ft);
    assert_non_null(fl);
    const char *words[3] = {"wheat grain harvest", "oil crude barrel", "bank rate interest"};
    const char *names[3] = {"grain", "crude", "money-fx"};
    for (int i = 0; i < 150; i++) {
        int k = i % 3;
        fprintf(ft, "report %d on %s news\n", i, words[k]);
        fprintf(fl, "%s%s\n", names[k], i % 5 == 0 ? " money-fx" : "");
    }
    fclose(ft);
    fclose(fl);
    snprintf(spec, sizeof spec, "%s+%s", tx, lb);
    return spec;
}

void tu_train_ok(const xmc_train_config *c, const char *dir, int resume)
{
    xmc_error err = {0};
    if (xmc_train_run(c, dir, resume, &err) != XMC_OK) {
        char buf[1200];
        fail_msg("train %s: %s", dir, xmc_error_format(&err, buf, sizeof buf));
    }
}
