/* Model directory: save (checkpoint) and load.
 *
 * A checkpoint writes encoder-sN.bin, head-sN.bin, optim-sN.bin (N = steps
 * taken) and labels.txt, each through xmc_outfile (temp + fsync + rename),
 * THEN replaces config.json (the manifest naming those files), THEN removes
 * the files the previous manifest named. A crash at any point leaves a
 * config.json whose files all exist and match. Binary files carry magic,
 * version, shapes and CRC-32 (encoder.c, optim's adamw.c, the head's own
 * format). config.json is cJSON-printed; floats survive the round trip
 * exactly (cJSON prints 17 significant digits when needed), which resume
 * relies on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "internal.h"

static const char *act_name(xmc_act a) { return a == XMC_ACT_GELU ? "gelu" : "relu"; }
static const char *loss_name(xmc_loss l) { return l == XMC_LOSS_SQHINGE ? "sqhinge" : "bce"; }

static void join(char *out, size_t n, const char *dir, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

typedef int (*save_fn)(const void *obj, FILE *f, const char *path, xmc_error *err);

static int save_enc(const void *o, FILE *f, const char *p, xmc_error *e)
{
    return xmc_encoder_save(o, f, p, e);
}
static int save_head(const void *o, FILE *f, const char *p, xmc_error *e)
{
    return head_save(o, f, p, e);
}
static int save_meta(const void *o, FILE *f, const char *p, xmc_error *e)
{
    return xmc_ffi_save(o, f, p, e);
}
static int save_opt(const void *o, FILE *f, const char *p, xmc_error *e)
{
    return xmc_enc_optim_save(o, f, p, e);
}
static int save_nbr(const void *o, FILE *f, const char *p, xmc_error *e)
{
    return xmc_neighbors_save(o, f, p, e);
}

/* dir/name through xmc_outfile (temp + fsync + rename). */
static int write_file(const char *dir, const char *name, save_fn fn, const void *obj,
                      xmc_error *err)
{
    char path[4096];
    join(path, sizeof path, dir, name);
    xmc_outfile o;
    int rc = xmc_outfile_open(&o, path, err);
    if (rc)
        return rc;
    if ((rc = fn(obj, o.fp, path, err)) != XMC_OK) {
        xmc_outfile_abort(&o);
        return rc;
    }
    return xmc_outfile_commit(&o, err);
}

/* labels.txt, when there are label names. */
static int write_labels(const char *dir, const xmc_texts *names, xmc_error *err)
{
    char path[4096];
    if (!names)
        return XMC_OK;
    join(path, sizeof path, dir, "labels.txt");
    return xmc_texts_write(path, names, err);
}

/* config.json, the manifest, from cJSON-printed `text` (NULL: out of memory),
 * which this frees. */
static int write_manifest(const char *dir, char *text, xmc_error *err)
{
    char path[4096];
    if (!text)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (config.json)");
    join(path, sizeof path, dir, XMC_MODEL_CONFIG);
    xmc_outfile o;
    int rc = xmc_outfile_open(&o, path, err);
    if (rc == XMC_OK) {
        fputs(text, o.fp);
        fputc('\n', o.fp);
        rc = xmc_outfile_commit(&o, err);
    }
    cJSON_free(text); /* cJSON's hooks: xmc_free (core/json.c) */
    return rc;
}

/* A float as the shortest decimal that reads back as the same float, so the
 * config shows 0.4, not 0.40000000596046448, and resume is still exact. */
static void add_float(cJSON *o, const char *name, float f)
{
    char buf[32];
    double v = f;
    for (int p = 6; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if ((float)strtod(buf, NULL) == f) {
            v = strtod(buf, NULL);
            break;
        }
    }
    cJSON_AddNumberToObject(o, name, v);
}

/* NULL when out of memory; the cJSON_Add*ToObject helpers then add
 * nothing to it and the writer's xmc_json_failures check refuses the tree. */
static cJSON *add_obj(cJSON *parent, const char *name)
{
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddItemToObject(parent, name, o)) {
        cJSON_Delete(o); /* not linked: ours to free */
        o = NULL;
    }
    return o;
}

/* root as text, and root freed; NULL (write_manifest: out of memory) when
 * printing failed or any cJSON allocation failed since the count f0 was
 * taken (a field was dropped: write nothing). */
static char *print_tree(cJSON *root, unsigned f0)
{
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (text && xmc_json_failures() != f0) {
        cJSON_free(text);
        text = NULL;
    }
    return text;
}

/* The keys every manifest starts with. */
static void add_header(cJSON *root, const char *recipe)
{
    cJSON_AddStringToObject(root, "format", "xmc-model");
    cJSON_AddNumberToObject(root, "version", XMC_MODEL_FORMAT_VERSION);
    cJSON_AddStringToObject(root, "xmc_version", XMC_VERSION_STRING);
    cJSON_AddStringToObject(root, "recipe", recipe);
}

