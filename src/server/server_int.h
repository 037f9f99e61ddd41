/* server_int.h - internals of the HTTP server shared by its files:
 *   request.c      JSON request bodies -> struct ea__gen_request (validated)
 *   chat_prompt.c  messages -> prompt text and tokens (through chat.h)
 *   conn_guard.c   per-connection deadlines, per-IP limit, slots for new clients
 *   metrics.c      Prometheus counters and histograms
 *   http.c         HTTP helpers: clock, log, ids, responses, error JSON, endpoint table
 *   genq.c         the generation queue between upstreams and the HTTP side (genq.h)
 *   upstream_local.c  the local upstream (upstream.h): template, tokenizer, engine
 *   upstream_openai.c the openai upstream (upstream.h) over the cloud client (router/cloud.h)
 *   generate.c     chat/completions: validate, admit, start on the upstream, stream or answer
 *   server.c       libmicrohttpd daemon, routing, auth, small endpoints
 * Calls go one way: HTTP -> upstream -> queue -> back: server.c -> generate.c
 * -> upstream (ops table) -> genq.c, whose wake callback resumes generate.c's
 * connection; every file may use http.c, which calls none of them.
 *   pull_api.c     POST /v1/edgeagent/models/pull (SSE progress)
 *   backend.c      the served local model as reference-counted backends, and
 *                  POST /v1/edgeagent/models/load (the hot switch)
 * Does not hold: the public API (edgeagent/server.h).
 */
#ifndef EDGEAGENT_SERVER_INT_H
#define EDGEAGENT_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "edgeagent/chat.h"
#include "edgeagent/router.h"
#include "edgeagent/server.h"
#include "util/buf.h"


/* ---- requests (request.c) ---------------------------------------------------- */

enum ea__req_kind { EA__REQ_CHAT, EA__REQ_COMPLETION };

struct ea__chat_msg {
    char role[16]; /* "system", "user", "assistant", "tool" ("developer" is mapped to system) */
    char *content; /* owned; text parts concatenated ("" when an assistant's is null) */
    size_t len;
    /* owned JSON object text of the message's tool fields (tool_calls with
     * arguments parsed into objects, tool_call_id, name), or NULL */
    char *extra;
};

/* Constrained output a request asked for (response_format, guided_*). */
enum ea__guide_kind {
    EA__GUIDE_NONE = 0,
    EA__GUIDE_JSON_OBJECT, /* response_format json_object */
    EA__GUIDE_SCHEMA,      /* response_format json_schema, guided_json */
    EA__GUIDE_REGEX,       /* guided_regex */
    EA__GUIDE_CHOICE,      /* guided_choice */
};

#define EA__MAX_GUIDE_CHOICES 256

struct ea__guide {
    enum ea__guide_kind kind;
    bool strict;       /* json_schema.strict: an unenforced keyword is a 400 */
    char param[32];    /* the field it came from, for errors */
    char *text;        /* owned: the schema (compact JSON) or the regex */
    size_t len;
    char **choices;    /* owned: guided_choice */
    int n_choices;
};

enum ea__tool_choice { EA__TOOLS_AUTO = 0, EA__TOOLS_NONE, EA__TOOLS_REQUIRED, EA__TOOLS_NAMED };

#define EA__MAX_TOOLS 128
#define EA__MAX_TOOL_NAME 64

/* Function tools of a chat request. */
struct ea__tools_req {
    char *json;  /* owned: the "tools" array (compact JSON), NULL when none */
    size_t len;
    int n;
    enum ea__tool_choice choice;
    char name[EA__MAX_TOOL_NAME + 1]; /* EA__TOOLS_NAMED */
    bool parallel;                    /* parallel_tool_calls (default true) */
    bool strict;                      /* some function has "strict": true */
    char syntax[16]; /* edgeagent.tool_syntax override ("" = from the template) */
};

/* One prompt of a completion request: text, or token ids. */
struct ea__prompt {
    char *text; /* owned, or NULL when tokens */
    size_t len;
    int32_t *tokens; /* owned, or NULL when text */
    int32_t n_tokens;
};

