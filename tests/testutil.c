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
