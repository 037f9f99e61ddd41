/* test_hot_switch.c (EA_TEST_NEEDS_NET: the server is built only with
 * libmicrohttpd) - POST /v1/edgeagent/models/load against a real
 * `edgeagent serve`: 16 clients stream chat completions without pause while
 * the served model is switched to another one (tests/node/hot_switch.mjs);
 * no request fails, every stream ends with its finish_reason and [DONE],
 * requests answered (headers) before the load was sent report the old model, requests that
 * began after it was answered the new one, and the old model is unloaded
 * once its last request ended (the models_loaded gauge back to 1, the log
 * line). Also: a missing name is a 404 and a file that is not a model a 400,
 * the old model serving on; no API key is a 401; a server without a key
 * refuses (403); a second load while one runs is a 409. */
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define KEY "hot-k3y"
#define CLIENTS 16

static void gen(int seed, const char *out)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' gen-model --preset tiny --type F16 --seed %d -o '%s' >/dev/null",
             ea_test_binary(), seed, out);
    ASSERT_EQ(ea_test_run(cmd, NULL, NULL), 0);
}

/* The id a model file is served under: its name without directories and .gguf. */
static const char *id_of(const char *path, char *out, size_t cap)
{
    const char *b = strrchr(path, '/');
    snprintf(out, cap, "%s", b ? b + 1 : path);
    char *dot = strstr(out, ".gguf");
    if (dot)
        *dot = '\0';
    return out;
}

/* "model":"ID" */
static const char *mfield(const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "\"model\":\"%s\"", id);
    return out;
}

/* `serve -m model` with a small KV pool; *port from its banner. */
static void start(struct ea_test_proc *p, const char *model, bool key, int *port)
{
    const char *argv[] = {ea_test_binary(), "serve", "-m", model, "--port", "0", "--kv-mem", "32",
                          "--parallel", "8", "--models-dir", ea_test_tmp_path("hot-store"),
                          key ? "--api-key" : NULL, KEY, NULL};
    ea_test_proc_start(p, argv, "hot-serve.log");
    if (!ea_test_proc_wait(p, "ready", 60000 * ea_test_time_scale()))
        FAIL("serve did not start: %s", p->seen);
    const char *at = strstr(p->seen, "127.0.0.1:");
    ASSERT(at);
    *port = atoi(at + strlen("127.0.0.1:"));
    ASSERT(*port > 0);
}

/* curl; returns the HTTP status, the body in *body (caller frees) */
static int curl(int port, const char *auth, const char *method, const char *path, const char *json,
                char **body)
{
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "curl -s -X %s %s%s%s -H 'Content-Type: application/json' %s%s%s -w '\\n%%{http_code}' "
             "http://127.0.0.1:%d%s",
             method, auth ? "-H 'Authorization: Bearer " : "", auth ? auth : "", auth ? "'" : "",
             json ? "-d '" : "", json ? json : "", json ? "'" : "", port, path);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    ASSERT(out);
    char *nl = strrchr(out, '\n');
    ASSERT(nl);
    int status = atoi(nl + 1);
    *nl = '\0';
    if (body)
        *body = out;
    else
        free(out);
    return status;
}

/* The model field of a short non-streamed chat answer. */
static void expect_model(int port, const char *want)
{
    char *b = NULL;
    int st = curl(port, KEY, "POST", "/v1/chat/completions",
                  "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4}", &b);
    if (st != 200 || !strstr(b, want))
        FAIL("expected a 200 from %s, got %d: %s", want, st, b);
    free(b);
}

static int models_loaded(int port)
{
    char *b = NULL;
    ASSERT_EQ(curl(port, KEY, "GET", "/metrics", NULL, &b), 200);
    const char *at = strstr(b, "\nedgeagent_models_loaded ");
    int n = at ? atoi(at + strlen("\nedgeagent_models_loaded ")) : -1;
    free(b);
    return n;
}

static bool log_has(const struct ea_test_proc *p, const char *what)
{
    char *l = ea_test_read_file(p->log, NULL);
    bool has = l && strstr(l, what);
    free(l);
    return has;
}

