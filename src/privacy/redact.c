/* redact.c - the per-request placeholder map and redaction: each detected
 * value becomes <TYPE_N>, the same value the same placeholder in every text
 * of the request (a hash of the bytes, open addressing), numbers counted per
 * type from 1.
 *
 * The map keeps the values only in memory and zeroes them when destroyed.
 * Does not hold: detection (detect.c) or restoration (restore.c).
 */
#include <stdio.h>
#include <string.h>

#include "privacy/privacy_int.h"
#include "util/utf8.h"

#define MAP_MIN_SLOTS 64
#define REDACT_OUT_MAX ((size_t)256 << 20)

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

ea_status ea_privacy_map_create(const ea_privacy_detector *d, ea_privacy_map **out, struct ea_error *err)
{
    *out = ea_calloc(1, sizeof **out);
    if (!*out)
        return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
    (*out)->det = d;
    return EA_OK;
}

static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

void ea_privacy_map_destroy(ea_privacy_map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        wipe(m->v[i].value, m->v[i].len);
        ea_free(m->v[i].value);
    }
    ea_free(m->v);
    ea_free(m->slots);
    for (uint32_t t = 0; t < EA_PRIVACY_MAX_TYPES; t++)
        ea_free(m->by_number[t]);
    ea_free(m);
}

size_t ea_privacy_map_count(const ea_privacy_map *m, uint32_t type)
{
    return type < EA_PRIVACY_MAX_TYPES ? m->count[type] : 0;
}

size_t ea_privacy_map_total(const ea_privacy_map *m) { return m->n; }

const char *ea_privacy_placeholder(const ea_privacy_map *m, uint32_t type, uint32_t number, char *buf,
                                   size_t size)
{
    snprintf(buf, size, "<%s_%u>", ea_privacy_type_name(m->det, type), (unsigned)number);
    return buf;
}

static ea_status grow_slots(ea_privacy_map *m)
{
    size_t n = m->n_slots ? m->n_slots * 2 : MAP_MIN_SLOTS;
    uint32_t *s = ea_calloc(n, sizeof *s);
    if (!s)
        return EA_ENOMEM;
    for (size_t i = 0; i < m->n; i++) {
        size_t k = m->v[i].hash & (n - 1);
        while (s[k])
            k = (k + 1) & (n - 1);
        s[k] = (uint32_t)i + 1;
    }
    ea_free(m->slots);
    m->slots = s;
    m->n_slots = n;
    return EA_OK;
}

/* The entry of value, added with type when new. */
static ea_status map_get(ea_privacy_map *m, const char *value, size_t len, uint32_t type,
                         const struct ea__map_entry **out, struct ea_error *err)
{
    uint64_t h = fnv1a(value, len);
    if (m->n_slots) {
        for (size_t k = h & (m->n_slots - 1); m->slots[k]; k = (k + 1) & (m->n_slots - 1)) {
            const struct ea__map_entry *e = &m->v[m->slots[k] - 1];
            if (e->hash == h && e->len == len && !memcmp(e->value, value, len)) {
                *out = e;
                return EA_OK;
            }
        }
    }
    if (m->n >= EA_PRIVACY_MAX_ENTITIES)
        return ea_error_set(err, EA_ETOOBIG, "privacy: more than %u distinct values in one request",
                            (unsigned)EA_PRIVACY_MAX_ENTITIES);
    if ((m->n + 1) * 2 > m->n_slots && grow_slots(m))
        return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct ea__map_entry *v = ea_realloc(m->v, cap * sizeof *v);
        if (!v)
            return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
        m->v = v;
        m->cap = cap;
    }
    uint32_t number = m->count[type] + 1;
    if ((number & (number - 1)) == 0) { /* by_number grows at powers of two */
        uint32_t *bn = ea_realloc(m->by_number[type], (size_t)number * 2 * sizeof *bn);
        if (!bn)
            return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
        m->by_number[type] = bn;
    }
    char *copy = ea_malloc(len + 1);
    if (!copy)
        return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
    memcpy(copy, value, len);
    copy[len] = '\0';
    m->v[m->n] = (struct ea__map_entry){copy, len, type, number, h};
    m->by_number[type][number - 1] = (uint32_t)m->n;
    m->count[type] = number;
    size_t k = h & (m->n_slots - 1);
    while (m->slots[k])
        k = (k + 1) & (m->n_slots - 1);
    m->slots[k] = (uint32_t)m->n + 1;
    *out = &m->v[m->n++];
    return EA_OK;
}

