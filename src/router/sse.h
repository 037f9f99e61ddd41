/* sse.h - an incremental Server-Sent Events parser (the WHATWG "event
 * stream" format) for the cloud client's streamed replies.
 *
 * Fed byte chunks split anywhere (inside a line, a CRLF pair or a UTF-8
 * sequence), it recognises CR, LF and CRLF line ends, skips one byte-order
 * mark at the very start, ignores comment lines (":" first), joins the
 * values of several `data:` lines of one event with "\n", keeps the
 * `event:` name, ignores `id:`, `retry:` and unknown fields, and dispatches
 * an event at each blank line that has data (an event with no data line is
 * dropped, as the standard says). One event (its name and its data) may
 * hold at most max_event bytes, one line that plus a field name's few bytes:
 * past it the parser fails with
 * EA_ETOOBIG and stays failed. Bytes are passed through as they came
 * (decoding UTF-8 is the consumer's business: the cloud client hands data
 * to a JSON parser, which rejects invalid UTF-8).
 * Does not hold: any network or JSON code (cloud.c), nor server code.
 */
#ifndef EDGEAGENT_ROUTER_SSE_H
#define EDGEAGENT_ROUTER_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "edgeagent/error.h"
#include "util/buf.h"

/* The cap the cloud client uses for one event: an OpenAI chunk is a few
 * hundred bytes; a megabyte is far beyond any legitimate one. */
#define EA__SSE_MAX_EVENT ((size_t)1 << 20)

/* One dispatched event. event is the `event:` name ("message" when none was
 * given or it is empty; a name ends at a NUL byte), data the joined `data:`
 * values (NUL-terminated, data_len bytes, may contain NUL bytes); both
 * valid only during the call. Return false to stop: ea__sse_feed then
 * returns EA_ECANCELLED and the parser stays stopped. */
typedef bool (*ea__sse_event_fn)(void *user, const char *event, const char *data, size_t data_len);

struct ea__sse {
    struct ea_buf line;  /* a line not yet ended */
    struct ea_buf data;  /* the event's data so far, each value followed by \n */
    struct ea_buf event; /* the event's name so far */
    size_t max_event;
    unsigned bom;        /* bytes of a leading BOM matched so far; 3 = decided */
    bool cr;             /* the last byte was a CR: a following LF belongs to it */
    bool has_data;       /* a data: line was seen in the current event */
    ea_status failed;    /* EA_OK, or the error that stopped the parser */
    unsigned long long events; /* dispatched so far */
    ea__sse_event_fn cb;
    void *user;
};

/* max_event: the cap of one event (0 = EA__SSE_MAX_EVENT). No allocation
 * until data comes; release with ea__sse_release. */
void ea__sse_init(struct ea__sse *p, size_t max_event, ea__sse_event_fn cb, void *user);
void ea__sse_release(struct ea__sse *p);

/* Parses buf[0..n), dispatching every event it completes. EA_OK;
 * EA_ETOOBIG when an event or a line passed the cap (err says which);
 * EA_ECANCELLED when the callback returned false; EA_ENOMEM. After an
 * error every call returns the same status. */
ea_status ea__sse_feed(struct ea__sse *p, const char *buf, size_t n, struct ea_error *err);

/* Whether the stream ended in the middle of an event (a line not ended, or
 * data lines without their blank line): an event cut short, which the
 * standard drops. */
bool ea__sse_partial(const struct ea__sse *p);

#endif
