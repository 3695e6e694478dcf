/* libFuzzer: XC repository data file ("N F L" + "l1,l2 f:v ..." rows),
 * through xmc_dataset_load. Valid inputs must satisfy the CSR invariants. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "xmc/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_path("xc.txt");
    fuzz_write(p, data, size);
    xmc_error e = {0};
    xmc_dataset *ds = NULL;
    if (xmc_dataset_load(p, NULL, &ds, &e) == XMC_OK) {
        if (xmc_csr_check(ds->X, "X", NULL) || xmc_csr_check(ds->Y, "Y", NULL) ||
            ds->X->nrows != ds->n)
            abort();
        xmc_dataset_free(ds);
    } else if (ds || e.code == XMC_OK) {
        abort();
    }
    return 0;
}
