/* fsa.c - the automaton construction of the grammar engine: compile arena,
 * AST constructors, code point sets and their UTF-8 / JSON encodings,
 * AST -> NFA (Thompson) -> per-rule DFA (subset construction over byte
 * classes, with calls of other rules as extra symbols), DFA intersection,
 * and the link step that trims dead states, drops unproductive rules, merges
 * identical rules, rejects left recursion and numbers every state as a global
 * position.
 * Does not hold: what a schema or a pattern means (schema.c, regex.c), run-time
 * matching (matcher.c).
 */
#include "grammar/grammar_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------------ */

#define GR_CHUNK_MIN ((size_t)64 << 10)

struct gr_chunk {
    struct gr_chunk *next;
    size_t used, size;
    max_align_t data[];
};

void *ea__gr_alloc(struct gr_arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct gr_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > GR_CHUNK_MIN ? n : GR_CHUNK_MIN;
        if (a->used_total + size > GR_ARENA_MAX)
            return NULL;
        c = ea_malloc(sizeof *c + size);
        if (!c)
            return NULL;
        c->used = 0;
        c->size = size;
        c->next = a->head;
        a->head = c;
        a->used_total += size;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void ea__gr_arena_release(struct gr_arena *a)
{
    struct gr_chunk *c = a->head;
    while (c) {
        struct gr_chunk *n = c->next;
        ea_free(c);
        c = n;
    }
    a->head = NULL;
    a->used_total = 0;
}

/* ---- build context ------------------------------------------------------------ */

void ea__gr_dfa_free(struct gr_dfa *d)
{
    if (!d)
        return;
    ea_free(d->next);
    ea_free(d->accept);
    ea_free(d->call_off);
    ea_free(d->calls);
    ea_free(d);
}

ea_status ea__gr_build_init(struct gr_build *b, bool strict, struct ea_error *err)
{
    memset(b, 0, sizeof *b);
    b->err = err;
    b->strict = strict;
    ea__buf_init(&b->unenforced, 4096);
    b->rule_string = b->rule_number = b->rule_integer = GR_NIL;
    b->rule_value = b->rule_object = b->rule_array = GR_NIL;
    return EA_OK;
}

void ea__gr_build_release(struct gr_build *b)
{
    for (uint32_t i = 0; i < b->n_rules; i++)
        ea__gr_dfa_free(b->rules[i]);
    ea_free(b->rules);
    ea_free(b->memo);
    json_decref(b->keep);
    ea__buf_release(&b->unenforced);
    ea__gr_arena_release(&b->arena);
}

ea_status ea__gr_rule_new(struct gr_build *b, uint32_t *id)
{
    if (b->n_rules == b->cap_rules) {
        uint32_t cap = b->cap_rules ? b->cap_rules * 2 : 16;
        if (cap > EA_GRAMMAR_MAX_STATES)
            return ea_error_set(b->err, EA_ETOOBIG, "grammar: too many rules");
        struct gr_dfa **r = ea_realloc(b->rules, cap * sizeof *r);
        if (!r)
            return ea_error_set(b->err, EA_ENOMEM, "grammar: out of memory");
        b->rules = r;
        b->cap_rules = cap;
    }
    b->rules[b->n_rules] = NULL;
    *id = b->n_rules++;
    return EA_OK;
}

void ea__gr_rule_set_dfa(struct gr_build *b, uint32_t id, struct gr_dfa *d)
{
    ea__gr_dfa_free(b->rules[id]);
    b->rules[id] = d;
}

ea_status ea__gr_unenforced(struct gr_build *b, const char *keyword, const char *path)
{
    if (b->strict)
        return ea_error_set(b->err, EA_EUNSUPPORTED, "unsupported JSON Schema keyword \"%s\" at %s",
                            keyword, path && path[0] ? path : "/");
    /* listed once */
    size_t kl = strlen(keyword);
    const char *p = b->unenforced.data;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == kl && memcmp(p, keyword, kl) == 0)
            return EA_OK;
        p = e ? e + 1 : NULL;
    }
    if ((b->unenforced.len && ea__buf_putc(&b->unenforced, ',') != EA_OK) ||
        ea__buf_puts(&b->unenforced, keyword) != EA_OK)
        return ea_error_set(b->err, EA_ETOOBIG, "grammar: too many unenforced keywords");
    return EA_OK;
}

/* ---- AST ---------------------------------------------------------------------- */

static struct gr_ast *ast_new(struct gr_build *b, uint8_t kind)
{
    struct gr_ast *a = ea__gr_alloc(&b->arena, sizeof *a);
    if (a)
        a->kind = kind;
    return a;
}

struct gr_ast *ea__gr_none(struct gr_build *b) { return ast_new(b, GR_NONE); }
struct gr_ast *ea__gr_empty(struct gr_build *b) { return ast_new(b, GR_EMPTY); }

struct gr_ast *ea__gr_byte_range(struct gr_build *b, unsigned lo, unsigned hi)
{
    struct gr_ast *a = ast_new(b, GR_BYTES);
    if (!a)
        return NULL;
    for (unsigned c = lo; c <= hi && c < 256; c++)
        a->set[c >> 5] |= 1u << (c & 31);
    return a;
}

static struct gr_ast *ast_list(struct gr_build *b, uint8_t kind, uint32_t n, struct gr_ast **kids)
{
    for (uint32_t i = 0; i < n; i++)
        if (!kids[i])
            return NULL;
    if (n == 0)
        return kind == GR_CAT ? ea__gr_empty(b) : ea__gr_none(b);
    if (n == 1)
        return kids[0];
    struct gr_ast *a = ast_new(b, kind);
    if (!a)
        return NULL;
    a->kids = ea__gr_alloc(&b->arena, n * sizeof *a->kids);
    if (!a->kids)
        return NULL;
    memcpy(a->kids, kids, n * sizeof *kids);
    a->n = n;
    return a;
}

struct gr_ast *ea__gr_cat(struct gr_build *b, uint32_t n, struct gr_ast **kids)
{
    return ast_list(b, GR_CAT, n, kids);
}

struct gr_ast *ea__gr_alt(struct gr_build *b, uint32_t n, struct gr_ast **kids)
{
    return ast_list(b, GR_ALT, n, kids);
}

struct gr_ast *ea__gr_cat2(struct gr_build *b, struct gr_ast *x, struct gr_ast *y)
{
    struct gr_ast *k[2] = {x, y};
    return ast_list(b, GR_CAT, 2, k);
}

struct gr_ast *ea__gr_alt2(struct gr_build *b, struct gr_ast *x, struct gr_ast *y)
{
    struct gr_ast *k[2] = {x, y};
    return ast_list(b, GR_ALT, 2, k);
}

struct gr_ast *ea__gr_lit(struct gr_build *b, const char *s, size_t n)
{
    if (n == 0)
        return ea__gr_empty(b);
    struct gr_ast *a = ast_new(b, GR_CAT);
    if (!a)
        return NULL;
    a->kids = ea__gr_alloc(&b->arena, n * sizeof *a->kids);
    if (!a->kids)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(a->kids[i] = ea__gr_byte_range(b, c, c)))
            return NULL;
    }
    a->n = (uint32_t)n;
    return n == 1 ? a->kids[0] : a;
}

struct gr_ast *ea__gr_rep(struct gr_build *b, struct gr_ast *x, uint32_t min, uint32_t max)
{
    if (!x)
        return NULL;
    struct gr_ast *a = ast_new(b, GR_REP);
    if (!a)
        return NULL;
    a->kids = ea__gr_alloc(&b->arena, sizeof *a->kids);
    if (!a->kids)
        return NULL;
    a->kids[0] = x;
    a->n = 1;
    a->min = min;
    a->max = max;
    return a;
}

struct gr_ast *ea__gr_call(struct gr_build *b, uint32_t rule)
{
    struct gr_ast *a = ast_new(b, GR_CALL);
    if (a)
        a->rule = rule;
    return a;
}

struct gr_ast *ea__gr_shared(struct gr_build *b, struct gr_ast *x)
{
    if (!x)
        return NULL;
    struct gr_ast *a = ast_new(b, GR_SHARED);
    if (!a || !(a->kids = ea__gr_alloc(&b->arena, sizeof *a->kids)))
        return NULL;
    a->kids[0] = x;
    a->n = 1;
    return a;
}

/* ---- code point sets ------------------------------------------------------------ */

#define GR_CP_MAX 0x10FFFFu

