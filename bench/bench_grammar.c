/* bench_grammar.c - grammar engine figures on real vocabularies: vocabulary
 * index build, schema compile (automaton only, then with every position's
 * mask cache filled), and token-mask time per step while generating with
 * random tokens drawn from the mask, cold (first generation, caches filling)
 * and warm (later generations of the same grammar). Prints figures only.
 *
 * Usage: bench_grammar [VOCAB.gguf ...] [-n generations] [-s seed]
 * Default vocabularies: ../shared/vocab/ggml-vocab-qwen2.gguf (151,936) and
 * ggml-vocab-starcoder.gguf (49,152, SmolLM2's size).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "edgeagent/gguf.h"
#include "edgeagent/grammar.h"
#include "edgeagent/tokenizer.h"

#define MAX_STEPS 400      /* tokens per generation */
#define MAX_SAMPLES 200000 /* mask timings kept */

/* A 20-property tool schema in the style of agent frameworks' function
 * parameters: strings, enums, numbers with bounds, a format, a pattern, an
 * array of objects, a nested object, optional fields. */
static const char SCHEMA20[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"query\":{\"type\":\"string\",\"description\":\"search text\"},"
    "\"location\":{\"type\":\"string\"},"
    "\"unit\":{\"type\":\"string\",\"enum\":[\"celsius\",\"fahrenheit\"]},"
    "\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":14},"
    "\"limit\":{\"type\":\"integer\",\"minimum\":0},"
    "\"threshold\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1},"
    "\"include_hourly\":{\"type\":\"boolean\"},"
    "\"date\":{\"type\":\"string\",\"format\":\"date\"},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\"},"
    "\"ticket\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2,4}-[0-9]{1,6}$\"},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":5},"
    "\"priority\":{\"enum\":[\"low\",\"medium\",\"high\",\"urgent\"]},"
    "\"notes\":{\"type\":[\"string\",\"null\"]},"
    "\"language\":{\"type\":\"string\",\"maxLength\":16},"
    "\"page\":{\"type\":\"integer\"},"
    "\"sort\":{\"type\":\"string\",\"enum\":[\"asc\",\"desc\"]},"
    "\"filters\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"field\":{\"type\":\"string\"},\"op\":{\"enum\":[\"eq\",\"ne\",\"lt\",\"gt\"]},\"value\":{\"type\":\"string\"}},"
    "\"required\":[\"field\",\"op\",\"value\"],\"additionalProperties\":false}},"
    "\"owner\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"name\":{\"type\":\"string\"}},\"required\":[\"id\"]},"
    "\"dry_run\":{\"type\":\"boolean\"},"
    "\"callback_url\":{\"type\":\"string\"}},"
    "\"required\":[\"query\",\"location\",\"unit\",\"days\",\"priority\",\"filters\",\"owner\"],"
    "\"additionalProperties\":false}";

static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* a random set bit of mask (n_words words), or -1 */
static int32_t pick(const uint32_t *mask, size_t n_words, uint32_t n_vocab, int32_t *scratch)
{
    uint32_t n = 0;
    for (size_t w = 0; w < n_words; w++) {
        uint32_t x = mask[w];
        while (x) {
            int b = __builtin_ctz(x);
            x &= x - 1;
            uint32_t id = (uint32_t)(w * 32 + (size_t)b);
            if (id < n_vocab)
                scratch[n++] = (int32_t)id;
        }
    }
    return n ? scratch[rng() % n] : -1;
}

static void report(const char *what, double *t, size_t n)
{
    if (!n)
        return;
    qsort(t, n, sizeof *t, bench_cmp_double);
    printf("  %-28s steps %6zu  p50 %7.1f us  p90 %7.1f us  p99 %7.1f us  max %8.1f us\n", what, n,
           t[n / 2] * 1e6, t[n * 9 / 10] * 1e6, t[n * 99 / 100] * 1e6, t[n - 1] * 1e6);
}

