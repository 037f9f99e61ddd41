/* request.c - parses and validates the JSON bodies of /v1/chat/completions
 * and /v1/completions into struct ea__gen_request, with OpenAI's rules:
 * unknown fields are ignored, null means "not given", wrong types and
 * out-of-range values are a 400 that names the field. Structured output
 * (response_format, vLLM's guided_*) and tools (tools, tool_choice,
 * parallel_tool_calls, tool messages, assistant tool_calls) are validated
 * here; compiling them needs the model (upstream_local.c). Non-text content
 * parts and the deprecated functions API are rejected clearly.
 * Does not hold: tokenization or anything that needs the model (the caller
 * checks prompt length against the context); this file is what
 * fuzz/fuzz_request.c exercises.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "server/server_int.h"

bool ea__api_errorf(struct ea__api_error *e, int status, const char *type, const char *code,
                    const char *param, const char *fmt, ...)
{
    e->status = status;
    e->type = type;
    e->code = code;
    e->retry_after_s = 0;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return false;
}

#define BAD(param, ...) ea__api_errorf(e, 400, "invalid_request_error", NULL, param, __VA_ARGS__)

void ea__gen_request_release(struct ea__gen_request *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_msgs; i++) {
        ea_free(r->msgs[i].content);
        ea_free(r->msgs[i].extra);
    }
    ea_free(r->guide.text);
    for (int i = 0; i < r->guide.n_choices; i++)
        ea_free(r->guide.choices[i]);
    ea_free(r->guide.choices);
    ea_free(r->tools.json);
    ea_free(r->msgs);
    for (int i = 0; i < r->n_prompts; i++) {
        ea_free(r->prompts[i].text);
        ea_free(r->prompts[i].tokens);
    }
    ea_free(r->prompts);
    for (int i = 0; i < r->n_stop; i++)
        ea_free(r->stops[i]);
    ea_free(r->bias);
    memset(r, 0, sizeof *r);
}

/* True when v is a string without NUL bytes (names, roles, types, stops). */
static bool is_name(json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/* The value of key, or NULL when absent or null. */
static json_t *opt(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v && !json_is_null(v) ? v : NULL;
}

static bool get_bool(json_t *o, const char *key, bool *out, struct ea__api_error *e)
{
    json_t *v = opt(o, key);
    if (!v)
        return true;
    if (!json_is_boolean(v))
        return BAD(key, "'%s' must be a boolean", key);
    *out = json_is_true(v);
    return true;
}

/* A number in [lo, hi]; *has set when present. */
static bool get_num(json_t *o, const char *key, double lo, double hi, float *out, bool *has,
                    struct ea__api_error *e)
{
    json_t *v = opt(o, key);
    if (!v)
        return true;
    if (!json_is_number(v))
        return BAD(key, "'%s' must be a number", key);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return BAD(key, "'%s' must be between %g and %g", key, lo, hi);
    *out = (float)d;
    if (has)
        *has = true;
    return true;
}

/* An integer in [lo, hi]; *has set when present. */
static bool get_int(json_t *o, const char *key, long long lo, long long hi, long long *out,
                    bool *has, struct ea__api_error *e)
{
    json_t *v = opt(o, key);
    if (!v)
        return true;
    if (!json_is_integer(v))
        return BAD(key, "'%s' must be an integer", key);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return BAD(key, "'%s' must be between %lld and %lld", key, lo, hi);
    *out = x;
    if (has)
        *has = true;
    return true;
}

static bool parse_stop(json_t *root, struct ea__gen_request *r, struct ea__api_error *e)
{
    json_t *v = opt(root, "stop");
    if (!v)
        return true;
    json_t *one[1] = {v};
    json_t **items = one;
    size_t n = 1;
    if (json_is_array(v)) {
        n = json_array_size(v);
        if (n > EA__MAX_STOP)
            return BAD("stop", "'stop' takes at most %d strings", EA__MAX_STOP);
        items = NULL;
    } else if (!json_is_string(v)) {
        return BAD("stop", "'stop' must be a string or an array of strings");
    }
    for (size_t i = 0; i < n; i++) {
        json_t *s = items ? items[i] : json_array_get(v, i);
        if (!is_name(s))
            return BAD("stop", "'stop' must be a string or an array of strings (without NUL)");
        size_t len = json_string_length(s);
        if (len == 0)
            continue; /* an empty stop string can never usefully match */
        if (len > EA__MAX_STOP_LEN)
            return BAD("stop", "a stop string is longer than %d bytes", EA__MAX_STOP_LEN);
        char *c = ea_strndup(json_string_value(s), len);
        if (!c)
            return ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
        r->stops[r->n_stop++] = c;
    }
    return true;
}

static bool parse_bias(json_t *root, const struct ea__req_limits *lim, struct ea__gen_request *r,
                       struct ea__api_error *e)
{
    json_t *v = opt(root, "logit_bias");
    if (!v)
        return true;
    if (!json_is_object(v))
        return BAD("logit_bias", "'logit_bias' must be an object mapping token ids to numbers");
    size_t n = json_object_size(v);
    if (n > EA__MAX_BIAS)
        return BAD("logit_bias", "'logit_bias' takes at most %d entries", EA__MAX_BIAS);
    if (n == 0)
        return true;
    r->bias = ea_calloc(n, sizeof *r->bias);
    if (!r->bias)
        return ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        char *end;
        errno = 0;
        long t = strtol(key, &end, 10);
        if (!*key || *end || errno || t < 0 || (lim->n_vocab > 0 && t >= lim->n_vocab))
            return BAD("logit_bias", "logit_bias key '%.40s' is not a token id of this model", key);
        if (!json_is_number(val))
            return BAD("logit_bias", "logit_bias values must be numbers");
        double b = json_number_value(val);
        if (!(b >= -100 && b <= 100))
            return BAD("logit_bias", "logit_bias values must be between -100 and 100");
        /* OpenAI: -100 bans the token, 100 makes it the only choice. */
        r->bias[r->n_bias++] = (struct ea_logit_bias){(int32_t)t, b <= -100 ? -INFINITY : (float)b};
    }
    /* banning every token leaves nothing to sample from: the caller's mistake */
    if (lim->n_vocab > 0 && r->n_bias >= lim->n_vocab) {
        int32_t banned = 0;
        uint8_t *seen = ea_calloc((size_t)lim->n_vocab, 1);
        if (!seen)
            return ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
        for (int32_t i = 0; i < r->n_bias; i++)
            if (isinf(r->bias[i].bias) && !seen[r->bias[i].token]++)
                banned++;
        ea_free(seen);
        if (banned == lim->n_vocab)
            return BAD("logit_bias", "logit_bias bans every token of the vocabulary (-100 on all "
                                     "%d): nothing is left to generate",
                       lim->n_vocab);
    }
    return true;
}

