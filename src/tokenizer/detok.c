/* detok.c - ids back to text: single pieces, whole id lists, and the
 * streaming detokenizer that only ever emits complete, valid UTF-8.
 *
 * Invalid UTF-8 (when replacing is asked for, and always in the stream) is
 * replaced following Unicode's "maximal subpart" practice: a lead byte plus
 * the continuation bytes that still fit it become one U+FFFD, any other bad
 * byte one U+FFFD each; a prefix that may still be completed by later bytes
 * is held instead, and becomes one U+FFFD only when the text ends.
 * Does not hold: how pieces are built (vocab.c).
 */
#include <string.h>

#include "tokenizer/tok_int.h"

#define REPLACEMENT "\xef\xbf\xbd"

ea_status ea_token_piece(const ea_tokenizer *t, int32_t id, bool special, const char **p,
                         size_t *n)
{
    if (!t || id < 0 || (uint32_t)id >= t->n_vocab) {
        *p = "";
        *n = 0;
        return EA_ERANGE;
    }
    const struct ea__tok_entry *e = &t->tok[id];
    *p = t->pieces + e->piece_off;
    *n = e->piece_len;
    if (!special && (e->attr & (EA_TOKEN_ATTR_CONTROL | EA_TOKEN_ATTR_UNKNOWN)))
        *n = 0;
    return EA_OK;
}

/* ---- output with a size count -------------------------------------------- */

struct sink {
    char *out;
    size_t cap, n; /* n counts every byte, written or not */
};

static void sink_put(struct sink *k, const void *p, size_t n)
{
    if (k->n < k->cap) {
        size_t room = k->cap - k->n;
        memcpy(k->out + k->n, p, n < room ? n : room);
    }
    k->n += n;
}

/* ---- UTF-8 validation ---------------------------------------------------- */

enum { U_CHAR, U_INCOMPLETE, U_INVALID };

/* Classifies the bytes at s[0..n) (n >= 1): a complete valid character of
 * *len bytes; or an incomplete but so far valid prefix (*len = n); or an
 * invalid maximal subpart of *len >= 1 bytes. Ranges: Unicode table 3-7. */
static int classify(const unsigned char *s, size_t n, size_t *len)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c < 0x80) {
        *len = 1;
        return U_CHAR;
    } else if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        *len = 1;
        return U_INVALID;
    }
    for (size_t i = 1; i < need; i++) {
        if (i >= n) {
            *len = n;
            return U_INCOMPLETE;
        }
        unsigned char b = s[i];
        bool ok = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
        if (!ok) {
            *len = i;
            return U_INVALID;
        }
    }
    *len = need;
    return U_CHAR;
}

/* Emits the valid part of held[0..*n_held) + p[0..n) to k and keeps an
 * incomplete tail (<= 3 bytes) in held. Held bytes are always a valid but
 * incomplete prefix, so only the first character can span both. */
static void emit_valid(struct sink *k, unsigned char *held, unsigned *n_held, const char *p,
                       size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0, len;
    if (*n_held) {
        unsigned char buf[8];
        size_t nh = *n_held, take = n < 4 ? n : 4;
        memcpy(buf, held, nh);
        memcpy(buf + nh, s, take);
        int c = classify(buf, nh + take, &len);
        *n_held = 0;
        if (c == U_INCOMPLETE) { /* still short: all of p joins the held bytes */
            memcpy(held, buf, len);
            *n_held = (unsigned)len;
            return;
        }
        sink_put(k, c == U_CHAR ? (const void *)buf : (const void *)REPLACEMENT,
                 c == U_CHAR ? len : 3);
        i = len - nh; /* len >= nh: the held prefix itself was valid */
    }
    while (i < n) {
        int c = classify(s + i, n - i, &len);
        if (c == U_CHAR) {
            sink_put(k, s + i, len);
        } else if (c == U_INVALID) {
            sink_put(k, REPLACEMENT, 3);
        } else {
            memcpy(held, s + i, len);
            *n_held = (unsigned)len;
        }
        i += len;
    }
}

/* ---- whole lists --------------------------------------------------------- */

ea_status ea_detokenize(const ea_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                        char *out, size_t cap, size_t *n_out, struct ea_error *err)
{
    if (n_out)
        *n_out = 0;
    if (!t || (!ids && n) || (!out && cap) || !n_out)
        return ea_error_set(err, EA_EINVAL, "detokenize: NULL argument");
    struct sink k = {out, cap, 0};
    bool strip = (flags & EA_DETOK_STRIP_SPACE) && t->add_space_prefix;
    unsigned char held[4];
    unsigned n_held = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p;
        size_t len;
        if (ea_token_piece(t, ids[i], flags & EA_DETOK_SPECIAL, &p, &len))
            return ea_error_set(err, EA_ERANGE, "detokenize: id %d at position %zu is outside the "
                                "vocabulary of %u", ids[i], i, t->n_vocab);
        if (strip && len) {
            if (p[0] == ' ')
                p++, len--;
            strip = false;
        }
        if (flags & EA_DETOK_REPLACE_INVALID)
            emit_valid(&k, held, &n_held, p, len);
        else
            sink_put(&k, p, len);
    }
    if (n_held)
        sink_put(&k, REPLACEMENT, 3);
    *n_out = k.n;
    if (k.n > cap)
        return ea_error_set(err, EA_ETOOBIG, "detokenize: %zu bytes do not fit in %zu", k.n, cap);
    if (k.n < cap)
        out[k.n] = '\0';
    return EA_OK;
}

/* ---- streaming ------------------------------------------------------------ */

void ea_detok_init(struct ea_detok *d, const ea_tokenizer *t, unsigned flags)
{
    memset(d, 0, sizeof *d);
    d->tok = t;
    d->flags = flags;
}

size_t ea_detok_max_output(const ea_tokenizer *t)
{
    /* every byte of held + piece may become a 3-byte U+FFFD */
    return 3 * (t->max_piece + 3);
}

ea_status ea_detok_push(struct ea_detok *d, int32_t id, char *out, size_t cap, size_t *n_out,
                        struct ea_error *err)
{
    if (n_out)
        *n_out = 0;
    if (!d || !d->tok || (!out && cap) || !n_out)
        return ea_error_set(err, EA_EINVAL, "detok: NULL argument");
    const char *p;
    size_t len;
    if (ea_token_piece(d->tok, id, d->flags & EA_DETOK_SPECIAL, &p, &len))
        return ea_error_set(err, EA_ERANGE, "detok: id %d is outside the vocabulary of %u", id,
                            d->tok->n_vocab);
    unsigned char held[4];
    unsigned n_held = d->n_held;
    memcpy(held, d->held, sizeof held);
    struct sink k = {out, cap, 0};
    emit_valid(&k, held, &n_held, p, len);
    *n_out = k.n;
    if (k.n > cap)
        return ea_error_set(err, EA_ETOOBIG, "detok: %zu bytes do not fit in %zu", k.n, cap);
    memcpy(d->held, held, sizeof held);
    d->n_held = n_held;
    return EA_OK;
}

ea_status ea_detok_flush(struct ea_detok *d, char *out, size_t cap, size_t *n_out,
                         struct ea_error *err)
{
    if (n_out)
        *n_out = 0;
    if (!d || (!out && cap) || !n_out)
        return ea_error_set(err, EA_EINVAL, "detok: NULL argument");
    if (d->n_held) {
        *n_out = 3;
        if (cap < 3)
            return ea_error_set(err, EA_ETOOBIG, "detok: 3 bytes do not fit in %zu", cap);
        memcpy(out, REPLACEMENT, 3);
    }
    d->n_held = 0;
    return EA_OK;
}
