/* threadpool.c - persistent workers with spin-then-futex waiting; see
 * threadpool.h. Linux futexes; other systems fall back to sched_yield. */
#include "util/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* Spin iterations before sleeping: tens of microseconds. Longer spins
 * collapse when another process competes for the cores. */
#define SPIN_ITERS 2000

/* A region is split into nth parts that threads claim one at a time from
 * one atomic word, (generation << 32 | nth << 16 | next part): the caller
 * takes parts too, so a worker that is descheduled (another process on the
 * core) costs at most the part it holds, not the whole region; a worker that
 * wakes after every part was taken finds another generation in the word and
 * touches nothing. fn and ctx belong to the region until every part is done,
 * which is when the caller returns. */
struct ea_pool {
    int n;
    pthread_t *threads;
    _Atomic uint32_t generation; /* bumped to start a region (also the futex word) */
    _Atomic uint64_t claim;      /* generation << 32 | nth << 16 | next part */
    _Atomic int done;            /* parts of the current region finished */
    _Atomic uint32_t done_word;  /* futex word the caller sleeps on */
    _Atomic int stop;
    _Atomic int sleeping_workers;
    _Atomic int sleeping_caller;
    ea_pool_fn fn;
    void *ctx;
};

struct worker_arg {
    ea_pool *pool;
};

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
#else
    (void)addr, (void)val;
    sched_yield();
#endif
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

/* Waits until *word != seen. Sleepers announce themselves in *sleepers
 * (seq_cst) before re-checking inside FUTEX_WAIT, and wakers bump the word
 * (seq_cst) before reading *sleepers, so no wakeup is lost and the common
 * spinning case costs no system call. */
static uint32_t wait_change(_Atomic uint32_t *word, uint32_t seen, _Atomic int *sleepers)
{
    for (int i = 0; i < SPIN_ITERS; i++) {
        uint32_t now = atomic_load_explicit(word, memory_order_acquire);
        if (now != seen)
            return now;
        cpu_relax();
    }
    for (;;) {
        uint32_t now = atomic_load_explicit(word, memory_order_acquire);
        if (now != seen)
            return now;
        atomic_fetch_add(sleepers, 1);
        futex_wait(word, seen);
        atomic_fetch_sub(sleepers, 1);
    }
}

/* Claims and runs parts of region gen until none is left (or the region is
 * over); the thread that finishes the last part wakes the caller. */
static void run_parts(ea_pool *pool, uint32_t gen)
{
    uint64_t c = atomic_load_explicit(&pool->claim, memory_order_acquire);
    for (;;) {
        const int nth = (int)((c >> 16) & 0xFFFF), i = (int)(c & 0xFFFF);
        if ((uint32_t)(c >> 32) != gen || i >= nth)
            return;
        if (!atomic_compare_exchange_weak_explicit(&pool->claim, &c, c + 1, memory_order_acquire,
                                                   memory_order_acquire))
            continue; /* c was reloaded */
        pool->fn(pool->ctx, i, nth);
        if (atomic_fetch_add_explicit(&pool->done, 1, memory_order_acq_rel) + 1 == nth) {
            atomic_fetch_add(&pool->done_word, 1);
            if (atomic_load(&pool->sleeping_caller))
                futex_wake_all(&pool->done_word);
        }
        c = atomic_load_explicit(&pool->claim, memory_order_acquire);
    }
}

void ea__thread_background(int nice)
{
#if defined(__linux__) && defined(SYS_gettid)
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice);
#else
    (void)nice;
#endif
}

int ea__thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    pthread_attr_t a;
    int r = pthread_attr_init(&a);
    if (r)
        return r;
    size_t cur = 0;
    if (pthread_attr_getstacksize(&a, &cur) || cur < EA_THREAD_STACK_BYTES)
        pthread_attr_setstacksize(&a, EA_THREAD_STACK_BYTES);
    r = pthread_create(t, &a, fn, arg);
    pthread_attr_destroy(&a);
    return r;
}

