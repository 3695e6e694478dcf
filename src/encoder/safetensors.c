/* safetensors reader: mmap + cJSON header parse + validation.
 *
 * Algorithm: read the 8-byte header length, parse exactly that many bytes of
 * JSON with cJSON_ParseWithLength (the header is not NUL-terminated), build
 * a table of tensors, sort it by data offset to reject overlaps, then by name
 * for binary-search lookup and duplicate detection. Everything a later read
 * touches is checked here, so lookups and conversions cannot go out of
 * bounds whatever the file says (the fuzz target holds us to that).
 *
 * Memory: the mapping (not resident until touched) + one small table and the
 * names. Threading: immutable after open.
 */
#include "xmc/safetensors.h"
#include "core/internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct xmc_safetensors {
    char *path;
    const unsigned char *base; /* whole file */
    size_t size;
    void *map;                 /* mmap base or NULL (caller buffer) */
    size_t map_len;
    xmc_st_tensor *t;          /* sorted by name */
    int64_t n;
    char *names;               /* all names, NUL-separated */
};

static const struct {
    const char *name;
    size_t size;
} dtypes[XMC_ST_DTYPE_COUNT] = {
    [XMC_ST_F32] = {"F32", 4}, [XMC_ST_F16] = {"F16", 2}, [XMC_ST_BF16] = {"BF16", 2},
    [XMC_ST_F64] = {"F64", 8}, [XMC_ST_I64] = {"I64", 8}, [XMC_ST_I32] = {"I32", 4},
    [XMC_ST_I16] = {"I16", 2}, [XMC_ST_I8] = {"I8", 1},   [XMC_ST_U8] = {"U8", 1},
    [XMC_ST_BOOL] = {"BOOL", 1},
};

const char *xmc_st_dtype_name(xmc_st_dtype d)
{
    return (unsigned)d < XMC_ST_DTYPE_COUNT ? dtypes[d].name : "?";
}

size_t xmc_st_dtype_size(xmc_st_dtype d)
{
    return (unsigned)d < XMC_ST_DTYPE_COUNT ? dtypes[d].size : 0;
}

float xmc_st_bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float xmc_st_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13); /* Inf / NaN (payload kept) */
    } else if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: value = man * 2^-24, exact in fp32 */
            float f = ldexpf((float)man, -24);
            memcpy(&u, &f, 4);
            u |= sign;
        }
    } else {
        u = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

void xmc_safetensors_close(xmc_safetensors *st)
{
    if (!st)
        return;
    if (st->map)
        munmap(st->map, st->map_len);
    xmc_free(st->t);
    xmc_free(st->names);
    xmc_free(st->path);
    xmc_free(st);
}

static int cmp_offset(const void *a, const void *b)
{
    const xmc_st_tensor *x = a, *y = b;
    const unsigned char *px = x->data, *py = y->data;
    if (px != py)
        return px < py ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const xmc_st_tensor *)a)->name, ((const xmc_st_tensor *)b)->name);
}

/* A JSON number that is a non-negative integer exactly representable. */
static int json_u64(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j))
        return 0;
    double d = j->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || d != floor(d))
        return 0;
    *out = (uint64_t)d;
    return 1;
}

