/* pull_api.c - POST /v1/edgeagent/models/pull {"source", "name"?}: pulls a
 * model into the server's model store (the same ea_store_pull as
 * `edgeagent pull`, on a thread of its own) and streams its progress as
 * server-sent events, one JSON object per event:
 *   data: {"event":"progress","phase":...,"name","file","done","total","resumed_from"}
 *   data: {"event":"note","message":...}
 *   data: {"event":"done","name","sha256","size"} | {"event":"error","status","message"}
 *   data: [DONE]
 * Needs the server to run with an API key (a pull writes gigabytes to its
 * disk). A client that goes away cancels its pull (the partial file stays,
 * a later pull resumes it); shutdown cancels every pull and waits for them.
 * Does not hold: switching the served model (backend.c). */
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "edgeagent/store.h"
#include "server/server_int.h"
#include "store/pull_event.h"
#include "util/threadpool.h"

#define PULL_PENDING_MAX ((size_t)64 * 1024) /* SSE bytes a slow client may leave unread */
#define PULL_EVENT_MAX 8192                  /* one event */

struct ea__pull_job {
    ea_server *srv;
    pthread_mutex_t mu;
    int refs;                 /* the worker's and the response's */
    struct ea_buf out;        /* SSE bytes not yet handed to MHD (under mu) */
    bool finished;            /* the last event is in out (under mu) */
    bool suspended, http_gone;
    struct MHD_Connection *conn;
    volatile int cancel;
    int slot;                 /* index in srv->pulls */
    char source[EA_STORE_URL_MAX];
    char name[EA_STORE_NAME_MAX];
};

static void job_unref(struct ea__pull_job *j)
{
    pthread_mutex_lock(&j->mu);
    int r = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (r)
        return;
    ea__buf_release(&j->out);
    pthread_mutex_destroy(&j->mu);
    ea_free(j);
}

/* Appends one event (text is a JSON object) and wakes the connection.
 * Progress events are dropped while the client lags; final ones never. */
static void emit(struct ea__pull_job *j, const char *json, size_t len, bool final)
{
    pthread_mutex_lock(&j->mu);
    if (final || j->out.len + len < PULL_PENDING_MAX) {
        ea__buf_puts(&j->out, "data: ");
        ea__buf_append(&j->out, json, len);
        ea__buf_puts(&j->out, "\n\n");
        if (final) {
            ea__buf_puts(&j->out, "data: [DONE]\n\n");
            j->finished = true;
        }
    }
    if (j->suspended && !j->http_gone) {
        j->suspended = false;
        MHD_resume_connection(j->conn);
    }
    pthread_mutex_unlock(&j->mu);
}

static void on_progress(void *ud, const struct ea_pull_progress *p)
{
    struct ea__pull_job *j = ud;
    struct ea_buf note, b;
    ea__buf_init(&note, PULL_EVENT_MAX);
    ea__buf_init(&b, PULL_EVENT_MAX);
    ea__pull_event_json(p, &note, &b);
    if (note.len)
        emit(j, note.data, note.len, false);
    if (b.data)
        emit(j, b.data, b.len, false);
    ea__buf_release(&note);
    ea__buf_release(&b);
}

static void *pull_main(void *arg)
{
    struct ea__pull_job *j = arg;
    ea_server *s = j->srv;
    struct ea_error err = {0};
    struct ea_store_manifest m;
    ea_store *st = NULL;
    ea_status rc = ea_store_open(s->models_dir, &st, &err);
    if (!rc) {
        struct ea_pull_params pp = {
            .source = j->source,
            .name = j->name[0] ? j->name : NULL,
            .endpoint = s->hf_endpoint,
            .token = s->hf_token,
            .retries = 3,
            .progress = on_progress,
            .progress_ud = j,
            .cancel = &j->cancel,
        };
        rc = ea_store_pull(st, &pp, &m, &err);
    }
    ea_store_close(st);
    struct ea_buf b;
    ea__buf_init(&b, PULL_EVENT_MAX);
    if (rc) {
        ea__buf_printf(&b, "{\"event\":\"error\",\"status\":\"%s\",\"message\":", ea_status_name(rc));
        ea__buf_json_str(&b, err.msg, strlen(err.msg));
        ea__buf_putc(&b, '}');
        ea__server_log(s, "pull %.200s: %s", j->source, err.msg);
    } else {
        ea__buf_puts(&b, "{\"event\":\"done\",\"name\":");
        ea__buf_json_str(&b, m.name, strlen(m.name));
        ea__buf_printf(&b, ",\"sha256\":\"%s\",\"size\":%" PRIu64 "}", m.sha256, m.size);
        ea__server_log(s, "pull %.200s: registered %.200s", j->source, m.name);
    }
    emit(j, b.data ? b.data : "{}", b.data ? b.len : 2, true);
    ea__buf_release(&b);
    pthread_mutex_lock(&s->mu);
    s->pulls[j->slot] = NULL;
    s->n_pulls--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    job_unref(j);
    return NULL;
}

