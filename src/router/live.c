/* live.c - the router's live state: per upstream a circuit breaker, the
 * requests in flight, a window of observed times to first token and
 * counters, under one mutex (every operation is a few field updates).
 *
 * Breaker: CLOSED counts consecutive failures; at params.breaker_failures
 * it OPENs for a cool-down (breaker_cooldown_ms, doubled on each reopening
 * up to breaker_cooldown_max_ms); when the cool-down has passed, the next
 * ea_router_begin is the one HALF_OPEN probe: its success closes the
 * breaker (and resets the cool-down), its failure reopens it for longer.
 * Neutral outcomes (cancelled, the request's own fault) change nothing
 * except that a neutral probe lets the next request probe.
 * Does not hold: the plan (plan.c), the attempts (the server), clocks (the
 * caller passes monotonic milliseconds).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/router.h"
#include "router/router_int.h"

void ea_router_params_default(struct ea_router_params *p)
{
    p->breaker_failures = 5;
    p->breaker_cooldown_ms = 1000;
    p->breaker_cooldown_max_ms = 60000;
    p->retries = 1;
    p->retry_base_ms = 100;
    p->retry_max_ms = 2000;
    p->hedge_min_ms = 50;
}

ea_status ea_router_create(const struct ea_router_config *cfg, const struct ea_router_params *p,
                           ea_router **out, struct ea_error *err)
{
    *out = NULL;
    if (!cfg || cfg->n_upstreams == 0)
        return ea_error_set(err, EA_EINVAL, "router: no upstream configured");
    ea_router *r = ea_calloc(1, sizeof *r);
    if (r)
        r->up = ea_calloc(cfg->n_upstreams, sizeof *r->up);
    if (!r || !r->up) {
        if (r)
            ea_free(r->up);
        ea_free(r);
        return ea_error_set(err, EA_ENOMEM, "router: out of memory");
    }
    r->cfg = cfg;
    r->p = p ? *p : cfg->routing.params;
    if (r->p.breaker_failures == 0)
        r->p.breaker_failures = 1;
    pthread_mutex_init(&r->mu, NULL);
    for (size_t i = 0; i < cfg->n_upstreams; i++)
        r->up[i].cooldown_ms = r->p.breaker_cooldown_ms;
    *out = r;
    return EA_OK;
}

void ea_router_destroy(ea_router *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->mu);
    ea_free(r->up);
    ea_free(r);
}

const struct ea_router_config *ea_router_get_config(const ea_router *r) { return r->cfg; }
const struct ea_router_params *ea_router_get_params(const ea_router *r) { return &r->p; }

/* The breaker's state at now (an expired OPEN reads as HALF_OPEN). */
static enum ea_breaker_state state_at(const struct ea__upstream_live *u, double now_ms)
{
    if (u->state == EA_BREAKER_OPEN && now_ms >= u->open_until_ms)
        return EA_BREAKER_HALF_OPEN;
    return u->state;
}

enum ea_breaker_state ea__router_breaker_locked(ea_router *r, size_t u, double now_ms)
{
    return state_at(&r->up[u], now_ms);
}

