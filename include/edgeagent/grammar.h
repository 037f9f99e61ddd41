/* grammar.h - constrained decoding: JSON Schema / regex / choice / "any JSON
 * object" compiled into a byte-level pushdown automaton, and per-step token
 * masks over a model's vocabulary.
 *
 * Holds: ea_grammar_vocab (a trie over the byte strings of a tokenizer's
 * tokens, built once per model), ea_grammar (a compiled grammar bound to one
 * vocabulary, immutable apart from its lazily filled, thread-safe per-position
 * mask caches), ea_grammar_matcher (one sequence's automaton state: token
 * mask, advance, accept test, reset, clone).
 * Does not hold: sampling (the caller applies the mask before sampling, see
 * engine.h), HTTP parameter parsing, tool-call syntaxes of model families.
 *
 * How a mask is computed: every rule of the grammar is a DFA over bytes whose
 * edges are byte classes or calls of other rules; a matcher state is a small
 * set of stacks of (rule, state) positions. For each position the tokens the
 * rule (with its callees) accepts or rejects on its own are computed once by
 * walking the vocabulary trie (whole subtrees are pruned where the automaton
 * dies) and cached; only the tokens that run past the end of the rule are
 * re-checked against the actual stack at each step.
 *
 * Threads: a vocab's tokens and trie are immutable after creation; it also
 * keeps the mask caches of rules without calls (plain strings, numbers,
 * enum literals, patterns) for every grammar compiled on it, behind a lock
 * and atomic publication, so grammars may be compiled and used on any
 * threads. A grammar may be shared by any number of matchers on any threads.
 * A matcher belongs to one caller at a time. Destroy grammars before their
 * vocabulary.
 */
#ifndef EDGEAGENT_GRAMMAR_H
#define EDGEAGENT_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "edgeagent/error.h"
#include "edgeagent/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ea_grammar_vocab ea_grammar_vocab;
typedef struct ea_grammar ea_grammar;
typedef struct ea_grammar_matcher ea_grammar_matcher;

/* ---- vocabulary index ---------------------------------------------------- */

/* Builds the index of t's tokens: every token whose piece (ea_token_piece,
 * special = false) is non-empty and which is not a control, unknown or unused
 * token can be allowed by a grammar; end-of-generation tokens
 * (ea_tokenizer_is_eog) are allowed exactly where the grammar accepts. The
 * caller owns *out (free with ea_grammar_vocab_destroy); t may be destroyed
 * afterwards. */
ea_status ea_grammar_vocab_create(const ea_tokenizer *t, ea_grammar_vocab **out,
                                  struct ea_error *err);
/* The same from raw pieces (tests, non-GGUF vocabularies): pieces[i] of
 * lens[i] bytes; a token with len 0 is never allowed; eos[0..n_eos) are the
 * end-of-generation ids. Everything is copied. */
ea_status ea_grammar_vocab_create_raw(uint32_t n_vocab, const char *const *pieces,
                                      const uint32_t *lens, const int32_t *eos, size_t n_eos,
                                      ea_grammar_vocab **out, struct ea_error *err);
void ea_grammar_vocab_destroy(ea_grammar_vocab *v); /* NULL-safe */
uint32_t ea_grammar_vocab_n_vocab(const ea_grammar_vocab *v);
/* 32-bit words of a token mask for this vocabulary: (n_vocab + 31) / 32. */
size_t ea_grammar_mask_words(const ea_grammar_vocab *v);
/* The bytes of token id as the index holds them (the piece; possibly empty
 * for tokens a grammar never allows); false when id is out of range. */
bool ea_grammar_vocab_piece(const ea_grammar_vocab *v, int32_t id, const char **p, size_t *n);

/* ---- compiling ----------------------------------------------------------- */

