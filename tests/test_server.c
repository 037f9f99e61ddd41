/* test_server.c - the HTTP server in-process (EA_TEST_NEEDS_NET), driven by
 * libcurl clients on a free loopback port: response shapes of every
 * endpoint, SSE streaming and usage, each error status with OpenAI's error
 * shape (400 naming the field, 401, 404, 405, 413, 429, 500 with an id that
 * is in the log, 503 while loading and draining), a corpus of malformed
 * bodies after which the server still answers, concurrent streaming clients,
 * a client that disconnects mid-stream (its sequence is cancelled and the KV
 * blocks return to zero), graceful shutdown, authentication and the
 * loopback-only default, and the request parser on its own.
 * The Node/curl/browser clients are in test_server_clients.sh and
 * test_server_browser.sh.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "edgeagent/engine.h"
#include "edgeagent/gguf.h"
#include "edgeagent/model.h"
#include "edgeagent/server.h"
#include "edgeagent/tokenizer.h"
#include "edgeagent/toolcall.h"
#include "harness.h"
#include "server/genq.h"
#include "server/server_int.h"
#include "server/upstream.h"
#include "edgeagent/router.h"

/* ---- fixture: tiny generated model + engine + server on port 0 ------------- */

struct fixture {
    ea_model *m;
    ea_tokenizer *tok;
    ea_engine *eng;
    ea_server *srv;
    int32_t eog[64];
    int n_eog;
    char base[64];
    char log_path[4200];
    FILE *log;
    int32_t max_ctx;
};

static const char *model_override; /* a test's own model, or NULL */

static const char *model_path(void)
{
    static char path[4200];
    if (model_override)
        return model_override;
    if (!path[0]) {
        snprintf(path, sizeof path, "%s", ea_test_tmp_path("server-tiny.gguf"));
        struct ea_gen_params gp = {.preset = "tiny", .ftype = "F16", .seed = 7};
        struct ea_error err = {0};
        ASSERT_OK(ea_model_generate(&gp, path, &err), &err);
    }
    return path;
}

static void load_backend(struct fixture *f, int parallel, int max_queue)
{
    struct ea_error err = {0};
    struct ea_model_load_params lp = {.n_threads = 1};
    ASSERT_OK(ea_model_load(model_path(), &lp, &f->m, &err), &err);
    ASSERT_OK(ea_tokenizer_create(ea_model_gguf(f->m), &f->tok, &err), &err);
    int n = 0;
    for (uint32_t t = 0; t < ea_tokenizer_n_vocab(f->tok) && n < 64; t++)
        if (ea_tokenizer_is_eog(f->tok, (int32_t)t))
            f->eog[n++] = (int32_t)t;
    f->n_eog = n;
    struct ea_engine_params ep;
    ea_engine_params_default(&ep);
    ep.kv_mem_bytes = 16 << 20;
    ep.max_running = parallel;
    ep.max_queue = max_queue;
    ep.max_context = 1024;
    ep.reserve_kv = true; /* as serve does */
    ep.eog_tokens = f->eog;
    ep.n_eog_tokens = n;
    ASSERT_OK(ea_engine_create(f->m, &ep, &f->eng, &err), &err);
    f->max_ctx = 1024;
}

static void start_server(struct fixture *f, struct ea_server_params *p)
{
    struct ea_error err = {0};
    struct ea_server_params d;
    if (!p) {
        ea_server_params_default(&d);
        p = &d;
    }
    p->host = "127.0.0.1";
    p->port = 0;
    snprintf(f->log_path, sizeof f->log_path, "%s", ea_test_tmp_path("server.log"));
    f->log = fopen(f->log_path, "w+");
    ASSERT(f->log);
    p->log = f->log;
    ASSERT_OK(ea_server_create(p, &f->srv, &err), &err);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%u", (unsigned)ea_server_port(f->srv));
}

static void set_ready(struct fixture *f)
{
    struct ea_error err = {0};
    struct ea_server_backend be = {f->m, f->tok, f->eng, "tiny-test", f->max_ctx, 0, false, NULL, NULL};
    ASSERT_OK(ea_server_set_backend(f->srv, &be, &err), &err);
}

static void fx_start(struct fixture *f, struct ea_server_params *p, int parallel, int max_queue)
{
    memset(f, 0, sizeof *f);
    load_backend(f, parallel, max_queue);
    start_server(f, p);
    set_ready(f);
}

static void fx_stop(struct fixture *f)
{
    ea_server_destroy(f->srv);
    ea_engine_destroy(f->eng);
    ea_tokenizer_destroy(f->tok);
    ea_model_destroy(f->m);
    if (f->log)
        fclose(f->log);
    remove(f->log_path);
}

/* ---- HTTP client --------------------------------------------------------- */

struct resp {
    long status;
    char *body;
    size_t len;
    char retry_after[32];
    char content_type[128];
    char attempts[256], source[128]; /* X-EdgeAgent-Attempts, X-EdgeAgent-Source */
    size_t abort_after; /* abort the transfer after this many body bytes (0 = never) */
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
    if (r->abort_after && r->len >= r->abort_after)
        return 0; /* curl closes the connection: a client going away */
    return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *u)
{
    struct resp *r = u;
    size_t k = sz * n;
    if (k > 13 && !strncasecmp(p, "Retry-After: ", 13))
        snprintf(r->retry_after, sizeof r->retry_after, "%.*s", (int)(k - 15), p + 13);
    if (k > 14 && !strncasecmp(p, "Content-Type: ", 14))
        snprintf(r->content_type, sizeof r->content_type, "%.*s", (int)(k - 16), p + 14);
    if (k > 22 && !strncasecmp(p, "X-EdgeAgent-Attempts: ", 22))
        snprintf(r->attempts, sizeof r->attempts, "%.*s", (int)(k - 24), p + 22);
    if (k > 20 && !strncasecmp(p, "X-EdgeAgent-Source: ", 20))
        snprintf(r->source, sizeof r->source, "%.*s", (int)(k - 22), p + 20);
    return k;
}

/* method "GET"/"POST"/...; body may be NULL; len < 0 means strlen. hdr: one
 * extra header or NULL. Returns the status (0 on transport failure). */
static long http_ex(const struct fixture *f, const char *method, const char *path,
                    const char *body, long len, const char *hdr, bool chunked, struct resp *r)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    if (hdr)
        h = curl_slist_append(h, hdr);
    h = curl_slist_append(h, "Content-Type: application/json");
    if (!hdr || strncasecmp(hdr, "Expect", 6) != 0)
        h = curl_slist_append(h, "Expect:"); /* send bodies at once */
    if (chunked)
        h = curl_slist_append(h, "Transfer-Encoding: chunked");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(len < 0 ? (long)strlen(body) : len));
    }
    CURLcode cc = curl_easy_perform(c);
    r->status = 0;
    if (cc == CURLE_OK || cc == CURLE_WRITE_ERROR)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r->status;
}

static long http(const struct fixture *f, const char *method, const char *path, const char *body,
                 struct resp *r)
{
    memset(r, 0, sizeof *r);
    return http_ex(f, method, path, body, -1, NULL, false, r);
}

static json_t *parse(const struct resp *r)
{
    json_error_t je;
    json_t *j = json_loadb(r->body ? r->body : "", r->len, JSON_ALLOW_NUL, &je);
    if (!j)
        FAIL("not JSON (%s): %.300s", je.text, r->body ? r->body : "");
    return j;
}

/* Checks OpenAI's error shape; returns param (static copy) for checks. */
static const char *check_error(const struct resp *r, long status)
{
    static char param[64];
    if (r->status != status)
        FAIL("status %ld, expected %ld: %.300s", r->status, status, r->body ? r->body : "");
    json_t *j = parse(r);
    json_t *e = json_object_get(j, "error");
    ASSERT(json_is_object(e));
    ASSERT(json_is_string(json_object_get(e, "message")));
    ASSERT(json_is_string(json_object_get(e, "type")));
    ASSERT(json_object_get(e, "param") && json_object_get(e, "code"));
    json_t *p = json_object_get(e, "param");
    snprintf(param, sizeof param, "%s", json_is_string(p) ? json_string_value(p) : "");
    json_decref(j);
    return param;
}

/* Parses an SSE body into its data payloads; returns how many; fills done. */
static int sse_events(const char *body, json_t **events, int cap, bool *done)
{
    int n = 0;
    *done = false;
    for (const char *p = body; p && *p;) {
        const char *end = strstr(p, "\n\n");
        if (!end)
            break;
        if (!strncmp(p, "data: ", 6)) {
            if (!strncmp(p + 6, "[DONE]", 6))
                *done = true;
            else if (n < cap) {
                json_error_t je;
                events[n] = json_loadb(p + 6, (size_t)(end - p - 6), JSON_ALLOW_NUL, &je);
                if (!events[n])
                    FAIL("bad SSE data: %.200s", p);
                n++;
            }
        }
        p = end + 2;
    }
    return n;
}

static void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* ---- cases ------------------------------------------------------------------ */

static void health_loading_then_ready(void)
{
    struct fixture f;
    memset(&f, 0, sizeof f);
    start_server(&f, NULL);
    struct resp r;
    http(&f, "GET", "/health", NULL, &r);
    ASSERT_EQ(r.status, 503);
    ASSERT(strstr(r.body, "loading"));
    resp_free(&r);
    http(&f, "POST", "/v1/chat/completions", "{}", &r);
    check_error(&r, 503);
    resp_free(&r);
    load_backend(&f, 2, 8);
    set_ready(&f);
    http(&f, "GET", "/health", NULL, &r);
    ASSERT_EQ(r.status, 200);
    ASSERT(strstr(r.body, "\"ok\""));
    resp_free(&r);
    fx_stop(&f);
}

static void models_and_page(void)
{
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    struct resp r;
    http(&f, "GET", "/v1/models", NULL, &r);
    ASSERT_EQ(r.status, 200);
    json_t *j = parse(&r);
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "object")), "list");
    json_t *m0 = json_array_get(json_object_get(j, "data"), 0);
    ASSERT_STR_EQ(json_string_value(json_object_get(m0, "id")), "tiny-test");
    ASSERT_STR_EQ(json_string_value(json_object_get(m0, "object")), "model");
    json_decref(j);
    resp_free(&r);
    http(&f, "GET", "/v1/models/tiny-test", NULL, &r);
    ASSERT_EQ(r.status, 200);
    resp_free(&r);
    http(&f, "GET", "/v1/models/nope", NULL, &r);
    ASSERT_STR_EQ(check_error(&r, 404), "model");
    resp_free(&r);
    http(&f, "GET", "/", NULL, &r);
    ASSERT_EQ(r.status, 200);
    ASSERT(strstr(r.content_type, "text/html"));
    ASSERT(strstr(r.body, "<title>edgeagent chat</title>"));
    ASSERT(!strstr(r.body, "http://") && !strstr(r.body, "https://")); /* nothing external */
    resp_free(&r);
    fx_stop(&f);
}

