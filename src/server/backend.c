/* backend.c - the served local model as reference-counted backends, and
 * POST /v1/edgeagent/models/load {"name": NAME-or-path}, the hot switch.
 *
 * A backend is one loaded model with what serving it needs: tokenizer,
 * engine, chat format, grammar cache, id, limits. The server holds one
 * reference to the current one (s->cur); a request takes another when its
 * local attempt is prepared (upstream_local.c) or for the length of a
 * stateless handler (server.c), and uses that backend for its whole life.
 *
 * A load runs on a thread of its own (the HTTP thread that got the request
 * suspends its connection and returns): it resolves nothing (the handler
 * did: a store name as `serve -m` does, or a path), loads the model and the
 * tokenizer, starts an engine with the parameters the server was started
 * with, builds the backend, swaps s->cur under be_mu, and resumes the
 * connection, which then answers 200 {"model", "previous", "load_ms"}. The
 * same thread then waits until the old backend's last request let go of it
 * and destroys it (engine, tokenizer, model: the mapping goes) - never on
 * the engine thread or an HTTP thread. A second load while one runs gets
 * 409; a failed load answers 400 (not a model this build can serve) or 500
 * and the old model keeps serving.
 * Threads: acquire/release from any thread (be_mu, short); the swap and the
 * destruction on the load thread.
 * Does not hold: the engine or the model loader (model.h, engine.h), the
 * store (store.h), what requests do with a backend (upstream_local.c). */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>

#include "edgeagent/store.h"
#include "edgeagent/toolcall.h"
#include "server/gcache.h"
#include "server/server_int.h"
#include "util/threadpool.h"

/* Compiled grammars kept per model (schemas, regexes, choices, tool sets). */
#define BACKEND_GRAMMAR_CACHE 64
/* End-of-generation ids taken from a vocabulary (the CLI takes as many). */
#define BACKEND_MAX_EOG 64
/* How long shutdown waits for load and retire threads (a load of a large
 * model cannot be interrupted; a retire ends with the last request). */
#define BACKEND_THREAD_WAIT_S 60

struct ea__load_job {
    ea_server *s;
    struct MHD_Connection *conn;
    pthread_mutex_t mu;
    char path[EA_STORE_PATH_MAX];
    char id[sizeof ((struct ea__backend *)0)->id];
    /* the result, written by the load thread before it resumes (under mu) */
    bool done;
    int status;            /* 200, or the error's */
    const char *code;      /* static: error code, or NULL */
    char message[EA_ERROR_MSG_MAX + 256];
    char previous[sizeof ((struct ea__backend *)0)->id];
    double load_ms;
};

/* ---- backends ---------------------------------------------------------------------------- */

static void backend_destroy(struct ea__backend *b)
{
    if (!b)
        return;
    if (b->owned)
        ea_engine_destroy(b->view.engine); /* joins the engine thread: no request is left */
    ea__gcache_destroy(b->gc);
    ea_chat_destroy(b->chat);
    if (b->owned) {
        ea_tokenizer_destroy((ea_tokenizer *)b->view.tok);
        ea_model_destroy(b->view.model);
    }
    ea_free(b);
}

/* A backend over v (owned: destroyed with it on success; on failure the
 * caller keeps them) with one reference. */
static ea_status backend_build(ea_server *s, const struct ea_server_backend *v, bool owned,
                               struct ea__backend **out, struct ea_error *err)
{
    struct ea__backend *b = ea_calloc(1, sizeof *b);
    if (!b)
        return ea_error_set(err, EA_ENOMEM, "server: out of memory");
    b->view = *v;
    snprintf(b->id, sizeof b->id, "%s", v->model_id ? v->model_id : "edgeagent");
    b->view.model_id = b->id;
    b->view.engine_params = NULL;
    b->view.load_params = NULL;
    char why[EA_ERROR_MSG_MAX + 64];
    ea_status st = ea__chat_template_load(v->model, v->tok, &b->chat, why, sizeof why, err);
    if (!st && why[0])
        ea__server_log(s, "%s", why);
    if (!st)
        st = ea__gcache_create(v->tok, BACKEND_GRAMMAR_CACHE, &b->gc, err);
    if (st) {
        ea_chat_destroy(b->chat);
        ea_free(b);
        return st;
    }
    /* the tool-call syntax and whether the template renders tools, from its
     * source (none: the ChatML fallback, which renders hermes tools) */
    struct ea_gguf_str src = {0};
    const ea_gguf *gg = ea_model_gguf(v->model);
    bool has = gg && ea_gguf_get_str(gg, "tokenizer.chat_template", &src, NULL) == EA_OK;
    b->syntax = (int)ea_tool_syntax_detect(has ? src.ptr : NULL, has ? (size_t)src.len : 0);
    b->renders_tools = !has;
    for (uint64_t i = 0; has && i + 5 <= src.len && !b->renders_tools; i++)
        b->renders_tools = !memcmp(src.ptr + i, "tools", 5);
    b->mistral_calls_token =
        ea_tokenizer_find(v->tok, EA_TOOL_MISTRAL_TAG, strlen(EA_TOOL_MISTRAL_TAG));
    b->owned = owned;
    b->refs = 1;
    *out = b;
    return EA_OK;
}

