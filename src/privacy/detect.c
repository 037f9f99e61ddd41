/* detect.c - the detector: pattern compilation (PCRE2 byte mode, JIT when
 * the platform has it), the three ways a pattern is scanned (whole text,
 * word starts through a two-byte prefix table, anchor bytes walked back
 * from), context words, and overlap resolution (longest span first, then
 * highest score; hard negatives win like any other span and are dropped).
 *
 * Thread safety: after ea_privacy_detector_create nothing in the detector
 * changes; each ea_privacy_detect call makes its own match data.
 * Does not hold: the patterns themselves (builtin.c), the configuration
 * (config.c), placeholders (redact.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "privacy/privacy_int.h"

/* Backtracking budget of one match attempt: far above what the built-in
 * patterns need on any input (they are linear), low enough that a custom
 * pattern with nested quantifiers fails (closed) instead of hanging. */
#define MATCH_LIMIT 2000000u
#define DEPTH_LIMIT 100000u
#define PREFIX_BITS 65536u
#define PATTERN_TEXT_MAX ((size_t)1 << 20)

static void *pcre_alloc(size_t n, void *ud)
{
    (void)ud;
    return ea_malloc(n);
}
static void pcre_free(void *p, void *ud)
{
    (void)ud;
    ea_free(p);
}

static unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c; }

static bool is_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c >= 0x80;
}

/* ---- building -------------------------------------------------------- */

ea_status ea__privacy_phrases_regex(struct ea_buf *b, const char *const *phrases, size_t n,
                                    bool caseless)
{
    ea_status s = ea__buf_puts(b, caseless ? "(?i:" : "(?:");
    for (size_t i = 0; i < n && !s; i++) {
        if (i)
            s = ea__buf_putc(b, '|');
        for (const char *p = phrases[i]; *p && !s; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == ' ')
                s = ea__buf_puts(b, "[ \\t]+");
            else if (c == '\'' )
                s = ea__buf_puts(b, "(?:'|\\xe2\\x80\\x99)");
            else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80)
                s = ea__buf_putc(b, (char)c);
            else
                s = ea__buf_printf(b, "\\x%02x", c);
        }
    }
    return s ? s : ea__buf_putc(b, ')');
}

static void prefix_mark(uint8_t *t, const char *w)
{
    unsigned char a = lower((unsigned char)w[0]);
    if (!a)
        return;
    unsigned char b2 = (unsigned char)w[1];
    if (!b2 || b2 == ' ') { /* a one-byte word: any second byte */
        for (unsigned k = 0; k < 256; k++)
            t[(a << 5) | (k >> 3)] |= (uint8_t)(1u << (k & 7));
        return;
    }
    if (b2 == '\'') /* the apostrophe is also written U+2019 (E2 80 99) */
        t[(a << 5) | (0xE2 >> 3)] |= (uint8_t)(1u << (0xE2 & 7));
    b2 = lower(b2);
    t[(a << 5) | (b2 >> 3)] |= (uint8_t)(1u << (b2 & 7));
}

