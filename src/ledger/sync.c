/* sync.c - the summary sync: a thread that, every interval, sums the rows
 * committed since the last summary per task and source into one JSON
 * summary queued in sync_outbox (in the transaction that moves the cursor,
 * so every row is in exactly one summary), and POSTs the queue in order
 * with libcurl, one summary at a time, each with its Idempotency-Key.
 *
 * Only aggregates leave the device: counts, token and cost totals, latency
 * and TTFT histograms per (task, source). No text, no per-request rows.
 * A summary leaves the queue only after a 2xx; failures and timeouts are
 * retried (the same key: the receiver drops a repeat) with a doubling wait,
 * and nothing after it is sent before it. The queue, the cursor and the
 * ledger's id live in the database: a restart resumes where it stopped.
 * Does not hold: the rows (ledger.c), reports (report.c); the API key comes
 * from the caller (the CLI reads the environment) and is never logged.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ledger/ledger_int.h"
#include "util/buf.h"
#include "util/threadpool.h"

#define SYNC_BODY_MAX ((size_t)16 << 20)     /* one summary; groups are task x source */
#define SYNC_DEFAULT_TIMEOUT_MS 10000u
#define SYNC_DEFAULT_RETRY_MS 1000u
#define SYNC_HEADER_MAX 4096
#define SYNC_ID_BYTES 16

/* Cumulative histogram buckets (Prometheus "le"; +Inf is the group's
 * count): ea_ledger_hist_le_ms, which group_sql spells out. */
#define N_BOUNDS EA_LEDGER_HIST_BUCKETS

struct ea__sync {
    char *endpoint, *api_key, *ca_file;
    uint32_t interval_ms, timeout_ms, retry_ms;
    sqlite3 *db;
    char ledger_id[2 * SYNC_ID_BYTES + 1];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC */
    bool stop;
    struct ea_ledger_sync_stats st; /* under mu */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stopping(struct ea__sync *s)
{
    pthread_mutex_lock(&s->mu);
    bool v = s->stop;
    pthread_mutex_unlock(&s->mu);
    return v;
}

static void set_error(struct ea__sync *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void set_error(struct ea__sync *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&s->mu);
    vsnprintf(s->st.last_error, sizeof s->st.last_error, fmt, ap);
    pthread_mutex_unlock(&s->mu);
    va_end(ap);
}

/* ---- the database side ------------------------------------------------------ */

static bool state_get(sqlite3 *db, const char *key, int64_t *v)
{
    sqlite3_stmt *st = NULL;
    bool found = false;
    if (sqlite3_prepare_v2(db, "SELECT value FROM sync_state WHERE key = ?", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            *v = sqlite3_column_int64(st, 0);
            found = true;
        }
    }
    sqlite3_finalize(st);
    return found;
}

static int state_set(sqlite3 *db, const char *key, int64_t v, const char *text)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO sync_state (key, value) VALUES (?, ?)", -1,
                                &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (text)
            sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, 2, v);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The ledger's id (random, made once, kept in sync_state): the first half of
 * every idempotency key, so that keys of two devices never meet. */
static ea_status ledger_id(ea_ledger *l, struct ea__sync *s, struct ea_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM sync_state WHERE key = 'ledger_id'", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
        snprintf(s->ledger_id, sizeof s->ledger_id, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        return EA_OK;
    }
    sqlite3_finalize(st);
    unsigned char b[SYNC_ID_BYTES];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    bool ok = fd >= 0 && read(fd, b, sizeof b) == (ssize_t)sizeof b;
    if (fd >= 0)
        close(fd);
    if (!ok)
        return ea_error_set(err, EA_EIO, "ledger sync: cannot read /dev/urandom for the ledger's id");
    for (size_t i = 0; i < sizeof b; i++)
        snprintf(s->ledger_id + 2 * i, 3, "%02x", b[i]);
    if (state_set(s->db, "ledger_id", 0, s->ledger_id) != SQLITE_OK)
        return ea_error_set(err, EA_EIO, "ledger %s: sync: %s", l->path, sqlite3_errmsg(s->db));
    return EA_OK;
}

