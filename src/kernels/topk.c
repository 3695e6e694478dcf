/* Bounded top-k heap (see kernels.h): the shared exact top-k of the heads
 * and of hard-negative mining. */
#include <math.h>

#include "xmc/kernels.h"

static inline void swap(float *s, int32_t *id, int a, int b)
{
    float ts = s[a];
    s[a] = s[b];
    s[b] = ts;
    int32_t ti = id[a];
    id[a] = id[b];
    id[b] = ti;
}

void xmc_topk_sift_down(float *s, int32_t *id, int n, int i)
{
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && xmc_topk_worse(s[c + 1], id[c + 1], s[c], id[c]))
            c++;
        if (!xmc_topk_worse(s[c], id[c], s[i], id[i]))
            return;
        swap(s, id, c, i);
        i = c;
    }
}

void xmc_topk_sift_up(float *s, int32_t *id, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!xmc_topk_worse(s[i], id[i], s[p], id[p]))
            return;
        swap(s, id, i, p);
        i = p;
    }
}

void xmc_topk_finish(float *s, int32_t *id, int n, int k)
{
    /* Pop the worst to the back: the array ends best first. */
    for (int end = n - 1; end > 0; end--) {
        swap(s, id, 0, end);
        xmc_topk_sift_down(s, id, end, 0);
    }
    for (int j = n; j < k; j++) {
        s[j] = -INFINITY;
        id[j] = -1;
    }
}
