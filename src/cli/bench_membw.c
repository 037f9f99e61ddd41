/* bench_membw.c - `edgeagent bench --mem-bandwidth`: the rate at which this
 * machine reads memory the way decode reads the weights, the figure that
 * decode tokens/s x weight bytes per token is compared with.
 *
 * Decode streams each weight matrix once per token, matrix after matrix:
 * the thread pool splits a matrix into a few contiguous parts per thread,
 * the threads meet at its end, and the packed kernels ask for the data a
 * tile ahead (software prefetch into L2) from a slab backed by huge pages.
 * The probe does the same over a buffer several times the last-level cache
 * (so no pass is served from it), with the pool the model uses and a
 * trivial sum as the "kernel". It prints that rate, and, for comparison,
 * the naive stream it used to report (4 KB pages, no prefetch, the whole
 * buffer split in halves): on the machine of issue 17 that read 32-33 GB/s
 * while decode moved 38-41 GB/s of weights, so "% of bandwidth" figures
 * against it were over 100%.
 * Does not hold: write or copy bandwidth, latency, per-NUMA-node figures. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/bench_int.h"
#include "cli/cli.h"
#include "util/slab.h"
#include "util/threadpool.h"

/* The buffer: BW_LLC_MULTIPLE times the last-level cache, at least
 * BW_MIN_BYTES (caches of a few MB, or unknown) and at most BW_MAX_BYTES
 * (a 2 GiB L3 would need 8 GiB of memory; beyond that the probe refuses). */
#define BW_LLC_MULTIPLE 4
#define BW_MIN_BYTES ((size_t)1 << 30)
#define BW_MAX_BYTES ((size_t)8 << 30)
/* Decode reads one matrix at a time: 0.3-1 MB for SmolLM2-135M, 2.4-6.5 MB
 * for TinyLlama-1.1B (Q4_K_M). */
#define BW_REGION_BYTES ((size_t)4 << 20)
/* Parts per thread and region, as the matmul splits (model_int.h's
 * EA__PARTS_PER_THREAD), each a multiple of BW_PART_ALIGN bytes. */
#define BW_PARTS_PER_THREAD 2
#define BW_PART_ALIGN 4096
/* How far ahead the reader prefetches: the packed kernels ask for the next
 * 16-row tile (a few KB at decode's k) while they compute on this one. */
#define BW_PREFETCH_BYTES 4096
#define BW_PASSES 7

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Last-level cache of cpu0 in bytes from sysfs (0 when unknown). */
static size_t llc_bytes(void)
{
    size_t best = 0;
    for (int i = 0; i < 8; i++) {
        char path[96], line[64];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(line, sizeof line, f)) {
            char *end;
            unsigned long long v = strtoull(line, &end, 10);
            size_t b = (size_t)v * (*end == 'K' ? 1024 : *end == 'M' ? 1024 * 1024 : 1);
            if (b > best)
                best = b;
        }
        fclose(f);
    }
    return best;
}

/* 32-byte vectors of the compiler's vector extension: plain SIMD loads
 * wherever this is compiled, no CPU-specific flags needed. */
typedef uint64_t bw_vec __attribute__((vector_size(32)));

struct bw_ctx {
    const uint8_t *buf;
    size_t base, len; /* the region read by this call */
    int prefetch;
    uint64_t sums[EA_POOL_MAX_PARTS]; /* one per part, so the reads are not optimised away */
};

