/* kernels_x86.h - the x86 kernels, written once with 256-bit intrinsics and
 * compiled twice: by kernels_avx2.c (AVX2 + FMA + F16C) and by
 * kernels_avx512.c with EA_X86_VNNI defined (AVX-512 VL/BW + VNNI, so
 * vpdpbusd/vpdpwssd replace vpmaddubsw + vpmaddwd + vpaddd, and 32 vector
 * registers allow wider tiles). Only the primitives at the top differ.
 *
 * Quantized matmul ("row-interleaved tiles"). Weights are taken 8 rows at a
 * time over a segment of k (EA_X86_SEG values) and unpacked into a scratch
 * tile on the stack: levels as unsigned bytes, interleaved so that 32-bit
 * lane r of a vector holds 4 consecutive levels of row r, plus per-row block
 * scales as vectors. One vpdpbusd with 4 activation bytes broadcast to every
 * lane then advances 8 dot products at once, and the per-block scaling is
 * one float multiply-add for 8 outputs. The tile is unpacked once and reused
 * for every activation row (prefill runs near compute peak), and for a single
 * activation row (decode) the unpacking is cheap next to reading the weights:
 * packed bits are transposed before the fields are cut out, and the K-quant
 * scale bytes of 8 rows are decoded together. The scratch lives on the stack
 * (about 20 KB: 10-12 KB of tile, 8 KB of block sums).
 *   - Offsets are applied in integers: Q4_0/Q5_0 (and Q8_0 stored as q+128
 *     with VNNI) subtract off * sum(activations of the block), taken from a
 *     table computed once per segment and activation row; Q3_K/Q6_K subtract
 *     sum_g off*scale_g*bsum_g from Q8_K's per-16 sums. Q4_1/Q5_1 add
 *     m * s from Q8_1 and Q2_K/Q4_K/Q5_K subtract dmin * sum_g m_g*bsum_g in
 *     float, as llama.cpp's formats define them.
 *   - K-quant sub-block scales multiply the exact int32 sub-block sums
 *     (vpmulld), so every integer sum equals the generic one; results differ
 *     from generic only by float rounding (other summation order).
 * Float matmul (F32/F16/BF16): 8 values of k per vector lane, tiles of
 * rows x columns of accumulators, horizontal sums at the end.
 * Activation quantizers: the same scale formula and round-half-even as the
 * generic ones (vroundps), so the bytes are identical.
 * Does not hold: CPU detection (cpu_x86.c), variant selection (dispatch.c).
 */
#ifndef EDGEAGENT_KERNELS_X86_KERNELS_H
#define EDGEAGENT_KERNELS_X86_KERNELS_H

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "kernels/quant_blocks.h"
#include "kernels/x86/x86_int.h"
#include "util/fp16.h"

#define EA_ALWAYS_INLINE static inline __attribute__((always_inline))

#ifdef EA_X86_VNNI
#define QCOLS 4 /* activation rows per quantized micro-kernel */
#define FROWS 4 /* float tiles: weight rows x activation rows */
#define FCOLS 4
#else
#define QCOLS 2
#define FROWS 3
#define FCOLS 2
#endif
#define COLBLK 64      /* activation rows sharing one block-sum table */

/* ---- primitives -------------------------------------------------------- */

EA_ALWAYS_INLINE __m256i bcast4(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* acc + per 32-bit lane sum of 4 products (u8 w) x (s8 a). With AVX2 the
 * int16 pair sums cannot saturate: every unsigned level used is <= 63, and
 * Q8_0's |w| <= 128 meets |a| <= 127. */
EA_ALWAYS_INLINE __m256i dot_u8s8(__m256i acc, __m256i w, __m256i a)
{
#ifdef EA_X86_VNNI
    return _mm256_dpbusd_epi32(acc, w, a);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1)));
#endif
}

/* acc + per lane a.lo16*b.lo16 + a.hi16*b.hi16 (signed). */
EA_ALWAYS_INLINE __m256i dot_i16(__m256i acc, __m256i a, __m256i b)
{
#ifdef EA_X86_VNNI
    return _mm256_dpwssd_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

EA_ALWAYS_INLINE float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

EA_ALWAYS_INLINE int32_t hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

EA_ALWAYS_INLINE __m256 bcast_fp16(const void *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _mm256_cvtph_ps(_mm_set1_epi16((short)h));
}

EA_ALWAYS_INLINE __m256i srl16(__m256i v, int n) { return _mm256_srl_epi16(v, _mm_cvtsi32_si128(n)); }

/* Byte j of the result is 0xFF when bit j of the 32-bit word h is set. */
EA_ALWAYS_INLINE __m256i bits_to_bytes(uint32_t h)
{
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2,
                                            2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* r[i] holds the 8 dwords of row i; afterwards r[t] holds dword t of every
 * row (lane i = row i). */
EA_ALWAYS_INLINE void transpose_8x8_epi32(__m256i r[8])
{
    __m256i t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
    }
}

/* Lane r = the 4 bytes at p[r] + off. */
EA_ALWAYS_INLINE __m256i gather_dwords(const uint8_t *const p[8], size_t off)
{
    int32_t v[8];
    for (int r = 0; r < 8; r++)
        memcpy(&v[r], p[r] + off, 4);
    return _mm256_setr_epi32(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
}

/* Lane r = the half float at p[r] + off, as float. */
EA_ALWAYS_INLINE __m256 gather_fp16(const uint8_t *const p[8], size_t off)
{
    uint16_t h[8];
    for (int r = 0; r < 8; r++)
        memcpy(&h[r], p[r] + off, 2);
    return _mm256_cvtph_ps(_mm_setr_epi16((short)h[0], (short)h[1], (short)h[2], (short)h[3], (short)h[4],
                                          (short)h[5], (short)h[6], (short)h[7]));
}

/* out[u] lane r = dword u of the 16 bytes at p[r] + off: rows r and r + 4
 * share a vector, then two rounds of unpacks within 128-bit halves. */
EA_ALWAYS_INLINE void transpose_16B(const uint8_t *const p[8], size_t off, __m256i out[4])
{
    __m256i y[4], t[4];
    for (int r = 0; r < 4; r++)
        y[r] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p[r] + off))),
                                       _mm_loadu_si128((const __m128i *)(p[r + 4] + off)), 1);
    t[0] = _mm256_unpacklo_epi32(y[0], y[1]);
    t[1] = _mm256_unpackhi_epi32(y[0], y[1]);
    t[2] = _mm256_unpacklo_epi32(y[2], y[3]);
    t[3] = _mm256_unpackhi_epi32(y[2], y[3]);
    out[0] = _mm256_unpacklo_epi64(t[0], t[2]);
    out[1] = _mm256_unpackhi_epi64(t[0], t[2]);
    out[2] = _mm256_unpacklo_epi64(t[1], t[3]);
    out[3] = _mm256_unpackhi_epi64(t[1], t[3]);
}

/* The same for 32 bytes: out[0..7]. */
EA_ALWAYS_INLINE void transpose_32B(const uint8_t *const p[8], size_t off, __m256i out[8])
{
    transpose_16B(p, off, out);
    transpose_16B(p, off + 16, out + 4);
}

/* Bits shift.. of each 32-bit lane under mask (variable shift counts). */
EA_ALWAYS_INLINE __m256i field32(__m256i v, int shift, int mask)
{
    return _mm256_and_si256(_mm256_srl_epi32(v, _mm_cvtsi32_si128(shift)), _mm256_set1_epi32(mask));
}

