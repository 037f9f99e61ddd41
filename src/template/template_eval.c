/* template_eval.c - evaluates the AST of a chat template: scopes, expressions
 * (operators with the reference's JavaScript semantics), statements, loops,
 * macros and call blocks. Rendered text goes straight into one capped output
 * buffer; set blocks, macro calls and filter blocks render into it and cut
 * their part back out.
 *
 * Reference behaviours kept on purpose (docs/TEMPLATES.md):
 *   - a for loop evaluates its iterable and, for `for x in xs if c`, every
 *     condition before running the body; break/continue drop the text the
 *     interrupted iteration had produced, and a loop whose iterations all
 *     ended in continue (or that broke in its first) still renders its else;
 *   - macros see the caller's variables (the reference scopes them at the
 *     call site);
 *   - every scope has its own `namespace`, so a {% set namespace = ... %}
 *     only shadows it in that scope.
 *
 * Does not hold: filters, tests, methods and globals (template_builtins.c).
 */
#include "template/template_int.h"
#include "util/utf8.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- scopes ------------------------------------------------------------------ */

struct tenv *env_new(struct rctx *r, struct tenv *parent)
{
    struct tenv *e = ta_zalloc(&r->ar, sizeof *e);
    if (e)
        e->parent = parent;
    return e;
}

int env_set(struct rctx *r, struct tenv *e, const struct tstr *name, uint32_t hash, struct tv v)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->e[i].hash == hash && tstr_eq(e->e[i].name, name->s, name->len)) {
            e->e[i].v = v;
            return 0;
        }
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        struct tenv_ent *ne = ta_alloc(&r->ar, cap * sizeof *ne);
        if (!ne)
            return rt_oom(r);
        if (e->n)
            memcpy(ne, e->e, e->n * sizeof *ne);
        e->e = ne;
        e->cap = cap;
    }
    e->e[e->n++] = (struct tenv_ent){name, hash, v};
    return 0;
}

static struct tv *env_find(struct tenv *e, const char *name, size_t n, uint32_t hash)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->e[i].hash == hash && tstr_eq(e->e[i].name, name, n))
            return &e->e[i].v;
    return NULL;
}

struct tv env_lookup(struct rctx *r, struct tenv *e, const char *name, size_t n, uint32_t hash)
{
    if (n == 9 && memcmp(name, "namespace", 9) == 0) {
        /* every Environment of the reference declares its own `namespace` */
        struct tv *v = env_find(e, name, n, hash);
        return v ? *v : (struct tv){.k = TV_FUNC, .u.f = r->namespace_fn};
    }
    for (; e; e = e->parent) {
        struct tv *v = env_find(e, name, n, hash);
        if (v)
            return v->k == TV_JSUNDEF ? tv_undef() : *v;
    }
    return tv_undef();
}

static int env_setz(struct rctx *r, struct tenv *e, const struct tstr *name, struct tv v)
{
    return env_set(r, e, name, tstr_hash(name->s, name->len), v);
}

/* ---- helpers ---------------------------------------------------------------- */

static const char *node_type_name(const struct node *n)
{
    switch (n->kind) {
    case N_STR: return "StringLiteral";
    case N_INT: return "IntegerLiteral";
    case N_FLOAT: return "FloatLiteral";
    case N_IDENT: return "Identifier";
    case N_ARRAY: return "ArrayLiteral";
    case N_TUPLE: return "TupleLiteral";
    case N_OBJECT: return "ObjectLiteral";
    case N_MEMBER: return "MemberExpression";
    case N_CALL: return "CallExpression";
    case N_BINARY: return "BinaryExpression";
    case N_UNARY: return "UnaryExpression";
    case N_FILTER: return "FilterExpression";
    case N_TEST: return "TestExpression";
    case N_SELECT: return "SelectExpression";
    case N_TERNARY: return "Ternary";
    case N_SLICE: return "SliceExpression";
    case N_KWARG: return "KeywordArgumentExpression";
    case N_SPREAD: return "SpreadExpression";
    case N_KWSPREAD: return "KeywordSpreadExpression";
    default: return "Statement";
    }
}

static int enter(struct rctx *r, int line)
{
    if (++r->steps > r->max_steps) {
        if (r->err && r->err->status != EA_OK)
            return r->err->status;
        return ea_error_set(r->err, EA_ETOOBIG, "template exceeds its step limit (%llu) at template line %d",
                            (unsigned long long)r->max_steps, line);
    }
    if (++r->depth > r->max_depth) {
        r->depth--;
        if (r->err && r->err->status != EA_OK)
            return r->err->status;
        return ea_error_set(r->err, EA_ETOOBIG,
                            "template nests deeper than %u levels (recursion) at template line %d", r->max_depth,
                            line);
    }
    return 0;
}

/* Appends the text of a statement's value (evaluateBlock skips null and
 * undefined). */
static int emit(struct rctx *r, struct tv v, int line)
{
    if (v.k == TV_NULL || v.k == TV_UNDEF)
        return 0;
    if (v.k == TV_JSUNDEF)
        return rt_err(r, line, "Cannot read properties of undefined (reading 'type')");
    return tv_to_string(r, &r->out, v, line);
}

int ev_capture(struct rctx *r, struct node *const *body, size_t n, struct tenv *env, struct tv *out)
{
    size_t mark = r->out.len;
    int rc = ev_block(r, body, n, env);
    if (!rc) {
        const struct tstr *s = rt_str(r, r->out.data ? r->out.data + mark : "", r->out.len - mark);
        if (s && s->len && (rc = ts_slice(r, &r->out_sp, mark, s->len, &((struct tstr *)s)->data)))
            s = NULL; /* s is fresh: its provenance is ours to set */
        if (!s)
            rc = rc ? rc : rt_oom(r);
        else
            *out = tv_str(s);
    }
    ts_cut(&r->out_sp, mark);
    r->out.len = mark;
    if (r->out.data)
        r->out.data[mark] = '\0';
    return rc;
}

