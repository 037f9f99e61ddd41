/* template_builtins.c - what a chat template can call: filters (`x|f`),
 * tests (`x is t`), methods of strings, lists and dicts (`s.split()`), and
 * the globals (raise_exception, range, strftime_now, namespace).
 *
 * Dispatch follows the reference (@huggingface/jinja) exactly, including
 * which filters exist for which operand type and its error messages, because
 * the golden tests compare renders and errors byte for byte.
 *
 * Extensions (docs/TEMPLATES.md) are reached only where the reference raises:
 *   filters   default/d without parentheses, count, reject, select, map with
 *             a filter name, sum, min, max, round, wordcount, e/escape,
 *             from_json, list/first/last/reverse of strings, list of dicts;
 *             any filter written with empty parentheses, x|trim()
 *   tests     float, divisibleby, ne, lt, le, gt, ge, greaterthan, lessthan,
 *             in, sameas, and arguments for equalto/eq
 *   methods   list.append/pop/index/extend, str.count/find/join
 *   globals   dict(...)
 *
 * Does not hold: evaluation (template_eval.c).
 */
#include "template/template_int.h"
#include "util/utf8.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define NAME_IS(s, z) tstr_eqz((s), (z))

/* ---- small helpers ------------------------------------------------------------ */

static int str_out(struct rctx *r, struct ea_buf *b, int rc, struct tv *out)
{
    if (!rc) {
        const struct tstr *s = rt_buf_str(r, b);
        if (!s)
            rc = rt_oom(r);
        else
            *out = tv_str(s);
    }
    rt_scratch_done(r, b);
    return rc;
}

#define SCRATCH(b)                                                                                           \
    struct ea_buf *b = rt_scratch(r);                                                                        \
    if (!b)                                                                                                  \
        return rt_oom(r)

static int mkstr(struct rctx *r, const char *s, size_t n, struct tv *out)
{
    const struct tstr *t = rt_str(r, s, n);
    if (!t)
        return rt_oom(r);
    *out = tv_str(t);
    return 0;
}

/* JS truthiness of `x.value` (objects and arrays are always truthy). */
static bool js_truthy_value(struct tv v)
{
    switch (v.k) {
    case TV_ARRAY:
    case TV_TUPLE:
    case TV_OBJECT:
    case TV_KWARGS:
    case TV_NS: return true;
    default: return tv_truthy(v);
    }
}

static struct tv kwget(const struct tobj *kw, const char *name)
{
    if (!kw)
        return (struct tv){.k = TV_JSUNDEF};
    const struct tobj_ent *e = tobj_find(kw, name, strlen(name));
    return e ? e->v : (struct tv){.k = TV_JSUNDEF};
}
static bool absent(struct tv v) { return v.k == TV_JSUNDEF; }
/* args.at(i) ?? kwargs.get(name) ?? dflt */
static struct tv pick(const struct tarr *pos, size_t i, const struct tobj *kw, const char *name, struct tv dflt)
{
    if (pos && i < pos->n)
        return pos->v[i];
    struct tv v = kwget(kw, name);
    return absent(v) ? dflt : v;
}

/* Code point boundaries of s (Array.from(str)). */
static size_t *cp_offsets(struct rctx *r, const struct tstr *s, size_t *n)
{
    size_t cnt = 0;
    for (size_t i = 0; i < s->len; cnt++) {
        size_t l = ea__utf8_seq_len((unsigned char)s->s[i]);
        i += (l && i + l <= s->len) ? l : 1;
    }
    size_t *o = ta_alloc(&r->ar, (cnt + 1) * sizeof *o);
    if (!o)
        return NULL;
    cnt = 0;
    for (size_t i = 0; i < s->len; cnt++) {
        o[cnt] = i;
        size_t l = ea__utf8_seq_len((unsigned char)s->s[i]);
        i += (l && i + l <= s->len) ? l : 1;
    }
    o[cnt] = s->len;
    *n = cnt;
    return o;
}

/* getAttributeValue: "a.b.0" through dicts, namespaces and lists. */
static struct tv attr_path(struct tv item, const struct tstr *path)
{
    struct tv v = item;
    const char *p = path->s, *end = path->s + path->len;
    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t len = dot ? (size_t)(dot - p) : (size_t)(end - p);
        if (tv_is_attr(v)) {
            const struct tobj_ent *e = tobj_find(v.u.o, p, len);
            v = e ? e->v : tv_undef();
        } else if (tv_is_array(v)) {
            double i = tx_parse_int(p, len);
            if (!isnan(i) && i >= 0 && i < (double)v.u.a->n)
                v = v.u.a->v[(size_t)i];
            else
                return tv_undef();
        } else {
            return tv_undef();
        }
        if (!dot)
            return v;
        p = dot + 1;
    }
}

/* Stable merge sort with a comparator that can fail. */
typedef int (*cmp_fn)(struct rctx *r, struct tv a, struct tv b, void *ctx, int *res);
static int msort(struct rctx *r, struct tv *v, struct tv *tmp, size_t n, cmp_fn cmp, void *ctx)
{
    if (n < 2)
        return 0;
    size_t h = n / 2;
    int rc = msort(r, v, tmp, h, cmp, ctx);
    if (!rc)
        rc = msort(r, v + h, tmp, n - h, cmp, ctx);
    if (rc)
        return rc;
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int c;
        if ((rc = cmp(r, v[i], v[j], ctx, &c)))
            return rc;
        tmp[k++] = c <= 0 ? v[i++] : v[j++];
    }
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    t_copy(v, tmp, n * sizeof *v);
    r->steps += n;
    return 0;
}

/* Array.prototype.sort of V8 for fewer than 64 items: one run found by
 * CountAndMakeRun, extended by binary insertion. Calling the comparator in
 * V8's order matters: a failing comparison names its operands in that order
 * ("Cannot compare StringValue with IntegerValue"). */