static void chat_nonstream(void)
{
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    struct resp r;
    http(&f, "POST", "/v1/chat/completions",
         "{\"model\":\"tiny-test\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
         "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}]}],"
         "\"max_tokens\":8,\"temperature\":0,\"logprobs\":true,\"top_logprobs\":2,\"n\":2,"
         "\"unknown_field\":{\"ignored\":true},\"user\":\"u1\"}",
         &r);
    ASSERT_EQ(r.status, 200);
    json_t *j = parse(&r);
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "object")), "chat.completion");
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "model")), "tiny-test");
    ASSERT(!strncmp(json_string_value(json_object_get(j, "id")), "chatcmpl-", 9));
    json_t *ch = json_object_get(j, "choices");
    ASSERT_EQ(json_array_size(ch), 2);
    json_t *c0 = json_array_get(ch, 0), *c1 = json_array_get(ch, 1);
    json_t *msg = json_object_get(c0, "message");
    ASSERT_STR_EQ(json_string_value(json_object_get(msg, "role")), "assistant");
    ASSERT(json_is_string(json_object_get(msg, "content")));
    /* temperature 0: both choices are the same greedy text */
    ASSERT_STR_EQ(json_string_value(json_object_get(msg, "content")),
                  json_string_value(json_object_get(json_object_get(c1, "message"), "content")));
    const char *fr = json_string_value(json_object_get(c0, "finish_reason"));
    ASSERT(fr && (!strcmp(fr, "length") || !strcmp(fr, "stop")));
    json_t *lp = json_object_get(json_object_get(c0, "logprobs"), "content");
    ASSERT(json_is_array(lp) && json_array_size(lp) >= 1);
    json_t *lp0 = json_array_get(lp, 0);
    ASSERT(json_is_number(json_object_get(lp0, "logprob")));
    ASSERT_EQ(json_array_size(json_object_get(lp0, "top_logprobs")), 2);
    json_t *u = json_object_get(j, "usage");
    long long pt = json_integer_value(json_object_get(u, "prompt_tokens"));
    long long ct = json_integer_value(json_object_get(u, "completion_tokens"));
    ASSERT(pt > 0 && ct > 0 && ct <= 16);
    ASSERT_EQ(json_integer_value(json_object_get(u, "total_tokens")), pt + ct);
    json_decref(j);
    resp_free(&r);
    fx_stop(&f);
}

static void chat_stream_usage(void)
{
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    struct resp r;
    http(&f, "POST", "/v1/chat/completions",
         "{\"model\":\"default\",\"messages\":[{\"role\":\"user\",\"content\":\"Tell a story\"}],"
         "\"max_tokens\":12,\"seed\":3,\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
         &r);
    ASSERT_EQ(r.status, 200);
    ASSERT(strstr(r.content_type, "text/event-stream"));
    json_t *ev[64];
    bool done;
    int n = sse_events(r.body, ev, 64, &done);
    ASSERT(done);
    ASSERT(n >= 3);
    /* first: role; then content; the finish chunk; then usage with no choices */
    json_t *d0 = json_object_get(json_array_get(json_object_get(ev[0], "choices"), 0), "delta");
    ASSERT_STR_EQ(json_string_value(json_object_get(d0, "role")), "assistant");
    int finishes = 0;
    for (int i = 0; i < n - 1; i++) {
        ASSERT_STR_EQ(json_string_value(json_object_get(ev[i], "object")), "chat.completion.chunk");
        ASSERT(json_is_null(json_object_get(ev[i], "usage")));
        json_t *c = json_array_get(json_object_get(ev[i], "choices"), 0);
        finishes += json_is_string(json_object_get(c, "finish_reason"));
    }
    ASSERT_EQ(finishes, 1);
    json_t *last = ev[n - 1];
    ASSERT_EQ(json_array_size(json_object_get(last, "choices")), 0);
    json_t *u = json_object_get(last, "usage");
    ASSERT(json_integer_value(json_object_get(u, "completion_tokens")) > 0);
    ASSERT(json_integer_value(json_object_get(u, "completion_tokens")) <= 12);
    for (int i = 0; i < n; i++)
        json_decref(ev[i]);
    resp_free(&r);

    /* same seed, streamed or not: the same text */
    http(&f, "POST", "/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell a story\"}],\"max_tokens\":12,\"seed\":3,"
         "\"stream\":true}",
         &r);
    n = sse_events(r.body, ev, 64, &done);
    char streamed[4096];
    size_t sl = 0; /* by length: the text may hold NUL bytes */
    for (int i = 0; i < n; i++) {
        json_t *c = json_array_get(json_object_get(ev[i], "choices"), 0);
        json_t *t = json_object_get(json_object_get(c, "delta"), "content");
        if (json_is_string(t) && sl + json_string_length(t) < sizeof streamed) {
            memcpy(streamed + sl, json_string_value(t), json_string_length(t));
            sl += json_string_length(t);
        }
        json_decref(ev[i]);
    }
    resp_free(&r);
    http(&f, "POST", "/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"Tell a story\"}],\"max_tokens\":12,\"seed\":3}",
         &r);
    json_t *j = parse(&r);
    /* the same prompt a third time: its full blocks come from the prefix cache */
    json_t *details = json_object_get(json_object_get(j, "usage"), "prompt_tokens_details");
    ASSERT(json_integer_value(json_object_get(details, "cached_tokens")) > 0);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    json_t *content = json_object_get(msg, "content");
    ASSERT_EQ(json_string_length(content), sl);
    ASSERT(memcmp(json_string_value(content), streamed, sl) == 0);
    json_decref(j);
    resp_free(&r);
    fx_stop(&f);
}

static void completions_variants(void)
{
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    struct resp r;
    http(&f, "POST", "/v1/completions",
         "{\"model\":\"auto\",\"prompt\":\"Once upon a time\",\"max_tokens\":6,\"temperature\":0,"
         "\"echo\":true,\"logprobs\":2}",
         &r);
    ASSERT_EQ(r.status, 200);
    json_t *j = parse(&r);
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "object")), "text_completion");
    json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
    const char *text = json_string_value(json_object_get(c0, "text"));
    ASSERT(text && !strncmp(text, "Once upon a time", 16));
    json_t *lp = json_object_get(c0, "logprobs");
    ASSERT(json_is_array(json_object_get(lp, "tokens")));
    ASSERT_EQ(json_array_size(json_object_get(lp, "tokens")),
              json_array_size(json_object_get(lp, "token_logprobs")));
    json_decref(j);
    resp_free(&r);
    /* token-id prompt, two prompts, n = 2 */
    http(&f, "POST", "/v1/completions", "{\"prompt\":[1,2,3,4],\"max_tokens\":3}", &r);
    ASSERT_EQ(r.status, 200);
    resp_free(&r);
    http(&f, "POST", "/v1/completions", "{\"prompt\":[\"a\",\"b\"],\"n\":2,\"max_tokens\":3}", &r);
    ASSERT_EQ(r.status, 200);
    j = parse(&r);
    ASSERT_EQ(json_array_size(json_object_get(j, "choices")), 4);
    json_decref(j);
    resp_free(&r);
    /* streamed completion ends with [DONE] */
    http(&f, "POST", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":3,\"stream\":true}", &r);
    ASSERT(strstr(r.body, "\"object\":\"text_completion\""));
    ASSERT(strstr(r.body, "data: [DONE]\n\n"));
    resp_free(&r);
    /* stop strings: the text never contains them */
    http(&f, "POST", "/v1/completions",
         "{\"prompt\":\"x\",\"max_tokens\":40,\"temperature\":0,\"stop\":[\"e\",\"a\"]}", &r);
    j = parse(&r);
    text = json_string_value(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "text"));
    ASSERT(text && !strchr(text, 'e') && !strchr(text, 'a'));
    json_decref(j);
    resp_free(&r);
    fx_stop(&f);
}

static void tokenize_detokenize(void)
{
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    struct resp r;
    http(&f, "POST", "/tokenize", "{\"content\":\"Hello world\"}", &r);
    ASSERT_EQ(r.status, 200);
    json_t *j = parse(&r);
    json_t *t = json_object_get(j, "tokens");
    ASSERT(json_array_size(t) > 0);
    char *ids = json_dumps(t, 0);
    char body[4096];
    snprintf(body, sizeof body, "{\"tokens\":%s}", ids);
    free(ids);
    json_decref(j);
    resp_free(&r);
    http(&f, "POST", "/detokenize", body, &r);
    ASSERT_EQ(r.status, 200);
    j = parse(&r);
    ASSERT_STR_EQ(json_string_value(json_object_get(j, "content")), "Hello world");
    json_decref(j);
    resp_free(&r);
    http(&f, "POST", "/detokenize", "{\"tokens\":[999999]}", &r);
    ASSERT_STR_EQ(check_error(&r, 400), "tokens");
    resp_free(&r);
    http(&f, "POST", "/tokenize", "{\"content\":5}", &r);
    ASSERT_STR_EQ(check_error(&r, 400), "content");
    resp_free(&r);
    fx_stop(&f);
}

struct bad_case {
    const char *body;
    long status;
    const char *param; /* NULL: do not check */
};

