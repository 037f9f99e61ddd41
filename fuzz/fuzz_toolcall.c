/* fuzz_toolcall.c - libFuzzer target for the tool-call parser
 * (src/chat/toolcall.c). The first byte picks the syntax and where the input
 * is split; the rest is fed in two pieces. Every event must be sane: content
 * no longer than the input, a
 * call's name non-empty and its arguments a JSON object; the same input fed
 * whole gives the same number of calls. Seeds: fuzz/corpus/toolcall/. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/toolcall.h"

struct acc {
    size_t content;
    int calls;
};

static bool sink(void *user, const struct ea_tool_event *ev)
{
    struct acc *a = user;
    if (ev->kind == EA_TOOL_EV_CONTENT) {
        a->content += ev->len;
        return true;
    }
    if (!ev->name || !ev->name[0] || !ev->arguments || strlen(ev->arguments) != ev->arguments_len)
        abort();
    json_t *j = json_loadb(ev->arguments, ev->arguments_len, 0, NULL);
    if (!json_is_object(j))
        abort();
    json_decref(j);
    a->calls++;
    return true;
}

static int run(enum ea_tool_syntax syn, const char *s, size_t n, size_t cut, struct acc *a)
{
    ea_tool_parser *p = NULL;
    if (ea_tool_parser_create(syn, &p, NULL))
        return -1;
    memset(a, 0, sizeof *a);
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
    struct acc a, b;
    if (run(syn, s, n, cut, &a) || run(syn, s, n, 0, &b))
        return 0;
    /* content is input text (a malformed block's tag is given back in place) */
    if (a.content > n)
        abort();
    if (a.calls != b.calls || a.content != b.content)
        abort(); /* where the input was split must not matter */
    return 0;
}
