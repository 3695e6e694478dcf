/* libFuzzer: UTF-8 text lines (xmc_texts_read) and TEXTS+LABELS, the input
 * serving as both files (so the counts always agree and labels parse). */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "xmc/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_path("texts.txt");
    fuzz_write(p, data, size);
    xmc_error e = {0};
    xmc_texts *t = NULL;
    if (xmc_texts_read(p, &t, &e) == XMC_OK) {
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
