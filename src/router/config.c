/* config.c - the router's YAML configuration: the tree from config_yaml.c
 * checked and turned into struct ea_router_config (router.h).
 *
 * Every rejection is one line "file:line:column: path: what is wrong",
 * pointing at the bad value (at the key for an unknown or misplaced key, at
 * the list item for a missing one). Values echoed in messages are cut and
 * cleaned; values that may be secrets (api_key_env, header values) are never
 * echoed. The library reads no environment: api_key_env stays a name.
 * Does not hold: YAML syntax (config_yaml.c), the meaning of the privacy and
 * ledger sections (carried as trees for their modules).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/config_check.h"
#include "router/router_int.h"

/* Bounds of numeric values: far past any real deployment, low enough that
 * sums and products of them stay exact. */
#define MAX_TIMEOUT_MS 86400000u        /* one day */
#define MAX_LATENCY_MS MAX_TIMEOUT_MS
#define MAX_BREAKER_FAILURES 1000000u
#define MAX_RETRIES 5u /* a request makes at most 8 attempts in all anyway */
#define MAX_CONCURRENT 65536u
#define MAX_VOLUME_PER_DAY 1000000000000ull
#define MAX_WEIGHT 1000
#define MAX_PRICE_PER_MTOK 1e6
#define MAX_URL 2048
#define MAX_ENV_NAME 128
#define MAX_HEADERS 64
#define MAX_HEADER_VALUE 4096
#define MAX_SERVER_KEY 64
#define MAX_PATH_TEXT EA__CFG_PATH_MAX
#define SHOW_MAX EA__CFG_SHOW_MAX

/* Defaults of an upstream's timeouts (docs/ROUTING.md); ones not given are
 * also capped at total_ms so that setting total_ms alone stays coherent. */
#define DEFAULT_CONNECT_MS 2000u
#define DEFAULT_FIRST_TOKEN_MS 10000u
#define DEFAULT_IDLE_MS 30000u
#define DEFAULT_TOTAL_MS 120000u

struct ctx {
    const char *file;
    struct ea_error *err;
    struct ea_router_config *cfg;
};

/* ---- names ------------------------------------------------------------- */

static const char *const kind_names[] = {"local", "openai"};
static const char *const tier_names[] = {"device", "edge-node", "cloud"};
static const char *const mode_names[] = {"auto", "edge_only", "prefer_edge",
                                         "prefer_cloud", "cloud_only", "hybrid", "cascade"};
static const char *const privacy_names[] = {"local_only", "redact", "allow"};
static const char *const fallback_names[] = {"connect_error", "timeout", "http_429", "http_5xx",
                                             "overloaded", "not_loaded", "context_too_long"};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_at(const char *const *names, size_t n, unsigned i)
{
    return i < n ? names[i] : "?";
}
const char *ea_upstream_kind_name(enum ea_upstream_kind k) { return name_at(kind_names, COUNT(kind_names), k); }
const char *ea_upstream_tier_name(enum ea_upstream_tier t) { return name_at(tier_names, COUNT(tier_names), t); }
const char *ea_task_mode_name(enum ea_task_mode m) { return name_at(mode_names, COUNT(mode_names), m); }
const char *ea_privacy_mode_name(enum ea_privacy_mode p) { return name_at(privacy_names, COUNT(privacy_names), p); }
const char *ea_fallback_trigger_name(enum ea_fallback_trigger t)
{
    for (unsigned i = 0; i < COUNT(fallback_names); i++)
        if (t == (1u << i))
            return fallback_names[i];
    return "?";
}

/* ---- messages ---------------------------------------------------------- */

/* ---- messages and typed getters: config_check.h --------------------------- */

#define CFG(c) (&(struct ea__cfg){(c)->file, (c)->err})
#define show(s, buf, size) ea__cfg_show(s, buf, size)
#define fail(c, ...) ea__cfg_fail(CFG(c), __VA_ARGS__)
#define oom(c) ea__cfg_oom(CFG(c))
#define join(out, parent, key) ea__cfg_join(out, parent, key)
#define join_index(out, parent, i) ea__cfg_join_index(out, parent, i)
#define is_null(n) ea__cfg_is_null(n)
#define get(map, key) ea__cfg_get(map, key)
#define want(c, ...) ea__cfg_want(CFG(c), __VA_ARGS__)
#define only_keys(c, ...) ea__cfg_only_keys(CFG(c), __VA_ARGS__)
#define get_string(c, ...) ea__cfg_string(CFG(c), __VA_ARGS__)
#define get_bool(c, ...) ea__cfg_bool(CFG(c), __VA_ARGS__)
#define get_u64(c, ...) ea__cfg_u64(CFG(c), __VA_ARGS__)
#define get_u32(c, ...) ea__cfg_u32(CFG(c), __VA_ARGS__)
#define get_number(c, ...) ea__cfg_number(CFG(c), __VA_ARGS__)
#define get_enum(c, ...) ea__cfg_enum(CFG(c), __VA_ARGS__)

