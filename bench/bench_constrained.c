/* bench_constrained.c - decode speed with a JSON Schema against
 * unconstrained decode, in the engine, at 1 and 16 concurrent streams: the
 * same prompts, sampler and token budget, the grammar's mask applied per
 * sequence per step (issue 14's target: constrained >= 95% of unconstrained
 * tokens/s). Runs alternate (unconstrained, constrained) `-r` times and the
 * medians are printed. Prints figures only.
 *
 * Usage: bench_constrained MODEL.gguf [-t threads] [-n tokens] [-r rounds] [-f]
 * (sampler: the server's, temperature 1 over top-k 40 / min-p 0.05; -f the
 * full distribution: top-k, top-p, min-p off)
 * (a random-weight model from `edgeagent gen-model --preset smollm2-135m` /
 * `qwen2.5-0.5b` with the family's vocabulary, see docs/BENCHMARKS.md).
 *
 * Decode rate of a run: generated tokens after each stream's first, over
 * the time from the last first token to the last token before any stream
 * finished (prefill excluded; only steps with the whole batch count, since
 * a constrained stream may complete its JSON before the budget).
 * The constrained run uses the 20-property tool schema of bench_grammar.c
 * wrapped in an array of at least 3 so a generation rarely finishes early; its grammar is
 * compiled (and warmed by one run) before timing.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "edgeagent/engine.h"
#include "edgeagent/grammar.h"
#include "edgeagent/model.h"
#include "edgeagent/tokenizer.h"

#define MAX_STREAMS 16
#define MAX_ROUNDS 9

static const char SCHEMA[] =
    "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"query\":{\"type\":\"string\"},\"location\":{\"type\":\"string\"},"
    "\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"]},"
    "\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":14},\"limit\":{\"type\":\"integer\",\"minimum\":0},"
    "\"threshold\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},\"include_hourly\":{\"type\":\"boolean\"},"
    "\"date\":{\"type\":\"string\",\"format\":\"date\"},\"email\":{\"type\":\"string\",\"format\":\"email\"},"
    "\"ticket\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2,4}-[0-9]{1,6}$\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":5},"
    "\"priority\":{\"enum\":[\"low\",\"medium\",\"high\",\"urgent\"]},\"notes\":{\"type\":[\"string\",\"null\"]},"
    "\"language\":{\"type\":\"string\",\"maxLength\":16},\"page\":{\"type\":\"integer\"},"
    "\"sort\":{\"type\":\"string\",\"enum\":[\"asc\",\"desc\"]},"
    "\"filters\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"field\":{\"type\":\"string\"},\"op\":{\"enum\":[\"eq\",\"ne\",\"lt\",\"gt\"]},\"value\":{\"type\":\"string\"}},"
    "\"required\":[\"field\",\"op\",\"value\"],\"additionalProperties\":false}},"
    "\"owner\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"name\":{\"type\":\"string\"}},\"required\":[\"id\"]},\"dry_run\":{\"type\":\"boolean\"},"
    "\"callback_url\":{\"type\":\"string\"}},"
    "\"required\":[\"query\",\"location\",\"unit\",\"days\",\"priority\",\"filters\",\"owner\"],"
    "\"additionalProperties\":false},\"minItems\":3}";

struct run {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    double t_first_last, t_end;
    long tokens; /* after each stream's first */
};

struct stream {
    struct run *run;
    int n;
};

