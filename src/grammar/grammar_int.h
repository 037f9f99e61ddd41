/* grammar_int.h - internal structures of the grammar engine (see grammar.h).
 *
 * Holds: the compile-time pieces (arena, regex-like AST whose leaves are byte
 * sets or calls of other rules, per-rule DFAs built from it by subset
 * construction), the linked grammar (all rules' DFA states numbered as global
 * "positions"), the vocabulary trie, and the run-time structures shared by the
 * mask walk and the matcher (frames, configurations).
 * Does not hold: JSON Schema semantics (schema.c), regex syntax (regex.c).
 */
#ifndef EDGEAGENT_GRAMMAR_INT_H
#define EDGEAGENT_GRAMMAR_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/grammar.h"
#include "util/buf.h"

#define GR_NIL UINT32_MAX
#define GR_INF UINT32_MAX /* unbounded repetition */

/* ---- arena: compile-time allocations, freed at once ------------------------ */

#define GR_ARENA_MAX ((size_t)256 << 20) /* bytes one compile may allocate */

struct gr_arena {
    struct gr_chunk *head;
    size_t used_total;
};

void *ea__gr_alloc(struct gr_arena *a, size_t n); /* zeroed; NULL past the cap */
void ea__gr_arena_release(struct gr_arena *a);

/* ---- AST ------------------------------------------------------------------- */

/* GR_SHARED: a suffix used in several places that always ends where the
 * whole expression ends (object members); built once per NFA and entered by
 * an epsilon edge, which keeps optional-member objects linear in size. */
enum gr_ast_kind { GR_NONE, GR_EMPTY, GR_BYTES, GR_CAT, GR_ALT, GR_REP, GR_CALL, GR_SHARED };

struct gr_ast {
    uint8_t kind;
    uint32_t n;            /* CAT/ALT: kids */
    struct gr_ast **kids;
    uint32_t min, max;     /* REP: max GR_INF for unbounded */
    uint32_t rule;         /* CALL */
    uint32_t set[8];       /* BYTES: 256-bit set */
    uint32_t stamp, s_state, to_state; /* SHARED: where it was built */
};

/* A code point set: sorted, disjoint, non-adjacent ranges. */
struct gr_cpset {
    uint32_t n, cap;
    uint32_t (*r)[2];
};

/* ---- rule DFAs ------------------------------------------------------------- */

struct gr_call {
    uint32_t callee; /* rule id (compile) / callee start position (linked) */
    uint32_t ret;    /* state in the caller (compile) / return position (linked) */
};

struct gr_dfa {
    uint32_t n_states;   /* state 0 is the start */
    uint32_t n_cls;
    uint8_t cls[256];    /* byte -> class */
    int32_t *next;       /* [n_states * n_cls], -1 = dead */
    uint8_t *accept;     /* [n_states] */
    uint32_t *call_off;  /* [n_states + 1] into calls */
    struct gr_call *calls;
};

/* Compile context shared by the schema / regex front ends. */
struct gr_build {
    struct gr_arena arena;
    struct ea_error *err;
    bool strict;
    uint32_t n_rules, cap_rules;
    struct gr_dfa **rules;   /* NULL until the rule's body is set */
    size_t total_states;
    uint32_t nfa_stamp;
    struct ea_buf unenforced; /* comma-separated keyword list */
    /* JSON Schema front end */
    const json_t *root;
    uint32_t depth;
    struct gr_refmemo *memo;
    json_t *keep;            /* schemas made by merging, alive until release */
    uint32_t n_memo, cap_memo;
    uint32_t rule_string, rule_number, rule_integer, rule_value, rule_object, rule_array;
};

