/* libFuzzer: UTF-8 text lines (xmc_texts_read) and TEXTS+LABELS, the input
 * serving as both files (so the counts always agree and labels parse).
 * Differential too: the file read through a private mapping (what large
 * texts files get) must give the same lines, or the same error and line,
 * as the heap buffer small files get, also with the fused reader's chunks
 * cut every 16 bytes. */
#include <stdlib.h>
#include <string.h>

#include "data/internal.h"
#include "fuzz_common.h"
#include "xmc/data.h"

static void diff_mapped(const char *p, size_t fused_chunk, int rc0, const xmc_error *e0,
                        const xmc_texts *t0)
{
    size_t keep = xmc_inbuf_own_map_bytes;
    xmc_inbuf_own_map_bytes = 0;
    xmc_texts_fused_chunk = fused_chunk;
    xmc_error e = {0};
    xmc_texts *t = NULL;
    int rc = xmc_texts_read(p, &t, &e);
    xmc_inbuf_own_map_bytes = keep;
    xmc_texts_fused_chunk = 0;
    if (rc != rc0 || e.line != e0->line || strcmp(e.msg, e0->msg))
        abort();
    if (t0 && (!t || t->n != t0->n ||
               memcmp(t->offsets, t0->offsets, (size_t)(t0->n + 1) * sizeof(int64_t)) ||
               memcmp(t->data, t0->data, (size_t)t0->offsets[t0->n])))
        abort();
    xmc_texts_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_path("texts.txt");
    fuzz_write(p, data, size);
    xmc_error e = {0};
    xmc_texts *t = NULL;
    int rc = xmc_texts_read(p, &t, &e);
    diff_mapped(p, 0, rc, &e, t);
    diff_mapped(p, 16, rc, &e, t); /* the fused reader's chunks cut anywhere */
    if (rc == XMC_OK) {
        for (int64_t i = 0; i < t->n; i++) {
            int64_t len = t->offsets[i + 1] - t->offsets[i] - 1;
            if (len < 0 || (int64_t)strlen(xmc_texts_get(t, i)) != len)
                abort();
        }
        xmc_texts_free(t);
    } else if (t || e.code == XMC_OK) {
        abort();
    }
    char spec[600];
    snprintf(spec, sizeof spec, "%s+%s", p, p);
    xmc_dataset *ds = NULL;
    xmc_error_clear(&e);
    if (xmc_dataset_load(spec, NULL, &ds, &e) == XMC_OK) {
        if (xmc_csr_check(ds->Y, "Y", NULL) || ds->label_names->n != ds->n_labels)
            abort();
        xmc_dataset_free(ds);
    }
    return 0;
}
