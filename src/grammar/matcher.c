/* matcher.c - run time of the grammar engine: stacks of rule positions
 * (frames), closure over calls and returns, stepping a set of stacks by one
 * byte, the per-position mask cache (a trie walk from the position alone;
 * subtrees that run past the end of the position's rule are kept as
 * "uncertain" and re-walked against the real stack each step), the matcher
 * and its token masks.
 * Does not hold: building automata (fsa.c) or front ends.
 */
#include "grammar/grammar_int.h"

#include <stdlib.h>
#include <string.h>

#define GR_MAX_VISIT (sizeof ((struct gr_walker *)0)->visit / sizeof(struct gr_cfg))

struct ea_grammar_matcher {
    const ea_grammar *g;
    struct gr_walker w;  /* live stacks + re-walk scratch */
    struct gr_walker pw; /* scratch for filling the position cache */
    bool pw_ready;
    struct gr_set cur;
    bool terminated;
    uint32_t *remap;
    uint32_t cap_remap;
};

/* ---- walker -------------------------------------------------------------------- */

ea_status ea__gr_walker_init(struct gr_walker *w, const ea_grammar *g)
{
    memset(w, 0, sizeof *w);
    w->g = g;
    size_t n = (size_t)g->v->max_len + 2;
    w->sets = ea_malloc(n * sizeof *w->sets);
    w->path = ea_malloc(n * sizeof *w->path);
    w->anc = ea_malloc(n * sizeof *w->anc);
    w->fm = ea_malloc(n * sizeof *w->fm);
    w->path_pos = ea_malloc(n * sizeof *w->path_pos);
    w->path_fresh = ea_malloc(n);
    w->cap_frames = 256;
    w->frames = ea_malloc(w->cap_frames * sizeof *w->frames);
    if (!w->sets || !w->path || !w->anc || !w->fm || !w->frames || !w->path_pos ||
        !w->path_fresh) {
        ea__gr_walker_release(w);
        return EA_ENOMEM;
    }
    return EA_OK;
}

void ea__gr_walker_release(struct gr_walker *w)
{
    ea_free(w->sets);
    ea_free(w->path);
    ea_free(w->anc);
    ea_free(w->fm);
    ea_free(w->bytesets);
    ea_free(w->path_pos);
    ea_free(w->path_fresh);
    ea_free(w->frames);
    memset(w, 0, sizeof *w);
}

static uint32_t push_frame(struct gr_walker *w, uint32_t pos, uint32_t parent)
{
    uint32_t depth = parent == GR_NIL ? 1 : w->frames[parent].depth + 1;
    if (depth > EA_GRAMMAR_MAX_STACK)
        return GR_NIL;
    if (w->n_frames == w->cap_frames) {
        if (w->cap_frames >= (1u << 26))
            return GR_NIL;
        struct gr_frame *f = ea_realloc(w->frames, 2 * w->cap_frames * sizeof *f);
        if (!f)
            return GR_NIL; /* prunes the path: masks only shrink */
        w->frames = f;
        w->cap_frames *= 2;
    }
    w->frames[w->n_frames] = (struct gr_frame){pos, parent, depth};
    return w->n_frames++;
}

/* Copies the used part only (a set has room for GR_MAX_CFG stacks). */
static void set_copy(struct gr_set *dst, const struct gr_set *src)
{
    dst->n = src->n;
    memcpy(dst->c, src->c, src->n * sizeof *src->c);
}

static void set_add(struct gr_set *s, uint32_t top, uint32_t rest)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (s->c[i].top == top && s->c[i].rest == rest)
            return;
    if (s->n < GR_MAX_CFG)
        s->c[s->n++] = (struct gr_cfg){top, rest};
}

