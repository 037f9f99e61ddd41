/* fuzz_toolcall.c - libFuzzer target for the tool-call parser
 * (src/chat/toolcall.c). The first byte picks the syntax and where the input
 * is split; the rest is fed in two pieces. Every event must be sane: content
 * no longer than the input and never inside a call, a call's name non-empty,
 * a whole call's arguments a JSON object and a streamed one's a balanced
 * object unless cut, every begun call ended; the same input fed whole gives
 * the same calls, content and last arguments. Seeds: fuzz/corpus/toolcall/. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/toolcall.h"

#define ARGS_MAX (1u << 21) /* more than the parser's call cap + one feed */

struct acc {
    size_t content;
    int calls;
    bool open; /* inside a streamed call */
    char *args;
    size_t n_args;
};

static void check_args(const char *s, size_t n)
{
    json_t *j = json_loadb(s, n, 0, NULL);
    if (!json_is_object(j))
        abort();
    json_decref(j);
}

static bool sink(void *user, const struct ea_tool_event *ev)
{
    struct acc *a = user;
    switch (ev->kind) {
    case EA_TOOL_EV_CONTENT:
        if (a->open)
            abort(); /* content inside a call */
        a->content += ev->len;
        return true;
    case EA_TOOL_EV_CALL:
        if (a->open || !ev->name || !ev->name[0] || !ev->arguments ||
            strlen(ev->arguments) != ev->arguments_len)
            abort();
        check_args(ev->arguments, ev->arguments_len);
        a->calls++;
        return true;
    case EA_TOOL_EV_CALL_BEGIN:
        if (a->open || !ev->name || !ev->name[0])
            abort();
        a->open = true;
        a->n_args = 0;
        a->calls++;
        return true;
    case EA_TOOL_EV_CALL_ARGS:
        if (!a->open || a->n_args + ev->arguments_len > ARGS_MAX)
            abort();
        memcpy(a->args + a->n_args, ev->arguments, ev->arguments_len);
        a->n_args += ev->arguments_len;
        return true;
    case EA_TOOL_EV_CALL_END:
        if (!a->open)
            abort();
        a->open = false;
        /* a streamed call that was not cut holds one balanced object; the
         * tagged scanner does not check what is inside strings, so only the
         * braces are checked: it starts with '{' and ends with '}' */
        if (!ev->cut && (a->n_args < 2 || a->args[0] != '{' || a->args[a->n_args - 1] != '}'))
            abort();
        return true;
    }
    abort();
}

static int run(enum ea_tool_syntax syn, const char *s, size_t n, size_t cut, struct acc *a)
{
    ea_tool_parser *p = NULL;
    if (ea_tool_parser_create(syn, &p, NULL))
        return -1;
    char *buf = a->args;
    memset(a, 0, sizeof *a);
    a->args = buf;
    if (ea_tool_parser_feed(p, s, cut, sink, a, NULL) || ea_tool_parser_feed(p, s + cut, n - cut, sink, a, NULL) ||
        ea_tool_parser_finish(p, sink, a, NULL))
        abort(); /* the sink never stops it: no error is possible but out of memory */
    ea_tool_parser_destroy(p);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum ea_tool_syntax syn = (enum ea_tool_syntax)(data[0] % 4);
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    size_t cut = n ? (data[0] / 4) % (n + 1) : 0;
    static char *abuf, *bbuf;
    if (!abuf && (!(abuf = malloc(ARGS_MAX)) || !(bbuf = malloc(ARGS_MAX))))
        abort();
    struct acc a = {.args = abuf}, b = {.args = bbuf};
    if (run(syn, s, n, cut, &a) || run(syn, s, n, 0, &b))
        return 0;
    if (a.open || b.open)
        abort(); /* every begun call ends */
    if (a.n_args != b.n_args || (a.n_args && memcmp(a.args, b.args, a.n_args)))
        abort(); /* the last call's arguments do not depend on the split */
    /* content is input text (a malformed block's tag is given back in place) */
    if (a.content > n)
        abort();
    if (a.calls != b.calls || a.content != b.content)
        abort(); /* where the input was split must not matter */
    return 0;
}
