/* vocab.c - builds an ea_tokenizer from GGUF tokenizer.* metadata: token
 * texts, scores and types, the text -> id and merge -> rank tables, special
 * ids and their defaults, end-of-generation detection by token text, the
 * special-token list used to split text, and every token's piece.
 *
 * The rules (defaults per tokenizer model, which texts mark EOT/EOG, the
 * Phi-3 right-strip) are llama.cpp's, so that ids agree with it.
 * Does not hold: the encoders (spm.c, bpe.c, wpm.c), the pre-tokenizer
 * regexes (pretok.c) or detokenization (detok.c).
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_int.h"
#include "util/utf8.h"

#define SPACE_MARK "\xe2\x96\x81" /* U+2581, SentencePiece's visible space */

/* ---- hashing ------------------------------------------------------------- */

static uint32_t hash_bytes(uint32_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t hash_text(const char *s, size_t n) { return hash_bytes(2166136261u, s, n); }

static uint32_t hash_pair(const char *l, size_t ln, const char *r, size_t rn)
{
    uint32_t h = hash_bytes(2166136261u, l, ln);
    h = (h ^ 0x1FFu) * 16777619u; /* separator: (ab, c) and (a, bc) differ */
    return hash_bytes(h, r, rn);
}

static uint32_t table_size(uint32_t n)
{
    uint32_t size = 16;
    while (size < n * 2u)
        size <<= 1;
    return size;
}

int32_t ea__tok_lookup(const ea_tokenizer *t, const char *s, size_t n)
{
    uint32_t i = hash_text(s, n) & t->index_mask;
    for (;;) {
        uint32_t slot = t->index[i];
        if (!slot)
            return -1;
        const struct ea__tok_entry *e = &t->tok[slot - 1];
        if (e->len == n && memcmp(t->text + e->off, s, n) == 0)
            return (int32_t)(slot - 1);
        i = (i + 1) & t->index_mask;
    }
}

int32_t ea__tok_merge_rank(const ea_tokenizer *t, const char *l, size_t ln, const char *r,
                           size_t rn)
{
    if (!t->merge_index)
        return -1;
    uint32_t i = hash_pair(l, ln, r, rn) & t->merge_mask;
    for (;;) {
        uint32_t slot = t->merge_index[i];
        if (!slot)
            return -1;
        const struct ea__merge *m = &t->merges[slot - 1];
        if (m->left_len == ln && m->right_len == rn &&
            memcmp(t->merge_text + m->left_off, l, ln) == 0 &&
            memcmp(t->merge_text + m->right_off, r, rn) == 0)
            return (int32_t)(slot - 1);
        i = (i + 1) & t->merge_mask;
    }
}

ea_status ea__ids_push(struct ea__ids *ids, int32_t id, struct ea_error *err)
{
    if (ids->n == ids->cap) {
        if (ids->cap >= ids->max)
            return ea_error_set(err, EA_ETOOBIG, "tokenize: the text has more than %zu tokens",
                                ids->max);
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        if (cap > ids->max)
            cap = ids->max;
        int32_t *v = ea_realloc(ids->v, cap * sizeof *v);
        if (!v)
            return ea_error_set(err, EA_ENOMEM, "tokenizer: out of memory");
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return EA_OK;
}

/* ---- metadata helpers ---------------------------------------------------- */

/* Reads an optional id key: absent keeps *id; a value outside the vocabulary
 * keeps *id too (llama.cpp warns and keeps its default; stories260K stores
 * 4294967295 for "none"); a non-integer is malformed. */
static ea_status opt_id(const ea_gguf *g, const char *key, uint32_t n_vocab, int32_t *id,
                        struct ea_error *err)
{
    const struct ea_gguf_kv *kv = ea_gguf_find(g, key);
    if (!kv)
        return EA_OK;
    int64_t v;
    uint64_t u;
    if (ea_gguf_value_i64(&kv->value, &v) != EA_OK) {
        if (ea_gguf_value_u64(&kv->value, &u) != EA_OK)
            return ea_error_set(err, EA_EFORMAT, "metadata key '%s' has type %s, expected an integer",
                                key, ea_gguf_vtype_name(kv->value.type));
        return EA_OK; /* huge unsigned: out of range */
    }
    if (v >= 0 && v < (int64_t)n_vocab)
        *id = (int32_t)v;
    return EA_OK;
}

static ea_status opt_bool(const ea_gguf *g, const char *key, bool *out, struct ea_error *err)
{
    const struct ea_gguf_kv *kv = ea_gguf_find(g, key);
    if (!kv)
        return EA_OK;
    if (kv->value.type != EA_GGUF_BOOL)
        return ea_error_set(err, EA_EFORMAT, "metadata key '%s' has type %s, expected BOOL", key,
                            ea_gguf_vtype_name(kv->value.type));
    *out = kv->value.v.b;
    return EA_OK;
}

static bool is_int_type(ea_gguf_vtype t)
{
    return t == EA_GGUF_UINT8 || t == EA_GGUF_INT8 || t == EA_GGUF_UINT16 || t == EA_GGUF_INT16 ||
           t == EA_GGUF_UINT32 || t == EA_GGUF_INT32 || t == EA_GGUF_UINT64 || t == EA_GGUF_INT64;
}

/* ---- loading ------------------------------------------------------------- */

static ea_status load_tokens(ea_tokenizer *t, const struct ea_gguf_value *arr,
                             struct ea_error *err)
{
    uint64_t n = arr->v.arr.n;
    if (n == 0)
        return ea_error_set(err, EA_EFORMAT, "tokenizer.ggml.tokens is empty");
    if (n > EA_TOKENIZER_MAX_VOCAB)
        return ea_error_set(err, EA_ETOOBIG, "tokenizer.ggml.tokens has %" PRIu64
                            " tokens, more than the limit %u", n, EA_TOKENIZER_MAX_VOCAB);
    t->n_vocab = (uint32_t)n;
    t->tok = ea_calloc(n, sizeof *t->tok);
    if (!t->tok)
        return ea_error_set(err, EA_ENOMEM, "out of memory for %" PRIu64 " tokens", n);
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = arr->v.arr.strs[i].len;
        if (len > EA_TOKENIZER_MAX_TOKEN_LEN)
            return ea_error_set(err, EA_EFORMAT, "tokenizer.ggml.tokens[%" PRIu64 "] is %" PRIu64
                                " bytes long, more than %u", i, len, EA_TOKENIZER_MAX_TOKEN_LEN);
        total += (len ? len : 24) + 1; /* empty -> "[EMPTY_<i>]" */
    }
    if (total > UINT32_MAX)
        return ea_error_set(err, EA_ETOOBIG, "tokenizer.ggml.tokens: %" PRIu64 " bytes of text",
                            total);
    t->text = ea_malloc(total);
    if (!t->text)
        return ea_error_set(err, EA_ENOMEM, "out of memory for token texts");
    uint32_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct ea_gguf_str s = arr->v.arr.strs[i];
        struct ea__tok_entry *e = &t->tok[i];
        e->off = off;
        if (s.len == 0) {
            /* llama.cpp renames empty tokens so that texts stay unique */
            int k = snprintf(t->text + off, 25, "[EMPTY_%" PRIu64 "]", i);
            e->len = (uint32_t)k;
        } else {
            memcpy(t->text + off, s.ptr, s.len);
            e->len = (uint32_t)s.len;
        }
        t->text[off + e->len] = '\0';
        off += e->len + 1;
        if (e->len > t->max_text)
            t->max_text = e->len;
        e->attr = EA_TOKEN_ATTR_NORMAL;
    }
    return EA_OK;
}

