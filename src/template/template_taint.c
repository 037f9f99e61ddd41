/* template_taint.c - provenance of rendered text: which bytes of a render
 * come from the context's data (message contents, names, tool calls and
 * results, tools) and which from the template's own text. A chat prompt
 * tokenizes the data bytes without recognising special tokens, so text a
 * user, a web page or a tool wrote cannot become a control token.
 *
 * The rules, conservative where precision would cost a guess:
 *   - every string read from the context is data (whole), except the values
 *     of trusted top-level keys (bos_token, ...) and role names the caller
 *     lists; template literals, numbers and booleans are template text;
 *   - printing, `+`, `~`, join, trim/strip, slicing, indexing and captured
 *     blocks (set blocks, macros) carry the ranges byte for byte;
 *   - lists and maps printed whole are data if they hold data anywhere;
 *   - any other built-in (replace, upper, tojson, split, format, ...) that is
 *     given data anywhere in its operand or arguments makes every string it
 *     creates wholly data. Values it merely passes through keep their own
 *     provenance.
 * Provenance never changes the rendered text.
 * Does not hold: the tokenizer side (ea_tokenize_plain) or the policy of
 * which keys are trusted (the caller's, through ea_template_render_tracked).
 */
#include "template/template_int.h"

#include <string.h>

int ts_add(struct rctx *r, struct tspans *sp, size_t off, size_t len)
{
    if (!r->track || len == 0)
        return 0;
    if (sp->n) {
        struct trange *last = &sp->v[sp->n - 1];
        if (off <= last->off + last->len) { /* touches or overlaps: extend */
            size_t end = off + len > last->off + last->len ? off + len : last->off + last->len;
            if (off < last->off)
                last->off = off;
            last->len = end - last->off;
            return 0;
        }
    }
    if (sp->n == sp->cap) {
        size_t cap = sp->cap ? sp->cap * 2 : 8;
        struct trange *v = ea_realloc(sp->v, cap * sizeof *v);
        if (!v)
            return rt_oom(r);
        sp->v = v;
        sp->cap = cap;
    }
    sp->v[sp->n++] = (struct trange){off, len};
    return 0;
}

/* First range of d that ends after off. */
static size_t first_after(const struct tdata *d, size_t off)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->r[mid].off + d->r[mid].len <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int ts_add_str(struct rctx *r, struct tspans *sp, size_t at, const struct tstr *s, size_t from, size_t n)
{
    if (!r->track || !s->data || n == 0)
        return 0;
    const struct tdata *d = s->data;
    int rc = 0;
    for (size_t i = first_after(d, from); i < d->n && d->r[i].off < from + n && !rc; i++) {
        size_t a = d->r[i].off > from ? d->r[i].off : from;
        size_t e = d->r[i].off + d->r[i].len < from + n ? d->r[i].off + d->r[i].len : from + n;
        rc = ts_add(r, sp, at + (a - from), e - a);
    }
    return rc;
}

/* Structure walks go at most this deep (the stack); past it a walk assumes
 * the conservative answer. Each list or map is visited once per walk, so a
 * structure that contains itself costs no more than its size. */
#define TS_MAX_WALK 48

static uint32_t new_walk(struct rctx *r)
{
    if (++r->walk == 0) /* 0 means "never walked" */
        r->walk = 1;
    return r->walk;
}

/* Whether the list or map is seen for the first time in walk w. */
static bool first_visit(struct tv v, uint32_t w)
{
    uint32_t *seen = tv_is_array(v) ? &v.u.a->visit : &v.u.o->visit;
    if (*seen == w)
        return false;
    *seen = w;
    return true;
}

