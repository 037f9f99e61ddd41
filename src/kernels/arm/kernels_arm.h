/* kernels_arm.h - the AArch64 kernels, written once with NEON intrinsics and
 * compiled twice: by kernels_neon.c for the ARMv8.0 baseline ("neon") and by
 * kernels_dotprod.c with EA_ARM_DOTPROD defined ("neon-dotprod", ARMv8.2
 * sdot). Only the integer accumulator at the top differs between the two.
 *
 * Quantized matmul ("row-interleaved tiles"). Weights are taken 4 rows at a
 * time over a segment of k (EA_ARM_SEG values) and unpacked into a scratch
 * tile on the stack: levels as signed bytes, interleaved so that 32-bit lane
 * r of a 128-bit vector holds 4 consecutive levels of row r ("level vector"
 * v holds values 4v..4v+3 of the 4 rows), plus the per-row scales as
 * vectors with one lane per row. Packed bits are transposed while still
 * packed (vld1 + trn1/trn2 on 32- and 64-bit lanes) and the fields are cut
 * out afterwards, since a field keeps its byte within the 32-bit word.
 *   - neon-dotprod: one `sdot v.4s, w.16b, a.4b[lane]` multiplies a level
 *     vector by 4 activation bytes broadcast from a lane and advances the 4
 *     row sums at once (16 MACs per instruction).
 *   - neon: the 4 activation bytes are broadcast with `dup v.4s, a.s[lane]`,
 *     `smull/smlal` (low half: rows 0-1) and `smlal2` (high half: rows 2-3)
 *     accumulate 16-bit products, which are widened with `sadalp` when they
 *     could overflow and folded to one sum per row with `addp`. The int16
 *     accumulators hold at most 8 steps: |level| <= 63 and |activation| <=
 *     127 (the activation quantizers never produce -128, see round_even_4)
 *     bound a lane by 8 * 31 * 127 (5-bit levels), 4 * 63 * 127 (Q6_K's
 *     16-value groups) or 2 * 128 * 127 (Q8_0, widened every 2 steps).
 * The tile is unpacked once and reused for every activation row (prefill is
 * bound by the integer multiply rate), and with a single activation row
 * (decode) the work per weight byte is small next to streaming it from
 * memory. Integer block (super-block) sums are exact, so results differ from
 * generic only by float rounding:
 *   - Q4_0/Q5_0 levels are made signed when unpacked (q - 8, q - 16), Q8_0
 *     is signed already; Q4_1/Q5_1 add m * s from Q8_1 in float.
 *   - K-quant sub-block scales multiply the exact int32 sub-block sums (mla),
 *     the mins (Q2_K/Q4_K/Q5_K) and the level offsets times the scales
 *     (Q3_K: 4, Q6_K: 32) multiply Q8_K's per-16 sums (smlal by lane).
 * Every output element is computed by the same sequence of operations
 * whatever the tile around it (batch invariance): columns and rows never
 * share arithmetic, and k segments start at fixed multiples of EA_ARM_SEG.
 * Float matmul (F32/F16/BF16): tiles of up to 4 weight rows x 4 activation
 * rows, one f32x4 accumulator each, fmla on 8 values of k per step.
 * Activation quantizers and conversions: the generic formulas, rounding by
 * the same 1.5 * 2^23 addition and NaNs written as generic writes them, so
 * the bytes are identical for every input.
 * Attention over the F16 KV cache (att_scores_f16, att_accum_f16): converted
 * key/value chunks shared by the query rows of a tile, results independent
 * of the tiling. Softmax and SwiGLU helpers (exp_sum, silu_mul): a
 * polynomial e^x on 4 lanes, within ~1e-7 relative of expf.
 * Does not hold: CPU detection (cpu_arm.c), variant selection (dispatch.c).
 */
#ifndef EDGEAGENT_KERNELS_ARM_KERNELS_H
#define EDGEAGENT_KERNELS_ARM_KERNELS_H

#include <arm_neon.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "kernels/arm/arm_int.h"
#include "kernels/quant_blocks.h"
#include "util/fp16.h"

/* Block fields are read as little-endian words and bytes of vector lanes. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ARM kernels assume little-endian AArch64"
#endif

#define EA_ARM_INLINE static inline __attribute__((always_inline))

/* Activation rows per quantized micro-kernel: sdot keeps 2 int32 vectors
 * per column, the baseline 4 (two int16, two int32); both leave room for
 * the level vectors, activations and float accumulators in 32 registers. */
#ifdef EA_ARM_DOTPROD
#define QCOLS 4
#else
#define QCOLS 2
#endif
#define FROWS 4            /* float tiles: weight rows x activation rows */
#define FCOLS 4
#define EA_ARM_SEG 1024    /* values of k per unpacked segment (a multiple of 256) */
#define EA_ARM_FEW_COLS 16 /* up to this many activation rows: row tile outermost */
#define COLBLK 64          /* activation rows sharing one unpacked tile in prefill */

/* ---- integer accumulator: 4 row sums of level vectors x activations ---- */

#ifdef EA_ARM_DOTPROD
/* Even and odd steps in separate registers: two sdot chains. */
struct iacc {
    int32x4_t p0, p1;
};

EA_ARM_INLINE void iacc_zero(struct iacc *s) { s->p0 = s->p1 = vdupq_n_s32(0); }

/* Adds level vectors w0..w3 times activation bytes a[0..15] (wt takes
 * bytes 4t..4t+3). wide: levels may reach -128 (no effect with sdot).
 * Vectors are passed one by one: GCC keeps an array of them in memory. */
EA_ARM_INLINE void iacc_quad(struct iacc *s, int8x16_t w0, int8x16_t w1, int8x16_t w2, int8x16_t w3,
                             int8x16_t a, bool wide)
{
    (void)wide;
    s->p0 = vdotq_laneq_s32(s->p0, w0, a, 0);
    s->p1 = vdotq_laneq_s32(s->p1, w1, a, 1);
    s->p0 = vdotq_laneq_s32(s->p0, w2, a, 2);
    s->p1 = vdotq_laneq_s32(s->p1, w3, a, 3);
}

/* Lane r = the exact sum of row r. */
EA_ARM_INLINE int32x4_t iacc_sum(const struct iacc *s) { return vaddq_s32(s->p0, s->p1); }

#else
/* h01/h23: int16 products of rows 0-1 / 2-3 (4 lanes per row); w01/w23:
 * their pairwise sums in int32 once widened. */
struct iacc {
    int16x8_t h01, h23;
    int32x4_t w01, w23;
};

EA_ARM_INLINE void iacc_zero(struct iacc *s)
{
    s->h01 = s->h23 = vdupq_n_s16(0);
    s->w01 = s->w23 = vdupq_n_s32(0);
}

EA_ARM_INLINE void iacc_widen(struct iacc *s)
{
    s->w01 = vpadalq_s16(s->w01, s->h01);
    s->w23 = vpadalq_s16(s->w23, s->h23);
    s->h01 = s->h23 = vdupq_n_s16(0);
}

EA_ARM_INLINE void iacc_step(struct iacc *s, int8x16_t w, int32x4_t a_bcast)
{
    const int8x16_t a = vreinterpretq_s8_s32(a_bcast);
    s->h01 = vmlal_s8(s->h01, vget_low_s8(w), vget_low_s8(a));
    s->h23 = vmlal_high_s8(s->h23, w, a);
}

EA_ARM_INLINE void iacc_quad(struct iacc *s, int8x16_t w0, int8x16_t w1, int8x16_t w2, int8x16_t w3,
                             int8x16_t a, bool wide)
{
    const int32x4_t a32 = vreinterpretq_s32_s8(a);
    iacc_step(s, w0, vdupq_laneq_s32(a32, 0));
    iacc_step(s, w1, vdupq_laneq_s32(a32, 1));
    if (wide) /* two products of up to 128 * 127 fill an int16 lane */
        iacc_widen(s);
    iacc_step(s, w2, vdupq_laneq_s32(a32, 2));
    iacc_step(s, w3, vdupq_laneq_s32(a32, 3));
    if (wide)
        iacc_widen(s);
}

EA_ARM_INLINE int32x4_t iacc_sum(const struct iacc *s)
{
    const int32x4_t lo = vpadalq_s16(s->w01, s->h01), hi = vpadalq_s16(s->w23, s->h23);
    return vpaddq_s32(lo, hi); /* [r0 r0 r1 r1] [r2 r2 r3 r3] -> [r0 r1 r2 r3] */
}
#endif

