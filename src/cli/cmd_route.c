/* cmd_route.c - `edgeagent route`: the deployment decision for a task
 * profile given by flags, or by a task of a configuration file (flags then
 * add to it), printed as the target, both scores and every reason; --json
 * prints exactly {"target","edge_score","cloud_score","reasons":[...]}.
 * Does not hold: the scoring (src/router/decide.c) or the configuration
 * reader (src/router/config.c); nothing here looks at live state.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#ifndef EA_HAVE_NET
int cmd_route(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_errorf("route", "this build has no router (libyaml, libmicrohttpd, libcurl or sqlite3 "
                        "were missing at configure time)");
    return 2;
}
#else
#include "edgeagent/router.h"

/* --volume and --max-latency-ms take what the configuration file takes. */
#define ROUTE_MAX_VOLUME 1000000000000ull
#define ROUTE_MAX_LATENCY_MS 86400000ull
#define ROUTE_REASON_MAX 160

static void usage(FILE *f)
{
    fprintf(f,
            "usage: edgeagent route [--latency-sensitive] [--private] [--large-model] [--volume N]\n"
            "                       [--max-latency-ms MS] [--task NAME --config FILE] [--json]\n"
            "  --latency-sensitive   the task needs fast answers (edge +2)\n"
            "  --private             the task handles private data (edge +2)\n"
            "  --large-model         the task requires a large model (cloud +3)\n"
            "  --volume N            requests per day (edge +1 above 1,000)\n"
            "  --max-latency-ms MS   the latency budget of one request (shown; per-request\n"
            "                        routing checks it against live engine statistics)\n"
            "  --task NAME           start from this task of --config (flags add to it)\n"
            "  --config FILE         edgeagent.yaml: its routing.weights replace the defaults\n"
            "  --json                {\"target\",\"edge_score\",\"cloud_score\",\"reasons\":[...]}\n"
            "HYBRID when both scores are above 0, else EDGE when edge > cloud, else CLOUD.\n"
            "See docs/ROUTING.md.\n");
}

int cmd_route(int argc, char **argv)
{
    struct ea_task_profile flags = {0}, p = {0};
    bool json = false, volume_given = false, latency_given = false;
    const char *task_name = NULL, *config = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--latency-sensitive")) {
            flags.latency_sensitive = true;
        } else if (!strcmp(a, "--private")) {
            flags.handles_private_data = true;
        } else if (!strcmp(a, "--large-model")) {
            flags.requires_large_model = true;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--volume") && v) {
            if (!cli_parse_range("route", a, v, 0, ROUTE_MAX_VOLUME, &u))
                return 2;
            flags.request_volume_per_day = u;
            volume_given = true;
            i++;
        } else if (!strcmp(a, "--max-latency-ms") && v) {
            if (!cli_parse_range("route", a, v, 1, ROUTE_MAX_LATENCY_MS, &u))
                return 2;
            flags.max_latency_ms = (uint32_t)u;
            latency_given = true;
            i++;
        } else if (!strcmp(a, "--task") && v) {
            task_name = argv[++i];
        } else if (!strcmp(a, "--config") && v) {
            config = argv[++i];
        } else {
            cli_errorf("route", "unknown option or missing value: '%s' (see --help)", a);
            return 2;
        }
    }
    if (task_name && !config) {
        cli_errorf("route", "--task needs --config FILE (the file that defines the task)");
        return 2;
    }
    struct ea_router_config *cfg = NULL;
    struct ea_error err = {0};
    const struct ea_task_config *task = NULL;
    struct ea_router_weights w;
    ea_router_weights_default(&w);
    if (config) {
        if (ea_router_config_load(config, &cfg, &err)) {
            cli_error("route", &err);
            return 1;
        }
        w = cfg->routing.weights;
        if (task_name && !(task = ea_router_config_task(cfg, task_name))) {
            cli_errorf("route", "%s: no task is named '%s'", config, task_name);
            ea_router_config_destroy(cfg);
            return 1;
        }
    }
    /* the task's profile, with the flags added (a flag can switch a factor
     * on, and --volume / --max-latency-ms replace the task's figures) */
    if (task)
        p = task->profile;
    p.latency_sensitive |= flags.latency_sensitive;
    p.handles_private_data |= flags.handles_private_data;
    p.requires_large_model |= flags.requires_large_model;
    if (volume_given)
        p.request_volume_per_day = flags.request_volume_per_day;
    if (latency_given)
        p.max_latency_ms = flags.max_latency_ms;

    struct ea_route_decision d;
    ea_router_decide(&p, &w, &d);
    char line[ROUTE_REASON_MAX];
    if (json) {
        printf("{\"target\":\"%s\",\"edge_score\":%d,\"cloud_score\":%d,\"reasons\":[",
               ea_route_target_name(d.target), (int)d.edge_score, (int)d.cloud_score);
        for (uint32_t i = 0; i < d.n_reasons; i++) {
            if (i)
                putchar(',');
            cli_print_json_str(stdout, ea_route_reason_format(&d.reasons[i], &d, &p, &w, line, sizeof line));
        }
        printf("]}\n");
    } else {
        if (task)
            printf("task:        %s (mode %s, privacy %s)\n", task->name, ea_task_mode_name(task->mode),
                   ea_privacy_mode_name(task->privacy));
        printf("target:      %s\n", ea_route_target_name(d.target));
        printf("edge score:  %d\n", (int)d.edge_score);
        printf("cloud score: %d\n", (int)d.cloud_score);
        if (p.max_latency_ms)
            printf("budget:      %u ms per request (checked per request against live engine statistics)\n",
                   (unsigned)p.max_latency_ms);
        printf("reasons:\n");
        for (uint32_t i = 0; i < d.n_reasons; i++)
            printf("  %s\n", ea_route_reason_format(&d.reasons[i], &d, &p, &w, line, sizeof line));
        if (task && task->mode != EA_MODE_AUTO)
            printf("note:        mode %s decides before this recommendation (docs/ROUTING.md)\n",
                   ea_task_mode_name(task->mode));
    }
    ea_router_config_destroy(cfg);
    return 0;
}
#endif /* EA_HAVE_NET */
