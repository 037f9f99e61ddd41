/* route.c - the server's side of routing: the router and the upstream
 * objects built from the configuration (or, without one, a single local
 * upstream: the edge only; openai upstreams share one cloud client), and per request the task it names and its plan
 * (ea_router_plan over live engine and upstream state); the listings that
 * describe them (/v1/models, /v1/edgeagent/upstreams).
 * Does not hold: the plan itself (src/router/plan.c), carrying it out
 * (relay.c), HTTP formatting of answers (generate.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/cloud.h"
#include "server/relay.h"
#include "server/server_int.h"
#include "server/upstream.h"

/* Without --config: one local upstream, the edge only. */
static const char default_config[] = "upstreams:\n  - {name: local, kind: local}\n";

ea_status ea__route_setup(ea_server *s, struct ea_error *err)
{
    const struct ea_router_config *cfg = s->p.router_config;
    ea_status st;
    if (!cfg) {
        st = ea_router_config_parse(default_config, sizeof default_config - 1, "(built-in)",
                                    &s->own_config, err);
        if (st)
            return st;
        cfg = s->own_config;
    }
    s->p.router_config = cfg;
    if ((st = ea_router_create(cfg, NULL, &s->router, err)))
        return st;
    s->n_ups = cfg->n_upstreams;
    s->ups = ea_calloc(s->n_ups, sizeof *s->ups);
    s->up_ttft = ea_calloc(s->n_ups, sizeof *s->up_ttft);
    s->gen_dur = ea_calloc(s->n_ups, sizeof *s->gen_dur);
    s->gen_ttft = ea_calloc(s->n_ups, sizeof *s->gen_ttft);
    s->gen_tok_in = ea_calloc(s->n_ups, sizeof *s->gen_tok_in);
    s->gen_tok_out = ea_calloc(s->n_ups, sizeof *s->gen_tok_out);
    if (!s->ups || !s->up_ttft || !s->gen_dur || !s->gen_ttft || !s->gen_tok_in || !s->gen_tok_out)
        return ea_error_set(err, EA_ENOMEM, "server: out of memory");
    s->local_up = -1;
    for (size_t i = 0; i < s->n_ups; i++) {
        const struct ea_upstream_config *u = &cfg->upstreams[i];
        if (u->kind == EA_UPSTREAM_LOCAL) {
            if (s->local_up < 0)
                s->local_up = (int)i;
            continue; /* the local upstream exists once the model is loaded */
        }
        /* openai: one cloud client (its thread, its connection cache) for all */
        if (!s->cloud && (st = ea__cloud_create(&s->cloud, err)))
            return st;
        const char *key = s->p.upstream_keys ? s->p.upstream_keys[i] : NULL;
        if ((st = ea__upstream_openai_create(s->cloud, u, key, &s->ups[i], err)))
            return ea_error_prefix(err, "server: upstream '%s'", u->name);
    }
    return ea__relay_worker_create(&s->relay_worker, err);
}

void ea__route_teardown(ea_server *s)
{
    ea__relay_worker_destroy(s->relay_worker);
    s->relay_worker = NULL;
    /* no transfer is left (every generation ended); the client first, then
     * the upstreams its callbacks would reach */
    ea__cloud_destroy(s->cloud);
    s->cloud = NULL;
    for (size_t i = 0; s->ups && i < s->n_ups; i++)
        if (s->p.router_config->upstreams[i].kind == EA_UPSTREAM_OPENAI)
            ea__upstream_openai_destroy(s->ups[i]);
    ea_free(s->ups); /* the local entries are s->upstream, destroyed by the server */
    ea_free(s->up_ttft);
    s->up_ttft = NULL;
    ea_free(s->gen_dur);
    ea_free(s->gen_ttft);
    ea_free(s->gen_tok_in);
    ea_free(s->gen_tok_out);
    s->gen_dur = s->gen_ttft = s->gen_tok_in = s->gen_tok_out = NULL;
    s->ups = NULL;
    ea_router_destroy(s->router);
    s->router = NULL;
    ea_router_config_destroy(s->own_config);
    s->own_config = NULL;
}

