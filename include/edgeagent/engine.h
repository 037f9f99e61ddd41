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
    uint32_t type;       /* EA_TYPE_F16, EA_TYPE_Q8_0 (half the memory) or EA_TYPE_F32 */
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
/* Blocks an allocation can get: free plus cached-but-unused (evictable). */
uint32_t ea_kv_cache_n_free(const ea_kv_cache *c);
/* Cached-but-unused blocks (prefix cache content kept for reuse). */
uint32_t ea_kv_cache_n_cached(const ea_kv_cache *c);
uint32_t ea_kv_cache_block_size(const ea_kv_cache *c);
/* Bytes of K+V per token over all layers. */
uint64_t ea_kv_cache_bytes_per_token(const ea_model *m, uint32_t type);

/* Takes a free block (refcount 1), evicting the least recently used cached
 * block when no plain free block is left; -1 when none is available. */
int32_t ea_kv_block_alloc(ea_kv_cache *c);
void ea_kv_block_ref(ea_kv_cache *c, int32_t block);
/* Drops a reference; at zero the block is free again (or cached-free when
 * its content is registered in the prefix cache). */
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
/* Forgets positions n.. (n <= n_tokens): blocks past the new end go back to
 * the pool; the sequence continues from position n. */
void ea_kv_seq_truncate(ea_kv_cache *c, struct ea_kv_seq *s, int32_t n);
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
/* The same with a token mask (grammar.h: bit i of mask[i / 32] set = token i
 * allowed; tokens past n_words * 32 are not allowed): every token the mask
 * does not allow is banned after the logit bias, before the rest of the
 * chain, so no setting can pick one. When the bias bans every allowed token
 * too, the draw is uniform among the allowed ones (greedy: the first). The
 * log-probabilities stay those of the raw distribution. */
void ea_sampler_sample_masked(ea_sampler *s, const float *logits, const uint32_t *mask,
                              size_t n_words, struct ea_sample_result *out);

/* ---- the engine: continuous batching over the paged KV cache -------------- */

typedef struct ea_engine ea_engine;

struct ea_engine_params {
    uint64_t kv_mem_bytes;     /* KV pool size; 0 = 256 MiB */
    uint32_t kv_type;          /* EA_TYPE_F16 by default, EA_TYPE_Q8_0 or EA_TYPE_F32 */
    uint32_t block_size;       /* tokens per KV block; default 16 */
    int32_t max_batch_tokens;  /* tokens per forward step (decode + prefill chunks); default 512 */
    int32_t max_running;       /* sequences decoding at once; default 16 */
    int32_t max_queue;         /* waiting requests before submit says EA_EOVERLOADED; default 256 */
    int32_t max_context;       /* prompt + generated tokens per sequence; default min(n_ctx_train, 4096) */
    bool prefix_cache;         /* reuse cached blocks of shared prompt prefixes; default true */
    const int32_t *eog_tokens; /* end-of-generation ids (copied); generation stops at them */
    int32_t n_eog_tokens;
    bool reserve_kv;           /* touch the whole KV pool at creation, so that the
                                * process's memory includes it from the start and no
                                * page is first faulted in while serving (the server
                                * sets it); default false */
};

void ea_engine_params_default(struct ea_engine_params *p);

enum ea_finish_reason {
    EA_FINISH_NONE = 0,
    EA_FINISH_STOP,      /* end-of-generation token, or the callback asked to stop */
    EA_FINISH_LENGTH,    /* max_tokens or the context limit */
    EA_FINISH_CANCELLED, /* ea_engine_cancel, or the engine shut down */
    EA_FINISH_ERROR,     /* see status */
};

enum ea_event_kind { EA_EVENT_TOKEN, EA_EVENT_DONE };

struct ea_engine_event {
    enum ea_event_kind kind;
    uint64_t id;
    void *user;
    /* EA_EVENT_TOKEN */
    const struct ea_sample_result *sample;
    /* EA_EVENT_DONE */
    enum ea_finish_reason finish;
    ea_status status;
    const char *error; /* detail when status != EA_OK */
    int32_t n_prompt, n_cached, n_generated, n_preempted;
    double queue_ms, ttft_ms, total_ms;
};

/* Called on the engine thread for every token and once at the end; must not
 * block or call back into the engine. For a TOKEN event, returning false
 * ends the sequence with EA_FINISH_STOP (e.g. a stop string matched). */