#define EA__MAX_STOP 4
#define EA__MAX_STOP_LEN 256
#define EA__MAX_MESSAGES 1024
#define EA__MAX_PROMPTS 16
#define EA__MAX_BIAS 1024
#define EA__ROUTE_NAME_MAX 72      /* a task name (EA_CONFIG_MAX_NAME) with room for "task:" */
#define EA__MAX_LATENCY_MS 86400000 /* a day, as in the configuration */

/* A validated generation request. Optional fields have has_* flags. */
struct ea__gen_request {
    enum ea__req_kind kind;
    char model[128];
    bool has_model;            /* "model" was given */
    struct ea__chat_msg *msgs; /* chat */
    int n_msgs;
    struct ea__prompt *prompts; /* completion */
    int n_prompts;
    bool echo;
    int32_t max_tokens; /* 0 = not given */
    bool has_temperature, has_top_p;
    float temperature, top_p, presence_penalty, frequency_penalty;
    int n; /* choices per prompt, >= 1 */
    char *stops[EA__MAX_STOP];
    int n_stop;
    bool has_seed;
    uint64_t seed;
    struct ea_logit_bias *bias; /* owned */
    int n_bias;
    bool logprobs;
    int top_logprobs; /* chat: top_logprobs; completions: the logprobs integer */
    bool stream, include_usage;
    size_t body_len; /* of the JSON body: no text taken from it can be longer */
    bool parse_special; /* completions: recognise control tokens in the prompt (default) */
    /* routing ("edgeagent": {...}; the header X-EdgeAgent-Task is read by generate.c) */
    char route_task[EA__ROUTE_NAME_MAX]; /* "" = none */
    uint32_t max_latency_ms;             /* 0 = the task's */
    bool allow_cloud;                    /* default true */
    bool private_data;                   /* "private": true forces local_only */
    const char *body;                    /* the JSON body (valid until the request ends) */
    /* privacy: redact (set by generate.c, owned by the generation): the body
     * as it may leave the device, and the placeholders for the answer */
    const char *upstream_body;
    size_t upstream_body_len;
    const struct ea_privacy_map *privacy_map;
    struct ea__guide guide;
    struct ea__tools_req tools; /* chat only */
};

struct ea__req_limits {
    int32_t max_tokens; /* max_tokens above this: 400 */
    int32_t max_n;
    int32_t n_vocab;    /* logit_bias and token prompts are checked against it */
};

/* A request error in OpenAI's shape. */
struct ea__api_error {
    int status;        /* HTTP status */
    const char *type;  /* "invalid_request_error", "server_error", ... */
    const char *code;  /* NULL or "context_length_exceeded", ... */
    char param[64];    /* field name, or "" */
    char message[384];
    unsigned retry_after_s; /* 429/503: the Retry-After header (0 = 1 s) */
};

/* Parses and validates body[0..len) (need not be NUL-terminated or valid
 * UTF-8). On success fills *r (release with ea__gen_request_release) and
 * returns true; otherwise fills *e (status 400, the offending field in
 * param) and leaves *r empty. Unknown fields are ignored; wrong types and
 * out-of-range values are rejected. */
bool ea__gen_request_parse(enum ea__req_kind kind, const char *body, size_t len,
                           const struct ea__req_limits *lim, struct ea__gen_request *r,
                           struct ea__api_error *e);
void ea__gen_request_release(struct ea__gen_request *r);

