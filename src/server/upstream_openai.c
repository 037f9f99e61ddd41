/* upstream_openai.c - the `openai` upstream (upstream.h): a generation on
 * an OpenAI-compatible endpoint through the cloud client (router/cloud.h).
 * prepare turns the client's JSON body into the upstream's: the same body
 * with "model" replaced by the upstream's model, "stream": true and
 * "stream_options": {"include_usage": true} forced (the HTTP side
 * aggregates for clients that did not ask for a stream), and the
 * "edgeagent" extension object removed; requests asking for logprobs are
 * refused (a remote upstream's token ids are not this server's). start
 * begins every choice and hands the body to the client; each streamed
 * chunk's text goes to the queue by choice index (delta.content for chat,
 * text for completions), and the transfer's end finishes every choice:
 * the finish reason each choice reported and the usage the stream carried,
 * or the failure classified for the router (genq.h: fail, http_status,
 * retry_after_ms; the message says which timeout or what was malformed).
 *
 * Usage. The stream's usage is for the whole request: prompt tokens go to
 * the queue (q->n_prompt_tokens) and cached tokens to choice 0; completion
 * tokens are shared among the choices in proportion to the content chunks
 * each received (the sum is exact). Without usage in the stream (an
 * upstream that ignores include_usage) each content chunk counts as one
 * token: an estimate.
 *
 * Threads. prepare, start and release run on an HTTP thread; cancel on any
 * thread; the chunk and end callbacks on the cloud client's thread. The
 * transfer handle is published with an atomic store after
 * ea__cloud_start returns; a cancel that comes before it is remembered
 * (cancel_req) and applied by start. on_end finishes the choices last: the
 * final ea__genq_finish may free the generation and release this job, so
 * nothing of the job is touched after it.
 * Tool-call deltas go to the queue as calls (ea__genq_call_begin on a delta
 * with the function's name, ea__genq_call_args for arguments; for a
 * redacted request the arguments go through a restorer of their own per
 * call, in JSON form: values written JSON-escaped); a choice
 * that made calls finishes as "tool_calls". Not yet: logprobs; other finish
 * reasons than "length" and "tool_calls" are reported as "stop".
 * Does not hold: HTTP or libcurl (cloud.c), the queue (genq.c), routing.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "edgeagent/privacy.h"
#include "router/cloud.h"
#include "server/genq.h"
#include "server/server_int.h"
#include "server/upstream.h"

struct ea__upstream_openai {
    struct ea__upstream base;
    struct ea__cloud *cloud;
    char *name, *model, *url_chat, *url_completions, *api_key, *ca_file;
    struct ea_config_header *headers;
    size_t n_headers;
    struct ea_upstream_timeouts timeouts;
};

struct openai_choice {
    enum ea_finish_reason finish; /* NONE until the upstream reports one */
    int32_t chunks;               /* content chunks received */
    ea_privacy_restorer *restore; /* redacted requests: placeholders back to values */
    ea_privacy_restorer *args;    /* ... in the open tool call's arguments (JSON form) */
    int32_t calls;                /* tool calls opened */
    bool tool_calls_finish;       /* finish_reason "tool_calls" */
};

struct ea__upstream_job {
    struct ea__upstream_openai *u;
    enum ea__req_kind kind;
    char *body; /* jansson's allocation (free) */
    size_t body_len;
    uint32_t delay_ms;
    _Atomic(struct ea__cloud_transfer *) t;
    _Atomic bool cancel_req;
    /* set by start before the transfer starts, then read on the client thread */
    struct ea__genq *q;
    int n_choices;
    struct openai_choice *c;
    const ea_privacy_map *map; /* the request's placeholders (read-only), or NULL */
    bool restore_failed;       /* a restorer failed: the answer stops with an error */
};

/* ---- prepare ------------------------------------------------------------------------------ */

static void openai_release(struct ea__upstream_job *job)
{
    if (!job)
        return;
    ea__cloud_transfer_release(atomic_load(&job->t));
    free(job->body);
    for (int i = 0; job->c && i < job->n_choices; i++) {
        ea_privacy_restorer_destroy(job->c[i].restore);
        ea_privacy_restorer_destroy(job->c[i].args);
    }
    ea_free(job->c);
    ea_free(job);
}

