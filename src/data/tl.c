/* TEXTS+LABELS (AttentionXML style): TEXTS has one document per line,
 * LABELS as many lines of space-separated label names. Label ids are
 * positions in a vocabulary: the caller's (a model's, so that a test split
 * maps like its training split), else the sorted unique names in LABELS
 * (byte order, strcmp). Names missing from a given vocabulary are counted
 * in n_unknown_labels, dropped, and reported once through xmc_log.
 *
 * Memory: both files + a sorted index of the vocabulary (8 bytes/label) +
 * Y. Single-threaded: the label file is small next to the texts.
 */
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_sep(char c) { return c == ' ' || c == '\t'; }

/* Sorted unique tokens of all lines of t; the pointers point into t. */
static int collect_names(const xmc_texts *t, const char ***names, int64_t *n, xmc_error *err)
{
    int64_t cap = 0;
    for (int64_t i = 0; i < t->n; i++) {
        const char *p = xmc_texts_get(t, i);
        for (int in = 0; *p; p++) {
            cap += !in && !is_sep(*p);
            in = !is_sep(*p);
        }
    }
    const char **a = xmc_malloc(((size_t)cap + 1) * sizeof *a);
    if (!a)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
    int64_t k = 0;
    for (int64_t i = 0; i < t->n; i++) {
        char *p = t->data + t->offsets[i];
        while (*p) {
            while (is_sep(*p))
                *p++ = '\0'; /* tokenise in place: t is ours */
            if (*p)
                a[k++] = p;
            while (*p && !is_sep(*p))
                p++;
        }
    }
    qsort(a, (size_t)k, sizeof *a, cmp_str);
    int64_t u = 0;
    for (int64_t i = 0; i < k; i++)
        if (u == 0 || strcmp(a[u - 1], a[i]))
            a[u++] = a[i];
    *names = a;
    *n = u;
    return XMC_OK;
}

int xmc_label_vocab_read(const char *labels_path, xmc_texts **out, xmc_error *err)
{
    *out = NULL;
    xmc_texts *t;
    int rc = xmc_texts_read(labels_path, &t, err);
    if (rc)
        return rc;
    const char **names = NULL;
    int64_t n = 0;
    if ((rc = collect_names(t, &names, &n, err)) == XMC_OK)
        rc = xmc_texts_create(names, n, out, err);
    xmc_free(names);
    xmc_texts_free(t);
    return rc;
}

static int cmp_idx(const void *a, const void *b, void *ctx)
{
    const xmc_texts *v = ctx;
    return strcmp(xmc_texts_get(v, *(const int64_t *)a), xmc_texts_get(v, *(const int64_t *)b));
}

