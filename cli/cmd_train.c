/* xmc train — placeholder until its issue lands. */
#include "cli.h"

int cmd_train(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_failf("'train' is not available in this build yet");
}
