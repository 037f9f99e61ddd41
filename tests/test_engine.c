/* test_engine.c - the scheduler: continuous batching gives the same greedy
 * tokens as running each request alone; prefix caching and preemption do
 * not change outputs; a randomized load with cancellations under a tight KV
 * budget ends with every request reported and every block returned;
 * admission errors are explicit. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "edgeagent/engine.h"
#include "edgeagent/model.h"
#include "harness.h"

#define MAX_GEN 128

struct req {
    int32_t tokens[MAX_GEN];
    _Atomic int n;
    _Atomic int done;
    enum ea_finish_reason finish;
    ea_status status;
    int32_t n_cached, n_preempted;
    int stop_after; /* callback returns false after this many tokens (0 = never) */
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
        return !(r->stop_after && n + 1 >= r->stop_after);
    }
    r->finish = ev->finish;
    r->status = ev->status;
    r->n_cached = ev->n_cached;
    r->n_preempted = ev->n_preempted;
    pthread_mutex_lock(&mu);
    atomic_store(&r->done, 1);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return true;
}

static void wait_all(struct req *rs, int n)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n; i++)
        while (!atomic_load(&rs[i].done))
            pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static ea_model *load(const char *rel)
{
    struct ea_error err = {0};
    ea_model *m = NULL;
    struct ea_model_load_params lp = {.n_threads = ea_test_threads(2)};
    ASSERT_OK(ea_model_load(ea_test_shared_path(rel), &lp, &m, &err), &err);
    return m;
}

static ea_engine *start(ea_model *m, uint64_t kv_tokens, int32_t max_running, int32_t max_batch,
                        bool prefix)
{
    struct ea_engine_params p;
    ea_engine_params_default(&p);
    p.kv_mem_bytes = ea_kv_cache_bytes_per_token(m, EA_TYPE_F16) * kv_tokens;
    p.max_running = max_running;
    p.max_batch_tokens = max_batch;
    p.prefix_cache = prefix;
    p.max_queue = 4096;
    ea_engine *e = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_engine_create(m, &p, &e, &err), &err);
    return e;
}

static void submit(ea_engine *e, const int32_t *prompt, int32_t n, int32_t max_tokens, struct req *r)
{
    struct ea_engine_request q = {0};
    q.prompt = prompt;
    q.n_prompt = n;
    ea_sampling_params_default(&q.sampling);
    q.sampling.temperature = 0;
    q.max_tokens = max_tokens;
    q.ignore_eog = true;
    q.cb = on_event;
    q.user = r;
    uint64_t id;
    struct ea_error err = {0};
    ASSERT_OK(ea_engine_submit(e, &q, &id, &err), &err);
}

static void make_prompt(int32_t *p, int32_t n, int seed, int32_t vocab)
{
    p[0] = 1;
    for (int32_t i = 1; i < n; i++)
        p[i] = 3 + (int32_t)((uint32_t)(seed * 7919 + i * 104729) % (uint32_t)(vocab - 3));
}

static void expect_same(const struct req *a, const struct req *b, const char *what, int i)
{
    ASSERT_EQ(atomic_load(&a->n), atomic_load(&b->n));
    for (int k = 0; k < atomic_load(&a->n) && k < MAX_GEN; k++)
        if (a->tokens[k] != b->tokens[k])
            FAIL("%s: request %d differs at token %d (%d vs %d)", what, i, k, a->tokens[k],
                 b->tokens[k]);
}

