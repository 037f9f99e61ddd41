/* packed_avx512.c - the avx512 variant's packed weight layout: quantized
 * weights rearranged once at model load into tiles of 16 rows that the
 * matmul streams with 512-bit VNNI and no unpacking (kernels.h:
 * ea_pack_ops). Built with AVX-512 F/BW/VL/DQ + VNNI; installed only where
 * VNNI is present. Activations are the avx512 variant's Q8_0 rows.
 *
 * Why: the row-interleaved kernels of kernels_x86.h gather 8 rows and
 * transpose them on every call; for decode that unpacking is as expensive
 * as reading the weights, and 256-bit tiles leave half of Zen 4's front end
 * to loads and broadcasts. Here a tile is laid out as the kernel consumes
 * it, so decode is a sequential stream per thread and one vpdpbusd on a
 * 512-bit vector advances 16 row dot products by 4 values.
 *
 * Tile of 16 rows (rows past the matrix end are zero), for n blocks of 32
 * values (Q4_0, Q8_0), in this order:
 *   levels: per block, vectors u = 0..V-1 of 64 bytes; 32-bit lane r of
 *           vector u holds 4 consecutive levels of row r, unsigned:
 *           Q4_0: V = 4, low nibbles = values 4u..4u+3, high nibbles =
 *                 values 16+4u..; the stored quants as they are (0..15);
 *           Q8_0: V = 8, values 4u..4u+3 as q + 128;
 *   scales: per block the 16 rows' fp16 d (32 bytes);
 *   padding to 64 bytes.
 * The same total size as the rows it replaces, up to that padding and the
 * zero rows of a partial last tile.
 *
 * Arithmetic: levels are unsigned and activations (Q8_0 rows) signed, so the
 * offset (8 for Q4_0, 128 for Q8_0) is subtracted in integers as off * (sum
 * of the activation block), from a table built once per call; the per-block
 * integer sums are exact, then scaled by d_w * d_x and summed in float in
 * exactly the order of the unpacked kernels of kernels_x86.h (per lane the
 * same operations), so packed and unpacked weights give identical bits, and
 * an output depends on neither the batch nor the row range it is in.
 * Does not hold: the unpacked kernels (kernels_x86.h), CPU checks.
 */
#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "kernels/quant_blocks.h"
#include "kernels/x86/x86_int.h"

#define PK_ROWS 16    /* rows per tile */
#define PK_COLS 4     /* activation rows per micro-kernel call */
#define PK_TABLE 6144 /* (activation row, block) entries of the per-call table */
#define PK_L2_BYTES (384 * 1024) /* weights of one row block of prefill */
#define PK_SEG_BLOCKS (EA_X86_SEG / EA_QK) /* blocks per segment of k */

#ifndef PK_PF
#define PK_PF 0
#endif
#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum pk_kind { PK_Q4_0, PK_Q8_0 };

ALWAYS_INLINE size_t pk_level_bytes(enum pk_kind kind) { return kind == PK_Q4_0 ? 256 : 512; }
ALWAYS_INLINE int pk_offset(enum pk_kind kind) { return kind == PK_Q4_0 ? 8 : 128; }

ALWAYS_INLINE size_t pk_tile_bytes(enum pk_kind kind, int64_t nb)
{
    size_t b = (size_t)nb * (pk_level_bytes(kind) + 32);
    return (b + 63) & ~(size_t)63;
}

/* ---- packing ------------------------------------------------------------ */

ALWAYS_INLINE size_t pk_size(enum pk_kind kind, int64_t k, int64_t nr)
{
    const int64_t nb = k / EA_QK;
    if (k <= 0 || k % EA_QK || nr <= 0 || nb > PK_TABLE)
        return 0;
    return (size_t)((nr + PK_ROWS - 1) / PK_ROWS) * pk_tile_bytes(kind, nb);
}

/* Tiles holding rows [r0, r1) (r0 a multiple of PK_ROWS). Rows are read
 * block by block, 16 at a time, and every 4-byte group goes to its lane;
 * only the rows past the matrix end and the tile's padding are zeroed. */
