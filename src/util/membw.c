/* membw.c - timed streaming reads; see membw.h. */
#include "util/membw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 32-byte vectors of the compiler's vector extension: plain SIMD loads
 * wherever this is compiled, no CPU-specific flags needed. */
typedef uint64_t membw_vec __attribute__((vector_size(32)));

struct membw_ctx {
    uint8_t *buf;
    size_t base, len; /* the region of this call */
    bool prefetch;
    uint64_t sums[EA_POOL_MAX_PARTS]; /* per part, so the reads are not optimised away */
};

static void read_part(void *p, int ith, int nth)
{
    struct membw_ctx *c = p;
    int64_t b, e;
    ea__split((int64_t)c->len, ith, nth, EA_MEMBW_PART_ALIGN, &b, &e);
    const uint8_t *s = c->buf + c->base;
    membw_vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int64_t i = b; i + 128 <= e; i += 128) {
        if (c->prefetch) { /* past the end of the buffer is harmless: a prefetch never faults */
            __builtin_prefetch(s + i + EA_MEMBW_PREFETCH_BYTES, 0, 2);
            __builtin_prefetch(s + i + EA_MEMBW_PREFETCH_BYTES + 64, 0, 2);
        }
        a0 += *(const membw_vec *)(const void *)(s + i);
        a1 += *(const membw_vec *)(const void *)(s + i + 32);
        a2 += *(const membw_vec *)(const void *)(s + i + 64);
        a3 += *(const membw_vec *)(const void *)(s + i + 96);
    }
    membw_vec t = a0 + a1 + a2 + a3;
    c->sums[ith] += t[0] ^ t[1] ^ t[2] ^ t[3];
}

static void fill_part(void *p, int ith, int nth)
{
    struct membw_ctx *c = p;
    int64_t b, e;
    ea__split((int64_t)c->len, ith, nth, EA_MEMBW_PART_ALIGN, &b, &e);
    memset(c->buf + b, 0x5A, (size_t)(e - b));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void ea__membw_fill(ea_pool *pool, uint8_t *buf, size_t bytes)
{
    struct membw_ctx c = {.buf = buf, .len = bytes};
    ea__pool_run(pool, fill_part, &c);
}

double ea__membw_pass(ea_pool *pool, const uint8_t *buf, size_t bytes, size_t region, int parts,
                      bool prefetch)
{
    struct membw_ctx *c = ea_calloc(1, sizeof *c); /* 32 KB of sums: off the stack */
    if (!c)
        return 0;
    c->buf = (uint8_t *)buf;
    c->prefetch = prefetch;
    double t0 = now_s();
    for (size_t off = 0; off < bytes; off += region) {
        c->base = off;
        c->len = bytes - off < region ? bytes - off : region;
        ea__pool_run_parts(pool, read_part, c, parts);
    }
    double gbs = (double)bytes / (now_s() - t0) / 1e9;
    ea_free(c);
    return gbs;
}

size_t ea__membw_buffer_bytes(size_t *llc)
{
    size_t c = ea__llc_bytes(), bytes = c * EA_MEMBW_LLC_MULTIPLE;
    if (llc)
        *llc = c;
    if (bytes < EA_MEMBW_MIN_BYTES)
        bytes = EA_MEMBW_MIN_BYTES;
    if (bytes > EA_MEMBW_MAX_BYTES)
        return 0;
    return bytes / EA_MEMBW_REGION_BYTES * EA_MEMBW_REGION_BYTES;
}

size_t ea__llc_bytes(void)
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
