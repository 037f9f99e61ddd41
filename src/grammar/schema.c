/* schema.c - JSON Schema -> grammar rules: one rule per sub-schema (so that
 * $ref recursion is a rule calling itself), objects with their properties
 * in declaration order, arrays with prefixItems/items and counts, strings
 * with length, pattern and format (intersected as DFAs), integers and
 * numbers with bounds, enum/const as literals, anyOf/oneOf as alternatives,
 * allOf (and $ref with siblings) by merging, bounded whitespace.
 * Keywords it cannot enforce are reported through ea__gr_unenforced (an error
 * under strict). Does not hold: the automata (fsa.c), regex syntax (regex.c).
 */
#include "grammar/grammar_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gr_refmemo {
    const json_t *schema;
    uint32_t rule;
};

#define PATH_MAX_LEN 256
#define MAX_SAFE_INT 9007199254740991.0 /* 2^53 - 1: bounds beyond are not exact doubles */

static ea_status nomem(struct gr_build *b) { return ea_error_set(b->err, EA_ENOMEM, "grammar: out of memory"); }

static ea_status schema_rule(struct gr_build *b, const json_t *s, const char *path, uint32_t *id);

/* ---- shared pieces --------------------------------------------------------------- */

struct gr_ast *ea__gr_ws(struct gr_build *b)
{
    struct gr_ast *k[2];
    k[0] = ea__gr_byte_range(b, '\n', '\n');
    struct gr_ast *ind = ea__gr_alt2(b, ea__gr_byte_range(b, ' ', ' '), ea__gr_byte_range(b, '\t', '\t'));
    k[1] = ea__gr_rep(b, ind, 0, EA_GRAMMAR_WS_MAX_INDENT);
    struct gr_ast *nl = ea__gr_cat(b, 2, k);
    return ea__gr_rep(b, ea__gr_alt2(b, ea__gr_byte_range(b, ' ', ' '), nl), 0, 1);
}

static struct gr_ast *lit(struct gr_build *b, const char *s) { return ea__gr_lit(b, s, strlen(s)); }

static struct gr_ast *cat(struct gr_build *b, uint32_t n, struct gr_ast *const *k)
{
    return ea__gr_cat(b, n, (struct gr_ast **)k);
}

static struct gr_ast *digits(struct gr_build *b, uint32_t min, uint32_t max)
{
    return ea__gr_rep(b, ea__gr_byte_range(b, '0', '9'), min, max);
}

/* One JSON string character: any code point (canonical escapes) plus \/ and
 * \uXXXX escapes of non-surrogates. */
static struct gr_ast *json_char(struct gr_build *b)
{
    struct gr_cpset s = {0};
    if (ea__gr_cpset_add(b, &s, 0, 0x10FFFF) != EA_OK)
        return NULL;
    struct gr_ast *hex = ea__gr_alt(b, 3, (struct gr_ast *[]){ea__gr_byte_range(b, '0', '9'), ea__gr_byte_range(b, 'a', 'f'), ea__gr_byte_range(b, 'A', 'F')});
    /* \u + 4 hex, the first two not D8..DF */
    struct gr_ast *d = ea__gr_alt2(b, ea__gr_byte_range(b, 'd', 'd'), ea__gr_byte_range(b, 'D', 'D'));
    struct gr_ast *not_d = ea__gr_alt(b, 5, (struct gr_ast *[]){ea__gr_byte_range(b, '0', '9'), ea__gr_byte_range(b, 'a', 'c'), ea__gr_byte_range(b, 'A', 'C'), ea__gr_byte_range(b, 'e', 'f'), ea__gr_byte_range(b, 'E', 'F')});
    struct gr_ast *u1 = cat(b, 4, (struct gr_ast *[]){not_d, hex, hex, hex});
    struct gr_ast *u2 = cat(b, 4, (struct gr_ast *[]){d, ea__gr_byte_range(b, '0', '7'), hex, hex});
    struct gr_ast *uesc = ea__gr_cat2(b, lit(b, "\\u"), ea__gr_alt2(b, u1, u2));
    return ea__gr_alt(b, 3, (struct gr_ast *[]){ea__gr_cpset_ast(b, &s, true), lit(b, "\\/"), uesc});
}

static ea_status simple_rule(struct gr_build *b, uint32_t *slot, struct gr_ast *(*mk)(struct gr_build *))
{
    if (*slot != GR_NIL)
        return EA_OK;
    uint32_t id;
    ea_status st = ea__gr_rule_new(b, &id);
    if (st != EA_OK)
        return st;
    *slot = id;
    struct gr_ast *a = mk(b);
    if (!a)
        return nomem(b);
    return ea__gr_rule_set_ast(b, id, a);
}

static struct gr_ast *mk_string(struct gr_build *b)
{
    struct gr_ast *q = lit(b, "\"");
    return cat(b, 3, (struct gr_ast *[]){q, ea__gr_rep(b, json_char(b), 0, GR_INF), q});
}

static struct gr_ast *frac_exp(struct gr_build *b, bool with_exp)
{
    struct gr_ast *frac = ea__gr_rep(b, ea__gr_cat2(b, lit(b, "."), digits(b, 1, GR_INF)), 0, 1);
    if (!with_exp)
        return frac;
    struct gr_ast *e = ea__gr_alt2(b, lit(b, "e"), lit(b, "E"));
    struct gr_ast *sg = ea__gr_rep(b, ea__gr_alt2(b, lit(b, "+"), lit(b, "-")), 0, 1);
    struct gr_ast *exp = ea__gr_rep(b, cat(b, 3, (struct gr_ast *[]){e, sg, digits(b, 1, GR_INF)}), 0, 1);
    return ea__gr_cat2(b, frac, exp);
}

/* Significant decimal digits that survive a round trip through a double
 * (DBL_DIG): next to an exclusive bound a number is written with at most
 * this many digits, so that a reader using doubles (JavaScript) cannot round
 * it onto the bound itself. */
#define GR_DOUBLE_DIGITS 15

static unsigned ndigits(uint64_t x)
{
    unsigned n = 1;
    while (x >= 10) {
        x /= 10;
        n++;
    }
    return n;
}

/* frac (a fraction language, optional "." + digits) cut to the fraction
 * digits a number with integer part ip may have next to an exclusive bound:
 * a rule of its own (the intersection of two automata); NULL on failure. */
static struct gr_ast *frac_cap(struct gr_build *b, struct gr_ast *frac, uint64_t ip)
{
    unsigned nd = ndigits(ip);
    uint32_t n = nd < GR_DOUBLE_DIGITS ? GR_DOUBLE_DIGITS - nd : 1;
    struct gr_ast *cap = ea__gr_rep(b, ea__gr_cat2(b, ea__gr_lit(b, ".", 1), ea__gr_rep(b, ea__gr_byte_range(b, '0', '9'), 1, n)), 0, 1);
    struct gr_dfa *x = NULL, *y = NULL, *z = NULL;
    uint32_t id;
    if (ea__gr_rule_new(b, &id) != EA_OK)
        return NULL;
    ea_status st = ea__gr_dfa_from_ast(b, frac, &x);
    if (st == EA_OK && (st = ea__gr_dfa_from_ast(b, cap, &y)) == EA_OK)
        st = ea__gr_dfa_intersect(b, x, y, &z);
    ea__gr_rule_set_dfa(b, id, x);
    ea__gr_rule_set_dfa(b, id, y);
    ea__gr_rule_set_dfa(b, id, z);
    return st == EA_OK ? ea__gr_call(b, id) : NULL;
}

static struct gr_ast *int_digits(struct gr_build *b)
{
    return ea__gr_alt2(b, lit(b, "0"), ea__gr_cat2(b, ea__gr_byte_range(b, '1', '9'), digits(b, 0, GR_INF)));
}

static struct gr_ast *mk_integer(struct gr_build *b)
{
    return cat(b, 2, (struct gr_ast *[]){ea__gr_rep(b, lit(b, "-"), 0, 1), int_digits(b)});
}

static struct gr_ast *mk_number(struct gr_build *b)
{
    return cat(b, 3, (struct gr_ast *[]){ea__gr_rep(b, lit(b, "-"), 0, 1), int_digits(b), frac_exp(b, true)});
}

static struct gr_ast *any_value(struct gr_build *b);

static struct gr_ast *mk_object(struct gr_build *b)
{
    struct gr_ast *ws = ea__gr_ws(b);
    struct gr_ast *member = cat(b, 5, (struct gr_ast *[]){ea__gr_call(b, b->rule_string), ws, lit(b, ":"), ws, ea__gr_call(b, b->rule_value)});
    struct gr_ast *more = ea__gr_rep(b, cat(b, 4, (struct gr_ast *[]){ws, lit(b, ","), ws, member}), 0, GR_INF);
    struct gr_ast *members = ea__gr_rep(b, ea__gr_cat2(b, member, more), 0, 1);
    return cat(b, 5, (struct gr_ast *[]){lit(b, "{"), ws, members, ws, lit(b, "}")});
}

static struct gr_ast *mk_array(struct gr_build *b)
{
    struct gr_ast *ws = ea__gr_ws(b);
    struct gr_ast *v = ea__gr_call(b, b->rule_value);
    struct gr_ast *more = ea__gr_rep(b, cat(b, 4, (struct gr_ast *[]){ws, lit(b, ","), ws, v}), 0, GR_INF);
    struct gr_ast *items = ea__gr_rep(b, ea__gr_cat2(b, v, more), 0, 1);
    return cat(b, 5, (struct gr_ast *[]){lit(b, "["), ws, items, ws, lit(b, "]")});
}

static struct gr_ast *any_value(struct gr_build *b)
{
    return ea__gr_alt(b, 7, (struct gr_ast *[]){ea__gr_call(b, b->rule_object), ea__gr_call(b, b->rule_array), ea__gr_call(b, b->rule_string), ea__gr_call(b, b->rule_number), lit(b, "true"), lit(b, "false"), lit(b, "null")});
}

