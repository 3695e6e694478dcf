/* xmc: extreme multi-label classification. Dispatches to one subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"synth", cmd_synth, "generate a synthetic label-feature dataset"},
    {"convert", cmd_convert, "convert a dataset to the label-feature layout or binary cache"},
    {"train", cmd_train, "train a model"},
    {"predict", cmd_predict, "predict top-k labels with a trained model"},
    {"eval", cmd_eval, "score predictions: P@k, nDCG@k, PSP@k, PSnDCG@k, R@k, coverage"},
    {"info", cmd_info, "describe a model directory"},
    {"augment", cmd_augment, "Gandalf label-feature augmentation"},
    {"index", cmd_index, "ANN index operations (add-labels)"},
    {"bench", cmd_bench, "benchmarks (classifier, ann, ...)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: xmc <command> [options]   (xmc <command> --help for details)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nDataset specs: FILE | FILE@SPLIT | DIR/PREFIX | TEXTS+LABELS | FILE.xmcb"
               " (see README)\n");
}

int main(int argc, char **argv)
{
    xmc_log_set_sink(xmc_log_stderr, NULL);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("xmc %s\n", XMC_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "xmc: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
