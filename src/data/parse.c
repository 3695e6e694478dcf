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
 * read-only (no copy, pages shared with the cache), or, when the caller
 * wants a buffer it may write and keep (texts), mapped privately and copied
 * in by MADV_POPULATE_WRITE (map_own), else read in 8 MiB blocks by all
 * threads into the heap; for files
 * of 16 MiB or more a helper thread queues readahead of the whole file
 * (xmc_prefetch_start), joined on close; whether the mapping was all in the
 * page cache at open (b->resident) tells the parser whether segments pay
 * (sparse.c). Gzip files are inflated by zlib
 * into the heap, single-threaded.
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

void xmc_advise_huge(void *p, size_t n)
{
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (!p || n < 2 * huge)
        return;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), z = ((uintptr_t)p + n) & ~(huge - 1);
    if (z > a)
        madvise((void *)a, z - a, MADV_HUGEPAGE); /* advice only: errors ignored */
}

#define SMALL_FILE (1u << 20)
#define PREFETCH_MIN ((size_t)16 << 20)
#define READ_BLOCK ((size_t)8 << 20)

/* Read [0, n) of fd into buf with one pread loop per 8 MiB block, blocks
 * spread over the threads: the copy out of the page cache and the page
 * faults on the fresh heap buffer run on every core, and a cold read keeps
 * several requests in flight. The first failing block's error wins. */
static int read_blocks(int fd, char *buf, size_t n, const char *path, xmc_error *err)
{
    int64_t nb = (int64_t)((n + READ_BLOCK - 1) / READ_BLOCK);
    int bad_errno = 0;
    int64_t bad = nb;
#pragma omp parallel for schedule(dynamic, 1) if (nb > 1)
    for (int64_t i = 0; i < nb; i++) {
        size_t got = (size_t)i * READ_BLOCK, end = got + READ_BLOCK < n ? got + READ_BLOCK : n;
        while (got < end) {
            ssize_t k = pread(fd, buf + got, end - got, (off_t)got);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
#pragma omp critical(xmc_read_blocks)
                if (i < bad) {
                    bad = i;
                    bad_errno = k < 0 ? errno : 0;
                }
                break;
            }
            got += (size_t)k;
        }
    }
    if (bad < nb)
        return XMC_ERR(err, XMC_EIO, path, 0, "read failed: %s",
                       bad_errno ? strerror(bad_errno) : "file shrank");
    return XMC_OK;
}

size_t xmc_inbuf_own_map_bytes = SMALL_FILE;

/* XMC_INBUF_OWN for a plain file of n > 0 bytes: a private writable mapping
 * of the file plus, past it, anonymous memory up to the end of the page
 * holding byte n (the spare byte), all copied in up front by
 * MADV_POPULATE_WRITE in 8 MiB blocks spread over the threads. The kernel
 * copies each page out of the page cache into a private page (breaking
 * copy-on-write) without zeroing it, where reading into a fresh heap buffer
 * had every page zeroed, then copied into, by two passes; and a populated
 * page is never faulted again, so later writes (the texts' NULs) cost
 * nothing extra. (Touching each page instead takes a fault per page, and
 * reading a page before writing it costs a second fault and was 10 times
 * slower here.) Populating also turns a file that shrinks under us into an
 * error rather than SIGBUS. Leaves b->map NULL, with XMC_OK, when the
 * kernel lacks MADV_POPULATE_WRITE, for the caller's heap fallback. With a
 * hook, each thread hands the block it has just populated to the caller's
 * first pass (xmc_own_hook), which so runs as the file arrives. */
