/* ledger.h - the cost and latency ledger: one SQLite row per request (never
 * any text), costs and the all-cloud counterfactual, cloud budgets with
 * reservations, and the report over the rows (docs/LEDGER.md).
 *
 * Holds: the `ledger:` configuration section (parsed from the router's
 * position-tagged tree), the ledger handle (a WAL database `ledger.db` in a
 * data directory given by the caller, a writer thread behind a bounded queue
 * so that recording never waits for the database), budgets (reserve before dispatch, settle
 * after) and reports (a struct, and the same as JSON).
 * and the summary sync (aggregates only, POSTed in order with idempotency
 * keys).
 * Does not hold: the request path that fills rows (the server), /metrics,
 * HTTP routes, the dashboard; nor any environment access:
 * the CLI resolves the default data directory ($XDG_DATA_HOME) and passes it.
 * Built only with EA_HAVE_NET (SQLite comes with the server's libraries).
 */
#ifndef EDGEAGENT_LEDGER_H
#define EDGEAGENT_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeagent/error.h"
#include "edgeagent/router.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- configuration ------------------------------------------------------ */

enum ea_budget_action {
    EA_BUDGET_REJECT, /* answer 429 naming the budget */
    EA_BUDGET_EDGE,   /* route the request to the edge instead */
};

/* USD caps per UTC day and UTC month; 0 = no cap. */
struct ea_ledger_caps {
    double daily_usd, monthly_usd;
};

struct ea_ledger_task_budget {
    char *task;                   /* a task of the router configuration */
    struct ea_ledger_caps caps;
    enum ea_budget_action action; /* default: budgets.action */
};

struct ea_ledger_config {
    char *data_dir;              /* NULL = the caller's default (the CLI: $XDG_DATA_HOME/edgeagent) */
    double edge_cost_per_mtok;   /* USD per million tokens served on the device tier; default 0 */
    /* The counterfactual: what every request would have cost on this model.
     * has_reference false = no reference (no cloud upstream and none
     * configured): counterfactual costs are 0. */
    bool has_reference;
    char *reference_model;       /* its name, for reports; NULL without a reference */
    struct ea_upstream_price reference_price;
    struct ea_ledger_caps global;        /* budgets.daily / budgets.monthly */
    enum ea_budget_action default_action; /* budgets.action; default reject */
    struct ea_ledger_task_budget *tasks;  /* budgets.tasks */
    size_t n_tasks;
    uint32_t queue_rows;         /* writer queue length; default EA_LEDGER_DEFAULT_QUEUE */
    /* sync: what ea_ledger_sync_start takes (the caller resolves
     * api_key_env). endpoint NULL = no sync. */
    char *sync_endpoint;
    uint32_t sync_interval_s;    /* default 300 */
    char *sync_api_key_env;      /* NAME of the variable; the library never reads it */
};

#define EA_LEDGER_DEFAULT_QUEUE 4096u
#define EA_LEDGER_MAX_QUEUE 65536u   /* x sizeof(struct ea_ledger_row), ~0.9 KB: 59 MB at most */
#define EA_LEDGER_MAX_USD 1e9 /* the largest cap, price or edge cost accepted */

/* The defaults: no data_dir, edge cost 0, no reference, no budgets. */
void ea_ledger_config_init(struct ea_ledger_config *c);
/* Reads rc->ledger (absent = defaults) into *out (caller-allocated; release
 * with ea_ledger_config_release even on failure). Task names in budgets must
 * be tasks of rc; `reference: NAME` names an upstream of rc; without a
 * reference the most expensive cloud upstream (input + output price, the
 * first on a tie) is it. Errors: "file:line:column: ledger.path: what"
 * (EA_EFORMAT) like ea_router_config_parse. Reads no environment. */
ea_status ea_ledger_config_parse(const struct ea_router_config *rc, struct ea_ledger_config *out,
                                 struct ea_error *err);
void ea_ledger_config_release(struct ea_ledger_config *c); /* NULL-safe */

/* ---- rows --------------------------------------------------------------- */

/* Bounds of the identifiers a row carries (config names, model ids, outcome
 * codes): they are checked against a small alphabet so that no free text can
 * reach the file. */
#define EA_LEDGER_NAME_MAX 64      /* task, upstream (EA_CONFIG_MAX_NAME) */
#define EA_LEDGER_MODEL_MAX 128
#define EA_LEDGER_OUTCOME_MAX 32
#define EA_LEDGER_REQUEST_ID_MAX 48 /* the server's X-Request-Id */
#define EA_LEDGER_ENTITY_TYPES 16  /* privacy entity types per row */
#define EA_LEDGER_ENTITY_NAME_MAX 24

