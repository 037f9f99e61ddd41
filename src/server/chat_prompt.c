/* chat_prompt.c - turns chat messages into the prompt text the model sees.
 *
 * Today every model gets ChatML:
 *   <|im_start|>{role}\n{content}<|im_end|>\n ... <|im_start|>assistant\n
 * The Jinja interpreter (template.h, branch `jinja`) replaces the body of
 * ea__chat_prompt_render in a few lines:
 *   - build the context JSON {messages, add_generation_prompt: true,
 *     bos_token, eos_token} (jansson, from msgs and tok),
 *   - ea_template_compile(model_template or the ChatML fallback), then
 *     ea_template_render(tpl, ctx, len, &out, &out_len, err); destroy.
 * model_template is the model's tokenizer.chat_template (NULL when it has
 * none); the caller already passes it.
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
