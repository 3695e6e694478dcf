/* File helpers: atomic output (temp + fsync + rename), a line reader over
 * zlib's gz interface (which reads uncompressed files transparently), whole
 * file reads, mkdir -p. */
#include "xmc/core.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

int xmc_outfile_open(xmc_outfile *o, const char *path, xmc_error *err)
{
    memset(o, 0, sizeof *o);
    size_t n = strlen(path) + 32;
    o->path = xmc_strdup(path);
    o->tmp_path = xmc_malloc(n);
    if (!o->path || !o->tmp_path) {
        xmc_outfile_abort(o);
        return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
    }
    snprintf(o->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    o->fp = fopen(o->tmp_path, "wb");
    if (!o->fp) {
        int e = errno;
        xmc_outfile_abort(o);
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot write: %s", strerror(e));
    }
    return XMC_OK;
}

int xmc_outfile_commit(xmc_outfile *o, xmc_error *err)
{
    int rc = XMC_OK;
    if (!o->fp) {
        rc = XMC_ERR(err, XMC_ESTATE, o->path, 0, "output file not open");
        goto out;
    }
    if (o->failed || ferror(o->fp) || fflush(o->fp) != 0 || fsync(fileno(o->fp)) != 0) {
        rc = XMC_ERR(err, XMC_EIO, o->path, 0, "write failed: %s", strerror(errno));
        goto out;
    }
    if (fclose(o->fp) != 0) {
        o->fp = NULL;
        rc = XMC_ERR(err, XMC_EIO, o->path, 0, "close failed: %s", strerror(errno));
        goto out;
    }
    o->fp = NULL;
    if (rename(o->tmp_path, o->path) != 0) {
        rc = XMC_ERR(err, XMC_EIO, o->path, 0, "rename failed: %s", strerror(errno));
        goto out;
    }
out:
    xmc_outfile_abort(o);
    return rc;
}

void xmc_outfile_abort(xmc_outfile *o)
{
    if (o->fp) {
        fclose(o->fp);
        o->fp = NULL;
    }
    if (o->tmp_path)
        unlink(o->tmp_path); /* harmless after a successful rename */
    xmc_free(o->tmp_path);
    xmc_free(o->path);
    o->tmp_path = o->path = NULL;
}

struct xmc_lines {
    gzFile gz;
    char *path;
    char *buf;
    size_t cap;
    long lineno;
    uint64_t bytes;
    char *chunk; /* raw read buffer */
    size_t chunk_len, chunk_pos;
    int eof;
};

#define CHUNK (1u << 18)

int xmc_lines_open(xmc_lines **out, const char *path, xmc_error *err)
{
    *out = NULL;
    xmc_lines *r = xmc_calloc(1, sizeof *r);
    if (!r)
        return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
    r->path = xmc_strdup(path);
    r->cap = 4096;
    r->buf = xmc_malloc(r->cap);
    r->chunk = xmc_malloc(CHUNK);
    if (!r->path || !r->buf || !r->chunk) {
        xmc_lines_close(r);
        return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
    }
    if (strcmp(path, "-") == 0)
        r->gz = gzdopen(dup(0), "rb");
    else
        r->gz = gzopen(path, "rb");
    if (!r->gz) {
        int e = errno;
        xmc_lines_close(r);
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot open: %s", strerror(e ? e : ENOENT));
    }
    gzbuffer(r->gz, CHUNK);
    *out = r;
    return XMC_OK;
}

static int refill(xmc_lines *r, xmc_error *err)
{
    int n = gzread(r->gz, r->chunk, CHUNK);
    if (n < 0) {
        int zerr;
        const char *m = gzerror(r->gz, &zerr);
        return XMC_ERR(err, zerr == Z_ERRNO ? XMC_EIO : XMC_EFORMAT, r->path,
                       r->lineno + 1, "read failed: %s",
                       zerr == Z_ERRNO ? strerror(errno) : m);
    }
    if (n == 0) {
        /* gzread returns 0 on a truncated gzip stream too; gzerror tells. */
        int zerr;
        const char *m = gzerror(r->gz, &zerr);
        if (zerr != Z_OK && zerr != Z_BUF_ERROR)
            return XMC_ERR(err, XMC_EFORMAT, r->path, r->lineno + 1, "read failed: %s", m);
        if (zerr == Z_BUF_ERROR)
            return XMC_ERR(err, XMC_EFORMAT, r->path, r->lineno + 1,
                           "truncated gzip stream");
        r->eof = 1;
    }
    r->chunk_len = (size_t)n;
    r->chunk_pos = 0;
    return XMC_OK;
}

int xmc_lines_next(xmc_lines *r, char **line, size_t *len, xmc_error *err)
{
    size_t n = 0;
    int any = 0;
    for (;;) {
        if (r->chunk_pos == r->chunk_len) {
            if (r->eof)
                break;
            if (refill(r, err) != XMC_OK)
                return -1;
            if (r->chunk_len == 0)
                break;
        }
        any = 1;
        char *s = r->chunk + r->chunk_pos;
        size_t avail = r->chunk_len - r->chunk_pos;
        char *nl = memchr(s, '\n', avail);
        size_t take = nl ? (size_t)(nl - s) : avail;
        if (n + take + 1 > r->cap) {
            size_t nc = r->cap;
            while (n + take + 1 > nc)
                nc *= 2;
            char *nb = xmc_realloc(r->buf, nc);
            if (!nb)
                return XMC_ERR(err, XMC_ENOMEM, r->path, r->lineno + 1,
                               "out of memory (line of %zu bytes)", n + take), -1;
            r->buf = nb;
            r->cap = nc;
        }
        memcpy(r->buf + n, s, take);
        n += take;
        r->chunk_pos += take + (nl ? 1 : 0);
        r->bytes += take + (nl ? 1 : 0);
        if (nl)
            break;
    }
    if (!any)
        return 0;
    if (n > 0 && r->buf[n - 1] == '\r')
        n--;
    r->buf[n] = '\0';
    r->lineno++;
    *line = r->buf;
    *len = n;
    return 1;
}

long xmc_lines_lineno(const xmc_lines *r) { return r->lineno; }
const char *xmc_lines_path(const xmc_lines *r) { return r->path; }
uint64_t xmc_lines_bytes(const xmc_lines *r) { return r->bytes; }

void xmc_lines_close(xmc_lines *r)
{
    if (!r)
        return;
    if (r->gz)
        gzclose(r->gz);
    xmc_free(r->path);
    xmc_free(r->buf);
    xmc_free(r->chunk);
    xmc_free(r);
}

int xmc_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int xmc_read_file(const char *path, char **data, size_t *len, xmc_error *err)
{
    *data = NULL;
    *len = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot open: %s", strerror(errno ? errno : ENOENT));
    size_t cap = 1 << 16, n = 0;
    char *b = xmc_malloc(cap);
    int rc = XMC_OK;
    if (!b) {
        rc = XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
        goto out;
    }
    for (;;) {
        if (cap - n < 2) {
            char *nb = xmc_realloc(b, cap * 2);
            if (!nb) {
                rc = XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
                goto out;
            }
            b = nb;
            cap *= 2;
        }
        unsigned want = (unsigned)((cap - n - 1) > (1u << 30) ? (1u << 30) : (cap - n - 1));
        int got = gzread(gz, b + n, want);
        if (got < 0) {
            int zerr;
            rc = XMC_ERR(err, XMC_EFORMAT, path, 0, "read failed: %s", gzerror(gz, &zerr));
            goto out;
        }
        if (got == 0) {
            int zerr;
            gzerror(gz, &zerr);
            if (zerr == Z_BUF_ERROR) {
                rc = XMC_ERR(err, XMC_EFORMAT, path, 0, "truncated gzip stream");
                goto out;
            }
            break;
        }
        n += (size_t)got;
    }
    b[n] = '\0';
    *data = b;
    *len = n;
    b = NULL;
out:
    xmc_free(b);
    gzclose(gz);
    return rc;
}

int xmc_mkdir_p(const char *path, xmc_error *err)
{
    char *p = xmc_strdup(path);
    if (!p)
        return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
    int rc = XMC_OK;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                rc = XMC_ERR(err, XMC_EIO, path, 0, "cannot create directory %s: %s", p,
                             strerror(errno));
                break;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    xmc_free(p);
    return rc;
}

uint32_t xmc_crc32(uint32_t c, const void *data, size_t n)
{
    const unsigned char *p = data;
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = (uint32_t)crc32(c, p, k);
        p += k;
        n -= k;
    }
    return c;
}
