/* test_routing.c - edge/cloud routing end to end (EA_TEST_NEEDS_NET):
 * `edgeagent serve --config` as a process in front of real loopback peers:
 * the fault-injecting OpenAI stub (tests/node/openai_stub.mjs) as the cloud,
 * and a second `edgeagent serve` as an edge node. Every fallback path both
 * ways (each injected fault, streamed and not), 400 and 401 returned as they
 * are, allow_cloud: false never reaching the cloud under any fault, the
 * breaker opening and recovering, the cloud's port closed (offline),
 * hedging (the faster side wins, the other is cancelled), and 1,000 mixed
 * requests with random faults, each ending in a completion or an explicit
 * error. Bounded in count and time; only 127.0.0.1.
 */
#define _GNU_SOURCE /* strcasestr */
#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgeagent/model.h"
#include "harness.h"
#include "privacy_eval.h"

/* ---- peers ---------------------------------------------------------------------------- */

static const char *model_path(void)
{
    static char path[4200];
    if (!path[0]) {
        snprintf(path, sizeof path, "%s", ea_test_tmp_path("routing-tiny.gguf"));
        struct ea_gen_params gp = {.preset = "tiny", .ftype = "F16", .seed = 11};
        struct ea_error err = {0};
        ASSERT_OK(ea_model_generate(&gp, path, &err), &err);
    }
    return path;
}

struct peer {
    struct ea_test_proc p;
    int port;
};

/* The stub on a free port ("PORT n" on its first line); extra: one option or NULL. */
static void stub_start(struct peer *s, const char *extra)
{
    char script[4200];
    snprintf(script, sizeof script, "%s/tests/node/openai_stub.mjs",
             getenv("EA_SOURCE_DIR") ? getenv("EA_SOURCE_DIR") : "..");
    const char *argv[] = {"/usr/bin/env", "node", script, extra, NULL};
    ea_test_proc_start(&s->p, argv, "routing-stub.log");
    if (!ea_test_proc_wait(&s->p, "\n", 20000) || !strstr(s->p.seen, "PORT "))
        FAIL("the stub did not start (node missing?): %s", s->p.seen);
    s->port = atoi(strstr(s->p.seen, "PORT ") + 5);
}

/* A temp path (name) that does not exist yet, into dir. */
static void fresh_dir(const char *name, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s", ea_test_tmp_path(name));
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ASSERT_EQ(system(cmd), 0);
}

/* `edgeagent serve` with the configuration yaml (%d in it: the stub's port). */
static void serve_start(struct peer *e, const char *yaml_fmt, int stub_port, const char *const *extra)
{
    char yaml[4096], path[4200];
    /* %d: the stub's port; then a latency budget (ms) scaled to the build's speed */
    snprintf(yaml, sizeof yaml, yaml_fmt, stub_port, (int)(600 * ea_test_time_scale()));
    snprintf(path, sizeof path, "%s", ea_test_tmp_path("routing.yaml"));
    FILE *f = fopen(path, "w");
    ASSERT(f);
    fputs(yaml, f);
    fclose(f);
    const char *argv[32] = {ea_test_binary(), "serve", "-m", model_path(), "--port", "0",
                            "--config", path, "--parallel", "2"};
    int n = 10;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    ea_test_proc_start(&e->p, argv, "routing-serve.log");
    const char *l;
    if (!ea_test_proc_wait(&e->p, "ready:", 60000) || !(l = strstr(e->p.seen, "http://127.0.0.1:"))) {
        char *log = ea_test_read_file(e->p.log, NULL);
        FAIL("serve did not start: %s / %s", e->p.seen, log ? log : "");
    }
    e->port = atoi(l + strlen("http://127.0.0.1:"));
}

/* Stops a peer; an edgeagent one must exit 0 (under a sanitizer, a report
 * makes it exit otherwise). The stub's status is not checked. */
static void peer_stop(struct peer *p)
{
    bool is_edgeagent = strstr(p->p.log, "routing-stub") == NULL;
    int st = ea_test_proc_stop(&p->p, SIGTERM);
    if (is_edgeagent && st != 0) {
        char *log = ea_test_read_file(p->p.log, NULL);
        FAIL("edgeagent exited %d: %.4000s", st, log ? log : "");
    }
}

/* ---- HTTP ------------------------------------------------------------------------------ */

struct resp {
    long status;
    char *body;
    size_t len;
    char source[96], attempts[512], retry_after[32], overhead[32], request_id[64], reason[256];
};

static size_t on_body(char *p, size_t sz, size_t n, void *u)
{
    struct resp *r = u;
    size_t k = sz * n;
    char *nb = realloc(r->body, r->len + k + 1);
    if (!nb)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return k;
}

static void header_value(const char *p, size_t k, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (k > nl + 2 && !strncasecmp(p, name, nl) && p[nl] == ':') {
        size_t v = nl + 2, e = k;
        while (e > v && (p[e - 1] == '\r' || p[e - 1] == '\n'))
            e--;
        snprintf(out, cap, "%.*s", (int)(e - v), p + v);
    }
}

static size_t on_header(char *p, size_t sz, size_t n, void *u)
{
    struct resp *r = u;
    size_t k = sz * n;
    header_value(p, k, "X-EdgeAgent-Source", r->source, sizeof r->source);
    header_value(p, k, "X-EdgeAgent-Attempts", r->attempts, sizeof r->attempts);
    header_value(p, k, "Retry-After", r->retry_after, sizeof r->retry_after);
    header_value(p, k, "X-EdgeAgent-Overhead-Ms", r->overhead, sizeof r->overhead);
    header_value(p, k, "X-Request-Id", r->request_id, sizeof r->request_id);
    header_value(p, k, "X-EdgeAgent-Route-Reason", r->reason, sizeof r->reason);
    return k;
}

/* POST (body) or GET (NULL) to 127.0.0.1:port path. */
static long req(int port, const char *path, const char *body, struct resp *r)
{
    memset(r, 0, sizeof *r);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)(60 * ea_test_time_scale())); /* sanitizers: 10x */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r->body)
        r->body = calloc(1, 1);
    return r->status;
}

static void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* The stub's log: how many model requests reached it. */
static int stub_requests(const struct peer *s)
{
    struct resp r;
    req(s->port, "/_stub/log", NULL, &r);
    json_t *j = json_loads(r.body, 0, NULL);
    int n = (int)json_array_size(json_object_get(j, "requests"));
    json_decref(j);
    resp_free(&r);
    return n;
}

static void stub_ctl(const struct peer *s, const char *path, const char *body)
{
    struct resp r;
    ASSERT_EQ(req(s->port, path, body ? body : "{}", &r), 200);
    resp_free(&r);
}

/* A chat request body for model (a task or upstream name) with the
 * message text; stream or not; ext: the "edgeagent" object or NULL. */
static const char *chat(const char *model, const char *text, bool stream, const char *ext)
{
    static char b[1024];
    snprintf(b, sizeof b,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],"
             "\"max_tokens\":6%s%s%s}",
             model, text, stream ? ",\"stream\":true" : "", ext ? ",\"edgeagent\":" : "", ext ? ext : "");
    return b;
}

/* A streamed answer ended cleanly: [DONE] and no error event. */
static bool stream_clean(const struct resp *r)
{
    return strstr(r->body, "data: [DONE]") && !strstr(r->body, "data: {\"error\"");
}

/* ---- the configuration ----------------------------------------------------------------- */

/* %d: the stub's port. The breaker is out of the way in the fault matrix. */
static const char config_fmt[] =
    "upstreams:\n"
    "  - {name: local, kind: local}\n"
    "  - name: cloud\n"
    "    kind: openai\n"
    "    base_url: http://127.0.0.1:%d/v1\n"
    "    model: stub-model\n"
    "    api_key_env: EA_TEST_CLOUD_KEY\n"
    "    timeouts: {connect_ms: 500, first_token_ms: 1500, idle_ms: 800, total_ms: 8000}\n"
    "tasks:\n"
    "  - {name: edge, mode: prefer_edge}\n"
    "  - {name: cloudfirst, mode: prefer_cloud}\n"
    "  - {name: cloudonly, mode: cloud_only}\n"
    "  - {name: hybrid, mode: hybrid, max_latency_ms: %d}\n"
    "routing:\n"
    "  default_task: cloudfirst\n"
    "  breaker: {failures: 1000000}\n"
    "  retries: {max: 1, base_ms: 5, max_ms: 50}\n";

/* ---- cases ------------------------------------------------------------------------------ */

