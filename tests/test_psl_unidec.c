/* UniDEC / DEPSL end to end (xmc_unidec_train / _predict) on a tiny
 * synthetic label-feature dataset: label l has the text "tag<l>a tag<l>b",
 * a point's text holds one word of each of its labels plus a noise word.
 * Labels 50..59 never occur in training (zero-shot): only their texts
 * let the DE half score them. Checks: the loss falls, P@1 far above chance,
 * zero-shot P@1 above chance, bit-identical reruns for a seed, bad input. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "xmc/data.h"
#include "xmc/psl.h"

#define NL TU_TAGGED_NL
#define NSEEN TU_TAGGED_NSEEN

static void small_cfg(xmc_unidec_config *c, int depsl)
{
    xmc_unidec_config_default(c, depsl);
    c->hidden = 64;
    c->dim = 32;
    c->buckets = 1 << 14;
    c->epochs = 8;
    c->batch = 32;
    c->tau = 2;
    c->mine_start = 1;
    c->temperature = 0.1f;
    c->lr_enc = 1e-2f;
    c->lr_head = 1e-2f;
    c->seed = 7;
}

static void run_recipe(int depsl)
{
    /* one thread: the machine is shared and OpenMP barriers under load
     * cost 30x; results do not depend on the thread count */
    xmc_set_threads(1);
    tu_tagged tr, te;
    tu_tagged_make(&tr, 500, NSEEN, 1, 0, 1.0f, 1.0f);
    tu_tagged_make(&te, 200, NL, 2, 4, 1.0f, 1.0f);
    xmc_unidec_config c;
    small_cfg(&c, depsl);
    c.hnsw_min_labels = depsl ? 0 : 1000000; /* DEPSL mines through HNSW, UniDEC exactly */
    xmc_unidec *u, *u2;
    xmc_error err = {0};
    assert_int_equal(xmc_unidec_train(&c, &tr.ds, &u, &err), XMC_OK);
    xmc_unidec_stats st;
    xmc_unidec_get_stats(u, &st);
    assert_true(st.steps > 0);
    assert_true(st.step_allocs == 0); /* no allocation inside a training step */
    /* 500 rows, B = 32: epoch 0 random (16 batches), then 16 leaves of <= 32 */
    assert_int_equal(st.steps, 8 * 16);
    assert_int_equal(st.steps, st.planned_steps);
    assert_true(st.loss_last < st.loss_first);
    assert_true(st.encoder_bytes > 0 && st.step_bytes > 0);
    assert_true(depsl ? st.psi_bytes == 0 : st.psi_bytes > 0);
    if (depsl)
        assert_true(st.index_bytes > 0);
    xmc_csr *P = NULL, *P2 = NULL;
    assert_int_equal(
        xmc_unidec_predict(u, &te.ds, te.ltexts, 5, XMC_UNIDEC_SCORE_BOTH, 0, &P, &err), XMC_OK);
    double p1 = tu_tagged_p_at_1(P, te.Y, 0), pz = tu_tagged_p_at_1(P, te.Y, 1);
    double pde = pz;
    if (!depsl) {
        xmc_csr *Pd;
        assert_int_equal(
            xmc_unidec_predict(u, &te.ds, te.ltexts, 5, XMC_UNIDEC_SCORE_DE, 0, &Pd, &err),
                         XMC_OK);
        pde = tu_tagged_p_at_1(Pd, te.Y, 1);
        xmc_csr *Pc;
        assert_int_equal(
            xmc_unidec_predict(u, &te.ds, te.ltexts, 5, XMC_UNIDEC_SCORE_CLF, 0, &Pc, &err),
                         XMC_OK);
        print_message("unidec: test P@1 both %.3f, clf-only %.3f\n", p1, tu_tagged_p_at_1(Pc, te.Y, 0));
        xmc_csr_free(Pd);
        xmc_csr_free(Pc);
    }
    print_message("%s: loss %.3f -> %.3f, test P@1 %.3f, zero-shot P@1 %.3f (DE half %.3f), "
                  "%lld steps\n",
                  depsl ? "depsl" : "unidec", st.loss_first, st.loss_last, p1, pz, pde,
                  (long long)st.steps);
    /* Chance is ~2/60 = 0.03; a quarter of the test rows are zero-shot, so
     * P@1 <= 0.75. Zero-shot rests on the hashed buckets the label text
     * shares with the query (untrained rows: the bag encoder has no
     * semantic prior), so it is weak but must beat chance twice over. */
    assert_true(p1 > 0.5);
    assert_true(pde > 0.07);
    /* ANN serving: HNSW over the label vectors returns the exact top-5
     * (60 labels, ef 64) with the same scores */
    xmc_csr *Pa;
    assert_int_equal(xmc_unidec_predict(u, &te.ds, te.ltexts, 5, XMC_UNIDEC_SCORE_BOTH, 64, &Pa,
                                        &err),
                     XMC_OK);
    int64_t same = 0;
    for (int64_t i = 0; i < te.Y->nrows; i++)
        for (int64_t e = P->indptr[i]; e < P->indptr[i + 1]; e++)
            for (int64_t e2 = Pa->indptr[i]; e2 < Pa->indptr[i + 1]; e2++)
                if (Pa->indices[e2] == P->indices[e]) {
                    same++;
                    assert_true(fabsf(Pa->values[e2] - P->values[e]) < 1e-4f);
                }
    assert_true((double)same / (double)xmc_csr_nnz(P) > 0.95);
    xmc_csr_free(Pa);
    /* save / load: the loaded model predicts the same top-k and scores */
    const char *mp = tu_path(depsl ? "depsl.bin" : "unidec.bin");
    assert_int_equal(xmc_unidec_save(u, mp, &err), XMC_OK);
    xmc_unidec *ul;
    assert_int_equal(xmc_unidec_load(mp, &ul, &err), XMC_OK);
    xmc_csr *Pl;
    assert_int_equal(
        xmc_unidec_predict(ul, &te.ds, te.ltexts, 5, XMC_UNIDEC_SCORE_BOTH, 0, &Pl, &err),
        XMC_OK);
    assert_int_equal(xmc_csr_nnz(Pl), xmc_csr_nnz(P));
    assert_memory_equal(Pl->indices, P->indices, sizeof(int32_t) * (size_t)xmc_csr_nnz(P));
    assert_memory_equal(Pl->values, P->values, sizeof(float) * (size_t)xmc_csr_nnz(P));
    xmc_csr_free(Pl);
    /* without label_texts: the saved training labels (50 of them) */
    assert_int_equal(xmc_unidec_predict(ul, &tr.ds, NULL, 3, XMC_UNIDEC_SCORE_DE, 0, &Pl, &err),
                     XMC_OK);
    assert_int_equal(Pl->ncols, NSEEN);
    assert_true(tu_tagged_p_at_1(Pl, tr.Y, 0) > 0.5);
    xmc_csr_free(Pl);
    xmc_unidec_free(ul);
    /* a flipped byte in the header, a truncated file, a missing file */
    assert_int_equal(tu_system("cp '%s' '%s.bad' && printf '\\x01' | dd of='%s.bad' bs=1 "
                               "seek=40 conv=notrunc status=none",
                               mp, mp, mp),
                     0);
    char bad[1100];
    snprintf(bad, sizeof bad, "%s.bad", mp);
    tu_assert_error(xmc_unidec_load(bad, &ul, &err), &err, XMC_ECORRUPT, bad, 0);
    xmc_error_clear(&err);
    assert_int_equal(tu_system("head -c 3000 '%s' > '%s'", mp, bad), 0);
    tu_assert_error(xmc_unidec_load(bad, &ul, &err), &err, XMC_ECORRUPT, bad, 0);
    xmc_error_clear(&err);
    tu_assert_error(xmc_unidec_load(tu_path("nope.bin"), &ul, &err), &err, XMC_EIO, "nope", 0);
    xmc_error_clear(&err);
    /* reproducible for a seed (same thread count) */
    assert_int_equal(xmc_unidec_train(&c, &tr.ds, &u2, &err), XMC_OK);
    assert_int_equal(
        xmc_unidec_predict(u2, &te.ds, te.ltexts, 5, XMC_UNIDEC_SCORE_BOTH, 0, &P2, &err),
        XMC_OK);
    assert_int_equal(xmc_csr_nnz(P), xmc_csr_nnz(P2));
    assert_memory_equal(P->indices, P2->indices, sizeof(int32_t) * (size_t)xmc_csr_nnz(P));
    assert_memory_equal(P->values, P2->values, sizeof(float) * (size_t)xmc_csr_nnz(P));
    xmc_csr_free(P);
    xmc_csr_free(P2);
    xmc_unidec_free(u);
    xmc_unidec_free(u2);
    tu_tagged_free(&tr);
    tu_tagged_free(&te);
}

