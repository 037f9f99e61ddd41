/* cmd_serve.c - `edgeagent serve`: the OpenAI-compatible HTTP server.
 *
 * Order: options (the YAML config file's server: entries, then the command
 * line; the config's upstream keys from their api_key_env variables), API key (option, file or
 * EDGEAGENT_API_KEY), block SIGINT/SIGTERM in every thread, listen (health
 * says "loading"), load model + tokenizer, start the engine, mark ready,
 * then wait for a signal in sigwait and shut down gracefully (stop
 * accepting, let streams finish for --grace seconds, cancel the rest) and
 * exit 0.
 * Does not hold: HTTP handling (src/server/), the engine.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#ifndef EA_HAVE_NET
int cmd_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_errorf("serve", "this build has no HTTP server (libmicrohttpd, libcurl or sqlite3 "
                        "were missing at configure time)");
    return 2;
}
#else
#include "edgeagent/engine.h"
#include "edgeagent/ledger.h"
#include "edgeagent/privacy.h"
#include "edgeagent/router.h"
#include "edgeagent/server.h"

/* Upper bounds of serve's numeric options: far past what a device runs,
 * low enough that products of them (connections x buffers) stay sane. */
#define CLI_MAX_PARALLEL 4096         /* sequences decoded at once */
#define CLI_MAX_QUEUE (1 << 20)       /* requests waiting for a slot */
#define CLI_MAX_KV_MEM_MB (1 << 20)   /* 1 TiB of KV cache */
#define CLI_MAX_CTX (1 << 20)         /* tokens of context / max_tokens */
#define CLI_MAX_THREADS 1024
#define CLI_MAX_HTTP_THREADS 64       /* the server caps its pool at 64 too */
#define CLI_MAX_BODY_BYTES (1 << 30)  /* request body and buffered output */
#define CLI_MAX_CONNECTIONS 65536
#define CLI_MAX_TIMEOUT_S 86400

struct serve_options {
    const char *model;
    const char *models_dir; /* store for -m NAME (cli_store_dir) */
    const char *model_id;
    const char *api_key_file;
    char *api_key; /* owned */
    bool api_key_given; /* --api-key or api-key = ... (even empty: an error, never "no key") */
    struct ea_server_params sp;
    uint64_t parallel, kv_mem_mb, ctx, threads, max_queue, grace_s;
    char host[256];
    struct ea_router_config *cfg; /* --config, owned */
    const char **keys;            /* per upstream of cfg: its API key (from the environment) */
    const char *data_dir;         /* --data-dir: the ledger's directory (an explicit one must work) */
    bool no_ledger;               /* --no-ledger */
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: edgeagent serve -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel N]\n"
            "                       [--kv-mem MB] [--api-key KEY | --api-key-file FILE]\n"
            "                       [--config FILE] [options]\n"
            "  -m, --model FILE|NAME   GGUF model to serve: a path or a name in the model store\n"
            "  --models-dir DIR        model store (default $EDGEAGENT_MODELS, then\n"
            "                          $XDG_DATA_HOME/edgeagent/models)\n"
            "  --model-id NAME         name in /v1/models and responses (default: file or store name)\n"
            "  --host ADDR             address to bind (default 127.0.0.1); any other address\n"
            "                          needs an API key or --insecure-no-auth\n"
            "  --port N                TCP port (default 8080; 0 = any free port)\n"
            "  --parallel N            sequences decoded at once (default 4)\n"
            "  --max-queue N           requests waiting for a slot before 429 (default 64)\n"
            "  --kv-mem MB             KV cache memory (default 256)\n"
            "  --ctx N                 context per sequence (default min(training, 4096))\n"
            "  -t, --threads N         forward-pass threads (default: all CPUs)\n"
            "  --http-threads N        HTTP worker threads (default 2)\n"
            "  --api-key KEY           require 'Authorization: Bearer KEY' (also\n"
            "                          EDGEAGENT_API_KEY, or --api-key-file: first line)\n"
            "  --insecure-no-auth      allow a non-loopback --host without a key\n"
            "  --log-content           log prompts and completions (never logged otherwise)\n"
            "  --max-body BYTES        request body cap (default 4194304)\n"
            "  --max-tokens N          cap on a request's max_tokens (default 4096)\n"
            "  --max-connections N     open connections (default 256)\n"
            "  --timeout S             idle / stalled-client timeout in seconds (default 60)\n"
            "  --header-timeout S      time a request's head may take from its first line (10)\n"
            "  --body-timeout S        time a request's body may take after its head (60)\n"
            "  --max-connections-per-ip N  connections per client address; more get 429\n"
            "                          (default max-connections / 4; loopback is exempt)\n"
            "  --limit-loopback        apply --max-connections-per-ip to loopback clients too\n"
            "  --allowed-hosts LIST    Host names accepted besides localhost and the bound\n"
            "                          address (comma-separated; * = any)\n"
            "  --cors-origins LIST     cross-site origins allowed to call the API, e.g.\n"
            "                          http://localhost:3000 (comma-separated; * = any)\n"
            "  --grace S               shutdown grace period for in-flight requests (default 10;\n"
            "                          SIGTERM, SIGINT or SIGHUP start it, a second one ends it)\n"
            "  --max-output BYTES      output buffered per request: a whole answer, or what a\n"
            "                          streaming client leaves unread (default 1048576)\n"
            "  --data-dir DIR          the cost and latency ledger's directory (ledger.db;\n"
            "                          default $XDG_DATA_HOME/edgeagent; --no-ledger: none)\n"
            "  --config FILE           YAML: upstreams, tasks, routing (docs/ROUTING.md) and\n"
            "                          server: options by the names above without dashes\n"
            "                          (command-line options override them); keys come from\n"
            "                          the variables each upstream's api_key_env names\n");
}