static void malformed_corpus(void)
{
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    static const struct bad_case cases[] = {
        {"", 400, ""},
        {"{", 400, ""},
        {"not json", 400, ""},
        {"[1,2,3]", 400, ""},
        {"null", 400, ""},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],}", 400, ""},
        {"{\"messages\":\"hi\"}", 400, "messages"},
        {"{\"messages\":[]}", 400, "messages"},
        {"{}", 400, "messages"},
        {"{\"messages\":[{\"role\":\"user\"}]}", 400, "messages[0].content"},
        {"{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 400, "messages[0].role"},
        {"{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", 400, "messages[0].tool_call_id"},
        {"{\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}", 400, "messages[0].role"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[]}]}", 400,
         "messages[0].tool_calls"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", 400,
         "messages[0].content"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":\"5\"}", 400, "max_tokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2.5}", 400, "max_tokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}", 400, "max_tokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":99999999999}", 400, "max_tokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":-1}", 400,
         "max_completion_tokens"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1e400}", 400, ""},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":123456789012345678901234567890}",
         400, ""},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":3}", 400, "temperature"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", 400, "temperature"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":1.5}", 400, "top_p"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":1000}", 400, "n"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[1]}", 400, "stop"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", 400, "stop"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"seed\":\"1\"}", 400, "seed"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"abc\":1}}", 400, "logit_bias"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"5\":500}}", 400, "logit_bias"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"99999999\":1}}", 400, "logit_bias"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":3}", 400, "top_logprobs"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":30,\"logprobs\":true}", 400,
         "top_logprobs"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}", 400, "stream"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":{\"include_usage\":true}}",
         400, "stream_options"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}", 400, "tools[0]"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":{}}", 400, "tools"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\"}", 400, "tool_choice"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"xml\"}}",
         400, "response_format"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\"}}",
         400, "response_format.json_schema"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\","
         "\"json_schema\":{\"name\":\"n\",\"strict\":true,\"schema\":{\"type\":\"object\",\"not\":{}}}}}",
         400, "response_format.json_schema"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"guided_json\":[1]}", 400, "guided_json"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"guided_choice\":[]}", 400, "guided_choice"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"guided_regex\":\"a{2,1}\"}", 400, "guided_regex"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"model\":42}", 400, "model"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"user\":[]}", 400, "user"},
        {"{\"messages\":[{\"role\":\"user\\u0000x\",\"content\":\"a\"}]}", 400, "messages[0].role"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":\"a\\u0000\"}", 400, "stop"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800\"}]}", 400, ""},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"messages\":5", 400, ""},
    };
    struct resp r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http(&f, "POST", "/v1/chat/completions", cases[i].body, &r);
        const char *param = check_error(&r, cases[i].status);
        if (cases[i].param && strcmp(param, cases[i].param) != 0)
            FAIL("case %zu (%s): param '%s', expected '%s'", i, cases[i].body, param, cases[i].param);
        resp_free(&r);
    }
    /* invalid UTF-8 inside a string */
    static const char bad_utf8[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\xc3\"}]}";
    memset(&r, 0, sizeof r);
    http_ex(&f, "POST", "/v1/chat/completions", bad_utf8, (long)sizeof bad_utf8 - 1, NULL, false, &r);
    check_error(&r, 400);
    resp_free(&r);
    /* deep nesting: 100000 '[' */
    size_t deep_n = 100000;
    char *deep = malloc(deep_n + 64);
    int k = snprintf(deep, 64, "{\"messages\":");
    memset(deep + k, '[', deep_n);
    deep[k + deep_n] = '\0';
    memset(&r, 0, sizeof r);
    http_ex(&f, "POST", "/v1/chat/completions", deep, -1, NULL, false, &r);
    check_error(&r, 400);
    resp_free(&r);
    free(deep);
    /* completions prompt shapes */
    http(&f, "POST", "/v1/completions", "{\"prompt\":{}}", &r);
    ASSERT_STR_EQ(check_error(&r, 400), "prompt");
    resp_free(&r);
    http(&f, "POST", "/v1/completions", "{\"prompt\":[1,\"a\"]}", &r);
    ASSERT_STR_EQ(check_error(&r, 400), "prompt");
    resp_free(&r);
    http(&f, "POST", "/v1/completions", "{\"prompt\":[-5]}", &r);
    ASSERT_STR_EQ(check_error(&r, 400), "prompt");
    resp_free(&r);
    /* NUL in content is text like any other (models generate it) */
    http(&f, "POST", "/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}],\"max_tokens\":2}", &r);
    ASSERT_EQ(r.status, 200);
    resp_free(&r);
    /* the server is still up and answers */
    http(&f, "POST", "/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2}", &r);
    ASSERT_EQ(r.status, 200);
    resp_free(&r);
    fx_stop(&f);
}

static void error_statuses(void)
{
    struct ea_server_params p;
    ea_server_params_default(&p);
    p.max_body_bytes = 64 << 10;
    p.max_tokens = 100;
    struct fixture f;
    fx_start(&f, &p, 2, 8);
    struct resp r;
    http(&f, "GET", "/v1/nothing", NULL, &r);
    check_error(&r, 404);
    resp_free(&r);
    http(&f, "GET", "/v1/chat/completions", NULL, &r);
    check_error(&r, 405);
    resp_free(&r);
    http(&f, "DELETE", "/v1/models", NULL, &r);
    check_error(&r, 405);
    resp_free(&r);
    /* 413 by Content-Length and by a chunked body; 10 MB */
    size_t big_n = 10u << 20;
    char *big = malloc(big_n + 1);
    memset(big, ' ', big_n);
    big[0] = '{';
    big[big_n - 1] = '}';
    big[big_n] = '\0';
    /* far over the cap: answered before the body (the client waits for 100) */
    memset(&r, 0, sizeof r);
    http_ex(&f, "POST", "/v1/chat/completions", big, (long)big_n, "Expect: 100-continue", false, &r);
    check_error(&r, 413);
    resp_free(&r);
    /* over the cap but within 4x: read, dropped, answered */
    memset(&r, 0, sizeof r);
    http_ex(&f, "POST", "/v1/chat/completions", big, (long)(200 << 10), NULL, false, &r);
    check_error(&r, 413);
    resp_free(&r);
    memset(&r, 0, sizeof r);
    http_ex(&f, "POST", "/v1/chat/completions", big, (long)(100 << 10), NULL, true, &r);
    check_error(&r, 413);
    resp_free(&r);
    free(big);
    /* max_tokens above the server cap */
    http(&f, "POST", "/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":101}", &r);
    ASSERT_STR_EQ(check_error(&r, 400), "max_tokens");
    resp_free(&r);
    /* a prompt longer than the context: 400 context_length_exceeded */
    size_t ln = 40000;
    char *longp = malloc(ln + 128);
    int k = snprintf(longp, 64, "{\"prompt\":\"");
    for (size_t i = 0; i < ln; i++)
        longp[k + i] = (char)('a' + (i * 7) % 26);
    snprintf(longp + k + ln, 64, "\",\"max_tokens\":5}");
    http(&f, "POST", "/v1/completions", longp, &r);
    ASSERT_STR_EQ(check_error(&r, 400), "prompt");
    ASSERT(strstr(r.body, "context_length_exceeded"));
    resp_free(&r);
    free(longp);
    http(&f, "GET", "/health", NULL, &r);
    ASSERT_EQ(r.status, 200);
    resp_free(&r);
    fx_stop(&f);
}

static void error_500_has_logged_id(void)
{
    /* an answer larger than the output buffer cannot be produced: 500 with
     * an error id that is in the log */
    struct ea_server_params p;
    ea_server_params_default(&p);
    p.max_stream_pending = 8;
    struct fixture f;
    fx_start(&f, &p, 2, 8);
    struct resp r;
    http(&f, "POST", "/v1/completions",
         "{\"prompt\":\"x\",\"max_tokens\":60,\"logit_bias\":{\"1\":-100}}", &r);
    check_error(&r, 500);
    const char *id = strstr(r.body, "err-");
    ASSERT(id);
    char eid[21];
    snprintf(eid, sizeof eid, "%.20s", id);
    fflush(f.log);
    char *log = ea_test_read_file(f.log_path, NULL);
    ASSERT(log && strstr(log, eid));
    free(log);
    resp_free(&r);
    fx_stop(&f);
}

/* ---- concurrency -------------------------------------------------------------- */

struct stream_job {
    const struct fixture *f;
    int idx;
    const char *body; /* NULL: a short default request */
    _Atomic int ok;
    long status;
    char *out; /* the response body when keep_out */
    bool keep_out;
};

/* A request body that generates max_tokens tokens: EOG tokens banned. */
static const char *long_body_ex(const struct fixture *f, int max_tokens, bool stream)
{
    static _Thread_local char b[1024];
    char bias[512] = "";
    size_t o = 0;
    for (int i = 0; i < f->n_eog && o + 24 < sizeof bias; i++)
        o += (size_t)snprintf(bias + o, sizeof bias - o, "%s\"%d\":-100", i ? "," : "", f->eog[i]);
    snprintf(b, sizeof b,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"go on forever\"}],\"max_tokens\":%d,"
             "\"stream\":%s,\"logit_bias\":{%s}}",
             max_tokens, stream ? "true" : "false", bias);
    return b;
}

static const char *long_body(const struct fixture *f, int max_tokens) { return long_body_ex(f, max_tokens, true); }

static void *stream_thread(void *arg)
{
    struct stream_job *j = arg;
    char body[512];
    snprintf(body, sizeof body,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"client %d says hi\"}],\"max_tokens\":%d,"
             "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"seed\":%d}",
             j->idx, 8 + j->idx % 5, j->idx);
    struct resp r;
    memset(&r, 0, sizeof r);
    http_ex(j->f, "POST", "/v1/chat/completions", j->body ? j->body : body, -1, NULL, false, &r);
    j->status = r.status;
    bool ok = r.status == 200 && r.body && strstr(r.body, "data: [DONE]\n\n") &&
              (j->body || strstr(r.body, "\"completion_tokens\":"));
    atomic_store(&j->ok, ok ? 1 : 0);
    if (j->keep_out)
        j->out = r.body;
    else
        free(r.body);
    return NULL;
}

static void concurrent_streams(void)
{
    struct fixture f;
    fx_start(&f, NULL, 4, 64);
    enum { N = 16 };
    pthread_t th[N];
    struct stream_job jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct stream_job){.f = &f, .idx = i};
        pthread_create(&th[i], NULL, stream_thread, &jobs[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++)
        if (!atomic_load(&jobs[i].ok))
            FAIL("client %d did not finish its stream (status %ld)", i, jobs[i].status);
    /* the client can see [DONE] before the server has closed its side */
    for (int i = 0; i < 500 && ea_server_inflight(f.srv) != 0; i++)
        usleep(10000);
    ASSERT_EQ(ea_server_inflight(f.srv), 0);
    struct ea_engine_stats st;
    ea_engine_get_stats(f.eng, &st);
    ASSERT_EQ(st.kv_blocks_used, 0);
    fx_stop(&f);
}

static uint32_t kv_used_from_metrics(const struct fixture *f)
{
    struct resp r;
    http(f, "GET", "/metrics", NULL, &r);
    ASSERT_EQ(r.status, 200);
    const char *p = strstr(r.body, "edgeagent_kv_blocks{state=\"used\"} ");
    ASSERT(p);
    uint32_t v = (uint32_t)strtoul(p + strlen("edgeagent_kv_blocks{state=\"used\"} "), NULL, 10);
    free(r.body);
    return v;
}