/* The <= bounds below are ea_ledger_hist_le_ms (report.c), in order. */
static const char group_sql[] =
    "SELECT task, tier, COUNT(*), SUM(outcome = 'ok'), SUM(estimated), SUM(fallbacks), SUM(hedges),"
    " SUM(attempts), SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_prompt_tokens),"
    " SUM(cost_usd), SUM(counterfactual_usd), SUM(total_ms), COUNT(ttft_ms), TOTAL(ttft_ms),"
    " SUM(total_ms <= 25), SUM(total_ms <= 50), SUM(total_ms <= 100), SUM(total_ms <= 250),"
    " SUM(total_ms <= 500), SUM(total_ms <= 1000), SUM(total_ms <= 2500), SUM(total_ms <= 5000),"
    " SUM(total_ms <= 10000), SUM(total_ms <= 30000), SUM(total_ms <= 60000),"
    " TOTAL(ttft_ms <= 25), TOTAL(ttft_ms <= 50), TOTAL(ttft_ms <= 100), TOTAL(ttft_ms <= 250),"
    " TOTAL(ttft_ms <= 500), TOTAL(ttft_ms <= 1000), TOTAL(ttft_ms <= 2500), TOTAL(ttft_ms <= 5000),"
    " TOTAL(ttft_ms <= 10000), TOTAL(ttft_ms <= 30000), TOTAL(ttft_ms <= 60000)"
    " FROM requests WHERE id > ? AND id <= ? GROUP BY task, tier ORDER BY task, tier";

static ea_status summary_json(sqlite3 *db, const char *id, int64_t seq, int64_t from_id, int64_t to_id,
                              int64_t start_ms, int64_t end_ms, struct ea_buf *b)
{
    ea_status s = ea__buf_printf(b, "{\"ledger_id\":\"%s\",\"seq\":%lld,\"idempotency_key\":\"%s-%lld\","
                                 "\"period\":{\"start_ms\":%lld,\"end_ms\":%lld},\"histogram_le_ms\":[",
                                 id, (long long)seq, id, (long long)seq, (long long)start_ms,
                                 (long long)end_ms);
    for (size_t i = 0; i < N_BOUNDS && !s; i++)
        s = ea__buf_printf(b, "%s%u", i ? "," : "", ea_ledger_hist_le_ms[i]);
    if (!s)
        s = ea__buf_puts(b, "],\"groups\":[");
    sqlite3_stmt *st = NULL;
    if (!s && sqlite3_prepare_v2(db, group_sql, -1, &st, NULL) != SQLITE_OK)
        s = EA_EIO;
    if (st) {
        sqlite3_bind_int64(st, 1, from_id);
        sqlite3_bind_int64(st, 2, to_id);
    }
    int rc = SQLITE_DONE;
    for (bool first = true; !s && (rc = sqlite3_step(st)) == SQLITE_ROW; first = false) {
        const char *task = (const char *)sqlite3_column_text(st, 0);
        const char *tier = (const char *)sqlite3_column_text(st, 1);
        s = ea__buf_puts(b, first ? "{\"task\":" : ",{\"task\":");
        if (!s)
            s = ea__buf_json_str(b, task ? task : "", task ? strlen(task) : 0);
        if (!s)
            s = ea__buf_puts(b, ",\"source\":");
        if (!s)
            s = ea__buf_json_str(b, tier ? tier : "", tier ? strlen(tier) : 0);
        long long u[10];
        for (int i = 0; i < 10; i++)
            u[i] = sqlite3_column_int64(st, 2 + i);
        if (!s)
            s = ea__buf_printf(b, ",\"requests\":%lld,\"ok\":%lld,\"errors\":%lld,\"estimated\":%lld,"
                               "\"fallbacks\":%lld,\"hedges\":%lld,\"attempts\":%lld,\"tokens\":{"
                               "\"prompt\":%lld,\"completion\":%lld,\"cached_prompt\":%lld},"
                               "\"cost_usd\":%.17g,\"counterfactual_usd\":%.17g,"
                               "\"latency_ms\":{\"count\":%lld,\"sum\":%.17g,\"le\":[",
                               u[0], u[1], u[0] - u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8],
                               sqlite3_column_double(st, 12), sqlite3_column_double(st, 13), u[0],
                               sqlite3_column_double(st, 14));
        for (size_t i = 0; i < N_BOUNDS && !s; i++)
            s = ea__buf_printf(b, "%s%lld", i ? "," : "", (long long)sqlite3_column_int64(st, 17 + (int)i));
        if (!s)
            s = ea__buf_printf(b, "]},\"ttft_ms\":{\"count\":%lld,\"sum\":%.17g,\"le\":[",
                               (long long)sqlite3_column_int64(st, 15), sqlite3_column_double(st, 16));
        for (size_t i = 0; i < N_BOUNDS && !s; i++)
            s = ea__buf_printf(b, "%s%lld", i ? "," : "",
                               (long long)sqlite3_column_double(st, 17 + (int)N_BOUNDS + (int)i));
        if (!s)
            s = ea__buf_puts(b, "]}}");
    }
    if (!s && rc != SQLITE_DONE)
        s = EA_EIO;
    sqlite3_finalize(st);
    if (!s)
        s = ea__buf_puts(b, "]}");
    return s;
}

