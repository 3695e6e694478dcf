/* The label-feature layout DIR/PREFIX (as in the Extreme Classification
 * Repository's LF-* datasets):
 *   PREFIX_X_Y.txt    labels, sparse text "N L" (xmc_csr_read_text)
 *   PREFIX_X.txt      point texts, one per line        (optional)
 *   PREFIX_X_Xf.txt   sparse features "N F"            (optional)
 *   DIR/Y.txt         label texts, one per label       (optional)
 * or, when PREFIX_X_Y.txt is absent, JSON lines:
 *   PREFIX.json       {"title":..., "content":..., "target_ind":[...],
 *                      "target_rel":[...] (optional soft targets)}
 *   DIR/lbl.json      {"title":..., "content":...} per label (gives L)
 * plus DIR/PREFIX_filter_labels.txt ("row col" per line; eval ignores these
 * pairs). Each file may be gzip-compressed (name + ".gz").
 *
 * JSON texts are "title content" (either may be missing) with newlines
 * turned into spaces, so they stay one line each.
 * Memory: the output + one line; the JSON path is single-threaded (cJSON).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "data/internal.h"

/* "{prefix}{suffix}" or "{dir(prefix)}/{name}" joined into a heap string. */
static char *join(const char *prefix, const char *suffix, int in_dir)
{
    size_t n = strlen(prefix) + strlen(suffix) + 4;
    char *p = xmc_malloc(n);
    if (!p)
        return NULL;
    if (!in_dir) {
        snprintf(p, n, "%s%s", prefix, suffix);
    } else {
        const char *s = strrchr(prefix, '/');
        if (s)
            snprintf(p, n, "%.*s/%s", (int)(s - prefix), prefix, suffix);
        else
            snprintf(p, n, "%s", suffix);
    }
    return p;
}

/* Existing path for base or base.gz as a heap string, or NULL (and *oom). */
static char *find(const char *prefix, const char *suffix, int in_dir, int *oom)
{
    char *b = join(prefix, suffix, in_dir);
    if (!b) {
        *oom = 1;
        return NULL;
    }
    const char *f = xmc_find_gz(b);
    char *r = f ? xmc_strdup(f) : NULL;
    if (f && !r)
        *oom = 1;
    xmc_free(b);
    return r;
}

int xmc_lf_exists(const char *prefix)
{
    int oom = 0;
    char *a = find(prefix, "_X_Y.txt", 0, &oom), *b = a ? NULL : find(prefix, ".json", 0, &oom);
    int ok = a || b;
    xmc_free(a);
    xmc_free(b);
    return ok || oom; /* on OOM let the loader report it */
}

/* Growable text buffer / CSR builder for the JSON path. */
typedef struct grow {
    char *txt;
    size_t tlen, tcap;
    int64_t *off;
    int64_t n, ncap;
    int32_t *idx;
    float *val;
    int64_t nnz, vcap;
    int64_t *indptr; /* row counts; prefix-summed at the end */
} grow;

static int grow_text(grow *g, const char *a, const char *b)
{
    size_t la = a ? strlen(a) : 0, lb = b ? strlen(b) : 0, need = g->tlen + la + lb + 2;
    if (need > g->tcap) {
        size_t c = g->tcap ? g->tcap : 1 << 16;
        while (c < need)
            c *= 2;
        char *t = xmc_realloc(g->txt, c);
        if (!t)
            return -1;
        g->txt = t;
        g->tcap = c;
    }
    if (g->n + 2 > g->ncap) {
        int64_t c = g->ncap ? g->ncap * 2 : 1024;
        int64_t *o = xmc_realloc(g->off, (size_t)c * sizeof *o);
        if (!o)
            return -1;
        g->off = o;
        int64_t *ip = xmc_realloc(g->indptr, (size_t)c * sizeof *ip);
        if (!ip)
            return -1;
        g->indptr = ip;
        g->ncap = c;
    }
    g->off[g->n] = (int64_t)g->tlen;
    char *w = g->txt + g->tlen;
    if (la)
        memcpy(w, a, la);
    if (la && lb)
        w[la++] = ' ';
    if (lb)
        memcpy(w + la, b, lb);
    size_t k = la + lb;
    for (size_t i = 0; i < k; i++)
        if (w[i] == '\n' || w[i] == '\r')
            w[i] = ' ';
    w[k] = '\0';
    g->tlen += k + 1;
    g->indptr[g->n + 1] = 0;
    g->n++;
    return 0;
}

