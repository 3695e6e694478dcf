/* xmc bench classifier --head ffi --fan-in F[,F...]: one fused training
 * step of the fixed fan-in head (include/xmc/ffi.h) against a dense head of
 * the same label count, timed in the same run, interleaved (dense, then each
 * F, per repetition), median of --reps. Reports ms/step, examples/s,
 * effective GFLOP/s (6 B L F for FFI, 6 B L d dense: forward, dE and dW),
 * bytes per label, the ratio to dense, and checks xmc_ffi_bytes against
 * (4 + 4) F + optimizer state per label.
 *
 * Dense baselines (--dense): "ova", the fused dense head of head.h
 * (xmc_ova_train_step, fp32, same optimizer and hyper-parameters), and/or
 * "blas", Renee's chunked pass written with OpenBLAS's three GEMMs per label
 * chunk (Z = E W_c^T; G = sigmoid(Z) - Y; dE += G W_c; dW_c = G^T E;
 * SGD-momentum update). Both hold fp32 weights + momentum: 8 d bytes/label.
 * The speedup column is against the first dense baseline timed. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"
#include "xmc/ffi.h"
#include "xmc/head.h"
#include "xmc/kernels.h"

#define MAX_F 16
#define DENSE_CHUNK 2048

typedef struct dense {
    int64_t L;
    int d, B;
    float *W, *m, *Z, *gW;
} dense;

/* Process CPU seconds (all threads): on a shared machine flops per CPU-second
 * show the per-core efficiency that wall time hides (OpenMP spin-waiting
 * counts as CPU; OMP_WAIT_POLICY=passive avoids it). */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One dense step (BCE, SGD momentum); Y sparse, rows 0..B-1. */
static void dense_step(dense *h, const float *E, const xmc_csr *Y, float lr, float mu, float *dE)
{
    const int d = h->d, B = h->B;
    memset(dE, 0, (size_t)B * d * 4);
    for (int64_t c0 = 0; c0 < h->L; c0 += DENSE_CHUNK) {
        int nc = (int)(h->L - c0 < DENSE_CHUNK ? h->L - c0 : DENSE_CHUNK);
        float *Wc = h->W + c0 * d, *mc = h->m + c0 * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, nc, d, 1.0f, E, d, Wc, d, 0.0f,
                    h->Z, nc);
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            float *z = h->Z + (size_t)b * nc;
            for (int u = 0; u < nc; u++)
                z[u] = 1.0f / (1.0f + expf(-z[u]));
            for (int64_t p = Y->indptr[b]; p < Y->indptr[b + 1]; p++)
                if (Y->indices[p] >= c0 && Y->indices[p] < c0 + nc)
                    z[Y->indices[p] - c0] -= 1.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, d, nc, 1.0f, h->Z, nc, Wc, d,
                    1.0f, dE, d);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nc, d, B, 1.0f, h->Z, nc, E, d,
                    0.0f, h->gW, d);
        size_t n = (size_t)nc * d;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            mc[i] = mu * mc[i] + h->gW[i];
            Wc[i] -= lr * mc[i];
        }
    }
}