/* Fills e; returns false so handlers can `return ea__api_errorf(...)`. */
bool ea__api_errorf(struct ea__api_error *e, int status, const char *type, const char *code,
                    const char *param, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

/* ---- chat prompt (chat_prompt.c) ------------------------------------------------ */

/* Renders msgs into the prompt a model is given (ea_chat_render), ending
 * with the assistant turn's opening: the text, and with max_tokens > 0 its
 * token ids (message contents as plain text). Errors: EA_EINVAL when the
 * template rejects the conversation (raise_exception: the message says
 * why), EA_ETOOBIG past max_len bytes or max_tokens tokens. The caller
 * releases *out with ea_chat_prompt_release. */
ea_status ea__chat_prompt_render(const ea_chat *chat, const struct ea__chat_msg *msgs, int n_msgs,
                                 size_t max_len, size_t max_tokens, struct ea_chat_prompt *out,
                                 struct ea_error *err);
/* The same with tools: tools_json (the request's "tools" array, NULL: none)
 * goes to the template as `tools`; system_extra (NULL: none) is appended to
 * the first system message, or sent as one of its own first (tools
 * presented to a model whose template does not render them). */
ea_status ea__chat_prompt_render_tools(const ea_chat *chat, const struct ea__chat_msg *msgs,
                                       int n_msgs, const char *tools_json, size_t tools_len,
                                       const char *system_extra, size_t max_len,
                                       size_t max_tokens, struct ea_chat_prompt *out,
                                       struct ea_error *err);
/* A chat request's prompt as the model sees it: its messages, and its tools
 * (unless tool_choice is none) through the template when it renders them
 * (renders_tools), else as a system message (ea_tool_system_prompt). */
ea_status ea__chat_prompt_request(const ea_chat *chat, bool renders_tools, const struct ea__gen_request *r,
                                  size_t max_len, size_t max_tokens, struct ea_chat_prompt *out,
                                  struct ea_error *err);
/* The model's own chat template (tokenizer.chat_template), or ChatML when it
 * has none or it does not compile (*fallback_reason says why, or is empty). */
ea_status ea__chat_template_load(const ea_model *m, const ea_tokenizer *tok, ea_chat **out,
                                 char *fallback_reason, size_t reason_cap, struct ea_error *err);

/* ---- metrics (metrics.c) ----------------------------------------------------------- */

/* The HTTP endpoints: one table that routing (server.c), the metrics labels
 * (metrics.c) and the request log all read, so they cannot disagree.
 *   X(NAME, path (also the metrics label), prefix match, method, needs the API
 *     key when one is set, needs the model loaded, POST body is JSON)
 * OTHER (unknown paths) comes last and is not routable. */
#define EA__ENDPOINT_MAP(X)                                                        \
    X(CHAT, "/v1/chat/completions", false, EA__POST, true, true, true)              \
    X(COMPLETIONS, "/v1/completions", false, EA__POST, true, true, true)            \
    X(MODELS, "/v1/models", true, EA__GET, true, true, false)                       \
    X(TOKENIZE, "/tokenize", false, EA__POST, true, true, true)                     \
    X(DETOKENIZE, "/detokenize", false, EA__POST, true, true, true)                 \
    X(APPLY_TEMPLATE, "/apply-template", false, EA__POST, true, true, true)         \
    X(HEALTH, "/health", false, EA__GET, false, false, false)                       \
    X(METRICS, "/metrics", false, EA__GET, true, false, false)                      \
    X(PAGE, "/", false, EA__GET, false, false, false)                               \
    X(PAGE_INDEX, "/index.html", false, EA__GET, false, false, false)                \
    X(PULL, "/v1/edgeagent/models/pull", false, EA__POST, true, false, true)           \
    X(LOAD, "/v1/edgeagent/models/load", false, EA__POST, true, false, true)           \
    X(UPSTREAMS, "/v1/edgeagent/upstreams", false, EA__GET, true, false, false)           \
    X(STATS, "/v1/edgeagent/stats", false, EA__GET, true, false, false)               \
    X(SERIES, "/v1/edgeagent/stats/series", false, EA__GET, true, false, false)       \
    X(LEDGER, "/v1/edgeagent/ledger", false, EA__GET, true, false, false)             \
    X(AUDIT, "/v1/edgeagent/audit", false, EA__GET, true, false, false)               \
    X(DASHBOARD, "/dashboard", false, EA__GET, false, false, false)

enum ea__method { EA__GET, EA__POST, EA__OPTIONS, EA__OTHER_METHOD };

enum ea__endpoint {
#define EA__EP_ENUM(name, path, prefix, method, auth, model, json) EA__EP_##name,
    EA__ENDPOINT_MAP(EA__EP_ENUM)
#undef EA__EP_ENUM
    EA__EP_OTHER,
    EA__EP_COUNT
};

struct ea__endpoint_info {
    const char *path; /* "other" for EA__EP_OTHER */
    bool prefix;
    enum ea__method method;
    bool auth, needs_model, json_body;
};
/* Indexed by enum ea__endpoint (EA__EP_COUNT entries); defined in http.c. */
extern const struct ea__endpoint_info ea__endpoints[EA__EP_COUNT];

/* The status codes /metrics counts one by one; any other is counted as "other". */
#define EA__HTTP_CODE_MAP(X) \
    X(200) X(204) X(400) X(401) X(403) X(404) X(405) X(408) X(409) X(413) X(415) X(429) X(431) X(500) X(503)
#define EA__CODE_COUNT(c) +1
#define EA__N_CODES (0 EA__HTTP_CODE_MAP(EA__CODE_COUNT) + 1) /* + "other" */
#define EA__HIST_BUCKETS 14

struct ea__hist {
    _Atomic uint64_t bucket[EA__HIST_BUCKETS + 1]; /* last = +Inf */
    _Atomic uint64_t sum_us; /* sum in microseconds (or tokens for token hists) */
    _Atomic uint64_t count;
};

struct ea__metrics {
    _Atomic uint64_t requests[EA__EP_COUNT][EA__N_CODES];
    _Atomic uint64_t tokens_in, tokens_out;
    _Atomic uint64_t disconnects, cancelled;
    struct ea__hist ttft, tpot, duration, usage_in, usage_out;
};

void ea__metrics_count(struct ea__metrics *m, enum ea__endpoint ep, int status);
/* Seconds for ttft/tpot/duration; tokens for usage hists. */
void ea__metrics_observe(struct ea__hist *h, double value, bool tokens);
/* Appends one histogram (name_bucket{labels,le=...}, _sum, _count). */
ea_status ea__metrics_hist(struct ea_buf *o, const char *name, const char *labels,
                           const struct ea__hist *h, bool tokens);
struct ea__guard_stats;
/* Appends the Prometheus text exposition (engine and gs may be NULL). */
ea_status ea__metrics_render(const struct ea__metrics *m, ea_engine *engine, int inflight,
                             bool ready, const struct ea__guard_stats *gs, struct ea_buf *out);

/* ---- connection guard (conn_guard.c) ------------------------------------------------ */

/* Watchdog period, and how long a connection must have been waiting in a
 * state before it may be evicted to free a slot: a real client sends its
 * whole head in one go, so a head still incomplete after a second is slow on
 * purpose; a fresh connection may not have been read yet under load, so an
 * idle one gets longer; one idle after its answer was kept alive by a client
 * that may never use it again. */
#define EA__GUARD_TICK_MS 100
#define EA__GUARD_EVICT_HEAD_MS 1000
#define EA__GUARD_EVICT_IDLE_MS 2000
#define EA__GUARD_EVICT_KEEPALIVE_MS 250 /* idle after an answer: a kept-alive connection */
/* Slots kept free for new clients: max_connections / EA__GUARD_RESERVE_DIV
 * (at least 1): 16 of the default 256. */
#define EA__GUARD_RESERVE_DIV 16

struct ea__guard_params {
    unsigned header_timeout_ms; /* request line -> end of headers */
    unsigned body_timeout_ms;   /* end of headers -> end of body */
    unsigned idle_timeout_ms;   /* accepted or between requests -> next request line */
    uint32_t max_connections;   /* the daemon's limit */
    uint32_t reserve;           /* slots kept free for new clients */
    uint32_t per_ip;            /* connections per client address */
    bool limit_loopback;        /* apply per_ip to loopback clients too */
};

struct ea__guard_stats {
    uint32_t open;
    uint64_t head_timeouts, body_timeouts, idle_timeouts, evicted, ip_refused;
};

struct ea__conn_guard;
/* Starts the watchdog thread. The caller owns *out (ea__guard_destroy, after
 * the daemon is stopped). */
ea_status ea__guard_create(const struct ea__guard_params *p, struct ea__conn_guard **out,
                           struct ea_error *err);
void ea__guard_destroy(struct ea__conn_guard *g);
/* libmicrohttpd callbacks (cls = the guard): MHD_OPTION_NOTIFY_CONNECTION and
 * MHD_OPTION_URI_LOG_CALLBACK. */
void ea__guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);
void *ea__guard_uri_log(void *cls, const char *uri, struct MHD_Connection *conn);
/* State changes reported by the request handler (its HTTP thread). */
void ea__guard_head_done(struct ea__conn_guard *g, struct MHD_Connection *conn);
void ea__guard_body_done(struct ea__conn_guard *g, struct MHD_Connection *conn);
void ea__guard_request_done(struct ea__conn_guard *g, struct MHD_Connection *conn);
/* Whether conn was accepted over the per-IP limit (answer 429 and close). */
bool ea__guard_over_ip_limit(struct MHD_Connection *conn);
void ea__guard_count_ip_refused(struct ea__conn_guard *g);
void ea__guard_stats(const struct ea__conn_guard *g, struct ea__guard_stats *st);

