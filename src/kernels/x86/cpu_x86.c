/* cpu_x86.c - which x86 kernel variants this CPU and OS can run: cpuid for
 * the instruction sets, xgetbv for the OS saving the wider register state
 * (an OS that does not save ZMM registers makes AVX-512 unusable even when
 * cpuid lists it). Built without ISA flags: it runs before any check.
 * Does not hold: kernels (kernels_avx2.c, kernels_avx512.c).
 */
#include <cpuid.h>
#include <stdint.h>

#include "kernels/x86/x86_int.h"

struct x86_features {
    bool avx2;   /* AVX2 + FMA + F16C, YMM state enabled */
    bool avx512; /* F + BW + VL + DQ, opmask/ZMM state enabled */
    bool vnni;   /* AVX512_VNNI on top of avx512 */
};

static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

static struct x86_features detect(void)
{
    struct x86_features f = {0};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return f;
    const bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12),
               f16c = c & (1u << 29);
    if (!osxsave || !avx)
        return f;
    const uint64_t xcr0 = read_xcr0();
    const bool ymm_state = (xcr0 & 0x6) == 0x6;       /* SSE + AVX state */
    const bool zmm_state = (xcr0 & 0xE6) == 0xE6;     /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (__get_cpuid_max(0, NULL) < 7)
        return f;
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = ymm_state && fma && f16c && (b & (1u << 5));
    const bool avx512f = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
    f.avx512 = f.avx2 && zmm_state && avx512f && dq && bw && vl;
    f.vnni = f.avx512 && (c & (1u << 11));
    return f;
}

bool ea__cpu_has_avx2(void) { return detect().avx2; }
bool ea__cpu_has_avx512(void) { return detect().avx512; }
bool ea__cpu_has_avx512_vnni(void) { return detect().vnni; }