ea_status ea__gr_cpset_add(struct gr_build *b, struct gr_cpset *s, uint32_t lo, uint32_t hi)
{
    if (lo > hi)
        return EA_OK;
    if (hi > GR_CP_MAX)
        hi = GR_CP_MAX;
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 8;
        uint32_t(*r)[2] = ea__gr_alloc(&b->arena, cap * sizeof *r);
        if (!r)
            return ea_error_set(b->err, EA_ENOMEM, "grammar: out of memory");
        if (s->n)
            memcpy(r, s->r, s->n * sizeof *r);
        s->r = r;
        s->cap = cap;
    }
    /* insert, then merge overlapping/adjacent ranges */
    uint32_t i = s->n;
    while (i > 0 && s->r[i - 1][0] > lo) {
        s->r[i][0] = s->r[i - 1][0];
        s->r[i][1] = s->r[i - 1][1];
        i--;
    }
    s->r[i][0] = lo;
    s->r[i][1] = hi;
    s->n++;
    uint32_t w = 0;
    for (uint32_t k = 1; k < s->n; k++) {
        if (s->r[k][0] <= s->r[w][1] + 1) {
            if (s->r[k][1] > s->r[w][1])
                s->r[w][1] = s->r[k][1];
        } else {
            w++;
            s->r[w][0] = s->r[k][0];
            s->r[w][1] = s->r[k][1];
        }
    }
    s->n = w + 1;
    return EA_OK;
}

ea_status ea__gr_cpset_negate(struct gr_build *b, struct gr_cpset *s)
{
    struct gr_cpset o = {0};
    uint32_t next = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->r[i][0] > next && ea__gr_cpset_add(b, &o, next, s->r[i][0] - 1) != EA_OK)
            return EA_ENOMEM;
        next = s->r[i][1] + 1;
    }
    if (next <= GR_CP_MAX && ea__gr_cpset_add(b, &o, next, GR_CP_MAX) != EA_OK)
        return EA_ENOMEM;
    *s = o;
    return EA_OK;
}

static size_t utf8_put(uint32_t cp, uint8_t *o)
{
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | (cp >> 6));
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12));
        o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18));
    o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Appends a (NULL: out of memory) to the growable list of alternatives. */
static ea_status push_alt(struct gr_build *b, struct gr_ast *a, struct gr_ast ***alts, uint32_t *n,
                          uint32_t *cap)
{
    if (!a)
        return EA_ENOMEM;
    if (*n == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 16;
        struct gr_ast **na = ea__gr_alloc(&b->arena, nc * sizeof *na);
        if (!na)
            return EA_ENOMEM;
        if (*n)
            memcpy(na, *alts, *n * sizeof *na);
        *alts = na;
        *cap = nc;
    }
    (*alts)[(*n)++] = a;
    return EA_OK;
}

/* [lo, hi] of one encoded length as a union of byte-range sequences: split
 * until the range covers whole blocks of trailing bytes, then each position
 * is one byte range (the RE2 / regex-syntax method). */
static ea_status utf8_seqs(struct gr_build *b, uint32_t lo, uint32_t hi, struct gr_ast ***alts,
                           uint32_t *n, uint32_t *cap, unsigned depth)
{
    static const uint32_t bounds[] = {0x7F, 0x7FF, 0xFFFF, GR_CP_MAX};
    for (unsigned i = 0; i < 3; i++)
        if (lo <= bounds[i] && hi > bounds[i]) {
            if (utf8_seqs(b, lo, bounds[i], alts, n, cap, depth + 1) != EA_OK)
                return EA_ENOMEM;
            return utf8_seqs(b, bounds[i] + 1, hi, alts, n, cap, depth + 1);
        }
    if (hi >= 0x80)
        for (unsigned i = 1; i < 4; i++) {
            uint32_t m = (1u << (6 * i)) - 1;
            if ((lo & ~m) != (hi & ~m)) {
                if ((lo & m) != 0) {
                    if (utf8_seqs(b, lo, lo | m, alts, n, cap, depth + 1) != EA_OK)
                        return EA_ENOMEM;
                    return utf8_seqs(b, (lo | m) + 1, hi, alts, n, cap, depth + 1);
                }
                if ((hi & m) != m) {
                    if (utf8_seqs(b, lo, (hi & ~m) - 1, alts, n, cap, depth + 1) != EA_OK)
                        return EA_ENOMEM;
                    return utf8_seqs(b, hi & ~m, hi, alts, n, cap, depth + 1);
                }
            }
        }
    uint8_t el[4], eh[4];
    size_t len = utf8_put(lo, el);
    utf8_put(hi, eh);
    struct gr_ast *k[4];
    for (size_t i = 0; i < len; i++)
        if (!(k[i] = ea__gr_byte_range(b, el[i], eh[i])))
            return EA_ENOMEM;
    return push_alt(b, ea__gr_cat(b, (uint32_t)len, k), alts, n, cap);
}

/* Adds [lo, hi] minus the surrogates as raw UTF-8 alternatives. */
static ea_status utf8_range(struct gr_build *b, uint32_t lo, uint32_t hi, struct gr_ast ***alts,
                            uint32_t *n, uint32_t *cap)
{
    if (lo <= 0xDFFF && hi >= 0xD800) {
        if (lo < 0xD800 && utf8_seqs(b, lo, 0xD7FF, alts, n, cap, 0) != EA_OK)
            return EA_ENOMEM;
        if (hi > 0xDFFF && utf8_seqs(b, 0xE000, hi, alts, n, cap, 0) != EA_OK)
            return EA_ENOMEM;
        return EA_OK;
    }
    return utf8_seqs(b, lo, hi, alts, n, cap, 0);
}


struct gr_ast *ea__gr_cpset_ast(struct gr_build *b, const struct gr_cpset *s, bool json)
{
    struct gr_ast **alts = NULL;
    uint32_t n = 0, cap = 0;
    static const char hex[] = "0123456789abcdef";
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t lo = s->r[i][0], hi = s->r[i][1];
        if (!json) {
            if (utf8_range(b, lo, hi, &alts, &n, &cap) != EA_OK)
                return NULL;
            continue;
        }
        for (uint32_t c = lo; c <= hi && c < 0x20; c++) { /* controls: escaped */
            char e[8];
            size_t el;
            switch (c) {
            case '\b': memcpy(e, "\\b", el = 2); break;
            case '\t': memcpy(e, "\\t", el = 2); break;
            case '\n': memcpy(e, "\\n", el = 2); break;
            case '\f': memcpy(e, "\\f", el = 2); break;
            case '\r': memcpy(e, "\\r", el = 2); break;
            default:
                memcpy(e, "\\u00", 4);
                e[4] = hex[c >> 4];
                e[5] = hex[c & 15];
                el = 6;
            }
            if (push_alt(b, ea__gr_lit(b, e, el), &alts, &n, &cap) != EA_OK)
                return NULL;
        }
        if (hi < 0x20)
            continue;
        if (lo < 0x20)
            lo = 0x20;
        /* split around '"' (0x22) and '\\' (0x5C) */
        uint32_t cuts[2] = {'"', '\\'};
        uint32_t from = lo;
        for (unsigned k = 0; k < 2; k++) {
            uint32_t c = cuts[k];
            if (c < from || c > hi)
                continue;
            if (c > from && utf8_range(b, from, c - 1, &alts, &n, &cap) != EA_OK)
                return NULL;
            if (push_alt(b, ea__gr_lit(b, c == '"' ? "\\\"" : "\\\\", 2), &alts, &n, &cap) != EA_OK)
                return NULL;
            from = c + 1;
        }
        if (from <= hi && utf8_range(b, from, hi, &alts, &n, &cap) != EA_OK)
            return NULL;
    }
    return ea__gr_alt(b, n, alts);
}

/* ---- NFA ---------------------------------------------------------------------- */

enum { NE_EPS, NE_BYTES, NE_CALL };

struct nedge {
    uint32_t from, to;
    uint32_t callee;
    uint8_t kind, lo, hi;
};

struct nfa {
    struct gr_build *b;
    uint32_t stamp;
    uint32_t n_states;
    struct nedge *e;
    uint32_t n_e, cap_e;
};

#define GR_NFA_MAX_STATES (EA_GRAMMAR_MAX_STATES * 4u)
/* NFA states stored over all DFA states of one subset construction: bounds
 * its memory and time where determinisation blows up ((.+).{n} and kin). */