static int v8_small_sort(struct rctx *r, struct tv *v, size_t n, cmp_fn cmp, void *ctx)
{
    if (n < 2)
        return 0;
    int c, rc;
    size_t run = 2;
    if ((rc = cmp(r, v[1], v[0], ctx, &c)))
        return rc;
    bool desc = c < 0;
    for (size_t i = 2; i < n; i++) {
        if ((rc = cmp(r, v[i], v[i - 1], ctx, &c)))
            return rc;
        if (desc ? c >= 0 : c < 0)
            break;
        run++;
    }
    if (desc)
        for (size_t i = 0, j = run - 1; i < j; i++, j--) {
            struct tv t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
    for (size_t start = run; start < n; start++) {
        size_t left = 0, right = start;
        struct tv pivot = v[start];
        while (left < right) {
            size_t mid = left + ((right - left) >> 1);
            if ((rc = cmp(r, pivot, v[mid], ctx, &c)))
                return rc;
            if (c < 0)
                right = mid;
            else
                left = mid + 1;
        }
        t_copy(v + left + 1, v + left, (start - left) * sizeof *v);
        v[left] = pivot;
    }
    r->steps += n;
    return 0;
}

static int sorted_copy(struct rctx *r, const struct tarr *src, cmp_fn cmp, void *ctx, struct tv *out)
{
    struct tarr *a = tarr_new(r, src->n);
    struct tv *tmp = ta_alloc(&r->ar, (src->n ? src->n : 1) * sizeof *tmp);
    if (!a || !tmp)
        return rt_oom(r);
    t_copy(a->v, src->v, src->n * sizeof *a->v);
    a->n = src->n;
    /* Both are stable, so they agree on every consistent ordering. */
    int rc = a->n < 64 ? v8_small_sort(r, a->v, a->n, cmp, ctx) : msort(r, a->v, tmp, a->n, cmp, ctx);
    *out = tv_array(a);
    return rc;
}

struct sort_ctx {
    bool reverse, cs;
    const struct tstr *attr; /* NULL = the item itself */
    int index;               /* dictsort: 0 key, 1 value; -1 otherwise */
    int line;
};

static int sort_cmp(struct rctx *r, struct tv a, struct tv b, void *vctx, int *res)
{
    struct sort_ctx *c = vctx;
    if (c->index >= 0) {
        a = a.u.a->v[c->index];
        b = b.u.a->v[c->index];
    } else if (c->attr) {
        a = attr_path(a, c->attr);
        b = attr_path(b, c->attr);
    }
    int rc = tv_compare(r, a, b, c->cs, res, c->line);
    if (c->reverse)
        *res = -*res;
    return rc;
}

/* ---- tests ---------------------------------------------------------------------- */

#define TEST(name) static int name(struct rctx *r, struct tv a, struct tv *args, size_t n, bool *out, int line)

TEST(t_boolean) { *out = a.k == TV_BOOL; return 0; }
TEST(t_callable) { *out = a.k == TV_FUNC; return 0; }
TEST(t_odd)
{
    if (a.k != TV_INT)
        return rt_err(r, line, "cannot odd on %s", tv_type_name(a));
    *out = fmod(a.u.n, 2) != 0;
    return 0;
}
TEST(t_even)
{
    if (a.k != TV_INT)
        return rt_err(r, line, "cannot even on %s", tv_type_name(a));
    *out = fmod(a.u.n, 2) == 0;
    return 0;
}
TEST(t_false) { *out = a.k == TV_BOOL && !a.u.b; return 0; }
TEST(t_true) { *out = a.k == TV_BOOL && a.u.b; return 0; }
TEST(t_none) { *out = a.k == TV_NULL; return 0; }
TEST(t_string) { *out = a.k == TV_STR; return 0; }
TEST(t_number) { *out = tv_is_num(a); return 0; }
TEST(t_integer) { *out = a.k == TV_INT; return 0; }
TEST(t_iterable) { *out = a.k == TV_ARRAY || a.k == TV_STR; return 0; }
TEST(t_mapping) { *out = tv_is_object(a); return 0; }
TEST(t_sequence) { *out = tv_is_array(a) || tv_is_object(a) || a.k == TV_STR; return 0; }
static int case_test(struct rctx *r, struct tv a, bool upper, bool *out)
{
    *out = false;
    if (a.k != TV_STR)
        return 0;
    SCRATCH(b);
    int rc = rt_buf(r, upper ? tx_upper(b, a.u.s->s, a.u.s->len) : tx_lower(b, a.u.s->s, a.u.s->len));
    if (!rc)
        *out = b->len == a.u.s->len && (b->len == 0 || memcmp(b->data, a.u.s->s, b->len) == 0);
    rt_scratch_done(r, b);
    return rc;
}
TEST(t_lower) { return case_test(r, a, false, out); }
TEST(t_upper) { return case_test(r, a, true, out); }
TEST(t_defined) { *out = a.k != TV_UNDEF; return 0; }
TEST(t_undefined) { *out = a.k == TV_UNDEF; return 0; }
TEST(t_equalto)
{
    if (n < 1 || args[0].k == TV_JSUNDEF)
        return rt_err(r, line, "Cannot read properties of undefined (reading 'value')");
    *out = tv_strict_eq(a, args[0]);
    return 0;
}
/* extensions */
TEST(t_float) { *out = a.k == TV_FLOAT; return 0; }
static int need_arg(struct rctx *r, size_t n, const char *name, int line)
{
    return n < 1 ? rt_err(r, line, "test '%s' needs an argument", name) : 0;
}
TEST(t_divisibleby)
{
    int rc = need_arg(r, n, "divisibleby", line);
    if (rc)
        return rc;
    if (!tv_is_num(a) || !tv_is_num(args[0]))
        return rt_err(r, line, "divisibleby needs numbers, got %s and %s", tv_type_name(a), tv_type_name(args[0]));
    *out = args[0].u.n != 0 && fmod(a.u.n, args[0].u.n) == 0;
    return 0;
}
static int cmp_test(struct rctx *r, struct tv a, struct tv *args, size_t n, int line, const char *name, int *c)
{
    int rc = need_arg(r, n, name, line);
    if (rc)
        return rc;
    if (tv_is_num(a) && tv_is_num(args[0])) {
        *c = a.u.n < args[0].u.n ? -1 : a.u.n > args[0].u.n ? 1 : 0;
        return 0;
    }
    if (a.k == TV_STR && args[0].k == TV_STR) {
        *c = tx_cmp_utf16(a.u.s->s, a.u.s->len, args[0].u.s->s, args[0].u.s->len);
        return 0;
    }
    return rt_err(r, line, "test '%s' cannot compare %s with %s", name, tv_type_name(a), tv_type_name(args[0]));
}
TEST(t_ne)
{
    int rc = need_arg(r, n, "ne", line);
    if (!rc)
        *out = !tv_strict_eq(a, args[0]);
    return rc;
}
TEST(t_lt) { int c = 0, rc = cmp_test(r, a, args, n, line, "lt", &c); *out = c < 0; return rc; }
TEST(t_le) { int c = 0, rc = cmp_test(r, a, args, n, line, "le", &c); *out = c <= 0; return rc; }
TEST(t_gt) { int c = 0, rc = cmp_test(r, a, args, n, line, "gt", &c); *out = c > 0; return rc; }
TEST(t_ge) { int c = 0, rc = cmp_test(r, a, args, n, line, "ge", &c); *out = c >= 0; return rc; }
TEST(t_sameas)
{
    int rc = need_arg(r, n, "sameas", line);
    if (!rc)
        *out = tv_strict_eq(a, args[0]);
    return rc;
}
TEST(t_in)
{
    int rc = need_arg(r, n, "in", line);
    if (rc)
        return rc;
    struct tv c = args[0];
    *out = false;
    if (tv_is_array(c)) {
        for (size_t i = 0; i < c.u.a->n && !*out; i++)
            *out = tv_strict_eq(c.u.a->v[i], a);
    } else if (c.k == TV_STR && a.k == TV_STR) {
        *out = a.u.s->len == 0 || tx_find(c.u.s->s, c.u.s->len, a.u.s->s, a.u.s->len) != NULL;
    } else if (tv_is_attr(c) && a.k == TV_STR) {
        *out = tobj_find(c.u.o, a.u.s->s, a.u.s->len) != NULL;
    } else {
        return rt_err(r, line, "test 'in' cannot look for %s in %s", tv_type_name(a), tv_type_name(c));
    }
    return 0;
}

static const struct {
    const char *name;
    ttest_fn fn;
    bool ext;
} TESTS[] = {
    {"boolean", t_boolean, false},   {"callable", t_callable, false}, {"odd", t_odd, false},
    {"even", t_even, false},         {"false", t_false, false},       {"true", t_true, false},
    {"none", t_none, false},         {"string", t_string, false},     {"number", t_number, false},
    {"integer", t_integer, false},   {"iterable", t_iterable, false}, {"mapping", t_mapping, false},
    {"sequence", t_sequence, false}, {"lower", t_lower, false},       {"upper", t_upper, false},
    {"defined", t_defined, false},   {"undefined", t_undefined, false}, {"equalto", t_equalto, false},
    {"eq", t_equalto, false},        {"float", t_float, true},        {"divisibleby", t_divisibleby, true},
    {"ne", t_ne, true},              {"lt", t_lt, true},              {"le", t_le, true},
    {"gt", t_gt, true},              {"ge", t_ge, true},              {"greaterthan", t_gt, true},
    {"lessthan", t_lt, true},        {"in", t_in, true},              {"sameas", t_sameas, true},
    {"==", t_equalto, true},         {"!=", t_ne, true},              {"<", t_lt, true},
    {"<=", t_le, true},              {">", t_gt, true},               {">=", t_ge, true},
};

ttest_fn bi_find_test(const char *name, size_t n, bool reference_only)
{
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++)
        if (strlen(TESTS[i].name) == n && memcmp(TESTS[i].name, name, n) == 0)
            return (reference_only && TESTS[i].ext) ? NULL : TESTS[i].fn;
    return NULL;
}

int bi_test(struct rctx *r, struct tv operand, const struct node *t, struct tenv *env, bool *out)
{
    ttest_fn fn = bi_find_test(t->str->s, t->str->len, false);
    if (!fn)
        return rt_err(r, t->line, "Unknown test: %s", t->str->s);
    if (operand.k == TV_JSUNDEF)
        return rt_err(r, t->line, "Cannot read properties of undefined (reading 'type')");
    struct tv *args = NULL;
    size_t n = 0;
    if (t->flags & NF_CALL) {
        struct tarr *pos;
        struct tobj *kw;
        int rc = ev_args(r, t->list, t->nlist, env, &pos, &kw);
        if (rc)
            return rc;
        args = pos->v;
        n = pos->n;
    }
    return fn(r, operand, args, n, out, t->line);
}

/* ---- methods of strings --------------------------------------------------------- */

#define METHOD(name) static int name(struct rctx *r, const struct tfunc *f, struct tv *args, size_t n, struct tv *out)
#define SELF (f->self.u.s)
#define LINE 0

METHOD(m_upper)
{
    SCRATCH(b);
    return str_out(r, b, rt_buf(r, tx_upper(b, SELF->s, SELF->len)), out);
}
METHOD(m_lower)
{
    SCRATCH(b);
    return str_out(r, b, rt_buf(r, tx_lower(b, SELF->s, SELF->len)), out);
}
static int trim_to(struct rctx *r, const struct tstr *s, bool left, bool right, struct tv *out)
{
    size_t a, e;
    tx_trim(s->s, s->len, &a, &e, left, right);
    if (a == 0 && e == s->len) {
        *out = tv_str(s);
        return 0;
    }
    const struct tstr *t = rt_str_sub(r, s, a, e - a); /* keeps provenance */
    if (!t)
        return rt_oom(r);
    *out = tv_str(t);
    return 0;
}
METHOD(m_strip) { return trim_to(r, SELF, true, true, out); }
METHOD(m_lstrip) { return trim_to(r, SELF, true, false, out); }
METHOD(m_rstrip) { return trim_to(r, SELF, false, true, out); }

/* value.replace(/\b\w/g, c => c.toUpperCase()) */
static int title_case(struct rctx *r, const struct tstr *s, struct tv *out)
{
    SCRATCH(b);
    int rc = rt_buf(r, ea__buf_append(b, s->s, s->len));
    for (size_t i = 0; !rc && i < s->len; i++) {
        unsigned char c = (unsigned char)s->s[i];
        if (c >= 'a' && c <= 'z' && (i == 0 || !tx_word((unsigned char)s->s[i - 1])))
            b->data[i] = (char)(c - 32);
    }
    return str_out(r, b, rc, out);
}
METHOD(m_title) { return title_case(r, SELF, out); }

