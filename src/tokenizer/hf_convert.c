/* hf_convert.c - Hugging Face tokenizer.json (+ tokenizer_config.json) to
 * the tokenizer.* GGUF keys, for byte-level BPE tokenizers (Llama 3, Qwen,
 * GPT-2, SmolLM, ...), writing what llama.cpp's convert_hf_to_gguf.py writes:
 * model "gpt2", pre, tokens (gaps padded with [PAD<i>] UNUSED tokens),
 * token_type (added tokens CONTROL when special or special-looking, else
 * USER_DEFINED), merges ("a b"; the newer [a, b] pairs are joined with spaces
 * inside a half written as U+0120), special ids from the config's *_token
 * entries (or TemplateProcessing without a config), add_bos/add_eos, and the
 * chat template(s).
 *
 * The pre-tokenizer is detected from the Split regexes of the pre_tokenizer
 * (llama.cpp hashes the encoding of a probe string instead, which needs the
 * Python tokenizers library).
 * Does not hold: SentencePiece .model import, WordPiece, file I/O (the CLI).
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "tokenizer/tok_int.h"

struct conv {
    const struct ea_tokenizer_hf_params *p;
    json_t *tok, *cfg;
    uint32_t n;            /* tokens written */
    size_t cap;            /* room in the per-id tables */
    const char **text;     /* per id, NULL = gap (strings owned by the JSON) */
    size_t *text_len;
    int32_t *type;
    char **own;            /* texts we rewrote (freed at the end), NULL-terminated */
    size_t n_own_cap;
    const char *pre;
    struct ea_error *err;
};

/* ---- small JSON helpers --------------------------------------------------- */

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The content of a config entry written as "text" or {"content": "text"}. */
static const char *entry_content(json_t *v)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_object(v))
        return jstr(v, "content");
    return NULL;
}

static bool looks_special(const char *s, size_t n)
{
    static const char *const exact[] = {"<pad>", "<mask>", "<2mass>", "[@BOS@]"};
    for (unsigned i = 0; i < 4; i++)
        if (strlen(exact[i]) == n && memcmp(s, exact[i], n) == 0)
            return true;
#define STARTS(p) (n >= sizeof(p) - 1 && memcmp(s, p, sizeof(p) - 1) == 0)
#define ENDS(p) (n >= sizeof(p) - 1 && memcmp(s + n - (sizeof(p) - 1), p, sizeof(p) - 1) == 0)
    if (STARTS("<|") && ENDS("|>"))
        return true;
    if (STARTS("<\xef\xbd\x9c") && ENDS("\xef\xbd\x9c>")) /* <｜ ... ｜> (DeepSeek) */
        return true;
    if (STARTS("<unused") && ENDS(">"))
        return true;
#undef STARTS
#undef ENDS
    return false;
}

/* ---- pre-tokenizer detection ------------------------------------------------ */

/* Collects the Split regexes (in order) and notes ByteLevel/Digits steps. */
static void scan_pretok(json_t *pt, const char **re, unsigned *n_re, unsigned cap, bool *byte_level,
                        bool *byte_level_regex, bool *digits)
{
    if (!json_is_object(pt))
        return;
    const char *type = jstr(pt, "type");
    if (!type)
        return;
    if (strcmp(type, "Sequence") == 0) {
        json_t *arr = json_object_get(pt, "pretokenizers");
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) scan_pretok(v, re, n_re, cap, byte_level, byte_level_regex,
                                                  digits);
    } else if (strcmp(type, "Split") == 0) {
        const char *r = jstr(json_object_get(pt, "pattern"), "Regex");
        if (r && *n_re < cap)
            re[(*n_re)++] = r;
        else if (*n_re < cap)
            re[(*n_re)++] = ""; /* a String pattern: not something we know */
    } else if (strcmp(type, "ByteLevel") == 0) {
        *byte_level = true;
        json_t *u = json_object_get(pt, "use_regex");
        if (!json_is_boolean(u) || json_is_true(u))
            *byte_level_regex = true;
    } else if (strcmp(type, "Digits") == 0) {
        *digits = json_is_true(json_object_get(pt, "individual_digits"));
    }
}

