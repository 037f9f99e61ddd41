/* report.c - the report over the ledger's rows: one scan of the rows in a
 * time window (the requests_time index), figures summed per group (source
 * tier, task or upstream) and in total, latency and TTFT quantiles by
 * selection (nearest rank, no full sort), and the same as one JSON object.
 *
 * The scan reads through the ledger's reader connection (WAL: the writer
 * goes on committing meanwhile) and never reads a text column other than
 * the identifiers it groups by.
 * Does not hold: the HTTP route or the CLI's printing (src/cli/cmd_report.c).
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ledger/ledger_int.h"
#include "util/buf.h"

#define REPORT_MAX_ROWS 100000000ull  /* ~3 GB of latencies: past it, narrow the window */
#define REPORT_MAX_GROUPS 100000u
#define REPORT_JSON_MAX ((size_t)64 << 20)
#define FIRST_TABLE_SIZE 64u          /* group hash slots; a power of two */

const unsigned ea_ledger_hist_le_ms[EA_LEDGER_HIST_BUCKETS] = {25,   50,   100,  250,   500,  1000,
                                                                2500, 5000, 10000, 30000, 60000};

/* The bucket of v: the first bound at or above it (EA_LEDGER_HIST_BUCKETS:
 * above them all, the +Inf bucket). */
static int bucket_of(double v)
{
    int i = 0;
    while (i < EA_LEDGER_HIST_BUCKETS && !(v <= ea_ledger_hist_le_ms[i]))
        i++;
    return i;
}

struct acc {
    struct ea_ledger_figures f;
    double *lat, *ttft;
    size_t n_lat, cap_lat, n_ttft, cap_ttft;
};

struct group {
    char key[EA_LEDGER_MODEL_MAX + 1];
    struct acc a;
};

struct scan {
    struct acc total;
    struct group *groups;
    size_t n_groups, cap_groups;
    uint32_t *table; /* group index + 1; 0 = empty */
    size_t table_size;
    size_t by_tier[3]; /* --by source: group index + 1 of each tier, 0 = not yet */
    struct ea_ledger_entity_total *entities;
    size_t n_entities, cap_entities;
};

static ea_status push(double **v, size_t *n, size_t *cap, double x)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 1024;
        double *p = ea_realloc(*v, c * sizeof *p);
        if (!p)
            return EA_ENOMEM;
        *v = p;
        *cap = c;
    }
    (*v)[(*n)++] = x;
    return EA_OK;
}

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static ea_status rehash(struct scan *sc, size_t size)
{
    uint32_t *t = ea_calloc(size, sizeof *t);
    if (!t)
        return EA_ENOMEM;
    for (size_t i = 0; i < sc->n_groups; i++) {
        size_t j = hash(sc->groups[i].key) & (size - 1);
        while (t[j])
            j = (j + 1) & (size - 1);
        t[j] = (uint32_t)(i + 1);
    }
    ea_free(sc->table);
    sc->table = t;
    sc->table_size = size;
    return EA_OK;
}

static ea_status find_group(struct scan *sc, const char *key, struct acc **out)
{
    size_t j = hash(key) & (sc->table_size - 1);
    for (; sc->table[j]; j = (j + 1) & (sc->table_size - 1)) {
        struct group *g = &sc->groups[sc->table[j] - 1];
        if (!strcmp(g->key, key)) {
            *out = &g->a;
            return EA_OK;
        }
    }
    if (sc->n_groups >= REPORT_MAX_GROUPS)
        return EA_ETOOBIG;
    if (sc->n_groups == sc->cap_groups) {
        size_t c = sc->cap_groups ? sc->cap_groups * 2 : 16;
        struct group *g = ea_realloc(sc->groups, c * sizeof *g);
        if (!g)
            return EA_ENOMEM;
        sc->groups = g;
        sc->cap_groups = c;
    }
    struct group *g = &sc->groups[sc->n_groups];
    memset(g, 0, sizeof *g);
    snprintf(g->key, sizeof g->key, "%s", key);
    sc->table[j] = (uint32_t)++sc->n_groups;
    if (sc->n_groups * 2 > sc->table_size) {
        ea_status s = rehash(sc, sc->table_size * 2);
        if (s)
            return s;
    }
    *out = &g->a;
    return EA_OK;
}

/* What a row, or a rollup_minute row, adds to the sums. */
struct sums {
    int tier;
    uint64_t requests, ok, estimated, fallbacks, with_fallback, hedges, attempts;
    uint64_t prompt, completion, cached;
    double cost, counterfactual;
};

static void add_sums(struct acc *a, const struct sums *r)
{
    struct ea_ledger_figures *f = &a->f;
    f->requests += r->requests;
    f->ok += r->ok;
    f->errors += r->requests - r->ok;
    f->estimated += r->estimated;
    if (r->tier == EA_TIER_CLOUD) {
        f->cloud_requests += r->requests;
        f->cloud_cost_usd += r->cost;
    } else {
        f->edge_requests += r->requests;
        f->edge_cost_usd += r->cost;
    }
    f->fallbacks += r->fallbacks;
    f->requests_with_fallback += r->with_fallback;
    f->hedges += r->hedges;
    f->attempts += r->attempts;
    f->prompt_tokens += r->prompt;
    f->completion_tokens += r->completion;
    f->cached_prompt_tokens += r->cached;
    f->cost_usd += r->cost;
    f->counterfactual_usd += r->counterfactual;
}

