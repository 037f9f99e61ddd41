/* config_check.c - the configuration tree's checks and typed getters
 * (config_check.h), shared by every section's reader.
 * Does not hold: YAML syntax (config_yaml.c), any section's keys.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/config_check.h"

/* s cut to EA__CFG_SHOW_MAX bytes with control bytes as '?', into buf. */
const char *ea__cfg_show(const char *s, char *buf, size_t size)
{
    size_t o = 0, n = strlen(s);
    for (size_t i = 0; i < n && i < EA__CFG_SHOW_MAX && o + 1 < size; i++)
        buf[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7F ? '?' : s[i];
    if (n > EA__CFG_SHOW_MAX && o + 4 < size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

ea_status ea__cfg_fail(const struct ea__cfg *c, struct ea_config_pos p, const char *path, const char *fmt, ...)
{
    char what[EA_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return ea_error_set(c->err, EA_EFORMAT, "%s:%u:%u: %s%s%s", c->file, (unsigned)p.line,
                        (unsigned)p.column, path, *path ? ": " : "", what);
}

ea_status ea__cfg_oom(const struct ea__cfg *c) { return ea_error_set(c->err, EA_ENOMEM, "%s: out of memory", c->file); }

/* "a.b" or "b" when the parent path is empty. */
void ea__cfg_join(char *out, const char *parent, const char *key)
{
    char k[EA__CFG_SHOW_MAX + 8];
    snprintf(out, EA__CFG_PATH_MAX, "%s%s%s", parent, *parent ? "." : "", ea__cfg_show(key, k, sizeof k));
}
void ea__cfg_join_index(char *out, const char *parent, size_t i)
{
    snprintf(out, EA__CFG_PATH_MAX, "%s[%zu]", parent, i);
}

static const char *kind_text(const struct ea_config_node *n)
{
    if (n->kind == EA_CONFIG_MAPPING)
        return "a mapping";
    if (n->kind == EA_CONFIG_SEQUENCE)
        return "a list";
    return "a value";
}

/* A plain empty, ~ or null scalar: YAML's null. */
bool ea__cfg_is_null(const struct ea_config_node *n)
{
    return n->kind == EA_CONFIG_SCALAR && !n->quoted &&
           (!n->scalar[0] || !strcmp(n->scalar, "~") || !strcmp(n->scalar, "null") ||
            !strcmp(n->scalar, "Null") || !strcmp(n->scalar, "NULL"));
}

/* ---- typed getters ----------------------------------------------------- */

const struct ea_config_node *ea__cfg_get(const struct ea_config_node *map, const char *key)
{
    if (map->kind != EA_CONFIG_MAPPING || !map->keys)
        return NULL; /* a list or a value has no keys (fuzz_config found a caller passing one) */
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i].scalar, key))
            return &map->items[i];
    return NULL;
}

ea_status ea__cfg_want(const struct ea__cfg *c, const struct ea_config_node *n, const char *path,
                      enum ea_config_node_kind kind, const char *what)
{
    if (n->kind == kind && !(kind == EA_CONFIG_SCALAR && ea__cfg_is_null(n)))
        return EA_OK;
    if (ea__cfg_is_null(n))
        return ea__cfg_fail(c, n->pos, path, "missing value (expected %s)", what);
    return ea__cfg_fail(c, n->pos, path, "expected %s, got %s", what, kind_text(n));
}

/* Rejects keys of map that are not in allowed (NULL-terminated). */
ea_status ea__cfg_only_keys(const struct ea__cfg *c, const struct ea_config_node *map, const char *path,
                           const char *const *allowed)
{
    for (size_t i = 0; i < map->n; i++) {
        const char *k = map->keys[i].scalar;
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = !strcmp(*a, k);
        if (ok)
            continue;
        char p[EA__CFG_PATH_MAX], list[400] = "";
        ea__cfg_join(p, path, k);
        size_t o = 0;
        for (const char *const *a = allowed; *a && o < sizeof list; a++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", a == allowed ? "" : ", ", *a);
        return ea__cfg_fail(c, map->keys[i].pos, p, "unknown key (expected one of: %s)", list);
    }
    return EA_OK;
}

ea_status ea__cfg_string(const struct ea__cfg *c, const struct ea_config_node *n, const char *path, char **out)
{
    ea_status s = ea__cfg_want(c, n, path, EA_CONFIG_SCALAR, "a string");
    if (s)
        return s;
    ea_free(*out);
    if (!(*out = ea_strdup(n->scalar)))
        return ea__cfg_oom(c);
    return EA_OK;
}

ea_status ea__cfg_bool(const struct ea__cfg *c, const struct ea_config_node *n, const char *path, bool *out)
{
    ea_status s = ea__cfg_want(c, n, path, EA_CONFIG_SCALAR, "true or false");
    if (s)
        return s;
    const char *v = n->scalar;
    if (!n->quoted && (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))) {
        *out = true;
        return EA_OK;
    }
    if (!n->quoted && (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))) {
        *out = false;
        return EA_OK;
    }
    char b[EA__CFG_SHOW_MAX + 8];
    return ea__cfg_fail(c, n->pos, path, "'%s' is not true or false%s", ea__cfg_show(v, b, sizeof b),
                n->quoted ? " (write it without quotes)" : "");
}