/* Concatenates a message content: a string, or an array of text parts. */
static bool parse_content(json_t *c, int idx, size_t cap, struct ea__chat_msg *m,
                          struct ea__api_error *e)
{
    char param[64];
    snprintf(param, sizeof param, "messages[%d].content", idx);
    if (json_is_string(c)) {
        m->len = json_string_length(c);
        m->content = ea_strndup(json_string_value(c), m->len);
        return m->content ? true : ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
    }
    if (!json_is_array(c))
        return BAD(param, "'%s' must be a string or an array of content parts", param);
    struct ea_buf b;
    ea__buf_init(&b, cap); /* the parts are pieces of the body: never longer than it */
    size_t i;
    json_t *part;
    json_array_foreach(c, i, part)
    {
        json_t *type = json_object_get(part, "type");
        if (!json_is_object(part) || !is_name(type)) {
            ea__buf_release(&b);
            return BAD(param, "each part of '%s' must be an object with a 'type'", param);
        }
        if (strcmp(json_string_value(type), "text") != 0) {
            ea__buf_release(&b);
            return BAD(param, "content parts of type '%.32s' are not supported (only 'text')",
                       json_string_value(type));
        }
        json_t *t = json_object_get(part, "text");
        if (!json_is_string(t)) {
            ea__buf_release(&b);
            return BAD(param, "a text part of '%s' needs a string 'text'", param);
        }
        if (ea__buf_append(&b, json_string_value(t), json_string_length(t))) {
            ea__buf_release(&b);
            return ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
        }
    }
    m->len = b.len;
    m->content = b.len ? ea__buf_steal(&b) : ea_strdup("");
    ea__buf_release(&b);
    return m->content ? true : ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
}

/* Whether s is a function name as OpenAI allows it: [A-Za-z0-9_-]{1,64}
 * (dots too, which some frameworks use). */
static bool tool_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > EA__MAX_TOOL_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

/* The tool fields of message m (role rs) as JSON text in cm->extra: an
 * assistant's tool_calls (each {"id", "type": "function", "function":
 * {"name", "arguments"}}; arguments given as a JSON string are parsed into
 * the value templates expect), a tool message's tool_call_id and name. */