static void bw_part(void *p, int ith, int nth)
{
    struct bw_ctx *c = p;
    int64_t b, e;
    ea__split((int64_t)c->len, ith, nth, BW_PART_ALIGN, &b, &e);
    const uint8_t *s = c->buf + c->base;
    bw_vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int64_t i = b; i + 128 <= e; i += 128) {
        if (c->prefetch) { /* past the end of the buffer is harmless: a prefetch never faults */
            __builtin_prefetch(s + i + BW_PREFETCH_BYTES, 0, 2);
            __builtin_prefetch(s + i + BW_PREFETCH_BYTES + 64, 0, 2);
        }
        a0 += *(const bw_vec *)(const void *)(s + i);
        a1 += *(const bw_vec *)(const void *)(s + i + 32);
        a2 += *(const bw_vec *)(const void *)(s + i + 64);
        a3 += *(const bw_vec *)(const void *)(s + i + 96);
    }
    bw_vec t = a0 + a1 + a2 + a3;
    c->sums[ith] += t[0] ^ t[1] ^ t[2] ^ t[3];
}

static void fill_part(void *p, int ith, int nth)
{
    struct bw_ctx *c = p;
    int64_t b, e;
    ea__split((int64_t)c->len, ith, nth, BW_PART_ALIGN, &b, &e);
    memset((uint8_t *)c->buf + b, 0x5A, (size_t)(e - b)); /* every page touched before timing */
}

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++) /* insertion sort */
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[n / 2];
}

/* GB/s of BW_PASSES passes over buf (median): in regions of region bytes
 * split into parts parts each, with or without software prefetch. */
static double measure(ea_pool *pool, const uint8_t *buf, size_t bytes, size_t region, int parts,
                      int prefetch)
{
    static struct bw_ctx c;
    memset(&c, 0, sizeof c);
    c.buf = buf;
    c.prefetch = prefetch;
    double gbs[BW_PASSES];
    for (int r = 0; r < BW_PASSES; r++) {
        double t0 = now_s();
        for (size_t off = 0; off < bytes; off += region) {
            c.base = off;
            c.len = bytes - off < region ? bytes - off : region;
            ea__pool_run_parts(pool, bw_part, &c, parts);
        }
        gbs[r] = (double)bytes / (now_s() - t0) / 1e9;
    }
    return median(gbs, BW_PASSES);
}

int bench_mem_bandwidth(int threads, bool json)
{
    size_t llc = llc_bytes(), bytes = llc * BW_LLC_MULTIPLE;
    if (bytes < BW_MIN_BYTES)
        bytes = BW_MIN_BYTES;
    if (bytes > BW_MAX_BYTES) {
        cli_errorf("bench", "the last-level cache (%zu MiB) needs more than %zu GiB to measure memory",
                   llc >> 20, BW_MAX_BYTES >> 30);
        return 1;
    }
    bytes = bytes / BW_REGION_BYTES * BW_REGION_BYTES;
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
    static struct bw_ctx fc;
    fc.buf = slab;
    fc.len = bytes;
    ea__pool_run(pool, fill_part, &fc);
    int parts = nth > 1 ? nth * BW_PARTS_PER_THREAD : 1;
    double decode = measure(pool, slab, bytes, BW_REGION_BYTES, parts, 1);
    ea__slab_free(slab, bytes);
    /* the naive stream, for comparison: small pages, no prefetch, halves */
    uint8_t *plain = malloc(bytes);
    double naive = 0;
    if (plain) {
        fc.buf = plain;
        ea__pool_run(pool, fill_part, &fc);
        naive = measure(pool, plain, bytes, bytes, nth, 0);
        free(plain);
    }
    if (json)
        printf("{\"read_gb_s\":%.2f,\"naive_read_gb_s\":%.2f,\"buffer_bytes\":%zu,\"llc_bytes\":%zu,"
               "\"threads\":%d,\"passes\":%d}\n",
               decode, naive, bytes, llc, nth, BW_PASSES);
    else
        printf("memory read bandwidth: %.1f GB/s (decode's pattern: %zu MiB in %zu MiB regions, "
               "huge pages, prefetch; %d threads; median of %d passes)\n"
               "  naive stream (4 KB pages, no prefetch, one region): %.1f GB/s\n",
               decode, bytes >> 20, BW_REGION_BYTES >> 20, nth, BW_PASSES, naive);
    ea__pool_destroy(pool);
    return 0;
}