/* ---- shared primitives ------------------------------------------------- */

EA_ARM_INLINE float fp16_scalar(const void *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* out[u] lane r = bytes off + 4u .. off + 4u + 3 of row r (u = 0..3). */
EA_ARM_INLINE void transpose_16(const uint8_t *const rows[4], size_t off, uint8x16_t out[4])
{
    const uint32x4_t r0 = vreinterpretq_u32_u8(vld1q_u8(rows[0] + off));
    const uint32x4_t r1 = vreinterpretq_u32_u8(vld1q_u8(rows[1] + off));
    const uint32x4_t r2 = vreinterpretq_u32_u8(vld1q_u8(rows[2] + off));
    const uint32x4_t r3 = vreinterpretq_u32_u8(vld1q_u8(rows[3] + off));
    const uint64x2_t t0 = vreinterpretq_u64_u32(vtrn1q_u32(r0, r1)); /* words 0, 2 of rows 0, 1 */
    const uint64x2_t t1 = vreinterpretq_u64_u32(vtrn2q_u32(r0, r1)); /* words 1, 3 */
    const uint64x2_t t2 = vreinterpretq_u64_u32(vtrn1q_u32(r2, r3));
    const uint64x2_t t3 = vreinterpretq_u64_u32(vtrn2q_u32(r2, r3));
    out[0] = vreinterpretq_u8_u64(vtrn1q_u64(t0, t2));
    out[1] = vreinterpretq_u8_u64(vtrn1q_u64(t1, t3));
    out[2] = vreinterpretq_u8_u64(vtrn2q_u64(t0, t2));
    out[3] = vreinterpretq_u8_u64(vtrn2q_u64(t1, t3));
}

/* The same for 32 bytes: out[0..7]. */
EA_ARM_INLINE void transpose_32(const uint8_t *const rows[4], size_t off, uint8x16_t out[8])
{
    transpose_16(rows, off, out);
    transpose_16(rows, off + 16, out + 4);
}

/* Lane r = the 4 bytes at rows[r] + off, as a little-endian word. */
EA_ARM_INLINE uint32x4_t gather_u32(const uint8_t *const rows[4], size_t off)
{
    uint32_t v[4];
    for (int r = 0; r < 4; r++)
        memcpy(&v[r], rows[r] + off, 4);
    return vld1q_u32(v);
}

/* Lane r = the half float at rows[r] + off, as float. */
EA_ARM_INLINE float32x4_t gather_fp16(const uint8_t *const rows[4], size_t off)
{
    uint16_t h[4];
    for (int r = 0; r < 4; r++)
        memcpy(&h[r], rows[r] + off, 2);
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)));
}

/* Bits shift.. of each 32-bit lane under mask. */
EA_ARM_INLINE uint32x4_t field32(uint32x4_t v, int shift, uint32_t mask)
{
    return vandq_u32(vshlq_u32(v, vdupq_n_s32(-shift)), vdupq_n_u32(mask));
}

/* Byte b (0..3) of each 32-bit lane, zero-extended (tbl writes 0 for index
 * 255) or sign-extended. */
EA_ARM_INLINE uint32x4_t ubyte32(uint8x16_t v, int b)
{
    const uint32x4_t idx = vorrq_u32(vdupq_n_u32(0xFFFFFF00u), vaddq_u32(vdupq_n_u32((uint32_t)b),
                                                                        (uint32x4_t){0, 4, 8, 12}));
    return vreinterpretq_u32_u8(vqtbl1q_u8(v, vreinterpretq_u8_u32(idx)));
}

EA_ARM_INLINE int32x4_t sbyte32(uint8x16_t v, int b)
{
    return vshrq_n_s32(vshlq_n_s32(vreinterpretq_s32_u32(ubyte32(v, b)), 24), 24);
}

/* Bytes of v shifted by n bits (left for n > 0, right for n < 0), masked. */
EA_ARM_INLINE uint8x16_t shift_mask8(uint8x16_t v, int n, uint8_t mask)
{
    return vandq_u8(vshlq_u8(v, vdupq_n_s8((int8_t)n)), vdupq_n_u8(mask));
}

/* Bytes of value `set` where bit b of the byte of v is set, else 0. */
EA_ARM_INLINE uint8x16_t bit_to8(uint8x16_t v, int b, uint8_t set)
{
    return vandq_u8(vtstq_u8(v, vdupq_n_u8((uint8_t)(1u << b))), vdupq_n_u8(set));
}

/* Stores (or adds to, after the first segment of k) the outputs of rows
 * row0 .. row0 + n - 1 for one activation row. */
EA_ARM_INLINE void store_rows(float *dst, float32x4_t v, int n, bool accumulate)
{
    if (n == 4) {
        if (accumulate)
            v = vaddq_f32(v, vld1q_f32(dst));
        vst1q_f32(dst, v);
        return;
    }
    float tmp[4];
    vst1q_f32(tmp, v);
    for (int i = 0; i < n; i++)
        dst[i] = accumulate ? dst[i] + tmp[i] : tmp[i];
}

/* Rows of the tile starting at i0; missing rows repeat the last one. */
EA_ARM_INLINE int tile_rows(const void *w, size_t w_stride, int64_t nr, int64_t i0, const uint8_t *rows[4])
{
    const int n = (int)(nr - i0 < 4 ? nr - i0 : 4);
    for (int i = 0; i < 4; i++)
        rows[i] = (const uint8_t *)w + (size_t)(i0 + (i < n ? i : n - 1)) * w_stride;
    return n;
}

/* Nothing to compute: no outputs, or k = 0 where every dot product is 0
 * (the loops below would write nothing). */
EA_ARM_INLINE bool trivial_gemm(int64_t k, int64_t nr, int64_t nc, float *s, size_t s_stride)
{
    if (nr <= 0 || nc <= 0)
        return true;
    if (k > 0)
        return false;
    for (int64_t j = 0; j < nc; j++)
        for (int64_t i = 0; i < nr; i++)
            s[(size_t)j * s_stride + (size_t)i] = 0;
    return true;
}

/* ---- 32-value formats -------------------------------------------------- */

enum legacy_kind { L_Q4_0, L_Q4_1, L_Q5_0, L_Q5_1, L_Q8_0 };

/* 4 weight rows x one block: 8 level vectors (values 4u..4u+3 of each row)
 * and the rows' d (and m). */
struct legacy_tile {
    _Alignas(16) int8_t w[8][16];
    _Alignas(16) float d[4];
    _Alignas(16) float m[4];
};

EA_ARM_INLINE size_t legacy_wsize(enum legacy_kind kind)
{
    return kind == L_Q4_0   ? sizeof(struct ea_blk_q4_0)
           : kind == L_Q4_1 ? sizeof(struct ea_blk_q4_1)
           : kind == L_Q5_0 ? sizeof(struct ea_blk_q5_0)
           : kind == L_Q5_1 ? sizeof(struct ea_blk_q5_1)
                            : sizeof(struct ea_blk_q8_0);
}

EA_ARM_INLINE bool legacy_q8_1_act(enum legacy_kind kind) { return kind == L_Q4_1 || kind == L_Q5_1; }

/* Fifth bits of level vector v of Q5_0/Q5_1: byte i of lane r is 16 when
 * bit 4v + i of row r's qh word is set. The byte holding those bits (v / 2)
 * is spread over its lane by tbl, then each byte tests its own bit. */
EA_ARM_INLINE uint8x16_t q5_fifth_bits(uint32x4_t qh, int v)
{
    const uint8x16_t idx = vaddq_u8(vdupq_n_u8((uint8_t)(v / 2)),
                                    (uint8x16_t){0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12});
    const uint8x16_t bits = vshlq_u8((uint8x16_t){1, 2, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8},
                                     vdupq_n_s8((int8_t)(4 * (v % 2))));
    const uint8x16_t bytes = vqtbl1q_u8(vreinterpretq_u8_u32(qh), idx);
    return vandq_u8(vtstq_u8(bytes, bits), vdupq_n_u8(16));
}

