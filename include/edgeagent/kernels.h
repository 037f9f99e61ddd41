/* kernels.h - tensor-type conversions and the compute kernels the model
 * runs on, behind a table chosen at start-up from CPU detection.
 *
 * Holds: row encoders/decoders between f32 and every computable type; the
 * matmul table indexed by weight type (activation conversion + a tiled
 * dot-product kernel); the vector helpers attention needs; variant selection
 * (generic scalar reference, avx2, avx512, neon, neon-dotprod). The generic
 * variant is always built and defines the results; every other variant is
 * tested against it. ea_kernels_select forces one (the edgeagent binary
 * calls it for EA_KERNELS=<variant> in its environment).
 * Does not hold: the type table (gguf.h), threading (model), model ops such
 * as RMSNorm or RoPE (src/model).
 */
#ifndef EDGEAGENT_KERNELS_H
#define EDGEAGENT_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/error.h"
#include "edgeagent/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- conversions (scalar reference, always available) ------------------ */

/* True when ea_quant_from_f32 can write type. */
bool ea_quant_can_encode(uint32_t type);
/* True when ea_quant_to_f32 can read type. */
bool ea_quant_can_decode(uint32_t type);

/* Encodes n floats (a whole number of blocks) into dst. For the weight
 * formats (Q4_0 .. Q8_0, Q2_K .. Q6_K) this is the quantizer llama-quantize
 * runs without an importance matrix, byte for byte (the K-quants' scale/min
 * searches included); Q8_1 and Q8_K, which only ever hold activations, use
 * the activation quantizer of ea_matmul_ops.quantize_act. */
ea_status ea_quant_from_f32(uint32_t type, const float *src, void *dst, int64_t n,
                            struct ea_error *err);
/* Decodes n values (a whole number of blocks) of type into dst, bit-exact
 * with llama.cpp's dequantization. */
ea_status ea_quant_to_f32(uint32_t type, const void *src, float *dst, int64_t n,
                          struct ea_error *err);

/* ---- matmul -------------------------------------------------------------- */

/* One weight type's matmul: activations (f32 rows) are first converted to
 * act_type, then gemm computes, for i < nr and j < nc,
 *     s[j * s_stride + i] = dot(W row i, X row j)
 * where W rows are w_stride bytes apart (k values of the weight type) and X
 * rows x_stride bytes apart (k values of act_type). k is a multiple of both
 * types' block sizes. Callers split i across threads; gemm tiles inside
 * (SIMD variants keep up to ~24 KB of scratch on the calling thread's stack).
 * Weight rows need 2-byte alignment (4 for F32), activation rows 4 bytes. */
struct ea_matmul_ops {
    uint32_t act_type;
    void (*quantize_act)(const float *x, void *y, int64_t k);
    void (*gemm)(int64_t k, int64_t nr, int64_t nc, const void *w, size_t w_stride,
                 const void *x, size_t x_stride, float *s, size_t s_stride);
};

/* Optional packed layout of one weight type in one variant: a weight matrix
 * rearranged once, at load, into tiles of `rows` rows that gemm reads
 * without unpacking. Activations are those of the same variant's
 * ea_matmul_ops for the type (act_type, quantize_act). A separate table from
 * ea_matmul_ops so that variants without packing need not know of it.
 *   size: bytes of the packed copy of nr rows of k values; 0 when this shape
 *     cannot be packed (then use ea_matmul_ops.gemm on the original rows).
 *   repack: writes the tiles holding rows [r0, r1) of W (rows w_stride bytes
 *     apart) into dst, which has `size` bytes and is 64-byte aligned; r0 is
 *     a multiple of rows, so threads can split a matrix.
 *   gemm: as ea_matmul_ops.gemm for rows i0 .. i0 + nr - 1 of the packed
 *     matrix wp (i0 a multiple of rows); s points at the output of row i0.
 *     Results equal the unpacked gemm's up to float rounding and, like them,
 *     depend neither on nc nor on the row range (batch invariance). */
