/* detect.c - the detector: pattern compilation (PCRE2 byte mode, JIT when
 * the platform has it), the three ways a pattern is scanned (whole text,
 * word starts through a two-byte prefix table, anchor bytes walked back
 * from), context words, and overlap resolution (longest span first, then
 * highest score; hard negatives win like any other span and are dropped).
 *
 * Thread safety: after ea_privacy_detector_create nothing in the detector
 * changes; each ea_privacy_detect call makes its own match data and keeps
 * its scan state on its stack (the pre filters' memos, the bitset of taken
 * bytes of a short text) or in the caller's entity list (the candidates).
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

/* ASCII letters, digits and '_' (every byte of a multi-byte UTF-8
 * character is a word byte too: is_word) */
static const bool word_byte[128] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1,
    ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['_'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1,
    ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1};

static bool is_word(unsigned char c) { return c >= 0x80 || word_byte[c]; }

/* ---- building -------------------------------------------------------- */

static ea_status put_byte(struct ea_buf *b, unsigned char c)
{
    if (c == ' ')
        return ea__buf_puts(b, "[ \\t]+");
    if (c == '\'')
        return ea__buf_puts(b, "(?:'|\\xe2\\x80\\x99)");
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return ea__buf_putc(b, (char)c);
    return ea__buf_printf(b, "\\x%02x", c);
}

static int by_bytes(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted words w[0..n), which share their first depth bytes, as a
 * trie of groups: one branch per next byte, so that matching tries one
 * branch per position instead of every word (month names, greetings).
 * A word ending here makes the rest optional (greedy: the longer first). */
static ea_status trie(struct ea_buf *b, const char *const *w, size_t n, size_t depth, unsigned level)
{
    if (level > 256)
        return EA_ETOOBIG;
    bool ends = false;
    size_t i = 0;
    while (i < n && !w[i][depth]) { /* sorted: the words ending here come first */
        ends = true;
        i++;
    }
    if (i == n)
        return EA_OK;
    size_t groups = 0;
    for (size_t k = i; k < n; k++)
        groups += k == i || w[k][depth] != w[k - 1][depth];
    bool wrap = ends || groups > 1;
    ea_status s = wrap ? ea__buf_puts(b, "(?:") : EA_OK;
    for (size_t k = i; k < n && !s;) {
        size_t e = k + 1;
        while (e < n && w[e][depth] == w[k][depth])
            e++;
        if (k > i)
            s = ea__buf_putc(b, '|');
        if (!s)
            s = put_byte(b, (unsigned char)w[k][depth]);
        if (!s)
            s = trie(b, w + k, e - k, depth + 1, level + 1);
        k = e;
    }
    if (!s && wrap)
        s = ea__buf_puts(b, ends ? ")?" : ")");
    return s;
}

ea_status ea__privacy_phrases_regex(struct ea_buf *b, const char *const *phrases, size_t n,
                                    bool caseless)
{
    const char **w = ea_malloc((n ? n : 1) * sizeof *w);
    if (!w)
        return EA_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (phrases[i][0])
            w[m++] = phrases[i];
    if (m > 1)
        qsort(w, m, sizeof *w, by_bytes);
    ea_status s = ea__buf_puts(b, caseless ? "(?i:" : "(?:");
    if (!s)
        s = trie(b, w, m, 0, 0);
    if (!s)
        s = ea__buf_putc(b, ')');
    ea_free(w);
    return s;
}

static void prefix_mark(uint8_t *t, const char *w)
{
    unsigned a = (unsigned char)w[0], b2 = (unsigned char)w[1];
    if (a && b2)
        t[(a << 8 | b2) >> 3] |= (uint8_t)(1u << (b2 & 7));
}

static bool is_letter(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; }

#define WORD_MAX 24 /* bytes of a word hashed for the first-word sets */

/* The lowercased word (letters, UTF-8 bytes) at s[0..n): its hash, 0 when
 * there is no word or it is longer than WORD_MAX. */
static uint64_t word_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    size_t k = 0;
    while (k < n && is_letter((unsigned char)s[k])) {
        h ^= lower((unsigned char)s[k]);
        h *= 1099511628211ull;
        if (++k > WORD_MAX)
            return 0;
    }
    return k ? h | 1 : 0; /* never 0: that marks an empty slot */
}

