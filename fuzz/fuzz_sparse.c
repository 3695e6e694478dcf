/* libFuzzer: sparse matrix text ("N C" + "c:v ..." rows, any order), through
 * xmc_csr_read_text, then a write/read round trip must give the same matrix. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "xmc/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_path("m.txt"), *q = fuzz_path("m2.txt");
    fuzz_write(p, data, size);
    xmc_error e = {0};
    xmc_csr *m = NULL, *m2 = NULL;
    if (xmc_csr_read_text(p, &m, &e) == XMC_OK) {
        if (xmc_csr_check(m, "m", NULL))
            abort();
        if (xmc_csr_write_text(q, m, &e) || xmc_csr_read_text(q, &m2, &e) ||
            !xmc_csr_equal(m, m2))
            abort();
        xmc_csr_free(m2);
        xmc_csr_free(m);
    } else if (m || e.code == XMC_OK) {
        abort();
    }
    return 0;
}
