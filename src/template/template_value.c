/* template_value.c - the runtime value model of the template interpreter:
 * the arena, strings, arrays and ordered maps, truthiness, the two ways the
 * reference turns a value into text (RuntimeValue.toString and String of the
 * raw JS value), JavaScript `==`/`===`, the ordering |sort uses, toJSON
 * (|tojson and printing of lists and dicts) and the conversion of a jansson
 * context into values.
 *
 * Does not hold: evaluation (template_eval.c) or filters (template_builtins.c).
 */
#include "template/template_int.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena --------------------------------------------------------------- */

struct ta_chunk {
    struct ta_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

#define TA_CHUNK 65536u

void ta_init(struct tarena *a, size_t max)
{
    a->head = NULL;
    a->used = 0;
    a->max = max;
    a->capped = false;
    a->serial = 0;
}

void ta_release(struct tarena *a)
{
    struct ta_chunk *c = a->head;
    while (c) {
        struct ta_chunk *next = c->next;
        ea_free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
}

void *ta_alloc(struct tarena *a, size_t n)
{
    if (n > a->max || n > SIZE_MAX - 15) { /* the cap, and rounding n up must not wrap */
        a->capped = true;
        return NULL;
    }
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    struct ta_chunk *c = a->head;
    if (c && c->size - c->used >= n) {
        void *p = c->data + c->used;
        c->used += n;
        return p;
    }
    size_t size = n > TA_CHUNK / 4 ? n : TA_CHUNK;
    if (a->used + size > a->max || a->used + size < a->used) {
        a->capped = true;
        return NULL;
    }
    struct ta_chunk *nc = ea_malloc(sizeof *nc + size);
    if (!nc)
        return NULL;
    nc->size = size;
    nc->used = n;
    a->used += size;
    if (c && size != TA_CHUNK) { /* a big block: keep bumping the current chunk */
        nc->next = c->next;
        c->next = nc;
    } else {
        nc->next = c;
        a->head = nc;
    }
    return nc->data;
}

void *ta_zalloc(struct tarena *a, size_t n)
{
    void *p = ta_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

/* ---- strings ------------------------------------------------------------- */

const struct tstr tstr_empty = {0};

const struct tstr *tstr_new(struct tarena *a, const char *s, size_t n)
{
    if (n > a->max || n > SIZE_MAX - sizeof(struct tstr) - 1) { /* the cap; no wrap below */
        a->capped = true;
        return NULL;
    }
    struct tstr *t = ta_alloc(a, sizeof *t + n + 1);
    if (!t)
        return NULL;
    t->len = n;
    t->data = NULL;
    t->born = a->serial ? a->serial++ : 0;
    if (n)
        memcpy(t->s, s, n);
    t->s[n] = '\0';
    return t;
}

const struct tstr *tstr_cat(struct tarena *a, const char *x, size_t nx, const char *y, size_t ny)
{
    if (nx > SIZE_MAX / 4 || ny > SIZE_MAX / 4)
        return NULL;
    struct tstr *t = ta_alloc(a, sizeof *t + nx + ny + 1);
    if (!t)
        return NULL;
    t->len = nx + ny;
    t->data = NULL;
    t->born = a->serial ? a->serial++ : 0;
    if (nx)
        memcpy(t->s, x, nx);
    if (ny)
        memcpy(t->s + nx, y, ny);
    t->s[nx + ny] = '\0';
    return t;
}

uint32_t tstr_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* ---- render-context helpers -------------------------------------------------- */

int rt_err(struct rctx *r, int line, const char *fmt, ...)
{
    if (r->err && r->err->status != EA_OK)
        return r->err->status; /* keep the first error */
    char msg[EA_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ea_error_set(r->err, EA_EINVAL, "%s (template line %d)", msg, line ? line : r->cur_line);
}

int rt_oom(struct rctx *r)
{
    if (r->err && r->err->status != EA_OK)
        return r->err->status;
    if (r->ar.capped)
        return ea_error_set(r->err, EA_ETOOBIG, "template render exceeds its memory limit (%zu bytes)",
                            r->ar.max);
    return ea_error_set(r->err, EA_ENOMEM, "out of memory while rendering the template");
}

int rt_buf(struct rctx *r, ea_status s)
{
    if (s == EA_OK)
        return 0;
    if (r->err && r->err->status != EA_OK)
        return r->err->status;
    if (s == EA_ETOOBIG)
        return ea_error_set(r->err, EA_ETOOBIG, "template output exceeds its limit (%zu bytes)", r->out.max);
    return ea_error_set(r->err, EA_ENOMEM, "out of memory while rendering the template");
}

int rt_iter(struct rctx *r, int line)
{
    if (++r->iters > r->max_iters) {
        if (r->err && r->err->status != EA_OK)
            return r->err->status;
        return ea_error_set(r->err, EA_ETOOBIG,
                            "template exceeds its loop iteration limit (%llu) at template line %d",
                            (unsigned long long)r->max_iters, line);
    }
    return 0;
}

struct rscratch {
    struct rscratch *next_free, *next_all;
    struct ea_buf b;
    struct tspans sp; /* data ranges of b (provenance) */
};

struct tspans *ts_of(struct rctx *r, struct ea_buf *b)
{
    if (b == &r->out)
        return &r->out_sp;
    return &((struct rscratch *)((char *)b - offsetof(struct rscratch, b)))->sp;
}

struct ea_buf *rt_scratch(struct rctx *r)
{
    struct rscratch *s = r->scratch_free;
    if (s) {
        r->scratch_free = s->next_free;
        ea__buf_reset(&s->b);
        s->sp.n = 0;
        return &s->b;
    }
    s = ea_malloc(sizeof *s);
    if (!s)
        return NULL;
    ea__buf_init(&s->b, r->out.max);
    s->sp = (struct tspans){0};
    s->next_all = r->scratch_all;
    r->scratch_all = s;
    return &s->b;
}

void rt_scratch_done(struct rctx *r, struct ea_buf *b)
{
    if (!b)
        return;
    struct rscratch *s = (struct rscratch *)((char *)b - offsetof(struct rscratch, b));
    if (s->b.cap > (1u << 20)) { /* do not keep big buffers around */
        ea__buf_release(&s->b);
        ea__buf_init(&s->b, r->out.max);
    }
    s->next_free = r->scratch_free;
    r->scratch_free = s;
}

void rt_scratch_release_all(struct rctx *r)
{
    struct rscratch *s = r->scratch_all;
    while (s) {
        struct rscratch *next = s->next_all;
        ea__buf_release(&s->b);
        ea_free(s->sp.v);
        ea_free(s);
        s = next;
    }
    r->scratch_all = r->scratch_free = NULL;
}

const struct tstr *rt_str(struct rctx *r, const char *s, size_t n)
{
    if (n == 0)
        return &tstr_empty;
    return tstr_new(&r->ar, s, n);
}

const struct tstr *rt_strz(struct rctx *r, const char *s) { return rt_str(r, s, strlen(s)); }

/* b is a scratch buffer: the string keeps the data ranges written to it. */
const struct tstr *rt_buf_str(struct rctx *r, struct ea_buf *b)
{
    const struct tstr *s = rt_str(r, b->data, b->len);
    if (s && r->track && b->len && ts_of(r, b)->n &&
        ts_slice(r, ts_of(r, b), 0, b->len, &((struct tstr *)s)->data)) /* fresh: ours to set */
        return NULL;
    return s;
}

/* ---- arrays and maps ------------------------------------------------------ */

struct tarr *tarr_new(struct rctx *r, size_t cap)
{
    struct tarr *a = ta_alloc(&r->ar, sizeof *a);
    if (!a)
        return NULL;
    a->n = 0;
    a->cap = cap;
    a->v = NULL;
    a->visit = 0;
    if (cap && !(a->v = ta_alloc(&r->ar, cap * sizeof *a->v)))
        return NULL;
    return a;
}

int tarr_push(struct rctx *r, struct tarr *a, struct tv v)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof *a->v / 2)
            return rt_oom(r);
        struct tv *nv = ta_alloc(&r->ar, cap * sizeof *nv);
        if (!nv)
            return rt_oom(r);
        if (a->n)
            memcpy(nv, a->v, a->n * sizeof *nv);
        a->v = nv;
        a->cap = cap;
    }
    a->v[a->n++] = v;
    return 0;
}

struct tobj *tobj_new(struct rctx *r, size_t cap)
{
    struct tobj *o = ta_alloc(&r->ar, sizeof *o);
    if (!o)
        return NULL;
    o->n = 0;
    o->cap = cap;
    o->e = NULL;
    o->flags = 0;
    o->visit = 0;
    if (cap && !(o->e = ta_alloc(&r->ar, cap * sizeof *o->e)))
        return NULL;
    return o;
}

struct tobj_ent *tobj_find(const struct tobj *o, const char *k, size_t n)
{
    for (size_t i = 0; i < o->n; i++)
        if (tstr_eq(o->e[i].k, k, n))
            return &o->e[i];
    return NULL;
}

int tobj_set(struct rctx *r, struct tobj *o, const struct tstr *k, struct tv v)
{
    struct tobj_ent *e = tobj_find(o, k->s, k->len);
    if (e) { /* Map.set keeps the key's first position */
        e->v = v;
        return 0;
    }
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof *o->e / 2)
            return rt_oom(r);
        struct tobj_ent *ne = ta_alloc(&r->ar, cap * sizeof *ne);
        if (!ne)
            return rt_oom(r);
        if (o->n)
            memcpy(ne, o->e, o->n * sizeof *ne);
        o->e = ne;
        o->cap = cap;
    }
    o->e[o->n++] = (struct tobj_ent){k, v};
    return 0;
}