/* __bool__ of a value; a bare JS undefined has none (the reference throws). */
static int truthy(struct rctx *r, struct tv v, int line, bool *out)
{
    *out = false;
    if (v.k == TV_JSUNDEF)
        return rt_err(r, line, "Cannot read properties of undefined (reading '__bool__')");
    *out = tv_truthy(v);
    return 0;
}

/* ---- arguments and calls ------------------------------------------------------ */

int ev_args(struct rctx *r, struct node *const *args, size_t n, struct tenv *env, struct tarr **pos,
            struct tobj **kw)
{
    *pos = tarr_new(r, n);
    *kw = NULL;
    if (!*pos)
        return rt_oom(r);
    int rc;
    /* the whole positional part first, then keyword values, as the reference */
    for (size_t i = 0; i < n; i++) {
        const struct node *a = args[i];
        struct tv v;
        if (a->kind == N_KWARG || a->kind == N_KWSPREAD)
            continue;
        if (a->kind == N_SPREAD) {
            if ((rc = ev_expr(r, a->a, env, &v)))
                return rc;
            if (!tv_is_array(v))
                return rt_err(r, a->line, "Cannot unpack non-iterable type: %s", tv_type_name(v));
            for (size_t k = 0; k < v.u.a->n; k++)
                if ((rc = tarr_push(r, *pos, v.u.a->v[k])))
                    return rc;
            continue;
        }
        if ((rc = ev_expr(r, a, env, &v)) || (rc = tarr_push(r, *pos, v)))
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        const struct node *a = args[i];
        if (a->kind != N_KWARG && a->kind != N_KWSPREAD)
            continue;
        if (!*kw && !(*kw = tobj_new(r, 4)))
            return rt_oom(r);
        struct tv v;
        if ((rc = ev_expr(r, a->a, env, &v)))
            return rc;
        if (a->kind == N_KWARG) {
            if (tobj_find(*kw, a->str->s, a->str->len))
                return rt_err(r, a->line, "Got multiple values for keyword argument '%s'", a->str->s);
            if ((rc = tobj_set(r, *kw, a->str, v)))
                return rc;
            continue;
        }
        if (!tv_is_object(v))
            return rt_err(r, a->line, "Argument after ** must be a mapping, not %s", tv_type_name(v));
        for (size_t k = 0; k < v.u.o->n; k++) {
            const struct tobj_ent *e = &v.u.o->e[k];
            if (tobj_find(*kw, e->k->s, e->k->len))
                return rt_err(r, a->line, "Got multiple values for keyword argument '%s'", e->k->s);
            if ((rc = tobj_set(r, *kw, e->k, e->v)))
                return rc;
        }
    }
    return 0;
}

/* bindMacroArguments of the reference. */
static int bind_args(struct rctx *r, const char *display, struct node *const *params, size_t np, unsigned flags,
                     struct tv *args, size_t n, struct tenv *scope, int line)
{
    size_t npos = n;
    struct tobj *kw = NULL;
    int rc;
    if (n && args[n - 1].k == TV_KWARGS) {
        const struct tobj *src = args[n - 1].u.o;
        npos--;
        if (!(kw = tobj_new(r, src->n)))
            return rt_oom(r);
        t_copy(kw->e, src->e, src->n * sizeof *kw->e);
        kw->n = src->n;
    }
    size_t *pending = np ? ta_alloc(&r->ar, np * sizeof *pending) : NULL;
    size_t npending = 0;
    if (np && !pending)
        return rt_oom(r);
    for (size_t i = 0; i < np; i++) {
        const struct node *p = params[i];
        struct tv v = tv_undef();
        bool present = i < npos;
        if (present)
            v = args[i];
        if (!present && kw) {
            struct tobj_ent *e = tobj_find(kw, p->str->s, p->str->len);
            if (e) {
                v = e->v;
                present = true;
                size_t at = (size_t)(e - kw->e);
                t_copy(kw->e + at, kw->e + at + 1, (kw->n - at - 1) * sizeof *kw->e);
                kw->n--;
            }
        }
        if (!present && p->kind == N_KWARG)
            pending[npending++] = i;
        if ((rc = env_set(r, scope, p->str, tstr_hash(p->str->s, p->str->len), v)))
            return rc;
    }
    if (flags & NF_KWARGS) {
        if (!kw && !(kw = tobj_new(r, 0)))
            return rt_oom(r);
        if ((rc = env_setz(r, scope, rt_strz(r, "kwargs"), tv_object(kw, TV_OBJECT))))
            return rc;
    } else if (kw && kw->n) {
        return rt_err(r, line, "macro %s takes no keyword argument '%s'", display, kw->e[0].k->s);
    }
    if (flags & NF_VARARGS) {
        struct tarr *va = tarr_new(r, npos > np ? npos - np : 0);
        if (!va)
            return rt_oom(r);
        for (size_t i = np; i < npos; i++)
            va->v[va->n++] = args[i];
        if ((rc = env_setz(r, scope, rt_strz(r, "varargs"), tv_array(va))))
            return rc;
    } else if (npos > np) {
        return rt_err(r, line, "macro %s takes not more than %zu argument(s)", display, np);
    }
    for (size_t i = 0; i < npending; i++) {
        const struct node *p = params[pending[i]];
        struct tv v;
        if ((rc = ev_expr(r, p->a, scope, &v)) ||
            (rc = env_set(r, scope, p->str, tstr_hash(p->str->s, p->str->len), v)))
            return rc;
    }
    return 0;
}