struct ea__backend *ea__backend_acquire(ea_server *s)
{
    pthread_mutex_lock(&s->be_mu);
    struct ea__backend *b = s->cur;
    if (b)
        b->refs++;
    pthread_mutex_unlock(&s->be_mu);
    return b;
}

void ea__backend_release(ea_server *s, struct ea__backend *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&s->be_mu);
    int left = --b->refs;
    if (left <= 1)
        pthread_cond_broadcast(&s->be_cv); /* a retire thread waits for 1 */
    pthread_mutex_unlock(&s->be_mu);
    if (left == 0) /* only at destroy: the server's own reference of the current one */
        backend_destroy(b);
}

void ea__server_model_id(const ea_server *s, char *out, size_t cap)
{
    ea_server *m = (ea_server *)s; /* the mutex, not the data, changes */
    pthread_mutex_lock(&m->be_mu);
    snprintf(out, cap, "%s", m->model_id);
    pthread_mutex_unlock(&m->be_mu);
}

ea_status ea__backend_set_first(ea_server *s, const struct ea_server_backend *v,
                                struct ea_error *err)
{
    struct ea__backend *b = NULL;
    ea_status st = backend_build(s, v, v->transfer, &b, err);
    if (st)
        return st;
    if (v->engine_params && v->load_params) {
        s->load_engine_params = *v->engine_params;
        s->load_engine_params.eog_tokens = NULL;
        s->load_engine_params.n_eog_tokens = 0;
        s->load_model_params = *v->load_params;
        s->can_load = true;
    }
    pthread_mutex_lock(&s->be_mu);
    s->cur = b;
    s->n_backends = 1;
    snprintf(s->model_id, sizeof s->model_id, "%s", b->id);
    pthread_mutex_unlock(&s->be_mu);
    atomic_store(&s->ready, true);
    return EA_OK;
}

