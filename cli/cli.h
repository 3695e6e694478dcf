/* Shared CLI plumbing: a small declarative flag parser and the one place that
 * prints errors. Subcommands (cmd_*.c) parse flags, call the public API in
 * include/xmc/, and print; they contain no algorithm. */
#ifndef XMC_CLI_H
#define XMC_CLI_H

#include "xmc/core.h"
#include "xmc/data.h"
#include "xmc/dist.h"

typedef enum cli_type {
    CLI_END = 0,
    CLI_STR,    /* const char ** */
    CLI_INT,    /* int * */
    CLI_I64,    /* int64_t * */
    CLI_DOUBLE, /* double * */
    CLI_FLAG    /* int *, set to 1 */
} cli_type;

typedef struct cli_opt {
    const char *name; /* without leading "--" */
    cli_type type;
    void *ptr;
    const char *help;
    int required;
} cli_opt;

/* Parse argv (argv[0] is the subcommand name) into opts. Returns 0 to go on,
 * 1 when --help was printed (exit 0), 2 on a usage error (printed). Unknown
 * flags, missing values and malformed numbers are usage errors. */
int cli_parse(int argc, char **argv, const cli_opt *opts, const char *synopsis);
/* Apply "name value" pairs (one per line, '#' comments, also "name = value")
 * from a config file to opts, as if given on the command line; flags given
 * on the command line afterwards override. */
int cli_apply_config(const char *path, const cli_opt *opts, xmc_error *err);
void cli_usage(FILE *f, const char *cmd, const cli_opt *opts, const char *synopsis);

/* Print "xmc: FILE:LINE: msg" for err and return the exit status (1). */
int cli_fail(const xmc_error *err);
int cli_failf(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* The lines of path ("-": stdin) as texts, *out = NULL when there are none.
 * With no_blank a line of only blanks is refused (XMC_EFORMAT, its line). */
int cli_read_lines(const char *path, int no_blank, xmc_texts **out, xmc_error *err);

/* --head de|clf|both of a unidec / depsl model (NULL: the recipe's
 * default) into *which (XMC_UNIDEC_SCORE_*); non-zero after printing the
 * error (depsl has only the DE head). */
int cli_unidec_head(const char *head, int depsl, int *which);

/* Parse "1,3,5" into ks (at most max); returns count or -1. */
int cli_parse_int_list(const char *s, int *ks, int max);

/* `mpirun -np P xmc ...` (cli_dist.c): join the process group (rank > 0
 * then logs warnings only); NULL with *rc set when that fails. */
xmc_dist *cli_dist_begin(int *argc, char ***argv, int *rc);
/* Print err once for the job (rank 0 prints a peer's failure); returns 1. */
int cli_dist_fail(xmc_dist *d, const xmc_error *err);
/* Leave the group; after an error under MPI exits at once (see cli_dist.c). */
int cli_dist_end(xmc_dist *d, int rc);

/* Subcommands. */
int cmd_synth(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_augment(int argc, char **argv);
int cmd_index(int argc, char **argv);

#endif
