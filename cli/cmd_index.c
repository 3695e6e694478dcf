/* xmc index: build, grow, query and describe an HNSW index over a file of
 * raw float32 vectors (row-major, no header: what `xmc bench ann --dump`
 * writes and numpy's tofile() gives).
 *   xmc index build  --vectors F --dim D --out IDX [--metric ..] [--M ..]
 *   xmc index add    --index IDX --vectors F --dim D      (ids continue)
 *   xmc index search --index IDX --queries F --k K [--ef E] [--out FILE]
 *   xmc index info   --index IDX
 *   xmc index add-labels --model DIR --labels Y_new.txt [--head de|clf|both]
 *                    (unidec / depsl: embed new label texts into the model's
 *                    label index; ids continue after the trained L)
 * search prints "query<TAB>rank<TAB>id<TAB>distance" lines. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "xmc/ann.h"
#include "xmc/bert.h"
#include "xmc/hnsw.h"
#include "xmc/model.h"

/* Read a raw float32 file of rows of `dim`; *data freed with xmc_free. */
static int read_f32(const char *path, int64_t dim, float **data, int64_t *n, xmc_error *err)
{
    char *buf;
    size_t len;
    *data = NULL;
    if (dim < 1)
        return XMC_ERR(err, XMC_EINVAL, NULL, 0, "--dim must be >= 1, got %lld", (long long)dim);
    int rc = xmc_read_file(path, &buf, &len, err);
    if (rc != XMC_OK)
        return rc;
    size_t row = (size_t)dim * sizeof(float);
    if (len == 0 || len % row != 0) {
        xmc_free(buf);
        return XMC_ERR(err, XMC_EFORMAT, path, 0,
                       "%zu bytes is not a whole number of %lld-dim float32 rows (%zu bytes each)",
                       len, (long long)dim, row);
    }
    /* xmc_read_file's buffer is 64-byte aligned (xmc_malloc): use it as is. */
    *data = (float *)(void *)buf;
    *n = (int64_t)(len / row);
    return XMC_OK;
}

static int parse_metric(const char *s)
{
    return !strcmp(s, "ip") ? XMC_METRIC_IP
           : !strcmp(s, "cosine") ? XMC_METRIC_COSINE
           : !strcmp(s, "l2") ? XMC_METRIC_L2 : -1;
}

