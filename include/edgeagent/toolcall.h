/* toolcall.h - tool calls of model families: which syntax a chat template
 * uses, the grammar that forces a call in that syntax, and the streaming
 * parser that splits a model's output into content and tool calls.
 *
 * Syntaxes (docs/STRUCTURED.md, "Tools"):
 *   hermes   Qwen 2.5/3, Hermes 2/3, SmolLM3, the ChatML fallback:
 *            <tool_call>\n{"name": N, "arguments": {...}}\n</tool_call>, one
 *            tagged block per call
 *   llama3   Llama 3.1-3.3: the whole answer is {"name": N, "parameters":
 *            {...}} (after <|python_tag|> when the model writes it)
 *   mistral  Mistral / Devstral: [TOOL_CALLS] then a JSON array of {"name",
 *            "arguments"} (the [TOOL_CALLS] control token may be absent from
 *            the text)
 *   generic  a template that does not render tools: the tools and the hermes
 *            syntax are described to the model in a system message
 *            (ea_tool_system_prompt), and the hermes parser reads the answer.
 *
 * Holds: detection from the template source, the grammar for tool_choice
 * required / a named function, the parser, the generic system prompt.
 * Does not hold: rendering (chat.h), HTTP shapes (src/server/), sampling.
 * Threads: a parser belongs to one caller; the rest is stateless.
 */
#ifndef EDGEAGENT_TOOLCALL_H
#define EDGEAGENT_TOOLCALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/error.h"
#include "edgeagent/grammar.h"

#ifdef __cplusplus
extern "C" {
#endif

enum ea_tool_syntax {
    EA_TOOL_SYNTAX_GENERIC = 0,
    EA_TOOL_SYNTAX_HERMES,
    EA_TOOL_SYNTAX_LLAMA3,
    EA_TOOL_SYNTAX_MISTRAL,
};

/* What opens Mistral's calls: a control token of its vocabulary (v3
 * tokenizers), or the same text written out. */
#define EA_TOOL_MISTRAL_TAG "[TOOL_CALLS]"

/* Parallel calls a forced grammar allows in a tagged syntax. */
#define EA_TOOL_MAX_PARALLEL 8
/* Bytes of one call's text the parser buffers; a longer call is content. */
#define EA_TOOL_MAX_CALL_BYTES ((size_t)1 << 20)

/* The syntax a template uses, from its source (NULL / empty: the ChatML
 * fallback, hermes): "[TOOL_CALLS]" mistral, "<|python_tag|>" or "ipython"
 * llama3, "<tool_call>" hermes, otherwise generic. */
enum ea_tool_syntax ea_tool_syntax_detect(const char *template_src, size_t len);
const char *ea_tool_syntax_name(enum ea_tool_syntax s);
/* false when name is none of hermes, llama3, mistral, generic */
bool ea_tool_syntax_from_name(const char *name, enum ea_tool_syntax *out);

/* The grammar of the calls a model must write with tool_choice required
 * (only NULL) or naming one function: the syntax's framing around
 * {"name": N, "arguments": ARGS} with ARGS valid under the function's
 * parameters (ea_grammar_compile_tools); parallel allows up to
 * EA_TOOL_MAX_PARALLEL calls (in the mistral array too), else exactly one.
 * tools_json is the request's "tools" array. Errors as for
 * ea_grammar_compile_tools (EA_EUNSUPPORTED with strict for a keyword it
 * cannot enforce). */
ea_status ea_tool_grammar_compile(const ea_grammar_vocab *v, enum ea_tool_syntax syn,
                                  const char *tools_json, size_t len, const char *only,
                                  bool parallel, bool strict, ea_grammar **out,
                                  struct ea_error *err);

/* The system-prompt text that presents tools to a model whose template does
 * not (generic): malloc'd, NUL-terminated; NULL when out of memory. */
char *ea_tool_system_prompt(const char *tools_json, size_t len);

/* ---- parsing a model's output ---------------------------------------------- */

/* A call comes either whole (CALL: a block or answer parsed at once) or
 * streamed (CALL_BEGIN with the name, CALL_ARGS pieces of the arguments'
 * JSON text as the model writes them, CALL_END): a tagged call whose text
 * opens like {"name": "N", "arguments": { is streamed from that brace on. */
enum ea_tool_event_kind {
    EA_TOOL_EV_CONTENT,
    EA_TOOL_EV_CALL,
    EA_TOOL_EV_CALL_BEGIN,
    EA_TOOL_EV_CALL_ARGS,
    EA_TOOL_EV_CALL_END,
};

struct ea_tool_event {
    enum ea_tool_event_kind kind;
    const char *text; /* CONTENT: the text */
    size_t len;
    const char *name; /* CALL, CALL_BEGIN: the function name (NUL-terminated) */
    /* CALL: the arguments as compact JSON text (NUL-terminated); CALL_ARGS:
     * the next piece of the arguments' text (not NUL-terminated) */
    const char *arguments;
    size_t arguments_len;
    bool cut; /* CALL_END: the output ended inside the arguments, or they are not JSON */
};

/* Receives events in output order; returns false to stop (the parser then
 * returns EA_ECANCELLED). */
typedef bool (*ea_tool_sink)(void *user, const struct ea_tool_event *ev);

typedef struct ea_tool_parser ea_tool_parser;

ea_status ea_tool_parser_create(enum ea_tool_syntax syn, ea_tool_parser **out,
                                struct ea_error *err);
void ea_tool_parser_destroy(ea_tool_parser *p); /* NULL-safe */
/* Feeds the next piece of output (any split: a tag or a call may span
 * pieces). Content is passed on as soon as it cannot be the start of a
 * call; a streamed call's arguments as they come, another call once it is
 * complete. */
ea_status ea_tool_parser_feed(ea_tool_parser *p, const char *text, size_t n, ea_tool_sink sink,
                              void *user, struct ea_error *err);
/* The output ended: what is held is resolved (a complete call, else content). */
ea_status ea_tool_parser_finish(ea_tool_parser *p, ea_tool_sink sink, void *user,
                                struct ea_error *err);
/* Calls reported so far (whole, or begun). */
int ea_tool_parser_n_calls(const ea_tool_parser *p);

#ifdef __cplusplus
}
#endif
#endif
