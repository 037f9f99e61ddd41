/* cpu_arm.c - which ARM kernel variants this CPU can run.
 *
 * Linux and Android report the instruction sets in the auxiliary vector
 * (getauxval(AT_HWCAP)); Apple systems through sysctl. "neon" needs AdvSIMD
 * (every AArch64 application core has it, but the kernel says so explicitly).
 * "neon-dotprod" needs the dot-product instructions and, because that file
 * is compiled with +fp16, the half-precision extension as well (every core
 * with dotprod that runs Linux has both: Cortex-A55/A75/A76 and later,
 * Neoverse, Apple M1 and later). Elsewhere only "neon" is assumed.
 * Built without ISA flags: it runs before any check.
 * Does not hold: kernels (kernels_neon.c, kernels_dotprod.c).
 */
#include <stdint.h>

#include "kernels/arm/arm_int.h"

#if defined(__linux__) || defined(__ANDROID__)
#include <sys/auxv.h>

/* Bit numbers of the Linux arm64 ABI (asm/hwcap.h), spelled out because
 * old C libraries lack some of the names. */
#define EA_HWCAP_ASIMD (1ul << 1)
#define EA_HWCAP_FPHP (1ul << 9)
#define EA_HWCAP_ASIMDHP (1ul << 10)
#define EA_HWCAP_ASIMDDP (1ul << 20)

bool ea__cpu_has_neon(void) { return (getauxval(AT_HWCAP) & EA_HWCAP_ASIMD) != 0; }

bool ea__cpu_has_dotprod(void)
{
    const unsigned long need = EA_HWCAP_ASIMD | EA_HWCAP_FPHP | EA_HWCAP_ASIMDHP | EA_HWCAP_ASIMDDP;
    return (getauxval(AT_HWCAP) & need) == need;
}

#elif defined(__APPLE__)
#include <sys/sysctl.h>

static bool sysctl_flag(const char *name)
{
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname(name, &v, &len, NULL, 0) == 0 && v != 0;
}

bool ea__cpu_has_neon(void) { return true; }

bool ea__cpu_has_dotprod(void)
{
    return sysctl_flag("hw.optional.arm.FEAT_DotProd") && sysctl_flag("hw.optional.arm.FEAT_FP16");
}

#else
bool ea__cpu_has_neon(void) { return true; }
bool ea__cpu_has_dotprod(void) { return false; }
#endif