static void test_depsl(void **state)
{
    (void)state;
    run_recipe(1);
}

static void test_unidec(void **state)
{
    (void)state;
    run_recipe(0);
}

/* Labels without a training positive inside the training label space:
 * labels 50..59 have texts but no positive. Either way the DE half ranks
 * them from their text (predict without label_texts). With all labels as
 * negatives (default) their texts still pass through the encoder as
 * negatives, which trains their words' buckets to be distinctive; with
 * seen_negatives they are never touched (their buckets stay at init), as
 * for labels added after training. Both must beat chance twice over. */
static void test_seen_negatives(void **state)
{
    (void)state;
    xmc_set_threads(1);
    tu_tagged tr, te, full;
    tu_tagged_make(&tr, 500, NSEEN, 1, 0, 1.0f, 1.0f);
    tu_tagged_make(&full, 1, NL, 9, 0, 1.0f, 1.0f); /* just for the 60 label texts */
    tu_tagged_make(&te, 200, NL, 2, 4, 1.0f, 1.0f);
    tr.ds.label_texts = full.ltexts;
    tr.ds.n_labels = NL;
    tr.Y->ncols = NL;
    xmc_unidec_config c;
    small_cfg(&c, 1);
    double pz[2];
    for (int sn = 0; sn < 2; sn++) {
        c.seen_negatives = sn;
        xmc_unidec *u;
        xmc_error err = {0};
        assert_int_equal(xmc_unidec_train(&c, &tr.ds, &u, &err), XMC_OK);
        xmc_csr *P;
        assert_int_equal(
            xmc_unidec_predict(u, &te.ds, NULL, 5, XMC_UNIDEC_SCORE_DE, 0, &P, &err), XMC_OK);
        assert_int_equal(P->ncols, NL);
        pz[sn] = tu_tagged_p_at_1(P, te.Y, 1);
        if (sn)
            assert_true(tu_tagged_p_at_1(P, te.Y, 0) > 0.5);
        xmc_csr_free(P);
        xmc_unidec_free(u);
    }
    print_message("depsl zero-shot P@1 inside the label space: all negatives %.3f, seen-only "
                  "negatives %.3f\n",
                  pz[0], pz[1]);
    assert_true(pz[0] > 0.07);
    assert_true(pz[1] > 0.07);
    tr.ds.label_texts = tr.ltexts;
    tr.Y->ncols = NSEEN;
    tu_tagged_free(&tr);
    tu_tagged_free(&te);
    tu_tagged_free(&full);
}