static bool openai_prepare(struct ea__upstream *up, const struct ea__gen_request *r, const char *req_id,
                           struct ea__upstream_job **out, struct ea__api_error *e)
{
    struct ea__upstream_openai *u = (struct ea__upstream_openai *)up;
    *out = NULL;
    if (r->logprobs || r->top_logprobs)
        return ea__api_errorf(e, 400, "invalid_request_error", NULL, "logprobs",
                              "logprobs are not available from the upstream '%s'", u->name);
    if (!r->body)
        return ea__api_errorf(e, 500, "server_error", NULL, NULL, "internal error: no request body");
    /* the body was validated by request.c: loading it again cannot fail
     * except for memory */
    /* a redacted request leaves the device only as its redacted body */
    const char *src = r->upstream_body ? r->upstream_body : r->body;
    size_t src_len = r->upstream_body ? r->upstream_body_len : r->body_len;
    json_t *root = json_loadb(src, src_len, JSON_ALLOW_NUL, NULL);
    json_t *opts = json_object();
    bool ok = json_is_object(root) && opts && !json_object_set_new(opts, "include_usage", json_true()) &&
              !json_object_set_new(root, "model", json_string(u->model)) &&
              !json_object_set_new(root, "stream", json_true()) &&
              !json_object_set(root, "stream_options", opts);
    json_decref(opts);
    if (ok)
        json_object_del(root, "edgeagent");
    char *body = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    struct ea__upstream_job *job = body ? ea_calloc(1, sizeof *job) : NULL;
    if (!job) {
        free(body);
        return ea__api_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
    }
    job->u = u;
    job->kind = r->kind;
    job->map = r->privacy_map;
    job->body = body;
    job->body_len = strlen(body);
    *out = job;
    return true;
}

void ea__upstream_openai_set_delay(struct ea__upstream_job *job, uint32_t delay_ms)
{
    job->delay_ms = delay_ms;
}

/* ---- the client thread: chunks and the end ------------------------------------------------ */

static enum ea_finish_reason finish_of(const char *s)
{
    return strcmp(s, "length") == 0 ? EA_FINISH_LENGTH : EA_FINISH_STOP;
}

/* Redacted requests: the open call's arguments end; what its restorer held
 * goes to the call (ea__genq_call_args appends to a choice's last call).
 * False when the restorer failed (the answer stops with an error). */
static bool close_call_args(struct ea__upstream_job *job, int i, bool *go_on)
{
    struct openai_choice *c = &job->c[i];
    if (!c->args)
        return true;
    const char *p = NULL;
    size_t n = 0;
    struct ea_error err = {0};
    ea_status st = ea_privacy_restorer_finish(c->args, &p, &n, &err);
    if (!st && n)
        *go_on &= ea__genq_call_args(job->q, i, p, n);
    ea_privacy_restorer_destroy(c->args);
    c->args = NULL;
    return !st;
}