/* Unpacks blocks blk0 .. blk0 + nblk - 1 of 4 rows into tile[0 .. nblk-1]. */
EA_ARM_INLINE void legacy_unpack(enum legacy_kind kind, const uint8_t *const rows[4], int64_t blk0, int nblk,
                                 struct legacy_tile *tile)
{
    const size_t bs = legacy_wsize(kind);
    const uint8x16_t low4 = vdupq_n_u8(15);
    for (int b = 0; b < nblk; b++) {
        const uint8_t *bp[4];
        uint8x16_t lv[8], t[4];
        for (int r = 0; r < 4; r++)
            bp[r] = rows[r] + (size_t)(blk0 + b) * bs;
        switch (kind) {
        case L_Q4_0:
        case L_Q4_1:
        case L_Q5_0:
        case L_Q5_1: {
            const size_t qs = kind == L_Q4_0   ? offsetof(struct ea_blk_q4_0, qs)
                              : kind == L_Q4_1 ? offsetof(struct ea_blk_q4_1, qs)
                              : kind == L_Q5_0 ? offsetof(struct ea_blk_q5_0, qs)
                                               : offsetof(struct ea_blk_q5_1, qs);
            transpose_16(bp, qs, t);
            for (int u = 0; u < 4; u++) { /* qs[j]: value j low, value j + 16 high */
                lv[u] = vandq_u8(t[u], low4);
                lv[u + 4] = vshrq_n_u8(t[u], 4);
            }
            if (kind == L_Q5_0 || kind == L_Q5_1) {
                const uint32x4_t qh = gather_u32(bp, kind == L_Q5_0 ? offsetof(struct ea_blk_q5_0, qh)
                                                                    : offsetof(struct ea_blk_q5_1, qh));
                for (int v = 0; v < 8; v++)
                    lv[v] = vorrq_u8(lv[v], q5_fifth_bits(qh, v));
            }
            if (kind == L_Q4_0 || kind == L_Q5_0) {
                const uint8x16_t off = vdupq_n_u8(kind == L_Q4_0 ? 8 : 16);
                for (int v = 0; v < 8; v++)
                    lv[v] = vsubq_u8(lv[v], off); /* wraps to the signed level */
            }
            break;
        }
        default:
            transpose_32(bp, offsetof(struct ea_blk_q8_0, qs), lv);
            break;
        }
        for (int v = 0; v < 8; v++)
            vst1q_s8(tile[b].w[v], vreinterpretq_s8_u8(lv[v]));
        vst1q_f32(tile[b].d, gather_fp16(bp, 0)); /* d leads every block */
        if (legacy_q8_1_act(kind))
            vst1q_f32(tile[b].m, gather_fp16(bp, 2));
    }
}

/* acc[c] += the 4 row dot products of block b with activation row c. */
EA_ARM_INLINE void legacy_block(enum legacy_kind kind, int C, const struct legacy_tile *t, int b,
                                const uint8_t *const x[], float32x4_t acc[])
{
    const size_t xb = legacy_q8_1_act(kind) ? sizeof(struct ea_blk_q8_1) : sizeof(struct ea_blk_q8_0);
    const size_t qoff = xb - EA_QK;
    struct iacc ia[QCOLS];
    for (int c = 0; c < C; c++)
        iacc_zero(&ia[c]);
    for (int h = 0; h < 2; h++) {
        const int8x16_t w0 = vld1q_s8(t->w[4 * h]), w1 = vld1q_s8(t->w[4 * h + 1]);
        const int8x16_t w2 = vld1q_s8(t->w[4 * h + 2]), w3 = vld1q_s8(t->w[4 * h + 3]);
        for (int c = 0; c < C; c++)
            iacc_quad(&ia[c], w0, w1, w2, w3, vld1q_s8((const int8_t *)(x[c] + (size_t)b * xb + qoff + 16 * h)),
                      kind == L_Q8_0);
    }
    const float32x4_t d = vld1q_f32(t->d);
    for (int c = 0; c < C; c++) {
        const uint8_t *xblk = x[c] + (size_t)b * xb;
        acc[c] = vfmaq_f32(acc[c], vcvtq_f32_s32(iacc_sum(&ia[c])), vmulq_n_f32(d, fp16_scalar(xblk)));
        if (legacy_q8_1_act(kind))
            acc[c] = vfmaq_n_f32(acc[c], vld1q_f32(t->m), fp16_scalar(xblk + 2));
    }
}

/* out[c] = the 4 row dot products with activation row c over nblk blocks;
 * even and odd blocks go to separate accumulators (two float chains). */
EA_ARM_INLINE void legacy_micro(enum legacy_kind kind, int C, const struct legacy_tile *tile, int nblk,
                                const uint8_t *const x[], float32x4_t out[])
{
    float32x4_t acc0[QCOLS], acc1[QCOLS];
    for (int c = 0; c < C; c++)
        acc0[c] = acc1[c] = vdupq_n_f32(0);
    int b = 0;
    for (; b + 2 <= nblk; b += 2) {
        legacy_block(kind, C, &tile[b], b, x, acc0);
        legacy_block(kind, C, &tile[b + 1], b + 1, x, acc1);
    }
    if (b < nblk)
        legacy_block(kind, C, &tile[b], b, x, acc0);
    for (int c = 0; c < C; c++)
        out[c] = vaddq_f32(acc0[c], acc1[c]);
}

/* C activation rows j .. j + C - 1 against the unpacked tile. */
EA_ARM_INLINE void legacy_cols(enum legacy_kind kind, int C, const struct legacy_tile *tile, int nblk,
                               int64_t blk0, int64_t j, int n, int64_t i0, const void *x, size_t x_stride,
                               float *s, size_t s_stride, bool accumulate)
{
    const size_t xb = legacy_q8_1_act(kind) ? sizeof(struct ea_blk_q8_1) : sizeof(struct ea_blk_q8_0);
    const uint8_t *xp[QCOLS];
    float32x4_t out[QCOLS];
    for (int c = 0; c < C; c++)
        xp[c] = (const uint8_t *)x + (size_t)(j + c) * x_stride + (size_t)blk0 * xb;
    legacy_micro(kind, C, tile, nblk, xp, out);
    for (int c = 0; c < C; c++)
        store_rows(s + (size_t)(j + c) * s_stride + i0, out[c], n, accumulate);
}

/* One row tile (rows i0 .. i0 + n - 1) x one segment of k (blocks blk0 ..
 * blk0 + nblk - 1) x activation rows j0 .. j0 + jn - 1. */
EA_ARM_INLINE void legacy_tile_pass(enum legacy_kind kind, struct legacy_tile *tile, const uint8_t *const rows[4],
                                    int n, int64_t i0, int64_t blk0, int nblk, int64_t j0, int64_t jn,
                                    const void *x, size_t x_stride, float *s, size_t s_stride, bool accumulate)
{
    legacy_unpack(kind, rows, blk0, nblk, tile);
    int64_t j = j0;
    for (; j + QCOLS <= j0 + jn; j += QCOLS)
        legacy_cols(kind, QCOLS, tile, nblk, blk0, j, n, i0, x, x_stride, s, s_stride, accumulate);
    switch (j0 + jn - j) {
#if QCOLS > 3
    case 3:
        legacy_cols(kind, 3, tile, nblk, blk0, j, n, i0, x, x_stride, s, s_stride, accumulate);
        break;
    case 2:
        legacy_cols(kind, 2, tile, nblk, blk0, j, n, i0, x, x_stride, s, s_stride, accumulate);
        break;
#endif
    case 1:
        legacy_cols(kind, 1, tile, nblk, blk0, j, n, i0, x, x_stride, s, s_stride, accumulate);
        break;
    default:
        break;
    }
}

/* Two loop orders. With few activation rows (decode, small batches) each
 * row tile runs through all of k before the next, so the weights stream
 * from memory in address order and the few activation rows stay in cache.
 * With many (prefill) the segment of k is the outer loop: the segment of up
 * to COLBLK activation rows stays in L1/L2 while every row tile uses it.
 * Both compute each output element the same way. */