static void disconnect_frees_kv(void)
{
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    ASSERT_EQ(kv_used_from_metrics(&f), 0);
    for (int round = 0; round < 3; round++) {
        struct resp r;
        memset(&r, 0, sizeof r);
        r.abort_after = 600; /* a few chunks, then hang up */
        http_ex(&f, "POST", "/v1/chat/completions", long_body(&f, 1000), -1, NULL, false, &r);
        free(r.body);
        /* the server notices at its next write; the engine frees at its next step */
        uint32_t used = 1;
        for (int i = 0; i < 500 && (used = kv_used_from_metrics(&f)) != 0; i++)
            usleep(10000);
        ASSERT_EQ(used, 0);
        for (int i = 0; i < 500 && ea_server_inflight(f.srv) != 0; i++)
            usleep(10000);
        ASSERT_EQ(ea_server_inflight(f.srv), 0);
    }
    struct ea_engine_stats st;
    ea_engine_get_stats(f.eng, &st);
    ASSERT(st.tokens_generated < 3 * 1000); /* cancelled, not run to the end */
    struct resp r;
    http(&f, "GET", "/metrics", NULL, &r);
    ASSERT(strstr(r.body, "edgeagent_client_disconnects_total 3"));
    ASSERT(strstr(r.body, "gen_ai_server_time_to_first_token_seconds_bucket"));
    ASSERT(strstr(r.body, "gen_ai_server_time_per_output_token_seconds_count"));
    ASSERT(strstr(r.body, "edgeagent_queue_depth 0"));
    resp_free(&r);
    fx_stop(&f);
}

/* A non-streamed request waits suspended (libmicrohttpd does not watch its
 * socket then): a client that closes its connection must still have its
 * generation stopped and its KV blocks freed, not run to max_tokens. */
