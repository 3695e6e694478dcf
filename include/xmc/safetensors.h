/* xmc safetensors: read-only access to Hugging Face .safetensors files.
 *
 * Format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON {"name": {"dtype": "F32", "shape": [..],
 * "data_offsets": [begin, end]}, ..., "__metadata__": {...}}, then the byte
 * buffer the offsets index. The file is memory-mapped (tensors are never
 * copied until converted); the header is parsed with cJSON and validated
 * before anything is returned: header length inside the file, known dtype,
 * shape product x dtype size == end - begin (overflow-checked), offsets
 * inside the buffer, no two tensors overlapping, no duplicate names.
 *
 * Tensors of any standard dtype are listed (real checkpoints carry I64
 * position_ids buffers), but only F32, F16 and BF16 convert to fp32.
 *
 * Ownership: xmc_safetensors_open maps the file; xmc_safetensors_close
 * unmaps it and frees the table, after which tensor pointers are invalid.
 * Read-only after open, so any number of threads may read concurrently.
 */
#ifndef XMC_SAFETENSORS_H
#define XMC_SAFETENSORS_H

#include "xmc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XMC_ST_MAX_DIMS 8
#define XMC_ST_MAX_HEADER (100u << 20) /* the reference reader's limit */

typedef enum xmc_st_dtype {
    XMC_ST_F32 = 0,
    XMC_ST_F16,
    XMC_ST_BF16,
    XMC_ST_F64,
    XMC_ST_I64,
    XMC_ST_I32,
    XMC_ST_I16,
    XMC_ST_I8,
    XMC_ST_U8,
    XMC_ST_BOOL,
    XMC_ST_DTYPE_COUNT
} xmc_st_dtype;

typedef struct xmc_st_tensor {
    const char *name;
    xmc_st_dtype dtype;
    int ndim;
    int64_t shape[XMC_ST_MAX_DIMS];
    int64_t numel;
    const void *data; /* inside the mapping; may be unaligned */
    size_t nbytes;
} xmc_st_tensor;

typedef struct xmc_safetensors xmc_safetensors;

/* Map and validate `path`. Errors name the file and what is wrong
 * (XMC_EIO: cannot open/map; XMC_ECORRUPT: truncated or inconsistent
 * header; XMC_EFORMAT: bad JSON or field). */
int xmc_safetensors_open(const char *path, xmc_safetensors **out, xmc_error *err);
/* Same over a caller-owned buffer (not copied; must outlive the object);
 * `label` names it in errors. Used by the fuzz target and tests. */
int xmc_safetensors_open_buffer(const void *data, size_t len, const char *label,
                                xmc_safetensors **out, xmc_error *err);
void xmc_safetensors_close(xmc_safetensors *st);

int64_t xmc_safetensors_count(const xmc_safetensors *st);
/* Tensors sorted by name, i in [0, count). */
const xmc_st_tensor *xmc_safetensors_get(const xmc_safetensors *st, int64_t i);
/* NULL when absent (binary search). */
const xmc_st_tensor *xmc_safetensors_find(const xmc_safetensors *st, const char *name);
const char *xmc_safetensors_path(const xmc_safetensors *st);

const char *xmc_st_dtype_name(xmc_st_dtype d);
size_t xmc_st_dtype_size(xmc_st_dtype d);

/* Convert t (F32, F16 or BF16) to out[0..t->numel); XMC_EUNSUPPORTED names
 * the dtype otherwise. */
int xmc_safetensors_to_f32(const xmc_safetensors *st, const xmc_st_tensor *t, float *out,
                           xmc_error *err);

/* Scalar conversions (exact; NaN/Inf/subnormals preserved). */
float xmc_st_f16_to_f32(uint16_t h);
float xmc_st_bf16_to_f32(uint16_t b);

#ifdef __cplusplus
}
#endif
#endif
