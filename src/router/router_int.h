/* router_int.h - what the router's files share and nothing outside uses: the
 * YAML reader that turns text into an ea_config_node tree (config_yaml.c)
 * and the tree's release; the live state behind ea_router (live.c, read by
 * plan.c).
 * Does not hold: validation (config.c) or the decision (decide.c).
 */
#ifndef EDGEAGENT_ROUTER_INT_H
#define EDGEAGENT_ROUTER_INT_H

#include <pthread.h>

#include "edgeagent/router.h"

/* Most pairs one mapping may hold (duplicate keys are found by a scan, so
 * this also bounds that work). */
#define EA__CONFIG_MAX_PAIRS 1024

/* Parses text as one YAML document into a tree (anchors, aliases, tags and
 * more than one document are refused). *root is NULL for an empty document.
 * Errors are "file:line:column: what" in err (EA_EFORMAT, EA_ETOOBIG past
 * EA_CONFIG_MAX_DEPTH / EA_CONFIG_MAX_NODES / EA__CONFIG_MAX_PAIRS,
 * EA_ENOMEM). The caller owns *root: free with ea__config_node_free. */
ea_status ea__config_tree_parse(const char *text, size_t len, const char *file,
                                struct ea_config_node **root, struct ea_error *err);
/* Frees what n holds (not n itself). NULL-safe. */
void ea__config_node_release(struct ea_config_node *n);
/* Releases and frees n. NULL-safe. */
void ea__config_node_free(struct ea_config_node *n);

/* One upstream's live state (under ea_router.mu). */
struct ea__upstream_live {
    enum ea_breaker_state state; /* OPEN past open_until_ms reads as HALF_OPEN */
    double open_until_ms;
    uint32_t cooldown_ms;        /* of the next opening */
    bool probe_out;              /* the half-open probe is in flight */
    uint32_t consecutive;        /* failures in a row */
    uint32_t in_flight;
    double ttft[EA_ROUTER_TTFT_WINDOW];
    uint32_t n_ttft, ttft_next;
    uint32_t new_samples;        /* since the percentiles were computed */
    bool pct_valid;
    double p50, p95, pct_at_ms;  /* cached percentiles of the window */
    uint64_t requests, failures, fallbacks, breaker_opens;
};

struct ea_router {
    const struct ea_router_config *cfg; /* borrowed */
    struct ea_router_params p;
    pthread_mutex_t mu;
    struct ea__upstream_live *up; /* cfg->n_upstreams */
};

/* Under mu (plan.c takes it): the breaker's state at now, the TTFT
 * percentiles (< 0: no sample). */
enum ea_breaker_state ea__router_breaker_locked(ea_router *r, size_t u, double now_ms);
void ea__router_ttft_locked(ea_router *r, size_t u, double now_ms, double *p50, double *p95);

#endif
