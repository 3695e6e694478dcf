/* xmc predict: exact top-k with a trained model.
 *   --input SPEC --out FILE   score-matrix file ("N L" header, then
 *                             "label:score ..." per row), written atomically
 *   --input SPEC --embed FILE the rows' embeddings as a float32 .npy
 *   --text                    raw text lines on stdin -> TSV on stdout:
 *                             line, rank, label id, score, label name */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "xmc/ann.h"
#include "xmc/bert.h"
#include "xmc/model.h"

/* Stdin lines as a dataset of point texts (ds->texts freed by the caller
 * with xmc_texts_free; ds->n = 0 when stdin is empty). */
static int read_stdin_texts(xmc_dataset *ds, xmc_error *err)
{
    memset(ds, 0, sizeof *ds);
    ds->spec = "<stdin>";
    int rc = cli_read_lines("-", 0, &ds->texts, err);
    ds->n = ds->texts ? ds->texts->n : 0;
    return rc;
}

/* The label name printed for label l (--text). */
typedef const char *(*label_name_fn)(const void *ctx, int32_t l);

/* --text output: the rows of P (sorted by label id) ranked by score, as TSV
 * (line, rank, label, score or sigmoid probability when sig, name). */
static void print_ranked(const xmc_csr *P, int sig, label_name_fn name, const void *ctx)
{
    printf("# line\trank\tlabel\t%s\tname\n", sig ? "p" : "score");
    for (int64_t i = 0; i < P->nrows; i++) {
        int64_t a = P->indptr[i], b = P->indptr[i + 1];
        char used[1024] = {0}; /* rows hold at most --topk <= 1000 entries */
        for (int rank = 1; rank <= b - a && rank <= 1024; rank++) {
            int64_t best = -1;
            for (int64_t p = a; p < b; p++)
                if (!used[p - a] && (best < 0 || P->values[p] > P->values[best]))
                    best = p;
            used[best - a] = 1;
            const double s = P->values[best];
            printf("%lld\t%d\t%d\t%.4f\t%s\n", (long long)i + 1, rank, P->indices[best],
                   sig ? 1.0 / (1.0 + exp(-s)) : s, name(ctx, P->indices[best]));
        }
    }
}

static const char *model_label_name(const void *ctx, int32_t l)
{
    const xmc_texts *names = ctx;
    return names ? xmc_texts_get(names, l) : "";
}

static int predict_text(xmc_model *m, int k)
{
    xmc_error err = {0};
    const xmc_train_config *c = xmc_model_config(m);
    if (strcmp(c->encoder, "bag") != 0 && strcmp(c->encoder, "bert") != 0)
        return cli_failf("--text needs a model trained on texts (encoder bag or bert); this "
                         "model's encoder is '%s' (use --input with a feature file)",
                         c->encoder);
    xmc_dataset ds;
    xmc_csr *P = NULL;
    int rc = 0;
    if (read_stdin_texts(&ds, &err) || (ds.n > 0 && xmc_model_predict(m, &ds, k, &P, &err)))
        rc = cli_fail(&err);
    else if (ds.n > 0)
        print_ranked(P, c->loss == XMC_LOSS_BCE, model_label_name, xmc_model_label_names(m));
    xmc_texts_free(ds.texts);
    xmc_csr_free(P);
    return rc;
}

int cli_unidec_head(const char *head, int depsl, int *which)
{
    *which = depsl ? XMC_UNIDEC_SCORE_DE : XMC_UNIDEC_SCORE_BOTH;
    if (head && !strcmp(head, "de"))
        *which = XMC_UNIDEC_SCORE_DE;
    else if (head && !strcmp(head, "clf"))
        *which = XMC_UNIDEC_SCORE_CLF;
    else if (head && !strcmp(head, "both"))
        *which = XMC_UNIDEC_SCORE_BOTH;
    else if (head)
        return cli_failf("--head: expected de, clf or both, got '%s'", head);
    if (depsl && *which != XMC_UNIDEC_SCORE_DE)
        return cli_failf("--head %s: a depsl model has only the DE head", head);
    return 0;
}

