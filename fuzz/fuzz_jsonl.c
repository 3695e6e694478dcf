/* libFuzzer: the JSON-lines layout (PREFIX.json + lbl.json). The first byte
 * picks which file the rest of the input becomes; the other is fixed. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "xmc/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char lbl[] = "{\"title\":\"a\"}\n{\"title\":\"b\",\"content\":\"c\"}\n{\"title\":\"d\"}\n";
static const char trn[] = "{\"title\":\"t\",\"content\":\"x\",\"target_ind\":[0,2]}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *dir = fuzz_path("jsonl");
    char a[400], b[400], spec[400];
    mkdir(dir, 0777);
    snprintf(a, sizeof a, "%s/lbl.json", dir);
    snprintf(b, sizeof b, "%s/trn.json", dir);
    snprintf(spec, sizeof spec, "%s/trn", dir);
    if (data[0] & 1) {
        fuzz_write(a, data + 1, size - 1);
        fuzz_write(b, (const uint8_t *)trn, strlen(trn));
    } else {
        fuzz_write(a, (const uint8_t *)lbl, strlen(lbl));
        fuzz_write(b, data + 1, size - 1);
    }
    xmc_error e = {0};
    xmc_dataset *ds = NULL;
    if (xmc_dataset_load(spec, NULL, &ds, &e) == XMC_OK) {
        if (xmc_csr_check(ds->Y, "Y", NULL) || ds->texts->n != ds->n ||
            ds->label_texts->n != ds->n_labels)
            abort();
        xmc_dataset_free(ds);
    } else if (ds || e.code == XMC_OK) {
        abort();
    }
    return 0;
}