static bool in_range(uint64_t u, uint64_t min, uint64_t max) { return u >= min && u <= max; }

/* Applies one option. value is NULL for a flag given on the command line. */
static int apply(struct serve_options *o, const char *key, const char *value)
{
    const char *k = key;
    while (*k == '-')
        k++;
    uint64_t u;
    bool flag = !value || !strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes");
    if (!strcmp(k, "insecure-no-auth")) {
        o->sp.insecure_no_auth = flag;
        return 1;
    }
    if (!strcmp(k, "log-content")) {
        o->sp.log_content = flag;
        return 1;
    }
    if (!strcmp(k, "limit-loopback")) {
        o->sp.limit_loopback = flag;
        return 1;
    }
    if (!strcmp(k, "no-ledger")) {
        o->no_ledger = flag;
        return 1;
    }
    if (!value) {
        cli_errorf("serve", "option '%s' needs a value (or is unknown)", key);
        return -1;
    }
#define U(name, field, min, max)                                                   \
    if (!strcmp(k, name)) {                                                        \
        if (!cli_parse_u64("serve", key, value, &u))                               \
            return -1;                                                             \
        if (!in_range(u, (uint64_t)(min), (uint64_t)(max))) {                      \
            cli_errorf("serve", "%s %s: out of range (%llu to %llu)", key, value,   \
                       (unsigned long long)(min), (unsigned long long)(max));      \
            return -1;                                                             \
        }                                                                          \
        field = u;                                                                 \
        return 2;                                                                  \
    }
    if (!strcmp(k, "m") || !strcmp(k, "model")) {
        o->model = value;
        return 2;
    }
    if (!strcmp(k, "models-dir")) {
        o->models_dir = value;
        return 2;
    }
    if (!strcmp(k, "model-id")) {
        o->model_id = value;
        return 2;
    }
    if (!strcmp(k, "host")) {
        snprintf(o->host, sizeof o->host, "%s", value);
        return 2;
    }
    if (!strcmp(k, "api-key")) {
        free(o->api_key);
        o->api_key = strdup(value);
        o->api_key_given = true;
        return 2;
    }
    if (!strcmp(k, "allowed-hosts")) {
        o->sp.allowed_hosts = value;
        return 2;
    }
    if (!strcmp(k, "cors-origins")) {
        o->sp.cors_origins = value;
        return 2;
    }
    if (!strcmp(k, "data-dir")) {
        o->data_dir = value;
        return 2;
    }
    if (!strcmp(k, "api-key-file")) {
        o->api_key_file = value;
        return 2;
    }
    if (!strcmp(k, "config"))
        return 2; /* handled before */
    /* option          field                      min  max (named in cli.h) */
    U("port", o->sp.port, 0, 65535)
    U("parallel", o->parallel, 1, CLI_MAX_PARALLEL)
    U("max-queue", o->max_queue, 1, CLI_MAX_QUEUE)
    U("kv-mem", o->kv_mem_mb, 1, CLI_MAX_KV_MEM_MB)
    U("ctx", o->ctx, 0, CLI_MAX_CTX)
    U("t", o->threads, 0, CLI_MAX_THREADS)
    U("threads", o->threads, 0, CLI_MAX_THREADS)
    U("http-threads", o->sp.http_threads, 1, CLI_MAX_HTTP_THREADS)
    U("max-body", o->sp.max_body_bytes, 1, CLI_MAX_BODY_BYTES)
    U("max-tokens", o->sp.max_tokens, 1, CLI_MAX_CTX)
    U("max-connections", o->sp.max_connections, 1, CLI_MAX_CONNECTIONS)
    U("max-connections-per-ip", o->sp.max_conns_per_ip, 1, CLI_MAX_CONNECTIONS)
    U("timeout", o->sp.idle_timeout_s, 1, CLI_MAX_TIMEOUT_S)
    U("header-timeout", o->sp.header_timeout_s, 1, CLI_MAX_TIMEOUT_S)
    U("body-timeout", o->sp.body_timeout_s, 1, CLI_MAX_TIMEOUT_S)
    U("grace", o->grace_s, 0, CLI_MAX_TIMEOUT_S)
    U("max-output", o->sp.max_stream_pending, 1, CLI_MAX_BODY_BYTES)
#undef U
    cli_errorf("serve", "unknown option '%s'", key);
    return -1;
}