static enum ea__cloud_verdict on_chunk(void *user, const json_t *chunk)
{
    struct ea__upstream_job *job = user;
    const json_t *choices = json_object_get(chunk, "choices");
    if (choices && !json_is_array(choices))
        return EA_CLOUD_REJECT;
    size_t k;
    const json_t *ch;
    bool go_on = true;
    json_array_foreach(choices, k, ch) {
        const json_t *idx = json_object_get(ch, "index");
        /* some servers leave index out of single-choice streams */
        json_int_t i = json_is_integer(idx) ? json_integer_value(idx) : !idx && job->n_choices == 1 ? 0 : -1;
        if (i < 0 || i >= job->n_choices)
            return EA_CLOUD_REJECT; /* not a choice of this request */
        struct openai_choice *c = &job->c[i];
        const json_t *text = job->kind == EA__REQ_CHAT
                                 ? json_object_get(json_object_get(ch, "delta"), "content")
                                 : json_object_get(ch, "text");
        if (json_is_string(text) && json_string_length(text)) {
            c->chunks++;
            const char *p = json_string_value(text);
            size_t n = json_string_length(text);
            if (c->restore) { /* what is held may still become a placeholder */
                struct ea_error err = {0};
                if (ea_privacy_restorer_feed(c->restore, p, n, &p, &n, &err)) {
                    job->restore_failed = true;
                    return EA_CLOUD_STOP;
                }
            }
            if (n)
                go_on &= ea__genq_emit(job->q, (int)i, p, n, NULL);
        }
        /* tool-call deltas, as OpenAI streams them: a call's first delta
         * has its id and function name, later ones more arguments */
        size_t ti;
        const json_t *tc;
        json_array_foreach(json_object_get(json_object_get(ch, "delta"), "tool_calls"), ti, tc) {
            const json_t *fn = json_object_get(tc, "function");
            const json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
            const json_t *id = json_object_get(tc, "id");
            if (json_is_string(name) && json_string_length(name)) {
                struct ea_error err = {0};
                if (!close_call_args(job, (int)i, &go_on) ||
                    (job->map && ea_privacy_restorer_create(job->map, EA_PRIVACY_JSON, &c->args, &err))) {
                    job->restore_failed = true;
                    return EA_CLOUD_STOP;
                }
                char idb[EA__GENQ_CALL_ID_MAX];
                snprintf(idb, sizeof idb, "%s", json_is_string(id) ? json_string_value(id) : "call");
                go_on &= ea__genq_call_begin(job->q, (int)i, idb, json_string_value(name),
                                             json_string_length(name));
                c->calls++;
            } else if (!c->calls) {
                return EA_CLOUD_REJECT; /* arguments of a call never opened */
            }
            if (json_is_string(args) && json_string_length(args)) {
                const char *p = json_string_value(args);
                size_t n = json_string_length(args);
                if (c->args) { /* placeholders in the arguments' JSON back to values (JSON-escaped) */
                    struct ea_error err = {0};
                    if (ea_privacy_restorer_feed(c->args, p, n, &p, &n, &err)) {
                        job->restore_failed = true;
                        return EA_CLOUD_STOP;
                    }
                }
                if (n)
                    go_on &= ea__genq_call_args(job->q, (int)i, p, n);
            }
        }
        const json_t *fr = json_object_get(ch, "finish_reason");
        if (json_is_string(fr)) {
            c->finish = finish_of(json_string_value(fr));
            c->tool_calls_finish = !strcmp(json_string_value(fr), "tool_calls");
        }
    }
    return go_on ? EA_CLOUD_CONTINUE : EA_CLOUD_STOP;
}

static ea_status status_of(const struct ea__cloud_result *res)
{
    switch (res->outcome) {
    case EA_CLOUD_OK:
        return EA_OK;
    case EA_CLOUD_TIMEOUT:
        return EA_ETIMEOUT;
    case EA_CLOUD_HTTP_ERROR:
        if (res->http_status == 401 || res->http_status == 403)
            return EA_EAUTH;
        if (res->http_status == 429)
            return EA_EOVERLOADED;
        return res->http_status < 500 ? EA_EINVAL : EA_EUNAVAILABLE;
    case EA_CLOUD_MALFORMED:
        return EA_EFORMAT;
    case EA_CLOUD_CUT:
        return EA_EIO;
    case EA_CLOUD_CANCELLED:
        return EA_ECANCELLED;
    case EA_CLOUD_CONNECT_ERROR:
    case EA_CLOUD_STREAM_ERROR:
    default:
        return EA_EUNAVAILABLE;
    }
}

/* The router's class of a failed transfer (genq.h): a broken reply (an
 * error event, malformed data, a stream cut before [DONE]) counts as the
 * upstream's server error; a 4xx other than 429 is the request's own. */
static enum ea__fail fail_of(const struct ea__cloud_result *res)
{
    switch (res->outcome) {
    case EA_CLOUD_OK:
    case EA_CLOUD_CANCELLED:
        return EA__FAIL_NONE;
    case EA_CLOUD_CONNECT_ERROR:
        return EA__FAIL_CONNECT;
    case EA_CLOUD_TIMEOUT:
        return EA__FAIL_TIMEOUT;
    case EA_CLOUD_HTTP_ERROR:
        if (res->http_status == 429)
            return EA__FAIL_HTTP_429;
        return res->http_status >= 500 ? EA__FAIL_HTTP_5XX : EA__FAIL_REJECTED;
    case EA_CLOUD_STREAM_ERROR:
    case EA_CLOUD_MALFORMED:
    case EA_CLOUD_CUT:
        return EA__FAIL_HTTP_5XX;
    default:
        return EA__FAIL_INTERNAL;
    }
}