/* One summary of the rows since the cursor, queued with the cursor moved,
 * in one transaction. No rows: nothing. */
static void summarize(ea_ledger *l, struct ea__sync *s)
{
    sqlite3 *db = s->db;
    struct ea_buf b;
    ea__buf_init(&b, SYNC_BODY_MAX);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        set_error(s, "ledger %s: sync: %s", l->path, sqlite3_errmsg(db));
        return;
    }
    int64_t cursor = 0, start_ms = 0, to_id = 0, seq = 0, now = ea__ledger_now(l);
    state_get(db, "cursor_id", &cursor);
    bool have_start = state_get(db, "cursor_ms", &start_ms);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT max(id), min(time_ms) FROM requests WHERE id > ?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_int64(st, 1, cursor);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
            to_id = sqlite3_column_int64(st, 0);
            if (!have_start)
                start_ms = sqlite3_column_int64(st, 1);
        }
    }
    sqlite3_finalize(st);
    if (to_id <= cursor) {
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        return;
    }
    char key[2 * SYNC_ID_BYTES + 32];
    bool ok = sqlite3_prepare_v2(db, "INSERT INTO sync_outbox (idempotency_key, body, created_ms) "
                                     "VALUES ('pending', '', ?)", -1, &st, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_int64(st, 1, now);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    if (ok) {
        seq = sqlite3_last_insert_rowid(db);
        snprintf(key, sizeof key, "%s-%lld", s->ledger_id, (long long)seq);
        ok = !summary_json(db, s->ledger_id, seq, cursor, to_id, start_ms, now, &b);
    }
    if (ok && (ok = sqlite3_prepare_v2(db, "UPDATE sync_outbox SET idempotency_key = ?, body = ? WHERE seq = ?",
                                       -1, &st, NULL) == SQLITE_OK)) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, b.data, (int)b.len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, seq);
        ok = sqlite3_step(st) == SQLITE_DONE;
    }
    sqlite3_finalize(st);
    ok = ok && state_set(db, "cursor_id", to_id, NULL) == SQLITE_OK &&
         state_set(db, "cursor_ms", now, NULL) == SQLITE_OK &&
         sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
    if (!ok) {
        set_error(s, "ledger %s: sync: making a summary: %s", l->path,
                  b.toobig ? "too large" : sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    } else {
        pthread_mutex_lock(&s->mu);
        s->st.made++;
        pthread_mutex_unlock(&s->mu);
    }
    ea__buf_release(&b);
}