/* A seed as a number when a double holds it exactly, else as a string. */
static void add_seed(cJSON *root, uint64_t seed)
{
    if (seed < (1ull << 53)) {
        cJSON_AddNumberToObject(root, "seed", (double)seed);
    } else {
        char s[32];
        snprintf(s, sizeof s, "%llu", (unsigned long long)seed);
        cJSON_AddStringToObject(root, "seed", s);
    }
}

static void add_labels(cJSON *root, int has_labels)
{
    if (has_labels)
        cJSON_AddStringToObject(root, "labels", "labels.txt");
    else
        cJSON_AddNullToObject(root, "labels");
}

static char *config_json(const xmc_model *m, const char *files[MODEL_PARTS],
                         const cJSON *shards)
{
    unsigned f0 = xmc_json_failures();
    const xmc_train_config *c = &m->cfg;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    add_header(root, c->recipe);
    cJSON *e = add_obj(root, "encoder");
    cJSON_AddStringToObject(e, "kind", c->encoder);
    if (c->extra[0])
        cJSON_AddStringToObject(e, "extra", c->extra);
    cJSON_AddNumberToObject(e, "n_inputs", (double)m->enc->cfg.n_inputs);
    cJSON_AddNumberToObject(e, "dim", c->dim);
    cJSON_AddNumberToObject(e, "layers", c->layers);
    cJSON_AddNumberToObject(e, "bottleneck", c->bottleneck);
    cJSON_AddNumberToObject(e, "intermediate", c->intermediate);
    cJSON_AddStringToObject(e, "intermediate_activation", c->intermediate_relu ? "relu" : "none");
    cJSON_AddNumberToObject(e, "out_dim", m->enc->dim);
    cJSON_AddStringToObject(e, "activation", act_name(c->act));
    add_float(e, "dropout", c->dropout);
    add_float(e, "input_dropout", c->input_dropout);
    cJSON_AddNumberToObject(e, "buckets", (double)c->buckets);
    cJSON_AddStringToObject(e, "table_optimizer",
                            c->table_opt == XMC_TABLE_SGDM ? "sgdm" : "adam");
    cJSON *h = add_obj(root, "head");
    cJSON_AddNumberToObject(h, "n_labels", (double)m->n_labels);
    cJSON_AddNumberToObject(h, "dim", head_dim(m));
    cJSON_AddStringToObject(h, "dtype",
                            m->head && xmc_ova_get_config(m->head)->dtype == XMC_DT_BF16 ? "bf16"
                                                                                     : "f32");
    if (m->ffi) { /* spartex: the fixed fan-in head and its rewiring schedule */
        cJSON_AddStringToObject(h, "kind", "ffi");
        cJSON_AddNumberToObject(h, "fan_in", xmc_ffi_get_config(m->ffi)->fan_in);
        cJSON_AddNumberToObject(h, "rewire_interval", (double)c->rewire_interval);
        add_float(h, "rewire_end", c->rewire_end);
        add_float(h, "rewire_threshold", c->rewire_threshold);
        cJSON_AddNumberToObject(h, "rewire_fraction", c->rewire_fraction);
        cJSON_AddNumberToObject(h, "aux_clusters", c->aux_clusters);
        add_float(h, "aux_scale", c->aux_scale);
        add_float(h, "meta_cutoff_epoch", c->meta_cutoff_epoch);
    } else {
        cJSON_AddStringToObject(h, "kind", "ova");
    }
    cJSON_AddStringToObject(h, "optimizer", c->head_opt == XMC_HEAD_ADAM ? "adam" : "sgdm");
    cJSON_AddStringToObject(h, "loss", loss_name(c->loss));
    add_labels(root, m->label_names != NULL);
    cJSON *hp = add_obj(root, "hparams");
    cJSON_AddNumberToObject(hp, "epochs", c->epochs);
    cJSON_AddNumberToObject(hp, "batch", c->batch);
    add_float(hp, "lr1", c->lr1);
    add_float(hp, "lr2", c->lr2);
    add_float(hp, "lr_table", c->lr_table);
    add_float(hp, "wd1", c->wd1);
    add_float(hp, "wd2", c->wd2);
    add_float(hp, "momentum", c->momentum);
    add_float(hp, "warmup", c->warmup);
    cJSON_AddNumberToObject(hp, "loss_every", c->loss_every);
    cJSON_AddNumberToObject(hp, "eval_every", c->eval_every);
    cJSON_AddNumberToObject(hp, "max_steps", (double)c->max_steps);
    add_seed(root, c->seed);
    cJSON *en = add_obj(root, "ensemble");
    cJSON_AddNumberToObject(en, "members", c->ensemble > 0 ? c->ensemble : 1);
    if (c->ensemble_member >= 0)
        cJSON_AddNumberToObject(en, "member", c->ensemble_member);
    else
        cJSON_AddNullToObject(en, "member");
    cJSON *kn = add_obj(root, "neighbors"); /* the kNN memory's settings */
    cJSON_AddNumberToObject(kn, "k", c->knn > 0 ? c->knn : 0);
    add_float(kn, "temperature", c->knn_temp);
    add_float(kn, "weight", c->knn_weight);
    cJSON_AddNumberToObject(kn, "rows", m->nbr ? (double)xmc_neighbors_rows(m->nbr) : 0);
    cJSON *d = add_obj(root, "data");
    cJSON_AddStringToObject(d, "train", c->train_spec);
    cJSON_AddStringToObject(d, "test", c->test_spec);
    if (c->augment[0])
        cJSON_AddStringToObject(d, "augment", c->augment);
    else
        cJSON_AddNullToObject(d, "augment");
    cJSON_AddNumberToObject(d, "n_train", (double)m->n_train);
    cJSON *st = add_obj(root, "state");
    cJSON_AddNumberToObject(st, "epochs_done", m->epochs_done);
    cJSON_AddNumberToObject(st, "step", (double)m->step);
    cJSON_AddNumberToObject(st, "total_steps", (double)m->total_steps);
    cJSON *fl = add_obj(root, "files");
    cJSON_AddStringToObject(fl, "encoder", files[0]);
    cJSON_AddStringToObject(fl, "head", files[1]);
    if (files[2])
        cJSON_AddStringToObject(fl, "optim", files[2]);
    else
        cJSON_AddNullToObject(fl, "optim");
    if (files[3])
        cJSON_AddStringToObject(fl, "meta", files[3]);
    if (files[4])
        cJSON_AddStringToObject(fl, "neighbors", files[4]);
    if (shards) { /* sharded head: [{"file", "begin", "end"}] by label range */
        cJSON *dup = cJSON_Duplicate(shards, 1);
        if (dup && !cJSON_AddItemToObject(root, "head_shards", dup))
            cJSON_Delete(dup);
    }
    return print_tree(root, f0);
}

