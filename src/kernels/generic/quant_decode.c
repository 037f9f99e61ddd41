/* quant_decode.c - decoders of the quantized block formats into f32.
 *
 * Each value is computed with the same float expression, in the same order,
 * as llama.cpp's dequantization (e.g. Q4_K: (d*sc)*q - dmin*m), so decoded
 * rows are bit-identical. That needs every a*b+c rounded twice, as written:
 * GCC does not contract in ISO C mode, and the pragma stops clang.
 * Does not hold: encoders (quant_encode.c), dot products (generic_quants.c).
 */
#include "kernels/quant_codec.h"
#include "util/fp16.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* The 5th bits of a Q5_0/Q5_1 block: bit j belongs to value j. */
static uint32_t q5_high_bits(const uint8_t qh[4])
{
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

void ea__dec_q4_0(const void *src, float *dst, int64_t nb)
{
    const struct ea_blk_q4_0 *b = src;
    for (int64_t i = 0; i < nb; i++, b++, dst += EA_QK) {
        const float d = ea_fp16_to_f32(b->d);
        for (int j = 0; j < EA_QK / 2; j++) {
            dst[j] = (float)((b->qs[j] & 15) - 8) * d;
            dst[j + 16] = (float)((b->qs[j] >> 4) - 8) * d;
        }
    }
}

void ea__dec_q4_1(const void *src, float *dst, int64_t nb)
{
    const struct ea_blk_q4_1 *b = src;
    for (int64_t i = 0; i < nb; i++, b++, dst += EA_QK) {
        const float d = ea_fp16_to_f32(b->d), m = ea_fp16_to_f32(b->m);
        for (int j = 0; j < EA_QK / 2; j++) {
            dst[j] = (float)(b->qs[j] & 15) * d + m;
            dst[j + 16] = (float)(b->qs[j] >> 4) * d + m;
        }
    }
}

void ea__dec_q5_0(const void *src, float *dst, int64_t nb)
{
    const struct ea_blk_q5_0 *b = src;
    for (int64_t i = 0; i < nb; i++, b++, dst += EA_QK) {
        const float d = ea_fp16_to_f32(b->d);
        const uint32_t h = q5_high_bits(b->qh);
        for (int j = 0; j < EA_QK / 2; j++) {
            int lo = (b->qs[j] & 15) | (int)((h >> j) & 1) << 4;
            int hi = (b->qs[j] >> 4) | (int)((h >> (j + 16)) & 1) << 4;
            dst[j] = (float)(lo - 16) * d;
            dst[j + 16] = (float)(hi - 16) * d;
        }
    }
}

void ea__dec_q5_1(const void *src, float *dst, int64_t nb)
{
    const struct ea_blk_q5_1 *b = src;
    for (int64_t i = 0; i < nb; i++, b++, dst += EA_QK) {
        const float d = ea_fp16_to_f32(b->d), m = ea_fp16_to_f32(b->m);
        const uint32_t h = q5_high_bits(b->qh);
        for (int j = 0; j < EA_QK / 2; j++) {
            int lo = (b->qs[j] & 15) | (int)((h >> j) & 1) << 4;
            int hi = (b->qs[j] >> 4) | (int)((h >> (j + 16)) & 1) << 4;
            dst[j] = (float)lo * d + m;
            dst[j + 16] = (float)hi * d + m;
        }
    }
}

/* Q8_0 and Q8_1 values are d * q; Q8_1's sum field only feeds dot products. */
static void scaled_i8(uint16_t d16, const int8_t *q, float *dst)
{
    const float d = ea_fp16_to_f32(d16);
    for (int j = 0; j < EA_QK; j++)
        dst[j] = (float)q[j] * d;
}

void ea__dec_q8_0(const void *src, float *dst, int64_t nb)
{
    const struct ea_blk_q8_0 *b = src;
    for (int64_t i = 0; i < nb; i++)
        scaled_i8(b[i].d, b[i].qs, dst + i * EA_QK);
}

void ea__dec_q8_1(const void *src, float *dst, int64_t nb)
{
    const struct ea_blk_q8_1 *b = src;
    for (int64_t i = 0; i < nb; i++)
        scaled_i8(b[i].d, b[i].qs, dst + i * EA_QK);
}

void ea__dec_q2_k(const void *src, float *dst, int64_t nb)
{
    const struct ea_blk_q2_k *b = src;
    for (int64_t i = 0; i < nb; i++, b++, dst += EA_QK_K) {
        const float d = ea_fp16_to_f32(b->d), dmin = ea_fp16_to_f32(b->dmin);
        for (int v = 0; v < EA_QK_K; v++) {
            int half = v / 128, s = (v % 128) / 32, l = v % 32;
            int q = (b->qs[half * 32 + l] >> (2 * s)) & 3;
            uint8_t sc = b->scales[v / 16];
            const float dl = d * (float)(sc & 15), ml = dmin * (float)(sc >> 4);
            dst[v] = dl * (float)q - ml;
        }
    }
}

void ea__dec_q3_k(const void *src, float *dst, int64_t nb)
{
    const struct ea_blk_q3_k *b = src;
    for (int64_t i = 0; i < nb; i++, b++, dst += EA_QK_K) {
        const float d = ea_fp16_to_f32(b->d);
        int8_t sc[16];
        ea__q3k_scales(b->scales, sc);
        for (int v = 0; v < EA_QK_K; v++) {
            int half = v / 128, s = (v % 128) / 32, l = v % 32;
            int lo = (b->qs[half * 32 + l] >> (2 * s)) & 3;
            int hi = (b->hmask[l] >> (v / 32)) & 1;
            const float dl = d * (float)sc[v / 16];
            dst[v] = dl * (float)(lo + 4 * hi - 4);
        }
    }
}

void ea__dec_q4_k(const void *src, float *dst, int64_t nb)
{
    const struct ea_blk_q4_k *b = src;
    for (int64_t i = 0; i < nb; i++, b++, dst += EA_QK_K) {
        const float d = ea_fp16_to_f32(b->d), dmin = ea_fp16_to_f32(b->dmin);
        for (int sub = 0; sub < 8; sub++) {
            uint8_t sc, m;
            ea__k4_scale_min(sub, b->scales, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            const uint8_t *q = b->qs + 32 * (sub / 2);
            const int shift = 4 * (sub & 1);
            for (int l = 0; l < 32; l++)
                dst[32 * sub + l] = dl * (float)((q[l] >> shift) & 15) - ml;
        }
    }
}

void ea__dec_q5_k(const void *src, float *dst, int64_t nb)
{
    const struct ea_blk_q5_k *b = src;
    for (int64_t i = 0; i < nb; i++, b++, dst += EA_QK_K) {
        const float d = ea_fp16_to_f32(b->d), dmin = ea_fp16_to_f32(b->dmin);
        for (int sub = 0; sub < 8; sub++) {
            uint8_t sc, m;
            ea__k4_scale_min(sub, b->scales, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            const uint8_t *q = b->qs + 32 * (sub / 2);
            const int shift = 4 * (sub & 1);
            for (int l = 0; l < 32; l++) {
                int v = ((q[l] >> shift) & 15) | ((b->qh[l] >> sub) & 1) << 4;
                dst[32 * sub + l] = dl * (float)v - ml;
            }
        }
    }
}

void ea__dec_q6_k(const void *src, float *dst, int64_t nb)
{
    const struct ea_blk_q6_k *b = src;
    for (int64_t i = 0; i < nb; i++, b++, dst += EA_QK_K) {
        const float d = ea_fp16_to_f32(b->d);
        for (int v = 0; v < EA_QK_K; v++) {
            int half = v / 128, s = (v % 128) / 32, l = v % 32;
            int lo = (b->ql[half * 64 + (s & 1) * 32 + l] >> (4 * (s >> 1))) & 15;
            int hi = (b->qh[half * 32 + l] >> (2 * s)) & 3;
            dst[v] = d * (float)b->scales[v / 16] * (float)((lo | hi << 4) - 32);
        }
    }
}

void ea__dec_q8_k(const void *src, float *dst, int64_t nb)
{
    const struct ea_blk_q8_k *b = src;
    for (int64_t i = 0; i < nb; i++, b++, dst += EA_QK_K)
        for (int j = 0; j < EA_QK_K; j++)
            dst[j] = b->d * (float)b->qs[j];
}
