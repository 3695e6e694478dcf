/* xmc predict — placeholder until its issue lands. */
#include "cli.h"

int cmd_predict(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_failf("'predict' is not available in this build yet");
}
