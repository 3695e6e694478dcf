/* The CLI over the index: `xmc bench ann --dump` writes vectors, `xmc index
 * build/add/info/search` round-trips them, errors name the file and exit
 * non-zero, and a small `xmc bench ann` run prints its table with high
 * recall on clustered data. Skips without the xmc binary. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

static char d[600];

static int run(const char *fmt, const char *arg)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, fmt, tu_xmc_bin(), d, arg);
    return tu_system("%s", cmd);
}

static void test_index_commands(void **state)
{
    (void)state;
    struct stat st;
    if (stat(tu_xmc_bin(), &st) != 0)
        skip();
    snprintf(d, sizeof d, "%s", tu_tmpdir());
    /* Data: 3000 clustered base vectors, 50 queries, exact ground truth. */
    assert_int_equal(run("'%s' bench ann --n 3000 --dim 16 --data clustered --clusters 30 "
                         "--queries 50 --ef 10,40 --latency 20 --dump '%s' > '%s'",
                         tu_path("bench.txt")),
                     0);
    assert_int_equal(tu_system("grep -q '^RESULT xmc clustered 40 ' '%s'", tu_path("bench.txt")), 0);
    /* recall@10 at ef 40 on easy clustered data: >= 0.95 */
    assert_int_equal(tu_system("awk '$1==\"RESULT\" && $4==40 && $5 < 0.95 {bad=1} END {exit bad}' "
                               "'%s'",
                               tu_path("bench.txt")),
                     0);
    assert_int_equal(run("'%s' index build --vectors '%s/clustered.base.f32' --dim 16 --metric l2 "
                         "--M 8 --ef-construction 40 --out '%s' 2>/dev/null",
                         tu_path("i.hnsw")),
                     0);
    assert_int_equal(run("'%s' index info --index '%s/i.hnsw' > '%s'", tu_path("info.txt")), 0);
    assert_int_equal(tu_system("grep -q '^vectors 3000$' '%s' && grep -q '^M 8$' '%s'",
                               tu_path("info.txt"), tu_path("info.txt")),
                     0);
    /* Add the queries: they become ids 3000..3049 and each finds itself. */
    assert_int_equal(run("'%s' index add --index '%s/i.hnsw' --vectors '%s' --dim 16 2>/dev/null",
                         tu_path("clustered.query.f32")),
                     0);
    assert_int_equal(run("'%s' index search --index '%s/i.hnsw' --queries '%s' --k 1 --mmap "
                         "2>/dev/null | awk '$3 == $1 + 3000 {n++} END {exit n < 49}'",
                         tu_path("clustered.query.f32")),
                     0);
    /* Errors: wrong row size, missing file, unknown command; message names the file. */
    assert_int_not_equal(run("'%s' index search --index '%s/i.hnsw' --queries '%s' 2> /dev/null",
                             tu_path("clustered.gt.i32")),
                         0);
    assert_int_not_equal(run("'%s' index search --index '%s/i.hnsw' --queries '%s' 2> /dev/null",
                             tu_path("nope.f32")),
                         0);
    assert_int_not_equal(run("'%s' index info --index '%s/%s' 2> /dev/null", "clustered.base.f32"), 0);
    assert_int_equal(run("'%s' index info --index '%s/%s' 2>&1 | grep -q 'clustered.base.f32.*magic'",
                         "clustered.base.f32"),
                     0);
    assert_int_not_equal(run("'%s' index frobnicate 2>/dev/null # %s %s", ""), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