struct tv tv_array(struct tarr *a) { return (struct tv){.k = TV_ARRAY, .u.a = a}; }
struct tv tv_object(struct tobj *o, int kind) { return (struct tv){.k = (uint8_t)kind, .u.o = o}; }

struct tv tv_func(struct rctx *r, tbuiltin_fn fn, struct tv self, const char *name)
{
    struct tfunc *f = ta_zalloc(&r->ar, sizeof *f);
    if (!f)
        return (struct tv){.k = TV_JSUNDEF};
    f->kind = TF_BUILTIN;
    f->fn = fn;
    f->self = self;
    f->name = name;
    return (struct tv){.k = TV_FUNC, .u.f = f};
}

const char *tv_type_name(struct tv v)
{
    switch (v.k) {
    case TV_UNDEF: return "UndefinedValue";
    case TV_NULL: return "NullValue";
    case TV_BOOL: return "BooleanValue";
    case TV_INT: return "IntegerValue";
    case TV_FLOAT: return "FloatValue";
    case TV_STR: return "StringValue";
    case TV_ARRAY: return "ArrayValue";
    case TV_TUPLE: return "TupleValue";
    case TV_OBJECT: return "ObjectValue";
    case TV_KWARGS: return "KeywordArgumentsValue";
    case TV_NS: return "NamespaceValue";
    case TV_FUNC: return "FunctionValue";
    default: return "undefined";
    }
}