static ea_status build_index(ea_tokenizer *t, struct ea_error *err)
{
    uint32_t size = table_size(t->n_vocab);
    t->index = ea_calloc(size, sizeof *t->index);
    if (!t->index)
        return ea_error_set(err, EA_ENOMEM, "out of memory for the token index");
    t->index_mask = size - 1;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        const struct ea__tok_entry *e = &t->tok[id];
        uint32_t i = hash_text(t->text + e->off, e->len) & t->index_mask;
        while (t->index[i]) {
            const struct ea__tok_entry *o = &t->tok[t->index[i] - 1];
            if (o->len == e->len && memcmp(t->text + o->off, t->text + e->off, e->len) == 0)
                return ea_error_set(err, EA_EFORMAT,
                                    "tokenizer.ggml.tokens[%u] repeats the text of token %u", id,
                                    t->index[i] - 1);
            i = (i + 1) & t->index_mask;
        }
        t->index[i] = id + 1;
    }
    return EA_OK;
}

static ea_status load_types_scores(ea_tokenizer *t, const ea_gguf *g, struct ea_error *err)
{
    const struct ea_gguf_kv *kv = ea_gguf_find(g, "tokenizer.ggml.scores");
    if (kv) {
        const struct ea_gguf_value *v = &kv->value;
        if (v->type != EA_GGUF_ARRAY ||
            (v->v.arr.elem_type != EA_GGUF_FLOAT32 && v->v.arr.elem_type != EA_GGUF_FLOAT64))
            return ea_error_set(err, EA_EFORMAT, "tokenizer.ggml.scores is not an array of floats");
        if (v->v.arr.n < t->n_vocab)
            return ea_error_set(err, EA_EFORMAT,
                                "tokenizer.ggml.scores has %" PRIu64 " entries for %u tokens",
                                v->v.arr.n, t->n_vocab);
        for (uint32_t i = 0; i < t->n_vocab; i++)
            t->tok[i].score = (float)ea_gguf_arr_f64(v, i);
    }
    kv = ea_gguf_find(g, "tokenizer.ggml.token_type");
    if (kv) {
        const struct ea_gguf_value *v = &kv->value;
        if (v->type != EA_GGUF_ARRAY || !is_int_type(v->v.arr.elem_type))
            return ea_error_set(err, EA_EFORMAT,
                                "tokenizer.ggml.token_type is not an array of integers");
        if (v->v.arr.n < t->n_vocab)
            return ea_error_set(err, EA_EFORMAT,
                                "tokenizer.ggml.token_type has %" PRIu64 " entries for %u tokens",
                                v->v.arr.n, t->n_vocab);
        for (uint32_t i = 0; i < t->n_vocab; i++) {
            uint32_t a;
            switch (ea_gguf_arr_i64(v, i)) {
            case EA__TT_NORMAL: a = EA_TOKEN_ATTR_NORMAL; break;
            case EA__TT_UNKNOWN: a = EA_TOKEN_ATTR_UNKNOWN; break;
            case EA__TT_CONTROL: a = EA_TOKEN_ATTR_CONTROL; break;
            case EA__TT_USER_DEFINED: a = EA_TOKEN_ATTR_USER_DEFINED; break;
            case EA__TT_UNUSED: a = EA_TOKEN_ATTR_UNUSED; break;
            case EA__TT_BYTE: a = EA_TOKEN_ATTR_BYTE; break;
            default: a = 0; break; /* undefined: rendered as nothing */
            }
            t->tok[i].attr = a;
        }
    }
    return EA_OK;
}

