/* plan.c - the per-request plan: which configured upstreams a request may
 * try, in which order, and whether the first is hedged by the second. The
 * steps, in the order docs/ROUTING.md ("Per-request routing") gives them:
 *   1. candidates: the pinned upstream, else the task's list, else all;
 *      the request's limits remove tier-cloud ones (allow_cloud: false,
 *      local_only privacy) on every path, since later attempts only ever
 *      come from this list;
 *   2. the mode orders the sides (edge_only / cloud_only keep one side,
 *      prefer_* put one first, hybrid hedges, auto follows ea_router_decide);
 *   3. the local engine: not loaded, or a prompt that does not fit its
 *      context, drops it (when anything else is left); a predicted time over
 *      the budget puts it after the remote ones;
 *   4. remote upstreams whose breaker is open are dropped; those whose
 *      observed p95 time to first token is over the budget go after the rest
 *      of their side.
 * Also the retry backoff. Does not hold: the live state (live.c) or the
 * attempts (the server).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "edgeagent/router.h"
#include "router/router_int.h"

/* Without a budget, a hybrid request hedges after this long without a token. */
#define EA__HEDGE_DEFAULT_MS 1000

double ea_router_predict_local_ms(const struct ea_local_load *l, int32_t prompt_tokens,
                                  int32_t max_tokens)
{
    if (!l->have_stats || l->prefill_tok_s <= 0)
        return 0;
    double wait = 0;
    int32_t slots = l->max_running > 0 ? l->max_running : 1;
    if (l->running >= slots || l->queue_depth > 0) {
        /* the requests ahead each hold a slot for about a mean request */
        double mean = l->mean_request_ms > 0 ? l->mean_request_ms : 0;
        wait = (double)(l->queue_depth + 1) * mean / slots;
    }
    double prefill = prompt_tokens > 0 ? prompt_tokens * 1000.0 / l->prefill_tok_s : 0;
    double decode = max_tokens > 0 ? max_tokens * l->decode_step_ms : 0;
    return wait + prefill + decode;
}

uint32_t ea_router_backoff_ms(const ea_router *r, uint32_t attempt, double retry_after_ms,
                              uint64_t rnd)
{
    if (retry_after_ms > 0)
        return retry_after_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)retry_after_ms;
    uint64_t cap = r->p.retry_base_ms;
    for (uint32_t i = 1; i < attempt && cap < r->p.retry_max_ms; i++)
        cap *= 2;
    if (cap > r->p.retry_max_ms)
        cap = r->p.retry_max_ms;
    return cap ? (uint32_t)(rnd % (cap + 1)) : 0; /* full jitter */
}

