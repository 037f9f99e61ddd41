/* template.h - chat templates: a Jinja-subset interpreter that renders Hugging
 * Face chat templates (tokenizer.chat_template) byte-identically to the
 * @huggingface/jinja reference renderer (the one transformers.js uses).
 *
 * Holds: compiling a template source to an opaque ea_template, rendering it
 * with a JSON context, the render limits, and the built-in ChatML fallback
 * template for models that ship none.
 * Does not hold: tokenization of the rendered prompt, picking the template out
 * of GGUF metadata, or parsing the model's reply (tool-call extraction).
 *
 * Semantics follow the reference, quirks included (docs/TEMPLATES.md lists
 * them): `{{ none }}` prints nothing, booleans print as true/false, tojson
 * keeps key order and non-ASCII text, trim_blocks and lstrip_blocks are on.
 * A few constructs the reference lacks but real templates use (list.append,
 * list.pop, |reject, |from_json, dict(), ...) are implemented as documented
 * extensions; they only change renders the reference would refuse.
 *
 * Thread safety: a compiled template is immutable; any number of threads may
 * render it at once. Each render uses its own memory.
 * Stack: evaluation recurses; at the default max_depth a render needs about
 * 256 KiB of stack in a release build (compiling, 128 KiB). Lower max_depth
 * for threads with smaller stacks.
 */
#ifndef EDGEAGENT_TEMPLATE_H
#define EDGEAGENT_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "edgeagent/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ea_template ea_template;

/* Largest template source ea_template_compile accepts (bytes). */
#define EA_TEMPLATE_MAX_SOURCE (4u << 20)

/* Compiles src[0..len) (UTF-8; need not be NUL-terminated). On success *out
 * owns the template; free it with ea_template_destroy. Errors: EA_EFORMAT for
 * a syntax error, EA_EUNSUPPORTED for a statement outside the subset (e.g.
 * {% include %}); both with "line N: ..." in err. EA_ETOOBIG past
 * EA_TEMPLATE_MAX_SOURCE. */
ea_status ea_template_compile(const char *src, size_t len, ea_template **out, struct ea_error *err);
/* NULL-safe. */
void ea_template_destroy(ea_template *tpl);

/* Limits and the clock of one render. Zero fields take the defaults below. */
struct ea_template_render_opts {
    size_t max_output;     /* bytes of rendered text, incl. captured blocks */
    size_t max_memory;     /* bytes of values a render may hold */
    unsigned max_depth;    /* nesting of expressions, statements, macro calls */
    uint64_t max_steps;    /* evaluated nodes, so no template can run forever */
    uint64_t max_iters;    /* loop iterations plus range() elements */
    /* Wall-clock time strftime_now() formats; NULL = local time now. Tests
     * pass a fixed instant. */
    const struct tm *now;
};
#define EA_TEMPLATE_DEFAULT_MAX_OUTPUT (16u << 20)
#define EA_TEMPLATE_DEFAULT_MAX_MEMORY (256u << 20)
#define EA_TEMPLATE_DEFAULT_MAX_DEPTH 400u
#define EA_TEMPLATE_DEFAULT_MAX_STEPS 50000000u
#define EA_TEMPLATE_DEFAULT_MAX_ITERS 10000000u

/* Renders tpl with the variables of context_json[0..len), a JSON object
 * (messages, tools, add_generation_prompt, bos_token, eos_token and any extra
 * keys such as enable_thinking; key order is kept; len 0 = no variables).
 * On success *out is the NUL-terminated text (*out_len bytes, may contain
 * NUL) that the caller frees with ea_free. Errors leave *out NULL:
 *   EA_EINVAL   the context is not a JSON object, or the template raised:
 *               raise_exception(msg) puts exactly msg in err; other runtime
 *               errors read "<message> (template line N)"
 *   EA_ETOOBIG  a limit was hit (output, memory, depth, steps, iterations)
 *   EA_ENOMEM   allocation failed */
ea_status ea_template_render(const ea_template *tpl, const char *context_json, size_t len, char **out,
                             size_t *out_len, struct ea_error *err);
/* Same with explicit limits and clock; opts may be NULL. */
ea_status ea_template_render_ex(const ea_template *tpl, const char *context_json, size_t len,
                                const struct ea_template_render_opts *opts, char **out, size_t *out_len,
                                struct ea_error *err);

/* ---- provenance: message data versus template text ---------------------------- */

/* A byte range [off, off+len) of a rendered text. */
struct ea_template_span {
    size_t off, len;
};

/* Which parts of the context are the template's own (trusted) text. Every
 * other string of the context is message data. */
struct ea_template_provenance {
    /* Top-level keys whose values are trusted (NULL-terminated list, may be
     * NULL): bos_token, eos_token, add_generation_prompt, ... */
    const char *const *trusted_keys;
    /* Values of a "role" key equal to one of these (NULL-terminated) are
     * trusted, so templates that build a control token from the role
     * ('<|' + role + '|>') keep working; other roles are data. */
    const char *const *trusted_roles;
};

/* ea_template_render_ex that also says which bytes of the output derive from
 * message data: *data (sorted, disjoint ranges; the caller frees it with
 * ea_free; NULL when there are none) and *n_data. Data strings keep their
 * provenance through printing, `+`, `~`, join, trim/strip, slicing,
 * indexing, set blocks and macros; any other filter or method given data
 * returns data as a whole (a conservative rule: docs/TEMPLATES.md). The
 * text is exactly ea_template_render_ex's. prov NULL: nothing is trusted. */
ea_status ea_template_render_tracked(const ea_template *tpl, const char *context_json, size_t len,
                                     const struct ea_template_render_opts *opts,
                                     const struct ea_template_provenance *prov, char **out, size_t *out_len,
                                     struct ea_template_span **data, size_t *n_data, struct ea_error *err);

/* The fallback for models without a chat template: ChatML as Qwen2.5 writes
 * it (static string, do not free):
 *   <|im_start|>{role}\n{content}<|im_end|>\n   for every message, then
 *   <|im_start|>assistant\n                      when add_generation_prompt.
 * Content parts ([{type: text, text}]) are joined. With tools, a first system
 * turn lists them in <tools></tools> (after the system message, if any);
 * assistant tool calls are <tool_call>\n{"name": ..., "arguments": ...}
 * \n</tool_call> and role tool results are user turns in <tool_response>. */
const char *ea_template_default_chatml(void);
/* Compiles ea_template_default_chatml() (cannot fail except EA_ENOMEM). */
ea_status ea_template_compile_default(ea_template **out, struct ea_error *err);

#ifdef __cplusplus
}
#endif
#endif
