/* generic_quants.c - scalar reference matmul for the quantized weight
 * formats, and what every SIMD variant is tested against.
 *
 * As in llama.cpp, activations are first quantized (ea__act_*): Q8_0 for
 * Q4_0/Q5_0/Q8_0 weights, Q8_1 for Q4_1/Q5_1 (its sum term carries the
 * weights' offset), Q8_K for the K-quants (its per-16 sums carry the offsets
 * and mins). A dot product then sums integer products exactly per block
 * (per super-block for the K-quants, with the small integer sub-block scales
 * applied in integers) and scales each block's integer sum in float with the
 * same expression as llama.cpp's scalar vec_dot. Block terms accumulate in
 * double so the reference adds no rounding of its own beyond those terms.
 * Does not hold: the codecs (quant_codec.h), SIMD kernels (x86/, arm/).
 */
#include "kernels/generic/generic_int.h"
#include "kernels/quant_codec.h"
#include "util/fp16.h"

/* ---- weight levels as signed integers ---------------------------------- */

/* The 32 levels of a Q4/Q5 block, without the -8/-16 offset of the
 * symmetric formats (callers subtract it). */
static void levels_q4(const uint8_t qs[16], int8_t q[32])
{
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(qs[j] & 15);
        q[j + 16] = (int8_t)(qs[j] >> 4);
    }
}

static void levels_q5(const uint8_t qs[16], const uint8_t qh[4], int8_t q[32])
{
    levels_q4(qs, q);
    for (int j = 0; j < 32; j++)
        q[j] = (int8_t)(q[j] | ((qh[j / 8] >> (j % 8)) & 1) << 4);
}