static int grow_entry(grow *g, int32_t i, float v)
{
    if (g->nnz + 1 > g->vcap) {
        int64_t c = g->vcap ? g->vcap * 2 : 4096;
        int32_t *ii = xmc_realloc(g->idx, (size_t)c * sizeof *ii);
        if (!ii)
            return -1;
        g->idx = ii;
        float *vv = xmc_realloc(g->val, (size_t)c * sizeof *vv);
        if (!vv)
            return -1;
        g->val = vv;
        g->vcap = c;
    }
    g->idx[g->nnz] = i;
    g->val[g->nnz] = v;
    g->nnz++;
    return 0;
}

static void grow_free(grow *g)
{
    xmc_free(g->txt);
    xmc_free(g->off);
    xmc_free(g->idx);
    xmc_free(g->val);
    xmc_free(g->indptr);
    memset(g, 0, sizeof *g);
}

typedef struct lpair {
    int32_t i;
    float v;
} lpair;

static int lpair_cmp(const void *a, const void *b)
{
    int32_t x = ((const lpair *)a)->i, y = ((const lpair *)b)->i;
    return (x > y) - (x < y);
}

/* Sort one row's (label, value) pairs by label (qsort: O(n log n) even for a
 * crafted row). 1 = done, 0 = duplicate (*dup set), -1 = out of memory. */
