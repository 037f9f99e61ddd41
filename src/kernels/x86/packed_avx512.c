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
 * of the activation block), from the activation panel built once per call
 * (PK_PANEL); the per-block
 * integer sums are exact, then scaled by d_w * d_x and summed in float in
 * exactly the order of the unpacked kernels of kernels_x86.h (per lane the
 * same operations), so packed and unpacked weights give identical bits, and
 * an output depends on neither the batch nor the row range it is in.
 *
 * Batches: decode (1 row) streams the tiles; small batches (2-16 rows, the
 * engine's decode steps) take one tile at a time through every group of
 * activation rows while the next tile is prefetched; larger ones (prefill)
 * pass each group over row blocks that stay in L2. Q6_K tiles are unpacked
 * once into a scratch copy when 8 or more rows share them.
 * Does not hold: the unpacked kernels (kernels_x86.h), CPU checks.
 */
#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "kernels/quant_blocks.h"
#include "kernels/x86/x86_int.h"

#define PK_ROWS 16    /* rows per tile */
#define PK_COLS 8     /* activation rows per micro-kernel call, at most */
/* Activation rows per call: 8 for the legacy formats (a block's level
 * vectors are unpacked once for 8 rows, each row's dot product one chain of
 * vpdpbusd), 4 for the K-quants (whose per-row integer sums, mins and level
 * vectors would not fit the 32 registers at 8). */
#define PK_COLS_LEGACY 8
#define PK_COLS_K 4
/* The activation panel: per group of 8 activation rows and block of 32
 * values, the 8 rows' quants (8 x 32 bytes), then their offset sums (8 x
 * int32) and scales (8 x float), so that a micro-kernel reaches every row's
 * data at constant offsets from one pointer. PK_PANEL (group, block) entries
 * per call (200 KB of stack); a legacy matrix needs nb <= PK_PANEL. */
#define PK_PANEL 640
#define PK_PE 320 /* bytes per panel entry */
#define PK_L2_BYTES (384 * 1024) /* weights of one row block of prefill */

#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum pk_kind { PK_Q4_0, PK_Q8_0, PK_Q4_K, PK_Q6_K };

ALWAYS_INLINE bool pk_is_k(enum pk_kind kind) { return kind == PK_Q4_K || kind == PK_Q6_K; }
ALWAYS_INLINE int64_t pk_block_values(enum pk_kind kind) { return pk_is_k(kind) ? EA_QK_K : EA_QK; }
/* Bytes per block of the tile's body (levels, and the K-quants' small
 * scales) and of its scale section (fp16 d of the 16 rows; Q4_K adds dmin). */
ALWAYS_INLINE size_t pk_body_bytes(enum pk_kind kind)
{
    return kind == PK_Q4_0 ? 256 : kind == PK_Q8_0 ? 512 : kind == PK_Q4_K ? 2304 : 3328;
}
#define Q6_LV 256 /* Q6_K body: 16 x 16 scale bytes, then the level vectors */
ALWAYS_INLINE size_t pk_sec_bytes(enum pk_kind kind) { return kind == PK_Q4_K ? 64 : 32; }
ALWAYS_INLINE size_t pk_src_bytes(enum pk_kind kind)
{
    return kind == PK_Q4_0 ? sizeof(struct ea_blk_q4_0)
           : kind == PK_Q8_0 ? sizeof(struct ea_blk_q8_0)
           : kind == PK_Q4_K ? sizeof(struct ea_blk_q4_k)
                             : sizeof(struct ea_blk_q6_k);
}
ALWAYS_INLINE int pk_offset(enum pk_kind kind) { return kind == PK_Q4_0 ? 8 : 128; } /* legacy only */

/* Blocks are stored in groups: the group's scale sections, then their
 * bodies; a group is a whole number of cache lines, so every level vector
 * is aligned, and a tile is read in address order (scales stored after the
 * levels, or at the tile's end, stalled decode on misses ahead of the
 * hardware prefetcher's stream). */
ALWAYS_INLINE int64_t pk_group(enum pk_kind kind) { return kind == PK_Q4_K ? 1 : 2; }
ALWAYS_INLINE size_t pk_group_bytes(enum pk_kind kind)
{
    return (size_t)pk_group(kind) * (pk_body_bytes(kind) + pk_sec_bytes(kind));
}
_Static_assert(64 % 64 == 0 && 256 % 64 == 0 && 512 % 64 == 0 && 2304 % 64 == 0 && 3328 % 64 == 0,
               "packed groups: the scale sections of a group (2 x 32 or 64 bytes) and every body must be "
               "whole cache lines");

ALWAYS_INLINE size_t pk_tile_bytes(enum pk_kind kind, int64_t nb)
{
    return (size_t)((nb + pk_group(kind) - 1) / pk_group(kind)) * pk_group_bytes(kind);
}

ALWAYS_INLINE const uint8_t *pk_sec(enum pk_kind kind, const uint8_t *tile, int64_t b)
{
    return tile + (size_t)(b / pk_group(kind)) * pk_group_bytes(kind) + (size_t)(b % pk_group(kind)) * pk_sec_bytes(kind);
}

ALWAYS_INLINE const uint8_t *pk_body(enum pk_kind kind, const uint8_t *tile, int64_t b)
{
    return tile + (size_t)(b / pk_group(kind)) * pk_group_bytes(kind) +
           (size_t)pk_group(kind) * pk_sec_bytes(kind) + (size_t)(b % pk_group(kind)) * pk_body_bytes(kind);
}

/* ---- packing ------------------------------------------------------------ */

ALWAYS_INLINE size_t pk_size(enum pk_kind kind, int64_t k, int64_t nr)
{
    const int64_t bv = pk_block_values(kind), nb = k / bv;
    if (k <= 0 || k % bv || nr <= 0 || (!pk_is_k(kind) && nb > PK_PANEL))
        return 0;
    return (size_t)((nr + PK_ROWS - 1) / PK_ROWS) * pk_tile_bytes(kind, nb);
}

/* Dword u of the 32 bytes at src goes to lane r of the 64-byte vector u
 * at dst (xor'ed with x). */
ALWAYS_INLINE void put_dwords(uint8_t *dst, const uint8_t *src, int n_dwords, int r, uint32_t x)
{
    for (int u = 0; u < n_dwords; u++) {
        uint32_t v;
        memcpy(&v, src + 4 * u, 4);
        v ^= x;
        memcpy(dst + 64 * u + 4 * r, &v, 4);
    }
}

/* One block of row r into its tile: body and scale section. */
ALWAYS_INLINE void pk_put_block(enum pk_kind kind, const uint8_t *blk, int r, uint8_t *body, uint8_t *sec)
{
    switch (kind) {
    case PK_Q4_0:
        memcpy(sec + 2 * r, blk, 2); /* d */
        put_dwords(body, blk + offsetof(struct ea_blk_q4_0, qs), 4, r, 0);
        break;
    case PK_Q8_0:
        memcpy(sec + 2 * r, blk, 2);
        put_dwords(body, blk + offsetof(struct ea_blk_q8_0, qs), 8, r, 0x80808080u); /* q + 128 */
        break;
    case PK_Q4_K: {
        const struct ea_blk_q4_k *b = (const struct ea_blk_q4_k *)(const void *)blk;
        memcpy(sec + 2 * r, &b->d, 2);
        memcpy(sec + 32 + 2 * r, &b->dmin, 2);
        for (int g = 0; g < 8; g++) /* sub-block scales, then mins, as bytes */
            ea__k4_scale_min(g, b->scales, body + 16 * g + r, body + 128 + 16 * g + r);
        for (int p = 0; p < 4; p++) /* then the levels: vectors 8p + u */
            put_dwords(body + 256 + 512 * p, b->qs + 32 * p, 8, r, 0);
        break;
    }
    default: {
        const struct ea_blk_q6_k *b = (const struct ea_blk_q6_k *)(const void *)blk;
        memcpy(sec + 2 * r, &b->d, 2);
        /* in the order the kernel reads them: scales, then per half h of
         * the super-block ql[64h..+32), qh[32h..+32), ql[64h+32..+32) */
        for (int h = 0; h < 2; h++) {
            put_dwords(body + Q6_LV + 1536 * h, b->ql + 64 * h, 8, r, 0);
            put_dwords(body + Q6_LV + 1536 * h + 512, b->qh + 32 * h, 8, r, 0);
            put_dwords(body + Q6_LV + 1536 * h + 1024, b->ql + 64 * h + 32, 8, r, 0);
        }
        for (int g = 0; g < 16; g++)
            body[16 * g + r] = (uint8_t)b->scales[g];
        break;
    }
    }
}

/* Tiles holding rows [r0, r1) (r0 a multiple of PK_ROWS), block by block
 * over 16 rows; only the rows past the matrix end and the tile's padding
 * are zeroed. */
ALWAYS_INLINE void pk_repack(enum pk_kind kind, int64_t k, int64_t nr, int64_t r0, int64_t r1, const void *w,
                             size_t w_stride, void *dst)
{
    const int64_t nb = k / pk_block_values(kind);
    const size_t tb = pk_tile_bytes(kind, nb), bs = pk_src_bytes(kind);
    if (r1 > nr)
        r1 = nr;
    for (int64_t t0 = r0; t0 < r1; t0 += PK_ROWS) {
        uint8_t *tile = (uint8_t *)dst + (size_t)(t0 / PK_ROWS) * tb;
        const int n = (int)(nr - t0 < PK_ROWS ? nr - t0 : PK_ROWS);
        if (n < PK_ROWS || nb % pk_group(kind)) /* zero rows, or a partial last group */
            memset(tile, 0, tb);
        const uint8_t *rows[PK_ROWS];
        for (int r = 0; r < n; r++)
            rows[r] = (const uint8_t *)w + (size_t)(t0 + r) * w_stride;
        for (int64_t b = 0; b < nb; b++)
            for (int r = 0; r < n; r++)
                pk_put_block(kind, rows[r] + (size_t)b * bs, r, (uint8_t *)pk_body(kind, tile, b),
                             (uint8_t *)pk_sec(kind, tile, b));
    }
}

/* ---- activation panel ----------------------------------------------------- */

/* The panel of activation rows x[0..nc) (Q8_0; see PK_PANEL): entry
 * (g, b) at panel + (g * nb + b) * PK_PE holds, for the rows j = 8g + c,
 * the quants of block b at 32c, -off * (their sum) at 256 + 4c (the start
 * of that block's integer dot products) and the block's scale as float at
 * 288 + 4c. */
static void pk_fill_panel(const uint8_t *x, size_t x_stride, int64_t nc, int64_t nb, int off, uint8_t *panel)
{
    const __m256i ones = _mm256_set1_epi8(1);
    for (int64_t j = 0; j < nc; j++) {
        const struct ea_blk_q8_0 *xb = (const struct ea_blk_q8_0 *)(const void *)(x + (size_t)j * x_stride);
        uint8_t *e = panel + (size_t)(j / 8) * (size_t)nb * PK_PE;
        const int c = (int)(j % 8);
        for (int64_t b = 0; b < nb; b++, e += PK_PE) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)xb[b].qs);
            _mm256_store_si256((__m256i *)(void *)(e + 32 * c), q);
            __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q);
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 1));
            const int32_t sum = -off * _mm_cvtsi128_si32(h);
            const float d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(xb[b].d)));
            memcpy(e + 256 + 4 * c, &sum, 4);
            memcpy(e + 288 + 4 * c, &d, 4);
        }
    }
}