static bool message_extra(json_t *m, const char *rs, size_t i, struct ea__chat_msg *cm,
                          struct ea__api_error *e)
{
    char param[64];
    json_t *calls = opt(m, "tool_calls");
    json_t *id = opt(m, "tool_call_id");
    json_t *name = opt(m, "name");
    if (!calls && !id && !name)
        return true;
    json_t *x = json_object();
    if (!x)
        return ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
    bool ok = false;
    if (calls) {
        snprintf(param, sizeof param, "messages[%zu].tool_calls", i);
        if (strcmp(rs, "assistant") != 0) {
            BAD(param, "only assistant messages carry 'tool_calls'");
            goto out;
        }
        if (!json_is_array(calls) || json_array_size(calls) > EA__MAX_TOOLS) {
            BAD(param, "'%s' must be an array of at most %d tool calls", param, EA__MAX_TOOLS);
            goto out;
        }
        json_t *arr = json_array();
        json_object_set_new(x, "tool_calls", arr);
        size_t k;
        json_t *tc;
        json_array_foreach(calls, k, tc)
        {
            json_t *fn = json_is_object(tc) ? json_object_get(tc, "function") : NULL;
            json_t *fname = json_is_object(fn) ? json_object_get(fn, "name") : NULL;
            json_t *args = json_is_object(fn) ? opt(fn, "arguments") : NULL;
            json_t *tid = json_is_object(tc) ? opt(tc, "id") : NULL;
            if (!is_name(fname) || (args && !json_is_string(args) && !json_is_object(args)) ||
                (tid && !is_name(tid))) {
                BAD(param, "each tool call needs 'function' with a string 'name' and 'arguments' "
                           "(a JSON string), and an optional string 'id'");
                goto out;
            }
            json_t *val = NULL;
            if (json_is_string(args)) /* not JSON: the template gets the text as it is */
                val = json_loadb(json_string_value(args), json_string_length(args),
                                 JSON_DECODE_ANY, NULL);
            if (!val)
                val = args ? json_incref(args) : json_object();
            json_t *call = json_pack("{s:s,s:{s:O,s:o}}", "type", "function", "function", "name",
                                     fname, "arguments", val);
            if (!call || (tid && json_object_set(call, "id", tid)) || json_array_append_new(arr, call)) {
                ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
                goto out;
            }
        }
    }
    if (id || name) {
        snprintf(param, sizeof param, "messages[%zu].%s", i, id ? "tool_call_id" : "name");
        if ((id && !is_name(id)) || (name && !is_name(name))) {
            BAD(param, "'%s' must be a string", param);
            goto out;
        }
        if (id)
            json_object_set(x, "tool_call_id", id);
        if (name)
            json_object_set(x, "name", name);
    }
    cm->extra = json_dumps(x, JSON_COMPACT);
    ok = cm->extra ? true : ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
out:
    json_decref(x);
    return ok;
}

static bool parse_messages(json_t *root, struct ea__gen_request *r, struct ea__api_error *e)
{
    json_t *v = json_object_get(root, "messages");
    if (!v || json_is_null(v))
        return BAD("messages", "'messages' is required");
    if (!json_is_array(v))
        return BAD("messages", "'messages' must be an array");
    size_t n = json_array_size(v);
    if (n == 0)
        return BAD("messages", "'messages' must not be empty");
    if (n > EA__MAX_MESSAGES)
        return BAD("messages", "'messages' holds more than %d messages", EA__MAX_MESSAGES);
    r->msgs = ea_calloc(n, sizeof *r->msgs);
    if (!r->msgs)
        return ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(v, i);
        char param[64];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(m))
            return BAD(param, "'%s' must be an object", param);
        json_t *role = json_object_get(m, "role");
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!is_name(role))
            return BAD(param, "'%s' must be a string naming a role", param);
        const char *rs = json_string_value(role);
        struct ea__chat_msg *cm = &r->msgs[r->n_msgs];
        if (!strcmp(rs, "system") || !strcmp(rs, "developer"))
            snprintf(cm->role, sizeof cm->role, "system");
        else if (!strcmp(rs, "user") || !strcmp(rs, "assistant") || !strcmp(rs, "tool"))
            snprintf(cm->role, sizeof cm->role, "%s", rs);
        else if (!strcmp(rs, "function"))
            return BAD(param, "role 'function' (the deprecated functions API) is not supported; "
                              "use tools and role 'tool'");
        else
            return BAD(param, "unknown role '%.32s' (system, developer, user, assistant or tool)",
                       rs);
        if (opt(m, "function_call")) {
            snprintf(param, sizeof param, "messages[%zu].function_call", i);
            return BAD(param, "'function_call' (the deprecated functions API) is not supported; "
                              "use 'tool_calls'");
        }
        json_t *calls = opt(m, "tool_calls");
        json_t *c = json_object_get(m, "content");
        if ((!c || json_is_null(c)) && !(calls && !strcmp(rs, "assistant"))) {
            snprintf(param, sizeof param, "messages[%zu].content", i);
            return BAD(param, "'%s' is required", param);
        }
        if (c && !json_is_null(c)) {
            if (!parse_content(c, (int)i, r->body_len + 1, cm, e))
                return false;
        } else if (!(cm->content = ea_strdup(""))) {
            return ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
        }
        r->n_msgs++;
        if (!strcmp(rs, "tool") && !is_name(opt(m, "tool_call_id"))) {
            snprintf(param, sizeof param, "messages[%zu].tool_call_id", i);
            return BAD(param, "a tool message needs a string '%s'", "tool_call_id");
        }
        if (!message_extra(m, rs, i, cm, e))
            return false;
    }
    return true;
}

