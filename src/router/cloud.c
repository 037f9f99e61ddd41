/* cloud.c - the cloud client (cloud.h): one thread driving a libcurl multi
 * handle; per transfer the request copy, the delay, the SSE parser over the
 * body, the timers curl has no option for (first token, idle gap, total),
 * and the classification of how it ended.
 *
 * Threads. ea__cloud_start (any thread) copies the request into a transfer
 * and queues it on `incoming` under the client's mutex, then wakes the
 * thread (curl_multi_wakeup). Everything else about a transfer happens on
 * the client thread: it moves queued transfers to its own list, starts
 * them once their delay has passed (an easy handle added to the multi
 * handle: nothing touches the network before), checks the cancel flags
 * (set by ea__cloud_cancel from any thread, followed by a wakeup) and the
 * timers, runs curl_multi_perform (whose write callback feeds the SSE
 * parser and calls on_chunk), reaps finished transfers and calls on_end,
 * then sleeps in curl_multi_poll until the next timer, socket activity or
 * wakeup. A transfer is reference-counted: the caller's handle and the
 * thread's (dropped after on_end).
 * Does not hold: the meaning of chunks for a generation (upstream_openai.c),
 * retries, fallbacks, breakers (the router), environment access.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "router/cloud.h"
#include "router/sse.h"

/* Connections the shared cache keeps alive (per client, all hosts). */
#define CLOUD_MAX_CONNECTS 64
/* The longest the thread sleeps when no timer is due sooner. */
#define CLOUD_POLL_MAX_MS 1000
/* Room for "Authorization: Bearer " and a header line's ": ". */
#define CLOUD_HEADER_FIXED 32

enum tstate { T_WAITING, T_RUNNING };

struct ea__cloud {
    CURLM *multi;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    /* under mu */
    struct ea__cloud_transfer *in_head, *in_tail; /* queued by start, not yet taken */
    bool stopping;
    _Atomic int n_active; /* started and not yet ended */
    /* client thread only */
    struct ea__cloud_transfer *list; /* taken transfers (doubly linked) */
};

