/* test_constrained.c - constrained decoding inside sampling and the engine:
 * the masked sampler never picks a token the mask forbids under any sampler
 * setting (temperature, top-k/p, min-p, typical, penalties, a logit bias
 * pushing forbidden tokens); the engine runs a grammar per sequence in its
 * batched decode, at temperature 1 on a real model (stories260K): 1,054
 * generations over the 62 schemas of tests/data/grammar_schemas.json, and
 * every finished output is JSON valid under its schema (ajv, draft 2020-12,
 * with formats, through tests/node/validate_schema.mjs; skipped when
 * node_modules is absent); constrained greedy outputs are the same alone and
 * batched; a lazy grammar (grammar_trigger) starts at its trigger. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include "edgeagent/engine.h"
#include "edgeagent/grammar.h"
#include "edgeagent/model.h"
#include "edgeagent/tokenizer.h"
#include "harness.h"

#define MAX_GEN 600

/* ---- the masked sampler ------------------------------------------------------ */

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static void sampler_respects_mask(void)
{
    enum { V = 1000, W = (V + 31) / 32 };
    static float logits[V];
    static uint32_t mask[W];
    struct ea_logit_bias bias[8];
    struct ea_error err = {0};
    for (int setting = 0; setting < 8; setting++) {
        struct ea_sampling_params p;
        ea_sampling_params_default(&p);
        p.seed = (uint64_t)setting;
        switch (setting) {
        case 0: p.temperature = 0; break;
        case 1: p.temperature = 1; p.top_k = 0; p.top_p = 1; p.min_p = 0; break;
        case 2: p.temperature = 1.5f; p.top_k = 5; break;
        case 3: p.temperature = 1; p.top_p = 0.5f; p.top_k = 0; break;
        case 4: p.temperature = 1; p.min_p = 0.2f; p.top_k = 0; break;
        case 5: p.temperature = 1; p.typical_p = 0.7f; p.top_k = 0; break;
        case 6: p.temperature = 1; p.repeat_penalty = 1.5f; p.presence_penalty = 1;
                p.frequency_penalty = 1; p.penalty_last_n = -1; break;
        default: p.temperature = 0.7f; break;
        }
        /* the bias pushes forbidden tokens to the top (and, in setting 7,
         * bans every allowed one: the draw must still stay inside the mask) */
        p.logit_bias = bias;
        p.n_logit_bias = 8;
        ea_sampler *s = NULL;
        for (int step = 0; step < 300; step++) {
            memset(mask, 0, sizeof mask);
            int32_t allowed[V];
            int n_allowed = 0;
            int k = 1 + (int)(rnd() % 40);
            for (int i = 0; i < k; i++) {
                int32_t id = (int32_t)(rnd() % V);
                if (!(mask[id / 32] >> (id % 32) & 1u))
                    allowed[n_allowed++] = id;
                mask[id / 32] |= 1u << (id % 32);
            }
            for (int i = 0; i < V; i++)
                logits[i] = (float)((double)(rnd() % 20000) / 1000.0 - 10.0);
            for (int i = 0; i < 8; i++) {
                int32_t id = (int32_t)(rnd() % V);
                bool in = mask[id / 32] >> (id % 32) & 1u;
                if (setting == 7 && i < n_allowed)
                    bias[i] = (struct ea_logit_bias){allowed[i], -INFINITY};
                else
                    bias[i] = (struct ea_logit_bias){id, in ? 0.0f : 100.0f};
            }
            ea_sampler_destroy(s);
            s = NULL;
            ASSERT_OK(ea_sampler_create(&p, V, &s, &err), &err);
            for (int i = 0; i < 20; i++)
                ea_sampler_accept(s, (int32_t)(rnd() % V));
            struct ea_sample_result r;
            ea_sampler_sample_masked(s, logits, mask, W, &r);
            if (!(r.token >= 0 && r.token < V && (mask[r.token / 32] >> (r.token % 32) & 1u)))
                FAIL("setting %d step %d: token %d is not allowed by the mask", setting, step,
                     r.token);
        }
        ea_sampler_destroy(s);
    }
    /* a mask shorter than the vocabulary: the tail is forbidden */
    struct ea_sampling_params p;
    ea_sampling_params_default(&p);
    p.temperature = 1;
    ea_sampler *s = NULL;
    ASSERT_OK(ea_sampler_create(&p, V, &s, &err), &err);
    for (int i = 0; i < V; i++)
        logits[i] = i >= 64 ? 50.0f : 0.0f;
    uint32_t two[2] = {UINT32_MAX, UINT32_MAX};
    for (int step = 0; step < 50; step++) {
        struct ea_sample_result r;
        ea_sampler_sample_masked(s, logits, two, 2, &r);
        ASSERT(r.token >= 0 && r.token < 64);
    }
    ea_sampler_destroy(s);
}