/* Histogram counts are per bucket here; finish() makes them cumulative. */
static ea_status add_latency(struct acc *a, double total, bool has_ttft, double ttft)
{
    if (push(&a->lat, &a->n_lat, &a->cap_lat, total))
        return EA_ENOMEM;
    int b = bucket_of(total);
    if (b < EA_LEDGER_HIST_BUCKETS)
        a->f.latency_le[b]++;
    if (has_ttft) {
        if (push(&a->ttft, &a->n_ttft, &a->cap_ttft, ttft))
            return EA_ENOMEM;
        b = bucket_of(ttft);
        if (b < EA_LEDGER_HIST_BUCKETS)
            a->f.ttft_le[b]++;
    }
    return EA_OK;
}

/* Puts the k-th smallest of v[lo..hi] at v[k], smaller ones before it and
 * larger ones after (Hoare's selection with a median-of-three pivot). */
static void select_k(double *v, size_t lo, size_t hi, size_t k)
{
    while (hi > lo) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < v[lo]) { double t = v[mid]; v[mid] = v[lo]; v[lo] = t; }
        if (v[hi] < v[lo]) { double t = v[hi]; v[hi] = v[lo]; v[lo] = t; }
        if (v[hi] < v[mid]) { double t = v[hi]; v[hi] = v[mid]; v[mid] = t; }
        double pivot = v[mid];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot)
                i++;
            while (v[j] > pivot)
                j--;
            if (i <= j) {
                double t = v[i]; v[i] = v[j]; v[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        /* now v[lo..j] <= pivot <= v[i..hi], and j < i */
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return;
    }
}

/* Nearest-rank quantiles p50, p95, p99 of v (reordered); NAN when empty. */
static void quantiles(double *v, size_t n, double *p50, double *p95, double *p99)
{
    static const unsigned pct[3] = {50, 95, 99};
    double *out[3] = {p50, p95, p99};
    size_t lo = 0;
    for (int i = 0; i < 3; i++) {
        if (!n) {
            *out[i] = NAN;
            continue;
        }
        size_t k = (size_t)((pct[i] * (unsigned long long)n + 99) / 100) - 1; /* ceil(p n) - 1 */
        select_k(v, lo, n - 1, k);
        *out[i] = v[k];
        lo = k; /* the next rank is at or after k: the part before it stays put */
    }
}

static void finish(struct acc *a)
{
    struct ea_ledger_figures *f = &a->f;
    quantiles(a->lat, a->n_lat, &f->latency_p50_ms, &f->latency_p95_ms, &f->latency_p99_ms);
    f->ttft_count = a->n_ttft;
    quantiles(a->ttft, a->n_ttft, &f->ttft_p50_ms, &f->ttft_p95_ms, &f->ttft_p99_ms);
    f->savings_usd = f->counterfactual_usd - f->cost_usd;
    f->savings_pct = f->counterfactual_usd > 0 ? 100.0 * f->savings_usd / f->counterfactual_usd : 0;
    f->edge_share = f->requests ? (double)f->edge_requests / (double)f->requests : 0;
    for (int i = 1; i < EA_LEDGER_HIST_BUCKETS; i++) {
        f->latency_le[i] += f->latency_le[i - 1];
        f->ttft_le[i] += f->ttft_le[i - 1];
    }
    ea_free(a->lat);
    ea_free(a->ttft);
    a->lat = a->ttft = NULL;
}

static void scan_release(struct scan *sc)
{
    ea_free(sc->total.lat);
    ea_free(sc->total.ttft);
    for (size_t i = 0; i < sc->n_groups; i++) {
        ea_free(sc->groups[i].a.lat);
        ea_free(sc->groups[i].a.ttft);
    }
    ea_free(sc->groups);
    ea_free(sc->table);
    ea_free(sc->entities);
}

static int by_type(const void *a, const void *b)
{
    return strcmp(((const struct ea_ledger_entity_total *)a)->type,
                  ((const struct ea_ledger_entity_total *)b)->type);
}

static int by_key(const void *a, const void *b)
{
    return strcmp(((const struct ea_ledger_report_group *)a)->key,
                  ((const struct ea_ledger_report_group *)b)->key);
}

/* A report reads three things, all in one read transaction:
 * - the sums of whole minutes of the window from rollup_minute (the writer
 *   keeps it in the same transactions as the rows);
 * - the sums of the rows of the partial minutes at the window's edges;
 * - the latencies of every row of the window, for exact quantiles. That
 *   scan reads four narrow columns and walks the table in rowid order from
 *   the window's first row (rows are appended roughly in time order, so
 *   pages are read in file order, not one table lookup per index entry);
 *   the time test stays in the query, so rows written out of order still
 *   count exactly. */