void ea__route_backend_ready(ea_server *s)
{
    for (size_t i = 0; i < s->n_ups; i++)
        if (s->p.router_config->upstreams[i].kind == EA_UPSTREAM_LOCAL)
            s->ups[i] = s->upstream;
}

/* The local engine's load for the plan (and its health). */
static void local_load(ea_server *s, struct ea_local_load *l)
{
    memset(l, 0, sizeof *l);
    struct ea__backend *b = ea__backend_acquire(s);
    if (!b)
        return;
    const struct ea_server_backend *be = &b->view;
    struct ea_engine_stats st;
    ea_engine_get_stats(be->engine, &st);
    l->loaded = true;
    l->queue_depth = st.queue_depth;
    l->running = st.running;
    l->max_running = be->max_running;
    l->prefill_tok_s = st.prefill_tok_s;
    l->decode_step_ms = st.decode_step_ms;
    l->have_stats = st.requests_done > 0 && st.prefill_tok_s > 0;
    pthread_mutex_lock(&s->mu);
    l->mean_request_ms = s->local_mean_ms;
    pthread_mutex_unlock(&s->mu);
    l->max_context = be->max_context;
    ea__backend_release(s, b);
}

/* A rough token count of the prompt (bytes / 4, the usual estimate for
 * English BPE), for the plan's context check and prediction and the cloud
 * budget's reservation: the upstreams count exactly. */
int32_t ea__route_prompt_estimate(const struct ea__gen_request *r)
{
    size_t bytes = 0;
    for (int i = 0; i < r->n_msgs; i++)
        bytes += r->msgs[i].len + 8;
    for (int i = 0; i < r->n_prompts; i++)
        bytes += r->prompts[i].text ? r->prompts[i].len : (size_t)r->prompts[i].n_tokens * 4;
    size_t t = bytes / 4 + 1;
    return t > INT32_MAX ? INT32_MAX : (int32_t)t;
}

bool ea__route_request(ea_server *s, const struct ea__gen_request *r, const char *header_task,
                       struct ea_route_plan *plan, char *task_name, size_t task_cap,
                       enum ea_privacy_mode *privacy, struct ea__api_error *e)
{
    char mid[sizeof s->model_id]; /* the model served now */
    ea__server_model_id(s, mid, sizeof mid);
    const struct ea_router_config *cfg = s->p.router_config;
    struct ea_route_input in;
    memset(&in, 0, sizeof in);
    in.pinned = -1;
    in.allow_cloud = r->allow_cloud;
    in.max_latency_ms = r->max_latency_ms;
    in.max_tokens = r->max_tokens ? r->max_tokens : s->p.max_tokens;
    in.prompt_tokens = ea__route_prompt_estimate(r);
    task_name[0] = '\0';
    /* the task: the body's extension, else the header, else the model name */
    const char *task = r->route_task[0] ? r->route_task : header_task && *header_task ? header_task : NULL;
    const char *model = r->has_model ? r->model : "auto";
    if (!task && !strncmp(model, "task:", 5))
        task = model + 5;
    else if (!task && strcmp(model, "auto") && strcmp(model, "default")) {
        const struct ea_upstream_config *u = ea_router_config_upstream(cfg, model);
        if (u)
            in.pinned = (int32_t)(u - cfg->upstreams);
        else if (!strcmp(model, mid) && s->local_up >= 0)
            in.pinned = s->local_up;
        else
            return ea__api_errorf(e, 404, "invalid_request_error", "model_not_found", "model",
                                  "the model '%.100s' does not exist (GET /v1/models lists what "
                                  "this server routes: '%s', 'auto', tasks as 'task:<name>' and "
                                  "upstream names)",
                                  model, mid);
    }
    if (task) {
        in.task = ea_router_config_task(cfg, task);
        if (!in.task)
            return ea__api_errorf(e, 404, "invalid_request_error", "model_not_found",
                                  r->route_task[0] ? "edgeagent.task" : "model",
                                  "the task '%.80s' is not configured", task);
    } else if (cfg->routing.has_default_task) {
        in.task = &cfg->tasks[cfg->routing.default_task];
    }
    if (in.task)
        snprintf(task_name, task_cap, "%s", in.task->name);
    *privacy = in.task ? in.task->privacy : cfg->routing.default_privacy;
    if (r->private_data)
        *privacy = EA_PRIVACY_LOCAL_ONLY;
    in.local_only = *privacy == EA_PRIVACY_LOCAL_ONLY;
    in.local_edge_node = in.task && in.task->local_only_edge_node;
    local_load(s, &in.local);
    ea_router_plan(s->router, &in, ea__now_ms(), plan);
    if (plan->n)
        return true;
    if (plan->retry_after_ms > 0) {
        ea__api_errorf(e, 503, "server_error", "no_upstream_available", NULL,
                       "every upstream this request may use is failing (%s); retry in %.0f ms",
                       plan->reason, plan->retry_after_ms);
        e->retry_after_s = (unsigned)((plan->retry_after_ms + 999) / 1000);
        return false;
    }
    return ea__api_errorf(e, 503, "server_error", "no_upstream_available", NULL,
                          "no configured upstream may serve this request (%s)", plan->reason);
}

