/* bench_packed.c - micro-benchmark of the packed weight layout's gemm
 * (ea_pack_ops) across small batch widths: what one engine step costs per
 * weight matrix when 1, 2, 4, ... 64 sequences decode together. Not a test:
 * prints figures.
 *
 *   bench_packed [-t threads] [-r reps] [-k K] [-m MB] [-c NC] [type ...]
 *
 * One matrix of k = 2048 (TinyLlama's width) with as many rows as fit in
 * ~64 MB of the type (more than the L3, as the layers of a model are), packed
 * once; for each nc, the median time of reps passes with the rows split over
 * the threads in whole tiles (as the model does). Reported as GMAC/s
 * (multiply-adds of the dot products) and GB/s of weights; the nc = 1 row is
 * decode (memory bound), the large nc rows approach the kernel's compute
 * rate, and the ratio between them is the most a batch can gain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "edgeagent/kernels.h"

struct job {
    const struct ea_pack_ops *pk;
    int64_t k, nr, nc;
    const uint8_t *wp;
    const uint8_t *x;
    size_t x_stride;
    float *s;
};

static void gemm_rows(const void *ctx, int64_t r0, int64_t r1)
{
    const struct job *j = ctx;
    j->pk->gemm(j->k, r0, r1 - r0, j->nc, j->wp, j->x, j->x_stride, j->s + r0, (size_t)j->nr);
}

/* rows split over the threads in whole tiles, as the model does */
static double run(const struct job *j, int threads)
{
    return bench_run_rows(threads, j->nr, j->pk->rows, gemm_rows, j);
}

int main(int argc, char **argv)
{
    int threads = 1, reps = 7;
    int64_t k = 2048;
    double mb = 64;
    int64_t only_nc = 0; /* -c: time this one nc only (A/B runs, profiles) */
    const char *types[16];
    int n_types = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-k") && i + 1 < argc)
            k = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc)
            mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "-c") && i + 1 < argc)
            only_nc = atoll(argv[++i]);
        else if (n_types < 16)
            types[n_types++] = argv[i];
    }
    if (threads < 1 || threads > 16 || reps < 1 || reps > 99 || k < 256 || k % 256 || mb < 0.1 || mb > 4096) {
        fprintf(stderr, "usage: bench_packed [-t threads 1..16] [-r reps] [-k K, multiple of 256] [-m MB] [-c NC] "
                        "[type ...]\n");
        return 2;
    }
    if (!n_types) {
        types[0] = "Q4_0";
        types[1] = "Q8_0";
        n_types = 2;
    }
    static const int64_t ncs[] = {1, 2, 4, 8, 12, 16, 24, 32, 64, 128};
    enum { N_NC = sizeof ncs / sizeof ncs[0], MAX_NC = 128 };
    printf("kernels %s, k=%lld, %d thread(s), ~%.0f MB of weights, median of %d passes per nc\n",
           ea_kernels_name(), (long long)k, threads, mb, reps);
    float *f = malloc(sizeof(float) * (size_t)k * 8);
    if (!f)
        return 1;
    for (int64_t i = 0; i < k * 8; i++)
        f[i] = (float)((i * 7919 % 2003) - 1001) / 700.0f;
    for (int ti = 0; ti < n_types; ti++) {
        int t = ea_type_from_name(types[ti]);
        const struct ea_pack_ops *pk = t < 0 ? NULL : ea_kernels_pack((uint32_t)t);
        const struct ea_matmul_ops *ops = t < 0 ? NULL : ea_kernels_matmul((uint32_t)t);
        if (!pk || !ops) {
            fprintf(stderr, "%s: no packed layout in the %s kernels\n", types[ti], ea_kernels_name());
            continue;
        }
        const struct ea_type_info *wi = ea_type_info((uint32_t)t), *ai = ea_type_info(ops->act_type);
        const size_t wrow = (size_t)(k / wi->block_size) * wi->type_size;
        const size_t xrow = (size_t)(k / ai->block_size) * ai->type_size;
        int64_t nr = (int64_t)(mb * 1e6 / (double)wrow) / 256 * 256;
        size_t psize = pk->size(k, nr);
        uint8_t *w = malloc(wrow * (size_t)nr), *x = malloc(xrow * MAX_NC);
        uint8_t *wp = aligned_alloc(64, (psize + 63) / 64 * 64);
        float *s = malloc(sizeof(float) * (size_t)nr * MAX_NC);
        if (!psize || !w || !x || !wp || !s)
            return 1;
        for (int64_t r = 0; r < nr; r++) /* 8 distinct rows are enough to time */
            if (r < 8)
                ea_quant_from_f32((uint32_t)t, f + r * k, w + r * wrow, k, NULL);
            else
                memcpy(w + r * wrow, w + (r % 8) * wrow, wrow);
        pk->repack(k, nr, 0, nr, w, wrow, wp);
        free(w);
        for (int64_t j = 0; j < MAX_NC; j++)
            ops->quantize_act(f + (j % 8) * k, x + j * xrow, k);
        double tm[N_NC][99];
        for (int rep = 0; rep < reps; rep++)
            for (int n = 0; n < N_NC; n++) {
                if (only_nc && ncs[n] != only_nc)
                    continue;
                struct job jb = {pk, k, nr, ncs[n], wp, x, xrow, s};
                tm[n][rep] = run(&jb, threads);
            }
        printf("%-5s rows %lld (%.1f MB packed)\n", types[ti], (long long)nr, psize / 1e6);
        double base = 0;
        for (int n = 0; n < N_NC; n++) {
            if (only_nc && ncs[n] != only_nc)
                continue;
            qsort(tm[n], (size_t)reps, sizeof(double), bench_cmp_double);
            const double tt = tm[n][reps / 2];
            const double gmac = (double)k * nr * ncs[n] / tt / 1e9;
            if (base == 0)
                base = tt; /* the first nc timed (nc = 1 unless -c) */
            printf("  nc %3lld  %8.3f ms  %7.1f GMAC/s  %6.2f GB/s  step time vs nc=1 %5.2fx  "
                   "tokens/s vs nc=1 %5.2fx\n",
                   (long long)ncs[n], tt * 1e3, gmac, psize / tt / 1e9, tt / base, ncs[n] * base / tt);
        }
        free(wp), free(x), free(s);
    }
    free(f);
    return 0;
}