static const char oldest_sql[] = "SELECT min(time_ms) FROM requests";
static const char first_sql[] = "SELECT min(id) FROM requests WHERE time_ms >= ? AND time_ms < ?";
static const char *const latency_sql[] = {
    "SELECT tier, tier, total_ms, ttft_ms FROM requests NOT INDEXED"
    " WHERE id >= ? AND time_ms >= ? AND time_ms < ?",
    "SELECT tier, task, total_ms, ttft_ms FROM requests NOT INDEXED"
    " WHERE id >= ? AND time_ms >= ? AND time_ms < ?",
    "SELECT tier, upstream, total_ms, ttft_ms FROM requests NOT INDEXED"
    " WHERE id >= ? AND time_ms >= ? AND time_ms < ?",
};
static const char *const rollup_sql[] = {
    "SELECT tier, tier, SUM(requests), SUM(ok), SUM(estimated), SUM(fallbacks),"
    " SUM(requests_with_fallback), SUM(hedges), SUM(attempts), SUM(prompt_tokens),"
    " SUM(completion_tokens), SUM(cached_prompt_tokens), SUM(cost_usd), SUM(counterfactual_usd)"
    " FROM rollup_minute WHERE minute >= ? AND minute < ? GROUP BY 1, 2",
    "SELECT tier, task, SUM(requests), SUM(ok), SUM(estimated), SUM(fallbacks),"
    " SUM(requests_with_fallback), SUM(hedges), SUM(attempts), SUM(prompt_tokens),"
    " SUM(completion_tokens), SUM(cached_prompt_tokens), SUM(cost_usd), SUM(counterfactual_usd)"
    " FROM rollup_minute WHERE minute >= ? AND minute < ? GROUP BY 1, 2",
    "SELECT tier, upstream, SUM(requests), SUM(ok), SUM(estimated), SUM(fallbacks),"
    " SUM(requests_with_fallback), SUM(hedges), SUM(attempts), SUM(prompt_tokens),"
    " SUM(completion_tokens), SUM(cached_prompt_tokens), SUM(cost_usd), SUM(counterfactual_usd)"
    " FROM rollup_minute WHERE minute >= ? AND minute < ? GROUP BY 1, 2",
};
/* the same columns from the rows themselves (the partial minutes) */
static const char *const rows_sql[] = {
    "SELECT tier, tier, 1, outcome = 'ok', estimated, fallbacks, fallbacks > 0, hedges, attempts,"
    " prompt_tokens, completion_tokens, cached_prompt_tokens, cost_usd, counterfactual_usd"
    " FROM requests WHERE time_ms >= ? AND time_ms < ?",
    "SELECT tier, task, 1, outcome = 'ok', estimated, fallbacks, fallbacks > 0, hedges, attempts,"
    " prompt_tokens, completion_tokens, cached_prompt_tokens, cost_usd, counterfactual_usd"
    " FROM requests WHERE time_ms >= ? AND time_ms < ?",
    "SELECT tier, upstream, 1, outcome = 'ok', estimated, fallbacks, fallbacks > 0, hedges, attempts,"
    " prompt_tokens, completion_tokens, cached_prompt_tokens, cost_usd, counterfactual_usd"
    " FROM requests WHERE time_ms >= ? AND time_ms < ?",
};

static ea_status sql_fail(ea_ledger *l, struct ea_error *err)
{
    return ea_error_set(err, EA_EIO, "ledger %s: report: %s", l->path, sqlite3_errmsg(l->rdb));
}

static ea_status group_fail(ea_status s, struct ea_error *err)
{
    return s == EA_ETOOBIG ? ea_error_set(err, s, "ledger report: more than %u groups", REPORT_MAX_GROUPS)
                           : ea_error_set(err, s, "ledger report: out of memory");
}

static int tier_of(sqlite3_stmt *st)
{
    int t = ea__ledger_tier_parse((const char *)sqlite3_column_text(st, 0));
    return t < 0 ? EA_TIER_CLOUD : t; /* a hand-edited row: counted where it costs */
}

static const char *key_of(sqlite3_stmt *st, enum ea_ledger_group_by by, int tier)
{
    if (by == EA_LEDGER_BY_SOURCE)
        return ea__ledger_tier_name((enum ea_upstream_tier)tier);
    const char *k = (const char *)sqlite3_column_text(st, 1);
    return k ? k : "";
}

/* Sums from rollup_minute (minutes [a, b)) or from rows (times [a, b)). */
static ea_status scan_sums(ea_ledger *l, const char *sql, int64_t a, int64_t b,
                           enum ea_ledger_group_by by, struct scan *sc, struct ea_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->rdb, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_fail(l, err);
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    ea_status s = EA_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct sums r;
        r.tier = tier_of(st);
        uint64_t *u[] = {&r.requests, &r.ok, &r.estimated, &r.fallbacks, &r.with_fallback,
                         &r.hedges, &r.attempts, &r.prompt, &r.completion, &r.cached};
        for (int i = 0; i < 10; i++)
            *u[i] = (uint64_t)sqlite3_column_int64(st, 2 + i);
        r.cost = sqlite3_column_double(st, 12);
        r.counterfactual = sqlite3_column_double(st, 13);
        struct acc *g = NULL;
        if ((s = find_group(sc, key_of(st, by, r.tier), &g))) {
            s = group_fail(s, err);
            break;
        }
        add_sums(g, &r);
        add_sums(&sc->total, &r);
    }
    if (!s && rc != SQLITE_DONE)
        s = sql_fail(l, err);
    sqlite3_finalize(st);
    return s;
}