static void disconnect_non_streamed_stops_generation(void)
{
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    struct ea_engine_stats st0;
    ea_engine_get_stats(f.eng, &st0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(ea_server_port(f.srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char *body = long_body_ex(&f, 1000, false);
    char req[1400];
    int n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    ASSERT_EQ(send(fd, req, (size_t)n, 0), n);
    /* hang up once the generation is running */
    struct ea_engine_stats st;
    for (int i = 0; i < 5000; i++) {
        ea_engine_get_stats(f.eng, &st);
        if (st.running > 0 || st.tokens_generated > st0.tokens_generated)
            break;
        usleep(1000);
    }
    ASSERT(st.running > 0 || st.tokens_generated > st0.tokens_generated);
    close(fd);
    uint32_t used = 1;
    for (int i = 0; i < 1000 && (used = kv_used_from_metrics(&f)) != 0; i++)
        usleep(10000);
    ASSERT_EQ(used, 0);
    for (int i = 0; i < 500 && ea_server_inflight(f.srv) != 0; i++)
        usleep(10000);
    ASSERT_EQ(ea_server_inflight(f.srv), 0);
    ea_engine_get_stats(f.eng, &st);
    printf("    %" PRIu64 " of 1000 tokens generated before the hang-up was noticed\n",
           st.tokens_generated - st0.tokens_generated);
    ASSERT(st.tokens_generated - st0.tokens_generated < 500); /* stopped, not run to max_tokens */
    struct resp r;
    http(&f, "GET", "/metrics", NULL, &r);
    ASSERT(strstr(r.body, "edgeagent_client_disconnects_total 1"));
    resp_free(&r);
    /* the server goes on serving */
    http(&f, "POST", "/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4}",
         &r);
    ASSERT_EQ(r.status, 200);
    resp_free(&r);
    fx_stop(&f);
}

static void slow_client_never_blocks_engine(void)
{
    /* a client that stops reading: its unread output hits the cap, its
     * generation is stopped (KV back to zero) while other clients are served;
     * the stalled connection is closed by the idle timeout */
    struct ea_server_params p;
    ea_server_params_default(&p);
    p.max_stream_pending = 4096;
    p.idle_timeout_s = 2;
    struct fixture f;
    fx_start(&f, &p, 2, 8);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 2048;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(ea_server_port(f.srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char *body = long_body(&f, 3000);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    ASSERT_EQ(write(fd, req, (size_t)n), n);
    /* meanwhile another client is served normally */
    struct resp r;
    http(&f, "POST", "/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":20,\"stream\":true}", &r);
    ASSERT_EQ(r.status, 200);
    ASSERT(strstr(r.body, "data: [DONE]"));
    resp_free(&r);
    struct ea_engine_stats st;
    for (int i = 0; i < 6000; i++) { /* slow under sanitizers */
        ea_engine_get_stats(f.eng, &st);
        if (st.kv_blocks_used == 0 && st.running == 0)
            break;
        usleep(10000);
    }
    ASSERT_EQ(st.kv_blocks_used, 0);
    ASSERT(st.tokens_generated < 3000); /* stopped long before its max_tokens */
    for (int i = 0; i < 500 && ea_server_inflight(f.srv) != 0; i++)
        usleep(10000);
    ASSERT_EQ(ea_server_inflight(f.srv), 0); /* the stalled connection was closed */
    close(fd);
    fx_stop(&f);
}

static void header_cap_and_idle_timeout(void)
{
    struct ea_server_params p;
    ea_server_params_default(&p);
    p.idle_timeout_s = 1;
    struct fixture f;
    fx_start(&f, &p, 2, 8);
    /* headers past the per-connection memory: refused with a 4xx, server up */
    size_t hn = 64 << 10;
    char *hdr = malloc(hn + 16);
    memcpy(hdr, "X-Big: ", 7);
    memset(hdr + 7, 'a', hn);
    hdr[7 + hn] = '\0';
    struct resp r;
    memset(&r, 0, sizeof r);
    http_ex(&f, "GET", "/health", NULL, -1, hdr, false, &r);
    ASSERT(r.status == 431 || r.status == 413);
    resp_free(&r);
    free(hdr);
    /* a connection that sends nothing is closed after the idle timeout */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(ea_server_port(f.srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[16];
    ASSERT_EQ(read(fd, buf, sizeof buf), 0); /* closed by the server, not by our 5 s limit */
    close(fd);
    http(&f, "GET", "/health", NULL, &r);
    ASSERT_EQ(r.status, 200);
    resp_free(&r);
    fx_stop(&f);
}

static void overload_429(void)
{
    /* one slot, no queue in the engine and a server cap of 2 in flight */
    struct ea_server_params p;
    ea_server_params_default(&p);
    p.max_inflight = 2;
    struct fixture f;
    fx_start(&f, &p, 1, 1);
    enum { N = 6 };
    pthread_t th[N];
    struct stream_job jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct stream_job){.f = &f, .idx = 100 + i};
        pthread_create(&th[i], NULL, stream_thread, &jobs[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    int ok = 0, busy = 0;
    for (int i = 0; i < N; i++) {
        ok += atomic_load(&jobs[i].ok);
        busy += jobs[i].status == 429;
    }
    ASSERT(ok >= 1);
    ASSERT_EQ(ok + busy, N); /* every request either finished or got an explicit 429 */
    fx_stop(&f);
}

static void retry_after_header(void)
{
    struct ea_server_params p;
    ea_server_params_default(&p);
    p.max_inflight = 1;
    struct fixture f;
    fx_start(&f, &p, 1, 4);
    /* hold the only slot with a long stream */
    char body[512];
    snprintf(body, sizeof body, "%s", long_body(&f, 300));
    struct stream_job hold = {.f = &f, .idx = 1, .body = body};
    pthread_t th;
    pthread_create(&th, NULL, stream_thread, &hold);
    for (int i = 0; i < 1000 && ea_server_inflight(f.srv) == 0; i++)
        usleep(2000);
    struct resp r;
    http(&f, "POST", "/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2}", &r);
    check_error(&r, 429);
    ASSERT_STR_EQ(r.retry_after, "1");
    resp_free(&r);
    pthread_join(th, NULL);
    ASSERT(atomic_load(&hold.ok));
    fx_stop(&f);
}

struct shutdown_arg {
    ea_server *srv;
    unsigned grace;
};

static void *shutdown_thread(void *a)
{
    struct shutdown_arg *s = a;
    ea_server_shutdown(s->srv, s->grace);
    return NULL;
}

static void graceful_shutdown(void)
{
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    /* a long stream in flight, then shutdown: it finishes within the grace */
    char body[1024];
    snprintf(body, sizeof body, "%s", long_body(&f, 400));
    struct stream_job j = {.f = &f, .idx = 1, .body = body, .keep_out = true};
    pthread_t th, sd;
    struct resp r;
    memset(&r, 0, sizeof r);
    pthread_create(&th, NULL, stream_thread, &j);
    for (int i = 0; i < 500 && ea_server_inflight(f.srv) == 0; i++)
        usleep(2000);
    struct shutdown_arg sa = {f.srv, 30000}; /* returns as soon as the stream ends */
    pthread_create(&sd, NULL, shutdown_thread, &sa);
    pthread_join(th, NULL);
    pthread_join(sd, NULL);
    ASSERT(atomic_load(&j.ok)); /* finished within the grace period */
    ASSERT(j.out && !strstr(j.out, "shutting down") && strstr(j.out, "\"finish_reason\":\"length\""));
    free(j.out);
    ASSERT_EQ(ea_server_inflight(f.srv), 0);
    /* no longer accepting */
    http(&f, "GET", "/health", NULL, &r);
    ASSERT_EQ(r.status, 0);
    resp_free(&r);
    struct ea_engine_stats st;
    ea_engine_get_stats(f.eng, &st);
    ASSERT_EQ(st.kv_blocks_used, 0);
    fx_stop(&f);
}

static void shutdown_cancels_after_grace(void)
{
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    char body[512];
    snprintf(body, sizeof body, "%s", long_body(&f, 1000));
    struct stream_job j = {.f = &f, .idx = 1, .body = body, .keep_out = true};
    pthread_t th, sd;
    pthread_create(&th, NULL, stream_thread, &j);
    /* the stream has begun (its tokens come), so it is answered 200 and ends
     * with an error event; before that a shutdown answers it 503 */
    struct ea_engine_stats es;
    double until = ea_test_now_ms() + 60000 * ea_test_time_scale();
    do {
        usleep(2000);
        ea_engine_get_stats(f.eng, &es);
    } while (es.tokens_generated < 4 && ea_test_now_ms() < until);
    ASSERT(es.tokens_generated >= 4);
    struct shutdown_arg sa = {f.srv, 100};
    pthread_create(&sd, NULL, shutdown_thread, &sa);
    pthread_join(sd, NULL);
    pthread_join(th, NULL);
    /* the stream ended with an explicit error event, not a silent cut */
    ASSERT_EQ(j.status, 200);
    ASSERT(j.out && strstr(j.out, "shutting down"));
    ASSERT(strstr(j.out, "data: [DONE]"));
    free(j.out);
    ASSERT_EQ(ea_server_inflight(f.srv), 0);
    struct ea_engine_stats st;
    ea_engine_get_stats(f.eng, &st);
    ASSERT_EQ(st.kv_blocks_used, 0);
    fx_stop(&f);
}

static void auth_and_bind(void)
{
    struct ea_server_params p;
    ea_server_params_default(&p);
    p.api_key = "s3cret-key";
    struct fixture f;
    fx_start(&f, &p, 2, 8);
    struct resp r;
    http(&f, "GET", "/v1/models", NULL, &r);
    check_error(&r, 401);
    ASSERT(strstr(r.body, "invalid_api_key"));
    resp_free(&r);
    memset(&r, 0, sizeof r);
    http_ex(&f, "GET", "/v1/models", NULL, -1, "Authorization: Bearer s3cret-kez", false, &r);
    check_error(&r, 401);
    resp_free(&r);
    memset(&r, 0, sizeof r);
    http_ex(&f, "GET", "/v1/models", NULL, -1, "Authorization: Bearer s3cret-key-longer", false, &r);
    check_error(&r, 401);
    resp_free(&r);
    memset(&r, 0, sizeof r);
    http_ex(&f, "GET", "/v1/models", NULL, -1, "Authorization: Bearer s3cret-key", false, &r);
    ASSERT_EQ(r.status, 200);
    resp_free(&r);
    http(&f, "GET", "/health", NULL, &r); /* health and the page need no key */
    ASSERT_EQ(r.status, 200);
    resp_free(&r);
    fx_stop(&f);

    /* a non-loopback address needs a key or the explicit opt-out */
    ea_server *s = NULL;
    struct ea_error err = {0};
    ea_server_params_default(&p);
    p.host = "0.0.0.0";
    p.port = 0;
    ASSERT_EQ(ea_server_create(&p, &s, &err), EA_EAUTH);
    ASSERT(strstr(err.msg, "API key"));
    p.insecure_no_auth = true;
    ASSERT_OK(ea_server_create(&p, &s, &err), &err);
    ea_server_destroy(s);
    p.insecure_no_auth = false;
    p.api_key = "k";
    ASSERT_OK(ea_server_create(&p, &s, &err), &err);
    ea_server_destroy(s);
}

/* ---- the seam: an upstream whose producer is a thread of its own ------------ */

/* What the cloud client will be: an upstream that emits into the generation
 * queue from its own thread. Swapped in for the local one, it must come out
 * of the HTTP side exactly as engine output does (JSON and SSE, n choices,
 * usage from its finish), and every job it prepared must be released. */
static const char *const thread_pieces[] = {"Hel", "lo ", "from ", "a thread"};
#define THREAD_PIECES 4
static _Atomic int thread_jobs_prepared, thread_jobs_released;

struct ea__upstream_job {
    struct ea__genq *q;
    int n_choices;
    _Atomic bool cancel;
};

static void *thread_producer(void *arg)
{
    struct ea__upstream_job *j = arg;
    struct ea__genq *q = j->q;
    const int n = j->n_choices; /* j is released after the last finish */
    for (int i = 0; i < n; i++) {
        int k = 0;
        bool go = true;
        for (; k < THREAD_PIECES && go && !atomic_load(&j->cancel); k++) {
            go = ea__genq_emit(q, i, thread_pieces[k], strlen(thread_pieces[k]), NULL);
            usleep(1000);
        }
        struct ea__genq_end end = {
            .finish = atomic_load(&j->cancel) ? EA_FINISH_CANCELLED : EA_FINISH_STOP,
            .n_prompt = 5, .n_generated = k, .ttft_ms = 1, .total_ms = 2};
        ea__genq_finish(q, i, NULL, 0, &end);
    }
    return NULL;
}

static bool thread_prepare(struct ea__upstream *u, const struct ea__gen_request *r, const char *id,
                           struct ea__upstream_job **job, struct ea__api_error *e)
{
    (void)u, (void)r, (void)id;
    *job = calloc(1, sizeof **job);
    if (!*job)
        return ea__api_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
    atomic_fetch_add(&thread_jobs_prepared, 1);
    return true;
}

static bool thread_start(struct ea__upstream_job *j, const struct ea__gen_request *r, uint64_t seed,
                         struct ea__genq *q, struct ea__api_error *e)
{
    (void)r, (void)seed;
    j->q = q;
    j->n_choices = q->n_choices;
    q->n_prompt_tokens = 5;
    for (int i = 0; i < j->n_choices; i++)
        ea__genq_begin(q, i);
    pthread_t t;
    if (pthread_create(&t, NULL, thread_producer, j) != 0) {
        for (int i = 0; i < j->n_choices; i++)
            ea__genq_abort(q, i);
        return ea__api_errorf(e, 500, "server_error", NULL, NULL, "no thread");
    }
    pthread_detach(t);
    return true;
}

static void thread_cancel(struct ea__upstream_job *j) { atomic_store(&j->cancel, true); }

static void thread_release(struct ea__upstream_job *j)
{
    free(j);
    atomic_fetch_add(&thread_jobs_released, 1);
}

static const struct ea__upstream_ops thread_ops = {
    .kind = "test-thread",
    .prepare = thread_prepare,
    .start = thread_start,
    .cancel = thread_cancel,
    .release = thread_release,
};

static void upstream_thread_producer(void)
{
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    struct ea__upstream thread_up = {&thread_ops, "test-thread"};
    struct ea__upstream *local = f.srv->upstream;
    f.srv->upstream = &thread_up;
    f.srv->ups[f.srv->local_up] = &thread_up; /* what the router runs */
    struct resp r;
    http(&f, "POST", "/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"n\":2}", &r);
    ASSERT_EQ(r.status, 200);
    json_t *j = parse(&r);
    json_t *ch = json_object_get(j, "choices");
    ASSERT_EQ(json_array_size(ch), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *c = json_array_get(ch, i);
        ASSERT_STR_EQ(json_string_value(json_object_get(json_object_get(c, "message"), "content")),
                      "Hello from a thread");
        ASSERT_STR_EQ(json_string_value(json_object_get(c, "finish_reason")), "stop");
    }
    json_t *u = json_object_get(j, "usage");
    ASSERT_EQ(json_integer_value(json_object_get(u, "prompt_tokens")), 5);
    ASSERT_EQ(json_integer_value(json_object_get(u, "completion_tokens")), 2 * THREAD_PIECES);
    json_decref(j);
    resp_free(&r);

    http(&f, "POST", "/v1/completions",
         "{\"prompt\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}", &r);
    ASSERT_EQ(r.status, 200);
    json_t *ev[64];
    bool done;
    int n = sse_events(r.body, ev, 64, &done);
    ASSERT(done);
    ASSERT(n >= 2);
    char text[256] = "";
    int finishes = 0;
    for (int i = 0; i < n - 1; i++) {
        json_t *c = json_array_get(json_object_get(ev[i], "choices"), 0);
        json_t *t = json_object_get(c, "text");
        if (json_is_string(t))
            strncat(text, json_string_value(t), sizeof text - strlen(text) - 1);
        finishes += json_is_string(json_object_get(c, "finish_reason"));
    }
    ASSERT_STR_EQ(text, "Hello from a thread");
    ASSERT_EQ(finishes, 1);
    u = json_object_get(ev[n - 1], "usage");
    ASSERT_EQ(json_integer_value(json_object_get(u, "completion_tokens")), THREAD_PIECES);
    for (int i = 0; i < n; i++)
        json_decref(ev[i]);
    resp_free(&r);

    for (int i = 0; i < 500 && ea_server_inflight(f.srv) != 0; i++)
        usleep(10000);
    ASSERT_EQ(ea_server_inflight(f.srv), 0);
    ASSERT_EQ(atomic_load(&thread_jobs_prepared), 2);
    ASSERT_EQ(atomic_load(&thread_jobs_released), 2);
    f.srv->upstream = local;
    f.srv->ups[f.srv->local_up] = local;
    fx_stop(&f);
}


/* ---- routing: a scripted upstream tried before the engine -------------------- */

/* The relay (src/server/relay.c) in front of two upstreams: "a", whose
 * behaviour each case scripts (it refuses at prepare, or emits some pieces
 * from a thread and then ends with a failure of a given class), and "b", the
 * engine. Prefer-edge order tries a first. */
static struct {
    int prepare_status; /* != 0: prepare refuses with it */
    const char *prepare_code;
    int pieces;         /* emitted before the end */
    enum ea__fail fail; /* EA__FAIL_NONE: ends well */
    int http_status;
} scr;
static _Atomic int scr_prepared, scr_released;

static void *scripted_producer(void *arg)
{
    struct ea__upstream_job *j = arg;
    struct ea__genq *q = j->q;
    const int n = j->n_choices;
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (; k < scr.pieces && !atomic_load(&j->cancel); k++) {
            ea__genq_emit(q, i, thread_pieces[k % THREAD_PIECES], strlen(thread_pieces[k % THREAD_PIECES]), NULL);
            usleep(1000);
        }
        struct ea__genq_end end = {.finish = EA_FINISH_STOP, .n_prompt = 5, .n_generated = k,
                                   .ttft_ms = 1, .total_ms = 2};
        if (atomic_load(&j->cancel))
            end.finish = EA_FINISH_CANCELLED;
        else if (scr.fail != EA__FAIL_NONE) {
            end.finish = EA_FINISH_ERROR;
            end.status = EA_EIO;
            end.fail = scr.fail;
            end.http_status = scr.http_status;
            end.error = "scripted failure";
        }
        ea__genq_finish(q, i, NULL, 0, &end);
    }
    return NULL;
}

static bool scripted_prepare(struct ea__upstream *u, const struct ea__gen_request *r, const char *id,
                             struct ea__upstream_job **job, struct ea__api_error *e)
{
    (void)u, (void)r, (void)id;
    if (scr.prepare_status)
        return ea__api_errorf(e, scr.prepare_status,
                              scr.prepare_status == 429 ? "rate_limit_error" : "invalid_request_error",
                              scr.prepare_code, NULL, "scripted refusal %d", scr.prepare_status);
    *job = calloc(1, sizeof **job);
    if (!*job)
        return ea__api_errorf(e, 500, "server_error", NULL, NULL, "out of memory");
    atomic_fetch_add(&scr_prepared, 1);
    return true;
}

static bool scripted_start(struct ea__upstream_job *j, const struct ea__gen_request *r, uint64_t seed,
                           struct ea__genq *q, struct ea__api_error *e)
{
    (void)r, (void)seed;
    j->q = q;
    j->n_choices = q->n_choices;
    q->n_prompt_tokens = 5;
    for (int i = 0; i < j->n_choices; i++)
        ea__genq_begin(q, i);
    pthread_t t;
    if (pthread_create(&t, NULL, scripted_producer, j) != 0) {
        for (int i = 0; i < j->n_choices; i++)
            ea__genq_abort(q, i);
        return ea__api_errorf(e, 500, "server_error", NULL, NULL, "no thread");
    }
    pthread_detach(t);
    return true;
}

static void scripted_release(struct ea__upstream_job *j)
{
    free(j);
    atomic_fetch_add(&scr_released, 1);
}

static const struct ea__upstream_ops scripted_ops = {
    .kind = "test-scripted",
    .prepare = scripted_prepare,
    .start = scripted_start,
    .cancel = thread_cancel,
    .release = scripted_release,
};

/* The "edgeagent" object's upstream, and its attempts as "name=outcome,...". */
static void route_of(const struct resp *r, char *upstream, size_t ucap, char *attempts, size_t acap)
{
    json_t *j = parse(r);
    json_t *ea = json_object_get(j, "edgeagent");
    snprintf(upstream, ucap, "%s", json_string_value(json_object_get(ea, "upstream")) ?: "");
    attempts[0] = '\0';
    json_t *at = json_object_get(ea, "attempts");
    for (size_t i = 0; i < json_array_size(at); i++) {
        json_t *a = json_array_get(at, i);
        snprintf(attempts + strlen(attempts), acap - strlen(attempts), "%s%s=%s", i ? "," : "",
                 json_string_value(json_object_get(a, "upstream")),
                 json_string_value(json_object_get(a, "outcome")));
    }
    json_decref(j);
}

static void relay_fallbacks(void)
{
    static const char yaml[] = "upstreams:\n"
                               "  - {name: a, kind: local}\n"
                               "  - {name: b, kind: local}\n"
                               "tasks:\n"
                               "  - {name: t, mode: prefer_edge}\n"
                               /* an open breaker stays open through the checks, however slow the build */
                               "routing: {default_task: t, breaker: {cooldown_ms: 600000, max_cooldown_ms: 600000}}\n";
    struct ea_router_config *cfg = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_router_config_parse(yaml, strlen(yaml), "relay.yaml", &cfg, &err), &err);
    struct ea_server_params p;
    ea_server_params_default(&p);
    p.router_config = cfg;
    struct fixture f;
    fx_start(&f, &p, 2, 8);
    struct ea__upstream scripted = {&scripted_ops, "a"};
    f.srv->ups[0] = &scripted;
    const char *chat = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4}";
    const char *chat_s = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4,"
                         "\"stream\":true}";
    struct resp r;
    char up[32], at[256];

    /* a refuses as overloaded: b answers, and says so */
    memset(&scr, 0, sizeof scr);
    scr.prepare_status = 429;
    scr.prepare_code = "server_overloaded";
    ASSERT_EQ(http(&f, "POST", "/v1/chat/completions", chat, &r), 200);
    ASSERT_STR_EQ(r.attempts, "a=overloaded, b=ok");
    ASSERT_STR_EQ(r.source, "edge");
    route_of(&r, up, sizeof up, at, sizeof at);
    ASSERT_STR_EQ(up, "b");
    ASSERT_STR_EQ(at, "a=overloaded,b=ok");
    resp_free(&r);

    /* a 400 from an upstream is the request's fault: returned as it is */
    scr.prepare_status = 400;
    scr.prepare_code = "invalid_value";
    ASSERT_EQ(http(&f, "POST", "/v1/chat/completions", chat, &r), 400);
    ASSERT(strstr(r.body, "scripted refusal 400") && strstr(r.body, "invalid_value"));
    resp_free(&r);

    /* a fails before any output (a 503 upstream): b answers, streamed or not */
    memset(&scr, 0, sizeof scr);
    scr.fail = EA__FAIL_HTTP_5XX;
    scr.http_status = 503;
    ASSERT_EQ(http(&f, "POST", "/v1/chat/completions", chat, &r), 200);
    ASSERT_STR_EQ(r.attempts, "a=http_503, b=ok");
    resp_free(&r);
    ASSERT_EQ(http(&f, "POST", "/v1/chat/completions", chat_s, &r), 200);
    ASSERT_STR_EQ(r.attempts, "a=http_503, b=ok");
    ASSERT(strstr(r.body, "data: [DONE]") && !strstr(r.body, "\"error\""));
    ASSERT(strstr(r.body, "\"upstream\":\"b\""));
    resp_free(&r);

    /* a fails after streaming "Hello ": the stream ends with an explicit error, no switch */
    scr.pieces = 2;
    ASSERT_EQ(http(&f, "POST", "/v1/chat/completions", chat_s, &r), 200);
    ASSERT_STR_EQ(r.source, "edge");
    /* both pieces streamed (in one chunk or two, as the client drained them) */
    ASSERT(strstr(r.body, "\"content\":\"Hel") && strstr(r.body, "lo \""));
    ASSERT(strstr(r.body, "data: {\"error\":") && strstr(r.body, "the stream from a broke"));
    ASSERT(strstr(r.body, "data: [DONE]"));
    resp_free(&r);

    /* ... while a non-streamed client, which saw nothing, gets b's answer */
    ASSERT_EQ(http(&f, "POST", "/v1/chat/completions", chat, &r), 200);
    route_of(&r, up, sizeof up, at, sizeof at);
    ASSERT_STR_EQ(up, "b");
    ASSERT_STR_EQ(at, "a=http_503,b=ok");
    resp_free(&r);

    /* a's failures open its breaker: then a is not tried at all */
    scr.pieces = 0;
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(http(&f, "POST", "/v1/chat/completions", chat, &r), 200);
        resp_free(&r);
    }
    ASSERT_EQ(http(&f, "POST", "/v1/chat/completions", chat, &r), 200);
    ASSERT_STR_EQ(r.attempts, "b=ok");
    resp_free(&r);
    ASSERT_EQ(http(&f, "GET", "/v1/edgeagent/upstreams", NULL, &r), 200);
    ASSERT(strstr(r.body, "\"name\":\"a\",\"kind\":\"local\"") &&
           strstr(r.body, "\"breaker\":\"open\""));
    resp_free(&r);
    ASSERT_EQ(http(&f, "GET", "/metrics", NULL, &r), 200);
    ASSERT(strstr(r.body, "edgeagent_upstream_breaker_state{upstream=\"a\",tier=\"device\"} 1"));
    ASSERT(strstr(r.body, "edgeagent_upstream_fallbacks_total{upstream=\"a\",tier=\"device\"} "));
    resp_free(&r);

    for (int i = 0; i < 500 && ea_server_inflight(f.srv) != 0; i++)
        usleep(10000);
    ASSERT_EQ(ea_server_inflight(f.srv), 0);
    ASSERT_EQ(atomic_load(&scr_prepared), atomic_load(&scr_released));
    f.srv->ups[0] = f.srv->upstream;
    fx_stop(&f);
    ea_router_config_destroy(cfg);
}

/* Names a request may use, and the ones it may not. */
static void route_names(void)
{
    static const char yaml[] = "upstreams:\n"
                               "  - {name: local, kind: local}\n"
                               "tasks:\n"
                               "  - {name: intent, latency_sensitive: true, max_latency_ms: 300}\n";
    struct ea_router_config *cfg = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_router_config_parse(yaml, strlen(yaml), "names.yaml", &cfg, &err), &err);
    struct ea_server_params p;
    ea_server_params_default(&p);
    p.router_config = cfg;
    struct fixture f;
    fx_start(&f, &p, 2, 8);
    struct resp r;
    /* every listed id can be served */
    ASSERT_EQ(http(&f, "GET", "/v1/models", NULL, &r), 200);
    json_t *j = parse(&r);
    json_t *data = json_object_get(j, "data");
    ASSERT_EQ(json_array_size(data), 4); /* tiny-test, auto, task:intent, local */
    ASSERT_STR_EQ(json_string_value(json_object_get(json_array_get(data, 0), "id")), "tiny-test");
    for (size_t i = 0; i < json_array_size(data); i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":2}",
                 json_string_value(json_object_get(json_array_get(data, i), "id")));
        struct resp q;
        ASSERT_EQ(http(&f, "POST", "/v1/chat/completions", body, &q), 200);
        ASSERT_STR_EQ(q.source, "edge");
        resp_free(&q);
    }
    json_decref(j);
    resp_free(&r);
    /* the task by header and by the body extension; unknown names are 404 */
    memset(&r, 0, sizeof r);
    ASSERT_EQ(http_ex(&f, "POST", "/v1/chat/completions",
                      "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":2}", -1,
                      "X-EdgeAgent-Task: intent", false, &r), 200);
    ASSERT(strstr(r.body, "\"task\":\"intent\"") && strstr(r.body, "\"budget_ms\":300"));
    resp_free(&r);
    ASSERT_EQ(http(&f, "POST", "/v1/chat/completions",
                   "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":2,"
                   "\"edgeagent\":{\"task\":\"intent\",\"max_latency_ms\":50}}", &r), 200);
    ASSERT(strstr(r.body, "\"task\":\"intent\"") && strstr(r.body, "\"budget_ms\":50"));
    resp_free(&r);
    const char *bad[] = {"{\"model\":\"task:nope\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                         "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                         "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"edgeagent\":{\"task\":\"x\"}}"};
    for (size_t i = 0; i < 3; i++) {
        ASSERT_EQ(http(&f, "POST", "/v1/chat/completions", bad[i], &r), 404);
        ASSERT(strstr(r.body, "model_not_found"));
        resp_free(&r);
    }
    ASSERT_EQ(http(&f, "POST", "/v1/chat/completions",
                   "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"edgeagent\":{\"allow_cloud\":1}}",
                   &r), 400);
    ASSERT(strstr(r.body, "edgeagent.allow_cloud"));
    resp_free(&r);
    fx_stop(&f);
    ea_router_config_destroy(cfg);
}

static void no_content_in_log(void)
{
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    struct resp r;
    http(&f, "POST", "/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"my secret diary entry\"}],\"max_tokens\":3}", &r);
    ASSERT_EQ(r.status, 200);
    resp_free(&r);
    char *log = NULL;
    /* the line is written when the server has finished the request */
    for (int i = 0; i < 500; i++) {
        free(log);
        log = ea_test_read_file(f.log_path, NULL);
        if (log && strstr(log, "/v1/chat/completions 200"))
            break;
        usleep(10000);
    }
    ASSERT(log && strstr(log, "/v1/chat/completions 200"));
    ASSERT(!strstr(log, "secret diary"));
    free(log);
    fx_stop(&f);
    struct ea_server_params p;
    ea_server_params_default(&p);
    p.log_content = true;
    fx_start(&f, &p, 2, 8);
    http(&f, "POST", "/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"my secret diary entry\"}],\"max_tokens\":3}", &r);
    resp_free(&r);
    log = ea_test_read_file(f.log_path, NULL);
    ASSERT(log && strstr(log, "secret diary"));
    free(log);
    fx_stop(&f);
}

/* ---- the parser alone ------------------------------------------------------------ */

/* The tiny model with its tokenizer.chat_template replaced by a real one. */
/* The test model with the chat template tpl_rel (../shared) and, when
 * control is not NULL, its last vocabulary entry replaced by that text as a
 * control token (e.g. Mistral's [TOOL_CALLS]). */
static const char *model_with(const char *tpl_rel, const char *control, char *out, size_t cap)
{
    size_t n;
    char *tpl = ea_test_read_file(ea_test_shared_path(tpl_rel), &n);
    ASSERT(tpl);
    ea_gguf *g = NULL;
    struct ea_error err = {0};
    ASSERT_OK(ea_gguf_open(model_path(), &g, &err), &err);
    ea_gguf_writer *w = ea_gguf_writer_create();
    for (uint64_t i = 0; i < ea_gguf_n_kv(g); i++) {
        const struct ea_gguf_kv *kv = ea_gguf_kv_at(g, i);
        const struct ea_gguf_value *v = &kv->value;
        if (!strcmp(kv->key, "tokenizer.chat_template"))
            continue;
        if (control && !strcmp(kv->key, "tokenizer.ggml.tokens")) {
            ASSERT(v->type == EA_GGUF_ARRAY && v->v.arr.elem_type == EA_GGUF_STRING && v->v.arr.n > 0);
            struct ea_gguf_str *strs = malloc(v->v.arr.n * sizeof *strs);
            ASSERT(strs);
            memcpy(strs, v->v.arr.strs, v->v.arr.n * sizeof *strs);
            strs[v->v.arr.n - 1] = (struct ea_gguf_str){control, strlen(control)};
            ASSERT_EQ(ea_gguf_writer_add_str_arr(w, kv->key, v->v.arr.n, strs), EA_OK);
            free(strs);
        } else if (control && !strcmp(kv->key, "tokenizer.ggml.token_type")) {
            ASSERT(v->type == EA_GGUF_ARRAY && v->v.arr.elem_type == EA_GGUF_INT32 && v->v.arr.n > 0);
            int32_t *types = malloc(v->v.arr.n * sizeof *types);
            ASSERT(types);
            memcpy(types, v->v.arr.raw, v->v.arr.n * sizeof *types);
            types[v->v.arr.n - 1] = 3; /* control */
            ASSERT_EQ(ea_gguf_writer_add_arr(w, kv->key, EA_GGUF_INT32, v->v.arr.n, types), EA_OK);
            free(types);
        } else {
            ASSERT_EQ(ea_gguf_writer_add_value(w, kv->key, v), EA_OK);
        }
    }
    ASSERT_EQ(ea_gguf_writer_add_strn(w, "tokenizer.chat_template", tpl, n), EA_OK);
    for (uint64_t i = 0; i < ea_gguf_n_tensors(g); i++) {
        const struct ea_gguf_tensor *t = ea_gguf_tensor_at(g, i);
        ASSERT_EQ(ea_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data), EA_OK);
    }
    snprintf(out, cap, "%s", ea_test_tmp_path("server-templated.gguf"));
    ASSERT_OK(ea_gguf_writer_write_file(w, out, &err), &err);
    ea_gguf_writer_destroy(w);
    ea_gguf_close(g);
    free(tpl);
    return out;
}

