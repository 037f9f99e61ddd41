/* chat_repl.c - `run` as a chat: the conversation is rendered with the
 * model's own chat template (tokenizer.chat_template; ChatML when the model
 * has none), tokenized with special tokens recognised, and only what is new
 * since the last turn is evaluated (the longest common token prefix with the
 * cache is kept). Interactive on a terminal: line editing and history,
 * Ctrl-C stops the current answer, Ctrl-D quits. Otherwise each input line
 * (or -p) is one user turn.
 * Does not hold: the template interpreter (src/template/). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/lineedit.h"
#include "cli/run_int.h"
#include "edgeagent/template.h"

struct chat {
    struct run_session *rs;
    ea_template *tpl;
    json_t *messages;
    char bos[256], eos[256];
};

static void token_text(const ea_tokenizer *t, int32_t id, char *out, size_t cap)
{
    const char *s = id >= 0 ? ea_token_text(t, id) : NULL;
    snprintf(out, cap, "%s", s ? s : "");
}

static ea_status chat_init(struct chat *c, struct run_session *rs, struct ea_error *err)
{
    memset(c, 0, sizeof *c);
    c->rs = rs;
    struct ea_gguf_str src;
    ea_status s;
    if (ea_gguf_get_str(ea_model_gguf(rs->m), "tokenizer.chat_template", &src, NULL) == EA_OK)
        s = ea_template_compile(src.ptr, (size_t)src.len, &c->tpl, err);
    else {
        fprintf(stderr, "run: the model has no chat template; using ChatML\n");
        s = ea_template_compile_default(&c->tpl, err);
    }
    if (s)
        return ea_error_prefix(err, "run: chat template");
    token_text(rs->tok, ea_tokenizer_bos(rs->tok), c->bos, sizeof c->bos);
    token_text(rs->tok, ea_tokenizer_eos(rs->tok), c->eos, sizeof c->eos);
    c->messages = json_array();
    if (rs->o->system)
        json_array_append_new(c->messages,
                              json_pack("{s:s, s:s}", "role", "system", "content", rs->o->system));
    return c->messages ? EA_OK : ea_error_set(err, EA_ENOMEM, "run: out of memory");
}

static void chat_release(struct chat *c)
{
    ea_template_destroy(c->tpl);
    json_decref(c->messages);
}

/* Renders the conversation with the generation prompt and tokenizes it. */
static ea_status render(struct chat *c, int32_t **tokens, size_t *n, struct ea_error *err)
{
    json_t *ctx = json_pack("{s:O, s:b, s:s, s:s}", "messages", c->messages,
                            "add_generation_prompt", 1, "bos_token", c->bos, "eos_token", c->eos);
    char *js = ctx ? json_dumps(ctx, JSON_COMPACT) : NULL;
    json_decref(ctx);
    if (!js)
        return ea_error_set(err, EA_ENOMEM, "run: out of memory");
    char *text = NULL;
    size_t len = 0;
    ea_status s = ea_template_render(c->tpl, js, strlen(js), &text, &len, err);
    free(js);
    if (s)
        return ea_error_prefix(err, "run: chat template");
    /* the template usually writes BOS itself; add it only when it did not */
    unsigned flags = EA_TOK_PARSE_SPECIAL;
    if (ea_tokenizer_adds_bos(c->rs->tok) && !(c->bos[0] && strncmp(text, c->bos, strlen(c->bos)) == 0))
        flags |= EA_TOK_ADD_SPECIAL;
    size_t cap = len + 8;
    *tokens = malloc(sizeof **tokens * cap);
    if (!*tokens) {
        ea_free(text);
        return ea_error_set(err, EA_ENOMEM, "run: out of memory");
    }
    s = ea_tokenize(c->rs->tok, text, len, flags, *tokens, cap, n, err);
    ea_free(text);
    return s;
}

/* One user turn: add it, evaluate what is new, stream the answer. */
static int turn(struct chat *c, const char *user)
{
    struct run_session *rs = c->rs;
    struct ea_error err = {0};
    json_array_append_new(c->messages, json_pack("{s:s, s:s}", "role", "user", "content", user));
    int32_t *t = NULL;
    size_t n = 0;
    if (render(c, &t, &n, &err)) {
        cli_error("run", &err);
        free(t);
        json_array_remove(c->messages, json_array_size(c->messages) - 1);
        return 1;
    }
    int32_t keep = 0;
    while (keep < rs->n_hist && (size_t)keep < n && rs->hist[keep] == t[keep])
        keep++;
    if ((size_t)keep == n) /* always evaluate at least one token for logits */
        keep--;
    ea_kv_seq_truncate(rs->kv, &rs->seq, keep);
    rs->n_hist = keep;
    char *answer = NULL;
    int32_t got = 0;
    run_interrupted = 0;
    ea_status s = run_generate(rs, t + keep, (int32_t)(n - (size_t)keep), rs->o->n_predict, stdout,
                               &answer, &got, &err);
    free(t);
    if (run_interrupted)
        fputs(" [stopped]", stdout);
    fputc('\n', stdout);
    fflush(stdout);
    run_interrupted = 0;
    if (s) {
        cli_error("run", &err);
        free(answer);
        json_array_remove(c->messages, json_array_size(c->messages) - 1);
        return 1;
    }
    json_array_append_new(c->messages,
                          json_pack("{s:s, s:s}", "role", "assistant", "content", answer ? answer : ""));
    free(answer);
    return 0;
}

int run_chat(struct run_session *rs, bool interactive)
{
    struct chat c;
    struct ea_error err = {0};
    if (chat_init(&c, rs, &err)) {
        cli_error("run", &err);
        chat_release(&c);
        return 1;
    }
    int rc = 0;
    if (rs->o->prompt) {
        rc = turn(&c, rs->o->prompt);
    } else {
        struct lineedit le = {0};
        if (interactive) {
            const struct ea_model_info *h = ea_model_get_info(rs->m);
            fprintf(stderr, "edgeagent chat with %s (%s). Ctrl-C stops an answer, Ctrl-D quits.\n",
                    h->name, h->arch);
        }
        for (;;) {
            char *line = NULL;
            enum le_result r = le_read(&le, interactive ? "> " : "", &line);
            if (r == LE_EOF)
                break;
            if (r == LE_INTERRUPT)
                continue;
            if (line[0]) {
                le_add_history(&le, line);
                turn(&c, line);
            }
            free(line);
        }
        le_release(&le);
    }
    chat_release(&c);
    return rc;
}