struct ea_ledger_entity_count {
    char type[EA_LEDGER_ENTITY_NAME_MAX + 1]; /* [a-z0-9_]+, e.g. "email" */
    uint32_t count;
};

/* One request, filled by the server when it ends. Plain data with fixed
 * arrays: ea_ledger_record copies it without allocating. There is no text
 * field: prompts and completions cannot be recorded through this API. */
struct ea_ledger_row {
    int64_t time_ms;      /* when the request ended, Unix ms (UTC); 0 = now */
    char request_id[EA_LEDGER_REQUEST_ID_MAX + 1]; /* [A-Za-z0-9._-]*, may be empty */
    char task[EA_LEDGER_NAME_MAX + 1];         /* [A-Za-z0-9._-]+ */
    enum ea_upstream_tier tier;                /* the source that answered */
    char upstream[EA_LEDGER_NAME_MAX + 1];     /* [A-Za-z0-9._-]+ */
    char model[EA_LEDGER_MODEL_MAX + 1];       /* [A-Za-z0-9._:/@+-]+ */
    struct ea_upstream_price price;            /* the upstream's price (remote tiers) */
    uint32_t prompt_tokens, completion_tokens, cached_prompt_tokens;
    bool estimated;        /* a token count was estimated (cut stream, no usage) */
    double ttft_ms;        /* time to first token; < 0 = no token was produced */
    double total_ms;       /* total latency */
    char outcome[EA_LEDGER_OUTCOME_MAX + 1];   /* "ok" or an error code [a-z0-9_]+ */
    uint32_t fallbacks, hedges, attempts;
    struct ea_ledger_entity_count entities[EA_LEDGER_ENTITY_TYPES];
    uint32_t n_entities;
    /* Filled by ea_ledger_price_row (and by ea_ledger_record, which
     * overwrites them): */
    double cost_usd, counterfactual_usd;
};

/* A row with every field empty: outcome "ok", ttft_ms -1, attempts 1. */
void ea_ledger_row_init(struct ea_ledger_row *row);
/* EA_OK, or EA_EINVAL with the field named in err when an identifier is
 * empty or outside its alphabet, or a figure is negative or not finite. */
ea_status ea_ledger_row_check(const struct ea_ledger_row *row, struct ea_error *err);

/* Cost of tokens: device tier = edge_cost_per_mtok x (prompt + completion);
 * edge-node and cloud = price (input x prompt + output x completion). */
double ea_ledger_cost_usd(const struct ea_ledger_config *c, enum ea_upstream_tier tier,
                          const struct ea_upstream_price *price, uint64_t prompt_tokens,
                          uint64_t completion_tokens);
/* A request's worst case for a reservation: prompt tokens + max_tokens at
 * the price. */
double ea_ledger_worst_case_usd(const struct ea_upstream_price *price, uint64_t prompt_tokens,
                                uint64_t max_tokens);
/* Fills row->cost_usd and row->counterfactual_usd (the same tokens at the
 * reference price; 0 without a reference). */
void ea_ledger_price_row(const struct ea_ledger_config *c, struct ea_ledger_row *row);

/* ---- the ledger ---------------------------------------------------------- */

typedef struct ea_ledger ea_ledger;

struct ea_ledger_options {
    const struct ea_ledger_config *config; /* NULL = defaults; copied, may be freed after open */
    bool read_only;        /* reports only: no writer thread, the file must exist */
    /* The clock (Unix ms, UTC) for row times and budget periods; NULL = the
     * system clock. Tests move it across day and month boundaries. */
    int64_t (*clock_ms)(void *ud);
    void *clock_ud;
    /* How long a connection waits for another process's write lock; 0 =
     * 5000 ms. The writer gives a batch up (counted as failed) after four
     * such waits in a row. */
    uint32_t busy_timeout_ms;
    /* Rows are durable once in the journal (ledger.journal.0/.1 beside the
     * database, replayed at the next open if the process ends first); the
     * writer commits them to the database at least this often (ms; 0 =
     * 100). Reports see a row once it is committed (ea_ledger_flush
     * commits at once). */
    uint32_t commit_interval_ms;
};

/* Opens (creating when missing and not read_only) data_dir and
 * data_dir/ledger.db in WAL mode, creates the schema, commits the rows the
 * journal holds from a process that ended before committing them (one
 * writing process per data directory: EA_ESTATE otherwise), reads this UTC day's
 * and month's cloud spend per task back from the rows, and starts the
 * writer thread. Errors say which path failed and why (EA_EIO, EA_ENOTFOUND
 * for a read-only open of a missing file, EA_EFORMAT for a file that is not
 * a ledger). *out owned by the caller: ea_ledger_close. */