int xmc_model_read_config_text(const char *dir, char **text, xmc_error *err)
{
    char path[4096];
    join(path, sizeof path, dir, XMC_MODEL_CONFIG);
    size_t len;
    if (!xmc_file_exists(path))
        return XMC_ERR(err, XMC_EIO, path, 0, "no model here (missing %s)", XMC_MODEL_CONFIG);
    return xmc_read_file(path, text, &len, err);
}

/* dir/config.json parsed into *root (free with cJSON_Delete); its path in
 * cpath for messages. */
static int read_config(const char *dir, char cpath[4096], cJSON **root, xmc_error *err)
{
    char *text = NULL;
    *root = NULL;
    join(cpath, 4096, dir, XMC_MODEL_CONFIG);
    int rc = xmc_model_read_config_text(dir, &text, err);
    if (rc)
        return rc;
    rc = xmc_json_parse(text, strlen(text), root);
    xmc_free(text);
    if (rc == XMC_ENOMEM)
        return XMC_ERR(err, XMC_ENOMEM, cpath, 0, "out of memory");
    if (rc != XMC_OK)
        return XMC_ERR(err, XMC_ECORRUPT, cpath, 0, "not valid JSON");
    return XMC_OK;
}

/* The file names (and head_shards) the current manifest lists, to delete
 * after replacing it (internal.h). */
static const char *const part_key[MODEL_PARTS] = {"encoder", "head", "optim", "meta",
                                                  "neighbors"};

void model_old_files(const char *dir, char names[MODEL_PARTS][64], void **shards)
{
    memset(names, 0, MODEL_PARTS * 64);
    if (shards)
        *shards = NULL;
    char cpath[4096];
    cJSON *root = NULL;
    if (read_config(dir, cpath, &root, NULL) != XMC_OK)
        return;
    cJSON *fl = cJSON_GetObjectItemCaseSensitive(root, "files");
    for (int i = 0; i < MODEL_PARTS; i++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(fl, part_key[i]);
        if (cJSON_IsString(s) && !strchr(s->valuestring, '/'))
            snprintf(names[i], 64, "%s", s->valuestring);
    }
    if (shards)
        *shards = cJSON_DetachItemFromObjectCaseSensitive(root, "head_shards");
    cJSON_Delete(root);
}

/* Write the parts of m named in want (NULL: all it has) into dir, then the
 * manifest naming them (and, for parts not written, the names m's last
 * checkpoint gave them: "<part>-s<step>.bin"), then remove the files the
 * previous manifest named that the new one does not. */
