/* Sharded checkpoints (Renee's model parallelism, docs/dist.md).
 *
 * A model trained on P ranks is saved as:
 *   head-sN-rRofP.bin   one per rank: its label shard of W + optimizer
 *                       state (an ordinary xmc_ova file, or xmc_ffi for
 *                       spartex, with label_offset set)
 *   encoder-sN.bin, optim-sN.bin, labels.txt    rank 0 (replicated state)
 *   config.json         rank 0, LAST, after every rank reported its files
 *                       written: the usual manifest plus "head_shards":
 *                       [{"file", "begin", "end"}] in label order.
 * All through xmc_outfile (temp + fsync + rename); the manifest names only
 * complete files, so a crash or a failed rank leaves the previous
 * checkpoint intact. The directory must be shared by the ranks (one file
 * system), as for any MPI job writing one output.
 *
 * Loading on P' ranks (P' = 1: `xmc predict` on one machine): rank r takes
 * labels xmc_dist_shard(L, P', r); if one stored file is exactly that range
 * it is read as is, else the stored shards overlapping the range are read
 * one at a time and their rows (weights and optimizer state, bit for bit)
 * copied in (xmc_ova_copy_rows / xmc_ffi_copy_rows). Peak memory: the target shard plus the
 * largest stored shard. A manifest without "head_shards" (single-process
 * training) is the one shard [0, L) of files.head.
 */
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "internal.h"

static void shard_name(char *out, size_t n, int64_t step, int r, int P)
{
    snprintf(out, n, "head-s%lld-r%dof%d.bin", (long long)step, r, P);
}

static int listed(const char *name, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (names[i] && !strcmp(names[i], name))
            return 1;
    return 0;
}

int model_shard_save(const xmc_model *m, const char *dir, xmc_error *err)
{
    xmc_dist *d = m->dist;
    const int P = xmc_dist_size(d), r = xmc_dist_rank(d);
    cJSON *shards = NULL, *old = NULL;
    char prev[MODEL_PARTS][64], enc[64], opt[64], head[64], head0[64], path[4096];
    int rc = r == 0 ? xmc_mkdir_p(dir, err) : XMC_OK;
    if ((rc = model_dist_agree(d, rc, "creating the model directory", err)))
        return rc;
    if (r == 0) {
        void *o;
        model_old_files(dir, prev, &o);
        old = o;
    }
    snprintf(enc, sizeof enc, "encoder-s%lld.bin", (long long)m->step);
    snprintf(opt, sizeof opt, "optim-s%lld.bin", (long long)m->step);
    shard_name(head, sizeof head, m->step, r, P);
    shard_name(head0, sizeof head0, m->step, 0, P);
    rc = model_write_part(dir, head, 1, m, err);
    if (!rc && r == 0) {
        rc = model_write_part(dir, enc, 0, m, err);
        if (!rc && m->opt)
            rc = model_write_part(dir, opt, 2, m, err);
    }
    /* Every shard is on disk before the manifest names it. */
    if ((rc = model_dist_agree(d, rc, "writing its checkpoint files", err)))
        goto done;
    if (r == 0) {
        unsigned f0 = xmc_json_failures();
        if (!(shards = cJSON_CreateArray())) {
            rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (manifest)");
        } else {
            for (int k = 0; k < P; k++) {
                int64_t l0, l1;
                char nm[64];
                xmc_dist_shard(m->n_labels, P, k, &l0, &l1);
                shard_name(nm, sizeof nm, m->step, k, P);
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "file", nm);
                cJSON_AddNumberToObject(o, "begin", (double)l0);
                cJSON_AddNumberToObject(o, "end", (double)l1);
                cJSON_AddItemToArray(shards, o);
            }
            const char *files[MODEL_PARTS] = {enc, head0, m->opt ? opt : NULL, NULL, NULL};
            rc = xmc_json_failures() != f0 /* a shard entry was dropped */
                     ? XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (manifest)")
                     : model_write_config(dir, m, files, shards, err);
        }
        if (!rc) { /* best effort: stale files are harmless */
            const char *keep[3] = {enc, m->opt ? opt : NULL, NULL};
            for (int i = 0; i < MODEL_PARTS; i++) {
                if (!prev[i][0] || listed(prev[i], keep, 2) ||
                    !strncmp(prev[i], "head-", 5)) /* heads: below, from the shard list */
                    continue;
                snprintf(path, sizeof path, "%s/%s", dir, prev[i]);
                unlink(path);
            }
            if (prev[1][0] && !cJSON_GetArraySize(old) && strcmp(prev[1], head0) != 0) {
                snprintf(path, sizeof path, "%s/%s", dir, prev[1]);
                unlink(path); /* a single-process head replaced by shards */
            }
            const cJSON *o;
            cJSON_ArrayForEach(o, old) {
                const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "file");
                if (!cJSON_IsString(f) || strchr(f->valuestring, '/'))
                    continue;
                int cur = 0;
                for (int k = 0; k < P && !cur; k++) {
                    char nm[64];
                    shard_name(nm, sizeof nm, m->step, k, P);
                    cur = !strcmp(nm, f->valuestring);
                }
                if (!cur) {
                    snprintf(path, sizeof path, "%s/%s", dir, f->valuestring);
                    unlink(path);
                }
            }
        }
    }
    rc = model_dist_agree(d, rc, "writing the manifest", err);
done:
    cJSON_Delete(shards);
    cJSON_Delete(old);
    return rc;
}

/* One stored shard: file name and label range. */
typedef struct stored_shard {
    char file[64];
    int64_t begin, end;
} stored_shard;

/* The two head kinds behind one set of operations: dense (xmc_ova, renee)
 * and fixed fan-in (xmc_ffi, spartex). */
