/* engine.h - the inference engine around a loaded model: the paged KV cache
 * (block pool, per-sequence block tables, reference counts) and, with the
 * scheduler issue, continuous batching, prefix caching and streaming.
 *
 * Holds: ea_kv_cache (one slab of KV memory cut into blocks of block_size
 * tokens, a free list and reference counts) and ea_kv_seq (a sequence's block
 * table) with a one-sequence evaluation helper used by `run`, `perplexity`
 * and tests.
 * Does not hold: the model math (model.h), sampling (sampling.h).
 */
#ifndef EDGEAGENT_ENGINE_H
#define EDGEAGENT_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "edgeagent/error.h"
#include "edgeagent/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ea_kv_cache ea_kv_cache;

struct ea_kv_cache_params {
    uint32_t type;       /* EA_TYPE_F16 or EA_TYPE_F32 (EA_TYPE_F32 is 0: say which) */
    uint32_t block_size; /* tokens per block; 0 = 16 */
    uint64_t mem_bytes;  /* total K+V memory over all layers; the pool gets what fits */
};

/* Creates a KV cache for model m. EA_EINVAL if not even one block fits. */
ea_status ea_kv_cache_create(const ea_model *m, const struct ea_kv_cache_params *p,
                             ea_kv_cache **out, struct ea_error *err);
void ea_kv_cache_destroy(ea_kv_cache *c); /* NULL-safe */
/* The store the forward pass reads and writes (owned by the cache). */
const struct ea_kv_store *ea_kv_cache_store(const ea_kv_cache *c);
uint32_t ea_kv_cache_n_blocks(const ea_kv_cache *c);
uint32_t ea_kv_cache_n_free(const ea_kv_cache *c);
uint32_t ea_kv_cache_block_size(const ea_kv_cache *c);
/* Bytes of K+V per token over all layers. */
uint64_t ea_kv_cache_bytes_per_token(const ea_model *m, uint32_t type);

/* Takes a free block (refcount 1); -1 when none is free. */
int32_t ea_kv_block_alloc(ea_kv_cache *c);
void ea_kv_block_ref(ea_kv_cache *c, int32_t block);
/* Drops a reference; the block is free again at zero. */
void ea_kv_block_unref(ea_kv_cache *c, int32_t block);
uint32_t ea_kv_block_refcount(const ea_kv_cache *c, int32_t block);

/* A sequence's block table and length. Zero-initialise, then use. */
struct ea_kv_seq {
    int32_t *blocks;
    int32_t n_blocks, cap_blocks;
    int32_t n_tokens; /* positions 0..n_tokens-1 hold K/V */
};

/* Ensures blocks cover n_total positions; EA_EOVERLOADED when the pool runs
 * out (nothing is leaked; the sequence keeps what it had). */
ea_status ea_kv_seq_reserve(ea_kv_cache *c, struct ea_kv_seq *s, int32_t n_total,
                            struct ea_error *err);
/* Returns all blocks of the sequence and frees its table. */
void ea_kv_seq_release(ea_kv_cache *c, struct ea_kv_seq *s);
/* Evaluates n tokens appended to the sequence (reserving blocks), writing
 * logits per mode (LAST: one row, ALL: n rows) into logits. */
ea_status ea_kv_seq_eval(ea_model *m, ea_kv_cache *c, struct ea_kv_seq *s, const int32_t *tokens,
                         int32_t n, enum ea_logits_mode mode, float *logits,
                         struct ea_error *err);

/* ---- sampling ------------------------------------------------------------ */

struct ea_logit_bias {
    int32_t token;
    float bias; /* added to the logit; -INFINITY bans the token */
};

/* The sampler chain runs in this fixed order (documented in docs/SAMPLING.md):
 *   1. logit bias
 *   2. penalties over the last penalty_last_n tokens of the sequence:
 *      repetition (divide positive / multiply negative logits), then
 *      frequency (count * f) and presence (p once) subtracted, OpenAI style
 *   3. temperature <= 0: greedy argmax (lowest id wins ties), stop here
 *   4. top-k   5. typical-p   6. top-p   7. min-p   8. temperature
 *   9. draw from the remaining distribution with the sequence's seeded RNG
 * A step that is switched off (top_k 0, top_p 1, min_p 0, typical_p 1,
 * penalties 1/0/0) is skipped. */
struct ea_sampling_params {
    float temperature;
    int32_t top_k;
    float top_p, min_p, typical_p;
    float repeat_penalty;
    int32_t penalty_last_n; /* -1 = whole sequence */
    float presence_penalty, frequency_penalty;
    uint64_t seed;
    const struct ea_logit_bias *logit_bias;
    int32_t n_logit_bias;
    bool logprobs;      /* compute the chosen token's log-probability */
    int32_t n_logprobs; /* top alternatives reported per token (0..20) */
};

/* Defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, typical 1,
 * penalties off, penalty_last_n 64, seed 0 (callers pick a random seed when
 * the request has none), no bias, no logprobs. */
void ea_sampling_params_default(struct ea_sampling_params *p);

struct ea_token_logprob {
    int32_t token;
    float logprob;
};

/* Result of one sampling step. logprob is the chosen token's log-probability
 * under the model's distribution (log-softmax of the raw logits; NaN unless
 * logprobs or n_logprobs was asked for); top[] the n_logprobs most likely
 * tokens under that distribution, most likely first. */
struct ea_sample_result {
    int32_t token;
    float logprob;
    int32_t n_top;
    struct ea_token_logprob top[20];
};

typedef struct ea_sampler ea_sampler;

/* A sampler for one sequence over an n_vocab distribution; copies params
 * (bias entries included). EA_EINVAL for out-of-range values. */
ea_status ea_sampler_create(const struct ea_sampling_params *p, int32_t n_vocab, ea_sampler **out,
                            struct ea_error *err);
void ea_sampler_destroy(ea_sampler *s); /* NULL-safe */
/* Records a token of the sequence (prompt or generated) for penalties. */
void ea_sampler_accept(ea_sampler *s, int32_t token);
/* Picks the next token from logits (n_vocab floats, left unchanged). The
 * caller then passes the token to ea_sampler_accept. */
void ea_sampler_sample(ea_sampler *s, const float *logits, struct ea_sample_result *out);

/* ---- stop strings --------------------------------------------------------- */

/* Watches generated text for stop strings that may span token boundaries:
 * text that could still be the start of a stop string is held back; when a
 * stop string completes, the text before it is released and the match is
 * reported (the stop string itself is never emitted). */
struct ea_stop_matcher {
    char **stops;
    size_t *lens;
    int n;
    size_t max_len;
    char *held; /* pending bytes, < max_len */
    size_t n_held;
};

ea_status ea_stop_init(struct ea_stop_matcher *m, const char *const *stops, int n,
                       struct ea_error *err);
void ea_stop_release(struct ea_stop_matcher *m);
/* Feeds piece; appends releasable text to out (capacity: n_held + len
 * bytes is always enough) and sets *out_len. Returns true when a stop string
 * matched (then nothing after it is released). */
bool ea_stop_feed(struct ea_stop_matcher *m, const char *piece, size_t len, char *out,
                  size_t *out_len);
/* At the end of generation: releases whatever is held (no match came). */
size_t ea_stop_flush(struct ea_stop_matcher *m, char *out);

#ifdef __cplusplus
}
#endif
#endif
