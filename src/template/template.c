/* template.c - the public face of chat templates (template.h): compile,
 * render with a JSON context, and the built-in ChatML fallback.
 *
 * Does not hold: lexing, parsing, evaluation or built-ins (template_*.c).
 */
#include "template/template_int.h"

#include <jansson.h>
#include <string.h>
#include <time.h>

ea_status ea_template_compile(const char *src, size_t len, ea_template **out, struct ea_error *err)
{
    if (!out || (!src && len))
        return ea_error_set(err, EA_EINVAL, "ea_template_compile: NULL argument");
    *out = NULL;
    if (len > EA_TEMPLATE_MAX_SOURCE)
        return ea_error_set(err, EA_ETOOBIG, "template source is %zu bytes; the limit is %u", len,
                            EA_TEMPLATE_MAX_SOURCE);
    ea_template *t = ea_calloc(1, sizeof *t);
    if (!t)
        return ea_error_set(err, EA_ENOMEM, "out of memory");
    /* tokens and AST of the largest accepted source fit many times over */
    ta_init(&t->ar, (size_t)EA_TEMPLATE_MAX_SOURCE * 64);
    /* Node reads a template file as UTF-8 with replacement characters */
    char *clean = NULL;
    size_t clean_len = len;
    ea_status st = tx_sanitize_utf8(src ? src : "", len, &clean, &clean_len);
    if (st) {
        ea_error_set(err, st, "out of memory");
        goto out_free_template;
    }
    struct token *toks = NULL;
    size_t n = 0;
    st = tpl_lex(&t->ar, clean ? clean : src ? src : "", clean_len, &toks, &n, err);
    ea_free(clean);
    if (st)
        goto out_free_template;
    st = tpl_parse(t, toks, n, err);
    ea_free(toks);
    if (st)
        goto out_free_template;
    *out = t;
    return EA_OK;
out_free_template:
    if (st == EA_ENOMEM && t->ar.capped)
        st = ea_error_set(err, EA_ETOOBIG, "template too large to compile");
    ea_template_destroy(t);
    return st;
}

void ea_template_destroy(ea_template *tpl)
{
    if (!tpl)
        return;
    ta_release(&tpl->ar);
    ea_free(tpl);
}

ea_status ea_template_render(const ea_template *tpl, const char *context_json, size_t len, char **out,
                             size_t *out_len, struct ea_error *err)
{
    return ea_template_render_ex(tpl, context_json, len, NULL, out, out_len, err);
}

/* Names the reference declares before the context; a context key with one of
 * these names is an error there ("Variable already declared"). */
static const char *const RESERVED[] = {"namespace", "false", "true",  "none", "raise_exception",
                                       "range",     "strftime_now", "True", "False", "None"};

static bool listed(const char *const *list, const struct tstr *s)
{
    for (; list && *list; list++)
        if (tstr_eqz(s, *list))
            return true;
    return false;
}

static int declare_context(struct rctx *r, struct tenv *g, const json_t *root,
                           const struct ea_template_provenance *prov)
{
    struct tv ctx;
    r->json_data = r->track; /* tracked: the context is data ... */
    int rc = tv_from_json(r, root, &ctx);
    r->json_data = false;
    if (rc)
        return rc;
    for (size_t i = 0; i < ctx.u.o->n; i++) {
        struct tobj_ent *e = &ctx.u.o->e[i];
        if (r->track && listed(prov->trusted_keys, e->k) && /* ... but for the trusted keys */
            (rc = tv_from_json(r, json_object_getn(root, e->k->s, e->k->len), &e->v)))
            return rc;
        for (size_t k = 0; k < sizeof RESERVED / sizeof RESERVED[0]; k++)
            if (tstr_eqz(e->k, RESERVED[k]))
                return ea_error_set(r->err, EA_EINVAL, "Variable already declared: %s", e->k->s);
        if ((rc = env_set(r, g, e->k, tstr_hash(e->k->s, e->k->len), e->v)))
            return rc;
    }
    return 0;
}

static ea_status render(const ea_template *tpl, const char *context_json, size_t len,
                        const struct ea_template_render_opts *opts, const struct ea_template_provenance *prov,
                        char **out, size_t *out_len, struct ea_template_span **data, size_t *n_data,
                        struct ea_error *err);