EA_ARM_INLINE void gemm_legacy(enum legacy_kind kind, int64_t k, int64_t nr, int64_t nc, const void *w,
                               size_t w_stride, const void *x, size_t x_stride, float *s, size_t s_stride)
{
    struct legacy_tile tile[EA_ARM_SEG / EA_QK];
    const uint8_t *rows[4];
    if (trivial_gemm(k, nr, nc, s, s_stride))
        return;
    if (nc <= EA_ARM_FEW_COLS) {
        for (int64_t i0 = 0; i0 < nr; i0 += 4) {
            const int n = tile_rows(w, w_stride, nr, i0, rows);
            for (int64_t k0 = 0; k0 < k; k0 += EA_ARM_SEG) {
                const int nblk = (int)((k - k0 < EA_ARM_SEG ? k - k0 : EA_ARM_SEG) / EA_QK);
                legacy_tile_pass(kind, tile, rows, n, i0, k0 / EA_QK, nblk, 0, nc, x, x_stride, s, s_stride,
                                 k0 > 0);
            }
        }
        return;
    }
    for (int64_t k0 = 0; k0 < k; k0 += EA_ARM_SEG) {
        const int nblk = (int)((k - k0 < EA_ARM_SEG ? k - k0 : EA_ARM_SEG) / EA_QK);
        for (int64_t j0 = 0; j0 < nc; j0 += COLBLK) {
            const int64_t jn = nc - j0 < COLBLK ? nc - j0 : COLBLK;
            for (int64_t i0 = 0; i0 < nr; i0 += 4) {
                const int n = tile_rows(w, w_stride, nr, i0, rows);
                legacy_tile_pass(kind, tile, rows, n, i0, k0 / EA_QK, nblk, j0, jn, x, x_stride, s, s_stride,
                                 k0 > 0);
            }
        }
    }
}

/* ---- K-quants ---------------------------------------------------------- */

enum k_kind { K_Q2, K_Q3, K_Q4, K_Q5, K_Q6 };

/* 4 weight rows x one super-block. Level vector v holds values 4v..4v+3;
 * sc[g] the rows' integer scale of group g (16 values, or 32 for
 * Q4_K/Q5_K, whose 8 groups use sc[0..7]); mins[g] what multiplies the
 * activation sum of group g: the min (Q2_K/Q4_K/Q5_K, subtracted in float
 * with dmin) or the level offset times the scale (Q3_K/Q6_K, subtracted in
 * integers). */
struct k_tile {
    _Alignas(16) int8_t w[64][16];
    _Alignas(16) int32_t sc[16][4];
    _Alignas(16) int16_t mins[16][4];
    _Alignas(16) float d[4];
    _Alignas(16) float dmin[4];
};

EA_ARM_INLINE size_t k_wsize(enum k_kind kind)
{
    return kind == K_Q2   ? sizeof(struct ea_blk_q2_k)
           : kind == K_Q3 ? sizeof(struct ea_blk_q3_k)
           : kind == K_Q4 ? sizeof(struct ea_blk_q4_k)
           : kind == K_Q5 ? sizeof(struct ea_blk_q5_k)
                          : sizeof(struct ea_blk_q6_k);
}

EA_ARM_INLINE int k_ngroups(enum k_kind kind) { return kind == K_Q4 || kind == K_Q5 ? 8 : 16; }

EA_ARM_INLINE bool k_has_min(enum k_kind kind) { return kind == K_Q2 || kind == K_Q4 || kind == K_Q5; }

EA_ARM_INLINE void put_w(struct k_tile *t, int v, uint8x16_t w) { vst1q_s8(t->w[v], vreinterpretq_s8_u8(w)); }

/* Levels of one super-block of 4 rows (unsigned; the offsets of Q3_K and
 * Q6_K are taken out through mins). A run of 32 packed bytes transposes to
 * 8 vectors T[u] (bytes 4u..4u+3 of each row); with the layouts of
 * quant_blocks.h the field of T[u] at shift 2s (or nibble n, or bit b)
 * holds values 32s + 4u .. of that run's 128 (64, 32) values. */
EA_ARM_INLINE void k_levels(enum k_kind kind, const uint8_t *const bp[4], struct k_tile *t)
{
    uint8x16_t a[8], h[8];
    switch (kind) {
    case K_Q2:
    case K_Q3:
        if (kind == K_Q3)
            transpose_32(bp, offsetof(struct ea_blk_q3_k, hmask), h);
        for (int half = 0; half < 2; half++) {
            transpose_32(bp, (kind == K_Q2 ? offsetof(struct ea_blk_q2_k, qs) : offsetof(struct ea_blk_q3_k, qs)) +
                                 32 * (size_t)half,
                         a);
            for (int sh = 0; sh < 4; sh++)
                for (int u = 0; u < 8; u++) {
                    uint8x16_t l = shift_mask8(a[u], -2 * sh, 3);
                    if (kind == K_Q3) /* high bit of value 32b + l: bit b of hmask[l] */
                        l = vorrq_u8(l, bit_to8(h[u], 4 * half + sh, 4));
                    put_w(t, 32 * half + 8 * sh + u, l);
                }
        }
        break;
    case K_Q4:
    case K_Q5: {
        const size_t qs = kind == K_Q4 ? offsetof(struct ea_blk_q4_k, qs) : offsetof(struct ea_blk_q5_k, qs);
        if (kind == K_Q5)
            transpose_32(bp, offsetof(struct ea_blk_q5_k, qh), h);
        for (int p = 0; p < 4; p++) {
            transpose_32(bp, qs + 32 * (size_t)p, a);
            for (int u = 0; u < 8; u++) {
                uint8x16_t lo = vandq_u8(a[u], vdupq_n_u8(15)), hi = vshrq_n_u8(a[u], 4);
                if (kind == K_Q5) {
                    lo = vorrq_u8(lo, bit_to8(h[u], 2 * p, 16));
                    hi = vorrq_u8(hi, bit_to8(h[u], 2 * p + 1, 16));
                }
                put_w(t, 16 * p + u, lo);
                put_w(t, 16 * p + 8 + u, hi);
            }
        }
        break;
    }
    default:
        for (int half = 0; half < 2; half++) {
            uint8x16_t b[8];
            transpose_32(bp, offsetof(struct ea_blk_q6_k, ql) + 64 * (size_t)half, a);
            transpose_32(bp, offsetof(struct ea_blk_q6_k, ql) + 64 * (size_t)half + 32, b);
            transpose_32(bp, offsetof(struct ea_blk_q6_k, qh) + 32 * (size_t)half, h);
            for (int sh = 0; sh < 4; sh++)
                for (int u = 0; u < 8; u++) {
                    const uint8x16_t src = (sh & 1) ? b[u] : a[u];
                    const uint8x16_t lo = (sh >> 1) ? vshrq_n_u8(src, 4) : vandq_u8(src, vdupq_n_u8(15));
                    const uint8x16_t hi = shift_mask8(h[u], 4 - 2 * sh, 0x30); /* bits 2sh.. -> 4..5 */
                    put_w(t, 32 * half + 8 * sh + u, vorrq_u8(lo, hi));
                }
        }
        break;
    }
}

EA_ARM_INLINE void put_sc(struct k_tile *t, int g, int32x4_t sc, int32x4_t min)
{
    vst1q_s32(t->sc[g], sc);
    vst1_s16(t->mins[g], vmovn_s32(min));
}

/* Scales of one super-block of 4 rows, lane r = row r: the packed scale
 * bytes are gathered (or transposed) as 32-bit lanes and decoded for all
 * rows at once, with the bit layouts of ea__k4_scale_min / ea__q3k_scales. */
