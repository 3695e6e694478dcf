/* xmc data: sparse matrices, texts, datasets and the formats users have.
 *
 * A dataset is features X (CSR, N x F, optional), labels Y (CSR, N x L, values
 * kept so soft targets are possible), point texts (optional), label texts
 * (optional) and label names (optional). Readers validate everything and
 * report the file, line and what was expected; they never crash on bad input.
 *
 * Dataset spec strings (see README "Data"):
 *   FILE               XC repository data file: "N F L" header, then
 *                      "l1,l2,... f:v f:v ..." per row (0-based ids).
 *   FILE@SPLIT         rows of FILE listed (1-based, first column) in SPLIT.
 *   DIR/trn, DIR/tst   label-feature layout: {prefix}_X_Y.txt, {prefix}_X.txt,
 *                      {prefix}_X_Xf.txt, DIR/Y.txt, or {prefix}.json + lbl.json
 *                      (any of them .gz).
 *   TEXTS+LABELS       one document per line + space-separated label names.
 *   PATH.xmcb          the memory-mapped binary cache written by convert.
 *   SPEC@SPLIT         (any spec) rows listed 1-based in SPLIT's first column.
 * How a spec is recognised (first match wins; docs/data.md):
 *   1. the whole string names an existing file: FILE (or PATH.xmcb);
 *   2. 'A@B' where B is a file and A a spec (the last such '@');
 *   3. 'A+B' where both A and B are files;
 *   4. DIR/PREFIX when PREFIX_X_Y.txt[.gz] or PREFIX.json[.gz] exists.
 *
 * Ownership: every object returned is freed with its own _free call; the
 * dataset owns its matrices and texts. Readers are safe to call from several
 * threads at once (they parse with OpenMP inside).
 */
#ifndef XMC_DATA_H
#define XMC_DATA_H

#include "xmc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Compressed sparse rows. indptr has nrows+1 entries (int64: nnz may exceed
 * 2^31 at scale); indices are sorted and unique within a row. values may be
 * NULL for a pattern-only matrix (all ones); the readers always fill values.
 * When `owner` is non-NULL the arrays live inside a memory mapping (binary
 * cache, private copy-on-write: writes stay in memory, the file never
 * changes) and must not be xmc_free'd or realloc'ed; xmc_csr_free handles it. */
typedef struct xmc_csr {
    int64_t nrows, ncols;
    int64_t *indptr;  /* (nrows + 1) */
    int32_t *indices; /* (nnz) */
    float *values;    /* (nnz) or NULL */
    void *owner;      /* mapping that owns the arrays, or NULL (heap) */
} xmc_csr;

static inline int64_t xmc_csr_nnz(const xmc_csr *m) { return m->indptr[m->nrows]; }

/* Allocate an nrows x ncols matrix with room for nnz entries (indptr zeroed;
 * values allocated when with_values). Free with xmc_csr_free. */
int xmc_csr_create(xmc_csr **out, int64_t nrows, int64_t ncols, int64_t nnz,
                   int with_values, xmc_error *err);
void xmc_csr_free(xmc_csr *m);
/* Rows `rows[0..n)` of m as a new matrix (rows may repeat). */
int xmc_csr_select_rows(const xmc_csr *m, const int64_t *rows, int64_t n,
                        xmc_csr **out, xmc_error *err);
/* Transpose (CSC of m as CSR), values kept. */
int xmc_csr_transpose(const xmc_csr *m, xmc_csr **out, xmc_error *err);
/* Scale every row to unit L2 norm (rows of zeros stay zero). */
void xmc_csr_normalize_rows(xmc_csr *m);
size_t xmc_csr_bytes(const xmc_csr *m);
/* Build a CSR from (row, col, val) triplets in any order; duplicates are
 * summed; vals may be NULL (all ones). Ids are validated against the shape
 * (XMC_EINVAL). Free with xmc_csr_free. */
int xmc_csr_from_triplets(int64_t nrows, int64_t ncols, int64_t nnz, const int64_t *rows,
                          const int32_t *cols, const float *vals, xmc_csr **out,
                          xmc_error *err);
/* 1 when a and b have the same shape, pattern and values (NULL values = ones). */
int xmc_csr_equal(const xmc_csr *a, const xmc_csr *b);
/* Check the CSR invariants (indptr monotone from 0, indices in range, sorted
 * and unique per row, values finite): XMC_OK or XMC_EFORMAT naming `what`. */
int xmc_csr_check(const xmc_csr *m, const char *what, xmc_error *err);

/* Sparse matrix text format of the XC repository / label-feature layout:
 * header "N C", then per row "col:val col:val ..." (any order on input;
 * sorted on output). Used for {prefix}_X_Y.txt, {prefix}_X_Xf.txt and the
 * prediction (score-matrix) files. */
int xmc_csr_read_text(const char *path, xmc_csr **out, xmc_error *err);
int xmc_csr_write_text(const char *path, const xmc_csr *m, xmc_error *err);

/* Filter file of the XC repository (*_filter_labels.txt): one "row label"
 * pair of 0-based ids per line ('#' comments and blank lines allowed), the
 * (point, label) pairs evaluation must ignore. Returns an nrows x ncols
 * pattern matrix (values 1, repeated pairs merged); ids must lie inside. */