static int capitalize(struct rctx *r, const struct tstr *s, struct tv *out)
{
    if (s->len == 0) {
        *out = tv_str(s);
        return 0;
    }
    size_t l = ea__utf8_seq_len((unsigned char)s->s[0]);
    if (!l || l > s->len)
        l = 1;
    SCRATCH(b);
    int rc = rt_buf(r, l == 4 ? ea__buf_append(b, s->s, 4) : tx_upper(b, s->s, l));
    if (!rc)
        rc = rt_buf(r, ea__buf_append(b, s->s + l, s->len - l));
    return str_out(r, b, rc, out);
}
METHOD(m_capitalize) { return capitalize(r, SELF, out); }

static int starts_ends(struct rctx *r, const struct tstr *s, struct tv *args, size_t n, bool ends, struct tv *out)
{
    const char *name = ends ? "endswith" : "startswith";
    if (n == 0)
        return rt_err(r, LINE, "%s() requires at least one argument", name);
    struct tv p = args[0];
    size_t np = p.k == TV_STR ? 1 : tv_is_array(p) ? p.u.a->n : 0;
    if (p.k != TV_STR && !tv_is_array(p))
        return rt_err(r, LINE, "%s() argument must be a string or tuple of strings", name);
    *out = tv_bool(false);
    for (size_t i = 0; i < np; i++) { /* elements are checked as they are reached */
        struct tv e = p.k == TV_STR ? p : p.u.a->v[i];
        if (e.k != TV_STR)
            return rt_err(r, LINE, "%s() tuple elements must be strings", name);
        const struct tstr *q = e.u.s;
        if (q->len <= s->len && memcmp(ends ? s->s + s->len - q->len : s->s, q->s, q->len) == 0) {
            *out = tv_bool(true);
            return 0;
        }
    }
    return 0;
}
METHOD(m_startswith) { return starts_ends(r, SELF, args, n, false, out); }
METHOD(m_endswith) { return starts_ends(r, SELF, args, n, true, out); }

METHOD(m_split)
{
    const struct tstr *s = SELF;
    struct tv sep = n > 0 ? args[0] : tv_null();
    if (sep.k != TV_STR && sep.k != TV_NULL)
        return rt_err(r, LINE, "sep argument must be a string or null");
    struct tv ms = n > 1 ? args[1] : tv_int(-1);
    if (ms.k != TV_INT)
        return rt_err(r, LINE, "maxsplit argument must be a number");
    double maxsplit = ms.u.n;
    struct tarr *res = tarr_new(r, 4);
    if (!res)
        return rt_oom(r);
    int rc = 0;
    if (sep.k == TV_NULL) {
        size_t a, e;
        tx_trim(s->s, s->len, &a, &e, true, false);
        const char *t = s->s + a;
        size_t tn = s->len - a, i = 0, l;
        while (i < tn && !rc) {
            while (i < tn && (l = tx_ws_at(t + i, tn - i)) > 0)
                i += l;
            if (i >= tn)
                break;
            size_t start = i;
            if (maxsplit != -1 && (double)res->n >= maxsplit) {
                struct tv v;
                if (!(rc = mkstr(r, t + start, tn - start, &v)))
                    rc = tarr_push(r, res, v);
                break;
            }
            while (i < tn && tx_ws_at(t + i, tn - i) == 0)
                i++;
            struct tv v;
            if (!(rc = mkstr(r, t + start, i - start, &v)))
                rc = tarr_push(r, res, v);
        }
    } else {
        const struct tstr *sp = sep.u.s;
        if (sp->len == 0)
            return rt_err(r, LINE, "empty separator");
        size_t i = 0;
        for (;;) {
            const char *hit = i <= s->len ? tx_find(s->s + i, s->len - i, sp->s, sp->len) : NULL;
            if (maxsplit != -1 && (double)res->n >= maxsplit)
                hit = NULL; /* the rest, separators included, is the last part */
            size_t end = hit ? (size_t)(hit - s->s) : s->len;
            struct tv v;
            if ((rc = mkstr(r, s->s + i, end - i, &v)) || (rc = tarr_push(r, res, v)))
                break;
            if (!hit)
                break;
            i = end + sp->len;
        }
    }
    *out = tv_array(res);
    return rc;
}

/* utils.replace: count < 0 or null = all; an empty `old` matches between
 * every code point. */
static int str_replace(struct rctx *r, const struct tstr *s, const struct tstr *old, const struct tstr *nw,
                       double count, struct tv *out)
{
    if (count == 0) {
        *out = tv_str(s);
        return 0;
    }
    double remaining = count < 0 || isnan(count) ? INFINITY : count;
    SCRATCH(b);
    int rc = 0;
    if (old->len == 0) {
        size_t i = 0;
        for (;;) {
            if (remaining > 0) {
                remaining--;
                if ((rc = rt_buf(r, ea__buf_append(b, nw->s, nw->len))))
                    break;
            }
            if (i >= s->len)
                break;
            size_t l = ea__utf8_seq_len((unsigned char)s->s[i]);
            l = (l && i + l <= s->len) ? l : 1;
            if ((rc = rt_buf(r, ea__buf_append(b, s->s + i, l))))
                break;
            i += l;
        }
    } else {
        size_t i = 0;
        while (!rc) {
            const char *hit = tx_find(s->s + i, s->len - i, old->s, old->len);
            if (!hit || remaining <= 0) {
                rc = rt_buf(r, ea__buf_append(b, s->s + i, s->len - i));
                break;
            }
            size_t at = (size_t)(hit - s->s);
            rc = rt_buf(r, ea__buf_append(b, s->s + i, at - i));
            if (!rc)
                rc = rt_buf(r, ea__buf_append(b, nw->s, nw->len));
            remaining--;
            i = at + old->len;
        }
    }
    return str_out(r, b, rc, out);
}

METHOD(m_replace)
{
    if (n < 2)
        return rt_err(r, LINE, "replace() requires at least two arguments");
    if (args[0].k != TV_STR || args[1].k != TV_STR)
        return rt_err(r, LINE, "replace() arguments must be strings");
    struct tv count = tv_null();
    if (n > 2) {
        if (args[2].k == TV_KWARGS) {
            struct tv c = kwget(args[2].u.o, "count");
            count = absent(c) ? tv_null() : c;
        } else {
            count = args[2];
        }
    }
    if (count.k != TV_INT && count.k != TV_NULL)
        return rt_err(r, LINE, "replace() count argument must be a number or null");
    return str_replace(r, SELF, args[0].u.s, args[1].u.s, count.k == TV_INT ? count.u.n : -1, out);
}

/* extensions: str.count(sub), str.find(sub), sep.join(items) */
METHOD(m_count)
{
    if (n < 1 || args[0].k != TV_STR)
        return rt_err(r, LINE, "count() needs a string argument");
    const struct tstr *s = SELF, *sub = args[0].u.s;
    double c = 0;
    if (sub->len == 0) {
        c = (double)tx_utf16_len(s->s, s->len) + 1;
    } else {
        for (size_t i = 0; i + sub->len <= s->len;) {
            const char *hit = tx_find(s->s + i, s->len - i, sub->s, sub->len);
            if (!hit)
                break;
            c++;
            i = (size_t)(hit - s->s) + sub->len;
        }
    }
    *out = tv_int(c);
    return 0;
}
METHOD(m_find)
{
    if (n < 1 || args[0].k != TV_STR)
        return rt_err(r, LINE, "find() needs a string argument");
    const struct tstr *s = SELF, *sub = args[0].u.s;
    const char *hit = sub->len ? tx_find(s->s, s->len, sub->s, sub->len) : s->s;
    *out = tv_int(hit ? (double)tx_utf16_len(s->s, (size_t)(hit - s->s)) : -1);
    return 0;
}
static int join_values(struct rctx *r, const struct tarr *a, const struct tstr *sep, struct tv *out);
METHOD(m_join)
{
    if (n < 1 || !tv_is_array(args[0]))
        return rt_err(r, LINE, "join() needs a list argument");
    return join_values(r, args[0].u.a, SELF, out);
}

/* ---- methods of lists (extensions) ---------------------------------------------- */

#define ASELF (f->self.u.a)
METHOD(m_append)
{
    int rc = tarr_push(r, ASELF, n > 0 ? args[0] : tv_undef());
    *out = tv_null();
    return rc;
}
METHOD(m_extend)
{
    if (n < 1 || !tv_is_array(args[0]))
        return rt_err(r, LINE, "extend() needs a list argument");
    const struct tarr *src = args[0].u.a;
    size_t cnt = src->n;
    for (size_t i = 0; i < cnt; i++) {
        int rc = tarr_push(r, ASELF, src->v[i]);
        if (rc)
            return rc;
    }
    *out = tv_null();
    return 0;
}
METHOD(m_pop)
{
    struct tarr *a = ASELF;
    if (a->n == 0)
        return rt_err(r, LINE, "pop from empty list");
    double i = (n > 0 && tv_is_num(args[0])) ? args[0].u.n : (double)a->n - 1;
    if (i < 0)
        i += (double)a->n;
    if (i < 0 || i >= (double)a->n)
        return rt_err(r, LINE, "pop index out of range");
    size_t k = (size_t)i;
    *out = a->v[k];
    /* copy, not shift in place: a for loop may be iterating the old items */
    struct tv *nv = ta_alloc(&r->ar, (a->n > 1 ? a->n - 1 : 1) * sizeof *nv);
    if (!nv)
        return rt_oom(r);
    t_copy(nv, a->v, k * sizeof *nv);
    t_copy(nv + k, a->v + k + 1, (a->n - k - 1) * sizeof *nv);
    a->v = nv;
    a->cap = a->n - 1;
    a->n--;
    return 0;
}
METHOD(m_index)
{
    const struct tarr *a = ASELF;
    for (size_t i = 0; n > 0 && i < a->n; i++)
        if (tv_strict_eq(a->v[i], args[0])) {
            *out = tv_int((double)i);
            return 0;
        }
    return rt_err(r, LINE, "value is not in list");
}

