/* test_sampling.c - the sampler chain on constructed logits (each truncation
 * keeps exactly what it should), seeded reproducibility, penalties, bias,
 * logprobs, and stop strings split across pieces. */
#include <math.h>
#include <stdlib.h>

#include "edgeagent/engine.h"
#include "harness.h"

#define V 8

static ea_sampler *make(struct ea_sampling_params *p)
{
    ea_sampler *s = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_sampler_create(p, V, &s, &err), &err);
    return s;
}

/* logits whose softmax is the given probabilities */
static void logits_from_probs(const double *prob, float *l)
{
    for (int i = 0; i < V; i++)
        l[i] = prob[i] > 0 ? (float)log(prob[i]) : -INFINITY;
}

/* Draws n tokens; counts[i] = how often i came out. */
static void draw(ea_sampler *s, const float *l, int n, int *counts)
{
    memset(counts, 0, sizeof(int) * V);
    for (int i = 0; i < n; i++) {
        struct ea_sample_result r;
        ea_sampler_sample(s, l, &r);
        ASSERT(r.token >= 0 && r.token < V);
        counts[r.token]++;
    }
}

static const double probs[V] = {0.40, 0.25, 0.15, 0.10, 0.05, 0.03, 0.015, 0.005};

static struct ea_sampling_params plain(void)
{
    struct ea_sampling_params p;
    ea_sampling_params_default(&p);
    p.top_k = 0, p.top_p = 1, p.min_p = 0, p.temperature = 1, p.seed = 7;
    return p;
}

/* top_p 0 (OpenAI's lower bound, which the server accepts) keeps only the
 * most likely token: it was refused by the sampler, so a request with it got
 * a 500. */
static void top_p_zero_keeps_the_top_token(void)
{
    float l[V];
    logits_from_probs(probs, l);
    struct ea_sampling_params p = plain();
    p.top_p = 0;
    ea_sampler *s = make(&p);
    int counts[V];
    draw(s, l, 500, counts);
    ASSERT_EQ(counts[0], 500);
    ea_sampler_destroy(s);
}

static void greedy(void)
{
    struct ea_sampling_params p = plain();
    p.temperature = 0;
    ea_sampler *s = make(&p);
    float l[V] = {1, 5, 3, 5, -2, 0, 0, 0};
    struct ea_sample_result r;
    ea_sampler_sample(s, l, &r);
    ASSERT_EQ(r.token, 1); /* tie between 1 and 3: lowest id */
    ASSERT(isnan(r.logprob));
    ASSERT_EQ(l[1], 5.0f); /* caller's logits untouched */
    ea_sampler_destroy(s);
}

static void seed_reproduces(void)
{
    float l[V];
    logits_from_probs(probs, l);
    struct ea_sampling_params p = plain();
    int32_t a[200], b[200], c[200];
    for (int run = 0; run < 3; run++) {
        p.seed = run == 2 ? 8 : 7;
        ea_sampler *s = make(&p);
        for (int i = 0; i < 200; i++) {
            struct ea_sample_result r;
            ea_sampler_sample(s, l, &r);
            (run == 0 ? a : run == 1 ? b : c)[i] = r.token;
        }
        ea_sampler_destroy(s);
    }
    ASSERT(memcmp(a, b, sizeof a) == 0);
    ASSERT(memcmp(a, c, sizeof a) != 0);
}

/* Frequencies of a full-distribution draw match the probabilities. */
static void distribution(void)
{
    float l[V];
    logits_from_probs(probs, l);
    struct ea_sampling_params p = plain();
    ea_sampler *s = make(&p);
    int counts[V];
    int n = 40000;
    draw(s, l, n, counts);
    for (int i = 0; i < V; i++)
        ASSERT_NEAR((double)counts[i] / n, probs[i], 4 * sqrt(probs[i] * (1 - probs[i]) / n) + 1e-3);
    ea_sampler_destroy(s);
}

