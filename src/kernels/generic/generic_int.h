/* generic_int.h - helpers shared by the generic (scalar reference) kernels:
 * the gemm loop built from a one-row dot product, and per-file installers.
 * Not part of the public API. */
#ifndef EDGEAGENT_KERNELS_GENERIC_INT_H
#define EDGEAGENT_KERNELS_GENERIC_INT_H

#include "kernels/kernels_int.h"

/* Defines static gemm_<name> from `float dot(int64_t k, const void *w_row,
 * const void *x_row)`: the plain double loop every variant must match. */
#define EA__GENERIC_GEMM(name, dot)                                                       \
    static void gemm_##name(int64_t k, int64_t nr, int64_t nc, const void *w,             \
                            size_t w_stride, const void *x, size_t x_stride, float *s,    \
                            size_t s_stride)                                              \
    {                                                                                     \
        for (int64_t j = 0; j < nc; j++)                                                  \
            for (int64_t i = 0; i < nr; i++)                                              \
                s[j * s_stride + i] = dot(k, (const char *)w + i * w_stride,              \
                                          (const char *)x + j * x_stride);                \
    }

void ea__generic_install_float(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec);
void ea__generic_install_quants(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT]);
void ea__generic_install_kv(struct ea_vec_ops *vec);

#endif