static int save_parts(const xmc_model *m, const char *dir, const int *want, xmc_error *err)
{
    int rc = xmc_mkdir_p(dir, err);
    if (rc)
        return rc;
    char prev[MODEL_PARTS][64];
    model_old_files(dir, prev, NULL);
    static const save_fn fns[MODEL_PARTS] = {save_enc, save_head, save_opt, save_meta, save_nbr};
    const void *objs[MODEL_PARTS] = {m->enc, m, m->opt, m->meta, m->nbr};
    char names[MODEL_PARTS][64], path[4096];
    const char *files[MODEL_PARTS];
    for (int i = 0; i < MODEL_PARTS; i++) {
        snprintf(names[i], sizeof names[i], "%s-s%lld.bin", part_key[i], (long long)m->step);
        files[i] = objs[i] ? names[i] : NULL;
        if (files[i] && (!want || want[i]) && (rc = write_file(dir, files[i], fns[i], objs[i], err)))
            return rc;
    }
    if ((rc = write_labels(dir, m->label_names, err)) ||
        (rc = write_manifest(dir, config_json(m, files, NULL), err)))
        return rc;
    for (int i = 0; i < MODEL_PARTS; i++) {
        int kept = !prev[i][0];
        for (int j = 0; j < MODEL_PARTS && !kept; j++)
            kept = files[j] && !strcmp(prev[i], files[j]);
        if (kept)
            continue;
        join(path, sizeof path, dir, prev[i]);
        unlink(path); /* best effort: a stale file is harmless */
    }
    return XMC_OK;
}

int xmc_model_save(const xmc_model *m, const char *dir, xmc_error *err)
{
    if (model_sharded(m)) {
        int rc = xmc_mkdir_p(dir, err);
        return rc ? rc : model_shard_save(m, dir, err);
    }
    return save_parts(m, dir, NULL, err);
}

int model_save_neighbors(const xmc_model *m, const char *dir, xmc_error *err)
{
    /* The memory comes after the last checkpoint: only it and the manifest
     * are new (a run cut short before the manifest resumes and rebuilds). */
    static const int only_nbr[MODEL_PARTS] = {0, 0, 0, 0, 1};
    return save_parts(m, dir, only_nbr, err);
}

int model_write_part(const char *dir, const char *name, int part, const xmc_model *m,
                     xmc_error *err)
{
    static const save_fn fns[3] = {save_enc, save_head, save_opt};
    const void *objs[3] = {m->enc, m, m->opt};
    return write_file(dir, name, fns[part], objs[part], err);
}

int model_write_config(const char *dir, const xmc_model *m, const char *files[MODEL_PARTS],
                       const void *shards, xmc_error *err)
{
    int rc = write_labels(dir, m->label_names, err);
    return rc ? rc : write_manifest(dir, config_json(m, files, shards), err);
}

/* ------------------------------------------------------------ load */

static const cJSON *item(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* config.json's "ensemble" (at path): members and member (-1: not a
 * member). Absent (models from before ensembles): one model. */
static int config_ensemble(const cJSON *root, const char *path, int *members, int *member,
                           xmc_error *err)
{
    *members = 1;
    *member = -1;
    const cJSON *en = item(root, "ensemble");
    if (!en)
        return XMC_OK;
    const cJSON *n = cJSON_IsObject(en) ? item(en, "members") : NULL, *k = item(en, "member");
    int ok = cJSON_IsNumber(n) && n->valuedouble >= 1 && n->valuedouble <= XMC_TRAIN_MAX_ENSEMBLE;
    if (ok)
        *members = (int)n->valuedouble;
    if (ok && k && !cJSON_IsNull(k)) {
        ok = cJSON_IsNumber(k) && k->valuedouble >= 0 && k->valuedouble < *members;
        if (ok)
            *member = (int)k->valuedouble;
    }
    return ok ? XMC_OK
              : XMC_ERR(err, XMC_ECORRUPT, path, 0,
                        "ensemble: expected {\"members\": 1..%d, \"member\": null or "
                        "0..members-1}",
                        XMC_TRAIN_MAX_ENSEMBLE);
}

static int need_num(const cJSON *o, const char *k, const char *path, double *v, xmc_error *err)
{
    const cJSON *x = item(o, k);
    if (!cJSON_IsNumber(x))
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "missing number '%s'", k);
    *v = x->valuedouble;
    return XMC_OK;
}

static int need_str(const cJSON *o, const char *k, const char *path, char *out, size_t n,
                    xmc_error *err)
{
    const cJSON *x = item(o, k);
    if (!cJSON_IsString(x))
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "missing string '%s'", k);
    if (strlen(x->valuestring) >= n)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "'%s' too long", k);
    snprintf(out, n, "%s", x->valuestring);
    return XMC_OK;
}

static int parse_config(const cJSON *root, const char *path, xmc_model *m, xmc_error *err)
{
    int rc = XMC_OK;
    xmc_train_config *c = &m->cfg;
    xmc_train_config_default(c);
    double v = 0;
    char s[64];
    const cJSON *fmt = item(root, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "xmc-model") != 0) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "not an xmc model config (format)");
        goto done;
    }
    if ((rc = need_num(root, "version", path, &v, err)))
        goto done;
    if ((int)v != XMC_MODEL_FORMAT_VERSION) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "model format version %d, expected %d", (int)v,
                     XMC_MODEL_FORMAT_VERSION);
        goto done;
    }
    const cJSON *e = item(root, "encoder"), *h = item(root, "head"), *hp = item(root, "hparams"),
                *d = item(root, "data"), *st = item(root, "state"), *fl = item(root, "files");
    if (!cJSON_IsObject(e) || !cJSON_IsObject(h) || !cJSON_IsObject(hp) || !cJSON_IsObject(d) ||
        !cJSON_IsObject(st) || !cJSON_IsObject(fl)) {
        rc = XMC_ERR(err, XMC_ECORRUPT, path, 0,
                     "missing section (encoder, head, hparams, data, state, files)");
        goto done;
    }
    if ((rc = need_str(root, "recipe", path, c->recipe, sizeof c->recipe, err)) ||
        (rc = need_str(e, "kind", path, c->encoder, sizeof c->encoder, err)))
        goto done;
    if (cJSON_IsString(item(e, "extra")) &&
        (rc = need_str(e, "extra", path, c->extra, sizeof c->extra, err)))
        goto done;