EA_ARM_INLINE void k_scales(enum k_kind kind, const uint8_t *const bp[4], struct k_tile *t)
{
    uint8x16_t v[4];
    uint32x4_t g3[3];
    switch (kind) {
    case K_Q2: /* byte g: scale in the low nibble, min in the high one */
        transpose_16(bp, offsetof(struct ea_blk_q2_k, scales), v);
        for (int g = 0; g < 16; g++) {
            const int32x4_t b = vreinterpretq_s32_u32(ubyte32(v[g / 4], g % 4));
            put_sc(t, g, vandq_s32(b, vdupq_n_s32(15)), vshrq_n_s32(b, 4));
        }
        vst1q_f32(t->d, gather_fp16(bp, offsetof(struct ea_blk_q2_k, d)));
        vst1q_f32(t->dmin, gather_fp16(bp, offsetof(struct ea_blk_q2_k, dmin)));
        break;
    case K_Q3:
        for (int q = 0; q < 3; q++)
            g3[q] = gather_u32(bp, offsetof(struct ea_blk_q3_k, scales) + 4 * (size_t)q);
        for (int j = 0; j < 16; j++) {
            const uint32x4_t lo = field32(g3[(j % 8) / 4], 8 * (j % 4) + 4 * (j / 8), 15);
            const uint32x4_t hi = field32(g3[2], 8 * (j % 4) + 2 * (j / 4), 3);
            const int32x4_t sc = vsubq_s32(vreinterpretq_s32_u32(vorrq_u32(lo, vshlq_n_u32(hi, 4))), vdupq_n_s32(32));
            put_sc(t, j, sc, vshlq_n_s32(sc, 2)); /* offset 4 * scale */
        }
        vst1q_f32(t->d, gather_fp16(bp, offsetof(struct ea_blk_q3_k, d)));
        vst1q_f32(t->dmin, vdupq_n_f32(0));
        break;
    case K_Q4:
    case K_Q5: /* the scale bytes sit at the same place in both structs */
        for (int q = 0; q < 3; q++)
            g3[q] = gather_u32(bp, offsetof(struct ea_blk_q4_k, scales) + 4 * (size_t)q);
        for (int j = 0; j < 8; j++) {
            uint32x4_t sc, m;
            if (j < 4) {
                sc = field32(g3[0], 8 * j, 63);
                m = field32(g3[1], 8 * j, 63);
            } else {
                const int i = j - 4;
                sc = vorrq_u32(field32(g3[2], 8 * i, 15), vshlq_n_u32(field32(g3[0], 8 * i + 6, 3), 4));
                m = vorrq_u32(field32(g3[2], 8 * i + 4, 15), vshlq_n_u32(field32(g3[1], 8 * i + 6, 3), 4));
            }
            put_sc(t, j, vreinterpretq_s32_u32(sc), vreinterpretq_s32_u32(m));
        }
        vst1q_f32(t->d, gather_fp16(bp, 0)); /* d, dmin lead both structs */
        vst1q_f32(t->dmin, gather_fp16(bp, 2));
        break;
    default:
        transpose_16(bp, offsetof(struct ea_blk_q6_k, scales), v);
        for (int g = 0; g < 16; g++) {
            const int32x4_t sc = sbyte32(v[g / 4], g % 4);
            put_sc(t, g, sc, vshlq_n_s32(sc, 5)); /* offset 32 * scale */
        }
        vst1q_f32(t->d, gather_fp16(bp, offsetof(struct ea_blk_q6_k, d)));
        vst1q_f32(t->dmin, vdupq_n_f32(0));
        break;
    }
}

EA_ARM_INLINE void k_unpack(enum k_kind kind, const uint8_t *const rows[4], int64_t sb0, int nsb, struct k_tile *tile)
{
    const size_t bs = k_wsize(kind);
    for (int b = 0; b < nsb; b++) {
        const uint8_t *bp[4];
        for (int r = 0; r < 4; r++)
            bp[r] = rows[r] + (size_t)(sb0 + b) * bs;
        k_levels(kind, bp, &tile[b]);
        k_scales(kind, bp, &tile[b]);
    }
}

/* Lane r = sum over groups of mins[g][r] * (activation sum of group g). */
EA_ARM_INLINE int32x4_t k_min_terms(enum k_kind kind, const struct k_tile *t, const int16_t bsums[16])
{
    const int16x8_t b0 = vld1q_s16(bsums), b1 = vld1q_s16(bsums + 8);
    int32x4_t ms = vdupq_n_s32(0);
    if (k_ngroups(kind) == 8) { /* groups of 32: sums of pairs of 16 */
        const int16x8_t p = vpaddq_s16(b0, b1);
        ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[0]), p, 0);
        ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[1]), p, 1);
        ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[2]), p, 2);
        ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[3]), p, 3);
        ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[4]), p, 4);
        ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[5]), p, 5);
        ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[6]), p, 6);
        ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[7]), p, 7);
        return ms;
    }
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[0]), b0, 0);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[1]), b0, 1);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[2]), b0, 2);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[3]), b0, 3);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[4]), b0, 4);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[5]), b0, 5);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[6]), b0, 6);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[7]), b0, 7);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[8]), b1, 0);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[9]), b1, 1);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[10]), b1, 2);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[11]), b1, 3);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[12]), b1, 4);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[13]), b1, 5);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[14]), b1, 6);
    ms = vmlal_laneq_s16(ms, vld1_s16(t->mins[15]), b1, 7);
    return ms;
}

/* out[c] = the 4 row dot products with activation row c over nsb
 * super-blocks. */
EA_ARM_INLINE void k_micro(enum k_kind kind, int C, const struct k_tile *tile, int nsb,
                           const struct ea_blk_q8_k *const x[], float32x4_t out[])
{
    const int ngroups = k_ngroups(kind), quads = 16 / ngroups; /* 16-value quads per group */
    float32x4_t acc[QCOLS];
    for (int c = 0; c < C; c++)
        acc[c] = vdupq_n_f32(0);
    for (int b = 0; b < nsb; b++) {
        const struct k_tile *t = &tile[b];
        int32x4_t isum[QCOLS];
        for (int c = 0; c < C; c++)
            isum[c] = vdupq_n_s32(0);
        for (int g = 0; g < ngroups; g++) {
            struct iacc ia[QCOLS];
            for (int c = 0; c < C; c++)
                iacc_zero(&ia[c]);
            for (int q = 0; q < quads; q++) {
                const int v0 = 4 * (g * quads + q);
                const int8x16_t w0 = vld1q_s8(t->w[v0]), w1 = vld1q_s8(t->w[v0 + 1]);
                const int8x16_t w2 = vld1q_s8(t->w[v0 + 2]), w3 = vld1q_s8(t->w[v0 + 3]);
                for (int c = 0; c < C; c++)
                    iacc_quad(&ia[c], w0, w1, w2, w3, vld1q_s8(x[c][b].qs + 4 * v0), false);
            }
            const int32x4_t sc = vld1q_s32(t->sc[g]);
            for (int c = 0; c < C; c++)
                isum[c] = vmlaq_s32(isum[c], iacc_sum(&ia[c]), sc);
        }
        const float32x4_t d = vld1q_f32(t->d), dmin = vld1q_f32(t->dmin);
        for (int c = 0; c < C; c++) {
            const int32x4_t ms = k_min_terms(kind, t, x[c][b].bsums);
            const float dy = x[c][b].d;
            if (k_has_min(kind)) {
                acc[c] = vfmaq_f32(acc[c], vcvtq_f32_s32(isum[c]), vmulq_n_f32(d, dy));
                acc[c] = vfmsq_f32(acc[c], vcvtq_f32_s32(ms), vmulq_n_f32(dmin, dy));
            } else {
                acc[c] = vfmaq_f32(acc[c], vcvtq_f32_s32(vsubq_s32(isum[c], ms)), vmulq_n_f32(d, dy));
            }
        }
    }
    for (int c = 0; c < C; c++)
        out[c] = acc[c];
}

EA_ARM_INLINE void k_cols(enum k_kind kind, int C, const struct k_tile *tile, int nsb, int64_t sb0, int64_t j,
                          int n, int64_t i0, const void *x, size_t x_stride, float *s, size_t s_stride,
                          bool accumulate)
{
    const struct ea_blk_q8_k *xp[QCOLS];
    float32x4_t out[QCOLS];
    for (int c = 0; c < C; c++)
        xp[c] = (const struct ea_blk_q8_k *)(const void *)((const uint8_t *)x + (size_t)(j + c) * x_stride) + sb0;
    k_micro(kind, C, tile, nsb, xp, out);
    for (int c = 0; c < C; c++)
        store_rows(s + (size_t)(j + c) * s_stride + i0, out[c], n, accumulate);
}

EA_ARM_INLINE void k_tile_pass(enum k_kind kind, struct k_tile *tile, const uint8_t *const rows[4], int n,
                               int64_t i0, int64_t sb0, int nsb, int64_t j0, int64_t jn, const void *x,
                               size_t x_stride, float *s, size_t s_stride, bool accumulate)
{
    k_unpack(kind, rows, sb0, nsb, tile);
    int64_t j = j0;
    for (; j + QCOLS <= j0 + jn; j += QCOLS)
        k_cols(kind, QCOLS, tile, nsb, sb0, j, n, i0, x, x_stride, s, s_stride, accumulate);
    switch (j0 + jn - j) {
#if QCOLS > 3
    case 3:
        k_cols(kind, 3, tile, nsb, sb0, j, n, i0, x, x_stride, s, s_stride, accumulate);
        break;
    case 2:
        k_cols(kind, 2, tile, nsb, sb0, j, n, i0, x, x_stride, s, s_stride, accumulate);
        break;
#endif
    case 1:
        k_cols(kind, 1, tile, nsb, sb0, j, n, i0, x, x_stride, s, s_stride, accumulate);
        break;
    default:
        break;
    }
}