/* The other loss settings train too: SupCon denominators, auxiliary BCE on
 * the classifier scores, label->query term off (λ = 1), no clustering. */
static void test_variants(void **state)
{
    (void)state;
    xmc_set_threads(1);
    tu_tagged tr, te;
    tu_tagged_make(&tr, 500, NSEEN, 1, 0, 1.0f, 1.0f);
    tu_tagged_make(&te, 200, NSEEN, 2, 0, 1.0f, 1.0f);
    xmc_unidec_config c;
    small_cfg(&c, 0);
    c.kind = XMC_PSL_SUPCON;
    c.bce = 0.5f;
    c.lambda = 1.0f;
    c.cluster = 0;
    xmc_unidec *u;
    xmc_error err = {0};
    assert_int_equal(xmc_unidec_train(&c, &tr.ds, &u, &err), XMC_OK);
    xmc_unidec_stats st;
    xmc_unidec_get_stats(u, &st);
    assert_true(isfinite(st.loss_last) && st.loss_last < st.loss_first);
    assert_int_equal(st.steps, 8 * 16); /* random batches of 32 every epoch */
    xmc_csr *P;
    assert_int_equal(
        xmc_unidec_predict(u, &te.ds, NULL, 5, XMC_UNIDEC_SCORE_BOTH, 0, &P, &err), XMC_OK);
    double p1 = tu_tagged_p_at_1(P, te.Y, 0);
    print_message("unidec supcon + bce, lambda 1: test P@1 %.3f\n", p1);
    assert_true(p1 > 0.5);
    xmc_csr_free(P);
    xmc_unidec_free(u);
    tu_tagged_free(&tr);
    tu_tagged_free(&te);
}

static void test_bad_input(void **state)
{
    (void)state;
    tu_tagged tr;
    tu_tagged_make(&tr, 50, NSEEN, 3, 0, 1.0f, 1.0f);
    xmc_unidec_config c;
    small_cfg(&c, 0);
    xmc_unidec *u;
    xmc_error err = {0};
    tr.ds.label_texts = NULL; /* no label texts, no names */
    tu_assert_error(xmc_unidec_train(&c, &tr.ds, &u, &err), &err, XMC_EINVAL, NULL, 0);
    assert_non_null(strstr(err.msg, "label texts"));
    xmc_error_clear(&err);
    tr.ds.label_texts = tr.ltexts;
    c.tau = 0;
    tu_assert_error(xmc_unidec_train(&c, &tr.ds, &u, &err), &err, XMC_EINVAL, NULL, 0);
    tu_tagged_free(&tr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depsl),
        cmocka_unit_test(test_unidec),
        cmocka_unit_test(test_seen_negatives),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
