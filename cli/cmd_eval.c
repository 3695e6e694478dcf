/* xmc eval: score a prediction (score-matrix) file against a dataset's
 * labels: P@k, nDCG@k, R@k, coverage@k and, with --train, PSP@k and
 * PSnDCG@k (include/xmc/metrics.h; docs/metrics.md). Prints an aligned
 * table (percent) or, with --json, a JSON object (fractions). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "xmc/data.h"
#include "xmc/metrics.h"

/* An array of v[0..n) as o[key]. A value or key cJSON cannot allocate is
 * dropped; xmc_json_failures counts it (the caller prints nothing then). */
static void json_array(cJSON *o, const char *key, const double *v, int n)
{
    cJSON *a = cJSON_AddArrayToObject(o, key);
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
}

static void print_row(const char *name, const double *v, int n)
{
    printf("%-10s", name);
    for (int i = 0; i < n; i++)
        printf(" %8.2f", 100.0 * v[i]);
    printf("\n");
}

int cmd_eval(int argc, char **argv)
{
    const char *truth_spec = NULL, *pred_path = NULL, *train_spec = NULL, *ks_str = "1,3,5",
               *filter_path = NULL, *preset = NULL, *labels_from = NULL, *baseline = NULL;
    double A = NAN, B = NAN;
    int json = 0, no_filter = 0;
    const cli_opt opts[] = {
        {"truth", CLI_STR, &truth_spec, "dataset spec with the true labels (e.g. DIR/tst)", 1},
        {"pred", CLI_STR, &pred_path, "score matrix: header 'N L', then 'label:score ...' rows",
         0},
        {"baseline", CLI_STR, &baseline,
         "score a baseline instead of --pred: 'freq' (the 10 most frequent training labels; "
         "needs --train)",
         0},
        {"train", CLI_STR, &train_spec,
         "training dataset: propensities for PSP/PSnDCG, and its label names fix the truth's "
         "label ids (TEXTS+LABELS)",
         0},
        {"labels-from", CLI_STR, &labels_from,
         "spec whose label names fix the truth's label ids (TEXTS+LABELS; default: --train)", 0},
        {"A", CLI_DOUBLE, &A, "propensity A (default 0.55)", 0},
        {"B", CLI_DOUBLE, &B, "propensity B (default 1.5)", 0},
        {"preset", CLI_STR, &preset, "propensity preset: amazon (0.6/2.6), wikipedia (0.5/0.4)",
         0},
        {"k", CLI_STR, &ks_str, "comma-separated k values (default 1,3,5)", 0},
        {"filter", CLI_STR, &filter_path,
         "'row label' pairs to ignore (default: the truth dataset's filter file, if any)", 0},
        {"no-filter", CLI_FLAG, &no_filter, "ignore the truth dataset's filter file", 0},
        {"json", CLI_FLAG, &json, "print a JSON object instead of the table", 0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    int pr = cli_parse(argc, argv, opts,
                       "--truth SPEC (--pred FILE | --baseline freq) [--train SPEC] [--A a --B b "
                       "| --preset amazon|wikipedia] [--k 1,3,5] [--filter FILE] [--json]");
    if (pr == 1)
        return 0;
    if (pr)
        return 2;
    if (!pred_path == !baseline)
        return cli_failf("give exactly one of --pred FILE and --baseline freq");
    if (baseline && strcmp(baseline, "freq"))
        return cli_failf("--baseline: expected freq, got '%s'", baseline);
    if (baseline && !train_spec)
        return cli_failf("--baseline freq needs --train (the label frequencies)");

    int ks[XMC_METRICS_MAX_KS];
    int n_k = cli_parse_int_list(ks_str, ks, XMC_METRICS_MAX_KS);
    if (n_k < 0)
        return cli_failf("--k: expected up to %d positive integers like 1,3,5, got '%s'",
                         XMC_METRICS_MAX_KS, ks_str);
    const char *prop_name = "default";
    if (preset) {
        if (!isnan(A) || !isnan(B))
            return cli_failf("give either --preset or --A/--B, not both");
        if (!strcmp(preset, "amazon")) {
            A = XMC_PROP_AMAZON_A;
            B = XMC_PROP_AMAZON_B;
        } else if (!strcmp(preset, "wikipedia")) {
            A = XMC_PROP_WIKIPEDIA_A;
            B = XMC_PROP_WIKIPEDIA_B;
        } else {
            return cli_failf("--preset: expected amazon or wikipedia, got '%s'", preset);
        }
        prop_name = preset;
    } else if (!isnan(A) || !isnan(B)) {
        prop_name = "custom";
    }
    if (isnan(A))
        A = XMC_PROP_DEFAULT_A;
    if (isnan(B))
        B = XMC_PROP_DEFAULT_B;
    if (!train_spec && (preset || strcmp(prop_name, "default")))
        return cli_failf("--A/--B/--preset need --train (propensities come from training labels)");

    xmc_error err = {0};
    xmc_dataset *train = NULL, *truth = NULL, *vocab_ds = NULL;
    xmc_csr *pred = NULL, *file_filter = NULL;
    double *w = NULL;
    int status = 0;
    cJSON *root = NULL;

    if (train_spec && xmc_dataset_load(train_spec, NULL, &train, &err)) {
        status = cli_fail(&err);
        goto out;
    }
    xmc_load_opts lo = {0};
    if (labels_from) {
        if (xmc_dataset_load(labels_from, NULL, &vocab_ds, &err)) {
            status = cli_fail(&err);
            goto out;
        }
        if (!vocab_ds->label_names) {
            status = cli_failf("%s: --labels-from needs a dataset with label names "
                               "(TEXTS+LABELS)",
                               labels_from);
            goto out;
        }
        lo.label_vocab = vocab_ds->label_names;
    } else if (train) {
        lo.label_vocab = train->label_names; /* only TEXTS+LABELS uses it */
    }
    if (xmc_dataset_load(truth_spec, &lo, &truth, &err)) {
        status = cli_fail(&err);
        goto out;
    }
    if (!truth->Y) {
        status = cli_failf("%s: this dataset has no labels", truth_spec);
        goto out;
    }
    const xmc_csr *Y = truth->Y;
    if (baseline) {
        if (!train->Y || xmc_metrics_freq_baseline(train->Y, Y->nrows, 10, &pred, &err)) {
            status = train->Y ? cli_fail(&err) : cli_failf("%s: no labels", train_spec);
            goto out;
        }
        pred_path = "frequency baseline";
    } else if (xmc_csr_read_text(pred_path, &pred, &err)) {
        status = cli_fail(&err);
        goto out;
    }
    if (pred->nrows != Y->nrows) {
        XMC_ERR(&err, XMC_EFORMAT, pred_path, 1,
                "header says %lld rows, but the ground truth %s has %lld points",
                (long long)pred->nrows, truth_spec, (long long)Y->nrows);
        status = cli_fail(&err);
        goto out;
    }
    if (pred->ncols > Y->ncols) {
        XMC_ERR(&err, XMC_EFORMAT, pred_path, 1,
                "header says %lld labels, but the ground truth %s has %lld", (long long)pred->ncols,
                truth_spec, (long long)Y->ncols);
        status = cli_fail(&err);
        goto out;
    }
    if (train) {
        if (!train->Y || train->Y->ncols != Y->ncols) {
            status = cli_failf("%s has %lld labels but the ground truth %s has %lld: propensities "
                               "need the same label space",
                               train_spec, train->Y ? (long long)train->Y->ncols : 0LL, truth_spec,
                               (long long)Y->ncols);
            goto out;
        }
        w = xmc_malloc((size_t)(Y->ncols ? Y->ncols : 1) * sizeof *w);
        if (!w) {
            status = cli_failf("out of memory");
            goto out;
        }
        if (xmc_metrics_inv_propensity(train->Y, A, B, w, &err)) {
            status = cli_fail(&err);
            goto out;
        }
    }
    const xmc_csr *filter = NULL;
    const char *filter_from = "none";
    if (filter_path) {
        if (xmc_filter_read(filter_path, Y->nrows, Y->ncols, &file_filter, &err)) {
            status = cli_fail(&err);
            goto out;
        }
        filter = file_filter;
        filter_from = filter_path;
    } else if (!no_filter && truth->filter) {
        filter = truth->filter;
        filter_from = "dataset";
    }

    xmc_metrics_opts mo = {ks, n_k, w, filter};
    xmc_metrics_result r;
    double t0 = xmc_now();
    if (xmc_metrics_eval(Y, pred, &mo, &r, &err)) {
        /* The library names the row; point at the prediction file. */
        if (!err.path[0])
            snprintf(err.path, sizeof err.path, "%s", pred_path);
        status = cli_fail(&err);
        goto out;
    }
    double eval_s = xmc_now() - t0;

    if (json) {
        unsigned f0 = xmc_json_failures();
        root = cJSON_CreateObject();
        cJSON_AddNumberToObject(root, "points", (double)r.n_points);
        cJSON_AddNumberToObject(root, "labels", (double)Y->ncols);
        cJSON_AddNumberToObject(root, "rows_without_labels", (double)r.n_empty);
        cJSON_AddNumberToObject(root, "distinct_true_labels", (double)r.n_truth_labels);
        cJSON_AddNumberToObject(root, "unknown_true_labels", (double)truth->n_unknown_labels);
        cJSON_AddStringToObject(root, "filter", filter_from);
        cJSON_AddNumberToObject(root, "filtered_true_pairs", (double)r.n_truth_filtered);
        cJSON_AddNumberToObject(root, "filtered_predictions", (double)r.n_pred_filtered);
        double kd[XMC_METRICS_MAX_KS];
        for (int q = 0; q < r.n_k; q++)
            kd[q] = r.k[q];
        json_array(root, "k", kd, r.n_k);
        json_array(root, "P", r.p, r.n_k);
        json_array(root, "nDCG", r.ndcg, r.n_k);
        if (r.has_ps) {
            json_array(root, "PSP", r.psp, r.n_k);
            json_array(root, "PSnDCG", r.psndcg, r.n_k);
            cJSON *pp = cJSON_AddObjectToObject(root, "propensity");
            cJSON_AddNumberToObject(pp, "A", A);
            cJSON_AddNumberToObject(pp, "B", B);
            cJSON_AddStringToObject(pp, "preset", prop_name);
        }
        json_array(root, "R", r.recall, r.n_k);
        json_array(root, "coverage", r.coverage, r.n_k);
        cJSON_AddNumberToObject(root, "eval_seconds", eval_s);
        char *s = cJSON_Print(root);
        if (s && xmc_json_failures() != f0) { /* a field was dropped */
            cJSON_free(s);
            s = NULL;
        }
        if (!s) {
            status = cli_failf("out of memory");
            goto out;
        }
        printf("%s\n", s);
        cJSON_free(s);
    } else {
        printf("points %lld (%lld without labels), labels %lld, filter: %s", (long long)r.n_points,
               (long long)r.n_empty, (long long)Y->ncols, filter_from);
        if (filter)
            printf(" (%lld true pairs, %lld predictions removed)", (long long)r.n_truth_filtered,
                   (long long)r.n_pred_filtered);
        printf("\n");
        if (truth->n_unknown_labels)
            printf("note: %lld true label names are not in the label vocabulary (ignored)\n",
                   (long long)truth->n_unknown_labels);
        if (r.has_ps)
            printf("propensity A=%g B=%g (%s), from %lld training points\n", A, B, prop_name,
                   (long long)train->Y->nrows);
        printf("%-10s", "metric(%)");
        for (int q = 0; q < r.n_k; q++) {
            char h[16];
            snprintf(h, sizeof h, "@%d", r.k[q]);
            printf(" %8s", h);
        }
        printf("\n");
        print_row("P", r.p, r.n_k);
        print_row("nDCG", r.ndcg, r.n_k);
        if (r.has_ps) {
            print_row("PSP", r.psp, r.n_k);
            print_row("PSnDCG", r.psndcg, r.n_k);
        }
        print_row("R", r.recall, r.n_k);
        print_row("coverage", r.coverage, r.n_k);
    }

out:
    cJSON_Delete(root);
    xmc_free(w);
    xmc_csr_free(pred);
    xmc_csr_free(file_filter);
    xmc_dataset_free(truth);
    xmc_dataset_free(train);
    xmc_dataset_free(vocab_ds);
    return status;
}
