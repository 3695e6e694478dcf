/* The process group. Run alone it checks single-process semantics; run under
 * `mpirun -np P` (tests/cli/dist_mpi.sh) it checks every collective against
 * values each rank can compute by itself. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "xmc/dist.h"

static xmc_dist *g;

static void test_shard_covers_exactly(void **state)
{
    (void)state;
    for (int64_t n = 0; n < 40; n++)
        for (int size = 1; size <= 7; size++) {
            int64_t prev_end = 0;
            for (int r = 0; r < size; r++) {
                int64_t b, e;
                xmc_dist_shard(n, size, r, &b, &e);
                assert_int_equal(b, prev_end);
                assert_true(e - b == n / size || e - b == n / size + 1);
                prev_end = e;
            }
            assert_int_equal(prev_end, n);
        }
}

static void test_collectives(void **state)
{
    (void)state;
    xmc_error e = {0};
    int P = xmc_dist_size(g), r = xmc_dist_rank(g);
    float send[3] = {(float)r, (float)r + 0.5f, -1.0f};
    float *all = calloc((size_t)P * 3, sizeof(float));
    assert_int_equal(xmc_dist_allgather_f32(g, send, 3, all, &e), XMC_OK);
    for (int q = 0; q < P; q++) {
        assert_true(all[q * 3] == (float)q);
        assert_true(all[q * 3 + 1] == (float)q + 0.5f);
    }
    float v[2] = {(float)(r + 1), 2.0f};
    assert_int_equal(xmc_dist_allreduce_f32(g, v, 2, &e), XMC_OK);
    assert_true(v[0] == (float)(P * (P + 1) / 2));
    assert_true(v[1] == 2.0f * (float)P);
    /* reduce-scatter: rank q gets the sum over ranks of their q-th block. */
    int *counts = calloc((size_t)P, sizeof(int));
    int total = 0;
    for (int q = 0; q < P; q++)
        total += counts[q] = q + 1;
    float *rs = calloc((size_t)total, sizeof(float)), out[64];
    for (int i = 0; i < total; i++)
        rs[i] = (float)(i + r);
    xmc_dist_req req;
    assert_int_equal(xmc_dist_ireduce_scatter_f32(g, rs, out, counts, &req, &e), XMC_OK);
    assert_int_equal(xmc_dist_wait(g, &req, &e), XMC_OK);
    int off = 0;
    for (int q = 0; q < r; q++)
        off += counts[q];
    for (int i = 0; i < counts[r]; i++)
        assert_true(out[i] == (float)(P * (off + i) + P * (P - 1) / 2));
    float ar[4] = {1, 2, 3, (float)r};
    assert_int_equal(xmc_dist_iallreduce_f32(g, ar, 4, &req, &e), XMC_OK);
    assert_int_equal(xmc_dist_wait(g, &req, &e), XMC_OK);
    assert_true(ar[2] == 3.0f * (float)P);
    uint64_t token = r == 0 ? 0xfeedULL : 0;
    assert_int_equal(xmc_dist_bcast(g, &token, sizeof token, 0, &e), XMC_OK);
    assert_int_equal(token, 0xfeedULL);
    int who;
    /* The last rank reports a failure: everyone learns it. */
    int code = xmc_dist_agree(g, r == P - 1 ? XMC_EIO : XMC_OK, &who, &e);
    assert_int_equal(code, XMC_EIO);
    assert_int_equal(who, P - 1);
    assert_int_equal(xmc_dist_agree(g, XMC_OK, &who, &e), XMC_OK);
    assert_int_equal(who, -1);
    assert_int_equal(xmc_dist_barrier(g, &e), XMC_OK);
    if (P > 1)
        assert_true(xmc_dist_bytes_sent(g) > 0);
    free(all);
    free(counts);
    free(rs);
}

int main(int argc, char **argv)
{
    xmc_error e = {0};
    if (xmc_dist_create(&argc, &argv, &g, &e) != XMC_OK) {
        fprintf(stderr, "dist: %s\n", e.msg);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shard_covers_exactly),
        cmocka_unit_test(test_collectives),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmc_dist_free(g);
    return rc;
}
