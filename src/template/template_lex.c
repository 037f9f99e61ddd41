/* template_lex.c - turns chat-template source into tokens the way the
 * reference lexer (@huggingface/jinja) does, so that whitespace handling is
 * byte-identical:
 *   1. one trailing newline of the source is dropped;
 *   2. lstrip_blocks: spaces/tabs between a line start and `{%`, `{#` or
 *      `{-` are dropped;
 *   3. trim_blocks: a newline right after `%}`, `#}` or `-}` is dropped;
 *   4. the transformers `{% generation %}` / `{% endgeneration %}` tags are
 *      removed (with the whitespace around them their `-` asks for);
 *   5. the text is split into text, comment and tag tokens; `{%-`, `-%}`,
 *      `{{-`, `-}}`, `{#-`, `-#}` strip whitespace on their side.
 * The passes act on the raw text, inside string literals too, exactly as the
 * reference's regular expressions do. Each pass keeps a map back to source
 * offsets so tokens carry their source line for error messages.
 *
 * Does not hold: parsing (template_parse.c).
 */
#include "template/template_int.h"
#include "util/utf8.h"

#include <stdio.h>
#include <string.h>

struct text {
    char *s;
    uint32_t *pos; /* source offset of each byte */
    size_t n;
};

static void text_free(struct text *t)
{
    ea_free(t->s);
    ea_free(t->pos);
    t->s = NULL;
    t->pos = NULL;
}

static ea_status text_alloc(struct text *t, size_t n)
{
    t->s = ea_malloc(n + 1);
    t->pos = ea_malloc((n + 1) * sizeof *t->pos);
    t->n = 0;
    if (!t->s || !t->pos) {
        text_free(t);
        return EA_ENOMEM;
    }
    return EA_OK;
}

static inline void text_put(struct text *t, const struct text *from, size_t i)
{
    t->s[t->n] = from->s[i];
    t->pos[t->n] = from->pos[i];
    t->n++;
}

/* Is s[i] just after a JS line terminator (\n, \r, U+2028, U+2029)? */
static bool line_start(const char *s, size_t i)
{
    if (i == 0)
        return true;
    if (s[i - 1] == '\n' || s[i - 1] == '\r')
        return true;
    return i >= 3 && (unsigned char)s[i - 3] == 0xE2 && (unsigned char)s[i - 2] == 0x80 &&
           ((unsigned char)s[i - 1] == 0xA8 || (unsigned char)s[i - 1] == 0xA9);
}

/* Pass 2: /^[ \t]*({[#%-])/gm -> "$1" */
static ea_status pass_lstrip(struct text *t)
{
    struct text o;
    if (text_alloc(&o, t->n))
        return EA_ENOMEM;
    for (size_t i = 0; i < t->n;) {
        if (line_start(t->s, i)) {
            size_t j = i;
            while (j < t->n && (t->s[j] == ' ' || t->s[j] == '\t'))
                j++;
            if (j + 1 < t->n && t->s[j] == '{' && strchr("#%-", t->s[j + 1]) && t->s[j + 1]) {
                for (size_t k = j; k < j + 2; k++)
                    text_put(&o, t, k);
                i = j + 2;
                continue;
            }
        }
        text_put(&o, t, i++);
    }
    text_free(t);
    *t = o;
    return EA_OK;
}

/* Pass 3: /([#%-]})\n/g -> "$1" */
static ea_status pass_trim(struct text *t)
{
    struct text o;
    if (text_alloc(&o, t->n))
        return EA_ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        if (t->s[i] == '\n' && i >= 2 && t->s[i - 1] == '}' &&
            (t->s[i - 2] == '#' || t->s[i - 2] == '%' || t->s[i - 2] == '-'))
            continue;
        text_put(&o, t, i);
    }
    text_free(t);
    *t = o;
    return EA_OK;
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    size_t l;
    while (i < n && (l = tx_ws_at(s + i, n - i)) > 0)
        i += l;
    return i;
}

/* Pass 4: /(\s*){%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)/gs ->
 * (lstrip ? "" : before) + (rstrip ? "" : after) */