typedef struct head_ops {
    void (*range)(const void *h, int64_t *off, int64_t *n);
    int (*create_like)(const void *src, int64_t off, int64_t n, void **out, xmc_error *err);
    int (*copy)(void *dst, const void *src, xmc_error *err);
    void (*free)(void *h);
} head_ops;

static void ova_range_(const void *h, int64_t *off, int64_t *n)
{
    *off = xmc_ova_get_config(h)->label_offset;
    *n = xmc_ova_get_config(h)->n_labels;
}
static int ova_create_(const void *src, int64_t off, int64_t n, void **o, xmc_error *e)
{
    xmc_ova_config c = *xmc_ova_get_config(src);
    c.label_offset = off;
    c.n_labels = n;
    return xmc_ova_create(&c, (xmc_ova **)o, e);
}
static int ova_copy_(void *d, const void *s, xmc_error *e) { return xmc_ova_copy_rows(d, s, e); }
static void ova_free_(void *h) { xmc_ova_free(h); }

static void ffi_range_(const void *h, int64_t *off, int64_t *n)
{
    *off = xmc_ffi_get_config(h)->label_offset;
    *n = xmc_ffi_get_config(h)->n_labels;
}
static int ffi_create_(const void *src, int64_t off, int64_t n, void **o, xmc_error *e)
{
    xmc_ffi_config c = *xmc_ffi_get_config(src);
    c.label_offset = off;
    c.n_labels = n;
    return xmc_ffi_create(&c, (xmc_ffi **)o, e);
}
static int ffi_copy_(void *d, const void *s, xmc_error *e) { return xmc_ffi_copy_rows(d, s, e); }
static void ffi_free_(void *h) { xmc_ffi_free(h); }

static const head_ops ova_ops = {ova_range_, ova_create_, ova_copy_, ova_free_};
static const head_ops ffi_ops = {ffi_range_, ffi_create_, ffi_copy_, ffi_free_};

int model_shard_load_head(xmc_model *m, const char *dir, const void *shards_json, xmc_error *err)
{
    const cJSON *shards = shards_json;
    char cpath[4096];
    snprintf(cpath, sizeof cpath, "%s/%s", dir, XMC_MODEL_CONFIG);
    int64_t l0, l1;
    model_shard_range(m->dist, m->n_labels, &l0, &l1);
    int n = shards ? cJSON_GetArraySize(shards) : 1;
    if (shards && (!cJSON_IsArray(shards) || n < 1))
        return XMC_ERR(err, XMC_ECORRUPT, cpath, 0, "head_shards: expected a non-empty list");
    const head_ops *ops = !strcmp(m->cfg.recipe, "spartex") ? &ffi_ops : &ova_ops;
    void *dst = NULL, *src = NULL;
    int64_t covered = 0;
    int rc = XMC_OK;
    for (int i = 0; i < n && !rc; i++) {
        stored_shard s = {"", 0, m->n_labels};
        if (shards) {
            const cJSON *o = cJSON_GetArrayItem(shards, i);
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "file"),
                        *b = cJSON_GetObjectItemCaseSensitive(o, "begin"),
                        *e = cJSON_GetObjectItemCaseSensitive(o, "end");
            if (!cJSON_IsString(f) || strlen(f->valuestring) >= sizeof s.file ||
                strchr(f->valuestring, '/') || !cJSON_IsNumber(b) || !cJSON_IsNumber(e) ||
                b->valuedouble < 0 || e->valuedouble > (double)m->n_labels ||
                b->valuedouble >= e->valuedouble) {
                rc = XMC_ERR(err, XMC_ECORRUPT, cpath, 0,
                             "head_shards[%d]: expected {\"file\", \"begin\", \"end\"} within "
                             "[0, %lld)", i, (long long)m->n_labels);
                break;
            }
            snprintf(s.file, sizeof s.file, "%s", f->valuestring);
            s.begin = (int64_t)b->valuedouble;
            s.end = (int64_t)e->valuedouble;
        } else {
            snprintf(s.file, sizeof s.file, "%s", m->files[1]);
        }
        if (s.end <= l0 || s.begin >= l1)
            continue; /* not ours */
        if ((rc = model_read_head(dir, s.file, ops == &ffi_ops, &src, err)))
            break;
        int64_t off, nl;
        ops->range(src, &off, &nl);
        if (off != s.begin || off + nl != s.end) {
            rc = XMC_ERR(err, XMC_ECORRUPT, cpath, 0,
                         "%s holds labels [%lld, %lld), the manifest says [%lld, %lld)", s.file,
                         (long long)off, (long long)(off + nl), (long long)s.begin,
                         (long long)s.end);
            break;
        }
        if (s.begin == l0 && s.end == l1) { /* same layout: the file is our shard */
            dst = src;
            src = NULL;
            covered = l1 - l0;
            break;
        }
        if (!dst && (rc = ops->create_like(src, l0, l1 - l0, &dst, err)))
            break;
        if ((rc = ops->copy(dst, src, err)))
            break;
        covered += (s.end < l1 ? s.end : l1) - (s.begin > l0 ? s.begin : l0);
        ops->free(src);
        src = NULL;
    }
    ops->free(src);
    if (!rc && covered != l1 - l0)
        rc = XMC_ERR(err, XMC_ECORRUPT, cpath, 0,
                     "head_shards cover %lld of the labels [%lld, %lld)", (long long)covered,
                     (long long)l0, (long long)l1);
    /* A rank that could not load makes all stop (no rank waits later). */
    rc = model_dist_agree(m->dist, rc, "loading its head shard", err);
    if (rc) {
        ops->free(dst);
        return rc;
    }
    if (ops == &ffi_ops)
        m->ffi = dst;
    else
        m->head = dst;
    return XMC_OK;
}
