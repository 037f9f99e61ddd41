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
 * activation row (decode) the unpacking is cheap next to reading the weights.
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
#define EA_X86_SEG 1024 /* values of k per unpacked segment (a multiple of 256) */
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

EA_ALWAYS_INLINE float fp16_scalar(uint16_t h) { return _cvtsh_ss(h); }

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

/* Levels and scales of one block of one row. */
EA_ALWAYS_INLINE __m256i legacy_levels(enum legacy_kind kind, const uint8_t *p, float *d, float *m)
{
    switch (kind) {
    case L_Q4_0: {
        const struct ea_blk_q4_0 *b = (const void *)p;
        *d = fp16_scalar(b->d);
        return nibbles_32(b->qs);
    }
    case L_Q4_1: {
        const struct ea_blk_q4_1 *b = (const void *)p;
        *d = fp16_scalar(b->d);
        *m = fp16_scalar(b->m);
        return nibbles_32(b->qs);
    }
    case L_Q5_0: {
        const struct ea_blk_q5_0 *b = (const void *)p;
        *d = fp16_scalar(b->d);
        return _mm256_or_si256(nibbles_32(b->qs), fifth_bits_32(b->qh));
    }
    case L_Q5_1: {
        const struct ea_blk_q5_1 *b = (const void *)p;
        *d = fp16_scalar(b->d);
        *m = fp16_scalar(b->m);
        return _mm256_or_si256(nibbles_32(b->qs), fifth_bits_32(b->qh));
    }
    default: {
        const struct ea_blk_q8_0 *b = (const void *)p;
        *d = fp16_scalar(b->d);
        __m256i q = _mm256_loadu_si256((const __m256i *)b->qs);
#ifdef EA_X86_VNNI
        q = _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)); /* q + 128 as unsigned */
#endif
        return q;
    }
    }
}