/* Signed byte b (0..3) of each 32-bit lane. */
EA_ALWAYS_INLINE __m256i sbyte32(__m256i v, int b)
{
    return _mm256_sra_epi32(_mm256_sll_epi32(v, _mm_cvtsi32_si128(24 - 8 * b)), _mm_cvtsi32_si128(24));
}

/* Two int16 per lane: lo in the low half, hi in the high half. */
EA_ALWAYS_INLINE __m256i pack16x2(__m256i lo, __m256i hi)
{
    return _mm256_or_si256(_mm256_and_si256(lo, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(hi, 16));
}

/* Stores (or adds to, after the first segment of k) the outputs of rows
 * row0 .. row0 + n - 1 for one activation row. */
EA_ALWAYS_INLINE void store_rows(float *dst, __m256 v, int n, bool accumulate)
{
    if (n == 8) {
        if (accumulate)
            v = _mm256_add_ps(v, _mm256_loadu_ps(dst));
        _mm256_storeu_ps(dst, v);
        return;
    }
    float tmp[8];
    _mm256_storeu_ps(tmp, v);
    for (int i = 0; i < n; i++)
        dst[i] = accumulate ? dst[i] + tmp[i] : tmp[i];
}

/* Decode reads each weight row once, 8 rows in parallel; rows of a few KB
 * are too short for the hardware prefetchers to ramp up on 8 streams (F16
 * rows of 1-2 KB stream at a third of the speed of 8 KB rows here). So the
 * next row tile is requested into L2 in address order while this one is
 * computed: a few lines per unpacked block, all of it by the tile's end.
 * Measured (bench_kernels-style, min of 25 alternating runs, k = 4096, one
 * thread, loaded machine): Q4_0 5.6 -> 10 GB/s, Q8_0 11 -> 16, Q4_K 7-9 ->
 * 10.5-11; a burst of T0 prefetches per tile instead made it slower. */
struct pf_cursor {
    const uint8_t *row;   /* row of the next tile being requested */
    size_t stride, row_bytes, off;
    int rows_left;        /* rows of the next tile not yet fully requested */
};

EA_ALWAYS_INLINE void pf_start(struct pf_cursor *pf, const void *w, size_t w_stride, size_t row_bytes,
                               int64_t nr, int64_t i0)
{
    const int64_t next = i0 + 8, n = nr - next < 8 ? nr - next : 8;
    pf->row = (const uint8_t *)w + (size_t)(n > 0 ? next : 0) * w_stride;
    pf->stride = w_stride;
    pf->row_bytes = row_bytes;
    pf->off = 0;
    pf->rows_left = n > 0 ? (int)n : 0;
}

EA_ALWAYS_INLINE void pf_step(struct pf_cursor *pf, int lines)
{
    for (int q = 0; q < lines && pf->rows_left > 0; q++) {
        _mm_prefetch((const char *)pf->row + pf->off, _MM_HINT_T1);
        pf->off += 64;
        if (pf->off >= pf->row_bytes) {
            pf->off = 0;
            pf->row += pf->stride;
            pf->rows_left--;
        }
    }
}

/* ---- 32-value formats -------------------------------------------------- */

enum legacy_kind { L_Q4_0, L_Q4_1, L_Q5_0, L_Q5_1, L_Q8_0 };

/* 8 weight rows x one block, levels interleaved by 4 bytes per row. */
struct legacy_tile {
    _Alignas(32) uint8_t w[8][32];
    _Alignas(32) float d[8];
    _Alignas(32) float m[8];
};

EA_ALWAYS_INLINE size_t legacy_wsize(enum legacy_kind kind)
{
    return kind == L_Q4_0 ? 18 : kind == L_Q4_1 ? 20 : kind == L_Q5_0 ? 22 : kind == L_Q5_1 ? 24 : 34;
}

EA_ALWAYS_INLINE bool legacy_q8_1_act(enum legacy_kind kind) { return kind == L_Q4_1 || kind == L_Q5_1; }

/* The offset subtracted from the unsigned levels (0: none, or signed levels
 * handled by the sign trick for Q8_0 without VNNI). */
EA_ALWAYS_INLINE int legacy_offset(enum legacy_kind kind)
{
#ifdef EA_X86_VNNI
    if (kind == L_Q8_0)
        return 128;
#endif
    return kind == L_Q4_0 ? 8 : kind == L_Q5_0 ? 16 : 0;
}

EA_ALWAYS_INLINE __m256i nibbles_32(const uint8_t *qs)
{
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(15));
}

EA_ALWAYS_INLINE __m256i fifth_bits_32(const uint8_t qh[4])
{
    uint32_t h;
    memcpy(&h, qh, 4);
    return _mm256_and_si256(bits_to_bytes(h), _mm256_set1_epi8(16));
}

/* Levels of one Q5_0/Q5_1 block of one row (the fifth bits are easiest to
 * spread before the transpose). */
EA_ALWAYS_INLINE __m256i q5_levels(const uint8_t *qs, const uint8_t *qh)
{
    return _mm256_or_si256(nibbles_32(qs), fifth_bits_32(qh));
}

/* Unpacks blocks blk0 .. blk0 + nblk - 1 of 8 rows. Nibble formats are
 * transposed while still packed (one 16-byte transpose gives 8 level
 * vectors), Q8_0 as 32 bytes. */
EA_ALWAYS_INLINE void legacy_unpack(enum legacy_kind kind, const uint8_t *const rows[8], int64_t blk0,
                                    int nblk, struct legacy_tile *tile, struct pf_cursor *pf)
{
    const size_t bs = legacy_wsize(kind);
    const __m256i low4 = _mm256_set1_epi8(15);
    /* a tile has 8 * bs / 64 lines per block of its rows; ask a few more */
    const int pf_lines = (int)((8 * bs + 63) / 64) + 1;
    for (int b = 0; b < nblk; b++) {
        if (pf)
            pf_step(pf, pf_lines);
        const uint8_t *bp[8];
        __m256i w[8];
        for (int i = 0; i < 8; i++)
            bp[i] = rows[i] + (size_t)(blk0 + b) * bs;
        switch (kind) {
        case L_Q4_0:
        case L_Q4_1: {
            __m256i q[4];
            transpose_16B(bp, kind == L_Q4_0 ? offsetof(struct ea_blk_q4_0, qs) : offsetof(struct ea_blk_q4_1, qs), q);
            for (int u = 0; u < 4; u++) {
                w[u] = _mm256_and_si256(q[u], low4);
                w[u + 4] = _mm256_and_si256(_mm256_srli_epi16(q[u], 4), low4);
            }
            break;
        }
        case L_Q5_0:
        case L_Q5_1:
            for (int i = 0; i < 8; i++)
                w[i] = kind == L_Q5_0 ? q5_levels(((const struct ea_blk_q5_0 *)(const void *)bp[i])->qs,
                                                  ((const struct ea_blk_q5_0 *)(const void *)bp[i])->qh)
                                      : q5_levels(((const struct ea_blk_q5_1 *)(const void *)bp[i])->qs,
                                                  ((const struct ea_blk_q5_1 *)(const void *)bp[i])->qh);
            transpose_8x8_epi32(w);
            break;
        default:
            transpose_32B(bp, offsetof(struct ea_blk_q8_0, qs), w);
#ifdef EA_X86_VNNI
            for (int t = 0; t < 8; t++) /* q + 128 as unsigned */
                w[t] = _mm256_xor_si256(w[t], _mm256_set1_epi8((char)0x80));
#endif
            break;
        }
        for (int t = 0; t < 8; t++)
            _mm256_store_si256((__m256i *)tile[b].w[t], w[t]);
        _mm256_store_ps(tile[b].d, gather_fp16(bp, 0)); /* d leads every block */
        if (legacy_q8_1_act(kind))
            _mm256_store_ps(tile[b].m, gather_fp16(bp, 2));
    }
}