static ea_status ensure_basics(struct gr_build *b)
{
    ea_status st;
    if ((st = simple_rule(b, &b->rule_string, mk_string)) != EA_OK ||
        (st = simple_rule(b, &b->rule_number, mk_number)) != EA_OK ||
        (st = simple_rule(b, &b->rule_integer, mk_integer)) != EA_OK)
        return st;
    if (b->rule_value != GR_NIL)
        return EA_OK;
    uint32_t v, o, a;
    if ((st = ea__gr_rule_new(b, &v)) != EA_OK || (st = ea__gr_rule_new(b, &o)) != EA_OK ||
        (st = ea__gr_rule_new(b, &a)) != EA_OK)
        return st;
    b->rule_value = v;
    b->rule_object = o;
    b->rule_array = a;
    struct gr_ast *x;
    if (!(x = any_value(b)) || (st = ea__gr_rule_set_ast(b, v, x)) != EA_OK)
        return x ? st : nomem(b);
    if (!(x = mk_object(b)) || (st = ea__gr_rule_set_ast(b, o, x)) != EA_OK)
        return x ? st : nomem(b);
    if (!(x = mk_array(b)) || (st = ea__gr_rule_set_ast(b, a, x)) != EA_OK)
        return x ? st : nomem(b);
    return EA_OK;
}

ea_status ea__gr_rule_json_value(struct gr_build *b, uint32_t *id)
{
    ea_status st = ensure_basics(b);
    *id = b->rule_value;
    return st;
}

ea_status ea__gr_rule_json_object(struct gr_build *b, uint32_t *id)
{
    ea_status st = ensure_basics(b);
    *id = b->rule_object;
    return st;
}

/* ---- integer ranges ----------------------------------------------------------------- */

/* Fixed-width digit strings between a and b (same length n, a <= b). */
static struct gr_ast *fw_range(struct gr_build *b, const char *a, const char *z, size_t n)
{
    if (n == 0)
        return ea__gr_empty(b);
    if (n == 1)
        return ea__gr_byte_range(b, (unsigned char)a[0], (unsigned char)z[0]);
    bool a_zero = true, z_nine = true;
    for (size_t i = 1; i < n; i++) {
        a_zero &= a[i] == '0';
        z_nine &= z[i] == '9';
    }
    if (a_zero && z_nine)
        return ea__gr_cat2(b, ea__gr_byte_range(b, (unsigned char)a[0], (unsigned char)z[0]),
                           digits(b, (uint32_t)n - 1, (uint32_t)n - 1));
    if (a[0] == z[0])
        return ea__gr_cat2(b, ea__gr_byte_range(b, (unsigned char)a[0], (unsigned char)a[0]),
                           fw_range(b, a + 1, z + 1, n - 1));
    char nines[24], zeros[24];
    memset(nines, '9', n);
    memset(zeros, '0', n);
    struct gr_ast *alts[3];
    uint32_t k = 0;
    alts[k++] = ea__gr_cat2(b, ea__gr_byte_range(b, (unsigned char)a[0], (unsigned char)a[0]),
                            fw_range(b, a + 1, nines, n - 1));
    if (z[0] - a[0] > 1)
        alts[k++] = ea__gr_cat2(b, ea__gr_byte_range(b, (unsigned char)(a[0] + 1), (unsigned char)(z[0] - 1)),
                                digits(b, (uint32_t)n - 1, (uint32_t)n - 1));
    alts[k++] = ea__gr_cat2(b, ea__gr_byte_range(b, (unsigned char)z[0], (unsigned char)z[0]),
                            fw_range(b, zeros, z + 1, n - 1));
    return ea__gr_alt(b, k, alts);
}

/* Decimal integers in [lo, hi] without leading zeros; hi_inf: no upper bound. */
static struct gr_ast *uint_range(struct gr_build *b, uint64_t lo, uint64_t hi, bool hi_inf)
{
    if (!hi_inf && hi < lo)
        return ea__gr_none(b);
    struct gr_ast *alts[24];
    uint32_t k = 0;
    char sl[24], sh[24];
    int nl = snprintf(sl, sizeof sl, "%llu", (unsigned long long)lo);
    int nh = hi_inf ? 20 : snprintf(sh, sizeof sh, "%llu", (unsigned long long)hi);
    for (int len = nl; len <= nh && len <= 19; len++) {
        char a[24], z[24];
        /* [max(lo, 10^(len-1)), min(hi, 10^len - 1)] */
        if (len == nl)
            memcpy(a, sl, (size_t)len);
        else {
            a[0] = '1';
            memset(a + 1, '0', (size_t)len - 1);
        }
        if (!hi_inf && len == nh)
            memcpy(z, sh, (size_t)len);
        else
            memset(z, '9', (size_t)len);
        alts[k++] = fw_range(b, a, z, (size_t)len);
    }
    if (hi_inf) /* 20 digits and more */
        alts[k++] = ea__gr_cat2(b, ea__gr_byte_range(b, '1', '9'), digits(b, 19, GR_INF));
    return ea__gr_alt(b, k, alts);
}

/* Magnitudes I(.F)? in the interval (A|[A, B|]) (B_inf: unbounded); frac:
 * number (fraction allowed) or integer. */
static struct gr_ast *mag_range(struct gr_build *b, uint64_t A, bool a_open, uint64_t B, bool b_open,
                                bool b_inf, bool frac)
{
    if (!frac) {
        uint64_t lo = A + (a_open ? 1 : 0);
        if (b_inf)
            return uint_range(b, lo, 0, true);
        if (b_open && B == 0)
            return ea__gr_none(b);
        uint64_t hi = B - (b_open ? 1 : 0);
        return uint_range(b, lo, hi, false);
    }
    struct gr_ast *any_f = frac_exp(b, false);
    struct gr_ast *nz_f = cat(b, 4, (struct gr_ast *[]){lit(b, "."), digits(b, 0, GR_INF), ea__gr_byte_range(b, '1', '9'), digits(b, 0, GR_INF)});
    struct gr_ast *zero_f = ea__gr_rep(b, ea__gr_cat2(b, lit(b, "."), ea__gr_rep(b, lit(b, "0"), 1, GR_INF)), 0, 1);
    struct gr_ast *alts[3];
    uint32_t k = 0;
    if (!b_inf && A == B) {
        if (a_open || b_open)
            return ea__gr_none(b);
        return ea__gr_cat2(b, uint_range(b, A, A, false), zero_f);
    }
    if (!b_inf && B < A)
        return ea__gr_none(b);
    /* interior integer parts, any fraction */
    if (b_inf)
        alts[k++] = ea__gr_cat2(b, uint_range(b, A + 1, 0, true), any_f);
    else if (B > A + 1)
        alts[k++] = ea__gr_cat2(b, uint_range(b, A + 1, B - 1, false), any_f);
    alts[k++] = ea__gr_cat2(b, uint_range(b, A, A, false), a_open ? frac_cap(b, nz_f, A) : any_f);
    if (!b_inf && !b_open)
        alts[k++] = ea__gr_cat2(b, uint_range(b, B, B, false), zero_f);
    return ea__gr_alt(b, k, alts);
}

/* ---- helpers over json ----------------------------------------------------------------- */

static bool is_annotation(const char *k)
{
    static const char *const ann[] = {"description", "title", "examples", "default", "$schema", "$id",
                                      "$comment", "deprecated", "readOnly", "writeOnly", "$defs",
                                      "definitions", "$anchor", "contentMediaType", "strict", NULL};
    for (size_t i = 0; ann[i]; i++)
        if (strcmp(k, ann[i]) == 0)
            return true;
    return false;
}

static void path_join(char *out, const char *base, const char *a, const char *c)
{
    snprintf(out, PATH_MAX_LEN, "%s/%s%s%s", base, a, c ? "/" : "", c ? c : "");
}

/* Resolves a local JSON pointer reference ("#", "#/$defs/x"). */
static ea_status resolve_ref(struct gr_build *b, const char *ref, const char *path, const json_t **out)
{
    if (ref[0] != '#')
        return ea_error_set(b->err, EA_EUNSUPPORTED, "grammar: $ref \"%.100s\" at %s is not local", ref, path);
    const json_t *cur = b->root;
    const char *p = ref + 1;
    if (*p && *p != '/')
        return ea_error_set(b->err, EA_EUNSUPPORTED, "grammar: $ref anchor \"%.100s\" at %s", ref, path);
    while (*p == '/') {
        p++;
        char tok[256];
        size_t n = 0;
        while (*p && *p != '/') {
            char c = *p++;
            if (c == '~' && (*p == '0' || *p == '1')) {
                c = *p == '0' ? '~' : '/';
                p++;
            }
            if (n + 1 >= sizeof tok)
                return ea_error_set(b->err, EA_EFORMAT, "grammar: $ref too long at %s", path);
            tok[n++] = c;
        }
        tok[n] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            char *e;
            unsigned long i = strtoul(tok, &e, 10);
            cur = (*e || !n) ? NULL : json_array_get(cur, i);
        } else {
            cur = NULL;
        }
        if (!cur)
            return ea_error_set(b->err, EA_EFORMAT, "grammar: $ref \"%.100s\" at %s does not resolve", ref, path);
    }
    *out = cur;
    return EA_OK;
}

/* keep-alive list for schemas created by merging */
static ea_status keep(struct gr_build *b, json_t *j)
{
    if (!b->keep && !(b->keep = json_array()))
        return nomem(b);
    if (json_array_append_new(b->keep, j) != 0)
        return nomem(b);
    return EA_OK;
}

static const char *const TYPES[] = {"null", "boolean", "object", "array", "number", "string", "integer"};
#define T_NULL 1u
#define T_BOOL 2u
#define T_OBJ 4u
#define T_ARR 8u
#define T_NUM 16u
#define T_STR 32u
#define T_INT 64u
#define T_ALL 127u

static unsigned type_bit(const char *s)
{
    for (unsigned i = 0; i < 7; i++)
        if (strcmp(s, TYPES[i]) == 0)
            return 1u << i;
    return 0;
}