static int dot_i8(const int8_t *a, const int8_t *b, int n)
{
    int s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static int sum_i8(const int8_t *a, int n)
{
    int s = 0;
    for (int i = 0; i < n; i++)
        s += a[i];
    return s;
}

/* ---- 32-value formats -------------------------------------------------- */

static float dot_q4_0(int64_t k, const void *w, const void *x)
{
    const struct ea_blk_q4_0 *a = w;
    const struct ea_blk_q8_0 *b = x;
    double s = 0;
    for (int64_t i = 0; i < k / EA_QK; i++) {
        int8_t q[32];
        levels_q4(a[i].qs, q);
        int sumi = dot_i8(q, b[i].qs, 32) - 8 * sum_i8(b[i].qs, 32);
        s += (float)sumi * ea_fp16_to_f32(a[i].d) * ea_fp16_to_f32(b[i].d);
    }
    return (float)s;
}

static float dot_q4_1(int64_t k, const void *w, const void *x)
{
    const struct ea_blk_q4_1 *a = w;
    const struct ea_blk_q8_1 *b = x;
    double s = 0;
    for (int64_t i = 0; i < k / EA_QK; i++) {
        int8_t q[32];
        levels_q4(a[i].qs, q);
        int sumi = dot_i8(q, b[i].qs, 32);
        s += ea_fp16_to_f32(a[i].d) * ea_fp16_to_f32(b[i].d) * (float)sumi +
             ea_fp16_to_f32(a[i].m) * ea_fp16_to_f32(b[i].s);
    }
    return (float)s;
}

static float dot_q5_0(int64_t k, const void *w, const void *x)
{
    const struct ea_blk_q5_0 *a = w;
    const struct ea_blk_q8_0 *b = x;
    double s = 0;
    for (int64_t i = 0; i < k / EA_QK; i++) {
        int8_t q[32];
        levels_q5(a[i].qs, a[i].qh, q);
        int sumi = dot_i8(q, b[i].qs, 32) - 16 * sum_i8(b[i].qs, 32);
        s += ea_fp16_to_f32(a[i].d) * ea_fp16_to_f32(b[i].d) * (float)sumi;
    }
    return (float)s;
}

static float dot_q5_1(int64_t k, const void *w, const void *x)
{
    const struct ea_blk_q5_1 *a = w;
    const struct ea_blk_q8_1 *b = x;
    double s = 0;
    for (int64_t i = 0; i < k / EA_QK; i++) {
        int8_t q[32];
        levels_q5(a[i].qs, a[i].qh, q);
        int sumi = dot_i8(q, b[i].qs, 32);
        s += ea_fp16_to_f32(a[i].d) * ea_fp16_to_f32(b[i].d) * (float)sumi +
             ea_fp16_to_f32(a[i].m) * ea_fp16_to_f32(b[i].s);
    }
    return (float)s;
}

static float dot_q8_0(int64_t k, const void *w, const void *x)
{
    const struct ea_blk_q8_0 *a = w;
    const struct ea_blk_q8_0 *b = x;
    double s = 0;
    for (int64_t i = 0; i < k / EA_QK; i++) {
        int sumi = dot_i8(a[i].qs, b[i].qs, 32);
        s += (float)sumi * (ea_fp16_to_f32(a[i].d) * ea_fp16_to_f32(b[i].d));
    }
    return (float)s;
}

/* ---- K-quants against Q8_K --------------------------------------------- */

/* Sum over the 16 groups of 16 of coef[g] * (sum of the activations in g). */
static int group_sums(const int16_t bsums[16], const int *coef)
{
    int s = 0;
    for (int g = 0; g < 16; g++)
        s += bsums[g] * coef[g];
    return s;
}

static float dot_q2_k(int64_t k, const void *w, const void *x)
{
    const struct ea_blk_q2_k *a = w;
    const struct ea_blk_q8_k *b = x;
    double s = 0;
    for (int64_t i = 0; i < k / EA_QK_K; i++) {
        int isum = 0, mins[16];
        for (int g = 0; g < 16; g++) {
            int part = 0;
            for (int l = 0; l < 16; l++) {
                int v = 16 * g + l;
                int q = (a[i].qs[32 * (v / 128) + v % 32] >> (2 * (v % 128 / 32))) & 3;
                part += q * b[i].qs[v];
            }
            isum += (a[i].scales[g] & 15) * part;
            mins[g] = a[i].scales[g] >> 4;
        }
        const float dall = b[i].d * ea_fp16_to_f32(a[i].d);
        const float dmin = b[i].d * ea_fp16_to_f32(a[i].dmin);
        s += dall * (float)isum - dmin * (float)group_sums(b[i].bsums, mins);
    }
    return (float)s;
}

static float dot_q3_k(int64_t k, const void *w, const void *x)
{
    const struct ea_blk_q3_k *a = w;
    const struct ea_blk_q8_k *b = x;
    double s = 0;
    for (int64_t i = 0; i < k / EA_QK_K; i++) {
        int8_t sc[16];
        ea__q3k_scales(a[i].scales, sc);
        int isum = 0;
        for (int g = 0; g < 16; g++) {
            int part = 0;
            for (int l = 0; l < 16; l++) {
                int v = 16 * g + l;
                int lo = (a[i].qs[32 * (v / 128) + v % 32] >> (2 * (v % 128 / 32))) & 3;
                int hi = (a[i].hmask[v % 32] >> (v / 32)) & 1;
                part += (lo + 4 * hi - 4) * b[i].qs[v];
            }
            isum += sc[g] * part;
        }
        s += ea_fp16_to_f32(a[i].d) * b[i].d * (float)isum;
    }
    return (float)s;
}

/* Q4_K and Q5_K: levels of a super-block as unsigned 0..31. */
static float dot_k4(const uint8_t *levels, const uint8_t scales[12], uint16_t d16,
                    uint16_t dmin16, const struct ea_blk_q8_k *b)
{
    int isum = 0, mins[16];
    for (int sub = 0; sub < 8; sub++) {
        uint8_t sc, m;
        ea__k4_scale_min(sub, scales, &sc, &m);
        int part = 0;
        for (int l = 0; l < 32; l++)
            part += levels[32 * sub + l] * b->qs[32 * sub + l];
        isum += sc * part;
        mins[2 * sub] = mins[2 * sub + 1] = m;
    }
    const float d = ea_fp16_to_f32(d16) * b->d;
    const float dmin = ea_fp16_to_f32(dmin16) * b->d;
    return d * (float)isum - dmin * (float)group_sums(b->bsums, mins);
}

static float dot_q4_k(int64_t k, const void *w, const void *x)
{
    const struct ea_blk_q4_k *a = w;
    const struct ea_blk_q8_k *b = x;
    double s = 0;
    for (int64_t i = 0; i < k / EA_QK_K; i++) {
        uint8_t lv[EA_QK_K];
        for (int v = 0; v < EA_QK_K; v++)
            lv[v] = (uint8_t)((a[i].qs[32 * (v / 64) + v % 32] >> (4 * (v / 32 % 2))) & 15);
        s += dot_k4(lv, a[i].scales, a[i].d, a[i].dmin, &b[i]);
    }
    return (float)s;
}

static float dot_q5_k(int64_t k, const void *w, const void *x)
{
    const struct ea_blk_q5_k *a = w;
    const struct ea_blk_q8_k *b = x;
    double s = 0;
    for (int64_t i = 0; i < k / EA_QK_K; i++) {
        uint8_t lv[EA_QK_K];
        for (int v = 0; v < EA_QK_K; v++)
            lv[v] = (uint8_t)(((a[i].qs[32 * (v / 64) + v % 32] >> (4 * (v / 32 % 2))) & 15) |
                              ((a[i].qh[v % 32] >> (v / 32)) & 1) << 4);
        s += dot_k4(lv, a[i].scales, a[i].d, a[i].dmin, &b[i]);
    }
    return (float)s;
}

static float dot_q6_k(int64_t k, const void *w, const void *x)
{
    const struct ea_blk_q6_k *a = w;
    const struct ea_blk_q8_k *b = x;
    double s = 0;
    for (int64_t i = 0; i < k / EA_QK_K; i++) {
        int isum = 0;
        for (int g = 0; g < 16; g++) {
            int part = 0;
            for (int l = 0; l < 16; l++) {
                int v = 16 * g + l, h = v / 128, sh = v % 128 / 32, p = v % 32;
                int lo = (a[i].ql[64 * h + 32 * (sh & 1) + p] >> (4 * (sh >> 1))) & 15;
                int hi = (a[i].qh[32 * h + p] >> (2 * sh)) & 3;
                part += ((lo | hi << 4) - 32) * b[i].qs[v];
            }
            isum += a[i].scales[g] * part;
        }
        s += ea_fp16_to_f32(a[i].d) * b[i].d * (float)isum;
    }
    return (float)s;
}

EA__GENERIC_GEMM(q4_0, dot_q4_0)
EA__GENERIC_GEMM(q4_1, dot_q4_1)
EA__GENERIC_GEMM(q5_0, dot_q5_0)
EA__GENERIC_GEMM(q5_1, dot_q5_1)
EA__GENERIC_GEMM(q8_0, dot_q8_0)
EA__GENERIC_GEMM(q2_k, dot_q2_k)
EA__GENERIC_GEMM(q3_k, dot_q3_k)
EA__GENERIC_GEMM(q4_k, dot_q4_k)
EA__GENERIC_GEMM(q5_k, dot_q5_k)
EA__GENERIC_GEMM(q6_k, dot_q6_k)

void ea__generic_install_quants(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT])
{
    table[EA_TYPE_Q4_0] = (struct ea_matmul_ops){EA_TYPE_Q8_0, ea__act_q8_0, gemm_q4_0};
    table[EA_TYPE_Q4_1] = (struct ea_matmul_ops){EA_TYPE_Q8_1, ea__act_q8_1, gemm_q4_1};
    table[EA_TYPE_Q5_0] = (struct ea_matmul_ops){EA_TYPE_Q8_0, ea__act_q8_0, gemm_q5_0};
    table[EA_TYPE_Q5_1] = (struct ea_matmul_ops){EA_TYPE_Q8_1, ea__act_q8_1, gemm_q5_1};
    table[EA_TYPE_Q8_0] = (struct ea_matmul_ops){EA_TYPE_Q8_0, ea__act_q8_0, gemm_q8_0};
    table[EA_TYPE_Q2_K] = (struct ea_matmul_ops){EA_TYPE_Q8_K, ea__act_q8_k, gemm_q2_k};
    table[EA_TYPE_Q3_K] = (struct ea_matmul_ops){EA_TYPE_Q8_K, ea__act_q8_k, gemm_q3_k};
    table[EA_TYPE_Q4_K] = (struct ea_matmul_ops){EA_TYPE_Q8_K, ea__act_q8_k, gemm_q4_k};
    table[EA_TYPE_Q5_K] = (struct ea_matmul_ops){EA_TYPE_Q8_K, ea__act_q8_k, gemm_q5_k};
    table[EA_TYPE_Q6_K] = (struct ea_matmul_ops){EA_TYPE_Q8_K, ea__act_q8_k, gemm_q6_k};
}
