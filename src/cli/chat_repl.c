/* chat_repl.c - `run` as a chat: the conversation is rendered and tokenized
 * by the library's chat prompt (chat.h: the model's own chat template, ChatML
 * when it has none; what the user typed is tokenized as plain text, so it
 * cannot forge control tokens), and only what is new since the last turn is
 * evaluated (the longest common token prefix with the cache is kept). Interactive on a terminal: line editing and history,
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
#include "edgeagent/chat.h"

struct chat {
    struct run_session *rs;
    ea_chat *fmt;
    json_t *messages;
};

static ea_status chat_init(struct chat *c, struct run_session *rs, struct ea_error *err)
{
    memset(c, 0, sizeof *c);
    c->rs = rs;
    char why[EA_ERROR_MSG_MAX + 64];
    ea_status s = ea_chat_create(ea_model_gguf(rs->m), rs->tok, &c->fmt, why, sizeof why, err);
    if (s)
        return ea_error_prefix(err, "run: chat template");
    if (why[0])
        fprintf(stderr, "run: %s\n", why);
    c->messages = json_array();
    if (rs->o->system)
        json_array_append_new(c->messages,
                              json_pack("{s:s, s:s}", "role", "system", "content", rs->o->system));
    return c->messages ? EA_OK : ea_error_set(err, EA_ENOMEM, "run: out of memory");
}

static void chat_release(struct chat *c)
{
    ea_chat_destroy(c->fmt);
    json_decref(c->messages);
}

/* Renders the conversation with the generation prompt and tokenizes it. */
static ea_status render(struct chat *c, int32_t **tokens, size_t *n, struct ea_error *err)
{
    char *js = json_dumps(c->messages, JSON_COMPACT);
    if (!js)
        return ea_error_set(err, EA_ENOMEM, "run: out of memory");
    struct ea_chat_opts o = {.max_tokens = (size_t)c->rs->n_ctx};
    struct ea_chat_prompt p;
    ea_status s = ea_chat_render(c->fmt, js, strlen(js), &o, &p, err);
    free(js);
    if (s == EA_ETOOBIG)
        return ea_error_set(err, s, "run: the conversation is longer than the %d-token context", c->rs->n_ctx);
    if (s)
        return ea_error_prefix(err, "run: chat template");
    *tokens = p.tokens; /* moves to the caller, who frees it with ea_free */
    *n = p.n_tokens;
    p.tokens = NULL;
    ea_chat_prompt_release(&p);
    return EA_OK;
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
        ea_free(t);
        json_array_remove(c->messages, json_array_size(c->messages) - 1);
        return 1;
    }
    if (rs->o->verbose_prompt)
        run_print_prompt(t, n);
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
    ea_free(t);
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
