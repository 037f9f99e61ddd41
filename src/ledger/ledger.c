/* ledger.c - the ledger's database and its writer: opening (and creating)
 * data_dir/ledger.db in WAL mode with the schema of docs/LEDGER.md, the
 * bounded queue ea_ledger_record fills without ever waiting for the disk,
 * and the thread that drains it in batched transactions (every
 * commit_ms, the rows being durable in the journal already, or at once
 * for a row whose journal write failed and for a flush), the journal's
 * replay at open.
 *
 * A row holds identifiers (task, upstream, model, outcome code, entity
 * type names, each checked against a small alphabet) and figures; the
 * struct has no text field, so prompts and completions cannot reach the
 * file. Durability: WAL with synchronous=NORMAL: a committed row survives
 * the process being killed; a power cut may lose the last commits, never
 * the file's consistency.
 * Does not hold: configuration parsing and pricing (config.c), budgets
 * (budget.c), reports (report.c), the journal's files (journal.c).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ledger/ledger_int.h"
#include "util/buf.h"
#include "util/threadpool.h"

#define LEDGER_APPLICATION_ID 0x45414c47 /* 'EALG' in PRAGMA application_id */
#define LEDGER_SCHEMA_VERSION 2 /* 2: requests.request_id */
#define PRIVACY_JSON_MAX 1024           /* 16 types x (24-byte name + count) fits */

static const char *const tier_names[] = {"device", "edge-node", "cloud"};

const char *ea__ledger_tier_name(enum ea_upstream_tier t)
{
    return (unsigned)t < 3 ? tier_names[t] : "?";
}

int ea__ledger_tier_parse(const char *s)
{
    /* one comparison per row of a report: the first letter picks the name */
    int i = !s ? -1 : s[0] == 'd' ? EA_TIER_DEVICE : s[0] == 'e' ? EA_TIER_EDGE_NODE
                    : s[0] == 'c' ? EA_TIER_CLOUD : -1;
    return i >= 0 && !strcmp(s, tier_names[i]) ? i : -1;
}

/* ---- time ---------------------------------------------------------------- */