static void closure(struct gr_walker *w, uint32_t p, uint32_t rest, struct gr_set *out)
{
    for (uint32_t i = 0; i < w->n_visit; i++)
        if (w->visit[i].top == p && w->visit[i].rest == rest)
            return;
    if (w->n_visit >= GR_MAX_VISIT)
        return;
    w->visit[w->n_visit++] = (struct gr_cfg){p, rest};
    const ea_grammar *g = w->g;
    uint8_t fl = g->pos_flags[p];
    if (fl & GR_POS_BYTES)
        set_add(out, p, rest);
    if (fl & GR_POS_CALLS)
        for (uint32_t k = g->call_off[p]; k < g->call_off[p + 1]; k++) {
            uint32_t f = push_frame(w, g->calls[k].ret, rest);
            if (f != GR_NIL)
                closure(w, g->calls[k].callee, f, out);
        }
    if (fl & GR_POS_ACCEPT) {
        if (rest == GR_NIL)
            set_add(out, GR_BOTTOM_FRESH, GR_NIL);
        else
            closure(w, w->frames[rest].pos, w->frames[rest].parent, out);
    }
}

void ea__gr_set_closure(struct gr_walker *w, uint32_t p, uint32_t rest, struct gr_set *out)
{
    out->n = 0;
    w->n_visit = 0;
    closure(w, p, rest, out);
}

void ea__gr_set_step(struct gr_walker *w, const struct gr_set *in, uint8_t byte, bool bottom_stays,
                     struct gr_set *out)
{
    out->n = 0;
    w->n_visit = 0;
    for (uint32_t i = 0; i < in->n; i++) {
        const struct gr_cfg *c = &in->c[i];
        if (GR_IS_BOTTOM(c->top)) {
            if (bottom_stays && (c->top == GR_BOTTOM || (w->follow[byte >> 5] & (1u << (byte & 31)))))
                set_add(out, GR_BOTTOM, GR_NIL);
            continue;
        }
        int32_t np = ea__gr_step(w->g, c->top, byte);
        if (np >= 0)
            closure(w, (uint32_t)np, c->rest, out);
    }
}

/* ---- position cache ---------------------------------------------------------------- */

void ea__gr_posmask_free(struct gr_posmask *m)
{
    if (!m)
        return;
    ea_free(m->acc);
    ea_free(m->unc);
    ea_free(m->sub);
    ea_free(m->sub_off);
    ea_free(m);
}

static bool set_has(const struct gr_set *s, uint32_t top)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (s->c[i].top == top)
            return true;
    return false;
}

struct u32vec {
    uint32_t *p;
    uint32_t n, cap;
};

static bool vec_push(struct u32vec *v, uint32_t x)
{
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 256;
        uint32_t *p = ea_realloc(v->p, cap * sizeof *p);
        if (!p)
            return false;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = x;
    return true;
}