static const char *model_with_template(const char *tpl_rel, char *out, size_t cap)
{
    return model_with(tpl_rel, NULL, out, cap);
}

static const char *rendered_prompt(const struct fixture *f, const char *body, long want_status)
{
    static char prompt[8192];
    struct resp r = {0};
    ASSERT_EQ(http(f, "POST", "/apply-template", body, &r), want_status);
    json_t *j = parse(&r);
    prompt[0] = '\0';
    if (want_status == 200)
        snprintf(prompt, sizeof prompt, "%s", json_string_value(json_object_get(j, "prompt")));
    else
        snprintf(prompt, sizeof prompt, "%s",
                 json_string_value(json_object_get(json_object_get(j, "error"), "message")));
    json_decref(j);
    resp_free(&r);
    return prompt;
}

/* Chat prompts are rendered with the model's own template. */
static void chat_templates_applied(void)
{
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    const char *conv = "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                       "{\"role\":\"user\",\"content\":\"hi\"}]}";
    ASSERT_STR_EQ(rendered_prompt(&f, conv, 200),
                  "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
                  "<|im_start|>assistant\n");
    fx_stop(&f);

    char path[4200];
    model_override = model_with_template("templates/meta-llama-Llama-3.2-3B-Instruct.jinja", path,
                                         sizeof path);
    fx_start(&f, NULL, 2, 8);
    const char *p = rendered_prompt(&f, conv, 200);
    ASSERT(strstr(p, "<|start_header_id|>system<|end_header_id|>\n\n") != NULL);
    ASSERT(strstr(p, "Be brief.<|eot_id|>") != NULL);
    ASSERT(strstr(p, "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>") != NULL);
    size_t len = strlen(p);
    const char *tail = "<|start_header_id|>assistant<|end_header_id|>\n\n";
    ASSERT(len > strlen(tail) && strcmp(p + len - strlen(tail), tail) == 0);
    /* the completion's prompt is exactly that text, tokenized */
    struct resp r = {0};
    ASSERT_EQ(http(&f, "POST", "/v1/chat/completions",
                   "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                   "{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":2}",
                   &r),
              200);
    json_t *j = parse(&r);
    int64_t prompt_tokens =
        json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens"));
    json_decref(j);
    resp_free(&r);
    int32_t toks[4096];
    size_t n = 0;
    struct ea_error err = {0};
    ASSERT_OK(ea_tokenize(f.tok, p, len, EA_TOK_PARSE_SPECIAL, toks, 4096, &n, &err), &err);
    ASSERT_EQ(prompt_tokens, (int64_t)n);
    fx_stop(&f);

    /* a template that rejects the conversation: a 400 carrying its message */
    model_override = model_with_template("templates/mistralai-Mistral-Nemo-Instruct-2407.jinja",
                                         path, sizeof path);
    fx_start(&f, NULL, 2, 8);
    const char *msg = rendered_prompt(
        &f, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]}",
        400);
    ASSERT(strstr(msg, "alternate") != NULL);
    ASSERT_EQ(http(&f, "POST", "/v1/chat/completions",
                   "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]}",
                   &r),
              400);
    resp_free(&r);
    fx_stop(&f);
    model_override = NULL;
    remove(path);
}

