/* Gandalf label points in UniDEC / DEPSL training (docs/gandalf.md): the
 * soft targets of an augmented set reach the pick-some-labels losses as
 * positive weights (psl_loss.c: L_a = (1/W_a) Σ_p w_ap ℓ_ap), and an
 * augmented set trains with one extra query per label.
 *
 * Data: label l has the text "tag<l>a tag<l>b"; a point's text holds one of
 * the two words of each of its 1-3 labels and a noise word. Labels 50..59
 * have texts but no training point (zero-shot inside the label space).
 * One thread: the machine is shared, and results do not depend on it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"
#include "xmc/augment.h"
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
    c->epochs = 6;
    c->batch = 32;
    c->tau = 2;
    c->cluster = 0; /* random batches: ceil(n / B) steps per epoch */
    c->temperature = 0.1f;
    c->lr_enc = 1e-2f;
    c->lr_head = 1e-2f;
    c->seed = 7;
}

static void train_stats(const xmc_unidec_config *c, const xmc_dataset *ds, xmc_unidec_stats *st)
{
    xmc_unidec *u;
    xmc_error err = {0};
    assert_int_equal(xmc_unidec_train(c, ds, &u, &err), XMC_OK);
    xmc_unidec_get_stats(u, st);
    xmc_unidec_free(u);
}

/* Target values are weights, normalised per anchor by W_a: halving every
 * target (a power of two, so exact) must give bit-identical training, while
 * soft values on some positives must change it. Both heads (UniDEC, with
 * the auxiliary BCE off: its targets are absolute, not normalised). */
static void test_soft_targets_weight_positives(void **state)
{
    (void)state;
    xmc_set_threads(1);
    for (int depsl = 1; depsl >= 0; depsl--) {
        tu_tagged one, half, soft;
        tu_tagged_make(&one, 400, NL, 1, 0, 1.0f, 1.0f);
        tu_tagged_make(&half, 400, NL, 1, 0, 0.5f, 0.5f);
        tu_tagged_make(&soft, 400, NL, 1, 0, 1.0f, 0.25f);
        xmc_unidec_config c;
        small_cfg(&c, depsl);
        c.epochs = 3;
        xmc_unidec_stats a, b, s;
        train_stats(&c, &one.ds, &a);
        train_stats(&c, &half.ds, &b);
        train_stats(&c, &soft.ds, &s);
        print_message("%s loss first/last: y=1 %.6f/%.6f, y=0.5 %.6f/%.6f, soft %.6f/%.6f\n",
                      depsl ? "depsl" : "unidec", a.loss_first, a.loss_last, b.loss_first,
                      b.loss_last, s.loss_first, s.loss_last);
        assert_true(a.loss_first == b.loss_first && a.loss_last == b.loss_last);
        assert_true(s.loss_first != a.loss_first && s.loss_last != a.loss_last);
        assert_true(isfinite(s.loss_last) && s.loss_last < s.loss_first);
        tu_tagged_free(&one);
        tu_tagged_free(&half);
        tu_tagged_free(&soft);
    }
}

/* D ∪ Z from xmc_augment through DEPSL: 500 + 60 queries (the plan counts
 * them), the label points of the 10 labels without training points are
 * their only positives, so their zero-shot P@1 must rise above the plain
 * run's (which sees them only as negatives). */
static void test_augmented_set_trains(void **state)
{
    (void)state;
    xmc_set_threads(1);
    tu_tagged tr, te;
    tu_tagged_make(&tr, 500, NL, 1, 0, 1.0f, 1.0f);
    tu_tagged_make(&te, 200, NL, 2, 4, 1.0f, 1.0f);
    xmc_unidec_config c;
    small_cfg(&c, 1);
    double p1[3], pz[3];
    for (int v = 0; v < 3; v++) { /* none, self, gandalf */
        xmc_dataset *aug = NULL;
        xmc_error err = {0};
        if (v) {
            xmc_augment_opts o;
            xmc_augment_opts_default(&o);
            o.kind = v == 1 ? XMC_AUG_SELF : XMC_AUG_COOC;
            assert_int_equal(xmc_augment(&tr.ds, &o, &aug, &err), XMC_OK);
            assert_int_equal(aug->n, 500 + NL);
        }
        xmc_unidec *u;
        assert_int_equal(xmc_unidec_train(&c, aug ? aug : &tr.ds, &u, &err), XMC_OK);
        xmc_unidec_stats st;
        xmc_unidec_get_stats(u, &st);
        /* every row of D ∪ Z has a label: ceil(560 / 32) = 18 steps an epoch */
        assert_int_equal(st.steps, c.epochs * (v ? 18 : 16));
        assert_int_equal(st.steps, st.planned_steps);
        assert_true(st.step_allocs == 0);
        assert_true(st.loss_last < st.loss_first);
        xmc_csr *P;
        assert_int_equal(xmc_unidec_predict(u, &te.ds, NULL, 5, XMC_UNIDEC_SCORE_DE, 0, &P, &err),
                         XMC_OK);
        p1[v] = tu_tagged_p_at_1(P, te.Y, 0);
        pz[v] = tu_tagged_p_at_1(P, te.Y, 1);
        xmc_csr_free(P);
        xmc_unidec_free(u);
        xmc_dataset_free(aug);
    }
    print_message("depsl test P@1 / zero-shot P@1: none %.3f / %.3f, self %.3f / %.3f, "
                  "gandalf %.3f / %.3f\n",
                  p1[0], pz[0], p1[1], pz[1], p1[2], pz[2]);
    for (int v = 0; v < 3; v++)
        assert_true(p1[v] > 0.5);
    assert_true(pz[1] > pz[0] && pz[2] > pz[0]);
    tu_tagged_free(&tr);
    tu_tagged_free(&te);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soft_targets_weight_positives),
        cmocka_unit_test(test_augmented_set_trains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