static ea_status type_set(struct gr_build *b, const json_t *t, const char *path, unsigned *out)
{
    *out = 0;
    if (json_is_string(t)) {
        *out = type_bit(json_string_value(t));
    } else if (json_is_array(t)) {
        size_t i;
        json_t *x;
        json_array_foreach(t, i, x) {
            if (!json_is_string(x))
                return ea_error_set(b->err, EA_EFORMAT, "grammar: bad \"type\" at %s", path);
            unsigned bit = type_bit(json_string_value(x));
            if (!bit)
                return ea_error_set(b->err, EA_EFORMAT, "grammar: unknown type at %s", path);
            *out |= bit;
        }
        return EA_OK;
    }
    if (!*out)
        return ea_error_set(b->err, EA_EFORMAT, "grammar: bad \"type\" at %s", path);
    return EA_OK;
}

static unsigned value_type(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL: return T_NULL;
    case JSON_TRUE:
    case JSON_FALSE: return T_BOOL;
    case JSON_OBJECT: return T_OBJ;
    case JSON_ARRAY: return T_ARR;
    case JSON_INTEGER: return T_INT | T_NUM;
    case JSON_REAL: {
        double d = json_real_value(v);
        return (d == floor(d) && fabs(d) <= MAX_SAFE_INT) ? (T_INT | T_NUM) : T_NUM;
    }
    case JSON_STRING: return T_STR;
    }
    return 0;
}

/* ---- allOf merging --------------------------------------------------------------------- */

static ea_status merge_into(struct gr_build *b, json_t *dst, const json_t *src, const char *path,
                            json_t *closed, unsigned depth);

static ea_status merge_key(struct gr_build *b, json_t *dst, const char *k, json_t *v, const char *path,
                           json_t *closed, unsigned depth)
{
    json_t *cur = json_object_get(dst, k);
    if (strcmp(k, "allOf") == 0) {
        size_t i;
        json_t *x;
        if (!json_is_array(v))
            return ea_error_set(b->err, EA_EFORMAT, "grammar: allOf must be an array at %s", path);
        json_array_foreach(v, i, x) {
            ea_status st = merge_into(b, dst, x, path, closed, depth + 1);
            if (st != EA_OK)
                return st;
        }
        return EA_OK;
    }
    if (strcmp(k, "$ref") == 0) {
        const json_t *t;
        ea_status st;
        if (!json_is_string(v))
            return ea_error_set(b->err, EA_EFORMAT, "grammar: $ref must be a string at %s", path);
        if ((st = resolve_ref(b, json_string_value(v), path, &t)) != EA_OK)
            return st;
        return merge_into(b, dst, t, path, closed, depth + 1);
    }
    if (!cur)
        return json_object_set(dst, k, v) ? nomem(b) : EA_OK;
    if (json_equal(cur, v))
        return EA_OK;
    if (strcmp(k, "properties") == 0 && json_is_object(cur) && json_is_object(v)) {
        json_t *np = json_deep_copy(cur);
        if (!np || keep(b, np) != EA_OK)
            return nomem(b);
        const char *pk;
        json_t *pv;
        json_object_foreach(v, pk, pv) {
            json_t *old = json_object_get(np, pk);
            if (!old) {
                json_object_set(np, pk, pv);
            } else if (!json_equal(old, pv)) {
                json_t *both = json_pack("{s:[OO]}", "allOf", old, pv);
                if (!both || json_object_set_new(np, pk, both))
                    return nomem(b);
            }
        }
        return json_object_set(dst, k, np) ? nomem(b) : EA_OK;
    }
    if (strcmp(k, "required") == 0 && json_is_array(cur) && json_is_array(v)) {
        json_t *nr = json_deep_copy(cur);
        if (!nr || keep(b, nr) != EA_OK)
            return nomem(b);
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            bool have = false;
            size_t j;
            json_t *y;
            json_array_foreach(nr, j, y) have |= json_equal(x, y);
            if (!have)
                json_array_append(nr, x);
        }
        return json_object_set(dst, k, nr) ? nomem(b) : EA_OK;
    }
    if (strcmp(k, "type") == 0) {
        unsigned t1, t2;
        ea_status st;
        if ((st = type_set(b, cur, path, &t1)) != EA_OK || (st = type_set(b, v, path, &t2)) != EA_OK)
            return st;
        if ((t1 & T_NUM) && (t2 & T_INT))
            t1 |= T_INT;
        if ((t2 & T_NUM) && (t1 & T_INT))
            t2 |= T_INT;
        unsigned t = t1 & t2;
        json_t *arr = json_array();
        if (!arr || keep(b, arr) != EA_OK)
            return nomem(b);
        for (unsigned i = 0; i < 7; i++)
            if (t & (1u << i))
                json_array_append_new(arr, json_string(TYPES[i]));
        if (json_array_size(arr) == 0)
            return json_object_set_new(dst, "not", json_true()) ? nomem(b) : EA_OK; /* impossible */
        return json_object_set(dst, k, arr) ? nomem(b) : EA_OK;
    }
    bool is_min = !strcmp(k, "minimum") || !strcmp(k, "minLength") || !strcmp(k, "minItems") ||
                  !strcmp(k, "exclusiveMinimum") || !strcmp(k, "minProperties");
    bool is_max = !strcmp(k, "maximum") || !strcmp(k, "maxLength") || !strcmp(k, "maxItems") ||
                  !strcmp(k, "exclusiveMaximum") || !strcmp(k, "maxProperties");
    if ((is_min || is_max) && json_is_number(cur) && json_is_number(v)) {
        double a = json_number_value(cur), c = json_number_value(v);
        bool take = is_min ? c > a : c < a;
        return take && json_object_set(dst, k, v) ? nomem(b) : EA_OK;
    }
    if (strcmp(k, "additionalProperties") == 0) {
        if (json_is_false(cur))
            return EA_OK;
        if (json_is_false(v))
            return json_object_set(dst, k, v) ? nomem(b) : EA_OK;
        json_t *both = json_pack("{s:[OO]}", "allOf", cur, v);
        if (!both || keep(b, both) != EA_OK)
            return nomem(b);
        return json_object_set(dst, k, both) ? nomem(b) : EA_OK;
    }
    /* two different values we cannot combine */
    return ea__gr_unenforced(b, "allOf", path);
}

static ea_status merge_into(struct gr_build *b, json_t *dst, const json_t *src, const char *path,
                            json_t *closed, unsigned depth)
{
    if (depth > EA_GRAMMAR_MAX_DEPTH)
        return ea_error_set(b->err, EA_ETOOBIG, "grammar: allOf/$ref nested too deeply at %s", path);
    if (json_is_true(src))
        return EA_OK;
    if (json_is_false(src))
        return json_object_set_new(dst, "not", json_true()) ? nomem(b) : EA_OK;
    if (!json_is_object(src))
        return ea_error_set(b->err, EA_EFORMAT, "grammar: schema at %s is not an object", path);
    json_t *ap = json_object_get(src, "additionalProperties");
    if (json_is_false(ap)) {
        json_t *props = json_object_get(src, "properties");
        json_t *keys = json_object();
        if (!keys || json_array_append_new(closed, keys))
            return nomem(b);
        const char *pk;
        json_t *pv;
        if (json_is_object(props))
            json_object_foreach(props, pk, pv) json_object_set_new(keys, pk, json_true());
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)src, k, v) {
        if (is_annotation(k))
            continue;
        ea_status st = merge_key(b, dst, k, v, path, closed, depth);
        if (st != EA_OK)
            return st;
    }
    return EA_OK;
}

/* Merges the members of allOf (and siblings) into one schema object. */
static ea_status merge_all(struct gr_build *b, const json_t *s, const char *skip, const json_t *extra,
                           const char *path, const json_t **out)
{
    json_t *dst = json_object();
    json_t *closed = json_array();
    ea_status st = EA_OK;
    if (!dst || !closed || keep(b, dst) != EA_OK) {
        json_decref(closed);
        return nomem(b);
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (is_annotation(k) || (skip && strcmp(k, skip) == 0))
            continue;
        if ((st = merge_key(b, dst, k, v, path, closed, 0)) != EA_OK)
            goto out;
    }
    if (json_is_false(json_object_get(s, "additionalProperties"))) {
        json_t *keys = json_object();
        const char *pk;
        json_t *pv;
        json_t *props = json_object_get(s, "properties");
        if (json_is_object(props))
            json_object_foreach(props, pk, pv) json_object_set_new(keys, pk, json_true());
        json_array_append_new(closed, keys);
    }
    if (extra && (st = merge_into(b, dst, extra, path, closed, 1)) != EA_OK)
        goto out;
    /* a member with additionalProperties false forbids the others' extra keys */
    size_t i;
    json_t *keys;
    json_t *props = json_object_get(dst, "properties");
    if (json_array_size(closed) && json_is_object(props)) {
        json_t *np = json_object();
        if (!np || keep(b, np) != EA_OK) {
            st = nomem(b);
            goto out;
        }
        const char *pk;
        json_t *pv;
        json_object_foreach(props, pk, pv) {
            bool ok = true;
            json_array_foreach(closed, i, keys) ok &= json_object_get(keys, pk) != NULL;
            if (ok)
                json_object_set(np, pk, pv);
        }
        json_object_set(dst, "properties", np);
        json_object_set_new(dst, "additionalProperties", json_false());
    } else if (json_array_size(closed)) {
        json_object_set_new(dst, "additionalProperties", json_false());
    }
    *out = dst;
out:
    json_decref(closed);
    return st;
}

/* ---- type bodies ------------------------------------------------------------------------- */

static bool get_uint(const json_t *s, const char *k, uint64_t *v)
{
    const json_t *x = json_object_get(s, k);
    if (!json_is_number(x))
        return false;
    double d = json_number_value(x);
    if (d < 0)
        d = 0;
    *v = d > 1e15 ? (uint64_t)1e15 : (uint64_t)ceil(d);
    return true;
}