/* Label names of a unidec model: its names or label texts, then the labels
 * added with add-labels (ids L..). */
typedef struct unidec_names {
    int64_t L;
    const xmc_texts *added, *base;
} unidec_names;

static const char *unidec_label_name(const void *ctx, int32_t l)
{
    const unidec_names *u = ctx;
    return l >= u->L ? xmc_texts_get(u->added, l - u->L) : xmc_texts_get(u->base, l);
}

/* unidec / depsl model directories: --input/--out, or --text; --head picks
 * the score half, --ann [--ef E] searches the model directory's HNSW over the
 * label vectors (built on first use, grown by `xmc index add-labels`).
 * Labels added with add-labels (ids L..) are scored in both modes. */
static int predict_unidec(const char *model, const char *recipe, const char *input,
                          const char *out, int text, int topk, const char *head, int ann, int ef)
{
    int depsl = !strcmp(recipe, "depsl");
    int which;
    if (cli_unidec_head(head, depsl, &which))
        return 1;
    xmc_error err = {0};
    xmc_unidec *u = NULL;
    xmc_texts *names = NULL, *added = NULL, *all = NULL;
    xmc_dataset *ds = NULL, sds;
    xmc_csr *P = NULL;
    xmc_hnsw *idx = NULL;
    int rc = 0, built = 0;
    memset(&sds, 0, sizeof sds);
    xmc_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.need_texts = 1;
    double t0 = xmc_now();
    if (xmc_bert_encoder_register(&err) || xmc_model_load_unidec(model, &u, &names, &err) ||
        xmc_unidec_added_labels(model, &added, &err) ||
        (added && !ann && xmc_texts_concat(xmc_unidec_label_texts(u), added, &all, &err)))
        goto fail;
    lo.label_vocab = names;
    if (text) {
        if (read_stdin_texts(&sds, &err))
            goto fail;
        if (sds.n == 0)
            goto done;
        ds = &sds;
    } else if (xmc_dataset_load(input, &lo, &ds, &err))
        goto fail;
    if (ann ? xmc_unidec_ann_open(u, model, which, added, &idx, &built, &err) ||
                  xmc_unidec_ann_predict(u, idx, which, ds, topk, ef, &P, &err)
            : xmc_unidec_predict(u, ds, all, topk, which, 0, &P, &err))
        goto fail;
    if (!text) {
        if (xmc_csr_write_text(out, P, &err))
            goto fail;
        fprintf(stderr, "predicted top-%d (%s%s) for %lld rows over %lld labels in %.2fs -> %s\n",
                topk, recipe,
                !ann ? "" : built == 1 ? ", HNSW built" : built ? ", HNSW grown" : ", HNSW",
                (long long)ds->n, (long long)P->ncols, xmc_now() - t0, out);
        goto done;
    }
    unidec_names un = {xmc_unidec_n_labels(u), added,
                       names ? names : xmc_unidec_label_texts(u)};
    print_ranked(P, 0, unidec_label_name, &un);
    goto done;
fail:
    rc = cli_fail(&err);
done:
    xmc_hnsw_free(idx);
    xmc_csr_free(P);
    if (ds != &sds)
        xmc_dataset_free(ds);
    xmc_texts_free(sds.texts);
    xmc_texts_free(names);
    xmc_texts_free(added);
    xmc_texts_free(all);
    xmc_unidec_free(u);
    return rc;
}

/* --embed: the embeddings the head scores, N x d float32, in NumPy's .npy
 * format (version 1.0: magic, header length, a Python-literal header padded
 * to 64 bytes, then the rows in C order), which numpy.load and most
 * array tools read with no code of ours. Written in blocks through a temp
 * file, so memory stays at one block and a failed run leaves no file. */