static ea_status load_merges(ea_tokenizer *t, const ea_gguf *g, struct ea_error *err)
{
    const struct ea_gguf_value *arr;
    ea_status s = ea_gguf_get_arr(g, "tokenizer.ggml.merges", EA_GGUF_STRING, &arr, err);
    if (s)
        return s;
    uint64_t n = arr->v.arr.n;
    if (n > (uint64_t)EA_TOKENIZER_MAX_VOCAB * 4)
        return ea_error_set(err, EA_ETOOBIG, "tokenizer.ggml.merges has %" PRIu64 " entries", n);
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++)
        total += arr->v.arr.strs[i].len;
    if (total > UINT32_MAX)
        return ea_error_set(err, EA_ETOOBIG, "tokenizer.ggml.merges: %" PRIu64 " bytes", total);
    t->merges = ea_malloc((n ? n : 1) * sizeof *t->merges);
    t->merge_text = ea_malloc(total ? total : 1);
    uint32_t size = table_size((uint32_t)n);
    t->merge_index = ea_calloc(size, sizeof *t->merge_index);
    if (!t->merges || !t->merge_text || !t->merge_index)
        return ea_error_set(err, EA_ENOMEM, "out of memory for %" PRIu64 " merges", n);
    t->merge_mask = size - 1;
    uint32_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct ea_gguf_str m = arr->v.arr.strs[i];
        /* split at the first space after the first byte, as llama.cpp does */
        const char *sp = m.len > 1 ? memchr(m.ptr + 1, ' ', m.len - 1) : NULL;
        if (!sp)
            return ea_error_set(err, EA_EFORMAT,
                                "tokenizer.ggml.merges[%" PRIu64 "] has no space between its halves",
                                i);
        memcpy(t->merge_text + off, m.ptr, m.len);
        struct ea__merge *e = &t->merges[i];
        e->left_off = off;
        e->left_len = (uint32_t)(sp - m.ptr);
        e->right_off = off + e->left_len + 1;
        e->right_len = (uint32_t)(m.len - e->left_len - 1);
        off += (uint32_t)m.len;
        const char *l = t->merge_text + e->left_off, *r = t->merge_text + e->right_off;
        uint32_t h = hash_pair(l, e->left_len, r, e->right_len) & t->merge_mask;
        bool dup = false;
        while (t->merge_index[h]) {
            const struct ea__merge *o = &t->merges[t->merge_index[h] - 1];
            if (o->left_len == e->left_len && o->right_len == e->right_len &&
                !memcmp(t->merge_text + o->left_off, l, e->left_len) &&
                !memcmp(t->merge_text + o->right_off, r, e->right_len)) {
                dup = true; /* keep the first (lowest) rank, like a map emplace */
                break;
            }
            h = (h + 1) & t->merge_mask;
        }
        if (!dup)
            t->merge_index[h] = (uint32_t)i + 1;
    }
    t->n_merges = (uint32_t)n;
    return EA_OK;
}