static ea_status compute_posmask(const ea_grammar *g, struct gr_walker *w, uint32_t p,
                                 struct gr_posmask **out)
{
    const ea_grammar_vocab *v = g->v;
    struct u32vec acc = {0}, unc = {0};
    struct gr_posmask *m = NULL;
    uint32_t n_simple = 0;
    w->n_frames = 0;
    struct gr_set *S = w->sets;
    S[0].n = 1;
    S[0].c[0] = (struct gr_cfg){p, GR_NIL};
    w->fm[0] = 0;
    w->follow = g->follow[g->pos_rule[p]];
    if (g->rules[g->pos_rule[p]].call_free) {
        /* the common broad case (string bodies, numbers, patterns): one DFA
         * position per depth and a flag for "the rule just ended", the same
         * decisions as the general walk below without stacks */
        const struct gr_rule_link *R = &g->rules[g->pos_rule[p]];
        int32_t *pos = w->path_pos;
        uint8_t *fresh = w->path_fresh;
        pos[0] = (int32_t)p;
        fresh[0] = 0;
        for (uint32_t i = 0; i < v->n_nodes;) {
            const struct gr_node *nd = &v->nodes[i];
            uint32_t d = nd->depth;
            int32_t q = pos[d - 1];
            bool stale = fresh[d - 1] && (w->follow[nd->byte >> 5] & (1u << (nd->byte & 31)));
            int32_t nq = q >= 0 ? R->next[(size_t)((uint32_t)q - R->base) * R->n_cls + R->cls[nd->byte]] : -1;
            uint8_t fl = nq >= 0 ? g->pos_flags[nq] : 0;
            bool nf = (fl & GR_POS_ACCEPT) != 0;
            if (!(fl & GR_POS_BYTES))
                nq = -1;
            if (stale) {
                if (!vec_push(&unc, i | (nq < 0 && !nf ? GR_UNC_SIMPLE : 0)))
                    goto nomem;
                n_simple += nq < 0 && !nf;
                i = nd->skip;
                continue;
            }
            if (nq < 0 && !nf) {
                i = nd->skip;
                continue;
            }
            pos[d] = nq;
            fresh[d] = nf;
            for (int32_t t = nd->tok; t >= 0; t = v->dup_next[t])
                if (!vec_push(&acc, (uint32_t)t))
                    goto nomem;
            i++;
        }
        goto done;
    }
    for (uint32_t i = 0; i < v->n_nodes;) {
        const struct gr_node *nd = &v->nodes[i];
        uint32_t d = nd->depth;
        w->n_frames = w->fm[d - 1];
        ea__gr_set_step(w, &S[d - 1], nd->byte, true, &S[d]);
        w->fm[d] = w->n_frames;
        if (S[d].n == 0) {
            i = nd->skip;
            continue;
        }
        if (set_has(&S[d], GR_BOTTOM)) { /* depends on the stack from here on */
            bool simple = S[d].n == 1;
            if (!vec_push(&unc, i | (simple ? GR_UNC_SIMPLE : 0)))
                goto nomem;
            n_simple += simple;
            i = nd->skip;
            continue;
        }
        for (int32_t t = nd->tok; t >= 0; t = v->dup_next[t])
            if (!vec_push(&acc, (uint32_t)t))
                goto nomem;
        i++;
    }
done:
    if (!(m = ea_calloc(1, sizeof *m)))
        goto nomem;
    m->n_acc = acc.n;
    m->dense = acc.n > v->n_vocab / 32;
    if (m->dense) {
        if (!(m->acc = ea_calloc(v->n_words, sizeof *m->acc)))
            goto nomem;
        for (uint32_t k = 0; k < acc.n; k++)
            m->acc[acc.p[k] >> 5] |= 1u << (acc.p[k] & 31);
        ea_free(acc.p);
    } else {
        m->acc = acc.p;
    }
    acc.p = NULL;
    m->n_unc = unc.n;
    m->n_simple = n_simple;
    m->unc = unc.p;
    unc.p = NULL;
    /* contiguous copies of the uncertain subtrees */
    uint32_t total = 0;
    if (!(m->sub_off = ea_malloc((m->n_unc ? m->n_unc : 1) * sizeof *m->sub_off)))
        goto nomem;
    for (uint32_t k = 0; k < m->n_unc; k++) {
        uint32_t u = m->unc[k] & ~GR_UNC_SIMPLE;
        uint32_t sz = v->nodes[u].skip - u;
        m->sub_off[k] = total + sz <= GR_SUB_MAX ? total : GR_NIL;
        if (m->sub_off[k] != GR_NIL)
            total += sz;
    }
    if (!(m->sub = ea_malloc((total ? total : 1) * sizeof *m->sub)))
        goto nomem;
    for (uint32_t k = 0; k < m->n_unc; k++) {
        if (m->sub_off[k] == GR_NIL)
            continue;
        uint32_t u = m->unc[k] & ~GR_UNC_SIMPLE, o = m->sub_off[k];
        for (uint32_t i = u; i < v->nodes[u].skip; i++)
            m->sub[o + (i - u)] = (struct gr_snode){v->nodes[i].byte, v->nodes[i].depth,
                                                   o + (v->nodes[i].skip - u), v->nodes[i].tok};
    }
    *out = m;
    return EA_OK;
nomem:
    ea_free(acc.p);
    ea_free(unc.p);
    ea__gr_posmask_free(m);
    return EA_ENOMEM;
}

ea_status ea__gr_posmask(const ea_grammar *g, struct gr_walker *scratch, uint32_t p,
                         const struct gr_posmask **out)
{
    _Atomic(struct gr_posmask *) *slot = ea__gr_slot(g, p);
    struct gr_posmask *m = atomic_load_explicit(slot, memory_order_acquire);
    if (m) {
        *out = m;
        return EA_OK;
    }
    ea_status st = compute_posmask(g, scratch, p, &m);
    if (st != EA_OK)
        return st;
    struct gr_posmask *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(slot, &expected, m, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        ea__gr_posmask_free(m); /* another thread was first */
        m = expected;
    }
    *out = m;
    return EA_OK;
}