/* ---- micro-kernels --------------------------------------------------------- */

ALWAYS_INLINE __m512i bcast4(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* acc += dot(w, the 4 bytes at x broadcast): vpdpbusd with an embedded
 * broadcast operand (GCC 12 does not fold _mm512_set1_epi32 of a load into
 * one, and a separate vpbroadcastd per product costs issue slots). */
ALWAYS_INLINE __m512i dpbusd_bcast(__m512i acc, __m512i w, const uint8_t *x)
{
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t *)(const void *)x));
    return acc;
}

/* What a micro-kernel reads of its activation rows: the K-quants' Q8_K
 * rows (x[c]); for the legacy formats the panel (pq: quants of the call's
 * first row in the entry of block 0, ps: its offset sum there; the scale is
 * 32 bytes after the sum; entries PK_PE bytes apart). */
struct pk_act {
    const uint8_t *x[PK_COLS];
    const uint8_t *pq, *ps;
    const uint8_t *pf; /* the next tile, to prefetch group by group; or NULL */
    const uint8_t *scr; /* K-quants: the tile's scratch copy (pk_unpack_k), or NULL */
};

/* With the tiles taken one at a time (small batches), the next tile is
 * requested a group ahead of its use: the hardware prefetcher alone lost
 * the stream whenever the kernel was busy computing. */
