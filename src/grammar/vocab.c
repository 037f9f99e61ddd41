/* vocab.c - the vocabulary index of the grammar engine: every token's bytes
 * in one buffer and a byte trie over them, stored in preorder with subtree
 * ends so that a walk can skip a whole subtree the moment the automaton dies.
 * Does not hold: anything about grammars (matcher.c walks the trie).
 */
#include "grammar/grammar_int.h"

#include <stdlib.h>
#include <string.h>

struct tok_ref {
    const uint8_t *p;
    uint32_t len;
    int32_t id;
};

static int cmp_tok(const void *a, const void *b)
{
    const struct tok_ref *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

void ea__gr_shared_free(struct gr_shared *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; s->pm && i < s->n_states; i++)
        ea__gr_posmask_free(atomic_load_explicit(&s->pm[i], memory_order_relaxed));
    ea_free((void *)s->pm);
    ea_free(s->next);
    ea_free(s->flags);
    ea_free(s);
}

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h * 1099511628211ull;
}

void ea__gr_share(ea_grammar *g)
{
    ea_grammar_vocab *v = (ea_grammar_vocab *)g->v; /* the shared table is synchronised by mu */
    pthread_mutex_lock(&v->mu);
    for (uint32_t k = 0; k < g->n_rules; k++) {
        struct gr_rule_link *R = &g->rules[k];
        if (!R->call_free)
            continue;
        const uint32_t *fol = g->follow[k];
        uint64_t h = mix(R->n_states, R->n_cls);
        for (unsigned c = 0; c < 256; c++)
            h = mix(h, R->cls[c]);
        for (size_t i = 0; i < (size_t)R->n_states * R->n_cls; i++)
            h = mix(h, (uint64_t)(R->next[i] < 0 ? -1 : R->next[i] - (int64_t)R->base));
        for (uint32_t i = 0; i < R->n_states; i++)
            h = mix(h, g->pos_flags[R->base + i]);
        for (unsigned w = 0; w < 8; w++)
            h = mix(h, fol[w]);
        struct gr_shared *hit = NULL;
        for (uint32_t j = 0; j < v->n_shared && !hit; j++) {
            struct gr_shared *e = v->shared[j];
            if (e->hash != h || e->n_states != R->n_states || e->n_cls != R->n_cls ||
                memcmp(e->cls, R->cls, 256) || memcmp(e->follow, fol, sizeof e->follow))
                continue;
            bool same = true;
            for (size_t i = 0; i < (size_t)R->n_states * R->n_cls && same; i++)
                same = e->next[i] == (R->next[i] < 0 ? -1 : R->next[i] - (int32_t)R->base);
            for (uint32_t i = 0; i < R->n_states && same; i++)
                same = e->flags[i] == g->pos_flags[R->base + i];
            if (same)
                hit = e;
        }
        if (!hit && v->shared_states + R->n_states <= GR_SHARED_MAX_STATES) {
            struct gr_shared *e = ea_calloc(1, sizeof *e);
            if (e) {
                e->hash = h;
                e->n_states = R->n_states;
                e->n_cls = R->n_cls;
                memcpy(e->cls, R->cls, 256);
                memcpy(e->follow, fol, sizeof e->follow);
                e->next = ea_malloc((size_t)R->n_states * R->n_cls * sizeof *e->next);
                e->flags = ea_malloc(R->n_states ? R->n_states : 1);
                e->pm = ea_calloc(R->n_states ? R->n_states : 1, sizeof *e->pm);
            }
            if (v->n_shared == v->cap_shared && e) {
                uint32_t cap = v->cap_shared ? v->cap_shared * 2 : 64;
                struct gr_shared **t = ea_realloc(v->shared, cap * sizeof *t);
                if (t) {
                    v->shared = t;
                    v->cap_shared = cap;
                }
            }
            if (!e || !e->next || !e->flags || !e->pm || v->n_shared == v->cap_shared) {
                ea__gr_shared_free(e); /* out of memory: keep the grammar's own cache */
                continue;
            }
            for (size_t i = 0; i < (size_t)R->n_states * R->n_cls; i++)
                e->next[i] = R->next[i] < 0 ? -1 : R->next[i] - (int32_t)R->base;
            for (uint32_t i = 0; i < R->n_states; i++)
                e->flags[i] = g->pos_flags[R->base + i];
            v->shared[v->n_shared++] = e;
            v->shared_states += R->n_states;
            hit = e;
        }
        R->shared = hit;
    }
    pthread_mutex_unlock(&v->mu);
}