/* The set of tokens a truncation keeps, and renormalised frequencies. */
static void expect_kept(struct ea_sampling_params p, const int *kept, int n_kept)
{
    float l[V];
    logits_from_probs(probs, l);
    ea_sampler *s = make(&p);
    int counts[V];
    int n = 20000;
    draw(s, l, n, counts);
    double mass = 0;
    for (int i = 0; i < n_kept; i++)
        mass += probs[kept[i]];
    for (int i = 0; i < V; i++) {
        int is_kept = 0;
        for (int j = 0; j < n_kept; j++)
            is_kept |= kept[j] == i;
        if (!is_kept) {
            if (counts[i] != 0)
                FAIL("token %d drawn %d times but should be cut", i, counts[i]);
            continue;
        }
        double want = probs[i] / mass;
        ASSERT_NEAR((double)counts[i] / n, want, 4 * sqrt(want * (1 - want) / n) + 1e-3);
    }
    ea_sampler_destroy(s);
}

static void top_k(void)
{
    struct ea_sampling_params p = plain();
    p.top_k = 3;
    expect_kept(p, (int[]){0, 1, 2}, 3);
    p.top_k = 1;
    expect_kept(p, (int[]){0}, 1);
}

static void top_p(void)
{
    struct ea_sampling_params p = plain();
    p.top_p = 0.65f; /* 0.40 + 0.25 = 0.65 reaches it */
    expect_kept(p, (int[]){0, 1}, 2);
    p.top_p = 0.66f;
    expect_kept(p, (int[]){0, 1, 2}, 3);
    p.top_p = 0.1f; /* at least one token survives */
    expect_kept(p, (int[]){0}, 1);
}

static void min_p(void)
{
    struct ea_sampling_params p = plain();
    p.min_p = 0.25f; /* keep p >= 0.10 */
    expect_kept(p, (int[]){0, 1, 2, 3}, 4);
    p.min_p = 0.5f; /* keep p >= 0.20 */
    expect_kept(p, (int[]){0, 1}, 2);
}

static void typical_p(void)
{
    /* entropy H of probs = 1.572 nats; -log p: 0.92 1.39 1.90 2.30 3.00 ...;
     * distances |-log p - H|: 0.66 0.19 0.32 0.73 1.42 ... -> order 1, 2, 0, 3;
     * cumulative mass 0.25, 0.40, 0.80 -> typical_p 0.35 keeps {1, 2},
     * typical_p 0.5 keeps {1, 2, 0} */
    struct ea_sampling_params p = plain();
    p.typical_p = 0.35f;
    expect_kept(p, (int[]){1, 2}, 2);
    p.typical_p = 0.5f;
    expect_kept(p, (int[]){0, 1, 2}, 3);
}

/* Temperature T draws from p^(1/T) renormalised: every token's frequency
 * matches that (4 sigma), T < 1 sharpens (the entropy drops, the most
 * likely token gains, every tail token loses) and T > 1 flattens. */
static void temperature_sharpens(void)
{
    static const float temps[] = {0.5f, 2.0f, 0.25f};
    const int n = 40000;
    float l[V];
    logits_from_probs(probs, l);
    double h0 = 0;
    for (int i = 0; i < V; i++)
        h0 -= probs[i] * log(probs[i]);
    for (size_t ti = 0; ti < sizeof temps / sizeof temps[0]; ti++) {
        struct ea_sampling_params p = plain();
        p.temperature = temps[ti];
        p.seed = 11 + ti;
        ea_sampler *s = make(&p);
        int counts[V];
        draw(s, l, n, counts);
        ea_sampler_destroy(s);
        double want[V], z = 0, h = 0;
        for (int i = 0; i < V; i++)
            z += want[i] = pow(probs[i], 1.0 / temps[ti]);
        for (int i = 0; i < V; i++) {
            want[i] /= z;
            double f = (double)counts[i] / n;
            if (!(fabs(f - want[i]) <= 4 * sqrt(want[i] * (1 - want[i]) / n) + 1e-3))
                FAIL("T=%g token %d: frequency %.4f, p^(1/T) renormalised %.4f", temps[ti], i, f,
                     want[i]);
            if (f > 0)
                h -= f * log(f);
            if (i > 0) /* the order of the tokens is kept */
                ASSERT(counts[i] <= counts[i - 1] + 4 * sqrt(n * want[i - 1]));
        }
        if (temps[ti] < 1) {
            ASSERT(h < h0 - 0.1);
            ASSERT((double)counts[0] / n > probs[0] + 0.05);
            for (int i = 2; i < V; i++)
                ASSERT((double)counts[i] / n < probs[i]);
        } else {
            ASSERT(h > h0 + 0.1);
            ASSERT((double)counts[0] / n < probs[0] - 0.05);
            ASSERT((double)counts[V - 1] / n > probs[V - 1]);
        }
        printf("    T=%g: entropy %.3f nats (T=1: %.3f), top token %.3f\n", temps[ti], h, h0,
               (double)counts[0] / n);
    }
}