#define GR_SUBSET_POOL_MAX (1u << 21)
#define GR_SUBSET_WORK_MAX (1u << 23) /* NFA states and moves visited, per automaton */

static ea_status nfa_state(struct nfa *f, uint32_t *s)
{
    if (f->n_states >= GR_NFA_MAX_STATES)
        return ea_error_set(f->b->err, EA_ETOOBIG,
                            "grammar: automaton exceeds %u states (repetition counts too large?)",
                            GR_NFA_MAX_STATES);
    *s = f->n_states++;
    return EA_OK;
}

static ea_status nfa_edge(struct nfa *f, uint32_t from, uint32_t to, uint8_t kind, unsigned lo,
                          unsigned hi, uint32_t callee)
{
    if (f->n_e == f->cap_e) {
        uint32_t cap = f->cap_e ? f->cap_e * 2 : 64;
        if (cap > GR_NFA_MAX_STATES * 8u)
            return ea_error_set(f->b->err, EA_ETOOBIG, "grammar: automaton too large");
        struct nedge *e = ea_realloc(f->e, cap * sizeof *e);
        if (!e)
            return ea_error_set(f->b->err, EA_ENOMEM, "grammar: out of memory");
        f->e = e;
        f->cap_e = cap;
    }
    f->e[f->n_e++] = (struct nedge){from, to, callee, kind, (uint8_t)lo, (uint8_t)hi};
    return EA_OK;
}

static ea_status nfa_build(struct nfa *f, const struct gr_ast *a, uint32_t from, uint32_t to,
                           unsigned depth)
{
    ea_status st;
    if (depth > 4 * EA_GRAMMAR_MAX_DEPTH + 64)
        return ea_error_set(f->b->err, EA_ETOOBIG, "grammar: expression nested too deeply");
    switch (a->kind) {
    case GR_NONE:
        return EA_OK;
    case GR_EMPTY:
        return nfa_edge(f, from, to, NE_EPS, 0, 0, 0);
    case GR_CALL:
        return nfa_edge(f, from, to, NE_CALL, 0, 0, a->rule);
    case GR_SHARED: {
        struct gr_ast *m = (struct gr_ast *)a;
        if (m->stamp == f->stamp && m->to_state == to)
            return nfa_edge(f, from, m->s_state, NE_EPS, 0, 0, 0);
        uint32_t s0 = 0;
        if ((st = nfa_state(f, &s0)) != EA_OK || (st = nfa_edge(f, from, s0, NE_EPS, 0, 0, 0)) != EA_OK ||
            (st = nfa_build(f, a->kids[0], s0, to, depth + 1)) != EA_OK)
            return st;
        if (m->stamp != f->stamp) { /* first use in this NFA: remember it */
            m->stamp = f->stamp;
            m->s_state = s0;
            m->to_state = to;
        }
        return EA_OK;
    }
    case GR_BYTES:
        for (unsigned c = 0; c < 256;) {
            if (!(a->set[c >> 5] & (1u << (c & 31)))) {
                uint32_t rest = a->set[c >> 5] >> (c & 31);
                c = rest ? c + (unsigned)__builtin_ctz(rest) : (c | 31) + 1;
                continue;
            }
            unsigned lo = c;
            while (c < 256 && (a->set[c >> 5] & (1u << (c & 31))))
                c++;
            if ((st = nfa_edge(f, from, to, NE_BYTES, lo, c - 1, 0)) != EA_OK)
                return st;
        }
        return EA_OK;
    case GR_ALT:
        for (uint32_t i = 0; i < a->n; i++)
            if ((st = nfa_build(f, a->kids[i], from, to, depth + 1)) != EA_OK)
                return st;
        return EA_OK;
    case GR_CAT: {
        uint32_t cur = from;
        for (uint32_t i = 0; i < a->n; i++) {
            uint32_t nx = to;
            if (i + 1 < a->n && (st = nfa_state(f, &nx)) != EA_OK)
                return st;
            if ((st = nfa_build(f, a->kids[i], cur, nx, depth + 1)) != EA_OK)
                return st;
            cur = nx;
        }
        return EA_OK;
    }
    case GR_REP: {
        if (a->min > EA_GRAMMAR_MAX_REPEAT || (a->max != GR_INF && a->max > EA_GRAMMAR_MAX_REPEAT))
            return ea_error_set(f->b->err, EA_ETOOBIG, "grammar: repetition count above %u",
                                EA_GRAMMAR_MAX_REPEAT);
        if (a->max != GR_INF && a->max < a->min)
            return EA_OK; /* matches nothing */
        uint32_t cur = 0;
        if ((st = nfa_state(f, &cur)) != EA_OK || (st = nfa_edge(f, from, cur, NE_EPS, 0, 0, 0)) != EA_OK)
            return st;
        for (uint32_t i = 0; i < a->min; i++) {
            uint32_t nx = 0;
            if ((st = nfa_state(f, &nx)) != EA_OK ||
                (st = nfa_build(f, a->kids[0], cur, nx, depth + 1)) != EA_OK)
                return st;
            cur = nx;
        }
        if (a->max == GR_INF) {
            uint32_t loop = 0;
            if ((st = nfa_state(f, &loop)) != EA_OK ||
                (st = nfa_edge(f, cur, loop, NE_EPS, 0, 0, 0)) != EA_OK ||
                (st = nfa_build(f, a->kids[0], loop, loop, depth + 1)) != EA_OK ||
                (st = nfa_edge(f, loop, to, NE_EPS, 0, 0, 0)) != EA_OK)
                return st;
            return EA_OK;
        }
        for (uint32_t i = a->min; i < a->max; i++) {
            uint32_t nx = 0;
            if ((st = nfa_edge(f, cur, to, NE_EPS, 0, 0, 0)) != EA_OK ||
                (st = nfa_state(f, &nx)) != EA_OK ||
                (st = nfa_build(f, a->kids[0], cur, nx, depth + 1)) != EA_OK)
                return st;
            cur = nx;
        }
        return nfa_edge(f, cur, to, NE_EPS, 0, 0, 0);
    }
    }
    return ea_error_set(f->b->err, EA_EINTERNAL, "grammar: bad AST node");
}

/* ---- subset construction --------------------------------------------------------- */

struct subset {
    struct gr_build *b;
    const struct nfa *f;
    uint32_t *eoff;   /* CSR of edges by from state */
    uint32_t *eidx;
    uint32_t *mark;   /* generation marks per NFA state */
    uint32_t gen;
    uint32_t *stack;
    /* DFA state sets */
    uint32_t *pool;
    size_t n_pool, cap_pool;
    size_t *soff;     /* [n_dfa + 1] */
    uint32_t n_dfa, cap_dfa;
    uint32_t *ht;     /* open addressing: dfa id + 1 */
    uint32_t ht_cap;
    uint32_t *tmp;    /* scratch set */
    size_t work;      /* NFA states visited so far (bounded) */
};