void ea_grammar_vocab_destroy(ea_grammar_vocab *v)
{
    if (!v)
        return;
    for (uint32_t i = 0; i < v->n_shared; i++)
        ea__gr_shared_free(v->shared[i]);
    ea_free(v->shared);
    pthread_mutex_destroy(&v->mu);
    ea_free(v->bytes);
    ea_free(v->off);
    ea_free(v->in_trie);
    ea_free(v->eog);
    ea_free(v->dup_next);
    ea_free(v->nodes);
    ea_free(v);
}

uint32_t ea_grammar_vocab_n_vocab(const ea_grammar_vocab *v) { return v->n_vocab; }
size_t ea_grammar_mask_words(const ea_grammar_vocab *v) { return v->n_words; }

bool ea_grammar_vocab_piece(const ea_grammar_vocab *v, int32_t id, const char **p, size_t *n)
{
    if (id < 0 || (uint32_t)id >= v->n_vocab)
        return false;
    *p = v->bytes + v->off[id];
    *n = (size_t)(v->off[id + 1] - v->off[id]);
    return true;
}

/* allowed[i]: token i may be allowed by a grammar (non-empty, not EOG). */
static ea_status build(uint32_t n_vocab, const char *const *pieces, const uint32_t *lens,
                       const uint8_t *allowed, const int32_t *eos, size_t n_eos,
                       ea_grammar_vocab **out, struct ea_error *err)
{
    ea_status st = EA_OK;
    struct tok_ref *refs = NULL;
    uint32_t *path = NULL;
    uint32_t *open = NULL;
    if (n_vocab == 0 || n_vocab > EA_TOKENIZER_MAX_VOCAB)
        return ea_error_set(err, EA_EINVAL, "grammar vocab: %u tokens", n_vocab);
    ea_grammar_vocab *v = ea_calloc(1, sizeof *v);
    if (!v)
        goto nomem;
    pthread_mutex_init(&v->mu, NULL);
    v->n_vocab = n_vocab;
    v->n_words = (n_vocab + 31) / 32;
    size_t total = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        if (lens[i] > EA_TOKENIZER_MAX_TOKEN_LEN) {
            st = ea_error_set(err, EA_EINVAL, "grammar vocab: token %u is %u bytes long", i, lens[i]);
            goto fail;
        }
        total += lens[i];
    }
    v->bytes = ea_malloc(total ? total : 1);
    v->off = ea_malloc((n_vocab + 1) * sizeof *v->off);
    v->in_trie = ea_calloc(v->n_words, sizeof *v->in_trie);
    v->dup_next = ea_malloc(n_vocab * sizeof *v->dup_next);
    v->eog = ea_malloc((n_eos ? n_eos : 1) * sizeof *v->eog);
    refs = ea_malloc(n_vocab * sizeof *refs);
    if (!v->bytes || !v->off || !v->in_trie || !v->dup_next || !v->eog || !refs)
        goto nomem;
    for (size_t i = 0; i < n_eos; i++)
        if (eos[i] >= 0 && (uint32_t)eos[i] < n_vocab)
            v->eog[v->n_eog++] = eos[i];
    size_t o = 0;
    uint32_t n_refs = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        v->off[i] = o;
        if (lens[i])
            memcpy(v->bytes + o, pieces[i], lens[i]);
        v->dup_next[i] = -1;
        bool ok = allowed[i] && lens[i] > 0;
        for (size_t k = 0; k < v->n_eog && ok; k++)
            ok = v->eog[k] != (int32_t)i;
        if (ok) {
            v->in_trie[i >> 5] |= 1u << (i & 31);
            refs[n_refs++] = (struct tok_ref){(const uint8_t *)v->bytes + o, lens[i], (int32_t)i};
            if (lens[i] > v->max_len)
                v->max_len = lens[i];
        }
        o += lens[i];
    }
    v->off[n_vocab] = o;
    qsort(refs, n_refs, sizeof *refs, cmp_tok);
    /* nodes: at most the sum of lengths */
    size_t cap = 0;
    for (uint32_t i = 0; i < n_refs; i++)
        cap += refs[i].len;
    if (cap >= UINT32_MAX) {
        st = ea_error_set(err, EA_ETOOBIG, "grammar vocab: too many bytes");
        goto fail;
    }
    v->nodes = ea_malloc((cap ? cap : 1) * sizeof *v->nodes);
    path = ea_malloc((v->max_len + 1) * sizeof *path);
    open = ea_malloc((v->max_len + 1) * sizeof *open);
    if (!v->nodes || !path || !open)
        goto nomem;
    uint32_t nn = 0;
    for (uint32_t t = 0; t < n_refs; t++) {
        uint32_t lcp = 0;
        if (t > 0) {
            uint32_t m = refs[t - 1].len < refs[t].len ? refs[t - 1].len : refs[t].len;
            while (lcp < m && refs[t - 1].p[lcp] == refs[t].p[lcp])
                lcp++;
        }
        for (uint32_t d = lcp; d < refs[t].len; d++) {
            v->nodes[nn] = (struct gr_node){.byte = refs[t].p[d],
                                            .depth = (uint16_t)(d + 1),
                                            .parent = d ? path[d - 1] : GR_NIL,
                                            .tok = -1};
            path[d] = nn++;
        }
        struct gr_node *end = &v->nodes[path[refs[t].len - 1]];
        if (end->tok < 0) {
            end->tok = refs[t].id;
        } else { /* same bytes as an earlier token: chain it */
            int32_t k = end->tok;
            while (v->dup_next[k] >= 0)
                k = v->dup_next[k];
            v->dup_next[k] = refs[t].id;
        }
    }
    v->n_nodes = nn;
    /* subtree ends */
    uint32_t sp = 0;
    for (uint32_t i = 0; i < nn; i++) {
        while (sp && v->nodes[open[sp - 1]].depth >= v->nodes[i].depth)
            v->nodes[open[--sp]].skip = i;
        open[sp++] = i;
    }
    while (sp)
        v->nodes[open[--sp]].skip = nn;
    *out = v;
    goto out;
