/* xmc bench ann — placeholder until its issue lands. */
#include "bench.h"
#include "cli.h"

int bench_ann(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_failf("benchmark 'ann' is not available in this build yet");
}