/* Upstream and task names: they appear in model ids, headers and metrics. */
static ea_status get_name(struct ctx *c, const struct ea_config_node *n, const char *path, char **out)
{
    ea_status s = want(c, n, path, EA_CONFIG_SCALAR, "a name");
    if (s)
        return s;
    const char *v = n->scalar;
    char b[SHOW_MAX + 8];
    size_t len = strlen(v);
    if (len > EA_CONFIG_MAX_NAME ||
        strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != len)
        return fail(c, n->pos, path, "'%s' is not a name (1 to %d letters, digits, '.', '_', '-')",
                    show(v, b, sizeof b), EA_CONFIG_MAX_NAME);
    if (!strcmp(v, "auto") || !strcmp(v, "default"))
        return fail(c, n->pos, path, "'%s' is reserved (requests use it to ask for the default task)", v);
    return get_string(c, n, path, out);
}

/* ---- server ------------------------------------------------------------ */

static ea_status parse_server(struct ctx *c, const struct ea_config_node *n)
{
    ea_status s = want(c, n, "server", EA_CONFIG_MAPPING, "a mapping of serve options");
    if (s)
        return s;
    struct ea_router_config *cfg = c->cfg;
    if (n->n && !(cfg->server = ea_calloc(n->n, sizeof *cfg->server)))
        return oom(c);
    for (size_t i = 0; i < n->n; i++) {
        const struct ea_config_node *k = &n->keys[i], *v = &n->items[i];
        char p[MAX_PATH_TEXT], b[SHOW_MAX + 8];
        join(p, "server", k->scalar);
        size_t len = strlen(k->scalar);
        if (k->scalar[0] == '-')
            return fail(c, k->pos, p, "write the option's long name without dashes");
        if (!len || len > MAX_SERVER_KEY || strspn(k->scalar, "abcdefghijklmnopqrstuvwxyz0123456789-") != len)
            return fail(c, k->pos, p, "'%s' is not a serve option name", show(k->scalar, b, sizeof b));
        if (!strcmp(k->scalar, "config"))
            return fail(c, k->pos, p, "a configuration file cannot name another one");
        struct ea_config_server_option *o = &cfg->server[cfg->n_server];
        if ((s = get_string(c, v, p, &o->value)))
            return s;
        cfg->n_server++;
        if (!(o->key = ea_strdup(k->scalar)))
            return oom(c);
        o->pos = v->pos;
    }
    return EA_OK;
}

/* ---- upstreams --------------------------------------------------------- */

static ea_status parse_url(struct ctx *c, const struct ea_config_node *n, const char *path, char **out)
{
    ea_status s = want(c, n, path, EA_CONFIG_SCALAR, "a URL");
    if (s)
        return s;
    const char *v = n->scalar, *rest;
    char b[SHOW_MAX + 8];
    if (!strncmp(v, "http://", 7))
        rest = v + 7;
    else if (!strncmp(v, "https://", 8))
        rest = v + 8;
    else
        return fail(c, n->pos, path, "'%s' is not an http:// or https:// URL", show(v, b, sizeof b));
    size_t len = strlen(v), host = strcspn(rest, "/?#");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] <= 0x20 || v[i] == 0x7F)
            return fail(c, n->pos, path, "the URL holds a space or control character");
    if (len > MAX_URL)
        return fail(c, n->pos, path, "the URL is longer than %d bytes", MAX_URL);
    if (memchr(rest, '@', host))
        return fail(c, n->pos, path, "credentials do not go in the URL: name an environment "
                                     "variable with api_key_env");
    if (host == 0 || rest[0] == ':')
        return fail(c, n->pos, path, "the URL has no host");
    return get_string(c, n, path, out);
}

static bool is_tchar(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static ea_status parse_headers(struct ctx *c, const struct ea_config_node *n, const char *path,
                               struct ea_upstream_config *u)
{
    static const char *const secret[] = {"authorization", "proxy-authorization", "x-api-key", "api-key"};
    static const char *const owned[] = {"host", "content-length", "content-type",
                                        "transfer-encoding", "connection", "accept"};
    ea_status s = want(c, n, path, EA_CONFIG_MAPPING, "a mapping of header names to values");
    if (s)
        return s;
    if (n->n > MAX_HEADERS)
        return fail(c, n->pos, path, "more than %d headers", MAX_HEADERS);
    if (n->n && !(u->headers = ea_calloc(n->n, sizeof *u->headers)))
        return oom(c);
    for (size_t i = 0; i < n->n; i++) {
        const struct ea_config_node *k = &n->keys[i], *v = &n->items[i];
        char p[MAX_PATH_TEXT];
        join(p, path, k->scalar);
        size_t len = strlen(k->scalar);
        bool token = len > 0 && len <= EA_CONFIG_MAX_NAME;
        for (size_t j = 0; token && j < len; j++)
            token = is_tchar((unsigned char)k->scalar[j]);
        if (!token)
            return fail(c, k->pos, p, "not an HTTP header name");
        for (size_t j = 0; j < COUNT(secret); j++)
            if (!strcasecmp(k->scalar, secret[j]))
                return fail(c, k->pos, p, "keys are never read from this file: put the key in an "
                                          "environment variable and name it with api_key_env");
        for (size_t j = 0; j < COUNT(owned); j++)
            if (!strcasecmp(k->scalar, owned[j]))
                return fail(c, k->pos, p, "this header is set by the client itself");
        for (size_t j = 0; j < i; j++)
            if (!strcasecmp(k->scalar, n->keys[j].scalar))
                return fail(c, k->pos, p, "the header is already given on line %u",
                            (unsigned)n->keys[j].pos.line);
        if ((s = want(c, v, p, EA_CONFIG_SCALAR, "a header value")))
            return s;
        /* the value is never echoed: headers are where secrets tend to hide */
        size_t vl = strlen(v->scalar);
        if (vl > MAX_HEADER_VALUE)
            return fail(c, v->pos, p, "the value is longer than %d bytes", MAX_HEADER_VALUE);
        for (size_t j = 0; j < vl; j++) {
            unsigned char ch = (unsigned char)v->scalar[j];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7F)
                return fail(c, v->pos, p, "the value holds a control character");
        }
        struct ea_config_header *h = &u->headers[u->n_headers++];
        if (!(h->name = ea_strdup(k->scalar)) || !(h->value = ea_strdup(v->scalar)))
            return oom(c);
    }
    return EA_OK;
}