static bool wset_has(const struct ea__pattern *p, uint64_t h)
{
    for (size_t k = h & (p->wset_slots - 1);; k = (k + 1) & (p->wset_slots - 1)) {
        if (p->wset[k] == h)
            return true;
        if (!p->wset[k])
            return false;
    }
}

static ea_status wset_build(struct ea__pattern *p, const char *const *words)
{
    size_t n = 0;
    while (words[n])
        n++;
    size_t slots = 16;
    while (slots < 2 * n + 2)
        slots *= 2;
    if (!(p->wset = ea_calloc(slots, sizeof *p->wset)))
        return EA_ENOMEM;
    p->wset_slots = slots;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = word_hash(words[i], strlen(words[i]));
        if (!h || wset_has(p, h))
            continue;
        size_t k = h & (slots - 1);
        while (p->wset[k])
            k = (k + 1) & (slots - 1);
        p->wset[k] = h;
    }
    return EA_OK;
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
    /* patterns tried at chosen positions are anchored when compiled: the JIT
     * does not take PCRE2_ANCHORED at match time (the interpreter would run) */
    if (def->scan != EA__SCAN_REGEX)
        options |= PCRE2_ANCHORED;
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
    size_t jit_size = 0;
    if (pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE) == 0 &&
        pcre2_pattern_info(p->re, PCRE2_INFO_JITSIZE, &jit_size) == 0 && jit_size > 0)
        p->jit = true;
    if (captures + 1 > d->max_capture_pairs)
        d->max_capture_pairs = captures + 1;
    p->type = def->type;
    p->scan = def->scan;
    p->anchors = def->anchors;
    for (unsigned c = 0; def->back && c < 256; c++)
        p->back[c] = def->back((unsigned char)c);
    p->max_back = def->max_back;
    p->min_back = def->min_back;
    p->group = def->group;
    p->score = def->score;
    p->check = def->check;
    p->ctx = def->ctx;
    for (int k = 0; k < 2 && p->ctx; k++) {
        const char *const *list = k ? p->ctx->raise : p->ctx->lower;
        size_t n = 0;
        while (list && list[n])
            n++;
        if (!n)
            continue;
        if (!(p->ctx_words[k] = ea_malloc(n * sizeof *p->ctx_words[k]))) {
            pcre2_code_free(p->re);
            ea_free(p->ctx_words[0]); /* k == 1: the first list */
            return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
        }
        size_t o = 0; /* a counting sort by first byte */
        for (unsigned c = 0; c < 256; c++) {
            p->ctx_at[k][c] = (uint16_t)o;
            for (size_t i = 0; i < n; i++)
                if ((unsigned char)list[i][0] == c)
                    p->ctx_words[k][o++] = list[i];
        }
        p->ctx_at[k][256] = (uint16_t)o;
    }
    p->starts = def->starts;
    p->min_digits = def->min_digits;
    p->pre = def->pre;
    if (def->scan == EA__SCAN_WORDS) {
        if ((def->prefixes && !(p->prefix = ea_calloc(PREFIX_BITS / 8, 1))) ||
            (def->words && wset_build(p, def->words))) {
            pcre2_code_free(p->re);
            ea_free(p->prefix);
            ea_free(p->wset);
            ea_free(p->ctx_words[0]);
            ea_free(p->ctx_words[1]);
            return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
        }
        for (const char *const *w = def->prefixes; w && *w; w++)
            prefix_mark(p->prefix, *w);
    }
    d->n_pats++;
    return EA_OK;
}

static void word_add(struct ea__word_tables *wt, uint64_t h, uint32_t bit)
{
    size_t k = h & (wt->n_slots - 1);
    while (wt->words[k].hash && wt->words[k].hash != h)
        k = (k + 1) & (wt->n_slots - 1);
    wt->words[k].hash = h;
    wt->words[k].mask |= bit;
}