/* 16 sequences of different lengths at once == each alone. */
static void concurrent_equals_alone(void)
{
    ea_model *m = load("models/stories260K.gguf");
    enum { N = 16 };
    static int32_t prompts[N][200];
    int32_t lens[N];
    static struct req alone[N], together[N];
    memset(alone, 0, sizeof alone);
    memset(together, 0, sizeof together);
    for (int i = 0; i < N; i++) {
        lens[i] = 1 + (i * 37) % 150;
        make_prompt(prompts[i], lens[i], i, 512);
    }
    ea_engine *e = start(m, 8192, 16, 64, false);
    for (int i = 0; i < N; i++) {
        submit(e, prompts[i], lens[i], 24 + i, &alone[i]);
        wait_all(&alone[i], 1);
    }
    for (int i = 0; i < N; i++)
        submit(e, prompts[i], lens[i], 24 + i, &together[i]);
    wait_all(together, N);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(together[i].finish, EA_FINISH_LENGTH);
        ASSERT_EQ(atomic_load(&together[i].n), 24 + i);
        expect_same(&alone[i], &together[i], "batched", i);
    }
    struct ea_engine_stats st;
    ea_engine_get_stats(e, &st);
    ASSERT_EQ(st.kv_blocks_used, 0);
    printf("    16 concurrent: decode %.0f tok/s aggregate, prefill %.0f tok/s (stories260K)\n",
           st.decode_tok_s, st.prefill_tok_s);
    ea_engine_destroy(e);
    ea_model_destroy(m);
}

/* A shared prefix: the second request reuses cached blocks, same output. */
static void prefix_cache_hits(void)
{
    ea_model *m = load("reference/models/ref-qwen2-F32.gguf");
    static int32_t a[300], b[300];
    make_prompt(a, 300, 1, 512);
    memcpy(b, a, sizeof a);
    for (int i = 200; i < 300; i++)
        b[i] = 3 + (a[i] * 31 + 7) % 509; /* diverges after 200 tokens */
    static struct req cold, warm, ref;
    memset(&cold, 0, sizeof cold);
    memset(&warm, 0, sizeof warm);
    memset(&ref, 0, sizeof ref);
    ea_engine *nocache = start(m, 4096, 4, 128, false);
    submit(nocache, b, 300, 16, &ref);
    wait_all(&ref, 1);
    ea_engine_destroy(nocache);
    ea_engine *e = start(m, 4096, 4, 128, true);
    submit(e, a, 300, 16, &cold);
    wait_all(&cold, 1);
    submit(e, b, 300, 16, &warm);
    wait_all(&warm, 1);
    ASSERT_EQ(cold.n_cached, 0);
    ASSERT_EQ(warm.n_cached, 192); /* 12 full 16-token blocks of the shared 200 */
    expect_same(&ref, &warm, "prefix-cached", 0);
    /* the same prompt again: everything but the last block comes from cache */
    static struct req again;
    memset(&again, 0, sizeof again);
    submit(e, a, 300, 16, &again);
    wait_all(&again, 1);
    ASSERT_EQ(again.n_cached, 288);
    expect_same(&cold, &again, "fully cached", 0);
    struct ea_engine_stats st;
    ea_engine_get_stats(e, &st);
    ASSERT_EQ(st.kv_blocks_used, 0);
    ASSERT(st.kv_blocks_cached > 0);
    ea_engine_destroy(e);
    ea_model_destroy(m);
}

/* A KV pool too small for all sequences at once forces preemption; outputs
 * stay identical to uninterrupted runs. */
static void preemption_is_invisible(void)
{
    ea_model *m = load("models/stories260K.gguf");
    enum { N = 8 };
    static int32_t prompts[N][64];
    static struct req alone[N], squeezed[N];
    memset(alone, 0, sizeof alone);
    memset(squeezed, 0, sizeof squeezed);
    for (int i = 0; i < N; i++)
        make_prompt(prompts[i], 40, 100 + i, 512);
    ea_engine *e = start(m, 4096, 8, 512, false);
    for (int i = 0; i < N; i++) {
        submit(e, prompts[i], 40, 100, &alone[i]);
        wait_all(&alone[i], 1);
    }
    ea_engine_destroy(e);
    /* 8 x 140 tokens need 72 blocks; give 40 */
    e = start(m, 40 * 16, 8, 512, false);
    for (int i = 0; i < N; i++)
        submit(e, prompts[i], 40, 100, &squeezed[i]);
    wait_all(squeezed, N);
    int preempted = 0;
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(squeezed[i].finish, EA_FINISH_LENGTH);
        expect_same(&alone[i], &squeezed[i], "preempted", i);
        preempted += squeezed[i].n_preempted;
    }
    struct ea_engine_stats st;
    ea_engine_get_stats(e, &st);
    printf("    %d preemptions, peak %u of %u blocks\n", preempted, st.peak_kv_blocks_used,
           st.kv_blocks_total);
    ASSERT(preempted > 0);
    ASSERT_EQ(st.kv_blocks_used, 0);
    ea_engine_destroy(e);
    ea_model_destroy(m);
}

