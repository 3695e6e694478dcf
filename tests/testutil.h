/* Shared test helpers (cmocka). */
#ifndef XMC_TESTUTIL_H
#define XMC_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "xmc/core.h"
#include "xmc/data.h"
#include "xmc/model.h"

/* A fresh per-test scratch directory (under $XMC_TMP or /tmp); returns a
 * static path valid for the process. */
const char *tu_tmpdir(void);
/* Path inside tu_tmpdir(); static buffer rotated over 8 slots. */
const char *tu_path(const char *name);
/* Write `text` to path (aborts the test on failure). */
void tu_write(const char *path, const char *text);
/* ../shared/<rel> if present, else NULL (callers skip()). */
const char *tu_shared(const char *rel);
/* Assert an xmc call failed with `code` and that the message mentions
 * `path_substr` and line `line` (line 0 = don't check). */
void tu_assert_error(int rc, const xmc_error *err, int code, const char *path_substr,
                     long line);
/* Max |a-b| / (atol + rtol |b|) over n; <= 1 means within tolerance. */
double tu_rel_err(const float *a, const float *b, size_t n, double atol, double rtol);
/* Run a shell command, return its exit status. */
int tu_system(const char *fmt, ...);
/* xmc_train_run(c, dir, resume) or fail the test with its message. */
void tu_train_ok(const xmc_train_config *c, const char *dir, int resume);
/* Path of the xmc binary ($XMC_BIN). */
const char *tu_xmc_bin(void);

/* TEXTS+LABELS files of 150 short news lines over 3 named labels (grain,
 * crude, money-fx; every 5th row also money-fx) in tu_tmpdir(); returns
 * the spec (static). */
const char *tu_news_spec(void);

/* Tagged label-feature data for the UniDEC / DEPSL tests: label l has the
 * text "tag<l>a tag<l>b"; a point's text holds one of the two words of each
 * of its 1-3 labels and a noise word. Labels >= TU_TAGGED_NSEEN are the
 * zero-shot ones: they have texts but no training point. */
#define TU_TAGGED_NL 60
#define TU_TAGGED_NSEEN 50
typedef struct tu_tagged {
    xmc_dataset ds; /* n, n_labels, Y, texts, label_texts; borrows the rest */
    xmc_texts *texts, *ltexts;
    xmc_csr *Y;
} tu_tagged;
/* n points over nl labels (TU_TAGGED_NSEEN for training, TU_TAGGED_NL for
 * test): rows use labels < TU_TAGGED_NSEEN, except every zero_shot_every-th
 * (when > 0), which uses only labels >= TU_TAGGED_NSEEN. vfirst / vrest:
 * the value of a row's first / other labels (1, 1 = binary). Free with
 * tu_tagged_free. */
void tu_tagged_make(tu_tagged *s, int64_t n, int nl, uint64_t seed, int zero_shot_every,
                    float vfirst, float vrest);
void tu_tagged_free(tu_tagged *s);
/* P@1 of the scores P against Y over the rows with a label; only_unseen:
 * only the zero-shot rows (first label >= TU_TAGGED_NSEEN). 0 if none. */
double tu_tagged_p_at_1(const xmc_csr *P, const xmc_csr *Y, int only_unseen);

#endif