static ea_status parse_fallback(struct ctx *c, const struct ea_config_node *n, const char *path,
                                uint32_t *out)
{
    ea_status s = want(c, n, path, EA_CONFIG_SEQUENCE, "a list of triggers");
    if (s)
        return s;
    uint32_t set = 0;
    for (size_t i = 0; i < n->n; i++) {
        char p[MAX_PATH_TEXT];
        join_index(p, path, i);
        unsigned t = 0;
        if ((s = get_enum(c, &n->items[i], p, fallback_names, COUNT(fallback_names), &t)))
            return s;
        if (set & (1u << t))
            return fail(c, n->items[i].pos, p, "'%s' is listed twice", fallback_names[t]);
        set |= 1u << t;
    }
    *out = set;
    return EA_OK;
}

static ea_status parse_timeouts(struct ctx *c, const struct ea_config_node *n, const char *path,
                                struct ea_upstream_timeouts *t)
{
    static const char *const keys[] = {"connect_ms", "first_token_ms", "idle_ms", "total_ms", NULL};
    ea_status s = want(c, n, path, EA_CONFIG_MAPPING, "a mapping of timeouts");
    if (!s)
        s = only_keys(c, n, path, keys);
    if (s)
        return s;
    uint32_t *field[] = {&t->connect_ms, &t->first_token_ms, &t->idle_ms, &t->total_ms};
    const struct ea_config_node *given[4];
    for (int i = 0; i < 4; i++) {
        char p[MAX_PATH_TEXT];
        join(p, path, keys[i]);
        if ((given[i] = get(n, keys[i])) && (s = get_u32(c, given[i], p, 1, MAX_TIMEOUT_MS, field[i])))
            return s;
    }
    for (int i = 0; i < 3; i++) {
        if (*field[i] <= t->total_ms)
            continue;
        if (!given[i]) { /* a default above a smaller total: the total bounds it */
            *field[i] = t->total_ms;
            continue;
        }
        char p[MAX_PATH_TEXT];
        join(p, path, keys[i]);
        return fail(c, given[i]->pos, p, "%" PRIu32 " is more than total_ms (%" PRIu32 ")",
                    *field[i], t->total_ms);
    }
    return EA_OK;
}

static ea_status parse_price(struct ctx *c, const struct ea_config_node *n, const char *path,
                             struct ea_upstream_price *pr)
{
    static const char *const keys[] = {"input_per_mtok", "output_per_mtok", NULL};
    ea_status s = want(c, n, path, EA_CONFIG_MAPPING, "a mapping of prices");
    if (!s)
        s = only_keys(c, n, path, keys);
    double *field[] = {&pr->input_per_mtok, &pr->output_per_mtok};
    for (int i = 0; i < 2 && !s; i++) {
        char p[MAX_PATH_TEXT];
        join(p, path, keys[i]);
        const struct ea_config_node *v = get(n, keys[i]);
        if (v)
            s = get_number(c, v, p, MAX_PRICE_PER_MTOK, field[i]);
    }
    return s;
}

static ea_status parse_env_name(struct ctx *c, const struct ea_config_node *n, const char *path,
                                char **out)
{
    ea_status s = want(c, n, path, EA_CONFIG_SCALAR, "the name of an environment variable");
    if (s)
        return s;
    /* never echoed: a key pasted here by mistake must not reach a log */
    const char *v = n->scalar;
    size_t len = strlen(v);
    if (!len || len > MAX_ENV_NAME || isdigit((unsigned char)v[0]) ||
        strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != len)
        return fail(c, n->pos, path, "not an environment variable name (letters, digits, '_'); the "
                                     "key itself never goes in this file");
    return get_string(c, n, path, out);
}

static const char *const upstream_keys[] = {
    "name", "kind", "base_url", "model", "api_key_env", "tier", "price", "timeouts",
    "max_concurrent", "ca_file", "headers", "fallback_on", NULL};

