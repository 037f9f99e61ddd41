/* toolcall.c - tool-call syntaxes of model families (toolcall.h): detection
 * from a chat template's source, the grammar that forces calls, the generic
 * system prompt, and the streaming parser.
 *
 * The parser has two shapes. Tagged syntaxes (hermes, generic) pass content
 * through, holding back only a tail that could begin "<tool_call>"; a block
 * that opens as {"name": "N", "arguments": { is streamed (the name, then the
 * arguments' bytes as they come, a small JSON scanner finding the object's
 * end, then the rest up to "</tool_call>" dropped); any other block is
 * buffered to "</tool_call>" and becomes a call when it holds a JSON object
 * with a string "name" (else it is given back as content, tags included).
 * A llama3 answer that opens as {"name": "N", "parameters": { is streamed
 * the same way. Whole-answer syntaxes (llama3, mistral) look at
 * the first non-blank bytes: an answer that opens like a call ("{" for
 * llama3, "[" or "[TOOL_CALLS]" for mistral, after an optional
 * "<|python_tag|>") is buffered to the end and parsed there; anything else
 * is content from the first byte.
 * Does not hold: rendering (chat_prompt.c), grammars (src/grammar/).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/toolcall.h"
#include "util/buf.h"

#define OPEN_TAG "<tool_call>"
#define CLOSE_TAG "</tool_call>"
#define PYTHON_TAG "<|python_tag|>"
#define MISTRAL_TAG EA_TOOL_MISTRAL_TAG
/* Bytes of the generic system prompt besides the tools' JSON (its fixed
 * sentences and a newline per tool come to well under this). */
#define SYSTEM_PROMPT_TEXT_MAX 1024

enum ea_tool_syntax ea_tool_syntax_detect(const char *src, size_t len)
{
    if (!src || len == 0)
        return EA_TOOL_SYNTAX_HERMES; /* the ChatML fallback renders hermes tools */
    /* the template is text of bounded size (template.h caps it) */
    struct {
        const char *needle;
        enum ea_tool_syntax syn;
    } marks[] = {
        {MISTRAL_TAG, EA_TOOL_SYNTAX_MISTRAL},
        {PYTHON_TAG, EA_TOOL_SYNTAX_LLAMA3},
        {"ipython", EA_TOOL_SYNTAX_LLAMA3},
        {OPEN_TAG, EA_TOOL_SYNTAX_HERMES},
    };
    for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++) {
        size_t nl = strlen(marks[m].needle);
        for (size_t i = 0; i + nl <= len; i++)
            if (src[i] == marks[m].needle[0] && !memcmp(src + i, marks[m].needle, nl))
                return marks[m].syn;
    }
    return EA_TOOL_SYNTAX_GENERIC;
}

static const char *const NAMES[] = {"generic", "hermes", "llama3", "mistral"};

const char *ea_tool_syntax_name(enum ea_tool_syntax s)
{
    return (unsigned)s < sizeof NAMES / sizeof NAMES[0] ? NAMES[s] : "generic";
}

