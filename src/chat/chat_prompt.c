/* chat_prompt.c - a conversation -> the prompt a model is given (chat.h):
 * the model's chat template or ChatML, rendered with provenance, then
 * tokenized with special tokens recognised only where the template wrote
 * them. The context is {messages, tools?, add_generation_prompt, bos_token,
 * eos_token}; of it only add_generation_prompt, bos_token, eos_token and the
 * standard role names are trusted, everything else is message data.
 * Does not hold: the interpreter (src/template/), the encoders
 * (src/tokenizer/), HTTP or terminal concerns (server, cli).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "edgeagent/chat.h"

struct ea_chat {
    ea_template *tpl;
    const ea_tokenizer *tok;
    char bos[EA_TOKENIZER_MAX_TOKEN_LEN + 1], eos[EA_TOKENIZER_MAX_TOKEN_LEN + 1];
};

/* The template's own values; every other context string is data. */
static const char *const TRUSTED_KEYS[] = {"add_generation_prompt", "bos_token", "eos_token", NULL};
/* Role names templates may turn into control tokens ('<|' + role + '|>'):
 * trusted when they are exactly one of these, data otherwise. */
static const char *const TRUSTED_ROLES[] = {"system", "user",     "assistant", "tool",
                                            "developer", "ipython", "function", NULL};

/* Bytes of prompt per token no vocabulary goes beyond on average: a text this
 * much longer than the token limit cannot fit, so it is refused before the
 * tokenizer spends time on it. */
#define CHAT_MAX_BYTES_PER_TOKEN 64

static void token_text(const ea_tokenizer *tok, int32_t id, char *buf, size_t cap)
{
    const char *s = tok && id >= 0 ? ea_token_text(tok, id) : NULL;
    snprintf(buf, cap, "%s", s ? s : "");
}

static ea_status chat_new(const ea_tokenizer *tok, ea_chat **out, struct ea_error *err)
{
    ea_chat *c = ea_calloc(1, sizeof *c);
    if (!c)
        return ea_error_set(err, EA_ENOMEM, "chat: out of memory");
    c->tok = tok;
    token_text(tok, tok ? ea_tokenizer_bos(tok) : -1, c->bos, sizeof c->bos);
    token_text(tok, tok ? ea_tokenizer_eos(tok) : -1, c->eos, sizeof c->eos);
    *out = c;
    return EA_OK;
}

ea_status ea_chat_create(const ea_gguf *g, const ea_tokenizer *tok, ea_chat **out, char *why, size_t why_cap,
                         struct ea_error *err)
{
    if (!out)
        return ea_error_set(err, EA_EINVAL, "ea_chat_create: NULL argument");
    *out = NULL;
    if (why_cap)
        why[0] = '\0';
    ea_chat *c = NULL;
    ea_status s = chat_new(tok, &c, err);
    if (s)
        return s;
    struct ea_gguf_str src;
    if (g && ea_gguf_get_str(g, "tokenizer.chat_template", &src, NULL) == EA_OK) {
        struct ea_error terr = {0};
        if (ea_template_compile(src.ptr, (size_t)src.len, &c->tpl, &terr) == EA_OK) {
            *out = c;
            return EA_OK;
        }
        if (why_cap)
            snprintf(why, why_cap, "the model's chat template does not compile (%s); using ChatML", terr.msg);
    } else if (why_cap) {
        snprintf(why, why_cap, "the model has no chat template; using ChatML");
    }
    if ((s = ea_template_compile_default(&c->tpl, err))) {
        ea_chat_destroy(c);
        return s;
    }
    *out = c;
    return EA_OK;
}

ea_status ea_chat_create_from_source(const char *src, size_t len, const ea_tokenizer *tok, ea_chat **out,
                                     struct ea_error *err)
{
    if (!out)
        return ea_error_set(err, EA_EINVAL, "ea_chat_create_from_source: NULL argument");
    *out = NULL;
    ea_chat *c = NULL;
    ea_status s = chat_new(tok, &c, err);
    if (!s && (s = ea_template_compile(src, len, &c->tpl, err)))
        ea_chat_destroy(c);
    else if (!s)
        *out = c;
    return s;
}

void ea_chat_destroy(ea_chat *c)
{
    if (!c)
        return;
    ea_template_destroy(c->tpl);
    ea_free(c);
}

const ea_template *ea_chat_template(const ea_chat *c) { return c ? c->tpl : NULL; }

void ea_chat_prompt_release(struct ea_chat_prompt *p)
{
    if (!p)
        return;
    ea_free(p->text);
    ea_free(p->data);
    ea_free(p->tokens);
    memset(p, 0, sizeof *p);
}