ea_status ea_template_render_ex(const ea_template *tpl, const char *context_json, size_t len,
                                const struct ea_template_render_opts *opts, char **out, size_t *out_len,
                                struct ea_error *err)
{
    return render(tpl, context_json, len, opts, NULL, out, out_len, NULL, NULL, err);
}

ea_status ea_template_render_tracked(const ea_template *tpl, const char *context_json, size_t len,
                                     const struct ea_template_render_opts *opts,
                                     const struct ea_template_provenance *prov, char **out, size_t *out_len,
                                     struct ea_template_span **data, size_t *n_data, struct ea_error *err)
{
    static const struct ea_template_provenance none = {0};
    if (data)
        *data = NULL;
    if (n_data)
        *n_data = 0;
    if (!data || !n_data) {
        struct ea_error local;
        return ea_error_set(err ? err : &local, EA_EINVAL, "ea_template_render_tracked: NULL argument");
    }
    return render(tpl, context_json, len, opts, prov ? prov : &none, out, out_len, data, n_data, err);
}

static ea_status render(const ea_template *tpl, const char *context_json, size_t len,
                        const struct ea_template_render_opts *opts, const struct ea_template_provenance *prov,
                        char **out, size_t *out_len, struct ea_template_span **data, size_t *n_data,
                        struct ea_error *err)
{
    struct ea_error local;
    if (!err)
        err = &local;
    ea_error_clear(err);
    if (!tpl || !out || (!context_json && len))
        return ea_error_set(err, EA_EINVAL, "ea_template_render: NULL argument");
    *out = NULL;
    if (out_len)
        *out_len = 0;

    struct ea_template_render_opts o = {0};
    if (opts)
        o = *opts;
    struct rctx r;
    memset(&r, 0, sizeof r);
    r.err = err;
    r.max_depth = o.max_depth ? o.max_depth : EA_TEMPLATE_DEFAULT_MAX_DEPTH;
    r.max_steps = o.max_steps ? o.max_steps : EA_TEMPLATE_DEFAULT_MAX_STEPS;
    r.max_iters = o.max_iters ? o.max_iters : EA_TEMPLATE_DEFAULT_MAX_ITERS;
    ta_init(&r.ar, o.max_memory ? o.max_memory : EA_TEMPLATE_DEFAULT_MAX_MEMORY);
    r.ar.serial = 1; /* runtime strings are numbered (tstr.born) */
    r.track = prov != NULL;
    r.trusted_roles = prov ? prov->trusted_roles : NULL;
    ea__buf_init(&r.out, o.max_output ? o.max_output : EA_TEMPLATE_DEFAULT_MAX_OUTPUT);
    if (o.now) {
        r.now = *o.now;
    } else {
        time_t now = time(NULL);
        localtime_r(&now, &r.now);
    }

