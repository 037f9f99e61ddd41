/* config.c - the `ledger:` section of edgeagent.yaml: the position-tagged
 * tree the router's reader keeps (router.h) checked and turned into struct
 * ea_ledger_config, plus the pricing helpers that use it.
 *
 * Every rejection is one line "file:line:column: ledger.path: what is
 * wrong", as src/router/config.c writes them. Values echoed in messages are
 * cut and cleaned; api_key_env stays a name (the library reads no
 * environment).
 * Does not hold: YAML syntax (src/router/config_yaml.c), the database
 * (ledger.c), budgets at run time (budget.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger_int.h"
#include "router/config_check.h"

#define MAX_PATH_TEXT EA__CFG_PATH_MAX
#define SHOW_MAX EA__CFG_SHOW_MAX
#define MAX_URL 2048
#define MAX_ENV_NAME 128
#define MAX_DATA_DIR 1024
#define DEFAULT_SYNC_INTERVAL_S 300u
#define MIN_SYNC_INTERVAL_S 10u
#define MAX_SYNC_INTERVAL_S 86400u

struct ctx {
    const char *file;
    struct ea_error *err;
};

/* messages and typed getters: router/config_check.h */
#define CFG(c) (&(struct ea__cfg){(c)->file, (c)->err})
#define show(s, buf, size) ea__cfg_show(s, buf, size)
#define fail(c, ...) ea__cfg_fail(CFG(c), __VA_ARGS__)
#define oom(c) ea__cfg_oom(CFG(c))
#define join(out, parent, key) ea__cfg_join(out, parent, key)
#define is_null(n) ea__cfg_is_null(n)
#define get(map, key) ea__cfg_get(map, key)
#define want(c, ...) ea__cfg_want(CFG(c), __VA_ARGS__)
#define only_keys(c, ...) ea__cfg_only_keys(CFG(c), __VA_ARGS__)
#define get_number(c, ...) ea__cfg_number(CFG(c), __VA_ARGS__)
#define get_u32(c, ...) ea__cfg_u32(CFG(c), __VA_ARGS__)

/* A string of at most max bytes without control characters. */
static ea_status get_string(struct ctx *c, const struct ea_config_node *n, const char *path,
                            size_t max, char **out)
{
    ea_status s = want(c, n, path, EA_CONFIG_SCALAR, "a string");
    if (s)
        return s;
    size_t len = strlen(n->scalar);
    if (len > max)
        return fail(c, n->pos, path, "longer than %zu bytes", max);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)n->scalar[i] < 0x20 || n->scalar[i] == 0x7F)
            return fail(c, n->pos, path, "holds a control character");
    ea_free(*out);
    if (!(*out = ea_strdup(n->scalar)))
        return oom(c);
    return EA_OK;
}

static ea_status get_action(struct ctx *c, const struct ea_config_node *n, const char *path,
                            enum ea_budget_action *out)
{
    ea_status s = want(c, n, path, EA_CONFIG_SCALAR, "edge or reject");
    if (s)
        return s;
    if (!strcmp(n->scalar, "reject"))
        *out = EA_BUDGET_REJECT;
    else if (!strcmp(n->scalar, "edge"))
        *out = EA_BUDGET_EDGE;
    else {
        char b[SHOW_MAX + 8];
        return fail(c, n->pos, path, "'%s' is not one of edge, reject", show(n->scalar, b, sizeof b));
    }
    return EA_OK;
}

static ea_status get_url(struct ctx *c, const struct ea_config_node *n, const char *path, char **out)
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
    size_t host = strcspn(rest, "/?#");
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7F)
            return fail(c, n->pos, path, "the URL holds a space or control character");
    if (memchr(rest, '@', host))
        return fail(c, n->pos, path, "credentials do not go in the URL: name an environment "
                                     "variable with api_key_env");
    if (host == 0 || rest[0] == ':')
        return fail(c, n->pos, path, "the URL has no host");
    return get_string(c, n, path, MAX_URL, out);
}