/* Merges the start filters of the WORDS patterns into one prefix table and
 * one first-word table of bitmasks. */
static ea_status build_word_tables(ea_privacy_detector *d, struct ea_error *err)
{
    struct ea__word_tables *wt = &d->wt;
    size_t n_words = 0;
    for (size_t i = 0; i < d->n_pats; i++) {
        const struct ea__pattern *p = &d->pats[i];
        if (p->scan != EA__SCAN_WORDS)
            continue;
        if (wt->n == EA__MAX_WORD_PATTERNS)
            return ea_error_set(err, EA_EINTERNAL, "privacy: more than %d word-started patterns",
                                EA__MAX_WORD_PATTERNS);
        wt->pats[wt->n++] = p;
        n_words += p->wset_slots;
    }
    wt->n_slots = 16;
    while (wt->n_slots < 2 * n_words + 2)
        wt->n_slots *= 2;
    wt->prefix = ea_calloc(PREFIX_BITS, sizeof *wt->prefix);
    wt->words = ea_calloc(wt->n_slots, sizeof *wt->words);
    if (!wt->prefix || !wt->words)
        return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
    for (uint32_t k = 0; k < wt->n; k++) {
        const struct ea__pattern *p = wt->pats[k];
        uint32_t bit = 1u << k;
        if (p->starts & EA__START_DIGIT)
            wt->digit_mask |= bit;
        if (p->starts & EA__START_HEXWORD)
            wt->hex_mask |= bit;
        if (p->starts & EA__START_UPPER2)
            wt->upper2_mask |= bit;
        for (size_t j = 0; p->prefix && j < PREFIX_BITS; j++)
            if (p->prefix[j >> 3] & (1u << (j & 7))) {
                wt->prefix[j] |= bit;
                wt->first[j >> 11] |= (uint8_t)(1u << ((j >> 8) & 7));
            }
        for (size_t j = 0; j < p->wset_slots; j++)
            if (p->wset[j])
                word_add(wt, p->wset[j], bit);
    }
    return EA_OK;
}

static uint32_t word_mask(const struct ea__word_tables *wt, uint64_t h)
{
    for (size_t k = h & (wt->n_slots - 1);; k = (k + 1) & (wt->n_slots - 1)) {
        if (wt->words[k].hash == h)
            return wt->words[k].mask;
        if (!wt->words[k].hash)
            return 0;
    }
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
    if ((s = build_word_tables(d, err)))
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
        ea_free(d->pats[i].ctx_words[0]);
        ea_free(d->pats[i].ctx_words[1]);
        ea_free(d->pats[i].prefix);
        ea_free(d->pats[i].wset);
    }
    ea_free(d->pats);
    ea_free(d->wt.prefix);
    ea_free(d->wt.words);
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

/* Where the last of the context words k of p stands as a whole word (or,
 * ending in '*', a word prefix) in text[from, to); SIZE_MAX when none does.
 * Only the words starting with each byte are tried there. */
