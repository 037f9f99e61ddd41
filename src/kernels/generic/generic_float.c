/* generic_float.c - scalar reference matmul for F32, F16 and BF16 weights and
 * the generic vector helpers. As in llama.cpp, F16 and BF16 weights take
 * activations converted to their own type, F32 weights take f32.
 * Does not hold: quantized formats (generic_quants.c).
 */
#include <math.h>
#include "kernels/generic/generic_int.h"
#include "util/fp16.h"

static void act_f32(const float *x, void *y, int64_t k)
{
    float *o = y;
    for (int64_t i = 0; i < k; i++)
        o[i] = x[i];
}

static void act_f16(const float *x, void *y, int64_t k)
{
    uint16_t *o = y;
    for (int64_t i = 0; i < k; i++)
        o[i] = ea_f32_to_fp16(x[i]);
}

static void act_bf16(const float *x, void *y, int64_t k)
{
    uint16_t *o = y;
    for (int64_t i = 0; i < k; i++)
        o[i] = ea_f32_to_bf16(x[i]);
}

/* Dot products accumulate in double: the reference should not be the
 * source of rounding differences. */
static float dot_f32(int64_t k, const void *w, const void *x)
{
    const float *a = w, *b = x;
    double s = 0;
    for (int64_t i = 0; i < k; i++)
        s += (double)a[i] * b[i];
    return (float)s;
}

static float dot_f16(int64_t k, const void *w, const void *x)
{
    const uint16_t *a = w, *b = x;
    double s = 0;
    for (int64_t i = 0; i < k; i++)
        s += (double)ea_fp16_to_f32(a[i]) * ea_fp16_to_f32(b[i]);
    return (float)s;
}

static float dot_bf16(int64_t k, const void *w, const void *x)
{
    const uint16_t *a = w, *b = x;
    double s = 0;
    for (int64_t i = 0; i < k; i++)
        s += (double)ea_bf16_to_f32(a[i]) * ea_bf16_to_f32(b[i]);
    return (float)s;
}

EA__GENERIC_GEMM(f32, dot_f32)
EA__GENERIC_GEMM(f16, dot_f16)
EA__GENERIC_GEMM(bf16, dot_bf16)

static float vec_dot_f16_f32(int64_t n, const uint16_t *a, const float *b)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)ea_fp16_to_f32(a[i]) * b[i];
    return (float)s;
}

static void vec_axpy_f16(int64_t n, float alpha, const uint16_t *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += alpha * ea_fp16_to_f32(x[i]);
}

static void vec_f32_to_f16(const float *x, uint16_t *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = ea_f32_to_fp16(x[i]);
}

static void vec_f16_to_f32(const uint16_t *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = ea_fp16_to_f32(x[i]);
}

static float vec_dot_f32(int64_t n, const float *a, const float *b)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return (float)s;
}

static void vec_axpy_f32(int64_t n, float alpha, const float *x, float *y)
{
    for (int64_t i = 0; i < n; i++)
        y[i] += alpha * x[i];
}

static void vec_att_scores_f16(int64_t hd, int g, const float *q, const uint16_t *k, size_t k_stride,
                               int64_t n, float scale, float *s, size_t s_stride)
{
    for (int i = 0; i < g; i++)
        for (int64_t j = 0; j < n; j++)
            s[(size_t)i * s_stride + (size_t)j] = scale * vec_dot_f16_f32(hd, k + (size_t)j * k_stride, q + i * hd);
}

static void vec_att_accum_f16(int64_t hd, int g, const float *p, size_t p_stride, const uint16_t *v,
                              size_t v_stride, int64_t n, float *out)
{
    for (int i = 0; i < g; i++)
        for (int64_t j = 0; j < n; j++)
            vec_axpy_f16(hd, p[(size_t)i * p_stride + (size_t)j], v + (size_t)j * v_stride, out + i * hd);
}

static float vec_exp_sum(int64_t n, float *x, float shift)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - shift);
        sum += x[i];
    }
    return (float)sum;
}

static void vec_silu_mul(int64_t n, float *g, const float *u)
{
    for (int64_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void ea__generic_install_float(struct ea_matmul_ops table[EA_TYPE_ID_LIMIT], struct ea_vec_ops *vec)
{
    table[EA_TYPE_F32] = (struct ea_matmul_ops){EA_TYPE_F32, act_f32, gemm_f32};
    table[EA_TYPE_F16] = (struct ea_matmul_ops){EA_TYPE_F16, act_f16, gemm_f16};
    table[EA_TYPE_BF16] = (struct ea_matmul_ops){EA_TYPE_BF16, act_bf16, gemm_bf16};
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