/* A token id array; false (with e) when not one. */
static bool token_array(json_t *a, const struct ea__req_limits *lim, struct ea__prompt *p,
                        struct ea__api_error *e)
{
    size_t n = json_array_size(a);
    if (n == 0)
        return BAD("prompt", "a token prompt must not be empty");
    p->tokens = ea_malloc(sizeof *p->tokens * n);
    if (!p->tokens)
        return ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(a, i);
        if (!json_is_integer(t))
            return BAD("prompt", "'prompt' must be a string, an array of strings, or token ids");
        long long x = json_integer_value(t);
        if (x < 0 || (lim->n_vocab > 0 && x >= lim->n_vocab))
            return BAD("prompt", "token id %lld is outside the vocabulary", x);
        p->tokens[i] = (int32_t)x;
    }
    p->n_tokens = (int32_t)n;
    return true;
}

static bool parse_prompt(json_t *root, const struct ea__req_limits *lim, struct ea__gen_request *r,
                         struct ea__api_error *e)
{
    json_t *v = json_object_get(root, "prompt");
    if (!v || json_is_null(v))
        return BAD("prompt", "'prompt' is required");
    const char *shape = "'prompt' must be a string, an array of strings, or token ids";
    size_t n = 1;
    bool list = false;
    if (json_is_array(v)) {
        n = json_array_size(v);
        if (n == 0)
            return BAD("prompt", "'prompt' must not be empty");
        json_t *first = json_array_get(v, 0);
        if (json_is_integer(first)) {
            n = 1; /* one prompt of token ids */
        } else {
            list = true;
            if (n > EA__MAX_PROMPTS)
                return BAD("prompt", "at most %d prompts per request", EA__MAX_PROMPTS);
        }
    } else if (!json_is_string(v)) {
        return BAD("prompt", "%s", shape);
    }
    r->prompts = ea_calloc(n, sizeof *r->prompts);
    if (!r->prompts)
        return ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *item = list ? json_array_get(v, i) : v;
        struct ea__prompt *p = &r->prompts[r->n_prompts++];
        if (json_is_string(item)) {
            p->len = json_string_length(item);
            p->text = ea_strndup(json_string_value(item), p->len);
            if (!p->text)
                return ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
        } else if (json_is_array(item) && (!list || json_array_size(item) > 0)) {
            if (!token_array(item, lim, p, e))
                return false;
        } else {
            return BAD("prompt", "%s", shape);
        }
    }
    return true;
}

/* A copy of s[0..n) into *out; false with a 500 when out of memory. */
static bool dup_into(const char *s, size_t n, char **out, struct ea__api_error *e)
{
    *out = ea_strndup(s, n);
    return *out ? true : ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
}

/* A JSON Schema (an object, or for guided_json also its JSON text) as
 * compact text in g. */