static ea_status pass_generation(struct text *t)
{
    if (!tx_find(t->s, t->n, "generation", 10))
        return EA_OK;
    struct text o;
    if (text_alloc(&o, t->n))
        return EA_ENOMEM;
    size_t last = 0; /* end of the previous match: copied up to here */
    for (size_t i = 0; i + 1 < t->n; i++) {
        if (t->s[i] != '{' || t->s[i + 1] != '%')
            continue;
        size_t j = i + 2;
        bool lstrip = j < t->n && t->s[j] == '-';
        if (lstrip)
            j++;
        j = skip_ws(t->s, t->n, j);
        if (j + 3 <= t->n && memcmp(t->s + j, "end", 3) == 0 && j + 13 <= t->n &&
            memcmp(t->s + j + 3, "generation", 10) == 0)
            j += 3;
        if (!(j + 10 <= t->n && memcmp(t->s + j, "generation", 10) == 0))
            continue;
        j = skip_ws(t->s, t->n, j + 10);
        bool rstrip = j < t->n && t->s[j] == '-';
        if (rstrip)
            j++;
        if (!(j + 2 <= t->n && t->s[j] == '%' && t->s[j + 1] == '}'))
            continue;
        size_t after = j + 2, after_end = skip_ws(t->s, t->n, after);
        size_t before = i, l;
        while (before > last && (l = tx_ws_before(t->s + last, before - last)) > 0)
            before -= l;
        for (size_t k = last; k < before; k++)
            text_put(&o, t, k);
        if (!lstrip)
            for (size_t k = before; k < i; k++)
                text_put(&o, t, k);
        if (!rstrip)
            for (size_t k = after; k < after_end; k++)
                text_put(&o, t, k);
        last = after_end;
        i = after_end - 1;
    }
    for (size_t k = last; k < t->n; k++)
        text_put(&o, t, k);
    text_free(t);
    *t = o;
    return EA_OK;
}

/* ---- tokens ----------------------------------------------------------------- */

struct lexer {
    struct tarena *ar;
    const struct text *t;
    const char *src;
    size_t src_len;
    uint32_t *line_starts; /* source offsets where lines begin */
    size_t nlines;
    struct token *toks;
    size_t n, cap;
    size_t cur;
    int curly;
    struct ea_buf tmp;
    struct ea_error *err;
};

static int line_at(const struct lexer *lx, size_t i)
{
    uint32_t off = i < lx->t->n ? lx->t->pos[i] : (uint32_t)lx->src_len;
    size_t lo = 0, hi = lx->nlines;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (lx->line_starts[mid] <= off)
            lo = mid;
        else
            hi = mid;
    }
    return (int)lo + 1;
}

static ea_status lex_err(struct lexer *lx, size_t at, const char *what)
{
    return ea_error_set(lx->err, EA_EFORMAT, "line %d: %s", line_at(lx, at), what);
}

static ea_status push(struct lexer *lx, int type, const char *v, size_t n, size_t at)
{
    if (lx->n == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        struct token *p = ea_realloc(lx->toks, cap * sizeof *p);
        if (!p)
            return EA_ENOMEM;
        lx->toks = p;
        lx->cap = cap;
    }
    const struct tstr *s = tstr_new(lx->ar, v, n);
    if (!s)
        return EA_ENOMEM;
    lx->toks[lx->n++] = (struct token){.type = (uint8_t)type, .line = line_at(lx, at), .val = s};
    return EA_OK;
}

static int last_type(const struct lexer *lx) { return lx->n ? lx->toks[lx->n - 1].type : -1; }