ea_status ea_grammar_precompute(ea_grammar *g, struct ea_error *err)
{
    struct gr_walker w;
    if (ea__gr_walker_init(&w, g) != EA_OK)
        return ea_error_set(err, EA_ENOMEM, "grammar: out of memory");
    ea_status st = EA_OK;
    for (uint32_t p = 0; p < g->n_pos && st == EA_OK; p++) {
        const struct gr_posmask *m;
        if (g->pos_flags[p] & GR_POS_BYTES)
            st = ea__gr_posmask(g, &w, p, &m);
    }
    ea__gr_walker_release(&w);
    if (st != EA_OK)
        return ea_error_set(err, st, "grammar: out of memory");
    return EA_OK;
}

/* ---- matcher ----------------------------------------------------------------------- */

ea_status ea_grammar_matcher_create(const ea_grammar *g, ea_grammar_matcher **out,
                                    struct ea_error *err)
{
    if (!g || !out)
        return ea_error_set(err, EA_EINVAL, "grammar matcher: NULL argument");
    ea_grammar_matcher *m = ea_calloc(1, sizeof *m);
    if (!m || ea__gr_walker_init(&m->w, g) != EA_OK) {
        ea_free(m);
        return ea_error_set(err, EA_ENOMEM, "grammar matcher: out of memory");
    }
    m->g = g;
    ea_grammar_matcher_reset(m);
    *out = m;
    return EA_OK;
}

void ea_grammar_matcher_destroy(ea_grammar_matcher *m)
{
    if (!m)
        return;
    ea__gr_walker_release(&m->w);
    if (m->pw_ready)
        ea__gr_walker_release(&m->pw);
    ea_free(m->remap);
    ea_free(m);
}

void ea_grammar_matcher_reset(ea_grammar_matcher *m)
{
    m->w.n_frames = 0;
    m->terminated = false;
    ea__gr_set_closure(&m->w, m->g->start, GR_NIL, &m->cur);
}

ea_status ea_grammar_matcher_copy(ea_grammar_matcher *dst, const ea_grammar_matcher *src,
                                  struct ea_error *err)
{
    if (dst == src)
        return EA_OK;
    if (dst->g != src->g)
        return ea_error_set(err, EA_EINVAL, "grammar matcher: copy between different grammars");
    if (src->w.n_frames > dst->w.cap_frames) {
        struct gr_frame *f = ea_realloc(dst->w.frames, src->w.n_frames * sizeof *f);
        if (!f)
            return ea_error_set(err, EA_ENOMEM, "grammar matcher: out of memory");
        dst->w.frames = f;
        dst->w.cap_frames = src->w.n_frames;
    }
    memcpy(dst->w.frames, src->w.frames, src->w.n_frames * sizeof *dst->w.frames);
    dst->w.n_frames = src->w.n_frames;
    set_copy(&dst->cur, &src->cur);
    dst->terminated = src->terminated;
    return EA_OK;
}

ea_status ea_grammar_matcher_clone(const ea_grammar_matcher *m, ea_grammar_matcher **out,
                                   struct ea_error *err)
{
    ea_grammar_matcher *c = NULL;
    ea_status st = ea_grammar_matcher_create(m->g, &c, err);
    if (st != EA_OK)
        return st;
    if ((st = ea_grammar_matcher_copy(c, m, err)) != EA_OK) {
        ea_grammar_matcher_destroy(c);
        return st;
    }
    *out = c;
    return EA_OK;
}

bool ea_grammar_matcher_is_accepting(const ea_grammar_matcher *m)
{
    if (m->terminated)
        return true;
    for (uint32_t i = 0; i < m->cur.n; i++)
        if (GR_IS_BOTTOM(m->cur.c[i].top))
            return true;
    return false;
}

bool ea_grammar_matcher_is_terminated(const ea_grammar_matcher *m)
{
    if (m->terminated)
        return true;
    return m->cur.n == 1 && GR_IS_BOTTOM(m->cur.c[0].top);
}