static bool guide_schema(json_t *schema, const char *param, bool text_ok, struct ea__guide *g,
                         struct ea__api_error *e)
{
    json_t *parsed = NULL;
    if (text_ok && json_is_string(schema)) {
        parsed = json_loadb(json_string_value(schema), json_string_length(schema), 0, NULL);
        if (!parsed)
            return BAD(param, "'%s' is a string that is not a JSON object", param);
        schema = parsed;
    }
    if (!json_is_object(schema) && !json_is_boolean(schema)) {
        json_decref(parsed);
        return BAD(param, "'%s' must be a JSON Schema object", param);
    }
    char *txt = json_dumps(schema, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(parsed);
    if (!txt)
        return ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
    g->kind = EA__GUIDE_SCHEMA;
    g->len = strlen(txt);
    bool ok = dup_into(txt, g->len, &g->text, e);
    free(txt);
    return ok;
}

/* response_format, and vLLM's guided_json / guided_regex / guided_choice at
 * the top level: at most one of them. */
static bool parse_guide(json_t *root, struct ea__gen_request *r, struct ea__api_error *e)
{
    struct ea__guide *g = &r->guide;
    static const char *const keys[] = {"response_format", "guided_json", "guided_regex",
                                       "guided_choice", "guided_grammar"};
    const char *given = NULL;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        json_t *v = opt(root, keys[k]);
        if (!v)
            continue;
        if (!strcmp(keys[k], "response_format") && json_is_object(v) &&
            is_name(json_object_get(v, "type")) &&
            !strcmp(json_string_value(json_object_get(v, "type")), "text"))
            continue; /* the default: nothing to enforce */
        if (given)
            return BAD(keys[k], "'%s' and '%s' cannot be combined", given, keys[k]);
        given = keys[k];
    }
    if (!given)
        return true;
    snprintf(g->param, sizeof g->param, "%s", given);
    json_t *v = opt(root, given);
    if (!strcmp(given, "guided_grammar"))
        return BAD(given, "'guided_grammar' (EBNF) is not supported; use guided_json, "
                          "guided_regex or guided_choice");
    if (!strcmp(given, "response_format")) {
        json_t *t = json_is_object(v) ? json_object_get(v, "type") : NULL;
        if (!is_name(t))
            return BAD(given, "'response_format' must be an object with a 'type'");
        const char *ts = json_string_value(t);
        if (!strcmp(ts, "json_object")) {
            g->kind = EA__GUIDE_JSON_OBJECT;
            return true;
        }
        if (strcmp(ts, "json_schema") != 0)
            return BAD(given, "response_format type '%.32s' is not one of text, json_object, "
                              "json_schema",
                       ts);
        json_t *js = json_object_get(v, "json_schema");
        if (!json_is_object(js))
            return BAD("response_format.json_schema",
                       "'response_format.json_schema' must be an object with 'name' and 'schema'");
        json_t *name = opt(js, "name");
        if (name && !is_name(name))
            return BAD("response_format.json_schema.name", "'name' must be a string");
        json_t *strict = opt(js, "strict");
        if (strict && !json_is_boolean(strict))
            return BAD("response_format.json_schema.strict", "'strict' must be a boolean");
        g->strict = strict && json_is_true(strict);
        json_t *schema = opt(js, "schema");
        if (!schema) { /* OpenAI: no schema means any JSON object */
            g->kind = EA__GUIDE_JSON_OBJECT;
            return true;
        }
        snprintf(g->param, sizeof g->param, "response_format.json_schema");
        return guide_schema(schema, "response_format.json_schema.schema", false, g, e);
    }
    if (!strcmp(given, "guided_json"))
        return guide_schema(v, given, true, g, e);
    if (!strcmp(given, "guided_regex")) {
        if (!is_name(v) || json_string_length(v) == 0)
            return BAD(given, "'guided_regex' must be a non-empty string");
        g->kind = EA__GUIDE_REGEX;
        g->len = json_string_length(v);
        return dup_into(json_string_value(v), g->len, &g->text, e);
    }
    /* guided_choice */
    size_t n = json_is_array(v) ? json_array_size(v) : 0;
    if (n == 0 || n > EA__MAX_GUIDE_CHOICES)
        return BAD(given, "'guided_choice' must be an array of 1 to %d strings",
                   EA__MAX_GUIDE_CHOICES);
    g->choices = ea_calloc(n, sizeof *g->choices);
    if (!g->choices)
        return ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
    g->kind = EA__GUIDE_CHOICE;
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(v, i);
        if (!is_name(c) || json_string_length(c) == 0)
            return BAD(given, "'guided_choice' entries must be non-empty strings");
        if (!dup_into(json_string_value(c), json_string_length(c), &g->choices[g->n_choices], e))
            return false;
        g->n_choices++;
    }
    return true;
}

