/* Runtime CPU feature detection (pgvector's BitvecInit idea): cpuid says what
 * the core has, xgetbv says whether the OS saves the wider registers; both
 * must hold before a kernel may use an ISA. */
#include "xmc/kernels.h"

#include <cpuid.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Linux asks a process to request the AMX tile-data state before use
 * (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), kernel >= 5.16);
 * without it the first tile instruction faults. */
#define XMC_ARCH_REQ_XCOMP_PERM 0x1023
#define XMC_XFEATURE_XTILEDATA 18

static int amx_permitted(void)
{
#ifdef SYS_arch_prctl
    return syscall(SYS_arch_prctl, XMC_ARCH_REQ_XCOMP_PERM, XMC_XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

static unsigned hw_cache, cur_cache;
static int hw_done, cur_done;

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

unsigned xmc_cpu_features_hw(void)
{
    if (hw_done)
        return hw_cache;
    unsigned f = 0, a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
        uint64_t xcr0 = osxsave ? xgetbv0() : 0;
        int ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            int avx2 = (b >> 5) & 1;
            int f512 = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
            if (avx && avx2 && fma && ymm)
                f |= XMC_CPU_AVX2;
            if ((f & XMC_CPU_AVX2) && f512 && dq && bw && vl && zmm)
                f |= XMC_CPU_AVX512;
            /* AMX-BF16 (EDX bit 22) + AMX-TILE (bit 24); XCR0 bits 17-18 */
            int amx = ((d >> 22) & 1) && ((d >> 24) & 1) && ((xcr0 >> 17) & 3) == 3;
            if ((f & XMC_CPU_AVX512) && __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 5) & 1))
                f |= XMC_CPU_AVX512BF16;
            if ((f & XMC_CPU_AVX512BF16) && amx && amx_permitted())
                f |= XMC_CPU_AMXBF16;
        }
    }
    hw_cache = f;
    hw_done = 1;
    return f;
}

unsigned xmc_cpu_features(void)
{
    if (cur_done)
        return cur_cache;
    unsigned f = xmc_cpu_features_hw();
    const char *k = getenv("XMC_KERNEL");
    if (k && !strcmp(k, "ref"))
        f = 0;
    else if (k && !strcmp(k, "avx2"))
        f &= XMC_CPU_AVX2;
    else if (k && !strcmp(k, "avx512"))
        f &= XMC_CPU_AVX2 | XMC_CPU_AVX512;
    else if (k && !strcmp(k, "avx512bf16"))
        f &= XMC_CPU_AVX2 | XMC_CPU_AVX512 | XMC_CPU_AVX512BF16;
    cur_cache = f;
    cur_done = 1;
    return f;
}

void xmc_cpu_refresh(void) { cur_done = 0; }

const char *xmc_cpu_level_name(void)
{
    unsigned f = xmc_cpu_features();
    if (f & XMC_CPU_AMXBF16)
        return "amx";
    if (f & XMC_CPU_AVX512BF16)
        return "avx512bf16";
    if (f & XMC_CPU_AVX512)
        return "avx512";
    if (f & XMC_CPU_AVX2)
        return "avx2";
    return "ref";
}