static ea_status scan_latencies(ea_ledger *l, int64_t since, int64_t until, enum ea_ledger_group_by by,
                                struct scan *sc, struct ea_error *err)
{
    sqlite3_stmt *st = NULL;
    /* a window that starts before the oldest row starts at the first row
     * (min(time_ms) is one index probe; min(id) of a range walks it) */
    if (sqlite3_prepare_v2(l->rdb, oldest_sql, -1, &st, NULL) != SQLITE_OK)
        return sql_fail(l, err);
    int rc = sqlite3_step(st);
    bool none = rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_NULL;
    bool from_start = rc == SQLITE_ROW && sqlite3_column_int64(st, 0) >= since;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return sql_fail(l, err);
    if (none)
        return EA_OK; /* no rows at all */
    int64_t first = 0;
    if (!from_start) {
        if (sqlite3_prepare_v2(l->rdb, first_sql, -1, &st, NULL) != SQLITE_OK)
            return sql_fail(l, err);
        sqlite3_bind_int64(st, 1, since);
        sqlite3_bind_int64(st, 2, until);
        rc = sqlite3_step(st);
        none = rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_NULL;
        first = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW)
            return sql_fail(l, err);
        if (none)
            return EA_OK; /* no row in the window */
    }
    if (sqlite3_prepare_v2(l->rdb, latency_sql[by], -1, &st, NULL) != SQLITE_OK)
        return sql_fail(l, err);
    sqlite3_bind_int64(st, 1, first);
    sqlite3_bind_int64(st, 2, since);
    sqlite3_bind_int64(st, 3, until);
    ea_status s = EA_OK;
    uint64_t rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (++rows > REPORT_MAX_ROWS) {
            s = ea_error_set(err, EA_ETOOBIG, "ledger report: more than %llu rows in the window: "
                             "ask for a shorter one", (unsigned long long)REPORT_MAX_ROWS);
            break;
        }
        int tier = tier_of(st);
        double total = sqlite3_column_double(st, 2);
        bool has_ttft = sqlite3_column_type(st, 3) != SQLITE_NULL;
        double ttft = has_ttft ? sqlite3_column_double(st, 3) : 0;
        struct acc *g = NULL;
        if (by == EA_LEDGER_BY_SOURCE && sc->by_tier[tier]) {
            g = &sc->groups[sc->by_tier[tier] - 1].a; /* no hashing on the hot path */
        } else if (!(s = find_group(sc, key_of(st, by, tier), &g)) && by == EA_LEDGER_BY_SOURCE) {
            sc->by_tier[tier] = (size_t)(((struct group *)((char *)g - offsetof(struct group, a))) -
                                         sc->groups) + 1;
        }
        if (s || (s = add_latency(g, total, has_ttft, ttft)) ||
            (s = add_latency(&sc->total, total, has_ttft, ttft))) {
            s = group_fail(s, err);
            break;
        }
    }
    if (!s && rc != SQLITE_DONE)
        s = sql_fail(l, err);
    sqlite3_finalize(st);
    return s;
}

/* Entity counts per type: from rollup_privacy (minutes [a, b)) or from the
 * rows' privacy objects (times [a, b)). */
static const char privacy_rollup_sql[] =
    "SELECT type, SUM(count) FROM rollup_privacy WHERE minute >= ? AND minute < ? GROUP BY type";
static const char privacy_rows_sql[] =
    "SELECT j.key, SUM(j.value) FROM requests AS r, json_each(r.privacy) AS j"
    " WHERE r.time_ms >= ? AND r.time_ms < ? AND r.privacy != '{}' GROUP BY j.key";

static ea_status scan_entities(ea_ledger *l, const char *sql, int64_t a, int64_t b, struct scan *sc,
                               struct ea_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->rdb, sql, -1, &st, NULL) != SQLITE_OK)
        return sql_fail(l, err);
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    ea_status s = EA_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(st, 0);
        uint64_t n = (uint64_t)sqlite3_column_int64(st, 1);
        if (!type)
            continue;
        size_t i = 0;
        while (i < sc->n_entities && strcmp(sc->entities[i].type, type))
            i++;
        if (i == sc->n_entities) {
            if (sc->n_entities >= REPORT_MAX_GROUPS) {
                s = group_fail(EA_ETOOBIG, err);
                break;
            }
            if (sc->n_entities == sc->cap_entities) {
                size_t c = sc->cap_entities ? sc->cap_entities * 2 : 16;
                struct ea_ledger_entity_total *p = ea_realloc(sc->entities, c * sizeof *p);
                if (!p) {
                    s = group_fail(EA_ENOMEM, err);
                    break;
                }
                sc->entities = p;
                sc->cap_entities = c;
            }
            memset(&sc->entities[i], 0, sizeof sc->entities[i]);
            snprintf(sc->entities[i].type, sizeof sc->entities[i].type, "%s", type);
            sc->n_entities++;
        }
        sc->entities[i].count += n;
    }
    if (!s && rc != SQLITE_DONE)
        s = sql_fail(l, err);
    sqlite3_finalize(st);
    return s;
}

/* The first whole minute at or after t (t > 0), without overflowing. */
static int64_t first_minute(int64_t t)
{
    int64_t m = t / EA__MS_PER_MINUTE;
    return m + (t % EA__MS_PER_MINUTE != 0);
}