static int write_embeddings(xmc_model *m, const xmc_enc_data *d, const char *path,
                            xmc_error *err)
{
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the .npy header below says little-endian ('<f4')"
#endif
    xmc_model_stats st;
    xmc_model_get_stats(m, &st);
    enum { BLOCK = 4096 };
    xmc_outfile o;
    float *E = xmc_malloc((size_t)BLOCK * (size_t)st.dim * sizeof(float));
    if (!E)
        return XMC_ERR(err, XMC_ENOMEM, path, 0, "out of memory (%d x %d embeddings)", BLOCK,
                       st.dim);
    int rc = xmc_outfile_open(&o, path, err);
    if (rc)
        goto done;
    char hdr[128];
    int n = snprintf(hdr + 10, sizeof hdr - 10,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %d), }",
                     (long long)d->n, st.dim);
    int total = (10 + n + 1 + 63) / 64 * 64; /* magic + length + header + '\n' */
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)((total - 10) & 0xff);
    hdr[9] = (char)((total - 10) >> 8);
    memset(hdr + 10 + n, ' ', (size_t)(total - 10 - n - 1));
    hdr[total - 1] = '\n';
    if (fwrite(hdr, 1, (size_t)total, o.fp) != (size_t)total)
        o.failed = 1;
    for (int64_t r0 = 0; r0 < d->n && !o.failed; r0 += BLOCK) {
        int64_t b = d->n - r0 < BLOCK ? d->n - r0 : BLOCK;
        if ((rc = xmc_model_embed(m, d, r0, b, E, err)))
            break;
        if (fwrite(E, sizeof(float) * (size_t)st.dim, (size_t)b, o.fp) != (size_t)b)
            o.failed = 1;
    }
    if (rc)
        xmc_outfile_abort(&o);
    else
        rc = xmc_outfile_commit(&o, err);
done:
    xmc_free(E);
    return rc;
}

static int predict_main(int argc, char **argv, xmc_dist *dist);

/* `mpirun -np P xmc predict`: each rank loads its label shard (re-sharding
 * the checkpoint), rank 0 merges the top-k and writes --out. */
int cmd_predict(int argc, char **argv)
{
    int rc;
    xmc_dist *d = cli_dist_begin(&argc, &argv, &rc);
    if (!d)
        return rc;
    return cli_dist_end(d, predict_main(argc, argv, d));
}