static ea_status string_format_ast(struct gr_build *b, const char *fmt, struct gr_ast **out)
{
    /* formats as ECMA patterns; matched in JSON-string mode */
    static const char DATE[] =
        "[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
        "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
        "|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29";
    static const char TIME[] = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?"
                               "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])";
    static const char UUID[] = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
    static const char EMAIL[] =
        "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(?:\\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+)*"
        "@(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\\.)+[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?";
    static const char IPV4[] = "(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}"
                               "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    char buf[1024];
    const char *pat = NULL;
    if (strcmp(fmt, "date") == 0)
        pat = DATE;
    else if (strcmp(fmt, "time") == 0)
        pat = TIME;
    else if (strcmp(fmt, "uuid") == 0)
        pat = UUID;
    else if (strcmp(fmt, "email") == 0)
        pat = EMAIL;
    else if (strcmp(fmt, "ipv4") == 0)
        pat = IPV4;
    else if (strcmp(fmt, "date-time") == 0) {
        snprintf(buf, sizeof buf, "(?:%s)T%s", DATE, TIME);
        pat = buf;
    }
    if (!pat) {
        *out = NULL;
        return EA_OK;
    }
    return ea__gr_regex_ast(b, pat, strlen(pat), true, true, out);
}

/* String body as a DFA: the intersection of the constraints present. */
static ea_status string_body(struct gr_build *b, const json_t *s, const char *path, uint32_t id)
{
    struct gr_ast *parts[3];
    uint32_t n = 0;
    ea_status st;
    struct gr_ast *q = lit(b, "\"");
    uint64_t mn = 0, mx = 0;
    bool has_mn = get_uint(s, "minLength", &mn), has_mx = get_uint(s, "maxLength", &mx);
    if (has_mn && mn > EA_GRAMMAR_MAX_REPEAT) {
        if ((st = ea__gr_unenforced(b, "minLength", path)) != EA_OK)
            return st;
        has_mn = false;
    }
    if (has_mx && mx > EA_GRAMMAR_MAX_REPEAT) {
        if ((st = ea__gr_unenforced(b, "maxLength", path)) != EA_OK)
            return st;
        has_mx = false;
    }
    if (has_mn || has_mx)
        parts[n++] = cat(b, 3, (struct gr_ast *[]){q, ea__gr_rep(b, json_char(b), has_mn ? (uint32_t)mn : 0, has_mx ? (uint32_t)mx : GR_INF), q});
    const json_t *pat = json_object_get(s, "pattern");
    if (pat) {
        if (!json_is_string(pat))
            return ea_error_set(b->err, EA_EFORMAT, "grammar: pattern must be a string at %s", path);
        struct gr_ast *r;
        if ((st = ea__gr_regex_ast(b, json_string_value(pat), json_string_length(pat), true, false, &r)) != EA_OK)
            return ea_error_prefix(b->err, "%s: ", path);
        parts[n++] = cat(b, 3, (struct gr_ast *[]){q, r, q});
    }
    const json_t *fmt = json_object_get(s, "format");
    if (json_is_string(fmt)) {
        struct gr_ast *r;
        if ((st = string_format_ast(b, json_string_value(fmt), &r)) != EA_OK)
            return st;
        if (r)
            parts[n++] = cat(b, 3, (struct gr_ast *[]){q, r, q});
        else if ((st = ea__gr_unenforced(b, "format", path)) != EA_OK)
            return st;
    }
    if (n == 0) {
        if ((st = ensure_basics(b)) != EA_OK)
            return st;
        return ea__gr_rule_set_ast(b, id, ea__gr_call(b, b->rule_string));
    }
    struct gr_dfa *acc = NULL;
    if ((st = ea__gr_dfa_from_ast(b, parts[0], &acc)) != EA_OK)
        return st;
    for (uint32_t i = 1; i < n; i++) {
        struct gr_dfa *x = NULL, *y = NULL;
        if ((st = ea__gr_dfa_from_ast(b, parts[i], &x)) == EA_OK)
            st = ea__gr_dfa_intersect(b, acc, x, &y);
        ea__gr_rule_set_dfa(b, id, acc); /* frees through the rule slot */
        ea__gr_rule_set_dfa(b, id, x);
        acc = y;
        if (st != EA_OK)
            return st;
    }
    ea__gr_rule_set_dfa(b, id, acc);
    return EA_OK;
}

#define GR_FRAC_DIGITS 17 /* fraction digits a non-integral number bound may have */

/* The shortest plain decimal text ("12.05") that reads back as d; false when
 * it needs more than GR_FRAC_DIGITS fraction digits. */
static bool decimal_of(double d, char *out, size_t cap)
{
    for (int p = 0; p <= GR_FRAC_DIGITS; p++) {
        snprintf(out, cap, "%.*f", p, d);
        if (strtod(out, NULL) == d)
            return true;
    }
    return false;
}

/* |x| of a bound split into integer part and fraction digits (no trailing
 * zeros); neg: x < 0. */
struct dec {
    bool neg;
    uint64_t i;
    char f[GR_FRAC_DIGITS + 1];
};

static struct dec dec_of(double d)
{
    struct dec r = {0};
    char t[64];
    decimal_of(d, t, sizeof t);
    const char *p = t;
    if (*p == '-') {
        r.neg = true;
        p++;
    }
    r.i = strtoull(p, NULL, 10);
    const char *dot = strchr(p, '.');
    if (dot) {
        snprintf(r.f, sizeof r.f, "%s", dot + 1);
        size_t n = strlen(r.f);
        while (n && r.f[n - 1] == '0')
            r.f[--n] = '\0';
    }
    if (r.i == 0 && !r.f[0])
        r.neg = false; /* -0 */
    return r;
}

/* a < b for magnitudes */
static int dec_cmp(const struct dec *a, const struct dec *b)
{
    if (a->i != b->i)
        return a->i < b->i ? -1 : 1;
    int c = strcmp(a->f, b->f); /* digit strings without trailing zeros */
    return c < 0 ? -1 : c > 0;
}

/* Fractions (".ddd" or none) whose value is >= 0.D (> when strict). */
static struct gr_ast *frac_ge(struct gr_build *b, const char *D, bool strict)
{
    size_t k = strlen(D);
    struct gr_ast *nz = cat(b, 4, (struct gr_ast *[]){lit(b, "."), digits(b, 0, GR_INF), ea__gr_byte_range(b, '1', '9'), digits(b, 0, GR_INF)});
    if (k == 0)
        return strict ? nz : frac_exp(b, false);
    struct gr_ast *g = strict ? cat(b, 3, (struct gr_ast *[]){digits(b, 0, GR_INF), ea__gr_byte_range(b, '1', '9'), digits(b, 0, GR_INF)})
                              : digits(b, 0, GR_INF);
    for (size_t i = k; i-- > 0;) {
        unsigned d = (unsigned)(D[i] - '0');
        struct gr_ast *same = ea__gr_cat2(b, ea__gr_byte_range(b, '0' + d, '0' + d), g);
        g = d < 9 ? ea__gr_alt2(b, ea__gr_cat2(b, ea__gr_byte_range(b, '0' + d + 1, '9'), digits(b, 0, GR_INF)), same)
                  : same;
    }
    return ea__gr_cat2(b, lit(b, "."), g);
}

/* Fractions (".ddd" or none) whose value is <= 0.D (< when strict). */
static struct gr_ast *frac_le(struct gr_build *b, const char *D, bool strict)
{
    size_t k = strlen(D);
    struct gr_ast *zeros = ea__gr_rep(b, ea__gr_cat2(b, lit(b, "."), ea__gr_rep(b, lit(b, "0"), 1, GR_INF)), 0, 1);
    if (k == 0)
        return strict ? ea__gr_none(b) : zeros;
    struct gr_ast *l = strict ? ea__gr_none(b) : ea__gr_rep(b, lit(b, "0"), 0, GR_INF);
    for (size_t i = k; i-- > 0;) {
        unsigned d = (unsigned)(D[i] - '0');
        struct gr_ast *alts[3];
        uint32_t n = 0;
        if (i > 0)
            alts[n++] = ea__gr_empty(b); /* the fraction may stop here: smaller */
        if (d > 0)
            alts[n++] = ea__gr_cat2(b, ea__gr_byte_range(b, '0', '0' + d - 1), digits(b, 0, GR_INF));
        alts[n++] = ea__gr_cat2(b, ea__gr_byte_range(b, '0' + d, '0' + d), l);
        l = ea__gr_alt(b, n, alts);
    }
    return ea__gr_alt2(b, ea__gr_empty(b), ea__gr_cat2(b, lit(b, "."), l));
}

/* Magnitudes I(.F)? within [A, B] (open ends as flagged; b_inf: no upper
 * bound) for non-integral bounds. A fraction between two bounds with the
 * same integer part is the intersection of two automata, a rule of its own. */
