/* xoshiro256** (Blackman & Vigna 2018), seeded through splitmix64 from
 * (seed, stream), so independent streams are cheap and reproducible. */
#include "xmc/core.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void xmc_rng_seed(xmc_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t xmc_rng_u64(xmc_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

uint32_t xmc_rng_u32(xmc_rng *r) { return (uint32_t)(xmc_rng_u64(r) >> 32); }

/* Lemire's nearly-divisionless bounded integers, without bias. */
uint64_t xmc_rng_below(xmc_rng *r, uint64_t n)
{
    unsigned __int128 m = (unsigned __int128)xmc_rng_u64(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t t = -n % n;
        while (lo < t) {
            m = (unsigned __int128)xmc_rng_u64(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double xmc_rng_uniform(xmc_rng *r) { return (double)(xmc_rng_u64(r) >> 11) * 0x1.0p-53; }

float xmc_rng_normal(xmc_rng *r)
{
    /* Box-Muller; one value per call keeps the stream position simple. */
    double u1 = xmc_rng_uniform(r), u2 = xmc_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void xmc_rng_shuffle_i64(xmc_rng *r, int64_t *a, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)xmc_rng_below(r, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
