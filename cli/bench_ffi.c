/* xmc bench ffi — placeholder until its issue lands. */
#include "bench.h"
#include "cli.h"

int bench_ffi(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_failf("benchmark 'ffi' is not available in this build yet");
}
