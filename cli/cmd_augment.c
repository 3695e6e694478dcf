/* xmc augment — placeholder until its issue lands. */
#include "cli.h"

int cmd_augment(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_failf("'augment' is not available in this build yet");
}