ea_status ea__privacy_add_pattern(ea_privacy_detector *d, const struct ea__pattern_def *def,
                                  uint32_t options, struct ea_error *err)
{
    if (d->n_pats == d->cap_pats) {
        size_t cap = d->cap_pats ? d->cap_pats * 2 : 32;
        struct ea__pattern *v = ea_realloc(d->pats, cap * sizeof *v);
        if (!v)
            return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
        d->pats = v;
        d->cap_pats = cap;
    }
    struct ea__pattern *p = &d->pats[d->n_pats];
    memset(p, 0, sizeof *p);
    int code;
    PCRE2_SIZE at;
    p->re = pcre2_compile((PCRE2_SPTR)def->regex, PCRE2_ZERO_TERMINATED, options, &code, &at, d->cc);
    if (!p->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        bool oom = code == PCRE2_ERROR_HEAP_FAILED || code == PCRE2_ERROR_NOMEMORY;
        return ea_error_set(err, oom ? EA_ENOMEM : EA_EFORMAT, "%s at offset %zu", (const char *)msg,
                            (size_t)at);
    }
    uint32_t captures = 0;
    pcre2_pattern_info(p->re, PCRE2_INFO_CAPTURECOUNT, &captures);
    if (def->group > captures) {
        pcre2_code_free(p->re);
        return ea_error_set(err, EA_EINTERNAL, "pattern has no group %u", (unsigned)def->group);
    }
    /* JIT is an optimisation only: without it the interpreter runs */
    (void)pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);
    if (captures + 1 > d->max_capture_pairs)
        d->max_capture_pairs = captures + 1;
    p->type = def->type;
    p->scan = def->scan;
    p->anchors = def->anchors;
    p->back = def->back;
    p->max_back = def->max_back;
    p->group = def->group;
    p->score = def->score;
    p->check = def->check;
    p->ctx = def->ctx;
    if (def->scan == EA__SCAN_WORDS) {
        if (!(p->prefix = ea_calloc(PREFIX_BITS / 8, 1))) {
            pcre2_code_free(p->re);
            return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
        }
        for (const char *const *w = def->words; *w; w++)
            prefix_mark(p->prefix, *w);
    }
    d->n_pats++;
    return EA_OK;
}

ea_status ea_privacy_detector_create(const struct ea_config_node *privacy, const char *file,
                                     ea_privacy_detector **out, struct ea_error *err)
{
    *out = NULL;
    ea_privacy_detector *d = ea_calloc(1, sizeof *d);
    if (!d)
        return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
    ea_status s = EA_OK;
    d->gc = pcre2_general_context_create(pcre_alloc, pcre_free, NULL);
    d->cc = d->gc ? pcre2_compile_context_create(d->gc) : NULL;
    d->mc = d->gc ? pcre2_match_context_create(d->gc) : NULL;
    if (!d->cc || !d->mc) {
        s = ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
        goto out_destroy;
    }
    pcre2_set_match_limit(d->mc, MATCH_LIMIT);
    pcre2_set_depth_limit(d->mc, DEPTH_LIMIT);
    d->threshold = 0.5f;
    d->n_types = EA_PII_BUILTIN_COUNT;
    for (uint32_t t = 0; t < EA_PII_BUILTIN_COUNT; t++) {
        snprintf(d->names[t], sizeof d->names[t], "%s", ea__privacy_builtin_names[t]);
        d->enabled[t] = true;
    }
    if ((s = ea__privacy_add_builtins(d, err)))
        goto out_destroy;
    if (privacy && (s = ea__privacy_config_apply(d, privacy, file ? file : "config", err)))
        goto out_destroy;
    *out = d;
    return EA_OK;
out_destroy:
    ea_privacy_detector_destroy(d);
    return s;
}

void ea_privacy_detector_destroy(ea_privacy_detector *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_pats; i++) {
        pcre2_code_free(d->pats[i].re);
        ea_free(d->pats[i].prefix);
    }
    ea_free(d->pats);
    for (size_t i = 0; i < d->n_allow; i++)
        ea_free(d->allow[i]);
    ea_free(d->allow);
    pcre2_match_context_free(d->mc);
    pcre2_compile_context_free(d->cc);
    pcre2_general_context_free(d->gc);
    ea_free(d);
}

uint32_t ea_privacy_type_count(const ea_privacy_detector *d) { return d->n_types; }

const char *ea_privacy_type_name(const ea_privacy_detector *d, uint32_t type)
{
    return type < d->n_types ? d->names[type] : "?";
}

bool ea_privacy_type_find(const ea_privacy_detector *d, const char *name, uint32_t *type)
{
    for (uint32_t t = 0; t < d->n_types; t++)
        if (!strcasecmp(d->names[t], name)) {
            *type = t;
            return true;
        }
    return false;
}

bool ea_privacy_type_enabled(const ea_privacy_detector *d, uint32_t type)
{
    return type < d->n_types && d->enabled[type];
}

