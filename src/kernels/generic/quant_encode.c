/* quant_encode.c - encoders from f32 into the quantized block formats.
 *
 * Weight encoders follow the quantizers llama-quantize runs without an
 * importance matrix: a per-block absmax (or min/max) scale for the 32-value
 * formats, and for the K-quants a search per sub-block for the scale (and
 * min) that minimises a weighted error, then a second quantization of those
 * scales into 4, 6 or 8 bits. Because every float operation is written in
 * the same order as there (and GCC does not contract a*b+c in ISO C mode),
 * the bytes come out identical to llama.cpp's on the same input; the tests
 * check that on the reference models.
 *
 * Activation quantizers (ea__act_*) reproduce what llama.cpp's x86 CPU
 * backend does to the f32 activations before a quantized dot product: Q8_0
 * and Q8_1 take d = amax/127, multiply by 127/amax and round half to even;
 * Q8_K scales by -127/max (max = the value of largest magnitude) and rounds
 * half to even. The SIMD variants must produce the same bytes.
 *
 * Rounding to nearest-even is done by adding 1.5*2^23 and reading the
 * mantissa, as in llama.cpp: exact for |x| < 2^22, and free of undefined
 * behaviour for any input (NaN or huge values give some integer).
 * Does not hold: decoders (quant_decode.c), dot products.
 */
#include <math.h>

/* Byte-exactness needs every a*b+c rounded twice, as written: GCC does not
 * contract in ISO C mode; clang would whenever FMA is enabled. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include "kernels/quant_codec.h"
#include "util/fp16.h"

static inline int round_even(float f)
{
    float v = f + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007FFFFF) - 0x00400000;
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Value of largest magnitude (the first one on ties) and that magnitude. */
static float signed_absmax(const float *x, int n, float *amax_out)
{
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > amax) {
            amax = a;
            max = x[i];
        }
    }
    *amax_out = amax;
    return max;
}

static void min_max(const float *x, int n, float *mn, float *mx)
{
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < lo)
            lo = x[i];
        if (x[i] > hi)
            hi = x[i];
    }
    *mn = lo;
    *mx = hi;
}

/* ---- 32-value weight formats ------------------------------------------- */

/* Symmetric 4/5-bit: the value of largest magnitude maps to -2^(bits-1)
 * exactly, so the opposite extreme can use the full positive range; the
 * truncation of x/d + bias + 0.5 is round-half-up. */
static void encode_symmetric(const float *x, float *d_out, uint8_t *q, int bits)
{
    const int half = 1 << (bits - 1), qmax = (1 << bits) - 1;
    float amax;
    const float max = signed_absmax(x, EA_QK, &amax);
    const float d = max / (float)-half;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < EA_QK; j++) {
        int v = (int8_t)(x[j] * id + ((float)half + 0.5f));
        q[j] = (uint8_t)(v < qmax ? v : qmax);
    }
    *d_out = d;
}

/* Asymmetric 4/5-bit: d = (max - min) / (2^bits - 1), offset min. */
static void encode_asymmetric(const float *x, float *d_out, float *m_out, uint8_t *q, int bits)
{
    const int qmax = (1 << bits) - 1;
    float mn, mx;
    min_max(x, EA_QK, &mn, &mx);
    const float d = (mx - mn) / (float)qmax;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < EA_QK; j++) {
        int v = (int8_t)((x[j] - mn) * id + 0.5f);
        q[j] = (uint8_t)(v < qmax ? v : qmax);
    }
    *d_out = d;
    *m_out = mn;
}

static void pack_nibbles(const uint8_t q[EA_QK], uint8_t qs[EA_QK / 2])
{
    for (int j = 0; j < EA_QK / 2; j++)
        qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
}

static void pack_fifth_bits(const uint8_t q[EA_QK], uint8_t qh[4])
{
    uint32_t h = 0;
    for (int j = 0; j < EA_QK; j++)
        h |= (uint32_t)(q[j] >> 4 & 1) << j;
    for (int b = 0; b < 4; b++)
        qh[b] = (uint8_t)(h >> (8 * b));
}