/* ---- special tokens ------------------------------------------------------ */

/* Texts llama.cpp uses to find EOT / EOM / FIM tokens when the metadata does
 * not name them, in the order we try them (first present wins). */
static const char *const eot_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
    "<end_of_utterance>", NULL};
static const char *const eom_texts[] = {"<|eom_id|>", NULL};
static const char *const fim_pre_texts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>", SPACE_MARK "<PRE>",
    "<|code_prefix|>", "<|prefix|>", NULL};
static const char *const fim_suf_texts[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>", "<SUF>", SPACE_MARK "<SUF>",
    "<|code_suffix|>", "<|suffix|>", NULL};
static const char *const fim_mid_texts[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>",
    "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>", SPACE_MARK "<MID>",
    "<|code_middle|>", "<|middle|>", NULL};
static const char *const fim_pad_texts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
                                            "[PAD]", NULL};
static const char *const fim_rep_texts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                            "<REPO>", "<reponame>", NULL};
static const char *const fim_sep_texts[] = {"<|file_sep|>", NULL};
/* Tokens that end a generation, recognised by text. */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", NULL};

static int32_t find_cstr(const ea_tokenizer *t, const char *s)
{
    return ea__tok_lookup(t, s, strlen(s));
}

/* When *id is unset, the first listed text present becomes it (and control). */
static void detect_by_text(ea_tokenizer *t, int32_t *id, const char *const *texts)
{
    if (*id >= 0)
        return;
    for (unsigned i = 0; texts[i]; i++) {
        int32_t k = find_cstr(t, texts[i]);
        if (k >= 0) {
            *id = k;
            t->tok[k].attr |= EA_TOKEN_ATTR_CONTROL;
            return;
        }
    }
}

static void eog_set(ea_tokenizer *t, int32_t id, bool on)
{
    if (id < 0)
        return;
    if (on)
        t->eog[id >> 3] |= (uint8_t)(1u << (id & 7));
    else
        t->eog[id >> 3] &= (uint8_t)~(1u << (id & 7));
}

static bool eog_has(const ea_tokenizer *t, int32_t id)
{
    return id >= 0 && (t->eog[id >> 3] >> (id & 7)) & 1;
}

