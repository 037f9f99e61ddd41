/* chat_prompt.c - turns chat messages into the prompt text the model sees.
 *
 * Today every model gets ChatML:
 *   <|im_start|>{role}\n{content}<|im_end|>\n ... <|im_start|>assistant\n
 * The Jinja interpreter (template.h, branch `jinja`) replaces the body of
 * ea__chat_prompt_render in a few lines:
 *   - once, in ea_server_set_backend: read tokenizer.chat_template with
 *     ea_gguf_get_str(ea_model_gguf(model), ...) and ea_template_compile it,
 *     or ea_template_compile_default() (ChatML) when the model has none; keep
 *     the ea_template * in the server (its first parameter here);
 *   - per request: build the context JSON {messages, add_generation_prompt:
 *     true, bos_token, eos_token} with jansson from msgs and tok, then
 *     ea_template_render(tpl, ctx, len, &out, &out_len, err).
 * Everything around it (tokenizing with special tokens, limits, errors as a
 * 500 with an id) stays as it is.
 * Does not hold: tokenization of the result (generate.c does it with
 * special-token parsing, as llama.cpp's server does).
 */
#include <string.h>

#include "server/server_int.h"

ea_status ea__chat_prompt_render(const char *model_template, const ea_tokenizer *tok,
                                 const struct ea__chat_msg *msgs, int n_msgs, size_t max_len,
                                 char **out, size_t *out_len, struct ea_error *err)
{
    (void)model_template; /* used once the template interpreter is merged */
    (void)tok;
    *out = NULL;
    *out_len = 0;
    struct ea_buf b;
    ea__buf_init(&b, max_len);
    ea_status s = EA_OK;
    for (int i = 0; i < n_msgs && !s; i++) {
        s = ea__buf_puts(&b, "<|im_start|>");
        if (!s)
            s = ea__buf_puts(&b, msgs[i].role);
        if (!s)
            s = ea__buf_putc(&b, '\n');
        if (!s)
            s = ea__buf_append(&b, msgs[i].content, msgs[i].len);
        if (!s)
            s = ea__buf_puts(&b, "<|im_end|>\n");
    }
    if (!s)
        s = ea__buf_puts(&b, "<|im_start|>assistant\n");
    if (s) {
        ea__buf_release(&b);
        return ea_error_set(err, s, "chat prompt: %s",
                            s == EA_ETOOBIG ? "longer than the prompt limit" : "out of memory");
    }
    *out_len = b.len;
    *out = ea__buf_steal(&b);
    ea__buf_release(&b);
    return EA_OK;
}
