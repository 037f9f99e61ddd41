/* chat.h - chat prompts: a conversation rendered with a model's chat template
 * (tokenizer.chat_template, or ChatML when the model has none) and turned
 * into the token ids the model is given. The one place that does it: the
 * server and `run --chat` both call it.
 *
 * Holds: picking and compiling the template, the BOS decision, rendering
 * with provenance and tokenizing so that control tokens come only from the
 * template: message data (contents, names, tool-call arguments, tool
 * results, tools) is tokenized as plain text, template text with special
 * tokens recognised. A message that contains "<|im_end|>" or "</s>" yields
 * those characters as text, never the control token (docs/TEMPLATES.md,
 * "Prompt-injection boundaries").
 * Does not hold: the template interpreter (template.h), the tokenizer
 * (tokenizer.h), parsing the model's reply.
 *
 * Threads: an ea_chat is immutable after creation; any number of threads may
 * render with it at once.
 */
#ifndef EDGEAGENT_CHAT_H
#define EDGEAGENT_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/error.h"
#include "edgeagent/gguf.h"
#include "edgeagent/template.h"
#include "edgeagent/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ea_chat ea_chat;

/* Rendered prompts above this many bytes are refused unless the caller
 * gives its own limit (ea_chat_opts.max_text). */
#define EA_CHAT_DEFAULT_MAX_TEXT ((size_t)64 << 20)

/* The chat format of a model: the tokenizer.chat_template of g (g may be
 * NULL: no template), or ChatML (template.h) when there is none or it does
 * not compile; then fallback_reason (may be NULL when reason_cap is 0) says
 * why, else it is "". tok may be NULL (text only: empty BOS/EOS texts, no
 * tokens); it is borrowed and must outlive the ea_chat. The caller owns
 * *out; free it with ea_chat_destroy. */
ea_status ea_chat_create(const ea_gguf *g, const ea_tokenizer *tok, ea_chat **out, char *fallback_reason,
                         size_t reason_cap, struct ea_error *err);
/* Same with a template source of the caller's (src[0..len)); no fallback:
 * a template that does not compile is an error. */
ea_status ea_chat_create_from_source(const char *src, size_t len, const ea_tokenizer *tok, ea_chat **out,
                                     struct ea_error *err);
void ea_chat_destroy(ea_chat *c); /* NULL-safe */

struct ea_chat_opts {
    bool no_generation_prompt; /* default: end with the assistant turn's opening */
    /* JSON array of tool definitions (message data), or NULL. */
    const char *tools_json;
    size_t tools_len;
    size_t max_text;   /* bytes of rendered text; 0 = EA_CHAT_DEFAULT_MAX_TEXT */
    size_t max_tokens; /* 0: render only (no tokens); else EA_ETOOBIG past it */
};

/* A rendered prompt. Everything is owned; release with ea_chat_prompt_release. */
struct ea_chat_prompt {
    char *text; /* NUL-terminated, len bytes */
    size_t len;
    struct ea_text_span *data; /* byte ranges of text that came from message data */
    size_t n_data;
    int32_t *tokens; /* NULL when max_tokens was 0 */
    size_t n_tokens;
    bool added_bos; /* BOS was added because the template did not write it */
};

/* Renders messages_json[0..len) (a JSON array of OpenAI-style messages:
 * role, content as a string or text parts, name, tool_calls, tool_call_id)
 * with the generation prompt, then (max_tokens > 0) tokenizes it: special
 * tokens are recognised in the template's text only, BOS is added when the
 * vocabulary wants one and the template did not write it. On success *out
 * is filled (release with ea_chat_prompt_release). Errors leave *out empty:
 *   EA_EINVAL   messages (or tools) are not a JSON array, or the template
 *               rejected the conversation (err says why)
 *   EA_ETOOBIG  longer than max_text bytes or max_tokens tokens
 *   EA_ENOMEM */
ea_status ea_chat_render(const ea_chat *c, const char *messages_json, size_t len, const struct ea_chat_opts *o,
                         struct ea_chat_prompt *out, struct ea_error *err);
void ea_chat_prompt_release(struct ea_chat_prompt *p); /* NULL-safe; leaves *p empty */

/* The template in use (owned by c). */
const ea_template *ea_chat_template(const ea_chat *c);

#ifdef __cplusplus
}
#endif
#endif