struct ea__cloud_transfer {
    struct ea__cloud *c;
    _Atomic int refs;
    _Atomic bool cancel;
    struct ea__cloud_transfer *next_in; /* incoming queue (under mu) */
    struct ea__cloud_transfer *prev, *next; /* the thread's list */
    /* the request (owned copies) */
    char *url, *body, *ca_file;
    size_t body_len;
    struct curl_slist *hdrs; /* holds the key: wiped before being freed */
    struct ea_upstream_timeouts to;
    double start_at; /* monotonic ms */
    ea__cloud_chunk_fn on_chunk;
    ea__cloud_end_fn on_end;
    void *user;
    /* client thread only */
    enum tstate state;
    CURL *easy;
    double t_start, t_last_rx;
    bool got_body, head_checked, error_body, done_seen, first_output;
    bool decided; /* the outcome is set (a callback, a timer, a cancel) */
    struct ea__sse sse;
    struct ea_buf errbody;
    char curl_err[CURL_ERROR_SIZE];
    struct ea__cloud_result res;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *ea__cloud_outcome_name(enum ea__cloud_outcome o)
{
    static const char *const names[EA_CLOUD_N_OUTCOMES] = {
        "ok", "connect_error", "timeout", "http_error", "stream_error", "malformed", "cut", "cancelled"};
    return (unsigned)o < EA_CLOUD_N_OUTCOMES ? names[o] : "unknown";
}

const char *ea__cloud_timeout_name(enum ea__cloud_timeout t)
{
    static const char *const names[] = {"none", "connect", "first_token", "idle", "total"};
    return (unsigned)t <= EA_CLOUD_TIMEOUT_TOTAL ? names[t] : "unknown";
}

/* ---- messages --------------------------------------------------------------------------- */

/* Copies s[0..n) into dst (cap bytes) as one short line: control bytes
 * become spaces, a cut never splits a UTF-8 sequence. */
static void put_text(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        dst[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    if (o + 1 >= cap && o < n) /* cut: back off to a sequence boundary */
        while (o > 0 && ((unsigned char)dst[o] & 0xC0) == 0x80)
            o--;
    dst[o] = '\0';
}

static void set_msg(struct ea__cloud_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_msg(struct ea__cloud_result *r, const char *fmt, ...)
{
    char tmp[EA__CLOUD_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    put_text(r->message, sizeof r->message, tmp, strlen(tmp));
}

/* The transfer's outcome, decided now (the first decision wins). */
static void decide(struct ea__cloud_transfer *t, enum ea__cloud_outcome o, enum ea__cloud_timeout to)
{
    if (t->decided)
        return;
    t->decided = true;
    t->res.outcome = o;
    t->res.timeout = to;
}

/* An upstream's error object (OpenAI: {"message", "type", "code"}), or a
 * string, into the result's message and code. */
static void error_from_json(struct ea__cloud_result *r, const json_t *e)
{
    if (json_is_string(e)) {
        put_text(r->message, sizeof r->message, json_string_value(e), json_string_length(e));
        return;
    }
    if (!json_is_object(e))
        return;
    const json_t *m = json_object_get(e, "message");
    if (!json_is_string(m))
        m = json_object_get(e, "detail");
    if (json_is_string(m))
        put_text(r->message, sizeof r->message, json_string_value(m), json_string_length(m));
    const json_t *code = json_object_get(e, "code");
    if (!json_is_string(code) && !json_is_integer(code))
        code = json_object_get(e, "type");
    if (json_is_string(code))
        put_text(r->error_code, sizeof r->error_code, json_string_value(code), json_string_length(code));
    else if (json_is_integer(code))
        snprintf(r->error_code, sizeof r->error_code, "%lld", (long long)json_integer_value(code));
}

/* The message of an error body or an error event: {"error": {...}} or
 * {"error": "..."} or {"message": "..."}; text that is not JSON (a proxy's
 * "upstream connect error ...") is quoted as it is, short, unless it looks
 * like a page (starts with '<'). */
static void error_from_text(struct ea__cloud_result *r, const char *s, size_t n)
{
    json_t *j = json_loadb(s, n, JSON_ALLOW_NUL, NULL);
    if (json_is_object(j)) {
        const json_t *e = json_object_get(j, "error");
        error_from_json(r, e && !json_is_null(e) ? e : j);
    } else if (n && s[0] != '<') {
        put_text(r->message, sizeof r->message, s, n);
    }
    json_decref(j);
}

/* ---- the reply -------------------------------------------------------------------------- */

/* Whether a chunk carries output, and the bytes of its content strings. */
static bool chunk_output(const json_t *chunk, uint64_t *content_bytes)
{
    const json_t *choices = json_object_get(chunk, "choices");
    bool out = false;
    size_t i;
    const json_t *ch;
    json_array_foreach(choices, i, ch) {
        if (json_is_string(json_object_get(ch, "finish_reason")))
            out = true;
        const json_t *text = json_object_get(ch, "text"); /* completions */
        if (json_is_string(text) && json_string_length(text)) {
            out = true;
            *content_bytes += json_string_length(text);
        }
        const json_t *delta = json_object_get(ch, "delta"); /* chat */
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)delta, key, v) {
            if (!strcmp(key, "role") || json_is_null(v))
                continue;
            if (json_is_string(v)) {
                size_t len = json_string_length(v);
                out |= len > 0;
                if (!strcmp(key, "content"))
                    *content_bytes += len;
            } else if (!json_is_array(v) || json_array_size(v)) {
                out = true; /* tool_calls, function_call */
            }
        }
    }
    return out;
}

static void take_usage(struct ea__cloud_result *r, const json_t *u)
{
    if (!json_is_object(u))
        return;
    r->has_usage = true;
    r->prompt_tokens = (int32_t)json_integer_value(json_object_get(u, "prompt_tokens"));
    r->completion_tokens = (int32_t)json_integer_value(json_object_get(u, "completion_tokens"));
    r->cached_tokens = (int32_t)json_integer_value(
        json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens"));
}

/* One SSE event (on the client thread, inside curl_multi_perform). */
static bool on_event(void *user, const char *event, const char *data, size_t len)
{
    struct ea__cloud_transfer *t = user;
    if (t->done_seen)
        return true; /* nothing after [DONE] counts */
    if (!strcmp(event, "error")) {
        decide(t, EA_CLOUD_STREAM_ERROR, EA_CLOUD_TIMEOUT_NONE);
        error_from_text(&t->res, data, len);
        if (!t->res.message[0])
            set_msg(&t->res, "the upstream sent an error event");
        return false;
    }
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        t->done_seen = true;
        return true;
    }
    if (len == 0)
        return true; /* an empty data line: a heartbeat */
    json_error_t jerr;
    json_t *j = json_loadb(data, len, JSON_ALLOW_NUL, &jerr);  /* valid JSON may carry \u0000 (a model can emit it) */
    if (!json_is_object(j)) {
        decide(t, EA_CLOUD_MALFORMED, EA_CLOUD_TIMEOUT_NONE);
        /* jansson's text quotes the input: say where, not what */
        if (j)
            set_msg(&t->res, "a data line of the stream is JSON but not an object");
        else
            set_msg(&t->res, "a data line of the stream is not valid JSON (at byte %d)", jerr.position);
        json_decref(j);
        return false;
    }
    const json_t *e = json_object_get(j, "error");
    if (e && !json_is_null(e)) {
        decide(t, EA_CLOUD_STREAM_ERROR, EA_CLOUD_TIMEOUT_NONE);
        error_from_json(&t->res, e);
        if (!t->res.message[0])
            set_msg(&t->res, "the upstream sent an error object in the stream");
        json_decref(j);
        return false;
    }
    take_usage(&t->res, json_object_get(j, "usage"));
    if (chunk_output(j, &t->res.content_bytes)) {
        t->res.n_output_chunks++;
        if (!t->first_output) {
            t->first_output = true;
            t->res.ttft_ms = now_ms() - t->t_start;
        }
    }
    t->res.n_chunks++;
    enum ea__cloud_verdict v = t->on_chunk ? t->on_chunk(t->user, j) : EA_CLOUD_CONTINUE;
    json_decref(j);
    if (v == EA_CLOUD_STOP) {
        decide(t, EA_CLOUD_CANCELLED, EA_CLOUD_TIMEOUT_NONE);
        set_msg(&t->res, "stopped by the consumer");
        return false;
    }
    if (v == EA_CLOUD_REJECT) {
        decide(t, EA_CLOUD_MALFORMED, EA_CLOUD_TIMEOUT_NONE);
        set_msg(&t->res, "a chunk of the stream does not fit the request (rejected by the consumer)");
        return false;
    }
    return true;
}

static bool is_event_stream(const char *ct)
{
    static const char want[] = "text/event-stream";
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = sizeof want - 1;
    return !strncasecmp(ct, want, n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* The response head, checked at the first body byte (or at the end when
 * the body was empty): false when the reply cannot be a stream. */
static bool check_head(struct ea__cloud_transfer *t)
{
    t->head_checked = true;
    long code = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    t->res.http_status = (int)code;
    if (code >= 400) {
        t->error_body = true; /* read (up to a cap) for its message */
        return true;
    }
    if (code < 200 || code >= 300) {
        decide(t, EA_CLOUD_MALFORMED, EA_CLOUD_TIMEOUT_NONE);
        set_msg(&t->res, "unexpected HTTP status %ld (redirects are not followed)", code);
        return false;
    }
    char *ct = NULL;
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ct);
    if (!is_event_stream(ct)) {
        decide(t, EA_CLOUD_MALFORMED, EA_CLOUD_TIMEOUT_NONE);
        char shown[64];
        put_text(shown, sizeof shown, ct ? ct : "none", strlen(ct ? ct : "none"));
        set_msg(&t->res, "HTTP %ld with content type '%s', not a text/event-stream", code, shown);
        return false;
    }
    return true;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *user)
{
    struct ea__cloud_transfer *t = user;
    size_t n = size * nmemb;
    t->t_last_rx = now_ms();
    t->got_body = true;
    if (!t->head_checked && !check_head(t))
        return 0; /* any value other than n aborts the transfer */
    if (t->error_body) {
        size_t room = EA__CLOUD_ERROR_BODY_MAX - t->errbody.len;
        ea__buf_append(&t->errbody, p, n < room ? n : room); /* the rest is dropped */
        return n;
    }
    if (atomic_load_explicit(&t->cancel, memory_order_relaxed)) {
        decide(t, EA_CLOUD_CANCELLED, EA_CLOUD_TIMEOUT_NONE);
        return 0;
    }
    struct ea_error err = {0};
    ea_status st = ea__sse_feed(&t->sse, p, n, &err);
    if (st == EA_ECANCELLED) /* on_event decided why */
        return 0;
    if (st) {
        decide(t, EA_CLOUD_MALFORMED, EA_CLOUD_TIMEOUT_NONE);
        set_msg(&t->res, "%s", err.msg);
        return 0;
    }
    return n;
}

static int on_prereq(void *user, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    ((struct ea__cloud_transfer *)user)->res.connected = true;
    return CURL_PREREQFUNC_OK;
}

/* Retry-After (seconds or an HTTP date), or retry-after-ms (Azure), in ms,
 * at most EA__CLOUD_RETRY_AFTER_MAX_MS; -1 when absent or unreadable. */
static int64_t retry_after(CURL *easy)
{
    const double max = (double)EA__CLOUD_RETRY_AFTER_MAX_MS;
    struct curl_header *h = NULL;
    double ms = -1;
    if (curl_easy_header(easy, "retry-after-ms", 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h->value) {
        char *end;
        double v = strtod(h->value, &end);
        if (end != h->value && v >= 0)
            ms = v;
    }
    if (ms < 0 && curl_easy_header(easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h->value) {
        const char *v = h->value;
        while (*v == ' ')
            v++;
        if (isdigit((unsigned char)*v)) {
            char *end;
            double sec = strtod(v, &end);
            while (*end == ' ')
                end++;
            if (!*end)
                ms = sec * 1000.0;
        } else {
            time_t when = curl_getdate(v, NULL);
            if (when != (time_t)-1) {
                ms = difftime(when, time(NULL)) * 1000.0;
                if (ms < 0)
                    ms = 0; /* a date in the past: now */
            }
        }
    }
    if (ms < 0)
        return -1;
    return ms > max ? EA__CLOUD_RETRY_AFTER_MAX_MS : (int64_t)ms;
}

/* How a transfer that libcurl finished with rc ended (nothing decided it
 * before). */
static void classify(struct ea__cloud_transfer *t, CURLcode rc)
{
    struct ea__cloud_result *r = &t->res;
    if (rc == CURLE_OK && !t->head_checked && !check_head(t))
        return; /* no body, and a head that cannot be a stream: malformed */
    if (r->http_status >= 400) { /* even when the error body was cut short */
        decide(t, EA_CLOUD_HTTP_ERROR, EA_CLOUD_TIMEOUT_NONE);
        r->retry_after_ms = retry_after(t->easy);
        error_from_text(r, t->errbody.data ? t->errbody.data : "", t->errbody.len);
        if (!r->message[0])
            set_msg(r, "HTTP %d from the upstream", r->http_status);
        return;
    }
    if (rc == CURLE_OK) {
        decide(t, EA_CLOUD_CUT, EA_CLOUD_TIMEOUT_NONE);
        set_msg(&t->res, t->got_body ? "the stream ended before its [DONE] (the upstream closed it)"
                                     : "the upstream sent an empty reply");
        return;
    }
    const char *why = t->curl_err[0] ? t->curl_err : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        decide(t, EA_CLOUD_TIMEOUT, r->connected ? EA_CLOUD_TIMEOUT_TOTAL : EA_CLOUD_TIMEOUT_CONNECT);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        decide(t, EA_CLOUD_CONNECT_ERROR, EA_CLOUD_TIMEOUT_NONE);
        break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_TOO_MANY_REDIRECTS:
        decide(t, EA_CLOUD_MALFORMED, EA_CLOUD_TIMEOUT_NONE);
        break;
    default: /* reset, closed, a broken chunk: the connection ended early */
        decide(t, r->connected ? EA_CLOUD_CUT : EA_CLOUD_CONNECT_ERROR, EA_CLOUD_TIMEOUT_NONE);
        break;
    }
    set_msg(r, "%s", why);
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static void wipe_headers(struct curl_slist *l)
{
    for (struct curl_slist *h = l; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(l);
}

static void transfer_unref(struct ea__cloud_transfer *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    wipe_headers(t->hdrs);
    ea_free(t->url);
    ea_free(t->body);
    ea_free(t->ca_file);
    ea__sse_release(&t->sse);
    ea__buf_release(&t->errbody);
    ea_free(t);
}

void ea__cloud_transfer_release(struct ea__cloud_transfer *t)
{
    if (t)
        transfer_unref(t);
}

void ea__cloud_cancel(struct ea__cloud_transfer *t)
{
    if (!t)
        return;
    atomic_store(&t->cancel, true);
    curl_multi_wakeup(t->c->multi);
}

int ea__cloud_active(struct ea__cloud *c) { return atomic_load(&c->n_active); }

/* Ends t (client thread): removes its handle, settles the outcome, calls
 * on_end and drops the thread's reference. rc: libcurl's result when it
 * finished the transfer. */
static void end_transfer(struct ea__cloud *c, struct ea__cloud_transfer *t, CURLcode rc)
{
    struct ea__cloud_result *r = &t->res;
    if (t->easy) {
        long conns = 0;
        curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &conns);
        r->new_connections = conns;
        if (!r->http_status) {
            long code = 0;
            curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
            r->http_status = (int)code;
        }
        if (t->done_seen) { /* the stream was complete, whatever came after */
            t->decided = true;
            r->outcome = EA_CLOUD_OK;
            r->timeout = EA_CLOUD_TIMEOUT_NONE;
            r->message[0] = '\0';
        } else if (!t->decided) {
            classify(t, rc);
        }
        curl_multi_remove_handle(c->multi, t->easy);
        curl_easy_cleanup(t->easy);
        t->easy = NULL;
        r->elapsed_ms = now_ms() - t->t_start;
    } else if (!t->decided) {
        decide(t, EA_CLOUD_CANCELLED, EA_CLOUD_TIMEOUT_NONE);
    }
    if (r->outcome == EA_CLOUD_CANCELLED && !r->message[0])
        set_msg(r, r->started ? "cancelled" : "cancelled before it was sent");
    if (t->prev)
        t->prev->next = t->next;
    else
        c->list = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
    t->on_end(t->user, r);
    atomic_fetch_sub(&c->n_active, 1);
    transfer_unref(t);
}

/* Sets up t's easy handle and adds it (the request goes out now). */
static bool activate(struct ea__cloud *c, struct ea__cloud_transfer *t, double now)
{
    CURL *e = curl_easy_init();
    if (!e)
        return false;
    t->easy = e;
    t->state = T_RUNNING;
    t->t_start = now;
    t->res.started = true;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdrs);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->curl_err);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (t->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
    if (t->to.connect_ms)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->to.connect_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "edgeagent/0.1");
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        t->easy = NULL;
        return false;
    }
    return true;
}

/* Cancels, starts due transfers, fires timers. */
static void service(struct ea__cloud *c)
{
    double now = now_ms();
    for (struct ea__cloud_transfer *t = c->list, *next; t; t = next) {
        next = t->next;
        if (atomic_load(&t->cancel)) {
            decide(t, EA_CLOUD_CANCELLED, EA_CLOUD_TIMEOUT_NONE);
            end_transfer(c, t, CURLE_OK);
            continue;
        }
        if (t->state == T_WAITING) {
            if (now >= t->start_at && !activate(c, t, now)) {
                decide(t, EA_CLOUD_CONNECT_ERROR, EA_CLOUD_TIMEOUT_NONE);
                set_msg(&t->res, "could not set up the transfer (out of memory)");
                end_transfer(c, t, CURLE_OK);
            }
            continue;
        }
        enum ea__cloud_timeout to = EA_CLOUD_TIMEOUT_NONE;
        const struct ea_upstream_timeouts *tt = &t->to;
        if (tt->total_ms && now >= t->t_start + tt->total_ms)
            to = EA_CLOUD_TIMEOUT_TOTAL;
        else if (tt->first_token_ms && !t->first_output && now >= t->t_start + tt->first_token_ms)
            to = EA_CLOUD_TIMEOUT_FIRST_TOKEN;
        else if (tt->idle_ms && t->got_body && now >= t->t_last_rx + tt->idle_ms)
            to = EA_CLOUD_TIMEOUT_IDLE;
        if (to != EA_CLOUD_TIMEOUT_NONE) {
            decide(t, EA_CLOUD_TIMEOUT, to);
            set_msg(&t->res, "no %s within %u ms",
                    to == EA_CLOUD_TIMEOUT_TOTAL         ? "complete answer"
                    : to == EA_CLOUD_TIMEOUT_FIRST_TOKEN ? "first token"
                                                         : "data after the last chunk",
                    to == EA_CLOUD_TIMEOUT_TOTAL ? tt->total_ms
                    : to == EA_CLOUD_TIMEOUT_FIRST_TOKEN ? tt->first_token_ms
                                                         : tt->idle_ms);
            end_transfer(c, t, CURLE_OK);
        }
    }
}

/* Milliseconds until the next timer (a delay ending, a timeout). */
static int next_wait(struct ea__cloud *c)
{
    double now = now_ms(), next = now + CLOUD_POLL_MAX_MS;
#define SOONER(x) \
    do {          \
        if ((x) < next) next = (x); \
    } while (0)
    for (struct ea__cloud_transfer *t = c->list; t; t = t->next) {
        if (t->state == T_WAITING) {
            SOONER(t->start_at);
            continue;
        }
        if (t->to.total_ms)
            SOONER(t->t_start + t->to.total_ms);
        if (t->to.first_token_ms && !t->first_output)
            SOONER(t->t_start + t->to.first_token_ms);
        if (t->to.idle_ms && t->got_body)
            SOONER(t->t_last_rx + t->to.idle_ms);
    }
#undef SOONER
    double w = next - now;
    return w <= 0 ? 0 : (int)w + 1; /* round up: never wake just before a deadline */
}

/* Moves queued transfers to the thread's list; whether to stop. */
static bool take_incoming(struct ea__cloud *c)
{
    pthread_mutex_lock(&c->mu);
    struct ea__cloud_transfer *q = c->in_head;
    c->in_head = c->in_tail = NULL;
    bool stop = c->stopping;
    pthread_mutex_unlock(&c->mu);
    while (q) {
        struct ea__cloud_transfer *t = q;
        q = q->next_in;
        t->next_in = NULL;
        t->state = T_WAITING;
        t->prev = NULL;
        t->next = c->list;
        if (c->list)
            c->list->prev = t;
        c->list = t;
    }
    return stop;
}

static void *cloud_main(void *arg)
{
    struct ea__cloud *c = arg;
    while (!take_incoming(c)) {
        service(c);
        int running = 0;
        curl_multi_perform(c->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(c->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            char *priv = NULL;
            CURLcode rc = m->data.result;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
            end_transfer(c, (struct ea__cloud_transfer *)(void *)priv, rc);
        }
        curl_multi_poll(c->multi, NULL, 0, next_wait(c), NULL);
    }
    /* shutting down: every transfer ends, cancelled; a start from an on_end
     * now fails (stopping is set), so nothing new comes */
    for (;;) {
        take_incoming(c);
        if (!c->list)
            break;
        while (c->list) {
            struct ea__cloud_transfer *t = c->list;
            if (!t->done_seen)
                decide(t, EA_CLOUD_CANCELLED, EA_CLOUD_TIMEOUT_NONE);
            end_transfer(c, t, CURLE_OK);
        }
    }
    return NULL;
}

/* ---- the API ------------------------------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

ea_status ea__cloud_create(struct ea__cloud **out, struct ea_error *err)
{
    *out = NULL;
    pthread_once(&curl_once, curl_init_once);
    struct ea__cloud *c = ea_calloc(1, sizeof *c);
    if (!c)
        return ea_error_set(err, EA_ENOMEM, "cloud client: out of memory");
    pthread_mutex_init(&c->mu, NULL);
    c->multi = curl_multi_init();
    if (!c->multi) {
        ea__cloud_destroy(c);
        return ea_error_set(err, EA_ENOMEM, "cloud client: curl_multi_init failed");
    }
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)CLOUD_MAX_CONNECTS);
    if (pthread_create(&c->thread, NULL, cloud_main, c) != 0) {
        ea__cloud_destroy(c);
        return ea_error_set(err, EA_ENOMEM, "cloud client: could not start its thread");
    }
    c->thread_started = true;
    *out = c;
    return EA_OK;
}

void ea__cloud_destroy(struct ea__cloud *c)
{
    if (!c)
        return;
    if (c->thread_started) {
        pthread_mutex_lock(&c->mu);
        c->stopping = true;
        pthread_mutex_unlock(&c->mu);
        curl_multi_wakeup(c->multi);
        pthread_join(c->thread, NULL);
    }
    if (c->multi)
        curl_multi_cleanup(c->multi);
    pthread_mutex_destroy(&c->mu);
    ea_free(c);
}

static bool has_crlf(const char *s) { return s && strpbrk(s, "\r\n") != NULL; }

/* Appends a header line (copied by libcurl; our copy is wiped). */
static ea_status add_line(struct curl_slist **l, const char *line)
{
    struct curl_slist *nl = curl_slist_append(*l, line);
    if (!nl)
        return EA_ENOMEM;
    *l = nl;
    return EA_OK;
}

/* Appends "name: value"; an empty value as "name;", which libcurl sends as
 * an empty header ("name:" would remove the header). */
static ea_status add_header(struct curl_slist **l, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + CLOUD_HEADER_FIXED;
    char *line = ea_malloc(n);
    if (!line)
        return EA_ENOMEM;
    if (value[0])
        snprintf(line, n, "%s: %s", name, value);
    else
        snprintf(line, n, "%s;", name);
    ea_status s = add_line(l, line);
    explicit_bzero(line, n);
    ea_free(line);
    return s;
}

ea_status ea__cloud_start(struct ea__cloud *c, const struct ea__cloud_request *rq,
                          struct ea__cloud_transfer **out, struct ea_error *err)
{
    *out = NULL;
    if (!rq->url || (strncmp(rq->url, "http://", 7) && strncmp(rq->url, "https://", 8)) || has_crlf(rq->url))
        return ea_error_set(err, EA_EINVAL, "cloud client: the URL must start with http:// or https://");
    if (!rq->on_end || (!rq->body && rq->body_len))
        return ea_error_set(err, EA_EINVAL, "cloud client: no on_end callback or no body");
    if (has_crlf(rq->api_key))
        return ea_error_set(err, EA_EINVAL, "cloud client: the API key contains a line break");
    for (size_t i = 0; i < rq->n_headers; i++) {
        const char *nm = rq->headers[i].name, *v = rq->headers[i].value;
        if (!nm || !nm[0] || !v || strpbrk(nm, ": \t\r\n") || has_crlf(v))
            return ea_error_set(err, EA_EINVAL, "cloud client: header %zu is not a valid header", i);
    }
    struct ea__cloud_transfer *t = ea_calloc(1, sizeof *t);
    if (!t)
        return ea_error_set(err, EA_ENOMEM, "cloud client: out of memory");
    atomic_init(&t->refs, 2); /* the caller's and the thread's */
    t->c = c;
    t->url = ea_strdup(rq->url);
    t->body = ea_malloc(rq->body_len + 1);
    t->ca_file = rq->ca_file ? ea_strdup(rq->ca_file) : NULL;
    t->body_len = rq->body_len;
    t->to = rq->timeouts;
    t->on_chunk = rq->on_chunk;
    t->on_end = rq->on_end;
    t->user = rq->user;
    t->res.retry_after_ms = -1;
    t->res.ttft_ms = -1;
    ea__sse_init(&t->sse, EA__SSE_MAX_EVENT, on_event, t);
    ea__buf_init(&t->errbody, EA__CLOUD_ERROR_BODY_MAX);
    ea_status s = (!t->url || !t->body || (rq->ca_file && !t->ca_file)) ? EA_ENOMEM : EA_OK;
    if (!s) {
        if (rq->body_len)
            memcpy(t->body, rq->body, rq->body_len);
        t->body[rq->body_len] = '\0';
        s = add_line(&t->hdrs, "Content-Type: application/json");
    }
    if (!s)
        s = add_line(&t->hdrs, "Accept: text/event-stream");
    if (!s)
        s = add_line(&t->hdrs, "Expect:"); /* no 100-continue round trip before the body */
    if (!s && rq->api_key && rq->api_key[0]) {
        size_t n = strlen(rq->api_key) + CLOUD_HEADER_FIXED;
        char *v = ea_malloc(n);
        s = v ? EA_OK : EA_ENOMEM;
        if (v) {
            snprintf(v, n, "Bearer %s", rq->api_key);
            s = add_header(&t->hdrs, "Authorization", v);
            explicit_bzero(v, n);
            ea_free(v);
        }
    }
    for (size_t i = 0; !s && i < rq->n_headers; i++)
        s = add_header(&t->hdrs, rq->headers[i].name, rq->headers[i].value);
    if (s) {
        atomic_store(&t->refs, 1);
        transfer_unref(t);
        return ea_error_set(err, s, "cloud client: out of memory");
    }
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        atomic_store(&t->refs, 1);
        transfer_unref(t);
        return ea_error_set(err, EA_ESTATE, "cloud client: shutting down");
    }
    t->start_at = now_ms() + rq->delay_ms;
    atomic_fetch_add(&c->n_active, 1);
    if (c->in_tail)
        c->in_tail->next_in = t;
    else
        c->in_head = t;
    c->in_tail = t;
    *out = t;
    pthread_mutex_unlock(&c->mu);
    curl_multi_wakeup(c->multi);
    return EA_OK;
}