static ea_status setup_eog(ea_tokenizer *t, struct ea_error *err)
{
    t->eog = ea_calloc((t->n_vocab + 7) / 8, 1);
    if (!t->eog)
        return ea_error_set(err, EA_ENOMEM, "out of memory");
    detect_by_text(t, &t->eot, eot_texts);
    detect_by_text(t, &t->eom, eom_texts);
    detect_by_text(t, &t->fim_pre, fim_pre_texts);
    detect_by_text(t, &t->fim_suf, fim_suf_texts);
    detect_by_text(t, &t->fim_mid, fim_mid_texts);
    detect_by_text(t, &t->fim_pad, fim_pad_texts);
    detect_by_text(t, &t->fim_rep, fim_rep_texts);
    detect_by_text(t, &t->fim_sep, fim_sep_texts);

    /* control tokens named "unused" are unused */
    for (uint32_t id = 0; id < t->n_vocab; id++)
        if ((t->tok[id].attr & EA_TOKEN_ATTR_CONTROL) && strstr(ea__tok_text(t, (int32_t)id), "unused"))
            t->tok[id].attr |= EA_TOKEN_ATTR_UNUSED;

    eog_set(t, t->fim_pad, true);
    eog_set(t, t->fim_rep, true);
    eog_set(t, t->fim_sep, true);
    for (unsigned i = 0; eog_texts[i]; i++) {
        int32_t k = find_cstr(t, eog_texts[i]);
        if (k >= 0) {
            eog_set(t, k, true);
            t->tok[k].attr |= EA_TOKEN_ATTR_CONTROL;
        }
    }
    eog_set(t, t->eos, true);
    eog_set(t, t->eot, true);
    eog_set(t, t->eom, true);

    /* gpt-oss / solar-open: <|end|> separates messages, it does not end the
     * generation when <|return|> and <|call|> (or <|calls|> and <|flush|>) exist */
    int32_t end = find_cstr(t, "<|end|>");
    bool ret = eog_has(t, find_cstr(t, "<|return|>"));
    bool call = eog_has(t, find_cstr(t, "<|call|>")) || eog_has(t, find_cstr(t, "<|calls|>"));
    bool flush = eog_has(t, find_cstr(t, "<|flush|>"));
    if (eog_has(t, end) && ((ret && call) || (call && flush))) {
        eog_set(t, end, false);
        t->tok[end].attr = EA_TOKEN_ATTR_USER_DEFINED;
    }
    /* gemma4: </s> is an ordinary token when <|tool_response> exists */
    int32_t s_id = find_cstr(t, "</s>");
    if (eog_has(t, s_id) && eog_has(t, find_cstr(t, "<|tool_response>"))) {
        eog_set(t, s_id, false);
        t->tok[s_id].attr = EA_TOKEN_ATTR_NORMAL;
    }
    return EA_OK;
}

/* Longest text first (a longer special token wins over its prefix), ties by
 * id so that the order is deterministic; merge sort keeps it simple. */
static void sort_specials(const ea_tokenizer *t, int32_t *v, uint32_t n, int32_t *tmp)
{
    if (n < 2)
        return;
    uint32_t h = n / 2;
    sort_specials(t, v, h, tmp);
    sort_specials(t, v + h, n - h, tmp);
    uint32_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int32_t a = v[i], b = v[j];
        bool take_b = t->tok[b].len > t->tok[a].len || (t->tok[b].len == t->tok[a].len && b < a);
        tmp[k++] = take_b ? v[j++] : v[i++];
    }
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static ea_status setup_specials(ea_tokenizer *t, const ea_gguf *g, struct ea_error *err)
{
    uint32_t n = 0;
    const uint32_t mask = EA_TOKEN_ATTR_CONTROL | EA_TOKEN_ATTR_USER_DEFINED | EA_TOKEN_ATTR_UNKNOWN;
    for (uint32_t id = 0; id < t->n_vocab; id++)
        if (t->tok[id].attr & mask)
            n++;
    t->special = ea_malloc((n ? n : 1) * sizeof *t->special);
    int32_t *tmp = ea_malloc((n ? n : 1) * sizeof *tmp);
    if (!t->special || !tmp) {
        ea_free(tmp);
        return ea_error_set(err, EA_ENOMEM, "out of memory");
    }
    n = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++)
        if (t->tok[id].attr & mask)
            t->special[n++] = (int32_t)id;
    sort_specials(t, t->special, n, tmp);
    ea_free(tmp);
    t->n_special = n;

    /* Phi-3 (recognised by general.name, as llama.cpp does): special tokens
     * eat the whitespace after them, except <unk>, <s> and <|endoftext|>. */
    struct ea_gguf_str name = {0};
    const struct ea_gguf_kv *kv = ea_gguf_find(g, "general.name");
    if (kv && kv->value.type == EA_GGUF_STRING)
        name = kv->value.v.str;
    char lower[256];
    size_t ln = name.len < sizeof lower - 1 ? name.len : sizeof lower - 1;
    for (size_t i = 0; i < ln; i++) {
        char c = name.ptr[i];
        lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    lower[ln] = '\0';
    if (strstr(lower, "phi-3") || strstr(lower, "phi3")) {
        for (uint32_t i = 0; i < t->n_special; i++)
            t->tok[t->special[i]].attr |= EA_TOKEN_ATTR_RSTRIP;
        int32_t k = find_cstr(t, "</s>");
        if (k >= 0)
            t->tok[k].attr |= EA_TOKEN_ATTR_RSTRIP;
        static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (unsigned i = 0; i < 3; i++)
            if ((k = find_cstr(t, keep[i])) >= 0)
                t->tok[k].attr &= ~EA_TOKEN_ATTR_RSTRIP;
    }
    return EA_OK;
}

