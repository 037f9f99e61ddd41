/* restore.c - the streaming restorer: placeholders of a request's map found
 * in an answer (fed in any chunks) are replaced by their values.
 *
 * A placeholder occurrence, at one position of the text:
 *   bracketed: OPEN [space] [marks] TOKEN [marks] [space] CLOSE
 *     OPEN  < | \< | &lt; | (JSON) \u003c or \\<        CLOSE likewise
 *     marks: up to two of * ` _ (markdown), kept around the value
 *   bare: ` TOKEN ` | * TOKEN * | ** TOKEN ** (the same mark both sides)
 *   TOKEN: NAME _ NUMBER, any case, underscores possibly escaped (\_)
 * The decision at a position depends only on the bytes from there on, and
 * is deferred (the tail held) only while those bytes end before it can be
 * made and still read as the start of a placeholder: so the output of any
 * split of a stream is the output of the whole stream, and the held tail is
 * never longer than the longest form of a placeholder of this map.
 * Does not hold: the map (redact.c).
 */
#include <stdio.h>
#include <string.h>

#include "privacy/privacy_int.h"

#define RESTORE_OUT_MAX ((size_t)256 << 20)
#define TOKEN_MAX (EA_PRIVACY_MAX_TYPE_NAME + 12)
#define MAX_MARKS 2
#define OPEN_MAX 6 /* \u003c */

struct ea_privacy_restorer {
    const ea_privacy_map *m;
    enum ea_privacy_text_form form;
    struct ea_buf pending, out;
    size_t max_name, max_digits, max_hold;
};

enum verdict { NOMATCH, MATCH, PARTIAL };

struct found {
    size_t consumed;
    const struct ea__map_entry *entry;
    const char *lead, *trail; /* markdown marks kept around the value */
    size_t n_lead, n_trail;
};

/* Does s[i..n) start with lit? 1 yes, 0 no, -1 the text ends inside a
 * possible match. Case-insensitive for letters when ci. */
static int starts(const char *s, size_t n, size_t i, const char *lit, bool ci)
{
    size_t k = 0;
    for (; lit[k]; k++) {
        if (i + k >= n)
            return -1;
        char a = s[i + k], b = lit[k];
        if (ci && a >= 'A' && a <= 'Z')
            a = (char)(a + 32);
        if (a != b)
            return 0;
    }
    return 1;
}

static bool is_tok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Could tok (uppercased, k bytes) still grow into NAME_NUMBER of this map?
 * And is it one now (*e set)? */
static bool token_viable(const struct ea_privacy_restorer *r, const char *tok, size_t k,
                         const struct ea__map_entry **e)
{
    *e = NULL;
    const ea_privacy_detector *d = r->m->det;
    bool viable = false;
    for (uint32_t t = 0; t < d->n_types; t++) {
        const char *name = d->names[t];
        size_t nl = strlen(name);
        if (k <= nl) {
            viable |= !memcmp(tok, name, k);
            continue;
        }
        if (memcmp(tok, name, nl) || tok[nl] != '_')
            continue;
        size_t nd = k - nl - 1;
        bool digits = nd <= r->max_digits && (nd == 0 || tok[nl + 1] != '0');
        for (size_t i = nl + 1; i < k && digits; i++)
            digits = tok[i] >= '0' && tok[i] <= '9';
        if (!digits)
            continue;
        viable = true;
        if (nd) {
            uint32_t num = 0;
            for (size_t i = nl + 1; i < k; i++)
                num = num * 10 + (uint32_t)(tok[i] - '0');
            if (num >= 1 && num <= r->m->count[t])
                *e = &r->m->v[r->m->by_number[t][num - 1]];
        }
    }
    return viable;
}

/* Reads a TOKEN at s[*i..n): uppercased into tok. NOMATCH when it cannot be
 * a placeholder, PARTIAL when the text ends first, MATCH with *e set. */
static enum verdict read_token(const struct ea_privacy_restorer *r, const char *s, size_t n, size_t *i,
                               bool final, const struct ea__map_entry **e)
{
    char tok[TOKEN_MAX + 1];
    size_t k = 0;
    const char *bs = r->form == EA_PRIVACY_JSON ? "\\\\_" : "\\_";
    for (;;) {
        if (*i >= n) {
            if (final)
                break;
            return token_viable(r, tok, k, e) ? PARTIAL : NOMATCH;
        }
        unsigned char c = (unsigned char)s[*i];
        int esc = c == '\\' ? starts(s, n, *i, bs, false) : 0;
        if (esc < 0 && !final)
            return token_viable(r, tok, k, e) ? PARTIAL : NOMATCH;
        if (!is_tok(c) && esc != 1)
            break;
        if (k == TOKEN_MAX)
            return NOMATCH;
        tok[k++] = esc == 1 ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : (char)c;
        *i += esc == 1 ? strlen(bs) : 1;
        if (!token_viable(r, tok, k, e))
            return NOMATCH;
    }
    token_viable(r, tok, k, e);
    return *e ? MATCH : NOMATCH;
}

