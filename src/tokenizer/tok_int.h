/* tok_int.h - internals shared by the tokenizer module's files: the
 * ea_tokenizer layout, the lookup tables built at load, and the per-model
 * encoders (SPM, BPE, WordPiece) the dispatcher in tokenize.c calls.
 * Not part of the public API.
 */
#ifndef EDGEAGENT_TOK_INT_H
#define EDGEAGENT_TOK_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stdint.h>

#include "edgeagent/tokenizer.h"

/* GGUF tokenizer.ggml.token_type values. */
enum {
    EA__TT_UNDEFINED = 0,
    EA__TT_NORMAL = 1,
    EA__TT_UNKNOWN = 2,
    EA__TT_CONTROL = 3,
    EA__TT_USER_DEFINED = 4,
    EA__TT_UNUSED = 5,
    EA__TT_BYTE = 6,
};

#define EA__TOK_MAX_REGEX 6

struct ea__tok_entry {
    uint32_t off, len;             /* text in t->text (NUL-terminated there) */
    uint32_t piece_off, piece_len; /* piece (special rendering) in t->pieces */
    float score;                   /* SPM merge priority */
    uint32_t attr;                 /* EA_TOKEN_ATTR_* */
};

/* One BPE merge "left right": both halves point into t->merge_text. */
struct ea__merge {
    uint32_t left_off, left_len, right_off, right_len;
};

/* Growable id list with a hard maximum (the caller's bound on output). */
struct ea__ids {
    int32_t *v;
    size_t n, cap, max;
};

struct ea_tokenizer {
    enum ea_tokenizer_kind kind;
    char pre[64];

    uint32_t n_vocab;
    struct ea__tok_entry *tok;
    char *text;   /* all token texts, NUL after each */
    char *pieces; /* all pieces */
    size_t max_piece;
    uint32_t max_text; /* longest token text (WordPiece search window) */

    /* text -> id: open addressing, slot = id + 1, 0 = empty */
    uint32_t *index;
    uint32_t index_mask;

    /* BPE merges: rank = position; (left, right) -> rank table likewise */
    struct ea__merge *merges;
    uint32_t n_merges;
    char *merge_text;
    uint32_t *merge_index;
    uint32_t merge_mask;

    /* pre-tokenizer (BPE) */
    pcre2_code *re[EA__TOK_MAX_REGEX];
    unsigned n_re;
    pcre2_general_context *pcre_gc; /* routes PCRE2 allocations to ea_malloc */
    bool ignore_merges; /* a word that is a whole token skips the merges */

    bool add_space_prefix; /* SPM: " " before the first text fragment */
    bool add_bos, add_eos, add_sep;
    bool lowercase, strip_accents; /* WordPiece normalizer */

    int32_t bos, eos, eot, eom, unk, sep, pad, mask;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;

    uint8_t *eog; /* bitmap over ids */

    int32_t *special; /* control/user-defined/unknown ids, longest text first */
    uint32_t n_special;

    int32_t byte_token[256]; /* byte-fallback (SPM) or mapped-byte (BPE) ids */
};

/* ---- tables and helpers (vocab.c) -------------------------------------- */

int32_t ea__tok_lookup(const ea_tokenizer *t, const char *s, size_t n);
/* Rank of the merge (left, right) or -1. */
int32_t ea__tok_merge_rank(const ea_tokenizer *t, const char *l, size_t ln, const char *r,
                           size_t rn);
static inline const char *ea__tok_text(const ea_tokenizer *t, int32_t id)
{
    return t->text + t->tok[id].off;
}

ea_status ea__ids_push(struct ea__ids *ids, int32_t id, struct ea_error *err);

/* GPT-2 reversible byte <-> code point mapping (bpe.c). */
uint32_t ea__gpt2_byte_to_cp(unsigned char b);
/* The byte cp stands for, or -1 when cp is not in the mapping. */
int ea__gpt2_cp_to_byte(uint32_t cp);

/* ---- pre-tokenizer (pretok.c) ------------------------------------------ */

/* Picks the regex set and flags for pre (BPE). EA_EUNSUPPORTED if unknown. */
ea_status ea__pretok_setup(ea_tokenizer *t, const char *pre, struct ea_error *err);
void ea__pretok_release(ea_tokenizer *t);
/* Whether pre names a pre-tokenizer we implement. */
bool ea__pretok_known(const char *pre);
/* The pre-tokenizer whose regex list is exactly re[0..n), or NULL. */
const char *ea__pretok_from_regexes(const char *const *re, unsigned n);

/* A piece [off, off+len) of a text. */
struct ea__span {
    uint32_t off, len;
};
struct ea__spans {
    struct ea__span *v;
    size_t n, cap;
};
/* Splits valid UTF-8 text[0..len) into words with t's regexes (each regex
 * splits every current piece into matches and the gaps between them). */
ea_status ea__pretok_split(const ea_tokenizer *t, const char *text, size_t len,
                           struct ea__spans *out, struct ea_error *err);
ea_status ea__spans_push(struct ea__spans *s, uint32_t off, uint32_t len, struct ea_error *err);

/* ---- encoders ------------------------------------------------------------ */

/* Each appends the ids of one raw-text fragment to out. SPM adds the space
 * prefix first when space_prefix is set. */
ea_status ea__spm_encode(const ea_tokenizer *t, const char *text, size_t len, bool space_prefix,
                         struct ea__ids *out, struct ea_error *err);
ea_status ea__bpe_encode(const ea_tokenizer *t, const char *text, size_t len,
                         struct ea__ids *out, struct ea_error *err);
ea_status ea__wpm_encode(const ea_tokenizer *t, const char *text, size_t len,
                         struct ea__ids *out, struct ea_error *err);

/* Copies s[0..n) with every byte that does not start a valid UTF-8 sequence
 * replaced by U+FFFD; *out is ea_malloc'd (caller frees). */
ea_status ea__utf8_sanitize(const char *s, size_t n, char **out, size_t *out_len,
                            struct ea_error *err);

/* ---- unicode tables for WordPiece (unicode_data.c) --------------------- */

enum {
    EA__UC_WHITESPACE = 1,
    EA__UC_CONTROL = 2,  /* Cc, Cf, Cs, Co */
    EA__UC_PUNCT = 4,    /* P* */
    EA__UC_SYMBOL = 8,   /* S* */
    EA__UC_MARK = 16,    /* M* */
};
unsigned ea__uc_flags(uint32_t cp);
uint32_t ea__uc_lower(uint32_t cp);
/* First code point of the canonical decomposition (cp itself if none). */
uint32_t ea__uc_nfd_base(uint32_t cp);

#endif