/* ---- pieces -------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The byte of a "<0xNN>" token, or -1. */
static int byte_token_value(const char *s, uint32_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* Writes the piece of id into dst (room for its text: a piece is never
 * longer) and returns its length. */
static uint32_t make_piece(const ea_tokenizer *t, int32_t id, char *dst)
{
    const struct ea__tok_entry *e = &t->tok[id];
    const char *s = t->text + e->off;
    uint32_t n = e->len, o = 0;
    if (e->attr & (EA_TOKEN_ATTR_UNKNOWN | EA_TOKEN_ATTR_CONTROL | EA_TOKEN_ATTR_USER_DEFINED)) {
        memcpy(dst, s, n);
        return n;
    }
    if (e->attr & EA_TOKEN_ATTR_NORMAL) {
        if (t->kind == EA_TOKENIZER_BPE) {
            /* byte-level: each code point stands for one byte; code points
             * outside the mapping are kept as they are */
            for (uint32_t i = 0; i < n;) {
                uint32_t cp;
                size_t k = ea__utf8_decode(s + i, n - i, &cp);
                int b = k ? ea__gpt2_cp_to_byte(cp) : -1;
                if (b >= 0) {
                    dst[o++] = (char)b;
                } else {
                    if (!k)
                        k = 1;
                    memcpy(dst + o, s + i, k);
                    o += (uint32_t)k;
                }
                i += (uint32_t)k;
            }
            return o;
        }
        for (uint32_t i = 0; i < n;) {
            if (i + 3 <= n && memcmp(s + i, SPACE_MARK, 3) == 0) {
                dst[o++] = ' ';
                i += 3;
            } else {
                dst[o++] = s[i++];
            }
        }
        return o;
    }
    if (e->attr & EA_TOKEN_ATTR_BYTE) {
        int b = byte_token_value(s, n);
        if (b >= 0) {
            dst[0] = (char)b;
            return 1;
        }
        memcpy(dst, s, n);
        return n;
    }
    return 0; /* unused / undefined: nothing, like a control token */
}

static ea_status build_pieces(ea_tokenizer *t, struct ea_error *err)
{
    size_t total = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++)
        total += t->tok[id].len;
    /* pieces are never longer than the text */
    t->pieces = ea_malloc(total ? total : 1);
    if (!t->pieces)
        return ea_error_set(err, EA_ENOMEM, "out of memory for token pieces");
    uint32_t off = 0;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        uint32_t n = make_piece(t, (int32_t)id, t->pieces + off);
        t->tok[id].piece_off = off;
        t->tok[id].piece_len = n;
        off += n;
        if (n > t->max_piece)
            t->max_piece = n;
    }
    return EA_OK;
}

static void setup_byte_tokens(ea_tokenizer *t)
{
    for (unsigned b = 0; b < 256; b++) {
        char buf[8];
        int32_t id = -1;
        if (t->kind == EA_TOKENIZER_BPE) {
            size_t n = ea__utf8_encode(ea__gpt2_byte_to_cp((unsigned char)b), buf);
            id = ea__tok_lookup(t, buf, n);
        } else {
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            id = ea__tok_lookup(t, buf, 6);
            if (id < 0) {
                buf[0] = (char)b;
                id = ea__tok_lookup(t, buf, 1);
            }
        }
        t->byte_token[b] = id;
    }
}

/* ---- create / destroy ---------------------------------------------------- */