static uint64_t hash_u32s(const uint32_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    return h;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Epsilon closure of tmp[0..n) in place (sorted on return); returns size. */
static uint32_t eps_closure(struct subset *s, uint32_t n)
{
    s->gen++;
    uint32_t sp = 0;
    for (uint32_t i = 0; i < n; i++) {
        s->mark[s->tmp[i]] = s->gen;
        s->stack[sp++] = s->tmp[i];
    }
    while (sp) {
        uint32_t q = s->stack[--sp];
        s->work += s->eoff[q + 1] - s->eoff[q];
        for (uint32_t k = s->eoff[q]; k < s->eoff[q + 1]; k++) {
            const struct nedge *e = &s->f->e[s->eidx[k]];
            if (e->kind == NE_EPS && s->mark[e->to] != s->gen) {
                s->mark[e->to] = s->gen;
                s->stack[sp++] = e->to;
                s->tmp[n++] = e->to;
            }
        }
    }
    if (n > 1)
        qsort(s->tmp, n, sizeof *s->tmp, cmp_u32);
    s->work += n;
    return n;
}

/* DFA id of set tmp[0..n), adding it when new; -1 on failure (err set). */
static int64_t subset_id(struct subset *s, uint32_t n)
{
    if (n == 0)
        return -2;
    if (!s->ht_cap) {
        if (!(s->ht = ea_calloc(256, sizeof *s->ht)))
            goto nomem;
        s->ht_cap = 256;
    }
    uint64_t h = hash_u32s(s->tmp, n);
    uint32_t mask = s->ht_cap - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        uint32_t v = s->ht[i];
        if (!v)
            break;
        uint32_t id = v - 1;
        size_t len = s->soff[id + 1] - s->soff[id];
        if (len == n && memcmp(s->pool + s->soff[id], s->tmp, n * sizeof *s->tmp) == 0)
            return id;
    }
    if (s->n_pool + n > GR_SUBSET_POOL_MAX || s->work > GR_SUBSET_WORK_MAX) {
        ea_error_set(s->b->err, EA_ETOOBIG,
                     "grammar: pattern too complex to determinise (a repetition followed by many "
                     "fixed items?)");
        return -1;
    }
    if (s->b->total_states + s->n_dfa + 1 > EA_GRAMMAR_MAX_STATES) {
        ea_error_set(s->b->err, EA_ETOOBIG, "grammar: more than %u automaton states",
                     EA_GRAMMAR_MAX_STATES);
        return -1;
    }
    if (s->n_pool + n > s->cap_pool) {
        size_t cap = s->cap_pool ? s->cap_pool * 2 : 1024;
        while (cap < s->n_pool + n)
            cap *= 2;
        uint32_t *p = ea_realloc(s->pool, cap * sizeof *p);
        if (!p)
            goto nomem;
        s->pool = p;
        s->cap_pool = cap;
    }
    if (s->n_dfa + 2 > s->cap_dfa) {
        uint32_t cap = s->cap_dfa ? s->cap_dfa * 2 : 64;
        size_t *o = ea_realloc(s->soff, (cap + 1) * sizeof *o);
        if (!o)
            goto nomem;
        s->soff = o;
        s->cap_dfa = cap;
    }
    if ((s->n_dfa + 1) * 2 > s->ht_cap) {
        uint32_t nc = s->ht_cap ? s->ht_cap * 2 : 256;
        uint32_t *nh = ea_calloc(nc, sizeof *nh);
        if (!nh)
            goto nomem;
        for (uint32_t id = 0; id < s->n_dfa; id++) {
            uint64_t hh = hash_u32s(s->pool + s->soff[id], s->soff[id + 1] - s->soff[id]);
            uint32_t j = (uint32_t)hh & (nc - 1);
            while (nh[j])
                j = (j + 1) & (nc - 1);
            nh[j] = id + 1;
        }
        ea_free(s->ht);
        s->ht = nh;
        s->ht_cap = nc;
        mask = nc - 1;
    }
    uint32_t id = s->n_dfa++;
    memcpy(s->pool + s->n_pool, s->tmp, n * sizeof *s->tmp);
    s->soff[id] = s->n_pool;
    s->n_pool += n;
    s->soff[id + 1] = s->n_pool;
    uint32_t j = (uint32_t)h & mask;
    while (s->ht[j])
        j = (j + 1) & mask;
    s->ht[j] = id + 1;
    return id;
nomem:
    ea_error_set(s->b->err, EA_ENOMEM, "grammar: out of memory");
    return -1;
}

struct callpair {
    uint32_t callee, to;
};

static int cmp_callpair(const void *a, const void *b)
{
    const struct callpair *x = a, *y = b;
    if (x->callee != y->callee)
        return x->callee < y->callee ? -1 : 1;
    return x->to < y->to ? -1 : x->to > y->to;
}

/* live[i] = state i can reach an accepting state (calls count when prod is
 * NULL or prod[callee]); a backward search over reversed edges. */
static ea_status coreach(const struct gr_dfa *d, const uint8_t *prod, uint8_t *live)
{
    uint32_t n = d->n_states;
    size_t ne = 0;
    uint32_t *cnt = ea_calloc((size_t)n + 1, sizeof *cnt);
    uint32_t *stack = ea_malloc(((size_t)n + 1) * sizeof *stack);
    uint32_t *src = NULL;
    if (!cnt || !stack)
        goto nomem;
    for (uint32_t i = 0; i < n; i++) {
        const int32_t *row = d->next + (size_t)i * d->n_cls;
        for (uint32_t c = 0; c < d->n_cls; c++)
            if (row[c] >= 0 && (c == 0 || row[c] != row[c - 1])) {
                cnt[row[c] + 1]++;
                ne++;
            }
        for (uint32_t k = d->call_off[i]; k < d->call_off[i + 1]; k++)
            if (!prod || prod[d->calls[k].callee]) {
                cnt[d->calls[k].ret + 1]++;
                ne++;
            }
    }
    for (uint32_t i = 0; i < n; i++)
        cnt[i + 1] += cnt[i];
    if (!(src = ea_malloc((ne ? ne : 1) * sizeof *src)))
        goto nomem;
    for (uint32_t i = 0; i < n; i++) {
        const int32_t *row = d->next + (size_t)i * d->n_cls;
        for (uint32_t c = 0; c < d->n_cls; c++)
            if (row[c] >= 0 && (c == 0 || row[c] != row[c - 1]))
                src[cnt[row[c]]++] = i;
        for (uint32_t k = d->call_off[i]; k < d->call_off[i + 1]; k++)
            if (!prod || prod[d->calls[k].callee])
                src[cnt[d->calls[k].ret]++] = i;
    }
    /* cnt[t] is now the end of t's sources; starts are cnt[t - 1] */
    uint32_t sp = 0;
    for (uint32_t i = 0; i < n; i++) {
        live[i] = d->accept[i];
        if (live[i])
            stack[sp++] = i;
    }
    while (sp) {
        uint32_t t = stack[--sp];
        for (uint32_t k = t ? cnt[t - 1] : 0; k < cnt[t]; k++)
            if (!live[src[k]]) {
                live[src[k]] = 1;
                stack[sp++] = src[k];
            }
    }
    ea_free(cnt);
    ea_free(stack);
    ea_free(src);
    return EA_OK;
nomem:
    ea_free(cnt);
    ea_free(stack);
    ea_free(src);
    return EA_ENOMEM;
}

/* Removes states that are unreachable or cannot reach an accepting state;
 * state 0 stays the start (it may be left dead: an empty language). */
static ea_status dfa_trim(struct gr_build *b, struct gr_dfa *d)
{
    uint32_t n = d->n_states;
    uint8_t *live = ea_calloc(n ? n : 1, 1);
    uint8_t *reach = ea_calloc(n ? n : 1, 1);
    uint32_t *stack = ea_malloc((n ? n : 1) * sizeof *stack);
    uint32_t *map = ea_malloc((n ? n : 1) * sizeof *map);
    ea_status st = EA_OK;
    if (!live || !reach || !stack || !map) {
        st = ea_error_set(b->err, EA_ENOMEM, "grammar: out of memory");
        goto out;
    }
    if (coreach(d, NULL, live) != EA_OK) {
        st = ea_error_set(b->err, EA_ENOMEM, "grammar: out of memory");
        goto out;
    }
    uint32_t sp = 0;
    if (n) {
        reach[0] = 1;
        stack[sp++] = 0;
    }
    while (sp) {
        uint32_t i = stack[--sp];
        if (!live[i])
            continue;
        for (uint32_t c = 0; c < d->n_cls; c++) {
            int32_t t = d->next[(size_t)i * d->n_cls + c];
            if (t >= 0 && live[t] && !reach[t]) {
                reach[t] = 1;
                stack[sp++] = (uint32_t)t;
            }
        }
        for (uint32_t k = d->call_off[i]; k < d->call_off[i + 1]; k++) {
            uint32_t t = d->calls[k].ret;
            if (live[t] && !reach[t]) {
                reach[t] = 1;
                stack[sp++] = t;
            }
        }
    }
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++)
        map[i] = (i == 0 || (reach[i] && live[i])) ? m++ : GR_NIL;
    /* compact in place (map is increasing) */
    uint32_t nc = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (map[i] == GR_NIL)
            continue;
        uint32_t ni = map[i];
        for (uint32_t c = 0; c < d->n_cls; c++) {
            int32_t t = d->next[(size_t)i * d->n_cls + c];
            d->next[(size_t)ni * d->n_cls + c] = (t >= 0 && map[t] != GR_NIL && live[t]) ? (int32_t)map[t] : -1;
        }
        d->accept[ni] = d->accept[i];
        uint32_t k0 = d->call_off[i], k1 = d->call_off[i + 1];
        d->call_off[ni] = nc;
        for (uint32_t k = k0; k < k1; k++) {
            uint32_t t = d->calls[k].ret;
            if (live[t] && map[t] != GR_NIL && live[i])
                d->calls[nc++] = (struct gr_call){d->calls[k].callee, map[t]};
        }
    }
    d->call_off[m] = nc;
    d->n_states = m;