static ea_status run_scan(ea_ledger *l, int64_t since, int64_t until, enum ea_ledger_group_by by,
                          struct scan *sc, struct ea_error *err)
{
    ea_status s;
    if (sqlite3_exec(l->rdb, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(l, err);
    /* whole minutes [m0, m1) from the sums, the rest from the rows */
    int64_t m0 = since > 0 ? first_minute(since) : 0;
    int64_t m1 = ea__ledger_minute(until);
    if (m0 < m1) {
        if (!(s = scan_sums(l, rollup_sql[by], m0, m1, by, sc, err)) &&
            !(s = scan_sums(l, rows_sql[by], since, m0 * EA__MS_PER_MINUTE, by, sc, err)) &&
            !(s = scan_sums(l, rows_sql[by], m1 * EA__MS_PER_MINUTE, until, by, sc, err)) &&
            !(s = scan_entities(l, privacy_rollup_sql, m0, m1, sc, err)) &&
            !(s = scan_entities(l, privacy_rows_sql, since, m0 * EA__MS_PER_MINUTE, sc, err)))
            s = scan_entities(l, privacy_rows_sql, m1 * EA__MS_PER_MINUTE, until, sc, err);
    } else if (!(s = scan_sums(l, rows_sql[by], since, until, by, sc, err))) {
        s = scan_entities(l, privacy_rows_sql, since, until, sc, err);
    }
    if (!s)
        s = scan_latencies(l, since, until, by, sc, err);
    sqlite3_exec(l->rdb, "COMMIT", NULL, NULL, NULL);
    return s;
}

ea_status ea_ledger_report(ea_ledger *l, int64_t since_ms, int64_t until_ms,
                           enum ea_ledger_group_by by, struct ea_ledger_report **out,
                           struct ea_error *err)
{
    *out = NULL;
    if (!l || (unsigned)by > EA_LEDGER_BY_UPSTREAM)
        return ea_error_set(err, EA_EINVAL, "ledger report: bad arguments");
    struct ea_ledger_report *r = ea_calloc(1, sizeof *r);
    struct scan sc = {0};
    if (!r || rehash(&sc, FIRST_TABLE_SIZE)) {
        ea_free(r);
        scan_release(&sc);
        return ea_error_set(err, EA_ENOMEM, "ledger report: out of memory");
    }
    r->since_ms = since_ms;
    r->until_ms = until_ms ? until_ms : ea__ledger_now(l);
    r->by = by;
    pthread_mutex_lock(&l->rmu);
    ea_status s = run_scan(l, since_ms, until_ms ? until_ms : INT64_MAX, by, &sc, err);
    pthread_mutex_unlock(&l->rmu);
    if (s)
        goto out_free;
    finish(&sc.total);
    r->total = sc.total.f;
    if (sc.n_groups && !(r->groups = ea_calloc(sc.n_groups, sizeof *r->groups))) {
        s = ea_error_set(err, EA_ENOMEM, "ledger report: out of memory");
        goto out_free;
    }
    for (size_t i = 0; i < sc.n_groups; i++) {
        finish(&sc.groups[i].a);
        memcpy(r->groups[i].key, sc.groups[i].key, sizeof r->groups[i].key);
        r->groups[i].f = sc.groups[i].a.f;
    }
    r->n_groups = sc.n_groups;
    if (r->n_groups)
        qsort(r->groups, r->n_groups, sizeof *r->groups, by_key);
    r->entities = sc.entities; /* the report takes them */
    r->n_entities = sc.n_entities;
    sc.entities = NULL;
    if (r->n_entities)
        qsort(r->entities, r->n_entities, sizeof *r->entities, by_type);
    scan_release(&sc);
    *out = r;
    return EA_OK;
out_free:
    scan_release(&sc);
    ea_ledger_report_destroy(r);
    return s;
}

void ea_ledger_report_destroy(struct ea_ledger_report *r)
{
    if (!r)
        return;
    ea_free(r->groups);
    ea_free(r->entities);
    ea_free(r);
}

const char *ea_ledger_group_by_name(enum ea_ledger_group_by by)
{
    static const char *const names[] = {"source", "task", "upstream"};
    return (unsigned)by <= EA_LEDGER_BY_UPSTREAM ? names[by] : "?";
}

ea_status ea_ledger_group_by_parse(const char *s, enum ea_ledger_group_by *by)
{
    for (int i = 0; i <= EA_LEDGER_BY_UPSTREAM; i++)
        if (s && !strcmp(s, ea_ledger_group_by_name((enum ea_ledger_group_by)i))) {
            *by = (enum ea_ledger_group_by)i;
            return EA_OK;
        }
    return EA_EINVAL;
}

#define SINCE_MAX_MS (3650LL * EA__MS_PER_DAY) /* ten years */

ea_status ea_ledger_parse_since(const char *s, int64_t *ms)
{
    if (!s)
        return EA_EINVAL;
    if (!strcmp(s, "all")) {
        *ms = -1;
        return EA_OK;
    }
    size_t digits = strspn(s, "0123456789");
    if (!digits || digits > 12 || !s[digits] || s[digits + 1])
        return EA_EINVAL;
    int64_t unit;
    switch (s[digits]) {
    case 's': unit = 1000; break;
    case 'm': unit = EA__MS_PER_MINUTE; break;
    case 'h': unit = 60 * EA__MS_PER_MINUTE; break;
    case 'd': unit = EA__MS_PER_DAY; break;
    case 'w': unit = 7 * EA__MS_PER_DAY; break;
    default: return EA_EINVAL;
    }
    int64_t v = strtoll(s, NULL, 10);
    if (v <= 0 || v > SINCE_MAX_MS / unit)
        return EA_EINVAL;
    *ms = v * unit;
    return EA_OK;
}

/* ---- JSON ------------------------------------------------------------------ */

/* %.17g round-trips a double: the figures are unrounded. NAN is null. */
static ea_status num(struct ea_buf *b, const char *name, double v)
{
    if (!isfinite(v))
        return ea__buf_printf(b, "\"%s\":null", name);
    return ea__buf_printf(b, "\"%s\":%.17g", name, v);
}

static ea_status u64(struct ea_buf *b, const char *name, uint64_t v)
{
    return ea__buf_printf(b, "\"%s\":%llu", name, (unsigned long long)v);
}

static ea_status le(struct ea_buf *b, const uint64_t *v)
{
    ea_status s = ea__buf_puts(b, ",\"le\":[");
    for (int i = 0; i < EA_LEDGER_HIST_BUCKETS && !s; i++)
        s = ea__buf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)v[i]);
    return s ? s : ea__buf_putc(b, ']');
}

