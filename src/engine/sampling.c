/* sampling.c - the sampler chain (see engine.h for the order), the seeded
 * per-sequence RNG, penalty bookkeeping and log-probabilities.
 *
 * Work per step is O(n_vocab) plus sorting only what a truncation step
 * needs: top-k selects k candidates in linear time; top-p and typical-p sort
 * a growing prefix only until it covers the requested mass.
 * The chain runs on a copy of the logits, so the caller's stay raw.
 * Does not hold: stop strings (stop.c), the logits themselves (model).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/engine.h"

#define MAX_BIAS 4096
#define MAX_TOP_LOGPROBS 20

struct cand {
    int32_t id;
    float logit;
    float p;
};

struct ea_sampler {
    struct ea_sampling_params p;
    struct ea_logit_bias *bias;
    int32_t n_vocab;
    uint64_t rng[4];
    /* penalty window: ring of the last penalty_last_n tokens and counts */
    int32_t *ring;
    int32_t ring_cap, ring_len, ring_head;
    uint32_t *counts;
    int32_t *touched; /* ids whose count went above zero (may hold stale ids) */
    int32_t n_touched, cap_touched;
    struct cand *cands;
    float *work; /* n_vocab: logits after bias and penalties */
};

void ea_sampling_params_default(struct ea_sampling_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->typical_p = 1.0f;
    p->repeat_penalty = 1.0f;
    p->penalty_last_n = 64;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static double rng_uniform(uint64_t s[4]) { return (rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

ea_status ea_sampler_create(const struct ea_sampling_params *p, int32_t n_vocab, ea_sampler **out,
                            struct ea_error *err)
{
    *out = NULL;
    if (n_vocab <= 0)
        return ea_error_set(err, EA_EINVAL, "sampling: empty vocabulary");
    if (!(p->temperature >= 0 && p->temperature <= 100) || p->top_k < 0 ||
        !(p->top_p >= 0 && p->top_p <= 1) || !(p->min_p >= 0 && p->min_p <= 1) ||
        !(p->typical_p > 0 && p->typical_p <= 1) ||
        !(p->repeat_penalty > 0 && p->repeat_penalty <= 100) || p->penalty_last_n < -1 ||
        !(fabsf(p->presence_penalty) <= 100) || !(fabsf(p->frequency_penalty) <= 100))
        return ea_error_set(err, EA_EINVAL, "sampling: a parameter is out of range");
    if (p->n_logit_bias < 0 || p->n_logit_bias > MAX_BIAS || (p->n_logit_bias && !p->logit_bias))
        return ea_error_set(err, EA_EINVAL, "sampling: at most %d logit bias entries", MAX_BIAS);
    if (p->n_logprobs < 0 || p->n_logprobs > MAX_TOP_LOGPROBS)
        return ea_error_set(err, EA_EINVAL, "sampling: top logprobs must be 0..%d", MAX_TOP_LOGPROBS);
    for (int32_t i = 0; i < p->n_logit_bias; i++)
        if (p->logit_bias[i].token < 0 || p->logit_bias[i].token >= n_vocab ||
            isnan(p->logit_bias[i].bias))
            return ea_error_set(err, EA_EINVAL, "sampling: logit bias token %d is out of range",
                                p->logit_bias[i].token);
    ea_sampler *s = ea_calloc(1, sizeof *s);
    if (!s)
        return ea_error_set(err, EA_ENOMEM, "sampling: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->ring_cap = p->penalty_last_n > 0 ? p->penalty_last_n : 0;
    s->counts = ea_calloc((size_t)n_vocab, sizeof *s->counts);
    s->cands = ea_malloc(sizeof *s->cands * (size_t)n_vocab);
    s->work = ea_malloc(sizeof *s->work * (size_t)n_vocab);
    if (s->ring_cap)
        s->ring = ea_malloc(sizeof *s->ring * (size_t)s->ring_cap);
    if (p->n_logit_bias) {
        s->bias = ea_malloc(sizeof *s->bias * (size_t)p->n_logit_bias);
        if (s->bias)
            memcpy(s->bias, p->logit_bias, sizeof *s->bias * (size_t)p->n_logit_bias);
    }
    if (!s->counts || !s->cands || !s->work || (s->ring_cap && !s->ring) || (p->n_logit_bias && !s->bias)) {
        ea_sampler_destroy(s);
        return ea_error_set(err, EA_ENOMEM, "sampling: out of memory");
    }
    s->p.logit_bias = s->bias;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) { /* splitmix64 seeding */
        uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        s->rng[i] = z ^ (z >> 31);
    }
    *out = s;
    return EA_OK;
}

void ea_sampler_destroy(ea_sampler *s)
{
    if (!s)
        return;
    ea_free(s->ring);
    ea_free(s->counts);
    ea_free(s->touched);
    ea_free(s->cands);
    ea_free(s->work);
    ea_free(s->bias);
    ea_free(s);
}

static bool penalties_on(const struct ea_sampling_params *p)
{
    return p->penalty_last_n != 0 &&
           (p->repeat_penalty != 1.0f || p->presence_penalty != 0 || p->frequency_penalty != 0);
}

void ea_sampler_accept(ea_sampler *s, int32_t token)
{
    if (token < 0 || token >= s->n_vocab || !penalties_on(&s->p))
        return;
    if (s->ring_cap) {
        if (s->ring_len == s->ring_cap) {
            int32_t old = s->ring[s->ring_head];
            s->counts[old]--;
            s->ring[s->ring_head] = token;
            s->ring_head = (s->ring_head + 1) % s->ring_cap;
        } else {
            s->ring[(s->ring_head + s->ring_len++) % s->ring_cap] = token;
        }
    }
    if (s->counts[token]++ == 0) {
        /* compact stale entries before growing */
        if (s->n_touched == s->cap_touched) {
            int32_t o = 0;
            for (int32_t i = 0; i < s->n_touched; i++)
                if (s->counts[s->touched[i]] > 0 && s->touched[i] != token)
                    s->touched[o++] = s->touched[i];
            s->n_touched = o;
        }
        if (s->n_touched == s->cap_touched) {
            int32_t cap = s->cap_touched ? s->cap_touched * 2 : 64;
            int32_t *t = ea_realloc(s->touched, sizeof *t * (size_t)cap);
            if (!t)
                return; /* penalties degrade to what is tracked; never fail a step */
            s->touched = t;
            s->cap_touched = cap;
        }
        s->touched[s->n_touched++] = token;
    }
}

/* ---- candidate selection ------------------------------------------------- */

static int higher(const struct cand *a, const struct cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_desc(const void *x, const void *y)
{
    const struct cand *a = x, *b = y;
    return higher(a, b) ? -1 : higher(b, a) ? 1 : 0;
}

/* Moves the k best candidates to the front (unordered), linear on average. */
static void select_top(struct cand *c, int32_t n, int32_t k)
{
    int32_t lo = 0, hi = n - 1;
    uint64_t r = 0x2545F4914F6CDD1Dull;
    while (lo < hi) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        struct cand pivot = c[lo + (int32_t)(r % (uint64_t)(hi - lo + 1))];
        int32_t i = lo, j = hi;
        while (i <= j) {
            while (higher(&c[i], &pivot))
                i++;
            while (higher(&pivot, &c[j]))
                j--;
            if (i <= j) {
                struct cand t = c[i];
                c[i++] = c[j];
                c[j--] = t;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            break;
    }
}

/* Makes the first `need` candidates sorted descending (need <= n). */
static void sort_prefix(struct cand *c, int32_t n, int32_t need)
{
    if (need < n)
        select_top(c, n, need);
    qsort(c, (size_t)need, sizeof *c, cmp_desc);
}

/* Softmax of candidates' logits into p (with temperature t). */
static void softmax(struct cand *c, int32_t n, float t)
{
    float mx = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        mx = fmaxf(mx, c[i].logit);
    double z = 0;
    for (int32_t i = 0; i < n; i++) {
        c[i].p = expf((c[i].logit - mx) / t);
        z += c[i].p;
    }
    for (int32_t i = 0; i < n; i++)
        c[i].p = (float)(c[i].p / z);
}

static void top_logprobs(const ea_sampler *s, const float *raw, double lse,
                         struct ea_sample_result *out)
{
    int32_t k = s->p.n_logprobs;
    out->n_top = 0;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        struct ea_token_logprob e = {i, (float)(raw[i] - lse)};
        if (out->n_top == k && !(e.logprob > out->top[k - 1].logprob))
            continue;
        int32_t pos = out->n_top < k ? out->n_top++ : k - 1;
        while (pos > 0 && out->top[pos - 1].logprob < e.logprob) {
            out->top[pos] = out->top[pos - 1];
            pos--;
        }
        out->top[pos] = e;
    }
}

static bool allowed(const uint32_t *mask, size_t n_words, int32_t id)
{
    return !mask || ((size_t)id / 32 < n_words && (mask[id / 32] >> (id % 32) & 1u));
}

static void sample(ea_sampler *s, const float *raw, const uint32_t *mask, size_t n_words,
                   struct ea_sample_result *out)
{
    const struct ea_sampling_params *p = &s->p;
    int32_t V = s->n_vocab;
    memset(out, 0, sizeof *out);
    /* log-softmax of the raw distribution, for logprobs */
    double lse = 0;
    if (p->logprobs || p->n_logprobs > 0) {
        float mx = -INFINITY;
        for (int32_t i = 0; i < V; i++)
            mx = fmaxf(mx, raw[i]);
        double z = 0;
        for (int32_t i = 0; i < V; i++)
            z += expf(raw[i] - mx);
        lse = mx + log(z);
    }
    if (p->n_logprobs > 0)
        top_logprobs(s, raw, lse, out);
    /* the chain works on a copy; raw logits stay for log-probabilities */
    float *logits = s->work;
    memcpy(logits, raw, sizeof(float) * (size_t)V);

    /* 1. logit bias */
    for (int32_t i = 0; i < p->n_logit_bias; i++)
        logits[p->logit_bias[i].token] += p->logit_bias[i].bias;
    /* the grammar's mask: what it does not allow is banned outright */
    if (mask) {
        for (int32_t w = 0; (size_t)w * 32 < (size_t)V; w++) {
            uint32_t bits = (size_t)w < n_words ? mask[w] : 0;
            if (bits == UINT32_MAX)
                continue;
            int32_t end = (w + 1) * 32 < V ? (w + 1) * 32 : V;
            for (int32_t i = w * 32; i < end; i++)
                if (!(bits >> (i - w * 32) & 1u))
                    logits[i] = -INFINITY;
        }
    }
    /* 2. penalties */
    if (penalties_on(p)) {
        for (int32_t i = 0; i < s->n_touched; i++) {
            int32_t id = s->touched[i];
            uint32_t c = s->counts[id];
            if (c == 0)
                continue;
            float l = logits[id];
            if (p->repeat_penalty != 1.0f)
                l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
            l -= (float)c * p->frequency_penalty + p->presence_penalty;
            logits[id] = l;
        }
    }
    int32_t chosen = -1;
    if (p->temperature <= 0) {
        /* 3. greedy (with a mask: the first allowed token when every allowed
         * one is banned by the bias too) */
        int32_t best = -1;
        for (int32_t i = 0; i < V; i++)
            if (allowed(mask, n_words, i) && (best < 0 || logits[i] > logits[best]))
                best = i;
        chosen = best >= 0 ? best : 0;
    } else {
        struct cand *c = s->cands;
        int32_t n = 0;
        for (int32_t i = 0; i < V; i++)
            if (logits[i] > -INFINITY)
                c[n++] = (struct cand){i, logits[i], 0};
        if (n == 0) { /* everything banned: a uniform draw among what the mask allows */
            for (int32_t i = 0; i < V; i++)
                if (allowed(mask, n_words, i))
                    c[n++] = (struct cand){i, 0, 0};
            if (n == 0)
                c[n++] = (struct cand){0, 0, 0};
        }
        int32_t sorted = 0; /* length of the sorted-descending prefix */
        /* 4. top-k */
        if (p->top_k > 0 && p->top_k < n) {
            select_top(c, n, p->top_k);
            n = p->top_k;
        }
        /* 5. typical-p (needs the whole set's entropy) */
        if (p->typical_p < 1.0f && n > 1) {
            softmax(c, n, 1.0f);
            double h = 0;
            for (int32_t i = 0; i < n; i++)
                if (c[i].p > 0)
                    h -= c[i].p * log(c[i].p);
            /* order by |(-log p) - H|, keep the smallest-distance prefix with mass >= typical_p */
            for (int32_t i = 0; i < n; i++)
                c[i].logit = c[i].p > 0 ? (float)-fabs(-log(c[i].p) - h) : -INFINITY;
            qsort(c, (size_t)n, sizeof *c, cmp_desc);
            double cum = 0;
            int32_t keep = n;
            for (int32_t i = 0; i < n; i++) {
                cum += c[i].p;
                if (cum >= p->typical_p) {
                    keep = i + 1;
                    break;
                }
            }
            n = keep;
            for (int32_t i = 0; i < n; i++)
                c[i].logit = logits[c[i].id];
            sorted = 0;
        }
        /* 6. top-p: sort a growing prefix until it holds the mass */
        if (p->top_p < 1.0f && n > 1) {
            softmax(c, n, 1.0f);
            int32_t want = n < 64 ? n : 64;
            for (;;) {
                sort_prefix(c, n, want);
                sorted = want;
                double cum = 0;
                int32_t keep = -1;
                for (int32_t i = 0; i < want; i++) {
                    cum += c[i].p;
                    if (cum >= p->top_p) {
                        keep = i + 1;
                        break;
                    }
                }
                if (keep > 0) {
                    n = keep;
                    break;
                }
                if (want == n)
                    break;
                want = want * 8 < n ? want * 8 : n;
            }
        }
        /* 7. min-p */
        if (p->min_p > 0 && n > 1) {
            float best = -INFINITY;
            for (int32_t i = 0; i < n; i++)
                best = fmaxf(best, c[i].logit);
            float cut = best + logf(p->min_p); /* p_i >= min_p * p_max */
            int32_t o = 0;
            for (int32_t i = 0; i < n; i++)
                if (c[i].logit >= cut)
                    c[o++] = c[i];
            n = o; /* order is preserved, so a sorted prefix stays sorted */
            if (sorted > n)
                sorted = n;
        }
        (void)sorted;
        /* 8. temperature, 9. draw */
        softmax(c, n, p->temperature);
        double u = rng_uniform(s->rng), cum = 0;
        chosen = c[n - 1].id;
        for (int32_t i = 0; i < n; i++) {
            cum += c[i].p;
            if (u < cum) {
                chosen = c[i].id;
                break;
            }
        }
    }
    out->token = chosen;
    out->logprob = p->logprobs || p->n_logprobs > 0 ? (float)(raw[chosen] - lse) : NAN;
}

void ea_sampler_sample(ea_sampler *s, const float *raw, struct ea_sample_result *out)
{
    sample(s, raw, NULL, 0, out);
}

void ea_sampler_sample_masked(ea_sampler *s, const float *raw, const uint32_t *mask, size_t n_words,
                              struct ea_sample_result *out)
{
    sample(s, raw, mask, n_words, out);
}