int bench_ffi(int argc, char **argv)
{
    const char *head = "ffi", *fans = NULL, *opt = "sgdm", *dense_kind = "ova";
    int64_t L = 131072, chunk = 0;
    int d = 768, B = 256, reps = 5, threads = 0, no_dense = 0, with_ref = 0, labels_per_row = 5;
    int64_t seed = 1;
    cli_opt opts[] = {
        {"head", CLI_STR, &head, "head to benchmark (ffi)", 0},
        {"fan-in", CLI_STR, &fans, "fan-in F, or a list F1,F2,... (each in [1, dim])", 1},
        {"labels", CLI_I64, &L, "labels L (default 131072)", 0},
        {"dim", CLI_INT, &d, "input dimension d (default 768)", 0},
        {"batch", CLI_INT, &B, "batch B (default 256)", 0},
        {"reps", CLI_INT, &reps, "timed steps per head, median reported (default 5)", 0},
        {"threads", CLI_INT, &threads, "threads (default: OpenMP's)", 0},
        {"chunk", CLI_I64, &chunk, "FFI labels per chunk (default 128)", 0},
        {"opt", CLI_STR, &opt, "optimizer of both heads' state: sgdm or adam (FFI only)", 0},
        {"labels-per-row", CLI_INT, &labels_per_row, "positives per example (default 5)", 0},
        {"seed", CLI_I64, &seed, "seed", 0},
        {"dense", CLI_STR, &dense_kind, "dense baseline: ova (fused head.h), blas, both, none", 0},
        {"no-dense", CLI_FLAG, &no_dense, "same as --dense none", 0},
        {"with-ref", CLI_FLAG, &with_ref, "also time the FFI reference (plain C) kernels", 0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    int pr = cli_parse(argc, argv, opts,
                       "xmc bench classifier --head ffi --fan-in F [--labels L --dim d --batch B]");
    if (pr)
        return pr == 1 ? 0 : 2;
    if (strcmp(head, "ffi"))
        return cli_failf("bench_ffi: --head must be ffi, got '%s'", head);
    int Fs[MAX_F], nF = cli_parse_int_list(fans, Fs, MAX_F);
    if (nF < 1)
        return cli_failf("--fan-in: expected F or F1,F2,... (at most %d), got '%s'", MAX_F, fans);
    if (L < 1 || d < 1 || B < 1 || reps < 1 || labels_per_row < 0 || labels_per_row > L)
        return cli_failf("--labels, --dim, --batch, --reps must be >= 1 and --labels-per-row "
                         "in [0, labels]");
    if (strcmp(opt, "sgdm") && strcmp(opt, "adam"))
        return cli_failf("--opt: expected sgdm or adam, got '%s'", opt);
    int use_ova = 0, use_blas = 0;
    if (!strcmp(dense_kind, "ova") || !strcmp(dense_kind, "both"))
        use_ova = 1;
    if (!strcmp(dense_kind, "blas") || !strcmp(dense_kind, "both"))
        use_blas = 1;
    if (!use_ova && !use_blas && strcmp(dense_kind, "none"))
        return cli_failf("--dense: expected ova, blas, both or none, got '%s'", dense_kind);
    if (no_dense)
        use_ova = use_blas = 0;
    no_dense = !use_ova && !use_blas;
    if (threads > 0)
        xmc_set_threads(threads);

    xmc_error err = {0};
    int rc = 0;
    xmc_ffi *heads[MAX_F] = {0};
    xmc_ffi *refh = NULL;
    xmc_ova *ova = NULL;
    dense dh = {0};
    float *E = malloc((size_t)B * d * 4), *dE = malloc((size_t)B * d * 4);
    int64_t *indptr = malloc((size_t)(B + 1) * 8);
    int32_t *indices = malloc((size_t)B * (labels_per_row + 1) * 4);
    /* wall then CPU seconds: t_dense [2][2][reps] (ova, blas), t_ffi [2][nF + 1][reps] */
    double *t_dense = calloc((size_t)reps * 4, sizeof(double));
    double *t_ffi = calloc((size_t)reps * (nF + 1) * 2, sizeof(double));
    const size_t cd = (size_t)reps * 2, cf = (size_t)reps * (nF + 1);
    if (!E || !dE || !indptr || !indices || !t_dense || !t_ffi) {
        rc = cli_failf("out of memory");
        goto done;
    }
    /* Synthetic batch: N(0, 1/d) embeddings, labels_per_row distinct labels. */
    xmc_rng r;
    xmc_rng_seed(&r, (uint64_t)seed, 0);
    for (size_t i = 0; i < (size_t)B * d; i++)
        E[i] = xmc_rng_normal(&r) / sqrtf((float)d);
    indptr[0] = 0;
    for (int b = 0; b < B; b++) {
        int64_t s = indptr[b], n = 0;
        while (n < labels_per_row) {
            int32_t c = (int32_t)xmc_rng_below(&r, (uint64_t)L);
            int64_t p = s + n;
            while (p > s && indices[p - 1] > c)
                p--;
            if (p > s && indices[p - 1] == c)
                continue;
            memmove(indices + p + 1, indices + p, (size_t)(s + n - p) * 4);
            indices[p] = c;
            n++;
        }
        indptr[b + 1] = s + n;
    }
    xmc_csr Y = {B, L, indptr, indices, NULL, NULL};

    xmc_ova_hparams hp = {0};
    hp.lr = 0.01f, hp.momentum = 0.9f, hp.beta1 = 0.9f, hp.beta2 = 0.999f, hp.eps = 1e-8f;
    hp.loss = XMC_LOSS_BCE, hp.step = 1;
    xmc_ffi_config fc = {0};
    fc.n_labels = L, fc.d_in = d, fc.max_batch = B, fc.chunk = chunk, fc.seed = (uint64_t)seed;
    fc.opt = strcmp(opt, "adam") ? XMC_HEAD_SGDM : XMC_HEAD_ADAM;
    double t0 = xmc_now();
    for (int i = 0; i < nF; i++) {
        fc.fan_in = Fs[i];
        if (xmc_ffi_create(&fc, &heads[i], &err) != XMC_OK) {
            rc = cli_fail(&err);
            goto done;
        }
    }
    if (with_ref) {
        fc.fan_in = Fs[0];
        if (xmc_ffi_create(&fc, &refh, &err) != XMC_OK) {
            rc = cli_fail(&err);
            goto done;
        }
    }
    double t_init = xmc_now() - t0;
    if (use_ova) {
        xmc_ova_config oc = {0};
        oc.n_labels = L, oc.dim = d, oc.dtype = XMC_DT_F32, oc.max_batch = B;
        oc.seed = (uint64_t)seed, oc.opt = fc.opt;
        if (xmc_ova_create(&oc, &ova, &err) != XMC_OK) {
            rc = cli_fail(&err);
            goto done;
        }
    }
    if (use_blas) {
        size_t n = (size_t)L * d;
        dh.L = L, dh.d = d, dh.B = B;
        dh.W = malloc(n * 4), dh.m = calloc(n, 4);
        dh.Z = malloc((size_t)B * DENSE_CHUNK * 4), dh.gW = malloc((size_t)DENSE_CHUNK * d * 4);
        if (!dh.W || !dh.m || !dh.Z || !dh.gW) {
            rc = cli_failf("out of memory for the dense baseline (%.1f GiB); use --no-dense",
                           2.0 * (double)n * 4 / (1 << 30));
            goto done;
        }
        for (size_t i = 0; i < n; i++)
            dh.W[i] = 0.02f * xmc_rng_normal(&r);
    }

    printf("xmc bench classifier --head ffi: L=%lld d=%d B=%d threads=%d kernel=%s opt=%s "
           "(init %.2f s)\n",
           (long long)L, d, B, xmc_get_threads(), xmc_cpu_level_name(), opt, t_init);
    /* Warm-up (first touch, caches), then interleaved timed reps. */
    if (ova && xmc_ova_train_step(ova, E, B, &Y, NULL, &hp, dE, NULL, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    if (use_blas)
        dense_step(&dh, E, &Y, hp.lr, hp.momentum, dE);
    for (int i = 0; i < nF; i++)
        if (xmc_ffi_train_step(heads[i], E, B, &Y, NULL, &hp, dE, NULL, &err)) {
            rc = cli_fail(&err);
            goto done;
        }
    for (int rep = 0; rep < reps; rep++) {
        hp.step = rep + 2;
        if (ova) {
            double s = xmc_now(), cs = cpu_now();
            if (xmc_ova_train_step(ova, E, B, &Y, NULL, &hp, dE, NULL, &err)) {
                rc = cli_fail(&err);
                goto done;
            }
            t_dense[rep] = xmc_now() - s;
            t_dense[cd + rep] = cpu_now() - cs;
        }
        if (use_blas) {
            double s = xmc_now(), cs = cpu_now();
            dense_step(&dh, E, &Y, hp.lr, hp.momentum, dE);
            t_dense[reps + rep] = xmc_now() - s;
            t_dense[cd + reps + rep] = cpu_now() - cs;
        }
        for (int i = 0; i < nF; i++) {
            double s = xmc_now(), cs = cpu_now();
            if (xmc_ffi_train_step(heads[i], E, B, &Y, NULL, &hp, dE, NULL, &err)) {
                rc = cli_fail(&err);
                goto done;
            }
            t_ffi[(size_t)i * reps + rep] = xmc_now() - s;
            t_ffi[cf + (size_t)i * reps + rep] = cpu_now() - cs;
        }
        if (refh) {
            setenv("XMC_KERNEL", "ref", 1);
            xmc_cpu_refresh();
            double s = xmc_now(), cs = cpu_now();
            int e2 = xmc_ffi_train_step(refh, E, B, &Y, NULL, &hp, dE, NULL, &err);
            t_ffi[(size_t)nF * reps + rep] = xmc_now() - s;
            t_ffi[cf + (size_t)nF * reps + rep] = cpu_now() - cs;
            unsetenv("XMC_KERNEL");
            xmc_cpu_refresh();
            if (e2) {
                rc = cli_fail(&err);
                goto done;
            }
        }
    }

    printf("%-12s %6s %10s %10s %9s %9s %12s %9s %9s\n", "head", "F", "ms/step", "ex/s", "GFLOP/s",
           "GF/cpu-s", "bytes/label", "sparsity", "speedup");
    double md = 0;
    for (int k = 0; k < 2; k++) {
        if (!(k ? use_blas : use_ova))
            continue;
        double t = bench_median(t_dense + (size_t)k * reps, reps);
        double c = bench_median(t_dense + cd + (size_t)k * reps, reps);
        char sp[32] = "1.00";
        if (md > 0)
            snprintf(sp, sizeof sp, "%.2f", md / t);
        else
            md = t;
        size_t bpl = k ? (size_t)8 * d
                       : (xmc_ova_param_bytes(ova) + xmc_ova_state_bytes(ova)) / (size_t)L;
        double fl = 6.0 * B * (double)L * d / 1e9;
        printf("%-12s %6d %10.1f %10.0f %9.1f %9.1f %12zu %8.1f%% %9s\n",
               k ? "dense-blas" : "dense-ova", d, 1e3 * t, B / t, fl / t, fl / c, bpl, 0.0, sp);
    }
    for (int i = 0; i <= nF; i++) {
        if (i == nF && !refh)
            break;
        int F = i < nF ? Fs[i] : Fs[0];
        double mf = bench_median(t_ffi + (size_t)i * reps, reps);
        double cf_ = bench_median(t_ffi + cf + (size_t)i * reps, reps);
        char sp[32] = "-";
        if (!no_dense)
            snprintf(sp, sizeof sp, "%.2f", md / mf);
        const xmc_ffi *h = i < nF ? heads[i] : refh;
        double fl = 6.0 * B * (double)L * F / 1e9;
        printf("%-12s %6d %10.1f %10.0f %9.1f %9.1f %12zu %8.1f%% %9s\n",
               i < nF ? "ffi" : "ffi-ref", F, 1e3 * mf, B / mf, fl / mf, fl / cf_,
               xmc_ffi_bytes_per_label(xmc_ffi_get_config(h)), 100.0 * (1.0 - (double)F / d), sp);
    }
    /* Accounting: (4 + 4) F + optimizer state per label, as allocated. */
    for (int i = 0; i < nF; i++) {
        const xmc_ffi_config *c = xmc_ffi_get_config(heads[i]);
        size_t want = (size_t)(4 + 4) * c->fan_in +
                      (size_t)(c->opt == XMC_HEAD_ADAM ? 8 : 4) * c->fan_in;
        size_t got = xmc_ffi_bytes(heads[i]) - xmc_ffi_scratch_bytes(heads[i]);
        printf("F=%d: bytes/label (4+4)*F + state = %zu; xmc_ffi_bytes - scratch = %zu = L * %zu "
               "%s; scratch %.1f MiB; dense W+momentum %.1f MiB vs ffi %.1f MiB (%.1fx less)\n",
               c->fan_in, want, got, got / (size_t)L,
               got == want * (size_t)L ? "(match)" : "(MISMATCH)",
               xmc_ffi_scratch_bytes(heads[i]) / 1048576.0, 8.0 * d * (double)L / 1048576.0,
               got / 1048576.0, 8.0 * d * (double)L / (double)got);
        if (got != want * (size_t)L)
            rc = 1;
    }
    printf("peak RSS %.1f MiB (dense baseline %s)\n", xmc_peak_rss() / 1048576.0,
           no_dense ? "not allocated" : "included");
done:
    for (int i = 0; i < nF; i++)
        xmc_ffi_free(heads[i]);
    xmc_ffi_free(refh);
    xmc_ova_free(ova);
    free(dh.W);
    free(dh.m);
    free(dh.Z);
    free(dh.gW);
    free(E);
    free(dE);
    free(indptr);
    free(indices);
    free(t_dense);
    free(t_ffi);
    return rc;
}