static ea_status detect_pre(struct conv *c, bool *byte_level)
{
    const char *re[EA__TOK_MAX_REGEX + 2];
    unsigned n_re = 0;
    bool bl = false, bl_regex = false, digits = false;
    scan_pretok(json_object_get(c->tok, "pre_tokenizer"), re, &n_re, EA__TOK_MAX_REGEX + 2, &bl,
                &bl_regex, &digits);
    json_t *dec = json_object_get(c->tok, "decoder");
    if (json_is_object(dec) && jstr(dec, "type") && strcmp(jstr(dec, "type"), "ByteLevel") == 0)
        bl = true;
    *byte_level = bl;
    if (c->p->pre) {
        if (!ea__pretok_known(c->p->pre))
            return ea_error_set(c->err, EA_EUNSUPPORTED, "unknown pre-tokenizer '%s'", c->p->pre);
        c->pre = c->p->pre;
        return EA_OK;
    }
    const char *name = NULL;
    if (n_re == 1 && !digits)
        name = ea_tokenizer_pre_from_regex(re[0]);
    else if (n_re > 1)
        name = ea__pretok_from_regexes(re, n_re);
    else if (n_re == 0 && bl_regex)
        name = digits ? "smollm" : "gpt-2";
    if (!name)
        return ea_error_set(c->err, EA_EUNSUPPORTED,
                            "cannot tell the pre-tokenizer from tokenizer.json "
                            "(%u Split regex%s%s); "
                            "name it (--pre)", n_re, n_re == 1 ? ": " : "es",
                            n_re == 1 ? re[0] : "");
    c->pre = name;
    return EA_OK;
}

/* ---- vocabulary ------------------------------------------------------------- */

static ea_status set_token(struct conv *c, int64_t id, const char *s, size_t n, int32_t type)
{
    if (id < 0 || id >= (int64_t)c->cap)
        return ea_error_set(c->err, EA_EFORMAT, "tokenizer.json: token id %" PRId64
                            " is out of range", id);
    c->text[id] = s;
    c->text_len[id] = n;
    c->type[id] = type;
    if ((uint32_t)id + 1 > c->n)
        c->n = (uint32_t)id + 1;
    return EA_OK;
}

