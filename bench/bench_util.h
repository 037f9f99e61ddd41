/* bench_util.h - helpers shared by the C benchmarks in bench/: a monotonic
 * clock, a comparator for medians, and a timed run of a row range split
 * over threads. Header-only (each bench_*.c is its own program). Does not
 * hold: anything that measures or prints. */
#ifndef EA_BENCH_UTIL_H
#define EA_BENCH_UTIL_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* fn(ctx, r0, r1) on rows [0, nr) split over threads (1..16) in pieces that
 * start at multiples of align (the last thread takes the rest); the calling
 * thread runs the first piece. Returns the wall time in seconds. */
typedef void (*bench_rows_fn)(const void *ctx, int64_t r0, int64_t r1);

struct bench_slice {
    bench_rows_fn fn;
    const void *ctx;
    int64_t r0, r1;
};

static void *bench_slice_main(void *p)
{
    const struct bench_slice *sl = p;
    if (sl->r1 > sl->r0)
        sl->fn(sl->ctx, sl->r0, sl->r1);
    return NULL;
}

static inline double bench_run_rows(int threads, int64_t nr, int64_t align, bench_rows_fn fn, const void *ctx)
{
    pthread_t th[16];
    struct bench_slice sl[16];
    if (threads < 1)
        threads = 1;
    if (threads > 16)
        threads = 16;
    const double t0 = bench_now();
    const int64_t per = (nr / threads + align - 1) / align * align;
    for (int t = 0; t < threads; t++) {
        sl[t] = (struct bench_slice){fn, ctx, t * per < nr ? t * per : nr, (t + 1) * per < nr ? (t + 1) * per : nr};
        if (t == threads - 1)
            sl[t].r1 = nr;
        if (t > 0)
            pthread_create(&th[t], NULL, bench_slice_main, &sl[t]);
    }
    bench_slice_main(&sl[0]);
    for (int t = 1; t < threads; t++)
        pthread_join(th[t], NULL);
    return bench_now() - t0;
}

#endif