static int index_build(int argc, char **argv)
{
    const char *vectors = NULL, *out = NULL, *metric = "cosine", *storage = "f32";
    int64_t dim = 0, seed = 1;
    int M = XMC_HNSW_DEFAULT_M, efc = XMC_HNSW_DEFAULT_EF_CONSTRUCTION;
    int efs = XMC_HNSW_DEFAULT_EF_SEARCH, threads = 0;
    const cli_opt opts[] = {
        {"vectors", CLI_STR, &vectors, "raw float32 vectors, row-major", 1},
        {"dim", CLI_I64, &dim, "dimension of each row", 1},
        {"out", CLI_STR, &out, "index file to write", 1},
        {"metric", CLI_STR, &metric, "cosine, ip or l2 (default cosine)", 0},
        {"storage", CLI_STR, &storage, "f32 or bf16 (default f32)", 0},
        {"M", CLI_INT, &M, "links per node (default 16)", 0},
        {"ef-construction", CLI_INT, &efc, "build candidate list (default 200)", 0},
        {"ef-search", CLI_INT, &efs, "default search candidate list (default 64)", 0},
        {"seed", CLI_I64, &seed, "level draws (default 1)", 0},
        {"threads", CLI_INT, &threads, "threads (default: all)", 0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    int pr = cli_parse(argc, argv, opts, "--vectors F --dim D --out IDX [options]");
    if (pr)
        return pr == 1 ? 0 : 2;
    if (threads > 0)
        xmc_set_threads(threads);
    xmc_hnsw_params p;
    xmc_hnsw_params_default(&p);
    p.metric = parse_metric(metric);
    if (p.metric < 0)
        return cli_failf("--metric: expected cosine, ip or l2, got '%s'", metric);
    p.storage = !strcmp(storage, "bf16") ? XMC_STORE_BF16 : XMC_STORE_F32;
    if (strcmp(storage, "bf16") && strcmp(storage, "f32"))
        return cli_failf("--storage: expected f32 or bf16, got '%s'", storage);
    p.M = M;
    p.ef_construction = efc;
    p.ef_search = efs;
    p.seed = (uint64_t)seed;
    xmc_error err = {0};
    float *x = NULL;
    int64_t n = 0;
    xmc_hnsw *h = NULL;
    double t0 = xmc_now();
    int rc = read_f32(vectors, dim, &x, &n, &err);
    if (!rc)
        rc = xmc_hnsw_build(&h, x, n, dim, &p, &err);
    if (!rc)
        rc = xmc_hnsw_save(h, out, &err);
    if (!rc)
        fprintf(stderr, "indexed %lld vectors of dim %lld in %.2f s (%d layers, %.1f MB) -> %s\n",
                (long long)n, (long long)dim, xmc_now() - t0, xmc_hnsw_levels(h),
                xmc_hnsw_bytes(h) / 1048576.0, out);
    xmc_hnsw_free(h);
    xmc_free(x);
    return rc ? cli_fail(&err) : 0;
}

static int index_add(int argc, char **argv)
{
    const char *vectors = NULL, *idx = NULL;
    int64_t dim = 0;
    int threads = 0;
    const cli_opt opts[] = {
        {"index", CLI_STR, &idx, "index file (rewritten atomically)", 1},
        {"vectors", CLI_STR, &vectors, "raw float32 vectors to add", 1},
        {"dim", CLI_I64, &dim, "dimension of each row", 1},
        {"threads", CLI_INT, &threads, "threads (default: all)", 0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    int pr = cli_parse(argc, argv, opts, "--index IDX --vectors F --dim D");
    if (pr)
        return pr == 1 ? 0 : 2;
    if (threads > 0)
        xmc_set_threads(threads);
    xmc_error err = {0};
    float *x = NULL;
    int64_t n = 0;
    xmc_hnsw *h = NULL;
    int rc = xmc_hnsw_load(&h, idx, 0, &err);
    int64_t n0 = h ? xmc_hnsw_size(h) : 0;
    if (!rc)
        rc = read_f32(vectors, dim, &x, &n, &err);
    if (!rc)
        rc = xmc_hnsw_add(h, x, n, dim, &err);
    if (!rc)
        rc = xmc_hnsw_save(h, idx, &err);
    if (!rc)
        fprintf(stderr, "added %lld vectors as ids %lld..%lld -> %s\n", (long long)n,
                (long long)n0, (long long)(n0 + n - 1), idx);
    xmc_hnsw_free(h);
    xmc_free(x);
    return rc ? cli_fail(&err) : 0;
}

static int index_search(int argc, char **argv)
{
    const char *queries = NULL, *idx = NULL, *out = NULL;
    int k = 10, ef = 0, threads = 0, mmap = 0;
    const cli_opt opts[] = {
        {"index", CLI_STR, &idx, "index file", 1},
        {"queries", CLI_STR, &queries, "raw float32 queries (the index's dimension)", 1},
        {"k", CLI_INT, &k, "neighbours per query (default 10)", 0},
        {"ef", CLI_INT, &ef, "search candidate list (default: the index's)", 0},
        {"out", CLI_STR, &out, "write results here (default stdout)", 0},
        {"mmap", CLI_FLAG, &mmap, "map the index instead of reading it", 0},
        {"threads", CLI_INT, &threads, "threads (default: all)", 0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    int pr = cli_parse(argc, argv, opts, "--index IDX --queries F [--k K] [--ef E] [--out FILE]");
    if (pr)
        return pr == 1 ? 0 : 2;
    if (threads > 0)
        xmc_set_threads(threads);
    xmc_error err = {0};
    xmc_hnsw *h = NULL;
    float *q = NULL, *dist = NULL;
    int64_t nq = 0, *ids = NULL;
    xmc_outfile o = {0};
    int rc = xmc_hnsw_load(&h, idx, mmap ? XMC_HNSW_LOAD_MMAP : 0, &err);
    if (!rc)
        rc = read_f32(queries, xmc_hnsw_dim(h), &q, &nq, &err);
    if (!rc && k > 0) {
        ids = xmc_malloc(sizeof(int64_t) * (size_t)nq * (size_t)k);
        dist = xmc_malloc(sizeof(float) * (size_t)nq * (size_t)k);
        if (!ids || !dist)
            rc = XMC_ERR(&err, XMC_ENOMEM, NULL, 0, "out of memory for %lld x %d results",
                         (long long)nq, k);
    }
    double t0 = xmc_now();
    if (!rc)
        rc = xmc_hnsw_search(h, q, nq, xmc_hnsw_dim(h), k, ef, ids, dist, &err);
    double t = xmc_now() - t0;
    FILE *f = stdout;
    if (!rc && out) {
        rc = xmc_outfile_open(&o, out, &err);
        f = o.fp;
    }
    if (!rc) {
        for (int64_t i = 0; i < nq; i++)
            for (int j = 0; j < k; j++)
                if (ids[i * k + j] >= 0)
                    fprintf(f, "%lld\t%d\t%lld\t%.6g\n", (long long)i, j + 1,
                            (long long)ids[i * k + j], dist[i * k + j]);
        if (out)
            rc = xmc_outfile_commit(&o, &err);
        fprintf(stderr, "searched %lld queries in %.3f s (%.0f q/s)\n", (long long)nq, t,
                t > 0 ? nq / t : 0.0);
    }
    xmc_hnsw_free(h);
    xmc_free(q);
    xmc_free(ids);
    xmc_free(dist);
    return rc ? cli_fail(&err) : 0;
}

static int index_info(int argc, char **argv)
{
    const char *idx = NULL;
    const cli_opt opts[] = {
        {"index", CLI_STR, &idx, "index file", 1},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    int pr = cli_parse(argc, argv, opts, "--index IDX");
    if (pr)
        return pr == 1 ? 0 : 2;
    xmc_error err = {0};
    xmc_hnsw *h = NULL;
    if (xmc_hnsw_load(&h, idx, XMC_HNSW_LOAD_MMAP, &err))
        return cli_fail(&err);
    xmc_hnsw_params p;
    xmc_hnsw_get_params(h, &p);
    static const char *metrics[] = {"ip", "cosine", "l2"};
    printf("vectors %lld\ndim %lld\nmetric %s\nstorage %s\nM %d\nef_construction %d\n"
           "ef_search %d\nseed %llu\nlayers %d\nbytes %zu\n",
           (long long)xmc_hnsw_size(h), (long long)xmc_hnsw_dim(h), metrics[p.metric],
           p.storage == XMC_STORE_BF16 ? "bf16" : "f32", p.M, p.ef_construction, p.ef_search,
           (unsigned long long)p.seed, xmc_hnsw_levels(h), xmc_hnsw_bytes(h));
    xmc_hnsw_free(h);
    return 0;
}

/* Label texts, one per line; an empty line is refused with its place. */
static int read_label_texts(const char *path, xmc_texts **out, xmc_error *err)
{
    int rc = cli_read_lines(path, 1, out, err);
    if (!rc && !*out)
        rc = XMC_ERR(err, XMC_EFORMAT, path, 0, "no label texts (one per line)");
    return rc;
}

static int index_add_labels(int argc, char **argv)
{
    const char *model = NULL, *labels = NULL, *head = NULL;
    int threads = 0;
    const cli_opt opts[] = {
        {"model", CLI_STR, &model, "unidec / depsl model directory", 1},
        {"labels", CLI_STR, &labels, "new label texts, one per line", 1},
        {"head", CLI_STR, &head, "index to build if missing: de | clf | both (default: "
                                 "both for unidec, de for depsl)", 0},
        {"threads", CLI_INT, &threads, "threads (default: all)", 0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    int pr = cli_parse(argc, argv, opts, "--model DIR --labels Y_new.txt [--head H]");
    if (pr)
        return pr == 1 ? 0 : 2;
    if (threads > 0)
        xmc_set_threads(threads);
    xmc_error err = {0};
    char recipe[16];
    if (xmc_model_dir_recipe(model, recipe, sizeof recipe, &err))
        return cli_fail(&err);
    if (!xmc_recipe_is_unidec(recipe))
        return cli_failf("%s: recipe %s has no dual-encoder (DE) head to embed label texts "
                         "with; add-labels needs a unidec or depsl model", model, recipe);
    int depsl = !strcmp(recipe, "depsl");
    int which;
    if (cli_unidec_head(head, depsl, &which))
        return 1;
    xmc_texts *t = NULL, *names = NULL;
    xmc_unidec *u = NULL;
    int64_t first = 0;
    int rc = 0;
    double t0 = xmc_now();
    if (read_label_texts(labels, &t, &err) || xmc_bert_encoder_register(&err) ||
        xmc_model_load_unidec(model, &u, &names, &err) ||
        xmc_unidec_add_labels(u, model, t, which, &first, &err))
        rc = cli_fail(&err);
    else
        fprintf(stderr, "added %lld labels (ids %lld..%lld) to %s in %.2fs\n", (long long)t->n,
                (long long)first, (long long)(first + t->n - 1), model, xmc_now() - t0);
    xmc_texts_free(t);
    xmc_texts_free(names);
    xmc_unidec_free(u);
    return rc;
}

int cmd_index(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
        const char *summary;
    } subs[] = {
        {"build", index_build, "HNSW index over a raw float32 vector file"},
        {"add", index_add, "add vectors to an index (no rebuild)"},
        {"search", index_search, "k nearest neighbours of query vectors"},
        {"info", index_info, "parameters and size of an index"},
        {"add-labels", index_add_labels, "unidec/depsl: index new label texts (zero-shot)"},
    };
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: xmc index <command> [options]\n");
        for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
            fprintf(f, "  %-10s %s\n", subs[i].name, subs[i].summary);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (!strcmp(argv[1], subs[i].name))
            return subs[i].run(argc - 1, argv + 1);
    return cli_failf("unknown index command '%s' (see xmc index --help)", argv[1]);
}