/* JSON text: an escape (\n, \", \u00e9) is never cut. Moves start back to
 * the backslash of an escape it falls inside, and end forward past one it
 * cuts. */
static size_t escape_start(const char *t, size_t len, size_t p)
{
    /* the backslash opening an escape that covers p, if any: look back at
     * most 5 bytes (\uXXXX) */
    for (size_t back = 1; back <= 5 && back <= p; back++) {
        size_t b = p - back;
        if (t[b] != '\\')
            continue;
        size_t run = 0; /* backslashes before b: an even count means b opens an escape */
        while (run < b && t[b - 1 - run] == '\\')
            run++;
        if (run % 2)
            continue;
        size_t width = b + 1 < len && t[b + 1] == 'u' ? 6 : 2;
        if (p < b + width)
            return b;
    }
    return p;
}

/* An unescaped quote inside t[start, end): the span leaves its string. */
static bool crosses_string(const char *t, size_t start, size_t end)
{
    for (size_t i = start; i < end; i++) {
        if (t[i] == '\\') {
            i++; /* the escaped byte */
            continue;
        }
        if (t[i] == '"')
            return true;
    }
    return false;
}

static void json_adjust(const char *t, size_t len, size_t *start, size_t *end)
{
    *start = escape_start(t, len, *start);
    size_t b = escape_start(t, len, *end);
    if (b < *end) { /* end falls inside an escape: take all of it */
        size_t width = b + 1 < len && t[b + 1] == 'u' ? 6 : 2;
        *end = b + width <= len ? b + width : len;
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* JSON string content s[0..n) unescaped into out (at most n bytes: an
 * escape never grows). Unknown escapes are kept as written. */
static size_t json_unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\' || i + 1 >= n) {
            out[o++] = s[i++];
            continue;
        }
        char c = s[i + 1];
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *simple = c ? strchr(from, c) : NULL;
        if (simple) {
            out[o++] = to[simple - from];
            i += 2;
            continue;
        }
        int h[4];
        if (c == 'u' && i + 6 <= n && (h[0] = hexval(s[i + 2])) >= 0 && (h[1] = hexval(s[i + 3])) >= 0 &&
            (h[2] = hexval(s[i + 4])) >= 0 && (h[3] = hexval(s[i + 5])) >= 0) {
            uint32_t cp = (uint32_t)(h[0] << 12 | h[1] << 8 | h[2] << 4 | h[3]);
            size_t used = 6;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 12 <= n && s[i + 6] == '\\' && s[i + 7] == 'u') {
                int l[4] = {hexval(s[i + 8]), hexval(s[i + 9]), hexval(s[i + 10]), hexval(s[i + 11])};
                uint32_t lo = l[0] < 0 || l[1] < 0 || l[2] < 0 || l[3] < 0 ? 0
                              : (uint32_t)(l[0] << 12 | l[1] << 8 | l[2] << 4 | l[3]);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    used = 12;
                }
            }
            char u[4];
            size_t k = cp >= 0xD800 && cp < 0xE000 ? 0 : ea__utf8_encode(cp, u);
            if (k && k <= used) {
                memcpy(out + o, u, k);
                o += k;
                i += used;
                continue;
            }
        }
        out[o++] = s[i++]; /* not an escape we read: kept */
    }
    return o;
}