/* ---- the engine ---------------------------------------------------------------- */

struct req {
    int32_t tokens[MAX_GEN];
    _Atomic int n;
    _Atomic int done;
    enum ea_finish_reason finish;
    ea_status status;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static bool on_event(const struct ea_engine_event *ev)
{
    struct req *r = ev->user;
    if (ev->kind == EA_EVENT_TOKEN) {
        int n = atomic_load(&r->n);
        if (n < MAX_GEN)
            r->tokens[n] = ev->sample->token;
        atomic_store(&r->n, n + 1);
        return true;
    }
    r->finish = ev->finish;
    r->status = ev->status;
    pthread_mutex_lock(&mu);
    atomic_store(&r->done, 1);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return true;
}

static void wait_all(struct req *r, int n)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n; i++)
        while (!atomic_load(&r[i].done))
            pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

struct rig {
    ea_model *m;
    ea_tokenizer *tok;
    ea_grammar_vocab *v;
    ea_engine *e;
};

static void rig_open(struct rig *g, const char *rel, int32_t max_running)
{
    struct ea_error err = {0};
    struct ea_model_load_params lp = {.n_threads = ea_test_threads(2)};
    ASSERT_OK(ea_model_load(ea_test_shared_path(rel), &lp, &g->m, &err), &err);
    ASSERT_OK(ea_tokenizer_create(ea_model_gguf(g->m), &g->tok, &err), &err);
    ASSERT_OK(ea_grammar_vocab_create(g->tok, &g->v, &err), &err);
    struct ea_engine_params p;
    ea_engine_params_default(&p);
    p.kv_mem_bytes = ea_kv_cache_bytes_per_token(g->m, EA_TYPE_F16) * 16384;
    p.max_running = max_running;
    p.max_queue = 4096;
    int32_t eos = ea_tokenizer_eos(g->tok);
    p.eog_tokens = &eos;
    p.n_eog_tokens = 1;
    ASSERT_OK(ea_engine_create(g->m, &p, &g->e, &err), &err);
}

static void rig_close(struct rig *g)
{
    ea_engine_destroy(g->e);
    ea_grammar_vocab_destroy(g->v);
    ea_tokenizer_destroy(g->tok);
    ea_model_destroy(g->m);
}

static void submit(struct rig *g, const ea_grammar *gr, const struct ea_sampling_params *sp,
                   int32_t max_tokens, bool ignore_eog, struct req *r)
{
    struct ea_error err = {0};
    int32_t prompt[8];
    size_t n = 0;
    ASSERT_OK(ea_tokenize(g->tok, "Once upon a time", 16, EA_TOK_ADD_SPECIAL, prompt, 8, &n, &err),
              &err);
    struct ea_engine_request q = {0};
    q.prompt = prompt;
    q.n_prompt = (int32_t)n;
    q.sampling = *sp;
    q.max_tokens = max_tokens;
    q.ignore_eog = ignore_eog;
    q.grammar = gr;
    q.cb = on_event;
    q.user = r;
    uint64_t id;
    ASSERT_OK(ea_engine_submit(g->e, &q, &id, &err), &err);
}

/* The text of r's tokens (detokenized without specials). */
static char *text_of(struct rig *g, const struct req *r, size_t *len)
{
    struct ea_error err = {0};
    size_t need = 0;
    int n = atomic_load(&r->n);
    ea_detokenize(g->tok, r->tokens, (size_t)n, 0, NULL, 0, &need, &err);
    char *t = malloc(need + 1);
    ASSERT(t);
    ASSERT_OK(ea_detokenize(g->tok, r->tokens, (size_t)n, 0, t, need + 1, len, &err), &err);
    return t;
}

