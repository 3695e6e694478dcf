/* xmc bench classifier: Renee's fused one-vs-all step (xmc_ova_train_step)
 * against the unfused formulation with plain OpenBLAS sgemm on the full
 * B x L logits, timed interleaved in the same run (median of --reps).
 *
 * Plain step: X = E W^T (B x L), G = sigmoid(X) - Y, dE = G W, dW = G^T E,
 * SGD-momentum update of all of W. We report its three GEMMs alone ("plain
 * GEMMs", the target's baseline) and the whole step. Effective GFLOP/s
 * count 6 B L d flops per step for every variant.
 * --head ffi forwards to the sparse fixed-fan-in head's benchmark.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "xmc/data.h"
#include "xmc/head.h"
#include "xmc/kernels.h"

#define MAX_REPS 101



typedef struct plain {
    int64_t L;
    int d, B;
    float *W, *M, *X, *dW; /* (L,d), (L,d), (B,L), (L,d) */
} plain;

/* One unfused step; returns seconds in the three GEMMs via *t_gemm. */
static double plain_step(plain *p, const float *E, const xmc_csr *Y, float *dE, float lr,
                         double *t_gemm)
{
    int64_t L = p->L;
    int d = p->d, B = p->B;
    double t0 = xmc_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, (int)L, d, 1.0f, E, d, p->W, d, 0.0f,
                p->X, (int)L);
    double t1 = xmc_now();
    xmc_k_ova_grad0_fn grad0 = xmc_k_ova_grad0();
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *x = p->X + (size_t)b * L;
        grad0(x, (size_t)L, 0);
        for (int64_t q = Y->indptr[b]; q < Y->indptr[b + 1]; q++)
            x[Y->indices[q]] -= Y->values ? Y->values[q] : 1.0f;
    }
    double t2 = xmc_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, d, (int)L, 1.0f, p->X, (int)L, p->W,
                d, 0.0f, dE, d);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)L, d, B, 1.0f, p->X, (int)L, E, d,
                0.0f, p->dW, d);
    double t3 = xmc_now();
    size_t n = (size_t)L * d;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        p->M[i] = 0.9f * p->M[i] + p->dW[i];
        p->W[i] -= lr * p->M[i];
    }
    double t4 = xmc_now();
    *t_gemm = (t1 - t0) + (t3 - t2);
    return t4 - t0;
}

static int run_fused(xmc_ova *h, const float *E, int B, const xmc_csr *Y, float *dE, float lr,
                     double *secs, xmc_error *err)
{
    xmc_ova_hparams hp = {.lr = lr, .momentum = 0.9f, .loss = XMC_LOSS_BCE};
    double t0 = xmc_now();
    int rc = xmc_ova_train_step(h, E, B, Y, NULL, &hp, dE, NULL, err);
    *secs = xmc_now() - t0;
    return rc;
}