static void on_end(void *user, const struct ea__cloud_result *res)
{
    struct ea__upstream_job *job = user;
    struct ea__genq *q = job->q;
    const int n = job->n_choices;
    int32_t total_chunks = 0;
    for (int i = 0; i < n; i++)
        total_chunks += job->c[i].chunks;
    pthread_mutex_lock(q->lock); /* read by the HTTP side once every choice is done */
    q->n_prompt_tokens = res->has_usage ? res->prompt_tokens : 0;
    pthread_mutex_unlock(q->lock);
    int32_t left = res->has_usage ? res->completion_tokens : total_chunks;
    for (int i = 0; i < n; i++) {
        const struct openai_choice *c = &job->c[i];
        struct ea__genq_end end = {
            .ttft_ms = res->ttft_ms,
            .total_ms = res->elapsed_ms,
            .http_status = res->http_status,
            .retry_after_ms = res->retry_after_ms > 0 ? (double)res->retry_after_ms : 0,
            .estimated = !res->has_usage,
        };
        if (res->outcome == EA_CLOUD_OK) {
            end.finish = c->finish != EA_FINISH_NONE ? c->finish : EA_FINISH_STOP;
            end.tool_calls = c->calls > 0 || c->tool_calls_finish;
            /* completion tokens shared in proportion to content chunks; the
             * last choice takes the rest, so the sum is the upstream's */
            int32_t gen = c->chunks;
            if (res->has_usage)
                gen = i == n - 1   ? left
                      : total_chunks ? (int32_t)((int64_t)res->completion_tokens * c->chunks / total_chunks)
                                     : 0;
            if (gen > left)
                gen = left;
            end.n_generated = gen < 0 ? 0 : gen;
            left -= end.n_generated;
            if (i == 0) {
                end.n_prompt = res->has_usage ? res->prompt_tokens : 0;
                end.n_cached = res->has_usage ? res->cached_tokens : 0;
            }
        } else {
            end.finish = res->outcome == EA_CLOUD_CANCELLED ? EA_FINISH_CANCELLED : EA_FINISH_ERROR;
            end.status = status_of(res);
            end.fail = fail_of(res);
            end.error = res->message;
            end.n_generated = c->chunks; /* what it produced before it failed (an estimate) */
        }
        if (end.finish != EA_FINISH_ERROR) {
            bool go_on = true;
            if (!close_call_args(job, i, &go_on))
                job->restore_failed = true;
        }
        const char *tail = NULL;
        size_t tail_len = 0;
        if (c->restore && end.finish != EA_FINISH_ERROR) {
            struct ea_error err = {0};
            if (ea_privacy_restorer_finish(c->restore, &tail, &tail_len, &err))
                tail_len = 0;
        }
        if (job->restore_failed && end.finish != EA_FINISH_ERROR) {
            end.finish = EA_FINISH_ERROR;
            end.status = EA_EINTERNAL;
            end.fail = EA__FAIL_INTERNAL;
            end.error = "the answer's placeholders could not be restored";
        }
        /* the last finish may free the generation and this job with it */
        ea__genq_finish(q, i, tail, tail_len, &end);
    }
}

/* ---- start, cancel ------------------------------------------------------------------------ */

static void openai_cancel(struct ea__upstream_job *job)
{
    if (!job)
        return;
    atomic_store(&job->cancel_req, true);
    struct ea__cloud_transfer *t = atomic_load(&job->t);
    if (t)
        ea__cloud_cancel(t);
}

static bool openai_start(struct ea__upstream_job *job, const struct ea__gen_request *r, uint64_t seed,
                         struct ea__genq *q, struct ea__api_error *e)
{
    struct ea__upstream_openai *u = job->u;
    job->c = ea_calloc((size_t)q->n_choices, sizeof *job->c);
    if (!job->c)
        return ea__api_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
    job->q = q;
    job->n_choices = q->n_choices;
    for (int i = 0; job->map && i < job->n_choices; i++) {
        struct ea_error err = {0};
        if (ea_privacy_restorer_create(job->map, EA_PRIVACY_PLAIN, &job->c[i].restore, &err))
            return ea__api_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
    }
    for (int i = 0; i < job->n_choices; i++)
        ea__genq_begin(q, i); /* the transfer's references, dropped by on_end */
    struct ea__cloud_request rq = {
        .url = job->kind == EA__REQ_CHAT ? u->url_chat : u->url_completions,
        .body = job->body,
        .body_len = job->body_len,
        .api_key = u->api_key,
        .headers = u->headers,
        .n_headers = u->n_headers,
        .ca_file = u->ca_file,
        .timeouts = u->timeouts,
        .delay_ms = job->delay_ms,
        .on_chunk = on_chunk,
        .on_end = on_end,
        .user = job,
    };
    struct ea_error err = {0};
    struct ea__cloud_transfer *t = NULL;
    ea_status s = ea__cloud_start(u->cloud, &rq, &t, &err);
    if (s) {
        for (int i = 0; i < job->n_choices; i++)
            ea__genq_abort(q, i);
        if (s == EA_ESTATE)
            return ea__api_errorf(e, 503, "server_error", "server_shutting_down", NULL,
                                  "the server is shutting down");
        return ea__api_errorf(e, 500, "server_error", NULL, NULL, "upstream '%s': %s", u->name, err.msg);
    }
    atomic_store(&job->t, t);
    if (atomic_load(&job->cancel_req))
        ea__cloud_cancel(t);
    return true;
}

