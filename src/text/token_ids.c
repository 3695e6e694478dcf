/* Tokenised datasets: batch encoding (OpenMP) and the id cache file.
 *
 * A dataset is tokenised once into an (n x max_len) int32 id matrix plus
 * lengths; training epochs read rows from it and never re-tokenise. The
 * cache file is that matrix behind a 64-byte header, so mapping it is O(1)
 * and the pages are shared with the page cache (a 1M-row, 128-token cache is
 * 512 MB of ids that need not be resident at once).
 *
 * Layout (little-endian; x86 and arm64 hosts are):
 *   0  "XMCTOKID"         8  u32 version (1)   12 u32 max_len
 *   16 i64 n              24 i32 pad_id        28 u32 fingerprint
 *   32 u32 crc32(payload) 36..63 zero
 *   64 lens[n] (i32), then ids[n * max_len] (i32)
 *
 * Threading: encode runs rows in parallel (dynamic schedule: text lengths
 * vary); each row is written by one thread, so the result does not depend
 * on the thread count. Progress is reported between chunks by the calling
 * thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xmc/tokenizer.h"

#define TOK_MAGIC "XMCTOKID"
#define TOK_VERSION 1u
#define TOK_HEADER 64

void xmc_token_ids_free(xmc_token_ids *ti)
{
    if (!ti)
        return;
    if (ti->map) {
        munmap(ti->map, ti->map_len);
    } else {
        xmc_free(ti->ids);
        xmc_free(ti->lens);
    }
    xmc_free(ti);
}

typedef struct text_src {
    const xmc_texts *texts;
    const char *const *strs;
} text_src;

static int encode_all(const xmc_tokenizer *t, text_src src, int64_t n, int32_t max_len,
                      xmc_token_ids **out, xmc_error *err)
{
    *out = NULL;
    if (max_len < 2)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "max_len must be >= 2 ([CLS] and [SEP]), got %d",
                       (int)max_len);
    if (n < 0)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "negative row count");
    size_t cells;
    if (!xmc_mul_ok((size_t)n, (size_t)max_len, &cells) || !xmc_mul_ok(cells, 4, &cells))
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "%lld x %d ids overflow", (long long)n,
                       (int)max_len);
    xmc_token_ids *ti = xmc_calloc(1, sizeof *ti);
    if (!ti)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory");
    ti->n = n;
    ti->max_len = max_len;
    ti->pad_id = xmc_tokenizer_special_id(t, "pad");
    ti->fingerprint = xmc_tokenizer_fingerprint(t);
    ti->ids = xmc_malloc(cells ? cells : 4);
    ti->lens = xmc_malloc(n ? (size_t)n * 4 : 4);
    if (!ti->ids || !ti->lens) {
        xmc_token_ids_free(ti);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory for %zu bytes of token ids",
                       cells);
    }
    xmc_progress pr;
    xmc_progress_start(&pr, "tokenise", "texts", n);
    const int64_t chunk = 16384;
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        int64_t c1 = c0 + chunk < n ? c0 + chunk : n;
#pragma omp parallel for schedule(dynamic, 64)
        for (int64_t i = c0; i < c1; i++) {
            const char *s;
            size_t l;
            if (src.texts) {
                s = xmc_texts_get(src.texts, i);
                l = (size_t)(src.texts->offsets[i + 1] - src.texts->offsets[i] - 1);
            } else {
                s = src.strs[i] ? src.strs[i] : "";
                l = strlen(s);
            }
            ti->lens[i] = xmc_tokenizer_encode(t, s, l, max_len, ti->ids + i * max_len);
        }
        xmc_progress_update(&pr, c1, NULL);
    }
    if (n >= chunk)
        xmc_progress_finish(&pr, NULL);
    *out = ti;
    return XMC_OK;
}

int xmc_tokenizer_encode_texts(const xmc_tokenizer *t, const xmc_texts *texts, int32_t max_len,
                               xmc_token_ids **out, xmc_error *err)
{
    text_src src = {texts, NULL};
    return encode_all(t, src, texts->n, max_len, out, err);
}

int xmc_tokenizer_encode_strings(const xmc_tokenizer *t, const char *const *strs, int64_t n,
                                 int32_t max_len, xmc_token_ids **out, xmc_error *err)
{
    text_src src = {NULL, strs};
    return encode_all(t, src, n, max_len, out, err);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int xmc_token_ids_write(const xmc_token_ids *ti, const char *path, xmc_error *err)
{
    size_t nl = (size_t)ti->n * 4, ni = (size_t)ti->n * (size_t)ti->max_len * 4;
    uint32_t crc = xmc_crc32(0, ti->lens, nl);
    crc = xmc_crc32(crc, ti->ids, ni);
    unsigned char h[TOK_HEADER] = {0};
    memcpy(h, TOK_MAGIC, 8);
    put32(h + 8, TOK_VERSION);
    put32(h + 12, (uint32_t)ti->max_len);
    put32(h + 16, (uint32_t)((uint64_t)ti->n & 0xffffffffu));
    put32(h + 20, (uint32_t)((uint64_t)ti->n >> 32));
    put32(h + 24, (uint32_t)ti->pad_id);
    put32(h + 28, ti->fingerprint);
    put32(h + 32, crc);
    xmc_outfile o;
    int rc = xmc_outfile_open(&o, path, err);
    if (rc != XMC_OK)
        return rc;
    if (fwrite(h, 1, sizeof h, o.fp) != sizeof h || fwrite(ti->lens, 1, nl, o.fp) != nl ||
        fwrite(ti->ids, 1, ni, o.fp) != ni)
        o.failed = 1;
    return xmc_outfile_commit(&o, err);
}

int xmc_token_ids_map(const char *path, xmc_token_ids **out, xmc_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot stat: %s", strerror(errno));
    }
    size_t size = (size_t)sb.st_size;
    if (size < TOK_HEADER) {
        close(fd);
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "truncated: %zu bytes, header needs %d",
                       size, TOK_HEADER);
    }
    unsigned char *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED)
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot map: %s", strerror(e));
    int rc = XMC_OK;
    if (memcmp(m, TOK_MAGIC, 8) != 0) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "not a token-id cache (bad magic)");
        goto fail;
    }
    if (get32(m + 8) != TOK_VERSION) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "token-id cache version %u, expected %u",
                     get32(m + 8), TOK_VERSION);
        goto fail;
    }
    uint32_t max_len = get32(m + 12);
    uint64_t n = (uint64_t)get32(m + 16) | (uint64_t)get32(m + 20) << 32;
    size_t cells, want;
    if (max_len < 2 || max_len > (1u << 24) || n > ((uint64_t)1 << 40) ||
        !xmc_mul_ok((size_t)n, (size_t)max_len + 1, &cells) || !xmc_mul_ok(cells, 4, &want) ||
        want != size - TOK_HEADER) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0,
                     "size %zu does not match %llu rows x %u tokens (truncated?)", size,
                     (unsigned long long)n, max_len);
        goto fail;
    }
    if (xmc_crc32(0, m + TOK_HEADER, want) != get32(m + 32)) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "checksum mismatch");
        goto fail;
    }
    xmc_token_ids *ti = xmc_calloc(1, sizeof *ti);
    if (!ti) {
        rc = XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
        goto fail;
    }
    ti->n = (int64_t)n;
    ti->max_len = (int32_t)max_len;
    ti->pad_id = (int32_t)get32(m + 24);
    ti->fingerprint = get32(m + 28);
    ti->lens = (int32_t *)(void *)(m + TOK_HEADER);
    ti->ids = ti->lens + n;
    ti->map = m;
    ti->map_len = size;
    for (uint64_t i = 0; i < n; i++)
        if (ti->lens[i] < 2 || (uint32_t)ti->lens[i] > max_len) {
            xmc_token_ids_free(ti);
            return XMC_ERR(err, XMC_ECORRUPT, path, 0, "row %llu has length %d (max_len %u)",
                           (unsigned long long)i, (int)ti->lens[i], max_len);
        }
    *out = ti;
    return XMC_OK;
fail:
    munmap(m, size);
    return rc;
}

int xmc_tokenizer_encode_cached(const xmc_tokenizer *t, const xmc_texts *texts, int32_t max_len,
                                const char *cache, xmc_token_ids **out, int *hit,
                                xmc_error *err)
{
    *out = NULL;
    if (hit)
        *hit = 0;
    if (cache && xmc_file_exists(cache)) {
        xmc_token_ids *ti = NULL;
        xmc_error e2 = {0};
        /* A stale or damaged cache is rebuilt rather than reported. */
        if (xmc_token_ids_map(cache, &ti, &e2) == XMC_OK && ti->n == texts->n &&
            ti->max_len == max_len && ti->fingerprint == xmc_tokenizer_fingerprint(t)) {
            *out = ti;
            if (hit)
                *hit = 1;
            return XMC_OK;
        }
        xmc_token_ids_free(ti);
    }
    xmc_token_ids *ti;
    int rc = xmc_tokenizer_encode_texts(t, texts, max_len, &ti, err);
    if (rc != XMC_OK)
        return rc;
    if (cache && (rc = xmc_token_ids_write(ti, cache, err)) != XMC_OK) {
        xmc_token_ids_free(ti);
        return rc;
    }
    *out = ti;
    return XMC_OK;
}
