/* Error recording: the first error seen wins, so the origin (input path,
 * line, and library source location) survives propagation up the stack. */
#include "xmc/core.h"

#include <stdio.h>
#include <string.h>

int xmc_error_set(xmc_error *err, int code, const char *path, long line,
                  const char *src_file, int src_line, const char *fmt, ...)
{
    if (!err || err->code != XMC_OK)
        return code;
    err->code = code;
    err->line = line;
    err->src_file = src_file;
    err->src_line = src_line;
    snprintf(err->path, sizeof err->path, "%s", path ? path : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void xmc_error_clear(xmc_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

const char *xmc_strerror(int code)
{
    static const char *names[XMC_ECODE_COUNT] = {
        [XMC_OK] = "ok",
        [XMC_ENOMEM] = "out of memory",
        [XMC_EIO] = "input/output error",
        [XMC_EFORMAT] = "malformed input",
        [XMC_EINVAL] = "invalid argument",
        [XMC_ECORRUPT] = "corrupt or incompatible file",
        [XMC_EUNSUPPORTED] = "unsupported",
        [XMC_ESTATE] = "invalid state",
        [XMC_EDIST] = "distributed job failed",
    };
    if (code < 0 || code >= XMC_ECODE_COUNT)
        return "unknown error";
    return names[code];
}

const char *xmc_error_format(const xmc_error *err, char *buf, size_t n)
{
    if (!buf || n == 0)
        return buf;
    if (!err || err->code == XMC_OK) {
        snprintf(buf, n, "no error");
    } else if (err->path[0] && err->line > 0) {
        snprintf(buf, n, "%s:%ld: %s", err->path, err->line, err->msg);
    } else if (err->path[0]) {
        snprintf(buf, n, "%s: %s", err->path, err->msg);
    } else {
        snprintf(buf, n, "%s", err->msg[0] ? err->msg : xmc_strerror(err->code));
    }
    return buf;
}