/* ---- the server ----------------------------------------------------------------------- */

struct ea__gen;
struct ea__pull_job;
struct ea__upstream;
struct ea__relay_worker;
struct ea__audit;
struct ea__cloud;

#define EA__MAX_PULLS 4 /* pulls running at once (429 past it) */

struct ea_server {
    _Atomic int64_t ledger_fail_logged_ms; /* ea__ledger_write_failed's last line (ms) */
    _Atomic uint64_t ledger_failed_seen;   /* ea__ledger_check's last look at the failed rows */
    struct ea_server_params p;
    char host[64];
    uint16_t port;
    char *api_key;
    size_t api_key_len;
    struct MHD_Daemon *daemon;
    /* the served local model (backend.c): cur under be_mu, NULL while the
     * first one loads; model_id is cur's id (under be_mu: copy it with
     * ea__server_model_id) */
    pthread_mutex_t be_mu;
    pthread_cond_t be_cv; /* a backend's references dropped, or a load thread ended */
    struct ea__backend *cur;
    _Atomic bool ready;   /* cur was set once */
    char model_id[128];
    int n_backends;       /* under be_mu: alive (current + draining old ones) */
    int n_load_threads;   /* under be_mu: load and retire threads alive */
    bool loading;         /* under be_mu: a models/load is running (a second one: 409) */
    struct ea_engine_params load_engine_params; /* models/load builds with these */
    struct ea_model_load_params load_model_params;
    bool can_load;
    struct ea__upstream *upstream; /* where generations run (the local one, over cur) */
    _Atomic bool draining;
    _Atomic uint64_t next_id;
    uint64_t id_salt;
    pthread_mutex_t mu; /* guards gens list */
    pthread_cond_t cv;  /* signalled when a gen is freed */
    struct ea__gen *gens; /* live generations (doubly linked) */
    int n_gens;
    bool shut;
    struct ea__metrics metrics;
    pthread_mutex_t log_mu;
    char *models_dir, *hf_token, *hf_endpoint; /* owned copies of the params */
    struct ea__pull_job *pulls[EA__MAX_PULLS]; /* running pulls (under mu) */
    int n_pulls;                               /* under mu; cv signalled when one ends */
    struct ea__conn_guard *guard;
    char *allowed_hosts; /* owned copy of p.allowed_hosts: comma-separated, or NULL */
    char *cors_origins;  /* owned copy of p.cors_origins, or NULL */
    bool any_host;       /* no Host check (a "*" entry, or a non-loopback bind without a list) */
    _Atomic bool cut_grace;
    /* routing (route.c): the router over p.router_config (own_config when
     * none was given), one upstream object per configured upstream (the
     * local ones are s->upstream, set with the backend), the relay worker */
    struct ea_router_config *own_config;
    ea_router *router;
    struct ea__upstream **ups;
    size_t n_ups;
    int local_up; /* the first local upstream's index, or -1 */
    struct ea__relay_worker *relay_worker;
    struct ea__cloud *cloud; /* the openai upstreams' client (router/cloud.h), or NULL */
    double local_mean_ms; /* under mu: moving mean of local request times */
    struct ea__hist *up_ttft; /* per upstream: time to first token of its attempts */
    /* per upstream, OpenTelemetry GenAI names (requests it answered):
     * duration, time to first token, input and output tokens */
    struct ea__hist *gen_dur, *gen_ttft, *gen_tok_in, *gen_tok_out;
    struct ea__audit *audit;  /* the privacy audit's ring (audit.c) */
};

