/* kernels_avx2.c - the "avx2" variant: the kernels of kernels_x86.h built
 * with AVX2 + FMA + F16C (CMake sets the flags for *_avx2.c files).
 * Does not hold: kernel code (kernels_x86.h).
 */
#include "kernels/x86/kernels_x86.h"

void ea__avx2_install(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec)
{
    x86_install_float(table, vec);
    x86_install_quants(table);
}
