/* template_text.c - the JavaScript string and number semantics the chat
 * template renders must reproduce: whitespace (\s), trim, UTF-16 lengths and
 * ordering, case mapping, JSON.stringify of strings, Number -> string and
 * parseInt/parseFloat/Number.
 *
 * Does not hold: template values or evaluation. Case mapping covers ASCII,
 * Latin-1, Latin Extended-A, Greek and Cyrillic (no final-sigma rule);
 * anything else is copied unchanged (docs/TEMPLATES.md).
 */
#include "template/template_int.h"
#include "util/utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decodes one character; an invalid byte counts as one U+FFFD of length 1. */
static size_t dec(const char *s, size_t n, uint32_t *cp)
{
    if (n == 0) {
        *cp = 0;
        return 0;
    }
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t l = ea__utf8_decode(s, n, cp);
    if (l == 0) {
        *cp = 0xFFFD;
        return 1;
    }
    return l;
}

static bool js_ws(uint32_t c)
{
    if (c == ' ' || (c >= 0x09 && c <= 0x0D))
        return true;
    if (c < 0xA0)
        return false;
    return c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

size_t tx_ws_at(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80)
        return (c == ' ' || (c >= 0x09 && c <= 0x0D)) ? 1 : 0;
    uint32_t cp;
    size_t l = ea__utf8_decode(s, n, &cp);
    return (l && js_ws(cp)) ? l : 0;
}

size_t tx_ws_before(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = (unsigned char)s[n - 1];
    if (c < 0x80)
        return (c == ' ' || (c >= 0x09 && c <= 0x0D)) ? 1 : 0;
    /* every non-ASCII JS space is 2 or 3 bytes long */
    for (size_t l = 2; l <= 3 && l <= n; l++) {
        uint32_t cp;
        if (ea__utf8_decode(s + n - l, l, &cp) == l && js_ws(cp))
            return l;
    }
    return 0;
}

void tx_trim(const char *s, size_t n, size_t *start, size_t *end, bool left, bool right)
{
    size_t a = 0, b = n, l;
    if (left)
        while (a < b && (l = tx_ws_at(s + a, b - a)) > 0)
            a += l;
    if (right)
        while (b > a && (l = tx_ws_before(s + a, b - a)) > 0)
            b -= l;
    *start = a;
    *end = b;
}

size_t tx_utf16_len(const char *s, size_t n)
{
    size_t units = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            i++;
            units++;
            continue;
        }
        uint32_t cp;
        i += dec(s + i, n - i, &cp);
        units += cp >= 0x10000 ? 2 : 1;
    }
    return units;
}

void tx_utf16_at(const char *s, size_t n, size_t idx, size_t *off, size_t *len, bool *lone)
{
    size_t units = 0;
    *lone = false;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = dec(s + i, n - i, &cp);
        size_t u = cp >= 0x10000 ? 2 : 1;
        if (idx < units + u) {
            *off = i;
            *len = l;
            *lone = u == 2;
            return;
        }
        units += u;
        i += l;
    }
    *off = n;
    *len = 0;
}

/* Next UTF-16 code unit of s (state *pend holds a pending low surrogate). */
static int next_unit(const char *s, size_t n, size_t *i, uint32_t *pend, uint32_t *unit)
{
    if (*pend) {
        *unit = *pend;
        *pend = 0;
        return 1;
    }
    if (*i >= n)
        return 0;
    uint32_t cp;
    *i += dec(s + *i, n - *i, &cp);
    if (cp >= 0x10000) {
        cp -= 0x10000;
        *unit = 0xD800 + (cp >> 10);
        *pend = 0xDC00 + (cp & 0x3FF);
    } else {
        *unit = cp;
    }
    return 1;
}

int tx_cmp_utf16(const char *a, size_t na, const char *b, size_t nb)
{
    size_t i = 0, j = 0;
    uint32_t pa = 0, pb = 0;
    for (;;) {
        uint32_t ua, ub;
        int ha = next_unit(a, na, &i, &pa, &ua), hb = next_unit(b, nb, &j, &pb, &ub);
        if (!ha || !hb)
            return ha - hb;
        if (ua != ub)
            return ua < ub ? -1 : 1;
    }
}

