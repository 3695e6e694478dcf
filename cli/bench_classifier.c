/* xmc bench classifier — placeholder until its issue lands. */
#include "bench.h"
#include "cli.h"

int bench_classifier(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_failf("benchmark 'classifier' is not available in this build yet");
}
