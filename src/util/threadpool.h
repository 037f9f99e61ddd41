/* threadpool.h - persistent worker threads for data-parallel regions.
 *
 * ea__pool_run(pool, fn, ctx) splits a region into nth parts (nth = the
 * number of threads) and runs fn(ctx, ith, nth) once for every part ith;
 * threads, the caller included, claim parts as they come, so when a worker
 * is descheduled by another process the others take its parts instead of
 * waiting for it. It returns when every part has finished. A part is never
 * run by two threads at once, so per-part scratch indexed by ith is safe;
 * which thread runs a part is not fixed. Workers spin for a short while
 * waiting for the next region (regions come thousands of times a second
 * during decode) and then sleep on a futex, so the pool does not burn the
 * cores another process needs. No thread is created per region.
 * Not reentrant: one region at a time per pool.
 */
#ifndef EDGEAGENT_UTIL_THREADPOOL_H
#define EDGEAGENT_UTIL_THREADPOOL_H

#include <stdint.h>

#include "edgeagent/error.h"

#include <pthread.h>

/* Stack of every thread the library starts (pool workers, the engine
 * thread, the packer): the packed matmul keeps its activation panel (~200
 * KB) on the stack, more than some C libraries give a thread by default
 * (musl: 128 KB). Callers of ea_model_forward and the ea_kv_seq_eval
 * helpers run parts of it on their own thread and need as much. */
#define EA_THREAD_STACK_BYTES ((size_t)4 << 20)

/* pthread_create with a stack of at least EA_THREAD_STACK_BYTES (the
 * default when that is larger); 0 or an errno value. */
int ea__thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

/* Lowers the calling thread's priority by `nice` steps (Linux: the
 * thread's own nice value; elsewhere nothing), for background threads that
 * must not take a core from the forward pass while it is busy: a thread
 * that wakes up in the middle of a step delays every worker of the step
 * (they wait for the part it took the core from). Needs no privilege. */
void ea__thread_background(int nice);

typedef struct ea_pool ea_pool;
typedef void (*ea_pool_fn)(void *ctx, int ith, int nth);

/* Most threads a pool takes: far above any core count this runtime targets
 * (edge boards have 2-16 cores), low enough that a typo in a thread count is
 * an error instead of a thousand stacks of EA_THREAD_STACK_BYTES each. */
#define EA_POOL_MAX_THREADS 1024

/* 1 <= n_threads <= EA_POOL_MAX_THREADS (1 = no workers, regions run
 * inline). */
ea_status ea__pool_create(int n_threads, ea_pool **out, struct ea_error *err);
void ea__pool_destroy(ea_pool *p); /* NULL-safe */
int ea__pool_size(const ea_pool *p);
void ea__pool_run(ea_pool *p, ea_pool_fn fn, void *ctx);
/* Like ea__pool_run with at most max_threads parts (>= 1): small regions
 * run in fewer parts (or inline), where waking workers costs more than it
 * saves. fn sees nth = the number of parts. */
void ea__pool_run_n(ea_pool *p, ea_pool_fn fn, void *ctx, int max_threads);
/* Runs fn(ctx, ith, n_parts) for every part ith < n_parts (1 ..
 * EA_POOL_MAX_PARTS; more parts than threads balance better when a thread
 * is slowed down, at the cost of a claim per part). */
#define EA_POOL_MAX_PARTS 4096
void ea__pool_run_parts(ea_pool *p, ea_pool_fn fn, void *ctx, int n_parts);

/* Splits [0, n) into nth nearly equal contiguous parts; part ith. Parts are
 * rounded to multiples of align (the last part takes the remainder). */
void ea__split(int64_t n, int ith, int nth, int64_t align, int64_t *begin, int64_t *end);

/* Default thread count: the number of online CPUs (at least 1). */
int ea__cpu_count(void);

#endif