int ev_call_value(struct rctx *r, struct tv fn, struct tv *args, size_t n, struct tenv *env, struct tv *out,
                  int line)
{
    if (fn.k != TV_FUNC)
        return rt_err(r, line, "Cannot call something that is not a function: got %s", tv_type_name(fn));
    const struct tfunc *f = fn.u.f;
    int rc;
    if (f->kind == TF_BUILTIN) {
        int saved = r->cur_line;
        r->cur_line = line;
        uint64_t mark = r->ar.serial;
        rc = f->fn(r, f, args, n, out);
        r->cur_line = saved;
        if (!rc && r->track) { /* provenance: the receiver and the arguments are the inputs */
            static const char *const PRECISE[] = {"strip", "lstrip", "rstrip", "join"};
            bool precise = false;
            for (size_t i = 0; i < sizeof PRECISE / sizeof PRECISE[0] && f->name; i++)
                precise = precise || strcmp(f->name, PRECISE[i]) == 0;
            if (!(rc = ts_builtin_result(r, mark, precise, &f->self, 1, out)))
                rc = ts_builtin_result(r, mark, precise, args, n, out);
        }
        if (rc && rc != TR_BREAK && rc != TR_CONTINUE && r->err && r->err->status == EA_OK)
            rc = rt_err(r, line, "error in %s()", f->name ? f->name : "function");
        return rc;
    }
    if (f->kind == TF_MACRO) {
        const struct node *m = f->node;
        struct tenv *scope = env_new(r, env);
        if (!scope)
            return rt_oom(r);
        char display[160];
        snprintf(display, sizeof display, "'%.150s'", m->str->s);
        if ((rc = bind_args(r, display, m->list2, m->nlist2, m->flags, args, n, scope, line)))
            return rc;
        return ev_capture(r, m->list, m->nlist, scope, out);
    }
    /* TF_CALLER: the body of a {% call %} block */
    const struct node *c = f->node;
    struct tenv *scope = env_new(r, f->env);
    if (!scope)
        return rt_oom(r);
    if ((rc = bind_args(r, "None", c->list3, c->nlist3, c->flags, args, n, scope, line)))
        return rc;
    return ev_capture(r, c->list, c->nlist, scope, out);
}

static int ev_call(struct rctx *r, const struct node *n, struct tenv *env, struct tv *out)
{
    struct tarr *pos;
    struct tobj *kw;
    int rc = ev_args(r, n->list, n->nlist, env, &pos, &kw);
    if (rc)
        return rc;
    if (kw && kw->n && (rc = tarr_push(r, pos, tv_object(kw, TV_KWARGS))))
        return rc;
    struct tv fn;
    if ((rc = ev_expr(r, n->a, env, &fn)))
        return rc;
    return ev_call_value(r, fn, pos->v, pos->n, env, out, n->line);
}

/* ---- member access and slices ------------------------------------------------- */

/* utils.slice of the reference over n items; calls take(i) for each. */
static int slice_indices(struct rctx *r, size_t len, struct tv start, struct tv stop, struct tv step,
                         size_t **idx, size_t *count)
{
    double L = (double)len;
    double st = step.k == TV_INT ? step.u.n : 1;
    double dir = st > 0 ? 1 : st < 0 ? -1 : 0;
    double a, b;
    if (dir >= 0) {
        a = start.k == TV_INT ? start.u.n : 0;
        a = a < 0 ? fmax(L + a, 0) : fmin(a, L);
        b = stop.k == TV_INT ? stop.u.n : L;
        b = b < 0 ? fmax(L + b, 0) : fmin(b, L);
    } else {
        a = start.k == TV_INT ? start.u.n : L - 1;
        a = a < 0 ? fmax(L + a, -1) : fmin(a, L - 1);
        b = stop.k == TV_INT ? stop.u.n : -1;
        b = b < -1 ? fmax(L + b, -1) : fmin(b, L - 1);
    }
    *count = 0;
    *idx = NULL;
    if (dir == 0)
        return 0;
    double span = dir > 0 ? b - a : a - b;
    if (span <= 0)
        return 0;
    size_t max = (size_t)ceil(span / fabs(st));
    if (max > len)
        max = len;
    *idx = ta_alloc(&r->ar, (max ? max : 1) * sizeof **idx);
    if (!*idx)
        return rt_oom(r);
    for (double i = a; dir * i < dir * b && *count < max; i += st)
        (*idx)[(*count)++] = (size_t)i;
    return 0;
}

static int ev_slice(struct rctx *r, struct tv obj, const struct node *s, struct tenv *env, struct tv *out)
{
    if (!tv_is_array(obj) && obj.k != TV_STR)
        return rt_err(r, s->line, "Slice object must be an array or string");
    struct tv start = tv_undef(), stop = tv_undef(), step = tv_undef();
    int rc;
    if ((s->a && (rc = ev_expr(r, s->a, env, &start))) || (s->b && (rc = ev_expr(r, s->b, env, &stop))) ||
        (s->c && (rc = ev_expr(r, s->c, env, &step))))
        return rc;
    if (start.k != TV_INT && start.k != TV_UNDEF)
        return rt_err(r, s->line, "Slice start must be numeric or undefined");
    if (stop.k != TV_INT && stop.k != TV_UNDEF)
        return rt_err(r, s->line, "Slice stop must be numeric or undefined");
    if (step.k != TV_INT && step.k != TV_UNDEF)
        return rt_err(r, s->line, "Slice step must be numeric or undefined");
    size_t *idx, cnt;
    if (tv_is_array(obj)) {
        if ((rc = slice_indices(r, obj.u.a->n, start, stop, step, &idx, &cnt)))
            return rc;
        struct tarr *a = tarr_new(r, cnt);
        if (!a)
            return rt_oom(r);
        for (size_t i = 0; i < cnt; i++)
            a->v[a->n++] = obj.u.a->v[idx[i]];
        *out = tv_array(a);
        return 0;
    }
    /* strings slice by code point (Array.from) */
    const struct tstr *str = obj.u.s;
    size_t ncp = 0;
    for (size_t i = 0; i < str->len;) {
        size_t l = ea__utf8_seq_len((unsigned char)str->s[i]);
        i += (l && i + l <= str->len) ? l : 1;
        ncp++;
    }
    size_t *offs = ta_alloc(&r->ar, (ncp + 1) * sizeof *offs);
    if (!offs)
        return rt_oom(r);
    ncp = 0;
    for (size_t i = 0; i < str->len;) {
        offs[ncp++] = i;
        size_t l = ea__utf8_seq_len((unsigned char)str->s[i]);
        i += (l && i + l <= str->len) ? l : 1;
    }
    offs[ncp] = str->len;
    if ((rc = slice_indices(r, ncp, start, stop, step, &idx, &cnt)))
        return rc;
    struct ea_buf *b = rt_scratch(r);
    if (!b)
        return rt_oom(r);
    for (size_t i = 0; i < cnt && !rc; i++) {
        size_t at = b->len, from = offs[idx[i]], len = offs[idx[i] + 1] - from;
        rc = rt_buf(r, ea__buf_append(b, str->s + from, len));
        if (!rc)
            rc = ts_add_str(r, ts_of(r, b), at, str, from, len);
    }
    const struct tstr *res = rc ? NULL : rt_buf_str(r, b);
    rt_scratch_done(r, b);
    if (rc)
        return rc;
    if (!res)
        return rt_oom(r);
    *out = tv_str(res);
    return 0;
}

