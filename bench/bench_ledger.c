/* bench_ledger.c - the ledger's writer and report (EA_TEST_NEEDS_NET:
 * SQLite comes with the server's libraries). Not a test: nothing asserted.
 *
 * 1. record: N rows (mixed tiers, tasks, upstreams; times spread over the
 *    last 20 hours) go through ea_ledger_record as fast as one thread can
 *    call it; a full queue is waited out (and counted), so every row lands.
 *    Prints the cost of one record call (median of timed calls), the
 *    writer's committed rows per second (first record to flush), and the
 *    transactions it needed.
 * 2. report: ea_ledger_report over all N rows, by source, task and
 *    upstream, REPS times each from a fresh read-only open (as `edgeagent
 *    report` does); prints the median and the minimum.
 * 3. series: ea_ledger_series_json as the dashboard asks it (the last 24 h
 *    in minutes: the per-minute sums; the last 24 h in 10 s steps and the
 *    last 15 min in 15 s steps: the rows), REPS times each on one open
 *    ledger; prints the median and the minimum.
 *
 *   build/bench/bench_ledger [-n N=1000000] [-r REPS=5] [-d DIR] [--keep]
 * DIR (default build/bench-ledger) is emptied first; --keep leaves it for
 * `edgeagent report --data-dir DIR`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "edgeagent/ledger.h"

#define TIMED_EVERY 64 /* one record call in this many is timed alone */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void make_row(struct ea_ledger_row *r, long i, long n, int64_t now)
{
    static const char *const tasks[] = {"chat", "summarize", "extract", "classify", "translate"};
    static const char *const edge_up[] = {"local", "node-a", "node-b"};
    static const char *const cloud_up[] = {"mini", "big"};
    ea_ledger_row_init(r);
    unsigned h = (unsigned)i * 2654435761u;
    r->time_ms = now - 20LL * 3600 * 1000 + (int64_t)((double)i / (double)n * 20 * 3600 * 1000);
    snprintf(r->task, sizeof r->task, "%s", tasks[h % 5]);
    int t = (int)((h >> 8) % 10); /* 60% device, 20% edge node, 20% cloud */
    r->tier = t < 6 ? EA_TIER_DEVICE : t < 8 ? EA_TIER_EDGE_NODE : EA_TIER_CLOUD;
    if (r->tier == EA_TIER_CLOUD) {
        int k = (int)((h >> 12) & 1);
        snprintf(r->upstream, sizeof r->upstream, "%s", cloud_up[k]);
        snprintf(r->model, sizeof r->model, "%s", k ? "gpt-4o" : "gpt-4o-mini");
        r->price = k ? (struct ea_upstream_price){2.5, 10} : (struct ea_upstream_price){0.15, 0.6};
    } else {
        int k = r->tier == EA_TIER_DEVICE ? 0 : 1 + (int)((h >> 12) & 1);
        snprintf(r->upstream, sizeof r->upstream, "%s", edge_up[k]);
        snprintf(r->model, sizeof r->model, "qwen2.5:1.5b");
        if (k)
            r->price = (struct ea_upstream_price){0.02, 0.04};
    }
    r->prompt_tokens = 50 + (h >> 4) % 2000;
    r->completion_tokens = 10 + (h >> 14) % 500;
    r->cached_prompt_tokens = (h >> 3) % 64;
    r->ttft_ms = (h >> 5) % 97 == 0 ? -1 : 20 + (double)((h >> 6) % 800);
    r->total_ms = 100 + (double)((h >> 7) % 9000);
    r->fallbacks = (h >> 9) % 50 == 0;
    r->attempts = 1 + r->fallbacks;
    if ((h >> 10) % 40 == 0)
        snprintf(r->outcome, sizeof r->outcome, "upstream_timeout");
    if ((h >> 11) % 8 == 0) {
        r->n_entities = 1;
        snprintf(r->entities[0].type, sizeof r->entities[0].type, "email");
        r->entities[0].count = 1 + (h >> 13) % 3;
    }
}

