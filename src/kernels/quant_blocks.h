/* quant_blocks.h - the byte layout of every quantized block format the
 * kernels read or write, bit-compatible with the tensors llama.cpp stores in
 * GGUF files, plus the small unpacking helpers that several files need (the
 * 6-bit scale packing of Q4_K/Q5_K, the 6-bit signed scales of Q3_K).
 *
 * Conventions: a block holds a fixed number of consecutive values of one
 * row (32 for the "legacy" formats, 256 = EA_QK_K for the K-quants, whose
 * super-block is split into sub-blocks of 16 or 32 with their own small
 * integer scales). Half-precision scales are stored as raw IEEE binary16
 * bits (uint16_t) and converted with util/fp16.h. Every struct has no
 * padding: its size is asserted against the type table of gguf.h. Alignment
 * is that of the widest member (2 bytes; 4 for the activation-only Q8_K),
 * which GGUF's 32-byte data alignment and whole-block row sizes guarantee.
 *
 * Does not hold: any conversion or dot-product code (generic/, x86/).
 */
#ifndef EDGEAGENT_KERNELS_QUANT_BLOCKS_H
#define EDGEAGENT_KERNELS_QUANT_BLOCKS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "edgeagent/gguf.h"

#define EA_QK 32     /* values per block of the legacy formats (Q4_0 .. Q8_1) */
#define EA_QK_K 256  /* values per super-block of the K-quants */

/* Sizes as the GGUF type table states them (EA_TYPE_MAP's type_size). */
#define EA__TYPE_SIZE_ENUM(name, id, bs, ts) EA__TS_##name = ts, EA__BS_##name = bs,
enum { EA_TYPE_MAP(EA__TYPE_SIZE_ENUM) };
#undef EA__TYPE_SIZE_ENUM

#define EA__CHECK_BLOCK(T, NAME)                                                   \
    _Static_assert(sizeof(struct T) == EA__TS_##NAME, #T " size differs from GGUF"); \
    _Static_assert(_Alignof(struct T) <= 4, #T " must not need more than 4-byte alignment")

/* ---- 32-value formats -------------------------------------------------- */

/* value = d * (q - 8); q is 4 bits. qs[j] holds value j in its low nibble
 * and value j + 16 in its high nibble. */
struct ea_blk_q4_0 {
    uint16_t d;
    uint8_t qs[EA_QK / 2];
};
EA__CHECK_BLOCK(ea_blk_q4_0, Q4_0);

/* value = d * q + m; q is 4 bits, nibbles as in Q4_0. */
struct ea_blk_q4_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qs[EA_QK / 2];
};
EA__CHECK_BLOCK(ea_blk_q4_1, Q4_1);

/* value = d * (q - 16); q is 5 bits: the low 4 as in Q4_0, the fifth bit of
 * value j is bit j of the little-endian 32-bit word qh. */
struct ea_blk_q5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[EA_QK / 2];
};
EA__CHECK_BLOCK(ea_blk_q5_0, Q5_0);

/* value = d * q + m; q is 5 bits, stored as in Q5_0. */
struct ea_blk_q5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[EA_QK / 2];
};
EA__CHECK_BLOCK(ea_blk_q5_1, Q5_1);

/* value = d * q; q signed 8 bits. */
struct ea_blk_q8_0 {
    uint16_t d;
    int8_t qs[EA_QK];
};
EA__CHECK_BLOCK(ea_blk_q8_0, Q8_0);

/* Activation format of Q4_1/Q5_1: as Q8_0 plus s = fp16(d * sum(qs)), which
 * carries the weights' offset term m * sum(x). */
struct ea_blk_q8_1 {
    uint16_t d;
    uint16_t s;
    int8_t qs[EA_QK];
};
EA__CHECK_BLOCK(ea_blk_q8_1, Q8_1);

/* ---- 256-value K-quant super-blocks ------------------------------------ */

/* 16 sub-blocks of 16: value = d * (sc & 15) * q - dmin * (sc >> 4), q 2 bits.
 * The 256 values form two halves of 128; in half h, value h*128 + 32*s + l
 * (s = 0..3, l = 0..31) sits in bits 2s..2s+1 of qs[h*32 + l]. */
struct ea_blk_q2_k {
    uint8_t scales[EA_QK_K / 16];
    uint8_t qs[EA_QK_K / 4];
    uint16_t d;
    uint16_t dmin;
};
EA__CHECK_BLOCK(ea_blk_q2_k, Q2_K);