#define NUM(obj, key, dst, type)                                  \
    do {                                                          \
        if ((rc = need_num(obj, key, path, &v, err)) != XMC_OK)   \
            goto done;                                            \
        dst = (type)v;                                            \
    } while (0)
    NUM(e, "dim", c->dim, int);
    NUM(e, "layers", c->layers, int);
    NUM(e, "bottleneck", c->bottleneck, int);
    /* Optional: models written before the intermediate layer have no key. */
    c->intermediate_relu = 1;
    if (cJSON_IsNumber(item(e, "intermediate"))) {
        NUM(e, "intermediate", c->intermediate, int);
        if (cJSON_IsString(item(e, "intermediate_activation")))
            c->intermediate_relu =
                strcmp(item(e, "intermediate_activation")->valuestring, "none") != 0;
    }
    NUM(e, "dropout", c->dropout, float);
    NUM(e, "input_dropout", c->input_dropout, float);
    NUM(e, "buckets", c->buckets, int64_t);
    if ((rc = need_str(e, "activation", path, s, sizeof s, err)))
        goto done;
    c->act = !strcmp(s, "gelu") ? XMC_ACT_GELU : XMC_ACT_RELU;
    NUM(h, "n_labels", m->n_labels, int64_t);
    if ((rc = need_str(h, "dtype", path, s, sizeof s, err)))
        goto done;
    c->bf16 = !strcmp(s, "bf16");
    if ((rc = need_str(h, "optimizer", path, s, sizeof s, err)))
        goto done;
    c->head_opt = !strcmp(s, "adam") ? XMC_HEAD_ADAM : XMC_HEAD_SGDM;
    if ((rc = need_str(h, "loss", path, s, sizeof s, err)))
        goto done;
    c->loss = !strcmp(s, "sqhinge") ? XMC_LOSS_SQHINGE : XMC_LOSS_BCE;
    if (!strcmp(c->recipe, "spartex")) {
        NUM(h, "fan_in", c->fan_in, int);
        NUM(h, "rewire_interval", c->rewire_interval, int64_t);
        NUM(h, "rewire_end", c->rewire_end, float);
        NUM(h, "rewire_threshold", c->rewire_threshold, float);
        NUM(h, "rewire_fraction", c->rewire_fraction, double);
        if (cJSON_IsNumber(item(h, "aux_clusters"))) {
            NUM(h, "aux_clusters", c->aux_clusters, int);
            NUM(h, "aux_scale", c->aux_scale, float);
            NUM(h, "meta_cutoff_epoch", c->meta_cutoff_epoch, float);
        }
    }
    NUM(hp, "epochs", c->epochs, int);
    NUM(hp, "batch", c->batch, int);
    NUM(hp, "lr1", c->lr1, float);
    NUM(hp, "lr2", c->lr2, float);
    /* Models from before SGD-m tables trained them with Adam at lr2. */
    c->table_opt = cJSON_IsString(item(e, "table_optimizer")) &&
                           !strcmp(item(e, "table_optimizer")->valuestring, "sgdm")
                       ? XMC_TABLE_SGDM
                       : XMC_TABLE_ADAM;
    c->lr_table = c->lr2;
    if (cJSON_IsNumber(item(hp, "lr_table")))
        NUM(hp, "lr_table", c->lr_table, float);
    NUM(hp, "wd1", c->wd1, float);
    NUM(hp, "wd2", c->wd2, float);
    NUM(hp, "momentum", c->momentum, float);
    NUM(hp, "warmup", c->warmup, float);
    NUM(hp, "loss_every", c->loss_every, int);
    NUM(hp, "eval_every", c->eval_every, int);
    NUM(hp, "max_steps", c->max_steps, int64_t);
    const cJSON *seed = item(root, "seed");
    if (cJSON_IsString(seed))
        c->seed = strtoull(seed->valuestring, NULL, 10);
    else
        NUM(root, "seed", c->seed, uint64_t);
    if ((rc = config_ensemble(root, path, &c->ensemble, &c->ensemble_member, err)))
        goto done;
    if ((rc = need_str(d, "train", path, c->train_spec, sizeof c->train_spec, err)) ||
        (rc = need_str(d, "test", path, c->test_spec, sizeof c->test_spec, err)))
        goto done;
    /* Optional: models written before --augment existed have no key. */
    if (cJSON_IsString(item(d, "augment")) &&
        (rc = need_str(d, "augment", path, c->augment, sizeof c->augment, err)))
        goto done;
    NUM(d, "n_train", m->n_train, int64_t);
    NUM(st, "epochs_done", m->epochs_done, int);
    NUM(st, "step", m->step, int64_t);
    NUM(st, "total_steps", m->total_steps, int64_t);