bool tv_truthy(struct tv v)
{
    switch (v.k) {
    case TV_BOOL: return v.u.b;
    case TV_INT:
    case TV_FLOAT: return v.u.n != 0 && !isnan(v.u.n);
    case TV_STR: return v.u.s->len > 0;
    case TV_ARRAY:
    case TV_TUPLE: return v.u.a->n > 0;
    case TV_OBJECT:
    case TV_KWARGS: return v.u.o->n > 0;
    case TV_NS: /* NamespaceValue keeps the default `!!Map`: always true */
    case TV_FUNC: return true;
    default: return false;
    }
}

/* ---- text of values ------------------------------------------------------------ */

static int put(struct rctx *r, struct ea_buf *b, const char *s, size_t n) { return rt_buf(r, ea__buf_append(b, s, n)); }
static int putz(struct rctx *r, struct ea_buf *b, const char *s) { return put(r, b, s, strlen(s)); }

static int enter(struct rctx *r, int line)
{
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

static int func_text(struct rctx *r, struct ea_buf *b, struct tv v)
{
    /* JS would print the function's source; there is none here */
    const char *name = v.u.f->name ? v.u.f->name : "anonymous";
    return rt_buf(r, ea__buf_printf(b, "function %s() { [native code] }", name));
}

static int to_string(struct rctx *r, struct ea_buf *b, struct tv v, int line);

/* Provenance: what was written for v keeps v's data ranges. */
int tv_to_string(struct rctx *r, struct ea_buf *b, struct tv v, int line)
{
    size_t at = b->len;
    int rc = to_string(r, b, v, line);
    return rc ? rc : ts_wrote(r, b, at, v);
}

static int to_string(struct rctx *r, struct ea_buf *b, struct tv v, int line)
{
    char num[400];
    switch (v.k) {
    case TV_UNDEF:
    case TV_NULL: return putz(r, b, "undefined"); /* String(undefined): NullValue holds undefined too */
    case TV_BOOL: return putz(r, b, v.u.b ? "true" : "false");
    case TV_INT: return put(r, b, num, tx_num(v.u.n, num));
    case TV_FLOAT: return put(r, b, num, tx_float(v.u.n, num));
    case TV_STR: return put(r, b, v.u.s->s, v.u.s->len);
    case TV_ARRAY:
    case TV_TUPLE:
    case TV_OBJECT:
    case TV_KWARGS:
    case TV_NS: {
        struct json_opts o = {0};
        return tv_to_json(r, b, v, &o, 0, line);
    }
    case TV_FUNC: return func_text(r, b, v);
    default: return rt_err(r, line, "Cannot read properties of undefined (reading 'toString')");
    }
}

int tv_js_string(struct rctx *r, struct ea_buf *b, struct tv v, int line)
{
    char num[40];
    int rc;
    switch (v.k) {
    case TV_INT:
    case TV_FLOAT: return put(r, b, num, tx_num(v.u.n, num));
    case TV_OBJECT:
    case TV_KWARGS:
    case TV_NS: return putz(r, b, "[object Map]");
    case TV_ARRAY:
    case TV_TUPLE: /* Array.prototype.join(",") of RuntimeValue objects */
        if ((rc = enter(r, line)))
            return rc;
        for (size_t i = 0; i < v.u.a->n; i++) {
            if (i && (rc = putz(r, b, ",")))
                break;
            if ((rc = tv_to_string(r, b, v.u.a->v[i], line)))
                break;
        }
        r->depth--;
        return rc;
    default: return tv_to_string(r, b, v, line);
    }
}

/* ---- equality ---------------------------------------------------------------- */

/* The JS value behind a runtime value, for `==`. */
enum jk { J_UNDEF, J_NULL, J_BOOL, J_NUM, J_STR, J_OBJ };
struct jv {
    int k;
    double n;
    const char *s;
    size_t len;
    const void *id; /* identity of objects, arrays and functions */
    struct tv src;
};

static struct jv jv_of(struct tv v)
{
    struct jv j = {.src = v};
    switch (v.k) {
    case TV_NULL: j.k = J_UNDEF; break; /* the reference's NullValue holds `undefined` */
    case TV_BOOL: j.k = J_BOOL; j.n = v.u.b; break;
    case TV_INT:
    case TV_FLOAT: j.k = J_NUM; j.n = v.u.n; break;
    case TV_STR: j.k = J_STR; j.s = v.u.s->s; j.len = v.u.s->len; break;
    case TV_ARRAY:
    case TV_TUPLE: j.k = J_OBJ; j.id = v.u.a; break;
    case TV_OBJECT:
    case TV_KWARGS:
    case TV_NS: j.k = J_OBJ; j.id = v.u.o; break;
    case TV_FUNC: j.k = J_OBJ; j.id = v.u.f; break;
    default: j.k = J_UNDEF; break;
    }
    return j;
}

static bool jv_strict(const struct jv *a, const struct jv *b)
{
    if (a->k != b->k)
        return false;
    switch (a->k) {
    case J_UNDEF:
    case J_NULL: return true;
    case J_BOOL:
    case J_NUM: return a->n == b->n;
    case J_STR: return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
    default: return a->id == b->id;
    }
}

bool tv_strict_eq(struct tv a, struct tv b)
{
    struct jv x = jv_of(a), y = jv_of(b);
    return jv_strict(&x, &y);
}

bool tv_same_value_zero(struct tv a, struct tv b)
{
    struct jv x = jv_of(a), y = jv_of(b);
    if (x.k == J_NUM && y.k == J_NUM && isnan(x.n) && isnan(y.n))
        return true;
    return jv_strict(&x, &y);
}

/* ToPrimitive of an object: its string form, in the arena. */
static int jv_to_prim(struct rctx *r, struct jv *j, int line)
{
    struct ea_buf *b = rt_scratch(r);
    if (!b)
        return rt_oom(r);
    int rc = tv_js_string(r, b, j->src, line);
    const struct tstr *s = rc ? NULL : rt_buf_str(r, b);
    rt_scratch_done(r, b);
    if (rc)
        return rc;
    if (!s)
        return rt_oom(r);
    j->k = J_STR;
    j->s = s->s;
    j->len = s->len;
    return 0;
}

/* IsLooselyEqual of ECMAScript over the JS values behind a and b. */
static int jv_loose(struct rctx *r, struct jv a, struct jv b, bool *eq, int line)
{
    for (int guard = 0; guard < 4; guard++) {
        *eq = false;
        if (a.k == b.k) {
            *eq = jv_strict(&a, &b);
            return 0;
        }
        if ((a.k == J_NULL || a.k == J_UNDEF) && (b.k == J_NULL || b.k == J_UNDEF)) {
            *eq = true;
            return 0;
        }
        if (a.k == J_NULL || a.k == J_UNDEF || b.k == J_NULL || b.k == J_UNDEF)
            return 0;
        if (a.k == J_NUM && b.k == J_STR) {
            *eq = a.n == tx_to_number(b.s, b.len);
            return 0;
        }
        if (a.k == J_STR && b.k == J_NUM) {
            *eq = tx_to_number(a.s, a.len) == b.n;
            return 0;
        }
        int rc = 0;
        if (a.k == J_BOOL)
            a.k = J_NUM;
        else if (b.k == J_BOOL)
            b.k = J_NUM;
        else if (a.k == J_OBJ && (b.k == J_NUM || b.k == J_STR))
            rc = jv_to_prim(r, &a, line);
        else if (b.k == J_OBJ && (a.k == J_NUM || a.k == J_STR))
            rc = jv_to_prim(r, &b, line);
        else
            return 0;
        if (rc)
            return rc;
    }
    return 0;
}

int tv_loose_eq(struct rctx *r, struct tv a, struct tv b, bool *eq, int line)
{
    return jv_loose(r, jv_of(a), jv_of(b), eq, line);
}

/* ---- ordering ------------------------------------------------------------------- */

static bool num_like(struct tv v) { return v.k == TV_INT || v.k == TV_FLOAT || v.k == TV_BOOL; }
static double num_of(struct tv v) { return v.k == TV_BOOL ? (v.u.b ? 1 : 0) : v.u.n; }

int tv_compare(struct rctx *r, struct tv a, struct tv b, bool cs, int *res, int line)
{
    *res = 0;
    if (a.k == TV_NULL && b.k == TV_NULL)
        return 0;
    if (a.k == TV_NULL || b.k == TV_NULL)
        return rt_err(r, line, "Cannot compare %s with %s", tv_type_name(a), tv_type_name(b));
    if (a.k == TV_UNDEF && b.k == TV_UNDEF)
        return 0;
    if (a.k == TV_UNDEF || b.k == TV_UNDEF)
        return rt_err(r, line, "Cannot compare %s with %s", tv_type_name(a), tv_type_name(b));
    if (num_like(a) && num_like(b)) {
        double x = num_of(a), y = num_of(b);
        *res = x < y ? -1 : x > y ? 1 : 0;
        return 0;
    }
    if (a.k != b.k)
        return rt_err(r, line, "Cannot compare different types: %s and %s", tv_type_name(a), tv_type_name(b));
    if (a.k != TV_STR)
        return rt_err(r, line, "Cannot compare type: %s", tv_type_name(a));
    if (cs) {
        int c = tx_cmp_utf16(a.u.s->s, a.u.s->len, b.u.s->s, b.u.s->len);
        *res = c < 0 ? -1 : c > 0;
        return 0;
    }
    struct ea_buf *x = rt_scratch(r), *y = rt_scratch(r);
    int rc = 0;
    if (!x || !y)
        rc = rt_oom(r);
    if (!rc)
        rc = rt_buf(r, tx_lower(x, a.u.s->s, a.u.s->len));
    if (!rc)
        rc = rt_buf(r, tx_lower(y, b.u.s->s, b.u.s->len));
    if (!rc) {
        int c = tx_cmp_utf16(x->data ? x->data : "", x->len, y->data ? y->data : "", y->len);
        *res = c < 0 ? -1 : c > 0;
    }
    rt_scratch_done(r, x);
    rt_scratch_done(r, y);
    return rc;
}

/* ---- toJSON ---------------------------------------------------------------------- */

/* Key order of sort_keys. The reference uses String.prototype.localeCompare
 * (ICU collation); this approximates it for the keys templates use:
 * punctuation < digits < letters, letters case-insensitive first, then
 * lower case before upper case. */
static int coll_class(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return 1;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80)
        return 2;
    return 0;
}
static int locale_cmp(const struct tstr *a, const struct tstr *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a->s[i], y = (unsigned char)b->s[i];
        int cx = coll_class(x), cy = coll_class(y);
        if (cx != cy)
            return cx - cy;
        unsigned char lx = (x >= 'A' && x <= 'Z') ? x + 32 : x, ly = (y >= 'A' && y <= 'Z') ? y + 32 : y;
        if (lx != ly)
            return lx - ly;
    }
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    for (size_t i = 0; i < n; i++) { /* tertiary: lower case first */
        unsigned char x = (unsigned char)a->s[i], y = (unsigned char)b->s[i];
        if (x != y)
            return (x >= 'a' && x <= 'z') ? -1 : 1;
    }
    return 0;
}