void ea__enc_q4_0(const float *x, void *dst, int64_t nb)
{
    struct ea_blk_q4_0 *y = dst;
    for (int64_t i = 0; i < nb; i++, x += EA_QK) {
        uint8_t q[EA_QK];
        float d;
        encode_symmetric(x, &d, q, 4);
        y[i].d = ea_f32_to_fp16(d);
        pack_nibbles(q, y[i].qs);
    }
}

void ea__enc_q4_1(const float *x, void *dst, int64_t nb)
{
    struct ea_blk_q4_1 *y = dst;
    for (int64_t i = 0; i < nb; i++, x += EA_QK) {
        uint8_t q[EA_QK];
        float d, m;
        encode_asymmetric(x, &d, &m, q, 4);
        y[i].d = ea_f32_to_fp16(d);
        y[i].m = ea_f32_to_fp16(m);
        pack_nibbles(q, y[i].qs);
    }
}

void ea__enc_q5_0(const float *x, void *dst, int64_t nb)
{
    struct ea_blk_q5_0 *y = dst;
    for (int64_t i = 0; i < nb; i++, x += EA_QK) {
        uint8_t q[EA_QK];
        float d;
        encode_symmetric(x, &d, q, 5);
        y[i].d = ea_f32_to_fp16(d);
        pack_nibbles(q, y[i].qs);
        pack_fifth_bits(q, y[i].qh);
    }
}

void ea__enc_q5_1(const float *x, void *dst, int64_t nb)
{
    struct ea_blk_q5_1 *y = dst;
    for (int64_t i = 0; i < nb; i++, x += EA_QK) {
        uint8_t q[EA_QK];
        float d, m;
        encode_asymmetric(x, &d, &m, q, 5);
        y[i].d = ea_f32_to_fp16(d);
        y[i].m = ea_f32_to_fp16(m);
        pack_nibbles(q, y[i].qs);
        pack_fifth_bits(q, y[i].qh);
    }
}

/* Q8_0 weights: d = amax/127 and round half away from zero of x * (1/d) --
 * not the activation rounding (ea__act_q8_0), as llama-quantize does. */
void ea__enc_q8_0(const float *x, void *dst, int64_t nb)
{
    struct ea_blk_q8_0 *y = dst;
    for (int64_t i = 0; i < nb; i++, x += EA_QK) {
        float amax;
        signed_absmax(x, EA_QK, &amax);
        const float d = amax / 127.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        y[i].d = ea_f32_to_fp16(d);
        for (int j = 0; j < EA_QK; j++)
            y[i].qs[j] = (int8_t)clampi((int)lroundf(x[j] * id), -128, 127);
    }
}

/* ---- scale searches of the K-quants ------------------------------------ */

/* Signed levels -nmax..nmax-1 with scale s minimising sum w*(x - s*l)^2,
 * w = x^2: start from the absmax scale, try 18 nearby reciprocal scales
 * (nmax +- 0.1..0.9) and keep the best least-squares fit. L gets l + nmax.
 * Returns the scale (0 for an all-zero group). */