static void switch_under_load(void)
{
    if (system("node --version >/dev/null 2>&1") != 0 || system("curl --version >/dev/null 2>&1") != 0)
        SKIP("node and curl are needed");
    char a[4200], b[4200];
    snprintf(a, sizeof a, "%s", ea_test_tmp_path("hot-old.gguf"));
    snprintf(b, sizeof b, "%s", ea_test_tmp_path("hot-new.gguf"));
    gen(1, a);
    gen(2, b);
    char old_id[256], new_id[256], f[300], g[300];
    id_of(a, old_id, sizeof old_id);
    id_of(b, new_id, sizeof new_id);
    struct ea_test_proc p;
    int port;
    start(&p, a, true, &port);
    expect_model(port, mfield(old_id, f, sizeof f));
    ASSERT_EQ(models_loaded(port), 1);

    char cmd[16384], *out = NULL, *err = NULL;
    const char *src = getenv("EA_SOURCE_DIR");
    snprintf(cmd, sizeof cmd, "node '%s/tests/node/hot_switch.mjs' http://127.0.0.1:%d %s %d '%s'",
             src ? src : ".", port, KEY, CLIENTS, b);
    int rc = ea_test_run(cmd, &out, &err);
    if (rc != 0)
        FAIL("hot_switch.mjs: exit %d: %s", rc, err ? err : "");
    json_error_t je;
    json_t *res = json_loads(out ? out : "", 0, &je);
    if (!res)
        FAIL("hot_switch.mjs printed no JSON: %s", out ? out : "");
    json_t *load = json_object_get(res, "load");
    if (json_integer_value(json_object_get(load, "status")) != 200)
        FAIL("the load was answered %s", json_dumps(load, 0));
    ASSERT(strstr(json_string_value(json_object_get(load, "body")), mfield(new_id, f, sizeof f)));
    snprintf(g, sizeof g, "\"previous\":\"%s\"", old_id);
    ASSERT(strstr(json_string_value(json_object_get(load, "body")), g));
    double t0 = json_number_value(json_object_get(load, "t0"));
    double t1 = json_number_value(json_object_get(load, "t1"));
    json_t *reqs = json_object_get(res, "requests");
    size_t n = json_array_size(reqs), before = 0, after = 0, across = 0;
    ASSERT(n >= 4 * CLIENTS);
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(reqs, i);
        double start = json_number_value(json_object_get(r, "start"));
        double headers = json_number_value(json_object_get(r, "headers"));
        double end = json_number_value(json_object_get(r, "end"));
        json_t *models = json_object_get(r, "models");
        const char *m = json_string_value(json_array_get(models, 0));
        if (json_integer_value(json_object_get(r, "status")) != 200 ||
            !json_is_true(json_object_get(r, "done")) || !json_is_null(json_object_get(r, "error")) ||
            !json_is_string(json_object_get(r, "finish")) || json_array_size(models) != 1)
            FAIL("request %zu of %zu failed or is incomplete: %s", i, n, json_dumps(r, 0));
        /* answered (headers) before the load was sent: the server had taken
         * it on the old model; sent before but answered after: either */
        if (headers < t0) {
            before++;
            across += end > t1;
            if (strcmp(m, old_id))
                FAIL("a request answered before the load was sent reports %s", json_dumps(r, 0));
        } else if (start > t1) {
            after++;
            if (strcmp(m, new_id))
                FAIL("a request that began after the load reports %s", json_dumps(r, 0));
        }
    }
    ASSERT(before >= 2 * CLIENTS);
    ASSERT(after >= 2 * CLIENTS);
    ASSERT(across >= 1); /* began on the old model, ended after the switch: on the old one */
    printf("  %zu requests: %zu before the load, %zu after, %zu in flight across it (load %.0f ms)\n",
           n, before, after, across, t1 - t0);
    json_decref(res);
    free(out);
    free(err);
    /* the old model goes once idle: every request has ended by now */
    double deadline = ea_test_now_ms() + 10000 * ea_test_time_scale();
    while (models_loaded(port) != 1 && ea_test_now_ms() < deadline)
        usleep(20000);
    ASSERT_EQ(models_loaded(port), 1);
    snprintf(g, sizeof g, "models/load: unloaded %s", old_id);
    ASSERT(log_has(&p, g));
    expect_model(port, mfield(new_id, f, sizeof f));
    char *body = NULL;
    ASSERT_EQ(curl(port, KEY, "GET", "/v1/models", NULL, &body), 200);
    snprintf(g, sizeof g, "\"id\":\"%s\"", new_id);
    ASSERT(strstr(body, g) && !strstr(body, old_id));
    free(body);
    ASSERT_EQ(ea_test_proc_stop(&p, SIGTERM), 0); /* a sanitizer build fails here on a report */
}

