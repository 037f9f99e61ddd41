/* bench_route.c - the deployment decision alone (ea_router_decide;
 * EA_TEST_NEEDS_NET: the router is built with the server's libraries), as
 * per-request routing will call it: N calls over 16 profiles in turn (every
 * combination of the four factors, so branches are not one fixed path),
 * each call timed on its own with the monotonic clock. Prints p50/p99/max
 * of the timed calls, the cost of the clock read alone (included in those
 * figures) and the mean of an untimed run. Not a test: nothing is asserted.
 *
 *   build/bench/bench_route [N=1000000]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"
#include "edgeagent/router.h"

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    if (n < 100 || n > 100000000) {
        fprintf(stderr, "usage: %s [N=1000000] (100..1e8)\n", argv[0]);
        return 2;
    }
    struct ea_task_profile profiles[16];
    for (int i = 0; i < 16; i++)
        profiles[i] = (struct ea_task_profile){(i & 1) != 0, (i & 2) != 0, (i & 4) != 0,
                                               (i & 8) ? 5000u : 10u, 300};
    struct ea_router_weights w;
    ea_router_weights_default(&w);
    uint64_t *t = malloc(sizeof *t * (size_t)n), *clk = malloc(sizeof *clk * (size_t)n);
    if (!t || !clk)
        return 1;
    volatile int32_t sink = 0;
    struct ea_route_decision d;
    for (long i = 0; i < n / 10; i++) { /* warm up */
        ea_router_decide(&profiles[i & 15], &w, &d);
        sink += d.edge_score;
    }
    for (long i = 0; i < n; i++) {
        uint64_t a = now_ns();
        ea_router_decide(&profiles[i & 15], &w, &d);
        uint64_t b = now_ns();
        sink += d.edge_score;
        t[i] = b - a;
    }
    for (long i = 0; i < n; i++) { /* the clock alone, the same way */
        uint64_t a = now_ns();
        uint64_t b = now_ns();
        clk[i] = b - a;
    }
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        ea_router_decide(&profiles[i & 15], &w, &d);
        sink += d.cloud_score;
    }
    double mean_ns = (bench_now() - t0) * 1e9 / (double)n;
    qsort(t, (size_t)n, sizeof *t, cmp_u64);
    qsort(clk, (size_t)n, sizeof *clk, cmp_u64);
    size_t p50 = (size_t)n / 2, p99 = (size_t)((double)n * 0.99);
    printf("ea_router_decide, %ld calls over 16 profiles\n", n);
    printf("  timed per call: p50 %llu ns, p99 %llu ns, max %llu ns (clock read included)\n",
           (unsigned long long)t[p50], (unsigned long long)t[p99], (unsigned long long)t[n - 1]);
    printf("  clock read alone: p50 %llu ns, p99 %llu ns\n", (unsigned long long)clk[p50],
           (unsigned long long)clk[p99]);
    printf("  untimed run: mean %.1f ns per call\n", mean_ns);
    free(t);
    free(clk);
    return sink == 42 ? 3 : 0; /* sink keeps the calls alive */
}