/* tools, tool_choice, parallel_tool_calls (chat only). */
static bool parse_tools(json_t *root, enum ea__req_kind kind, struct ea__gen_request *r,
                        struct ea__api_error *e)
{
    struct ea__tools_req *t = &r->tools;
    t->parallel = true;
    json_t *fns = opt(root, "functions");
    if (fns && (!json_is_array(fns) || json_array_size(fns) > 0))
        return BAD("functions", "'functions' (the deprecated functions API) is not supported; "
                                "use 'tools'");
    if (opt(root, "function_call"))
        return BAD("function_call", "'function_call' (the deprecated functions API) is not "
                                    "supported; use 'tool_choice'");
    json_t *tools = opt(root, "tools");
    json_t *tc = opt(root, "tool_choice");
    if (!get_bool(root, "parallel_tool_calls", &t->parallel, e))
        return false;
    if (tools && !json_is_array(tools))
        return BAD("tools", "'tools' must be an array");
    size_t n = tools ? json_array_size(tools) : 0;
    if (n && kind != EA__REQ_CHAT)
        return BAD("tools", "'tools' applies to /v1/chat/completions only");
    if (n > EA__MAX_TOOLS)
        return BAD("tools", "'tools' holds more than %d tools", EA__MAX_TOOLS);
    for (size_t i = 0; i < n; i++) {
        json_t *tool = json_array_get(tools, i);
        char param[48];
        snprintf(param, sizeof param, "tools[%zu]", i);
        json_t *type = json_is_object(tool) ? json_object_get(tool, "type") : NULL;
        if (!is_name(type) || strcmp(json_string_value(type), "function") != 0)
            return BAD(param, "'%s' must be an object with type 'function'", param);
        json_t *fn = json_object_get(tool, "function");
        json_t *name = json_is_object(fn) ? json_object_get(fn, "name") : NULL;
        if (!is_name(name) || !tool_name_ok(json_string_value(name), json_string_length(name)))
            return BAD(param, "'%s.function.name' must be a name of 1 to %d letters, digits, "
                              "'_', '-' or '.'",
                       param, EA__MAX_TOOL_NAME);
        json_t *params = opt(fn, "parameters");
        if (params && !json_is_object(params))
            return BAD(param, "'%s.function.parameters' must be a JSON Schema object", param);
        json_t *strict = opt(fn, "strict");
        if (strict && !json_is_boolean(strict))
            return BAD(param, "'%s.function.strict' must be a boolean", param);
        t->strict |= strict && json_is_true(strict);
        for (size_t k = 0; k < i; k++)
            if (json_equal(json_object_get(json_object_get(json_array_get(tools, k), "function"),
                                           "name"),
                           name))
                return BAD(param, "two tools are named '%s'", json_string_value(name));
    }
    t->n = (int)n;
    t->choice = n ? EA__TOOLS_AUTO : EA__TOOLS_NONE;
    if (tc) {
        if (is_name(tc)) {
            const char *c = json_string_value(tc);
            if (!strcmp(c, "none"))
                t->choice = EA__TOOLS_NONE;
            else if (!strcmp(c, "auto"))
                t->choice = n ? EA__TOOLS_AUTO : EA__TOOLS_NONE;
            else if (!strcmp(c, "required"))
                t->choice = EA__TOOLS_REQUIRED;
            else
                return BAD("tool_choice", "'tool_choice' must be none, auto, required or "
                                          "{\"type\": \"function\", \"function\": {\"name\": ...}}");
        } else {
            json_t *fn = json_is_object(tc) ? json_object_get(tc, "function") : NULL;
            json_t *name = json_is_object(fn) ? json_object_get(fn, "name") : NULL;
            if (!is_name(name))
                return BAD("tool_choice", "'tool_choice' must be none, auto, required or "
                                          "{\"type\": \"function\", \"function\": {\"name\": ...}}");
            t->choice = EA__TOOLS_NAMED;
            bool found = false;
            for (size_t i = 0; i < n && !found; i++)
                found = json_equal(
                    json_object_get(json_object_get(json_array_get(tools, i), "function"), "name"),
                    name);
            if (!found)
                return BAD("tool_choice", "'tool_choice' names '%.64s', which is not in 'tools'",
                           json_string_value(name));
            snprintf(t->name, sizeof t->name, "%s", json_string_value(name));
        }
        if ((t->choice == EA__TOOLS_REQUIRED || t->choice == EA__TOOLS_NAMED) && n == 0)
            return BAD("tool_choice", "'tool_choice' %s needs 'tools'",
                       t->choice == EA__TOOLS_REQUIRED ? "required" : "naming a function");
    }
    if (n) {
        char *txt = json_dumps(tools, JSON_COMPACT);
        if (!txt)
            return ea__api_errorf(e, 500, "server_error", NULL, "", "out of memory");
        t->len = strlen(txt);
        bool ok = dup_into(txt, t->len, &t->json, e);
        free(txt);
        if (!ok)
            return false;
    }
    if (t->choice != EA__TOOLS_NONE && t->choice != EA__TOOLS_AUTO && r->guide.kind)
        return BAD("tool_choice", "a required tool call cannot be combined with '%s'",
                   r->guide.param);
    return true;
}