void ea__backends_shutdown(ea_server *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += BACKEND_THREAD_WAIT_S;
    pthread_mutex_lock(&s->be_mu);
    while (s->n_load_threads > 0)
        if (pthread_cond_timedwait(&s->be_cv, &s->be_mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&s->be_mu);
}

/* ---- loading ------------------------------------------------------------------------------ */

/* Loads j->path into a new backend (owned); *out on success. */
static ea_status load_backend(ea_server *s, const struct ea__load_job *j, struct ea__backend **out,
                              struct ea_error *err)
{
    ea_model *m = NULL;
    ea_tokenizer *tok = NULL;
    ea_engine *eng = NULL;
    int32_t eog[BACKEND_MAX_EOG];
    ea_status st = ea_model_load(j->path, &s->load_model_params, &m, err);
    if (st)
        return st;
    if ((st = ea_tokenizer_create(ea_model_gguf(m), &tok, err)))
        goto fail;
    uint32_t nv = ea_tokenizer_n_vocab(tok);
    int32_t n_eog = 0;
    for (uint32_t t = 0; t < nv && n_eog < BACKEND_MAX_EOG; t++)
        if (ea_tokenizer_is_eog(tok, (int32_t)t))
            eog[n_eog++] = (int32_t)t;
    struct ea_engine_params ep = s->load_engine_params;
    ep.eog_tokens = eog;
    ep.n_eog_tokens = n_eog;
    if ((st = ea_engine_create(m, &ep, &eng, err)))
        goto fail;
    struct ea_server_backend v = {m, tok, eng, j->id, ea_engine_max_context(eng), ep.max_running, true,
                                  NULL, NULL};
    if ((st = backend_build(s, &v, true, out, err)))
        goto fail;
    return EA_OK;
fail:
    ea_engine_destroy(eng);
    ea_tokenizer_destroy(tok);
    ea_model_destroy(m);
    return st;
}

static void *load_main(void *arg)
{
    struct ea__load_job *j = arg;
    ea_server *s = j->s;
    double t0 = ea__now_ms();
    struct ea_error err = {0};
    struct ea__backend *nb = NULL, *old = NULL;
    ea_status st = load_backend(s, j, &nb, &err);
    pthread_mutex_lock(&s->be_mu);
    if (!st) {
        old = s->cur;
        s->cur = nb; /* new requests take this one from now on */
        s->n_backends++;
        snprintf(s->model_id, sizeof s->model_id, "%s", nb->id);
    }
    s->loading = false;
    pthread_mutex_unlock(&s->be_mu);
    double ms = ea__now_ms() - t0;
    pthread_mutex_lock(&j->mu);
    j->done = true;
    j->load_ms = ms;
    if (!st) {
        j->status = 200;
        snprintf(j->previous, sizeof j->previous, "%s", old ? old->id : "");
        /* j->id, not nb's: a next load may replace and unload nb already */
        ea__server_log(s, "models/load: serving %s (was %s), loaded in %.0f ms", j->id,
                       old ? old->id : "none", ms);
    } else {
        bool bad = st == EA_EFORMAT || st == EA_EUNSUPPORTED || st == EA_EINVAL || st == EA_EIO;
        j->status = bad ? 400 : 500;
        j->code = bad ? "invalid_model" : "load_failed";
        snprintf(j->message, sizeof j->message, "cannot load '%s': %s (still serving the previous model)",
                 j->id, err.msg);
        ea__server_log(s, "models/load: %s failed: %s", j->id, err.msg);
    }
    pthread_mutex_unlock(&j->mu);
    MHD_resume_connection(j->conn); /* j belongs to the request from here on */
    if (old) {
        /* the old one goes once its last request let go (the server's
         * reference is ours now) */
        pthread_mutex_lock(&s->be_mu);
        while (old->refs > 1)
            pthread_cond_wait(&s->be_cv, &s->be_mu);
        old->refs = 0;
        pthread_mutex_unlock(&s->be_mu);
        char id[sizeof old->id];
        snprintf(id, sizeof id, "%s", old->id);
        backend_destroy(old);
        pthread_mutex_lock(&s->be_mu);
        s->n_backends--;
        pthread_mutex_unlock(&s->be_mu);
        ea__server_log(s, "models/load: unloaded %s", id);
    }
    pthread_mutex_lock(&s->be_mu);
    s->n_load_threads--;
    pthread_cond_broadcast(&s->be_cv);
    pthread_mutex_unlock(&s->be_mu);
    return NULL;
}

/* ---- the endpoint ------------------------------------------------------------------------- */

void ea__load_job_free(struct ea__load_job *j)
{
    if (!j)
        return;
    pthread_mutex_destroy(&j->mu);
    ea_free(j);
}

/* The id a model is served under: a store name whole, else the file's name
 * without directories and .gguf (as `serve -m` does). */
static void default_id(const char *arg, const char *path, char *out, size_t cap)
{
    if (strcmp(arg, path)) {
        snprintf(out, cap, "%s", arg);
        return;
    }
    const char *b = strrchr(path, '/');
    snprintf(out, cap, "%s", b ? b + 1 : path);
    size_t n = strlen(out);
    if (n > 5 && !strcmp(out + n - 5, ".gguf"))
        out[n - 5] = '\0';
}

int ea__handle_load(struct ea__req_ctx *c, struct MHD_Connection *conn)
{
    ea_server *s = c->srv;
    if (!s->api_key)
        return ea__respond_errorf(c, conn, 403, "invalid_request_error", "api_key_required", NULL,
                                  "switching models needs the server to run with an API key (--api-key)");
    if (!atomic_load(&s->ready) || !s->can_load) /* can_load is set before ready */
        return ea__respond_errorf(c, conn, 503, "server_error", "model_loading", NULL,
                                  "the server cannot switch models now (its first model is not "
                                  "loaded, or it was not given the engine parameters)");
    if (atomic_load(&s->draining))
        return ea__respond_errorf(c, conn, 503, "server_error", "server_shutting_down", NULL,
                                  "the server is shutting down");
    json_error_t je;
    json_t *o = json_loadb(c->body.data ? c->body.data : "", c->body.len, 0, &je);
    const char *name = o ? json_string_value(json_object_get(o, "name")) : NULL;
    struct ea__load_job *j = NULL;
    int ret;
    if (!json_is_object(o)) {
        ret = ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL, NULL,
                                 "the body must be a JSON object");
        goto out;
    }
    if (!name || !*name || strlen(name) >= EA_STORE_PATH_MAX) {
        ret = ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL, "name",
                                 "'name' must be a model name in the store or a GGUF file's path");
        goto out;
    }
    j = ea_calloc(1, sizeof *j);
    if (!j) {
        ret = ea__respond_errorf(c, conn, 500, "server_error", NULL, NULL, "out of memory");
        goto out;
    }
    pthread_mutex_init(&j->mu, NULL);
    j->s = s;
    j->conn = conn;
    /* a store name as `serve -m` takes it, or a file */
    struct ea_error err = {0};
    ea_store *store = NULL;
    if (s->models_dir) {
        struct ea_error e2 = {0};
        if (ea_store_open(s->models_dir, &store, &e2))
            store = NULL;
    }
    ea_status st = ea_store_resolve(store, name, j->path, sizeof j->path, &err);
    ea_store_close(store);
    struct stat sb;
    if (st || stat(j->path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        ret = ea__respond_errorf(c, conn, 404, "invalid_request_error", "model_not_found", "name",
                                 "%s", st ? err.msg : "no such model file");
        goto out;
    }
    default_id(name, j->path, j->id, sizeof j->id);
    pthread_mutex_lock(&s->be_mu);
    bool busy = s->loading;
    if (!busy) {
        s->loading = true;
        s->n_load_threads++;
    }
    pthread_mutex_unlock(&s->be_mu);
    if (busy) {
        ret = ea__respond_errorf(c, conn, 409, "invalid_request_error", "load_in_progress", NULL,
                                 "another model is being loaded; retry when it is done");
        goto out;
    }
    ea__server_log(s, "models/load: loading %s from %s", j->id, j->path);
    /* suspended before the thread exists, so its resume always finds it so */
    c->load = j;
    MHD_suspend_connection(conn);
    pthread_t t;
    if (ea__thread_start(&t, load_main, j)) {
        pthread_mutex_lock(&s->be_mu);
        s->loading = false;
        s->n_load_threads--;
        pthread_cond_broadcast(&s->be_cv);
        pthread_mutex_unlock(&s->be_mu);
        pthread_mutex_lock(&j->mu);
        j->done = true;
        j->status = 500;
        j->code = "load_failed";
        snprintf(j->message, sizeof j->message, "cannot start the load");
        pthread_mutex_unlock(&j->mu);
        MHD_resume_connection(conn);
    } else {
        pthread_detach(t);
    }
    j = NULL; /* the request's now (c->load) */
    ret = MHD_YES;
out:
    ea__load_job_free(j);
    json_decref(o);
    return ret;
}

