/* HNSW file format: save, load (read or mmap) and validation.
 *
 * Layout (little-endian, as the machine writes it; a byte-order mark
 * rejects a foreign file):
 *   [0, 256)       header: magic "XMCHNSW\0", version, sizes, parameters,
 *                  entry point, section offsets, CRC-32 of the sections and
 *                  CRC-32 of the header itself
 *   off_vec        vec     (n, stride) fp32 or bf16
 *   off_level      level   (n) uint8
 *   off_links0     links0  (n, 1 + M0) int32
 *   off_upoff      up_off  (n) int64
 *   off_up         up      (up_words) int32
 * Every section starts on a 64-byte boundary, so a read-only mmap of the
 * file is directly usable as the index's arrays (XMC_HNSW_LOAD_MMAP).
 *
 * Load checks magic, version, the header CRC, that parameters are valid,
 * that offsets match the layout the header implies and the file size (a
 * truncated file is caught before reading), the data CRC, and finally the
 * graph itself (levels, counts and ids in range, entry point, offsets), so
 * a damaged or hostile file yields XMC_ECORRUPT rather than a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/internal.h"

#define HDR_BYTES 256
#define BOM 0x01020304u

typedef struct hnsw_header {
    char magic[8];
    uint32_t version, bom;
    int64_t n, dim, stride, up_words;
    int32_t metric, storage, M, M0, ef_construction, ef_search;
    uint64_t seed;
    int32_t entry, max_level;
    uint64_t off_vec, off_level, off_links0, off_upoff, off_up, file_bytes;
    uint32_t crc_data, crc_header;
} hnsw_header;

_Static_assert(sizeof(hnsw_header) <= HDR_BYTES, "header fits its region");

static uint64_t align64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

/* Section sizes and offsets implied by the header's sizes. */
static void layout(hnsw_header *hd, size_t elem)
{
    uint64_t n = (uint64_t)hd->n;
    hd->off_vec = HDR_BYTES;
    hd->off_level = align64(hd->off_vec + n * (uint64_t)hd->stride * elem);
    hd->off_links0 = align64(hd->off_level + n);
    hd->off_upoff = align64(hd->off_links0 + n * 4u * (uint64_t)(1 + hd->M0));
    hd->off_up = align64(hd->off_upoff + n * 8u);
    hd->file_bytes = hd->off_up + (uint64_t)hd->up_words * 4u;
}

static uint32_t header_crc(const hnsw_header *hd)
{
    hnsw_header t = *hd;
    t.crc_header = 0;
    return xmc_crc32(0, &t, sizeof t);
}

typedef struct section {
    const void *p;
    uint64_t off, bytes;
} section;

static void sections(const xmc_hnsw *h, const hnsw_header *hd, section s[5])
{
    uint64_t n = (uint64_t)h->n;
    s[0] = (section){h->vec, hd->off_vec, n * (uint64_t)h->stride * h->elem};
    s[1] = (section){h->level, hd->off_level, n};
    s[2] = (section){h->links0, hd->off_links0, n * 4u * (uint64_t)(1 + h->M0)};
    s[3] = (section){h->up_off, hd->off_upoff, n * 8u};
    s[4] = (section){h->up, hd->off_up, (uint64_t)h->up_words * 4u};
}

static uint32_t crc_big(uint32_t crc, const void *p, uint64_t n)
{
    const unsigned char *c = p;
    while (n > 0) { /* zlib's crc32 takes a uInt length */
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        crc = xmc_crc32(crc, c, chunk);
        c += chunk;
        n -= chunk;
    }
    return crc;
}