static const char *source_dir(void)
{
    const char *src = getenv("EA_SOURCE_DIR");
    if (src && *src)
        return src;
    return access("tests/data/grammar_schemas.json", R_OK) == 0 ? "." : "..";
}

/* Every schema of tests/data/grammar_schemas.json, GEN_PER generations each,
 * 16 at a time in the engine at temperature 1 under varied sampler settings;
 * the finished outputs go to ajv. */
#define GEN_PER 17
static void engine_schemas_ajv(void)
{
    struct rig g = {0};
    rig_open(&g, "models/stories260K.gguf", 16);
    const char *src = source_dir();
    char spath[4096], npath[4096];
    snprintf(spath, sizeof spath, "%s/tests/data/grammar_schemas.json", src);
    json_error_t je;
    json_t *all = json_load_file(spath, 0, &je);
    if (!all)
        FAIL("%s: %s", spath, je.text);
    size_t ns = json_array_size(all);
    ASSERT(ns >= 50);
    ea_grammar **gr = calloc(ns, sizeof *gr);
    struct req *rq = calloc(ns * GEN_PER, sizeof *rq);
    ASSERT(gr && rq);
    struct ea_error err = {0};
    for (size_t i = 0; i < ns; i++)
        ASSERT_OK(ea_grammar_compile_schema(g.v, json_array_get(all, i), NULL, &gr[i], &err), &err);
    /* EA_TEST_LOAD_N shrinks the run under emulation and sanitizers (CI) */
    size_t gen_per = GEN_PER;
    const char *env = getenv("EA_TEST_LOAD_N");
    if (env && atoi(env) > 0)
        gen_per = (size_t)atoi(env) / ns > 0 ? (size_t)atoi(env) / ns : 1;
    if (gen_per > GEN_PER)
        gen_per = GEN_PER;
    size_t total = ns * gen_per;
    for (size_t i = 0; i < total; i++) {
        struct ea_sampling_params sp;
        ea_sampling_params_default(&sp);
        sp.seed = i;
        sp.temperature = 1;
        switch (i % 4) {
        case 0: sp.top_k = 0; sp.top_p = 1; sp.min_p = 0; break;
        case 1: sp.top_p = 0.9f; break;
        case 2: sp.repeat_penalty = 1.3f; sp.presence_penalty = 0.5f; break;
        default: sp.min_p = 0.1f; break;
        }
        submit(&g, gr[i / gen_per], &sp, MAX_GEN, false, &rq[i]);
    }
    wait_all(rq, (int)total);
    const char *opath = ea_test_tmp_path("constrained_outputs.jsonl");
    FILE *f = fopen(opath, "w");
    ASSERT(f);
    size_t finished = 0;
    for (size_t i = 0; i < total; i++) {
        ASSERT_EQ(rq[i].status, EA_OK);
        if (rq[i].finish != EA_FINISH_STOP)
            continue; /* max_tokens: a prefix, not checked */
        finished++;
        size_t n;
        char *t = text_of(&g, &rq[i], &n);
        json_t *parsed = json_loadb(t, n, JSON_DECODE_ANY, &je);
        /* JSON numbers have no size limit (RFC 8259); jansson refuses those
         * beyond a double or an int64, JavaScript's JSON.parse (ajv below)
         * takes them */
        if (!parsed && !strstr(je.text, "overflow") && !strstr(je.text, "too big"))
            FAIL("schema %zu: the output is not JSON (%s): %s", i / gen_per, je.text, t);
        json_decref(parsed);
        json_t *line = json_pack("{s:i,s:s%}", "schema", (json_int_t)(i / gen_per), "text", t, n);
        char *txt = json_dumps(line, JSON_COMPACT);
        fprintf(f, "%s\n", txt);
        free(txt);
        json_decref(line);
        free(t);
    }
    fclose(f);
    printf("  %zu of %zu constrained generations finished within %d tokens\n", finished, total,
           MAX_GEN);
    ASSERT(finished * 10 >= total * 8);
    for (size_t i = 0; i < ns; i++)
        ea_grammar_destroy(gr[i]);
    free(gr);
    free(rq);
    json_decref(all);
    rig_close(&g);
    snprintf(npath, sizeof npath, "%s/tests/node/node_modules/ajv-formats/package.json", src);
    if (access(npath, R_OK) != 0)
        SKIP("outputs parse as JSON; %s missing, Ajv validation skipped", npath);
    char cmd[12288];
    snprintf(cmd, sizeof cmd, "node '%s/tests/node/validate_schema.mjs' '%s' '%s'", src, spath, opath);
    char *o = NULL, *e = NULL;
    int rc = ea_test_run(cmd, &o, &e);
    printf("  %s", o ? o : "");
    if (rc != 0)
        FAIL("Ajv rejected outputs (rc %d): %s %s", rc, o ? o : "", e ? e : "");
    free(o);
    free(e);
}