/* --config FILE: the YAML configuration (docs/ROUTING.md). Its `server:`
 * entries are applied like command-line options (which override them, as
 * they are applied after); the upstreams' keys are read from the variables
 * their api_key_env names. */
static bool load_config(struct serve_options *o, const char *path)
{
    struct ea_error err = {0};
    if (ea_router_config_load(path, &o->cfg, &err)) {
        fprintf(stderr, "edgeagent serve: %s\n", err.msg);
        return false;
    }
    for (size_t i = 0; i < o->cfg->n_server; i++) {
        const struct ea_config_server_option *so = &o->cfg->server[i];
        bool is_flag = !strcmp(so->key, "insecure-no-auth") || !strcmp(so->key, "log-content") ||
                       !strcmp(so->key, "limit-loopback") || !strcmp(so->key, "no-ledger");
        if (!strcmp(so->key, "api-key")) {
            cli_errorf("serve", "%s:%u:%u: server.api-key: an API key does not belong in a file; use "
                                "EDGEAGENT_API_KEY or server.api-key-file",
                       path, (unsigned)so->pos.line, (unsigned)so->pos.column);
            return false;
        }
        if (apply(o, so->key, *so->value || !is_flag ? so->value : "true") < 0) {
            cli_errorf("serve", "%s:%u:%u: server.%s: see above", path, (unsigned)so->pos.line,
                       (unsigned)so->pos.column, so->key);
            return false;
        }
    }
    o->keys = calloc(o->cfg->n_upstreams ? o->cfg->n_upstreams : 1, sizeof *o->keys);
    if (!o->keys)
        return false;
    for (size_t i = 0; i < o->cfg->n_upstreams; i++) {
        const struct ea_upstream_config *u = &o->cfg->upstreams[i];
        if (!u->api_key_env)
            continue;
        const char *v = getenv(u->api_key_env);
        if (!v || !*v) {
            cli_errorf("serve", "%s:%u:%u: upstreams[%zu].api_key_env: the variable %s (the key of "
                                "upstream '%s') is %s",
                       path, (unsigned)u->pos.line, (unsigned)u->pos.column, i, u->api_key_env,
                       u->name, v ? "empty" : "not set");
            return false;
        }
        o->keys[i] = v;
    }
    for (size_t i = 0; i < o->cfg->n_upstreams && !o->model; i++)
        if (o->cfg->upstreams[i].kind == EA_UPSTREAM_LOCAL && o->cfg->upstreams[i].model)
            o->model = o->cfg->upstreams[i].model;
    return true;
}

