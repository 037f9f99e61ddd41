/* arm_int.h - what the ARM kernel files share beyond kernels_int.h.
 *
 * The "neon" and "neon-dotprod" variants are one kernel source
 * (kernels_arm.h) built twice: by kernels_neon.c for the ARMv8.0 baseline
 * (widening multiplies smull/smlal + pairwise adds) and by
 * kernels_dotprod.c with EA_ARM_DOTPROD defined and
 * -march=armv8.2-a+dotprod+fp16 (sdot by element). CPU checks live in
 * cpu_arm.c, which is built without ISA flags.
 * Does not hold: kernels.
 */
#ifndef EDGEAGENT_KERNELS_ARM_INT_H
#define EDGEAGENT_KERNELS_ARM_INT_H

#include "kernels/kernels_int.h"

#endif
