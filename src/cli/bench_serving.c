/* bench_serving.c - `edgeagent bench --concurrency 1,4,16`: the engine under
 * load. For each concurrency level C, C requests (PROMPT random tokens after
 * an optional SHARED-PREFIX common to all, GEN tokens each) are submitted at
 * once; reported: aggregate generation tokens/s, time to first token and
 * inter-token latency (p50/p99), peak KV blocks, preemptions, RSS. With a
 * shared prefix, a cold and a warm (prefix already cached) single request
 * are timed too. Prints a table, or JSON with --json.
 * Does not hold: single-stream pp/tg (cmd_bench.c). */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/bench_int.h"
#include "cli/cli.h"
#include "edgeagent/engine.h"

struct breq {
    double t_submit, t_last;
    double *itl; /* inter-token gaps, ms */
    int n_itl, cap_itl;
    double ttft;
    int n_tokens;
    int done;
    int32_t n_preempted, n_cached;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static bool on_event(const struct ea_engine_event *ev)
{
    struct breq *r = ev->user;
    double t = now_ms();
    if (ev->kind == EA_EVENT_TOKEN) {
        if (r->n_tokens == 0)
            r->ttft = t - r->t_submit;
        else if (r->n_itl < r->cap_itl)
            r->itl[r->n_itl++] = t - r->t_last;
        r->t_last = t;
        r->n_tokens++;
        return true;
    }
    pthread_mutex_lock(&mu);
    r->n_preempted = ev->n_preempted;
    r->n_cached = ev->n_cached;
    r->done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return true;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    int i = (int)ceil(p / 100.0 * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static void fill_random(int32_t *t, int n, uint64_t *seed, uint32_t n_vocab)
{
    for (int i = 0; i < n; i++) {
        *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = (int32_t)(10 + (*seed >> 33) % (n_vocab - 10));
    }
}

/* Runs n requests at once; fills rs[]. Returns wall ms or < 0 on error. */
static double run_batch(ea_engine *e, const struct serving_opts *o, int n, const int32_t *prefix,
                        uint64_t *seed, struct breq *rs)
{
    uint32_t n_vocab = ea_model_get_info(ea_engine_model(e))->n_vocab;
    int len = o->shared_prefix + o->prompt;
    int32_t *prompt = malloc(sizeof(int32_t) * (size_t)len);
    if (!prompt)
        return -1;
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        memset(&rs[i], 0, sizeof rs[i]);
        rs[i].cap_itl = o->gen;
        rs[i].itl = malloc(sizeof(double) * (size_t)o->gen);
        if (o->shared_prefix)
            memcpy(prompt, prefix, sizeof(int32_t) * (size_t)o->shared_prefix);
        fill_random(prompt + o->shared_prefix, o->prompt, seed, n_vocab);
        struct ea_engine_request q = {0};
        q.prompt = prompt;
        q.n_prompt = len;
        ea_sampling_params_default(&q.sampling);
        q.sampling.temperature = 0;
        q.max_tokens = o->gen;
        q.ignore_eog = true;
        q.cb = on_event;
        q.user = &rs[i];
        rs[i].t_submit = now_ms();
        uint64_t id;
        struct ea_error err = {0};
        if (ea_engine_submit(e, &q, &id, &err)) {
            cli_error("bench", &err);
            free(prompt);
            return -1;
        }
    }
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n; i++)
        while (!rs[i].done)
            pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    free(prompt);
    return now_ms() - t0;
}

int bench_serving(const struct serving_opts *o)
{
    struct ea_error err = {0};
    ea_model *m = NULL;
    struct ea_model_load_params lp = cli_model_params(o->threads);
    if (ea_model_load(o->model, &lp, &m, &err)) {
        cli_error("bench", &err);
        return 1;
    }
    ea_model_wait_packed(m); /* figures are of the packed weights, as a server's after warm-up */
    const struct ea_model_info *h = ea_model_get_info(m);
    int max_c = 1;
    for (int i = 0; i < o->n_levels; i++)
        if (o->levels[i] > max_c)
            max_c = o->levels[i];
    int rc = 0;
    uint64_t seed = 42;
    int32_t *prefix = malloc(sizeof(int32_t) * (size_t)(o->shared_prefix + 1));
    struct breq *rs = calloc((size_t)max_c, sizeof *rs);
    fill_random(prefix, o->shared_prefix, &seed, h->n_vocab);
    if (!o->json)
        printf("model %s (%s, %s), %d threads, prompt %d + shared prefix %d, gen %d, KV %" PRIu64
               " MiB\n",
               h->name, h->arch, ea_type_info(h->file_type_major)->name, ea_model_threads(m),
               o->prompt, o->shared_prefix, o->gen, o->kv_mem_mb);
    if (o->json) {
        printf("{\"model\":");
        cli_print_json_str(stdout, h->name);
        printf(",\"threads\":%d,\"prompt\":%d,\"shared_prefix\":%d,\"gen\":%d,\"levels\":[",
               ea_model_threads(m), o->prompt, o->shared_prefix, o->gen);
    }
    else
        printf("| %11s | %12s | %10s | %10s | %10s | %10s | %9s | %8s | %8s |\n", "concurrency",
               "gen tok/s", "TTFT p50", "TTFT p99", "ITL p50", "ITL p99", "peak KV", "preempt",
               "RSS MiB");
    for (int li = 0; li < o->n_levels && !rc; li++) {
        int c = o->levels[li];
        struct ea_engine_params ep;
        ea_engine_params_default(&ep);
        ep.kv_mem_bytes = o->kv_mem_mb << 20;
        ep.max_running = c > 16 ? c : 16;
        ep.max_batch_tokens = o->max_batch;
        ep.max_queue = c + 16;
        ep.max_context = o->shared_prefix + o->prompt + o->gen + 16;
        ea_engine *e = NULL;
        if (ea_engine_create(m, &ep, &e, &err)) {
            cli_error("bench", &err);
            rc = 1;
            break;
        }
        if (o->shared_prefix) { /* warm the prefix cache */
            struct serving_opts one = *o;
            one.gen = 1;
            if (run_batch(e, &one, 1, prefix, &seed, rs) < 0)
                rc = 1;
            free(rs[0].itl);
        }
        double wall = rc ? -1 : run_batch(e, o, c, prefix, &seed, rs);
        if (wall < 0) {
            rc = 1;
            ea_engine_destroy(e);
            break;
        }
        double *ttft = malloc(sizeof(double) * (size_t)c), *itl = malloc(sizeof(double) * (size_t)c * o->gen);
        int n_itl = 0, preempted = 0;
        long gen_total = 0;
        for (int i = 0; i < c; i++) {
            ttft[i] = rs[i].ttft;
            memcpy(itl + n_itl, rs[i].itl, sizeof(double) * (size_t)rs[i].n_itl);
            n_itl += rs[i].n_itl;
            gen_total += rs[i].n_tokens;
            preempted += rs[i].n_preempted;
            free(rs[i].itl);
        }
        struct ea_engine_stats st;
        ea_engine_get_stats(e, &st);
        double tps = gen_total / (wall / 1e3);
        double t50 = pct(ttft, c, 50), t99 = pct(ttft, c, 99), i50 = pct(itl, n_itl, 50),
               i99 = pct(itl, n_itl, 99);
        long rss = bench_rss_kib();
        if (o->json)
            printf("%s{\"concurrency\":%d,\"gen_tok_s\":%.2f,\"ttft_p50_ms\":%.2f,\"ttft_p99_ms\":%.2f,"
                   "\"itl_p50_ms\":%.2f,\"itl_p99_ms\":%.2f,\"peak_kv_blocks\":%u,\"kv_blocks\":%u,"
                   "\"preemptions\":%d,\"peak_rss_kib\":%ld}",
                   li ? "," : "", c, tps, t50, t99, i50, i99, st.peak_kv_blocks_used,
                   st.kv_blocks_total, preempted, rss);
        else
            printf("| %11d | %12.1f | %8.1f ms | %8.1f ms | %8.2f ms | %8.2f ms | %4u/%-4u | %8d | %8.1f |\n",
                   c, tps, t50, t99, i50, i99, st.peak_kv_blocks_used, st.kv_blocks_total, preempted,
                   rss / 1024.0);
        fflush(stdout);
        free(ttft);
        free(itl);
        ea_engine_destroy(e);
    }
    if (o->json)
        printf("]");
    if (!rc && o->shared_prefix) {
        /* cold: prefix caching off; warm: the prefix cached by a first request */
        double ttft_cold = 0, ttft_warm = 0;
        for (int warm = 0; warm < 2 && !rc; warm++) {
            struct ea_engine_params ep;
            ea_engine_params_default(&ep);
            ep.kv_mem_bytes = o->kv_mem_mb << 20;
            ep.max_batch_tokens = o->max_batch;
            ep.prefix_cache = warm;
            ep.max_context = o->shared_prefix + o->prompt + o->gen + 16;
            ea_engine *e = NULL;
            if (ea_engine_create(m, &ep, &e, &err)) {
                cli_error("bench", &err);
                rc = 1;
                break;
            }
            struct serving_opts one = *o;
            one.gen = 2;
            double best = 1e30;
            for (int r = 0; r < 4 && !rc; r++) { /* first run warms; min of the rest */
                if (run_batch(e, &one, 1, prefix, &seed, rs) < 0)
                    rc = 1;
                if (r > 0 && rs[0].ttft < best)
                    best = rs[0].ttft;
                free(rs[0].itl);
            }
            if (warm)
                ttft_warm = best;
            else
                ttft_cold = best;
            ea_engine_destroy(e);
        }
        if (o->json)
            printf(",\"ttft_cold_ms\":%.2f,\"ttft_cached_prefix_ms\":%.2f", ttft_cold, ttft_warm);
        else
            printf("shared prefix of %d tokens: TTFT cold %.1f ms, prefix cached %.1f ms (%.1f%% of cold)\n",
                   o->shared_prefix, ttft_cold, ttft_warm, 100 * ttft_warm / ttft_cold);
    }
    if (o->json)
        printf("}\n");
    free(rs);
    free(prefix);
    ea_model_destroy(m);
    return rc;
}