bool ea_router_begin(ea_router *r, size_t u, double now_ms, bool *probe)
{
    *probe = false;
    pthread_mutex_lock(&r->mu);
    struct ea__upstream_live *l = &r->up[u];
    const struct ea_upstream_config *c = &r->cfg->upstreams[u];
    bool ok = true;
    enum ea_breaker_state st = state_at(l, now_ms);
    if (st == EA_BREAKER_OPEN)
        ok = false;
    else if (st == EA_BREAKER_HALF_OPEN) {
        if (l->probe_out)
            ok = false;
        else {
            l->state = EA_BREAKER_HALF_OPEN;
            l->probe_out = true;
            *probe = true;
        }
    }
    if (ok && c->max_concurrent && l->in_flight >= c->max_concurrent) {
        ok = false;
        if (*probe) {
            l->probe_out = false;
            *probe = false;
        }
    }
    if (ok) {
        l->in_flight++;
        l->requests++;
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static void open_locked(ea_router *r, struct ea__upstream_live *l, double now_ms)
{
    l->state = EA_BREAKER_OPEN;
    l->open_until_ms = now_ms + l->cooldown_ms;
    l->breaker_opens++;
    uint64_t next = (uint64_t)l->cooldown_ms * 2;
    l->cooldown_ms = next > r->p.breaker_cooldown_max_ms ? r->p.breaker_cooldown_max_ms
                                                          : (uint32_t)next;
}

void ea_router_end(ea_router *r, size_t u, enum ea_attempt_outcome o, double ttft_ms, bool probe,
                   double now_ms)
{
    pthread_mutex_lock(&r->mu);
    struct ea__upstream_live *l = &r->up[u];
    if (l->in_flight)
        l->in_flight--;
    if (probe)
        l->probe_out = false;
    if (ttft_ms >= 0) {
        l->ttft[l->ttft_next] = ttft_ms;
        l->ttft_next = (l->ttft_next + 1) % EA_ROUTER_TTFT_WINDOW;
        if (l->n_ttft < EA_ROUTER_TTFT_WINDOW)
            l->n_ttft++;
        l->new_samples++;
    }
    if (o == EA_ATTEMPT_OK) {
        l->consecutive = 0;
        if (l->state != EA_BREAKER_CLOSED && (probe || state_at(l, now_ms) != EA_BREAKER_OPEN)) {
            l->state = EA_BREAKER_CLOSED;
            l->cooldown_ms = r->p.breaker_cooldown_ms;
        }
    } else if (o == EA_ATTEMPT_FAILED) {
        l->failures++;
        l->consecutive++;
        if (probe || l->state == EA_BREAKER_HALF_OPEN)
            open_locked(r, l, now_ms);
        else if (l->state == EA_BREAKER_CLOSED && l->consecutive >= r->p.breaker_failures)
            open_locked(r, l, now_ms);
    }
    pthread_mutex_unlock(&r->mu);
}

void ea_router_count_fallback(ea_router *r, size_t u)
{
    pthread_mutex_lock(&r->mu);
    r->up[u].fallbacks++;
    pthread_mutex_unlock(&r->mu);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The window's nearest-rank p50 and p95 (< 0 when empty), recomputed from a
 * sorted copy only when samples came since (at most every
 * EA__TTFT_RECOMPUTE new samples or EA__TTFT_RECOMPUTE_MS, so a plan costs
 * a few hundred nanoseconds; slightly stale percentiles route the same). */
#define EA__TTFT_RECOMPUTE 8
#define EA__TTFT_RECOMPUTE_MS 100.0

static void percentiles_locked(struct ea__upstream_live *l, double now_ms, double *p50, double *p95)
{
    bool first = l->n_ttft && !l->pct_valid;
    if (first || (l->new_samples && (l->new_samples >= EA__TTFT_RECOMPUTE ||
                                     now_ms - l->pct_at_ms >= EA__TTFT_RECOMPUTE_MS))) {
        double v[EA_ROUTER_TTFT_WINDOW];
        memcpy(v, l->ttft, sizeof v[0] * l->n_ttft); /* the first n_ttft slots are filled */
        qsort(v, l->n_ttft, sizeof v[0], cmp_double);
        l->p50 = v[(size_t)ceil(0.50 * l->n_ttft) - 1];
        l->p95 = v[(size_t)ceil(0.95 * l->n_ttft) - 1];
        l->pct_valid = true;
        l->new_samples = 0;
        l->pct_at_ms = now_ms;
    }
    *p50 = l->pct_valid ? l->p50 : -1;
    *p95 = l->pct_valid ? l->p95 : -1;
}

void ea__router_ttft_locked(ea_router *r, size_t u, double now_ms, double *p50, double *p95)
{
    percentiles_locked(&r->up[u], now_ms, p50, p95);
}

void ea_router_status(ea_router *r, size_t u, double now_ms, struct ea_upstream_status *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&r->mu);
    struct ea__upstream_live *l = &r->up[u];
    st->breaker = state_at(l, now_ms);
    st->in_flight = l->in_flight;
    st->consecutive_failures = l->consecutive;
    st->retry_after_ms = st->breaker == EA_BREAKER_OPEN ? l->open_until_ms - now_ms : 0;
    percentiles_locked(l, now_ms, &st->ttft_p50_ms, &st->ttft_p95_ms);
    st->n_ttft = l->n_ttft;
    st->requests = l->requests;
    st->failures = l->failures;
    st->fallbacks = l->fallbacks;
    st->breaker_opens = l->breaker_opens;
    pthread_mutex_unlock(&r->mu);
}