static size_t window_find(const char *text, size_t from, size_t to, const struct ea__pattern *p, int k)
{
    size_t best = SIZE_MAX;
    for (size_t i = from; i < to; i++) {
        unsigned char c = lower((unsigned char)text[i]);
        unsigned w0 = p->ctx_at[k][c], w1 = p->ctx_at[k][c + 1];
        if (w0 == w1 || (i > 0 && is_word((unsigned char)text[i - 1]) && is_word(c)))
            continue;
        for (unsigned w = w0; w < w1; w++) {
            const char *word = p->ctx_words[k][w];
            size_t j = 1;
            while (word[j] && word[j] != '*' && i + j < to && lower((unsigned char)text[i + j]) == (unsigned char)word[j])
                j++;
            if (word[j] && word[j] != '*')
                continue; /* a mismatch, or the window ends first */
            if (!word[j] && i + j < to && is_word((unsigned char)text[i + j]) && is_word((unsigned char)word[j - 1]))
                continue; /* "account" is not "accounting" */
            best = i;
            break;
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
static float apply_context(const struct scan *sc, const struct ea__pattern *p, size_t start, float score)
{
    const struct ea__context *ctx = p->ctx;
    float th = sc->d->threshold;
    if (score >= th + ctx->lower_by || score + ctx->raise_by < th)
        return score; /* no context word can move it across the threshold */
    size_t lo = p->ctx_words[0] ? window_find(sc->text, window_from(sc->text, start, ctx->lower_window), start, p, 0)
                                : SIZE_MAX;
    size_t hi = p->ctx_words[1] ? window_find(sc->text, window_from(sc->text, start, ctx->window), start, p, 1)
                                : SIZE_MAX;
    if (lo != SIZE_MAX && (hi == SIZE_MAX || lo > hi))
        return score - ctx->lower_by;
    if (hi != SIZE_MAX)
        return score + ctx->raise_by;
    return score;
}

/* One pcre2 match at or after start (WORDS and ANCHOR patterns are
 * compiled anchored). 1: found, 0: none, <0: an error reported in sc->err. */
static int match(struct scan *sc, const struct ea__pattern *p, size_t start)
{
    int rc = p->jit ? pcre2_jit_match(p->re, (PCRE2_SPTR)sc->text, sc->len, start, 0, sc->md, sc->d->mc)
                    : pcre2_match(p->re, (PCRE2_SPTR)sc->text, sc->len, start, 0, sc->md, sc->d->mc);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* the interpreter keeps its frames on the heap */
        rc = pcre2_match(p->re, (PCRE2_SPTR)sc->text, sc->len, start, PCRE2_NO_JIT, sc->md, sc->d->mc);
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
    /* no new attempt of the pattern inside what it took, except that a
     * name's later words may open a context of their own ("Name: Omar Je
     * m'appelle Yusuf Hansen": "Je" ended the first name and begins the
     * next one's context) */
    if (end)
        *end = p->type == EA_PII_PERSON ? c.start + 1 : c.end;
    if (p->ctx)
        c.score = apply_context(sc, p, c.start, c.score);
    if (p->type != EA__PII_NEGATIVE && c.score < sc->d->threshold)
        return EA_OK;
    return push(sc, c.start, c.end, p->type, c.score > 1.0f ? 1.0f : c.score);
}

static ea_status scan_regex(struct scan *sc, const struct ea__pattern *p)
{
    size_t pos = 0;
    while (pos <= sc->len) {
        int m = match(sc, p, pos);
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

/* 7..64 hex digits, at least one digit and one letter, then no word byte. */
static bool hex_word(const unsigned char *t, size_t n, size_t i)
{
    static const bool lower_hex[256] = {['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
                                        ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1,
                                        ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1};
    if (n - i < 7 || !lower_hex[t[i + 6]]) /* most words: shorter than 7 hex digits */
        return false;
    size_t k = i;
    bool digit = false, letter = false;
    while (k < n && k - i <= 64 && ((t[k] >= '0' && t[k] <= '9') || (t[k] >= 'a' && t[k] <= 'f'))) {
        digit |= t[k] <= '9';
        letter |= t[k] >= 'a';
        k++;
    }
    return k - i >= 7 && k - i <= 64 && digit && letter && (k == n || !is_word(t[k]));
}

/* Digits in the number written at t[i] (digits, spaces, . - / ( ) +, an
 * extension mark), looking at most NUMBER_SPAN bytes ahead. */
#define NUMBER_SPAN 48
static uint32_t number_digits(const unsigned char *t, size_t n, size_t i)
{
    uint32_t d = 0;
    for (size_t k = i; k < n && k - i < NUMBER_SPAN; k++) {
        unsigned char c = t[k];
        if (c >= '0' && c <= '9')
            d++;
        else if (c != ' ' && c != '.' && c != '-' && c != '/' && c != '(' && c != ')' && c != '+')
            break;
    }
    return d;
}

/* Every WORDS pattern in one pass over the word starts: one lookup in the
 * merged tables says which patterns to try there. */
static ea_status scan_words(struct scan *sc)
{
    const struct ea__word_tables *wt = &sc->d->wt;
    uint32_t live = 0;
    size_t next[EA__MAX_WORD_PATTERNS] = {0};
    struct ea__pre_memo memo[EA__MAX_WORD_PATTERNS] = {0};
    for (uint32_t k = 0; k < wt->n; k++) {
        const struct ea__pattern *p = wt->pats[k];
        if (p->type == EA__PII_NEGATIVE || sc->d->enabled[p->type])
            live |= 1u << k;
    }
    if (!live)
        return EA_OK;
    const unsigned char *t = (const unsigned char *)sc->text;
    for (size_t i = 0; i < sc->len; i++) {
        if (i > 0 && is_word(t[i - 1]) && is_word(t[i]))
            continue;
        unsigned a = t[i], b = i + 1 < sc->len ? t[i + 1] : 0;
        uint32_t mask = (wt->first[a >> 3] >> (a & 7)) & 1 ? wt->prefix[a << 8 | b] : 0;
        if (is_letter((unsigned char)a)) {
            uint64_t h = word_hash(sc->text + i, sc->len - i);
            if (h)
                mask |= word_mask(wt, h);
            if (a >= 'A' && a <= 'Z' && b >= 'A' && b <= 'Z' && i + 3 < sc->len && t[i + 2] >= '0' &&
                t[i + 2] <= '9' && t[i + 3] >= '0' && t[i + 3] <= '9')
                mask |= wt->upper2_mask;
        } else if (a >= '0' && a <= '9') {
            mask |= wt->digit_mask;
        }
        uint32_t digits = UINT32_MAX; /* counted when a pattern asks */
        if (wt->hex_mask && ((a >= '0' && a <= '9') || (a >= 'a' && a <= 'f')) && hex_word(t, sc->len, i))
            mask |= wt->hex_mask;
        mask &= live;
        while (mask) {
            uint32_t k = (uint32_t)__builtin_ctz(mask);
            mask &= mask - 1;
            const struct ea__pattern *p = wt->pats[k];
            if (i < next[k])
                continue;
            if (p->min_digits) {
                if (digits == UINT32_MAX)
                    digits = number_digits(t, sc->len, i);
                if (digits < p->min_digits)
                    continue;
            }
            if (p->pre && !p->pre(sc->text, sc->len, i, i, &memo[k]))
                continue;
            int m = match(sc, p, i);
            if (m < 0)
                return sc->err->status;
            if (m == 0)
                continue;
            size_t end;
            ea_status s = take(sc, p, &end);
            if (s)
                return s;
            if (end) /* no new attempt of this pattern inside what it took */
                next[k] = end;
        }
    }
    return EA_OK;
}

/* At each anchor byte of p (memchr: most texts have few), back over its
 * byte class, then one anchored attempt. */
static ea_status scan_anchor(struct scan *sc, const struct ea__pattern *p)
{
    for (const char *a = p->anchors; *a; a++) {
        size_t pos = 0, next = 0;
        struct ea__pre_memo memo = {0};
        const char *hit;
        while (pos < sc->len && (hit = memchr(sc->text + pos, *a, sc->len - pos))) {
            size_t at = (size_t)(hit - sc->text), start = at;
            pos = at + 1;
            if (at < next)
                continue;
            while (start > 0 && at - start < p->max_back && p->back[(unsigned char)sc->text[start - 1]])
                start--;
            if (at - start < p->min_back || (p->pre && !p->pre(sc->text, sc->len, at, start, &memo)))
                continue; /* no match can start here: no regex call */
            int m = match(sc, p, start);
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

/* Up to this many entities are sorted by insertion (a text's handful of
 * candidates), more by qsort. Both orders are total on distinct entities,
 * so the result does not depend on the method. */
#define INSERTION_SORT_MAX 16

static void sort_entities(struct ea_privacy_entity *v, size_t n, int (*cmp)(const void *, const void *))
{
    if (n > INSERTION_SORT_MAX) {
        qsort(v, n, sizeof *v, cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        struct ea_privacy_entity e = v[i];
        size_t j = i;
        for (; j > 0 && cmp(&v[j - 1], &e) > 0; j--)
            v[j] = v[j - 1];
        v[j] = e;
    }
}

/* The bits of word w of a byte bitset that fall in [a, b) (a < b). */
static uint64_t span_mask(size_t w, size_t a, size_t b)
{
    uint64_t m = ~0ull;
    if (w == a >> 6)
        m &= ~0ull << (a & 63);
    if (w == (b - 1) >> 6)
        m &= ~0ull >> (63 - ((b - 1) & 63));
    return m;
}

/* Texts up to this many bytes keep resolve()'s bitset of taken bytes on
 * the stack (512 bytes); longer ones allocate it. */
#define TAKEN_STACK_BYTES 4096

/* Keeps, longest first (then highest score), each candidate that overlaps
 * none kept before (a bitset of the bytes taken, tested and set 64 bytes
 * at a time); then drops the negatives and sorts by start. */
static ea_status resolve(const ea_privacy_detector *d, const char *text, size_t len,
                         struct ea_privacy_entities *c, struct ea_privacy_entities *out,
                         struct ea_error *err)
{
    sort_entities(c->v, c->n, by_priority);
    uint64_t on_stack[TAKEN_STACK_BYTES / 64 + 1];
    uint64_t *taken = NULL;
    if (c->n && len <= TAKEN_STACK_BYTES) {
        taken = on_stack;
        memset(taken, 0, (len / 64 + 1) * sizeof *taken);
    } else if (c->n && !(taken = ea_calloc(len / 64 + 1, sizeof *taken))) {
        return ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
    }
    size_t nk = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct ea_privacy_entity e = c->v[i];
        bool free_span = true;
        for (size_t w = e.start >> 6; w <= (e.end - 1) >> 6 && free_span; w++)
            free_span = !(taken[w] & span_mask(w, e.start, e.end));
        if (!free_span)
            continue;
        for (size_t w = e.start >> 6; w <= (e.end - 1) >> 6; w++)
            taken[w] |= span_mask(w, e.start, e.end);
        if (e.type != EA__PII_NEGATIVE && d->enabled[e.type] &&
            !allowed_value(d, text + e.start, e.end - e.start))
            c->v[nk++] = e;
    }
    if (taken != on_stack)
        ea_free(taken);
    if (nk > EA_PRIVACY_MAX_ENTITIES)
        return ea_error_set(err, EA_ETOOBIG, "privacy: more than %u entities in one text",
                            (unsigned)EA_PRIVACY_MAX_ENTITIES);
    sort_entities(c->v, nk, by_start);
    /* hand the candidate array over as the result (it may be out's own
     * array, lent to the scan by ea_privacy_detect) */
    if (out->v != c->v)
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
    /* the candidates grow in e's array (no allocation when the caller
     * reuses e); resolve() hands it back */
    struct ea_privacy_entities cand = {e->v, 0, e->cap};
    e->v = NULL;
    e->cap = 0;
    struct scan sc = {d, text, len, NULL, &cand, err};
    sc.md = pcre2_match_data_create(d->max_capture_pairs ? d->max_capture_pairs : 1, d->gc);
    ea_status s = sc.md ? scan_words(&sc) : ea_error_set(err, EA_ENOMEM, "privacy: out of memory");
    for (size_t i = 0; i < d->n_pats && !s; i++) {
        const struct ea__pattern *p = &d->pats[i];
        if (p->type != EA__PII_NEGATIVE && !d->enabled[p->type])
            continue;
        if (p->scan == EA__SCAN_REGEX)
            s = scan_regex(&sc, p);
        else if (p->scan == EA__SCAN_ANCHOR)
            s = scan_anchor(&sc, p);
    }
    pcre2_match_data_free(sc.md);
    if (!s)
        s = resolve(d, text, len, &cand, e, err);
    if (s) { /* e empty, its array kept for the next call */
        e->v = cand.v;
        e->cap = cand.cap;
        e->n = 0;
    }
    return s;
}
