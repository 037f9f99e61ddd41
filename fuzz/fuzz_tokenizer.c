/* fuzz_tokenizer.c - libFuzzer target for tokenization and detokenization.
 * Two vocabularies are built once in memory (no files needed): gen-model's
 * byte-level BPE vocabulary of the `tiny` preset (smollm pre-tokenizer) and a
 * small SentencePiece-style one with all 256 byte tokens. The first input
 * byte picks the vocabulary and flags; the rest is the text. Checked:
 * tokenize succeeds with ids in range; decode(encode(text)) gives the text
 * back (SPM: exactly; BPE: invalid UTF-8 as U+FFFD); the streaming
 * detokenizer emits only valid UTF-8 and equals the whole-list decode with
 * replacement. Build: make fuzz; run: make fuzz-smoke. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/gguf.h"
#include "edgeagent/model.h"
#include "edgeagent/tokenizer.h"
#include "model/model_int.h"
#include "util/utf8.h"

static ea_tokenizer *bpe, *spm;

static ea_tokenizer *from_writer(ea_gguf_writer *w)
{
    struct ea_error err = {0};
    void *img = NULL;
    size_t size = 0;
    ea_gguf *g = NULL;
    ea_tokenizer *t = NULL;
    if (ea_gguf_writer_write_memory(w, &img, &size, &err) ||
        ea_gguf_open_memory(img, size, &g, &err) || ea_tokenizer_create(g, &t, &err)) {
        fprintf(stderr, "fuzz_tokenizer: cannot build a vocabulary: %s\n", err.msg);
        abort();
    }
    ea_gguf_close(g); /* the tokenizer keeps copies */
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
    struct ea_gguf_str *strs = malloc((v.n_tokens + 1) * sizeof *strs);
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

/* <unk> <s> </s>, the 256 byte tokens, printable ASCII, U+2581, and a few
 * word pieces, scored so that earlier tokens merge first. */
static ea_tokenizer *make_spm(void)
{
    static const char *const words[] = {"\xe2\x96\x81the", ("\xe2\x96\x81" "a"), "\xe2\x96\x81of",
                                        "in", "er", "he", "an", "on", "\xe2\x96\x81t",
                                        "\xe2\x96\x81h", "\xe2\x96\x81\xe2\x96\x81", "th",
                                        "\xc3\xa9", "\xe6\x97\xa5"};
    enum { N = 3 + 256 + 94 + 1 + sizeof words / sizeof words[0] };
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
    for (int c = 0x21; c < 0x7F; c++, n++) { /* ' ' is always escaped to U+2581 */
        texts[n][0] = (char)c;
        texts[n][1] = '\0';
        types[n] = 1;
    }
    snprintf(texts[n], sizeof texts[n], "\xe2\x96\x81");
    types[n++] = 1;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++, n++) {
        snprintf(texts[n], sizeof texts[n], "%s", words[i]);
        types[n] = 1;
    }
    for (int i = 0; i < n; i++) {
        strs[i] = (struct ea_gguf_str){texts[i], strlen(texts[i])};
        scores[i] = i < 3 ? 0.0f : -(float)i;
    }
    ea_gguf_writer *w = ea_gguf_writer_create();
    ea_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    ea_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", (uint64_t)n, strs);
    ea_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", EA_GGUF_INT32, (uint64_t)n, types);
    ea_gguf_writer_add_arr(w, "tokenizer.ggml.scores", EA_GGUF_FLOAT32, (uint64_t)n, scores);
    return from_writer(w);
}

static bool contains(const char *s, size_t n, const char *needle, size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0)
            return true;
    return false;
}

/* s with each byte that starts no valid UTF-8 sequence as U+FFFD. */
static size_t sanitize(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = ea__utf8_decode(s + i, n - i, &cp);
        if (l) {
            memcpy(out + k, s + i, l);
            k += l;
            i += l;
        } else {
            memcpy(out + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
        }
    }
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!bpe) {
        bpe = make_bpe();
        spm = make_spm();
    }
    if (size < 1 || size > 4096)
        return 0;
    const ea_tokenizer *t = data[0] & 1 ? spm : bpe;
    unsigned flags = (data[0] & 2 ? EA_TOK_ADD_SPECIAL : 0) | (data[0] & 4 ? EA_TOK_PARSE_SPECIAL : 0);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    struct ea_error err = {0};
    size_t cap = 4 * len + 8, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (ea_tokenize(t, text, len, flags, ids, cap, &n, &err) != EA_OK)
        abort(); /* the bound above always fits */
    bool special = false;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= ea_tokenizer_n_vocab(t))
            abort();
        special |= (ea_token_attr(t, ids[i]) & (EA_TOKEN_ATTR_CONTROL | EA_TOKEN_ATTR_UNKNOWN)) != 0;
    }
    size_t need = 0;
    ea_status s = ea_detokenize(t, ids, n, EA_DETOK_STRIP_SPACE, NULL, 0, &need, &err);
    if (s != EA_OK && s != EA_ETOOBIG)
        abort();
    char *back = malloc(need + 1), *want = malloc(3 * len + 1);
    size_t blen;
    if (ea_detokenize(t, ids, n, EA_DETOK_STRIP_SPACE, back, need + 1, &blen, &err) || blen != need)
        abort();
    /* round trip, unless special tokens took part or SPM's own space mark was in the text */
    bool spm_mark = t == spm && contains(text, len, "\xe2\x96\x81", 3);
    if (!special && !spm_mark) {
        size_t wn = len;
        if (t == spm)
            memcpy(want, text, len);
        else
            wn = sanitize(text, len, want);
        if (blen != wn || memcmp(back, want, wn) != 0)
            abort();
    }
    /* streaming == whole decode with replacement, and valid UTF-8 */
    size_t rep_need = 0;
    ea_detokenize(t, ids, n, EA_DETOK_REPLACE_INVALID, NULL, 0, &rep_need, &err);
    char *rep = malloc(rep_need + 1);
    size_t rep_len;
    if (ea_detokenize(t, ids, n, EA_DETOK_REPLACE_INVALID, rep, rep_need + 1, &rep_len, &err))
        abort();
    size_t max = ea_detok_max_output(t), got = 0;
    char *stream = malloc((n + 1) * max + 1);
    struct ea_detok d;
    ea_detok_init(&d, t, 0);
    for (size_t i = 0; i < n; i++) {
        size_t k;
        if (ea_detok_push(&d, ids[i], stream + got, max, &k, &err))
            abort();
        got += k;
    }
    size_t k;
    if (ea_detok_flush(&d, stream + got, max, &k, &err))
        abort();
    got += k;
    if (got != rep_len || memcmp(stream, rep, got) != 0)
        abort();
    size_t vk = sanitize(stream, got, want = realloc(want, 3 * got + 1));
    if (vk != got || memcmp(want, stream, got) != 0)
        abort();
    free(stream);
    free(rep);
    free(back);
    free(want);
    free(ids);
    return 0;
}
