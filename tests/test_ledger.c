/* test_ledger.c - the cost and latency ledger (EA_TEST_NEEDS_NET: SQLite
 * comes with the server's libraries). The `ledger:` section with its
 * file:line:column errors; rows round-trip through SQLite column by column
 * and the file never holds text; the savings figure recomputed by hand from
 * the token columns; quantiles against a sort; budgets under 50 threads, at
 * UTC day and month boundaries and across a restart; a full queue drops and
 * counts; unusable data directories (read-only, a file, not a ledger, a
 * full disk) give clear errors; a writer killed with SIGKILL leaves a sound
 * file holding every row it reported committed; `edgeagent report`. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "edgeagent/ledger.h"
#include "harness.h"

#define PROMPT_MARKER "Zebra-quartz prompt 7781: my card is 4111 1111 1111 1111"

static char dir_buf[4096];

static const char *fresh_dir(const char *name)
{
    snprintf(dir_buf, sizeof dir_buf, "%s", ea_test_tmp_path(name));
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir_buf);
    if (system(cmd) != 0)
        FAIL("cannot clear %s", dir_buf);
    return dir_buf;
}

static const char base_yaml[] =
    "upstreams:\n"
    "  - name: local\n"
    "    kind: local\n"
    "  - name: node\n"
    "    kind: openai\n"
    "    base_url: http://127.0.0.1:9001/v1\n"
    "    model: llama-8b\n"
    "    tier: edge-node\n"
    "    price: {input_per_mtok: 0.05, output_per_mtok: 0.1}\n"
    "  - name: mini\n"
    "    kind: openai\n"
    "    base_url: http://127.0.0.1:9000/v1\n"
    "    model: gpt-4o-mini\n"
    "    price: {input_per_mtok: 0.15, output_per_mtok: 0.60}\n"
    "  - name: big\n"
    "    kind: openai\n"
    "    base_url: http://127.0.0.1:9000/v1\n"
    "    model: gpt-4o\n"
    "    price: {input_per_mtok: 2.5, output_per_mtok: 10}\n"
    "tasks:\n"
    "  - name: chat\n"
    "  - name: summarize\n";

static struct ea_router_config *router_cfg(const char *ledger_yaml)
{
    static char text[8192];
    snprintf(text, sizeof text, "%s%s", base_yaml, ledger_yaml);
    struct ea_router_config *rc = NULL;
    struct ea_error e = {0};
    ASSERT_OK(ea_router_config_parse(text, strlen(text), "edgeagent.yaml", &rc, &e), &e);
    return rc;
}

/* Parses base_yaml + ledger_yaml; returns the status, the message in msg. */
static ea_status ledger_cfg(const char *ledger_yaml, struct ea_ledger_config *out, char *msg)
{
    struct ea_router_config *rc = router_cfg(ledger_yaml);
    struct ea_error e = {0};
    ea_status s = ea_ledger_config_parse(rc, out, &e);
    snprintf(msg, EA_ERROR_MSG_MAX, "%s", e.msg);
    ea_router_config_destroy(rc);
    return s;
}

static void cfg_ok(const char *ledger_yaml, struct ea_ledger_config *out)
{
    char msg[EA_ERROR_MSG_MAX];
    ea_status s = ledger_cfg(ledger_yaml, out, msg);
    if (s)
        FAIL("%s: %s", ea_status_name(s), msg);
}

/* ---- configuration ------------------------------------------------------- */

static void config_full(void)
{
    struct ea_ledger_config c;
    cfg_ok("ledger:\n"
                             "  data_dir: /var/lib/edgeagent\n"
                             "  edge_cost_per_mtok: 0.02\n"
                             "  reference: mini\n"
                             "  queue: 100\n"
                             "  budgets:\n"
                             "    daily: 5\n"
                             "    monthly: 100.5\n"
                             "    action: edge\n"
                             "    tasks:\n"
                             "      summarize: {daily: 1, action: reject}\n"
                             "      chat: {monthly: 20}\n"
                             "  sync:\n"
                             "    endpoint: https://example.org/ingest\n"
                             "    interval_s: 60\n"
                             "    api_key_env: SYNC_KEY\n",
                             &c);
    ASSERT_STR_EQ(c.data_dir, "/var/lib/edgeagent");
    ASSERT_NEAR(c.edge_cost_per_mtok, 0.02, 0);
    ASSERT(c.has_reference);
    ASSERT_STR_EQ(c.reference_model, "gpt-4o-mini");
    ASSERT_NEAR(c.reference_price.output_per_mtok, 0.6, 0);
    ASSERT_EQ(c.queue_rows, 100);
    ASSERT_NEAR(c.global.daily_usd, 5, 0);
    ASSERT_NEAR(c.global.monthly_usd, 100.5, 0);
    ASSERT_EQ(c.default_action, EA_BUDGET_EDGE);
    ASSERT_EQ(c.n_tasks, 2);
    ASSERT_STR_EQ(c.tasks[0].task, "summarize");
    ASSERT_NEAR(c.tasks[0].caps.daily_usd, 1, 0);
    ASSERT_NEAR(c.tasks[0].caps.monthly_usd, 0, 0);
    ASSERT_EQ(c.tasks[0].action, EA_BUDGET_REJECT);
    ASSERT_STR_EQ(c.tasks[1].task, "chat");
    ASSERT_EQ(c.tasks[1].action, EA_BUDGET_EDGE); /* budgets.action */
    ASSERT_STR_EQ(c.sync_endpoint, "https://example.org/ingest");
    ASSERT_EQ(c.sync_interval_s, 60);
    ASSERT_STR_EQ(c.sync_api_key_env, "SYNC_KEY");
    ea_ledger_config_release(&c);

    /* no ledger section: defaults, the most expensive cloud upstream as
     * reference (big: 2.5 + 10), not the edge node */
    cfg_ok("", &c);
    ASSERT(c.has_reference && !c.data_dir && c.n_tasks == 0);
    ASSERT_STR_EQ(c.reference_model, "gpt-4o");
    ASSERT_NEAR(c.reference_price.input_per_mtok, 2.5, 0);
    ASSERT_NEAR(c.edge_cost_per_mtok, 0, 0);
    ASSERT_EQ(c.queue_rows, EA_LEDGER_DEFAULT_QUEUE);
    ea_ledger_config_release(&c);

    /* a reference model that is not an upstream */
    cfg_ok("ledger:\n  reference: {model: o3, input_per_mtok: 10, output_per_mtok: 40}\n",
                         &c);
    ASSERT_STR_EQ(c.reference_model, "o3");
    ASSERT_NEAR(c.reference_price.output_per_mtok, 40, 0);
    ea_ledger_config_release(&c);
}