ALWAYS_INLINE void pk_repack(enum pk_kind kind, int64_t k, int64_t nr, int64_t r0, int64_t r1, const void *w,
                             size_t w_stride, void *dst)
{
    const int64_t nb = k / EA_QK;
    const size_t lb = pk_level_bytes(kind), tb = pk_tile_bytes(kind, nb);
    const size_t bs = kind == PK_Q4_0 ? sizeof(struct ea_blk_q4_0) : sizeof(struct ea_blk_q8_0);
    if (r1 > nr)
        r1 = nr;
    for (int64_t t0 = r0; t0 < r1; t0 += PK_ROWS) {
        uint8_t *tile = (uint8_t *)dst + (size_t)(t0 / PK_ROWS) * tb;
        uint8_t *lev = tile, *sc = tile + (size_t)nb * lb;
        const int n = (int)(nr - t0 < PK_ROWS ? nr - t0 : PK_ROWS);
        const size_t used = (size_t)nb * (lb + 32);
        memset(tile + used, 0, tb - used);
        if (n < PK_ROWS)
            memset(tile, 0, used);
        const uint8_t *rows[PK_ROWS];
        for (int r = 0; r < n; r++)
            rows[r] = (const uint8_t *)w + (size_t)(t0 + r) * w_stride;
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *lv = lev + (size_t)b * lb;
            uint16_t *d = (uint16_t *)(void *)(sc + (size_t)b * 32);
            for (int r = 0; r < n; r++) {
                const uint8_t *blk = rows[r] + (size_t)b * bs;
                memcpy(&d[r], blk, 2); /* d leads both block formats */
                if (kind == PK_Q4_0) {
                    for (int u = 0; u < 4; u++)
                        memcpy(lv + 64 * u + 4 * r, blk + 2 + 4 * u, 4);
                } else {
                    for (int u = 0; u < 8; u++) {
                        uint32_t v;
                        memcpy(&v, blk + 2 + 4 * u, 4);
                        v ^= 0x80808080u; /* q + 128 */
                        memcpy(lv + 64 * u + 4 * r, &v, 4);
                    }
                }
            }
        }
    }
}

/* ---- activation table ----------------------------------------------------- */

/* For activation rows x[0..nc) (Q8_0): sums[j * nb + b] = off * (sum of the
 * quants of block b), dx[j * nb + b] = its scale as float. */
static void pk_table(const uint8_t *x, size_t x_stride, int64_t nc, int64_t nb, int off, int32_t *sums,
                     float *dx)
{
    const __m256i ones = _mm256_set1_epi8(1);
    for (int64_t j = 0; j < nc; j++) {
        const struct ea_blk_q8_0 *xb = (const struct ea_blk_q8_0 *)(const void *)(x + (size_t)j * x_stride);
        for (int64_t b = 0; b < nb; b++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)xb[b].qs);
            __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q);
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 1));
            sums[j * nb + b] = off * _mm_cvtsi128_si32(h);
            dx[j * nb + b] = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(xb[b].d)));
        }
    }
}

/* ---- micro-kernel ----------------------------------------------------------- */

ALWAYS_INLINE __m512i bcast4(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* acc[c] += the 16 row dot products of block b of a tile with activation
 * row c. */
ALWAYS_INLINE void pk_block(enum pk_kind kind, int C, const uint8_t *tile, int64_t nb, int64_t b,
                            const uint8_t *const x[], const int32_t *const sums[], const float *const dx[],
                            __m512 acc[])
{
    const size_t lb = pk_level_bytes(kind);
    const __m512i *lv = (const __m512i *)(const void *)(tile + (size_t)b * lb);
    __m512i w[8];
    if (kind == PK_Q4_0) {
        const __m512i low4 = _mm512_set1_epi8(15);
        for (int u = 0; u < 4; u++) {
            const __m512i q = _mm512_load_si512(lv + u);
            w[u] = _mm512_and_si512(q, low4);
            w[u + 4] = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
        }
    } else {
        for (int u = 0; u < 8; u++)
            w[u] = _mm512_load_si512(lv + u);
    }
    __m512i p0[PK_COLS], p1[PK_COLS]; /* even and odd steps: two add chains */
    for (int c = 0; c < C; c++) {
        p0[c] = _mm512_setzero_si512();
        p1[c] = _mm512_set1_epi32(-sums[c][b]);
    }
    for (int s = 0; s < 8; s++)
        for (int c = 0; c < C; c++) {
            const __m512i a = bcast4(x[c] + (size_t)b * sizeof(struct ea_blk_q8_0) + 2 + 4 * s);
            if (s & 1)
                p1[c] = _mm512_dpbusd_epi32(p1[c], w[s], a);
            else
                p0[c] = _mm512_dpbusd_epi32(p0[c], w[s], a);
        }
    const uint8_t *sc = tile + (size_t)nb * lb + (size_t)b * 32;
    const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)sc));
    for (int c = 0; c < C; c++) {
        const __m512 v = _mm512_cvtepi32_ps(_mm512_add_epi32(p0[c], p1[c]));
        acc[c] = _mm512_fmadd_ps(v, _mm512_mul_ps(d, _mm512_set1_ps(dx[c][b])), acc[c]);
    }
}