#undef NUM
    if ((rc = need_str(fl, "encoder", path, m->files[0], sizeof m->files[0], err)) ||
        (rc = need_str(fl, "head", path, m->files[1], sizeof m->files[1], err)))
        goto done;
    if (cJSON_IsString(item(fl, "optim")))
        rc = need_str(fl, "optim", path, m->files[2], sizeof m->files[2], err);
    if (!rc && cJSON_IsString(item(fl, "meta")))
        rc = need_str(fl, "meta", path, m->files[3], sizeof m->files[3], err);
    if (!rc && cJSON_IsString(item(fl, "neighbors")))
        rc = need_str(fl, "neighbors", path, m->files[4], sizeof m->files[4], err);
    /* Optional: models written before the kNN memory have none (k 0). */
    c->knn = 0;
    const cJSON *kn = item(root, "neighbors");
    if (!rc && kn) {
        double k = 0, t = 0, w = 0;
        if (!cJSON_IsObject(kn) || need_num(kn, "k", path, &k, NULL) ||
            need_num(kn, "temperature", path, &t, NULL) || need_num(kn, "weight", path, &w, NULL) ||
            !(k >= 0 && k <= XMC_TRAIN_MAX_KNN && k == (int)k) || !(t > 0 && t <= 1e3) ||
            !(w >= 0 && w <= 1))
            rc = XMC_ERR(err, XMC_ECORRUPT, path, 0,
                         "neighbors: expected {\"k\": 0..%d, \"temperature\": > 0, "
                         "\"weight\": 0..1, ...}", XMC_TRAIN_MAX_KNN);
        else {
            c->knn = (int)k;
            c->knn_temp = (float)t;
            c->knn_weight = (float)w;
        }
    }
    for (int i = 0; i < MODEL_PARTS && !rc; i++)
        if (strchr(m->files[i], '/'))
            rc = XMC_ERR(err, XMC_ECORRUPT, path, 0, "file name '%s' must not contain '/'",
                         m->files[i]);
done:
    return rc;
}

typedef int (*load_fn)(FILE *f, const char *path, void *obj, xmc_error *err);

static int load_enc(FILE *f, const char *p, void *o, xmc_error *e)
{
    return xmc_encoder_load(f, p, o, e);
}
static int load_ffi(FILE *f, const char *p, void *o, xmc_error *e)
{
    return xmc_ffi_load(f, p, o, e);
}
static int load_ova(FILE *f, const char *p, void *o, xmc_error *e)
{
    return xmc_ova_load(f, p, o, e);
}
static int load_nbr(FILE *f, const char *p, void *o, xmc_error *e)
{
    return xmc_neighbors_load(f, p, o, e);
}
static int load_opt(FILE *f, const char *p, void *o, xmc_error *e)
{
    return xmc_enc_optim_load(o, f, p, e);
}