static int parse(xmc_safetensors *st, xmc_error *err)
{
    const char *p = st->path;
    if (st->size < 8)
        return XMC_ERR(err, XMC_ECORRUPT, p, 0,
                       "expected an 8-byte header length, file has %zu bytes", st->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | st->base[i];
    if (hlen > st->size - 8)
        return XMC_ERR(err, XMC_ECORRUPT, p, 0,
                       "header length %llu exceeds the file (%zu bytes after the length)",
                       (unsigned long long)hlen, st->size - 8);
    if (hlen > XMC_ST_MAX_HEADER)
        return XMC_ERR(err, XMC_ECORRUPT, p, 0, "header length %llu exceeds the %u-byte limit",
                       (unsigned long long)hlen, XMC_ST_MAX_HEADER);
    const unsigned char *buf = st->base + 8 + hlen;
    size_t buf_len = st->size - 8 - (size_t)hlen;

    int rc = XMC_OK;
    cJSON *root = NULL;
    if (xmc_json_parse((const char *)st->base + 8, (size_t)hlen, &root) == XMC_ENOMEM) {
        rc = XMC_ERR(err, XMC_ENOMEM, p, 0, "out of memory");
        goto out;
    }
    if (!root || !cJSON_IsObject(root)) {
        rc = XMC_ERR(err, XMC_EFORMAT, p, 0, "header is not a JSON object");
        goto out;
    }
    int64_t n = 0;
    size_t names_len = 0;
    for (cJSON *e = root->child; e; e = e->next) {
        if (!e->string) {
            rc = XMC_ERR(err, XMC_EFORMAT, p, 0, "header entry without a name");
            goto out;
        }
        if (!strcmp(e->string, "__metadata__"))
            continue;
        n++;
        names_len += strlen(e->string) + 1;
    }
    st->t = xmc_calloc(n ? (size_t)n : 1, sizeof *st->t);
    st->names = xmc_malloc(names_len ? names_len : 1);
    if (!st->t || !st->names) {
        rc = XMC_ERR(err, XMC_ENOMEM, p, 0, "out of memory for %lld tensors", (long long)n);
        goto out;
    }
    char *np = st->names;
    for (cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (!cJSON_IsObject(e)) {
                rc = XMC_ERR(err, XMC_EFORMAT, p, 0, "__metadata__ is not an object");
                goto out;
            }
            continue;
        }
        const char *nm = e->string;
        xmc_st_tensor *t = &st->t[st->n];
        size_t l = strlen(nm) + 1;
        memcpy(np, nm, l);
        t->name = np;
        np += l;
        if (!cJSON_IsObject(e)) {
            rc = XMC_ERR(err, XMC_EFORMAT, p, 0, "tensor '%s': expected an object", nm);
            goto out;
        }
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of)) {
            rc = XMC_ERR(err, XMC_EFORMAT, p, 0,
                         "tensor '%s': expected string dtype, array shape and data_offsets",
                         nm);
            goto out;
        }
        int d = -1;
        for (int k = 0; k < XMC_ST_DTYPE_COUNT; k++)
            if (!strcmp(dt->valuestring, dtypes[k].name))
                d = k;
        if (d < 0) {
            rc = XMC_ERR(err, XMC_EFORMAT, p, 0, "tensor '%s': unknown dtype '%.32s'", nm,
                         dt->valuestring);
            goto out;
        }
        t->dtype = (xmc_st_dtype)d;
        int nd = cJSON_GetArraySize(sh);
        if (nd > XMC_ST_MAX_DIMS) {
            rc = XMC_ERR(err, XMC_EFORMAT, p, 0, "tensor '%s': %d dimensions (at most %d)", nm,
                         nd, XMC_ST_MAX_DIMS);
            goto out;
        }
        size_t numel = 1;
        int k = 0;
        for (const cJSON *s = sh->child; s; s = s->next, k++) {
            uint64_t v;
            if (!json_u64(s, &v) || !xmc_mul_ok(numel, (size_t)v, &numel)) {
                rc = XMC_ERR(err, XMC_EFORMAT, p, 0,
                             "tensor '%s': shape entry %d is not a valid size", nm, k);
                goto out;
            }
            t->shape[k] = (int64_t)v;
        }
        t->ndim = nd;
        uint64_t beg, end;
        if (cJSON_GetArraySize(of) != 2 || !json_u64(of->child, &beg) ||
            !json_u64(of->child->next, &end) || beg > end) {
            rc = XMC_ERR(err, XMC_EFORMAT, p, 0,
                         "tensor '%s': data_offsets must be [begin, end] with begin <= end", nm);
            goto out;
        }
        if (end > buf_len) {
            rc = XMC_ERR(err, XMC_ECORRUPT, p, 0,
                         "tensor '%s': data_offsets end %llu is past the data (%zu bytes)", nm,
                         (unsigned long long)end, buf_len);
            goto out;
        }
        size_t nbytes;
        if (!xmc_mul_ok(numel, dtypes[d].size, &nbytes) || nbytes != end - beg) {
            rc = XMC_ERR(err, XMC_ECORRUPT, p, 0,
                         "tensor '%s': shape x %s size does not match its %llu data bytes", nm,
                         dtypes[d].name, (unsigned long long)(end - beg));
            goto out;
        }
        t->numel = (int64_t)numel;
        t->nbytes = nbytes;
        t->data = buf + beg;
        st->n++;
    }
    qsort(st->t, (size_t)st->n, sizeof *st->t, cmp_offset);
    for (int64_t i = 1; i < st->n; i++) {
        const xmc_st_tensor *a = &st->t[i - 1], *b = &st->t[i];
        if ((const unsigned char *)a->data + a->nbytes > (const unsigned char *)b->data &&
            a->nbytes && b->nbytes) {
            rc = XMC_ERR(err, XMC_ECORRUPT, p, 0, "tensors '%s' and '%s' overlap", a->name,
                         b->name);
            goto out;
        }
    }
    qsort(st->t, (size_t)st->n, sizeof *st->t, cmp_name);
    for (int64_t i = 1; i < st->n; i++)
        if (!strcmp(st->t[i - 1].name, st->t[i].name)) {
            rc = XMC_ERR(err, XMC_EFORMAT, p, 0, "tensor '%s' appears twice", st->t[i].name);
            goto out;
        }