static void cloud_answers_and_says_so(void)
{
    setenv("EA_TEST_CLOUD_KEY", "k-test", 1);
    struct peer stub, ea;
    stub_start(&stub, NULL);
    serve_start(&ea, config_fmt, stub.port, NULL);
    struct resp r;
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:cloudfirst", "hi", false, NULL), &r), 200);
    ASSERT_STR_EQ(r.source, "cloud:cloud");
    ASSERT_STR_EQ(r.attempts, "cloud=ok");
    ASSERT(strstr(r.body, "\"content\":\"stub:2\""));
    ASSERT(strstr(r.body, "\"upstream\":\"cloud\""));
    resp_free(&r);
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("cloud", "hello", true, NULL), &r), 200);
    ASSERT_STR_EQ(r.source, "cloud:cloud");
    ASSERT(stream_clean(&r));
    resp_free(&r);
    /* what reached the cloud: its model name, a stream with usage, the key,
     * no edgeagent extension */
    ASSERT_EQ(req(stub.port, "/_stub/log", NULL, &r), 200);
    json_t *j = json_loads(r.body, 0, NULL);
    json_t *rq = json_array_get(json_object_get(j, "requests"), 0);
    json_t *body = json_object_get(rq, "body");
    ASSERT_STR_EQ(json_string_value(json_object_get(body, "model")), "stub-model");
    ASSERT(json_is_true(json_object_get(body, "stream")));
    ASSERT(json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage")));
    ASSERT(!json_object_get(body, "edgeagent"));
    ASSERT(json_is_true(json_object_get(rq, "auth")));
    json_decref(j);
    resp_free(&r);
    /* a reply with \u0000 in it is valid JSON: passed through, not a broken stream */
    stub_ctl(&stub, "/_stub/config", "{\"reply\":\"a\\u0000b\",\"chunks\":1}");
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("cloud", "hi", true, NULL), &r), 200);
    if (!(stream_clean(&r) && strstr(r.body, "a\\u0000b")))
        FAIL("body: %.2000s", r.body);
    resp_free(&r);
    stub_ctl(&stub, "/_stub/config", "{}");
    /* the OpenTelemetry GenAI names, per upstream that answered */
    ASSERT_EQ(req(ea.port, "/metrics", NULL, &r), 200);
    /* (a request's figures are recorded as it is freed, just after its answer) */
    for (int i = 0; i < 100 && !strstr(r.body, "gen_ai_client_operation_duration_seconds_count{"
                                               "gen_ai_provider_name=\"cloud\",gen_ai_request_model="
                                               "\"stub-model\",upstream=\"cloud\"} 3"); i++) {
        usleep(10000);
        resp_free(&r);
        req(ea.port, "/metrics", NULL, &r);
    }
    ASSERT(strstr(r.body, "gen_ai_client_operation_duration_seconds_count{gen_ai_provider_name=\"cloud\","
                          "gen_ai_request_model=\"stub-model\",upstream=\"cloud\"} 3"));
    ASSERT(strstr(r.body, "gen_ai_client_token_usage_count{gen_ai_provider_name=\"cloud\",gen_ai_request_model="
                          "\"stub-model\",upstream=\"cloud\",gen_ai_token_type=\"input\"} 3"));
    ASSERT(strstr(r.body, "gen_ai_server_time_to_first_token_seconds_bucket{"));
    resp_free(&r);
    peer_stop(&ea);
    peer_stop(&stub);
}

/* Every fault of the cloud, streamed and not, falls back to the edge; and
 * the edge's failure falls back to the cloud. */
static void fallbacks_both_ways(void)
{
    setenv("EA_TEST_CLOUD_KEY", "k-test", 1);
    struct peer stub, ea;
    stub_start(&stub, NULL);
    serve_start(&ea, config_fmt, stub.port, NULL);
    static const struct {
        const char *fault; /* the stub's default set */
        const char *outcome; /* the cloud attempt's, in X-EdgeAgent-Attempts */
        int tries;           /* requests that reach the stub (with the retry) */
    } faults[] = {
        {"{\"status\":500}", "cloud=http_500, cloud=http_500, local=ok", 2},
        {"{\"status\":429,\"retry_after\":\"0\"}", "cloud=http_429, cloud=http_429, local=ok", 2},
        {"{\"reset\":true}", "cloud=bad_reply, cloud=bad_reply, local=ok", 2},
        {"{\"malformed\":true}", "cloud=bad_reply, cloud=bad_reply, local=ok", 2},
        {"{\"error_first\":true}", "cloud=bad_reply, cloud=bad_reply, local=ok", 2},
        {"{\"html\":true}", "cloud=bad_reply, cloud=bad_reply, local=ok", 2},
        {"{\"delay_ms\":3000}", "cloud=timeout, local=ok", 1},
    };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        for (int stream = 0; stream < 2; stream++) {
            stub_ctl(&stub, "/_stub/reset", NULL);
            stub_ctl(&stub, "/_stub/config", faults[i].fault);
            struct resp r;
            double t0 = ea_test_now_ms();
            req(ea.port, "/v1/chat/completions", chat("task:cloudfirst", "hi", stream, NULL), &r);
            double took = ea_test_now_ms() - t0;
            printf("    %s %s -> %ld %s [%s] %.0f ms, router overhead %s ms\n", faults[i].fault,
                   stream ? "stream" : "json", r.status, r.source, r.attempts, took, r.overhead);
            /* the time spent in the failed attempts and backoffs is not the router's */
            if (took > 1000)
                ASSERT(atof(r.overhead) < 0.25 * took);
            ASSERT_EQ(r.status, 200);
            ASSERT_STR_EQ(r.source, "edge");
            ASSERT(!strncmp(r.attempts, "cloud=", 6) && strstr(r.attempts, "local=ok"));
            if (stream)
                ASSERT(stream_clean(&r));
            resp_free(&r);
        }
    }
    /* a cut stream and a silent one, before any byte reached the client */
    const char *cuts[] = {"{\"cut_after\":0}", "{\"silence_after\":0}"};
    for (size_t i = 0; i < 2; i++) {
        stub_ctl(&stub, "/_stub/config", cuts[i]);
        struct resp r;
        ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:cloudfirst", "hi", true, NULL), &r), 200);
        ASSERT_STR_EQ(r.source, "edge");
        ASSERT(stream_clean(&r));
        resp_free(&r);
    }
    stub_ctl(&stub, "/_stub/config", "{}");
    /* the other way: a prompt past the local context goes to the cloud */
    char *big = malloc(20000);
    size_t k = (size_t)snprintf(big, 200, "{\"model\":\"task:edge\",\"max_tokens\":4,\"messages\":"
                                           "[{\"role\":\"user\",\"content\":\"");
    for (int i = 0; i < 3000; i++)
        k += (size_t)snprintf(big + k, 20000 - k, "word ");
    snprintf(big + k, 20000 - k, "\"}]}");
    struct resp r;
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", big, &r), 200);
    ASSERT_STR_EQ(r.source, "cloud:cloud");
    free(big);
    resp_free(&r);
    peer_stop(&ea);
    peer_stop(&stub);
}

/* A 400 or 401 from the cloud is the request's: returned as it is, not
 * retried, not sent elsewhere. A failure after bytes were streamed ends
 * the stream with an error event. */
static void client_errors_and_broken_streams(void)
{
    setenv("EA_TEST_CLOUD_KEY", "k-test", 1);
    struct peer stub, ea;
    stub_start(&stub, NULL);
    serve_start(&ea, config_fmt, stub.port, NULL);
    const char *cases[][2] = {{"{\"status\":400,\"message\":\"bad thing\"}", "400"},
                              {"{\"require_key\":\"other\"}", "401"}};
    for (size_t i = 0; i < 2; i++) {
        stub_ctl(&stub, "/_stub/reset", NULL);
        stub_ctl(&stub, "/_stub/config", cases[i][0]);
        struct resp r;
        req(ea.port, "/v1/chat/completions", chat("task:cloudfirst", "hi", false, NULL), &r);
        ASSERT_EQ(r.status, atoi(cases[i][1]));
        ASSERT(strstr(r.body, "upstream_rejected") || strstr(r.body, "\"error\""));
        ASSERT_EQ(stub_requests(&stub), 1);
        resp_free(&r);
    }
    /* the upstream's error text reaches the client, never the log (it may quote the request) */
    {
        char *log = ea_test_read_file(ea.p.log, NULL);
        ASSERT(log && strstr(log, "upstream_rejected") && !strstr(log, "bad thing"));
        free(log);
    }
    /* cut after two chunks of a stream: the client saw them, then an error */
    stub_ctl(&stub, "/_stub/config", "{\"cut_after\":2,\"chunks\":4}");
    struct resp r;
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:cloudfirst", "hi", true, NULL), &r), 200);
    ASSERT_STR_EQ(r.source, "cloud:cloud");
    ASSERT(strstr(r.body, "data: {\"error\"") && strstr(r.body, "data: [DONE]"));
    resp_free(&r);
    /* ... while a non-streamed request falls back (the client saw nothing) */
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:cloudfirst", "hi", false, NULL), &r), 200);
    ASSERT_STR_EQ(r.source, "edge");
    resp_free(&r);
    stub_ctl(&stub, "/_stub/config", "{}");
    peer_stop(&ea);
    peer_stop(&stub);
}

/* allow_cloud: false (and private: true) never reach the cloud, whatever
 * fails; a cloud-only task then has nothing to run on. */
static void allow_cloud_false_never_reaches_cloud(void)
{
    setenv("EA_TEST_CLOUD_KEY", "k-test", 1);
    struct peer stub, ea;
    stub_start(&stub, NULL);
    serve_start(&ea, config_fmt, stub.port, NULL);
    stub_ctl(&stub, "/_stub/reset", NULL);
    const char *tasks[] = {"task:cloudfirst", "task:edge", "task:hybrid", "auto"};
    const char *exts[] = {"{\"allow_cloud\":false}", "{\"private\":true}"};
    for (size_t t = 0; t < 4; t++)
        for (size_t x = 0; x < 2; x++)
            for (int stream = 0; stream < 2; stream++) {
                struct resp r;
                ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat(tasks[t], "hi", stream, exts[x]), &r),
                          200);
                ASSERT_STR_EQ(r.source, "edge");
                resp_free(&r);
            }
    struct resp r;
    ASSERT_EQ(req(ea.port, "/v1/chat/completions",
                  chat("task:cloudonly", "hi", false, "{\"allow_cloud\":false}"), &r), 503);
    ASSERT(strstr(r.body, "no_upstream_available"));
    resp_free(&r);
    ASSERT_EQ(stub_requests(&stub), 0);
    peer_stop(&ea);
    peer_stop(&stub);
}