static const struct ea__upstream_ops openai_ops = {
    .kind = "openai",
    .prepare = openai_prepare,
    .start = openai_start,
    .cancel = openai_cancel,
    .release = openai_release,
    .token_piece = NULL,
};

/* ---- lifetime ---------------------------------------------------------------------------- */

void ea__upstream_openai_destroy(struct ea__upstream *up)
{
    struct ea__upstream_openai *u = (struct ea__upstream_openai *)up;
    if (!u)
        return;
    if (u->api_key) {
        explicit_bzero(u->api_key, strlen(u->api_key));
        ea_free(u->api_key);
    }
    for (size_t i = 0; i < u->n_headers; i++) {
        ea_free(u->headers[i].name);
        ea_free(u->headers[i].value);
    }
    ea_free(u->headers);
    ea_free(u->name);
    ea_free(u->model);
    ea_free(u->url_chat);
    ea_free(u->url_completions);
    ea_free(u->ca_file);
    ea_free(u);
}

/* base_url without trailing slashes, then path. */
static char *join_url(const char *base, const char *path)
{
    size_t n = strlen(base);
    while (n && base[n - 1] == '/')
        n--;
    size_t cap = n + strlen(path) + 1;
    char *s = ea_malloc(cap);
    if (s)
        snprintf(s, cap, "%.*s%s", (int)n, base, path);
    return s;
}

ea_status ea__upstream_openai_create(struct ea__cloud *cloud, const struct ea_upstream_config *cfg,
                                     const char *api_key, struct ea__upstream **out, struct ea_error *err)
{
    *out = NULL;
    if (!cloud || !cfg || cfg->kind != EA_UPSTREAM_OPENAI || !cfg->base_url || !cfg->model || !cfg->name)
        return ea_error_set(err, EA_EINVAL, "openai upstream: needs a client, a name, base_url and model");
    struct ea__upstream_openai *u = ea_calloc(1, sizeof *u);
    if (!u)
        return ea_error_set(err, EA_ENOMEM, "openai upstream: out of memory");
    u->base.ops = &openai_ops;
    u->cloud = cloud;
    u->timeouts = cfg->timeouts;
    u->name = ea_strdup(cfg->name);
    u->model = ea_strdup(cfg->model);
    u->url_chat = join_url(cfg->base_url, "/chat/completions");
    u->url_completions = join_url(cfg->base_url, "/completions");
    u->api_key = api_key ? ea_strdup(api_key) : NULL;
    u->ca_file = cfg->ca_file ? ea_strdup(cfg->ca_file) : NULL;
    bool ok = u->name && u->model && u->url_chat && u->url_completions && (!api_key || u->api_key) &&
              (!cfg->ca_file || u->ca_file);
    if (ok && cfg->n_headers) {
        u->headers = ea_calloc(cfg->n_headers, sizeof *u->headers);
        ok = u->headers != NULL;
        for (size_t i = 0; ok && i < cfg->n_headers; i++) {
            u->headers[i].name = ea_strdup(cfg->headers[i].name);
            u->headers[i].value = ea_strdup(cfg->headers[i].value);
            u->n_headers = i + 1;
            ok = u->headers[i].name && u->headers[i].value;
        }
    }
    if (!ok) {
        ea__upstream_openai_destroy(&u->base);
        return ea_error_set(err, EA_ENOMEM, "openai upstream: out of memory");
    }
    u->base.name = u->name;
    *out = &u->base;
    return EA_OK;
}