out:
    cJSON_Delete(root);
    return rc;
}

static int finish_open(xmc_safetensors *st, xmc_safetensors **out, xmc_error *err)
{
    int rc = parse(st, err);
    if (rc != XMC_OK) {
        xmc_safetensors_close(st);
        return rc;
    }
    *out = st;
    return XMC_OK;
}

int xmc_safetensors_open_buffer(const void *data, size_t len, const char *label,
                                xmc_safetensors **out, xmc_error *err)
{
    *out = NULL;
    xmc_safetensors *st = xmc_calloc(1, sizeof *st);
    if (!st || !(st->path = xmc_strdup(label ? label : "<buffer>"))) {
        xmc_free(st);
        return XMC_ERR(err, XMC_ENOMEM, label, 0, "out of memory");
    }
    st->base = data;
    st->size = len;
    return finish_open(st, out, err);
}

int xmc_safetensors_open(const char *path, xmc_safetensors **out, xmc_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return XMC_ERR(err, XMC_EIO, path, 0, "not a regular file");
    }
    xmc_safetensors *st = xmc_calloc(1, sizeof *st);
    if (!st || !(st->path = xmc_strdup(path))) {
        close(fd);
        xmc_free(st);
        return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory");
    }
    st->size = (size_t)sb.st_size;
    if (st->size > 0) {
        void *m = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            xmc_safetensors_close(st);
            return XMC_ERR(err, XMC_EIO, path, 0, "cannot map: %s", strerror(e));
        }
        st->map = m;
        st->map_len = st->size;
        st->base = m;
    }
    close(fd);
    return finish_open(st, out, err);
}

int64_t xmc_safetensors_count(const xmc_safetensors *st) { return st->n; }

const xmc_st_tensor *xmc_safetensors_get(const xmc_safetensors *st, int64_t i)
{
    return i >= 0 && i < st->n ? &st->t[i] : NULL;
}

const char *xmc_safetensors_path(const xmc_safetensors *st) { return st->path; }

const xmc_st_tensor *xmc_safetensors_find(const xmc_safetensors *st, const char *name)
{
    int64_t lo = 0, hi = st->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->t[mid].name, name);
        if (c == 0)
            return &st->t[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int xmc_safetensors_to_f32(const xmc_safetensors *st, const xmc_st_tensor *t, float *out,
                           xmc_error *err)
{
    const unsigned char *src = t->data;
    switch (t->dtype) {
    case XMC_ST_F32:
        memcpy(out, src, t->nbytes); /* data may be unaligned: memcpy, not a cast */
        return XMC_OK;
    case XMC_ST_F16:
    case XMC_ST_BF16: {
        int bf = t->dtype == XMC_ST_BF16;
#pragma omp parallel for schedule(static) if (t->numel > (1 << 16))
        for (int64_t i = 0; i < t->numel; i++) {
            uint16_t h = (uint16_t)(src[2 * i] | (src[2 * i + 1] << 8));
            out[i] = bf ? xmc_st_bf16_to_f32(h) : xmc_st_f16_to_f32(h);
        }
        return XMC_OK;
    }
    default:
        return XMC_ERR(err, XMC_EUNSUPPORTED, st->path, 0,
                       "tensor '%s' has dtype %s; only F32, F16 and BF16 convert to fp32",
                       t->name, xmc_st_dtype_name(t->dtype));
    }
}