int main(int argc, char **argv)
{
    long n = 1000000, reps = 5;
    const char *dir = "build/bench-ledger";
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            reps = atol(argv[++i]);
        else if (!strcmp(argv[i], "-d") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--keep"))
            keep = true;
        else {
            fprintf(stderr, "usage: %s [-n N] [-r REPS] [-d DIR] [--keep]\n", argv[0]);
            return 2;
        }
    }
    if (n < 1000 || n > 100000000 || reps < 1 || reps > 100) {
        fprintf(stderr, "-n takes 1000..1e8, -r 1..100\n");
        return 2;
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;

    struct ea_ledger_config cfg;
    ea_ledger_config_init(&cfg);
    cfg.has_reference = true;
    cfg.reference_price = (struct ea_upstream_price){2.5, 10};
    cfg.edge_cost_per_mtok = 0.01;
    ea_ledger *l = NULL;
    struct ea_error err = {0};
    struct ea_ledger_options o = {.config = &cfg};
    if (ea_ledger_open(dir, &o, &l, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int64_t now = wall_ms();
    size_t n_timed = (size_t)(n / TIMED_EVERY) + 1, k = 0;
    double *timed = malloc(n_timed * sizeof *timed);
    uint64_t waits = 0;
    double t0 = bench_now();
    for (long i = 0; i < n; i++) {
        struct ea_ledger_row r;
        make_row(&r, i, n, now);
        double a = i % TIMED_EVERY == 0 ? bench_now() : 0;
        ea_status s;
        bool first = true;
        while ((s = ea_ledger_record(l, &r, &err)) == EA_EOVERLOADED) {
            if (first && a) {
                a = 0; /* a full queue: not a plain call, not timed */
                first = false;
            }
            waits++;
            usleep(100);
        }
        if (s) {
            fprintf(stderr, "record: %s\n", err.msg);
            return 1;
        }
        if (a && k < n_timed)
            timed[k++] = bench_now() - a;
    }
    double t_queued = bench_now() - t0;
    if (ea_ledger_flush(l, 600000)) {
        fprintf(stderr, "flush timed out\n");
        return 1;
    }
    double t_all = bench_now() - t0;
    struct ea_ledger_stats st;
    ea_ledger_stats(l, &st);
    qsort(timed, k, sizeof *timed, bench_cmp_double);
    printf("record: %ld rows in %.2f s: %.0f rows/s committed, %" PRIu64 " transactions "
           "(%.0f rows each), %" PRIu64 " full-queue waits of 100 us\n",
           n, t_all, (double)n / t_all, st.batches, (double)st.written / (double)st.batches, waits);
    printf("record call (1 in %d timed, queue not full): p50 %.0f ns, p99 %.0f ns; queueing all "
           "rows took %.2f s\n",
           TIMED_EVERY, k ? timed[k / 2] * 1e9 : 0, k ? timed[k * 99 / 100] * 1e9 : 0, t_queued);
    free(timed);
    ea_ledger_close(l);

    static const enum ea_ledger_group_by bys[] = {EA_LEDGER_BY_SOURCE, EA_LEDGER_BY_TASK,
                                                  EA_LEDGER_BY_UPSTREAM};
    for (int b = 0; b < 3; b++) {
        double *t = malloc((size_t)reps * sizeof *t);
        uint64_t rows = 0;
        for (long r = 0; r < reps; r++) {
            double a = bench_now();
            struct ea_ledger_options ro = {.read_only = true};
            struct ea_ledger_report *rep = NULL;
            if (ea_ledger_open(dir, &ro, &l, &err) ||
                ea_ledger_report(l, now - 24LL * 3600 * 1000, 0, bys[b], &rep, &err)) {
                fprintf(stderr, "report: %s\n", err.msg);
                return 1;
            }
            rows = rep->total.requests;
            ea_ledger_report_destroy(rep);
            ea_ledger_close(l);
            t[r] = bench_now() - a;
        }
        qsort(t, (size_t)reps, sizeof *t, bench_cmp_double);
        printf("report --by %-8s over %" PRIu64 " rows: median %.3f s, min %.3f s (%ld runs, open "
               "included)\n",
               ea_ledger_group_by_name(bys[b]), rows, t[reps / 2], t[0], reps);
        free(t);
    }
    static const struct {
        int64_t window_ms, step_ms;
        const char *name;
    } series[] = {{24LL * 3600 * 1000, 60000, "24h in 60s steps"},
                  {24LL * 3600 * 1000, 10000, "24h in 10s steps"},
                  {15LL * 60 * 1000, 15000, "15m in 15s steps"}};
    struct ea_ledger_options ro = {.read_only = true};
    if (ea_ledger_open(dir, &ro, &l, &err)) {
        fprintf(stderr, "series: %s\n", err.msg);
        return 1;
    }
    for (size_t q = 0; q < sizeof series / sizeof series[0]; q++) {
        double *t = malloc((size_t)reps * sizeof *t);
        for (long r = 0; r < reps; r++) {
            char *json = NULL;
            double a = bench_now();
            if (ea_ledger_series_json(l, now - series[q].window_ms, now, series[q].step_ms, &json, &err)) {
                fprintf(stderr, "series: %s\n", err.msg);
                return 1;
            }
            t[r] = bench_now() - a;
            ea_free(json);
        }
        qsort(t, (size_t)reps, sizeof *t, bench_cmp_double);
        printf("series %s: median %.3f s, min %.3f s (%ld runs)\n", series[q].name, t[reps / 2], t[0], reps);
        free(t);
    }
    ea_ledger_close(l);
    if (!keep) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return 1;
    }
    return 0;
}
