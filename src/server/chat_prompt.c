/* chat_prompt.c - the server's chat messages -> the prompt the model sees,
 * through the library's one chat-prompt function (chat.h): the model's own
 * chat template (ChatML when it has none), message contents tokenized as
 * plain text so they cannot forge control tokens. A template that rejects
 * the conversation (raise_exception) gives EA_EINVAL with its message,
 * which the caller turns into a 400.
 * Does not hold: the rendering and tokenizing rules (src/chat/).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

ea_status ea__chat_template_load(const ea_model *m, const ea_tokenizer *tok, ea_chat **out, char *why,
                                 size_t why_cap, struct ea_error *err)
{
    return ea_chat_create(ea_model_gguf(m), tok, out, why, why_cap, err);
}

ea_status ea__chat_prompt_render(const ea_chat *chat, const struct ea__chat_msg *msgs, int n_msgs,
                                 size_t max_len, size_t max_tokens, struct ea_chat_prompt *out,
                                 struct ea_error *err)
{
    memset(out, 0, sizeof *out);
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
    char *js = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (!js)
        return ea_error_set(err, EA_ENOMEM, "chat prompt: out of memory");
    struct ea_chat_opts o = {.max_text = max_len, .max_tokens = max_tokens};
    ea_status s = ea_chat_render(chat, js, strlen(js), &o, out, err);
    free(js);
    return s;
}
