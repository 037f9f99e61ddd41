/* x86_int.h - what the x86 kernel files share: the CPU checks beyond the
 * ones dispatch.c calls, and the two installers.
 *
 * The avx2 and avx512 variants are one kernel source (kernels_x86.h) built
 * twice: with AVX2 + FMA + F16C, and with AVX-512 F/BW/VL/DQ + VNNI. Both use
 * 256-bit vectors: on the CPUs that matter here (Zen 4 runs 512-bit
 * operations as two 256-bit halves) the gain of the avx512 build comes from
 * VNNI (one vpdpbusd instead of vpmaddubsw + vpmaddwd + vpaddd), 32 vector
 * registers (wider tiles) and embedded broadcasts, not from the width.
 * Does not hold: kernels.
 */
#ifndef EDGEAGENT_KERNELS_X86_INT_H
#define EDGEAGENT_KERNELS_X86_INT_H

#include "kernels/kernels_int.h"

/* Values of k per segment of the x86 matmuls (a multiple of 256): the
 * unpacked kernels unpack a segment at a time, and every x86 kernel sums
 * the segments' partial dot products in order, so that packed and unpacked
 * weights give the same bits. */
#define EA_X86_SEG 1024

/* AVX512_VNNI usable (implies ea__cpu_has_avx512). Without it the avx512
 * variant keeps the avx2 quantized kernels (see kernels_avx512.c). */
bool ea__cpu_has_avx512_vnni(void);

#endif