/* Limits (a schema or pattern beyond them is EA_ETOOBIG, never a hang). */
#define EA_GRAMMAR_MAX_STATES 200000u     /* automaton states of one grammar */
#define EA_GRAMMAR_MAX_REPEAT 1000u       /* x{n,m}, minLength..., counts unrolled */
#define EA_GRAMMAR_MAX_DEPTH 64u          /* nesting of schemas / regex groups at compile */
#define EA_GRAMMAR_MAX_STACK 128u         /* runtime nesting of rules (recursive $ref) */
#define EA_GRAMMAR_MAX_SCHEMA_TEXT (1u << 20) /* bytes of schema text */
#define EA_GRAMMAR_WS_MAX_INDENT 20u      /* spaces/tabs after a newline between tokens */

struct ea_grammar_options {
    /* true: a keyword that cannot be enforced fails the compile with
     * EA_EUNSUPPORTED and a message naming it ("unsupported JSON Schema
     * keyword \"multipleOf\" at /properties/x"); false: it is ignored and
     * listed by ea_grammar_unenforced. */
    bool strict;
    /* Literal text the output must start / end with (e.g. a tool-call tag);
     * NULL for none. */
    const char *prefix;
    const char *suffix;
    /* The unit (prefix, value, suffix) may occur up to max_repeat times
     * (0 and 1: once), separated by separator (NULL: nothing between):
     * parallel tool calls in a tagged syntax. At most EA_GRAMMAR_MAX_REPEAT. */
    uint32_t max_repeat;
    const char *separator;
};

/* Tool calls of OpenAI-style function tools, for ea_grammar_compile_tools. */
struct ea_grammar_tools {
    const json_t *tools;  /* the request's "tools" array: {"type": "function",
                           * "function": {"name", "parameters"}} */
    const char *only;     /* tool_choice naming one function; NULL: any tool */
    const char *name_key; /* NULL: "name" */
    const char *args_key; /* NULL: "arguments" (Llama 3.1 writes "parameters") */
    bool array;           /* the calls form one JSON array of at least one call
                           * (Mistral's [TOOL_CALLS] [...]); false: one object */
    uint32_t max_items;   /* array: at most this many calls; 0 = no bound */
};

/* JSON Schema (draft 2020-12 / 07 keywords listed in docs/STRUCTURED.md) ->
 * grammar of the JSON texts valid under it. Whitespace between JSON tokens is
 * bounded: nothing, one space, or a newline and at most
 * EA_GRAMMAR_WS_MAX_INDENT spaces/tabs. Object properties come in the order of
 * "properties". Errors: EA_EUNSUPPORTED (strict, or a construct that cannot
 * be compiled at all: not, remote $ref, ...), EA_EFORMAT (not a schema),
 * EA_ETOOBIG. The caller owns *out (ea_grammar_destroy); opts may be NULL. */
ea_status ea_grammar_compile_schema(const ea_grammar_vocab *v, const json_t *schema,
                                    const struct ea_grammar_options *opts, ea_grammar **out,
                                    struct ea_error *err);
/* The same from schema text (at most EA_GRAMMAR_MAX_SCHEMA_TEXT bytes). */
ea_status ea_grammar_compile_schema_text(const ea_grammar_vocab *v, const char *text, size_t len,
                                         const struct ea_grammar_options *opts, ea_grammar **out,
                                         struct ea_error *err);
/* Any JSON object (response_format json_object). */
ea_status ea_grammar_compile_json_object(const ea_grammar_vocab *v,
                                         const struct ea_grammar_options *opts, ea_grammar **out,
                                         struct ea_error *err);
/* A regular expression (the ECMA-262 subset of docs/STRUCTURED.md) that the
 * whole output must match (vLLM's guided_regex); ^ and $ are optional. */
ea_status ea_grammar_compile_regex(const ea_grammar_vocab *v, const char *pattern, size_t len,
                                   const struct ea_grammar_options *opts, ea_grammar **out,
                                   struct ea_error *err);
