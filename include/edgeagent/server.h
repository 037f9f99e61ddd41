/* server.h - the OpenAI-compatible HTTP server (`edgeagent serve`) on
 * libmicrohttpd: /v1/chat/completions, /v1/completions, /v1/models,
 * /tokenize, /detokenize, /health, /metrics, the chat page at /,
 * POST /v1/edgeagent/models/pull (a model into the store, SSE progress) and
 * POST /v1/edgeagent/models/load (switches the served model while serving).
 *
 * Holds: server parameters (limits, timeouts, security switches), the
 * lifecycle (create = listen, set_backend = ready, shutdown = drain, destroy).
 * Does not hold: loading the first model or its engine (the caller builds
 * them and hands them over with ea_server_set_backend; models/load builds
 * later ones with the library's loader and the parameters given there),
 * signal handling (the CLI's job),
 * chat prompts (chat.h: the model's template or ChatML, message data
 * tokenized as plain text).
 *
 * Threads: create/set_backend/shutdown/destroy are called from one thread;
 * the server runs its own HTTP threads. Built only with EA_HAVE_NET.
 */
#ifndef EDGEAGENT_SERVER_H
#define EDGEAGENT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "edgeagent/engine.h"
#include "edgeagent/error.h"
#include "edgeagent/model.h"
#include "edgeagent/tokenizer.h"

struct ea_router_config;
struct ea_ledger;
struct ea_privacy_detector;

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ea_server ea_server;

struct ea_server_params {
    const char *host;          /* address to bind; default "127.0.0.1" */
    uint16_t port;             /* 0 = any free port (see ea_server_port) */
    const char *api_key;       /* required as "Authorization: Bearer KEY"; NULL = none */
    bool insecure_no_auth;     /* allow a non-loopback host without a key */
    bool log_content;          /* log prompts and completions (off: never) */
    int http_threads;          /* libmicrohttpd worker threads; default 2 */
    uint32_t max_connections;  /* open connections; default 256 */
    size_t max_body_bytes;     /* request body cap; default 4 MiB (413 past it) */
    size_t max_header_bytes;   /* per-connection header memory; default 32 KiB */
    unsigned idle_timeout_s;   /* idle / stalled-client timeout; default 60 s */
    int32_t max_tokens;        /* cap on max_tokens of a request; default 4096 */
    int32_t max_n;             /* cap on n (choices per request); default 8 */
    int32_t max_inflight;      /* generation requests at once before 429; default 256 */
    size_t max_stream_pending; /* output a slow client may leave unread; default 1 MiB */
    FILE *log;                 /* request log (one line each); default stderr */
    /* slow and greedy clients (src/server/conn_guard.c) */
    unsigned header_timeout_s; /* request line -> end of headers; default 10 s */
    unsigned body_timeout_s;   /* end of headers -> end of body; default 60 s */
    uint32_t max_conns_per_ip; /* per client address; default max_connections / 4
                                  (at least 1); over it: 429 and close */
    bool limit_loopback;       /* apply max_conns_per_ip to loopback clients too
                                  (default: they are exempt: a local proxy or agent) */
    /* browser protection: comma-separated lists, copied; NULL = none */
    const char *allowed_hosts; /* Host names accepted besides localhost, loopback
                                  addresses and the bound address; "*" = any. On a
                                  non-loopback bind without a list: any (the API key
                                  guards it) */
    const char *cors_origins;  /* cross-site Origins allowed (exact, e.g.
                                  "http://localhost:3000"); "*" = any */
    /* POST /v1/edgeagent/models/pull (needs api_key): the model store and
     * Hugging Face access, as for `edgeagent pull` (copied). models_dir
     * NULL: the endpoint answers 503. */
    const char *models_dir;
    const char *hf_token;      /* never logged */
    const char *hf_endpoint;   /* NULL: https://huggingface.co */
    /* Routing (edgeagent/router.h, docs/ROUTING.md). NULL: one local upstream,
     * the edge only. Borrowed: must outlive the server. */
    const struct ea_router_config *router_config;
    /* API keys of router_config's upstreams, by index (n_upstreams entries;
     * NULL entries or array = none), resolved by the caller from each
     * api_key_env; copied, never logged. */
    const char *const *upstream_keys;
    /* The cost and latency ledger (edgeagent/ledger.h), opened by the caller;
     * NULL = none. Borrowed: must outlive the server. One row per generation
     * request when it ends; cloud budgets reserved before each cloud attempt
     * and settled after; GET /v1/edgeagent/stats reports from it. */
    struct ea_ledger *ledger;
    /* The privacy guard's detector (edgeagent/privacy.h), built by the caller
     * from the configuration's privacy: section; NULL = none, and then a
     * task with privacy: redact runs on the device only (fail closed).
     * Borrowed: must outlive the server. */
    const struct ea_privacy_detector *privacy;
};

void ea_server_params_default(struct ea_server_params *p);

/* What the server answers with, once loaded. Borrowed (they must outlive
 * the server: destroy the server first) unless transfer is set. */
struct ea_server_backend {
    ea_model *model;
    const ea_tokenizer *tok;
    ea_engine *engine;
    const char *model_id;  /* name shown in /v1/models and responses (copied) */
    int32_t max_context;   /* the engine's context limit (prompt + output) */
    int32_t max_running;   /* sequences the engine decodes at once (0 = unknown) */
    /* The server takes model, tok and engine when ea_server_set_backend
     * succeeds, and destroys them once they are unloaded (a switch by
     * POST /v1/edgeagent/models/load, or destroy); the caller must not
     * destroy them then. Without it the endpoint can still switch, but the
     * first model stays mapped until the caller frees it. */
    bool transfer;
    /* How POST /v1/edgeagent/models/load builds a replacement (copied;
     * eog_tokens is ignored: each model's own are used). NULL: the endpoint
     * answers 503. */
    const struct ea_engine_params *engine_params;
    const struct ea_model_load_params *load_params;
};

/* Binds host:port and starts answering (GET /health says "loading", model
 * endpoints 503 until ea_server_set_backend). EA_EAUTH when host is not a
 * loopback address and there is neither an API key nor insecure_no_auth;
 * EA_EINVAL when the API key is empty or only white space, or a list is
 * malformed; EA_EIO when the address cannot be bound. The caller owns *out. */
ea_status ea_server_create(const struct ea_server_params *p, ea_server **out,
                           struct ea_error *err);
/* The bound port (useful with port 0). */
uint16_t ea_server_port(const ea_server *s);
/* Makes the server ready. Called once (switches go through
 * POST /v1/edgeagent/models/load). */
ea_status ea_server_set_backend(ea_server *s, const struct ea_server_backend *b,
                                struct ea_error *err);
/* Graceful stop: closes the listening socket, lets in-flight generations end
 * for up to grace_ms, then cancels the rest and waits for them to be
 * reported. New requests on open connections get 503. Idempotent. */
void ea_server_shutdown(ea_server *s, unsigned grace_ms);
/* Shuts down (grace 0 if not done yet) and frees. NULL-safe. */
void ea_server_destroy(ea_server *s);

/* Generation requests currently in flight (for tests and shutdown). */
int ea_server_inflight(const ea_server *s);

/* Ends a running ea_server_shutdown's grace period now (a second SIGTERM):
 * the rest is cancelled at once. Callable from any thread. */
void ea_server_cut_grace(ea_server *s);

#ifdef __cplusplus
}
#endif
#endif
