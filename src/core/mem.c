/* Accounted allocation. Each block carries a 64-byte header holding its size
 * (64 keeps the payload aligned for AVX-512 loads); counters are atomics so
 * OpenMP threads may allocate. The fault hook lets tests fail the n-th
 * allocation and check that every error path cleans up (SQLite's
 * SQLITE_TESTCTRL_FAULT_INSTALL idea). */
#include "xmc/core.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define HDR 64

static _Atomic size_t cur_bytes;
static _Atomic size_t peak_bytes;
static _Atomic uint64_t n_allocs;
static _Atomic uint64_t fail_countdown;

static int should_fail(void)
{
    uint64_t c = atomic_load(&fail_countdown);
    while (c > 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &c, c - 1))
            return c == 1;
    }
    return 0;
}

static void account(size_t n)
{
    size_t now = atomic_fetch_add(&cur_bytes, n) + n;
    size_t pk = atomic_load(&peak_bytes);
    while (now > pk && !atomic_compare_exchange_weak(&peak_bytes, &pk, now)) {
    }
    atomic_fetch_add(&n_allocs, 1);
}

void *xmc_malloc(size_t n)
{
    if (n > SIZE_MAX - HDR || should_fail())
        return NULL;
    unsigned char *p = aligned_alloc(HDR, ((n + HDR) + HDR - 1) / HDR * HDR);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    account(n);
    return p + HDR;
}

void *xmc_calloc(size_t count, size_t size)
{
    size_t n;
    if (!xmc_mul_ok(count, size, &n))
        return NULL;
    void *p = xmc_malloc(n);
    if (p)
        memset(p, 0, n);
    return p;
}

void xmc_free(void *p)
{
    if (!p)
        return;
    unsigned char *b = (unsigned char *)p - HDR;
    size_t n;
    memcpy(&n, b, sizeof n);
    atomic_fetch_sub(&cur_bytes, n);
    free(b);
}

void *xmc_realloc(void *p, size_t n)
{
    if (!p)
        return xmc_malloc(n);
    size_t old;
    memcpy(&old, (unsigned char *)p - HDR, sizeof old);
    void *q = xmc_malloc(n);
    if (!q)
        return NULL; /* p untouched, as realloc */
    memcpy(q, p, old < n ? old : n);
    xmc_free(p);
    return q;
}

/* xmc_malloc is already 64-byte aligned; the aligned names exist so call
 * sites document what they rely on. */
void *xmc_malloc_aligned(size_t n) { return xmc_malloc(n); }
void xmc_free_aligned(void *p) { xmc_free(p); }

char *xmc_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = xmc_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

size_t xmc_mem_current(void) { return atomic_load(&cur_bytes); }
size_t xmc_mem_peak(void) { return atomic_load(&peak_bytes); }
uint64_t xmc_mem_alloc_count(void) { return atomic_load(&n_allocs); }
void xmc_mem_reset_peak(void) { atomic_store(&peak_bytes, atomic_load(&cur_bytes)); }
void xmc_mem_fail_after(uint64_t n) { atomic_store(&fail_countdown, n); }

int xmc_mul_ok(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

size_t xmc_peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kb = (size_t)strtoull(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb * 1024;
}