static ea_status mag_dec(struct gr_build *b, const struct dec *A, bool a_open, const struct dec *B, bool b_open,
                         bool b_inf, struct gr_ast **out)
{
    if (!b_inf) {
        int c = dec_cmp(A, B);
        if (c > 0 || (c == 0 && (a_open || b_open))) {
            *out = ea__gr_none(b);
            return EA_OK;
        }
    }
    struct gr_ast *alts[3];
    uint32_t k = 0;
    if (!b_inf && A->i == B->i) {
        struct gr_dfa *x = NULL, *y = NULL, *z = NULL;
        uint32_t id;
        ea_status st = ea__gr_rule_new(b, &id);
        if (st != EA_OK)
            return st;
        if ((st = ea__gr_dfa_from_ast(b, frac_ge(b, A->f, a_open), &x)) == EA_OK &&
            (st = ea__gr_dfa_from_ast(b, frac_le(b, B->f, b_open), &y)) == EA_OK)
            st = ea__gr_dfa_intersect(b, x, y, &z);
        ea__gr_rule_set_dfa(b, id, x);
        ea__gr_rule_set_dfa(b, id, y);
        ea__gr_rule_set_dfa(b, id, z);
        if (st == EA_OK && (a_open || b_open)) {
            unsigned nd = ndigits(A->i);
            uint32_t n = nd < GR_DOUBLE_DIGITS ? GR_DOUBLE_DIGITS - nd : 1;
            struct gr_ast *cap = ea__gr_rep(b, ea__gr_cat2(b, lit(b, "."), digits(b, 1, n)), 0, 1);
            struct gr_dfa *c = NULL, *w = NULL;
            z = b->rules[id];
            b->rules[id] = NULL; /* keep z while it is intersected */
            if ((st = ea__gr_dfa_from_ast(b, cap, &c)) == EA_OK)
                st = ea__gr_dfa_intersect(b, z, c, &w);
            ea__gr_rule_set_dfa(b, id, z);
            ea__gr_rule_set_dfa(b, id, c);
            ea__gr_rule_set_dfa(b, id, w);
        }
        if (st != EA_OK)
            return st;
        *out = ea__gr_cat2(b, uint_range(b, A->i, A->i, false), ea__gr_call(b, id));
        return *out ? EA_OK : nomem(b);
    }
    if (b_inf)
        alts[k++] = ea__gr_cat2(b, uint_range(b, A->i + 1, 0, true), frac_exp(b, false));
    else if (B->i > A->i + 1)
        alts[k++] = ea__gr_cat2(b, uint_range(b, A->i + 1, B->i - 1, false), frac_exp(b, false));
    struct gr_ast *fa = frac_ge(b, A->f, a_open), *fb = b_inf ? NULL : frac_le(b, B->f, b_open);
    alts[k++] = ea__gr_cat2(b, uint_range(b, A->i, A->i, false), a_open ? frac_cap(b, fa, A->i) : fa);
    if (!b_inf)
        alts[k++] = ea__gr_cat2(b, uint_range(b, B->i, B->i, false), b_open ? frac_cap(b, fb, B->i) : fb);
    *out = ea__gr_alt(b, k, alts);
    return *out ? EA_OK : nomem(b);
}

/* A number in [lo, hi] (ends open as flagged) with non-integral bounds. */
static ea_status decimal_number(struct gr_build *b, bool has_lo, double lo, bool lo_open, bool has_hi, double hi,
                                bool hi_open, struct gr_ast **out)
{
    struct dec L = has_lo ? dec_of(lo) : (struct dec){0}, H = has_hi ? dec_of(hi) : (struct dec){0};
    struct dec zero = {0};
    struct gr_ast *alts[2];
    uint32_t k = 0;
    ea_status st;
    /* x >= 0 */
    if (!has_hi || (!H.neg && (dec_cmp(&H, &zero) > 0 || !hi_open))) {
        bool lo_pos = has_lo && !L.neg;
        if ((st = mag_dec(b, lo_pos ? &L : &zero, lo_pos && lo_open, &H, hi_open, !has_hi, &alts[k])) != EA_OK)
            return st;
        k++;
    }
    /* x < 0: magnitude in [-hi or 0 (open), -lo] */
    if (!has_lo || L.neg) {
        bool hi_neg = has_hi && H.neg;
        struct gr_ast *m;
        if ((st = mag_dec(b, hi_neg ? &H : &zero, hi_neg ? hi_open : true, &L, lo_open, !has_lo, &m)) != EA_OK)
            return st;
        alts[k++] = ea__gr_cat2(b, lit(b, "-"), m);
    }
    *out = ea__gr_alt(b, k, alts);
    return *out ? EA_OK : nomem(b);
}

static ea_status bound(struct gr_build *b, const json_t *s, const char *path, bool is_int, bool lower,
                       bool *has, int64_t *v, bool *open, double *dv)
{
    const char *kin = lower ? "minimum" : "maximum", *kex = lower ? "exclusiveMinimum" : "exclusiveMaximum";
    const json_t *in = json_object_get(s, kin), *ex = json_object_get(s, kex);
    *has = false;
    *open = false;
    double d = 0;
    const char *used = kin;
    if (json_is_number(in)) {
        d = json_number_value(in);
        *has = true;
        if (json_is_true(ex)) /* draft-04 boolean form */
            *open = true;
    }
    if (json_is_number(ex)) {
        double e = json_number_value(ex);
        if (!*has || (lower ? e >= d : e <= d)) {
            d = e;
            *open = true;
            used = kex;
        }
        *has = true;
    }
    if (!*has)
        return EA_OK;
    if (fabs(d) > MAX_SAFE_INT) {
        *has = false;
        return ea__gr_unenforced(b, used, path);
    }
    *dv = d;
    if (d != floor(d)) {
        if (!is_int) {
            char tmp[64];
            if (!decimal_of(d, tmp, sizeof tmp)) { /* no short exact decimal form */
                *has = false;
                return ea__gr_unenforced(b, used, path);
            }
            *v = (int64_t)(lower ? floor(d) : ceil(d));
            return EA_OK;
        }
        d = lower ? ceil(d) : floor(d);
        *open = false;
    }
    *v = (int64_t)d;
    return EA_OK;
}

static struct gr_ast *numeric_ast(struct gr_build *b, bool has_lo, int64_t lo, bool lo_open, bool has_hi,
                                  int64_t hi, bool hi_open, bool is_int)
{
    if (is_int) { /* closed integer bounds */
        if (has_lo && lo_open)
            lo++, lo_open = false;
        if (has_hi && hi_open)
            hi--, hi_open = false;
        if (has_lo && has_hi && lo > hi)
            return ea__gr_none(b);
    }
    struct gr_ast *alts[2];
    uint32_t k = 0;
    /* x >= 0 */
    if (!has_hi || hi > 0 || (hi == 0 && !hi_open)) {
        uint64_t A = has_lo && lo > 0 ? (uint64_t)lo : 0;
        bool ao = has_lo && lo >= 0 ? lo_open : false;
        alts[k++] = mag_range(b, A, ao, has_hi ? (uint64_t)hi : 0, hi_open, !has_hi, !is_int);
    }
    /* x < 0: magnitude in [max(-hi, 0 or 1), -lo] */
    if (!has_lo || lo < 0) {
        uint64_t A;
        bool ao;
        if (has_hi && hi < 0) {
            A = (uint64_t)(-hi);
            ao = hi_open;
        } else {
            A = 0;
            ao = true; /* strictly negative: the x >= 0 side has zero */
        }
        struct gr_ast *m = mag_range(b, A, ao, has_lo ? (uint64_t)(-lo) : 0, lo_open, !has_lo, !is_int);
        alts[k++] = ea__gr_cat2(b, lit(b, "-"), m);
    }
    return ea__gr_alt(b, k, alts);
}

#define GR_MULTIPLE_MAX 1000u /* largest integer multipleOf enforced (one state per remainder) */

/* Decimal integers (optional '-') whose value is a multiple of m: a DFA
 * over the remainder of the digits read so far. */
static ea_status multiple_dfa(struct gr_build *b, uint32_t m, struct gr_dfa **out)
{
    struct gr_dfa *d = ea_calloc(1, sizeof *d);
    uint32_t n = m + 2; /* 0: start, 1: after '-', 2 + r: remainder r */
    if (!d)
        return nomem(b);
    d->n_states = n;
    d->n_cls = 12; /* digits 0-9, '-', anything else */
    for (unsigned c = 0; c < 256; c++)
        d->cls[c] = c >= '0' && c <= '9' ? (uint8_t)(c - '0') : c == '-' ? 10 : 11;
    d->next = ea_malloc((size_t)n * d->n_cls * sizeof *d->next);
    d->accept = ea_calloc(n, 1);
    d->call_off = ea_calloc(n + 1, sizeof *d->call_off);
    d->calls = ea_malloc(sizeof *d->calls);
    if (!d->next || !d->accept || !d->call_off || !d->calls) {
        ea__gr_dfa_free(d);
        return nomem(b);
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = i >= 2 ? i - 2 : 0;
        for (uint32_t c = 0; c < 12; c++)
            d->next[(size_t)i * 12 + c] = c < 10 ? (int32_t)(2 + (10 * r + c) % m) : -1;
    }
    d->next[10] = 1; /* start --'-'--> after '-' */
    d->accept[2] = 1;
    b->total_states += n;
    *out = d;
    return EA_OK;
}

static ea_status number_body(struct gr_build *b, const json_t *s, const char *path, bool is_int,
                             struct gr_ast **out)
{
    ea_status st;
    bool has_lo, has_hi, lo_open, hi_open;
    int64_t lo = 0, hi = 0;
    double dlo = 0, dhi = 0;
    if ((st = bound(b, s, path, is_int, true, &has_lo, &lo, &lo_open, &dlo)) != EA_OK ||
        (st = bound(b, s, path, is_int, false, &has_hi, &hi, &hi_open, &dhi)) != EA_OK)
        return st;
    if (!is_int && ((has_lo && dlo != floor(dlo)) || (has_hi && dhi != floor(dhi)))) {
        if (json_object_get(s, "multipleOf") && (st = ea__gr_unenforced(b, "multipleOf", path)) != EA_OK)
            return st;
        return decimal_number(b, has_lo, dlo, lo_open, has_hi, dhi, hi_open, out);
    }
    const json_t *mul = json_object_get(s, "multipleOf");
    double mv = json_number_value(mul);
    bool mul_ok = mul && is_int && mv >= 1 && mv <= GR_MULTIPLE_MAX && mv == floor(mv);
    if (mul && !mul_ok && (st = ea__gr_unenforced(b, "multipleOf", path)) != EA_OK)
        return st;
    if (mul_ok) {
        /* the value grammar intersected with the remainder automaton, as a rule */
        struct gr_ast *val = (has_lo || has_hi) ? numeric_ast(b, has_lo, lo, lo_open, has_hi, hi, hi_open, true)
                                                : mk_integer(b);
        struct gr_dfa *x = NULL, *y = NULL, *z = NULL;
        uint32_t id;
        if ((st = ea__gr_rule_new(b, &id)) != EA_OK)
            return st;
        if ((st = ea__gr_dfa_from_ast(b, val, &x)) == EA_OK && (st = multiple_dfa(b, (uint32_t)mv, &y)) == EA_OK)
            st = ea__gr_dfa_intersect(b, x, y, &z);
        ea__gr_rule_set_dfa(b, id, x);
        ea__gr_rule_set_dfa(b, id, y);
        ea__gr_rule_set_dfa(b, id, z);
        if (st != EA_OK)
            return st;
        *out = ea__gr_call(b, id);
        return *out ? EA_OK : nomem(b);
    }
    if (!has_lo && !has_hi) {
        if ((st = ensure_basics(b)) != EA_OK)
            return st;
        *out = ea__gr_call(b, is_int ? b->rule_integer : b->rule_number);
        return EA_OK;
    }
    *out = numeric_ast(b, has_lo, lo, lo_open, has_hi, hi, hi_open, is_int);
    return EA_OK;
}