const char *tx_find(const char *hay, size_t hn, const char *needle, size_t nn)
{
    if (nn == 0)
        return hay;
    if (nn > hn)
        return NULL;
    const char *end = hay + (hn - nn) + 1;
    for (const char *p = hay; p < end;) {
        p = memchr(p, needle[0], (size_t)(end - p));
        if (!p)
            return NULL;
        if (memcmp(p, needle, nn) == 0)
            return p;
        p++;
    }
    return NULL;
}

/* Length of the maximal subpart of an ill-formed sequence at s (WHATWG
 * decoder: the prefix that could still have become a valid character). */
static size_t bad_prefix(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!need)
        return 1;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    size_t i = 1;
    for (; i < need && i < n; i++) {
        if (s[i] < lo || s[i] > hi)
            break;
        lo = 0x80;
        hi = 0xBF;
    }
    return i;
}

ea_status tx_sanitize_utf8(const char *s, size_t n, char **out, size_t *out_len)
{
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = (unsigned char)s[i] < 0x80 ? 1 : ea__utf8_decode(s + i, n - i, &cp);
        if (!l) {
            bad++;
            l = bad_prefix((const unsigned char *)s + i, n - i);
        }
        i += l;
    }
    *out = NULL;
    *out_len = n;
    if (!bad)
        return EA_OK;
    char *o = ea_malloc(n + bad * 2 + 1);
    if (!o)
        return EA_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = (unsigned char)s[i] < 0x80 ? 1 : ea__utf8_decode(s + i, n - i, &cp);
        if (l) {
            memcpy(o + k, s + i, l);
            k += l;
        } else {
            l = bad_prefix((const unsigned char *)s + i, n - i);
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
        }
        i += l;
    }
    o[k] = '\0';
    *out = o;
    *out_len = k;
    return EA_OK;
}

/* ---- case mapping -------------------------------------------------------- */

/* Simple one-to-one mappings; special cases handled by the callers. */
static uint32_t to_upper1(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') ? c - 32 : c;
    if (c == 0xB5)
        return 0x39C;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7)
        return c - 32;
    if (c == 0xFF)
        return 0x178;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x131)
            return 'I';
        if (c == 0x17F)
            return 'S';
        if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
            return (c & 1) ? c - 1 : c;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return (c & 1) ? c : c - 1;
        return c;
    }
    if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2)
        return c - 32;
    if (c == 0x3C2)
        return 0x3A3;
    if (c == 0x3AC)
        return 0x386;
    if (c >= 0x3AD && c <= 0x3AF)
        return c - 37;
    if (c == 0x3CC)
        return 0x38C;
    if (c == 0x3CD || c == 0x3CE)
        return c - 63;
    if (c >= 0x430 && c <= 0x44F)
        return c - 32;
    if (c >= 0x450 && c <= 0x45F)
        return c - 80;
    return c;
}

static uint32_t to_lower1(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 32;
    if (c >= 0x100 && c <= 0x17F) {
        if (c == 0x178)
            return 0xFF;
        if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
            return (c & 1) ? c : c + 1;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return (c & 1) ? c + 1 : c;
        return c;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        return c + 32;
    if (c == 0x386)
        return 0x3AC;
    if (c >= 0x388 && c <= 0x38A)
        return c + 37;
    if (c == 0x38C)
        return 0x3CC;
    if (c == 0x38E || c == 0x38F)
        return c + 63;
    if (c >= 0x410 && c <= 0x42F)
        return c + 32;
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    return c;
}

static ea_status put_cp(struct ea_buf *b, uint32_t cp)
{
    char tmp[4];
    size_t l = ea__utf8_encode(cp, tmp);
    if (l == 0)
        return ea__buf_append(b, "\xEF\xBF\xBD", 3);
    return ea__buf_append(b, tmp, l);
}

static ea_status map_case(struct ea_buf *b, const char *s, size_t n, bool upper)
{
    ea_status st = ea__buf_reserve(b, n);
    for (size_t i = 0; i < n && !st;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            char o = (char)c;
            if (upper && c >= 'a' && c <= 'z')
                o = (char)(c - 32);
            else if (!upper && c >= 'A' && c <= 'Z')
                o = (char)(c + 32);
            st = ea__buf_putc(b, o);
            i++;
            continue;
        }
        uint32_t cp;
        size_t l = ea__utf8_decode(s + i, n - i, &cp);
        if (l == 0) { /* keep bytes that are not UTF-8 as they are */
            st = ea__buf_putc(b, (char)c);
            i++;
            continue;
        }
        i += l;
        if (upper && cp == 0xDF)
            st = ea__buf_append(b, "SS", 2);
        else if (!upper && cp == 0x130)
            st = ea__buf_append(b, "i\xCC\x87", 3);
        else
            st = put_cp(b, upper ? to_upper1(cp) : to_lower1(cp));
    }
    return st;
}

