/* template_parse.c - recursive-descent parser from tokens to the AST of
 * template_int.h. The grammar and precedence are the reference's
 * (@huggingface/jinja), lowest first:
 *   x if c else y | or | and | not | in, not in, == != < > <= >= (left to
 *   right, no chaining) | + - ~ | * / // % | ** (left associative) |
 *   `is` tests | `|` filters | unary + - | member access, calls | primary
 * Statements: if/elif/else, for/else (with `for x in xs if c`), set (also
 * tuple targets, namespace attributes and {% set x %}...{% endset %}), macro,
 * call (with caller parameters), filter blocks, break, continue.
 *
 * Extension: a test may take arguments, `x is divisibleby(3)`,
 * `x is divisibleby 3` (the reference only parses bare test names).
 *
 * Does not hold: evaluation. Errors name the construct and the line; a Jinja
 * statement outside the subset (include, import, extends, block, raw, with,
 * ...) is EA_EUNSUPPORTED.
 */
#include "template/template_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARSE_DEPTH 200

struct parser {
    struct ea_template *t;
    const struct token *tk;
    size_t n, cur;
    unsigned depth;
    struct ea_error *err;
    ea_status st;
};

/* A growable list of nodes built on the heap, then copied to the arena. */
struct nvec {
    struct node **v;
    size_t n, cap;
};

static const char *tok_desc(const struct token *k)
{
    switch (k->type) {
    case TK_EOF: return "end of template";
    case TK_TEXT: return "text";
    case TK_COMMENT: return "comment";
    case TK_STRING: return "string literal";
    case TK_NUMBER: return "number";
    default: return k->val->s;
    }
}

static ea_status perr(struct parser *p, const struct token *at, ea_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static ea_status perr(struct parser *p, const struct token *at, ea_status s, const char *fmt, ...)
{
    if (p->st)
        return p->st;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->st = ea_error_set(p->err, s, "line %d: %s", at->line, msg);
    return p->st;
}

static ea_status oom(struct parser *p)
{
    if (!p->st)
        p->st = ea_error_set(p->err, EA_ENOMEM, "out of memory");
    return p->st;
}

static const struct token *peek(const struct parser *p) { return &p->tk[p->cur]; }
static const struct token *peek_at(const struct parser *p, size_t k)
{
    size_t i = p->cur + k;
    return &p->tk[i < p->n ? i : p->n - 1];
}
static const struct token *advance(struct parser *p)
{
    const struct token *k = &p->tk[p->cur];
    if (p->cur + 1 < p->n)
        p->cur++;
    return k;
}
static bool is(const struct parser *p, int type) { return peek(p)->type == type; }
static bool is_ident(const struct parser *p, const char *name)
{
    return peek(p)->type == TK_IDENT && tstr_eqz(peek(p)->val, name);
}
static bool is_ident2(const struct parser *p, const char *a, const char *b)
{
    const struct token *x = peek_at(p, 0), *y = peek_at(p, 1);
    return x->type == TK_IDENT && tstr_eqz(x->val, a) && y->type == TK_IDENT && tstr_eqz(y->val, b);
}
/* {% name ... with name one of the list (NULL-terminated) */
static bool is_statement(const struct parser *p, const char *const *names)
{
    const struct token *a = peek_at(p, 0), *b = peek_at(p, 1);
    if (a->type != TK_OPEN_STMT || b->type != TK_IDENT)
        return false;
    for (; *names; names++)
        if (tstr_eqz(b->val, *names))
            return true;
    return false;
}

static ea_status expect(struct parser *p, int type, const char *what, const char *context)
{
    if (p->st)
        return p->st;
    if (!is(p, type))
        return perr(p, peek(p), EA_EFORMAT, "expected %s %s, found %s", what, context, tok_desc(peek(p)));
    advance(p);
    return EA_OK;
}

static struct node *mk(struct parser *p, int kind, int line)
{
    struct node *n = ta_zalloc(&p->t->ar, sizeof *n);
    if (!n) {
        oom(p);
        return NULL;
    }
    n->kind = (uint8_t)kind;
    n->line = line;
    return n;
}

static bool nv_push(struct parser *p, struct nvec *v, struct node *n)
{
    if (!n)
        return false;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        struct node **q = ea_realloc(v->v, cap * sizeof *q);
        if (!q) {
            oom(p);
            return false;
        }
        v->v = q;
        v->cap = cap;
    }
    v->v[v->n++] = n;
    return true;
}

/* Moves the list into the arena; frees the heap copy. */
static bool nv_done(struct parser *p, struct nvec *v, struct node ***out, size_t *n)
{
    *out = NULL;
    *n = v->n;
    if (v->n) {
        *out = ta_alloc(&p->t->ar, v->n * sizeof **out);
        if (*out)
            memcpy(*out, v->v, v->n * sizeof **out);
        else
            oom(p);
    }
    ea_free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
    return !p->st;
}

static struct node *parse_expression(struct parser *p);
static struct node *parse_primary(struct parser *p);
static struct node *parse_any(struct parser *p);

