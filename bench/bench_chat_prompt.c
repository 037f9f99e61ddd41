/* bench_chat_prompt.c - what provenance tracking costs a chat prompt: the
 * same conversation rendered and tokenized the old way (untracked render,
 * the whole text tokenized with special tokens parsed) and through
 * ea_chat_render (tracked render, message data tokenized as plain text),
 * alternating, N_MSGS messages of about 300 bytes each. Prints medians per
 * prompt. Not a test: nothing is asserted on time.
 *
 *   build/bench/bench_chat_prompt TEMPLATE.jinja VOCAB.gguf [N_MSGS=64] [REPS=50]
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "edgeagent/chat.h"
#include "edgeagent/gguf.h"
#include "edgeagent/template.h"
#include "edgeagent/tokenizer.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s TEMPLATE.jinja VOCAB.gguf [N_MSGS=64] [REPS=50]\n", argv[0]);
        return 2;
    }
    int n_msgs = argc > 3 ? atoi(argv[3]) : 64, reps = argc > 4 ? atoi(argv[4]) : 50;
    if (n_msgs < 1 || reps < 1 || reps > 10000)
        return 2;
    char *src = slurp(argv[1]);
    struct ea_error err = {0};
    ea_gguf *g = NULL;
    ea_tokenizer *tok = NULL;
    ea_chat *chat = NULL;
    if (!src || ea_gguf_open(argv[2], &g, &err) || ea_tokenizer_create(g, &tok, &err) ||
        ea_chat_create_from_source(src, strlen(src), tok, &chat, &err)) {
        fprintf(stderr, "bench_chat_prompt: %s\n", src ? err.msg : "cannot read the template");
        return 1;
    }
    static const char *const roles[] = {"user", "assistant"};
    json_t *m = json_array();
    json_array_append_new(m, json_pack("{s:s, s:s}", "role", "system", "content", "You are a helpful assistant."));
    for (int i = 0; i < n_msgs; i++) {
        char text[400];
        snprintf(text, sizeof text,
                 "Message %d: the quick brown fox jumps over the lazy dog while the edge device keeps every "
                 "private word on the board, and the router decides whether a cloud model is needed at all. "
                 "Numbers 12345, punctuation; unicode \xc3\xa9\xe6\x97\xa5 and a last clause to reach ~300 bytes.",
                 i);
        json_array_append_new(m, json_pack("{s:s, s:s}", "role", roles[i % 2], "content", text));
    }
    char *msgs = json_dumps(m, JSON_COMPACT);
    const char *bos = ea_tokenizer_bos(tok) >= 0 ? ea_token_text(tok, ea_tokenizer_bos(tok)) : "";
    const char *eos = ea_tokenizer_eos(tok) >= 0 ? ea_token_text(tok, ea_tokenizer_eos(tok)) : "";
    json_t *ctx = json_pack("{s:o, s:b, s:s, s:s}", "messages", m, "add_generation_prompt", 1, "bos_token", bos,
                            "eos_token", eos);
    char *ctxs = json_dumps(ctx, JSON_COMPACT);
    json_decref(ctx);
    double *t_old = malloc(sizeof(double) * (size_t)reps), *t_new = malloc(sizeof(double) * (size_t)reps);
    size_t n_old = 0, n_new = 0, bytes = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        char *text = NULL;
        size_t len = 0;
        int32_t *ids = NULL;
        if (ea_template_render(ea_chat_template(chat), ctxs, strlen(ctxs), &text, &len, &err) ||
            ea_tokenize_alloc(tok, text, len, EA_TOK_PARSE_SPECIAL, 1 << 22, &ids, &n_old, &err)) {
            fprintf(stderr, "bench_chat_prompt: %s\n", err.msg);
            return 1;
        }
        t_old[r] = bench_now() - t0;
        bytes = len;
        ea_free(text);
        ea_free(ids);
        t0 = bench_now();
        struct ea_chat_prompt p;
        struct ea_chat_opts o = {.max_tokens = 1 << 22};
        if (ea_chat_render(chat, msgs, strlen(msgs), &o, &p, &err)) {
            fprintf(stderr, "bench_chat_prompt: %s\n", err.msg);
            return 1;
        }
        t_new[r] = bench_now() - t0;
        n_new = p.n_tokens;
        ea_chat_prompt_release(&p);
    }
    qsort(t_old, (size_t)reps, sizeof *t_old, bench_cmp_double);
    qsort(t_new, (size_t)reps, sizeof *t_new, bench_cmp_double);
    double mo = t_old[reps / 2] * 1e3, mn = t_new[reps / 2] * 1e3;
    printf("prompt: %d messages, %zu bytes, %zu tokens (old path %zu)\n", n_msgs + 1, bytes, n_new, n_old);
    printf("old   (render + tokenize, specials everywhere): median %.3f ms\n", mo);
    printf("chat  (tracked render + plain-range tokenize):  median %.3f ms (%+.1f%%)\n", mn, (mn / mo - 1) * 100);
    free(t_old);
    free(t_new);
    free(msgs);
    free(ctxs);
    free(src);
    ea_chat_destroy(chat);
    ea_tokenizer_destroy(tok);
    ea_gguf_close(g);
    return 0;
}