out:
    ea_free(live);
    ea_free(reach);
    ea_free(stack);
    ea_free(map);
    return st;
}

static ea_status nfa_to_dfa(struct gr_build *b, struct nfa *f, uint32_t start, uint32_t accept,
                            struct gr_dfa **out)
{
    struct subset s = {.b = b, .f = f};
    struct gr_dfa *d = ea_calloc(1, sizeof *d);
    struct callpair *cp = NULL, *mv = NULL;
    uint32_t *mvs = NULL;
    uint32_t cap_cp = 0, cap_mv = 0;
    uint32_t ccount[258];
    uint32_t cap_states = 0, cap_calls = 0, n_calls = 0;
    ea_status st = EA_OK;
    uint32_t n = f->n_states;
    s.eoff = ea_calloc(n + 1, sizeof *s.eoff);
    s.eidx = ea_malloc((f->n_e ? f->n_e : 1) * sizeof *s.eidx);
    s.mark = ea_calloc(n, sizeof *s.mark);
    s.stack = ea_malloc(n * sizeof *s.stack);
    s.tmp = ea_malloc(n * sizeof *s.tmp);
    if (!d || !s.eoff || !s.eidx || !s.mark || !s.stack || !s.tmp)
        goto nomem;
    for (uint32_t i = 0; i < f->n_e; i++)
        s.eoff[f->e[i].from + 1]++;
    for (uint32_t i = 0; i < n; i++)
        s.eoff[i + 1] += s.eoff[i];
    {
        uint32_t *fill = ea_malloc((n + 1) * sizeof *fill);
        if (!fill)
            goto nomem;
        memcpy(fill, s.eoff, (n + 1) * sizeof *fill);
        for (uint32_t i = 0; i < f->n_e; i++)
            s.eidx[fill[f->e[i].from]++] = i;
        ea_free(fill);
    }
    /* byte classes */
    uint8_t bnd[257] = {0};
    for (uint32_t i = 0; i < f->n_e; i++)
        if (f->e[i].kind == NE_BYTES) {
            bnd[f->e[i].lo] = 1;
            bnd[f->e[i].hi + 1] = 1;
        }
    d->cls[0] = 0;
    for (unsigned c = 1; c < 256; c++)
        d->cls[c] = (uint8_t)(d->cls[c - 1] + bnd[c]);
    d->n_cls = d->cls[255] + 1u;

    s.tmp[0] = start;
    if (subset_id(&s, eps_closure(&s, 1)) < 0)
        goto fail;
    for (uint32_t id = 0; id < s.n_dfa; id++) {
        if (id + 1 > cap_states) {
            uint32_t cap = cap_states ? cap_states * 2 : 64;
            int32_t *nx = ea_realloc(d->next, (size_t)cap * d->n_cls * sizeof *nx);
            if (!nx)
                goto nomem;
            d->next = nx;
            uint8_t *ac = ea_realloc(d->accept, cap);
            if (!ac)
                goto nomem;
            d->accept = ac;
            uint32_t *co = ea_realloc(d->call_off, (cap + 1) * sizeof *co);
            if (!co)
                goto nomem;
            d->call_off = co;
            cap_states = cap;
        }
        d->accept[id] = 0;
        d->call_off[id] = n_calls;
        size_t o0 = s.soff[id], o1 = s.soff[id + 1];
        for (size_t k = o0; k < o1; k++)
            if (s.pool[k] == accept)
                d->accept[id] = 1;
        /* byte moves, bucketed by class in one pass over the set's edges */
        uint32_t np = 0;
        for (uint32_t c = 0; c <= d->n_cls; c++)
            ccount[c] = 0;
        for (size_t k = s.soff[id]; k < s.soff[id + 1]; k++) {
            uint32_t q = s.pool[k];
            for (uint32_t j = s.eoff[q]; j < s.eoff[q + 1]; j++) {
                const struct nedge *e = &f->e[s.eidx[j]];
                if (e->kind != NE_BYTES)
                    continue;
                for (uint32_t c = d->cls[e->lo]; c <= d->cls[e->hi]; c++) {
                    if (np == cap_mv) {
                        uint32_t cap = cap_mv ? cap_mv * 2 : 256;
                        struct callpair *nm = ea_realloc(mv, cap * sizeof *nm);
                        uint32_t *no = ea_realloc(mvs, cap * sizeof *no);
                        if (nm)
                            mv = nm;
                        if (no)
                            mvs = no;
                        if (!nm || !no)
                            goto nomem;
                        cap_mv = cap;
                    }
                    mv[np++] = (struct callpair){c, e->to};
                    ccount[c + 1]++;
                }
            }
        }
        s.work += np;
        for (uint32_t c = 0; c < d->n_cls; c++)
            ccount[c + 1] += ccount[c];
        for (uint32_t i = 0; i < np; i++)
            mvs[ccount[mv[i].callee]++] = mv[i].to;
        /* ccount[c] is now the end of class c's targets */
        for (uint32_t c = 0; c < d->n_cls; c++) {
            uint32_t b0 = c ? ccount[c - 1] : 0, b1 = ccount[c];
            uint32_t m = 0;
            s.gen++;
            for (uint32_t i = b0; i < b1; i++)
                if (s.mark[mvs[i]] != s.gen) {
                    s.mark[mvs[i]] = s.gen;
                    s.tmp[m++] = mvs[i];
                }
            int64_t t = subset_id(&s, m ? eps_closure(&s, m) : 0);
            if (t == -1)
                goto fail;
            d->next[(size_t)id * d->n_cls + c] = t < 0 ? -1 : (int32_t)t;
        }
        /* calls: group targets by callee */
        uint32_t ncp = 0;
        for (size_t k = s.soff[id]; k < s.soff[id + 1]; k++) {
            uint32_t q = s.pool[k];
            for (uint32_t j = s.eoff[q]; j < s.eoff[q + 1]; j++) {
                const struct nedge *e = &f->e[s.eidx[j]];
                if (e->kind != NE_CALL)
                    continue;
                if (ncp == cap_cp) {
                    uint32_t cap = cap_cp ? cap_cp * 2 : 16;
                    struct callpair *ncp2 = ea_realloc(cp, cap * sizeof *ncp2);
                    if (!ncp2)
                        goto nomem;
                    cp = ncp2;
                    cap_cp = cap;
                }
                cp[ncp++] = (struct callpair){e->callee, e->to};
            }
        }
        if (ncp > 1)
            qsort(cp, ncp, sizeof *cp, cmp_callpair);
        for (uint32_t i = 0; i < ncp;) {
            uint32_t j = i, m = 0;
            while (j < ncp && cp[j].callee == cp[i].callee) {
                if (!m || s.tmp[m - 1] != cp[j].to)
                    s.tmp[m++] = cp[j].to;
                j++;
            }
            int64_t t = subset_id(&s, eps_closure(&s, m));
            if (t < 0)
                goto fail;
            if (n_calls == cap_calls) {
                uint32_t cap = cap_calls ? cap_calls * 2 : 16;
                struct gr_call *nc = ea_realloc(d->calls, cap * sizeof *nc);
                if (!nc)
                    goto nomem;
                d->calls = nc;
                cap_calls = cap;
            }
            d->calls[n_calls++] = (struct gr_call){cp[i].callee, (uint32_t)t};
            i = j;
        }
    }
    d->n_states = s.n_dfa;
    d->call_off[s.n_dfa] = n_calls;
    if (!d->calls && !(d->calls = ea_malloc(sizeof *d->calls)))
        goto nomem;
    if ((st = dfa_trim(b, d)) != EA_OK)
        goto fail;
    b->total_states += d->n_states;
    *out = d;
    d = NULL;
    goto out;
nomem:
    ea_error_set(b->err, EA_ENOMEM, "grammar: out of memory");
fail:
    st = b->err && b->err->status != EA_OK ? b->err->status : EA_ENOMEM;
out:
    ea__gr_dfa_free(d);
    ea_free(cp);
    ea_free(mv);
    ea_free(mvs);
    ea_free(s.eoff);
    ea_free(s.eidx);
    ea_free(s.mark);
    ea_free(s.stack);
    ea_free(s.tmp);
    ea_free(s.pool);
    ea_free(s.soff);
    ea_free(s.ht);
    return st;
}