int xmc_filter_read(const char *path, int64_t nrows, int64_t ncols, xmc_csr **out,
                    xmc_error *err);

/* UTF-8 text lines: line i is data[offsets[i] .. offsets[i+1]-1), and each is
 * NUL-terminated inside data (offsets[i+1]-1 is the NUL). */
typedef struct xmc_texts {
    int64_t n;
    int64_t *offsets; /* (n + 1) */
    char *data;
    void *owner; /* mapping, or NULL */
} xmc_texts;

static inline const char *xmc_texts_get(const xmc_texts *t, int64_t i)
{
    return t->data + t->offsets[i];
}
int xmc_texts_read(const char *path, xmc_texts **out, xmc_error *err); /* validates UTF-8 */
int xmc_texts_write(const char *path, const xmc_texts *t, xmc_error *err);
void xmc_texts_free(xmc_texts *t);
/* Copy n NUL-terminated strings into a new xmc_texts (they must not contain
 * '\n'; not validated as UTF-8). Free with xmc_texts_free. */
int xmc_texts_create(const char *const *strs, int64_t n, xmc_texts **out, xmc_error *err);
/* The lines of a followed by those of b (either may be NULL) as a new
 * xmc_texts. */
int xmc_texts_concat(const xmc_texts *a, const xmc_texts *b, xmc_texts **out, xmc_error *err);
/* Lines rows[0..n) of t as a new xmc_texts (rows may repeat). */
int xmc_texts_select_rows(const xmc_texts *t, const int64_t *rows, int64_t n,
                          xmc_texts **out, xmc_error *err);
size_t xmc_texts_bytes(const xmc_texts *t);

/* Split file (XC repository *_trSplit.txt): 1-based row ids in the first
 * whitespace-separated column, each in [1, n_rows]; returned 0-based in
 * *rows (free with xmc_free). Empty lines are skipped. */
int xmc_split_read(const char *path, int64_t n_rows, int64_t **rows, int64_t *n,
                   xmc_error *err);

typedef struct xmc_dataset {
    int64_t n;           /* points */
    int64_t n_features;  /* F (0 without X) */
    int64_t n_labels;    /* L */
    xmc_csr *X;          /* N x F features, or NULL */
    xmc_csr *Y;          /* N x L labels (values: 1 or soft targets) */
    xmc_texts *texts;    /* N point texts, or NULL */
    xmc_texts *label_texts; /* L label texts, or NULL */
    xmc_texts *label_names; /* L label names (TEXTS+LABELS, XC names), or NULL */
    xmc_csr *filter;     /* N x L (row, label) pairs eval must ignore, or NULL */
    int64_t n_unknown_labels; /* label names in the data absent from the vocabulary */
    char *spec;          /* the spec it was loaded from */
} xmc_dataset;

typedef struct xmc_load_opts {
    /* TEXTS+LABELS: the label vocabulary (sorted names, e.g. from the model
     * or the training set). NULL: the sorted names found in the data. */
    const xmc_texts *label_vocab;
    int need_features; /* error if the dataset has no sparse features */
    int need_texts;    /* error if the dataset has no point texts */
} xmc_load_opts;

/* Load a dataset from a spec string (opts may be NULL). Free with
 * xmc_dataset_free. */
int xmc_dataset_load(const char *spec, const xmc_load_opts *opts, xmc_dataset **out,
                     xmc_error *err);
void xmc_dataset_free(xmc_dataset *ds);
size_t xmc_dataset_bytes(const xmc_dataset *ds);

/* Write a dataset in the label-feature layout: {out_prefix}_X_Y.txt, plus
 * {out_prefix}_X.txt (texts) and/or {out_prefix}_X_Xf.txt (features), and
 * label texts in dirname(out_prefix)/Y.txt (label names when there are no
 * label texts). Every file is written atomically. */
int xmc_dataset_write(const xmc_dataset *ds, const char *out_prefix, xmc_error *err);
/* Write / map the binary cache (magic, version, checksummed sections). */
int xmc_dataset_write_binary(const xmc_dataset *ds, const char *path, xmc_error *err);
int xmc_dataset_map_binary(const char *path, xmc_dataset **out, xmc_error *err);
/* Write X and Y as an XC repository data file ("N F L" header, then
 * "l1,l2 f:v ..." rows; label values are dropped). Needs ds->X, or writes
 * F = 0 and no features. */
int xmc_dataset_write_xc(const xmc_dataset *ds, const char *path, xmc_error *err);
/* Rows rows[0..n) of ds (X, Y, texts, filter; label texts/names shared by
 * copy) as a new dataset. */
int xmc_dataset_select_rows(const xmc_dataset *ds, const int64_t *rows, int64_t n,
                            xmc_dataset **out, xmc_error *err);
/* Label vocabulary of a TEXTS+LABELS labels file: the sorted unique names
 * (for --labels-from and a model's vocabulary). Free with xmc_texts_free. */
int xmc_label_vocab_read(const char *labels_path, xmc_texts **out, xmc_error *err);

#ifdef __cplusplus
}
#endif
#endif