int64_t ea__ledger_now(const ea_ledger *l)
{
    if (l && l->clock_ms)
        return l->clock_ms(l->clock_ud);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int64_t ea__ledger_day(int64_t t_ms) { return floor_div(t_ms, EA__MS_PER_DAY); }
int64_t ea__ledger_minute(int64_t t_ms) { return floor_div(t_ms, EA__MS_PER_MINUTE); }

static struct tm utc(int64_t t_ms)
{
    time_t s = (time_t)floor_div(t_ms, 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    return tm;
}

int64_t ea__ledger_month(int64_t t_ms)
{
    struct tm tm = utc(t_ms);
    return (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon;
}

int64_t ea__ledger_month_start(int64_t t_ms)
{
    struct tm tm = utc(t_ms);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    return (int64_t)timegm(&tm) * 1000;
}

/* ---- rows ---------------------------------------------------------------- */

void ea_ledger_row_init(struct ea_ledger_row *row)
{
    memset(row, 0, sizeof *row);
    memcpy(row->outcome, "ok", 3);
    row->ttft_ms = -1;
    row->attempts = 1;
}

static bool in_alphabet(const char *s, size_t max, const char *alphabet)
{
    size_t n = strnlen(s, max + 1);
    return n <= max && strspn(s, alphabet) == n;
}

#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
#define MODEL_CHARS NAME_CHARS ":/@+"
#define CODE_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_"

static bool figure_ok(double v) { return isfinite(v) && v >= 0; }

ea_status ea_ledger_row_check(const struct ea_ledger_row *row, struct ea_error *err)
{
    if (!in_alphabet(row->request_id, EA_LEDGER_REQUEST_ID_MAX, NAME_CHARS))
        return ea_error_set(err, EA_EINVAL, "ledger row: request_id is not an id ([A-Za-z0-9._-], at most %d)",
                            EA_LEDGER_REQUEST_ID_MAX);
    if (!in_alphabet(row->task, EA_LEDGER_NAME_MAX, NAME_CHARS))
        return ea_error_set(err, EA_EINVAL, "ledger row: task is not a name ([A-Za-z0-9._-], at most %d)",
                            EA_LEDGER_NAME_MAX);
    if (!in_alphabet(row->upstream, EA_LEDGER_NAME_MAX, NAME_CHARS))
        return ea_error_set(err, EA_EINVAL, "ledger row: upstream is not a name ([A-Za-z0-9._-], at most %d)",
                            EA_LEDGER_NAME_MAX);
    if (!in_alphabet(row->model, EA_LEDGER_MODEL_MAX, MODEL_CHARS))
        return ea_error_set(err, EA_EINVAL, "ledger row: model is not a model id ([A-Za-z0-9._:/@+-], at most %d)",
                            EA_LEDGER_MODEL_MAX);
    if (!row->outcome[0] || !in_alphabet(row->outcome, EA_LEDGER_OUTCOME_MAX, CODE_CHARS))
        return ea_error_set(err, EA_EINVAL, "ledger row: outcome is not 'ok' or a code ([a-z0-9_], 1 to %d)",
                            EA_LEDGER_OUTCOME_MAX);
    if ((unsigned)row->tier > EA_TIER_CLOUD)
        return ea_error_set(err, EA_EINVAL, "ledger row: tier %d is not a tier", (int)row->tier);
    if (row->n_entities > EA_LEDGER_ENTITY_TYPES)
        return ea_error_set(err, EA_EINVAL, "ledger row: more than %d entity types", EA_LEDGER_ENTITY_TYPES);
    for (uint32_t i = 0; i < row->n_entities; i++) {
        const char *t = row->entities[i].type;
        if (!t[0] || !in_alphabet(t, EA_LEDGER_ENTITY_NAME_MAX, CODE_CHARS))
            return ea_error_set(err, EA_EINVAL, "ledger row: entities[%u] type is not a name ([a-z0-9_], 1 to %d)",
                                (unsigned)i, EA_LEDGER_ENTITY_NAME_MAX);
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(t, row->entities[j].type))
                return ea_error_set(err, EA_EINVAL, "ledger row: entity type '%s' is given twice", t);
    }
    if (row->time_ms < 0)
        return ea_error_set(err, EA_EINVAL, "ledger row: time_ms is negative");
    if (!isfinite(row->ttft_ms) || !figure_ok(row->total_ms))
        return ea_error_set(err, EA_EINVAL, "ledger row: a latency is negative or not finite");
    if (!figure_ok(row->price.input_per_mtok) || !figure_ok(row->price.output_per_mtok) ||
        row->price.input_per_mtok > EA_LEDGER_MAX_USD || row->price.output_per_mtok > EA_LEDGER_MAX_USD)
        return ea_error_set(err, EA_EINVAL, "ledger row: a price is negative, too large or not finite");
    return EA_OK;
}

/* ---- configuration copy -------------------------------------------------- */

static ea_status dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (src && !(*dst = ea_strdup(src)))
        return EA_ENOMEM;
    return EA_OK;
}

ea_status ea__ledger_config_copy(struct ea_ledger_config *dst, const struct ea_ledger_config *src)
{
    ea_ledger_config_init(dst);
    if (!src)
        return EA_OK;
    struct ea_ledger_config c = *src;
    c.data_dir = c.reference_model = c.sync_endpoint = c.sync_api_key_env = NULL;
    c.tasks = NULL;
    c.n_tasks = 0;
    *dst = c;
    if (dup_opt(&dst->data_dir, src->data_dir) || dup_opt(&dst->reference_model, src->reference_model) ||
        dup_opt(&dst->sync_endpoint, src->sync_endpoint) ||
        dup_opt(&dst->sync_api_key_env, src->sync_api_key_env))
        goto out_nomem;
    if (src->n_tasks && !(dst->tasks = ea_calloc(src->n_tasks, sizeof *dst->tasks)))
        goto out_nomem;
    for (size_t i = 0; i < src->n_tasks; i++) {
        dst->tasks[i] = src->tasks[i];
        dst->tasks[i].task = NULL;
        dst->n_tasks = i + 1;
        if (dup_opt(&dst->tasks[i].task, src->tasks[i].task))
            goto out_nomem;
    }
    return EA_OK;
out_nomem:
    ea_ledger_config_release(dst);
    return EA_ENOMEM;
}

/* ---- the database -------------------------------------------------------- */

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS requests ("
    " id INTEGER PRIMARY KEY,"
    " time_ms INTEGER NOT NULL,"
    " request_id TEXT NOT NULL DEFAULT '',"
    " task TEXT NOT NULL,"
    " tier TEXT NOT NULL,"
    " upstream TEXT NOT NULL,"
    " model TEXT NOT NULL,"
    " prompt_tokens INTEGER NOT NULL,"
    " completion_tokens INTEGER NOT NULL,"
    " cached_prompt_tokens INTEGER NOT NULL,"
    " estimated INTEGER NOT NULL,"
    " ttft_ms REAL,"
    " total_ms REAL NOT NULL,"
    " outcome TEXT NOT NULL,"
    " fallbacks INTEGER NOT NULL,"
    " hedges INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " privacy TEXT NOT NULL,"
    " cost_usd REAL NOT NULL,"
    " counterfactual_usd REAL NOT NULL);"
    "CREATE INDEX IF NOT EXISTS requests_time ON requests(time_ms);"
    /* the sums of the rows per UTC minute, written in the same transaction
     * as the rows: reports and the budgets' read-back sum these instead of
     * every row */
    "CREATE TABLE IF NOT EXISTS rollup_minute ("
    " minute INTEGER NOT NULL,"
    " tier TEXT NOT NULL,"
    " task TEXT NOT NULL,"
    " upstream TEXT NOT NULL,"
    " requests INTEGER NOT NULL,"
    " ok INTEGER NOT NULL,"
    " estimated INTEGER NOT NULL,"
    " fallbacks INTEGER NOT NULL,"
    " requests_with_fallback INTEGER NOT NULL,"
    " hedges INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " prompt_tokens INTEGER NOT NULL,"
    " completion_tokens INTEGER NOT NULL,"
    " cached_prompt_tokens INTEGER NOT NULL,"
    " cost_usd REAL NOT NULL,"
    " counterfactual_usd REAL NOT NULL,"
    " PRIMARY KEY (minute, tier, task, upstream)) WITHOUT ROWID;"
    /* privacy entity counts per UTC minute and type, the same way */
    "CREATE TABLE IF NOT EXISTS rollup_privacy ("
    " minute INTEGER NOT NULL,"
    " type TEXT NOT NULL,"
    " count INTEGER NOT NULL,"
    " PRIMARY KEY (minute, type)) WITHOUT ROWID;"
    /* the summary sync: summaries waiting to be sent, in order, and where
     * the last one ended (sync.c) */
    "CREATE TABLE IF NOT EXISTS sync_outbox ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " idempotency_key TEXT NOT NULL UNIQUE,"
    " body TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS sync_state (key TEXT PRIMARY KEY, value) WITHOUT ROWID;";

static const char insert_sql[] =
    "INSERT INTO requests (time_ms, request_id, task, tier, upstream, model, prompt_tokens,"
    " completion_tokens, cached_prompt_tokens, estimated, ttft_ms, total_ms, outcome,"
    " fallbacks, hedges, attempts, privacy, cost_usd, counterfactual_usd)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

static const char rollup_sql[] =
    "INSERT INTO rollup_minute (minute, tier, task, upstream, requests, ok, estimated, fallbacks,"
    " requests_with_fallback, hedges, attempts, prompt_tokens, completion_tokens,"
    " cached_prompt_tokens, cost_usd, counterfactual_usd)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (minute, tier, task, upstream) DO UPDATE SET"
    " requests = requests + excluded.requests, ok = ok + excluded.ok,"
    " estimated = estimated + excluded.estimated, fallbacks = fallbacks + excluded.fallbacks,"
    " requests_with_fallback = requests_with_fallback + excluded.requests_with_fallback,"
    " hedges = hedges + excluded.hedges, attempts = attempts + excluded.attempts,"
    " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
    " completion_tokens = completion_tokens + excluded.completion_tokens,"
    " cached_prompt_tokens = cached_prompt_tokens + excluded.cached_prompt_tokens,"
    " cost_usd = cost_usd + excluded.cost_usd,"
    " counterfactual_usd = counterfactual_usd + excluded.counterfactual_usd";

static const char privacy_sql[] =
    "INSERT INTO rollup_privacy (minute, type, count) VALUES (?,?,?)"
    " ON CONFLICT (minute, type) DO UPDATE SET count = count + excluded.count";

static ea_status db_fail(struct ea_error *err, sqlite3 *db, const char *path, const char *doing)
{
    int code = db ? sqlite3_extended_errcode(db) : SQLITE_CANTOPEN;
    ea_status s = EA_EIO;
    if ((code & 0xFF) == SQLITE_NOTADB || (code & 0xFF) == SQLITE_CORRUPT)
        s = EA_EFORMAT;
    const char *hint = "";
    if ((code & 0xFF) == SQLITE_READONLY || (code & 0xFF) == SQLITE_CANTOPEN ||
        (code & 0xFF) == SQLITE_PERM)
        hint = " (the data directory and the file must be writable)";
    else if ((code & 0xFF) == SQLITE_FULL)
        hint = " (the disk is full)";
    return ea_error_set(err, s, "ledger %s: %s: %s%s", path, doing,
                        db ? sqlite3_errmsg(db) : "cannot open", hint);
}

static int64_t pragma_int(sqlite3 *db, const char *sql, bool *ok)
{
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    *ok = sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW;
    if (*ok)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The file holds an edgeagent ledger (or nothing yet): checked before any
 * write, so that pointing --data-dir at another SQLite file changes
 * nothing in it. */
static ea_status check_identity(sqlite3 *db, const char *path, bool *empty, struct ea_error *err)
{
    bool ok;
    int64_t app = pragma_int(db, "PRAGMA application_id", &ok);
    if (!ok)
        return db_fail(err, db, path, "reading the header");
    int64_t ver = pragma_int(db, "PRAGMA user_version", &ok);
    int64_t tables = pragma_int(db, "SELECT count(*) FROM sqlite_schema", &ok);
    if (!ok)
        return db_fail(err, db, path, "reading the schema");
    *empty = app == 0 && tables == 0;
    if (*empty)
        return EA_OK;
    if (app != LEDGER_APPLICATION_ID)
        return ea_error_set(err, EA_EFORMAT, "ledger %s: the file is an SQLite database but not an "
                            "edgeagent ledger", path);
    if (ver > LEDGER_SCHEMA_VERSION)
        return ea_error_set(err, EA_EUNSUPPORTED, "ledger %s: schema version %lld is newer than this "
                            "edgeagent's (%d)", path, (long long)ver, LEDGER_SCHEMA_VERSION);
    return EA_OK;
}

static ea_status exec(sqlite3 *db, const char *path, const char *sql, const char *doing,
                      struct ea_error *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(err, db, path, doing);
    return EA_OK;
}

static ea_status open_db(const char *path, bool read_only, uint32_t busy_ms, sqlite3 **out,
                         struct ea_error *err)
{
    *out = NULL;
    int flags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        ea_status s = db_fail(err, db, path, "opening");
        sqlite3_close(db);
        return s;
    }
    sqlite3_busy_timeout(db, (int)busy_ms);
    /* reports scan the whole window: mapped pages save a copy per page */
    char mm[64];
    snprintf(mm, sizeof mm, "PRAGMA mmap_size=%lld", (long long)EA__LEDGER_MMAP_BYTES);
    sqlite3_exec(db, mm, NULL, NULL, NULL); /* advisory: a build without mmap ignores it */
    sqlite3_extended_result_codes(db, 1);
    *out = db;
    return EA_OK;
}

/* mkdir -p, mode 0700 for what it creates. */
static ea_status make_dirs(const char *dir, struct ea_error *err)
{
    char *p = ea_strdup(dir);
    if (!p)
        return ea_error_set(err, EA_ENOMEM, "out of memory");
    ea_status s = EA_OK;
    for (char *q = p + 1;; q++) {
        if (*q != '/' && *q)
            continue;
        char c = *q;
        *q = '\0';
        struct stat sb;
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            s = ea_error_set(err, EA_EIO, "ledger: cannot create the data directory %s: %s", p,
                             strerror(errno));
            break;
        }
        if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            s = ea_error_set(err, EA_EIO, "ledger: %s is not a directory", p);
            break;
        }
        *q = c;
        if (!c)
            break;
    }
    ea_free(p);
    return s;
}

