/* Datasets: spec recognition and loading, row selection, writing the
 * label-feature layout, sizes.
 *
 * Spec recognition (first match wins; documented in docs/data.md):
 *   1. the whole string is an existing file: PATH.xmcb is the binary cache
 *      (by its name), anything else an XC data file (plain or gzip);
 *   2. "A@B" with B an existing file and A a loadable spec, trying the last
 *      '@' first (paths may contain '@');
 *   3. "A+B" with A and B existing files: TEXTS+LABELS;
 *   4. DIR/PREFIX with PREFIX_X_Y.txt[.gz] or PREFIX.json[.gz] present.
 * Checking existence, not syntax, keeps every path usable: a file literally
 * named "a+b" is still read as a file.
 *
 * Memory: the dataset owns its parts; select_rows copies.
 */
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

int xmc_dataset_alloc(xmc_dataset **out, const char *spec, xmc_error *err)
{
    *out = NULL;
    xmc_dataset *ds = xmc_calloc(1, sizeof *ds);
    if (ds)
        ds->spec = xmc_strdup(spec ? spec : "");
    if (!ds || !ds->spec) {
        xmc_free(ds);
        return XMC_ERR(err, XMC_ENOMEM, spec, 0, "out of memory");
    }
    *out = ds;
    return XMC_OK;
}

void xmc_dataset_free(xmc_dataset *ds)
{
    if (!ds)
        return;
    xmc_csr_free(ds->X);
    xmc_csr_free(ds->Y);
    xmc_csr_free(ds->filter);
    xmc_texts_free(ds->texts);
    xmc_texts_free(ds->label_texts);
    xmc_texts_free(ds->label_names);
    xmc_free(ds->spec);
    xmc_free(ds);
}

size_t xmc_dataset_bytes(const xmc_dataset *ds)
{
    if (!ds)
        return 0;
    return sizeof *ds + xmc_csr_bytes(ds->X) + xmc_csr_bytes(ds->Y) +
           xmc_csr_bytes(ds->filter) + xmc_texts_bytes(ds->texts) +
           xmc_texts_bytes(ds->label_texts) + xmc_texts_bytes(ds->label_names);
}

int xmc_dataset_finish(xmc_dataset *ds, const char *where, xmc_error *err)
{
    if (!ds->Y)
        return XMC_ERR(err, XMC_EFORMAT, where, 0, "dataset has no labels");
    ds->n = ds->Y->nrows;
    ds->n_labels = ds->Y->ncols;
    ds->n_features = ds->X ? ds->X->ncols : 0;
    if (ds->X && ds->X->nrows != ds->n)
        return XMC_ERR(err, XMC_EFORMAT, where, 0, "features have %lld rows, labels %lld",
                       (long long)ds->X->nrows, (long long)ds->n);
    if (ds->texts && ds->texts->n != ds->n)
        return XMC_ERR(err, XMC_EFORMAT, where, 0, "%lld texts for %lld label rows",
                       (long long)ds->texts->n, (long long)ds->n);
    if (ds->label_texts && ds->label_texts->n != ds->n_labels)
        return XMC_ERR(err, XMC_EFORMAT, where, 0, "%lld label texts for L = %lld labels",
                       (long long)ds->label_texts->n, (long long)ds->n_labels);
    if (ds->label_names && ds->label_names->n != ds->n_labels)
        return XMC_ERR(err, XMC_EFORMAT, where, 0, "%lld label names for L = %lld labels",
                       (long long)ds->label_names->n, (long long)ds->n_labels);
    if (ds->filter && (ds->filter->nrows != ds->n || ds->filter->ncols != ds->n_labels))
        return XMC_ERR(err, XMC_EFORMAT, where, 0, "filter shape does not match the labels");
    return XMC_OK;
}

static int texts_copy(const xmc_texts *t, xmc_texts **out, xmc_error *err)
{
    *out = NULL;
    if (!t)
        return XMC_OK;
    int64_t *all = xmc_malloc(((size_t)t->n + 1) * sizeof *all);
    if (!all)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
    for (int64_t i = 0; i < t->n; i++)
        all[i] = i;
    int rc = xmc_texts_select_rows(t, all, t->n, out, err);
    xmc_free(all);
    return rc;
}

