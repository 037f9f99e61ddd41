/* bench_route.c - the deployment decision alone (ea_router_decide;
 * then the whole per-request plan, ea_router_plan, over a 4-upstream
 * configuration with live state: breakers, TTFT windows, local load;
 * EA_TEST_NEEDS_NET: the router is built with the server's libraries), as
 * per-request routing will call it: N calls over 16 profiles in turn (every
 * combination of the four factors, so branches are not one fixed path),
 * each call timed on its own with the monotonic clock. Prints p50/p99/max
 * of the timed calls, the cost of the clock read alone (included in those
 * figures) and the mean of an untimed run. Not a test: nothing is asserted.
 *
 *   build/bench/bench_route [N=1000000]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"
#include "edgeagent/router.h"

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    if (n < 100 || n > 100000000) {
        fprintf(stderr, "usage: %s [N=1000000] (100..1e8)\n", argv[0]);
        return 2;
    }
    struct ea_task_profile profiles[16];
    for (int i = 0; i < 16; i++)
        profiles[i] = (struct ea_task_profile){(i & 1) != 0, (i & 2) != 0, (i & 4) != 0,
                                               (i & 8) ? 5000u : 10u, 300};
    struct ea_router_weights w;
    ea_router_weights_default(&w);
    uint64_t *t = malloc(sizeof *t * (size_t)n), *clk = malloc(sizeof *clk * (size_t)n);
    if (!t || !clk)
        return 1;
    volatile int32_t sink = 0;
    struct ea_route_decision d;
    for (long i = 0; i < n / 10; i++) { /* warm up */
        ea_router_decide(&profiles[i & 15], &w, &d);
        sink += d.edge_score;
    }
    for (long i = 0; i < n; i++) {
        uint64_t a = now_ns();
        ea_router_decide(&profiles[i & 15], &w, &d);
        uint64_t b = now_ns();
        sink += d.edge_score;
        t[i] = b - a;
    }
    for (long i = 0; i < n; i++) { /* the clock alone, the same way */
        uint64_t a = now_ns();
        uint64_t b = now_ns();
        clk[i] = b - a;
    }
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        ea_router_decide(&profiles[i & 15], &w, &d);
        sink += d.cloud_score;
    }
    double mean_ns = (bench_now() - t0) * 1e9 / (double)n;
    qsort(t, (size_t)n, sizeof *t, cmp_u64);
    qsort(clk, (size_t)n, sizeof *clk, cmp_u64);
    size_t p50 = (size_t)n / 2, p99 = (size_t)((double)n * 0.99);
    printf("ea_router_decide, %ld calls over 16 profiles\n", n);
    printf("  timed per call: p50 %llu ns, p99 %llu ns, max %llu ns (clock read included)\n",
           (unsigned long long)t[p50], (unsigned long long)t[p99], (unsigned long long)t[n - 1]);
    printf("  clock read alone: p50 %llu ns, p99 %llu ns\n", (unsigned long long)clk[p50],
           (unsigned long long)clk[p99]);
    printf("  untimed run: mean %.1f ns per call\n", mean_ns);

    /* the plan: 4 upstreams, 4 tasks, a TTFT window filled, local load varying */
    static const char yaml[] =
        "upstreams:\n  - {name: local, kind: local}\n"
        "  - {name: lan, kind: openai, base_url: 'http://127.0.0.1:1/v1', model: m, tier: edge-node}\n"
        "  - {name: c1, kind: openai, base_url: 'http://127.0.0.1:2/v1', model: m}\n"
        "  - {name: c2, kind: openai, base_url: 'http://127.0.0.1:3/v1', model: m}\n"
        "tasks:\n  - {name: a, latency_sensitive: true, handles_private_data: true, max_latency_ms: 300}\n"
        "  - {name: b, requires_large_model: true}\n"
        "  - {name: h, latency_sensitive: true, requires_large_model: true, max_latency_ms: 800}\n"
        "  - {name: e, mode: prefer_edge, upstreams: [c2, local]}\n";
    struct ea_router_config *cfg = NULL;
    struct ea_error err = {0};
    ea_router *r = NULL;
    if (ea_router_config_parse(yaml, sizeof yaml - 1, "bench.yaml", &cfg, &err) ||
        ea_router_create(cfg, NULL, &r, &err)) {
        fprintf(stderr, "bench_route: %s\n", err.msg);
        return 1;
    }
    bool probe;
    for (int k = 0; k < EA_ROUTER_TTFT_WINDOW; k++)
        for (size_t u = 1; u < 4; u++)
            if (ea_router_begin(r, u, 0, &probe))
                ea_router_end(r, u, EA_ATTEMPT_OK, 20.0 + (k * 7 + (int)u * 13) % 300, probe, 0);
    struct ea_route_input in = {.pinned = -1, .allow_cloud = true, .prompt_tokens = 200,
                                .max_tokens = 64,
                                .local = {.loaded = true, .have_stats = true, .max_running = 4,
                                          .prefill_tok_s = 2000, .decode_step_ms = 8,
                                          .mean_request_ms = 400, .max_context = 4096}};
    struct ea_route_plan plan;
    long np = n / 10;
    for (long i = 0; i < np; i++) {
        in.task = &cfg->tasks[i & 3];
        in.local.queue_depth = (int32_t)(i % 5);
        in.local.running = (int32_t)(i % 5);
        uint64_t a = now_ns();
        ea_router_plan(r, &in, 1000.0, &plan);
        uint64_t b = now_ns();
        sink += (int32_t)plan.n;
        t[i] = b - a;
    }
    qsort(t, (size_t)np, sizeof *t, cmp_u64);
    printf("ea_router_plan, %ld calls over 4 tasks x 5 local loads (4 upstreams, full TTFT windows)\n", np);
    printf("  timed per call: p50 %llu ns, p99 %llu ns, max %llu ns (clock read included)\n",
           (unsigned long long)t[np / 2], (unsigned long long)t[(size_t)((double)np * 0.99)],
           (unsigned long long)t[np - 1]);
    ea_router_destroy(r);
    ea_router_config_destroy(cfg);
    free(t);
    free(clk);
    return sink == 42 ? 3 : 0; /* sink keeps the calls alive */
}