ea_status ea_ledger_open(const char *data_dir, const struct ea_ledger_options *opts,
                         ea_ledger **out, struct ea_error *err);
/* Commits what is queued, stops the writer, closes the file. NULL-safe. */
void ea_ledger_close(ea_ledger *l);

/* Queues a copy of row (priced with ea_ledger_price_row) for the writer.
 * Never waits for the database (one write() of the row to the journal,
 * see ea_ledger_record_notify): EA_OK when queued, EA_EOVERLOADED when the
 * queue is full (the row is dropped and counted), EA_EINVAL for a row
 * ea_ledger_row_check refuses (counted as rejected), EA_ESTATE on a
 * read-only ledger. */
ea_status ea_ledger_record(ea_ledger *l, const struct ea_ledger_row *row, struct ea_error *err);
/* Called on the writer thread once the row's transaction has ended:
 * committed (durable against the process being killed) or not (a write
 * error, the row counted as failed). It must not call into the ledger's
 * writer (record, flush, close); it may take its caller's own locks. */
typedef void (*ea_ledger_done_fn)(void *user, bool committed);
/* ea_ledger_record, telling when the row is durable: *durable (optional)
 * true when it is on return (written to the journal: it survives the
 * process being killed; done is never called then), false when it is not
 * yet (the journal could not be written, e.g. the disk is full): then, if
 * the call returned EA_OK, done(user, ...) follows once the row's
 * transaction has ended. Lets a server hold a request's last bytes until
 * its row is durable: every answer a client saw end is in the ledger. */
ea_status ea_ledger_record_notify(ea_ledger *l, const struct ea_ledger_row *row, ea_ledger_done_fn done,
                                  void *user, bool *durable, struct ea_error *err);
/* Waits until every row queued before the call is committed (or failed),
 * at most timeout_ms. EA_ETIMEOUT when the time ran out. */
ea_status ea_ledger_flush(ea_ledger *l, uint32_t timeout_ms);

struct ea_ledger_stats {
    uint64_t written;  /* rows committed */
    uint64_t dropped;  /* rows refused because the queue was full */
    uint64_t failed;   /* rows lost to a write error (disk full, I/O) */
    uint64_t rejected; /* rows refused by ea_ledger_row_check */
    uint64_t queued;   /* rows waiting now */
    uint64_t batches;  /* transactions committed */
    uint64_t replayed; /* rows committed at open from the journal of a process that ended first */
    uint64_t journal_failed;     /* rows that could not be written to the journal */
    uint64_t journal_unreadable; /* journal files whose reading stopped at a cut or bad record */
    /* The last write error ("" if none): for a log line; holds no row data. */
    char last_error[EA_ERROR_MSG_MAX];
};
void ea_ledger_stats(ea_ledger *l, struct ea_ledger_stats *out);

/* The path of the database file (for messages). */
const char *ea_ledger_path(const ea_ledger *l);

/* ---- budgets ------------------------------------------------------------- */

enum ea_budget_period { EA_BUDGET_DAILY, EA_BUDGET_MONTHLY };

/* A reservation held between dispatch and settle (caller-allocated). */
struct ea_ledger_reservation {
    char task[EA_LEDGER_NAME_MAX + 1];
    double amount_usd; /* 0 = nothing reserved (edge tiers, no price) */
    bool active;
};

/* Why a reservation was refused. */
struct ea_ledger_budget_over {
    bool task_budget;              /* false = the global budget */
    char task[EA_LEDGER_NAME_MAX + 1]; /* the request's task */
    enum ea_budget_period period;
    double cap_usd, spent_usd, reserved_usd, requested_usd;
    enum ea_budget_action action;  /* the task's action (else budgets.action) */
};

/* Reserves worst_case_usd of cloud spend for a request of task (NULL or ""
 * = no task) before it is dispatched to an upstream of tier. Requests on
 * the device or edge-node tier, and zero amounts, are never refused (an
 * empty reservation). Refused when, for any cap that applies (global and
 * the task's, daily and monthly), spent + reserved + worst_case_usd would
 * pass the cap: then *over (if not NULL) says which and the action to take,
 * and the return is EA_EOVERLOADED. Under one mutex: concurrent reservations
 * never pass a cap together. Periods are UTC days and months of the clock. */
ea_status ea_ledger_budget_reserve(ea_ledger *l, const char *task, enum ea_upstream_tier tier,
                                   double worst_case_usd, struct ea_ledger_reservation *res,
                                   struct ea_ledger_budget_over *over);