static int run_vocab(const char *path, int gens)
{
    struct ea_error err = {0};
    ea_gguf *gg = NULL;
    ea_tokenizer *tok = NULL;
    ea_grammar_vocab *v = NULL;
    if (ea_gguf_open(path, &gg, &err) != EA_OK || ea_tokenizer_create(gg, &tok, &err) != EA_OK) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return 1;
    }
    double t0 = bench_now();
    if (ea_grammar_vocab_create(tok, &v, &err) != EA_OK) {
        fprintf(stderr, "vocab: %s\n", err.msg);
        return 1;
    }
    double t1 = bench_now();
    uint32_t nv = ea_grammar_vocab_n_vocab(v);
    size_t nw = ea_grammar_mask_words(v);
    printf("%s: %u tokens, vocab index %.1f ms\n", path, nv, (t1 - t0) * 1e3);

    ea_grammar *g = NULL;
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        ea_grammar_destroy(g);
        g = NULL;
        double c0 = bench_now();
        if (ea_grammar_compile_schema_text(v, SCHEMA20, sizeof SCHEMA20 - 1, NULL, &g, &err) != EA_OK) {
            fprintf(stderr, "compile: %s\n", err.msg);
            return 1;
        }
        double c1 = bench_now();
        if (c1 - c0 < best)
            best = c1 - c0;
    }
    printf("  20-property schema: compile %.2f ms (best of 5), %zu positions\n", best * 1e3,
           ea_grammar_n_positions(g));

    uint32_t *mask = malloc(nw * sizeof *mask);
    int32_t *scratch = malloc(nv * sizeof *scratch);
    double *cold = malloc(MAX_SAMPLES * sizeof *cold), *warm = malloc(MAX_SAMPLES * sizeof *warm);
    size_t n_cold = 0, n_warm = 0, done = 0, total_tokens = 0;
    ea_grammar_matcher *m = NULL;
    if (ea_grammar_matcher_create(g, &m, &err) != EA_OK)
        return 1;
    double pc0 = 0, pc1 = 0;
    for (int gi = 0; gi < gens; gi++) {
        if (gi == 1) { /* steady state: every position's cache filled */
            pc0 = bench_now();
            ea_grammar_precompute(g, &err);
            pc1 = bench_now();
        }
        ea_grammar_matcher_reset(m);
        for (int step = 0; step < MAX_STEPS; step++) {
            double s0 = bench_now();
            ea_grammar_matcher_fill_mask(m, mask, nw, &err);
            double s1 = bench_now();
            if (gi == 0 && n_cold < MAX_SAMPLES)
                cold[n_cold++] = s1 - s0;
            else if (gi > 0 && n_warm < MAX_SAMPLES)
                warm[n_warm++] = s1 - s0;
            if (ea_grammar_matcher_is_accepting(m) && rng() % 2 == 0) {
                done++;
                break;
            }
            /* past half the budget prefer short tokens, so objects close */
            int32_t id = pick(mask, nw, nv, scratch);
            if (id < 0)
                break;
            if (step > MAX_STEPS / 2) {
                for (int tries = 0; tries < 64; tries++) {
                    const char *p;
                    size_t len;
                    ea_token_piece(tok, id, false, &p, &len);
                    if (len <= 1)
                        break;
                    id = pick(mask, nw, nv, scratch);
                }
            }
            if (ea_tokenizer_is_eog(tok, id)) {
                done++;
                break;
            }
            if (ea_grammar_matcher_accept_token(m, id, &err) != EA_OK) {
                fprintf(stderr, "accept_token after the mask allowed it: %s\n", err.msg);
                return 1;
            }
            total_tokens++;
        }
    }
    printf("  %d generations (%zu finished, %zu tokens) with random tokens from the mask:\n", gens, done,
           total_tokens);
    report("mask, cold (1st generation)", cold, n_cold);
    printf("  precompute of the remaining positions: %.1f ms\n", (pc1 - pc0) * 1e3);
    report("mask, warm (caches filled)", warm, n_warm);

    ea_grammar_destroy(g);
    g = NULL;
    double p0 = bench_now();
    ea_grammar_compile_schema_text(v, SCHEMA20, sizeof SCHEMA20 - 1, NULL, &g, &err);
    ea_grammar_precompute(g, &err);
    double p1 = bench_now();
    printf("  same schema again (the vocabulary's shared caches warm): compile + fill every position %.1f ms\n",
           (p1 - p0) * 1e3);

    /* another schema with the same kinds of fields under other names: its
     * object rule is new, its strings, numbers and enums are not */
    {
        char other[sizeof SCHEMA20 + 64];
        const char *from[] = {"\"query\"", "\"location\"", "\"days\"", "\"notes\""};
        const char *to[] = {"\"q\"", "\"place\"", "\"n_days\"", "\"remarks\""};
        snprintf(other, sizeof other, "%s", SCHEMA20);
        for (int k = 0; k < 4; k++)
            for (char *at; (at = strstr(other, from[k]));) {
                size_t fl = strlen(from[k]), tl = strlen(to[k]);
                memmove(at + tl, at + fl, strlen(at + fl) + 1);
                memcpy(at, to[k], tl);
            }
        ea_grammar *g2 = NULL;
        ea_grammar_matcher *m2 = NULL;
        if (ea_grammar_compile_schema_text(v, other, strlen(other), NULL, &g2, &err) != EA_OK ||
            ea_grammar_matcher_create(g2, &m2, &err) != EA_OK) {
            fprintf(stderr, "second schema: %s\n", err.msg);
            return 1;
        }
        size_t n2 = 0;
        for (int step = 0; step < MAX_STEPS; step++) {
            double s0 = bench_now();
            ea_grammar_matcher_fill_mask(m2, mask, nw, &err);
            cold[n2++] = bench_now() - s0;
            int32_t id = pick(mask, nw, nv, scratch);
            if (id < 0 || ea_tokenizer_is_eog(tok, id) || ea_grammar_matcher_accept_token(m2, id, &err) != EA_OK)
                break;
        }
        report("mask, cold, a 2nd schema", cold, n2);
        ea_grammar_matcher_destroy(m2);
        ea_grammar_destroy(g2);
    }

    ea_grammar *jo = NULL;
    double j0 = bench_now();
    ea_grammar_compile_json_object(v, NULL, &jo, &err);
    ea_grammar_precompute(jo, &err);
    double j1 = bench_now();
    printf("  json_object: compile + precompute %.1f ms, %zu positions\n", (j1 - j0) * 1e3,
           ea_grammar_n_positions(jo));
    ea_grammar_destroy(jo);

    ea_grammar_matcher_destroy(m);
    ea_grammar_destroy(g);
    ea_grammar_vocab_destroy(v);
    ea_tokenizer_destroy(tok);
    ea_gguf_close(gg);
    free(mask);
    free(scratch);
    free(cold);
    free(warm);
    return 0;
}

int main(int argc, char **argv)
{
    const char *paths[8];
    int np = 0, gens = 30;
    rng_state = 0x9E3779B97F4A7C15ull;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            gens = atoi(argv[++i]);
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            rng_state = strtoull(argv[++i], NULL, 10) | 1;
        else if (np < 8)
            paths[np++] = argv[i];
    }
    if (!np) {
        paths[np++] = "../shared/vocab/ggml-vocab-qwen2.gguf";
        paths[np++] = "../shared/vocab/ggml-vocab-starcoder.gguf";
    }
    for (int i = 0; i < np; i++)
        if (run_vocab(paths[i], gens))
            return 1;
    return 0;
}
