/* engine_int.h - internals shared by the engine's files: prefix-cache
 * operations on the KV block pool. Not part of the public API. */
#ifndef EDGEAGENT_ENGINE_INT_H
#define EDGEAGENT_ENGINE_INT_H

#include "edgeagent/engine.h"

/* Hash of a full block given its parent's hash (0 for the first block). */
uint64_t ea__kv_block_hash(uint64_t parent, const int32_t *tokens, uint32_t n);
/* A registered block with this parent hash and these block_size tokens, or
 * -1. A hit takes a reference (and takes the block off the LRU list). */
int32_t ea__kv_prefix_lookup(ea_kv_cache *c, uint64_t parent, uint64_t hash, const int32_t *tokens);
/* Registers a full block's content so later requests can reuse it. Returns
 * false (and leaves the block unregistered) if an identical block is
 * already registered. */
bool ea__kv_prefix_register(ea_kv_cache *c, int32_t block, uint64_t parent, uint64_t hash,
                            const int32_t *tokens);
/* Drops every cached-but-unused block (tests and memory pressure). */
void ea__kv_prefix_clear(ea_kv_cache *c);

#endif
