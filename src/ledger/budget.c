/* budget.c - cloud spend caps per UTC day and month, global and per task:
 * a request's worst-case cost is reserved before dispatch and settled with
 * its actual cost after, all under one mutex, so that concurrent requests
 * at a cap never pass it together (docs/LEDGER.md, "Budgets").
 *
 * Spend is the cost of cloud-tier rows; device and edge-node requests are
 * never refused. At open, this day's and month's spend is summed back from
 * the rows, so a restart keeps it.
 * Does not hold: pricing (config.c), the rows themselves (ledger.c).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ledger/ledger_int.h"

static struct ea__budget *task_budget(ea_ledger *l, const char *task)
{
    for (size_t i = 0; task && *task && i < l->cfg.n_tasks; i++)
        if (!strcmp(l->tasks[i].task, task))
            return &l->tasks[i];
    return NULL;
}

static ea_status sum_spend(ea_ledger *l, sqlite3 *db, int64_t from_ms, bool month, struct ea_error *err)
{
    sqlite3_stmt *st = NULL;
    /* days and months start on a minute: the per-minute sums are exact */
    const char *sql = "SELECT task, SUM(cost_usd) FROM rollup_minute WHERE minute >= ? AND tier = 'cloud'"
                      " GROUP BY task";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return ea_error_set(err, EA_EIO, "ledger %s: reading the spend back: %s", l->path,
                            sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, ea__ledger_minute(from_ms));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *task = (const char *)sqlite3_column_text(st, 0);
        double v = sqlite3_column_double(st, 1);
        struct ea__budget *b[2] = {&l->global, task_budget(l, task)};
        for (int i = 0; i < 2; i++)
            if (b[i])
                *(month ? &b[i]->spent_month : &b[i]->spent_day) += v;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return ea_error_set(err, EA_EIO, "ledger %s: reading the spend back: %s", l->path,
                            sqlite3_errmsg(db));
    return EA_OK;
}

ea_status ea__ledger_budget_init(ea_ledger *l, sqlite3 *db, struct ea_error *err)
{
    l->global.caps = l->cfg.global;
    l->global.action = l->cfg.default_action;
    if (l->cfg.n_tasks && !(l->tasks = ea_calloc(l->cfg.n_tasks, sizeof *l->tasks)))
        return ea_error_set(err, EA_ENOMEM, "out of memory");
    for (size_t i = 0; i < l->cfg.n_tasks; i++) {
        snprintf(l->tasks[i].task, sizeof l->tasks[i].task, "%s", l->cfg.tasks[i].task);
        l->tasks[i].caps = l->cfg.tasks[i].caps;
        l->tasks[i].action = l->cfg.tasks[i].action;
    }
    int64_t now = ea__ledger_now(l);
    l->day = ea__ledger_day(now);
    l->month = ea__ledger_month(now);
    ea_status s = sum_spend(l, db, l->day * EA__MS_PER_DAY, false, err);
    if (!s)
        s = sum_spend(l, db, ea__ledger_month_start(now), true, err);
    return s;
}

void ea__ledger_budget_release(ea_ledger *l)
{
    ea_free(l->tasks);
    l->tasks = NULL;
}

/* Moves the counters to now's day and month (UTC). Reservations stay: they
 * are settled into the period in which they end. */
static void roll(ea_ledger *l, int64_t now)
{
    int64_t day = ea__ledger_day(now), month = ea__ledger_month(now);
    bool new_day = day != l->day, new_month = month != l->month;
    struct ea__budget *all[1] = {&l->global};
    for (size_t i = 0; i <= l->cfg.n_tasks; i++) {
        struct ea__budget *b = i ? &l->tasks[i - 1] : all[0];
        if (new_day)
            b->spent_day = 0;
        if (new_month)
            b->spent_month = 0;
    }
    l->day = day;
    l->month = month;
}

/* The first cap that spent + reserved + amount would pass, or false. */
static bool over_cap(const struct ea__budget *b, double amount, enum ea_budget_period *period)
{
    if (b->caps.daily_usd > 0 && b->spent_day + b->reserved + amount > b->caps.daily_usd) {
        *period = EA_BUDGET_DAILY;
        return true;
    }
    if (b->caps.monthly_usd > 0 && b->spent_month + b->reserved + amount > b->caps.monthly_usd) {
        *period = EA_BUDGET_MONTHLY;
        return true;
    }
    return false;
}