static ssize_t pull_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct ea__pull_job *j = cls;
    pthread_mutex_lock(&j->mu);
    if (j->out.len) {
        size_t n = j->out.len < max ? j->out.len : max;
        memcpy(buf, j->out.data, n);
        memmove(j->out.data, j->out.data + n, j->out.len - n);
        j->out.len -= n;
        pthread_mutex_unlock(&j->mu);
        return (ssize_t)n;
    }
    if (j->finished) {
        pthread_mutex_unlock(&j->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    j->suspended = true;
    MHD_suspend_connection(j->conn);
    pthread_mutex_unlock(&j->mu);
    return 0;
}

static void pull_free(void *cls)
{
    struct ea__pull_job *j = cls;
    pthread_mutex_lock(&j->mu);
    j->http_gone = true;
    if (!j->finished)
        j->cancel = 1; /* nobody is watching: stop, keep the partial file */
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
}

static int bad(struct ea__req_ctx *c, struct MHD_Connection *conn, int status, const char *type,
               const char *code, const char *param, const char *msg)
{
    struct ea__api_error e;
    ea__api_errorf(&e, status, type, code, param, "%s", msg);
    return ea__respond_error(c, conn, &e);
}

int ea__handle_pull(struct ea__req_ctx *c, struct MHD_Connection *conn)
{
    ea_server *s = c->srv;
    if (!s->api_key)
        return bad(c, conn, 403, "invalid_request_error", "api_key_required", NULL,
                   "pulling models needs the server to run with an API key (--api-key)");
    if (!s->models_dir)
        return bad(c, conn, 503, "server_error", "no_model_store", NULL,
                   "the server has no model store");
    if (atomic_load(&s->draining))
        return bad(c, conn, 503, "server_error", "server_shutting_down", NULL,
                   "the server is shutting down");
    json_error_t je;
    json_t *o = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, &je);
    const char *source = o ? json_string_value(json_object_get(o, "source")) : NULL;
    json_t *jn = o ? json_object_get(o, "name") : NULL;
    int ret;
    if (!json_is_object(o)) {
        ret = bad(c, conn, 400, "invalid_request_error", NULL, NULL, "the body must be a JSON object");
        goto out;
    }
    if (!source || !*source || strlen(source) >= EA_STORE_URL_MAX) {
        ret = bad(c, conn, 400, "invalid_request_error", NULL, "source",
                  "'source' must be a model name, hf.co/ORG/REPO[:QUANT], hf.co/ORG/REPO/FILE.gguf or a URL");
        goto out;
    }
    if (jn && !json_is_null(jn) &&
        (!json_is_string(jn) || json_string_length(jn) >= EA_STORE_NAME_MAX)) {
        ret = bad(c, conn, 400, "invalid_request_error", NULL, "name", "'name' must be a short string");
        goto out;
    }
    struct ea_pull_source src;
    struct ea_error perr = {0};
    if (ea_pull_parse_source(source, &src, &perr)) {
        ret = bad(c, conn, 400, "invalid_request_error", NULL, "source", perr.msg);
        goto out;
    }
    struct ea__pull_job *j = ea_calloc(1, sizeof *j);
    if (!j) {
        ret = bad(c, conn, 500, "server_error", NULL, NULL, "out of memory");
        goto out;
    }
    j->srv = s;
    j->conn = conn;
    j->refs = 2;
    pthread_mutex_init(&j->mu, NULL);
    ea__buf_init(&j->out, PULL_PENDING_MAX + 2 * PULL_EVENT_MAX);
    snprintf(j->source, sizeof j->source, "%s", source);
    if (json_is_string(jn))
        snprintf(j->name, sizeof j->name, "%s", json_string_value(jn));
    pthread_mutex_lock(&s->mu);
    j->slot = -1;
    for (int i = 0; i < EA__MAX_PULLS && j->slot < 0; i++)
        if (!s->pulls[i])
            j->slot = i;
    if (j->slot >= 0) {
        s->pulls[j->slot] = j;
        s->n_pulls++;
    }
    pthread_mutex_unlock(&s->mu);
    if (j->slot < 0) {
        ea__buf_release(&j->out);
        pthread_mutex_destroy(&j->mu);
        ea_free(j);
        ret = bad(c, conn, 429, "rate_limit_error", NULL, NULL, "too many pulls at once; retry later");
        goto out;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, pull_reader, j, pull_free);
    pthread_t t;
    if (!resp || ea__thread_start(&t, pull_main, j)) {
        if (resp)
            MHD_destroy_response(resp); /* drops the response's reference */
        else
            j->refs--;
        pthread_mutex_lock(&s->mu);
        s->pulls[j->slot] = NULL;
        s->n_pulls--;
        pthread_mutex_unlock(&s->mu);
        job_unref(j); /* the worker's */
        ret = bad(c, conn, 500, "server_error", NULL, NULL, "cannot start the pull");
        goto out;
    }
    pthread_detach(t);
    MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, "X-Request-Id", c->id);
    c->status = 200;
    c->responded = true;
    ea__metrics_count(&s->metrics, c->ep, 200);
    ret = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
out:
    json_decref(o);
    return ret;
}

void ea__pulls_cancel_all(ea_server *s)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < EA__MAX_PULLS; i++)
        if (s->pulls[i])
            s->pulls[i]->cancel = 1;
    pthread_mutex_unlock(&s->mu);
}