void ea_privacy_entities_release(struct ea_privacy_entities *e)
{
    if (!e)
        return;
    ea_free(e->v);
    e->v = NULL;
    e->n = e->cap = 0;
}

/* ---- scanning -------------------------------------------------------- */

struct scan {
    const ea_privacy_detector *d;
    const char *text;
    size_t len;
    pcre2_match_data *md;
    struct ea_privacy_entities *c; /* candidates; score kept, type may be NEGATIVE */
    struct ea_error *err;
};

static ea_status push(struct scan *sc, size_t start, size_t end, uint32_t type, float score)
{
    struct ea_privacy_entities *e = sc->c;
    if (e->n == e->cap) {
        if (e->n >= 4 * (size_t)EA_PRIVACY_MAX_ENTITIES)
            return ea_error_set(sc->err, EA_ETOOBIG, "privacy: more than %u candidate entities in one text",
                                4u * EA_PRIVACY_MAX_ENTITIES);
        size_t cap = e->cap ? e->cap * 2 : 32;
        struct ea_privacy_entity *v = ea_realloc(e->v, cap * sizeof *v);
        if (!v)
            return ea_error_set(sc->err, EA_ENOMEM, "privacy: out of memory");
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = (struct ea_privacy_entity){start, end, type, score, 0};
    return EA_OK;
}

/* Where the last of words stands as a whole word (or, ending in '*', a word
 * prefix) in text[from, to); SIZE_MAX when none does. */
static size_t window_find(const char *text, size_t from, size_t to, const char *const *words)
{
    size_t best = SIZE_MAX;
    for (const char *const *w = words; *w; w++) {
        size_t wl = strlen(*w);
        bool prefix = wl && (*w)[wl - 1] == '*';
        if (prefix)
            wl--;
        if (wl > to - from)
            continue;
        for (size_t i = from; i + wl <= to; i++) {
            if (lower((unsigned char)text[i]) != (unsigned char)(*w)[0])
                continue;
            if (i > 0 && is_word((unsigned char)text[i - 1]) && is_word((unsigned char)(*w)[0]))
                continue;
            size_t k = 1;
            while (k < wl && lower((unsigned char)text[i + k]) == (unsigned char)(*w)[k])
                k++;
            if (k < wl)
                continue;
            if (!prefix && i + wl < to && is_word((unsigned char)text[i + wl]) &&
                is_word((unsigned char)(*w)[wl - 1]))
                continue; /* "account" is not "accounting" */
            if (best == SIZE_MAX || i > best)
                best = i;
        }
    }
    return best;
}

/* The window: up to n bytes before start, not across a line break. */
static size_t window_from(const char *text, size_t start, size_t n)
{
    size_t from = start > n ? start - n : 0;
    for (size_t i = start; i > from; i--)
        if (text[i - 1] == '\n' || (text[i - 1] == 'n' && i >= 2 && text[i - 2] == '\\'))
            return i;
    return from;
}

/* The nearer of a lowering and a raising word decides ("account ... call
 * me at" is a phone number); with neither the score stays. */
static float apply_context(const struct scan *sc, const struct ea__context *ctx, size_t start, float score)
{
    size_t lo = ctx->lower ? window_find(sc->text, window_from(sc->text, start, ctx->lower_window), start,
                                         ctx->lower)
                           : SIZE_MAX;
    size_t hi = ctx->raise ? window_find(sc->text, window_from(sc->text, start, ctx->window), start, ctx->raise)
                           : SIZE_MAX;
    if (lo != SIZE_MAX && (hi == SIZE_MAX || lo > hi))
        return score - ctx->lower_by;
    if (hi != SIZE_MAX)
        return score + ctx->raise_by;
    return score;
}

/* One pcre2 match at or after start (anchored when asked). 1: found, 0:
 * none, <0: an error reported in sc->err. */
static int match(struct scan *sc, const struct ea__pattern *p, size_t start, bool anchored)
{
    uint32_t opts = anchored ? PCRE2_ANCHORED : 0;
    int rc = pcre2_match(p->re, (PCRE2_SPTR)sc->text, sc->len, start, opts, sc->md, sc->d->mc);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* the interpreter keeps its frames on the heap */
        rc = pcre2_match(p->re, (PCRE2_SPTR)sc->text, sc->len, start, opts | PCRE2_NO_JIT, sc->md,
                         sc->d->mc);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(rc, msg, sizeof msg);
        ea_error_set(sc->err, rc == PCRE2_ERROR_NOMEMORY ? EA_ENOMEM : EA_EINTERNAL,
                     "privacy: detection failed (%s pattern): %s",
                     p->type == EA__PII_NEGATIVE ? "negative" : sc->d->names[p->type], (const char *)msg);
        return -1;
    }
    return 1;
}