static bool on_event(const struct ea_engine_event *ev)
{
    struct stream *s = ev->user;
    struct run *r = s->run;
    double t = bench_now();
    pthread_mutex_lock(&r->mu);
    if (ev->kind == EA_EVENT_TOKEN) {
        if (r->done > 0) { /* the full batch only */
            pthread_mutex_unlock(&r->mu);
            return true;
        }
        if (s->n++ == 0) {
            if (t > r->t_first_last)
                r->t_first_last = t;
        } else {
            r->tokens++;
        }
        if (t > r->t_end)
            r->t_end = t;
    } else {
        if (ev->status)
            fprintf(stderr, "generation failed: %s\n", ev->error ? ev->error : "?");
        r->done++;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return true;
}

/* One run of n streams; returns decode tokens/s (0 on failure). */
static bool full; /* -f: sample from the full distribution */

static double run_once(ea_engine *e, const int32_t *prompt, int32_t n_prompt, int n, int tokens,
                       const ea_grammar *g, uint64_t seed)
{
    struct run r = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    struct stream st[MAX_STREAMS];
    struct ea_error err = {0};
    for (int i = 0; i < n; i++) {
        st[i] = (struct stream){&r, 0};
        struct ea_engine_request q = {0};
        q.prompt = prompt;
        q.n_prompt = n_prompt;
        /* the server's sampler: OpenAI's temperature 1 / top_p 1 over the
         * engine's top-k 40 / min-p 0.05; -f: the full distribution */
        ea_sampling_params_default(&q.sampling);
        q.sampling.temperature = 1;
        q.sampling.top_p = 1;
        if (full) {
            q.sampling.top_k = 0;
            q.sampling.min_p = 0;
        }
        q.sampling.seed = seed + (uint64_t)i;
        q.max_tokens = tokens;
        q.ignore_eog = true;
        q.grammar = g;
        q.cb = on_event;
        q.user = &st[i];
        uint64_t id;
        if (ea_engine_submit(e, &q, &id, &err)) {
            fprintf(stderr, "submit: %s\n", err.msg);
            return 0;
        }
    }
    pthread_mutex_lock(&r.mu);
    while (r.done < n)
        pthread_cond_wait(&r.cv, &r.mu);
    pthread_mutex_unlock(&r.mu);
    double dt = r.t_end - r.t_first_last;
    return dt > 0 ? r.tokens / dt : 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int threads = 2, tokens = 128, rounds = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-f"))
            full = true;
        else
            path = argv[i];
    }
    if (!path || rounds < 1 || rounds > MAX_ROUNDS || tokens < 8) {
        fprintf(stderr, "usage: bench_constrained MODEL.gguf [-t threads] [-n tokens] [-r rounds 1..%d] [-f]\n",
                MAX_ROUNDS);
        return 2;
    }
    struct ea_error err = {0};
    ea_model *m = NULL;
    ea_tokenizer *tok = NULL;
    ea_grammar_vocab *v = NULL;
    ea_grammar *g = NULL;
    ea_engine *e = NULL;
    struct ea_model_load_params lp = {.n_threads = threads};
    if (ea_model_load(path, &lp, &m, &err) || ea_tokenizer_create(ea_model_gguf(m), &tok, &err) ||
        ea_grammar_vocab_create(tok, &v, &err)) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return 1;
    }
    double t0 = bench_now();
    if (ea_grammar_compile_schema_text(v, SCHEMA, sizeof SCHEMA - 1, NULL, &g, &err)) {
        fprintf(stderr, "schema: %s\n", err.msg);
        return 1;
    }
    double compile_ms = (bench_now() - t0) * 1e3;
    struct ea_engine_params ep;
    ea_engine_params_default(&ep);
    ep.max_running = MAX_STREAMS;
    ep.kv_mem_bytes = ea_kv_cache_bytes_per_token(m, EA_TYPE_F16) * (uint64_t)MAX_STREAMS * (tokens + 64);
    if (ea_engine_create(m, &ep, &e, &err)) {
        fprintf(stderr, "engine: %s\n", err.msg);
        return 1;
    }
    int32_t prompt[32];
    size_t np = 0;
    ea_tokenize(tok, "Return the tool arguments as JSON:", 34, EA_TOK_ADD_SPECIAL, prompt, 32, &np, &err);
    printf("model %s, vocab %u, %d threads, %d tokens per stream, %d rounds, %s sampler; schema compile %.1f ms\n",
           path, ea_grammar_vocab_n_vocab(v), threads, tokens, rounds, full ? "full-distribution" : "server",
           compile_ms);
    run_once(e, prompt, (int32_t)np, MAX_STREAMS, tokens, g, 999); /* warm: caches and pages */
    int streams[2] = {1, MAX_STREAMS};
    struct ea_engine_stats st0;
    ea_engine_get_stats(e, &st0);
    double g_ms = st0.grammar_ms; /* after the warm-up */
    uint64_t g_steps = st0.grammar_steps;
    for (int k = 0; k < 2; k++) {
        double un[MAX_ROUNDS], co[MAX_ROUNDS];
        for (int r = 0; r < rounds; r++) {
            un[r] = run_once(e, prompt, (int32_t)np, streams[k], tokens, NULL, (uint64_t)r * 100);
            co[r] = run_once(e, prompt, (int32_t)np, streams[k], tokens, g, (uint64_t)r * 100);
        }
        qsort(un, (size_t)rounds, sizeof un[0], bench_cmp_double);
        qsort(co, (size_t)rounds, sizeof co[0], bench_cmp_double);
        double mu = un[rounds / 2], mc = co[rounds / 2];
        struct ea_engine_stats st;
        ea_engine_get_stats(e, &st);
        printf("%2d stream%s: unconstrained %8.1f tok/s, JSON Schema %8.1f tok/s = %5.1f%%; grammar %.1f us "
               "per token (mask + advance) = %.1f%% of a constrained token's time\n",
               streams[k], streams[k] > 1 ? "s" : " ", mu, mc, mu > 0 ? 100 * mc / mu : 0,
               1e3 * (st.grammar_ms - g_ms) / (double)(st.grammar_steps - g_steps),
               mc > 0 ? 100 * 1e-3 * (st.grammar_ms - g_ms) / (double)(st.grammar_steps - g_steps) * mc : 0);
        g_ms = st.grammar_ms;
        g_steps = st.grammar_steps;
    }
    ea_engine_destroy(e);
    ea_grammar_destroy(g);
    ea_grammar_vocab_destroy(v);
    ea_tokenizer_destroy(tok);
    ea_model_destroy(m);
    return 0;
}