static const char breaker_fmt[] =
    "upstreams:\n"
    "  - {name: local, kind: local}\n"
    "  - name: cloud\n"
    "    kind: openai\n"
    "    base_url: http://127.0.0.1:%d/v1\n"
    "    model: stub-model\n"
    "    timeouts: {connect_ms: 300, first_token_ms: 1000, idle_ms: 800, total_ms: 5000}\n"
    "routing:\n"
    "  defaults: {mode: prefer_cloud}\n"
    "  breaker: {failures: 3, cooldown_ms: %d}\n"
    "  retries: {max: 0}\n";

/* The breaker opens after 3 failures (then the cloud is not tried), lets
 * one probe through after the cool-down, and closes on its success. */
static void breaker_opens_and_recovers(void)
{
    struct peer stub, ea;
    stub_start(&stub, NULL);
    serve_start(&ea, breaker_fmt, stub.port, NULL);
    stub_ctl(&stub, "/_stub/config", "{\"status\":503}");
    struct resp r;
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("auto", "hi", false, NULL), &r), 200);
        ASSERT_STR_EQ(r.attempts, "cloud=http_503, local=ok");
        resp_free(&r);
    }
    ASSERT_EQ(stub_requests(&stub), 3);
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("auto", "hi", false, NULL), &r), 200);
    ASSERT_STR_EQ(r.attempts, "local=ok"); /* open: not tried */
    resp_free(&r);
    ASSERT_EQ(stub_requests(&stub), 3);
    ASSERT_EQ(req(ea.port, "/v1/edgeagent/upstreams", NULL, &r), 200);
    ASSERT(strstr(r.body, "\"breaker\":\"open\""));
    resp_free(&r);
    /* the cloud recovers; after the cool-down the probe closes the breaker */
    stub_ctl(&stub, "/_stub/config", "{}");
    usleep((useconds_t)(700 * 1000 * ea_test_time_scale())); /* past the cool-down */
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("auto", "hi", false, NULL), &r), 200);
    ASSERT_STR_EQ(r.attempts, "cloud=ok");
    resp_free(&r);
    ASSERT_EQ(req(ea.port, "/v1/edgeagent/upstreams", NULL, &r), 200);
    ASSERT(strstr(r.body, "\"breaker\":\"closed\""));
    resp_free(&r);
    peer_stop(&ea);
    peer_stop(&stub);
}

/* The cloud's port closed: the first request falls back within the connect
 * timeout; once the breaker is open the edge answers with no cloud attempt. */
static void offline_stays_on_edge(void)
{
    struct peer stub, ea;
    stub_start(&stub, NULL);
    int port = stub.port;
    peer_stop(&stub); /* nothing listens there now */
    serve_start(&ea, breaker_fmt, port, NULL);
    struct resp r;
    double t0 = ea_test_now_ms();
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("auto", "hi", false, NULL), &r), 200);
    double first = ea_test_now_ms() - t0;
    ASSERT_STR_EQ(r.attempts, "cloud=connect_error, local=ok");
    resp_free(&r);
    printf("    first request with the cloud down: %.1f ms\n", first);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("auto", "hi", true, NULL), &r), 200);
        resp_free(&r);
    }
    for (int i = 0; i < 20; i++) {
        ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("auto", "hi", i % 2, NULL), &r), 200);
        ASSERT_STR_EQ(r.attempts, "local=ok");
        ASSERT_STR_EQ(r.source, "edge");
        resp_free(&r);
    }
    peer_stop(&ea);
}

/* A second edgeagent as a stronger box on the LAN (edge-node tier). */
static void edge_node_is_another_edgeagent(void)
{
    struct peer node, ea;
    const char *const node_args[] = {NULL};
    /* the node: edgeagent serve with no configuration */
    {
        const char *argv[] = {ea_test_binary(), "serve", "-m", model_path(), "--port", "0",
                              "--model-id", "node-model", NULL};
        ea_test_proc_start(&node.p, argv, "routing-node.log");
        const char *l;
        if (!ea_test_proc_wait(&node.p, "ready:", 60000) ||
            !(l = strstr(node.p.seen, "http://127.0.0.1:")))
            FAIL("the node did not start: %s", node.p.seen);
        node.port = atoi(l + strlen("http://127.0.0.1:"));
    }
    static const char fmt[] = "upstreams:\n"
                              "  - {name: local, kind: local}\n"
                              "  - {name: lan, kind: openai, tier: edge-node, model: node-model,\n"
                              "     base_url: 'http://127.0.0.1:%d/v1'}\n"
                              "tasks:\n"
                              "  - {name: big, mode: edge_only, upstreams: [lan, local]}\n";
    serve_start(&ea, fmt, node.port, node_args);
    struct resp r;
    for (int stream = 0; stream < 2; stream++) {
        ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:big", "hi", stream, NULL), &r), 200);
        printf("    via the node: %s [%s]\n", r.source, r.attempts);
        ASSERT_STR_EQ(r.source, "edge-node:lan");
        if (stream)
            ASSERT(stream_clean(&r));
        else
            ASSERT(strstr(r.body, "\"completion_tokens\":"));
        resp_free(&r);
    }
    /* allow_cloud: false keeps the LAN box (it is not the cloud) */
    ASSERT_EQ(req(ea.port, "/v1/chat/completions",
                  chat("task:big", "hi", false, "{\"allow_cloud\":false}"), &r), 200);
    ASSERT_STR_EQ(r.source, "edge-node:lan");
    resp_free(&r);
    peer_stop(&ea);
    peer_stop(&node);
}


/* A metric's value from /metrics (-1 when absent). */
static double metric(int port, const char *name)
{
    struct resp r;
    req(port, "/metrics", NULL, &r);
    double v = -1;
    char key[160];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(r.body, key);
    if (p)
        v = atof(p + strlen(key));
    resp_free(&r);
    return v;
}

struct bg {
    int port;
    const char *body;
    long status;
};

static void *bg_main(void *a)
{
    struct bg *b = a;
    struct resp r;
    b->status = req(b->port, "/v1/completions", b->body, &r);
    resp_free(&r);
    return NULL;
}

/* Hybrid: the edge first; with no token within the hedge delay the cloud
 * starts too, and the first to produce wins; the other is cancelled. */
static void hedging_faster_side_wins(void)
{
    setenv("EA_TEST_CLOUD_KEY", "k-test", 1);
    struct peer stub, ea;
    stub_start(&stub, NULL);
    const char *const one_slot[] = {"--parallel", "1", NULL};
    serve_start(&ea, config_fmt, stub.port, one_slot);
    struct resp r;
    /* an idle engine answers long before the hedge delay: the cloud is never started */
    stub_ctl(&stub, "/_stub/reset", NULL);
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:hybrid", "hi", false, NULL), &r), 200);
    ASSERT_STR_EQ(r.source, "edge");
    ASSERT_STR_EQ(r.attempts, "local=ok");
    ASSERT(strstr(r.body, "\"target\":\"HYBRID\""));
    resp_free(&r);
    ASSERT_EQ(stub_requests(&stub), 0);
    /* the engine's one slot busy with long generations: the local attempt
     * waits in the queue, the hedge starts the cloud, which wins (its reply
     * in one piece, so the client's stream carries it whole) */
    stub_ctl(&stub, "/_stub/config", "{\"chunks\":1}");
    static struct bg bgs[3]; /* outlive a failed case's early exit */
    static pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        /* the end-of-text token (2 in this vocabulary) banned: each runs its length */
        bgs[i] = (struct bg){ea.port,
                             "{\"model\":\"task:edge\",\"prompt\":\"a\",\"max_tokens\":1800,"
                             "\"logit_bias\":{\"2\":-100}}",
                             0};
        ASSERT_EQ(pthread_create(&th[i], NULL, bg_main, &bgs[i]), 0);
    }
    /* (under load the background requests may take a while to be queued) */
    double busy_by = ea_test_now_ms() + 20000 * ea_test_time_scale();
    while (metric(ea.port, "edgeagent_queue_depth") < 2 && ea_test_now_ms() < busy_by)
        usleep(10000);
    if (metric(ea.port, "edgeagent_queue_depth") < 2)
        FAIL("the background requests never filled the engine's queue (running %.0f, statuses %ld %ld %ld)",
             metric(ea.port, "edgeagent_running"), bgs[0].status, bgs[1].status, bgs[2].status);
    double t0 = ea_test_now_ms();
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:hybrid", "hi", true, NULL), &r), 200);
    double took = ea_test_now_ms() - t0;
    printf("    hedged request: %.0f ms, attempts [%s]\n", took, r.attempts);
    ASSERT_STR_EQ(r.source, "cloud:cloud");
    ASSERT(!strncmp(r.attempts, "local=", 6) && strstr(r.attempts, "cloud=ok"));
    ASSERT(strstr(r.body, "stub:2") && stream_clean(&r));
    resp_free(&r);
    ASSERT_EQ(stub_requests(&stub), 1);
    /* the losing local attempt left the engine's queue at once */
    double left = -1;
    for (int i = 0; i < 50; i++) {
        left = metric(ea.port, "edgeagent_queue_depth") + metric(ea.port, "edgeagent_running");
        if (left <= 3)
            break;
        usleep(10000);
    }
    ASSERT(left <= 3);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        ASSERT_EQ(bgs[i].status, 200);
    }
    /* everything ended: nothing in flight, no KV held */
    for (int i = 0; i < 200 && metric(ea.port, "edgeagent_kv_blocks{state=\"used\"}") > 0; i++)
        usleep(10000);
    ASSERT_EQ(metric(ea.port, "edgeagent_kv_blocks{state=\"used\"}"), 0);
    peer_stop(&ea);
    peer_stop(&stub);
}