ea_status ea_privacy_redact(const ea_privacy_detector *d, ea_privacy_map *m, const char *text,
                            size_t len, enum ea_privacy_text_form form, char **out,
                            size_t *out_len, struct ea_privacy_entities *ents,
                            struct ea_error *err)
{
    *out = NULL;
    *out_len = 0;
    struct ea_privacy_entities local = {0}, *e = ents ? ents : &local;
    ea_status s = ea_privacy_detect(d, text, len, e, err);
    if (s)
        goto out_release;
    struct ea_buf b;
    ea__buf_init(&b, REDACT_OUT_MAX);
    size_t last = 0, scan = 0;
    bool in_str = false; /* JSON form: whether text[scan] is inside a string */
    char ph[EA_PRIVACY_MAX_PLACEHOLDER];
    for (size_t i = 0; i < e->n && !s; i++) {
        struct ea_privacy_entity *x = &e->v[i];
        if (form == EA_PRIVACY_JSON)
            json_adjust(text, len, &x->start, &x->end);
        if (x->start < last) /* widened into the previous one: merge into it */
            x->start = last;
        if (x->end <= x->start)
            continue;
        bool quote = false; /* JSON form, a value outside strings (a number): "<PHONE_1>" */
        if (form == EA_PRIVACY_JSON) {
            for (; scan < x->start; scan++) {
                if (in_str && text[scan] == '\\')
                    scan++;
                else if (text[scan] == '"')
                    in_str = !in_str;
            }
            quote = !in_str;
            if (crosses_string(text, x->start, x->end)) {
                /* a placeholder there would break the JSON: fail closed */
                s = ea_error_set(err, EA_EUNSUPPORTED,
                                 "privacy: a detected %s value crosses a JSON string boundary",
                                 ea_privacy_type_name(d, x->type));
                break;
            }
            scan = x->end;
        }
        const struct ea__map_entry *me = NULL;
        /* the map holds values as plain text, whatever the form they came in:
         * restored into JSON they are escaped again (restore.c) */
        const char *v = text + x->start;
        size_t vn = x->end - x->start;
        char *plain = NULL;
        if (form == EA_PRIVACY_JSON && memchr(v, '\\', vn)) {
            if (!(plain = ea_malloc(vn))) {
                s = ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
                break;
            }
            vn = json_unescape(v, vn, plain);
            v = plain;
        }
        s = map_get(m, v, vn, x->type, &me, err);
        if (plain)
            wipe(plain, vn);
        ea_free(plain);
        if (s)
            break;
        x->type = me->type;
        x->number = me->number;
        s = ea__buf_append(&b, text + last, x->start - last);
        if (!s && quote)
            s = ea__buf_putc(&b, '"');
        if (!s)
            s = ea__buf_puts(&b, ea_privacy_placeholder(m, me->type, me->number, ph, sizeof ph));
        if (!s && quote)
            s = ea__buf_putc(&b, '"');
        last = x->end;
    }
    if (!s)
        s = ea__buf_append(&b, text + last, len - last);
    if (s) {
        if (s == EA_ETOOBIG || s == EA_ENOMEM)
            if (!err || !err->msg[0] || err->status != s)
                ea_error_set(err, s, "privacy: redacted text too large or out of memory");
        ea__buf_release(&b);
        goto out_release;
    }
    *out_len = b.len;
    *out = b.len ? ea__buf_steal(&b) : ea_strdup("");
    ea__buf_release(&b);
    if (!*out)
        s = ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
out_release:
    if (s && ents)
        ents->n = 0;
    ea_privacy_entities_release(&local);
    return s;
}

ea_status ea_privacy_redact_texts(const ea_privacy_detector *d, ea_privacy_map *m, size_t n,
                                  const char *const *texts, const size_t *lens,
                                  const enum ea_privacy_text_form *forms, char **outs,
                                  size_t *out_lens, struct ea_error *err)
{
    ea_status s = EA_OK;
    struct ea_privacy_entities ents = {0}; /* one list for every text: one allocation */
    for (size_t i = 0; i < n; i++)
        outs[i] = NULL;
    for (size_t i = 0; i < n && !s; i++)
        s = ea_privacy_redact(d, m, texts[i], lens[i], forms ? forms[i] : EA_PRIVACY_PLAIN, &outs[i],
                              &out_lens[i], &ents, err);
    ea_privacy_entities_release(&ents);
    if (s)
        for (size_t i = 0; i < n; i++) {
            ea_free(outs[i]);
            outs[i] = NULL;
            out_lens[i] = 0;
        }
    return s;
}
