/* fp16.h - portable IEEE half and bfloat16 conversions (scalar reference).
 * SIMD kernels may convert with F16C/NEON instead; these define the result.
 * Does not hold: any vectorised conversion (src/kernels).
 */
#ifndef EDGEAGENT_UTIL_FP16_H
#define EDGEAGENT_UTIL_FP16_H

#include <stdint.h>
#include <string.h>

static inline float ea_bits_to_f32(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static inline uint32_t ea_f32_to_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

static inline float ea_fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t man = h & 0x3FF;
    if (exp == 0) {
        if (man == 0)
            return ea_bits_to_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float f = (float)man * (1.0f / 16777216.0f);
        return sign ? -f : f;
    }
    if (exp == 31)
        return ea_bits_to_f32(sign | 0x7F800000u | (man << 13));
    return ea_bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
}

/* Round to nearest even; overflow goes to infinity, NaN stays NaN. */
static inline uint16_t ea_f32_to_fp16(float f)
{
    uint32_t x = ea_f32_to_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7C00 | (ax > 0x7F800000u ? 0x200 : 0));
    if (ax >= 0x477FF000u) /* rounds to >= 65520: overflow */
        return (uint16_t)(sign | 0x7C00);
    if (ax < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        if (ax < 0x33000000u) /* < 2^-25 rounds to zero */
            return (uint16_t)sign;
        uint32_t e = ax >> 23;
        uint32_t m = (ax & 0x7FFFFF) | 0x800000;
        uint32_t shift = 126 - e; /* 14..24 for the range that gets here */
        uint32_t half = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t r = ax + 0xFFF + ((ax >> 13) & 1); /* round to nearest even */
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

static inline float ea_bf16_to_f32(uint16_t h) { return ea_bits_to_f32((uint32_t)h << 16); }

static inline uint16_t ea_f32_to_bf16(float f)
{
    uint32_t x = ea_f32_to_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) /* NaN: keep it quiet */
        return (uint16_t)((x >> 16) | 64);
    return (uint16_t)((x + (0x7FFF + ((x >> 16) & 1))) >> 16);
}

#endif
