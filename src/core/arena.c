/* Per-step scratch arena: one allocation at create, bump-pointer allocation,
 * reset each step. Not thread-safe: give each thread its own slice, or
 * allocate before the parallel region. */
#include "xmc/core.h"

struct xmc_arena {
    unsigned char *base;
    size_t cap, used, high;
};

xmc_arena *xmc_arena_create(size_t bytes)
{
    xmc_arena *a = xmc_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    bytes = (bytes + 63) & ~(size_t)63;
    a->base = bytes ? xmc_malloc_aligned(bytes) : NULL;
    if (bytes && !a->base) {
        xmc_free(a);
        return NULL;
    }
    a->cap = bytes;
    return a;
}

void xmc_arena_free(xmc_arena *a)
{
    if (!a)
        return;
    xmc_free_aligned(a->base);
    xmc_free(a);
}

void *xmc_arena_alloc(xmc_arena *a, size_t bytes)
{
    size_t n = (bytes + 63) & ~(size_t)63;
    if (n < bytes || n > a->cap - a->used)
        return NULL;
    void *p = a->base + a->used;
    a->used += n;
    if (a->used > a->high)
        a->high = a->used;
    return p;
}

void xmc_arena_reset(xmc_arena *a) { a->used = 0; }
size_t xmc_arena_used(const xmc_arena *a) { return a->used; }
size_t xmc_arena_capacity(const xmc_arena *a) { return a->cap; }
size_t xmc_arena_high_water(const xmc_arena *a) { return a->high; }