ALWAYS_INLINE void pk_prefetch_group(enum pk_kind kind, const struct pk_act *a, int64_t b)
{
    if (a->pf && b % pk_group(kind) == 0)
        for (size_t o = 0; o < pk_group_bytes(kind); o += 64)
            _mm_prefetch((const char *)a->pf + (size_t)(b / pk_group(kind)) * pk_group_bytes(kind) + o,
                         _MM_HINT_T1);
}

ALWAYS_INLINE int32_t pk_sum(const struct pk_act *a, int64_t b, int c)
{
    int32_t v;
    memcpy(&v, a->ps + (size_t)b * PK_PE + 4 * c, 4);
    return v;
}

ALWAYS_INLINE __m512 pk_dx(const struct pk_act *a, int64_t b, int c)
{
    float v;
    memcpy(&v, a->ps + (size_t)b * PK_PE + 32 + 4 * c, 4);
    return _mm512_set1_ps(v);
}

ALWAYS_INLINE const uint8_t *pk_xq(const struct pk_act *a, int64_t b, int c)
{
    return a->pq + (size_t)b * PK_PE + 32 * c;
}

/* Legacy formats: acc[c] += the 16 row dot products of block b with
 * activation row c. */
ALWAYS_INLINE void pk_block_legacy(enum pk_kind kind, int C, const uint8_t *tile, int64_t nb, int64_t b,
                                   const struct pk_act *a, __m512 acc[])
{
    const __m512i *lv = (const __m512i *)(const void *)pk_body(kind, tile, b);
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
        p1[c] = _mm512_set1_epi32(pk_sum(a, b, c));
    }
    for (int s = 0; s < 8; s++)
        for (int c = 0; c < C; c++) {
            const __m512i x = bcast4(pk_xq(a, b, c) + 4 * s);
            if (s & 1)
                p1[c] = _mm512_dpbusd_epi32(p1[c], w[s], x);
            else
                p0[c] = _mm512_dpbusd_epi32(p0[c], w[s], x);
        }
    const uint8_t *sc = pk_sec(kind, tile, b);
    const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)sc));
    for (int c = 0; c < C; c++) {
        const __m512 v = _mm512_cvtepi32_ps(_mm512_add_epi32(p0[c], p1[c]));
        acc[c] = _mm512_fmadd_ps(v, _mm512_mul_ps(d, pk_dx(a, b, c)), acc[c]);
    }
}