static void bias_and_penalties(void)
{
    struct ea_sampling_params p = plain();
    p.temperature = 0;
    struct ea_logit_bias bias[2] = {{0, -INFINITY}, {5, 2.0f}};
    p.logit_bias = bias;
    p.n_logit_bias = 2;
    ea_sampler *s = make(&p);
    float l[V] = {10, 3, 2, 1, 0, 2.5f, 0, 0};
    struct ea_sample_result r;
    ea_sampler_sample(s, l, &r);
    ASSERT_EQ(r.token, 5); /* 0 banned, 5 boosted to 4.5 */
    ea_sampler_destroy(s);

    /* repetition penalty 2 over the last 2 tokens */
    p = plain();
    p.temperature = 0;
    p.repeat_penalty = 2.0f;
    p.penalty_last_n = 2;
    s = make(&p);
    float l2[V] = {4, 3, 0, 0, 0, 0, 0, -1};
    ea_sampler_accept(s, 0);
    ea_sampler_sample(s, l2, &r);
    ASSERT_EQ(r.token, 1); /* 4/2 = 2 < 3 */
    ea_sampler_accept(s, 1);
    ea_sampler_accept(s, 2); /* window now {1, 2}: 0 is no longer penalised */
    ea_sampler_sample(s, l2, &r);
    ASSERT_EQ(r.token, 0);
    ea_sampler_destroy(s);

    /* OpenAI frequency/presence: logit -= count*f + presence */
    p = plain();
    p.temperature = 0;
    p.frequency_penalty = 1.0f;
    p.presence_penalty = 0.5f;
    p.penalty_last_n = -1;
    s = make(&p);
    float l3[V] = {5, 2.9f, 0, 0, 0, 0, 0, 0};
    ea_sampler_accept(s, 0);
    ea_sampler_accept(s, 0); /* 5 - 2*1 - 0.5 = 2.5 < 2.9 */
    ea_sampler_sample(s, l3, &r);
    ASSERT_EQ(r.token, 1);
    ea_sampler_destroy(s);
}

static void logprobs(void)
{
    float l[V];
    logits_from_probs(probs, l);
    for (int i = 0; i < V; i++)
        l[i] += 3.0f; /* shift: log-softmax unchanged */
    struct ea_sampling_params p = plain();
    p.temperature = 0;
    p.n_logprobs = 3;
    ea_sampler *s = make(&p);
    struct ea_sample_result r;
    ea_sampler_sample(s, l, &r);
    ASSERT_EQ(r.token, 0);
    ASSERT_NEAR(r.logprob, log(0.40), 1e-5);
    ASSERT_EQ(r.n_top, 3);
    ASSERT_EQ(r.top[0].token, 0);
    ASSERT_EQ(r.top[1].token, 1);
    ASSERT_EQ(r.top[2].token, 2);
    ASSERT_NEAR(r.top[2].logprob, log(0.15), 1e-5);
    ea_sampler_destroy(s);
}