static void config_errors(void)
{
    static const struct {
        const char *yaml, *msg;
    } cases[] = {
        {"ledger:\n  colour: red\n", "edgeagent.yaml:24:3: ledger.colour: unknown key (expected one of: "
                                     "data_dir, edge_cost_per_mtok, reference, queue, budgets, sync)"},
        {"ledger:\n  edge_cost_per_mtok: -1\n", "edgeagent.yaml:24:23: ledger.edge_cost_per_mtok: -1 is "
                                                "out of range (0..1e+09)"},
        {"ledger:\n  budgets: {daily: cheap}\n", "edgeagent.yaml:24:20: ledger.budgets.daily: 'cheap' is "
                                                 "not a number"},
        {"ledger:\n  budgets:\n    tasks:\n      translate: {daily: 1}\n",
         "edgeagent.yaml:26:7: ledger.budgets.tasks.translate: no task is named 'translate' (budgets "
         "name tasks of the tasks section)"},
        {"ledger:\n  budgets:\n    tasks:\n      chat: {daily: 1, action: queue}\n",
         "edgeagent.yaml:26:32: ledger.budgets.tasks.chat.action: 'queue' is not one of edge, reject"},
        {"ledger:\n  reference: nowhere\n", "edgeagent.yaml:24:14: ledger.reference: no upstream is named "
                                            "'nowhere' (write a mapping {model, input_per_mtok, "
                                            "output_per_mtok} for a model that is not an upstream)"},
        {"ledger:\n  reference: {model: x}\n", "edgeagent.yaml:24:14: ledger.reference: needs model, "
                                               "input_per_mtok and output_per_mtok"},
        {"ledger:\n  queue: 0\n", "edgeagent.yaml:24:10: ledger.queue: 0 is out of range (1..65536)"},
        {"ledger:\n  sync: {endpoint: ftp://x}\n", "edgeagent.yaml:24:20: ledger.sync.endpoint: 'ftp://x' "
                                                   "is not an http:// or https:// URL"},
        {"ledger:\n  sync: {endpoint: 'https://u:p@x/'}\n",
         "edgeagent.yaml:24:20: ledger.sync.endpoint: credentials do not go in the URL: name an "
         "environment variable with api_key_env"},
        {"ledger: [1]\n", "edgeagent.yaml:23:9: ledger: expected a mapping, got a list"},
        {"ledger:\n  budgets: {daily: 2e9}\n", "edgeagent.yaml:24:20: ledger.budgets.daily: 2e9 is out of "
                                               "range (0..1e+09)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ea_ledger_config c;
        char msg[EA_ERROR_MSG_MAX];
        ea_status s = ledger_cfg(cases[i].yaml, &c, msg);
        ea_ledger_config_release(&c);
        if (s != EA_EFORMAT)
            FAIL("case %zu: status %s, message '%s'", i, ea_status_name(s), msg);
        ASSERT_STR_EQ(msg, cases[i].msg);
    }
}

static void parse_since_names(void)
{
    int64_t ms = 0;
    ASSERT_OK(ea_ledger_parse_since("24h", &ms), &(struct ea_error){.status = EA_OK});
    ASSERT_EQ(ms, 86400000LL);
    ASSERT_EQ(ea_ledger_parse_since("90s", &ms), EA_OK);
    ASSERT_EQ(ms, 90000);
    ASSERT_EQ(ea_ledger_parse_since("2w", &ms), EA_OK);
    ASSERT_EQ(ms, 14 * 86400000LL);
    ASSERT_EQ(ea_ledger_parse_since("all", &ms), EA_OK);
    ASSERT_EQ(ms, -1);
    ASSERT_EQ(ea_ledger_parse_since("3650d", &ms), EA_OK);
    static const char *const bad[] = {"", "h", "0h", "-1h", "1.5h", "24", "24hh", "1y", "3651d",
                                      "999999999999w", "9999999999999s", " 1h", "all "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ea_ledger_parse_since(bad[i], &ms) != EA_EINVAL)
            FAIL("'%s' was accepted", bad[i]);
    enum ea_ledger_group_by by;
    ASSERT_EQ(ea_ledger_group_by_parse("upstream", &by), EA_OK);
    ASSERT_EQ(by, EA_LEDGER_BY_UPSTREAM);
    ASSERT_EQ(ea_ledger_group_by_parse("Source", &by), EA_EINVAL);
}

static void pricing(void)
{
    struct ea_ledger_config c;
    ea_ledger_config_init(&c);
    c.edge_cost_per_mtok = 0.5;
    c.has_reference = true;
    c.reference_price = (struct ea_upstream_price){2, 8};
    struct ea_upstream_price p = {1, 4};
    /* device: 0.5 per Mtok over prompt + completion; the price is ignored */
    ASSERT_NEAR(ea_ledger_cost_usd(&c, EA_TIER_DEVICE, &p, 1000000, 1000000), 1.0, 1e-12);
    ASSERT_NEAR(ea_ledger_cost_usd(&c, EA_TIER_CLOUD, &p, 1000000, 500000), 1 + 2, 1e-12);
    ASSERT_NEAR(ea_ledger_cost_usd(&c, EA_TIER_EDGE_NODE, &p, 2000, 0), 0.002, 1e-12);
    ASSERT_NEAR(ea_ledger_worst_case_usd(&p, 1000, 4000), (1000 * 1 + 4000 * 4) / 1e6, 1e-15);
    struct ea_ledger_row r;
    ea_ledger_row_init(&r);
    r.tier = EA_TIER_DEVICE;
    r.prompt_tokens = 300000;
    r.completion_tokens = 100000;
    ea_ledger_price_row(&c, &r);
    ASSERT_NEAR(r.cost_usd, 0.2, 1e-12);
    ASSERT_NEAR(r.counterfactual_usd, 0.6 + 0.8, 1e-12);
}

/* ---- rows ----------------------------------------------------------------- */

static ea_ledger *open_ledger(const char *dir, const struct ea_ledger_config *c)
{
    ea_ledger *l = NULL;
    struct ea_error e = {0};
    struct ea_ledger_options o = {.config = c};
    ASSERT_OK(ea_ledger_open(dir, &o, &l, &e), &e);
    return l;
}

static sqlite3 *open_raw(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/ledger.db", dir);
    sqlite3 *db = NULL;
    ASSERT_EQ(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    return db;
}

static double sql_double(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        FAIL("%s: %s", sql, sqlite3_errmsg(db));
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    double v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

static char *sql_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        FAIL("%s: %s", sql, sqlite3_errmsg(db));
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    char *v = strdup(t ? (const char *)t : "(null)");
    sqlite3_finalize(st);
    return v;
}

static bool file_has(const char *path, const char *needle)
{
    size_t n = 0;
    char *d = ea_test_read_file(path, &n);
    if (!d)
        return false;
    bool found = false;
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n && !found; i++)
        found = memcmp(d + i, needle, k) == 0;
    free(d);
    return found;
}

static void fill_row(struct ea_ledger_row *r, int i)
{
    ea_ledger_row_init(r);
    r->time_ms = 1800000000000LL + i;
    snprintf(r->task, sizeof r->task, "%s", i % 2 ? "chat" : "summarize");
    r->tier = (enum ea_upstream_tier)(i % 3);
    snprintf(r->upstream, sizeof r->upstream, "%s", r->tier == EA_TIER_DEVICE ? "local"
                                                  : r->tier == EA_TIER_CLOUD ? "mini" : "node");
    snprintf(r->model, sizeof r->model, "org/model-%d:Q4_K_M", i % 4);
    if (r->tier == EA_TIER_CLOUD)
        r->price = (struct ea_upstream_price){0.15, 0.6};
    else if (r->tier == EA_TIER_EDGE_NODE)
        r->price = (struct ea_upstream_price){0.05, 0.1};
    r->prompt_tokens = 100 + (uint32_t)i * 7;
    r->completion_tokens = 20 + (uint32_t)i * 3;
    r->cached_prompt_tokens = (uint32_t)i % 50;
    r->estimated = i % 5 == 0;
    r->ttft_ms = i % 7 == 0 ? -1 : 10.5 + i;
    r->total_ms = 100.25 + 2 * i;
    if (i % 11 == 0)
        snprintf(r->outcome, sizeof r->outcome, "upstream_timeout");
    r->fallbacks = (uint32_t)(i % 3 == 2);
    r->hedges = (uint32_t)(i % 13 == 0);
    r->attempts = 1 + r->fallbacks;
    if (i % 4 == 0) {
        r->n_entities = 2;
        snprintf(r->entities[0].type, sizeof r->entities[0].type, "email");
        r->entities[0].count = 2;
        snprintf(r->entities[1].type, sizeof r->entities[1].type, "phone_number");
        r->entities[1].count = (uint32_t)i;
    }
}

static void rows_roundtrip(void)
{
    const char *dir = fresh_dir("roundtrip");
    /* the text of the request exists only here: no field of the row can
     * carry it, so it must not be anywhere in the files */
    char prompt[256];
    snprintf(prompt, sizeof prompt, "%s", PROMPT_MARKER);
    struct ea_ledger_config c;
    ea_ledger_config_init(&c);
    c.edge_cost_per_mtok = 0.01;
    c.has_reference = true;
    c.reference_price = (struct ea_upstream_price){2.5, 10};
    ea_ledger *l = open_ledger(dir, &c);
    enum { N = 40 };
    struct ea_error e = {0};
    for (int i = 0; i < N; i++) {
        struct ea_ledger_row r;
        fill_row(&r, i);
        ASSERT_OK(ea_ledger_record(l, &r, &e), &e);
    }
    ASSERT_OK(ea_ledger_flush(l, 10000), &e);
    struct ea_ledger_stats st;
    ea_ledger_stats(l, &st);
    ASSERT_U64_EQ(st.written, N);
    ASSERT_U64_EQ(st.dropped + st.failed + st.rejected + st.queued, 0);
    ASSERT(st.batches >= 1 && st.batches <= N);

    sqlite3 *db = open_raw(dir);
    sqlite3_stmt *q = NULL;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT time_ms, task, tier, upstream, model, prompt_tokens,"
                                 " completion_tokens, cached_prompt_tokens, estimated, ttft_ms,"
                                 " total_ms, outcome, fallbacks, hedges, attempts, privacy, cost_usd,"
                                 " counterfactual_usd FROM requests ORDER BY id",
                                 -1, &q, NULL),
              SQLITE_OK);
    static const char *const tiers[] = {"device", "edge-node", "cloud"};
    for (int i = 0; i < N; i++) {
        struct ea_ledger_row r;
        fill_row(&r, i);
        ea_ledger_price_row(&c, &r);
        ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
        ASSERT_EQ(sqlite3_column_int64(q, 0), r.time_ms);
        ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 1), r.task);
        ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 2), tiers[r.tier]);
        ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 3), r.upstream);
        ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 4), r.model);
        ASSERT_EQ(sqlite3_column_int64(q, 5), r.prompt_tokens);
        ASSERT_EQ(sqlite3_column_int64(q, 6), r.completion_tokens);
        ASSERT_EQ(sqlite3_column_int64(q, 7), r.cached_prompt_tokens);
        ASSERT_EQ(sqlite3_column_int(q, 8), r.estimated);
        if (r.ttft_ms < 0)
            ASSERT_EQ(sqlite3_column_type(q, 9), SQLITE_NULL);
        else
            ASSERT_NEAR(sqlite3_column_double(q, 9), r.ttft_ms, 0);
        ASSERT_NEAR(sqlite3_column_double(q, 10), r.total_ms, 0);
        ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 11), r.outcome);
        ASSERT_EQ(sqlite3_column_int64(q, 12), r.fallbacks);
        ASSERT_EQ(sqlite3_column_int64(q, 13), r.hedges);
        ASSERT_EQ(sqlite3_column_int64(q, 14), r.attempts);
        char priv[128];
        if (r.n_entities)
            snprintf(priv, sizeof priv, "{\"email\":2,\"phone_number\":%d}", i);
        else
            snprintf(priv, sizeof priv, "{}");
        ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 15), priv);
        ASSERT_NEAR(sqlite3_column_double(q, 16), r.cost_usd, 0);
        ASSERT_NEAR(sqlite3_column_double(q, 17), r.counterfactual_usd, 0);
        ASSERT(r.counterfactual_usd > 0);
    }
    ASSERT_EQ(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    char *mode = sql_text(db, "PRAGMA journal_mode");
    ASSERT_STR_EQ(mode, "wal");
    free(mode);
    /* the columns are exactly these: a new text column would be caught here */
    char *cols = sql_text(db, "SELECT group_concat(name, ',') FROM pragma_table_info('requests')");
    ASSERT_STR_EQ(cols, "id,time_ms,request_id,task,tier,upstream,model,prompt_tokens,completion_tokens,"
                        "cached_prompt_tokens,estimated,ttft_ms,total_ms,outcome,fallbacks,hedges,"
                        "attempts,privacy,cost_usd,counterfactual_usd");
    free(cols);
    sqlite3_close(db);
    ea_ledger_close(l);
    char path[4200];
    const char *files[] = {"ledger.db", "ledger.db-wal", "ledger.journal.0", "ledger.journal.1"};
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        ASSERT(!file_has(path, prompt));
        ASSERT(!file_has(path, "4111 1111"));
    }
    snprintf(path, sizeof path, "%s/ledger.db", dir);
    ASSERT(file_has(path, "summarize")); /* the check above can see strings at all */
}

static void rows_refused(void)
{
    const char *dir = fresh_dir("refused");
    ea_ledger *l = open_ledger(dir, NULL);
    struct ea_error e = {0};
    struct ea_ledger_row r;
    /* free text in any identifier is refused, never stored */
    fill_row(&r, 1);
    snprintf(r.task, sizeof r.task, "%s", "my card is 4111");
    ASSERT_EQ(ea_ledger_record(l, &r, &e), EA_EINVAL);
    ASSERT(strstr(e.msg, "task"));
    fill_row(&r, 1);
    snprintf(r.model, sizeof r.model, "%s", "gpt\n4");
    ASSERT_EQ(ea_ledger_record(l, &r, &e), EA_EINVAL);
    fill_row(&r, 1);
    snprintf(r.outcome, sizeof r.outcome, "%s", "Timeout!");
    ASSERT_EQ(ea_ledger_record(l, &r, &e), EA_EINVAL);
    fill_row(&r, 4);
    snprintf(r.entities[1].type, sizeof r.entities[1].type, "%s", "email");
    ASSERT_EQ(ea_ledger_record(l, &r, &e), EA_EINVAL);
    ASSERT(strstr(e.msg, "twice"));
    fill_row(&r, 1);
    r.total_ms = -1;
    ASSERT_EQ(ea_ledger_record(l, &r, &e), EA_EINVAL);
    fill_row(&r, 1);
    r.tier = (enum ea_upstream_tier)7;
    ASSERT_EQ(ea_ledger_record(l, &r, &e), EA_EINVAL);
    fill_row(&r, 1);
    r.time_ms = 0; /* stamped with the clock */
    ASSERT_OK(ea_ledger_record(l, &r, &e), &e);
    ASSERT_OK(ea_ledger_flush(l, 10000), &e);
    struct ea_ledger_stats st;
    ea_ledger_stats(l, &st);
    ASSERT_U64_EQ(st.rejected, 6);
    ASSERT_U64_EQ(st.written, 1);
    ea_ledger_close(l);
    sqlite3 *db = open_raw(dir);
    double t = sql_double(db, "SELECT time_ms FROM requests");
    ASSERT(t > 1.7e12 && t < 4e12);
    sqlite3_close(db);
}

/* ---- reports ---------------------------------------------------------------- */