bool ea_tool_syntax_from_name(const char *name, enum ea_tool_syntax *out)
{
    for (size_t i = 0; name && i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (!strcmp(name, NAMES[i])) {
            *out = (enum ea_tool_syntax)i;
            return true;
        }
    return false;
}

ea_status ea_tool_grammar_compile(const ea_grammar_vocab *v, enum ea_tool_syntax syn,
                                  const char *tools_json, size_t len, const char *only,
                                  bool parallel, bool strict, ea_grammar **out,
                                  struct ea_error *err)
{
    *out = NULL;
    json_error_t je;
    json_t *tools = json_loadb(tools_json, len, 0, &je);
    if (!tools)
        return ea_error_set(err, EA_EINVAL, "tools: not JSON (%s)", je.text);
    struct ea_grammar_tools t = {.tools = tools, .only = only};
    struct ea_grammar_options o = {.strict = strict};
    switch (syn) {
    case EA_TOOL_SYNTAX_LLAMA3:
        t.args_key = "parameters";
        break;
    case EA_TOOL_SYNTAX_MISTRAL:
        t.array = true;
        t.max_items = parallel ? EA_TOOL_MAX_PARALLEL : 1;
        break;
    default:
        o.prefix = OPEN_TAG "\n";
        o.suffix = "\n" CLOSE_TAG;
        o.max_repeat = parallel ? EA_TOOL_MAX_PARALLEL : 1;
        o.separator = "\n";
        break;
    }
    ea_status s = ea_grammar_compile_tools(v, &t, &o, out, err);
    json_decref(tools);
    return s;
}

char *ea_tool_system_prompt(const char *tools_json, size_t len)
{
    struct ea_buf b;
    ea__buf_init(&b, len + SYSTEM_PROMPT_TEXT_MAX + len / 2); /* compact re-dumps: never longer */
    json_t *tools = json_loadb(tools_json, len, 0, NULL);
    ea_status s = ea__buf_puts(&b, "# Tools\n\nYou may call one or more functions to assist with the user "
                                   "query.\n\nYou are provided with function signatures within "
                                   "<tools></tools> XML tags:\n<tools>");
    size_t i;
    json_t *tool;
    json_array_foreach(tools, i, tool)
    {
        char *one = json_dumps(tool, JSON_COMPACT);
        if (!s)
            s = one ? ea__buf_printf(&b, "\n%s", one) : EA_ENOMEM;
        free(one);
    }
    if (!s)
        s = ea__buf_puts(&b, "\n</tools>\n\nFor each function call, return a json object with function "
                             "name and arguments within <tool_call></tool_call> XML tags:\n"
                             "<tool_call>\n{\"name\": <function-name>, \"arguments\": "
                             "<args-json-object>}\n</tool_call>");
    json_decref(tools);
    char *r = s ? NULL : ea__buf_steal(&b);
    ea__buf_release(&b);
    return r;
}

/* ---- the parser ------------------------------------------------------------ */

enum pstate {
    P_OUT,   /* tagged: content */
    P_HEAD,  /* tagged: after <tool_call>, matching {"name": "N", "arguments": */
    P_ARGS,  /* tagged: streaming the arguments object */
    P_TAIL,  /* tagged: after the arguments, up to </tool_call> */
    P_IN,    /* tagged: buffering the block to </tool_call> (another shape) */
    P_START, /* whole-answer: before the first non-blank bytes */
    P_WHOLE, /* whole-answer: a call (llama3: its head not yet seen) */
    P_WHOLE_BUF, /* whole-answer: buffering the call to the end */
    P_DROP,  /* whole-answer: after a streamed call */
    /* mistral's array of streamed calls: */
    P_CALL_TAIL, /* after a call's arguments: up to the call object's end */
    P_BETWEEN,   /* after a call: ',' then the next call, or ']' */
    P_ELEM,      /* the next call's head */
    P_ELEM_BUF,  /* the next call in another shape: parsed whole at the end */
    P_PASS,  /* whole-answer: content */
};

/* Longest function name a streamed call's head may carry. */
#define HEAD_NAME_MAX 64

struct ea_tool_parser {
    enum ea_tool_syntax syn;
    enum pstate st;
    struct ea_buf hold;
    int n_calls;    /* complete calls (whole, or streamed to their end) */
    int n_reported; /* calls reported (whole, or begun) */
    /* P_ARGS: the JSON scanner over the arguments: nesting depth, and per
     * level below 64 whether it is an array (bit set) or an object */
    uint32_t depth;
    uint64_t arrays;
    bool in_str, esc, bad;
    bool in_array; /* mistral: the streamed call is an element of the array */
};

ea_status ea_tool_parser_create(enum ea_tool_syntax syn, ea_tool_parser **out, struct ea_error *err)
{
    ea_tool_parser *p = ea_calloc(1, sizeof *p);
    if (!p)
        return ea_error_set(err, EA_ENOMEM, "tool parser: out of memory");
    p->syn = syn;
    p->st = syn == EA_TOOL_SYNTAX_LLAMA3 || syn == EA_TOOL_SYNTAX_MISTRAL ? P_START : P_OUT;
    ea__buf_init(&p->hold, EA_TOOL_MAX_CALL_BYTES + sizeof CLOSE_TAG);
    /* the hold always has memory, so an empty one is never a NULL pointer */
    if (ea__buf_reserve(&p->hold, sizeof CLOSE_TAG)) {
        ea_free(p);
        return ea_error_set(err, EA_ENOMEM, "tool parser: out of memory");
    }
    p->hold.data[0] = '\0';
    *out = p;
    return EA_OK;
}

void ea_tool_parser_destroy(ea_tool_parser *p)
{
    if (!p)
        return;
    ea__buf_release(&p->hold);
    ea_free(p);
}

int ea_tool_parser_n_calls(const ea_tool_parser *p) { return p->n_reported; }

static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
            return false;
    return true;
}