/* Exactly one of choices[0..n) (vLLM's guided_choice), n >= 1. */
ea_status ea_grammar_compile_choice(const ea_grammar_vocab *v, const char *const *choices,
                                    size_t n, const struct ea_grammar_options *opts,
                                    ea_grammar **out, struct ea_error *err);
/* A call of one of t->tools: {"<name_key>": NAME, "<args_key>": ARGS} with
 * ARGS valid under that function's "parameters" (an empty object schema when
 * absent); local $refs inside parameters keep working. Errors as for
 * schemas, EA_EINVAL for a malformed tools array or an unknown t->only. */
ea_status ea_grammar_compile_tools(const ea_grammar_vocab *v, const struct ea_grammar_tools *t,
                                   const struct ea_grammar_options *opts, ea_grammar **out,
                                   struct ea_error *err);
void ea_grammar_destroy(ea_grammar *g); /* NULL-safe */

/* Comma-separated keywords the grammar does not enforce ("multipleOf,
 * uniqueItems"), "" when everything is enforced; owned by g. */
const char *ea_grammar_unenforced(const ea_grammar *g);
/* The vocabulary g was compiled on. */
const ea_grammar_vocab *ea_grammar_vocab_of(const ea_grammar *g);
/* Number of automaton positions (for diagnostics and benchmarks). */
size_t ea_grammar_n_positions(const ea_grammar *g);
/* Fills every position's mask cache now instead of on first use (costs a
 * vocabulary walk per position; a server may call it off the decode path). */
ea_status ea_grammar_precompute(ea_grammar *g, struct ea_error *err);

/* ---- matching one sequence ----------------------------------------------- */

/* A matcher at the start of the grammar. g must outlive it. The caller owns
 * *out (ea_grammar_matcher_destroy). */
ea_status ea_grammar_matcher_create(const ea_grammar *g, ea_grammar_matcher **out,
                                    struct ea_error *err);
void ea_grammar_matcher_destroy(ea_grammar_matcher *m); /* NULL-safe */
void ea_grammar_matcher_reset(ea_grammar_matcher *m);
ea_status ea_grammar_matcher_clone(const ea_grammar_matcher *m, ea_grammar_matcher **out,
                                   struct ea_error *err);
/* Sets dst to src's state (both of the same grammar); no allocation once dst
 * has held a state as deep. For rollback: keep a copy, try, copy back. */
ea_status ea_grammar_matcher_copy(ea_grammar_matcher *dst, const ea_grammar_matcher *src,
                                  struct ea_error *err);

/* Writes the allowed tokens of the current state into mask[0..n_words)
 * (bit i of word i/32 set = token i allowed), n_words >=
 * ea_grammar_mask_words. End-of-generation tokens are set only when
 * ea_grammar_matcher_is_accepting. All bits zero means the grammar is
 * complete and accepts nothing more (only when no EOG token exists). */
ea_status ea_grammar_matcher_fill_mask(ea_grammar_matcher *m, uint32_t *mask, size_t n_words,
                                       struct ea_error *err);
/* Advances by token id. EA_EINVAL (state unchanged) when the token is not
 * allowed here; an EOG token is accepted only where the grammar accepts and
 * moves the matcher to its terminated state. */
ea_status ea_grammar_matcher_accept_token(ea_grammar_matcher *m, int32_t id,
                                          struct ea_error *err);
/* Advances by raw bytes (forced text, tests). EA_EINVAL, state unchanged,
 * when they are not a valid continuation. */
ea_status ea_grammar_matcher_accept_bytes(ea_grammar_matcher *m, const char *s, size_t n,
                                          struct ea_error *err);
/* Whether the text so far is a complete sentence of the grammar (EOG allowed). */
bool ea_grammar_matcher_is_accepting(const ea_grammar_matcher *m);
/* Whether nothing more may follow: complete and no byte can extend it, or an
 * EOG token was accepted. */
bool ea_grammar_matcher_is_terminated(const ea_grammar_matcher *m);

#ifdef __cplusplus
}
#endif
#endif
