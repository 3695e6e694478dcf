/* xmc bench ann: HNSW against exact search on synthetic vectors.
 *
 * Generates n random (Gaussian) and/or clustered (Gaussian mixture) vectors
 * of dim d in memory from the seed, builds the index (build time), computes
 * the exact top-k of a query sample by OpenBLAS GEMM (the reference), then
 * for each efSearch prints recall@k, batch queries/s (best of --reps) and
 * the p50/p99 latency of single-query calls, with the speed-up over exact.
 * --dump DIR writes DIR/<data>.base.f32, .query.f32 (raw row-major float32)
 * and .gt.i32 (exact ids, k per query) so bench/hnswlib_shim can run the
 * same data (bench/ann.sh prints both side by side). Lines starting with
 * "RESULT" / "BUILD" are for scripts.
 *
 * --cluster LEAF: balanced hierarchical k-means of the generated base
 * vectors instead (time, and mean cosine of points to their cluster's mean
 * direction against a random balanced assignment of the same sizes).
 *
 * --model DIR --input SPEC: ANN inference on a trained model instead: the
 * exact top-k (xmc_model_topk) against xmc_ann_topk at each ef, with
 * recall@k of the ANN lists against the exact ones, end-to-end queries/s
 * (encoder included) and P@1/3/5 of both. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "xmc/ann.h"
#include "xmc/cluster.h"
#include "xmc/hnsw.h"
#include "xmc/kernels.h"
#include "xmc/metrics.h"
#include "xmc/model.h"


/* Gaussian vectors, or points around `nc` Gaussian centres with noise sigma;
 * rows drawn in chunks from independent RNG streams (thread-count free). */
static float *synth(int64_t n, int64_t d, int clustered, int nc, double sigma, uint64_t seed,
                    uint64_t stream)
{
    float *x = xmc_malloc(sizeof(float) * (size_t)n * (size_t)d);
    float *c = clustered ? xmc_malloc(sizeof(float) * (size_t)nc * (size_t)d) : NULL;
    if (!x || (clustered && !c)) {
        xmc_free(x);
        xmc_free(c);
        return NULL;
    }
    if (c) {
        xmc_rng r;
        xmc_rng_seed(&r, seed, 1000003); /* same centres for base and queries */
        for (int64_t i = 0; i < (int64_t)nc * d; i++)
            c[i] = xmc_rng_normal(&r);
    }
    const int64_t chunk = 4096;
#pragma omp parallel for schedule(dynamic)
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        xmc_rng r;
        xmc_rng_seed(&r, seed, stream * 1000000007ull + (uint64_t)(c0 / chunk));
        int64_t c1 = c0 + chunk < n ? c0 + chunk : n;
        for (int64_t i = c0; i < c1; i++) {
            const float *ctr = c ? c + (int64_t)xmc_rng_below(&r, (uint64_t)nc) * d : NULL;
            for (int64_t j = 0; j < d; j++) {
                float z = xmc_rng_normal(&r);
                x[i * d + j] = ctr ? ctr[j] + (float)sigma * z : z;
            }
        }
    }
    xmc_free(c);
    return x;
}

static int dump(const char *dir, const char *name, const char *ext, const void *p, size_t bytes,
                xmc_error *err)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    xmc_outfile o;
    int rc = xmc_outfile_open(&o, path, err);
    if (rc != XMC_OK)
        return rc;
    if (fwrite(p, 1, bytes, o.fp) != bytes)
        o.failed = 1;
    return xmc_outfile_commit(&o, err);
}

