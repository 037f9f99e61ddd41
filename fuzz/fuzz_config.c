/* fuzz_config.c - libFuzzer target for the router's YAML configuration
 * (EA_TEST_NEEDS_NET: the router is built with the server's libraries).
 * Any input is either refused with one line "f.yaml:line:column: ..." (or
 * "f.yaml: ..." for a cap) and a format/size status, or accepted with every
 * field inside its documented range and every cross reference valid; each
 * accepted task's profile then goes through the decision. Build: make fuzz;
 * run: make fuzz-smoke. Seeds: fuzz/corpus/config/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/router.h"

static void check_config(const struct ea_router_config *cfg)
{
    for (size_t i = 0; i < cfg->n_server; i++)
        if (!cfg->server[i].key[0] || cfg->server[i].key[0] == '-' || !cfg->server[i].value)
            abort();
    for (size_t i = 0; i < cfg->n_upstreams; i++) {
        const struct ea_upstream_config *u = &cfg->upstreams[i];
        if (!u->name || !u->name[0] || strlen(u->name) > EA_CONFIG_MAX_NAME)
            abort();
        for (size_t k = 0; k < i; k++)
            if (!strcmp(cfg->upstreams[k].name, u->name))
                abort();
        if (u->kind == EA_UPSTREAM_OPENAI && (!u->base_url || !u->model))
            abort();
        if (u->kind == EA_UPSTREAM_LOCAL &&
            (u->base_url || u->api_key_env || u->ca_file || u->n_headers || u->tier != EA_TIER_DEVICE))
            abort();
        if (u->base_url && strncmp(u->base_url, "http://", 7) && strncmp(u->base_url, "https://", 8))
            abort();
        const struct ea_upstream_timeouts *t = &u->timeouts;
        if (!t->connect_ms || !t->first_token_ms || !t->idle_ms || t->connect_ms > t->total_ms ||
            t->first_token_ms > t->total_ms || t->idle_ms > t->total_ms)
            abort();
        if (!(u->price.input_per_mtok >= 0) || !(u->price.output_per_mtok >= 0))
            abort();
        if (u->fallback_on & ~EA_FALLBACK_ALL)
            abort();
        for (size_t k = 0; k < u->n_headers; k++)
            if (!u->headers[k].name[0] || strpbrk(u->headers[k].value, "\r\n"))
                abort();
    }
    for (size_t i = 0; i < cfg->n_tasks; i++) {
        const struct ea_task_config *t = &cfg->tasks[i];
        if (!t->name || ea_router_config_task(cfg, t->name) != t)
            abort();
        if ((unsigned)t->mode > EA_MODE_HYBRID || (unsigned)t->privacy > EA_PRIVACY_ALLOW)
            abort();
        for (size_t k = 0; k < t->n_upstreams; k++)
            if (t->upstreams[k] >= cfg->n_upstreams)
                abort();
        struct ea_route_decision d;
        ea_router_decide(&t->profile, &cfg->routing.weights, &d);
        if (d.n_reasons < 1 || d.n_reasons > EA_ROUTE_MAX_REASONS || d.edge_score < 0 || d.cloud_score < 0)
            abort();
        if (d.target == EA_ROUTE_HYBRID && !(d.edge_score > 0 && d.cloud_score > 0))
            abort();
    }
    if (cfg->routing.has_default_task && cfg->routing.default_task >= cfg->n_tasks)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ea_router_config *cfg = NULL;
    struct ea_error err = {0};
    ea_status s = ea_router_config_parse((const char *)data, size, "f.yaml", &cfg, &err);
    if (s == EA_OK) {
        if (!cfg)
            abort();
        check_config(cfg);
        ea_router_config_destroy(cfg);
        return 0;
    }
    if (cfg || (s != EA_EFORMAT && s != EA_ETOOBIG && s != EA_ENOMEM) || strncmp(err.msg, "f.yaml", 6) ||
        strchr(err.msg, '\n'))
        abort(); /* every rejection is one line that names the file */
    return 0;
}