/* key literal of an object property */
static struct gr_ast *key_lit(struct gr_build *b, const char *k)
{
    json_t *s = json_string(k);
    if (!s)
        return NULL;
    char *t = json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(s);
    if (!t)
        return NULL;
    struct gr_ast *a = lit(b, t);
    free(t);
    return a;
}

static ea_status extra_key_rule(struct gr_build *b, const json_t *props, uint32_t *id)
{
    ea_status st;
    if ((st = ea__gr_rule_new(b, id)) != EA_OK)
        return st;
    struct gr_ast *q = lit(b, "\"");
    struct gr_ast *ident = ea__gr_alt(b, 5, (struct gr_ast *[]){ea__gr_byte_range(b, 'a', 'z'), ea__gr_byte_range(b, 'A', 'Z'), ea__gr_byte_range(b, '0', '9'), lit(b, "_"), lit(b, "-")});
    struct gr_ast *keyx = cat(b, 3, (struct gr_ast *[]){q, ea__gr_rep(b, ident, 1, GR_INF), q});
    if (!json_object_size(props))
        return ea__gr_rule_set_ast(b, *id, keyx);
    struct gr_ast **alts = ea__gr_alloc(&b->arena, json_object_size(props) * sizeof *alts);
    if (!alts)
        return nomem(b);
    uint32_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)props, k, v) alts[n++] = key_lit(b, k);
    struct gr_dfa *x = NULL, *y = NULL, *z = NULL;
    if ((st = ea__gr_dfa_from_ast(b, keyx, &x)) == EA_OK &&
        (st = ea__gr_dfa_from_ast(b, ea__gr_alt(b, n, alts), &y)) == EA_OK &&
        (st = ea__gr_dfa_complement(b, y)) == EA_OK)
        st = ea__gr_dfa_intersect(b, x, y, &z);
    ea__gr_rule_set_dfa(b, *id, x);
    ea__gr_rule_set_dfa(b, *id, y);
    ea__gr_rule_set_dfa(b, *id, z);
    return st;
}

static ea_status object_body(struct gr_build *b, const json_t *s, const char *path, struct gr_ast **out)
{
    ea_status st;
    const json_t *props = json_object_get(s, "properties");
    const json_t *req = json_object_get(s, "required");
    const json_t *addl = json_object_get(s, "additionalProperties");
    static const char *const unsup[] = {"patternProperties", "propertyNames", "minProperties", "maxProperties",
                                        "dependentRequired", "dependentSchemas", "dependencies",
                                        "unevaluatedProperties", NULL};
    for (size_t i = 0; unsup[i]; i++)
        if (json_object_get(s, unsup[i]) && (st = ea__gr_unenforced(b, unsup[i], path)) != EA_OK)
            return st;
    if (props && !json_is_object(props))
        return ea_error_set(b->err, EA_EFORMAT, "grammar: properties must be an object at %s", path);
    if (req && !json_is_array(req))
        return ea_error_set(b->err, EA_EFORMAT, "grammar: required must be an array at %s", path);
    size_t np = props ? json_object_size(props) : 0;
    /* required names that are not declared: declare them as any value */
    size_t i;
    json_t *r;
    json_t *all = json_object();
    if (!all || keep(b, all) != EA_OK)
        return nomem(b);
    if (props)
        json_object_update(all, (json_t *)props);
    if (req)
        json_array_foreach(req, i, r) {
            if (!json_is_string(r))
                return ea_error_set(b->err, EA_EFORMAT, "grammar: required must list strings at %s", path);
            if (!json_object_get(all, json_string_value(r))) {
                if (json_is_false(addl))
                    return ea_error_set(b->err, EA_EINVAL, "grammar: required \"%.100s\" is not allowed at %s",
                                        json_string_value(r), path);
                json_object_set_new(all, json_string_value(r), addl && !json_is_true(addl) ? json_incref((json_t *)addl) : json_true());
            }
        }
    np = json_object_size(all);
    /* free-form object: any keys */
    bool any_keys = !props && (!addl || json_is_true(addl) || json_is_object(addl));
    bool extra = any_keys || (props && (json_is_true(addl) || json_is_object(addl)));
    uint32_t extra_val = GR_NIL, extra_key = GR_NIL;
    if (extra) {
        char p2[PATH_MAX_LEN];
        path_join(p2, path, "additionalProperties", NULL);
        if ((st = ensure_basics(b)) != EA_OK)
            return st;
        if (json_is_object(addl)) {
            if ((st = schema_rule(b, addl, p2, &extra_val)) != EA_OK)
                return st;
        } else {
            extra_val = b->rule_value;
        }
        if (any_keys && np == 0)
            extra_key = b->rule_string;
        else if ((st = extra_key_rule(b, all, &extra_key)) != EA_OK)
            return st;
    }
    struct gr_ast *ws = ea__gr_ws(b);
    struct gr_ast *comma = cat(b, 3, (struct gr_ast *[]){ws, lit(b, ","), ws});
    /* members, right to left: T1 (something emitted before) and T0 (nothing yet) */
    struct gr_ast *t1, *t0;
    if (extra) {
        struct gr_ast *member = cat(b, 5, (struct gr_ast *[]){ea__gr_call(b, extra_key), ws, lit(b, ":"), ws, ea__gr_call(b, extra_val)});
        struct gr_ast *more = ea__gr_rep(b, ea__gr_cat2(b, comma, member), 0, GR_INF);
        t1 = ea__gr_shared(b, more);
        t0 = ea__gr_rep(b, ea__gr_cat2(b, member, t1), 0, 1);
    } else {
        t1 = ea__gr_empty(b);
        t0 = ea__gr_empty(b);
    }
    const char **keys = ea__gr_alloc(&b->arena, (np ? np : 1) * sizeof *keys);
    json_t **vals = ea__gr_alloc(&b->arena, (np ? np : 1) * sizeof *vals);
    if (!keys || !vals)
        return nomem(b);
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(all, k, v) {
        keys[n] = k;
        vals[n++] = v;
    }
    /* value rules in declaration order (errors name the first keyword) */
    uint32_t *vr = ea__gr_alloc(&b->arena, (np ? np : 1) * sizeof *vr);
    if (!vr)
        return nomem(b);
    for (size_t j = 0; j < n; j++) {
        char p2[PATH_MAX_LEN];
        path_join(p2, path, "properties", keys[j]);
        if ((st = schema_rule(b, vals[j], p2, &vr[j])) != EA_OK)
            return st;
    }
    for (size_t j = n; j-- > 0;) {
        bool required = false;
        if (req)
            json_array_foreach(req, i, r) required |= json_is_string(r) && strcmp(json_string_value(r), keys[j]) == 0;
        struct gr_ast *m = cat(b, 5, (struct gr_ast *[]){key_lit(b, keys[j]), ws, lit(b, ":"), ws, ea__gr_call(b, vr[j])});
        struct gr_ast *m1 = ea__gr_cat2(b, comma, m);
        struct gr_ast *emit0 = ea__gr_cat2(b, m, t1);
        struct gr_ast *nt1 = ea__gr_cat2(b, required ? m1 : ea__gr_rep(b, m1, 0, 1), t1);
        struct gr_ast *nt0 = required ? emit0 : ea__gr_alt2(b, emit0, t0);
        t1 = ea__gr_shared(b, nt1);
        t0 = nt0;
        if (!t1 || !t0)
            return nomem(b);
    }
    *out = cat(b, 5, (struct gr_ast *[]){lit(b, "{"), ws, t0, ws, lit(b, "}")});
    return *out ? EA_OK : nomem(b);
}

static ea_status literal_ast(struct gr_build *b, const json_t *v, struct gr_ast **out);

#define GR_UNIQUE_ENUM_MAX 8u /* enum values of uniqueItems arrays: 2^n subsets */

/* The values an items schema allows when it is only an enum or const (with
 * annotations and a type); false otherwise. */
static bool enum_values(const json_t *items, const json_t **vals, size_t *n)
{
    const char *k;
    json_t *v;
    if (!json_is_object(items))
        return false;
    json_object_foreach((json_t *)items, k, v) if (!is_annotation(k) && strcmp(k, "enum") && strcmp(k, "const") &&
                                                    strcmp(k, "type")) return false;
    const json_t *en = json_object_get(items, "enum"), *c = json_object_get(items, "const");
    const json_t *ty = json_object_get(items, "type");
    unsigned ts = T_ALL;
    if (ty && (!json_is_string(ty) || !(ts = type_bit(json_string_value(ty)))))
        return false;
    if (ts & (T_INT | T_NUM))
        ts |= T_INT | T_NUM;
    *n = 0;
    for (size_t i = 0; i < (en ? json_array_size(en) : c ? 1 : 0); i++) {
        const json_t *x = en ? json_array_get(en, i) : c;
        bool dup = false;
        for (size_t j = 0; j < *n && !dup; j++)
            dup = json_equal(vals[j], x);
        if (dup || !(value_type(x) & ts))
            continue;
        if (*n == GR_UNIQUE_ENUM_MAX)
            return false;
        vals[(*n)++] = x;
    }
    return (en && json_is_array(en)) || c;
}

/* uniqueItems over enum values: the state is the set of values used so far
 * (a shared suffix per subset keeps the automaton at 2^n states). */
