/* libFuzzer: the kNN memory file (neighbors-sN.bin, include/xmc/neighbors.h).
 * Random bytes rarely pass the CRC-32, so when the first byte is odd the
 * target rewrites the trailing CRC over the input: the structural checks
 * behind it (sizes against the file, row offsets, label ids) get fuzzed
 * too. A memory that loads must score a query without going out of
 * bounds. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "xmc/neighbors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fix;
    uint8_t *d = fuzz_flag_and_copy(data, size, &fix, &size);
    if (!d)
        return 0;
    if (fix && size >= 12) {
        uint32_t c = xmc_crc32(0, d + 8, size - 12);
        memcpy(d + size - 4, &c, 4);
    }
    const char *p = fuzz_path("m.bin");
    fuzz_write(p, d, size);
    free(d);
    xmc_error e = {0};
    xmc_neighbors *nb = NULL;
    FILE *f = fopen(p, "rb");
    if (!f)
        return 0;
    int rc = xmc_neighbors_load(f, p, &nb, &e);
    fclose(f);
    if (rc == XMC_OK) {
        int dim = xmc_neighbors_dim(nb);
        float *q = calloc((size_t)dim, sizeof *q);
        xmc_csr *K = NULL;
        if (q) {
            q[0] = 1.0f;
            if (xmc_neighbors_scores(nb, q, 1, 3, 0.1f, &K, &e) == XMC_OK &&
                xmc_csr_check(K, "K", NULL))
                abort();
        }
        xmc_csr_free(K);
        free(q);
        xmc_neighbors_free(nb);
    } else if (nb || (e.code != XMC_ECORRUPT && e.code != XMC_EIO && e.code != XMC_ENOMEM)) {
        abort();
    }
    return 0;
}