/* The context JSON text (caller frees with free()). */
static ea_status build_context(const ea_chat *c, const char *messages, size_t len, const struct ea_chat_opts *o,
                               char **out, struct ea_error *err)
{
    *out = NULL;
    json_error_t je;
    json_t *msgs = json_loadb(messages ? messages : "", len, JSON_ALLOW_NUL, &je);
    if (!json_is_array(msgs)) {
        json_decref(msgs);
        return ea_error_set(err, EA_EINVAL, "chat: the messages are not a JSON array");
    }
    json_t *tools = NULL;
    if (o->tools_json) {
        tools = json_loadb(o->tools_json, o->tools_len, JSON_ALLOW_NUL, &je);
        if (!json_is_array(tools)) {
            json_decref(msgs);
            json_decref(tools);
            return ea_error_set(err, EA_EINVAL, "chat: the tools are not a JSON array");
        }
    }
    json_t *ctx = json_object();
    if (!ctx || json_object_set_new(ctx, "messages", msgs) ||
        (tools && json_object_set_new(ctx, "tools", tools)) ||
        json_object_set_new(ctx, "add_generation_prompt", json_boolean(!o->no_generation_prompt)) ||
        json_object_set_new(ctx, "bos_token", json_string(c->bos)) ||
        json_object_set_new(ctx, "eos_token", json_string(c->eos))) {
        json_decref(ctx);
        return ea_error_set(err, EA_ENOMEM, "chat: out of memory");
    }
    *out = json_dumps(ctx, JSON_COMPACT);
    json_decref(ctx);
    return *out ? EA_OK : ea_error_set(err, EA_ENOMEM, "chat: out of memory");
}

/* Whether text begins with the BOS token written by the template. */
static bool template_wrote_bos(const ea_chat *c, const struct ea_chat_prompt *p)
{
    size_t bl = strlen(c->bos);
    if (!bl || p->len < bl || memcmp(p->text, c->bos, bl) != 0)
        return false;
    return !(p->n_data && p->data[0].off < bl);
}

ea_status ea_chat_render(const ea_chat *c, const char *messages_json, size_t len, const struct ea_chat_opts *o,
                         struct ea_chat_prompt *out, struct ea_error *err)
{
    struct ea_error local;
    if (!err)
        err = &local;
    if (!out)
        return ea_error_set(err, EA_EINVAL, "ea_chat_render: NULL argument");
    memset(out, 0, sizeof *out);
    if (!c || (!messages_json && len))
        return ea_error_set(err, EA_EINVAL, "ea_chat_render: NULL argument");
    static const struct ea_chat_opts defaults = {0};
    if (!o)
        o = &defaults;
    size_t max_text = o->max_text ? o->max_text : EA_CHAT_DEFAULT_MAX_TEXT;
    if (o->max_tokens && !c->tok)
        return ea_error_set(err, EA_EINVAL, "ea_chat_render: tokens asked of a chat without a tokenizer");

    char *ctx = NULL;
    ea_status s = build_context(c, messages_json, len, o, &ctx, err);
    if (s)
        return s;
    struct ea_template_render_opts ro = {.max_output = max_text + 1};
    struct ea_template_provenance prov = {TRUSTED_KEYS, TRUSTED_ROLES};
    struct ea_template_span *spans = NULL;
    size_t n_spans = 0;
    s = ea_template_render_tracked(c->tpl, ctx, strlen(ctx), &ro, &prov, &out->text, &out->len, &spans,
                                   &n_spans, err);
    free(ctx);
    if (s == EA_EINVAL)
        return ea_error_prefix(err, "the chat template rejected the messages");
    if (s == EA_ETOOBIG || (!s && out->len > max_text)) {
        ea_free(spans);
        ea_chat_prompt_release(out);
        return ea_error_set(err, EA_ETOOBIG, "chat prompt: longer than the prompt limit");
    }
    if (s)
        return s;
    /* the tokenizer's span type has the same fields; copy, not cast */
    if (n_spans && !(out->data = ea_malloc(n_spans * sizeof *out->data))) {
        ea_free(spans);
        ea_chat_prompt_release(out);
        return ea_error_set(err, EA_ENOMEM, "chat: out of memory");
    }
    for (size_t i = 0; i < n_spans; i++)
        out->data[i] = (struct ea_text_span){spans[i].off, spans[i].len};
    out->n_data = n_spans;
    ea_free(spans);
    if (!o->max_tokens)
        return EA_OK;

    if (out->len / CHAT_MAX_BYTES_PER_TOKEN > o->max_tokens) {
        ea_chat_prompt_release(out);
        return ea_error_set(err, EA_ETOOBIG, "prompt too long");
    }
    /* the template usually writes BOS itself: add it only when it did not */
    out->added_bos = ea_tokenizer_adds_bos(c->tok) && !template_wrote_bos(c, out);
    unsigned flags = EA_TOK_PARSE_SPECIAL | (out->added_bos ? EA_TOK_ADD_SPECIAL : 0);
    s = ea_tokenize_plain(c->tok, out->text, out->len, flags, out->data, out->n_data, o->max_tokens,
                          &out->tokens, &out->n_tokens, err);
    if (s) {
        ea_chat_prompt_release(out);
        return s == EA_ETOOBIG ? ea_error_set(err, s, "prompt too long") : s;
    }
    return EA_OK;
}