static bool enter(struct parser *p)
{
    if (++p->depth > MAX_PARSE_DEPTH) {
        perr(p, peek(p), EA_ETOOBIG, "template nests deeper than %d levels", MAX_PARSE_DEPTH);
        return false;
    }
    return true;
}

/* Parses statements until one of the `{% stop %}` names (not consumed). */
static bool parse_body(struct parser *p, const char *const *stop, const struct token *opener, const char *what,
                       const char *end, struct node ***out, size_t *n)
{
    struct nvec v = {0};
    while (!p->st && !is_statement(p, stop)) {
        if (is(p, TK_EOF)) {
            perr(p, opener, EA_EFORMAT, "unterminated %s: no {%% %s %%} before the end of the template", what, end);
            break;
        }
        if (!nv_push(p, &v, parse_any(p)))
            break;
    }
    if (p->st) {
        ea_free(v.v);
        return false;
    }
    return nv_done(p, &v, out, n);
}

static bool end_tag(struct parser *p, const char *name)
{
    if (expect(p, TK_OPEN_STMT, "{%", "before the end tag"))
        return false;
    if (!is_ident(p, name)) {
        perr(p, peek(p), EA_EFORMAT, "expected {%% %s %%}, found %s", name, tok_desc(peek(p)));
        return false;
    }
    advance(p);
    return !expect(p, TK_CLOSE_STMT, "%}", name[0] ? "after the end tag" : "");
}

/* ---- expressions ---------------------------------------------------------- */