static void savings_by_hand(void)
{
    const char *dir = fresh_dir("savings");
    struct ea_ledger_config c;
    ea_ledger_config_init(&c);
    c.edge_cost_per_mtok = 0.03;
    c.has_reference = true;
    c.reference_price = (struct ea_upstream_price){2.5, 10};
    ea_ledger *l = open_ledger(dir, &c);
    struct ea_error e = {0};
    enum { N = 600 };
    for (int i = 0; i < N; i++) {
        struct ea_ledger_row r;
        fill_row(&r, i);
        ASSERT_OK(ea_ledger_record(l, &r, &e), &e);
    }
    ASSERT_OK(ea_ledger_flush(l, 10000), &e);
    struct ea_ledger_report *rep = NULL;
    ASSERT_OK(ea_ledger_report(l, 0, 0, EA_LEDGER_BY_SOURCE, &rep, &e), &e);
    /* by hand: the token columns times the prices, not the cost columns */
    sqlite3 *db = open_raw(dir);
    double counterfactual = sql_double(db, "SELECT SUM((prompt_tokens * 2.5 + completion_tokens * 10)"
                                           " / 1e6) FROM requests");
    double cost = sql_double(db, "SELECT SUM(CASE tier"
                                 " WHEN 'device' THEN (prompt_tokens + completion_tokens) * 0.03"
                                 " WHEN 'edge-node' THEN prompt_tokens * 0.05 + completion_tokens * 0.1"
                                 " ELSE prompt_tokens * 0.15 + completion_tokens * 0.6 END / 1e6)"
                                 " FROM requests");
    double cloud = sql_double(db, "SELECT SUM((prompt_tokens * 0.15 + completion_tokens * 0.6) / 1e6)"
                                  " FROM requests WHERE tier = 'cloud'");
    double edge_n = sql_double(db, "SELECT COUNT(*) FROM requests WHERE tier != 'cloud'");
    double fallbacks = sql_double(db, "SELECT SUM(fallbacks) FROM requests");
    sqlite3_close(db);
    const struct ea_ledger_figures *t = &rep->total;
    ASSERT_U64_EQ(t->requests, N);
    ASSERT(counterfactual > 1 && cost > 0.05);
    ASSERT_NEAR(t->counterfactual_usd, counterfactual, 1e-9 * counterfactual);
    ASSERT_NEAR(t->cost_usd, cost, 1e-9 * cost);
    ASSERT_NEAR(t->cloud_cost_usd, cloud, 1e-9 * cloud);
    ASSERT_NEAR(t->savings_usd, counterfactual - cost, 1e-9 * counterfactual);
    ASSERT_NEAR(t->savings_pct, 100 * (counterfactual - cost) / counterfactual, 1e-9);
    ASSERT_NEAR(t->edge_share, edge_n / N, 1e-12);
    ASSERT_U64_EQ(t->fallbacks, (uint64_t)fallbacks);
    ASSERT_U64_EQ(t->requests_with_fallback, (uint64_t)fallbacks);
    ASSERT_U64_EQ(t->errors, (N + 10) / 11);
    ASSERT_U64_EQ(t->ok + t->errors, N);
    ASSERT_U64_EQ(t->ttft_count, N - (N + 6) / 7);
    /* the groups add up to the total */
    ASSERT_EQ(rep->n_groups, 3);
    ASSERT_STR_EQ(rep->groups[0].key, "cloud");
    ASSERT_STR_EQ(rep->groups[1].key, "device");
    ASSERT_STR_EQ(rep->groups[2].key, "edge-node");
    double sum = 0;
    uint64_t n = 0;
    for (size_t i = 0; i < rep->n_groups; i++) {
        sum += rep->groups[i].f.savings_usd;
        n += rep->groups[i].f.requests;
    }
    ASSERT_U64_EQ(n, N);
    ASSERT_NEAR(sum, t->savings_usd, 1e-9 * counterfactual);
    ASSERT_NEAR(rep->groups[0].f.edge_share, 0, 0);
    ASSERT_NEAR(rep->groups[1].f.edge_share, 1, 0);

    /* the JSON carries the same figures, unrounded */
    char *json = NULL;
    ASSERT_OK(ea_ledger_report_json(rep, &json, &e), &e);
    json_error_t je;
    json_t *root = json_loads(json, 0, &je);
    if (!root)
        FAIL("report JSON does not parse: %s", je.text);
    json_t *tot = json_object_get(root, "total");
    ASSERT(json_real_value(json_object_get(tot, "savings_usd")) == t->savings_usd);
    ASSERT(json_real_value(json_object_get(tot, "cost_usd")) == t->cost_usd);
    ASSERT_EQ(json_integer_value(json_object_get(tot, "requests")), N);
    ASSERT_STR_EQ(json_string_value(json_object_get(root, "by")), "source");
    ASSERT_EQ(json_array_size(json_object_get(root, "groups")), 3);
    json_t *g0 = json_array_get(json_object_get(root, "groups"), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(g0, "key")), "cloud");
    ASSERT(json_real_value(json_object_get(json_object_get(g0, "latency_ms"), "p99")) ==
           rep->groups[0].f.latency_p99_ms);
    json_decref(root);
    ea_free(json);
    ea_ledger_report_destroy(rep);

    /* by task, and a window that holds half the rows */
    ASSERT_OK(ea_ledger_report(l, 1800000000000LL + N / 2, 1800000000000LL + N, EA_LEDGER_BY_TASK, &rep, &e),
              &e);
    ASSERT_U64_EQ(rep->total.requests, N / 2);
    ASSERT_EQ(rep->n_groups, 2);
    ASSERT_STR_EQ(rep->groups[0].key, "chat");
    ASSERT_STR_EQ(rep->groups[1].key, "summarize");
    ea_ledger_report_destroy(rep);
    ASSERT_OK(ea_ledger_report(l, 0, 1000, EA_LEDGER_BY_UPSTREAM, &rep, &e), &e);
    ASSERT_U64_EQ(rep->total.requests, 0);
    ASSERT(isnan(rep->total.latency_p50_ms));
    ASSERT_NEAR(rep->total.savings_pct, 0, 0);
    ASSERT_OK(ea_ledger_report_json(rep, &json, &e), &e);
    ASSERT(strstr(json, "\"p50\":null"));
    ea_free(json);
    ea_ledger_report_destroy(rep);
    ea_ledger_close(l);
}

/* The time series for charts: each point equals SQL over its minutes. */
static void series_points(void)
{
    const char *dir = fresh_dir("series");
    struct ea_ledger_config c;
    ea_ledger_config_init(&c);
    c.has_reference = true;
    c.reference_price = (struct ea_upstream_price){2.5, 10};
    ea_ledger *l = open_ledger(dir, &c);
    struct ea_error e = {0};
    const int64_t base = 1800000000000LL;
    for (int i = 0; i < 700; i++) {
        struct ea_ledger_row r;
        fill_row(&r, i);
        r.time_ms = base + (int64_t)((i * 7919) % 700) * 1003; /* ~12 minutes, out of order */
        ASSERT_OK(ea_ledger_record(l, &r, &e), &e);
    }
    ASSERT_OK(ea_ledger_flush(l, 10000), &e);
    char *json = NULL;
    ASSERT_OK(ea_ledger_series_json(l, base + 30000, base + 14 * 60000, 3 * 60000, &json, &e), &e);
    json_error_t je;
    json_t *root = json_loads(json, 0, &je);
    if (!root)
        FAIL("series JSON: %s", je.text);
    ASSERT_EQ(json_integer_value(json_object_get(root, "since_ms")), base);
    json_t *pts = json_object_get(root, "points");
    ASSERT_EQ(json_array_size(pts), 5); /* 14 minutes in steps of 3 */
    sqlite3 *db = open_raw(dir);
    uint64_t all = 0;
    for (size_t i = 0; i < json_array_size(pts); i++) {
        json_t *p = json_array_get(pts, i);
        int64_t t = json_integer_value(json_object_get(p, "t"));
        ASSERT_EQ(t, base + (int64_t)i * 180000);
        char sql[256];
        static const char *const tiers[] = {"device", "edge-node", "cloud"};
        for (int k = 0; k < 3; k++) {
            snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM requests WHERE tier = '%s' AND time_ms >= %lld "
                     "AND time_ms < %lld", tiers[k], (long long)t, (long long)(t + 180000));
            uint64_t n = (uint64_t)sql_double(db, sql);
            ASSERT_U64_EQ(json_integer_value(json_object_get(json_object_get(p, "requests"), tiers[k])), n);
            all += n;
        }
        snprintf(sql, sizeof sql, "SELECT TOTAL(counterfactual_usd) - TOTAL(cost_usd) FROM requests WHERE "
                 "time_ms >= %lld AND time_ms < %lld", (long long)t, (long long)(t + 180000));
        double sav = sql_double(db, sql);
        ASSERT_NEAR(json_number_value(json_object_get(p, "savings_usd")), sav, 1e-9 * fabs(sav) + 1e-12);
    }
    ASSERT_U64_EQ(all, 700);
    sqlite3_close(db);
    json_decref(root);
    ea_free(json);
    ASSERT_EQ(ea_ledger_series_json(l, base, base + 60000, 1500, &json, &e), EA_EINVAL); /* not whole seconds */
    ASSERT_EQ(ea_ledger_series_json(l, base, base + 60000, 0, &json, &e), EA_EINVAL);
    ASSERT_EQ(ea_ledger_series_json(l, base, base + 60000, 8 * 86400000LL, &json, &e), EA_EINVAL);
    ASSERT_EQ(ea_ledger_series_json(l, base, base, 60000, &json, &e), EA_EINVAL); /* empty window */
    ASSERT_EQ(ea_ledger_series_json(l, base, base + 100000LL * 60000, 60000, &json, &e), EA_EINVAL);
    ASSERT_EQ(ea_ledger_series_json(l, base, base + 10001LL * 1000, 1000, &json, &e), EA_EINVAL);
    ea_ledger_close(l);
}

/* One row of the bucket tests: a tier, a time, prompt tokens (the cost:
 * cloud 10 USD and the reference 1 USD per million), an outcome and
 * fallbacks. */
struct timed_row {
    int64_t dt;
    enum ea_upstream_tier tier;
    uint32_t prompt;
    bool error;
    uint32_t fallbacks;
};

static void record_timed(ea_ledger *l, int64_t base, const struct timed_row *t, size_t n)
{
    struct ea_error e = {0};
    for (size_t i = 0; i < n; i++) {
        struct ea_ledger_row r;
        ea_ledger_row_init(&r);
        r.time_ms = base + t[i].dt;
        snprintf(r.task, sizeof r.task, "chat");
        r.tier = t[i].tier;
        snprintf(r.upstream, sizeof r.upstream, "%s", t[i].tier == EA_TIER_CLOUD ? "cloud" : "local");
        snprintf(r.model, sizeof r.model, "m");
        if (t[i].tier == EA_TIER_CLOUD)
            r.price = (struct ea_upstream_price){10, 10};
        r.prompt_tokens = t[i].prompt;
        r.total_ms = 10;
        if (t[i].error)
            snprintf(r.outcome, sizeof r.outcome, "upstream_timeout");
        r.fallbacks = t[i].fallbacks;
        ASSERT_OK(ea_ledger_record(l, &r, &e), &e);
    }
    ASSERT_OK(ea_ledger_flush(l, 10000), &e);
}

struct want_point {
    uint64_t device, node, cloud, errors, fallbacks;
    double cost, counterfactual;
};

static void check_points(const char *json, int64_t since, int64_t step, const struct want_point *w, size_t n)
{
    json_error_t je;
    json_t *root = json_loads(json, 0, &je);
    if (!root)
        FAIL("series JSON: %s", je.text);
    ASSERT_EQ(json_integer_value(json_object_get(root, "since_ms")), since);
    ASSERT_EQ(json_integer_value(json_object_get(root, "step_ms")), step);
    ASSERT_EQ(json_integer_value(json_object_get(root, "until_ms")), since + (int64_t)n * step);
    json_t *pts = json_object_get(root, "points");
    ASSERT_EQ(json_array_size(pts), n);
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(pts, i), *rq = json_object_get(p, "requests");
        char *dump = json_dumps(p, JSON_COMPACT);
        printf("    point %zu: %s\n", i, dump ? dump : "");
        free(dump);
        ASSERT_EQ(json_integer_value(json_object_get(p, "t")), since + (int64_t)i * step);
        ASSERT_U64_EQ(json_integer_value(json_object_get(rq, "device")), w[i].device);
        ASSERT_U64_EQ(json_integer_value(json_object_get(rq, "edge-node")), w[i].node);
        ASSERT_U64_EQ(json_integer_value(json_object_get(rq, "cloud")), w[i].cloud);
        ASSERT_U64_EQ(json_integer_value(json_object_get(p, "errors")), w[i].errors);
        ASSERT_U64_EQ(json_integer_value(json_object_get(p, "fallbacks")), w[i].fallbacks);
        ASSERT_NEAR(json_number_value(json_object_get(p, "cost_usd")), w[i].cost, 1e-12);
        ASSERT_NEAR(json_number_value(json_object_get(p, "cloud_cost_usd")), w[i].cost, 1e-12);
        ASSERT_NEAR(json_number_value(json_object_get(p, "counterfactual_usd")), w[i].counterfactual, 1e-12);
        ASSERT_NEAR(json_number_value(json_object_get(p, "savings_usd")), w[i].counterfactual - w[i].cost, 1e-12);
    }
    json_decref(root);
}

