/* generate.c - /v1/chat/completions and /v1/completions on the HTTP side:
 * validate and admit the request, ask the upstream (upstream.h; for now the
 * single local one) to prepare and start it into the generation's queue
 * (genq.h), and turn the queue's output into a JSON answer or a
 * Server-Sent Events stream. A request flows one way: HTTP (this file) ->
 * upstream -> queue -> back here through the queue's wake callback.
 *
 * Threads and ownership. A generation (struct ea__gen) embeds its queue,
 * whose reference count is the generation's: references are held by
 *   - the HTTP request (dropped when libmicrohttpd reports the request
 *     finished, whether completed or the client went away),
 *   - the streaming response object (dropped when MHD frees it),
 *   - each choice an upstream began (ea__genq_begin .. ea__genq_finish;
 *     for the local upstream, submit .. the engine's DONE event),
 *   - the thread of direct_answer while it writes,
 *   - the ledger's writer, from the last choice's end until the request's
 *     row is written (gen_recorded): the answer's last bytes wait for it.
 * The producer (the engine thread, for the local upstream) only emits into
 * the queue; the queue's wake callback (gen_wake, under the queue's mutex)
 * resumes the connection when it is suspended waiting for output (a flag
 * and an eventfd write inside MHD; it never waits for the client). All
 * JSON formatting and socket writes happen on the HTTP threads, which take
 * a choice's pending output under the mutex and format outside it. A
 * client that leaves more than max_stream_pending bytes unread has its
 * generation stopped (the queue's cap); a client that disconnects has its
 * generation cancelled on the upstream (for the local one ea_engine_cancel,
 * which returns the KV blocks). A streamed request learns of it at its next
 * write; a non-streamed one waits suspended, where libmicrohttpd does not
 * watch the socket, so gen_wake peeks at the socket every GONE_CHECK_TOKENS
 * pieces (a non-blocking poll, only while the connection is suspended and
 * its socket therefore still open) and asks the producer to stop when the
 * peer has closed it. A client that only shut down its sending side is
 * still there and gets its answer: see client_left_locked for how the two
 * are told apart. The upstream's job is released with the generation, once
 * no producer is left.
 * Does not hold: request validation (request.c), routing and auth
 * (server.c), the queue (genq.c), templates, tokenizer and engine
 * (upstream_local.c), response helpers (http.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "edgeagent/privacy.h"
#include "server/genq.h"
#include "server/relay.h"
#include "server/server_int.h"
#include "server/tools_out.h"
#include "server/upstream.h"
#include "util/threadpool.h"

/* Status line and headers of an answer written directly to the socket
 * (direct_answer): fixed lines, an id, a timing value and a CORS origin. */
#define EA__ANSWER_HEAD_MAX 2048

/* The HTTP side of one choice (its producer's state is the upstream's). */
struct choice {
    int index;
    int prompt_idx;
    int32_t n_events; /* under g->q.mu: pieces emitted so far (client_left_locked) */
    /* HTTP thread only */
    struct ea__genq_buf local;
    bool sent_role, sent_finish, done_seen;
    size_t text_offset; /* completions logprobs text_offset */
};

struct ea__gen {
    struct ea__genq q; /* its mutex guards the fields marked "under mu" */
    ea_server *srv;
    struct ea__relay rl;          /* where it runs: the attempts (relay.h) */
    struct ea__gen_request req;   /* the request, kept for later attempts */
    struct ea_privacy_map *pmap;  /* privacy: redact: the request's placeholders */
    char *pbody;                  /* ... and its redacted body */
    struct ea_buf body;           /* its JSON body (req.body points into it) */
    struct ea__gen *prev, *next; /* the server's list, under srv->mu */
    /* under mu */
    struct MHD_Connection *conn;
    bool suspended, http_gone;
    int fd;           /* the client's socket (non-streamed requests), -1 if unknown */
    bool client_left; /* a suspended non-streamed request's client closed its socket */
    bool probed;      /* the 1xx probe was sent after the client's stream ended */
    int direct_status; /* answered by direct_answer (status), 0 if not */
    int direct_fd;     /* direct_answer's own descriptor of the client's socket */
    bool http_ok, disconnected;
    bool accounted;    /* the ledger row and audit record were made */
    bool recorded;     /* ... and the row is written (or there is none): the last bytes may go */
    /* set before any producer begins */
    size_t answer_cap; /* cap of the formatted JSON answer (or of one SSE drain) */
    char cors_origin[256];
    char unenforced[EA__UNENFORCED_MAX]; /* X-EdgeAgent-Unenforced, or "" */
    bool stream, include_usage;
    enum ea__req_kind kind;
    int n_choices;
    struct choice *choices;
    char id[48];
    int64_t created;
    double t_start;
    /* HTTP-thread stream output */
    struct ea_buf out;
    size_t out_off;
    bool final_queued;
};

/* ---- lifetime ----------------------------------------------------------------- */

static void gen_record_metrics(struct ea__gen *g)
{
    struct ea__metrics *m = &g->srv->metrics;
    int32_t out = 0;
    for (int i = 0; i < g->n_choices; i++) {
        const struct ea__genq_choice *c = &g->q.c[i];
        if (!c->started)
            continue;
        out += c->end.n_generated;
        if (c->end.ttft_ms >= 0 && c->end.n_generated > 0)
            ea__metrics_observe(&m->ttft, c->end.ttft_ms / 1e3, false);
        if (c->end.n_generated > 1 && c->end.ttft_ms >= 0)
            ea__metrics_observe(&m->tpot,
                                (c->end.total_ms - c->end.ttft_ms) / 1e3 / (c->end.n_generated - 1),
                                false);
    }
    atomic_fetch_add(&m->tokens_in, (uint64_t)g->q.n_prompt_tokens);
    atomic_fetch_add(&m->tokens_out, (uint64_t)out);
    ea__metrics_observe(&m->usage_in, g->q.n_prompt_tokens, true);
    ea__metrics_observe(&m->usage_out, out, true);
    ea__metrics_observe(&m->duration, (ea__now_ms() - g->t_start) / 1e3, false);
    if (g->disconnected)
        atomic_fetch_add(&m->disconnects, 1);
}

/* The queue's free callback: the last reference is gone. The generation
 * leaves the server's list first (ea__gens_cancel_all walks it), and is
 * counted out last: ea_server_destroy frees the upstream once n_gens is 0. */