static ea_status parse_upstream(struct ctx *c, const struct ea_config_node *n, size_t idx)
{
    char path[MAX_PATH_TEXT], p[MAX_PATH_TEXT];
    join_index(path, "upstreams", idx);
    ea_status s = want(c, n, path, EA_CONFIG_MAPPING, "a mapping (name, kind, ...)");
    if (s)
        return s;
    struct ea_router_config *cfg = c->cfg;
    struct ea_upstream_config *u = &cfg->upstreams[cfg->n_upstreams++];
    u->pos = n->pos;
    u->fallback_on = EA_FALLBACK_ALL;
    u->timeouts = (struct ea_upstream_timeouts){DEFAULT_CONNECT_MS, DEFAULT_FIRST_TOKEN_MS,
                                                DEFAULT_IDLE_MS, DEFAULT_TOTAL_MS};
    const struct ea_config_node *v;
    if ((v = get(n, "api_key")) || (v = get(n, "key")) || (v = get(n, "api-key"))) {
        join(p, path, "api_key");
        return fail(c, n->keys[v - n->items].pos, p, "keys are never read from this file: put the "
                    "key in an environment variable and name it with api_key_env");
    }
    if ((s = only_keys(c, n, path, upstream_keys)))
        return s;
    /* name and kind first: the other checks depend on them */
    join(p, path, "name");
    if (!(v = get(n, "name")))
        return fail(c, n->pos, path, "missing 'name'");
    if ((s = get_name(c, v, p, &u->name)))
        return s;
    for (size_t i = 0; i + 1 < cfg->n_upstreams; i++)
        if (!strcmp(cfg->upstreams[i].name, u->name))
            return fail(c, v->pos, p, "'%s' is already the name of upstreams[%zu]", u->name, i);
    join(p, path, "kind");
    if (!(v = get(n, "kind")))
        return fail(c, n->pos, path, "missing 'kind' (local or openai)");
    unsigned e = 0;
    if ((s = get_enum(c, v, p, kind_names, COUNT(kind_names), &e)))
        return s;
    u->kind = (enum ea_upstream_kind)e;
    bool local = u->kind == EA_UPSTREAM_LOCAL;
    u->tier = local ? EA_TIER_DEVICE : EA_TIER_CLOUD;
    /* keys that only a remote upstream has */
    static const char *const remote_only[] = {"base_url", "api_key_env", "ca_file", "headers"};
    for (size_t i = 0; local && i < COUNT(remote_only); i++)
        if ((v = get(n, remote_only[i]))) {
            join(p, path, remote_only[i]);
            return fail(c, n->keys[v - n->items].pos, p, "a local upstream runs in this process "
                        "and has no %s (kind openai has)", remote_only[i]);
        }
    join(p, path, "base_url");
    if ((v = get(n, "base_url"))) {
        if ((s = parse_url(c, v, p, &u->base_url)))
            return s;
    } else if (!local) {
        return fail(c, n->pos, path, "missing 'base_url' (kind openai needs the endpoint, e.g. "
                                     "https://api.openai.com/v1)");
    }
    join(p, path, "model");
    if ((v = get(n, "model"))) {
        if ((s = get_string(c, v, p, &u->model)))
            return s;
    } else if (!local) {
        return fail(c, n->pos, path, "missing 'model' (the model name the endpoint serves)");
    }
    join(p, path, "api_key_env");
    if ((v = get(n, "api_key_env")) && (s = parse_env_name(c, v, p, &u->api_key_env)))
        return s;
    join(p, path, "tier");
    if ((v = get(n, "tier"))) {
        if ((s = get_enum(c, v, p, tier_names, COUNT(tier_names), &e)))
            return s;
        u->tier = (enum ea_upstream_tier)e;
        if (local && u->tier != EA_TIER_DEVICE)
            return fail(c, v->pos, p, "a local upstream runs on this device: its tier is device");
    }
    join(p, path, "price");
    if ((v = get(n, "price")) && (s = parse_price(c, v, p, &u->price)))
        return s;
    join(p, path, "timeouts");
    if ((v = get(n, "timeouts")) && (s = parse_timeouts(c, v, p, &u->timeouts)))
        return s;
    join(p, path, "max_concurrent");
    if ((v = get(n, "max_concurrent")) && (s = get_u32(c, v, p, 1, MAX_CONCURRENT, &u->max_concurrent)))
        return s;
    join(p, path, "ca_file");
    if ((v = get(n, "ca_file")) && (s = get_string(c, v, p, &u->ca_file)))
        return s;
    if (u->ca_file && !strncmp(u->base_url, "http://", 7))
        return fail(c, v->pos, p, "ca_file needs an https:// base_url");
    join(p, path, "headers");
    if ((v = get(n, "headers")) && (s = parse_headers(c, v, p, u)))
        return s;
    join(p, path, "fallback_on");
    if ((v = get(n, "fallback_on")) && (s = parse_fallback(c, v, p, &u->fallback_on)))
        return s;
    return EA_OK;
}

static ea_status parse_upstreams(struct ctx *c, const struct ea_config_node *n)
{
    ea_status s = want(c, n, "upstreams", EA_CONFIG_SEQUENCE, "a list of upstreams");
    if (s)
        return s;
    if (n->n > EA_CONFIG_MAX_UPSTREAMS)
        return fail(c, n->pos, "upstreams", "%zu upstreams: at most %d", n->n,
                    EA_CONFIG_MAX_UPSTREAMS);
    if (n->n && !(c->cfg->upstreams = ea_calloc(n->n, sizeof *c->cfg->upstreams)))
        return oom(c);
    for (size_t i = 0; i < n->n; i++)
        if ((s = parse_upstream(c, &n->items[i], i)))
            return s;
    return EA_OK;
}

/* ---- routing ----------------------------------------------------------- */