static ea_status content(ea_tool_parser *p, const char *s, size_t n, ea_tool_sink sink, void *user,
                         struct ea_error *err)
{
    if (p->n_calls > 0) /* blanks before a call or the end are not content, after calls */
        while (n > 0 && blank(s + n - 1, 1))
            n--;
    if (n == 0)
        return EA_OK;
    struct ea_tool_event ev = {.kind = EA_TOOL_EV_CONTENT, .text = s, .len = n};
    return sink(user, &ev) ? EA_OK : ea_error_set(err, EA_ECANCELLED, "tool parser: stopped");
}

/* One call object {"name": S, "arguments"|"parameters": OBJ or JSON text};
 * false when c is not one. */
static bool call_parts(json_t *c, const char **name, json_t **args_out)
{
    json_t *fn = json_object_get(c, "function"); /* {"function": {...}} as some models write */
    if (json_is_object(fn) && !json_object_get(c, "name"))
        c = fn;
    json_t *nm = json_object_get(c, "name");
    if (!json_is_object(c) || !json_is_string(nm) || json_string_length(nm) == 0)
        return false;
    json_t *a = json_object_get(c, "arguments");
    if (!a)
        a = json_object_get(c, "parameters");
    json_t *parsed = NULL;
    if (json_is_string(a)) {
        parsed = json_loadb(json_string_value(a), json_string_length(a), 0, NULL);
        if (!parsed)
            return false;
        a = parsed;
    }
    if (a && !json_is_object(a)) {
        json_decref(parsed);
        return false;
    }
    *name = json_string_value(nm);
    *args_out = parsed ? parsed : a ? json_incref(a) : json_object();
    return *args_out != NULL;
}

/* Emits the calls of the JSON text s[0..n) (one object, or for an array
 * every element); false (nothing emitted) when it is not calls. */
static bool try_calls(ea_tool_parser *p, const char *s, size_t n, bool array_ok, ea_tool_sink sink,
                      void *user, ea_status *st, struct ea_error *err)
{
    json_t *j = json_loadb(s, n, 0, NULL);
    if (!j)
        return false;
    size_t count = json_is_array(j) ? json_array_size(j) : 1;
    bool ok = count > 0 && (json_is_object(j) || (array_ok && json_is_array(j)));
    for (size_t i = 0; ok && i < count; i++) {
        const char *name;
        json_t *args = NULL;
        ok = call_parts(json_is_array(j) ? json_array_get(j, i) : j, &name, &args);
        json_decref(args);
    }
    for (size_t i = 0; ok && i < count && !*st; i++) {
        const char *name;
        json_t *args = NULL;
        call_parts(json_is_array(j) ? json_array_get(j, i) : j, &name, &args);
        char *a = json_dumps(args, JSON_COMPACT);
        if (!a) {
            *st = ea_error_set(err, EA_ENOMEM, "tool parser: out of memory");
        } else {
            struct ea_tool_event ev = {.kind = EA_TOOL_EV_CALL, .name = name, .arguments = a,
                                       .arguments_len = strlen(a)};
            p->n_calls++;
            p->n_reported++;
            if (!sink(user, &ev))
                *st = ea_error_set(err, EA_ECANCELLED, "tool parser: stopped");
        }
        free(a);
        json_decref(args);
    }
    json_decref(j);
    return ok;
}

/* Drops the first n bytes of the hold. */
static void consume(ea_tool_parser *p, size_t n)
{
    memmove(p->hold.data, p->hold.data + n, p->hold.len - n);
    p->hold.len -= n;
    if (p->hold.data)
        p->hold.data[p->hold.len] = '\0';
}

static const char *find(const char *h, size_t n, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= n; i++)
        if (h[i] == needle[0] && !memcmp(h + i, needle, nl))
            return h + i;
    return NULL;
}

/* Length of the longest tail of h[0..n) that is a proper prefix of tag. */
static size_t partial_tail(const char *h, size_t n, const char *tag)
{
    size_t tl = strlen(tag);
    for (size_t k = tl - 1 < n ? tl - 1 : n; k > 0; k--)
        if (!memcmp(h + n - k, tag, k))
            return k;
    return 0;
}

