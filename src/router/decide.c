/* decide.c - the deployment decision (the product's reference framework):
 * scores a task profile for the edge and the cloud and recommends EDGE,
 * CLOUD or HYBRID, with one reason per factor that scored.
 * Does not hold: live state (engine load, breakers, budgets), which
 * per-request routing weighs after this recommendation; nor any allocation.
 */
#include <inttypes.h>
#include <stdio.h>

#include "edgeagent/router.h"

/* The framework's points (docs/ROUTING.md). */
#define WEIGHT_LATENCY_SENSITIVE 2
#define WEIGHT_PRIVATE_DATA 2
#define WEIGHT_HIGH_VOLUME 1
#define WEIGHT_LARGE_MODEL 3
#define VOLUME_THRESHOLD_PER_DAY 1000

void ea_router_weights_default(struct ea_router_weights *w)
{
    w->latency_sensitive = WEIGHT_LATENCY_SENSITIVE;
    w->private_data = WEIGHT_PRIVATE_DATA;
    w->high_volume = WEIGHT_HIGH_VOLUME;
    w->large_model = WEIGHT_LARGE_MODEL;
    w->volume_threshold = VOLUME_THRESHOLD_PER_DAY;
}

static void add(struct ea_route_decision *d, enum ea_route_factor f, int32_t points,
                enum ea_route_target side)
{
    if (points == 0)
        return; /* a factor weighted 0 is switched off: it explains nothing */
    if (side == EA_ROUTE_EDGE)
        d->edge_score += points;
    else
        d->cloud_score += points;
    d->reasons[d->n_reasons++] = (struct ea_route_reason){f, points, side};
}

void ea_router_decide(const struct ea_task_profile *p, const struct ea_router_weights *w,
                      struct ea_route_decision *out)
{
    struct ea_router_weights def;
    if (!w) {
        ea_router_weights_default(&def);
        w = &def;
    }
    out->edge_score = out->cloud_score = 0;
    out->n_reasons = 0;
    if (p->latency_sensitive)
        add(out, EA_FACTOR_LATENCY_SENSITIVE, w->latency_sensitive, EA_ROUTE_EDGE);
    if (p->handles_private_data)
        add(out, EA_FACTOR_PRIVATE_DATA, w->private_data, EA_ROUTE_EDGE);
    if (p->request_volume_per_day > w->volume_threshold)
        add(out, EA_FACTOR_HIGH_VOLUME, w->high_volume, EA_ROUTE_EDGE);
    if (p->requires_large_model)
        add(out, EA_FACTOR_LARGE_MODEL, w->large_model, EA_ROUTE_CLOUD);
    /* the rules in their order: both sides want it, then the larger score,
     * and a tie (nothing scored included) goes to the cloud */
    if (out->edge_score > 0 && out->cloud_score > 0)
        out->target = EA_ROUTE_HYBRID;
    else if (out->edge_score > out->cloud_score)
        out->target = EA_ROUTE_EDGE;
    else
        out->target = EA_ROUTE_CLOUD;
    out->reasons[out->n_reasons++] = (struct ea_route_reason){EA_FACTOR_RULE, 0, out->target};
}

const char *ea_route_target_name(enum ea_route_target t)
{
    switch (t) {
    case EA_ROUTE_EDGE: return "EDGE";
    case EA_ROUTE_CLOUD: return "CLOUD";
    case EA_ROUTE_HYBRID: return "HYBRID";
    }
    return "?";
}

const char *ea_route_reason_format(const struct ea_route_reason *r,
                                   const struct ea_route_decision *d,
                                   const struct ea_task_profile *p,
                                   const struct ea_router_weights *w, char *buf, size_t size)
{
    struct ea_router_weights def;
    if (!w) {
        ea_router_weights_default(&def);
        w = &def;
    }
    const char *side = r->side == EA_ROUTE_EDGE ? "edge" : "cloud";
    if (!size)
        return buf;
    switch (r->factor) {
    case EA_FACTOR_LATENCY_SENSITIVE:
        snprintf(buf, size, "latency-sensitive: %s %+" PRId32, side, r->points);
        break;
    case EA_FACTOR_PRIVATE_DATA:
        snprintf(buf, size, "handles private data: %s %+" PRId32, side, r->points);
        break;
    case EA_FACTOR_HIGH_VOLUME:
        snprintf(buf, size, "volume %" PRIu64 "/day > %" PRIu64 ": %s %+" PRId32,
                 p->request_volume_per_day, w->volume_threshold, side, r->points);
        break;
    case EA_FACTOR_LARGE_MODEL:
        snprintf(buf, size, "requires a large model: %s %+" PRId32, side, r->points);
        break;
    case EA_FACTOR_RULE:
        if (r->side == EA_ROUTE_HYBRID)
            snprintf(buf, size, "edge %" PRId32 " and cloud %" PRId32 " both > 0: HYBRID",
                     d->edge_score, d->cloud_score);
        else if (r->side == EA_ROUTE_EDGE)
            snprintf(buf, size, "edge %" PRId32 " > cloud %" PRId32 ": EDGE", d->edge_score,
                     d->cloud_score);
        else
            snprintf(buf, size, "edge %" PRId32 " <= cloud %" PRId32 ": CLOUD", d->edge_score,
                     d->cloud_score);
        break;
    default:
        snprintf(buf, size, "?");
    }
    return buf;
}