int xmc_dataset_select_rows(const xmc_dataset *ds, const int64_t *rows, int64_t n,
                            xmc_dataset **out, xmc_error *err)
{
    *out = NULL;
    xmc_dataset *o;
    int rc = xmc_dataset_alloc(&o, ds->spec, err);
    if (rc)
        return rc;
    if ((ds->X && (rc = xmc_csr_select_rows(ds->X, rows, n, &o->X, err))) ||
        (ds->Y && (rc = xmc_csr_select_rows(ds->Y, rows, n, &o->Y, err))) ||
        (ds->filter && (rc = xmc_csr_select_rows(ds->filter, rows, n, &o->filter, err))) ||
        (ds->texts && (rc = xmc_texts_select_rows(ds->texts, rows, n, &o->texts, err))) ||
        (rc = texts_copy(ds->label_texts, &o->label_texts, err)) ||
        (rc = texts_copy(ds->label_names, &o->label_names, err)) ||
        (rc = xmc_dataset_finish(o, ds->spec, err))) {
        xmc_dataset_free(o);
        return rc;
    }
    o->n_unknown_labels = ds->n_unknown_labels;
    *out = o;
    return XMC_OK;
}

/* Label names next to an XC data file, when one has exactly L lines:
 * {stem}_label_names.txt, {stem minus its last _part}_label_names.txt, or
 * label_names.txt in the same directory (the repository's and mldr's
 * naming). Cheap, and the names make predictions readable. */
static void xc_label_names(const char *path, xmc_dataset *ds)
{
    char dir[4096], stem[4096], cand[3][8300];
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) : 0;
    if (dl >= sizeof dir)
        return;
    memcpy(dir, path, dl);
    dir[dl] = '\0';
    snprintf(stem, sizeof stem, "%s", slash ? slash + 1 : path);
    char *dot = strchr(stem, '.');
    if (dot)
        *dot = '\0';
    const char *d = slash ? dir : ".";
    snprintf(cand[0], sizeof cand[0], "%s/%s_label_names.txt", d, stem);
    char *us = strrchr(stem, '_');
    if (us) {
        *us = '\0';
        snprintf(cand[1], sizeof cand[1], "%s/%s_label_names.txt", d, stem);
    } else {
        cand[1][0] = '\0';
    }
    snprintf(cand[2], sizeof cand[2], "%s/label_names.txt", d);
    for (int i = 0; i < 3; i++) {
        if (!cand[i][0] || !xmc_file_exists(cand[i]))
            continue;
        xmc_texts *t = NULL;
        xmc_error e = {0};
        if (xmc_texts_read(cand[i], &t, &e) == XMC_OK && t->n == ds->n_labels) {
            ds->label_names = t;
            return;
        }
        xmc_log(XMC_LOG_DEBUG, "%s: not used as label names (%s)", cand[i],
                e.code ? e.msg : "line count differs from L");
        xmc_texts_free(t);
    }
}

static int load_rec(const char *spec, const xmc_load_opts *opts, xmc_dataset **out,
                    int depth, xmc_error *err);

static int load_xc(const char *spec, xmc_dataset **out, xmc_error *err)
{
    xmc_dataset *ds;
    int rc = xmc_dataset_alloc(&ds, spec, err);
    if (rc)
        return rc;
    if ((rc = xmc_xc_read(spec, &ds->X, &ds->Y, err)) ||
        (rc = xmc_dataset_finish(ds, spec, err))) {
        xmc_dataset_free(ds);
        return rc;
    }
    xc_label_names(spec, ds);
    *out = ds;
    return XMC_OK;
}

static int is_file(const char *p) { return xmc_find_gz(p) && !strcmp(xmc_find_gz(p), p); }

static int load_split(const char *spec, size_t at, const xmc_load_opts *opts,
                      xmc_dataset **out, int depth, xmc_error *err)
{
    char *base = xmc_strdup(spec);
    if (!base)
        return XMC_ERR(err, XMC_ENOMEM, spec, 0, "out of memory");
    base[at] = '\0';
    const char *split = spec + at + 1;
    xmc_dataset *full = NULL;
    int64_t *rows = NULL, n = 0;
    int rc = load_rec(base, opts, &full, depth + 1, err);
    if (rc == XMC_OK)
        rc = xmc_split_read(split, full->n, &rows, &n, err);
    if (rc == XMC_OK)
        rc = xmc_dataset_select_rows(full, rows, n, out, err);
    if (rc == XMC_OK) {
        char *s = xmc_strdup(spec);
        if (!s) {
            xmc_dataset_free(*out);
            *out = NULL;
            rc = XMC_ERR(err, XMC_ENOMEM, spec, 0, "out of memory");
        } else {
            xmc_free((*out)->spec);
            (*out)->spec = s;
        }
    }
    xmc_free(base);
    xmc_free(rows);
    xmc_dataset_free(full);
    return rc;
}