static void bad_loads(void)
{
    if (system("curl --version >/dev/null 2>&1") != 0)
        SKIP("curl is needed");
    char a[4200], junk[4200], body[8600];
    snprintf(a, sizeof a, "%s", ea_test_tmp_path("hot-bad-old.gguf"));
    snprintf(junk, sizeof junk, "%s", ea_test_tmp_path("hot-junk.gguf"));
    gen(3, a);
    FILE *jf = fopen(junk, "wb");
    ASSERT(jf);
    fputs("GGUF but not really a model file", jf);
    fclose(jf);
    char id[256], f[300], g[300];
    id_of(a, id, sizeof id);
    mfield(id, f, sizeof f);
    struct ea_test_proc p;
    int port;
    start(&p, a, true, &port);
    char *b = NULL;
    /* a missing name: 404, the old model serves on */
    ASSERT_EQ(curl(port, KEY, "POST", "/v1/edgeagent/models/load", "{\"name\":\"no-such-model:1b\"}", &b), 404);
    ASSERT(strstr(b, "model_not_found"));
    free(b);
    expect_model(port, f);
    /* a file that is not a model: 400, the old model serves on */
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", junk);
    ASSERT_EQ(curl(port, KEY, "POST", "/v1/edgeagent/models/load", body, &b), 400);
    ASSERT(strstr(b, "invalid_model"));
    free(b);
    expect_model(port, f);
    ASSERT_EQ(models_loaded(port), 1);
    /* no key: 401; bad bodies: 400 */
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", a);
    ASSERT_EQ(curl(port, NULL, "POST", "/v1/edgeagent/models/load", body, NULL), 401);
    ASSERT_EQ(curl(port, KEY, "POST", "/v1/edgeagent/models/load", "{\"name\":7}", NULL), 400);
    ASSERT_EQ(curl(port, KEY, "POST", "/v1/edgeagent/models/load", "[]", NULL), 400);
    /* the same file again: a switch to a fresh copy under the same id */
    ASSERT_EQ(curl(port, KEY, "POST", "/v1/edgeagent/models/load", body, &b), 200);
    snprintf(g, sizeof g, "\"previous\":\"%s\"", id);
    ASSERT(strstr(b, g));
    free(b);
    expect_model(port, f);
    ASSERT_EQ(ea_test_proc_stop(&p, SIGTERM), 0);
    /* a server without an API key refuses to switch */
    start(&p, a, false, &port);
    ASSERT_EQ(curl(port, NULL, "POST", "/v1/edgeagent/models/load", body, &b), 403);
    ASSERT(strstr(b, "api_key_required"));
    free(b);
    ASSERT_EQ(ea_test_proc_stop(&p, SIGTERM), 0);
}

/* Two loads at once: the second gets 409 while the first runs; loads never
 * overlap (in the log, every "loading" is followed by its "serving" or
 * "failed" before the next "loading"). */
static void concurrent_loads(void)
{
    if (system("curl --version >/dev/null 2>&1") != 0)
        SKIP("curl is needed");
    char a[4200], big[4200], b[4200], cmd[16384], *out = NULL;
    snprintf(a, sizeof a, "%s", ea_test_tmp_path("hot-cc-a.gguf"));
    snprintf(b, sizeof b, "%s", ea_test_tmp_path("hot-cc-b.gguf"));
    snprintf(big, sizeof big, "%s", ea_test_tmp_path("hot-cc-big.gguf"));
    gen(4, a);
    gen(5, b);
    /* a larger model (271 MB) takes long enough to load for the second
     * request to come while it does */
    snprintf(cmd, sizeof cmd, "'%s' gen-model --preset smollm2-135m --type F16 --seed 1 -o '%s' >/dev/null",
             ea_test_binary(), big);
    ASSERT_EQ(ea_test_run(cmd, NULL, NULL), 0);
    struct ea_test_proc p;
    int port;
    start(&p, a, true, &port);
    const char *c = "curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' "
                    "-H 'Authorization: Bearer " KEY "'";
    snprintf(cmd, sizeof cmd,
             "(waitfor() { for i in $(seq 600); do eval \"$1\" && return 0; sleep 0.01; done; return 1; }; "
             "%s -d '{\"name\":\"%s\"}' http://127.0.0.1:%d/v1/edgeagent/models/load >'%s.first' & p=$!; "
             "waitfor \"grep -q 'models/load: loading' '%s'\"; "
             "%s -d '{\"name\":\"%s\"}' http://127.0.0.1:%d/v1/edgeagent/models/load; echo; wait $p; cat '%s.first')",
             c, big, port, p.log, p.log, c, b, port, p.log);
    ASSERT_EQ(ea_test_run(cmd, &out, NULL), 0);
    int second = 0, first = 0;
    ASSERT(out && sscanf(out, "%d %d", &second, &first) == 2);
    free(out);
    ASSERT_EQ(first, 200);
    ASSERT(second == 409 || second == 200);
    /* the log: loads never overlap */
    char *l = ea_test_read_file(p.log, NULL);
    ASSERT(l);
    int open_loads = 0, loads = 0;
    for (const char *q = l; (q = strstr(q, "models/load: ")); q++) {
        q += strlen("models/load: ");
        if (!strncmp(q, "loading ", 8)) {
            ASSERT_EQ(open_loads, 0);
            open_loads++;
            loads++;
        } else if (!strncmp(q, "serving ", 8) || strstr(q, " failed: ") == strchr(q, ' ')) {
            open_loads--;
        }
    }
    free(l);
    ASSERT_EQ(open_loads, 0);
    ASSERT_EQ(loads, second == 409 ? 1 : 2);
    printf("  second load: %d%s\n", second, second == 409 ? "" : " (the first had finished: not overlapped)");
    ASSERT_EQ(ea_test_proc_stop(&p, SIGTERM), 0);
}

EA_TESTS(EA_TEST(switch_under_load), EA_TEST(bad_loads), EA_TEST(concurrent_loads))