ea_status ea__gr_build_init(struct gr_build *b, bool strict, struct ea_error *err);
void ea__gr_build_release(struct gr_build *b);
/* Reserves a rule id whose body is set later (recursion). */
ea_status ea__gr_rule_new(struct gr_build *b, uint32_t *id);
/* Builds the DFA of ast and stores it as rule id's body. */
ea_status ea__gr_rule_set_ast(struct gr_build *b, uint32_t id, struct gr_ast *ast);
/* Builds the DFA of a call-free ast (for intersections). */
ea_status ea__gr_dfa_from_ast(struct gr_build *b, struct gr_ast *ast, struct gr_dfa **out);
/* Product automaton of two call-free DFAs (language intersection). */
ea_status ea__gr_dfa_intersect(struct gr_build *b, const struct gr_dfa *x, const struct gr_dfa *y,
                               struct gr_dfa **out);
/* Complement of a call-free DFA over all byte strings, in place. */
ea_status ea__gr_dfa_complement(struct gr_build *b, struct gr_dfa *d);
void ea__gr_rule_set_dfa(struct gr_build *b, uint32_t id, struct gr_dfa *d);
void ea__gr_dfa_free(struct gr_dfa *d); /* NULL-safe */
/* Adds keyword to the unenforced list, or fails under strict. */
ea_status ea__gr_unenforced(struct gr_build *b, const char *keyword, const char *path);

/* AST constructors (NULL on arena exhaustion; the caller reports ENOMEM). */
struct gr_ast *ea__gr_none(struct gr_build *b);
struct gr_ast *ea__gr_empty(struct gr_build *b);
struct gr_ast *ea__gr_byte_range(struct gr_build *b, unsigned lo, unsigned hi);
struct gr_ast *ea__gr_lit(struct gr_build *b, const char *s, size_t n);
struct gr_ast *ea__gr_cat(struct gr_build *b, uint32_t n, struct gr_ast **kids); /* copies kids */
struct gr_ast *ea__gr_alt(struct gr_build *b, uint32_t n, struct gr_ast **kids);
struct gr_ast *ea__gr_cat2(struct gr_build *b, struct gr_ast *x, struct gr_ast *y);
struct gr_ast *ea__gr_alt2(struct gr_build *b, struct gr_ast *x, struct gr_ast *y);
struct gr_ast *ea__gr_rep(struct gr_build *b, struct gr_ast *x, uint32_t min, uint32_t max);
struct gr_ast *ea__gr_call(struct gr_build *b, uint32_t rule);
struct gr_ast *ea__gr_shared(struct gr_build *b, struct gr_ast *x);

/* Code point sets and their encodings. */
ea_status ea__gr_cpset_add(struct gr_build *b, struct gr_cpset *s, uint32_t lo, uint32_t hi);
ea_status ea__gr_cpset_negate(struct gr_build *b, struct gr_cpset *s);
/* One code point of s as raw UTF-8 (json = false) or as JSON string content
 * (json = true: '"' '\\' and controls escaped the one canonical way). */
struct gr_ast *ea__gr_cpset_ast(struct gr_build *b, const struct gr_cpset *s, bool json);

/* Regex front end: pattern -> AST of the text it matches (json: of its JSON
 * string encoding). anchored_full: the whole text must match (guided_regex);
 * otherwise ECMA search semantics (JSON Schema "pattern"). */
ea_status ea__gr_regex_ast(struct gr_build *b, const char *pat, size_t len, bool json,
                           bool anchored_full, struct gr_ast **out);

/* JSON Schema front end: the root rule of schema. */
ea_status ea__gr_schema_root(struct gr_build *b, const json_t *schema, uint32_t *root);
/* Shared helper rules (built on first use). */
ea_status ea__gr_rule_json_value(struct gr_build *b, uint32_t *id);
ea_status ea__gr_rule_json_object(struct gr_build *b, uint32_t *id);
struct gr_ast *ea__gr_ws(struct gr_build *b);

/* ---- vocabulary trie ------------------------------------------------------- */

struct gr_node {
    uint8_t byte;
    uint16_t depth; /* 1 for a first byte */
    uint32_t skip;  /* index past this node's subtree (preorder) */
    uint32_t parent; /* GR_NIL at depth 1 */
    int32_t tok;    /* first token whose piece ends here, or -1 */
};