nomem:
    st = ea_error_set(err, EA_ENOMEM, "grammar vocab: out of memory");
fail:
    ea_grammar_vocab_destroy(v);
out:
    ea_free(refs);
    ea_free(path);
    ea_free(open);
    return st;
}

ea_status ea_grammar_vocab_create_raw(uint32_t n_vocab, const char *const *pieces,
                                      const uint32_t *lens, const int32_t *eos, size_t n_eos,
                                      ea_grammar_vocab **out, struct ea_error *err)
{
    if (!pieces || !lens || !out)
        return ea_error_set(err, EA_EINVAL, "grammar vocab: NULL argument");
    uint8_t *allowed = ea_malloc(n_vocab ? n_vocab : 1);
    if (!allowed)
        return ea_error_set(err, EA_ENOMEM, "grammar vocab: out of memory");
    memset(allowed, 1, n_vocab);
    ea_status st = build(n_vocab, pieces, lens, allowed, eos, n_eos, out, err);
    ea_free(allowed);
    return st;
}

ea_status ea_grammar_vocab_create(const ea_tokenizer *t, ea_grammar_vocab **out,
                                  struct ea_error *err)
{
    if (!t || !out)
        return ea_error_set(err, EA_EINVAL, "grammar vocab: NULL argument");
    uint32_t n = ea_tokenizer_n_vocab(t);
    const char **pieces = ea_malloc((n ? n : 1) * sizeof *pieces);
    uint32_t *lens = ea_malloc((n ? n : 1) * sizeof *lens);
    uint8_t *allowed = ea_malloc(n ? n : 1);
    int32_t *eog = NULL;
    size_t n_eog = 0;
    ea_status st = EA_OK;
    if (!pieces || !lens || !allowed) {
        st = ea_error_set(err, EA_ENOMEM, "grammar vocab: out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *p = NULL;
        if (ea_token_piece(t, (int32_t)i, false, &p, &len) != EA_OK) {
            p = NULL;
            len = 0;
        }
        pieces[i] = p;
        lens[i] = (uint32_t)len;
        unsigned attr = ea_token_attr(t, (int32_t)i);
        allowed[i] = !(attr & (EA_TOKEN_ATTR_CONTROL | EA_TOKEN_ATTR_UNKNOWN | EA_TOKEN_ATTR_UNUSED));
        if (ea_tokenizer_is_eog(t, (int32_t)i))
            n_eog++;
    }
    if (!(eog = ea_malloc((n_eog ? n_eog : 1) * sizeof *eog))) {
        st = ea_error_set(err, EA_ENOMEM, "grammar vocab: out of memory");
        goto out;
    }
    n_eog = 0;
    for (uint32_t i = 0; i < n; i++)
        if (ea_tokenizer_is_eog(t, (int32_t)i))
            eog[n_eog++] = (int32_t)i;
    st = build(n, pieces, lens, allowed, eog, n_eog, out, err);
out:
    ea_free(pieces);
    ea_free(lens);
    ea_free(allowed);
    ea_free(eog);
    return st;
}