/* The routing part of the "edgeagent" extension (OpenAI SDKs send it with
 * extra_body): {"task": NAME, "max_latency_ms": N, "allow_cloud": false}. */
static bool parse_route_ext(json_t *ext, struct ea__gen_request *r, struct ea__api_error *e)
{
    json_t *t = opt(ext, "task");
    if (t) {
        if (!json_is_string(t) || !json_string_length(t) ||
            json_string_length(t) >= sizeof r->route_task)
            return ea__api_errorf(e, 400, "invalid_request_error", NULL, "edgeagent.task",
                                  "'edgeagent.task' must be a task name (1 to %zu bytes)",
                                  sizeof r->route_task - 1);
        snprintf(r->route_task, sizeof r->route_task, "%s", json_string_value(t));
    }
    json_t *ml = opt(ext, "max_latency_ms");
    if (ml) {
        if (!json_is_integer(ml) || json_integer_value(ml) < 1 ||
            json_integer_value(ml) > EA__MAX_LATENCY_MS)
            return ea__api_errorf(e, 400, "invalid_request_error", NULL, "edgeagent.max_latency_ms",
                                  "'edgeagent.max_latency_ms' must be an integer from 1 to %d",
                                  EA__MAX_LATENCY_MS);
        r->max_latency_ms = (uint32_t)json_integer_value(ml);
    }
    json_t *ac = opt(ext, "allow_cloud");
    if (ac && !json_is_boolean(ac))
        return ea__api_errorf(e, 400, "invalid_request_error", NULL, "edgeagent.allow_cloud",
                              "'edgeagent.allow_cloud' must be a boolean");
    r->allow_cloud = !ac || json_is_true(ac);
    json_t *pv = opt(ext, "private");
    if (pv && !json_is_boolean(pv))
        return ea__api_errorf(e, 400, "invalid_request_error", NULL, "edgeagent.private",
                              "'edgeagent.private' must be a boolean");
    r->private_data = pv && json_is_true(pv);
    return true;
}

