/* Number parsing/printing and whole-file input for the readers.
 *
 * Why a hand-written float parser: strtof is locale-aware (a program that
 * sets LC_NUMERIC=de_DE would read "0.5" as 0) and, through glibc's
 * multi-precision path, several times slower than the parse itself needs;
 * the sparse files are mostly values. We use Clinger's fast path ("How to
 * read floating point numbers accurately", PLDI 1990): a decimal m * 10^k
 * with m < 2^53 and |k| <= 22 is one correctly rounded double operation,
 * since m and 10^k are exact doubles. Rounding that double to float is a
 * second rounding, which is wrong only when the double lands exactly on a
 * midpoint between two floats (then the exact value may lie on either
 * side); we detect that case, and every case outside the fast path
 * (long mantissas, large exponents, subnormal results), and hand them to
 * strtof_l in the C locale. The tests compare against strtof on millions of
 * values.
 *
 * Input: files below 1 MiB are read into an exact-size heap buffer (so
 * sanitizers and fuzzers see any over-read); larger plain files are mmap'ed
 * read-only (no copy, pages shared with the cache); gzip files are inflated
 * by zlib into the heap, single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/internal.h"

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

const char *xmc_parse_float_slow(const char *s, const char *end, float *out)
{
    char buf[512];
    size_t n = (size_t)(end - s);
    if (n >= sizeof buf)
        return NULL; /* a 500-digit number is not a feature value */
    memcpy(buf, s, n);
    buf[n] = '\0';
    pthread_once(&c_locale_once, c_locale_init);
    if (!c_locale)
        return NULL;
    char *q;
    errno = 0;
    float f = strtof_l(buf, &q, c_locale);
    if (q != buf + n || !isfinite(f))
        return NULL;
    *out = f;
    return end;
}

const char *xmc_parse_uint(const char *p, const char *e, int64_t *out)
{
    int64_t v = 0;
    int n = 0;
    while (p < e && (unsigned)(*p - '0') < 10) {
        if (++n > 18)
            return NULL;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (n == 0)
        return NULL;
    *out = v;
    return p;
}

int xmc_format_float(char *buf, float v)
{
    if (v == 1.0f) {
        memcpy(buf, "1", 2);
        return 1;
    }
    int n = 0;
    for (int prec = 6; prec <= 9; prec++) {
        n = snprintf(buf, 32, "%.*g", prec, (double)v);
        float back;
        if (xmc_parse_float(buf, buf + n, &back) && back == v)
            break;
    }
    return n;
}

const char *xmc_excerpt(const char *p, const char *e)
{
    static _Thread_local char buf[48];
    size_t n = 0;
    if (p >= e)
        return "end of line";
    buf[n++] = '\'';
    while (p < e && n < 36) {
        unsigned char c = (unsigned char)*p++;
        buf[n++] = (c >= 32 && c < 127) ? (char)c : '?';
    }
    if (p < e) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n++] = '\'';
    buf[n] = '\0';
    return buf;
}

/* ------------------------------------------------------------ input */

#define SMALL_FILE (1u << 20)

int xmc_inbuf_open(xmc_inbuf *b, const char *path, xmc_error *err)
{
    return xmc_inbuf_open_ex(b, path, 0, err);
}

int xmc_inbuf_open_ex(xmc_inbuf *b, const char *path, int heap, xmc_error *err)
{
    memset(b, 0, sizeof *b);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot open: %s", strerror(errno));
    struct stat st;
    unsigned char magic[2] = {0, 0};
    int rc = XMC_OK;
    if (fstat(fd, &st) != 0) {
        rc = XMC_ERR(err, XMC_EIO, path, 0, "cannot stat: %s", strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = XMC_ERR(err, XMC_EIO, path, 0, "is a directory, expected a file");
        goto out;
    }
    if (!S_ISREG(st.st_mode) || pread(fd, magic, 2, 0) != 2 || magic[0] != 0x1f ||
        magic[1] != 0x8b) {
        if (S_ISREG(st.st_mode) && (size_t)st.st_size >= SMALL_FILE && !heap) {
            void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                rc = XMC_ERR(err, XMC_EIO, path, 0, "cannot map: %s", strerror(errno));
                goto out;
            }
            madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL | MADV_WILLNEED);
            b->map = p;
            b->map_len = (size_t)st.st_size;
            b->data = p;
            b->len = (size_t)st.st_size;
            goto out;
        }
        if (S_ISREG(st.st_mode)) {
            size_t n = (size_t)st.st_size;
            b->heap = xmc_malloc(n + 1);
            if (!b->heap) {
                rc = XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
                goto out;
            }
            size_t got = 0;
            while (got < n) {
                ssize_t k = pread(fd, b->heap + got, n - got, (off_t)got);
                if (k < 0 && errno == EINTR)
                    continue;
                if (k <= 0) {
                    rc = XMC_ERR(err, XMC_EIO, path, 0, "read failed: %s",
                                 k < 0 ? strerror(errno) : "file shrank");
                    goto out;
                }
                got += (size_t)k;
            }
            b->heap[n] = '\0';
            b->data = b->heap;
            b->len = n;
            goto out;
        }
    }
    /* gzip (or a pipe): zlib inflates, single-threaded. */
    {
        char *d;
        size_t n;
        rc = xmc_read_file(path, &d, &n, err);
        if (rc == XMC_OK) {
            b->heap = d;
            b->data = d;
            b->len = n;
        }
    }
out:
    close(fd);
    if (rc != XMC_OK)
        xmc_inbuf_close(b);
    return rc;
}

void xmc_inbuf_close(xmc_inbuf *b)
{
    if (b->map)
        munmap(b->map, b->map_len);
    xmc_free(b->heap);
    memset(b, 0, sizeof *b);
}

const char *xmc_find_gz(const char *base)
{
    static _Thread_local char buf[4096];
    struct stat st;
    if (stat(base, &st) == 0 && !S_ISDIR(st.st_mode)) {
        snprintf(buf, sizeof buf, "%s", base);
        return buf;
    }
    if ((size_t)snprintf(buf, sizeof buf, "%s.gz", base) < sizeof buf && stat(buf, &st) == 0 &&
        !S_ISDIR(st.st_mode))
        return buf;
    return NULL;
}