/* off * (sum of the 32 activations) of each Q8_0 block of one row. */
static void q8_0_block_sums(const uint8_t *x, int nblk, int off, int32_t *out)
{
    for (int b = 0; b < nblk; b++) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(x + (size_t)b * 34 + 2));
        __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), a), _mm256_set1_epi16(1));
        out[b] = off * hsum_epi32(s);
    }
}

/* acc[c] += the 8 row dot products of block b with activation row c. */
EA_ALWAYS_INLINE void legacy_block(enum legacy_kind kind, int C, const struct legacy_tile *t, int b,
                                   const uint8_t *const x[], const int32_t *const sums[], __m256 acc[])
{
    const size_t xb = legacy_q8_1_act(kind) ? 36 : 34, qoff = xb - 32;
    const int off = legacy_offset(kind);
#if !defined(EA_X86_VNNI)
    const bool sign_trick = kind == L_Q8_0;
#endif
    __m256i p0[QCOLS], p1[QCOLS]; /* even and odd steps: two add chains */
    for (int c = 0; c < C; c++)
        p0[c] = p1[c] = _mm256_setzero_si256();
    for (int s = 0; s < 8; s++) {
        const __m256i w = _mm256_load_si256((const __m256i *)t->w[s]);
#if !defined(EA_X86_VNNI)
        const __m256i wabs = sign_trick ? _mm256_abs_epi8(w) : w;
#endif
        for (int c = 0; c < C; c++) {
            __m256i a = bcast4(x[c] + (size_t)b * xb + qoff + 4 * s), wu = w;
#if !defined(EA_X86_VNNI)
            if (sign_trick) { /* |w| * (a with w's sign): the same products */
                a = _mm256_sign_epi8(a, w);
                wu = wabs;
            }
#endif
            if (s & 1)
                p1[c] = dot_u8s8(p1[c], wu, a);
            else
                p0[c] = dot_u8s8(p0[c], wu, a);
        }
    }
    const __m256 d = _mm256_load_ps(t->d);
    for (int c = 0; c < C; c++) {
        const uint8_t *xblk = x[c] + (size_t)b * xb;
        __m256i isum = _mm256_add_epi32(p0[c], p1[c]);
        if (off)
            isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(sums[c][b]));
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, bcast_fp16(xblk)), acc[c]);
        if (legacy_q8_1_act(kind))
            acc[c] = _mm256_fmadd_ps(_mm256_load_ps(t->m), bcast_fp16(xblk + 2), acc[c]);
    }
}

/* out[c] = the 8 row dot products with activation row c over nblk blocks;
 * even and odd blocks go to separate accumulators (two float add chains). */
EA_ALWAYS_INLINE void legacy_micro(enum legacy_kind kind, int C, const struct legacy_tile *tile, int nblk,
                                   const uint8_t *const x[], const int32_t *const sums[], __m256 out[])
{
    __m256 acc0[QCOLS], acc1[QCOLS];
    for (int c = 0; c < C; c++)
        acc0[c] = acc1[c] = _mm256_setzero_ps();
    int b = 0;
    for (; b + 2 <= nblk; b += 2) {
        legacy_block(kind, C, &tile[b], b, x, sums, acc0);
        legacy_block(kind, C, &tile[b + 1], b + 1, x, sums, acc1);
    }
    if (b < nblk)
        legacy_block(kind, C, &tile[b], b, x, sums, acc0);
    for (int c = 0; c < C; c++)
        out[c] = _mm256_add_ps(acc0[c], acc1[c]);
}

/* One row tile (rows i0.., n of them) x one segment of k x activation rows
 * j0 .. j0 + jn - 1: unpack the tile, then run the micro-kernel over the
 * activation rows, QCOLS at a time. sums + j * sums_stride holds the block
 * sums of activation row j0 + j, from block blk0 on. */
EA_ALWAYS_INLINE void legacy_tile_pass(enum legacy_kind kind, struct legacy_tile *tile, const uint8_t *const rows[8],
                                       int n, int64_t i0, int64_t blk0, int nblk, int64_t j0, int jn,
                                       const int32_t *sums, size_t sums_stride, const void *x, size_t x_stride,
                                       float *s, size_t s_stride, bool accumulate, struct pf_cursor *pf)
{
    const size_t xb = legacy_q8_1_act(kind) ? 36 : 34;
    const uint8_t *xp[QCOLS];
    const int32_t *sp[QCOLS];
    legacy_unpack(kind, rows, blk0, nblk, tile, pf);
    int j = 0;
    for (; j + QCOLS <= jn; j += QCOLS) {
        __m256 out[QCOLS];
        for (int c = 0; c < QCOLS; c++) {
            xp[c] = (const uint8_t *)x + (size_t)(j0 + j + c) * x_stride + (size_t)blk0 * xb;
            sp[c] = sums + (size_t)(j + c) * sums_stride;
        }
        legacy_micro(kind, QCOLS, tile, nblk, xp, sp, out);
        for (int c = 0; c < QCOLS; c++)
            store_rows(s + (size_t)(j0 + j + c) * s_stride + i0, out[c], n, accumulate);
    }
    for (; j < jn; j++) {
        __m256 out[1];
        xp[0] = (const uint8_t *)x + (size_t)(j0 + j) * x_stride + (size_t)blk0 * xb;
        sp[0] = sums + (size_t)j * sums_stride;
        legacy_micro(kind, 1, tile, nblk, xp, sp, out);
        store_rows(s + (size_t)(j0 + j) * s_stride + i0, out[0], n, accumulate);
    }
}

/* Rows of the tile starting at i0; missing rows repeat the last one. */
EA_ALWAYS_INLINE int tile_rows(const void *w, size_t w_stride, int64_t nr, int64_t i0, const uint8_t *rows[8])
{
    const int n = (int)(nr - i0 < 8 ? nr - i0 : 8);
    for (int i = 0; i < 8; i++)
        rows[i] = (const uint8_t *)w + (size_t)(i0 + (i < n ? i : n - 1)) * w_stride;
    return n;
}

/* k = 0: every dot product is 0 (the loops below would write nothing). */
EA_ALWAYS_INLINE bool empty_k(int64_t k, int64_t nr, int64_t nc, float *s, size_t s_stride)
{
    if (k > 0)
        return false;
    for (int64_t j = 0; j < nc; j++)
        for (int64_t i = 0; i < nr; i++)
            s[(size_t)j * s_stride + (size_t)i] = 0;
    return true;
}

/* Two loop orders. With few activation rows (decode, small batches) each
 * row tile runs through all of k before the next, so the weights stream from
 * memory in address order (a k-slice at a time over all rows halves the
 * bandwidth), the few activation rows stay in L2, and their block sums are
 * computed once for all of k. With many (prefill, or when those sums do not
 * fit the table) the segment of k is the outer loop: the activation rows of
 * one segment stay in L2 while every row tile uses them, and the table is
 * built once per segment for up to COLBLK activation rows. */