static void bad_params(void)
{
    struct ea_error err = {0};
    ea_sampler *s = NULL;
    struct ea_sampling_params p = plain();
    p.top_p = -0.01f;
    ASSERT_EQ(ea_sampler_create(&p, V, &s, &err), EA_EINVAL);
    p.top_p = 1.01f;
    ASSERT_EQ(ea_sampler_create(&p, V, &s, &err), EA_EINVAL);
    p = plain();
    p.temperature = NAN;
    ASSERT_EQ(ea_sampler_create(&p, V, &s, &err), EA_EINVAL);
    p = plain();
    struct ea_logit_bias b = {V, 1};
    p.logit_bias = &b;
    p.n_logit_bias = 1;
    ASSERT_EQ(ea_sampler_create(&p, V, &s, &err), EA_EINVAL);
    p = plain();
    p.n_logprobs = 21;
    ASSERT_EQ(ea_sampler_create(&p, V, &s, &err), EA_EINVAL);
    ASSERT(s == NULL);
}

/* Feeds pieces; returns the emitted text and whether a stop matched. */
static bool feed_all(struct ea_stop_matcher *m, const char *const *pieces, int n, char *out)
{
    size_t o = 0;
    char tmp[256];
    for (int i = 0; i < n; i++) {
        size_t len;
        bool stop = ea_stop_feed(m, pieces[i], strlen(pieces[i]), tmp, &len);
        memcpy(out + o, tmp, len);
        o += len;
        if (stop) {
            out[o] = '\0';
            return true;
        }
    }
    o += ea_stop_flush(m, out + o);
    out[o] = '\0';
    return false;
}

static void stop_strings(void)
{
    struct ea_error err = {0};
    struct ea_stop_matcher m;
    const char *stops[] = {"STOP", "\n\nUser:"};
    ASSERT_OK(ea_stop_init(&m, stops, 2, &err), &err);
    char out[256];
    ASSERT(feed_all(&m, (const char *[]){"Hel", "lo ST", "OP wor", "ld"}, 4, out));
    ASSERT_STR_EQ(out, "Hello ");
    ea_stop_release(&m);

    ASSERT_OK(ea_stop_init(&m, stops, 2, &err), &err);
    ASSERT(!feed_all(&m, (const char *[]){"a ST", "OR", "Y\n", "\nUse", "d it"}, 5, out));
    ASSERT_STR_EQ(out, "a STORY\n\nUsed it"); /* near misses are released */
    ea_stop_release(&m);

    ASSERT_OK(ea_stop_init(&m, stops, 2, &err), &err);
    ASSERT(feed_all(&m, (const char *[]){"x\n", "\nUs", "er:", " hi"}, 4, out));
    ASSERT_STR_EQ(out, "x");
    ea_stop_release(&m);

    ASSERT_OK(ea_stop_init(&m, stops, 2, &err), &err);
    ASSERT(!feed_all(&m, (const char *[]){"ends with ST"}, 1, out));
    ASSERT_STR_EQ(out, "ends with ST"); /* held text comes out at the end */
    ea_stop_release(&m);

    const char *empty[] = {""};
    ASSERT_EQ(ea_stop_init(&m, empty, 1, &err), EA_EINVAL);
    ASSERT_OK(ea_stop_init(&m, NULL, 0, &err), &err);
    ASSERT(!feed_all(&m, (const char *[]){"no stops"}, 1, out));
    ASSERT_STR_EQ(out, "no stops");
    ea_stop_release(&m);
}

EA_TESTS(EA_TEST(greedy), EA_TEST(top_p_zero_keeps_the_top_token), EA_TEST(seed_reproduces), EA_TEST(distribution), EA_TEST(top_k),
         EA_TEST(top_p), EA_TEST(min_p), EA_TEST(typical_p), EA_TEST(temperature_sharpens),
         EA_TEST(bias_and_penalties), EA_TEST(logprobs), EA_TEST(bad_params),
         EA_TEST(stop_strings))