/* The cost and latency ledger (docs/LEDGER.md): --data-dir, else
 * ledger.data_dir, else $XDG_DATA_HOME/edgeagent. An explicit directory
 * that cannot be used is an error; the default one a warning, and the
 * server runs without a ledger. Starts the summary sync when configured. */
static bool open_ledger(struct serve_options *o, ea_ledger **out)
{
    *out = NULL;
    struct ea_error err = {0};
    struct ea_ledger_config lc;
    ea_ledger_config_init(&lc);
    if (o->cfg && ea_ledger_config_parse(o->cfg, &lc, &err)) {
        fprintf(stderr, "edgeagent serve: %s\n", err.msg);
        return false;
    }
    bool explicit_dir = o->data_dir || lc.data_dir;
    char dir[4096];
    bool ok = false;
    if (!cli_ledger_dir("serve", o->data_dir, lc.data_dir, dir, sizeof dir)) {
        ok = !explicit_dir;
        goto done;
    }
    struct ea_ledger_options lo = {.config = &lc};
    if (ea_ledger_open(dir, &lo, out, &err)) {
        if (explicit_dir) {
            cli_errorf("serve", "the ledger: %s", err.msg);
            goto done;
        }
        printf("edgeagent serve: warning: serving without a ledger (%s; set --data-dir)\n", err.msg);
        ok = true;
        goto done;
    }
    if (lc.sync_endpoint) {
        const char *key = lc.sync_api_key_env ? getenv(lc.sync_api_key_env) : NULL;
        if (lc.sync_api_key_env && (!key || !*key)) {
            cli_errorf("serve", "ledger.sync.api_key_env: the variable %s is not set",
                       lc.sync_api_key_env);
            goto done;
        }
        struct ea_ledger_sync_options so = {.endpoint = lc.sync_endpoint, .api_key = key,
                                            .interval_ms = lc.sync_interval_s * 1000u};
        if (ea_ledger_sync_start(*out, &so, &err)) {
            cli_errorf("serve", "ledger sync: %s", err.msg);
            goto done;
        }
    }
    printf("edgeagent serve: ledger: %s\n", ea_ledger_path(*out));
    ok = true;
done:
    if (!ok) {
        ea_ledger_close(*out);
        *out = NULL;
    }
    ea_ledger_config_release(&lc);
    return ok;
}

static char *read_key_file(const char *path)
{
    struct ea_error err = {0};
    size_t len;
    char *t = cli_read_file(path, 4096, &len, &err);
    if (!t) {
        cli_error("serve", &err);
        return NULL;
    }
    t[strcspn(t, "\r\n")] = '\0';
    return t;
}

/* Waits for a second SIGINT/SIGTERM/SIGHUP while the server drains, and
 * then ends the grace period. SIGUSR1 (sent by the main thread) ends it. */
struct second_signal {
    ea_server *srv;
    const sigset_t *sigs;
    pthread_mutex_t mu;
    bool done;
};

static void *second_signal_main(void *arg)
{
    struct second_signal *ss = arg;
    sigset_t set = *ss->sigs;
    sigaddset(&set, SIGUSR1);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        pthread_mutex_lock(&ss->mu);
        bool done = ss->done;
        pthread_mutex_unlock(&ss->mu);
        if (done || sig == SIGUSR1)
            return NULL;
        printf("edgeagent serve: second signal: cancelling the requests still running\n");
        fflush(stdout);
        ea_server_cut_grace(ss->srv);
        return NULL;
    }
}

/* The model's file name without directories and .gguf. */
static void default_model_id(const char *path, char *out, size_t cap)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, cap, "%s", b);
    size_t n = strlen(out);
    if (n > 5 && !strcmp(out + n - 5, ".gguf"))
        out[n - 5] = '\0';
}