#define EA_X86_FEW_COLS 16
#define SUMS_MAX 4096 /* block sums in the table: COLBLK * SEG/32, or nc * k/32 */
_Static_assert(COLBLK * (EA_X86_SEG / 32) <= SUMS_MAX, "block-sum table too small for prefill");

EA_ALWAYS_INLINE void gemm_legacy(enum legacy_kind kind, int64_t k, int64_t nr, int64_t nc, const void *w,
                                  size_t w_stride, const void *x, size_t x_stride, float *s, size_t s_stride)
{
    struct legacy_tile tile[EA_X86_SEG / 32];
    int32_t sums[SUMS_MAX];
    const uint8_t *rows[8];
    const int off = legacy_offset(kind);
    const int64_t nb = k / 32;
    if (empty_k(k, nr, nc, s, s_stride))
        return;
    if (nc <= EA_X86_FEW_COLS && nc * nb <= SUMS_MAX) {
        if (off)
            for (int j = 0; j < nc; j++)
                q8_0_block_sums((const uint8_t *)x + (size_t)j * x_stride, (int)nb, off, sums + j * nb);
        struct pf_cursor pf;
        for (int64_t i0 = 0; i0 < nr; i0 += 8) {
            const int n = tile_rows(w, w_stride, nr, i0, rows);
            pf_start(&pf, w, w_stride, (size_t)nb * legacy_wsize(kind), nr, i0);
            for (int64_t k0 = 0; k0 < k; k0 += EA_X86_SEG) {
                const int nblk = (int)((k - k0 < EA_X86_SEG ? k - k0 : EA_X86_SEG) / 32);
                legacy_tile_pass(kind, tile, rows, n, i0, k0 / 32, nblk, 0, (int)nc, sums + k0 / 32, (size_t)nb,
                                 x, x_stride, s, s_stride, k0 > 0, &pf);
            }
        }
        return;
    }
    for (int64_t k0 = 0; k0 < k; k0 += EA_X86_SEG) {
        const int nblk = (int)((k - k0 < EA_X86_SEG ? k - k0 : EA_X86_SEG) / 32);
        for (int64_t j0 = 0; j0 < nc; j0 += COLBLK) {
            const int jn = (int)(nc - j0 < COLBLK ? nc - j0 : COLBLK);
            if (off)
                for (int j = 0; j < jn; j++)
                    q8_0_block_sums((const uint8_t *)x + (size_t)(j0 + j) * x_stride + (size_t)(k0 / 32) * 34,
                                    nblk, off, sums + j * (EA_X86_SEG / 32));
            for (int64_t i0 = 0; i0 < nr; i0 += 8) {
                const int n = tile_rows(w, w_stride, nr, i0, rows);
                legacy_tile_pass(kind, tile, rows, n, i0, k0 / 32, nblk, j0, jn, sums, EA_X86_SEG / 32, x,
                                 x_stride, s, s_stride, k0 > 0, NULL);
            }
        }
    }
}

/* ---- K-quants ---------------------------------------------------------- */

enum k_kind { K_Q2, K_Q3, K_Q4, K_Q5, K_Q6 };

/* 8 weight rows x one super-block. sc holds each row's integer scale of
 * sub-block g (16 values, or 32 for Q4_K/Q5_K); mins holds, per pair of
 * 16-groups, two int16 per row: the mins (Q2_K/Q4_K/Q5_K) or the integer
 * offset corrections off*scale (Q3_K/Q6_K) that multiply Q8_K's bsums. */
struct k_tile {
    _Alignas(32) uint8_t w[64][32];
    _Alignas(32) int32_t sc[16][8];
    _Alignas(32) int32_t mins[8][8];
    _Alignas(32) float d[8];
    _Alignas(32) float dmin[8];
};

EA_ALWAYS_INLINE size_t k_wsize(enum k_kind kind)
{
    return kind == K_Q2 ? 84 : kind == K_Q3 ? 110 : kind == K_Q4 ? 144 : kind == K_Q5 ? 176 : 210;
}

EA_ALWAYS_INLINE int k_nsub(enum k_kind kind) { return kind == K_Q4 || kind == K_Q5 ? 8 : 16; }

EA_ALWAYS_INLINE bool k_has_min(enum k_kind kind) { return kind == K_Q2 || kind == K_Q4 || kind == K_Q5; }

EA_ALWAYS_INLINE __m256i low_bits(__m256i v, int shift, int mask)
{
    return _mm256_and_si256(srl16(v, shift), _mm256_set1_epi8((char)mask));
}

EA_ALWAYS_INLINE void put_w(struct k_tile *t, int v, int u, __m256i w)
{
    _mm256_store_si256((__m256i *)t->w[8 * v + u], w);
}

/* Levels of one super-block of 8 rows: each 32-byte run of packed bits is
 * transposed as it is stored, then the 2-, 4- or 6-bit fields are cut out of
 * the transposed words (a field's bytes keep their place within the word).
 * Level vector 8v + u holds values 32v + 4u .. 32v + 4u + 3. */
EA_ALWAYS_INLINE void k_levels(enum k_kind kind, const uint8_t *const bp[8], struct k_tile *t)
{
    __m256i a[8], h[8];
    switch (kind) {
    case K_Q2:
        for (int half = 0; half < 2; half++) {
            transpose_32B(bp, offsetof(struct ea_blk_q2_k, qs) + 32 * half, a);
            for (int sh = 0; sh < 4; sh++)
                for (int u = 0; u < 8; u++)
                    put_w(t, 4 * half + sh, u, low_bits(a[u], 2 * sh, 3));
        }
        break;
    case K_Q3:
        transpose_32B(bp, offsetof(struct ea_blk_q3_k, hmask), h);
        for (int half = 0; half < 2; half++) {
            transpose_32B(bp, offsetof(struct ea_blk_q3_k, qs) + 32 * half, a);
            for (int sh = 0; sh < 4; sh++)
                for (int u = 0; u < 8; u++) {
                    const int v = 4 * half + sh;
                    put_w(t, v, u, _mm256_or_si256(low_bits(a[u], 2 * sh, 3), _mm256_slli_epi16(low_bits(h[u], v, 1), 2)));
                }
        }
        break;
    case K_Q4:
    case K_Q5: {
        const size_t qs = kind == K_Q4 ? offsetof(struct ea_blk_q4_k, qs) : offsetof(struct ea_blk_q5_k, qs);
        if (kind == K_Q5)
            transpose_32B(bp, offsetof(struct ea_blk_q5_k, qh), h);
        for (int p = 0; p < 4; p++) {
            transpose_32B(bp, qs + 32 * p, a);
            for (int u = 0; u < 8; u++) {
                __m256i lo = low_bits(a[u], 0, 15), hi = low_bits(a[u], 4, 15);
                if (kind == K_Q5) {
                    lo = _mm256_or_si256(lo, _mm256_slli_epi16(low_bits(h[u], 2 * p, 1), 4));
                    hi = _mm256_or_si256(hi, _mm256_slli_epi16(low_bits(h[u], 2 * p + 1, 1), 4));
                }
                put_w(t, 2 * p, u, lo);
                put_w(t, 2 * p + 1, u, hi);
            }
        }
        break;
    }
    default:
        for (int half = 0; half < 2; half++) {
            __m256i b[8];
            transpose_32B(bp, offsetof(struct ea_blk_q6_k, ql) + 64 * half, a);
            transpose_32B(bp, offsetof(struct ea_blk_q6_k, ql) + 64 * half + 32, b);
            transpose_32B(bp, offsetof(struct ea_blk_q6_k, qh) + 32 * half, h);
            for (int sh = 0; sh < 4; sh++)
                for (int u = 0; u < 8; u++) {
                    __m256i lo = low_bits((sh & 1) ? b[u] : a[u], 4 * (sh >> 1), 15);
                    __m256i hi = low_bits(h[u], 2 * sh, 3);
                    put_w(t, 4 * half + sh, u, _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)));
                }
        }
        break;
    }
}

