/* float_tiles.h - the edge handling of the float matmul (F32/F16/BF16),
 * shared by the SIMD variants: walks the output in FROWS x FCOLS tiles and
 * hands each to the variant's float_tile (full tiles; at the edges
 * full-height columns (decode: nc = 1), full-width rows, single products
 * only in the corner), then stores the tile into s.
 * Included by a variant header after it defines FROWS, FCOLS, enum f_kind
 * and float_tile(kind, R, C, k, wr, xr, out) (out column-major, R rows).
 * Does not hold: the tile kernels themselves.
 */
#ifndef EDGEAGENT_KERNELS_FLOAT_TILES_H
#define EDGEAGENT_KERNELS_FLOAT_TILES_H

#include <stddef.h>
#include <stdint.h>

static inline __attribute__((always_inline)) void gemm_float(enum f_kind kind, int64_t k, int64_t nr, int64_t nc,
                                                             const void *w, size_t w_stride, const void *x,
                                                             size_t x_stride, float *s, size_t s_stride)
{
    const void *wr[FROWS], *xr[FCOLS];
    float out[FROWS * FCOLS];
    for (int64_t i0 = 0; i0 < nr; i0 += FROWS) {
        const int R = nr - i0 < FROWS ? (int)(nr - i0) : FROWS;
        for (int r = 0; r < R; r++)
            wr[r] = (const uint8_t *)w + (size_t)(i0 + r) * w_stride;
        for (int64_t j0 = 0; j0 < nc; j0 += FCOLS) {
            const int C = nc - j0 < FCOLS ? (int)(nc - j0) : FCOLS;
            for (int c = 0; c < C; c++)
                xr[c] = (const uint8_t *)x + (size_t)(j0 + c) * x_stride;
            if (R == FROWS && C == FCOLS) {
                float_tile(kind, FROWS, FCOLS, k, wr, xr, out);
            } else if (R == FROWS) {
                for (int c = 0; c < C; c++)
                    float_tile(kind, FROWS, 1, k, wr, &xr[c], &out[c * R]);
            } else if (C == FCOLS) {
                float one[FCOLS];
                for (int r = 0; r < R; r++) {
                    float_tile(kind, 1, FCOLS, k, &wr[r], xr, one);
                    for (int c = 0; c < C; c++)
                        out[c * R + r] = one[c];
                }
            } else {
                for (int r = 0; r < R; r++)
                    for (int c = 0; c < C; c++)
                        float_tile(kind, 1, 1, k, &wr[r], &xr[c], &out[c * R + r]);
            }
            for (int c = 0; c < C; c++)
                for (int r = 0; r < R; r++)
                    s[(size_t)(j0 + c) * s_stride + (size_t)(i0 + r)] = out[c * R + r];
        }
    }
}

#endif