/* Steps of seconds read the rows: a row at a bucket's first millisecond is
 * in it, one at its last millisecond too, the next one in the next bucket;
 * rows before since's bucket and at or after until's are out. Sums by hand:
 * cloud rows cost 10 USD per million prompt tokens, the reference 1. */
static void series_second_buckets(void)
{
    const char *dir = fresh_dir("series-seconds");
    struct ea_ledger_config c;
    ea_ledger_config_init(&c);
    c.has_reference = true;
    c.reference_price = (struct ea_upstream_price){1, 1};
    ea_ledger *l = open_ledger(dir, &c);
    const int64_t base = 1800000000000LL; /* a multiple of 10 s (and of a minute) */
    static const struct timed_row rows[] = {
        {-1, EA_TIER_CLOUD, 1000000, false, 0},        /* before the window */
        {0, EA_TIER_DEVICE, 100000, false, 0},         /* bucket 0, its first ms */
        {9999, EA_TIER_CLOUD, 200000, true, 2},        /* bucket 0, its last ms */
        {10000, EA_TIER_CLOUD, 400000, false, 1},      /* bucket 1, its first ms */
        {15000, EA_TIER_EDGE_NODE, 0, false, 0},       /* bucket 1 */
        {29999, EA_TIER_DEVICE, 300000, false, 0},     /* bucket 2, its last ms */
        {30000, EA_TIER_CLOUD, 1000000, false, 0},     /* until: out */
    };
    record_timed(l, base, rows, sizeof rows / sizeof rows[0]);
    static const struct want_point want[] = {
        {1, 0, 1, 1, 2, 2.0, 0.3},  /* device 0.1 Mtok (reference 0.1) + cloud 0.2 Mtok (2 USD, ref 0.2) */
        {0, 1, 1, 0, 1, 4.0, 0.4},
        {1, 0, 0, 0, 0, 0.0, 0.3},
    };
    char *json = NULL;
    struct ea_error e = {0};
    /* since inside bucket 0: rounded down to it; until on a bucket's start */
    ASSERT_OK(ea_ledger_series_json(l, base + 5000, base + 30000, 10000, &json, &e), &e);
    check_points(json, base, 10000, want, 3);
    ea_free(json);
    /* until 1 ms into the next bucket: rounded up, the row at +30000 is in a 4th point */
    ASSERT_OK(ea_ledger_series_json(l, base, base + 30001, 10000, &json, &e), &e);
    static const struct want_point want4[] = {
        {1, 0, 1, 1, 2, 2.0, 0.3}, {0, 1, 1, 0, 1, 4.0, 0.4}, {1, 0, 0, 0, 0, 0.0, 0.3}, {0, 0, 1, 0, 0, 10.0, 1.0},
    };
    check_points(json, base, 10000, want4, 4);
    ea_free(json);
    /* one bucket of 30 s holds the three */
    ASSERT_OK(ea_ledger_series_json(l, base, base + 30000, 30000, &json, &e), &e);
    static const struct want_point one[] = {{2, 1, 2, 1, 3, 6.0, 1.0}};
    check_points(json, base, 30000, one, 1);
    ea_free(json);
    ea_ledger_close(l);
}

/* Steps of whole minutes read the per-minute sums: the same edges, and a
 * step of 2 minutes starts on a multiple of 2 minutes. */
static void series_minute_buckets(void)
{
    const char *dir = fresh_dir("series-minutes");
    struct ea_ledger_config c;
    ea_ledger_config_init(&c);
    c.has_reference = true;
    c.reference_price = (struct ea_upstream_price){1, 1};
    ea_ledger *l = open_ledger(dir, &c);
    const int64_t base = 1800000000000LL; /* a multiple of 2 minutes */
    static const struct timed_row rows[] = {
        {-1, EA_TIER_CLOUD, 1000000, false, 0},       /* the minute before */
        {59999, EA_TIER_CLOUD, 100000, false, 0},     /* minute 0, its last ms */
        {60000, EA_TIER_DEVICE, 200000, true, 1},     /* minute 1, its first ms */
        {119999, EA_TIER_CLOUD, 300000, false, 3},    /* minute 1, its last ms */
        {120000, EA_TIER_EDGE_NODE, 400000, false, 0}, /* minute 2 */
        {180000, EA_TIER_CLOUD, 1000000, false, 0},   /* minute 3: after until */
    };
    record_timed(l, base, rows, sizeof rows / sizeof rows[0]);
    char *json = NULL;
    struct ea_error e = {0};
    ASSERT_OK(ea_ledger_series_json(l, base + 1, base + 180000, 60000, &json, &e), &e);
    static const struct want_point want[] = {
        {0, 0, 1, 0, 0, 1.0, 0.1}, {1, 0, 1, 1, 4, 3.0, 0.5}, {0, 1, 0, 0, 0, 0.0, 0.4},
    };
    check_points(json, base, 60000, want, 3);
    ea_free(json);
    /* 2-minute steps from base + 1 min: the first bucket starts at base */
    ASSERT_OK(ea_ledger_series_json(l, base + 60000, base + 180000, 120000, &json, &e), &e);
    static const struct want_point two[] = {{1, 0, 2, 1, 4, 4.0, 0.6}, {0, 1, 1, 0, 0, 10.0, 1.4}};
    check_points(json, base, 120000, two, 2);
    ea_free(json);
    /* the rows path (30 s) agrees with the sums path pairwise */
    ASSERT_OK(ea_ledger_series_json(l, base, base + 120000, 30000, &json, &e), &e);
    static const struct want_point half[] = {
        {0, 0, 0, 0, 0, 0, 0}, {0, 0, 1, 0, 0, 1.0, 0.1}, {1, 0, 0, 1, 1, 0.0, 0.2}, {0, 0, 1, 0, 3, 3.0, 0.3},
    };
    check_points(json, base, 30000, half, 4);
    ea_free(json);
    ea_ledger_close(l);
}

/* The state for the dashboard: row counters and every cap with its spend,
 * reservation and action. */
static void state_json_budgets(void)
{
    const char *dir = fresh_dir("state-json");
    struct ea_ledger_config c;
    ea_ledger_config_init(&c);
    c.global.daily_usd = 5;
    c.tasks = calloc(1, sizeof *c.tasks);
    c.n_tasks = 1;
    c.tasks[0].task = strdup("chat");
    c.tasks[0].caps.monthly_usd = 2;
    c.tasks[0].action = EA_BUDGET_EDGE;
    ea_ledger *l = open_ledger(dir, &c);
    struct ea_ledger_reservation res;
    ASSERT_EQ(ea_ledger_budget_reserve(l, "chat", EA_TIER_CLOUD, 0.25, &res, NULL), EA_OK);
    static const struct timed_row rows[] = {{0, EA_TIER_CLOUD, 50000, false, 0}}; /* time 0: now */
    record_timed(l, 0, rows, 1);
    struct ea_ledger_reservation done;
    ASSERT_EQ(ea_ledger_budget_reserve(l, "chat", EA_TIER_CLOUD, 0.5, &done, NULL), EA_OK);
    ea_ledger_budget_settle(l, &done, 0.5);
    char *json = NULL;
    struct ea_error e = {0};
    ASSERT_OK(ea_ledger_state_json(l, &json, &e), &e);
    printf("    %s\n", json);
    json_t *root = json_loads(json, 0, NULL);
    ASSERT(root);
    ASSERT(json_is_true(json_object_get(root, "enabled")));
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(root, "rows"), "written")), 1);
    json_t *b = json_object_get(root, "budgets");
    ASSERT_EQ(json_array_size(b), 2);
    json_t *g = json_array_get(b, 0), *t = json_array_get(b, 1);
    ASSERT(json_is_null(json_object_get(g, "task")));
    ASSERT_STR_EQ(json_string_value(json_object_get(g, "period")), "daily");
    ASSERT_STR_EQ(json_string_value(json_object_get(g, "action")), "reject");
    ASSERT_NEAR(json_number_value(json_object_get(g, "cap_usd")), 5, 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(t, "task")), "chat");
    ASSERT_STR_EQ(json_string_value(json_object_get(t, "period")), "monthly");
    ASSERT_STR_EQ(json_string_value(json_object_get(t, "action")), "edge");
    ASSERT_NEAR(json_number_value(json_object_get(t, "cap_usd")), 2, 0);
    ASSERT_NEAR(json_number_value(json_object_get(t, "spent_usd")), 0.5, 1e-12);
    ASSERT_NEAR(json_number_value(json_object_get(t, "reserved_usd")), 0.25, 1e-12);
    ASSERT_NEAR(json_number_value(json_object_get(g, "spent_usd")), 0.5, 1e-12);
    json_decref(root);
    ea_free(json);
    ea_ledger_budget_settle(l, &res, 0);
    ea_ledger_close(l);
    ea_ledger_config_release(&c);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A window with partial minutes at both ends (whole minutes come from the
 * per-minute sums, the edges from the rows) over rows written out of time
 * order: every figure equals SQL over the rows in the window. */