static float search_signed_scale(int n, int nmax, const float *x, int8_t *L)
{
    float amax;
    const float max = signed_absmax(x, n, &amax);
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(round_even(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int step = -9; step <= 9; step++) {
        if (step == 0)
            continue;
        iscale = -((float)nmax + 0.1f * (float)step) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(round_even(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clampi(round_even(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's variant: levels -nmax..nmax-1 from the absmax scale, then up to 5
 * passes of coordinate descent moving one level at a time while the
 * weighted (w = x^2) least-squares fit improves. L gets l + nmax. */
static float search_signed_levels(int n, int nmax, const float *x, int8_t *L)
{
    float amax;
    const float max = signed_absmax(x, n, &amax);
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0;
    }
    const float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(round_even(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (!(slx > 0))
                continue;
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            int l = clampi(round_even(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (l == L[i])
                continue;
            slx += w * x[i] * (float)l;
            sl2 += w * (float)l * (float)l;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)l;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed)
            break;
    }
    for (int i = 0; i < n; i++)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0 ? sumlx / suml2 : 0.0f;
}

/* Levels 0..nmax with value = scale * l - min_out (min_out >= 0): start from
 * the min/max fit, then for nstep+1 trial reciprocal scales
 * (nmax + rmin + rdelta*step)/(max - min) quantize, solve the weighted least
 * squares for scale and offset (offset forced <= 0), and keep the trial with
 * the smallest weighted error (absolute when use_mad, else squared). */
static float search_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                              float *min_out, float rmin, float rdelta, int nstep, bool use_mad)
{
    uint8_t Laux[32];
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *min_out = -min;
        return 0;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_err = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(round_even(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * (float)L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_err += w[i] * diff;
    }
    for (int step = 0; step <= nstep; step++) {
        iscale = (rmin + rdelta * (float)step + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(round_even(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (!(det > 0))
            continue;
        float s = (sum_w * sum_xl - sum_x * sum_l) / det;
        float m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (m > 0) {
            m = 0;
            s = sum_xl / sum_l2;
        }
        float err = 0;
        for (int i = 0; i < n; i++) {
            float diff = s * (float)Laux[i] + m - x[i];
            diff = use_mad ? fabsf(diff) : diff * diff;
            err += w[i] * diff;
        }
        if (err < best_err) {
            memcpy(L, Laux, (size_t)n);
            best_err = err;
            scale = s;
            min = m;
        }
    }
    *min_out = -min;
    return scale;
}

/* Low two bits of 256 levels into the Q2_K/Q3_K layout. */
static void pack_2bit(const uint8_t *L, uint8_t qs[EA_QK_K / 4])
{
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *p = L + 128 * h + l;
            qs[32 * h + l] = (uint8_t)((p[0] & 3) | (p[32] & 3) << 2 | (p[64] & 3) << 4 | (p[96] & 3) << 6);
        }
}

/* ---- K-quant weight formats -------------------------------------------- */

void ea__enc_q2_k(const float *x, void *dst, int64_t nb)
{
    struct ea_blk_q2_k *y = dst;
    for (int64_t i = 0; i < nb; i++, x += EA_QK_K) {
        uint8_t L[EA_QK_K];
        float w[16], scales[16], mins[16];
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++)
                w[l] = fabsf(x[16 * j + l]);
            scales[j] = search_scale_min(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }
        /* scales and mins to 4 bits each against their maxima */
        memset(y[i].scales, 0, sizeof y[i].scales);
        y[i].d = ea_f32_to_fp16(0);
        y[i].dmin = ea_f32_to_fp16(0);
        if (max_scale > 0) {
            const float is = 15.0f / max_scale;
            for (int j = 0; j < 16; j++)
                y[i].scales[j] = (uint8_t)round_even(is * scales[j]);
            y[i].d = ea_f32_to_fp16(max_scale / 15.0f);
        }
        if (max_min > 0) {
            const float is = 15.0f / max_min;
            for (int j = 0; j < 16; j++)
                y[i].scales[j] |= (uint8_t)(round_even(is * mins[j]) << 4);
            y[i].dmin = ea_f32_to_fp16(max_min / 15.0f);
        }
        /* requantize the values against the scales as stored */
        const float d = ea_fp16_to_f32(y[i].d), dmin = ea_fp16_to_f32(y[i].dmin);
        for (int j = 0; j < 16; j++) {
            const float dl = d * (float)(y[i].scales[j] & 15);
            if (dl == 0)
                continue;
            const float ml = dmin * (float)(y[i].scales[j] >> 4);
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (uint8_t)clampi(round_even((x[16 * j + l] + ml) / dl), 0, 3);
        }
        pack_2bit(L, y[i].qs);
    }
}

void ea__enc_q3_k(const float *x, void *dst, int64_t nb)
{
    struct ea_blk_q3_k *y = dst;
    for (int64_t i = 0; i < nb; i++, x += EA_QK_K) {
        int8_t L[EA_QK_K];
        float scales[16];
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = search_signed_levels(16, 4, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        /* 6-bit signed scales against the one of largest magnitude */
        uint8_t u[16] = {0};
        y[i].d = ea_f32_to_fp16(0);
        if (max_scale != 0) {
            const float is = -32.0f / max_scale;
            for (int j = 0; j < 16; j++)
                u[j] = (uint8_t)(clampi((int8_t)round_even(is * scales[j]), -32, 31) + 32);
            y[i].d = ea_f32_to_fp16(1 / is);
        }
        ea__q3k_pack_scales(u, y[i].scales);
        int8_t sc[16];
        ea__q3k_scales(y[i].scales, sc);
        const float d = ea_fp16_to_f32(y[i].d);
        for (int j = 0; j < 16; j++) {
            const float dl = d * (float)sc[j];
            if (dl == 0)
                continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (int8_t)(clampi(round_even(x[16 * j + l] / dl), -4, 3) + 4);
        }
        /* bit 2 of value 32b + l goes to bit b of hmask[l]; low bits as Q2_K */
        uint8_t low[EA_QK_K];
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        for (int v = 0; v < EA_QK_K; v++) {
            if (L[v] > 3)
                y[i].hmask[v % 32] |= (uint8_t)(1 << (v / 32));
            low[v] = (uint8_t)(L[v] & 3);
        }
        pack_2bit(low, y[i].qs);
    }
}

/* Q4_K and Q5_K share everything but the level count and search range. */
static void encode_k4(const float *x, uint16_t *d_out, uint16_t *dmin_out, uint8_t packed[12],
                      uint8_t L[EA_QK_K], int nmax, float rmin, int nstep)
{
    float w[32], scales[8], mins[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += xs[l] * xs[l];
        const float av = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            w[l] = av + fabsf(xs[l]);
        scales[j] = search_scale_min(32, nmax, xs, w, L + 32 * j, &mins[j], rmin, 0.1f, nstep, false);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }
    const float is = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float im = max_min > 0 ? 63.0f / max_min : 0.0f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        /* the byte truncation matches llama.cpp for (rare) negative fits */
        uint8_t a = (uint8_t)round_even(is * scales[j]), b = (uint8_t)round_even(im * mins[j]);
        ls[j] = a < 63 ? a : 63;
        lm[j] = b < 63 ? b : 63;
    }
    ea__k4_pack_scale_min(ls, lm, packed);
    *d_out = ea_f32_to_fp16(max_scale / 63.0f);
    *dmin_out = ea_f32_to_fp16(max_min / 63.0f);
    const float d = ea_fp16_to_f32(*d_out), dmin = ea_fp16_to_f32(*dmin_out);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        ea__k4_scale_min(j, packed, &sc, &m);
        const float dl = d * (float)sc;
        if (dl == 0)
            continue;
        const float ml = dmin * (float)m;
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = (uint8_t)clampi(round_even((x[32 * j + l] + ml) / dl), 0, nmax);
    }
}

void ea__enc_q4_k(const float *x, void *dst, int64_t nb)
{
    struct ea_blk_q4_k *y = dst;
    for (int64_t i = 0; i < nb; i++, x += EA_QK_K) {
        uint8_t L[EA_QK_K];
        encode_k4(x, &y[i].d, &y[i].dmin, y[i].scales, L, 15, -1.0f, 20);
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < 32; l++)
                y[i].qs[32 * p + l] = (uint8_t)(L[64 * p + l] | L[64 * p + 32 + l] << 4);
    }
}

void ea__enc_q5_k(const float *x, void *dst, int64_t nb)
{
    struct ea_blk_q5_k *y = dst;
    for (int64_t i = 0; i < nb; i++, x += EA_QK_K) {
        uint8_t L[EA_QK_K];
        encode_k4(x, &y[i].d, &y[i].dmin, y[i].scales, L, 31, -0.5f, 15);
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int v = 0; v < EA_QK_K; v++)
            if (L[v] > 15)
                y[i].qh[v % 32] |= (uint8_t)(1 << (v / 32));
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < 32; l++)
                y[i].qs[32 * p + l] = (uint8_t)((L[64 * p + l] & 15) | (L[64 * p + 32 + l] & 15) << 4);
    }
}

void ea__enc_q6_k(const float *x, void *dst, int64_t nb)
{
    struct ea_blk_q6_k *y = dst;
    for (int64_t i = 0; i < nb; i++, x += EA_QK_K) {
        int8_t L[EA_QK_K];
        float scales[16];
        float max_scale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = search_signed_scale(16, 32, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (amax < 1e-15f)
            continue; /* all zero */
        const float is = -128.0f / max_scale;
        y[i].d = ea_f32_to_fp16(1 / is);
        for (int j = 0; j < 16; j++) {
            int s = round_even(is * scales[j]);
            y[i].scales[j] = (int8_t)(s < 127 ? s : 127);
        }
        const float d = ea_fp16_to_f32(y[i].d);
        for (int j = 0; j < 16; j++) {
            const float dl = d * (float)y[i].scales[j];
            if (dl == 0)
                continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (int8_t)(clampi(round_even(x[16 * j + l] / dl), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const int8_t *p = L + 128 * h + l;
                y[i].ql[64 * h + l] = (uint8_t)((p[0] & 15) | (p[64] & 15) << 4);
                y[i].ql[64 * h + 32 + l] = (uint8_t)((p[32] & 15) | (p[96] & 15) << 4);
                y[i].qh[32 * h + l] =
                    (uint8_t)((p[0] >> 4) | (p[32] >> 4) << 2 | (p[64] >> 4) << 4 | (p[96] >> 4) << 6);
            }
    }
}

/* ---- activation quantizers --------------------------------------------- */

/* Shared by Q8_0 and Q8_1; returns the sum of the quants. */
static int act_block_q8(const float *x, uint16_t *d_out, int8_t *qs, float *d_f32)
{
    float amax;
    signed_absmax(x, EA_QK, &amax);
    const float d = amax / 127.0f;
    const float id = amax != 0 ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < EA_QK; j++) {
        /* saturate as the SIMD pack instructions do (only NaN/inf reach it) */
        int q = clampi(round_even(x[j] * id), -128, 127);
        qs[j] = (int8_t)q;
        sum += q;
    }
    *d_out = ea_f32_to_fp16(d);
    *d_f32 = d;
    return sum;
}

void ea__act_q8_0(const float *x, void *y, int64_t k)
{
    struct ea_blk_q8_0 *b = y;
    float d;
    for (int64_t i = 0; i < k / EA_QK; i++, x += EA_QK)
        act_block_q8(x, &b[i].d, b[i].qs, &d);
}

void ea__act_q8_1(const float *x, void *y, int64_t k)
{
    struct ea_blk_q8_1 *b = y;
    float d;
    for (int64_t i = 0; i < k / EA_QK; i++, x += EA_QK) {
        int sum = act_block_q8(x, &b[i].d, b[i].qs, &d);
        b[i].s = ea_f32_to_fp16(d * (float)sum);
    }
}

void ea__act_q8_k(const float *x, void *y, int64_t k)
{
    struct ea_blk_q8_k *b = y;
    for (int64_t i = 0; i < k / EA_QK_K; i++, x += EA_QK_K) {
        float amax;
        const float max = signed_absmax(x, EA_QK_K, &amax);
        memset(&b[i], 0, sizeof b[i]);
        if (amax == 0)
            continue;
        const float is = -127.0f / max;
        for (int j = 0; j < EA_QK_K; j++) {
            int q = round_even(is * x[j]);
            b[i].qs[j] = (int8_t)clampi(q, -128, 127);
        }
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += b[i].qs[16 * g + l];
            b[i].bsums[g] = (int16_t)s;
        }
        b[i].d = 1 / is;
    }
}

/* Q8_1 and Q8_K only ever hold activations: encoding uses that quantizer. */
void ea__enc_q8_1(const float *x, void *y, int64_t nb) { ea__act_q8_1(x, y, nb * EA_QK); }
void ea__enc_q8_k(const float *x, void *y, int64_t nb) { ea__act_q8_k(x, y, nb * EA_QK_K); }
