/* libFuzzer: the binary cache (.xmcb). Random bytes rarely pass the CRC-32
 * checks, so when the first byte is odd the target recomputes every CRC the
 * input's own section table describes: the structural checks behind the
 * checksums (bounds, indptr, offsets, NULs) then get fuzzed too. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "xmc/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fix;
    uint8_t *d = fuzz_flag_and_copy(data, size, &fix, &size);
    if (!d)
        return 0;
    if (fix && size >= 64) {
        uint32_t nsec;
        memcpy(&nsec, d + 12, 4);
        if (nsec <= 32 && 64 + (size_t)nsec * 32 <= size) {
            for (uint32_t i = 0; i < nsec; i++) {
                uint8_t *s = d + 64 + i * 32;
                uint32_t es;
                uint64_t off, cnt;
                memcpy(&es, s + 4, 4);
                memcpy(&off, s + 8, 8);
                memcpy(&cnt, s + 16, 8);
                if (es <= 8 && off <= size && cnt <= size && cnt * es <= size - off) {
                    uint32_t c = xmc_crc32(0, d + off, (size_t)(cnt * es));
                    memcpy(s + 24, &c, 4);
                }
            }
            uint32_t c = xmc_crc32(xmc_crc32(0, d, 60), d + 64, (size_t)nsec * 32);
            memcpy(d + 60, &c, 4);
        }
    }
    const char *p = fuzz_path("c.xmcb");
    fuzz_write(p, d, size);
    free(d);
    xmc_error e = {0};
    xmc_dataset *ds = NULL;
    if (xmc_dataset_map_binary(p, &ds, &e) == XMC_OK) {
        if (xmc_csr_check(ds->Y, "Y", NULL) || (ds->X && xmc_csr_check(ds->X, "X", NULL)))
            abort();
        for (int64_t i = 0; ds->texts && i < ds->texts->n; i++)
            (void)strlen(xmc_texts_get(ds->texts, i));
        xmc_dataset_free(ds);
    } else if (ds || (e.code != XMC_ECORRUPT && e.code != XMC_EIO && e.code != XMC_ENOMEM)) {
        abort();
    }
    return 0;
}