static ea_status parse_weights(struct ctx *c, const struct ea_config_node *n, struct ea_router_weights *w)
{
    static const char *const keys[] = {"latency_sensitive", "private_data", "high_volume",
                                       "large_model", "volume_threshold", NULL};
    const char *path = "routing.weights";
    ea_status s = want(c, n, path, EA_CONFIG_MAPPING, "a mapping of weights");
    if (!s)
        s = only_keys(c, n, path, keys);
    int32_t *field[] = {&w->latency_sensitive, &w->private_data, &w->high_volume, &w->large_model};
    for (int i = 0; i < 4 && !s; i++) {
        char p[MAX_PATH_TEXT];
        join(p, path, keys[i]);
        const struct ea_config_node *v = get(n, keys[i]);
        uint32_t u;
        if (v && !(s = get_u32(c, v, p, 0, MAX_WEIGHT, &u)))
            *field[i] = (int32_t)u;
    }
    const struct ea_config_node *v = s ? NULL : get(n, "volume_threshold");
    if (!s && v)
        s = get_u64(c, v, "routing.weights.volume_threshold", 0, MAX_VOLUME_PER_DAY, &w->volume_threshold);
    return s;
}

/* routing.breaker {failures, cooldown_ms, max_cooldown_ms}, routing.retries
 * {max, base_ms, max_ms}, routing.hedge_min_ms. */
static ea_status parse_limits(struct ctx *c, const struct ea_config_node *n, struct ea_router_params *p)
{
    static const char *const bkeys[] = {"failures", "cooldown_ms", "max_cooldown_ms", NULL};
    static const char *const rkeys[] = {"max", "base_ms", "max_ms", NULL};
    const struct ea_config_node *v, *b;
    ea_status s;
    if ((b = get(n, "breaker"))) {
        if ((s = want(c, b, "routing.breaker", EA_CONFIG_MAPPING,
                      "a mapping (failures, cooldown_ms, max_cooldown_ms)")) ||
            (s = only_keys(c, b, "routing.breaker", bkeys)))
            return s;
        if ((v = get(b, "failures")) &&
            (s = get_u32(c, v, "routing.breaker.failures", 1, MAX_BREAKER_FAILURES, &p->breaker_failures)))
            return s;
        if ((v = get(b, "cooldown_ms")) &&
            (s = get_u32(c, v, "routing.breaker.cooldown_ms", 1, MAX_TIMEOUT_MS, &p->breaker_cooldown_ms)))
            return s;
        if ((v = get(b, "max_cooldown_ms")) &&
            (s = get_u32(c, v, "routing.breaker.max_cooldown_ms", 1, MAX_TIMEOUT_MS,
                         &p->breaker_cooldown_max_ms)))
            return s;
        if (p->breaker_cooldown_max_ms < p->breaker_cooldown_ms)
            return fail(c, b->pos, "routing.breaker", "max_cooldown_ms (%u) is below cooldown_ms (%u)",
                        (unsigned)p->breaker_cooldown_max_ms, (unsigned)p->breaker_cooldown_ms);
    }
    if ((b = get(n, "retries"))) {
        if ((s = want(c, b, "routing.retries", EA_CONFIG_MAPPING, "a mapping (max, base_ms, max_ms)")) ||
            (s = only_keys(c, b, "routing.retries", rkeys)))
            return s;
        if ((v = get(b, "max")) &&
            (s = get_u32(c, v, "routing.retries.max", 0, MAX_RETRIES, &p->retries)))
            return s;
        if ((v = get(b, "base_ms")) &&
            (s = get_u32(c, v, "routing.retries.base_ms", 0, MAX_TIMEOUT_MS, &p->retry_base_ms)))
            return s;
        if ((v = get(b, "max_ms")) &&
            (s = get_u32(c, v, "routing.retries.max_ms", 0, MAX_TIMEOUT_MS, &p->retry_max_ms)))
            return s;
    }
    if ((v = get(n, "hedge_min_ms")) &&
        (s = get_u32(c, v, "routing.hedge_min_ms", 0, MAX_TIMEOUT_MS, &p->hedge_min_ms)))
        return s;
    return EA_OK;
}

static ea_status parse_routing(struct ctx *c, const struct ea_config_node *n,
                               const struct ea_config_node **default_task)
{
    static const char *const keys[] = {"default_task", "defaults", "weights", "breaker",
                                       "retries", "hedge_min_ms", NULL};
    static const char *const dkeys[] = {"mode", "privacy", "max_latency_ms", NULL};
    struct ea_routing_config *r = &c->cfg->routing;
    ea_status s = want(c, n, "routing", EA_CONFIG_MAPPING,
                       "a mapping (default_task, defaults, weights, breaker, retries, hedge_min_ms)");
    if (!s)
        s = only_keys(c, n, "routing", keys);
    if (s)
        return s;
    const struct ea_config_node *v;
    if ((v = get(n, "default_task"))) {
        if ((s = want(c, v, "routing.default_task", EA_CONFIG_SCALAR, "a task name")))
            return s;
        *default_task = v; /* resolved once the tasks are read */
    }
    if ((v = get(n, "weights")) && (s = parse_weights(c, v, &r->weights)))
        return s;
    if ((s = parse_limits(c, n, &r->params)))
        return s;
    const struct ea_config_node *d = get(n, "defaults");
    if (!d)
        return EA_OK;
    if ((s = want(c, d, "routing.defaults", EA_CONFIG_MAPPING, "a mapping (mode, privacy, max_latency_ms)")) ||
        (s = only_keys(c, d, "routing.defaults", dkeys)))
        return s;
    unsigned e = 0;
    if ((v = get(d, "mode"))) {
        if ((s = get_enum(c, v, "routing.defaults.mode", mode_names, COUNT(mode_names), &e)))
            return s;
        r->default_mode = (enum ea_task_mode)e;
    }
    if ((v = get(d, "privacy"))) {
        if ((s = get_enum(c, v, "routing.defaults.privacy", privacy_names, COUNT(privacy_names), &e)))
            return s;
        r->default_privacy = (enum ea_privacy_mode)e;
    }
    if ((v = get(d, "max_latency_ms")) &&
        (s = get_u32(c, v, "routing.defaults.max_latency_ms", 1, MAX_LATENCY_MS, &r->default_max_latency_ms)))
        return s;
    return EA_OK;
}