/* Mean cosine of each point to its cluster's mean direction. */
static double intra_cos(const float *x, int64_t n, int64_t d, const int64_t *perm,
                        const int64_t *off, int64_t nc)
{
    double total = 0;
#pragma omp parallel for schedule(dynamic, 16) reduction(+ : total)
    for (int64_t c = 0; c < nc; c++) {
        double m[1024] = {0}, mn = 0;
        for (int64_t i = off[c]; i < off[c + 1]; i++) {
            const float *xi = x + perm[i] * d;
            double nr = 0;
            for (int64_t j = 0; j < d; j++)
                nr += (double)xi[j] * xi[j];
            nr = nr > 0 ? 1.0 / sqrt(nr) : 0;
            for (int64_t j = 0; j < d; j++)
                m[j] += xi[j] * nr;
        }
        for (int64_t j = 0; j < d; j++)
            mn += m[j] * m[j];
        mn = sqrt(mn);
        for (int64_t i = off[c]; i < off[c + 1]; i++) {
            const float *xi = x + perm[i] * d;
            double dot = 0, nr = 0;
            for (int64_t j = 0; j < d; j++) {
                dot += xi[j] * m[j];
                nr += (double)xi[j] * xi[j];
            }
            total += nr > 0 && mn > 0 ? dot / (sqrt(nr) * mn) : 0;
        }
    }
    return total / (double)n;
}

static int bench_cluster(const char *name, const float *x, int64_t n, int64_t d, int64_t leaf,
                         int64_t seed, xmc_error *err)
{
    xmc_cluster_params p;
    xmc_cluster_params_default(&p);
    p.max_leaf = leaf;
    p.seed = (uint64_t)seed;
    xmc_clusters *c;
    double t0 = xmc_now();
    int rc = xmc_cluster_balanced(x, n, d, &p, &c, err);
    if (rc)
        return rc;
    double t = xmc_now() - t0;
    int64_t *rp = xmc_malloc(sizeof(int64_t) * (size_t)n);
    if (!rp) {
        xmc_clusters_free(c);
        return XMC_ERR(err, XMC_ENOMEM, NULL, 0, "bench ann: out of memory");
    }
    for (int64_t i = 0; i < n; i++)
        rp[i] = i;
    xmc_rng r;
    xmc_rng_seed(&r, (uint64_t)seed, 77);
    xmc_rng_shuffle_i64(&r, rp, n);
    double ours = intra_cos(x, n, d, c->perm, c->offsets, c->n_clusters);
    double rnd = intra_cos(x, n, d, rp, c->offsets, c->n_clusters);
    printf("[%s] balanced k-means: %lld points -> %lld clusters of <= %lld (depth %d) in %.2f s; "
           "mean cosine to cluster mean %.4f vs random balanced %.4f\n",
           name, (long long)n, (long long)c->n_clusters, (long long)leaf, c->depth, t, ours, rnd);
    printf("CLUSTER %s %.3f %.4f %.4f\n", name, t, ours, rnd);
    xmc_free(rp);
    xmc_clusters_free(c);
    return XMC_OK;
}

/* P@1, P@3, P@5 (those <= k) of top-k lists against the truth. */
static int precision(const xmc_dataset *ds, const int32_t *lab, const float *sc, int64_t n, int k,
                     int64_t L, double p[3], xmc_error *err)
{
    int ks[3] = {1, 3, 5}, nk = 0;
    while (nk < 3 && ks[nk] <= k)
        nk++;
    xmc_csr *P = NULL;
    int rc = xmc_ann_topk_to_csr(lab, sc, n, k, L, &P, err);
    if (rc == XMC_OK) {
        xmc_metrics_opts o = {ks, nk, NULL, ds->filter};
        xmc_metrics_result r;
        rc = xmc_metrics_eval(ds->Y, P, &o, &r, err);
        for (int i = 0; i < 3; i++)
            p[i] = i < nk && rc == XMC_OK ? 100.0 * r.p[i] : NAN;
    }
    xmc_csr_free(P);
    return rc;
}