ea_status tx_upper(struct ea_buf *b, const char *s, size_t n) { return map_case(b, s, n, true); }
ea_status tx_lower(struct ea_buf *b, const char *s, size_t n) { return map_case(b, s, n, false); }

/* ---- JSON strings ------------------------------------------------------- */

static ea_status put_u(struct ea_buf *b, uint32_t unit) { return ea__buf_printf(b, "\\u%04x", (unsigned)unit); }

ea_status tx_json_str(struct ea_buf *b, const char *s, size_t n, bool ascii)
{
    ea_status st = ea__buf_putc(b, '"');
    size_t run = 0; /* start of the bytes copied as they are */
    for (size_t i = 0; i < n && !st;) {
        unsigned char c = (unsigned char)s[i];
        bool plain = c >= 0x20 && c != '"' && c != '\\' && (c != 0x7F || !ascii) && c < 0x80;
        uint32_t cp = c;
        size_t l = 1;
        if (c >= 0x80) {
            l = ea__utf8_decode(s + i, n - i, &cp);
            plain = l != 0 && !ascii;
            if (l == 0) { /* not UTF-8: Node would have decoded U+FFFD */
                cp = 0xFFFD;
                l = 1;
            }
        }
        if (plain) {
            i += l;
            continue;
        }
        st = ea__buf_append(b, s + run, i - run);
        if (st)
            break;
        switch (c) {
        case '"': st = ea__buf_puts(b, "\\\""); break;
        case '\\': st = ea__buf_puts(b, "\\\\"); break;
        case '\b': st = ea__buf_puts(b, "\\b"); break;
        case '\f': st = ea__buf_puts(b, "\\f"); break;
        case '\n': st = ea__buf_puts(b, "\\n"); break;
        case '\r': st = ea__buf_puts(b, "\\r"); break;
        case '\t': st = ea__buf_puts(b, "\\t"); break;
        default:
            if (c < 0x80) { /* other controls, and DEL in ascii mode */
                st = put_u(b, c);
            } else if (!ascii) { /* an invalid byte outside ascii mode */
                st = ea__buf_append(b, "\xEF\xBF\xBD", 3);
            } else if (cp >= 0x10000) {
                cp -= 0x10000;
                st = put_u(b, 0xD800 + (cp >> 10));
                if (!st)
                    st = put_u(b, 0xDC00 + (cp & 0x3FF));
            } else {
                st = put_u(b, cp);
            }
        }
        i += l;
        run = i;
    }
    if (!st)
        st = ea__buf_append(b, s + run, n - run);
    return st ? st : ea__buf_putc(b, '"');
}

/* ---- numbers -------------------------------------------------------------- */

