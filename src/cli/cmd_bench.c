/* cmd_bench.c - `edgeagent bench`: prompt processing (ppN: N tokens in one
 * batch from an empty cache) and generation (tgN: N tokens one at a time)
 * throughput with mean +/- stddev over repetitions, in a llama-bench-like
 * table or JSON. Prompt tokens are pseudo-random ids, as llama-bench uses;
 * parses every bench option (ranges in bench_int.h).
 * Does not hold: the load test under concurrency (bench_serving.c), the
 * memory bandwidth probe (bench_membw.c). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/bench_int.h"
#include "cli/cli.h"
#include "edgeagent/engine.h"
#include "edgeagent/kernels.h"
#include "edgeagent/model.h"
#include "util/threadpool.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

long bench_rss_kib(void);

static long rss_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0)
            v = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

long bench_rss_kib(void) { return rss_kib("VmHWM"); }

/* --concurrency 1,4,16: each level in 1..BENCH_MAX_CONCURRENCY, at most
 * BENCH_MAX_LEVELS of them; false after printing why. */
static bool parse_levels(const char *opt, const char *v, struct serving_opts *so)
{
    so->n_levels = 0;
    for (const char *p = v;; p++) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char tok[32];
        if (n == 0 || n >= sizeof tok) {
            cli_errorf("bench", "%s takes a comma-separated list of levels, such as 1,4,16 (got '%s')",
                       opt, v);
            return false;
        }
        if (so->n_levels == BENCH_MAX_LEVELS) {
            cli_errorf("bench", "%s takes at most %d levels", opt, BENCH_MAX_LEVELS);
            return false;
        }
        memcpy(tok, p, n);
        tok[n] = '\0';
        uint64_t c;
        if (!cli_parse_range("bench", opt, tok, 1, BENCH_MAX_CONCURRENCY, &c))
            return false;
        so->levels[so->n_levels++] = (int)c;
        if (!comma)
            return true;
        p = comma;
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: edgeagent bench -m MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS] "
            "[--kv f16|q8_0|f32] [--json]\n"
            "  -p N   prompt tokens per pp test, 0..%d (0 skips it)\n"
            "  -n N   generated tokens per tg test, 0..%d (0 skips it)\n"
            "  -r N   repetitions, 1..%d (default 5) after one warm-up run\n"
            "  -t N   threads, 0..%d (0: one per CPU)\n"
            "usage: edgeagent bench --mem-bandwidth [-t THREADS] [--json]\n"
            "  memory read bandwidth, read the way decode reads the weights\n"
            "usage: edgeagent bench -m MODEL --concurrency 1,4,16 [--prompt 256] [--gen 128]\n"
            "                       [--shared-prefix N] [--kv-mem MB] [--max-batch 512] [--json]\n"
            "  continuous batching under load: aggregate tok/s, TTFT and inter-token latency;\n"
            "  up to %d levels of 1..%d requests; --prompt, --gen, --max-batch 1..%d tokens,\n"
            "  --shared-prefix 0..%d, --kv-mem 1..%d MiB\n",
            BENCH_MAX_TEST_TOKENS, BENCH_MAX_TEST_TOKENS, BENCH_MAX_REPS, EA_POOL_MAX_THREADS,
            BENCH_MAX_LEVELS, BENCH_MAX_CONCURRENCY, BENCH_MAX_SEQ_TOKENS, BENCH_MAX_SEQ_TOKENS,
            BENCH_MAX_KV_MEM_MB);
}

struct stats {
    double mean, sd;
};

static struct stats summarize(const double *v, int n)
{
    struct stats s = {0, 0};
    for (int i = 0; i < n; i++)
        s.mean += v[i] / n;
    for (int i = 0; i < n && n > 1; i++)
        s.sd += (v[i] - s.mean) * (v[i] - s.mean) / (n - 1);
    s.sd = sqrt(s.sd);
    return s;
}