/* pk_block_legacy for PK_COLS_LEGACY activation rows: the level vectors
 * are unpacked one (or, for Q4_0, one pair) at a time and used at once by
 * every row, and each row's integer dot product is one chain (8 chains in
 * flight cover vpdpbusd's latency). Integer sums are exact in any order, so
 * the results are those of pk_block_legacy. */
ALWAYS_INLINE void pk_block_legacy8(enum pk_kind kind, const uint8_t *tile, int64_t b, const struct pk_act *a,
                                    __m512 acc[])
{
    enum { C = PK_COLS_LEGACY };
    const __m512i *lv = (const __m512i *)(const void *)pk_body(kind, tile, b);
    __m512i p[C];
    for (int c = 0; c < C; c++)
        p[c] = _mm512_set1_epi32(pk_sum(a, b, c));
    if (kind == PK_Q4_0) {
        const __m512i low4 = _mm512_set1_epi8(15);
        for (int u = 0; u < 4; u++) {
            const __m512i q = _mm512_load_si512(lv + u);
            const __m512i wl = _mm512_and_si512(q, low4), wh = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
            for (int c = 0; c < C; c++) {
                p[c] = dpbusd_bcast(p[c], wl, pk_xq(a, b, c) + 4 * u);
                p[c] = dpbusd_bcast(p[c], wh, pk_xq(a, b, c) + 16 + 4 * u);
            }
        }
    } else {
        for (int u = 0; u < 8; u++) {
            const __m512i w = _mm512_load_si512(lv + u);
            for (int c = 0; c < C; c++)
                p[c] = dpbusd_bcast(p[c], w, pk_xq(a, b, c) + 4 * u);
        }
    }
    const uint8_t *sc = pk_sec(kind, tile, b);
    const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)sc));
    for (int c = 0; c < C; c++)
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p[c]), _mm512_mul_ps(d, pk_dx(a, b, c)), acc[c]);
}

/* isum[c] += sc * (dot of the level vectors w[0..steps) with the
 * activation quants at q[c]); the two add chains as the unpacked kernel. */
ALWAYS_INLINE void pk_sub(int C, int steps, const __m512i w[], const int8_t *const q[], __m512i sc,
                          __m512i isum[])
{
    __m512i p0[PK_COLS], p1[PK_COLS];
    for (int c = 0; c < C; c++)
        p0[c] = p1[c] = _mm512_setzero_si512();
    for (int s = 0; s < steps; s++)
        for (int c = 0; c < C; c++) {
            const __m512i x = bcast4(q[c] + 4 * s);
            if (s & 1)
                p1[c] = _mm512_dpbusd_epi32(p1[c], w[s], x);
            else
                p0[c] = _mm512_dpbusd_epi32(p0[c], w[s], x);
        }
    for (int c = 0; c < C; c++)
        isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(_mm512_add_epi32(p0[c], p1[c]), sc));
}

/* Two int16 per lane: lo in the low half, hi in the high half. */
ALWAYS_INLINE __m512i pk_pack16x2(__m512i lo, __m512i hi)
{
    return _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi32(0xFFFF)), _mm512_slli_epi32(hi, 16));
}

/* The K-quants' level vectors and integer scales of one super-block, cut
 * out of the packed body or read back from the scratch (scr) where
 * pk_unpack_k left them: for Q6_K batches of 8 activation rows or more a
 * tile is unpacked once and every group of rows runs over the scratch copy.
 * Scratch per super-block (PK_KS bytes): 64 level vectors (Q4_K: 8 per
 * 32-value sub-block g, index 8g + u; Q6_K: 8 per 32 values v, index
 * 8v + u), then 16 scale vectors (int32 per row; Q4_K uses 8), then 8
 * min/offset vectors (two int16 per lane, for vpdpwssd with the bsums). */
#define PK_KS 5632
#define PK_KSCRATCH (200 * 1024) /* stack bytes: super-blocks per tile up to 36 (k <= 9216) */