static double label_recall(const int32_t *a, const int32_t *e, int64_t n, int k)
{
    int64_t hit = 0, tot = 0;
    for (int64_t i = 0; i < n; i++)
        for (int x = 0; x < k; x++) {
            if (e[i * k + x] < 0)
                continue;
            tot++;
            for (int y = 0; y < k; y++)
                if (a[i * k + y] == e[i * k + x]) {
                    hit++;
                    break;
                }
        }
    return tot ? (double)hit / (double)tot : 1.0;
}

static int bench_model(const char *dir, const char *input, int k, const int *efl, int nef, int M,
                       int efc, int64_t seed, int metric)
{
    xmc_error err = {0};
    xmc_model *m = NULL;
    xmc_dataset *ds = NULL;
    xmc_enc_data *d = NULL;
    xmc_ann *a = NULL;
    int32_t *le = NULL, *la = NULL;
    float *se = NULL, *sa = NULL;
    int status = 0;
    if (xmc_model_load(dir, 0, &m, &err))
        goto fail;
    xmc_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.label_vocab = xmc_model_label_names(m);
    if (!xmc_model_head(m)) {
        cli_failf("%s: bench ann needs a model with a dense classifier (recipe renee)", dir);
        status = 1;
        goto done;
    }
    if (xmc_dataset_load(input, &lo, &ds, &err) || xmc_model_prepare(m, ds, &d, &err))
        goto fail;
    const int64_t n = d->n, L = xmc_ova_get_config(xmc_model_head(m))->n_labels;
    size_t nk = (size_t)(n > 0 ? n : 1) * (size_t)k;
    le = xmc_malloc(nk * sizeof *le);
    la = xmc_malloc(nk * sizeof *la);
    se = xmc_malloc(nk * sizeof *se);
    sa = xmc_malloc(nk * sizeof *sa);
    if (!le || !la || !se || !sa) {
        XMC_ERR(&err, XMC_ENOMEM, NULL, 0, "bench ann: out of memory");
        goto fail;
    }
    xmc_hnsw_params p;
    xmc_hnsw_params_default(&p);
    p.M = M;
    p.ef_construction = efc;
    p.seed = (uint64_t)seed;
    p.metric = metric;
    int built;
    double t0 = xmc_now();
    if (xmc_ann_open(m, dir, &p, &a, &built, &err))
        goto fail;
    printf("model %s: %lld labels, d=%lld; index %s in %.2f s (%.1f MB); %lld test rows, k=%d, "
           "threads=%d\n",
           dir, (long long)L, (long long)xmc_hnsw_dim(xmc_ann_index(a)), built ? "built" : "loaded",
           xmc_now() - t0, xmc_hnsw_bytes(xmc_ann_index(a)) / 1048576.0, (long long)n, k,
           xmc_get_threads());
    /* Exact and ANN interleaved, best of 3 each. */
    double te = INFINITY, pe[3], pa[3];
    for (int r = 0; r < 3; r++) {
        t0 = xmc_now();
        if (xmc_model_topk(m, d, k, le, se, &err))
            goto fail;
        double t = xmc_now() - t0;
        te = t < te ? t : te;
    }
    if (precision(ds, le, se, n, k, L, pe, &err))
        goto fail;
    printf("%8s %10s %12s %8s %8s %8s\n", "ef", "recall@k", "q/s", "P@1", "P@3", "P@5");
    printf("%8s %10.4f %12.0f %8.2f %8.2f %8.2f\n", "exact", 1.0, n / te, pe[0], pe[1], pe[2]);
    for (int e = 0; e < nef; e++) {
        double ta = INFINITY;
        for (int r = 0; r < 3; r++) {
            t0 = xmc_now();
            if (xmc_ann_topk(a, m, d, k, efl[e], la, sa, &err))
                goto fail;
            double t = xmc_now() - t0;
            ta = t < ta ? t : ta;
        }
        if (precision(ds, la, sa, n, k, L, pa, &err))
            goto fail;
        printf("%8d %10.4f %12.0f %8.2f %8.2f %8.2f   (P@1 %+.2f, %.2fx exact q/s)\n", efl[e],
               label_recall(la, le, n, k), n / ta, pa[0], pa[1], pa[2], pa[0] - pe[0], te / ta);
        printf("RESULT ann-model %d %.4f %.0f %.2f %.2f\n", efl[e], label_recall(la, le, n, k),
               n / ta, pa[0], pe[0]);
    }
    goto done;
fail:
    status = cli_fail(&err);
done:
    xmc_ann_free(a);
    xmc_enc_data_free(d);
    xmc_dataset_free(ds);
    xmc_model_free(m);
    xmc_free(le);
    xmc_free(la);
    xmc_free(se);
    xmc_free(sa);
    return status;
}