static ea_status load_vocab(struct conv *c, json_t *model, json_t *added)
{
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return ea_error_set(c->err, EA_EFORMAT, "tokenizer.json: model.vocab is not an object");
    /* first pass: the largest id sizes the tables */
    int64_t max_id = -1;
    const char *key;
    json_t *v;
    size_t i;
    json_object_foreach(vocab, key, v) {
        if (json_is_integer(v) && json_integer_value(v) > max_id)
            max_id = json_integer_value(v);
    }
    json_array_foreach(added, i, v) {
        json_t *jid = json_object_get(v, "id");
        if (json_is_integer(jid) && json_integer_value(jid) > max_id)
            max_id = json_integer_value(jid);
    }
    if (max_id >= (int64_t)EA_TOKENIZER_MAX_VOCAB)
        return ea_error_set(c->err, EA_EFORMAT, "tokenizer.json: token id %" PRId64
                            " is out of range", max_id);
    size_t cap = (size_t)(max_id + 1);
    if (c->p->vocab_size > cap && c->p->vocab_size <= EA_TOKENIZER_MAX_VOCAB)
        cap = c->p->vocab_size;
    if (cap == 0)
        cap = 1;
    c->cap = cap;
    c->text = ea_calloc(cap, sizeof *c->text);
    c->text_len = ea_calloc(cap, sizeof *c->text_len);
    c->type = ea_calloc(cap, sizeof *c->type);
    c->n_own_cap = json_array_size(added) + 1;
    c->own = ea_calloc(c->n_own_cap, sizeof *c->own);
    if (!c->text || !c->text_len || !c->type || !c->own)
        return ea_error_set(c->err, EA_ENOMEM, "out of memory");
    ea_status s;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v))
            return ea_error_set(c->err, EA_EFORMAT, "tokenizer.json: model.vocab[\"%.40s\"] is not "
                                "an integer id", key);
        json_int_t id = json_integer_value(v);
        if (id >= 0 && id < (json_int_t)c->cap && c->text[id])
            return ea_error_set(c->err, EA_EFORMAT, "tokenizer.json: id %" PRId64 " is used twice "
                                "in model.vocab", (int64_t)id);
        if ((s = set_token(c, id, key, strlen(key), EA__TT_NORMAL)))
            return s;
    }
    if (added && !json_is_array(added))
        return ea_error_set(c->err, EA_EFORMAT, "tokenizer.json: added_tokens is not an array");
    size_t n_own = 0;
    json_array_foreach(added, i, v) {
        json_t *jid = json_object_get(v, "id");
        json_t *jc = json_object_get(v, "content");
        if (!json_is_integer(jid) || !json_is_string(jc))
            return ea_error_set(c->err, EA_EFORMAT, "tokenizer.json: added_tokens[%zu] needs an "
                                "integer id and a string content", i);
        const char *text = json_string_value(jc);
        size_t n = json_string_length(jc);
        if (n == 0 || memchr(text, '\0', n))
            return ea_error_set(c->err, EA_EFORMAT, "tokenizer.json: added_tokens[%zu] has an "
                                "empty or NUL-containing content", i);
        int32_t type;
        if (json_is_true(json_object_get(v, "special")) || looks_special(text, n)) {
            type = EA__TT_CONTROL;
        } else {
            type = EA__TT_USER_DEFINED;
            /* user-defined tokens are stored pre-normalised: U+2581 -> ' ' */
            if (strstr(text, "\xe2\x96\x81")) {
                char *o = ea_malloc(n + 1);
                if (!o)
                    return ea_error_set(c->err, EA_ENOMEM, "out of memory");
                size_t k = 0;
                for (size_t j = 0; j < n;) {
                    if (j + 3 <= n && memcmp(text + j, "\xe2\x96\x81", 3) == 0) {
                        o[k++] = ' ';
                        j += 3;
                    } else {
                        o[k++] = text[j++];
                    }
                }
                o[k] = '\0';
                c->own[n_own++] = o;
                text = o;
                n = k;
            }
        }
        if ((s = set_token(c, json_integer_value(jid), text, n, type)))
            return s;
    }
    if (c->n == 0)
        return ea_error_set(c->err, EA_EFORMAT, "tokenizer.json: the vocabulary is empty");
    if (c->p->vocab_size) {
        if (c->p->vocab_size < c->n)
            return ea_error_set(c->err, EA_EINVAL, "vocab size %u is smaller than the %u ids of "
                                "tokenizer.json", c->p->vocab_size, c->n);
        if (c->p->vocab_size > EA_TOKENIZER_MAX_VOCAB)
            return ea_error_set(c->err, EA_ETOOBIG, "vocab size %u is too large", c->p->vocab_size);
        c->n = c->p->vocab_size;
    }
    return EA_OK;
}