ALWAYS_INLINE __m512i pk_k_level(enum pk_kind kind, const uint8_t *body, const uint8_t *scr, int idx, int u)
{
    if (scr)
        return _mm512_load_si512((const void *)(scr + (size_t)(8 * idx + u) * 64));
    const __m512i low4 = _mm512_set1_epi8(15);
    if (kind == PK_Q4_K) { /* sub-block idx: 2p + h, low (h = 0) or high nibbles of vectors 8p + u */
        const __m512i v = _mm512_load_si512((const void *)(body + 256 + 512 * (idx / 2) + 64 * u));
        return _mm512_and_si512((idx & 1) ? _mm512_srli_epi16(v, 4) : v, low4);
    }
    /* Q6_K: values 128h + 32sh + 4u.. with idx = 4h + sh */
    const int h = idx / 4, sh = idx % 4;
    const __m512i *lv = (const __m512i *)(const void *)(body + Q6_LV);
    const __m512i l = _mm512_load_si512(lv + 24 * h + 16 * (sh & 1) + u);
    const __m512i lo = _mm512_and_si512(_mm512_srli_epi16(l, 4 * (sh >> 1)), low4);
    const __m512i hi =
        _mm512_and_si512(_mm512_srli_epi16(_mm512_load_si512(lv + 24 * h + 8 + u), 2 * sh), _mm512_set1_epi8(3));
    return _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4));
}

/* Scale of sub-block g (Q4_K: 32 values, unsigned 6 bits; Q6_K: 16 values, int8). */
ALWAYS_INLINE __m512i pk_k_scale(enum pk_kind kind, const uint8_t *body, const uint8_t *scr, int g)
{
    if (scr)
        return _mm512_load_si512((const void *)(scr + 4096 + (size_t)g * 64));
    const __m128i v = _mm_load_si128((const __m128i *)(const void *)(body + 16 * g));
    return kind == PK_Q4_K ? _mm512_cvtepu8_epi32(v) : _mm512_cvtepi8_epi32(v);
}

/* Pair u of min (Q4_K: the min of sub-block u twice) or offset (Q6_K: 32 x
 * the scales of 16-groups 2u, 2u + 1) multipliers for the bsums. */
ALWAYS_INLINE __m512i pk_k_mins(enum pk_kind kind, const uint8_t *body, const uint8_t *scr, int u)
{
    if (scr)
        return _mm512_load_si512((const void *)(scr + 4096 + 1024 + (size_t)u * 64));
    if (kind == PK_Q4_K) {
        const __m512i m = _mm512_cvtepu8_epi32(_mm_load_si128((const __m128i *)(const void *)(body + 128 + 16 * u)));
        return pk_pack16x2(m, m);
    }
    const __m512i s0 = _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(const void *)(body + 32 * u)));
    const __m512i s1 = _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(const void *)(body + 16 + 32 * u)));
    return pk_pack16x2(_mm512_slli_epi32(s0, 5), _mm512_slli_epi32(s1, 5));
}

/* The scratch copy of super-blocks 0 .. nb - 1 of a tile. */
ALWAYS_INLINE void pk_unpack_k(enum pk_kind kind, const uint8_t *tile, int64_t nb, uint8_t *scr)
{
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *body = pk_body(kind, tile, b);
        uint8_t *o = scr + (size_t)b * PK_KS;
        for (int idx = 0; idx < 8; idx++)
            for (int u = 0; u < 8; u++)
                _mm512_store_si512((void *)(o + (size_t)(8 * idx + u) * 64), pk_k_level(kind, body, NULL, idx, u));
        for (int g = 0; g < (kind == PK_Q4_K ? 8 : 16); g++)
            _mm512_store_si512((void *)(o + 4096 + (size_t)g * 64), pk_k_scale(kind, body, NULL, g));
        for (int u = 0; u < 8; u++)
            _mm512_store_si512((void *)(o + 4096 + 1024 + (size_t)u * 64), pk_k_mins(kind, body, NULL, u));
    }
}

/* K-quants: acc[c] += the 16 row dot products of super-block b with
 * activation row c (Q8_K), from the packed body or (scr not NULL) from the
 * super-block's scratch copy. Integer sums equal the unpacked kernel's, and
 * the float steps are the same operations in the same order. */