ea_status ea__gr_dfa_from_ast(struct gr_build *b, struct gr_ast *ast, struct gr_dfa **out)
{
    if (!ast)
        return ea_error_set(b->err, EA_ENOMEM, "grammar: out of memory");
    struct nfa f = {.b = b, .stamp = ++b->nfa_stamp};
    uint32_t s0, s1;
    ea_status st;
    if ((st = nfa_state(&f, &s0)) != EA_OK || (st = nfa_state(&f, &s1)) != EA_OK ||
        (st = nfa_build(&f, ast, s0, s1, 0)) != EA_OK)
        goto out;
    st = nfa_to_dfa(b, &f, s0, s1, out);
out:
    ea_free(f.e);
    return st;
}

ea_status ea__gr_rule_set_ast(struct gr_build *b, uint32_t id, struct gr_ast *ast)
{
    struct gr_dfa *d = NULL;
    ea_status st = ea__gr_dfa_from_ast(b, ast, &d);
    if (st == EA_OK)
        ea__gr_rule_set_dfa(b, id, d);
    return st;
}

ea_status ea__gr_dfa_intersect(struct gr_build *b, const struct gr_dfa *x, const struct gr_dfa *y,
                               struct gr_dfa **out)
{
    struct gr_dfa *d = ea_calloc(1, sizeof *d);
    uint32_t *pairs = NULL; /* [2 * n] */
    uint32_t *ht = NULL;
    uint32_t n = 0, cap = 0, ht_cap = 0;
    ea_status st = EA_OK;
    if (!d)
        goto nomem;
    /* combined classes */
    uint8_t rep[256];
    uint32_t ncls = 0;
    {
        uint16_t seen[256];
        for (unsigned c = 0; c < 256; c++) {
            unsigned k;
            for (k = 0; k < ncls; k++)
                if (x->cls[rep[k]] == x->cls[c] && y->cls[rep[k]] == y->cls[c])
                    break;
            if (k == ncls)
                rep[ncls++] = (uint8_t)c;
            seen[c] = (uint16_t)k;
        }
        for (unsigned c = 0; c < 256; c++)
            d->cls[c] = (uint8_t)seen[c];
        d->n_cls = ncls;
    }
    /* BFS over pairs */
    ht_cap = 1024;
    if (!(ht = ea_calloc(ht_cap, sizeof *ht)))
        goto nomem;
#define PAIR_KEY(a, c) (((uint64_t)(a) << 32) | (c))
    uint32_t cap_states = 0; /* rows allocated in d */
    /* the start pair, then breadth first */
    for (uint32_t id = 0;; id++) {
        if (id == 0) {
            cap = 64;
            if (!(pairs = ea_malloc(2 * cap * sizeof *pairs)))
                goto nomem;
            pairs[0] = 0;
            pairs[1] = 0;
            n = 1;
            uint64_t h = PAIR_KEY(0, 0) * 0x9E3779B97F4A7C15ull;
            ht[(h >> 40) & (ht_cap - 1)] = 1;
        }
        if (id >= n)
            break;
        if (id + 1 > cap_states) {
            uint32_t nc = cap_states ? cap_states * 2 : 64;
            while (nc < n + 1)
                nc *= 2;
            int32_t *nx = ea_realloc(d->next, (size_t)nc * ncls * sizeof *nx);
            if (!nx)
                goto nomem;
            d->next = nx;
            uint8_t *ac = ea_realloc(d->accept, nc);
            if (!ac)
                goto nomem;
            d->accept = ac;
            cap_states = nc;
        }
        uint32_t a = pairs[2 * id], c2 = pairs[2 * id + 1];
        d->accept[id] = x->accept[a] && y->accept[c2];
        for (uint32_t k = 0; k < ncls; k++) {
            int32_t ta = x->next[(size_t)a * x->n_cls + x->cls[rep[k]]];
            int32_t tb = y->next[(size_t)c2 * y->n_cls + y->cls[rep[k]]];
            int32_t t = -1;
            if (ta >= 0 && tb >= 0) {
                uint64_t key = PAIR_KEY(ta, tb);
                uint64_t h = key * 0x9E3779B97F4A7C15ull;
                uint32_t j = (uint32_t)(h >> 40) & (ht_cap - 1);
                while (ht[j]) {
                    uint32_t o = ht[j] - 1;
                    if (pairs[2 * o] == (uint32_t)ta && pairs[2 * o + 1] == (uint32_t)tb)
                        break;
                    j = (j + 1) & (ht_cap - 1);
                }
                if (ht[j]) {
                    t = (int32_t)(ht[j] - 1);
                } else {
                    if (b->total_states + n + 1 > EA_GRAMMAR_MAX_STATES) {
                        st = ea_error_set(b->err, EA_ETOOBIG, "grammar: more than %u automaton states",
                                          EA_GRAMMAR_MAX_STATES);
                        goto out;
                    }
                    if (n == cap) {
                        uint32_t *np = ea_realloc(pairs, 4 * cap * sizeof *np);
                        if (!np)
                            goto nomem;
                        pairs = np;
                        cap *= 2;
                    }
                    pairs[2 * n] = (uint32_t)ta;
                    pairs[2 * n + 1] = (uint32_t)tb;
                    t = (int32_t)n;
                    ht[j] = ++n;
                    if (n * 2 > ht_cap) {
                        uint32_t nc = ht_cap * 2;
                        uint32_t *nh = ea_calloc(nc, sizeof *nh);
                        if (!nh)
                            goto nomem;
                        for (uint32_t o = 0; o < n; o++) {
                            uint64_t hh = PAIR_KEY(pairs[2 * o], pairs[2 * o + 1]) * 0x9E3779B97F4A7C15ull;
                            uint32_t jj = (uint32_t)(hh >> 40) & (nc - 1);
                            while (nh[jj])
                                jj = (jj + 1) & (nc - 1);
                            nh[jj] = o + 1;
                        }
                        ea_free(ht);
                        ht = nh;
                        ht_cap = nc;
                    }
                }
            }
            d->next[(size_t)id * ncls + k] = t;
        }
    }
#undef PAIR_KEY
    d->n_states = n;
    if (!(d->call_off = ea_calloc(n + 1, sizeof *d->call_off)) || !(d->calls = ea_malloc(sizeof *d->calls)))
        goto nomem;
    if ((st = dfa_trim(b, d)) != EA_OK)
        goto out;
    b->total_states += d->n_states;
    *out = d;
    d = NULL;
    goto out;
nomem:
    st = ea_error_set(b->err, EA_ENOMEM, "grammar: out of memory");
out:
    ea__gr_dfa_free(d);
    ea_free(pairs);
    ea_free(ht);
    return st;
}

ea_status ea__gr_dfa_complement(struct gr_build *b, struct gr_dfa *d)
{
    /* total automaton: dead transitions go to a new sink state */
    uint32_t n = d->n_states + 1;
    int32_t *nx = ea_realloc(d->next, (size_t)n * d->n_cls * sizeof *nx);
    if (!nx)
        return ea_error_set(b->err, EA_ENOMEM, "grammar: out of memory");
    d->next = nx;
    uint8_t *ac = ea_realloc(d->accept, n);
    if (!ac)
        return ea_error_set(b->err, EA_ENOMEM, "grammar: out of memory");
    d->accept = ac;
    uint32_t *co = ea_realloc(d->call_off, (n + 1) * sizeof *co);
    if (!co)
        return ea_error_set(b->err, EA_ENOMEM, "grammar: out of memory");
    d->call_off = co;
    uint32_t sink = n - 1;
    d->accept[sink] = 0;
    d->call_off[n] = d->call_off[sink];
    for (uint32_t c = 0; c < d->n_cls; c++)
        d->next[(size_t)sink * d->n_cls + c] = (int32_t)sink;
    for (size_t i = 0; i < (size_t)sink * d->n_cls; i++)
        if (d->next[i] < 0)
            d->next[i] = (int32_t)sink;
    for (uint32_t i = 0; i < n; i++)
        d->accept[i] = !d->accept[i];
    d->n_states = n;
    b->total_states += 1;
    return dfa_trim(b, d);
}

/* ---- link ------------------------------------------------------------------------- */

/* base: hash of the tables (fixed), combined here with the current callees */
static uint64_t rule_hash(const struct gr_dfa *d, uint64_t base, const uint32_t *rep)
{
    uint64_t h = base;
    for (uint32_t i = 0; i < d->n_states; i++) {
        h = h * 131 + d->accept[i];
        for (uint32_t k = d->call_off[i]; k < d->call_off[i + 1]; k++)
            h = (h ^ (rep[d->calls[k].callee] * 2654435761u + d->calls[k].ret)) * 1099511628211ull;
    }
    return h;
}