/* out[c] = the 16 row dot products of one tile with activation row c over
 * all nb blocks, in the float order of the unpacked kernels (kernels_x86.h:
 * per segment of EA_X86_SEG values, even and odd blocks in two
 * accumulators, then the segments added in order), so that a packed matrix
 * gives bit for bit the results of the rows it was packed from. */
ALWAYS_INLINE void pk_micro(enum pk_kind kind, int C, const uint8_t *tile, int64_t nb,
                            const uint8_t *const x[], const int32_t *const sums[], const float *const dx[],
                            __m512 out[])
{
    for (int c = 0; c < C; c++)
        out[c] = _mm512_setzero_ps(); /* unread: the first segment assigns */
    for (int64_t s0 = 0; s0 < nb; s0 += PK_SEG_BLOCKS) {
        const int64_t s1 = nb - s0 < PK_SEG_BLOCKS ? nb : s0 + PK_SEG_BLOCKS;
        __m512 acc0[PK_COLS], acc1[PK_COLS];
        for (int c = 0; c < C; c++)
            acc0[c] = acc1[c] = _mm512_setzero_ps();
        int64_t b = s0;
        for (; b + 2 <= s1; b += 2) {
            pk_block(kind, C, tile, nb, b, x, sums, dx, acc0);
            pk_block(kind, C, tile, nb, b + 1, x, sums, dx, acc1);
        }
        if (b < s1)
            pk_block(kind, C, tile, nb, b, x, sums, dx, acc0);
        for (int c = 0; c < C; c++) {
            const __m512 seg = _mm512_add_ps(acc0[c], acc1[c]);
            out[c] = s0 == 0 ? seg : _mm512_add_ps(out[c], seg);
        }
    }
}

ALWAYS_INLINE void pk_store(float *dst, __m512 v, int n)
{
    if (n == PK_ROWS)
        _mm512_storeu_ps(dst, v);
    else
        _mm512_mask_storeu_ps(dst, (__mmask16)((1u << n) - 1), v);
}

/* C activation rows (j .. j + C - 1 of the table's chunk starting at j0) x
 * one tile. */
ALWAYS_INLINE void pk_tile_cols(enum pk_kind kind, int C, const uint8_t *tile, int n, int64_t nb, const void *x,
                                size_t x_stride, int64_t j, int64_t j0, const int32_t *sums, const float *dx,
                                float *s, size_t s_stride)
{
    const uint8_t *xp[PK_COLS];
    const int32_t *sp[PK_COLS];
    const float *dp[PK_COLS];
    __m512 out[PK_COLS];
    for (int c = 0; c < C; c++) {
        xp[c] = (const uint8_t *)x + (size_t)(j + c) * x_stride;
        sp[c] = sums + (j + c - j0) * nb;
        dp[c] = dx + (j + c - j0) * nb;
    }
    pk_micro(kind, C, tile, nb, xp, sp, dp, out);
    for (int c = 0; c < C; c++)
        pk_store(s + (size_t)(j + c) * s_stride, out[c], n);
}

/* Rows i0 .. i0 + nr - 1 (i0 a multiple of PK_ROWS) of the packed matrix wp
 * times activation rows 0 .. nc - 1; s points at the output of row i0.
 * Loop order: activation rows in chunks whose table fits; within a chunk,
 * row blocks whose weights stay in L2 while every group of PK_COLS
 * activation rows passes over them. Decode (nc = 1) is then one sequential
 * pass over the tiles. */