/* Keeps only the frames the current stacks use. */
static ea_status compact(ea_grammar_matcher *m)
{
    struct gr_walker *w = &m->w;
    uint32_t n = w->n_frames;
    if (n > m->cap_remap) {
        uint32_t *r = ea_realloc(m->remap, n * sizeof *r);
        if (!r)
            return EA_ENOMEM;
        m->remap = r;
        m->cap_remap = n;
    }
    for (uint32_t i = 0; i < n; i++)
        m->remap[i] = GR_NIL;
    /* frames only point to lower indices, so a forward pass over the used
     * ones, in index order, renumbers parents before children */
    for (uint32_t i = 0; i < m->cur.n; i++)
        for (uint32_t f = m->cur.c[i].rest; f != GR_NIL && m->remap[f] == GR_NIL; f = w->frames[f].parent)
            m->remap[f] = 0; /* mark used */
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (m->remap[i] == GR_NIL)
            continue;
        struct gr_frame fr = w->frames[i];
        fr.parent = fr.parent == GR_NIL ? GR_NIL : m->remap[fr.parent];
        m->remap[i] = k;
        w->frames[k++] = fr;
    }
    for (uint32_t i = 0; i < m->cur.n; i++)
        if (m->cur.c[i].rest != GR_NIL)
            m->cur.c[i].rest = m->remap[m->cur.c[i].rest];
    w->n_frames = k;
    return EA_OK;
}

ea_status ea_grammar_matcher_accept_bytes(ea_grammar_matcher *m, const char *s, size_t n,
                                          struct ea_error *err)
{
    if (m->terminated)
        return ea_error_set(err, EA_EINVAL, "grammar: input after the end of generation");
    uint32_t saved = m->w.n_frames;
    struct gr_set a, b;
    set_copy(&a, &m->cur);
    for (size_t i = 0; i < n; i++) {
        ea__gr_set_step(&m->w, &a, (uint8_t)s[i], false, &b);
        if (b.n == 0) {
            m->w.n_frames = saved;
            return ea_error_set(err, EA_EINVAL, "grammar: byte %zu (0x%02x) is not allowed here", i,
                                (unsigned char)s[i]);
        }
        set_copy(&a, &b);
    }
    set_copy(&m->cur, &a);
    if (compact(m) != EA_OK)
        return ea_error_set(err, EA_ENOMEM, "grammar matcher: out of memory");
    return EA_OK;
}

ea_status ea_grammar_matcher_accept_token(ea_grammar_matcher *m, int32_t id,
                                          struct ea_error *err)
{
    const ea_grammar_vocab *v = m->g->v;
    if (id < 0 || (uint32_t)id >= v->n_vocab)
        return ea_error_set(err, EA_EINVAL, "grammar: token %d out of range", id);
    for (size_t k = 0; k < v->n_eog; k++)
        if (v->eog[k] == id) {
            if (!ea_grammar_matcher_is_accepting(m))
                return ea_error_set(err, EA_EINVAL, "grammar: end of generation before the output is complete");
            m->terminated = true;
            return EA_OK;
        }
    if (!(v->in_trie[id >> 5] & (1u << (id & 31))))
        return ea_error_set(err, EA_EINVAL, "grammar: token %d is never allowed", id);
    return ea_grammar_matcher_accept_bytes(m, v->bytes + v->off[id], (size_t)(v->off[id + 1] - v->off[id]), err);
}

static void set_tok(const ea_grammar_vocab *v, uint32_t *mask, int32_t t)
{
    for (; t >= 0; t = v->dup_next[t])
        mask[t >> 5] |= 1u << (t & 31);
}

/* Walks the subtree of uncertain root k (trie node u) whose own set is
 * already in S[depth(u)]: through its contiguous copy when there is one. */
