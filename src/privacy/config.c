/* config.c - the `privacy:` section of edgeagent.yaml (a position-tagged
 * tree from the router's reader) checked and applied to a detector:
 *
 *   privacy:
 *     types: [EMAIL, PHONE, EMPLOYEE_ID]   # detectors switched on (default: all)
 *     threshold: 0.5                       # lowest score reported, (0, 1]
 *     names: [Ada Lovelace]                # always PERSON (whole words, any case)
 *     allow: [support@example.com]         # values never reported (any case)
 *     custom:
 *       - name: EMPLOYEE_ID                # [A-Z][A-Z0-9_]*, not a built-in name
 *         pattern: 'EMP-[0-9]{6}'          # PCRE2; or
 *         deny: [Bluebird, Nightjar]       # literal words or phrases
 *         score: 0.9                       # default 1.0
 *         case_sensitive: false            # default: patterns true, deny lists false
 *
 * Every rejection is one line "file:line:column: path: what is wrong" with
 * EA_EFORMAT, as the router's configuration reports (src/router/config.c).
 * Does not hold: YAML parsing (src/router/config_yaml.c), the built-in
 * patterns (builtin.c).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/router.h"
#include "privacy/privacy_int.h"
#include "router/config_check.h"

#define MAX_PATH_TEXT EA__CFG_PATH_MAX
#define SHOW_MAX EA__CFG_SHOW_MAX
#define MAX_LIST 10000          /* names, allow, deny entries in one list */
#define MAX_PHRASE 256          /* bytes of one name, allow or deny entry */
#define MAX_PATTERN 4096        /* bytes of one custom regex */
#define DENY_REGEX_MAX ((size_t)4 << 20)

struct ctx {
    const char *file;
    struct ea_error *err;
    ea_privacy_detector *d;
};

/* messages and typed getters: router/config_check.h */
#define CFG(c) (&(struct ea__cfg){(c)->file, (c)->err})
#define show(s, buf, size) ea__cfg_show(s, buf, size)
#define fail(c, ...) ea__cfg_fail(CFG(c), __VA_ARGS__)
#define is_null(n) ea__cfg_is_null(n)
#define get(map, key) ea__cfg_get(map, key)
#define want(c, ...) ea__cfg_want(CFG(c), __VA_ARGS__)
#define only_keys(c, ...) ea__cfg_only_keys(CFG(c), __VA_ARGS__)
#define get_bool(c, ...) ea__cfg_bool(CFG(c), __VA_ARGS__)

/* A number in (lo, hi] written as plain decimal. */
static ea_status get_score(struct ctx *c, const struct ea_config_node *n, const char *path, float *out)
{
    ea_status s = want(c, n, path, EA_CONFIG_SCALAR, "a number in (0, 1]");
    if (s)
        return s;
    char *end;
    errno = 0;
    double v = strtod(n->scalar, &end);
    if (n->quoted || errno || end == n->scalar || *end || !(v > 0.0 && v <= 1.0)) {
        char b[SHOW_MAX + 8];
        return fail(c, n->pos, path, "expected a number in (0, 1], got '%s'", show(n->scalar, b, sizeof b));
    }
    *out = (float)v;
    return EA_OK;
}

/* A list of non-empty strings of at most MAX_PHRASE bytes (a single string
 * is taken as a list of one). */
static ea_status check_phrases(struct ctx *c, const struct ea_config_node *n, const char *path)
{
    if (n->kind == EA_CONFIG_SCALAR && !is_null(n))
        return check_phrases(c, &(struct ea_config_node){.kind = EA_CONFIG_SEQUENCE, .pos = n->pos,
                                                          .n = 1, .items = (struct ea_config_node *)n},
                             path);
    ea_status s = want(c, n, path, EA_CONFIG_SEQUENCE, "a list of strings");
    if (s)
        return s;
    if (n->n == 0)
        return fail(c, n->pos, path, "empty list");
    if (n->n > MAX_LIST)
        return fail(c, n->pos, path, "%zu entries (at most %d)", n->n, MAX_LIST);
    for (size_t i = 0; i < n->n; i++) {
        char p[MAX_PATH_TEXT];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        const struct ea_config_node *it = &n->items[i];
        if ((s = want(c, it, p, EA_CONFIG_SCALAR, "a string")))
            return s;
        size_t len = strlen(it->scalar);
        if (len > MAX_PHRASE)
            return fail(c, it->pos, p, "%zu bytes (at most %d)", len, MAX_PHRASE);
        bool blank = true;
        for (size_t k = 0; k < len; k++)
            blank = blank && isspace((unsigned char)it->scalar[k]);
        if (blank)
            return fail(c, it->pos, p, "empty entry");
    }
    return EA_OK;
}

