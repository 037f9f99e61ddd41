/* fuzz_chat_prompt.c - libFuzzer target for chat prompts (chat.h) over
 * message contents: whatever the messages say, control tokens come only
 * from the template (issue 18).
 *
 * Input: the first byte picks one of three templates (the ChatML fallback, a
 * Llama-2-style one with trim, one built from namespaces, slices, join and
 * replace) and one of two vocabularies built in memory (gen-model's
 * byte-level BPE vocabulary of the `tiny` preset, whose <|im_start|>,
 * <|im_end|>, <|endoftext|> are control tokens, and a small SentencePiece
 * one with <s> </s>); the rest, split at 0x01 bytes, are the contents of up
 * to six messages (system, user, assistant, user, tool, assistant).
 * Checked: the data ranges are sorted, disjoint and inside the text; the
 * text is the interpreter's untracked render; the control-token ids are
 * exactly the sequence the same conversation gives with neutral contents;
 * and when no data range holds a token's text, the ids are those of the
 * whole text tokenized with special tokens parsed (the old path).
 * Seeds: fuzz/corpus/chat_prompt/. Build: make fuzz; run: make fuzz-smoke. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/chat.h"
#include "edgeagent/gguf.h"
#include "edgeagent/model.h"
#include "edgeagent/tokenizer.h"
#include "model/model_int.h"
#include "util/utf8.h"

#define N_TPL 3
#define N_VOCAB 2
#define MAX_MSGS 6
#define MAX_CONTENT 2048

static const char *const TEMPLATES[N_TPL] = {
    NULL, /* the ChatML fallback */
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] | trim + ' [/INST]' }}"
    "{% elif m['role'] == 'system' %}{{ '<<SYS>>\\n' + m['content'] + '\\n<</SYS>>\\n\\n' }}"
    "{% else %}{{ ' ' + m['content'] | trim + ' ' + eos_token }}{% endif %}{% endfor %}",
    "{% set ns = namespace(parts=[]) %}{% for m in messages %}"
    "{% set ns.parts = ns.parts + ['<|im_start|>' + m.role + '\\n' + m.content[:300] | trim] %}{% endfor %}"
    "{{ ns.parts | join('<|im_end|>\\n') }}{% if messages %}<|im_end|>\\n{% endif %}"
    "{{ (messages | map(attribute='content') | join('|'))[0:50] | replace('a', '<|im_end|>') }}"
    "{% set b %}<|endoftext|>{{ messages[-1].content if messages else '' }}{% endset %}{{ b }}"
    "<|im_start|>assistant\\n",
};
static const char *const ROLES[MAX_MSGS] = {"system", "user", "assistant", "user", "tool", "assistant"};

static ea_tokenizer *vocab[N_VOCAB];
static ea_chat *chats[N_TPL][N_VOCAB];

static ea_tokenizer *from_writer(ea_gguf_writer *w)
{
    struct ea_error err = {0};
    void *img = NULL;
    size_t size = 0;
    ea_gguf *g = NULL;
    ea_tokenizer *t = NULL;
    if (ea_gguf_writer_write_memory(w, &img, &size, &err) || ea_gguf_open_memory(img, size, &g, &err) ||
        ea_tokenizer_create(g, &t, &err)) {
        fprintf(stderr, "fuzz_chat_prompt: cannot build a vocabulary: %s\n", err.msg);
        abort();
    }
    ea_gguf_close(g);
    ea_free(img);
    ea_gguf_writer_destroy(w);
    return t;
}

