/* cmd_report.c - `edgeagent report`: the ledger's figures over a time
 * window (requests and latency per source, TTFT, tokens, cloud cost, edge
 * share, fallbacks, savings against the all-cloud reference) as a table, or
 * with --json as the object ea_ledger_report_json writes (the same the
 * server is to serve at /v1/edgeagent/stats).
 * This is where the ledger's default directory is resolved from the
 * environment: --data-dir, else the configuration's ledger.data_dir, else
 * $XDG_DATA_HOME/edgeagent, else ~/.local/share/edgeagent.
 * Does not hold: the scan and the figures (src/ledger/report.c).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

#ifndef EA_HAVE_NET
int cmd_report(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_errorf("report", "this build has no ledger (sqlite3, libyaml, libmicrohttpd or libcurl "
                         "were missing at configure time)");
    return 2;
}
#else
#include "edgeagent/ledger.h"

#define REPORT_PATH_MAX 4096

static void usage(FILE *f)
{
    fprintf(f,
            "usage: edgeagent report [--data-dir D] [--config FILE] [--since 24h|7d|all]\n"
            "                        [--by source|task|upstream] [--json]\n"
            "  --data-dir D    the directory holding ledger.db (default: ledger.data_dir of\n"
            "                  --config, else $XDG_DATA_HOME/edgeagent, else\n"
            "                  ~/.local/share/edgeagent)\n"
            "  --config FILE   edgeagent.yaml, for ledger.data_dir\n"
            "  --since T       the window: the last T (N followed by s, m, h, d or w), or all\n"
            "                  (default 24h)\n"
            "  --by K          one line per source tier (default), task or upstream\n"
            "  --json          the report as one JSON object, USD figures unrounded\n"
            "See docs/LEDGER.md.\n");
}

bool cli_ledger_dir(const char *cmd, const char *opt, const char *from_config, char *out, size_t size)
{
    const char *e;
    int n;
    if (opt && *opt)
        n = snprintf(out, size, "%s", opt);
    else if (from_config && *from_config)
        n = snprintf(out, size, "%s", from_config);
    else if ((e = getenv("XDG_DATA_HOME")) && *e == '/')
        n = snprintf(out, size, "%s/edgeagent", e);
    else if ((e = getenv("HOME")) && *e)
        n = snprintf(out, size, "%s/.local/share/edgeagent", e);
    else {
        cli_errorf(cmd, "no data directory: give --data-dir, or set XDG_DATA_HOME or HOME");
        return false;
    }
    if (n < 0 || (size_t)n >= size) {
        cli_errorf(cmd, "the data directory path is too long");
        return false;
    }
    return true;
}

static void fmt_ms(double v, char *buf, size_t size)
{
    if (isnan(v))
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%.0f", v);
}

static void print_text(const char *path, const struct ea_ledger_report *r, const char *since_text)
{
    const struct ea_ledger_figures *t = &r->total;
    char a[32], b[32], c[32], w0[32], w1[32];
    time_t s0 = (time_t)(r->since_ms / 1000), s1 = (time_t)(r->until_ms / 1000);
    struct tm tm;
    gmtime_r(&s0, &tm);
    strftime(w0, sizeof w0, "%Y-%m-%d %H:%M:%SZ", &tm);
    gmtime_r(&s1, &tm);
    strftime(w1, sizeof w1, "%Y-%m-%d %H:%M:%SZ", &tm);
    printf("ledger:    %s\n", path);
    printf("window:    %s .. %s (%s)\n", r->since_ms > 0 ? w0 : "start", w1, since_text);
    printf("requests:  %s (edge %s, cloud %s; edge share %.1f%%), %" PRIu64 " errors, %" PRIu64
           " estimated\n",
           cli_thousands(t->requests, a, sizeof a), cli_thousands(t->edge_requests, b, sizeof b),
           cli_thousands(t->cloud_requests, c, sizeof c), 100 * t->edge_share, t->errors, t->estimated);
    printf("fallbacks: %" PRIu64 " (in %" PRIu64 " requests), %" PRIu64 " hedges\n", t->fallbacks,
           t->requests_with_fallback, t->hedges);
    printf("tokens:    prompt %s, completion %s, cached prompt %s\n",
           cli_thousands(t->prompt_tokens, a, sizeof a), cli_thousands(t->completion_tokens, b, sizeof b),
           cli_thousands(t->cached_prompt_tokens, c, sizeof c));
    printf("cost:      %.4f USD (cloud %.4f, edge %.4f)\n", t->cost_usd, t->cloud_cost_usd,
           t->edge_cost_usd);
    printf("all-cloud: %.4f USD on the reference model\n", t->counterfactual_usd);
    printf("savings:   %.4f USD (%.1f%%)\n\n", t->savings_usd, t->savings_pct);
    printf("%-20s %9s %7s %7s %9s %8s %8s %8s %9s %9s %9s %10s %11s\n", ea_ledger_group_by_name(r->by),
           "requests", "edge%", "errors", "fallbacks", "p50 ms", "p95 ms", "p99 ms", "ttft p50",
           "ttft p95", "ttft p99", "cost USD", "saved USD");
    for (size_t i = 0; i < r->n_groups; i++) {
        const struct ea_ledger_figures *f = &r->groups[i].f;
        char p50[24], p95[24], p99[24], t50[24], t95[24], t99[24];
        fmt_ms(f->latency_p50_ms, p50, sizeof p50);
        fmt_ms(f->latency_p95_ms, p95, sizeof p95);
        fmt_ms(f->latency_p99_ms, p99, sizeof p99);
        fmt_ms(f->ttft_p50_ms, t50, sizeof t50);
        fmt_ms(f->ttft_p95_ms, t95, sizeof t95);
        fmt_ms(f->ttft_p99_ms, t99, sizeof t99);
        printf("%-20s %9" PRIu64 " %6.1f%% %7" PRIu64 " %9" PRIu64 " %8s %8s %8s %9s %9s %9s %10.4f %11.4f\n",
               r->groups[i].key[0] ? r->groups[i].key : "(none)", f->requests, 100 * f->edge_share,
               f->errors, f->fallbacks, p50, p95, p99, t50, t95, t99, f->cost_usd, f->savings_usd);
    }
}

int cmd_report(int argc, char **argv)
{
    const char *data_dir = NULL, *config = NULL, *since_text = "24h";
    enum ea_ledger_group_by by = EA_LEDGER_BY_SOURCE;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--data-dir") && v) {
            data_dir = argv[++i];
        } else if (!strcmp(a, "--config") && v) {
            config = argv[++i];
        } else if (!strcmp(a, "--since") && v) {
            since_text = argv[++i];
        } else if (!strcmp(a, "--by") && v) {
            i++;
            if (ea_ledger_group_by_parse(v, &by)) {
                cli_errorf("report", "--by takes source, task or upstream (got '%s')", v);
                return 2;
            }
        } else {
            cli_errorf("report", "unknown option or missing value: '%s' (see --help)", a);
            return 2;
        }
    }
    int64_t since_ms;
    if (ea_ledger_parse_since(since_text, &since_ms)) {
        cli_errorf("report", "--since takes N followed by s, m, h, d or w (up to 10 years), or all "
                             "(got '%s')", since_text);
        return 2;
    }
    struct ea_error err = {0};
    char *config_dir = NULL;
    if (config) {
        struct ea_router_config *rc = NULL;
        struct ea_ledger_config lc;
        ea_ledger_config_init(&lc);
        if (ea_router_config_load(config, &rc, &err) || ea_ledger_config_parse(rc, &lc, &err)) {
            cli_error("report", &err);
            ea_ledger_config_release(&lc);
            ea_router_config_destroy(rc);
            return 1;
        }
        config_dir = lc.data_dir ? strdup(lc.data_dir) : NULL;
        ea_ledger_config_release(&lc);
        ea_router_config_destroy(rc);
    }
    char dir[REPORT_PATH_MAX];
    bool ok = cli_ledger_dir("report", data_dir, config_dir, dir, sizeof dir);
    free(config_dir);
    if (!ok)
        return 2;
    ea_ledger *l = NULL;
    struct ea_ledger_options o = {.read_only = true};
    if (ea_ledger_open(dir, &o, &l, &err)) {
        cli_error("report", &err);
        return 1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    struct ea_ledger_report *r = NULL;
    int rc = 0;
    if (ea_ledger_report(l, since_ms < 0 ? 0 : now - since_ms, 0, by, &r, &err)) {
        cli_error("report", &err);
        rc = 1;
    } else if (json) {
        char *text = NULL;
        if (ea_ledger_report_json(r, &text, &err)) {
            cli_error("report", &err);
            rc = 1;
        } else {
            printf("%s\n", text);
            ea_free(text);
        }
    } else {
        print_text(ea_ledger_path(l), r, since_text);
    }
    ea_ledger_report_destroy(r);
    ea_ledger_close(l);
    return rc;
}
#endif /* EA_HAVE_NET */
