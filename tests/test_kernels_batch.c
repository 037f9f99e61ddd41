/* test_kernels_batch.c - batch invariance: every kernel variant computes an
 * output element the same way whatever the batch around it (gemm with nc
 * activation rows == nc calls with one row each, bit for bit; likewise for
 * row ranges). Continuous batching relies on this: a sequence's tokens must
 * not depend on which other sequences share its step. */
#include <stdlib.h>

#include "edgeagent/kernels.h"
#include "harness.h"

static uint64_t rng = 99;
static float frand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void batch_invariance(void)
{
    static const uint32_t types[] = {EA_TYPE_F32,  EA_TYPE_F16,  EA_TYPE_BF16, EA_TYPE_Q8_0,
                                     EA_TYPE_Q4_0, EA_TYPE_Q4_1, EA_TYPE_Q5_0, EA_TYPE_Q5_1,
                                     EA_TYPE_Q2_K, EA_TYPE_Q3_K, EA_TYPE_Q4_K, EA_TYPE_Q5_K,
                                     EA_TYPE_Q6_K};
    const int64_t k = 512, nr = 37, nc = 13;
    int checked = 0;
    for (unsigned v = 0; v < ea_kernels_n_variants(); v++) {
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            uint32_t t = types[ti];
            const struct ea_matmul_ops *ops = ea_kernels_variant_matmul(v, t);
            if (!ops)
                continue;
            uint64_t wrow, xrow;
            ea_type_bytes(t, k, &wrow);
            ea_type_bytes(ops->act_type, k, &xrow);
            float *wf = malloc(sizeof(float) * k), *xf = malloc(sizeof(float) * k);
            uint8_t *w = malloc(wrow * nr), *x = malloc(xrow * nc);
            struct ea_error err = {0};
            for (int64_t r = 0; r < nr; r++) {
                for (int64_t i = 0; i < k; i++)
                    wf[i] = frand();
                ASSERT_OK(ea_quant_from_f32(t, wf, w + r * wrow, k, &err), &err);
            }
            for (int64_t j = 0; j < nc; j++) {
                for (int64_t i = 0; i < k; i++)
                    xf[i] = frand() * 3;
                ops->quantize_act(xf, x + j * xrow, k);
            }
            float all[37 * 13], one[37 * 13], part[37 * 13];
            ops->gemm(k, nr, nc, w, wrow, x, xrow, all, nr);
            for (int64_t j = 0; j < nc; j++)
                ops->gemm(k, nr, 1, w, wrow, x + j * xrow, xrow, one + j * nr, nr);
            /* odd row ranges, as threads split them */
            int64_t cuts[] = {0, 5, 16, 17, 30, 37};
            for (int c = 0; c + 1 < 6; c++)
                ops->gemm(k, cuts[c + 1] - cuts[c], nc, w + cuts[c] * wrow, wrow, x, xrow,
                          part + cuts[c], nr);
            for (int64_t i = 0; i < nr * nc; i++) {
                if (memcmp(&all[i], &one[i], 4) != 0 || memcmp(&all[i], &part[i], 4) != 0)
                    FAIL("%s %s: element %lld differs with the batch (%.9g / %.9g / %.9g)",
                         ea_kernels_variant_name(v), ea_type_info(t)->name, (long long)i, all[i],
                         one[i], part[i]);
            }
            checked++;
            free(wf), free(xf), free(w), free(x);
        }
    }
    printf("    %d variant x type pairs batch-invariant\n", checked);
    ASSERT(checked >= 13);
}

EA_TESTS(EA_TEST(batch_invariance))