/* Up to MAX_MARKS markdown marks. -1: the text ends among them. */
static int read_marks(const char *s, size_t n, size_t *i, bool final)
{
    size_t k = 0;
    while (k < MAX_MARKS) {
        if (*i >= n)
            return final ? (int)k : -1;
        char c = s[*i];
        if (c != '*' && c != '`' && c != '_')
            break;
        (*i)++;
        k++;
    }
    return (int)k;
}

static enum verdict bracket(const struct ea_privacy_restorer *r, const char *s, size_t n, size_t i,
                            bool final, size_t open_len, struct found *f)
{
    static const char *const plain_close[] = {">", "\\>", "&gt;", NULL};
    static const char *const json_close[] = {">", "\\\\>", "&gt;", "\\u003e", NULL};
    size_t p = i + open_len;
    if (p < n && s[p] == ' ')
        p++;
    else if (p >= n && !final)
        return PARTIAL;
    size_t lead = p;
    int nl = read_marks(s, n, &p, final);
    if (nl < 0)
        return PARTIAL;
    /* "_" marks would eat nothing here: a token never starts with one */
    enum verdict v = read_token(r, s, n, &p, final, &f->entry);
    if (v != MATCH)
        return v;
    size_t trail = p;
    int nt = read_marks(s, n, &p, final);
    if (nt < 0)
        return PARTIAL;
    if (p < n && s[p] == ' ')
        p++;
    else if (p >= n && !final)
        return PARTIAL;
    for (const char *const *c = r->form == EA_PRIVACY_JSON ? json_close : plain_close; *c; c++) {
        int m = starts(s, n, p, *c, true);
        if (m < 0 && !final)
            return PARTIAL;
        if (m == 1) {
            f->consumed = p + strlen(*c) - i;
            f->lead = s + lead;
            f->n_lead = (size_t)nl;
            f->trail = s + trail;
            f->n_trail = (size_t)nt;
            return MATCH;
        }
    }
    return NOMATCH;
}

static enum verdict bare(const struct ea_privacy_restorer *r, const char *s, size_t n, size_t i,
                         bool final, struct found *f)
{
    size_t w = 1;
    if (s[i] == '*') {
        if (i + 1 >= n && !final)
            return PARTIAL;
        if (i + 1 < n && s[i + 1] == '*')
            w = 2;
    }
    size_t p = i + w;
    enum verdict v = read_token(r, s, n, &p, final, &f->entry);
    if (v != MATCH)
        return v;
    for (size_t k = 0; k < w; k++) {
        if (p + k >= n)
            return final ? NOMATCH : PARTIAL;
        if (s[p + k] != s[i])
            return NOMATCH;
    }
    /* the same mark once more would make it another (longer) mark */
    if (p + w >= n && !final)
        return PARTIAL;
    if (p + w < n && s[p + w] == s[i])
        return NOMATCH;
    f->consumed = p + w - i;
    f->lead = s + i;
    f->n_lead = w;
    f->trail = s + p;
    f->n_trail = w;
    return MATCH;
}

static enum verdict match_at(const struct ea_privacy_restorer *r, const char *s, size_t n, size_t i,
                             bool final, struct found *f)
{
    static const char *const plain_open[] = {"<", "\\<", "&lt;", NULL};
    static const char *const json_open[] = {"<", "\\\\<", "&lt;", "\\u003c", NULL};
    bool partial = false;
    for (const char *const *o = r->form == EA_PRIVACY_JSON ? json_open : plain_open; *o; o++) {
        int m = starts(s, n, i, *o, true);
        if (m < 0 && !final)
            partial = true;
        if (m == 1) {
            enum verdict v = bracket(r, s, n, i, final, strlen(*o), f);
            if (v != NOMATCH)
                return v;
        }
    }
    if (partial)
        return PARTIAL;
    if (s[i] == '`' || s[i] == '*')
        return bare(r, s, n, i, final, f);
    return NOMATCH;
}

/* The value as written in this form (JSON: escaped string content). */
static ea_status put_value(struct ea_privacy_restorer *r, const struct ea__map_entry *e)
{
    if (r->form != EA_PRIVACY_JSON)
        return ea__buf_append(&r->out, e->value, e->len);
    ea_status s = EA_OK;
    for (size_t i = 0; i < e->len && !s; i++) {
        unsigned char c = (unsigned char)e->value[i];
        switch (c) {
        case '"': s = ea__buf_append(&r->out, "\\\"", 2); break;
        case '\\': s = ea__buf_append(&r->out, "\\\\", 2); break;
        case '\n': s = ea__buf_append(&r->out, "\\n", 2); break;
        case '\r': s = ea__buf_append(&r->out, "\\r", 2); break;
        case '\t': s = ea__buf_append(&r->out, "\\t", 2); break;
        default:
            s = c < 0x20 ? ea__buf_printf(&r->out, "\\u%04x", c) : ea__buf_putc(&r->out, (char)c);
        }
    }
    return s;
}