typedef bool (*ea_engine_cb)(const struct ea_engine_event *ev);

struct ea_grammar; /* grammar.h */

#define EA_ENGINE_MAX_TRIGGER 64

struct ea_engine_request {
    const int32_t *prompt; /* copied */
    int32_t n_prompt;
    struct ea_sampling_params sampling; /* bias entries copied */
    int32_t max_tokens;    /* > 0; the context limit also applies */
    int32_t priority;      /* higher first; ties by arrival */
    bool ignore_eog;       /* keep generating past end-of-generation tokens */
    /* Constrained decoding (grammar.h): NULL for none. The engine keeps its
     * own matcher for the sequence; the grammar is borrowed and must stay
     * alive until the request's DONE event. Every sampled token is drawn
     * from the grammar's mask (ea_sampler_sample_masked) and advances the
     * matcher; end-of-generation comes only where the grammar accepts, and
     * a grammar that can take nothing more ends the sequence
     * (EA_FINISH_STOP) even with ignore_eog. The grammar's vocabulary must
     * be the model's tokenizer's (EA_EINVAL when it has more tokens than
     * the model). */
    const struct ea_grammar *grammar;
    /* With a grammar: NULL, it applies from the first token; else the
     * grammar waits for this text (copied, at most
     * EA_ENGINE_MAX_TRIGGER bytes) in the generated tokens' bytes (the
     * grammar vocabulary's pieces): tokens are unconstrained until it
     * appears, then the matcher takes the bytes from the trigger's start to
     * the end of that token (the grammar should begin with the trigger) and
     * constrains the rest. Bytes it refuses drop the grammar for the
     * sequence (it goes on unconstrained). Tool calls under tool_choice
     * auto: the trigger is the opening tag. */
    const char *grammar_trigger;
    /* Or (has_trigger_token, grammar_trigger NULL) the grammar waits for
     * this token to be generated (a control token with no text, e.g.
     * Mistral's [TOOL_CALLS]) and constrains what follows it, the token
     * itself not given to the matcher. */
    bool has_trigger_token;
    int32_t grammar_trigger_token;
    ea_engine_cb cb;
    void *user;
};

struct ea_engine_stats {
    int32_t queue_depth, running;
    uint32_t kv_blocks_total, kv_blocks_used, kv_blocks_free, kv_blocks_cached;
    uint32_t kv_block_size;
    double prefill_tok_s;  /* moving averages of measured rates */
    double decode_tok_s;   /* aggregate generated tokens per second */
    double decode_step_ms; /* time of one decode step of the current batch */
    uint64_t requests_done, tokens_prompt, tokens_generated, tokens_cached;
    uint64_t preemptions, rejected_overloaded;
    uint32_t peak_kv_blocks_used;
    /* constrained decoding: time spent filling grammar masks and advancing
     * matchers (engine thread; the masked sampling is not counted), and the
     * sampled tokens it covers */
    double grammar_ms;
    uint64_t grammar_steps;
};

/* Starts the engine thread on model m (the model must outlive the engine).
 * The engine is the only user of m's forward pass while it runs. */
ea_status ea_engine_create(ea_model *m, const struct ea_engine_params *p, ea_engine **out,
                           struct ea_error *err);
/* Stops the thread; requests still in flight end with EA_FINISH_CANCELLED. */
void ea_engine_destroy(ea_engine *e); /* NULL-safe */
/* Queues a request; *id identifies it in events and for cancel. Errors:
 * EA_EINVAL (bad fields), EA_ETOOBIG (prompt does not fit the context),
 * EA_EOVERLOADED (waiting queue full), EA_ENOMEM. On error no callback is
 * ever made for it. */
ea_status ea_engine_submit(ea_engine *e, const struct ea_engine_request *r, uint64_t *id,
                           struct ea_error *err);
/* Cancels a queued or running request (its blocks are freed at the next
 * step and its callback gets DONE/CANCELLED). False if the id is unknown or
 * already finished. */
bool ea_engine_cancel(ea_engine *e, uint64_t id);
void ea_engine_get_stats(ea_engine *e, struct ea_engine_stats *out);
/* The model the engine runs. */
const ea_model *ea_engine_model(const ea_engine *e);
/* The context limit per sequence (prompt + generated) the engine settled on
 * at create: max_context, else min(n_ctx_train, 4096), clamped to the
 * training context and to what the KV pool holds. */
int32_t ea_engine_max_context(const ea_engine *e);

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
