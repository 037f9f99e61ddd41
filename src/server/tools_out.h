/* tools_out.h - JSON of tool calls in OpenAI's response and stream shapes
 * (tools_out.c). Does not hold: the parsing of model output, chunk framing. */
#ifndef EDGEAGENT_SERVER_TOOLS_OUT_H
#define EDGEAGENT_SERVER_TOOLS_OUT_H

#include "server/genq.h"

/* Bytes of arguments per streamed delta (fewer at a character boundary). */
#define EA__TOOL_ARGS_PIECE 48

/* message.tool_calls: [{"id","type":"function","function":{"name","arguments"}}...] */
ea_status ea__put_tool_calls(struct ea_buf *o, const struct ea__genq_buf *b);
/* The first delta of call i: {"index","id","type","function":{"name","arguments":""}} */
ea_status ea__put_tool_delta_first(struct ea_buf *o, const struct ea__genq_buf *b, int32_t i);
/* Bytes of call i's arguments from off that go in the next delta. */
size_t ea__tool_args_piece(const struct ea__genq_buf *b, int32_t i, size_t off);
/* {"index","function":{"arguments": args[off..off+n)}} */
ea_status ea__put_tool_delta_args(struct ea_buf *o, const struct ea__genq_buf *b, int32_t i,
                                  size_t off, size_t n);

#endif