static int load_rec(const char *spec, const xmc_load_opts *opts, xmc_dataset **out,
                    int depth, xmc_error *err)
{
    *out = NULL;
    size_t n = strlen(spec);
    if (n == 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "empty dataset spec");
    if (is_file(spec)) {
        if (n > 5 && !strcmp(spec + n - 5, ".xmcb"))
            return xmc_dataset_map_binary(spec, out, err);
        return load_xc(spec, out, err);
    }
    if (depth < 4)
        for (size_t i = n; i-- > 0;) {
            if (spec[i] != '@' || !is_file(spec + i + 1))
                continue;
            return load_split(spec, i, opts, out, depth, err);
        }
    for (size_t i = 0; i < n; i++) {
        if (spec[i] != '+' || !is_file(spec + i + 1))
            continue;
        char *a = xmc_strdup(spec);
        if (!a)
            return XMC_ERR(err, XMC_ENOMEM, spec, 0, "out of memory");
        a[i] = '\0';
        if (!is_file(a)) {
            xmc_free(a);
            continue;
        }
        xmc_dataset *ds;
        int rc = xmc_dataset_alloc(&ds, spec, err);
        if (rc == XMC_OK)
            rc = xmc_tl_load(a, spec + i + 1, opts ? opts->label_vocab : NULL, ds, err);
        xmc_free(a);
        if (rc) {
            xmc_dataset_free(ds);
            return rc;
        }
        *out = ds;
        return XMC_OK;
    }
    if (xmc_lf_exists(spec)) {
        xmc_dataset *ds;
        int rc = xmc_dataset_alloc(&ds, spec, err);
        if (rc == XMC_OK && (rc = xmc_lf_load(spec, ds, err)) != XMC_OK)
            xmc_dataset_free(ds);
        if (rc == XMC_OK)
            *out = ds;
        return rc;
    }
    return XMC_ERR(err, XMC_EIO, spec, 0,
                   "no dataset here: not a file, FILE@SPLIT, TEXTS+LABELS, nor DIR/PREFIX "
                   "(looked for %s_X_Y.txt[.gz] and %s.json[.gz])",
                   spec, spec);
}

int xmc_dataset_load(const char *spec, const xmc_load_opts *opts, xmc_dataset **out,
                     xmc_error *err)
{
    *out = NULL;
    xmc_dataset *ds;
    int rc = load_rec(spec, opts, &ds, 0, err);
    if (rc)
        return rc;
    if (opts && opts->need_features && !ds->X)
        rc = XMC_ERR(err, XMC_EINVAL, spec, 0, "this dataset has no sparse features");
    else if (opts && opts->need_texts && !ds->texts)
        rc = XMC_ERR(err, XMC_EINVAL, spec, 0, "this dataset has no point texts");
    if (rc) {
        xmc_dataset_free(ds);
        return rc;
    }
    *out = ds;
    return XMC_OK;
}

int xmc_dataset_write(const xmc_dataset *ds, const char *out_prefix, xmc_error *err)
{
    size_t n = strlen(out_prefix) + 32;
    char *p = xmc_malloc(n);
    if (!p)
        return XMC_ERR(err, XMC_ENOMEM, out_prefix, 0, "out of memory");
    int rc = XMC_OK;
    const char *slash = strrchr(out_prefix, '/');
    if (slash && slash != out_prefix) {
        snprintf(p, n, "%.*s", (int)(slash - out_prefix), out_prefix);
        if ((rc = xmc_mkdir_p(p, err)))
            goto out;
    }
    snprintf(p, n, "%s_X_Y.txt", out_prefix);
    if ((rc = xmc_csr_write_text(p, ds->Y, err)))
        goto out;
    if (ds->X) {
        snprintf(p, n, "%s_X_Xf.txt", out_prefix);
        if ((rc = xmc_csr_write_text(p, ds->X, err)))
            goto out;
    }
    if (ds->texts) {
        snprintf(p, n, "%s_X.txt", out_prefix);
        if ((rc = xmc_texts_write(p, ds->texts, err)))
            goto out;
    }
    const xmc_texts *lt = ds->label_texts ? ds->label_texts : ds->label_names;
    if (lt) {
        if (slash)
            snprintf(p, n, "%.*s/Y.txt", (int)(slash - out_prefix), out_prefix);
        else
            snprintf(p, n, "Y.txt");
        if ((rc = xmc_texts_write(p, lt, err)))
            goto out;
    }
    if (ds->filter) {
        snprintf(p, n, "%s_filter_labels.txt", out_prefix);
        xmc_outfile o;
        if ((rc = xmc_outfile_open(&o, p, err)))
            goto out;
        for (int64_t r = 0; r < ds->filter->nrows; r++)
            for (int64_t k = ds->filter->indptr[r]; k < ds->filter->indptr[r + 1]; k++)
                fprintf(o.fp, "%lld %d\n", (long long)r, ds->filter->indices[k]);
        rc = xmc_outfile_commit(&o, err);
    }
out:
    xmc_free(p);
    return rc;
}