/* stripTrailingWhitespace: trimEnd the last text token, drop it if empty. */
static void strip_trailing(struct lexer *lx)
{
    if (!lx->n || lx->toks[lx->n - 1].type != TK_TEXT)
        return;
    const struct tstr *v = lx->toks[lx->n - 1].val;
    size_t a, b;
    tx_trim(v->s, v->len, &a, &b, false, true);
    if (b == 0) {
        lx->n--;
        return;
    }
    /* the token's string is in the arena: shortening in place is safe */
    ((struct tstr *)v)->len = b;
    ((struct tstr *)v)->s[b] = '\0';
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* consumeWhile for digits / word characters: fails at the end of input, as
 * the reference does when a token runs into it. */
static ea_status consume_class(struct lexer *lx, bool word, size_t *end)
{
    const struct text *t = lx->t;
    size_t i = lx->cur;
    while (i < t->n && (word ? tx_word((unsigned char)t->s[i]) : is_digit(t->s[i]))) {
        i++;
        if (i >= t->n)
            return lex_err(lx, lx->cur, "unexpected end of template inside a tag");
    }
    *end = i;
    return EA_OK;
}

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

static ea_status lex_string(struct lexer *lx)
{
    const struct text *t = lx->t;
    char q = t->s[lx->cur];
    size_t start = lx->cur;
    size_t i = lx->cur + 1;
    ea__buf_reset(&lx->tmp);
    ea_status st = EA_OK;
    uint32_t pending_hi = 0; /* a \uD8xx waiting for its low half */
    while (!st) {
        if (i >= t->n)
            return lex_err(lx, start, "unterminated string literal");
        char c = t->s[i];
        if (c == q)
            break;
        if (c != '\\') {
            if (pending_hi) {
                st = ea__buf_append(&lx->tmp, "\xEF\xBF\xBD", 3);
                pending_hi = 0;
            }
            if (!st)
                st = ea__buf_putc(&lx->tmp, c);
            i++;
            if (i >= t->n)
                return lex_err(lx, start, "unterminated string literal");
            continue;
        }
        if (++i >= t->n)
            return lex_err(lx, start, "unterminated string literal");
        char e = t->s[i++];
        if (e == 'x' || e == 'u') {
            size_t len = e == 'x' ? 2 : 4;
            uint32_t v = 0;
            for (size_t k = 0; k < len; k++) {
                int h = i + k < t->n ? hexval(t->s[i + k]) : -1;
                if (h < 0)
                    return lex_err(lx, i - 2, "invalid hexadecimal escape in string literal");
                v = v * 16 + (uint32_t)h;
            }
            i += len;
            if (v >= 0xD800 && v <= 0xDBFF) {
                pending_hi = v;
                continue;
            }
            if (v >= 0xDC00 && v <= 0xDFFF && pending_hi) {
                v = 0x10000 + ((pending_hi - 0xD800) << 10) + (v - 0xDC00);
            } else if (v >= 0xD800 && v <= 0xDFFF) {
                v = 0xFFFD; /* a lone surrogate, as Node writes it */
            }
            pending_hi = 0;
            char enc[4];
            size_t l = ea__utf8_encode(v, enc);
            st = ea__buf_append(&lx->tmp, enc, l);
            continue;
        }
        if (pending_hi) {
            st = ea__buf_append(&lx->tmp, "\xEF\xBF\xBD", 3);
            pending_hi = 0;
        }
        char u;
        switch (e) {
        case 'n': u = '\n'; break;
        case 't': u = '\t'; break;
        case 'r': u = '\r'; break;
        case 'b': u = '\b'; break;
        case 'f': u = '\f'; break;
        case 'v': u = '\v'; break;
        case '\'': u = '\''; break;
        case '"': u = '"'; break;
        case '\\': u = '\\'; break;
        default: {
            char msg[64];
            snprintf(msg, sizeof msg, "unknown escape '\\%c' in string literal", e);
            return lex_err(lx, i - 2, msg);
        }
        }
        if (!st)
            st = ea__buf_putc(&lx->tmp, u);
    }
    if (pending_hi && !st)
        st = ea__buf_append(&lx->tmp, "\xEF\xBF\xBD", 3);
    if (st)
        return st == EA_ETOOBIG ? lex_err(lx, start, "string literal too long") : st;
    lx->cur = i + 1;
    return push(lx, TK_STRING, lx->tmp.data ? lx->tmp.data : "", lx->tmp.len, start);
}

static const struct {
    const char *seq;
    int type;
} TABLE[] = {
    {"{%", TK_OPEN_STMT}, {"%}", TK_CLOSE_STMT}, {"{{", TK_OPEN_EXPR}, {"}}", TK_CLOSE_EXPR},
    {"(", TK_LPAREN},     {")", TK_RPAREN},      {"{", TK_LBRACE},    {"}", TK_RBRACE},
    {"[", TK_LBRACKET},   {"]", TK_RBRACKET},    {",", TK_COMMA},     {".", TK_DOT},
    {":", TK_COLON},      {"|", TK_PIPE},        {"<=", TK_CMP},      {">=", TK_CMP},
    {"==", TK_CMP},       {"!=", TK_CMP},        {"<", TK_CMP},       {">", TK_CMP},
    {"+", TK_ADD},        {"-", TK_ADD},         {"~", TK_ADD},       {"**", TK_POW},
    {"*", TK_MUL},        {"//", TK_MUL},        {"/", TK_MUL},       {"%", TK_MUL},
    {"=", TK_EQUALS},
};

static bool at(const struct lexer *lx, const char *s)
{
    size_t l = strlen(s);
    return lx->cur + l <= lx->t->n && memcmp(lx->t->s + lx->cur, s, l) == 0;
}

static ea_status lex_tokens(struct lexer *lx)
{
    const struct text *t = lx->t;
    ea_status st;
    while (lx->cur < t->n) {
        int lt = last_type(lx);
        if (lt == -1 || lt == TK_CLOSE_STMT || lt == TK_CLOSE_EXPR || lt == TK_COMMENT) {
            size_t i = lx->cur;
            while (i < t->n &&
                   !(t->s[i] == '{' && i + 1 < t->n && (t->s[i + 1] == '%' || t->s[i + 1] == '{' || t->s[i + 1] == '#')))
                i++;
            if (i > lx->cur) {
                if ((st = push(lx, TK_TEXT, t->s + lx->cur, i - lx->cur, lx->cur)))
                    return st;
                lx->cur = i;
                continue;
            }
        }
        if (at(lx, "{#")) {
            size_t open = lx->cur;
            lx->cur += 2;
            bool strip_before = lx->cur < t->n && t->s[lx->cur] == '-';
            if (strip_before)
                lx->cur++;
            size_t cstart = lx->cur;
            while (!(lx->cur + 1 < t->n && t->s[lx->cur] == '#' && t->s[lx->cur + 1] == '}')) {
                if (lx->cur + 2 >= t->n)
                    return lex_err(lx, open, "unterminated comment {# ... #}");
                lx->cur++;
            }
            size_t cend = lx->cur;
            bool strip_after = cend > cstart && t->s[cend - 1] == '-';
            if (strip_after)
                cend--;
            if (strip_before)
                strip_trailing(lx);
            if ((st = push(lx, TK_COMMENT, t->s + cstart, cend - cstart, open)))
                return st;
            lx->cur += 2;
            if (strip_after)
                lx->cur = skip_ws(t->s, t->n, lx->cur);
            continue;
        }
        if (at(lx, "{%-")) {
            strip_trailing(lx);
            if ((st = push(lx, TK_OPEN_STMT, "{%", 2, lx->cur)))
                return st;
            lx->cur += 3;
            continue;
        }
        if (at(lx, "{{-")) {
            strip_trailing(lx);
            if ((st = push(lx, TK_OPEN_EXPR, "{{", 2, lx->cur)))
                return st;
            lx->curly = 0;
            lx->cur += 3;
            continue;
        }
        /* whitespace inside a tag; running into the end is an error */
        {
            size_t l;
            while (lx->cur < t->n && (l = tx_ws_at(t->s + lx->cur, t->n - lx->cur)) > 0) {
                lx->cur += l;
                if (lx->cur >= t->n)
                    return lex_err(lx, lx->cur, "unexpected end of template inside a tag");
            }
        }
        if (at(lx, "-%}")) {
            if ((st = push(lx, TK_CLOSE_STMT, "%}", 2, lx->cur)))
                return st;
            lx->cur = skip_ws(t->s, t->n, lx->cur + 3);
            continue;
        }
        if (at(lx, "-}}")) {
            if ((st = push(lx, TK_CLOSE_EXPR, "}}", 2, lx->cur)))
                return st;
            lx->cur = skip_ws(t->s, t->n, lx->cur + 3);
            continue;
        }
        char c = t->s[lx->cur];
        if (c == '-' || c == '+') {
            lt = last_type(lx);
            if (lt == TK_TEXT || lt == -1)
                return lex_err(lx, lx->cur, "unexpected sign outside a tag");
            if (lt != TK_IDENT && lt != TK_NUMBER && lt != TK_STRING && lt != TK_RPAREN && lt != TK_RBRACKET) {
                size_t start = lx->cur++;
                size_t end;
                if ((st = consume_class(lx, false, &end)))
                    return st;
                if (end > lx->cur && end + 1 < t->n && t->s[end] == '.' && is_digit(t->s[end + 1])) {
                    lx->cur = end + 1;
                    if ((st = consume_class(lx, false, &end)))
                        return st;
                }
                if (end > start + 1) {
                    if ((st = push(lx, TK_NUMBER, t->s + start, end - start, start)))
                        return st;
                } else if ((st = push(lx, TK_UNARY, &c, 1, start))) {
                    return st;
                }
                lx->cur = end;
                continue;
            }
        }
        bool matched = false;
        for (size_t k = 0; k < sizeof TABLE / sizeof TABLE[0]; k++) {
            if (TABLE[k].type == TK_CLOSE_EXPR && lx->curly > 0)
                continue;
            if (!at(lx, TABLE[k].seq))
                continue;
            size_t l = strlen(TABLE[k].seq);
            if ((st = push(lx, TABLE[k].type, TABLE[k].seq, l, lx->cur)))
                return st;
            if (TABLE[k].type == TK_OPEN_EXPR)
                lx->curly = 0;
            else if (TABLE[k].type == TK_LBRACE)
                lx->curly++;
            else if (TABLE[k].type == TK_RBRACE)
                lx->curly--;
            lx->cur += l;
            matched = true;
            break;
        }
        if (matched)
            continue;
        if (c == '\'' || c == '"') {
            if ((st = lex_string(lx)))
                return st;
            continue;
        }
        if (is_digit(c)) {
            size_t start = lx->cur, end;
            if ((st = consume_class(lx, false, &end)))
                return st;
            if (last_type(lx) != TK_DOT && end + 1 < t->n && t->s[end] == '.' && is_digit(t->s[end + 1])) {
                lx->cur = end + 1;
                if ((st = consume_class(lx, false, &end)))
                    return st;
            }
            if ((st = push(lx, TK_NUMBER, t->s + start, end - start, start)))
                return st;
            lx->cur = end;
            continue;
        }
        if (tx_word((unsigned char)c)) {
            size_t start = lx->cur, end;
            if ((st = consume_class(lx, true, &end)))
                return st;
            if ((st = push(lx, TK_IDENT, t->s + start, end - start, start)))
                return st;
            lx->cur = end;
            continue;
        }
        char msg[64];
        if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7F)
            snprintf(msg, sizeof msg, "unexpected character '%c' inside a tag", c);
        else
            snprintf(msg, sizeof msg, "unexpected byte 0x%02x inside a tag", (unsigned char)c);
        return lex_err(lx, lx->cur, msg);
    }
    return EA_OK;
}

