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

struct ea_pool {
    int n;
    pthread_t *threads;
    _Atomic uint32_t generation; /* bumped to start a region (also the futex word) */
    _Atomic int pending;         /* workers still running the current region */
    _Atomic uint32_t done_word;  /* futex word the caller sleeps on */
    _Atomic int stop;
    _Atomic int sleeping_workers;
    _Atomic int sleeping_caller;
    int active; /* threads taking part in the current region */
    ea_pool_fn fn;
    void *ctx;
};

struct worker_arg {
    ea_pool *pool;
    int ith;
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

static void *worker_main(void *p)
{
    struct worker_arg *a = p;
    ea_pool *pool = a->pool;
    int ith = a->ith;
    ea_free(a);
    uint32_t seen = 0;
    for (;;) {
        seen = wait_change(&pool->generation, seen, &pool->sleeping_workers);
        if (atomic_load(&pool->stop))
            return NULL;
        if (ith < pool->active)
            pool->fn(pool->ctx, ith, pool->active);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) == 1) {
            atomic_fetch_add(&pool->done_word, 1);
            if (atomic_load(&pool->sleeping_caller))
                futex_wake_all(&pool->done_word);
        }
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
    if (n_threads < 1 || n_threads > 1024)
        return ea_error_set(err, EA_EINVAL, "threads: %d is not in 1..1024", n_threads);
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
        if (a) {
            a->pool = p;
            a->ith = i;
        }
        if (!a || pthread_create(&p->threads[i], NULL, worker_main, a) != 0) {
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
    if (!p || p->n == 1 || max_threads <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->active = max_threads < p->n ? max_threads : p->n;
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    uint32_t done = atomic_load_explicit(&p->done_word, memory_order_acquire);
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleeping_workers))
        futex_wake_all(&p->generation);
    fn(ctx, 0, p->active);
    /* wait for the workers: they bump done_word when the last one finishes */
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
        done = wait_change(&p->done_word, done, &p->sleeping_caller);
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