static void gen_free(void *user)
{
    struct ea__gen *g = user;
    ea_server *s = g->srv;
    bool any = false;
    for (int i = 0; i < g->n_choices; i++)
        any |= g->q.c[i].started;
    if (any)
        gen_record_metrics(g);
    pthread_mutex_lock(&s->mu);
    if (g->prev)
        g->prev->next = g->next;
    else
        s->gens = g->next;
    if (g->next)
        g->next->prev = g->prev;
    pthread_mutex_unlock(&s->mu);
    if (g->rl.winner >= 0 && g->rl.att[g->rl.winner]->ups == s->upstream &&
        g->q.c[0].end.finish != EA_FINISH_ERROR)
        ea__route_local_observed(s, g->q.c[0].end.total_ms);
    if (!g->accounted) /* no choice was begun */
        ea__relay_account(&g->rl, g->disconnected, NULL, NULL);
    ea__relay_release(&g->rl); /* no producer is left: every begun choice finished */
    ea__gen_request_release(&g->req);
    ea_privacy_map_destroy(g->pmap); /* zeroes the values it held */
    ea_free(g->pbody);
    ea__buf_release(&g->body);
    for (int i = 0; i < g->n_choices; i++)
        ea__genq_buf_release(&g->choices[i].local);
    ea_free(g->choices);
    ea__buf_release(&g->out);
    ea__genq_release(&g->q);
    ea_free(g);
    pthread_mutex_lock(&s->mu);
    s->n_gens--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void gen_unref(struct ea__gen *g) { ea__genq_unref(&g->q); }

/* Resumes the connection if it is suspended waiting for us (under mu). */
static void wake_locked(struct ea__gen *g)
{
    if (g->suspended && !g->http_gone) {
        g->suspended = false;
        MHD_resume_connection(g->conn);
    }
}

/* Under mu: X-EdgeAgent-Unenforced of the attempt that answered (the
 * keywords its grammar did not enforce) into g->unenforced. */
static void unenforced_locked(struct ea__gen *g)
{
    g->unenforced[0] = '\0';
    if (g->rl.winner < 0)
        return;
    const struct ea__attempt *a = g->rl.att[g->rl.winner];
    if (a->job && a->ups->ops->unenforced)
        snprintf(g->unenforced, sizeof g->unenforced, "%s", a->ups->ops->unenforced(a->job));
}

/* The same for the HTTP side's response headers (ctx->unenforced). */
static void take_unenforced(struct ea__req_ctx *ctx, struct ea__gen *g)
{
    pthread_mutex_lock(&g->q.mu);
    unenforced_locked(g);
    snprintf(ctx->unenforced, sizeof ctx->unenforced, "%s", g->unenforced);
    pthread_mutex_unlock(&g->q.mu);
}

void ea__gen_http_done(struct ea__gen *g, bool ok)
{
    bool running = false;
    pthread_mutex_lock(&g->q.mu);
    g->http_gone = true;
    g->http_ok = ok;
    for (int i = 0; i < g->n_choices; i++)
        running |= g->q.c[i].started && !g->q.c[i].done;
    if (running)
        g->disconnected = true;
    pthread_mutex_unlock(&g->q.mu);
    if (running)
        ea__relay_cancel(&g->rl); /* the HTTP reference keeps the attempts alive */
    gen_unref(g);
}

void ea__gens_cancel_all(ea_server *s)
{
    pthread_mutex_lock(&s->mu); /* a listed generation is alive */
    for (struct ea__gen *g = s->gens; g; g = g->next)
        ea__relay_cancel(&g->rl);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the queue's wake callback: resume the connection, notice a gone client ---------- */

#define GONE_CHECK_TOKENS 16

/* What a non-blocking look at a waiting client's socket shows. */
enum peer_state { PEER_THERE, PEER_EOF, PEER_GONE };

static enum peer_state peer_state(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN}; /* the end of the stream reads as POLLIN */
    if (poll(&p, 1, 0) <= 0)
        return PEER_THERE;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
        return PEER_GONE; /* reset, or both directions shut */
    if (!(p.revents & POLLIN))
        return PEER_THERE;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        return PEER_THERE; /* a pipelined next request is data, not a close */
    if (n == 0)
        return PEER_EOF;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? PEER_THERE : PEER_GONE;
}

/* An interim response (RFC 9110 15.2: a client must accept 1xx responses it
 * did not ask for) used as a probe: harmless to a client that only shut down
 * its sending side, answered with a reset by one that closed its socket. */
static const char probe_1xx[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* Non-streamed requests (under mu): whether the client has gone while
 * its connection waits suspended; checked on the first token and every
 * GONE_CHECK_TOKENS after. The end of the client's stream alone is not a
 * disconnect: a client may send its request, shut down its sending side
 * (`nc -N`, some proxies) and still read the answer. So the first EOF sends
 * the 1xx probe (the connection is suspended: libmicrohttpd writes nothing on
 * it meanwhile, and its answer follows the probe); a client that closed its
 * socket resets the connection, which a later check sees. */
static bool client_left_locked(struct ea__gen *g, struct choice *c)
{
    if (g->stream || g->http_gone)
        return false;
    if (g->client_left || !g->suspended || g->fd < 0 || c->n_events++ % GONE_CHECK_TOKENS != 0)
        return g->client_left;
    enum peer_state st = peer_state(g->fd);
    if (st == PEER_EOF && !g->probed) {
        g->probed = true;
        ssize_t w = send(g->fd, probe_1xx, sizeof probe_1xx - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            st = PEER_GONE;
    }
    if (st == PEER_GONE) {
        g->client_left = true;
        g->disconnected = true;
    }
    return g->client_left;
}

static void *direct_answer(void *arg);

/* A non-streamed answer is ready while its client has ended its sending side
 * (under mu). libmicrohttpd 0.9.75 closes a connection as soon as it reads
 * the end of the client's stream after a complete request, before it calls
 * the handler again, so resuming would lose the answer. Such an answer is
 * written by a short-lived thread straight to the socket (libmicrohttpd does
 * not touch a suspended connection), then the connection is resumed and
 * closed. True when that thread took the answer over. */
static bool answer_half_closed_locked(struct ea__gen *g)
{
    if (!g->suspended || g->http_gone || g->client_left || g->fd < 0)
        return false;
    if (!g->probed && peer_state(g->fd) != PEER_EOF)
        return false;
    /* the thread writes through its own descriptor of the socket: should
     * libmicrohttpd close its descriptor meanwhile (daemon stop), the number
     * could be reused by another client, who must never read this answer */
    unenforced_locked(g);
    g->direct_fd = fcntl(g->fd, F_DUPFD_CLOEXEC, 0);
    if (g->direct_fd < 0)
        return false;
    pthread_t t;
    ea__genq_ref_locked(&g->q); /* the thread's */
    if (ea__thread_start(&t, direct_answer, g) != 0) {
        g->q.refs--; /* never the last: the caller's producer holds one */
        close(g->direct_fd);
        g->direct_fd = -1;
        return false;
    }
    pthread_detach(t);
    return true;
}

/* Under mu: every choice is done and the ledger has the request's row:
 * the answer's last bytes may go. */
static bool ended_locked(const struct ea__gen *g) { return g->q.n_done == g->n_choices && g->recorded; }

/* Under mu, once the request has ended: a non-streamed answer goes now
 * (written by direct_answer when its client half-closed), a stream's last
 * chunk is taken by its reader. */
static void ended_wake_locked(struct ea__gen *g)
{
    if (g->stream || !answer_half_closed_locked(g))
        wake_locked(g);
}

/* ea_ledger_done_fn (the ledger's writer thread): the request's row is
 * written, or failed to be (counted by the ledger): the answer may end. */
static void gen_recorded(void *user, bool committed)
{
    struct ea__gen *g = user;
    if (!committed)
        ea__ledger_write_failed(g->srv);
    pthread_mutex_lock(&g->q.mu);
    g->recorded = true;
    ended_wake_locked(g);
    pthread_mutex_unlock(&g->q.mu);
    gen_unref(g); /* the reference account_locked took for this call */
}

/* Under mu, when the last choice has ended: the ledger row and audit
 * record. The answer's last bytes (a stream's final chunk and [DONE], a
 * non-streamed body) wait until the row is written, so every answer a
 * client saw end is in the ledger even if the process is killed right
 * after; the tokens before them never wait. */
static void account_locked(struct ea__gen *g)
{
    g->accounted = true;
    ea__genq_ref_locked(&g->q); /* gen_recorded's */
    if (!ea__relay_account(&g->rl, g->disconnected, gen_recorded, g)) {
        g->q.refs--; /* never the last: the finishing producer holds one */
        g->recorded = true;
    }
}

/* ea__genq_wake_fn (under mu): output of choice i was queued. A stream is
 * resumed at every piece; a non-streamed answer once the request has ended
 * (ended_locked). False asks the producer to stop: the non-streamed
 * request's client has gone. */
static bool gen_wake(void *user, int i, bool finished)
{
    struct ea__gen *g = user;
    if (g->stream)
        wake_locked(g);
    if (!finished)
        return !client_left_locked(g, &g->choices[i]);
    if (g->q.n_done == g->n_choices && !g->accounted) {
        account_locked(g);
        if (g->recorded)
            ended_wake_locked(g);
    }
    return true;
}

/* ---- formatting (HTTP threads) ------------------------------------------------------ */

static const char *finish_name(const struct ea__genq_end *end)
{
    if (end->tool_calls)
        return "tool_calls";
    if (end->stop_string)
        return "stop";
    switch (end->finish) {
    case EA_FINISH_LENGTH:
        return "length";
    default:
        return "stop";
    }
}

static double clamp_lp(float lp)
{
    if (isnan(lp))
        return 0;
    return lp < -9999.0f ? -9999.0 : lp;
}

/* token text (raw piece, JSON-escaped with U+FFFD for invalid bytes) and bytes */
/* The text of a token id, from the upstream that produced it ("" if unknown). */
static void piece(const struct ea__attempt *a, int32_t id, bool special, const char **p, size_t *n)
{
    *p = "";
    *n = 0;
    if (!a || !a->job || !a->ups->ops->token_piece || !a->ups->ops->token_piece(a->job, id, special, p, n)) {
        *p = "";
        *n = 0;
    }
}

static ea_status put_token(struct ea_buf *o, const struct ea__attempt *up, int32_t id, bool bytes)
{
    const char *p;
    size_t n;
    piece(up, id, true, &p, &n);
    ea_status s = ea__buf_puts(o, "\"token\":");
    if (!s)
        s = ea__buf_json_str(o, p, n);
    if (!s && bytes) {
        s = ea__buf_puts(o, ",\"bytes\":[");
        for (size_t i = 0; i < n && !s; i++)
            s = ea__buf_printf(o, "%s%u", i ? "," : "", (unsigned char)p[i]);
        if (!s)
            s = ea__buf_putc(o, ']');
    }
    return s;
}

static ea_status put_logprobs(struct ea_buf *o, struct ea__gen *g, struct choice *c,
                              const struct ea__genq_buf *q, size_t text_len)
{
    const struct ea__attempt *tok = g->rl.winner >= 0 ? g->rl.att[g->rl.winner] : NULL;
    ea_status s = EA_OK;
    if (!g->q.logprobs || q->n_lps == 0)
        return ea__buf_puts(o, "null");
    if (g->kind == EA__REQ_CHAT) {
        s = ea__buf_puts(o, "{\"content\":[");
        for (int32_t i = 0; i < q->n_lps && !s; i++) {
            const struct ea__genq_lp *e = &q->lps[i];
            s = ea__buf_puts(o, i ? ",{" : "{");
            if (!s)
                s = put_token(o, tok, e->token, true);
            if (!s)
                s = ea__buf_printf(o, ",\"logprob\":%.6g,\"top_logprobs\":[", clamp_lp(e->logprob));
            for (int32_t k = 0; k < e->n_top && !s; k++) {
                s = ea__buf_puts(o, k ? ",{" : "{");
                if (!s)
                    s = put_token(o, tok, e->top[k].token, true);
                if (!s)
                    s = ea__buf_printf(o, ",\"logprob\":%.6g}", clamp_lp(e->top[k].logprob));
            }
            if (!s)
                s = ea__buf_puts(o, "]}");
        }
        if (!s)
            s = ea__buf_puts(o, "],\"refusal\":null}");
        return s;
    }
    /* completions: parallel arrays */
    s = ea__buf_puts(o, "{\"tokens\":[");
    for (int32_t i = 0; i < q->n_lps && !s; i++) {
        const char *p;
        size_t n;
        piece(tok, q->lps[i].token, true, &p, &n);
        if (i)
            s = ea__buf_putc(o, ',');
        if (!s)
            s = ea__buf_json_str(o, p, n);
    }
    if (!s)
        s = ea__buf_puts(o, "],\"token_logprobs\":[");
    for (int32_t i = 0; i < q->n_lps && !s; i++)
        s = ea__buf_printf(o, "%s%.6g", i ? "," : "", clamp_lp(q->lps[i].logprob));
    if (!s)
        s = ea__buf_puts(o, "],\"top_logprobs\":[");
    for (int32_t i = 0; i < q->n_lps && !s; i++) {
        s = ea__buf_puts(o, i ? ",{" : "{");
        for (int32_t k = 0; k < q->lps[i].n_top && !s; k++) {
            const char *p;
            size_t n;
            piece(tok, q->lps[i].top[k].token, true, &p, &n);
            if (k)
                s = ea__buf_putc(o, ',');
            if (!s)
                s = ea__buf_json_str(o, p, n);
            if (!s)
                s = ea__buf_printf(o, ":%.6g", clamp_lp(q->lps[i].top[k].logprob));
        }
        if (!s)
            s = ea__buf_putc(o, '}');
    }
    if (!s)
        s = ea__buf_puts(o, "],\"text_offset\":[");
    /* offsets: each token's piece length advances the offset (approximate when
     * the detokenizer held bytes across tokens) */
    size_t off = c->text_offset;
    for (int32_t i = 0; i < q->n_lps && !s; i++) {
        const char *p;
        size_t n;
        piece(tok, q->lps[i].token, false, &p, &n);
        s = ea__buf_printf(o, "%s%zu", i ? "," : "", off);
        off += n;
    }
    c->text_offset += text_len;
    if (!s)
        s = ea__buf_puts(o, "]}");
    return s;
}

static ea_status put_usage(struct ea_buf *o, struct ea__gen *g)
{
    int32_t out = 0, cached = 0;
    for (int i = 0; i < g->n_choices; i++) {
        out += g->q.c[i].end.n_generated;
        /* prompt tokens are counted once per prompt: take its first choice's
         * prefix-cache hits */
        if (i == 0 || g->choices[i].prompt_idx != g->choices[i - 1].prompt_idx)
            cached += g->q.c[i].end.n_cached;
    }
    return ea__buf_printf(o,
                          "{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
                          "\"prompt_tokens_details\":{\"cached_tokens\":%d}}",
                          g->q.n_prompt_tokens, out, g->q.n_prompt_tokens + out, cached);
}

static ea_status put_head(struct ea_buf *o, struct ea__gen *g, const char *object)
{
    ea_status s = ea__buf_printf(o, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%" PRId64
                                    ",\"model\":",
                                 g->id, object, g->created);
    /* the model that answers: the local one this request runs on (a switch
     * does not move it), else the one served now */
    const struct ea__attempt *a = g->rl.winner >= 0 ? g->rl.att[g->rl.winner] : NULL;
    char cur[sizeof g->srv->model_id];
    const char *mid = a && a->job && a->ups->ops->model ? a->ups->ops->model(a->job) : NULL;
    if (!mid) {
        ea__server_model_id(g->srv, cur, sizeof cur);
        mid = cur;
    }
    if (!s)
        s = ea__buf_json_str(o, mid, strlen(mid));
    if (!s)
        s = ea__buf_puts(o, ",\"system_fingerprint\":\"edgeagent-0.1.0\",\"choices\":[");
    return s;
}

/* The first failure among the choices, as an API error; false if none. */
static bool gen_failure(struct ea__gen *g, struct ea__api_error *e)
{
    pthread_mutex_lock(&g->q.mu);
    bool routed = ea__relay_error_locked(&g->rl, e);
    pthread_mutex_unlock(&g->q.mu);
    if (routed) {
        /* the attempts' names and outcome classes, not the message: an
         * upstream's error text may quote the request */
        struct ea__relay_info info;
        pthread_mutex_lock(&g->q.mu);
        ea__relay_info_locked(&g->rl, &info);
        pthread_mutex_unlock(&g->q.mu);
        ea__server_log(g->srv, "request %s: %d %s (attempts: %s)", g->id, e->status,
                       e->code ? e->code : e->type, info.attempts[0] ? info.attempts : "none");
        return true;
    }
    for (int i = 0; i < g->n_choices; i++) {
        const struct ea__genq_choice *c = &g->q.c[i];
        if (c->end.finish == EA_FINISH_ERROR) {
            char id[48];
            ea__server_new_id(g->srv, "err", id, sizeof id);
            ea__server_log(g->srv, "error %s: request %s: generation failed: %s (%s)", id, g->id,
                           c->errmsg[0] ? c->errmsg : "engine error", ea_status_name(c->end.status));
            ea__api_errorf(e, 500, "server_error", NULL, NULL,
                           "internal error while generating (error id %s)", id);
            return true;
        }
        if (c->end.finish == EA_FINISH_CANCELLED) {
            ea__api_errorf(e, 503, "server_error", "server_shutting_down", NULL,
                           "the server is shutting down; the generation was cancelled");
            return true;
        }
    }
    if (g->q.overflow) {
        char id[48];
        ea__server_new_id(g->srv, "err", id, sizeof id);
        ea__server_log(g->srv, "error %s: request %s: the output passed the %zu-byte buffer cap",
                       id, g->id, g->q.cap);
        ea__api_errorf(e, 500, "server_error", NULL, NULL,
                       "the answer exceeded the server's output buffer (error id %s)", id);
        return true;
    }
    return false;
}

/* ,"edgeagent":{...}: where the answer ran and why (relay.h). */
static ea_status put_route(struct ea_buf *o, struct ea__gen *g)
{
    ea_status s = ea__buf_putc(o, ',');
    pthread_mutex_lock(&g->q.mu);
    if (!s)
        s = ea__relay_json_locked(&g->rl, o, ea__now_ms());
    pthread_mutex_unlock(&g->q.mu);
    return s;
}

static ea_status format_full(struct ea__gen *g, struct ea_buf *o)
{
    bool chat = g->kind == EA__REQ_CHAT;
    ea_status s = put_head(o, g, chat ? "chat.completion" : "text_completion");
    for (int i = 0; i < g->n_choices && !s; i++) {
        struct choice *c = &g->choices[i];
        struct ea__genq_buf *q = &g->q.c[i].pending; /* all done: no producer touches it */
        if (i)
            s = ea__buf_putc(o, ',');
        if (!s && chat)
            s = ea__buf_printf(o, "{\"index\":%d,\"message\":{\"role\":\"assistant\",\"content\":",
                               c->index);
        else if (!s)
            s = ea__buf_printf(o, "{\"index\":%d,\"text\":", c->index);
        if (!s && chat && q->n_calls && !q->text.len)
            s = ea__buf_puts(o, "null"); /* a tool-calling answer without text */
        else if (!s)
            s = ea__buf_json_str(o, q->text.data ? q->text.data : "", q->text.len);
        if (!s && chat && q->n_calls) {
            s = ea__buf_puts(o, ",\"tool_calls\":");
            if (!s)
                s = ea__put_tool_calls(o, q);
        }
        if (!s && chat)
            s = ea__buf_puts(o, ",\"refusal\":null}");
        if (!s)
            s = ea__buf_puts(o, ",\"logprobs\":");
        if (!s)
            s = put_logprobs(o, g, c, q, q->text.len);
        if (!s)
            s = ea__buf_printf(o, ",\"finish_reason\":\"%s\"}", finish_name(&g->q.c[i].end));
    }
    if (!s)
        s = ea__buf_puts(o, "],\"usage\":");
    if (!s)
        s = put_usage(o, g);
    if (!s)
        s = put_route(o, g);
    if (!s)
        s = ea__buf_putc(o, '}');
    return s;
}

/* SSE chunks of choice c's tool calls in local: per call a first delta
 * (id, type, name) and its arguments in pieces as they came, each in a
 * chunk of its own. */
static ea_status sse_tool_chunks(struct ea__gen *g, struct choice *c)
{
    struct ea_buf *o = &g->out;
    const struct ea__genq_buf *b = &c->local;
    ea_status s = EA_OK;
    for (int32_t i = 0; i < b->n_calls && !s; i++) {
        size_t off = 0;
        /* an opening entry: the first delta, then its arguments; a
         * continuation: more arguments */
        bool first = b->calls[i].first;
        for (; !s && (first || off < b->calls[i].args_len); first = false) {
            s = ea__buf_puts(o, "data: ");
            if (!s)
                s = put_head(o, g, "chat.completion.chunk");
            if (!s)
                s = ea__buf_printf(o, "{\"index\":%d,\"delta\":{\"tool_calls\":[", c->index);
            if (!s && first) {
                s = ea__put_tool_delta_first(o, b, i);
            } else if (!s) {
                size_t n = ea__tool_args_piece(b, i, off);
                s = ea__put_tool_delta_args(o, b, i, off, n);
                off += n;
            }
            if (!s)
                s = ea__buf_puts(o, "]},\"logprobs\":null,\"finish_reason\":null}]");
            if (!s && g->include_usage)
                s = ea__buf_puts(o, ",\"usage\":null");
            if (!s)
                s = ea__buf_puts(o, "}\n\n");
        }
    }
    return s;
}

/* One SSE chunk for choice c carrying local (text + logprobs), and/or its
 * finish reason; then its tool calls' chunks. */
static ea_status sse_chunk(struct ea__gen *g, struct choice *c, bool finish)
{
    struct ea_buf *o = &g->out;
    bool chat = g->kind == EA__REQ_CHAT;
    if (!finish && c->local.n_calls && !c->local.text.len && !c->local.n_lps && c->sent_role) {
        ea_status s = sse_tool_chunks(g, c); /* nothing but calls */
        ea__genq_buf_reset(&c->local);
        return s;
    }
    ea_status s = ea__buf_puts(o, "data: ");
    if (!s)
        s = put_head(o, g, chat ? "chat.completion.chunk" : "text_completion");
    if (!s && chat) {
        s = ea__buf_printf(o, "{\"index\":%d,\"delta\":{", c->index);
        if (!s && !c->sent_role) {
            s = ea__buf_puts(o, "\"role\":\"assistant\",");
            c->sent_role = true;
        }
        if (!s && !c->local.text.len && c->local.n_calls) {
            s = ea__buf_puts(o, "\"content\":null"); /* the role, then the calls */
        } else if (!s && (c->local.text.len || !finish)) {
            s = ea__buf_puts(o, "\"content\":");
            if (!s)
                s = ea__buf_json_str(o, c->local.text.data ? c->local.text.data : "",
                                     c->local.text.len);
        } else if (!s && o->data[o->len - 1] == ',') {
            o->len--; /* role only */
        }
        if (!s)
            s = ea__buf_putc(o, '}');
    } else if (!s) {
        s = ea__buf_printf(o, "{\"index\":%d,\"text\":", c->index);
        if (!s)
            s = ea__buf_json_str(o, c->local.text.data ? c->local.text.data : "",
                                 c->local.text.len);
    }
    if (!s)
        s = ea__buf_puts(o, ",\"logprobs\":");
    if (!s)
        s = put_logprobs(o, g, c, &c->local, c->local.text.len);
    if (!s && finish)
        s = ea__buf_printf(o, ",\"finish_reason\":\"%s\"}]", finish_name(&g->q.c[c->index].end));
    else if (!s)
        s = ea__buf_puts(o, ",\"finish_reason\":null}]");
    if (!s && g->include_usage)
        s = ea__buf_puts(o, ",\"usage\":null");
    if (!s)
        s = ea__buf_puts(o, "}\n\n");
    if (!s && c->local.n_calls)
        s = sse_tool_chunks(g, c);
    ea__genq_buf_reset(&c->local);
    return s;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct ea__gen *g = cls;
    for (;;) {
        if (g->out_off < g->out.len) {
            size_t n = g->out.len - g->out_off;
            if (n > max)
                n = max;
            memcpy(buf, g->out.data + g->out_off, n);
            g->out_off += n;
            return (ssize_t)n;
        }
        ea__buf_reset(&g->out);
        g->out_off = 0;
        if (g->final_queued)
            return MHD_CONTENT_READER_END_OF_STREAM;
        bool any = false;
        pthread_mutex_lock(&g->q.mu);
        if (g->q.overflow) {
            pthread_mutex_unlock(&g->q.mu);
            ea__server_log(g->srv, "request %s: client left more than %zu bytes unread; closing",
                           g->id, g->q.cap);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        for (int i = 0; i < g->n_choices; i++) {
            struct choice *c = &g->choices[i];
            if (c->sent_finish)
                continue;
            if (ea__genq_take_locked(&g->q, i, &c->local))
                any = true;
            /* a choice finishes after its last text, under the same lock, so a
             * choice seen done here has nothing more to come */
            c->done_seen = g->q.c[i].done;
            any |= c->done_seen;
        }
        bool all_done = ended_locked(g);
        any |= all_done; /* the final chunk is still to be queued */
        if (!any) {
            /* nothing to send: park the connection until the engine has output */
            g->suspended = true;
            MHD_suspend_connection(g->conn);
            pthread_mutex_unlock(&g->q.mu);
            return 0;
        }
        pthread_mutex_unlock(&g->q.mu);
        ea_status s = EA_OK;
        for (int i = 0; i < g->n_choices && !s; i++) {
            struct choice *c = &g->choices[i];
            if (c->sent_finish)
                continue;
            if (c->local.text.len || c->local.n_lps || c->local.n_calls || !c->sent_role)
                s = sse_chunk(g, c, false);
            if (!s && c->done_seen) {
                c->sent_finish = true;
                enum ea_finish_reason f = g->q.c[i].end.finish;
                if (f == EA_FINISH_STOP || f == EA_FINISH_LENGTH)
                    s = sse_chunk(g, c, true);
            }
        }
        if (!s && all_done) {
            bool finished = true;
            for (int i = 0; i < g->n_choices; i++)
                finished &= g->choices[i].sent_finish;
            if (finished) {
                struct ea__api_error e;
                if (gen_failure(g, &e)) {
                    s = ea__buf_puts(&g->out, "data: {\"error\":{\"message\":");
                    if (!s)
                        s = ea__buf_json_str(&g->out, e.message, strlen(e.message));
                    if (!s)
                        s = ea__buf_printf(&g->out, ",\"type\":\"%s\",\"param\":null,\"code\":%s%s%s}}\n\n",
                                           e.type, e.code ? "\"" : "", e.code ? e.code : "null",
                                           e.code ? "\"" : "");
                } else {
                    /* the last chunk: usage (when asked for) and where it ran */
                    s = ea__buf_puts(&g->out, "data: ");
                    if (!s)
                        s = put_head(&g->out, g, g->kind == EA__REQ_CHAT ? "chat.completion.chunk"
                                                                          : "text_completion");
                    if (!s)
                        s = ea__buf_puts(&g->out, g->include_usage ? "],\"usage\":" : "]");
                    if (!s && g->include_usage)
                        s = put_usage(&g->out, g);
                    if (!s)
                        s = put_route(&g->out, g);
                    if (!s)
                        s = ea__buf_puts(&g->out, "}\n\n");
                }
                if (!s)
                    s = ea__buf_puts(&g->out, "data: [DONE]\n\n");
                g->final_queued = true;
            }
        }
        if (s)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static void stream_free(void *cls) { gen_unref(cls); }

/* ---- request handling ---------------------------------------------------------------- */

/* A generation for n_choices choices of *r (moved into it, with the HTTP
 * body), registered with the server, holding the HTTP request's reference;
 * NULL when out of memory (r is left to the caller). */
static struct ea__gen *gen_create(struct ea__req_ctx *ctx, struct MHD_Connection *conn,
                                  struct ea__gen_request *r, int n_choices,
                                  const struct ea_route_plan *plan, const char *task, uint64_t seed)
{
    ea_server *srv = ctx->srv;
    struct ea__gen *g = ea_calloc(1, sizeof *g);
    /* the same cap bounds a stream's unsent output and a whole non-streamed answer */
    size_t qcap = srv->p.max_stream_pending;
    if (g)
        g->choices = ea_calloc((size_t)n_choices, sizeof *g->choices);
    /* one reference: the HTTP request's */
    if (!g || !g->choices ||
        ea__genq_init(&g->q, n_choices, qcap, r->logprobs, r->top_logprobs, gen_wake, gen_free, g)) {
        if (g)
            ea_free(g->choices);
        ea_free(g);
        return NULL;
    }
    g->srv = srv;
    g->req = *r; /* moved: the generation releases it */
    memset(r, 0, sizeof *r);
    g->body = ctx->body; /* moved too: req.body points into it */
    memset(&ctx->body, 0, sizeof ctx->body);
    g->conn = conn;
    g->fd = -1;
    g->kind = g->req.kind;
    g->stream = g->req.stream;
    g->include_usage = g->req.include_usage;
    g->n_choices = n_choices;
    g->created = (int64_t)time(NULL);
    g->t_start = ctx->t_start;
    /* every formatted byte comes from the choices' queues (capped at qcap
     * bytes of text each, and ea__genq_max_lps(qcap) logprob entries) */
    g->answer_cap = EA__JSON_SLACK + (size_t)n_choices * (qcap * EA__JSON_ESCAPE +
                                                          (ea__genq_max_lps(qcap) + 1) *
                                                              EA__LOGPROB_JSON_BYTES);
    ea__buf_init(&g->out, g->answer_cap);
    snprintf(g->id, sizeof g->id, "%s", ctx->id);
    snprintf(g->cors_origin, sizeof g->cors_origin, "%s", ctx->cors_origin);
    for (int i = 0; i < n_choices; i++) {
        struct choice *c = &g->choices[i];
        c->index = i;
        c->prompt_idx = i / g->req.n;
        ea__genq_buf_init(&c->local, qcap);
        c->sent_role = g->kind != EA__REQ_CHAT; /* completions chunks carry no role */
    }
    /* before it is listed: ea__gens_cancel_all may reach it from then on */
    ea__relay_init(&g->rl, srv, &g->q, &g->req, g->id, seed, ctx->t_start, plan, task);
    pthread_mutex_lock(&srv->mu);
    g->next = srv->gens;
    if (srv->gens)
        srv->gens->prev = g;
    srv->gens = g;
    srv->n_gens++;
    pthread_mutex_unlock(&srv->mu);
    return g;
}

/* The routing headers: where it ran, why, what was tried, the router's own time. */
static void add_route_headers(struct ea__gen *g, struct MHD_Response *resp)
{
    struct ea__relay_info info;
    pthread_mutex_lock(&g->q.mu);
    ea__relay_info_locked(&g->rl, &info);
    const char *why = ea__relay_reason_locked(&g->rl); /* the plan's, or a constant */
    pthread_mutex_unlock(&g->q.mu);
    char v[32];
    if (info.source[0])
        MHD_add_response_header(resp, "X-EdgeAgent-Source", info.source);
    MHD_add_response_header(resp, "X-EdgeAgent-Route-Reason", why);
    if (info.attempts[0])
        MHD_add_response_header(resp, "X-EdgeAgent-Attempts", info.attempts);
    snprintf(v, sizeof v, "%.3f", info.overhead_ms > 0 ? info.overhead_ms : 0);
    MHD_add_response_header(resp, "X-EdgeAgent-Overhead-Ms", v);
}

/* Answers with the event stream (its reader drains the queue). */
static int respond_stream(struct ea__req_ctx *ctx, struct MHD_Connection *conn, struct ea__gen *g)
{
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, g, stream_free);
    if (!resp) {
        ea__relay_cancel(&g->rl);
        struct ea__api_error e;
        ea__api_errorf(&e, 500, "server_error", NULL, NULL, "out of memory");
        return ea__respond_error(ctx, conn, &e);
    }
    pthread_mutex_lock(&g->q.mu);
    ea__genq_ref_locked(&g->q); /* the response's */
    pthread_mutex_unlock(&g->q.mu);
    take_unenforced(ctx, g);
    MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    add_route_headers(g, resp);
    ea__add_common_headers(ctx, resp);
    ctx->status = 200;
    ctx->responded = true;
    ea__metrics_count(&ctx->srv->metrics, ctx->ep, 200);
    int ret = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Under mu: whether the waiting request can be answered: every choice is
 * done, or (streams) an attempt has won. */
static bool answerable_locked(const struct ea__gen *g)
{
    return ended_locked(g) || (g->stream && ea__relay_committed_locked(&g->rl));
}

/* Every request waits suspended until it can be answered (a stream until an
 * attempt has produced output, so its status and headers say where it ran),
 * or answers at once when it already can. */
static int park_or_answer(struct ea__req_ctx *ctx, struct MHD_Connection *conn, struct ea__gen *g)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    pthread_mutex_lock(&g->q.mu);
    g->fd = ci ? ci->connect_fd : -1;
    if (!answerable_locked(g)) {
        g->suspended = true;
        MHD_suspend_connection(conn);
        pthread_mutex_unlock(&g->q.mu);
        return MHD_YES;
    }
    pthread_mutex_unlock(&g->q.mu);
    return ea__handle_generate_resumed(ctx, conn);
}

/* privacy: redact. When the plan may send the request off the device, its
 * texts are redacted once here (one map for every attempt; remote upstreams
 * get only the redacted body and restore the answer). Fail closed: without
 * a detector, or when redaction fails, only the device may serve it (an
 * explicit 503 when nothing is left). */
static bool redact_for_remote(ea_server *srv, const struct ea__gen_request *r, struct ea_route_plan *plan,
                              struct ea_privacy_map **map, char **body, size_t *len,
                              struct ea__api_error *e)
{
    const struct ea_router_config *cfg = srv->p.router_config;
    bool remote = false;
    for (uint32_t i = 0; i < plan->n; i++)
        remote |= cfg->upstreams[plan->order[i]].kind != EA_UPSTREAM_LOCAL;
    if (!remote)
        return true;
    struct ea_error err = {0};
    if (srv->p.privacy &&
        ea__privacy_redact_body(srv->p.privacy, r->body, r->body_len, map, body, len, &err))
        return true;
    ea__server_log(srv, "privacy: %s; the request stays on the device",
                   srv->p.privacy ? err.msg : "no detector");
    ea__route_keep_device(srv, plan);
    if (plan->n)
        return true;
    return ea__api_errorf(e, 503, "server_error", "privacy_unavailable", NULL,
                          "the request's data could not be redacted and no device upstream may "
                          "serve it");
}

/* Routes, admits, starts and answers. *r is moved into the generation once
 * one exists (the caller releases whatever is left in it). */
static int generate(struct ea__req_ctx *ctx, struct MHD_Connection *conn, struct ea__gen_request *r)
{
    ea_server *srv = ctx->srv;
    struct ea__api_error e = {0};
    struct ea_route_plan plan;
    char task[EA_CONFIG_MAX_NAME + 1];
    enum ea_privacy_mode privacy;
    const char *htask = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-EdgeAgent-Task");
    if (!ea__route_request(srv, r, htask, &plan, task, sizeof task, &privacy, &e))
        return ea__respond_error(ctx, conn, &e);
    struct ea_privacy_map *pmap = NULL;
    char *pbody = NULL;
    size_t pbody_len = 0;
    if (privacy == EA_PRIVACY_REDACT && !redact_for_remote(srv, r, &plan, &pmap, &pbody, &pbody_len, &e))
        return ea__respond_error(ctx, conn, &e);

    /* admission: a cap on generations in flight besides the engine's queue */
    pthread_mutex_lock(&srv->mu);
    bool full = srv->n_gens >= srv->p.max_inflight;
    pthread_mutex_unlock(&srv->mu);
    if (full) {
        ea__api_errorf(&e, 429, "rate_limit_error", "server_overloaded", NULL,
                       "the server is at its limit of %d requests in flight; retry shortly",
                       srv->p.max_inflight);
        return ea__respond_error(ctx, conn, &e);
    }
    int n_prompts = r->kind == EA__REQ_CHAT ? 1 : r->n_prompts;
    uint64_t seed = r->has_seed ? r->seed : ea__server_rand(srv);
    struct ea__gen *g = gen_create(ctx, conn, r, n_prompts * r->n, &plan, task, seed);
    if (g) { /* the generation owns them from here */
        g->rl.privacy = privacy;
        g->pmap = pmap;
        g->pbody = pbody;
        g->req.privacy_map = pmap;
        g->req.upstream_body = pbody;
        g->req.upstream_body_len = pbody_len;
    } else {
        ea_privacy_map_destroy(pmap);
        ea_free(pbody);
    }
    if (!g) {
        ea__api_errorf(&e, 500, "server_error", NULL, NULL, "out of memory");
        return ea__respond_error(ctx, conn, &e);
    }
    ctx->gen = g;
    if (!ea__relay_start(&g->rl, &e)) {
        if (e.status == 429)
            ea__server_log(srv, "request %s: 429 %s", ctx->id, e.message);
        return ea__respond_error(ctx, conn, &e);
    }
    return park_or_answer(ctx, conn, g);
}

int ea__handle_generate(struct ea__req_ctx *ctx, struct MHD_Connection *conn)
{
    ea_server *srv = ctx->srv;
    enum ea__req_kind kind = ctx->ep == EA__EP_CHAT ? EA__REQ_CHAT : EA__REQ_COMPLETION;
    /* token ids are checked against the vocabulary served now (the one
     * the request will run on, unless a switch comes in between: a token
     * out of the new vocabulary is then the engine's error) */
    struct ea__backend *be = ea__backend_acquire(srv);
    struct ea__req_limits lim = {srv->p.max_tokens, srv->p.max_n,
                                 be ? (int32_t)ea_tokenizer_n_vocab(be->view.tok) : 0};
    ea__backend_release(srv, be);
    struct ea__gen_request r;
    struct ea__api_error e = {0};
    if (!ea__gen_request_parse(kind, ctx->body.data ? ctx->body.data : "", ctx->body.len, &lim, &r,
                               &e))
        return ea__respond_error(ctx, conn, &e);
    int ret = generate(ctx, conn, &r);
    ea__gen_request_release(&r); /* empty when the generation took it */
    return ret;
}

/* The whole answer of a finished non-streamed request: its status, JSON body
 * and Server-Timing value (HTTP threads, or direct_answer). */
static void full_answer(struct ea__gen *g, struct ea__api_error *e, int *status, struct ea_buf *o,
                        char *timing, size_t tcap)
{
    timing[0] = '\0';
    if (gen_failure(g, e)) {
        *status = e->status;
        ea__api_error_json(e, o);
        return;
    }
    if (g->srv->p.log_content)
        for (int i = 0; i < g->n_choices; i++)
            ea__server_log_content(g->srv, g->id, "completion",
                                   g->q.c[i].pending.text.data ? g->q.c[i].pending.text.data : "",
                                   g->q.c[i].pending.text.len);
    if (format_full(g, o)) {
        char id[48];
        ea__server_new_id(g->srv, "err", id, sizeof id);
        ea__server_log(g->srv, "error %s: request %s: the answer passed its %zu-byte cap", id, g->id,
                       g->answer_cap);
        ea__api_errorf(e, 500, "server_error", NULL, NULL,
                       "internal error formatting the answer (error id %s)", id);
        o->len = 0;
        *status = 500;
        ea__api_error_json(e, o);
        return;
    }
    /* W3C Server-Timing: the engine's share (submit to last token, the
     * slowest choice), so clients and benchmarks can tell it from the
     * server's own overhead */
    double eng = 0, q = 0;
    for (int i = 0; i < g->n_choices; i++)
        if (g->q.c[i].end.total_ms > eng) {
            eng = g->q.c[i].end.total_ms;
            q = g->q.c[i].end.queue_ms;
        }
    snprintf(timing, tcap, "queue;dur=%.3f, engine;dur=%.3f", q, eng);
    *status = 200;
}

/* Writes all of buf to the non-blocking socket fd within deadline_ms. */
static bool write_all(int fd, const char *buf, size_t n, double deadline_ms)
{
    double end = ea__now_ms() + deadline_ms;
    while (n) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            buf += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return false;
        double left = end - ea__now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, (int)left + 1);
    }
    return true;
}

static void *direct_answer(void *arg)
{
    struct ea__gen *g = arg;
    ea_server *srv = g->srv;
    struct ea_buf body, head;
    ea__buf_init(&body, g->answer_cap);
    ea__buf_init(&head, EA__ANSWER_HEAD_MAX);
    int status = 500;
    char timing[96];
    struct ea__api_error e;
    full_answer(g, &e, &status, &body, timing, sizeof timing);
    ea_status st = ea__buf_printf(&head,
                                  "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                                  "Content-Length: %zu\r\nX-Request-Id: %s\r\n"
                                  "X-Content-Type-Options: nosniff\r\nConnection: close\r\n",
                                  status, MHD_get_reason_phrase_for((unsigned)status), body.len, g->id);
    if (!st && timing[0])
        st = ea__buf_printf(&head, "Server-Timing: %s\r\n", timing);
    if (!st && g->cors_origin[0])
        st = ea__buf_printf(&head, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n", g->cors_origin);
    if (!st && g->unenforced[0])
        st = ea__buf_printf(&head, "X-EdgeAgent-Unenforced: %s\r\n", g->unenforced);
    if (!st)
        st = ea__buf_puts(&head, "\r\n");
    double deadline = srv->p.idle_timeout_s * 1e3;
    bool ok = !st && write_all(g->direct_fd, head.data, head.len, deadline) &&
              write_all(g->direct_fd, body.data ? body.data : "", body.len, deadline);
    close(g->direct_fd);
    ea__buf_release(&body);
    ea__buf_release(&head);
    ea__metrics_count(&srv->metrics, g->kind == EA__REQ_CHAT ? EA__EP_CHAT : EA__EP_COMPLETIONS,
                      status);
    pthread_mutex_lock(&g->q.mu);
    g->direct_status = ok ? status : 0;
    if (!ok)
        g->disconnected = true;
    wake_locked(g); /* libmicrohttpd reads the end of the stream and closes */
    pthread_mutex_unlock(&g->q.mu);
    gen_unref(g);
    return NULL;
}

int ea__gen_direct_status(struct ea__gen *g)
{
    pthread_mutex_lock(&g->q.mu);
    int st = g->direct_status;
    pthread_mutex_unlock(&g->q.mu);
    return st;
}

int ea__handle_generate_resumed(struct ea__req_ctx *ctx, struct MHD_Connection *conn)
{
    struct ea__gen *g = ctx->gen;
    pthread_mutex_lock(&g->q.mu);
    if (!answerable_locked(g)) { /* woken early: park again */
        g->suspended = true;
        MHD_suspend_connection(conn);
        pthread_mutex_unlock(&g->q.mu);
        return MHD_YES;
    }
    if (g->stream) {
        struct ea__api_error e;
        bool failed = !ea__relay_committed_locked(&g->rl) && ea__relay_error_locked(&g->rl, &e);
        pthread_mutex_unlock(&g->q.mu);
        /* nothing was streamed: the failure is an ordinary error response */
        return failed ? ea__respond_error(ctx, conn, &e) : respond_stream(ctx, conn, g);
    }
    const bool left = g->client_left;
    const int direct = g->direct_status;
    pthread_mutex_unlock(&g->q.mu);
    if (direct)
        return MHD_NO; /* answered on the socket already (direct_answer) */
    if (left) { /* nobody to answer: close the connection */
        ea__server_log(ctx->srv, "request %s: client closed the connection before the answer; generation stopped",
                       g->id);
        return MHD_NO;
    }
    struct ea_buf o;
    ea__buf_init(&o, g->answer_cap);
    int status;
    char timing[96];
    struct ea__api_error e;
    take_unenforced(ctx, g);
    full_answer(g, &e, &status, &o, timing, sizeof timing);
    if (status != 200) {
        ea__buf_release(&o);
        return ea__respond_error(ctx, conn, &e); /* adds Retry-After etc. */
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(o.len, o.data ? o.data : (char *)"", MHD_RESPMEM_MUST_COPY);
    ea__buf_release(&o);
    if (resp) {
        MHD_add_response_header(resp, "Content-Type", "application/json");
        if (timing[0])
            MHD_add_response_header(resp, "Server-Timing", timing);
        add_route_headers(g, resp);
    }
    return ea__respond(ctx, conn, status, resp);
}
