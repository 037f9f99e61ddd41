/* tokenize.c - ea_tokenize: splits the text at special/added tokens, hands
 * each plain-text fragment to the encoder of the vocabulary's kind, and adds
 * BOS/EOS (CLS/SEP for BERT) when asked, following llama.cpp's
 * llama_vocab::tokenize.
 *
 * Special tokens are searched longest first; each occurrence cuts the text
 * fragments around it. Control and unknown tokens take part only with
 * EA_TOK_PARSE_SPECIAL; user-defined (added) tokens always do, as in Hugging
 * Face tokenizers. Tokens with LSTRIP/RSTRIP eat the ASCII whitespace on
 * that side. ea_tokenize_plain names byte ranges (message data in a chat
 * prompt) where no special or added token is recognised at all: an
 * occurrence overlapping one stays text, so untrusted text cannot become a
 * control token, while the text around it is encoded exactly as before.
 * Does not hold: the encoders themselves (spm.c, bpe.c, wpm.c).
 */
#include <string.h>

#include "tokenizer/tok_int.h"

struct frag {
    uint32_t off, len;
    int32_t id; /* >= 0: a special token; -1: text[off, off+len) */
};

struct frags {
    struct frag *v;
    size_t n, cap;
};

static ea_status frags_push(struct frags *f, uint32_t off, uint32_t len, int32_t id,
                            struct ea_error *err)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        struct frag *v = ea_realloc(f->v, cap * sizeof *v);
        if (!v)
            return ea_error_set(err, EA_ENOMEM, "tokenizer: out of memory");
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n].off = off;
    f->v[f->n].len = len;
    f->v[f->n].id = id;
    f->n++;
    return EA_OK;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static const char *find(const char *hay, size_t n, const char *needle, size_t k)
{
    if (k == 0 || k > n)
        return NULL;
    const char *end = hay + n - k;
    for (const char *p = hay; p <= end;) {
        p = memchr(p, needle[0], (size_t)(end - p) + 1);
        if (!p)
            return NULL;
        if (memcmp(p, needle, k) == 0)
            return p;
        p++;
    }
    return NULL;
}

/* Byte ranges where no special or added token may be recognised (sorted,
 * disjoint): the message data of a chat prompt. */
struct plain {
    const struct ea_text_span *v;
    size_t n;
};

