/* kernels.h - tensor-type conversions (quantize/dequantize rows) and, with
 * the engine issue, the dot-product/matmul dispatch table.
 *
 * Holds: row encoders from f32 to every writable type and row decoders to
 * f32. The generic scalar code defines the results; SIMD variants must match.
 * Does not hold: the type table itself (gguf.h: ea_type, ea_type_info).
 */
#ifndef EDGEAGENT_KERNELS_H
#define EDGEAGENT_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "edgeagent/error.h"
#include "edgeagent/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True when ea_quant_from_f32 can write type. */
bool ea_quant_can_encode(uint32_t type);
/* True when ea_quant_to_f32 can read type. */
bool ea_quant_can_decode(uint32_t type);

/* Encodes n floats (a whole number of blocks) into dst. */
ea_status ea_quant_from_f32(uint32_t type, const float *src, void *dst, int64_t n,
                            struct ea_error *err);
/* Decodes n values (a whole number of blocks) of type into dst. */
ea_status ea_quant_to_f32(uint32_t type, const void *src, float *dst, int64_t n,
                          struct ea_error *err);

#ifdef __cplusplus
}
#endif
#endif
