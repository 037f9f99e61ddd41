/* quant.c - row conversions between f32 and the tensor types (scalar
 * reference). Quantized block formats arrive with the engine issue.
 * Does not hold: dot products or matmul (see dispatch).
 */
#include "edgeagent/kernels.h"

#include <inttypes.h>

#include "util/fp16.h"

bool ea_quant_can_encode(uint32_t type)
{
    return type == EA_TYPE_F32 || type == EA_TYPE_F16 || type == EA_TYPE_BF16;
}

bool ea_quant_can_decode(uint32_t type) { return ea_quant_can_encode(type); }

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
        return ea_error_set(err, EA_EUNSUPPORTED, "quant: cannot encode %s",
                            ea_type_info(type)->name);
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
        return ea_error_set(err, EA_EUNSUPPORTED, "quant: cannot decode %s",
                            ea_type_info(type)->name);
    }
}