static int ev_member(struct rctx *r, const struct node *n, struct tenv *env, struct tv *out)
{
    struct tv obj, prop;
    int rc;
    if (n->a->kind == N_IDENT) { /* `loop.index` reads a field: no reference escapes */
        if ((rc = enter(r, n->a->line)))
            return rc;
        r->depth--;
        obj = env_lookup(r, env, n->a->str->s, n->a->str->len, n->a->hash);
    } else if ((rc = ev_expr(r, n->a, env, &obj))) {
        return rc;
    }
    if (n->flags & NF_COMPUTED) {
        if (n->b->kind == N_SLICE)
            return ev_slice(r, obj, n->b, env, out);
        if ((rc = ev_expr(r, n->b, env, &prop)))
            return rc;
    } else if (n->b->kind == N_INT) {
        prop = tv_int(n->b->num);
    } else {
        prop = tv_str(n->b->str);
    }
    *out = tv_undef();
    if (tv_is_attr(obj)) {
        if (prop.k != TV_STR)
            return rt_err(r, n->line, "Cannot access property with non-string: got %s", tv_type_name(prop));
        const struct tobj_ent *e = tobj_find(obj.u.o, prop.u.s->s, prop.u.s->len);
        if (e && e->v.k != TV_JSUNDEF)
            *out = e->v;
        else if (tv_is_object(obj) && bi_member(r, obj, prop.u.s, out) && out->k == TV_JSUNDEF)
            return rt_oom(r);
    } else if (tv_is_array(obj) || obj.k == TV_STR) {
        if (prop.k == TV_INT) {
            double i = prop.u.n;
            if (obj.k == TV_STR) {
                double len = (double)tx_utf16_len(obj.u.s->s, obj.u.s->len);
                if (i < 0)
                    i += len;
                if (i >= 0 && i < len) {
                    size_t off, l;
                    bool lone;
                    tx_utf16_at(obj.u.s->s, obj.u.s->len, (size_t)i, &off, &l, &lone);
                    const struct tstr *s = lone ? rt_str(r, "\xEF\xBF\xBD", 3) : rt_str_sub(r, obj.u.s, off, l);
                    if (s && lone && obj.u.s->data) /* half of a data character */
                        s = rt_str_as_data(r, s);
                    if (!s)
                        return rt_oom(r);
                    *out = tv_str(s);
                }
            } else {
                double len = (double)obj.u.a->n;
                if (i < 0)
                    i += len;
                if (i >= 0 && i < len)
                    *out = obj.u.a->v[(size_t)i];
            }
        } else if (prop.k == TV_STR) {
            if (bi_member(r, obj, prop.u.s, out) && out->k == TV_JSUNDEF)
                return rt_oom(r);
        } else {
            return rt_err(r, n->line, "Cannot access property with non-string/non-number: got %s",
                          tv_type_name(prop));
        }
    } else if (obj.k == TV_JSUNDEF) {
        return rt_err(r, n->line, "Cannot read properties of undefined (reading 'builtins')");
    } else {
        if (prop.k != TV_STR)
            return rt_err(r, n->line, "Cannot access property with non-string: got %s", tv_type_name(prop));
        if (bi_member(r, obj, prop.u.s, out) && out->k == TV_JSUNDEF)
            return rt_oom(r);
    }
    if (out->k == TV_JSUNDEF)
        *out = tv_undef();
    return 0;
}

/* ---- operators -------------------------------------------------------------------- */

static bool num_like(struct tv v) { return v.k == TV_INT || v.k == TV_FLOAT || v.k == TV_BOOL; }
static double num_of(struct tv v) { return v.k == TV_BOOL ? (v.u.b ? 1 : 0) : v.u.n; }

static int concat(struct rctx *r, struct tv a, struct tv b, struct tv *out, int line)
{
    struct ea_buf *buf = rt_scratch(r);
    if (!buf)
        return rt_oom(r);
    int rc = tv_js_string(r, buf, a, line);
    if (!rc)
        rc = tv_js_string(r, buf, b, line);
    const struct tstr *s = rc ? NULL : rt_buf_str(r, buf);
    rt_scratch_done(r, buf);
    if (rc)
        return rc;
    if (!s)
        return rt_oom(r);
    *out = tv_str(s);
    return 0;
}

