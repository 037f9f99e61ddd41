/* convert.c - the public row conversions between f32 and the tensor types:
 * argument checks, then the float types inline and the quantized formats
 * through the scalar codecs of quant_codec.h.
 * Does not hold: the codecs themselves (quant_decode.c, quant_encode.c),
 * dot products or matmul (see dispatch).
 */
#include "edgeagent/kernels.h"

#include <inttypes.h>

#include "kernels/quant_codec.h"
#include "util/fp16.h"

struct quant_codec {
    void (*decode)(const void *src, float *dst, int64_t nb);
    void (*encode)(const float *src, void *dst, int64_t nb);
};

static const struct quant_codec codecs[EA_TYPE_ID_LIMIT] = {
    [EA_TYPE_Q4_0] = {ea__dec_q4_0, ea__enc_q4_0},
    [EA_TYPE_Q4_1] = {ea__dec_q4_1, ea__enc_q4_1},
    [EA_TYPE_Q5_0] = {ea__dec_q5_0, ea__enc_q5_0},
    [EA_TYPE_Q5_1] = {ea__dec_q5_1, ea__enc_q5_1},
    [EA_TYPE_Q8_0] = {ea__dec_q8_0, ea__enc_q8_0},
    [EA_TYPE_Q8_1] = {ea__dec_q8_1, ea__enc_q8_1},
    [EA_TYPE_Q2_K] = {ea__dec_q2_k, ea__enc_q2_k},
    [EA_TYPE_Q3_K] = {ea__dec_q3_k, ea__enc_q3_k},
    [EA_TYPE_Q4_K] = {ea__dec_q4_k, ea__enc_q4_k},
    [EA_TYPE_Q5_K] = {ea__dec_q5_k, ea__enc_q5_k},
    [EA_TYPE_Q6_K] = {ea__dec_q6_k, ea__enc_q6_k},
    [EA_TYPE_Q8_K] = {ea__dec_q8_k, ea__enc_q8_k},
};

static bool is_float_type(uint32_t type)
{
    return type == EA_TYPE_F32 || type == EA_TYPE_F16 || type == EA_TYPE_BF16;
}

bool ea_quant_can_encode(uint32_t type)
{
    return is_float_type(type) || (type < EA_TYPE_ID_LIMIT && codecs[type].encode);
}

bool ea_quant_can_decode(uint32_t type)
{
    return is_float_type(type) || (type < EA_TYPE_ID_LIMIT && codecs[type].decode);
}

static ea_status check(uint32_t type, int64_t n, struct ea_error *err)
{
    const struct ea_type_info *ti = ea_type_info(type);
    if (!ti)
        return ea_error_set(err, EA_EUNSUPPORTED, "quant: unknown type %u", type);
    if (n < 0 || n % ti->block_size)
        return ea_error_set(err, EA_EINVAL, "quant: %" PRId64 " values is not a whole number of %s blocks",
                            n, ti->name);
    return EA_OK;
}

ea_status ea_quant_from_f32(uint32_t type, const float *src, void *dst, int64_t n,
                            struct ea_error *err)
{
    ea_status s = check(type, n, err);
    if (s)
        return s;
    switch (type) {
    case EA_TYPE_F32: {
        float *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = src[i];
        return EA_OK;
    }
    case EA_TYPE_F16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = ea_f32_to_fp16(src[i]);
        return EA_OK;
    }
    case EA_TYPE_BF16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++)
            d[i] = ea_f32_to_bf16(src[i]);
        return EA_OK;
    }
    default:
        if (!ea_quant_can_encode(type))
            return ea_error_set(err, EA_EUNSUPPORTED, "quant: cannot encode %s",
                                ea_type_info(type)->name);
        codecs[type].encode(src, dst, n / ea_type_info(type)->block_size);
        return EA_OK;
    }
}

ea_status ea_quant_to_f32(uint32_t type, const void *src, float *dst, int64_t n,
                          struct ea_error *err)
{
    ea_status s = check(type, n, err);
    if (s)
        return s;
    switch (type) {
    case EA_TYPE_F32: {
        const float *p = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = p[i];
        return EA_OK;
    }
    case EA_TYPE_F16: {
        const uint16_t *p = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = ea_fp16_to_f32(p[i]);
        return EA_OK;
    }
    case EA_TYPE_BF16: {
        const uint16_t *p = src;
        for (int64_t i = 0; i < n; i++)
            dst[i] = ea_bf16_to_f32(p[i]);
        return EA_OK;
    }
    default:
        if (!ea_quant_can_decode(type))
            return ea_error_set(err, EA_EUNSUPPORTED, "quant: cannot decode %s",
                                ea_type_info(type)->name);
        codecs[type].decode(src, dst, n / ea_type_info(type)->block_size);
        return EA_OK;
    }
}
