/* libFuzzer: the safetensors reader over arbitrary bytes. Whatever the
 * header claims, open must either fail cleanly or return tensors whose
 * bytes lie inside the buffer, that lookup finds by name, and that convert
 * without reading outside them (ASan checks the reads). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmc/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy, so ASan sees reads past the end of the input */
    uint8_t *d = malloc(size ? size : 1);
    if (!d)
        return 0;
    memcpy(d, data, size);
    xmc_safetensors *st = NULL;
    xmc_error err = {0};
    if (xmc_safetensors_open_buffer(d, size, "fuzz.safetensors", &st, &err) == XMC_OK) {
        for (int64_t i = 0; i < xmc_safetensors_count(st); i++) {
            const xmc_st_tensor *t = xmc_safetensors_get(st, i);
            const uint8_t *p = t->data;
            if (p < d || p + t->nbytes > d + size)
                __builtin_trap();
            if (xmc_safetensors_find(st, t->name) != t)
                __builtin_trap();
            if (t->dtype == XMC_ST_F32 || t->dtype == XMC_ST_F16 || t->dtype == XMC_ST_BF16) {
                float *out = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
                if (out && xmc_safetensors_to_f32(st, t, out, &err) != XMC_OK)
                    __builtin_trap();
                free(out);
            }
        }
        xmc_safetensors_close(st);
    } else if (err.code == XMC_OK || !err.msg[0]) {
        __builtin_trap(); /* a failure must say why */
    }
    free(d);
    return 0;
}