/* Extension: str * n and list * n (Python repetition); the reference raises. */
static int repeat(struct rctx *r, struct tv seq, double times, struct tv *out, int line)
{
    size_t k = times > 0 ? (size_t)fmin(times, 1e15) : 0;
    if (seq.k == TV_STR) {
        size_t len = seq.u.s->len;
        if (len && k > r->out.max / len)
            return rt_buf(r, EA_ETOOBIG);
        struct tstr *s = ta_alloc(&r->ar, sizeof *s + len * k + 1);
        if (!s)
            return rt_oom(r);
        for (size_t i = 0; i < k; i++)
            t_copy(s->s + i * len, seq.u.s->s, len);
        s->len = len * k;
        s->s[s->len] = '\0';
        s->data = NULL;
        s->born = r->ar.serial ? r->ar.serial++ : 0;
        *out = tv_str(seq.u.s->data && s->len ? rt_str_as_data(r, s) : s);
        if (!out->u.s)
            return rt_oom(r);
        return 0;
    }
    size_t n = seq.u.a->n;
    if (n && k > r->max_iters / n)
        return ea_error_set(r->err, EA_ETOOBIG, "list repetition exceeds the iteration limit at template line %d",
                            line);
    struct tarr *a = tarr_new(r, n * k);
    if (!a)
        return rt_oom(r);
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < n; j++)
            a->v[a->n++] = seq.u.a->v[j];
    *out = tv_array(a);
    return 0;
}

static bool str_contains(const struct tstr *hay, const struct tstr *needle)
{
    if (needle->len == 0)
        return true;
    return tx_find(hay->s, hay->len, needle->s, needle->len) != NULL;
}

/* A bare JS undefined ([]|first) as an operand: the reference fails with a
 * TypeError whose text depends on which of its checks touches the operand
 * first. Returns -1 to go on with the normal path. */
static int binary_jsundef(struct rctx *r, int op, struct tv a, struct tv b, struct tv *out, int line)
{
    static const char *const msg = "Cannot read properties of undefined (reading '%s')";
    if (op == OP_EQ || op == OP_NE)
        return rt_err(r, line, msg, "value");
    if (a.k == TV_UNDEF || b.k == TV_UNDEF || a.k == TV_NULL || b.k == TV_NULL)
        return -1; /* the undefined / null errors come first */
    if (op == OP_CONCAT)
        return rt_err(r, line, msg, "value");
    if (tv_is_array(b) && !(tv_is_array(a))) {
        if (b.u.a->n)
            return rt_err(r, line, msg, "value");
        if (op == OP_IN || op == OP_NOTIN) {
            *out = tv_bool(op == OP_NOTIN);
            return 0;
        }
    }
    if ((a.k == TV_STR || b.k == TV_STR) && op == OP_ADD)
        return rt_err(r, line, msg, "value");
    return rt_err(r, line, msg, "type");
}

static int ev_binary(struct rctx *r, const struct node *n, struct tenv *env, struct tv *out)
{
    struct tv a, b;
    int rc = ev_expr(r, n->a, env, &a);
    if (rc)
        return rc;
    int op = n->op;
    if (op == OP_AND || op == OP_OR) {
        bool t;
        if ((rc = truthy(r, a, n->line, &t)))
            return rc;
        if (op == OP_AND)
            return t ? ev_expr(r, n->b, env, out) : (*out = a, 0);
        return t ? (*out = a, 0) : ev_expr(r, n->b, env, out);
    }
    if ((rc = ev_expr(r, n->b, env, &b)))
        return rc;
    if ((a.k == TV_JSUNDEF || b.k == TV_JSUNDEF) && (rc = binary_jsundef(r, op, a, b, out, n->line)) != -1)
        return rc;
    if (op == OP_EQ || op == OP_NE) {
        bool eq;
        if ((rc = tv_loose_eq(r, a, b, &eq, n->line)))
            return rc;
        *out = tv_bool(op == OP_EQ ? eq : !eq);
        return 0;
    }
    const char *on = tpl_op_name(op);
    if (a.k == TV_UNDEF || b.k == TV_UNDEF) {
        if (b.k == TV_UNDEF && (op == OP_IN || op == OP_NOTIN)) {
            *out = tv_bool(op == OP_NOTIN);
            return 0;
        }
        return rt_err(r, n->line, "Cannot perform operation %s on undefined values", on);
    }
    if (a.k == TV_NULL || b.k == TV_NULL)
        return rt_err(r, n->line, "Cannot perform operation on null values");
    if (op == OP_CONCAT)
        return concat(r, a, b, out, n->line);
    if (op == OP_POW && num_like(a) && num_like(b)) {
        double x = num_of(a), y = num_of(b);
        if (x == 0 && y < 0)
            return rt_err(r, n->line, "0.0 cannot be raised to a negative power");
        double res = pow(x, y);
        if (fabs(x) == 1 && !isfinite(y))
            res = NAN; /* JS: 1 ** NaN and (-1) ** Infinity are NaN */
        if (!isfinite(res))
            return rt_err(r, n->line, "Exponentiation result is not a finite real number");
        bool fl = a.k == TV_FLOAT || b.k == TV_FLOAT || y < 0;
        *out = fl ? tv_float(res) : tv_int(res);
        return 0;
    }
    if (tv_is_num(a) && tv_is_num(b)) {
        double x = a.u.n, y = b.u.n;
        bool fl = a.k == TV_FLOAT || b.k == TV_FLOAT;
        switch (op) {
        case OP_ADD: *out = fl ? tv_float(x + y) : tv_int(x + y); return 0;
        case OP_SUB: *out = fl ? tv_float(x - y) : tv_int(x - y); return 0;
        case OP_MUL: *out = fl ? tv_float(x * y) : tv_int(x * y); return 0;
        case OP_DIV: *out = tv_float(x / y); return 0;
        case OP_FLOORDIV: *out = fl ? tv_float(floor(x / y)) : tv_int(floor(x / y)); return 0;
        case OP_MOD: *out = fl ? tv_float(fmod(x, y)) : tv_int(fmod(x, y)); return 0;
        case OP_LT: *out = tv_bool(x < y); return 0;
        case OP_GT: *out = tv_bool(x > y); return 0;
        case OP_GE: *out = tv_bool(x >= y); return 0;
        case OP_LE: *out = tv_bool(x <= y); return 0;
        default: break;
        }
    } else if (tv_is_array(a) && tv_is_array(b)) {
        if (op == OP_ADD) {
            struct tarr *c = tarr_new(r, a.u.a->n + b.u.a->n);
            if (!c)
                return rt_oom(r);
            t_copy(c->v, a.u.a->v, a.u.a->n * sizeof *c->v);
            t_copy(c->v + a.u.a->n, b.u.a->v, b.u.a->n * sizeof *c->v);
            c->n = a.u.a->n + b.u.a->n;
            *out = tv_array(c);
            return 0;
        }
    } else if (tv_is_array(b)) {
        if (op == OP_IN || op == OP_NOTIN) {
            bool member = false;
            for (size_t i = 0; i < b.u.a->n && !member; i++)
                member = tv_strict_eq(b.u.a->v[i], a);
            *out = tv_bool(op == OP_IN ? member : !member);
            return 0;
        }
    }
    if ((a.k == TV_STR || b.k == TV_STR) && op == OP_ADD)
        return concat(r, a, b, out, n->line);
    if (a.k == TV_STR && b.k == TV_STR && (op == OP_IN || op == OP_NOTIN)) {
        bool c = str_contains(b.u.s, a.u.s);
        *out = tv_bool(op == OP_IN ? c : !c);
        return 0;
    }
    if (a.k == TV_STR && tv_is_object(b) && (op == OP_IN || op == OP_NOTIN)) {
        bool c = tobj_find(b.u.o, a.u.s->s, a.u.s->len) != NULL;
        *out = tv_bool(op == OP_IN ? c : !c);
        return 0;
    }
    /* extensions where the reference raises */
    if (op == OP_MUL && (a.k == TV_STR || tv_is_array(a)) && b.k == TV_INT)
        return repeat(r, a, b.u.n, out, n->line);
    if (op == OP_MUL && a.k == TV_INT && (b.k == TV_STR || tv_is_array(b)))
        return repeat(r, b, a.u.n, out, n->line);
    if ((op == OP_LT || op == OP_GT || op == OP_LE || op == OP_GE) && a.k == TV_STR && b.k == TV_STR) {
        int c = tx_cmp_utf16(a.u.s->s, a.u.s->len, b.u.s->s, b.u.s->len);
        *out = tv_bool(op == OP_LT ? c < 0 : op == OP_GT ? c > 0 : op == OP_LE ? c <= 0 : c >= 0);
        return 0;
    }
    return rt_err(r, n->line, "Unknown operator \"%s\" between %s and %s", on, tv_type_name(a), tv_type_name(b));
}