int ea__handle_load_resumed(struct ea__req_ctx *c, struct MHD_Connection *conn)
{
    struct ea__load_job *j = c->load;
    pthread_mutex_lock(&j->mu);
    bool done = j->done;
    int status = j->status;
    pthread_mutex_unlock(&j->mu);
    if (!done) /* not ours: wait on */
        return MHD_YES;
    if (status != 200)
        return ea__respond_errorf(c, conn, status, status < 500 ? "invalid_request_error" : "server_error",
                                  j->code, "name", "%s", j->message);
    struct ea_buf b;
    ea__buf_init(&b, EA__JSON_SLACK);
    ea_status st = ea__buf_puts(&b, "{\"object\":\"model.load\",\"model\":");
    if (!st)
        st = ea__buf_json_str(&b, j->id, strlen(j->id));
    if (!st)
        st = ea__buf_puts(&b, ",\"previous\":");
    if (!st)
        st = ea__buf_json_str(&b, j->previous, strlen(j->previous));
    if (!st)
        st = ea__buf_printf(&b, ",\"load_ms\":%.0f}", j->load_ms);
    int ret = st ? ea__respond_errorf(c, conn, 500, "server_error", NULL, NULL, "out of memory")
                 : ea__respond_json(c, conn, 200, b.data, b.len);
    ea__buf_release(&b);
    return ret;
}