struct ea_grammar_vocab {
    uint32_t n_vocab;
    size_t n_words;
    char *bytes;          /* all pieces */
    uint64_t *off;        /* [n_vocab + 1] */
    uint32_t *in_trie;    /* bitset: tokens a grammar may allow */
    int32_t *eog;
    size_t n_eog;
    int32_t *dup_next;    /* [n_vocab]: next token with the same piece, or -1 */
    struct gr_node *nodes;
    uint32_t n_nodes;
    uint32_t max_len;
    /* mask caches of call-free rules, shared by every grammar of this
     * vocabulary that contains the same rule (a plain string, a number, an
     * enum literal...): a new schema reuses the walks of earlier ones */
    pthread_mutex_t mu;
    struct gr_shared **shared;
    uint32_t n_shared, cap_shared;
    uint32_t shared_states;
};

#define GR_SHARED_MAX_STATES 4096u /* positions one vocabulary shares, in all */

struct gr_shared {
    uint64_t hash;
    uint32_t n_states, n_cls;
    uint8_t cls[256];
    int32_t *next;  /* [n_states * n_cls] rule-relative states, -1 dead */
    uint8_t *flags; /* [n_states] GR_POS_* */
    uint32_t follow[8];
    _Atomic(struct gr_posmask *) *pm; /* [n_states] */
};

/* ---- linked grammar --------------------------------------------------------- */

#define GR_POS_ACCEPT 1u
#define GR_POS_BYTES 2u
#define GR_POS_CALLS 4u

struct gr_rule_link {
    uint32_t base, n_states, n_cls;
    bool call_free; /* no state calls a rule: walks need no stack */
    struct gr_shared *shared; /* the vocabulary's caches for this rule, or NULL */
    const uint8_t *cls;
    const int32_t *next; /* global positions, -1 dead */
};

/* A trie node copied next to the others of an uncertain subtree, so that the
 * per-step re-walk streams through memory instead of jumping around the trie. */
struct gr_snode {
    uint8_t byte;
    uint16_t depth;
    uint32_t skip; /* index past the subtree within the copy */
    int32_t tok;
};

#define GR_SUB_MAX 4096u /* copied nodes per position; larger subtrees use the trie */

/* Precomputed, context-independent result of one position. */
struct gr_posmask {
    struct gr_snode *sub; /* copies of the uncertain subtrees */
    uint32_t *sub_off;    /* [n_unc]: start of root k's copy, GR_NIL when not copied */
    uint32_t n_acc;
    bool dense;
    uint32_t *acc;       /* dense: bitset [n_words]; else n_acc token ids */
    uint32_t n_unc, n_simple;
    uint32_t *unc;       /* trie nodes whose subtrees depend on the stack;
                          * GR_UNC_SIMPLE: the byte right after the rule ended */
};
#define GR_UNC_SIMPLE 0x80000000u

struct ea_grammar {
    const ea_grammar_vocab *v;
    uint32_t n_pos;
    uint32_t start;          /* start position of the root rule */
    uint32_t *pos_rule;      /* [n_pos] */
    uint8_t *pos_flags;      /* [n_pos] */
    uint32_t *call_off;      /* [n_pos + 1] */
    struct gr_call *calls;   /* callee start position, return position */
    uint32_t n_rules;
    struct gr_rule_link *rules;
    uint8_t *cls_store;
    int32_t *next_store;
    uint32_t (*follow)[8];   /* [n_rules]: bytes that may follow the rule */
    _Atomic(struct gr_posmask *) *cache; /* [n_pos], filled on first use */
    char *unenforced;
};

/* Links the rules reachable from root into g (g->v set by the caller). */
ea_status ea__gr_link(struct gr_build *b, uint32_t root, ea_grammar *g, struct ea_error *err);
/* Attaches g's call-free rules to the vocabulary's shared caches (as many as
 * GR_SHARED_MAX_STATES allows; the others keep grammar-local caches). */