static void count_waiting(struct ea__sync *s)
{
    sqlite3_stmt *st = NULL;
    int64_t n = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT COUNT(*) FROM sync_outbox", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    pthread_mutex_lock(&s->mu);
    s->st.waiting = (uint64_t)n;
    pthread_mutex_unlock(&s->mu);
}

/* ---- the HTTP side ------------------------------------------------------------ */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    return stopping(ud) ? 1 : 0; /* close() does not wait out a slow endpoint */
}

enum send_result { SEND_NONE, SEND_OK, SEND_FAILED };

/* POSTs the oldest queued summary; deletes it on a 2xx. */
static enum send_result send_one(ea_ledger *l, struct ea__sync *s)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT seq, idempotency_key, body FROM sync_outbox ORDER BY seq LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return SEND_NONE;
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return SEND_NONE;
    }
    int64_t seq = sqlite3_column_int64(st, 0);
    char *key = ea_strdup((const char *)sqlite3_column_text(st, 1));
    char *body = ea_strdup((const char *)sqlite3_column_text(st, 2));
    sqlite3_finalize(st);
    enum send_result r = SEND_FAILED;
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char line[SYNC_HEADER_MAX], cerr[CURL_ERROR_SIZE] = "";
    if (!key || !body || !c) {
        set_error(s, "ledger sync: out of memory");
        goto out;
    }
    snprintf(line, sizeof line, "Idempotency-Key: %s", key);
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, line);
    if (s->api_key) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", s->api_key);
        h = curl_slist_append(h, line);
        memset(line, 0, sizeof line);
    }
    curl_easy_setopt(c, CURLOPT_URL, s->endpoint);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)s->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    if (s->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_OK && status >= 200 && status < 300) {
        r = SEND_OK;
        if (sqlite3_prepare_v2(s->db, "DELETE FROM sync_outbox WHERE seq = ?", -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, seq);
            if (sqlite3_step(st) != SQLITE_DONE)
                set_error(s, "ledger %s: sync: %s", l->path, sqlite3_errmsg(s->db));
        }
        sqlite3_finalize(st);
    } else if (cc != CURLE_OK) {
        set_error(s, "ledger sync: summary %lld: %s", (long long)seq, cerr[0] ? cerr : curl_easy_strerror(cc));
    } else {
        set_error(s, "ledger sync: summary %lld: the endpoint answered HTTP %ld", (long long)seq, status);
    }
out:
    pthread_mutex_lock(&s->mu);
    if (r == SEND_OK)
        s->st.sent++;
    else
        s->st.failures++;
    pthread_mutex_unlock(&s->mu);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    ea_free(key);
    ea_free(body);
    return r;
}

/* Waits until deadline (monotonic ms) or stop; true when stopping. */
static bool wait_until(struct ea__sync *s, int64_t deadline)
{
    struct timespec ts = {(time_t)(deadline / 1000), (long)(deadline % 1000) * 1000000L};
    pthread_mutex_lock(&s->mu);
    while (!s->stop && mono_ms() < deadline)
        if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT)
            break;
    bool v = s->stop;
    pthread_mutex_unlock(&s->mu);
    return v;
}

struct sync_arg {
    ea_ledger *l;
    struct ea__sync *s;
};