/* ---- tasks ------------------------------------------------------------- */

static const char *const task_keys[] = {
    "name", "latency_sensitive", "requires_large_model", "handles_private_data",
    "request_volume_per_day", "max_latency_ms", "mode", "privacy", "local_only_edge_node", "upstreams", NULL};

static bool edge_side(const struct ea_upstream_config *u) { return u->tier != EA_TIER_CLOUD; }

/* Whether the task can reach an upstream that satisfies pred: among its
 * list, or among all upstreams when it has none. */
static bool task_has(const struct ea_router_config *cfg, const struct ea_task_config *t,
                     bool (*pred)(const struct ea_upstream_config *))
{
    size_t n = t->n_upstreams ? t->n_upstreams : cfg->n_upstreams;
    for (size_t i = 0; i < n; i++)
        if (pred(&cfg->upstreams[t->n_upstreams ? t->upstreams[i] : i]))
            return true;
    return false;
}
static bool cloud_side(const struct ea_upstream_config *u) { return u->tier == EA_TIER_CLOUD; }
static bool device_tier(const struct ea_upstream_config *u) { return u->tier == EA_TIER_DEVICE; }
static bool edge_node_tier(const struct ea_upstream_config *u) { return u->tier == EA_TIER_EDGE_NODE; }
static bool remote(const struct ea_upstream_config *u) { return u->kind == EA_UPSTREAM_OPENAI; }

static ea_status parse_task_upstreams(struct ctx *c, const struct ea_config_node *n, const char *path,
                                      struct ea_task_config *t)
{
    ea_status s = want(c, n, path, EA_CONFIG_SEQUENCE, "a list of upstream names");
    if (s)
        return s;
    if (!n->n)
        return fail(c, n->pos, path, "an empty list (leave the key out to let the router pick "
                                     "among all upstreams)");
    if (!(t->upstreams = ea_calloc(n->n, sizeof *t->upstreams)))
        return oom(c);
    const struct ea_router_config *cfg = c->cfg;
    for (size_t i = 0; i < n->n; i++) {
        char p[MAX_PATH_TEXT], b[SHOW_MAX + 8];
        join_index(p, path, i);
        const struct ea_config_node *v = &n->items[i];
        if ((s = want(c, v, p, EA_CONFIG_SCALAR, "an upstream name")))
            return s;
        size_t k = 0;
        while (k < cfg->n_upstreams && strcmp(cfg->upstreams[k].name, v->scalar))
            k++;
        if (k == cfg->n_upstreams)
            return fail(c, v->pos, p, "no upstream is named '%s'", show(v->scalar, b, sizeof b));
        for (size_t j = 0; j < t->n_upstreams; j++)
            if (t->upstreams[j] == k)
                return fail(c, v->pos, p, "'%s' is listed twice", v->scalar);
        t->upstreams[t->n_upstreams++] = k;
    }
    return EA_OK;
}