void ea__route_local_observed(ea_server *s, double total_ms)
{
    /* a moving mean of local request times (the plan's queue-wait estimate) */
    pthread_mutex_lock(&s->mu);
    s->local_mean_ms = s->local_mean_ms > 0 ? s->local_mean_ms * 0.9 + total_ms * 0.1 : total_ms;
    pthread_mutex_unlock(&s->mu);
}

/* One /v1/models entry (after another unless first). */
static ea_status model_item(struct ea_buf *o, bool first, const char *id, const char *owner)
{
    ea_status st = ea__buf_puts(o, first ? "{\"id\":" : ",{\"id\":");
    if (!st)
        st = ea__buf_json_str(o, id, strlen(id));
    if (!st)
        st = ea__buf_printf(o, ",\"object\":\"model\",\"created\":0,\"owned_by\":\"%s\"}", owner);
    return st;
}

ea_status ea__route_models_append(struct ea_buf *o, const ea_server *s, const char *only)
{
    char mid[sizeof s->model_id]; /* the model served now */
    ea__server_model_id(s, mid, sizeof mid);
    const struct ea_router_config *cfg = s->p.router_config;
    if (only) /* one routable name, alone */
        return model_item(o, true, only, "edgeagent-router");
    ea_status st = model_item(o, false, "auto", "edgeagent-router");
    char name[EA__ROUTE_NAME_MAX + 8];
    for (size_t i = 0; i < cfg->n_tasks && !st; i++) {
        snprintf(name, sizeof name, "task:%s", cfg->tasks[i].name);
        st = model_item(o, false, name, "edgeagent-router");
    }
    for (size_t i = 0; i < cfg->n_upstreams && !st; i++)
        if (strcmp(cfg->upstreams[i].name, mid))
            st = model_item(o, false, cfg->upstreams[i].name,
                            ea_upstream_tier_name(cfg->upstreams[i].tier));
    return st;
}

bool ea__route_routable(const ea_server *s, const char *id)
{
    const struct ea_router_config *cfg = s->p.router_config;
    if (!strcmp(id, "auto") || !strcmp(id, "default"))
        return true;
    if (!strncmp(id, "task:", 5))
        return ea_router_config_task(cfg, id + 5) != NULL;
    return ea_router_config_upstream(cfg, id) != NULL;
}