/* Whether h[0..n) opens a call as {"name": "N", "arguments": { (or
 * "parameters"; blanks anywhere between the tokens): 1 with the name at [*no, *no + *nl) and the
 * arguments' brace at *args, 0 when it may still (more bytes needed), -1
 * when it cannot. */
static int head_match(const char *h, size_t n, size_t *no, size_t *nl, size_t *args)
{
    size_t i = 0;
#define WS()                                                                                     \
    while (i < n && blank(h + i, 1))                                                             \
        i++;                                                                                     \
    if (i == n)                                                                                  \
        return 0
#define LIT(s)                                                                                   \
    for (const char *l_ = (s); *l_; l_++, i++) {                                                 \
        if (i == n)                                                                              \
            return 0;                                                                            \
        if (h[i] != *l_)                                                                         \
            return -1;                                                                           \
    }
    WS();
    LIT("{");
    WS();
    LIT("\"name\"");
    WS();
    LIT(":");
    WS();
    LIT("\"");
    *no = i;
    for (; i < n && h[i] != '"'; i++) {
        char c = h[i];
        if (i - *no >= HEAD_NAME_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.'))
            return -1; /* escapes, odd names: the whole block is parsed instead */
    }
    if (i == n)
        return 0;
    *nl = i - *no;
    if (*nl == 0)
        return -1;
    i++;
    WS();
    LIT(",");
    WS();
    /* "arguments", or "parameters" (Llama 3.x) */
    static const char *const keys[] = {"\"arguments\"", "\"parameters\"", NULL};
    size_t klen = 0;
    bool partial = false;
    for (int k = 0; keys[k] && !klen; k++) {
        size_t kl = strlen(keys[k]), have = n - i < kl ? n - i : kl;
        if (!memcmp(h + i, keys[k], have)) {
            if (have == kl)
                klen = kl;
            else
                partial = true;
        }
    }
    if (!klen)
        return partial ? 0 : -1;
    i += klen;
    WS();
    LIT(":");
    WS();
    if (h[i] != '{')
        return -1;
    *args = i;
    return 1;
#undef WS
#undef LIT
}

static ea_status emit(ea_tool_parser *p, const struct ea_tool_event *ev, ea_tool_sink sink, void *user,
                      struct ea_error *err)
{
    (void)p;
    return sink(user, ev) ? EA_OK : ea_error_set(err, EA_ECANCELLED, "tool parser: stopped");
}

/* P_ARGS: passes on the arguments' bytes in the hold up to the end of the
 * object; true when it ended. */
static bool args_scan(ea_tool_parser *p, size_t *used)
{
    const char *h = p->hold.data;
    size_t n = p->hold.len, i = 0;
    bool done = false;
    for (; i < n && !done; i++) {
        char c = h[i];
        if (p->in_str) {
            if (p->esc)
                p->esc = false;
            else if (c == '\\')
                p->esc = true;
            else if (c == '"')
                p->in_str = false;
        } else if (c == '"') {
            p->in_str = true;
        } else if (c == '{' || c == '[') {
            if (p->depth < 64)
                p->arrays = (p->arrays & ~(1ull << p->depth)) | ((uint64_t)(c == '[') << p->depth);
            p->depth++;
        } else if (c == '}' || c == ']') {
            p->depth--;
            if (p->depth < 64 && ((p->arrays >> p->depth & 1) != (c == ']')))
                p->bad = true; /* a closer that does not match: the text is not JSON */
            done = p->depth == 0 || p->bad;
        }
    }
    *used = i;
    return done;
}

/* P_ARGS: passes on the arguments in the hold; at their end (*done) or at
 * the end of the output, the call ends (cut when the arguments did not
 * close, or closed wrongly; what is left of the hold then goes). */
static ea_status stream_args(ea_tool_parser *p, bool final, ea_tool_sink sink, void *user,
                             struct ea_error *err, bool *done)
{
    ea_status st = EA_OK;
    size_t used = 0;
    *done = args_scan(p, &used);
    if (used) {
        struct ea_tool_event ev = {.kind = EA_TOOL_EV_CALL_ARGS, .arguments = p->hold.data,
                                   .arguments_len = used};
        st = emit(p, &ev, sink, user, err);
        consume(p, used);
    }
    if (!*done && !final)
        return st;
    struct ea_tool_event end = {.kind = EA_TOOL_EV_CALL_END, .cut = !*done || p->bad};
    p->n_calls++;
    if (!st)
        st = emit(p, &end, sink, user, err);
    if (!*done)
        consume(p, p->hold.len);
    return st;
}

/* Opens a streamed call: the head's name, then P_ARGS from the brace at
 * h[at] (consumed up to it). */
static ea_status begin_streamed(ea_tool_parser *p, size_t no, size_t nl, size_t at, ea_tool_sink sink,
                                void *user, struct ea_error *err)
{
    char name[HEAD_NAME_MAX + 1];
    memcpy(name, p->hold.data + no, nl);
    name[nl] = '\0';
    struct ea_tool_event ev = {.kind = EA_TOOL_EV_CALL_BEGIN, .name = name};
    p->n_reported++;
    consume(p, at);
    p->st = P_ARGS;
    p->depth = 0;
    p->arrays = 0;
    p->in_str = p->esc = p->bad = false;
    return emit(p, &ev, sink, user, err);
}

/* Tagged syntaxes: works through the hold as far as it can. */
static ea_status run_tagged(ea_tool_parser *p, bool final, ea_tool_sink sink, void *user,
                            struct ea_error *err)
{
    ea_status st = EA_OK;
    while (!st) {
        char *h = p->hold.data;
        size_t n = p->hold.len;
        if (p->st == P_OUT) {
            const char *t = find(h, n, OPEN_TAG);
            if (t) {
                size_t k = (size_t)(t - h);
                st = content(p, h, k, sink, user, err);
                consume(p, k + strlen(OPEN_TAG));
                p->st = P_HEAD;
                continue;
            }
            size_t keep = partial_tail(h, n, OPEN_TAG);
            if (final && p->n_calls == 0)
                keep = 0; /* the end: a tag cut short after calls is dropped, else content */
            size_t emit_n = n - keep;
            if (!final && p->n_calls > 0) /* trailing blanks after calls wait: dropped */
                while (emit_n > 0 && blank(h + emit_n - 1, 1)) /* before a tag or at the end */
                    emit_n--;
            st = content(p, h, emit_n, sink, user, err);
            consume(p, final ? n : emit_n);
            return st;
        }
        if (p->st == P_HEAD) {
            size_t no = 0, nl = 0, at = 0;
            int m = head_match(h, n, &no, &nl, &at);
            if (m == 0 && !final && n <= EA_TOOL_MAX_CALL_BYTES)
                return EA_OK;
            if (m <= 0) {
                p->st = P_IN; /* another shape: the whole block is parsed */
                continue;
            }
            st = begin_streamed(p, no, nl, at, sink, user, err);
            continue;
        }
        if (p->st == P_ARGS) {
            bool done = false;
            st = stream_args(p, final, sink, user, err, &done);
            if (!done && !final)
                return st;
            p->st = done ? P_TAIL : P_OUT;
            continue;
        }
        if (p->st == P_TAIL) { /* the rest of the block ("}" and blanks) is not content */
            const char *t = find(h, n, CLOSE_TAG);
            if (!t && !final) {
                size_t keep = partial_tail(h, n, CLOSE_TAG);
                consume(p, n - keep);
                return st;
            }
            consume(p, t ? (size_t)(t - h) + strlen(CLOSE_TAG) : n);
            p->st = P_OUT;
            continue;
        }
        /* P_IN */
        const char *t = find(h, n, CLOSE_TAG);
        if (!t && !final && n <= EA_TOOL_MAX_CALL_BYTES)
            return EA_OK; /* wait for the rest of the call */
        size_t k = t ? (size_t)(t - h) : n;
        /* not a call: the block is content, tags and all; but an unterminated
         * block after calls (the output was cut short) is dropped */
        if (!try_calls(p, h, k, false, sink, user, &st, err) && !st && (t || p->n_calls == 0)) {
            st = content(p, OPEN_TAG, strlen(OPEN_TAG), sink, user, err);
            if (!st)
                st = content(p, h, t ? k + strlen(CLOSE_TAG) : n, sink, user, err);
        }
        consume(p, t ? k + strlen(CLOSE_TAG) : n);
        p->st = P_OUT;
    }
    return st;
}

static ea_status run_whole(ea_tool_parser *p, bool final, ea_tool_sink sink, void *user,
                           struct ea_error *err);

/* Mistral's array after a streamed call: the rest of the call object (keys
 * after "arguments" are skipped), then ',' and the next call (streamed when
 * its head is {"name": ..., "arguments": {, else parsed whole at the end),
 * or ']' (what follows is not content). */
static ea_status run_array(ea_tool_parser *p, bool final, ea_tool_sink sink, void *user, struct ea_error *err)
{
    const char *h = p->hold.data;
    size_t n = p->hold.len;
    if (p->st == P_CALL_TAIL) {
        size_t used = 0;
        bool done = args_scan(p, &used);
        consume(p, used);
        if (!done || p->bad) {
            if (p->bad || final) {
                p->st = P_DROP;
                consume(p, p->hold.len);
            }
            return EA_OK;
        }
        p->st = P_BETWEEN;
        return run_array(p, final, sink, user, err);
    }
    if (p->st == P_BETWEEN) {
        size_t i = 0;
        while (i < n && blank(h + i, 1))
            i++;
        if (i == n) {
            consume(p, n);
            return EA_OK;
        }
        p->st = h[i] == ',' ? P_ELEM : P_DROP; /* ']' or anything else: the array is over */
        consume(p, p->st == P_ELEM ? i + 1 : n);
        return p->st == P_ELEM ? run_array(p, final, sink, user, err) : EA_OK;
    }
    if (p->st == P_ELEM) {
        size_t no = 0, nl = 0, at = 0;
        int m = head_match(h, n, &no, &nl, &at);
        if (m == 0 && !final && n <= EA_TOOL_MAX_CALL_BYTES)
            return EA_OK;
        if (m == 1) {
            ea_status st = begin_streamed(p, no, nl, at, sink, user, err);
            return st ? st : run_whole(p, final, sink, user, err);
        }
        p->st = P_ELEM_BUF;
    }
    /* P_ELEM_BUF: the rest of the array, "{...}, ...]", parsed at the end */
    if (!final) {
        if (n > EA_TOOL_MAX_CALL_BYTES) {
            p->st = P_DROP;
            consume(p, n);
        }
        return EA_OK;
    }
    ea_status st = EA_OK;
    char *arr = ea_malloc(n + 2);
    if (!arr)
        return ea_error_set(err, EA_ENOMEM, "tool parser: out of memory");
    arr[0] = '[';
    memcpy(arr + 1, h, n);
    arr[n + 1] = '\0';
    try_calls(p, arr, n + 1, true, sink, user, &st, err); /* calls, or nothing: never content inside the array */
    ea_free(arr);
    consume(p, n);
    p->st = P_DROP;
    return st;
}

/* Whole-answer syntaxes. */
static ea_status run_whole(ea_tool_parser *p, bool final, ea_tool_sink sink, void *user,
                           struct ea_error *err)
{
    char *h = p->hold.data;
    size_t n = p->hold.len;
    if (p->st == P_START) {
        size_t i = 0;
        while (i < n && blank(h + i, 1))
            i++;
        const char *tag = p->syn == EA_TOOL_SYNTAX_LLAMA3 ? PYTHON_TAG : MISTRAL_TAG;
        size_t tl = strlen(tag), rest = n - i;
        if (rest == 0 || (rest < tl && !memcmp(h + i, tag, rest))) {
            if (!final)
                return EA_OK; /* undecided yet */
            p->st = P_PASS;
        } else {
            size_t j = i;
            if (rest >= tl && !memcmp(h + i, tag, tl))
                for (j = i + tl; j < n && blank(h + j, 1); j++)
                    ;
            if (j == n && j > i && !final)
                return EA_OK; /* the tag, then nothing yet */
            char want = p->syn == EA_TOOL_SYNTAX_LLAMA3 ? '{' : '[';
            bool tagged = j > i;
            if (j < n && (h[j] == want || (tagged && (h[j] == '{' || h[j] == '['))))
                p->st = P_WHOLE;
            else if (tagged && j == n)
                p->st = P_WHOLE; /* a bare tag at the end: resolved below */
            else
                p->st = P_PASS;
        }
    }
    if (p->st == P_PASS) {
        ea_status st = content(p, h, n, sink, user, err);
        consume(p, n);
        return st;
    }
    if (p->st == P_DROP) { /* after a streamed call: the rest is not content */
        consume(p, n);
        return EA_OK;
    }
    if (p->st == P_ARGS) {
        bool done = false;
        ea_status st = stream_args(p, final, sink, user, err, &done);
        if (p->in_array && done && !p->bad && !st) { /* the rest of the call object, then the next */
            p->st = P_CALL_TAIL;
            p->depth = 1;
            p->arrays = 0;
            p->in_str = p->esc = false;
            return run_whole(p, final, sink, user, err);
        }
        if (done || final) {
            p->st = P_DROP;
            consume(p, p->hold.len);
        }
        return st;
    }
    if (p->st >= P_CALL_TAIL && p->st <= P_ELEM_BUF)
        return run_array(p, final, sink, user, err);
    if (p->st == P_WHOLE) {
        /* llama3: [<|python_tag|>] {"name": "N", "parameters": {
         * mistral: [[TOOL_CALLS]] [{"name": "N", "arguments": {
         * streamed from there */
        bool mistral = p->syn == EA_TOOL_SYNTAX_MISTRAL;
        const char *tag = mistral ? MISTRAL_TAG : PYTHON_TAG;
        size_t i = 0, no = 0, nl = 0, at = 0;
        while (i < n && blank(h + i, 1))
            i++;
        if (n - i >= strlen(tag) && !memcmp(h + i, tag, strlen(tag)))
            i += strlen(tag);
        while (mistral && i < n && blank(h + i, 1))
            i++;
        int m = -1;
        if (!mistral)
            m = head_match(h + i, n - i, &no, &nl, &at);
        else if (i == n)
            m = 0;
        else if (h[i] == '[') {
            i++;
            m = head_match(h + i, n - i, &no, &nl, &at);
        }
        if (m == 0 && !final && n <= EA_TOOL_MAX_CALL_BYTES)
            return EA_OK;
        if (m == 1) {
            p->in_array = mistral;
            ea_status st = begin_streamed(p, i + no, nl, i + at, sink, user, err);
            return st ? st : run_whole(p, final, sink, user, err);
        }
        p->st = P_WHOLE_BUF; /* another shape: parsed whole at the end */
    }
    if (!final) {
        if (n <= EA_TOOL_MAX_CALL_BYTES)
            return EA_OK;
        p->st = P_PASS; /* too long to be a call */
        return run_whole(p, final, sink, user, err);
    }
    /* the end: the buffered answer is calls or content */
    size_t i = 0;
    while (i < n && blank(h + i, 1))
        i++;
    const char *tag = p->syn == EA_TOOL_SYNTAX_LLAMA3 ? PYTHON_TAG : MISTRAL_TAG;
    if (n - i >= strlen(tag) && !memcmp(h + i, tag, strlen(tag)))
        i += strlen(tag);
    ea_status st = EA_OK;
    if (!try_calls(p, h + i, n - i, true, sink, user, &st, err) && !st)
        st = content(p, h, n, sink, user, err);
    consume(p, n);
    p->st = P_PASS;
    return st;
}

static ea_status run(ea_tool_parser *p, bool final, ea_tool_sink sink, void *user, struct ea_error *err)
{
    if (p->syn == EA_TOOL_SYNTAX_LLAMA3 || p->syn == EA_TOOL_SYNTAX_MISTRAL)
        return run_whole(p, final, sink, user, err);
    return run_tagged(p, final, sink, user, err);
}

ea_status ea_tool_parser_feed(ea_tool_parser *p, const char *text, size_t n, ea_tool_sink sink,
                              void *user, struct ea_error *err)
{
    /* in slices the hold can take: run() drains it below one call's cap in
     * every state (a call that long is content), so the hold only fills up
     * with blanks held after calls, which are dropped */
    ea_status st = EA_OK;
    while (n > 0 && !st) {
        size_t room = p->hold.max > p->hold.len ? p->hold.max - p->hold.len : 0;
        if (room == 0) {
            st = content(p, p->hold.data, p->hold.len, sink, user, err);
            consume(p, p->hold.len);
            continue;
        }
        size_t take = n < room ? n : room;
        if (ea__buf_append(&p->hold, text, take))
            return ea_error_set(err, EA_ENOMEM, "tool parser: out of memory");
        text += take;
        n -= take;
        st = run(p, false, sink, user, err);
    }
    return st;
}

ea_status ea_tool_parser_finish(ea_tool_parser *p, ea_tool_sink sink, void *user, struct ea_error *err)
{
    return run(p, true, sink, user, err);
}