static void report_window_exact(void)
{
    const char *dir = fresh_dir("window");
    struct ea_ledger_config c;
    ea_ledger_config_init(&c);
    c.edge_cost_per_mtok = 0.03;
    c.has_reference = true;
    c.reference_price = (struct ea_upstream_price){2.5, 10};
    ea_ledger *l = open_ledger(dir, &c);
    struct ea_error e = {0};
    const int64_t base = 1800000000000LL; /* a minute boundary */
    enum { N = 1500 };
    for (int i = 0; i < N; i++) {
        struct ea_ledger_row r;
        fill_row(&r, i);
        /* times jump back and forth over ~10 minutes */
        r.time_ms = base + (int64_t)((i * 7919) % N) * 401;
        ASSERT_OK(ea_ledger_record(l, &r, &e), &e);
    }
    ASSERT_OK(ea_ledger_flush(l, 10000), &e);
    static const int64_t windows[][2] = {{12345, 480017}, {60000, 120000}, {59999, 60200},
                                         {1, 0}, {200000, 200400}};
    sqlite3 *db = open_raw(dir);
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        int64_t since = base + windows[w][0], until = windows[w][1] ? base + windows[w][1] : 0;
        struct ea_ledger_report *rep = NULL;
        ASSERT_OK(ea_ledger_report(l, since, until, EA_LEDGER_BY_UPSTREAM, &rep, &e), &e);
        char where[128], sql[512];
        snprintf(where, sizeof where, "time_ms >= %lld AND time_ms < %lld", (long long)since,
                 (long long)(until ? until : INT64_MAX));
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM requests WHERE %s", where);
        double n = sql_double(db, sql);
        ASSERT(n > 0);
        ASSERT_U64_EQ(rep->total.requests, (uint64_t)n);
        snprintf(sql, sizeof sql, "SELECT SUM(cost_usd) FROM requests WHERE %s", where);
        double cost = sql_double(db, sql);
        ASSERT_NEAR(rep->total.cost_usd, cost, 1e-12 * cost);
        snprintf(sql, sizeof sql, "SELECT SUM(counterfactual_usd) - SUM(cost_usd) FROM requests WHERE %s",
                 where);
        double sav = sql_double(db, sql);
        ASSERT_NEAR(rep->total.savings_usd, sav, 1e-9 * fabs(sav) + 1e-15);
        snprintf(sql, sizeof sql, "SELECT SUM(prompt_tokens) FROM requests WHERE %s", where);
        ASSERT_U64_EQ(rep->total.prompt_tokens, (uint64_t)sql_double(db, sql));
        snprintf(sql, sizeof sql, "SELECT SUM(fallbacks > 0) FROM requests WHERE %s", where);
        ASSERT_U64_EQ(rep->total.requests_with_fallback, (uint64_t)sql_double(db, sql));
        snprintf(sql, sizeof sql, "SELECT SUM(outcome != 'ok') FROM requests WHERE %s", where);
        ASSERT_U64_EQ(rep->total.errors, (uint64_t)sql_double(db, sql));
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM requests WHERE tier != 'cloud' AND %s", where);
        ASSERT_U64_EQ(rep->total.edge_requests, (uint64_t)sql_double(db, sql));
        snprintf(sql, sizeof sql, "SELECT COUNT(ttft_ms) FROM requests WHERE %s", where);
        ASSERT_U64_EQ(rep->total.ttft_count, (uint64_t)sql_double(db, sql));
        /* p99 by nearest rank from SQL's own order */
        uint64_t k = (99 * (uint64_t)n + 99) / 100 - 1;
        snprintf(sql, sizeof sql, "SELECT total_ms FROM requests WHERE %s ORDER BY total_ms LIMIT 1 "
                 "OFFSET %llu", where, (unsigned long long)k);
        ASSERT_NEAR(rep->total.latency_p99_ms, sql_double(db, sql), 0);
        /* histograms: cumulative counts at each bound */
        for (int b = 0; b < EA_LEDGER_HIST_BUCKETS; b++) {
            snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM requests WHERE total_ms <= %u AND %s",
                     ea_ledger_hist_le_ms[b], where);
            ASSERT_U64_EQ(rep->total.latency_le[b], (uint64_t)sql_double(db, sql));
            snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM requests WHERE ttft_ms <= %u AND %s",
                     ea_ledger_hist_le_ms[b], where);
            ASSERT_U64_EQ(rep->total.ttft_le[b], (uint64_t)sql_double(db, sql));
        }
        ASSERT(rep->total.latency_le[EA_LEDGER_HIST_BUCKETS - 1] > 0);
        /* privacy entities per type, from the rows' JSON */
        snprintf(sql, sizeof sql, "SELECT COALESCE(SUM(json_extract(privacy, '$.email')), 0) FROM requests "
                 "WHERE %s", where);
        double email = sql_double(db, sql);
        snprintf(sql, sizeof sql, "SELECT COALESCE(SUM(json_extract(privacy, '$.phone_number')), 0) "
                 "FROM requests WHERE %s", where);
        double phone = sql_double(db, sql);
        if (w == 0)
            ASSERT(email > 0 && phone > 0); /* the wide window has both */
        size_t ek = 0;
        if (email > 0) {
            ASSERT(ek < rep->n_entities);
            ASSERT_STR_EQ(rep->entities[ek].type, "email");
            ASSERT_U64_EQ(rep->entities[ek].count, (uint64_t)email);
            ek++;
        }
        if (phone > 0) {
            ASSERT(ek < rep->n_entities);
            ASSERT_STR_EQ(rep->entities[ek].type, "phone_number");
            ASSERT_U64_EQ(rep->entities[ek].count, (uint64_t)phone);
            ek++;
        }
        /* a type whose counts are all 0 may be listed with 0 */
        for (; ek < rep->n_entities; ek++)
            ASSERT_U64_EQ(rep->entities[ek].count, 0);
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM requests WHERE upstream = 'mini' AND %s", where);
        double mini = sql_double(db, sql);
        uint64_t got = 0;
        for (size_t g = 0; g < rep->n_groups; g++)
            if (!strcmp(rep->groups[g].key, "mini"))
                got = rep->groups[g].f.requests;
        ASSERT_U64_EQ(got, (uint64_t)mini);
        ea_ledger_report_destroy(rep);
    }
    sqlite3_close(db);
    ea_ledger_close(l);
}

/* Nearest rank against a full sort, on sizes where off-by-one shows. */
static void quantiles_match_sort(void)
{
    static const int sizes[] = {1, 2, 3, 19, 20, 21, 99, 100, 101, 1000, 1237};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int n = sizes[si];
        char name[32];
        snprintf(name, sizeof name, "quant%d", n);
        const char *dir = fresh_dir(name);
        ea_ledger *l = open_ledger(dir, NULL);
        double *v = malloc((size_t)n * sizeof *v);
        unsigned seed = 12345u + (unsigned)n;
        struct ea_error e = {0};
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            v[i] = (double)((seed >> 8) % 500) + 0.5; /* duplicates on purpose */
            struct ea_ledger_row r;
            ea_ledger_row_init(&r);
            r.time_ms = 1000 + i;
            r.total_ms = v[i];
            r.ttft_ms = v[i] / 2;
            ASSERT_OK(ea_ledger_record(l, &r, &e), &e);
        }
        ASSERT_OK(ea_ledger_flush(l, 10000), &e);
        struct ea_ledger_report *rep = NULL;
        ASSERT_OK(ea_ledger_report(l, 0, 0, EA_LEDGER_BY_SOURCE, &rep, &e), &e);
        qsort(v, (size_t)n, sizeof *v, cmp_double);
        int k50 = (50 * n + 99) / 100 - 1, k95 = (95 * n + 99) / 100 - 1, k99 = (99 * n + 99) / 100 - 1;
        ASSERT_NEAR(rep->total.latency_p50_ms, v[k50], 0);
        ASSERT_NEAR(rep->total.latency_p95_ms, v[k95], 0);
        ASSERT_NEAR(rep->total.latency_p99_ms, v[k99], 0);
        ASSERT_NEAR(rep->total.ttft_p99_ms, v[k99] / 2, 0);
        ASSERT_NEAR(rep->groups[0].f.latency_p95_ms, v[k95], 0);
        ea_ledger_report_destroy(rep);
        free(v);
        ea_ledger_close(l);
    }
}

/* ---- the queue ---------------------------------------------------------------- */

/* A write lock held by another connection stalls the writer: record must
 * still return at once, dropping and counting what does not fit. */
static void queue_full_drops(void)
{
    const char *dir = fresh_dir("queuefull");
    struct ea_ledger_config c;
    ea_ledger_config_init(&c);
    c.queue_rows = 8;
    ea_ledger *l = open_ledger(dir, &c);
    char path[4200];
    snprintf(path, sizeof path, "%s/ledger.db", dir);
    sqlite3 *db = NULL;
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct ea_error e = {0};
    int ok = 0, full = 0;
    for (int i = 0; i < 200; i++) {
        struct ea_ledger_row r;
        fill_row(&r, i);
        ea_status s = ea_ledger_record(l, &r, &e);
        ASSERT(s == EA_OK || s == EA_EOVERLOADED);
        ok += s == EA_OK;
        full += s == EA_EOVERLOADED;
    }
    /* at most the queue plus one batch taken by the stalled writer */
    ASSERT(ok >= 8 && ok <= 16);
    struct ea_ledger_stats st;
    ea_ledger_stats(l, &st);
    ASSERT_U64_EQ(st.dropped, (uint64_t)full);
    ASSERT_U64_EQ(st.queued, (uint64_t)ok);
    ASSERT_EQ(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ASSERT_OK(ea_ledger_flush(l, 20000), &e);
    ea_ledger_stats(l, &st);
    ASSERT_U64_EQ(st.written, (uint64_t)ok);
    ASSERT_U64_EQ(st.queued, 0);
    ea_ledger_close(l);
}

/* Another process holding the write lock longer than the busy timeout: the
 * writer waits it out (a few timeouts) instead of losing the batch. */
static void writer_waits_out_a_lock(void)
{
    const char *dir = fresh_dir("busy");
    ea_ledger *l = NULL;
    struct ea_error e = {0};
    struct ea_ledger_options o = {.busy_timeout_ms = 150};
    ASSERT_OK(ea_ledger_open(dir, &o, &l, &e), &e);
    char path[4200];
    snprintf(path, sizeof path, "%s/ledger.db", dir);
    sqlite3 *db = NULL;
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < 10; i++) {
        struct ea_ledger_row r;
        fill_row(&r, i);
        ASSERT_OK(ea_ledger_record(l, &r, &e), &e);
    }
    usleep(300000); /* two busy timeouts */
    ASSERT_EQ(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ASSERT_OK(ea_ledger_flush(l, 10000), &e);
    struct ea_ledger_stats st;
    ea_ledger_stats(l, &st);
    ASSERT_U64_EQ(st.failed, 0);
    ASSERT_U64_EQ(st.written, 10);
    ea_ledger_close(l);
}

/* ---- budgets ----------------------------------------------------------------- */

static int64_t fake_now;
static int64_t fake_clock(void *ud)
{
    (void)ud;
    return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}

static ea_ledger *open_clocked(const char *dir, const struct ea_ledger_config *c)
{
    ea_ledger *l = NULL;
    struct ea_error e = {0};
    struct ea_ledger_options o = {.config = c, .clock_ms = fake_clock};
    ASSERT_OK(ea_ledger_open(dir, &o, &l, &e), &e);
    return l;
}

struct race {
    ea_ledger *l;
    pthread_barrier_t *bar;
    double amount;
    const char *task;
    bool reserved;
};

static void *race_main(void *arg)
{
    struct race *r = arg;
    struct ea_ledger_reservation res;
    pthread_barrier_wait(r->bar);
    r->reserved = ea_ledger_budget_reserve(r->l, r->task, EA_TIER_CLOUD, r->amount, &res, NULL) == EA_OK;
    if (r->reserved)
        ea_ledger_budget_settle(r->l, &res, r->amount); /* the worst case came true */
    return NULL;
}

static double spent(ea_ledger *l, const char *task, enum ea_budget_period p)
{
    struct ea_ledger_budget_state s[16];
    size_t n = ea_ledger_budget_states(l, s, 16);
    for (size_t i = 0; i < n && i < 16; i++)
        if (!strcmp(s[i].task, task) && s[i].period == p)
            return s[i].spent_usd;
    FAIL("no budget state for '%s'", task);
}

/* 50 threads reserve at once at the cap, round after round: the cap is
 * never passed, and exactly the reservations that fit are granted. */
static void budget_fifty_threads(void)
{
    const char *dir = fresh_dir("budget50");
    struct ea_ledger_config c;
    ea_ledger_config_init(&c);
    c.global.daily_usd = 10;
    fake_now = 1800000000000LL;
    ea_ledger *l = open_clocked(dir, &c);
    enum { T = 50 };
    const double amount = 0.07;
    int granted_total = 0;
    for (int round = 0; round < 6; round++) {
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, T);
        pthread_t th[T];
        struct race rs[T];
        for (int i = 0; i < T; i++) {
            rs[i] = (struct race){l, &bar, amount, i % 2 ? "chat" : NULL, false};
            ASSERT_EQ(pthread_create(&th[i], NULL, race_main, &rs[i]), 0);
        }
        for (int i = 0; i < T; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&bar);
        for (int i = 0; i < T; i++)
            granted_total += rs[i].reserved;
        double s = spent(l, "", EA_BUDGET_DAILY);
        ASSERT(s <= 10 + 1e-9);
    }
    /* floor(10 / 0.07) = 142 fit; the 143rd would pass the cap */
    ASSERT_EQ(granted_total, 142);
    ASSERT_NEAR(spent(l, "", EA_BUDGET_DAILY), 142 * amount, 1e-9);
    struct ea_ledger_budget_state st[4];
    ASSERT_EQ(ea_ledger_budget_states(l, st, 4), 1);
    ASSERT_NEAR(st[0].reserved_usd, 0, 0);
    ea_ledger_close(l);
}