size_t tx_num(double x, char out[40])
{
    if (isnan(x))
        return (size_t)snprintf(out, 40, "NaN");
    if (isinf(x))
        return (size_t)snprintf(out, 40, x < 0 ? "-Infinity" : "Infinity");
    if (x == 0)
        return (size_t)snprintf(out, 40, "0");
    char *o = out;
    if (x < 0) {
        *o++ = '-';
        x = -x;
    }
    /* Shortest digits that read back as x (what JS prints). */
    char e[40];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, x);
        if (strtod(e, NULL) == x)
            break;
    }
    char digits[24];
    int k = 0;
    const char *q = e;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9')
            digits[k++] = *q;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    int exp10 = atoi(q + 1);
    int nn = exp10 + 1; /* x = 0.d1d2..dk * 10^nn */
    if (k <= nn && nn <= 21) {
        memcpy(o, digits, (size_t)k);
        o += k;
        for (int i = k; i < nn; i++)
            *o++ = '0';
    } else if (0 < nn && nn <= 21) {
        memcpy(o, digits, (size_t)nn);
        o += nn;
        *o++ = '.';
        memcpy(o, digits + nn, (size_t)(k - nn));
        o += k - nn;
    } else if (-6 < nn && nn <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -nn; i++)
            *o++ = '0';
        memcpy(o, digits, (size_t)k);
        o += k;
    } else {
        *o++ = digits[0];
        if (k > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)(k - 1));
            o += k - 1;
        }
        o += snprintf(o, 12, "e%c%d", nn - 1 >= 0 ? '+' : '-', abs(nn - 1));
    }
    *o = '\0';
    return (size_t)(o - out);
}

size_t tx_float(double x, char out[400])
{
    if (x == 0 && signbit(x))
        return (size_t)snprintf(out, 400, "-0.0");
    if (isfinite(x) && fmod(x, 1.0) == 0) {
        if (fabs(x) < 1e21)
            return (size_t)snprintf(out, 400, "%.1f", x);
    }
    return tx_num(x, out);
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    size_t l;
    while (i < n && (l = tx_ws_at(s + i, n - i)) > 0)
        i += l;
    return i;
}

/* Length of the longest StrDecimalLiteral prefix of s (sign excluded). */
static size_t decimal_prefix(const char *s, size_t n)
{
    if (n >= 8 && memcmp(s, "Infinity", 8) == 0)
        return 8;
    size_t i = 0, digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < n && s[i] == '.') {
        size_t j = i + 1, fd = 0;
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++, fd++;
        if (digits || fd) {
            i = j;
            digits += fd;
        }
    }
    if (!digits)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (s[j] == '+' || s[j] == '-'))
            j++;
        size_t ed = 0;
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++, ed++;
        if (ed)
            i = j;
    }
    return i;
}

static double parse_decimal(const char *s, size_t len, bool neg)
{
    if (len == 8 && memcmp(s, "Infinity", 8) == 0)
        return neg ? -INFINITY : INFINITY;
    char tmp[512];
    char *p = len < sizeof tmp ? tmp : malloc(len + 1);
    if (!p)
        return NAN;
    memcpy(p, s, len);
    p[len] = '\0';
    double v = strtod(p, NULL);
    if (p != tmp)
        free(p);
    return neg ? -v : v;
}

double tx_parse_int(const char *s, size_t n)
{
    size_t i = skip_ws(s, n, 0);
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    size_t j = i;
    while (j < n && s[j] >= '0' && s[j] <= '9')
        j++;
    if (j == i)
        return NAN;
    return parse_decimal(s + i, j - i, neg);
}

double tx_parse_float(const char *s, size_t n)
{
    size_t i = skip_ws(s, n, 0);
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    size_t l = decimal_prefix(s + i, n - i);
    if (!l)
        return NAN;
    return parse_decimal(s + i, l, neg);
}

double tx_to_number(const char *s, size_t n)
{
    size_t a, b;
    tx_trim(s, n, &a, &b, true, true);
    if (a == b)
        return 0;
    s += a;
    n = b - a;
    if (n > 2 && s[0] == '0' && strchr("xXoObB", s[1])) {
        int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : 2;
        double v = 0;
        for (size_t i = 2; i < n; i++) {
            int d;
            char c = s[i];
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                return NAN;
            if (d >= base)
                return NAN;
            v = v * base + d;
        }
        return v;
    }
    size_t i = 0;
    bool neg = false;
    if (s[0] == '+' || s[0] == '-')
        neg = s[i++] == '-';
    size_t l = decimal_prefix(s + i, n - i);
    if (!l || i + l != n)
        return NAN;
    return parse_decimal(s + i, l, neg);
}
