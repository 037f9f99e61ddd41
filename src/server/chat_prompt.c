/* chat_prompt.c - the server's chat messages -> the prompt the model sees,
 * through the library's one chat-prompt function (chat.h): the model's own
 * chat template (ChatML when it has none), message contents tokenized as
 * plain text so they cannot forge control tokens; tool calls, tool results
 * and the tools array are handed to the template as message data. A template that rejects
 * the conversation (raise_exception) gives EA_EINVAL with its message,
 * which the caller turns into a 400.
 * Does not hold: the rendering and tokenizing rules (src/chat/).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/toolcall.h"
#include "server/server_int.h"

ea_status ea__chat_template_load(const ea_model *m, const ea_tokenizer *tok, ea_chat **out, char *why,
                                 size_t why_cap, struct ea_error *err)
{
    return ea_chat_create(ea_model_gguf(m), tok, out, why, why_cap, err);
}

/* The message array for the template: role, content and the tool fields
 * (extra); system_extra (NULL: none) is appended to the first system message,
 * or comes first as a system message of its own. */
static json_t *messages_json(const struct ea__chat_msg *msgs, int n_msgs, const char *system_extra)
{
    json_t *arr = json_array();
    bool placed = !system_extra;
    if (arr && !placed && (n_msgs == 0 || strcmp(msgs[0].role, "system") != 0)) {
        json_t *m = json_pack("{s:s,s:s}", "role", "system", "content", system_extra);
        if (!m || json_array_append_new(arr, m)) {
            json_decref(arr);
            return NULL;
        }
        placed = true;
    }
    for (int i = 0; arr && i < n_msgs; i++) {
        json_t *msg = NULL;
        if (msgs[i].extra)
            msg = json_loads(msgs[i].extra, 0, NULL);
        else
            msg = json_object();
        json_t *content = json_stringn(msgs[i].content, msgs[i].len);
        if (content && !placed && !strcmp(msgs[i].role, "system")) {
            json_decref(content);
            content = NULL;
            size_t el = strlen(system_extra);
            char *joined = ea_malloc(msgs[i].len + 2 + el);
            if (joined) {
                memcpy(joined, msgs[i].content, msgs[i].len);
                memcpy(joined + msgs[i].len, "\n\n", 2);
                memcpy(joined + msgs[i].len + 2, system_extra, el);
                content = json_stringn(joined, msgs[i].len + 2 + el);
                ea_free(joined);
            }
            placed = true;
        }
        if (!msg || !content || json_array_append_new(arr, msg) ||
            json_object_set_new(msg, "role", json_string(msgs[i].role)) ||
            json_object_set_new(msg, "content", content)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

ea_status ea__chat_prompt_render_tools(const ea_chat *chat, const struct ea__chat_msg *msgs,
                                       int n_msgs, const char *tools_json, size_t tools_len,
                                       const char *system_extra, size_t max_len,
                                       size_t max_tokens, struct ea_chat_prompt *out,
                                       struct ea_error *err)
{
    memset(out, 0, sizeof *out);
    json_t *arr = messages_json(msgs, n_msgs, system_extra);
    char *js = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (!js)
        return ea_error_set(err, EA_ENOMEM, "chat prompt: out of memory");
    struct ea_chat_opts o = {.max_text = max_len, .max_tokens = max_tokens,
                             .tools_json = tools_json, .tools_len = tools_len};
    ea_status s = ea_chat_render(chat, js, strlen(js), &o, out, err);
    free(js);
    return s;
}

ea_status ea__chat_prompt_request(const ea_chat *chat, bool renders_tools, const struct ea__gen_request *r,
                                  size_t max_len, size_t max_tokens, struct ea_chat_prompt *out,
                                  struct ea_error *err)
{
    /* tools reach the model through its template, or a system message when
     * the template does not render them; tool_choice none: not at all */
    bool tools = r->tools.json && r->tools.choice != EA__TOOLS_NONE;
    char *sys = tools && !renders_tools ? ea_tool_system_prompt(r->tools.json, r->tools.len) : NULL;
    if (tools && !renders_tools && !sys) {
        memset(out, 0, sizeof *out);
        return ea_error_set(err, EA_ENOMEM, "out of memory");
    }
    ea_status s = ea__chat_prompt_render_tools(chat, r->msgs, r->n_msgs, tools && renders_tools ? r->tools.json : NULL,
                                               tools && renders_tools ? r->tools.len : 0, sys, max_len, max_tokens,
                                               out, err);
    ea_free(sys);
    return s;
}

ea_status ea__chat_prompt_render(const ea_chat *chat, const struct ea__chat_msg *msgs, int n_msgs,
                                 size_t max_len, size_t max_tokens, struct ea_chat_prompt *out,
                                 struct ea_error *err)
{
    return ea__chat_prompt_render_tools(chat, msgs, n_msgs, NULL, 0, NULL, max_len, max_tokens, out,
                                        err);
}