int xmc_hnsw_save(const xmc_hnsw *h, const char *path, xmc_error *err)
{
    if (!h || !path)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw save: NULL index or path");
    hnsw_header hd;
    memset(&hd, 0, sizeof hd);
    memcpy(hd.magic, HNSW_MAGIC, 8);
    hd.version = HNSW_VERSION;
    hd.bom = BOM;
    hd.n = h->n;
    hd.dim = h->dim;
    hd.stride = h->stride;
    hd.up_words = h->up_words;
    hd.metric = h->metric;
    hd.storage = h->storage;
    hd.M = h->M;
    hd.M0 = h->M0;
    hd.ef_construction = h->ef_construction;
    hd.ef_search = h->ef_search;
    hd.seed = h->seed;
    hd.entry = h->entry;
    hd.max_level = h->max_level;
    layout(&hd, h->elem);
    section s[5];
    sections(h, &hd, s);
    uint32_t crc = 0;
    for (int i = 0; i < 5; i++)
        crc = crc_big(crc, s[i].p, s[i].bytes);
    hd.crc_data = crc;
    hd.crc_header = header_crc(&hd);

    xmc_outfile o;
    int rc = xmc_outfile_open(&o, path, err);
    if (rc != XMC_OK)
        return rc;
    static const unsigned char zeros[HDR_BYTES];
    unsigned char head[HDR_BYTES];
    memset(head, 0, sizeof head);
    memcpy(head, &hd, sizeof hd);
    uint64_t pos = fwrite(head, 1, sizeof head, o.fp);
    for (int i = 0; i < 5; i++) {
        if (pos < s[i].off)
            pos += fwrite(zeros, 1, (size_t)(s[i].off - pos), o.fp);
        if (s[i].bytes > 0)
            pos += fwrite(s[i].p, 1, (size_t)s[i].bytes, o.fp);
    }
    if (pos != hd.file_bytes)
        o.failed = 1;
    return xmc_outfile_commit(&o, err);
}

void hnsw_unmap(void *map, size_t len)
{
    if (map)
        munmap(map, len);
}

/* The graph must be safe to walk: every id in range, counts within limits,
 * upper lists where the levels say. */
static int validate_graph(const xmc_hnsw *h, const char *path, xmc_error *err)
{
    int64_t w = 0;
    if (h->n == 0)
        return h->entry == -1 ? XMC_OK
                              : XMC_ERR(err, XMC_ECORRUPT, path, 0, "empty index with an entry point");
    if (h->entry < 0 || h->entry >= h->n || h->max_level < 0 || h->max_level > HNSW_MAX_LEVEL ||
        h->level[h->entry] != h->max_level)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "bad entry point %d (level %d)", h->entry,
                       h->max_level);
    for (int64_t i = 0; i < h->n; i++) {
        int l = h->level[i];
        if (l > h->max_level)
            return XMC_ERR(err, XMC_ECORRUPT, path, 0, "node %lld: level %d above the top %d",
                           (long long)i, l, h->max_level);
        if (l == 0 ? h->up_off[i] != -1 : h->up_off[i] != w)
            return XMC_ERR(err, XMC_ECORRUPT, path, 0, "node %lld: bad upper-layer offset",
                           (long long)i);
        w += (int64_t)l * (1 + h->M);
        if (w > h->up_words)
            return XMC_ERR(err, XMC_ECORRUPT, path, 0, "node %lld: upper layers past the end",
                           (long long)i);
        for (int lc = 0; lc <= l; lc++) {
            const int32_t *ls = hnsw_links(h, i, lc);
            int mx = lc == 0 ? h->M0 : h->M;
            if (ls[0] < 0 || ls[0] > mx)
                return XMC_ERR(err, XMC_ECORRUPT, path, 0, "node %lld layer %d: %d links (max %d)",
                               (long long)i, lc, ls[0], mx);
            for (int j = 1; j <= ls[0]; j++)
                if (ls[j] < 0 || ls[j] >= h->n || h->level[ls[j]] < lc)
                    return XMC_ERR(err, XMC_ECORRUPT, path, 0,
                                   "node %lld layer %d: bad neighbour %d", (long long)i, lc, ls[j]);
        }
    }
    if (w != h->up_words)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "upper layers: %lld words, expected %lld",
                       (long long)h->up_words, (long long)w);
    return XMC_OK;
}