static ea_status unique_enum_array(struct gr_build *b, const json_t **vals, size_t n, uint64_t mn, uint64_t mx,
                                   struct gr_ast **out)
{
    ea_status st;
    uint32_t full = 1u << n;
    struct gr_ast **lits = ea__gr_alloc(&b->arena, (n ? n : 1) * sizeof *lits);
    struct gr_ast **tail = ea__gr_alloc(&b->arena, full * sizeof *tail);
    struct gr_ast **alts = ea__gr_alloc(&b->arena, (n + 1) * sizeof *alts);
    if (!lits || !tail || !alts)
        return nomem(b);
    for (size_t i = 0; i < n; i++)
        if ((st = literal_ast(b, vals[i], &lits[i])) != EA_OK)
            return st;
    struct gr_ast *ws = ea__gr_ws(b);
    struct gr_ast *comma = cat(b, 3, (struct gr_ast *[]){ws, lit(b, ","), ws});
    /* tail[S]: what may follow once the values in S are used, S non-empty */
    for (uint32_t S = full; S-- > 1;) {
        uint32_t used = (uint32_t)__builtin_popcount(S), k = 0;
        if (used >= mn)
            alts[k++] = ea__gr_empty(b);
        if (used < mx)
            for (size_t i = 0; i < n; i++)
                if (!(S & (1u << i)))
                    alts[k++] = cat(b, 3, (struct gr_ast *[]){comma, lits[i], tail[S | (1u << i)]});
        if (!(tail[S] = ea__gr_shared(b, ea__gr_alt(b, k, alts))))
            return nomem(b);
    }
    uint32_t k = 0;
    if (mn == 0)
        alts[k++] = ea__gr_empty(b);
    if (mx > 0)
        for (size_t i = 0; i < n; i++)
            alts[k++] = ea__gr_cat2(b, lits[i], tail[1u << i]);
    *out = cat(b, 5, (struct gr_ast *[]){lit(b, "["), ws, ea__gr_alt(b, k, alts), ws, lit(b, "]")});
    return *out ? EA_OK : nomem(b);
}

static ea_status array_body(struct gr_build *b, const json_t *s, const char *path, struct gr_ast **out)
{
    ea_status st;
    const json_t *prefix = json_object_get(s, "prefixItems");
    const json_t *items = json_object_get(s, "items");
    const json_t *rest = NULL; /* schema of elements after the prefix; NULL: none allowed */
    if (json_is_true(json_object_get(s, "uniqueItems")) && !prefix) {
        const json_t *vals[GR_UNIQUE_ENUM_MAX];
        size_t nv;
        if (enum_values(items, vals, &nv)) {
            uint64_t mn = 0, mx = UINT64_MAX;
            get_uint(s, "minItems", &mn);
            get_uint(s, "maxItems", &mx);
            static const char *const other[] = {"contains", "minContains", "maxContains", "unevaluatedItems", NULL};
            for (size_t i = 0; other[i]; i++)
                if (json_object_get(s, other[i]) && (st = ea__gr_unenforced(b, other[i], path)) != EA_OK)
                    return st;
            return unique_enum_array(b, vals, nv, mn, mx, out);
        }
    }
    static const char *const unsup[] = {"uniqueItems", "contains", "minContains", "maxContains",
                                        "unevaluatedItems", NULL};
    for (size_t i = 0; unsup[i]; i++) {
        const json_t *x = json_object_get(s, unsup[i]);
        if (x && !(strcmp(unsup[i], "uniqueItems") == 0 && json_is_false(x)) &&
            (st = ea__gr_unenforced(b, unsup[i], path)) != EA_OK)
            return st;
    }
    if (json_is_array(items)) { /* draft-07 tuple form */
        prefix = items;
        items = json_object_get(s, "additionalItems");
    }
    if (prefix && !json_is_array(prefix))
        return ea_error_set(b->err, EA_EFORMAT, "grammar: prefixItems must be an array at %s", path);
    size_t k = prefix ? json_array_size(prefix) : 0;
    if (items)
        rest = json_is_false(items) ? NULL : items;
    else
        rest = k ? NULL : json_true(); /* no prefix: any items; with one: only the tuple */
    uint64_t mn = 0, mx = 0;
    bool has_mx = get_uint(s, "maxItems", &mx);
    get_uint(s, "minItems", &mn);
    if (mn > EA_GRAMMAR_MAX_REPEAT) {
        if ((st = ea__gr_unenforced(b, "minItems", path)) != EA_OK)
            return st;
        mn = 0;
    }
    if (has_mx && mx > EA_GRAMMAR_MAX_REPEAT) {
        if ((st = ea__gr_unenforced(b, "maxItems", path)) != EA_OK)
            return st;
        has_mx = false;
    }
    uint64_t M = has_mx ? mx : UINT64_MAX;
    if (!rest && M > k)
        M = k;
    struct gr_ast *ws = ea__gr_ws(b);
    struct gr_ast *comma = cat(b, 3, (struct gr_ast *[]){ws, lit(b, ","), ws});
    if (mn > M) {
        *out = ea__gr_none(b);
        return EA_OK;
    }
    uint32_t rest_rule = GR_NIL;
    if (rest) {
        char p2[PATH_MAX_LEN];
        path_join(p2, path, "items", NULL);
        if ((st = schema_rule(b, rest, p2, &rest_rule)) != EA_OK)
            return st;
    }
    uint64_t c0 = k > mn ? k : mn;
    if (c0 > M)
        c0 = M;
    uint32_t *er = ea__gr_alloc(&b->arena, (c0 ? c0 : 1) * sizeof *er);
    if (!er)
        return nomem(b);
    for (uint64_t i = 0; i < c0; i++) {
        if (i < k) {
            char p2[PATH_MAX_LEN], idx[24];
            snprintf(idx, sizeof idx, "%llu", (unsigned long long)i);
            path_join(p2, path, "prefixItems", idx);
            if ((st = schema_rule(b, json_array_get(prefix, i), p2, &er[i])) != EA_OK)
                return st;
        } else {
            er[i] = rest_rule;
        }
    }
    /* tail after c0 elements */
    struct gr_ast *tail = ea__gr_empty(b);
    if (rest_rule != GR_NIL && M > c0) {
        uint64_t more = M - c0;
        uint32_t mmax = M == UINT64_MAX ? GR_INF : (uint32_t)more;
        struct gr_ast *el = ea__gr_call(b, rest_rule);
        if (c0 == 0) {
            struct gr_ast *more_els = ea__gr_rep(b, ea__gr_cat2(b, comma, el), 0, mmax == GR_INF ? GR_INF : mmax - 1);
            tail = ea__gr_rep(b, ea__gr_cat2(b, el, more_els), 0, 1);
        } else {
            tail = ea__gr_rep(b, ea__gr_cat2(b, comma, el), 0, mmax);
        }
    }
    /* optional elements mn..c0-1 nest; required ones are flat */
    struct gr_ast *acc = tail;
    for (uint64_t i = c0; i-- > mn;) {
        struct gr_ast *el = ea__gr_call(b, er[i]);
        if (i > 0)
            el = ea__gr_cat2(b, comma, el);
        acc = ea__gr_rep(b, ea__gr_cat2(b, el, acc), 0, 1);
    }
    uint32_t nreq = (uint32_t)(mn < c0 ? mn : c0);
    struct gr_ast **seq = ea__gr_alloc(&b->arena, (nreq + 1) * sizeof *seq);
    if (!seq)
        return nomem(b);
    for (uint32_t i = 0; i < nreq; i++) {
        struct gr_ast *el = ea__gr_call(b, er[i]);
        seq[i] = i > 0 ? ea__gr_cat2(b, comma, el) : el;
    }
    seq[nreq] = acc;
    struct gr_ast *els = ea__gr_cat(b, nreq + 1, seq);
    *out = cat(b, 5, (struct gr_ast *[]){lit(b, "["), ws, els, ws, lit(b, "]")});
    return *out ? EA_OK : nomem(b);
}

/* ---- schema dispatch --------------------------------------------------------------------- */

static ea_status literal_ast(struct gr_build *b, const json_t *v, struct gr_ast **out)
{
    char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!t)
        return nomem(b);
    *out = lit(b, t);
    free(t);
    return *out ? EA_OK : nomem(b);
}

static bool has_any(const json_t *s, const char *const *keys)
{
    for (size_t i = 0; keys[i]; i++)
        if (json_object_get(s, keys[i]))
            return true;
    return false;
}

/* The single value a property must hold in object schema s: its const or
 * one-value enum, when the property is required; NULL otherwise. */
static const json_t *tag_value(const json_t *s, const char *prop)
{
    const json_t *req = json_object_get(s, "required");
    bool required = false;
    size_t i;
    json_t *r;
    json_array_foreach(req, i, r) required |= json_is_string(r) && strcmp(json_string_value(r), prop) == 0;
    if (!required)
        return NULL;
    const json_t *ps = json_object_get(json_object_get(s, "properties"), prop);
    const json_t *c = json_object_get(ps, "const");
    if (c)
        return c;
    const json_t *e = json_object_get(ps, "enum");
    return json_array_size(e) == 1 ? json_array_get(e, 0) : NULL;
}

/* Two object schemas that require some property to hold different
 * constants (a discriminated union) cannot both match. */
static bool objects_disjoint(const json_t *a, const json_t *b)
{
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(a, "properties"), k, v) {
        const json_t *x = tag_value(a, k), *y = tag_value(b, k);
        if (x && y && !json_equal(x, y))
            return true;
    }
    return false;
}

/* oneOf is exact when no two alternatives can match the same value: their
 * types differ, or they are objects told apart by a required constant. */
static bool alts_disjoint(const json_t *arr)
{
    size_t n = json_array_size(arr);
    unsigned *ts = ea_malloc((n ? n : 1) * sizeof *ts);
    bool ok = ts != NULL;
    for (size_t i = 0; i < n && ok; i++) {
        const json_t *x = json_array_get(arr, i);
        const json_t *ty = json_object_get(x, "type");
        ts[i] = json_is_string(ty) ? type_bit(json_string_value(ty)) : 0;
        if (ts[i] & (T_INT | T_NUM))
            ts[i] |= T_INT | T_NUM;
        ok = ts[i] != 0;
    }
    for (size_t i = 0; i < n && ok; i++)
        for (size_t j = 0; j < i && ok; j++)
            if (ts[i] & ts[j])
                ok = ts[i] == T_OBJ && ts[j] == T_OBJ &&
                     objects_disjoint(json_array_get(arr, i), json_array_get(arr, j));
    ea_free(ts);
    return ok;
}

