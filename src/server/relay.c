/* relay.c - one generation's attempts over the configured upstreams (see
 * relay.h for the rules), and the server's relay worker thread.
 *
 * Threads. relay_wake runs under the generation's queue mutex (the shared
 * "lock") on a producer's thread: the engine thread for the local upstream,
 * the cloud client's thread for remote ones. It only moves output, records
 * outcomes and queues work. Starting and cancelling attempts run with no
 * lock held: on the HTTP thread (the first attempt) or on the worker. Lock
 * order: the queue's mutex, then the router's, the worker's or the ledger's
 * queue (none calls out while held; the ledger's callbacks run without it).
 * Does not hold: the plan (src/router/plan.c), formatting (generate.c).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgeagent/privacy.h"
#include "server/relay.h"
#include "server/server_int.h"
#include "server/upstream.h"
#include "util/threadpool.h"

/* ---- the worker ----------------------------------------------------------------- */

struct ea__relay_worker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct ea__relay *head; /* queued relays, unordered (few at a time) */
    bool stop;
    pthread_t thread;
};

static void relay_advance(struct ea__relay *rl);

static void *worker_main(void *arg)
{
    struct ea__relay_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        /* the earliest due relay (all of them at once when stopping) */
        struct ea__relay **best = NULL;
        for (struct ea__relay **p = &w->head; *p; p = &(*p)->work_next)
            if (!best || (*p)->work_due < (*best)->work_due)
                best = p;
        if (!best) {
            if (w->stop)
                break;
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        double now = ea__now_ms();
        if (!w->stop && (*best)->work_due > now) {
            double wait = (*best)->work_due - now;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            long long ns = ts.tv_nsec + (long long)(wait * 1e6);
            ts.tv_sec += (time_t)(ns / 1000000000LL);
            ts.tv_nsec = (long)(ns % 1000000000LL);
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
            continue;
        }
        struct ea__relay *rl = *best;
        *best = rl->work_next;
        rl->work_next = NULL;
        rl->work_queued = false;
        pthread_mutex_unlock(&w->mu);
        relay_advance(rl);
        ea__genq_unref(rl->root); /* the worker's reference */
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

ea_status ea__relay_worker_create(struct ea__relay_worker **out, struct ea_error *err)
{
    *out = NULL;
    struct ea__relay_worker *w = ea_calloc(1, sizeof *w);
    if (!w)
        return ea_error_set(err, EA_ENOMEM, "relay worker: out of memory");
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (ea__thread_start(&w->thread, worker_main, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        ea_free(w);
        return ea_error_set(err, EA_EIO, "relay worker: cannot start a thread");
    }
    *out = w;
    return EA_OK;
}

void ea__relay_worker_destroy(struct ea__relay_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    ea_free(w);
}

/* Under the lock: queues rl for the worker at due (earlier wins). */
static void schedule_locked(struct ea__relay *rl, double due)
{
    struct ea__relay_worker *w = rl->srv->relay_worker;
    pthread_mutex_lock(&w->mu);
    if (rl->work_queued) {
        if (due < rl->work_due)
            rl->work_due = due;
    } else {
        ea__genq_ref_locked(rl->root); /* the worker's, dropped after relay_advance */
        rl->work_queued = true;
        rl->work_due = due;
        rl->work_next = w->head;
        w->head = rl;
    }
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* ---- outcomes ---------------------------------------------------------------------- */

static const char *fail_name(enum ea__fail f, int http_status, char *buf, size_t cap)
{
    switch (f) {
    case EA__FAIL_NONE: return "ok";
    case EA__FAIL_CONNECT: return "connect_error";
    case EA__FAIL_TIMEOUT: return "timeout";
    case EA__FAIL_HTTP_429: return "http_429";
    case EA__FAIL_HTTP_5XX:
        if (http_status >= 500 && http_status <= 599) {
            snprintf(buf, cap, "http_%d", http_status);
            return buf;
        }
        return "bad_reply";
    case EA__FAIL_REJECTED:
        snprintf(buf, cap, "http_%d", http_status ? http_status : 400);
        return buf;
    case EA__FAIL_OVERLOADED: return "overloaded";
    case EA__FAIL_NOT_LOADED: return "not_loaded";
    case EA__FAIL_CONTEXT: return "context_too_long";
    case EA__FAIL_HANDOFF: return "handoff";
    case EA__FAIL_INTERNAL: break;
    }
    return "error";
}

/* The fallback_on trigger a failure class answers to (0: none, never moves on). */
static uint32_t trigger_of(enum ea__fail f)
{
    switch (f) {
    case EA__FAIL_CONNECT: return EA_FALLBACK_CONNECT_ERROR;
    case EA__FAIL_TIMEOUT: return EA_FALLBACK_TIMEOUT;
    case EA__FAIL_HTTP_429: return EA_FALLBACK_HTTP_429;
    case EA__FAIL_HTTP_5XX:
    case EA__FAIL_INTERNAL: return EA_FALLBACK_HTTP_5XX;
    case EA__FAIL_OVERLOADED: return EA_FALLBACK_OVERLOADED;
    case EA__FAIL_NOT_LOADED: return EA_FALLBACK_NOT_LOADED;
    case EA__FAIL_CONTEXT: return EA_FALLBACK_CONTEXT_TOO_LONG;
    case EA__FAIL_NONE:
    case EA__FAIL_HANDOFF: /* moves on whatever the triggers (next_locked) */
    case EA__FAIL_REJECTED: break;
    }
    return 0;
}

/* Whether a failure says something about the upstream's health (the
 * breaker): the request's own faults and a full local queue do not. */
static bool health_failure(enum ea__fail f)
{
    return f == EA__FAIL_CONNECT || f == EA__FAIL_TIMEOUT || f == EA__FAIL_HTTP_429 ||
           f == EA__FAIL_HTTP_5XX || f == EA__FAIL_INTERNAL;
}

/* The class of a prepare/start error (an API error from the upstream). */
static enum ea__fail fail_of_api(const struct ea__api_error *e)
{
    if (e->status == 429 && e->code && !strcmp(e->code, "budget_exceeded"))
        return EA__FAIL_REJECTED; /* a spent budget: the client's answer, not a fallback */
    if (e->status == 429)
        return e->code && !strcmp(e->code, "server_overloaded") ? EA__FAIL_OVERLOADED
                                                                 : EA__FAIL_HTTP_429;
    if (e->code && !strcmp(e->code, "context_length_exceeded"))
        return EA__FAIL_CONTEXT;
    if (e->status == 503 && e->code && !strcmp(e->code, "model_not_loaded"))
        return EA__FAIL_NOT_LOADED;
    if (e->status >= 400 && e->status < 500)
        return EA__FAIL_REJECTED;
    return e->status == 502 || e->status == 504 ? EA__FAIL_HTTP_5XX : EA__FAIL_INTERNAL;
}

static const struct ea_upstream_config *ucfg(const struct ea__relay *rl, size_t u)
{
    return &ea_router_get_config(rl->srv->router)->upstreams[u];
}


/* The prompt tokens a's upstream counted. A remote upstream counts them only
 * in its usage: one that answered without it (cut stream, include_usage
 * ignored) still read the whole prompt, so its size is estimated
 * (*estimated set); one that produced nothing is taken to have read none. */
static int32_t prompt_tokens(const struct ea__relay *rl, const struct ea__attempt *a, bool *estimated)
{
    if (a->q.n_prompt_tokens > 0 || ucfg(rl, a->up)->kind == EA_UPSTREAM_LOCAL || !a->any_output)
        return a->q.n_prompt_tokens > 0 ? a->q.n_prompt_tokens : 0;
    *estimated = true;
    return ea__route_prompt_estimate(rl->req);
}
/* Under the lock: a's last choice ended; tells the router how it went. */
static void attempt_ended_locked(struct ea__relay *rl, struct ea__attempt *a)
{
    a->running = false;
    a->t_end = ea__now_ms();
    char b[16];
    snprintf(a->outcome, sizeof a->outcome, "%s",
             a->cancelled && a->fail == EA__FAIL_NONE ? "cancelled"
                                                       : fail_name(a->fail, a->http_status, b, sizeof b));
    if (a->slot) {
        enum ea_attempt_outcome o = a->fail == EA__FAIL_NONE && !a->cancelled ? EA_ATTEMPT_OK
                                    : health_failure(a->fail)                ? EA_ATTEMPT_FAILED
                                                                             : EA_ATTEMPT_NEUTRAL;
        ea_router_end(rl->srv->router, a->up, o, a->ttft_ms, a->probe, ea__now_ms());
        a->slot = false;
    }
    if (a->res.active) {
        /* what the attempt used, at its price (the ledger's cloud cost) */
        int32_t out = 0;
        for (int i = 0; i < a->q.n_choices; i++)
            out += a->q.c[i].done ? a->q.c[i].end.n_generated : 0;
        const struct ea_upstream_config *u = ucfg(rl, a->up);
        bool est = false;
        double used = ea_ledger_worst_case_usd(&u->price, (uint64_t)prompt_tokens(rl, a, &est), (uint64_t)out);
        ea_ledger_budget_settle(rl->srv->p.ledger, &a->res, used);
    }
}

/* ---- the final error ------------------------------------------------------------------- */

/* Under the lock: the error the client gets when no attempt answered, from
 * the last failed attempt: what the upstream said for the request's own
 * faults (a 4xx as it is), else a 502/504 (429 when rate limited) naming
 * the upstream and how it failed. why: what the router adds in front. */
static void set_error_locked(struct ea__relay *rl, const struct ea__attempt *a, const char *why)
{
    struct ea__api_error *e = &rl->err;
    rl->has_err = true;
    if (a && a->has_api && (a->fail == EA__FAIL_REJECTED || a->fail == EA__FAIL_CONTEXT ||
                            a->fail == EA__FAIL_OVERLOADED || a->fail == EA__FAIL_NOT_LOADED)) {
        *e = a->api;
        return;
    }
    const char *name = a ? ucfg(rl, a->up)->name : "router";
    char b[16], detail[EA__ATTEMPT_MSG_MAX + 8] = "";
    if (a && a->msg[0])
        snprintf(detail, sizeof detail, ": %s", a->msg);
    const char *fw = a ? fail_name(a->fail, a->http_status, b, sizeof b) : "";
    if (a && a->fail == EA__FAIL_REJECTED) {
        ea__api_errorf(e, a->http_status ? a->http_status : 400, "invalid_request_error",
                       "upstream_rejected", NULL, "upstream %s refused the request (%s)%s", name, fw,
                       detail);
    } else if (a && (a->fail == EA__FAIL_HTTP_429 || a->fail == EA__FAIL_OVERLOADED)) {
        ea__api_errorf(e, 429, "rate_limit_error", "upstream_rate_limited", NULL,
                       "%s%supstream %s is rate limited%s", why ? why : "", why ? ": " : "", name,
                       detail);
        double ra = a->retry_after_ms > 0 ? a->retry_after_ms : 1000;
        e->retry_after_s = (unsigned)ceil(ra / 1000.0);
    } else if (a) {
        ea__api_errorf(e, a->fail == EA__FAIL_TIMEOUT ? 504 : 502, "server_error", "upstream_failed",
                       NULL, "%s%supstream %s failed (%s)%s", why ? why : "", why ? ": " : "", name,
                       fw, detail);
    } else {
        ea__api_errorf(e, 503, "server_error", "no_upstream_available", NULL, "%s",
                       why ? why : "no upstream could take the request");
    }
}

/* Under the lock: ends every root choice not ended with the relay's error. */
static void finish_failed_locked(struct ea__relay *rl)
{
    if (rl->final)
        return;
    rl->final = true;
    rl->hedge_pending = false;
    struct ea__genq *root = rl->root;
    for (int i = 0; i < root->n_choices; i++) {
        if (root->c[i].done)
            continue;
        struct ea__genq_end end = {.finish = EA_FINISH_ERROR, .status = EA_EIO, .ttft_ms = -1,
                                   .fail = EA__FAIL_INTERNAL, .error = rl->err.message};
        ea__genq_end_locked(root, i, &end);
        root->wake(root->user, i, true);
    }
}

/* ---- the wake callback of every attempt's queue ------------------------------------------- */

static bool any_running_locked(const struct ea__relay *rl, const struct ea__attempt *except)
{
    for (int k = 0; k < rl->n_att; k++)
        if (rl->att[k] != except && rl->att[k]->running)
            return true;
    return false;
}

static int index_of(const struct ea__relay *rl, const struct ea__attempt *a)
{
    for (int k = 0; k < rl->n_att; k++)
        if (rl->att[k] == a)
            return k;
    return -1;
}

/* Under the lock: a becomes the winner; the others are to be cancelled. */
static void win_locked(struct ea__relay *rl, struct ea__attempt *a)
{
    rl->winner = index_of(rl, a);
    rl->hedge_pending = false;
    rl->root->n_prompt_tokens = a->q.n_prompt_tokens;
    bool others = false;
    for (int k = 0; k < rl->n_att; k++)
        if (rl->att[k] != a && rl->att[k]->running) {
            rl->att[k]->cancel_req = true;
            others = true;
        }
    if (others)
        schedule_locked(rl, 0);
}

/* Under the lock: copies a's choice i into the root (output and end). */
static void forward_end_locked(struct ea__relay *rl, struct ea__attempt *a, int i)
{
    struct ea__genq *root = rl->root;
    ea__genq_move_locked(root, &a->q, i);
    if (a->q.overflow)
        root->overflow = true;
    /* a remote upstream learns its prompt tokens only from the stream's
     * usage, at its end: take them again (win_locked took them at the first output) */
    root->n_prompt_tokens = a->q.n_prompt_tokens;
    ea__genq_end_locked(root, i, &a->q.c[i].end);
}

/* Cascade (under the lock): whether a, the edge model's attempt, may not
 * win yet: its first choice's text so far (leading white space aside) is
 * a part of EA_ROUTER_HANDOFF_MARKER and more may come, or it is the
 * marker: a hand-off (a->fail HANDOFF; the attempt is stopped and the next
 * plan entry takes the request once it has ended). Nothing of it has
 * reached the client: output is held until an attempt wins. */
static bool handoff_pending_locked(struct ea__relay *rl, struct ea__attempt *a)
{
    if (a->handoff_checked || !rl->plan.cascade || a->up != rl->plan.order[0] || a != rl->att[0])
        return a->fail == EA__FAIL_HANDOFF;
    const struct ea__genq_choice *c = &a->q.c[0];
    if (c->pending.n_calls) { /* a tool call: the model took it */
        a->handoff_checked = true;
        return false;
    }
    const char *t = c->pending.text.data ? c->pending.text.data : "";
    size_t n = c->pending.text.len;
    while (n && (*t == ' ' || *t == '\n' || *t == '\t' || *t == '\r')) {
        t++;
        n--;
    }
    static const char marker[] = EA_ROUTER_HANDOFF_MARKER;
    const size_t m = sizeof marker - 1;
    if (n >= m && !memcmp(t, marker, m)) {
        a->handoff_checked = true;
        a->fail = EA__FAIL_HANDOFF;
        rl->handed_off = true;
        snprintf(a->outcome, sizeof a->outcome, "handoff");
        return true;
    }
    if (n < m && !memcmp(t, marker, n) && !c->done)
        return true; /* undecided: wait for more of it */
    a->handoff_checked = true;
    return false;
}

/* Under the lock: acts on a's state (the wake of any of its choices, or
 * its start returning). Output and ends are held in a's queue until its
 * start has returned: before that it may still be undone. Returns false
 * when a should stop producing (it lost, or the client left). */
static bool relay_update_locked(struct ea__relay *rl, struct ea__attempt *a, int i, bool finished)
{
    struct ea__genq *root = rl->root;
    if (!a->started_ok)
        return true;
    bool ended_ok = false;
    for (int k = 0; k < root->n_choices; k++) {
        const struct ea__genq_choice *c = &a->q.c[k];
        ended_ok |= c->done && c->end.finish != EA_FINISH_ERROR &&
                    c->end.finish != EA_FINISH_CANCELLED;
    }
    bool held = rl->winner < 0 && !rl->final && !rl->gone && (a->any_output || ended_ok) &&
                handoff_pending_locked(rl, a);
    if (held && a->fail != EA__FAIL_HANDOFF)
        return true; /* cascade: the edge model's first words are not known yet */
    if (rl->winner < 0 && !rl->final && !rl->gone && (a->any_output || ended_ok) && !held)
        win_locked(rl, a);
    bool is_winner = rl->winner >= 0 && rl->att[rl->winner] == a;
    bool go_on = is_winner;
    if (is_winner && rl->stream) {
        /* a stream is answered from this attempt: whatever it says goes out */
        if (a->q.overflow)
            root->overflow = true;
        for (int k = 0; k < root->n_choices; k++) {
            const struct ea__genq_choice *c = &a->q.c[k];
            if (root->c[k].done)
                continue;
            if (c->done) {
                if (c->end.finish == EA_FINISH_ERROR && !rl->has_err) {
                    char why[96];
                    snprintf(why, sizeof why, "the stream from %s broke", ucfg(rl, a->up)->name);
                    set_error_locked(rl, a, why);
                }
                forward_end_locked(rl, a, k);
                root->wake(root->user, k, true);
            } else if (c->pending.text.len || c->pending.n_lps || c->pending.n_calls) {
                ea__genq_move_locked(root, &a->q, k);
                bool more = root->wake(root->user, k, false);
                if (k == i && !finished)
                    go_on = more;
            }
        }
        if (root->n_done == root->n_choices)
            rl->final = true;
    } else if (is_winner && !finished && i >= 0) {
        go_on = root->wake(root->user, i, false); /* a waiting client may have left */
    }
    if (a->n_done < root->n_choices || !a->running)
        return go_on;
    attempt_ended_locked(rl, a);
    if (is_winner && rl->stream)
        return go_on;
    if (is_winner && a->fail == EA__FAIL_NONE && !a->cancelled) {
        /* a non-streamed answer: every choice ended well */
        for (int k = 0; k < root->n_choices; k++)
            forward_end_locked(rl, a, k);
        rl->final = true;
        for (int k = 0; k < root->n_choices; k++)
            root->wake(root->user, k, true);
        return go_on;
    }
    if (is_winner)
        rl->winner = -1; /* a non-streamed answer that failed: the client saw nothing */
    if (rl->final)
        return false;
    if (rl->gone) {
        rl->has_err = true;
        ea__api_errorf(&rl->err, 503, "server_error", "server_shutting_down", NULL,
                       "the server is shutting down; the generation was cancelled");
        finish_failed_locked(rl);
        return false;
    }
    if (rl->winner < 0 && !any_running_locked(rl, a))
        schedule_locked(rl, rl->hedge_pending ? 0 : rl->next_due);
    return false;
}

static bool relay_wake(void *user, int i, bool finished)
{
    struct ea__attempt *a = user;
    struct ea__relay *rl = a->rl;
    const struct ea__genq_choice *c = &a->q.c[i];
    if (!finished) {
        if (!c->pending.text.len && !c->pending.n_lps && !c->pending.n_calls)
            return true;
        if (!a->any_output) {
            a->any_output = true;
            a->ttft_ms = ea__now_ms() - a->t_start;
            ea__metrics_observe(&rl->srv->up_ttft[a->up], a->ttft_ms / 1e3, false);
        }
        if (rl->winner >= 0 && rl->att[rl->winner] != a)
            return false; /* lost: stop producing */
        return relay_update_locked(rl, a, i, false) && a->fail != EA__FAIL_HANDOFF;
    }
    a->n_done++;
    if (c->end.finish == EA_FINISH_ERROR && (a->fail == EA__FAIL_NONE || a->fail == EA__FAIL_HANDOFF)) {
        a->fail = c->end.fail != EA__FAIL_NONE ? c->end.fail : EA__FAIL_INTERNAL;
        a->http_status = c->end.http_status;
        a->retry_after_ms = c->end.retry_after_ms;
        snprintf(a->msg, sizeof a->msg, "%s", c->end.error ? c->end.error : "");
    }
    if (c->end.finish == EA_FINISH_CANCELLED)
        a->cancelled = true;
    relay_update_locked(rl, a, i, true);
    return true;
}

/* ---- starting attempts (no lock held) ------------------------------------------------------ */

enum start_result { START_OK, START_SKIPPED, START_FAILED };

/* Reserves the attempt's worst-case cloud cost (its prompt + max_tokens at
 * the upstream's price) before it is dispatched. False with *e when the
 * budget is spent: a 429 naming it (action reject), or a 503 that lets the
 * plan move on to the edge (action edge). */
static bool reserve_budget(struct ea__relay *rl, struct ea__attempt *a, struct ea__api_error *e)
{
    ea_ledger *l = rl->srv->p.ledger;
    const struct ea_upstream_config *u = ucfg(rl, a->up);
    if (!l || u->tier != EA_TIER_CLOUD)
        return true;
    uint64_t max_out = (uint64_t)(rl->req->max_tokens ? rl->req->max_tokens : rl->srv->p.max_tokens) *
                       (uint64_t)rl->root->n_choices;
    double worst = ea_ledger_worst_case_usd(&u->price, (uint64_t)ea__route_prompt_estimate(rl->req), max_out);
    struct ea_ledger_budget_over over;
    if (ea_ledger_budget_reserve(l, rl->task[0] ? rl->task : NULL, u->tier, worst, &a->res, &over) == EA_OK)
        return true;
    char msg[256];
    ea_ledger_budget_message(&over, msg, sizeof msg);
    if (over.action == EA_BUDGET_REJECT) {
        ea__api_errorf(e, 429, "rate_limit_error", "budget_exceeded", NULL, "%s", msg);
        e->retry_after_s = 60;
    } else {
        ea__api_errorf(e, 503, "server_error", "budget_exceeded", NULL, "%s: routed to the edge", msg);
    }
    return false;
}

/* Starts an attempt on upstream u. START_SKIPPED: the router refused a slot
 * (breaker open, max_concurrent); START_FAILED: prepare or start failed
 * (recorded as an attempt, *e filled). */
static enum start_result attempt_start(struct ea__relay *rl, size_t u, struct ea__api_error *e)
{
    ea_server *srv = rl->srv;
    struct ea__upstream *ups = srv->ups[u];
    bool probe = false;
    if (!ea_router_begin(srv->router, u, ea__now_ms(), &probe))
        return START_SKIPPED;
    struct ea__attempt *a = ea_calloc(1, sizeof *a);
    if (!a || ea__genq_init_child(&a->q, rl->root, relay_wake, a)) {
        ea_free(a);
        ea_router_end(srv->router, u, EA_ATTEMPT_NEUTRAL, -1, probe, ea__now_ms());
        ea__api_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
        return START_FAILED;
    }
    a->rl = rl;
    a->up = u;
    a->ups = ups;
    a->probe = probe;
    a->slot = true;
    a->ttft_ms = -1;
    a->t_start = ea__now_ms();
    pthread_mutex_lock(rl->root->lock);
    bool room = rl->n_att < EA__RELAY_MAX_ATTEMPTS && !rl->gone && !rl->final;
    if (room)
        rl->att[rl->n_att++] = a;
    pthread_mutex_unlock(rl->root->lock);
    if (!room) {
        ea__genq_release(&a->q);
        ea_free(a);
        ea_router_end(srv->router, u, EA_ATTEMPT_NEUTRAL, -1, probe, ea__now_ms());
        ea__api_errorf(e, 503, "server_error", "no_upstream_available", NULL,
                       "the request used its %d attempts", EA__RELAY_MAX_ATTEMPTS);
        return START_SKIPPED;
    }
    if (!reserve_budget(rl, a, e)) {
        pthread_mutex_lock(rl->root->lock);
        a->fail = EA__FAIL_REJECTED;
        a->http_status = e->status;
        snprintf(a->msg, sizeof a->msg, "%s", e->message);
        a->has_api = true;
        a->api = *e;
        attempt_ended_locked(rl, a);
        pthread_mutex_unlock(rl->root->lock);
        return e->status == 429 ? START_FAILED : START_SKIPPED;
    }
    bool ok = ups->ops->prepare(ups, rl->req, rl->req_id, &a->job, e);
    if (ok) {
        pthread_mutex_lock(rl->root->lock);
        a->running = true;
        pthread_mutex_unlock(rl->root->lock);
        ok = ups->ops->start(a->job, rl->req, rl->seed, &a->q, e);
    }
    pthread_mutex_lock(rl->root->lock);
    if (ok) {
        if (ucfg(rl, a->up)->kind != EA_UPSTREAM_LOCAL)
            rl->outbound_bytes += rl->req->upstream_body ? rl->req->upstream_body_len : rl->req->body_len;
        /* what it produced while start ran is acted on now */
        a->started_ok = true;
        relay_update_locked(rl, a, -1, false);
        pthread_mutex_unlock(rl->root->lock);
        return START_OK;
    }
    /* whatever began was cancelled by start; its choices end on their own
     * (held: started_ok stays false) and the attempt's record is the API
     * error */
    a->fail = fail_of_api(e);
    a->http_status = e->status;
    snprintf(a->msg, sizeof a->msg, "%s", e->message);
    a->has_api = true;
    a->api = *e;
    attempt_ended_locked(rl, a);
    pthread_mutex_unlock(rl->root->lock);
    return START_FAILED;
}

/* Under the lock: what to try after the attempt last failed: the plan entry
 * and when. False: nothing (the error is set). */
static bool next_locked(struct ea__relay *rl, const struct ea__attempt *last, uint32_t *entry,
                        double *due)
{
    const ea_router *r = rl->srv->router;
    double now = ea__now_ms();
    if (last && last->fail == EA__FAIL_HANDOFF) {
        if (rl->next >= rl->plan.n) {
            rl->has_err = true;
            ea__api_errorf(&rl->err, 503, "server_error", "needs_cloud", NULL,
                           "this request needs a cloud model: the edge model %s handed it off, and no other "
                           "upstream of this task may take it (configure a cloud upstream, e.g. set "
                           "OPENAI_API_KEY for `make run`)",
                           ucfg(rl, last->up)->name);
            return false;
        }
        rl->retries = 0;
        *entry = rl->next++;
        *due = now;
        return true;
    }
    if (last) {
        const struct ea_upstream_config *uc = ucfg(rl, last->up);
        uint32_t trig = trigger_of(last->fail);
        if (!trig || !(uc->fallback_on & trig)) {
            set_error_locked(rl, last, NULL);
            return false;
        }
        /* the same remote upstream again, after a backoff, within the budget */
        bool retryable = uc->kind == EA_UPSTREAM_OPENAI &&
                         (last->fail == EA__FAIL_HTTP_429 || last->fail == EA__FAIL_HTTP_5XX ||
                          last->fail == EA__FAIL_TIMEOUT);
        const struct ea_router_params *rp = ea_router_get_params(r);
        if (retryable && rl->retries < rp->retries) {
            uint32_t delay = ea_router_backoff_ms(r, rl->retries + 1, last->retry_after_ms,
                                                  ea__server_rand(rl->srv));
            double spent = now - rl->t0;
            bool in_budget = !rl->plan.budget_ms ||
                             spent + delay + uc->timeouts.first_token_ms <= rl->plan.budget_ms;
            if (delay <= rp->retry_max_ms && in_budget) {
                rl->retries++;
                *entry = rl->next - 1;
                *due = now + delay;
                return true;
            }
        }
        ea_router_count_fallback(rl->srv->router, last->up);
    }
    rl->retries = 0;
    if (rl->next >= rl->plan.n) {
        set_error_locked(rl, last, "no upstream left to try");
        return false;
    }
    *entry = rl->next++;
    *due = now;
    return true;
}

/* The last attempt that failed (under the lock), or NULL. */
static struct ea__attempt *last_failed_locked(struct ea__relay *rl)
{
    for (int k = rl->n_att; k-- > 0;)
        if (!rl->att[k]->running && (rl->att[k]->fail != EA__FAIL_NONE || rl->att[k]->cancelled))
            return rl->att[k];
    return NULL;
}

/* Tries plan entries from the current position until one starts (no lock
 * held). False when none did (the error is set and the root ended). */
static bool start_next(struct ea__relay *rl, const struct ea__attempt *last)
{
    for (;;) {
        uint32_t entry;
        double due;
        pthread_mutex_lock(rl->root->lock);
        if (rl->final || rl->gone || rl->winner >= 0) {
            pthread_mutex_unlock(rl->root->lock);
            return true;
        }
        if (rl->pending_entry >= 0) { /* a retry waiting for its backoff */
            if (ea__now_ms() + 1 < rl->next_due) {
                schedule_locked(rl, rl->next_due);
                pthread_mutex_unlock(rl->root->lock);
                return true;
            }
            entry = (uint32_t)rl->pending_entry;
            rl->pending_entry = -1;
        } else {
            if (!next_locked(rl, last, &entry, &due)) {
                finish_failed_locked(rl);
                pthread_mutex_unlock(rl->root->lock);
                return false;
            }
            if (due > ea__now_ms() + 1) {
                rl->pending_entry = (int)entry;
                rl->next_due = due;
                rl->waited_ms += due - ea__now_ms();
                schedule_locked(rl, due);
                pthread_mutex_unlock(rl->root->lock);
                return true;
            }
        }
        pthread_mutex_unlock(rl->root->lock);
        struct ea__api_error e = {0};
        size_t u = rl->plan.order[entry];
        enum start_result sr = attempt_start(rl, u, &e);
        if (sr == START_OK)
            return true;
        pthread_mutex_lock(rl->root->lock);
        last = sr == START_FAILED ? rl->att[rl->n_att - 1] : NULL;
        if (sr == START_SKIPPED && !last)
            last = NULL;
        pthread_mutex_unlock(rl->root->lock);
    }
}

/* The worker's step for rl: cancel losers, start a due hedge, or the next
 * attempt after a failure. */
static void relay_advance(struct ea__relay *rl)
{
    struct ea__attempt *cancel[EA__RELAY_MAX_ATTEMPTS];
    int n_cancel = 0;
    bool hedge = false, next = false;
    pthread_mutex_lock(rl->root->lock);
    double now = ea__now_ms();
    for (int k = 0; k < rl->n_att; k++) {
        struct ea__attempt *a = rl->att[k];
        if (a->running && (a->cancel_req || rl->gone) && !a->cancelled) {
            a->cancelled = true;
            cancel[n_cancel++] = a;
        }
    }
    if (!rl->final && !rl->gone && rl->winner < 0) {
        if (rl->hedge_pending) {
            if (!any_running_locked(rl, NULL)) {
                rl->hedge_pending = false; /* the first failed before the delay: fall back */
                next = true;
            } else if (now >= rl->hedge_due) {
                rl->hedge_pending = false;
                rl->hedged = true;
                hedge = true;
            } else {
                schedule_locked(rl, rl->hedge_due);
            }
        } else if (!any_running_locked(rl, NULL)) {
            if (now + 1 >= rl->next_due)
                next = true;
            else
                schedule_locked(rl, rl->next_due);
        }
    }
    struct ea__attempt *last = next ? last_failed_locked(rl) : NULL;
    pthread_mutex_unlock(rl->root->lock);
    for (int k = 0; k < n_cancel; k++)
        cancel[k]->ups->ops->cancel(cancel[k]->job);
    if (hedge || next)
        start_next(rl, hedge ? NULL : last);
}

/* ---- the HTTP side's calls ---------------------------------------------------------------- */

void ea__relay_init(struct ea__relay *rl, struct ea_server *srv, struct ea__genq *root,
                    const struct ea__gen_request *req, const char *req_id, uint64_t seed,
                    double t0, const struct ea_route_plan *plan, const char *task)
{
    memset(rl, 0, sizeof *rl);
    rl->srv = srv;
    rl->root = root;
    rl->req = req;
    rl->req_id = req_id;
    rl->stream = req->stream;
    rl->seed = seed;
    rl->t0 = t0;
    rl->plan = *plan;
    rl->winner = -1;
    rl->pending_entry = -1;
    snprintf(rl->task, sizeof rl->task, "%s", task ? task : "");
}

bool ea__relay_start(struct ea__relay *rl, struct ea__api_error *e)
{
    for (int i = 0; i < rl->root->n_choices; i++)
        rl->root->c[i].started = true; /* the relay ends them all (no reference of their own) */
    if (rl->plan.hedge) {
        /* the hedge is plan entry 1: entry 0 first, entry 1 after the delay */
        pthread_mutex_lock(rl->root->lock);
        rl->hedge_pending = true;
        rl->hedge_due = ea__now_ms() + rl->plan.hedge_delay_ms;
        pthread_mutex_unlock(rl->root->lock);
    }
    start_next(rl, NULL);
    pthread_mutex_lock(rl->root->lock);
    if (rl->hedge_pending) {
        if (rl->final || rl->winner >= 0 || rl->next > 1) /* the first did not start */
            rl->hedge_pending = false;
        else
            schedule_locked(rl, rl->hedge_due);
    }
    bool failed = rl->final && rl->has_err && rl->winner < 0;
    if (failed) {
        ea__relay_error_locked(rl, e);
    }
    pthread_mutex_unlock(rl->root->lock);
    return !failed;
}

void ea__relay_cancel(struct ea__relay *rl)
{
    struct ea__attempt *cancel[EA__RELAY_MAX_ATTEMPTS];
    int n = 0;
    pthread_mutex_lock(rl->root->lock);
    rl->gone = true;
    rl->hedge_pending = false;
    for (int k = 0; k < rl->n_att; k++)
        if (rl->att[k]->running && rl->att[k]->job)
            cancel[n++] = rl->att[k];
    pthread_mutex_unlock(rl->root->lock);
    for (int k = 0; k < n; k++)
        cancel[k]->ups->ops->cancel(cancel[k]->job);
}

void ea__relay_release(struct ea__relay *rl)
{
    for (int k = 0; k < rl->n_att; k++) {
        struct ea__attempt *a = rl->att[k];
        if (a->slot) /* never started producing (prepare failed early) */
            ea_router_end(rl->srv->router, a->up, EA_ATTEMPT_NEUTRAL, -1, a->probe, ea__now_ms());
        if (a->job)
            a->ups->ops->release(a->job);
        ea__genq_release(&a->q);
        ea_free(a);
    }
    rl->n_att = 0;
}

bool ea__relay_committed_locked(const struct ea__relay *rl) { return rl->winner >= 0; }

bool ea__relay_error_locked(const struct ea__relay *rl, struct ea__api_error *e)
{
    if (!rl->has_err)
        return false;
    *e = rl->err;
    return true;
}

void ea__relay_info_locked(const struct ea__relay *rl, struct ea__relay_info *out)
{
    memset(out, 0, sizeof *out);
    out->ttft_ms = -1;
    size_t n = 0;
    for (int k = 0; k < rl->n_att; k++) {
        const struct ea__attempt *a = rl->att[k];
        const char *outcome = a->running ? (k == rl->winner ? "ok" : "running") : a->outcome;
        if (k == rl->winner && !a->running && a->fail == EA__FAIL_NONE)
            outcome = "ok";
        int w = snprintf(out->attempts + n, sizeof out->attempts - n, "%s%s=%s", k ? ", " : "",
                         ucfg(rl, a->up)->name, outcome);
        if (w > 0 && (size_t)w < sizeof out->attempts - n)
            n += (size_t)w;
    }
    out->n_attempts = rl->n_att;
    if (rl->winner >= 0) {
        const struct ea__attempt *a = rl->att[rl->winner];
        const struct ea_upstream_config *uc = ucfg(rl, a->up);
        out->upstream = uc->name;
        if (uc->kind == EA_UPSTREAM_LOCAL)
            snprintf(out->source, sizeof out->source, "edge");
        else
            snprintf(out->source, sizeof out->source, "%s:%s",
                     uc->tier == EA_TIER_CLOUD ? "cloud" : "edge-node", uc->name);
        out->ttft_ms = a->ttft_ms >= 0 ? a->t_start - rl->t0 + a->ttft_ms : -1;
        /* from the request's start to the winner's, less what earlier
         * attempts took (their union: a hedge overlaps) and backoff waits */
        double busy = 0, cover_end = rl->t0;
        for (int k = 0; k < rl->n_att; k++) { /* attempts are listed in start order */
            const struct ea__attempt *b = rl->att[k];
            if (b == a || b->t_start >= a->t_start)
                continue;
            double s0 = b->t_start > cover_end ? b->t_start : cover_end;
            double e0 = b->t_end > 0 && b->t_end < a->t_start ? b->t_end : a->t_start;
            if (e0 > s0) {
                busy += e0 - s0;
                cover_end = e0;
            }
        }
        out->overhead_ms = a->t_start - rl->t0 - busy - rl->waited_ms;
        if (out->overhead_ms < 0)
            out->overhead_ms = 0;
    }
}

const char *ea__relay_reason_locked(const struct ea__relay *rl)
{
    return rl->handed_off ? "handoff" : rl->plan.reason;
}

ea_status ea__relay_json_locked(const struct ea__relay *rl, struct ea_buf *o, double now_ms)
{
    struct ea__relay_info info;
    ea__relay_info_locked(rl, &info);
    ea_status st = ea__buf_puts(o, "\"edgeagent\":{\"source\":");
    if (!st)
        st = info.source[0] ? ea__buf_json_str(o, info.source, strlen(info.source))
                            : ea__buf_puts(o, "null");
    if (!st)
        st = ea__buf_puts(o, ",\"upstream\":");
    if (!st)
        st = info.upstream ? ea__buf_json_str(o, info.upstream, strlen(info.upstream))
                           : ea__buf_puts(o, "null");
    if (!st)
        st = ea__buf_puts(o, ",\"task\":");
    if (!st)
        st = rl->task[0] ? ea__buf_json_str(o, rl->task, strlen(rl->task)) : ea__buf_puts(o, "null");
    if (!st)
        st = ea__buf_printf(o, ",\"latency_ms\":%.3f,\"ttft_ms\":", now_ms - rl->t0);
    if (!st)
        st = info.ttft_ms >= 0 ? ea__buf_printf(o, "%.3f", info.ttft_ms) : ea__buf_puts(o, "null");
    if (!st)
        st = ea__buf_printf(o, ",\"overhead_ms\":%.3f,\"reason\":", info.overhead_ms);
    if (!st) {
        const char *why = ea__relay_reason_locked(rl);
        st = ea__buf_json_str(o, why, strlen(why));
    }
    if (!st)
        st = ea__buf_puts(o, ",\"attempts\":[");
    for (int k = 0; k < rl->n_att && !st; k++) {
        const struct ea__attempt *a = rl->att[k];
        const char *name = ucfg(rl, a->up)->name;
        const char *outcome = k == rl->winner && a->fail == EA__FAIL_NONE ? "ok"
                              : a->running                                 ? "running"
                                                                           : a->outcome;
        st = ea__buf_puts(o, k ? ",{\"upstream\":" : "{\"upstream\":");
        if (!st)
            st = ea__buf_json_str(o, name, strlen(name));
        if (!st)
            st = ea__buf_printf(o, ",\"outcome\":\"%s\"}", outcome);
    }
    if (!st)
        st = ea__buf_printf(o, "],\"decision\":{\"target\":\"%s\"",
                            ea_route_target_name(rl->plan.target));
    if (!st && rl->plan.has_decision)
        st = ea__buf_printf(o, ",\"recommended\":\"%s\",\"edge_score\":%d,\"cloud_score\":%d",
                            ea_route_target_name(rl->plan.decision.target),
                            (int)rl->plan.decision.edge_score, (int)rl->plan.decision.cloud_score);
    if (!st && rl->plan.budget_ms)
        st = ea__buf_printf(o, ",\"budget_ms\":%u", (unsigned)rl->plan.budget_ms);
    if (!st)
        st = ea__buf_puts(o, "}}");
    return st;
}

/* Copies s into out (cap bytes) keeping only what the ledger's identifiers
 * allow (letters, digits and ok's punctuation); "none" when nothing is left. */
static void ident(char *out, size_t cap, const char *s, const char *ok)
{
    size_t n = 0;
    for (; s && *s && n + 1 < cap; s++)
        out[n++] = ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                    strchr(ok, *s))
                       ? *s
                       : '_';
    out[n] = '\0';
    if (!n)
        snprintf(out, cap, "none");
}

/* The audit's record of the request (names and counts, no text). */
static void audit(const struct ea__relay *rl, const struct ea_ledger_row *row)
{
    struct ea__audit_entry e;
    memset(&e, 0, sizeof e);
    e.time_ms = (int64_t)time(NULL) * 1000;
    snprintf(e.id, sizeof e.id, "%s", rl->req_id);
    snprintf(e.task, sizeof e.task, "%s", rl->task);
    e.policy = rl->privacy;
    struct ea__relay_info info;
    ea__relay_info_locked(rl, &info); /* the request has ended: nothing changes it now */
    snprintf(e.destination, sizeof e.destination, "%s", info.source[0] ? info.source : "none");
    snprintf(e.outcome, sizeof e.outcome, "%s", row->outcome);
    e.outbound_bytes = rl->outbound_bytes;
    e.redacted = rl->req->upstream_body != NULL;
    for (uint32_t i = 0; i < row->n_entities && e.n_types < EA__AUDIT_TYPES; i++) {
        snprintf(e.types[e.n_types].name, sizeof e.types[0].name, "%s", row->entities[i].type);
        e.types[e.n_types++].count = row->entities[i].count;
    }
    ea__audit_add(rl->srv->audit, &e);
}

bool ea__relay_account(const struct ea__relay *rl, bool disconnected, ea_ledger_done_fn done, void *user)
{
    ea_ledger *l = rl->srv->p.ledger;
    const struct ea__genq *root = rl->root;
    struct ea_ledger_row row;
    ea_ledger_row_init(&row);
    ident(row.task, sizeof row.task, rl->task[0] ? rl->task : "default", "._-");
    ident(row.request_id, sizeof row.request_id, rl->req_id, "._-");
    const struct ea__attempt *w = rl->winner >= 0 ? rl->att[rl->winner] : rl->n_att ? rl->att[rl->n_att - 1] : NULL;
    if (w) {
        const struct ea_upstream_config *u = ucfg(rl, w->up);
        row.tier = u->tier;
        row.price = u->price;
        ident(row.upstream, sizeof row.upstream, u->name, "._-");
        char cur[sizeof rl->srv->model_id];
        const char *lm = w->job && w->ups->ops->model ? w->ups->ops->model(w->job) : NULL;
        if (u->kind == EA_UPSTREAM_LOCAL && !lm) {
            ea__server_model_id(rl->srv, cur, sizeof cur);
            lm = cur;
        }
        ident(row.model, sizeof row.model, u->kind == EA_UPSTREAM_LOCAL ? lm : u->model, "._:/@+-");
    } else {
        row.tier = EA_TIER_DEVICE;
        ident(row.upstream, sizeof row.upstream, NULL, "");
        ident(row.model, sizeof row.model, NULL, "");
    }
    int32_t out = 0, cached = 0;
    for (int i = 0; i < root->n_choices; i++) {
        out += root->c[i].done ? root->c[i].end.n_generated : 0;
        cached += i == 0 && root->c[i].done ? root->c[i].end.n_cached : 0;
    }
    bool estimated = false;
    for (int i = 0; i < root->n_choices; i++)
        estimated |= root->c[i].done && root->c[i].end.estimated;
    int32_t in = root->n_prompt_tokens;
    if (rl->winner >= 0)
        in = prompt_tokens(rl, rl->att[rl->winner], &estimated);
    row.prompt_tokens = in > 0 ? (uint32_t)in : 0;
    row.estimated = estimated;
    row.completion_tokens = out > 0 ? (uint32_t)out : 0;
    row.cached_prompt_tokens = cached > 0 ? (uint32_t)cached : 0;
    row.ttft_ms = w && w->ttft_ms >= 0 ? w->t_start - rl->t0 + w->ttft_ms : -1;
    row.total_ms = ea__now_ms() - rl->t0;
    if (disconnected)
        snprintf(row.outcome, sizeof row.outcome, "client_disconnected");
    else if (rl->has_err || rl->winner < 0)
        ident(row.outcome, sizeof row.outcome, rl->has_err && rl->err.code ? rl->err.code : "error", "_");
    uint32_t failed = 0;
    for (int k = 0; k < rl->n_att; k++)
        failed += rl->att[k]->fail != EA__FAIL_NONE && rl->att[k]->fail != EA__FAIL_HANDOFF;
    /* privacy: counts per type, never a value */
    const ea_privacy_map *pm = rl->req->privacy_map;
    const ea_privacy_detector *det = rl->srv->p.privacy;
    for (uint32_t t = 0; pm && det && t < ea_privacy_type_count(det) && row.n_entities < EA_LEDGER_ENTITY_TYPES; t++) {
        size_t c = ea_privacy_map_count(pm, t);
        if (!c)
            continue;
        struct ea_ledger_entity_count *ec = &row.entities[row.n_entities++];
        const char *name = ea_privacy_type_name(det, t);
        size_t k = 0;
        for (; name[k] && k < sizeof ec->type - 1; k++)
            ec->type[k] = (char)(name[k] >= 'A' && name[k] <= 'Z' ? name[k] - 'A' + 'a' : name[k]);
        ec->type[k] = '\0';
        ec->count = (uint32_t)c;
    }
    row.attempts = (uint32_t)rl->n_att;
    row.fallbacks = failed;
    row.hedges = rl->hedged ? 1 : 0;
    if (rl->winner >= 0 && !rl->has_err) { /* the GenAI metrics of the upstream that answered */
        size_t u = rl->att[rl->winner]->up;
        ea__metrics_observe(&rl->srv->gen_dur[u], row.total_ms / 1e3, false);
        if (row.ttft_ms >= 0)
            ea__metrics_observe(&rl->srv->gen_ttft[u], row.ttft_ms / 1e3, false);
        ea__metrics_observe(&rl->srv->gen_tok_in[u], row.prompt_tokens, true);
        ea__metrics_observe(&rl->srv->gen_tok_out[u], row.completion_tokens, true);
    }
    audit(rl, &row);
    if (!l)
        return false;
    struct ea_error err = {0};
    bool durable = false;
    ea_status st = ea_ledger_record_notify(l, &row, done, user, &durable, &err);
    if (st == EA_EINVAL)
        ea__server_log(rl->srv, "request %s: ledger row refused: %s", rl->req_id, err.msg);
    if (durable)
        ea__ledger_check(rl->srv);
    return st == EA_OK && done && !durable;
}