/* ---- sections ------------------------------------------------------------ */

static ea_status parse_caps(struct ctx *c, const struct ea_config_node *map, const char *path,
                            struct ea_ledger_caps *caps)
{
    const struct ea_config_node *v;
    char p[MAX_PATH_TEXT];
    ea_status s;
    if ((v = get(map, "daily"))) {
        join(p, path, "daily");
        if ((s = get_number(c, v, p, EA_LEDGER_MAX_USD, &caps->daily_usd)))
            return s;
    }
    if ((v = get(map, "monthly"))) {
        join(p, path, "monthly");
        if ((s = get_number(c, v, p, EA_LEDGER_MAX_USD, &caps->monthly_usd)))
            return s;
    }
    return EA_OK;
}

static ea_status parse_budgets(struct ctx *c, const struct ea_router_config *rc,
                               const struct ea_config_node *n, struct ea_ledger_config *out)
{
    static const char *const keys[] = {"daily", "monthly", "action", "tasks", NULL};
    static const char *const task_keys[] = {"daily", "monthly", "action", NULL};
    const char *path = "ledger.budgets";
    ea_status s;
    if ((s = want(c, n, path, EA_CONFIG_MAPPING, "a mapping (daily, monthly, action, tasks)")) ||
        (s = only_keys(c, n, path, keys)) || (s = parse_caps(c, n, path, &out->global)))
        return s;
    const struct ea_config_node *v;
    char p[MAX_PATH_TEXT];
    if ((v = get(n, "action")) && (s = get_action(c, v, "ledger.budgets.action", &out->default_action)))
        return s;
    if (!(v = get(n, "tasks")))
        return EA_OK;
    path = "ledger.budgets.tasks";
    if ((s = want(c, v, path, EA_CONFIG_MAPPING, "a mapping of task names to budgets")))
        return s;
    if (v->n && !(out->tasks = ea_calloc(v->n, sizeof *out->tasks)))
        return oom(c);
    for (size_t i = 0; i < v->n; i++) {
        const struct ea_config_node *k = &v->keys[i], *t = &v->items[i];
        char b[SHOW_MAX + 8];
        join(p, path, k->scalar);
        if (!ea_router_config_task(rc, k->scalar))
            return fail(c, k->pos, p, "no task is named '%s' (budgets name tasks of the tasks "
                        "section)", show(k->scalar, b, sizeof b));
        if ((s = want(c, t, p, EA_CONFIG_MAPPING, "a mapping (daily, monthly, action)")) ||
            (s = only_keys(c, t, p, task_keys)))
            return s;
        struct ea_ledger_task_budget *tb = &out->tasks[out->n_tasks++];
        tb->action = out->default_action;
        if (!(tb->task = ea_strdup(k->scalar)))
            return oom(c);
        if ((s = parse_caps(c, t, p, &tb->caps)))
            return s;
        const struct ea_config_node *a = get(t, "action");
        char ap[MAX_PATH_TEXT];
        join(ap, p, "action");
        if (a && (s = get_action(c, a, ap, &tb->action)))
            return s;
    }
    return EA_OK;
}