struct ea_pack_ops {
    int rows;
    size_t (*size)(int64_t k, int64_t nr);
    void (*repack)(int64_t k, int64_t nr, int64_t r0, int64_t r1, const void *w, size_t w_stride,
                   void *dst);
    void (*gemm)(int64_t k, int64_t i0, int64_t nr, int64_t nc, const void *wp, const void *x,
                 size_t x_stride, float *s, size_t s_stride);
};

/* Vector helpers for attention over an F16 KV cache and for conversions. */
struct ea_vec_ops {
    float (*dot_f16_f32)(int64_t n, const uint16_t *a, const float *b);
    void (*axpy_f16)(int64_t n, float alpha, const uint16_t *x, float *y); /* y += alpha*x */
    void (*f32_to_f16)(const float *x, uint16_t *y, int64_t n);
    void (*f16_to_f32)(const uint16_t *x, float *y, int64_t n);
    float (*dot_f32)(int64_t n, const float *a, const float *b);
    void (*axpy_f32)(int64_t n, float alpha, const float *x, float *y);
    /* Q8_0 KV cache rows (n a multiple of 32): blocks . b, y += alpha*blocks,
     * and the row encoder (the activation quantizer's rounding). */
    float (*dot_q8_0_f32)(int64_t n, const void *blocks, const float *b);
    void (*axpy_q8_0)(int64_t n, float alpha, const void *blocks, float *y);
    void (*f32_to_q8_0)(const float *x, void *blocks, int64_t n);
    /* Attention over F16 rows, for the g query heads that share a KV head:
     * s[i * s_stride + j] = scale * dot(q + i * hd, k + j * k_stride) for
     * i < g, j < n (rows of hd values, k_stride elements apart). */
    void (*att_scores_f16)(int64_t hd, int g, const float *q, const uint16_t *k, size_t k_stride,
                           int64_t n, float scale, float *s, size_t s_stride);
    /* out[i * hd + d] += sum_j p[i * p_stride + j] * v[j * v_stride + d]. */
    void (*att_accum_f16)(int64_t hd, int g, const float *p, size_t p_stride, const uint16_t *v,
                          size_t v_stride, int64_t n, float *out);
    /* x[i] = exp(x[i] - shift); returns the sum of the results. */
    float (*exp_sum)(int64_t n, float *x, float shift);
    /* g[i] = silu(g[i]) * u[i], silu(v) = v / (1 + exp(-v)). */
    void (*silu_mul)(int64_t n, float *g, const float *u);
};

/* Matmul ops of the active variant for weight type, or NULL when the type is
 * not computable. Thread-safe; the first call picks the variant. */
const struct ea_matmul_ops *ea_kernels_matmul(uint32_t weight_type);
const struct ea_vec_ops *ea_kernels_vec(void);
/* Packed-layout ops of the active variant for weight_type, or NULL. */
const struct ea_pack_ops *ea_kernels_pack(uint32_t weight_type);
/* Name of the active variant ("generic", "avx2", "avx512", "neon", ...). */
const char *ea_kernels_name(void);

/* Variants compiled into this build and usable on this CPU, best last. */
unsigned ea_kernels_n_variants(void);
const char *ea_kernels_variant_name(unsigned i);
/* Ops of one specific variant (tests compare each against "generic");
 * NULL if that variant lacks the type (callers fall back to generic). */
const struct ea_matmul_ops *ea_kernels_variant_matmul(unsigned i, uint32_t weight_type);
const struct ea_vec_ops *ea_kernels_variant_vec(unsigned i);
const struct ea_pack_ops *ea_kernels_variant_pack(unsigned i, uint32_t weight_type);
/* Makes variant name the active one (before or after first use); EA_EINVAL
 * with the list of names if unknown or unusable on this CPU. */
ea_status ea_kernels_select(const char *name, struct ea_error *err);

#ifdef __cplusplus
}
#endif
#endif