static int ev_unary(struct rctx *r, const struct node *n, struct tenv *env, struct tv *out)
{
    struct tv a;
    int rc = ev_expr(r, n->a, env, &a);
    if (rc)
        return rc;
    if (n->op == OP_NOT) {
        bool t;
        if ((rc = truthy(r, a, n->line, &t)))
            return rc;
        *out = tv_bool(!t);
        return 0;
    }
    if (a.k == TV_INT || a.k == TV_FLOAT || a.k == TV_BOOL) {
        double v = num_of(a), res = n->op == OP_NEG ? -1 * v : v;
        *out = a.k == TV_FLOAT ? tv_float(res) : tv_int(res);
        return 0;
    }
    return rt_err(r, n->line, "Unknown operator \"%s\" for %s", tpl_op_name(n->op), tv_type_name(a));
}

/* ---- expressions ------------------------------------------------------------------- */

static int ev_expr_inner(struct rctx *r, const struct node *n, struct tenv *env, struct tv *out)
{
    int rc;
    switch (n->kind) {
    case N_STR: *out = tv_str(n->str); return 0;
    case N_INT: *out = tv_int(n->num); return 0;
    case N_FLOAT: *out = tv_float(n->num); return 0;
    case N_IDENT:
        *out = env_lookup(r, env, n->str->s, n->str->len, n->hash);
        if (out->k == TV_OBJECT && (out->u.o->flags & TOBJ_LOOP))
            out->u.o->flags |= TOBJ_ESCAPED; /* held as a value: the loop must not reuse it */
        return 0;
    case N_ARRAY:
    case N_TUPLE: {
        struct tarr *a = tarr_new(r, n->nlist);
        if (!a)
            return rt_oom(r);
        for (size_t i = 0; i < n->nlist; i++)
            if ((rc = ev_expr(r, n->list[i], env, &a->v[a->n++])))
                return rc;
        *out = tv_array(a);
        out->k = n->kind == N_TUPLE ? TV_TUPLE : TV_ARRAY;
        return 0;
    }
    case N_OBJECT: {
        struct tobj *o = tobj_new(r, n->nlist / 2);
        if (!o)
            return rt_oom(r);
        for (size_t i = 0; i + 1 < n->nlist; i += 2) {
            struct tv k, v;
            if ((rc = ev_expr(r, n->list[i], env, &k)))
                return rc;
            if (k.k != TV_STR)
                return rt_err(r, n->list[i]->line, "Object keys must be strings: got %s", tv_type_name(k));
            if ((rc = ev_expr(r, n->list[i + 1], env, &v)) || (rc = tobj_set(r, o, k.u.s, v)))
                return rc;
        }
        *out = tv_object(o, TV_OBJECT);
        return 0;
    }
    case N_MEMBER: return ev_member(r, n, env, out);
    case N_CALL: return ev_call(r, n, env, out);
    case N_BINARY: return ev_binary(r, n, env, out);
    case N_UNARY: return ev_unary(r, n, env, out);
    case N_FILTER: {
        struct tv v;
        if ((rc = ev_expr(r, n->a, env, &v)))
            return rc;
        return bi_filter(r, v, n, env, out);
    }
    case N_TEST: {
        struct tv v;
        bool res;
        if ((rc = ev_expr(r, n->a, env, &v)) || (rc = bi_test(r, v, n, env, &res)))
            return rc;
        *out = tv_bool((n->flags & NF_NEGATE) ? !res : res);
        return 0;
    }
    case N_SELECT: {
        struct tv c;
        bool t;
        if ((rc = ev_expr(r, n->b, env, &c)) || (rc = truthy(r, c, n->line, &t)))
            return rc;
        if (!t) {
            *out = tv_undef();
            return 0;
        }
        return ev_expr(r, n->a, env, out);
    }
    case N_TERNARY: {
        struct tv c;
        bool t;
        if ((rc = ev_expr(r, n->a, env, &c)) || (rc = truthy(r, c, n->line, &t)))
            return rc;
        return ev_expr(r, t ? n->b : n->c, env, out);
    }
    default: return rt_err(r, n->line, "Unknown node type: %s", node_type_name(n));
    }
}