struct mix {
    int port;
    atomic_int next, completions, errors, lost;
    int total;
};

/* One request of the mixed load; a completion, an explicit error, or lost. */
static void *mix_main(void *a)
{
    struct mix *m = a;
    static const char *const faults[] = {"",
                                         "",
                                         "",
                                         "#fault status=500",
                                         "#fault status=429; retry_after=0",
                                         "#fault status=400",
                                         "#fault reset",
                                         "#fault malformed",
                                         "#fault error_first",
                                         "#fault cut_after=1; chunks=3",
                                         "#fault malformed=2; chunks=4",
                                         "#fault html",
                                         "#fault delay_ms=50"};
    static const char *const models[] = {"task:cloudfirst", "task:edge", "task:hybrid", "cloud", "auto"};
    int i;
    while ((i = atomic_fetch_add(&m->next, 1)) < m->total) {
        unsigned h = (unsigned)i * 2654435761u;
        const char *fault = faults[h % 13];
        const char *model = models[(h >> 8) % 5];
        bool stream = (h >> 12) & 1;
        bool nocloud = ((h >> 13) % 8) == 0;
        char text[128];
        snprintf(text, sizeof text, "%s%s%s", fault, *fault ? " " : "", nocloud ? "nocloud" : "hi");
        char body[1024];
        snprintf(body, sizeof body,
                 "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"max_tokens\":6%s%s}",
                 model, text, stream ? ",\"stream\":true" : "",
                 nocloud ? ",\"edgeagent\":{\"allow_cloud\":false}" : "");
        struct resp r;
        long st = req(m->port, "/v1/chat/completions", body, &r);
        bool ok = false, err = false;
        if (st == 200 && stream) {
            ok = stream_clean(&r) && strstr(r.body, "\"finish_reason\":\"");
            err = strstr(r.body, "data: {\"error\"") && strstr(r.body, "data: [DONE]");
        } else if (st == 200) {
            json_t *j = json_loads(r.body, JSON_ALLOW_NUL, NULL); /* random models write \u0000 */
            json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
            ok = json_is_string(json_object_get(c0, "finish_reason")) &&
                 json_is_string(json_object_get(json_object_get(c0, "message"), "content"));
            json_decref(j);
        } else if (st >= 400) {
            json_t *j = json_loads(r.body, 0, NULL);
            err = json_is_string(json_object_get(json_object_get(j, "error"), "message"));
            json_decref(j);
        }
        if (ok)
            atomic_fetch_add(&m->completions, 1);
        else if (err)
            atomic_fetch_add(&m->errors, 1);
        else {
            atomic_fetch_add(&m->lost, 1);
            printf("    LOST: %s -> %ld %.200s\n", body, st, r.body);
        }
        resp_free(&r);
    }
    return NULL;
}

/* 1,000 mixed requests (tasks, streamed or not, allow_cloud false, random
 * faults): every one ends in a completion or an explicit error, and the
 * allow_cloud: false ones never reach the cloud. */
static void mixed_load_loses_nothing(void)
{
    setenv("EA_TEST_CLOUD_KEY", "k-test", 1);
    struct peer stub, ea;
    stub_start(&stub, "--faults-in-messages");
    serve_start(&ea, config_fmt, stub.port, NULL);
    struct mix m = {.port = ea.port, .total = 1000};
    pthread_t th[8];
    double t0 = ea_test_now_ms();
    for (int i = 0; i < 8; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, mix_main, &m), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    printf("    %d requests in %.1f s: %d completions, %d explicit errors, %d lost\n", m.total,
           (ea_test_now_ms() - t0) / 1e3, atomic_load(&m.completions), atomic_load(&m.errors),
           atomic_load(&m.lost));
    ASSERT_EQ(atomic_load(&m.lost), 0);
    ASSERT_EQ(atomic_load(&m.completions) + atomic_load(&m.errors), m.total);
    struct resp r;
    ASSERT_EQ(req(stub.port, "/_stub/log", NULL, &r), 200);
    ASSERT(!strstr(r.body, "nocloud"));
    ASSERT(strstr(r.body, "#fault")); /* the faults did reach it */
    resp_free(&r);
    ASSERT_EQ(req(ea.port, "/health", NULL, &r), 200);
    resp_free(&r);
    peer_stop(&ea);
    peer_stop(&stub);
}


/* The official openai SDK through every path (tests/node/router_sdk.mjs). */
static void openai_sdk_every_path(void)
{
    setenv("EA_TEST_CLOUD_KEY", "k-test", 1);
    struct peer stub, ea;
    stub_start(&stub, NULL);
    serve_start(&ea, config_fmt, stub.port, NULL);
    char cmd[9000];
    snprintf(cmd, sizeof cmd,
             "NODE_PATH='%s/tests/node/node_modules' node '%s/tests/node/router_sdk.mjs' "
             "http://127.0.0.1:%d http://127.0.0.1:%d",
             getenv("EA_SOURCE_DIR") ? getenv("EA_SOURCE_DIR") : "..",
             getenv("EA_SOURCE_DIR") ? getenv("EA_SOURCE_DIR") : "..", ea.port, stub.port);
    char *out = NULL, *err = NULL;
    int rc = ea_test_run(cmd, &out, &err);
    printf("%s%s", out ? out : "", err ? err : "");
    ASSERT_EQ(rc, 0);
    ASSERT(out && strstr(out, " 0 failed"));
    free(out);
    free(err);
    peer_stop(&ea);
    peer_stop(&stub);
}


/* The ledger through the server: one row per request (source, attempts,
 * fallbacks), cloud budgets as hard caps (reject: a 429 naming the budget;
 * edge: the edge answers), GET /v1/edgeagent/stats, the /metrics series,
 * and the rows read back from the file after the server stopped. */
static void ledger_rows_and_budgets(void)
{
    setenv("EA_TEST_CLOUD_KEY", "k-test", 1);
    char dir[4200], cmd[4300];
    fresh_dir("routing-ledger", dir, sizeof dir);
    /* 1000 USD per million tokens: a request's worst case is ~(3 + 6) x 0.001 */
    static const char fmt[] =
        "upstreams:\n"
        "  - {name: local, kind: local}\n"
        "  - name: cloud\n"
        "    kind: openai\n"
        "    base_url: http://127.0.0.1:%d/v1\n"
        "    model: stub-model\n"
        "    price: {input_per_mtok: 1000, output_per_mtok: 1000}\n"
        "tasks:\n"
        "  - {name: capped, mode: cloud_only}\n"
        "  - {name: spill, mode: prefer_cloud}\n"
        "  - {name: edge, mode: edge_only}\n"
        "  - {name: free, mode: cloud_only}\n"
        "ledger:\n"
        "  budgets:\n"
        "    tasks:\n"
        "      capped: {daily: 0.01, action: reject}\n"
        "      spill: {daily: 0.01, action: edge}\n";
    struct peer stub, ea;
    stub_start(&stub, NULL);
    const char *const args[] = {"--data-dir", dir, NULL};
    serve_start(&ea, fmt, stub.port, args);
    struct resp r;
    /* capped: the first request fits the cap, then the budget is spent: 429 */
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:capped", "hi", false, NULL), &r), 200);
    ASSERT_STR_EQ(r.source, "cloud:cloud");
    resp_free(&r);
    long st = req(ea.port, "/v1/chat/completions", chat("task:capped", "hi", false, NULL), &r);
    printf("    second capped request: %ld %.200s\n", st, r.body);
    ASSERT_EQ(st, 429);
    ASSERT(strstr(r.body, "budget_exceeded") && strstr(r.body, "capped"));
    ASSERT(r.retry_after[0]);
    resp_free(&r);
    /* spill: at its cap the edge answers instead */
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:spill", "hi", false, NULL), &r), 200);
    ASSERT_STR_EQ(r.source, "cloud:cloud");
    resp_free(&r);
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:spill", "hi", true, NULL), &r), 200);
    ASSERT_STR_EQ(r.source, "edge");
    resp_free(&r);
    /* edge requests are never blocked by a budget; a fallback is a row too */
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:edge", "hi", i & 1, NULL), &r), 200);
        resp_free(&r);
    }
    /* a cloud that ignores include_usage, then one whose stream is cut:
     * both rows are billed for what was produced, marked estimated */
    stub_ctl(&stub, "/_stub/config", "{\"no_usage\":true,\"count\":1}");
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:free", "hello there", false, NULL), &r), 200);
    resp_free(&r);
    stub_ctl(&stub, "/_stub/config", "{\"cut_after\":2,\"chunks\":5,\"count\":1}");
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:free", "hello there", true, NULL), &r), 200);
    ASSERT(strstr(r.body, "error"));
    resp_free(&r);
    int requests = 1 + 1 + 2 + 3 + 2;
    /* the report over HTTP (the writer commits within a moment) */
    json_t *j = NULL;
    for (int i = 0; i < 100; i++) {
        ASSERT_EQ(req(ea.port, "/v1/edgeagent/stats?since=1h&by=source", NULL, &r), 200);
        json_decref(j);
        j = json_loads(r.body, 0, NULL);
        resp_free(&r);
        json_t *tot = json_object_get(j, "total");
        if (json_integer_value(json_object_get(tot, "requests")) == requests)
            break;
        usleep(20000);
    }
    json_t *tot = json_object_get(j, "total");
    ASSERT_EQ(json_integer_value(json_object_get(tot, "requests")), requests);
    ASSERT_EQ(json_integer_value(json_object_get(tot, "errors")), 2);        /* the 429, the cut */
    /* capped twice (the refused one counts where it was headed), spill once, free twice */
    ASSERT_EQ(json_integer_value(json_object_get(tot, "cloud_requests")), 5);
    ASSERT(json_real_value(json_object_get(tot, "cloud_cost_usd")) > 0.004);
    ASSERT_EQ(json_integer_value(json_object_get(tot, "estimated")), 2);
    json_decref(j);
    /* the estimated rows still count tokens: the prompt read, the chunks sent (1 + 2) */
    ASSERT_EQ(req(ea.port, "/v1/edgeagent/stats?since=1h&by=task", NULL, &r), 200);
    j = json_loads(r.body, 0, NULL);
    resp_free(&r);
    json_t *free_task = NULL;
    for (size_t i = 0; i < json_array_size(json_object_get(j, "groups")); i++) {
        json_t *g = json_array_get(json_object_get(j, "groups"), i);
        if (!strcmp(json_string_value(json_object_get(g, "key")) ? json_string_value(json_object_get(g, "key")) : "", "free"))
            free_task = g;
    }
    ASSERT(free_task);
    ASSERT(json_integer_value(json_object_get(json_object_get(free_task, "tokens"), "prompt")) >= 2 * 3);
    ASSERT(json_integer_value(json_object_get(json_object_get(free_task, "tokens"), "completion")) >= 1 + 2);
    ASSERT(json_real_value(json_object_get(free_task, "cloud_cost_usd")) > 0);
    json_decref(j);
    ASSERT_EQ(req(ea.port, "/metrics", NULL, &r), 200);
    ASSERT(strstr(r.body, "edgeagent_ledger_rows_total{fate=\"written\"} "));
    ASSERT(strstr(r.body, "edgeagent_budget_cap_usd{task=\"capped\",period=\"daily\"} 0.01"));
    resp_free(&r);
    ASSERT_EQ(req(ea.port, "/v1/edgeagent/stats?since=yesterday", NULL, &r), 400);
    resp_free(&r);
    peer_stop(&ea);
    peer_stop(&stub);
    /* the file, read back: every request is a row, and no text */
    snprintf(cmd, sizeof cmd, "'%s' report --data-dir '%s' --since 1h --by task --json", ea_test_binary(), dir);
    char *out = NULL, *err = NULL;
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 0);
    j = json_loads(out ? out : "", 0, NULL);
    ASSERT_EQ(json_integer_value(json_object_get(json_object_get(j, "total"), "requests")), requests);
    json_decref(j);
    free(out);
    free(err);
    char db[4300];
    snprintf(db, sizeof db, "%s/ledger.db", dir);
    size_t n = 0;
    char *bytes = ea_test_read_file(db, &n);
    ASSERT(bytes && n > 0);
    ASSERT(!memmem(bytes, n, "stub:2", 6)); /* the cloud's answer is nowhere in the file */
    free(bytes);
}


