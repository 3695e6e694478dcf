/* xmc synth — placeholder until its issue lands. */
#include "cli.h"

int cmd_synth(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_failf("'synth' is not available in this build yet");
}
