/* test_threads.c - the worker pool: every thread runs every region once,
 * regions on fewer threads, many short regions back to back (the decode
 * pattern), splits cover ranges exactly. Run under ThreadSanitizer in CI. */
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"
#include "util/threadpool.h"

struct count_ctx {
    _Atomic int calls;
    _Atomic long sum;
    _Atomic int seen_nth; /* every part writes it */
    int64_t n;
    int64_t *cover;
};

static void count_fn(void *p, int ith, int nth)
{
    struct count_ctx *c = p;
    atomic_fetch_add(&c->calls, 1);
    atomic_store(&c->seen_nth, nth);
    int64_t b, e;
    ea__split(c->n, ith, nth, 1, &b, &e);
    for (int64_t i = b; i < e; i++) {
        c->cover[i]++;
        atomic_fetch_add(&c->sum, (long)i);
    }
}

static void regions(void)
{
    for (int nt = 1; nt <= 3; nt++) {
        ea_pool *p = NULL;
        struct ea_error err = {0};
        ASSERT_OK(ea__pool_create(nt, &p, &err), &err);
        ASSERT_EQ(ea__pool_size(p), nt);
        struct count_ctx c = {.n = 1000};
        c.cover = calloc(1000, sizeof *c.cover);
        /* many tiny regions: the decode pattern (EA_TEST_LOAD_N shrinks it
         * under emulation) */
        const char *env = getenv("EA_TEST_LOAD_N");
        int regions = env && atoi(env) > 0 ? atoi(env) : 20000;
        for (int r = 0; r < regions; r++)
            ea__pool_run(p, count_fn, &c);
        ASSERT_EQ(atomic_load(&c.calls), regions * nt);
        for (int i = 0; i < 1000; i++)
            ASSERT_EQ(c.cover[i], regions);
        ASSERT_EQ(atomic_load(&c.sum), (long)regions * 999 * 1000 / 2);
        /* fewer threads than the pool has */
        atomic_store(&c.calls, 0);
        ea__pool_run_n(p, count_fn, &c, 1);
        ASSERT_EQ(atomic_load(&c.calls), 1);
        ASSERT_EQ(atomic_load(&c.seen_nth), 1);
        atomic_store(&c.calls, 0);
        ea__pool_run_n(p, count_fn, &c, 2);
        ASSERT_EQ(atomic_load(&c.calls), nt < 2 ? 1 : 2);
        free(c.cover);
        ea__pool_destroy(p);
    }
    ea__pool_destroy(NULL);
}

/* More parts than threads: every part runs exactly once per region, even
 * when one thread is slowed down (here: parts that sleep now and then). */
struct parts_ctx {
    _Atomic int hits[64];
    _Atomic int calls;
};

static void parts_fn(void *p, int ith, int nth)
{
    struct parts_ctx *c = p;
    if (nth != 37)
        abort();
    atomic_fetch_add(&c->hits[ith], 1);
    if (atomic_fetch_add(&c->calls, 1) % 97 == 0) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
}

static void parts(void)
{
    for (int nt = 1; nt <= 3; nt++) {
        ea_pool *p = NULL;
        struct ea_error err = {0};
        ASSERT_OK(ea__pool_create(nt, &p, &err), &err);
        struct parts_ctx c = {0};
        for (int r = 0; r < 300; r++)
            ea__pool_run_parts(p, parts_fn, &c, 37);
        for (int i = 0; i < 37; i++)
            ASSERT_EQ(atomic_load(&c.hits[i]), 300);
        ea__pool_destroy(p);
    }
}

static void split_exact(void)
{
    for (int64_t n = 0; n < 300; n += 7)
        for (int nth = 1; nth <= 5; nth++)
            for (int64_t align = 1; align <= 32; align *= 2) {
                int64_t prev = 0;
                for (int ith = 0; ith < nth; ith++) {
                    int64_t b, e;
                    ea__split(n, ith, nth, align, &b, &e);
                    ASSERT_EQ(b, prev);
                    ASSERT(e >= b);
                    ASSERT(b % align == 0 || b == n);
                    prev = e;
                }
                ASSERT_EQ(prev, n);
            }
}

static void bad_sizes(void)
{
    ea_pool *p = NULL;
    struct ea_error err = {0};
    ASSERT_EQ(ea__pool_create(0, &p, &err), EA_EINVAL);
    ASSERT_EQ(ea__pool_create(5000, &p, &err), EA_EINVAL);
    ASSERT(p == NULL);
}

EA_TESTS(EA_TEST(regions), EA_TEST(parts), EA_TEST(split_exact), EA_TEST(bad_sizes))