/* A body larger than max_body_bytes is still read (and dropped) up to this
 * multiple of the cap, so that a client sending it without waiting reads the
 * 413 instead of a connection reset; past it the connection is closed. */
#define EA__BODY_DRAIN_FACTOR 4

/* Caps of the JSON the server writes, derived from what went in: JSON text is
 * at most 6 bytes per byte of string (\u00XX), and a token's logprobs entry
 * (its id, text and 20 alternatives) at most EA__LOGPROB_JSON_BYTES. A cap is
 * reached only by a bug; hitting it is a 500, never a silent truncation. */
#define EA__JSON_ESCAPE 6
#define EA__LOGPROB_JSON_BYTES 4096
#define EA__JSON_SLACK 65536 /* ids, field names, usage and other fixed parts */
/* Bytes of JSON around one token in /tokenize output ({"id":2147483647,"piece":""},) */
#define EA__TOKEN_JSON_FIXED 32

/* Bytes of the X-EdgeAgent-Unenforced header value (keyword names). */
#define EA__UNENFORCED_MAX 256

/* Per-HTTP-request state (MHD's con_cls). */
struct ea__req_ctx {
    ea_server *srv;
    enum ea__endpoint ep;
    enum ea__method method;
    struct ea_buf body;
    bool too_big, responded;
    size_t dropped; /* body bytes read and dropped past the cap */
    int status;
    double t_start;
    char id[48];
    struct ea__gen *gen; /* chat/completions once submitted */
    struct ea__load_job *load; /* models/load once its thread runs */
    char client[64];
    bool close_conn;       /* answer with Connection: close (protocol errors, limits) */
    char cors_origin[256]; /* an allowed cross-site Origin to echo, or "" */
    char unenforced[EA__UNENFORCED_MAX]; /* X-EdgeAgent-Unenforced (JSON Schema keywords), or "" */
};

