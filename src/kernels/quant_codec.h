/* quant_codec.h - the scalar row codecs of the quantized formats, shared by
 * the public conversions (convert.c), the generic matmul and the tests of
 * SIMD variants.
 *
 * Three families, with different contracts:
 *   - decoders (ea__dec_*): bit-exact with llama.cpp's dequantization (same
 *     float expression per value, evaluated without contraction);
 *   - weight encoders (ea__enc_*): the quality quantizers llama-quantize
 *     applies without an importance matrix (for the K-quants the iterative
 *     scale/min searches), so files we write decode like llama.cpp's;
 *   - activation quantizers (ea__act_*): what llama.cpp's x86 CPU backend
 *     applies to activations before integer dot products, reproduced bit for
 *     bit (scale formula and rounding function), because the reference
 *     logits depend on every rounding decision there.
 * All take a count of whole blocks (nb) or values (k, a multiple of the block
 * size); none allocates or fails.
 * Does not hold: dispatch, dot products, SIMD code.
 */
#ifndef EDGEAGENT_KERNELS_QUANT_CODEC_H
#define EDGEAGENT_KERNELS_QUANT_CODEC_H

#include <stdint.h>

#include "kernels/quant_blocks.h"

/* nb blocks of src -> nb * block_size floats. */
void ea__dec_q4_0(const void *src, float *dst, int64_t nb);
void ea__dec_q4_1(const void *src, float *dst, int64_t nb);
void ea__dec_q5_0(const void *src, float *dst, int64_t nb);
void ea__dec_q5_1(const void *src, float *dst, int64_t nb);
void ea__dec_q8_0(const void *src, float *dst, int64_t nb);
void ea__dec_q8_1(const void *src, float *dst, int64_t nb);
void ea__dec_q2_k(const void *src, float *dst, int64_t nb);
void ea__dec_q3_k(const void *src, float *dst, int64_t nb);
void ea__dec_q4_k(const void *src, float *dst, int64_t nb);
void ea__dec_q5_k(const void *src, float *dst, int64_t nb);
void ea__dec_q6_k(const void *src, float *dst, int64_t nb);
void ea__dec_q8_k(const void *src, float *dst, int64_t nb);

/* nb * block_size floats -> nb blocks (weight quality; Q8_1 and Q8_K use
 * the activation quantizers, they never hold weights). */
void ea__enc_q4_0(const float *src, void *dst, int64_t nb);
void ea__enc_q4_1(const float *src, void *dst, int64_t nb);
void ea__enc_q5_0(const float *src, void *dst, int64_t nb);
void ea__enc_q5_1(const float *src, void *dst, int64_t nb);
void ea__enc_q8_0(const float *src, void *dst, int64_t nb);
void ea__enc_q8_1(const float *src, void *dst, int64_t nb);
void ea__enc_q2_k(const float *src, void *dst, int64_t nb);
void ea__enc_q3_k(const float *src, void *dst, int64_t nb);
void ea__enc_q4_k(const float *src, void *dst, int64_t nb);
void ea__enc_q5_k(const float *src, void *dst, int64_t nb);
void ea__enc_q6_k(const float *src, void *dst, int64_t nb);
void ea__enc_q8_k(const float *src, void *dst, int64_t nb);

/* One activation row of k values (a multiple of the block size); the
 * signature of ea_matmul_ops.quantize_act. */
void ea__act_q8_0(const float *x, void *y, int64_t k);
void ea__act_q8_1(const float *x, void *y, int64_t k);
void ea__act_q8_k(const float *x, void *y, int64_t k);

#endif
