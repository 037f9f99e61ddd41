/* kernels_avx512.c - the "avx512" variant: the kernels of kernels_x86.h
 * built with AVX-512 F/BW/VL/DQ + VNNI (CMake sets the flags for *_avx512.c
 * files), i.e. vpdpbusd/vpdpwssd and 32 vector registers.
 *
 * The variant is usable on any CPU with F/BW/VL/DQ; the quantized kernels of
 * this file need VNNI too, so on AVX-512 CPUs without it (Skylake-SP) the
 * quantized entries keep the avx2 kernels and only the float kernels and
 * vector helpers come from here.
 * Does not hold: kernel code (kernels_x86.h).
 */
#define EA_X86_VNNI 1
#include "kernels/x86/kernels_x86.h"

void ea__avx512_install(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec)
{
    if (ea__cpu_has_avx512_vnni())
        x86_install_quants(table);
    else
        ea__avx2_install(table, vec);
    x86_install_float(table, vec);
}