static ea_tokenizer *make_bpe(void)
{
    struct ea__builtin_vocab v = {0};
    struct ea_error err = {0};
    if (ea__builtin_vocab_build(ea_model_preset_find("tiny"), &v, &err))
        abort();
    ea_gguf_writer *w = ea_gguf_writer_create();
    struct ea_gguf_str *strs = malloc((v.n_tokens + v.n_merges + 1) * sizeof *strs);
    for (uint32_t i = 0; i < v.n_tokens; i++)
        strs[i] = (struct ea_gguf_str){v.tokens[i], strlen(v.tokens[i])};
    ea_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    ea_gguf_writer_add_str(w, "tokenizer.ggml.pre", "smollm");
    ea_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", v.n_tokens, strs);
    ea_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", EA_GGUF_INT32, v.n_tokens, v.types);
    for (uint32_t i = 0; i < v.n_merges; i++)
        strs[i] = (struct ea_gguf_str){v.merges[i], strlen(v.merges[i])};
    ea_gguf_writer_add_str_arr(w, "tokenizer.ggml.merges", v.n_merges, strs);
    if (v.bos >= 0)
        ea_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v.bos);
    if (v.eos >= 0)
        ea_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v.eos);
    free(strs);
    ea__builtin_vocab_release(&v);
    return from_writer(w);
}

/* <unk> <s> </s>, the 256 byte tokens, printable ASCII and U+2581; adds BOS. */
static ea_tokenizer *make_spm(void)
{
    enum { N = 3 + 256 + 94 + 1 };
    static char texts[N][16];
    struct ea_gguf_str strs[N];
    int32_t types[N];
    float scores[N];
    int n = 0;
    const char *specials[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++, n++) {
        snprintf(texts[n], sizeof texts[n], "%s", specials[i]);
        types[n] = i == 0 ? 2 : 3;
    }
    for (int b = 0; b < 256; b++, n++) {
        snprintf(texts[n], sizeof texts[n], "<0x%02X>", b);
        types[n] = 6;
    }
    for (int c = 0x21; c < 0x7F; c++, n++) {
        texts[n][0] = (char)c;
        texts[n][1] = '\0';
        types[n] = 1;
    }
    snprintf(texts[n], sizeof texts[n], "\xe2\x96\x81");
    types[n++] = 1;
    for (int i = 0; i < n; i++) {
        strs[i] = (struct ea_gguf_str){texts[i], strlen(texts[i])};
        scores[i] = i < 3 ? 0.0f : -(float)i;
    }
    ea_gguf_writer *w = ea_gguf_writer_create();
    ea_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    ea_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", (uint64_t)n, strs);
    ea_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", EA_GGUF_INT32, (uint64_t)n, types);
    ea_gguf_writer_add_arr(w, "tokenizer.ggml.scores", EA_GGUF_FLOAT32, (uint64_t)n, scores);
    ea_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    ea_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    return from_writer(w);
}

static void init(void)
{
    vocab[0] = make_bpe();
    vocab[1] = make_spm();
    for (int t = 0; t < N_TPL; t++)
        for (int v = 0; v < N_VOCAB; v++) {
            struct ea_error err = {0};
            ea_status s = TEMPLATES[t] ? ea_chat_create_from_source(TEMPLATES[t], strlen(TEMPLATES[t]), vocab[v],
                                                                    &chats[t][v], &err)
                                       : ea_chat_create(NULL, vocab[v], &chats[t][v], NULL, 0, &err);
            if (s) {
                fprintf(stderr, "fuzz_chat_prompt: template %d: %s\n", t, err.msg);
                abort();
            }
        }
}

static bool special(const ea_tokenizer *t, int32_t id)
{
    return ea_token_attr(t, id) & (EA_TOKEN_ATTR_CONTROL | EA_TOKEN_ATTR_USER_DEFINED | EA_TOKEN_ATTR_UNKNOWN);
}

/* Valid UTF-8 without NUL (what a JSON string can carry). */
static size_t clean(const uint8_t *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < MAX_CONTENT;) {
        uint32_t cp;
        size_t l = ea__utf8_decode((const char *)s + i, n - i, &cp);
        if (l && cp) {
            memcpy(out + k, s + i, l);
            k += l;
            i += l;
        } else {
            out[k++] = '?';
            i++;
        }
    }
    return k;
}

