/* xmc augment — Gandalf label-feature augmentation: load a training set, add
 * one point per label with co-occurrence soft targets (xmc_augment_ex), and
 * write the result in the label-feature layout (xmc_dataset_write). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "xmc/augment.h"
#include "xmc/data.h"

static const char *synopsis =
    "--train SPEC --out DIR/PREFIX [--targets cooc|sym|self] [--delta 0.1] [--sample N] "
    "[--seed S]";

int cmd_augment(int argc, char **argv)
{
    const char *train = NULL, *outp = NULL, *targets = "cooc", *lf_path = NULL,
               *labels_from = NULL;
    double delta = NAN;
    int64_t sample = 0, seed = (int64_t)XMC_AUGMENT_DEFAULT_SEED;
    int threads = 0;
    const cli_opt opts[] = {
        {"train", CLI_STR, &train, "training set spec (needs label texts or label features)", 1},
        {"out", CLI_STR, &outp, "output DIR/PREFIX (writes PREFIX_X_Y.txt, ..., DIR/Y.txt)", 1},
        {"targets", CLI_STR, &targets,
         "cooc (Gandalf, default) | sym | self, optionally :DELTA", 0},
        {"delta", CLI_DOUBLE, &delta, "keep soft targets > delta (default 0.1)", 0},
        {"sample", CLI_I64, &sample,
         "uniform subsample of D+Z of N rows (0 = all, -1 = as many as D)", 0},
        {"seed", CLI_I64, &seed, "seed of the subsample", 0},
        {"label-features", CLI_STR, &lf_path,
         "L x F sparse label features, or 'pifa' to derive them from X (default: "
         "DIR/Y_Xf.txt beside a DIR/PREFIX spec)", 0},
        {"labels-from", CLI_STR, &labels_from,
         "label vocabulary for TEXTS+LABELS (one name per line or a labels file)", 0},
        {"threads", CLI_INT, &threads, "OpenMP threads (default: all)", 0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    int pr = cli_parse(argc, argv, opts, synopsis);
    if (pr == 1)
        return 0;
    if (pr)
        return pr;
    if (threads > 0)
        xmc_set_threads(threads);

    xmc_error err = {0};
    xmc_augment_opts ao;
    xmc_augment_opts_default(&ao);
    if (xmc_augment_parse(targets, &ao, &err))
        return cli_fail(&err);
    if (!isnan(delta)) {
        if (!(delta >= XMC_AUGMENT_MIN_DELTA && delta <= XMC_AUGMENT_MAX_DELTA))
            return cli_failf("--delta: expected a number in [0, 1], got %g", delta);
        ao.delta = delta;
    }
    if (sample < XMC_AUGMENT_SAMPLE_ORIGINAL)
        return cli_failf("--sample: expected N >= 0 or -1, got %lld", (long long)sample);
    ao.sample = sample;
    ao.seed = (uint64_t)seed;

    int rc = 1;
    xmc_texts *vocab = NULL;
    xmc_dataset *ds = NULL, *aug = NULL;
    xmc_csr *lf = NULL;
    xmc_load_opts lo = {0};
    if (labels_from) {
        if (xmc_label_vocab_read(labels_from, &vocab, &err))
            goto fail;
        lo.label_vocab = vocab;
    }
    if (xmc_dataset_load(train, &lo, &ds, &err))
        goto fail;
    if (lf_path && !strcmp(lf_path, "pifa"))
        ao.pifa = 1;
    else if (lf_path ? xmc_csr_read_text(lf_path, &lf, &err)
                     : xmc_augment_label_features_load(train, &lf, &err))
        goto fail;
    ao.label_features = lf;

    xmc_augment_stats st;
    if (xmc_augment_ex(ds, &ao, &aug, &st, &err))
        goto fail;

    char dir[4096];
    snprintf(dir, sizeof dir, "%s", outp);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (xmc_mkdir_p(dir, &err))
            goto fail;
    }
    double tw = xmc_now();
    if (xmc_dataset_write(aug, outp, &err))
        goto fail;
    tw = xmc_now() - tw;

    printf("augment: %s delta=%g on %s\n", xmc_augment_kind_name(ao.kind), ao.delta, train);
    printf("  N=%lld L=%lld unseen_labels=%lld label_features=%s\n", (long long)st.rows_in,
           (long long)ds->n_labels, (long long)st.unseen, lf        ? "yes"
           : ao.pifa ? (ds->X ? "pifa" : "no (texts only)")
                     : (ds->X ? "no (empty feature rows)" : "no (texts only)"));
    if (st.nnz_g >= 0)
        printf("  nnz(G)=%lld kept_targets=%lld (%.2f per label)\n", (long long)st.nnz_g,
               (long long)st.kept,
               ds->n_labels ? (double)st.kept / (double)ds->n_labels : 0.0);
    else
        printf("  kept_targets=%lld (self only, G not computed)\n", (long long)st.kept);
    printf("  rows_written=%lld (%s) nnz(Y)=%lld\n", (long long)st.rows_out,
           ao.sample ? "subsample" : "N+L", (long long)xmc_csr_nnz(aug->Y));
    printf("  time: targets %.1f ms, augment %.1f ms, write %.1f ms; threads %d; peak RSS %.1f MB\n",
           1e3 * st.seconds_g, 1e3 * st.seconds, 1e3 * tw, xmc_get_threads(),
           (double)xmc_peak_rss() / 1e6);
    printf("  wrote %s_X_Y.txt\n", outp);
    rc = 0;
    goto done;
fail:
    rc = cli_fail(&err);
done:
    xmc_dataset_free(aug);
    xmc_dataset_free(ds);
    xmc_csr_free(lf);
    xmc_texts_free(vocab);
    return rc;
}