bool ea__gen_request_parse(enum ea__req_kind kind, const char *body, size_t len,
                           const struct ea__req_limits *lim, struct ea__gen_request *r,
                           struct ea__api_error *e)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->n = 1;
    r->body_len = len;
    r->body = body;
    r->allow_cloud = true;
    json_error_t jerr;
    /* jansson validates UTF-8, caps nesting depth and reports integers and
     * reals that overflow; all of those are malformed JSON here. \u0000 is
     * allowed in strings (models do generate NUL bytes, and clients send the
     * history back); fields compared as names must not contain it (is_name) */
    json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
    if (!root)
        return BAD("", "the request body is not valid JSON: %.200s (at byte %d)", jerr.text,
                   jerr.position);
    bool ok = false;
    long long x;
    if (!json_is_object(root)) {
        BAD("", "the request body must be a JSON object");
        goto out;
    }
    json_t *model = opt(root, "model");
    if (model && !json_is_string(model)) {
        BAD("model", "'model' must be a string");
        goto out;
    }
    if (model) {
        if (json_string_length(model) >= sizeof r->model) {
            BAD("model", "'model' is longer than %zu bytes", sizeof r->model - 1);
            goto out;
        }
        snprintf(r->model, sizeof r->model, "%s", json_string_value(model));
        r->has_model = true;
    }
    if (!parse_guide(root, r, e) || !parse_tools(root, kind, r, e))
        goto out;
    if (kind == EA__REQ_CHAT ? !parse_messages(root, r, e) : !parse_prompt(root, lim, r, e))
        goto out;

    /* max_completion_tokens supersedes max_tokens, as in OpenAI's API */
    const char *mt_key = opt(root, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    x = 0;
    if (!get_int(root, mt_key, 1, lim->max_tokens, &x, NULL, e)) {
        json_t *mv = opt(root, mt_key);
        if (json_is_integer(mv) && json_integer_value(mv) > lim->max_tokens)
            ea__api_errorf(e, 400, "invalid_request_error", NULL, mt_key,
                           "'%s' is %lld; this server allows at most %d", mt_key,
                           (long long)json_integer_value(mv), lim->max_tokens);
        goto out;
    }
    r->max_tokens = (int32_t)x;
    if (!get_num(root, "temperature", 0, 2, &r->temperature, &r->has_temperature, e) ||
        !get_num(root, "top_p", 0, 1, &r->top_p, &r->has_top_p, e) ||
        !get_num(root, "presence_penalty", -2, 2, &r->presence_penalty, NULL, e) ||
        !get_num(root, "frequency_penalty", -2, 2, &r->frequency_penalty, NULL, e))
        goto out;
    x = 1;
    if (!get_int(root, "n", 1, lim->max_n, &x, NULL, e))
        goto out;
    r->n = (int)x;
    if (kind == EA__REQ_COMPLETION) {
        json_t *bo = opt(root, "best_of");
        if (bo && (!json_is_integer(bo) || json_integer_value(bo) != r->n)) {
            BAD("best_of", "'best_of' other than n is not supported");
            goto out;
        }
        if (opt(root, "suffix")) {
            BAD("suffix", "'suffix' is not supported by this model");
            goto out;
        }
        if (r->n * (r->n_prompts ? r->n_prompts : 1) > lim->max_n) {
            BAD("n", "prompts x n exceeds %d choices per request", lim->max_n);
            goto out;
        }
    }
    if (!parse_stop(root, r, e))
        goto out;
    json_t *seed = opt(root, "seed");
    if (seed) {
        if (!json_is_integer(seed)) {
            BAD("seed", "'seed' must be an integer");
            goto out;
        }
        r->has_seed = true;
        r->seed = (uint64_t)json_integer_value(seed);
    }
    if (!parse_bias(root, lim, r, e))
        goto out;
    if (kind == EA__REQ_CHAT) {
        if (!get_bool(root, "logprobs", &r->logprobs, e))
            goto out;
        bool has_top = false;
        x = 0;
        if (!get_int(root, "top_logprobs", 0, 20, &x, &has_top, e))
            goto out;
        if (has_top && !r->logprobs && x > 0) {
            BAD("top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
            goto out;
        }
        r->top_logprobs = (int)x;
    } else {
        bool has = false;
        x = 0;
        if (!get_int(root, "logprobs", 0, 5, &x, &has, e))
            goto out;
        r->logprobs = has;
        r->top_logprobs = (int)x;
        if (!get_bool(root, "echo", &r->echo, e))
            goto out;
    }
    json_t *user = opt(root, "user");
    if (user && !json_is_string(user)) {
        BAD("user", "'user' must be a string");
        goto out;
    }
    if (!get_bool(root, "stream", &r->stream, e))
        goto out;
    json_t *so = opt(root, "stream_options");
    if (so) {
        if (!json_is_object(so)) {
            BAD("stream_options", "'stream_options' must be an object");
            goto out;
        }
        if (!r->stream) {
            BAD("stream_options", "'stream_options' is only allowed when 'stream' is true");
            goto out;
        }
        json_t *iu = opt(so, "include_usage");
        if (iu && !json_is_boolean(iu)) {
            BAD("stream_options.include_usage", "'stream_options.include_usage' must be a boolean");
            goto out;
        }
        r->include_usage = iu && json_is_true(iu);
    }
    /* "edgeagent": {"parse_special": false}: a completion prompt's control
     * markup stays text (chat messages are always text: chat.h) */
    json_t *ext = opt(root, "edgeagent");
    if (ext && !json_is_object(ext)) {
        BAD("edgeagent", "'edgeagent' must be an object");
        goto out;
    }
    json_t *ps = ext ? opt(ext, "parse_special") : NULL;
    if (ps && !json_is_boolean(ps)) {
        BAD("edgeagent.parse_special", "'edgeagent.parse_special' must be a boolean");
        goto out;
    }
    r->parse_special = !ps || json_is_true(ps);
    json_t *syn = ext ? opt(ext, "tool_syntax") : NULL;
    if (syn && !(is_name(syn) && (!strcmp(json_string_value(syn), "hermes") ||
                                  !strcmp(json_string_value(syn), "llama3") ||
                                  !strcmp(json_string_value(syn), "mistral") ||
                                  !strcmp(json_string_value(syn), "generic")))) {
        BAD("edgeagent.tool_syntax",
            "'edgeagent.tool_syntax' must be hermes, llama3, mistral or generic");
        goto out;
    }
    if (syn)
        snprintf(r->tools.syntax, sizeof r->tools.syntax, "%s", json_string_value(syn));
    if (ext && !parse_route_ext(ext, r, e))
        goto out;
    ok = true;
out:
    json_decref(root);
    if (!ok)
        ea__gen_request_release(r);
    return ok;
}