/* ---- HTTP helpers (http.c) ------------------------------------------------------------ */

double ea__now_ms(void);
/* Writes one log line (no content unless the caller checked log_content). */
void ea__server_log(ea_server *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Logs text[0..n) as a JSON string: only when the caller checked log_content. */
void ea__server_log_content(ea_server *s, const char *id, const char *what, const char *text,
                            size_t n);
/* Headers every response carries (request id, nosniff, CORS, Connection:
 * close when the request asked for it). */
void ea__add_common_headers(const struct ea__req_ctx *c, struct MHD_Response *r);
/* Queues r (adding the common headers), counts it and releases r; MHD_NO
 * when r is NULL. */
int ea__respond(struct ea__req_ctx *c, struct MHD_Connection *conn, int status,
                struct MHD_Response *r);
/* Queues a JSON response (the body is copied) and counts it. */
int ea__respond_json(struct ea__req_ctx *c, struct MHD_Connection *conn, int status,
                     const char *json, size_t len);
/* Same with one extra header (name NULL: none). */
int ea__respond_json_hdr(struct ea__req_ctx *c, struct MHD_Connection *conn, int status,
                         const char *json, size_t len, const char *name, const char *value);
/* {"error":{...}} for e (message, type, param, code); EA__ERROR_JSON_MAX holds any. */
#define EA__ERROR_JSON_MAX 4096
ea_status ea__api_error_json(const struct ea__api_error *e, struct ea_buf *b);
/* Queues {"error":{...}} for e. */
int ea__respond_error(struct ea__req_ctx *c, struct MHD_Connection *conn,
                      const struct ea__api_error *e);
/* Queues {"error":{...}} built from the arguments. */
int ea__respond_errorf(struct ea__req_ctx *c, struct MHD_Connection *conn, int status,
                       const char *type, const char *code, const char *param, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 7, 8)))
