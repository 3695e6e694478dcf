/* AVX2 variant of the sparse-row kernel (rowscan.h): separators of 64 bytes
 * from two 32-byte loads (one pshufb lookup and one compare each, two
 * movemasks), the table-driven entry path and the call-free loop for
 * common rows (ROWSCAN_FAST, as rowscan_avx512.c, with movemask and ptest
 * for the mask-register tests); and the 32-byte pass-1 count (the
 * AVX-512 machines use it too). */
#include <immintrin.h>
#include <string.h>

#include "data/internal.h"
#include "data/rowscan_sep.h"

/* BMI1/2 in the kernel (tzcnt, blsr; xmc_sparse_row_get checks). */
#define ROWSCAN_ATTR __attribute__((target("bmi,bmi2")))
#define ROWSCAN_SSE
#define ROWSCAN_FAST
#define ROWSCAN_NAME xmc_sparse_row_avx2
#define ROWS_NAME xmc_sparse_rows_avx2
#define COUNT3_NAME xmc_count3_avx2
#define COUNT3_W 32
#include "data/rowscan.h"