static void walk_subtree(ea_grammar_matcher *m, const struct gr_posmask *pm, uint32_t k, uint32_t u,
                         uint32_t *mask)
{
    const ea_grammar_vocab *v = m->g->v;
    struct gr_walker *w = &m->w;
    struct gr_set *S = w->sets;
    if (pm->sub_off[k] != GR_NIL) {
        const struct gr_snode *sn = pm->sub;
        uint32_t o = pm->sub_off[k];
        if (sn[o].tok >= 0)
            set_tok(v, mask, sn[o].tok);
        for (uint32_t i = o + 1; i < sn[o].skip;) {
            uint32_t d = sn[i].depth;
            w->n_frames = w->fm[d - 1];
            ea__gr_set_step(w, &S[d - 1], sn[i].byte, false, &S[d]);
            w->fm[d] = w->n_frames;
            if (S[d].n == 0) {
                i = sn[i].skip;
                continue;
            }
            if (sn[i].tok >= 0)
                set_tok(v, mask, sn[i].tok);
            i++;
        }
        return;
    }
    if (v->nodes[u].tok >= 0)
        set_tok(v, mask, v->nodes[u].tok);
    for (uint32_t i = u + 1; i < v->nodes[u].skip;) {
        const struct gr_node *nd = &v->nodes[i];
        uint32_t d = nd->depth;
        w->n_frames = w->fm[d - 1];
        ea__gr_set_step(w, &S[d - 1], nd->byte, false, &S[d]);
        w->fm[d] = w->n_frames;
        if (S[d].n == 0) {
            i = nd->skip;
            continue;
        }
        if (nd->tok >= 0)
            set_tok(v, mask, nd->tok);
        i++;
    }
}

/* Re-walks the uncertain subtrees of pm from configuration c. A "simple"
 * root is the byte right after the position's rule ended: what the bytes
 * before it were does not matter, so its set is the return into c's stack
 * stepped by that byte, computed once per distinct byte. Other roots replay
 * their path from c (consecutive roots share the common prefix). */
static bool rewalk(ea_grammar_matcher *m, const struct gr_cfg *c, const struct gr_posmask *pm,
                   uint32_t *mask)
{
    const ea_grammar_vocab *v = m->g->v;
    struct gr_walker *w = &m->w;
    struct gr_set *S = w->sets;
    uint32_t base = w->n_frames;
    if (pm->n_simple && !w->bytesets && !(w->bytesets = ea_malloc(GR_BYTE_SLOTS * sizeof *w->bytesets)))
        return false;
    memset(w->byteslot, 0, sizeof w->byteslot);
    if (pm->n_simple) {
        struct gr_set ret;
        uint32_t used = 0;
        if (c->rest == GR_NIL)
            ret.n = 0; /* the grammar ends with this rule: nothing may follow */
        else
            ea__gr_set_closure(w, w->frames[c->rest].pos, w->frames[c->rest].parent, &ret);
        for (uint32_t k = 0; k < pm->n_unc && used < GR_BYTE_SLOTS; k++) {
            if (!(pm->unc[k] & GR_UNC_SIMPLE))
                continue;
            uint32_t o = pm->sub_off[k];
            uint8_t b = o != GR_NIL ? pm->sub[o].byte : v->nodes[pm->unc[k] & ~GR_UNC_SIMPLE].byte;
            if (w->byteslot[b])
                continue;
            w->byteslot[b] = (uint8_t)(++used);
            ea__gr_set_step(w, &ret, b, false, &w->bytesets[used - 1]);
        }
    }
    uint32_t base1 = w->n_frames;
    S[0].n = 1;
    S[0].c[0] = *c;
    w->fm[0] = base1;
    uint32_t valid = 0; /* S[1..valid] hold the states of w->path[1..valid] */
    for (uint32_t k = 0; k < pm->n_unc; k++) {
        uint32_t u = pm->unc[k] & ~GR_UNC_SIMPLE;
        uint32_t o = pm->sub_off[k];
        uint8_t b = o != GR_NIL ? pm->sub[o].byte : v->nodes[u].byte;
        if ((pm->unc[k] & GR_UNC_SIMPLE) && w->byteslot[b]) { /* else: replayed below */
            const struct gr_set *bs = &w->bytesets[w->byteslot[b] - 1];
            if (bs->n == 0)
                continue;
            uint32_t du = o != GR_NIL ? pm->sub[o].depth : v->nodes[u].depth;
            set_copy(&S[du], bs);
            w->fm[du] = base1;
            if (valid >= du)
                valid = du - 1;
            walk_subtree(m, pm, k, u, mask);
            continue;
        }
        uint32_t du = v->nodes[u].depth;
        for (uint32_t x = u, d = du; x != GR_NIL; x = v->nodes[x].parent, d--)
            w->anc[d] = x;
        uint32_t j = 1;
        while (j <= valid && j < du && w->path[j] == w->anc[j])
            j++;
        bool dead = false;
        for (; j <= du; j++) {
            w->n_frames = w->fm[j - 1];
            ea__gr_set_step(w, &S[j - 1], v->nodes[w->anc[j]].byte, false, &S[j]);
            w->fm[j] = w->n_frames;
            w->path[j] = w->anc[j];
            if (S[j].n == 0) {
                dead = true;
                break;
            }
        }
        valid = (dead ? j : du) - 1;
        if (!dead)
            walk_subtree(m, pm, k, u, mask);
    }
    w->n_frames = base;
    return true;
}