static const struct ea_config_node *items_of(const struct ea_config_node *n, size_t *count)
{
    if (n->kind == EA_CONFIG_SCALAR) {
        *count = 1;
        return n;
    }
    *count = n->n;
    return n->items;
}

/* A deny list or the names as one whole-word regex of literals. */
static ea_status add_phrases(struct ctx *c, const struct ea_config_node *list, const char *path,
                             uint32_t type, float score, bool case_sensitive)
{
    size_t n;
    const struct ea_config_node *items = items_of(list, &n);
    const char **phrases = ea_calloc(n, sizeof *phrases);
    if (!phrases)
        return ea_error_set(c->err, EA_ENOMEM, "%s: out of memory", c->file);
    for (size_t i = 0; i < n; i++)
        phrases[i] = items[i].scalar;
    struct ea_buf b;
    ea__buf_init(&b, DENY_REGEX_MAX);
    ea_status s = ea__buf_puts(&b, "(?<![A-Za-z0-9_])");
    if (!s)
        s = ea__privacy_phrases_regex(&b, phrases, n, !case_sensitive);
    if (!s)
        s = ea__buf_puts(&b, "(?![A-Za-z0-9_])");
    ea_free(phrases);
    if (s) {
        ea__buf_release(&b);
        return s == EA_ETOOBIG ? fail(c, list->pos, path, "the list is too long") :
                                 ea_error_set(c->err, s, "%s: out of memory", c->file);
    }
    struct ea__pattern_def def = {type, b.data, EA__SCAN_REGEX, NULL, NULL, NULL, 0, 0, score, NULL, NULL, NULL, 0, 0, 0, NULL};
    struct ea_error e = {0};
    s = ea__privacy_add_pattern(c->d, &def, 0, &e);
    ea__buf_release(&b);
    if (s)
        return s == EA_ENOMEM ? ea_error_set(c->err, s, "%s: out of memory", c->file)
                              : fail(c, list->pos, path, "%s", e.msg);
    return EA_OK;
}

