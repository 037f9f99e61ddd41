/* kernels_neon.c - the "neon" variant: the kernels of kernels_arm.h built
 * for the ARMv8.0 baseline (AdvSIMD; integer dot products from smull/smlal
 * and pairwise adds). Cortex-A53/A72 (Raspberry Pi 3/4) run this one.
 * Does not hold: kernel code (kernels_arm.h).
 */
#include "kernels/arm/kernels_arm.h"

void ea__neon_install(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec)
{
    arm_install(table, vec);
}