int ev_expr(struct rctx *r, const struct node *n, struct tenv *env, struct tv *out)
{
    int rc = enter(r, n->line);
    if (rc)
        return rc;
    rc = ev_expr_inner(r, n, env, out);
    r->depth--;
    return rc;
}

/* ---- statements ------------------------------------------------------------------- */

static int bind_target(struct rctx *r, const struct node *target, struct tv item, struct tenv *scope)
{
    if (target->kind == N_IDENT)
        return env_set(r, scope, target->str, target->hash, item);
    for (size_t j = 0; j < target->nlist; j++) {
        const struct node *t = target->list[j];
        if (t->kind != N_IDENT)
            return rt_err(r, t->line, "Cannot unpack non-identifier type: %s", node_type_name(t));
        int rc = env_set(r, scope, t->str, t->hash, item.u.a->v[j]);
        if (rc)
            return rc;
    }
    return 0;
}

static int ev_for(struct rctx *r, const struct node *n, struct tenv *env)
{
    struct tenv *scope = env_new(r, env);
    if (!scope)
        return rt_oom(r);
    struct tv it;
    int rc = ev_expr(r, n->b, scope, &it);
    if (rc)
        return rc;
    if (!tv_is_array(it) && !tv_is_object(it))
        return rt_err(r, n->line, "Expected iterable or object type in for loop: got %s", tv_type_name(it));
    size_t count = tv_is_array(it) ? it.u.a->n : it.u.o->n;
    struct tarr view, *items = &view;
    if (tv_is_array(it) && !n->c && n->a->kind == N_IDENT) {
        /* Lists never change under a loop in the reference; list.pop (an
         * extension) copies before it removes, so this view stays intact. */
        view = (struct tarr){.n = count, .cap = count, .v = it.u.a->v};
    } else if (!(items = tarr_new(r, count))) {
        return rt_oom(r);
    }
    for (size_t i = 0; items != &view && i < count; i++) {
        struct tv cur;
        if (tv_is_array(it)) {
            cur = it.u.a->v[i];
        } else {
            cur = tv_str(it.u.o->e[i].k); /* objects iterate over their keys */
        }
        if (n->a->kind == N_TUPLE) {
            if (cur.k != TV_ARRAY)
                return rt_err(r, n->line, "Cannot unpack non-iterable type: %s", tv_type_name(cur));
            if (n->a->nlist != cur.u.a->n)
                return rt_err(r, n->line, "Too %s items to unpack", n->a->nlist > cur.u.a->n ? "few" : "many");
        }
        if (n->c) {
            struct tenv *ls = env_new(r, scope);
            struct tv t;
            if (!ls)
                return rt_oom(r);
            bool keep;
            if ((rc = bind_target(r, n->a, cur, ls)) || (rc = ev_expr(r, n->c, ls, &t)) ||
                (rc = truthy(r, t, n->line, &keep)))
                return rc;
            if (!keep)
                continue;
        }
        items->v[items->n++] = cur;
    }
    static const char *const names[] = {"index", "index0",   "revindex", "revindex0", "first",
                                        "last",  "length",   "previtem", "nextitem"};
    const struct tstr *keys[9];
    for (int k = 0; k < 9; k++)
        if (!(keys[k] = rt_strz(r, names[k])))
            return rt_oom(r);
    const struct tstr *loop_name = rt_strz(r, "loop");
    if (!loop_name)
        return rt_oom(r);
    uint32_t loop_hash = tstr_hash("loop", 4);
    bool none = true;
    size_t len = items->n;
    struct tobj *loop = NULL;
    for (size_t i = 0; i < len; i++) {
        if ((rc = rt_iter(r, n->line)))
            return rc;
        if (!loop || (loop->flags & TOBJ_ESCAPED)) {
            if (!(loop = tobj_new(r, 9)))
                return rt_oom(r);
            loop->flags = TOBJ_LOOP;
        }
        struct tv vals[9] = {
            tv_int((double)(i + 1)),
            tv_int((double)i),
            tv_int((double)(len - i)),
            tv_int((double)(len - i - 1)),
            tv_bool(i == 0),
            tv_bool(i == len - 1),
            tv_int((double)len),
            i > 0 ? items->v[i - 1] : tv_undef(),
            i + 1 < len ? items->v[i + 1] : tv_undef(),
        };
        loop->n = 0;
        for (int k = 0; k < 9; k++)
            loop->e[loop->n++] = (struct tobj_ent){keys[k], vals[k]};
        if ((rc = env_set(r, scope, loop_name, loop_hash, tv_object(loop, TV_OBJECT))) ||
            (rc = bind_target(r, n->a, items->v[i], scope)))
            return rc;
        size_t mark = r->out.len;
        rc = ev_block(r, n->list, n->nlist, scope);
        if (rc == TR_CONTINUE || rc == TR_BREAK) {
            /* the reference drops what the interrupted iteration rendered */
            ts_cut(&r->out_sp, mark);
            r->out.len = mark;
            if (r->out.data)
                r->out.data[mark] = '\0';
            if (rc == TR_BREAK)
                break;
            continue;
        }
        if (rc)
            return rc;
        none = false;
    }
    if (none)
        return ev_block(r, n->list2, n->nlist2, scope);
    return 0;
}

