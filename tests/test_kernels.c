/* test_kernels.c - every kernel variant against the generic reference, and
 * the generic reference against a plain f64 computation, on odd sizes. */
#include <stdlib.h>

#include "edgeagent/kernels.h"
#include "harness.h"
#include "util/fp16.h"

static uint64_t rng_state = 42;
static float frand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fp16_conversions(void)
{
    /* exhaustive: every half converts to float and back unchanged (NaNs stay NaN) */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ea_fp16_to_f32((uint16_t)h);
        uint16_t back = ea_f32_to_fp16(f);
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF))
            ASSERT((back & 0x7C00) == 0x7C00 && (back & 0x3FF));
        else
            ASSERT_EQ(back, h);
    }
    ASSERT_EQ(ea_f32_to_fp16(65520.0f), 0x7C00);     /* rounds to infinity */
    ASSERT_EQ(ea_f32_to_fp16(65519.0f), 0x7BFF);     /* largest finite */
    ASSERT_EQ(ea_f32_to_fp16(5.9604645e-08f), 0x0001); /* smallest subnormal */
    ASSERT_EQ(ea_f32_to_fp16(2.9802322e-08f), 0x0000); /* half of it: ties to even */
    ASSERT_EQ(ea_f32_to_fp16(1.0f + 1.0f / 2048), 0x3C00); /* tie to even (down) */
    ASSERT_EQ(ea_f32_to_fp16(1.0f + 3.0f / 2048), 0x3C02); /* tie to even (up) */
    ASSERT_EQ(ea_f32_to_bf16(1.0f), 0x3F80);
    ASSERT_NEAR(ea_bf16_to_f32(ea_f32_to_bf16(3.14159f)), 3.140625, 0);
}

static void check_float_type(uint32_t type, double tol)
{
    static const int64_t ks[] = {1, 3, 17, 33, 64, 257};
    for (unsigned v = 0; v < ea_kernels_n_variants(); v++) {
        const struct ea_matmul_ops *ref = ea_kernels_variant_matmul(0, type);
        const struct ea_matmul_ops *ops = ea_kernels_variant_matmul(v, type);
        ASSERT(ref && ops);
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            int64_t k = ks[ki], nr = 5, nc = 3;
            float *wf = malloc(sizeof(float) * k * nr), *xf = malloc(sizeof(float) * k * nc);
            for (int64_t i = 0; i < k * nr; i++)
                wf[i] = frand();
            for (int64_t i = 0; i < k * nc; i++)
                xf[i] = frand();
            size_t wrow = (size_t)k * 4, xrow = (size_t)k * 4;
            uint8_t *w = malloc(wrow * nr), *x = malloc(xrow * nc), *x_ref = malloc(xrow * nc);
            struct ea_error err = {0};
            for (int64_t i = 0; i < nr; i++)
                ASSERT_OK(ea_quant_from_f32(type, wf + i * k, w + i * wrow, k, &err), &err);
            for (int64_t j = 0; j < nc; j++) {
                ops->quantize_act(xf + j * k, x + j * xrow, k);
                ref->quantize_act(xf + j * k, x_ref + j * xrow, k);
            }
            float s[15], s_ref[15];
            ops->gemm(k, nr, nc, w, wrow, x, xrow, s, nr);
            ref->gemm(k, nr, nc, w, wrow, x_ref, xrow, s_ref, nr);
            for (int64_t j = 0; j < nc; j++)
                for (int64_t i = 0; i < nr; i++) {
                    double exact = 0;
                    for (int64_t t = 0; t < k; t++)
                        exact += (double)wf[i * k + t] * xf[j * k + t];
                    ASSERT_NEAR(s_ref[j * nr + i], exact, tol * k);
                    ASSERT_NEAR(s[j * nr + i], s_ref[j * nr + i], 1e-5 * k);
                }
            free(wf), free(xf), free(w), free(x), free(x_ref);
        }
    }
}

static void float_matmul(void)
{
    check_float_type(EA_TYPE_F32, 1e-6);
    check_float_type(EA_TYPE_F16, 2e-3);
    check_float_type(EA_TYPE_BF16, 2e-2);
}

static void variant_selection(void)
{
    struct ea_error err = {0};
    printf("    active variant: %s; usable:", ea_kernels_name());
    for (unsigned i = 0; i < ea_kernels_n_variants(); i++)
        printf(" %s", ea_kernels_variant_name(i));
    printf("\n");
    ASSERT_STR_EQ(ea_kernels_variant_name(0), "generic");
    ASSERT_EQ(ea_kernels_select("no-such-variant", &err), EA_EINVAL);
    ASSERT(strstr(err.msg, "generic") != NULL);
    const char *was = ea_kernels_name();
    ASSERT_OK(ea_kernels_select("generic", &err), &err);
    ASSERT_STR_EQ(ea_kernels_name(), "generic");
    ASSERT_OK(ea_kernels_select(was, &err), &err);
    ASSERT(ea_kernels_matmul(EA_TYPE_F32) != NULL);
    ASSERT(ea_kernels_matmul(EA_TYPE_I32) == NULL);
    ASSERT(ea_kernels_matmul(12345) == NULL);
}

EA_TESTS(EA_TEST(fp16_conversions), EA_TEST(float_matmul), EA_TEST(variant_selection))