static int op_of(const struct tstr *v)
{
    static const struct {
        const char *s;
        int op;
    } ops[] = {{"and", OP_AND}, {"or", OP_OR},    {"not", OP_NOT},  {"==", OP_EQ},       {"!=", OP_NE},
               {"<", OP_LT},    {">", OP_GT},     {"<=", OP_LE},    {">=", OP_GE},       {"in", OP_IN},
               {"+", OP_ADD},   {"-", OP_SUB},    {"~", OP_CONCAT}, {"*", OP_MUL},       {"/", OP_DIV},
               {"//", OP_FLOORDIV}, {"%", OP_MOD}, {"**", OP_POW}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (tstr_eqz(v, ops[i].s))
            return ops[i].op;
    return OP_NONE;
}

const char *tpl_op_name(int op)
{
    switch (op) {
    case OP_AND: return "and";
    case OP_OR: return "or";
    case OP_NOT: return "not";
    case OP_EQ: return "==";
    case OP_NE: return "!=";
    case OP_LT: return "<";
    case OP_GT: return ">";
    case OP_LE: return "<=";
    case OP_GE: return ">=";
    case OP_IN: return "in";
    case OP_NOTIN: return "not in";
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_CONCAT: return "~";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_FLOORDIV: return "//";
    case OP_MOD: return "%";
    case OP_POW: return "**";
    case OP_NEG: return "-";
    case OP_POS: return "+";
    default: return "?";
    }
}

static struct node *binary(struct parser *p, int op, int line, struct node *l, struct node *r)
{
    if (!l || !r)
        return NULL;
    struct node *n = mk(p, N_BINARY, line);
    if (n) {
        n->op = (uint8_t)op;
        n->a = l;
        n->b = r;
    }
    return n;
}

/* parseArgumentsList: call arguments (positional, name=value, *x, **x) or
 * macro parameters (name, name=default). */
static bool parse_args(struct parser *p, bool params, struct node ***out, size_t *n)
{
    const struct token *open = peek(p);
    if (expect(p, TK_LPAREN, "(", params ? "to open the parameter list" : "to open the argument list"))
        return false;
    struct nvec v = {0};
    bool saw_kw = false, saw_spread = false;
    while (!p->st && !is(p, TK_RPAREN)) {
        if (is(p, TK_EOF)) {
            perr(p, open, EA_EFORMAT, "unterminated argument list");
            break;
        }
        const struct token *k = peek(p);
        bool kwspread = is(p, TK_POW);
        bool spread = is(p, TK_MUL) && tstr_eqz(k->val, "*");
        if (params && (kwspread || spread)) {
            perr(p, k, EA_EFORMAT, "argument unpacking is not allowed in macro parameters");
            break;
        }
        if (kwspread) {
            advance(p);
            struct node *x = mk(p, N_KWSPREAD, k->line);
            if (!x || !(x->a = parse_expression(p)))
                break;
            nv_push(p, &v, x);
            if (is(p, TK_COMMA))
                advance(p);
            if (!is(p, TK_RPAREN))
                perr(p, peek(p), EA_EFORMAT, "`**` must be applied to the final argument");
            break;
        }
        struct node *arg;
        if (spread) {
            if (saw_spread) {
                perr(p, k, EA_EFORMAT, "only one `*` argument unpacking is allowed");
                break;
            }
            saw_spread = true;
            advance(p);
            arg = mk(p, N_SPREAD, k->line);
            if (!arg || !(arg->a = parse_expression(p)))
                break;
        } else {
            arg = parse_expression(p);
            if (!arg)
                break;
            if (is(p, TK_EQUALS)) {
                advance(p);
                if (arg->kind != N_IDENT) {
                    perr(p, k, EA_EFORMAT, params ? "expected a name for a macro parameter"
                                                  : "expected a name before = in a keyword argument");
                    break;
                }
                struct node *kw = mk(p, N_KWARG, k->line);
                if (!kw)
                    break;
                kw->str = arg->str;
                kw->hash = arg->hash;
                if (!(kw->a = parse_expression(p)))
                    break;
                arg = kw;
            }
            if (params) {
                if (arg->kind != N_IDENT && arg->kind != N_KWARG) {
                    perr(p, k, EA_EFORMAT, "expected a name for a macro parameter");
                    break;
                }
                for (size_t i = 0; i < v.n; i++)
                    if (v.v[i]->str->len == arg->str->len && !memcmp(v.v[i]->str->s, arg->str->s, arg->str->len))
                        perr(p, k, EA_EFORMAT, "duplicate parameter name '%s'", arg->str->s);
                if (p->st)
                    break;
            }
            if (arg->kind == N_KWARG) {
                saw_kw = true;
            } else if (saw_kw) {
                perr(p, k, EA_EFORMAT, params ? "a parameter without default follows one with a default"
                                              : "positional arguments must come before keyword arguments");
                break;
            } else if (saw_spread) {
                perr(p, k, EA_EFORMAT, "positional arguments must not follow `*` argument unpacking");
                break;
            }
        }
        if (!nv_push(p, &v, arg))
            break;
        if (is(p, TK_COMMA))
            advance(p);
    }
    if (p->st || expect(p, TK_RPAREN, ")", "to close the argument list")) {
        ea_free(v.v);
        return false;
    }
    return nv_done(p, &v, out, n);
}

/* The inside of [ ]: an index or a slice start:stop:step. */
static struct node *parse_subscript(struct parser *p)
{
    const struct token *open = peek(p);
    struct node *parts[4] = {0};
    size_t np = 0;
    bool slice = false, any = false;
    while (!p->st && !is(p, TK_RBRACKET)) {
        if (is(p, TK_EOF)) {
            perr(p, open, EA_EFORMAT, "unterminated [ ]");
            return NULL;
        }
        struct node *x = NULL;
        if (is(p, TK_COLON)) {
            advance(p);
            slice = true;
        } else {
            if (!(x = parse_expression(p)))
                return NULL;
            if (is(p, TK_COLON)) {
                advance(p);
                slice = true;
            }
        }
        if (np < 4)
            parts[np] = x;
        np++;
        any = true;
    }
    if (p->st)
        return NULL;
    if (!any) {
        perr(p, open, EA_EFORMAT, "expected an index or slice inside [ ]");
        return NULL;
    }
    if (!slice)
        return parts[0];
    if (np > 3) {
        perr(p, open, EA_EFORMAT, "a slice takes at most 3 parts (start:stop:step)");
        return NULL;
    }
    struct node *s = mk(p, N_SLICE, open->line);
    if (s) {
        s->a = parts[0];
        s->b = parts[1];
        s->c = parts[2];
    }
    return s;
}

static struct node *parse_member(struct parser *p, struct node *obj)
{
    while (obj && !p->st && (is(p, TK_DOT) || is(p, TK_LBRACKET))) {
        const struct token *op = advance(p);
        struct node *m = mk(p, N_MEMBER, op->line);
        if (!m)
            return NULL;
        m->a = obj;
        if (op->type == TK_LBRACKET) {
            m->flags |= NF_COMPUTED;
            if (!(m->b = parse_subscript(p)) || expect(p, TK_RBRACKET, "]", "to close the subscript"))
                return NULL;
        } else {
            const struct token *k = peek(p);
            m->b = parse_primary(p);
            if (!m->b)
                return NULL;
            if (m->b->kind != N_IDENT && m->b->kind != N_INT) {
                perr(p, k, EA_EFORMAT, "expected a name or an integer after '.'");
                return NULL;
            }
        }
        obj = m;
    }
    return obj;
}

static struct node *parse_call(struct parser *p, struct node *callee)
{
    struct node *c = mk(p, N_CALL, peek(p)->line);
    if (!c)
        return NULL;
    c->a = callee;
    if (!parse_args(p, false, &c->list, &c->nlist))
        return NULL;
    struct node *e = parse_member(p, c);
    if (e && is(p, TK_LPAREN))
        e = parse_call(p, e);
    return e;
}

static struct node *parse_call_member(struct parser *p)
{
    struct node *m = parse_member(p, parse_primary(p));
    if (m && is(p, TK_LPAREN))
        return parse_call(p, m);
    return m;
}

static struct node *parse_unary_sign(struct parser *p)
{
    const struct token *k = peek(p);
    if ((k->type == TK_UNARY || k->type == TK_ADD) && (tstr_eqz(k->val, "-") || tstr_eqz(k->val, "+"))) {
        advance(p);
        if (!enter(p))
            return NULL;
        struct node *n = mk(p, N_UNARY, k->line);
        if (n) {
            n->op = k->val->s[0] == '-' ? OP_NEG : OP_POS;
            n->a = parse_unary_sign(p);
        }
        p->depth--;
        return n && n->a ? n : NULL;
    }
    return parse_call_member(p);
}

static struct node *parse_filter(struct parser *p)
{
    struct node *operand = parse_unary_sign(p);
    while (operand && !p->st && is(p, TK_PIPE)) {
        advance(p);
        const struct token *k = peek(p);
        struct node *name = parse_primary(p);
        if (!name)
            return NULL;
        if (name->kind != N_IDENT) {
            perr(p, k, EA_EFORMAT, "expected a filter name after '|'");
            return NULL;
        }
        struct node *f = mk(p, N_FILTER, k->line);
        if (!f)
            return NULL;
        f->a = operand;
        f->str = name->str;
        if (is(p, TK_LPAREN)) {
            f->flags |= NF_CALL;
            if (!parse_args(p, false, &f->list, &f->nlist))
                return NULL;
            if (is(p, TK_DOT) || is(p, TK_LBRACKET) || is(p, TK_LPAREN)) {
                perr(p, peek(p), EA_EUNSUPPORTED, "unsupported: member access or call on a filter call");
                return NULL;
            }
        }
        operand = f;
    }
    return operand;
}

/* Tests that take an argument (the extension's `is divisibleby 3` form). */
static bool test_takes_arg(const struct tstr *name)
{
    static const char *const names[] = {"divisibleby", "equalto", "eq", "sameas", "ne", "lt", "le",
                                        "gt",          "ge",      "in", "greaterthan", "lessthan", NULL};
    for (const char *const *q = names; *q; q++)
        if (tstr_eqz(name, *q))
            return true;
    return false;
}

static struct node *parse_test(struct parser *p)
{
    struct node *operand = parse_filter(p);
    while (operand && !p->st && is_ident(p, "is")) {
        const struct token *k = advance(p);
        struct node *t = mk(p, N_TEST, k->line);
        if (!t)
            return NULL;
        if (is_ident(p, "not")) {
            advance(p);
            t->flags |= NF_NEGATE;
        }
        const struct token *nk = peek(p);
        struct node *name = parse_primary(p);
        if (!name)
            return NULL;
        if (name->kind != N_IDENT) {
            perr(p, nk, EA_EFORMAT, "expected a test name after 'is'");
            return NULL;
        }
        t->a = operand;
        t->str = name->str;
        if (is(p, TK_LPAREN)) {
            t->flags |= NF_CALL;
            if (!parse_args(p, false, &t->list, &t->nlist))
                return NULL;
        } else if (test_takes_arg(t->str)) {
            const struct token *a = peek(p);
            bool starts = a->type == TK_NUMBER || a->type == TK_STRING || a->type == TK_LBRACKET ||
                          (a->type == TK_IDENT && !tstr_eqz(a->val, "and") && !tstr_eqz(a->val, "or") &&
                           !tstr_eqz(a->val, "else") && !tstr_eqz(a->val, "if") && !tstr_eqz(a->val, "is") &&
                           !tstr_eqz(a->val, "in") && !tstr_eqz(a->val, "not"));
            if (starts) {
                struct node *arg = parse_member(p, parse_primary(p));
                if (!arg)
                    return NULL;
                t->list = ta_alloc(&p->t->ar, sizeof *t->list);
                if (!t->list) {
                    oom(p);
                    return NULL;
                }
                t->list[0] = arg;
                t->nlist = 1;
                t->flags |= NF_CALL;
            }
        }
        operand = t;
    }
    return operand;
}

static struct node *parse_power(struct parser *p)
{
    struct node *l = parse_test(p);
    while (l && !p->st && is(p, TK_POW)) {
        const struct token *k = advance(p);
        l = binary(p, OP_POW, k->line, l, parse_test(p));
    }
    return l;
}

static struct node *parse_mul(struct parser *p)
{
    struct node *l = parse_power(p);
    while (l && !p->st && is(p, TK_MUL)) {
        const struct token *k = advance(p);
        l = binary(p, op_of(k->val), k->line, l, parse_power(p));
    }
    return l;
}

static struct node *parse_add(struct parser *p)
{
    struct node *l = parse_mul(p);
    while (l && !p->st && is(p, TK_ADD)) {
        const struct token *k = advance(p);
        l = binary(p, op_of(k->val), k->line, l, parse_mul(p));
    }
    return l;
}

static struct node *parse_comparison(struct parser *p)
{
    struct node *l = parse_add(p);
    while (l && !p->st) {
        const struct token *k = peek(p);
        int op;
        if (is_ident2(p, "not", "in")) {
            advance(p);
            advance(p);
            op = OP_NOTIN;
        } else if (is_ident(p, "in")) {
            advance(p);
            op = OP_IN;
        } else if (is(p, TK_CMP)) {
            advance(p);
            op = op_of(k->val);
        } else {
            break;
        }
        l = binary(p, op, k->line, l, parse_add(p));
    }
    return l;
}

static struct node *parse_not(struct parser *p)
{
    struct node *right = NULL;
    while (!p->st && is_ident(p, "not")) {
        const struct token *k = advance(p);
        if (!enter(p))
            return NULL;
        struct node *arg = parse_not(p);
        p->depth--;
        if (!arg)
            return NULL;
        right = mk(p, N_UNARY, k->line);
        if (!right)
            return NULL;
        right->op = OP_NOT;
        right->a = arg;
    }
    return right ? right : parse_comparison(p);
}

static struct node *parse_and(struct parser *p)
{
    struct node *l = parse_not(p);
    while (l && !p->st && is_ident(p, "and")) {
        const struct token *k = advance(p);
        l = binary(p, OP_AND, k->line, l, parse_not(p));
    }
    return l;
}

static struct node *parse_or(struct parser *p)
{
    struct node *l = parse_and(p);
    while (l && !p->st && is_ident(p, "or")) {
        const struct token *k = advance(p);
        l = binary(p, OP_OR, k->line, l, parse_and(p));
    }
    return l;
}

static struct node *parse_if_expr(struct parser *p)
{
    struct node *a = parse_or(p);
    if (!a || p->st || !is_ident(p, "if"))
        return a;
    const struct token *k = advance(p);
    struct node *test = parse_or(p);
    if (!test)
        return NULL;
    if (is_ident(p, "else")) {
        advance(p);
        struct node *t = mk(p, N_TERNARY, k->line);
        if (!t)
            return NULL;
        t->a = test;
        t->b = a;
        t->c = parse_if_expr(p);
        return t->c ? t : NULL;
    }
    struct node *s = mk(p, N_SELECT, k->line);
    if (s) {
        s->a = a;
        s->b = test;
    }
    return s;
}

static struct node *parse_expression(struct parser *p)
{
    if (p->st || !enter(p))
        return NULL;
    struct node *n = parse_if_expr(p);
    p->depth--;
    return p->st ? NULL : n;
}

/* a or a, b, c (a tuple); primary-only for for-loop targets */
static struct node *parse_sequence(struct parser *p, bool primary)
{
    const struct token *k = peek(p);
    struct node *first = primary ? parse_primary(p) : parse_expression(p);
    if (!first || !is(p, TK_COMMA))
        return first;
    struct nvec v = {0};
    nv_push(p, &v, first);
    while (!p->st && is(p, TK_COMMA)) {
        advance(p);
        if (!nv_push(p, &v, primary ? parse_primary(p) : parse_expression(p)))
            break;
    }
    struct node *t = p->st ? NULL : mk(p, N_TUPLE, k->line);
    if (!t) {
        ea_free(v.v);
        return NULL;
    }
    return nv_done(p, &v, &t->list, &t->nlist) ? t : NULL;
}

static struct node *parse_primary(struct parser *p)
{
    if (p->st)
        return NULL;
    const struct token *k = advance(p);
    struct node *n;
    switch (k->type) {
    case TK_NUMBER: {
        bool is_float = memchr(k->val->s, '.', k->val->len) != NULL;
        n = mk(p, is_float ? N_FLOAT : N_INT, k->line);
        if (n)
            n->num = strtod(k->val->s, NULL);
        return n;
    }
    case TK_STRING: {
        const struct tstr *s = k->val;
        while (is(p, TK_STRING)) { /* adjacent literals concatenate */
            const struct token *x = advance(p);
            s = tstr_cat(&p->t->ar, s->s, s->len, x->val->s, x->val->len);
            if (!s) {
                oom(p);
                return NULL;
            }
        }
        n = mk(p, N_STR, k->line);
        if (n)
            n->str = s;
        return n;
    }
    case TK_IDENT:
        n = mk(p, N_IDENT, k->line);
        if (n) {
            n->str = k->val;
            n->hash = tstr_hash(k->val->s, k->val->len);
        }
        return n;
    case TK_LPAREN:
        if (!enter(p))
            return NULL;
        n = parse_sequence(p, false);
        p->depth--;
        if (!n || expect(p, TK_RPAREN, ")", "to close the parenthesis"))
            return NULL;
        return n;
    case TK_LBRACKET: {
        struct nvec v = {0};
        if (!enter(p))
            return NULL;
        while (!p->st && !is(p, TK_RBRACKET)) {
            if (is(p, TK_EOF)) {
                perr(p, k, EA_EFORMAT, "unterminated list literal [ ]");
                break;
            }
            if (!nv_push(p, &v, parse_expression(p)))
                break;
            if (is(p, TK_COMMA))
                advance(p);
        }
        p->depth--;
        n = p->st ? NULL : mk(p, N_ARRAY, k->line);
        if (!n) {
            ea_free(v.v);
            return NULL;
        }
        advance(p);
        return nv_done(p, &v, &n->list, &n->nlist) ? n : NULL;
    }
    case TK_LBRACE: {
        struct nvec v = {0};
        if (!enter(p))
            return NULL;
        while (!p->st && !is(p, TK_RBRACE)) {
            if (is(p, TK_EOF)) {
                perr(p, k, EA_EFORMAT, "unterminated dict literal { }");
                break;
            }
            if (!nv_push(p, &v, parse_expression(p)))
                break;
            if (expect(p, TK_COLON, ":", "between key and value in a dict literal"))
                break;
            if (!nv_push(p, &v, parse_expression(p)))
                break;
            if (is(p, TK_COMMA))
                advance(p);
        }
        p->depth--;
        n = p->st ? NULL : mk(p, N_OBJECT, k->line);
        if (!n) {
            ea_free(v.v);
            return NULL;
        }
        advance(p);
        return nv_done(p, &v, &n->list, &n->nlist) ? n : NULL;
    }
    default:
        perr(p, k, EA_EFORMAT, "unexpected %s in an expression", tok_desc(k));
        return NULL;
    }
}

/* ---- statements ---------------------------------------------------------- */

static const char *const STOP_IF[] = {"elif", "else", "endif", NULL};
static const char *const STOP_ENDIF[] = {"endif", NULL};
static const char *const STOP_FOR[] = {"endfor", "else", NULL};
static const char *const STOP_ENDFOR[] = {"endfor", NULL};
static const char *const STOP_SET[] = {"endset", NULL};
static const char *const STOP_MACRO[] = {"endmacro", NULL};
static const char *const STOP_CALL[] = {"endcall", NULL};
static const char *const STOP_FILTER[] = {"endfilter", NULL};

static struct node *parse_if(struct parser *p, const struct token *opener)
{
    struct node *n = mk(p, N_IF, opener->line);
    if (!n || !(n->a = parse_expression(p)) || expect(p, TK_CLOSE_STMT, "%}", "after the if condition"))
        return NULL;
    if (!parse_body(p, STOP_IF, opener, "{% if %}", "endif", &n->list, &n->nlist))
        return NULL;
    const struct token *k = peek_at(p, 1);
    if (tstr_eqz(k->val, "elif")) {
        advance(p);
        advance(p);
        struct node *e = parse_if(p, k);
        if (!e)
            return NULL;
        n->list2 = ta_alloc(&p->t->ar, sizeof *n->list2);
        if (!n->list2) {
            oom(p);
            return NULL;
        }
        n->list2[0] = e;
        n->nlist2 = 1;
    } else if (tstr_eqz(k->val, "else")) {
        advance(p);
        advance(p);
        if (expect(p, TK_CLOSE_STMT, "%}", "after else") ||
            !parse_body(p, STOP_ENDIF, opener, "{% if %}", "endif", &n->list2, &n->nlist2))
            return NULL;
    }
    return n;
}

static struct node *parse_for(struct parser *p, const struct token *opener)
{
    struct node *n = mk(p, N_FOR, opener->line);
    if (!n)
        return NULL;
    const struct token *k = peek(p);
    if (!(n->a = parse_sequence(p, true)))
        return NULL;
    if (n->a->kind != N_IDENT && n->a->kind != N_TUPLE) {
        perr(p, k, EA_EFORMAT, "expected a name or names as the for-loop variable");
        return NULL;
    }
    if (!is_ident(p, "in")) {
        perr(p, peek(p), EA_EFORMAT, "expected 'in' after the for-loop variable, found %s", tok_desc(peek(p)));
        return NULL;
    }
    advance(p);
    struct node *it = parse_expression(p);
    if (!it)
        return NULL;
    if (it->kind == N_SELECT) { /* for x in xs if cond */
        n->b = it->a;
        n->c = it->b;
    } else {
        n->b = it;
    }
    if (expect(p, TK_CLOSE_STMT, "%}", "after the for-loop head") ||
        !parse_body(p, STOP_FOR, opener, "{% for %}", "endfor", &n->list, &n->nlist))
        return NULL;
    if (tstr_eqz(peek_at(p, 1)->val, "else")) {
        advance(p);
        advance(p);
        if (expect(p, TK_CLOSE_STMT, "%}", "after else") ||
            !parse_body(p, STOP_ENDFOR, opener, "{% for %}", "endfor", &n->list2, &n->nlist2))
            return NULL;
    }
    return n;
}

static struct node *parse_set(struct parser *p, const struct token *opener)
{
    struct node *n = mk(p, N_SET, opener->line);
    if (!n || !(n->a = parse_sequence(p, false)))
        return NULL;
    if (is(p, TK_EQUALS)) {
        advance(p);
        if (!(n->b = parse_sequence(p, false)))
            return NULL;
    } else {
        if (expect(p, TK_CLOSE_STMT, "%} or =", "after the set target") ||
            !parse_body(p, STOP_SET, opener, "{% set %} block", "endset", &n->list, &n->nlist))
            return NULL;
        advance(p); /* {% */
        advance(p); /* endset */
    }
    if (expect(p, TK_CLOSE_STMT, "%}", "to close the set statement"))
        return NULL;
    return n;
}

/* findAccessedSpecialMacroArguments of the reference: does the body read
 * `kwargs` / `varargs` before declaring them? */
struct special {
    unsigned declared, accessed;
};
static unsigned special_bit(const struct tstr *s)
{
    if (tstr_eqz(s, "kwargs"))
        return NF_KWARGS;
    if (tstr_eqz(s, "varargs"))
        return NF_VARARGS;
    return 0;
}
static void declare_target(struct special *sp, const struct node *t)
{
    if (!t)
        return;
    if (t->kind == N_IDENT)
        sp->declared |= special_bit(t->str);
    else if (t->kind == N_TUPLE)
        for (size_t i = 0; i < t->nlist; i++)
            declare_target(sp, t->list[i]);
}
static void visit(struct special *sp, const struct node *n);
static void visit_list(struct special *sp, struct node *const *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        visit(sp, l[i]);
}
static void declare_params(struct special *sp, struct node *const *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sp->declared |= special_bit(l[i]->str);
}
static void visit_defaults(struct special *sp, struct node *const *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (l[i]->kind == N_KWARG)
            visit(sp, l[i]->a);
}
static void visit(struct special *sp, const struct node *n)
{
    if (!n)
        return;
    switch (n->kind) {
    case N_FOR:
        declare_target(sp, n->a);
        visit(sp, n->b);
        visit_list(sp, n->list, n->nlist);
        visit_list(sp, n->list2, n->nlist2);
        visit(sp, n->c);
        return;
    case N_SET:
        declare_target(sp, n->a);
        visit(sp, n->b);
        visit_list(sp, n->list, n->nlist);
        return;
    case N_MACRO:
        declare_params(sp, n->list2, n->nlist2);
        visit_defaults(sp, n->list2, n->nlist2);
        visit_list(sp, n->list, n->nlist);
        return;
    case N_CALLSTMT:
        visit(sp, n->a);
        visit_list(sp, n->list2, n->nlist2);
        declare_params(sp, n->list3, n->nlist3);
        visit_defaults(sp, n->list3, n->nlist3);
        visit_list(sp, n->list, n->nlist);
        return;
    case N_FILTERSTMT:
        visit_list(sp, n->list, n->nlist);
        visit_list(sp, n->a->list, n->a->nlist);
        return;
    case N_IDENT: {
        unsigned b = special_bit(n->str);
        if (b && !(sp->declared & b))
            sp->accessed |= b;
        return;
    }
    case N_MEMBER:
        visit(sp, n->a);
        if (n->flags & NF_COMPUTED)
            visit(sp, n->b);
        return;
    case N_FILTER:
        visit(sp, n->a);
        visit_list(sp, n->list, n->nlist);
        return;
    case N_TEST:
        visit(sp, n->a);
        return;
    case N_SELECT:
        visit(sp, n->b);
        visit(sp, n->a);
        return;
    case N_KWARG:
        visit(sp, n->a);
        return;
    case N_TERNARY: /* condition, true, false in the reference's field order */
        visit(sp, n->a);
        visit(sp, n->b);
        visit(sp, n->c);
        return;
    case N_CALL:
        visit(sp, n->a);
        visit_list(sp, n->list, n->nlist);
        return;
    default:
        visit(sp, n->a);
        visit(sp, n->b);
        visit(sp, n->c);
        visit_list(sp, n->list, n->nlist);
        visit_list(sp, n->list2, n->nlist2);
        return;
    }
}
static uint8_t special_flags(struct node *const *params, size_t np, struct node *const *body, size_t nb)
{
    struct special sp = {0, 0};
    declare_params(&sp, params, np);
    visit_list(&sp, body, nb);
    return (uint8_t)sp.accessed;
}

static struct node *parse_macro(struct parser *p, const struct token *opener)
{
    struct node *n = mk(p, N_MACRO, opener->line);
    if (!n)
        return NULL;
    const struct token *k = peek(p);
    struct node *name = parse_primary(p);
    if (!name)
        return NULL;
    if (name->kind != N_IDENT) {
        perr(p, k, EA_EFORMAT, "expected a macro name");
        return NULL;
    }
    n->str = name->str;
    n->hash = name->hash;
    if (!parse_args(p, true, &n->list2, &n->nlist2) || expect(p, TK_CLOSE_STMT, "%}", "after the macro head") ||
        !parse_body(p, STOP_MACRO, opener, "{% macro %}", "endmacro", &n->list, &n->nlist))
        return NULL;
    n->flags |= special_flags(n->list2, n->nlist2, n->list, n->nlist);
    return n;
}

static struct node *parse_call_stmt(struct parser *p, const struct token *opener)
{
    struct node *n = mk(p, N_CALLSTMT, opener->line);
    if (!n)
        return NULL;
    if (is(p, TK_LPAREN) && !parse_args(p, true, &n->list3, &n->nlist3))
        return NULL;
    const struct token *k = peek(p);
    n->a = parse_primary(p);
    if (!n->a)
        return NULL;
    if (n->a->kind != N_IDENT) {
        perr(p, k, EA_EFORMAT, "expected a macro name after {%% call %%}");
        return NULL;
    }
    if (!parse_args(p, false, &n->list2, &n->nlist2) ||
        expect(p, TK_CLOSE_STMT, "%}", "after the call statement head") ||
        !parse_body(p, STOP_CALL, opener, "{% call %}", "endcall", &n->list, &n->nlist))
        return NULL;
    n->flags |= special_flags(n->list3, n->nlist3, n->list, n->nlist);
    return n;
}

static struct node *parse_filter_stmt(struct parser *p, const struct token *opener)
{
    struct node *n = mk(p, N_FILTERSTMT, opener->line);
    struct node *f = mk(p, N_FILTER, opener->line);
    if (!n || !f)
        return NULL;
    const struct token *k = peek(p);
    struct node *name = parse_primary(p);
    if (!name)
        return NULL;
    if (name->kind != N_IDENT) {
        perr(p, k, EA_EFORMAT, "expected a filter name after {%% filter");
        return NULL;
    }
    f->str = name->str;
    if (is(p, TK_LPAREN)) {
        f->flags |= NF_CALL;
        if (!parse_args(p, false, &f->list, &f->nlist))
            return NULL;
    }
    n->a = f;
    if (expect(p, TK_CLOSE_STMT, "%}", "after the filter name") ||
        !parse_body(p, STOP_FILTER, opener, "{% filter %}", "endfilter", &n->list, &n->nlist))
        return NULL;
    return n;
}

static struct node *parse_statement(struct parser *p)
{
    const struct token *opener = advance(p); /* {% */
    const struct token *k = peek(p);
    if (k->type != TK_IDENT) {
        perr(p, k, EA_EFORMAT, "expected a statement name after {%%, found %s", tok_desc(k));
        return NULL;
    }
    advance(p);
    struct node *n = NULL;
    if (!enter(p))
        return NULL;
    if (tstr_eqz(k->val, "set")) {
        n = parse_set(p, opener);
    } else if (tstr_eqz(k->val, "if")) {
        if ((n = parse_if(p, opener)) && !end_tag(p, "endif"))
            n = NULL;
    } else if (tstr_eqz(k->val, "macro")) {
        if ((n = parse_macro(p, opener)) && !end_tag(p, "endmacro"))
            n = NULL;
    } else if (tstr_eqz(k->val, "for")) {
        if ((n = parse_for(p, opener)) && !end_tag(p, "endfor"))
            n = NULL;
    } else if (tstr_eqz(k->val, "call")) {
        if ((n = parse_call_stmt(p, opener)) && !end_tag(p, "endcall"))
            n = NULL;
    } else if (tstr_eqz(k->val, "filter")) {
        if ((n = parse_filter_stmt(p, opener)) && !end_tag(p, "endfilter"))
            n = NULL;
    } else if (tstr_eqz(k->val, "break") || tstr_eqz(k->val, "continue")) {
        n = mk(p, tstr_eqz(k->val, "break") ? N_BREAK : N_CONTINUE, k->line);
        if (n && expect(p, TK_CLOSE_STMT, "%}", k->val->s[0] == 'b' ? "after break" : "after continue"))
            n = NULL;
    } else {
        static const char *const unsupported[] = {"include", "import", "from",       "extends", "block",
                                                  "raw",     "with",   "autoescape", "do",      "trans",
                                                  "pluralize", NULL};
        bool known = false;
        for (const char *const *q = unsupported; *q; q++)
            known |= tstr_eqz(k->val, *q);
        if (known)
            perr(p, k, EA_EUNSUPPORTED, "unsupported statement {%% %s %%}", k->val->s);
        else if (k->val->len > 3 && !memcmp(k->val->s, "end", 3))
            perr(p, k, EA_EFORMAT, "unexpected {%% %s %%} without its opening statement", k->val->s);
        else if (tstr_eqz(k->val, "else") || tstr_eqz(k->val, "elif"))
            perr(p, k, EA_EFORMAT, "unexpected {%% %s %%} outside if/for", k->val->s);
        else
            perr(p, k, EA_EFORMAT, "unknown statement {%% %s %%}", k->val->s);
    }
    p->depth--;
    return p->st ? NULL : n;
}

static struct node *parse_any(struct parser *p)
{
    const struct token *k = peek(p);
    struct node *n;
    switch (k->type) {
    case TK_COMMENT:
        advance(p);
        return mk(p, N_COMMENT, k->line);
    case TK_TEXT:
        advance(p);
        n = mk(p, N_STR, k->line);
        if (n)
            n->str = k->val;
        return n;
    case TK_OPEN_STMT:
        return parse_statement(p);
    case TK_OPEN_EXPR:
        advance(p);
        n = parse_expression(p);
        if (n && expect(p, TK_CLOSE_EXPR, "}}", "to close the expression"))
            return NULL;
        return n;
    default:
        perr(p, k, EA_EFORMAT, "unexpected %s outside a tag", tok_desc(k));
        return NULL;
    }
}

ea_status tpl_parse(struct ea_template *t, const struct token *toks, size_t n, struct ea_error *err)
{
    struct parser p = {.t = t, .tk = toks, .n = n, .err = err};
    struct nvec v = {0};
    while (!p.st && !is(&p, TK_EOF))
        if (!nv_push(&p, &v, parse_any(&p)))
            break;
    if (p.st) {
        ea_free(v.v);
        return p.st;
    }
    nv_done(&p, &v, &t->body, &t->nbody);
    return p.st;
}