/* A 4-token request of one prompt token under gr (for submits that must
 * be refused). */
static struct ea_engine_request small_request(const int32_t *prompt, const ea_grammar *gr)
{
    struct ea_engine_request q = {0};
    q.prompt = prompt;
    q.n_prompt = 1;
    ea_sampling_params_default(&q.sampling);
    q.max_tokens = 4;
    q.grammar = gr;
    return q;
}

/* Constrained greedy outputs: 16 batched == each alone; a regex grammar ends
 * the sequence by itself (ignore_eog set); a choice grammar's output is one
 * of the choices. */
static void engine_batch_invariant(void)
{
    struct rig g = {0};
    rig_open(&g, "models/stories260K.gguf", 16);
    struct ea_error err = {0};
    ea_grammar *schema = NULL, *re = NULL, *ch = NULL;
    const char *sch = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":20},"
                      "\"age\":{\"type\":\"integer\"},\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\"]},"
                      "\"maxItems\":3}},\"required\":[\"name\",\"age\",\"tags\"],\"additionalProperties\":false}";
    ASSERT_OK(ea_grammar_compile_schema_text(g.v, sch, strlen(sch), NULL, &schema, &err), &err);
    ASSERT_OK(ea_grammar_compile_regex(g.v, "[a-z]{3,8}-[0-9]{2}", 19, NULL, &re, &err), &err);
    const char *choices[] = {"happy", "sad", "Once upon a time"};
    ASSERT_OK(ea_grammar_compile_choice(g.v, choices, 3, NULL, &ch, &err), &err);
    ea_grammar *grs[3] = {schema, re, ch};
    enum { N = 16 };
    static struct req alone[N], together[N];
    memset(alone, 0, sizeof alone);
    memset(together, 0, sizeof together);
    struct ea_sampling_params sp;
    for (int i = 0; i < N; i++) {
        ea_sampling_params_default(&sp);
        sp.temperature = i % 2 ? 0 : 1;
        sp.seed = 100 + (uint64_t)i;
        submit(&g, grs[i % 3], &sp, 200, true, &alone[i]);
        wait_all(&alone[i], 1);
    }
    for (int i = 0; i < N; i++) {
        ea_sampling_params_default(&sp);
        sp.temperature = i % 2 ? 0 : 1;
        sp.seed = 100 + (uint64_t)i;
        submit(&g, grs[i % 3], &sp, 200, true, &together[i]);
    }
    wait_all(together, N);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(alone[i].n, together[i].n);
        for (int k = 0; k < atomic_load(&alone[i].n); k++)
            if (alone[i].tokens[k] != together[i].tokens[k])
                FAIL("request %d differs at token %d", i, k);
        ASSERT_EQ(together[i].finish, EA_FINISH_STOP);
        size_t n;
        char *t = text_of(&g, &together[i], &n);
        if (i % 3 == 0) {
            json_error_t je;
            json_t *j = json_loadb(t, n, 0, &je);
            if (!j)
                FAIL("request %d: not JSON: %s", i, t);
            ASSERT(json_is_integer(json_object_get(j, "age")));
            json_decref(j);
        } else if (i % 3 == 1) {
            ASSERT(n >= 6 && n <= 11 && t[n - 3] == '-');
        } else {
            ASSERT(!strcmp(t, "happy") || !strcmp(t, "sad") || !strcmp(t, "Once upon a time"));
        }
        free(t);
    }
    /* a grammar on a bigger vocabulary than the model's is refused */
    ea_grammar_vocab *big = NULL;
    enum { BIG = 1000 };
    static const char *pieces[BIG];
    static uint32_t lens[BIG];
    for (int i = 0; i < BIG; i++)
        pieces[i] = "a", lens[i] = 1;
    int32_t eos = 0;
    ASSERT_OK(ea_grammar_vocab_create_raw(BIG, pieces, lens, &eos, 1, &big, &err), &err);
    ea_grammar *bg = NULL;
    ASSERT_OK(ea_grammar_compile_regex(big, "a+", 2, NULL, &bg, &err), &err);
    int32_t prompt[1] = {1};
    struct ea_engine_request q = small_request(prompt, bg);
    q.cb = on_event;
    uint64_t id;
    ASSERT_EQ(ea_engine_submit(g.e, &q, &id, &err), EA_EINVAL);
    ea_grammar_destroy(bg);
    ea_grammar_vocab_destroy(big);
    ea_grammar_destroy(schema);
    ea_grammar_destroy(re);
    ea_grammar_destroy(ch);
    rig_close(&g);
}