/* One timed run: tokens/s. */
static ea_status run_once(ea_model *m, ea_kv_cache *c, int pp, int tg, uint64_t seed, double *out,
                          struct ea_error *err)
{
    const struct ea_model_info *h = ea_model_get_info(m);
    int n = pp ? pp : tg;
    int32_t *tok = malloc(sizeof(int32_t) * n);
    float *logits = malloc(sizeof(float) * h->n_vocab);
    if (!tok || !logits) {
        free(tok);
        free(logits);
        return ea_error_set(err, EA_ENOMEM, "bench: out of memory");
    }
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((seed >> 33) % h->n_vocab);
    }
    struct ea_kv_seq s = {0};
    ea_status st = EA_OK;
    double t0 = now_s();
    if (pp) {
        st = ea_kv_seq_eval(m, c, &s, tok, pp, EA_LOGITS_LAST, logits, err);
    } else {
        for (int i = 0; i < tg && !st; i++)
            st = ea_kv_seq_eval(m, c, &s, &tok[i], 1, EA_LOGITS_LAST, logits, err);
    }
    double dt = now_s() - t0;
    ea_kv_seq_release(c, &s);
    free(tok);
    free(logits);
    *out = n / dt;
    return st;
}

int cmd_bench(int argc, char **argv)
{
    const char *model = NULL;
    uint64_t pp = 512, tg = 128, threads = 0, reps = 5;
    bool json = false, bandwidth = false;
    struct serving_opts so = {.prompt = 256, .gen = 128, .max_batch = 512, .kv_mem_mb = 1024};
    uint32_t kv_type = EA_TYPE_F16;
    const char *models_dir = cli_take_models_dir(&argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
            continue;
        } else if (!strcmp(a, "--mem-bandwidth")) {
            bandwidth = true;
            continue;
        }
        if (!v) {
            cli_errorf("bench", "option '%s' needs a value (or is unknown)", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "-p")) {
            if (!cli_parse_range("bench", a, v, 0, BENCH_MAX_TEST_TOKENS, &pp))
                return 2;
        } else if (!strcmp(a, "-n")) {
            if (!cli_parse_range("bench", a, v, 0, BENCH_MAX_TEST_TOKENS, &tg))
                return 2;
        } else if (!strcmp(a, "-t")) {
            if (!cli_parse_range("bench", a, v, 0, EA_POOL_MAX_THREADS, &threads))
                return 2;
        } else if (!strcmp(a, "-r")) {
            if (!cli_parse_range("bench", a, v, 1, BENCH_MAX_REPS, &reps))
                return 2;
        } else if (!strcmp(a, "--concurrency")) {
            if (!parse_levels(a, v, &so))
                return 2;
        } else if (!strcmp(a, "--prompt") || !strcmp(a, "--gen") || !strcmp(a, "--shared-prefix") ||
                   !strcmp(a, "--max-batch") || !strcmp(a, "--kv-mem")) {
            bool kv = !strcmp(a, "--kv-mem");
            uint64_t x, lo = strcmp(a, "--shared-prefix") ? 1 : 0;
            if (!cli_parse_range("bench", a, v, lo, kv ? BENCH_MAX_KV_MEM_MB : BENCH_MAX_SEQ_TOKENS,
                                 &x))
                return 2;
            if (!strcmp(a, "--prompt"))
                so.prompt = (int)x;
            else if (!strcmp(a, "--gen"))
                so.gen = (int)x;
            else if (!strcmp(a, "--shared-prefix"))
                so.shared_prefix = (int)x;
            else if (!strcmp(a, "--max-batch"))
                so.max_batch = (int)x;
            else
                so.kv_mem_mb = x;
        } else if (!strcmp(a, "--kv")) {
            if (!strcmp(v, "f16"))
                kv_type = EA_TYPE_F16;
            else if (!strcmp(v, "f32"))
                kv_type = EA_TYPE_F32;
            else if (!strcmp(v, "q8_0"))
                kv_type = EA_TYPE_Q8_0;
            else {
                cli_errorf("bench", "--kv must be f16, q8_0 or f32");
                return 2;
            }
        } else {
            cli_errorf("bench", "unknown option '%s'", a);
            return 2;
        }
    }
    if (bandwidth)
        return bench_mem_bandwidth((int)threads, json);
    char model_path[4096];
    if (model) {
        if (!cli_resolve_model("bench", model, models_dir, model_path, sizeof model_path))
            return 1;
        model = model_path;
    }
    if (so.n_levels) {
        if (!model) {
            usage(stderr);
            return 2;
        }
        so.model = model;
        so.threads = (int)threads;
        so.json = json;
        return bench_serving(&so);
    }
    if (!model) {
        usage(stderr);
        return 2;
    }
    struct ea_error err = {0};
    ea_model *m = NULL;
    struct ea_model_load_params lp = cli_model_params((int)threads);
    double tl = now_s();
    if (ea_model_load(model, &lp, &m, &err)) {
        cli_error("bench", &err);
        return 1;
    }
    tl = now_s() - tl;
    /* timings are of the packed weights: wait for the background packing */
    double tpk = now_s();
    ea_model_wait_packed(m);
    tpk = now_s() - tpk;
    const struct ea_model_info *h = ea_model_get_info(m);
    uint64_t ctx = pp > tg ? pp : tg;
    ea_kv_cache *c = NULL;
    struct ea_kv_cache_params kp = {kv_type, 16, ea_kv_cache_bytes_per_token(m, kv_type) * (ctx + 32)};
    if (ea_kv_cache_create(m, &kp, &c, &err)) {
        cli_error("bench", &err);
        ea_model_destroy(m);
        return 1;
    }
    struct {
        const char *kind;
        int n;
        struct stats st;
        bool ran;
    } tests[2] = {{"pp", (int)pp, {0, 0}, pp > 0}, {"tg", (int)tg, {0, 0}, tg > 0}};
    double *v = malloc(sizeof(double) * reps);
    int rc = 0;
    for (int ti = 0; ti < 2 && !rc; ti++) {
        if (!tests[ti].ran)
            continue;
        int p = ti == 0 ? tests[ti].n : 0, g = ti == 1 ? tests[ti].n : 0;
        double warm;
        for (uint64_t r = 0; r <= reps && !rc; r++) {
            if (run_once(m, c, p, g, 1234 + r, r ? &v[r - 1] : &warm, &err)) {
                cli_error("bench", &err);
                rc = 1;
            }
        }
        tests[ti].st = summarize(v, (int)reps);
    }
    free(v);
    if (!rc) {
        const char *tname = ea_type_info(h->file_type_major)->name;
        double gib = (double)h->weight_bytes / (1024.0 * 1024 * 1024);
        long rss = rss_kib("VmHWM");
        if (json) {
            printf("{\"model\":");
            cli_print_json_str(stdout, h->name);
            printf(",\"arch\":\"%s\",\"type\":\"%s\",\"size_bytes\":%" PRIu64
                   ",\"n_params\":%" PRIu64 ",\"threads\":%d,\"kernels\":\"%s\",\"load_s\":%.3f,"
                   "\"pack_s\":%.3f,\"packed_bytes\":%zu,\"peak_rss_kib\":%ld,\"results\":[",
                   h->arch, tname, h->weight_bytes, h->n_params, ea_model_threads(m),
                   ea_kernels_name(), tl, tpk, ea_model_packed_bytes(m), rss);
            bool first = true;
            for (int ti = 0; ti < 2; ti++) {
                if (!tests[ti].ran)
                    continue;
                printf("%s{\"test\":\"%s%d\",\"tokens_per_s\":%.3f,\"stddev\":%.3f,\"reps\":%" PRIu64
                       "}",
                       first ? "" : ",", tests[ti].kind, tests[ti].n, tests[ti].st.mean,
                       tests[ti].st.sd, reps);
                first = false;
            }
            printf("]}\n");
        } else {
            printf("| %-28s | %10s | %8s | %-14s | %7s | %8s | %20s |\n", "model", "size",
                   "params", "backend", "threads", "test", "t/s");
            printf("| %.28s | %.10s | %.8s | %.14s | %.7s | %.8s | %.20s |\n",
                   "------------------------------", "----------", "--------",
                   "--------------", "-------", "--------", "--------------------");
            char desc[64], params[16], backend[32];
            snprintf(desc, sizeof desc, "%s %s %s", h->arch, h->name, tname);
            snprintf(params, sizeof params, "%.2f B", h->n_params / 1e9);
            snprintf(backend, sizeof backend, "CPU %s", ea_kernels_name());
            for (int ti = 0; ti < 2; ti++) {
                if (!tests[ti].ran)
                    continue;
                char test[16], tps[32];
                snprintf(test, sizeof test, "%s%d", tests[ti].kind, tests[ti].n);
                snprintf(tps, sizeof tps, "%.2f ± %.2f", tests[ti].st.mean, tests[ti].st.sd);
                printf("| %-28.28s | %6.2f GiB | %8s | %-14s | %7d | %8s | %20s |\n", desc, gib,
                       params, backend, ea_model_threads(m), test, tps);
            }
            printf("\nload %.3f s (then %.3f s packing %.1f MiB of weights in the background), "
                   "peak RSS %.1f MiB, KV %s\n",
                   tl, tpk, ea_model_packed_bytes(m) / 1048576.0, rss / 1024.0,
                   ea_type_info(kv_type)->name);
        }
    }
    ea_kv_cache_destroy(c);
    ea_model_destroy(m);
    return rc;
}
