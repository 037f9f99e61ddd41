/* sse.c - the incremental Server-Sent Events parser (sse.h): line splitting
 * over chunk boundaries, the BOM, fields, dispatch and the per-event cap.
 * A line that lies whole inside one chunk is parsed in place; only a line
 * split across chunks is copied into the line buffer. The cap is checked
 * the same way on both paths, so where the input is split never changes
 * what is dispatched or where the parser fails.
 * Does not hold: JSON, HTTP or anything about OpenAI (cloud.c).
 */
#include <string.h>

#include "router/sse.h"

static const unsigned char BOM[3] = {0xEF, 0xBB, 0xBF};
/* A line may exceed the event cap by its field name, colon and space
 * ("event: ", "data: "): a longer one could never hold a valid value. */
#define SSE_LINE_SLACK 16

void ea__sse_init(struct ea__sse *p, size_t max_event, ea__sse_event_fn cb, void *user)
{
    memset(p, 0, sizeof *p);
    p->max_event = max_event ? max_event : EA__SSE_MAX_EVENT;
    ea__buf_init(&p->line, p->max_event + SSE_LINE_SLACK);
    ea__buf_init(&p->data, p->max_event);
    ea__buf_init(&p->event, p->max_event);
    p->cb = cb;
    p->user = user;
}

void ea__sse_release(struct ea__sse *p)
{
    if (!p)
        return;
    ea__buf_release(&p->line);
    ea__buf_release(&p->data);
    ea__buf_release(&p->event);
}

bool ea__sse_partial(const struct ea__sse *p) { return p->line.len > 0 || p->has_data || (p->bom > 0 && p->bom < 3); }

static ea_status fail(struct ea__sse *p, ea_status s, struct ea_error *err, const char *what)
{
    p->failed = s;
    if (s == EA_ETOOBIG)
        return ea_error_set(err, s, "server-sent event: %s over the %zu-byte cap", what, p->max_event);
    if (s == EA_ECANCELLED)
        return ea_error_set(err, s, "server-sent events: stopped by the consumer");
    return ea_error_set(err, s, "server-sent events: out of memory");
}

static ea_status dispatch(struct ea__sse *p, struct ea_error *err)
{
    if (!p->has_data) { /* no data line: nothing to dispatch, the name is dropped */
        ea__buf_reset(&p->event);
        return EA_OK;
    }
    p->data.len--; /* the \n after the last value */
    p->data.data[p->data.len] = '\0';
    const char *name = p->event.len ? p->event.data : "message";
    bool go_on = p->cb(p->user, name, p->data.data, p->data.len);
    p->events++;
    ea__buf_reset(&p->data);
    ea__buf_reset(&p->event);
    p->has_data = false;
    return go_on ? EA_OK : fail(p, EA_ECANCELLED, err, NULL);
}

static bool field_is(const char *f, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(f, name, n) == 0;
}

/* One complete line (without its end). */
static ea_status line(struct ea__sse *p, const char *s, size_t n, struct ea_error *err)
{
    if (n > p->max_event + SSE_LINE_SLACK)
        return fail(p, EA_ETOOBIG, err, "a line");
    if (n == 0)
        return dispatch(p, err);
    if (s[0] == ':')
        return EA_OK; /* a comment (servers send them to keep a connection alive) */
    const char *colon = memchr(s, ':', n);
    size_t fn = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vn = (size_t)(s + n - v);
    if (vn && v[0] == ' ') {
        v++;
        vn--;
    }
    if (field_is(s, fn, "data")) {
        if (p->data.len + vn + 1 + p->event.len > p->max_event)
            return fail(p, EA_ETOOBIG, err, "an event");
        ea_status st = ea__buf_append(&p->data, v, vn);
        if (!st)
            st = ea__buf_putc(&p->data, '\n');
        if (st)
            return fail(p, st, err, "an event");
        p->has_data = true;
    } else if (field_is(s, fn, "event")) {
        if (p->data.len + vn > p->max_event)
            return fail(p, EA_ETOOBIG, err, "an event");
        ea__buf_reset(&p->event);
        const char *nul = memchr(v, '\0', vn); /* a name is a C string: it ends at a NUL */
        ea_status st = ea__buf_append(&p->event, v, nul ? (size_t)(nul - v) : vn);
        if (st)
            return fail(p, st, err, "an event");
    }
    /* id, retry and unknown fields: ignored */
    return EA_OK;
}

/* The index of the first CR or LF in s[0..n), or n. */
static size_t find_eol(const char *s, size_t n)
{
    const char *lf = memchr(s, '\n', n);
    size_t k = lf ? (size_t)(lf - s) : n;
    const char *cr = memchr(s, '\r', k);
    return cr ? (size_t)(cr - s) : k;
}

ea_status ea__sse_feed(struct ea__sse *p, const char *buf, size_t n, struct ea_error *err)
{
    if (p->failed)
        return ea_error_set(err, p->failed, "server-sent events: the parser already failed");
    size_t i = 0;
    /* a byte-order mark at the very start, possibly split across chunks */
    while (p->bom < 3 && i < n) {
        if ((unsigned char)buf[i] == BOM[p->bom]) {
            p->bom++;
            i++;
            continue;
        }
        /* not a BOM: the bytes matched so far are ordinary line content */
        ea_status st = ea__buf_append(&p->line, BOM, p->bom);
        p->bom = 3;
        if (st)
            return fail(p, st, err, "a line");
    }
    while (i < n) {
        if (p->cr) { /* the LF of a CRLF split from its CR */
            p->cr = false;
            if (buf[i] == '\n') {
                i++;
                continue;
            }
        }
        const char *s = buf + i;
        size_t rem = n - i, k = find_eol(s, rem);
        if (k == rem) { /* the line goes on in the next chunk */
            if (p->line.len + rem > p->max_event + SSE_LINE_SLACK)
                return fail(p, EA_ETOOBIG, err, "a line");
            ea_status st = ea__buf_append(&p->line, s, rem);
            if (st)
                return fail(p, st, err, "a line");
            break;
        }
        ea_status st;
        if (p->line.len) {
            if (p->line.len + k > p->max_event + SSE_LINE_SLACK)
                return fail(p, EA_ETOOBIG, err, "a line");
            st = ea__buf_append(&p->line, s, k);
            if (st)
                return fail(p, st, err, "a line");
            st = line(p, p->line.data, p->line.len, err);
            ea__buf_reset(&p->line);
        } else {
            st = line(p, s, k, err);
        }
        if (st)
            return st;
        p->cr = s[k] == '\r';
        i += k + 1;
    }
    return EA_OK;
}