static void admission_errors(void)
{
    ea_model *m = load("models/stories260K.gguf");
    struct ea_engine_params p;
    ea_engine_params_default(&p);
    p.kv_mem_bytes = ea_kv_cache_bytes_per_token(m, EA_TYPE_F16) * 1024;
    p.max_queue = 2;
    p.max_running = 1;
    ea_engine *e = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_engine_create(m, &p, &e, &err), &err);
    static int32_t big[2000];
    make_prompt(big, 2000, 3, 512);
    struct ea_engine_request q = {0};
    q.prompt = big;
    q.n_prompt = 2000;
    ea_sampling_params_default(&q.sampling);
    q.max_tokens = 4;
    q.cb = on_event;
    uint64_t id;
    ASSERT_EQ(ea_engine_submit(e, &q, &id, &err), EA_ETOOBIG);
    ASSERT(strstr(err.msg, "context") != NULL);
    q.n_prompt = 10;
    q.max_tokens = 0;
    ASSERT_EQ(ea_engine_submit(e, &q, &id, &err), EA_EINVAL);
    q.max_tokens = 4;
    big[3] = 999999;
    ASSERT_EQ(ea_engine_submit(e, &q, &id, &err), EA_EINVAL);
    big[3] = 5;
    q.sampling.top_p = 5;
    ASSERT_EQ(ea_engine_submit(e, &q, &id, &err), EA_EINVAL);
    ea_sampling_params_default(&q.sampling);
    /* fill the queue faster than a 1-slot engine drains long requests */
    static struct req rs[64];
    memset(rs, 0, sizeof rs);
    int accepted = 0, overloaded = 0;
    q.max_tokens = 200;
    q.n_prompt = 100;
    for (int i = 0; i < 64; i++) {
        q.user = &rs[i];
        ea_status s = ea_engine_submit(e, &q, &id, &err);
        if (s == EA_OK)
            accepted++;
        else {
            ASSERT_EQ(s, EA_EOVERLOADED);
            atomic_store(&rs[i].done, 1); /* no callback will come */
            overloaded++;
        }
    }
    ASSERT(overloaded > 0);
    wait_all(rs, 64);
    ea_engine_destroy(e);
    ea_model_destroy(m);
}

static void stop_from_callback_and_cancel(void)
{
    ea_model *m = load("models/stories260K.gguf");
    ea_engine *e = start(m, 2048, 4, 64, true);
    static int32_t pr[20];
    make_prompt(pr, 20, 9, 512);
    static struct req r1, r2;
    memset(&r1, 0, sizeof r1);
    memset(&r2, 0, sizeof r2);
    r1.stop_after = 5;
    submit(e, pr, 20, 100, &r1);
    wait_all(&r1, 1);
    ASSERT_EQ(r1.finish, EA_FINISH_STOP);
    ASSERT_EQ(atomic_load(&r1.n), 5);
    /* cancel a long request mid-way */
    struct ea_engine_request q = {0};
    q.prompt = pr;
    q.n_prompt = 20;
    ea_sampling_params_default(&q.sampling);
    q.max_tokens = 1000;
    q.ignore_eog = true;
    q.cb = on_event;
    q.user = &r2;
    uint64_t id;
    struct ea_error err = {0};
    ASSERT_OK(ea_engine_submit(e, &q, &id, &err), &err);
    while (atomic_load(&r2.n) < 3)
        usleep(100);
    ASSERT(ea_engine_cancel(e, id));
    wait_all(&r2, 1);
    ASSERT_EQ(r2.finish, EA_FINISH_CANCELLED);
    ASSERT(atomic_load(&r2.n) < 1000);
    ASSERT(!ea_engine_cancel(e, id)); /* already gone */
    struct ea_engine_stats st;
    ea_engine_get_stats(e, &st);
    ASSERT_EQ(st.kv_blocks_used, 0);
    ea_engine_destroy(e);
    ea_model_destroy(m);
}

