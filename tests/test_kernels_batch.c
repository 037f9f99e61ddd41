/* test_kernels_batch.c - batch invariance: every kernel variant computes an
 * output element the same way whatever the batch around it (gemm with nc
 * activation rows == nc calls with one row each, bit for bit; likewise for
 * row ranges). Continuous batching relies on this: a sequence's tokens must
 * not depend on which other sequences share its step. The F16 attention
 * helpers likewise: a query row's scores and outputs are the same alone, in
 * a tile of rows, and with the keys taken in pieces. */
#include <stdlib.h>
#include <string.h>

#include "edgeagent/kernels.h"
#include "harness.h"
#include "util/fp16.h"

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

static void attention_invariance(void)
{
    enum { R = 48, N = 37, MAXHD = 128 };
    static const int64_t hds[] = {64, 128, 40, 6};
    static const int64_t cuts[] = {0, 5, 16, 17, 32, N}; /* key pieces, as KV blocks split them */
    static const int groups[] = {1, 2, 3, 5, 8, 9};
    static float q[R * MAXHD], all[R * N], one[R * N], part[R * N], p[R * N];
    static float oall[R * MAXHD], oone[R * MAXHD], opart[R * MAXHD];
    static uint16_t kv[N * (MAXHD + 5)];
    int checked = 0;
    for (unsigned v = 0; v < ea_kernels_n_variants(); v++) {
        const struct ea_vec_ops *op = ea_kernels_variant_vec(v);
        for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
            const int64_t hd = hds[hi];
            const size_t stride = (size_t)hd + 5;
            for (int64_t i = 0; i < R * hd; i++)
                q[i] = frand();
            for (size_t i = 0; i < N * stride; i++)
                kv[i] = ea_f32_to_fp16(frand() * 2);
            for (int64_t i = 0; i < R * N; i++)
                p[i] = (frand() + 1) / N;
            op->att_scores_f16(hd, R, q, kv, stride, N, 0.125f, all, N);
            for (int i = 0, gi = 0; i < R; i += groups[gi++ % 6]) { /* rows in groups of 1 .. 9 */
                const int g = R - i < groups[gi % 6] ? R - i : groups[gi % 6];
                op->att_scores_f16(hd, g, q + i * hd, kv, stride, N, 0.125f, one + i * N, N);
            }
            for (int c = 0; c + 1 < 6; c++)
                op->att_scores_f16(hd, R, q, kv + cuts[c] * stride, stride, cuts[c + 1] - cuts[c], 0.125f,
                                   part + cuts[c], N);
            memset(oall, 0, sizeof oall);
            memset(oone, 0, sizeof oone);
            memset(opart, 0, sizeof opart);
            op->att_accum_f16(hd, R, p, N, kv, stride, N, oall);
            for (int i = 0, gi = 0; i < R; i += groups[gi++ % 6]) {
                const int g = R - i < groups[gi % 6] ? R - i : groups[gi % 6];
                op->att_accum_f16(hd, g, p + i * N, N, kv, stride, N, oone + i * hd);
            }
            for (int c = 0; c + 1 < 6; c++)
                op->att_accum_f16(hd, R, p + cuts[c], N, kv + cuts[c] * stride, stride, cuts[c + 1] - cuts[c], opart);
            if (memcmp(all, one, sizeof(float) * R * N) != 0 || memcmp(all, part, sizeof(float) * R * N) != 0)
                FAIL("%s hd %lld: scores depend on the rows or keys around them", ea_kernels_variant_name(v),
                     (long long)hd);
            if (memcmp(oall, oone, sizeof(float) * R * hd) != 0 || memcmp(oall, opart, sizeof(float) * R * hd) != 0)
                FAIL("%s hd %lld: accumulation depends on the rows or keys around it", ea_kernels_variant_name(v),
                     (long long)hd);
            checked++;
        }
    }
    printf("    %d variant x head size pairs batch-invariant\n", checked);
}

EA_TESTS(EA_TEST(batch_invariance), EA_TEST(attention_invariance))