static ea_status setup_writer_db(ea_ledger *l, struct ea_error *err)
{
    ea_status s;
    bool empty = false;
    if ((s = open_db(l->path, false, l->busy_ms, &l->wdb, err)) ||
        (s = check_identity(l->wdb, l->path, &empty, err)))
        return s;
    /* journal_mode=WAL writes the header: it fails here, at start, when the
     * file or the directory is read-only or the disk is full */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->wdb, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        s = db_fail(err, l->wdb, l->path, "switching to WAL");
        sqlite3_finalize(st);
        return s;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    bool wal = mode && !strcmp(mode, "wal");
    sqlite3_finalize(st);
    if (!wal)
        return ea_error_set(err, EA_EIO, "ledger %s: the file system does not support WAL mode", l->path);
    bool ok = true;
    int64_t ver = pragma_int(l->wdb, "PRAGMA user_version", &ok);
    /* version 1 files (no request_id) gain the column; tables that do not
     * exist yet are created whole below */
    bool has_requests = ok && pragma_int(l->wdb, "SELECT count(*) FROM sqlite_schema WHERE name = 'requests'", &ok) > 0;
    const char *upgrade = ok && has_requests && ver < 2
                              ? "ALTER TABLE requests ADD COLUMN request_id TEXT NOT NULL DEFAULT '';"
                              : "";
    char sql[sizeof schema_sql + 512]; /* the schema, an upgrade and four pragmas */
    snprintf(sql, sizeof sql, "PRAGMA synchronous=NORMAL; BEGIN IMMEDIATE; %s%s "
             "PRAGMA application_id=%d; PRAGMA user_version=%d; COMMIT;",
             upgrade, schema_sql, LEDGER_APPLICATION_ID, LEDGER_SCHEMA_VERSION);
    if (!ok || (s = exec(l->wdb, l->path, sql, "creating the schema", err))) {
        if (!ok)
            s = db_fail(err, l->wdb, l->path, "reading the schema version");
        sqlite3_exec(l->wdb, "ROLLBACK", NULL, NULL, NULL);
        return s;
    }
    if (sqlite3_prepare_v3(l->wdb, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &l->ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(l->wdb, rollup_sql, -1, SQLITE_PREPARE_PERSISTENT, &l->rollup, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(l->wdb, privacy_sql, -1, SQLITE_PREPARE_PERSISTENT, &l->privacy, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(l->wdb, "BEGIN IMMEDIATE", -1, SQLITE_PREPARE_PERSISTENT, &l->begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(l->wdb, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &l->commit, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(l->wdb, "INSERT OR REPLACE INTO sync_state (key, value) VALUES ('journal_seq', ?)", -1,
                           SQLITE_PREPARE_PERSISTENT, &l->watermark, NULL) != SQLITE_OK)
        return db_fail(err, l->wdb, l->path, "preparing the inserts");
    return EA_OK;
}

/* {"email":2,"phone":1}: entity type names (checked) and counts only. */
static void privacy_json(const struct ea_ledger_row *r, char *out, size_t size)
{
    size_t o = (size_t)snprintf(out, size, "{");
    for (uint32_t i = 0; i < r->n_entities && o < size; i++)
        o += (size_t)snprintf(out + o, size - o, "%s\"%s\":%u", i ? "," : "", r->entities[i].type,
                              (unsigned)r->entities[i].count);
    if (o < size)
        snprintf(out + o, size - o, "}");
}

static int bind_row(sqlite3_stmt *st, const struct ea_ledger_row *r)
{
    char privacy[PRIVACY_JSON_MAX];
    privacy_json(r, privacy, sizeof privacy);
    int rc = SQLITE_OK, i = 1;
#define B(call) \
    do { if (rc == SQLITE_OK) rc = (call); i++; } while (0)
    B(sqlite3_bind_int64(st, i, r->time_ms));
    B(sqlite3_bind_text(st, i, r->request_id, -1, SQLITE_STATIC));
    B(sqlite3_bind_text(st, i, r->task, -1, SQLITE_STATIC));
    B(sqlite3_bind_text(st, i, ea__ledger_tier_name(r->tier), -1, SQLITE_STATIC));
    B(sqlite3_bind_text(st, i, r->upstream, -1, SQLITE_STATIC));
    B(sqlite3_bind_text(st, i, r->model, -1, SQLITE_STATIC));
    B(sqlite3_bind_int64(st, i, r->prompt_tokens));
    B(sqlite3_bind_int64(st, i, r->completion_tokens));
    B(sqlite3_bind_int64(st, i, r->cached_prompt_tokens));
    B(sqlite3_bind_int(st, i, r->estimated));
    B(r->ttft_ms < 0 ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, r->ttft_ms));
    B(sqlite3_bind_double(st, i, r->total_ms));
    B(sqlite3_bind_text(st, i, r->outcome, -1, SQLITE_STATIC));
    B(sqlite3_bind_int64(st, i, r->fallbacks));
    B(sqlite3_bind_int64(st, i, r->hedges));
    B(sqlite3_bind_int64(st, i, r->attempts));
    B(sqlite3_bind_text(st, i, privacy, -1, SQLITE_TRANSIENT));
    B(sqlite3_bind_double(st, i, r->cost_usd));
    B(sqlite3_bind_double(st, i, r->counterfactual_usd));
#undef B
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The batch's sums per (minute, tier, task, upstream), then one upsert
 * each. A batch's rows mostly share one minute and a few keys: the linear
 * search over at most EA__LEDGER_BATCH_MAX sums stays small. */
static bool same_key(const struct ea__rollup *a, const struct ea_ledger_row *r, int64_t minute)
{
    return a->minute == minute && a->tier == r->tier && !strcmp(a->task, r->task) &&
           !strcmp(a->upstream, r->upstream);
}

static int write_rollups(ea_ledger *l, const struct ea_ledger_row *rows, size_t n)
{
    size_t m = 0;
    struct ea__rollup *sums = l->sums;
    for (size_t i = 0; i < n; i++) {
        const struct ea_ledger_row *r = &rows[i];
        int64_t minute = ea__ledger_minute(r->time_ms);
        size_t k = m;
        while (k > 0 && !same_key(&sums[k - 1], r, minute))
            k--;
        struct ea__rollup *a;
        if (k == 0) {
            a = &sums[m++];
            memset(a, 0, sizeof *a);
            a->minute = minute;
            a->tier = r->tier;
            memcpy(a->task, r->task, sizeof a->task);
            memcpy(a->upstream, r->upstream, sizeof a->upstream);
        } else {
            a = &sums[k - 1];
        }
        a->requests++;
        a->ok += !strcmp(r->outcome, "ok");
        a->estimated += r->estimated;
        a->fallbacks += r->fallbacks;
        a->requests_with_fallback += r->fallbacks > 0;
        a->hedges += r->hedges;
        a->attempts += r->attempts;
        a->prompt_tokens += r->prompt_tokens;
        a->completion_tokens += r->completion_tokens;
        a->cached_prompt_tokens += r->cached_prompt_tokens;
        a->cost_usd += r->cost_usd;
        a->counterfactual_usd += r->counterfactual_usd;
    }
    sqlite3_stmt *st = l->rollup;
    int rc = SQLITE_OK;
    for (size_t k = 0; k < m && rc == SQLITE_OK; k++) {
        const struct ea__rollup *a = &sums[k];
        int i = 1;
#define B(call) \
    do { if (rc == SQLITE_OK) rc = (call); i++; } while (0)
        B(sqlite3_bind_int64(st, i, a->minute));
        B(sqlite3_bind_text(st, i, ea__ledger_tier_name(a->tier), -1, SQLITE_STATIC));
        B(sqlite3_bind_text(st, i, a->task, -1, SQLITE_STATIC));
        B(sqlite3_bind_text(st, i, a->upstream, -1, SQLITE_STATIC));
        B(sqlite3_bind_int64(st, i, (int64_t)a->requests));
        B(sqlite3_bind_int64(st, i, (int64_t)a->ok));
        B(sqlite3_bind_int64(st, i, (int64_t)a->estimated));
        B(sqlite3_bind_int64(st, i, (int64_t)a->fallbacks));
        B(sqlite3_bind_int64(st, i, (int64_t)a->requests_with_fallback));
        B(sqlite3_bind_int64(st, i, (int64_t)a->hedges));
        B(sqlite3_bind_int64(st, i, (int64_t)a->attempts));
        B(sqlite3_bind_int64(st, i, (int64_t)a->prompt_tokens));
        B(sqlite3_bind_int64(st, i, (int64_t)a->completion_tokens));
        B(sqlite3_bind_int64(st, i, (int64_t)a->cached_prompt_tokens));
        B(sqlite3_bind_double(st, i, a->cost_usd));
        B(sqlite3_bind_double(st, i, a->counterfactual_usd));
#undef B
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    return rc;
}

/* The batch's entity counts per (minute, type), then one upsert each. */
static int write_privacy(ea_ledger *l, const struct ea_ledger_row *rows, size_t n)
{
    size_t m = 0;
    struct ea__entity_sum *sums = l->entity_sums;
    for (size_t i = 0; i < n; i++) {
        int64_t minute = ea__ledger_minute(rows[i].time_ms);
        for (uint32_t j = 0; j < rows[i].n_entities; j++) {
            const struct ea_ledger_entity_count *e = &rows[i].entities[j];
            size_t k = m;
            while (k > 0 && !(sums[k - 1].minute == minute && !strcmp(sums[k - 1].type, e->type)))
                k--;
            if (k == 0) {
                sums[m].minute = minute;
                memcpy(sums[m].type, e->type, sizeof sums[m].type);
                sums[m].count = 0;
                k = ++m;
            }
            sums[k - 1].count += e->count;
        }
    }
    int rc = SQLITE_OK;
    for (size_t k = 0; k < m && rc == SQLITE_OK; k++) {
        sqlite3_bind_int64(l->privacy, 1, sums[k].minute);
        sqlite3_bind_text(l->privacy, 2, sums[k].type, -1, SQLITE_STATIC);
        sqlite3_bind_int64(l->privacy, 3, (int64_t)sums[k].count);
        rc = sqlite3_step(l->privacy);
        sqlite3_reset(l->privacy);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    return rc;
}

/* Runs a prepared statement without results (BEGIN, COMMIT): SQLITE_OK
 * or the error. */
static int step_once(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* One transaction for the batch (rows and their sums, and top_seq, the
 * newest journal sequence number among them, 0 = none); on failure nothing
 * of it is kept. *busy: it failed because another connection held the
 * write lock past the busy timeout (worth another try). */
static bool write_batch(ea_ledger *l, const struct ea_ledger_row *rows, size_t n, uint64_t top_seq, char *why,
                        size_t size, bool *busy)
{
    int rc = step_once(l->begin);
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
        rc = bind_row(l->ins, &rows[i]);
    if (rc == SQLITE_OK)
        rc = write_rollups(l, rows, n);
    if (rc == SQLITE_OK)
        rc = write_privacy(l, rows, n);
    if (rc == SQLITE_OK && top_seq) { /* the journal's rows up to top_seq are in */
        rc = sqlite3_bind_int64(l->watermark, 1, (sqlite3_int64)top_seq);
        if (rc == SQLITE_OK)
            rc = step_once(l->watermark);
    }
    if (rc == SQLITE_OK)
        rc = step_once(l->commit);
    if (rc == SQLITE_OK)
        return true;
    *busy = (rc & 0xFF) == SQLITE_BUSY;
    snprintf(why, size, "ledger %s: writing %zu rows: %s%s", l->path, n, sqlite3_errmsg(l->wdb),
             (rc & 0xFF) == SQLITE_FULL ? " (the disk is full)" : "");
    if (!sqlite3_get_autocommit(l->wdb))
        sqlite3_exec(l->wdb, "ROLLBACK", NULL, NULL, NULL);
    return false;
}

/* Under qmu, rows queued: journaled rows are durable already, so the batch
 * waits up to commit_ms for more rows (one transaction for many) unless a
 * queued row waits for its commit, a flush waits, the batch is full or the
 * ledger stops. */
static void linger_locked(ea_ledger *l)
{
    if (!l->commit_ms)
        return;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += (long)(l->commit_ms % 1000) * 1000000L;
    dl.tv_sec += l->commit_ms / 1000 + dl.tv_nsec / 1000000000L;
    dl.tv_nsec %= 1000000000L;
    while (!l->stop && !l->waiting && !l->flushers && l->count < EA__LEDGER_BATCH_MAX)
        if (pthread_cond_timedwait(&l->qcond, &l->qmu, &dl) == ETIMEDOUT)
            break;
}

static void *writer_main(void *arg)
{
    ea_ledger *l = arg;
    char why[EA_ERROR_MSG_MAX];
    /* at a lower priority a batch runs between the forward pass's steps
     * instead of stalling one (docs/BENCHMARKS.md, the ledger's throughput) */
    ea__thread_background(EA__LEDGER_WRITER_NICE);
    pthread_mutex_lock(&l->qmu);
    for (;;) {
        while (!l->count && !l->stop)
            pthread_cond_wait(&l->qcond, &l->qmu);
        if (!l->count)
            break; /* stopped and drained */
        linger_locked(l);
        size_t n = l->count < EA__LEDGER_BATCH_MAX ? l->count : EA__LEDGER_BATCH_MAX;
        uint64_t top = 0;
        for (size_t i = 0; i < n; i++) {
            l->batch[i] = l->ring[(l->head + i) % l->cap];
            l->batch_done[i] = l->ring_done[(l->head + i) % l->cap];
            if (l->batch_done[i].seq)
                top = l->batch_done[i].seq;
            l->waiting -= l->batch_done[i].fn != NULL;
        }
        l->head = (l->head + n) % l->cap;
        l->count -= n;
        pthread_mutex_unlock(&l->qmu);
        /* another process holding the write lock (a sqlite3 shell, a
         * backup) is waited out a few busy timeouts before the batch is
         * given up; meanwhile the queue fills and drops are counted */
        bool ok = false, busy = true;
        for (int attempt = 0; !ok && busy && attempt < EA__LEDGER_BUSY_TRIES; attempt++)
            ok = write_batch(l, l->batch, n, top, why, sizeof why, &busy);
        pthread_mutex_lock(&l->qmu);
        if (ok) {
            l->st.written += n;
            l->st.batches++;
            if (top) {
                l->committed_seq = top;
                ea__journal_release(&l->j, top);
            }
        } else {
            l->st.failed += n;
            snprintf(l->st.last_error, sizeof l->st.last_error, "%s", why);
        }
        l->finished += n;
        pthread_cond_broadcast(&l->donecond);
        pthread_mutex_unlock(&l->qmu);
        for (size_t i = 0; i < n; i++)
            if (l->batch_done[i].fn)
                l->batch_done[i].fn(l->batch_done[i].user, ok);
        pthread_mutex_lock(&l->qmu);
    }
    pthread_mutex_unlock(&l->qmu);
    return NULL;
}

/* ---- open / close ---------------------------------------------------------- */

static char *join_path(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = ea_malloc(n);
    if (p)
        snprintf(p, n, "%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", file);
    return p;
}

/* Replay state: rows of the journal past the database's mark, in batches. */
struct replay {
    ea_ledger *l;
    uint64_t mark, top;
    size_t n;
    bool failed;
    char why[EA_ERROR_MSG_MAX];
};

static bool replay_batch(struct replay *rp)
{
    bool busy = false;
    if (rp->n && !write_batch(rp->l, rp->l->batch, rp->n, rp->top, rp->why, sizeof rp->why, &busy))
        rp->failed = true;
    rp->l->st.replayed += rp->failed ? 0 : rp->n;
    rp->n = 0;
    return !rp->failed;
}

static void replay_row(void *ud, uint64_t seq, const struct ea_ledger_row *row)
{
    struct replay *rp = ud;
    if (seq <= rp->mark || rp->failed)
        return;
    rp->l->batch[rp->n++] = *row;
    if (seq > rp->top)
        rp->top = seq;
    if (rp->n == EA__LEDGER_BATCH_MAX)
        replay_batch(rp);
}

/* Opens the journal, commits the rows it holds past the database's mark
 * (journal_seq) and empties it. */
static ea_status journal_start(ea_ledger *l, struct ea_error *err)
{
    ea_status s = ea__journal_open(&l->j, l->dir, err);
    if (s)
        return s;
    bool ok;
    int64_t mark = pragma_int(l->wdb, "SELECT value FROM sync_state WHERE key = 'journal_seq'", &ok);
    struct replay rp = {.l = l, .mark = ok && mark > 0 ? (uint64_t)mark : 0};
    if ((s = ea__journal_read(&l->j, replay_row, &rp, &l->st.journal_unreadable, err)))
        return s;
    if (!replay_batch(&rp))
        return ea_error_set(err, EA_EIO, "%s (replaying the journal; it is kept for the next start)", rp.why);
    l->seq = l->committed_seq = rp.top > rp.mark ? rp.top : rp.mark;
    return ea__journal_reset(&l->j, err);
}

ea_status ea_ledger_open(const char *data_dir, const struct ea_ledger_options *opts,
                         ea_ledger **out, struct ea_error *err)
{
    *out = NULL;
    if (!data_dir || !*data_dir)
        return ea_error_set(err, EA_EINVAL, "ledger: no data directory given");
    struct ea_ledger_options o = {0};
    if (opts)
        o = *opts;
    ea_ledger *l = ea_calloc(1, sizeof *l);
    if (!l)
        return ea_error_set(err, EA_ENOMEM, "out of memory");
    pthread_mutex_init(&l->rmu, NULL);
    pthread_mutex_init(&l->qmu, NULL);
    pthread_mutex_init(&l->bmu, NULL);
    pthread_cond_init(&l->qcond, NULL);
    pthread_cond_init(&l->donecond, NULL);
    l->j.fd[0] = l->j.fd[1] = -1;
    l->read_only = o.read_only;
    l->commit_ms = o.commit_interval_ms ? o.commit_interval_ms : EA__LEDGER_COMMIT_MS;
    l->clock_ms = o.clock_ms;
    l->clock_ud = o.clock_ud;
    l->busy_ms = o.busy_timeout_ms ? o.busy_timeout_ms : EA__LEDGER_BUSY_MS;
    ea_status s;
    if (ea__ledger_config_copy(&l->cfg, o.config) || !(l->dir = ea_strdup(data_dir)) ||
        !(l->path = join_path(data_dir, EA__LEDGER_FILE))) {
        s = ea_error_set(err, EA_ENOMEM, "out of memory");
        goto out_close;
    }
    if (l->read_only) {
        struct stat sb;
        if (stat(l->path, &sb) != 0) {
            s = ea_error_set(err, errno == ENOENT ? EA_ENOTFOUND : EA_EIO,
                             "ledger %s: %s (a server with this data directory writes it)", l->path,
                             strerror(errno));
            goto out_close;
        }
        bool empty;
        if ((s = open_db(l->path, true, l->busy_ms, &l->rdb, err)) || (s = check_identity(l->rdb, l->path, &empty, err)))
            goto out_close;
        if (empty) {
            s = ea_error_set(err, EA_EFORMAT, "ledger %s: the file holds no ledger", l->path);
            goto out_close;
        }
        if ((s = ea__ledger_budget_init(l, l->rdb, err)))
            goto out_close;
        *out = l;
        return EA_OK;
    }
    if ((s = make_dirs(data_dir, err)) || (s = setup_writer_db(l, err)) ||
        (s = open_db(l->path, false, l->busy_ms, &l->rdb, err)))
        goto out_close;
    l->cap = l->cfg.queue_rows ? l->cfg.queue_rows : EA_LEDGER_DEFAULT_QUEUE;
    if (!(l->ring = ea_calloc(l->cap, sizeof *l->ring)) ||
        !(l->batch = ea_calloc(EA__LEDGER_BATCH_MAX, sizeof *l->batch)) ||
        !(l->ring_done = ea_calloc(l->cap, sizeof *l->ring_done)) ||
        !(l->batch_done = ea_calloc(EA__LEDGER_BATCH_MAX, sizeof *l->batch_done)) ||
        !(l->sums = ea_calloc(EA__LEDGER_BATCH_MAX, sizeof *l->sums)) ||
        !(l->entity_sums = ea_calloc((size_t)EA__LEDGER_BATCH_MAX * EA_LEDGER_ENTITY_TYPES,
                                     sizeof *l->entity_sums))) {
        s = ea_error_set(err, EA_ENOMEM, "ledger: out of memory for a queue of %zu rows", l->cap);
        goto out_close;
    }
    /* the rows of a process that ended before committing them, then this
     * period's spend (which counts them) */
    if ((s = journal_start(l, err)) || (s = ea__ledger_budget_init(l, l->wdb, err)))
        goto out_close;
    if (ea__thread_start(&l->thread, writer_main, l) != 0) {
        s = ea_error_set(err, EA_EINTERNAL, "ledger: cannot start the writer thread");
        goto out_close;
    }
    l->thread_started = true;
    *out = l;
    return EA_OK;
out_close:
    ea_ledger_close(l);
    return s;
}

void ea_ledger_close(ea_ledger *l)
{
    if (!l)
        return;
    ea__ledger_sync_stop(l);
    if (l->thread_started) {
        pthread_mutex_lock(&l->qmu);
        l->stop = true;
        pthread_cond_signal(&l->qcond);
        pthread_mutex_unlock(&l->qmu);
        pthread_join(l->thread, NULL);
    }
    sqlite3_finalize(l->ins);
    sqlite3_finalize(l->rollup);
    sqlite3_finalize(l->privacy);
    sqlite3_finalize(l->begin);
    sqlite3_finalize(l->commit);
    sqlite3_finalize(l->watermark);
    if (l->j.fd[0] >= 0 && l->thread_started && l->committed_seq == l->seq) {
        struct ea_error e = {0};
        ea__journal_reset(&l->j, &e); /* every row is in the file: nothing to replay */
    }
    ea__journal_close(&l->j);
    sqlite3_close(l->wdb);
    sqlite3_close(l->rdb);
    ea__ledger_budget_release(l);
    ea_ledger_config_release(&l->cfg);
    ea_free(l->ring);
    ea_free(l->batch);
    ea_free(l->ring_done);
    ea_free(l->batch_done);
    ea_free(l->sums);
    ea_free(l->entity_sums);
    ea_free(l->dir);
    ea_free(l->path);
    pthread_mutex_destroy(&l->rmu);
    pthread_mutex_destroy(&l->qmu);
    pthread_mutex_destroy(&l->bmu);
    pthread_cond_destroy(&l->qcond);
    pthread_cond_destroy(&l->donecond);
    ea_free(l);
}

const char *ea_ledger_path(const ea_ledger *l) { return l ? l->path : ""; }

/* ---- record / flush / stats ----------------------------------------------- */

ea_status ea_ledger_record(ea_ledger *l, const struct ea_ledger_row *row, struct ea_error *err)
{
    return ea_ledger_record_notify(l, row, NULL, NULL, NULL, err);
}

ea_status ea_ledger_record_notify(ea_ledger *l, const struct ea_ledger_row *row, ea_ledger_done_fn done,
                                  void *user, bool *durable, struct ea_error *err)
{
    if (durable)
        *durable = false;
    if (!l || l->read_only)
        return ea_error_set(err, EA_ESTATE, "ledger: opened read-only");
    ea_status s = ea_ledger_row_check(row, err);
    if (s) {
        pthread_mutex_lock(&l->qmu);
        l->st.rejected++;
        pthread_mutex_unlock(&l->qmu);
        return s;
    }
    int64_t now = row->time_ms ? 0 : ea__ledger_now(l); /* the clock outside the lock */
    pthread_mutex_lock(&l->qmu);
    if (l->count == l->cap || l->stop) {
        l->st.dropped++;
        pthread_mutex_unlock(&l->qmu);
        return ea_error_set(err, EA_EOVERLOADED, "ledger: the write queue is full (%zu rows): row dropped",
                            l->cap);
    }
    size_t at = (l->head + l->count) % l->cap;
    struct ea_ledger_row *slot = &l->ring[at];
    *slot = *row;
    if (!slot->time_ms)
        slot->time_ms = now;
    ea_ledger_price_row(&l->cfg, slot);
    /* in the journal, the row is durable now; when it cannot be written
     * there (the disk is full), done waits for the commit */
    bool in_journal = ea__journal_append(&l->j, l->seq + 1, slot);
    if (in_journal)
        l->seq++;
    else
        l->st.journal_failed++;
    l->ring_done[at] = (struct ea__ledger_notify){in_journal ? NULL : done, user, in_journal ? l->seq : 0};
    bool wake = l->count == 0 || l->count + 1 == EA__LEDGER_BATCH_MAX || (!in_journal && done);
    l->waiting += !in_journal && done;
    l->count++;
    l->accepted++;
    if (wake) /* otherwise the writer is busy or lingering and will see it */
        pthread_cond_signal(&l->qcond);
    pthread_mutex_unlock(&l->qmu);
    if (durable)
        *durable = in_journal;
    return EA_OK;
}

ea_status ea_ledger_flush(ea_ledger *l, uint32_t timeout_ms)
{
    if (!l || !l->thread_started)
        return EA_OK;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    ea_status s = EA_OK;
    pthread_mutex_lock(&l->qmu);
    uint64_t target = l->accepted;
    l->flushers++; /* the writer stops lingering */
    pthread_cond_signal(&l->qcond);
    while (l->finished < target)
        if (pthread_cond_timedwait(&l->donecond, &l->qmu, &dl) == ETIMEDOUT) {
            s = l->finished < target ? EA_ETIMEOUT : EA_OK;
            break;
        }
    l->flushers--;
    pthread_mutex_unlock(&l->qmu);
    return s;
}

void ea_ledger_stats(ea_ledger *l, struct ea_ledger_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!l)
        return;
    pthread_mutex_lock(&l->qmu);
    *out = l->st;
    out->queued = l->accepted - l->finished; /* in the queue or in the batch being written */
    pthread_mutex_unlock(&l->qmu);
}
