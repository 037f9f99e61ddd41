/* wpm.c - BERT WordPiece encoding of one text fragment, as llama.cpp does
 * it: the BertNormalizer steps it implements (first code point of the NFD and
 * no marks when stripping accents, lowercase, control characters dropped),
 * words split at whitespace, punctuation, ASCII symbols and CJK ideographs
 * standing alone, then each word, prefixed with U+2581 (the converter stores
 * word-initial pieces that way and "##" pieces bare), is covered greedily by
 * the longest vocabulary tokens; a word that cannot be covered becomes [UNK].
 * Does not hold: the Unicode tables (unicode_data.c, generated).
 */
#include <string.h>

#include "tokenizer/tok_int.h"
#include "util/utf8.h"

static bool is_cjk(uint32_t c)
{
    /* BERT's _is_chinese_char, with llama.cpp's (and HF's) 0x2B920 start */
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Greedy longest-match of word[0..n) (which starts with U+2581). */
static ea_status encode_word(const ea_tokenizer *t, const char *word, size_t n,
                             struct ea__ids *out, struct ea_error *err)
{
    size_t start = out->n;
    ea_status s;
    for (size_t i = 0; i < n;) {
        size_t j = i + t->max_text < n ? i + t->max_text : n;
        int32_t id = -1;
        for (; j > i; j--)
            if ((id = ea__tok_lookup(t, word + i, j - i)) >= 0)
                break;
        if (id < 0) {
            out->n = start; /* the whole word becomes [UNK] */
            break;
        }
        if ((s = ea__ids_push(out, id, err)))
            return s;
        i = j;
    }
    if (out->n == start && t->unk >= 0)
        return ea__ids_push(out, t->unk, err);
    return EA_OK;
}

ea_status ea__wpm_encode(const ea_tokenizer *t, const char *text, size_t len,
                         struct ea__ids *out, struct ea_error *err)
{
    /* normalised word, U+2581 first; a code point is at most 4 bytes */
    if (len > (SIZE_MAX - 8) / 4)
        return ea_error_set(err, EA_ETOOBIG, "tokenizer: text too long");
    char *word = ea_malloc(4 * len + 8);
    if (!word)
        return ea_error_set(err, EA_ENOMEM, "tokenizer: out of memory");
    ea_status s = EA_OK;
    size_t wn = 3;
    memcpy(word, "\xe2\x96\x81", 3);
    for (size_t i = 0; i <= len && !s;) {
        uint32_t cp = 0;
        bool end = i == len;
        if (!end) {
            size_t k = ea__utf8_decode(text + i, len - i, &cp); /* cp = U+FFFD if bad */
            i += k ? k : 1;
        } else {
            i++;
        }
        if (!end && t->strip_accents)
            cp = ea__uc_nfd_base(cp);
        unsigned f = end ? EA__UC_WHITESPACE : ea__uc_flags(cp);
        if (f & EA__UC_WHITESPACE) {
            if (wn > 3)
                s = encode_word(t, word, wn, out, err);
            wn = 3;
            continue;
        }
        if (cp == 0 || cp == 0xFFFD || (f & EA__UC_CONTROL))
            continue;
        if (t->strip_accents && (f & EA__UC_MARK))
            continue;
        char u[4];
        size_t un = ea__utf8_encode(t->lowercase ? ea__uc_lower(cp) : cp, u);
        if ((f & EA__UC_PUNCT) || (cp < 0x7F && (f & EA__UC_SYMBOL)) || is_cjk(cp)) {
            if (wn > 3 && (s = encode_word(t, word, wn, out, err)))
                break;
            memcpy(word + 3, u, un);
            s = encode_word(t, word, 3 + un, out, err);
            wn = 3;
        } else {
            memcpy(word + wn, u, un);
            wn += un;
        }
    }
    ea_free(word);
    return s;
}
