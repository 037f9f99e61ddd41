/* relay.h - one generation's attempts: the router's plan (ea_router_plan)
 * carried out over the configured upstreams, between them and the
 * generation's client-facing queue.
 *
 * Every attempt runs into a child queue of the generation's queue (genq.h:
 * the same mutex and reference count). The relay's wake callback decides
 * what reaches the client: the first attempt that produces output (or ends
 * well) wins; the others are cancelled at once (the engine frees the KV
 * blocks, the cloud client aborts its transfer). An attempt that fails
 * before any byte reached the client is recorded and the next candidate is
 * tried (a retry of the same upstream after a backoff, or a fallback), as
 * long as the failure is one of the upstream's fallback_on triggers; a 4xx
 * from an upstream (other than 429) goes back to the client as it is. A
 * streamed request's client is answered (status and headers) only once an
 * attempt has won, so it never sees a backend switch; a failure after that
 * ends the stream with an explicit error event. A non-streamed answer is
 * taken from the winner only when all its choices ended well. In a
 * cascade plan the edge model's attempt may not win while its first words
 * could still be EA_ROUTER_HANDOFF_MARKER; when they are the marker, it is
 * stopped and the next plan entry takes the request (not a failure: no
 * breaker, no fallback count, no retry).
 *
 * Work that must not run under the queue's mutex or on a producer's thread
 * (starting the next attempt, a hedge after its delay, cancelling losers)
 * goes to one worker thread per server (struct ea__relay_worker), which
 * holds a reference on the generation while the work is queued.
 *
 * Does not hold: the plan (src/router/plan.c), HTTP formatting (generate.c),
 * upstream implementations (upstream_*.c).
 */
#ifndef EDGEAGENT_SERVER_RELAY_H
#define EDGEAGENT_SERVER_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "edgeagent/ledger.h"
#include "edgeagent/router.h"
#include "server/genq.h"
#include "server/server_int.h"

struct ea__gen_request;
struct ea__api_error;
struct ea__upstream;
struct ea__upstream_job;
struct ea_server;

/* Attempts one request may make in all (first tries, retries, fallbacks,
 * the hedge): above the plan's upstreams plus a retry of each would not
 * fit any sensible budget. */
#define EA__RELAY_MAX_ATTEMPTS 8
#define EA__ATTEMPT_MSG_MAX 160

struct ea__attempt {
    struct ea__relay *rl;
    size_t up;                    /* upstream index (config order) */
    struct ea__upstream *ups;
    struct ea__upstream_job *job; /* released with the relay */
    struct ea__genq q;            /* child of the generation's queue */
    bool probe, slot;             /* the router slot taken (ea_router_begin) */
    /* under the lock */
    bool running;                 /* prepared and started, not every choice ended */
    bool started_ok;              /* start returned true: its output may win */
    bool cancel_req, cancelled;
    bool any_output;
    bool handoff_checked;         /* cascade: its first output was looked at */
    int n_done;
    double t_start, ttft_ms;
    double t_end;                 /* when its last choice ended (0: not yet) */
    enum ea__fail fail;           /* how it failed (NONE: it did not) */
    int http_status;
    double retry_after_ms;
    char outcome[24];             /* "ok", "http_429", "cancelled", ... */
    char msg[EA__ATTEMPT_MSG_MAX];/* the failure's detail (no request text) */
    bool has_api;                 /* prepare or start refused it: api is what it said */
    struct ea__api_error api;
    struct ea_ledger_reservation res; /* its cloud budget, settled when it ends */
};

