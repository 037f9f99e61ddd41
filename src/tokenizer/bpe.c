/* bpe.c - byte-level BPE encoding of one text fragment (GPT-2 style), as
 * llama.cpp's BPE tokenizer does it: invalid UTF-8 becomes U+FFFD, the
 * pre-tokenizer cuts the text into words, each word's bytes are mapped to
 * printable code points (GPT-2's reversible table), and adjacent symbols are
 * merged by merge rank, lowest first (ties: leftmost). With ignore_merges
 * (Llama 3) a word that is itself a token is emitted whole.
 * Does not hold: the regexes (pretok.c) or special-token splitting
 * (tokenize.c).
 */
#include <string.h>

#include "tokenizer/tok_int.h"
#include "util/utf8.h"

/* ---- GPT-2 byte <-> code point ------------------------------------------ */

/* Printable Latin-1 bytes map to themselves; the 68 others (0x00-0x20,
 * 0x7F-0xA0, 0xAD) map in order to U+0100.. U+0143. */
uint32_t ea__gpt2_byte_to_cp(unsigned char b)
{
    if (b <= 0x20)
        return 0x100u + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x100u + 33 + (b - 0x7Fu);
    if (b == 0xAD)
        return 0x100u + 67;
    return b;
}

int ea__gpt2_cp_to_byte(uint32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp >= 0x100 && cp <= 0x120)
        return (int)(cp - 0x100);
    if (cp >= 0x121 && cp <= 0x142)
        return (int)(0x7F + cp - 0x121);
    if (cp == 0x143)
        return 0xAD;
    return -1;
}

/* ---- sanitising ---------------------------------------------------------- */

ea_status ea__utf8_sanitize(const char *s, size_t n, char **out, size_t *out_len,
                            struct ea_error *err)
{
    if (n > (SIZE_MAX - 1) / 3)
        return ea_error_set(err, EA_ETOOBIG, "tokenizer: text too long");
    char *o = ea_malloc(3 * n + 1);
    if (!o)
        return ea_error_set(err, EA_ENOMEM, "tokenizer: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = ea__utf8_decode(s + i, n - i, &cp);
        if (l) {
            memcpy(o + k, s + i, l);
            k += l;
            i += l;
        } else { /* one U+FFFD per byte that starts no valid sequence */
            memcpy(o + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
        }
    }
    o[k] = '\0';
    *out = o;
    *out_len = k;
    return EA_OK;
}

/* ---- merging ------------------------------------------------------------- */

struct sym {
    uint32_t start, n; /* bytes of the mapped word */
    int32_t prev, next;
};

struct bigram {
    int32_t rank;
    int32_t left, right;
    uint32_t left_n, right_n; /* sizes when pushed; stale once either changed */
};

static bool before(const struct bigram *a, const struct bigram *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(struct bigram *h, size_t *n, struct bigram b)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&b, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = b;
}

static struct bigram heap_pop(struct bigram *h, size_t *n)
{
    struct bigram top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && before(&h[c + 1], &h[c]))
            c++;
        if (!before(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n)
        h[i] = last;
    return top;
}

/* Scratch reused across the words of one fragment. */
struct work {
    char *word; /* mapped bytes of the current word */
    struct sym *syms;
    struct bigram *heap;
    size_t cap; /* input bytes the arrays have room for */
};

static ea_status work_reserve(struct work *w, size_t bytes, struct ea_error *err)
{
    if (bytes <= w->cap)
        return EA_OK;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < bytes)
        cap *= 2;
    char *word = ea_realloc(w->word, 2 * cap);
    if (word)
        w->word = word;
    struct sym *syms = ea_realloc(w->syms, cap * sizeof *syms);
    if (syms)
        w->syms = syms;
    struct bigram *heap = ea_realloc(w->heap, 3 * cap * sizeof *heap);
    if (heap)
        w->heap = heap;
    if (!word || !syms || !heap)
        return ea_error_set(err, EA_ENOMEM, "tokenizer: out of memory");
    w->cap = cap;
    return EA_OK;
}