void ea__gr_share(ea_grammar *g);
void ea__gr_shared_free(struct gr_shared *s);

/* The cache slot of position p: shared by the vocabulary or the grammar's. */
static inline _Atomic(struct gr_posmask *) *ea__gr_slot(const ea_grammar *g, uint32_t p)
{
    const struct gr_rule_link *r = &g->rules[g->pos_rule[p]];
    return r->shared ? &r->shared->pm[p - r->base] : &g->cache[p];
}

static inline int32_t ea__gr_step(const ea_grammar *g, uint32_t p, uint8_t byte)
{
    const struct gr_rule_link *r = &g->rules[g->pos_rule[p]];
    return r->next[(size_t)(p - r->base) * r->n_cls + r->cls[byte]];
}

/* ---- run time ---------------------------------------------------------------- */

#define GR_MAX_CFG 128u /* stacks one state may hold: alternatives alive at once (an
                         * anyOf of up to 64 objects with a common prefix, two stacks
                         * each around a value); more are dropped, which only narrows
                         * the mask */
#define GR_BYTE_SLOTS 16u /* distinct bytes right after a rule's end a re-walk caches */
/* Popped past the bottom frame. At run time (full stack) both mean the
 * grammar is complete. In a position's own walk, FRESH: the position's rule
 * just ended, the next byte must be in the rule's FOLLOW set; STALE: bytes
 * were consumed beyond the rule, what follows depends on the stack. */
#define GR_BOTTOM UINT32_MAX
#define GR_BOTTOM_FRESH (UINT32_MAX - 1)
#define GR_IS_BOTTOM(top) ((top) >= GR_BOTTOM_FRESH)

struct gr_frame {
    uint32_t pos;    /* position to return to */
    uint32_t parent; /* frame below, GR_NIL at the bottom */
    uint32_t depth;
};

struct gr_cfg {
    uint32_t top;  /* a position with byte edges, or GR_BOTTOM */
    uint32_t rest; /* frame index, GR_NIL for none */
};

struct gr_set {
    uint32_t n;
    struct gr_cfg c[GR_MAX_CFG];
};

/* Frame storage plus per-depth scratch for walks. */
struct gr_walker {
    const ea_grammar *g;
    struct gr_frame *frames;
    uint32_t n_frames, cap_frames;
    struct gr_set *sets;    /* [max_len + 2] */
    uint32_t *path;         /* [max_len + 2] node per depth */
    uint32_t *anc;          /* [max_len + 2] */
    uint32_t *fm;           /* [max_len + 2] frame count after each depth */
    const uint32_t *follow;   /* FOLLOW set of the rule being precomputed */
    struct gr_set *bytesets;  /* [GR_BYTE_SLOTS] rewalk: return set stepped by a byte */
    uint8_t byteslot[256];    /* byte -> slot + 1, 0: none */
    int32_t *path_pos;        /* [max_len + 2] call-free walk: position per depth */
    uint8_t *path_fresh;      /* [max_len + 2] call-free walk: the rule just ended */
    struct gr_cfg visit[256]; /* closure: (position, stack) pairs seen */
    uint32_t n_visit;
};

ea_status ea__gr_walker_init(struct gr_walker *w, const ea_grammar *g);
void ea__gr_walker_release(struct gr_walker *w);
/* out = closure of stepping every configuration of in by byte. bottom_stays:
 * GR_BOTTOM survives any byte (context unknown) instead of dying. */
void ea__gr_set_step(struct gr_walker *w, const struct gr_set *in, uint8_t byte, bool bottom_stays,
                     struct gr_set *out);
/* out = closure of position p over rest. */
void ea__gr_set_closure(struct gr_walker *w, uint32_t p, uint32_t rest, struct gr_set *out);
/* The cache entry of position p (computed on first use). */
ea_status ea__gr_posmask(const ea_grammar *g, struct gr_walker *scratch, uint32_t p,
                         const struct gr_posmask **out);
void ea__gr_posmask_free(struct gr_posmask *m);

#endif