#endif
    ;
/* A fresh pseudo-random value (ids, default seeds); not for secrets. */
uint64_t ea__server_rand(ea_server *s);
/* A fresh id "prefix-<hex>" into out. */
void ea__server_new_id(ea_server *s, const char *prefix, char *out, size_t cap);

/* ---- generation (generate.c), called by server.c ---------------------------------------- */

/* Handles a complete chat/completions body. */
int ea__handle_generate(struct ea__req_ctx *c, struct MHD_Connection *conn);
/* The status a non-streamed request was answered with directly on its socket
 * (a client that half-closed its connection), or 0. */
int ea__gen_direct_status(struct ea__gen *g);
/* Re-entry after the connection was resumed (non-streaming answers). */
int ea__handle_generate_resumed(struct ea__req_ctx *c, struct MHD_Connection *conn);
/* The HTTP request ended (completed or client gone). Cancels what is left. */
void ea__gen_http_done(struct ea__gen *g, bool ok);
/* Cancels every live generation (shutdown). */
void ea__gens_cancel_all(ea_server *s);

/* ---- routing (route.c) ------------------------------------------------------------------ */

struct ea_route_plan;
/* Builds the router and upstream objects (create); frees them (destroy). */
ea_status ea__route_setup(ea_server *s, struct ea_error *err);
void ea__route_teardown(ea_server *s);
/* The local upstream exists (set_backend). */
void ea__route_backend_ready(ea_server *s);
/* The task of r (body extension, else header_task, else the model name)
 * and its plan. False with *e: 404 for an unknown model or task, 503 when
 * no upstream may serve it. task_name gets the task ("" = none), privacy
 * its policy (a request's "private": true is local_only). */
bool ea__route_request(ea_server *s, const struct ea__gen_request *r, const char *header_task,
                       struct ea_route_plan *plan, char *task_name, size_t task_cap,
                       enum ea_privacy_mode *privacy, struct ea__api_error *e);
/* Leaves only device-tier upstreams in plan (privacy failing closed). */
void ea__route_keep_device(ea_server *s, struct ea_route_plan *plan);
/* The prompt's size in tokens, estimated from its bytes (the plan, the
 * budget reservation; upstreams count exactly). */
int32_t ea__route_prompt_estimate(const struct ea__gen_request *r);
/* A local request took total_ms (the plan's queue-wait estimate). */
void ea__route_local_observed(ea_server *s, double total_ms);
/* /v1/models entries after the local model's (only != NULL: that one name,
 * alone); whether id is a name the router serves. */
ea_status ea__route_models_append(struct ea_buf *o, const ea_server *s, const char *only);
bool ea__route_routable(const ea_server *s, const char *id);
/* GET /v1/edgeagent/upstreams. */
ea_status ea__route_upstreams_json(ea_server *s, struct ea_buf *o);
/* The per-upstream series of /metrics (appended). */
ea_status ea__route_metrics(ea_server *s, struct ea_buf *o);

/* privacy_req.c: body[0..len) with every text redacted (one map for the
 * request, owned by the caller with *out: ea_privacy_map_destroy, ea_free).
 * False with err on any failure (the caller keeps the request on the
 * device: fail closed). */
struct ea_privacy_detector;
struct ea_privacy_map;
bool ea__privacy_redact_body(const struct ea_privacy_detector *d, const char *body, size_t len,
                             struct ea_privacy_map **map, char **out, size_t *out_len,
                             struct ea_error *err);

/* ---- privacy audit (audit.c) ----------------------------------------------------------- */

#define EA__AUDIT_RING 256        /* requests the audit remembers */
#define EA__AUDIT_TYPES 16        /* entity types per record */
#define EA__AUDIT_JSON_MAX 2048   /* one record's JSON, at most */

