/* xmc bench encoder: throughput of the BERT encoder (include/xmc/bert.h).
 *
 * Builds a MiniLM-L6-shaped model (H 384, 6 layers, 12 heads, FFN 1536,
 * vocab 30522) with random weights, or loads --model-dir, draws random
 * token ids of length --len for --batch rows (from the seed), then times
 *   infer: forward only (inference buffers),
 *   train: forward + backward + AdamW step (dropout 0.1 as in training),
 * as the median (and the best) of --reps timed runs after --warmup
 * (on a shared machine the best is the steadier estimate), and prints
 * examples/s and the process's peak RSS (--recompute: activations rebuilt
 * in backward instead of stored). bench/encoder.sh runs PyTorch on
 * the same shapes and thread count and prints the ratios. Lines starting
 * with "RESULT" are for scripts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "xmc/bert.h"



int bench_encoder(int argc, char **argv)
{
    const char *model_dir = NULL, *mode = "both";
    int batch = 64, len = 32, reps = 5, warmup = 1, threads = 0, recompute = 0;
    int64_t seed = 1;
    const cli_opt opts[] = {
        {"model-dir", CLI_STR, &model_dir, "Hugging Face model dir (default: random MiniLM-L6 shape)", 0},
        {"batch", CLI_INT, &batch, "rows per step (64)", 0},
        {"len", CLI_INT, &len, "tokens per row (32)", 0},
        {"reps", CLI_INT, &reps, "timed repetitions, median reported (5)", 0},
        {"warmup", CLI_INT, &warmup, "untimed repetitions first (1)", 0},
        {"threads", CLI_INT, &threads, "OpenMP/OpenBLAS threads (0: default)", 0},
        {"mode", CLI_STR, &mode, "infer, train or both (both)", 0},
        {"seed", CLI_I64, &seed, "weights and token ids (1)", 0},
        {"recompute", CLI_FLAG, &recompute, "train: recompute activations in backward", 0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    int rc = cli_parse(argc, argv, opts, "xmc bench encoder [options]");
    if (rc)
        return rc == 1 ? 0 : 2;
    if (batch < 1 || len < 2 || reps < 1 || warmup < 0)
        return cli_failf("--batch >= 1, --len >= 2, --reps >= 1 and --warmup >= 0 please");
    if (threads > 0)
        xmc_set_threads(threads);
    int do_inf = strcmp(mode, "train") != 0, do_train = strcmp(mode, "infer") != 0;

    xmc_error err = {0};
    xmc_bert_opts o;
    xmc_bert_opts_default(&o);
    o.max_batch = batch;
    o.max_len = len;
    o.train = do_train;
    o.recompute = recompute;
    o.seed = (uint64_t)seed;
    xmc_bert *m = NULL;
    xmc_bert_config c = {XMC_BERT_ARCH_BERT, 30522, 384, 6, 12, 1536, 512, 2, 1e-12f, 0.1f, 0.1f};
    rc = model_dir ? xmc_bert_load(model_dir, &o, &m, &err) : xmc_bert_create(&c, &o, &m, &err);
    if (rc != XMC_OK)
        return cli_fail(&err);
    c = *xmc_bert_get_config(m);
    int H = c.hidden;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)batch * (size_t)len);
    int32_t *lens = malloc(sizeof(int32_t) * (size_t)batch);
    float *out = malloc(sizeof(float) * (size_t)batch * (size_t)H);
    float *dout = malloc(sizeof(float) * (size_t)batch * (size_t)H);
    double *t = malloc(sizeof(double) * (size_t)(reps + warmup));
    if (!ids || !lens || !out || !dout || !t)
        return cli_failf("out of memory");
    xmc_rng r;
    xmc_rng_seed(&r, (uint64_t)seed, 99);
    for (int i = 0; i < batch * len; i++)
        ids[i] = 1000 + (int32_t)xmc_rng_below(&r, (uint64_t)(c.vocab_size - 1000));
    for (int b = 0; b < batch; b++) {
        lens[b] = len; /* full rows: the benchmark shape is B x T */
        ids[b * len] = 101;
        ids[b * len + len - 1] = 102;
    }
    for (int i = 0; i < batch * H; i++)
        dout[i] = 1e-3f * xmc_rng_normal(&r);
    printf("model: %s, H %d, layers %d, heads %d, FFN %d, vocab %d; %.1f M params\n",
           model_dir ? model_dir : "random MiniLM-L6 shape", H, c.n_layers, c.n_heads,
           c.intermediate, c.vocab_size, (double)xmc_bert_n_params(m) / 1e6);
    printf("batch %d x len %d, threads %d, reps %d (median)\n", batch, len, xmc_get_threads(),
           reps);
    if (do_inf) {
        for (int i = 0; i < warmup + reps; i++) {
            double t0 = xmc_now();
            if (xmc_bert_forward(m, ids, lens, batch, len, 0, out, &err) != XMC_OK)
                return cli_fail(&err);
            t[i] = xmc_now() - t0;
        }
        double med = bench_median(t + warmup, reps), best = t[warmup]; /* sorted by bench_median() */
        printf("RESULT xmc infer %.1f examples/s (%.1f ms/step)\n", batch / med, med * 1e3);
        printf("RESULT xmc infer_best %.1f examples/s (%.1f ms/step)\n", batch / best,
               best * 1e3);
    }
    if (do_train) {
        xmc_bert_adamw hp = {1e-5f, 0.9f, 0.999f, 1e-8f, 0.01f, 0};
        for (int i = 0; i < warmup + reps; i++) {
            double t0 = xmc_now();
            if (xmc_bert_forward(m, ids, lens, batch, len, 1, out, &err) != XMC_OK)
                return cli_fail(&err);
            xmc_bert_zero_grad(m);
            if (xmc_bert_backward(m, dout, &err) != XMC_OK)
                return cli_fail(&err);
            hp.step = i + 1;
            if (xmc_bert_adamw_step(m, &hp, &err) != XMC_OK)
                return cli_fail(&err);
            t[i] = xmc_now() - t0;
        }
        double med = bench_median(t + warmup, reps), best = t[warmup];
        printf("RESULT xmc train %.1f examples/s (%.1f ms/step)\n", batch / med, med * 1e3);
        printf("RESULT xmc train_best %.1f examples/s (%.1f ms/step)\n", batch / best,
               best * 1e3);
    }
    printf("RESULT xmc peak_rss_mb %.1f (model+activations %.1f MB)\n",
           (double)xmc_peak_rss() / 1048576.0, (double)xmc_bert_bytes(m) / 1048576.0);
    xmc_bert_free(m);
    free(ids), free(lens), free(out), free(dout), free(t);
    return 0;
}