    json_t *root = NULL;
    int rc = 0;
    if (len) {
        json_error_t je;
        root = json_loadb(context_json, len, JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &je);
        if (!root) {
            rc = ea_error_set(err, EA_EINVAL, "template context is not valid JSON: %s (line %d, column %d)", je.text,
                              je.line, je.column);
            goto out_release;
        }
    } else {
        root = json_object();
        if (!root) {
            rc = ea_error_set(err, EA_ENOMEM, "out of memory");
            goto out_release;
        }
    }
    if (!json_is_object(root)) {
        rc = ea_error_set(err, EA_EINVAL, "template context must be a JSON object");
        goto out_release;
    }
    r.global = env_new(&r, NULL);
    if (!r.global) {
        rc = rt_oom(&r);
        goto out_release;
    }
    if ((rc = bi_globals(&r, r.global)) || (rc = declare_context(&r, r.global, root, prov)))
        goto out_release;
    rc = ev_block(&r, tpl->body, tpl->nbody, r.global);
    if (rc == TR_BREAK || rc == TR_CONTINUE) {
        rc = ea_error_set(err, EA_EINVAL, "{%% %s %%} outside a for loop", rc == TR_BREAK ? "break" : "continue");
        goto out_release;
    }
    if (rc)
        goto out_release;
    if (data) {
        ts_cut(&r.out_sp, r.out.len);
        if (r.out_sp.n && !(*data = ea_malloc(r.out_sp.n * sizeof **data))) {
            rc = ea_error_set(err, EA_ENOMEM, "out of memory");
            goto out_release;
        }
        for (size_t i = 0; i < r.out_sp.n; i++)
            (*data)[i] = (struct ea_template_span){r.out_sp.v[i].off, r.out_sp.v[i].len};
        *n_data = r.out_sp.n;
    }
    if (out_len)
        *out_len = r.out.len;
    *out = ea__buf_steal(&r.out);
    if (!*out) {
        rc = ea_error_set(err, EA_ENOMEM, "out of memory");
        if (data) {
            ea_free(*data);
            *data = NULL;
            *n_data = 0;
        }
    }
out_release:
    if (rc && err->status == EA_OK) /* a failure that did not explain itself */
        ea_error_set(err, (ea_status)(rc > 0 && rc < EA_STATUS_COUNT ? rc : EA_EINTERNAL), "template render failed");
    json_decref(root);
    rt_scratch_release_all(&r);
    ea_free(r.out_sp.v);
    ea__buf_release(&r.out);
    ta_release(&r.ar);
    return rc ? err->status : EA_OK;
}

/* ---- fallback ------------------------------------------------------------------- */

/* tests/data/templates/default-chatml.jinja holds the same text (test_template
 * checks it), so that the golden script can render it with the reference. */
static const char CHATML[] =
    "{#- edgeagent default chat template: ChatML with Hermes-style tool calls (docs/TEMPLATES.md) -#}\n"
    "{%- macro content_text(content) -%}\n"
    "    {%- if content is string -%}\n"
    "        {{- content -}}\n"
    "    {%- elif content is iterable -%}\n"
    "        {%- for part in content -%}\n"
    "            {%- if part is mapping and part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- endif -%}\n"
    "{%- endmacro -%}\n"
    "{%- set system_first = messages and messages[0]['role'] == 'system' -%}\n"
    "{%- if tools -%}\n"
    "    {{- '<|im_start|>system\\n' -}}\n"
    "    {%- if system_first -%}{{- content_text(messages[0]['content']) + '\\n\\n' -}}{%- endif -%}\n"
    "    {{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>' -}}\n"
    "    {%- for tool in tools -%}{{- '\\n' + tool | tojson -}}{%- endfor -%}\n"
    "    {{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\\n</tool_call><|im_end|>\\n' -}}\n"
    "{%- endif -%}\n"
    "{%- for message in messages -%}\n"
    "    {%- if message['role'] == 'tool' -%}\n"
    "        {{- '<|im_start|>user\\n<tool_response>\\n' + content_text(message['content']) + '\\n</tool_response><|im_end|>\\n' -}}\n"
    "    {%- elif not (tools and loop.first and system_first) -%}\n"
    "        {%- set text = content_text(message['content']) -%}\n"
    "        {{- '<|im_start|>' + message['role'] + '\\n' + text -}}\n"
    "        {%- if message['tool_calls'] is defined and message['tool_calls'] -%}\n"
    "            {%- for call in message['tool_calls'] -%}\n"
    "                {%- set fn = call['function'] if call['function'] is defined else call -%}\n"
    "                {%- set args = fn['arguments'] if fn['arguments'] is string else fn['arguments'] | tojson -%}\n"
    "                {{- ('\\n' if text or not loop.first else '') + '<tool_call>\\n{\"name\": ' + fn['name'] | tojson -}}\n"
    "                {{- ', \"arguments\": ' + args + '}\\n</tool_call>' -}}\n"
    "            {%- endfor -%}\n"
    "        {%- endif -%}\n"
    "        {{- '<|im_end|>\\n' -}}\n"
    "    {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{- '<|im_start|>assistant\\n' -}}\n"
    "{%- endif -%}\n";

const char *ea_template_default_chatml(void) { return CHATML; }

ea_status ea_template_compile_default(ea_template **out, struct ea_error *err)
{
    return ea_template_compile(CHATML, sizeof CHATML - 1, out, err);
}