static ea_status parse_reference(struct ctx *c, const struct ea_router_config *rc,
                                 const struct ea_config_node *n, struct ea_ledger_config *out)
{
    static const char *const keys[] = {"model", "input_per_mtok", "output_per_mtok", NULL};
    const char *path = "ledger.reference";
    ea_status s;
    char b[SHOW_MAX + 8];
    if (n->kind == EA_CONFIG_SCALAR && !is_null(n)) {
        const struct ea_upstream_config *u = ea_router_config_upstream(rc, n->scalar);
        if (!u)
            return fail(c, n->pos, path, "no upstream is named '%s' (write a mapping {model, "
                        "input_per_mtok, output_per_mtok} for a model that is not an upstream)",
                        show(n->scalar, b, sizeof b));
        if (!(out->reference_model = ea_strdup(u->model ? u->model : u->name)))
            return oom(c);
        out->reference_price = u->price;
        out->has_reference = true;
        return EA_OK;
    }
    if ((s = want(c, n, path, EA_CONFIG_MAPPING, "an upstream name or a mapping {model, "
                  "input_per_mtok, output_per_mtok}")) ||
        (s = only_keys(c, n, path, keys)))
        return s;
    const struct ea_config_node *m = get(n, "model"), *in = get(n, "input_per_mtok"),
                                *o = get(n, "output_per_mtok");
    if (!m || !in || !o)
        return fail(c, n->pos, path, "needs model, input_per_mtok and output_per_mtok");
    if ((s = get_string(c, m, "ledger.reference.model", EA_LEDGER_MODEL_MAX, &out->reference_model)) ||
        (s = get_number(c, in, "ledger.reference.input_per_mtok", EA_LEDGER_MAX_USD,
                        &out->reference_price.input_per_mtok)) ||
        (s = get_number(c, o, "ledger.reference.output_per_mtok", EA_LEDGER_MAX_USD,
                        &out->reference_price.output_per_mtok)))
        return s;
    out->has_reference = true;
    return EA_OK;
}