EA_ALWAYS_INLINE void legacy_unpack(enum legacy_kind kind, const uint8_t *const rows[8], int64_t blk0,
                                    int nblk, struct legacy_tile *tile)
{
    const size_t bs = legacy_wsize(kind);
    for (int b = 0; b < nblk; b++) {
        __m256i r[8];
        for (int i = 0; i < 8; i++) {
            float m = 0;
            r[i] = legacy_levels(kind, rows[i] + (size_t)(blk0 + b) * bs, &tile[b].d[i], &m);
            tile[b].m[i] = m;
        }
        transpose_8x8_epi32(r);
        for (int t = 0; t < 8; t++)
            _mm256_store_si256((__m256i *)tile[b].w[t], r[t]);
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

/* out[c] += the 8 row dot products with activation row c over nblk blocks. */
EA_ALWAYS_INLINE void legacy_micro(enum legacy_kind kind, int C, const struct legacy_tile *tile, int nblk,
                                   const uint8_t *const x[], const int32_t *const sums[], __m256 out[])
{
    const size_t xb = legacy_q8_1_act(kind) ? 36 : 34, qoff = xb - 32;
    const int off = legacy_offset(kind);
#if !defined(EA_X86_VNNI)
    const bool sign_trick = kind == L_Q8_0;
#endif
    __m256 acc[QCOLS];
    for (int c = 0; c < C; c++)
        acc[c] = _mm256_setzero_ps();
    for (int b = 0; b < nblk; b++) {
        const struct legacy_tile *t = &tile[b];
        __m256i p0[QCOLS], p1[QCOLS];
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
    for (int c = 0; c < C; c++)
        out[c] = acc[c];
}

EA_ALWAYS_INLINE void gemm_legacy(enum legacy_kind kind, int64_t k, int64_t nr, int64_t nc, const void *w,
                                  size_t w_stride, const void *x, size_t x_stride, float *s, size_t s_stride)
{
    struct legacy_tile tile[EA_X86_SEG / 32];
    int32_t sums[COLBLK][EA_X86_SEG / 32];
    const int32_t *sp[QCOLS];
    const uint8_t *rows[8], *xp[QCOLS];
    const size_t xb = legacy_q8_1_act(kind) ? 36 : 34;
    const int off = legacy_offset(kind);
    for (int64_t k0 = 0; k0 < k; k0 += EA_X86_SEG) {
        const int nblk = (int)((k - k0 < EA_X86_SEG ? k - k0 : EA_X86_SEG) / 32);
        const int64_t blk0 = k0 / 32;
        for (int64_t j0 = 0; j0 < nc; j0 += COLBLK) {
            const int jn = (int)(nc - j0 < COLBLK ? nc - j0 : COLBLK);
            if (off)
                for (int j = 0; j < jn; j++)
                    q8_0_block_sums((const uint8_t *)x + (size_t)(j0 + j) * x_stride + (size_t)blk0 * 34,
                                    nblk, off, sums[j]);
            for (int64_t i0 = 0; i0 < nr; i0 += 8) {
                const int n = (int)(nr - i0 < 8 ? nr - i0 : 8);
                for (int i = 0; i < 8; i++) /* missing rows repeat the last one */
                    rows[i] = (const uint8_t *)w + (size_t)(i0 + (i < n ? i : n - 1)) * w_stride;
                legacy_unpack(kind, rows, blk0, nblk, tile);
                int j = 0;
                for (; j + QCOLS <= jn; j += QCOLS) {
                    __m256 out[QCOLS];
                    for (int c = 0; c < QCOLS; c++) {
                        xp[c] = (const uint8_t *)x + (size_t)(j0 + j + c) * x_stride + (size_t)blk0 * xb;
                        sp[c] = sums[j + c];
                    }
                    legacy_micro(kind, QCOLS, tile, nblk, xp, sp, out);
                    for (int c = 0; c < QCOLS; c++)
                        store_rows(s + (size_t)(j0 + j + c) * s_stride + i0, out[c], n, k0 > 0);
                }
                for (; j < jn; j++) {
                    __m256 out[1];
                    xp[0] = (const uint8_t *)x + (size_t)(j0 + j) * x_stride + (size_t)blk0 * xb;
                    sp[0] = sums[j];
                    legacy_micro(kind, 1, tile, nblk, xp, sp, out);
                    store_rows(s + (size_t)(j0 + j) * s_stride + i0, out[0], n, k0 > 0);
                }
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

/* Levels (unsigned) of values 32v .. 32v + 31 of one super-block. */
EA_ALWAYS_INLINE __m256i k_levels(enum k_kind kind, const uint8_t *p, int v)
{
    const int h = v / 4, s = v % 4;
    switch (kind) {
    case K_Q2: {
        const struct ea_blk_q2_k *b = (const void *)p;
        return low_bits(_mm256_loadu_si256((const __m256i *)(b->qs + 32 * h)), 2 * s, 3);
    }
    case K_Q3: {
        const struct ea_blk_q3_k *b = (const void *)p;
        __m256i lo = low_bits(_mm256_loadu_si256((const __m256i *)(b->qs + 32 * h)), 2 * s, 3);
        __m256i hi = low_bits(_mm256_loadu_si256((const __m256i *)b->hmask), v, 1);
        return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 2));
    }
    case K_Q4: {
        const struct ea_blk_q4_k *b = (const void *)p;
        return low_bits(_mm256_loadu_si256((const __m256i *)(b->qs + 32 * (v / 2))), 4 * (v & 1), 15);
    }
    case K_Q5: {
        const struct ea_blk_q5_k *b = (const void *)p;
        __m256i lo = low_bits(_mm256_loadu_si256((const __m256i *)(b->qs + 32 * (v / 2))), 4 * (v & 1), 15);
        __m256i hi = low_bits(_mm256_loadu_si256((const __m256i *)b->qh), v, 1);
        return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
    }
    default: {
        const struct ea_blk_q6_k *b = (const void *)p;
        __m256i lo = low_bits(_mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32 * (s & 1))),
                              4 * (s >> 1), 15);
        __m256i hi = low_bits(_mm256_loadu_si256((const __m256i *)(b->qh + 32 * h)), 2 * s, 3);
        return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
    }
    }
}

EA_ALWAYS_INLINE int32_t pair16(int a, int b) { return (int32_t)((uint32_t)(uint16_t)a | (uint32_t)(uint16_t)b << 16); }

/* Scales of one super-block of row i into the tile's lane i. */
EA_ALWAYS_INLINE void k_scales(enum k_kind kind, const uint8_t *p, struct k_tile *t, int i)
{
    int sc[16], mn[16];
    switch (kind) {
    case K_Q2: {
        const struct ea_blk_q2_k *b = (const void *)p;
        for (int g = 0; g < 16; g++) {
            sc[g] = b->scales[g] & 15;
            mn[g] = b->scales[g] >> 4;
        }
        t->d[i] = fp16_scalar(b->d);
        t->dmin[i] = fp16_scalar(b->dmin);
        break;
    }
    case K_Q3: {
        const struct ea_blk_q3_k *b = (const void *)p;
        int8_t s8[16];
        ea__q3k_scales(b->scales, s8);
        for (int g = 0; g < 16; g++) {
            sc[g] = s8[g];
            mn[g] = 4 * s8[g];
        }
        t->d[i] = fp16_scalar(b->d);
        t->dmin[i] = 0;
        break;
    }
    case K_Q4:
    case K_Q5: {
        const uint8_t *packed = kind == K_Q4 ? ((const struct ea_blk_q4_k *)(const void *)p)->scales
                                             : ((const struct ea_blk_q5_k *)(const void *)p)->scales;
        for (int j = 0; j < 8; j++) {
            uint8_t s, m;
            ea__k4_scale_min(j, packed, &s, &m);
            sc[j] = s;
            mn[2 * j] = mn[2 * j + 1] = m; /* one min per 32 = two 16-groups */
        }
        const uint16_t *dd = (const void *)p; /* d, dmin lead both structs */
        t->d[i] = fp16_scalar(dd[0]);
        t->dmin[i] = fp16_scalar(dd[1]);
        break;
    }
    default: {
        const struct ea_blk_q6_k *b = (const void *)p;
        for (int g = 0; g < 16; g++) {
            sc[g] = b->scales[g];
            mn[g] = 32 * b->scales[g];
        }
        t->d[i] = fp16_scalar(b->d);
        t->dmin[i] = 0;
        break;
    }
    }
    for (int g = 0; g < k_nsub(kind); g++)
        t->sc[g][i] = sc[g];
    for (int u = 0; u < 8; u++)
        t->mins[u][i] = pair16(mn[2 * u], mn[2 * u + 1]);
}

EA_ALWAYS_INLINE void k_unpack(enum k_kind kind, const uint8_t *const rows[8], int64_t sb0, int nsb,
                               struct k_tile *tile)
{
    const size_t bs = k_wsize(kind);
    for (int b = 0; b < nsb; b++) {
        for (int v = 0; v < 8; v++) {
            __m256i r[8];
            for (int i = 0; i < 8; i++)
                r[i] = k_levels(kind, rows[i] + (size_t)(sb0 + b) * bs, v);
            transpose_8x8_epi32(r);
            for (int t = 0; t < 8; t++)
                _mm256_store_si256((__m256i *)tile[b].w[8 * v + t], r[t]);
        }
        for (int i = 0; i < 8; i++)
            k_scales(kind, rows[i] + (size_t)(sb0 + b) * bs, &tile[b], i);
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

EA_ALWAYS_INLINE void gemm_k(enum k_kind kind, int64_t k, int64_t nr, int64_t nc, const void *w,
                             size_t w_stride, const void *x, size_t x_stride, float *s, size_t s_stride)
{
    struct k_tile tile[EA_X86_SEG / EA_QK_K];
    const uint8_t *rows[8];
    const struct ea_blk_q8_k *xp[QCOLS];
    for (int64_t k0 = 0; k0 < k; k0 += EA_X86_SEG) {
        const int nsb = (int)((k - k0 < EA_X86_SEG ? k - k0 : EA_X86_SEG) / EA_QK_K);
        const int64_t sb0 = k0 / EA_QK_K;
        for (int64_t i0 = 0; i0 < nr; i0 += 8) {
            const int n = (int)(nr - i0 < 8 ? nr - i0 : 8);
            for (int i = 0; i < 8; i++)
                rows[i] = (const uint8_t *)w + (size_t)(i0 + (i < n ? i : n - 1)) * w_stride;
            k_unpack(kind, rows, sb0, nsb, tile);
            int64_t j = 0;
            for (; j + QCOLS <= nc; j += QCOLS) {
                __m256 out[QCOLS];
                for (int c = 0; c < QCOLS; c++)
                    xp[c] = (const struct ea_blk_q8_k *)(const void *)((const uint8_t *)x +
                                                                      (size_t)(j + c) * x_stride) + sb0;
                k_micro(kind, QCOLS, tile, nsb, xp, out);
                for (int c = 0; c < QCOLS; c++)
                    store_rows(s + (size_t)(j + c) * s_stride + i0, out[c], n, k0 > 0);
            }
            for (; j < nc; j++) {
                __m256 out[1];
                xp[0] = (const struct ea_blk_q8_k *)(const void *)((const uint8_t *)x + (size_t)j * x_stride) + sb0;
                k_micro(kind, 1, tile, nsb, xp, out);
                store_rows(s + (size_t)j * s_stride + i0, out[0], n, k0 > 0);
            }
        }
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

EA_ALWAYS_INLINE void gemm_float(enum f_kind kind, int64_t k, int64_t nr, int64_t nc, const void *w,
                                 size_t w_stride, const void *x, size_t x_stride, float *s, size_t s_stride)
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