static void *worker_main(void *p)
{
    struct worker_arg *a = p;
    ea_pool *pool = a->pool;
    ea_free(a);
    uint32_t seen = 0;
    for (;;) {
        seen = wait_change(&pool->generation, seen, &pool->sleeping_workers);
        if (atomic_load(&pool->stop))
            return NULL;
        run_parts(pool, seen);
    }
}

int ea__cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

ea_status ea__pool_create(int n_threads, ea_pool **out, struct ea_error *err)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > EA_POOL_MAX_THREADS)
        return ea_error_set(err, EA_EINVAL, "threads: %d is not in 1..%d", n_threads,
                            EA_POOL_MAX_THREADS);
    ea_pool *p = ea_calloc(1, sizeof *p);
    if (!p)
        return ea_error_set(err, EA_ENOMEM, "threads: out of memory");
    p->n = n_threads;
    if (n_threads > 1) {
        p->threads = ea_calloc((size_t)n_threads, sizeof *p->threads);
        if (!p->threads) {
            ea_free(p);
            return ea_error_set(err, EA_ENOMEM, "threads: out of memory");
        }
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *a = ea_malloc(sizeof *a);
        if (a)
            a->pool = p;
        if (!a || ea__thread_start(&p->threads[i], worker_main, a) != 0) {
            ea_free(a);
            p->n = i; /* destroy joins the ones that started */
            ea__pool_destroy(p);
            return ea_error_set(err, EA_EUNAVAILABLE, "threads: cannot start worker %d", i);
        }
    }
    *out = p;
    return EA_OK;
}

void ea__pool_destroy(ea_pool *p)
{
    if (!p)
        return;
    if (p->n > 1) {
        atomic_store(&p->stop, 1);
        atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
        futex_wake_all(&p->generation);
        for (int i = 1; i < p->n; i++)
            pthread_join(p->threads[i], NULL);
    }
    ea_free(p->threads);
    ea_free(p);
}

int ea__pool_size(const ea_pool *p) { return p ? p->n : 1; }

void ea__pool_run(ea_pool *p, ea_pool_fn fn, void *ctx) { ea__pool_run_n(p, fn, ctx, p ? p->n : 1); }

void ea__pool_run_n(ea_pool *p, ea_pool_fn fn, void *ctx, int max_threads)
{
    ea__pool_run_parts(p, fn, ctx, p && max_threads > p->n ? p->n : max_threads);
}

void ea__pool_run_parts(ea_pool *p, ea_pool_fn fn, void *ctx, int n_parts)
{
    if (n_parts > EA_POOL_MAX_PARTS)
        n_parts = EA_POOL_MAX_PARTS;
    if (!p || p->n == 1 || n_parts <= 1) {
        for (int i = 0; i < (n_parts > 1 ? n_parts : 1); i++)
            fn(ctx, i, n_parts > 1 ? n_parts : 1);
        return;
    }
    const int nth = n_parts;
    const uint32_t gen = atomic_load_explicit(&p->generation, memory_order_relaxed) + 1;
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    uint32_t done_seen = atomic_load_explicit(&p->done_word, memory_order_acquire);
    atomic_store_explicit(&p->claim, (uint64_t)gen << 32 | (uint64_t)nth << 16, memory_order_release);
    atomic_store(&p->generation, gen);
    if (atomic_load(&p->sleeping_workers))
        futex_wake_all(&p->generation);
    run_parts(p, gen);
    /* parts still running on workers: they bump done_word when the last ends */
    while (atomic_load_explicit(&p->done, memory_order_acquire) != nth)
        done_seen = wait_change(&p->done_word, done_seen, &p->sleeping_caller);
}

void ea__split(int64_t n, int ith, int nth, int64_t align, int64_t *begin, int64_t *end)
{
    if (align < 1)
        align = 1;
    int64_t units = (n + align - 1) / align;
    int64_t per = units / nth, extra = units % nth;
    int64_t b = ith * per + (ith < extra ? ith : extra);
    int64_t e = b + per + (ith < extra ? 1 : 0);
    b *= align;
    e *= align;
    *begin = b < n ? b : n;
    *end = e < n ? e : n;
}
