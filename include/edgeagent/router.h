/* router.h - the edge/cloud router's configuration and its deployment
 * decision.
 *
 * Holds: the YAML configuration (`--config edgeagent.yaml`) parsed and
 * validated into plain structs (server options, upstreams, tasks, routing
 * defaults and weights; the privacy and ledger sections carried as position-
 * tagged trees for their own modules), and ea_router_decide, the scoring
 * that recommends EDGE, CLOUD or HYBRID for a task profile (docs/ROUTING.md).
 * Also the live side: per-upstream breakers and statistics (live.c) and the
 * per-request plan (plan.c): which upstreams, in which order, hedged or not.
 * Does not hold: upstream clients, the attempts themselves (the server runs
 * them), nor any environment access: api_key_env is the
 * NAME of a variable, which the CLI resolves; the library never reads it.
 */
#ifndef EDGEAGENT_ROUTER_H
#define EDGEAGENT_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the deployment decision ------------------------------------------- */

enum ea_route_target { EA_ROUTE_EDGE, EA_ROUTE_CLOUD, EA_ROUTE_HYBRID };

/* What a task is, as the decision framework sees it. */
struct ea_task_profile {
    bool latency_sensitive;
    bool requires_large_model;
    bool handles_private_data;
    uint64_t request_volume_per_day;
    /* Latency budget of one request in ms; 0 = none. Not scored: per-request
     * routing checks it against live engine statistics. */
    uint32_t max_latency_ms;
};

/* Points per factor (routing.weights). Defaults: the framework's 2/2/1/3
 * and a volume threshold of 1,000 requests per day (strictly above). */
struct ea_router_weights {
    int32_t latency_sensitive;    /* edge */
    int32_t private_data;         /* edge */
    int32_t high_volume;          /* edge, when volume > volume_threshold */
    int32_t large_model;          /* cloud */
    uint64_t volume_threshold;
};
void ea_router_weights_default(struct ea_router_weights *w);

/* One line of the explanation. */
enum ea_route_factor {
    EA_FACTOR_LATENCY_SENSITIVE,
    EA_FACTOR_PRIVATE_DATA,
    EA_FACTOR_HIGH_VOLUME,
    EA_FACTOR_LARGE_MODEL,
    EA_FACTOR_RULE /* the last reason: which rule picked the target */
};
struct ea_route_reason {
    enum ea_route_factor factor;
    int32_t points; /* added to the side below (0 for EA_FACTOR_RULE) */
    enum ea_route_target side; /* EDGE or CLOUD; for the rule: the target */
};
#define EA_ROUTE_MAX_REASONS 5 /* four factors and the rule */

struct ea_route_decision {
    enum ea_route_target target;
    int32_t edge_score, cloud_score;
    uint32_t n_reasons;
    struct ea_route_reason reasons[EA_ROUTE_MAX_REASONS];
};

/* Scores p: edge += latency_sensitive if latency-sensitive, += private_data
 * if it handles private data, += high_volume if the volume is above the
 * threshold; cloud += large_model if it requires a large model. Both scores
 * > 0: HYBRID; else EDGE if edge > cloud; else CLOUD. A factor whose weight
 * is 0 adds no reason. w NULL = the defaults. No allocation, no failure. */
void ea_router_decide(const struct ea_task_profile *p, const struct ea_router_weights *w,
                      struct ea_route_decision *out);

/* "EDGE", "CLOUD", "HYBRID". */
const char *ea_route_target_name(enum ea_route_target t);
/* One reason as a sentence ("latency-sensitive: edge +2", "volume 5000/day
 * > 1000: edge +1", "edge 5 > cloud 0: EDGE") into buf (always
 * NUL-terminated); d and w give the scores and threshold it cites (w NULL =
 * defaults). Returns buf. */
const char *ea_route_reason_format(const struct ea_route_reason *r,
                                   const struct ea_route_decision *d,
                                   const struct ea_task_profile *p,
                                   const struct ea_router_weights *w, char *buf, size_t size);

/* ---- configuration ----------------------------------------------------- */

/* Where a value was written: 1-based line and column in the file. */
struct ea_config_pos {
    uint32_t line, column;
};

/* A YAML value as written (the privacy and ledger sections, until their
 * modules define them). Scalars keep their text and whether they were
 * quoted; mappings keep their keys in file order (duplicates rejected).
 * Aliases, anchors' targets and tags are refused at parse time. */
