/* AVX-512 variant of the sparse-row kernel (rowscan.h): separators of 64
 * bytes from two 32-byte loads (one pshufb lookup and one compare each),
 * the one-vector entry path fast_entry with its table (rowscan.c,
 * xmc_rs_tab) and mask compares (AVX512BW+VL), and ROWSCAN_FAST: the
 * call-free loop for common rows, per row and per run of rows
 * (xmc_sparse_rows_avx512). One 64-byte zmm compare was measured 10-15 %
 * slower per file on the Xeon we test on (512-bit ops share ports and
 * lower the clock), so the vectors stay 256 bits wide or less. */
#include <immintrin.h>
#include <string.h>

#include "data/internal.h"
#include "data/rowscan_sep.h"

/* BMI1/2 in the kernel (tzcnt, blsr; every AVX-512 CPU has them, and
 * xmc_sparse_row_get checks). */
#define ROWSCAN_ATTR __attribute__((target("bmi,bmi2")))
#define ROWSCAN_MASKS /* fast_entry's tests in mask registers */
#define ROWSCAN_SSE
#define ROWSCAN_FAST
#define ROWSCAN_NAME xmc_sparse_row_avx512
#define ROWS_NAME xmc_sparse_rows_avx512
#include "data/rowscan.h"