EA_ALWAYS_INLINE void put_sc(struct k_tile *t, int g, __m256i v) { _mm256_store_si256((__m256i *)t->sc[g], v); }
EA_ALWAYS_INLINE void put_mins(struct k_tile *t, int u, __m256i v) { _mm256_store_si256((__m256i *)t->mins[u], v); }

/* Scales of one super-block of 8 rows, lane r = row r: the packed scale
 * bytes of the 8 rows are gathered as 32-bit lanes and decoded for all rows
 * at once (the same bit layout as ea__k4_scale_min / ea__q3k_scales). */
EA_ALWAYS_INLINE void k_scales(enum k_kind kind, const uint8_t *const bp[8], struct k_tile *t)
{
    __m256i v[4], mins[16];
    switch (kind) {
    case K_Q2:
        for (int q = 0; q < 4; q++)
            v[q] = gather_dwords(bp, offsetof(struct ea_blk_q2_k, scales) + 4 * q);
        for (int g = 0; g < 16; g++) {
            put_sc(t, g, field32(v[g / 4], 8 * (g % 4), 15));
            mins[g] = field32(v[g / 4], 8 * (g % 4) + 4, 15);
        }
        _mm256_store_ps(t->d, gather_fp16(bp, offsetof(struct ea_blk_q2_k, d)));
        _mm256_store_ps(t->dmin, gather_fp16(bp, offsetof(struct ea_blk_q2_k, dmin)));
        break;
    case K_Q3:
        for (int q = 0; q < 3; q++)
            v[q] = gather_dwords(bp, offsetof(struct ea_blk_q3_k, scales) + 4 * q);
        for (int j = 0; j < 16; j++) {
            __m256i lo = j < 8 ? field32(v[j / 4], 8 * (j % 4), 15) : field32(v[(j - 8) / 4], 8 * ((j - 8) % 4) + 4, 15);
            __m256i hi = field32(v[2], 8 * (j % 4) + 2 * (j / 4), 3);
            __m256i sc = _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32));
            put_sc(t, j, sc);
            mins[j] = _mm256_slli_epi32(sc, 2); /* offset 4 * scale */
        }
        _mm256_store_ps(t->d, gather_fp16(bp, offsetof(struct ea_blk_q3_k, d)));
        _mm256_store_ps(t->dmin, _mm256_setzero_ps());
        break;
    case K_Q4:
    case K_Q5:
        for (int q = 0; q < 3; q++)
            v[q] = gather_dwords(bp, offsetof(struct ea_blk_q4_k, scales) + 4 * q); /* same place in Q5_K */
        for (int j = 0; j < 8; j++) {
            __m256i sc, m;
            if (j < 4) {
                sc = field32(v[0], 8 * j, 63);
                m = field32(v[1], 8 * j, 63);
            } else {
                const int i = j - 4;
                sc = _mm256_or_si256(field32(v[2], 8 * i, 15), _mm256_slli_epi32(field32(v[0], 8 * i + 6, 3), 4));
                m = _mm256_or_si256(field32(v[2], 8 * i + 4, 15), _mm256_slli_epi32(field32(v[1], 8 * i + 6, 3), 4));
            }
            put_sc(t, j, sc);
            mins[2 * j] = mins[2 * j + 1] = m; /* one min per 32 = two 16-groups */
        }
        _mm256_store_ps(t->d, gather_fp16(bp, 0)); /* d, dmin lead both structs */
        _mm256_store_ps(t->dmin, gather_fp16(bp, 2));
        break;
    default:
        for (int q = 0; q < 4; q++)
            v[q] = gather_dwords(bp, offsetof(struct ea_blk_q6_k, scales) + 4 * q);
        for (int g = 0; g < 16; g++) {
            __m256i sc = sbyte32(v[g / 4], g % 4);
            put_sc(t, g, sc);
            mins[g] = _mm256_slli_epi32(sc, 5); /* offset 32 * scale */
        }
        _mm256_store_ps(t->d, gather_fp16(bp, offsetof(struct ea_blk_q6_k, d)));
        _mm256_store_ps(t->dmin, _mm256_setzero_ps());
        break;
    }
    for (int u = 0; u < 8; u++)
        put_mins(t, u, pack16x2(mins[2 * u], mins[2 * u + 1]));
}

EA_ALWAYS_INLINE void k_unpack(enum k_kind kind, const uint8_t *const rows[8], int64_t sb0, int nsb,
                               struct k_tile *tile, struct pf_cursor *pf)
{
    const size_t bs = k_wsize(kind);
    for (int b = 0; b < nsb; b++) {
        if (pf)
            pf_step(pf, (int)((8 * bs + 63) / 64) + 1);
        const uint8_t *bp[8];
        for (int i = 0; i < 8; i++)
            bp[i] = rows[i] + (size_t)(sb0 + b) * bs;
        k_levels(kind, bp, &tile[b]);
        k_scales(kind, bp, &tile[b]);
    }
}

EA_ALWAYS_INLINE void k_micro(enum k_kind kind, int C, const struct k_tile *tile, int nsb,
                              const struct ea_blk_q8_k *const x[], __m256 out[])
{
    const int nsub = k_nsub(kind), steps = 64 / nsub, span = EA_QK_K / nsub;
    __m256 acc[QCOLS];
    for (int c = 0; c < C; c++)
        acc[c] = _mm256_setzero_ps();
    for (int b = 0; b < nsb; b++) {
        const struct k_tile *t = &tile[b];
        __m256i isum[QCOLS];
        for (int c = 0; c < C; c++)
            isum[c] = _mm256_setzero_si256();
        for (int g = 0; g < nsub; g++) {
            __m256i p0[QCOLS], p1[QCOLS];
            for (int c = 0; c < C; c++)
                p0[c] = p1[c] = _mm256_setzero_si256();
            for (int s = 0; s < steps; s++) {
                const __m256i w = _mm256_load_si256((const __m256i *)t->w[g * steps + s]);
                for (int c = 0; c < C; c++) {
                    __m256i a = bcast4(x[c][b].qs + g * span + 4 * s);
                    if (s & 1)
                        p1[c] = dot_u8s8(p1[c], w, a);
                    else
                        p0[c] = dot_u8s8(p0[c], w, a);
                }
            }
            const __m256i sc = _mm256_load_si256((const __m256i *)t->sc[g]);
            for (int c = 0; c < C; c++)
                isum[c] = _mm256_add_epi32(isum[c], _mm256_mullo_epi32(_mm256_add_epi32(p0[c], p1[c]), sc));
        }
        const __m256 d = _mm256_load_ps(t->d), dmin = _mm256_load_ps(t->dmin);
        for (int c = 0; c < C; c++) {
            __m256i ms = _mm256_setzero_si256();
            for (int u = 0; u < 8; u++)
                ms = dot_i16(ms, _mm256_load_si256((const __m256i *)t->mins[u]), bcast4(&x[c][b].bsums[2 * u]));
            const __m256 dy = _mm256_set1_ps(x[c][b].d);
            if (k_has_min(kind)) {
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(d, dy), acc[c]);
                acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_mul_ps(dmin, dy), acc[c]);
            } else {
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(isum[c], ms)),
                                         _mm256_mul_ps(d, dy), acc[c]);
            }
        }
    }
    for (int c = 0; c < C; c++)
        out[c] = acc[c];
}

