/* UTF-8 text lines: read (validating), write, copy, select.
 *
 * The whole file becomes the `data` buffer: each '\n' is replaced by the
 * line's NUL in place (a "\r\n" ending is compacted), so reading costs one
 * pass and no copy. Validation: an ASCII fast path (8 bytes at a time) by
 * hand, because utf8proc_iterate decodes one code point per call, which is
 * ~10x slower on the mostly-ASCII texts of this field; multi-byte sequences
 * are checked by utf8proc_iterate (overlongs, surrogates, > U+10FFFF).
 * Memory: file size + 8 bytes per line. Single-threaded (I/O-bound).
 */
#include <string.h>
#include <utf8proc.h>

#include "data/internal.h"

size_t xmc_utf8_invalid_at(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        if (!((unsigned char)p[i] & 0x80)) {
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        size_t left = n - i;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)p + i,
                                              (utf8proc_ssize_t)(left > 4 ? 4 : left), &cp);
        if (k <= 0)
            return i;
        i += (size_t)k;
    }
    return (size_t)-1;
}

int xmc_texts_from_buffer(const char *path, char *buf, size_t len, xmc_texts **out,
                          xmc_error *err)
{
    *out = NULL;
    int64_t n = 0;
    const char *nl = buf, *end = buf + len;
    while ((nl = memchr(nl, '\n', (size_t)(end - nl)))) {
        n++;
        nl++;
    }
    if (len > 0 && buf[len - 1] != '\n')
        n++;
    xmc_texts *t = xmc_calloc(1, sizeof *t);
    int64_t *off = xmc_malloc(((size_t)n + 1) * sizeof *off);
    if (!t || !off) {
        xmc_free(t);
        xmc_free(off);
        xmc_free(buf);
        return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
    }
    size_t r = 0, w = 0;
    for (int64_t i = 0; i < n; i++) {
        char *e = memchr(buf + r, '\n', len - r);
        size_t ll = e ? (size_t)(e - (buf + r)) : len - r;
        size_t nx = r + ll + (e ? 1 : 0);
        if (ll > 0 && buf[r + ll - 1] == '\r')
            ll--;
        const char *z = memchr(buf + r, '\0', ll);
        size_t bad = z ? (size_t)-1 : xmc_utf8_invalid_at(buf + r, ll);
        if (z || bad != (size_t)-1) {
            int rc = z ? XMC_ERR(err, XMC_EFORMAT, path, (long)i + 1,
                                 "NUL byte at column %zu: expected UTF-8 text",
                                 (size_t)(z - (buf + r)) + 1)
                       : XMC_ERR(err, XMC_EFORMAT, path, (long)i + 1,
                                 "invalid UTF-8 at column %zu (byte 0x%02x)", bad + 1,
                                 (unsigned char)buf[r + bad]);
            xmc_free(t);
            xmc_free(off);
            xmc_free(buf);
            return rc;
        }
        if (w != r)
            memmove(buf + w, buf + r, ll);
        off[i] = (int64_t)w;
        w += ll;
        buf[w++] = '\0'; /* the spare byte covers a last line without '\n' */
        r = nx;
    }
    off[n] = (int64_t)w;
    t->n = n;
    t->offsets = off;
    t->data = buf;
    *out = t;
    return XMC_OK;
}

int xmc_texts_read(const char *path, xmc_texts **out, xmc_error *err)
{
    *out = NULL;
    /* Exact-size buffer for plain files (xmc_read_file grows by doubling:
     * up to 2x the file, kept for the texts' lifetime); one spare byte. */
    xmc_inbuf b;
    int rc = xmc_inbuf_open_ex(&b, path, 1, err);
    if (rc)
        return rc;
    char *d = b.heap;
    size_t n = b.len;
    b.heap = NULL;
    xmc_inbuf_close(&b);
    return xmc_texts_from_buffer(path, d, n, out, err);
}

int xmc_texts_write(const char *path, const xmc_texts *t, xmc_error *err)
{
    xmc_outfile o;
    int rc = xmc_outfile_open(&o, path, err);
    if (rc)
        return rc;
    for (int64_t i = 0; i < t->n; i++) {
        const char *s = xmc_texts_get(t, i);
        size_t k = (size_t)(t->offsets[i + 1] - t->offsets[i] - 1);
        if (memchr(s, '\n', k)) {
            xmc_outfile_abort(&o);
            return XMC_ERR(err, XMC_EINVAL, path, 0, "text %lld contains a newline",
                           (long long)i);
        }
        fwrite(s, 1, k, o.fp);
        fputc('\n', o.fp);
    }
    return xmc_outfile_commit(&o, err);
}

void xmc_texts_free(xmc_texts *t)
{
    if (!t)
        return;
    if (t->owner) {
        xmc_mapping_unref(t->owner);
    } else {
        xmc_free(t->offsets);
        xmc_free(t->data);
    }
    xmc_free(t);
}

size_t xmc_texts_bytes(const xmc_texts *t)
{
    if (!t)
        return 0;
    return sizeof *t + ((size_t)t->n + 1) * sizeof(int64_t) + (size_t)t->offsets[t->n];
}

static int texts_alloc(int64_t n, size_t bytes, xmc_texts **out, xmc_error *err)
{
    xmc_texts *t = xmc_calloc(1, sizeof *t);
    if (t) {
        t->offsets = xmc_malloc(((size_t)n + 1) * sizeof(int64_t));
        t->data = xmc_malloc(bytes + 1);
    }
    if (!t || !t->offsets || !t->data) {
        xmc_texts_free(t);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
    }
    t->n = n;
    *out = t;
    return XMC_OK;
}

int xmc_texts_create(const char *const *strs, int64_t n, xmc_texts **out, xmc_error *err)
{
    *out = NULL;
    size_t bytes = 0;
    for (int64_t i = 0; i < n; i++) {
        if (strchr(strs[i], '\n'))
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "text %lld contains a newline",
                           (long long)i);
        bytes += strlen(strs[i]) + 1;
    }
    xmc_texts *t;
    int rc = texts_alloc(n, bytes, &t, err);
    if (rc)
        return rc;
    size_t w = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t k = strlen(strs[i]) + 1;
        t->offsets[i] = (int64_t)w;
        memcpy(t->data + w, strs[i], k);
        w += k;
    }
    t->offsets[n] = (int64_t)w;
    *out = t;
    return XMC_OK;
}

int xmc_texts_select_rows(const xmc_texts *t, const int64_t *rows, int64_t n,
                          xmc_texts **out, xmc_error *err)
{
    *out = NULL;
    size_t bytes = 0;
    for (int64_t i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= t->n)
            return XMC_ERR(err, XMC_EINVAL, NULL, 0, "row %lld out of range [0, %lld)",
                           (long long)rows[i], (long long)t->n);
        bytes += (size_t)(t->offsets[rows[i] + 1] - t->offsets[rows[i]]);
    }
    xmc_texts *o;
    int rc = texts_alloc(n, bytes, &o, err);
    if (rc)
        return rc;
    size_t w = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t k = (size_t)(t->offsets[rows[i] + 1] - t->offsets[rows[i]]);
        o->offsets[i] = (int64_t)w;
        memcpy(o->data + w, t->data + t->offsets[rows[i]], k);
        w += k;
    }
    o->offsets[n] = (int64_t)w;
    *out = o;
    return XMC_OK;
}
