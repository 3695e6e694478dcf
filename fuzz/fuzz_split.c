/* libFuzzer: split files (1-based row ids in the first column); the first
 * input byte picks the data's row count. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "xmc/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int64_t n_rows = data[0];
    const char *p = fuzz_path("split.txt");
    fuzz_write(p, data + 1, size - 1);
    xmc_error e = {0};
    int64_t *rows = NULL, n = 0;
    if (xmc_split_read(p, n_rows, &rows, &n, &e) == XMC_OK) {
        for (int64_t i = 0; i < n; i++)
            if (rows[i] < 0 || rows[i] >= n_rows)
                abort();
        xmc_free(rows);
    } else if (rows || e.code == XMC_OK) {
        abort();
    }
    return 0;
}