ea_status ea__route_upstreams_json(ea_server *s, struct ea_buf *o)
{
    char mid[sizeof s->model_id]; /* the model served now */
    ea__server_model_id(s, mid, sizeof mid);
    const struct ea_router_config *cfg = s->p.router_config;
    static const char *const breaker[] = {"closed", "open", "half_open"};
    double now = ea__now_ms();
    ea_status st = ea__buf_puts(o, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < cfg->n_upstreams && !st; i++) {
        const struct ea_upstream_config *u = &cfg->upstreams[i];
        struct ea_upstream_status us;
        ea_router_status(s->router, i, now, &us);
        st = ea__buf_puts(o, i ? ",{\"name\":" : "{\"name\":");
        if (!st)
            st = ea__buf_json_str(o, u->name, strlen(u->name));
        if (!st)
            st = ea__buf_printf(o, ",\"kind\":\"%s\",\"tier\":\"%s\",\"model\":",
                                ea_upstream_kind_name(u->kind), ea_upstream_tier_name(u->tier));
        const char *m = u->kind == EA_UPSTREAM_LOCAL ? mid : u->model;
        if (!st)
            st = m ? ea__buf_json_str(o, m, strlen(m)) : ea__buf_puts(o, "null");
        if (!st)
            st = ea__buf_printf(o, ",\"available\":%s,\"breaker\":\"%s\",\"retry_after_ms\":%.0f,"
                                   "\"in_flight\":%u,\"consecutive_failures\":%u,",
                                u->kind != EA_UPSTREAM_LOCAL || atomic_load(&s->ready) ? "true" : "false",
                                breaker[us.breaker], us.retry_after_ms, (unsigned)us.in_flight,
                                (unsigned)us.consecutive_failures);
        if (!st && us.n_ttft)
            st = ea__buf_printf(o, "\"ttft_ms\":{\"p50\":%.3f,\"p95\":%.3f,\"samples\":%u},",
                                us.ttft_p50_ms, us.ttft_p95_ms, (unsigned)us.n_ttft);
        else if (!st)
            st = ea__buf_puts(o, "\"ttft_ms\":null,");
        if (!st)
            st = ea__buf_printf(o, "\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
                                   ",\"fallbacks\":%" PRIu64 ",\"breaker_opens\":%" PRIu64 "}",
                                us.requests, us.failures, us.fallbacks, us.breaker_opens);
    }
    if (!st)
        st = ea__buf_puts(o, "]}");
    return st;
}