static int ev_set(struct rctx *r, const struct node *n, struct tenv *env)
{
    struct tv rhs;
    int rc = n->b ? ev_expr(r, n->b, env, &rhs) : ev_capture(r, n->list, n->nlist, env, &rhs);
    if (rc)
        return rc;
    const struct node *t = n->a;
    if (t->kind == N_IDENT)
        return env_set(r, env, t->str, t->hash, rhs);
    if (t->kind == N_TUPLE) {
        if (!tv_is_array(rhs))
            return rt_err(r, n->line, "Cannot unpack non-iterable type in set: %s", tv_type_name(rhs));
        if (rhs.u.a->n != t->nlist)
            return rt_err(r, n->line, "Too %s items to unpack in set", t->nlist > rhs.u.a->n ? "few" : "many");
        for (size_t i = 0; i < t->nlist; i++) {
            if (t->list[i]->kind != N_IDENT)
                return rt_err(r, n->line, "Cannot unpack to non-identifier in set: %s", node_type_name(t->list[i]));
            if ((rc = env_set(r, env, t->list[i]->str, t->list[i]->hash, rhs.u.a->v[i])))
                return rc;
        }
        return 0;
    }
    if (t->kind == N_MEMBER) {
        struct tv obj;
        if ((rc = ev_expr(r, t->a, env, &obj)))
            return rc;
        if (obj.k != TV_NS)
            return rt_err(r, n->line, "cannot assign attribute on non-namespace object");
        if (t->b->kind != N_IDENT)
            return rt_err(r, n->line, "Cannot assign to member with non-identifier property");
        return tobj_set(r, obj.u.o, t->b->str, rhs);
    }
    return rt_err(r, n->line, "Invalid LHS inside assignment expression: %s", node_type_name(t));
}

static int ev_call_stmt(struct rctx *r, const struct node *n, struct tenv *env)
{
    struct tfunc *caller = ta_zalloc(&r->ar, sizeof *caller);
    if (!caller)
        return rt_oom(r);
    caller->kind = TF_CALLER;
    caller->node = n;
    caller->env = env;
    caller->name = "caller";
    struct tarr *pos;
    struct tobj *kw;
    int rc = ev_args(r, n->list2, n->nlist2, env, &pos, &kw);
    if (rc)
        return rc;
    if (!kw && !(kw = tobj_new(r, 0)))
        return rt_oom(r);
    if ((rc = tarr_push(r, pos, tv_object(kw, TV_KWARGS))))
        return rc;
    struct tv fn, res;
    if ((rc = ev_expr(r, n->a, env, &fn)))
        return rc;
    if (fn.k != TV_FUNC)
        return rt_err(r, n->line, "Cannot call something that is not a function: got %s", tv_type_name(fn));
    struct tenv *ne = env_new(r, env);
    const struct tstr *cname = rt_strz(r, "caller");
    if (!ne || !cname)
        return rt_oom(r);
    if ((rc = env_setz(r, ne, cname, (struct tv){.k = TV_FUNC, .u.f = caller})) ||
        (rc = ev_call_value(r, fn, pos->v, pos->n, ne, &res, n->line)))
        return rc;
    return emit(r, res, n->line);
}

static int ev_stmt(struct rctx *r, const struct node *n, struct tenv *env)
{
    int rc;
    struct tv v;
    switch (n->kind) {
    case N_STR: return rt_buf(r, ea__buf_append(&r->out, n->str->s, n->str->len));
    case N_COMMENT: return 0;
    case N_IF: {
        bool t;
        if ((rc = ev_expr(r, n->a, env, &v)) || (rc = truthy(r, v, n->line, &t)))
            return rc;
        return t ? ev_block(r, n->list, n->nlist, env) : ev_block(r, n->list2, n->nlist2, env);
    }
    case N_FOR: return ev_for(r, n, env);
    case N_SET: return ev_set(r, n, env);
    case N_MACRO: {
        struct tfunc *f = ta_zalloc(&r->ar, sizeof *f);
        if (!f)
            return rt_oom(r);
        f->kind = TF_MACRO;
        f->node = n;
        f->name = n->str->s;
        return env_set(r, env, n->str, n->hash, (struct tv){.k = TV_FUNC, .u.f = f});
    }
    case N_CALLSTMT: return ev_call_stmt(r, n, env);
    case N_FILTERSTMT:
        if ((rc = ev_capture(r, n->list, n->nlist, env, &v)) || (rc = bi_filter(r, v, n->a, env, &v)))
            return rc;
        return emit(r, v, n->line);
    case N_BREAK: return TR_BREAK;
    case N_CONTINUE: return TR_CONTINUE;
    default:
        if ((rc = ev_expr(r, n, env, &v)))
            return rc;
        return emit(r, v, n->line);
    }
}

int ev_block(struct rctx *r, struct node *const *body, size_t n, struct tenv *env)
{
    for (size_t i = 0; i < n; i++) {
        int rc = enter(r, body[i]->line);
        if (rc)
            return rc;
        rc = ev_stmt(r, body[i], env);
        r->depth--;
        if (rc)
            return rc;
    }
    return 0;
}
