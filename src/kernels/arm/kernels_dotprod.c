/* kernels_dotprod.c - the "neon-dotprod" variant: the kernels of
 * kernels_arm.h built with EA_ARM_DOTPROD (CMake compiles *_dotprod.c with
 * -march=armv8.2-a+dotprod+fp16), i.e. sdot by element and wider
 * micro-kernels. Cortex-A55/A76 (Raspberry Pi 5), Neoverse, Apple M run
 * this one.
 * Does not hold: kernel code (kernels_arm.h).
 */
#define EA_ARM_DOTPROD 1
#include "kernels/arm/kernels_arm.h"

#if !defined(__ARM_FEATURE_DOTPROD)
#error "kernels_dotprod.c needs -march=armv8.2-a+dotprod (see CMakeLists.txt)"
#endif

void ea__dotprod_install(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec)
{
    arm_install(table, vec);
}