ea_status ea_ledger_budget_reserve(ea_ledger *l, const char *task, enum ea_upstream_tier tier,
                                   double worst_case_usd, struct ea_ledger_reservation *res,
                                   struct ea_ledger_budget_over *over)
{
    memset(res, 0, sizeof *res);
    if (over)
        memset(over, 0, sizeof *over);
    if (!l || !isfinite(worst_case_usd) || worst_case_usd < 0)
        return EA_EINVAL;
    snprintf(res->task, sizeof res->task, "%s", task ? task : "");
    if (tier != EA_TIER_CLOUD || worst_case_usd == 0)
        return EA_OK; /* an empty reservation: edge requests are never refused */
    int64_t now = ea__ledger_now(l);
    pthread_mutex_lock(&l->bmu);
    roll(l, now);
    struct ea__budget *tb = task_budget(l, res->task);
    enum ea_budget_period period;
    struct ea__budget *hit = over_cap(&l->global, worst_case_usd, &period) ? &l->global
                           : tb && over_cap(tb, worst_case_usd, &period) ? tb
                                                                          : NULL;
    if (hit) {
        if (over) {
            over->task_budget = hit != &l->global;
            snprintf(over->task, sizeof over->task, "%s", res->task);
            over->period = period;
            over->cap_usd = period == EA_BUDGET_DAILY ? hit->caps.daily_usd : hit->caps.monthly_usd;
            over->spent_usd = period == EA_BUDGET_DAILY ? hit->spent_day : hit->spent_month;
            over->reserved_usd = hit->reserved;
            over->requested_usd = worst_case_usd;
            over->action = tb ? tb->action : l->cfg.default_action;
        }
        pthread_mutex_unlock(&l->bmu);
        return EA_EOVERLOADED;
    }
    struct ea__budget *bs[2] = {&l->global, tb};
    for (int i = 0; i < 2; i++)
        if (bs[i]) {
            bs[i]->reserved += worst_case_usd;
            bs[i]->active++;
        }
    pthread_mutex_unlock(&l->bmu);
    res->amount_usd = worst_case_usd;
    res->active = true;
    return EA_OK;
}

void ea_ledger_budget_settle(ea_ledger *l, struct ea_ledger_reservation *res, double actual_usd)
{
    if (!l || !res || !res->active)
        return;
    if (!isfinite(actual_usd) || actual_usd < 0)
        actual_usd = 0;
    int64_t now = ea__ledger_now(l);
    pthread_mutex_lock(&l->bmu);
    roll(l, now);
    struct ea__budget *bs[2] = {&l->global, task_budget(l, res->task)};
    for (int i = 0; i < 2; i++) {
        struct ea__budget *b = bs[i];
        if (!b)
            continue;
        b->reserved -= res->amount_usd;
        if (b->active && --b->active == 0)
            b->reserved = 0; /* exactly: rounding in the += / -= pairs cannot pile up */
        b->spent_day += actual_usd;
        b->spent_month += actual_usd;
    }
    pthread_mutex_unlock(&l->bmu);
    res->active = false;
    res->amount_usd = 0;
}

const char *ea_ledger_budget_message(const struct ea_ledger_budget_over *o, char *buf, size_t size)
{
    const char *period = o->period == EA_BUDGET_DAILY ? "daily" : "monthly";
    if (o->task_budget)
        snprintf(buf, size, "%s budget of task '%s' (%.2f USD) reached: ", period, o->task, o->cap_usd);
    else
        snprintf(buf, size, "global %s budget (%.2f USD) reached: ", period, o->cap_usd);
    size_t n = strlen(buf);
    if (n < size)
        snprintf(buf + n, size - n, "%.4f spent, %.4f reserved, this request may cost up to %.4f USD",
                 o->spent_usd, o->reserved_usd, o->requested_usd);
    return buf;
}

size_t ea_ledger_budget_states(ea_ledger *l, struct ea_ledger_budget_state *out, size_t max)
{
    if (!l)
        return 0;
    size_t n = 0;
    int64_t now = ea__ledger_now(l);
    pthread_mutex_lock(&l->bmu);
    roll(l, now);
    for (size_t i = 0; i <= l->cfg.n_tasks; i++) {
        const struct ea__budget *b = i ? &l->tasks[i - 1] : &l->global;
        for (int p = 0; p < 2; p++) {
            double cap = p ? b->caps.monthly_usd : b->caps.daily_usd;
            if (!(cap > 0))
                continue;
            if (n < max) {
                struct ea_ledger_budget_state *s = &out[n];
                snprintf(s->task, sizeof s->task, "%s", b->task);
                s->period = p ? EA_BUDGET_MONTHLY : EA_BUDGET_DAILY;
                s->cap_usd = cap;
                s->spent_usd = p ? b->spent_month : b->spent_day;
                s->reserved_usd = b->reserved;
                s->action = b->action;
            }
            n++;
        }
    }
    pthread_mutex_unlock(&l->bmu);
    return n;
}
