/* chat_prompt.c - turns chat messages into the prompt text the model sees,
 * with the model's own chat template (tokenizer.chat_template, rendered by
 * the Jinja interpreter of template.h) or ChatML when the model has none.
 * The context is {messages, add_generation_prompt: true, bos_token,
 * eos_token}; a template that rejects the conversation (raise_exception)
 * gives EA_EINVAL with its message, which the caller turns into a 400.
 * Does not hold: tokenization of the result (generate.c does it with
 * special-token parsing, as llama.cpp's server does).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "server/server_int.h"

ea_status ea__chat_template_load(const ea_model *m, ea_template **out, char *why, size_t why_cap,
                                 struct ea_error *err)
{
    *out = NULL;
    if (why_cap)
        why[0] = '\0';
    struct ea_gguf_str src;
    if (ea_gguf_get_str(ea_model_gguf(m), "tokenizer.chat_template", &src, NULL) == EA_OK) {
        struct ea_error terr = {0};
        if (ea_template_compile(src.ptr, (size_t)src.len, out, &terr) == EA_OK)
            return EA_OK;
        snprintf(why, why_cap, "the model's chat template does not compile (%s); using ChatML",
                 terr.msg);
    } else {
        snprintf(why, why_cap, "the model has no chat template; using ChatML");
    }
    return ea_template_compile_default(out, err);
}

static void token_text(const ea_tokenizer *tok, int32_t id, char *buf, size_t cap)
{
    const char *s = tok && id >= 0 ? ea_token_text(tok, id) : NULL;
    snprintf(buf, cap, "%s", s ? s : "");
}

ea_status ea__chat_prompt_render(const ea_template *tpl, const ea_tokenizer *tok,
                                 const struct ea__chat_msg *msgs, int n_msgs, size_t max_len,
                                 char **out, size_t *out_len, struct ea_error *err)
{
    *out = NULL;
    *out_len = 0;
    json_t *arr = json_array();
    for (int i = 0; arr && i < n_msgs; i++) {
        json_t *msg = json_object();
        if (!msg || json_array_append_new(arr, msg) ||
            json_object_set_new(msg, "role", json_string(msgs[i].role)) ||
            json_object_set_new(msg, "content", json_stringn(msgs[i].content, msgs[i].len))) {
            json_decref(arr);
            arr = NULL;
        }
    }
    char bos[256], eos[256];
    token_text(tok, tok ? ea_tokenizer_bos(tok) : -1, bos, sizeof bos);
    token_text(tok, tok ? ea_tokenizer_eos(tok) : -1, eos, sizeof eos);
    json_t *ctx = arr ? json_pack("{s:o, s:b, s:s, s:s}", "messages", arr, "add_generation_prompt",
                                  1, "bos_token", bos, "eos_token", eos)
                      : NULL;
    char *js = ctx ? json_dumps(ctx, JSON_COMPACT) : NULL;
    json_decref(ctx);
    if (!js)
        return ea_error_set(err, EA_ENOMEM, "chat prompt: out of memory");
    char *text = NULL;
    size_t len = 0;
    ea_status s = ea_template_render(tpl, js, strlen(js), &text, &len, err);
    free(js);
    if (s == EA_EINVAL)
        return ea_error_prefix(err, "the chat template rejected the messages");
    if (s)
        return s == EA_ETOOBIG ? ea_error_set(err, s, "chat prompt: longer than the prompt limit") : s;
    if (len > max_len) {
        ea_free(text);
        return ea_error_set(err, EA_ETOOBIG, "chat prompt: longer than the prompt limit");
    }
    *out = text;
    *out_len = len;
    return EA_OK;
}