/* Loop orders as for gemm_legacy. */
EA_ARM_INLINE void gemm_k(enum k_kind kind, int64_t k, int64_t nr, int64_t nc, const void *w, size_t w_stride,
                          const void *x, size_t x_stride, float *s, size_t s_stride)
{
    struct k_tile tile[EA_ARM_SEG / EA_QK_K];
    const uint8_t *rows[4];
    if (trivial_gemm(k, nr, nc, s, s_stride))
        return;
    if (nc <= EA_ARM_FEW_COLS) {
        for (int64_t i0 = 0; i0 < nr; i0 += 4) {
            const int n = tile_rows(w, w_stride, nr, i0, rows);
            for (int64_t k0 = 0; k0 < k; k0 += EA_ARM_SEG) {
                const int nsb = (int)((k - k0 < EA_ARM_SEG ? k - k0 : EA_ARM_SEG) / EA_QK_K);
                k_tile_pass(kind, tile, rows, n, i0, k0 / EA_QK_K, nsb, 0, nc, x, x_stride, s, s_stride, k0 > 0);
            }
        }
        return;
    }
    for (int64_t k0 = 0; k0 < k; k0 += EA_ARM_SEG) {
        const int nsb = (int)((k - k0 < EA_ARM_SEG ? k - k0 : EA_ARM_SEG) / EA_QK_K);
        for (int64_t j0 = 0; j0 < nc; j0 += COLBLK) {
            const int64_t jn = nc - j0 < COLBLK ? nc - j0 : COLBLK;
            for (int64_t i0 = 0; i0 < nr; i0 += 4) {
                const int n = tile_rows(w, w_stride, nr, i0, rows);
                k_tile_pass(kind, tile, rows, n, i0, k0 / EA_QK_K, nsb, j0, jn, x, x_stride, s, s_stride,
                            k0 > 0);
            }
        }
    }
}

#define EA_ARM_GEMM(name, driver, kind)                                                              \
    static void gemm_##name(int64_t k, int64_t nr, int64_t nc, const void *w, size_t w_stride,       \
                            const void *x, size_t x_stride, float *s, size_t s_stride)               \
    {                                                                                                \
        driver(kind, k, nr, nc, w, w_stride, x, x_stride, s, s_stride);                              \
    }

EA_ARM_GEMM(q4_0, gemm_legacy, L_Q4_0)
EA_ARM_GEMM(q4_1, gemm_legacy, L_Q4_1)
EA_ARM_GEMM(q5_0, gemm_legacy, L_Q5_0)
EA_ARM_GEMM(q5_1, gemm_legacy, L_Q5_1)
EA_ARM_GEMM(q8_0, gemm_legacy, L_Q8_0)
EA_ARM_GEMM(q2_k, gemm_k, K_Q2)
EA_ARM_GEMM(q3_k, gemm_k, K_Q3)
EA_ARM_GEMM(q4_k, gemm_k, K_Q4)
EA_ARM_GEMM(q5_k, gemm_k, K_Q5)
EA_ARM_GEMM(q6_k, gemm_k, K_Q6)

/* ---- activation quantizers --------------------------------------------- */

/* Largest |x| over n values (a multiple of 16), 0 if none is larger: the
 * compare-and-select lets NaN lose every comparison, as in the generic
 * loop, so the lanes never hold NaN and the final max is exact. */
EA_ARM_INLINE float absmax_n(const float *x, int n)
{
    float32x4_t m0 = vdupq_n_f32(0), m1 = m0, m2 = m0, m3 = m0;
    for (int i = 0; i < n; i += 16) {
        const float32x4_t a0 = vabsq_f32(vld1q_f32(x + i)), a1 = vabsq_f32(vld1q_f32(x + i + 4));
        const float32x4_t a2 = vabsq_f32(vld1q_f32(x + i + 8)), a3 = vabsq_f32(vld1q_f32(x + i + 12));
        m0 = vbslq_f32(vcgtq_f32(a0, m0), a0, m0);
        m1 = vbslq_f32(vcgtq_f32(a1, m1), a1, m1);
        m2 = vbslq_f32(vcgtq_f32(a2, m2), a2, m2);
        m3 = vbslq_f32(vcgtq_f32(a3, m3), a3, m3);
    }
    return vmaxvq_f32(vmaxq_f32(vmaxq_f32(m0, m1), vmaxq_f32(m2, m3)));
}

/* The generic round_even on 4 lanes: add 1.5 * 2^23 and read the mantissa.
 * Equal to round-half-even for |f| < 2^22 and defined for any input (NaN
 * gives the generic's integer too). With the scales of the quantizers
 * |f| <= 127 * (1 + 2^-23)^2 < 127.5, so the result never reaches -128. */
EA_ARM_INLINE int32x4_t round_even_4(float32x4_t f)
{
    const uint32x4_t b = vreinterpretq_u32_f32(vaddq_f32(f, vdupq_n_f32(12582912.0f)));
    return vsubq_s32(vreinterpretq_s32_u32(vandq_u32(b, vdupq_n_u32(0x007FFFFF))), vdupq_n_s32(0x00400000));
}

/* Rounds 32 floats times scale into saturated int8 (the generic clamp);
 * returns the sum of the stored quants. */
EA_ARM_INLINE int round_32(const float *x, float scale, int8_t *out)
{
    int16x8_t h[4];
    for (int i = 0; i < 4; i++) {
        const int32x4_t q0 = round_even_4(vmulq_n_f32(vld1q_f32(x + 8 * i), scale));
        const int32x4_t q1 = round_even_4(vmulq_n_f32(vld1q_f32(x + 8 * i + 4), scale));
        h[i] = vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1));
    }
    const int8x16_t b0 = vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1]));
    const int8x16_t b1 = vcombine_s8(vqmovn_s16(h[2]), vqmovn_s16(h[3]));
    vst1q_s8(out, b0);
    vst1q_s8(out + 16, b1);
    return vaddlvq_s8(b0) + vaddlvq_s8(b1);
}

static void act_q8_0(const float *x, void *y, int64_t k)
{
    struct ea_blk_q8_0 *b = y;
    for (int64_t i = 0; i < k / EA_QK; i++, x += EA_QK) {
        const float amax = absmax_n(x, EA_QK);
        const float id = amax != 0 ? 127.0f / amax : 0.0f;
        b[i].d = ea_f32_to_fp16(amax / 127.0f);
        round_32(x, id, b[i].qs);
    }
}

static void act_q8_1(const float *x, void *y, int64_t k)
{
    struct ea_blk_q8_1 *b = y;
    for (int64_t i = 0; i < k / EA_QK; i++, x += EA_QK) {
        const float amax = absmax_n(x, EA_QK);
        const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        b[i].d = ea_f32_to_fp16(d);
        b[i].s = ea_f32_to_fp16(d * (float)round_32(x, id, b[i].qs));
    }
}

static void act_q8_k(const float *x, void *y, int64_t k)
{
    struct ea_blk_q8_k *b = y;
    for (int64_t i = 0; i < k / EA_QK_K; i++, x += EA_QK_K) {
        memset(&b[i], 0, sizeof b[i]);
        const float amax = absmax_n(x, EA_QK_K);
        if (amax == 0)
            continue;
        int at = 0; /* the first value of largest magnitude gives the sign */
        while (at < EA_QK_K - 1 && !(x[at] == amax || x[at] == -amax))
            at++;
        const float is = -127.0f / x[at];
        for (int j = 0; j < EA_QK_K; j += 32)
            round_32(x + j, is, b[i].qs + j);
        for (int g = 0; g < 16; g++)
            b[i].bsums[g] = vaddlvq_s8(vld1q_s8(b[i].qs + 16 * g));
        b[i].d = 1 / is;
    }
}

/* ---- conversions (exactly the generic results) ------------------------- */

/* f32 -> f16 rounding to nearest even (fcvtn with the default FPCR), and
 * NaNs as ea_f32_to_fp16 writes them: sign | 0x7E00. */