int cmd_serve(int argc, char **argv)
{
    struct serve_options o;
    memset(&o, 0, sizeof o);
    ea_server_params_default(&o.sp);
    snprintf(o.host, sizeof o.host, "127.0.0.1");
    o.parallel = 4;
    o.max_queue = 64;
    o.kv_mem_mb = 256;
    o.grace_s = 10;
    int rc = 2;
    ea_ledger *ledger = NULL;              /* opened after the options, closed at out */
    ea_privacy_detector *privacy = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            if (o.cfg) {
                cli_errorf("serve", "--config given twice");
                goto out;
            }
            if (!load_config(&o, argv[i + 1]))
                goto out;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool is_flag = !strcmp(argv[i], "--insecure-no-auth") || !strcmp(argv[i], "--log-content") ||
                       !strcmp(argv[i], "--limit-loopback") || !strcmp(argv[i], "--no-ledger");
        int used = apply(&o, argv[i], is_flag ? NULL : v);
        if (used < 0)
            goto out;
        i += used - 1;
    }
    if (!o.model) {
        usage(stderr);
        goto out;
    }
    if (o.ctx == 1) {
        cli_errorf("serve", "--ctx 1: a context holds the prompt and the answer, so at least 2 "
                            "tokens (0 = the model's own, up to 4096)");
        goto out;
    }
    /* the key: --api-key, else --api-key-file, else EDGEAGENT_API_KEY; one
     * that is given but empty (or only white space) is an error, never a
     * silent "no key" (the library refuses it too) */
    if (!o.api_key_given && o.api_key_file) {
        if (!(o.api_key = read_key_file(o.api_key_file)))
            goto out;
        o.api_key_given = true;
    }
    const char *env_key = getenv("EDGEAGENT_API_KEY");
    if (!o.api_key_given && env_key) {
        o.api_key = strdup(env_key);
        o.api_key_given = true;
    }
    if (o.api_key_given &&
        (!o.api_key || strspn(o.api_key, " \t\r\n") == strlen(o.api_key))) {
        cli_errorf("serve", "the API key (%s) is empty or only white space",
                   o.api_key_file ? o.api_key_file : env_key && !o.api_key_file ? "EDGEAGENT_API_KEY" : "--api-key");
        goto out;
    }
    char model_id[128], model_path[4096];
    if (!cli_resolve_model("serve", o.model, o.models_dir, model_path, sizeof model_path)) {
        rc = 1;
        goto out;
    }
    if (strcmp(model_path, o.model) == 0)
        default_model_id(o.model, model_id, sizeof model_id);
    else
        snprintf(model_id, sizeof model_id, "%s", o.model); /* a store name, whole */
    o.model = model_path;
    o.sp.host = o.host;
    o.sp.api_key = o.api_key;
    o.sp.router_config = o.cfg;
    o.sp.upstream_keys = o.keys;
    /* POST /v1/edgeagent/models/pull pulls into the same store as -m reads */
    char store_dir[4096];
    if (cli_store_dir("serve", o.models_dir, store_dir, sizeof store_dir))
        o.sp.models_dir = store_dir;
    o.sp.hf_token = getenv("HF_TOKEN");
    o.sp.hf_endpoint = getenv("HF_ENDPOINT");
    o.sp.max_inflight = (int32_t)(o.parallel + o.max_queue);

    /* signals are taken by sigwait below; every thread started from here on
     * inherits the mask, so none of them is interrupted */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP); /* a closed terminal or a service manager: drain, do not die */
    sigset_t blocked = sigs;
    sigaddset(&blocked, SIGUSR1); /* only to wake the second-signal watcher */
    pthread_sigmask(SIG_BLOCK, &blocked, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (!o.no_ledger && !open_ledger(&o, &ledger))
        goto out;
    o.sp.ledger = ledger;
    if (o.cfg) { /* the privacy guard's detector, for tasks with privacy: redact */
        struct ea_error perr = {0};
        if (ea_privacy_detector_create(o.cfg->privacy, o.cfg->file, &privacy, &perr)) {
            fprintf(stderr, "edgeagent serve: %s\n", perr.msg);
            goto out;
        }
        o.sp.privacy = privacy;
    }

    struct ea_error err = {0};
    ea_server *srv = NULL;
    ea_model *m = NULL;
    ea_tokenizer *tok = NULL;
    ea_engine *eng = NULL;
    int32_t *eog = NULL;
    rc = 1;
    if (ea_server_create(&o.sp, &srv, &err)) {
        cli_error("serve", &err);
        goto out;
    }
    const char *shown = strchr(o.host, ':') ? "[%s]" : "%s";
    char hostpart[300];
    snprintf(hostpart, sizeof hostpart, shown, o.host);
    printf("edgeagent serve: listening on http://%s:%u/ (loading %s)\n", hostpart,
           (unsigned)ea_server_port(srv), o.model);
    fflush(stdout);

    if (cli_load(o.model, (int)o.threads, &m, &tok, &err)) {
        cli_error("serve", &err);
        goto out_server;
    }
    const struct ea_model_info *mi = ea_model_get_info(m);
    uint32_t nv = ea_tokenizer_n_vocab(tok);
    int32_t n_eog = 0;
    eog = malloc(sizeof *eog * 64);
    for (uint32_t t = 0; eog && t < nv && n_eog < 64; t++)
        if (ea_tokenizer_is_eog(tok, (int32_t)t))
            eog[n_eog++] = (int32_t)t;
    struct ea_engine_params ep;
    ea_engine_params_default(&ep);
    ep.kv_mem_bytes = o.kv_mem_mb << 20;
    ep.max_running = (int32_t)o.parallel;
    ep.max_queue = (int32_t)o.max_queue;
    ep.max_context = (int32_t)o.ctx;
    ep.eog_tokens = eog;
    ep.n_eog_tokens = n_eog;
    ep.reserve_kv = true; /* memory use is fixed from the start (see docs/SERVER.md) */
    if (ea_engine_create(m, &ep, &eng, &err)) {
        cli_error("serve", &err);
        goto out_model;
    }
    const int32_t max_ctx = ea_engine_max_context(eng);
    /* the server takes the model and engine (a POST models/load unloads
     * them once replaced) and builds replacements with the same parameters */
    char arch[64]; /* read before the model is the server's (a switch may unload it) */
    snprintf(arch, sizeof arch, "%s", mi->arch);
    unsigned n_layer = mi->n_layer;
    struct ea_model_load_params lp = cli_model_params((int)o.threads);
    struct ea_server_backend be = {m,       tok, eng, o.model_id ? o.model_id : model_id,
                                   (int32_t)max_ctx, (int32_t)o.parallel, true, &ep, &lp};
    if (ea_server_set_backend(srv, &be, &err)) {
        cli_error("serve", &err);
        goto out_engine;
    }
    m = NULL; /* the server's now */
    tok = NULL;
    eng = NULL;
    printf("edgeagent serve: ready: model %s (%s, %u layers, context %d), %d parallel, "
           "API key %s\n",
           be.model_id, arch, n_layer, (int)max_ctx, (int)o.parallel,
           o.api_key ? "required" : "not required");
    fflush(stdout);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0 || (sig != SIGINT && sig != SIGTERM && sig != SIGHUP))
        ;
    printf("edgeagent serve: %s: shutting down (grace %u s; a second signal stops at once)\n",
           sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "SIGTERM", (unsigned)o.grace_s);
    fflush(stdout);
    /* a second signal during the drain cuts the grace period short */
    struct second_signal ss = {.srv = srv, .sigs = &sigs, .mu = PTHREAD_MUTEX_INITIALIZER};
    pthread_t watcher;
    bool watching = pthread_create(&watcher, NULL, second_signal_main, &ss) == 0;
    ea_server_shutdown(srv, (unsigned)o.grace_s * 1000u);
    if (watching) {
        pthread_mutex_lock(&ss.mu);
        ss.done = true;
        pthread_mutex_unlock(&ss.mu);
        pthread_kill(watcher, SIGUSR1); /* wakes its sigwait (SIGUSR1 is in its set) */
        pthread_join(watcher, NULL);
    }
    ea_server_destroy(srv);
    srv = NULL;
    rc = 0;
out_engine:
    ea_server_destroy(srv); /* before the engine it borrows */
    srv = NULL;
    ea_engine_destroy(eng);
out_model:
    ea_tokenizer_destroy(tok);
    ea_model_destroy(m);
out_server:
    ea_server_destroy(srv);
    free(eog);
    if (rc == 0) {
        printf("edgeagent serve: stopped\n");
        fflush(stdout);
    }
out:
    ea_ledger_close(ledger); /* after the server: every row is queued by now */
    ea_privacy_detector_destroy(privacy);
    free(o.api_key);
    free(o.keys);
    ea_router_config_destroy(o.cfg);
    return rc;
}
#endif /* EA_HAVE_NET */