ALWAYS_INLINE void pk_block_k(enum pk_kind kind, int C, const uint8_t *tile, int64_t nb, int64_t b,
                              const struct pk_act *a, const uint8_t *scr, __m512 acc[])
{
    (void)nb;
    const uint8_t *body = pk_body(kind, tile, b), *sec = pk_sec(kind, tile, b);
    if (C == 1 && kind == PK_Q6_K && !scr) /* decode: ask for the whole super-block up front (the loads
                                               of the level vectors reach memory out of address order,
                                               and the hardware prefetcher did not keep up: 5-8 -> 12-19
                                               GB/s) */
        for (size_t o = 0; o < pk_body_bytes(kind); o += 64)
            _mm_prefetch((const char *)body + o, _MM_HINT_T0);
    const struct ea_blk_q8_k *xb[PK_COLS];
    __m512i isum[PK_COLS], ms[PK_COLS];
    const int8_t *q[PK_COLS];
    for (int c = 0; c < C; c++) {
        xb[c] = (const struct ea_blk_q8_k *)(const void *)a->x[c] + b;
        isum[c] = ms[c] = _mm512_setzero_si512();
    }
    if (kind == PK_Q4_K) {
        for (int g = 0; g < 8; g++) { /* sub-blocks of 32 */
            __m512i w[8];
            for (int u = 0; u < 8; u++)
                w[u] = pk_k_level(kind, body, scr, g, u);
            for (int c = 0; c < C; c++)
                q[c] = xb[c]->qs + 32 * g;
            pk_sub(C, 8, w, q, pk_k_scale(kind, body, scr, g), isum);
        }
        for (int g = 0; g < 8; g++) { /* one min per 32 values = two 16-groups of bsums */
            const __m512i mm = pk_k_mins(kind, body, scr, g);
            for (int c = 0; c < C; c++)
                ms[c] = _mm512_dpwssd_epi32(ms[c], mm, bcast4(&xb[c]->bsums[2 * g]));
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)sec));
        const __m512 dmin = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)(sec + 32)));
        for (int c = 0; c < C; c++) {
            const __m512 dy = _mm512_set1_ps(xb[c]->d);
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_mul_ps(d, dy), acc[c]);
            acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(ms[c]), _mm512_mul_ps(dmin, dy), acc[c]);
        }
    } else { /* Q6_K: 16 sub-blocks of 16, levels 6 bits with offset 32 */
        for (int v = 0; v < 8; v++) { /* values 32v .. 32v + 31 */
            __m512i w[8];
            for (int u = 0; u < 8; u++)
                w[u] = pk_k_level(kind, body, scr, v, u);
            for (int gg = 0; gg < 2; gg++) {
                const int g = 2 * v + gg;
                for (int c = 0; c < C; c++)
                    q[c] = xb[c]->qs + 16 * g;
                pk_sub(C, 4, w + 4 * gg, q, pk_k_scale(kind, body, scr, g), isum);
            }
        }
        for (int u = 0; u < 8; u++) { /* offset 32 * scale per 16-group */
            const __m512i mm = pk_k_mins(kind, body, scr, u);
            for (int c = 0; c < C; c++)
                ms[c] = _mm512_dpwssd_epi32(ms[c], mm, bcast4(&xb[c]->bsums[2 * u]));
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(const void *)sec));
        for (int c = 0; c < C; c++) {
            const __m512 dy = _mm512_set1_ps(xb[c]->d);
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(isum[c], ms[c])), _mm512_mul_ps(d, dy),
                                     acc[c]);
        }
    }
}

/* out[c] = the 16 row dot products of one tile with activation row c over
 * all nb blocks, in the float order of the unpacked kernels (kernels_x86.h:
 * per segment of EA_X86_SEG values, the legacy formats' even and odd blocks
 * in two accumulators, the K-quants' super-blocks in one; then the segments
 * added in order), so that a packed matrix gives bit for bit the results of
 * the rows it was packed from. */
