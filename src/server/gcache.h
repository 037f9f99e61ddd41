/* gcache.h - the server's compiled grammars: one vocabulary index per model
 * (built on first use) and a cache of grammars keyed by what they were
 * compiled from (kind, strict, schema / regex / choices / tools text), so a
 * repeated schema is not compiled again and its masks stay warm.
 *
 * Entries are reference-counted: a generation holds its grammar until its
 * last choice is done (the engine borrows it); an entry evicted while in use
 * is freed by its last unref. At most max_entries grammars are kept (least
 * recently used go first).
 * Threads: every call may come from any thread (one mutex; compiles run
 * outside it).
 * Does not hold: what a request asks for (request.c), the engine.
 */
#ifndef EDGEAGENT_SERVER_GCACHE_H
#define EDGEAGENT_SERVER_GCACHE_H

#include <stddef.h>

#include "edgeagent/grammar.h"
#include "edgeagent/tokenizer.h"

struct ea__gcache;
struct ea__gcache_entry;

/* Compiles the grammar for arg on v (called on a miss, outside the lock). */
typedef ea_status (*ea__gcache_compile_fn)(const ea_grammar_vocab *v, const void *arg,
                                           ea_grammar **out, struct ea_error *err);

/* A cache over tok's vocabulary (tok must outlive it). */
ea_status ea__gcache_create(const ea_tokenizer *tok, size_t max_entries, struct ea__gcache **out,
                            struct ea_error *err);
void ea__gcache_destroy(struct ea__gcache *c); /* NULL-safe; entries still held stay valid */
/* The grammar for key[0..len): cached, or compiled by fn(arg) and cached.
 * *out holds a reference (ea__gcache_unref). Compile errors are returned
 * as they are and not cached. */
ea_status ea__gcache_get(struct ea__gcache *c, const char *key, size_t len, ea__gcache_compile_fn fn,
                         const void *arg, struct ea__gcache_entry **out, struct ea_error *err);
const ea_grammar *ea__gcache_grammar(const struct ea__gcache_entry *e);
void ea__gcache_unref(struct ea__gcache *c, struct ea__gcache_entry *e); /* NULL-safe */
/* Hits and compiles so far (tests, metrics). */
void ea__gcache_counts(struct ea__gcache *c, uint64_t *hits, uint64_t *misses);

#endif
