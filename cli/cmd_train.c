/* xmc train: parse flags (optionally from --config FILE first), fill an
 * xmc_train_config and run xmc_train_run (include/xmc/model.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "xmc/bert.h"
#include "xmc/model.h"

static int copy_str(char *dst, size_t n, const char *src, const char *flag)
{
    if (!src)
        return 0;
    if (strlen(src) >= n) {
        cli_failf("--%s: value too long (max %zu bytes)", flag, n - 1);
        return -1;
    }
    snprintf(dst, n, "%s", src);
    return 0;
}

static int train_main(int argc, char **argv, xmc_dist *dist);

/* Under mpirun every rank runs the same command (docs/dist.md). */
int cmd_train(int argc, char **argv)
{
    int rc;
    xmc_dist *d = cli_dist_begin(&argc, &argv, &rc);
    if (!d)
        return rc;
    return cli_dist_end(d, train_main(argc, argv, d));
}

static int train_main(int argc, char **argv, xmc_dist *dist)
{
    xmc_train_config c;
    xmc_train_config_default(&c);
    const char *train = NULL, *test = NULL, *model = NULL, *recipe = "renee", *encoder = NULL,
               *loss = NULL, *act = NULL, *head_opt = "sgdm", *config = NULL, *augment = NULL,
               *model_dir = NULL, *pool = NULL, *bag = NULL, *inter_act = NULL,
               *table_opt = NULL;
    int dim = c.dim, bottleneck = 0, intermediate = 0, layers = c.layers, epochs = c.epochs,
        batch = c.batch,
        bf16 = 0, threads = 0, eval_every = c.eval_every, loss_every = c.loss_every,
        stop_after = 0, resume = 0, max_len = 0, plan = 0, ensemble = c.ensemble, knn = c.knn;
    int64_t seed = (int64_t)c.seed, buckets = c.buckets, max_steps = 0,
            rewire_interval = c.rewire_interval;
    int fan_in = c.fan_in, aux_clusters = 0;
    double aux_scale = c.aux_scale, meta_cutoff = 0;
    double rewire_end = c.rewire_end, rewire_threshold = c.rewire_threshold,
           rewire_fraction = c.rewire_fraction;
    double mem_budget = 0, knn_temp = c.knn_temp, knn_weight = c.knn_weight;
    double lr1 = c.lr1, lr2 = c.lr2, lr_table = c.lr_table, wd1 = c.wd1, wd2 = c.wd2,
           momentum = c.momentum,
           dropout = c.dropout, warmup = c.warmup, input_dropout = c.input_dropout;
    const cli_opt opts[] = {
        {"train", CLI_STR, &train, "training data spec", 1},
        {"test", CLI_STR, &test, "test data spec: P@1/3/5 and PSP@5 after epochs", 0},
        {"model", CLI_STR, &model, "model directory (created; checkpoint every epoch)", 1},
        {"recipe", CLI_STR, &recipe, "training recipe: renee | spartex | unidec | depsl", 0},
        {"fan-in", CLI_INT, &fan_in, "spartex: inputs per label of the sparse head (default 64)",
         0},
        {"rewire-interval", CLI_I64, &rewire_interval,
         "spartex: prune / regrow every N steps (default 100, 0 = never)", 0},
        {"rewire-end", CLI_DOUBLE, &rewire_end,
         "spartex: fraction of steps after which the topology is frozen (default 0.66)", 0},
        {"rewire-threshold", CLI_DOUBLE, &rewire_threshold,
         "spartex: initial |W| pruning threshold, cosine-decayed to 1e-4 (default 0.3)", 0},
        {"rewire-fraction", CLI_DOUBLE, &rewire_fraction,
         "spartex: prune this fraction of the weights per round instead (default 0)", 0},
        {"aux-clusters", CLI_INT, &aux_clusters,
         "spartex: meta-classifier over ~C label clusters (default 0 = off; feature sets)", 0},
        {"aux-scale", CLI_DOUBLE, &aux_scale, "spartex: initial meta loss weight (default 0.4)",
         0},
        {"meta-cutoff-epoch", CLI_DOUBLE, &meta_cutoff,
         "spartex: drop the meta-classifier after this epoch (default half the epochs)", 0},
        {"encoder", CLI_STR, &encoder,
         "sparse | bag | bert (default: sparse with features, else bag)", 0},
        {"model-dir", CLI_STR, &model_dir, "bert: Hugging Face checkpoint directory", 0},
        {"max-len", CLI_INT, &max_len, "bert: tokens per text (default 128)", 0},
        {"pool", CLI_STR, &pool, "bert: mean | cls (default mean)", 0},
        {"bag", CLI_STR, &bag,
         "bag weights: idf (default; tf-idf unigrams) | mean (uni + bigrams, fastText's)", 0},
        {"dim", CLI_INT, &dim, "encoder width h (default 1024; 256 --bag mean; bert: ignored)", 0},
        {"bottleneck", CLI_INT, &bottleneck, "linear h -> b before the classifier (0 = none)", 0},
        {"intermediate", CLI_INT, &intermediate,
         "dense layer -> D with bias before the classifier (SPARTEX; 0 = none)", 0},
        {"intermediate-act", CLI_STR, &inter_act, "after --intermediate: relu | none (default relu)",
         0},
        {"layers", CLI_INT, &layers, "encoder dense layers, 1 or 2 (default 1)", 0},
        {"activation", CLI_STR, &act, "relu | gelu (default relu)", 0},
        {"dropout", CLI_DOUBLE, &dropout, "dropout on the embedding (default 0.5)", 0},
        {"input-dropout", CLI_DOUBLE, &input_dropout, "drop input features / n-grams (training)", 0},
        {"buckets", CLI_I64, &buckets, "bag: hash buckets (default: from the distinct n-grams)", 0},
        {"epochs", CLI_INT, &epochs, "epochs (default 20)", 0},
        {"batch", CLI_INT, &batch, "batch size (default 128)", 0},
        {"lr1", CLI_DOUBLE, &lr1, "classifier learning rate (SGD momentum, summed loss; default 0.03 sparse, 0.05 bag, bert; 0.01 with sqhinge)", 0},
        {"lr2", CLI_DOUBLE, &lr2,
         "encoder learning rate (AdamW; default 0.002, 0.01 --bag mean, 1e-4 bert)", 0},
        {"table-opt", CLI_STR, &table_opt,
         "encoder embedding tables: sgdm | adam (default sgdm when the inputs outnumber the "
         "training rows, else adam; renee)",
         0},
        {"lr-table", CLI_DOUBLE, &lr_table,
         "embedding-table rate (default 0.001 with sgdm, summed loss; --lr2 with adam)", 0},
        {"wd1", CLI_DOUBLE, &wd1, "classifier weight decay", 0},
        {"wd2", CLI_DOUBLE, &wd2, "encoder weight decay (not on biases)", 0},
        {"momentum", CLI_DOUBLE, &momentum, "classifier SGD momentum (default 0.9)", 0},
        {"head-opt", CLI_STR, &head_opt, "classifier optimizer: sgdm | adam", 0},
        {"warmup", CLI_DOUBLE, &warmup, "fraction of steps of linear warm-up (default 0.05)", 0},
        {"loss", CLI_STR, &loss, "bce | sqhinge (default sqhinge for the tf-idf bag, else bce)", 0},
        {"bf16", CLI_FLAG, &bf16, "classifier weights in bf16 (fp32 math)", 0},
        {"threads", CLI_INT, &threads, "OpenMP/OpenBLAS threads (default: all)", 0},
        {"seed", CLI_I64, &seed, "random seed (default 1)", 0},
        {"ensemble", CLI_INT, &ensemble,
         "N members (seeds s..s+N-1) merged into one model, scores averaged (default 0 = "
         "auto: 3 up to 100,000 rows and labels for renee sparse/bag, else 1)",
         0},
        {"knn", CLI_INT, &knn,
         "kNN memory: blend the labels of the K nearest training rows into prediction "
         "(default -1 = auto: 15 up to 100,000 rows for renee sparse/bag, else 0 = none)",
         0},
        {"knn-temp", CLI_DOUBLE, &knn_temp, "kNN memory: softmax temperature over cosines (0.1)",
         0},
        {"knn-weight", CLI_DOUBLE, &knn_weight,
         "kNN memory: its weight against the classifier's sigmoid (0.2)", 0},
        {"eval-every", CLI_INT, &eval_every, "test every E epochs (0 = only at the end)", 0},
        {"loss-every", CLI_INT, &loss_every, "sample the loss every N steps (default 10)", 0},
        {"stop-after", CLI_INT, &stop_after, "stop after N epochs of this run (then --resume)", 0},
        {"max-steps", CLI_I64, &max_steps, "stop after N steps in total (sizing runs)", 0},
        {"augment", CLI_STR, &augment,
         "Gandalf label points: gandalf|cooc|sym|self[:DELTA][+pifa] (docs/gandalf.md)", 0},
        {"config", CLI_STR, &config, "read 'name value' lines first; flags override", 0},
        {"resume", CLI_FLAG, &resume, "continue the run in --model from its last checkpoint", 0},
        {"plan", CLI_FLAG, &plan,
         "print the memory plan (classifier, encoder, data vs budget) and exit; allocates "
         "no classifier",
         0},
        {"mem-budget", CLI_DOUBLE, &mem_budget,
         "refuse up front when the plan exceeds GIB (default: available memory; < 0: off)", 0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    /* --config is applied before the command line so that flags override. */
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            v = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            v = argv[i] + 9;
        if (v) {
            xmc_error err = {0};
            if (cli_apply_config(v, opts, &err) != XMC_OK)
                return cli_fail(&err);
        }
    }
    int prc = cli_parse(argc, argv, opts,
                        "--train SPEC [--test SPEC] --model DIR [options]");
    if (prc)
        return prc == 1 ? 0 : 2;
    if (copy_str(c.recipe, sizeof c.recipe, recipe, "recipe") ||
        copy_str(c.train_spec, sizeof c.train_spec, train, "train") ||
        copy_str(c.test_spec, sizeof c.test_spec, test, "test") ||
        copy_str(c.augment, sizeof c.augment, augment, "augment"))
        return 2;
    if (encoder && copy_str(c.encoder, sizeof c.encoder, encoder, "encoder"))
        return 2;
    int bert = encoder && !strcmp(encoder, "bert");
    if (bert && !model_dir && !resume)
        return cli_failf("--encoder bert needs --model-dir HF_DIR (a BERT checkpoint)");
    if (!bert && (model_dir || max_len || pool))
        return cli_failf("--model-dir, --max-len and --pool are for --encoder bert");
    if (pool && strcmp(pool, "mean") && strcmp(pool, "cls"))
        return cli_failf("--pool: expected mean or cls, got '%s'", pool);
    if (max_len < 0)
        return cli_failf("--max-len %d: expected a positive number", max_len);
    if (bert && model_dir) {
        /* Stored absolute: predict and resume load the checkpoint from any cwd. */
        char abs[PATH_MAX];
        if (!realpath(model_dir, abs))
            return cli_failf("--model-dir %s: no such directory", model_dir);
        char lenopt[32] = "";
        if (max_len)
            snprintf(lenopt, sizeof lenopt, ",max_len=%d", max_len);
        int n = snprintf(c.extra, sizeof c.extra, "%s%s%s%s", abs, lenopt, pool ? ",pool=" : "",
                         pool ? pool : "");
        if (n < 0 || (size_t)n >= sizeof c.extra)
            return cli_failf("--model-dir %s: path too long (max %zu bytes with options)", abs,
                             sizeof c.extra - 1);
    }
    if (bag && strcmp(bag, "idf") && strcmp(bag, "mean"))
        return cli_failf("--bag: expected idf or mean, got '%s'", bag);
    if (bag && (bert || (encoder && strcmp(encoder, "bag"))))
        return cli_failf("--bag is for the bag encoder (texts)");
    if (bag)
        snprintf(c.extra, sizeof c.extra, "%s", bag);
    if (act && strcmp(act, "relu") && strcmp(act, "gelu"))
        return cli_failf("--activation: expected relu or gelu, got '%s'", act);
    if (inter_act && strcmp(inter_act, "relu") && strcmp(inter_act, "none"))
        return cli_failf("--intermediate-act: expected relu or none, got '%s'", inter_act);
    if (intermediate < 0)
        return cli_failf("--intermediate %d: expected a width >= 1 (or 0 = none)", intermediate);
    if (inter_act && !intermediate && !resume)
        return cli_failf("--intermediate-act is for the layer of --intermediate D");
    /* SPARTEX's settings on another recipe would be ignored: refuse them. */
    if (!resume && strcmp(recipe, "spartex") &&
        (fan_in != c.fan_in || rewire_interval != c.rewire_interval ||
         rewire_end != c.rewire_end || rewire_threshold != c.rewire_threshold ||
         rewire_fraction != c.rewire_fraction || aux_clusters || aux_scale != c.aux_scale ||
         meta_cutoff))
        return cli_failf("--fan-in, --rewire-*, --aux-* and --meta-cutoff-epoch are for "
                         "--recipe spartex");
    if (loss && strcmp(loss, "bce") && strcmp(loss, "sqhinge"))
        return cli_failf("--loss: expected bce or sqhinge, got '%s'", loss);
    if (strcmp(head_opt, "sgdm") && strcmp(head_opt, "adam"))
        return cli_failf("--head-opt: expected sgdm or adam, got '%s'", head_opt);
    if (table_opt && strcmp(table_opt, "sgdm") && strcmp(table_opt, "adam"))
        return cli_failf("--table-opt: expected sgdm or adam, got '%s'", table_opt);
    if (!resume && (table_opt || lr_table != c.lr_table) && xmc_recipe_is_unidec(recipe))
        return cli_failf("--table-opt and --lr-table are for --recipe renee or spartex");
    if (seed < 0)
        return cli_failf("--seed: expected a non-negative integer");
    if (act)
        c.act = !strcmp(act, "gelu") ? XMC_ACT_GELU : XMC_ACT_RELU;
    if (loss)
        c.loss = !strcmp(loss, "sqhinge") ? XMC_LOSS_SQHINGE : XMC_LOSS_BCE;
    c.head_opt = !strcmp(head_opt, "adam") ? XMC_HEAD_ADAM : XMC_HEAD_SGDM;
    if (table_opt)
        c.table_opt = !strcmp(table_opt, "adam") ? XMC_TABLE_ADAM : XMC_TABLE_SGDM;
    c.lr_table = (float)lr_table;
    c.dim = dim;
    c.bottleneck = bottleneck;
    c.intermediate = intermediate;
    c.intermediate_relu = !inter_act || !strcmp(inter_act, "relu");
    c.layers = layers;
    c.dropout = (float)dropout;
    c.input_dropout = (float)input_dropout;
    c.buckets = buckets;
    c.epochs = epochs;
    c.batch = batch;
    c.lr1 = (float)lr1;
    c.lr2 = (float)lr2;
    c.wd1 = (float)wd1;
    c.wd2 = (float)wd2;
    c.momentum = (float)momentum;
    c.warmup = (float)warmup;
    c.bf16 = bf16;
    c.threads = threads;
    c.seed = (uint64_t)seed;
    c.ensemble = ensemble;
    c.knn = knn;
    c.knn_temp = (float)knn_temp;
    c.knn_weight = (float)knn_weight;
    c.eval_every = eval_every;
    c.loss_every = loss_every;
    c.stop_after = stop_after;
    c.max_steps = max_steps;
    c.fan_in = fan_in;
    c.rewire_interval = rewire_interval;
    c.rewire_end = (float)rewire_end;
    c.rewire_threshold = (float)rewire_threshold;
    c.rewire_fraction = rewire_fraction;
    c.aux_clusters = aux_clusters;
    c.aux_scale = (float)aux_scale;
    c.meta_cutoff_epoch = (float)meta_cutoff;
    c.mem_budget = mem_budget > 0 ? (int64_t)(mem_budget * 1073741824.0) : mem_budget < 0 ? -1 : 0;
    xmc_error err = {0};
    /* The bert kind is a plug-in: register it before creating or resuming. */
    if (xmc_bert_encoder_register(&err) != XMC_OK)
        return cli_fail(&err);
    if (plan) {
        if (resume || xmc_recipe_is_unidec(c.recipe))
            return cli_failf("--plan: for a new renee or spartex run (not --resume, not %s)",
                             c.recipe);
        xmc_dataset *ds = NULL;
        xmc_model_plan p;
        char line[768];
        if (xmc_dataset_load(c.train_spec, NULL, &ds, &err) != XMC_OK)
            return cli_fail(&err);
        int rc = xmc_model_plan_memory(&c, ds, &p, &err);
        xmc_dataset_free(ds);
        if (rc != XMC_OK)
            return cli_fail(&err);
        xmc_model_plan_format(&p, line, sizeof line);
        printf("%s\n", line);
        /* Exit status says whether xmc train would start. */
        return p.budget && p.total > p.budget ? 1 : 0;
    }
    if (xmc_train_run_dist(&c, model, resume, dist, &err) != XMC_OK)
        return cli_dist_fail(dist, &err);
    return 0;
}