static ea_status parse_sync(struct ctx *c, const struct ea_config_node *n, struct ea_ledger_config *out)
{
    static const char *const keys[] = {"endpoint", "interval_s", "api_key_env", NULL};
    const char *path = "ledger.sync";
    ea_status s;
    if ((s = want(c, n, path, EA_CONFIG_MAPPING, "a mapping (endpoint, interval_s, api_key_env)")) ||
        (s = only_keys(c, n, path, keys)))
        return s;
    const struct ea_config_node *v;
    if (!(v = get(n, "endpoint")))
        return fail(c, n->pos, path, "needs an endpoint");
    if ((s = get_url(c, v, "ledger.sync.endpoint", &out->sync_endpoint)))
        return s;
    if ((v = get(n, "interval_s")) &&
        (s = get_u32(c, v, "ledger.sync.interval_s", MIN_SYNC_INTERVAL_S, MAX_SYNC_INTERVAL_S,
                     &out->sync_interval_s)))
        return s;
    if ((v = get(n, "api_key_env"))) {
        if ((s = get_string(c, v, "ledger.sync.api_key_env", MAX_ENV_NAME, &out->sync_api_key_env)))
            return s;
        const char *e = out->sync_api_key_env;
        if (strspn(e, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != strlen(e) ||
            (*e >= '0' && *e <= '9'))
            return fail(c, v->pos, "ledger.sync.api_key_env", "not an environment variable name");
    }
    return EA_OK;
}

/* ---- public -------------------------------------------------------------- */

void ea_ledger_config_init(struct ea_ledger_config *c)
{
    memset(c, 0, sizeof *c);
    c->default_action = EA_BUDGET_REJECT;
    c->queue_rows = EA_LEDGER_DEFAULT_QUEUE;
    c->sync_interval_s = DEFAULT_SYNC_INTERVAL_S;
}

void ea_ledger_config_release(struct ea_ledger_config *c)
{
    if (!c)
        return;
    ea_free(c->data_dir);
    ea_free(c->reference_model);
    for (size_t i = 0; i < c->n_tasks; i++)
        ea_free(c->tasks[i].task);
    ea_free(c->tasks);
    ea_free(c->sync_endpoint);
    ea_free(c->sync_api_key_env);
    ea_ledger_config_init(c);
}

/* Without a configured reference: the cloud upstream with the highest
 * input + output price (the first on a tie). */
static ea_status default_reference(struct ctx *c, const struct ea_router_config *rc,
                                   struct ea_ledger_config *out)
{
    const struct ea_upstream_config *best = NULL;
    for (size_t i = 0; i < rc->n_upstreams; i++) {
        const struct ea_upstream_config *u = &rc->upstreams[i];
        if (u->tier != EA_TIER_CLOUD)
            continue;
        double sum = u->price.input_per_mtok + u->price.output_per_mtok;
        if (!best || sum > best->price.input_per_mtok + best->price.output_per_mtok)
            best = u;
    }
    if (!best)
        return EA_OK;
    if (!(out->reference_model = ea_strdup(best->model ? best->model : best->name)))
        return oom(c);
    out->reference_price = best->price;
    out->has_reference = true;
    return EA_OK;
}

ea_status ea_ledger_config_parse(const struct ea_router_config *rc, struct ea_ledger_config *out,
                                 struct ea_error *err)
{
    static const char *const keys[] = {"data_dir", "edge_cost_per_mtok", "reference", "queue",
                                       "budgets", "sync", NULL};
    ea_ledger_config_init(out);
    struct ctx c = {rc && rc->file ? rc->file : "config", err};
    const struct ea_config_node *n = rc ? rc->ledger : NULL, *v;
    ea_status s;
    if (!n || is_null(n))
        return rc ? default_reference(&c, rc, out) : EA_OK;
    if ((s = want(&c, n, "ledger", EA_CONFIG_MAPPING, "a mapping")) ||
        (s = only_keys(&c, n, "ledger", keys)))
        return s;
    if ((v = get(n, "data_dir"))) {
        if ((s = get_string(&c, v, "ledger.data_dir", MAX_DATA_DIR, &out->data_dir)))
            return s;
    }
    if ((v = get(n, "edge_cost_per_mtok")) &&
        (s = get_number(&c, v, "ledger.edge_cost_per_mtok", EA_LEDGER_MAX_USD, &out->edge_cost_per_mtok)))
        return s;
    if ((v = get(n, "queue")) &&
        (s = get_u32(&c, v, "ledger.queue", 1, EA_LEDGER_MAX_QUEUE, &out->queue_rows)))
        return s;
    if ((v = get(n, "budgets")) && (s = parse_budgets(&c, rc, v, out)))
        return s;
    if ((v = get(n, "reference")))
        s = parse_reference(&c, rc, v, out);
    else
        s = default_reference(&c, rc, out);
    if (s)
        return s;
    if ((v = get(n, "sync")) && (s = parse_sync(&c, v, out)))
        return s;
    return EA_OK;
}

/* ---- pricing ------------------------------------------------------------- */

#define TOKENS_PER_MTOK 1e6

double ea_ledger_cost_usd(const struct ea_ledger_config *c, enum ea_upstream_tier tier,
                          const struct ea_upstream_price *price, uint64_t prompt_tokens,
                          uint64_t completion_tokens)
{
    if (tier == EA_TIER_DEVICE)
        return c ? c->edge_cost_per_mtok * (double)(prompt_tokens + completion_tokens) / TOKENS_PER_MTOK
                 : 0;
    if (!price)
        return 0;
    return (price->input_per_mtok * (double)prompt_tokens +
            price->output_per_mtok * (double)completion_tokens) / TOKENS_PER_MTOK;
}

double ea_ledger_worst_case_usd(const struct ea_upstream_price *price, uint64_t prompt_tokens,
                                uint64_t max_tokens)
{
    return ea_ledger_cost_usd(NULL, EA_TIER_CLOUD, price, prompt_tokens, max_tokens);
}

void ea_ledger_price_row(const struct ea_ledger_config *c, struct ea_ledger_row *row)
{
    row->cost_usd = ea_ledger_cost_usd(c, row->tier, &row->price, row->prompt_tokens,
                                       row->completion_tokens);
    row->counterfactual_usd =
        c && c->has_reference ? ea_ledger_cost_usd(NULL, EA_TIER_CLOUD, &c->reference_price,
                                                   row->prompt_tokens, row->completion_tokens)
                              : 0;
}
