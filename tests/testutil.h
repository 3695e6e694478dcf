/* Shared test helpers (cmocka). */
#ifndef XMC_TESTUTIL_H
#define XMC_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "xmc/core.h"

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
/* Path of the xmc binary ($XMC_BIN). */
const char *tu_xmc_bin(void);

#endif