enum ea_config_node_kind { EA_CONFIG_SCALAR, EA_CONFIG_SEQUENCE, EA_CONFIG_MAPPING };
struct ea_config_node {
    enum ea_config_node_kind kind;
    struct ea_config_pos pos;
    char *scalar;                   /* SCALAR: the text (NUL-terminated) */
    bool quoted;                    /* SCALAR: written '...' or "..." or as a block */
    size_t n;                       /* SEQUENCE: items; MAPPING: pairs */
    struct ea_config_node *items;   /* SEQUENCE: the items; MAPPING: the values */
    struct ea_config_node *keys;    /* MAPPING: the keys (scalars) */
};

enum ea_upstream_kind { EA_UPSTREAM_LOCAL, EA_UPSTREAM_OPENAI };
/* device and edge-node are the edge side, cloud the cloud side. */
enum ea_upstream_tier { EA_TIER_DEVICE, EA_TIER_EDGE_NODE, EA_TIER_CLOUD };

/* fallback_on: a set of triggers (bits). */
enum ea_fallback_trigger {
    EA_FALLBACK_CONNECT_ERROR = 1u << 0,
    EA_FALLBACK_TIMEOUT = 1u << 1,
    EA_FALLBACK_HTTP_429 = 1u << 2,
    EA_FALLBACK_HTTP_5XX = 1u << 3,
    EA_FALLBACK_OVERLOADED = 1u << 4,
    EA_FALLBACK_NOT_LOADED = 1u << 5,
    EA_FALLBACK_CONTEXT_TOO_LONG = 1u << 6,
};
#define EA_FALLBACK_ALL 0x7Fu /* the default: every trigger */

struct ea_upstream_timeouts {
    uint32_t connect_ms;     /* TCP + TLS connection */
    uint32_t first_token_ms; /* from the start of the attempt to its first token */
    uint32_t idle_ms;        /* longest gap between two chunks */
    uint32_t total_ms;       /* the whole attempt */
};

struct ea_upstream_price {
    double input_per_mtok, output_per_mtok; /* currency units per million tokens */
};

struct ea_config_header {
    char *name, *value;
};

struct ea_upstream_config {
    char *name;
    enum ea_upstream_kind kind;
    char *base_url;     /* openai: required, http(s)://host..., no credentials; local: NULL */
    char *model;        /* openai: the remote model name (required); local: a GGUF path
                         * or store name, NULL = the model served with -m */
    char *api_key_env;  /* NAME of the environment variable holding the key; NULL = none */
    enum ea_upstream_tier tier; /* default: device for local, cloud for openai */
    struct ea_upstream_price price;        /* default 0, 0 */
    struct ea_upstream_timeouts timeouts;  /* defaults in docs/ROUTING.md */
    uint32_t max_concurrent;               /* 0 = no cap of its own */
    char *ca_file;                         /* openai only; NULL = the system's CAs */
    struct ea_config_header *headers;      /* openai only; extra request headers */
    size_t n_headers;
    uint32_t fallback_on;                  /* enum ea_fallback_trigger bits */
    struct ea_config_pos pos;              /* the list item */
};

enum ea_task_mode {
    EA_MODE_AUTO,         /* follow ea_router_decide and live state */
    EA_MODE_EDGE_ONLY,
    EA_MODE_PREFER_EDGE,
    EA_MODE_PREFER_CLOUD,
    EA_MODE_CLOUD_ONLY,
    EA_MODE_HYBRID,
    EA_MODE_CASCADE,      /* the edge model first; its hand-off moves the request on */
};

/* The text an edge model answers with, as its first token, when a request
 * is beyond it (task mode cascade: the request moves to the task's next
 * upstream before the client sees anything). */
#define EA_ROUTER_HANDOFF_MARKER "<handoff>"
enum ea_privacy_mode { EA_PRIVACY_LOCAL_ONLY, EA_PRIVACY_REDACT, EA_PRIVACY_ALLOW };

struct ea_task_config {
    char *name;
    struct ea_task_profile profile;
    enum ea_task_mode mode;       /* default: routing.defaults.mode (auto) */
    enum ea_privacy_mode privacy; /* default: routing.defaults.privacy (allow) */
    bool local_only_edge_node;    /* local_only may also use tier edge-node (default false) */
    size_t *upstreams;  /* preference order: indices into config->upstreams */
    size_t n_upstreams; /* 0 = any configured upstream, the router's choice */
    struct ea_config_pos pos;
};

/* A `server:` entry: a `serve` option by its long name (no dashes in front)
 * and its value as text, for the CLI to apply (and to report with pos). */
struct ea_config_server_option {
    char *key, *value;
    struct ea_config_pos pos; /* of the value */
};

/* Breakers, retries and hedging (routing.breaker, routing.retries,
 * routing.hedge_min_ms; live.c). */
