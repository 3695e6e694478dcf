/* xmc convert: load any dataset spec and write it in the label-feature
 * layout (DIR/PREFIX_X_Y.txt, _X.txt, _X_Xf.txt, DIR/Y.txt) or as the
 * memory-mapped binary cache (--binary: DIR/PREFIX.xmcb). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "xmc/data.h"

int cmd_convert(int argc, char **argv)
{
    const char *input = NULL, *out = NULL, *labels_from = NULL;
    int binary = 0;
    const cli_opt opts[] = {
        {"input", CLI_STR, &input, "dataset spec to read (FILE, FILE@SPLIT, DIR/PREFIX, "
                                   "TEXTS+LABELS, FILE.xmcb)", 1},
        {"out", CLI_STR, &out, "output DIR/PREFIX (with --binary: DIR/PREFIX[.xmcb])", 1},
        {"labels-from", CLI_STR, &labels_from,
         "spec whose label names fix the label ids (TEXTS+LABELS; default: the input)", 0},
        {"binary", CLI_FLAG, &binary, "write the binary cache instead of text files", 0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    int pr = cli_parse(argc, argv, opts, "--input SPEC --out DIR/PREFIX [--labels-from SPEC] "
                                         "[--binary]");
    if (pr == 1)
        return 0;
    if (pr)
        return 2;

    xmc_error err = {0};
    xmc_dataset *vocab_ds = NULL, *ds = NULL;
    xmc_load_opts lo = {0};
    int status = 0;
    double t0 = xmc_now();
    clock_t c0 = clock(); /* CPU time of all threads: honest on a busy machine */
    if (labels_from) {
        if (xmc_dataset_load(labels_from, NULL, &vocab_ds, &err)) {
            status = cli_fail(&err);
            goto out;
        }
        if (!vocab_ds->label_names) {
            status = cli_failf("%s: --labels-from needs a dataset with label names "
                               "(TEXTS+LABELS)", labels_from);
            goto out;
        }
        lo.label_vocab = vocab_ds->label_names;
    }
    if (xmc_dataset_load(input, &lo, &ds, &err)) {
        status = cli_fail(&err);
        goto out;
    }
    double t1 = xmc_now(), cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    char path[4200];
    if (binary) {
        size_t n = strlen(out);
        snprintf(path, sizeof path, "%s%s", out,
                 n > 5 && !strcmp(out + n - 5, ".xmcb") ? "" : ".xmcb");
        if (xmc_dataset_write_binary(ds, path, &err)) {
            status = cli_fail(&err);
            goto out;
        }
    } else {
        snprintf(path, sizeof path, "%s_X_Y.txt", out);
        if (xmc_dataset_write(ds, out, &err)) {
            status = cli_fail(&err);
            goto out;
        }
    }
    printf("%s: %lld points, %lld features, %lld labels, %lld label entries%s%s%s\n", input,
           (long long)ds->n, (long long)ds->n_features, (long long)ds->n_labels,
           (long long)xmc_csr_nnz(ds->Y), ds->texts ? ", texts" : "",
           ds->label_texts ? ", label texts" : "", ds->label_names ? ", label names" : "");
    if (ds->n_unknown_labels)
        printf("dropped %lld label names not in the vocabulary\n",
               (long long)ds->n_unknown_labels);
    /* cpu / wall = cores kept busy by the read: ~1 means a serial phase or
     * a busy machine, below 1 means waiting for the disk. */
    printf("wrote %s%s (read %.3f s wall, %.3f s cpu = %.1f cores; write %.3f s)\n",
           binary ? path : out, binary ? "" : "_*", t1 - t0, cpu,
           t1 > t0 ? cpu / (t1 - t0) : 0.0, xmc_now() - t1);
out:
    xmc_dataset_free(ds);
    xmc_dataset_free(vocab_ds);
    return status;
}