static void budget_rules(void)
{
    const char *dir = fresh_dir("budgetrules");
    struct ea_ledger_config c;
    char msg[EA_ERROR_MSG_MAX];
    cfg_ok("ledger:\n  budgets:\n    daily: 1\n    monthly: 3\n    tasks:\n"
                         "      summarize: {daily: 0.5, action: edge}\n",
                         &c);
    fake_now = 1800000000000LL; /* 2027-01-15T08:00:00Z */
    ea_ledger *l = open_clocked(dir, &c);
    struct ea_ledger_reservation res, res2;
    struct ea_ledger_budget_over over;
    /* the edge side is never refused, nor is a zero amount */
    ASSERT_EQ(ea_ledger_budget_reserve(l, "summarize", EA_TIER_DEVICE, 100, &res, &over), EA_OK);
    ASSERT(!res.active);
    ASSERT_EQ(ea_ledger_budget_reserve(l, "summarize", EA_TIER_EDGE_NODE, 100, &res, &over), EA_OK);
    ASSERT_EQ(ea_ledger_budget_reserve(l, "summarize", EA_TIER_CLOUD, 0, &res, &over), EA_OK);
    /* the task's cap, with a reservation outstanding */
    ASSERT_EQ(ea_ledger_budget_reserve(l, "summarize", EA_TIER_CLOUD, 0.3, &res, &over), EA_OK);
    ASSERT(res.active);
    ASSERT_EQ(ea_ledger_budget_reserve(l, "summarize", EA_TIER_CLOUD, 0.3, &res2, &over), EA_EOVERLOADED);
    ASSERT(over.task_budget && over.period == EA_BUDGET_DAILY && over.action == EA_BUDGET_EDGE);
    ASSERT_NEAR(over.cap_usd, 0.5, 0);
    ASSERT_NEAR(over.reserved_usd, 0.3, 1e-12);
    ea_ledger_budget_message(&over, msg, sizeof msg);
    ASSERT_STR_EQ(msg, "daily budget of task 'summarize' (0.50 USD) reached: 0.0000 spent, 0.3000 "
                       "reserved, this request may cost up to 0.3000 USD");
    /* settled below the reservation: the rest is free again */
    ea_ledger_budget_settle(l, &res, 0.1);
    ASSERT(!res.active);
    ASSERT_EQ(ea_ledger_budget_reserve(l, "summarize", EA_TIER_CLOUD, 0.4, &res, &over), EA_OK);
    ea_ledger_budget_settle(l, &res, 0.4);
    ASSERT_NEAR(spent(l, "summarize", EA_BUDGET_DAILY), 0.5, 1e-12);
    /* other tasks meet the global cap (1/day), with the default action */
    ASSERT_EQ(ea_ledger_budget_reserve(l, "chat", EA_TIER_CLOUD, 0.6, &res, &over), EA_EOVERLOADED);
    ASSERT(!over.task_budget && over.period == EA_BUDGET_DAILY && over.action == EA_BUDGET_REJECT);
    ea_ledger_budget_message(&over, msg, sizeof msg);
    ASSERT_STR_EQ(msg, "global daily budget (1.00 USD) reached: 0.5000 spent, 0.0000 reserved, this "
                       "request may cost up to 0.6000 USD");
    ASSERT_EQ(ea_ledger_budget_reserve(l, "chat", EA_TIER_CLOUD, 0.5, &res, &over), EA_OK);
    ea_ledger_budget_settle(l, &res, 0.5);
    /* the next UTC day, at midnight: the daily caps start over */
    fake_now = (1800000000000LL / 86400000 + 1) * 86400000LL;
    ASSERT_EQ(ea_ledger_budget_reserve(l, "chat", EA_TIER_CLOUD, 1, &res, &over), EA_OK);
    ea_ledger_budget_settle(l, &res, 1);
    fake_now += 86400000;
    ASSERT_EQ(ea_ledger_budget_reserve(l, "chat", EA_TIER_CLOUD, 0.5, &res, &over), EA_OK);
    ea_ledger_budget_settle(l, &res, 0.5);
    /* the month now holds 2.5 of 3 */
    ASSERT_NEAR(spent(l, "", EA_BUDGET_MONTHLY), 2.5, 1e-12);
    ASSERT_EQ(ea_ledger_budget_reserve(l, "chat", EA_TIER_CLOUD, 0.6, &res, &over), EA_EOVERLOADED);
    ASSERT(over.period == EA_BUDGET_DAILY); /* daily is checked first: 0.5 + 0.6 > 1 */
    fake_now += 86400000;
    ASSERT_EQ(ea_ledger_budget_reserve(l, "chat", EA_TIER_CLOUD, 0.6, &res, &over), EA_EOVERLOADED);
    ASSERT(over.period == EA_BUDGET_MONTHLY);
    /* 2027-02-01T00:00:00Z: a new month */
    fake_now = 1801440000000LL;
    ASSERT_EQ(ea_ledger_budget_reserve(l, "chat", EA_TIER_CLOUD, 0.6, &res, &over), EA_OK);
    ea_ledger_budget_settle(l, &res, 0.6);
    ASSERT_NEAR(spent(l, "", EA_BUDGET_MONTHLY), 0.6, 1e-12);
    ea_ledger_close(l);
    ea_ledger_config_release(&c);
}

/* Spend is summed back from the rows at open: this day's and this month's,
 * cloud rows only, per task. */
static void budget_restart(void)
{
    const char *dir = fresh_dir("budgetrestart");
    struct ea_ledger_config c;
    cfg_ok("ledger:\n  budgets:\n    daily: 1\n    monthly: 10\n    tasks:\n"
                         "      summarize: {daily: 0.5}\n",
                         &c);
    fake_now = 1800000000000LL; /* 2027-01-15 */
    ea_ledger *l = open_clocked(dir, &c);
    struct ea_error e = {0};
    struct { int64_t t; enum ea_upstream_tier tier; const char *task; uint32_t mtok_in; } rows[] = {
        {1800000000000LL - 86400000LL * 20, EA_TIER_CLOUD, "chat", 3},  /* December: neither */
        {1800000000000LL - 86400000LL * 3, EA_TIER_CLOUD, "chat", 2},   /* this month */
        {1800000000000LL - 1000, EA_TIER_CLOUD, "summarize", 1},          /* today */
        {1800000000000LL - 500, EA_TIER_DEVICE, "summarize", 5},          /* edge: not spend */
        {1800000000000LL - 100, EA_TIER_EDGE_NODE, "chat", 5},            /* edge: not spend */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct ea_ledger_row r;
        ea_ledger_row_init(&r);
        r.time_ms = rows[i].t;
        r.tier = rows[i].tier;
        snprintf(r.task, sizeof r.task, "%s", rows[i].task);
        r.price = (struct ea_upstream_price){0.1, 1};
        r.prompt_tokens = rows[i].mtok_in * 1000000u; /* 0.1 USD per million */
        ASSERT_OK(ea_ledger_record(l, &r, &e), &e);
    }
    ea_ledger_close(l); /* commits the queue */
    l = open_clocked(dir, &c);
    ASSERT_NEAR(spent(l, "", EA_BUDGET_DAILY), 0.1, 1e-12);
    ASSERT_NEAR(spent(l, "", EA_BUDGET_MONTHLY), 0.3, 1e-12);
    ASSERT_NEAR(spent(l, "summarize", EA_BUDGET_DAILY), 0.1, 1e-12);
    struct ea_ledger_reservation res;
    struct ea_ledger_budget_over over;
    ASSERT_EQ(ea_ledger_budget_reserve(l, "summarize", EA_TIER_CLOUD, 0.41, &res, &over), EA_EOVERLOADED);
    ASSERT_NEAR(over.spent_usd, 0.1, 1e-12);
    ASSERT_EQ(ea_ledger_budget_reserve(l, "summarize", EA_TIER_CLOUD, 0.4, &res, &over), EA_OK);
    ea_ledger_budget_settle(l, &res, 0.4);
    /* a row for that spend, as the server writes it; then restart again */
    struct ea_ledger_row r;
    ea_ledger_row_init(&r);
    r.time_ms = fake_now;
    r.tier = EA_TIER_CLOUD;
    snprintf(r.task, sizeof r.task, "summarize");
    r.price = (struct ea_upstream_price){0.1, 1};
    r.prompt_tokens = 4000000;
    ASSERT_OK(ea_ledger_record(l, &r, &e), &e);
    ea_ledger_close(l);
    l = open_clocked(dir, &c);
    ASSERT_NEAR(spent(l, "summarize", EA_BUDGET_DAILY), 0.5, 1e-12);
    ASSERT_EQ(ea_ledger_budget_reserve(l, "summarize", EA_TIER_CLOUD, 0.01, &res, &over), EA_EOVERLOADED);
    ea_ledger_close(l);
    ea_ledger_config_release(&c);
}

/* ---- unusable directories -------------------------------------------------------- */

/* Runs fn in a child (as nobody when we are root, so that permissions
 * apply); returns its exit status; its stdout goes to out. */