static bool rule_equal(const struct gr_dfa *a, const struct gr_dfa *b, const uint32_t *rep)
{
    if (a->n_states != b->n_states || a->n_cls != b->n_cls || memcmp(a->cls, b->cls, 256) ||
        memcmp(a->next, b->next, (size_t)a->n_states * a->n_cls * sizeof *a->next) ||
        memcmp(a->accept, b->accept, a->n_states) ||
        memcmp(a->call_off, b->call_off, (a->n_states + 1) * sizeof *a->call_off))
        return false;
    for (uint32_t k = 0; k < a->call_off[a->n_states]; k++)
        if (rep[a->calls[k].callee] != rep[b->calls[k].callee] || a->calls[k].ret != b->calls[k].ret)
            return false;
    return true;
}

/* FIRST (bytes that can start what follows a position within its rule),
 * NULL (the rule can end there without a byte) and FOLLOW of each rule (bytes
 * that can come right after it at any call site), to a fixpoint. The mask
 * walk uses FOLLOW to reject tokens that run past the end of a rule into a
 * byte no caller accepts. */
static ea_status compute_follow(ea_grammar *g)
{
    uint32_t n = g->n_pos;
    uint32_t(*first)[8] = ea_calloc(n ? n : 1, sizeof *first);
    uint8_t *nul = ea_calloc(n ? n : 1, 1);
    g->follow = ea_calloc(g->n_rules ? g->n_rules : 1, sizeof *g->follow);
    if (!first || !nul || !g->follow) {
        ea_free(first);
        ea_free(nul);
        return EA_ENOMEM;
    }
    /* FIRST is only read at positions with calls, callee starts and return
     * positions: compute it there, class by class */
    uint8_t *need = nul; /* bit 1 of nul[] marks "needed" until filled */
    for (uint32_t p = 0; p < n; p++)
        for (uint32_t k = g->call_off[p]; k < g->call_off[p + 1]; k++) {
            need[p] |= 2;
            need[g->calls[k].callee] |= 2;
            need[g->calls[k].ret] |= 2;
        }
    uint32_t cls_bytes[256][8];
    uint32_t cur_rule = GR_NIL;
    for (uint32_t p = 0; p < n; p++) {
        bool needed = (need[p] & 2) != 0;
        nul[p] = (g->pos_flags[p] & GR_POS_ACCEPT) != 0;
        if (!needed)
            continue;
        const struct gr_rule_link *r = &g->rules[g->pos_rule[p]];
        if (g->pos_rule[p] != cur_rule) {
            cur_rule = g->pos_rule[p];
            memset(cls_bytes, 0, r->n_cls * sizeof cls_bytes[0]);
            for (unsigned c = 0; c < 256; c++)
                cls_bytes[r->cls[c]][c >> 5] |= 1u << (c & 31);
        }
        const int32_t *row = r->next + (size_t)(p - r->base) * r->n_cls;
        for (uint32_t c = 0; c < r->n_cls; c++)
            if (row[c] >= 0)
                for (unsigned w = 0; w < 8; w++)
                    first[p][w] |= cls_bytes[c][w];
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t p = 0; p < n; p++) {
            /* bytes are in FIRST already; calls add the callee's FIRST (and
             * the return position's when the callee can be empty) */
            for (uint32_t k = g->call_off[p]; k < g->call_off[p + 1]; k++) {
                uint32_t cs = g->calls[k].callee, ret = g->calls[k].ret;
                for (unsigned w = 0; w < 8; w++) {
                    uint32_t x = first[p][w] | first[cs][w] | (nul[cs] ? first[ret][w] : 0);
                    if (x != first[p][w]) {
                        first[p][w] = x;
                        changed = true;
                    }
                }
                if (nul[cs] && nul[ret] && !nul[p]) {
                    nul[p] = 1;
                    changed = true;
                }
                uint32_t cr = g->pos_rule[cs], rr = g->pos_rule[ret];
                for (unsigned w = 0; w < 8; w++) {
                    uint32_t x = g->follow[cr][w] | first[ret][w] | (nul[ret] ? g->follow[rr][w] : 0);
                    if (x != g->follow[cr][w]) {
                        g->follow[cr][w] = x;
                        changed = true;
                    }
                }
            }
        }
    }
    ea_free(first);
    ea_free(nul);
    return EA_OK;
}