/* ---- methods of dicts ------------------------------------------------------------- */

#define OSELF (f->self.u.o)
static int obj_items(struct rctx *r, const struct tobj *o, struct tv *out)
{
    struct tarr *a = tarr_new(r, o->n);
    if (!a)
        return rt_oom(r);
    for (size_t i = 0; i < o->n; i++) {
        struct tarr *pair = tarr_new(r, 2);
        if (!pair)
            return rt_oom(r);
        pair->v[0] = tv_str(o->e[i].k);
        pair->v[1] = o->e[i].v;
        pair->n = 2;
        a->v[a->n++] = tv_array(pair);
    }
    *out = tv_array(a);
    return 0;
}
METHOD(m_get)
{
    if (n < 1)
        return rt_err(r, LINE, "Cannot read properties of undefined (reading 'type')");
    if (args[0].k != TV_STR)
        return rt_err(r, LINE, "Object key must be a string: got %s", tv_type_name(args[0]));
    const struct tobj_ent *e = tobj_find(OSELF, args[0].u.s->s, args[0].u.s->len);
    if (e && e->v.k != TV_JSUNDEF)
        *out = e->v;
    else
        *out = n > 1 ? args[1] : tv_null();
    return 0;
}
METHOD(m_items) { return obj_items(r, OSELF, out); }
METHOD(m_keys)
{
    struct tarr *a = tarr_new(r, OSELF->n);
    if (!a)
        return rt_oom(r);
    for (size_t i = 0; i < OSELF->n; i++)
        a->v[a->n++] = tv_str(OSELF->e[i].k);
    *out = tv_array(a);
    return 0;
}
METHOD(m_values)
{
    struct tarr *a = tarr_new(r, OSELF->n);
    if (!a)
        return rt_oom(r);
    for (size_t i = 0; i < OSELF->n; i++)
        a->v[a->n++] = OSELF->e[i].v;
    *out = tv_array(a);
    return 0;
}
METHOD(m_dictsort)
{
    struct tobj *kw = NULL;
    struct tv pos[3];
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        if (args[i].k == TV_KWARGS)
            kw = args[i].u.o;
        else if (np < 3)
            pos[np++] = args[i];
    }
    struct tv cs = np > 0 ? pos[0] : kwget(kw, "case_sensitive");
    if (absent(cs))
        cs = tv_bool(false);
    if (cs.k != TV_BOOL)
        return rt_err(r, LINE, "case_sensitive must be a boolean");
    struct tv by = np > 1 ? pos[1] : kwget(kw, "by");
    if (absent(by))
        by = tv_str(rt_strz(r, "key"));
    if (by.k != TV_STR || !by.u.s)
        return by.k == TV_STR ? rt_oom(r) : rt_err(r, LINE, "by must be a string");
    if (!NAME_IS(by.u.s, "key") && !NAME_IS(by.u.s, "value"))
        return rt_err(r, LINE, "by must be either 'key' or 'value'");
    struct tv rev = np > 2 ? pos[2] : kwget(kw, "reverse");
    if (absent(rev))
        rev = tv_bool(false);
    if (rev.k != TV_BOOL)
        return rt_err(r, LINE, "reverse must be a boolean");
    struct tv items;
    int rc = obj_items(r, OSELF, &items);
    if (rc)
        return rc;
    struct sort_ctx c = {.reverse = rev.u.b, .cs = cs.u.b, .index = NAME_IS(by.u.s, "key") ? 0 : 1};
    return sorted_copy(r, items.u.a, sort_cmp, &c, out);
}

bool bi_member(struct rctx *r, struct tv obj, const struct tstr *name, struct tv *out)
{
    static const struct {
        const char *name;
        tbuiltin_fn fn;
    } STR_M[] = {{"upper", m_upper},           {"lower", m_lower},       {"strip", m_strip},
                 {"title", m_title},           {"capitalize", m_capitalize}, {"rstrip", m_rstrip},
                 {"lstrip", m_lstrip},         {"startswith", m_startswith}, {"endswith", m_endswith},
                 {"split", m_split},           {"replace", m_replace},   {"count", m_count},
                 {"find", m_find},             {"join", m_join}},
      ARR_M[] = {{"append", m_append}, {"pop", m_pop}, {"index", m_index}, {"extend", m_extend}},
      OBJ_M[] = {{"get", m_get}, {"items", m_items}, {"keys", m_keys}, {"values", m_values}, {"dictsort", m_dictsort}};
    *out = tv_undef();
#define FIND(tab)                                                                                            \
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)                                                  \
        if (NAME_IS(name, tab[i].name)) {                                                                    \
            *out = tv_func(r, tab[i].fn, obj, tab[i].name);                                                  \
            return true;                                                                                     \
        }
    if (obj.k == TV_STR) {
        if (NAME_IS(name, "length")) {
            *out = tv_int((double)tx_utf16_len(obj.u.s->s, obj.u.s->len));
            return true;
        }
        FIND(STR_M);
    } else if (tv_is_array(obj)) {
        if (NAME_IS(name, "length")) {
            *out = tv_int((double)obj.u.a->n);
            return true;
        }
        FIND(ARR_M);
    } else if (tv_is_object(obj)) {
        FIND(OBJ_M);
    }
#undef FIND
    return false;
}

/* ---- filters ---------------------------------------------------------------------- */

/* Array.prototype.join of `x.value`: null/undefined give "". */
static int join_values(struct rctx *r, const struct tarr *a, const struct tstr *sep, struct tv *out)
{
    SCRATCH(b);
    int rc = 0;
    for (size_t i = 0; i < a->n && !rc; i++) {
        size_t at = b->len;
        if (i && !(rc = rt_buf(r, ea__buf_append(b, sep->s, sep->len))))
            rc = ts_add_str(r, ts_of(r, b), at, sep, 0, sep->len);
        struct tv v = a->v[i];
        if (!rc && v.k != TV_NULL && v.k != TV_UNDEF && v.k != TV_JSUNDEF)
            rc = tv_js_string(r, b, v, 0);
    }
    return str_out(r, b, rc, out);
}

static int unique(struct rctx *r, const struct tarr *a, struct tv *out)
{
    struct tarr *o = tarr_new(r, a->n);
    if (!o)
        return rt_oom(r);
    for (size_t i = 0; i < a->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < o->n && !seen; j++)
            seen = tv_same_value_zero(o->v[j], a->v[i]);
        r->steps += o->n;
        if (!seen)
            o->v[o->n++] = a->v[i];
    }
    *out = tv_array(o);
    return 0;
}

static int indent(struct rctx *r, const struct tstr *s, double width, bool first, bool blank, struct tv *out)
{
    if (width < 0)
        return rt_err(r, LINE, "Invalid count value: %g", width);
    size_t w = (size_t)fmin(width, (double)r->out.max + 1);
    SCRATCH(b);
    int rc = 0;
    size_t i = 0, line = 0;
    for (;;) {
        const char *nl = memchr(s->s + i, '\n', s->len - i);
        size_t end = nl ? (size_t)(nl - s->s) : s->len;
        bool skip = (!first && line == 0) || (!blank && end == i);
        for (size_t k = 0; !skip && !rc && k < w; k++)
            rc = rt_buf(r, ea__buf_putc(b, ' '));
        if (!rc)
            rc = rt_buf(r, ea__buf_append(b, s->s + i, end - i));
        if (rc || !nl)
            break;
        rc = rt_buf(r, ea__buf_putc(b, '\n'));
        i = end + 1;
        line++;
    }
    return str_out(r, b, rc, out);
}

static int to_json(struct rctx *r, struct tv v, const struct json_opts *o, struct tv *out, int line)
{
    SCRATCH(b);
    return str_out(r, b, tv_to_json(r, b, v, o, 0, line), out);
}

static int to_text(struct rctx *r, struct tv v, struct tv *out, int line)
{
    if (v.k == TV_STR) {
        *out = v;
        return 0;
    }
    SCRATCH(b);
    return str_out(r, b, tv_to_string(r, b, v, line), out);
}

static int from_json(struct rctx *r, const struct tstr *s, struct tv *out, int line)
{
    json_error_t je;
    json_t *j = json_loadb(s->s, s->len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &je);
    if (!j)
        return rt_err(r, line, "from_json: invalid JSON: %s", je.text);
    r->json_data = r->track && s->data; /* parsed from data: all of it is data */
    int rc = tv_from_json(r, j, out);
    r->json_data = false;
    json_decref(j);
    return rc;
}