ea_status ea__cfg_u64(const struct ea__cfg *c, const struct ea_config_node *n, const char *path,
                         uint64_t min, uint64_t max, uint64_t *out)
{
    ea_status s = ea__cfg_want(c, n, path, EA_CONFIG_SCALAR, "a whole number");
    if (s)
        return s;
    const char *v = n->scalar;
    char b[EA__CFG_SHOW_MAX + 8];
    bool digits = v[0] && !n->quoted && strspn(v, "0123456789") == strlen(v);
    errno = 0;
    unsigned long long u = digits ? strtoull(v, NULL, 10) : 0;
    if (!digits)
        return ea__cfg_fail(c, n->pos, path, "'%s' is not a whole number", ea__cfg_show(v, b, sizeof b));
    if (errno || u < min || u > max)
        return ea__cfg_fail(c, n->pos, path, "%s is out of range (%" PRIu64 "..%" PRIu64 ")",
                    ea__cfg_show(v, b, sizeof b), min, max);
    *out = u;
    return EA_OK;
}

ea_status ea__cfg_u32(const struct ea__cfg *c, const struct ea_config_node *n, const char *path,
                         uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t u;
    ea_status s = ea__cfg_u64(c, n, path, min, max, &u);
    if (!s)
        *out = (uint32_t)u;
    return s;
}

ea_status ea__cfg_number(const struct ea__cfg *c, const struct ea_config_node *n, const char *path,
                            double max, double *out)
{
    ea_status s = ea__cfg_want(c, n, path, EA_CONFIG_SCALAR, "a number");
    if (s)
        return s;
    const char *v = n->scalar;
    char b[EA__CFG_SHOW_MAX + 8], *end;
    /* decimal only: strtod would also take hex, inf and nan */
    bool chars = v[0] && !n->quoted && strspn(v, "0123456789.eE+-") == strlen(v);
    errno = 0;
    double d = chars ? strtod(v, &end) : 0;
    if (!chars || *end || errno || !isfinite(d))
        return ea__cfg_fail(c, n->pos, path, "'%s' is not a number", ea__cfg_show(v, b, sizeof b));
    if (!(d >= 0 && d <= max))
        return ea__cfg_fail(c, n->pos, path, "%s is out of range (0..%g)", ea__cfg_show(v, b, sizeof b), max);
    *out = d;
    return EA_OK;
}

ea_status ea__cfg_enum(const struct ea__cfg *c, const struct ea_config_node *n, const char *path,
                          const char *const *names, size_t count, unsigned *out)
{
    char list[256] = "";
    size_t o = 0;
    for (size_t i = 0; i < count && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", names[i]);
    if (n->kind != EA_CONFIG_SCALAR || ea__cfg_is_null(n))
        return ea__cfg_want(c, n, path, EA_CONFIG_SCALAR, "one of the names");
    for (size_t i = 0; i < count; i++)
        if (!strcmp(n->scalar, names[i])) {
            *out = (unsigned)i;
            return EA_OK;
        }
    char b[EA__CFG_SHOW_MAX + 8];
    return ea__cfg_fail(c, n->pos, path, "'%s' is not one of %s", ea__cfg_show(n->scalar, b, sizeof b), list);
}

