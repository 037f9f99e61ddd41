/* ledger_api.c - the ledger seen over HTTP: GET /v1/edgeagent/stats
 * (?since=24h&by=source|task|upstream, the same report as `edgeagent
 * report --json`), GET /v1/edgeagent/stats/series (?since=15m&step=15s,
 * figures over time for the dashboard), GET /v1/edgeagent/ledger (whether
 * there is a ledger, its row counters and budget states: 200 either way,
 * so the dashboard can ask without an error) and the ledger's /metrics
 * series (rows written, dropped, failed; budget caps, spend and
 * reservations). Rows are written by the relay (relay.c, ea__relay_account)
 * when a request ends. The handlers only parse parameters and answer: the
 * queries and their JSON are the ledger's (src/ledger/report.c).
 * Does not hold: the ledger itself (src/ledger/), routing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "edgeagent/ledger.h"
#include "server/server_int.h"

#define EA__BUDGET_STATES_MAX 64 /* caps listed in /metrics (global and per task, two periods) */

static int no_ledger(struct ea__req_ctx *c, struct MHD_Connection *conn)
{
    return ea__respond_errorf(c, conn, 503, "server_error", "no_ledger", NULL,
                              "this server runs without a ledger (see serve --data-dir)");
}

/* Rows are committed every ~100 ms (their journal makes them durable at
 * once): a report first asks for the ones recorded before it, waiting at
 * most this long (ms). */
#define LEDGER_READ_FLUSH_MS 2000

int ea__handle_stats(struct ea__req_ctx *c, struct MHD_Connection *conn)
{
    ea_ledger *l = c->srv->p.ledger;
    if (!l)
        return no_ledger(c, conn);
    const char *since = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
    const char *by = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "by");
    int64_t window = 24 * 3600 * 1000LL;
    if (since && ea_ledger_parse_since(since, &window))
        return ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL, "since",
                                  "'since' must be N followed by s, m, h, d or w, or all");
    enum ea_ledger_group_by g = EA_LEDGER_BY_SOURCE;
    if (by && ea_ledger_group_by_parse(by, &g))
        return ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL, "by",
                                  "'by' must be source, task or upstream");
    ea_ledger_flush(l, LEDGER_READ_FLUSH_MS); /* every request answered so far counts */
    int64_t now = (int64_t)time(NULL) * 1000;
    struct ea_ledger_report *r = NULL;
    struct ea_error err = {0};
    char *json = NULL;
    if (ea_ledger_report(l, window < 0 ? 0 : now - window, 0, g, &r, &err) ||
        ea_ledger_report_json(r, &json, &err)) {
        ea_ledger_report_destroy(r);
        ea__server_log(c->srv, "stats: %s", err.msg);
        return ea__respond_errorf(c, conn, 500, "server_error", NULL, NULL, "the report failed: %s",
                                  err.msg);
    }
    ea_ledger_report_destroy(r);
    int ret = ea__respond_json(c, conn, 200, json, strlen(json));
    ea_free(json);
    return ret;
}

#define EA__SERIES_DEFAULT_SINCE_MS (3600 * 1000LL) /* an hour */
#define EA__SERIES_DEFAULT_STEP_MS (60 * 1000LL)    /* a minute */

int ea__handle_series(struct ea__req_ctx *c, struct MHD_Connection *conn)
{
    ea_ledger *l = c->srv->p.ledger;
    if (!l)
        return no_ledger(c, conn);
    const char *since = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
    const char *step = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "step");
    int64_t window = EA__SERIES_DEFAULT_SINCE_MS, step_ms = EA__SERIES_DEFAULT_STEP_MS;
    if (since && ea_ledger_parse_since(since, &window))
        return ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL, "since",
                                  "'since' must be N followed by s, m, h, d or w, or all");
    if (step && (ea_ledger_parse_since(step, &step_ms) || step_ms < 0))
        return ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL, "step",
                                  "'step' must be N followed by s, m, h, d or w");
    ea_ledger_flush(l, LEDGER_READ_FLUSH_MS);
    int64_t now = (int64_t)time(NULL) * 1000;
    struct ea_error err = {0};
    char *json = NULL;
    ea_status s = ea_ledger_series_json(l, window < 0 ? 0 : now - window, now, step_ms, &json, &err);
    if (s == EA_EINVAL)
        return ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL, "step", "%s", err.msg);
    if (s) {
        ea__server_log(c->srv, "stats series: %s", err.msg);
        return ea__respond_errorf(c, conn, 500, "server_error", NULL, NULL, "the series failed: %s",
                                  err.msg);
    }
    int ret = ea__respond_json(c, conn, 200, json, strlen(json));
    ea_free(json);
    return ret;
}