static int sort_row_pairs(int32_t *idx, float *val, int64_t n, int32_t *dup)
{
    int sorted = 1;
    for (int64_t k = 1; k < n && sorted; k++)
        sorted = idx[k] > idx[k - 1];
    if (sorted)
        return 1;
    lpair *t = xmc_malloc((size_t)n * sizeof *t);
    if (!t)
        return -1;
    for (int64_t k = 0; k < n; k++)
        t[k] = (lpair){idx[k], val[k]};
    qsort(t, (size_t)n, sizeof *t, lpair_cmp);
    int ok = 1;
    for (int64_t k = 0; k < n; k++) {
        if (k > 0 && t[k].i == t[k - 1].i) {
            *dup = t[k].i;
            ok = 0;
            break;
        }
        idx[k] = t[k].i;
        val[k] = t[k].v;
    }
    xmc_free(t);
    return ok;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Read a JSON-lines file. With want_targets, target_ind/target_rel fill the
 * CSR part (ids < nlabels). Texts are validated as UTF-8. */
static int read_jsonl(const char *path, int want_targets, int64_t nlabels, xmc_texts **texts,
                      xmc_csr **Y, xmc_error *err)
{
    grow g = {0};
    xmc_lines *r = NULL;
    cJSON *j = NULL;
    int rc = xmc_lines_open(&r, path, err);
    if (rc)
        return rc;
    char *line;
    size_t len;
    int got;
#define JFAIL(code, ...)                                                              \
    do {                                                                              \
        rc = XMC_ERR(err, code, path, xmc_lines_lineno(r), __VA_ARGS__);              \
        goto out;                                                                     \
    } while (0)
    while ((got = xmc_lines_next(r, &line, &len, err)) == 1) {
        size_t s = 0;
        while (s < len && (line[s] == ' ' || line[s] == '\t'))
            s++;
        if (s == len)
            continue; /* blank line */
        size_t bad = xmc_utf8_invalid_at(line, len);
        if (bad != (size_t)-1)
            JFAIL(XMC_EFORMAT, "invalid UTF-8 at column %zu (byte 0x%02x)", bad + 1,
                  (unsigned char)line[bad]);
        int prc = xmc_json_parse(line, len, &j);
        if (prc == XMC_ENOMEM)
            JFAIL(XMC_ENOMEM, "out of memory");
        if (prc != XMC_OK)
            JFAIL(XMC_EFORMAT, "expected a JSON object, found %s", xmc_excerpt(line, line + len));
        if (!cJSON_IsObject(j))
            JFAIL(XMC_EFORMAT, "expected a JSON object per line");
        if (grow_text(&g, jstr(j, "title"), jstr(j, "content")))
            JFAIL(XMC_ENOMEM, "out of memory");
        if (want_targets) {
            const cJSON *ti = cJSON_GetObjectItemCaseSensitive(j, "target_ind");
            const cJSON *tr = cJSON_GetObjectItemCaseSensitive(j, "target_rel");
            if (!cJSON_IsArray(ti))
                JFAIL(XMC_EFORMAT, "expected \"target_ind\": [label ids]");
            int nt = cJSON_GetArraySize(ti);
            if (tr && (!cJSON_IsArray(tr) || cJSON_GetArraySize(tr) != nt))
                JFAIL(XMC_EFORMAT, "\"target_rel\" must be an array as long as \"target_ind\"");
            int64_t e0 = g.nnz;
            const cJSON *it = ti->child, *rt = tr ? tr->child : NULL;
            for (; it; it = it->next, rt = rt ? rt->next : NULL) {
                double d = cJSON_IsNumber(it) ? it->valuedouble : -1;
                if (d < 0 || d != floor(d) || d >= (double)nlabels)
                    JFAIL(XMC_EFORMAT,
                          "target_ind: expected label ids in [0, %lld) (lbl.json has %lld "
                          "labels), found %s",
                          (long long)nlabels, (long long)nlabels,
                          cJSON_IsNumber(it) ? "an out-of-range id" : "a non-number");
                float v = 1.0f;
                if (rt) {
                    if (!cJSON_IsNumber(rt) || !isfinite((float)rt->valuedouble))
                        JFAIL(XMC_EFORMAT, "target_rel: expected finite numbers");
                    v = (float)rt->valuedouble;
                }
                if (grow_entry(&g, (int32_t)d, v))
                    JFAIL(XMC_ENOMEM, "out of memory");
            }
            int32_t dup = -1;
            int srt = sort_row_pairs(g.idx + e0, g.val + e0, g.nnz - e0, &dup);
            if (srt < 0)
                JFAIL(XMC_ENOMEM, "out of memory");
            if (srt == 0)
                JFAIL(XMC_EFORMAT, "target_ind: duplicate label id %d", dup);
            g.indptr[g.n] = g.nnz - e0;
        }
        cJSON_Delete(j);
        j = NULL;
    }
    if (got < 0) {
        rc = err ? err->code : XMC_EFORMAT;
        goto out;
    }
    /* Hand the buffers over. */
    xmc_texts *t = xmc_calloc(1, sizeof *t);
    if (!t)
        JFAIL(XMC_ENOMEM, "out of memory");
    if (!g.off) { /* empty file */
        g.off = xmc_malloc(sizeof *g.off);
        g.txt = xmc_malloc(1);
        g.indptr = xmc_calloc(1, sizeof *g.indptr);
        if (!g.off || !g.txt || !g.indptr) {
            xmc_free(t);
            JFAIL(XMC_ENOMEM, "out of memory");
        }
    }
    g.off[g.n] = (int64_t)g.tlen;
    if (want_targets) {
        xmc_csr *y;
        if ((rc = xmc_csr_create(&y, g.n, nlabels, g.nnz, 1, err))) {
            xmc_free(t);
            goto out;
        }
        for (int64_t i = 0; i < g.n; i++)
            y->indptr[i + 1] = y->indptr[i] + g.indptr[i + 1];
        if (g.nnz) {
            memcpy(y->indices, g.idx, (size_t)g.nnz * sizeof(int32_t));
            memcpy(y->values, g.val, (size_t)g.nnz * sizeof(float));
        }
        *Y = y;
    }
    t->n = g.n;
    t->offsets = g.off;
    t->data = g.txt;
    g.off = NULL;
    g.txt = NULL;
    *texts = t;
#undef JFAIL
out:
    cJSON_Delete(j);
    grow_free(&g);
    xmc_lines_close(r);
    return rc;
}

int xmc_filter_read(const char *path, int64_t n, int64_t L, xmc_csr **out, xmc_error *err)
{
    *out = NULL;
    xmc_lines *r = NULL;
    int64_t *rows = NULL, cap = 0, cnt = 0;
    int32_t *cols = NULL;
    int rc = xmc_lines_open(&r, path, err);
    if (rc)
        return rc;
    char *line;
    size_t len;
    int got;
    while ((got = xmc_lines_next(r, &line, &len, err)) == 1) {
        const char *p = line, *e = line + len;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        if (p == e || *p == '#')
            continue;
        int64_t a, b;
        const char *q = xmc_parse_uint(p, e, &a);
        const char *q2 = NULL;
        if (q && q < e && (*q == ' ' || *q == '\t')) {
            while (q < e && (*q == ' ' || *q == '\t'))
                q++;
            q2 = xmc_parse_uint(q, e, &b);
            while (q2 && q2 < e && (*q2 == ' ' || *q2 == '\t'))
                q2++;
        }
        if (!q2 || q2 != e) {
            rc = XMC_ERR(err, XMC_EFORMAT, path, xmc_lines_lineno(r),
                         "expected 'row label' (two 0-based ids), found %s", xmc_excerpt(line, e));
            goto out;
        }
        if (a >= n || b >= L) {
            rc = XMC_ERR(err, XMC_EFORMAT, path, xmc_lines_lineno(r),
                         "pair (%lld, %lld) outside the %lld x %lld label matrix", (long long)a,
                         (long long)b, (long long)n, (long long)L);
            goto out;
        }
        if (cnt == cap) {
            int64_t c = cap ? cap * 2 : 1024;
            int64_t *nr = xmc_realloc(rows, (size_t)c * sizeof *nr);
            if (!nr)
                goto oom;
            rows = nr;
            int32_t *nc = xmc_realloc(cols, (size_t)c * sizeof *nc);
            if (!nc)
                goto oom;
            cols = nc;
            cap = c;
        }
        rows[cnt] = a;
        cols[cnt] = (int32_t)b;
        cnt++;
    }
    if (got < 0) {
        rc = err ? err->code : XMC_EFORMAT;
        goto out;
    }
    if ((rc = xmc_csr_from_triplets(n, L, cnt, rows, cols, NULL, out, err)) == XMC_OK)
        for (int64_t k = 0; k < xmc_csr_nnz(*out); k++)
            (*out)->values[k] = 1.0f; /* repeated pairs were summed */
    goto out;
oom:
    rc = XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
out:
    xmc_free(rows);
    xmc_free(cols);
    xmc_lines_close(r);
    return rc;
}

int xmc_lf_load(const char *prefix, xmc_dataset *ds, xmc_error *err)
{
    int oom = 0, rc = XMC_OK;
    xmc_prefetcher pf = {0};
    char *xy = find(prefix, "_X_Y.txt", 0, &oom);
    char *xt = NULL, *xf = NULL, *yt = NULL, *js = NULL, *lj = NULL, *fl = NULL;
    if (xy) {
        xt = find(prefix, "_X.txt", 0, &oom);
        xf = find(prefix, "_X_Xf.txt", 0, &oom);
        yt = find(prefix, "Y.txt", 1, &oom);
    } else {
        js = find(prefix, ".json", 0, &oom);
        lj = find(prefix, "lbl.json", 1, &oom);
    }
    fl = find(prefix, "_filter_labels.txt", 0, &oom);
    if (oom) {
        rc = XMC_ERR(err, XMC_ENOMEM, prefix, 0, "out of memory");
        goto out;
    }
    if (xy) {
        /* Cold cache: the disk streams X_Xf and the texts while X_Y parses. */
        const char *files[4] = {xy, xf, xt, yt};
        xmc_prefetch_start(&pf, files, 4);
        if ((rc = xmc_csr_read_text(xy, &ds->Y, err)))
            goto out;
        if (xf && (rc = xmc_csr_read_text(xf, &ds->X, err)))
            goto out;
        if (xt && (rc = xmc_texts_read(xt, &ds->texts, err)))
            goto out;
        if (yt && (rc = xmc_texts_read(yt, &ds->label_texts, err)))
            goto out;
        if (ds->X && ds->X->nrows != ds->Y->nrows) {
            rc = XMC_ERR(err, XMC_EFORMAT, xf, 1, "%lld rows, but %s has %lld",
                         (long long)ds->X->nrows, xy, (long long)ds->Y->nrows);
            goto out;
        }
        if (ds->texts && ds->texts->n != ds->Y->nrows) {
            rc = XMC_ERR(err, XMC_EFORMAT, xt, ds->texts->n + 1,
                         "%lld texts, but %s has %lld rows", (long long)ds->texts->n, xy,
                         (long long)ds->Y->nrows);
            goto out;
        }
        if (ds->label_texts && ds->label_texts->n != ds->Y->ncols) {
            rc = XMC_ERR(err, XMC_EFORMAT, yt, ds->label_texts->n + 1,
                         "%lld label texts, but %s has L = %lld", (long long)ds->label_texts->n,
                         xy, (long long)ds->Y->ncols);
            goto out;
        }
    } else {
        if (!lj) {
            rc = XMC_ERR(err, XMC_EIO, js, 0, "JSON-lines layout needs lbl.json[.gz] beside it");
            goto out;
        }
        if ((rc = read_jsonl(lj, 0, 0, &ds->label_texts, NULL, err)))
            goto out;
        if ((rc = read_jsonl(js, 1, ds->label_texts->n, &ds->texts, &ds->Y, err)))
            goto out;
    }
    if (fl && (rc = xmc_filter_read(fl, ds->Y->nrows, ds->Y->ncols, &ds->filter, err)))
        goto out;
    rc = xmc_dataset_finish(ds, prefix, err);
out:
    xmc_prefetch_join(&pf); /* before the path strings go */
    xmc_free(xy);
    xmc_free(xt);
    xmc_free(xf);
    xmc_free(yt);
    xmc_free(js);
    xmc_free(lj);
    xmc_free(fl);
    return rc;
}
