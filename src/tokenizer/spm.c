/* spm.c - SentencePiece-style encoding of one text fragment, as llama.cpp's
 * SPM tokenizer does it: spaces become U+2581 (plus one in front when asked),
 * the text is cut into UTF-8 characters (an invalid byte is a symbol of its
 * own), and adjacent symbols whose
 * concatenation is a vocabulary token are merged, highest score first (ties:
 * leftmost). A final symbol that is not a token is spelled with byte tokens
 * <0xNN>, so any byte string, valid UTF-8 or not, is encoded losslessly.
 * Does not hold: special-token splitting or BOS/EOS (tokenize.c).
 */
#include <string.h>

#include "tokenizer/tok_int.h"
#include "util/utf8.h"

struct sym {
    uint32_t start, n; /* bytes of the escaped text */
    int32_t prev, next;
};

struct bigram {
    float score;
    int32_t left, right;
    uint32_t size; /* bytes when pushed; stale once a side has changed */
};

/* Max-heap on (score, then smaller left first). */
static bool before(const struct bigram *a, const struct bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
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

/* Length of the symbol starting at s[0..n): a whole valid UTF-8 character,
 * or a single byte when there is none. (llama.cpp goes by the lead byte
 * alone, so "\xff " would swallow the escaped space into a 4-byte symbol
 * spelled in byte tokens; on valid UTF-8 both agree.) */
static uint32_t sym_len(const char *s, size_t n)
{
    uint32_t cp;
    size_t k = ea__utf8_decode(s, n, &cp);
    return k ? (uint32_t)k : 1;
}

static void try_bigram(const ea_tokenizer *t, const char *text, const struct sym *syms,
                       int32_t left, int32_t right, struct bigram *heap, size_t *n)
{
    if (left < 0 || right < 0)
        return;
    uint32_t size = syms[left].n + syms[right].n;
    int32_t id = ea__tok_lookup(t, text + syms[left].start, size);
    if (id < 0)
        return;
    struct bigram b = {t->tok[id].score, left, right, size};
    heap_push(heap, n, b);
}

ea_status ea__spm_encode(const ea_tokenizer *t, const char *text, size_t len, bool space_prefix,
                         struct ea__ids *out, struct ea_error *err)
{
    /* escape: ' ' -> U+2581 (3 bytes) */
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++)
        spaces += text[i] == ' ';
    size_t n = (space_prefix ? 3 : 0) + len + 2 * spaces;
    if (n == 0)
        return EA_OK;
    if (n > UINT32_MAX / 4)
        return ea_error_set(err, EA_ETOOBIG, "tokenizer: text fragment too long");
    char *buf = ea_malloc(n);
    struct sym *syms = ea_malloc(n * sizeof *syms);
    /* n - 1 initial bigrams, at most 2 more per merge (n - 1 merges) */
    struct bigram *heap = ea_malloc(3 * n * sizeof *heap);
    ea_status s = EA_OK;
    if (!buf || !syms || !heap) {
        s = ea_error_set(err, EA_ENOMEM, "tokenizer: out of memory");
        goto out;
    }
    size_t o = 0;
    if (space_prefix) {
        memcpy(buf, "\xe2\x96\x81", 3);
        o = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + o, "\xe2\x96\x81", 3);
            o += 3;
        } else {
            buf[o++] = text[i];
        }
    }

    int32_t ns = 0;
    for (uint32_t off = 0; off < n;) {
        uint32_t k = sym_len(buf + off, n - off);
        syms[ns].start = off;
        syms[ns].n = k;
        syms[ns].prev = ns - 1;
        off += k;
        syms[ns].next = off == n ? -1 : ns + 1;
        ns++;
    }
    size_t nh = 0;
    for (int32_t i = 1; i < ns; i++)
        try_bigram(t, buf, syms, i - 1, i, heap, &nh);
    while (nh) {
        struct bigram b = heap_pop(heap, &nh);
        struct sym *l = &syms[b.left], *r = &syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue; /* one side was merged since */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            syms[r->next].prev = b.left;
        try_bigram(t, buf, syms, l->prev, b.left, heap, &nh);
        try_bigram(t, buf, syms, b.left, l->next, heap, &nh);
    }

    for (int32_t i = 0; i != -1 && !s; i = syms[i].next) {
        int32_t id = ea__tok_lookup(t, buf + syms[i].start, syms[i].n);
        if (id >= 0) {
            s = ea__ids_push(out, id, err);
            continue;
        }
        /* byte fallback; a vocabulary without byte tokens gets <unk> (llama.cpp
         * would throw here) */
        for (uint32_t j = 0; j < syms[i].n && !s; j++) {
            int32_t b = t->byte_token[(unsigned char)buf[syms[i].start + j]];
            if (b < 0)
                b = t->unk;
            if (b >= 0)
                s = ea__ids_push(out, b, err);
        }
    }
out:
    ea_free(buf);
    ea_free(syms);
    ea_free(heap);
    return s;
}