int bench_ann(int argc, char **argv)
{
    int64_t n = 1000000, dim = 64, nq = 1000;
    int M = XMC_HNSW_DEFAULT_M, efc = XMC_HNSW_DEFAULT_EF_CONSTRUCTION, k = 10, threads = 0;
    int lat = 1000, reps = 5, nc = 1000;
    int64_t seed = 1, cluster_leaf = 0;
    double sigma = 0.6;
    const char *data = "random,clustered", *metric_s = "l2", *efs = "10,20,40,80,160,320";
    const char *storage_s = "f32", *dump_dir = NULL, *save = NULL, *model = NULL, *input = NULL;
    const cli_opt opts[] = {
        {"n", CLI_I64, &n, "base vectors per data set (default 1000000)", 0},
        {"dim", CLI_I64, &dim, "dimension (default 64)", 0},
        {"data", CLI_STR, &data, "random, clustered or both, comma-separated", 0},
        {"clusters", CLI_INT, &nc, "centres of the clustered data (default 1000)", 0},
        {"sigma", CLI_DOUBLE, &sigma, "noise around a centre, clustered (default 0.6)", 0},
        {"metric", CLI_STR, &metric_s, "l2, cosine or ip (default l2; --model: cosine, mips or ip)", 0},
        {"storage", CLI_STR, &storage_s, "f32 or bf16 (default f32)", 0},
        {"M", CLI_INT, &M, "HNSW M (default 16)", 0},
        {"ef-construction", CLI_INT, &efc, "HNSW efConstruction (default 200)", 0},
        {"ef", CLI_STR, &efs, "efSearch sweep (default 10,20,40,80,160,320)", 0},
        {"k", CLI_INT, &k, "neighbours (default 10)", 0},
        {"queries", CLI_I64, &nq, "query sample for recall and q/s (default 1000)", 0},
        {"latency", CLI_INT, &lat, "single-query calls timed per ef (default 1000; 0 = skip)", 0},
        {"reps", CLI_INT, &reps, "batch repetitions, best reported (default 5)", 0},
        {"threads", CLI_INT, &threads, "threads (default: OpenMP's)", 0},
        {"seed", CLI_I64, &seed, "data and index seed (default 1)", 0},
        {"dump", CLI_STR, &dump_dir, "write base/query/ground truth to DIR for hnswlib_shim", 0},
        {"save", CLI_STR, &save, "save each index to PATH.<data>.hnsw", 0},
        {"cluster", CLI_I64, &cluster_leaf, "balanced k-means into clusters of <= N instead", 0},
        {"model", CLI_STR, &model, "trained model DIR: ANN vs exact inference (with --input)", 0},
        {"input", CLI_STR, &input, "test data spec for --model", 0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    int pr = cli_parse(argc, argv, opts, "[options]");
    if (pr)
        return pr == 1 ? 0 : 2;
    xmc_log_set_sink(xmc_log_stderr, NULL);
    if (threads > 0)
        xmc_set_threads(threads);
    int metric = !strcmp(metric_s, "ip") ? XMC_METRIC_IP
                 : !strcmp(metric_s, "cosine") ? XMC_METRIC_COSINE
                 : !strcmp(metric_s, "l2") ? XMC_METRIC_L2 : -1;
    if (metric < 0 && !(model && !strcmp(metric_s, "mips")))
        return cli_failf("--metric: expected l2, cosine or ip (or mips with --model), got '%s'",
                         metric_s);
    int storage = !strcmp(storage_s, "f32") ? XMC_STORE_F32 : !strcmp(storage_s, "bf16") ? XMC_STORE_BF16 : -1;
    if (storage < 0)
        return cli_failf("--storage: expected f32 or bf16, got '%s'", storage_s);
    int ef_list[32];
    int nef = cli_parse_int_list(efs, ef_list, 32);
    if (nef <= 0)
        return cli_failf("--ef: expected a list like 10,20,40, got '%s'", efs);
    if (model || input) {
        if (!model || !input)
            return cli_failf("--model and --input go together");
        if (k < 1 || k > 1000)
            return cli_failf("--k: expected 1..1000, got %d", k);
        /* Model mode: cosine = Renee (normalised rows), mips = the L2
         * reduction (xmc_ann with XMC_METRIC_L2), ip = plain inner product. */
        if (metric == XMC_METRIC_L2)
            return cli_failf("--metric with --model: cosine, mips or ip");
        return bench_model(model, input, k, ef_list, nef, M, efc, seed,
                           metric < 0 ? XMC_METRIC_L2 : metric);
    }
    if (n < 1 || dim < 1 || nq < 1 || k < 1 || k > n || k > 20000 || k > 1024 || nc < 1 || reps < 1 || lat < 0)
        return cli_failf("--n, --dim, --queries, --k, --clusters, --reps must be positive "
                         "(k <= n, k <= 1024)");
    if (dump_dir) {
        xmc_error e = {0};
        if (xmc_mkdir_p(dump_dir, &e) != XMC_OK)
            return cli_fail(&e);
    }
    printf("xmc bench ann: n=%lld d=%lld metric=%s storage=%s M=%d efC=%d k=%d queries=%lld "
           "threads=%d kernel=%s seed=%lld\n",
           (long long)n, (long long)dim, metric_s, storage_s, M, efc, k, (long long)nq,
           xmc_get_threads(), xmc_cpu_level_name(), (long long)seed);

    int status = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", data);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int clustered;
        if (!strcmp(tok, "random"))
            clustered = 0;
        else if (!strcmp(tok, "clustered"))
            clustered = 1;
        else
            return cli_failf("--data: expected random or clustered, got '%s'", tok);
        xmc_error err = {0};
        float *x = synth(n, dim, clustered, nc, sigma, (uint64_t)seed, 2 * (uint64_t)clustered);
        float *q = synth(nq, dim, clustered, nc, sigma, (uint64_t)seed, 2 * (uint64_t)clustered + 1);
        int64_t *gt = xmc_malloc(sizeof(int64_t) * (size_t)(nq * k));
        int64_t *ids = xmc_malloc(sizeof(int64_t) * (size_t)(nq * k));
        double *t = xmc_malloc(sizeof(double) * (size_t)(lat > reps ? lat : reps));
        int32_t *gt32 = xmc_malloc(sizeof(int32_t) * (size_t)(nq * k));
        xmc_hnsw *h = NULL;
        if (!x || !q || !gt || !ids || !t || !gt32) {
            XMC_ERR(&err, XMC_ENOMEM, NULL, 0, "bench ann: out of memory for %lld x %lld vectors",
                    (long long)n, (long long)dim);
            goto next;
        }
        if (cluster_leaf > 0) {
            if (dim > 1024)
                XMC_ERR(&err, XMC_EINVAL, NULL, 0, "--cluster: --dim at most 1024");
            else
                bench_cluster(tok, x, n, dim, cluster_leaf, seed, &err);
            goto next;
        }
        printf("\n[%s] generating done; exact top-%d by OpenBLAS GEMM...\n", tok, k);
        fflush(stdout);
        /* Warm-up (OpenBLAS threads, page faults) outside the timing. */
        if (xmc_knn_exact(x, n < 20000 ? n : 20000, dim, metric, q, nq, k, gt, NULL, &err) != XMC_OK)
            goto next;
        double t0 = xmc_now();
        if (xmc_knn_exact(x, n, dim, metric, q, nq, k, gt, NULL, &err) != XMC_OK)
            goto next;
        double t_exact = xmc_now() - t0;
        if (dump_dir) {
            for (int64_t i = 0; i < nq * k; i++)
                gt32[i] = (int32_t)gt[i];
            if (dump(dump_dir, tok, "base.f32", x, sizeof(float) * (size_t)(n * dim), &err) ||
                dump(dump_dir, tok, "query.f32", q, sizeof(float) * (size_t)(nq * dim), &err) ||
                dump(dump_dir, tok, "gt.i32", gt32, sizeof(int32_t) * (size_t)(nq * k), &err))
                goto next;
        }
        xmc_hnsw_params p;
        xmc_hnsw_params_default(&p);
        p.metric = metric;
        p.storage = storage;
        p.M = M;
        p.ef_construction = efc;
        p.seed = (uint64_t)seed;
        t0 = xmc_now();
        if (xmc_hnsw_build(&h, x, n, dim, &p, &err) != XMC_OK)
            goto next;
        double t_build = xmc_now() - t0;
        printf("[%s] build %.1f s (%.0f vectors/s), %d layers, %.1f MB; exact %.2f s (%.0f q/s)\n",
               tok, t_build, n / t_build, xmc_hnsw_levels(h), xmc_hnsw_bytes(h) / 1048576.0,
               t_exact, nq / t_exact);
        printf("BUILD xmc %s %.2f\n", tok, t_build);
        if (save) {
            char path[1024];
            snprintf(path, sizeof path, "%s.%s.hnsw", save, tok);
            if (xmc_hnsw_save(h, path, &err) != XMC_OK)
                goto next;
        }
        printf("%6s %10s %12s %10s %10s %12s\n", "ef", "recall@k", "q/s(batch)", "p50_us",
               "p99_us", "vs_exact");
        for (int e = 0; e < nef; e++) {
            int ef = ef_list[e] < k ? k : ef_list[e];
            for (int r = 0; r < reps; r++) {
                t0 = xmc_now();
                if (xmc_hnsw_search(h, q, nq, dim, k, ef, ids, NULL, &err) != XMC_OK)
                    goto next;
                t[r] = xmc_now() - t0;
            }
            bench_sort(t, reps);
            double qps = nq / t[0]; /* best of reps: least disturbed by other load */
            double recall = xmc_knn_recall(ids, gt, nq, k);
            double p50 = NAN, p99 = NAN;
            if (lat > 0) {
                int64_t one[1024];
                for (int i = 0; i < lat; i++) {
                    const float *qi = q + (i % nq) * dim;
                    t0 = xmc_now();
                    if (xmc_hnsw_search(h, qi, 1, dim, k, ef, one, NULL, &err) != XMC_OK)
                        goto next;
                    t[i] = xmc_now() - t0;
                }
                bench_sort(t, lat);
                p50 = 1e6 * t[lat / 2];
                p99 = 1e6 * t[(int)((lat - 1) * 0.99)];
            }
            printf("%6d %10.4f %12.0f %10.1f %10.1f %11.1fx\n", ef, recall, qps, p50, p99,
                   qps * t_exact / nq);
            printf("RESULT xmc %s %d %.4f %.0f %.1f %.1f\n", tok, ef, recall, qps, p50, p99);
            fflush(stdout);
        }
    next:
        xmc_hnsw_free(h);
        xmc_free(x);
        xmc_free(q);
        xmc_free(gt);
        xmc_free(ids);
        xmc_free(t);
        xmc_free(gt32);
        if (err.code) {
            status = cli_fail(&err);
            break;
        }
    }
    return status;
}