EA_ALWAYS_INLINE void k_tile_pass(enum k_kind kind, struct k_tile *tile, const uint8_t *const rows[8], int n,
                                  int64_t i0, int64_t sb0, int nsb, int64_t nc, const void *x, size_t x_stride,
                                  float *s, size_t s_stride, bool accumulate, struct pf_cursor *pf)
{
    const struct ea_blk_q8_k *xp[QCOLS];
    k_unpack(kind, rows, sb0, nsb, tile, pf);
    int64_t j = 0;
    for (; j + QCOLS <= nc; j += QCOLS) {
        __m256 out[QCOLS];
        for (int c = 0; c < QCOLS; c++)
            xp[c] = (const struct ea_blk_q8_k *)(const void *)((const uint8_t *)x + (size_t)(j + c) * x_stride) + sb0;
        k_micro(kind, QCOLS, tile, nsb, xp, out);
        for (int c = 0; c < QCOLS; c++)
            store_rows(s + (size_t)(j + c) * s_stride + i0, out[c], n, accumulate);
    }
    for (; j < nc; j++) {
        __m256 out[1];
        xp[0] = (const struct ea_blk_q8_k *)(const void *)((const uint8_t *)x + (size_t)j * x_stride) + sb0;
        k_micro(kind, 1, tile, nsb, xp, out);
        store_rows(s + (size_t)j * s_stride + i0, out[0], n, accumulate);
    }
}

/* Loop orders as for gemm_legacy (no table: Q8_K carries its sums). */
EA_ALWAYS_INLINE void gemm_k(enum k_kind kind, int64_t k, int64_t nr, int64_t nc, const void *w,
                             size_t w_stride, const void *x, size_t x_stride, float *s, size_t s_stride)
{
    struct k_tile tile[EA_X86_SEG / EA_QK_K];
    const uint8_t *rows[8];
    const bool few = nc <= EA_X86_FEW_COLS;
    struct pf_cursor pf;
    if (empty_k(k, nr, nc, s, s_stride))
        return;
    for (int64_t o0 = 0; o0 < (few ? nr : k); o0 += few ? 8 : EA_X86_SEG)
        for (int64_t o1 = 0; o1 < (few ? k : nr); o1 += few ? EA_X86_SEG : 8) {
            const int64_t i0 = few ? o0 : o1, k0 = few ? o1 : o0;
            const int nsb = (int)((k - k0 < EA_X86_SEG ? k - k0 : EA_X86_SEG) / EA_QK_K);
            const int n = tile_rows(w, w_stride, nr, i0, rows);
            if (few && k0 == 0)
                pf_start(&pf, w, w_stride, (size_t)(k / EA_QK_K) * k_wsize(kind), nr, i0);
            k_tile_pass(kind, tile, rows, n, i0, k0 / EA_QK_K, nsb, nc, x, x_stride, s, s_stride, k0 > 0,
                        few ? &pf : NULL);
        }
}

#define EA_X86_QGEMM(name, driver, kind)                                                             \
    static void gemm_##name(int64_t k, int64_t nr, int64_t nc, const void *w, size_t w_stride,       \
                            const void *x, size_t x_stride, float *s, size_t s_stride)               \
    {                                                                                                \
        driver(kind, k, nr, nc, w, w_stride, x, x_stride, s, s_stride);                              \
    }

EA_X86_QGEMM(q4_0, gemm_legacy, L_Q4_0)
EA_X86_QGEMM(q4_1, gemm_legacy, L_Q4_1)
EA_X86_QGEMM(q5_0, gemm_legacy, L_Q5_0)
EA_X86_QGEMM(q5_1, gemm_legacy, L_Q5_1)
EA_X86_QGEMM(q8_0, gemm_legacy, L_Q8_0)
EA_X86_QGEMM(q2_k, gemm_k, K_Q2)
EA_X86_QGEMM(q3_k, gemm_k, K_Q3)
EA_X86_QGEMM(q4_k, gemm_k, K_Q4)
EA_X86_QGEMM(q5_k, gemm_k, K_Q5)
EA_X86_QGEMM(q6_k, gemm_k, K_Q6)

/* ---- activation quantizers --------------------------------------------- */

/* Rounds 32 floats times id half-to-even into saturated int8; returns the
 * sum of the quants. */
EA_ALWAYS_INLINE int round_32(const float *x, __m256 id, int8_t *out)
{
    __m256i q[4];
    for (int i = 0; i < 4; i++) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), id);
        q[i] = _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    const int sum = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)out, p);
    return sum;
}

EA_ALWAYS_INLINE float absmax_n(const float *x, int n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8)
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static void act_q8_0(const float *x, void *y, int64_t k)
{
    struct ea_blk_q8_0 *b = y;
    for (int64_t i = 0; i < k / EA_QK; i++, x += EA_QK) {
        const float amax = absmax_n(x, EA_QK);
        const float id = amax != 0 ? 127.0f / amax : 0.0f;
        b[i].d = ea_f32_to_fp16(amax / 127.0f);
        round_32(x, _mm256_set1_ps(id), b[i].qs);
    }
}

static void act_q8_1(const float *x, void *y, int64_t k)
{
    struct ea_blk_q8_1 *b = y;
    for (int64_t i = 0; i < k / EA_QK; i++, x += EA_QK) {
        const float amax = absmax_n(x, EA_QK);
        const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        b[i].d = ea_f32_to_fp16(d);
        b[i].s = ea_f32_to_fp16(d * (float)round_32(x, _mm256_set1_ps(id), b[i].qs));
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
            round_32(x + j, _mm256_set1_ps(is), b[i].qs + j);
        for (int g = 0; g < 16; g++) {
            __m128i q = _mm_loadu_si128((const __m128i *)(b[i].qs + 16 * g));
            __m128i s = _mm_madd_epi16(_mm_maddubs_epi16(_mm_set1_epi8(1), q), _mm_set1_epi16(1));
            s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
            s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
            b[i].bsums[g] = (int16_t)_mm_cvtsi128_si32(s);
        }
        b[i].d = 1 / is;
    }
}

/* ---- float matmul ------------------------------------------------------ */

enum f_kind { F_F32, F_F16, F_BF16 };

EA_ALWAYS_INLINE __m256 fload8(enum f_kind kind, const void *p, int64_t i)
{
    switch (kind) {
    case F_F32:
        return _mm256_loadu_ps((const float *)p + i);
    case F_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    default: {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    }
    }
}

EA_ALWAYS_INLINE float fload1(enum f_kind kind, const void *p, int64_t i)
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