static int escape_html(struct rctx *r, const struct tstr *s, struct tv *out)
{
    SCRATCH(b);
    int rc = 0;
    for (size_t i = 0; i < s->len && !rc; i++) {
        const char *rep = NULL;
        switch (s->s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&#34;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        rc = rt_buf(r, rep ? ea__buf_puts(b, rep) : ea__buf_putc(b, s->s[i]));
    }
    return str_out(r, b, rc, out);
}

static int chars(struct rctx *r, const struct tstr *s, bool reversed, struct tv *out)
{
    size_t n;
    size_t *o = cp_offsets(r, s, &n);
    struct tarr *a = o ? tarr_new(r, n) : NULL;
    if (!a)
        return rt_oom(r);
    for (size_t i = 0; i < n; i++) {
        size_t k = reversed ? n - 1 - i : i;
        const struct tstr *c = rt_str_sub(r, s, o[k], o[k + 1] - o[k]); /* keeps provenance */
        if (!c)
            return rt_oom(r);
        a->v[a->n++] = tv_str(c);
    }
    *out = tv_array(a);
    return 0;
}

static int num_round(struct rctx *r, struct tv x, double prec, const struct tstr *method, struct tv *out, int line)
{
    double p = pow(10, prec), v = x.u.n * p, res;
    if (!method || NAME_IS(method, "common")) {
        res = nearbyint(v); /* Python's round(): ties to even */
    } else if (NAME_IS(method, "ceil")) {
        res = ceil(v);
    } else if (NAME_IS(method, "floor")) {
        res = floor(v);
    } else {
        return rt_err(r, line, "method must be common, ceil or floor");
    }
    res /= p;
    *out = x.k == TV_INT && prec <= 0 ? tv_int(res) : tv_float(res);
    return 0;
}

static int agg(struct rctx *r, const struct tarr *a, const char *what, const struct tobj *kw, struct tv *out, int line)
{
    struct tv attr = kwget(kw, "attribute");
    const struct tstr *path = attr.k == TV_STR ? attr.u.s : NULL;
    if (!strcmp(what, "sum")) {
        struct tv start = kwget(kw, "start");
        double s = absent(start) ? 0 : start.u.n;
        bool fl = !absent(start) && start.k == TV_FLOAT;
        for (size_t i = 0; i < a->n; i++) {
            struct tv v = path ? attr_path(a->v[i], path) : a->v[i];
            if (!tv_is_num(v) && v.k != TV_BOOL)
                return rt_err(r, line, "sum: cannot add %s", tv_type_name(v));
            s += v.k == TV_BOOL ? v.u.b : v.u.n;
            fl |= v.k == TV_FLOAT;
        }
        *out = fl ? tv_float(s) : tv_int(s);
        return 0;
    }
    struct tv cs = kwget(kw, "case_sensitive");
    bool max = !strcmp(what, "max");
    *out = tv_undef();
    for (size_t i = 0; i < a->n; i++) {
        struct tv v = path ? attr_path(a->v[i], path) : a->v[i];
        if (i == 0) {
            *out = a->v[i];
            continue;
        }
        struct tv best = path ? attr_path(*out, path) : *out;
        int c, rc = tv_compare(r, v, best, cs.k == TV_BOOL && cs.u.b, &c, line);
        if (rc)
            return rc;
        if (max ? c > 0 : c < 0)
            *out = a->v[i];
    }
    return 0;
}

static int apply_ident(struct rctx *r, struct tv x, const struct tstr *name, int line, struct tv *out);
static int apply_call(struct rctx *r, struct tv x, const struct tstr *name, const struct node *f, struct tarr *pos,
                      struct tobj *kw, int line, struct tv *out);

/* select/reject with a test name (extension; selectattr is the reference) */
static int select_reject(struct rctx *r, const struct tarr *a, bool select, struct tarr *pos, int line, struct tv *out)
{
    ttest_fn fn = NULL;
    if (pos && pos->n > 0) {
        if (pos->v[0].k != TV_STR)
            return rt_err(r, line, "%s: the test name must be a string", select ? "select" : "reject");
        fn = bi_find_test(pos->v[0].u.s->s, pos->v[0].u.s->len, false);
        if (!fn)
            return rt_err(r, line, "Unknown test: %s", pos->v[0].u.s->s);
    }
    struct tarr *o = tarr_new(r, a->n);
    if (!o)
        return rt_oom(r);
    for (size_t i = 0; i < a->n; i++) {
        bool res;
        if (fn) {
            int rc = fn(r, a->v[i], pos->v + 1, pos->n - 1, &res, line);
            if (rc)
                return rc;
        } else {
            res = tv_truthy(a->v[i]);
        }
        if (res == select)
            o->v[o->n++] = a->v[i];
    }
    *out = tv_array(o);
    return 0;
}

/* Extensions reached only where the reference raised "Unknown ... filter". */
static int ext_filter(struct rctx *r, struct tv x, const struct tstr *name, struct tarr *pos, struct tobj *kw,
                      int line, struct tv *out, bool *done)
{
    *done = true;
    size_t npos = pos ? pos->n : 0;
    if (NAME_IS(name, "count")) {
        if (x.k == TV_STR)
            return apply_ident(r, x, rt_strz(r, "length"), line, out);
        if (tv_is_array(x)) {
            *out = tv_int((double)x.u.a->n);
            return 0;
        }
        if (tv_is_attr(x)) {
            *out = tv_int((double)x.u.o->n);
            return 0;
        }
    }
    if (tv_is_array(x)) {
        const struct tarr *a = x.u.a;
        if (NAME_IS(name, "reject") || NAME_IS(name, "select"))
            return select_reject(r, a, NAME_IS(name, "select"), pos, line, out);
        if (NAME_IS(name, "sum") || NAME_IS(name, "min") || NAME_IS(name, "max"))
            return agg(r, a, name->s, kw, out, line);
        if (NAME_IS(name, "map") && npos > 0 && pos->v[0].k == TV_STR) {
            /* map('filter', args...): apply a filter to every item */
            struct tarr *o = tarr_new(r, a->n), *rest = tarr_new(r, npos - 1);
            if (!o || !rest)
                return rt_oom(r);
            for (size_t i = 1; i < npos; i++)
                rest->v[rest->n++] = pos->v[i];
            for (size_t i = 0; i < a->n; i++) {
                int rc = (rest->n || kw) ? apply_call(r, a->v[i], pos->v[0].u.s, NULL, rest, kw, line, &o->v[i])
                                         : apply_ident(r, a->v[i], pos->v[0].u.s, line, &o->v[i]);
                if (rc)
                    return rc;
                o->n++;
            }
            *out = tv_array(o);
            return 0;
        }
    } else if (x.k == TV_STR) {
        const struct tstr *s = x.u.s;
        if (NAME_IS(name, "wordcount")) {
            double words = 0;
            for (size_t i = 0; i < s->len;) {
                while (i < s->len && !(tx_word((unsigned char)s->s[i]) || (unsigned char)s->s[i] >= 0x80))
                    i++;
                if (i >= s->len)
                    break;
                words++;
                while (i < s->len && (tx_word((unsigned char)s->s[i]) || (unsigned char)s->s[i] >= 0x80))
                    i++;
            }
            *out = tv_int(words);
            return 0;
        }
        if (NAME_IS(name, "e") || NAME_IS(name, "escape"))
            return escape_html(r, s, out);
        if (NAME_IS(name, "list"))
            return chars(r, s, false, out);
        if (NAME_IS(name, "reverse")) {
            struct tv l;
            int rc = chars(r, s, true, &l);
            return rc ? rc : join_values(r, l.u.a, &tstr_empty, out);
        }
        if (NAME_IS(name, "first") || NAME_IS(name, "last")) {
            struct tv l;
            int rc = chars(r, s, false, &l);
            if (rc)
                return rc;
            *out = l.u.a->n ? l.u.a->v[NAME_IS(name, "first") ? 0 : l.u.a->n - 1] : tv_undef();
            return 0;
        }
        if (NAME_IS(name, "from_json"))
            return from_json(r, s, out, line);
    } else if (tv_is_num(x)) {
        if (NAME_IS(name, "round")) {
            struct tv prec = pick(pos, 0, kw, "precision", tv_int(0));
            struct tv method = pick(pos, 1, kw, "method", tv_null());
            if (!tv_is_num(prec))
                return rt_err(r, line, "round: precision must be a number");
            return num_round(r, x, prec.u.n, method.k == TV_STR ? method.u.s : NULL, out, line);
        }
    } else if (tv_is_object(x) && NAME_IS(name, "list")) {
        return m_keys(r, &(struct tfunc){.self = x}, NULL, 0, out);
    }
    *done = false;
    return 0;
}

static int default_filter(struct rctx *r, struct tv x, struct tarr *pos, struct tobj *kw, int line, struct tv *out)
{
    struct tv dflt = pos && pos->n > 0 ? pos->v[0] : tv_str(&tstr_empty);
    struct tv boolean = pick(pos, 1, kw, "boolean", tv_bool(false));
    if (boolean.k != TV_BOOL)
        return rt_err(r, line, "`default` filter flag must be a boolean");
    *out = (x.k == TV_UNDEF || (boolean.u.b && !tv_truthy(x))) ? dflt : x;
    return 0;
}

/* Filters written without parentheses (`x|name`). */
static int apply_ident(struct rctx *r, struct tv x, const struct tstr *name, int line, struct tv *out)
{
    if (!name)
        return rt_oom(r);
    bool done;
    int rc;
    if (NAME_IS(name, "safe")) {
        *out = x;
        return 0;
    }
    if (NAME_IS(name, "tojson")) {
        struct json_opts o = {.undef_null = true};
        return to_json(r, x, &o, out, line);
    }
    if (tv_is_array(x)) {
        const struct tarr *a = x.u.a;
        if (NAME_IS(name, "list")) {
            *out = x;
            return 0;
        }
        if (NAME_IS(name, "first") || NAME_IS(name, "last")) {
            *out = a->n ? a->v[NAME_IS(name, "first") ? 0 : a->n - 1] : (struct tv){.k = TV_JSUNDEF};
            return 0;
        }
        if (NAME_IS(name, "length")) {
            *out = tv_int((double)a->n);
            return 0;
        }
        if (NAME_IS(name, "reverse")) {
            struct tarr *o = tarr_new(r, a->n);
            if (!o)
                return rt_oom(r);
            for (size_t i = 0; i < a->n; i++)
                o->v[o->n++] = a->v[a->n - 1 - i];
            *out = tv_array(o);
            return 0;
        }
        if (NAME_IS(name, "sort")) {
            struct sort_ctx c = {.index = -1, .line = line};
            return sorted_copy(r, a, sort_cmp, &c, out);
        }
        if (NAME_IS(name, "join"))
            return join_values(r, a, &tstr_empty, out);
        if (NAME_IS(name, "string")) {
            struct json_opts o = {0};
            return to_json(r, x, &o, out, line);
        }
        if (NAME_IS(name, "unique"))
            return unique(r, a, out);
        if (NAME_IS(name, "default") || NAME_IS(name, "d")) {
            *out = x;
            return 0;
        }
        if ((rc = ext_filter(r, x, name, NULL, NULL, line, out, &done)) || done)
            return rc;
        return rt_err(r, line, "Unknown ArrayValue filter: %s", name->s);
    }
    if (x.k == TV_STR) {
        const struct tstr *s = x.u.s;
        if (NAME_IS(name, "length")) {
            *out = tv_int((double)tx_utf16_len(s->s, s->len));
            return 0;
        }
        if (NAME_IS(name, "upper") || NAME_IS(name, "lower")) {
            SCRATCH(b);
            return str_out(r, b,
                           rt_buf(r, NAME_IS(name, "upper") ? tx_upper(b, s->s, s->len) : tx_lower(b, s->s, s->len)),
                           out);
        }
        if (NAME_IS(name, "title"))
            return title_case(r, s, out);
        if (NAME_IS(name, "capitalize"))
            return capitalize(r, s, out);
        if (NAME_IS(name, "trim"))
            return trim_to(r, s, true, true, out);
        if (NAME_IS(name, "indent"))
            return indent(r, s, 4, false, false, out);
        if (NAME_IS(name, "join") || NAME_IS(name, "string") || NAME_IS(name, "default") || NAME_IS(name, "d")) {
            *out = x;
            return 0;
        }
        if (NAME_IS(name, "int")) {
            double v = tx_parse_int(s->s, s->len);
            *out = tv_int(isnan(v) ? 0 : v);
            return 0;
        }
        if (NAME_IS(name, "float")) {
            double v = tx_parse_float(s->s, s->len);
            *out = tv_float(isnan(v) ? 0 : v);
            return 0;
        }
        if ((rc = ext_filter(r, x, name, NULL, NULL, line, out, &done)) || done)
            return rc;
        return rt_err(r, line, "Unknown StringValue filter: %s", name->s);
    }
    if (tv_is_num(x)) {
        if (NAME_IS(name, "abs")) {
            *out = x.k == TV_INT ? tv_int(fabs(x.u.n)) : tv_float(fabs(x.u.n));
            return 0;
        }
        if (NAME_IS(name, "int")) {
            *out = tv_int(floor(x.u.n));
            return 0;
        }
        if (NAME_IS(name, "float")) {
            *out = tv_float(x.u.n);
            return 0;
        }
        if (NAME_IS(name, "string"))
            return to_text(r, x, out, line);
        if (NAME_IS(name, "default") || NAME_IS(name, "d")) {
            *out = x;
            return 0;
        }
        if ((rc = ext_filter(r, x, name, NULL, NULL, line, out, &done)) || done)
            return rc;
        return rt_err(r, line, "Unknown NumericValue filter: %s", name->s);
    }
    if (tv_is_object(x)) {
        if (NAME_IS(name, "items"))
            return obj_items(r, x.u.o, out);
        if (NAME_IS(name, "length")) {
            *out = tv_int((double)x.u.o->n);
            return 0;
        }
        struct tv m;
        if (bi_member(r, x, name, &m) && m.k == TV_FUNC)
            return m.u.f->fn(r, m.u.f, NULL, 0, out);
        if (NAME_IS(name, "default") || NAME_IS(name, "d")) {
            *out = x;
            return 0;
        }
        if ((rc = ext_filter(r, x, name, NULL, NULL, line, out, &done)) || done)
            return rc;
        return rt_err(r, line, "Unknown ObjectValue filter: %s", name->s);
    }
    if (x.k == TV_BOOL) {
        if (NAME_IS(name, "bool") || NAME_IS(name, "default") || NAME_IS(name, "d")) {
            *out = x;
            return 0;
        }
        if (NAME_IS(name, "int")) {
            *out = tv_int(x.u.b ? 1 : 0);
            return 0;
        }
        if (NAME_IS(name, "float")) {
            *out = tv_float(x.u.b ? 1 : 0);
            return 0;
        }
        if (NAME_IS(name, "string"))
            return mkstr(r, x.u.b ? "true" : "false", x.u.b ? 4 : 5, out);
        return rt_err(r, line, "Unknown BooleanValue filter: %s", name->s);
    }
    if (NAME_IS(name, "default") || NAME_IS(name, "d"))
        return default_filter(r, x, NULL, NULL, line, out);
    if ((rc = ext_filter(r, x, name, NULL, NULL, line, out, &done)) || done)
        return rc;
    return rt_err(r, line, "Cannot apply filter \"%s\" to type: %s", name->s, tv_type_name(x));
}

/* Extension: `x|f()` as `x|f` where the reference refuses the call form. If
 * that fails too, the caller reports the reference's own message. */
static int empty_call_fallback(struct rctx *r, struct tv x, const struct tstr *name, int line, struct tv *out)
{
    int rc = apply_ident(r, x, name, line, out);
    if (rc == EA_EINVAL)
        ea_error_clear(r->err);
    return rc;
}

static int tojson_call(struct rctx *r, struct tv x, struct tobj *kw, int line, struct tv *out)
{
    struct json_opts o = {.undef_null = true};
    struct tv indent_v = kwget(kw, "indent");
    if (!absent(indent_v) && indent_v.k != TV_INT && indent_v.k != TV_NULL)
        return rt_err(r, line, "If set, indent must be a number");
    if (indent_v.k == TV_INT) {
        if (indent_v.u.n < 0)
            return rt_err(r, line, "Invalid count value: %s", "negative indent");
        o.indent = indent_v.u.n > 1000 ? 1000 : (int)indent_v.u.n;
    }
    struct tv ascii = kwget(kw, "ensure_ascii");
    if (!absent(ascii) && ascii.k != TV_BOOL)
        return rt_err(r, line, "If set, ensure_ascii must be a boolean");
    o.ascii = ascii.k == TV_BOOL && ascii.u.b;
    struct tv sk = kwget(kw, "sort_keys");
    if (!absent(sk) && sk.k != TV_BOOL)
        return rt_err(r, line, "If set, sort_keys must be a boolean");
    o.sort_keys = sk.k == TV_BOOL && sk.u.b;
    struct tv sep = kwget(kw, "separators");
    if (tv_is_array(sep)) {
        if (sep.u.a->n != 2 || sep.u.a->v[0].k != TV_STR || sep.u.a->v[1].k != TV_STR)
            return rt_err(r, line, "separators must be a tuple of two strings");
        o.item_sep = sep.u.a->v[0].u.s;
        o.key_sep = sep.u.a->v[1].u.s;
    } else if (!absent(sep) && sep.k != TV_NULL) {
        return rt_err(r, line, "If set, separators must be a tuple of two strings");
    }
    return to_json(r, x, &o, out, line);
}

static int selectattr(struct rctx *r, const struct tarr *a, bool select, const struct node *f, struct tarr *pos,
                      int line, struct tv *out)
{
    const char *fname = select ? "selectattr" : "rejectattr";
    for (size_t i = 0; i < a->n; i++)
        if (!tv_is_attr(a->v[i]))
            return rt_err(r, line, "`%s` can only be applied to array of objects", fname);
    if (f) {
        for (size_t i = 0; i < f->nlist; i++)
            if (f->list[i]->kind != N_STR)
                return rt_err(r, line, "arguments of `%s` must be strings", fname);
    } else {
        for (size_t i = 0; i < pos->n; i++)
            if (pos->v[i].k != TV_STR)
                return rt_err(r, line, "arguments of `%s` must be strings", fname);
    }
    if (pos->n < 1)
        return rt_err(r, line, "Cannot read properties of undefined (reading 'value')");
    const struct tstr *attr = pos->v[0].u.s;
    ttest_fn fn = NULL;
    if (pos->n > 1) {
        fn = bi_find_test(pos->v[1].u.s->s, pos->v[1].u.s->len, false);
        if (!fn)
            return rt_err(r, line, "Unknown test: %s", pos->v[1].u.s->s);
    }
    struct tarr *o = tarr_new(r, a->n);
    if (!o)
        return rt_oom(r);
    for (size_t i = 0; i < a->n; i++) {
        const struct tobj_ent *e = tobj_find(a->v[i].u.o, attr->s, attr->len);
        bool res = false;
        if (e && e->v.k != TV_JSUNDEF) {
            if (fn) {
                int rc = fn(r, e->v, pos->v + 2, pos->n > 2 ? pos->n - 2 : 0, &res, line);
                if (rc)
                    return rc;
            } else {
                res = tv_truthy(e->v);
            }
        }
        if (res == select)
            o->v[o->n++] = a->v[i];
    }
    *out = tv_array(o);
    return 0;
}

/* Filters written with parentheses (`x|name(args)`); f is the node when the
 * filter comes from the template (selectattr checks its argument nodes). */
static int apply_call(struct rctx *r, struct tv x, const struct tstr *name, const struct node *f, struct tarr *pos,
                      struct tobj *kw, int line, struct tv *out)
{
    int rc;
    bool done;
    if (NAME_IS(name, "tojson"))
        return tojson_call(r, x, kw, line, out);
    if (NAME_IS(name, "join")) {
        struct tv sep = pick(pos, 0, kw, "separator", tv_str(&tstr_empty));
        if (x.k != TV_STR && !tv_is_array(x))
            return rt_err(r, line, "Cannot apply filter \"join\" to type: %s", tv_type_name(x));
        if (sep.k != TV_STR)
            return rt_err(r, line, "separator must be a string");
        if (tv_is_array(x))
            return join_values(r, x.u.a, sep.u.s, out);
        struct tv l;
        if ((rc = chars(r, x.u.s, false, &l)))
            return rc;
        return join_values(r, l.u.a, sep.u.s, out);
    }
    if (NAME_IS(name, "int") || NAME_IS(name, "float")) {
        bool is_int = NAME_IS(name, "int");
        struct tv dflt = pick(pos, 0, kw, "default", is_int ? tv_int(0) : tv_float(0));
        if (x.k == TV_STR) {
            double v = is_int ? tx_parse_int(x.u.s->s, x.u.s->len) : tx_parse_float(x.u.s->s, x.u.s->len);
            *out = isnan(v) ? dflt : is_int ? tv_int(v) : tv_float(v);
            return 0;
        }
        if (tv_is_num(x)) {
            *out = x;
            return 0;
        }
        if (x.k == TV_BOOL) {
            *out = is_int ? tv_int(x.u.b) : tv_float(x.u.b);
            return 0;
        }
        return rt_err(r, line, "Cannot apply filter \"%s\" to type: %s", name->s, tv_type_name(x));
    }
    if (NAME_IS(name, "default") || NAME_IS(name, "d"))
        return default_filter(r, x, pos, kw, line, out);
    bool empty_call = (!pos || pos->n == 0) && (!kw || kw->n == 0);
    if (tv_is_array(x)) {
        const struct tarr *a = x.u.a;
        if (NAME_IS(name, "sort")) {
            struct tv rev = pick(pos, 0, kw, "reverse", tv_bool(false));
            if (rev.k != TV_BOOL)
                return rt_err(r, line, "reverse must be a boolean");
            struct tv cs = pick(pos, 1, kw, "case_sensitive", tv_bool(false));
            if (cs.k != TV_BOOL)
                return rt_err(r, line, "case_sensitive must be a boolean");
            struct tv attr = pick(pos, 2, kw, "attribute", tv_null());
            if (attr.k != TV_STR && attr.k != TV_INT && attr.k != TV_NULL)
                return rt_err(r, line, "attribute must be a string, integer, or null");
            struct sort_ctx c = {.reverse = rev.u.b, .cs = cs.u.b, .index = -1, .line = line};
            if (attr.k == TV_STR) {
                c.attr = attr.u.s;
            } else if (attr.k == TV_INT) {
                char num[40];
                if (!(c.attr = rt_str(r, num, tx_num(attr.u.n, num))))
                    return rt_oom(r);
            }
            return sorted_copy(r, a, sort_cmp, &c, out);
        }
        if (NAME_IS(name, "selectattr") || NAME_IS(name, "rejectattr"))
            return selectattr(r, a, NAME_IS(name, "selectattr"), f, pos, line, out);
        if (NAME_IS(name, "map")) {
            struct tv attr = kwget(kw, "attribute");
            if (!absent(attr)) {
                if (attr.k != TV_STR)
                    return rt_err(r, line, "attribute must be a string");
                struct tv dflt = kwget(kw, "default");
                struct tarr *o = tarr_new(r, a->n);
                if (!o)
                    return rt_oom(r);
                for (size_t i = 0; i < a->n; i++) {
                    if (!tv_is_attr(a->v[i]))
                        return rt_err(r, line, "items in map must be an object");
                    struct tv v = attr_path(a->v[i], attr.u.s);
                    o->v[o->n++] = v.k == TV_UNDEF ? (absent(dflt) ? tv_undef() : dflt) : v;
                }
                *out = tv_array(o);
                return 0;
            }
            if ((rc = ext_filter(r, x, name, pos, kw, line, out, &done)) || done)
                return rc;
            return rt_err(r, line, "`map` expressions without `attribute` set are not currently supported.");
        }
        if ((rc = ext_filter(r, x, name, pos, kw, line, out, &done)) || done)
            return rc;
        if (empty_call && (rc = empty_call_fallback(r, x, name, line, out)) != EA_EINVAL)
            return rc;
        return rt_err(r, line, "Unknown ArrayValue filter: %s", name->s);
    }
    if (x.k == TV_STR) {
        if (NAME_IS(name, "indent")) {
            struct tv w = pick(pos, 0, kw, "width", tv_int(4));
            if (w.k != TV_INT)
                return rt_err(r, line, "width must be a number");
            struct tv first = pick(pos, 1, kw, "first", tv_bool(false));
            struct tv blank = pick(pos, 2, kw, "blank", tv_bool(false));
            return indent(r, x.u.s, w.u.n, js_truthy_value(first), js_truthy_value(blank), out);
        }
        if (NAME_IS(name, "replace")) {
            struct tarr *args = tarr_new(r, (pos ? pos->n : 0) + 1);
            struct tobj *k = kw ? kw : tobj_new(r, 0);
            if (!args || !k)
                return rt_oom(r);
            for (size_t i = 0; pos && i < pos->n; i++)
                args->v[args->n++] = pos->v[i];
            args->v[args->n++] = tv_object(k, TV_KWARGS);
            return m_replace(r, &(struct tfunc){.self = x}, args->v, args->n, out);
        }
        if ((rc = ext_filter(r, x, name, pos, kw, line, out, &done)) || done)
            return rc;
        if (empty_call && (rc = empty_call_fallback(r, x, name, line, out)) != EA_EINVAL)
            return rc;
        return rt_err(r, line, "Unknown StringValue filter: %s", name->s);
    }
    if (tv_is_object(x)) {
        struct tv m;
        if (bi_member(r, x, name, &m) && m.k == TV_FUNC) {
            struct tarr *args = tarr_new(r, (pos ? pos->n : 0) + 1);
            if (!args)
                return rt_oom(r);
            for (size_t i = 0; pos && i < pos->n; i++)
                args->v[args->n++] = pos->v[i];
            if (kw && kw->n)
                args->v[args->n++] = tv_object(kw, TV_KWARGS);
            return m.u.f->fn(r, m.u.f, args->v, args->n, out);
        }
        if ((rc = ext_filter(r, x, name, pos, kw, line, out, &done)) || done)
            return rc;
        if (empty_call && (rc = empty_call_fallback(r, x, name, line, out)) != EA_EINVAL)
            return rc;
        return rt_err(r, line, "Unknown ObjectValue filter: %s", name->s);
    }
    if ((rc = ext_filter(r, x, name, pos, kw, line, out, &done)) || done)
        return rc;
    if (empty_call && (rc = empty_call_fallback(r, x, name, line, out)) != EA_EINVAL)
        return rc;
    return rt_err(r, line, "Cannot apply filter \"%s\" to type: %s", name->s, tv_type_name(x));
}

/* Filters that keep provenance byte for byte themselves (template_taint.c). */
static bool precise_filter(const struct tstr *name)
{
    return NAME_IS(name, "trim") || NAME_IS(name, "join");
}

int bi_filter(struct rctx *r, struct tv operand, const struct node *f, struct tenv *env, struct tv *out)
{
    uint64_t mark = r->ar.serial;
    if (!(f->flags & NF_CALL)) {
        int rc = apply_ident(r, operand, f->str, f->line, out);
        return rc ? rc : ts_builtin_result(r, mark, precise_filter(f->str), &operand, 1, out);
    }
    struct tarr *pos;
    struct tobj *kw;
    int rc = ev_args(r, f->list, f->nlist, env, &pos, &kw);
    if (rc)
        return rc;
    mark = r->ar.serial; /* strings the arguments made are not the filter's */
    if ((rc = apply_call(r, operand, f->str, f, pos, kw, f->line, out)))
        return rc;
    struct tv in[2] = {tv_array(pos), kw ? tv_object(kw, TV_KWARGS) : tv_undef()};
    bool precise = precise_filter(f->str);
    if (!(rc = ts_builtin_result(r, mark, precise, &operand, 1, out)) && pos)
        rc = ts_builtin_result(r, mark, precise, in, 2, out);
    return rc;
}

/* ---- globals ---------------------------------------------------------------------- */

METHOD(g_raise_exception)
{
    struct ea_buf *b = rt_scratch(r);
    if (!b)
        return rt_oom(r);
    int rc = 0;
    /* new Error(x.value): none and undefined both hold `undefined` -> "" */
    if (n > 0 && args[0].k != TV_UNDEF && args[0].k != TV_NULL)
        rc = tv_js_string(r, b, args[0], 0);
    if (!rc && r->err && r->err->status == EA_OK)
        ea_error_set(r->err, EA_EINVAL, "%.*s", (int)(b->len < EA_ERROR_MSG_MAX ? b->len : EA_ERROR_MSG_MAX - 1),
                     b->data ? b->data : "");
    rt_scratch_done(r, b);
    return rc ? rc : EA_EINVAL;
}

METHOD(g_range)
{
    double v[3] = {0, 0, 1};
    bool have[3] = {false, false, false};
    for (size_t i = 0; i < n && i < 3; i++) {
        if (args[i].k == TV_UNDEF || args[i].k == TV_KWARGS)
            continue;
        if (!tv_is_num(args[i]) && args[i].k != TV_BOOL)
            return rt_err(r, LINE, "range() arguments must be numbers, got %s", tv_type_name(args[i]));
        v[i] = args[i].k == TV_BOOL ? args[i].u.b : args[i].u.n;
        have[i] = true;
    }
    double start = v[0], stop = v[1], step = have[2] ? v[2] : 1;
    if (!have[1]) {
        stop = have[0] ? start : NAN;
        start = 0;
    }
    if (step == 0)
        return rt_err(r, LINE, "range() step must not be zero");
    double count = (step > 0 ? stop - start : start - stop) / fabs(step);
    count = count > 0 ? ceil(count) : 0; /* NaN (no stop) gives [] as in JS */
    if (!(count <= (double)(r->max_iters - (r->iters < r->max_iters ? r->iters : r->max_iters))))
        return ea_error_set(r->err, EA_ETOOBIG, "range() of %.0f elements exceeds the iteration limit (%llu)", count,
                            (unsigned long long)r->max_iters);
    struct tarr *a = tarr_new(r, (size_t)count);
    if (!a)
        return rt_oom(r);
    for (double i = start; step > 0 ? i < stop : i > stop; i += step) {
        int rc = rt_iter(r, LINE);
        if (!rc)
            rc = tarr_push(r, a, i == floor(i) ? tv_int(i) : tv_float(i));
        if (rc)
            return rc;
    }
    *out = tv_array(a);
    return 0;
}

METHOD(g_strftime_now)
{
    if (n < 1 || args[0].k != TV_STR)
        return rt_err(r, LINE, "format.replace is not a function");
    static const char *const mon_short[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static const char *const mon_long[] = {"January", "February", "March",     "April",   "May",      "June",
                                           "July",    "August",   "September", "October", "November", "December"};
    const struct tstr *fmt = args[0].u.s;
    const struct tm *t = &r->now;
    int mon = t->tm_mon >= 0 && t->tm_mon < 12 ? t->tm_mon : 0;
    SCRATCH(b);
    int rc = 0;
    for (size_t i = 0; i < fmt->len && !rc;) {
        if (fmt->s[i] == '%' && i + 1 < fmt->len && strchr("YmdbBHM%", fmt->s[i + 1]) && fmt->s[i + 1]) {
            switch (fmt->s[i + 1]) {
            case 'Y': rc = rt_buf(r, ea__buf_printf(b, "%d", t->tm_year + 1900)); break;
            case 'm': rc = rt_buf(r, ea__buf_printf(b, "%02d", mon + 1)); break;
            case 'd': rc = rt_buf(r, ea__buf_printf(b, "%02d", t->tm_mday)); break;
            case 'b': rc = rt_buf(r, ea__buf_puts(b, mon_short[mon])); break;
            case 'B': rc = rt_buf(r, ea__buf_puts(b, mon_long[mon])); break;
            case 'H': rc = rt_buf(r, ea__buf_printf(b, "%02d", t->tm_hour)); break;
            case 'M': rc = rt_buf(r, ea__buf_printf(b, "%02d", t->tm_min)); break;
            default: rc = rt_buf(r, ea__buf_putc(b, '%')); break;
            }
            i += 2;
            continue;
        }
        rc = rt_buf(r, ea__buf_putc(b, fmt->s[i++]));
    }
    return str_out(r, b, rc, out);
}

int bi_namespace(struct rctx *r, const struct tfunc *f, struct tv *args, size_t n, struct tv *out)
{
    size_t npos = n;
    const struct tobj *kw = NULL;
    if (n && args[n - 1].k == TV_KWARGS) {
        kw = args[n - 1].u.o;
        npos--;
    }
    if (npos > 1)
        return rt_err(r, LINE, "namespace expected at most 1 argument, got %zu", npos);
    struct tobj *o = tobj_new(r, 4);
    if (!o)
        return rt_oom(r);
    int rc = 0;
    if (npos == 1) {
        struct tv src = args[0];
        if (tv_is_object(src)) {
            for (size_t i = 0; i < src.u.o->n && !rc; i++)
                rc = tobj_set(r, o, src.u.o->e[i].k, src.u.o->e[i].v);
        } else if (tv_is_array(src)) {
            for (size_t i = 0; i < src.u.a->n && !rc; i++) {
                struct tv pair = src.u.a->v[i], kv[2];
                if (tv_is_array(pair) && pair.u.a->n == 2) {
                    kv[0] = pair.u.a->v[0];
                    kv[1] = pair.u.a->v[1];
                } else if (pair.k == TV_STR) {
                    struct tv l;
                    if ((rc = chars(r, pair.u.s, false, &l)))
                        return rc;
                    if (l.u.a->n != 2)
                        return rt_err(r, LINE, "namespace expected an object or an iterable of [key, value] pairs");
                    kv[0] = l.u.a->v[0];
                    kv[1] = l.u.a->v[1];
                } else {
                    return rt_err(r, LINE, "namespace expected an object or an iterable of [key, value] pairs");
                }
                if (kv[0].k != TV_STR)
                    return rt_err(r, LINE, "namespace keys must be strings");
                rc = tobj_set(r, o, kv[0].u.s, kv[1]);
            }
        } else {
            return rt_err(r, LINE, "'%s' object is not iterable", tv_type_name(src));
        }
    }
    for (size_t i = 0; kw && i < kw->n && !rc; i++)
        rc = tobj_set(r, o, kw->e[i].k, kw->e[i].v);
    *out = tv_object(o, TV_NS);
    return rc;
}

/* Extension: dict(mapping or pairs, **kwargs) -> a new dict. */
METHOD(g_dict)
{
    struct tv ns;
    int rc = bi_namespace(r, f, args, n, &ns);
    if (rc)
        return rc;
    *out = tv_object(ns.u.o, TV_OBJECT);
    return 0;
}

int bi_globals(struct rctx *r, struct tenv *g)
{
    static const struct {
        const char *name;
        tbuiltin_fn fn;
    } FUNCS[] = {{"raise_exception", g_raise_exception}, {"range", g_range}, {"strftime_now", g_strftime_now},
                 {"dict", g_dict}};
    static const struct {
        const char *name;
        int k;
        bool b;
    } CONSTS[] = {{"false", TV_BOOL, false}, {"true", TV_BOOL, true}, {"none", TV_NULL, false},
                  {"True", TV_BOOL, true},   {"False", TV_BOOL, false}, {"None", TV_NULL, false}};
    int rc = 0;
    for (size_t i = 0; i < sizeof CONSTS / sizeof CONSTS[0] && !rc; i++) {
        const struct tstr *s = rt_strz(r, CONSTS[i].name);
        if (!s)
            return rt_oom(r);
        struct tv v = CONSTS[i].k == TV_BOOL ? tv_bool(CONSTS[i].b) : tv_null();
        rc = env_set(r, g, s, tstr_hash(s->s, s->len), v);
    }
    for (size_t i = 0; i < sizeof FUNCS / sizeof FUNCS[0] && !rc; i++) {
        const struct tstr *s = rt_strz(r, FUNCS[i].name);
        struct tv fv = tv_func(r, FUNCS[i].fn, tv_undef(), FUNCS[i].name);
        if (!s || fv.k != TV_FUNC)
            return rt_oom(r);
        rc = env_set(r, g, s, tstr_hash(s->s, s->len), fv);
    }
    struct tv ns = tv_func(r, bi_namespace, tv_undef(), "namespace");
    if (ns.k != TV_FUNC)
        return rt_oom(r);
    r->namespace_fn = ns.u.f;
    return rc;
}