int xmc_tl_load(const char *texts, const char *labels, const xmc_texts *vocab,
                xmc_dataset *ds, xmc_error *err)
{
    xmc_texts *lab = NULL, *own_vocab = NULL;
    int64_t *order = NULL, *rows = NULL;
    int32_t *cols = NULL;
    const char **names = NULL;
    int rc;
    if ((rc = xmc_texts_read(texts, &ds->texts, err)) ||
        (rc = xmc_texts_read(labels, &lab, err)))
        goto out;
    if (lab->n != ds->texts->n) {
        int64_t m = lab->n < ds->texts->n ? lab->n : ds->texts->n;
        rc = XMC_ERR(err, XMC_EFORMAT, lab->n < ds->texts->n ? labels : texts, (long)m + 1,
                     "%s has %lld lines but %s has %lld: expected one label line per text",
                     texts, (long long)ds->texts->n, labels, (long long)lab->n);
        goto out;
    }
    int64_t nnames;
    if (!vocab) {
        if ((rc = collect_names(lab, &names, &nnames, err)) ||
            (rc = xmc_texts_create(names, nnames, &own_vocab, err)))
            goto out;
        xmc_free(names);
        names = NULL;
        /* collect_names cut lab's lines at the separators: read it again. */
        xmc_texts_free(lab);
        lab = NULL;
        if ((rc = xmc_texts_read(labels, &lab, err)))
            goto out;
        vocab = own_vocab;
    }
    /* Sorted index of the vocabulary: ids stay its positions, whatever its
     * order; a duplicate name would make ids ambiguous. */
    order = xmc_malloc(((size_t)vocab->n + 1) * sizeof *order);
    if (!order) {
        rc = XMC_ERR(err, XMC_ENOMEM, labels, 0, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < vocab->n; i++)
        order[i] = i;
    qsort_r(order, (size_t)vocab->n, sizeof *order, cmp_idx, (void *)vocab);
    for (int64_t i = 1; i < vocab->n; i++)
        if (!strcmp(xmc_texts_get(vocab, order[i]), xmc_texts_get(vocab, order[i - 1]))) {
            rc = XMC_ERR(err, XMC_EINVAL, NULL, 0, "label vocabulary lists '%s' twice",
                         xmc_texts_get(vocab, order[i]));
            goto out;
        }
    int64_t cap = 0;
    for (int64_t i = 0; i < lab->n; i++)
        for (const char *p = xmc_texts_get(lab, i); *p; p++)
            cap += !is_sep(*p) && (p == xmc_texts_get(lab, i) || is_sep(p[-1]));
    rows = xmc_malloc(((size_t)cap + 1) * sizeof *rows);
    cols = xmc_malloc(((size_t)cap + 1) * sizeof *cols);
    if (!rows || !cols) {
        rc = XMC_ERR(err, XMC_ENOMEM, labels, 0, "out of memory");
        goto out;
    }
    int64_t nnz = 0, unknown = 0;
    long first_unknown_line = 0;
    char first_unknown[64] = "";
    for (int64_t i = 0; i < lab->n; i++) {
        char *p = lab->data + lab->offsets[i];
        while (*p) {
            while (is_sep(*p))
                p++;
            if (!*p)
                break;
            char *s = p;
            while (*p && !is_sep(*p))
                p++;
            char c = *p;
            *p = '\0';
            int64_t lo = 0, hi = vocab->n;
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                int cmp = strcmp(xmc_texts_get(vocab, order[mid]), s);
                if (cmp < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < vocab->n && !strcmp(xmc_texts_get(vocab, order[lo]), s)) {
                rows[nnz] = i;
                cols[nnz] = (int32_t)order[lo];
                nnz++;
            } else {
                if (!unknown++) {
                    snprintf(first_unknown, sizeof first_unknown, "%s", s);
                    first_unknown_line = (long)i + 1;
                }
            }
            *p = c;
        }
    }
    if (vocab->n > INT32_MAX) {
        rc = XMC_ERR(err, XMC_EINVAL, labels, 0, "vocabulary exceeds 32-bit label ids");
        goto out;
    }
    /* Repeated names in a line are one label: from_triplets sums them, so
     * reset the values to 1. */
    if ((rc = xmc_csr_from_triplets(lab->n, vocab->n, nnz, rows, cols, NULL, &ds->Y, err)))
        goto out;
    for (int64_t k = 0; k < xmc_csr_nnz(ds->Y); k++)
        ds->Y->values[k] = 1.0f;
    ds->n_unknown_labels = unknown;
    if (unknown)
        xmc_log(XMC_LOG_WARN,
                "%s: %lld label names are not in the vocabulary of %lld labels and were "
                "dropped (first: '%s' on line %ld)",
                labels, (long long)unknown, (long long)vocab->n, first_unknown,
                first_unknown_line);
    if (own_vocab) {
        ds->label_names = own_vocab;
        own_vocab = NULL;
    } else {
        for (int64_t i = 0; i < vocab->n; i++)
            order[i] = i; /* a copy in the vocabulary's own order */
        if ((rc = xmc_texts_select_rows(vocab, order, vocab->n, &ds->label_names, err)))
            goto out;
    }
    rc = xmc_dataset_finish(ds, labels, err);
out:
    xmc_free(names);
    xmc_free(order);
    xmc_free(rows);
    xmc_free(cols);
    xmc_texts_free(lab);
    xmc_texts_free(own_vocab);
    return rc;
}