struct ea_router_params {
    uint32_t breaker_failures;       /* consecutive failures that open a breaker; default 5 */
    uint32_t breaker_cooldown_ms;    /* first open period; default 1000 */
    uint32_t breaker_cooldown_max_ms;/* doubling stops here; default 60000 */
    uint32_t retries;                /* extra attempts on the same upstream (429, 5xx,
                                        timeouts) while the budget allows; default 1 */
    uint32_t retry_base_ms;          /* first backoff (doubles, full jitter); default 100 */
    uint32_t retry_max_ms;           /* backoff cap (Retry-After may ask more, within
                                        the budget); default 2000 */
    uint32_t hedge_min_ms;           /* the hedge delay's floor; default 50 */
};
void ea_router_params_default(struct ea_router_params *p);

struct ea_routing_config {
    struct ea_router_weights weights;
    size_t default_task;        /* index into tasks; valid when has_default_task */
    bool has_default_task;
    enum ea_task_mode default_mode;
    enum ea_privacy_mode default_privacy;
    uint32_t default_max_latency_ms; /* 0 = none */
    struct ea_router_params params;  /* defaults: ea_router_params_default */
};

struct ea_router_config {
    char *file; /* the name used in messages */
    struct ea_config_server_option *server;
    size_t n_server;
    struct ea_upstream_config *upstreams;
    size_t n_upstreams;
    struct ea_task_config *tasks;
    size_t n_tasks;
    struct ea_routing_config routing;
    struct ea_config_node *privacy; /* NULL when the section is absent */
    struct ea_config_node *ledger;  /* NULL when the section is absent */
};

/* Caps of what a configuration may hold. */
#define EA_CONFIG_MAX_BYTES ((size_t)1 << 20) /* the file */
#define EA_CONFIG_MAX_DEPTH 32                /* nesting of collections */
#define EA_CONFIG_MAX_NODES 100000            /* values in the whole file */
#define EA_CONFIG_MAX_NAME 64                 /* upstream and task names */
#define EA_CONFIG_MAX_UPSTREAMS 16            /* a request may try each one */

/* Parses and validates YAML text (len bytes, no NUL needed). file names the
 * source in messages: every rejection is one line "file:line:column: path:
 * what is wrong" (path like tasks[1].mode, 0-based indices) with status
 * EA_EFORMAT (EA_ETOOBIG past a cap, EA_ENOMEM). On success *out is owned by
 * the caller: free with ea_router_config_destroy. Reads no environment. */
ea_status ea_router_config_parse(const char *text, size_t len, const char *file,
                                 struct ea_router_config **out, struct ea_error *err);
/* The same over a file (at most EA_CONFIG_MAX_BYTES). */
ea_status ea_router_config_load(const char *path, struct ea_router_config **out,
                                struct ea_error *err);
void ea_router_config_destroy(struct ea_router_config *cfg); /* NULL-safe */

/* Lookups by name; NULL when absent. */
const struct ea_upstream_config *ea_router_config_upstream(const struct ea_router_config *cfg,
                                                           const char *name);
const struct ea_task_config *ea_router_config_task(const struct ea_router_config *cfg,
                                                   const char *name);

/* The names the file uses ("local", "edge-node", "prefer_cloud", ...). */
const char *ea_upstream_kind_name(enum ea_upstream_kind k);
const char *ea_upstream_tier_name(enum ea_upstream_tier t);
const char *ea_task_mode_name(enum ea_task_mode m);
const char *ea_privacy_mode_name(enum ea_privacy_mode p);
const char *ea_fallback_trigger_name(enum ea_fallback_trigger t);

/* ---- live routing: per-upstream state and the per-request plan ---------- */

/* Thread-safe live state of the configured upstreams (src/router/live.c):
 * a circuit breaker, requests in flight, a window of observed times to
 * first token and counters per upstream. Times are milliseconds on the
 * caller's monotonic clock (passed in, so tests drive time). */
typedef struct ea_router ea_router;

enum ea_breaker_state { EA_BREAKER_CLOSED, EA_BREAKER_OPEN, EA_BREAKER_HALF_OPEN };


/* cfg is borrowed and must outlive the router; cfg->n_upstreams >= 1. p
 * NULL: cfg->routing.params. */
ea_status ea_router_create(const struct ea_router_config *cfg, const struct ea_router_params *p,
                           ea_router **out, struct ea_error *err);
void ea_router_destroy(ea_router *r); /* NULL-safe */
const struct ea_router_config *ea_router_get_config(const ea_router *r);

/* How one attempt on an upstream ended, as the breaker sees it. */
enum ea_attempt_outcome {
    EA_ATTEMPT_OK,       /* answered (closes a half-open breaker) */
    EA_ATTEMPT_FAILED,   /* the upstream failed (counts toward opening) */
    EA_ATTEMPT_NEUTRAL,  /* says nothing about its health: cancelled (lost a
                            hedge, the client left), or the request's own
                            fault (400, 401) */
};