int ea__handle_ledger(struct ea__req_ctx *c, struct MHD_Connection *conn)
{
    ea_ledger *l = c->srv->p.ledger;
    if (!l) {
        static const char off[] = "{\"enabled\":false}";
        return ea__respond_json(c, conn, 200, off, sizeof off - 1);
    }
    struct ea_error err = {0};
    char *json = NULL;
    if (ea_ledger_state_json(l, &json, &err))
        return ea__respond_errorf(c, conn, 500, "server_error", NULL, NULL, "%s", err.msg);
    int ret = ea__respond_json(c, conn, 200, json, strlen(json));
    ea_free(json);
    return ret;
}

ea_status ea__ledger_metrics(ea_server *s, struct ea_buf *o)
{
    ea_ledger *l = s->p.ledger;
    if (!l)
        return EA_OK;
    struct ea_ledger_stats st;
    ea_ledger_stats(l, &st);
    ea_status e = ea__buf_printf(
        o,
        "# HELP edgeagent_ledger_rows_total Ledger rows by fate (written; dropped: the writer's "
        "queue was full; failed: a write error; rejected: a malformed row).\n"
        "# TYPE edgeagent_ledger_rows_total counter\n"
        "edgeagent_ledger_rows_total{fate=\"written\"} %" PRIu64 "\n"
        "edgeagent_ledger_rows_total{fate=\"dropped\"} %" PRIu64 "\n"
        "edgeagent_ledger_rows_total{fate=\"failed\"} %" PRIu64 "\n"
        "edgeagent_ledger_rows_total{fate=\"rejected\"} %" PRIu64 "\n"
        "# HELP edgeagent_ledger_queue_rows Rows waiting for the ledger's writer.\n"
        "# TYPE edgeagent_ledger_queue_rows gauge\nedgeagent_ledger_queue_rows %" PRIu64 "\n",
        st.written, st.dropped, st.failed, st.rejected, st.queued);
    struct ea_ledger_budget_state bs[EA__BUDGET_STATES_MAX];
    size_t n = ea_ledger_budget_states(l, bs, EA__BUDGET_STATES_MAX);
    if (n > EA__BUDGET_STATES_MAX)
        n = EA__BUDGET_STATES_MAX;
    static const char *const what[] = {"cap", "spent", "reserved"};
    for (int k = 0; k < 3 && !e && n; k++) {
        e = ea__buf_printf(o, "# HELP edgeagent_budget_%s_usd Cloud budget %s, per cap.\n"
                              "# TYPE edgeagent_budget_%s_usd gauge\n",
                           what[k], what[k], what[k]);
        for (size_t i = 0; i < n && !e; i++)
            e = ea__buf_printf(o, "edgeagent_budget_%s_usd{task=\"%s\",period=\"%s\"} %.9g\n", what[k],
                               bs[i].task[0] ? bs[i].task : "*",
                               bs[i].period == EA_BUDGET_DAILY ? "daily" : "monthly",
                               k == 0 ? bs[i].cap_usd : k == 1 ? bs[i].spent_usd : bs[i].reserved_usd);
    }
    return e;
}

#define LEDGER_FAIL_LOG_EVERY_MS 60000

void ea__ledger_check(ea_server *s)
{
    struct ea_ledger_stats st;
    ea_ledger_stats(s->p.ledger, &st);
    uint64_t seen = atomic_load(&s->ledger_failed_seen);
    if (st.failed > seen && atomic_compare_exchange_strong(&s->ledger_failed_seen, &seen, st.failed))
        ea__ledger_write_failed(s);
}

void ea__ledger_write_failed(ea_server *s)
{
    int64_t now = (int64_t)ea__now_ms(), last = atomic_load(&s->ledger_fail_logged_ms);
    if ((last && now - last < LEDGER_FAIL_LOG_EVERY_MS) ||
        !atomic_compare_exchange_strong(&s->ledger_fail_logged_ms, &last, now))
        return;
    struct ea_ledger_stats st;
    ea_ledger_stats(s->p.ledger, &st);
    ea__server_log(s, "ledger: rows are not being written (%" PRIu64 " lost so far, counted in "
                   "edgeagent_ledger_rows_total{fate=\"failed\"}): %s", st.failed, st.last_error);
}