/* n generations (seeds 0..n-1, temperature 1, up to 300 tokens) after
 * "Once upon a time, there was a" under gr, waiting for the text trigger or
 * (trigger NULL, token not EA_TOKEN_NONE) for the token; waits for all. */
static void story_runs(struct rig *g, const ea_grammar *gr, const char *trigger, int32_t token, struct req *rq,
                       int n)
{
    memset(rq, 0, sizeof *rq * (size_t)n);
    struct ea_error err = {0};
    for (int i = 0; i < n; i++) {
        struct ea_engine_request q = {0};
        int32_t prompt[16];
        size_t np = 0;
        ASSERT_OK(ea_tokenize(g->tok, "Once upon a time, there was a", 29, EA_TOK_ADD_SPECIAL, prompt, 16, &np,
                              &err),
                  &err);
        q.prompt = prompt;
        q.n_prompt = (int32_t)np;
        ea_sampling_params_default(&q.sampling);
        q.sampling.temperature = 1;
        q.sampling.seed = (uint64_t)i;
        q.max_tokens = 300;
        q.grammar = gr;
        q.grammar_trigger = trigger;
        q.has_trigger_token = !trigger && token != EA_TOKEN_NONE;
        q.grammar_trigger_token = token;
        q.cb = on_event;
        q.user = &rq[i];
        uint64_t id;
        ASSERT_OK(ea_engine_submit(g->e, &q, &id, &err), &err);
    }
    wait_all(rq, n);
}

/* A lazy grammar (grammar_trigger): unconstrained until the trigger shows up
 * in the generated bytes, then constrained to the end (stories260K writes a
 * few free words after "Once upon a time, there was a", then the trigger
 * ".", a token of its own). */
static void engine_lazy_trigger(void)
{
    struct rig g = {0};
    rig_open(&g, "models/stories260K.gguf", 16);
    struct ea_error err = {0};
    ea_grammar *gr = NULL;
    ASSERT_OK(ea_grammar_compile_regex(g.v, "[.] [0-9]{3}!", 13, NULL, &gr, &err), &err);
    enum { N = 16 };
    static struct req rq[N];
    story_runs(&g, gr, ".", EA_TOKEN_NONE, rq, N);
    struct ea_error e2 = {0};
    int constrained = 0;
    for (int i = 0; i < N; i++) {
        size_t n;
        char *t = text_of(&g, &rq[i], &n);
        char *at = strchr(t, '.');
        if (at && at > t) { /* free text first, then the trigger */
            /* from the first "," on, the output is the grammar's (when the
             * token that brought it ended right after it; else the grammar
             * is dropped) */
            size_t rest = strlen(at);
            bool shape = rest == 6 && at[1] == ' ' && at[2] >= '0' && at[2] <= '9' && at[3] >= '0' &&
                         at[3] <= '9' && at[4] >= '0' && at[4] <= '9' && at[5] == '!';
            if (shape)
                ASSERT_EQ(rq[i].finish, EA_FINISH_STOP);
            constrained += shape;
        }
        if (getenv("EA_TEST_VERBOSE"))
            printf("  [%d] finish %d: %s\n", i, rq[i].finish, t);
        free(t);
    }
    printf("  %d of %d generations constrained after the trigger\n", constrained, N);
    ASSERT(constrained >= N / 2);
    /* a trigger too long is refused */
    char longt[EA_ENGINE_MAX_TRIGGER + 2];
    memset(longt, 'a', sizeof longt - 1);
    longt[sizeof longt - 1] = '\0';
    int32_t prompt[1] = {1};
    struct ea_engine_request q = small_request(prompt, gr);
    q.grammar_trigger = longt;
    q.cb = on_event;
    uint64_t id;
    ASSERT_EQ(ea_engine_submit(g.e, &q, &id, &e2), EA_EINVAL);
    ea_grammar_destroy(gr);
    rig_close(&g);
}