/* A string of choice 0 the client got back: pick finds it in the JSON
 * answer's message, or in each streamed chunk's delta (concatenated).
 * NULL when a JSON answer does not have it. */
static char *choice_string(const struct resp *r, bool stream, json_t *(*pick)(json_t *))
{
    if (!stream) {
        json_t *j = json_loads(r->body, JSON_ALLOW_NUL, NULL);
        json_t *v = pick(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"));
        char *out = json_is_string(v) ? strndup(json_string_value(v), json_string_length(v)) : NULL;
        json_decref(j);
        return out;
    }
    size_t cap = r->len + 1, n = 0;
    char *out = calloc(1, cap);
    for (const char *p = r->body; (p = strstr(p, "data: {")); p++) {
        const char *e = strstr(p, "\n\n");
        if (!e)
            break;
        json_t *j = json_loadb(p + 6, (size_t)(e - p - 6), JSON_ALLOW_NUL, NULL);
        json_t *v = pick(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta"));
        if (json_is_string(v) && n + json_string_length(v) < cap) {
            memcpy(out + n, json_string_value(v), json_string_length(v));
            n += json_string_length(v);
        }
        json_decref(j);
    }
    return out;
}

static json_t *pick_content(json_t *m) { return json_object_get(m, "content"); }
static json_t *pick_call_args(json_t *m)
{
    return json_object_get(json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "function"),
                           "arguments");
}

/* The content the client got back (the JSON answer, or a stream's deltas). */
static char *answer_text(const struct resp *r, bool stream) { return choice_string(r, stream, pick_content); }

/* The arguments of the first tool call the client got back ("" when none). */
static char *call_args(const struct resp *r, bool stream)
{
    char *out = choice_string(r, stream, pick_call_args);
    return out ? out : strdup("");
}

/* Task mode cascade: the edge model answers first; an answer that starts
 * with the hand-off marker moves the request to the task's next upstream
 * before the client sees a byte (reason "handoff"); any other answer stays
 * on the edge; with nothing to move to, a clear 503. The tiny model is made
 * to say the marker (or not) with guided_choice. */
static const char *cascade_body(const char *task, const char *say, bool stream)
{
    static char b[512];
    snprintf(b, sizeof b,
             "{\"model\":\"task:%s\",\"messages\":[{\"role\":\"user\",\"content\":\"turn the lights on\"}],"
             "\"max_tokens\":16,\"guided_choice\":[\"%s\"]%s}",
             task, say, stream ? ",\"stream\":true" : "");
    return b;
}

static void cascade_handoff(void)
{
    static const char fmt[] =
        "upstreams:\n"
        "  - {name: local, kind: local}\n"
        "  - {name: cloud, kind: openai, base_url: 'http://127.0.0.1:%d/v1', model: stub-model}\n"
        "tasks:\n"
        "  - {name: home, mode: cascade, upstreams: [local, cloud]}\n"
        "  - {name: alone, mode: cascade, upstreams: [local]}\n";
    struct peer stub, ea;
    stub_start(&stub, NULL);
    serve_start(&ea, fmt, stub.port, NULL);
    stub_ctl(&stub, "/_stub/config", "{\"reply\":\"from the cloud\"}");
    struct resp r;
    /* the edge model can do it: it answers, the cloud hears nothing */
    for (int s = 0; s < 2; s++) {
        ASSERT_EQ(req(ea.port, "/v1/chat/completions", cascade_body("home", "on it", s), &r), 200);
        ASSERT_STR_EQ(r.source, "edge");
        char *text = answer_text(&r, s);
        ASSERT_STR_EQ(text, "on it");
        free(text);
        ASSERT(!strstr(r.reason, "handoff"));
        resp_free(&r);
    }
    ASSERT_EQ(stub_requests(&stub), 0);
    /* it hands off (also after white space): the cloud answers, and nothing
     * of the marker reaches the client */
    const char *says[] = {"<handoff>", " <handoff>"};
    for (int s = 0; s < 4; s++) {
        ASSERT_EQ(req(ea.port, "/v1/chat/completions", cascade_body("home", says[s / 2], s & 1), &r), 200);
        ASSERT_STR_EQ(r.source, "cloud:cloud");
        ASSERT_STR_EQ(r.reason, "handoff");
        ASSERT(strstr(r.attempts, "local=handoff") && strstr(r.attempts, "cloud=ok"));
        char *text = answer_text(&r, s & 1);
        ASSERT_STR_EQ(text, "from the cloud");
        free(text);
        ASSERT(!strstr(r.body, "handoff>"));
        ASSERT(strstr(r.body, "\"reason\":\"handoff\""));
        if (s & 1)
            ASSERT(stream_clean(&r));
        resp_free(&r);
    }
    ASSERT_EQ(stub_requests(&stub), 4);
    /* a part of the marker is not a hand-off */
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", cascade_body("home", "<hand", false), &r), 200);
    ASSERT_STR_EQ(r.source, "edge");
    char *text = answer_text(&r, false);
    ASSERT_STR_EQ(text, "<hand");
    free(text);
    resp_free(&r);
    /* nowhere to hand it to: a clear error, streamed or not */
    for (int s = 0; s < 2; s++) {
        ASSERT_EQ(req(ea.port, "/v1/chat/completions", cascade_body("alone", "<handoff>", s), &r), 503);
        ASSERT(strstr(r.body, "needs_cloud") && strstr(r.body, "needs a cloud model"));
        resp_free(&r);
    }
    /* a hand-off is not a failure: no breaker, no fallback counted */
    ASSERT_EQ(req(ea.port, "/v1/edgeagent/upstreams", NULL, &r), 200);
    ASSERT(strstr(r.body, "\"name\":\"local\""));
    ASSERT(!strstr(r.body, "\"state\":\"open\""));
    resp_free(&r);
    peer_stop(&ea);
    peer_stop(&stub);
}

/* kill -9 under a mixed load. The moment a client has read its 12th whole
 * answer it kills the server; the file is intact; the server restarts (and
 * commits what its journal holds), serves on, and then every answer any
 * client read to its end is exactly one row (found by X-Request-Id), since
 * an answer's last bytes wait until its row is in the journal. */
#define K9_CLIENTS 4
#define K9_IDS 256
#define K9_KILL_AT 12

struct k9 {
    int port, idx;
    pid_t pid;
    atomic_int *completed;
    atomic_bool *stop;
    char ids[K9_IDS][64];
    int n_ids;
};

static void *k9_client(void *arg)
{
    struct k9 *k = arg;
    for (int i = 0; !atomic_load(k->stop) && k->n_ids < K9_IDS; i++) {
        bool stream = (i + k->idx) & 1;
        char body[512];
        snprintf(body, sizeof body,
                 "{\"model\":\"task:%s\",\"messages\":[{\"role\":\"user\",\"content\":\"request %d of %d\"}],"
                 "\"max_tokens\":%d%s}",
                 ((i / 2 + k->idx) & 1) ? "cloudy" : "edge", i, k->idx, 4 + i % 8, stream ? ",\"stream\":true" : "");
        struct resp r;
        long st = req(k->port, "/v1/chat/completions", body, &r);
        bool whole = false;
        if (st == 200 && r.request_id[0]) {
            json_t *j = stream ? NULL : json_loads(r.body, 0, NULL);
            whole = stream ? stream_clean(&r) : json_array_size(json_object_get(j, "choices")) == 1;
            json_decref(j);
        }
        if (whole) {
            snprintf(k->ids[k->n_ids++], sizeof k->ids[0], "%s", r.request_id);
            if (atomic_fetch_add(k->completed, 1) + 1 == K9_KILL_AT)
                kill(k->pid, SIGKILL); /* at once: the row of this answer must be in the file */
        }
        resp_free(&r);
    }
    return NULL;
}

static void kill9_keeps_every_answered_row(void)
{
    char dir[4200];
    fresh_dir("routing-k9", dir, sizeof dir);
    static const char fmt[] =
        "upstreams:\n"
        "  - {name: local, kind: local}\n"
        "  - {name: cloud, kind: openai, base_url: 'http://127.0.0.1:%d/v1', model: stub-model}\n"
        "tasks:\n"
        "  - {name: edge, mode: edge_only}\n"
        "  - {name: cloudy, mode: cloud_only}\n";
    struct peer stub, ea;
    stub_start(&stub, NULL);
    const char *const args[] = {"--data-dir", dir, NULL};
    serve_start(&ea, fmt, stub.port, args);
    atomic_int completed = 0;
    atomic_bool stop = false;
    static struct k9 k[K9_CLIENTS];
    pthread_t t[K9_CLIENTS];
    for (int i = 0; i < K9_CLIENTS; i++) {
        k[i] = (struct k9){.port = ea.port, .idx = i, .pid = ea.p.pid, .completed = &completed, .stop = &stop};
        ASSERT_EQ(pthread_create(&t[i], NULL, k9_client, &k[i]), 0);
    }
    double deadline = ea_test_now_ms() + 60000 * ea_test_time_scale();
    while (atomic_load(&completed) < K9_KILL_AT && ea_test_now_ms() < deadline)
        usleep(10000);
    bool reached = atomic_load(&completed) >= K9_KILL_AT;
    if (!reached)
        kill(ea.p.pid, SIGKILL);
    int st = ea_test_proc_stop(&ea.p, SIGKILL);
    atomic_store(&stop, true);
    for (int i = 0; i < K9_CLIENTS; i++)
        pthread_join(t[i], NULL);
    ASSERT(reached);
    printf("    server status %d after %d answers seen whole\n", st, atomic_load(&completed));

    char db_path[4300];
    snprintf(db_path, sizeof db_path, "%s/ledger.db", dir);
    sqlite3 *db = NULL;
    ASSERT_EQ(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 0), "ok");
    sqlite3_finalize(q);
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM requests", -1, &q, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    int committed = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);

    /* the restarted server commits the rows its journal holds (answers whose
     * rows had not reached the database yet), then goes on writing */
    serve_start(&ea, fmt, stub.port, args);
    struct resp r;
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:edge", "again", false, NULL), &r), 200);
    char id[64];
    snprintf(id, sizeof id, "%s", r.request_id);
    resp_free(&r);
    peer_stop(&ea);
    peer_stop(&stub);

    ASSERT_EQ(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 0), "ok");
    sqlite3_finalize(q);
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*), min(outcome) FROM requests WHERE request_id = ?", -1, &q, NULL),
              SQLITE_OK);
    int checked = 0;
    for (int i = 0; i < K9_CLIENTS; i++)
        for (int n = 0; n < k[i].n_ids; n++) {
            sqlite3_bind_text(q, 1, k[i].ids[n], -1, SQLITE_STATIC);
            ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
            if (sqlite3_column_int(q, 0) != 1)
                FAIL("answer %s was read whole by its client but has %d rows in the ledger", k[i].ids[n],
                     sqlite3_column_int(q, 0));
            ASSERT_STR_EQ((const char *)sqlite3_column_text(q, 1), "ok");
            sqlite3_reset(q);
            checked++;
        }
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC); /* the request after the restart */
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    ASSERT_EQ(sqlite3_column_int(q, 0), 1);
    sqlite3_finalize(q);
    sqlite3_close(db);
    printf("    %d answered requests, each a row (%d of them committed before the kill); the file is intact\n",
           checked, committed);
    ASSERT(checked >= K9_KILL_AT);
}