ALWAYS_INLINE void pk_micro(enum pk_kind kind, int C, const uint8_t *tile, int64_t nb, const struct pk_act *a,
                            __m512 out[])
{
    const int64_t seg = EA_X86_SEG / pk_block_values(kind);
    for (int c = 0; c < C; c++)
        out[c] = _mm512_setzero_ps(); /* unread: the first segment assigns */
    for (int64_t s0 = 0; s0 < nb; s0 += seg) {
        const int64_t s1 = nb - s0 < seg ? nb : s0 + seg;
        __m512 acc0[PK_COLS], acc1[PK_COLS];
        for (int c = 0; c < C; c++)
            acc0[c] = acc1[c] = _mm512_setzero_ps();
        if (pk_is_k(kind)) {
            for (int64_t b = s0; b < s1; b++) {
                pk_prefetch_group(kind, a, b);
                pk_block_k(kind, C, tile, nb, b, a, a->scr ? a->scr + (size_t)b * PK_KS : NULL, acc0);
            }
            for (int c = 0; c < C; c++)
                out[c] = s0 == 0 ? acc0[c] : _mm512_add_ps(out[c], acc0[c]);
            continue;
        }
        int64_t b = s0;
        if (C == PK_COLS_LEGACY) {
            for (; b + 2 <= s1; b += 2) {
                pk_prefetch_group(kind, a, b);
                pk_block_legacy8(kind, tile, b, a, acc0);
                pk_block_legacy8(kind, tile, b + 1, a, acc1);
            }
            if (b < s1) {
                pk_prefetch_group(kind, a, b);
                pk_block_legacy8(kind, tile, b, a, acc0);
            }
        } else {
            for (; b + 2 <= s1; b += 2) {
                pk_prefetch_group(kind, a, b);
                pk_block_legacy(kind, C, tile, nb, b, a, acc0);
                pk_block_legacy(kind, C, tile, nb, b + 1, a, acc1);
            }
            if (b < s1) {
                pk_prefetch_group(kind, a, b);
                pk_block_legacy(kind, C, tile, nb, b, a, acc0);
            }
        }
        for (int c = 0; c < C; c++) {
            const __m512 v = _mm512_add_ps(acc0[c], acc1[c]);
            out[c] = s0 == 0 ? v : _mm512_add_ps(out[c], v);
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

/* C activation rows (j .. j + C - 1; the panel's chunk starts at j0) x one
 * tile. */
ALWAYS_INLINE void pk_tile_cols(enum pk_kind kind, int C, const uint8_t *tile, int n, int64_t nb, const void *x,
                                size_t x_stride, int64_t j, int64_t j0, const uint8_t *panel, const uint8_t *pf,
                                const uint8_t *scr, float *s, size_t s_stride)
{
    struct pk_act a;
    a.pf = pf;
    a.scr = scr;
    __m512 out[PK_COLS];
    if (pk_is_k(kind)) {
        for (int c = 0; c < C; c++)
            a.x[c] = (const uint8_t *)x + (size_t)(j + c) * x_stride;
    } else {
        const uint8_t *e = panel + (size_t)((j - j0) / 8) * (size_t)nb * PK_PE;
        const int c0 = (int)((j - j0) % 8);
        a.pq = e + 32 * c0;
        a.ps = e + 256 + 4 * c0;
    }
    pk_micro(kind, C, tile, nb, &a, out);
    for (int c = 0; c < C; c++)
        pk_store(s + (size_t)(j + c) * s_stride, out[c], n);
}

/* Rows i0 .. i0 + nr - 1 (i0 a multiple of PK_ROWS) of the packed matrix wp
 * times activation rows 0 .. nc - 1; s points at the output of row i0.
 * Loop order: activation rows in chunks whose panel fits (legacy formats;
 * the K-quants' Q8_K rows carry their sums); within a chunk, row blocks
 * whose weights stay in L2 while every group of activation rows passes
 * over them; for 2-16 rows, blocks of one tile with the next one
 * prefetched (bench/bench_packed, 2 threads, Q4_0 at 16 rows: 220 -> 273
 * GMAC/s, with the 8-row kernel); for Q6_K and 8+ rows, one tile at a time
 * through its scratch copy. Decode (nc = 1) is one sequential pass over
 * the tiles. */
ALWAYS_INLINE void pk_gemm(enum pk_kind kind, int64_t k, int64_t i0, int64_t nr, int64_t nc, const void *wp,
                           const void *x, size_t x_stride, float *s, size_t s_stride)
{
    _Alignas(64) uint8_t panel[pk_is_k(kind) ? 64 : PK_PANEL * PK_PE];
    const int64_t nb = k / pk_block_values(kind);
    const size_t tb = pk_tile_bytes(kind, nb);
    const uint8_t *tiles = (const uint8_t *)wp + (size_t)(i0 / PK_ROWS) * tb;
    const int64_t ntiles = (nr + PK_ROWS - 1) / PK_ROWS;
    const int64_t chunk = pk_is_k(kind) || nb == 0 ? nc : 8 * (PK_PANEL / nb);
    int64_t rb = (int64_t)(PK_L2_BYTES / tb);
    if (chunk < 1 || nb == 0) { /* not packable (size said 0) or k = 0 */
        for (int64_t j = 0; j < nc; j++)
            for (int64_t i = 0; i < nr && nb == 0; i++)
                s[(size_t)j * s_stride + (size_t)i] = 0;
        return;
    }
    /* small batches: one tile at a time, every group of activation rows
     * over it while it is in L1/L2, the next one prefetched meanwhile */
    const bool small = nc > 1 && nc <= 16;
    if (kind == PK_Q6_K && nc >= 8 && (size_t)nb * PK_KS <= PK_KSCRATCH) {
        /* Q6_K, 8 activation rows or more: each tile unpacked once into the
         * scratch, then every group of PK_COLS_K rows of a chunk (whose Q8_K
         * rows, ~256 KB, stay in L2) over it (nc = 16: 141 -> 168 GMAC/s,
         * nc = 64: 162 -> 248, bench_packed, 2 threads). Not for Q4_K,
         * whose nibbles are cheaper to cut again than to read back
         * (288 -> 255 at nc = 16). */
        _Alignas(64) uint8_t scr[kind == PK_Q6_K ? PK_KSCRATCH : 64];
        int64_t kc = (int64_t)(256 * 1024 / ((size_t)nb * sizeof(struct ea_blk_q8_k))) / PK_COLS_K * PK_COLS_K;
        if (kc < 8)
            kc = 8;
        for (int64_t j0 = 0; j0 < nc; j0 += kc) {
            const int64_t jn = nc - j0 < kc ? nc - j0 : kc;
            for (int64_t t = 0; t < ntiles; t++) {
                const int n = (int)(nr - t * PK_ROWS < PK_ROWS ? nr - t * PK_ROWS : PK_ROWS);
                const uint8_t *tile = tiles + (size_t)t * tb;
                const uint8_t *pf = t + 1 < ntiles ? tile + tb : NULL;
                float *st = s + t * PK_ROWS;
                pk_unpack_k(kind, tile, nb, scr);
                int64_t j = j0;
                for (; j + PK_COLS_K <= j0 + jn; j += PK_COLS_K)
                    pk_tile_cols(kind, PK_COLS_K, tile, n, nb, x, x_stride, j, j0, panel, j == j0 ? pf : NULL,
                                 scr, st, s_stride);
                const int rest = (int)(j0 + jn - j);
                if (rest == 3)
                    pk_tile_cols(kind, 3, tile, n, nb, x, x_stride, j, j0, panel, NULL, scr, st, s_stride);
                else if (rest == 2)
                    pk_tile_cols(kind, 2, tile, n, nb, x, x_stride, j, j0, panel, NULL, scr, st, s_stride);
                else if (rest == 1)
                    pk_tile_cols(kind, 1, tile, n, nb, x, x_stride, j, j0, panel, NULL, scr, st, s_stride);
            }
        }
        return;
    }
    if (rb < 1 || small)
        rb = 1;
    for (int64_t j0 = 0; j0 < nc; j0 += chunk) {
        const int64_t jn = nc - j0 < chunk ? nc - j0 : chunk;
        if (!pk_is_k(kind))
            pk_fill_panel((const uint8_t *)x + (size_t)j0 * x_stride, x_stride, jn, nb, pk_offset(kind), panel);
        for (int64_t t0 = 0; t0 < ntiles; t0 += rb) {
            const int64_t t1 = t0 + rb < ntiles ? t0 + rb : ntiles;
            int64_t j = j0;
            const uint8_t *pf = small && t0 + 1 < ntiles ? tiles + (size_t)(t0 + 1) * tb : NULL;
            if (!pk_is_k(kind))
                for (; j + PK_COLS_LEGACY <= j0 + jn; j += PK_COLS_LEGACY)
                    for (int64_t t = t0; t < t1; t++) {
                        const int n = (int)(nr - t * PK_ROWS < PK_ROWS ? nr - t * PK_ROWS : PK_ROWS);
                        pk_tile_cols(kind, PK_COLS_LEGACY, tiles + (size_t)t * tb, n, nb, x, x_stride, j, j0,
                                     panel, j == j0 ? pf : NULL, NULL, s + t * PK_ROWS, s_stride);
                    }
            for (; j + PK_COLS_K <= j0 + jn; j += PK_COLS_K)
                for (int64_t t = t0; t < t1; t++) {
                    const int n = (int)(nr - t * PK_ROWS < PK_ROWS ? nr - t * PK_ROWS : PK_ROWS);
                    pk_tile_cols(kind, PK_COLS_K, tiles + (size_t)t * tb, n, nb, x, x_stride, j, j0, panel,
                                 j == j0 ? pf : NULL, NULL, s + t * PK_ROWS, s_stride);
                }
            const int rest = (int)(j0 + jn - j);
            for (int64_t t = t0; t < t1 && rest > 0; t++) {
                const int n = (int)(nr - t * PK_ROWS < PK_ROWS ? nr - t * PK_ROWS : PK_ROWS);
                const uint8_t *tile = tiles + (size_t)t * tb;
                float *st = s + t * PK_ROWS;
                if (rest == 3)
                    pk_tile_cols(kind, 3, tile, n, nb, x, x_stride, j, j0, panel, j == j0 ? pf : NULL, NULL, st, s_stride);
                else if (rest == 2)
                    pk_tile_cols(kind, 2, tile, n, nb, x, x_stride, j, j0, panel, j == j0 ? pf : NULL, NULL, st, s_stride);
                else
                    pk_tile_cols(kind, 1, tile, n, nb, x, x_stride, j, j0, panel, j == j0 ? pf : NULL, NULL, st, s_stride);
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
PK_OPS(q4_k, PK_Q4_K)
PK_OPS(q6_k, PK_Q6_K)

void ea__avx512_install_pack(struct ea_pack_ops table[EA_TYPE_ID_LIMIT])
{
    if (!ea__cpu_has_avx512_vnni())
        return;
    table[EA_TYPE_Q4_0] = (struct ea_pack_ops){.rows = PK_ROWS, .size = repack_size_q4_0,
                                               .repack = repack_q4_0, .gemm = gemm_packed_q4_0};
    table[EA_TYPE_Q8_0] = (struct ea_pack_ops){.rows = PK_ROWS, .size = repack_size_q8_0,
                                               .repack = repack_q8_0, .gemm = gemm_packed_q8_0};
    table[EA_TYPE_Q4_K] = (struct ea_pack_ops){.rows = PK_ROWS, .size = repack_size_q4_k,
                                               .repack = repack_q4_k, .gemm = gemm_packed_q4_k};
    table[EA_TYPE_Q6_K] = (struct ea_pack_ops){.rows = PK_ROWS, .size = repack_size_q6_k,
                                               .repack = repack_q6_k, .gemm = gemm_packed_q6_k};
}