/* The cache entry of p; the scratch walker for filling it is made on the
 * first miss only, so matchers of a warm grammar never allocate it. */
static const struct gr_posmask *posmask(ea_grammar_matcher *m, uint32_t p)
{
    const struct gr_posmask *pm = atomic_load_explicit(ea__gr_slot(m->g, p), memory_order_acquire);
    if (pm)
        return pm;
    if (!m->pw_ready) {
        if (ea__gr_walker_init(&m->pw, m->g) != EA_OK)
            return NULL;
        m->pw_ready = true;
    }
    return ea__gr_posmask(m->g, &m->pw, p, &pm) == EA_OK ? pm : NULL;
}

ea_status ea_grammar_matcher_fill_mask(ea_grammar_matcher *m, uint32_t *mask, size_t n_words,
                                       struct ea_error *err)
{
    const ea_grammar *g = m->g;
    const ea_grammar_vocab *v = g->v;
    if (n_words < v->n_words)
        return ea_error_set(err, EA_EINVAL, "grammar: mask of %zu words, need %zu", n_words, v->n_words);
    if (m->terminated) {
        memset(mask, 0, n_words * sizeof *mask);
        return EA_OK;
    }
    /* the first configuration's dense set is copied, not OR-ed into zeros */
    bool copy_first = false;
    const struct gr_posmask *pm;
    if (m->cur.n && !GR_IS_BOTTOM(m->cur.c[0].top)) {
        if (!(pm = posmask(m, m->cur.c[0].top)))
            return ea_error_set(err, EA_ENOMEM, "grammar: out of memory");
        copy_first = pm->dense;
    }
    if (copy_first)
        memset(mask + v->n_words, 0, (n_words - v->n_words) * sizeof *mask);
    else
        memset(mask, 0, n_words * sizeof *mask);
    bool accepting = false;
    for (uint32_t i = 0; i < m->cur.n; i++) {
        const struct gr_cfg *c = &m->cur.c[i];
        if (GR_IS_BOTTOM(c->top)) {
            accepting = true;
            continue;
        }
        if (!(pm = posmask(m, c->top)))
            return ea_error_set(err, EA_ENOMEM, "grammar: out of memory");
        bool seen = false;
        for (uint32_t k = 0; k < i && !seen; k++)
            seen = m->cur.c[k].top == c->top;
        if (!seen) {
            if (i == 0 && copy_first) {
                memcpy(mask, pm->acc, v->n_words * sizeof *mask);
            } else if (pm->dense) {
                for (size_t k = 0; k < v->n_words; k++)
                    mask[k] |= pm->acc[k];
            } else {
                for (uint32_t k = 0; k < pm->n_acc; k++)
                    mask[pm->acc[k] >> 5] |= 1u << (pm->acc[k] & 31);
            }
        }
        if (pm->n_unc && !rewalk(m, c, pm, mask))
            return ea_error_set(err, EA_ENOMEM, "grammar: out of memory");
    }
    if (accepting)
        for (size_t k = 0; k < v->n_eog; k++)
            mask[v->eog[k] >> 5] |= 1u << (v->eog[k] & 31);
    return EA_OK;
}