/* The ledger's directory: an explicit --data-dir that cannot be used stops
 * the start with a clear error; an unusable default one is a warning and
 * the server serves without a ledger; a disk that fills at run time is a
 * logged, counted degradation: every request is still answered whole (the
 * answers' last bytes wait for their rows, so a failed write must release
 * them, never stall them). */
static void ledger_dir_errors_and_full_disk(void)
{
    char dir[4200], cmd[9000];
    fresh_dir("routing-ledger-dirs", dir, sizeof dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && touch '%s/file'", dir, dir);
    ASSERT_EQ(system(cmd), 0);
    /* explicit: a path under a regular file */
    snprintf(cmd, sizeof cmd, "'%s' serve -m '%s' --port 0 --data-dir '%s/file/ledger'", ea_test_binary(),
             model_path(), dir);
    char *out = NULL, *err = NULL;
    int rc = ea_test_run(cmd, &out, &err);
    printf("    explicit --data-dir under a file: exit %d: %.200s\n", rc, err ? err : "");
    ASSERT(rc != 0);
    ASSERT(err && strstr(err, "ledger") && strstr(err, "/file is not a directory"));
    free(out);
    free(err);

    /* the default under XDG_DATA_HOME, which is a file: a warning, then it serves */
    struct peer ea;
    char xdg[4300];
    snprintf(xdg, sizeof xdg, "XDG_DATA_HOME=%s/file", dir);
    const char *argv1[] = {"/usr/bin/env", xdg, ea_test_binary(), "serve", "-m", model_path(), "--port", "0", NULL};
    ea_test_proc_start(&ea.p, argv1, "routing-ledger-dirs.log");
    const char *l;
    if (!ea_test_proc_wait(&ea.p, "ready:", 60000) || !(l = strstr(ea.p.seen, "http://127.0.0.1:")))
        FAIL("serve did not start without its default ledger directory: %s", ea.p.seen);
    ea.port = atoi(l + strlen("http://127.0.0.1:"));
    ASSERT(strstr(ea.p.seen, "serving without a ledger"));
    struct resp r;
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("default", "hi", false, NULL), &r), 200);
    resp_free(&r);
    ASSERT_EQ(req(ea.port, "/v1/edgeagent/stats", NULL, &r), 503);
    resp_free(&r);
    peer_stop(&ea);

    /* a disk that fills: files may not grow past 160 KB (SIGXFSZ ignored, so
     * writes fail with EFBIG); the first rows fit, later batches fail */
    char data[4300];
    snprintf(data, sizeof data, "%s/full", dir);
    snprintf(cmd, sizeof cmd, "trap '' XFSZ; ulimit -f 160; exec '%s' serve -m '%s' --port 0 --data-dir '%s'",
             ea_test_binary(), model_path(), data);
    const char *argv2[] = {"/bin/sh", "-c", cmd, NULL};
    ea_test_proc_start(&ea.p, argv2, "routing-ledger-full.log");
    if (!ea_test_proc_wait(&ea.p, "ready:", 60000) || !(l = strstr(ea.p.seen, "http://127.0.0.1:")))
        FAIL("serve with a small file-size limit did not start: %s", ea.p.seen);
    ea.port = atoi(l + strlen("http://127.0.0.1:"));
    double failed = 0;
    int answered = 0;
    for (int i = 0; i < 400 && failed == 0; i++) {
        ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("default", "hello there, a longer request", i & 1, NULL),
                      &r), 200);
        if (i & 1)
            ASSERT(stream_clean(&r));
        else
            ASSERT(strstr(r.body, "\"finish_reason\""));
        resp_free(&r);
        answered++;
        if (i % 20 == 19)
            failed = metric(ea.port, "edgeagent_ledger_rows_total{fate=\"failed\"}");
    }
    printf("    a full disk: %d requests answered whole, %.0f rows failed (counted)\n", answered, failed);
    ASSERT(failed > 0);
    /* and it goes on answering */
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("default", "still there?", true, NULL), &r), 200);
    ASSERT(stream_clean(&r));
    resp_free(&r);
    peer_stop(&ea);
    char *log = ea_test_read_file(ea.p.log, NULL);
    ASSERT(log && strstr(log, "ledger: rows are not being written"));
    free(log);
}

/* privacy: redact: what reaches the cloud carries placeholders, never the
 * values; the stub echoes the message back, and the client reads the
 * values again (streamed and not). local_only sends nothing at all. */