/* Takes a slot on upstream u before an attempt: false when its breaker is
 * open (or half-open with the probe already out) or max_concurrent is
 * reached; *probe tells a half-open probe. Every true is matched by one
 * ea_router_end with the same probe flag. */
bool ea_router_begin(ea_router *r, size_t u, double now_ms, bool *probe);
/* ttft_ms < 0: no token came. */
void ea_router_end(ea_router *r, size_t u, enum ea_attempt_outcome o, double ttft_ms, bool probe,
                   double now_ms);
/* A request left upstream u for another one (counted for /metrics). */
void ea_router_count_fallback(ea_router *r, size_t u);

#define EA_ROUTER_TTFT_WINDOW 128 /* most recent times to first token kept per upstream */

struct ea_upstream_status {
    enum ea_breaker_state breaker;
    uint32_t in_flight;
    uint32_t consecutive_failures;
    double retry_after_ms;  /* open: until the next probe may go; else 0 */
    double ttft_p50_ms, ttft_p95_ms; /* < 0: no sample yet */
    uint32_t n_ttft;        /* samples in the window */
    uint64_t requests, failures, fallbacks, breaker_opens;
};
void ea_router_status(ea_router *r, size_t u, double now_ms, struct ea_upstream_status *st);

/* The local engine's load, for the predicted completion time. */
struct ea_local_load {
    bool loaded;             /* a model is loaded and the engine healthy */
    bool have_stats;         /* rates measured (false just after start) */
    int32_t queue_depth, running, max_running;
    double prefill_tok_s;    /* measured prompt tokens per second */
    double decode_step_ms;   /* one decode step of the current batch */
    double mean_request_ms;  /* observed mean time of a local request; 0 = unknown */
    int32_t max_context;     /* prompt + output tokens the engine holds */
};
/* Predicted time of a local completion: queue wait + prompt ÷ prefill rate
 * + max_tokens × decode step (docs/ROUTING.md); 0 without stats. */
double ea_router_predict_local_ms(const struct ea_local_load *l, int32_t prompt_tokens,
                                  int32_t max_tokens);

/* One request as the plan sees it. */
struct ea_route_input {
    const struct ea_task_config *task; /* NULL: no task (the defaults; mode auto) */
    int32_t pinned;          /* upstream index named by the request, or -1 */
    bool allow_cloud;        /* false: no tier-cloud upstream on any path */
    bool local_only;         /* privacy: the device tier only ... */
    bool local_edge_node;    /* ... and tier edge-node (the task allows it) */
    uint32_t max_latency_ms; /* the request's budget, 0 = the task's (or none) */
    int32_t prompt_tokens;   /* estimate, for the local context and prediction */
    int32_t max_tokens;
    struct ea_local_load local;
};

#define EA_ROUTE_MAX_PLAN EA_CONFIG_MAX_UPSTREAMS /* upstreams one request may try */
#define EA_ROUTE_REASON_MAX 192

struct ea_route_plan {
    uint32_t n;                         /* candidates in order of trial */
    uint32_t order[EA_ROUTE_MAX_PLAN];  /* upstream indices */
    bool hedge;                         /* start order[1] too after hedge_delay_ms */
    bool cascade;                       /* order[0] is an edge model whose answer may be
                                           EA_ROUTER_HANDOFF_MARKER: then order[1] on */
    uint32_t hedge_delay_ms;
    uint32_t budget_ms;                 /* 0 = none */
    enum ea_route_target target;        /* EDGE or CLOUD side first, or HYBRID */
    bool has_decision;                  /* mode auto: the scoring below was used */
    struct ea_route_decision decision;
    double retry_after_ms;              /* n == 0 because breakers are open: when to retry */
    char reason[EA_ROUTE_REASON_MAX];   /* why this order (or why nothing) */
};

/* Orders the candidate upstreams of one request (docs/ROUTING.md, "Per-
 * request routing"). n == 0 when none may serve it (reason says why;
 * retry_after_ms > 0 when open breakers are the cause). Never fails. */
void ea_router_plan(ea_router *r, const struct ea_route_input *in, double now_ms,
                    struct ea_route_plan *plan);

/* Backoff before retry number attempt (1-based) on the same upstream: full
 * jitter over base * 2^(attempt-1) capped at retry_max_ms, or Retry-After
 * when the upstream gave one (retry_after_ms > 0). rnd: any 64-bit random. */
uint32_t ea_router_backoff_ms(const ea_router *r, uint32_t attempt, double retry_after_ms,
                              uint64_t rnd);
const struct ea_router_params *ea_router_get_params(const ea_router *r);

#ifdef __cplusplus
}
#endif
#endif