/* A match found: its span, the check, the context, the candidate. *end
 * (optional): where the accepted span ends, 0 when the check refused it. */
static ea_status take(struct scan *sc, const struct ea__pattern *p, size_t *end)
{
    if (end)
        *end = 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
    uint32_t pairs = pcre2_get_ovector_count(sc->md);
    struct ea__cand c = {ov[0], ov[1], p->score};
    if (p->group && p->group < pairs && ov[2 * p->group] != PCRE2_UNSET) {
        c.start = ov[2 * p->group];
        c.end = ov[2 * p->group + 1];
    }
    if (p->check && !p->check(sc->text, sc->len, ov, pairs, &c))
        return EA_OK;
    if (c.end <= c.start)
        return EA_OK;
    if (end)
        *end = c.end;
    if (p->ctx)
        c.score = apply_context(sc, p->ctx, c.start, c.score);
    if (p->type != EA__PII_NEGATIVE && c.score < sc->d->threshold)
        return EA_OK;
    return push(sc, c.start, c.end, p->type, c.score > 1.0f ? 1.0f : c.score);
}

static ea_status scan_regex(struct scan *sc, const struct ea__pattern *p)
{
    size_t pos = 0;
    while (pos <= sc->len) {
        int m = match(sc, p, pos, false);
        if (m < 0)
            return sc->err->status;
        if (m == 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
        size_t m0 = ov[0], end;
        ea_status s = take(sc, p, &end);
        if (s)
            return s;
        /* after a refused match, look again from the next byte (the pattern's
         * lookbehind keeps it from starting inside a number): a phone number
         * written after an order number is still found */
        pos = end ? end : m0 + 1;
    }
    return EA_OK;
}

static ea_status scan_words(struct scan *sc, const struct ea__pattern *p)
{
    const unsigned char *t = (const unsigned char *)sc->text;
    size_t next = 0; /* no new attempt inside the last match */
    for (size_t i = 0; i + 1 < sc->len; i++) {
        if (i > 0 && is_word(t[i - 1]) && is_word(t[i]))
            continue;
        unsigned a = lower(t[i]), b = lower(t[i + 1]);
        if (!(p->prefix[(a << 5) | (b >> 3)] & (1u << (b & 7))) || i < next)
            continue;
        int m = match(sc, p, i, true);
        if (m < 0)
            return sc->err->status;
        if (m == 0)
            continue;
        ea_status s = take(sc, p, NULL);
        if (s)
            return s;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
        next = ov[1];
    }
    return EA_OK;
}

static ea_status scan_anchor(struct scan *sc, const struct ea__pattern *p)
{
    for (const char *a = p->anchors; *a; a++) {
        size_t pos = 0, next = 0;
        const char *hit;
        while (pos < sc->len && (hit = memchr(sc->text + pos, *a, sc->len - pos))) {
            size_t at = (size_t)(hit - sc->text), start = at;
            pos = at + 1;
            if (at < next)
                continue;
            while (start > 0 && at - start < p->max_back && p->back((unsigned char)sc->text[start - 1]))
                start--;
            int m = match(sc, p, start, true);
            if (m < 0)
                return sc->err->status;
            if (m == 0)
                continue;
            ea_status s = take(sc, p, NULL);
            if (s)
                return s;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
            next = ov[1];
        }
    }
    return EA_OK;
}

/* ---- resolution ------------------------------------------------------ */

static int by_priority(const void *a, const void *b)
{
    const struct ea_privacy_entity *x = a, *y = b;
    size_t lx = x->end - x->start, ly = y->end - y->start;
    if (lx != ly)
        return lx > ly ? -1 : 1;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->type < y->type ? -1 : x->type > y->type;
}

static int by_start(const void *a, const void *b)
{
    const struct ea_privacy_entity *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static bool allowed_value(const ea_privacy_detector *d, const char *s, size_t n)
{
    for (size_t i = 0; i < d->n_allow; i++)
        if (strlen(d->allow[i]) == n && !strncasecmp(d->allow[i], s, n))
            return true;
    return false;
}

/* Keeps, longest first (then highest score), each candidate that overlaps
 * none kept before (a bitset of the bytes taken: the cost is the total
 * length of the candidates); then drops the negatives and sorts by start. */
static ea_status resolve(const ea_privacy_detector *d, const char *text, size_t len,
                         struct ea_privacy_entities *c, struct ea_privacy_entities *out,
                         struct ea_error *err)
{
    qsort(c->v, c->n, sizeof *c->v, by_priority);
    uint64_t *taken = c->n ? ea_calloc(len / 64 + 1, sizeof *taken) : NULL;
    if (c->n && !taken)
        return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
    size_t nk = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct ea_privacy_entity e = c->v[i];
        bool free_span = true;
        for (size_t b = e.start; b < e.end && free_span; b++)
            free_span = !(taken[b >> 6] & (1ull << (b & 63)));
        if (!free_span)
            continue;
        for (size_t b = e.start; b < e.end; b++)
            taken[b >> 6] |= 1ull << (b & 63);
        if (e.type != EA__PII_NEGATIVE && d->enabled[e.type] &&
            !allowed_value(d, text + e.start, e.end - e.start))
            c->v[nk++] = e;
    }
    ea_free(taken);
    if (nk > EA_PRIVACY_MAX_ENTITIES)
        return ea_error_set(err, EA_ETOOBIG, "privacy: more than %u entities in one text",
                            (unsigned)EA_PRIVACY_MAX_ENTITIES);
    qsort(c->v, nk, sizeof *c->v, by_start);
    /* hand the candidate array over as the result */
    ea_free(out->v);
    out->v = c->v;
    out->n = nk;
    out->cap = c->cap;
    c->v = NULL;
    c->n = c->cap = 0;
    return EA_OK;
}

ea_status ea_privacy_detect(const ea_privacy_detector *d, const char *text, size_t len,
                            struct ea_privacy_entities *e, struct ea_error *err)
{
    e->n = 0;
    if (len > EA_PRIVACY_MAX_TEXT)
        return ea_error_set(err, EA_ETOOBIG, "privacy: text of %zu bytes is over the %zu-byte limit",
                            len, EA_PRIVACY_MAX_TEXT);
    if (!text)
        text = "";
    struct ea_privacy_entities cand = {0};
    struct scan sc = {d, text, len, NULL, &cand, err};
    sc.md = pcre2_match_data_create(d->max_capture_pairs ? d->max_capture_pairs : 1, d->gc);
    if (!sc.md)
        return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
    ea_status s = EA_OK;
    for (size_t i = 0; i < d->n_pats && !s; i++) {
        const struct ea__pattern *p = &d->pats[i];
        if (p->type != EA__PII_NEGATIVE && !d->enabled[p->type])
            continue;
        switch (p->scan) {
        case EA__SCAN_REGEX: s = scan_regex(&sc, p); break;
        case EA__SCAN_WORDS: s = scan_words(&sc, p); break;
        case EA__SCAN_ANCHOR: s = scan_anchor(&sc, p); break;
        }
    }
    pcre2_match_data_free(sc.md);
    if (!s)
        s = resolve(d, text, len, &cand, e, err);
    ea_privacy_entities_release(&cand);
    if (s)
        e->n = 0;
    return s;
}