static void redact_and_restore(void)
{
    static const char fmt[] =
        "upstreams:\n"
        "  - {name: local, kind: local}\n"
        "  - {name: cloud, kind: openai, base_url: 'http://127.0.0.1:%d/v1', model: stub-model}\n"
        "tasks:\n"
        "  - {name: red, mode: cloud_only, privacy: redact}\n"
        "  - {name: priv, mode: prefer_cloud, privacy: local_only}\n";
    struct peer stub, ea;
    stub_start(&stub, NULL);
    serve_start(&ea, fmt, stub.port, NULL);
    stub_ctl(&stub, "/_stub/config", "{\"echo\":true,\"chunks\":7}");
    const char *msg = "Mail jane.doe@example.com or call +1 415 555 0132 about card 4111 1111 1111 1111";
    for (int stream = 0; stream < 2; stream++) {
        stub_ctl(&stub, "/_stub/reset", NULL);
        stub_ctl(&stub, "/_stub/config", "{\"echo\":true,\"chunks\":7}");
        struct resp r;
        ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:red", msg, stream, NULL), &r), 200);
        ASSERT_STR_EQ(r.source, "cloud:cloud");
        /* the client gets its values back, whole */
        char text[1024] = "";
        if (stream) {
            const char *p = r.body;
            while ((p = strstr(p, "\"content\":\""))) {
                p += 11;
                const char *e = strchr(p, '"');
                strncat(text, p, (size_t)(e - p));
                p = e;
            }
        } else {
            json_t *j = json_loads(r.body, 0, NULL);
            snprintf(text, sizeof text, "%s",
                     json_string_value(json_object_get(
                         json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"),
                         "content")));
            json_decref(j);
        }
        printf("    %s: %s\n", stream ? "stream" : "json", text);
        ASSERT_STR_EQ(text, msg);
        resp_free(&r);
        /* the cloud saw placeholders only */
        ASSERT_EQ(req(stub.port, "/_stub/log", NULL, &r), 200);
        ASSERT(strstr(r.body, "<EMAIL_1>") && strstr(r.body, "<PHONE_1>") && strstr(r.body, "<CREDIT_CARD_1>"));
        ASSERT(!strstr(r.body, "jane.doe") && !strstr(r.body, "555 0132") && !strstr(r.body, "1111 1111"));
        resp_free(&r);
    }
    /* local_only: nothing leaves */
    stub_ctl(&stub, "/_stub/reset", NULL);
    struct resp r;
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", chat("task:priv", msg, false, NULL), &r), 200);
    ASSERT_STR_EQ(r.source, "edge");
    resp_free(&r);
    ASSERT_EQ(stub_requests(&stub), 0);
    /* the audit: policies, destinations, counts and bytes, never a value */
    /* (a request is recorded as it is freed, just after its answer) */
    json_t *j = NULL;
    for (int i = 0; i < 100; i++) {
        ASSERT_EQ(req(ea.port, "/v1/edgeagent/audit?limit=3", NULL, &r), 200);
        json_decref(j);
        j = json_loads(r.body, 0, NULL);
        if (i == 99 || (json_array_size(json_object_get(j, "data")) == 3 &&
                        !strcmp(json_string_value(json_object_get(
                                    json_array_get(json_object_get(j, "data"), 0), "policy")) ?: "",
                                "local_only")))
            break; /* r and j stay for the checks below */
        resp_free(&r);
        usleep(10000);
    }
    printf("    audit: %.600s\n", r.body);
    json_t *data = json_object_get(j, "data");
    ASSERT_EQ(json_array_size(data), 3);
    json_t *newest = json_array_get(data, 0), *red = json_array_get(data, 1);
    ASSERT_STR_EQ(json_string_value(json_object_get(newest, "policy")), "local_only");
    ASSERT_STR_EQ(json_string_value(json_object_get(newest, "destination")), "edge");
    ASSERT_EQ(json_integer_value(json_object_get(newest, "outbound_bytes")), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(red, "policy")), "redact");
    ASSERT_STR_EQ(json_string_value(json_object_get(red, "destination")), "cloud:cloud");
    ASSERT(json_is_true(json_object_get(red, "redacted")));
    ASSERT(json_integer_value(json_object_get(red, "outbound_bytes")) > 0);
    json_t *ents = json_object_get(red, "entities");
    ASSERT_EQ(json_integer_value(json_object_get(ents, "email")), 1);
    ASSERT_EQ(json_integer_value(json_object_get(ents, "credit_card")), 1);
    ASSERT(!strstr(r.body, "jane.doe") && !strstr(r.body, "4111"));
    json_decref(j);
    resp_free(&r);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' audit --url http://127.0.0.1:%d --limit 2", ea_test_binary(), ea.port);
    char *out = NULL, *err = NULL;
    ASSERT_EQ(ea_test_run(cmd, &out, &err), 0);
    ASSERT(out && strstr(out, "local_only") && strstr(out, "redact") && strstr(out, "cloud:cloud"));
    free(out);
    free(err);
    peer_stop(&ea);
    peer_stop(&stub);
}


/* Tool calls from the cloud reach the client in OpenAI's shapes, streamed
 * (delta.tool_calls) and not (message.tool_calls, finish_reason tool_calls). */
static void cloud_tool_calls_pass_through(void)
{
    setenv("EA_TEST_CLOUD_KEY", "k-test", 1);
    struct peer stub, ea;
    stub_start(&stub, NULL);
    serve_start(&ea, config_fmt, stub.port, NULL);
    stub_ctl(&stub, "/_stub/config", "{\"tool_call\":\"set_light\"}");
    const char *body =
        "{\"model\":\"cloud\",\"messages\":[{\"role\":\"user\",\"content\":\"light on\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"set_light\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"room\":{\"type\":\"string\"},\"on\":{\"type\":\"boolean\"}}}}}]%s}";
    char b[1024];
    struct resp r;
    snprintf(b, sizeof b, body, "");
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", b, &r), 200);
    json_t *j = json_loads(r.body, 0, NULL);
    json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(c0, "finish_reason")), "tool_calls");
    json_t *call = json_array_get(json_object_get(json_object_get(c0, "message"), "tool_calls"), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(call, "id")), "call_stub");
    ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(call, "function"), "name")), "set_light");
    ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(call, "function"), "arguments")),
                  "{\"room\":\"kitchen\",\"on\":true}");
    json_decref(j);
    resp_free(&r);
    snprintf(b, sizeof b, body, ",\"stream\":true");
    ASSERT_EQ(req(ea.port, "/v1/chat/completions", b, &r), 200);
    ASSERT(stream_clean(&r));
    ASSERT(strstr(r.body, "\"tool_calls\":[{\"index\":0,\"id\":\"call_stub\",\"type\":\"function\","
                          "\"function\":{\"name\":\"set_light\""));
    ASSERT(strstr(r.body, "\"finish_reason\":\"tool_calls\""));
    resp_free(&r);
    stub_ctl(&stub, "/_stub/config", "{}");
    peer_stop(&ea);
    peer_stop(&stub);
}


/* privacy: redact: the cloud sees placeholders and calls a tool with them in
 * its arguments (streamed to edgeagent in 7-byte pieces, so a placeholder
 * is split); the client's call carries the values, JSON-escaped. */
static void redacted_tool_call_arguments_restored(void)
{
    static const char fmt[] =
        "upstreams:\n"
        "  - {name: local, kind: local}\n"
        "  - {name: cloud, kind: openai, base_url: 'http://127.0.0.1:%d/v1', model: stub-model}\n"
        "tasks:\n"
        "  - {name: red, mode: cloud_only, privacy: redact}\n";
    struct peer stub, ea;
    stub_start(&stub, NULL);
    serve_start(&ea, fmt, stub.port, NULL);
    stub_ctl(&stub, "/_stub/config",
             "{\"tool_call\":\"send_mail\",\"args\":\"{\\\"to\\\":\\\"<EMAIL_1>\\\",\\\"note\\\":\\\"call <PHONE_1> "
             "or <email_1>\\\"}\"}");
    const char *body =
        "{\"model\":\"task:red\",\"messages\":[{\"role\":\"user\",\"content\":"
        "\"mail jane.doe@example.com that she can call me at +1 415 555 0100\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"send_mail\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"to\":{\"type\":\"string\"},\"note\":{\"type\":\"string\"}}}}}]%s}";
    for (int st = 0; st < 2; st++) {
        char b[1024];
        snprintf(b, sizeof b, body, st ? ",\"stream\":true" : "");
        struct resp r;
        ASSERT_EQ(req(ea.port, "/v1/chat/completions", b, &r), 200);
        ASSERT_STR_EQ(r.source, "cloud:cloud");
        char *args = call_args(&r, st);
        ASSERT_STR_EQ(args, "{\"to\":\"jane.doe@example.com\",\"note\":\"call +1 415 555 0100 or "
                            "jane.doe@example.com\"}");
        free(args);
        ASSERT(!strstr(r.body, "EMAIL_1") && !strstr(r.body, "PHONE_1"));
        resp_free(&r);
    }
    /* what the cloud saw: placeholders only */
    struct resp r;
    ASSERT_EQ(req(stub.port, "/_stub/log", NULL, &r), 200);
    ASSERT(strstr(r.body, "<EMAIL_1>") && !strstr(r.body, "jane.doe"));
    resp_free(&r);
    peer_stop(&ea);
    peer_stop(&stub);
}

/* ---- the zero-leak test (issue 12) ------------------------------------------------ */

struct leak_job {
    int port;
    const char *model;
    int every;              /* send every Nth text */
    bool echo;              /* the answer must be the text itself (echoing stubs) */
    atomic_int next;
    atomic_int sent, restored, mismatched, failed;
};

static struct pe_text *leak_texts; /* the evaluation set, generated once */
static int n_leak_texts;

static void collect_text(const struct pe_text *t, bool negative, void *ud)
{
    (void)negative;
    (void)ud;
    leak_texts[n_leak_texts++] = *t;
}