static bool valid_type_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > EA_PRIVACY_MAX_TYPE_NAME || !(s[0] >= 'A' && s[0] <= 'Z'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static ea_status custom_entry(struct ctx *c, const struct ea_config_node *n, size_t idx)
{
    static const char *const keys[] = {"name", "pattern", "deny", "score", "case_sensitive", NULL};
    char path[MAX_PATH_TEXT], p[MAX_PATH_TEXT], b[SHOW_MAX + 8];
    snprintf(path, sizeof path, "privacy.custom[%zu]", idx);
    ea_status s = want(c, n, path, EA_CONFIG_MAPPING, "a mapping (name, pattern or deny, score)");
    if (s || (s = only_keys(c, n, path, keys)))
        return s;
    const struct ea_config_node *name = get(n, "name"), *pat = get(n, "pattern"), *deny = get(n, "deny"),
                                *score = get(n, "score"), *cs = get(n, "case_sensitive");
    snprintf(p, sizeof p, "%s.name", path);
    if (!name)
        return fail(c, n->pos, p, "missing (the type name, e.g. EMPLOYEE_ID)");
    if ((s = want(c, name, p, EA_CONFIG_SCALAR, "a type name")))
        return s;
    if (!valid_type_name(name->scalar))
        return fail(c, name->pos, p, "'%s' is not a type name ([A-Z][A-Z0-9_]*, at most %d bytes)",
                    show(name->scalar, b, sizeof b), EA_PRIVACY_MAX_TYPE_NAME);
    uint32_t t;
    if (ea_privacy_type_find(c->d, name->scalar, &t))
        return fail(c, name->pos, p, "'%s' is already a type%s", name->scalar,
                    t < EA_PII_BUILTIN_COUNT ? " (built-in)" : "");
    if (c->d->n_types == EA_PRIVACY_MAX_TYPES)
        return fail(c, name->pos, p, "too many types (at most %d)", EA_PRIVACY_MAX_TYPES);
    if (!!pat == !!deny)
        return fail(c, n->pos, path, "needs exactly one of pattern and deny");
    float sc = 1.0f;
    bool case_sensitive = pat != NULL;
    snprintf(p, sizeof p, "%s.score", path);
    if (score && (s = get_score(c, score, p, &sc)))
        return s;
    snprintf(p, sizeof p, "%s.case_sensitive", path);
    if (cs && (s = get_bool(c, cs, p, &case_sensitive)))
        return s;
    t = c->d->n_types;
    snprintf(c->d->names[t], sizeof c->d->names[t], "%s", name->scalar);
    c->d->enabled[t] = true;
    c->d->n_types++;
    if (deny) {
        snprintf(p, sizeof p, "%s.deny", path);
        if ((s = check_phrases(c, deny, p)))
            return s;
        return add_phrases(c, deny, p, t, sc, case_sensitive);
    }
    snprintf(p, sizeof p, "%s.pattern", path);
    if ((s = want(c, pat, p, EA_CONFIG_SCALAR, "a regular expression")))
        return s;
    if (strlen(pat->scalar) > MAX_PATTERN)
        return fail(c, pat->pos, p, "%zu bytes (at most %d)", strlen(pat->scalar), MAX_PATTERN);
    struct ea__pattern_def def = {t, pat->scalar, EA__SCAN_REGEX, NULL, NULL, NULL, 0, 0, sc, NULL, NULL, NULL, 0, 0, 0, NULL};
    struct ea_error e = {0};
    if ((s = ea__privacy_add_pattern(c->d, &def, case_sensitive ? 0 : PCRE2_CASELESS, &e)))
        return s == EA_ENOMEM ? ea_error_set(c->err, s, "%s: out of memory", c->file)
                              : fail(c, pat->pos, p, "bad regular expression: %s", e.msg);
    /* a pattern that matches the empty string would report nothing useful and
     * loop at every byte: refuse it */
    size_t minlen = 0;
    pcre2_pattern_info(c->d->pats[c->d->n_pats - 1].re, PCRE2_INFO_MINLENGTH, &minlen);
    if (minlen == 0) {
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        int rc = md ? pcre2_match(c->d->pats[c->d->n_pats - 1].re, (PCRE2_SPTR) "", 0, 0, 0, md, NULL) : -1;
        pcre2_match_data_free(md);
        if (rc >= 0)
            return fail(c, pat->pos, p, "the pattern matches the empty text");
    }
    return EA_OK;
}

ea_status ea__privacy_config_apply(ea_privacy_detector *d, const struct ea_config_node *root,
                                   const char *file, struct ea_error *err)
{
    static const char *const keys[] = {"types", "threshold", "names", "allow", "custom", NULL};
    struct ctx c = {file, err, d};
    if (is_null(root))
        return EA_OK; /* `privacy:` with nothing under it: the defaults */
    ea_status s = want(&c, root, "privacy", EA_CONFIG_MAPPING,
                       "a mapping (types, threshold, names, allow, custom)");
    if (s || (s = only_keys(&c, root, "privacy", keys)))
        return s;
    const struct ea_config_node *v;
    if ((v = get(root, "threshold")) && (s = get_score(&c, v, "privacy.threshold", &d->threshold)))
        return s;
    if ((v = get(root, "custom"))) {
        if ((s = want(&c, v, "privacy.custom", EA_CONFIG_SEQUENCE, "a list of custom detectors")))
            return s;
        for (size_t i = 0; i < v->n; i++)
            if ((s = custom_entry(&c, &v->items[i], i)))
                return s;
    }
    if ((v = get(root, "names"))) {
        if ((s = check_phrases(&c, v, "privacy.names")) ||
            (s = add_phrases(&c, v, "privacy.names", EA_PII_PERSON, 1.0f, false)))
            return s;
    }
    if ((v = get(root, "allow"))) {
        if ((s = check_phrases(&c, v, "privacy.allow")))
            return s;
        size_t n;
        const struct ea_config_node *items = items_of(v, &n);
        if (!(d->allow = ea_calloc(n, sizeof *d->allow)))
            return ea_error_set(err, EA_ENOMEM, "%s: out of memory", file);
        for (size_t i = 0; i < n; i++, d->n_allow++)
            if (!(d->allow[i] = ea_strdup(items[i].scalar)))
                return ea_error_set(err, EA_ENOMEM, "%s: out of memory", file);
    }
    if ((v = get(root, "types"))) { /* after custom: it may name custom types */
        if ((s = check_phrases(&c, v, "privacy.types")))
            return s;
        size_t n;
        const struct ea_config_node *items = items_of(v, &n);
        bool on[EA_PRIVACY_MAX_TYPES] = {0};
        for (size_t i = 0; i < n; i++) {
            uint32_t t;
            if (!ea_privacy_type_find(d, items[i].scalar, &t)) {
                char p[MAX_PATH_TEXT], b[SHOW_MAX + 8];
                snprintf(p, sizeof p, "privacy.types[%zu]", i);
                return fail(&c, items[i].pos, p, "unknown type '%s' (built-in: EMAIL, PHONE, "
                            "CREDIT_CARD, IBAN, US_SSN, IP_ADDRESS, MAC_ADDRESS, DATE_OF_BIRTH, "
                            "URL_CREDENTIALS, SECRET, PERSON; or a custom name)",
                            show(items[i].scalar, b, sizeof b));
            }
            on[t] = true;
        }
        memcpy(d->enabled, on, sizeof on);
    }
    return EA_OK;
}
