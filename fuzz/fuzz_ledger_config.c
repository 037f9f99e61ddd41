/* fuzz_ledger_config.c - libFuzzer target for the `ledger:` section
 * (EA_TEST_NEEDS_NET: the ledger is built with the server's libraries). The
 * input is a whole edgeagent.yaml; what the router's reader accepts goes
 * through ea_ledger_config_parse, which either refuses it with one line
 * "f.yaml:line:column: ledger..." and EFORMAT (or ENOMEM), or accepts it
 * with every figure in its documented range and every task budget naming a
 * task of the file; accepted configurations then price a row.
 * Build: make fuzz; run: make fuzz-smoke. Seeds: fuzz/corpus/ledger_config/. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/ledger.h"

static bool usd_ok(double v) { return isfinite(v) && v >= 0 && v <= EA_LEDGER_MAX_USD; }

static void check(const struct ea_router_config *rc, const struct ea_ledger_config *c)
{
    if (!usd_ok(c->edge_cost_per_mtok) || !usd_ok(c->global.daily_usd) || !usd_ok(c->global.monthly_usd))
        abort();
    if (c->has_reference != (c->reference_model != NULL) || !usd_ok(c->reference_price.input_per_mtok) ||
        !usd_ok(c->reference_price.output_per_mtok))
        abort();
    if (c->queue_rows < 1 || c->queue_rows > EA_LEDGER_MAX_QUEUE)
        abort();
    if ((unsigned)c->default_action > EA_BUDGET_EDGE)
        abort();
    for (size_t i = 0; i < c->n_tasks; i++) {
        const struct ea_ledger_task_budget *t = &c->tasks[i];
        if (!t->task || !ea_router_config_task(rc, t->task) || !usd_ok(t->caps.daily_usd) ||
            !usd_ok(t->caps.monthly_usd) || (unsigned)t->action > EA_BUDGET_EDGE)
            abort();
    }
    if (c->sync_endpoint && strncmp(c->sync_endpoint, "http://", 7) && strncmp(c->sync_endpoint, "https://", 8))
        abort();
    if (!c->sync_endpoint && c->sync_api_key_env)
        abort();
    struct ea_ledger_row r;
    ea_ledger_row_init(&r);
    r.tier = EA_TIER_DEVICE;
    r.prompt_tokens = 1000000;
    r.completion_tokens = 1000000;
    ea_ledger_price_row(c, &r);
    /* 2M tokens at up to EA_LEDGER_MAX_USD per million */
    if (!isfinite(r.cost_usd) || r.cost_usd < 0 || r.cost_usd > 2 * EA_LEDGER_MAX_USD ||
        !isfinite(r.counterfactual_usd) || r.counterfactual_usd < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ea_router_config *rc = NULL;
    struct ea_error err = {0};
    if (ea_router_config_parse((const char *)data, size, "f.yaml", &rc, &err) != EA_OK)
        return 0; /* the router's reader has its own target (fuzz_config) */
    struct ea_ledger_config c;
    ea_status s = ea_ledger_config_parse(rc, &c, &err);
    if (s == EA_OK)
        check(rc, &c);
    else if ((s != EA_EFORMAT && s != EA_ENOMEM) || strncmp(err.msg, "f.yaml", 6) || strchr(err.msg, '\n'))
        abort(); /* every rejection is one line that names the file */
    ea_ledger_config_release(&c);
    ea_router_config_destroy(rc);
    return 0;
}