static void *sync_main(void *arg)
{
    ea_ledger *l = ((struct sync_arg *)arg)->l;
    struct ea__sync *s = ((struct sync_arg *)arg)->s;
    ea_free(arg);
    int64_t next = mono_ms() + s->interval_ms;
    uint32_t backoff = s->retry_ms;
    count_waiting(s);
    for (;;) {
        if (stopping(s))
            break;
        if (mono_ms() >= next) {
            summarize(l, s);
            next = mono_ms() + s->interval_ms;
        }
        enum send_result r = SEND_NONE;
        while (!stopping(s) && (r = send_one(l, s)) == SEND_OK)
            backoff = s->retry_ms;
        count_waiting(s);
        int64_t until = next;
        if (r == SEND_FAILED) {
            until = mono_ms() + backoff;
            backoff = backoff > s->interval_ms / 2 ? s->interval_ms : backoff * 2;
        }
        if (wait_until(s, until))
            break;
    }
    /* a last summary of what was committed, kept for the next start */
    summarize(l, s);
    count_waiting(s);
    return NULL;
}

ea_status ea_ledger_sync_start(ea_ledger *l, const struct ea_ledger_sync_options *o, struct ea_error *err)
{
    if (!l || l->read_only || l->sync)
        return ea_error_set(err, EA_ESTATE, "ledger sync: %s",
                            !l || l->read_only ? "the ledger is read-only" : "already started");
    if (!o || !o->endpoint || (strncmp(o->endpoint, "http://", 7) && strncmp(o->endpoint, "https://", 8)) ||
        !o->interval_ms)
        return ea_error_set(err, EA_EINVAL, "ledger sync: needs an http:// or https:// endpoint and an interval");
    pthread_once(&curl_once, curl_init_once);
    struct ea__sync *s = ea_calloc(1, sizeof *s);
    struct sync_arg *arg = ea_malloc(sizeof *arg);
    ea_status st = EA_OK;
    if (!s || !arg || !(s->endpoint = ea_strdup(o->endpoint)) ||
        (o->api_key && !(s->api_key = ea_strdup(o->api_key))) ||
        (o->ca_file && !(s->ca_file = ea_strdup(o->ca_file)))) {
        st = ea_error_set(err, EA_ENOMEM, "out of memory");
        goto out_free;
    }
    s->interval_ms = o->interval_ms;
    s->timeout_ms = o->timeout_ms ? o->timeout_ms : SYNC_DEFAULT_TIMEOUT_MS;
    s->retry_ms = o->retry_ms ? o->retry_ms : SYNC_DEFAULT_RETRY_MS;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (sqlite3_open_v2(l->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        st = ea_error_set(err, EA_EIO, "ledger %s: sync: %s", l->path, sqlite3_errmsg(s->db));
        goto out_destroy;
    }
    sqlite3_busy_timeout(s->db, (int)l->busy_ms);
    if ((st = ledger_id(l, s, err)))
        goto out_destroy;
    arg->l = l;
    arg->s = s;
    if (ea__thread_start(&s->thread, sync_main, arg) != 0) {
        st = ea_error_set(err, EA_EINTERNAL, "ledger sync: cannot start its thread");
        goto out_destroy;
    }
    l->sync = s;
    return EA_OK;
out_destroy:
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
out_free:
    if (s) {
        ea_free(s->endpoint);
        ea_free(s->api_key);
        ea_free(s->ca_file);
    }
    ea_free(s);
    ea_free(arg);
    return st;
}

void ea__ledger_sync_stop(ea_ledger *l)
{
    struct ea__sync *s = l->sync;
    if (!s)
        return;
    /* the rows queued so far are committed first, so the last summary has them */
    ea_ledger_flush(l, EA__LEDGER_BUSY_MS);
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    if (s->api_key)
        memset(s->api_key, 0, strlen(s->api_key));
    ea_free(s->endpoint);
    ea_free(s->api_key);
    ea_free(s->ca_file);
    ea_free(s);
    l->sync = NULL;
}

void ea_ledger_sync_stats(ea_ledger *l, struct ea_ledger_sync_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!l || !l->sync)
        return;
    pthread_mutex_lock(&l->sync->mu);
    *out = l->sync->st;
    pthread_mutex_unlock(&l->sync->mu);
}