static ea_status figures_json(struct ea_buf *b, const struct ea_ledger_figures *f)
{
    ea_status s = EA_OK;
#define P(x) if (!s) s = (x)
    P(u64(b, "requests", f->requests)); P(ea__buf_putc(b, ','));
    P(u64(b, "ok", f->ok)); P(ea__buf_putc(b, ','));
    P(u64(b, "errors", f->errors)); P(ea__buf_putc(b, ','));
    P(u64(b, "estimated", f->estimated)); P(ea__buf_putc(b, ','));
    P(u64(b, "edge_requests", f->edge_requests)); P(ea__buf_putc(b, ','));
    P(u64(b, "cloud_requests", f->cloud_requests)); P(ea__buf_putc(b, ','));
    P(num(b, "edge_share", f->edge_share)); P(ea__buf_putc(b, ','));
    P(u64(b, "fallbacks", f->fallbacks)); P(ea__buf_putc(b, ','));
    P(u64(b, "requests_with_fallback", f->requests_with_fallback)); P(ea__buf_putc(b, ','));
    P(u64(b, "hedges", f->hedges)); P(ea__buf_putc(b, ','));
    P(u64(b, "attempts", f->attempts)); P(ea__buf_puts(b, ",\"tokens\":{"));
    P(u64(b, "prompt", f->prompt_tokens)); P(ea__buf_putc(b, ','));
    P(u64(b, "completion", f->completion_tokens)); P(ea__buf_putc(b, ','));
    P(u64(b, "cached_prompt", f->cached_prompt_tokens)); P(ea__buf_puts(b, "},\"latency_ms\":{"));
    P(num(b, "p50", f->latency_p50_ms)); P(ea__buf_putc(b, ','));
    P(num(b, "p95", f->latency_p95_ms)); P(ea__buf_putc(b, ','));
    P(num(b, "p99", f->latency_p99_ms)); P(le(b, f->latency_le)); P(ea__buf_puts(b, "},\"ttft_ms\":{"));
    P(u64(b, "count", f->ttft_count)); P(ea__buf_putc(b, ','));
    P(num(b, "p50", f->ttft_p50_ms)); P(ea__buf_putc(b, ','));
    P(num(b, "p95", f->ttft_p95_ms)); P(ea__buf_putc(b, ','));
    P(num(b, "p99", f->ttft_p99_ms)); P(le(b, f->ttft_le)); P(ea__buf_puts(b, "},"));
    P(num(b, "cost_usd", f->cost_usd)); P(ea__buf_putc(b, ','));
    P(num(b, "cloud_cost_usd", f->cloud_cost_usd)); P(ea__buf_putc(b, ','));
    P(num(b, "edge_cost_usd", f->edge_cost_usd)); P(ea__buf_putc(b, ','));
    P(num(b, "counterfactual_usd", f->counterfactual_usd)); P(ea__buf_putc(b, ','));
    P(num(b, "savings_usd", f->savings_usd)); P(ea__buf_putc(b, ','));
    P(num(b, "savings_pct", f->savings_pct));
#undef P
    return s;
}