static ea_status load(ea_tokenizer *t, const ea_gguf *g, struct ea_error *err)
{
    struct ea_gguf_str model;
    ea_status s = ea_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (s)
        return s;
    char pre[64] = "default";
    const struct ea_gguf_kv *kv = ea_gguf_find(g, "tokenizer.ggml.pre");
    if (kv) {
        if (kv->value.type != EA_GGUF_STRING)
            return ea_error_set(err, EA_EFORMAT, "metadata key 'tokenizer.ggml.pre' has type %s, "
                                "expected STRING", ea_gguf_vtype_name(kv->value.type));
        struct ea_gguf_str p = kv->value.v.str;
        if (p.len >= sizeof pre || memchr(p.ptr, '\0', p.len))
            return ea_error_set(err, EA_EFORMAT, "tokenizer.ggml.pre is not a short name");
        if (p.len) {
            memcpy(pre, p.ptr, p.len);
            pre[p.len] = '\0';
        }
    }

    /* llama.cpp's defaults per tokenizer model; metadata overrides them */
    t->eot = t->eom = t->sep = t->pad = t->mask = -1;
    t->fim_pre = t->fim_suf = t->fim_mid = t->fim_pad = t->fim_rep = t->fim_sep = -1;
    if (ea_gguf_str_eq(model, "llama")) {
        t->kind = EA_TOKENIZER_SPM;
        t->bos = 1, t->eos = 2, t->unk = 0;
        t->add_space_prefix = true;
        t->add_bos = true;
        snprintf(pre, sizeof pre, "default"); /* SPM has no pre-tokenizer */
    } else if (ea_gguf_str_eq(model, "gpt2")) {
        t->kind = EA_TOKENIZER_BPE;
        t->bos = 11, t->eos = 11, t->unk = -1;
    } else if (ea_gguf_str_eq(model, "bert")) {
        t->kind = EA_TOKENIZER_WPM;
        t->bos = 101, t->eos = -1, t->unk = 100, t->sep = 102, t->pad = 0, t->mask = 103;
        t->add_bos = true, t->add_sep = true;
        t->lowercase = true;
        snprintf(pre, sizeof pre, "default");
    } else if (ea_gguf_str_eq(model, "no_vocab") || ea_gguf_str_eq(model, "none")) {
        return ea_error_set(err, EA_EUNSUPPORTED, "the model has no vocabulary (tokenizer.ggml.model "
                            "'%.*s')", (int)model.len, model.ptr);
    } else {
        return ea_error_set(err, EA_EUNSUPPORTED, "tokenizer model '%.*s' is not supported "
                            "(llama, gpt2 and bert are)", (int)(model.len > 64 ? 64 : model.len),
                            model.ptr);
    }
    snprintf(t->pre, sizeof t->pre, "%s", pre);

    const struct ea_gguf_value *tokens;
    if ((s = ea_gguf_get_arr(g, "tokenizer.ggml.tokens", EA_GGUF_STRING, &tokens, err)))
        return s;
    if ((s = load_tokens(t, tokens, err)) || (s = load_types_scores(t, g, err)) ||
        (s = build_index(t, err)))
        return s;
    if (t->kind == EA_TOKENIZER_BPE) {
        if ((s = load_merges(t, g, err)) || (s = ea__pretok_setup(t, pre, err)))
            return s;
    }

    if ((s = opt_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err)))
        return s;
    static const struct {
        const char *key;
        size_t field;
    } ids[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(ea_tokenizer, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(ea_tokenizer, eos)},
        {"tokenizer.ggml.eot_token_id", offsetof(ea_tokenizer, eot)},
        {"tokenizer.ggml.eom_token_id", offsetof(ea_tokenizer, eom)},
        {"tokenizer.ggml.unknown_token_id", offsetof(ea_tokenizer, unk)},
        {"tokenizer.ggml.seperator_token_id", offsetof(ea_tokenizer, sep)},
        {"tokenizer.ggml.padding_token_id", offsetof(ea_tokenizer, pad)},
        {"tokenizer.ggml.mask_token_id", offsetof(ea_tokenizer, mask)},
        {"tokenizer.ggml.fim_pre_token_id", offsetof(ea_tokenizer, fim_pre)},
        {"tokenizer.ggml.fim_suf_token_id", offsetof(ea_tokenizer, fim_suf)},
        {"tokenizer.ggml.fim_mid_token_id", offsetof(ea_tokenizer, fim_mid)},
        {"tokenizer.ggml.fim_pad_token_id", offsetof(ea_tokenizer, fim_pad)},
        {"tokenizer.ggml.fim_rep_token_id", offsetof(ea_tokenizer, fim_rep)},
        {"tokenizer.ggml.fim_sep_token_id", offsetof(ea_tokenizer, fim_sep)},
        {"tokenizer.ggml.prefix_token_id", offsetof(ea_tokenizer, fim_pre)},
        {"tokenizer.ggml.suffix_token_id", offsetof(ea_tokenizer, fim_suf)},
        {"tokenizer.ggml.middle_token_id", offsetof(ea_tokenizer, fim_mid)},
    };
    for (unsigned i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        int32_t *field = (int32_t *)((char *)t + ids[i].field);
        if ((s = opt_id(g, ids[i].key, t->n_vocab, field, err)))
            return s;
    }
    if ((s = opt_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err)) ||
        (s = opt_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos, err)) ||
        (s = opt_bool(g, "tokenizer.ggml.add_sep_token", &t->add_sep, err)) ||
        (s = opt_bool(g, "tokenizer.ggml.normalizer.lowercase", &t->lowercase, err)))
        return s;
    t->strip_accents = t->lowercase;
    if ((s = opt_bool(g, "tokenizer.ggml.normalizer.strip_accents", &t->strip_accents, err)))
        return s;
    /* defaults may point past a small vocabulary */
    int32_t *all[] = {&t->bos, &t->eos, &t->eot, &t->eom, &t->unk, &t->sep, &t->pad, &t->mask};
    for (unsigned i = 0; i < sizeof all / sizeof all[0]; i++)
        if (*all[i] >= (int32_t)t->n_vocab)
            *all[i] = -1;
    /* llama.cpp asserts here; a vocabulary that asks for a missing token
     * simply does not get it */
    if (t->bos < 0)
        t->add_bos = false;
    if (t->eos < 0)
        t->add_eos = false;
    if (t->sep < 0)
        t->add_sep = false;

    if ((s = setup_eog(t, err)) || (s = setup_specials(t, g, err)))
        return s;
    setup_byte_tokens(t);
    return build_pieces(t, err);
}

