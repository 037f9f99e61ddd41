/* bench_membw.c - what the memory bandwidth probe's figure is made of:
 * streaming reads over the probe's buffer (util/membw.h, 4x the last-level
 * cache, at least 1 GiB) under each combination of
 *   pages:    small (4 KB: malloc's where huge pages are opt-in) or huge
 *             (the packed weights' slab, util/slab.h)
 *   prefetch: none, or software prefetch ahead as the packed kernels do
 *   regions:  the whole buffer at once, or 4 MiB regions (one weight
 *             matrix) in turn, the threads meeting after each
 * with every combination run once per round, rounds alternating so that
 * load from other jobs falls on all alike; prints the median GB/s of each.
 * `edgeagent bench --mem-bandwidth` reports the last row (decode's pattern)
 * and the first (the naive stream it used to report). Not a test.
 *
 *   bench_membw [-t threads] [-r rounds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "util/membw.h"
#include "util/slab.h"
#include "util/threadpool.h"

#define MAX_ROUNDS 99

int main(int argc, char **argv)
{
    int threads = 2, rounds = 9;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_membw [-t threads] [-r rounds (1..%d)]\n", MAX_ROUNDS);
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "bench_membw: -r must be in 1..%d\n", MAX_ROUNDS);
        return 2;
    }
    size_t llc = 0, bytes = ea__membw_buffer_bytes(&llc);
    ea_pool *pool = NULL;
    struct ea_error err = {0};
    if (!bytes || ea__pool_create(threads, &pool, &err)) {
        fprintf(stderr, "bench_membw: %s\n", bytes ? err.msg : "cache too large to measure memory");
        return 1;
    }
    uint8_t *buf[2] = {ea__slab_alloc_small_pages(bytes), ea__slab_alloc(bytes)};
    if (!buf[0] || !buf[1]) {
        fprintf(stderr, "bench_membw: cannot allocate 2 x %zu MiB\n", bytes >> 20);
        return 1;
    }
    for (int h = 0; h < 2; h++)
        ea__membw_fill(pool, buf[h], bytes);
    const int nth = ea__pool_size(pool);
    static double gbs[8][MAX_ROUNDS];
    for (int r = 0; r < rounds; r++)
        for (int c = 0; c < 8; c++) {
            int huge = c >> 2 & 1, pf = c >> 1 & 1, reg = c & 1;
            gbs[c][r] = ea__membw_pass(pool, buf[huge], bytes, reg ? EA_MEMBW_REGION_BYTES : bytes,
                                       reg && nth > 1 ? nth * EA_MEMBW_PARTS_PER_THREAD : nth, pf);
        }
    printf("buffer %zu MiB (last-level cache %zu MiB), %d threads, median of %d alternating rounds\n",
           bytes >> 20, llc >> 20, nth, rounds);
    printf("| pages | prefetch | regions | GB/s | min | max |\n|---|---|---|---:|---:|---:|\n");
    for (int c = 0; c < 8; c++) {
        qsort(gbs[c], (size_t)rounds, sizeof gbs[c][0], bench_cmp_double);
        printf("| %s | %s | %s | %.1f | %.1f | %.1f |\n", c >> 2 & 1 ? "huge" : "4 KB",
               c >> 1 & 1 ? "yes" : "no", c & 1 ? "4 MiB" : "whole", gbs[c][rounds / 2], gbs[c][0],
               gbs[c][rounds - 1]);
    }
    ea__slab_free(buf[0], bytes);
    ea__slab_free(buf[1], bytes);
    ea__pool_destroy(pool);
    return 0;
}