static char *messages(char contents[][MAX_CONTENT], const size_t *lens, int n, bool neutral)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s%}", "role", ROLES[i], "content",
                                           neutral ? "x" : contents[i], neutral ? (size_t)1 : lens[i]));
    char *s = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!vocab[0])
        init();
    if (size < 1)
        return 0;
    int ti = data[0] % N_TPL, vi = (data[0] / N_TPL) % N_VOCAB;
    const ea_tokenizer *tok = vocab[vi];
    const ea_chat *c = chats[ti][vi];
    static char contents[MAX_MSGS][MAX_CONTENT];
    size_t lens[MAX_MSGS];
    int n = 0;
    for (size_t i = 1; i <= size && n < MAX_MSGS;) {
        const uint8_t *end = memchr(data + i, 1, size - i);
        size_t len = end ? (size_t)(end - (data + i)) : size - i;
        lens[n] = clean(data + i, len, contents[n]);
        n++;
        i += len + 1;
    }
    char *inj = messages(contents, lens, n, false), *neu = messages(contents, lens, n, true);
    if (!inj || !neu)
        abort();
    struct ea_chat_opts o = {.max_tokens = 1 << 20};
    struct ea_chat_prompt p, q;
    struct ea_error err = {0};
    if (ea_chat_render(c, inj, strlen(inj), &o, &p, &err) || ea_chat_render(c, neu, strlen(neu), &o, &q, &err)) {
        fprintf(stderr, "fuzz_chat_prompt: render failed: %s\n", err.msg);
        abort();
    }
    /* ranges: sorted, disjoint, non-empty, inside */
    for (size_t i = 0; i < p.n_data; i++)
        if (!p.data[i].len || p.data[i].off + p.data[i].len > p.len ||
            (i && p.data[i].off <= p.data[i - 1].off + p.data[i - 1].len - 1))
            abort();
    /* the text is the untracked render's */
    json_t *ctx = json_pack("{s:o, s:b, s:s, s:s}", "messages", json_loads(inj, 0, NULL), "add_generation_prompt", 1,
                            "bos_token", ea_tokenizer_bos(tok) >= 0 ? ea_token_text(tok, ea_tokenizer_bos(tok)) : "",
                            "eos_token", ea_tokenizer_eos(tok) >= 0 ? ea_token_text(tok, ea_tokenizer_eos(tok)) : "");
    char *js = json_dumps(ctx, JSON_COMPACT), *plain = NULL;
    json_decref(ctx);
    size_t plain_len = 0;
    if (!js || ea_template_render(ea_chat_template(c), js, strlen(js), &plain, &plain_len, &err) ||
        plain_len != p.len || memcmp(plain, p.text, p.len))
        abort();
    /* control tokens: the template's, whatever the contents */
    size_t j = 0;
    for (size_t i = 0; i < p.n_tokens; i++) {
        if (!special(tok, p.tokens[i]))
            continue;
        while (j < q.n_tokens && !special(tok, q.tokens[j]))
            j++;
        if (j == q.n_tokens || q.tokens[j] != p.tokens[i])
            abort(); /* a control token the template did not write */
        j++;
    }
    while (j < q.n_tokens)
        if (special(tok, q.tokens[j++]))
            abort(); /* one the template wrote went missing */
    /* no token text in the data: exactly the old ids */
    bool markup = false;
    for (size_t d = 0; d < p.n_data && !markup; d++) {
        int32_t *ids = NULL;
        size_t k = 0;
        if (ea_tokenize_alloc(tok, p.text + p.data[d].off, p.data[d].len, EA_TOK_PARSE_SPECIAL, 1 << 20, &ids, &k,
                              &err))
            abort();
        for (size_t i = 0; i < k; i++)
            markup = markup || special(tok, ids[i]);
        ea_free(ids);
    }
    if (!markup) {
        int32_t *ids = NULL;
        size_t k = 0;
        unsigned flags = EA_TOK_PARSE_SPECIAL | (p.added_bos ? EA_TOK_ADD_SPECIAL : 0);
        if (ea_tokenize_alloc(tok, p.text, p.len, flags, 1 << 20, &ids, &k, &err) || k != p.n_tokens ||
            memcmp(ids, p.tokens, k * sizeof *ids))
            abort();
        ea_free(ids);
    }
    ea_free(plain);
    free(js);
    free(inj);
    free(neu);
    ea_chat_prompt_release(&p);
    ea_chat_prompt_release(&q);
    return 0;
}