int xmc_hnsw_load(xmc_hnsw **out, const char *path, int flags, xmc_error *err)
{
    xmc_hnsw *h = NULL;
    void *map = MAP_FAILED;
    int fd = -1, rc = XMC_OK;
    struct stat st;
    hnsw_header hd;
    if (!out || !path)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "hnsw load: NULL output or path");
    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot open: %s", strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = XMC_ERR(err, XMC_EIO, path, 0, "cannot stat: %s", strerror(errno));
        goto out;
    }
    if ((uint64_t)st.st_size < HDR_BYTES || pread(fd, &hd, sizeof hd, 0) != (ssize_t)sizeof hd) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "truncated: %lld bytes, no complete header",
                     (long long)st.st_size);
        goto out;
    }
    if (memcmp(hd.magic, HNSW_MAGIC, 8) != 0) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "not an xmc HNSW index (bad magic)");
        goto out;
    }
    if (hd.bom != BOM) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "written on a machine of other byte order");
        goto out;
    }
    if (hd.version != HNSW_VERSION) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "format version %u, this build reads %u",
                     hd.version, HNSW_VERSION);
        goto out;
    }
    if (header_crc(&hd) != hd.crc_header) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "header checksum mismatch");
        goto out;
    }
    xmc_hnsw_params p = {hd.metric, hd.storage, hd.M, hd.ef_construction, hd.ef_search, hd.seed};
    xmc_error perr = {0};
    if (hnsw_check_params(&p, hd.dim, &perr) != XMC_OK || hd.M0 != 2 * hd.M || hd.n < 0 ||
        hd.n > XMC_HNSW_MAX_SIZE || hd.up_words < 0 || hd.up_words > hd.n * (int64_t)HNSW_MAX_LEVEL * (1 + hd.M)) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "bad header: %s",
                     perr.code ? perr.msg : "sizes out of range");
        goto out;
    }
    rc = xmc_hnsw_create(&h, hd.dim, &p, err);
    if (rc != XMC_OK)
        goto out;
    hnsw_header want = hd;
    layout(&want, h->elem);
    if (hd.stride != h->stride || memcmp(&want.off_vec, &hd.off_vec, 6 * sizeof(uint64_t)) != 0) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "bad header: section layout");
        goto out;
    }
    if ((uint64_t)st.st_size != hd.file_bytes) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "truncated or padded: %lld bytes, expected %llu",
                     (long long)st.st_size, (unsigned long long)hd.file_bytes);
        goto out;
    }
    if (flags & XMC_HNSW_LOAD_MMAP) {
        map = mmap(NULL, (size_t)hd.file_bytes, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            rc = XMC_ERR(err, XMC_EIO, path, 0, "cannot mmap: %s", strerror(errno));
            goto out;
        }
        char *b = map;
        h->map = map;
        h->map_len = (size_t)hd.file_bytes;
        map = MAP_FAILED; /* owned by h now */
        h->vec = b + hd.off_vec;
        h->level = (uint8_t *)(b + hd.off_level);
        h->links0 = (int32_t *)(b + hd.off_links0);
        h->up_off = (int64_t *)(b + hd.off_upoff);
        h->up = (int32_t *)(b + hd.off_up);
        h->cap = hd.n;
        h->up_cap = hd.up_words;
    } else {
        rc = hnsw_reserve(h, hd.n > 0 ? hd.n : 1, hd.up_words > 0 ? hd.up_words : 1, err);
        if (rc != XMC_OK)
            goto out;
    }
    h->n = hd.n;
    h->up_words = hd.up_words;
    h->entry = hd.entry;
    h->max_level = hd.max_level;
    section s[5];
    sections(h, &hd, s);
    uint32_t crc = 0;
    for (int i = 0; i < 5; i++) {
        if (!h->map) {
            uint64_t got = 0;
            while (got < s[i].bytes) {
                ssize_t r = pread(fd, (char *)s[i].p + got, (size_t)(s[i].bytes - got),
                                  (off_t)(s[i].off + got));
                if (r <= 0) {
                    rc = XMC_ERR(err, r < 0 ? XMC_EIO : XMC_ECORRUPT, path, 0,
                                 "read failed at byte %llu: %s",
                                 (unsigned long long)(s[i].off + got),
                                 r < 0 ? strerror(errno) : "unexpected end of file");
                    goto out;
                }
                got += (uint64_t)r;
            }
        }
        crc = crc_big(crc, s[i].p, s[i].bytes);
    }
    if (crc != hd.crc_data) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "data checksum mismatch (file damaged)");
        goto out;
    }
    rc = validate_graph(h, path, err);
    if (rc != XMC_OK)
        goto out;
    *out = h;
    h = NULL;
out:
    if (map != MAP_FAILED)
        munmap(map, (size_t)hd.file_bytes);
    if (fd >= 0)
        close(fd);
    xmc_hnsw_free(h);
    return rc;
}