EA_ARM_INLINE uint16x4_t f32_to_f16_4(float32x4_t v)
{
    const uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(v));
    const uint16x4_t nan = vmovn_u32(vmvnq_u32(vceqq_f32(v, v)));
    const uint16x4_t qnan = vorr_u16(vand_u16(vshrn_n_u32(vreinterpretq_u32_f32(v), 16), vdup_n_u16(0x8000)),
                                     vdup_n_u16(0x7E00));
    return vbsl_u16(nan, qnan, h);
}

/* f16 -> f32 (fcvtl is exact), except that signalling NaNs keep their bits
 * as in ea_fp16_to_f32 instead of being quietened. */
EA_ARM_INLINE float32x4_t f16_to_f32_4(uint16x4_t h)
{
    const float32x4_t f = vcvt_f32_f16(vreinterpret_f16_u16(h));
    const uint32x4_t w = vmovl_u16(h);
    const uint32x4_t nan = vcgtq_u32(vandq_u32(w, vdupq_n_u32(0x7FFF)), vdupq_n_u32(0x7C00));
    const uint32x4_t bits = vorrq_u32(vorrq_u32(vshlq_n_u32(vandq_u32(w, vdupq_n_u32(0x8000)), 16),
                                                vdupq_n_u32(0x7F800000)),
                                      vshlq_n_u32(vandq_u32(w, vdupq_n_u32(0x3FF)), 13));
    return vbslq_f32(nan, vreinterpretq_f32_u32(bits), f);
}

/* f32 -> bf16 as ea_f32_to_bf16: round to nearest even on the bits, NaNs
 * truncated with the quiet bit set. */
EA_ARM_INLINE uint16x4_t f32_to_bf16_4(float32x4_t v)
{
    const uint32x4_t x = vreinterpretq_u32_f32(v);
    const uint32x4_t lsb = vandq_u32(vshrq_n_u32(x, 16), vdupq_n_u32(1));
    const uint32x4_t rounded = vaddq_u32(x, vaddq_u32(vdupq_n_u32(0x7FFF), lsb));
    const uint32x4_t nan = vcgtq_u32(vandq_u32(x, vdupq_n_u32(0x7FFFFFFF)), vdupq_n_u32(0x7F800000));
    const uint32x4_t quiet = vorrq_u32(x, vdupq_n_u32(64u << 16));
    return vshrn_n_u32(vbslq_u32(nan, quiet, rounded), 16);
}

static void act_f16(const float *x, void *y, int64_t k)
{
    uint16_t *o = y;
    int64_t i = 0;
    for (; i + 4 <= k; i += 4)
        vst1_u16(o + i, f32_to_f16_4(vld1q_f32(x + i)));
    for (; i < k; i++)
        o[i] = ea_f32_to_fp16(x[i]);
}

static void act_bf16(const float *x, void *y, int64_t k)
{
    uint16_t *o = y;
    int64_t i = 0;
    for (; i + 4 <= k; i += 4)
        vst1_u16(o + i, f32_to_bf16_4(vld1q_f32(x + i)));
    for (; i < k; i++)
        o[i] = ea_f32_to_bf16(x[i]);
}

/* ---- float matmul ------------------------------------------------------ */

enum f_kind { F_F32, F_F16, F_BF16 };

/* Values i .. i+3 of row p as floats (NaN bits may differ from generic:
 * only dot products use these). */
EA_ARM_INLINE float32x4_t fload4(enum f_kind kind, const void *p, int64_t i)
{
    switch (kind) {
    case F_F32:
        return vld1q_f32((const float *)p + i);
    case F_F16:
        return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)p + i)));
    default:
        return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)p + i), 16));
    }
}

/* Values i .. i+7 of row p: lo = i..i+3, hi = i+4..i+7. */
EA_ARM_INLINE void fload8(enum f_kind kind, const void *p, int64_t i, float32x4_t *lo, float32x4_t *hi)
{
    switch (kind) {
    case F_F32:
        *lo = vld1q_f32((const float *)p + i);
        *hi = vld1q_f32((const float *)p + i + 4);
        return;
    case F_F16: {
        const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16((const uint16_t *)p + i));
        *lo = vcvt_f32_f16(vget_low_f16(h));
        *hi = vcvt_high_f32_f16(h);
        return;
    }
    default: {
        const uint16x8_t h = vld1q_u16((const uint16_t *)p + i);
        *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
        *hi = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
        return;
    }
    }
}

EA_ARM_INLINE float fload1(enum f_kind kind, const void *p, int64_t i)
{
    switch (kind) {
    case F_F32:
        return ((const float *)p)[i];
    case F_F16:
        return ea_fp16_to_f32(((const uint16_t *)p)[i]);
    default:
        return ea_bf16_to_f32(((const uint16_t *)p)[i]);
    }
}

/* R weight rows x C activation rows: out[c*R + r] = dot(w row r, x row c).
 * Each pair has its own accumulator and the same sequence of fmla whatever
 * R and C are: 8 values per step (low half, then high half), then 4, then
 * a scalar tail added after the horizontal sum. */
EA_ARM_INLINE void float_tile(enum f_kind kind, int R, int C, int64_t k, const void *const wr[],
                              const void *const xr[], float *out)
{
    float32x4_t acc[FROWS * FCOLS]; /* [r * C + c]; fully unrolled loops keep it in registers */
#pragma GCC unroll 16
    for (int a = 0; a < R * C; a++)
        acc[a] = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        float32x4_t wl[FROWS], wh[FROWS];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            fload8(kind, wr[r], i, &wl[r], &wh[r]);
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            float32x4_t xl, xh;
            fload8(kind, xr[c], i, &xl, &xh);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r * C + c] = vfmaq_f32(vfmaq_f32(acc[r * C + c], wl[r], xl), wh[r], xh);
        }
    }
    if (i + 4 <= k) {
        float32x4_t wv[FROWS];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            wv[r] = fload4(kind, wr[r], i);
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const float32x4_t xv = fload4(kind, xr[c], i);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                acc[r * C + c] = vfmaq_f32(acc[r * C + c], wv[r], xv);
        }
        i += 4;
    }
    float sums[FROWS * FCOLS]; /* leaves acc before the tail loops index anything */
#pragma GCC unroll 16
    for (int a = 0; a < R * C; a++)
        sums[a] = vaddvq_f32(acc[a]);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            float tail = 0;
            for (int64_t t = i; t < k; t++)
                tail += fload1(kind, wr[r], t) * fload1(kind, xr[c], t);
            out[c * R + r] = sums[r * C + c] + tail;
        }
}

#include "kernels/float_tiles.h"

EA_ARM_GEMM(f32, gemm_float, F_F32)
EA_ARM_GEMM(f16, gemm_float, F_F16)
EA_ARM_GEMM(bf16, gemm_float, F_BF16)

/* ---- vector helpers ---------------------------------------------------- */

static float vec_dot_f16_f32(int64_t n, const uint16_t *a, const float *b)
{
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t lo, hi;
        fload8(F_F16, a, i, &lo, &hi);
        acc0 = vfmaq_f32(acc0, lo, vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, hi, vld1q_f32(b + i + 4));
    }
    for (; i + 4 <= n; i += 4)
        acc0 = vfmaq_f32(acc0, fload4(F_F16, a, i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; i++)
        s += ea_fp16_to_f32(a[i]) * b[i];
    return s;
}

/* y += alpha * x as a multiply then an add, like the generic loop, so the
 * result is the generic one bit for bit. */
static void vec_axpy_f16(int64_t n, float alpha, const uint16_t *x, float *y)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t lo, hi;
        fload8(F_F16, x, i, &lo, &hi);
        vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_n_f32(lo, alpha)));
        vst1q_f32(y + i + 4, vaddq_f32(vld1q_f32(y + i + 4), vmulq_n_f32(hi, alpha)));
    }
    for (; i < n; i++)
        y[i] += alpha * ea_fp16_to_f32(x[i]);
}

static void vec_f32_to_f16(const float *x, uint16_t *y, int64_t n) { act_f16(x, y, n); }

static void vec_f16_to_f32(const uint16_t *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, f16_to_f32_4(vld1_u16(x + i)));
    for (; i < n; i++)
        y[i] = ea_fp16_to_f32(x[i]);
}

static float vec_dot_f32(int64_t n, const float *a, const float *b)
{
    float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
        acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    for (; i + 4 <= n; i += 4)
        acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(acc0, acc1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void vec_axpy_f32(int64_t n, float alpha, const float *x, float *y)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_n_f32(vld1q_f32(x + i), alpha)));
    for (; i < n; i++)
        y[i] += alpha * x[i];
}

