/* xmc info — placeholder until its issue lands. */
#include "cli.h"

int cmd_info(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_failf("'info' is not available in this build yet");
}