/* R weight rows x C activation rows: out[c*R + r] = dot(w row r, x row c). */
EA_ALWAYS_INLINE void float_tile(enum f_kind kind, int R, int C, int64_t k, const void *const wr[],
                                 const void *const xr[], float *out)
{
    __m256 acc[FROWS][FCOLS];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            acc[r][c] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        __m256 wv[FROWS];
        for (int r = 0; r < R; r++)
            wv[r] = fload8(kind, wr[r], i);
        for (int c = 0; c < C; c++) {
            const __m256 xv = fload8(kind, xr[c], i);
            for (int r = 0; r < R; r++)
                acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            float tail = 0;
            for (int64_t t = i; t < k; t++)
                tail += fload1(kind, wr[r], t) * fload1(kind, xr[c], t);
            out[c * R + r] = hsum_ps(acc[r][c]) + tail;
        }
}

#include "kernels/float_tiles.h"

EA_X86_QGEMM(f32, gemm_float, F_F32)
EA_X86_QGEMM(f16, gemm_float, F_F16)
EA_X86_QGEMM(bf16, gemm_float, F_BF16)

/* F16 activations for F16 weights: F16C rounds to nearest even, as the
 * generic conversion does. */
static void act_f16(const float *x, void *y, int64_t k)
{
    uint16_t *o = y;
    int64_t i = 0;
    for (; i + 8 <= k; i += 8)
        _mm_storeu_si128((__m128i *)(o + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < k; i++)
        o[i] = ea_f32_to_fp16(x[i]);
}

/* ---- vector helpers ---------------------------------------------------- */

static float vec_dot_f16_f32(int64_t n, const uint16_t *a, const float *b)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(fload8(F_F16, a, i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(fload8(F_F16, a, i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(fload8(F_F16, a, i), _mm256_loadu_ps(b + i), acc0);
    float s = hsum_ps(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++)
        s += ea_fp16_to_f32(a[i]) * b[i];
    return s;
}

static void vec_axpy_f16(int64_t n, float alpha, const uint16_t *x, float *y)
{
    const __m256 av = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, fload8(F_F16, x, i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += alpha * ea_fp16_to_f32(x[i]);
}

static void vec_f32_to_f16(const float *x, uint16_t *y, int64_t n) { act_f16(x, y, n); }

static void vec_f16_to_f32(const uint16_t *x, float *y, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, fload8(F_F16, x, i));
    for (; i < n; i++)
        y[i] = ea_fp16_to_f32(x[i]);
}

static float vec_dot_f32(int64_t n, const float *a, const float *b)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    float s = hsum_ps(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void vec_axpy_f32(int64_t n, float alpha, const float *x, float *y)
{
    const __m256 av = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += alpha * x[i];
}

/* exp(x), |relative error| ~2e-7: x = n ln2 + r with |r| <= ln2/2 (ln2 in
 * two parts, Cody-Waite), exp(r) by the degree-7 minimax polynomial of the
 * Cephes library's expf, 2^n from the exponent bits. Inputs are clamped to
 * the range where the result is a normal float (the caller's x - max <= 0,
 * and -v of SiLU, which may be large either way). */
EA_ALWAYS_INLINE __m256 exp_ps(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

static float vec_exp_sum(int64_t n, float *x, float shift)
{
    const __m256 sh = _mm256_set1_ps(shift);
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
        _mm256_storeu_ps(x + i, v);
        acc = _mm256_add_ps(acc, v);
    }
    float sum = hsum_ps(acc);
    for (; i < n; i++) {
        x[i] = expf(x[i] - shift);
        sum += x[i];
    }
    return sum;
}

static void vec_silu_mul(int64_t n, float *g, const float *u)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(g + i);
        const __m256 d = _mm256_add_ps(one, exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), v)));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(v, d), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* a[0..7] -> the vector of their 8 horizontal sums (hadd tree). */
EA_ALWAYS_INLINE __m256 hsum8_ps(const __m256 a[8])
{
    const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

#define ATT_MAX_HD 256 /* head sizes the blocked kernels take (stack: rows of floats) */
/* Groups of up to ATT_SCORE_DIRECT_MAX query rows (a decode token's heads)
 * read F16 keys directly, ATT_SCORE_DIRECT rows per register tile (8
 * accumulators each); more rows (prefill tiles) share converted keys. */
#ifdef EA_X86_VNNI
#define ATT_SCORE_DIRECT 3
#define ATT_SCORE_DIRECT_MAX 8
#else
#define ATT_SCORE_DIRECT 1
#define ATT_SCORE_DIRECT_MAX 1
#endif

/* Scores of R query rows (R constant at each call) against 8 keys: 8
 * accumulators per row over the head, one reduction gives the row's 8
 * scores, of which the first jn are stored. The keys are either converted
 * rows kf (8 x hd floats) or, with kr non-NULL, the 8 F16 rows kr[] read
 * directly (few query rows: converting them into kf would cost more than
 * it saves). The arithmetic is the same either way. */
EA_ALWAYS_INLINE void att_scores_rows(int R, int64_t hd, const float *q, const float *kf, const uint16_t *const *kr,
                                      int jn, __m256 sc, float *s, size_t s_stride)
{
    __m256 acc[ATT_SCORE_DIRECT][8];
    for (int i = 0; i < R; i++)
        for (int jj = 0; jj < 8; jj++)
            acc[i][jj] = _mm256_setzero_ps();
    for (int64_t d = 0; d < hd; d += 8) {
        __m256 qv[ATT_SCORE_DIRECT];
        for (int i = 0; i < R; i++)
            qv[i] = _mm256_loadu_ps(q + i * hd + d);
        for (int jj = 0; jj < 8; jj++) {
            const __m256 kv = kr ? fload8(F_F16, kr[jj], d) : _mm256_load_ps(kf + jj * hd + d);
            for (int i = 0; i < R; i++)
                acc[i][jj] = _mm256_fmadd_ps(qv[i], kv, acc[i][jj]);
        }
    }
    for (int i = 0; i < R; i++) {
        const __m256 r = _mm256_mul_ps(hsum8_ps(acc[i]), sc);
        float *dst = s + (size_t)i * s_stride;
        if (jn == 8) {
            _mm256_storeu_ps(dst, r);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, r);
            memcpy(dst, tmp, sizeof(float) * (size_t)jn);
        }
    }
}

/* Scores against 8 keys at a time. Many query rows (a tile of tokens x
 * heads in prefill): the 8 key rows are converted once into floats and
 * serve every row, one row at a time. A few rows: the F16 keys are read
 * directly, several rows at a time. A score's arithmetic is the same either
 * way and whatever g and n (batch invariance). hd a multiple of 8 and at
 * most ATT_MAX_HD (other head sizes take the per-row helpers). */
static void vec_att_scores_f16(int64_t hd, int g, const float *q, const uint16_t *k, size_t k_stride,
                               int64_t n, float scale, float *s, size_t s_stride)
{
    if (hd % 8 || hd > ATT_MAX_HD) {
        for (int i = 0; i < g; i++)
            for (int64_t j = 0; j < n; j++)
                s[(size_t)i * s_stride + (size_t)j] = scale * vec_dot_f16_f32(hd, k + (size_t)j * k_stride, q + i * hd);
        return;
    }
    _Alignas(32) float kf[8 * ATT_MAX_HD];
    const __m256 sc = _mm256_set1_ps(scale);
    for (int64_t j0 = 0; j0 < n; j0 += 8) {
        const int jn = n - j0 < 8 ? (int)(n - j0) : 8;
        const uint16_t *kr[8];
        for (int jj = 0; jj < 8; jj++) /* missing rows repeat the last one */
            kr[jj] = k + (size_t)(j0 + (jj < jn ? jj : jn - 1)) * k_stride;
        float *sj = s + (size_t)j0;
        if (g <= ATT_SCORE_DIRECT_MAX) { /* one decode token's group: a few rows at a time */
            int i = 0;
            for (; i + ATT_SCORE_DIRECT <= g; i += ATT_SCORE_DIRECT)
                att_scores_rows(ATT_SCORE_DIRECT, hd, q + i * hd, NULL, kr, jn, sc, sj + (size_t)i * s_stride,
                                s_stride);
            switch (g - i) {
            case 1: att_scores_rows(1, hd, q + i * hd, NULL, kr, jn, sc, sj + (size_t)i * s_stride, s_stride); break;
#if ATT_SCORE_DIRECT > 2
            case 2: att_scores_rows(2, hd, q + i * hd, NULL, kr, jn, sc, sj + (size_t)i * s_stride, s_stride); break;
#endif
            default: break;
            }
            continue;
        }
        for (int jj = 0; jj < 8; jj++)
            for (int64_t d = 0; d < hd; d += 8)
                _mm256_store_ps(kf + jj * hd + d, fload8(F_F16, kr[jj], d));
        for (int i = 0; i < g; i++)
            att_scores_rows(1, hd, q + i * hd, kf, NULL, jn, sc, sj + (size_t)i * s_stride, s_stride);
    }
}

#ifdef EA_X86_VNNI
#define ATT_ACC_ROWS 8 /* query rows per register tile: 2 accumulators each */
#else
#define ATT_ACC_ROWS 4
#endif
#define ATT_ACC_KEYS 16 /* value rows converted to floats at a time */

/* out[0..R) += p * V for 16 values of the head at a time over jn value
 * rows: converted ones vf (jn x hd floats) or, with v non-NULL, F16 rows v
 * (v_stride apart) converted on the fly. R is a constant at each call, so
 * the accumulators stay in registers. */
EA_ALWAYS_INLINE void att_accum_rows(int R, int64_t hd, const float *p, size_t p_stride, const float *vf,
                                     const uint16_t *v, size_t v_stride, int64_t jn, float *out)
{
    for (int64_t d = 0; d < hd; d += 16) {
        __m256 a0[ATT_ACC_ROWS], a1[ATT_ACC_ROWS];
        for (int i = 0; i < R; i++) {
            a0[i] = _mm256_loadu_ps(out + (size_t)i * hd + d);
            a1[i] = _mm256_loadu_ps(out + (size_t)i * hd + d + 8);
        }
        for (int64_t j = 0; j < jn; j++) {
            const __m256 v0 = v ? fload8(F_F16, v + (size_t)j * v_stride, d) : _mm256_load_ps(vf + (size_t)j * hd + d);
            const __m256 v1 = v ? fload8(F_F16, v + (size_t)j * v_stride, d + 8)
                                : _mm256_load_ps(vf + (size_t)j * hd + d + 8);
            for (int i = 0; i < R; i++) {
                const __m256 pb = _mm256_broadcast_ss(p + (size_t)i * p_stride + (size_t)j);
                a0[i] = _mm256_fmadd_ps(pb, v0, a0[i]);
                a1[i] = _mm256_fmadd_ps(pb, v1, a1[i]);
            }
        }
        for (int i = 0; i < R; i++) {
            _mm256_storeu_ps(out + (size_t)i * hd + d, a0[i]);
            _mm256_storeu_ps(out + (size_t)i * hd + d + 8, a1[i]);
        }
    }
}

/* out += p * V: up to ATT_ACC_KEYS value rows are converted to floats once
 * and serve every query row (a tile of tokens x heads in prefill), taken
 * ATT_ACC_ROWS rows at a time; up to 3 rows (one decode token's group)
 * convert the value rows on the fly instead. Each output is one chain of
 * multiply-adds over j in order, whatever g and n, so a row's result does
 * not depend on the rows around it. hd a multiple of 16 and at most
 * ATT_MAX_HD (others take the per-row helper). */
static void vec_att_accum_f16(int64_t hd, int g, const float *p, size_t p_stride, const uint16_t *v,
                              size_t v_stride, int64_t n, float *out)
{
    if (hd % 16 || hd > ATT_MAX_HD) {
        for (int i = 0; i < g; i++)
            for (int64_t j = 0; j < n; j++)
                vec_axpy_f16(hd, p[(size_t)i * p_stride + (size_t)j], v + (size_t)j * v_stride, out + i * hd);
        return;
    }
    switch (g) { /* one decode token's group: no conversion buffer */
    case 1: att_accum_rows(1, hd, p, p_stride, NULL, v, v_stride, n, out); return;
    case 2: att_accum_rows(2, hd, p, p_stride, NULL, v, v_stride, n, out); return;
    case 3: att_accum_rows(3, hd, p, p_stride, NULL, v, v_stride, n, out); return;
    default: break;
    }
    _Alignas(32) float vf[ATT_ACC_KEYS * ATT_MAX_HD];
    for (int64_t j0 = 0; j0 < n; j0 += ATT_ACC_KEYS) {
        const int jn = n - j0 < ATT_ACC_KEYS ? (int)(n - j0) : ATT_ACC_KEYS;
        for (int j = 0; j < jn; j++)
            for (int64_t d = 0; d < hd; d += 8)
                _mm256_store_ps(vf + (size_t)j * hd + d, fload8(F_F16, v + (size_t)(j0 + j) * v_stride, d));
        int i0 = 0;
        for (; i0 + ATT_ACC_ROWS <= g; i0 += ATT_ACC_ROWS)
            att_accum_rows(ATT_ACC_ROWS, hd, p + (size_t)i0 * p_stride + j0, p_stride, vf, NULL, 0, jn,
                           out + (size_t)i0 * hd);
        const float *pt = p + (size_t)i0 * p_stride + j0;
        float *ot = out + (size_t)i0 * hd;
        switch (g - i0) { /* the remaining rows in one register tile */
        case 1: att_accum_rows(1, hd, pt, p_stride, vf, NULL, 0, jn, ot); break;
        case 2: att_accum_rows(2, hd, pt, p_stride, vf, NULL, 0, jn, ot); break;
        case 3: att_accum_rows(3, hd, pt, p_stride, vf, NULL, 0, jn, ot); break;
#if ATT_ACC_ROWS > 4
        case 4: att_accum_rows(4, hd, pt, p_stride, vf, NULL, 0, jn, ot); break;
        case 5: att_accum_rows(5, hd, pt, p_stride, vf, NULL, 0, jn, ot); break;
        case 6: att_accum_rows(6, hd, pt, p_stride, vf, NULL, 0, jn, ot); break;
        case 7: att_accum_rows(7, hd, pt, p_stride, vf, NULL, 0, jn, ot); break;
#endif
        default: break;
        }
    }
}

/* ---- installation ------------------------------------------------------ */

static void x86_install_float(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec)
{
    table[EA_TYPE_F32].gemm = gemm_f32;
    table[EA_TYPE_F16].gemm = gemm_f16;
    table[EA_TYPE_F16].quantize_act = act_f16;
    table[EA_TYPE_BF16].gemm = gemm_bf16;
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

static void x86_install_quants(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT])
{
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
}

#endif