static int predict_main(int argc, char **argv, xmc_dist *dist)
{
    const char *model = NULL, *input = NULL, *out = NULL, *head = NULL, *embed = NULL;
    int topk = 5, text = 0, threads = 0, ann = 0, ef = 0, no_knn = 0;
    const cli_opt opts[] = {
        {"model", CLI_STR, &model, "model directory (xmc train --model)", 1},
        {"input", CLI_STR, &input, "data spec to predict", 0},
        {"out", CLI_STR, &out, "score-matrix file to write (with --input)", 0},
        {"topk", CLI_INT, &topk, "labels per row (default 5)", 0},
        {"text", CLI_FLAG, &text, "read raw text lines from stdin, print labels (TSV)", 0},
        {"threads", CLI_INT, &threads, "OpenMP/OpenBLAS threads", 0},
        {"ann", CLI_FLAG, &ann, "approximate search with an HNSW index over the labels", 0},
        {"ef", CLI_INT, &ef, "--ann: HNSW candidate list size (default max(100, topk))", 0},
        {"head", CLI_STR, &head, "unidec: score with de | clf | both (default both; depsl de)",
         0},
        {"embed", CLI_STR, &embed,
         "with --input: write the rows' embeddings (what the head scores) to FILE, float32 .npy",
         0},
        {"no-knn", CLI_FLAG, &no_knn,
         "score with the classifier alone (logits), not its blend with the model's kNN memory",
         0},
        {NULL, CLI_END, NULL, NULL, 0},
    };
    int prc = cli_parse(
        argc, argv, opts,
        "--model DIR (--input SPEC [--out FILE] [--embed FILE] | --text) [--topk K]");
    if (prc)
        return prc == 1 ? 0 : 2;
    if (topk < 1 || topk > 1000)
        return cli_failf("--topk %d: expected 1 .. 1000", topk);
    if (!text && (!input || (!out && !embed)))
        return cli_failf("give --input SPEC with --out FILE and/or --embed FILE, or --text (see "
                         "xmc predict --help)");
    if (text && embed)
        return cli_failf("--embed: give --input SPEC (not --text)");
    if (ann && !text && !out)
        return cli_failf("--ann: give --out FILE (it changes the scores, not the embeddings)");
    if (ef < 0 || (ef && !ann))
        return cli_failf("--ef %d: expected a positive size, with --ann", ef);
    if (ann && ef == 0)
        ef = topk > 100 ? topk : 100;
    if (threads > 0)
        xmc_set_threads(threads);
    xmc_error err = {0};
    char recipe[16];
    if (xmc_model_dir_recipe(model, recipe, sizeof recipe, &err))
        return cli_fail(&err);
    if (xmc_recipe_is_unidec(recipe)) {
        if (embed)
            return cli_failf("--embed: for renee and spartex models (this one is %s)", recipe);
        return predict_unidec(model, recipe, input, out, text, topk, head, ann, ef);
    }
    if (head)
        return cli_failf("--head is for unidec / depsl models (this one is %s)", recipe);
    if (ann && text)
        return cli_failf("--ann: give --input SPEC --out FILE (not --text)");
    if (ann && !strcmp(recipe, "spartex"))
        return cli_failf("--ann: not for spartex models (the HNSW indexes dense classifier "
                         "rows; exact top-k is used without --ann)");
    if (xmc_dist_active(dist) && (text || embed))
        return cli_failf("under mpirun: --input/--out only (--text and --embed run on one "
                         "process)");
    xmc_model *m = NULL;
    /* Models may use the bert plug-in kind: register it before loading. */
    if (xmc_bert_encoder_register(&err) || xmc_model_load_dist(model, 0, dist, &m, &err))
        return cli_dist_fail(dist, &err);
    const int root = xmc_dist_rank(dist) == 0;
    int rc = 0;
    if (no_knn)
        xmc_model_use_neighbors(m, 0);
    if (text) {
        rc = predict_text(m, topk);
    } else {
        xmc_load_opts lo;
        memset(&lo, 0, sizeof lo);
        lo.label_vocab = xmc_model_label_names(m);
        xmc_dataset *ds = NULL;
        xmc_enc_data *d = NULL; /* prepared once for --out and --embed */
        xmc_csr *P = NULL;
        xmc_ann *a = NULL;
        int built = 0;
        double t0 = xmc_now();
        /* --ann: the HNSW over the classifier rows (ann.h), built once and
         * kept in the model directory, reloaded while the weights match;
         * under mpirun one index per label shard, merged on rank 0. */
        if (xmc_dataset_load(input, &lo, &ds, &err) || xmc_model_prepare(m, ds, &d, &err) ||
            (out && ann && xmc_ann_open(m, model, NULL, &a, &built, &err)) ||
            (out && (ann ? xmc_ann_predict_data(a, m, d, topk, ef, &P, &err)
                         : xmc_model_predict_data(m, d, topk, &P, &err))) ||
            (out && root && xmc_csr_write_text(out, P, &err)))
            rc = cli_dist_fail(dist, &err);
        else if (out && root)
            fprintf(stderr, "predicted top-%d%s for %lld rows in %.2fs -> %s\n", topk,
                    !ann ? "" : built ? " (HNSW, index built)" : " (HNSW, index loaded)",
                    (long long)ds->n, xmc_now() - t0, out);
        if (!rc && embed) {
            xmc_model_stats st;
            xmc_model_get_stats(m, &st);
            t0 = xmc_now();
            if (write_embeddings(m, d, embed, &err))
                rc = cli_fail(&err);
            else
                fprintf(stderr, "embedded %lld rows (%d-d) in %.2fs -> %s\n", (long long)ds->n,
                        st.dim, xmc_now() - t0, embed);
        }
        xmc_ann_free(a);
        xmc_csr_free(P);
        xmc_enc_data_free(d);
        xmc_dataset_free(ds);
    }
    xmc_model_free(m);
    return rc;
}
