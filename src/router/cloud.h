/* cloud.h - the cloud client: streamed requests to OpenAI-compatible
 * endpoints (providers, vLLM, llama-server, another edgeagent) on one
 * thread running a libcurl multi handle.
 *
 * One client per server (ea__cloud_create starts its thread). Each
 * ea__cloud_start queues one transfer: a POST of a JSON body to a URL,
 * after an optional delay (retry backoff, hedging: cancelled before the
 * delay passes, it sends nothing at all). The reply is read as Server-Sent
 * Events (sse.h): every `data:` JSON object goes to on_chunk as it comes,
 * and the transfer ends with exactly one on_end carrying its outcome,
 * classified precisely because the router decides retries and fallbacks
 * from it (enum ea__cloud_outcome).
 *
 * Connections: the multi handle's connection cache is shared by every
 * transfer, so sequential requests to one host reuse a kept-alive
 * connection (HTTP/2 multiplexing when a TLS server offers it). TLS peer
 * and host verification are always on; a transfer may name its own CA
 * file. libcurl's proxy environment (http_proxy, https_proxy, no_proxy) is
 * honoured, as libcurl does by default; this code reads no environment.
 * Redirects are not followed (a 3xx is a malformed reply). The API key is
 * sent as `Authorization: Bearer`, held only in the transfer's header list
 * (wiped when the transfer is freed) and never written to a log or a
 * message.
 *
 * Timeouts (struct ea_upstream_timeouts; 0 = none): connect is libcurl's
 * connect timeout (TCP and TLS); first token, idle and total are timers of
 * this client: first token from the attempt's start (after the delay) to
 * the first chunk with output, idle the longest gap between two received
 * pieces of the body once it began, total the whole attempt.
 *
 * Threads. Callbacks run on the client thread, one at a time; they must
 * not block and must not call ea__cloud_destroy. They may call
 * ea__cloud_start (a retry), ea__cloud_cancel and
 * ea__cloud_transfer_release. on_end may run before ea__cloud_start has
 * returned to its caller.
 * Does not hold: what a chunk means for a generation (the openai upstream,
 * src/server/upstream_openai.c), retries, fallbacks or breakers (the router).
 */
#ifndef EDGEAGENT_ROUTER_CLOUD_H
#define EDGEAGENT_ROUTER_CLOUD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "edgeagent/error.h"
#include "edgeagent/router.h"

/* How a transfer ended. */
enum ea__cloud_outcome {
    EA_CLOUD_OK,            /* the stream ended with `data: [DONE]` */
    EA_CLOUD_CONNECT_ERROR, /* no connection: DNS, refused, unreachable, TLS handshake or
                             * certificate verification (message says which) */
    EA_CLOUD_TIMEOUT,       /* see timeout: which one */
    EA_CLOUD_HTTP_ERROR,    /* HTTP status >= 400: http_status, retry_after_ms, message */
    EA_CLOUD_STREAM_ERROR,  /* an SSE `error` event, or a data object {"error": ...} */
    EA_CLOUD_MALFORMED,     /* not a usable reply: a data line that is not a JSON object, an
                             * event over the cap, a 2xx that is not text/event-stream (HTML),
                             * a 1xx/3xx, a chunk the consumer rejected (on_chunk) */
    EA_CLOUD_CUT,           /* the connection ended (reset, or closed even cleanly) before
                             * [DONE]; http_status 0: before the response began */
    EA_CLOUD_CANCELLED,     /* ea__cloud_cancel, on_chunk asked to stop, or destroy */
};
#define EA_CLOUD_N_OUTCOMES (EA_CLOUD_CANCELLED + 1)

enum ea__cloud_timeout {
    EA_CLOUD_TIMEOUT_NONE,
    EA_CLOUD_TIMEOUT_CONNECT,
    EA_CLOUD_TIMEOUT_FIRST_TOKEN,
    EA_CLOUD_TIMEOUT_IDLE,
    EA_CLOUD_TIMEOUT_TOTAL,
};

/* "ok", "connect_error", "timeout", "http_error", "stream_error",
 * "malformed", "cut", "cancelled". */
const char *ea__cloud_outcome_name(enum ea__cloud_outcome o);
/* "none", "connect", "first_token", "idle", "total". */
const char *ea__cloud_timeout_name(enum ea__cloud_timeout t);

#define EA__CLOUD_MSG_MAX 200  /* the message of a result: short, one line */
#define EA__CLOUD_CODE_MAX 64  /* an upstream's error code or type */
/* The most of an error response's body read to find its message. */
#define EA__CLOUD_ERROR_BODY_MAX ((size_t)64 * 1024)
/* Retry-After values above this are taken as this (a day). */
#define EA__CLOUD_RETRY_AFTER_MAX_MS ((int64_t)86400 * 1000)