/* Whether [off, off+len) overlaps a plain range. */
static bool in_plain(const struct plain *pl, size_t off, size_t len)
{
    size_t lo = 0, hi = pl->n;
    while (lo < hi) { /* first range that ends after off */
        size_t mid = lo + (hi - lo) / 2;
        if (pl->v[mid].off + pl->v[mid].len <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < pl->n && pl->v[lo].off < off + len;
}

/* Cuts every text fragment of *cur at the occurrences of token id that lie
 * outside the plain ranges. */
static ea_status split_at(const ea_tokenizer *t, const char *text, int32_t id, const struct plain *pl,
                          struct frags *cur, struct frags *next, struct ea_error *err)
{
    const char *tt = ea__tok_text(t, id);
    uint32_t tl = t->tok[id].len, attr = t->tok[id].attr;
    /* cheap pre-check: most special tokens do not occur at all */
    bool any = false;
    for (size_t i = 0; i < cur->n && !any; i++)
        any = cur->v[i].id < 0 && find(text + cur->v[i].off, cur->v[i].len, tt, tl);
    if (!any)
        return EA_OK;
    next->n = 0;
    ea_status s = EA_OK;
    for (size_t i = 0; i < cur->n && !s; i++) {
        struct frag f = cur->v[i];
        if (f.id >= 0) {
            s = frags_push(next, f.off, f.len, f.id, err);
            continue;
        }
        uint32_t base = f.off, blen = f.len, from = base;
        while (blen > 0 && !s) {
            const char *p = find(text + from, base + blen - from, tt, tl);
            if (p && in_plain(pl, (size_t)(p - text), tl)) {
                /* written by message data: text, not a token; an occurrence
                 * may still start inside this one */
                from = (uint32_t)(p - text) + 1;
                continue;
            }
            if (!p) {
                s = frags_push(next, base, blen, -1, err);
                break;
            }
            uint32_t m = (uint32_t)(p - text);
            uint32_t llen = m - base;
            if (attr & EA_TOKEN_ATTR_LSTRIP)
                while (llen > 0 && is_space(text[base + llen - 1]))
                    llen--;
            if (llen > 0 && (s = frags_push(next, base, llen, -1, err)))
                break;
            if ((s = frags_push(next, m, tl, id, err)))
                break;
            uint32_t roff = m + tl, rlen = base + blen - roff;
            if (attr & EA_TOKEN_ATTR_RSTRIP)
                while (rlen > 0 && is_space(text[roff])) {
                    roff++;
                    rlen--;
                }
            base = from = roff;
            blen = rlen;
        }
    }
    if (!s) {
        struct frags tmp = *cur;
        *cur = *next;
        *next = tmp;
    }
    return s;
}

static ea_status partition(const ea_tokenizer *t, const char *text, uint32_t len,
                           bool parse_special, const struct plain *pl, struct frags *out,
                           struct ea_error *err)
{
    out->n = 0;
    if (len == 0)
        return EA_OK;
    ea_status s = frags_push(out, 0, len, -1, err);
    struct frags next = {0};
    for (uint32_t i = 0; i < t->n_special && !s; i++) {
        int32_t id = t->special[i];
        if (!parse_special && (t->tok[id].attr & (EA_TOKEN_ATTR_CONTROL | EA_TOKEN_ATTR_UNKNOWN)))
            continue;
        s = split_at(t, text, id, pl, out, &next, err);
    }
    ea_free(next.v);
    return s;
}

/* Tokenizes into ids (whose max the caller may have lowered). */
static ea_status tokenize_ids(const ea_tokenizer *t, const char *text, size_t len, unsigned flags,
                              const struct plain *pl, struct ea__ids *ids, struct ea_error *err)
{
    if (len > EA_TOKENIZE_MAX_INPUT)
        return ea_error_set(err, EA_ETOOBIG, "tokenize: %zu bytes of text, the limit is %zu", len,
                            EA_TOKENIZE_MAX_INPUT);
    bool add = flags & EA_TOK_ADD_SPECIAL;
    struct frags frags = {0};
    ea_status s = partition(t, text, (uint32_t)len, flags & EA_TOK_PARSE_SPECIAL, pl, &frags, err);
    if (s)
        goto out;
    /* Bound: an input byte yields at most 3 ids (U+FFFD or an escaped space
     * spelled in byte tokens), a fragment 3 more for the space prefix or an
     * unknown word, plus BOS/EOS/SEP. */
    size_t bound = 3 * len + 3 * frags.n + 4;
    if (!ids->max || ids->max > bound)
        ids->max = bound;

    if (add && t->add_bos && (s = ea__ids_push(ids, t->bos, err)))
        goto out;
    bool prev_special = true; /* SPM: the first text fragment gets the prefix */
    for (size_t i = 0; i < frags.n && !s; i++) {
        const struct frag *f = &frags.v[i];
        if (f->id >= 0) {
            s = ea__ids_push(ids, f->id, err);
            prev_special = true;
            continue;
        }
        switch (t->kind) {
        case EA_TOKENIZER_SPM:
            s = ea__spm_encode(t, text + f->off, f->len, t->add_space_prefix && prev_special, ids,
                               err);
            break;
        case EA_TOKENIZER_BPE:
            s = ea__bpe_encode(t, text + f->off, f->len, ids, err);
            break;
        case EA_TOKENIZER_WPM:
            s = ea__wpm_encode(t, text + f->off, f->len, ids, err);
            break;
        }
        prev_special = false;
    }
    if (s)
        goto out;
    if (add && t->kind == EA_TOKENIZER_WPM) {
        if (t->add_sep)
            s = ea__ids_push(ids, t->sep, err);
    } else if (add && t->add_eos) {
        s = ea__ids_push(ids, t->eos, err);
    }
out:
    ea_free(frags.v);
    return s;
}

ea_status ea_tokenize(const ea_tokenizer *t, const char *text, size_t len, unsigned flags,
                      int32_t *out, size_t cap, size_t *n_out, struct ea_error *err)
{
    if (n_out)
        *n_out = 0;
    if (!t || (!text && len) || (!out && cap) || !n_out)
        return ea_error_set(err, EA_EINVAL, "tokenize: NULL argument");
    struct ea__ids ids = {0};
    struct plain none = {0};
    ea_status s = tokenize_ids(t, text, len, flags, &none, &ids, err);
    if (s)
        goto out;
    *n_out = ids.n;
    if (ids.n > cap) {
        if (cap)
            memcpy(out, ids.v, cap * sizeof *out);
        s = ea_error_set(err, EA_ETOOBIG, "tokenize: %zu tokens do not fit in %zu", ids.n, cap);
        goto out;
    }
    if (ids.n)
        memcpy(out, ids.v, ids.n * sizeof *out);
out:
    ea_free(ids.v);
    return s;
}

ea_status ea_tokenize_alloc(const ea_tokenizer *t, const char *text, size_t len, unsigned flags,
                            size_t max, int32_t **out, size_t *n_out, struct ea_error *err)
{
    return ea_tokenize_plain(t, text, len, flags, NULL, 0, max, out, n_out, err);
}

ea_status ea_tokenize_plain(const ea_tokenizer *t, const char *text, size_t len, unsigned flags,
                            const struct ea_text_span *plain, size_t n_plain, size_t max,
                            int32_t **out, size_t *n_out, struct ea_error *err)
{
    if (out)
        *out = NULL;
    if (n_out)
        *n_out = 0;
    if (!t || (!text && len) || !out || !n_out || !max || (!plain && n_plain))
        return ea_error_set(err, EA_EINVAL, "tokenize: NULL argument or zero maximum");
    for (size_t i = 0; i < n_plain; i++)
        if (plain[i].len > len || plain[i].off > len - plain[i].len ||
            (i && plain[i].off < plain[i - 1].off + plain[i - 1].len))
            return ea_error_set(err, EA_EINVAL,
                                "tokenize: plain range %zu is out of the text or out of order", i);
    struct plain pl = {plain, n_plain};
    struct ea__ids ids = {.max = max};
    ea_status s = tokenize_ids(t, text, len, flags, &pl, &ids, err);
    if (s) {
        ea_free(ids.v);
        return s;
    }
    if (!ids.v && !(ids.v = ea_malloc(sizeof *ids.v))) /* a valid pointer even for no ids */
        return ea_error_set(err, EA_ENOMEM, "tokenize: out of memory");
    *out = ids.v;
    *n_out = ids.n;
    return EA_OK;
}