static void try_bigram(const ea_tokenizer *t, const struct work *w, int32_t left, int32_t right,
                       size_t *nh)
{
    if (left < 0 || right < 0)
        return;
    const struct sym *l = &w->syms[left], *r = &w->syms[right];
    int32_t rank = ea__tok_merge_rank(t, w->word + l->start, l->n, w->word + r->start, r->n);
    if (rank < 0)
        return;
    struct bigram b = {rank, left, right, l->n, r->n};
    heap_push(w->heap, nh, b);
}

static ea_status encode_word(const ea_tokenizer *t, const char *src, size_t len, struct work *w,
                             struct ea__ids *out, struct ea_error *err)
{
    ea_status s = work_reserve(w, len, err);
    if (s)
        return s;
    /* map bytes; one symbol per input byte */
    size_t o = 0;
    int32_t ns = 0;
    for (size_t i = 0; i < len; i++) {
        size_t k = ea__utf8_encode(ea__gpt2_byte_to_cp((unsigned char)src[i]), w->word + o);
        w->syms[ns].start = (uint32_t)o;
        w->syms[ns].n = (uint32_t)k;
        w->syms[ns].prev = ns - 1;
        w->syms[ns].next = i + 1 == len ? -1 : ns + 1;
        ns++;
        o += k;
    }
    if (t->ignore_merges) {
        int32_t id = ea__tok_lookup(t, w->word, o);
        if (id >= 0)
            return ea__ids_push(out, id, err);
    }
    size_t nh = 0;
    for (int32_t i = 1; i < ns; i++)
        try_bigram(t, w, i - 1, i, &nh);
    while (nh) {
        struct bigram b = heap_pop(w->heap, &nh);
        struct sym *l = &w->syms[b.left], *r = &w->syms[b.right];
        if (l->n != b.left_n || r->n != b.right_n || l->n == 0 || r->n == 0)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            w->syms[r->next].prev = b.left;
        try_bigram(t, w, l->prev, b.left, &nh);
        try_bigram(t, w, b.left, l->next, &nh);
    }
    for (int32_t i = 0; i != -1; i = w->syms[i].next) {
        const struct sym *y = &w->syms[i];
        int32_t id = ea__tok_lookup(t, w->word + y->start, y->n);
        if (id >= 0) {
            if ((s = ea__ids_push(out, id, err)))
                return s;
            continue;
        }
        /* the merges built a string the vocabulary lacks: spell it with the
         * single mapped characters that are tokens (llama.cpp looks up single
         * bytes of the mapped text instead; the same for any sane vocabulary) */
        for (uint32_t j = 0; j < y->n;) {
            uint32_t cp;
            size_t k = ea__utf8_decode(w->word + y->start + j, y->n - j, &cp);
            if (!k)
                k = 1;
            int32_t c = ea__tok_lookup(t, w->word + y->start + j, k);
            if (c >= 0 && (s = ea__ids_push(out, c, err)))
                return s;
            j += (uint32_t)k;
        }
    }
    return EA_OK;
}

ea_status ea__bpe_encode(const ea_tokenizer *t, const char *text, size_t len,
                         struct ea__ids *out, struct ea_error *err)
{
    char *clean = NULL;
    size_t n = 0;
    struct ea__spans words = {0};
    struct work w = {0};
    ea_status s = ea__utf8_sanitize(text, len, &clean, &n, err);
    if (s)
        return s;
    if ((s = ea__pretok_split(t, clean, n, &words, err)))
        goto out;
    for (size_t i = 0; i < words.n && !s; i++)
        s = encode_word(t, clean + words.v[i].off, words.v[i].len, &w, out, err);
out:
    ea_free(w.word);
    ea_free(w.syms);
    ea_free(w.heap);
    ea_free(words.v);
    ea_free(clean);
    return s;
}