/* Thousands of random requests, cancellations and a tight pool. */
static void randomized_load(void)
{
    ea_model *m = load("models/stories260K.gguf");
    /* EA_TEST_LOAD_N shrinks the run under ThreadSanitizer (CI) */
    const char *env = getenv("EA_TEST_LOAD_N");
    const int N = env && atoi(env) > 0 ? atoi(env) : 2000;
    struct req *rs = calloc(N, sizeof *rs);
    uint64_t *ids = calloc(N, sizeof *ids);
    int32_t *prompt = malloc(sizeof(int32_t) * 300);
    ea_engine *e = start(m, 64 * 16, 12, 96, true);
    uint64_t rng = 77;
    int submitted = 0, rejected = 0, cancel_calls = 0;
    for (int i = 0; i < N; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        int32_t len = 1 + (int32_t)((rng >> 33) % 120);
        /* a few shared prefixes to exercise the prefix cache */
        make_prompt(prompt, len, (int)((rng >> 20) % 5), 512);
        for (int32_t k = len / 2; k < len; k++)
            prompt[k] = 3 + (int32_t)((rng >> (k % 30)) % 509);
        struct ea_engine_request q = {0};
        q.prompt = prompt;
        q.n_prompt = len;
        ea_sampling_params_default(&q.sampling);
        q.sampling.seed = rng;
        q.max_tokens = 1 + (int32_t)((rng >> 40) % 24);
        q.priority = (int32_t)((rng >> 50) % 3);
        q.ignore_eog = (rng >> 7) & 1;
        q.cb = on_event;
        q.user = &rs[i];
        struct ea_error err = {0};
        ea_status s = ea_engine_submit(e, &q, &ids[i], &err);
        if (s != EA_OK) {
            ASSERT(s == EA_EOVERLOADED);
            atomic_store(&rs[i].done, 1);
            rejected++;
            continue;
        }
        submitted++;
        if ((rng >> 13) % 7 == 0 && i > 3) {
            ea_engine_cancel(e, ids[i - (int)((rng >> 3) % 4)]);
            cancel_calls++;
        }
        if (i % 100 == 0)
            usleep(2000);
    }
    wait_all(rs, N);
    int by_reason[5] = {0};
    for (int i = 0; i < N; i++)
        if (ids[i]) {
            ASSERT(rs[i].finish != EA_FINISH_NONE);
            ASSERT(rs[i].finish != EA_FINISH_ERROR);
            by_reason[rs[i].finish]++;
        }
    struct ea_engine_stats st;
    ea_engine_get_stats(e, &st);
    printf("    %d submitted (%d overloaded), %d cancel calls: stop %d, length %d, cancelled %d; "
           "%" PRIu64 " preemptions, %" PRIu64 " prompt tokens from cache\n",
           submitted, rejected, cancel_calls, by_reason[EA_FINISH_STOP],
           by_reason[EA_FINISH_LENGTH], by_reason[EA_FINISH_CANCELLED], st.preemptions,
           st.tokens_cached);
    ASSERT_EQ(st.kv_blocks_used, 0);
    ASSERT_EQ(st.running, 0);
    ASSERT_EQ(st.queue_depth, 0);
    ASSERT_EQ((int)st.requests_done, submitted);
    ea_engine_destroy(e);
    ea_model_destroy(m);
    free(rs);
    free(ids);
    free(prompt);
}

EA_TESTS(EA_TEST(concurrent_equals_alone), EA_TEST(prefix_cache_hits),
         EA_TEST(preemption_is_invisible), EA_TEST(admission_errors),
         EA_TEST(stop_from_callback_and_cancel), EA_TEST(randomized_load))