ea_status ea__gr_link(struct gr_build *b, uint32_t root, ea_grammar *g, struct ea_error *err)
{
    uint32_t nr = b->n_rules;
    uint32_t *rep = ea_malloc(nr * sizeof *rep);
    uint64_t *hash = ea_malloc(nr * sizeof *hash);
    uint8_t *prod = ea_calloc(nr, 1);
    uint8_t *nullable = ea_calloc(nr, 1);
    uint32_t *order = ea_malloc(nr * sizeof *order);
    uint32_t *base = ea_malloc(nr * sizeof *base);
    uint8_t **live = ea_calloc(nr, sizeof *live);
    uint32_t *stack = NULL;
    ea_status st = EA_OK;
    if (!rep || !hash || !prod || !nullable || !order || !base || !live)
        goto nomem;
    for (uint32_t r = 0; r < nr; r++) {
        if (!b->rules[r]) {
            st = ea_error_set(err, EA_EINTERNAL, "grammar: rule %u has no body", r);
            goto out;
        }
        rep[r] = r;
        if (!(live[r] = ea_calloc(b->rules[r]->n_states + 1, 1)))
            goto nomem;
    }
    /* productive rules to a fixpoint, callees first (rules are numbered
     * before their sub-rules); a rule's live states are redone only when a
     * callee became productive after they were computed */
    uint8_t *stale = ea_calloc(nr ? nr : 1, 1);
    if (!stale)
        goto nomem;
    for (uint32_t r = nr; r-- > 0;)
        stale[r] = 1;
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t r = nr; r-- > 0;) {
            const struct gr_dfa *d = b->rules[r];
            if (!stale[r])
                continue;
            bool callees_ok = true;
            for (uint32_t k = 0; k < d->call_off[d->n_states] && callees_ok; k++)
                callees_ok = prod[d->calls[k].callee];
            if (callees_ok && d->n_states) {
                /* trimming left only states that reach the end when calls
                 * can be made: all live, state 0 when it goes anywhere */
                memset(live[r], 1, d->n_states);
                bool out = d->accept[0] || d->call_off[1] > d->call_off[0];
                for (uint32_t c = 0; c < d->n_cls && !out; c++)
                    out = d->next[c] >= 0;
                live[r][0] = out;
            } else if (coreach(d, prod, live[r]) != EA_OK) {
                ea_free(stale);
                goto nomem;
            }
            stale[r] = 0;
            if (d->n_states && live[r][0] && !prod[r]) {
                prod[r] = 1;
                changed = true;
                /* callers computed before this became productive are stale */
                for (uint32_t q = 0; q < nr; q++) {
                    const struct gr_dfa *e = b->rules[q];
                    for (uint32_t k = 0; k < e->call_off[e->n_states] && !stale[q]; k++)
                        if (e->calls[k].callee == r && q != r)
                            stale[q] = 1;
                    if (q == r)
                        stale[q] = 1; /* recursion through itself */
                }
            }
        }
    }
    ea_free(stale);
    if (!prod[root]) {
        st = ea_error_set(err, EA_EINVAL, "grammar: the schema or pattern matches nothing");
        goto out;
    }
    /* nullable rules (accept the empty string), for the left-recursion check */
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t r = 0; r < nr; r++) {
            if (nullable[r] || !prod[r])
                continue;
            const struct gr_dfa *d = b->rules[r];
            /* states reachable from 0 through nullable calls only */
            uint8_t *seen = ea_calloc(d->n_states, 1);
            uint32_t *stk = ea_malloc(d->n_states * sizeof *stk);
            if (!seen || !stk) {
                ea_free(seen);
                ea_free(stk);
                goto nomem;
            }
            uint32_t sp = 0;
            seen[0] = 1;
            stk[sp++] = 0;
            bool nl = false;
            while (sp && !nl) {
                uint32_t i = stk[--sp];
                if (d->accept[i])
                    nl = true;
                for (uint32_t k = d->call_off[i]; k < d->call_off[i + 1]; k++)
                    if (nullable[d->calls[k].callee] && !seen[d->calls[k].ret]) {
                        seen[d->calls[k].ret] = 1;
                        stk[sp++] = d->calls[k].ret;
                    }
            }
            ea_free(seen);
            ea_free(stk);
            if (nl) {
                nullable[r] = 1;
                changed = true;
            }
        }
    }
    /* left recursion: a rule reaching a call of itself without consuming a byte */
    {
        uint8_t *vis = ea_calloc(nr, 1);
        if (!vis)
            goto nomem;
        for (uint32_t r0 = 0; r0 < nr && st == EA_OK; r0++) {
            if (!prod[r0])
                continue;
            memset(vis, 0, nr);
            /* BFS over (rule) reached at a zero-width prefix from r0's start */
            uint32_t *q = ea_malloc(nr * sizeof *q);
            if (!q) {
                ea_free(vis);
                goto nomem;
            }
            uint32_t qh = 0, qt = 0;
            q[qt++] = r0;
            while (qh < qt && st == EA_OK) {
                uint32_t r = q[qh++];
                const struct gr_dfa *d = b->rules[r];
                uint8_t *seen = ea_calloc(d->n_states, 1);
                uint32_t *stk = ea_malloc(d->n_states * sizeof *stk);
                if (!seen || !stk) {
                    ea_free(seen);
                    ea_free(stk);
                    ea_free(q);
                    ea_free(vis);
                    goto nomem;
                }
                uint32_t sp = 0;
                seen[0] = 1;
                stk[sp++] = 0;
                while (sp) {
                    uint32_t i = stk[--sp];
                    for (uint32_t k = d->call_off[i]; k < d->call_off[i + 1]; k++) {
                        uint32_t c = d->calls[k].callee;
                        if (!prod[c])
                            continue;
                        if (c == r0) {
                            st = ea_error_set(err, EA_EUNSUPPORTED,
                                              "grammar: left recursion (a $ref cycle that consumes no input)");
                            break;
                        }
                        if (!vis[c]) {
                            vis[c] = 1;
                            q[qt++] = c;
                        }
                        if (nullable[c] && !seen[d->calls[k].ret]) {
                            seen[d->calls[k].ret] = 1;
                            stk[sp++] = d->calls[k].ret;
                        }
                    }
                }
                ea_free(seen);
                ea_free(stk);
            }
            ea_free(q);
        }
        ea_free(vis);
        if (st != EA_OK)
            goto out;
    }
    /* merge identical rules, to a fixpoint (shares mask caches) */
    uint64_t *base_hash = ea_malloc((nr ? nr : 1) * sizeof *base_hash);
    if (!base_hash)
        goto nomem;
    for (uint32_t r = 0; r < nr; r++) {
        const struct gr_dfa *d = b->rules[r];
        uint64_t h = hash_u32s(&d->n_states, 1) ^ (d->n_cls * 0x9E3779B97F4A7C15ull);
        h ^= hash_u32s((const uint32_t *)d->cls, 64);
        base_hash[r] = h * 31 + hash_u32s((const uint32_t *)d->next, (size_t)d->n_states * d->n_cls);
    }
    for (unsigned round = 0; round < 64; round++) {
        bool changed = false;
        for (uint32_t r = 0; r < nr; r++)
            hash[r] = rule_hash(b->rules[r], base_hash[r], rep);
        for (uint32_t r = 0; r < nr; r++) {
            if (rep[r] != r)
                continue;
            for (uint32_t o = 0; o < r; o++)
                if (rep[o] == o && hash[o] == hash[r] && rule_equal(b->rules[o], b->rules[r], rep)) {
                    for (uint32_t z = 0; z < nr; z++)
                        if (rep[z] == r)
                            rep[z] = o;
                    changed = true;
                    break;
                }
        }
        if (!changed)
            break;
    }
    ea_free(base_hash);
    /* rules reachable from root */
    uint32_t n_ord = 0;
    if (!(stack = ea_malloc(nr * sizeof *stack)))
        goto nomem;
    for (uint32_t r = 0; r < nr; r++)
        base[r] = GR_NIL;
    uint32_t rr = rep[root];
    base[rr] = 0;
    order[n_ord++] = rr;
    for (uint32_t k = 0; k < n_ord; k++) {
        const struct gr_dfa *d = b->rules[order[k]];
        for (uint32_t c = 0; c < d->call_off[d->n_states]; c++) {
            uint32_t cr = rep[d->calls[c].callee];
            if (prod[cr] && base[cr] == GR_NIL) {
                base[cr] = 0;
                order[n_ord++] = cr;
            }
        }
    }
    size_t n_pos = 0, n_next = 0, n_calls = 0;
    for (uint32_t k = 0; k < n_ord; k++) {
        const struct gr_dfa *d = b->rules[order[k]];
        base[order[k]] = (uint32_t)n_pos;
        n_pos += d->n_states;
        n_next += (size_t)d->n_states * d->n_cls;
        n_calls += d->call_off[d->n_states];
    }
    if (n_pos > EA_GRAMMAR_MAX_STATES) {
        st = ea_error_set(err, EA_ETOOBIG, "grammar: more than %u automaton states", EA_GRAMMAR_MAX_STATES);
        goto out;
    }
    g->n_pos = (uint32_t)n_pos;
    g->n_rules = n_ord;
    g->pos_rule = ea_malloc((n_pos ? n_pos : 1) * sizeof *g->pos_rule);
    g->pos_flags = ea_calloc(n_pos ? n_pos : 1, 1);
    g->call_off = ea_calloc(n_pos + 1, sizeof *g->call_off);
    g->calls = ea_malloc((n_calls ? n_calls : 1) * sizeof *g->calls);
    g->rules = ea_calloc(n_ord, sizeof *g->rules);
    g->cls_store = ea_malloc((size_t)n_ord * 256);
    g->next_store = ea_malloc((n_next ? n_next : 1) * sizeof *g->next_store);
    g->cache = ea_calloc(n_pos ? n_pos : 1, sizeof *g->cache);
    if (!g->pos_rule || !g->pos_flags || !g->call_off || !g->calls || !g->rules || !g->cls_store ||
        !g->next_store || !g->cache)
        goto nomem;
    size_t nx = 0, nc = 0;
    for (uint32_t k = 0; k < n_ord; k++) {
        uint32_t r = order[k];
        const struct gr_dfa *d = b->rules[r];
        struct gr_rule_link *L = &g->rules[k];
        L->base = base[r];
        L->n_states = d->n_states;
        L->n_cls = d->n_cls;
        memcpy(g->cls_store + (size_t)k * 256, d->cls, 256);
        L->cls = g->cls_store + (size_t)k * 256;
        L->next = g->next_store + nx;
        for (uint32_t i = 0; i < d->n_states; i++) {
            uint32_t p = base[r] + i;
            g->pos_rule[p] = k;
            uint8_t fl = 0;
            bool li = live[r][i];
            if (d->accept[i])
                fl |= GR_POS_ACCEPT;
            for (uint32_t c = 0; c < d->n_cls; c++) {
                int32_t t = d->next[(size_t)i * d->n_cls + c];
                int32_t gt = (li && t >= 0 && live[r][t]) ? (int32_t)(base[r] + (uint32_t)t) : -1;
                g->next_store[nx++] = gt;
                if (gt >= 0)
                    fl |= GR_POS_BYTES;
            }
            g->call_off[p] = (uint32_t)nc;
            if (li)
                for (uint32_t c = d->call_off[i]; c < d->call_off[i + 1]; c++) {
                    uint32_t cr = rep[d->calls[c].callee];
                    if (!prod[cr] || !live[r][d->calls[c].ret])
                        continue;
                    g->calls[nc++] = (struct gr_call){base[cr], base[r] + d->calls[c].ret};
                    fl |= GR_POS_CALLS;
                }
            g->pos_flags[p] = fl;
        }
        L->call_free = true;
        for (uint32_t i = 0; i < d->n_states; i++)
            if (g->pos_flags[base[r] + i] & GR_POS_CALLS)
                L->call_free = false;
    }
    g->call_off[n_pos] = (uint32_t)nc;
    g->start = base[rr];
    if ((st = compute_follow(g)) != EA_OK)
        goto nomem;
    goto out;
nomem:
    st = ea_error_set(err, EA_ENOMEM, "grammar: out of memory");
out:
    if (live)
        for (uint32_t r = 0; r < nr; r++)
            ea_free(live[r]);
    ea_free(live);
    ea_free(rep);
    ea_free(hash);
    ea_free(prod);
    ea_free(nullable);
    ea_free(order);
    ea_free(base);
    ea_free(stack);
    return st;
}