static ea_status write_tokens(struct conv *c, ea_gguf_writer *w)
{
    struct ea_gguf_str *strs = ea_calloc(c->n, sizeof *strs);
    char (*pads)[24] = NULL;
    uint32_t n_pad = 0;
    for (uint32_t i = 0; i < c->n; i++)
        n_pad += !c->text[i];
    if (n_pad)
        pads = ea_malloc(n_pad * sizeof *pads);
    ea_status s = EA_OK;
    if (!strs || (n_pad && !pads)) {
        s = ea_error_set(c->err, EA_ENOMEM, "out of memory");
        goto out;
    }
    n_pad = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->text[i]) {
            strs[i].ptr = c->text[i];
            strs[i].len = c->text_len[i];
        } else {
            int k = snprintf(pads[n_pad], sizeof pads[n_pad], "[PAD%u]", i);
            strs[i].ptr = pads[n_pad++];
            strs[i].len = (uint64_t)k;
            c->type[i] = EA__TT_UNUSED;
        }
    }
    if ((s = ea_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", c->n, strs)) ||
        (s = ea_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", EA_GGUF_INT32, c->n, c->type)))
        ea_error_set(c->err, s, "cannot add the token list");
out:
    ea_free(pads);
    ea_free(strs);
    return s;
}

/* "a b" strings as they are; [a, b] pairs joined, spaces inside a half
 * written as U+0120 as gguf-py does. */
static ea_status write_merges(struct conv *c, ea_gguf_writer *w, json_t *merges)
{
    if (!json_is_array(merges))
        return ea_error_set(c->err, EA_EFORMAT, "tokenizer.json: model.merges is not an array");
    size_t n = json_array_size(merges);
    struct ea_gguf_str *strs = ea_calloc(n ? n : 1, sizeof *strs);
    char **own = ea_calloc(n ? n : 1, sizeof *own);
    ea_status s = EA_OK;
    if (!strs || !own) {
        s = ea_error_set(c->err, EA_ENOMEM, "out of memory for %zu merges", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(merges, i);
        if (json_is_string(m)) {
            const char *ms = json_string_value(m);
            size_t ml = json_string_length(m);
            if (ml < 3 || !memchr(ms + 1, ' ', ml - 1)) {
                s = ea_error_set(c->err, EA_EFORMAT, "tokenizer.json: merge %zu \"%.40s\" is not "
                                 "two tokens separated by a space", i, ms);
                goto out;
            }
            strs[i].ptr = ms;
            strs[i].len = ml;
            continue;
        }
        json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
        if (!json_is_array(m) || json_array_size(m) != 2 || !json_is_string(a) ||
            !json_is_string(b) || !json_string_length(a) || !json_string_length(b)) {
            s = ea_error_set(c->err, EA_EFORMAT, "tokenizer.json: merge %zu is neither \"a b\" nor "
                             "a pair of non-empty strings", i);
            goto out;
        }
        size_t la = json_string_length(a), lb = json_string_length(b);
        char *o = ea_malloc(2 * (la + lb) + 2);
        if (!o) {
            s = ea_error_set(c->err, EA_ENOMEM, "out of memory");
            goto out;
        }
        own[i] = o;
        size_t k = 0;
        for (int half = 0; half < 2; half++) {
            const char *h = json_string_value(half ? b : a);
            size_t lh = half ? lb : la;
            if (half)
                o[k++] = ' ';
            for (size_t j = 0; j < lh; j++) {
                if (h[j] == ' ') {
                    o[k++] = (char)0xC4; /* U+0120 */
                    o[k++] = (char)0xA0;
                } else {
                    o[k++] = h[j];
                }
            }
        }
        strs[i].ptr = o;
        strs[i].len = k;
    }
    if ((s = ea_gguf_writer_add_str_arr(w, "tokenizer.ggml.merges", n, strs)))
        ea_error_set(c->err, s, "cannot add the merges");
out:
    if (own)
        for (size_t i = 0; i < n; i++)
            ea_free(own[i]);
    ea_free(own);
    ea_free(strs);
    return s;
}

/* ---- special tokens ------------------------------------------------------------ */

static int64_t added_id(json_t *added, const char *content)
{
    size_t i;
    json_t *v;
    if (!content)
        return -1;
    json_array_foreach(added, i, v) {
        const char *cc = jstr(v, "content");
        json_t *id = json_object_get(v, "id");
        if (cc && strcmp(cc, content) == 0 && json_is_integer(id))
            return json_integer_value(id);
    }
    return -1;
}

static ea_status write_specials(struct conv *c, ea_gguf_writer *w, json_t *added)
{
    static const struct {
        const char *typ, *key;
    } kinds[] = {
        {"bos", "tokenizer.ggml.bos_token_id"}, {"eos", "tokenizer.ggml.eos_token_id"},
        {"unk", "tokenizer.ggml.unknown_token_id"}, {"sep", "tokenizer.ggml.seperator_token_id"},
        {"pad", "tokenizer.ggml.padding_token_id"}, {"cls", "tokenizer.ggml.cls_token_id"},
        {"mask", "tokenizer.ggml.mask_token_id"},
    };
    const char *content[7] = {0};
    int add_bos = -1, add_eos = -1;
    if (c->cfg) {
        for (unsigned k = 0; k < 7; k++) {
            char key[32];
            snprintf(key, sizeof key, "%s_token", kinds[k].typ);
            content[k] = entry_content(json_object_get(c->cfg, key));
        }
        if (!content[0] && content[5])
            content[0] = content[5]; /* cls stands in for bos */
        if (!content[1] && content[3])
            content[1] = content[3]; /* sep stands in for eos */
    }
    /* TemplateProcessing: a leading special token is BOS, a trailing one EOS */
    json_t *post = json_object_get(c->tok, "post_processor");
    json_t *procs = json_object_get(post, "processors");
    size_t np = json_is_array(procs) ? json_array_size(procs) : 1;
    for (size_t i = 0; i < np; i++) {
        json_t *pp = json_is_array(procs) ? json_array_get(procs, i) : post;
        const char *pt = jstr(pp, "type");
        if (!pt || strcmp(pt, "TemplateProcessing") != 0)
            continue;
        json_t *single = json_object_get(pp, "single");
        size_t ns = json_array_size(single);
        if (ns < 2)
            continue;
        const char *first = jstr(json_object_get(json_array_get(single, 0), "SpecialToken"), "id");
        const char *last =
            jstr(json_object_get(json_array_get(single, ns - 1), "SpecialToken"), "id");
        if (first) {
            if (!content[0])
                content[0] = first;
            add_bos = strcmp(first, content[0]) == 0 || (content[5] && !strcmp(first, content[5]));
        }
        if (last) {
            if (!content[1])
                content[1] = last;
            add_eos = strcmp(last, content[1]) == 0;
        }
    }
    ea_status s;
    for (unsigned k = 0; k < 7; k++) {
        int64_t id = added_id(added, content[k]);
        if (id < 0 && content[k]) { /* a special token that is an ordinary vocab entry */
            for (uint32_t j = 0; j < c->n; j++)
                if (c->text[j] && strcmp(c->text[j], content[k]) == 0) {
                    id = j;
                    break;
                }
        }
        if (id >= 0 && id < (int64_t)c->n &&
            (s = ea_gguf_writer_add_u32(w, kinds[k].key, (uint32_t)id)))
            return ea_error_set(c->err, s, "cannot add %s", kinds[k].key);
    }
    if (c->cfg) {
        json_t *b = json_object_get(c->cfg, "add_bos_token");
        json_t *e = json_object_get(c->cfg, "add_eos_token");
        if (json_is_boolean(b))
            add_bos = json_is_true(b);
        if (json_is_boolean(e))
            add_eos = json_is_true(e);
    }
    if (add_bos >= 0 && (s = ea_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", add_bos)))
        return ea_error_set(c->err, s, "cannot add add_bos_token");
    if (add_eos >= 0 && (s = ea_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", add_eos)))
        return ea_error_set(c->err, s, "cannot add add_eos_token");
    return EA_OK;
}

static ea_status write_templates(struct conv *c, ea_gguf_writer *w)
{
    json_t *ct = c->cfg ? json_object_get(c->cfg, "chat_template") : NULL;
    ea_status s = EA_OK;
    if (!ct || json_is_null(ct))
        return EA_OK;
    if (json_is_string(ct)) {
        if ((s = ea_gguf_writer_add_str(w, "tokenizer.chat_template", json_string_value(ct))))
            return ea_error_set(c->err, s, "cannot add the chat template");
        return EA_OK;
    }
    if (!json_is_array(ct))
        return ea_error_set(c->err, EA_EFORMAT, "tokenizer_config.json: chat_template is neither a "
                            "string nor a list");
    /* [{name, template}]: "default" is the template, others are named */
    const char *deflt = NULL;
    struct ea_gguf_str names[64];
    char name_buf[64][64];
    unsigned nn = 0;
    size_t i;
    json_t *v;
    json_array_foreach(ct, i, v) {
        const char *name = jstr(v, "name"), *tmpl = jstr(v, "template");
        if (!name || !*name || !tmpl)
            continue;
        if (strcmp(name, "default") == 0) {
            deflt = tmpl;
            continue;
        }
        if (nn == 64)
            return ea_error_set(c->err, EA_ETOOBIG, "tokenizer_config.json: too many templates");
        size_t k = 0;
        for (; name[k] && k < sizeof name_buf[0] - 1; k++) {
            char ch = name[k];
            bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                         (ch >= '0' && ch <= '9');
            name_buf[nn][k] = alnum ? ch : '_';
        }
        name_buf[nn][k] = '\0';
        char key[128];
        snprintf(key, sizeof key, "tokenizer.chat_template.%s", name_buf[nn]);
        if ((s = ea_gguf_writer_add_str(w, key, tmpl)))
            return ea_error_set(c->err, s, "cannot add %s", key);
        names[nn].ptr = name_buf[nn];
        names[nn].len = k;
        nn++;
    }
    if (nn && (s = ea_gguf_writer_add_str_arr(w, "tokenizer.chat_templates", nn, names)))
        return ea_error_set(c->err, s, "cannot add the template names");
    if (deflt && (s = ea_gguf_writer_add_str(w, "tokenizer.chat_template", deflt)))
        return ea_error_set(c->err, s, "cannot add the chat template");
    return EA_OK;
}

/* ---- entry ------------------------------------------------------------------ */

static ea_status parse(const char *what, const char *text, size_t len, size_t flags, json_t **out,
                       struct ea_error *err)
{
    json_error_t je;
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES | flags, &je);
    if (!*out)
        return ea_error_set(err, EA_EFORMAT, "%s: line %d column %d: %s", what, je.line, je.column,
                            je.text);
    if (!json_is_object(*out))
        return ea_error_set(err, EA_EFORMAT, "%s: not a JSON object", what);
    return EA_OK;
}

ea_status ea_tokenizer_hf_to_gguf(const struct ea_tokenizer_hf_params *p, ea_gguf_writer *w,
                                  struct ea_error *err)
{
    if (!p || !p->json || !w)
        return ea_error_set(err, EA_EINVAL, "convert: NULL argument");
    struct conv c = {.p = p, .err = err};
    ea_status s = parse("tokenizer.json", p->json, p->json_len, 0, &c.tok, err);
    /* configs hold numbers like model_max_length = 1e30 that no integer holds;
     * nothing we read from them is a number */
    if (!s && p->config)
        s = parse("tokenizer_config.json", p->config, p->config_len, JSON_DECODE_INT_AS_REAL,
                  &c.cfg, err);
    if (s)
        goto out;
    json_t *model = json_object_get(c.tok, "model");
    const char *type = jstr(model, "type");
    if (!json_is_object(model)) {
        s = ea_error_set(err, EA_EFORMAT, "tokenizer.json: no \"model\" object");
        goto out;
    }
    if (type && strcmp(type, "BPE") != 0) {
        s = ea_error_set(err, EA_EUNSUPPORTED, "tokenizer.json: model type '%s' is not supported "
                         "(byte-level BPE is)", type);
        goto out;
    }
    if (json_is_true(json_object_get(model, "byte_fallback"))) {
        s = ea_error_set(err, EA_EUNSUPPORTED, "tokenizer.json: a BPE with byte_fallback is "
                         "SentencePiece-style; convert its tokenizer.model instead");
        goto out;
    }
    bool byte_level;
    if ((s = detect_pre(&c, &byte_level)))
        goto out;
    if (!byte_level) {
        s = ea_error_set(err, EA_EUNSUPPORTED, "tokenizer.json: not a byte-level BPE (no ByteLevel "
                         "pre-tokenizer or decoder)");
        goto out;
    }
    json_t *added = json_object_get(c.tok, "added_tokens");
    if ((s = load_vocab(&c, model, added)))
        goto out;
    if ((s = ea_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2")) ||
        (s = ea_gguf_writer_add_str(w, "tokenizer.ggml.pre", c.pre))) {
        ea_error_set(err, s, "cannot add tokenizer keys");
        goto out;
    }
    if ((s = write_tokens(&c, w)) || (s = write_merges(&c, w, json_object_get(model, "merges"))) ||
        (s = write_specials(&c, w, added)) || (s = write_templates(&c, w)))
        goto out;
out:
    if (c.own)
        for (size_t i = 0; i < c.n_own_cap && c.own[i]; i++)
            ea_free(c.own[i]);
    ea_free(c.own);
    ea_free(c.text);
    ea_free(c.text_len);
    ea_free(c.type);
    json_decref(c.tok);
    json_decref(c.cfg);
    if (s)
        ea_error_prefix(err, "convert");
    return s;
}