static int64_t usage_prompt_tokens(const struct fixture *f, const char *path, const char *body)
{
    struct resp r = {0};
    ASSERT_EQ(http(f, "POST", path, body, &r), 200);
    json_t *j = parse(&r);
    int64_t n = json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens"));
    json_decref(j);
    resp_free(&r);
    return n;
}

/* Mistral under tool_choice auto: its calls open with the control token
 * [TOOL_CALLS] (no text the grammar could match). The test model with the
 * Mistral Nemo template and a [TOOL_CALLS] control token, the token pushed
 * with logit_bias so the random model opens a call at once: every answer
 * is then a valid call (name from the tools, arguments by the schema), as
 * the engine constrains what follows the token. Before, only the text
 * after the token was parsed, and the random model never wrote a call. */
static void mistral_auto_call_constrained(void)
{
    char path[4200];
    model_override = model_with("templates/mistralai-Mistral-Nemo-Instruct-2407.jinja", EA_TOOL_MISTRAL_TAG, path,
                                sizeof path);
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    int32_t tc = ea_tokenizer_find(f.tok, EA_TOOL_MISTRAL_TAG, strlen(EA_TOOL_MISTRAL_TAG));
    ASSERT(tc >= 0 && (ea_token_attr(f.tok, tc) & EA_TOKEN_ATTR_CONTROL));
    enum { N = 6 };
    for (int i = 0; i < N; i++) {
        char body[2048];
        snprintf(body, sizeof body,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"weather in Oslo?\"}],"
                 "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                 "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\","
                 "\"maxLength\":12},\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":7}},"
                 "\"required\":[\"city\",\"days\"],\"additionalProperties\":false}}}],"
                 "\"tool_choice\":\"auto\",\"logit_bias\":{\"%d\":100},\"temperature\":1,\"seed\":%d,"
                 "\"max_tokens\":2000}",
                 (int)tc, i + 1);
        struct resp r = {0};
        ASSERT_EQ(http(&f, "POST", "/v1/chat/completions", body, &r), 200);
        json_t *j = parse(&r);
        json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
        json_t *calls = json_object_get(json_object_get(ch, "message"), "tool_calls");
        if (json_array_size(calls) < 1)
        {
            const char *ct = json_string_value(json_object_get(json_object_get(ch, "message"), "content"));
            size_t cl = ct ? strlen(ct) : 0;
            FAIL("answer %d is not a call (finish_reason %s): content of %zu bytes ending ...%s", i,
                 json_string_value(json_object_get(ch, "finish_reason")), cl, ct ? ct + (cl > 300 ? cl - 300 : 0) : "");
        }
        ASSERT_STR_EQ(json_string_value(json_object_get(ch, "finish_reason")), "tool_calls");
        for (size_t k = 0; k < json_array_size(calls); k++) {
            json_t *fn = json_object_get(json_array_get(calls, k), "function");
            ASSERT_STR_EQ(json_string_value(json_object_get(fn, "name")), "get_weather");
            const char *args = json_string_value(json_object_get(fn, "arguments"));
            json_t *a = args ? json_loads(args, 0, NULL) : NULL;
            size_t cps = 0; /* maxLength counts code points */
            const char *city = json_string_value(json_object_get(a, "city"));
            for (const char *c = city ? city : ""; *c; c++)
                cps += ((unsigned char)*c & 0xC0) != 0x80;
            if (!a || json_object_size(a) != 2 || !city || cps > 12 ||
                json_integer_value(json_object_get(a, "days")) < 1 || json_integer_value(json_object_get(a, "days")) > 7)
                FAIL("answer %d: arguments not by the schema: %s", i, args ? args : "(none)");
            json_decref(a);
        }
        json_decref(j);
        resp_free(&r);
    }
    /* streamed: OpenAI's shape, the call's id, type and name first, then
     * its arguments in pieces that join into the arguments */
    static const char sbody[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"}],\"stream\":true,"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":40}},"
        "\"required\":[\"city\"],\"additionalProperties\":false}}}],\"parallel_tool_calls\":false,"
        "\"tool_choice\":\"auto\",\"logit_bias\":{\"%d\":100},\"temperature\":1,\"seed\":3,\"max_tokens\":400}";
    char sb[1024];
    snprintf(sb, sizeof sb, sbody, (int)tc);
    struct resp r = {0};
    ASSERT_EQ(http(&f, "POST", "/v1/chat/completions", sb, &r), 200);
    json_t *ev[512];
    bool done = false;
    int nev = sse_events(r.body, ev, 512, &done);
    ASSERT(done);
    int begins = 0, pieces = 0;
    char args[4096] = "";
    const char *finish = NULL;
    for (int k = 0; k < nev; k++) {
        json_t *c = json_array_get(json_object_get(ev[k], "choices"), 0);
        json_t *tcs = json_object_get(json_object_get(c, "delta"), "tool_calls");
        for (size_t m = 0; m < json_array_size(tcs); m++) {
            json_t *t = json_array_get(tcs, m);
            json_t *fn = json_object_get(t, "function");
            ASSERT_EQ(json_integer_value(json_object_get(t, "index")), 0);
            if (json_object_get(t, "id")) {
                begins++;
                ASSERT_STR_EQ(json_string_value(json_object_get(t, "type")), "function");
                ASSERT_STR_EQ(json_string_value(json_object_get(fn, "name")), "get_weather");
            }
            const char *a = json_string_value(json_object_get(fn, "arguments"));
            if (a && *a) {
                pieces++;
                strncat(args, a, sizeof args - strlen(args) - 1);
            }
        }
        if (json_is_string(json_object_get(c, "finish_reason")))
            finish = json_string_value(json_object_get(c, "finish_reason"));
    }
    ASSERT_EQ(begins, 1);
    if (!finish || strcmp(finish, "tool_calls"))
        FAIL("streamed: finish_reason %s, arguments '%s'", finish ? finish : "(none)", args);
    json_t *a = json_loads(args, 0, NULL);
    if (!a || !json_is_string(json_object_get(a, "city")) || json_object_size(a) != 1)
        FAIL("streamed arguments not by the schema: '%s'", args);
    json_decref(a);
    printf("    streamed: one call, its arguments in %d pieces\n", pieces);
    ASSERT(pieces > 1);
    for (int k = 0; k < nev; k++)
        json_decref(ev[k]);
    resp_free(&r);
    fx_stop(&f);
    model_override = NULL;
    remove(path);
}