static int map_own(xmc_inbuf *b, int fd, size_t n, const char *path, const xmc_own_hook *hook,
                   xmc_error *err)
{
#ifdef MADV_POPULATE_WRITE
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t flen = (n + pg - 1) / pg * pg, total = (n + pg) / pg * pg; /* n + 1 bytes */
    char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory (%zu bytes)", total);
    if (mmap(base, flen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED) {
        int e = errno;
        munmap(base, total);
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot map: %s", strerror(e));
    }
    if (n >= PREFETCH_MIN)
        xmc_prefetch_start(&b->pf, &path, 1);
    int64_t nb = (int64_t)((flen + READ_BLOCK - 1) / READ_BLOCK), bad = nb;
    int bad_errno = 0;
    if (hook && hook->begin(hook->ctx, base, n, READ_BLOCK, nb) != 0)
        hook = NULL;
#pragma omp parallel for schedule(dynamic, 1) if (nb > 1)
    for (int64_t i = 0; i < nb; i++) {
        size_t o = (size_t)i * READ_BLOCK, k = flen - o < READ_BLOCK ? flen - o : READ_BLOCK;
        int r;
        while ((r = madvise(base + o, k, MADV_POPULATE_WRITE)) != 0 && errno == EINTR)
            ;
        if (r != 0) {
            int e = errno;
#pragma omp critical(xmc_map_own)
            if (i < bad) {
                bad = i;
                bad_errno = e;
            }
        } else if (hook) {
            hook->block(hook->ctx, i); /* while the pages are in this core's cache */
        }
    }
    xmc_prefetch_join(&b->pf);
    if (bad < nb) {
        munmap(base, total);
        if (bad_errno == EINVAL)
            return XMC_OK; /* no MADV_POPULATE_WRITE: the heap path */
        return XMC_ERR(err, XMC_EIO, path, 0, "read failed: %s",
                       bad_errno == EFAULT ? "file shrank or I/O error" : strerror(bad_errno));
    }
    b->map = base;
    b->map_len = total;
    b->data = base;
    b->len = n;
    b->resident = 1;
    return XMC_OK;
#else
    (void)b, (void)fd, (void)n, (void)path, (void)hook, (void)err;
    return XMC_OK;
#endif
}

int xmc_inbuf_open(xmc_inbuf *b, const char *path, xmc_error *err)
{
    return xmc_inbuf_open_ex(b, path, XMC_INBUF_MAP, NULL, err);
}

int xmc_inbuf_open_ex(xmc_inbuf *b, const char *path, int mode, const xmc_own_hook *hook,
                      xmc_error *err)
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
        if (S_ISREG(st.st_mode) && (size_t)st.st_size >= SMALL_FILE && mode == XMC_INBUF_MAP) {
            void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                rc = XMC_ERR(err, XMC_EIO, path, 0, "cannot map: %s", strerror(errno));
                goto out;
            }
            b->resident = xmc_resident(p, (size_t)st.st_size);
            /* Page-fault readahead keeps ~256 KiB in flight (MADV_WILLNEED
             * reads only one window): queue the whole file from a helper. */
            madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
            if (!b->resident && (size_t)st.st_size >= PREFETCH_MIN)
                xmc_prefetch_start(&b->pf, &path, 1);
            b->map = p;
            b->map_len = (size_t)st.st_size;
            b->data = p;
            b->len = (size_t)st.st_size;
            goto out;
        }
        if (S_ISREG(st.st_mode) && mode == XMC_INBUF_OWN &&
            (size_t)st.st_size >= xmc_inbuf_own_map_bytes && st.st_size > 0) {
            rc = map_own(b, fd, (size_t)st.st_size, path, hook, err);
            if (rc != XMC_OK || b->map)
                goto out;
            /* MADV_POPULATE_WRITE unsupported (Linux < 5.14): the heap */
        }
        if (S_ISREG(st.st_mode)) {
            size_t n = (size_t)st.st_size;
            b->heap = xmc_malloc(n + 1);
            if (!b->heap) {
                rc = XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
                goto out;
            }
            xmc_advise_huge(b->heap, n);
            /* Parallel preads at scattered offsets defeat the kernel's
             * sequential readahead: queue the whole file from a helper. */
            if (n >= PREFETCH_MIN)
                xmc_prefetch_start(&b->pf, &path, 1);
            if ((rc = read_blocks(fd, b->heap, n, path, err)))
                goto out;
            b->heap[n] = '\0';
            b->data = b->heap;
            b->len = n;
            b->resident = 1;
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
            b->resident = 1;
        }
    }