static int in_child(void (*fn)(const char *arg, int fd), const char *arg, bool drop_root, char *out,
                    size_t size)
{
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (drop_root && geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(99);
        fn(arg, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    size_t o = 0;
    ssize_t n;
    while (o + 1 < size && (n = read(fds[0], out + o, size - 1 - o)) > 0)
        o += (size_t)n;
    out[o] = '\0';
    close(fds[0]);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static void try_open(const char *dir, int fd)
{
    ea_ledger *l = NULL;
    struct ea_error e = {0};
    ea_status s = ea_ledger_open(dir, NULL, &l, &e);
    dprintf(fd, "%s %s", ea_status_name(s), e.msg);
    ea_ledger_close(l);
    _exit(s == EA_OK ? 0 : 1);
}

static void bad_dirs(void)
{
    char tmpl[] = "/tmp/ea-ledger-ro-XXXXXX";
    ASSERT(mkdtemp(tmpl));
    char ro[4200], sub[4300], out[2048];
    snprintf(ro, sizeof ro, "%s/ro", tmpl);
    ASSERT_EQ(mkdir(ro, 0555), 0);
    ASSERT_EQ(chmod(tmpl, 0755), 0);
    ASSERT_EQ(chmod(ro, 0555), 0);
    /* a read-only directory: no ledger.db can be made there */
    ASSERT_EQ(in_child(try_open, ro, true, out, sizeof out), 1);
    if (!strstr(out, ro) || !strstr(out, "writable"))
        FAIL("unclear error for a read-only directory: %s", out);
    /* a missing directory under a read-only one: cannot be created */
    snprintf(sub, sizeof sub, "%s/deeper/still", ro);
    ASSERT_EQ(in_child(try_open, sub, true, out, sizeof out), 1);
    if (!strstr(out, "cannot create the data directory") || !strstr(out, "Permission denied"))
        FAIL("unclear error for an uncreatable directory: %s", out);
    /* a read-only ledger.db in a writable directory */
    char rw[4200], db[4300];
    snprintf(rw, sizeof rw, "%s/rw", tmpl);
    ASSERT_EQ(mkdir(rw, 0777), 0);
    ASSERT_EQ(chmod(rw, 0777), 0);
    ASSERT_EQ(in_child(try_open, rw, true, out, sizeof out), 0); /* creates it, as nobody */
    snprintf(db, sizeof db, "%s/ledger.db", rw);
    ASSERT_EQ(chmod(db, 0444), 0);
    ASSERT_EQ(chmod(rw, 0555), 0);
    ASSERT_EQ(in_child(try_open, rw, true, out, sizeof out), 1);
    if (!strstr(out, "ledger.db") || !strstr(out, "writable"))
        FAIL("unclear error for a read-only ledger.db: %s", out);
    /* a file where the directory should be */
    char file[4300];
    snprintf(file, sizeof file, "%s/afile", tmpl);
    FILE *f = fopen(file, "w");
    ASSERT(f);
    fputs("x", f);
    fclose(f);
    ASSERT_EQ(in_child(try_open, file, false, out, sizeof out), 1);
    if (!strstr(out, "is not a directory"))
        FAIL("unclear error for a file as directory: %s", out);
    /* an SQLite file that is not a ledger is left alone */
    char other[4300], odb[4400];
    snprintf(other, sizeof other, "%s/other", tmpl);
    ASSERT_EQ(mkdir(other, 0755), 0);
    snprintf(odb, sizeof odb, "%s/ledger.db", other);
    sqlite3 *h = NULL;
    ASSERT_EQ(sqlite3_open(odb, &h), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h, "CREATE TABLE notes(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    ASSERT_EQ(in_child(try_open, other, false, out, sizeof out), 1);
    if (!strstr(out, "EFORMAT") || !strstr(out, "not an edgeagent ledger"))
        FAIL("unclear error for a foreign database: %s", out);
    /* garbage in ledger.db */
    f = fopen(odb, "w");
    ASSERT(f);
    for (int i = 0; i < 1000; i++)
        fputs("not a database at all ", f);
    fclose(f);
    ASSERT_EQ(in_child(try_open, other, false, out, sizeof out), 1);
    if (!strstr(out, "EFORMAT"))
        FAIL("unclear error for a garbage file: %s", out);
    /* a read-only open of a missing ledger */
    ea_ledger *l = NULL;
    struct ea_error e = {0};
    struct ea_ledger_options o = {.read_only = true};
    ASSERT_EQ(ea_ledger_open(tmpl, &o, &l, &e), EA_ENOTFOUND);
    ASSERT(strstr(e.msg, "ledger.db") && strstr(e.msg, "No such file"));
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' && rm -rf '%s'", tmpl, tmpl);
    ASSERT_EQ(system(cmd), 0);
}

/* A full disk at run time: writes fail, are counted with the reason, and
 * nothing crashes or stalls; the file stays sound. RLIMIT_FSIZE makes the
 * kernel refuse to grow files past a size, as a full file system would. */
static void write_until_full(const char *dir, int fd)
{
    signal(SIGXFSZ, SIG_IGN);
    ea_ledger *l = NULL;
    struct ea_error e = {0};
    if (ea_ledger_open(dir, NULL, &l, &e)) {
        dprintf(fd, "open failed: %s", e.msg);
        _exit(2);
    }
    struct rlimit rl = {256 * 1024, 256 * 1024};
    setrlimit(RLIMIT_FSIZE, &rl);
    for (int i = 0; i < 20000; i++) {
        struct ea_ledger_row r;
        fill_row(&r, i);
        while (ea_ledger_record(l, &r, &e) == EA_EOVERLOADED)
            usleep(1000);
    }
    ea_ledger_flush(l, 60000);
    struct ea_ledger_stats st;
    ea_ledger_stats(l, &st);
    dprintf(fd, "%llu %llu %s", (unsigned long long)st.written, (unsigned long long)st.failed,
            st.last_error);
    ea_ledger_close(l);
    _exit(0);
}

static void disk_full(void)
{
    const char *dir = fresh_dir("full");
    char d[4200], out[2048];
    snprintf(d, sizeof d, "%s", dir);
    ASSERT_EQ(in_child(write_until_full, d, false, out, sizeof out), 0);
    unsigned long long written = 0, failed = 0;
    int used = 0;
    if (sscanf(out, "%llu %llu %n", &written, &failed, &used) != 2)
        FAIL("child said: %s", out);
    ASSERT(written > 0);
    ASSERT(failed > 0);
    ASSERT_U64_EQ(written + failed, 20000);
    if (!strstr(out + used, "ledger.db") || !strstr(out + used, "writing"))
        FAIL("unclear write error: %s", out + used);
    sqlite3 *db = open_raw(d);
    char *ok = sql_text(db, "PRAGMA integrity_check");
    ASSERT_STR_EQ(ok, "ok");
    free(ok);
    ASSERT_NEAR(sql_double(db, "SELECT COUNT(*) FROM requests"), (double)written, 0);
    sqlite3_close(db);
}

/* ---- kill -9 ----------------------------------------------------------------- */

/* The child records rows 0, 1, 2, ... (prompt_tokens = i, never dropped:
 * it waits when the queue is full) and reports how many are committed. */
static void write_forever(const char *dir, int fd)
{
    ea_ledger *l = NULL;
    struct ea_error e = {0};
    if (ea_ledger_open(dir, NULL, &l, &e))
        _exit(2);
    uint64_t last = 0;
    for (uint32_t i = 0;; i++) {
        struct ea_ledger_row r;
        fill_row(&r, (int)(i % 1000));
        r.prompt_tokens = i;
        while (ea_ledger_record(l, &r, &e) == EA_EOVERLOADED)
            usleep(200);
        struct ea_ledger_stats st;
        ea_ledger_stats(l, &st);
        if (st.written != last) {
            last = st.written;
            dprintf(fd, "%llu\n", (unsigned long long)last);
        }
    }
}

static void kill9_durability(void)
{
    const char *dir = fresh_dir("kill9");
    char d[4200];
    snprintf(d, sizeof d, "%s", dir);
    for (int round = 0; round < 3; round++) {
        int fds[2];
        ASSERT_EQ(pipe(fds), 0);
        pid_t pid = fork();
        ASSERT(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            write_forever(d, fds[1]);
        }
        close(fds[1]);
        FILE *f = fdopen(fds[0], "r");
        unsigned long long reported = 0, v;
        /* let it commit a while, then kill it mid-stream */
        unsigned long long target = 3000 + 2500ull * (unsigned)round;
        while (reported < target && fscanf(f, "%llu", &v) == 1)
            reported = v;
        kill(pid, SIGKILL);
        /* lines already in the pipe were reported before the kill */
        while (fscanf(f, "%llu", &v) == 1)
            reported = v;
        fclose(f);
        int st;
        waitpid(pid, &st, 0);
        ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        ASSERT(reported >= target);

        sqlite3 *db = open_raw(d);
        char *ok = sql_text(db, "PRAGMA integrity_check");
        ASSERT_STR_EQ(ok, "ok");
        free(ok);
        /* each round's rows are 0..n-1 in prompt_tokens: every reported one
         * is there, once */
        char sql[256];
        /* each round's rows start at its row with prompt_tokens 0: every
         * reported one is there, once */
        snprintf(sql, sizeof sql, "SELECT COUNT(*), COUNT(DISTINCT prompt_tokens), MAX(prompt_tokens) "
                 "FROM requests WHERE id >= (SELECT MAX(id) FROM requests WHERE prompt_tokens = 0) "
                 "AND prompt_tokens < %llu", reported);
        sqlite3_stmt *q = NULL;
        ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
        ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
        ASSERT_U64_EQ(sqlite3_column_int64(q, 0), reported);
        ASSERT_U64_EQ(sqlite3_column_int64(q, 1), reported);
        ASSERT_U64_EQ(sqlite3_column_int64(q, 2), reported - 1);
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
}

/* The journal: rows in it only (the writer would commit them an hour
 * later) survive the process being killed; the next open commits each one
 * exactly once, not the ones committed before the kill again, and skips
 * (and counts) a cut record at the end of a file. One writer per
 * directory: a second open is refused while the first is open. */
static void journal_replay(void)
{
    const char *dir = fresh_dir("journal");
    char d[4200];
    snprintf(d, sizeof d, "%s", dir);
    enum { N = 50, COMMITTED = 20 };
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        struct ea_ledger_options o = {.commit_interval_ms = 3600000};
        ea_ledger *l = NULL;
        struct ea_error e = {0};
        if (ea_ledger_open(d, &o, &l, &e))
            _exit(2);
        for (int i = 0; i < N; i++) {
            struct ea_ledger_row r;
            fill_row(&r, i);
            bool durable = false;
            if (ea_ledger_record_notify(l, &r, NULL, NULL, &durable, &e) || !durable)
                _exit(3);
            if (i == COMMITTED - 1 && ea_ledger_flush(l, 10000))
                _exit(4);
        }
        raise(SIGKILL);
        _exit(5);
    }
    int st;
    waitpid(pid, &st, 0);
    ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    sqlite3 *db = open_raw(d);
    ASSERT_EQ((int)sql_double(db, "SELECT count(*) FROM requests"), COMMITTED);
    sqlite3_close(db);

    /* a record the process did not finish writing */
    char path[4300];
    snprintf(path, sizeof path, "%s/ledger.journal.0", d);
    FILE *f = fopen(path, "ab");
    ASSERT(f);
    fwrite("EAJ1\x10\x02", 1, 6, f);
    fclose(f);

    ea_ledger *l = NULL, *other = NULL;
    struct ea_error e = {0};
    ASSERT_OK(ea_ledger_open(d, NULL, &l, &e), &e);
    struct ea_ledger_stats s;
    ea_ledger_stats(l, &s);
    printf("    replayed %llu rows, %llu cut file(s)\n", (unsigned long long)s.replayed,
           (unsigned long long)s.journal_unreadable);
    ASSERT_U64_EQ(s.replayed, N - COMMITTED);
    ASSERT_U64_EQ(s.journal_unreadable, 1);
    ASSERT_EQ(ea_ledger_open(d, NULL, &other, &e), EA_ESTATE);
    ASSERT(strstr(e.msg, "another process is writing this ledger"));
    ea_ledger_close(l);

    db = open_raw(d);
    ASSERT_EQ((int)sql_double(db, "SELECT count(*) FROM requests"), N);
    ASSERT_EQ((int)sql_double(db, "SELECT count(DISTINCT prompt_tokens) FROM requests"), N);
    sqlite3_close(db);
    /* nothing twice: the journal was emptied */
    ASSERT_OK(ea_ledger_open(d, NULL, &l, &e), &e);
    ea_ledger_stats(l, &s);
    ASSERT_U64_EQ(s.replayed, 0);
    ea_ledger_close(l);
    db = open_raw(d);
    ASSERT_EQ((int)sql_double(db, "SELECT count(*) FROM requests"), N);
    sqlite3_close(db);
}

/* ---- summary sync ---------------------------------------------------------------- */

static pid_t stub_pid = -1;

static void stop_stub(void)
{
    if (stub_pid > 0) {
        kill(stub_pid, SIGTERM);
        waitpid(stub_pid, NULL, 0);
        stub_pid = -1;
    }
}

/* Starts tests/node/sync_stub.mjs; returns its port. */
static int start_stub(const char *log, const char *plan)
{
    if (system("node --version >/dev/null 2>&1") != 0)
        SKIP("node not found: the summary collector stub needs it");
    char script[4096];
    const char *src = getenv("EA_SOURCE_DIR");
    snprintf(script, sizeof script, "%s/tests/node/sync_stub.mjs", src ? src : ".");
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    stub_pid = fork();
    ASSERT(stub_pid >= 0);
    if (stub_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("node", "node", script, log, plan, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[64] = "";
    size_t o = 0;
    while (o < sizeof line - 1 && read(fds[0], line + o, 1) == 1 && line[o] != '\n')
        o++;
    line[o] = '\0';
    close(fds[0]);
    int port = 0;
    if (sscanf(line, "PORT %d", &port) != 1 || port <= 0) {
        stop_stub();
        FAIL("sync stub did not start (said '%s')", line);
    }
    atexit(stop_stub);
    return port;
}

/* What the collector kept: the sum of requests over kept summaries, after
 * checking the log (kept seqs in order without gaps, each key kept once). */
struct stub_view {
    uint64_t kept_requests, kept, dups, errors;
};

static struct stub_view read_stub_log(const char *log)
{
    struct stub_view v = {0};
    char *text = ea_test_read_file(log, NULL);
    if (!text)
        return v;
    long long last_seq = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *e = json_loads(line, 0, &je);
        ASSERT(e);
        int status = (int)json_integer_value(json_object_get(e, "status"));
        bool dup = json_is_true(json_object_get(e, "dup"));
        long long seq = json_integer_value(json_object_get(e, "seq"));
        ASSERT(status == 200 || status == 500);
        if (status == 500) {
            v.errors++;
        } else if (dup) {
            v.dups++;
            ASSERT(seq <= last_seq); /* a repeat of one already kept */
        } else {
            /* in order, none skipped: the next kept one is the next seq */
            if (last_seq)
                ASSERT_EQ(seq, last_seq + 1);
            last_seq = seq;
            v.kept++;
            v.kept_requests += (uint64_t)json_integer_value(json_object_get(e, "requests"));
        }
        json_decref(e);
    }
    free(text);
    return v;
}

static void record_burst(ea_ledger *l, int n, int from)
{
    struct ea_error e = {0};
    for (int i = 0; i < n; i++) {
        struct ea_ledger_row r;
        fill_row(&r, from + i);
        r.time_ms = 0;
        ASSERT_OK(ea_ledger_record(l, &r, &e), &e);
    }
}

/* The collector fails twice, then keeps a summary but answers too late (the
 * client times out and retries the same key), then works; the ledger is
 * closed and reopened in the middle. Every summary is kept exactly once, in
 * order, and together they count every row. */
static void sync_exactly_once(void)
{
    const char *dir = fresh_dir("sync");
    char d[4200], log[4300];
    snprintf(d, sizeof d, "%s", dir);
    snprintf(log, sizeof log, "%s.log", d);
    unlink(log);
    int port = start_stub(log, "500,500,hang");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/summaries", port);
    struct ea_ledger_sync_options so = {.endpoint = url, .api_key = "k-secret", .interval_ms = 300,
                                        .timeout_ms = 600, .retry_ms = 100};
    struct ea_error e = {0};
    int total = 0;
    for (int life = 0; life < 2; life++) {
        ea_ledger *l = open_ledger(d, NULL);
        ASSERT_OK(ea_ledger_sync_start(l, &so, &e), &e);
        ASSERT_EQ(ea_ledger_sync_start(l, &so, &e), EA_ESTATE);
        for (int burst = 0; burst < 3; burst++) {
            record_burst(l, 50 + 10 * burst, total);
            total += 50 + 10 * burst;
            usleep(400000);
        }
        if (life == 0) {
            /* on a loaded machine the first summary may come late: wait for
             * the two 500s before closing in the middle of the retries */
            for (int t = 0; t < 100; t++) {
                struct ea_ledger_sync_stats st;
                ea_ledger_sync_stats(l, &st);
                if (st.failures >= 2)
                    break;
                usleep(100000);
            }
        }
        if (life == 1) {
            /* wait for the collector to have everything */
            for (int t = 0; t < 200; t++) {
                struct ea_ledger_sync_stats st;
                ea_ledger_sync_stats(l, &st);
                if (read_stub_log(log).kept_requests == (uint64_t)total && st.waiting == 0)
                    break;
                usleep(100000);
            }
        }
        struct ea_ledger_sync_stats st;
        ea_ledger_sync_stats(l, &st);
        ASSERT(st.made >= 1);
        if (life == 0)
            ASSERT(st.failures >= 2); /* the two 500s (the time-out may still be running) */
        ea_ledger_close(l);
    }
    struct stub_view v = read_stub_log(log);
    ASSERT_U64_EQ(v.kept_requests, (uint64_t)total);
    ASSERT(v.kept >= 4);
    ASSERT_U64_EQ(v.errors, 2);
    ASSERT(v.dups >= 1);
    sqlite3 *db = open_raw(d);
    ASSERT_NEAR(sql_double(db, "SELECT COUNT(*) FROM sync_outbox"), 0, 0);
    ASSERT_NEAR(sql_double(db, "SELECT value FROM sync_state WHERE key = 'cursor_id'"),
                sql_double(db, "SELECT MAX(id) FROM requests"), 0);
    sqlite3_close(db);
    stop_stub();
}

/* ---- the CLI ------------------------------------------------------------------ */

static void cli_report(void)
{
    const char *dir = fresh_dir("cli");
    char d[4200];
    snprintf(d, sizeof d, "%s", dir);
    struct ea_ledger_config c;
    ea_ledger_config_init(&c);
    c.has_reference = true;
    c.reference_price = (struct ea_upstream_price){2.5, 10};
    ea_ledger *l = open_ledger(d, &c);
    struct ea_error e = {0};
    for (int i = 0; i < 90; i++) {
        struct ea_ledger_row r;
        fill_row(&r, i);
        r.time_ms = 0; /* now: inside --since 24h */
        ASSERT_OK(ea_ledger_record(l, &r, &e), &e);
    }
    ASSERT_OK(ea_ledger_flush(l, 10000), &e);
    struct ea_ledger_report *rep = NULL;
    ASSERT_OK(ea_ledger_report(l, 0, 0, EA_LEDGER_BY_TASK, &rep, &e), &e);
    ea_ledger_close(l);

    char cmd[8192], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' report --data-dir '%s' --by task --json", ea_test_binary(), d);
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 0);
    json_error_t je;
    json_t *root = json_loads(out, 0, &je);
    if (!root)
        FAIL("report --json: %s in %s", je.text, out);
    json_t *t = json_object_get(root, "total");
    ASSERT_EQ(json_integer_value(json_object_get(t, "requests")), 90);
    /* the CLI's window (the last 24 h) sums whole minutes from the rollup
     * and the edges from the rows: the same figure up to rounding */
    ASSERT_NEAR(json_real_value(json_object_get(t, "savings_usd")), rep->total.savings_usd,
                1e-12 * rep->total.counterfactual_usd);
    ASSERT_EQ(json_array_size(json_object_get(root, "groups")), 2);
    json_decref(root);
    free(out);
    free(err);
    ea_ledger_report_destroy(rep);

    snprintf(cmd, sizeof cmd, "'%s' report --data-dir '%s'", ea_test_binary(), d);
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 0);
    ASSERT(strstr(out, "requests:  90 (edge 60, cloud 30"));
    ASSERT(strstr(out, "savings:"));
    ASSERT(strstr(out, "\ncloud ") && strstr(out, "\ndevice ") && strstr(out, "\nedge-node "));
    free(out);
    free(err);

    /* a window before every row */
    snprintf(cmd, sizeof cmd, "'%s' report --data-dir '%s' --since 1s --json", ea_test_binary(), d);
    sleep(2);
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 0);
    ASSERT(strstr(out, "\"requests\":0,"));
    free(out);
    free(err);

    snprintf(cmd, sizeof cmd, "'%s' report --data-dir '%s' --since 5y", ea_test_binary(), d);
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 2);
    ASSERT(strstr(err, "--since"));
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' report --data-dir '%s/none'", ea_test_binary(), d);
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 1);
    ASSERT(strstr(err, "ledger.db") && strstr(err, "No such file"));
    free(out);
    free(err);
    /* ledger.data_dir of --config; a bad section is refused with its position */
    char parent[4300], conf[4400];
    snprintf(parent, sizeof parent, "%s/xdg", d);
    snprintf(conf, sizeof conf, "%s/edgeagent.yaml", parent);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && printf 'ledger:\\n  data_dir: %s\\n' > '%s' && "
             "'%s' report --config '%s' --by upstream --json", parent, d, conf, ea_test_binary(), conf);
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 0);
    ASSERT(strstr(out, "\"requests\":90,") && strstr(out, "\"by\":\"upstream\""));
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "printf 'ledger:\\n  data_dri: x\\n' > '%s' && '%s' report --config '%s'",
             conf, ea_test_binary(), conf);
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 1);
    if (!strstr(err, "edgeagent.yaml:2:3: ledger.data_dri: unknown key"))
        FAIL("report --config with a bad key said: %s", err);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' report --by model", ea_test_binary());
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 2);
    ASSERT(strstr(err, "--by takes source, task or upstream"));
    free(out);
    free(err);
    /* the default directory comes from XDG_DATA_HOME */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/edgeagent' && cp '%s/ledger.db' '%s/edgeagent/' && "
             "XDG_DATA_HOME='%s' '%s' report --json", parent, d, parent, parent, ea_test_binary());
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 0);
    ASSERT(strstr(out, "\"requests\":90,"));
    free(out);
    free(err);
}

