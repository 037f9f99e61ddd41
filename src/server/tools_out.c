/* tools_out.c - the JSON of tool calls in OpenAI's shapes: the
 * message.tool_calls array of a whole answer, and the delta.tool_calls
 * entries of a stream (the first delta of a call carries index, id, type and
 * function.name with empty arguments; the arguments follow in pieces of at
 * most EA__TOOL_ARGS_PIECE bytes, cut at UTF-8 character boundaries).
 * Does not hold: parsing calls out of model output (src/chat/toolcall.c),
 * the chunk framing (generate.c).
 */
#include <string.h>

#include "server/genq.h"
#include "server/tools_out.h"

ea_status ea__put_tool_calls(struct ea_buf *o, const struct ea__genq_buf *b)
{
    ea_status s = ea__buf_putc(o, '[');
    bool any = false;
    for (int32_t i = 0; i < b->n_calls && !s; i++) {
        const struct ea__genq_call *c = &b->calls[i];
        if (!c->first)
            continue; /* its arguments are gathered below */
        s = ea__buf_printf(o, "%s{\"id\":", any ? "," : "");
        any = true;
        if (!s)
            s = ea__buf_json_str(o, c->id, strlen(c->id));
        if (!s)
            s = ea__buf_puts(o, ",\"type\":\"function\",\"function\":{\"name\":");
        if (!s)
            s = ea__buf_json_str(o, b->call_text.data + c->name_off, c->name_len);
        if (!s)
            s = ea__buf_puts(o, ",\"arguments\":");
        /* the call's arguments: this entry's and its continuations', joined */
        struct ea_buf args;
        ea__buf_init(&args, b->call_text.len + 1);
        for (int32_t k = i; k < b->n_calls && !s; k++)
            if (b->calls[k].index == c->index && b->calls[k].args_len)
                s = ea__buf_append(&args, b->call_text.data + b->calls[k].args_off, b->calls[k].args_len);
        if (!s)
            s = ea__buf_json_str(o, args.data ? args.data : "", args.len);
        ea__buf_release(&args);
        if (!s)
            s = ea__buf_puts(o, "}}");
    }
    if (!s)
        s = ea__buf_putc(o, ']');
    return s;
}

ea_status ea__put_tool_delta_first(struct ea_buf *o, const struct ea__genq_buf *b, int32_t i)
{
    const struct ea__genq_call *c = &b->calls[i];
    ea_status s = ea__buf_printf(o, "{\"index\":%d,\"id\":", c->index);
    if (!s)
        s = ea__buf_json_str(o, c->id, strlen(c->id));
    if (!s)
        s = ea__buf_puts(o, ",\"type\":\"function\",\"function\":{\"name\":");
    if (!s)
        s = ea__buf_json_str(o, b->call_text.data + c->name_off, c->name_len);
    if (!s)
        s = ea__buf_puts(o, ",\"arguments\":\"\"}}");
    return s;
}

size_t ea__tool_args_piece(const struct ea__genq_buf *b, int32_t i, size_t off)
{
    const struct ea__genq_call *c = &b->calls[i];
    size_t left = c->args_len - off;
    if (left <= EA__TOOL_ARGS_PIECE)
        return left;
    const unsigned char *p = (const unsigned char *)b->call_text.data + c->args_off + off;
    size_t n = EA__TOOL_ARGS_PIECE;
    while (n > 1 && (p[n] & 0xC0) == 0x80) /* never cut inside a character */
        n--;
    return n;
}

ea_status ea__put_tool_delta_args(struct ea_buf *o, const struct ea__genq_buf *b, int32_t i,
                                  size_t off, size_t n)
{
    const struct ea__genq_call *c = &b->calls[i];
    ea_status s = ea__buf_printf(o, "{\"index\":%d,\"function\":{\"arguments\":", c->index);
    if (!s)
        s = ea__buf_json_str(o, b->call_text.data + c->args_off + off, n);
    if (!s)
        s = ea__buf_puts(o, "}}");
    return s;
}
