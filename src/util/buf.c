/* buf.c - growable byte buffer with a cap; see buf.h. */
#include "util/buf.h"
#include "util/utf8.h"

#include <stdio.h>
#include <string.h>

void ea__buf_init(struct ea_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
    b->toobig = false;
}

void ea__buf_release(struct ea_buf *b)
{
    ea_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void ea__buf_reset(struct ea_buf *b)
{
    b->len = 0;
    b->toobig = false;
    if (b->data)
        b->data[0] = '\0';
}

ea_status ea__buf_reserve(struct ea_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra) {
        b->toobig = true;
        return EA_ETOOBIG;
    }
    size_t need = b->len + extra + 1; /* room for the NUL */
    if (need <= b->cap)
        return EA_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) /* doubling, without overflowing (the cap is b->max) */
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = ea_realloc(b->data, cap);
    if (!p)
        return EA_ENOMEM;
    b->data = p;
    b->cap = cap;
    return EA_OK;
}

ea_status ea__buf_append(struct ea_buf *b, const void *p, size_t n)
{
    ea_status s = ea__buf_reserve(b, n);
    if (s)
        return s;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return EA_OK;
}

ea_status ea__buf_putc(struct ea_buf *b, char c) { return ea__buf_append(b, &c, 1); }

ea_status ea__buf_puts(struct ea_buf *b, const char *s) { return ea__buf_append(b, s, strlen(s)); }

ea_status ea__buf_vprintf(struct ea_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return EA_EINVAL;
    ea_status s = ea__buf_reserve(b, (size_t)n);
    if (s)
        return s;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return EA_OK;
}

ea_status ea__buf_printf(struct ea_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ea_status s = ea__buf_vprintf(b, fmt, ap);
    va_end(ap);
    return s;
}

ea_status ea__buf_put_le(struct ea_buf *b, uint64_t v, unsigned nbytes)
{
    unsigned char tmp[8];
    for (unsigned i = 0; i < nbytes; i++)
        tmp[i] = (unsigned char)(v >> (8 * i));
    return ea__buf_append(b, tmp, nbytes);
}

char *ea__buf_steal(struct ea_buf *b)
{
    char *p = b->data;
    if (!p)
        p = ea_strdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

ea_status ea__buf_json_str(struct ea_buf *b, const char *s, size_t n)
{
    ea_status st = ea__buf_putc(b, '"');
    for (size_t i = 0; i < n && !st;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            switch (c) {
            case '"': st = ea__buf_append(b, "\\\"", 2); break;
            case '\\': st = ea__buf_append(b, "\\\\", 2); break;
            case '\n': st = ea__buf_append(b, "\\n", 2); break;
            case '\r': st = ea__buf_append(b, "\\r", 2); break;
            case '\t': st = ea__buf_append(b, "\\t", 2); break;
            default:
                if (c < 0x20)
                    st = ea__buf_printf(b, "\\u%04x", c);
                else
                    st = ea__buf_putc(b, (char)c);
            }
            i++;
            continue;
        }
        uint32_t cp;
        size_t len = ea__utf8_decode(s + i, n - i, &cp);
        if (len == 0) {
            st = ea__buf_append(b, "\xEF\xBF\xBD", 3);
            i++;
        } else {
            st = ea__buf_append(b, s + i, len);
            i += len;
        }
    }
    return st ? st : ea__buf_putc(b, '"');
}
