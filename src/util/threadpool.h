/* threadpool.h - persistent worker threads for data-parallel regions.
 *
 * ea__pool_run(pool, fn, ctx) runs fn(ctx, ith, nth) on every thread (the
 * caller is thread 0) and returns when all have finished. Workers spin for a
 * short while waiting for the next region (regions come thousands of times a
 * second during decode) and then sleep on a futex, so the pool does not burn
 * the cores another process needs. No thread is created per region.
 * Not reentrant: one region at a time per pool.
 */
#ifndef EDGEAGENT_UTIL_THREADPOOL_H
#define EDGEAGENT_UTIL_THREADPOOL_H

#include <stdint.h>

#include "edgeagent/error.h"

typedef struct ea_pool ea_pool;
typedef void (*ea_pool_fn)(void *ctx, int ith, int nth);

/* n_threads >= 1 (1 = no workers, regions run inline). */
ea_status ea__pool_create(int n_threads, ea_pool **out, struct ea_error *err);
void ea__pool_destroy(ea_pool *p); /* NULL-safe */
int ea__pool_size(const ea_pool *p);
void ea__pool_run(ea_pool *p, ea_pool_fn fn, void *ctx);
/* Like ea__pool_run on at most max_threads threads (>= 1): small regions run
 * on fewer threads (or inline), where waking workers costs more than it
 * saves. fn sees nth = the number actually used. */
void ea__pool_run_n(ea_pool *p, ea_pool_fn fn, void *ctx, int max_threads);

/* Splits [0, n) into nth nearly equal contiguous parts; part ith. Parts are
 * rounded to multiples of align (the last part takes the remainder). */
void ea__split(int64_t n, int ith, int nth, int64_t align, int64_t *begin, int64_t *end);

/* Default thread count: the number of online CPUs (at least 1). */
int ea__cpu_count(void);

#endif