static void iso_time(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

ea_status ea_ledger_report_json(const struct ea_ledger_report *r, char **json, struct ea_error *err)
{
    *json = NULL;
    struct ea_buf b;
    ea__buf_init(&b, REPORT_JSON_MAX);
    char since[32], until[32];
    iso_time(r->since_ms, since, sizeof since);
    iso_time(r->until_ms, until, sizeof until);
    ea_status s = ea__buf_printf(&b, "{\"since_ms\":%lld,\"until_ms\":%lld,\"since\":\"%s\",\"until\":\"%s\","
                                 "\"by\":\"%s\",\"histogram_le_ms\":[",
                                 (long long)r->since_ms, (long long)r->until_ms, since, until,
                                 ea_ledger_group_by_name(r->by));
    for (int i = 0; i < EA_LEDGER_HIST_BUCKETS && !s; i++)
        s = ea__buf_printf(&b, "%s%u", i ? "," : "", ea_ledger_hist_le_ms[i]);
    if (!s)
        s = ea__buf_puts(&b, "],\"privacy\":{");
    for (size_t i = 0; i < r->n_entities && !s; i++)
        s = ea__buf_printf(&b, "%s\"%s\":%llu", i ? "," : "", r->entities[i].type,
                           (unsigned long long)r->entities[i].count); /* types are [a-z0-9_] */
    if (!s)
        s = ea__buf_puts(&b, "},\"total\":{");
    if (!s)
        s = figures_json(&b, &r->total);
    if (!s)
        s = ea__buf_puts(&b, "},\"groups\":[");
    for (size_t i = 0; i < r->n_groups && !s; i++) {
        s = ea__buf_puts(&b, i ? ",{\"key\":" : "{\"key\":");
        if (!s)
            s = ea__buf_json_str(&b, r->groups[i].key, strlen(r->groups[i].key));
        if (!s)
            s = ea__buf_putc(&b, ',');
        if (!s)
            s = figures_json(&b, &r->groups[i].f);
        if (!s)
            s = ea__buf_putc(&b, '}');
    }
    if (!s)
        s = ea__buf_puts(&b, "]}");
    if (s) {
        ea__buf_release(&b);
        return ea_error_set(err, s, "ledger report: %s", s == EA_ETOOBIG ? "the JSON is too large"
                                                                          : "out of memory");
    }
    *json = ea__buf_steal(&b);
    return EA_OK;
}

/* ---- series ------------------------------------------------------------------ */

struct point {
    uint64_t requests[3], errors, fallbacks;
    double cost, cloud_cost, counterfactual;
};

/* Steps of whole minutes read the per-minute sums; shorter steps (whole
 * seconds) read the rows through the requests_time index. Both give
 * (bucket, or the row's time; tier, requests, errors, fallbacks, cost,
 * counterfactual) with ?1 = the first minute (or ms), ?2 = the step in the
 * same unit, ?3 = the end. */
static const char series_minute_sql[] =
    "SELECT (minute - ?1) / ?2, tier, SUM(requests), SUM(requests - ok), SUM(fallbacks), SUM(cost_usd),"
    " SUM(counterfactual_usd) FROM rollup_minute WHERE minute >= ?1 AND minute < ?3 GROUP BY 1, 2";
/* (the rows are bucketed here rather than by GROUP BY: no sort, about
 * three times faster over a million rows) */
static const char series_rows_sql[] =
    "SELECT time_ms, tier, 1, outcome != 'ok', fallbacks, cost_usd, counterfactual_usd"
    " FROM requests WHERE time_ms >= ?1 AND time_ms < ?3";

/* The series' sums into pts[0..n) (under rmu). */
static ea_status series_scan(ea_ledger *l, bool minutes, int64_t a, int64_t step, int64_t b,
                             struct point *pts, int64_t n, struct ea_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->rdb, minutes ? series_minute_sql : series_rows_sql, -1, &st, NULL) !=
        SQLITE_OK)
        return sql_fail(l, err);
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, step);
    sqlite3_bind_int64(st, 3, b);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t i = sqlite3_column_int64(st, 0);
        if (!minutes)
            i = (i - a) / step; /* the row's time: its bucket */
        if (i < 0 || i >= n)
            continue;
        struct point *p = &pts[i];
        int tier = ea__ledger_tier_parse((const char *)sqlite3_column_text(st, 1));
        if (tier < 0)
            tier = EA_TIER_CLOUD; /* as tier_of */
        double cost = sqlite3_column_double(st, 5);
        p->requests[tier] += (uint64_t)sqlite3_column_int64(st, 2);
        p->errors += (uint64_t)sqlite3_column_int64(st, 3);
        p->fallbacks += (uint64_t)sqlite3_column_int64(st, 4);
        p->cost += cost;
        if (tier == EA_TIER_CLOUD)
            p->cloud_cost += cost;
        p->counterfactual += sqlite3_column_double(st, 6);
    }
    ea_status s = rc == SQLITE_DONE ? EA_OK : sql_fail(l, err);
    sqlite3_finalize(st);
    return s;
}