static ea_status parse_task(struct ctx *c, const struct ea_config_node *n, size_t idx)
{
    char path[MAX_PATH_TEXT], p[MAX_PATH_TEXT];
    join_index(path, "tasks", idx);
    ea_status s = want(c, n, path, EA_CONFIG_MAPPING, "a mapping (name, mode, ...)");
    if (!s)
        s = only_keys(c, n, path, task_keys);
    if (s)
        return s;
    struct ea_router_config *cfg = c->cfg;
    struct ea_task_config *t = &cfg->tasks[cfg->n_tasks++];
    t->pos = n->pos;
    t->mode = cfg->routing.default_mode;
    t->privacy = cfg->routing.default_privacy;
    t->profile.max_latency_ms = cfg->routing.default_max_latency_ms;
    const struct ea_config_node *v;
    join(p, path, "name");
    if (!(v = get(n, "name")))
        return fail(c, n->pos, path, "missing 'name'");
    if ((s = get_name(c, v, p, &t->name)))
        return s;
    for (size_t i = 0; i + 1 < cfg->n_tasks; i++)
        if (!strcmp(cfg->tasks[i].name, t->name))
            return fail(c, v->pos, p, "'%s' is already the name of tasks[%zu]", t->name, i);
    static const char *const flags[] = {"latency_sensitive", "requires_large_model", "handles_private_data",
                                        "local_only_edge_node"};
    bool *flag_field[] = {&t->profile.latency_sensitive, &t->profile.requires_large_model,
                          &t->profile.handles_private_data, &t->local_only_edge_node};
    for (int i = 0; i < 4; i++) {
        join(p, path, flags[i]);
        if ((v = get(n, flags[i])) && (s = get_bool(c, v, p, flag_field[i])))
            return s;
    }
    join(p, path, "request_volume_per_day");
    if ((v = get(n, "request_volume_per_day")) &&
        (s = get_u64(c, v, p, 0, MAX_VOLUME_PER_DAY, &t->profile.request_volume_per_day)))
        return s;
    join(p, path, "max_latency_ms");
    if ((v = get(n, "max_latency_ms")) && (s = get_u32(c, v, p, 1, MAX_LATENCY_MS, &t->profile.max_latency_ms)))
        return s;
    unsigned e = 0;
    join(p, path, "mode");
    const struct ea_config_node *mode = get(n, "mode");
    if (mode) {
        if ((s = get_enum(c, mode, p, mode_names, COUNT(mode_names), &e)))
            return s;
        t->mode = (enum ea_task_mode)e;
    }
    join(p, path, "privacy");
    const struct ea_config_node *priv = get(n, "privacy");
    if (priv) {
        if ((s = get_enum(c, priv, p, privacy_names, COUNT(privacy_names), &e)))
            return s;
        t->privacy = (enum ea_privacy_mode)e;
    }
    join(p, path, "upstreams");
    const struct ea_config_node *ups = get(n, "upstreams");
    if (ups && (s = parse_task_upstreams(c, ups, p, t)))
        return s;
    /* the mode must be servable with what the task may use; with no
     * upstream configured at all, the edge is the local engine */
    const struct ea_config_node *at = mode ? mode : n;
    if (mode)
        join(p, path, "mode");
    else
        snprintf(p, sizeof p, "%s", path);
    const char *where = t->n_upstreams ? "among its upstreams" : "configured";
    bool has_edge = (!t->n_upstreams && !cfg->n_upstreams) || task_has(cfg, t, edge_side);
    if (t->mode == EA_MODE_EDGE_ONLY && !has_edge)
        return fail(c, at->pos, p, "edge_only, but no upstream of tier device or edge-node is %s", where);
    if (t->mode == EA_MODE_CLOUD_ONLY && !task_has(cfg, t, cloud_side))
        return fail(c, at->pos, p, "cloud_only, but no upstream of tier cloud is %s", where);
    if (t->mode == EA_MODE_CASCADE && !has_edge)
        return fail(c, at->pos, p, "cascade, but no upstream of tier device or edge-node is %s", where);
    if (t->mode == EA_MODE_HYBRID && (!has_edge || !task_has(cfg, t, remote)))
        return fail(c, at->pos, p, "hybrid needs an edge upstream and a remote (openai) one %s", where);
    bool has_private = (!t->n_upstreams && !cfg->n_upstreams) || task_has(cfg, t, device_tier) ||
                       (t->local_only_edge_node && task_has(cfg, t, edge_node_tier));
    if (t->privacy == EA_PRIVACY_LOCAL_ONLY && !has_private) {
        join(p, path, "privacy");
        return fail(c, priv ? priv->pos : n->pos, p, "local_only, but no upstream of tier device%s is %s",
                    t->local_only_edge_node ? " or edge-node" : " (edge-node ones need local_only_edge_node: true)",
                    where);
    }
    if (t->privacy == EA_PRIVACY_LOCAL_ONLY && t->mode == EA_MODE_CLOUD_ONLY) {
        join(p, path, "privacy");
        return fail(c, priv ? priv->pos : n->pos, p, "local_only contradicts mode cloud_only");
    }
    return EA_OK;
}

static ea_status parse_tasks(struct ctx *c, const struct ea_config_node *n)
{
    ea_status s = want(c, n, "tasks", EA_CONFIG_SEQUENCE, "a list of tasks");
    if (s)
        return s;
    if (n->n && !(c->cfg->tasks = ea_calloc(n->n, sizeof *c->cfg->tasks)))
        return oom(c);
    for (size_t i = 0; i < n->n; i++)
        if ((s = parse_task(c, &n->items[i], i)))
            return s;
    return EA_OK;
}

/* ---- the whole file ---------------------------------------------------- */

static const char *const section_keys[] = {"server", "upstreams", "tasks", "routing",
                                           "privacy", "ledger", NULL};

static ea_status take_tree(struct ctx *c, struct ea_config_node *n, struct ea_config_node **out)
{
    if (!(*out = ea_malloc(sizeof **out)))
        return oom(c);
    **out = *n;
    memset(n, 0, sizeof *n); /* the tree no longer owns it */
    return EA_OK;
}