static ea_status run(struct ea_privacy_restorer *r, bool final, const char **out, size_t *out_len,
                     struct ea_error *err)
{
    ea__buf_reset(&r->out);
    const char *s = r->pending.data;
    size_t n = r->pending.len, i = 0, last = 0;
    ea_status st = EA_OK;
    while (i < n && !st) {
        char c = s[i];
        if (c != '<' && c != '\\' && c != '&' && c != '`' && c != '*') {
            i++;
            continue;
        }
        struct found f = {0};
        enum verdict v = match_at(r, s, n, i, final, &f);
        if (v == PARTIAL)
            break;
        if (v == NOMATCH) {
            i++;
            continue;
        }
        if (!(st = ea__buf_append(&r->out, s + last, i - last)) &&
            !(st = ea__buf_append(&r->out, f.lead, f.n_lead)) && !(st = put_value(r, f.entry)))
            st = ea__buf_append(&r->out, f.trail, f.n_trail);
        i += f.consumed;
        last = i;
    }
    if (!st && i > last)
        st = ea__buf_append(&r->out, s + last, i - last);
    if (st)
        return ea_error_set(err, st, "privacy: restored text too large or out of memory");
    if (i) {
        memmove(r->pending.data, s + i, n - i);
        r->pending.len = n - i;
    }
    *out = r->out.len ? r->out.data : "";
    *out_len = r->out.len;
    return EA_OK;
}

ea_status ea_privacy_restorer_create(const ea_privacy_map *m, enum ea_privacy_text_form form,
                                     ea_privacy_restorer **out, struct ea_error *err)
{
    ea_privacy_restorer *r = ea_calloc(1, sizeof *r);
    if (!(*out = r))
        return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
    r->m = m;
    r->form = form;
    ea__buf_init(&r->pending, RESTORE_OUT_MAX);
    ea__buf_init(&r->out, RESTORE_OUT_MAX);
    size_t underscores = 0;
    for (uint32_t t = 0; t < m->det->n_types; t++) {
        const char *name = m->det->names[t];
        size_t u = 0;
        for (const char *p = name; *p; p++)
            u += *p == '_';
        if (strlen(name) + u * 2 > r->max_name + underscores * 2) {
            r->max_name = strlen(name);
            underscores = u;
        }
    }
    uint32_t most = 1;
    for (uint32_t t = 0; t < m->det->n_types; t++)
        if (m->count[t] > most)
            most = m->count[t];
    for (uint32_t v = most; v; v /= 10)
        r->max_digits++;
    /* OPEN, space, marks, NAME with escaped underscores (up to 3 bytes each
     * in JSON), the separator, the number, marks, space, CLOSE */
    r->max_hold = OPEN_MAX + 1 + MAX_MARKS + r->max_name + underscores * 2 + 3 + r->max_digits +
                  MAX_MARKS + 1 + OPEN_MAX;
    return EA_OK;
}

void ea_privacy_restorer_destroy(ea_privacy_restorer *r)
{
    if (!r)
        return;
    ea__buf_release(&r->pending);
    ea__buf_release(&r->out);
    ea_free(r);
}

size_t ea_privacy_restorer_max_hold(const ea_privacy_restorer *r) { return r->max_hold; }

ea_status ea_privacy_restorer_feed(ea_privacy_restorer *r, const char *chunk, size_t n,
                                   const char **out, size_t *out_len, struct ea_error *err)
{
    if (n && ea__buf_append(&r->pending, chunk, n))
        return ea_error_set(err, r->pending.toobig ? EA_ETOOBIG : EA_ENOMEM,
                            "privacy: restorer input too large or out of memory");
    return run(r, false, out, out_len, err);
}

ea_status ea_privacy_restorer_finish(ea_privacy_restorer *r, const char **out, size_t *out_len,
                                     struct ea_error *err)
{
    return run(r, true, out, out_len, err);
}

ea_status ea_privacy_restore(const ea_privacy_map *m, enum ea_privacy_text_form form, const char *text,
                             size_t len, char **out, size_t *out_len, struct ea_error *err)
{
    *out = NULL;
    *out_len = 0;
    ea_privacy_restorer *r;
    ea_status s = ea_privacy_restorer_create(m, form, &r, err);
    if (s)
        return s;
    const char *o;
    size_t n;
    struct ea_buf b;
    ea__buf_init(&b, RESTORE_OUT_MAX);
    if (!(s = ea_privacy_restorer_feed(r, text, len, &o, &n, err)) &&
        !(s = ea__buf_append(&b, o, n) ? ea_error_set(err, EA_ENOMEM, "privacy: out of memory") : EA_OK) &&
        !(s = ea_privacy_restorer_finish(r, &o, &n, err)) &&
        !(s = ea__buf_append(&b, o, n) ? ea_error_set(err, EA_ENOMEM, "privacy: out of memory") : EA_OK)) {
        *out_len = b.len;
        *out = b.len ? ea__buf_steal(&b) : ea_strdup("");
        if (!*out)
            s = ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
    }
    ea__buf_release(&b);
    ea_privacy_restorer_destroy(r);
    return s;
}