ea_status ea_ledger_series_json(ea_ledger *l, int64_t since_ms, int64_t until_ms, int64_t step_ms,
                                char **json, struct ea_error *err)
{
    *json = NULL;
    if (!l)
        return ea_error_set(err, EA_EINVAL, "ledger series: no ledger");
    if (!until_ms)
        until_ms = ea__ledger_now(l);
    if (step_ms < EA__MS_PER_SECOND || step_ms % EA__MS_PER_SECOND || step_ms > EA_LEDGER_SERIES_MAX_STEP_MS ||
        since_ms < 0 || until_ms <= since_ms)
        return ea_error_set(err, EA_EINVAL, "ledger series: the step must be whole seconds (at most "
                            "a week) and the window not empty");
    /* buckets [t0 + i step, t0 + (i + 1) step), on multiples of the step */
    int64_t t0 = since_ms / step_ms * step_ms;
    int64_t t1 = until_ms / step_ms * step_ms + (until_ms % step_ms != 0) * step_ms;
    int64_t n = (t1 - t0) / step_ms;
    if (n > EA_LEDGER_SERIES_MAX)
        return ea_error_set(err, EA_EINVAL, "ledger series: more than %d points: take a longer step",
                            EA_LEDGER_SERIES_MAX);
    struct point *pts = ea_calloc((size_t)n, sizeof *pts);
    if (!pts)
        return ea_error_set(err, EA_ENOMEM, "ledger series: out of memory");
    bool minutes = step_ms % EA__MS_PER_MINUTE == 0; /* then t0 and t1 are whole minutes too */
    pthread_mutex_lock(&l->rmu);
    ea_status s = minutes ? series_scan(l, true, t0 / EA__MS_PER_MINUTE, step_ms / EA__MS_PER_MINUTE,
                                        t1 / EA__MS_PER_MINUTE, pts, n, err)
                          : series_scan(l, false, t0, step_ms, t1, pts, n, err);
    pthread_mutex_unlock(&l->rmu);
    struct ea_buf b;
    ea__buf_init(&b, REPORT_JSON_MAX);
    if (!s)
        s = ea__buf_printf(&b, "{\"since_ms\":%lld,\"until_ms\":%lld,\"step_ms\":%lld,\"points\":[",
                           (long long)t0, (long long)t1, (long long)step_ms);
    for (int64_t i = 0; i < n && !s; i++) {
        const struct point *p = &pts[i];
        s = ea__buf_printf(&b, "%s{\"t\":%lld,\"requests\":{\"device\":%llu,\"edge-node\":%llu,\"cloud\":%llu},"
                           "\"errors\":%llu,\"fallbacks\":%llu,\"cost_usd\":%.17g,\"cloud_cost_usd\":%.17g,"
                           "\"counterfactual_usd\":%.17g,\"savings_usd\":%.17g}",
                           i ? "," : "", (long long)(t0 + i * step_ms),
                           (unsigned long long)p->requests[0], (unsigned long long)p->requests[1],
                           (unsigned long long)p->requests[2], (unsigned long long)p->errors,
                           (unsigned long long)p->fallbacks, p->cost, p->cloud_cost, p->counterfactual,
                           p->counterfactual - p->cost);
    }
    if (!s)
        s = ea__buf_puts(&b, "]}");
    ea_free(pts);
    if (s) {
        ea__buf_release(&b);
        return err && err->status ? s : ea_error_set(err, s, "ledger series: out of memory");
    }
    *json = ea__buf_steal(&b);
    return EA_OK;
}

/* ---- state ------------------------------------------------------------------- */

#define STATE_BUDGETS_MAX 1024 /* caps listed (global and per task, two periods each) */

ea_status ea_ledger_state_json(ea_ledger *l, char **json, struct ea_error *err)
{
    *json = NULL;
    if (!l)
        return ea_error_set(err, EA_EINVAL, "ledger state: no ledger");
    struct ea_ledger_stats st;
    ea_ledger_stats(l, &st);
    size_t n = ea_ledger_budget_states(l, NULL, 0);
    if (n > STATE_BUDGETS_MAX)
        n = STATE_BUDGETS_MAX;
    struct ea_ledger_budget_state *bs = n ? ea_calloc(n, sizeof *bs) : NULL;
    if (n && !bs)
        return ea_error_set(err, EA_ENOMEM, "ledger state: out of memory");
    size_t got = n ? ea_ledger_budget_states(l, bs, n) : 0;
    if (got < n)
        n = got; /* a cap can only be listed or not: the configuration is fixed */
    struct ea_buf b;
    ea__buf_init(&b, REPORT_JSON_MAX);
    ea_status s = ea__buf_printf(&b, "{\"enabled\":true,\"rows\":{\"written\":%llu,\"dropped\":%llu,"
                                 "\"failed\":%llu,\"rejected\":%llu,\"queued\":%llu},\"reference_model\":",
                                 (unsigned long long)st.written, (unsigned long long)st.dropped,
                                 (unsigned long long)st.failed, (unsigned long long)st.rejected,
                                 (unsigned long long)st.queued);
    const char *ref = l->cfg.has_reference ? l->cfg.reference_model : NULL;
    if (!s)
        s = ref ? ea__buf_json_str(&b, ref, strlen(ref)) : ea__buf_puts(&b, "null");
    if (!s)
        s = ea__buf_puts(&b, ",\"budgets\":[");
    for (size_t i = 0; i < n && !s; i++) {
        s = ea__buf_puts(&b, i ? ",{\"task\":" : "{\"task\":");
        if (!s)
            s = bs[i].task[0] ? ea__buf_json_str(&b, bs[i].task, strlen(bs[i].task)) : ea__buf_puts(&b, "null");
        if (!s)
            s = ea__buf_printf(&b, ",\"period\":\"%s\",\"action\":\"%s\",",
                               bs[i].period == EA_BUDGET_DAILY ? "daily" : "monthly",
                               bs[i].action == EA_BUDGET_EDGE ? "edge" : "reject");
        if (!s)
            s = num(&b, "cap_usd", bs[i].cap_usd);
        if (!s)
            s = ea__buf_putc(&b, ',');
        if (!s)
            s = num(&b, "spent_usd", bs[i].spent_usd);
        if (!s)
            s = ea__buf_putc(&b, ',');
        if (!s)
            s = num(&b, "reserved_usd", bs[i].reserved_usd);
        if (!s)
            s = ea__buf_putc(&b, '}');
    }
    if (!s)
        s = ea__buf_puts(&b, "]}");
    ea_free(bs);
    if (s) {
        ea__buf_release(&b);
        return ea_error_set(err, s, "ledger state: out of memory");
    }
    *json = ea__buf_steal(&b);
    return EA_OK;
}
