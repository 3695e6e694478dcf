/* xmc index — placeholder until its issue lands. */
#include "cli.h"

int cmd_index(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_failf("'index' is not available in this build yet");
}