/* Attention over F16 rows (kernels.h: att_scores_f16, att_accum_f16).
 * Scores: 4 key rows at a time are converted once into floats on the stack
 * and serve every query row; each score is one f32x4 fma chain over the head
 * then a horizontal add, whatever keys or rows surround it. Accumulation:
 * 16 values of the head for up to 4 query rows stay in registers over the
 * keys; each value chunk is converted once for all of them; every output
 * adds p * v in key order, so splitting the rows or the keys into pieces
 * gives the same bits. Head sizes not a multiple of 8 (16 for accumulation)
 * or above ATT_MAX_HD take the per-row helpers. */
#define ATT_MAX_HD 256

EA_ARM_INLINE float att_dot_row(int64_t hd, const float *kf, const float *q)
{
    float32x4_t acc = vdupq_n_f32(0);
    for (int64_t d = 0; d < hd; d += 4)
        acc = vfmaq_f32(acc, vld1q_f32(kf + d), vld1q_f32(q + d));
    return vaddvq_f32(acc);
}

static void vec_att_scores_f16(int64_t hd, int g, const float *q, const uint16_t *k, size_t k_stride,
                               int64_t n, float scale, float *s, size_t s_stride)
{
    if (hd % 8 || hd > ATT_MAX_HD) {
        for (int i = 0; i < g; i++)
            for (int64_t j = 0; j < n; j++)
                s[(size_t)i * s_stride + (size_t)j] = scale * vec_dot_f16_f32(hd, k + (size_t)j * k_stride, q + i * hd);
        return;
    }
    float kf[4 * ATT_MAX_HD];
    for (int64_t j0 = 0; j0 < n; j0 += 4) {
        const int jn = n - j0 < 4 ? (int)(n - j0) : 4;
        for (int jj = 0; jj < jn; jj++) {
            const uint16_t *kr = k + (size_t)(j0 + jj) * k_stride;
            for (int64_t d = 0; d < hd; d += 8)
                fload8(F_F16, kr, d, (float32x4_t *)(void *)(kf + jj * hd + d),
                       (float32x4_t *)(void *)(kf + jj * hd + d + 4));
        }
        for (int i = 0; i < g; i++)
            for (int jj = 0; jj < jn; jj++)
                s[(size_t)i * s_stride + (size_t)(j0 + jj)] = scale * att_dot_row(hd, kf + jj * hd, q + i * hd);
    }
}

static void vec_att_accum_f16(int64_t hd, int g, const float *p, size_t p_stride, const uint16_t *v,
                              size_t v_stride, int64_t n, float *out)
{
    if (hd % 16) {
        for (int i = 0; i < g; i++)
            for (int64_t j = 0; j < n; j++) {
                const float pj = p[(size_t)i * p_stride + (size_t)j];
                const uint16_t *vr = v + (size_t)j * v_stride;
                for (int64_t d = 0; d < hd; d++)
                    out[i * hd + d] += pj * ea_fp16_to_f32(vr[d]);
            }
        return;
    }
    for (int i0 = 0; i0 < g; i0 += 4) {
        const int gn = g - i0 < 4 ? g - i0 : 4;
        for (int64_t d = 0; d < hd; d += 16) {
            float32x4_t a[4][4];
            for (int i = 0; i < gn; i++)
                for (int u = 0; u < 4; u++)
                    a[i][u] = vld1q_f32(out + (size_t)(i0 + i) * hd + d + 4 * u);
            for (int64_t j = 0; j < n; j++) {
                const uint16_t *vr = v + (size_t)j * v_stride + d;
                float32x4_t vv[4];
                fload8(F_F16, vr, 0, &vv[0], &vv[1]);
                fload8(F_F16, vr, 8, &vv[2], &vv[3]);
                for (int i = 0; i < gn; i++) {
                    const float pj = p[(size_t)(i0 + i) * p_stride + (size_t)j];
                    for (int u = 0; u < 4; u++)
                        a[i][u] = vfmaq_n_f32(a[i][u], vv[u], pj);
                }
            }
            for (int i = 0; i < gn; i++)
                for (int u = 0; u < 4; u++)
                    vst1q_f32(out + (size_t)(i0 + i) * hd + d + 4 * u, a[i][u]);
        }
    }
}

/* e^x for x in lanes: range reduction x = n ln2 + r (ln2 split in two for
 * exactness), a degree-6 polynomial for e^r, 2^n built in the exponent bits;
 * inputs clamped to [-87, 88] so 2^n stays a normal float. Relative error
 * ~1e-7 against expf. */
EA_ARM_INLINE float32x4_t exp_f32x4(float32x4_t x)
{
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.0f)), vdupq_n_f32(88.0f));
    const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t y = vdupq_n_f32(1.9875691500e-4f);
    y = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), y, r);
    y = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), y, r);
    y = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), y, r);
    y = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), y, r);
    y = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), y, r);
    y = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), y, vmulq_f32(r, r));
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(y, vreinterpretq_f32_s32(e));
}

static float vec_exp_sum(int64_t n, float *x, float shift)
{
    const float32x4_t sh = vdupq_n_f32(shift);
    float32x4_t acc = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = exp_f32x4(vsubq_f32(vld1q_f32(x + i), sh));
        vst1q_f32(x + i, v);
        acc = vaddq_f32(acc, v);
    }
    float sum = vaddvq_f32(acc);
    for (; i < n; i++) {
        x[i] = expf(x[i] - shift);
        sum += x[i];
    }
    return sum;
}

static void vec_silu_mul(int64_t n, float *g, const float *u)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t v = vld1q_f32(g + i);
        const float32x4_t d = vaddq_f32(vdupq_n_f32(1.0f), exp_f32x4(vnegq_f32(v)));
        vst1q_f32(g + i, vmulq_f32(vdivq_f32(v, d), vld1q_f32(u + i)));
    }
    for (; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* ---- installation ------------------------------------------------------ */

static void arm_install(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec)
{
    table[EA_TYPE_F32].gemm = gemm_f32;
    table[EA_TYPE_F16] = (struct ea_matmul_ops){EA_TYPE_F16, act_f16, gemm_f16};
    table[EA_TYPE_BF16] = (struct ea_matmul_ops){EA_TYPE_BF16, act_bf16, gemm_bf16};
    table[EA_TYPE_Q4_0] = (struct ea_matmul_ops){EA_TYPE_Q8_0, act_q8_0, gemm_q4_0};
    table[EA_TYPE_Q4_1] = (struct ea_matmul_ops){EA_TYPE_Q8_1, act_q8_1, gemm_q4_1};
    table[EA_TYPE_Q5_0] = (struct ea_matmul_ops){EA_TYPE_Q8_0, act_q8_0, gemm_q5_0};
    table[EA_TYPE_Q5_1] = (struct ea_matmul_ops){EA_TYPE_Q8_1, act_q8_1, gemm_q5_1};
    table[EA_TYPE_Q8_0] = (struct ea_matmul_ops){EA_TYPE_Q8_0, act_q8_0, gemm_q8_0};
    table[EA_TYPE_Q2_K] = (struct ea_matmul_ops){EA_TYPE_Q8_K, act_q8_k, gemm_q2_k};
    table[EA_TYPE_Q3_K] = (struct ea_matmul_ops){EA_TYPE_Q8_K, act_q8_k, gemm_q3_k};
    table[EA_TYPE_Q4_K] = (struct ea_matmul_ops){EA_TYPE_Q8_K, act_q8_k, gemm_q4_k};
    table[EA_TYPE_Q5_K] = (struct ea_matmul_ops){EA_TYPE_Q8_K, act_q8_k, gemm_q5_k};
    table[EA_TYPE_Q6_K] = (struct ea_matmul_ops){EA_TYPE_Q8_K, act_q8_k, gemm_q6_k};
    vec->dot_f16_f32 = vec_dot_f16_f32;
    vec->axpy_f16 = vec_axpy_f16;
    vec->f32_to_f16 = vec_f32_to_f16;
    vec->f16_to_f32 = vec_f16_to_f32;
    vec->dot_f32 = vec_dot_f32;
    vec->axpy_f32 = vec_axpy_f32;
    vec->att_scores_f16 = vec_att_scores_f16;
    vec->att_accum_f16 = vec_att_accum_f16;
    vec->exp_sum = vec_exp_sum;
    vec->silu_mul = vec_silu_mul;
}

#endif