ALWAYS_INLINE void pk_gemm(enum pk_kind kind, int64_t k, int64_t i0, int64_t nr, int64_t nc, const void *wp,
                           const void *x, size_t x_stride, float *s, size_t s_stride)
{
    int32_t sums[PK_TABLE];
    float dx[PK_TABLE];
    const int64_t nb = k / EA_QK;
    const size_t tb = pk_tile_bytes(kind, nb);
    const uint8_t *tiles = (const uint8_t *)wp + (size_t)(i0 / PK_ROWS) * tb;
    const int64_t ntiles = (nr + PK_ROWS - 1) / PK_ROWS;
    int64_t chunk = nb > 0 ? PK_TABLE / nb : nc;
    int64_t rb = (int64_t)(PK_L2_BYTES / tb);
    if (chunk < 1 || nb == 0) { /* not packable (repack_size said 0) or k = 0 */
        for (int64_t j = 0; j < nc; j++)
            for (int64_t i = 0; i < nr && nb == 0; i++)
                s[(size_t)j * s_stride + (size_t)i] = 0;
        return;
    }
    if (rb < 1)
        rb = 1;
    for (int64_t j0 = 0; j0 < nc; j0 += chunk) {
        const int64_t jn = nc - j0 < chunk ? nc - j0 : chunk;
        pk_table((const uint8_t *)x + (size_t)j0 * x_stride, x_stride, jn, nb, pk_offset(kind), sums, dx);
        for (int64_t t0 = 0; t0 < ntiles; t0 += rb) {
            const int64_t t1 = t0 + rb < ntiles ? t0 + rb : ntiles;
            int64_t j = j0;
            for (; j + PK_COLS <= j0 + jn; j += PK_COLS)
                for (int64_t t = t0; t < t1; t++) {
                    const int n = (int)(nr - t * PK_ROWS < PK_ROWS ? nr - t * PK_ROWS : PK_ROWS);
                    pk_tile_cols(kind, PK_COLS, tiles + (size_t)t * tb, n, nb, x, x_stride, j, j0, sums, dx,
                                 s + t * PK_ROWS, s_stride);
                }
            const int rest = (int)(j0 + jn - j);
            for (int64_t t = t0; t < t1 && rest > 0; t++) {
                const int n = (int)(nr - t * PK_ROWS < PK_ROWS ? nr - t * PK_ROWS : PK_ROWS);
                const uint8_t *tile = tiles + (size_t)t * tb;
                float *st = s + t * PK_ROWS;
                if (rest == 3)
                    pk_tile_cols(kind, 3, tile, n, nb, x, x_stride, j, j0, sums, dx, st, s_stride);
                else if (rest == 2)
                    pk_tile_cols(kind, 2, tile, n, nb, x, x_stride, j, j0, sums, dx, st, s_stride);
                else
                    pk_tile_cols(kind, 1, tile, n, nb, x, x_stride, j, j0, sums, dx, st, s_stride);
            }
        }
    }
}

/* ---- entry points ------------------------------------------------------------ */

#define PK_OPS(name, kind)                                                                              \
    static size_t repack_size_##name(int64_t k, int64_t nr) { return pk_size(kind, k, nr); }             \
    static void repack_##name(int64_t k, int64_t nr, int64_t r0, int64_t r1, const void *w,             \
                              size_t w_stride, void *dst)                                               \
    {                                                                                                   \
        pk_repack(kind, k, nr, r0, r1, w, w_stride, dst);                                               \
    }                                                                                                   \
    static void gemm_packed_##name(int64_t k, int64_t i0, int64_t nr, int64_t nc, const void *wp,        \
                                   const void *x, size_t x_stride, float *s, size_t s_stride)           \
    {                                                                                                   \
        pk_gemm(kind, k, i0, nr, nc, wp, x, x_stride, s, s_stride);                                     \
    }

PK_OPS(q4_0, PK_Q4_0)
PK_OPS(q8_0, PK_Q8_0)

void ea__avx512_install_pack(struct ea_pack_ops table[EA_TYPE_ID_LIMIT])
{
    if (!ea__cpu_has_avx512_vnni())
        return;
    table[EA_TYPE_Q4_0] = (struct ea_pack_ops){.rows = PK_ROWS, .size = repack_size_q4_0,
                                               .repack = repack_q4_0, .gemm = gemm_packed_q4_0};
    table[EA_TYPE_Q8_0] = (struct ea_pack_ops){.rows = PK_ROWS, .size = repack_size_q8_0,
                                               .repack = repack_q8_0, .gemm = gemm_packed_q8_0};
}
