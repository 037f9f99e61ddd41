/* generic.c - installs the scalar reference variant: float types and every
 * quantized format. Always built; the results every SIMD variant is tested
 * against. */
#include "kernels/generic/generic_int.h"

void ea__generic_install(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec)
{
    ea__generic_install_float(table, vec);
    ea__generic_install_quants(table);
    ea__generic_install_kv(vec);
}
