/* bench_membw.c - `edgeagent bench --mem-bandwidth`: the rate at which this
 * machine reads memory the way decode reads the weights, the figure that
 * decode tokens/s x weight bytes per token is compared with.
 *
 * Decode streams each weight matrix once per token, matrix after matrix:
 * the thread pool splits a matrix into a few contiguous parts per thread,
 * the threads meet at its end, and the packed kernels ask for the data a
 * tile ahead (software prefetch into L2) from a slab backed by huge pages.
 * The probe does the same (util/membw.h) over a buffer several times the
 * last-level cache, so no pass is served from it, with the pool size the
 * model uses. It prints that rate and, for comparison, the naive stream it
 * used to report (4 KB pages, no prefetch, the buffer split in halves): on
 * the machine of issue 17 that read 32-33 GB/s while decode moved 38-41
 * GB/s of weights, so "% of bandwidth" figures against it were over 100%.
 * bench/bench_membw takes the difference apart.
 * Does not hold: write or copy bandwidth, latency, per-NUMA-node figures. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/bench_int.h"
#include "cli/cli.h"
#include "util/membw.h"
#include "util/slab.h"
#include "util/threadpool.h"

#define BW_PASSES 7

static double median_pass(ea_pool *pool, const uint8_t *buf, size_t bytes, size_t region, int parts,
                          bool prefetch)
{
    double v[BW_PASSES];
    for (int r = 0; r < BW_PASSES; r++)
        v[r] = ea__membw_pass(pool, buf, bytes, region, parts, prefetch);
    for (int i = 1; i < BW_PASSES; i++) /* insertion sort */
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[BW_PASSES / 2];
}

int bench_mem_bandwidth(int threads, bool json)
{
    size_t llc = 0, bytes = ea__membw_buffer_bytes(&llc);
    if (!bytes) {
        cli_errorf("bench", "the last-level cache (%zu MiB) needs more than %zu GiB to measure memory",
                   llc >> 20, EA_MEMBW_MAX_BYTES >> 30);
        return 1;
    }
    ea_pool *pool = NULL;
    struct ea_error err = {0};
    if (ea__pool_create(cli_threads(threads), &pool, &err)) {
        cli_error("bench", &err);
        return 1;
    }
    int nth = ea__pool_size(pool);
    /* the decode pattern: a slab like the packed weights', matrix-sized
     * regions in a few parts per thread, prefetched */
    uint8_t *slab = ea__slab_alloc(bytes);
    if (!slab) {
        cli_errorf("bench", "cannot allocate %zu MiB for the bandwidth test", bytes >> 20);
        ea__pool_destroy(pool);
        return 1;
    }
    ea__membw_fill(pool, slab, bytes);
    int parts = nth > 1 ? nth * EA_MEMBW_PARTS_PER_THREAD : 1;
    double decode = median_pass(pool, slab, bytes, EA_MEMBW_REGION_BYTES, parts, true);
    ea__slab_free(slab, bytes);
    /* the naive stream, for comparison: small pages (what malloc gets
     * where huge pages are opt-in), no prefetch, the whole buffer in one
     * region */
    uint8_t *plain = ea__slab_alloc_small_pages(bytes);
    double naive = 0;
    if (plain) {
        ea__membw_fill(pool, plain, bytes);
        naive = median_pass(pool, plain, bytes, bytes, nth, false);
        ea__slab_free(plain, bytes);
    }
    if (json)
        printf("{\"read_gb_s\":%.2f,\"naive_read_gb_s\":%.2f,\"buffer_bytes\":%zu,\"llc_bytes\":%zu,"
               "\"threads\":%d,\"passes\":%d}\n",
               decode, naive, bytes, llc, nth, BW_PASSES);
    else
        printf("memory read bandwidth: %.1f GB/s (decode's pattern: %zu MiB in %zu MiB regions, "
               "huge pages, prefetch; %d threads; median of %d passes)\n"
               "  naive stream (4 KB pages, no prefetch, one region): %.1f GB/s\n",
               decode, bytes >> 20, EA_MEMBW_REGION_BYTES >> 20, nth, BW_PASSES, naive);
    ea__pool_destroy(pool);
    return 0;
}
