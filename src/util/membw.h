/* membw.h - timed streaming reads over a buffer, the core of the memory
 * bandwidth probe (`edgeagent bench --mem-bandwidth`, bench/bench_membw):
 * the buffer is read in regions one after the other, each split into parts
 * claimed by the threads of a pool (as the matmul splits a weight matrix),
 * with or without software prefetch ahead of the reads (as the packed
 * kernels fetch the next tile), with a trivial sum as the "kernel".
 * Does not hold: the buffer's allocation (util/slab.h for huge pages),
 * printing, choosing the sizes.
 */
#ifndef EDGEAGENT_UTIL_MEMBW_H
#define EDGEAGENT_UTIL_MEMBW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/threadpool.h"

/* Parts start at multiples of this (a small page). */
#define EA_MEMBW_PART_ALIGN 4096
/* How far ahead reads are prefetched (into L2): the packed kernels ask for
 * the next 16-row tile, a few KB at decode's widths, while they compute. */
#define EA_MEMBW_PREFETCH_BYTES 4096

/* The buffer: EA_MEMBW_LLC_MULTIPLE times the last-level cache, so no pass
 * is served from it, at least EA_MEMBW_MIN_BYTES (caches of a few MB, or
 * unknown) and at most EA_MEMBW_MAX_BYTES (a 2 GiB cache would need 8 GiB
 * of memory); a whole number of regions. */
#define EA_MEMBW_LLC_MULTIPLE 4
#define EA_MEMBW_MIN_BYTES ((size_t)1 << 30)
#define EA_MEMBW_MAX_BYTES ((size_t)8 << 30)
/* Decode reads one weight matrix at a time: 0.3-1 MB for SmolLM2-135M,
 * 2.4-6.5 MB for TinyLlama-1.1B (Q4_K_M). */
#define EA_MEMBW_REGION_BYTES ((size_t)4 << 20)
/* Parts per thread and region, as the matmul splits (model_int.h's
 * EA__PARTS_PER_THREAD). */
#define EA_MEMBW_PARTS_PER_THREAD 2

/* The buffer size for this machine by the rule above; 0 when the cache
 * needs more than EA_MEMBW_MAX_BYTES. *llc: the cache size found. */
size_t ea__membw_buffer_bytes(size_t *llc);

/* Writes every byte of buf (all pages touched before timing), with the
 * pool's threads. */
void ea__membw_fill(ea_pool *pool, uint8_t *buf, size_t bytes);
/* GB/s of one pass over buf: regions of region bytes in turn, each in
 * parts parts (1..EA_POOL_MAX_PARTS), prefetching or not; 0 when out of
 * memory for the per-part sums. */
double ea__membw_pass(ea_pool *pool, const uint8_t *buf, size_t bytes, size_t region, int parts,
                      bool prefetch);
/* Size in bytes of the largest cache of cpu0 (sysfs), 0 when unknown. */
size_t ea__llc_bytes(void);

#endif
