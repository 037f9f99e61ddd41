/* bench_icount.c - makes exactly one kernel call, for counting the
 * instructions it executes under an emulator (bench/arm_icount.py runs it
 * under qemu-aarch64 with execution tracing). Not a timing benchmark.
 *
 *   bench_icount TYPE VARIANT K NR NC [act]
 *
 * Calls gemm(K, NR, NC) of VARIANT's matmul for weight type TYPE on
 * pseudo-random bytes (the kernels do not branch on values, so the path is
 * that of real weights), or with "act" the activation quantizer on NC rows
 * of K values. Prints to stderr the address of a public function (to locate
 * the load base) and of the kernel called, for the trace reader.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/kernels.h"

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: bench_icount TYPE VARIANT K NR NC [act]\n");
        return 2;
    }
    const long long k = atoll(argv[3]), nr = atoll(argv[4]), nc = atoll(argv[5]);
    const int act = argc > 6 && strcmp(argv[6], "act") == 0;
    uint32_t type = EA_TYPE_ID_LIMIT;
    for (uint32_t t = 0; t < EA_TYPE_ID_LIMIT; t++) {
        const struct ea_type_info *ti = ea_type_info(t);
        if (ti && ti->name && strcmp(ti->name, argv[1]) == 0)
            type = t;
    }
    unsigned v = ea_kernels_n_variants();
    for (unsigned i = 0; i < ea_kernels_n_variants(); i++)
        if (strcmp(ea_kernels_variant_name(i), argv[2]) == 0)
            v = i;
    const struct ea_matmul_ops *ops = type < EA_TYPE_ID_LIMIT && v < ea_kernels_n_variants()
                                          ? ea_kernels_variant_matmul(v, type)
                                          : NULL;
    uint64_t wrow, xrow;
    if (!ops || k <= 0 || nr <= 0 || nc <= 0 || ea_type_bytes(type, (uint64_t)k, &wrow) != EA_OK ||
        ea_type_bytes(ops->act_type, (uint64_t)k, &xrow) != EA_OK) {
        fprintf(stderr, "bench_icount: no kernel for %s / %s / k=%lld\n", argv[1], argv[2], k);
        return 2;
    }
    uint8_t *w = malloc(wrow * nr), *x = malloc(xrow * nc);
    float *s = malloc(sizeof(float) * nr * nc), *f = malloc(sizeof(float) * k);
    if (!w || !x || !s || !f)
        return 1;
    uint64_t st = 5;
    for (uint64_t i = 0; i < wrow * nr; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        w[i] = (uint8_t)(st >> 56);
    }
    for (uint64_t i = 0; i < xrow * nc; i++) { /* small bytes keep Q8_K's float d finite */
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (uint8_t)(st >> 56) & 0x3F;
    }
    for (long long i = 0; i < k; i++)
        f[i] = (float)(i % 17) - 8.5f;
    fprintf(stderr, "ANCHOR %p FN %p\n", (void *)ea_kernels_variant_matmul,
            act ? (void *)ops->quantize_act : (void *)ops->gemm);
    if (act)
        for (long long j = 0; j < nc; j++)
            ops->quantize_act(f, x + j * xrow, k);
    else
        ops->gemm(k, nr, nc, w, wrow, x, xrow, s, (size_t)nr);
    free(w), free(x), free(s), free(f);
    return 0;
}