static void say(struct ea_route_plan *p, const char *fmt, ...)
{
    size_t n = strlen(p->reason);
    if (n + 3 >= sizeof p->reason)
        return;
    if (n) {
        memcpy(p->reason + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->reason + n, sizeof p->reason - n, fmt, ap);
    va_end(ap);
}

static bool edge_side(const struct ea_upstream_config *u) { return u->tier != EA_TIER_CLOUD; }

/* Moves the entries for which pred(u) holds to the front, keeping order. */
static void front(const struct ea_router_config *cfg, uint32_t *o, uint32_t n,
                  bool (*pred)(const struct ea_upstream_config *), bool want)
{
    uint32_t t[EA_ROUTE_MAX_PLAN], k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (pred(&cfg->upstreams[o[i]]) == want)
            t[k++] = o[i];
    for (uint32_t i = 0; i < n; i++)
        if (pred(&cfg->upstreams[o[i]]) != want)
            t[k++] = o[i];
    memcpy(o, t, sizeof t[0] * n);
}

/* Removes entry i. */
static void drop(struct ea_route_plan *p, uint32_t i)
{
    memmove(&p->order[i], &p->order[i + 1], sizeof p->order[0] * (p->n - i - 1));
    p->n--;
}

/* Moves entry i to the end of the entries of its side (stable). */
static void demote(const struct ea_router_config *cfg, struct ea_route_plan *p, uint32_t i)
{
    uint32_t u = p->order[i];
    bool side = edge_side(&cfg->upstreams[u]);
    uint32_t j = i;
    while (j + 1 < p->n && edge_side(&cfg->upstreams[p->order[j + 1]]) == side) {
        p->order[j] = p->order[j + 1];
        j++;
    }
    p->order[j] = u;
}

static enum ea_task_mode effective_mode(const struct ea_router_config *cfg,
                                        const struct ea_route_input *in, struct ea_route_plan *p)
{
    enum ea_task_mode mode = in->task ? in->task->mode : cfg->routing.default_mode;
    if (mode != EA_MODE_AUTO)
        return mode;
    struct ea_task_profile none = {0};
    ea_router_decide(in->task ? &in->task->profile : &none, &cfg->routing.weights, &p->decision);
    p->has_decision = true;
    say(p, "auto: %s (edge %d, cloud %d)", ea_route_target_name(p->decision.target),
        (int)p->decision.edge_score, (int)p->decision.cloud_score);
    return p->decision.target == EA_ROUTE_EDGE    ? EA_MODE_PREFER_EDGE
           : p->decision.target == EA_ROUTE_CLOUD ? EA_MODE_PREFER_CLOUD
                                                  : EA_MODE_HYBRID;
}

/* Step 1: the candidates the request may use at all. */
static void candidates(const struct ea_router_config *cfg, const struct ea_route_input *in,
                       struct ea_route_plan *p)
{
    const struct ea_task_config *t = in->task;
    size_t n = in->pinned >= 0 ? 1 : t && t->n_upstreams ? t->n_upstreams : cfg->n_upstreams;
    uint32_t removed = 0;
    for (size_t i = 0; i < n && p->n < EA_ROUTE_MAX_PLAN; i++) {
        size_t u = in->pinned >= 0 ? (size_t)in->pinned : t && t->n_upstreams ? t->upstreams[i] : i;
        /* allow_cloud false: no cloud tier; local_only: the device only */
        enum ea_upstream_tier tier = cfg->upstreams[u].tier;
        bool private_ok = tier == EA_TIER_DEVICE || (tier == EA_TIER_EDGE_NODE && in->local_edge_node);
        if ((!in->allow_cloud && tier == EA_TIER_CLOUD) || (in->local_only && !private_ok)) {
            removed++;
            continue;
        }
        p->order[p->n++] = (uint32_t)u;
    }
    if (in->pinned >= 0)
        say(p, "pinned to %s", cfg->upstreams[in->pinned].name);
    if (removed)
        say(p, "%s: %u %s upstream%s excluded", in->local_only ? "local_only" : "allow_cloud false",
            removed, in->local_only ? "remote" : "cloud", removed == 1 ? "" : "s");
}

/* Step 2: sides by mode. Returns whether to hedge. */
static bool by_mode(const struct ea_router_config *cfg, enum ea_task_mode mode,
                    struct ea_route_plan *p)
{
    if (mode == EA_MODE_EDGE_ONLY || mode == EA_MODE_CLOUD_ONLY) {
        bool keep_edge = mode == EA_MODE_EDGE_ONLY;
        for (uint32_t i = 0; i < p->n;)
            if (edge_side(&cfg->upstreams[p->order[i]]) != keep_edge)
                drop(p, i);
            else
                i++;
        say(p, "%s", ea_task_mode_name(mode));
        return false;
    }
    bool edge_first = mode != EA_MODE_PREFER_CLOUD; /* cascade: the edge model first */
    front(cfg, p->order, p->n, edge_side, edge_first);
    if (mode != EA_MODE_AUTO && !p->has_decision)
        say(p, "%s", ea_task_mode_name(mode));
    return mode == EA_MODE_HYBRID;
}

/* Step 3: the local engine. */
static void local_checks(ea_router *r, const struct ea_route_input *in, uint32_t budget,
                         struct ea_route_plan *p)
{
    const struct ea_router_config *cfg = r->cfg;
    for (uint32_t i = 0; i < p->n; i++) {
        const struct ea_upstream_config *u = &cfg->upstreams[p->order[i]];
        if (u->kind != EA_UPSTREAM_LOCAL)
            continue;
        if (!in->local.loaded && p->n > 1) {
            say(p, "%s: no model loaded", u->name);
            drop(p, i);
            return;
        }
        if (in->local.max_context > 0 && in->prompt_tokens >= in->local.max_context && p->n > 1) {
            say(p, "%s: prompt of %d tokens does not fit its context of %d", u->name,
                (int)in->prompt_tokens, (int)in->local.max_context);
            drop(p, i);
            return;
        }
        double pred = ea_router_predict_local_ms(&in->local, in->prompt_tokens, in->max_tokens);
        if (budget && pred > budget) {
            bool remote_after = false;
            for (uint32_t j = 0; j < p->n; j++)
                remote_after |= cfg->upstreams[p->order[j]].kind != EA_UPSTREAM_LOCAL;
            if (remote_after) {
                say(p, "%s: predicted %.0f ms > budget %u ms", u->name, pred, (unsigned)budget);
                uint32_t v = p->order[i];
                memmove(&p->order[i], &p->order[i + 1], sizeof p->order[0] * (p->n - i - 1));
                p->order[p->n - 1] = v;
            }
        } else if (budget && in->local.have_stats && p->order[0] == p->order[i]) {
            say(p, "%s: predicted %.0f ms within %u ms", u->name, pred, (unsigned)budget);
        }
        return;
    }
}

/* Step 4: remote health. */
static void remote_checks(ea_router *r, uint32_t budget, double now_ms, struct ea_route_plan *p)
{
    const struct ea_router_config *cfg = r->cfg;
    uint32_t open = 0;
    double soonest = -1;
    pthread_mutex_lock(&r->mu);
    for (uint32_t i = 0; i < p->n;) {
        size_t u = p->order[i];
        if (cfg->upstreams[u].kind == EA_UPSTREAM_LOCAL) {
            i++;
            continue;
        }
        if (ea__router_breaker_locked(r, u, now_ms) == EA_BREAKER_OPEN) {
            double left = r->up[u].open_until_ms - now_ms;
            if (soonest < 0 || left < soonest)
                soonest = left;
            open++;
            drop(p, i);
            continue;
        }
        i++;
    }
    if (budget) {
        /* slow remotes after the others of their side; one pass, from the end */
        for (uint32_t i = p->n; i-- > 0;) {
            size_t u = p->order[i];
            if (cfg->upstreams[u].kind == EA_UPSTREAM_LOCAL)
                continue;
            double p50, p95;
            ea__router_ttft_locked(r, u, now_ms, &p50, &p95);
            if (p95 > budget) {
                say(p, "%s: p95 first token %.0f ms > budget", cfg->upstreams[u].name, p95);
                demote(cfg, p, i);
            }
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (open)
        say(p, "%u breaker%s open", open, open == 1 ? "" : "s");
    if (!p->n && open)
        p->retry_after_ms = soonest > 0 ? soonest : 1;
}

void ea_router_plan(ea_router *r, const struct ea_route_input *in, double now_ms,
                    struct ea_route_plan *p)
{
    const struct ea_router_config *cfg = r->cfg;
    memset(p, 0, sizeof *p);
    uint32_t budget = in->max_latency_ms          ? in->max_latency_ms
                      : in->task && in->task->profile.max_latency_ms ? in->task->profile.max_latency_ms
                                                     : cfg->routing.default_max_latency_ms;
    p->budget_ms = budget;
    candidates(cfg, in, p);
    bool hedge = false;
    if (in->pinned < 0)
        hedge = by_mode(cfg, effective_mode(cfg, in, p), p);
    local_checks(r, in, budget, p);
    remote_checks(r, budget, now_ms, p);
    if (!p->n) {
        if (!p->reason[0])
            say(p, "no upstream may serve this request");
        p->target = EA_ROUTE_EDGE;
        return;
    }
    bool first_edge = edge_side(&cfg->upstreams[p->order[0]]);
    p->target = first_edge ? EA_ROUTE_EDGE : EA_ROUTE_CLOUD;
    p->cascade = in->pinned < 0 && first_edge && in->task && in->task->mode == EA_MODE_CASCADE;
    /* hedge: the first is on the edge and a remote one exists: it goes second */
    if (hedge && first_edge) {
        for (uint32_t j = 1; j < p->n; j++) {
            if (cfg->upstreams[p->order[j]].kind == EA_UPSTREAM_LOCAL)
                continue;
            uint32_t v = p->order[j];
            memmove(&p->order[2], &p->order[1], sizeof p->order[0] * (j - 1));
            p->order[1] = v;
            p->hedge = true;
            break;
        }
    }
    if (p->hedge) {
        double delay = budget ? budget / 2.0 : EA__HEDGE_DEFAULT_MS;
        pthread_mutex_lock(&r->mu);
        double p50, p95;
        ea__router_ttft_locked(r, p->order[1], now_ms, &p50, &p95);
        pthread_mutex_unlock(&r->mu);
        if (budget && p50 > 0 && budget - p50 < delay)
            delay = budget - p50; /* leave the remote time to answer within the budget */
        if (delay < r->p.hedge_min_ms)
            delay = r->p.hedge_min_ms;
        p->hedge_delay_ms = (uint32_t)delay;
        p->target = EA_ROUTE_HYBRID;
        say(p, "hedge %s after %u ms", cfg->upstreams[p->order[1]].name, (unsigned)p->hedge_delay_ms);
    }
    say(p, "first: %s", cfg->upstreams[p->order[0]].name);
}