static ea_status alternatives(struct gr_build *b, const json_t *s, const char *kw, const char *path,
                              struct gr_ast **out)
{
    const json_t *arr = json_object_get(s, kw);
    ea_status st;
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return ea_error_set(b->err, EA_EFORMAT, "grammar: %s must be a non-empty array at %s", kw, path);
    if (strcmp(kw, "oneOf") == 0 && !alts_disjoint(arr) && (st = ea__gr_unenforced(b, "oneOf", path)) != EA_OK)
        return st;
    /* siblings apply to every alternative: S and (A or B) = (S and A) or (S and B) */
    bool siblings = false;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) siblings |= !is_annotation(k) && strcmp(k, kw) != 0;
    size_t n = json_array_size(arr);
    struct gr_ast **alts = ea__gr_alloc(&b->arena, n * sizeof *alts);
    if (!alts)
        return nomem(b);
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(arr, i);
        char p2[PATH_MAX_LEN], idx[24];
        snprintf(idx, sizeof idx, "%zu", i);
        path_join(p2, path, kw, idx);
        if (siblings && (st = merge_all(b, s, kw, a, p2, &a)) != EA_OK)
            return st;
        uint32_t r;
        if ((st = schema_rule(b, a, p2, &r)) != EA_OK)
            return st;
        alts[i] = ea__gr_call(b, r);
    }
    *out = ea__gr_alt(b, (uint32_t)n, alts);
    return *out ? EA_OK : nomem(b);
}

static ea_status schema_body(struct gr_build *b, const json_t *s, const char *path, uint32_t id)
{
    ea_status st;
    struct gr_ast *a = NULL;
    if (json_is_true(s) || (json_is_object(s) && json_object_size(s) == 0)) {
        if ((st = ensure_basics(b)) != EA_OK)
            return st;
        return ea__gr_rule_set_ast(b, id, ea__gr_call(b, b->rule_value));
    }
    if (json_is_false(s) || (json_is_object(s) && json_is_true(json_object_get(s, "not"))))
        return ea__gr_rule_set_ast(b, id, ea__gr_none(b)); /* {"not": true} is false */
    if (!json_is_object(s))
        return ea_error_set(b->err, EA_EFORMAT, "grammar: schema at %s is not an object or boolean", path);
    /* keywords nobody below handles */
    static const char *const known[] = {
        "type", "properties", "required", "additionalProperties", "enum", "const", "anyOf", "oneOf", "allOf",
        "items", "prefixItems", "additionalItems", "minItems", "maxItems", "minLength", "maxLength", "pattern",
        "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "$ref", "nullable",
        "multipleOf", "patternProperties", "propertyNames", "minProperties", "maxProperties",
        "dependentRequired", "dependentSchemas", "dependencies", "unevaluatedProperties", "uniqueItems",
        "contains", "minContains", "maxContains", "unevaluatedItems", NULL};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (is_annotation(k))
            continue;
        bool kn = false;
        for (size_t i = 0; known[i] && !kn; i++)
            kn = strcmp(k, known[i]) == 0;
        if (!kn && (st = ea__gr_unenforced(b, k, path)) != EA_OK)
            return st;
    }
    const json_t *ref = json_object_get(s, "$ref");
    const json_t *allof = json_object_get(s, "allOf");
    bool nullable = json_is_true(json_object_get(s, "nullable"));
    if (ref || allof) {
        bool siblings = false;
        json_object_foreach((json_t *)s, k, v) siblings |= !is_annotation(k) && strcmp(k, "$ref") && strcmp(k, "nullable");
        if (ref && !allof && !siblings) {
            const json_t *t;
            if (!json_is_string(ref))
                return ea_error_set(b->err, EA_EFORMAT, "grammar: $ref must be a string at %s", path);
            if ((st = resolve_ref(b, json_string_value(ref), path, &t)) != EA_OK)
                return st;
            uint32_t r;
            if ((st = schema_rule(b, t, json_string_value(ref), &r)) != EA_OK)
                return st;
            a = ea__gr_call(b, r);
        } else {
            const json_t *m;
            if ((st = merge_all(b, s, NULL, NULL, path, &m)) != EA_OK)
                return st;
            if (json_object_get(m, "$ref") || json_object_get(m, "allOf"))
                return ea_error_set(b->err, EA_EINTERNAL, "grammar: merge left $ref at %s", path);
            uint32_t r;
            if ((st = schema_rule(b, m, path, &r)) != EA_OK)
                return st;
            a = ea__gr_call(b, r);
        }
    } else if (json_object_get(s, "enum") || json_object_get(s, "const")) {
        const json_t *en = json_object_get(s, "enum");
        const json_t *ty = json_object_get(s, "type");
        unsigned ts = T_ALL;
        if (ty && (st = type_set(b, ty, path, &ts)) != EA_OK)
            return st;
        if (ts & T_INT)
            ts |= 0; /* integers are numbers with an integral value */
        if (nullable)
            ts |= T_NULL;
        size_t n = en ? json_array_size(en) : 1;
        if (en && !json_is_array(en))
            return ea_error_set(b->err, EA_EFORMAT, "grammar: enum must be an array at %s", path);
        struct gr_ast **alts = ea__gr_alloc(&b->arena, (n ? n : 1) * sizeof *alts);
        if (!alts)
            return nomem(b);
        uint32_t m = 0;
        for (size_t i = 0; i < n; i++) {
            const json_t *x = en ? json_array_get(en, i) : json_object_get(s, "const");
            unsigned vt = value_type(x);
            bool ok = (vt & ts) != 0 || ((ts & T_NUM) && (vt & T_NUM));
            if (!ok)
                continue;
            if ((st = literal_ast(b, x, &alts[m])) != EA_OK)
                return st;
            m++;
        }
        a = ea__gr_alt(b, m, alts);
    } else if (json_object_get(s, "anyOf") || json_object_get(s, "oneOf")) {
        if (json_object_get(s, "anyOf") && json_object_get(s, "oneOf"))
            if ((st = ea__gr_unenforced(b, "oneOf", path)) != EA_OK)
                return st;
        if ((st = alternatives(b, s, json_object_get(s, "anyOf") ? "anyOf" : "oneOf", path, &a)) != EA_OK)
            return st;
    } else {
        unsigned ts = 0;
        const json_t *ty = json_object_get(s, "type");
        if (ty) {
            if ((st = type_set(b, ty, path, &ts)) != EA_OK)
                return st;
        } else {
            static const char *const okw[] = {"properties", "required", "additionalProperties", NULL};
            static const char *const akw[] = {"items", "prefixItems", "minItems", "maxItems", NULL};
            static const char *const skw[] = {"minLength", "maxLength", "pattern", "format", NULL};
            static const char *const nkw[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", NULL};
            if (has_any(s, okw))
                ts |= T_OBJ;
            if (has_any(s, akw))
                ts |= T_ARR;
            if (has_any(s, skw))
                ts |= T_STR;
            if (has_any(s, nkw))
                ts |= T_NUM;
            if (!ts)
                ts = T_ALL;
        }
        if (nullable)
            ts |= T_NULL;
        if ((ts & T_INT) && (ts & T_NUM))
            ts &= ~T_INT;
        struct gr_ast *alts[7];
        uint32_t n = 0;
        if ((st = ensure_basics(b)) != EA_OK)
            return st;
        if (ts & T_NULL)
            alts[n++] = lit(b, "null");
        if (ts & T_BOOL)
            alts[n++] = ea__gr_alt2(b, lit(b, "true"), lit(b, "false"));
        if (ts & (T_INT | T_NUM)) {
            if ((st = number_body(b, s, path, (ts & T_INT) != 0, &alts[n])) != EA_OK)
                return st;
            n++;
        }
        if (ts & T_STR) {
            uint32_t r;
            if ((st = ea__gr_rule_new(b, &r)) != EA_OK || (st = string_body(b, s, path, r)) != EA_OK)
                return st;
            alts[n++] = ea__gr_call(b, r);
        }
        if (ts & T_OBJ) {
            if ((st = object_body(b, s, path, &alts[n])) != EA_OK)
                return st;
            n++;
        }
        if (ts & T_ARR) {
            if ((st = array_body(b, s, path, &alts[n])) != EA_OK)
                return st;
            n++;
        }
        a = ea__gr_alt(b, n, alts);
    }
    if (nullable && (ref || allof || json_object_get(s, "anyOf") || json_object_get(s, "oneOf")))
        a = ea__gr_alt2(b, a, lit(b, "null"));
    if (!a)
        return nomem(b);
    return ea__gr_rule_set_ast(b, id, a);
}

static ea_status schema_rule(struct gr_build *b, const json_t *s, const char *path, uint32_t *id)
{
    for (uint32_t i = 0; i < b->n_memo; i++)
        if (b->memo[i].schema == s) {
            *id = b->memo[i].rule;
            return EA_OK;
        }
    if (b->depth >= EA_GRAMMAR_MAX_DEPTH)
        return ea_error_set(b->err, EA_ETOOBIG, "grammar: schema nested deeper than %u at %s",
                            EA_GRAMMAR_MAX_DEPTH, path);
    ea_status st = ea__gr_rule_new(b, id);
    if (st != EA_OK)
        return st;
    if (b->n_memo == b->cap_memo) {
        uint32_t cap = b->cap_memo ? b->cap_memo * 2 : 32;
        struct gr_refmemo *m = ea_realloc(b->memo, cap * sizeof *m);
        if (!m)
            return nomem(b);
        b->memo = m;
        b->cap_memo = cap;
    }
    b->memo[b->n_memo++] = (struct gr_refmemo){s, *id};
    b->depth++;
    st = schema_body(b, s, path, *id);
    b->depth--;
    return st;
}

ea_status ea__gr_schema_root(struct gr_build *b, const json_t *schema, uint32_t *root)
{
    b->root = schema;
    return schema_rule(b, schema, "", root);
}