/* A lazy grammar on a token trigger (has_trigger_token): unconstrained until
 * the token is generated, then the grammar (which does not hold the token:
 * a control token has no text to match) constrains what follows. The token
 * here is "." of stories260K; the grammar " [0-9]{3}!". */
static void engine_token_trigger(void)
{
    struct rig g = {0};
    rig_open(&g, "models/stories260K.gguf", 16);
    struct ea_error err = {0};
    ea_grammar *gr = NULL;
    ASSERT_OK(ea_grammar_compile_regex(g.v, " [0-9]{3}!", 10, NULL, &gr, &err), &err);
    int32_t dot = ea_tokenizer_find(g.tok, ".", 1);
    ASSERT(dot >= 0);
    enum { N = 16 };
    static struct req rq[N];
    story_runs(&g, gr, NULL, dot, rq, N);
    int triggered = 0;
    for (int i = 0; i < N; i++) {
        /* the first "." token, then exactly the grammar's text */
        int k = 0;
        while (k < rq[i].n && rq[i].tokens[k] != dot)
            k++;
        if (k == rq[i].n)
            continue;
        triggered++;
        size_t tn = 0, pn = 0;
        char *t = text_of(&g, &rq[i], &tn);
        /* the text of the tokens up to the trigger: a prefix of the whole */
        char head[4096];
        ASSERT_OK(ea_detokenize(g.tok, rq[i].tokens, (size_t)k + 1, 0, head, sizeof head, &pn, &err), &err);
        ASSERT(pn <= tn && !memcmp(head, t, pn));
        const char *rest = t + pn;
        size_t rn = tn - pn;
        if (getenv("EA_TEST_VERBOSE"))
            printf("  [%d] finish %d: %s\n", i, rq[i].finish, t);
        bool shape = rn == 5 && rest[0] == ' ' && rest[1] >= '0' && rest[1] <= '9' && rest[2] >= '0' &&
                     rest[2] <= '9' && rest[3] >= '0' && rest[3] <= '9' && rest[4] == '!';
        if (!shape)
            FAIL("generation %d after the trigger token: '%s' (whole: '%s')", i, rest, t);
        ASSERT_EQ(rq[i].finish, EA_FINISH_STOP);
        free(t);
    }
    printf("  %d of %d generations reached the trigger token; each constrained after it\n", triggered, N);
    ASSERT(triggered >= N / 2);
    /* a token outside the vocabulary is refused */
    int32_t prompt[1] = {1};
    struct ea_engine_request q = small_request(prompt, gr);
    q.has_trigger_token = true;
    q.grammar_trigger_token = (int32_t)ea_tokenizer_n_vocab(g.tok);
    q.cb = on_event;
    uint64_t id;
    ASSERT_EQ(ea_engine_submit(g.e, &q, &id, &err), EA_EINVAL);
    ea_grammar_destroy(gr);
    rig_close(&g);
}

EA_TESTS(EA_TEST(sampler_respects_mask), EA_TEST(engine_batch_invariant), EA_TEST(engine_lazy_trigger), EA_TEST(engine_token_trigger),
         EA_TEST(engine_schemas_ajv))