/* Releases the reservation and adds actual_usd (the row's cost_usd) to the
 * current day's and month's spend. A spend above the reservation is
 * counted as it is: the cap is then passed by at most that excess. Settling
 * an inactive reservation does nothing. */
void ea_ledger_budget_settle(ea_ledger *l, struct ea_ledger_reservation *res, double actual_usd);
/* "daily budget of task 'x' (1.00 USD) reached: 0.98 spent, 0.01 reserved,
 * this request may cost 0.05" into buf (always NUL-terminated). */
const char *ea_ledger_budget_message(const struct ea_ledger_budget_over *o, char *buf, size_t size);

/* One cap's state, for /metrics and the dashboard. */
struct ea_ledger_budget_state {
    char task[EA_LEDGER_NAME_MAX + 1]; /* "" = global */
    enum ea_budget_period period;
    double cap_usd, spent_usd, reserved_usd;
    enum ea_budget_action action; /* what happens at the cap */
};
/* Writes up to max states (every configured cap) into out; returns how many
 * caps there are. */
size_t ea_ledger_budget_states(ea_ledger *l, struct ea_ledger_budget_state *out, size_t max);

/* ---- summary sync ---------------------------------------------------------- */

/* Only aggregates travel: every interval, the rows committed since the last
 * summary are summed per task and source (counts, token and cost totals,
 * latency and TTFT histograms; no text, no per-request rows) into one
 * summary, queued in the database (sync_outbox) in the same transaction
 * that moves the cursor, so each row is in exactly one summary. Summaries
 * are POSTed in order, each with an Idempotency-Key header ("<ledger id>-
 * <seq>", the same on every retry and after a restart); one that fails or
 * times out is retried (with backoff) before any later one is sent, and is
 * deleted from the queue only after a 2xx answer. */
struct ea_ledger_sync_options {
    const char *endpoint;  /* http:// or https:// URL (required) */
    const char *api_key;   /* sent as "Authorization: Bearer ..."; NULL = none. The CLI
                            * reads it from ledger.sync.api_key_env; never logged */
    const char *ca_file;   /* NULL = the system's CAs */
    uint32_t interval_ms;  /* how often a summary is made (ledger.sync.interval_s x 1000) */
    uint32_t timeout_ms;   /* one POST at most; 0 = 10000 */
    uint32_t retry_ms;     /* first wait after a failure, doubling up to interval_ms; 0 = 1000 */
};
/* Starts the sync thread on a writable ledger (EA_ESTATE if read-only or
 * already started; EA_EINVAL for a bad endpoint). Stopped by
 * ea_ledger_close; summaries not yet sent stay queued for the next start. */
ea_status ea_ledger_sync_start(ea_ledger *l, const struct ea_ledger_sync_options *o,
                               struct ea_error *err);
struct ea_ledger_sync_stats {
    uint64_t made;       /* summaries queued since start */
    uint64_t sent;       /* summaries delivered (2xx) since start */
    uint64_t failures;   /* POSTs that failed or timed out since start */
    uint64_t waiting;    /* summaries in the queue now */
    char last_error[EA_ERROR_MSG_MAX]; /* the last failure ("" if none) */
};
void ea_ledger_sync_stats(ea_ledger *l, struct ea_ledger_sync_stats *out);

/* ---- reports ------------------------------------------------------------- */

enum ea_ledger_group_by { EA_LEDGER_BY_SOURCE, EA_LEDGER_BY_TASK, EA_LEDGER_BY_UPSTREAM };

/* Histogram bounds (ms) of latency and TTFT: cumulative buckets, bucket i
 * counts the values <= ea_ledger_hist_le_ms[i] (+Inf: the count itself).
 * The summary sync uses the same bounds. */
#define EA_LEDGER_HIST_BUCKETS 11
extern const unsigned ea_ledger_hist_le_ms[EA_LEDGER_HIST_BUCKETS];

/* Figures over a set of rows. Latencies in ms; quantiles are nearest-rank
 * (the smallest value with at least q of the rows at or below it). */