struct ea__cloud_result {
    enum ea__cloud_outcome outcome;
    enum ea__cloud_timeout timeout; /* with EA_CLOUD_TIMEOUT */
    int http_status;                /* of the response; 0 when none came */
    int64_t retry_after_ms;         /* the Retry-After header (seconds or an HTTP date); -1: none */
    char message[EA__CLOUD_MSG_MAX]; /* why it failed ("" when ok): the upstream's error message
                                      * (error.message), libcurl's, or this client's; printable
                                      * ASCII and UTF-8, no line breaks */
    char error_code[EA__CLOUD_CODE_MAX]; /* the upstream's error.code, else error.type, or "" */
    bool started;        /* the delay passed and the request was handed to libcurl (false: nothing
                          * was sent) */
    bool connected;      /* a connection was established (or reused) */
    long new_connections; /* connections opened for this transfer (0: a kept-alive one was reused) */
    uint32_t n_chunks;   /* data objects passed to on_chunk */
    uint32_t n_output_chunks; /* of which carried output (content, text, tool calls, a refusal,
                               * reasoning, a finish_reason) */
    uint64_t content_bytes;   /* bytes of delta.content / text strings among them */
    double ttft_ms;      /* attempt start -> first output chunk; -1 when none came */
    double elapsed_ms;   /* attempt start -> end; 0 when it never started */
    bool has_usage;      /* the stream carried a usage object */
    int32_t prompt_tokens, completion_tokens, cached_tokens;
};

/* What on_chunk answers. */
enum ea__cloud_verdict {
    EA_CLOUD_CONTINUE,
    EA_CLOUD_STOP,   /* end the transfer: EA_CLOUD_CANCELLED */
    EA_CLOUD_REJECT, /* the chunk makes no sense to the consumer: EA_CLOUD_MALFORMED */
};

/* chunk: one parsed `data:` object (borrowed for the call), already known
 * to be an object without an "error" member. */
typedef enum ea__cloud_verdict (*ea__cloud_chunk_fn)(void *user, const json_t *chunk);
/* Exactly once per started transfer; res valid only during the call. */
typedef void (*ea__cloud_end_fn)(void *user, const struct ea__cloud_result *res);

struct ea__cloud_request {
    const char *url;            /* http:// or https://, e.g. base_url + "/chat/completions" */
    const char *body;           /* JSON, copied; sent as is (the caller sets "stream": true) */
    size_t body_len;
    const char *api_key;        /* NULL = none; copied; no CR or LF */
    const struct ea_config_header *headers; /* extra headers, copied; no CR or LF */
    size_t n_headers;
    const char *ca_file;        /* NULL = the system's CAs */
    struct ea_upstream_timeouts timeouts; /* 0 = none */
    uint32_t delay_ms;          /* wait this long before sending anything */
    ea__cloud_chunk_fn on_chunk; /* may be NULL */
    ea__cloud_end_fn on_end;     /* required */
    void *user;
};

struct ea__cloud;
struct ea__cloud_transfer;

/* Starts the client's thread. The caller owns *out (ea__cloud_destroy). */
ea_status ea__cloud_create(struct ea__cloud **out, struct ea_error *err);
/* Ends every transfer (each still gets its on_end, cancelled), joins the
 * thread and frees the client. No ea__cloud_start may run meanwhile or
 * after. NULL-safe. */
void ea__cloud_destroy(struct ea__cloud *c);

/* Queues a transfer. On success *out is the caller's handle (release it
 * with ea__cloud_transfer_release, any time: the transfer goes on) and
 * on_end will be called exactly once; on failure (EA_EINVAL: a bad URL,
 * header or key; EA_ESTATE: the client is shutting down; EA_ENOMEM) no
 * callback is ever made and *out is NULL. Any thread. */
ea_status ea__cloud_start(struct ea__cloud *c, const struct ea__cloud_request *rq,
                          struct ea__cloud_transfer **out, struct ea_error *err);
/* Aborts the transfer (before its delay passed: nothing is sent); on_end
 * then reports EA_CLOUD_CANCELLED unless it had already ended. Any thread,
 * any number of times, until the handle is released. */
void ea__cloud_cancel(struct ea__cloud_transfer *t);
/* Drops the caller's handle. NULL-safe. */
void ea__cloud_transfer_release(struct ea__cloud_transfer *t);

/* Transfers queued or running (for tests and stats). */
int ea__cloud_active(struct ea__cloud *c);

#endif