static bool has_data(struct tv v, uint32_t w, int depth)
{
    if (depth > TS_MAX_WALK)
        return true;
    switch (v.k) {
    case TV_STR: return v.u.s->data != NULL;
    case TV_ARRAY:
    case TV_TUPLE:
        if (!first_visit(v, w))
            return false;
        for (size_t i = 0; i < v.u.a->n; i++)
            if (has_data(v.u.a->v[i], w, depth + 1))
                return true;
        return false;
    case TV_OBJECT:
    case TV_KWARGS:
    case TV_NS:
        if (!first_visit(v, w))
            return false;
        for (size_t i = 0; i < v.u.o->n; i++)
            if (v.u.o->e[i].k->data || has_data(v.u.o->e[i].v, w, depth + 1))
                return true;
        return false;
    case TV_FUNC: /* a bound method carries its receiver */
        return v.u.f->kind == TF_BUILTIN && has_data(v.u.f->self, w, depth + 1);
    default: return false;
    }
}

bool tv_has_data(struct rctx *r, struct tv v) { return has_data(v, new_walk(r), 0); }

int ts_wrote(struct rctx *r, struct ea_buf *b, size_t at, struct tv v)
{
    if (!r->track || b->len <= at)
        return 0;
    if (v.k == TV_STR)
        return ts_add_str(r, ts_of(r, b), at, v.u.s, 0, v.u.s->len);
    return tv_has_data(r, v) ? ts_add(r, ts_of(r, b), at, b->len - at) : 0;
}

void ts_cut(struct tspans *sp, size_t len)
{
    while (sp->n && sp->v[sp->n - 1].off >= len)
        sp->n--;
    if (sp->n && sp->v[sp->n - 1].off + sp->v[sp->n - 1].len > len)
        sp->v[sp->n - 1].len = len - sp->v[sp->n - 1].off;
}

static int make_data(struct rctx *r, const struct trange *v, size_t n, const struct tdata **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    struct tdata *d = ta_alloc(&r->ar, sizeof *d);
    struct trange *rv = ta_alloc(&r->ar, n * sizeof *rv);
    if (!d || !rv)
        return rt_oom(r);
    t_copy(rv, v, n * sizeof *rv);
    d->n = n;
    d->r = rv;
    *out = d;
    return 0;
}

int ts_slice(struct rctx *r, const struct tspans *sp, size_t from, size_t n, const struct tdata **out)
{
    *out = NULL;
    if (!r->track || !sp->n || n == 0)
        return 0;
    struct tdata all = {sp->n, sp->v};
    size_t i0 = first_after(&all, from), k = 0;
    for (size_t i = i0; i < sp->n && sp->v[i].off < from + n; i++)
        k++;
    if (k == 0)
        return 0;
    struct trange *tmp = ta_alloc(&r->ar, k * sizeof *tmp);
    if (!tmp)
        return rt_oom(r);
    for (size_t i = 0; i < k; i++) {
        const struct trange *x = &sp->v[i0 + i];
        size_t a = x->off > from ? x->off : from;
        size_t e = x->off + x->len < from + n ? x->off + x->len : from + n;
        tmp[i] = (struct trange){a - from, e - a};
    }
    struct tdata *d = ta_alloc(&r->ar, sizeof *d);
    if (!d)
        return rt_oom(r);
    d->n = k;
    d->r = tmp;
    *out = d;
    return 0;
}

/* A substring keeps at most this many data ranges; one that mixes more data
 * and template text is all data (conservative, and no allocation). */
#define TS_MAX_SUB_RANGES 64

const struct tstr *rt_str_sub(struct rctx *r, const struct tstr *s, size_t off, size_t n)
{
    const struct tstr *t = rt_str(r, s->s + off, n);
    if (!t || !r->track || !s->data || n == 0)
        return t;
    struct trange tmp[TS_MAX_SUB_RANGES];
    size_t k = 0;
    bool many = false;
    for (size_t i = first_after(s->data, off); i < s->data->n && s->data->r[i].off < off + n; i++) {
        if (k == sizeof tmp / sizeof tmp[0]) {
            many = true;
            break;
        }
        const struct trange *x = &s->data->r[i];
        size_t a = x->off > off ? x->off : off;
        size_t e = x->off + x->len < off + n ? x->off + x->len : off + n;
        tmp[k++] = (struct trange){a - off, e - a};
    }
    if (many) { /* a string mixing this much data and template text: all data */
        tmp[0] = (struct trange){0, n};
        k = 1;
    }
    if (make_data(r, tmp, k, &((struct tstr *)t)->data)) /* fresh: ours to set */
        return NULL;
    return t;
}