struct ea_ledger_figures {
    uint64_t requests, ok, errors, estimated;
    uint64_t edge_requests, cloud_requests;    /* device + edge-node; cloud */
    uint64_t fallbacks, hedges, attempts;      /* sums over the rows */
    uint64_t requests_with_fallback;
    uint64_t prompt_tokens, completion_tokens, cached_prompt_tokens;
    double latency_p50_ms, latency_p95_ms, latency_p99_ms;
    uint64_t ttft_count;                       /* rows with a first token */
    double ttft_p50_ms, ttft_p95_ms, ttft_p99_ms;
    uint64_t latency_le[EA_LEDGER_HIST_BUCKETS], ttft_le[EA_LEDGER_HIST_BUCKETS]; /* cumulative */
    double cost_usd;          /* every row's cost */
    double cloud_cost_usd;    /* rows on the cloud tier */
    double edge_cost_usd;     /* rows on the device and edge-node tiers */
    double counterfactual_usd;
    double savings_usd;       /* counterfactual - cost */
    double savings_pct;       /* 100 x savings / counterfactual; 0 when that is 0 */
    double edge_share;        /* edge_requests / requests; 0 without requests */
};

struct ea_ledger_report_group {
    char key[EA_LEDGER_MODEL_MAX + 1]; /* the tier name, task or upstream */
    struct ea_ledger_figures f;
};

struct ea_ledger_entity_total {
    char type[EA_LEDGER_ENTITY_NAME_MAX + 1];
    uint64_t count;
};

struct ea_ledger_report {
    int64_t since_ms, until_ms;      /* the window: since <= time < until */
    enum ea_ledger_group_by by;
    struct ea_ledger_figures total;
    struct ea_ledger_report_group *groups; /* by key, in name order */
    size_t n_groups;
    /* privacy entities found in the window's requests, per type, in name
     * order (all groups together) */
    struct ea_ledger_entity_total *entities;
    size_t n_entities;
};

/* Rows with since_ms <= time_ms < until_ms (until 0 = the clock's now).
 * *out owned by the caller: ea_ledger_report_destroy. Reads through its own
 * connection: the writer is not held up. */
ea_status ea_ledger_report(ea_ledger *l, int64_t since_ms, int64_t until_ms,
                           enum ea_ledger_group_by by, struct ea_ledger_report **out,
                           struct ea_error *err);
void ea_ledger_report_destroy(struct ea_ledger_report *r); /* NULL-safe */
/* The report as one JSON object (docs/LEDGER.md; USD figures unrounded).
 * *json owned by the caller: free with ea_free. */
ea_status ea_ledger_report_json(const struct ea_ledger_report *r, char **json,
                                struct ea_error *err);
/* Figures over time for charts (the dashboard: edge and cloud share, cost
 * and savings, errors and fallbacks): one point per step, on multiples of
 * the step since the Unix epoch (since rounded down, until rounded up;
 * until 0 = now), empty steps included. A point's bucket holds the rows
 * with t <= time_ms < t + step:
 *   {"since_ms","until_ms","step_ms","points":[{"t", "requests":{"device",
 *    "edge-node","cloud"}, "errors", "fallbacks", "cost_usd", "cloud_cost_usd",
 *    "counterfactual_usd", "savings_usd"}, ...]}
 * step_ms: whole seconds, at most EA_LEDGER_SERIES_MAX_STEP_MS; steps of
 * whole minutes read the per-minute sums, shorter ones the rows. At most
 * EA_LEDGER_SERIES_MAX points (else EA_EINVAL). *json owned by the caller:
 * ea_free. */
#define EA_LEDGER_SERIES_MAX 10000
#define EA_LEDGER_SERIES_MAX_STEP_MS (7LL * 86400000LL) /* a week */
ea_status ea_ledger_series_json(ea_ledger *l, int64_t since_ms, int64_t until_ms, int64_t step_ms,
                                char **json, struct ea_error *err);
/* The ledger's state for the dashboard, as one JSON object:
 *   {"enabled":true, "rows":{"written","dropped","failed","rejected",
 *    "queued"}, "reference_model":NAME|null, "budgets":[{"task":NAME|null
 *    (null = global), "period":"daily"|"monthly", "action":"reject"|"edge",
 *    "cap_usd","spent_usd","reserved_usd"}, ...]}
 * (budgets: every configured cap, as ea_ledger_budget_states, the first
 * 1024 of them). *json owned by the caller: ea_free. */
ea_status ea_ledger_state_json(ea_ledger *l, char **json, struct ea_error *err);

/* A window length as `report --since` and the stats route take it: N
 * followed by s, m, h, d or w (1 second to 10 years), or "all" (*ms = -1).
 * EA_EINVAL otherwise. */
ea_status ea_ledger_parse_since(const char *s, int64_t *ms);
/* "source", "task", "upstream"; and back (EA_EINVAL for another name). */
ea_status ea_ledger_group_by_parse(const char *s, enum ea_ledger_group_by *by);
const char *ea_ledger_group_by_name(enum ea_ledger_group_by by);

#ifdef __cplusplus
}
#endif
#endif
