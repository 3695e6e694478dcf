/* Declarative flag parsing for the subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_opt *find(const cli_opt *opts, const char *name)
{
    for (const cli_opt *o = opts; o->name; o++)
        if (!strcmp(o->name, name))
            return o;
    return NULL;
}

static int set_value(const cli_opt *o, const char *v, char *why, size_t n)
{
    char *end;
    errno = 0;
    switch (o->type) {
    case CLI_STR:
        *(const char **)o->ptr = v;
        return 0;
    case CLI_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < -2147483647L || x > 2147483647L)
            break;
        *(int *)o->ptr = (int)x;
        return 0;
    }
    case CLI_I64: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end)
            break;
        *(int64_t *)o->ptr = x;
        return 0;
    }
    case CLI_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end)
            break;
        *(double *)o->ptr = x;
        return 0;
    }
    case CLI_FLAG:
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) {
            *(int *)o->ptr = 1;
            return 0;
        }
        if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) {
            *(int *)o->ptr = 0;
            return 0;
        }
        break;
    case CLI_END:
        break;
    }
    snprintf(why, n, "--%s: expected %s, got '%s'", o->name,
             o->type == CLI_INT || o->type == CLI_I64 ? "an integer"
             : o->type == CLI_DOUBLE                  ? "a number"
                                                      : "true or false",
             v);
    return -1;
}

void cli_usage(FILE *f, const char *cmd, const cli_opt *opts, const char *synopsis)
{
    fprintf(f, "usage: xmc %s %s\n", cmd, synopsis ? synopsis : "[options]");
    for (const cli_opt *o = opts; o->name; o++) {
        const char *arg = o->type == CLI_FLAG     ? ""
                          : o->type == CLI_STR    ? " S"
                          : o->type == CLI_DOUBLE ? " X"
                                                  : " N";
        char left[64];
        snprintf(left, sizeof left, "--%s%s", o->name, arg);
        fprintf(f, "  %-22s %s%s\n", left, o->help ? o->help : "", o->required ? " (required)" : "");
    }
}

int cli_parse(int argc, char **argv, const cli_opt *opts, const char *synopsis)
{
    int n_opts = 0;
    while (opts[n_opts].name)
        n_opts++;
    char seen[256] = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_usage(stdout, argv[0], opts, synopsis);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "xmc %s: unexpected argument '%s'\n", argv[0], a);
            cli_usage(stderr, argv[0], opts, synopsis);
            return 2;
        }
        char name[128];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, a + 2, len);
        name[len] = '\0';
        const cli_opt *o = find(opts, name);
        if (!o) {
            fprintf(stderr, "xmc %s: unknown option '--%s' (see xmc %s --help)\n", argv[0], name,
                    argv[0]);
            return 2;
        }
        const char *v;
        if (eq)
            v = eq + 1;
        else if (o->type == CLI_FLAG)
            v = "1";
        else if (i + 1 < argc)
            v = argv[++i];
        else {
            fprintf(stderr, "xmc %s: --%s needs a value\n", argv[0], name);
            return 2;
        }
        char why[256];
        if (set_value(o, v, why, sizeof why) != 0) {
            fprintf(stderr, "xmc %s: %s\n", argv[0], why);
            return 2;
        }
        if (o - opts < 256)
            seen[o - opts] = 1;
    }
    for (int k = 0; k < n_opts && k < 256; k++) {
        if (opts[k].required && !seen[k]) {
            /* A config file may have set a string option already. */
            if (opts[k].type == CLI_STR && *(const char **)opts[k].ptr)
                continue;
            fprintf(stderr, "xmc %s: --%s is required (see xmc %s --help)\n", argv[0],
                    opts[k].name, argv[0]);
            return 2;
        }
    }
    return 0;
}

int cli_apply_config(const char *path, const cli_opt *opts, xmc_error *err)
{
    xmc_lines *r = NULL;
    int rc = xmc_lines_open(&r, path, err);
    if (rc)
        return rc;
    char *line;
    size_t len;
    int got;
    while ((got = xmc_lines_next(r, &line, &len, err)) == 1) {
        char *h = strchr(line, '#');
        if (h)
            *h = '\0';
        char *name = strtok(line, " \t=");
        if (!name)
            continue;
        if (!strncmp(name, "--", 2))
            name += 2;
        char *val = strtok(NULL, " \t=");
        const cli_opt *o = find(opts, name);
        if (!o) {
            rc = XMC_ERR(err, XMC_EFORMAT, path, xmc_lines_lineno(r), "unknown option '%s'", name);
            break;
        }
        if (!val && o->type != CLI_FLAG) {
            rc = XMC_ERR(err, XMC_EFORMAT, path, xmc_lines_lineno(r), "option '%s' needs a value",
                         name);
            break;
        }
        /* String values must outlive the reader's buffer. */
        char *owned = NULL;
        if (o->type == CLI_STR) {
            owned = strdup(val); /* CLI lifetime: freed at exit */
            val = owned;
        }
        char why[256];
        if (set_value(o, val ? val : "1", why, sizeof why) != 0) {
            free(owned);
            rc = XMC_ERR(err, XMC_EFORMAT, path, xmc_lines_lineno(r), "%s", why);
            break;
        }
    }
    if (got < 0)
        rc = err ? err->code : XMC_EIO;
    xmc_lines_close(r);
    return rc;
}

int cli_fail(const xmc_error *err)
{
    char buf[1200];
    fprintf(stderr, "xmc: %s\n", xmc_error_format(err, buf, sizeof buf));
    return 1;
}

int cli_failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "xmc: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

int cli_parse_int_list(const char *s, int *ks, int max)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v <= 0 || v > 100000 || n >= max)
            return -1;
        ks[n++] = (int)v;
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    return n > 0 ? n : -1;
}

int cli_read_lines(const char *path, int no_blank, xmc_texts **out, xmc_error *err)
{
    xmc_lines *r = NULL;
    char **strs = NULL, *line;
    int64_t n = 0, cap = 0;
    size_t len;
    const char *what = strcmp(path, "-") ? path : "stdin";
    int got = 0, rc = xmc_lines_open(&r, path, err);
    *out = NULL;
    while (!rc && (got = xmc_lines_next(r, &line, &len, err)) == 1) {
        if (no_blank && strspn(line, " \t\r") == len) {
            rc = XMC_ERR(err, XMC_EFORMAT, path, xmc_lines_lineno(r),
                         "empty label text (one label text per line)");
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **ns = xmc_realloc(strs, (size_t)cap * sizeof *strs);
            if (!ns) {
                rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory reading %s", what);
                break;
            }
            strs = ns;
        }
        if (!(strs[n] = xmc_strdup(line))) {
            rc = XMC_ERR(err, XMC_ENOMEM, NULL, 0, "out of memory reading %s", what);
            break;
        }
        n++;
    }
    if (!rc && got < 0)
        rc = err ? err->code : XMC_EIO;
    if (!rc && n > 0)
        rc = xmc_texts_create((const char *const *)strs, n, out, err);
    for (int64_t i = 0; i < n; i++)
        xmc_free(strs[i]);
    xmc_free(strs);
    xmc_lines_close(r);
    return rc;
}
