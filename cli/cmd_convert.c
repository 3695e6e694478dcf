/* xmc convert — placeholder until its issue lands. */
#include "cli.h"

int cmd_convert(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_failf("'convert' is not available in this build yet");
}
