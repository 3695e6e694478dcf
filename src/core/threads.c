/* One thread pool: OpenMP, shared with OpenBLAS's OpenMP build, so setting
 * the OpenMP thread count sets both. */
#include "xmc/core.h"

#ifdef _OPENMP
#include <omp.h>
#endif

void xmc_set_threads(int n)
{
#ifdef _OPENMP
    if (n > 0)
        omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int xmc_get_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
