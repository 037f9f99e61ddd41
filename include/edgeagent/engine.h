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

#ifdef __cplusplus
}
#endif
#endif