ea_status ea__route_metrics(ea_server *s, struct ea_buf *o)
{
    char mid[sizeof s->model_id]; /* the model served now */
    ea__server_model_id(s, mid, sizeof mid);
    const struct ea_router_config *cfg = s->p.router_config;
    double now = ea__now_ms();
    struct ea_upstream_status *st = ea_calloc(cfg->n_upstreams, sizeof *st);
    if (!st)
        return EA_ENOMEM;
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        ea_router_status(s->router, i, now, &st[i]);
    ea_status e = EA_OK;
    /* one family at a time, as the exposition format wants */
#define FAMILY(NAME, TYPE, HELP, FMT, EXPR)                                                        \
    if (!e)                                                                                        \
        e = ea__buf_printf(o, "# HELP " NAME " " HELP "\n# TYPE " NAME " " TYPE "\n");             \
    for (size_t i = 0; i < cfg->n_upstreams && !e; i++)                                           \
        e = ea__buf_printf(o, NAME "{upstream=\"%s\",tier=\"%s\"} " FMT "\n", cfg->upstreams[i].name, \
                           ea_upstream_tier_name(cfg->upstreams[i].tier), EXPR);
    FAMILY("edgeagent_upstream_requests_total", "counter", "Attempts started on the upstream.",
           "%" PRIu64, st[i].requests)
    FAMILY("edgeagent_upstream_failures_total", "counter",
           "Attempts that failed (connect, timeout, 429, 5xx, broken streams).", "%" PRIu64,
           st[i].failures)
    FAMILY("edgeagent_upstream_fallbacks_total", "counter",
           "Requests that left the upstream for another after it failed.", "%" PRIu64,
           st[i].fallbacks)
    FAMILY("edgeagent_upstream_in_flight", "gauge", "Attempts running on the upstream.", "%u",
           (unsigned)st[i].in_flight)
    FAMILY("edgeagent_upstream_breaker_state", "gauge",
           "Circuit breaker: 0 closed, 1 open, 2 half-open.", "%d", (int)st[i].breaker)
    FAMILY("edgeagent_upstream_breaker_opens_total", "counter", "Times the breaker opened.",
           "%" PRIu64, st[i].breaker_opens)
#undef FAMILY
    ea_free(st);
    if (!e)
        e = ea__buf_puts(o, "# HELP edgeagent_upstream_ttft_seconds Time from an attempt's start to "
                            "its first token.\n# TYPE edgeagent_upstream_ttft_seconds histogram\n");
    for (size_t i = 0; i < cfg->n_upstreams && !e; i++) {
        char labels[EA_CONFIG_MAX_NAME + 48];
        snprintf(labels, sizeof labels, "upstream=\"%s\",tier=\"%s\"", cfg->upstreams[i].name,
                 ea_upstream_tier_name(cfg->upstreams[i].tier));
        e = ea__metrics_hist(o, "edgeagent_upstream_ttft_seconds", labels, &s->up_ttft[i], false);
    }
    /* the OpenTelemetry GenAI semantic conventions' names, per upstream that
     * answered: provider = edgeagent for the local engine, else the
     * upstream's name; model = what it runs */
    static const struct {
        const char *name, *help, *type_label;
        bool tokens;
    } fam[] = {
        {"gen_ai_client_operation_duration_seconds", "Duration of a generation request.", NULL, false},
        {"gen_ai_server_time_to_first_token_seconds", "Time to the first token of the answer.", NULL, false},
        {"gen_ai_client_token_usage", "Tokens used per request, by type.", "input", true},
        {"gen_ai_client_token_usage", NULL, "output", true},
    };
    struct ea__hist *const arrays[] = {s->gen_dur, s->gen_ttft, s->gen_tok_in, s->gen_tok_out};
    for (size_t f = 0; f < sizeof fam / sizeof fam[0] && !e; f++) {
        if (fam[f].help)
            e = ea__buf_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", fam[f].name, fam[f].help,
                               fam[f].name);
        for (size_t i = 0; i < cfg->n_upstreams && !e; i++) {
            const struct ea_upstream_config *u = &cfg->upstreams[i];
            char labels[3 * EA_CONFIG_MAX_NAME + 160];
            const char *model = u->kind == EA_UPSTREAM_LOCAL ? mid : u->model;
            snprintf(labels, sizeof labels,
                     "gen_ai_provider_name=\"%s\",gen_ai_request_model=\"%s\",upstream=\"%s\"%s%s%s",
                     u->kind == EA_UPSTREAM_LOCAL ? "edgeagent" : u->name, model ? model : "", u->name,
                     fam[f].type_label ? ",gen_ai_token_type=\"" : "",
                     fam[f].type_label ? fam[f].type_label : "", fam[f].type_label ? "\"" : "");
            e = ea__metrics_hist(o, fam[f].name, labels, &arrays[f][i], fam[f].tokens);
        }
    }
    return e;
}

void ea__route_keep_device(ea_server *s, struct ea_route_plan *plan)
{
    const struct ea_router_config *cfg = s->p.router_config;
    uint32_t k = 0;
    for (uint32_t i = 0; i < plan->n; i++)
        if (cfg->upstreams[plan->order[i]].tier == EA_TIER_DEVICE)
            plan->order[k++] = plan->order[i];
    plan->n = k;
    plan->hedge = false;
}