ea_status tpl_lex(struct tarena *a, const char *src, size_t len, struct token **out, size_t *nout,
                  struct ea_error *err)
{
    struct text t;
    ea_status st;
    struct lexer lx = {.ar = a, .src = src, .src_len = len, .err = err};
    *out = NULL;
    *nout = 0;
    if (text_alloc(&t, len))
        return ea_error_set(err, EA_ENOMEM, "out of memory");
    memcpy(t.s, src, len);
    for (size_t i = 0; i < len; i++)
        t.pos[i] = (uint32_t)i;
    t.n = len;
    if (t.n && t.s[t.n - 1] == '\n')
        t.n--;
    size_t nl = 1;
    for (size_t i = 0; i < len; i++)
        nl += src[i] == '\n';
    lx.line_starts = ea_malloc(nl * sizeof *lx.line_starts);
    if (!lx.line_starts) {
        st = ea_error_set(err, EA_ENOMEM, "out of memory");
        goto out_free_text;
    }
    lx.line_starts[lx.nlines++] = 0;
    for (size_t i = 0; i < len; i++)
        if (src[i] == '\n')
            lx.line_starts[lx.nlines++] = (uint32_t)(i + 1);
    if ((st = pass_lstrip(&t)) || (st = pass_trim(&t)) || (st = pass_generation(&t))) {
        ea_error_set(err, st, "out of memory");
        goto out_free_lines;
    }
    lx.t = &t;
    ea__buf_init(&lx.tmp, EA_TEMPLATE_MAX_SOURCE);
    st = lex_tokens(&lx);
    if (st == EA_ENOMEM)
        ea_error_set(err, st, "out of memory");
    if (!st) {
        /* a sentinel so the parser never reads past the end */
        st = push(&lx, TK_EOF, "", 0, t.n);
        if (st)
            ea_error_set(err, st, "out of memory");
    }
    ea__buf_release(&lx.tmp);
    if (st) {
        ea_free(lx.toks);
    } else {
        *out = lx.toks;
        *nout = lx.n;
    }
out_free_lines:
    ea_free(lx.line_starts);
out_free_text:
    text_free(&t);
    return st;
}
