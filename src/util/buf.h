/* buf.h - growable byte buffer with a required cap (internal utility).
 *
 * Every buffer has a maximum size fixed at init: appends past it fail with
 * EA_ETOOBIG instead of growing without bound (curl's dynbuf "toobig").
 * Does not hold: string formatting beyond printf-append.
 */
#ifndef EDGEAGENT_UTIL_BUF_H
#define EDGEAGENT_UTIL_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/error.h"

struct ea_buf {
    char *data; /* NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
    size_t max;
    bool toobig; /* an append was refused for the cap: the content is cut */
};

void ea__buf_init(struct ea_buf *b, size_t max);
void ea__buf_release(struct ea_buf *b);
void ea__buf_reset(struct ea_buf *b); /* len = 0, keeps memory */
ea_status ea__buf_reserve(struct ea_buf *b, size_t extra);
ea_status ea__buf_append(struct ea_buf *b, const void *p, size_t n);
ea_status ea__buf_putc(struct ea_buf *b, char c);
ea_status ea__buf_puts(struct ea_buf *b, const char *s);
ea_status ea__buf_printf(struct ea_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
ea_status ea__buf_vprintf(struct ea_buf *b, const char *fmt, va_list ap);
ea_status ea__buf_put_le(struct ea_buf *b, uint64_t v, unsigned nbytes);
/* Hands the data to the caller (free with ea_free) and leaves b empty. */
char *ea__buf_steal(struct ea_buf *b);



/* Appends s[0..n) as a JSON string literal (quotes included). Invalid UTF-8
 * bytes become U+FFFD so the output is always valid JSON. */
ea_status ea__buf_json_str(struct ea_buf *b, const char *s, size_t n);
#endif