/* 16 sub-blocks of 16: value = d * (sc - 32) * (q - 4), q 3 bits whose low two
 * bits are laid out as in Q2_K and whose high bit of value 32*b + l (b = 0..7,
 * l = 0..31) is bit b of hmask[l]. The 16 6-bit scales are packed into 12
 * bytes: see ea__q3k_scales. */
struct ea_blk_q3_k {
    uint8_t hmask[EA_QK_K / 8];
    uint8_t qs[EA_QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
};
EA__CHECK_BLOCK(ea_blk_q3_k, Q3_K);

/* 8 sub-blocks of 32: value = d * sc * q - dmin * m, q 4 bits; sc and m are
 * 6 bits each, packed into 12 bytes (see ea__k4_scale_min). Values
 * 64*p + l and 64*p + 32 + l (p = 0..3, l = 0..31) share qs[32*p + l], low
 * nibble first. */
struct ea_blk_q4_k {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qs[EA_QK_K / 2];
};
EA__CHECK_BLOCK(ea_blk_q4_k, Q4_K);

/* As Q4_K with a fifth bit: the high bit of value 32*b + l is bit b of qh[l]. */
struct ea_blk_q5_k {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[EA_QK_K / 8];
    uint8_t qs[EA_QK_K / 2];
};
EA__CHECK_BLOCK(ea_blk_q5_k, Q5_K);

/* 16 sub-blocks of 16: value = d * scales[sub] * (q - 32), q 6 bits. In half
 * h (128 values), value h*128 + 32*s + l (s = 0..3) takes its low nibble from
 * ql[h*64 + (s & 1)*32 + l] (low nibble for s < 2, high for s >= 2) and its
 * top two bits from bits 2s..2s+1 of qh[h*32 + l]. */
struct ea_blk_q6_k {
    uint8_t ql[EA_QK_K / 2];
    uint8_t qh[EA_QK_K / 4];
    int8_t scales[EA_QK_K / 16];
    uint16_t d;
};
EA__CHECK_BLOCK(ea_blk_q6_k, Q6_K);

/* Activation format of the K-quants: value = d * q with a float d, plus the
 * sum of each 16 quants (used for the weights' offset and min terms). */
struct ea_blk_q8_k {
    float d;
    int8_t qs[EA_QK_K];
    int16_t bsums[EA_QK_K / 16];
};
EA__CHECK_BLOCK(ea_blk_q8_k, Q8_K);

#undef EA__CHECK_BLOCK

/* ---- shared unpacking helpers ------------------------------------------ */

/* Q4_K/Q5_K: scale and min of sub-block j (0..7). Sub-blocks 0..3 keep both
 * 6-bit values in the low bits of bytes j and j + 4; sub-blocks 4..7 keep
 * their low 4 bits in byte j + 4 (scale low nibble, min high nibble) and
 * their top 2 bits in the spare top bits of bytes j - 4 (scale) and j (min). */
static inline void ea__k4_scale_min(int j, const uint8_t s[12], uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* Inverse of ea__k4_scale_min for all eight pairs (values < 64). */
static inline void ea__k4_pack_scale_min(const uint8_t sc[8], const uint8_t m[8], uint8_t s[12])
{
    for (int j = 0; j < 4; j++) {
        s[j] = sc[j];
        s[j + 4] = m[j];
    }
    for (int j = 4; j < 8; j++) {
        s[j + 4] = (uint8_t)((sc[j] & 15) | ((m[j] & 15) << 4));
        s[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
        s[j] |= (uint8_t)((m[j] >> 4) << 6);
    }
}

/* Q3_K: the 16 scales as signed values sc - 32 (-32..31). Scale j keeps its
 * low 4 bits in byte j (j < 8, low nibble) or byte j - 8 (high nibble), and
 * its top 2 bits in bits 2*(j/4).. of byte 8 + j%4. */
static inline void ea__q3k_scales(const uint8_t s[12], int8_t out[16])
{
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
        int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

/* Inverse of ea__q3k_scales for biased values u = sc + 32 in 0..63. */
static inline void ea__q3k_pack_scales(const uint8_t u[16], uint8_t s[12])
{
    memset(s, 0, 12);
    for (int j = 0; j < 16; j++) {
        if (j < 8)
            s[j] = u[j] & 15;
        else
            s[j - 8] |= (uint8_t)((u[j] & 15) << 4);
        s[8 + j % 4] |= (uint8_t)((u[j] >> 4) << (2 * (j / 4)));
    }
}

#endif
