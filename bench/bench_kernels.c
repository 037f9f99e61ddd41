/* bench_kernels.c - micro-benchmark of the matmul kernels: decode (one
 * activation row, weights streamed from memory) and prefill (many activation
 * rows, compute bound), per type and variant. Not a test: prints figures.
 *
 *   bench_kernels [-t threads] [-r reps] [type ...]
 *
 * Decode: nr rows of k = 4096 sized so the weights (~96 MB) do not fit in
 * the caches; reported as GB/s of weights read; "from cache" repeats 256 of
 * those rows, which then sit in L2/L3: the kernel's own speed, which must
 * exceed the memory's for decode to be memory bound. Prefill: nr = 512,
 * k = 4096, nc = 128; reported as GMAC/s (multiply-adds of the products).
 * Threads split the weight rows as the model does. Each figure is the
 * median of reps runs; every run goes through all types and variants in
 * turn, so that load from other jobs hits them alike (F16, whose decode is
 * a plain stream of the weights, is the bandwidth baseline).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "edgeagent/kernels.h"

struct job {
    const struct ea_matmul_ops *ops;
    int64_t k, nr, nc;
    const uint8_t *w;
    size_t w_stride;
    const uint8_t *x;
    size_t x_stride;
    float *s;
};

static void gemm_rows(const void *ctx, int64_t r0, int64_t r1)
{
    const struct job *j = ctx;
    j->ops->gemm(j->k, r1 - r0, j->nc, j->w + (size_t)r0 * j->w_stride, j->w_stride, j->x, j->x_stride, j->s + r0,
                 (size_t)j->nr);
}

static double run(const struct job *j, int threads) { return bench_run_rows(threads, j->nr, 8, gemm_rows, j); }

static size_t row_bytes(uint32_t type, int64_t k)
{
    const struct ea_type_info *ti = ea_type_info(type);
    return (size_t)(k / ti->block_size) * ti->type_size;
}

int main(int argc, char **argv)
{
    int threads = 1, reps = 5;
    const char *types[32];
    int n_types = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (n_types < 32)
            types[n_types++] = argv[i];
    }
    if (threads < 1 || threads > 16 || reps < 1 || reps > 50) {
        fprintf(stderr, "usage: bench_kernels [-t threads 1..16] [-r reps] [type ...]\n");
        return 2;
    }
    static const char *defaults[] = {"F16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"};
    if (!n_types) {
        n_types = 6;
        memcpy(types, defaults, sizeof defaults);
    }
    const int64_t k = 4096, nr_pre = 512, nc_pre = 128;
    unsigned nv = ea_kernels_n_variants();
    printf("k=%lld, %d thread(s), median of %d interleaved runs; variants:", (long long)k, threads, reps);
    for (unsigned v = 1; v < nv; v++)
        printf(" %s", ea_kernels_variant_name(v));
    printf("\n");
    struct data {
        uint32_t type;
        size_t wrow, xrow;
        int64_t nr_dec;
        uint8_t *w, *x;
        double dec[16][50], hot[16][50], pre[16][50];
    } *d = calloc((size_t)n_types, sizeof *d);
    float *f = malloc(sizeof(float) * k * 8), *s = malloc(sizeof(float) * 100000 * 8);
    if (!d || !f || !s)
        return 1;
    for (int64_t i = 0; i < k * 8; i++)
        f[i] = (float)((i * 7919 % 2003) - 1001) / 700.0f;
    for (int ti = 0; ti < n_types; ti++) {
        int t = ea_type_from_name(types[ti]);
        if (t < 0 || !ea_kernels_matmul((uint32_t)t)) {
            fprintf(stderr, "unknown or non-computable type %s\n", types[ti]);
            return 2;
        }
        const struct ea_matmul_ops *gops = ea_kernels_variant_matmul(0, (uint32_t)t);
        d[ti].type = (uint32_t)t;
        d[ti].wrow = row_bytes((uint32_t)t, k);
        d[ti].xrow = row_bytes(gops->act_type, k);
        /* weights of ~96 MB: more than the caches hold */
        d[ti].nr_dec = (int64_t)(96e6 / d[ti].wrow) / 64 * 64;
        d[ti].w = malloc(d[ti].wrow * d[ti].nr_dec);
        d[ti].x = malloc(d[ti].xrow * nc_pre);
        if (!d[ti].w || !d[ti].x || d[ti].nr_dec > 100000)
            return 1;
        for (int64_t r = 0; r < d[ti].nr_dec; r++) /* 8 distinct rows are enough to time */
            if (r < 8)
                ea_quant_from_f32((uint32_t)t, f + r * k, d[ti].w + r * d[ti].wrow, k, NULL);
            else
                memcpy(d[ti].w + r * d[ti].wrow, d[ti].w + (r % 8) * d[ti].wrow, d[ti].wrow);
        for (int64_t j = 0; j < nc_pre; j++)
            gops->quantize_act(f + (j % 8) * k, d[ti].x + j * d[ti].xrow, k);
    }
    for (int rep = 0; rep < reps; rep++)
        for (int ti = 0; ti < n_types; ti++)
            for (unsigned v = 1; v < nv; v++) {
                const struct ea_matmul_ops *ops = ea_kernels_variant_matmul(v, d[ti].type);
                struct job jd = {ops, k, d[ti].nr_dec, 1, d[ti].w, d[ti].wrow, d[ti].x, d[ti].xrow, s};
                struct job jp = {ops, k, nr_pre, nc_pre, d[ti].w, d[ti].wrow, d[ti].x, d[ti].xrow, s};
                d[ti].dec[v][rep] = run(&jd, threads);
                struct job jh = {ops, k, 256, 1, d[ti].w, d[ti].wrow, d[ti].x, d[ti].xrow, s};
                run(&jh, threads); /* warm: these 256 rows now sit in L2/L3 */
                double t0 = bench_now();
                for (int i = 0; i < 20; i++)
                    run(&jh, threads);
                d[ti].hot[v][rep] = (bench_now() - t0) / 20;
                d[ti].pre[v][rep] = run(&jp, threads);
            }
    for (int ti = 0; ti < n_types; ti++)
        for (unsigned v = 1; v < nv; v++) {
            qsort(d[ti].dec[v], (size_t)reps, sizeof(double), bench_cmp_double);
            qsort(d[ti].pre[v], (size_t)reps, sizeof(double), bench_cmp_double);
            qsort(d[ti].hot[v], (size_t)reps, sizeof(double), bench_cmp_double);
            double td = d[ti].dec[v][reps / 2], tp = d[ti].pre[v][reps / 2], th = d[ti].hot[v][reps / 2];
            printf("%-5s %-7s decode %6.2f GB/s (%6.2f ms, nr=%lld), from cache %6.2f GB/s   "
                   "prefill %6.1f GMAC/s (%5.2f ms, %lldx%lld)\n",
                   types[ti], ea_kernels_variant_name(v), d[ti].wrow * d[ti].nr_dec / td / 1e9, td * 1e3,
                   (long long)d[ti].nr_dec, d[ti].wrow * 256 / th / 1e9,
                   (double)k * nr_pre * nc_pre / tp / 1e9, tp * 1e3, (long long)nr_pre, (long long)nc_pre);
        }
    for (int ti = 0; ti < n_types; ti++)
        free(d[ti].w), free(d[ti].x);
    free(d), free(f), free(s);
    return 0;
}