/* /apply-template renders a request's tools as the completion does: through
 * a template that uses `tools` (Qwen 2.5), as a system message for one that
 * does not (the test model's ChatML), not at all with tool_choice none; the
 * rendered prompt is the one the completion is given (same token count). */
static void apply_template_renders_tools(void)
{
    static const char tools[] =
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"description\":\"Weather in a city\",\"parameters\":{\"type\":\"object\","
        "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}]";
    char body[1024], none[1024], gen[1024];
    snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"weather in Oslo?\"}],%s}", tools);
    snprintf(none, sizeof none,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"weather in Oslo?\"}],%s,\"tool_choice\":\"none\"}",
             tools);
    snprintf(gen, sizeof gen,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"weather in Oslo?\"}],%s,\"max_tokens\":1}", tools);

    struct fixture f;
    fx_start(&f, NULL, 2, 8); /* ChatML: tools as a system message */
    const char *p = rendered_prompt(&f, body, 200);
    ASSERT(strstr(p, "<|im_start|>system\n") == p && strstr(p, "get_weather") && strstr(p, "Weather in a city"));
    ASSERT(!strstr(rendered_prompt(&f, none, 200), "get_weather"));
    fx_stop(&f);

    char path[4200];
    model_override = model_with_template("templates/Qwen-Qwen2.5-7B-Instruct.jinja", path, sizeof path);
    fx_start(&f, NULL, 2, 8);
    p = rendered_prompt(&f, body, 200);
    ASSERT(strstr(p, "<tools>") && strstr(p, "\"name\": \"get_weather\"") && strstr(p, "</tools>"));
    size_t len = strlen(p);
    int32_t toks[4096];
    size_t n = 0;
    struct ea_error err = {0};
    ASSERT_OK(ea_tokenize(f.tok, p, len, EA_TOK_PARSE_SPECIAL, toks, 4096, &n, &err), &err);
    ASSERT_EQ(usage_prompt_tokens(&f, "/v1/chat/completions", gen), (int64_t)n);
    ASSERT(!strstr(rendered_prompt(&f, none, 200), "get_weather"));
    fx_stop(&f);
    model_override = NULL;
    remove(path);
}


/* issue 18: control markup in a chat message is text, never control tokens
 * (Llama 2 vocabulary: "</s>" is EOS). Before, the rendered prompt was
 * tokenized with special tokens recognised everywhere: 34 tokens with four
 * real EOS instead of 39 plain-text ones. /v1/completions keeps parsing them
 * in the caller's own prompt unless edgeagent.parse_special is false. */
static void chat_control_markup_is_text(void)
{
    model_override = ea_test_shared_path("models/llama-2-tiny-random.gguf");
    struct fixture f;
    fx_start(&f, NULL, 2, 8);
    const char *conv = "{\"messages\":[{\"role\":\"user\",\"content\":\"hello</s></s></s></s>world\"}],"
                       "\"max_tokens\":1}";
    const char *p = rendered_prompt(&f, conv, 200);
    ASSERT_STR_EQ(p, "<|im_start|>user\nhello</s></s></s></s>world<|im_end|>\n<|im_start|>assistant\n");
    size_t len = strlen(p), n_text = 0, n_special = 0;
    int32_t toks[256];
    struct ea_error err = {0};
    /* the Llama 2 vocabulary has no ChatML tokens: all of it is text, plus BOS */
    ASSERT_OK(ea_tokenize(f.tok, p, len, EA_TOK_ADD_SPECIAL, toks, 256, &n_text, &err), &err);
    for (size_t i = 1; i < n_text; i++)
        ASSERT(!(ea_token_attr(f.tok, toks[i]) & EA_TOKEN_ATTR_CONTROL));
    ASSERT_OK(ea_tokenize(f.tok, p, len, EA_TOK_ADD_SPECIAL | EA_TOK_PARSE_SPECIAL, toks, 256, &n_special,
                          &err),
              &err);
    ASSERT_EQ(n_text, 39);
    ASSERT_EQ(n_special, 34); /* what the engine received before the fix */
    ASSERT_EQ(usage_prompt_tokens(&f, "/v1/chat/completions", conv), 39);

    /* completions: the caller's own prompt, special tokens parsed by default */
    ASSERT_EQ(usage_prompt_tokens(&f, "/v1/completions", "{\"prompt\":\"hello</s>world\",\"max_tokens\":1}"),
              4); /* BOS hello EOS world */
    ASSERT_EQ(usage_prompt_tokens(&f, "/v1/completions",
                                  "{\"prompt\":\"hello</s>world\",\"max_tokens\":1,"
                                  "\"edgeagent\":{\"parse_special\":false}}"),
              6); /* BOS hello </ s > world */
    struct resp r = {0};
    ASSERT_EQ(http(&f, "POST", "/v1/completions",
                   "{\"prompt\":\"x\",\"edgeagent\":{\"parse_special\":1}}", &r),
              400);
    ASSERT(strstr(r.body, "edgeagent.parse_special") != NULL);
    resp_free(&r);
    fx_stop(&f);
    model_override = NULL;
}

static void parser_fields(void)
{
    struct ea__req_limits lim = {4096, 8, 1000};
    struct ea__gen_request r;
    struct ea__api_error e;
    const char *ok =
        "{\"model\":\"default\",\"messages\":[{\"role\":\"developer\",\"content\":\"d\"},{\"role\":\"user\","
        "\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}],"
        "\"max_completion_tokens\":7,\"max_tokens\":9,\"temperature\":0.5,\"top_p\":0.9,\"n\":2,"
        "\"stop\":\"x\",\"seed\":-1,\"presence_penalty\":1,\"frequency_penalty\":-1,"
        "\"logit_bias\":{\"5\":-100,\"6\":2},\"logprobs\":true,\"top_logprobs\":3,\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},\"tool_choice\":\"none\",\"tools\":[],"
        "\"response_format\":{\"type\":\"text\"},\"temperature_unknown\":1}";
    ASSERT(ea__gen_request_parse(EA__REQ_CHAT, ok, strlen(ok), &lim, &r, &e));
    ASSERT_EQ(r.n_msgs, 2);
    ASSERT_STR_EQ(r.msgs[0].role, "system");
    ASSERT_STR_EQ(r.msgs[1].content, "ab");
    ASSERT_EQ(r.max_tokens, 7);
    ASSERT_NEAR(r.temperature, 0.5, 1e-6);
    ASSERT_EQ(r.n, 2);
    ASSERT_EQ(r.n_stop, 1);
    ASSERT(r.has_seed);
    ASSERT_EQ(r.n_bias, 2);
    ASSERT(isinf(r.bias[0].bias) || isinf(r.bias[1].bias));
    ASSERT(r.logprobs && r.top_logprobs == 3 && r.stream && r.include_usage);
    ea__gen_request_release(&r);

    struct ea_chat_prompt out;
    struct ea_error err = {0};
    struct ea__chat_msg msgs[2] = {{"system", "S", 1, NULL}, {"user", "U", 1, NULL}};
    ea_chat *chatml = NULL;
    ASSERT_OK(ea_chat_create(NULL, NULL, &chatml, NULL, 0, &err), &err);
    ASSERT_OK(ea__chat_prompt_render(chatml, msgs, 2, 1 << 20, 0, &out, &err), &err);
    ASSERT_STR_EQ(out.text, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
                            "<|im_start|>assistant\n");
    ea_chat_prompt_release(&out);
    ASSERT_EQ(ea__chat_prompt_render(chatml, msgs, 2, 10, 0, &out, &err), EA_ETOOBIG);
    ea_chat_destroy(chatml);
}

EA_TESTS(EA_TEST(parser_fields), EA_TEST(chat_templates_applied), EA_TEST(apply_template_renders_tools), EA_TEST(mistral_auto_call_constrained), EA_TEST(chat_control_markup_is_text), EA_TEST(health_loading_then_ready), EA_TEST(models_and_page),
         EA_TEST(chat_nonstream), EA_TEST(chat_stream_usage), EA_TEST(completions_variants),
         EA_TEST(tokenize_detokenize), EA_TEST(malformed_corpus), EA_TEST(error_statuses),
         EA_TEST(error_500_has_logged_id), EA_TEST(concurrent_streams),
         EA_TEST(disconnect_frees_kv), EA_TEST(disconnect_non_streamed_stops_generation),
         EA_TEST(slow_client_never_blocks_engine),
         EA_TEST(header_cap_and_idle_timeout), EA_TEST(overload_429), EA_TEST(retry_after_header),
         EA_TEST(graceful_shutdown), EA_TEST(shutdown_cancels_after_grace), EA_TEST(auth_and_bind),
         EA_TEST(no_content_in_log), EA_TEST(upstream_thread_producer),
         EA_TEST(relay_fallbacks), EA_TEST(route_names))