/* Read dir/name with fn into obj. */
static int read_file(const char *dir, const char *name, load_fn fn, void *obj, xmc_error *err)
{
    char path[4096];
    join(path, sizeof path, dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return XMC_ERR(err, XMC_EIO, path, 0, "cannot open (incomplete model directory?)");
    int rc = fn(f, path, obj, err);
    fclose(f);
    return rc;
}

int model_read_head(const char *dir, const char *name, int ffi, void **out, xmc_error *err)
{
    return read_file(dir, name, ffi ? load_ffi : load_ova, out, err);
}

/* dir/labels.txt into *out, which must hold n_labels names (on a count
 * mismatch *out is left set for the caller to free). */
static int read_labels(const char *dir, int64_t n_labels, xmc_texts **out, xmc_error *err)
{
    char path[4096];
    join(path, sizeof path, dir, "labels.txt");
    int rc = xmc_texts_read(path, out, err);
    if (rc)
        return rc;
    if ((*out)->n != n_labels)
        return XMC_ERR(err, XMC_ECORRUPT, path, 0, "%lld label names for %lld labels",
                       (long long)(*out)->n, (long long)n_labels);
    return XMC_OK;
}

int xmc_model_load(const char *dir, int with_state, xmc_model **out, xmc_error *err)
{
    return xmc_model_load_dist(dir, with_state, NULL, out, err);
}

int xmc_model_load_dist(const char *dir, int with_state, xmc_dist *dist, xmc_model **out,
                        xmc_error *err)
{
    *out = NULL;
    char cpath[4096];
    cJSON *root = NULL;
    xmc_model *m = NULL;
    int rc = read_config(dir, cpath, &root, err);
    if (rc)
        goto fail;
    if (!(m = xmc_calloc(1, sizeof *m))) {
        rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (model)");
        goto fail;
    }
    m->dist = dist;
    rc = parse_config(root, cpath, m, err);
    int has_labels = cJSON_IsString(item(root, "labels"));
    if (rc)
        goto fail;
    int spx = !strcmp(m->cfg.recipe, "spartex");
    const cJSON *shards = item(root, "head_shards");
    if ((rc = read_file(dir, m->files[0], load_enc, &m->enc, err)) ||
        (rc = shards || xmc_dist_active(dist) ? model_shard_load_head(m, dir, shards, err)
              : spx                           ? read_file(dir, m->files[1], load_ffi, &m->ffi, err)
                                              : read_file(dir, m->files[1], load_ova, &m->head, err)))
        goto fail;
    cJSON_Delete(root);
    root = NULL;
    int64_t l0 = 0, l1 = m->n_labels;
    model_shard_range(dist, m->n_labels, &l0, &l1);
    if (head_n_labels(m) != l1 - l0 || head_dim(m) != m->enc->dim ||
        (spx && xmc_ffi_get_config(m->ffi)->fan_in != m->cfg.fan_in)) {
        rc = XMC_ERR(err, XMC_ECORRUPT, cpath, 0,
                     "head has %lld labels x %d dims, config says %lld x %d",
                     (long long)head_n_labels(m), head_dim(m), (long long)m->n_labels,
                     m->enc->dim);
        goto fail;
    }
    if (spx)
        model_spartex_schedule(m);
    m->max_batch = m->cfg.batch;
    if (m->enc->cfg.max_batch < m->max_batch)
        m->max_batch = m->enc->cfg.max_batch;
    if (with_state && !m->files[2][0]) {
        rc = XMC_ERR(err, XMC_ESTATE, cpath, 0, "model has no optimizer state to resume from");
        goto fail;
    }
    if ((rc = model_alloc_scratch(m, with_state, err)))
        goto fail;
    /* The meta head (its clusters are recomputed from the training data). */
    if (with_state && ((rc = read_file(dir, m->files[2], load_opt, m->opt, err)) ||
                       (spx && m->files[3][0] &&
                        (rc = read_file(dir, m->files[3], load_ffi, &m->meta, err)))))
        goto fail;
    if (has_labels && (rc = read_labels(dir, m->n_labels, &m->label_names, err)))
        goto fail;
    if (m->files[4][0]) {
        if ((rc = read_file(dir, m->files[4], load_nbr, &m->nbr, err)))
            goto fail;
        if (xmc_neighbors_dim(m->nbr) != m->enc->dim || m->cfg.knn < 1 || !m->head) {
            rc = XMC_ERR(err, XMC_ECORRUPT, cpath, 0,
                         "kNN memory of width %d with k %d, the model's embeddings are %d wide%s",
                         xmc_neighbors_dim(m->nbr), m->cfg.knn, m->enc->dim,
                         m->head ? "" : " (and it needs the dense head)");
            goto fail;
        }
        /* Under mpirun the head is sharded; the blend needs every label. */
        m->use_nbr = !xmc_dist_active(dist);
        if (!m->use_nbr)
            xmc_log(XMC_LOG_WARN, "%s: the kNN memory is not used under mpirun", dir);
    }
    *out = m;
    return XMC_OK;
fail:
    cJSON_Delete(root);
    xmc_model_free(m);
    return rc;
}

/* ------------------------------------------------- unidec / depsl */

int xmc_recipe_is_unidec(const char *recipe)
{
    return recipe && (!strcmp(recipe, "unidec") || !strcmp(recipe, "depsl"));
}

int xmc_model_dir_recipe(const char *dir, char *out, size_t n, xmc_error *err)
{
    char path[4096];
    cJSON *root = NULL;
    int rc = read_config(dir, path, &root, err);
    if (rc)
        return rc;
    rc = need_str(root, "recipe", path, out, n, err);
    cJSON_Delete(root);
    return rc;
}

int model_dir_ensemble(const char *dir, int *members, int *member, xmc_error *err)
{
    char path[4096];
    cJSON *root = NULL;
    int rc = read_config(dir, path, &root, err);
    if (rc)
        return rc;
    rc = config_ensemble(root, path, members, member, err);
    cJSON_Delete(root);
    return rc;
}

void model_remove_dir(const char *dir)
{
    char names[MODEL_PARTS][64], path[4096];
    model_old_files(dir, names, NULL);
    join(path, sizeof path, dir, XMC_MODEL_CONFIG); /* the manifest first: no half model */
    unlink(path);
    for (int i = 0; i < MODEL_PARTS; i++)
        if (names[i][0]) {
            join(path, sizeof path, dir, names[i]);
            unlink(path);
        }
    join(path, sizeof path, dir, "labels.txt");
    unlink(path);
    if (rmdir(dir) != 0)
        xmc_log(XMC_LOG_WARN, "%s: not removed (%s); it holds files that are not the model's",
                dir, strerror(errno));
}

/* unidec.bin and labels.txt first, config.json (the manifest) last. */
int model_unidec_save(const char *dir, const xmc_train_config *c, const xmc_unidec_config *uc,
                      const xmc_unidec *u, const xmc_dataset *train, xmc_error *err)
{
    char path[4096];
    int rc = xmc_mkdir_p(dir, err);
    if (rc)
        return rc;
    join(path, sizeof path, dir, XMC_MODEL_UNIDEC_FILE);
    if ((rc = xmc_unidec_save(u, path, err)) ||
        (rc = write_labels(dir, train->label_names, err)))
        return rc;
    xmc_unidec_stats st;
    xmc_unidec_get_stats(u, &st);
    unsigned f0 = xmc_json_failures();
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory (config.json)");
    add_header(root, c->recipe);
    cJSON *e = add_obj(root, "settings");
    cJSON_AddStringToObject(e, "encoder", uc->encoder[0] ? uc->encoder : "bag");
    cJSON_AddNumberToObject(e, "hidden", uc->hidden);
    if (uc->intermediate > 0) {
        cJSON_AddNumberToObject(e, "intermediate", uc->intermediate);
        cJSON_AddStringToObject(e, "intermediate_activation",
                                uc->intermediate_relu ? "relu" : "none");
    }
    cJSON_AddNumberToObject(e, "dim", uc->dim);
    cJSON_AddNumberToObject(e, "buckets", (double)uc->buckets);
    cJSON_AddNumberToObject(e, "epochs", uc->epochs);
    cJSON_AddNumberToObject(e, "batch", uc->batch);
    cJSON_AddNumberToObject(e, "beta", uc->beta);
    cJSON_AddNumberToObject(e, "negatives", uc->n_neg);
    cJSON_AddNumberToObject(e, "tau", uc->tau);
    cJSON_AddNumberToObject(e, "mine_start", uc->mine_start);
    cJSON_AddNumberToObject(e, "cluster", uc->cluster);
    add_float(e, "temperature", uc->temperature);
    add_float(e, "temperature_clf", uc->temperature_clf);
    add_float(e, "lambda", uc->lambda);
    add_float(e, "lambda_head", uc->lambda_head);
    add_float(e, "bce", uc->bce);
    add_float(e, "lr_enc", uc->lr_enc);
    add_float(e, "lr_head", uc->lr_head);
    add_float(e, "lr_psi", uc->lr_psi);
    add_float(e, "wd", uc->wd);
    add_float(e, "warmup", uc->warmup);
    add_float(e, "dropout_enc", uc->dropout_enc);
    add_float(e, "dropout_head", uc->dropout_head);
    add_seed(root, uc->seed);
    cJSON *h = add_obj(root, "head");
    cJSON_AddNumberToObject(h, "n_labels", (double)train->n_labels);
    add_labels(root, train->label_names != NULL);
    cJSON *d = add_obj(root, "data");
    cJSON_AddStringToObject(d, "train", c->train_spec);
    cJSON_AddStringToObject(d, "test", c->test_spec);
    cJSON_AddNumberToObject(d, "n_train", (double)train->n);
    if (c->augment[0]) /* Gandalf label points were added in memory (n_train: D only) */
        cJSON_AddStringToObject(d, "augment", c->augment);
    else
        cJSON_AddNullToObject(d, "augment");
    cJSON *s = add_obj(root, "state");
    cJSON_AddNumberToObject(s, "epochs_done", st.epochs_done);
    cJSON_AddNumberToObject(s, "step", (double)st.steps);
    cJSON *fl = add_obj(root, "files");
    cJSON_AddStringToObject(fl, "model", XMC_MODEL_UNIDEC_FILE);
    return write_manifest(dir, print_tree(root, f0), err);
}

int xmc_model_load_unidec(const char *dir, xmc_unidec **u, xmc_texts **label_names,
                          xmc_error *err)
{
    *u = NULL;
    *label_names = NULL;
    char path[4096], cpath[4096], recipe[16];
    cJSON *root = NULL;
    double nl = 0;
    int has_labels = 0;
    int rc = read_config(dir, cpath, &root, err);
    if (rc)
        goto done;
    if ((rc = need_str(root, "recipe", cpath, recipe, sizeof recipe, err)))
        goto done;
    if (!xmc_recipe_is_unidec(recipe)) {
        rc = XMC_ERR(err, XMC_EINVAL, cpath, 0, "recipe '%s', expected unidec or depsl", recipe);
        goto done;
    }
    if ((rc = need_num(item(root, "head"), "n_labels", cpath, &nl, err)))
        goto done;
    has_labels = cJSON_IsString(item(root, "labels"));
    join(path, sizeof path, dir, XMC_MODEL_UNIDEC_FILE);
    if ((rc = xmc_unidec_load(path, u, err)))
        goto done;
    if (has_labels && (rc = read_labels(dir, (int64_t)nl, label_names, err)))
        goto done;
done:
    cJSON_Delete(root);
    if (rc) {
        xmc_unidec_free(*u);
        xmc_texts_free(*label_names);
        *u = NULL;
        *label_names = NULL;
    }
    return rc;
}