ea_status ea_tokenizer_create(const ea_gguf *g, ea_tokenizer **out, struct ea_error *err)
{
    if (!g || !out)
        return ea_error_set(err, EA_EINVAL, "tokenizer: NULL argument");
    *out = NULL;
    ea_tokenizer *t = ea_calloc(1, sizeof *t);
    if (!t)
        return ea_error_set(err, EA_ENOMEM, "tokenizer: out of memory");
    ea_status s = load(t, g, err);
    if (s) {
        ea_tokenizer_destroy(t);
        return ea_error_prefix(err, "tokenizer");
    }
    *out = t;
    return EA_OK;
}

void ea_tokenizer_destroy(ea_tokenizer *t)
{
    if (!t)
        return;
    ea__pretok_release(t);
    ea_free(t->tok);
    ea_free(t->text);
    ea_free(t->pieces);
    ea_free(t->index);
    ea_free(t->merges);
    ea_free(t->merge_text);
    ea_free(t->merge_index);
    ea_free(t->eog);
    ea_free(t->special);
    ea_free(t);
}

/* ---- getters ------------------------------------------------------------- */

enum ea_tokenizer_kind ea_tokenizer_kind(const ea_tokenizer *t) { return t->kind; }
const char *ea_tokenizer_pre(const ea_tokenizer *t) { return t->pre; }
uint32_t ea_tokenizer_n_vocab(const ea_tokenizer *t) { return t->n_vocab; }
int32_t ea_tokenizer_bos(const ea_tokenizer *t) { return t->bos; }
int32_t ea_tokenizer_eos(const ea_tokenizer *t) { return t->eos; }
int32_t ea_tokenizer_eot(const ea_tokenizer *t) { return t->eot; }
int32_t ea_tokenizer_eom(const ea_tokenizer *t) { return t->eom; }
int32_t ea_tokenizer_unk(const ea_tokenizer *t) { return t->unk; }
int32_t ea_tokenizer_pad(const ea_tokenizer *t) { return t->pad; }
int32_t ea_tokenizer_sep(const ea_tokenizer *t) { return t->sep; }
bool ea_tokenizer_adds_bos(const ea_tokenizer *t) { return t->add_bos; }
bool ea_tokenizer_adds_eos(const ea_tokenizer *t) { return t->add_eos; }
size_t ea_tokenizer_max_piece(const ea_tokenizer *t) { return t->max_piece; }

bool ea_tokenizer_is_eog(const ea_tokenizer *t, int32_t id)
{
    return id >= 0 && (uint32_t)id < t->n_vocab && eog_has(t, id);
}

unsigned ea_token_attr(const ea_tokenizer *t, int32_t id)
{
    return id >= 0 && (uint32_t)id < t->n_vocab ? t->tok[id].attr : 0;
}

int32_t ea_tokenizer_find(const ea_tokenizer *t, const char *s, size_t n)
{
    if (!s || n > EA_TOKENIZER_MAX_TOKEN_LEN)
        return EA_TOKEN_NONE;
    return ea__tok_lookup(t, s, n);
}

const char *ea_token_text(const ea_tokenizer *t, int32_t id)
{
    return id >= 0 && (uint32_t)id < t->n_vocab ? ea__tok_text(t, id) : NULL;
}