static void *leak_main(void *a)
{
    struct leak_job *lj = a;
    int i;
    while ((i = atomic_fetch_add(&lj->next, 1)) * lj->every < n_leak_texts) {
        const struct pe_text *t = &leak_texts[i * lj->every];
        bool stream = i & 1;
        json_t *msg = json_stringn_nocheck(t->buf, t->len);
        char *content = json_dumps(msg, JSON_ENCODE_ANY);
        json_decref(msg);
        size_t bl = strlen(content) + 256;
        char *body = malloc(bl);
        snprintf(body, bl, "{\"model\":\"%s\",\"max_tokens\":%d,\"messages\":[{\"role\":\"user\",\"content\":%s}]%s}",
                 lj->model, lj->echo ? 4000 : 4, content, stream ? ",\"stream\":true" : "");
        free(content);
        struct resp r;
        long st = req(lj->port, "/v1/chat/completions", body, &r);
        atomic_fetch_add(&lj->sent, 1);
        char *got = st == 200 ? answer_text(&r, stream) : NULL;
        if (st != 200 || !got)
            atomic_fetch_add(&lj->failed, 1);
        else if (!lj->echo || (strlen(got) == t->len && !memcmp(got, t->buf, t->len)))
            atomic_fetch_add(&lj->restored, 1);
        else {
            if (atomic_fetch_add(&lj->mismatched, 1) < 3)
                printf("    not restored (%s): sent %.*s\n      got %s\n", stream ? "stream" : "json",
                       (int)t->len, t->buf, got);
        }
        free(got);
        resp_free(&r);
        free(body);
    }
    return NULL;
}

static void run_leak_job(struct leak_job *lj)
{
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        ASSERT_EQ(pthread_create(&th[i], NULL, leak_main, lj), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    printf("    %s: %d sent, %d restored exactly, %d differ, %d failed\n", lj->model,
           atomic_load(&lj->sent), atomic_load(&lj->restored), atomic_load(&lj->mismatched),
           atomic_load(&lj->failed));
}

/* Every labelled value (and its base64 and %-encoded forms) searched in what
 * the stubs captured; PERSON is counted apart (its recall target is 90%). */
static void leak_check(const char *captured, int *structured, int *persons)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    *structured = *persons = 0;
    for (int i = 0; i < n_leak_texts; i++) {
        const struct pe_text *t = &leak_texts[i];
        for (int k = 0; k < t->n; k++) {
            char v[512], enc[1600];
            size_t n = t->spans[k].end - t->spans[k].start;
            if (n < 5 || n >= sizeof v)
                continue;
            memcpy(v, t->buf + t->spans[k].start, n);
            v[n] = '\0';
            bool leak = strstr(captured, v) != NULL;
            size_t m = 0; /* base64 */
            for (size_t j = 0; j + 2 < n; j += 3) {
                uint32_t x = (uint32_t)(unsigned char)v[j] << 16 | (uint32_t)(unsigned char)v[j + 1] << 8 |
                             (unsigned char)v[j + 2];
                enc[m++] = b64[x >> 18 & 63], enc[m++] = b64[x >> 12 & 63], enc[m++] = b64[x >> 6 & 63],
                enc[m++] = b64[x & 63];
            }
            enc[m] = '\0';
            leak |= m >= 8 && strstr(captured, enc) != NULL;
            m = 0; /* percent-encoded */
            for (size_t j = 0; j < n; j++)
                m += (size_t)(isalnum((unsigned char)v[j]) ? snprintf(enc + m, 4, "%c", v[j])
                                                          : snprintf(enc + m, 4, "%%%02X", (unsigned char)v[j]));
            leak |= strcmp(enc, v) && strstr(captured, enc) != NULL;
            if (leak) {
                if (t->spans[k].type == EA_PII_PERSON) {
                    if ((*persons)++ < 5)
                        printf("    LEAK (PERSON): %s in: %.*s\n", v, (int)t->len, t->buf);
                } else if ((*structured)++ < 5)
                    printf("    LEAK (type %u): %s in: %.*s\n", t->spans[k].type, v, (int)t->len, t->buf);
            }
        }
    }
}

/* The evaluation set of test_privacy sent as chat requests under redact
 * (the normal path, a fallback from a failing edge node, a hedge) and
 * local_only: no labelled value in any captured byte; local_only sends
 * nothing; the stubs echo, and the client reads its own text back. */
static void zero_leak(void)
{
    leak_texts = calloc(PE_N_POSITIVE + PE_N_NEGATIVE, sizeof *leak_texts);
    n_leak_texts = 0;
    ASSERT(pe_load(pe_default_path(), collect_text, NULL) == PE_N_POSITIVE + PE_N_NEGATIVE);
    struct peer cloud, slow, ea;
    stub_start(&cloud, NULL);
    stub_start(&slow, NULL);
    static const char fmt[] =
        "upstreams:\n"
        "  - {name: local, kind: local}\n"
        "  - {name: cloud, kind: openai, base_url: 'http://127.0.0.1:%d/v1', model: stub-model}\n"
        "  - {name: down, kind: openai, tier: edge-node, base_url: 'http://127.0.0.1:1/v1', model: m,\n"
        "     timeouts: {connect_ms: 200}}\n"
        "  - {name: slow, kind: openai, tier: edge-node, base_url: 'http://127.0.0.1:%d/v1', model: m}\n"
        "tasks:\n"
        "  - {name: red, mode: cloud_only, privacy: redact, upstreams: [cloud]}\n"
        "  - {name: fall, mode: prefer_edge, privacy: redact, upstreams: [down, cloud]}\n"
        "  - {name: hedge, mode: hybrid, privacy: redact, max_latency_ms: 200, upstreams: [slow, cloud]}\n"
        "  - {name: priv, mode: prefer_cloud, privacy: local_only}\n"
        "routing:\n"
        "  breaker: {failures: 1000000}\n";
    char yaml[2048];
    snprintf(yaml, sizeof yaml, fmt, cloud.port, slow.port);
    /* serve_start formats its own arguments: hand it the finished text */
    serve_start(&ea, yaml, 0, NULL);
    stub_ctl(&cloud, "/_stub/config", "{\"echo\":true,\"chunks\":5}");
    stub_ctl(&slow, "/_stub/config", "{\"echo\":true,\"delay_ms\":3000}");
    /* the whole set on the normal path; a quarter, a sixteenth on the others
     * (a sanitizer build sends a sixteenth of each) */
    int f = ea_test_time_scale() > 1 ? 16 : 1;
    struct leak_job red = {.port = ea.port, .model = "task:red", .every = f, .echo = true};
    struct leak_job fall = {.port = ea.port, .model = "task:fall", .every = 4 * f, .echo = true};
    struct leak_job hedge = {.port = ea.port, .model = "task:hedge", .every = 16 * f, .echo = true};
    run_leak_job(&red);
    run_leak_job(&fall);
    run_leak_job(&hedge);
    ASSERT_EQ(atomic_load(&red.failed) + atomic_load(&fall.failed) + atomic_load(&hedge.failed), 0);
    ASSERT_EQ(atomic_load(&red.mismatched) + atomic_load(&fall.mismatched) + atomic_load(&hedge.mismatched), 0);
    struct resp r;
    ASSERT_EQ(req(cloud.port, "/_stub/log", NULL, &r), 200);
    struct resp r2;
    ASSERT_EQ(req(slow.port, "/_stub/log", NULL, &r2), 200);
    size_t total = r.len + r2.len;
    char *captured = malloc(total + 1);
    memcpy(captured, r.body, r.len);
    memcpy(captured + r.len, r2.body, r2.len);
    captured[total] = '\0';
    /* the log is JSON: values appear with their own escapes, which the
     * values searched for (from plain text) do not have; count both forms */
    int structured, persons;
    leak_check(captured, &structured, &persons);
    printf("    captured %zu bytes from %d requests: %d structured values leaked, %d person names leaked\n",
           total, atomic_load(&red.sent) + atomic_load(&fall.sent) + atomic_load(&hedge.sent), structured,
           persons);
    ASSERT_EQ(structured, 0);
    ASSERT_EQ(persons, 0);
    free(captured);
    resp_free(&r);
    resp_free(&r2);
    /* local_only: nothing at all leaves */
    stub_ctl(&cloud, "/_stub/reset", NULL);
    struct leak_job priv = {.port = ea.port, .model = "task:priv", .every = 8 * f};
    run_leak_job(&priv);
    ASSERT_EQ(stub_requests(&cloud), 0);
    peer_stop(&ea);
    peer_stop(&cloud);
    peer_stop(&slow);
    free(leak_texts);
}

EA_TESTS(EA_TEST(cloud_answers_and_says_so), EA_TEST(fallbacks_both_ways),
         EA_TEST(client_errors_and_broken_streams), EA_TEST(allow_cloud_false_never_reaches_cloud),
         EA_TEST(breaker_opens_and_recovers), EA_TEST(offline_stays_on_edge),
         EA_TEST(edge_node_is_another_edgeagent), EA_TEST(hedging_faster_side_wins),
         EA_TEST(mixed_load_loses_nothing), EA_TEST(openai_sdk_every_path),
         EA_TEST(ledger_rows_and_budgets), EA_TEST(kill9_keeps_every_answered_row), EA_TEST(ledger_dir_errors_and_full_disk), EA_TEST(cascade_handoff), EA_TEST(redact_and_restore),
         EA_TEST(cloud_tool_calls_pass_through), EA_TEST(redacted_tool_call_arguments_restored), EA_TEST(zero_leak))
