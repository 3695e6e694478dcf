/* Shared by the libFuzzer targets: write the input to a per-process temp
 * file so that the path-based API (the one users call) is what gets fuzzed. */
#ifndef XMC_FUZZ_COMMON_H
#define XMC_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Paths handed out, removed at exit (a directory after its files). */
static char fuzz_paths[8][256];
static int fuzz_npaths;

static void fuzz_cleanup(void)
{
    char sub[300];
    static const char *const kids[] = {"lbl.json", "trn.json"};
    for (int i = 0; i < fuzz_npaths; i++) {
        for (int j = 0; j < 2; j++) {
            snprintf(sub, sizeof sub, "%s/%s", fuzz_paths[i], kids[j]);
            unlink(sub);
        }
        unlink(fuzz_paths[i]);
        rmdir(fuzz_paths[i]);
    }
}

static const char *fuzz_path(const char *name)
{
    char b[256];
    snprintf(b, sizeof b, "/tmp/xmc_fuzz_%ld_%s", (long)getpid(), name);
    for (int i = 0; i < fuzz_npaths; i++)
        if (!strcmp(fuzz_paths[i], b))
            return fuzz_paths[i];
    if (fuzz_npaths == 0)
        atexit(fuzz_cleanup);
    if (fuzz_npaths == 8)
        abort(); /* a target uses at most a few names */
    snprintf(fuzz_paths[fuzz_npaths], sizeof fuzz_paths[0], "%s", b);
    return fuzz_paths[fuzz_npaths++];
}

static void fuzz_write(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    if (size)
        fwrite(data, 1, size, f);
    fclose(f);
}

/* Targets whose first input byte is a flag (e.g. "recompute the
 * checksums"): *fix gets its low bit, *n the size of the rest, and the
 * result a writable copy of the rest (free it), or NULL when there is none
 * or no memory. */
static uint8_t *fuzz_flag_and_copy(const uint8_t *data, size_t size, int *fix, size_t *n)
{
    if (size < 1)
        return NULL;
    *fix = data[0] & 1;
    *n = size - 1;
    uint8_t *d = malloc(size);
    if (d)
        memcpy(d, data + 1, size - 1);
    return d;
}

#endif
