/* xmc info DIR: the model's config.json, then its tensors (name, shape,
 * count), parameter counts and bytes. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "xmc/bert.h"
#include "xmc/model.h"

int cmd_info(int argc, char **argv)
{
    const char *dir = NULL;
    const cli_opt opts[] = {
        {"model", CLI_STR, &dir, "model directory (or give it as the only argument)", 0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    /* `xmc info DIR` : a bare directory is accepted as well as --model. */
    if (argc == 2 && strncmp(argv[1], "--", 2) != 0 && strcmp(argv[1], "-h") != 0) {
        dir = argv[1];
    } else {
        int prc = cli_parse(argc, argv, opts, "DIR");
        if (prc)
            return prc == 1 ? 0 : 2;
        if (!dir)
            return cli_failf("usage: xmc info DIR");
    }
    xmc_error err = {0};
    char *text = NULL;
    if (xmc_model_read_config_text(dir, &text, &err))
        return cli_fail(&err);
    char recipe[16];
    if (xmc_model_dir_recipe(dir, recipe, sizeof recipe, &err)) {
        xmc_free(text);
        return cli_fail(&err);
    }
    if (xmc_recipe_is_unidec(recipe)) {
        xmc_unidec *u = NULL;
        xmc_texts *names = NULL;
        if (xmc_model_load_unidec(dir, &u, &names, &err)) {
            xmc_free(text);
            return cli_fail(&err);
        }
        printf("%s/config.json:\n%s", dir, text);
        xmc_free(text);
        printf("\nrecipe: %s (%s; bag encoder; settings above)\n", recipe,
               strcmp(recipe, "depsl") ? "DE + classifier heads" : "DE head");
        printf("labels: %s\n", names ? "names in labels.txt" : "ids only");
        xmc_texts_free(names);
        xmc_unidec_free(u);
        return 0;
    }
    xmc_model *m = NULL;
    if (xmc_bert_encoder_register(&err) || xmc_model_load(dir, 0, &m, &err)) {
        xmc_free(text);
        return cli_fail(&err);
    }
    printf("%s/config.json:\n%s", dir, text);
    xmc_free(text);
    const xmc_encoder *e = xmc_model_encoder(m);
    const xmc_train_config *mc = xmc_model_config(m);
    printf("\nrecipe: %s; encoder: %s%s%s%s, width %d\n", mc->recipe, mc->encoder,
           mc->extra[0] ? " (" : "", mc->extra, mc->extra[0] ? ")" : "", e->dim);
    if (mc->augment[0])
        printf("augment: %s (Gandalf label points, docs/gandalf.md)\n", mc->augment);
    const xmc_ova *ova = xmc_model_head(m);
    const xmc_ffi *ffi = xmc_model_ffi_head(m);
    /* Column width from the longest name (bert tensors are long). */
    int w = 24;
    for (int i = 0; i < e->n_tables; i++)
        if ((int)strlen(e->tables[i].name) > w)
            w = (int)strlen(e->tables[i].name);
    for (int i = 0; i < e->n_tensors; i++)
        if ((int)strlen(e->tensors[i].name) > w)
            w = (int)strlen(e->tensors[i].name);
    printf("\n%-*s %14s %14s\n", w, "tensor", "shape", "parameters");
    for (int i = 0; i < e->n_tables; i++) {
        char shape[48];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)e->tables[i].rows,
                 (long long)e->tables[i].cols);
        printf("%-*s %14s %14lld  (sparse-row table)\n", w, e->tables[i].name, shape,
               (long long)(e->tables[i].rows * e->tables[i].cols));
    }
    for (int i = 0; i < e->n_tensors; i++) {
        char shape[48];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)e->tensors[i].rows,
                 (long long)e->tensors[i].cols);
        printf("%-*s %14s %14lld%s\n", w, e->tensors[i].name, shape,
               (long long)(e->tensors[i].rows * e->tensors[i].cols),
               e->tensors[i].no_decay ? "  (no weight decay)" : "");
    }
    char shape[48];
    if (ffi) {
        const xmc_ffi_config *fc = xmc_ffi_get_config(ffi);
        snprintf(shape, sizeof shape, "%lldx%d", (long long)fc->n_labels, fc->fan_in);
        printf("%-*s %14s %14lld  (fp32, fixed fan-in %d of %d inputs, %.1f%% sparse)\n", w,
               "classifier.W", shape, (long long)fc->n_labels * fc->fan_in, fc->fan_in,
               fc->d_in, 100.0 * (1.0 - (double)fc->fan_in / fc->d_in));
        printf("%-*s %14s %14lld  (int32 input ids)\n", w, "classifier.idx", shape,
               (long long)fc->n_labels * fc->fan_in);
    } else {
        const xmc_ova_config *hc = xmc_ova_get_config(ova);
        snprintf(shape, sizeof shape, "%lldx%d", (long long)hc->n_labels, hc->dim);
        printf("%-*s %14s %14lld  (%s)\n", w, "classifier.W", shape,
               (long long)hc->n_labels * hc->dim, hc->dtype == XMC_DT_BF16 ? "bf16" : "fp32");
    }
    xmc_model_stats st;
    xmc_model_get_stats(m, &st);
    printf("\nparameters: encoder %lld, classifier %lld, total %lld\n",
           (long long)st.encoder_params, (long long)st.head_params,
           (long long)(st.encoder_params + st.head_params));
    printf("bytes: encoder %.1f MB, classifier %.1f MB (+ optimizer state on disk for resume)\n",
           (double)st.encoder_bytes / 1048576.0, (double)st.head_bytes / 1048576.0);
    if (ffi) {
        const xmc_ffi_config *fc = xmc_ffi_get_config(ffi);
        printf("sparse head: %zu bytes per label (W + idx %d, optimizer state %zu); "
               "%lld rewiring rounds, topology %s\n",
               xmc_ffi_bytes_per_label(fc), 8 * fc->fan_in,
               xmc_ffi_bytes_per_label(fc) - (size_t)8 * (size_t)fc->fan_in,
               (long long)xmc_ffi_rewire_rounds(ffi), xmc_ffi_frozen(ffi) ? "frozen" : "open");
    }
    const xmc_neighbors *nb = xmc_model_neighbors(m);
    if (nb) {
        const xmc_train_config *c = xmc_model_config(m);
        printf("kNN memory: %lld training rows x %d (%.1f MB); prediction blends %.2f x the "
               "labels of the %d nearest (temperature %.2f)\n",
               (long long)xmc_neighbors_rows(nb), xmc_neighbors_dim(nb),
               (double)xmc_neighbors_bytes(nb) / 1048576.0, (double)c->knn_weight, c->knn,
               (double)c->knn_temp);
    }
    printf("trained: %d epochs, %lld steps; labels %lld%s\n", st.epochs_done,
           (long long)st.steps_done, (long long)st.n_labels,
           xmc_model_label_names(m) ? " (names in labels.txt)" : "");
    xmc_model_free(m);
    return 0;
}