/* A version 1 file (no request_id column) is upgraded when opened for
 * writing: its rows stay, new rows carry their id. */
static void schema_upgrade_v1(void)
{
    const char *dir = fresh_dir("upgrade");
    char d[4200];
    snprintf(d, sizeof d, "%s", dir);
    struct ea_ledger_config c;
    ea_ledger_config_init(&c);
    ea_ledger *l = open_ledger(d, &c);
    struct ea_error e = {0};
    struct ea_ledger_row r;
    fill_row(&r, 1);
    ASSERT_OK(ea_ledger_record(l, &r, &e), &e);
    ASSERT_OK(ea_ledger_flush(l, 10000), &e);
    ea_ledger_close(l);
    char path[4300];
    snprintf(path, sizeof path, "%s/ledger.db", d);
    sqlite3 *db = NULL;
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "ALTER TABLE requests DROP COLUMN request_id; PRAGMA user_version=1", NULL, NULL, NULL),
              SQLITE_OK);
    sqlite3_close(db);
    l = open_ledger(d, &c);
    fill_row(&r, 2);
    snprintf(r.request_id, sizeof r.request_id, "chatcmpl-upgraded");
    ASSERT_OK(ea_ledger_record(l, &r, &e), &e);
    ASSERT_OK(ea_ledger_flush(l, 10000), &e);
    ea_ledger_close(l);
    ASSERT_EQ(sqlite3_open(path, &db), SQLITE_OK);
    char *v = sql_text(db, "SELECT group_concat(quote(request_id), ',') FROM requests ORDER BY id");
    ASSERT_STR_EQ(v, "'','chatcmpl-upgraded'");
    free(v);
    v = sql_text(db, "PRAGMA user_version");
    ASSERT_STR_EQ(v, "2");
    free(v);
    sqlite3_close(db);
}

EA_TESTS(EA_TEST(config_full), EA_TEST(schema_upgrade_v1), EA_TEST(config_errors), EA_TEST(parse_since_names), EA_TEST(pricing), EA_TEST(rows_roundtrip),
         EA_TEST(rows_refused), EA_TEST(savings_by_hand), EA_TEST(report_window_exact), EA_TEST(series_points), EA_TEST(series_second_buckets), EA_TEST(series_minute_buckets), EA_TEST(state_json_budgets), EA_TEST(quantiles_match_sort),
         EA_TEST(queue_full_drops), EA_TEST(writer_waits_out_a_lock), EA_TEST(budget_fifty_threads), EA_TEST(budget_rules),
         EA_TEST(budget_restart), EA_TEST(bad_dirs), EA_TEST(disk_full), EA_TEST(kill9_durability), EA_TEST(journal_replay), EA_TEST(sync_exactly_once),
         EA_TEST(cli_report))