ea_status ea_router_config_parse(const char *text, size_t len, const char *file,
                                 struct ea_router_config **out, struct ea_error *err)
{
    *out = NULL;
    if (!file)
        file = "config";
    if (len > EA_CONFIG_MAX_BYTES)
        return ea_error_set(err, EA_ETOOBIG, "%s: larger than %zu bytes", file, EA_CONFIG_MAX_BYTES);
    struct ea_router_config *cfg = ea_calloc(1, sizeof *cfg);
    if (!cfg || !(cfg->file = ea_strdup(file))) {
        ea_free(cfg);
        return ea_error_set(err, EA_ENOMEM, "%s: out of memory", file);
    }
    ea_router_weights_default(&cfg->routing.weights);
    ea_router_params_default(&cfg->routing.params);
    cfg->routing.default_mode = EA_MODE_AUTO;
    cfg->routing.default_privacy = EA_PRIVACY_ALLOW;
    struct ctx c = {file, err, cfg};
    struct ea_config_node *root = NULL;
    ea_status s = ea__config_tree_parse(text, len, file, &root, err);
    if (s)
        goto out_free;
    if (!root || is_null(root))
        goto out_ok; /* an empty file: no sections, all defaults */
    if (root->kind != EA_CONFIG_MAPPING) {
        s = fail(&c, root->pos, "", "the top level must be a mapping of sections (server, "
                 "upstreams, tasks, routing, privacy, ledger)");
        goto out_free;
    }
    if ((s = only_keys(&c, root, "", section_keys)))
        goto out_free;
    struct ea_config_node *v;
    const struct ea_config_node *default_task = NULL;
    /* order: tasks name upstreams and take routing's defaults */
    if ((v = (struct ea_config_node *)get(root, "server")) && (s = parse_server(&c, v)))
        goto out_free;
    if ((v = (struct ea_config_node *)get(root, "upstreams")) && (s = parse_upstreams(&c, v)))
        goto out_free;
    if ((v = (struct ea_config_node *)get(root, "routing")) && (s = parse_routing(&c, v, &default_task)))
        goto out_free;
    if ((v = (struct ea_config_node *)get(root, "tasks")) && (s = parse_tasks(&c, v)))
        goto out_free;
    if (default_task) {
        const struct ea_task_config *t = ea_router_config_task(cfg, default_task->scalar);
        if (!t) {
            char b[SHOW_MAX + 8];
            s = fail(&c, default_task->pos, "routing.default_task", "no task is named '%s'",
                     show(default_task->scalar, b, sizeof b));
            goto out_free;
        }
        cfg->routing.default_task = (size_t)(t - cfg->tasks);
        cfg->routing.has_default_task = true;
    }
    if ((v = (struct ea_config_node *)get(root, "privacy")) && (s = take_tree(&c, v, &cfg->privacy)))
        goto out_free;
    if ((v = (struct ea_config_node *)get(root, "ledger")) && (s = take_tree(&c, v, &cfg->ledger)))
        goto out_free;
out_ok:
    /* no upstream configured: the local engine, as `local` (what serve
     * runs without a file; the cross checks above already count it) */
    if (!cfg->n_upstreams) {
        cfg->upstreams = ea_calloc(1, sizeof *cfg->upstreams);
        char *name = ea_strdup("local");
        if (!cfg->upstreams || !name) {
            ea_free(name);
            s = oom(&c);
            goto out_free;
        }
        struct ea_upstream_config *u = &cfg->upstreams[cfg->n_upstreams++];
        u->name = name;
        u->kind = EA_UPSTREAM_LOCAL;
        u->tier = EA_TIER_DEVICE;
        u->fallback_on = EA_FALLBACK_ALL;
        u->timeouts = (struct ea_upstream_timeouts){DEFAULT_CONNECT_MS, DEFAULT_FIRST_TOKEN_MS,
                                                    DEFAULT_IDLE_MS, DEFAULT_TOTAL_MS};
    }
    ea__config_node_free(root);
    *out = cfg;
    return EA_OK;
out_free:
    ea__config_node_free(root);
    ea_router_config_destroy(cfg);
    return s;
}

ea_status ea_router_config_load(const char *path, struct ea_router_config **out, struct ea_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ea_error_set(err, errno == ENOENT ? EA_ENOTFOUND : EA_EIO, "%s: %s", path, strerror(errno));
    char *text = ea_malloc(EA_CONFIG_MAX_BYTES + 1);
    if (!text) {
        fclose(f);
        return ea_error_set(err, EA_ENOMEM, "%s: out of memory", path);
    }
    size_t n = fread(text, 1, EA_CONFIG_MAX_BYTES + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    ea_status s;
    if (bad)
        s = ea_error_set(err, EA_EIO, "%s: read error", path);
    else if (n > EA_CONFIG_MAX_BYTES)
        s = ea_error_set(err, EA_ETOOBIG, "%s: larger than %zu bytes", path, EA_CONFIG_MAX_BYTES);
    else
        s = ea_router_config_parse(text, n, path, out, err);
    ea_free(text);
    return s;
}

void ea_router_config_destroy(struct ea_router_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_server; i++) {
        ea_free(cfg->server[i].key);
        ea_free(cfg->server[i].value);
    }
    ea_free(cfg->server);
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        struct ea_upstream_config *u = &cfg->upstreams[i];
        ea_free(u->name);
        ea_free(u->base_url);
        ea_free(u->model);
        ea_free(u->api_key_env);
        ea_free(u->ca_file);
        for (size_t k = 0; k < u->n_headers; k++) {
            ea_free(u->headers[k].name);
            ea_free(u->headers[k].value);
        }
        ea_free(u->headers);
    }
    ea_free(cfg->upstreams);
    for (size_t i = 0; i < cfg->n_tasks; i++) {
        ea_free(cfg->tasks[i].name);
        ea_free(cfg->tasks[i].upstreams);
    }
    ea_free(cfg->tasks);
    ea__config_node_free(cfg->privacy);
    ea__config_node_free(cfg->ledger);
    ea_free(cfg->file);
    ea_free(cfg);
}

const struct ea_upstream_config *ea_router_config_upstream(const struct ea_router_config *cfg,
                                                           const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_upstreams; i++)
        if (!strcmp(cfg->upstreams[i].name, name))
            return &cfg->upstreams[i];
    return NULL;
}

const struct ea_task_config *ea_router_config_task(const struct ea_router_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_tasks; i++)
        if (!strcmp(cfg->tasks[i].name, name))
            return &cfg->tasks[i];
    return NULL;
}