const struct tstr *rt_str_as_data(struct rctx *r, const struct tstr *s)
{
    if (s->len == 0 || (s->data && s->data->n == 1 && s->data->r[0].len == s->len))
        return s;
    struct tstr *t = (struct tstr *)tstr_new(&r->ar, s->s, s->len);
    struct trange whole = {0, s->len};
    if (!t || make_data(r, &whole, 1, &t->data))
        return NULL;
    return t;
}

const struct tstr *rt_str_data(struct rctx *r, const char *s, size_t n)
{
    const struct tstr *t = rt_str(r, s, n);
    struct trange whole = {0, n};
    if (t && n && make_data(r, &whole, 1, &((struct tstr *)t)->data)) /* fresh: ours to set */
        return NULL;
    return t;
}

/* Marks the fresh strings of v (born at or after mark) wholly data, in
 * place: nothing else can refer to them yet. */
static int mark_fresh(struct rctx *r, uint64_t mark, struct tv *v, uint32_t w, int depth)
{
    if (depth > TS_MAX_WALK)
        return 0; /* built-ins make shallow results; from_json marks its own */
    int rc = 0;
    switch (v->k) {
    case TV_STR:
        if (v->u.s->born >= mark && v->u.s->born && v->u.s->len) {
            struct trange whole = {0, v->u.s->len};
            rc = make_data(r, &whole, 1, &((struct tstr *)v->u.s)->data);
        }
        return rc;
    case TV_ARRAY:
    case TV_TUPLE:
        if (!first_visit(*v, w))
            return 0;
        for (size_t i = 0; i < v->u.a->n && !rc; i++)
            rc = mark_fresh(r, mark, &v->u.a->v[i], w, depth + 1);
        return rc;
    case TV_OBJECT:
    case TV_KWARGS:
    case TV_NS:
        if (!first_visit(*v, w))
            return 0;
        for (size_t i = 0; i < v->u.o->n && !rc; i++) {
            struct tv k = tv_str(v->u.o->e[i].k);
            if (!(rc = mark_fresh(r, mark, &k, w, depth + 1)))
                rc = mark_fresh(r, mark, &v->u.o->e[i].v, w, depth + 1);
        }
        return rc;
    default: return 0;
    }
}

static bool has_fresh(uint64_t mark, struct tv v, uint32_t w, int depth)
{
    if (depth > TS_MAX_WALK)
        return true;
    switch (v.k) {
    case TV_STR: return v.u.s->born >= mark && v.u.s->born && v.u.s->len;
    case TV_ARRAY:
    case TV_TUPLE:
        if (!first_visit(v, w))
            return false;
        for (size_t i = 0; i < v.u.a->n; i++)
            if (has_fresh(mark, v.u.a->v[i], w, depth + 1))
                return true;
        return false;
    case TV_OBJECT:
    case TV_KWARGS:
    case TV_NS:
        if (!first_visit(v, w))
            return false;
        for (size_t i = 0; i < v.u.o->n; i++)
            if (has_fresh(mark, tv_str(v.u.o->e[i].k), w, depth + 1) || has_fresh(mark, v.u.o->e[i].v, w, depth + 1))
                return true;
        return false;
    default: return false;
    }
}

int ts_builtin_result(struct rctx *r, uint64_t mark, bool precise, const struct tv *in, size_t n, struct tv *out)
{
    if (!r->track || precise || !has_fresh(mark, *out, new_walk(r), 0))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (tv_has_data(r, in[i]))
            return mark_fresh(r, mark, out, new_walk(r), 0);
    return 0;
}
