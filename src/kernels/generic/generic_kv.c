/* generic_kv.c - scalar reference of the vector helpers for a Q8_0 KV cache:
 * attention scores against Q8_0 keys, value accumulation from Q8_0 values,
 * and the row encoder. Does not hold: the F16/F32 KV helpers
 * (generic_float.c). */
#include "kernels/generic/generic_int.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_codec.h"
#include "util/fp16.h"

static float dot_q8_0_f32(int64_t n, const void *blocks, const float *b)
{
    const struct ea_blk_q8_0 *x = blocks;
    double s = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        float acc = 0;
        for (int j = 0; j < 32; j++)
            acc += (float)x[i].qs[j] * b[i * 32 + j];
        s += (double)ea_fp16_to_f32(x[i].d) * acc;
    }
    return (float)s;
}

static void axpy_q8_0(int64_t n, float alpha, const void *blocks, float *y)
{
    const struct ea_blk_q8_0 *x = blocks;
    for (int64_t i = 0; i < n / 32; i++) {
        float a = alpha * ea_fp16_to_f32(x[i].d);
        for (int j = 0; j < 32; j++)
            y[i * 32 + j] += a * (float)x[i].qs[j];
    }
}

static void f32_to_q8_0(const float *x, void *blocks, int64_t n) { ea__act_q8_0(x, blocks, n); }

void ea__generic_install_kv(struct ea_vec_ops *vec)
{
    vec->dot_q8_0_f32 = dot_q8_0_f32;
    vec->axpy_q8_0 = axpy_q8_0;
    vec->f32_to_q8_0 = f32_to_q8_0;
}