out:
    close(fd);
    if (rc != XMC_OK)
        xmc_inbuf_close(b);
    return rc;
}

int xmc_resident(const void *p, size_t n)
{
    /* One page per MiB and the last one, not all: mincore looks each page
     * up in the page cache, and checking all 60,000 of a warm 248 MB file
     * took ~3 ms, serial, on every read. A missed hole (under 1 MiB, or
     * between the probes) only costs overlap, never correctness. */
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE), step = (size_t)1 << 20;
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(pg - 1), z = (uintptr_t)p + n;
    unsigned char v;
    if (n == 0)
        return 1;
    for (;; a += step) {
        if (a >= z - 1)
            a = (z - 1) & ~(uintptr_t)(pg - 1); /* the last page */
        if (mincore((void *)a, pg, &v) != 0 || !(v & 1))
            return 0;
        if (a == ((z - 1) & ~(uintptr_t)(pg - 1)))
            return 1;
    }
}

/* The helper reads each file to its end with read(2) into a scratch
 * block, as `cat` does, so the kernel's sequential readahead streams it
 * into the page cache ahead of the parse. Files are read one after the
 * other, in parse order: queueing them all at once let the I/O scheduler
 * serve them in disk order (the texts before X_Xf, which then waited for
 * its first page). An earlier helper queued POSIX_FADV_WILLNEED 2 MiB at
 * a time, at most 64 MiB ahead; on this VM's disk the reads it queued
 * arrived at 0.5-1.4 GB/s where `cat` streams 2 GB/s, and the cold 1M
 * read was 1.3 x `cat` against 1.1 x now (docs/data.md, "Prefetch
 * round"); the copy into the block costs ~0.02 CPU-s per 400 MB. */
#define PREFETCH_BLOCK ((size_t)256 << 10)

/* Whether the file looks all in the page cache (xmc_resident's probes):
 * then reading it would only copy it once more. */
static int cached(int fd, off_t size)
{
    void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return 0;
    int r = xmc_resident(m, (size_t)size);
    munmap(m, (size_t)size);
    return r;
}

static void prefetch_file(xmc_prefetcher *pf, const char *path, char *block)
{
    if (!path || !strcmp(path, "-"))
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return; /* the reader reports it */
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && !cached(fd, st.st_size)) {
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* advice only: errors ignored */
        ssize_t r;
        while (!atomic_load(&pf->stop) &&
               ((r = read(fd, block, PREFETCH_BLOCK)) > 0 || (r < 0 && errno == EINTR)))
            ;
    }
    close(fd);
}

static void *prefetch_main(void *arg)
{
    xmc_prefetcher *pf = arg;
    char *block = xmc_malloc(PREFETCH_BLOCK);
    for (int i = 0; block && i < pf->n && !atomic_load(&pf->stop); i++)
        prefetch_file(pf, pf->paths[i], block);
    xmc_free(block); /* no block: no prefetch, the parse reads on demand */
    return NULL;
}

void xmc_prefetch_start(xmc_prefetcher *pf, const char *const *paths, int n)
{
    memset(pf, 0, sizeof *pf);
    atomic_init(&pf->stop, 0);
    for (int i = 0; i < n && pf->n < XMC_PREFETCH_MAX; i++)
        if (paths[i])
            pf->paths[pf->n++] = paths[i];
    if (pf->n && pthread_create(&pf->th, NULL, prefetch_main, pf) == 0)
        pf->started = 1;
}

void xmc_prefetch_join(xmc_prefetcher *pf)
{
    atomic_store(&pf->stop, 1); /* the reads still queued complete anyway */
    if (pf->started)
        pthread_join(pf->th, NULL);
    pf->started = 0;
}

void xmc_inbuf_close(xmc_inbuf *b)
{
    xmc_prefetch_join(&b->pf);
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