int bench_classifier(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--head") && !strcmp(argv[i + 1], "ffi"))
            return bench_ffi(argc, argv);
    int64_t L = 131072, chunk = 0;
    int d = 64, B = 256, bf16 = 0, threads = 0, reps = 7, pos = 5, seed = 1;
    const char *head = "ova";
    cli_opt opts[] = {
        {"labels", CLI_I64, &L, "labels L (default 131072)", 0},
        {"dim", CLI_INT, &d, "embedding dimension d (default 64)", 0},
        {"batch", CLI_INT, &B, "batch size B (default 256)", 0},
        {"bf16", CLI_FLAG, &bf16, "also time the bf16 head (W and momentum in bf16)", 0},
        {"threads", CLI_INT, &threads, "threads (default: OMP_NUM_THREADS / all cores)", 0},
        {"reps", CLI_INT, &reps, "timed repetitions, median reported (default 7)", 0},
        {"chunk", CLI_I64, &chunk, "labels per chunk C (default XMC_OVA_DEFAULT_CHUNK)", 0},
        {"pos", CLI_INT, &pos, "positive labels per row (default 5)", 0},
        {"seed", CLI_INT, &seed, "random seed (default 1)", 0},
        {"head", CLI_STR, &head, "ova (this benchmark) or ffi (sparse fixed fan-in head)", 0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    int prc = cli_parse(argc, argv, opts, "xmc bench classifier [--labels L --dim d --batch B "
                                          "--bf16 --threads T --reps N --chunk C]");
    if (prc)
        return prc == 1 ? 0 : 2;
    if (strcmp(head, "ova"))
        return cli_failf("--head must be ova or ffi, got '%s'", head);
    if (L < 1 || L > INT32_MAX || d < 1 || B < 1 || reps < 1 || reps > MAX_REPS || pos < 0 ||
        chunk < 0)
        return cli_failf("bad sizes: need labels >= 1, dim >= 1, batch >= 1, 1 <= reps <= %d",
                         MAX_REPS);
    if (pos > L)
        pos = (int)L;
    if (threads > 0)
        xmc_set_threads(threads);
    threads = xmc_get_threads();

    xmc_error err = {0};
    int rc = 1;
    size_t nE = (size_t)B * d, nW = (size_t)L * d;
    float *E = xmc_malloc(nE * 4), *dE = xmc_malloc(nE * 4);
    plain p = {.L = L, .d = d, .B = B};
    p.W = xmc_malloc(nW * 4);
    p.M = xmc_calloc(nW, 4);
    p.dW = xmc_malloc(nW * 4);
    size_t xbytes = 0;
    if (!xmc_mul_ok((size_t)B * 4, (size_t)L, &xbytes))
        xbytes = 0;
    p.X = xbytes ? xmc_malloc(xbytes) : NULL;
    xmc_csr *Y = NULL;
    xmc_ova *hf = NULL, *hb = NULL;
    if (!E || !dE || !p.W || !p.M || !p.dW || !p.X) {
        cli_failf("out of memory for the plain path (B x L logits = %.1f MiB)",
                  (double)B * L * 4 / 1048576.0);
        goto done;
    }
    xmc_rng r;
    xmc_rng_seed(&r, (uint64_t)seed, 0);
    for (size_t i = 0; i < nE; i++)
        E[i] = xmc_rng_normal(&r) / sqrtf((float)d);
    if (xmc_csr_create(&Y, B, L, (int64_t)B * pos, 1, &err))
        goto fail;
    Y->indptr[0] = 0;
    for (int b = 0; b < B; b++) {
        int64_t base = Y->indptr[b], stride = L / (pos ? pos : 1);
        for (int q = 0; q < pos; q++) {
            Y->indices[base + q] = (int32_t)(q * stride + (int64_t)xmc_rng_below(&r, (uint64_t)stride));
            Y->values[base + q] = 1.0f;
        }
        Y->indptr[b + 1] = base + pos;
    }
    xmc_ova_config cfg = {.n_labels = L, .dim = d, .dtype = XMC_DT_F32, .opt = XMC_HEAD_SGDM,
                          .chunk = chunk, .max_batch = B, .seed = (uint64_t)seed};
    if (xmc_ova_create(&cfg, &hf, &err))
        goto fail;
    if (xmc_ova_get_rows(hf, 0, L, p.W, &err))
        goto fail;
    if (bf16) {
        cfg.dtype = XMC_DT_BF16;
        if (xmc_ova_create(&cfg, &hb, &err))
            goto fail;
    }
    const float lr = 1e-4f;
    double tp[MAX_REPS], tg[MAX_REPS], tf[MAX_REPS], tb[MAX_REPS], g;
    /* warm-up: page in every buffer, spin up the thread pool */
    plain_step(&p, E, Y, dE, lr, &g);
    if (run_fused(hf, E, B, Y, dE, lr, &tf[0], &err) ||
        (hb && run_fused(hb, E, B, Y, dE, lr, &tb[0], &err)))
        goto fail;
    for (int i = 0; i < reps; i++) {
        tp[i] = plain_step(&p, E, Y, dE, lr, &tg[i]);
        if (run_fused(hf, E, B, Y, dE, lr, &tf[i], &err))
            goto fail;
        if (hb && run_fused(hb, E, B, Y, dE, lr, &tb[i], &err))
            goto fail;
    }
    double flops = 6.0 * B * (double)L * d;
    double mg = bench_median(tg, reps), mp = bench_median(tp, reps), mf = bench_median(tf, reps);
    const char *lvl = xmc_cpu_level_name();
    printf("classifier bench: L=%lld d=%d B=%d threads=%d chunk=%lld kernels=%s reps=%d "
           "(median, interleaved)\n",
           (long long)L, d, B, threads, (long long)xmc_ova_get_config(hf)->chunk, lvl, reps);
    printf("  %-28s %10s %10s %14s\n", "variant", "ms/step", "GFLOP/s", "vs plain GEMMs");
    printf("  %-28s %10.3f %10.1f %14.3f\n", "plain: 3 sgemm only", mg * 1e3, flops / mg / 1e9, 1.0);
    printf("  %-28s %10.3f %10.1f %14.3f\n", "plain: full unfused step", mp * 1e3,
           flops / mp / 1e9, mg / mp);
    printf("  %-28s %10.3f %10.1f %14.3f\n", "fused fp32 (fwd+bwd+update)", mf * 1e3,
           flops / mf / 1e9, mg / mf);
    if (hb) {
        double mb = bench_median(tb, reps);
        unsigned f = xmc_cpu_features();
        /* AMX takes B, d and chunk multiples of 32; else vdpbf16ps runs */
        int amx = (f & XMC_CPU_AMXBF16) && B % 32 == 0 && d % 32 == 0;
        printf("  %-28s %10.3f %10.1f %14.3f   bf16/fp32 %.3fx\n",
               amx ? "fused bf16 (AMX tiles)"
                   : (f & XMC_CPU_AVX512BF16) ? "fused bf16 (vdpbf16ps)" : "fused bf16 (portable)",
               mb * 1e3, flops / mb / 1e9, mg / mb, mf / mb);
    }
    printf("memory: fused fp32 scratch %.2f MiB", (double)xmc_ova_scratch_bytes(hf) / 1048576.0);
    if (hb)
        printf(", bf16 scratch %.2f MiB", (double)xmc_ova_scratch_bytes(hb) / 1048576.0);
    printf(" vs plain B x L logits %.2f MiB + full dW %.2f MiB\n", (double)xbytes / 1048576.0,
           (double)nW * 4 / 1048576.0);
    printf("params: W fp32 %.2f MiB", (double)xmc_ova_param_bytes(hf) / 1048576.0);
    if (hb)
        printf(", W bf16 %.2f MiB (+ momentum %.2f MiB)", (double)xmc_ova_param_bytes(hb) / 1048576.0,
               (double)xmc_ova_state_bytes(hb) / 1048576.0);
    printf("\n");
    rc = 0;
    goto done;
fail:
    rc = cli_fail(&err);
done:
    xmc_ova_free(hf);
    xmc_ova_free(hb);
    xmc_csr_free(Y);
    xmc_free(E);
    xmc_free(dE);
    xmc_free(p.W);
    xmc_free(p.M);
    xmc_free(p.dW);
    xmc_free(p.X);
    return rc;
}
