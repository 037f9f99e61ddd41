/* regex.c - the ECMA-262 regular expression subset JSON Schema "pattern"
 * uses, parsed into the grammar AST: alternation, groups ((...), (?:...),
 * (?<name>...)), quantifiers (* + ? {n} {n,} {n,m}, lazy forms accepted),
 * classes ([...], [^...], ranges, \d \w \s and their negations, .), escapes
 * (\n \r \t \f \v \0 \xHH \uHHHH \u{H...} and escaped punctuation), and the
 * anchors ^ and $ at the start / end of a top-level alternative. Matching is
 * on code points, as with the "u" flag JSON Schema validators use.
 * Does not hold: backreferences, lookaround, \b, unicode property classes,
 * flags (all are EA_EUNSUPPORTED with the construct named).
 */
#include "grammar/grammar_int.h"

#include <string.h>

#include "util/utf8.h"

struct rx {
    struct gr_build *b;
    const char *p;
    size_t n, i;
    bool json;
    bool anchored; /* whole-text match: ^ and $ implied */
    unsigned depth;
};

static ea_status rx_fail(struct rx *r, ea_status s, const char *what)
{
    return ea_error_set(r->b->err, s, "pattern: %s at offset %zu", what, r->i);
}

static bool rx_more(const struct rx *r) { return r->i < r->n; }
static char rx_peek(const struct rx *r) { return r->i < r->n ? r->p[r->i] : '\0'; }

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static ea_status add_space(struct gr_build *b, struct gr_cpset *s)
{
    static const uint32_t r[][2] = {{9, 13},         {32, 32},         {0xA0, 0xA0},   {0x1680, 0x1680},
                                    {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F},
                                    {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (ea__gr_cpset_add(b, s, r[i][0], r[i][1]) != EA_OK)
            return EA_ENOMEM;
    return EA_OK;
}

/* class escape letter -> set (negated for upper case) */
static ea_status class_escape(struct rx *r, char c, struct gr_cpset *out)
{
    struct gr_cpset s = {0};
    struct gr_build *b = r->b;
    ea_status st = EA_OK;
    switch (c | 0x20) {
    case 'd':
        st = ea__gr_cpset_add(b, &s, '0', '9');
        break;
    case 'w':
        if ((st = ea__gr_cpset_add(b, &s, '0', '9')) == EA_OK && (st = ea__gr_cpset_add(b, &s, 'A', 'Z')) == EA_OK &&
            (st = ea__gr_cpset_add(b, &s, '_', '_')) == EA_OK)
            st = ea__gr_cpset_add(b, &s, 'a', 'z');
        break;
    case 's':
        st = add_space(b, &s);
        break;
    }
    if (st == EA_OK && c >= 'A' && c <= 'Z')
        st = ea__gr_cpset_negate(b, &s);
    if (st != EA_OK)
        return ea_error_set(b->err, EA_ENOMEM, "pattern: out of memory");
    for (uint32_t i = 0; i < s.n; i++)
        if (ea__gr_cpset_add(b, out, s.r[i][0], s.r[i][1]) != EA_OK)
            return ea_error_set(b->err, EA_ENOMEM, "pattern: out of memory");
    return EA_OK;
}

/* One escaped code point after '\' (not a class escape). in_class: \b is
 * backspace there. Sets *cp. */
static ea_status char_escape(struct rx *r, bool in_class, uint32_t *cp)
{
    if (!rx_more(r))
        return rx_fail(r, EA_EFORMAT, "trailing backslash");
    char c = r->p[r->i++];
    switch (c) {
    case 'n': *cp = '\n'; return EA_OK;
    case 'r': *cp = '\r'; return EA_OK;
    case 't': *cp = '\t'; return EA_OK;
    case 'f': *cp = '\f'; return EA_OK;
    case 'v': *cp = '\v'; return EA_OK;
    case '0':
        if (rx_peek(r) >= '0' && rx_peek(r) <= '9')
            return rx_fail(r, EA_EUNSUPPORTED, "octal escape");
        *cp = 0;
        return EA_OK;
    case 'b':
        if (in_class) {
            *cp = '\b';
            return EA_OK;
        }
        return rx_fail(r, EA_EUNSUPPORTED, "word boundary \\b");
    case 'B':
        return rx_fail(r, EA_EUNSUPPORTED, "word boundary \\B");
    case 'x': {
        int h1 = r->i < r->n ? hexval(rx_peek(r)) : -1;
        int h2 = r->i + 1 < r->n ? hexval(r->p[r->i + 1]) : -1;
        if (h1 < 0 || h2 < 0)
            return rx_fail(r, EA_EFORMAT, "bad \\x escape");
        r->i += 2;
        *cp = (uint32_t)(h1 * 16 + h2);
        return EA_OK;
    }
    case 'u': {
        uint32_t v = 0;
        if (rx_peek(r) == '{') {
            r->i++;
            unsigned nd = 0;
            while (rx_more(r) && rx_peek(r) != '}') {
                int h = hexval(r->p[r->i++]);
                if (h < 0 || ++nd > 6)
                    return rx_fail(r, EA_EFORMAT, "bad \\u{...} escape");
                v = v * 16 + (uint32_t)h;
            }
            if (!rx_more(r) || nd == 0 || v > 0x10FFFF)
                return rx_fail(r, EA_EFORMAT, "bad \\u{...} escape");
            r->i++;
            *cp = v;
            return EA_OK;
        }
        for (int k = 0; k < 4; k++) {
            int h = rx_more(r) ? hexval(r->p[r->i]) : -1;
            if (h < 0)
                return rx_fail(r, EA_EFORMAT, "bad \\u escape");
            v = v * 16 + (uint32_t)h;
            r->i++;
        }
        if (v >= 0xD800 && v <= 0xDBFF && r->i + 5 < r->n && r->p[r->i] == '\\' && r->p[r->i + 1] == 'u') {
            uint32_t lo = 0;
            bool ok = true;
            for (int k = 0; k < 4 && ok; k++) {
                int h = hexval(r->p[r->i + 2 + (size_t)k]);
                ok = h >= 0;
                lo = lo * 16 + (uint32_t)(h < 0 ? 0 : h);
            }
            if (ok && lo >= 0xDC00 && lo <= 0xDFFF) {
                r->i += 6;
                *cp = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                return EA_OK;
            }
        }
        if (v >= 0xD800 && v <= 0xDFFF)
            return rx_fail(r, EA_EUNSUPPORTED, "lone surrogate escape");
        *cp = v;
        return EA_OK;
    }
    case 'c':
        return rx_fail(r, EA_EUNSUPPORTED, "control escape \\c");
    case 'k':
        return rx_fail(r, EA_EUNSUPPORTED, "named backreference \\k");
    case 'p':
    case 'P':
        return rx_fail(r, EA_EUNSUPPORTED, "unicode property class \\p");
    default:
        break;
    }
    if (c >= '1' && c <= '9')
        return rx_fail(r, EA_EUNSUPPORTED, "backreference");
    if ((unsigned char)c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return rx_fail(r, EA_EFORMAT, "unknown escape");
    *cp = (uint32_t)(unsigned char)c;
    return EA_OK;
}

static ea_status literal_cp(struct rx *r, uint32_t *cp)
{
    size_t l = ea__utf8_decode(r->p + r->i, r->n - r->i, cp);
    if (l == 0)
        return rx_fail(r, EA_EFORMAT, "invalid UTF-8");
    r->i += l;
    return EA_OK;
}

static ea_status parse_class(struct rx *r, struct gr_cpset *out)
{
    ea_status st;
    bool neg = false;
    if (rx_peek(r) == '^') {
        neg = true;
        r->i++;
    }
    for (;;) {
        if (!rx_more(r))
            return rx_fail(r, EA_EFORMAT, "unterminated class");
        if (rx_peek(r) == ']') {
            r->i++;
            break;
        }
        uint32_t lo;
        bool is_set = false;
        if (rx_peek(r) == '\\') {
            r->i++;
            char c = rx_peek(r);
            if (c == 'd' || c == 'D' || c == 'w' || c == 'W' || c == 's' || c == 'S') {
                r->i++;
                if ((st = class_escape(r, c, out)) != EA_OK)
                    return st;
                is_set = true;
                lo = 0;
            } else if ((st = char_escape(r, true, &lo)) != EA_OK) {
                return st;
            }
        } else if ((st = literal_cp(r, &lo)) != EA_OK) {
            return st;
        }
        if (is_set)
            continue;
        uint32_t hi = lo;
        if (rx_peek(r) == '-' && r->i + 1 < r->n && r->p[r->i + 1] != ']') {
            r->i++;
            if (rx_peek(r) == '\\') {
                r->i++;
                char c = rx_peek(r);
                if (c == 'd' || c == 'D' || c == 'w' || c == 'W' || c == 's' || c == 'S')
                    return rx_fail(r, EA_EFORMAT, "class escape as range end");
                if ((st = char_escape(r, true, &hi)) != EA_OK)
                    return st;
            } else if ((st = literal_cp(r, &hi)) != EA_OK) {
                return st;
            }
            if (hi < lo)
                return rx_fail(r, EA_EFORMAT, "range out of order");
        }
        if (ea__gr_cpset_add(r->b, out, lo, hi) != EA_OK)
            return ea_error_set(r->b->err, EA_ENOMEM, "pattern: out of memory");
    }
    if (neg && ea__gr_cpset_negate(r->b, out) != EA_OK)
        return ea_error_set(r->b->err, EA_ENOMEM, "pattern: out of memory");
    return EA_OK;
}

static ea_status parse_alt(struct rx *r, bool top, struct gr_ast **out);

static struct gr_ast *set_ast(struct rx *r, const struct gr_cpset *s)
{
    return ea__gr_cpset_ast(r->b, s, r->json);
}

/* An atom, or *out = NULL at the end of a sequence. */
static ea_status parse_atom(struct rx *r, struct gr_ast **out)
{
    ea_status st;
    struct gr_cpset s = {0};
    char c = rx_peek(r);
    *out = NULL;
    switch (c) {
    case '(': {
        r->i++;
        if (rx_peek(r) == '?') {
            r->i++;
            char k = rx_peek(r);
            if (k == ':') {
                r->i++;
            } else if (k == '<' && r->i + 1 < r->n && r->p[r->i + 1] != '=' && r->p[r->i + 1] != '!') {
                while (rx_more(r) && rx_peek(r) != '>')
                    r->i++;
                if (!rx_more(r))
                    return rx_fail(r, EA_EFORMAT, "unterminated group name");
                r->i++;
            } else {
                return rx_fail(r, EA_EUNSUPPORTED, "lookaround or inline flags");
            }
        }
        if (++r->depth > EA_GRAMMAR_MAX_DEPTH)
            return rx_fail(r, EA_ETOOBIG, "groups nested too deeply");
        if ((st = parse_alt(r, false, out)) != EA_OK)
            return st;
        r->depth--;
        if (rx_peek(r) != ')')
            return rx_fail(r, EA_EFORMAT, "missing )");
        r->i++;
        return EA_OK;
    }
    case '[':
        r->i++;
        if ((st = parse_class(r, &s)) != EA_OK)
            return st;
        break;
    case '.':
        r->i++;
        if (ea__gr_cpset_add(r->b, &s, '\n', '\n') != EA_OK || ea__gr_cpset_add(r->b, &s, '\r', '\r') != EA_OK ||
            ea__gr_cpset_add(r->b, &s, 0x2028, 0x2029) != EA_OK || ea__gr_cpset_negate(r->b, &s) != EA_OK)
            return ea_error_set(r->b->err, EA_ENOMEM, "pattern: out of memory");
        break;
    case '\\': {
        r->i++;
        char e = rx_peek(r);
        if (e == 'd' || e == 'D' || e == 'w' || e == 'W' || e == 's' || e == 'S') {
            r->i++;
            if ((st = class_escape(r, e, &s)) != EA_OK)
                return st;
        } else {
            uint32_t cp;
            if ((st = char_escape(r, false, &cp)) != EA_OK)
                return st;
            if (ea__gr_cpset_add(r->b, &s, cp, cp) != EA_OK)
                return ea_error_set(r->b->err, EA_ENOMEM, "pattern: out of memory");
        }
        break;
    }
    case '*':
    case '+':
    case '?':
        return rx_fail(r, EA_EFORMAT, "nothing to repeat");
    case '^':
    case '$':
        return rx_fail(r, EA_EUNSUPPORTED, "anchor inside the pattern");
    case ')':
    case '|':
    case '\0':
        if (!rx_more(r) || c == ')' || c == '|')
            return EA_OK;
        /* a NUL byte in the pattern is a literal */
        /* fall through */
    default: {
        uint32_t cp;
        if ((st = literal_cp(r, &cp)) != EA_OK)
            return st;
        if (ea__gr_cpset_add(r->b, &s, cp, cp) != EA_OK)
            return ea_error_set(r->b->err, EA_ENOMEM, "pattern: out of memory");
        break;
    }
    }
    if (!(*out = set_ast(r, &s)))
        return ea_error_set(r->b->err, EA_ENOMEM, "pattern: out of memory");
    return EA_OK;
}

static bool parse_count(struct rx *r, uint32_t *v)
{
    if (!(rx_peek(r) >= '0' && rx_peek(r) <= '9'))
        return false;
    uint64_t x = 0;
    while (rx_peek(r) >= '0' && rx_peek(r) <= '9') {
        x = x * 10 + (uint64_t)(rx_peek(r) - '0');
        if (x > UINT32_MAX - 1)
            x = UINT32_MAX - 1;
        r->i++;
    }
    *v = (uint32_t)x;
    return true;
}

/* {n}, {n,}, {n,m} at r->i (on '{'); false (position unchanged) if not one. */
static bool parse_braces(struct rx *r, uint32_t *min, uint32_t *max)
{
    size_t save = r->i;
    r->i++;
    if (!parse_count(r, min))
        goto no;
    *max = *min;
    if (rx_peek(r) == ',') {
        r->i++;
        *max = GR_INF;
        if (rx_peek(r) != '}' && !parse_count(r, max))
            goto no;
    }
    if (rx_peek(r) != '}')
        goto no;
    r->i++;
    return true;
no:
    r->i = save;
    return false;
}

static ea_status parse_seq(struct rx *r, bool top, struct gr_ast **out, bool *a_start, bool *a_end)
{
    struct gr_ast **items = NULL;
    uint32_t n = 0, cap = 0;
    ea_status st;
    *a_start = *a_end = false;
    if (top && rx_peek(r) == '^') {
        r->i++;
        *a_start = true;
    }
    for (;;) {
        if (top && rx_peek(r) == '$' && (r->i + 1 == r->n || r->p[r->i + 1] == '|')) {
            r->i++;
            *a_end = true;
            break;
        }
        struct gr_ast *a;
        uint32_t min, max;
        if (rx_peek(r) == '{' && parse_braces(r, &min, &max))
            return rx_fail(r, EA_EFORMAT, "nothing to repeat");
        if (rx_peek(r) == '{') { /* a lone brace is a literal (Annex B) */
            r->i++;
            struct gr_cpset s = {0};
            if (ea__gr_cpset_add(r->b, &s, '{', '{') != EA_OK || !(a = set_ast(r, &s)))
                return ea_error_set(r->b->err, EA_ENOMEM, "pattern: out of memory");
        } else {
            if ((st = parse_atom(r, &a)) != EA_OK)
                return st;
            if (!a)
                break;
        }
        for (;;) { /* quantifiers */
            char q = rx_peek(r);
            if (q == '*') {
                min = 0, max = GR_INF;
                r->i++;
            } else if (q == '+') {
                min = 1, max = GR_INF;
                r->i++;
            } else if (q == '?') {
                min = 0, max = 1;
                r->i++;
            } else if (q == '{' && parse_braces(r, &min, &max)) {
                if (max != GR_INF && max < min)
                    return rx_fail(r, EA_EFORMAT, "numbers out of order in {}");
                if (min > EA_GRAMMAR_MAX_REPEAT || (max != GR_INF && max > EA_GRAMMAR_MAX_REPEAT))
                    return rx_fail(r, EA_ETOOBIG, "repetition count too large");
            } else {
                break;
            }
            if (rx_peek(r) == '?')
                r->i++; /* lazy: same language */
            if (!(a = ea__gr_rep(r->b, a, min, max)))
                return ea_error_set(r->b->err, EA_ENOMEM, "pattern: out of memory");
            char q2 = rx_peek(r);
            if (q2 == '*' || q2 == '+' || q2 == '?')
                return rx_fail(r, EA_EFORMAT, "nothing to repeat");
            if (q2 == '{') {
                uint32_t a2, b2;
                size_t save = r->i;
                if (parse_braces(r, &a2, &b2)) {
                    r->i = save;
                    return rx_fail(r, EA_EFORMAT, "nothing to repeat");
                }
            }
            break;
        }
        if (n == cap) {
            uint32_t nc = cap ? cap * 2 : 16;
            struct gr_ast **ni = ea__gr_alloc(&r->b->arena, nc * sizeof *ni);
            if (!ni)
                return ea_error_set(r->b->err, EA_ENOMEM, "pattern: out of memory");
            if (n)
                memcpy(ni, items, n * sizeof *ni);
            items = ni;
            cap = nc;
        }
        items[n++] = a;
    }
    if (!(*out = ea__gr_cat(r->b, n, items)))
        return ea_error_set(r->b->err, EA_ENOMEM, "pattern: out of memory");
    return EA_OK;
}

static struct gr_ast *any_star(struct rx *r)
{
    struct gr_cpset s = {0};
    if (ea__gr_cpset_add(r->b, &s, 0, 0x10FFFF) != EA_OK)
        return NULL;
    return ea__gr_rep(r->b, set_ast(r, &s), 0, GR_INF);
}

static ea_status parse_alt(struct rx *r, bool top, struct gr_ast **out)
{
    struct gr_ast *alts[2];
    struct gr_ast *acc = NULL;
    ea_status st;
    for (;;) {
        struct gr_ast *seq;
        bool as, ae;
        if ((st = parse_seq(r, top, &seq, &as, &ae)) != EA_OK)
            return st;
        if (top) {
            /* search semantics unless anchored (guided_regex anchors everything) */
            if (!as && !r->anchored) {
                struct gr_ast *a = any_star(r);
                if (!a || !(seq = ea__gr_cat2(r->b, a, seq)))
                    return ea_error_set(r->b->err, EA_ENOMEM, "pattern: out of memory");
            }
            if (!ae && !r->anchored) {
                struct gr_ast *a = any_star(r);
                if (!a || !(seq = ea__gr_cat2(r->b, seq, a)))
                    return ea_error_set(r->b->err, EA_ENOMEM, "pattern: out of memory");
            }
        }
        if (!acc) {
            acc = seq;
        } else {
            alts[0] = acc;
            alts[1] = seq;
            if (!(acc = ea__gr_alt(r->b, 2, alts)))
                return ea_error_set(r->b->err, EA_ENOMEM, "pattern: out of memory");
        }
        if (rx_peek(r) != '|' || !rx_more(r))
            break;
        r->i++;
    }
    *out = acc;
    return EA_OK;
}

ea_status ea__gr_regex_ast(struct gr_build *b, const char *pat, size_t len, bool json,
                           bool anchored_full, struct gr_ast **out)
{
    struct rx r = {.b = b, .p = pat, .n = len, .json = json, .anchored = anchored_full};
    ea_status st = parse_alt(&r, true, out);
    if (st != EA_OK)
        return st;
    if (r.i != r.n)
        return rx_fail(&r, EA_EFORMAT, "unmatched )");
    return EA_OK;
}
