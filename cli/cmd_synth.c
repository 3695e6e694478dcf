/* xmc synth: write a synthetic label-feature dataset (include/xmc/synth.h). */
#include <stdio.h>

#include "cli.h"
#include "xmc/synth.h"

int cmd_synth(int argc, char **argv)
{
    xmc_synth_config c;
    xmc_synth_config_default(&c);
    const char *out = NULL;
    int64_t seed = 0;
    const cli_opt opts[] = {
        {"out", CLI_STR, &out, "output directory (created if missing)", 1},
        {"points", CLI_I64, &c.n_points, "points, train + test (default 10000)", 0},
        {"labels", CLI_I64, &c.n_labels, "labels L (default 1000)", 0},
        {"seed", CLI_I64, &seed, "random seed (default 0); same seed, same files", 0},
        {"test-frac", CLI_DOUBLE, &c.test_frac, "share of points in the test split (default 0.2)",
         0},
        {"features", CLI_I64, &c.n_features,
         "vocabulary size F = feature count (default clamp(L + 5000, 5000, 2^20))", 0},
        {"zipf", CLI_DOUBLE, &c.zipf, "label popularity exponent s (default 1.0)", 0},
        {"mean-labels", CLI_DOUBLE, &c.mean_labels, "mean labels per point (default 4)", 0},
        {"cluster", CLI_INT, &c.cluster_size, "labels per topic cluster (default 10)", 0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    int pr = cli_parse(argc, argv, opts,
                       "--out DIR [--points N] [--labels L] [--seed S] [--test-frac f] "
                       "[--features F]");
    if (pr == 1)
        return 0;
    if (pr)
        return 2;
    c.seed = (uint64_t)seed;

    xmc_error err = {0};
    xmc_synth_stats st;
    if (xmc_synth_write(&c, out, &st, &err))
        return cli_fail(&err);
    printf("wrote %s/{trn,tst}_X_Y.txt, {trn,tst}_X.txt, {trn,tst}_X_Xf.txt, Y.txt\n", out);
    printf("points      %lld train, %lld test\n", (long long)st.n_train, (long long)st.n_test);
    printf("labels      %lld (zipf %.2f, %.2f labels/point in train)\n", (long long)c.n_labels,
           c.zipf, st.n_train ? (double)st.train_pairs / (double)st.n_train : 0.0);
    printf("features    %lld (%.1f words/point in train)\n", (long long)st.n_features,
           st.n_train ? (double)st.train_words / (double)st.n_train : 0.0);
    printf("size        %.1f MB in %.2f s (%.1f MB/s), peak RSS %.0f MB\n",
           (double)st.bytes / 1e6, st.seconds,
           st.seconds > 0 ? (double)st.bytes / 1e6 / st.seconds : 0.0,
           (double)xmc_peak_rss() / 1e6);
    return 0;
}