struct ea__relay {
    struct ea_server *srv;
    struct ea__genq *root;
    const struct ea__gen_request *req; /* the generation's, outlives the relay */
    const char *req_id;
    bool stream;
    uint64_t seed;
    double t0;                  /* the request's start (ms) */
    struct ea_route_plan plan;
    char task[EA_CONFIG_MAX_NAME + 1]; /* "" = none */
    /* under the lock */
    uint32_t next;              /* next plan entry to try */
    uint32_t retries;           /* retries of the current entry so far */
    struct ea__attempt *att[EA__RELAY_MAX_ATTEMPTS];
    int n_att;
    int winner;                 /* index into att, or -1 */
    bool final;                 /* every root choice has ended */
    bool gone;                  /* the client left (no new attempt) */
    bool hedge_pending;         /* the hedge has not started */
    bool hedged;                /* the hedge started */
    bool handed_off;            /* the edge model handed the request off (cascade) */
    enum ea_privacy_mode privacy; /* the policy applied (set before start) */
    uint64_t outbound_bytes;    /* under the lock: request bytes sent to remote upstreams */
    double hedge_due;           /* when it may (ms) */
    double next_due;            /* when the next attempt may start (backoff) */
    int pending_entry;          /* the plan entry that starts at next_due, or -1 */
    double waited_ms;           /* under the lock: backoff delays waited */
    bool work_queued;           /* the worker holds a reference (under the worker's mutex) */
    double work_due;
    struct ea__relay *work_next;
    /* the final error (every attempt failed, or a failure after the stream began) */
    bool has_err;
    struct ea__api_error err;
};

/* The server's worker thread (relay work that leaves the producer threads). */
struct ea__relay_worker;
ea_status ea__relay_worker_create(struct ea__relay_worker **out, struct ea_error *err);
/* Runs what is still queued at once, then stops the thread. */
void ea__relay_worker_destroy(struct ea__relay_worker *w);

/* Sets up the relay (nothing runs yet). */
void ea__relay_init(struct ea__relay *rl, struct ea_server *srv, struct ea__genq *root,
                    const struct ea__gen_request *req, const char *req_id, uint64_t seed,
                    double t0, const struct ea_route_plan *plan, const char *task);
/* HTTP thread: starts the plan's first attempt that will start (and
 * schedules the hedge). False with *e when none could: the request's own
 * fault (4xx as the upstream said it), or every candidate failed (502/503). */
bool ea__relay_start(struct ea__relay *rl, struct ea__api_error *e);
/* The client left, or the server stops: cancels every running attempt and
 * starts no new one. Any thread, no lock held. */
void ea__relay_cancel(struct ea__relay *rl);
/* Releases the attempts (jobs, child queues) once no producer is left. */
void ea__relay_release(struct ea__relay *rl);

/* Under the lock: whether an attempt has won (a stream may be answered),
 * and the final error when the relay failed (false if it did not). */
bool ea__relay_committed_locked(const struct ea__relay *rl);
bool ea__relay_error_locked(const struct ea__relay *rl, struct ea__api_error *e);

/* What the response says about where it ran (under the lock). */
struct ea__relay_info {
    char source[EA_CONFIG_MAX_NAME + 16]; /* edge, edge-node:<name>, cloud:<name> */
    const char *upstream;                 /* the winner's name, or NULL */
    char attempts[EA__RELAY_MAX_ATTEMPTS * (EA_CONFIG_MAX_NAME + 28)]; /* "name=outcome, ..." */
    int n_attempts;
    double ttft_ms;
    double overhead_ms; /* the router's own time before the winning attempt
                           started: not spent in an earlier attempt or a backoff */
};
void ea__relay_info_locked(const struct ea__relay *rl, struct ea__relay_info *out);
/* Why it ran where it did: "handoff" when the edge model handed the request
 * off (cascade), else the plan's reason (under the lock). */
const char *ea__relay_reason_locked(const struct ea__relay *rl);
/* The ledger's row for the request (no text: names, counts, times) and its
 * audit record, once every choice has ended (under the lock, or after the
 * last reference); disconnected: the client left before the end. True when
 * the row was queued and done(user, committed) will be called on the
 * ledger's writer thread once it is written (done may be NULL); false
 * when nothing will call back (no ledger, or the row was dropped). */
bool ea__relay_account(const struct ea__relay *rl, bool disconnected, ea_ledger_done_fn done, void *user);

/* Appends "edgeagent":{source, upstream, task, latency_ms, ttft_ms,
 * overhead_ms, reason, attempts, decision} (under the lock). */
struct ea_buf;
ea_status ea__relay_json_locked(const struct ea__relay *rl, struct ea_buf *o, double now_ms);

#endif