/* One request as the privacy guard saw it: names and counts, never text. */
struct ea__audit_entry {
    int64_t time_ms;        /* Unix ms */
    char id[48];
    char task[EA_CONFIG_MAX_NAME + 1];
    enum ea_privacy_mode policy;
    char destination[EA_CONFIG_MAX_NAME + 16]; /* edge, edge-node:NAME, cloud:NAME, or none */
    char outcome[40];       /* ok, or the error code */
    uint64_t outbound_bytes; /* request bytes sent to remote upstreams */
    bool redacted;          /* what left the device was the redacted body */
    struct {
        char name[32];
        uint32_t count;
    } types[EA__AUDIT_TYPES];
    int n_types;
};
ea_status ea__audit_create(struct ea__audit **out);
void ea__audit_destroy(struct ea__audit *a); /* NULL-safe */
void ea__audit_add(struct ea__audit *a, const struct ea__audit_entry *e); /* a NULL: nothing */
int ea__handle_audit(struct ea__req_ctx *c, struct MHD_Connection *conn);

/* ledger_api.c: GET /v1/edgeagent/stats (the ledger's report),
 * /v1/edgeagent/stats/series (figures over time), /v1/edgeagent/ledger (on
 * or off, row counters, budgets); the ledger's series of /metrics
 * (appended). */
int ea__handle_stats(struct ea__req_ctx *c, struct MHD_Connection *conn);
int ea__handle_series(struct ea__req_ctx *c, struct MHD_Connection *conn);
int ea__handle_ledger(struct ea__req_ctx *c, struct MHD_Connection *conn);
ea_status ea__ledger_metrics(ea_server *s, struct ea_buf *o);
/* A request's ledger row could not be written (the writer thread): logged
 * with the ledger's last error, at most once a minute. */
void ea__ledger_write_failed(ea_server *s);
/* After a row went into the journal (nothing calls back then): the same
 * line when rows failed since the last look. */
void ea__ledger_check(ea_server *s);

/* ---- the served local model (backend.c) ------------------------------------------------ */

struct ea__gcache;

/* One loaded model with what serving it needs. A request takes a reference
 * (ea__backend_acquire) and uses that backend for its whole life; a switch
 * replaces s->cur, and the old one is destroyed by a thread of its own once
 * its last request let go. */
struct ea__backend {
    struct ea_server_backend view; /* model, tok, engine, model_id (= id), limits */
    char id[128];
    ea_chat *chat;                 /* chat format of the model */
    struct ea__gcache *gc;         /* compiled grammars over its vocabulary */
    int syntax;                    /* enum ea_tool_syntax of its template */
    bool renders_tools;            /* the template uses `tools` */
    int32_t mistral_calls_token;   /* [TOOL_CALLS] as one token of the vocabulary, or EA_TOKEN_NONE */
    bool owned;                    /* model, tok, engine are destroyed with it */
    int refs;                      /* under s->be_mu */
};

/* The current backend with a reference (NULL before the first one). */
struct ea__backend *ea__backend_acquire(ea_server *s);
void ea__backend_release(ea_server *s, struct ea__backend *b); /* NULL-safe */
/* The current model id into out ("" before the first one). */
void ea__server_model_id(const ea_server *s, char *out, size_t cap);
/* Sets the first backend (ea_server_set_backend). */
ea_status ea__backend_set_first(ea_server *s, const struct ea_server_backend *b,
                                struct ea_error *err);
/* Waits for load/retire threads (shutdown), then drops the current one. */
void ea__backends_shutdown(ea_server *s);
/* POST /v1/edgeagent/models/load: a complete body, and the re-entry once
 * the load thread resumed the connection. */
struct ea__load_job;
int ea__handle_load(struct ea__req_ctx *c, struct MHD_Connection *conn);
int ea__handle_load_resumed(struct ea__req_ctx *c, struct MHD_Connection *conn);
void ea__load_job_free(struct ea__load_job *j); /* NULL-safe; the request ended */

/* pull_api.c: handles a complete POST /v1/edgeagent/models/pull body. */
int ea__handle_pull(struct ea__req_ctx *c, struct MHD_Connection *conn);
/* Asks every running pull to stop (shutdown); they end within a second or so. */
void ea__pulls_cancel_all(ea_server *s);

#endif