static int pad(struct rctx *r, struct ea_buf *b, int indent, int depth)
{
    int rc = putz(r, b, "\n");
    for (int i = 0; !rc && i < depth; i++)
        for (int k = 0; !rc && k < indent; k++)
            rc = putz(r, b, " ");
    return rc;
}

int tv_to_json(struct rctx *r, struct ea_buf *b, struct tv v, const struct json_opts *o, int depth, int line)
{
    char num[40];
    switch (v.k) {
    case TV_NULL: return putz(r, b, "null");
    case TV_UNDEF: return putz(r, b, o->undef_null ? "null" : "undefined");
    case TV_BOOL: return putz(r, b, v.u.b ? "true" : "false");
    case TV_INT:
    case TV_FLOAT:
        if (!isfinite(v.u.n))
            return putz(r, b, "null");
        return put(r, b, num, tx_num(v.u.n, num));
    case TV_STR: return rt_buf(r, tx_json_str(b, v.u.s->s, v.u.s->len, o->ascii));
    case TV_ARRAY:
    case TV_OBJECT:
    case TV_NS: break;
    case TV_JSUNDEF: return rt_err(r, line, "Cannot read properties of undefined (reading 'type')");
    default: return rt_err(r, line, "Cannot convert to JSON: %s", tv_type_name(v));
    }
    int rc = enter(r, line);
    if (rc)
        return rc;
    const char *isep = o->item_sep ? o->item_sep->s : o->indent ? "," : ", ";
    size_t isep_len = o->item_sep ? o->item_sep->len : strlen(isep);
    const char *ksep = o->key_sep ? o->key_sep->s : ": ";
    size_t ksep_len = o->key_sep ? o->key_sep->len : 2;
    if (v.k == TV_ARRAY) {
        const struct tarr *a = v.u.a;
        rc = putz(r, b, "[");
        for (size_t i = 0; !rc && i < a->n; i++) {
            if (i)
                rc = put(r, b, isep, isep_len);
            if (!rc && o->indent)
                rc = pad(r, b, o->indent, depth + 1);
            if (!rc)
                rc = tv_to_json(r, b, a->v[i], o, depth + 1, line);
        }
        if (!rc && o->indent && a->n)
            rc = pad(r, b, o->indent, depth);
        if (!rc)
            rc = putz(r, b, "]");
    } else {
        const struct tobj *ob = v.u.o;
        size_t *order = NULL;
        if (o->sort_keys && ob->n > 1) {
            order = ta_alloc(&r->ar, ob->n * sizeof *order);
            if (!order) {
                r->depth--;
                return rt_oom(r);
            }
            for (size_t i = 0; i < ob->n; i++) { /* stable insertion sort */
                size_t j = i;
                while (j > 0 && locale_cmp(ob->e[order[j - 1]].k, ob->e[i].k) > 0) {
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = i;
            }
        }
        rc = putz(r, b, "{");
        for (size_t i = 0; !rc && i < ob->n; i++) {
            const struct tobj_ent *e = &ob->e[order ? order[i] : i];
            if (i)
                rc = put(r, b, isep, isep_len);
            if (!rc && o->indent)
                rc = pad(r, b, o->indent, depth + 1);
            if (!rc)
                rc = rt_buf(r, tx_json_str(b, e->k->s, e->k->len, o->ascii));
            if (!rc)
                rc = put(r, b, ksep, ksep_len);
            if (!rc)
                rc = tv_to_json(r, b, e->v, o, depth + 1, line);
        }
        if (!rc && o->indent && ob->n)
            rc = pad(r, b, o->indent, depth);
        if (!rc)
            rc = putz(r, b, "}");
    }
    r->depth--;
    return rc;
}

/* ---- context conversion ----------------------------------------------------------- */

/* A canonical array index ("0", "17"; not "01", not >= 2^32-1): JS puts
 * these keys first, in numeric order, in Object.entries. */
static bool array_index(const char *k, size_t n, uint32_t *out)
{
    if (n == 0 || n > 10 || (n > 1 && k[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (k[i] < '0' || k[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(k[i] - '0');
    }
    if (v >= 4294967295u)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool trusted_role(const struct rctx *r, const struct tstr *s)
{
    for (const char *const *p = r->trusted_roles; p && *p; p++)
        if (tstr_eqz(s, *p))
            return true;
    return false;
}

int tv_from_json(struct rctx *r, const void *jp, struct tv *out)
{
    const json_t *j = jp;
    int rc = 0;
    switch (json_typeof(j)) {
    case JSON_NULL: *out = tv_null(); return 0;
    case JSON_TRUE: *out = tv_bool(true); return 0;
    case JSON_FALSE: *out = tv_bool(false); return 0;
    case JSON_INTEGER: {
        double d = (double)json_integer_value(j);
        *out = tv_int(d);
        return 0;
    }
    case JSON_REAL: {
        double d = json_real_value(j);
        *out = (isfinite(d) && d == floor(d)) ? tv_int(d) : tv_float(d);
        return 0;
    }
    case JSON_STRING: {
        const struct tstr *s = r->json_data ? rt_str_data(r, json_string_value(j), json_string_length(j))
                                            : rt_str(r, json_string_value(j), json_string_length(j));
        if (!s)
            return rt_oom(r);
        *out = tv_str(s);
        return 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        struct tarr *a = tarr_new(r, n);
        if (!a)
            return rt_oom(r);
        if ((rc = enter(r, 0)))
            return rc;
        for (size_t i = 0; i < n && !rc; i++) {
            struct tv x;
            if (!(rc = tv_from_json(r, json_array_get(j, i), &x)))
                a->v[a->n++] = x;
        }
        r->depth--;
        *out = tv_array(a);
        return rc;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(j);
        struct tobj *o = tobj_new(r, n);
        if (!o)
            return rt_oom(r);
        if ((rc = enter(r, 0)))
            return rc;
        /* integer-like keys first (ascending), then the others in order */
        const char *key;
        size_t klen;
        json_t *val;
        uint32_t idx, prev = 0;
        bool any = false, sorted = true;
        json_object_keylen_foreach((json_t *)j, key, klen, val)
        {
            if (array_index(key, klen, &idx)) {
                if (any && idx < prev)
                    sorted = false;
                prev = idx;
                any = true;
            }
        }
        for (int pass = any ? 0 : 1; pass < 2 && !rc; pass++) {
            json_object_keylen_foreach((json_t *)j, key, klen, val)
            {
                bool isidx = array_index(key, klen, &idx);
                if ((pass == 0) != isidx)
                    continue;
                const struct tstr *k = r->json_data ? rt_str_data(r, key, klen) : rt_str(r, key, klen);
                struct tv x;
                if (!k) {
                    rc = rt_oom(r);
                    break;
                }
                if ((rc = tv_from_json(r, val, &x)))
                    break;
                if (r->json_data && klen == 4 && memcmp(key, "role", 4) == 0 && x.k == TV_STR &&
                    trusted_role(r, x.u.s))
                    x = tv_str(rt_str(r, x.u.s->s, x.u.s->len)); /* a known role: template vocabulary */
                if (x.k == TV_STR && !x.u.s) {
                    rc = rt_oom(r);
                    break;
                }
                o->e[o->n++] = (struct tobj_ent){k, x};
            }
        }
        if (!rc && any && !sorted) {
            size_t ni = 0;
            while (ni < o->n && array_index(o->e[ni].k->s, o->e[ni].k->len, &idx))
                ni++;
            for (size_t i = 1; i < ni; i++) { /* insertion sort of the index keys */
                struct tobj_ent e = o->e[i];
                uint32_t ki = 0;
                array_index(e.k->s, e.k->len, &ki);
                size_t m = i;
                while (m > 0) {
                    uint32_t km = 0;
                    array_index(o->e[m - 1].k->s, o->e[m - 1].k->len, &km);
                    if (km <= ki)
                        break;
                    o->e[m] = o->e[m - 1];
                    m--;
                }
                o->e[m] = e;
            }
        }
        r->depth--;
        *out = tv_object(o, TV_OBJECT);
        return rc;
    }
    default: *out = tv_undef(); return 0;
    }
}
